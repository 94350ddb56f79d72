"""Unit tests of nclib.metrics and the modules it gathers, nclib.feature_collapse (NC1) and nclib.geometry (NC2, NC3)
(chapter ch-metrics, errata ch-errata-metrics)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import nclib.feature_collapse as fc
import nclib.imbalance as imb
import nclib.metrics as m
import nclib.minority as mino
import nclib.printed_metrics as pm
import nclib.solvers as solvers
import nclib.ufm as ufm
from nclib import _samples

CIFAR = [500, 500, 400, 400, 300, 300, 200, 200, 100, 100]
EMNIST_SMALL = [150] + [60] * 5 + [5] * 20  # the EMNIST-letters shape (1 x 1500, 5 x 600, 20 x 50) / 10
KEYS = ("nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3")


def _worst(metrics: dict) -> float:
    """The largest of the metrics, NaN if any is NaN (the builtin max skips a NaN that is not first)."""
    return float(np.max(np.fromiter(metrics.values(), dtype=float)))


def _random_point(n, L, d, rng, offset=0.0):
    """A random head [W_1..W_L] (widths d, W_L K x d) and N x d features."""
    K, N = len(n), int(np.sum(n))
    Ws = [rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(L - 1)] + [rng.standard_normal((K, d)) / np.sqrt(d)]
    X = rng.standard_normal((N, d)) + offset
    return Ws, X


def _random_rotation(k, rng):
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


# (n, lam, L, bias): lam chosen so that some cases keep every mode and some collapse minority modes
CASES = [
    (CIFAR, 1e-3, 1, True),
    (CIFAR, 1e-3, 3, False),
    (CIFAR, 1e-5, 6, True),
    (CIFAR, 6e-3, 1, True),      # threshold N sqrt(lam_W lam_H) = 18: four modes survive, six collapse
    (CIFAR, 6e-3, 1, False),     # bias-free: sqrt(n_k) <= 18 collapses the 100-, 200- and 300-sample classes
    (CIFAR, 2e-3, 3, True),
    (CIFAR, 2e-3, 6, False),
    (EMNIST_SMALL, 1e-3, 1, True),
    (EMNIST_SMALL, 1e-3, 3, False),
    (EMNIST_SMALL, 5e-3, 6, True),
    (EMNIST_SMALL, 5e-3, 6, False),
    ([7, 7, 7, 7], 1e-2, 3, False),  # balanced, bias-free: one block of 4 equal kappas
    ([9, 6, 6, 6, 2], 2e-2, 1, True),
]


@pytest.mark.parametrize("n, lam, L, bias", CASES)
def test_metrics_vanish_at_closed_form_minimizer(n, lam, L, bias):
    d = len(n) + 3
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=bias, d=d)
    out = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, lam, lam, bias=bias)
    assert set(out) == set(KEYS)
    for key in KEYS:
        assert 0.0 <= out[key] <= 1e-12, (key, out[key])  # rounding: the largest over these cases is about 1e-14
    if bias:
        assert m.bias_error(mz.b, imb.class_labels(n)) <= 1e-12
        assert m.global_mean_norm(mz.H.T) <= 1e-12


# (n, lam, L, bias) for minimizers found by the numerical solver: every mode alive but the zero mode, partial
# collapse (the last three of the first eight), and blocks of 3 and 2 equal kappas (the last two)
SOLVER_CASES = [
    ([6, 4, 3, 2], 0.02, 1, True),
    ([6, 4, 3, 2], 0.02, 2, True),
    ([6, 4, 3, 2], 0.02, 3, True),
    ([6, 4, 3, 2], 0.05, 1, False),
    ([6, 4, 3, 2], 0.03, 2, False),
    ([8, 6, 2, 1], 0.06, 3, False),  # 2 of 4 classes survive
    ([4, 4, 2, 2, 1, 1], 0.1, 1, True),  # 3 of 5 modes
    ([8, 6, 2, 1], 0.05, 2, True),  # 1 of 3 modes
    ([4, 4, 4, 1], 0.03, 2, False),
    ([4, 4, 4, 2, 1], 0.05, 1, True),
]


def test_solver_cases_cover_partial_collapse_and_blocks():
    partial, blocks = 0, 0
    for n, lam, L, bias in SOLVER_CASES:
        st = ufm.structure(n, lam, lam, L=L, bias=bias)
        alive = st.s_product > 0
        partial += 0 < np.count_nonzero(alive) < len(n) - bias
        blocks += any(B.size > 1 for B in imb.mode_blocks(st.kappa, alive))
    assert partial == 3 and blocks == 2
    assert {(L, bias) for _, _, L, bias in SOLVER_CASES} == {(L, b) for L in (1, 2, 3) for b in (True, False)}


@pytest.mark.parametrize("n, lam, L, bias", SOLVER_CASES)
def test_metrics_vanish_at_minimizers_found_by_the_solver(n, lam, L, bias):
    """The closed-form minimizer and the targets share nclib.ufm; nclib.solvers.minimize shares neither (L-BFGS-B
    on the full objective from random starts, no SVD of Y-bar), and leaves the singular vectors inside a block
    wherever its run ends. Tolerance: the solver stops at the limit of float64 (it reports its gradient norm, at
    most 1e-12 here); a minimizer known through float64 values of the objective is fixed only to a relative
    distance of order sqrt(eps) = 1.5e-8, since the objective is quadratic in the distance near it. NC2, NC3 and
    the bias error grow linearly with that distance, NC1 quadratically, so the test allows 1e-7 and 1e-14: bounds
    that do not rely on how far the solver's final Newton steps get (its points give about 1e-13 and 1e-27)."""
    res = solvers.minimize(n, lam, lam, L=L, bias=bias, d=len(n) + 1, seed=0, repeats=1, maxiter=5000)
    assert res.grad_norm <= 1e-12
    out = m.collapse_metrics(res.H.T, imb.class_labels(n), res.Ws, lam, lam, bias=bias)
    assert 0.0 <= out["nc1"] <= 1e-14, out
    assert max(out[k] for k in KEYS[1:]) <= 1e-7, out
    if bias:
        assert m.bias_error(res.b, imb.class_labels(n)) <= 1e-7


@pytest.mark.parametrize("L, bias", [(1, False), (2, True), (3, True)])
def test_metrics_vanish_at_a_minimizer_narrower_than_K(L, bias):
    """Hidden width d = 2 < K: the global minimizer keeps the top two modes (nclib.ufm.global_minimizer), and the
    targets of collapse_metrics are cut at the same width, so the metrics vanish there too."""
    n, lam = [8, 6, 4, 3, 2], 0.002
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=bias, d=2)
    out = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, lam, lam, bias=bias)
    assert all(0.0 <= out[k] <= 1e-12 for k in KEYS), out  # NaN fails too
    # a width that splits surviving modes of equal kappa (here 2.24 twice) leaves no one target: the geometry
    # metrics are NaN, NC1 (Sigma_B of rank d = 2) is still 0 at the minimizer
    n = [8, 5, 5, 5, 1]
    mz = ufm.global_minimizer(n, 0.01, 0.01, L=L, bias=True, d=2)
    out = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, 0.01, 0.01)
    assert out["nc1"] <= 1e-12 and all(np.isnan(out[k]) for k in ("nc2_w", "nc2_h", "nc2_wh", "nc3"))


@pytest.mark.parametrize("L, bias", [(1, False), (2, True), (3, True)])
def test_geometry_is_defined_where_collapse_metrics_gives_numbers(L, bias):
    """geometry_defined: False for a decay of 0 (lam_H, or one layer's lam_W), which collapse_metrics refuses;
    for positive decays, True exactly where collapse_metrics gives NC2/NC3 numbers at the global minimizer: a width
    of at least K, a width 2 < K that cuts between modes of different kappa, and not a width 2 that splits the two
    equal kappa of [8, 5, 5, 5, 1] (bias: the modes of Y-bar; without: 5 three times)."""
    narrow, split, lam = [8, 6, 4, 3, 2], [8, 5, 5, 5, 1], 0.01
    assert m.geometry_defined(narrow, lam, lam, L, bias) and m.geometry_defined(narrow, lam, lam, L, bias, d=5)
    assert m.geometry_defined(narrow, [lam] * L, lam, L, bias, d=64)
    assert not m.geometry_defined(narrow, lam, 0.0, L, bias) and not m.geometry_defined(narrow, 0.0, lam, L, bias)
    assert not m.geometry_defined(narrow, [lam] * (L - 1) + [0.0], lam, L, bias, d=5)
    with pytest.raises(ValueError, match="^lam_H must be strictly positive"):
        m.collapse_metrics(np.ones((24, 3)), imb.class_labels([8, 6, 4, 3, 3]), [np.ones((5, 3))], lam, 0.0)
    for n, d in ((narrow, 2), (narrow, 5), (split, 2), (split, 3), (split, 1)):
        defined = m.geometry_defined(n, lam, lam, L, bias, d=d)
        mz = ufm.global_minimizer(n, lam, lam, L=L, bias=bias, d=min(d, len(n)))
        out = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, lam, lam, bias=bias)
        geometry = [out[k] for k in KEYS[1:]]
        assert (np.isfinite(geometry).all() if defined else np.isnan(geometry).all()), (n, d, defined, out)
        assert np.isfinite(out["nc1"])
    assert not m.geometry_defined(split, lam, lam, L, bias, d=2) and m.geometry_defined(narrow, lam, lam, L, bias, 2)


@pytest.mark.parametrize("L", [1, 3])
def test_a_width_of_k_minus_1_splits_the_two_smallest_equal_counts_without_a_bias(L):
    """Without a bias the modes are the classes (kappa = sqrt n): a width d = K - 1 keeps all but one of them, and
    where the two smallest counts are equal and both survive, as for n = [8, 6, 4, 2, 2], it splits their pair, so
    the minimizers share no one geometry: geometry_defined is False and collapse_metrics gives NaN for NC2 and NC3
    (NC1 still 0 to rounding). With a bias the zero mode of Y-bar never survives and K - 1 modes fit in d = K - 1;
    a width K - 2 (cutting between 4 and 2) is defined without a bias too."""
    n, lam = [8, 6, 4, 2, 2], 0.01
    st = ufm.structure(n, lam, lam, L=L, bias=False)
    assert np.all(st.s_product > 0) and st.kappa[-2] == st.kappa[-1]  # the pair survives with equal kappa
    assert not m.geometry_defined(n, lam, lam, L, False, d=4)
    assert m.geometry_defined(n, lam, lam, L, False, d=3) and m.geometry_defined(n, lam, lam, L, True, d=4)
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=False, d=4)
    out = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, lam, lam, bias=False)
    assert out["nc1"] <= 1e-12 and all(np.isnan(out[k]) for k in KEYS[1:])

def test_geometry_defined_refuses_bad_arguments_by_name():
    """Each argument of geometry_defined is checked: a ValueError naming it (zero decays allowed, negative not)."""
    for kw, name in ((dict(n=[3, 0]), "n"), (dict(lam_W=-1.0), "lam_W"), (dict(lam_W=[0.1, 0.1]), "lam_W"),
                     (dict(lam_H=-1e-3), "lam_H"), (dict(lam_H="0"), "lam_H"), (dict(L=0), "L"),
                     (dict(bias=1), "bias"), (dict(d=0), "d"), (dict(d=2.5), "d")):
        args = {**dict(n=[3, 2, 1], lam_W=0.1, lam_H=0.1, L=1, bias=True, d=None), **kw}
        with pytest.raises(ValueError, match=f"^{name}"):
            m.geometry_defined(**args)


@pytest.mark.parametrize("L, bias", [(2, True), (3, False)])
def test_metrics_vanish_at_a_minimizer_whose_hidden_width_is_below_its_feature_dimension(L, bias):
    """Features of dimension 5 >= K, hidden width 2 < K: the width-2 global minimizer embedded in R^5 (W_1 R^T,
    R H with R the first two columns of I_5) has the same objective, so it is a global minimizer of the problem with
    these shapes, and only its top two modes survive.  The targets are cut at the smallest width (2), not at the
    feature dimension: the metrics vanish there."""
    n, lam = [8, 6, 4, 3, 2], 0.002
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=bias, d=2)
    R = np.eye(5)[:, :2]
    Ws, H = [mz.Ws[0] @ R.T, *mz.Ws[1:]], R @ mz.H
    assert Ws[0].shape == (2, 5) and H.shape == (5, sum(n))
    assert ufm.objective(Ws, H, mz.b, n, lam, lam) == pytest.approx(mz.value, rel=1e-14, abs=0)
    assert np.count_nonzero(ufm.structure(n, lam, lam, L=L, bias=bias).s_product) == 5 - bias  # at full width
    assert mz.value > 5 * ufm.minimum_value(n, lam, lam, L=L, bias=bias)  # the width costs the modes past the second
    out = m.collapse_metrics(H.T, imb.class_labels(n), Ws, lam, lam, bias=bias)
    assert all(0.0 <= out[k] <= 1e-12 for k in KEYS), out  # NaN fails too


