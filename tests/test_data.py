"""nclib.data on fixtures written in torchvision's real on-disk formats (CIFAR-10 python batches, EMNIST IDX)."""
import gzip
import pathlib
import pickle
import re
import struct
import warnings

import numpy as np
import pytest

import nclib
from nclib import data, datafiles, imbalance, runs

#: The shared JPEG-decoded CIFAR-10 subset beside the checkout (scripts/make_cifar10_subset.py); tests on it skip
#: without it.
SHARED_CIFAR = data.SHARED_CIFAR10

PER_CLASS = 10  # fixture train rows per class (2 in each of the 5 batch files)


def _cifar_images(labels, rng):
    # class k images have mean level 20 k, so a selection can be checked from the pixels
    base = (20 * labels)[:, None, None, None].astype(np.int64)
    return np.clip(base + rng.integers(0, 5, (labels.size, 32, 32, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def cifar_root(tmp_path):
    """A CIFAR-10 root in the python-batch format: 5 train batches and a test batch, unpickled by torchvision."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.permutation(np.repeat(np.arange(10), PER_CLASS // 5 if name != "test_batch" else 2))
        imgs = _cifar_images(labels, rng)
        entry = {"batch_label": name, "labels": labels.tolist(),
                 "data": imgs.transpose(0, 3, 1, 2).reshape(len(labels), -1),  # CHW rows, as the real files
                 "filenames": [f"img{i}.png" for i in range(len(labels))]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(data.CIFAR10_CLASSES), "num_cases_per_batch": 10}, f, protocol=2)
    return tmp_path


def _idx(array: np.ndarray) -> bytes:
    code = 0x08  # unsigned byte
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def emnist_root(tmp_path):
    """EMNIST letters IDX files, gzipped as in the official archive, in torchvision's raw folder."""
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(1, 27), 6))  # torchvision's letters labels are 1..26
    upright = np.zeros((labels.size, 28, 28), np.uint8)
    upright[:, :14, :] = (labels * 9)[:, None, None]  # top half marks the class: orientation is checkable
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    images_file, labels_file = data.emnist_raw_files(tmp_path, train=True)
    with gzip.open(str(images_file) + ".gz", "wb") as f:
        f.write(_idx(upright.transpose(0, 2, 1)))  # stored transposed, like the real files
    with gzip.open(str(labels_file) + ".gz", "wb") as f:
        f.write(_idx(labels))
    return tmp_path, upright, labels


def test_preset_counts_and_profiles():
    asc = data.preset_counts("cifar10")
    assert asc.tolist() == [100, 100, 200, 200, 300, 300, 400, 400, 500, 500]
    assert data.preset_counts("cifar10", "descending").tolist() == asc[::-1].tolist()
    em = data.preset_counts("emnist-letters")
    assert em.tolist() == [1500] + [600] * 5 + [50] * 20
    assert imbalance.groups_of(em) == imbalance.PROFILES["emnist-letters"]
    with pytest.raises(ValueError, match="class_order"):
        data.preset_counts("cifar10", "sideways")
    with pytest.raises(ValueError, match="^preset"):
        data.preset_counts("mnist")
    for preset in ([1, 2], None, 3):  # not a name: refused by name, not a TypeError
        with pytest.raises(ValueError, match="^preset"):
            data.preset_counts(preset)


def test_cifar10_torchvision_format(cifar_root):
    ts = data.load("cifar10", data_path=cifar_root, counts=[5, 4, 3, 2, 1, 1, 2, 3, 4, 5], verify_checksums=False)
    assert ts.counts.tolist() == [5, 4, 3, 2, 1, 1, 2, 3, 4, 5]
    assert np.bincount(ts.y).tolist() == ts.counts.tolist()
    assert ts.x.shape == (ts.N, 3072) and ts.x.dtype == np.float32
    # each image's pixel level says its class: rows and labels stay together through the selection
    np.testing.assert_array_equal(ts.images.reshape(ts.N, -1).min(1) // 20, ts.y)
    assert set(ts.provenance["source_sha256"]) == {f"data_batch_{i}" for i in range(1, 6)} | {"batches.meta"}
    assert ts.classes[0] == "airplane"


def test_cifar10_is_normalized_as_the_reference_code_does(cifar_root):
    """ToTensor + Normalize with the literals of the reference code (Dang et al. 2023, datasets_unbalance.py),
    through torchvision itself: the often-copied stds (0.2023, 0.1994, 0.2010), not the true ones, in RGB order."""
    from PIL import Image
    from torchvision import transforms

    ts = data.load("cifar10", data_path=cifar_root, counts=[5, 4, 3, 2, 1, 1, 2, 3, 4, 5], verify_checksums=False)
    reference = transforms.Compose([transforms.ToTensor(), transforms.Normalize(
        mean=[0.4914, 0.4822, 0.4465], std=[0.2023, 0.1994, 0.2010])])
    expected = np.stack([reference(Image.fromarray(im)).numpy().reshape(-1) for im in ts.images])
    np.testing.assert_allclose(ts.x, expected, rtol=0, atol=1e-6)


def test_the_classes_of_a_run_are_the_first_of_the_dataset(cifar_root, emnist_root):
    """counts with fewer classes than the dataset take classes 0..K-1 (select_per_class), and name them so."""
    ts = data.load("cifar10", data_path=cifar_root, counts=[5, 5], verify_checksums=False)
    assert ts.classes == ("airplane", "automobile")
    np.testing.assert_array_equal(ts.images.reshape(ts.N, -1).min(1) // 20, [0] * 5 + [1] * 5)  # their pixels
    root, _, _ = emnist_root
    assert data.load("emnist-letters", data_path=root, counts=[3, 3, 3]).classes == ("a", "b", "c")
    assert data.load("letters-synthetic", counts=[2, 2]).classes == ("a", "b")


def test_cifar10_checksums_are_checked_by_default(cifar_root, monkeypatch):
    """By default torchvision's md5 check of the official batches runs, and it is what refuses the fixture, whose
    batches load without it; verify_checksums=False skips it."""
    import torchvision.datasets.cifar as tv_cifar

    real, checked = tv_cifar.check_integrity, []

    def recorded(fpath, md5=None):
        checked.append((pathlib.Path(fpath).name, md5, real(fpath, md5)))
        return checked[-1][2]

    monkeypatch.setattr(tv_cifar, "check_integrity", recorded)
    with pytest.raises(ValueError) as refused:
        data.load("cifar10", data_path=cifar_root, counts=[1] * 10)
    assert checked == [(*tv_cifar.CIFAR10.train_list[0], False)]  # the first batch fails its md5: refused there
    assert isinstance(refused.value.__cause__, RuntimeError) and not isinstance(refused.value, data.DamagedFileError)
    checked.clear()
    assert data.load("cifar10", data_path=cifar_root, counts=[1] * 10, verify_checksums=False).N == 10
    assert checked == []


def test_cifar10_count_too_large(cifar_root):
    with pytest.raises(ValueError, match=r"counts\[2\] = 99 is larger than the 10 samples"):
        data.load("cifar10", data_path=cifar_root, counts=[1, 1, 99, 1, 1, 1, 1, 1, 1, 1], verify_checksums=False)


def test_selection_is_deterministic_by_seed(cifar_root):
    kw = dict(data_path=cifar_root, counts=[3] * 10, verify_checksums=False)
    a, b, c = data.load("cifar10", seed=1, **kw), data.load("cifar10", seed=1, **kw), data.load("cifar10", seed=2, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.provenance["data_sha256"] == b.provenance["data_sha256"] != c.provenance["data_sha256"]
    first = data.load("cifar10", selection="first", **kw)
    # the first 3 rows of each class in the order torchvision reads the batches, not a permutation of them
    images, labels, _ = data.load_cifar10_torchvision(cifar_root, verify_checksums=False)
    expect = np.concatenate([images[labels == k][:3] for k in range(10)])
    np.testing.assert_array_equal(first.images, expect)
    assert not np.array_equal(a.images, expect)


def test_random_selection_is_nested_and_each_class_its_own():
    """A class's rows depend on its own count and the seed only: a smaller count takes a subset of a larger one's
    rows, and another class's count leaves them alone (the CPU-scale profile is a subset of the paper-scale one)."""
    y = np.random.default_rng(4).permutation(np.repeat(np.arange(3), 20))

    def rows_of(counts, k, seed=0):
        rows = data.select_per_class(y, counts, seed=seed)
        return rows[y[rows] == k]

    small, large = rows_of([3, 5, 7], 0), rows_of([12, 5, 7], 0)
    assert small.size == 3 and large.size == 12 and set(small) < set(large)
    np.testing.assert_array_equal(rows_of([3, 5, 7], 1), rows_of([12, 5, 7], 1))
    np.testing.assert_array_equal(rows_of([3, 5, 7], 2), rows_of([1, 20, 7], 2))
    assert set(rows_of([20, 5, 7], 0)) == set(np.flatnonzero(y == 0))  # all of them, whatever the seed
    assert not np.array_equal(rows_of([3, 5, 7], 1), rows_of([3, 5, 7], 1, seed=1))


def _other_versions(prov: dict) -> dict:
    """{package: (recorded, installed)} for each package whose release may give a letters run other data with no change
    here, recorded by the run's provenance ``prov`` at another version than this process has: the letters stand-in
    is drawn by matplotlib (its bundled fonts) and moved by numpy and scipy (``versions``), and every letters set is
    resized by Pillow (its data record's ``pillow``, data.letters_input).  A version the provenance does not record
    (Pillow, in a run made before it was recorded) is not recorded, not a difference: left out."""
    import matplotlib
    import PIL
    import scipy

    recorded = {k: prov["versions"].get(k) for k in ("numpy", "scipy", "matplotlib")}
    if "pillow" in prov["data"]:
        recorded["pillow"] = prov["data"]["pillow"]
    now = {"numpy": np.__version__, "scipy": scipy.__version__, "matplotlib": matplotlib.__version__,
           "pillow": PIL.__version__}
    return {k: (v, now[k]) for k, v in recorded.items() if v != now[k]}


@pytest.mark.parametrize("run", [
    pytest.param("fig1/fig1-L1", marks=pytest.mark.skipif(
        not SHARED_CIFAR.is_file(), reason="the shared CIFAR-10 subset is not beside the checkout")),
    "fig2/fig2-L1",  # letters-synthetic, rendered from the seed: no file to read
])
def test_committed_runs_train_on_the_data_they_recorded(run):
    """Two committed CPU-scale runs, one on the shared CIFAR-10 subset and one on the letters stand-in: their
    parameters, given to load_for, give the training data (and images) of the sha256 their provenance recorded, so
    neither the rows chosen nor the letters rendered have changed since they were trained."""
    params, _, prov = runs.load_run(nclib.ROOT / "results" / "figures" / "cpu-scale" / run)
    if params["dataset"] == "cifar10":  # made from the shared file, which lies beside this checkout here
        assert prov["data"]["source_sha256"] == {SHARED_CIFAR.name: data.SHARED_CIFAR10_SHA256}
        params = {**params, "data_path": str(SHARED_CIFAR)}
    else:
        assert params["dataset"] == "letters-synthetic" and params["data_path"] is None
        # a release of matplotlib, numpy, scipy or Pillow may draw or resize other pixels with no change here, so
        # the comparison holds only at the versions recorded
        other = _other_versions(prov)
        if other:
            pytest.skip(f"the run rendered its letters with other versions (recorded, installed): {other}")
    ts = data.load_for(params)
    assert ts.N == prov["N"]
    assert ts.provenance["data_sha256"] == prov["data_sha256"] == prov["data"]["data_sha256"]
    assert ts.provenance["images_sha256"] == prov["data"]["images_sha256"]


def test_the_letters_record_the_version_of_pillow_that_resized_them(cifar_root, emnist_root):
    """Pillow resizes the letters, the stand-in and EMNIST's, to the network's input (letters_input): its version is
    in their data record, which CIFAR-10 (fed as stored) and the Gaussian mixture (no pixels) do not get."""
    import PIL

    root, _, _ = emnist_root
    for ts in (data.load("letters-synthetic", counts=[2, 1]), data.load("emnist-letters", data_path=root,
                                                                         counts=[2, 1])):
        assert ts.provenance["pillow"] == PIL.__version__ and "input" in ts.provenance
    for ts in (data.load("cifar10", data_path=cifar_root, counts=[2, 1], verify_checksums=False),
               data.load("synthetic", counts=[2, 1])):
        assert "pillow" not in ts.provenance


def test_random_selection_takes_the_rows_it_always_took():
    """The rows "random" takes at a seed, fixed: one PCG64 stream seeded with the seed permutes the classes' rows in
    class order, each class's chosen rows sorted.  The committed runs' data_sha256 reproduce only while these do
    (test_committed_runs_train_on_the_data_they_recorded checks two runs through the whole of load)."""
    y = np.tile(np.arange(3), 6)  # rows 0, 3, 6, ... are class 0; 1, 4, 7, ... class 1; 2, 5, 8, ... class 2
    assert data.select_per_class(y, [4, 3, 2], seed=0).tolist() == [6, 9, 12, 15, 4, 13, 16, 8, 11]
    assert data.select_per_class(y, [4, 3, 2], seed=1).tolist() == [0, 3, 6, 12, 7, 10, 16, 5, 17]


def test_select_per_class_refuses_labels_that_are_not_1d_integers():
    for y in (np.repeat(np.arange(3), 4).reshape(3, 4), np.array([0.5, 1.0, 0.0]), np.array([True, False]),
              np.array(["a", "b"]), np.array([], dtype=np.int64), None):
        with pytest.raises(ValueError, match="^y "):
            data.select_per_class(y, [1])
    with pytest.raises(ValueError, match=r"counts\[1\] = 2"):  # a short class in string-free labels
        data.select_per_class(np.array([0, 0, 1]), [1, 2])
    for y in (np.array([-1, 0, 1]), np.array([0, 1, -3], dtype=np.int8)):  # refused, not dropped
        with pytest.raises(ValueError, match="^y "):
            data.select_per_class(y, [1, 1])


def test_select_per_class_leaves_out_the_classes_counts_does_not_name():
    y = np.array([2, 0, 1, 0, 1, 2])
    assert data.select_per_class(y, [1, 2], selection="first").tolist() == [1, 2, 4]
    assert data.select_per_class(y.astype(np.uint8), [2, 1], selection="first").tolist() == [1, 3, 2]


def test_select_per_class_first_rows():
    y = np.array([1, 0, 1, 0, 1, 0])
    assert data.select_per_class(y, [2, 1], selection="first").tolist() == [1, 3, 0]
    with pytest.raises(ValueError, match="selection"):
        data.select_per_class(y, [1, 1], selection="best")


def test_emnist_letters_torchvision_format(emnist_root):
    root, upright, labels = emnist_root
    ts = data.load("emnist-letters", data_path=root, counts=[3] * 26, seed=0)
    assert ts.K == 26 and np.bincount(ts.y).tolist() == [3] * 26
    # labels 1..26 -> 0..25, and images back upright (top half carries the class mark)
    np.testing.assert_array_equal(ts.images[:, 0, 0], (ts.y + 1) * 9)
    np.testing.assert_array_equal(ts.images[:, 27, 0], 0)
    assert ts.classes[:3] == ("a", "b", "c")
    files = data.emnist_raw_files(root)
    assert all(f.is_file() for f in files)  # the .gz files were decompressed where torchvision reads them
    assert set(ts.provenance["source_sha256"]) == {f.name for f in files}


@pytest.mark.parametrize("bad", [0, 27])
def test_emnist_letters_labels_outside_1_to_26_are_refused_by_the_reader(tmp_path, bad):
    """load_emnist_letters_torchvision returns labels 0..25 or refuses the files, naming data_path: torchvision's
    letters labels 1..26 are shifted down by one, so a 0 or a 27 in the labels file is no letter (data.load's
    check_labels refuses it again, but the reader is called on its own too)."""
    labels = np.repeat(np.arange(1, 27), 2)
    labels[5] = bad
    (tmp_path / "EMNIST" / "raw").mkdir(parents=True)
    images_file, labels_file = data.emnist_raw_files(tmp_path)
    images_file.write_bytes(_idx(np.zeros((labels.size, 28, 28), np.uint8)))
    labels_file.write_bytes(_idx(labels))
    with pytest.raises(ValueError, match="^data_path") as err:
        datafiles.load_emnist_letters_torchvision(tmp_path)
    assert str(tmp_path) in str(err.value)
    labels_file.write_bytes(_idx(np.repeat(np.arange(1, 27), 2)))  # the same files with letters only: read
    assert datafiles.load_emnist_letters_torchvision(tmp_path)[1].tolist() == np.repeat(np.arange(26), 2).tolist()


def test_emnist_unpacked_by_two_processes_at_once_comes_back_whole(emnist_root, monkeypatch):
    """The fault: two processes unpacking one .gz shared one temporary file; the second emptied it while the first
    wrote, and the first renamed a partly zeroed file into place (the size check passed).  Here a second unpacking
    runs to its end half-way through the first one's: both read the images that were packed, nothing else is left."""
    from nclib import datafiles

    root, upright, labels = emnist_root
    real_copy = datafiles.shutil.copyfileobj
    second = []

    def interrupted_copy(src, dst, length=0):
        dst.write(src.read(1000))
        if not second:  # another process starts unpacking now and finishes first
            second.append(None)
            second[0] = datafiles.load_emnist_letters_torchvision(root)
        real_copy(src, dst)

    monkeypatch.setattr(datafiles.shutil, "copyfileobj", interrupted_copy)
    first = datafiles.load_emnist_letters_torchvision(root)
    for images, y, _ in (first, second[0]):
        np.testing.assert_array_equal(images, upright)
        np.testing.assert_array_equal(y, labels - 1)
    raw = data.emnist_raw_files(root)[0].parent
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        [f.name for f in data.emnist_raw_files(root)] + [f.name + ".gz" for f in data.emnist_raw_files(root)])



def test_emnist_letters_npz_in_raw_orientation_comes_back_upright(tmp_path, emnist_root):
    """An .npz as nclib.data describes an EMNIST subset: x_train transposed (torchvision's raw
    orientation), y_train 0..25, and its optional members, which nothing requires."""
    _, upright, labels = emnist_root
    path = tmp_path / "emnist.npz"
    np.savez(path, x_train=upright.transpose(0, 2, 1), y_train=labels - 1, classes=np.array(data.LETTERS),
             orientation=np.array("torchvision_raw_idx_transposed"))
    ts = data.load("emnist-letters", data_path=path, counts=[2] * 26, selection="first")
    expect = np.concatenate([upright[labels - 1 == k][:2] for k in range(26)])
    np.testing.assert_array_equal(ts.images, expect)  # the top half carries the mark, as drawn
    np.testing.assert_array_equal(ts.images[:, 0, 27], (ts.y + 1) * 9)
    np.testing.assert_array_equal(ts.images[:, 27, 0], 0)
    np.savez(tmp_path / "plain.npz", x_train=upright.transpose(0, 2, 1), y_train=labels - 1)  # no optional members
    plain = data.load("emnist-letters", data_path=tmp_path / "plain.npz", counts=[2] * 26, selection="first")
    np.testing.assert_array_equal(plain.images, expect)  # without orientation: the raw orientation, made upright
    assert "orientation" not in plain.provenance


def test_emnist_letters_npz_orientation_is_read_and_an_unknown_one_refused(tmp_path, emnist_root):
    """The optional orientation member: the documented raw orientation is transposed, "upright" is kept as it is, and
    another value is refused naming data_path and the value (it would feed the network turned letters)."""
    _, upright, labels = emnist_root
    expect = np.concatenate([upright[labels - 1 == k][:2] for k in range(26)])
    for stored, orientation in ((upright.transpose(0, 2, 1), "torchvision_raw_idx_transposed"), (upright, "upright")):
        np.savez(tmp_path / "e.npz", x_train=stored, y_train=labels - 1, orientation=np.array(orientation))
        ts = data.load("emnist-letters", data_path=tmp_path / "e.npz", counts=[2] * 26, selection="first")
        np.testing.assert_array_equal(ts.images, expect)
        assert ts.provenance["orientation"] == orientation
    for bad, named in ((np.array("sideways"), "'sideways'"), (np.array(["upright"]), r"shape \(1,\)"),
                       (np.int64(1), "dtype int64")):
        np.savez(tmp_path / "e.npz", x_train=upright, y_train=labels - 1, orientation=bad)
        with pytest.raises(ValueError, match=f"^data_path .*e.npz.*orientation .*{named}"):
            data.load("emnist-letters", data_path=tmp_path / "e.npz", counts=[2] * 26)


def test_emnist_preset_needs_enough_rows(emnist_root):
    root, _, _ = emnist_root
    with pytest.raises(ValueError, match="larger than"):
        data.load("emnist-letters", data_path=root)  # the preset asks 1500 'a's


def test_npz(tmp_path):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(10), 4)
    np.savez(tmp_path / "sub.npz", x_train=_cifar_images(y, rng), y_train=y)
    ts = data.load("cifar10", data_path=tmp_path / "sub.npz", counts=[4, 3, 2, 1, 1, 1, 1, 2, 3, 4])
    np.testing.assert_array_equal(ts.images.reshape(ts.N, -1).min(1) // 20, ts.y)
    assert ts.provenance["source_sha256"] == {"sub.npz": data.sha256_file(tmp_path / "sub.npz")}
    np.savez(tmp_path / "bad.npz", images=y)
    with pytest.raises(ValueError, match="x_train and y_train"):
        data.load("cifar10", data_path=tmp_path / "bad.npz", counts=[1] * 10)


@pytest.mark.parametrize("y, lo, hi", [
    (np.array([0, 2**64 - 1], dtype=np.uint64), 0, 2**64 - 1),  # would wrap to -1 in int64
    (np.array([0.0, 1e20]), 0, 10**20),  # would cast to -2**63, with a RuntimeWarning
    (np.array([3, 2**63], dtype=np.uint64), 3, 2**63),
])
def test_npz_labels_out_of_range_are_named_as_the_file_holds_them(tmp_path, y, lo, hi):
    path = tmp_path / "wide.npz"
    np.savez(path, x_train=np.zeros((y.size, 32, 32, 3), np.uint8), y_train=y)
    assert data.load_npz(path)[1].dtype == y.dtype  # not cast: int64 cannot hold the values
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="^y_train") as info:
            data.load("cifar10", data_path=path, counts=[1, 1])
    numbers = {int(v) for v in re.findall(r"-?\d+", str(info.value))}
    assert {lo, hi} <= numbers and min(numbers) >= 0


def test_npz_integer_labels_int64_holds_come_back_as_int64(tmp_path):
    for y in (np.arange(10, dtype=np.uint8), np.arange(10, dtype=np.uint64), np.arange(10.0),
              np.array([-2.0**63, 2.0**62])):
        np.savez(tmp_path / "y.npz", x_train=np.zeros((y.size, 32, 32, 3), np.uint8), y_train=y)
        got = data.load_npz(tmp_path / "y.npz")[1]
        assert got.dtype == np.int64 and got.tolist() == [int(v) for v in y]


def test_a_file_that_is_no_npz_is_named_so_and_object_arrays_as_pickled(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("x_train,y_train\n0,1\n")
    with pytest.raises(data.DamagedFileError) as info:
        data.load_npz(text)
    assert info.value.path == text and "not an .npz" in str(info.value) and "pickled" not in str(info.value)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([np.zeros(3), np.zeros(2)], dtype=object), y_train=np.arange(2))
    with pytest.raises(data.DamagedFileError) as info:
        data.load_npz(objects)
    assert info.value.path == objects and "pickled" in str(info.value) and "not an .npz" not in str(info.value)


def test_check_labels_takes_the_image_count_as_a_non_negative_integer():
    assert data.check_labels(np.arange(3, dtype=np.uint8), "cifar10", np.int64(3)).dtype == np.int64
    for n_images in ("3", 3.0, True, -3, None):
        with pytest.raises(ValueError, match="^n_images"):
            data.check_labels(np.arange(3), "cifar10", n_images)
    with pytest.raises(ValueError, match="^x_train .* y_train"):  # a count that differs names both arrays
        data.check_labels(np.arange(3), "cifar10", 4)


def test_sha256_arrays_refuses_arrays_of_python_objects():
    text = np.array(["a", "b"])
    assert data.sha256_arrays(text, np.arange(2)) == data.sha256_arrays(text.copy(), np.arange(2))
    for objects in (np.array(["a", "b"], dtype=object), None):
        with pytest.raises(ValueError, match=r"^arrays\[1\]"):
            data.sha256_arrays(np.arange(2), objects)


@pytest.mark.parametrize("call, name", [
    (lambda p: data.load_npz(p), "data_path"),
    (lambda p: data.emnist_raw_files(p), "root"),
    (lambda p: datafiles.temporary_path(p), "path"),
])
def test_file_functions_refuse_what_is_no_path(call, name):
    for bad in (None, 3):
        with pytest.raises(ValueError, match=f"^{name} "):
            call(bad)


def test_temporary_path_lies_beside_its_file_and_needs_a_file_name(tmp_path):
    tmp = datafiles.temporary_path(str(tmp_path / "f.npz"))
    assert tmp.parent == tmp_path and tmp.name.startswith(".f.npz.")
    assert tmp != datafiles.temporary_path(tmp_path / "f.npz")  # another random part each time
    with pytest.raises(ValueError, match="^path "):
        datafiles.temporary_path("")


def test_npz_classes_must_be_cifar10s_in_label_order(tmp_path):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(10), 2)
    x = _cifar_images(y, rng)
    np.savez(tmp_path / "named.npz", x_train=x, y_train=y, classes=np.array(data.CIFAR10_CLASSES))
    assert data.load("cifar10", data_path=tmp_path / "named.npz", counts=[2] * 10).classes == data.CIFAR10_CLASSES
    perm = np.arange(10)[::-1]  # labels and names permuted together: class 0 would be called airplane
    np.savez(tmp_path / "permuted.npz", x_train=x, y_train=perm[y], classes=np.array(data.CIFAR10_CLASSES)[perm])
    with pytest.raises(ValueError, match="^data_path .*permuted.npz"):
        data.load("cifar10", data_path=tmp_path / "permuted.npz", counts=[2] * 10)
    np.savez(tmp_path / "nine.npz", x_train=x, y_train=y, classes=np.array(data.CIFAR10_CLASSES[:9]))
    with pytest.raises(ValueError, match="^data_path .*nine.npz"):
        data.load("cifar10", data_path=tmp_path / "nine.npz", counts=[2] * 10)


def test_emnist_npz_classes_must_be_a_to_z_in_label_order(tmp_path):
    """An EMNIST letters .npz's classes (nclib.data describes one) are read as a CIFAR-10 file's: a..z
    in label order is taken, another coding is refused naming data_path (label 0 would be called "a")."""
    y = np.repeat(np.arange(26), 2)
    x = np.random.default_rng(5).integers(0, 256, (y.size, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "named.npz", x_train=x, y_train=y, classes=np.array(data.LETTERS))
    assert data.load("emnist-letters", data_path=tmp_path / "named.npz", counts=[2] * 26).classes == data.LETTERS
    perm = np.arange(26)[::-1]  # labels and names permuted together: z's images would be called "a"
    np.savez(tmp_path / "reversed.npz", x_train=x, y_train=perm[y], classes=np.array(data.LETTERS)[perm])
    with pytest.raises(ValueError, match=r"^data_path .*reversed.npz' names its labels \['z', 'y'"):
        data.load("emnist-letters", data_path=tmp_path / "reversed.npz", counts=[2] * 26)
    np.savez(tmp_path / "short.npz", x_train=x, y_train=y, classes=np.array(data.LETTERS[:25]))
    with pytest.raises(ValueError, match="^data_path .*short.npz"):
        data.load("emnist-letters", data_path=tmp_path / "short.npz", counts=[2] * 26)


@pytest.mark.parametrize("names", [list(reversed(data.CIFAR10_CLASSES)), list(data.CIFAR10_CLASSES[:9]),
                                   [f"class_{k}" for k in range(10)]])
def test_cifar10_batches_meta_must_name_cifar10s_classes_in_label_order(cifar_root, names):
    """The python batches' class names (batches.meta), as an .npz's classes: another coding is refused naming
    data_path, where it was read as CIFAR-10 and its labels given CIFAR-10's names."""
    meta = cifar_root / "cifar-10-batches-py" / "batches.meta"
    with open(meta, "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": 10}, f, protocol=2)
    with pytest.raises(ValueError, match=f"^data_path {str(cifar_root)!r}"):
        data.load("cifar10", data_path=cifar_root, counts=[2] * 10, verify_checksums=False)
    with open(meta, "wb") as f:  # no class names at all: the file is damaged
        pickle.dump({"num_cases_per_batch": 10}, f, protocol=2)
    with pytest.raises(data.DamagedFileError) as info:
        data.load("cifar10", data_path=cifar_root, counts=[2] * 10, verify_checksums=False)
    assert info.value.path == meta


def _chw(images, mean, std):
    """(x/255 - mean)/std per channel in float64, flattened channel by channel (as ToTensor + view)."""
    f = (images.astype(np.float64) / 255 - mean) / std
    return f.transpose(0, 3, 1, 2).reshape(len(images), -1)


def test_standardize_and_none_against_numpy(cifar_root):
    kw = dict(data_path=cifar_root, counts=[5, 4, 3, 2, 1, 1, 2, 3, 4, 5], verify_checksums=False)
    std = data.load("cifar10", normalization="standardize", **kw)
    f = std.images.astype(np.float64) / 255
    np.testing.assert_allclose(std.x, _chw(std.images, f.mean((0, 1, 2)), f.std((0, 1, 2))), rtol=1e-5, atol=1e-5)
    per_channel = std.x.reshape(std.N, 3, -1).transpose(1, 0, 2).reshape(3, -1)
    np.testing.assert_allclose(per_channel.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(1), 1, atol=1e-5)
    none = data.load("cifar10", normalization="none", **kw)
    np.testing.assert_allclose(none.x, _chw(none.images, 0.0, 1.0), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(none.images, std.images)  # the same rows, scaled otherwise
    # the letters: standardized over the 32 x 32 x 3 inputs the network sees
    letters = data.load("letters-synthetic", counts=[2] * 26, seed=1, normalization="standardize")
    net = data.letters_input(letters.images)
    g = net.astype(np.float64) / 255
    np.testing.assert_allclose(letters.x, _chw(net, g.mean((0, 1, 2)), g.std((0, 1, 2))), rtol=1e-5, atol=1e-5)


def test_constant_channel_cannot_be_standardized(tmp_path):
    y = np.repeat(np.arange(10), 2)
    x = np.zeros((20, 32, 32, 3), np.uint8)
    x[..., 0] = np.arange(20)[:, None, None]
    x[..., 1] = 7 * np.arange(20)[:, None, None]  # channel 2 alone stays 0
    np.savez(tmp_path / "flat.npz", x_train=x, y_train=y)
    with pytest.raises(ValueError, match="^normalization .*channel 2"):
        data.load("cifar10", data_path=tmp_path / "flat.npz", counts=[2] * 10, normalization="standardize")
    assert np.isfinite(data.load("cifar10", data_path=tmp_path / "flat.npz", counts=[2] * 10).x).all()


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="the shared CIFAR-10 subset is not beside the checkout")
def test_first_rows_of_the_shared_cifar10_subset():
    """selection="first" on the shared file takes the files 0000.jpg, 0001.jpg, ... of each class (the file records
    each row's source in train_files), airplane the 100 of the reference order."""
    ts = data.load("cifar10", data_path=SHARED_CIFAR, selection="first")
    assert ts.counts.tolist() == [100, 100, 200, 200, 300, 300, 400, 400, 500, 500] and ts.N == 3000
    with np.load(SHARED_CIFAR, allow_pickle=False) as f:
        x, files = f["x_train"], f["train_files"].tolist()
    row = {name: i for i, name in enumerate(files)}
    rows = [row[f"train/{c}/{i:04d}.jpg"] for c, n_k in zip(ts.classes, ts.counts) for i in range(n_k)]
    np.testing.assert_array_equal(ts.images, x[rows])
    np.testing.assert_array_equal(ts.images[0], x[row["train/airplane/0000.jpg"]])
    assert ts.classes[0] == "airplane" and np.bincount(ts.y).tolist() == ts.counts.tolist()


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="the shared CIFAR-10 subset is not beside the checkout")
def test_a_run_on_the_shared_cifar10_subset_says_its_pixels_are_jpeg_decoded():
    ts = data.load("cifar10", data_path=SHARED_CIFAR, counts=[1, 1])
    with np.load(SHARED_CIFAR, allow_pickle=False) as f:
        assert ts.provenance["file_source"] == str(f["source"]) and ts.provenance["lossy_jpeg"] is True
    assert ts.provenance["source"] == "npz file cifar10_subset.npz"  # the reader, as before


