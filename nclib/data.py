"""Training data for the experiments of Section 5 and Appendix C: the paper's imbalanced subsets.

Every loader returns a :class:`TrainingSet`: flattened, normalized float32 inputs, int64 labels 0..K-1,
the class counts actually used, and provenance (the source, the sha256 of the source files and of the
selected arrays).  Used by :ref:`ch-train` and :ref:`ch-engine`.

Datasets (``load(dataset=...)``):

``cifar10``
    CIFAR-10 {cite:p}`krizhevsky2009learning`.  ``data_path`` is either a torchvision root folder holding
    ``cifar-10-batches-py/`` (read through ``torchvision.datasets.CIFAR10``, the python-batch format) or an
    ``.npz`` file with ``x_train`` (N, 32, 32, 3) uint8 and ``y_train`` (the shared JPEG-decoded subset), and a
    ``classes`` array, where it has one, naming the labels as :data:`CIFAR10_CLASSES` does.
``emnist-letters``
    EMNIST letters {cite:p}`cohen2017emnist` through ``torchvision.datasets.EMNIST(split="letters")``: the
    IDX files ``EMNIST/raw/emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte`` under ``data_path``
    (``.gz`` copies of them, as in the official ``gzip.zip``, are decompressed next to themselves first), whose
    labels 1..26 become 0..25, or an ``.npz`` with ``x_train`` in torchvision's raw orientation and ``y_train``
    already 0..25 (not a letters-synthetic rendering, which is refused); images are transposed to upright.
    The network sees them as the closest public code with EMNIST feeds them (the EMNIST variant of Dang et
    al.'s code, ``thotranhuu99/Neural-Collapse-in-Deep-Linear-Networks``, ``datasets_imbalanced.py``:
    ``Grayscale(3)``, ``Resize(32)``, ``Normalize((0.1722,), (0.3309,))``): resized to 32 x 32 with PIL's
    bilinear filter, the gray value repeated over 3 channels, so 3,072 inputs as for CIFAR-10
    (:func:`letters_input`).
``letters-synthetic``
    An offline **stand-in for EMNIST letters**: the 26 letters a..z (upper or lower case at random) rendered
    from the fonts shipped with matplotlib, with random affine jitter, stroke width and pixel noise,
    28 x 28 grayscale, deterministic by seed, fed to the network exactly as EMNIST letters are.  Its name always
    says it is a stand-in.  Rendered on the fly, or read from a rendering saved ahead
    (:func:`nclib.letters.save_letters_synthetic`) given as ``data_path``; :mod:`nclib.letters` renders it.
``synthetic``
    A Gaussian mixture in ``dim`` dimensions, for fast tests.

Class profiles: ``counts`` is a preset name (``"cifar10"``, ``"emnist-letters"``, i.e.
``nclib.imbalance.PROFILES``) or an explicit list of K counts (class k gets ``counts[k]``).  For a preset,
``class_order`` says which class gets which count: ``"reference"`` follows the closest public code (Dang et
al. 2023): CIFAR-10 ascending by class index (airplane 100, ..., truck 500), EMNIST letters descending
(a: 1500, b-f: 600, g-z: 50); ``"ascending"`` / ``"descending"`` force one order.  Within a class, the rows
are chosen by a seeded permutation (``selection="random"``, the paper's "random subset") or the first rows
in file order (``selection="first"``, what the reference code does).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pathlib
import pickle
import shutil
import string
import struct
import zipfile
import zlib

import numpy as np

from . import _checks, imbalance

DATASETS = ("cifar10", "emnist-letters", "letters-synthetic", "synthetic")
#: How a preset's counts are given to the classes (:func:`preset_counts`).
CLASS_ORDERS = ("reference", "ascending", "descending")
#: Which samples of a class a run takes (:func:`select_per_class`).
SELECTIONS = ("random", "first")
#: How the pixels are scaled (:func:`load`).
NORMALIZATIONS = ("reference", "standardize", "none")
#: The number of classes of each dataset with a fixed label set (the synthetic mixture has as many as asked).
CLASSES = {"cifar10": 10, "emnist-letters": 26, "letters-synthetic": 26}

#: Per-channel normalization of the reference code (Dang et al. 2023, ``datasets_unbalance.py``).
#: The std values are the often-copied (0.2023, 0.1994, 0.2010), not the true CIFAR-10 stds.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: The normalization of the closest public code with EMNIST letters (the EMNIST variant of Dang et al. 2023,
#: ``datasets_imbalanced.py``: ``Normalize((0.1722,), (0.3309,))`` after ``Grayscale(3)``), per channel.
EMNIST_MEAN = (0.1722,) * 3
EMNIST_STD = (0.3309,) * 3
#: The side of the square the letters are resized to before they reach the network (its ``Resize(32)``).
LETTERS_INPUT_SIZE = 32

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
LETTERS = tuple(string.ascii_lowercase)


@dataclasses.dataclass
class TrainingSet:
    """The training subset a run uses (objective (4.3) sums over exactly these N samples).

    ``x``: (N, D) float32 normalized inputs; ``y``: (N,) int64 labels sorted by class; ``counts``: (K,)
    int64, ``counts[k]`` samples of class k; ``images``: (N, H, W[, C]) uint8 upright images (for
    display; for the synthetic Gaussian mixture, which has no images, a float32 copy of ``x``); ``provenance``: a
    JSON-ready dict (dataset, source, sha256 of the source files and of the selected arrays, class order,
    selection, seed, normalization).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    counts: np.ndarray
    classes: tuple
    images: np.ndarray
    provenance: dict

    @property
    def K(self) -> int:
        return int(self.counts.size)

    @property
    def N(self) -> int:
        return int(self.y.size)


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
                         f"or re-download it and compare the sha256 with the original's (nclib.data.sha256_file)")