@pytest.mark.parametrize("L", [2, 3])
def test_nc1_at_a_width_that_splits_a_block_is_taken_at_that_width_in_wider_features(L):
    """n = [8, 5, 5, 5, 1], lambda = 0.01, bias: hidden width 2 splits the block of three equal kappa among the
    surviving modes, so the geometry metrics are NaN and Sigma_B has rank 2 (the width) at every minimizer of that
    width, not between_class_rank of the full width (4).  Features of dimension 5 > 2 (the width-2 minimizer
    embedded in R^5, as in the test above) perturbed by eps in every entry: the rank is cut at the width, not at the
    feature dimension, and NC1 falls like eps^2, while at rank 4 it divides the perturbation's between-class spread
    in the two other directions by its within-class spread and does not fall."""
    n, lam = [8, 5, 5, 5, 1], 0.01
    assert m.between_class_rank(ufm.structure(n, lam, lam, L=L, bias=True)) == 4
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=True, d=2)
    R = np.eye(5)[:, :2]
    Ws, H = [mz.Ws[0] @ R.T, *mz.Ws[1:]], R @ mz.H
    y = imb.class_labels(n)
    rng = np.random.default_rng(33)
    for eps in (1e-4, 1e-6):
        H_eps = H + eps * rng.standard_normal(H.shape)
        Ws_eps = [W + eps * rng.standard_normal(W.shape) for W in Ws]
        out = m.collapse_metrics(H_eps.T, y, Ws_eps, lam, lam)
        assert all(np.isnan(out[k]) for k in ("nc2_w", "nc2_h", "nc2_wh", "nc3"))
        assert 0.0 < out["nc1"] <= 100 * eps**2, (eps, out["nc1"])
        np.testing.assert_allclose(out["nc1"], m.nc1(H_eps.T, y, rank=2), rtol=1e-12)
        assert m.nc1(H_eps.T, y, rank=4) > 0.1


def test_a_width_that_cuts_a_block_of_collapsed_modes_leaves_one_target():
    """n = [8, 5, 5, 5, 1] bias-free at lam = 0.1, L = 1: kappa = sqrt(8), sqrt(5) three times, 1, and only the top
    mode survives (sqrt(5) < N lam = 2.4).  Widths 2 and 3 cut the block of three equal kappa, but its modes are
    all collapsed, so every minimizer has the one geometry: the metrics vanish at the width-2 and width-3
    minimizers, as at the full-width one."""
    n, lam = [8, 5, 5, 5, 1], 0.1
    for d in (2, 3, 5):
        mz = ufm.global_minimizer(n, lam, lam, L=1, bias=False, d=d)
        out = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, lam, lam, bias=False)
        assert all(0.0 <= out[k] <= 1e-12 for k in KEYS), (d, out)  # finite


def test_cases_cover_collapsed_and_repeated_modes():
    """The parametrization above really exercises partial collapse and repeated singular values."""
    partial, repeated = 0, 0
    for n, lam, L, bias in CASES:
        st = ufm.structure(n, lam, lam, L=L, bias=bias)
        alive = st.s_product > 0
        dead = np.count_nonzero(~alive) - (1 if bias else 0)
        partial += dead > 0 and alive.any()
        blocks = imb.mode_blocks(st.kappa, alive)
        repeated += any(B.size > 1 for B in blocks)
    assert partial >= 4 and repeated >= 4


def test_cases_at_lambda_6e3_collapse_what_their_comments_say():
    """L = 1, lam = 6e-3 on the CIFAR profile: a mode survives iff kappa > N sqrt(lam_W lam_H) = 18."""
    n, lam = np.array(CIFAR), 6e-3
    threshold = n.sum() * lam
    assert threshold == pytest.approx(18.0)
    for bias in (True, False):
        st = ufm.structure(n, lam, lam, L=1, bias=bias)
        alive = st.s_product > 0
        np.testing.assert_array_equal(alive, st.kappa > threshold)
        assert np.count_nonzero(alive) == 4 and np.count_nonzero(~alive) == 6
    # bias-free the modes are the classes (kappa = sqrt(n_k)): the collapsed ones are the smallest six
    st = ufm.structure(n, lam, lam, L=1, bias=False)
    collapsed_counts = np.rint(st.kappa[st.s_product == 0] ** 2).astype(int)
    assert sorted(collapsed_counts.tolist()) == [100, 100, 200, 200, 300, 300]


@pytest.mark.parametrize("n, lam, L, bias", [c for c in CASES if c[1] < 5e-3])
def test_metrics_order_one_at_random_points(n, lam, L, bias):
    rng = np.random.default_rng(7)
    Ws, X = _random_point(n, L, len(n) + 3, rng)
    out = m.collapse_metrics(X, imb.class_labels(n), Ws, lam, lam, bias=bias)
    for key in KEYS:
        assert out[key] > 0.1, (key, out[key])
    assert out["nc2_w"] <= 2 and out["nc2_h"] <= 2 and out["nc2_wh"] <= 2
    assert out["nc3"] <= 2 * np.sqrt(len(n))


@pytest.mark.parametrize("bias", [True, False])
def test_rotation_of_features_leaves_metrics_unchanged(bias):
    """H -> Q H, W_1 -> W_1 Q^T leaves the network function and every metric unchanged."""
    rng = np.random.default_rng(3)
    n, L, d = EMNIST_SMALL, 3, 30
    Ws, X = _random_point(n, L, d, rng, offset=0.5)
    Q = _random_rotation(d, rng)
    before = m.collapse_metrics(X, imb.class_labels(n), Ws, 1e-3, 2e-3, bias=bias)
    Ws_rot = [Ws[0] @ Q.T] + Ws[1:]
    after = m.collapse_metrics(X @ Q.T, imb.class_labels(n), Ws_rot, 1e-3, 2e-3, bias=bias)
    for key in KEYS:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-10)


def test_rotation_at_minimizer_keeps_zero():
    rng = np.random.default_rng(4)
    n, L = CIFAR, 3
    mz = ufm.global_minimizer(n, 1e-3, 1e-3, L=L, bias=True, d=16)
    Q = _random_rotation(16, rng)
    Ws = [mz.Ws[0] @ Q.T] + mz.Ws[1:]
    out = m.collapse_metrics((Q @ mz.H).T, imb.class_labels(n), Ws, 1e-3, 1e-3)
    assert _worst(out) <= 1e-8


def test_geometry_metrics_do_not_depend_on_the_svd_basis():
    """Rotating U_B and V_B together inside a block of equal kappa (another valid SVD of M)."""
    rng = np.random.default_rng(5)
    n = EMNIST_SMALL
    st = ufm.structure(n, 1e-3, 1e-3, L=1, bias=True)
    blocks = imb.mode_blocks(st.kappa, st.s_product > 0)
    big = max(blocks, key=len)
    assert big.size >= 4
    Q = _random_rotation(big.size, rng)
    U2, V2 = st.U.copy(), st.V.copy()
    U2[:, big] = st.U[:, big] @ Q
    V2[:, big] = st.V[:, big] @ Q
    np.testing.assert_allclose(U2 @ np.diag(st.kappa) @ V2.T, st.M, atol=1e-10)
    st2 = dataclasses.replace(st, U=U2, V=V2)
    Ws, X = _random_point(n, 1, 30, rng)
    K = len(n)
    P = Ws[0]
    means, counts = m.class_means(X, imb.class_labels(n))
    E = means.T * np.sqrt(counts)
    a = m.geometry_metrics(P, E, st)
    b = m.geometry_metrics(P, E, st2)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-10)
    # the printed per-mode NC3 does depend on the basis (erratum M2)
    pa = pm.printed_nc3(P, st.U, E @ st.V)
    pb = pm.printed_nc3(P, U2, E @ V2)
    assert abs(pa - pb) > 1e-3
    assert P.shape == (K, 30)


def test_bias_nc3_weighs_the_strengths_inside_a_block_of_equal_kappa():
    """With a bias a block of equal kappa is compared as a whole: every mode aligned, P = U diag(a) R^T and
    E = R diag(b) V^T, NC3 is positive for independent strengths inside the blocks of 4 and 19 modes, and 0 to
    rounding when a and b are each constant on every block (as at a minimizer) or proportional on it."""
    rng = np.random.default_rng(21)
    n = EMNIST_SMALL
    st = ufm.structure(n, 1e-4, 1e-4, L=1, bias=True)
    blocks = imb.mode_blocks(st.kappa, st.s_product > 0)
    assert sorted(B.size for B in blocks if B.size > 1) == [4, 19]
    for B in blocks:
        assert np.ptp(st.s_product[B]) == 0 and np.ptp(st.s_features[B]) == 0
    K = len(n)
    R, _ = np.linalg.qr(rng.standard_normal((40, K)))
    a, b = rng.uniform(0.5, 2.0, (2, K))

    def nc3(a, b):
        return m.geometry_metrics(st.U @ np.diag(a) @ R.T, R @ np.diag(b) @ st.V.T, st)["nc3"]

    a_eq, b_eq, b_prop = a.copy(), b.copy(), b.copy()
    for B in blocks:
        a_eq[B], b_eq[B], b_prop[B] = a[B[0]], b[B[0]], b[B[0]] * a[B]
    assert nc3(a, b) > 0.5
    assert nc3(a_eq, b_eq) < 1e-12 and nc3(a, b_prop) < 1e-12
    # unequal only inside the block of 4: NC3 is that block's term alone
    B4 = next(B for B in blocks if B.size == 4)
    a_4 = a_eq.copy()
    a_4[B4] = a[B4]
    x, y = a_4[B4] / np.linalg.norm(a_4[B4]), b_eq[B4] / np.linalg.norm(b_eq[B4])
    np.testing.assert_allclose(nc3(a_4, b_eq), np.sqrt(4 * np.sum((x - y) ** 2)), rtol=1e-10)


def test_bias_free_nc3_compares_class_with_class_as_appendix_c_does():
    """Without a bias M = D is diagonal and its modes are the classes: NC3 is Appendix C's sum over the surviving
    classes of ||w_k/||w_k|| - g_k/||g_k||||^2, also where classes of equal count make a block of equal kappa
    (which a comparison of the block as a whole would not be: it also weighs the norms of the block's classes
    against each other), and it does not change when U, V are turned inside such a block."""
    rng = np.random.default_rng(12)
    n = np.array([10, 10, 20, 20, 30, 30, 40, 40, 50, 50])
    st = ufm.structure(n, 1e-3, 1e-3, L=1, bias=False)
    assert max(map(len, imb.mode_blocks(st.kappa, st.s_product > 0))) == 2 and (st.s_product > 0).all()
    Ws, X = _random_point(n, 1, 16, rng)
    P = Ws[0]
    means, counts = m.class_means(X, imb.class_labels(n))
    E = means.T * np.sqrt(counts)

    def appendix_c(P, G):
        w, g = P / np.linalg.norm(P, axis=1)[:, None], (G / np.linalg.norm(G, axis=0)).T
        return float(np.sqrt(np.sum((w - g) ** 2)))

    np.testing.assert_allclose(m.geometry_metrics(P, E, st)["nc3"], appendix_c(P, E), rtol=1e-12)
    # aligned class by class, with unequal norms inside every pair of equal counts: NC3 is 0, NC2^W is not
    aligned = (E / np.linalg.norm(E, axis=0)).T * rng.uniform(0.5, 3.0, size=(len(n), 1))
    out = m.geometry_metrics(aligned, E, st)
    assert out["nc3"] <= 1e-12 and out["nc2_w"] > 0.1
    # another SVD of D, turned inside each pair: the classes stay the basis
    U2, V2 = st.U.copy(), st.V.copy()
    for B in imb.mode_blocks(st.kappa, st.s_product > 0):
        if B.size > 1:
            Q = _random_rotation(B.size, rng)
            U2[:, B], V2[:, B] = st.U[:, B] @ Q, st.V[:, B] @ Q
    st2 = dataclasses.replace(st, U=U2, V=V2)
    np.testing.assert_allclose(U2 @ np.diag(st.kappa) @ V2.T, st.M, atol=1e-12)
    for key, value in m.geometry_metrics(P, E, st2).items():
        np.testing.assert_allclose(value, m.geometry_metrics(P, E, st)[key], rtol=1e-10)
    # collapsed classes are left out (the 0/0 of erratum M1): at this decay the six smallest collapse (the modes
    # are in decreasing kappa = sqrt(n), the classes in the order of n)
    st_c = ufm.structure(n, 2e-2, 2e-2, L=1, bias=False)
    lost_counts = np.round(st_c.kappa[st_c.s_product == 0] ** 2)
    keep = np.flatnonzero(~np.isin(n, lost_counts))
    assert keep.tolist() == [6, 7, 8, 9]
    np.testing.assert_allclose(m.geometry_metrics(P, E, st_c)["nc3"], appendix_c(P[keep], E[:, keep]), rtol=1e-12)


def test_class_by_class_nc3_needs_the_diagonal_of_d_and_keeps_a_faint_surviving_class():
    """The class basis is taken only for a diagonal M with non-negative entries (D); a diagonal M with a negative
    entry has U != V and keeps the modes, one with a zero entry is still D.  A class whose mode survives faintly (1e-170
    of the largest) still counts."""
    rng = np.random.default_rng(13)
    d = 7
    R, _ = np.linalg.qr(rng.standard_normal((d, 4)))
    M = np.diag([3.0, -2.0, 1.5, 1.0])
    U, kappa, Vt = np.linalg.svd(M)
    s = np.array([2.0, 1.0, 0.5, 0.25])
    st = ufm.Structure(M=M, U=U, kappa=kappa, V=Vt.T, s_product=s, s_features=s)
    P, E = U @ np.diag(s) @ R.T, R @ np.diag(s) @ Vt
    assert _worst(m.geometry_metrics(P, E, st)) <= 1e-12
    D = np.diag([2.0, 1.0])
    st_d = ufm.Structure(M=D, U=np.eye(2), kappa=np.array([2.0, 1.0]), V=np.eye(2), s_product=np.array([1.0, 1e-170]),
                         s_features=np.array([1.0, 1e-170]))
    P_d = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    E_d = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # class 2's mean points elsewhere than its row of P
    np.testing.assert_allclose(m.geometry_metrics(P_d, E_d, st_d)["nc3"], np.sqrt(2.0), rtol=1e-12)
    # a zero on the diagonal is non-negative too: classes 0 and 1 of equal entry are compared one by one, each
    # aligned (w_1 = 2 g_1), so NC3 = 0, where one block {0, 1} would weigh their norms against each other
    D0 = np.diag([1.0, 1.0, 0.0])
    st_0 = ufm.Structure(M=D0, U=np.eye(3), kappa=np.diag(D0).copy(), V=np.eye(3), s_product=np.diag(D0).copy(),
                         s_features=np.diag(D0).copy())
    assert m.geometry_metrics(np.diag([1.0, 2.0, 0.0]), np.diag([1.0, 1.0, 0.0]), st_0)["nc3"] == 0.0


