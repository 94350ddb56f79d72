"""Unit tests of the theorems' own quantities in nclib.statements, evaluated at a point or a spectrum: the
soft-threshold relations of Theorems 4.1 and 4.2, and c, x_k^*, sigma_k^2 and the value through Lemma A.2 of Theorem 4.3, with the
corrected a and the printed one (erratum T1; chapters ch-thm41, ch-thm42, ch-thm43, ch-errata-theory)."""
import numpy as np
import pytest

import nclib.lemmas as lemmas
import nclib.statements as statements
import nclib.ufm as ufm
from nclib.imbalance import ybar


# ------------------------------------------------------------------ the relations of Theorems 4.1 and 4.2

@pytest.mark.parametrize("n, lam, bias", [([5, 3, 2], 0.03, True), ([6, 6, 6, 2, 1], 0.02, True),
                                          ([5, 3, 2], 0.03, False), ([4, 4, 1], 0.05, False)])
def test_soft_threshold_relations_hold_at_the_global_minimizer(n, lam, bias):
    g = ufm.global_minimizer(n, lam, 2 * lam, L=1, bias=bias, d=len(n) + 1)
    assert statements.soft_threshold_relations_error(g.Ws[0], g.H, n, lam, 2 * lam, bias) < 1e-13
    assert statements.soft_threshold_relations_error(g.Ws[0], g.H, n, [lam], 2 * lam, bias) < 1e-13  # L = 1 decays as a list


