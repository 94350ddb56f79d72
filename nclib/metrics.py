"""Neural-collapse metrics NC1, NC2^W, NC2^H, NC2^{WH}, NC3, made well defined.

Section 5 of the paper (bias case) and Appendix C (bias-free case) define the metrics plotted in
Figures 1-4. As printed they have defects (an undefined 0/0 in NC3 at every bias-case minimizer,
a dependence on the SVD routine's choice of basis when singular values repeat, targets that are not
zero at the exact minimizer); see :ref:`ch-errata-metrics`. This module implements the corrected,
basis-independent definitions that :ref:`ch-metrics` derives, each of which is exactly 0 (to
rounding) at the closed-form global minimizer of ``nclib.ufm``:

* :func:`nc1` -- tr(Sigma_W Sigma_B^+)/K of Section 5, without a d x d pseudo-inverse, with Sigma_B
  cut to the rank it has at the global minimizer (:func:`between_class_rank`) so that NC1 stays
  continuous when modes collapse; :func:`separation_cutoff` is the smallest separation of the class means it keeps;
* :func:`geometry_metrics` -- NC2^W, NC2^H, NC2^{WH}, NC3 of the product P = W_L...W_1 and of
  E = H-bar D against the structure predicted by Theorems 4.1-4.3;
* :func:`collapse_metrics` -- all five from features, labels and the head weights; :func:`geometry_defined`, whether
  NC2 and NC3 have a target for a network's counts, decays and width;
* :func:`nc2_wh_at_labels` -- the NC2^{WH} of class-mean outputs equal to the labels, against which a run's
  NC2^{WH} shows whether it measures more than the fit;
* :func:`bias_error`, :func:`global_mean_norm` -- the distances of the bias and of the global feature mean to
  their values b* = n/N and h_G = 0 at every minimizer of Theorems 4.2 and 4.3, which the training runs report.

The printed forms, kept only to exhibit their defects, are in :mod:`nclib.printed_metrics`; the training accuracy,
overall and class by class, is in :mod:`nclib.accuracy`.

Features are given as an N x d array (one row per sample), labels as N integers 0..K-1 (integer-valued floats are
read as integers, as ``nclib.datafiles.check_labels`` reads them); float32 or float64 input is accepted and every
computation is carried out in float64. Torch tensors are read by their values (detached, also where they require
grad, as trained weights do), and nested lists that numpy cannot read as one array are refused naming the argument.
"""
from __future__ import annotations

import numpy as np

from . import _checks, ufm
from .imbalance import BLOCK_RTOL, mode_blocks



# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------

def _features(features, name: str = "features") -> np.ndarray:
    """N x d finite float64 copy-free view (a copy when a cast is needed) of a float array (a torch tensor is read
    detached, :func:`nclib._checks.array`)."""
    arr = _checks.array(features, name)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a real float array (N x d), got dtype {arr.dtype}")
    if _checks._mixes_bools(features):  # numpy reads [[True, 2.0]] as floats
        raise ValueError(f"{name} must be a real float array (N x d), not bools")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (N, d), one row per sample; got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one feature, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def _peak_exponent(X: np.ndarray) -> int:
    """The power of two e with max |X| in [2^(e-1), 2^e) (0 for X = 0), read without an |X| temporary."""
    peak = max(float(X.max()), -float(X.min())) if X.size else 0.0
    return int(np.frexp(peak)[1]) if peak > 0 else 0


def _unit_peak(X: np.ndarray) -> np.ndarray:
    """X times the power of two that puts its largest |entry| in [0.5, 1) (0 stays 0): an exact rescaling, so that
    a norm or a product of the result neither underflows nor overflows for any finite X."""
    return np.ldexp(X, -_peak_exponent(X))


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
    if arr.dtype == bool or _checks._mixes_bools(labels):  # numpy reads [0, True, 1] as integers
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
    rows of W_L = Ws[-1] (:func:`collapse_metrics`), and the refusals say so, naming ``Ws``.
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