def test_nc2_wh_sees_only_the_outputs_of_the_class_means():
    """NC2^WH depends on the head and the features only through P E = W_L...W_1 H-bar D: the same product split
    otherwise between P and E (P A, A^-1 E) gives the same NC2^WH, while NC2^W, NC2^H and NC3 change."""
    rng = np.random.default_rng(5)
    n = np.array([50, 40, 30, 20, 10])
    K, d = n.size, 8
    for bias in (False, True):
        st = ufm.structure(n, 1e-3, 1e-3, L=2, bias=bias)
        P, E = rng.standard_normal((K, d)), rng.standard_normal((d, K))
        A = rng.standard_normal((d, d)) + 3 * np.eye(d)
        one, other = m.geometry_metrics(P, E, st), m.geometry_metrics(P @ A, np.linalg.solve(A, E), st)
        np.testing.assert_allclose(other["nc2_wh"], one["nc2_wh"], rtol=1e-10)
        assert all(abs(other[k] - one[k]) > 1e-3 for k in ("nc2_w", "nc2_h", "nc3"))


@pytest.mark.parametrize("L", [1, 3, 6])
@pytest.mark.parametrize("bias", [False, True])
def test_nc2_wh_at_labels_against_the_class_mean_outputs_of_the_closed_form_minimizer(L, bias):
    """The NC2^WH of class-mean outputs equal to the labels (P E = M) is the normalized distance of M from the
    global minimizer's own P E, built here from the minimizer's weights and features (nclib.ufm.global_minimizer):
    0 for equal counts without a bias, where every mode is scaled down alike, larger than 0 for unequal ones, and
    falling towards 0 with the decays."""
    n = np.array([500, 400, 300, 200, 100, 100])
    lam = 1e-3
    g = ufm.global_minimizer(n, lam, lam, L=L, bias=bias)
    PE = ufm.head_product(g.Ws) @ ufm.weighted_class_means(g.H, n)  # the minimizer's class-mean outputs, times D
    M = ufm.problem_matrix(n, bias)
    want = np.linalg.norm(M / np.linalg.norm(M) - PE / np.linalg.norm(PE))
    got = m.nc2_wh_at_labels(n, lam, lam, L=L, bias=bias)
    np.testing.assert_allclose(got, want, rtol=1e-8)
    assert got > 1e-4
    assert m.nc2_wh_at_labels(n, lam / 100, lam / 100, L=L, bias=bias) < got / 10
    if not bias:
        assert m.nc2_wh_at_labels(np.full(6, 300), lam, lam, L=L, bias=False) <= 1e-14


def test_nc2_wh_at_labels_where_modes_collapse():
    """A mode with kappa > 0 that collapses scales to 0, not alike the survivors: with one survivor the value is
    the distance of M/||M|| from its top mode, sqrt(2 - 2 kappa_1/||kappa||), not 0; when every mode collapses
    the target is 0 and the value is 1."""
    n = [100, 50, 50, 50, 50]
    st = ufm.structure(n, 0.0304, 0.0304, L=1, bias=True)
    strength = st.s_product * st.s_features
    assert strength[0] > 0 and np.all(strength[1:] == 0) and np.all(st.kappa[1:4] > 0)  # modes 2-4 collapse
    want = np.sqrt(2 - 2 * st.kappa[0] / np.linalg.norm(st.kappa))  # 0.897
    np.testing.assert_allclose(m.nc2_wh_at_labels(n, 0.0304, 0.0304, L=1, bias=True), want, rtol=1e-12)
    for bias in (False, True):
        assert np.all(ufm.structure(n, 1.0, 1.0, L=1, bias=bias).s_product == 0)  # every mode collapses
        np.testing.assert_allclose(m.nc2_wh_at_labels(n, 1.0, 1.0, L=1, bias=bias), 1.0, rtol=1e-15)


def test_nc2_wh_at_labels_refuses_bad_input_by_name():
    for kwargs, name in (({"n": [5, 0, 3]}, "n"), ({"lam_H": -1.0}, "lam_H"), ({"lam_W": 0.0}, "lam_W"),
                         ({"L": 0}, "L")):
        args = {"n": [5, 4, 3], "lam_W": 1e-3, "lam_H": 1e-3, "L": 2, **kwargs}
        with pytest.raises(ValueError, match=rf"^{name} must"):
            m.nc2_wh_at_labels(args["n"], args["lam_W"], args["lam_H"], L=args["L"], bias=False)


def test_geometry_metrics_at_structured_points_with_arbitrary_spectra():
    """The definitions vanish at P = U diag(s) R^T, E = R diag(e) V^T for any targets s, e."""
    rng = np.random.default_rng(6)
    K, d = 6, 11
    M = rng.standard_normal((K, K))
    U, kappa, Vt = np.linalg.svd(M)
    s = np.array([3.0, 2.0, 1.5, 0.5, 0.0, 0.0])
    e = np.array([1.0, 4.0, 0.2, 0.1, 0.0, 0.0])
    st = ufm.Structure(M=M, U=U, kappa=kappa, V=Vt.T, s_product=s, s_features=e)
    R, _ = np.linalg.qr(rng.standard_normal((d, K)))
    P = U @ np.diag(s) @ R.T
    E = R @ np.diag(e) @ Vt
    out = m.geometry_metrics(P, E, st)
    assert _worst(out) <= 1e-12
    # scaling P and E (the metrics are scale free)
    out = m.geometry_metrics(7.0 * P, 0.01 * E, st)
    assert _worst(out) <= 1e-12
    # misaligned features: NC3 and NC2^{WH} see it, NC2^W and NC2^H do not
    R2, _ = np.linalg.qr(rng.standard_normal((d, K)))
    out = m.geometry_metrics(P, R2 @ np.diag(e) @ Vt, st)
    assert out["nc2_w"] <= 1e-12 and out["nc2_h"] <= 1e-12
    assert out["nc3"] > 0.1 and out["nc2_wh"] > 0.1


def _near_minimizer_point():
    """A point 1e-3 from the minimizer (counts [6, 4, 3, 2], L = 2, bias), where every metric is small but not 0."""
    n, lam = [6, 4, 3, 2], 1e-2
    mz = ufm.global_minimizer(n, lam, lam, L=2, bias=True, d=6)
    rng = np.random.default_rng(26)
    Ws = [W + 1e-3 * rng.standard_normal(W.shape) for W in mz.Ws]
    H = mz.H + 1e-3 * rng.standard_normal(mz.H.shape)
    return n, lam, H, Ws


EXTREME_SCALES = [10.0**k for k in (-150, -100, -60, -20, 20, 60, 100, 150)]
# the features alone, to the bottom of the float64 range (at 1e-308 the smallest entries are subnormal) and to its top
FEATURE_SCALES = [1e-308, 1e-300, 1e-200, 1e200, 1e300, 1e307, 1e308]


def test_metrics_do_not_change_when_the_weights_and_features_are_scaled():
    """Every metric is scale free in P, E and each W_j: the weights and features scaled together by 1e-150 to 1e150
    (the product W_L...W_1 by powers of two to 2^-1800 and 2^1800), the features alone from 1e-308 to 1e308, and
    P and E apart by 1e-150 to 1e150 and by 2^-1000 to 2^1000. A power of two scales exactly and leaves the values
    bit for bit; a power of ten rounds each scaled entry (relative 1.1e-16, more for an entry it makes subnormal),
    which moves a metric by a few units of 1e-16, hence atol 1e-14."""
    n, lam, H, Ws = _near_minimizer_point()
    y = imb.class_labels(n)
    base = m.collapse_metrics(H.T, y, Ws, lam, lam)
    assert 1e-4 < min(base[k] for k in KEYS[1:]) and _worst(base) < 1e-2  # small, and not 0
    for s in EXTREME_SCALES:
        for t in (s, 1.0, 1.0 / s):
            for Ws_s in ([s * Ws[0], Ws[1]], [Ws[0], s * Ws[1]], [s * Ws[0], t * Ws[1]]):
                out = m.collapse_metrics(t * H.T, y, Ws_s, lam, lam)
                np.testing.assert_allclose([out[k] for k in KEYS], [base[k] for k in KEYS], rtol=0, atol=1e-14)
    # the features alone: NC1's SVD of entries near 1e308 and inverse singular values near 1e-308 stay in range,
    # and the class means of features near the top of the range, whose sums overflow, stay finite
    for t in FEATURE_SCALES:
        out = m.collapse_metrics(t * H.T, y, Ws, lam, lam)
        np.testing.assert_allclose([out[k] for k in KEYS], [base[k] for k in KEYS], rtol=0, atol=1e-14)
        np.testing.assert_allclose(m.nc1(t * H.T, y), base["nc1"], rtol=0, atol=1e-14)
    means, printed = m.class_means(H.T, y)[0], pm.printed_nc1(H.T, y)
    for k in (-1000, 1020, 1024):  # 2^1024 H: entries to 0.71 * 2^1024 = 1.3e308, sums of two past the range
        assert np.array_equal(m.class_means(np.ldexp(H.T, k), y)[0], np.ldexp(means, k))
        assert m.nc1(np.ldexp(H.T, k), y) == base["nc1"] and pm.printed_nc1(np.ldexp(H.T, k), y) == printed
    # the products W_2 W_1 of these would overflow (2^1800) and underflow (2^-1800) if formed as given
    for k in (-900, -300, 300, 900):
        out = m.collapse_metrics(H.T, y, [2.0**k * W for W in Ws], lam, lam)
        assert {key: out[key] for key in KEYS[1:]} == {key: base[key] for key in KEYS[1:]}
    # a product that overflows even though W_2's largest entry is already in [0.5, 1), where the running product
    # starts: 3 x 0.9 x 1e308 = 2.7e308 per entry, so W_1 must be rescaled too
    rng = np.random.default_rng(29)
    X_small, y_small = rng.standard_normal((5, 4)), np.array([0, 0, 1, 1, 1])
    W_2 = np.full((2, 3), 0.9)
    with np.errstate(over="ignore"):
        assert not np.all(np.isfinite(_samples.unit_peak(W_2) @ np.full((3, 4), 1e308)))
    huge = m.collapse_metrics(X_small, y_small, [np.full((3, 4), 1e308), W_2], lam, lam, bias=False)
    plain = m.collapse_metrics(X_small, y_small, [np.ones((3, 4)), W_2], lam, lam, bias=False)
    np.testing.assert_allclose([huge[k] for k in KEYS], [plain[k] for k in KEYS], rtol=0, atol=1e-14)
    # geometry_metrics itself, P and E scaled apart
    st = ufm.structure(n, lam, lam, L=2, bias=True)
    means, counts = m.class_means(H.T, y)
    P, E = Ws[1] @ Ws[0], means.T * np.sqrt(counts)
    ref = m.geometry_metrics(P, E, st)
    for s in EXTREME_SCALES:
        for t in (s, 1.0, 1.0 / s):
            out = m.geometry_metrics(s * P, t * E, st)
            np.testing.assert_allclose([out[k] for k in ref], [ref[k] for k in ref], rtol=0, atol=1e-14)
    for k in (-1000, -500, 500, 1000):
        assert m.geometry_metrics(2.0**k * P, 2.0**-k * E, st) == ref


def test_complete_collapse_conventions():
    """All targets zero: NC2 is 0 at P = E = 0 and 1 elsewhere; NC3 and NC1 (Sigma_B of rank 0 at the
    minimizer) are empty sums, 0; the printed NC1 (rank K - 1) is positive at the random point."""
    n, lam = [30, 20, 10], 0.1
    st = ufm.structure(n, lam, lam, L=2, bias=True)
    assert not np.any(st.s_product)
    mz = ufm.global_minimizer(n, lam, lam, L=2, bias=True, d=5)
    at_min = m.collapse_metrics(mz.H.T, imb.class_labels(n), mz.Ws, lam, lam, bias=True)
    assert all(v == 0.0 for v in at_min.values())
    rng = np.random.default_rng(8)
    Ws, X = _random_point(n, 2, 5, rng)
    out = m.collapse_metrics(X, imb.class_labels(n), Ws, lam, lam, bias=True)
    for key in ("nc2_w", "nc2_h", "nc2_wh"):
        np.testing.assert_allclose(out[key], 1.0, rtol=1e-12)
    assert out["nc3"] == 0.0 and out["nc1"] == 0.0
    assert m.between_class_rank(st) == 0 and m.nc1(X, imb.class_labels(n)) > 0.1


