"""The samples that the collapse metrics and the training accuracy read, checked, and the exact rescaling the metrics
compute in.

Features are given as an N x d array (one row per sample), labels as N integers 0..K-1 (integer-valued floats are read
as integers, as ``nclib.datafiles.check_labels`` reads them), every class with a sample; float32 or float64 features
are read in float64. Torch tensors are read by their values (detached, also where they require grad, as trained
weights do), and nested lists that numpy cannot read as one array are refused naming the argument
(:func:`nclib._checks.array`). Each check returns a clean value or raises a ValueError naming the argument, as those
of :mod:`nclib._checks` do; these are the checks of samples and of what they give:

* :func:`features` -- the features H^T, N x d, finite, in float64;
* :func:`class_indices` and :func:`labels` -- the class indices of the samples, and the class counts n they give
  (every class present);
* :func:`means` -- the class means h_k of Section 5, of features and labels already checked;
* :func:`shown_index` -- a class index as a refusal quotes it.

The rescaling: :func:`unit_peak` multiplies an array by the power of two (:func:`peak_exponent`) that puts its
largest |entry| in [0.5, 1), exactly, so that the sums, norms and products that the metrics form of any finite
features, weights or predicted strengths neither overflow nor underflow; the metrics are scale free, or are scaled
back by the same power (a class mean, the norm of the global feature mean).
"""
from __future__ import annotations

import numpy as np

from . import _checks


def features(features, name: str = "features") -> np.ndarray:
    """The features H^T of Section 5's metrics (NC1, NC2^H, NC2^{WH}, NC3, the class means, the global feature
    mean), one row h_{k,i} per sample: an N x d finite float64 array, a view where the input is float64 already (a
    copy where it is cast).  A torch tensor is read detached (:func:`nclib._checks.array`).  Refused with a
    ValueError naming ``name``: bools, text or complex numbers, a shape other than N x d with N, d >= 1, NaN or
    inf."""
    arr = _checks.array(features, name)
    if not _checks.real_dtype(arr.dtype):
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


def class_indices(labels, name: str = "labels") -> tuple[np.ndarray, int, int]:
    """The class index of each sample, as the metrics of Section 5 and the training accuracy of Figures 1-4 read
    it: a non-empty 1-D array as stored, and its smallest and largest value as exact Python ints (read in the stored
    dtype, so that a uint64 or a huge float is reported as stored, not as its int64 wrap-around).

    Integers, or floats with integer values, as :func:`nclib.datafiles.check_labels` and ``nclib._checks.counts``
    take class indices and counts; bools, NaN, inf, fractions, text and ragged nested lists are refused with a
    ValueError naming ``name``, and a torch tensor is read detached (:func:`nclib._checks.array`).  The range is the
    caller's to check."""
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


def shown_index(value) -> str:
    """A class index (a label or a predicted class) as a refusal of :func:`labels` or of the training accuracy
    (:mod:`nclib.accuracy`) quotes it: in full up to 20 digits (any int64 or uint64), else in %g form.  ``value``
    must be an integer (ValueError naming it otherwise): the index as :func:`class_indices` reads it, exactly."""
    if not _checks.is_integral(value):
        raise ValueError(f"value must be an integer class index, got {value!r}")
    value = int(value)
    return str(value) if abs(value) < 10**20 else f"{float(value):g}"


