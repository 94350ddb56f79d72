"""Training data for the experiments of Section 5 and Appendix C: the paper's imbalanced subsets.

Every loader returns a :class:`TrainingSet`: flattened, normalized float32 inputs, int64 labels 0..K-1,
the class counts actually used, and provenance (the source, the sha256 of the source files and of the
selected arrays).  Used by :ref:`ch-train` and :ref:`ch-engine`.

Datasets (``load(dataset=...)``):

``cifar10``
    CIFAR-10 {cite:p}`krizhevsky2009learning`.  ``data_path`` is either a torchvision root folder holding
    ``cifar-10-batches-py/`` (read through ``torchvision.datasets.CIFAR10``, the python-batch format) or an
    ``.npz`` file with ``x_train`` (N, 32, 32, 3) uint8 and ``y_train`` (the shared JPEG-decoded subset), and a
    ``classes`` array, where it has one, naming the labels as :data:`CIFAR10_CLASSES` does.  The provenance says
    whether an .npz is the shared subset byte for byte (``shared_subset``: its sha256 is
    :data:`nclib.datafiles.SHARED_CIFAR10_SHA256`); any other copy is read too, and recorded as another file.
    An .npz of rows cut from another file (a *slice*, with a ``source_rows`` member: ``scripts/gpu_data_slice.py``
    keeps the rows of the GPU runs of Figures 1 and 3, cut at seed 0, ``"random"``) is recorded as such: the
    provenance's ``slice`` holds the source file's sha256 and the seed and selection the rows were cut by.  The
    run's own ``seed`` and ``selection`` then choose among the slice's rows only; where ``counts`` are the slice's
    class sizes they take every row, whatever the seed, so a run at any seed trains on the cut's data (the
    stability runs of :mod:`nclib.figures.stability` rely on it: their seeds vary the initialization and the
    batch order alone), and ``data_sha256`` is the same at every seed.
``emnist-letters``
    EMNIST letters {cite:p}`cohen2017emnist` through ``torchvision.datasets.EMNIST(split="letters")``: the
    IDX files ``EMNIST/raw/emnist-letters-{train,test}-{images-idx3,labels-idx1}-ubyte`` under ``data_path``
    (``.gz`` copies of them, as in the official ``gzip.zip``, are decompressed next to themselves first), whose
    labels 1..26 become 0..25, or an ``.npz`` with ``x_train`` in torchvision's raw orientation (or upright, where
    its ``orientation`` member says so: :data:`nclib.datafiles.EMNIST_ORIENTATIONS`; another value is refused) and
    ``y_train`` already 0..25, and a ``classes`` array, where it has one, naming the labels a..z as
    :data:`LETTERS` does (not a letters-synthetic rendering, which is refused); images are made upright.
    They are resized, made RGB and normalized as the closest public code with EMNIST does (the EMNIST variant
    of Dang et al.'s code, ``thotranhuu99/Neural-Collapse-in-Deep-Linear-Networks``, ``datasets_imbalanced.py``:
    ``Grayscale(3)``, ``Resize(32)``, ``Normalize((0.1722,), (0.3309,))``): resized to 32 x 32 with PIL's
    bilinear filter, the gray value repeated over 3 channels, so 3,072 inputs as for CIFAR-10
    (:func:`letters_input`).  One difference: that code feeds torchvision's images as stored, transposed, and
    nclib feeds them upright.  Up to PIL's rounding (at most one gray level in a pixel: resizing a transposed image
    rounds its two passes in the other order) the inputs are then a fixed permutation of the reference code's,
    which changes no distribution a run is drawn from: the first layer's initial weights (orthogonal, or i.i.d.
    Kaiming-uniform) are as likely as with their columns permuted, and Adam and the weight decays treat every
    weight alike.
``letters-synthetic``
    An offline **stand-in for EMNIST letters**: the 26 letters a..z (upper or lower case at random) printed
    in the fonts shipped with matplotlib, with random affine jitter, stroke width and pixel noise,
    28 x 28 grayscale, deterministic by seed, fed to the network as nclib feeds EMNIST letters (upright, with
    EMNIST's normalization).  Far less varied than handwriting, with a noisy background and a mean pixel that is
    not EMNIST's (see :mod:`nclib.letters`).  Its name always says it is a stand-in.  Rendered on the fly, or read
    from a rendering saved ahead (:func:`nclib.letters.save_letters_synthetic`) given as ``data_path``;
    :mod:`nclib.letters` renders it.
``synthetic``
    A Gaussian mixture in ``dim`` dimensions, for fast tests.

Class profiles: ``counts`` is a preset name (``"cifar10"``, ``"emnist-letters"``, i.e.
``nclib.imbalance.PROFILES``) or an explicit list of K counts (class k gets ``counts[k]``).  For a preset,
``class_order`` says which class gets which count: ``"reference"`` follows the closest public code (Dang et
al. 2023): CIFAR-10 ascending by class index (airplane 100, ..., truck 500), EMNIST letters descending
(a: 1500, b-f: 600, g-z: 50); ``"ascending"`` / ``"descending"`` force one order.  Within a class, the rows
are chosen by a seeded permutation (``selection="random"``, the paper's "random subset") or the first rows
in file order (``selection="first"``, what the reference code does).  The generated data sets
(``letters-synthetic``, ``synthetic``) are drawn from the seed, with no rows to choose from, so they take only the
default ``"random"``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import pathlib
import re
import struct
import zipfile
import zlib

import numpy as np

from . import _checks, imbalance
# The readers and checks of nclib.datafiles, public here too (nclib.data.load_npz, nclib.data.DamagedFileError, ...).
from .datafiles import (CIFAR10_CLASSES, EMNIST_ORIENTATIONS, FILE_CLASSES, LETTERS,  # noqa: F401
                        SHARED_CIFAR10, SHARED_CIFAR10_SHA256, DamagedFileError, check_images, check_labels,
                        emnist_raw_files, load_cifar10_torchvision, load_emnist_letters_torchvision, load_npz,
                        npz_record, reader_error_text, sha256_file)

DATASETS = ("cifar10", "emnist-letters", "letters-synthetic", "synthetic")
#: The class counts of each dataset where ``counts`` is not given: the paper's profile of its data set (Section 5),
#: the EMNIST letters profile for their stand-in, and three small classes for the synthetic data.
DEFAULT_COUNTS = {"cifar10": "cifar10", "emnist-letters": "emnist-letters", "letters-synthetic": "emnist-letters",
                  "synthetic": [20, 10, 5]}
#: How a preset's counts are given to the classes (:func:`preset_counts`).
CLASS_ORDERS = ("reference", "ascending", "descending")
#: Which samples of a class a run takes (:func:`select_per_class`); the first is the default, the only one the
#: generated data sets take.
SELECTIONS = ("random", "first")
#: The data sets drawn from the seed rather than read from a file: no rows to select, no ``selection`` to choose.
GENERATED = ("letters-synthetic", "synthetic")
#: How the pixels are scaled (:func:`load`).
NORMALIZATIONS = ("reference", "standardize", "none")
#: The number of classes of each dataset with a fixed label set (the synthetic mixture has as many as asked).
CLASSES = {**FILE_CLASSES, "letters-synthetic": len(LETTERS)}

#: Per-channel normalization of the reference code (Dang et al. 2023, ``datasets_unbalance.py``: ``Normalize(mean=
#: [0.4914, 0.4822, 0.4465], std=[0.2023, 0.1994, 0.2010])``, RGB order).
#: The std values are the often-copied (0.2023, 0.1994, 0.2010), not the true CIFAR-10 stds.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: The normalization of the closest public code with EMNIST letters (the EMNIST variant of Dang et al. 2023,
#: ``datasets_imbalanced.py``: ``Normalize((0.1722,), (0.3309,))`` after ``Grayscale(3)``), per channel.
EMNIST_MEAN = (0.1722,) * 3
EMNIST_STD = (0.3309,) * 3
#: The per-channel (mean, std) of ``normalization="reference"`` for each data set with pixels: CIFAR-10's constants,
#: EMNIST's for the letters and their stand-in (:func:`load`; the settings tables of :ref:`ch-fig1` to :ref:`ch-fig4`).
REFERENCE_NORMALIZATION = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "emnist-letters": (EMNIST_MEAN, EMNIST_STD),
                           "letters-synthetic": (EMNIST_MEAN, EMNIST_STD)}
#: The side of the square the letters are resized to before they reach the network (its ``Resize(32)``).
LETTERS_INPUT_SIZE = 32


@dataclasses.dataclass
class TrainingSet:
    """The training subset a run uses (objective (4.3) sums over exactly these N samples).

    ``x``: (N, D) float32 normalized inputs; ``y``: (N,) int64 labels sorted by class; ``counts``: (K,)
    int64, ``counts[k]`` samples of class k; ``images``: (N, H, W[, C]) uint8 upright images (for display; for the
    synthetic Gaussian mixture, which has no images, its points as drawn, (N, dim) float32: equal to ``x`` except
    under ``normalization="standardize"``, which standardizes ``x`` alone); ``provenance``: a JSON-ready dict
    (dataset, source, sha256 of the source files and of the selected arrays, class order, selection, seed,
    normalization; for an .npz that records them, its own ``file_source`` and ``lossy_jpeg``; for a slice of
    another file, ``slice``: the source's sha256 and the seed and selection the slice was cut by; for the letters,
    ``input``, how they were made the network's input, and ``pillow``, the version of Pillow that resized them,
    :func:`letters_input`, whose rounding a release of Pillow may change: a record written before it was recorded
    lacks it, which reads as not recorded, not as another version).
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
        """The number of classes K (the length of ``counts``; a class of the dataset left out is not counted)."""
        return int(self.counts.size)

    @property
    def N(self) -> int:
        """The number of training samples N = sum of ``counts``, the samples objective (4.3) sums over."""
        return int(self.y.size)