@pytest.mark.parametrize("n", [CIFAR, EMNIST_SMALL])
def test_zero_head_against_surviving_targets(n):
    """P = 0 while the targets survive: each NC2 involving P is 1, and NC3 counts every surviving mode, a block of
    a repeated kappa (EMNIST_SMALL's 60s and 5s) contributing |B| to the sum under the root, not 1."""
    st = ufm.structure(n, 1e-3, 1e-3, L=1, bias=True)
    rng = np.random.default_rng(9)
    E = rng.standard_normal((12, len(n)))
    out = m.geometry_metrics(np.zeros((len(n), 12)), E, st)
    np.testing.assert_allclose([out["nc2_w"], out["nc2_wh"]], [1.0, 1.0], rtol=1e-14)
    np.testing.assert_allclose(out["nc3"], np.sqrt(np.count_nonzero(st.s_product)), rtol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n", [CIFAR, EMNIST_SMALL])
def test_zero_head_and_zero_features_against_surviving_targets(n, bias):
    """P = 0 and E = 0 together (W = 0, H = 0, a critical point of the objective), the targets surviving: NC3 is
    sqrt of the summed sizes |B| of the surviving blocks (classes without a bias), as when either side alone
    vanishes, never 0; the same for tiny P, E and for P = 0 against tiny E. collapse_metrics at W = 0, H = 0 too."""
    st = ufm.structure(n, 1e-3, 1e-3, L=1, bias=bias)
    surviving = int(np.count_nonzero(st.s_product))
    assert surviving >= len(n) - 1
    K, rng = len(n), np.random.default_rng(10)
    d = K + 4  # every surviving mode fits
    out = m.geometry_metrics(np.zeros((K, d)), np.zeros((d, K)), st)
    np.testing.assert_allclose(out["nc3"], np.sqrt(surviving), rtol=1e-14)
    np.testing.assert_allclose([out[k] for k in ("nc2_w", "nc2_h", "nc2_wh")], 1.0, rtol=1e-14)
    for P, E in ((1e-300 * rng.standard_normal((K, d)), np.zeros((d, K))),
                 (np.zeros((K, d)), 1e-300 * rng.standard_normal((d, K)))):
        np.testing.assert_allclose(m.geometry_metrics(P, E, st)["nc3"], np.sqrt(surviving), rtol=1e-12)
    y = imb.class_labels(n)
    at_origin = m.collapse_metrics(np.zeros((y.size, d)), y, [np.zeros((K, d))], 1e-3, 1e-3, bias=bias)
    np.testing.assert_allclose(at_origin["nc3"], np.sqrt(surviving), rtol=1e-14)


def test_normalized_distance():
    assert m.normalized_distance(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    np.testing.assert_allclose(m.normalized_distance(np.eye(2), np.zeros((2, 2))), 1.0, rtol=1e-15)
    np.testing.assert_allclose(m.normalized_distance(np.eye(2), -np.eye(2)), 2.0, rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# NC1
# ---------------------------------------------------------------------------------------------

def _nc1_direct(X, y):
    """tr(Sigma_W Sigma_B^+)/K exactly as printed in Section 5, with a d x d pseudo-inverse."""
    K = y.max() + 1
    N = y.size
    means = np.stack([X[y == k].mean(axis=0) for k in range(K)])
    h_G = X.mean(axis=0)
    C = X - means[y]
    S_W = C.T @ C / N
    A = (means - h_G).T
    S_B = A @ A.T / K
    return np.trace(S_W @ np.linalg.pinv(S_B, hermitian=True, rtol=1e-10)) / K


@pytest.mark.parametrize("d, n", [(8, [9, 7, 5, 3]), (20, [12, 12, 4, 4, 4]), (3, [6, 5, 4, 3, 2])])
def test_nc1_matches_direct_pinv(d, n):
    rng = np.random.default_rng(10)
    y = rng.permutation(imb.class_labels(n))  # labels in any order
    X = rng.standard_normal((y.size, d)) + rng.standard_normal((len(n), d))[y]
    np.testing.assert_allclose(m.nc1(X, y), _nc1_direct(X, y), rtol=1e-9)
    # separated means, no direction within rounding: nc1 is the plain thin-SVD computation bit for bit (the
    # features are read again about their midrange only where rounding decides a direction)
    N, K = y.size, len(n)
    Xs = np.ldexp(X, -int(np.frexp(np.abs(X).max())[1]))  # the exact rescaling to a largest |entry| in [0.5, 1)
    onehot = np.zeros((K, N))
    onehot[y, np.arange(N)] = 1.0
    means = (onehot @ Xs) / onehot.sum(axis=1)[:, None]
    A = (means - (np.asarray(n) @ means) / N).T
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    Z = (Xs - means[y]) @ (U[:, :K - 1] / s[:K - 1])
    assert m.nc1(X, y) == np.einsum("ij,ij->", Z, Z) / N


def test_nc1_invariances_and_float32():
    rng = np.random.default_rng(11)
    n = EMNIST_SMALL
    y = imb.class_labels(n)
    d = 40
    X = rng.standard_normal((y.size, d)) + 3 * rng.standard_normal((len(n), d))[y]
    ref = m.nc1(X, y)
    Q = _random_rotation(d, rng)
    np.testing.assert_allclose(m.nc1(X @ Q.T, y), ref, rtol=1e-10)
    np.testing.assert_allclose(m.nc1(5.0 * X, y), ref, rtol=1e-10)
    # a large common offset (ReLU features): the rank cap K - 1 keeps the null direction out
    np.testing.assert_allclose(m.nc1(X + 1e4, y), ref, rtol=1e-6)
    np.testing.assert_allclose(m.nc1(X.astype(np.float32), y), ref, rtol=1e-5)
    assert m.nc1(X.astype(np.float32), y) == m.nc1(X.astype(np.float32).astype(np.float64), y)


def test_nc1_collapsed_features_and_degenerate_cases():
    y = imb.class_labels([3, 2, 2])
    means = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    assert m.nc1(means[y], y) == 0.0
    # all class means equal but features spread: no between-class scatter
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, -1.0], [2.0, 0.0], [-2.0, 0.0]])
    assert m.nc1(X, y) == np.inf
    assert m.nc1(np.zeros((7, 2)), y) == 0.0


def test_class_means_that_coincide_to_rounding_give_the_sigma_b_zero_values():
    """Class means equal in exact arithmetic but not bit for bit: A = [h_k - h_G] holds rounding errors only, which
    nc1 and the printed form must read as Sigma_B = 0 (inf and 0), not invert into ~1e30."""
    y2, y3 = np.repeat(np.arange(3), 2), np.repeat(np.arange(3), 3)
    cases = [(np.tile([[0.1], [0.3]], (3, 1)), y2),  # each class: 0.1 and 0.3
             (np.tile([[0.1, 0.7], [0.3, 0.5], [0.2, 0.6]], (3, 1)), y3)]
    for X, y in cases:
        means, _ = m.class_means(X, y)
        assert np.any(means != X.mean(axis=0))  # not equal bit for bit
        for scale in (1.0, 1e-200, 1e200):  # the reading is relative to the size of the features
            assert m.nc1(scale * X, y) == np.inf
            assert pm.printed_nc1(scale * X, y) == 0.0
        assert m.nc1(X + 1e4, y) == np.inf and pm.printed_nc1(X + 1e4, y) == 0.0
    # all features equal, three per class: the means are off in the last bit, Sigma_W and Sigma_B are 0 to rounding
    X_equal = np.tile([0.1, 0.7], (9, 1))
    assert np.any(m.class_means(X_equal, y3)[0] != X_equal[:3])
    assert m.nc1(X_equal, y3) == 0.0 and pm.printed_nc1(X_equal, y3) == 0.0
    # a small separation far above rounding is kept: two classes at 0.1, 0.3 and 0.1 + delta, 0.3 + delta
    # (Sigma_W = 0.01, Sigma_B = (delta/2)^2, NC1 = 0.01 / (delta/2)^2 / 2)
    delta = 1e-10
    X_sep = np.array([[0.1], [0.3], [0.1 + delta], [0.3 + delta]])
    y_sep = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(m.nc1(X_sep, y_sep), 0.02 / delta**2, rtol=1e-4)
    np.testing.assert_allclose(pm.printed_nc1(X_sep, y_sep), 0.02 / delta**2, rtol=1e-4)


def test_a_separation_just_above_the_rounding_level_is_kept():
    """Two classes at -1/2, 1/2 and -1/2 + delta, 1/2 + delta (d = 1) with delta = 8 eps, every step exact:
    A = [-delta/2, delta/2], Sigma_W = 1/4 and NC1 = 1/(2 delta^2).  The rounding level of the features as given,
    (N + 2) eps max|x|, is 3 eps (to rounding) and the separation delta/2 = 4 eps lies above it; about the midrange
    the level is (N + 3) eps (1/2 + delta/2) = 3.5 eps, below it too.  So both forms keep it and give the value by
    hand, where a level 1.5 times larger would read the two classes as coinciding means (inf, and 0 as printed)."""
    eps = np.finfo(np.float64).eps
    delta = 8 * eps
    X = np.array([[-0.5], [0.5], [-0.5 + delta], [0.5 + delta]])
    y = np.array([0, 0, 1, 1])
    assert np.all(X - np.array([[-0.5], [0.5], [-0.5], [0.5]]) == [[0.0], [0.0], [delta], [delta]])  # exact
    assert (4 + 2) * eps * (0.5 + delta) < delta / 2 < 1.5 * (4 + 3) * eps * (0.5 + delta / 2)
    np.testing.assert_allclose(m.nc1(X, y), 0.5 / delta**2, rtol=1e-12)
    np.testing.assert_allclose(pm.printed_nc1(X, y), 0.5 / delta**2, rtol=1e-12)


def test_the_rounding_level_is_n_plus_2_eps_and_n_plus_3_eps_about_a_reference():
    """The rounding level of each entry of A and C per unit of max |x_ij|: (N + 2) eps for the features as given,
    (N + 3) eps for the features read about their midrange, which are rounded once more."""
    eps = np.finfo(np.float64).eps
    X = np.array([[-0.5, 2.0], [0.5, 1.0], [0.25, -3.0], [1.0, 1.5], [0.0, 2.5]])  # N = 5, max |x| = 3
    np.testing.assert_allclose(fc.rounding_level(X), (5 + 2) * eps * 3.0, rtol=1e-15)
    np.testing.assert_allclose(fc.rounding_level(X, centred=True), (5 + 3) * eps * 3.0, rtol=1e-15)
    Xc, level = fc.about_midrange(X)
    np.testing.assert_allclose(level, (5 + 3) * eps * np.abs(Xc).max(), rtol=1e-15)


def test_a_separation_within_the_rounding_bound_of_a_is_dropped_and_one_above_it_kept():
    """The price of never inverting noise: nc1 drops a singular value of A = [h_k - h_G] within the bound on its
    rounding error, sqrt(d K) (N + 2) eps max|x| (separation_cutoff), even where the separation is real.  Three
    classes in d = 2, the third the second shifted by delta along the second axis, with a wide within-class spread
    (max|x| near 1) and class means 2^-20 apart along the first, so that the relative cutoff max(d, K) eps s_max
    lies far below delta.  Features on a grid of 2^-48, in pairs about class means that sum to 0: the means,
    h_G = 0, A and C are exact, and NC1 = (1/N) tr(C^T (A A^T)^-1 C) follows in rational arithmetic.  A separation
    1.3 times the bound is kept and gives that value (about 1e28); one 0.65 times the bound is dropped, read as
    absent, and NC1 is that of the classes merged (delta = 0): by hand (1/N) sum_i c_i0^2 / ||a||^2 with A = e_0 a^T,
    a = s (-2, 1, 1)."""
    from fractions import Fraction
    eps = np.finfo(np.float64).eps
    rng = np.random.default_rng(7)
    K, d, s = 3, 2, 2.0**-20
    y_half = np.arange(K)
    y = np.concatenate([y_half, y_half])
    dev = rng.integers(-2**8, 2**8 + 1, size=(K, d)) / 2**8
    C = np.vstack([dev, -dev])
    N = y.size
    merged = float(sum(Fraction(c) ** 2 for c in C[:, 0]) / (N * 6 * Fraction(s) ** 2))
    kept = dropped = 0
    for delta in (0.0, 2.0**-47, 2.0**-48):
        means = np.array([[-2 * s, -delta], [s, 0.0], [s, delta]])  # sum 0: h_G = 0
        X = np.vstack([means[y_half] + dev, means[y_half] - dev])
        assert np.array_equal(X - np.vstack([means[y_half]] * 2), C)  # stored exactly
        bound = m.separation_cutoff(N, K, d) * np.abs(X).max()
        np.testing.assert_allclose(bound, np.sqrt(d * K) * (N + 2) * eps * np.abs(X).max(), rtol=1e-15)
        # the cutoff nc1 applies to these features: sqrt(d K) times the level of each entry of A
        np.testing.assert_allclose(bound, np.sqrt(d * K) * fc.rounding_level(X), rtol=1e-15)
        s_A = np.linalg.svd(means.T, compute_uv=False)  # A = means^T, exact
        assert s_A[1] > max(d, K) * eps * s_A[0] or delta == 0  # every separation passes the relative cutoff
        if s_A[1] > bound:
            kept += 1
            assert s_A[1] < 1.5 * bound
            G = [[sum(Fraction(means[k, i]) * Fraction(means[k, j]) for k in range(K)) for j in range(d)]
                 for i in range(d)]  # A A^T
            det = G[0][0] * G[1][1] - G[0][1] * G[1][0]
            G_inv = [[G[1][1] / det, -G[0][1] / det], [-G[1][0] / det, G[0][0] / det]]
            exact = sum(Fraction(c[i]) * G_inv[i][j] * Fraction(c[j]) for c in C for i in range(d)
                        for j in range(d)) / N
            assert float(exact) > 1e27
            np.testing.assert_allclose(m.nc1(X, y), float(exact), rtol=1e-9)
        else:
            dropped += delta > 0
            assert s_A[1] > 0.6 * bound or delta == 0
            # the first singular vector turns by about delta / s = 2^-28 away from the axis of the merged classes
            np.testing.assert_allclose(m.nc1(X, y), merged, rtol=1e-12 if delta == 0 else 1e-7)
    assert kept == 1 and dropped == 1
    for bad, name in (((0, 1, 1), "N"), ((2, 0, 1), "K"), ((2, 1, 1.5), "d"), ((2, 3, 1), "K")):
        with pytest.raises(ValueError, match=f"^{name}"):
            m.separation_cutoff(*bad)