def labels(labels, N: int, num_classes: int | None = None, name: str = "labels",
           head: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The labels of N samples as the metrics of Section 5 read them, int64 with values 0..K-1, and the class counts
    n = (n_1, ..., n_K) they give, whose imbalance Theorems 4.1-4.3 are about.

    K is ``num_classes`` when given, else ``max(labels) + 1``; every class must have a sample, so K <= N. Labels are
    integers or integer-valued floats (:func:`class_indices`). Refused with a ValueError naming ``name``: labels
    that :func:`class_indices` refuses, not one per sample, outside 0..K-1, or leaving a class without a sample;
    naming ``N`` or ``num_classes`` where those are not positive integers or K > N.  ``head=True``: ``num_classes``
    is the number of rows of W_L = Ws[-1] (:func:`nclib.metrics.collapse_metrics`), and the refusals say so, naming
    ``Ws``.
    """
    arr, lo, hi = class_indices(labels, name)
    N = _checks.positive_int(N, "N")
    if arr.size != N:
        raise ValueError(f"{name} must have one entry per sample: features has N={N} rows, {name} has {arr.size}")
    if lo < 0:
        raise ValueError(f"{name} must hold class indices 0..K-1, got the value {shown_index(lo)}")
    # every class needs a sample, so K <= N: checked before np.bincount allocates K counters
    if num_classes is None:
        if hi >= N:
            raise ValueError(f"{name} must hold class indices 0..K-1 with every class present, so each label must be "
                             f"below the number of samples N={N}; got the value {shown_index(hi)}")
        K = hi + 1
    else:
        source = ", the number of rows of Ws[-1] (W_L)" if head else ""
        K = _checks.positive_int(num_classes, "Ws[-1] (W_L): its number of rows K" if head else "num_classes")
        if K > N:
            raise ValueError(f"Ws[-1] (W_L) has K={K} rows, one per class, more than the N={N} samples; every class "
                             f"needs a sample" if head else
                             f"num_classes={K} exceeds the number of samples N={N}; every class needs a sample")
        if hi >= K:
            raise ValueError(f"{name} must hold class indices 0..K-1 with K={K}{source}, got the value "
                             f"{shown_index(hi)}")
    arr = arr.astype(np.int64)  # every value is in 0..K-1 with K <= N: no wrap-around
    n = np.bincount(arr, minlength=K)
    if np.any(n == 0):
        missing = np.flatnonzero(n == 0).tolist()
        source = f", K={K} being the number of rows of Ws[-1] (W_L)" if head else ""
        raise ValueError(f"{name}: every class 0..{K - 1} needs at least one sample{source}; classes {missing} have "
                         f"none")
    return arr, n.astype(np.int64)


def _real_array(X, name: str) -> np.ndarray:
    """``X`` itself if it is a numpy array of real numbers (floats or integers, no bools), else a ValueError naming
    ``name``: the arrays that :func:`means` and :func:`peak_exponent` compute with, which their callers checked."""
    if not isinstance(X, np.ndarray) or not _checks.real_dtype(X.dtype):
        raise ValueError(f"{name} must be a numpy array of real numbers, got "
                         f"{f'dtype {X.dtype}' if isinstance(X, np.ndarray) else type(X).__name__}")
    return X


def means(X: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    """The class means h_k = (1/n_k) sum_i h_{k,i} of Section 5 (K x d), from which NC1, NC2^H, NC2^{WH} and NC3
    are formed: the plain average of the rows of X of each class, in the scale of X (:func:`unit_peak` keeps it in
    range, :func:`nclib.feature_collapse.class_means` scales it back).

    ``X``: the N x d features as :func:`features` returns them (finite: their values are not scanned again); ``y``: N
    class indices 0..K-1 as :func:`labels` returns them, every class with a sample.  Refused with a ValueError
    naming ``X`` (not a 2-D array of real numbers), ``K`` (not a positive integer) or ``y`` (not one integer per row
    of X, outside 0..K-1, or a class without a sample: its mean would be 0/0)."""
    X = _real_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of features (N x d), got shape {X.shape}")
    K = _checks.positive_int(K, "K")
    if not isinstance(y, np.ndarray) or y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a numpy array of integer class indices, got "
                         f"{f'dtype {y.dtype}' if isinstance(y, np.ndarray) else type(y).__name__}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must hold one class index per row of X (N={X.shape[0]}), got shape {y.shape}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= K):
        raise ValueError(f"y must hold class indices 0..K-1 with K={K}, got values from {shown_index(int(y.min()))} "
                         f"to {shown_index(int(y.max()))}")
    onehot = np.zeros((K, y.size))
    onehot[y, np.arange(y.size)] = 1.0
    n = onehot.sum(axis=1)
    if np.any(n == 0):
        raise ValueError(f"y: every class 0..{K - 1} needs a sample for its mean, classes "
                         f"{np.flatnonzero(n == 0).tolist()} have none")
    return (onehot @ X) / n[:, None]


def peak_exponent(X: np.ndarray) -> int:
    """The power of two e with max |X| in [2^(e-1), 2^e) (0 for X = 0 or empty), read without an |X| temporary: the
    exponent by which :func:`unit_peak` rescales, and by which a class mean (:func:`nclib.feature_collapse.class_means`)
    or the norm of the global feature mean (:func:`nclib.metrics.global_mean_norm`) is scaled back.  ``X``: a numpy
    array of finite real numbers, of any shape; other input, NaN or inf is refused with a ValueError naming ``X``
    (found by the same maximum and minimum, at no extra pass)."""
    X = _real_array(X, "X")
    peak = max(float(X.max()), -float(X.min())) if X.size else 0.0
    if not np.isfinite(peak):  # a NaN makes the maximum and the minimum NaN, an inf makes the peak inf
        raise ValueError("X must be finite (no NaN or inf)")
    return int(np.frexp(peak)[1]) if peak > 0 else 0


def unit_peak(X: np.ndarray) -> np.ndarray:
    """X times the power of two that puts its largest |entry| in [0.5, 1) (0 stays 0), as a float array: an exact
    rescaling, so that a norm or a product of the result neither underflows nor overflows for any finite X.  The
    metrics of Section 5 are scale free, so NC1, NC2 and NC3 are computed from the rescaled features, head product and
    predicted strengths (:mod:`nclib.feature_collapse`, :mod:`nclib.geometry`, :func:`nclib.metrics.collapse_metrics`).
    ``X`` as for :func:`peak_exponent`, which refuses it by name."""
    return np.ldexp(X, -peak_exponent(X))