def _error_text(exc: BaseException) -> str:
    """'module.Name: message' of a reader's exception (zlib.error, zipfile.BadZipFile, _pickle.UnpicklingError)."""
    kind = type(exc).__name__ if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{type(exc).__name__}"
    return f"{kind}: {exc}" if str(exc) else kind


def check_images(images, dataset: str, name: str = "x_train") -> np.ndarray:
    """The images of a file-backed dataset of Section 5, checked: uint8 pixels 0..255 in :data:`IMAGE_SHAPES`.

    CIFAR-10 is (N, 32, 32, 3) uint8 (channels last, as ``torchvision.datasets.CIFAR10.data`` and the shared
    ``cifar10_subset.npz``), EMNIST letters (N, 28, 28) uint8 in torchvision's raw (transposed) orientation.
    Anything else is refused with a ValueError naming ``name``, the dtype or shape found and, where a common
    mistake explains it, the conversion: floats already in [0, 1] (``np.round(255 * x).astype(np.uint8)``), NaN
    pixels (bad data, not a training problem), wider integers, flat rows (which only CIFAR-10's python batches
    hold: give their folder as ``data_path``), channels first, grayscale CIFAR-10 or another image size.  The data of
    :ref:`ch-train` and :ref:`ch-engine`.
    """
    if dataset not in IMAGE_SHAPES:
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
            if x.dtype.kind == "f" and lo >= 0 and hi <= 1:
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
    (K = :data:`CLASSES`), one per image (``n_images``, the length of ``images_name``).

    Refused with a ValueError naming ``name``: one-hot rows (2-D), non-integer values, labels outside 0..K-1 (the
    message gives the minimum and maximum found, and says 1-based when they are 1..K), and a count that differs from
    the number of images (naming both arrays).  The data of :ref:`ch-train` and :ref:`ch-engine`.
    """
    if dataset not in IMAGE_SHAPES:
        raise ValueError(f"dataset must be one of {tuple(IMAGE_SHAPES)} (the datasets read from files), "
                         f"got {dataset!r}")
    K = CLASSES[dataset]
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


# ----------------------------------------------------------------------------------------------- helpers

def sha256_file(path) -> str:
    """The sha256 hex digest of a file (the ``source_sha256`` of a run's provenance; :ref:`ch-engine`)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_arrays(*arrays) -> str:
    """The sha256 of the bytes of the given arrays, dtype and shape included (the ``data_sha256`` of a run:
    the exact inputs and labels objective (4.3) was trained on; :ref:`ch-engine`)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def preset_counts(preset: str, class_order: str = "reference") -> np.ndarray:
    """The class-count vector of a paper profile (Section 5; ``nclib.imbalance.PROFILES``) in a class order.

    ``class_order="reference"`` assigns the counts as the reference code does (CIFAR-10 ascending by class
    index, EMNIST letters descending); ``"ascending"``/``"descending"`` force an order.
    Used by :ref:`ch-train`.
    """
    if not isinstance(preset, str) or preset not in imbalance.PROFILES:
        raise ValueError(f"counts must be a list of class counts or one of the presets "
                         f"{sorted(imbalance.PROFILES)}, got {preset!r}")
    n = imbalance.class_counts(imbalance.PROFILES[preset])  # descending, as the paper lists them
    if class_order == "reference":
        class_order = "ascending" if preset == "cifar10" else "descending"
    if class_order == "ascending":
        return np.sort(n)
    if class_order == "descending":
        return np.sort(n)[::-1].copy()
    raise ValueError(f"class_order must be 'reference', 'ascending' or 'descending', got {class_order!r}")


def resolve_counts(dataset: str, counts=None, class_order: str = "reference") -> tuple[np.ndarray, str]:
    """The class counts n of a run of ``dataset`` (class k gets n[k]; Section 5's profiles) and the profile's name.

    ``counts``: None means the dataset's own preset (``cifar10`` for cifar10, ``emnist-letters`` for the
    letters and their stand-in, ``[20, 10, 5]`` for synthetic); a preset name goes through
    :func:`preset_counts` in ``class_order``; a list of K counts is checked and kept (profile
    ``"explicit"``; the list is the order, so ``class_order`` must stay "reference").  Raises ValueError naming
    ``dataset``, ``counts`` or ``class_order`` (:ref:`ch-train`, :ref:`ch-fig1` to :ref:`ch-fig4`).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    defaulted = counts is None
    if counts is None:
        counts = {"cifar10": "cifar10", "emnist-letters": "emnist-letters",
                  "letters-synthetic": "emnist-letters"}.get(dataset, [20, 10, 5])
    if isinstance(counts, str):
        return preset_counts(counts, class_order), counts
    if class_order not in CLASS_ORDERS:
        raise ValueError(f"class_order must be one of {CLASS_ORDERS}, got {class_order!r}")
    if class_order != "reference":
        given = f"for the synthetic mixture's default counts {counts}" if defaulted else "with explicit counts"
        raise ValueError(f"class_order orders a preset's counts; {given} the list is the order (class k gets "
                         f"counts[k]): leave class_order 'reference', got {class_order!r}")
    return _checks.counts(counts, "counts"), "explicit"


def select_per_class(y, counts, seed: int = 0, selection: str = "random") -> np.ndarray:
    """Row indices taking ``counts[k]`` samples of each class k, deterministic by ``seed``.

    ``selection="random"``: a seeded permutation of each class's rows (numpy PCG64 seeded with ``seed``);
    ``"first"``: the first rows of each class in file order.  The result is sorted by class, then by the
    original row order.  Raises ValueError naming ``y`` unless it is a non-empty 1-D array of integer labels (bools
    refused), and if a class has fewer rows than asked.  Used by :ref:`ch-train`.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be a non-empty 1-D array of integer class labels, got shape {y.shape} dtype "
                         f"{y.dtype}")
    counts = _checks.counts(counts, "counts")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    rng = np.random.default_rng(_checks.nonneg_int(seed, "seed"))
    out = []
    for k, n_k in enumerate(counts):
        rows = np.flatnonzero(y == k)
        if rows.size < n_k:
            raise ValueError(f"counts[{k}] = {n_k} is larger than the {rows.size} samples class {k} has in the "
                             f"data (labels {int(y.min())}..{int(y.max())}); lower the count or use a larger copy "
                             f"of the dataset")
        if selection == "random":
            rows = np.sort(rng.permutation(rows)[:n_k])
        else:
            rows = rows[:n_k]
        out.append(rows)
    return np.concatenate(out)


def _normalize(images: np.ndarray, mean, std) -> np.ndarray:
    """uint8 images (N, H, W[, C]) -> (N, D) float32, (x/255 - mean)/std per channel, flattened."""
    x = images.astype(np.float32) / 255.0
    if x.ndim == 4:
        x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
        x = x.transpose(0, 3, 1, 2)  # CHW flattening, as torchvision's ToTensor + view does
    else:
        x = (x - np.float32(mean[0])) / np.float32(std[0])
    return np.ascontiguousarray(x.reshape(x.shape[0], -1))


def letters_input(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 letters -> (N, 32, 32, 3) uint8, what the network of Section 5 is fed for EMNIST letters
    (and their stand-in): the closest public code's ``transforms.Grayscale(3)`` and ``transforms.Resize(32)``
    on PIL images, i.e. PIL's bilinear resize to :data:`LETTERS_INPUT_SIZE` and the gray value in all three
    channels (:ref:`ch-engine`)."""
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W) uint8 grayscale, got shape {images.shape} dtype {images.dtype}")
    size = LETTERS_INPUT_SIZE
    out = np.empty((images.shape[0], size, size, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR))[..., None]
    return out