def _means_of_rank(K: int, d: int, q: int, seed: int = 41):
    """Features (2K x d) and labels of K classes of two samples each, exact in float64: class means of rank q (small
    integers), each pair of samples at +-dev about its mean (dev a multiple of 2^-8), so that NC1 at rank q is exact
    up to the rounding of the metric itself, and every shift by a power of ten up to 1e8 is exact too."""
    rng = np.random.default_rng(seed)
    means = (rng.integers(-4, 5, size=(K, q)) @ rng.integers(-4, 5, size=(q, d))).astype(np.float64)
    y_half = np.arange(K)
    dev = rng.integers(-2**8, 2**8 + 1, size=(K, d)) / 2**8
    return np.vstack([means[y_half] + dev, means[y_half] - dev]), np.concatenate([y_half, y_half])


def test_nc1_inverts_no_direction_the_class_means_do_not_span():
    """Class means in a 3-dimensional subspace of R^16 with K = 12: A = [h_k - h_G] has rank 3 < K - 1 in exact
    arithmetic, and the rounding errors of its other directions scale with the features (a common offset, a wide
    within-class spread), not with A, so that a cutoff relative to its largest singular value alone keeps them and
    NC1 divides by them (about 1e18 to 1e34 here).  Integer class means and samples in pairs about their class mean
    (mean +- deviation, so that the means of the stored features lie in the subspace): on a grid of 2^-8 with
    integer offsets (every shift exact), and with deviations of 2^16 that fill the 53 bits (their class sums are
    rounded).  In exact arithmetic NC1 is then NC1 at rank 3 of the features without the offset: nc1 and
    collapse_metrics give it, as the d x d pseudo-inverse at rank 3 does."""
    rng = np.random.default_rng(41)
    n = np.array([40, 30, 30, 20, 20, 16, 12, 10, 8, 6, 4, 2])  # even counts: samples in pairs
    K, d, q = n.size, 16, 3
    means = (rng.integers(-4, 5, size=(K, q)) @ rng.integers(-4, 5, size=(q, d))).astype(np.float64)
    assert np.linalg.matrix_rank(means) == q
    y_half = imb.class_labels(n // 2)
    y = np.concatenate([y_half, y_half])
    Ws = [rng.standard_normal((K, d))]
    assert m.between_class_rank(ufm.structure(n, 1e-3, 1e-3, L=1, bias=True)) == K - 1  # collapse_metrics: rank K - 1
    per_column = rng.integers(-10**6, 10**6, size=d).astype(np.float64)
    grid = rng.integers(-2**8, 2**8 + 1, size=(y_half.size, d)) / 2**8
    wide = 2.0**16 * rng.integers(-2**51, 2**51, size=(y_half.size, d)) / 2**51
    for dev, offsets in ((grid, (0.0, 1e2, 1e4, per_column)), (wide, (0.0,))):
        X = np.vstack([means[y_half] + dev, means[y_half] - dev])
        assert np.array_equal(X - np.vstack([means[y_half]] * 2), np.vstack([dev, -dev]))  # stored exactly
        ref = pm.printed_nc1(X, y, rank=q)
        np.testing.assert_allclose(m.nc1(X, y, rank=q), ref, rtol=1e-9)
        for offset in offsets:
            X_off = X + offset
            assert np.array_equal(X_off - offset, X)  # the shift is exact
            np.testing.assert_allclose(m.nc1(X_off, y), ref, rtol=1e-9)
            np.testing.assert_allclose(m.collapse_metrics(X_off, y, Ws, 1e-3, 1e-3)["nc1"], ref, rtol=1e-9)
    # wide features (d = 2048, N = 6, K = 3, means of rank 1): the rounding error of A from the offset has a norm
    # near sqrt(d K) times its entries' bound, so that the bound on the entries alone would keep it (NC1 ~ 1e15)
    X, y = _means_of_rank(K=3, d=2048, q=1)
    ref = m.nc1(X, y, rank=1)
    assert 1e-6 < ref < 1e-5
    for offset in (1e6, 1e8):
        assert np.array_equal(X + offset - offset, X)  # the shift is exact
        np.testing.assert_allclose(m.nc1(X + offset, y), ref, rtol=1e-9)


def test_nc1_drops_the_rounding_of_the_svd_itself():
    """Features wider than they are many (d = 2048, N = 4, K = 3) with class means on one line, every entry and
    every mean exact, so that A = w a^T (w = +-1 entries, a = (2, -1, -3)) is computed exactly and has rank 1: its
    second singular value as the SVD returns it is the SVD's own rounding, relative to ||A||_2, above the bound on
    the rounding of A's entries that grows with N, and dropped by the relative cutoff max(d, K) eps.  Class 0 holds
    the two samples 2w +- z/8, so NC1 = (1/N) 2 (w.z/8)^2 / (||w||^2 ||w||^2 ||a||^2) by hand."""
    d, y = 2048, np.array([0, 0, 1, 2])
    a = np.array([2.0, -1.0, -3.0])  # sum_k n_k a_k = 0 with n = (2, 1, 1): h_G = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        w, z = rng.choice([-1.0, 1.0], size=d), rng.integers(-8, 9, size=d) / 8
        X = np.vstack([a[0] * w + z / 8, a[0] * w - z / 8, a[1] * w, a[2] * w])
        by_hand = 2 * (w @ z / 8) ** 2 / (4 * d * d * (a @ a))
        np.testing.assert_allclose(m.nc1(X, y), by_hand, rtol=1e-10)
        np.testing.assert_allclose(m.nc1(X + 1e4, y), by_hand, rtol=1e-10)


def test_a_common_offset_is_no_collapse():
    """Features not collapsed, with an offset common to every entry so large that the spread about it lies below
    the rounding level of the features as given, (N + 2) eps max|x|: read again about their midrange, they still
    give the NC1 of the features without the offset, never 0 (collapse) or inf (coinciding means); 0 stays for
    features all equal, inf for class means that coincide, whatever the offset."""
    rng = np.random.default_rng(31)
    n = imb.class_counts(imb.PROFILES["emnist-letters"])
    y = imb.class_labels(n)
    d = 8
    X = 1e-6 * rng.standard_normal((n.size, d))[y] + 1e-7 * rng.standard_normal((y.size, d))
    ref, printed_ref = m.nc1(X, y), pm.printed_nc1(X, y)
    assert 1e-3 < ref < 1e-1
    for offset in (3e6, 1e7, -3e6):
        level = (y.size + 2) * np.finfo(np.float64).eps * np.abs(X + offset).max()
        means, _ = m.class_means(X + offset, y)
        assert np.abs(means - means.mean(axis=0)).max() < level  # below the level of the features as given
        np.testing.assert_allclose(m.nc1(X + offset, y), ref, rtol=1e-3)
        np.testing.assert_allclose(pm.printed_nc1(X + offset, y), printed_ref, rtol=1e-3)
    # a per-column offset, and the coinciding cases at the same offsets
    offsets = 1e7 * rng.standard_normal(d)
    np.testing.assert_allclose(m.nc1(X + offsets, y), ref, rtol=1e-3)
    y3 = np.repeat(np.arange(3), 3)
    X_same = np.tile([[0.1, 0.7], [0.3, 0.5], [0.2, 0.6]], (3, 1))  # three classes with the same three samples
    for offset in (0.0, 3e6, 1e7):
        assert m.nc1(X_same + offset, y3) == np.inf and pm.printed_nc1(X_same + offset, y3) == 0.0
        assert m.nc1(np.full((9, 2), 0.1 + offset), y3) == 0.0



def test_class_means_that_coincide_about_the_midrange_still_give_the_sigma_b_zero_values():
    """Three classes with the same three samples, plus an offset: the class means coincide in exact arithmetic, and
    read again about their midrange they still differ from the global mean in the last bits. Both forms must read
    that A as zero to the rounding level about the midrange (inf, and 0 as printed), not invert its rounding errors
    into NC1 ~ 1e31."""
    y = np.repeat(np.arange(3), 3)
    X_same = np.tile(np.random.default_rng(6).standard_normal((3, 2)), (3, 1))
    for offset in (0.0, 0.3, 0.5, 1.0, 1.856, -2.5):
        X = X_same + offset
        Xc, _ = fc.about_midrange(X)
        means, _ = m.class_means(Xc, y)
        assert np.any(means != Xc.mean(axis=0))  # about the midrange, still not equal bit for bit
        assert m.nc1(X, y) == np.inf and pm.printed_nc1(X, y) == 0.0

def test_nc1_against_hand_computed_example():
    # two classes on a line: h = (-1, 1 | 3, 5) in 1-D; means -> 0, 4; h_G = 2; Sigma_W = 1; Sigma_B = 4
    X = np.array([[-1.0], [1.0], [3.0], [5.0]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(m.nc1(X, y), (1.0 / 4.0) / 2, rtol=1e-14)


# ---------------------------------------------------------------------------------------------
# bias error, global mean (the accuracy is tested in test_accuracy.py)
# ---------------------------------------------------------------------------------------------

def test_bias_error_global_mean():
    y = imb.class_labels([3, 1])
    np.testing.assert_allclose(m.bias_error(np.array([0.75, 0.25]), y), 0.0, atol=1e-16)
    np.testing.assert_allclose(m.bias_error(np.array([1.0, 0.0]), y), np.sqrt(2) / 4, rtol=1e-14)
    np.testing.assert_allclose(m.global_mean_norm(np.array([[3.0, 0.0], [1.0, 4.0]])), np.hypot(2.0, 2.0), rtol=1e-15)


def test_global_mean_norm_neither_overflows_nor_underflows():
    """||h_G|| of features scaled by 1e-200 or 1e200 (whose squares under- or overflow) and of features whose column
    sum overflows: the scaled value, with no floating-point warning."""
    X = np.array([[3.0, 0.0], [1.0, 4.0]])  # h_G = (2, 2); at 4e307 its squares overflow, its sums (1.6e308) do not
    with np.errstate(all="raise"):
        for scale in (1e-200, 1e200, 4e307):
            np.testing.assert_allclose(m.global_mean_norm(scale * X), scale * np.hypot(2.0, 2.0), rtol=1e-15)
    # a column sum past the float64 range (3e308), its mean (1.5e308) within it: h_G = 1e308 (1.5, 0.5)
    X = 1e308 * np.array([[1.5, 0.0], [1.5, 1.0]])
    with np.errstate(over="ignore"):
        assert not np.all(np.isfinite(X.sum(axis=0)))
    with np.errstate(all="raise"):
        np.testing.assert_allclose(m.global_mean_norm(X), 1e308 * np.hypot(1.5, 0.5), rtol=1e-15)
    assert m.global_mean_norm(np.zeros((3, 2))) == 0.0
    with np.errstate(all="raise"):  # an entry far below the largest, whose square underflows, changes nothing
        assert m.global_mean_norm(np.array([[1.0, 1e-200], [1.0, 1e-200]])) == 1.0


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_bad_input_raises_value_error_naming_the_argument():
    rng = np.random.default_rng(12)
    n = [4, 3, 2]
    y = imb.class_labels(n)
    Ws, X = _random_point(n, 2, 5, rng)
    with pytest.raises(ValueError, match="labels"):
        m.collapse_metrics(X, np.where(y == 2, 3, y), Ws, 1e-3, 1e-3)  # label 3 >= K
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, y - 1)  # negative label
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, y[:-1])  # one label short
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, np.where(y == 1, 0, y))  # class 1 has no sample
    with pytest.raises(ValueError, match="labels"):
        m.collapse_metrics(X, np.where(y == 2, 1, y), Ws, 1e-3, 1e-3)  # class 2 of K=3 empty
    # K is the number of rows of W_L: one more row than the labels have classes, more rows than samples, no rows
    for W_L in (np.vstack([Ws[1], Ws[1][:1]]), rng.standard_normal((y.size + 1, Ws[1].shape[1])), Ws[1][:0]):
        with pytest.raises(ValueError, match=r"Ws\[-1\] \(W_L\)"):
            m.collapse_metrics(X, y, [Ws[0], W_L], 1e-3, 1e-3)
    # a label equal to K, every class 0..K-1 also present: one class too many, not an empty one
    with pytest.raises(ValueError, match="^labels"):
        m.nc1(X, y, num_classes=int(y.max()))
    with pytest.raises(ValueError, match="^labels"):
        m.collapse_metrics(X, y, [Ws[0], Ws[1][:int(y.max())]], 1e-3, 1e-3)  # W_L of K = max(y) rows
    with pytest.raises(ValueError, match="^labels"):
        m.bias_error(np.ones(int(y.max())) / y.max(), y, num_classes=int(y.max()))
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, y + 0.5)
    with pytest.raises(ValueError, match="features"):
        m.nc1(X[:, :, None], y)
    with pytest.raises(ValueError, match="features"):
        m.nc1(np.where(X > 1, np.nan, X), y)
    with pytest.raises(ValueError, match=r"Ws\[0\]"):
        m.collapse_metrics(X[:, :4], y, Ws, 1e-3, 1e-3)  # W_1 has 5 columns, features have 4
    with pytest.raises(ValueError, match=r"Ws\[1\]"):
        m.collapse_metrics(X, y, [Ws[0], Ws[1][:, :3]], 1e-3, 1e-3)  # W_2 does not chain onto W_1
    for j, bad in ((0, np.nan), (1, np.inf), (1, -np.inf)):  # a head weight without a value has no direction
        Ws_bad = [W.copy() for W in Ws]
        Ws_bad[j][0, 0] = bad
        with pytest.raises(ValueError, match=rf"^Ws\[{j}\]"):
            m.collapse_metrics(X, y, Ws_bad, 1e-3, 1e-3)
    with pytest.raises(ValueError, match="Ws"):
        m.collapse_metrics(X, y, [], 1e-3, 1e-3)
    with pytest.raises(ValueError, match="lam_W"):
        m.collapse_metrics(X, y, Ws, [1e-3, 1e-3, 1e-3], 1e-3)  # three lambdas for L = 2
    with pytest.raises(ValueError, match="lam_W"):
        m.collapse_metrics(X, y, Ws, -1e-3, 1e-3)
    with pytest.raises(ValueError, match="lam_H"):
        m.collapse_metrics(X, y, Ws, 1e-3, 0.0)
    with pytest.raises(ValueError, match="bias"):
        m.collapse_metrics(X, y, Ws, 1e-3, 1e-3, bias="yes")
    with pytest.raises(ValueError, match="^E must"):
        m.geometry_metrics(np.ones((3, 5)), np.ones((4, 3)), ufm.structure(n, 1e-3, 1e-3))
    with pytest.raises(ValueError, match="structure"):
        m.geometry_metrics(np.ones((3, 5)), np.ones((5, 3)), object())
    for P, E in ((np.zeros((3, 0)), np.zeros((0, 3))), (np.zeros((0, 5)), np.zeros((5, 0)))):  # d = 0, K = 0
        with pytest.raises(ValueError, match="^P must"):
            m.geometry_metrics(P, E, ufm.structure(n, 1e-3, 1e-3))
    with pytest.raises(ValueError, match="^b must"):
        m.bias_error(np.ones(2), y)
    for labels in ([0, 1], [0, 0, 1, 1, 1]):  # two classes, three biases: b is named, never num_classes
        with pytest.raises(ValueError, match="^b must"):
            m.bias_error(np.ones(3) / 3, labels)
    with pytest.raises(ValueError, match="^b must"):
        m.bias_error(np.ones(2) / 2, [0, 1, 2], num_classes=3)
    np.testing.assert_allclose(m.bias_error([0.6, 0.4], [0, 0, 0, 1, 1], num_classes=2), 0.0, atol=1e-16)
    with pytest.raises(ValueError, match="^G_left"):  # U must be K x K for P of K rows
        pm.printed_nc3(np.ones((3, 5)), np.eye(2), np.ones((5, 3)))
    with pytest.raises(ValueError, match="^G_right"):
        pm.printed_nc3(np.ones((3, 5)), np.eye(3), np.ones((3, 5)))
    with pytest.raises(ValueError, match="rtol"):
        m.nc1(X, y, rtol=-1.0)
    for cutoff in (1.0, 2.0):  # would drop even the largest singular value: NC1 = 0 at any point
        with pytest.raises(ValueError, match="^rtol"):
            m.nc1(X, y, rtol=cutoff)
        with pytest.raises(ValueError, match="^rcond"):
            pm.printed_nc1(X, y, rcond=cutoff)
    # just below 1 only the largest between-class direction is kept, in both forms
    assert m.nc1(X, y, rtol=0.999) == m.nc1(X, y, rank=1) > 0
    np.testing.assert_allclose(pm.printed_nc1(X, y, rcond=0.999), m.nc1(X, y, rank=1), rtol=1e-9)


