"""Unit tests of the spectrum of Y-bar in nclib.imbalance (Theorem 4.4, Theorems B.1, B.2; ch-spectrum)."""
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import nclib.imbalance as imb


def test_group_matrix_entries_match_the_proof_of_theorem_b1():
    groups = [(7, 2), (4, 3), (2, 1)]
    G = imb.group_matrix(groups)
    N = 7 * 2 + 4 * 3 + 2 * 1
    for i, (Ni, li) in enumerate(groups):
        for j, (Nj, lj) in enumerate(groups):
            want = np.sqrt(Ni) * (1 - Ni * li / N) if i == j else -Ni * np.sqrt(Nj) / N * np.sqrt(li * lj)
            assert G[i, j] == pytest.approx(want, rel=1e-14, abs=0)


def test_group_matrix_gram_is_diagonal_minus_rank_one_and_has_null_vector():
    rng = np.random.default_rng(3)
    for _ in range(20):
        groups = imb.random_groups(rng, 500, 30, 10_000)
        sizes, mults = (np.array(x, dtype=float) for x in zip(*groups))
        N = sizes @ mults
        G = imb.group_matrix(groups)
        v = sizes * np.sqrt(mults)
        np.testing.assert_allclose(G @ G.T, np.diag(sizes) - np.outer(v, v) / N, rtol=0, atol=1e-12 * sizes[0])
        np.testing.assert_allclose(np.sqrt(mults) @ G, 0.0, atol=1e-12 * np.sqrt(sizes[0]) * np.sqrt(mults.sum()))


def test_group_singular_values_match_svd_of_G_and_interlace_strictly():
    rng = np.random.default_rng(4)
    for _ in range(30):
        groups = imb.random_groups(rng, 400, 40, 5_000)
        sizes = np.array([N for N, _ in groups], dtype=float)
        sig = imb.group_singular_values(groups)
        ref = np.linalg.svd(imb.group_matrix(groups), compute_uv=False)
        assert sig.shape == (len(groups),) and sig[-1] == 0.0
        np.testing.assert_allclose(sig[:-1], ref[:-1], rtol=1e-12)  # measured worst 1.3e-15
        assert ref[-1] <= 1e-12 * ref[0]
        # 0 = s_m < sqrt(N_m) < s_{m-1} < sqrt(N_{m-1}) < ... < s_1 < sqrt(N_1)
        assert np.all(sig[:-1] < np.sqrt(sizes[:-1])) and np.all(sig[:-1] > np.sqrt(sizes[1:]))


@pytest.mark.parametrize("seed", range(4))
def test_ybar_singular_values_agree_with_dense_svd(seed):
    rng = np.random.default_rng(seed)
    for trial in range(12):
        K = 2000 if trial == 0 and seed < 2 else None  # two profiles with K = 2,000 classes
        groups = imb.random_groups(rng, 600, 60, int(rng.choice([70, 1000, 10**6])), K=K)
        s = imb.ybar_singular_values(groups)
        d = np.linalg.svd(imb.ybar(imb.class_counts(groups)), compute_uv=False)
        assert s.shape == d.shape
        assert np.all(np.diff(s) <= 0)
        # the positive values to 2e-11 relative, the zero one (last) to 5e-13 of the largest: about 1000 times the
        # measured worst over these 48 profiles (1.9e-14 and 4.6e-16)
        np.testing.assert_allclose(s[:-1], d[:-1], rtol=2e-11)
        np.testing.assert_allclose(s[-1], d[-1], rtol=0, atol=5e-13 * d[0])


def test_ybar_singular_values_structure_and_paper_profiles():
    for name, groups in imb.PROFILES.items():
        s = imb.ybar_singular_values(groups)
        d = np.linalg.svd(imb.ybar(imb.class_counts(groups)), compute_uv=False)
        np.testing.assert_allclose(s[:-1], d[:-1], rtol=1e-12)
        assert s[-1] == 0.0 and abs(d[-1]) < 1e-12 * d[0]
        for N_i, l_i in groups:
            assert np.sum(s == np.sqrt(N_i)) == l_i - 1


