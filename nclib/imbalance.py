"""Imbalanced class profiles, the label matrix Y and the centred, weighted label matrix Y-bar.

Definition 4.1 of the paper (grouped imbalance ({N_i, l_i}, {n_k})) and the matrices of
Section 3 and Theorem 4.2; used from :ref:`ch-setting` on. Also the spectra of Y-bar (Theorem 4.4) and the
blocks of equal singular values among its modes (:func:`mode_blocks`), which the metrics and the closed forms
share.

A *mode* is a pair of singular vectors of Y-bar with its singular value kappa_k (of D = diag(sqrt n) in the
bias-free model, whose modes are the classes), as :ref:`ch-setting` defines it; the paper says "singular value".
"""
from __future__ import annotations

from collections.abc import Mapping, Set

import numpy as np

from . import _checks

#: The paper's two class profiles (Section 5) as groups (N_i, l_i), N_i strictly decreasing.
PROFILES: dict[str, list[tuple[int, int]]] = {
    "cifar10": [(500, 2), (400, 2), (300, 2), (200, 2), (100, 2)],
    "emnist-letters": [(1500, 1), (600, 5), (50, 20)],
}

#: The most distinct class sizes m that :func:`group_singular_values` and :func:`ybar_singular_values` accept.
#: The secular solver costs O(m^2) (m - 1 roots, O(m) per step and root): m = 10,000 takes about 3 s on one
#: core, so this bound is about 5 minutes; m = 10^6 would take about 8 hours and is refused up front.
MAX_DISTINCT_SIZES = 100_000

#: The most distinct class sizes m that :func:`group_matrix` accepts: it forms the dense m x m group matrix, 8 m^2
#: bytes of float64 (800 MB at this bound; the solvers' :data:`MAX_DISTINCT_SIZES` would allow 80 GB).
#: :func:`group_singular_values` gives its singular values for larger m without forming it.
MAX_GROUP_MATRIX_SIZES = 10_000

#: The most classes K = sum l_i that the functions returning one value per class (:func:`class_counts`,
#: :func:`ybar_singular_values`) accept: below 2**53, as the N_i, so that every l_i and K are exact in float64,
#: where the spectrum is computed (an array of 2**53 float64 values would fill 64 PiB, more than any memory).
#: :func:`group_singular_values` returns m values and takes any l_i, a total N = sum N_i l_i beyond float64 (about
#: 1.8e308) included: the l_i enter only through the ratios l_i / N, formed after a scaling by a power of two
#: (:func:`_pair_arrays`).
MAX_CLASSES = 2 ** 53 - 1


def check_groups(groups) -> list[tuple[int, int]]:
    """Validate a grouped profile ``[(N_1, l_1), ..., (N_m, l_m)]`` of Definition 4.1.

    N_i must be strictly decreasing positive integers below 2**53 (exact in float64, where the spectrum is
    computed) and l_i positive integers.  A mapping or a set is refused, for the groups and for a pair: a set has
    no order of its own, and iterating a mapping gives its keys only.
    Returns the groups as a list of Python int pairs. Used in :ref:`ch-spectrum`.
    """
    if isinstance(groups, (Mapping, Set)):
        raise ValueError(f"groups must be a sequence of (N_i, l_i) pairs in order, not a {type(groups).__name__}, "
                         f"got {groups!r}")
    try:
        pairs = [g if isinstance(g, (Mapping, Set)) else tuple(g) for g in groups]
    except TypeError as exc:
        raise ValueError(f"groups must be a sequence of (N_i, l_i) pairs, got {groups!r}") from exc
    if len(pairs) == 0:
        raise ValueError("groups must hold at least one (N_i, l_i) pair (m >= 1), got none")
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, (Mapping, Set)):
            raise ValueError(f"groups[{i}] must be a pair (N_i, l_i) in this order, not a {type(pair).__name__}, "
                             f"got {pair!r}")
        if len(pair) != 2:
            raise ValueError(f"groups[{i}] must be a pair (N_i, l_i), got {pair!r}")
        N_i, l_i = pair
        if not _checks.is_integral(N_i) or int(N_i) < 1:
            raise ValueError(f"groups[{i}]: N_i must be a positive integer class size, got {N_i!r}")
        if int(N_i) >= 2 ** 53:  # the spectrum is computed in float64, which holds every integer only below 2**53
            raise ValueError(f"groups[{i}]: N_i must be below 2**53, got {N_i!r}")
        if not _checks.is_integral(l_i) or int(l_i) < 1:
            raise ValueError(f"groups[{i}]: l_i must be a positive integer number of classes (l_i >= 1), got {l_i!r}")
        out.append((int(N_i), int(l_i)))
    sizes = [N for N, _ in out]
    if any(a <= b for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"groups: the class sizes N_i must be strictly decreasing (Definition 4.1), got {sizes}")
    return out


