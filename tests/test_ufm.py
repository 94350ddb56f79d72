"""Unit tests of nclib.ufm: the objective of Definition 3.1 and the closed forms of Theorems 4.1-4.3, built on
Lemma A.2 (chapters ch-lemma-a2, ch-thm41, ch-thm42, ch-thm43); the lemmas themselves are tests/test_lemmas.py's."""
import dataclasses

import numpy as np
import pytest
from scipy import optimize

import nclib.lemmas as lemmas
import nclib.ufm as ufm
from nclib import imbalance as imb
from nclib import _checks, metrics, solvers, statements
from nclib.imbalance import label_matrix, ybar

CASES = [
    ([5, 3, 2], 0.01, 0.02, 1, True),
    ([5, 3, 2], 0.01, 0.02, 1, False),
    ([6, 6, 2, 2, 1], [0.02, 0.005], 0.01, 2, True),
    ([4, 7, 1, 3], [0.01, 0.03, 0.002], 0.02, 3, False),
    ([9, 9, 9, 3, 3, 3], [0.01, 0.02, 0.01, 0.005, 0.03, 0.02], 0.01, 6, True),
    ([12, 2, 2, 2], 0.05, 0.05, 1, True),  # strong decay: minority modes collapse
]


def test_objective_by_hand():
    n = [2, 1]
    W = np.array([[1.0, 0.0], [0.0, 2.0]])
    H = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 1.0]])
    b = np.array([0.1, -0.2])
    out = W @ H + b[:, None]
    Y = np.array([[1, 1, 0], [0, 0, 1.0]])
    want = np.sum((out - Y) ** 2) / 6 + 0.3 / 2 * np.sum(W ** 2) + 0.4 / 2 * np.sum(H ** 2)
    assert ufm.objective([W], H, b, n, 0.3, 0.4) == pytest.approx(want, rel=1e-15, abs=0)
    want_free = np.sum((W @ H - Y) ** 2) / 6 + 0.3 / 2 * np.sum(W ** 2) + 0.4 / 2 * np.sum(H ** 2)
    assert ufm.objective([W], H, None, n, 0.3, 0.4) == pytest.approx(want_free, rel=1e-15, abs=0)


@pytest.mark.parametrize("n, lam_W, lam_H, L, bias", CASES)
def test_global_minimizer_attains_minimum_value(n, lam_W, lam_H, L, bias):
    g = ufm.global_minimizer(n, lam_W, lam_H, L=L, bias=bias)
    v = ufm.minimum_value(n, lam_W, lam_H, L=L, bias=bias)
    assert g.value == pytest.approx(v, rel=1e-13, abs=0)
    assert ufm.objective(g.Ws, g.H, g.b, n, lam_W, lam_H) == pytest.approx(v, rel=1e-12, abs=0)
    assert len(g.Ws) == L and g.Ws[-1].shape[0] == len(n) and g.H.shape == (len(n), sum(n))
    if bias:
        np.testing.assert_allclose(g.b, np.asarray(n) / sum(n), rtol=1e-15)
        np.testing.assert_allclose(g.H.mean(axis=1), 0, atol=1e-13)  # zero global feature mean
    else:
        assert g.b is None


@pytest.mark.parametrize("n, lam_W, lam_H, L, bias", CASES)
def test_structure_holds_at_closed_form(n, lam_W, lam_H, L, bias):
    g = ufm.global_minimizer(n, lam_W, lam_H, L=L, bias=bias)
    st = ufm.structure(n, lam_W, lam_H, L=L, bias=bias)
    assert np.all(np.diff(st.kappa) <= 1e-12)
    np.testing.assert_allclose(st.U @ np.diag(st.kappa) @ st.V.T, st.M, atol=1e-12)
    np.testing.assert_allclose(st.M, ybar(n) if bias else np.diag(np.sqrt(n)), atol=0)
    nf = np.asarray(n, float)
    E = g.H @ label_matrix(n).T / nf * np.sqrt(nf)
    P = ufm.head_product(g.Ws)
    np.testing.assert_allclose(P @ P.T, st.U @ np.diag(st.s_product ** 2) @ st.U.T, atol=1e-12)
    np.testing.assert_allclose(E.T @ E, st.V @ np.diag(st.s_features ** 2) @ st.V.T, atol=1e-12)
    np.testing.assert_allclose(P @ E, st.U @ np.diag(st.s_product * st.s_features) @ st.V.T, atol=1e-12)
    if bias:  # Y-bar sqrt(n) = 0: the last mode always collapses
        assert st.kappa[-1] < 1e-12 and st.s_product[-1] == 0 and st.s_features[-1] == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.kappa = None  # frozen


def test_soft_threshold_for_L1():
    n = [12, 6, 3, 1]
    lam_W, lam_H = 0.05, 0.2
    N = sum(n)
    st = ufm.structure(n, lam_W, lam_H, L=1, bias=False)
    s = st.s_product * st.s_features
    np.testing.assert_allclose(s, np.maximum(np.sqrt(sorted(n, reverse=True)) - N * np.sqrt(lam_W * lam_H), 0), atol=1e-14)
    assert np.sum(s > 0) == 2  # n_k > N^2 lam_W lam_H = 4.84 for the two largest classes only


@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_each_mode_solves_its_scalar_problem(L):
    """Independent check: a dense grid plus bounded search on phi(s) never beats the closed form."""
    n = [10, 10, 6, 3, 2, 1]
    lam_W = list(np.linspace(0.004, 0.02, L))
    lam_H = 0.01
    st = ufm.structure(n, lam_W, lam_H, L=L, bias=True)
    N = sum(n)
    mu = (lam_H * np.prod(lam_W)) ** (1 / (L + 1))
    for kappa, sp, sf in zip(st.kappa, st.s_product, st.s_features):
        phi = lambda s: (s - kappa) ** 2 / (2 * N) + (L + 1) / 2 * mu * s ** (2 / (L + 1))  # noqa: E731
        grid = np.linspace(0, max(kappa, 1e-9), 20001)
        s_grid = grid[np.argmin(phi(grid))]
        local = optimize.minimize_scalar(phi, bounds=(max(0, s_grid - 1e-3), s_grid + 1e-3), method="bounded",
                                         options={"xatol": 1e-13})
        best = min(phi(0.0), local.fun)
        assert phi(sp * sf) <= best + 1e-14
        # and the Lemma A.2 route gives the same minimum: kappa^2/(2N) min_x g(x)
        if kappa > 1e-12 and L >= 2:
            a = ufm.lemma_a2_a(kappa, N, lam_W, lam_H, L)[0]
            x = lemmas.lemma_a2_minimizer(a, L)
            assert kappa ** 2 / (2 * N) * (1 / (x ** L + 1) + a * x) == pytest.approx(phi(sp * sf), rel=1e-12, abs=0)