def test_balanced_and_two_group_closed_forms():
    s = imb.ybar_singular_values([(50, 4)])  # m = 1: sqrt(N_1) three times and 0
    np.testing.assert_array_equal(s, [np.sqrt(50)] * 3 + [0.0])
    for (N1, l1), (N2, l2) in [((500, 3), (100, 7)), ((2, 1), (1, 1)), ((10**6, 1), (1, 10**3))]:
        N = N1 * l1 + N2 * l2
        sig = imb.group_singular_values([(N1, l1), (N2, l2)])
        np.testing.assert_allclose(sig, [np.sqrt(N1 * N2 * (l1 + l2) / N), 0.0], rtol=1e-14)


def test_roots_are_accurate_for_clustered_sizes_against_high_precision():
    # consecutive large sizes: the roots crowd against the poles; compare with 50-digit eigenvalues
    groups = [(10**6 - i, 1 + 3 * i) for i in range(8)]
    with mpmath.workdps(50):  # 50 digits here only, restored however the test ends
        sizes = [mpmath.mpf(N) for N, _ in groups]
        mults = [mpmath.mpf(l) for _, l in groups]
        N = sum(a * b for a, b in zip(sizes, mults))
        m = len(groups)
        A = mpmath.matrix(m, m)
        for i in range(m):
            for j in range(m):
                A[i, j] = (sizes[i] if i == j else 0) - sizes[i] * sizes[j] * mpmath.sqrt(mults[i] * mults[j]) / N
        ev = sorted((float(x) for x in mpmath.eigsy(A, eigvals_only=True)), reverse=True)
        sig = imb.group_singular_values(groups)
        np.testing.assert_allclose(sig[:-1] ** 2, ev[:-1], rtol=1e-14)
        # the distances to the poles, where cancellation would show first
        gaps = np.array([N for N, _ in groups[:-1]], dtype=float) - sig[:-1] ** 2
        gaps_ref = np.array([float(sizes[i] - mpmath.mpf(e)) for i, e in enumerate(
            sorted(mpmath.eigsy(A, eigvals_only=True), reverse=True)[:-1])])
        np.testing.assert_allclose(gaps, gaps_ref, rtol=1e-8)  # gaps ~ 0.1 re-formed from sigma^2 ~ 1e6


@pytest.mark.filterwarnings("error")  # no stray RuntimeWarning from a pole hit on the way
def test_sizes_next_to_2_to_the_53_give_accurate_roots_and_no_warning():
    # (2**53 - 1 + 2**53 - 2) / 2 rounds onto 2**53 - 2, a pole of h; the roots are 2**53 - 1.5 (not a float) and 1.5
    groups = [(2**53 - 1, 1), (2**53 - 2, 1), (1, 1)]
    sig = imb.group_singular_values(groups)
    with mpmath.workdps(60):
        sizes = [mpmath.mpf(N) for N, _ in groups]
        N = sum(sizes)
        A = mpmath.matrix(3, 3)
        for i in range(3):
            for j in range(3):
                A[i, j] = (sizes[i] if i == j else 0) - sizes[i] * sizes[j] / N
        ev = sorted((float(x) for x in mpmath.eigsy(A, eigvals_only=True)), reverse=True)
    np.testing.assert_allclose(sig[:-1] ** 2, ev[:-1], rtol=2e-16)
    assert sig[-1] == 0.0


def secular_function(groups, mu) -> np.ndarray:
    """The secular function w(mu) = 1 - (1/N) sum_i l_i N_i^2 / (N_i - mu) of Y-bar Y-bar^T (Theorem 4.4), from its
    definition, for the independent check below of imb.group_singular_values: G G^T = diag(N_i) - v v^T / N with
    v_i = N_i sqrt(l_i), so det(mu I - G G^T) = prod_i (mu - N_i) w(mu) (the matrix determinant lemma; the secular
    equation of Golub 1973), and the zeros of w are the m eigenvalues of G G^T: 0 and one in each (N_{i+1}, N_i).
    ``mu`` a float or an array of floats away from the N_i."""
    sizes = np.array([N_i for N_i, _ in groups], dtype=float)
    mults = np.array([l_i for _, l_i in groups], dtype=float)
    terms = mults * sizes**2 / (sizes - np.asarray(mu, dtype=float)[..., None])
    return 1.0 - terms.sum(axis=-1) / (sizes @ mults)