def class_means(features, labels, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The class means h_k = (1/n_k) sum_i h_{k,i} of Section 5, as a K x d float64 array, and n.

    Averaged after a rescaling of the features by a power of two (:func:`_unit_peak`) and scaled back, since a sum
    of entries near the top of the float64 range overflows: finite for any finite features, and bit for bit the
    plain average wherever that neither overflows nor leaves the normal range. Chapter :ref:`ch-metrics`.
    """
    X = _features(features)
    y, n = _labels(labels, X.shape[0], num_classes)
    e = _peak_exponent(X)
    return np.ldexp(_means(np.ldexp(X, -e), y, n.size), e), n


# ---------------------------------------------------------------------------------------------
# NC1
# ---------------------------------------------------------------------------------------------

def nc1(features, labels, num_classes: int | None = None, rtol: float | None = None,
        rank: int | None = None) -> float:
    """NC1 = tr(Sigma_W Sigma_B^+)/K of Section 5 (feature collapse), with the pseudo-inverse taken at a
    given rank (chapter :ref:`ch-metrics`, section :ref:`sec-metrics-nc1-rank`; erratum M6).

    With class means h_k, the sample-weighted global mean h_G = (1/N) sum_k n_k h_k,
    Sigma_W = (1/N) sum_{k,i} (h_{k,i} - h_k)(h_{k,i} - h_k)^T and
    Sigma_B = (1/K) sum_k (h_k - h_G)(h_k - h_G)^T = A A^T / K with A = [h_1 - h_G, ..., h_K - h_G]
    (d x K), one has Sigma_B^+ = K (A^+)^T A^+ and therefore

        NC1 = tr(Sigma_W Sigma_B^+) / K = (1/N) sum_{k,i} ||A^+ (h_{k,i} - h_k)||^2,

    with A^+ from a thin SVD of the d x K matrix A: no d x d matrix is ever formed.

    Rank: ``rank`` (default K - 1) is the number r of between-class directions kept: A is replaced by
    its best rank-r approximation A_r (the r largest singular values), i.e. Sigma_B by its best rank-r
    approximation. sum_k n_k (h_k - h_G) = 0, so A has rank at most K - 1 and the default keeps every
    direction Sigma_B can have. At a global minimizer with collapsed modes Sigma_B has rank
    r = :func:`between_class_rank` < K - 1, and only that rank makes NC1 continuous there;
    :func:`collapse_metrics` passes it. Among the r values, those below ``rtol * s_max`` are dropped too
    (0 <= rtol < 1; default ``rtol = max(d, K) * eps``, the default of ``numpy.linalg.matrix_rank``: the SVD's own
    rounding), and so are those within sqrt(d K) (N + 2) eps max|x_ij|, the largest the rounding error of A can be
    in norm (below): a direction that the class means do not span in exact arithmetic is never inverted, also where
    they span fewer than r directions and that error, which scales with the features (offset and within-class
    spread included), not with A, passes the relative cutoff. The price of never inverting noise: a separation of
    the class means that is real but within that bound is dropped too, read as absent (:func:`separation_cutoff`
    gives the bound as a fraction of max|x_ij|). The bound holds for every summation order, and so lies orders of
    magnitude above the error such sums usually make.
    ``rank = 0`` keeps no direction and gives 0 (the theory predicts no between-class direction: complete collapse).

    Coinciding class means: if every class mean equals h_G (Sigma_B = 0) and r >= 1 this function returns
    ``inf`` (no between-class separation at all), and 0 only when the features themselves are all equal
    (Sigma_W = 0 too, as at the completely collapsed minimizer H = 0; see :ref:`ch-metrics`). Both are read to
    rounding: class means equal in exact arithmetic are rarely equal bit for bit once averaged in floating point,
    and A would then hold rounding errors whose inverse squares give NC1 ~ 1e30. (N + 2) eps max|x_ij| is a
    first-order bound on the rounding error of each entry of A and C as computed here (derived at
    ``_rounding_level``: each entry is a difference of averages of at most N feature entries), so relative to the
    size of the features, offset included, not to the size of A; A counts as zero when no singular value exceeds
    sqrt(d K) times it (the cutoff above drops every direction), C when every entry is within it. An offset common
    to all the features raises that bound without being a collapse, so where it drops a direction that the
    relative cutoff keeps (every direction where A passes for zero), the features are read again about the
    midrange of each column (:func:`_about_reference`), where the bound, (N + 3) eps times their largest distance
    from it, scales with their spread, and the directions are cut with that bound; only A still zero there counts
    as coinciding means, and 0 is returned only for features all equal, whatever their offset (wherever
    (1 + sqrt(d K)) (N + 3) eps < 1, N below 1e13 at d = 2048, K = 26).

    Scale: NC1 is computed from the features rescaled by a power of two to a largest |entry| in [0.5, 1)
    (:func:`_unit_peak`), exactly, so that neither an SVD of entries near the top of the float64 range nor the
    inverse of singular values near its bottom leaves it: any finite features give a number, unchanged by the
    rescaling wherever the plain computation stays in range.

    features: N x d array (float32 or float64); labels: N integers 0..K-1 (K = ``num_classes`` or
    max label + 1), every class with at least one sample (so K <= N; a larger label is refused before
    anything is allocated).
    """
    X = _features(features)
    y, n = _labels(labels, X.shape[0], num_classes)
    if rtol is not None:
        rtol = _relative_cutoff(rtol, "rtol")
    if rank is not None:
        if not _checks._is_integral(rank) or not 0 <= int(rank) <= n.size - 1:
            raise ValueError(f"rank must be an integer 0..K-1 = 0..{n.size - 1}, got {rank!r}")
        rank = int(rank)
    X = _unit_peak(X)  # NC1 is scale free: an exact rescaling keeps every step in range
    return _nc1(X, y, n, _means(X, y, n.size), rtol, rank)


def _relative_cutoff(value, name: str) -> float:
    """A cutoff relative to the largest singular value, 0 <= value < 1: at 1 or above even the largest is dropped,
    and NC1 would be 0 whatever the features."""
    x = _checks.nonneg_float(value, name)
    if x >= 1:
        raise ValueError(f"{name} must be below 1 (a fraction of the largest singular value; at 1 or above every "
                         f"value is dropped), got {value!r}")
    return x


def between_class_rank(structure) -> int:
    """The rank of Sigma_B (of A = [h_k - h_G]_k) at every global minimizer: min(r_alive, K - 1), where
    r_alive is the number of surviving modes (``structure.s_product > 0``) of ``nclib.ufm.structure``
    (Theorems 4.1-4.3). Chapter :ref:`ch-metrics`, section :ref:`sec-metrics-nc1-rank`.

    At a minimizer H-bar = R diag(s_features) V^T D^{-1} (R with orthonormal columns). With a bias
    h_G = 0 and A = H-bar has rank r_alive (<= K - 1, the zero mode of Y-bar never survives). Without a
    bias the modes are the classes: if all K survive, A = H-bar (I - n 1^T/N) has rank K - 1; otherwise
    a collapsed class has h_k = 0, its column -h_G lies in the span of the surviving means, and the rank
    is r_alive.
    """
    if not hasattr(structure, "s_product"):
        raise ValueError("structure must have the field s_product (nclib.ufm.structure)")
    s_p = _strengths(structure.s_product, "structure.s_product")
    if s_p.size == 0:
        raise ValueError("structure.s_product must hold one entry per mode, got none")
    return int(min(np.count_nonzero(s_p > 0), s_p.size - 1))


def _strengths(a, name: str, size: int | None = None) -> np.ndarray:
    """Predicted singular values per mode: a vector of finite non-negative real numbers, refused by name."""
    arr = _checks.vector(a, name, size)
    if np.any(arr < 0):
        raise ValueError(f"{name} must hold non-negative numbers, got the value {float(arr.min()):g}")
    return arr


def _means(X: np.ndarray, y: np.ndarray, K: int) -> np.ndarray:
    """Class means (K x d) of validated float64 features and labels."""
    onehot = np.zeros((K, y.size))
    onehot[y, np.arange(y.size)] = 1.0
    return (onehot @ X) / onehot.sum(axis=1)[:, None]


def _rounding_level(X: np.ndarray, centred: bool = False) -> float:
    """A first-order bound on the rounding error of each entry of A = [h_k - h_G] and of C = [h_{k,i} - h_k] as this
    module computes them from validated float64 features X (N x d): (N + 2) eps m, with m = max |x_ij|.

    With u = eps/2 the unit roundoff: a class mean, a sum of n_k <= N entries (in any order, as a BLAS product with
    one-hot weights adds them) divided by n_k, is off by at most n_k u m; the global mean h_G, whether the mean of all
    N rows or the weighted mean (1/N) sum_k n_k h_k of the class means (n_max + K - 1 <= N), by at most (N + 2) u m;
    their difference, rounded once more, by at most (n_k + N + 4) u m <= (N + 2) eps m, and a deviation
    h_{k,i} - h_k by less. C with every entry within this bound cannot be told from the zero matrix: Sigma_W is 0 to
    rounding. The error matrix of A (d x K) then has spectral norm at most sqrt(d K) times the bound, so a singular
    value of A within that cannot be told from 0 (:func:`_directions`), nor A from the zero matrix when all are. The
    bound scales with the features, offset included, not with the class means.

    ``centred=True``: X holds the differences x_ij - c_j from a reference c (:func:`_about_reference`), each
    rounded once (off by at most u |x_ij - c_j| <= u m), which moves a class mean, h_G and so each entry of A or C by
    at most eps m more: the bound is then (N + 3) eps m."""
    peak = max(float(X.max()), -float(X.min()))
    return _level_factor(X.shape[0], centred) * peak


def _level_factor(N: int, centred: bool = False) -> float:
    """The rounding level of :func:`_rounding_level` per unit of max |x_ij|: (N + 2) eps, or (N + 3) eps centred.
    The one place this bound is written: :func:`nc1` and :func:`separation_cutoff` both take it from here."""
    return (N + 2 + centred) * np.finfo(np.float64).eps


def _separation_bound(d: int, K: int, level: float) -> float:
    """The bound sqrt(d K) ``level`` on the rounding error of A (d x K) in spectral norm, from the bound ``level`` on
    each entry (:func:`_directions`, :func:`separation_cutoff`)."""
    return np.sqrt(d * K) * level


def separation_cutoff(N: int, K: int, d: int) -> float:
    """The second cutoff of :func:`nc1` on the singular values of A = [h_k - h_G] (Section 5's Sigma_B = A A^T / K),
    as a fraction of max |x_ij|: sqrt(d K) (N + 2) eps, the bound on the rounding error of A in norm derived at
    :func:`_rounding_level`. Chapter :ref:`ch-metrics`, section :ref:`sec-metrics-nc1`.

    A separation of the class means (a singular value of A) above this fraction of the largest |entry| of the
    features is never dropped by it; one at or below it is dropped, read as absent, wherever the midrange
    (min + max)/2 of every feature column is 0. Where the features share an offset, :func:`nc1` reads them again
    about their midrange, and only a separation within the (lower) bound of their spread is dropped.
    N: number of samples, K: number of classes (1 <= K <= N), d: feature dimension."""
    N, K, d = (_checks.positive_int(v, name) for v, name in ((N, "N"), (K, "K"), (d, "d")))
    if K > N:
        raise ValueError(f"K must be at most N={N} (every class needs a sample), got {K}")
    return float(_separation_bound(d, K, _level_factor(N)))  # the cutoff nc1 applies, per unit of max |x_ij|


def _about_reference(X: np.ndarray) -> tuple[np.ndarray, float]:
    """The features about the midrange c_j = (min_i x_ij + max_i x_ij)/2 of each column, rescaled by a power of two
    (:func:`_unit_peak`), and their rounding level (:func:`_rounding_level`, centred).

    Differences of the features are unchanged by the shift (Sigma_B and Sigma_W with them), but the rounding level
    is now relative to the spread, not to the size of an offset common to all of them: about the midrange, features
    not all equal have a column whose entries reach +m and -m, and its entries cannot all lie within
    1 + sqrt(d K) times the level of one global mean while (1 + sqrt(d K)) (N + 3) eps < 1, so A (no singular value
    above sqrt(d K) times the level: no entry either) and C cannot both pass for zero. Read only where the rounding
    of the features as given decides a direction of A (:func:`_directions`), so that every other input keeps the
    plain computation bit for bit."""
    c = X.min(axis=0) / 2 + X.max(axis=0) / 2  # halves first: no overflow
    Xc = _unit_peak(X - c)
    return Xc, _rounding_level(Xc, centred=True)


def _zero_to_rounding(M: np.ndarray, level: float) -> bool:
    """Whether every entry of M is within the rounding level of :func:`_rounding_level`."""
    return bool(np.all(np.abs(M) <= level))


def _directions(A: np.ndarray, keep: int, rtol: float, level: float) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """The left singular vectors and singular values of A (d x K) that NC1 inverts, their number r, and whether the
    rounding of A decided it.

    Of the ``keep`` largest singular values, those above ``rtol`` times the largest (the SVD's own rounding, relative
    to ||A||_2) and above sqrt(d K) ``level`` are kept. ``level`` bounds the rounding error of each entry of A as
    computed (:func:`_rounding_level`), so the error matrix has spectral norm at most its Frobenius norm,
    sqrt(d K) ``level``, and by Weyl's inequality a singular value of A that is 0 in exact arithmetic is computed
    within it: no direction that the class means do not span in exact arithmetic is inverted, whatever the offset or
    the within-class spread that set ``level``. The flag is True when that bound, not the relative cutoff, dropped a
    value (or A is within it altogether)."""
    d, K = A.shape
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    s = s[:keep]
    relative = int(np.count_nonzero(s > rtol * s[0]))
    r = int(np.count_nonzero(s[:relative] > _separation_bound(d, K, level)))
    return U[:, :r], s[:r], r, r < max(relative, 1)


def _nc1(X: np.ndarray, y: np.ndarray, n: np.ndarray, means: np.ndarray, rtol: float | None,
         rank: int | None = None) -> float:
    """NC1 of :func:`nc1` from validated float64 features (rescaled by :func:`_unit_peak`), labels, counts, class
    means and rank r."""
    N, d = X.shape
    K = n.size
    if rank is None:
        rank = K - 1
    if rank == 0:
        return 0.0  # no between-class direction to compare the spread with: the empty sum
    if rtol is None:
        rtol = max(d, K) * np.finfo(np.float64).eps
    keep = min(rank, d)
    A = (means - (n @ means) / N).T  # d x K
    U_A, s_A, r, by_rounding = _directions(A, keep, rtol, _rounding_level(X))  # offset included in the level
    if by_rounding:  # a direction within the rounding of the features as given: read again about their midrange,
        X, level = _about_reference(X)  # to the rounding of their spread (an offset raises the level, not A)
        means = _means(X, y, K)
        A = (means - (n @ means) / N).T
        U_A, s_A, r, _ = _directions(A, keep, rtol, level)
        if r == 0:  # Sigma_B = 0 to rounding: the class means coincide
            return 0.0 if _zero_to_rounding(X - means[y], level) else float("inf")
    C = X - means[y]  # within-class deviations, N x d (a fresh array: X is never modified)
    Z = C @ (U_A / s_A)  # N x r: rows are (A_r^+ (h_{k,i} - h_k))^T, U_A / s_A = (A_r^+)^T
    return float(np.einsum("ij,ij->", Z, Z) / N)


# ---------------------------------------------------------------------------------------------
# NC2 and NC3 against the predicted structure
# ---------------------------------------------------------------------------------------------

def _normalized(X: np.ndarray) -> np.ndarray:
    """X / ||X||_F, with the convention normalized(0) = 0, for any finite X: ||X||_F is taken after
    :func:`_unit_peak`, since the sum of squares of entries below 1e-154 underflows and above 1e154 overflows."""
    Y = _unit_peak(X)
    nrm = np.linalg.norm(Y)
    return Y / nrm if nrm > 0 else np.zeros_like(Y)


def _distance(X: np.ndarray, T: np.ndarray) -> float:
    """|| X/||X||_F - T/||T||_F ||_F of validated arrays, 0/0 := 0 (:func:`normalized_distance`)."""
    return float(np.linalg.norm(_normalized(X) - _normalized(T)))


def normalized_distance(X, T) -> float:
    """|| X/||X||_F - T/||T||_F ||_F with 0/0 := 0 for a zero matrix (the shape of every NC2 metric).

    Lies in [0, 2]; equals 1 when exactly one of X, T is zero and 0 when both are. X and T must be
    finite: a NaN or inf has no direction, and the distance is refused (ValueError naming X or T) rather
    than returned as a number, like every other input of this module. Used in :ref:`ch-errata-metrics`.
    """
    X, T = (_real_array(v, name) for v, name in ((X, "X"), (T, "T")))
    if X.shape != T.shape:
        raise ValueError(f"X and T must have the same shape, got {X.shape} and {T.shape}")
    return _distance(X, T)


def _real_array(a, name: str) -> np.ndarray:
    """``a`` as a float64 array of any shape (vectors and matrices alike), refused by name unless every entry is a
    finite real number: a matrix with NaN or inf has no direction."""
    arr = _checks.array(a, name)
    if arr.ndim == 2:
        return _checks.matrix(a, name)
    if arr.ndim <= 1:
        return _checks.vector(a, name)
    raise ValueError(f"{name} must be a vector or a matrix, got shape {arr.shape}")


def _structure_arrays(structure, K: int):
    """M, U, V (K x K), kappa, s_product, s_features (K each) of ``structure``, each refused by its name
    (``structure.U`` and so on) unless finite real numbers of that shape, the strengths non-negative."""
    fields = ("M", "U", "V", "kappa", "s_product", "s_features")
    if not all(hasattr(structure, f) for f in fields):
        raise ValueError("structure must have the fields M, U, V, kappa, s_product, s_features "
                         "(nclib.ufm.structure)")
    U = _checks.matrix(structure.U, "structure.U", (K, K))
    V = _checks.matrix(structure.V, "structure.V", (K, K))
    kappa = _checks.singular_values(structure.kappa, "structure.kappa")
    if kappa.size != K:
        raise ValueError(f"structure.kappa must have K={K} entries, got {kappa.size}")
    s_p = _strengths(structure.s_product, "structure.s_product", K)
    s_f = _strengths(structure.s_features, "structure.s_features", K)
    M = _checks.matrix(structure.M, "structure.M", (K, K))
    return M, U, V, kappa, s_p, s_f


def _modes_are_classes(M: np.ndarray) -> bool:
    """Whether M is diagonal with non-negative entries, exactly, as M = D = diag(sqrt n) of the bias-free model is
    (Theorem 4.1, :func:`nclib.ufm.structure`): its modes are then the classes, a basis the problem fixes, and NC3
    compares class with class as Appendix C does.  (With a bias, M = Y-bar has non-zero entries off its diagonal
    for every K >= 2.)"""
    return not np.any(M - np.diag(np.diag(M))) and bool(np.all(np.diag(M) >= 0))


def geometry_metrics(P, E, structure, block_rtol: float = BLOCK_RTOL) -> dict[str, float]:
    """NC2^W, NC2^H, NC2^{WH} and NC3 of Section 5 / Appendix C, basis-independent (:ref:`ch-metrics`).

    P = W_L ... W_1 (K x d) is the product of the head, E = H-bar D (d x K) the class-mean matrix
    times D = diag(sqrt(n)), and ``structure`` the prediction of Theorems 4.1-4.3 for the same n and
    lambdas (``nclib.ufm.structure``: M = U diag(kappa) V^T, and at every global minimizer
    P P^T = U diag(s_product^2) U^T, E^T E = V diag(s_features^2) V^T,
    P E = U diag(s_product s_features) V^T). With nd(X, T) = ||X/||X||_F - T/||T||_F||_F:

    * nc2_w  = nd(P P^T, U diag(s_product^2) U^T),
    * nc2_h  = nd(E^T E, V diag(s_features^2) V^T),
    * nc2_wh = nd(P E,   U diag(s_product s_features) V^T),
    * nc3    = sqrt(sum_B || sqrt|B| P^T U_B/||P^T U_B||_F - sqrt|B| E V_B/||E V_B||_F ||_F^2)
      over the blocks B of equal kappa among the modes with s_product > 0 (:func:`mode_blocks`), with a
      bias (M = Y-bar; ``block_rtol`` the tolerance of equal kappa); without one (M = D, diagonal with
      non-negative entries, as :func:`nclib.ufm.structure` builds it) every class is a block of its own, U = V = I:
      nc3 = sqrt(sum_k || w_k/||w_k|| - g_k/||g_k|| ||^2) over the surviving classes, w_k^T the k-th row of
      P and g_k the k-th column of E, the NC3 of Appendix C.

    The targets are functions of M alone, hence independent of the choice of U, V; with a bias NC3 is
    invariant under a common rotation inside a block, and for singleton blocks it is the paper's
    per-mode comparison of the rows of U^T P with the columns of H-bar D V. A block of more than one mode is
    normalized as a whole, so with a bias NC3 also measures the balance of strengths inside a block of equal
    kappa: P = U diag(a) R^T and E = R diag(b) V^T (R with orthonormal columns), every mode aligned, give a block
    the term 0 only when a and b are proportional on it, and NC3 > 0 for unequal strengths such as independent
    random a and b. At every global minimizer both are constant on each block (s_product and s_features depend on
    kappa alone), so NC3 is 0 there. This is a choice, kept because the committed runs recorded it: comparing per
    block the polar factors of P^T U_B and E V_B instead is as free of the basis and does not weigh the strengths
    (:ref:`ch-metrics` computes both). The CIFAR-10 profile with a bias has blocks of one mode only, where NC3 is
    per mode; the EMNIST-letters profile with a bias has blocks of 4 and 19 modes. Without a bias the classes
    are a basis the problem fixes, and Appendix C compares class with class: a block of classes of equal
    count compared as a whole would also weigh the norms of its classes against each other, which NC2
    measures, and would not be the paper's NC3. Conventions (documented
    in :ref:`ch-metrics`): a zero matrix normalizes to 0 (so an NC2 is 1 when exactly one side
    vanishes, 0 when both do); a surviving block (or class) where P^T U_B or E V_B vanishes, or both do (as at
    P = 0, E = 0, a critical point of the objective), contributes |B|;
    collapsed modes (the printed 0/0) are left out of NC3, so NC3 = 0 when no mode survives. Every value is
    unchanged (to the rounding of the scaled entries) when P or E is multiplied by any positive number that keeps
    its entries finite: both are normalized before a product is formed.
    """
    P = _checks.matrix(P, "P")
    if 0 in P.shape:  # no class or no feature: nothing has a direction (collapse_metrics refuses d = 0 too)
        raise ValueError(f"P must be K x d with K >= 1 classes and d >= 1 features, got shape {P.shape}")
    K = P.shape[0]
    E = _checks.matrix(E, "E", shape=(P.shape[1], K))
    M, U, V, kappa, s_p, s_f = _structure_arrays(structure, K)
    block_rtol = _checks.nonneg_float(block_rtol, "block_rtol")
    alive = (s_p > 0) & (s_f > 0)
    # every metric is scale free: P, E and the predicted strengths are normalized before any product is
    # formed, so that no Gram matrix under- or overflows and the values do not change when P or E is scaled
    P, E = _normalized(P), _normalized(E)
    s_p, s_f = _unit_peak(s_p), _unit_peak(s_f)
    T_W = (U * s_p**2) @ U.T
    T_H = (V * s_f**2) @ V.T
    T_WH = (U * (s_p * s_f)) @ V.T
    out = {
        "nc2_w": _distance(P @ P.T, T_W),
        "nc2_h": _distance(E.T @ E, T_H),
        "nc2_wh": _distance(P @ E, T_WH),
    }
    if _modes_are_classes(M):  # bias-free: class with class (Appendix C), the classes of the surviving modes
        blocks = [np.array([k]) for k in np.flatnonzero(np.abs(U[:, alive]).sum(axis=1) > 0)]
        U = V = np.eye(K)
    else:
        blocks = mode_blocks(kappa, alive, block_rtol)
    total = 0.0
    for B in blocks:
        a = _normalized(P.T @ U[:, B])
        b = _normalized(E @ V[:, B])
        if not (a.any() and b.any()):  # a side without a direction, or both (P = 0, E = 0): |B|, never 0
            total += B.size
            continue
        scale = np.sqrt(B.size)
        total += float(np.sum((scale * a - scale * b) ** 2))
    out["nc3"] = float(np.sqrt(total))
    return out


def _head_direction(Ws, d: int, K: int | None = None) -> np.ndarray:
    """P = W_L ... W_1 (K x d) in float64 up to a positive factor, checking that the shapes chain (W_1 has d
    columns). The running product is rescaled by a power of two after each factor (:func:`_unit_peak`), and where
    a product with W_j overflows or falls near the bottom of the float64 range, it is formed again with W_j rescaled
    too: factors the scale-free metrics do not see, so that the product of finite weights of any size stays
    finite and accurate, while an ordinary W_j (d x d) is neither copied nor scanned."""
    if isinstance(Ws, np.ndarray) or not hasattr(Ws, "__len__"):
        raise ValueError("Ws must be a list [W_1, ..., W_L] of 2-D arrays (W_1 applied first)")
    if len(Ws) == 0:
        raise ValueError("Ws must hold at least one layer (L >= 1), got an empty list")
    mats = []
    cols = d
    for j, W in enumerate(Ws):
        W = _checks.array(W, f"Ws[{j}]")
        if W.ndim != 2 or W.dtype == bool or not (np.issubdtype(W.dtype, np.floating) or np.issubdtype(W.dtype, np.integer)):
            raise ValueError(f"Ws[{j}] must be a 2-D real array, got shape {W.shape} and dtype {W.dtype}")
        if _checks._mixes_bools(Ws[j]):  # numpy reads [[True, 2.0]] as floats
            raise ValueError(f"Ws[{j}] must be a 2-D real array, not bools")
        if W.shape[1] != cols:
            what = f"the feature dimension d={d}" if j == 0 else f"the {cols} rows of Ws[{j - 1}]"
            raise ValueError(f"Ws[{j}] has shape {W.shape}; its number of columns must equal {what}")
        if not np.all(np.isfinite(W)):
            raise ValueError(f"Ws[{j}] must be finite (no NaN or inf)")
        cols = W.shape[0]
        mats.append(W)
    if K is not None and mats[-1].shape[0] != K:
        raise ValueError(f"Ws[-1] (W_L) must have K={K} rows, one per class; got shape {mats[-1].shape}")
    P = _unit_peak(mats[-1].astype(np.float64))
    for W in mats[-2::-1]:
        W = W.astype(np.float64, copy=False)
        with np.errstate(over="ignore", under="ignore"):
            Q = P @ W  # K x d_(j-1): never a d x d product
        if not np.all(np.isfinite(Q)) or _peak_exponent(Q) < -768:  # overflow, or entries at risk of underflow
            Q = P @ np.ldexp(W, -_peak_exponent(W))
        P = _unit_peak(Q)
    return P


_GEOMETRY_KEYS = ("nc2_w", "nc2_h", "nc2_wh", "nc3")


def nc3_compares(bias) -> str:
    """What the NC3 of :func:`geometry_metrics` compares in the model with (``bias=True``) or without a bias, as
    a run's provenance records it (``nc3_compares``, :ref:`ch-metrics`): "modes" with a bias (the blocks of equal
    singular value of Y-bar), "classes" without (class with class, Appendix C)."""
    return "modes" if _checks.flag(bias, "bias") else "classes"


def nc2_wh_at_labels(n, lam_W, lam_H, L=1, bias=True) -> float:
    """NC2^{WH} (:func:`geometry_metrics`) of a point whose class-mean outputs equal the labels.

    NC2^{WH} compares P E = W_L...W_1 H-bar D with U diag(s_product s_features) V^T, its value at every global
    minimizer (Theorems 4.1-4.3, :func:`nclib.ufm.structure`), so it depends on the features and the head only
    through the outputs of the class means, P H-bar.  Where these equal the labels, P H-bar = I without a bias
    (and P H-bar + b* 1^T = I with one, the bias at b* = n/N), P E = M: D = diag(sqrt n) without a bias, Y-bar with
    one.  Its NC2^{WH}, ||M/||M||_F - T/||T||_F||_F, is how far fitting the labels alone is from the minimizers'
    product, whose modes the decays scale down each by a factor of its own (s_product s_features / kappa); 0 where
    that factor is the same for every mode with kappa_k > 0, none of which collapses (equal counts without a bias).
    A mode with kappa_k > 0 that collapses has the factor 0: where some collapse and others do not, the value is
    above 0 however alike the survivors' factors, and where every mode collapses the target is 0, which
    normalizes to 0 (:func:`normalized_distance`), and the value is 1.  Arguments as :func:`nclib.ufm.structure`
    (ValueError naming the one refused).  Used in :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """
    st = ufm.structure(n, lam_W, lam_H, L=L, bias=bias)
    K = st.M.shape[0]
    return geometry_metrics(np.eye(K), st.M, st)["nc2_wh"]


def geometry_defined(n, lam_W, lam_H, L=1, bias=True, d=None) -> bool:
    """Whether NC2^W, NC2^H, NC2^{WH} and NC3 have a target for a network of class counts ``n``, decays ``lam_W``
    (one or L of them) and ``lam_H``, head depth ``L``, the model with or without a bias, and smallest hidden width
    ``d`` (the feature dimension and every W_j's rows but W_L's; None: at least K).

    False where a decay is 0: Theorems 4.1-4.3 assume positive decays and give no geometry of the minimizers then
    (:func:`collapse_metrics` refuses such a decay; a training run records NaN in those columns, the engine's
    ``host_metrics``).  False where d < K cuts a group of equal kappa among the surviving modes: the minimizers
    share no one geometry, and :func:`collapse_metrics` returns NaN for the four (:func:`nclib.ufm.structure`
    refuses such a ``d``).  True otherwise.  NC1 is defined in every case.  Each argument is checked (zero decays
    allowed), a ValueError naming the one refused.  Used in :ref:`ch-train` (the checks of a run's history) and by
    :func:`collapse_metrics`.
    """
    n = _checks.counts(n)
    L = _checks.positive_int(L, "L")
    lam = _checks.layer_lambdas(lam_W, L, "lam_W", positive=False)
    lam_H = _checks.nonneg_float(lam_H, "lam_H")
    bias = _checks.flag(bias, "bias")
    if d is not None:
        d = _checks.positive_int(d, "d")
    if lam.min() == 0 or lam_H == 0:
        return False
    if d is None or d >= n.size:
        return True
    structure = ufm.structure(n, lam, lam_H, L=L, bias=bias)
    return not ufm._cut_splits(structure.s_product, structure.kappa, d)


def collapse_metrics(features, labels, Ws, lam_W, lam_H, bias: bool = True) -> dict[str, float]:
    """NC1, NC2^W, NC2^H, NC2^{WH}, NC3 of Section 5 (bias) or Appendix C (bias-free), made well defined.

    features: N x d array of the features H^T (one row per sample, float32 or float64); labels: N
    integers 0..K-1 where K is the number of rows of W_L and every class has a sample;
    Ws = [W_1, ..., W_L] with W_1 applied first (d_1 x d) and W_L of shape K x d_{L-1};
    lam_W: one weight decay or L of them (lambda_{W_1}, ..., lambda_{W_L}); lam_H > 0; bias: whether
    the model of Theorem 4.2/4.3 (with b) or of Theorem 4.1 (without) gives the targets.

    Returns the dict {"nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3"}: :func:`nc1` at the rank
    :func:`between_class_rank` that Sigma_B has at every global minimizer (K - 1 unless modes other
    than the zero mode of Y-bar collapse, and then the rank that keeps NC1 continuous there), and
    :func:`geometry_metrics` of P = W_L...W_1 and E = H-bar D against
    ``nclib.ufm.structure(n, lam_W, lam_H, L, bias, d)`` with n the class counts of ``labels`` and d the
    smallest of the feature dimension and the hidden widths (only the top d modes survive when d < K). When d
    splits a group of surviving modes of equal kappa the global minimizers share no one geometry, and the four
    geometry metrics are NaN (NC1 is still defined: Sigma_B has rank d there). Without
    a bias too the features enter as E = H-bar D, not as H-bar (erratum M4 says why).
    All five are 0 (to rounding) at every closed-form global minimizer and independent of the
    choice of singular vectors of M (chapter :ref:`ch-metrics`). The bias-case H-bar is not
    centred, so a non-zero global feature mean (0 at every minimizer, Theorem 4.2) shows up in
    nc2_h and nc2_wh.
    """
    X = _features(features)
    N, d = X.shape
    if isinstance(Ws, np.ndarray) or not hasattr(Ws, "__len__") or len(Ws) == 0:
        raise ValueError("Ws must be a non-empty list [W_1, ..., W_L] of 2-D arrays (W_1 applied first)")
    W_L = _checks.array(Ws[-1], "Ws[-1] (W_L)")
    if W_L.ndim != 2:
        raise ValueError(f"Ws[-1] (W_L) must be a 2-D array of shape (K, d_(L-1)), got shape {W_L.shape}")
    K = W_L.shape[0]
    y, n = _labels(labels, N, num_classes=K, head=True)
    L = len(Ws)
    lam_W = _checks.layer_lambdas(lam_W, L, "lam_W")
    lam_H = _checks.positive_float(lam_H, "lam_H")
    bias = _checks.flag(bias, "bias")
    P = _head_direction(Ws, d, K)
    X = _unit_peak(X)  # every metric is scale free: an exact rescaling keeps every step in range (nc1)
    means = _means(X, y, K)  # K x d
    E = means.T * np.sqrt(n)[None, :]  # H-bar D, d x K, up to the power of two
    width = min([d] + [np.shape(W)[0] for W in Ws[:-1]])  # the feature dimension and the hidden widths
    structure = ufm.structure(n, lam_W, lam_H, L=L, bias=bias)
    if width < K:  # only the top `width` modes can survive
        if not geometry_defined(n, lam_W, lam_H, L, bias, width):  # no one target geometry
            rank = min(width, between_class_rank(structure))
            return {"nc1": _nc1(X, y, n, means, None, rank), **{k: float("nan") for k in _GEOMETRY_KEYS}}
        structure = ufm.structure(n, lam_W, lam_H, L=L, bias=bias, d=width)
    out = {"nc1": _nc1(X, y, n, means, None, between_class_rank(structure))}
    out.update(geometry_metrics(P, E, structure))
    return out


# ---------------------------------------------------------------------------------------------
# the bias and the global feature mean against the minimizer: b* = n/N and h_G = 0 (Theorems 4.2, 4.3)
# ---------------------------------------------------------------------------------------------

def bias_error(b, labels, num_classes: int | None = None) -> float:
    """||b - n/N||_2: distance of the bias to its value n/N at every minimizer (Theorems 4.2, 4.3).

    b: the K bias entries; labels: the N training labels 0..K-1 (n = class counts), every class with a sample;
    K = ``num_classes`` when given, else the classes of ``labels`` (largest label + 1), and b must have K entries
    (ValueError naming ``b`` otherwise). Chapter :ref:`ch-metrics`.
    """
    b = _checks.vector(b, "b")
    if num_classes is not None:
        num_classes = _checks.positive_int(num_classes, "num_classes")
        if b.size != num_classes:
            raise ValueError(f"b must have num_classes={num_classes} entries, got {b.size}")
    y, n = _labels(labels, _checks.array(labels, "labels").size, num_classes=num_classes)
    if b.size != n.size:
        raise ValueError(f"b must have one entry per class of labels, K={n.size} (labels 0..{n.size - 1}), "
                         f"got {b.size}")
    return float(np.linalg.norm(b - n / n.sum()))


def global_mean_norm(features) -> float:
    """||h_G||_2 with h_G = (1/N) sum_{k,i} h_{k,i}, the global feature mean (0 at every bias-case
    minimizer: proof of Theorem 4.2, eq. (B.5)-(B.7)). features: N x d. Chapter :ref:`ch-metrics`.

    Scale-safe like the rest of the module: the norm is taken of h_G rescaled by a power of two
    (:func:`_unit_peak`) and scaled back, since the sum of squares of entries above 1e154 overflows and below 1e-154
    underflows; where the sum of N entries near the top of the float64 range overflows, h_G is the mean of the
    rescaled features, scaled back. The result is inf only when ||h_G|| itself exceeds the float64 range."""
    X = _features(features)
    with np.errstate(over="ignore", invalid="ignore"):
        h_G = X.mean(axis=0)
    if not np.all(np.isfinite(h_G)):  # the sum of N finite entries overflowed: average the rescaled features
        e = _peak_exponent(X)
        h_G = np.ldexp(np.ldexp(X, -e).mean(axis=0), e)  # |h_G| <= max |x_ij|: finite
    with np.errstate(over="ignore", under="ignore"):  # squares of entries far below the peak may underflow: negligible
        return float(np.ldexp(np.linalg.norm(_unit_peak(h_G)), _peak_exponent(h_G)))