@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_threshold_gap_is_the_theorems_quantity_not_only_its_sign(L):
    """Delta_k = L^2 N (N lam_H lam_W1 ... lam_WL)^(1/L) - kappa_k^2 (L-1)^((L-1)/L) of Theorem 4.3 (for L = 1 the soft
    threshold N^2 lam_W lam_H - kappa^2), written out here, with per-layer decays that differ: the survival tests
    read only its sign, which a rescaled gap would keep."""
    n = [9, 9, 6, 3, 2, 1]
    kappa, N = ufm.problem_svd(n)[1], sum(n)
    lam_W, lam_H = [0.004, 0.012, 0.008, 0.01, 0.02, 0.005][:L], 0.006
    typed = L ** 2 * N * (N * lam_H * np.prod(lam_W)) ** (1 / L) - kappa ** 2 * (L - 1) ** ((L - 1) / L)
    np.testing.assert_allclose(ufm.threshold_gap(kappa, N, lam_W, lam_H, L), typed, rtol=1e-12, atol=1e-12 * N)


@pytest.mark.parametrize("L", [2, 3])
def test_threshold_gap_where_a_overflows_is_the_theorems_finite_quantity(L):
    """A tiny kappa with large decays puts a = L N (N lam_H prod lam_W)^(1/L) / kappa^2 beyond the float range; the
    gap L^2 N (...)^(1/L) - kappa^2 (L-1)^((L-1)/L) is still a float (about 1.3e152 for L = 2): against 50 digits,
    where it once read inf.  Its sign still says the mode is dead."""
    import mpmath

    kappa, N, lam = [1e-100, 1.0], 10, 1e100
    assert np.isinf(ufm.lemma_a2_a(kappa, N, lam, lam, L)[0])
    with mpmath.workdps(50):
        first = L ** 2 * N * (N * mpmath.mpf(lam) ** (L + 1)) ** (mpmath.mpf(1) / L)
        want = [float(first - mpmath.mpf(k) ** 2 * mpmath.mpf(L - 1) ** (mpmath.mpf(L - 1) / L)) for k in kappa]
    gap = ufm.threshold_gap(kappa, N, lam, lam, L)
    np.testing.assert_allclose(gap, want, rtol=1e-12, atol=0)
    assert np.all(gap > 0) and not ufm.mode_strengths(kappa, N, lam, lam, L).any()


@pytest.mark.parametrize("L", [1, 2, 3, 4, 5, 9])
def test_strengths_and_threshold_gap_agree_at_the_thresholds(L):
    """A mode's strength is > 0 iff its threshold gap is < 0, also at decays placed on a threshold, where the two
    formulas could round to opposite sides."""
    n = [50, 50, 40, 40, 10, 10]
    kappa = ufm.problem_svd(n)[1]
    N = sum(n)
    depth = (L - 1) ** ((L - 1) / L) if L > 1 else 1.0
    for k in kappa[:-1]:
        lam = ((k ** 2 * depth / (L ** 2 * N)) ** L / N) ** (1 / (L + 1))  # mode k's collapse decay
        for f in (1 - 1e-12, 1.0, 1 + 1e-12, 1 - 1e-4, 1 + 1e-4):
            gap = ufm.threshold_gap(kappa, N, lam * f, lam * f, L)
            np.testing.assert_array_equal(ufm.mode_strengths(kappa, N, lam * f, lam * f, L) > 0, gap < 0)


def test_the_three_survival_tests_agree_at_rounding_level():
    """Near a tie, threshold_gap's sign, mode_strengths > 0 and lemma_a2_minimizer's x* > 0 decide alike: each
    compares the same floats (a against a_c for L >= 2), where two formulas for one quantity disagreed in 48 of
    3,000 cases placed on a threshold to 1e-15."""
    rng = np.random.default_rng(0)
    for _ in range(600):
        L, N, k = int(rng.integers(2, 10)), int(rng.integers(10, 20000)), float(rng.uniform(1, 100))
        depth = (L - 1) ** ((L - 1) / L)
        lam = ((k ** 2 * depth / (L ** 2 * N)) ** L / N) ** (1 / (L + 1)) * (1 + float(rng.normal()) * 1e-15)
        alive = ufm.mode_strengths([k], N, lam, lam, L)[0] > 0
        assert (ufm.threshold_gap([k], N, lam, lam, L)[0] < 0) == alive
        assert (lemmas.lemma_a2_minimizer(ufm.lemma_a2_a([k], N, lam, lam, L)[0], L) > 0) == alive


def test_the_zero_mode_of_ybar_stays_dead_at_tiny_decays():
    """With a bias kappa_K = 0 exactly (Y-bar sqrt(n) = 0): no decay, however small, revives it, and the features'
    global mean stays 0 (Theorem 4.2)."""
    n = [5, 3, 2]
    for lam, L in ((1e-18, 1), (1e-30, 3)):
        st = ufm.structure(n, lam, lam, L=L)
        assert st.kappa[-1] == 0.0 and st.s_product[-1] == 0.0 and st.s_features[-1] == 0.0
        g = ufm.global_minimizer(n, lam, lam, L=L)
        assert np.abs(g.H.mean(axis=1)).max() < 1e-12 * np.abs(g.H).max()


def test_structure_at_a_width_below_K():
    """structure(d=...) keeps the top d modes, as global_minimizer does; a width that splits surviving modes of
    equal kappa has no one geometry and is refused."""
    n, lam = [8, 6, 4, 3, 2], 0.002
    st = ufm.structure(n, lam, lam, L=2, bias=False, d=2)
    full = ufm.structure(n, lam, lam, L=2, bias=False)
    assert np.count_nonzero(st.s_product) == 2
    np.testing.assert_array_equal(st.s_product[:2], full.s_product[:2])
    g = ufm.global_minimizer(n, lam, lam, L=2, bias=False, d=2)
    P = ufm.head_product(g.Ws)
    np.testing.assert_allclose(st.U.T @ P @ P.T @ st.U, np.diag(st.s_product ** 2), atol=1e-12)
    with pytest.raises(ValueError, match="^d=2 splits"):
        ufm.structure([8, 5, 5, 5, 1], 0.01, 0.01, d=2)  # kappa = (2.64, 2.24, 2.24, 1.09, 0)
    assert np.count_nonzero(ufm.structure([8, 5, 5, 5, 1], 0.01, 0.01, d=3).s_product) == 3


def test_the_widest_hidden_width_gives_the_minimizer_padded_with_zeros():
    """d = MAX_WIDTH is taken (d = 10**12 is refused by name, test_bad_input): the minimizer of width K with
    zero rows below, and the same minimum."""
    n, lam = [3, 2], 0.1
    wide, narrow = ufm.global_minimizer(n, lam, lam, d=_checks.MAX_WIDTH), ufm.global_minimizer(n, lam, lam)
    assert wide.H.shape == (10 ** 4, 5) and wide.Ws[0].shape == (2, 10 ** 4)
    np.testing.assert_array_equal(wide.H[:2], narrow.H)
    np.testing.assert_array_equal(wide.Ws[0][:, :2], narrow.Ws[0])
    assert not wide.H[2:].any() and not wide.Ws[0][:, 2:].any() and wide.value == narrow.value