@pytest.mark.parametrize("bias", [True, False])
def test_soft_threshold_relations_error_is_the_largest_entry_error(bias):
    n, lam_W, lam_H = np.array([7, 4, 2]), 0.01, 0.04
    N = n.sum()
    # the soft threshold T, from the spectrum of M computed here: singular values of Y-bar, or sqrt(n) without a bias
    kappa = np.linalg.svd(ybar(n), compute_uv=False) if bias else np.sort(np.sqrt(n))[::-1]
    top = max(kappa[0] - N * np.sqrt(lam_W * lam_H), 0.0)
    assert top > 0.5
    ratio = np.sqrt(lam_H / lam_W)  # 2: the relation on W W^T carries the larger weight
    # at W = 0, H = 0 every left-hand side is 0: the error is the largest right-hand side
    zero = statements.soft_threshold_relations_error(np.zeros((3, 4)), np.zeros((4, N)), n, lam_W, lam_H, bias)
    assert zero == pytest.approx(ratio * top, rel=1e-13, abs=0)
    # W twice and H half the global minimizer's: W E holds, W W^T is four times its value, E^T E a quarter
    g = ufm.global_minimizer(n, lam_W, lam_H, L=1, bias=bias)
    off = statements.soft_threshold_relations_error(2 * g.Ws[0], g.H / 2, n, lam_W, lam_H, bias)
    assert off == pytest.approx(3 * ratio * top, rel=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lam_W, lam_H", [(0.01, 0.04), (0.04, 0.01)])
def test_soft_threshold_relations_error_sees_each_relation(bias, lam_W, lam_H):
    # points where the relation on W E, or the one on E^T E, is the largest error: at (cW, H) the three errors are
    # |c - 1| top, |c^2 - 1| r top and 0, at (W, cH) they are |c - 1| top, 0 and |c^2 - 1| top / r
    # (r = sqrt(lam_H/lam_W))
    n = np.array([7, 4, 2])
    N = n.sum()
    kappa = np.linalg.svd(ybar(n), compute_uv=False) if bias else np.sort(np.sqrt(n))[::-1]
    top = max(kappa[0] - N * np.sqrt(lam_W * lam_H), 0.0)
    assert top > 0.5
    r = np.sqrt(lam_H / lam_W)
    g = ufm.global_minimizer(n, lam_W, lam_H, L=1, bias=bias)
    W, H = g.Ws[0], g.H

    def error(W, H):
        return statements.soft_threshold_relations_error(W, H, n, lam_W, lam_H, bias)

    # -W: anti-parallel to the minimizer's, W W^T and E^T E unchanged; U^T W E V = -T, an error of 2 top
    assert error(-W, H) == pytest.approx(2 * top, rel=1e-12)
    # W/2: top/2 on W E, 3 r top/4 on W W^T; at r = 1/2 the relation on W E decides
    assert error(W / 2, H) == pytest.approx(max(0.5, 0.75 * r) * top, rel=1e-12)
    # 2H: top on W E, 3 top/r on E^T E, which decides at both ratios (6 top at r = 1/2)
    assert error(W, 2 * H) == pytest.approx(max(1.0, 3 / r) * top, rel=1e-12)


@pytest.mark.parametrize("args, name", [
    (dict(W=np.zeros((4, 3))), "W"),
    (dict(H=np.zeros((3, 9))), "H"),
    (dict(H=np.zeros((2, 10))), "H"),
    (dict(lam_W=0.0), "lam_W"),
    (dict(lam_W=[0.01, 0.01]), "lam_W"),
    (dict(lam_H=-1.0), "lam_H"),
    (dict(bias=1), "bias"),
    (dict(n=[5, 0, 5]), "n"),
])
def test_soft_threshold_relations_error_refuses_bad_input_by_name(args, name):
    call = dict(W=np.zeros((3, 3)), H=np.zeros((3, 10)), n=[5, 3, 2], lam_W=0.01, lam_H=0.01, bias=True)
    call.update(args)
    with pytest.raises(ValueError, match=f"^{name}"):
        statements.soft_threshold_relations_error(**call)


# ------------------------------------------------------------------ Theorem 4.3: c, x_k^*, sigma_k^2, the value

def test_theorem43_c_is_the_printed_ratio_of_decays():
    assert statements.theorem43_c([0.004, 0.012, 0.008], 3) == pytest.approx(
        0.004 ** 2 / (0.012 * 0.008), rel=1e-15, abs=0)
    assert statements.theorem43_c(0.3, 4) == pytest.approx(1.0, rel=1e-15, abs=0)  # equal decays
    assert statements.theorem43_c([0.2], 1) == 1.0
    # decays near the bottom of the float range: lam_W1^(L-1) and the product of the others underflow alone
    assert statements.theorem43_c(1e-300, 3) == 1.0
    assert statements.theorem43_c([1e-300, 2e-300, 4e-300], 3) == pytest.approx(1 / 8, rel=1e-15, abs=0)
    for lam_W, L, name in [([0.1, 0.2], 3, "lam_W"), ([0.1, -0.2], 2, r"lam_W\[1\]"), (0.1, 0, "L")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            statements.theorem43_c(lam_W, L)


@pytest.mark.parametrize("n, lam_W, lam_H, L", [
    ([9, 9, 6, 3, 2, 1], [0.004, 0.012, 0.008], 0.006, 3),
    ([6, 6, 2, 2, 1], [0.02, 0.005], 0.01, 2),
    ([5, 3, 2], 0.01, 0.02, 1),
    ([9, 9, 9, 3, 3, 3], [0.01, 0.02, 0.01, 0.005, 0.03, 0.02], 0.01, 6),
])
def test_theorem43_sigma_squared_is_the_first_layer_at_the_global_minimizer(n, lam_W, lam_H, L):
    _, kappa, _ = ufm.problem_svd(n)
    N = sum(n)
    sig2 = statements.theorem43_sigma_squared(kappa, N, lam_W, lam_H, L)
    g = ufm.global_minimizer(n, lam_W, lam_H, L=L)
    first = np.linalg.svd(g.Ws[0], compute_uv=False) ** 2  # the squared singular values of W_1
    np.testing.assert_allclose(np.sort(first), np.sort(sig2), rtol=0, atol=1e-12 * first.max())
    st = ufm.structure(n, lam_W, lam_H, L=L)
    c = statements.theorem43_c(lam_W, L)
    np.testing.assert_allclose(c * sig2 ** L, st.s_product ** 2, rtol=1e-10, atol=1e-14)  # U^T P P^T U = c Upsilon_1
    assert 0 < np.count_nonzero(sig2) < len(n) and sig2[-1] == 0.0  # kappa_K = 0: that mode always collapses
    x = statements.theorem43_x_star(kappa, N, lam_W, lam_H, L)
    np.testing.assert_allclose(sig2, (N * lam_H / c) ** (1 / L) * x, rtol=1e-15)
    # the value through Lemma A.2 is the closed-form minimum
    assert statements.theorem43_value(kappa, N, lam_W, lam_H, L) == pytest.approx(ufm.minimum_value(n, lam_W, lam_H, L=L),
                                                                          rel=1e-12, abs=0)


@pytest.mark.parametrize("L, k, lam_W, lam_H", [(2, 1e100, [1e-5, 1e5], 1e300), (1, 111803.4, [1e-300], 1e308)])
def test_theorem43_sigma_squared_where_n_lam_h_over_c_leaves_the_floats(L, k, lam_W, lam_H):
    """N lam_H / c beyond the float range (1e311 for L = 2, where c = 1e-10; N lam_H = 1e309 for L = 1) with
    sigma_k^2 itself a float: against (N lam_H / c)^(1/L) x_k^* in 50 digits and the first layer's balanced factor
    t / lam_W1 (ufm.balanced_factors), where it once read inf; a collapsed mode is 0, where inf * 0 once read NaN."""
    import mpmath

    kappa, N = [k, 0.0], 10
    sig2 = statements.theorem43_sigma_squared(kappa, N, lam_W, lam_H, L)
    x = statements.theorem43_x_star(kappa, N, lam_W, lam_H, L)
    with mpmath.workdps(50):
        lam = [mpmath.mpf(v) for v in lam_W]
        c = lam[0] ** (L - 1) / mpmath.fprod(lam[1:])
        want = float((N * mpmath.mpf(lam_H) / c) ** (mpmath.mpf(1) / L) * mpmath.mpf(x[0]))
    np.testing.assert_allclose(sig2, [want, 0.0], rtol=1e-12, atol=0)
    s = ufm.mode_strengths(kappa, N, lam_W, lam_H, L)
    t = ufm.balanced_factors(s, np.array(lam_W, dtype=float), lam_H)[0]
    np.testing.assert_allclose(sig2, t / lam_W[0], rtol=1e-12, atol=0)
    with np.errstate(all="raise"):  # a mode that collapses at decays of 1e308: 0, not inf * 0
        assert statements.theorem43_sigma_squared([1.0], 6, 0.1, 1e308, 2).tolist() == [0.0]


@pytest.mark.parametrize("L", [1, 2, 3])
def test_theorem43_value_of_a_mode_whose_a_overflows_is_its_collapsed_value(L):
    """kappa = 1e-100 at decays of 1e100: a_k overflows to inf and x_k^* = 0, and a_k x_k^* once read inf * 0 = NaN;
    g(0) = 1, so the mode adds kappa^2 / (2N), as in ufm.value_from_spectrum."""
    kappa, N = [1e-100, 1.0], 10
    assert np.isinf(ufm.lemma_a2_a(kappa, N, 1e100, 1e100, L)[0])
    value = statements.theorem43_value(kappa, N, 1e100, 1e100, L)
    np.testing.assert_allclose(value, (1e-200 + 1.0) / (2 * N), rtol=1e-15, atol=0)
    assert value == ufm.value_from_spectrum(kappa, N, 1e100, 1e100, L)


def test_theorem43_c_refuses_a_depth_beyond_max_depth_by_name():
    with pytest.raises(ValueError, match="^L must be at most"):  # once a MemoryError (7.3 TiB)
        statements.theorem43_c(0.1, 10 ** 12)


def test_theorem43_x_star_at_one_layer_is_the_soft_threshold():
    n, lam_W, lam_H = [5, 3, 2], 0.01, 0.02
    _, kappa, _ = ufm.problem_svd(n)
    N = sum(n)
    x = statements.theorem43_x_star(kappa, N, lam_W, lam_H, 1)
    a = ufm.lemma_a2_a(kappa, N, lam_W, lam_H, 1)
    np.testing.assert_allclose(x, np.maximum(a ** -0.5 - 1, 0.0), rtol=1e-15)
    # Theorem 4.2's relation U^T W W^T U = sqrt(lam_H / lam_W) (kappa - N sqrt(lam_W lam_H))_+ is sigma_k^2 at L = 1
    np.testing.assert_allclose(statements.theorem43_sigma_squared(kappa, N, lam_W, lam_H, 1),
                               np.sqrt(lam_H / lam_W) * np.maximum(kappa - N * np.sqrt(lam_W * lam_H), 0.0),
                               rtol=1e-13, atol=1e-15)
    # decays 0.17: N sqrt(lam_W lam_H) = 1.7 lies between kappa_2 = 1.52 and kappa_1 = 1.97, so x_2^* = 0 (and x_3^* = 0
    # for kappa_3 = 0), not the negative a^(-1/2) - 1
    x = statements.theorem43_x_star(kappa, N, 0.17, 0.17, 1)
    a = ufm.lemma_a2_a(kappa, N, 0.17, 0.17, 1)
    assert kappa[1] < N * 0.17 < kappa[0]
    np.testing.assert_allclose(x, [a[0] ** -0.5 - 1, 0.0, 0.0], rtol=1e-15, atol=0)


def test_theorem43_with_the_printed_a_predicts_a_value_below_the_minimum():
    n, lam_W, lam_H, L = [9, 9, 6, 3, 2, 1], [0.004, 0.012, 0.008], 0.006, 3
    _, kappa, _ = ufm.problem_svd(n)
    N = sum(n)
    a = ufm.lemma_a2_a(kappa, N, lam_W, lam_H, L)
    x_printed = statements.theorem43_x_star(kappa, N, lam_W, lam_H, L, printed_a=True)
    want = [lemmas.lemma_a2_minimizer(ai / N, L) if np.isfinite(ai) else 0.0 for ai in a]
    np.testing.assert_array_equal(x_printed, want)
    assert np.all(x_printed >= statements.theorem43_x_star(kappa, N, lam_W, lam_H, L))  # a smaller a: larger x
    printed = statements.theorem43_value(kappa, N, lam_W, lam_H, L, printed_a=True)
    g = [k ** 2 / (2 * N) * (1 / (x ** L + 1) + ai / N * x) for k, ai, x in zip(kappa, a, x_printed) if k > 0]
    assert printed == pytest.approx(sum(g), rel=1e-14, abs=0)
    assert printed < 0.99 * ufm.minimum_value(n, lam_W, lam_H, L=L)


def test_theorem43_sigma_squared_with_the_printed_a():
    """sigma_k^2 = (N lam_H / c)^(1/L) x_k^* with x_k^* the minimizer of Lemma A.2 at the printed a_k / N: at decays
    where modes 3 and 4 collapse under the corrected a (above the critical 1/2 for L = 2) and survive the printed one,
    N = 17 times smaller."""
    n, lam_W, lam_H, L = [6, 6, 2, 2, 1], [0.08, 0.02], 0.04, 2
    _, kappa, _ = ufm.problem_svd(n)
    N = sum(n)
    a = ufm.lemma_a2_a(kappa, N, lam_W, lam_H, L)
    scale = (N * lam_H / statements.theorem43_c(lam_W, L)) ** (1 / L)
    printed = statements.theorem43_sigma_squared(kappa, N, lam_W, lam_H, L, printed_a=True)
    want = [scale * lemmas.lemma_a2_minimizer(ai / N, L) if np.isfinite(ai) else 0.0 for ai in a]
    np.testing.assert_allclose(printed, want, rtol=1e-15, atol=0)
    corrected = statements.theorem43_sigma_squared(kappa, N, lam_W, lam_H, L)
    np.testing.assert_allclose(corrected, [scale * lemmas.lemma_a2_minimizer(ai, L) if np.isfinite(ai) else 0.0
                                           for ai in a], rtol=1e-15, atol=0)
    assert np.count_nonzero(corrected) == 2 and np.count_nonzero(printed) == 4  # kappa_5 = 0 collapses under both
    assert np.all(printed[:2] > 2 * corrected[:2])  # the surviving modes too: a smaller a, a larger x_k^*


def test_theorem43_with_the_printed_a_equals_the_minimum_when_every_mode_collapses_under_it():
    """Decays so large that no mode survives even the printed (smaller) a: both values are the loss at zero,
    sum kappa_k^2 / (2N), so "at most the minimum" is an equality there, not "below"."""
    n, L = [5, 3, 1], 2
    _, kappa, _ = ufm.problem_svd(n)
    N = sum(n)
    assert not statements.theorem43_x_star(kappa, N, 1.0, 1.0, L, printed_a=True).any()
    printed = statements.theorem43_value(kappa, N, 1.0, 1.0, L, printed_a=True)
    assert printed == pytest.approx(ufm.minimum_value(n, 1.0, 1.0, L=L), rel=1e-14, abs=0)
    assert printed == pytest.approx(np.sum(kappa ** 2) / (2 * N), rel=1e-14, abs=0)


@pytest.mark.parametrize("L", [1, 2, 3])
@pytest.mark.parametrize("printed_a", [False, True])
def test_theorem43_where_a_underflows_or_l_over_a_overflows(L, printed_a):
    """a_k = 0 by underflow (decays 1e-300) or a subnormal (kappa_k = 1e150, where for L >= 2 L / a_k overflows): x_k^*
    and the value against 50 digits, where the float a_k made theorem43_x_star refuse an ``a`` its caller never passed
    (or lose digits, for L = 1)."""
    import mpmath

    N = 10
    for kappa, lam in [(1.0, 1e-300), (1e150, 1e-10)]:
        a_float = ufm.lemma_a2_a([kappa], N, lam, lam, L)[0] / (N if printed_a else 1)
        assert a_float < np.finfo(np.float64).tiny  # 0 by underflow, or a subnormal
        with mpmath.workdps(50):
            a = (L * N / mpmath.mpf(kappa) ** 2 * (N * mpmath.mpf(lam) ** (L + 1)) ** (mpmath.mpf(1) / L)
                 / (N if printed_a else 1))
            if L == 1:
                x_ref = 1 / mpmath.sqrt(a) - 1
            else:  # the largest root of a = L x^(L-1) / (x^L + 1)^2, in logs
                f = lambda u: (mpmath.log(L) + (L - 1) * u - 2 * mpmath.log(1 + mpmath.exp(L * u))  # noqa: E731
                               - mpmath.log(a))
                x_ref = mpmath.exp(mpmath.findroot(f, mpmath.log(L / a) / (L + 1)))
            value_ref = mpmath.mpf(kappa) ** 2 / (2 * N) * (1 / (x_ref ** L + 1) + a * x_ref)
        x = statements.theorem43_x_star([kappa, 0.0], N, lam, lam, L, printed_a)
        np.testing.assert_allclose(x, [float(x_ref), 0.0], rtol=1e-12)
        # abs=0: for kappa = 1 the value is near 1e-300, and approx's implicit abs of 1e-12 would accept even 0
        assert statements.theorem43_value([kappa, 0.0], N, lam, lam, L, printed_a) == pytest.approx(
            float(value_ref), rel=1e-12, abs=0)


@pytest.mark.parametrize("args, name", [
    (dict(kappa=[-1.0, 2.0]), "kappa"),
    (dict(N=0), "N"),
    (dict(lam_W=[0.01, 0.01]), "lam_W"),
    (dict(lam_H=0.0), "lam_H"),
    (dict(L=0), "L"),
    (dict(printed_a=1), "printed_a"),
    (dict(N=10 ** 400), "N"),  # beyond float64: once an OverflowError
    (dict(lam_H=10 ** 400), "lam_H"),
    (dict(L=10 ** 7, lam_W=0.01), "L"),  # beyond MAX_DEPTH
])
def test_theorem43_functions_refuse_bad_input_by_name(args, name):
    call = dict(kappa=[3.0, 1.0, 0.0], N=10, lam_W=[0.01, 0.02, 0.01], lam_H=0.01, L=3)
    call.update(args)
    for func in (statements.theorem43_x_star, statements.theorem43_sigma_squared, statements.theorem43_value):
        with pytest.raises(ValueError, match=f"^{name}"):
            func(**call)
