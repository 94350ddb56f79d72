"""Fault injection on the inputs and the closed forms: each bad input or damaged file is refused by name (the
argument, array or file in the message, the exception type), and each overflow case now gives the right number."""
import gzip
import pickle
import re
import struct
import warnings
import zipfile

import numpy as np
import pytest
from scipy import optimize

from nclib import data, imbalance, ufm

# ------------------------------------------------------------------------------------------ data: fixtures

LABELS = np.repeat(np.arange(10), 4)


def _images(n=LABELS.size, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _load_npz(path, counts=(4,) * 10, dataset="cifar10"):
    return data.load(dataset, data_path=path, counts=list(counts))


def _write(tmp_path, name="d.npz", x=None, y=None, **extra):
    path = tmp_path / name
    np.savez(path, x_train=_images() if x is None else x, y_train=LABELS if y is None else y, **extra)
    return path


def _write_batches(tmp_path, x=None, y=None):
    """The same arrays in torchvision's CIFAR-10 python batches (flat CHW rows in 5 train batches and a test batch,
    the labels a list), stored as they are given, not cast to uint8 pixels and integer labels."""
    x, y = _images() if x is None else x, LABELS if y is None else y
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rows = np.asarray(x).transpose(0, 3, 1, 2).reshape(len(x), -1)
    parts = np.array_split(np.arange(len(x)), 5)
    for name, part in [(f"data_batch_{i}", part) for i, part in enumerate(parts, 1)] + [("test_batch", parts[0])]:
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": np.asarray(y)[part].tolist(), "data": rows[part]}, f,
                        protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(data.CIFAR10_CLASSES)}, f, protocol=2)
    return tmp_path


#: How a test writes its arrays and what the refusal calls them: an .npz (x_train, y_train) or python batches,
#: read through torchvision (images, labels).
FORMATS = {"npz": (_write, "x_train", "y_train"), "batches": (_write_batches, "images", "labels")}