@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="the shared CIFAR-10 subset is not beside the checkout")
def test_a_changed_copy_of_the_shared_subset_does_not_pass_as_it(tmp_path):
    """The provenance says whether the .npz is the shared subset byte for byte (nclib.datafiles.SHARED_CIFAR10_SHA256):
    a copy with its pixels changed keeps the file's own source member, and is read, but as another file."""
    ts = data.load("cifar10", data_path=SHARED_CIFAR, counts=[2] * 10)
    assert ts.provenance["shared_subset"] is True
    assert ts.provenance["source_sha256"] == {"cifar10_subset.npz": data.SHARED_CIFAR10_SHA256}
    with np.load(SHARED_CIFAR, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(tmp_path / "cifar10_subset.npz", **dict(arrays, x_train=255 - arrays["x_train"]))
    inverted = data.load("cifar10", data_path=tmp_path / "cifar10_subset.npz", counts=[2] * 10)
    assert inverted.provenance["shared_subset"] is False
    assert inverted.provenance["file_source"] == ts.provenance["file_source"]  # what the file says of itself
    np.testing.assert_array_equal(inverted.images, 255 - ts.images)


def test_an_npz_record_of_its_source_reaches_the_provenance(tmp_path):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(10), 2)
    x = _cifar_images(y, rng)
    np.savez(tmp_path / "plain.npz", x_train=x, y_train=y)
    plain = data.load("cifar10", data_path=tmp_path / "plain.npz", counts=[2] * 10).provenance
    assert "file_source" not in plain and "lossy_jpeg" not in plain and plain["shared_subset"] is False
    np.savez(tmp_path / "png.npz", x_train=x, y_train=y, source=np.array("a PNG copy"), lossy_jpeg=np.False_)
    png = data.load("cifar10", data_path=tmp_path / "png.npz", counts=[2] * 10).provenance
    assert (png["file_source"], png["lossy_jpeg"]) == ("a PNG copy", False)
    assert png["data_sha256"] == plain["data_sha256"]  # the same training data
    letters = np.zeros((26, 28, 28), np.uint8)
    np.savez(tmp_path / "letters.npz", x_train=letters, y_train=np.arange(26), source=np.array("scans"))
    assert data.load("emnist-letters", data_path=tmp_path / "letters.npz", counts=[1] * 26).provenance[
        "file_source"] == "scans"
    for bad in (dict(source=np.array(["a", "b"])), dict(source=np.int64(3)), dict(lossy_jpeg=np.array("yes")),
                dict(lossy_jpeg=np.array([True]))):
        np.savez(tmp_path / "bad.npz", x_train=x, y_train=y, **bad)
        with pytest.raises(ValueError, match="^data_path"):
            data.load("cifar10", data_path=tmp_path / "bad.npz", counts=[2] * 10)
    with pytest.raises(ValueError, match="^dataset"):
        data.npz_record(tmp_path / "png.npz", "synthetic")