# ----------------------------------------------------------------------------------------------- helpers

def sha256_arrays(*arrays) -> str:
    """The sha256 of the bytes of the given arrays, dtype and shape included (the ``data_sha256`` of a run:
    the exact inputs and labels objective (4.3) was trained on; :ref:`ch-engine`).  An array of Python objects
    (dtype object, or None) is refused with a ValueError naming ``arrays[i]``: its bytes are pointers, which differ
    from one process to the next."""
    h = hashlib.sha256()
    for i, a in enumerate(arrays):
        a = np.ascontiguousarray(a)
        if a.dtype.kind == "O":
            raise ValueError(f"arrays[{i}] must be an array of numbers or fixed-width text, got dtype object: its "
                             f"bytes are pointers, not the values, so its sha256 would differ between processes")
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
        raise ValueError(f"preset must be one of {sorted(imbalance.PROFILES)}, got {preset!r}")
    if not isinstance(class_order, str) or class_order not in CLASS_ORDERS:
        raise ValueError(f"class_order must be 'reference', 'ascending' or 'descending', got {class_order!r}")
    n = imbalance.class_counts(imbalance.PROFILES[preset])  # descending, as the paper lists them
    if class_order == "reference":
        class_order = "ascending" if preset == "cifar10" else "descending"
    if class_order == "ascending":
        return np.sort(n)
    return np.sort(n)[::-1].copy()


