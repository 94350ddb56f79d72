"""The ``letters-synthetic`` data set: an offline stand-in for the EMNIST letters of Figures 2 and 4.

The 26 letters a..z, upper or lower case at random, rendered from the fonts shipped with matplotlib with random
affine jitter, stroke width and pixel noise, 28 x 28 grayscale, deterministic by seed.  Its name always says it
is a stand-in (:data:`LETTERS_SYNTHETIC_LABEL`).  :func:`nclib.data.load` ``("letters-synthetic")`` renders it
(:func:`letters_synthetic`) or reads a rendering saved ahead (:func:`save_letters_synthetic`,
:func:`read_letters_synthetic`) and feeds it to the network as it feeds EMNIST letters: upright, resized to
32 x 32, gray in 3 channels, normalized with EMNIST's constants (:func:`nclib.data.letters_input`).

How it differs from EMNIST letters, beyond being printed rather than handwritten:

- Each letter is one of 32 shapes, the printed glyph of one of 16 font files (:func:`matplotlib_fonts`: DejaVu
  Sans, Sans Mono and Serif in four styles each, STIX General, and the Computer Modern cmr10, cmss10 and cmtt10)
  in one of 2 cases, under a mild random jitter: far less varied than the handwriting of thousands of writers.
- Every class is drawn in either case (EMNIST letters merges the two cases of a letter into one class as well),
  so class i holds capital I's and class l small l's, and in 5 of the 16 fonts (the four DejaVu Sans and cmss10,
  sans-serif) these are nearly the same bar: the mean absolute difference of their 64 x 64 glyphs is at most
  0.015, against 0.07 or more in the four mono fonts, whose I and l are drawn apart.  Such samples of classes i
  and l differ only by their jitter, stroke and noise, not by the shape of a letter.
- Its background is noise (std 0.05 before clipping at 0), not EMNIST's clean zero.
- Its mean pixel on [0, 1] is about 0.20 for the paper's EMNIST profile (the counts of Figure 2), not EMNIST's
  about 0.17, yet it is normalized with EMNIST's constants (:data:`nclib.data.EMNIST_MEAN` 0.1722,
  :data:`nclib.data.EMNIST_STD` 0.3309), as the runs on EMNIST would be: its inputs have a mean about 0.1, not 0.
"""
from __future__ import annotations

import functools
import os
import pathlib
import struct
import zipfile
import zlib

import numpy as np

from . import _checks, data
from .datafiles import LETTERS, DamagedFileError, check_images, load_npz, reader_error_text, temporary_path

#: The stand-in's display name, used in run names, provenance, legends and titles.
LETTERS_SYNTHETIC_LABEL = "letters-synthetic (a stand-in for EMNIST letters, rendered from matplotlib's fonts)"
#: The largest seed a rendering saved ahead can store (:func:`save_letters_synthetic`: an int64 in the file).
MAX_SAVED_SEED = int(np.iinfo(np.int64).max)


