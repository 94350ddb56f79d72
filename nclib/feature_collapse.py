"""Feature collapse: NC1 of Section 5 (bias case) and Appendix C (bias-free case), made well defined.

Section 5 of the paper measures feature collapse by NC1 = tr(Sigma_W Sigma_B^+)/K, the spread of the features
about their class means against the spread of the class means. As printed, near a minimizer with collapsed modes it
is a ratio of noise to noise (erratum M6, :ref:`ch-errata-metrics`). This module implements the form that
:ref:`ch-metrics` derives, exactly 0 (to rounding) at the closed-form global minimizer of ``nclib.ufm``:

* :func:`class_means` -- the class means h_k of Section 5, and the class counts n;
* :func:`nc1` -- tr(Sigma_W Sigma_B^+)/K, without a d x d pseudo-inverse, with Sigma_B cut to the rank it has at the
  global minimizer (:func:`between_class_rank`) so that NC1 stays continuous when modes collapse;
  :func:`separation_cutoff` is the smallest separation of the class means it keeps, as a fraction of the largest
  |entry| of the features (the bound on the rounding error of the class means derived at :func:`rounding_level`).

NC2 and NC3 are in :mod:`nclib.geometry`; all five from a network's features, labels and head weights are
:func:`nclib.metrics.collapse_metrics`. Features and labels are read as :mod:`nclib._samples` reads them.
"""
from __future__ import annotations

import numpy as np

from . import _checks, _samples