def test_gpu_data_slice_keeps_the_record_of_its_source(tmp_path):
    import importlib.util

    from nclib import figures

    spec = importlib.util.spec_from_file_location("gpu_data_slice", nclib.ROOT / "scripts" / "gpu_data_slice.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    y = np.repeat(np.arange(10), 500)
    src, dest = tmp_path / "full.npz", tmp_path / "slice.npz"
    np.savez(src, x_train=_cifar_images(y, np.random.default_rng(0)), y_train=y, classes=np.array(data.CIFAR10_CLASSES),
             source=np.array("a JPEG copy"), lossy_jpeg=np.True_)
    script.main(str(src), str(dest))
    counts = figures.figure_counts(1, "gpu")
    full, sliced = (data.load("cifar10", data_path=p, counts=counts).provenance for p in (src, dest))
    assert sliced["data_sha256"] == full["data_sha256"]
    assert (sliced["file_source"], sliced["lossy_jpeg"]) == ("a JPEG copy", True)


def _slice_of(src: pathlib.Path, dest: pathlib.Path, rows, seed, selection, **members) -> pathlib.Path:
    """The rows ``rows`` of the .npz ``src`` written to ``dest`` as scripts/gpu_data_slice.py writes a slice (cut by
    ``seed`` and ``selection``, or, with None, as its older forms, which did not store them); ``members`` replace
    or add members."""
    with np.load(src, allow_pickle=False) as f:
        x, y = f["x_train"], f["y_train"]
    cut = {} if seed is None else {"slice_seed": np.int64(seed), "slice_selection": np.array(selection)}
    np.savez(dest, **{"x_train": x[rows], "y_train": y[rows], "source_rows": np.asarray(rows, np.int64),
                      "source_sha256": np.array(data.sha256_file(src)), **cut, **members})
    return dest


def test_a_slice_of_another_file_is_recorded_as_a_slice(tmp_path):
    """The fault: a run on the slice of the GPU runs recorded ``seed: s, selection: "random"`` and ``shared_subset:
    False`` alone, while its rows were those seed 0 chose from another file, whatever s.  The provenance's ``slice``
    now says which file, seed and selection the rows were cut from and by; the run's seed and selection choose among
    the slice's rows only (every row, where the counts are the slice's class sizes, as the stability runs rely on)."""
    y = np.repeat(np.arange(10), 6)
    src = tmp_path / "full.npz"
    np.savez(src, x_train=_cifar_images(y, np.random.default_rng(5)), y_train=y)
    counts = [3] * 10
    rows = data.select_per_class(y, counts, seed=0, selection="random")
    cut = _slice_of(src, tmp_path / "slice.npz", rows, 0, "random")
    full0 = data.load("cifar10", data_path=src, counts=counts, seed=0)
    assert "slice" not in full0.provenance
    want = {"source_sha256": data.sha256_file(src), "source_is_shared_subset": False, "rows": 30, "seed": 0,
            "selection": "random"}
    for seed, selection in ((0, "random"), (1, "random"), (7, "first")):
        got = data.load("cifar10", data_path=cut, counts=counts, seed=seed, selection=selection)
        assert got.provenance["slice"] == want
        assert (got.provenance["seed"], got.provenance["selection"]) == (seed, selection)  # the run's own
        assert got.provenance["data_sha256"] == full0.provenance["data_sha256"]  # seed 0's rows at every seed
    assert data.load("cifar10", data_path=src, counts=counts, seed=1).provenance["data_sha256"] != \
        full0.provenance["data_sha256"]  # the full file gives seed 1 its own rows
    smaller = data.load("cifar10", data_path=cut, counts=[2] * 10, seed=4)  # fewer rows: chosen among the slice's
    assert smaller.provenance["slice"] == want and smaller.N == 20
    older = _slice_of(src, tmp_path / "older.npz", rows, None, None)  # an older form: the cut not stored
    assert data.load("cifar10", data_path=older, counts=counts).provenance["slice"] == dict(want, seed=None,
                                                                                             selection=None)
    shared = _slice_of(src, tmp_path / "shared.npz", rows, 0, "random",
                       source_sha256=np.array(data.SHARED_CIFAR10_SHA256))
    record = data.load("cifar10", data_path=shared, counts=counts).provenance
    assert record["slice"]["source_is_shared_subset"] is True and record["shared_subset"] is False
    for bad in (dict(source_rows=np.arange(29)), dict(source_rows=np.zeros(30, np.int64)),
                dict(source_rows=-np.arange(30)), dict(source_rows=np.arange(30.0)),
                dict(source_sha256=np.array("not a sha256")), dict(source_sha256=np.array(["0" * 64] * 2)),
                dict(slice_seed=np.int64(-1)), dict(slice_seed=np.array([0, 1])), dict(slice_seed=np.float64(0)),
                dict(slice_selection=np.array("best")), dict(slice_selection=np.array(["random"]))):
        _slice_of(src, tmp_path / "bad.npz", rows, 0, "random", **bad)
        with pytest.raises(ValueError, match="^data_path"):
            data.load("cifar10", data_path=tmp_path / "bad.npz", counts=counts)
    with np.load(cut, allow_pickle=False) as f:
        members = dict(f)
    for left_out in ("slice_selection", "source_sha256"):  # a seed without its selection; rows without their file
        np.savez(tmp_path / "part.npz", **{k: v for k, v in members.items() if k != left_out})
        with pytest.raises(ValueError, match="^data_path"):
            data.load("cifar10", data_path=tmp_path / "part.npz", counts=counts)


@pytest.mark.parametrize("dataset", ["cifar10", "emnist-letters"])
def test_bool_images_are_refused_with_a_conversion_to_black_and_white(dataset):
    """The fault: bool images got the hint "convert it with x.astype(np.uint8)", which stores the pixels 0 and 1
    (near black).  The conversion the message names, applied to the mask, gives white where it is True."""
    shape = datafiles.IMAGE_SHAPES[dataset]
    mask = np.zeros((2, *shape), bool)
    mask[0, :4] = True
    with pytest.raises(ValueError, match="^x_train .*dtype bool") as info:
        datafiles.check_images(mask, dataset)
    conversion = re.search(r"store (\S.*)$", str(info.value)).group(1)
    pixels = datafiles.check_images(eval(conversion, {"np": np, "x": mask}), dataset)
    np.testing.assert_array_equal(pixels, 255 * mask.astype(np.uint8))


def test_the_label_of_cifar10_data_comes_from_its_record(tmp_path):
    """nclib.plotting.dataset_label: the fault was that "cifar10_subset" in data_path alone decided "CIFAR-10
    (JPEG-decoded copy)", whatever the loader recorded of the file (lossy_jpeg, shared_subset).  The record decides
    where it holds those fields; the file's name only for runs recorded before them (the committed GPU runs of
    Figure 1) or named without their record."""
    from nclib import plotting, runs

    y = np.repeat(np.arange(10), 2)
    x = _cifar_images(y, np.random.default_rng(4))
    jpeg, npz = "CIFAR-10 (JPEG-decoded copy)", "CIFAR-10 (npz)"
    for name, lossy, want in (("cifar10_subset.npz", False, npz), ("other.npz", True, jpeg)):
        np.savez(tmp_path / name, x_train=x, y_train=y, lossy_jpeg=np.bool_(lossy))
        params = {"dataset": "cifar10", "data_path": str(tmp_path / name)}
        record = data.load(**params, counts=[2] * 10).provenance
        assert plotting.dataset_label(params, record) == want
        assert plotting.dataset_label(params) == {npz: jpeg, jpeg: npz}[want]  # the name's rule, without the record
    np.savez(tmp_path / "cifar10_subset.npz", x_train=x, y_train=y)  # no lossy_jpeg; not the shared subset either
    params = {"dataset": "cifar10", "data_path": str(tmp_path / "cifar10_subset.npz")}
    assert plotting.dataset_label(params, data.load(**params, counts=[2] * 10).provenance) == npz
    named = {"dataset": "cifar10", "data_path": "copy.npz"}
    assert plotting.dataset_label(named, {"shared_subset": True}) == jpeg
    assert plotting.dataset_label(named, {"shared_subset": False, "slice": {"source_is_shared_subset": True}}) == jpeg
    assert plotting.dataset_label(named, {"shared_subset": False, "slice": {"source_is_shared_subset": False}}) == npz
    assert plotting.dataset_label({"dataset": "cifar10", "data_path": None}, {"lossy_jpeg": True}) == jpeg
    run = nclib.ROOT / "results" / "figures" / "gpu" / "fig1" / "fig1-L1"  # recorded before the fields
    params, _, provenance = runs.load_run(run)
    assert not {"lossy_jpeg", "shared_subset"} & set(provenance["data"])
    assert plotting.dataset_label(params, provenance["data"]) == jpeg
    assert plotting.data_case({1: named, 3: named}, {1: {"lossy_jpeg": False}}) == "CIFAR-10 (npz), with bias"
    with pytest.raises(ValueError, match="the runs of one panel set must share the data"):
        plotting.data_case({1: named, 3: named}, {1: {"lossy_jpeg": True}})
    with pytest.raises(ValueError, match="^params"):
        plotting.dataset_label("cifar10")
    with pytest.raises(ValueError, match="^data"):
        plotting.dataset_label(named, "JPEG")


def test_synthetic_and_bad_parameters():
    ts = data.load("synthetic", counts=[5, 3], dim=7, seed=0)
    assert ts.x.shape == (8, 7) and ts.y.tolist() == [0] * 5 + [1] * 3
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="data_path is required"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="does not exist"):
        data.load("cifar10", data_path="/nonexistent/cifar")
    with pytest.raises(ValueError, match="counts"):
        data.load("synthetic", counts=[3, 0])
    with pytest.raises(ValueError, match="seed"):
        data.load("synthetic", seed=-1)
    with pytest.raises(ValueError, match="normalization"):
        data.load("synthetic", normalization="zca")
    with pytest.raises(ValueError, match="^data_path"):  # the mixture reads no file
        data.load("synthetic", data_path="/no/such/file", counts=[3, 2])


