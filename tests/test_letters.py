"""nclib.letters: the letters-synthetic stand-in for EMNIST letters, rendered now or ahead, as nclib.data.load
gives it to the runs."""
import numpy as np
import pytest

from nclib import data, letters


def test_letters_synthetic_is_a_labelled_deterministic_stand_in():
    a = data.load("letters-synthetic", counts=[4] * 26, seed=5)
    letters._render_letters.cache_clear()  # b is rendered again, not read from the memo
    b = data.load("letters-synthetic", counts=[4] * 26, seed=5)
    c = data.load("letters-synthetic", counts=[4] * 26, seed=6)
    assert a.images.shape == (104, 28, 28) and a.images.dtype == np.uint8 and a.x.shape == (104, 3 * 32 * 32)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert "stand-in for EMNIST letters" in a.provenance["source"]
    assert a.classes == data.LETTERS
    # ink covers a plausible fraction of the square, and the noise leaves the background dark
    ink = (a.images > 128).mean(axis=(1, 2))
    assert np.all(ink > 0.03) and np.all(ink < 0.6)
    # the letters differ: mean images of 'o' and 'l' are far apart
    mo, ml = a.images[a.y == 14].mean(0), a.images[a.y == 11].mean(0)
    assert np.abs(mo - ml).mean() > 10


def test_the_stand_in_is_what_its_description_says():
    """nclib.letters' docstring: glyphs of 16 font files in 2 cases; a noisy background; for the paper's EMNIST
    profile (Figure 2's counts, here at CPU scale, a tenth of them) a mean pixel of about 0.20 on [0, 1], above
    EMNIST's (the 0.1722 of its normalization), so that the normalized inputs have a mean of about 0.1."""
    from nclib import figures

    assert len(letters.matplotlib_fonts()) == 16
    ts = data.load("letters-synthetic", counts=figures.figure_counts(2, "cpu-scale"), seed=0)
    pixels = ts.images / 255
    assert 0.195 < pixels.mean() < 0.215 and pixels.mean() - data.EMNIST_MEAN[0] > 0.02
    assert 0.05 < ts.x.mean() < 0.15
    corners = pixels[:, :3, :3]  # far from every glyph: the noise, clipped at 0
    assert 0.01 < corners.mean() < 0.03 and np.median(corners) == 0


def test_capital_i_and_small_l_are_nearly_one_bar_in_the_sans_fonts():
    """nclib.letters' docstring: classes i and l hold capital I's and small l's, which in 5 of the 16 fonts (the four
    DejaVu Sans and cmss10) differ by a mean absolute difference of their 64 x 64 glyphs of at most 0.015, against
    0.07 or more in the four mono fonts."""
    fonts = letters.matplotlib_fonts()
    apart = {f.name: np.abs(letters._glyph("I", f) - letters._glyph("l", f)).mean() for f in fonts}
    near = sorted(name for name, d in apart.items() if d <= 0.015)
    assert near == ["DejaVuSans-Bold.ttf", "DejaVuSans-BoldOblique.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans.ttf",
                    "cmss10.ttf"]
    mono = [d for name, d in apart.items() if "Mono" in name]
    assert len(mono) == 4 and min(mono) >= 0.07


def test_class_k_is_drawn_from_the_glyphs_of_letter_k(monkeypatch):
    """Class k shows the letter a..z[k], in either case.  Every glyph is replaced by a full square whose gray level
    codes its letter (0.2 + 0.03 k, either case), so the centre of each image still carries that code through the
    jitter, the stroke changes, the resizing and the noise: the median centre of class k is letter k's code.  (The
    real glyphs are shown apart by their shapes in test_letters_synthetic_is_a_labelled_deterministic_stand_in.)"""
    code = {c: 0.2 + 0.03 * k for k, letter in enumerate(data.LETTERS) for c in (letter, letter.upper())}
    drawn = []

    def coded_glyph(char, font, size=64):
        drawn.append(char)
        return np.full((size, size), code[char])

    monkeypatch.setattr(letters, "_glyph", coded_glyph)
    letters._render_letters.cache_clear()
    try:
        images, y = letters.letters_synthetic([20] * 26, seed=0)
    finally:
        letters._render_letters.cache_clear()  # the coded rendering does not stay in the memo
    centre = images[:, 10:18, 10:18].mean(axis=(1, 2)) / 255  # inside the square whatever the jitter
    median = np.array([np.median(centre[y == k]) for k in range(26)])
    np.testing.assert_allclose(median, 0.2 + 0.03 * np.arange(26), rtol=0, atol=0.01)  # codes lie 0.03 apart
    assert set(drawn) == set(code)  # both cases of every letter