def resolve_counts(dataset: str, counts=None, class_order: str = "reference") -> tuple[np.ndarray, str]:
    """The class counts n of a run of ``dataset`` (class k gets n[k]; Section 5's profiles) and the profile's name.

    ``counts``: None means the dataset's own preset (``cifar10`` for cifar10, ``emnist-letters`` for the
    letters and their stand-in, ``[20, 10, 5]`` for synthetic); a preset name goes through
    :func:`preset_counts` in ``class_order``; a list of K counts is checked and kept (profile
    ``"explicit"``; the list is the order, so ``class_order`` must stay "reference").  Raises ValueError naming
    ``dataset``, ``counts`` or ``class_order`` (:ref:`ch-train`, :ref:`ch-fig1` to :ref:`ch-fig4`).
    """
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    defaulted = counts is None
    if counts is None:
        counts = DEFAULT_COUNTS[dataset]
    if isinstance(counts, str):
        if counts not in imbalance.PROFILES:
            raise ValueError(f"counts must be a list of class counts or one of the presets "
                             f"{sorted(imbalance.PROFILES)}, got {counts!r}")
        return preset_counts(counts, class_order), counts
    if not isinstance(class_order, str) or class_order not in CLASS_ORDERS:
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
    original row order.  Rows labelled K = ``len(counts)`` or above are left out on purpose: ``counts=[5, 5]`` takes
    classes 0 and 1 of a ten-class file.  Raises ValueError naming ``y`` unless it is a non-empty 1-D array of
    non-negative integer labels (bools and floats refused, a negative label refused rather than dropped), and naming
    ``counts`` if a class has fewer rows than asked.  Used by :ref:`ch-train`.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iu":
        raise ValueError(f"y must be a non-empty 1-D array of integer class labels, got shape {y.shape} dtype "
                         f"{y.dtype}")
    if y.min() < 0:
        raise ValueError(f"y must hold class labels 0, 1, ..., got {np.count_nonzero(y < 0)} negative label(s) "
                         f"(min {int(y.min())})")
    counts = _checks.counts(counts, "counts")
    if not isinstance(selection, str) or selection not in SELECTIONS:
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
    """uint8 images (N, H, W, C) -> (N, D) float32, (x/255 - mean)/std per channel, flattened channel by channel
    (the letters reach it as :func:`letters_input` makes them, 3 channels too)."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    x = x.transpose(0, 3, 1, 2)  # CHW flattening, as torchvision's ToTensor + view does
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
    must be a file that exists (a folder is refused as one), and renders otherwise (None); ``synthetic`` reads no
    file, so a ``data_path`` for it is refused.
    Raises ValueError naming ``dataset`` (one of :data:`DATASETS`), ``data_path`` or ``download`` (chapter
    :ref:`ch-train`).
    """
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    download = _checks.flag(download, "download")
    if dataset == "synthetic" and data_path is not None:
        raise ValueError(f"data_path {data_path!r} given, but the synthetic Gaussian mixture is drawn from the "
                         f"seed, not read from a file; leave data_path None")
    if dataset == "synthetic" or (dataset == "letters-synthetic" and data_path is None):
        return None
    if dataset == "letters-synthetic":  # a rendering saved ahead (nclib.letters.save_letters_synthetic)
        path = pathlib.Path(os.path.expanduser(str(data_path)))
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise ValueError(f"data_path {str(path)!r} {what}; for letters-synthetic pass the .npz that "
                             f"nclib.letters.save_letters_synthetic wrote, or None to render the letters")
        return path
    if data_path is None:
        raise ValueError(f"data_path is required for dataset {dataset!r}: a torchvision root folder or an .npz file")
    path = pathlib.Path(os.path.expanduser(str(data_path)))
    if not path.exists() and not download:
        raise ValueError(f"data_path {str(path)!r} does not exist; pass a torchvision root folder or an .npz file, "
                         f"or download=True to fetch into a torchvision root")
    return path