def test_secular_function_vanishes_at_the_spectrum_and_changes_sign_at_poles():
    groups = imb.PROFILES["emnist-letters"]
    sig = imb.group_singular_values(groups)
    vals = secular_function(groups, sig**2)
    sizes = np.array([N for N, _ in groups], dtype=float)
    mults = np.array([l for _, l in groups], dtype=float)
    N = float(sizes @ mults)
    # w = 1 - (1/N) sum_i l_i N_i^2 / (N_i - mu) vanishes at every root, to rounding relative to its terms (mu = 0
    # is a root of any input, since sum l_i N_i = N; the others are the solver's)
    scale = 1 + np.abs(mults * sizes**2 / (sizes - sig[:, None] ** 2)).sum(axis=1) / N
    assert np.all(np.abs(vals) <= 1e-13 * scale), vals
    assert np.all(np.abs(secular_function(groups, (sig * (1 + 1e-6)) ** 2)[:-1]) > 1e-9)  # not 0 elsewhere
    eps = 1e-6
    assert np.all(secular_function(groups, sizes - eps) < 0)  # w -> -inf just below each pole
    assert np.all(secular_function(groups, sizes + eps) > 0)  # w -> +inf just above
    # f(N_i) = det(N_i I - G G^T) = (l_i N_i^2 / N) prod_{j != i} (N_i - N_j), of sign (-1)^(i-1) (1-based i)
    GGt = imb.group_matrix(groups) @ imb.group_matrix(groups).T
    for i, (Ni, li) in enumerate(groups):
        f = li * Ni**2 / N * np.prod([Ni - Nj for j, (Nj, _) in enumerate(groups) if j != i])
        assert np.linalg.det(Ni * np.eye(len(groups)) - GGt) == pytest.approx(f, rel=1e-9)
        assert np.sign(f) == (-1) ** i  # i is 0-based here: (-1)^((i+1)-1)


def test_secular_iterations_count_a_few_steps_per_root():
    assert imb.secular_iterations([(50, 4)]).shape == (0,)  # m = 1: no positive root
    rng = np.random.default_rng(11)
    counts = []
    for _ in range(40):
        groups = imb.random_groups(rng, 2000, 200, int(rng.choice([300, 10**5, 10**6])))
        it = imb.secular_iterations(groups)
        assert it.shape == (len(groups) - 1,) and it.dtype == np.int64
        counts.append(it)
    counts = np.concatenate(counts)
    # every root converges in a few fixed-weight steps, far fewer than bisection's one bit per step (52 bits of a
    # float64 mantissa) and the cap; measured: median 5, at most 7 over these profiles
    assert counts.min() >= 1 and counts.max() < 20
    # at the sizes next to 2**53 and clustered sizes too
    assert imb.secular_iterations([(2**53 - 1, 1), (2**53 - 2, 1), (1, 1)]).max() < 20
    assert imb.secular_iterations([(10**6 - i, 1 + 3 * i) for i in range(8)]).max() < 20


def test_a_root_found_at_the_first_evaluation_counts_one_iteration():
    """The count includes the evaluation that finds the root converged.  groups (5, 1), (1, 15): N = 20 and the root
    mu = N_1 N_2 (l_1 + l_2) / N = 4 lies in the upper half of (1, 5), where the solver starts at the middle of that
    half, 4, and h(4) = 5/20 / 1 + 15/20 / (-3) = 0: one iteration."""
    np.testing.assert_array_equal(imb.group_singular_values([(5, 1), (1, 15)]), [2.0, 0.0])
    np.testing.assert_array_equal(imb.secular_iterations([(5, 1), (1, 15)]), [1])