def test_a_deep_head_too_wide_for_memory_is_refused_naming_d_and_l_before_anything_is_allocated(monkeypatch):
    """d = MAX_WIDTH at L = 1000 (800 GB of d x d layers) and K = 10**5 classes at the default d = K and L = 3
    (160 GB) passed the width check, and the SVD and the layers followed until memory ran out; now refused naming d
    and L before either is made (the patched functions fail the test where they are reached)."""
    monkeypatch.setattr(ufm, "problem_svd", lambda *a: pytest.fail("the SVD was computed before the refusal"))
    monkeypatch.setattr(ufm, "point_from_strengths",
                        lambda *a: pytest.fail("the layers were built before the refusal"))
    with pytest.raises(ValueError, match=r"^d must be at most 316 with L=1,000 layers: .*got d=10,000 "):
        ufm.global_minimizer([3, 2], 0.1, 0.1, L=1000, d=_checks.MAX_WIDTH)
    with pytest.raises(ValueError, match=r"^d must be at most 7,071 with L=3 layers: .*got d=100,000 "):
        ufm.global_minimizer(np.full(10 ** 5, 2), 0.1, 0.1, L=3)


def test_a_deep_head_at_the_edge_of_the_width_bound_is_built(monkeypatch):
    """With MAX_WIDTH = 4 (16 entries of d x d layers): one 4 x 4 layer (L = 2) and four 2 x 2 ones (L = 5) are the
    edge, built as at any width; d = K = 3 at L = 3 (18 entries) is refused, which the bound max(K, MAX_WIDTH) took,
    while the values of the closed forms, which build no layer, take it."""
    monkeypatch.setattr(_checks, "MAX_WIDTH", 4)
    n, lam = [3, 2], 0.1
    for L, d in ((2, 4), (5, 2)):
        g = ufm.global_minimizer(n, lam, lam, L=L, d=d)
        assert [W.shape for W in g.Ws] == [(d, d)] * (L - 1) + [(2, d)] and g.H.shape == (d, 5)
        assert g.value == ufm.minimum_value(n, lam, lam, L=L)
        assert ufm.objective(g.Ws, g.H, g.b, n, lam, lam) == pytest.approx(g.value, rel=1e-12, abs=0)
    with pytest.raises(ValueError, match=r"^d must be at most 2 with L=3 layers: .*got d=3 "):
        ufm.global_minimizer([3, 2, 1], lam, lam, L=3)
    assert ufm.minimum_value([3, 2, 1], lam, lam, L=3) == pytest.approx(
        ufm.value_from_spectrum(ufm.problem_svd([3, 2, 1])[1], 6, lam, lam, 3), rel=1e-15)


def test_a_width_that_cuts_a_block_of_collapsed_modes_is_accepted():
    """n = [8, 5, 5, 5, 1] bias-free (M = diag(sqrt n)), L = 1, lam_W = lam_H = 0.1: a mode survives iff
    kappa > N sqrt(lam_W lam_H) = 2.4 (Theorem 4.1), so of kappa = sqrt(8), sqrt(5) (three times), 1 only the top
    one, with s_product = s_features = sqrt(sqrt(8) - 2.4) = 0.6545 (balanced: lam_W = lam_H).  Widths 2 and 3 cut
    the block of sqrt(5)s, all collapsed: one geometry, the full width's, not a refusal."""
    n, lam = [8, 5, 5, 5, 1], 0.1
    top = np.sqrt(np.sqrt(8) - 24 * lam)
    for d in (2, 3, None):
        st = ufm.structure(n, lam, lam, L=1, bias=False, d=d)
        np.testing.assert_allclose(st.kappa, np.sqrt([8, 5, 5, 5, 1]), rtol=1e-15)
        np.testing.assert_allclose(st.s_product, [top, 0, 0, 0, 0], rtol=1e-14, atol=0)
        np.testing.assert_allclose(st.s_features, [top, 0, 0, 0, 0], rtol=1e-14, atol=0)
        g = ufm.global_minimizer(n, lam, lam, L=1, bias=False, d=d)
        assert g.value == pytest.approx(ufm.minimum_value(n, lam, lam, L=1, bias=False), rel=1e-14, abs=0)
    assert top == pytest.approx(0.6545434, abs=1e-7)


def test_d_smaller_than_K_keeps_top_modes():
    n, lam_W, lam_H = [8, 6, 4, 3, 2], 0.002, 0.002
    full = ufm.global_minimizer(n, lam_W, lam_H, L=2, bias=False)
    small = ufm.global_minimizer(n, lam_W, lam_H, L=2, bias=False, d=2)
    assert small.H.shape == (2, sum(n)) and small.Ws[0].shape == (2, 2) and small.Ws[1].shape == (5, 2)
    assert ufm.objective(small.Ws, small.H, None, n, lam_W, lam_H) == pytest.approx(small.value, rel=1e-12, abs=0)
    assert small.value > full.value
    assert np.linalg.matrix_rank(ufm.head_product(small.Ws)) == 2


@pytest.mark.parametrize("L", [2, 3, 7])
def test_mode_strengths_where_a_is_too_small_for_l_over_a(L):
    """a below the normal floats (kappa near 1e150, or decays near 1e-300; for L >= 2 then L / a overflows):
    x^L/(1 + x^L) rounds to 1, so the strength is kappa, and no refusal of the internal a reaches the caller."""
    for kappa, lam in [(1e150, 1e-10), (1.0, 1e-300)]:
        a = ufm.lemma_a2_a([kappa], 10, lam, lam, L)[0]
        assert a < np.finfo(np.float64).tiny  # a subnormal (kappa = 1e150) or 0 (decays 1e-300)
        np.testing.assert_array_equal(ufm.mode_strengths([kappa, 0.0], 10, lam, lam, L), [kappa, 0.0])