def source_path(dataset: str, data_path, download: bool = False) -> pathlib.Path | None:
    """The file or folder a dataset of Section 5 is read from: ``data_path`` with ``~`` expanded.

    ``cifar10`` and ``emnist-letters`` need a ``data_path`` (a torchvision root folder or an .npz) that
    exists, unless ``download`` (torchvision then creates the root); ``letters-synthetic`` reads the file of a
    rendering saved ahead (:func:`nclib.letters.save_letters_synthetic`) when ``data_path`` names one, which
    must exist, and renders otherwise (None); ``synthetic`` reads no file, so a ``data_path`` for it is refused.
    Raises ValueError naming ``data_path`` or ``download`` (chapter :ref:`ch-train`).
    """
    download = _checks.flag(download, "download")
    if dataset == "synthetic" and data_path is not None:
        raise ValueError(f"data_path {data_path!r} given, but the synthetic Gaussian mixture is drawn from the "
                         f"seed, not read from a file; leave data_path None")
    if dataset == "synthetic" or (dataset == "letters-synthetic" and data_path is None):
        return None
    if dataset == "letters-synthetic":  # a rendering saved ahead (nclib.letters.save_letters_synthetic)
        path = pathlib.Path(os.path.expanduser(str(data_path)))
        if not path.is_file():
            raise ValueError(f"data_path {str(path)!r} does not exist; for letters-synthetic pass the .npz that "
                             f"nclib.letters.save_letters_synthetic wrote, or None to render the letters")
        return path
    if data_path is None:
        raise ValueError(f"data_path is required for dataset {dataset!r}: a torchvision root folder or an .npz file")
    path = pathlib.Path(os.path.expanduser(str(data_path)))
    if not path.exists() and not download:
        raise ValueError(f"data_path {str(path)!r} does not exist; pass a torchvision root folder or an .npz file, "
                         f"or download=True to fetch into a torchvision root")
    return path