def test_block_rtol_joins_the_modes_whose_kappa_lie_within_it():
    """With a bias, n = (50, 10^8, 10^8 + 1, 10^8 + 2): the two largest kappa differ by 5e-9 of the largest, within
    the default block_rtol (1e-8), so NC3 compares them as one block; at block_rtol = 1e-12 they are two blocks of
    one mode.  Each value is the formula of geometry_metrics over those blocks."""
    n = [50, 10**8, 10**8 + 1, 10**8 + 2]
    st = ufm.structure(n, 1e-9, 1e-9, L=1, bias=True)
    assert np.all(st.s_product[:3] > 0) and st.s_product[3] == 0
    gap = st.kappa[0] - st.kappa[1]
    assert 1e-12 * st.kappa[0] < gap <= imb.BLOCK_RTOL * st.kappa[0] and st.kappa[1] - st.kappa[2] > 1e-3 * st.kappa[0]
    rng = np.random.default_rng(43)
    P, E = rng.standard_normal((4, 5)), rng.standard_normal((5, 4))

    def nc3(blocks):
        unit = lambda X: X / np.linalg.norm(X)  # noqa: E731
        return np.sqrt(sum(len(B) * np.linalg.norm(unit(P.T @ st.U[:, B]) - unit(E @ st.V[:, B])) ** 2
                           for B in blocks))

    joined, apart = m.geometry_metrics(P, E, st)["nc3"], m.geometry_metrics(P, E, st, block_rtol=1e-12)["nc3"]
    np.testing.assert_allclose(joined, nc3([[0, 1], [2]]), rtol=1e-12)
    np.testing.assert_allclose(apart, nc3([[0], [1], [2]]), rtol=1e-12)
    assert abs(joined - apart) > 0.01


def test_structure_block_rtol_and_empty_labels_are_refused_by_name():
    """Each field of a structure is checked under its own name (a NaN in U is not reported as the target T, text
    not left to numpy's conversion), block_rtol under its own, and empty labels before any reduction."""
    n = [3, 2, 2]
    st = ufm.structure(n, 1e-3, 1e-3)
    rng = np.random.default_rng(27)
    P, E = rng.standard_normal((3, 4)), rng.standard_normal((4, 3))
    U_nan = st.U.copy()
    U_nan[0, 0] = np.nan
    bad_fields = [("M", st.M[:2]), ("M", np.nan * st.M), ("U", U_nan), ("U", np.full((3, 3), "a")), ("U", st.U[:2]), ("V", np.inf * st.V),
                  ("V", st.V.astype(complex)), ("kappa", np.append(st.kappa, 1.0)), ("kappa", -st.kappa),
                  ("kappa", ["a", "b", "c"]), ("s_product", [np.nan, 1.0, 0.0]), ("s_product", -st.s_product - 1),
                  ("s_product", ["a", "b", "c"]), ("s_features", st.s_features[:2]), ("s_features", [True] * 3)]
    for field, value in bad_fields:
        with pytest.raises(ValueError, match=f"^structure.{field} must"):
            m.geometry_metrics(P, E, dataclasses.replace(st, **{field: value}))
    for value in (["a", "b", "c"], [np.nan, 1.0, 0.0], [-1.0, 1.0, 0.0], []):
        with pytest.raises(ValueError, match="^structure.s_product must"):
            m.between_class_rank(dataclasses.replace(st, s_product=value))
    for block_rtol in (-1, "x", np.nan, True):
        with pytest.raises(ValueError, match="^block_rtol must"):
            m.geometry_metrics(P, E, st, block_rtol=block_rtol)
    assert m.geometry_metrics(P, E, st, block_rtol=0.0) == m.geometry_metrics(P, E, st)  # distinct kappas here
    for call in (lambda: m.bias_error([0.5], []), lambda: m.bias_error([], []),
                 lambda: m.bias_error([0.5], np.array([], dtype=np.int64), num_classes=1)):
        with pytest.raises(ValueError, match="^labels must"):
            call()


def test_collapse_metrics_accepts_per_layer_lambdas():
    """Per-layer decays whose product kills the weakest mode, where the first layer's decay used for every layer
    would keep it: the metrics read the whole list (the targets depend on the decays through their product only,
    so the list reversed gives the same targets)."""
    n, L, lam_H = [6, 4, 2], 3, 1e-3
    Pi = mino.product_threshold(mino.problem_spectrum(n, False), sum(n), L)
    a = (1.5 * Pi[2] / lam_H / 6) ** (1 / 3)  # lam_H a 2a 3a = 1.5 Pi_3, while lam_H a^3 = Pi_3 / 4
    lam = [a, 2 * a, 3 * a]
    mz = ufm.global_minimizer(n, lam, lam_H, L=L, bias=False, d=5)
    labels = imb.class_labels(n)
    assert mino.alive_at_minimum(n, lam, lam_H, L, False).tolist() == [True, True, False]
    for decays in (lam, lam[::-1]):
        assert _worst(m.collapse_metrics(mz.H.T, labels, mz.Ws, decays, lam_H, bias=False)) <= 1e-12
    first_only = m.collapse_metrics(mz.H.T, labels, mz.Ws, [a] * L, lam_H, bias=False)
    assert first_only["nc2_w"] > 0.1 and first_only["nc2_h"] > 0.1  # targets with a third mode the point lacks


def test_float32_input_is_computed_in_float64():
    """float32 features and weights: only their own rounding (unit roundoff 6e-8) is left."""
    n = CIFAR
    mz = ufm.global_minimizer(n, 1e-3, 1e-3, L=3, bias=True, d=16)
    X32 = mz.H.T.astype(np.float32)
    Ws32 = [W.astype(np.float32) for W in mz.Ws]
    out32 = m.collapse_metrics(X32, imb.class_labels(n), Ws32, 1e-3, 1e-3)
    assert _worst(out32) <= 1e-6
    out64 = m.collapse_metrics(X32.astype(np.float64), imb.class_labels(n), [W.astype(np.float64) for W in Ws32], 1e-3, 1e-3)
    assert out32 == out64


# ---------------------------------------------------------------------------------------------
# the printed forms (errata M1 and M3 of ch-errata-metrics)
# ---------------------------------------------------------------------------------------------

def test_printed_forms_at_the_minimizer():
    n, lam, L = CIFAR, 1e-3, 3
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=True, d=12)
    st = ufm.structure(n, lam, lam, L=L, bias=True)
    P = mz.Ws[2] @ mz.Ws[1] @ mz.Ws[0]
    means, counts = m.class_means(mz.H.T, imb.class_labels(n))
    E = means.T * np.sqrt(counts)
    up = pm.printed_upsilon(st, lam, lam, int(np.sum(n)), L)
    assert up["c"] == pytest.approx(1.0, rel=1e-15, abs=0)  # equal lambdas
    U, V, k = st.U, st.V, up["kappa"]
    assert pm.printed_nc2(U.T @ P @ P.T @ U, up["upsilon1"]) <= 1e-12
    # one Upsilon_2 cannot serve both E^T E and P E (erratum M3)
    assert pm.printed_nc2(U.T @ P @ E @ V, up["upsilon2_p1"] @ k) <= 1e-12
    assert pm.printed_nc2(V.T @ E.T @ E @ V, up["upsilon2_p1"] @ k @ k) > 0.1
    assert pm.printed_nc2(V.T @ E.T @ E @ V, up["upsilon2_p2"] @ k @ k) <= 1e-12
    assert pm.printed_nc2(U.T @ P @ E @ V, up["upsilon2_p2"] @ k) > 0.1
    # printed NC3 at exact zeros is 0/0 (erratum M1)
    R, _ = np.linalg.qr(np.random.default_rng(13).standard_normal((12, 10)))
    assert np.isnan(pm.printed_nc3(np.diag(st.s_product) @ R.T, np.eye(10), R @ np.diag(st.s_features)))
    assert np.isnan(pm.printed_nc2(np.zeros((2, 2)), np.eye(2)))


def test_printed_nc2_and_upsilon_refuse_bad_input_by_name():
    """A target of another shape is refused, not broadcast against X; the decay lam_H, the count N and a structure
    whose s_product has another length than kappa are refused by name."""
    for X, T in ((np.eye(3), np.ones((3, 1))), (np.ones((1, 3)), np.eye(3)), (np.eye(2), np.eye(3))):
        with pytest.raises(ValueError, match="^X and target"):
            pm.printed_nc2(X, T)
    st = ufm.structure([5, 3, 2], 1e-3, 1e-3, L=2, bias=True)
    assert pm.printed_upsilon(st, 1e-3, 1e-3, 10, 2)["upsilon1"].shape == (3, 3)
    for lam_H in (0.0, -1e-3, np.inf):
        with pytest.raises(ValueError, match="^lam_H"):
            pm.printed_upsilon(st, 1e-3, lam_H, 10, 2)
    for N in (0, -10, 2.5):
        with pytest.raises(ValueError, match="^N must"):
            pm.printed_upsilon(st, 1e-3, 1e-3, N, 2)
    for s_product in (st.s_product[:2], np.append(st.s_product, 1.0)):
        with pytest.raises(ValueError, match=r"^structure\.s_product"):
            pm.printed_upsilon(dataclasses.replace(st, s_product=s_product), 1e-3, 1e-3, 10, 2)
    # a negative strength, squared into the same targets as its absolute value, is refused as geometry refuses it
    flipped = dataclasses.replace(st, s_product=-st.s_product)
    for call in (lambda s: pm.printed_upsilon(s, 1e-3, 1e-3, 10, 2), lambda s: fc.between_class_rank(s)):
        with pytest.raises(ValueError, match=r"^structure\.s_product must hold non-negative numbers"):
            call(flipped)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("L, lam_W", [(1, 1e-3), (2, [2e-3, 1e-3]), (3, [1e-3, 2e-3, 4e-3])])