# ----------------------------------------------------------------------------------------------- synthetic

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
    ``selection`` (also one other than the default ``"random"`` for a data set of :data:`GENERATED`, which selects
    no rows: the provenance would record a choice that did nothing), ``normalization``, ``dim`` or ``spread``, so
    that a run's parameters can be refused before it starts (:ref:`ch-train`)."""
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if not isinstance(normalization, str) or normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if not isinstance(selection, str) or selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if dataset in GENERATED and selection != SELECTIONS[0]:
        raise ValueError(f"selection {selection!r} chooses rows of a data file, but {dataset} is drawn from the seed "
                         f"and has none to choose: leave selection {SELECTIONS[0]!r}, the default")
    n, profile = resolve_counts(dataset, counts, class_order)
    if dataset in CLASSES and n.size > CLASSES[dataset]:
        raise ValueError(f"counts has {n.size} classes but {dataset} has {CLASSES[dataset]}")
    return n, profile, _checks.positive_int(dim, "dim"), _checks.nonneg_float(spread, "spread")


def load(dataset: str = "cifar10", data_path=None, counts=None, class_order: str = "reference",
         selection: str = "random", seed: int = 0, normalization: str = "reference", download: bool = False,
         verify_checksums: bool = True, dim: int = 32, spread: float = 1.0) -> TrainingSet:
    """The training subset of a run (Section 5 of the paper): data, imbalanced profile, normalization.

    ``counts``: a preset name or a list of K counts; None means the dataset's own preset (``cifar10`` for
    cifar10, ``emnist-letters`` for the letters, ``[20, 10, 5]`` for synthetic).  ``selection``: which rows of
    each class (:func:`select_per_class`); the data sets drawn from the seed take only ``"random"``.  ``normalization``:
    ``"reference"`` (the reference code's per-channel constants :data:`CIFAR10_MEAN`/:data:`CIFAR10_STD`,
    or :data:`EMNIST_MEAN`/:data:`EMNIST_STD` for the letters), ``"standardize"`` (per-channel mean and std of
    the selected subset, per coordinate for the synthetic mixture; a constant channel or coordinate is refused, as
    the mixture's are with ``spread=0`` and one class, or with a single point) or ``"none"`` (x/255).  Letters reach
    the network as :func:`letters_input` makes them (32 x 32 x 3); ``images`` keeps the 28 x 28 originals, upright.
    Arrays read from a file pass :func:`check_images` and :func:`check_labels` (uint8 pixels in the dataset's
    shape, labels 0..K-1, one per image) before any row is selected, and an .npz whose ``classes`` are not its
    dataset's in label order (CIFAR-10's, or a..z), or a letters-synthetic rendering given as EMNIST letters, is
    refused naming ``data_path``; a truncated, empty or
    corrupted file raises :class:`DamagedFileError` naming it (chapter :ref:`ch-train`).  ``verify_checksums``
    concerns torchvision's md5 checks of CIFAR-10's python batches alone: EMNIST's IDX files and the .npz files
    have no official checksums, and are read the same either way (their sha256 is recorded in the provenance; an
    .npz's ``shared_subset`` says whether it is the shared CIFAR-10 subset,
    :data:`nclib.datafiles.SHARED_CIFAR10_SHA256`; a slice of it is not, and its ``slice`` says what it was cut
    from and by which seed and selection, the run's ``seed`` and ``selection`` choosing among its rows only).
    """
    seed = _checks.nonneg_int(seed, "seed")
    download, verify_checksums = _checks.flag(download, "download"), _checks.flag(verify_checksums, "verify_checksums")
    n, profile, dim, spread = check_load_args(dataset, counts, class_order, selection, normalization, dim, spread)
    prov = {"dataset": dataset, "profile": profile, "counts": n.tolist(), "class_order": class_order,
            "selection": selection, "seed": seed, "normalization": normalization}
    if dataset == "synthetic":
        return _mixture_set(n, data_path, seed, normalization, dim, spread, prov)
    if dataset == "letters-synthetic":
        images, y = _letters_synthetic_images(n, data_path, seed, prov)
    else:
        images, y = _selected_file_images(dataset, data_path, n, seed, selection, download, verify_checksums, prov)
    classes = (CIFAR10_CLASSES if dataset == "cifar10" else LETTERS)[: n.size]
    x = _network_input(dataset, images, normalization, prov)
    prov["data_sha256"] = sha256_arrays(x, y)
    prov["images_sha256"] = sha256_arrays(images, y)
    return TrainingSet(dataset, x, y.astype(np.int64), n, tuple(classes), images, prov)


