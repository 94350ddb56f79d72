"""Reading the data sets' files: the .npz copies (the shared CIFAR-10 subset, EMNIST letters, a letters-synthetic
rendering read back by :mod:`nclib.letters`), torchvision's CIFAR-10 python batches and EMNIST's IDX files, and the
checks every array read from a file passes (uint8 pixels in the dataset's shape, labels 0..K-1, a file that says it
holds other data refused).  A file that cannot be read as its format says raises :class:`DamagedFileError` naming
it.  :func:`nclib.data.load` reads through these functions and turns what they return into a training set
(:ref:`ch-train`, :ref:`ch-engine`).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import pickle
import secrets
import shutil
import string
import struct
import zipfile
import zlib

import numpy as np

from . import ROOT, _checks
from .locks import writer_tag

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
LETTERS = tuple(string.ascii_lowercase)
#: The class names of each dataset read from files, in label order (what an .npz's ``classes`` member must hold).
CLASS_NAMES = {"cifar10": CIFAR10_CLASSES, "emnist-letters": LETTERS}
#: The number of classes of each dataset read from files.
FILE_CLASSES = {name: len(names) for name, names in CLASS_NAMES.items()}


# ----------------------------------------------------------------------------------------------- input checks

#: The image arrays each file-backed dataset is stored as: (height, width) or (height, width, channels) after N.
IMAGE_SHAPES = {"cifar10": (32, 32, 3), "emnist-letters": (28, 28)}


class DamagedFileError(ValueError):
    """A data file that cannot be read as its format says (truncated, empty, corrupted): ``path`` names it.

    A ``ValueError`` (the bad-input error of nclib) whose message names the file, what went wrong, its sha256 and
    what to do: re-copy or re-download it and compare the sha256 with the original's (:func:`sha256_file`)."""

    def __init__(self, path, problem: str):
        self.path = pathlib.Path(path)
        try:
            sha = f"its sha256 is {sha256_file(self.path)}"
        except OSError:
            sha = "it cannot be read"
        super().__init__(f"data file {str(self.path)!r} is damaged or not in its format ({problem}); {sha}: re-copy "
                         f"or re-download it and compare the sha256 with the original's (nclib.datafiles.sha256_file)")


def reader_error_text(exc: BaseException) -> str:
    """'module.Name: message' of a reader's exception (zlib.error, zipfile.BadZipFile, _pickle.UnpicklingError), the
    name alone where the message is empty; a builtin exception is named without its module ('ValueError: ...').  The
    problem that :class:`DamagedFileError` names for a data file its reader could not read: the readers here and
    those of :mod:`nclib.data` and :mod:`nclib.letters` write it so, from the exception they caught (``exc``, any
    exception; it is only read).  Used by ``scripts/gpu_data_slice.py``."""
    kind = type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__name__}"
    return f"{kind}: {exc}" if str(exc) else kind


def _path(value, name: str) -> pathlib.Path:
    """``value`` as a path, or a ValueError naming ``name`` for what is no path (None, a number): pathlib's own
    TypeError would name neither the argument nor what was expected."""
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a path (a str or pathlib.Path), got {value!r}")
    return pathlib.Path(value)