@pytest.mark.parametrize("call, name", [
    (lambda: ufm.minimum_value([3, 2], -0.1, 0.1), "lam_W"),
    (lambda: ufm.minimum_value([3, 2], 0.1, -0.1), "lam_H"),
    (lambda: ufm.minimum_value([3, 2], [0.1, 0.1], 0.1, L=3), "lam_W"),
    (lambda: ufm.minimum_value([3, 2], 0.1, 0.1, L=0), "L"),
    (lambda: ufm.minimum_value([3, 0], 0.1, 0.1), "n"),
    (lambda: ufm.minimum_value([3, 2], 0.1, 0.1, bias="yes"), "bias"),
    (lambda: ufm.minimum_value([3, 2], 0.1, 0.1, bias=1), "bias"),  # _checks.flag: 1 is not read as True
    (lambda: ufm.global_minimizer([3, 2], 0.1, 0.1, d=0), "d"),
    (lambda: ufm.global_minimizer([3, 2], 0.1, 0.1, d=10 ** 12), "d must be at most max"),  # was a MemoryError
    (lambda: ufm.global_minimizer([3, 2], 0.1, 0.1, L=2, d=10 ** 4 + 1), "d must be at most max"),
    (lambda: ufm.structure([3, 2], 0.1, 0.1, d=10 ** 12), "d must be at most max"),
    (lambda: ufm.structure([3, 2], 0.1, 0.1, L=1.5), "L"),
    (lambda: ufm.objective([np.ones((2, 2))], np.ones((2, 4)), None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.objective([np.ones((3, 2))], np.ones((2, 5)), None, [3, 2], 0.1, 0.1), "Ws[0]"),
    (lambda: ufm.objective([np.ones((2, 2))], np.ones((2, 5)), np.ones(3), [3, 2], 0.1, 0.1), "b"),
    (lambda: ufm.objective([], np.ones((2, 5)), None, [3, 2], 0.1, 0.1), "Ws"),
    (lambda: ufm.objective([np.ones((2, 2))], np.ones((2, 5)), None, [3, 2], [0.1, 0.1], 0.1), "lam_W"),
    (lambda: ufm.lemma_a2_a([[1.0, 2.0]], 10, 0.1, 0.1, 2), "kappa"),
    (lambda: ufm.mode_strengths([], 10, 0.1, 0.1), "kappa"),
    (lambda: ufm.value_from_spectrum([], 10, 0.1, 0.1), "kappa"),
    (lambda: ufm.mode_strengths("2", 10, 0.1, 0.1), "kappa"),
    (lambda: ufm.mode_strengths([1.0, 2j], 10, 0.1, 0.1), "kappa"),
    (lambda: ufm.minimum_value([3, 2], "0.1", 0.1), "lam_W"),  # text is not read as a number
    (lambda: ufm.minimum_value([3, 2], 0.1, "0.1"), "lam_H"),
    (lambda: ufm.objective([np.eye(2)], np.ones((2, 5)) * (1 + 5j), None, [3, 2], 0.1, 0.1), "H"),  # complex
    (lambda: ufm.objective([np.eye(2)], np.ones((2, 5), dtype=bool), None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.objective([np.eye(2)], np.full((2, 5), "1"), None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.objective([np.eye(2)], np.full((2, 5), "1", dtype=object), None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.objective([np.eye(2)], np.full((2, 5), True, dtype=object), None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.objective([np.eye(2)], np.ones((2, 5)), [True, False], [3, 2], 0.1, 0.1), "b"),  # bools, text
    (lambda: ufm.objective([np.eye(2)], np.ones((2, 5)), ["1", "0"], [3, 2], 0.1, 0.1), "b"),
    (lambda: ufm.minimum_value([True, True, 3], 0.01, 0.01), "n"),  # numpy reads [True, True, 3] as [1, 1, 3]
    (lambda: ufm.objective([np.eye(2)], [[True, 2.0, 1.0, 1.0, 1.0], [0.0] * 5], None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.minimum_value([3, 2], [[0.1, 0.2]], 0.1, L=2), "lam_W"),  # nested
    (lambda: ufm.minimum_value([3, 2], 0.0, 0.1), "lam_W"),  # the closed forms need decays > 0 (objective takes 0)
    (lambda: ufm.minimum_value([3, 2], [0.1, 0.0], 0.1, L=2), "lam_W[1]"),
    (lambda: ufm.minimum_value([3, 2], 0.1, 0.0), "lam_H"),
    (lambda: ufm.global_minimizer([3, 2], 0.1, 0.0), "lam_H"),
    (lambda: ufm.global_minimizer([3, 2], 0.0, 0.1), "lam_W"),
    (lambda: ufm.structure([3, 2], [0.1, 0.0], 0.1, L=2), "lam_W[1]"),
    # numbers beyond float64 (10**400), once an OverflowError, and depths beyond MAX_DEPTH, once a MemoryError
    (lambda: ufm.minimum_value([3, 2], 10 ** 400, 0.1), "lam_W"),
    (lambda: ufm.objective([np.eye(2)], np.ones((2, 5)), None, [3, 2], 0.1, 10 ** 400), "lam_H"),
    (lambda: ufm.objective([np.eye(2)], [[10 ** 400] * 5, [0] * 5], None, [3, 2], 0.1, 0.1), "H"),
    (lambda: ufm.mode_strengths([1.0], 10 ** 400, 0.1, 0.1, 2), "N"),
    (lambda: ufm.mode_strengths([1.0], 6, 0.1, 0.1, 10 ** 400), "L"),
    (lambda: ufm.minimum_value([3, 2], 0.1, 0.1, L=10 ** 12), "L"),
    (lambda: ufm.global_minimizer([3, 2], 0.1, 0.1, L=10 ** 7), "L"),
])

def test_bad_input(call, name):
    with pytest.raises(ValueError, match=f"^{name.replace('[', '.').replace(']', '.')}"):
        call()


_Y = label_matrix(np.array([3, 2]))


@pytest.mark.parametrize("call, name", [
    (lambda: ufm.balanced_factors([-1, 2], [0.1], -0.1), "s"),  # once NaN
    (lambda: ufm.balanced_factors([1, 2], [0.1], -0.1), "lam_H"),
    (lambda: ufm.balanced_factors([1, 2], [0.1, 0.0], 0.1), "lam[1]"),
    (lambda: ufm.balanced_factors([1, 2], [], 0.1), "lam"),
    (lambda: ufm.balanced_factors([1, np.nan], [0.1], 0.1), "s"),
    (lambda: ufm.sqrt_decay_product(-1e-3, 1e-3), "lam_W"),  # once NaN
    (lambda: ufm.sqrt_decay_product(1e-3, 0.0), "lam_H"),
    (lambda: ufm.sqrt_decay_product("0.1", 1e-3), "lam_W"),
    (lambda: ufm.threshold_gap([1.0], 5, [0.1, 0.1], 0.1, 1), "lam_W"),
    (lambda: ufm.nonzero_strengths([1.0, -1.0], 5, 0.1, 0.1, 2), "kappa"),
    (lambda: ufm.nonzero_strengths([1.0], 5.0, 0.1, 0.1, 2), "N"),
    (lambda: ufm.nonzero_strengths([1.0, 0.5], 5, 0.1, 0.1, 2, [1, 0]), "where"),  # ints, not a mask
    (lambda: ufm.nonzero_strengths([1.0, 0.5], 5, 0.1, 0.1, 2, [True]), "where"),
    (lambda: ufm.scalar_problem_values([1.0, 0.5], [0.5], [0.1, 0.1], 5, 2), "s"),
    (lambda: ufm.scalar_problem_values([1.0], [0.5], [-0.1], 5, 2), "t"),
    (lambda: ufm.scalar_problem_values([1.0], [0.5], [0.1], 5, 0), "L"),
    (lambda: ufm.width_splits_modes([1.0, 0.5], [0.5, 1.0], 1), "kappa"),  # not the non-increasing order
    (lambda: ufm.width_splits_modes([1.0, 0.5], [1.0, 0.5], 0), "d"),
    (lambda: ufm.width_splits_modes([1.0, -0.5], [1.0, 0.5], 1), "s"),
    (lambda: ufm.point_from_strengths([3, 2], True, np.eye(2), np.eye(2), [1.0, 0.0], [0.1], 0.1, 2, 2), "lam"),
    (lambda: ufm.point_from_strengths([3, 2], True, np.eye(3), np.eye(2), [1.0, 0.0], 0.1, 0.1, 1, 2), "U"),
    (lambda: ufm.point_from_strengths([3, 2], True, np.eye(2), np.eye(2), [1.0, 0.5], 0.1, 0.1, 1, 1), "s"),
    (lambda: ufm.point_from_strengths([3, 2], 1, np.eye(2), np.eye(2), [1.0, 0.0], 0.1, 0.1, 1, 2), "bias"),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.ones((3, 5)), None, _Y, [0.1], 0.1), "Ws.0."),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.ones((2, 5)), None, _Y[:, :4], [0.1], 0.1), "Y"),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.ones((2, 5)), np.ones(3), _Y, [0.1], 0.1), "b"),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.ones((2, 5)), None, _Y, [-0.1], 0.1), "lam_W"),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.ones((2, 5)), None, _Y, [0.1], np.nan), "lam_H"),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.full((2, 5), np.nan), None, _Y, [0.1], 0.1), "H"),
    (lambda: ufm.objective_and_gradients([np.eye(2)], np.ones((2, 5)), np.array([0.0, np.inf]), _Y, [0.1], 0.1),
     "b"),
    (lambda: ufm.objective_and_gradients(np.eye(2), np.ones((2, 5)), None, _Y, [0.1], 0.1), "Ws"),
])
@pytest.mark.filterwarnings("ignore:invalid value encountered")  # an inf is named after the product it reached
def test_the_pieces_of_the_closed_forms_refuse_bad_input(call, name):
    """The pieces that the closed forms, nclib.minority, nclib.solvers and nclib.ufmtrain share once took their
    arguments unchecked: balanced_factors gave NaN for a negative strength or decay, sqrt_decay_product NaN for a
    negative decay; now each refuses naming the argument."""
    with pytest.raises(ValueError, match=f"^{name.replace('[', '.').replace(']', '.')}"):
        call()