def _mixture_set(n, data_path, seed, normalization, dim, spread, prov) -> TrainingSet:
    """:func:`load`'s ``synthetic`` set: the Gaussian mixture of :func:`gaussian_mixture`, which has no pixels, so
    ``"reference"`` and ``"none"`` leave it as drawn and ``"standardize"`` scales each coordinate; adds its source to
    ``prov``.  ValueError for ``"standardize"`` when a coordinate is constant (``spread=0`` with one class, or a
    single point), which has no std to divide by, as :func:`_network_input` refuses a constant channel."""
    source_path("synthetic", data_path)  # refuses a data_path: the mixture reads no file
    x, y = gaussian_mixture(n, dim=dim, seed=seed, spread=spread)
    if normalization == "standardize" and np.any(flat := (x == x[0]).all(axis=0)):
        raise ValueError(f"normalization 'standardize' divides each coordinate by its std, but coordinate "
                         f"{int(np.argmax(flat))} of the synthetic mixture is constant (counts {n.tolist()}, spread "
                         f"{spread}): use spread > 0 and more than one point, more than one class, or normalization "
                         f"'reference' or 'none'")
    prov.update(source=f"Gaussian mixture, dim={dim}, spread={spread}", source_sha256={})
    ts = TrainingSet("synthetic", x, y, n, tuple(str(k) for k in range(n.size)), x.copy(), prov)
    if normalization == "standardize":
        ts.x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    ts.provenance["data_sha256"] = sha256_arrays(ts.x, ts.y)
    return ts