# ----------------------------------------------------------------------------------------------- sources

def load_npz(path):
    """``x_train``, ``y_train`` (and the sha256 of the file) from an ``.npz`` like ``cifar10_subset.npz``.

    Loaded with ``allow_pickle=False``; integer-valued labels come back as int64, others as stored (for
    :func:`check_labels` to refuse).  A file numpy cannot read (truncated, empty, a corrupted member, a damaged
    header, pickled object arrays) raises :class:`DamagedFileError` naming it.  Used by :ref:`ch-train`.
    """
    path = pathlib.Path(path)
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
            problem = ("it holds pickled (object) data, which is not loaded (allow_pickle=False): a damaged file, "
                       "or arrays saved from Python objects instead of numbers")
            raise DamagedFileError(path, problem) from exc
        raise DamagedFileError(path, _error_text(exc)) from exc
    except (zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise DamagedFileError(path, _error_text(exc)) from exc
    if x is None:
        raise ValueError(f"data_path {str(path)!r} must hold arrays x_train and y_train, has {files}")
    if y.dtype.kind in "iuf" and y.ndim == 1 and (y.dtype.kind != "f" or np.all(y == np.round(y))):
        y = y.astype(np.int64)  # other labels are left for check_labels to refuse, not truncated
    return x, y, {str(path.name): sha256_file(path)}


def _check_npz_record(path, dataset: str) -> None:
    """ValueError naming ``data_path`` for an .npz whose own members say it holds other data: CIFAR-10 ``classes``
    other than :data:`CIFAR10_CLASSES` (the labels would get wrong names and counts), or, read as EMNIST letters, a
    letters-synthetic rendering (``fonts``, ``images_sha256``, a ``note`` naming it: the stand-in keeps its name)."""
    keys = {"cifar10": ("classes",), "emnist-letters": ("fonts", "images_sha256", "note")}.get(dataset, ())
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            record = {k: np.asarray(f[k]) for k in keys if k in f.files}
    except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise DamagedFileError(path, _error_text(exc)) from exc
    if "classes" in record:
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(record["classes"]).tolist()]
        if names != list(CIFAR10_CLASSES):
            raise ValueError(f"data_path {str(path)!r} names its labels {names}, not CIFAR-10's "
                             f"{list(CIFAR10_CLASSES)} in label order; store y_train (and classes) in that coding")
    rendering = [k for k in ("fonts", "images_sha256") if k in record]
    if "note" in record and "letters-synthetic" in str(record["note"]):
        rendering.append("note")
    if rendering:
        raise ValueError(f"data_path {str(path)!r} is a letters-synthetic rendering (its members {rendering}), not "
                         f"EMNIST letters: load it with dataset 'letters-synthetic'")