def test_more_distinct_sizes_than_max_distinct_sizes_are_refused_naming_groups(monkeypatch):
    """The O(m^2) solver refuses m above MAX_DISTINCT_SIZES before any work; m at the bound is computed (a bound of 3
    here, to keep the check fast), and the real bound refuses m = 100,001 at once."""
    with monkeypatch.context() as patch:
        patch.setattr(imb, "MAX_DISTINCT_SIZES", 3)
        for func in (imb.group_singular_values, imb.ybar_singular_values, imb.secular_iterations):
            with pytest.raises(ValueError, match="^groups has m = 4 distinct class sizes"):
                func([(9, 1), (7, 1), (4, 2), (1, 1)])
        assert imb.group_singular_values([(9, 1), (7, 1), (4, 2)]).shape == (3,)
    assert imb.MAX_DISTINCT_SIZES == 100_000
    with pytest.raises(ValueError, match="^groups has m = 100,001 distinct class sizes"):
        imb.group_singular_values([(100_001 - i, 1) for i in range(100_001)])


def test_group_matrix_refuses_more_groups_than_it_forms_naming_groups(monkeypatch):
    """The dense m x m matrix takes 8 m^2 bytes: above MAX_GROUP_MATRIX_SIZES it is refused before it is formed (a
    bound of 3 here, to check m at the bound too); 60,000 groups (27 GiB) are refused at once."""
    with monkeypatch.context() as patch:
        patch.setattr(imb, "MAX_GROUP_MATRIX_SIZES", 3)
        with pytest.raises(ValueError, match="^groups has m = 4 distinct class sizes"):
            imb.group_matrix([(9, 1), (7, 1), (4, 2), (1, 1)])
        assert imb.group_matrix([(9, 1), (7, 1), (4, 2)]).shape == (3, 3)
    assert imb.MAX_GROUP_MATRIX_SIZES == 10_000 < imb.MAX_DISTINCT_SIZES
    with pytest.raises(ValueError, match="^groups has m = 60,000 distinct class sizes"):
        imb.group_matrix([(100_000 - i, 1) for i in range(60_000)])


def test_million_classes_without_a_dense_matrix():
    rng = np.random.default_rng(7)
    sizes = np.sort(rng.choice(np.arange(1, 100_001), size=100, replace=False))[::-1]
    mults = rng.multinomial(10**6 - 100, np.ones(100) / 100) + 1
    groups = list(zip(sizes.tolist(), mults.tolist()))
    s = imb.ybar_singular_values(groups)
    assert s.shape == (10**6,) and np.all(np.diff(s) <= 0) and s[-1] == 0.0
    # sum of squares = trace(Y-bar Y-bar^T) = N - sum n_k^2 / N
    N = float(sizes @ mults)
    np.testing.assert_allclose(np.sum(s**2), N - float((sizes.astype(float) ** 2) @ mults) / N, rtol=1e-12)


BAD = [
    ([], "at least one"),
    ([(5, 1), (7, 2)], "strictly decreasing"),
    ([(5, 1), (5, 2)], "strictly decreasing"),
    ([(0, 1)], "N_i must be a positive integer"),
    ([(5, -1)], "l_i must be a positive integer"),
    ([(5, 0)], "l_i must be a positive integer"),
    ("abc", "groups"),
]


@pytest.mark.parametrize("func", [imb.group_matrix, imb.group_singular_values, imb.ybar_singular_values,
                                  imb.secular_iterations])
@pytest.mark.parametrize("groups, match", BAD)
def test_bad_groups_raise_value_error_naming_the_argument(func, groups, match):
    with pytest.raises(ValueError, match="groups") as info:
        func(groups)
    assert match in str(info.value)


@pytest.mark.parametrize("groups", [[(3, 10**30), (2, 1)], [(3, 2**53 + 1), (2, 1)], [(3, 2**63 + 5)],
                                    [(3, imb.MAX_CLASSES), (2, 1)]])
@pytest.mark.parametrize("func", [imb.class_counts, imb.ybar_singular_values])
def test_more_classes_than_max_classes_are_refused_naming_groups(func, groups):
    assert imb.MAX_CLASSES == 2**53 - 1
    with pytest.raises(ValueError, match="^groups"):
        func(groups)


@pytest.mark.parametrize("func", [imb.group_singular_values, imb.ybar_singular_values])
def test_groups_given_as_a_one_pass_iterator_are_read_once(func):
    groups = imb.PROFILES["emnist-letters"]
    np.testing.assert_array_equal(func(iter(groups)), func(groups))
    np.testing.assert_array_equal(func(tuple(g) for g in groups), func(groups))