def test_a_standardized_mixture_has_mean_0_and_std_1_in_each_coordinate():
    """normalization="standardize" scales each coordinate of the synthetic mixture to mean 0 and std 1 over the N
    points (not divided by its variance); ``images`` keeps the points as drawn, which "reference" feeds unchanged."""
    kw = dict(counts=[20, 10, 5], dim=6, seed=3, spread=2.0)
    ts = data.load("synthetic", normalization="standardize", **kw)
    drawn, y = data.gaussian_mixture(kw["counts"], dim=6, seed=3, spread=2.0)
    assert ts.x.dtype == np.float32 and ts.x.shape == (35, 6)
    np.testing.assert_allclose(ts.x.mean(0), 0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ts.x.std(0), 1, rtol=1e-6, atol=0)
    assert np.all(np.abs(drawn.std(0) - 1) > 0.5)  # the draw itself is not standardized
    np.testing.assert_array_equal(ts.images, drawn)
    np.testing.assert_array_equal(ts.y, y)
    np.testing.assert_array_equal(data.load("synthetic", **kw).x, drawn)


@pytest.mark.parametrize("name", ["download", "verify_checksums"])
@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_download_and_verify_checksums_are_flags(tmp_path, name, value):
    # "no" is truthy: read as a truth value it would download, or keep the checks on
    with pytest.raises(ValueError, match=f"^{name}"):
        data.load("cifar10", data_path=tmp_path / "root", counts=[1] * 10, **{name: value})
    assert not (tmp_path / "root").exists()
    with pytest.raises(ValueError, match=f"^{name}"):
        data.load("synthetic", **{name: value})