def _check_class_total(pairs) -> None:
    """Refuse K = sum l_i above :data:`MAX_CLASSES`, naming ``groups``, before a length-K array is formed."""
    K = sum(l for _, l in pairs)
    if K > MAX_CLASSES:
        raise ValueError(f"groups has K = sum l_i = {K} classes; one value per class is returned only for "
                         f"K < 2**53 (nclib.imbalance.MAX_CLASSES), where every l_i is exact in float64; "
                         f"group_singular_values gives the m values of the group matrix for any l_i, "
                         f"a total N = sum N_i l_i beyond float64 included")


def class_counts(groups) -> np.ndarray:
    """The count vector n = [N_1 1_{l_1}; ...; N_m 1_{l_m}] of Definition 4.1 (length K = sum l_i).

    K is at most :data:`MAX_CLASSES`. Used from :ref:`ch-setting` on (the theory, spectrum, metrics and training
    chapters).

    >>> class_counts([(500, 2), (100, 1)]).tolist()
    [500, 500, 100]
    """
    pairs = check_groups(groups)
    _check_class_total(pairs)
    return np.concatenate([np.full(l, N, dtype=np.int64) for N, l in pairs])


def groups_of(n) -> list[tuple[int, int]]:
    """The grouped profile ({N_i, l_i}) of Definition 4.1 for any count vector n (any order).

    Inverse of :func:`class_counts` up to the order of the classes. Used in :ref:`ch-setting`.
    """
    n = _checks.counts(n)
    values, multiplicities = np.unique(n, return_counts=True)
    return [(int(N), int(l)) for N, l in zip(values[::-1], multiplicities[::-1])]


def class_labels(n) -> np.ndarray:
    """The length-N label vector [0]*n_1 + [1]*n_2 + ... of Definition 3.1 (samples grouped by class).

    The labels of the columns of :func:`label_matrix`; what :func:`nclib.metrics.nc1` and
    :func:`nclib.metrics.collapse_metrics` take. Used in :ref:`ch-metrics` and :ref:`ch-errata-metrics`.
    """
    n = _checks.counts(n)
    N = _checks.count_total(n)
    if N > np.iinfo(np.intp).max:
        raise ValueError(f"n sums to N = {N} samples, more than an array can index (2**63 - 1); the per-sample "
                         f"matrices (labels, Y, H) cannot be formed, only the closed forms over the K classes")
    return np.repeat(np.arange(n.size), n)