def class_means(features, labels, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The class means h_k = (1/n_k) sum_i h_{k,i} of Section 5, as a K x d float64 array, and n.

    Averaged after a rescaling of the features by a power of two (:func:`nclib._samples.unit_peak`) and scaled
    back, since a sum of entries near the top of the float64 range overflows: finite for any finite features, and bit
    for bit the plain average wherever that neither overflows nor leaves the normal range. Chapter :ref:`ch-metrics`.
    """
    X = _samples.features(features)
    y, n = _samples.labels(labels, X.shape[0], num_classes)
    e = _samples.peak_exponent(X)
    return np.ldexp(_samples.means(np.ldexp(X, -e), y, n.size), e), n


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
    :func:`nclib.metrics.collapse_metrics` passes it. Among the r values, those below ``rtol * s_max`` are dropped too
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
    ``rounding_level``: each entry is a difference of averages of at most N feature entries), so relative to the
    size of the features, offset included, not to the size of A; A counts as zero when no singular value exceeds
    sqrt(d K) times it (the cutoff above drops every direction), C when every entry is within it. An offset common
    to all the features raises that bound without being a collapse, so where it drops a direction that the
    relative cutoff keeps (every direction where A passes for zero), the features are read again about the
    midrange of each column (:func:`about_midrange`), where the bound, (N + 3) eps times their largest distance
    from it, scales with their spread, and the directions are cut with that bound; only A still zero there counts
    as coinciding means, and 0 is returned only for features all equal, whatever their offset (wherever
    (1 + sqrt(d K)) (N + 3) eps < 1, N below 1e13 at d = 2048, K = 26).

    Scale: NC1 is computed from the features rescaled by a power of two to a largest |entry| in [0.5, 1)
    (:func:`nclib._samples.unit_peak`), exactly, so that neither an SVD of entries near the top of the float64 range
    nor the inverse of singular values near its bottom leaves it: any finite features give a number, unchanged by
    the rescaling wherever the plain computation stays in range.

    features: N x d array (float32 or float64); labels: N integers 0..K-1 (K = ``num_classes`` or
    max label + 1), every class with at least one sample (so K <= N; a larger label is refused before
    anything is allocated).
    """
    X = _samples.features(features)
    y, n = _samples.labels(labels, X.shape[0], num_classes)
    if rtol is not None:
        rtol = relative_cutoff(rtol, "rtol")
    if rank is not None:
        if not _checks.is_integral(rank) or not 0 <= int(rank) <= n.size - 1:
            raise ValueError(f"rank must be an integer 0..K-1 = 0..{n.size - 1}, got {rank!r}")
        rank = int(rank)
    X = _samples.unit_peak(X)  # NC1 is scale free: an exact rescaling keeps every step in range
    return nc1_from_means(X, y, n, _samples.means(X, y, n.size), rtol, rank)


def relative_cutoff(value, name: str) -> float:
    """A cutoff relative to the largest singular value, 0 <= value < 1, as a float: at 1 or above even the largest is
    dropped, and NC1 would be 0 whatever the features.  ValueError naming ``name`` for a negative value, one of 1 or
    more, or no number.  The check of ``rtol`` of :func:`nc1` and of ``rcond`` of
    :func:`nclib.printed_metrics.printed_nc1`, Section 5's NC1 as printed, whose pseudo-inverse takes the same kind
    of cutoff."""
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
    s_p = _checks.strengths(structure.s_product, "structure.s_product")
    if s_p.size == 0:
        raise ValueError("structure.s_product must hold one entry per mode, got none")
    return int(min(np.count_nonzero(s_p > 0), s_p.size - 1))


def rounding_level(X: np.ndarray, centred: bool = False) -> float:
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

    ``centred=True``: X holds the differences x_ij - c_j from a reference c (:func:`about_midrange`), each
    rounded once (off by at most u |x_ij - c_j| <= u m), which moves a class mean, h_G and so each entry of A or C by
    at most eps m more: the bound is then (N + 3) eps m.

    ``X`` as :func:`nc1` reads the features (finite float64, N x d, N >= 1; not checked again).  Shared with
    :func:`nclib.printed_metrics.printed_nc1`, which reads class means that coincide to this level as Sigma_B = 0."""
    peak = max(float(X.max()), -float(X.min()))
    return _level_factor(X.shape[0], centred) * peak


def _level_factor(N: int, centred: bool = False) -> float:
    """The rounding level of :func:`rounding_level` per unit of max |x_ij|: (N + 2) eps, or (N + 3) eps centred.
    The one place this bound is written: :func:`nc1` and :func:`separation_cutoff` both take it from here."""
    return (N + 2 + centred) * np.finfo(np.float64).eps


def _separation_bound(d: int, K: int, level: float) -> float:
    """The bound sqrt(d K) ``level`` on the rounding error of A (d x K) in spectral norm, from the bound ``level`` on
    each entry (:func:`_directions`, :func:`separation_cutoff`)."""
    return np.sqrt(d * K) * level


def separation_cutoff(N: int, K: int, d: int) -> float:
    """The second cutoff of :func:`nc1` on the singular values of A = [h_k - h_G] (Section 5's Sigma_B = A A^T / K),
    as a fraction of max |x_ij|: sqrt(d K) (N + 2) eps, the bound on the rounding error of A in norm derived at
    :func:`rounding_level`. Chapter :ref:`ch-metrics`, section :ref:`sec-metrics-nc1`.

    A separation of the class means (a singular value of A) above this fraction of the largest |entry| of the
    features is never dropped by it; one at or below it is dropped, read as absent, wherever the midrange
    (min + max)/2 of every feature column is 0. Where the features share an offset, :func:`nc1` reads them again
    about their midrange, and only a separation within the (lower) bound of their spread is dropped.
    N: number of samples, K: number of classes (1 <= K <= N), d: feature dimension."""
    N, K, d = (_checks.positive_int(v, name) for v, name in ((N, "N"), (K, "K"), (d, "d")))
    if K > N:
        raise ValueError(f"K must be at most N={N} (every class needs a sample), got {K}")
    return float(_separation_bound(d, K, _level_factor(N)))  # the cutoff nc1 applies, per unit of max |x_ij|


def about_midrange(X: np.ndarray) -> tuple[np.ndarray, float]:
    """The features about the midrange c_j = (min_i x_ij + max_i x_ij)/2 of each column, rescaled by a power of two
    (:func:`nclib._samples.unit_peak`), and their rounding level (:func:`rounding_level`, centred).

    Differences of the features are unchanged by the shift (Sigma_B and Sigma_W with them), but the rounding level
    is now relative to the spread, not to the size of an offset common to all of them: about the midrange, features
    not all equal have a column whose entries reach +m and -m, and its entries cannot all lie within
    1 + sqrt(d K) times the level of one global mean while (1 + sqrt(d K)) (N + 3) eps < 1, so A (no singular value
    above sqrt(d K) times the level: no entry either) and C cannot both pass for zero. Read only where the rounding
    of the features as given decides a direction of A (:func:`_directions`), so that every other input keeps the
    plain computation bit for bit.  ``X`` as for :func:`rounding_level`; shared with
    :func:`nclib.printed_metrics.printed_nc1`, which reads its features again about their midrange where this
    module does."""
    c = X.min(axis=0) / 2 + X.max(axis=0) / 2  # halves first: no overflow
    Xc = _samples.unit_peak(X - c)
    return Xc, rounding_level(Xc, centred=True)


def zero_to_rounding(M: np.ndarray, level: float) -> bool:
    """Whether every entry of the array ``M`` is within ``level``, the rounding level of :func:`rounding_level` (or
    of :func:`about_midrange`): then M, a matrix of class-mean separations A or of within-class deviations C of
    Section 5, cannot be told from the zero matrix.  Shared with :func:`nclib.printed_metrics.printed_nc1`."""
    return bool(np.all(np.abs(M) <= level))


def _directions(A: np.ndarray, keep: int, rtol: float, level: float) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """The left singular vectors and singular values of A (d x K) that NC1 inverts, their number r, and whether the
    rounding of A decided it.

    Of the ``keep`` largest singular values, those above ``rtol`` times the largest (the SVD's own rounding, relative
    to ||A||_2) and above sqrt(d K) ``level`` are kept. ``level`` bounds the rounding error of each entry of A as
    computed (:func:`rounding_level`), so the error matrix has spectral norm at most its Frobenius norm,
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


def nc1_from_means(X: np.ndarray, y: np.ndarray, n: np.ndarray, means: np.ndarray, rtol: float | None,
         rank: int | None = None) -> float:
    """NC1 = tr(Sigma_W Sigma_B^+)/K of Section 5 as :func:`nc1` computes it, from features, labels and class counts
    already checked as :func:`nc1` checks them (float64 features rescaled by :func:`nclib._samples.unit_peak`, labels
    ``y`` 0..K-1, counts ``n``), their class means ``means`` (K x d), the relative cutoff ``rtol`` (None: max(d, K)
    eps) and the rank r (None: K - 1), none checked again.  :func:`nclib.metrics.collapse_metrics` computes the class
    means once for NC1, NC2 and NC3, and passes them here."""
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
    U_A, s_A, r, by_rounding = _directions(A, keep, rtol, rounding_level(X))  # offset included in the level
    if by_rounding:  # a direction within the rounding of the features as given: read again about their midrange,
        X, level = about_midrange(X)  # to the rounding of their spread (an offset raises the level, not A)
        means = _samples.means(X, y, K)
        A = (means - (n @ means) / N).T
        U_A, s_A, r, _ = _directions(A, keep, rtol, level)
        if r == 0:  # Sigma_B = 0 to rounding: the class means coincide
            return 0.0 if zero_to_rounding(X - means[y], level) else float("inf")
    C = X - means[y]  # within-class deviations, N x d (a fresh array: X is never modified)
    Z = C @ (U_A / s_A)  # N x r: rows are (A_r^+ (h_{k,i} - h_k))^T, U_A / s_A = (A_r^+)^T
    return float(np.einsum("ij,ij->", Z, Z) / N)