def test_source_path_is_the_one_data_path_check(tmp_path):
    # nclib.train.check_params and nclib.data.load share it: the generated datasets read no file
    assert data.source_path("synthetic", None) is None and data.source_path("letters-synthetic", None) is None
    with pytest.raises(ValueError, match="data_path .* does not exist; for letters-synthetic"):
        data.source_path("letters-synthetic", tmp_path / "x.npz")  # a rendering saved ahead, which is missing
    with pytest.raises(ValueError, match="data_path .* is a folder, not a file; for letters-synthetic"):
        data.source_path("letters-synthetic", tmp_path)  # a folder is not the file of a rendering
    assert data.source_path("cifar10", tmp_path) == tmp_path
    with pytest.raises(ValueError, match="data_path is required for dataset 'emnist-letters'"):
        data.source_path("emnist-letters", None)
    with pytest.raises(ValueError, match="does not exist.*download=True"):
        data.source_path("cifar10", tmp_path / "fresh")
    # a root that torchvision is to create when it downloads
    assert data.source_path("cifar10", tmp_path / "fresh", download=True) == tmp_path / "fresh"
    assert data.source_path("cifar10", tmp_path / "fresh", download=np.True_) == tmp_path / "fresh"
    with pytest.raises(ValueError, match="^download"):
        data.source_path("cifar10", tmp_path / "fresh", download="no")
    with pytest.raises(ValueError, match="^data_path"):  # the mixture is drawn, never read
        data.source_path("synthetic", tmp_path)
    for dataset in ("mnist", None, "CIFAR10"):  # an unknown dataset is refused, not read from data_path
        with pytest.raises(ValueError, match="^dataset"):
            data.source_path(dataset, tmp_path)