def small_classes(n) -> np.ndarray:
    """The small classes of a profile of class counts ``n`` (Definition 4.1; Section 5's imbalanced profiles): the
    indices of the classes with fewer samples than the average class, N/K (CIFAR-10's profile of Figures 1 and 3, two
    classes each of 100 to 500: those of 100 and 200; the letters' of Figures 2 and 4, twenty of 50, five of 600 and
    one of 1,500: the twenty of 50).  The modes of M that a stalled run of those figures puts at 0 are theirs
    (:func:`nclib.figures.check_stalls`).  Empty for equal counts.  ValueError naming ``n`` unless class counts.
    n_k < N/K is compared as n_k K < N in exact integers, right for any counts below 2**63 (in int64 n_k K and N
    wrap around past 2**63 - 1).  Chapters: :ref:`ch-intro`, :ref:`ch-figures-summary`."""
    n = _checks.counts(n, "n")
    K, N = n.size, _checks.count_total(n)
    if int(n.max()) <= (2 ** 63 - 1) // K:  # every n_k K, and N <= K max(n), fits in int64
        return np.flatnonzero(n * K < N)
    return np.flatnonzero([int(v) * K < N for v in n])


def random_groups(rng: np.random.Generator, K_max: int, m_max: int, N_max: int, K: int | None = None):
    """A random grouped profile of Definition 4.1 for numerical checks of Theorem 4.4.

    K classes (K drawn from 1..K_max unless given; a given K may exceed K_max), m <= min(K, m_max, N_max) distinct sizes
    N_1 > ... > N_m drawn from 1..N_max, multiplicities l_i >= 1 summing to K. N_max must be below 2**53, as every
    size is (:func:`check_groups`); the sizes are drawn without forming the range 1..N_max (NumPy's choice from an
    integer population keeps O(m) memory unless m exceeds N_max / 50), the same draw as from that range, so
    N_max = 10**12 costs what N_max = 50 does. Used in :ref:`ch-spectrum` and its tests.
    """
    rng = _checks.generator(rng)
    K_max, m_max, N_max = (_checks.positive_int(v, name) for v, name in
                           ((K_max, "K_max"), (m_max, "m_max"), (N_max, "N_max")))
    if N_max >= 2 ** 53:
        raise ValueError(f"N_max must be below 2**53, the bound on a class size of check_groups, got {N_max!r}")
    K = int(rng.integers(1, K_max + 1)) if K is None else _checks.positive_int(K, "K")
    m = int(rng.integers(1, min(K, m_max, N_max) + 1))
    sizes = np.sort(rng.choice(N_max, size=m, replace=False) + 1)[::-1]  # as choice(arange(1, N_max + 1)) draws
    mults = rng.multinomial(K - m, np.ones(m) / m) + 1
    return list(zip(sizes.tolist(), mults.tolist()))


def label_matrix(n) -> np.ndarray:
    """The K x N one-hot label matrix Y of Definition 3.1, columns grouped by class.

    Column j is e_k for the k-th block of n_k columns (class 0 first). Used in :ref:`ch-setting`,
    :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43` and :ref:`ch-errata-theory`.
    """
    n = _checks.counts(n)
    labels = class_labels(n)
    Y = np.zeros((n.size, labels.size))
    Y[labels, np.arange(labels.size)] = 1.0
    return Y


def ybar(n) -> np.ndarray:
    """Y-bar = (I_K - n 1_K^T / N) D with D = diag(sqrt(n)) (Theorem 4.3; the paper's abstract writes it Y-hat, and
    Theorem 4.2 prints it as "Y-bar D": see the notation note of :ref:`ch-errata-theory`).

    The K x K float64 matrix whose singular values drive Theorems 4.2-4.4. Used in :ref:`ch-setting`,
    :ref:`ch-thm42`, :ref:`ch-thm43`, :ref:`ch-spectrum`, :ref:`ch-metrics` and the errata.
    """
    n = _checks.counts(n)
    nf = n.astype(np.float64)
    K, N = n.size, nf.sum()
    return (np.eye(K) - np.outer(nf, np.ones(K)) / N) * np.sqrt(nf)[None, :]


# ---------------------------------------------------------------------------------------------
# The spectrum of Y-bar for grouped imbalance: Theorem 4.4 (Theorems B.1, B.2); chapter ch-spectrum.
# ---------------------------------------------------------------------------------------------