def check_images(images, dataset: str, name: str = "x_train") -> np.ndarray:
    """The images of a file-backed dataset of Section 5, checked: uint8 pixels 0..255 in :data:`IMAGE_SHAPES`.

    CIFAR-10 is (N, 32, 32, 3) uint8 (channels last, as ``torchvision.datasets.CIFAR10.data`` and the shared
    ``cifar10_subset.npz``), EMNIST letters (N, 28, 28) uint8, in torchvision's raw (transposed) orientation unless
    an .npz's ``orientation`` member says upright (:data:`EMNIST_ORIENTATIONS`).
    Anything else is refused with a ValueError naming ``name``, the dtype or shape found and, where a common
    mistake explains it, the conversion: floats already in [0, 1] (``np.round(255 * x).astype(np.uint8)``), bools
    (``np.where(x, 255, 0).astype(np.uint8)``: cast, True would be the pixel 1, not white), NaN
    pixels (bad data, not a training problem), wider integers, flat rows (which only CIFAR-10's python batches
    hold: give their folder as ``data_path``), channels first, grayscale CIFAR-10 (with or without a channel axis), an
    alpha channel (``x[..., :3]``), another channel count or another image size.  The data of
    :ref:`ch-train` and :ref:`ch-engine`.
    """
    if not isinstance(dataset, str) or dataset not in IMAGE_SHAPES:
        raise ValueError(f"dataset must be one of {tuple(IMAGE_SHAPES)} (the datasets read from files), "
                         f"got {dataset!r}")
    x = np.asarray(images)
    want = IMAGE_SHAPES[dataset]
    what = (f"(N, {want[0]}, {want[1]}, {want[2]}): N images of {want[0]} x {want[1]} pixels, RGB channels last"
            if len(want) == 3 else
            f"(N, {want[0]}, {want[1]}): N grayscale {want[0]} x {want[1]} letters in torchvision's raw orientation")
    if x.dtype != np.uint8:
        found = f"dtype {x.dtype}"
        hint = ""
        if x.dtype.kind in "fc":
            bad = int(np.count_nonzero(~np.isfinite(x)))
            if bad:
                raise ValueError(f"{name} holds {bad} NaN or infinite pixel values (dtype {x.dtype}): bad data, not a "
                                 f"training problem; {dataset} images are uint8 pixels 0..255, regenerate the file")
        if x.size and x.dtype.kind in "biuf":
            lo, hi = x.min(), x.max()
            found += f" with values in [{lo}, {hi}]"
            if x.dtype.kind == "b":  # as uint8 they would be pixels 0 and 1, near black: white is 255
                hint = ": a mask of black and white? store np.where(x, 255, 0).astype(np.uint8)"
            elif x.dtype.kind == "f" and lo >= 0 and hi <= 1:
                hint = ": already scaled to [0, 1]? store np.round(255 * x).astype(np.uint8)"
            elif lo >= 0 and hi <= 255 and np.all(x == np.round(x)):
                hint = ": convert it with x.astype(np.uint8)"
            elif hi > 255 or lo < 0:
                hint = ": values outside 0..255 are not 8-bit pixels"
        raise ValueError(f"{name} must hold uint8 pixels 0..255 (what {dataset} images are; they are divided by 255 "
                         f"for the network), got {found}{hint}")
    if x.shape[1:] != want or x.ndim != len(want) + 1:
        hint = ""
        flat = int(np.prod(want))
        if x.ndim == 2 and x.shape[1] == flat:
            hint = (f": flat rows of {flat} values; only CIFAR-10's python batches hold flat rows, read them by giving "
                    f"the folder holding cifar-10-batches-py/ as data_path" if dataset == "cifar10" else
                    f": flat rows of {flat} values; store x.reshape(-1, {want[0]}, {want[1]})")
        elif dataset == "cifar10" and x.ndim == 4 and x.shape[1] == 3 and x.shape[3] != 3:
            hint = ": channels first? store x.transpose(0, 2, 3, 1)"
        elif dataset == "cifar10" and x.ndim == 3:
            hint = ": grayscale images without a channel axis; the network of Section 5 takes RGB CIFAR-10 images"
        elif dataset == "cifar10" and x.ndim == 4 and x.shape[1:3] == want[:2] and x.shape[3] == 4:
            hint = ": 4 channels, RGB and alpha? drop the alpha channel: store x[..., :3]"
        elif dataset == "cifar10" and x.ndim == 4 and x.shape[1:3] == want[:2] and x.shape[3] == 1:
            hint = (": 1 channel, grayscale; the network of Section 5 takes RGB CIFAR-10 images (np.repeat(x, 3, "
                    "axis=3) would give it the gray value in all 3 channels)")
        elif dataset == "cifar10" and x.ndim == 4 and x.shape[1:3] == want[:2]:
            hint = f": {x.shape[3]} channels; CIFAR-10 images have 3, RGB"
        elif x.ndim == len(want) + 1:
            hint = (f": images of {x.shape[1]} x {x.shape[2]} pixels; {dataset} images are {want[0]} x {want[1]} "
                    f"(resize them before storing)")
        raise ValueError(f"{name} must have shape {what}, got {x.shape}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no images (shape {x.shape}): an empty array, not a data set")
    return x