def test_the_pieces_of_the_closed_forms_give_the_closed_forms_numbers():
    """The checked pieces, called as a chapter would call them (lists, one decay for every layer), give the numbers
    of the closed forms built from them: the global minimum, and the objective and its gradient at the minimizer."""
    n, lam, L = [6, 3, 2], 0.01, 2
    N = sum(n)
    _, kappa, Vt = ufm.problem_svd(np.array(n), True)
    s = ufm.nonzero_strengths(kappa.tolist(), N, lam, lam, L, (ufm.threshold_gap(kappa, N, lam, lam, L) < 0).tolist())
    np.testing.assert_allclose(s, ufm.mode_strengths(kappa, N, lam, lam, L), rtol=0, atol=0)
    t, a, e = ufm.balanced_factors(s.tolist(), [lam] * L, lam)
    np.testing.assert_allclose(lam * a ** 2, np.vstack([t] * L), rtol=1e-14, atol=0)  # lam_Wj a_j^2 = t
    np.testing.assert_allclose(lam * e ** 2, t, rtol=1e-14, atol=0)  # lam_H e^2 = t
    value = float(np.sum(ufm.scalar_problem_values(kappa.tolist(), s.tolist(), t.tolist(), N, L)))
    assert value == pytest.approx(ufm.minimum_value(n, lam, lam, L), rel=1e-14)
    g = ufm.global_minimizer(n, lam, lam, L)
    f, dWs, dH, db = ufm.objective_and_gradients([W.tolist() for W in g.Ws], g.H.tolist(), g.b.tolist(),
                                                 label_matrix(np.array(n)).tolist(), lam, lam)
    assert f == pytest.approx(ufm.objective(g.Ws, g.H, g.b, n, lam, lam), rel=1e-14)
    assert max(np.abs(d).max() for d in [*dWs, dH, db]) < 1e-12  # a critical point
    assert ufm.sqrt_decay_product(0.04, 0.01) == pytest.approx(0.02, rel=1e-15)
    assert not ufm.width_splits_modes([2.0, 1.0, 0.0], [3.0, 2.0, 0.0], 2)
    assert ufm.width_splits_modes([2.0, 2.0, 0.0], [3.0, 3.0, 0.0], 1)