#: The bits of the largest total N = sum N_i l_i that :func:`_pair_arrays` forms in float64 unscaled: with
#: N < 2**960 no product of the spectrum's formulas overflows (l_i N_i^2 <= N_i N < 2**1013, N_i sqrt(l_i l_j N_j)
#: <= sqrt(N_i) N < 2**987); a larger N has its l_i scaled by a power of two first.
_UNSCALED_BITS = 960


def _pair_arrays(pairs) -> tuple[np.ndarray, np.ndarray, float]:
    """(N_i, 2**-k l_i) as float64 arrays and their total 2**-k N, for pairs that :func:`check_groups` returned.

    The spectrum, G and w depend on the l_i only through the ratios l_i / N (Theorem 4.4), which a common factor
    leaves unchanged, so the l_i may be scaled by 2**-k: k = 0 while the exact total N = sum N_i l_i is below
    2**960 (:data:`_UNSCALED_BITS`), else the smallest even k that brings it there.  Any l_i is taken, where
    float64 would make N (above about 1.8e308) infinite or refuse an l_i beyond it.  Scaling by an even power of
    two is exact in float64, square roots included, so a total that float64 holds gives the numbers it gave
    unscaled, bit for bit; 2**-k l_i, rounded once from the exact integers, is as accurate as l_i would be,
    unless it is subnormal (N beyond about 2**1980, where the weight l_i N_i / N is below 2**-1900).
    """
    total = sum(N * l for N, l in pairs)  # exact: Python integers
    k = max(0, total.bit_length() - _UNSCALED_BITS)
    k += k % 2  # even, so that sqrt(2**-k l_i) = 2**(-k/2) sqrt(l_i) exactly
    scale = 1 << k
    sizes = np.array([N for N, _ in pairs], dtype=np.float64)
    mults = np.array([l / scale for _, l in pairs], dtype=np.float64)  # int / int: correctly rounded, no overflow
    return sizes, mults, float(np.dot(sizes, mults))


def group_matrix(groups) -> np.ndarray:
    """The m x m group matrix G of Theorem 4.4 / Theorem B.1, reconstructed from the proof of B.1.

    G_ii = sqrt(N_i) (1 - N_i l_i / N) and G_ij = -(N_i sqrt(N_j) / N) sqrt(l_i l_j) for i != j, i.e.
    G = diag(sqrt(N_i)) - v t^T / N with v_i = N_i sqrt(l_i) and t_j = sqrt(N_j l_j); it is the block of
    U^T Y-bar U on the normalised group indicators 1_{l_i} / sqrt(l_i).  The singular values of Y-bar are
    those of G plus sqrt(N_i) repeated l_i - 1 times (chapter ch-spectrum).

    At most :data:`MAX_GROUP_MATRIX_SIZES` groups; the matrix is built in place, one m x m array.

    >>> np.round(group_matrix([(2, 1), (1, 1)]), 4).tolist()
    [[0.4714, -0.6667], [-0.4714, 0.6667]]
    """
    pairs = check_groups(groups)
    if len(pairs) > MAX_GROUP_MATRIX_SIZES:
        raise ValueError(f"groups has m = {len(pairs):,} distinct class sizes; the dense m x m group matrix of "
                         f"Theorem 4.4 is formed only for m <= {MAX_GROUP_MATRIX_SIZES:,} "
                         f"(nclib.imbalance.MAX_GROUP_MATRIX_SIZES, 8 m^2 bytes of float64); "
                         f"group_singular_values gives its singular values without forming it")
    sizes, mults, N = _pair_arrays(pairs)
    v = sizes * np.sqrt(mults)
    t = np.sqrt(sizes * mults)
    G = np.outer(v, t)
    G /= N
    np.subtract(0.0, G, out=G)  # diag(sqrt(N_i)) - v t^T / N: 0 - x off the diagonal, then -x + sqrt(N_i) on it
    G[np.diag_indices(sizes.size)] += np.sqrt(sizes)
    return G