def test_corrected_metrics_are_the_printed_ones_where_every_mode_is_alone_and_alive(bias, L, lam_W):
    """At random points, where each mode is alone in its block and every mode that can survive does (distinct
    counts in no order, small decays, c != 1 for the per-layer decays), the corrected metrics are the printed forms
    with their right targets: NC2^W with Upsilon_1, NC2^H with Upsilon_2 at the power p = 2, NC2^{WH} at p = 1
    (erratum M3), NC3 the paper's per-mode sum without the collapsed zero mode of Y-bar (erratum M1). Without a
    bias these are Appendix C's forms, with the spectrum of D (erratum M4), in class order (U = V a permutation),
    E for H-bar in NC2 (M4), and NC3 comparing the rows of P with the columns of H-bar itself."""
    n, lam_H = [3, 9, 2, 7, 5], 1e-3
    K, N = len(n), sum(n)
    st = ufm.structure(n, lam_W, lam_H, L=L, bias=bias)
    alive = st.s_product > 0
    assert alive.sum() == K - bias and all(B.size == 1 for B in imb.mode_blocks(st.kappa, alive))
    rng = np.random.default_rng(28 + L)
    Ws, X = _random_point(n, L, K + 3, rng, offset=0.3)
    y = imb.class_labels(n)
    out = m.collapse_metrics(X, y, Ws, lam_W, lam_H, bias=bias)
    P = ufm.head_product(Ws)
    means, counts = m.class_means(X, y)
    Hbar = means.T
    E = Hbar * np.sqrt(counts)
    up = pm.printed_upsilon(st, lam_W, lam_H, N, L)
    U, V, k = st.U, st.V, up["kappa"]
    if bias:  # Section 5: the network in the bases U, V; the targets diagonal
        printed = {"nc2_w": pm.printed_nc2(U.T @ P @ P.T @ U, up["upsilon1"]),
                   "nc2_h": pm.printed_nc2(V.T @ E.T @ E @ V, up["upsilon2_p2"] @ k @ k),
                   "nc2_wh": pm.printed_nc2(U.T @ P @ E @ V, up["upsilon2_p1"] @ k)}
        w0, g0 = P.T @ U[:, ~alive], E @ V[:, ~alive]  # the zero mode, where the printed NC3 has 0/0 at a minimizer
        zero_mode = np.sum((w0 / np.linalg.norm(w0) - g0 / np.linalg.norm(g0)) ** 2)
        np.testing.assert_allclose(out["nc3"] ** 2 + zero_mode, pm.printed_nc3(P, U, E @ V) ** 2, rtol=1e-12)
    else:  # Appendix C: the network as it is, the diagonal targets put in class order
        np.testing.assert_array_equal(np.abs(U), np.abs(V))
        assert set(np.abs(U).ravel()) == {0.0, 1.0}
        printed = {"nc2_w": pm.printed_nc2(P @ P.T, U @ up["upsilon1"] @ U.T),
                   "nc2_h": pm.printed_nc2(E.T @ E, V @ up["upsilon2_p2"] @ k @ k @ V.T),
                   "nc2_wh": pm.printed_nc2(P @ E, U @ up["upsilon2_p1"] @ k @ V.T)}
        np.testing.assert_allclose(out["nc3"], pm.printed_nc3(P, np.eye(K), Hbar), rtol=1e-12)
    for key, value in printed.items():
        assert value > 0.1  # a random point, far from every target
        np.testing.assert_allclose(out[key], value, rtol=1e-12)


def test_printed_upsilon_constant_c_with_per_layer_lambdas():
    st = ufm.structure([5, 3, 2], [1e-3, 2e-3, 4e-3], 1e-3, L=3, bias=False)
    up = pm.printed_upsilon(st, [1e-3, 2e-3, 4e-3], 1e-3, 10, 3)
    np.testing.assert_allclose(up["c"], 1e-3**2 / (2e-3 * 4e-3), rtol=1e-14)
    np.testing.assert_allclose(up["c"] * np.diag(up["upsilon1"]), st.s_product**2, rtol=1e-14)
    with pytest.raises(ValueError, match="lam_W"):
        pm.printed_upsilon(st, [1e-3, 2e-3], 1e-3, 10, 3)


def test_labels_are_read_alike_by_every_metric():
    """Class indices are integers or integer-valued floats everywhere (as nclib.datafiles.check_labels reads them;
    the accuracy's reading is tested in test_accuracy.py), and an out-of-range value is reported as stored."""
    y = np.array([0, 0, 1, 2, 2])
    X = np.arange(10.0).reshape(5, 2) ** 2
    b = np.array([0.4, 0.2, 0.4])
    y_float = y.astype(np.float64)
    assert m.bias_error(b, y_float) == m.bias_error(b, y)
    assert m.nc1(X, y_float) == m.nc1(X, y)
    for bad in (y + 0.5, y.astype(bool), np.where(y == 2, np.nan, y_float)):
        for call in (lambda lab: m.bias_error(b, lab), lambda lab: m.nc1(X, lab)):
            with pytest.raises(ValueError, match="^labels"):
                call(bad)
    stray = np.array([0, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=f"^labels .*got the value {2**64 - 1}$"):
        m.nc1(np.eye(2), stray)
    with pytest.raises(ValueError, match=f"^labels .*got the value {2**64 - 1}$"):
        m.nc1(np.eye(2), stray, num_classes=2)


# ---------------------------------------------------------------------------------------------
# the printed NC1, with a d x d pseudo-inverse
# ---------------------------------------------------------------------------------------------

def _nc1_by_the_sums(X, y):
    """tr(Sigma_W Sigma_B^+)/K of Section 5 from its sums, sample by sample and class by class, with the
    pseudo-inverse of the (full-rank) Sigma_B as the inverse of its nonzero eigenvalues."""
    K, N, d = y.max() + 1, y.size, X.shape[1]
    means = [sum(X[i] for i in range(N) if y[i] == k) / np.sum(y == k) for k in range(K)]
    h_G = sum(X[i] for i in range(N)) / N
    S_W = sum(np.outer(X[i] - means[y[i]], X[i] - means[y[i]]) for i in range(N)) / N
    S_B = sum(np.outer(mk - h_G, mk - h_G) for mk in means) / K
    w, Q = np.linalg.eigh(S_B)
    keep = w > 1e-9 * w.max()
    assert keep.sum() == min(d, K - 1)  # the direction of n is the only null one
    return np.trace(S_W @ (Q[:, keep] / w[keep]) @ Q[:, keep].T) / K


@pytest.mark.parametrize("d, n", [(8, [9, 7, 5, 3]), (3, [6, 5, 4, 3, 2]), (30, [3, 2, 2, 1])])
def test_printed_nc1_against_the_sums_of_section_5(d, n):
    rng = np.random.default_rng(13)
    y = rng.permutation(imb.class_labels(n))
    X = rng.standard_normal((y.size, d)) + 2.0 * rng.standard_normal((len(n), d))[y]
    expected = _nc1_by_the_sums(X, y)
    np.testing.assert_allclose(pm.printed_nc1(X, y), expected, rtol=1e-9)
    np.testing.assert_allclose(pm.printed_nc1(X, y, rcond=1e-10), expected, rtol=1e-9)
    np.testing.assert_allclose(m.nc1(X, y), expected, rtol=1e-9)  # the thin-SVD form agrees where nothing is cut
    X32 = X.astype(np.float32)
    assert pm.printed_nc1(X32, y) == pm.printed_nc1(X32.astype(np.float64), y)  # float32 input, float64 arithmetic


def test_printed_nc1_cutoff_and_rank_by_hand():
    """Class means +-(2, 0)/sqrt 2 and +-(0, delta)/sqrt 2, two samples each, spread 0.1 along one axis:
    Sigma_W = diag(0.005, 0.005), Sigma_B = diag(1, delta^2/4), so NC1 = (0.005 + 0.005 * 4/delta^2)/4 while the
    cutoff keeps the small eigenvalue delta^2/4, and 0.005/4 once it drops it, also at rank 2."""
    delta = 1e-3
    means = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, delta], [0.0, -delta]]) / np.sqrt(2.0)
    y = np.repeat(np.arange(4), 2)
    X = means[y] + np.array([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]] * 2)
    both, top = (0.005 + 0.005 * 4 / delta**2) / 4, 0.005 / 4
    np.testing.assert_allclose(pm.printed_nc1(X, y), both, rtol=1e-8)
    np.testing.assert_allclose(pm.printed_nc1(X, y, rcond=1e-8), both, rtol=1e-8)  # delta^2/4 = 2.5e-7 kept
    np.testing.assert_allclose(pm.printed_nc1(X, y, rcond=1e-6), top, rtol=1e-12)  # and dropped
    np.testing.assert_allclose(pm.printed_nc1(X, y, rank=2), both, rtol=1e-8)
    np.testing.assert_allclose(pm.printed_nc1(X, y, rank=1), top, rtol=1e-12)
    # at rank 2 the cutoff still applies inside the rank cut: delta^2/4 is among the top two but below rcond = 1e-6
    np.testing.assert_allclose(pm.printed_nc1(X, y, rank=2, rcond=1e-6), top, rtol=1e-12)
    np.testing.assert_allclose(pm.printed_nc1(X, y, rank=2, rcond=1e-8), both, rtol=1e-8)
    assert pm.printed_nc1(X, y, rank=0) == 0.0
    np.testing.assert_allclose(m.nc1(X, y, rank=1), top, rtol=1e-12)



def test_printed_nc1_at_a_rank_keeps_an_eigenvalue_above_numpys_cutoff():
    """The class means of the test above with delta = 2e-6: Sigma_B = diag(1, delta^2/4 = 1e-12). The small
    eigenvalue lies above NumPy's default cutoff of pinv, 1e-15 times the largest, so the rank cut at 2 keeps it as
    ``numpy.linalg.pinv`` does, NC1 = (0.005 + 0.005 * 4/delta^2)/4 ~ 1.25e9; a cutoff of 1e-9 would drop it."""
    delta = 2e-6
    means = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, delta], [0.0, -delta]]) / np.sqrt(2.0)
    y = np.repeat(np.arange(4), 2)
    X = means[y] + np.array([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]] * 2)
    hk, _ = m.class_means(X, y)
    A, C = (hk - X.mean(axis=0)).T, X - hk[y]
    S_W, S_B = C.T @ C / y.size, A @ A.T / 4
    np.testing.assert_allclose(np.linalg.eigvalsh(S_B), [delta**2 / 4, 1.0], rtol=1e-9)
    with_pinv = float(np.trace(S_W @ np.linalg.pinv(S_B)) / 4)
    np.testing.assert_allclose(with_pinv, (0.005 + 0.005 * 4 / delta**2) / 4, rtol=1e-9)
    np.testing.assert_allclose(pm.printed_nc1(X, y, rank=2), with_pinv, rtol=1e-9)
    np.testing.assert_allclose(pm.printed_nc1(X, y), with_pinv, rtol=1e-9)

def test_printed_nc1_near_a_minimizer_with_collapsed_modes():
    """Erratum M6: counts [4, 4, 2, 2, 1, 1], L = 1, lambda = 0.1, bias (3 of 6 modes alive). The printed NC1 is 0 at
    the minimizer and a ratio of noise to noise at a perturbation of 1e-6; at rank 3 it is of the size eps^2 and
    equals :func:`nc1` at that rank."""
    n, lam = [4, 4, 2, 2, 1, 1], 0.1
    y = imb.class_labels(n)
    mz = ufm.global_minimizer(n, lam, lam, L=1, bias=True)
    assert pm.printed_nc1(mz.H.T, y) == 0.0
    rng = np.random.default_rng(24)
    eps = 1e-6
    for _ in range(3):
        H, _ = _perturbed(mz, eps, rng)
        assert pm.printed_nc1(H.T, y) > 0.01
        at_rank = pm.printed_nc1(H.T, y, rank=3)
        assert at_rank <= 10 * eps**2
        np.testing.assert_allclose(at_rank, m.nc1(H.T, y, rank=3), rtol=1e-6)


def test_printed_nc1_at_a_rank_inverts_only_that_many_eigenpairs_of_wide_features():
    """printed_nc1(rank=r) in d = 1024: K = 6 class means of rank 2, exact (integers, samples in pairs about them), so
    that NC1 at rank 2 is that of nc1.  The rank cut is taken inside the pseudo-inverse; a pinv of Sigma_B rebuilt
    at rank 2 would see the rounding of the rebuilt matrix in the other 1022 directions and, at NumPy's cutoff,
    invert some of it (NC1 ~ 1e8)."""
    q = 2
    X, y = _means_of_rank(K=6, d=1024, q=q)
    ref = m.nc1(X, y, rank=q)
    assert 1e-7 < ref < 1e-4
    np.testing.assert_allclose(pm.printed_nc1(X, y, rank=q), ref, rtol=1e-9)