def _letters_synthetic_images(n, data_path, seed, prov):
    """:func:`load`'s ``letters-synthetic`` images and labels, (N, 28, 28) uint8 and (N,): rendered now, or read
    from the rendering saved ahead that ``data_path`` names; adds the source, the fonts and the file's sha256 to
    ``prov``."""
    from . import letters  # here, not above: nclib.letters takes resolve_counts and sha256_arrays from this module

    path = source_path("letters-synthetic", data_path)
    if path is None:
        images, y = letters.letters_synthetic(n, seed=seed)
        fonts, shas = [p.name for p in letters.matplotlib_fonts()], {}
    else:  # rendered ahead: the same images, read
        images, y, fonts, shas = letters.read_letters_synthetic(path, n, seed)
        prov["rendered_ahead"] = path.name
    prov.update(source=letters.LETTERS_SYNTHETIC_LABEL, fonts=fonts, source_sha256=shas)
    return images, y


def _selected_file_images(dataset, data_path, n, seed, selection, download, verify_checksums, prov):
    """:func:`load`'s images and labels of ``cifar10`` or ``emnist-letters``: the file or torchvision root at
    ``data_path`` read and checked, then ``n[k]`` rows of class k chosen by :func:`select_per_class`; upright
    images, (N, 32, 32, 3) or (N, 28, 28) uint8.  Adds the source and the files' sha256 to ``prov``; for an .npz,
    ``shared_subset`` (whether it is the shared CIFAR-10 subset byte for byte), its own ``source`` and
    ``lossy_jpeg`` members as ``file_source`` and ``lossy_jpeg``, an EMNIST file's ``orientation``
    (:func:`npz_record`), and for a slice of another file its ``slice`` (:func:`_slice_record`)."""
    path = source_path(dataset, data_path, download)
    if path.suffix == ".npz":
        images_all, labels_all, shas = load_npz(path)
        images_all = check_images(images_all, dataset, "x_train")  # as stored, before any transpose
        record = npz_record(path, dataset)  # refuses a file whose members say it holds other data
        record["shared_subset"] = shas[path.name] == SHARED_CIFAR10_SHA256  # its own source member is no proof
        cut = _slice_record(path, len(images_all))
        if cut is not None:  # rows cut from another file: the run's seed and selection did not choose them
            record["slice"] = cut
        source = f"npz file {path.name}"
        if dataset == "emnist-letters" and record.get("orientation", EMNIST_ORIENTATIONS[0]) != "upright":
            images_all = images_all.transpose(0, 2, 1)  # stored in torchvision's raw orientation
        labels_all = check_labels(labels_all, dataset, len(images_all), "y_train", "x_train")
    else:
        if dataset == "cifar10":
            images_all, labels_all, shas = load_cifar10_torchvision(path, True, download, verify_checksums)
            source = "torchvision.datasets.CIFAR10 (python batches)"
        else:
            images_all, labels_all, shas = load_emnist_letters_torchvision(path, True, download)
            source = "torchvision.datasets.EMNIST(split='letters') (IDX files)"
        images_all = check_images(images_all, dataset, "images")
        labels_all = check_labels(labels_all, dataset, len(images_all), "labels", "images")
        record = {}
    rows = select_per_class(labels_all, n, seed=seed, selection=selection)
    prov.update(source=source, source_sha256=shas, **record)  # an .npz's own source and lossy_jpeg, where it has them
    return images_all[rows], labels_all[rows]


#: The members of an .npz holding rows cut from another file (``scripts/gpu_data_slice.py``): the row numbers kept,
#: the source file's sha256, and the seed and selection the rows were chosen by (:func:`select_per_class`).
SLICE_KEYS = ("source_rows", "source_sha256", "slice_seed", "slice_selection")


