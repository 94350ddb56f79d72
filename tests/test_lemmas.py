"""Unit tests of nclib.lemmas: Appendix A's lemmas, Lemma A.1 (the variational form of the nuclear norm) and
Lemma A.2 (the scalar function g(x) = 1/(x^L + 1) + a x) (chapters ch-lemma-a1, ch-lemma-a2)."""
import numpy as np
import pytest

import nclib.lemmas as lemmas


@pytest.mark.parametrize("shape, spectrum", [
    ((4, 6), None),  # K < N, full rank
    ((6, 3), None),  # K > N
    ((4, 5), [3.0, 1.0]),  # rank 2
    ((4, 4), [2.0, 2.0, 1.0, 0.5]),  # a repeated singular value
    ((3, 2), []),  # Z = 0
])
def test_lemma_a1_nuclear_norm(shape, spectrum):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal(shape) if spectrum is None else lemmas.lemma_a1_instance(*shape, spectrum, rng)
    nuc = np.linalg.norm(Z, "nuc")
    m = min(shape)
    for alpha in [0.1, 1.0, 7.0]:
        W, H = lemmas.nuclear_factorization(Z, alpha)
        assert W.shape == (shape[0], m) and H.shape == (m, shape[1])
        np.testing.assert_allclose(W @ H, Z, rtol=0, atol=1e-12)
        assert lemmas.nuclear_variational_value(W, H, alpha) == pytest.approx(nuc, rel=1e-13, abs=1e-300)
        np.testing.assert_allclose(W.T @ W / alpha, alpha * H @ H.T, rtol=0, atol=1e-12)  # balanced
        for d in (m, m + 2):  # W R^T, R H with R^T R = I (d x m): minimizers as well, of inner dimension d
            R = np.linalg.qr(rng.standard_normal((d, d)))[0][:, :m]
            np.testing.assert_allclose(W @ R.T @ R @ H, Z, rtol=0, atol=1e-12)
            assert lemmas.nuclear_variational_value(W @ R.T, R @ H, alpha) == pytest.approx(nuc, rel=1e-13,
                                                                                          abs=1e-300)
        for _ in range(50):  # random factorizations Z = (W A)(A^-1 H) never go below
            A = rng.standard_normal((m, m))
            assert lemmas.nuclear_variational_value(W @ A, np.linalg.solve(A, H), alpha) >= nuc * (1 - 1e-12)


def test_lemma_a1_instance_has_the_singular_values_asked_for():
    rng = np.random.default_rng(5)
    for (K, N), s in (((4, 5), [3.0, 1.0]), ((5, 3), [2.0, 2.0, 0.5]), ((3, 4), [1.0, 1.0, 1.0]), ((2, 3), [])):
        Z = lemmas.lemma_a1_instance(K, N, s, rng)
        assert Z.shape == (K, N)
        want = np.zeros(min(K, N))
        want[:len(s)] = s
        np.testing.assert_allclose(np.linalg.svd(Z, compute_uv=False), want, rtol=0, atol=1e-14)
        assert np.linalg.norm(Z, "nuc") == pytest.approx(sum(s), rel=1e-14, abs=1e-300)
    # two draws of one spectrum are different matrices: the bases are random
    a, b = (lemmas.lemma_a1_instance(3, 3, [2.0, 1.0], rng) for _ in range(2))
    assert np.abs(a - b).max() > 0.1
    # the left and right bases are drawn apart: a square instance is not symmetric, as Q1 on both sides would make it
    for Z in (a, b, lemmas.lemma_a1_instance(4, 4, [3.0, 2.0, 1.0, 0.5], rng)):
        assert np.abs(Z - Z.T).max() > 0.1
    for args, name in (((0, 3, [1.0]), "K"), ((3, 2.5, [1.0]), "N"), ((2, 3, [1.0, 1.0, 1.0]), "singular_values"),
                       ((2, 3, [-1.0]), "singular_values"), ((2, 3, [np.inf]), "singular_values"),
                       ((2, 3, [[]]), "singular_values must be a flat"), ((2, 3, np.zeros((0, 2))), "singular_values"),
                       ((2, 3, [[1.0]]), "singular_values must be a flat"),
                       ((2, 3, [[1.0], [1.0, 2.0]]), "singular_values")):
        with pytest.raises(ValueError, match=f"^{name}"):
            lemmas.lemma_a1_instance(*args, rng)
    with pytest.raises(ValueError, match="^rng"):
        lemmas.lemma_a1_instance(2, 3, [1.0], 0)


@pytest.mark.parametrize("alpha", [1e-300, np.finfo(np.float64).tiny, 1e300, 1e308])
def test_lemma_a1_value_at_extreme_alpha_does_not_overflow(alpha):
    """||W||^2 / alpha and alpha ||H||^2 can leave the float range on their own where the value does not: at the
    factorization of I_2 the value is 2 for every alpha."""
    W, H = lemmas.nuclear_factorization(np.eye(2), alpha)
    np.testing.assert_allclose(W @ H, np.eye(2), rtol=0, atol=1e-15)
    assert lemmas.nuclear_variational_value(W, H, alpha) == pytest.approx(2.0, rel=1e-15, abs=0)