def test_resolve_counts_is_what_load_trains_on():
    # nclib.figures.run_counts reads a run's counts back through the same function
    assert data.resolve_counts("cifar10")[0].tolist() == data.preset_counts("cifar10").tolist()
    n, profile = data.resolve_counts("letters-synthetic", None, "ascending")
    assert profile == "emnist-letters" and n.tolist() == [50] * 20 + [600] * 5 + [1500]
    n, profile = data.resolve_counts("synthetic")
    assert profile == "explicit" and n.tolist() == [20, 10, 5]
    assert data.load("synthetic").counts.tolist() == [20, 10, 5]
    # every dataset's default is the one DEFAULT_COUNTS names (what python -m nclib.train --help lists)
    assert set(data.DEFAULT_COUNTS) == set(data.DATASETS)
    for dataset, default in data.DEFAULT_COUNTS.items():
        n, profile = data.resolve_counts(dataset)
        assert profile == (default if isinstance(default, str) else "explicit")
        assert n.tolist() == (data.preset_counts(default).tolist() if isinstance(default, str) else default)
    with pytest.raises(ValueError, match="class_order"):
        data.resolve_counts("synthetic", [3, 2], "sideways")
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.resolve_counts("mnist")
    with pytest.raises(ValueError, match="^counts"):  # the caller's argument, not preset_counts'
        data.resolve_counts("cifar10", "mnist")