def _slice_record(path, n_rows: int) -> dict | None:
    """What an .npz of rows cut from another file says of its cut, for the provenance's ``slice`` (:func:`load`):
    ``{"source_sha256", "source_is_shared_subset", "rows", "seed", "selection"}``, or None for a file with no
    ``source_rows`` (no slice).  ``seed`` and ``selection`` are None for a slice that does not store them (made by
    the older forms of ``scripts/gpu_data_slice.py``, which cut every slice at seed 0, ``"random"``).  ValueError
    naming ``data_path`` for members that are not what a slice holds: ``source_rows`` one distinct row number
    (0 or more) per image, ``source_sha256`` one sha256 in hex, ``slice_seed`` one whole number 0 or more,
    ``slice_selection`` one of :data:`SELECTIONS`; a member numpy cannot read raises :class:`DamagedFileError`."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            if "source_rows" not in f.files:
                return None
            members = {k: np.asarray(f[k]) for k in SLICE_KEYS if k in f.files}
    except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise DamagedFileError(path, reader_error_text(exc)) from exc

    def refuse(what):
        raise ValueError(f"data_path {str(path)!r} holds rows cut from another file (its member source_rows), but "
                         f"{what}; make the slice again with scripts/gpu_data_slice.py")

    rows = members["source_rows"]
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or rows.size != n_rows or (rows.size and rows.min() < 0) \
            or np.unique(rows).size != rows.size:
        refuse(f"source_rows is not one distinct row number per image of its {n_rows} (dtype {rows.dtype} shape "
               f"{rows.shape})")
    sha = members.get("source_sha256")
    if sha is None or sha.ndim != 0 or sha.dtype.kind != "U" or re.fullmatch(r"[0-9a-f]{64}", str(sha)) is None:
        refuse("its member source_sha256 is not one sha256 in hex")
    out = {"source_sha256": str(sha), "source_is_shared_subset": str(sha) == SHARED_CIFAR10_SHA256,
           "rows": int(n_rows), "seed": None, "selection": None}
    if ("slice_seed" in members) != ("slice_selection" in members):
        refuse("it stores only one of slice_seed and slice_selection")
    if "slice_seed" in members:
        seed, selection = members["slice_seed"], members["slice_selection"]
        if seed.ndim != 0 or seed.dtype.kind not in "iu" or int(seed) < 0:
            refuse(f"its member slice_seed is not one whole number 0 or more (dtype {seed.dtype} shape {seed.shape})")
        if selection.ndim != 0 or selection.dtype.kind != "U" or str(selection) not in SELECTIONS:
            refuse(f"its member slice_selection is not one of {SELECTIONS}")
        out.update(seed=int(seed), selection=str(selection))
    return out


def _network_input(dataset, images, normalization, prov) -> np.ndarray:
    """What the network of Section 5 is fed, (N, 3072) float32: the letters made 32 x 32 x 3 by
    :func:`letters_input` (recorded in ``prov``, ``input``, with the version of Pillow that resized them,
    ``pillow``), then the pixels scaled as ``normalization`` says (see :func:`load`).  ValueError for
    ``"standardize"`` when a channel of the selected images is constant."""
    if dataset != "cifar10":  # the letters, upright: Grayscale(3) + Resize(32), as the closest public code
        images = letters_input(images)
        prov["input"] = (f"upright 28 x 28 letters resized to {LETTERS_INPUT_SIZE} x {LETTERS_INPUT_SIZE} (PIL "
                         f"bilinear), gray repeated over 3 channels: transforms.Grayscale(3), transforms.Resize(32)")
        import PIL  # here, as in letters_input: the other data sets need no Pillow

        prov["pillow"] = PIL.__version__  # its resize rounds the inputs: another release, another data_sha256
    if normalization == "reference":
        mean, std = REFERENCE_NORMALIZATION[dataset]
        return _normalize(images, mean, std)
    if normalization == "none":
        return _normalize(images, (0.0,) * 3, (1.0,) * 3)
    f = images.astype(np.float64) / 255.0  # the subset's own per-channel mean and std (the letters have 3 too)
    m, s = f.mean(axis=(0, 1, 2)), f.std(axis=(0, 1, 2))
    if np.any(s == 0):
        c = int(np.argmin(s))
        raise ValueError(f"normalization 'standardize' divides by each channel's std, but channel {c} of the "
                         f"selected images is constant ({f[..., c].flat[0] * 255:.0f}/255); use normalization "
                         f"'reference' or 'none'")
    return _normalize(images, tuple(m), tuple(s))


#: The arguments of :func:`load`, which a run's parameters (``nclib.parameters.DEFAULTS``) hold under the same names.
LOAD_KEYS = tuple(inspect.signature(load).parameters)


def load_for(params) -> TrainingSet:
    """The training set of a run with parameters ``params`` (a mapping holding every key of :data:`LOAD_KEYS`, as
    ``nclib.parameters.check_params`` returns them): :func:`load` with those arguments (Section 5 of the paper)."""
    if not hasattr(params, "keys"):
        raise ValueError(f"params must be a mapping of a run's parameters, got {type(params).__name__}")
    missing = [k for k in LOAD_KEYS if k not in params]
    if missing:
        raise ValueError(f"params lacks {', '.join(missing)}: the training set needs every key of LOAD_KEYS")
    return load(**{k: params[k] for k in LOAD_KEYS})