def test_printed_nc1_refuses_bad_input_by_name():
    rng = np.random.default_rng(25)
    y = imb.class_labels([3, 2, 2])
    X = rng.standard_normal((7, 4))
    with pytest.raises(ValueError, match="^rcond"):
        pm.printed_nc1(X, y, rcond=-1e-10)
    with pytest.raises(ValueError, match="^rcond"):
        pm.printed_nc1(X, y, rcond="small")
    for bad in (3, -1, 1.5, True):
        with pytest.raises(ValueError, match="^rank"):
            pm.printed_nc1(X, y, rank=bad)  # K - 1 = 2 at most
    with pytest.raises(ValueError, match="^rank"):
        pm.printed_nc1(X[:, :1], y, rank=2)  # d = 1: Sigma_B has one eigenvalue
    with pytest.raises(ValueError, match="^labels"):
        pm.printed_nc1(X, y[:-1])
    with pytest.raises(ValueError, match="^features"):
        pm.printed_nc1(X[:, :, None], y)
    with pytest.raises(ValueError, match="^num_classes"):
        pm.printed_nc1(X, y, num_classes=0)


# ---------------------------------------------------------------------------------------------
# NC1 at the rank of Sigma_B at the minimizer (collapsed modes, erratum M6)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, lam, L, bias", CASES)
def test_between_class_rank_is_the_rank_of_sigma_b_at_the_minimizer(n, lam, L, bias):
    mz = ufm.global_minimizer(n, lam, lam, L=L, bias=bias, d=len(n) + 3)
    st = ufm.structure(n, lam, lam, L=L, bias=bias)
    means, counts = m.class_means(mz.H.T, imb.class_labels(n))
    A = (means - counts @ means / counts.sum()).T
    s = np.linalg.svd(A, compute_uv=False)
    numerical_rank = int(np.count_nonzero(s > 1e-10 * s[0])) if s[0] > 0 else 0
    assert m.between_class_rank(st) == numerical_rank
    assert m.between_class_rank(st) == min(np.count_nonzero(st.s_product), len(n) - 1)


def _perturbed(mz, eps, rng):
    """The minimizer plus a perturbation of relative size eps in every parameter."""
    H = mz.H + eps * np.linalg.norm(mz.H) / np.sqrt(mz.H.size) * rng.standard_normal(mz.H.shape)
    Ws = [W + eps * np.linalg.norm(W) / np.sqrt(W.size) * rng.standard_normal(W.shape) for W in mz.Ws]
    return H, Ws


def test_nc1_continuous_at_a_minimizer_with_collapsed_modes():
    """Counts [4, 4, 2, 2, 1, 1], L = 1, lambda = 0.1, bias: 3 of 6 modes alive. The printed NC1 (rank K - 1)
    at a perturbation of 1e-7 is a ratio of noise to noise; at the minimizer's rank it falls like eps^2."""
    n, lam = [4, 4, 2, 2, 1, 1], 0.1
    y = imb.class_labels(n)
    st = ufm.structure(n, lam, lam, L=1, bias=True)
    assert np.count_nonzero(st.s_product) == 3 and m.between_class_rank(st) == 3
    mz = ufm.global_minimizer(n, lam, lam, L=1, bias=True)
    rng = np.random.default_rng(20)
    printed = []
    for eps in (1e-3, 1e-5, 1e-7):
        for _ in range(4):
            H, Ws = _perturbed(mz, eps, rng)
            out = m.collapse_metrics(H.T, y, Ws, lam, lam)
            assert out["nc1"] <= 10 * eps**2, (eps, out["nc1"])
            assert max(out[k] for k in ("nc2_w", "nc2_h", "nc2_wh", "nc3")) <= 100 * eps
            assert m.nc1(H.T, y, rank=3) == out["nc1"]
            printed.append(m.nc1(H.T, y))
    assert min(printed[-4:]) > 0.01  # the printed NC1 does not go to 0 with eps


@pytest.mark.parametrize("n, lam, L, bias", CASES)
def test_nc1_positive_at_random_points_with_any_rank(n, lam, L, bias):
    rng = np.random.default_rng(21)
    Ws, X = _random_point(n, L, len(n) + 3, rng)
    st = ufm.structure(n, lam, lam, L=L, bias=bias)
    value = m.collapse_metrics(X, imb.class_labels(n), Ws, lam, lam, bias=bias)["nc1"]
    if m.between_class_rank(st) == 0:
        assert value == 0.0  # complete collapse: no between-class direction (the empty sum)
    else:
        assert value > 0.1


def test_nc1_rank_by_hand():
    # A = [h_k - h_G] has singular values 2 (along e_1) and 1 (along e_2); the spread lies along e_2
    # and along e_1, 0.1 each: rank 2 sees both (0.1^2/2^2 + 0.1^2/1^2 summed over samples), rank 1 only e_1
    means = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 1.0], [0.0, -1.0]]) / np.sqrt(2.0)
    y = np.repeat(np.arange(4), 2)
    dev = np.array([[0.1, 0.0], [-0.1, 0.0], [0.0, 0.1], [0.0, -0.1]] * 2)
    X = means[y] + dev
    # A A^T = diag(4, 1): singular values of A are 2 and 1; each sample's deviation is 0.1 along one axis
    full = np.mean([(0.1 / 2) ** 2 if d[0] else (0.1 / 1) ** 2 for d in dev])
    top = np.mean([(0.1 / 2) ** 2 if d[0] else 0.0 for d in dev])
    np.testing.assert_allclose(m.nc1(X, y), full, rtol=1e-12)
    np.testing.assert_allclose(m.nc1(X, y, rank=3), full, rtol=1e-12)
    np.testing.assert_allclose(m.nc1(X, y, rank=1), top, rtol=1e-12)
    assert m.nc1(X, y, rank=0) == 0.0


def test_nc1_unchanged_where_no_mode_but_the_zero_mode_collapses():
    """The figure runs' setting (counts 10..50, lambda = 1e-4, L = 1, 3, 6): rank K - 1, the printed NC1."""
    n = [10, 10, 20, 20, 30, 30, 40, 40, 50, 50]
    y = imb.class_labels(n)
    rng = np.random.default_rng(22)
    for bias in (True, False):
        for L in (1, 3, 6):
            st = ufm.structure(n, 1e-4, 1e-4, L=L, bias=bias)
            assert m.between_class_rank(st) == len(n) - 1
            Ws, X = _random_point(n, L, 16, rng, offset=0.3)
            assert m.collapse_metrics(X, y, Ws, 1e-4, 1e-4, bias=bias)["nc1"] == m.nc1(X, y)


def test_stray_labels_and_non_finite_distances_are_refused():
    rng = np.random.default_rng(23)
    X = rng.standard_normal((7, 3))
    y = imb.class_labels([3, 2, 2])
    stray = y.copy()
    stray[0] = 10**9
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, stray)  # refused before np.bincount allocates 10**9 counters
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, stray, num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        m.nc1(X, stray.astype(np.float64) * 1e21)
    with pytest.raises(ValueError, match="num_classes"):
        m.nc1(X, y, num_classes=10**9)
    with pytest.raises(ValueError, match="labels"):
        m.class_means(X, stray)
    with pytest.raises(ValueError, match="rank"):
        m.nc1(X, y, rank=3)  # K - 1 = 2 at most
    with pytest.raises(ValueError, match="rank"):
        m.nc1(X, y, rank=-1)
    with pytest.raises(ValueError, match="rank"):
        m.nc1(X, y, rank=1.5)
    with pytest.raises(ValueError, match="structure"):
        m.between_class_rank(object())
    for bad in (np.nan, np.inf):
        Z = np.eye(2)
        Z[0, 1] = bad
        with pytest.raises(ValueError, match="^X must"):
            m.normalized_distance(Z, np.eye(2))
        with pytest.raises(ValueError, match="^T must"):
            m.normalized_distance(np.eye(2), Z)
        with pytest.raises(ValueError, match="^X must"):
            pm.printed_nc2(Z, np.eye(2))  # NaN in, NaN out would pass for the printed 0/0
        with pytest.raises(ValueError, match="^target must"):
            pm.printed_nc2(np.eye(2), Z)
    np.testing.assert_allclose(m.normalized_distance(np.eye(2), 3 * np.eye(2)), 0.0, atol=1e-15)


def test_text_bools_and_complex_numbers_are_refused_by_name():
    """numpy would read these silently: text and bools as numbers, 'no' as True; each is refused naming the argument
    (the accuracy's complex and text scores are tested in test_accuracy.py)."""
    y = imb.class_labels([2, 1])
    cases = [
        (lambda: m.normalized_distance([["a"]], [[1.0]]), "X"),
        (lambda: m.normalized_distance([[1.0]], [[True]]), "T"),
        (lambda: m.bias_error(["0.5", "0.5"], y), "b"),
        (lambda: m.bias_error([True, False], y), "b"),
        (lambda: pm.printed_nc3(np.eye(2), np.eye(2), [["a", "b"], ["c", "d"]]), "G_right"),
        (lambda: pm.printed_nc2([["1", "2"]], [[1.0, 2.0]]), "X"),  # text is not read as numbers
        (lambda: pm.printed_nc2([[1.0, 2.0]], [["1", "2"]]), "target"),
        (lambda: pm.printed_upsilon(None, 0.1, 0.1, 10, 2), "structure"),
    ]
    # a list mixing bools with numbers, which numpy reads as numbers: labels, features and a layer of the head
    X, Ws = np.arange(10.0).reshape(5, 2), [np.ones((3, 2)), np.ones((2, 3))]
    mixed = [[True, 2.0], [0.0, 1.0], [1.0, 3.0], [2.0, 0.0], [1.0, 1.0]]
    y5 = [0, 1, 1, 0, 1]
    cases += [
        (lambda: m.nc1(X, [0, True, 1, 0, 1]), "labels"),
        (lambda: m.bias_error([0.5, 0.5], [0, True, 1]), "labels"),
        (lambda: m.class_means(X, [0, 1, 1, 0, np.True_]), "labels"),
        (lambda: m.nc1(mixed, y5), "features"),
        (lambda: m.global_mean_norm(mixed), "features"),
        (lambda: pm.printed_nc1(mixed, y5), "features"),
        (lambda: m.collapse_metrics(X, y5, [Ws[0], [[1.0, 0.0, True], [0.0, 1.0, 1.0]]], 1e-3, 1e-3), r"Ws\[1\]"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=f"^{name} must"):
            call()


def test_tensors_that_require_grad_are_read_by_their_values():
    """Trained weights and features are torch tensors that require grad, which numpy refuses with torch's
    RuntimeError naming no argument: every metric reads them detached, and gives what it gives for their values."""
    torch = pytest.importorskip("torch")
    n = [4, 3, 2]
    rng = np.random.default_rng(41)
    Ws, X = _random_point(n, 2, 5, rng)
    y = imb.class_labels(n)
    grad = lambda a: torch.tensor(a, requires_grad=True)  # noqa: E731
    expected = m.collapse_metrics(X, y, Ws, 1e-3, 1e-3)
    got = m.collapse_metrics(grad(X), torch.as_tensor(y), [grad(W) for W in Ws], 1e-3, 1e-3)
    assert got == expected and min(expected.values()) > 0.01
    assert m.nc1(grad(X), y) == expected["nc1"]
    np.testing.assert_array_equal(m.class_means(grad(X), y)[0], m.class_means(X, y)[0])
    assert m.global_mean_norm(grad(X)) == m.global_mean_norm(X) > 0
    assert m.bias_error(grad(np.full(3, 0.5)), torch.as_tensor(y)) == m.bias_error(np.full(3, 0.5), y) > 0
    P, E = rng.standard_normal((3, 5)), rng.standard_normal((5, 3))
    st = ufm.structure(n, 1e-3, 1e-3, L=1, bias=True)
    assert m.geometry_metrics(grad(P), grad(E), st) == m.geometry_metrics(P, E, st)
    assert m.normalized_distance(grad(P), grad(2 * P)) == 0.0


def test_ragged_input_is_refused_naming_the_argument():
    """Nested lists numpy cannot read as one array raise numpy's "inhomogeneous shape" ValueError, which names no
    argument; each metric names it instead."""
    X = np.random.default_rng(42).standard_normal((6, 3))
    ragged = [0, 0, 1, [1], 2, 2]
    cases = [
        (lambda: m.class_means(X, ragged), "labels"),
        (lambda: m.nc1(X, ragged), "labels"),
        (lambda: m.bias_error(np.full(3, 1 / 3), ragged), "labels"),
        (lambda: m.collapse_metrics(X, ragged, [np.ones((3, 3))], 1e-3, 1e-3), "labels"),
        (lambda: m.nc1([[1.0, 2.0], [3.0]], [0, 1]), "features"),
        (lambda: m.global_mean_norm([[1.0, 2.0], [3.0]]), "features"),
        (lambda: m.collapse_metrics(X, [0, 0, 1, 1, 2, 2], [[[1.0, 2.0, 3.0], [1.0]]], 1e-3, 1e-3), r"Ws\[-1\]"),
        (lambda: m.collapse_metrics(X, [0, 0, 1, 1, 2, 2], [[[1.0], [2.0, 3.0]], np.ones((3, 2))], 1e-3, 1e-3),
         r"Ws\[0\]"),
        (lambda: m.normalized_distance([[1.0, 2.0], [3.0]], np.eye(2)), "X"),
        (lambda: m.bias_error([0.5, [0.5]], [0, 1]), "b"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=f"^{name} "):
            call()