def _load_as(fmt, tmp_path, x=None, y=None):
    write = FORMATS[fmt][0]
    return data.load("cifar10", data_path=write(tmp_path, x=x, y=y), counts=[4] * 10, verify_checksums=False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_ordinary_file_still_loads(tmp_path, fmt):
    x = _images()
    ts = _load_as(fmt, tmp_path, x=x)
    assert ts.N == 40 and ts.counts.tolist() == [4] * 10
    np.testing.assert_array_equal(ts.images, x)  # all 4 rows of each class, in file order (sorted by class)
    np.testing.assert_array_equal(ts.y, LABELS)


# ------------------------------------------------------------------------------------------ data: pixels

@pytest.mark.parametrize("x, found", [
    (_images() / 255.0, "float64"),  # already scaled to [0, 1]
    (_images().astype(np.float32), "float32"),
    (_images().astype(np.int32) * 300, "int32"),  # up to 76,500
    (_images().astype(np.int16), "int16"),
])
@pytest.mark.parametrize("fmt", FORMATS)
def test_pixels_that_are_not_uint8_are_refused(tmp_path, x, found, fmt):
    """The python batches too: their pixels are not cast to uint8 (floats in [0, 1] became 0 and 1, 263 became 7)."""
    with pytest.raises(ValueError, match=rf"^{FORMATS[fmt][1]} must hold uint8 pixels 0\.\.255") as info:
        _load_as(fmt, tmp_path, x=x)
    assert found in str(info.value)


def test_pixels_in_0_1_are_named_as_already_scaled(tmp_path):
    with pytest.raises(ValueError, match=r"x_train .* values in \[0\.0, 1\.0\]: already scaled"):
        data.check_images(np.linspace(0, 1, 40 * 3072).reshape(40, 32, 32, 3), "cifar10")
    with pytest.raises(ValueError, match=r"^images .* values in \[0\.0, 1\.0\]: already scaled"):
        _load_as("batches", tmp_path, x=_images() / 255.0)


def test_nan_pixels_are_bad_data_not_divergence(tmp_path):
    x = _images().astype(np.float32)
    x[3, 1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"^x_train holds 1 NaN or infinite pixel values .*bad data"):
        _load_npz(_write(tmp_path, x=x))


@pytest.mark.parametrize("x, found", [
    (_images()[..., 0], r"\(40, 32, 32\)"),  # grayscale
    (_images().reshape(40, 3072), r"\(40, 3072\).*flat rows.*cifar-10-batches-py"),  # flat: the batches hold these
    (_images()[:, :16, :16], r"\(40, 16, 16, 3\): images of 16 x 16"),
    (_images().transpose(0, 3, 1, 2), r"\(40, 3, 32, 32\): channels first"),
    (np.concatenate([_images(), np.full((40, 32, 32, 1), 255, np.uint8)], axis=3),
     r"\(40, 32, 32, 4\): 4 channels, RGB and alpha\? drop the alpha channel: store x\[\.\.\., :3\]"),
    (_images()[..., :1], r"\(40, 32, 32, 1\): 1 channel, grayscale.*np\.repeat\(x, 3, axis=3\)"),
    (_images()[..., :2], r"\(40, 32, 32, 2\): 2 channels; CIFAR-10 images have 3"),
])
def test_images_of_another_shape_are_refused_naming_the_expected_one(tmp_path, x, found):
    with pytest.raises(ValueError, match=r"^x_train must have shape \(N, 32, 32, 3\)") as info:
        _load_npz(_write(tmp_path, x=x))
    assert re.search(found, str(info.value))


def test_rgba_images_load_once_their_alpha_channel_is_dropped_as_the_refusal_says(tmp_path):
    rgba = np.concatenate([_images(), np.full((40, 32, 32, 1), 255, np.uint8)], axis=3)
    with pytest.raises(ValueError, match=r"store x\[\.\.\., :3\]"):
        _load_npz(_write(tmp_path, x=rgba))
    ts = _load_npz(_write(tmp_path, "rgb.npz", x=rgba[..., :3]))
    np.testing.assert_array_equal(ts.images, _images())


def test_emnist_npz_wants_28_by_28_grayscale(tmp_path):
    y = np.repeat(np.arange(26), 2)
    x = np.zeros((y.size, 28, 28), np.uint8)
    assert _load_npz(_write(tmp_path, x=x, y=y), counts=[2] * 26, dataset="emnist-letters").N == 52
    with pytest.raises(ValueError, match=r"^x_train must have shape \(N, 28, 28\).*got \(52, 32, 32, 3\)"):
        _load_npz(_write(tmp_path, x=np.zeros((52, 32, 32, 3), np.uint8), y=y), counts=[2] * 26,
                  dataset="emnist-letters")
    with pytest.raises(ValueError, match=r"^y_train must hold integers 0\.\.25 .*found min 1, max 26: 1-based"):
        _load_npz(_write(tmp_path, x=x, y=y + 1), counts=[2] * 26, dataset="emnist-letters")


# ------------------------------------------------------------------------------------------ data: labels

@pytest.mark.parametrize("n_images", [45, 30])
def test_images_and_labels_of_different_counts_are_refused_naming_both(tmp_path, n_images):
    with pytest.raises(ValueError, match=rf"^x_train has {n_images} images but y_train has 40 labels"):
        _load_npz(_write(tmp_path, x=_images(n_images)))


@pytest.mark.parametrize("dataset, shape", [("cifar10", (0, 32, 32, 3)), ("emnist-letters", (0, 28, 28))])
def test_an_npz_without_rows_is_refused_naming_x_train(tmp_path, dataset, shape):
    path = _write(tmp_path, x=np.zeros(shape, np.uint8), y=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="^x_train"):  # not numpy's "zero-size array to reduction operation"
        _load_npz(path, counts=[1] * data.CLASSES[dataset], dataset=dataset)


def test_one_based_labels_are_named_as_such(tmp_path):
    with pytest.raises(ValueError, match=r"^y_train must hold integers 0\.\.9 .*found min 1, max 10: 1-based\?"):
        _load_npz(_write(tmp_path, y=LABELS + 1))


def test_labels_out_of_range_give_min_and_max_not_a_class_count(tmp_path):
    y = np.where(LABELS == 3, 12, LABELS)
    with pytest.raises(ValueError, match=r"^y_train must hold integers 0\.\.9 .*found min 0, max 12$"):
        _load_npz(_write(tmp_path, y=y))
    with pytest.raises(ValueError, match=r"^y_train .*found min -1, max 9"):
        _load_npz(_write(tmp_path, y=np.where(LABELS == 0, -1, LABELS)))


def test_one_hot_labels_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"^y_train must be a 1-D array .*got shape \(40, 10\): one-hot"):
        _load_npz(_write(tmp_path, y=np.eye(10)[LABELS]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_integer_labels_are_refused_not_truncated(tmp_path, fmt):
    name = FORMATS[fmt][2]
    with pytest.raises(ValueError, match=rf"^{name} must hold integer class indices 0\.\.9, got dtype float64"):
        _load_as(fmt, tmp_path, y=LABELS + 0.5)


# ------------------------------------------------------------------------------------------ damaged files

def _damaged(path, tmp_path, kind):
    raw = path.read_bytes()
    bad = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        bad.write_bytes(raw[: len(raw) // 2])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "garbage":  # neither a zip nor an .npy: numpy takes it for pickled data, nclib names it
        bad.write_bytes(np.random.default_rng(0).bytes(4000))
    elif kind in ("crc", "deflate"):
        info = zipfile.ZipFile(path).getinfo("x_train.npy")
        name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len  # the member's compressed bytes
        at = start if kind == "deflate" else start + info.compress_size // 2
        patched = bytearray(raw)
        patched[at:at + 8] = b"\xff" * 8
        bad.write_bytes(bytes(patched))
    elif kind == "header":  # the .npy header of x_train (stored, not deflated) made unreadable
        np.savez(tmp_path / "plain.npz", x_train=_images(), y_train=LABELS)
        raw = (tmp_path / "plain.npz").read_bytes()
        at = raw.index(b"'descr': '|u1'")
        bad.write_bytes(raw[:at] + b"'descr': '|O'," + raw[at + 14:])
    return bad


@pytest.mark.parametrize("kind, reader_error", [
    ("truncated", "zipfile.BadZipFile"), ("empty", "EOFError"), ("garbage", "not an .npz"),
    ("crc", "zipfile.BadZipFile: Bad CRC-32"), ("deflate", "zlib.error"), ("header", "ValueError"),
])
def test_damaged_npz_names_the_file_and_what_to_do(tmp_path, kind, reader_error):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, x_train=_images(), y_train=LABELS)
    bad = _damaged(good, tmp_path, kind)
    with pytest.raises(data.DamagedFileError) as info:
        _load_npz(bad)
    err = info.value
    assert isinstance(err, ValueError) and err.path == bad
    message = str(err)
    assert str(bad) in message and reader_error in message
    assert data.sha256_file(bad) in message and "re-download" in message


def test_object_arrays_are_refused_as_pickled_data(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, x_train=np.array([_images(1)[0], _images(1)[0][:16]], dtype=object), y_train=LABELS[:2])
    with pytest.raises(data.DamagedFileError, match="pickled") as info:
        _load_npz(path)
    assert info.value.path == path


@pytest.fixture
def cifar_batches(tmp_path):
    """A CIFAR-10 root in torchvision's python-batch format (pickled dicts, flat CHW rows)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.permutation(np.repeat(np.arange(10), 2))
        rows = rng.integers(0, 256, (labels.size, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels.tolist(), "data": rows,
                         "filenames": [f"{i}.png" for i in range(labels.size)]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(data.CIFAR10_CLASSES)}, f, protocol=2)
    return tmp_path


@pytest.mark.parametrize("name, keep", [("data_batch_3", 0.5), ("data_batch_5", 0.0), ("batches.meta", 0.3)])
def test_truncated_cifar_batch_names_the_file(cifar_batches, name, keep):
    assert data.load("cifar10", data_path=cifar_batches, counts=[10] * 10, verify_checksums=False).N == 100
    path = cifar_batches / "cifar-10-batches-py" / name
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(data.DamagedFileError) as info:
        data.load("cifar10", data_path=cifar_batches, counts=[10] * 10, verify_checksums=False)
    assert info.value.path == path and str(path) in str(info.value)
    assert ("UnpicklingError" in str(info.value)) or ("EOFError" in str(info.value))


def _idx_bytes(array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("which, how", [("images", "truncated"), ("labels", "truncated"), ("images", "padded"),
                                        ("images", "gz"), ("images", "float type"), ("labels", "header cut")])
def test_damaged_emnist_idx_file_is_named(tmp_path, which, how):
    labels = np.repeat(np.arange(1, 27), 2)
    images = np.zeros((labels.size, 28, 28), np.uint8)
    (tmp_path / "EMNIST" / "raw").mkdir(parents=True)
    files = dict(zip(("images", "labels"), data.emnist_raw_files(tmp_path)))
    files["images"].write_bytes(_idx_bytes(images))
    files["labels"].write_bytes(_idx_bytes(labels))
    assert data.load("emnist-letters", data_path=tmp_path, counts=[2] * 26).N == 52
    path = files[which]
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) - 7])
    elif how == "padded":  # longer than its header says: not the file the header describes either
        path.write_bytes(raw + bytes(7))
    elif how == "float type":  # type byte 0x0D, float32 values: not the unsigned bytes of EMNIST (0x08)
        path.write_bytes(raw[:2] + b"\x0d" + raw[3:])
    elif how == "header cut":  # 3 dimensions announced, the file ends inside the first one's size
        path.write_bytes(b"\0\0\x08\x03\0\0")
    else:  # only a truncated .gz copy lies there, as if the download of the official archive broke off
        path.unlink()
        path = path.with_name(path.name + ".gz")
        packed = gzip.compress(raw)
        path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(data.DamagedFileError) as info:
        data.load("emnist-letters", data_path=tmp_path, counts=[2] * 26)
    assert info.value.path == path and str(path) in str(info.value)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary file left


# ------------------------------------------------------------------------------------------ closed forms

N_SMALL = [5, 3, 2]


def _per_mode_minimum(kappa, N, log_c, L):
    """min over s >= 0 of (s - kappa)^2/(2N) + (L+1)/2 c s^(2/(L+1)) with c = exp(log_c): a grid over s on a log
    scale and 0, refined by a bounded scalar search (independent of nclib's Lemma A.2 route)."""
    total = 0.0
    for k in kappa:
        if k <= 0:
            continue
        f = lambda s: (s - k) ** 2 / (2 * N) + 0.5 * (L + 1) * np.exp(log_c + 2 / (L + 1) * np.log(s))  # noqa: E731
        grid = np.geomspace(1e-12 * k, k, 20001)
        values = f(grid)
        j = int(np.argmin(values))
        lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
        best = optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-14 * k}).fun
        total += min(best, values[j], k ** 2 / (2 * N))  # s = 0 gives kappa^2/(2N)
    return total


def _no_warnings(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lam", [1e160, 1e300])
def test_huge_decays_collapse_every_mode_instead_of_nan(L, bias, lam):
    M = imbalance.ybar(N_SMALL) if bias else np.diag(np.sqrt(N_SMALL))
    collapsed = np.sum(M ** 2) / (2 * sum(N_SMALL))  # every mode at s = 0: ||M||_F^2 / (2N)
    value = _no_warnings(ufm.minimum_value, N_SMALL, lam, lam, L=L, bias=bias)
    np.testing.assert_allclose(value, collapsed, rtol=1e-14)
    st = _no_warnings(ufm.structure, N_SMALL, lam, lam, L=L, bias=bias)
    assert np.all(st.s_product == 0) and np.all(st.s_features == 0)
    g = _no_warnings(ufm.global_minimizer, N_SMALL, lam, lam, L=L, bias=bias)
    np.testing.assert_allclose(g.value, collapsed, rtol=1e-14)
    assert all(np.all(W == 0) for W in g.Ws) and np.all(g.H == 0)
    assert np.all(_no_warnings(ufm.threshold_gap, st.kappa, 10, lam, lam, L) > 0)


@pytest.mark.parametrize("lam", [1e-160, 1e-300])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_tiny_decays_keep_the_features(L, lam):
    # lam_H lam_W1...lam_WL underflows to 0; every mode is kept whole (s = kappa) and balanced over the layers.
    # At 1e-300 Lemma A.2's a itself underflows to 0 for L >= 2, a branch of its own
    st = _no_warnings(ufm.structure, N_SMALL, lam, lam, L=L, bias=False)
    np.testing.assert_allclose(st.s_product * st.s_features, st.kappa, rtol=1e-12)
    np.testing.assert_allclose(st.s_features, st.kappa ** (1 / (L + 1)), rtol=1e-12)  # equal decays: e^(L+1) = s


def test_counts_near_2_to_the_62_are_summed_exactly():
    # Y-bar(c n) = sqrt(c) Y-bar(n), so minimum_value(c n, lam_W, lam_H / c) = minimum_value(n, lam_W, lam_H)
    n, c = np.array([4, 4, 2]), 2 ** 60
    big = (c * n).tolist()  # 2**62, 2**62, 2**61: N = 2.5 * 2**62 > 2**63 - 1
    for L, bias in [(1, True), (2, True), (3, False)]:
        expected = ufm.minimum_value(n, 1e-2, 1e-2, L=L, bias=bias)
        got = _no_warnings(ufm.minimum_value, big, 1e-2, 1e-2 / c, L=L, bias=bias)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        st, st_big = ufm.structure(n, 1e-2, 1e-2, L, bias), ufm.structure(big, 1e-2, 1e-2 / c, L, bias)
        np.testing.assert_allclose(st_big.s_product * st_big.s_features,
                                   np.sqrt(c) * st.s_product * st.s_features, rtol=1e-12, atol=1e-20)


def test_per_sample_matrices_of_more_than_2_to_the_63_samples_are_refused_naming_n():
    big = [2 ** 62, 2 ** 62]  # the closed forms work (above); H, Y and the labels have N columns
    for func in (imbalance.class_labels, imbalance.label_matrix):
        with pytest.raises(ValueError, match=r"^n sums to N = 9223372036854775808 samples"):
            func(big)
    with pytest.raises(ValueError, match=r"^n sums to N = 9223372036854775808 samples"):
        ufm.global_minimizer(big, 1e-3, 1e-3)


def test_counts_to_2_to_the_63_minus_1_are_taken_and_beyond_refused_naming_n():
    with pytest.raises(ValueError, match=r"^n must hold class counts below 2\*\*63"):
        ufm.minimum_value([2 ** 63, 5], 1e-3, 1e-3)
    with pytest.raises(ValueError, match=r"^n must hold class counts below 2\*\*63"):
        ufm.structure([1e19, 5], 1e-3, 1e-3)
    # the largest int64 is a count (it was refused, compared as the float 2.0**63): with Y-bar(c n) = sqrt(c) Y-bar(n),
    # minimum_value(c n, lam_W, lam_H / c) = minimum_value(n, lam_W, lam_H)
    c = 2 ** 63 - 1
    for L, bias in [(1, True), (2, True), (3, False)]:
        np.testing.assert_allclose(_no_warnings(ufm.minimum_value, [c, c, c], 1e-2, 1e-2 / c, L=L, bias=bias),
                                   ufm.minimum_value([1, 1, 1], 1e-2, 1e-2, L=L, bias=bias), rtol=1e-12)


@pytest.mark.parametrize("L", [300, 2000])
@pytest.mark.parametrize("bias", [True, False])
def test_deep_heads_give_the_minimum_of_the_scalar_problems(L, bias):
    # L = 300 failed with 'a must be strictly positive'; L = 2000 with an OverflowError in x^L
    n, lam_W, lam_H = N_SMALL, 1e-3, 1e-3
    value = _no_warnings(ufm.minimum_value, n, lam_W, lam_H, L=L, bias=bias)
    kappa = ufm.structure(n, lam_W, lam_H, L=L, bias=bias).kappa
    log_c = (np.log(lam_H) + L * np.log(lam_W)) / (L + 1)
    np.testing.assert_allclose(value, _per_mode_minimum(kappa, sum(n), log_c, L), rtol=1e-9)


def test_deep_head_keeps_a_mode_where_one_survives():
    st = _no_warnings(ufm.structure, N_SMALL, 1e-3, 1e-3, L=300, bias=False)
    assert st.s_product[0] > 0 and np.all(np.diff(st.s_product) <= 0)
    gap = ufm.threshold_gap(st.kappa, 10, 1e-3, 1e-3, 300)
    assert np.all((gap < 0) == (st.s_product > 0))  # Theorem 4.3's threshold decides which modes survive


@pytest.mark.parametrize("L", [1, 2, 3, 5])
@pytest.mark.parametrize("lam", [1e-4, 3e-3, 5e-2])
def test_ordinary_inputs_match_the_scalar_problems(L, lam):
    n = imbalance.class_counts(imbalance.PROFILES["cifar10"])
    for bias in (True, False):
        kappa = ufm.structure(n, lam, 2 * lam, L=L, bias=bias).kappa
        log_c = (np.log(2 * lam) + L * np.log(lam)) / (L + 1)
        np.testing.assert_allclose(ufm.minimum_value(n, lam, 2 * lam, L=L, bias=bias),
                                   _per_mode_minimum(kappa, n.sum(), log_c, L), rtol=1e-9)


# ------------------------------------------------------------------------------------------ spectrum

@pytest.mark.parametrize("seed", range(4))
def test_fast_secular_solver_matches_a_dense_svd(seed):
    rng = np.random.default_rng(seed)
    m = [50, 200, 600, 1500][seed]
    sizes = np.sort(rng.choice(np.arange(1, 20 * m), size=m, replace=False))[::-1]
    groups = list(zip(sizes.tolist(), (rng.integers(1, 4, size=m)).tolist()))
    dense = np.linalg.svd(imbalance.group_matrix(groups), compute_uv=False)
    fast = imbalance.group_singular_values(groups)
    np.testing.assert_allclose(fast[:-1], dense[:-1], rtol=1e-10)
    assert fast[-1] == 0.0 and dense[-1] < 1e-9 * dense[0]


def test_too_many_distinct_sizes_are_refused_up_front():
    m = imbalance.MAX_DISTINCT_SIZES + 1
    groups = [(m + 1 - i, 1) for i in range(m)]
    for func in (imbalance.ybar_singular_values, imbalance.group_singular_values):
        with pytest.raises(ValueError, match=rf"^groups has m = {m:,} distinct class sizes"):
            func(groups)