def test_load_checks_selection_and_class_count_before_reading(tmp_path):
    # neither needs the data: a missing file is not reached
    with pytest.raises(ValueError, match="selection must be one of"):
        data.load("synthetic", selection="best")
    with pytest.raises(ValueError, match="counts has 11 classes but cifar10 has 10"):
        data.load("cifar10", data_path=tmp_path / "missing.npz", counts=[1] * 11)
    with pytest.raises(ValueError, match="counts has 27 classes but letters-synthetic has 26"):
        data.load("letters-synthetic", counts=[1] * 27)


@pytest.mark.parametrize("dataset", ["synthetic", "letters-synthetic"])
def test_generated_data_take_no_selection_but_the_default(dataset):
    """Drawn from the seed, they have no rows to select: "first" would be recorded in the provenance and do nothing."""
    from nclib import parameters

    with pytest.raises(ValueError, match="^selection"):
        data.load(dataset, counts=[3, 2], selection="first")
    with pytest.raises(ValueError, match="^selection"):  # a run's parameters are refused before it starts
        parameters.check_params(**dict(parameters.DEFAULTS, dataset=dataset, counts=[3, 2], selection="first"))
    p = parameters.check_params(**dict(parameters.DEFAULTS, dataset=dataset, counts=[3, 2], batch_size="full"))
    assert p["selection"] == "random" and data.load_for(p).provenance["selection"] == "random"