def test_letters_rendered_ahead_are_the_letters_rendered_now(tmp_path):
    """save_letters_synthetic writes the rendering once; load reads it for the same counts and seed and gets the
    training data a fresh rendering gives, bit for bit (the same data_sha256 in a run's provenance)."""
    path = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=[3] * 20 + [5] * 6, seed=2)
    letters._render_letters.cache_clear()
    now = data.load("letters-synthetic", counts=[3] * 20 + [5] * 6, seed=2)
    ahead = data.load("letters-synthetic", counts=[3] * 20 + [5] * 6, seed=2, data_path=path)
    np.testing.assert_array_equal(ahead.x, now.x)
    np.testing.assert_array_equal(ahead.y, now.y)
    np.testing.assert_array_equal(ahead.images, now.images)
    for key in ("data_sha256", "images_sha256", "source", "fonts", "counts"):
        assert ahead.provenance[key] == now.provenance[key]
    assert ahead.provenance["rendered_ahead"] == "letters.npz" and "rendered_ahead" not in now.provenance
    assert ahead.provenance["source_sha256"] == {"letters.npz": data.sha256_file(path)}
    assert [p.name for p in tmp_path.iterdir()] == ["letters.npz"]  # its temporary file is gone


def test_a_rendering_whose_writing_fails_leaves_the_saved_one_and_no_temporary_file(tmp_path, monkeypatch):
    """save_letters_synthetic writes a temporary file of its process's own (two notebooks rendering into one
    folder at once never share one, as they shared "letters.npz.tmp.npz"), renamed into place once whole."""
    counts = [2] * 26
    path = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=0)
    saved = path.read_bytes()

    def disk_full(file, **arrays):
        file.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(letters.np, "savez_compressed", disk_full)
    with pytest.raises(OSError):
        letters.save_letters_synthetic(path, counts=counts, seed=1)
    monkeypatch.undo()
    assert path.read_bytes() == saved and [p.name for p in tmp_path.iterdir()] == ["letters.npz"]
    assert data.load("letters-synthetic", counts=counts, seed=0, data_path=path).N == 52


def test_a_seed_the_file_cannot_store_is_refused_before_rendering(tmp_path, monkeypatch):
    """The fault: save_letters_synthetic(seed=2**64) rendered every letter, then failed storing the seed as an
    int64 (OverflowError), though data.load renders that seed.  Refused by name now, before any rendering; the
    largest seed an int64 holds is saved and read back as the letters data.load renders for it."""
    counts = [1] * 26

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered before the seed was checked")

    with monkeypatch.context() as patched:
        patched.setattr(letters, "letters_synthetic", no_rendering)
        for seed in (2**63, 2**64):
            with pytest.raises(ValueError, match="^seed"):
                letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=seed)
    assert list(tmp_path.iterdir()) == []
    assert data.load("letters-synthetic", counts=counts, seed=2**64).N == 26  # rendered, with no file
    top = letters.MAX_SAVED_SEED
    assert top == 2**63 - 1
    path = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=top)
    read = data.load("letters-synthetic", counts=counts, seed=top, data_path=path)
    assert read.provenance["images_sha256"] == data.load("letters-synthetic", counts=counts,
                                                         seed=top).provenance["images_sha256"]


def test_a_rendering_makes_its_missing_folder_and_a_blocked_one_is_refused_unrendered(tmp_path, monkeypatch):
    """The fault: save_letters_synthetic into a folder that did not exist rendered every letter, then failed with a
    FileNotFoundError naming its temporary file.  The folder is made first now, as the other writers of the project
    make theirs; a path that is a folder, or whose folder a file is in the way of, is refused by name, unrendered."""
    counts = [1] * 26
    (tmp_path / "taken").write_text("a file, not a folder")
    (tmp_path / "folder.npz").mkdir()

    def no_rendering(*args, **kwargs):
        raise AssertionError("rendered before the path was checked")

    with monkeypatch.context() as patched:
        patched.setattr(letters, "letters_synthetic", no_rendering)
        for bad in (tmp_path / "taken" / "letters.npz", tmp_path / "taken" / "deeper" / "letters.npz",
                    tmp_path / "folder.npz"):
            with pytest.raises(ValueError, match="^path "):
                letters.save_letters_synthetic(bad, counts=counts, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz", "taken"]
    path = letters.save_letters_synthetic(tmp_path / "new" / "deeper" / "letters.npz", counts=counts, seed=0)
    assert path == tmp_path / "new" / "deeper" / "letters.npz" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["letters.npz"]  # no temporary file left beside it
    read = data.load("letters-synthetic", counts=counts, seed=0, data_path=path)
    assert read.provenance["data_sha256"] == data.load("letters-synthetic", counts=counts, seed=0).provenance[
        "data_sha256"]


def test_a_rendering_is_never_read_as_emnist_letters(tmp_path):
    """The stand-in keeps its name: the .npz of save_letters_synthetic holds 28 x 28 uint8 letters and labels 0..25,
    as an EMNIST subset would, and is refused as one, naming data_path, with the dataset to use instead."""
    counts = [3] * 26
    path = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=0)
    with pytest.raises(ValueError, match="^data_path .*letters-synthetic"):
        data.load("emnist-letters", data_path=path, counts=counts)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    for member in ("fonts", "images_sha256", "note"):  # any one of the rendering's own members gives it away
        np.savez(tmp_path / "one.npz", x_train=arrays["x_train"], y_train=arrays["y_train"], **{member: arrays[member]})
        with pytest.raises(ValueError, match="^data_path .*letters-synthetic"):
            data.load("emnist-letters", data_path=tmp_path / "one.npz", counts=counts)
    assert data.load("letters-synthetic", data_path=path, counts=counts, seed=0).name == "letters-synthetic"