def check_labels(labels, dataset: str, n_images: int, name: str = "y_train",
                 images_name: str = "x_train") -> np.ndarray:
    """The labels of a file-backed dataset, checked and returned as int64: a 1-D array of integers 0..K-1
    (K = :data:`FILE_CLASSES`), one per image (``n_images``, the length of ``images_name``).

    Refused with a ValueError naming ``name``: one-hot rows (2-D), non-integer values, labels outside 0..K-1 (the
    message gives the minimum and maximum found, and says 1-based when they are 1..K), and a count that differs from
    the number of images (naming both arrays); ``n_images`` not a non-negative integer (text, a float, a bool) is
    refused naming ``n_images``.  The data of :ref:`ch-train` and :ref:`ch-engine`.
    """
    if not isinstance(dataset, str) or dataset not in IMAGE_SHAPES:
        raise ValueError(f"dataset must be one of {tuple(IMAGE_SHAPES)} (the datasets read from files), "
                         f"got {dataset!r}")
    n_images = _checks.nonneg_int(n_images, "n_images")
    K = FILE_CLASSES[dataset]
    y = np.asarray(labels)
    if y.ndim != 1:
        hint = ": one-hot rows? store y.argmax(axis=1)" if y.ndim == 2 and y.shape[1] == K else ""
        raise ValueError(f"{name} must be a 1-D array of class indices 0..{K - 1}, one per image, got shape "
                         f"{y.shape}{hint}")
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y)))):
        raise ValueError(f"{name} must hold integer class indices 0..{K - 1}, got dtype {y.dtype}"
                         + (" with non-integer or NaN values" if y.dtype.kind == "f" else ""))
    if y.size != n_images:
        raise ValueError(f"{images_name} has {n_images} images but {name} has {y.size} labels; they must match one "
                         f"to one (the file holds inconsistent arrays)")
    if y.size and (y.min() < 0 or y.max() > K - 1):
        lo, hi = int(y.min()), int(y.max())
        hint = ": 1-based? subtract 1" if (lo, hi) == (1, K) else ""
        raise ValueError(f"{name} must hold integers 0..{K - 1} ({dataset} has {K} classes); found min {lo}, "
                         f"max {hi}{hint}")
    return y.astype(np.int64)