#: The most iterations per root of the secular solver (:func:`secular_iterations` counts them): a handful are
#: needed; bisection alone would end within ~1100.
_MAX_ITERATIONS = 1100


def _secular_roots(sizes: np.ndarray, mults: np.ndarray, N: float) -> tuple[np.ndarray, np.ndarray]:
    """The m - 1 positive eigenvalues of G G^T, mu_1 > ... > mu_{m-1}, mu_i in (N_{i+1}, N_i), and the number
    of iterations (evaluations of h and h') each took.

    Because sum_j l_j N_j = N, the secular function factors as w(mu) = -(mu / N) h(mu) with
    h(mu) = sum_j l_j N_j / (N_j - mu), which increases from -inf to +inf on each (N_{i+1}, N_i); the
    positive eigenvalues are the zeros of h (the known root mu = 0 deflated, and with it the constant
    1 of w whose cancellation would cost accuracy).  Vectorised over the intervals: the origin is moved
    to the pole nearer to the root (by the sign of h at the midpoint) so that N_j - mu = (N_j - origin) - t
    is formed without cancellation (N_j - origin is exact for integer counts below 2**53, which check_groups
    requires), as in LAPACK's dlaed4.
    Each step solves a model with the origin's pole exact and the other terms as one pole at the far end
    of the interval, matching h and h' at the current point (the fixed-weight iteration of R.-C. Li,
    "Solving secular equations stably and efficiently", LAPACK Working Note 89), which converges
    quadratically; a step that leaves the bracket of sign changes is replaced by bisection.  An
    interval stops when |h| is within 8 eps sum_j |l_j N_j / (N_j - mu)| (its rounding error), or when
    the step or the bracket reaches the rounding of t.  Each step costs O(m) per interval, and about
    five steps are needed, so O(m^2) in all (:data:`MAX_DISTINCT_SIZES` bounds m).
    """
    m = sizes.size
    if m == 1:
        return np.empty(0), np.empty(0, dtype=np.int64)
    eps = np.finfo(np.float64).eps
    c = mults * sizes / N  # h(mu) / N = sum_j c_j / (N_j - mu), sum_j c_j = 1
    roots = np.empty(m - 1)
    iterations = np.empty(m - 1, dtype=np.int64)
    chunk = max(1, (1 << 22) // m)  # bound the (intervals x m) work arrays to ~32 MB
    for s in range(0, m - 1, chunk):
        idx = np.arange(s, min(s + chunk, m - 1))
        hi, lo = sizes[idx], sizes[idx + 1]
        half = 0.5 * (hi - lo)
        # the sign of h at the midpoint, with N_j - mid formed as (N_j - lo) - half: never 0, where mid itself
        # (hi + lo) / 2 can round onto lo or hi for sizes near 2**53 and put a pole there
        upper = (1.0 / ((sizes[None, :] - lo[:, None]) - half[:, None])) @ c <= 0.0  # root in [mid, N_i): origin N_i
        origin = np.where(upper, hi, lo)
        c_o = np.where(upper, c[idx], c[idx + 1])  # the weight of the pole at the origin (t = 0)
        far = np.where(upper, lo - hi, hi - lo)  # the other pole of the interval, in t = mu - origin
        a = np.where(upper, -half, 0.0)  # bracket for t, with h(a) <= 0 <= h(b)
        b = np.where(upper, 0.0, half)
        t = 0.5 * (a + b)
        active = np.arange(idx.size)
        for it in range(1, _MAX_ITERATIONS + 1):
            if active.size == 0:
                break
            ta, aa, bb = t[active], a[active], b[active]
            R = sizes[None, :] - origin[active, None]  # N_j - origin, exact for integer counts below 2**53
            R -= ta[:, None]
            # 1 / (N_j - mu) and its square overflow only at the origin's pole, for |t| < 2**-512 (t = 0 included),
            # far below the spacing of float64 at the origin (a count >= 1): there mu = origin + t rounds onto the
            # origin and stays there whatever h's sign makes the bracket do, nan included (inf times a weight
            # c_j = l_j N_j / N rounded to 0, which takes N beyond 2**1074, see _pair_arrays)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                np.reciprocal(R, out=R)
                f = R @ c
                noise = 8.0 * eps * (np.abs(R) @ c)
                R *= R
                fp = R @ c
            right = f < 0.0
            aa = np.where(right, ta, aa)
            bb = np.where(right, bb, ta)
            d_o = -ta  # the origin's pole and the far pole, seen from t
            d_f = far[active] - ta
            w_o = c_o[active]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                w_f = np.maximum(fp - w_o / (d_o * d_o), 0.0) * d_f * d_f
                S = f - w_o / d_o - w_f / d_f
                # S + w_o/(d_o - u) + w_f/(d_f - u) = 0  <=>  S u^2 - B u + C = 0; the small root is the step
                B = S * (d_o + d_f) + w_o + w_f
                C = d_o * d_f * f
                u = 2.0 * C / (B + np.copysign(np.sqrt(np.maximum(B * B - 4.0 * S * C, 0.0)), B))
            step = ta + u
            step = np.where(np.isfinite(step) & (step > aa) & (step < bb), step, 0.5 * (aa + bb))
            converged = np.abs(f) <= noise
            done = (converged | (np.abs(step - ta) <= 2.0 * eps * np.abs(ta))
                    | (bb - aa <= 2.0 * eps * np.maximum(np.abs(aa), np.abs(bb))))
            t[active] = np.where(converged, ta, step)
            a[active], b[active] = aa, bb
            iterations[s + active[done]] = it
            active = active[~done]
        iterations[s + active] = _MAX_ITERATIONS
        roots[s:s + idx.size] = origin + t
    return roots, iterations


def group_singular_values(groups) -> np.ndarray:
    """The singular values sigma~_1 >= ... >= sigma~_m = 0 of the group matrix G (Theorems 4.4, B.1, B.2).

    Computed from the secular equation (ch-spectrum), not from an SVD: sigma~_m = 0 exactly (G has the
    left null vector sqrt(l)) and sigma~_i = sqrt(mu_i) with mu_i the root of w in (N_{i+1}, N_i), so
    0 = sigma~_m < sqrt(N_m) < sigma~_{m-1} < ... < sqrt(N_2) < sigma~_1 < sqrt(N_1), strict in exact arithmetic;
    non-strict in float64, where the square roots of adjacent sizes near 2**52 (which :func:`check_groups`
    accepts) round to one number and sigma~_i with them.
    """
    return _group_sigma(*_solver_arrays(check_groups(groups)))


def _solver_arrays(pairs) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`_pair_arrays` of checked pairs, refusing more than :data:`MAX_DISTINCT_SIZES` groups before any
    O(m^2) work."""
    sizes, mults, N = _pair_arrays(pairs)
    if sizes.size > MAX_DISTINCT_SIZES:
        raise ValueError(f"groups has m = {sizes.size:,} distinct class sizes; the spectrum of Theorem 4.4 is "
                         f"computed from m - 1 roots of the secular equation at O(m^2) cost and is refused above "
                         f"m = {MAX_DISTINCT_SIZES:,} (nclib.imbalance.MAX_DISTINCT_SIZES, about 5 minutes on one "
                         f"core); merge or bin the class sizes")
    return sizes, mults, N


def _group_sigma(sizes: np.ndarray, mults: np.ndarray, N: float) -> np.ndarray:
    """:func:`group_singular_values` from the arrays of :func:`_solver_arrays`: sqrt of the roots, then 0."""
    return np.concatenate([np.sqrt(_secular_roots(sizes, mults, N)[0]), [0.0]])


def secular_iterations(groups) -> np.ndarray:
    """The iterations the secular solver of :func:`group_singular_values` takes for each of the m - 1 positive
    eigenvalues of G G^T (Theorem 4.4; ch-spectrum), in the order mu_1 > ... > mu_{m-1}.

    One iteration evaluates h and h' at one point of the interval (N_{i+1}, N_i) and takes one fixed-weight or
    bisection step; the count includes the evaluation that finds the root converged.  An int64 array of
    length m - 1 (empty for m = 1); the groups are checked as by :func:`group_singular_values`.
    """
    return _secular_roots(*_solver_arrays(check_groups(groups)))[1]


def ybar_singular_values(groups) -> np.ndarray:
    """All K singular values of Y-bar in non-increasing order, from Theorem 4.4 / Theorem B.1 (ch-spectrum).

    sqrt(N_i) with multiplicity l_i - 1 for each group and the m singular values of the group matrix G
    (:func:`group_singular_values`); by the interlacing the list
    [sqrt(N_1) x (l_1 - 1), sigma~_1, sqrt(N_2) x (l_2 - 1), sigma~_2, ..., sqrt(N_m) x (l_m - 1), 0]
    is already sorted.  Costs O(m^2) for the roots plus O(K) for the output; no K x K matrix is formed.
    K is at most :data:`MAX_CLASSES`.

    >>> np.round(ybar_singular_values([(3, 2), (1, 1)]), 6).tolist()
    [1.732051, 1.133893, 0.0]
    """
    pairs = check_groups(groups)  # once, here: groups may be an iterator, and the check costs O(m) in Python
    _check_class_total(pairs)
    sizes, mults, N = _solver_arrays(pairs)
    values = np.empty(2 * sizes.size)
    values[0::2] = np.sqrt(sizes)
    values[1::2] = _group_sigma(sizes, mults, N)
    reps = np.empty(2 * sizes.size, dtype=np.int64)
    reps[0::2] = [l - 1 for _, l in pairs]  # from the integers: mults may be scaled (_pair_arrays)
    reps[1::2] = 1
    return np.repeat(values, reps)


#: Relative tolerance under which two singular values of M (Y-bar or D) count as equal, so that their modes live or
#: die together and, with a bias, form one block of NC3 (see :func:`mode_blocks`; Theorem 4.4 gives the repeated
#: ones; without a bias NC3 compares class with class).
BLOCK_RTOL = 1e-8


def mode_blocks(kappa, alive, rtol: float = BLOCK_RTOL) -> list[np.ndarray]:
    """Group the surviving modes into blocks of equal singular value kappa (with a bias, the blocks of NC3, chapter :ref:`ch-metrics`).

    kappa: the K singular values of M (Y-bar with bias, D without), in any order; alive: a boolean
    mask of the modes whose predicted singular values are non-zero. Two modes share a block when
    their kappas differ by at most ``rtol * max(kappa)``, chained along the sorted kappas. Returns a
    list of index arrays (blocks in decreasing kappa). Inside a block the singular vectors of M
    are determined only up to a common rotation, which the NC3 of :func:`nclib.metrics.geometry_metrics` ignores.
    """
    kappa = _checks.singular_values(kappa)
    alive = np.atleast_1d(np.asarray(alive))
    if alive.dtype != bool or alive.ndim != 1:
        raise ValueError(f"alive must be a 1-D boolean mask, got dtype {alive.dtype} and shape {alive.shape}")
    if kappa.shape != alive.shape:
        raise ValueError(f"alive must have one entry per singular value: kappa has {kappa.size}, alive {alive.size}")
    rtol = _checks.nonneg_float(rtol, "rtol")
    idx = np.flatnonzero(alive)
    if idx.size == 0:
        return []
    idx = idx[np.argsort(-kappa[idx], kind="stable")]
    tol = rtol * float(np.max(np.abs(kappa)))
    blocks, current = [], [idx[0]]
    for a, b in zip(idx[:-1], idx[1:]):
        if kappa[a] - kappa[b] <= tol:
            current.append(b)
        else:
            blocks.append(np.array(current))
            current = [b]
    blocks.append(np.array(current))
    return blocks