def load_cifar10_torchvision(root, train: bool = True, download: bool = False, verify_checksums: bool = True):
    """CIFAR-10 through ``torchvision.datasets.CIFAR10`` (python batches under ``root/cifar-10-batches-py``).

    Returns (images (N, 32, 32, 3) uint8, labels int64, {file: sha256}).  ``download`` is passed on (off by
    default: nothing is fetched unless asked).  ``verify_checksums=False`` skips torchvision's md5 checks of
    the batch and meta files, which only the official files pass; the tests use it for their small fixtures
    written in the same format.  Used by :ref:`ch-train`.
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
            import pickle
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
                if f != CIFAR10.meta["filename"]:
                    np.asarray(entry["data"]).reshape(-1, 3, 32, 32)
                    if len(entry.get("labels", entry.get("fine_labels", []))) != len(entry["data"]):
                        raise ValueError("as many labels as images")
            except Exception as inner:  # noqa: BLE001 - any failure marks this file as the damaged one
                raise DamagedFileError(folder / f, _error_text(inner)) from exc
        raise
    names = [f for f, _ in files]
    shas = {n: sha256_file(folder / n) for n in names}
    return np.asarray(ds.data, dtype=np.uint8), np.asarray(ds.targets, dtype=np.int64), shas


def emnist_raw_files(root, train: bool = True) -> tuple[pathlib.Path, pathlib.Path]:
    """The two IDX files torchvision's ``EMNIST(split="letters")`` reads under ``root`` (the EMNIST data of
    Section 5; :ref:`ch-train`)."""
    raw = pathlib.Path(root) / "EMNIST" / "raw"
    prefix = f"emnist-letters-{'train' if train else 'test'}"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def load_emnist_letters_torchvision(root, train: bool = True, download: bool = False):
    """EMNIST letters through ``torchvision.datasets.EMNIST(root, split="letters")``.

    torchvision reads the uncompressed IDX files in ``root/EMNIST/raw``; where only the ``.gz`` files of the
    official archive lie there, they are decompressed first (nothing is downloaded unless ``download``).
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
            tmp = f.with_name(f.name + ".part")
            try:
                with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                tmp.unlink(missing_ok=True)
                raise DamagedFileError(gz, _error_text(exc)) from exc
            os.replace(tmp, f)
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