def sha256_file(path) -> str:
    """The sha256 hex digest of a file (the ``source_sha256`` of a run's provenance; :ref:`ch-engine`)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------- sources

#: The first bytes numpy reads a file by: a zip archive (an .npz) or one .npy array; it takes anything else for a
#: pickle.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"

def load_npz(path):
    """``x_train``, ``y_train`` (and the sha256 of the file) from an ``.npz`` like ``cifar10_subset.npz``.

    Loaded with ``allow_pickle=False``; 1-D integer-valued labels that int64 holds exactly come back as int64, others
    as stored (for :func:`check_labels` to refuse naming the values the file holds, not a wrapped-around cast).  A
    file numpy cannot read (truncated, empty, not a zip archive of .npy arrays, a corrupted member, a damaged header,
    pickled object arrays) raises :class:`DamagedFileError` naming it; a ``path`` that is no path (None) or not a
    file, ValueError naming ``data_path``.  Used by :ref:`ch-train`.
    """
    path = _path(path, "data_path")
    if not path.is_file():
        raise ValueError(f"data_path {str(path)!r} does not exist; pass the path of an .npz with x_train/y_train")
    x = y = None
    try:
        with open(path, "rb") as handle:  # closed on every path, also when numpy cannot read the file
            f = np.load(handle, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise TypeError(f"data_path {str(path)!r} holds one .npy array, not an .npz with x_train and y_train")
            with f:
                files = sorted(f.files)
                if "x_train" in files and "y_train" in files:
                    x, y = np.asarray(f["x_train"]), np.asarray(f["y_train"])
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    except ValueError as exc:
        if "pickle" in str(exc):
            with open(path, "rb") as handle:
                head = handle.read(len(_NPY_MAGIC))
            if not head.startswith(_ZIP_MAGICS + (_NPY_MAGIC,)):  # numpy takes any other file for a pickle
                problem = f"it is not an .npz file, a zip archive of .npy arrays: its first bytes are {head!r}"
            else:
                problem = ("it holds pickled (object) data, which is not loaded (allow_pickle=False): a damaged "
                           "file, or arrays saved from Python objects instead of numbers")
            raise DamagedFileError(path, problem) from exc
        raise DamagedFileError(path, reader_error_text(exc)) from exc
    except (zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise DamagedFileError(path, reader_error_text(exc)) from exc
    if x is None:
        raise ValueError(f"data_path {str(path)!r} must hold arrays x_train and y_train, has {files}")
    return x, _int64_if_exact(y), {str(path.name): sha256_file(path)}


def _int64_if_exact(y: np.ndarray) -> np.ndarray:
    """``y`` as int64 where it is a 1-D array of integer values that int64 holds exactly, else ``y`` as stored: a
    label 2**64 - 1 or 1e20 cast to int64 would wrap around, and check_labels would name a value the file does not
    hold."""
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        return y
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        return y
    if y.size and (int(y.min()) < np.iinfo(np.int64).min or int(y.max()) > np.iinfo(np.int64).max):
        return y
    return y.astype(np.int64)


#: The members of an .npz that say where its data come from, and the provenance keys :func:`npz_record` gives them
#: (``source`` is the run's own key, the reader; the file's ``source`` is the copy the pixels were taken from).
NPZ_RECORD = {"source": "file_source", "lossy_jpeg": "lossy_jpeg"}
#: The sha256 of the shared CIFAR-10 subset ``cifar10_subset.npz`` (``scripts/make_cifar10_subset.py`` makes it
#: from its public JPEG source, this file byte for byte).  A run's
#: provenance says whether its .npz is that file byte for byte (``shared_subset``): a copy changed since keeps the
#: file's own ``source`` and ``lossy_jpeg`` members, and would otherwise pass as the documented subset.
SHARED_CIFAR10_SHA256 = "fb6aa27c81be7fb3149aa4a8d8f3b09d89373f3edcc91230c63cdfc399ce60d2"
#: Where that subset lies, ``shared/data/`` beside the repository: the file a CIFAR-10 call of the training notebook
#: (:ref:`ch-train`) reads when it is given no ``data_path``, and the default of ``scripts/minority_runs.py``.
SHARED_CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10_subset.npz"
#: How an EMNIST letters .npz may store its images, named by its optional ``orientation`` member: transposed, as
#: ``torchvision.datasets.EMNIST`` returns them (the form :mod:`nclib.data` describes, and the one taken when
#: the member is absent), or already upright.
EMNIST_ORIENTATIONS = ("torchvision_raw_idx_transposed", "upright")


def npz_record(path, dataset: str) -> dict:
    """The .npz's own record of its data, checked: ``{"file_source": str, "lossy_jpeg": bool}`` for the members
    ``source`` and ``lossy_jpeg`` the file has (:data:`NPZ_RECORD`; the shared CIFAR-10 subset has both, so a run's
    provenance says its pixels are JPEG-decoded), empty for a file without them; read as EMNIST letters, also
    ``{"orientation": str}`` where the file has that member (one of :data:`EMNIST_ORIENTATIONS`).

    ValueError naming ``data_path`` for an .npz whose own members say it holds other data: ``classes`` other than
    the dataset's names in label order (:data:`CLASS_NAMES`: :data:`CIFAR10_CLASSES`, or :data:`LETTERS` a..z for
    EMNIST letters, as :mod:`nclib.data` describes; the labels would get wrong names and counts), or, read as
    EMNIST letters, a
    letters-synthetic rendering (``fonts``, ``images_sha256``, a ``note`` naming it: the stand-in keeps its name) or
    an ``orientation`` that is not one of :data:`EMNIST_ORIENTATIONS` (the letters would reach the network turned);
    also for a ``source`` that is not one text or a ``lossy_jpeg`` that is not one bool.  A member numpy cannot read
    raises :class:`DamagedFileError`.  The data of :ref:`ch-train` and :ref:`ch-engine`.
    """
    if not isinstance(dataset, str) or dataset not in IMAGE_SHAPES:
        raise ValueError(f"dataset must be one of {tuple(IMAGE_SHAPES)} (the datasets read from files), "
                         f"got {dataset!r}")
    keys = {"cifar10": ("classes",),
            "emnist-letters": ("classes", "fonts", "images_sha256", "note", "orientation")}[dataset] + tuple(NPZ_RECORD)
    path = _path(path, "data_path")
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            record = {k: np.asarray(f[k]) for k in keys if k in f.files}
    except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise DamagedFileError(path, reader_error_text(exc)) from exc
    rendering = [k for k in ("fonts", "images_sha256") if k in record]
    if "note" in record and "letters-synthetic" in str(record["note"]):
        rendering.append("note")
    if rendering:
        raise ValueError(f"data_path {str(path)!r} is a letters-synthetic rendering (its members {rendering}), not "
                         f"EMNIST letters: load it with dataset 'letters-synthetic'")
    if "classes" in record:
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(record["classes"]).tolist()]
        want = list(CLASS_NAMES[dataset])
        whose = "CIFAR-10's" if dataset == "cifar10" else "EMNIST letters'"
        if names != want:
            raise ValueError(f"data_path {str(path)!r} names its labels {names}, not {whose} {want} in label order; "
                             f"store y_train (and classes) in that coding")
    out = {}
    if "orientation" in record:
        value = record["orientation"].item() if record["orientation"].ndim == 0 else None
        value = value.decode() if isinstance(value, bytes) else value
        if not isinstance(value, str) or value not in EMNIST_ORIENTATIONS:
            found = repr(value) if isinstance(value, str) else (f"dtype {record['orientation'].dtype} shape "
                                                                 f"{record['orientation'].shape}")
            raise ValueError(f"data_path {str(path)!r}: its member orientation must be one of {EMNIST_ORIENTATIONS} "
                             f"(how x_train holds the letters), got {found}")
        out["orientation"] = value
    if "source" in record:
        if record["source"].ndim != 0 or record["source"].dtype.kind not in "US":
            raise ValueError(f"data_path {str(path)!r}: its member source must be one text naming where the data "
                             f"come from, got dtype {record['source'].dtype} shape {record['source'].shape}")
        value = record["source"].item()
        out[NPZ_RECORD["source"]] = value.decode() if isinstance(value, bytes) else str(value)
    if "lossy_jpeg" in record:
        if record["lossy_jpeg"].ndim != 0 or record["lossy_jpeg"].dtype != bool:
            raise ValueError(f"data_path {str(path)!r}: its member lossy_jpeg must be one bool (whether the pixels "
                             f"were decoded from JPEG), got dtype {record['lossy_jpeg'].dtype} shape "
                             f"{record['lossy_jpeg'].shape}")
        out[NPZ_RECORD["lossy_jpeg"]] = bool(record["lossy_jpeg"])
    return out


def load_cifar10_torchvision(root, train: bool = True, download: bool = False, verify_checksums: bool = True):
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (python batches under ``root/cifar-10-batches-py``).

    Returns (images (N, 32, 32, 3), labels, {file: sha256}), the images and labels as the batches store them
    (uint8 pixels and integer labels in the official files), not cast: :func:`check_images` and
    :func:`check_labels` refuse floats in [0, 1], pixels above 255 and fractional labels here as in an .npz, where
    a cast would have turned them into other pixels and labels.  ``download`` is passed on (off by
    default: nothing is fetched unless asked).  ``verify_checksums=False`` skips torchvision's md5 checks of
    the batch and meta files, which only the official files pass; the tests use it for their small fixtures
    written in the same format.  The class names of ``batches.meta`` must be :data:`CIFAR10_CLASSES` in label order
    (as an .npz's ``classes``), else ValueError naming ``data_path``.  Used by :ref:`ch-train`.
    """
    from torchvision.datasets import CIFAR10

    download, verify_checksums = _checks.flag(download, "download"), _checks.flag(verify_checksums, "verify_checksums")

    class _CIFAR10(CIFAR10):
        def _check_integrity(self) -> bool:
            if verify_checksums:
                return super()._check_integrity()
            return all(os.path.isfile(os.path.join(self.root, self.base_folder, f)) for f, _ in
                       self.train_list + self.test_list)

        def _load_meta(self) -> None:
            if verify_checksums:
                return super()._load_meta()
            with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as infile:
                self.classes = pickle.load(infile, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    root = pathlib.Path(root)
    folder = root / CIFAR10.base_folder
    if not download and not folder.is_dir():
        raise ValueError(f"data_path {str(root)!r} has no {CIFAR10.base_folder}/ folder; point it at a torchvision "
                         f"CIFAR-10 root, at an .npz with x_train/y_train, or pass download=True")
    files = [(f, md5) for f, md5 in (CIFAR10.train_list if train else CIFAR10.test_list)]
    files.append((CIFAR10.meta["filename"], CIFAR10.meta["md5"]))
    try:
        ds = _CIFAR10(str(root), train=train, download=download)
    except RuntimeError as exc:
        from torchvision.datasets.utils import check_integrity

        present = [(f, md5) for f, md5 in files if (folder / f).is_file()]
        failing = [f for f, md5 in present if not check_integrity(str(folder / f), md5)]
        if failing and len(failing) < len(present):  # some official files pass: the others are damaged copies
            raise DamagedFileError(folder / failing[0], f"it fails torchvision's md5 check of the official CIFAR-10 "
                                   f"batches while others pass; failing: {failing}") from exc
        raise ValueError(f"data_path {str(root)!r}: torchvision could not read CIFAR-10 ({exc}); pass "
                         f"verify_checksums=False for files that are not the official batches") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, IndexError) as exc:
        for f, _ in files:  # find the file that does not unpickle into a batch (only on this error path)
            try:
                with open(folder / f, "rb") as handle:
                    entry = pickle.load(handle, encoding="latin1")
                if f == CIFAR10.meta["filename"]:
                    entry[CIFAR10.meta["key"]]  # the class names
                else:
                    np.asarray(entry["data"]).reshape(-1, 3, 32, 32)
                    if len(entry.get("labels", entry.get("fine_labels", []))) != len(entry["data"]):
                        raise ValueError("as many labels as images")
            except Exception as inner:  # noqa: BLE001 - any failure marks this file as the damaged one
                raise DamagedFileError(folder / f, reader_error_text(inner)) from exc
        raise
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in ds.classes]
    if classes != list(CIFAR10_CLASSES):
        raise ValueError(f"data_path {str(root)!r}: {CIFAR10.base_folder}/{CIFAR10.meta['filename']} names the "
                         f"labels {classes}, not CIFAR-10's {list(CIFAR10_CLASSES)} in label order: another data "
                         f"set, or CIFAR-10 relabelled; store the batches in CIFAR-10's coding")
    names = [f for f, _ in files]
    shas = {n: sha256_file(folder / n) for n in names}
    return np.asarray(ds.data), np.asarray(ds.targets), shas  # as stored: the checks refuse what is not pixels