def test_group_singular_values_takes_any_number_of_classes():
    # the m values of G need no length-K array: the two-group closed form, for l_1 far beyond MAX_CLASSES
    for l1 in (2**53 + 1, 10**30):
        N1, N2, l2 = 3, 2, 1
        N = N1 * l1 + N2 * l2
        np.testing.assert_allclose(imb.group_singular_values([(N1, l1), (N2, l2)]),
                                   [np.sqrt(N1 * N2 * (l1 + l2) / N), 0.0], rtol=1e-14)


def _sqrt(q: Fraction) -> mpmath.mpf:
    """The square root of an exact fraction to 40 digits (mpmath's exponents have no float64 bound)."""
    with mpmath.workdps(40):
        return mpmath.sqrt(mpmath.mpf(q.numerator) / q.denominator)


# N = sum N_i l_i beyond float64 (about 1.8e308), an l_i beyond it, and a total below it whose products in G overflow
HUGE_TOTALS = [[(3, 1), (2, 10**308)], [(3, 1), (2, 10**400)], [(2**52, 1), (2**51, 4 * 10**292)]]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("groups", HUGE_TOTALS, ids=["1e308", "1e400", "2**51"])
def test_a_total_beyond_float64_gives_the_exact_two_group_spectrum(groups):
    (N1, l1), (N2, l2) = groups
    mu = Fraction(N1 * N2 * (l1 + l2), N1 * l1 + N2 * l2)  # the closed form for m = 2, in exact integers
    np.testing.assert_allclose(imb.group_singular_values(groups), [float(_sqrt(mu)), 0.0], rtol=1e-14)
    assert imb.secular_iterations(groups).shape == (1,)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("big", [10**308, 10**400], ids=["1e308", "1e400"])
def test_a_total_beyond_float64_gives_the_roots_of_the_exact_characteristic_polynomial(big):
    """m = 3: the nonzero eigenvalues of G G^T are the roots of sum_i l_i N_i prod_{j != i} (mu - N_j), a quadratic
    with integer coefficients, solved here to 60 digits."""
    groups = [(3, big), (2, 1), (1, big)]
    (N1, l1), (N2, l2), (N3, l3) = groups
    w1, w2, w3 = l1 * N1, l2 * N2, l3 * N3
    a, b = w1 + w2 + w3, -(w1 * (N2 + N3) + w2 * (N1 + N3) + w3 * (N1 + N2))
    c = w1 * N2 * N3 + w2 * N1 * N3 + w3 * N1 * N2
    with mpmath.workdps(60):
        disc = mpmath.sqrt(mpmath.mpf(b * b - 4 * a * c))
        roots = [(-b + disc) / (2 * a), (-b - disc) / (2 * a)]
        want = [float(mpmath.sqrt(r)) for r in roots]
    np.testing.assert_allclose(imb.group_singular_values(groups), want + [0.0], rtol=1e-14)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("groups", HUGE_TOTALS, ids=["1e308", "1e400", "2**51"])
def test_a_total_beyond_float64_gives_the_exact_group_matrix(groups):
    N = sum(N_i * l_i for N_i, l_i in groups)
    c = [Fraction(l_i * N_i, N) for N_i, l_i in groups]  # the weights l_i N_i / N, exact
    G = imb.group_matrix(groups)
    assert np.all(np.isfinite(G))
    # G_ij = -sqrt(N_i) sqrt(c_i c_j), to rounding
    for i, j in ((0, 1), (1, 0)):
        want = -float(_sqrt(Fraction(groups[i][0])) * _sqrt(c[i] * c[j]))
        assert G[i, j] == pytest.approx(want, rel=1e-14, abs=0)
    # G_ii = sqrt(N_i) (1 - c_i), formed as sqrt(N_i) minus a number near it: to a few eps sqrt(N_i) (measured at
    # most 0.58 of one)
    eps = np.finfo(np.float64).eps
    for i, (N_i, _) in enumerate(groups):
        want = float(_sqrt(Fraction(N_i)) * (1 - c[i]))
        assert G[i, i] == pytest.approx(want, rel=0, abs=4 * eps * math.sqrt(N_i))