def gaussian_mixture(counts, dim: int = 32, seed: int = 0, spread: float = 1.0):
    """The ``synthetic`` dataset: class k has counts[k] points N(mu_k, spread^2 I_dim), mu_k ~ N(0, I_dim).

    Returns (x (N, dim) float32, y int64 sorted by class): the smoke run of :ref:`ch-train`.
    """
    counts = _checks.counts(counts, "counts")
    dim = _checks.positive_int(dim, "dim")
    spread = _checks.nonneg_float(spread, "spread")
    rng = np.random.default_rng(_checks.nonneg_int(seed, "seed"))
    means = rng.standard_normal((counts.size, dim))
    y = np.repeat(np.arange(counts.size), counts)
    x = means[y] + spread * rng.standard_normal((y.size, dim))
    return x.astype(np.float32), y.astype(np.int64)


# ----------------------------------------------------------------------------------------------- entry point

def check_load_args(dataset, counts=None, class_order="reference", selection="random", normalization="reference",
                    dim=32, spread=1.0) -> tuple[np.ndarray, str, int, float]:
    """The arguments of :func:`load` that choose the data, checked before any file is read: ``(n, profile, dim,
    spread)``, with the class counts n and the profile's name of :func:`resolve_counts`.  ValueError naming
    ``dataset``, ``counts`` (also when it asks for more classes than the dataset has), ``class_order``,
    ``selection``, ``normalization``, ``dim`` or ``spread``, so that a run's parameters can be refused before it
    starts (:ref:`ch-train`)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    n, profile = resolve_counts(dataset, counts, class_order)
    if dataset in CLASSES and n.size > CLASSES[dataset]:
        raise ValueError(f"counts has {n.size} classes but {dataset} has {CLASSES[dataset]}")
    return n, profile, _checks.positive_int(dim, "dim"), _checks.nonneg_float(spread, "spread")


def load(dataset: str = "cifar10", data_path=None, counts=None, class_order: str = "reference",
         selection: str = "random", seed: int = 0, normalization: str = "reference", download: bool = False,
         verify_checksums: bool = True, dim: int = 32, spread: float = 1.0) -> TrainingSet:
    """The training subset of a run (Section 5 of the paper): data, imbalanced profile, normalization.

    ``counts``: a preset name or a list of K counts; None means the dataset's own preset (``cifar10`` for
    cifar10, ``emnist-letters`` for the letters, ``[20, 10, 5]`` for synthetic).  ``normalization``:
    ``"reference"`` (the reference code's per-channel constants :data:`CIFAR10_MEAN`/:data:`CIFAR10_STD`,
    or :data:`EMNIST_MEAN`/:data:`EMNIST_STD` for the letters), ``"standardize"`` (per-channel mean and std of
    the selected subset; a constant channel is refused) or ``"none"`` (x/255).  Letters reach the network as
    :func:`letters_input` makes them (32 x 32 x 3); ``images`` keeps the 28 x 28 originals.  Arrays read from a file
    pass :func:`check_images` and :func:`check_labels` (uint8 pixels in the dataset's shape, labels 0..K-1, one per
    image) before any row is selected, and an .npz whose ``classes`` are not CIFAR-10's, or a letters-synthetic
    rendering given as EMNIST letters, is refused naming ``data_path``; a truncated, empty or corrupted file raises
    :class:`DamagedFileError` naming it (chapter :ref:`ch-train`).
    """
    seed = _checks.nonneg_int(seed, "seed")
    download, verify_checksums = _checks.flag(download, "download"), _checks.flag(verify_checksums, "verify_checksums")
    n, profile, dim, spread = check_load_args(dataset, counts, class_order, selection, normalization, dim, spread)
    prov = {"dataset": dataset, "profile": profile, "counts": n.tolist(), "class_order": class_order,
            "selection": selection, "seed": seed, "normalization": normalization}

    if dataset == "synthetic":
        source_path(dataset, data_path)  # refuses a data_path: the mixture reads no file
        x, y = gaussian_mixture(n, dim=dim, seed=seed, spread=spread)
        prov.update(source=f"Gaussian mixture, dim={dim}, spread={spread}", source_sha256={})
        ts = TrainingSet("synthetic", x, y, n, tuple(str(k) for k in range(n.size)), x.copy(), prov)
        if normalization == "standardize":
            ts.x = ((x - x.mean(0)) / np.maximum(x.std(0), 1e-12)).astype(np.float32)
        ts.provenance["data_sha256"] = sha256_arrays(ts.x, ts.y)
        return ts

    if dataset == "letters-synthetic":
        from . import letters  # here, not above: nclib.letters reads its files with this module's helpers

        path = source_path(dataset, data_path)
        if path is None:
            images, y = letters.letters_synthetic(n, seed=seed)
            fonts, shas = [p.name for p in letters.matplotlib_fonts()], {}
        else:  # rendered ahead: the same images, read
            images, y, fonts, shas = letters.read_letters_synthetic(path, n, seed)
            prov["rendered_ahead"] = path.name
        classes = LETTERS[: n.size]
        prov.update(source=letters.LETTERS_SYNTHETIC_LABEL, fonts=fonts, source_sha256=shas)
        name = "letters-synthetic"
        mean, std = EMNIST_MEAN, EMNIST_STD
    else:
        path = source_path(dataset, data_path, download)
        if path.suffix == ".npz":
            images_all, labels_all, shas = load_npz(path)
            images_all = check_images(images_all, dataset, "x_train")  # as stored, before any transpose
            _check_npz_record(path, dataset)
            source = f"npz file {path.name}"
            if dataset == "emnist-letters":
                images_all = images_all.transpose(0, 2, 1)  # stored in torchvision's raw orientation
        elif dataset == "cifar10":
            images_all, labels_all, shas = load_cifar10_torchvision(path, True, download, verify_checksums)
            source = "torchvision.datasets.CIFAR10 (python batches)"
        else:
            images_all, labels_all, shas = load_emnist_letters_torchvision(path, True, download)
            source = "torchvision.datasets.EMNIST(split='letters') (IDX files)"
        names = ("x_train", "y_train") if path.suffix == ".npz" else ("images", "labels")
        if path.suffix != ".npz":
            images_all = check_images(images_all, dataset, names[0])
        labels_all = check_labels(labels_all, dataset, len(images_all), names[1], names[0])
        rows = select_per_class(labels_all, n, seed=seed, selection=selection)
        images, y = images_all[rows], labels_all[rows]
        classes = (CIFAR10_CLASSES if dataset == "cifar10" else LETTERS)[: n.size]
        prov.update(source=source, source_sha256=shas)
        name = dataset
        mean, std = (CIFAR10_MEAN, CIFAR10_STD) if dataset == "cifar10" else (EMNIST_MEAN, EMNIST_STD)

    net_images = images
    if dataset != "cifar10":  # the letters: Grayscale(3) + Resize(32), as the closest public code
        net_images = letters_input(images)
        prov["input"] = (f"28 x 28 letters resized to {LETTERS_INPUT_SIZE} x {LETTERS_INPUT_SIZE} (PIL bilinear), "
                         f"gray repeated over 3 channels: transforms.Grayscale(3), transforms.Resize(32)")
    if normalization == "reference":
        x = _normalize(net_images, mean, std)
    elif normalization == "none":
        x = _normalize(net_images, (0.0,) * 3, (1.0,) * 3)
    else:  # the subset's own per-channel mean and std (the images are (N, 32, 32, 3): the letters too)
        f = net_images.astype(np.float64) / 255.0
        m, s = f.mean(axis=(0, 1, 2)), f.std(axis=(0, 1, 2))
        if np.any(s == 0):
            c = int(np.argmin(s))
            raise ValueError(f"normalization 'standardize' divides by each channel's std, but channel {c} of the "
                             f"selected images is constant ({f[..., c].flat[0] * 255:.0f}/255); use normalization "
                             f"'reference' or 'none'")
        x = _normalize(net_images, tuple(m), tuple(s))
    prov["data_sha256"] = sha256_arrays(x, y)
    prov["images_sha256"] = sha256_arrays(images, y)
    return TrainingSet(name, x, y.astype(np.int64), n, tuple(classes), images, prov)