def test_letters_rendered_ahead_refuse_another_run_or_damage(tmp_path):
    counts = [2] * 26
    path = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=0)
    with pytest.raises(ValueError, match="data_path .* counts .* and seed 0; this run asks for counts .* seed 1"):
        data.load("letters-synthetic", counts=counts, seed=1, data_path=path)
    with pytest.raises(ValueError, match="this run asks for counts \\[3, 2"):
        data.load("letters-synthetic", counts=[3] + [2] * 25, seed=0, data_path=path)
    with pytest.raises(ValueError, match="path must name an .npz file"):
        letters.save_letters_synthetic(tmp_path / "letters.bin", counts=counts)
    # an .npz that is not a rendering: CIFAR-like arrays only
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(tmp_path / "plain.npz", x_train=arrays["x_train"], y_train=arrays["y_train"])
    with pytest.raises(ValueError, match="not a letters-synthetic rendering .* lacks \\['counts', 'seed', 'fonts'"):
        data.load("letters-synthetic", counts=counts, data_path=tmp_path / "plain.npz")
    # images changed after the rendering: their sha256 no longer matches the one stored
    changed = dict(arrays, x_train=arrays["x_train"].copy())
    changed["x_train"][0, 0, 0] ^= 1
    np.savez(tmp_path / "changed.npz", **changed)
    with pytest.raises(data.DamagedFileError, match="do not have the sha256 stored with them"):
        data.load("letters-synthetic", counts=counts, data_path=tmp_path / "changed.npz")
    # labels out of class order
    np.savez(tmp_path / "shuffled.npz", **dict(arrays, y_train=arrays["y_train"][::-1].copy()))
    with pytest.raises(ValueError, match="y_train is not the labels 0..25 sorted by class"):
        data.load("letters-synthetic", counts=counts, data_path=tmp_path / "shuffled.npz")
    # images and labels intact, a member of the rendering's record damaged
    import zipfile
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "member.npz", "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"not an array" if name == "counts.npy" else src.read(name))
    with pytest.raises(data.DamagedFileError, match="member.npz"):
        data.load("letters-synthetic", counts=counts, data_path=tmp_path / "member.npz")
    # a truncated copy
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(data.DamagedFileError, match="cut.npz"):
        data.load("letters-synthetic", counts=counts, data_path=tmp_path / "cut.npz")


def test_letters_synthetic_refuses_more_than_26_classes_and_a_bad_size_by_name():
    """Called directly, not through nclib.data.load: a class beyond z, and an image size that is not a positive
    integer, are refused naming counts and size before anything is rendered."""
    for counts in ([1] * 27, [2] * 40):
        with pytest.raises(ValueError, match="^counts must have at most 26 classes"):
            letters.letters_synthetic(counts)
    for size in (0, -28, 2.5, True, "28"):
        with pytest.raises(ValueError, match="^size must"):
            letters.letters_synthetic([1] * 3, size=size)


def test_a_rendering_whose_images_are_not_28_by_28_uint8_is_refused_naming_the_file(tmp_path):
    """A rendering whose images were rescaled to [0, 1] or padded to 32 x 32, its sha256 written again to match (so
    that only the check of the images can see it): refused with a ValueError naming data_path and x_train, read
    directly and through nclib.data.load, not handed to a run."""
    counts = [1] * 26
    path = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=0)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    x = arrays["x_train"]
    for name, x in (("scaled", x / 255.0), ("padded", np.pad(x, ((0, 0), (2, 2), (2, 2)))),
                    ("rgb", np.repeat(x[..., None], 3, axis=3))):
        bad = tmp_path / f"{name}.npz"
        np.savez(bad, **dict(arrays, x_train=x, images_sha256=np.array(data.sha256_arrays(x, arrays["y_train"]))))
        with pytest.raises(ValueError, match="^data_path .*x_train must") as refused:
            letters.read_letters_synthetic(bad, counts, 0)
        assert str(bad) in str(refused.value)
        with pytest.raises(ValueError, match="^data_path .*x_train must"):
            data.load("letters-synthetic", counts=counts, seed=0, data_path=bad)
    images, y, _, _ = letters.read_letters_synthetic(path, counts, 0)
    assert images.shape == (26, 28, 28) and images.dtype == np.uint8 and y.tolist() == list(range(26))


def test_letters_synthetic_renders_once_and_hands_out_copies():
    letters._render_letters.cache_clear()
    a, ya = letters.letters_synthetic([2] * 26, seed=3)
    a[:] = 0  # a caller's changes do not reach the memo
    b, yb = letters.letters_synthetic(np.array([2] * 26), seed=3)
    info = letters._render_letters.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    assert b.max() == 255 and yb.tolist() == ya.tolist() == np.repeat(np.arange(26), 2).tolist()
    letters._render_letters.cache_clear()
    np.testing.assert_array_equal(letters.letters_synthetic([2] * 26, seed=3)[0], b)
