"""The samples that the collapse metrics and the training accuracy read, checked, and the exact rescaling the metrics
compute in.

Features are given as an N x d array (one row per sample), labels as N integers 0..K-1 (integer-valued floats are read
as integers, as ``nclib.datafiles.check_labels`` reads them), every class with a sample; float32 or float64 features
are read in float64. Torch tensors are read by their values (detached, also where they require grad, as trained
weights do), and nested lists that numpy cannot read as one array are refused naming the argument
(:func:`nclib._checks.array`). Each check returns a clean value or raises a ValueError naming the argument, as those
of :mod:`nclib._checks` do; these are the checks of samples (a row per sample, a label per row, every class present)
and of the class counts and class means they give.

The rescaling: :func:`_unit_peak` multiplies an array by the power of two that puts its largest |entry| in
[0.5, 1), exactly, so that the sums, norms and products that the metrics form of any finite features, weights or
predicted strengths neither overflow nor underflow; the metrics are scale free, or are scaled back by the same power
(a class mean, the norm of the global feature mean).
"""
from __future__ import annotations

import numpy as np

from . import _checks


def _features(features, name: str = "features") -> np.ndarray:
    """N x d finite float64 copy-free view (a copy when a cast is needed) of a float array (a torch tensor is read
    detached, :func:`nclib._checks.array`)."""
    arr = _checks.array(features, name)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a real float array (N x d), got dtype {arr.dtype}")
    if _checks.mixes_bools(features):  # numpy reads [[True, 2.0]] as floats
        raise ValueError(f"{name} must be a real float array (N x d), not bools")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, d), one row per sample; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _class_indices(labels, name: str = "labels") -> tuple[np.ndarray, int, int]:
    """A non-empty 1-D array of class indices, and its smallest and largest value as exact Python ints (read in the
    stored dtype, so that a uint64 or a huge float is reported as stored, not as its int64 wrap-around).

    Integers, or floats with integer values, as :func:`nclib.datafiles.check_labels` and ``nclib._checks.counts``
    take class indices and counts; bools, NaN, inf, fractions and ragged nested lists are refused by ``name``, and a
    torch tensor is read detached (:func:`nclib._checks.array`). The range is the caller's to check."""
    arr = _checks.array(labels, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one class index, got none")
    if arr.dtype == bool or _checks.mixes_bools(labels):  # numpy reads [0, True, 1] as integers
        raise ValueError(f"{name} must hold integer class indices 0..K-1, got booleans")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class indices 0..K-1, got non-integer values")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices 0..K-1, got dtype {arr.dtype}")
    return arr, int(arr.min()), int(arr.max())  # int() of an integer-valued float is exact


def _shown(value: int) -> str:
    """A class index for a message: in full up to 20 digits (any int64 or uint64), else in %g form."""
    return str(value) if abs(value) < 10**20 else f"{float(value):g}"


def _labels(labels, N: int, num_classes: int | None = None, name: str = "labels",
            head: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Validated int64 labels of length N with values 0..K-1, and the class counts n (length K).

    K is ``num_classes`` when given, else ``max(labels) + 1``; every class must have a sample. Labels are
    integers or integer-valued floats (:func:`_class_indices`). ``head=True``: ``num_classes`` is the number of
    rows of W_L = Ws[-1] (:func:`nclib.metrics.collapse_metrics`), and the refusals say so, naming ``Ws``.
    """
    arr, lo, hi = _class_indices(labels, name)
    if arr.size != N:
        raise ValueError(f"{name} must have one entry per sample: features has N={N} rows, {name} has {arr.size}")
    if lo < 0:
        raise ValueError(f"{name} must hold class indices 0..K-1, got the value {_shown(lo)}")
    # every class needs a sample, so K <= N: checked before np.bincount allocates K counters
    if num_classes is None:
        if hi >= N:
            raise ValueError(f"{name} must hold class indices 0..K-1 with every class present, so each label must be "
                             f"below the number of samples N={N}; got the value {_shown(hi)}")
        K = hi + 1
    else:
        source = ", the number of rows of Ws[-1] (W_L)" if head else ""
        K = _checks.positive_int(num_classes, "Ws[-1] (W_L): its number of rows K" if head else "num_classes")
        if K > N:
            raise ValueError(f"Ws[-1] (W_L) has K={K} rows, one per class, more than the N={N} samples; every class "
                             f"needs a sample" if head else
                             f"num_classes={K} exceeds the number of samples N={N}; every class needs a sample")
        if hi >= K:
            raise ValueError(f"{name} must hold class indices 0..K-1 with K={K}{source}, got the value {_shown(hi)}")
    arr = arr.astype(np.int64)  # every value is in 0..K-1 with K <= N: no wrap-around
    n = np.bincount(arr, minlength=K)
    if np.any(n == 0):
        missing = np.flatnonzero(n == 0).tolist()
        source = f", K={K} being the number of rows of Ws[-1] (W_L)" if head else ""
        raise ValueError(f"{name}: every class 0..{K - 1} needs at least one sample{source}; classes {missing} have "
                         f"none")
    return arr, n.astype(np.int64)


def _means(X: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    """Class means (K x d) of validated float64 features and labels."""
    onehot = np.zeros((K, y.size))
    onehot[y, np.arange(y.size)] = 1.0
    return (onehot @ X) / onehot.sum(axis=1)[:, None]


def _peak_exponent(X: np.ndarray) -> int:
    """The power of two e with max |X| in [2^(e-1), 2^e) (0 for X = 0), read without an |X| temporary."""
    peak = max(float(X.max()), -float(X.min())) if X.size else 0.0
    return int(np.frexp(peak)[1]) if peak > 0 else 0


def _unit_peak(X: np.ndarray) -> np.ndarray:
    """X times the power of two that puts its largest |entry| in [0.5, 1) (0 stays 0): an exact rescaling, so that
    a norm or a product of the result neither underflows nor overflows for any finite X."""
    return np.ldexp(X, -_peak_exponent(X))