def emnist_raw_files(root, train: bool = True) -> tuple[pathlib.Path, pathlib.Path]:
    """The two IDX files torchvision's ``EMNIST(split="letters")`` reads under ``root`` (the EMNIST data of
    Section 5; :ref:`ch-train`).  ValueError naming ``root`` unless it is a path."""
    raw = _path(root, "root") / "EMNIST" / "raw"
    prefix = f"emnist-letters-{'train' if train else 'test'}"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def load_emnist_letters_torchvision(root, train: bool = True, download: bool = False):
    """EMNIST letters through ``torchvision.datasets.EMNIST(root, split="letters")``.

    torchvision reads the uncompressed IDX files in ``root/EMNIST/raw``; where only the ``.gz`` files of the
    official archive lie there, they are decompressed first, each through a temporary file of this process's own
    (two processes may unpack one folder at once), and nothing is downloaded unless ``download``.
    Returns (upright images (N, 28, 28) uint8, labels 0..25 int64, {file: sha256}): torchvision's labels
    1..26 are shifted down by one and its images, stored transposed, are transposed back.
    Used by :ref:`ch-train`.
    """
    from torchvision.datasets import EMNIST

    download = _checks.flag(download, "download")
    files = emnist_raw_files(root, train)
    for f in files:
        gz = f.with_name(f.name + ".gz")
        if not f.is_file() and gz.is_file():
            _unpack_gz(gz, f)
    if not download and not all(f.is_file() for f in files):
        raise ValueError(f"data_path {str(root)!r} lacks {files[0].relative_to(root)} / {files[1].name} (or their "
                         f".gz); point it at a torchvision EMNIST root, at an .npz, or pass download=True")
    for f in files:
        if f.is_file():
            _check_idx_size(f)
    ds = EMNIST(str(root), split="letters", train=train, download=download)
    images = ds.data.numpy().transpose(0, 2, 1).copy()
    labels = ds.targets.numpy().astype(np.int64) - 1
    if labels.min() < 0 or labels.max() > 25:
        raise ValueError(f"data_path {str(root)!r}: EMNIST letters labels must be 1..26, got "
                         f"{labels.min() + 1}..{labels.max() + 1}")
    return images, labels, {f.name: sha256_file(f) for f in files}