def test_letters_are_resized_and_normalized_as_the_reference_code_does_but_upright():
    """Grayscale(3) + Resize(32) + ToTensor + Normalize((0.1722,), (0.3309,)) of the closest public code with EMNIST,
    through torchvision itself, against nclib.data.letters_input and load()'s normalization, on upright letters.
    That code feeds torchvision's images as stored, transposed: its inputs, transposed back, are nclib's up to one
    gray level (PIL rounds between its two resizing passes), a fixed permutation of the pixels."""
    from PIL import Image
    from torchvision import transforms

    ts = data.load("letters-synthetic", counts=[2] * 26, seed=1)
    reference = transforms.Compose([transforms.Grayscale(3), transforms.Resize(32), transforms.ToTensor(),
                                    transforms.Normalize((0.1722,), (0.3309,))])
    expected = np.stack([reference(Image.fromarray(im)).numpy().reshape(-1) for im in ts.images])
    np.testing.assert_allclose(ts.x, expected, rtol=0, atol=1e-6)
    stored = np.stack([reference(Image.fromarray(np.ascontiguousarray(im.T))).numpy() for im in ts.images])
    back = stored.transpose(0, 1, 3, 2).reshape(ts.N, -1)  # each channel's 32 x 32 transposed back
    one_level = 1 / 255 / 0.3309
    assert np.abs(back - ts.x).max() <= one_level + 1e-6
    assert data.letters_input(ts.images).shape == (ts.N, 32, 32, 3)
    with pytest.raises(ValueError, match="images must be"):
        data.letters_input(ts.x)


def test_load_for_a_run_reads_every_data_parameter():
    """data.load_for: the training set of a run's parameters, every argument of data.load taken from them (a
    normalization or a seed the caller left out of a hand-built call is not lost)."""
    from nclib import parameters

    p = parameters.check_params(**dict(parameters.DEFAULTS, dataset="synthetic", counts=[5, 3, 2], dim=6,
                                       batch_size="full", normalization="standardize", seed=3))
    got = data.load_for(p)
    want = data.load("synthetic", counts=[5, 3, 2], dim=6, normalization="standardize", seed=3)
    assert got.provenance == want.provenance
    np.testing.assert_array_equal(got.x, want.x)
    assert got.provenance["data_sha256"] != data.load("synthetic", counts=[5, 3, 2], dim=6, seed=3).provenance[
        "data_sha256"]  # the normalization changed the data
    with pytest.raises(ValueError, match="params lacks seed"):
        data.load_for({k: v for k, v in p.items() if k != "seed"})
    with pytest.raises(ValueError, match="params must be a mapping"):
        data.load_for([("dataset", "synthetic")])


@pytest.mark.parametrize("check", [
    lambda d: datafiles.check_images(np.zeros((1, 32, 32, 3), np.uint8), d),
    lambda d: datafiles.check_labels(np.zeros(1, np.int64), d, 1),
    lambda d: datafiles.npz_record("unused.npz", d),
])
def test_a_dataset_given_as_an_array_is_refused_by_name(check):
    """A numpy array of words is not one dataset: refused naming ``dataset``, not by numpy's unhashable-array
    TypeError."""
    with pytest.raises(ValueError, match="^dataset must be one of"):
        check(np.array(["cifar10"]))


def test_sha256_arrays_counts_each_arrays_dtype_and_shape():
    """The same bytes read as another dtype or shape are other data: a run's data_sha256 tells them apart."""
    a = np.arange(6, dtype=np.int64)
    assert data.sha256_arrays(a) != data.sha256_arrays(a.reshape(2, 3))
    assert data.sha256_arrays(a) != data.sha256_arrays(a.view(np.float64))
    assert data.sha256_arrays(a) == data.sha256_arrays(a.copy())


def test_the_provenance_hashes_the_inputs_and_the_images_with_the_labels(tmp_path):
    """data_sha256 is that of the network's inputs and the labels, images_sha256 that of the upright images and the
    labels: two runs that differ only in normalization share the second."""
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(10), 3)
    np.savez(tmp_path / "sub.npz", x_train=_cifar_images(y, rng), y_train=y)
    ts = data.load("cifar10", data_path=tmp_path / "sub.npz", counts=[2] * 10)
    assert ts.provenance["data_sha256"] == data.sha256_arrays(ts.x, ts.y)
    assert ts.provenance["images_sha256"] == data.sha256_arrays(ts.images, ts.y)
    raw = data.load("cifar10", data_path=tmp_path / "sub.npz", counts=[2] * 10, normalization="none")
    assert raw.provenance["images_sha256"] == ts.provenance["images_sha256"]
    assert raw.provenance["data_sha256"] != ts.provenance["data_sha256"]


@pytest.mark.parametrize("kw", [dict(counts=[5], spread=0.0), dict(counts=[1], spread=1.0)], ids=["spread-0", "one"])
def test_a_constant_coordinate_of_the_mixture_cannot_be_standardized(kw):
    """What was wrong: load's docstring refused a constant channel under normalization="standardize", and the image
    path does, but the synthetic mixture divided by max(std, 1e-12): spread 0 with one class (or a single point)
    gave every coordinate 0, std 0, without a word.  Such a coordinate is refused naming normalization, as a
    constant channel is; spread 0 with two classes, whose coordinates differ, is standardized to std 1."""
    with pytest.raises(ValueError, match=r"^normalization 'standardize' .*coordinate 0 .*constant"):
        data.load("synthetic", dim=2, normalization="standardize", **kw)
    assert np.isfinite(data.load("synthetic", dim=2, **kw).x).all()  # "reference" leaves it as drawn
    two = data.load("synthetic", counts=[3, 2], spread=0.0, dim=2, normalization="standardize")
    np.testing.assert_allclose(two.x.std(0), 1, rtol=1e-6, atol=0)