@pytest.mark.parametrize("L", [1, 2, 3])
def test_a_sample_count_near_the_top_of_float64_gives_numbers_not_an_overflow(L):
    """N = 10**308, a float64: the closed forms once multiplied it by L or 2 as Python ints, beyond the float range,
    and raised an OverflowError.  At such an N every mode collapses and the value is sum kappa^2 / (2N)."""
    N, kappa = 10 ** 308, [1e150, 1.0, 0.0]
    assert not ufm.mode_strengths(kappa, N, 0.1, 0.1, L).any()
    assert np.all(ufm.threshold_gap(kappa, N, 0.1, 0.1, L)[:2] > 0)
    want = (1e300 + 1.0) / 1e308 / 2
    np.testing.assert_allclose(ufm.value_from_spectrum(kappa, N, 0.1, 0.1, L), want, rtol=1e-15, atol=0)
    np.testing.assert_allclose(statements.theorem43_value(kappa, N, 0.1, 0.1, L), want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("L", [2, 3])
def test_the_gap_at_a_sample_count_near_the_top_of_float64_keeps_its_sign(L):
    """N = 10**308 with decays below the normal range, where the gap changes sign: L N and L^2 N were once taken as
    floats first (inf), so the gap read +inf (the mode dead) at every decay, alive ones included.  Against the
    gap in 50-digit arithmetic."""
    import mpmath

    N, kappa = 10 ** 308, 1.0
    for lam in (1e-305, 3e-309, 2.7e-309, 1e-310, 1e-315):
        with mpmath.workdps(50):
            d = mpmath.mpf(L - 1) ** (mpmath.mpf(L - 1) / L)
            want = float(L ** 2 * N * (N * mpmath.mpf(lam) ** (L + 1)) ** (mpmath.mpf(1) / L) - d)
        got = ufm.threshold_gap([kappa], N, lam, lam, L)[0]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


def test_numbers_of_other_types_are_read_as_numbers():
    """What numpy reads as a 0-d number (a numpy float32, a 0-d array or tensor) is a decay; a list mixing number
    types is a spectrum."""
    import torch

    want = ufm.minimum_value([3, 2], 0.25, 0.01)
    for lam in (np.float32(0.25), np.asarray(0.25), torch.tensor(0.25, dtype=torch.float64)):
        assert ufm.minimum_value([3, 2], lam, 0.01) == want
    np.testing.assert_array_equal(ufm.mode_strengths(np.array([2, 1.0], dtype=object), 10, 0.01, 0.01),
                                  ufm.mode_strengths([2.0, 1.0], 10, 0.01, 0.01))


def test_numpy_bool_bias_is_accepted():
    assert ufm.minimum_value([3, 2], 0.1, 0.1, bias=np.bool_(False)) == ufm.minimum_value([3, 2], 0.1, 0.1, bias=False)


@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_mode_strengths_match_structure(L):
    n = [10, 10, 6, 3, 2, 1]
    lam_W = list(np.linspace(0.004, 0.02, L))
    st = ufm.structure(n, lam_W, 0.01, L=L, bias=True)
    np.testing.assert_allclose(ufm.mode_strengths(st.kappa, sum(n), lam_W, 0.01, L=L),
                               st.s_product * st.s_features, rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match="^kappa"):
        ufm.mode_strengths([-1.0], 10, 0.1, 0.1)
    with pytest.raises(ValueError, match="^N"):
        ufm.mode_strengths([1.0], 0, 0.1, 0.1)


def test_decays_whose_products_leave_the_normal_floats_go_through_logarithms():
    """minimum_value's docstring: products of decays beyond the float range are taken through logarithms, so the
    closed forms stay right.  Each quantity against its formula with the factors taken one by one (each a normal
    float): sqrt(lam_W lam_H) of the soft threshold, (N lam_H lam_W1 lam_W2)^(1/2) of a, and the balanced factors
    behind structure's s_product * s_features, which must give the mode's strength."""
    # L = 1: lam_W lam_H = 1e-320 is subnormal; N sqrt(lam_W lam_H) = 5e9 * 1e-160 = 5e-151, half of kappa
    N, kappa = 5 * 10 ** 9, 1e-150
    t = N * (np.sqrt(1e-300) * np.sqrt(1e-20))
    np.testing.assert_allclose(ufm.mode_strengths([kappa], N, 1e-300, 1e-20, 1), [kappa - t], rtol=1e-14)
    np.testing.assert_allclose(ufm.threshold_gap([kappa], N, 1e-300, 1e-20, 1), [(t - kappa) * (t + kappa)],
                               rtol=1e-14)
    # L = 2: N lam_H lam_W1 lam_W2 = 10 * 1e-500 underflows; a = L N / kappa^2 sqrt(N) 1e-250
    a = ufm.lemma_a2_a([1e-120], 10, [1e-200, 1e-200], 1e-100, 2)[0]
    # abs=0: pytest.approx's default abs of 1e-12 passed anything within 1.6e-4 of this 6.3e-9; through exp of a
    # logarithm near -574, eps |log| of rounding, about 1.3e-13 (6.1e-14 here)
    assert a == pytest.approx(2 * 10 / 1e-240 * (np.sqrt(10) * 1e-250), rel=2e-13, abs=0)
    # L = 2, decays 1e-200: lam_H lam_W1 lam_W2 s^2 underflows in the balanced factors of each mode
    n = [5, 3, 2]
    st = ufm.structure(n, 1e-200, 1e-200, L=2)
    strengths = ufm.mode_strengths(st.kappa, sum(n), 1e-200, 1e-200, 2)
    assert np.count_nonzero(strengths) == 2
    # through exp of logarithms near -920: rounding of eps |log| each, about 2e-13
    np.testing.assert_allclose(st.s_product * st.s_features, strengths, rtol=1e-12, atol=0)
    g = ufm.global_minimizer(n, 1e-200, 1e-200, L=2)
    np.testing.assert_allclose(np.linalg.svd(ufm.head_product(g.Ws), compute_uv=False), st.s_product,
                               rtol=1e-12, atol=0)


def test_repeated_singular_values_of_ybar_are_one_float():
    """problem_svd sets each repeated singular value (sqrt(N_i) l_i - 1 times, Theorem 4.4), which the SVD returns
    a few ulps apart, to one float, so that the modes of one value live or die together at every decay.  EMNIST's
    profile (1500, 1), (600, 5), (50, 20): sqrt(600) four times, sqrt(50) nineteen times, two values of G and 0."""
    n = imb.class_counts(imb.PROFILES["emnist-letters"])
    kappa = ufm.problem_svd(n)[1]
    values, counts = np.unique(kappa, return_counts=True)
    assert sorted(counts.tolist()) == [1, 1, 1, 4, 19]
    np.testing.assert_allclose(values[counts == 4], np.sqrt(600), rtol=1e-14)
    np.testing.assert_allclose(values[counts == 19], np.sqrt(50), rtol=1e-14)
    # decays placed on the thresholds of the nineteen values the SVD returns: the block lives or dies as one
    N = int(n.sum())
    block = np.flatnonzero(np.isclose(kappa, np.sqrt(50), rtol=1e-12, atol=0))  # the default atol 1e-8 would set it
    for k in np.linalg.svd(imb.ybar(n), compute_uv=False)[block]:
        for lam in (k / N, np.nextafter(k / N, 0), np.nextafter(k / N, 1)):
            alive = np.count_nonzero(ufm.mode_strengths(kappa, N, lam, lam, 1)[block])
            assert alive in (0, block.size)


def test_a_width_between_a_surviving_mode_and_a_collapsed_one_of_nearly_equal_kappa():
    """n = [200000001, 200000000, 1] bias-free: kappa_1 - kappa_2 = 3.5e-5 is below BLOCK_RTOL kappa_1 = 1.4e-4, one
    group for the cut of d.  With both modes alive d = 1 splits the group (refused); at a decay between their
    thresholds only the first survives, the surviving part of the group is not split, and d = 1 is accepted."""
    n = [200_000_001, 200_000_000, 1]
    N, k = sum(n), np.sqrt(np.array(n, dtype=float))
    assert k[0] - k[1] <= ufm.BLOCK_RTOL * k[0]
    with pytest.raises(ValueError, match="^d=1 splits"):
        ufm.structure(n, 0.5 * k[1] / N, 0.5 * k[1] / N, L=1, bias=False, d=1)
    lam = 0.5 * (k[0] + k[1]) / N  # N sqrt(lam lam) between kappa_2 and kappa_1
    st = ufm.structure(n, lam, lam, L=1, bias=False, d=1)
    np.testing.assert_allclose(st.s_product * st.s_features, [k[0] - N * lam, 0.0, 0.0], rtol=1e-6, atol=0)


def test_lemma_a2_a_has_the_factor_N():
    """Erratum T1: a = L N / kappa^2 (N lam_H prod lam_W)^(1/L)."""
    a = ufm.lemma_a2_a([2.0], 30, [0.01, 0.02], 0.03, 2)[0]
    assert a == pytest.approx(2 * 30 / 4 * (30 * 0.03 * 0.01 * 0.02) ** 0.5, rel=1e-14, abs=0)
    assert np.isinf(ufm.lemma_a2_a([0.0], 30, 0.01, 0.03, 2)[0])


def test_head_product_multiplies_in_order_and_checks_shapes():
    rng = np.random.default_rng(3)
    Ws = [rng.standard_normal((4, 3)), rng.standard_normal((5, 4)), rng.standard_normal((2, 5))]
    np.testing.assert_allclose(ufm.head_product(Ws), Ws[2] @ Ws[1] @ Ws[0], rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(ufm.head_product(Ws[:1]), Ws[0])
    with pytest.raises(ValueError, match=r"Ws\[1\]"):
        ufm.head_product([Ws[0], Ws[2]])
    with pytest.raises(ValueError, match="single matrix"):
        ufm.head_product(Ws[0])
    with pytest.raises(ValueError, match="at least one"):
        ufm.head_product([])


@pytest.mark.parametrize("L", [1, 2, 3, 6])
def test_threshold_gap_sign_decides_survival(L):
    """Theorem 4.3: mode k survives iff the gap is negative (erratum T6: the paper's prose says the reverse)."""
    n = [10, 10, 6, 3, 2, 1]
    N = sum(n)
    for lam_H in [1e-4, 1e-3, 0.01, 0.05]:
        lam_W = list(np.linspace(0.004, 0.02, L))
        st = ufm.structure(n, lam_W, lam_H, L=L, bias=True)
        gap = ufm.threshold_gap(st.kappa, N, lam_W, lam_H, L)
        np.testing.assert_array_equal(gap < 0, st.s_product > 0)
        if L >= 2:  # gap / (kappa^2 (L-1)^((L-1)/L)) = a / a_crit of Lemma A.2
            a = ufm.lemma_a2_a(st.kappa[:-1], N, lam_W, lam_H, L)
            ratio = 1 + gap[:-1] / (st.kappa[:-1] ** 2 * (L - 1) ** ((L - 1) / L))
            np.testing.assert_allclose(ratio, a / lemmas.lemma_a2_critical_a(L), rtol=1e-12)
    # L = 1: N^2 lam_W lam_H - kappa^2, the soft threshold of Theorems 4.1 and 4.2
    assert ufm.threshold_gap([2.0], 10, 0.01, 0.03, 1)[0] == pytest.approx(100 * 0.01 * 0.03 - 4.0, rel=1e-14, abs=0)
    with pytest.raises(ValueError, match="^kappa"):
        ufm.threshold_gap([-1.0], 10, 0.1, 0.1, 2)
    with pytest.raises(ValueError, match="^lam_W"):
        ufm.threshold_gap([1.0], 10, [0.1], 0.1, 2)


def test_weighted_class_means():
    n = [2, 1]
    H = np.array([[1.0, 3.0, 5.0], [0.0, 2.0, -1.0]])
    want = np.array([[2.0 * np.sqrt(2), 5.0], [1.0 * np.sqrt(2), -1.0]])
    np.testing.assert_allclose(ufm.weighted_class_means(H, n), want, rtol=1e-15)
    g = ufm.global_minimizer([6, 6, 2, 2, 1], [0.02, 0.005], 0.01, L=2)
    st = ufm.structure([6, 6, 2, 2, 1], [0.02, 0.005], 0.01, L=2)
    E = ufm.weighted_class_means(g.H, [6, 6, 2, 2, 1])
    np.testing.assert_allclose(E.T @ E, st.V @ np.diag(st.s_features ** 2) @ st.V.T, atol=1e-12)
    with pytest.raises(ValueError, match="^H"):
        ufm.weighted_class_means(np.ones((2, 4)), n)
    with pytest.raises(ValueError, match="^n"):
        ufm.weighted_class_means(H, [3, 0])


@pytest.mark.parametrize("n, lam_W, lam_H, L, bias", CASES)
def test_value_from_spectrum(n, lam_W, lam_H, L, bias):
    kappa = np.linalg.svd(ybar(n) if bias else np.diag(np.sqrt(n)), compute_uv=False)
    value = ufm.value_from_spectrum(kappa, sum(n), lam_W, lam_H, L)
    assert value == pytest.approx(ufm.minimum_value(n, lam_W, lam_H, L, bias), rel=1e-14, abs=0)
    # each mode's scalar problem min_s (s - kappa)^2/(2N) + (L+1)/2 Pi^(1/(L+1)) s^(2/(L+1)), minimized here by
    # bounded search on [0, kappa] (its minimizer lies there) and at the end point s = 0
    N, Pi = sum(n), lam_H * np.prod(np.broadcast_to(lam_W, (L,)))
    phi = lambda s, k: (s - k) ** 2 / (2 * N) + (L + 1) / 2 * Pi ** (1 / (L + 1)) * s ** (2 / (L + 1))  # noqa: E731
    direct = sum(min(phi(0.0, k), optimize.minimize_scalar(phi, bounds=(0, k), args=(k,), method="bounded",
                                                           options={"xatol": 1e-12}).fun) for k in kappa)
    assert value == pytest.approx(direct, rel=1e-10)
    if L == 1:  # soft thresholding: s = (kappa - N sqrt(lam_W lam_H))_+
        N, mu = sum(n), np.sqrt(lam_W * lam_H)
        s = np.maximum(kappa - N * mu, 0)
        want = np.sum((s - kappa) ** 2 / (2 * N) + mu * s)
        assert ufm.value_from_spectrum(kappa, N, lam_W, lam_H) == pytest.approx(want, rel=1e-13, abs=0)
    with pytest.raises(ValueError, match="^kappa"):
        ufm.value_from_spectrum([-1e-3], 10, 0.1, 0.1)


def test_a_kappa_whose_square_leaves_the_normal_floats_is_refused_by_name():
    """kappa^2 of a nonzero singular value must be a normal float64 (_checks.KAPPA_RANGE): at 1e-170 it rounded to 0
    and a live mode was reported dead; at 1e200 it overflowed and collapse_decay returned the largest float. Inside
    the range the closed forms still decide right at tiny decays."""
    from nclib import _checks, minority

    lo, hi = _checks.KAPPA_RANGE
    for kappa in (1e-170, 1e200):
        with pytest.raises(ValueError, match=r"kappa must hold 0 or values in"):
            ufm.threshold_gap([kappa], 5, 1e-300, 1e-300, 2)
        with pytest.raises(ValueError, match=r"kappa must hold 0 or values in"):
            ufm.mode_strengths([kappa], 5, 1e-300, 1e-300, 2)
        with pytest.raises(ValueError, match=r"kappa must hold 0 or values in"):
            minority.collapse_decay([kappa], 5, 3)
    # 1e-150: alive, as the gap L^2 N (N lam_H lam_W1 lam_W2)^(1/2) - kappa^2 = 20 sqrt(5e-900) - 1e-300 < 0 says
    assert ufm.threshold_gap([1e-150, 0.0], 5, 1e-300, 1e-300, 2)[0] < 0
    assert ufm.mode_strengths([1e-150], 5, 1e-300, 1e-300, 2)[0] > 0
    np.testing.assert_allclose(minority.collapse_decay([1e150], 5, 1), [1e150 / 5], rtol=1e-15)  # kappa / N at L = 1


@pytest.mark.parametrize("n, lam_W, lam_H, L, alive", [
    ([5, 3, 3, 1], 1e-3, 2e-3, 1, 4),  # two classes of one count: a group of equal singular values of D
    ([5, 3, 3, 1], 1e-3, 1e-3, 3, 4),
    ([6, 4, 4, 2, 2], 5e-4, 2e-3, 2, 5),
    ([8, 3, 3, 1], 0.08, 0.08, 1, 3),  # the class of one sample collapsed
    ([8, 3, 3, 1], 2e-2, 2e-2, 3, 3),
    ([9, 2, 2], 0.15, 0.15, 1, 1),  # the group of two classes of 2 collapsed together
    ([1, 3, 3, 8], 0.02, 0.02, 3, 3),  # ascending, as the figures' classes: the smallest class collapsed
    ([2, 6, 4, 4, 8], 2e-3, 2e-3, 2, 5),  # unsorted, a repeated count inside
])
def test_minimizer_global_mean_norm_matches_the_numerical_minimizer(n, lam_W, lam_H, L, alive):
    """Without a bias ||h_G|| is the same at every global minimizer and not 0: the closed form's value against the
    global feature mean of the point nclib.solvers.minimize finds, which never uses the closed form."""
    assert np.count_nonzero(ufm.structure(n, lam_W, lam_H, L, False).s_product > 0) == alive
    found = solvers.minimize(n, lam_W, lam_H, L, bias=False)
    assert found.value == pytest.approx(ufm.minimum_value(n, lam_W, lam_H, L, False), rel=1e-12, abs=0)
    want = ufm.minimizer_global_mean_norm(n, lam_W, lam_H, L, bias=False)
    assert want > 0
    assert want == pytest.approx(metrics.global_mean_norm(found.H.T), rel=1e-9)


def test_minimizer_global_mean_norm_by_hand_and_with_a_bias():
    # L = 1 without a bias (Theorem 4.1): n_k ||h-bar_k||^2 = sqrt(lam_W / lam_H) (sqrt(n_k) - N sqrt(lam_W lam_H))_+
    n, lam_W, lam_H = np.array([8, 3, 3, 1]), 0.05, 0.2
    N = n.sum()
    share = np.sqrt(lam_W / lam_H) * np.maximum(np.sqrt(n) - N * np.sqrt(lam_W * lam_H), 0)
    assert np.count_nonzero(share) == 3
    assert ufm.minimizer_global_mean_norm(n, lam_W, lam_H, 1, False) == pytest.approx(
        np.sqrt(np.sum(n * share)) / N, rel=1e-12, abs=0)
    # with a bias h_G = 0 at every global minimizer (eq. (B.5)-(B.7)), as at the numerical one
    assert ufm.minimizer_global_mean_norm([5, 3, 3, 1], 1e-3, 1e-3, 3, True) == 0.0
    found = solvers.minimize([5, 3, 3, 1], 1e-3, 1e-3, 3, bias=True)
    assert metrics.global_mean_norm(found.H.T) < 1e-12
    for bad, name in ((dict(n=[3, 0]), "n"), (dict(lam_H=-1.0), "lam_H"), (dict(L=0), "L"), (dict(bias="no"), "bias")):
        args = dict(dict(n=[3, 2], lam_W=0.1, lam_H=0.1, L=1, bias=False), **bad)
        with pytest.raises(ValueError, match=f"^{name} must"):
            ufm.minimizer_global_mean_norm(**args)


def _scalar_minima_mp(kappa, N, lam_W, lam_H, L):
    """Per mode, min over x >= 0 of kappa^2/(2N) g(x) (Lemma A.2; the soft threshold for L = 1) in 50-digit
    arithmetic, from the float arguments: g(0) = 1 against g at the largest stationary point, found in logs."""
    import mpmath

    with mpmath.workdps(50):
        lam = [mpmath.mpf(v) for v in np.broadcast_to(lam_W, (L,))]
        root = (N * mpmath.mpf(lam_H) * mpmath.fprod(lam)) ** (mpmath.mpf(1) / L)
        out = []
        for k in map(mpmath.mpf, kappa):
            if k == 0:
                out.append(0.0)
                continue
            a = L * N * root / k ** 2
            if L == 1:  # g(x) = 1/(x + 1) + a x, convex: x^* = (a^(-1/2) - 1)_+
                x = max(1 / mpmath.sqrt(a) - 1, 0)
            else:  # the largest root of a = L x^(L-1) / (x^L + 1)^2, in logs
                f = lambda u: (mpmath.log(L) + (L - 1) * u - 2 * mpmath.log(1 + mpmath.exp(L * u))  # noqa: E731
                               - mpmath.log(a))
                x = mpmath.exp(mpmath.findroot(f, mpmath.log(L / a) / (L + 1)))
            out.append(float(k ** 2 / (2 * N) * min(1, 1 / (x ** L + 1) + a * x)))
    return np.array(out)


@pytest.mark.parametrize("n, lam, L, bias", [
    ([4, 2, 1], 1e-40, 2, False),
    ([3, 2], 1e-200, 4, False),
    ([5, 3, 2], 1e-60, 3, True),
    ([5, 3, 2], 1e-40, 1, True),
    ([5, 3, 2], 1e-3, 2, True),
])
def test_minimum_value_at_tiny_decays_against_50_digits(n, lam, L, bias):
    """minimum_value's docstring: decays of 1e-160 and down are taken through logarithms and the value stays right.
    At tiny decays s is within an ulp of kappa, and (s - kappa)^2/(2N) once added an ulp^2/(2N), about 1e-33, that
    swamped a minimum near lam (5.8e-40 for the first case): the fit term is now the residual kappa - s of the
    scalar problem's stationarity, N t / s.  Against 50 digits, with global_minimizer's value and theorem43_value."""
    kappa = ufm.problem_svd(n, bias)[1]
    N = sum(n)
    want = _scalar_minima_mp(kappa, N, lam, lam, L).sum()
    got = [ufm.minimum_value(n, lam, lam, L=L, bias=bias), ufm.global_minimizer(n, lam, lam, L=L, bias=bias).value,
           statements.theorem43_value(kappa, N, lam, lam, L)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)  # atol 0: pytest.approx's 1e-12 would pass 1e-33