def temporary_path(path) -> pathlib.Path:
    """A new name for a temporary file beside ``path``, this process's own: the host, the pid and a random part,
    so that processes writing ``path`` at once (two notebooks unpacking one data folder, nodes of a cluster sharing
    it) never write one temporary file.  Create it with ``open(..., "xb")``, then ``os.replace`` it onto ``path``
    (:ref:`ch-train`).  ValueError naming ``path`` unless it is a path with a file name."""
    path = _path(path, "path")
    if not path.name:
        raise ValueError(f"path must name a file, got {str(path)!r}")
    return path.with_name(f".{path.name}.{writer_tag()}.{secrets.token_hex(4)}.tmp")


def _unpack_gz(gz: pathlib.Path, path: pathlib.Path) -> None:
    """Decompress ``gz`` into ``path`` through a temporary file of this process's own, renamed into place: a
    process unpacking the same file at the same time never writes into this one's.  Where another process has put a
    whole ``path`` in place meanwhile, that one is kept.  A ``gz`` that cannot be decompressed is
    :class:`DamagedFileError` naming it, and nothing is left behind."""
    tmp = temporary_path(path)
    try:
        with gzip.open(gz, "rb") as src, open(tmp, "xb") as dst:
            shutil.copyfileobj(src, dst)
        if not _idx_whole(path):
            os.replace(tmp, path)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DamagedFileError(gz, reader_error_text(exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _idx_whole(path: pathlib.Path) -> bool:
    """Whether ``path`` is an IDX file exactly as long as its header says (:func:`_check_idx_size`)."""
    try:
        _check_idx_size(path)
    except (OSError, DamagedFileError):
        return False
    return True


def _check_idx_size(path: pathlib.Path) -> None:
    """DamagedFileError unless an IDX file (EMNIST's format) is exactly as long as its header says: 4 magic bytes
    (0, 0, type, number of dimensions), 4 bytes per dimension, then the unsigned bytes."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08:
            raise DamagedFileError(path, f"not an IDX file of unsigned bytes (its first bytes are {head!r})")
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise DamagedFileError(path, "its IDX header is cut short")
    shape = struct.unpack(f">{head[3]}I", dims)
    want = 4 + 4 * head[3] + int(np.prod(shape, dtype=np.int64))
    if size != want:
        raise DamagedFileError(path, f"its IDX header says {shape} bytes of data, {want} bytes in all, the file has "
                                     f"{size}: truncated or padded")