def matplotlib_fonts() -> list[pathlib.Path]:
    """The TrueType fonts shipped inside matplotlib that :func:`letters_synthetic` renders from (sorted;
    the stand-in for the EMNIST data of Section 5, :ref:`ch-train`)."""
    import matplotlib

    folder = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    wanted = ("DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "STIXGeneral", "cmr10", "cmss10", "cmtt10")
    return sorted(p for p in folder.glob("*.ttf") if p.stem.split("-")[0] in wanted)


def _glyph(char: str, font: pathlib.Path, size: int = 64) -> np.ndarray:
    """A centred, anti-aliased (4x supersampled) coverage bitmap in [0, 1] of one character."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path
    from matplotlib.textpath import TextPath

    tp = TextPath((0, 0), char, size=1.0, prop=FontProperties(fname=str(font)))
    verts = tp.vertices.copy()
    lo, hi = verts.min(0), verts.max(0)
    scale = 0.72 * size / max(hi - lo)
    verts = (verts - (lo + hi) / 2) * scale + size / 2
    s = 4
    g = (np.arange(size * s) + 0.5) / s
    gx, gy = np.meshgrid(g, g)
    points = np.column_stack([gx.ravel(), size - gy.ravel()])
    inside = np.zeros(points.shape[0], bool)
    for poly in Path(verts, tp.codes).to_polygons():  # even-odd rule: the holes of o, a, e, B stay empty
        inside ^= Path(poly).contains_points(points)
    return inside.reshape(size * s, size * s).reshape(size, s, size, s).mean(axis=(1, 3))


def letters_synthetic(counts, seed: int = 0, size: int = 28):
    """The ``letters-synthetic`` stand-in for EMNIST letters: class k is the letter ``a..z``[k].

    Each sample: a font drawn from :func:`matplotlib_fonts`, upper or lower case at random, a 64 x 64 glyph
    moved by a random affine map (rotation +-15 deg, shear +-0.2, scale 0.8-1.1, shift +-3 px), stroke width
    changed by a grey dilation of 0-2 px or a half-strength erosion of 1 px (at 64 x 64), smoothed by a box filter
    of ``64 // size + 1`` px and resized to ``size`` x ``size`` by bilinear interpolation (``scipy.ndimage.zoom``;
    close to area averaging, not equal to it), then Gaussian pixel noise (std 0.05) and clipping.  Deterministic by
    ``seed``.
    Returns (upright images (N, size, size) uint8, labels int64 sorted by class), fresh copies of a rendering kept
    for the last few (counts, seed, size): the runs L = 1, 3, 6 of one figure notebook render their data once, not
    three times.
    Used by :ref:`ch-train`.
    """
    counts = _checks.counts(counts, "counts")
    if counts.size > 26:
        raise ValueError(f"counts must have at most 26 classes (a..z) for letters-synthetic, got {counts.size}")
    size = _checks.positive_int(size, "size")
    images, y = _render_letters(tuple(counts.tolist()), _checks.nonneg_int(seed, "seed"), size)
    return images.copy(), y.copy()


def save_letters_synthetic(path, counts=None, class_order: str = "reference", seed: int = 0) -> pathlib.Path:
    """Render the ``letters-synthetic`` stand-in once and write it to the ``.npz`` file ``path``, which
    ``nclib.data.load("letters-synthetic", data_path=path, ...)`` then reads instead of rendering again when it
    asks for the same class counts and seed (:func:`read_letters_synthetic`).

    ``counts``, ``class_order`` and ``seed`` are :func:`nclib.data.load`'s, the seed at most
    :data:`MAX_SAVED_SEED` (the file stores it as an int64; :func:`nclib.data.load` renders a larger one when it is
    given no ``data_path``): a larger one is refused with a ValueError naming ``seed`` before anything is rendered.
    The file holds ``x_train`` (the 28 x 28 uint8 images), ``y_train``, the class counts, the seed, the names of
    the fonts rendered from and the sha256 of the images and labels; it is written atomically, its folder made first
    where it is missing.  A ``path`` that is a folder, or whose folder cannot be made because a file is in its way,
    is refused with a ValueError naming ``path`` before anything is rendered.  Rendering the paper's EMNIST profile
    (5,500 images) takes about 5 s on one core (``benchmarks/bench_letters.py``, its output committed in
    ``benchmarks/results/bench_letters.txt``), time a GPU machine's notebook would otherwise spend with the GPU idle,
    once per notebook.  Written by ``scripts/gpu_letters_data.py``; the training notebook (:ref:`ch-train`)
    reads the file as its ``data_path``.
    """
    n, _ = data.resolve_counts("letters-synthetic", counts, class_order)
    seed = _checks.nonneg_int(seed, "seed")
    if seed > MAX_SAVED_SEED:
        raise ValueError(f"seed must be at most 2**63 - 1 = {MAX_SAVED_SEED} to be stored in the rendering's file (an "
                         f"int64), got {seed}; nclib.data.load renders the letters of a larger seed itself when it is "
                         f"given no data_path")
    path = pathlib.Path(os.path.expanduser(str(path)))
    if path.suffix != ".npz":
        raise ValueError(f"path must name an .npz file, got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a folder; name the .npz file to write")
    try:  # before rendering: a folder that cannot be made fails now, not after the rendering's seconds
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ValueError(f"path {str(path)!r} cannot be written: its folder {str(path.parent)!r} cannot be made, "
                         f"a file is in its way ({exc.strerror})") from None
    images, y = letters_synthetic(n, seed=seed)
    tmp = temporary_path(path)  # this process's own: two renderings written at once never share one
    try:
        with open(tmp, "xb") as handle:
            np.savez_compressed(handle, x_train=images, y_train=y, counts=n.astype(np.int64), seed=np.int64(seed),
                                fonts=np.array([f.name for f in matplotlib_fonts()]),
                                images_sha256=np.array(data.sha256_arrays(images, y)),
                                note=np.array(LETTERS_SYNTHETIC_LABEL
                                              + ", rendered ahead by nclib.letters.save_letters_synthetic"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_letters_synthetic(path, counts, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """The ``letters-synthetic`` rendering that :func:`save_letters_synthetic` wrote to ``path``, checked against
    what a run asks for: ``(images, labels, fonts, {file name: sha256})``.

    ``counts`` are the class counts in class order (as :func:`nclib.data.resolve_counts` gives them) and ``seed`` the
    rendering's; a file rendered for other counts or another seed is refused with a ValueError naming
    ``data_path``, as are images not (N, 28, 28) uint8 and labels not sorted by class in those counts.  A file
    that cannot be read, or whose images and labels no longer have the sha256 stored with them, raises
    :class:`nclib.datafiles.DamagedFileError`.  Used by :func:`nclib.data.load` (:ref:`ch-train`).
    """
    path = pathlib.Path(path)
    n = _checks.counts(counts, "counts")
    seed = _checks.nonneg_int(seed, "seed")
    images, y, shas = load_npz(path)
    keys = ("counts", "seed", "fonts", "images_sha256")
    try:  # load_npz read x_train and y_train; the other members may still be damaged
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            meta = {k: np.asarray(f[k]) for k in keys if k in f.files}
    except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, struct.error, NotImplementedError) as exc:
        raise DamagedFileError(path, reader_error_text(exc)) from exc
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ValueError(f"data_path {str(path)!r} is not a letters-synthetic rendering of "
                         f"nclib.letters.save_letters_synthetic: it lacks {missing}")
    kinds = {"counts": ("iu", 1), "seed": ("iu", 0), "fonts": ("U", 1), "images_sha256": ("U", 0)}
    if any(meta[k].dtype.kind not in kind or meta[k].ndim != ndim for k, (kind, ndim) in kinds.items()):
        raise DamagedFileError(path, "its counts, seed, fonts and sha256 are not the arrays "
                                     "save_letters_synthetic writes")
    file_counts, file_seed = meta["counts"].tolist(), int(meta["seed"])
    fonts, stored_sha = [str(v) for v in meta["fonts"].tolist()], str(meta["images_sha256"])
    if file_counts != n.tolist() or file_seed != seed:
        raise ValueError(f"data_path {str(path)!r} holds the letters-synthetic rendering of counts {file_counts} "
                         f"and seed {file_seed}; this run asks for counts {n.tolist()} and seed {seed}: render "
                         f"those with nclib.letters.save_letters_synthetic, or leave data_path None")
    try:
        images = check_images(images, "emnist-letters", "x_train")  # 28 x 28 uint8, as the rendering
    except ValueError as exc:  # named by the file, as the other refusals of a rendering are
        raise ValueError(f"data_path {str(path)!r}: {exc}") from None
    if not np.array_equal(y, np.repeat(np.arange(n.size), n)):
        raise ValueError(f"data_path {str(path)!r}: y_train is not the labels 0..{n.size - 1} sorted by class in "
                         f"the counts {n.tolist()}")
    if data.sha256_arrays(images, y) != stored_sha:
        raise DamagedFileError(path, "its images and labels do not have the sha256 stored with them")
    return images, y, fonts, shas


@functools.lru_cache(maxsize=4)
def _render_letters(counts: tuple, seed: int, size: int):
    """The rendering of :func:`letters_synthetic` for checked arguments (memoized; callers get copies)."""
    from scipy import ndimage

    counts = np.array(counts, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fonts = matplotlib_fonts()
    big = 64
    cache: dict = {}
    y = np.repeat(np.arange(counts.size), counts)
    out = np.empty((y.size, size, size), np.uint8)
    for i, k in enumerate(y):
        font = fonts[rng.integers(len(fonts))]
        char = LETTERS[k].upper() if rng.random() < 0.5 else LETTERS[k]
        key = (char, font)
        if key not in cache:
            cache[key] = _glyph(char, font, big)
        g = cache[key]
        angle = np.deg2rad(rng.uniform(-15, 15))
        shear = rng.uniform(-0.2, 0.2)
        scale = rng.uniform(0.8, 1.1)
        shift = rng.uniform(-3, 3, size=2) * big / size
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        A = scale * rot @ np.array([[1.0, shear], [0.0, 1.0]])
        Ainv = np.linalg.inv(A)
        c = np.array([big / 2, big / 2])
        offset = c - Ainv @ (c + shift)
        img = ndimage.affine_transform(g, Ainv, offset=offset, order=1, mode="constant", cval=0.0)
        width = int(rng.integers(-1, 3))
        if width > 0:
            img = ndimage.grey_dilation(img, size=(2 * width + 1, 2 * width + 1))
        elif width < 0:
            img = ndimage.grey_erosion(img, size=(3, 3)) * 0.5 + img * 0.5
        img = ndimage.zoom(ndimage.uniform_filter(img, size=big // size + 1), size / big, order=1)[:size, :size]
        img = img + rng.normal(0.0, 0.05, img.shape)
        out[i] = np.clip(np.round(255 * img), 0, 255).astype(np.uint8)
    return out, y.astype(np.int64)