@pytest.mark.parametrize("L", [2, 3, 4, 5, 6])
def test_lemma_a2(L):
    a_c = lemmas.lemma_a2_critical_a(L)
    x_t = (L - 1) ** (1 / L)
    g = lambda x, a: 1 / (x ** L + 1) + a * x  # noqa: E731
    assert g(x_t, a_c) == pytest.approx(1.0, rel=1e-14, abs=0)  # tie with g(0) = 1
    assert lemmas.lemma_a2_largest_root(a_c, L) == pytest.approx(x_t, rel=1e-12)
    grid = np.linspace(0, 4, 400001)
    for a in [0.5 * a_c, 0.9 * a_c, 0.99 * a_c, 1.01 * a_c, 2 * a_c]:
        x = lemmas.lemma_a2_minimizer(a, L)
        assert g(x, a) <= np.min(g(grid, a)) + 1e-12
        assert (x > 0) == (a < a_c)


@pytest.mark.parametrize("L", [2, 3, 7, 50])
def test_lemma_a2_is_accurate_down_to_the_smallest_a_it_takes(L):
    # the largest root of a = L x^(L-1) / (x^L + 1)^2, against 50 digits, for a from the smallest accepted up
    import mpmath

    for a in (1.0001 * L / np.finfo(np.float64).max, 1e-300, 1e-100):
        with mpmath.workdps(50):
            f = lambda u: mpmath.log(L) + (L - 1) * u - 2 * mpmath.log(1 + mpmath.exp(L * u)) - mpmath.log(a)  # noqa: E731
            x_ref = float(mpmath.exp(mpmath.findroot(f, mpmath.log(L / mpmath.mpf(a)) / (L + 1))))
        assert lemmas.lemma_a2_minimizer(a, L) == pytest.approx(x_ref, rel=1e-13)


@pytest.mark.parametrize("L", range(2, 13))
def test_lemma_a2_tie_goes_to_zero(L):
    """At the critical a both 0 and the nonzero point minimize g; the docstring's tie-break (towards 0) holds for
    every L, not only where rounding happens to favour it."""
    assert lemmas.lemma_a2_minimizer(lemmas.lemma_a2_critical_a(L), L) == 0.0
    assert lemmas.lemma_a2_minimizer(lemmas.lemma_a2_critical_a(L) * (1 - 1e-9), L) > 0


@pytest.mark.parametrize("L", [2, 3, 5, 9])
def test_lemma_a2_largest_root_near_the_top_of_the_right_hand_side(L):
    """a = L x^(L-1) / (x^L + 1)^2 has a largest root for every a below its maximum, attained at
    x^L = (L-1)/(L+1), and none above it (then None, not an error)."""
    x_peak = ((L - 1) / (L + 1)) ** (1 / L)
    top = L * x_peak ** (L - 1) / (x_peak ** L + 1) ** 2
    for a in (0.999 * top, 0.9 * top):
        x = lemmas.lemma_a2_largest_root(a, L)
        assert x is not None and x > x_peak
        assert L * x ** (L - 1) / (x ** L + 1) ** 2 == pytest.approx(a, rel=1e-13, abs=0)
    for a in (top * (1 + 1e-6), 1.1 * top):
        assert lemmas.lemma_a2_largest_root(a, L) is None


def test_lemma_a2_refuses_a_depth_beyond_float64():
    for call in (lambda: lemmas.lemma_a2_minimizer(0.5, 10 ** 400), lambda: lemmas.lemma_a2_critical_a(10 ** 400),
                 lambda: lemmas.lemma_a2_largest_root(0.5, 10 ** 400)):
        with pytest.raises(ValueError, match="^L must be at most"):  # the bound, not another refusal of L
            call()
    # one inside the range still works
    assert lemmas.lemma_a2_critical_a(10 ** 300) == pytest.approx(1.0, rel=1e-15, abs=0)


@pytest.mark.parametrize("call, name", [
    (lambda: lemmas.lemma_a2_minimizer(0.3, 1), "L"),
    (lambda: lemmas.lemma_a2_minimizer(-0.3, 2), "a"),
    (lambda: lemmas.lemma_a2_minimizer(5e-324, 3), "a"),  # L / a overflows float64
    (lambda: lemmas.lemma_a2_largest_root(2.2250738585072014e-308, 7), "a"),
    (lambda: lemmas.nuclear_factorization(np.ones((2, 2)), 0.0), "alpha"),
    (lambda: lemmas.nuclear_factorization(np.ones((2, 2)), 1e-320), "alpha"),  # subnormal: digits lost
    (lambda: lemmas.nuclear_factorization(np.ones(3), 1.0), "Z"),
    (lambda: lemmas.nuclear_factorization(np.eye(2), 10 ** 400), "alpha"),  # beyond float64: once an OverflowError
    (lambda: lemmas.nuclear_variational_value(np.eye(2), np.eye(2), 10 ** 400), "alpha"),
    (lambda: lemmas.nuclear_variational_value(np.ones((2, 3)), np.ones((2, 3)), 1.0), "H"),  # inner dimensions differ
    (lambda: lemmas.nuclear_variational_value(np.ones((2, 3)), np.ones((3, 3)), 0.0), "alpha"),
    (lambda: lemmas.nuclear_variational_value(np.ones((2, 3)), np.ones((3, 3)), -1.0), "alpha"),
    (lambda: lemmas.nuclear_variational_value(np.ones((2, 3)), np.ones((3, 3)), 1e-310), "alpha"),
    (lambda: lemmas.nuclear_variational_value(np.full((2, 3), np.inf), np.ones((3, 3)), 1.0), "W"),
    (lambda: lemmas.lemma_a2_critical_a(1), "L"),
    (lambda: lemmas.lemma_a2_critical_a(2.5), "L"),
    (lambda: lemmas.lemma_a2_largest_root(0.3, 1), "L"),
])
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()
