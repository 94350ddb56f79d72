"""Unit tests of nclib.minority: the collapse decays of Theorems 4.1-4.3, the classes a global minimizer
classifies, the other critical points of Lemma A.2 (chapter ch-minority); where a run of the UFM trained by Adam
stands for a model, it comes from nclib.ufmtrain, whose own tests are tests/test_ufmtrain.py's."""
import numpy as np
import pytest

import nclib.accuracy as acc
import nclib.imbalance as imb
import nclib.minority as mino
import nclib.solvers as solvers
import nclib.ufm as ufm
import nclib.ufmtrain as ufmtrain


def _solver_alive(n, lam, L, bias):
    """Modes alive at the independent numerical minimizer (never uses the closed form)."""
    r = solvers.minimize(n, lam, lam, L=L, bias=bias, repeats=1)
    return int(mino.alive_modes(ufmtrain.mode_values(r.Ws, r.H, n, bias), mino.problem_spectrum(n, bias)).sum())


@pytest.mark.parametrize("n, L, bias", [([5, 3, 1], 1, True), ([5, 3, 1], 2, True), ([6, 2, 1], 3, False)])
def test_collapse_decay_against_the_solver(n, L, bias):
    # each mode dies between 0.97 and 1.03 times its collapse decay, at the numerical minimizer
    th = mino.mode_thresholds(n, L, bias)
    lam_k = th["lam"][th["lam"] > 0]
    for k, lam in enumerate(lam_k):
        assert _solver_alive(n, lam * 0.97, L, bias) == k + 1
        assert _solver_alive(n, lam * 1.03, L, bias) == k


def test_product_threshold_is_the_theorem_threshold_for_any_split():
    # Theorem 4.3's gap L^2 N (N lam_H prod lam_W)^(1/L) - kappa^2 (L-1)^((L-1)/L) changes sign at Pi_k
    kappa, N, L = np.array([3.0, 1.5]), 20, 3
    Pi = mino.product_threshold(kappa, N, L)
    for k in range(2):
        for lam_W in ([1.0, 2.0, 0.5], [0.1, 3.0, 1.0]):
            lam_H_at = Pi[k] / np.prod(lam_W)
            below = ufm.threshold_gap(kappa[k], N, lam_W, lam_H_at * 0.999, L)
            above = ufm.threshold_gap(kappa[k], N, lam_W, lam_H_at * 1.001, L)
            assert below[0] < 0 < above[0]
    np.testing.assert_allclose(mino.collapse_decay(kappa, N, L), Pi ** 0.25, rtol=1e-15)
    np.testing.assert_allclose(mino.collapse_decay(kappa, N, 1), kappa / N, rtol=1e-15)  # soft threshold
    assert mino.product_threshold([0.0], N, L)[0] == 0.0


def test_log_product_threshold_is_log_pi_k():
    """The log route of collapse_decay (log Pi_k) against log of Pi_k as written, where Pi_k is a normal float, and
    against Pi_k in 50-digit arithmetic at L = 120, where it underflows; -inf for kappa = 0.  (collapse_decay itself
    cannot show a wrong log route: it moves any guess by ulps until the closed form agrees.)"""
    import mpmath
    kappa, N = np.array([70.0, 22.4, 3.0, 0.0]), 5500
    for L in (1, 2, 3, 6, 20):
        logs = mino._log_product_threshold(kappa, N, L)
        assert logs[-1] == -np.inf
        np.testing.assert_allclose(logs[:-1], np.log(mino.product_threshold(kappa[:-1], N, L)), rtol=1e-13)
    L = 120
    logs = mino._log_product_threshold(kappa[:-1], N, L)
    assert mino.product_threshold(kappa[:-1], N, L)[-1] == 0.0  # underflows for kappa = 3
    with mpmath.workdps(50):
        want = [float(mpmath.log((mpmath.mpf(k) ** 2 * mpmath.mpf(L - 1) ** (mpmath.mpf(L - 1) / L)
                                  / (L ** 2 * N)) ** L / N)) for k in kappa[:-1]]
    np.testing.assert_allclose(logs, want, rtol=1e-13)


@pytest.mark.parametrize("L", [1, 3])
def test_thresholds_at_a_sample_count_near_the_top_of_float64(L):
    """N = 10**308: L^2 N once entered numpy as a Python int beyond the float range (OverflowError naming nothing);
    Pi_k and lambda_k against 50-digit arithmetic, lambda_k being a float (below the normal range at L = 3) while
    Pi_k underflows to 0 there."""
    import mpmath

    kappa, N = np.array([1.0, 1e150]), 10 ** 308
    with mpmath.workdps(50):
        d = mpmath.mpf(L - 1) ** (mpmath.mpf(L - 1) / L) if L > 1 else 1
        Pi = [(mpmath.mpf(k) ** 2 * d / (L ** 2 * N)) ** L / N for k in kappa]
        want_Pi = [float(p) for p in Pi]
        want_lam = [float(p ** (mpmath.mpf(1) / (L + 1))) for p in Pi]
    np.testing.assert_allclose(mino.product_threshold(kappa, N, L), want_Pi, rtol=1e-13, atol=0)
    np.testing.assert_allclose(mino.collapse_decay(kappa, N, L), want_lam, rtol=1e-13, atol=0)


def test_collapse_decay_of_deep_heads():
    """For deep heads Pi_k leaves the float range (about 1e-348 for CIFAR-10's counts at L = 120) while lambda_k is
    an ordinary number: it is computed through log Pi_k, and each mode still dies there (threshold_gap's sign)."""
    n = [5000] * 5 + [500] * 5
    L = 120
    th = mino.mode_thresholds(n, L)
    kappa, N, lam = th["kappa"], sum(n), th["lam"]
    assert np.all(lam[:-1] > 1e-4) and lam[-1] == 0.0 and th["Pi"][0] == 0.0  # Pi_1 underflows, lambda_1 does not
    depth = (L - 1) / L * np.log(L - 1)
    want = np.exp((L * (2 * np.log(kappa[:-1]) + depth - np.log(L ** 2 * N)) - np.log(N)) / (L + 1))
    np.testing.assert_allclose(lam[:-1], want, rtol=1e-13)
    for k in range(kappa.size - 1):
        below = ufm.threshold_gap(kappa[k], N, lam[k] * (1 - 1e-9), lam[k] * (1 - 1e-9), L)[0]
        above = ufm.threshold_gap(kappa[k], N, lam[k] * (1 + 1e-9), lam[k] * (1 + 1e-9), L)[0]
        assert below < 0 < above
    # where Pi_k is a normal float, the two routes agree
    np.testing.assert_allclose(mino.collapse_decay(kappa, N, 3), mino.product_threshold(kappa, N, 3) ** 0.25,
                               rtol=1e-14)


@pytest.mark.parametrize("L", [1, 2, 3])
def test_alive_at_minimum_is_exact_near_the_thresholds(L):
    """The modes alive at the closed form are those of strength > 0 (no tolerance against kappa_1): just below a
    mode's collapse decay it still counts, and phase_diagram's mode and class counts agree with each other."""
    n = [50, 50, 40, 40, 10, 10]
    th = mino.mode_thresholds(n, L)
    for k, lam in enumerate(th["lam"][:-1]):
        below, above = lam * (1 - 1e-4), lam * (1 + 1e-4)
        assert mino.alive_at_minimum(n, below, below, L).sum() == k + 1
        assert mino.alive_at_minimum(n, above, above, L).sum() == k
        pd = mino.phase_diagram(n, [below], L)
        assert pd["modes"][0] == k + 1 and pd["classes"][0] >= 1


@pytest.mark.parametrize("profile", ["cifar10", "emnist-letters"])
@pytest.mark.parametrize("L", [1, 2, 3, 6])
@pytest.mark.parametrize("bias", [True, False])
def test_collapse_decay_is_the_closed_forms_own_threshold_to_the_last_bit(profile, L, bias):
    """At lambda_k itself the mode is dead, one float below it alive (alive_at_minimum): the formula's rounding does
    not leave a mode alive at its own collapse decay. The paper's EMNIST profile repeats sqrt(600) four times and
    sqrt(50) nineteen times (Theorem 4.4, with a bias): the modes of a repeated value die together."""
    n = imb.class_counts(imb.PROFILES[profile])
    th = mino.mode_thresholds(n, L, bias)
    for k, lam in zip(th["kappa"], th["lam"]):
        if k == 0:
            continue
        same = th["kappa"] == k
        below = np.nextafter(lam, 0.0)
        assert not mino.alive_at_minimum(n, lam, lam, L, bias)[same].any()
        assert mino.alive_at_minimum(n, below, below, L, bias)[same].all()
    if profile == "emnist-letters" and bias:  # each repeated value one float (the SVD's copies merged), to rounding
        for size, times in ((600, 4), (50, 19)):  # sqrt(size): the LAPACK of the machine sets the last ulps
            near = np.abs(th["kappa"] - np.sqrt(size)) < 1e-12 * th["kappa"][0]
            assert near.sum() == times and np.unique(th["kappa"][near]).size == 1


def test_a_repeated_singular_value_is_one_float():
    """Equal counts with a bias give K - 1 copies of sqrt(N_1) (Theorem 4.4), which the SVD returns a few ulps
    apart: problem_svd makes them one value, and M is still U diag(kappa) V^T to rounding."""
    # (counts, bias, the repeated values and how often each comes, how many distinct nonzero values in all)
    cases = (([5] * 7, True, {5: 6}, 1), ([600] * 5 + [50] * 20 + [1500], True, {600: 4, 50: 19}, 4),
             ([3, 3, 3, 1], False, {3: 3}, 2))
    for n, bias, repeated, distinct in cases:
        U, kappa, Vt = ufm.problem_svd(n, bias)
        assert np.unique(kappa[kappa > 0]).size == distinct
        for size, times in repeated.items():
            near = np.abs(kappa - np.sqrt(size)) < 1e-12 * kappa[0]
            assert near.sum() == times and np.unique(kappa[near]).size == 1
        np.testing.assert_allclose(U @ np.diag(kappa) @ Vt, ufm.problem_matrix(n, bias), atol=1e-12 * kappa[0])
    kappa = ufm.problem_svd([5] * 7, True)[1]
    assert np.all(kappa[:-1] == kappa[0]) and kappa[-1] == 0.0
    np.testing.assert_allclose(kappa[0], np.sqrt(5), rtol=1e-15)
    lam = mino.collapse_decay(kappa[:1], 35, 2)[0]  # on the threshold: all six die together, at any basis
    assert mino.alive_at_minimum([5] * 7, np.nextafter(lam, 0.0), np.nextafter(lam, 0.0), 2).sum() == 6
    assert mino.alive_at_minimum([5] * 7, lam, lam, 2).sum() == 0


def test_distinct_singular_values_close_together_stay_apart():
    """Only rounding splits are merged: sqrt(10^7) and sqrt(10^7 - 1), 5e-8 apart relative (a split of rounding is
    about 1e-15), stay two values, each sqrt(n_k) to rounding."""
    n = [10**7, 10**7 - 1]
    kappa = ufm.problem_svd(n, bias=False)[1]
    assert kappa[0] > kappa[1]
    np.testing.assert_allclose(kappa, np.sqrt(np.array(n, dtype=np.float64)), rtol=1e-13)  # a mean is off by 2.5e-8


def test_a_weak_minority_mode_is_alive_under_strong_imbalance():
    """n = (2,000,000, 1) without a bias at a tiny decay: the minority mode has strength 0.998 of its kappa = 1,
    though that is under 1e-3 kappa_1 (kappa_1 = 1414); the closed-form functions count it alive."""
    n, lam = [2_000_000, 1], 1e-9
    s = ufm.mode_strengths(mino.problem_spectrum(n, False), sum(n), lam, lam, 2)
    assert s[1] > 0.99
    np.testing.assert_array_equal(mino.alive_at_minimum(n, lam, lam, 2, False), [True, True])
    # a model at that minimizer counts both alive: each mode is measured against its own kappa, not kappa_1
    g = ufm.global_minimizer(n, lam, lam, L=2, bias=False)
    kappa = mino.problem_spectrum(n, False)
    np.testing.assert_array_equal(mino.alive_modes(ufmtrain.mode_values(g.Ws, g.H, n, False), kappa), [True, True])
    assert mino.alive_modes([0.0, 0.0], [2.0, 0.0]).tolist() == [False, False]
    assert mino.alive_modes([0.0, 0.01], [2.0, 0.0]).tolist() == [False, True]  # kappa_k = 0: against kappa_1
    # 0.0015 is above tol = 1e-3 of 1 but below 1e-3 kappa_1 = 0.002: dead, as measured against kappa_1
    assert mino.alive_modes([0.0, 0.0015], [2.0, 0.0]).tolist() == [False, False]
    # alive means above tol * kappa_k, not at it (the products below are exact in binary); the mode of kappa_k = 0
    # is at tol * kappa_1 = 0.75
    assert mino.alive_modes([1e-3, 0.75, 0.5], [1.0, 1.5, 0.5], tol=1e-3).tolist() == [False, True, True]
    assert mino.alive_modes([0.75, 0.5, 0.75], [1.5, 1.0, 0.0], tol=0.5).tolist() == [False, False, False]
    assert mino.partial_minima(n, lam, lam, 2, False)["count"].tolist() == [1, 1]
    both = mino.partial_minimum(n, lam, lam, 2, False, np.array([True, True]))
    assert both == pytest.approx(ufm.minimum_value(n, lam, lam, 2, False), rel=1e-12, abs=0)  # abs=0: about 2e-7


def test_a_mode_alive_by_a_margin_of_1e_7_still_separates_its_classes():
    """The tie tolerance (1e-9 of the largest output) lies between rounding (1e-16) and the outputs of a mode just
    alive.  n = [12, 2, 2, 2] bias-free, L = 1: the three minority modes (kappa = sqrt(2)) collapse at
    sqrt(lam_W lam_H) = sqrt(2) / N.  At a decay 1e-7 (relative) below that they are alive with
    s = sqrt(2) 1e-7, each minority sample's margin is s / sqrt(2) = 1e-7 against a largest output of 0.59, and
    every sample is right; 1e-7 above, they are collapsed, the minority samples tie and count as errors."""
    n, N = [12, 2, 2, 2], 18
    star = np.sqrt(2) / N
    for rel, accuracy in ((1e-7, 1.0), (-1e-7, 12 / 18)):
        lam = star * (1 - rel)
        g = ufm.global_minimizer(n, lam, lam, L=1, bias=False)
        out = ufm.head_product(g.Ws) @ g.H
        assert np.abs(out).max() == pytest.approx((np.sqrt(12) - np.sqrt(2)) / np.sqrt(12), rel=1e-6)
        margins = mino.class_margins(out, n)
        np.testing.assert_allclose(margins[12:], max(rel, 0.0), rtol=1e-6, atol=0)
        assert np.all(margins[:12] > 0.5)
        assert mino.minimizer_accuracy(n, lam, lam, L=1, bias=False) == pytest.approx(accuracy, abs=1e-15)


def test_tie_tolerance_is_1e_9_of_the_largest_output():
    """Outputs within 1e-9 times the largest one are a tie (margin 0); a margin of 5e-9 of it is not."""
    # abs=0: approx's implicit abs of 1e-12 is 3e-4 of 3e-9
    assert mino.tie_tolerance([[2.0, -3.0]]) == pytest.approx(3e-9, rel=1e-15, abs=0)
    n = [2, 1]  # columns 0 and 1 of class 0, column 2 of class 1; the largest output is 1
    out = np.array([[1.0, 1.0, 0.0], [1.0 - 5e-9, 1.0 - 5e-10, 0.5]])
    np.testing.assert_allclose(mino.class_margins(out, n), [5e-9, 0.0, 0.5], rtol=1e-6, atol=0)


@pytest.mark.parametrize("n, lam_W, lam_H, L, bias", [
    ([5, 3, 2], 0.01, 0.02, 1, True),
    ([4, 7, 1, 3], 0.01, 0.02, 3, False),
    ([12, 2, 2, 2], 0.05, 0.05, 3, True),   # the minority modes collapse: accuracy below 1
    ([12, 2, 2, 2], 0.1, 0.1, 1, False),
])
def test_minimizer_accuracy_matches_the_numerical_minimizer(n, lam_W, lam_H, L, bias):
    """The accuracy of the closed-form minimizer equals that of nclib.solvers.minimize's point, which never looks
    at an SVD of Y-bar. Collapsed modes leave exact ties between classes (margins at rounding level, errors); every
    other margin must be clearly away from 0, or the comparison would be meaningless."""
    want = mino.minimizer_accuracy(n, lam_W, lam_H, L, bias)
    num = solvers.minimize(n, lam_W, lam_H, L=L, bias=bias, seed=0)
    out = ufm.head_product(num.Ws) @ num.H + (num.b[:, None] if bias else 0.0)
    y = np.repeat(np.arange(len(n)), n)
    own = out[y, np.arange(y.size)]
    others = out.copy()
    others[y, np.arange(y.size)] = -np.inf
    margin = own - others.max(axis=0)
    tie = np.abs(margin) < 1e-9
    assert np.all(tie | (np.abs(margin) > 1e-3))
    assert want == np.mean(margin > 1e-3)


def test_minimizer_accuracy_by_hand():
    # weak decays: every sample right; decays so strong that every mode collapses: with a bias the output is
    # b* = n/N for every sample (the majority class wins, 12 of 18), bias-free it is 0 (all ties: none right)
    assert mino.minimizer_accuracy([12, 2, 2, 2], 1e-3, 1e-3, 1, True) == 1.0
    assert mino.minimizer_accuracy([12, 2, 2, 2], 0.2, 0.2, 1, True) == pytest.approx(12 / 18, abs=1e-15)
    assert mino.minimizer_accuracy([12, 2, 2, 2], 0.2, 0.2, 1, False) == 0.0
    with pytest.raises(ValueError, match="^L must"):
        mino.minimizer_accuracy([3, 2], 0.1, 0.1, 0)
    with pytest.raises(ValueError, match="lam_H"):
        mino.minimizer_accuracy([3, 2], 0.1, -1.0, 1)


@pytest.mark.parametrize("n, lam_W, lam_H, L, bias", [
    ([5, 3, 2], 0.01, 0.02, 1, True),
    ([5, 3, 2], 0.01, 0.02, 1, False),
    ([9, 6, 4, 1], [0.01, 0.03, 0.002], 0.02, 3, True),
    ([9, 6, 4, 1], [0.01, 0.03, 0.002], 0.02, 3, False),
    ([12, 2, 2, 2], 0.05, 0.05, 3, True),  # the minority modes collapse
])
def test_minimizer_outputs_are_the_heads_outputs_at_the_global_minimizer(n, lam_W, lam_H, L, bias):
    """W_L ... W_1 H + b 1^T of global_minimizer's point, multiplied here layer by layer, and, independently of that
    point, U diag(s) V^T D^-1 Y + b* 1^T from the SVD of M and the modes' strengths (the reduction of nclib.ufm's module
    docstring: W_L ... W_1 H-bar D = U diag(s) V^T, H = H-bar Y, b* = n/N)."""
    g = ufm.global_minimizer(n, lam_W, lam_H, L=L, bias=bias)
    out = mino.minimizer_outputs(n, lam_W, lam_H, L=L, bias=bias)
    N, Y = sum(n), imb.label_matrix(n)
    want = g.H
    for W in g.Ws:
        want = W @ want
    assert (g.b is None) == (not bias)
    want = want + (g.b[:, None] if bias else 0.0)  # the minimizer's own b
    assert out.shape == (len(n), N)
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-14)
    U, kappa, Vt = ufm.problem_svd(n, bias)
    s = ufm.mode_strengths(kappa, N, lam_W, lam_H, L)
    b_ones = np.outer(np.asarray(n) / N, np.ones(N)) if bias else 0.0  # b* 1^T
    by_modes = U @ np.diag(s) @ Vt @ np.diag(1 / np.sqrt(n)) @ Y + b_ones
    np.testing.assert_allclose(out, by_modes, rtol=0, atol=1e-12)


def test_minimizer_outputs_by_hand_and_refusals():
    # decays so strong that every mode collapses: the output of every sample is b* = n/N with a bias, 0 without
    n = [12, 2, 2, 2]
    b_star = np.array(n)[:, None] / 18
    np.testing.assert_allclose(mino.minimizer_outputs(n, 0.2, 0.2, 1, True), np.tile(b_star, 18), rtol=1e-15, atol=0)
    assert not mino.minimizer_outputs(n, 0.2, 0.2, 3, False).any()
    for args, name in [(([3, 0], 0.1, 0.1), "n"), (([3, 2], 0.0, 0.1), "lam_W"), (([3, 2], 0.1, -1.0), "lam_H"),
                       (([3, 2], [0.1, 0.1], 0.1, 1), "lam_W"), (([3, 2], 0.1, 0.1, 0), "L"),
                       (([3, 2], 0.1, 0.1, 1, "yes"), "bias"), (([3, 2], 0.1, 0.1, 1, 1), "bias")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            mino.minimizer_outputs(*args)


@pytest.mark.parametrize("call, name", [
    (lambda: mino.class_margins(np.ones((2, 4)), [3, 2]), "out"),
    (lambda: mino.tie_tolerance([["1"]]), "out"),  # text is not read as numbers
    (lambda: mino.tie_tolerance(np.zeros((0, 3))), "out"),  # no largest output
    (lambda: mino.tie_tolerance([[1.0, np.nan]]), "out"),
    (lambda: mino.class_margins(np.ones((2, 5)), [3, 0]), "n"),
])
def test_margins_and_ties_refuse_bad_input_by_name(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()


def test_grouped_class_accuracy_by_hand():
    n = [2, 1]
    # sample 1 (class 0) is right, sample 2 (class 0) and sample 3 (class 1) tie between classes 0 and 1
    out = np.array([[1.0, 0.5, 0.5], [0.0, 0.5, 0.5]])
    np.testing.assert_array_equal(mino.grouped_class_accuracy(out, n), [0.5, 0.0])  # a tie is an error
    # an arg-max gives both ties to class 0: right for sample 2, still wrong for sample 3
    np.testing.assert_array_equal(mino.grouped_class_accuracy(out, n, ties="argmax"), [1.0, 0.0])
    out[1, 1] = 0.4  # no tie left in class 0: both readings agree there
    for ties in mino.TIES:
        assert mino.grouped_class_accuracy(out, n, ties=ties)[0] == 1.0


def test_grouped_class_accuracy_against_the_arg_max_of_metrics():
    """K x N outputs of grouped samples here, N x K outputs and labels there: the same numbers where no outputs tie
    and, with ties="argmax", where they tie exactly; a tie within 1e-9 of the largest output is a tie here only."""
    n = [3, 2, 2]
    y = np.repeat(np.arange(3), n)
    rng = np.random.default_rng(3)
    out = rng.standard_normal((3, 7))
    for ties in mino.TIES:
        np.testing.assert_array_equal(mino.grouped_class_accuracy(out, n, ties=ties), acc.class_accuracy(out.T, y))
    tied = out.copy()
    tied[:, [1, 4]] = [[2.0, 2.0], [2.0, 2.0], [0.0, 0.0]]  # a class-0 and a class-1 sample, classes 0 and 1 tied
    np.testing.assert_array_equal(mino.grouped_class_accuracy(tied, n, ties="argmax"), acc.class_accuracy(tied.T, y))
    by_argmax = acc.class_accuracy(tied.T, y)
    # the tie read as an error: class 0's tied sample, right by the arg-max, is lost (class 1's was lost anyway)
    np.testing.assert_allclose((by_argmax - mino.grouped_class_accuracy(tied, n)) * n, [1, 0, 0], rtol=0, atol=1e-14)
    near = tied.copy()
    near[1, 1] = 2.0 - 1e-12  # within the tolerance: still a tie here, a win for class 0 there as well
    np.testing.assert_array_equal(mino.grouped_class_accuracy(near, n), mino.grouped_class_accuracy(tied, n))
    near[0, 4] = 2.0 - 1e-12  # class 1's sample: arg-max gives it to class 1, the tolerance keeps the tie
    assert acc.class_accuracy(near.T, y)[1] == by_argmax[1] + 1 / 2
    assert mino.grouped_class_accuracy(near, n, ties="argmax")[1] == by_argmax[1]


@pytest.mark.parametrize("n, lam, L, bias", [([5, 3, 3, 1], 0.02, 1, True), ([5, 3, 3, 1], 0.05, 1, True),
                                             ([9, 4, 4, 1], 0.03, 2, False), ([9, 4, 4, 1], 0.06, 3, True)])
def test_minimizer_class_accuracy_matches_the_total(n, lam, L, bias):
    acc = mino.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias)
    assert set(np.unique(acc)) <= {0.0, 1.0}  # collapsed classes: all or none of a class
    assert acc @ np.array(n) / sum(n) == pytest.approx(mino.minimizer_accuracy(n, lam, lam, L=L, bias=bias), abs=1e-15)


def test_minimizer_class_accuracy_extremes():
    n = [5, 3, 1]
    np.testing.assert_array_equal(mino.minimizer_class_accuracy(n, 1e-4, 1e-4, L=2), [1, 1, 1])
    # every mode dead: with a bias the outputs are b = n / N, so only the unique largest class is right
    np.testing.assert_array_equal(mino.minimizer_class_accuracy(n, 1.0, 1.0, L=2, bias=True), [1, 0, 0])
    np.testing.assert_array_equal(mino.minimizer_class_accuracy(n, 1.0, 1.0, L=2, bias=False), [0, 0, 0])


def test_a_tie_read_as_an_error_or_as_an_arg_max_breaks_it():
    """Every mode dead: with a bias and two largest classes of 5 their outputs b = n/N tie; bias-free every output is
    0 and all classes tie. A tie is no class right ("error") or the lowest tied index right ("argmax")."""
    n = [5, 5, 3]
    for bias, argmax in ((True, [1, 0, 0]), (False, [1, 0, 0])):
        np.testing.assert_array_equal(mino.minimizer_class_accuracy(n, 1.0, 1.0, L=2, bias=bias), [0, 0, 0])
        np.testing.assert_array_equal(mino.minimizer_class_accuracy(n, 1.0, 1.0, L=2, bias=bias, ties="argmax"),
                                      argmax)
    lams = np.array([1e-4, 1.0])
    assert mino.phase_diagram(n, lams, 2, True, ties="argmax")["classes"].tolist() == [3, 1]
    assert mino.phase_diagram(n, lams, 2, True)["classes"].tolist() == [3, 0]
    # outputs that differ by more than the tie rule are read the same both ways
    out = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    for ties in mino.TIES:
        np.testing.assert_array_equal(mino.grouped_class_accuracy(out, [2, 1], ties=ties), [1, 1])
    with pytest.raises(ValueError, match="ties"):
        mino.grouped_class_accuracy(out, [2, 1], ties="lowest")


def test_phase_diagram_counts_fall_with_the_decay():
    n = [50, 50, 40, 40, 10, 10]
    for L in (1, 2, 6):
        th = mino.mode_thresholds(n, L, True)["lam"]
        lams = np.sort(np.concatenate([th[th > 0] * 0.99, th[th > 0] * 1.01]))
        pd = mino.phase_diagram(n, lams, L, True)
        assert np.all(np.diff(pd["modes"]) <= 0) and np.all(np.diff(pd["classes"]) <= 0)
        # just below the k-th smallest collapse decay the modes alive are those of larger decay
        for lam, modes in zip(lams, pd["modes"]):
            assert modes == int(np.sum(th > lam))
        np.testing.assert_allclose(pd["accuracy"], [mino.minimizer_accuracy(n, l, l, L=L) for l in lams], atol=1e-15)


def test_refusals_by_name():
    with pytest.raises(ValueError, match="kappa"):
        mino.product_threshold([-1.0], 10, 2)
    with pytest.raises(ValueError, match="^N must"):
        mino.collapse_decay([1.0], 0, 2)
    with pytest.raises(ValueError, match="^L must"):
        mino.mode_thresholds([3, 1], 0)
    for call in (mino.product_threshold, mino.collapse_decay):  # as every other closed form, not an OverflowError
        with pytest.raises(ValueError, match="^L must be at most MAX_DEPTH"):
            call([1.0], 10, 10 ** 200)
    with pytest.raises(ValueError, match="lams"):
        mino.phase_diagram([3, 1], [], 1)
    with pytest.raises(ValueError, match="out"):
        mino.grouped_class_accuracy(np.zeros((2, 3)), [3, 1])
    with pytest.raises(ValueError, match="bias"):
        mino.problem_spectrum([3, 1], bias=1)
    with pytest.raises(ValueError, match="s must"):
        mino.alive_modes([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="s must"):
        mino.alive_modes([np.nan, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="kappa must"):
        mino.alive_modes([1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="kappa must"):
        mino.alive_modes([[1.0]], [[1.0]])
    with pytest.raises(ValueError, match="^s must hold singular values, >= 0"):
        mino.alive_modes([-1.0, 0.5, 0.1], [3, 2, 1])
    for tol in (1.0, 2.0, 0.0, -1e-3):
        with pytest.raises(ValueError, match="^tol must"):
            mino.alive_modes([1.0, 0.5, 0.1], [3, 2, 1], tol=tol)
    for s in (["1", "0"], [True, False]):
        with pytest.raises(ValueError, match="s must"):
            mino.alive_modes(s, [2.0, 1.0])
    for lams in (["0.1"], [True], [0.0], [0.1, -0.1]):
        with pytest.raises(ValueError, match="^lams"):
            mino.phase_diagram([3, 1], lams, 1)


def test_alive_without_weakest_kills_the_modes_of_smallest_kappa_first():
    n, lam, L = [100, 100, 200, 200, 300], 1e-4, 6  # a bias: the last mode, kappa = 0, is dead at every minimizer
    kappa = mino.problem_spectrum(n, True)
    assert mino.alive_without_weakest(n, lam, lam, L, True, 0).tolist() == [True] * 4 + [False]
    one = mino.alive_without_weakest(n, lam, lam, L, True, 1)
    assert np.isclose(kappa[~one & (kappa > 0)], 10.0).all() and one.sum() == 3  # sqrt(100): the pair of 100 apart
    two = mino.alive_without_weakest(n, lam, lam, L, True, 2)
    assert two.sum() == 2 and set(np.flatnonzero(~two)) == set(np.flatnonzero(~one)) | {int(np.argsort(kappa)[2])}
    assert mino.partial_minimum(n, lam, lam, L, True, one) < mino.partial_minimum(n, lam, lam, L, True, two)
    assert not mino.alive_without_weakest(n, lam, lam, L, True, 4).any()
    for bad in (-1, 5, 1.0, True):
        with pytest.raises(ValueError, match="dead must be"):
            mino.alive_without_weakest(n, lam, lam, L, True, bad)


def test_partial_minimum_ends():
    n, lam, L = [6, 4, 2], 0.01, 3
    theory = mino.alive_at_minimum(n, lam, lam, L)
    assert mino.partial_minimum(n, lam, lam, L, True, theory) == pytest.approx(ufm.minimum_value(n, lam, lam, L=L),
                                                                               rel=1e-12, abs=0)
    origin = ufm.objective([np.zeros((3, 3))] * 3, np.zeros((3, 12)), np.array(n) / 12, n, lam, lam)
    assert mino.partial_minimum(n, lam, lam, L, True, np.zeros(3, bool)) == pytest.approx(origin, rel=1e-12, abs=0)
    with pytest.raises(ValueError, match="alive"):
        mino.partial_minimum(n, 1.0, 1.0, L, True, np.array([True, False, False]))


def test_partial_minimum_at_a_tiny_decay_is_the_sum_of_the_scalar_minima():
    """At decays of 1e-40 each kept mode's s is within an ulp of kappa; its value once took the fit term as
    (s - kappa)^2/(2N), an ulp^2 of about 1e-33 against a minimum of 5.8e-40.  Against Theorem 4.3's
    kappa^2/(2N) g(x^*) (statements.theorem43_value, which test_ufm checks against 50 digits), atol 0."""
    from nclib import statements

    n, lam, L = [4, 2, 1], 1e-40, 2
    alive = mino.alive_at_minimum(n, lam, lam, L, False)
    assert alive.all()
    want = statements.theorem43_value(mino.problem_spectrum(n, False), sum(n), lam, lam, L)
    np.testing.assert_allclose(mino.partial_minimum(n, lam, lam, L, False, alive), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("L", [2, 3, 6])
def test_a_nonzero_minimizer_outlives_the_collapse_decay_by_a_fixed_factor(L):
    """Lemma A.2's nonzero stationary point stays a local minimizer until a reaches the top of
    L x^(L-1)/(x^L + 1)^2: with equal decays up to (L + 1) / 4^(L/(L+1)) times lambda_k (1.41 for L = 3)."""
    n = [6, 4, 2]
    th = mino.mode_thresholds(n, L)
    top = (L + 1) / 4 ** (L / (L + 1))
    for k, lam_k in enumerate(th["lam"][:-1]):
        for lam, exists in ((lam_k * (1 - 1e-9), True), (lam_k, True), (lam_k * top * (1 - 1e-9), True),
                            (lam_k * top * (1 + 1e-9), False)):
            assert mino.nonzero_minimizer_exists(n, lam, lam, L)[k] == exists
        assert not mino.alive_at_minimum(n, lam_k, lam_k, L)[k]
    past = mino.mode_thresholds(n, 1)["lam"][0] * (1 + 1e-9)  # L = 1: none past the threshold (soft threshold)
    assert not mino.nonzero_minimizer_exists(n, past, past, 1).any()


def test_a_warm_start_keeps_a_mode_past_its_collapse_decay():
    """Started at the global minimizer of 0.98 lambda_1 and trained at 1.02 lambda_1, where every mode is dead at the
    global minimizer, Adam keeps the first mode at its nonzero local minimizer: partial_minimum gives its value,
    partial_minima lists the point and nearest_partial_minimum finds it (kept, not dead)."""
    n, L = [6, 4, 2], 3
    lam1 = mino.mode_thresholds(n, L)["lam"][0]
    lam = 1.02 * lam1
    st = ufm.global_minimizer(n, 0.98 * lam1, 0.98 * lam1, L)
    r = ufmtrain.train_ufm(n, lam, lam, L=L, steps=6000, lr=0.005, final_lr_factor=1e-3, start=(st.Ws, st.H, st.b))
    np.testing.assert_array_equal(r.alive, [True, False, False])
    assert not r.alive_theory.any() and r.gap > 1e-2
    kept = mino.partial_minimum(n, lam, lam, L, True, r.alive)
    assert r.value == pytest.approx(kept, rel=1e-12, abs=0)
    pts = mino.partial_minima(n, lam, lam, L, True)
    assert pts["kills"].tolist() == [True] and pts["count"].tolist() == [1]
    assert pts["dead"].tolist() == [[1], [0]] and pts["value"][0] == pytest.approx(r.minimum, rel=1e-14, abs=0)
    assert pts["value"][1] == pytest.approx(kept, rel=1e-14, abs=0)
    place = mino.nearest_partial_minimum(n, lam, lam, L, True, r.value)
    assert place["kept"] == 1 and place["dead"] == 0 and abs(place["above"]) < 1e-12
    np.testing.assert_array_equal(place["alive"], r.alive)  # the point as a mask: the first mode kept
    np.testing.assert_allclose(place["kept_kappa"], mino.problem_spectrum(n)[:1])
    with pytest.raises(ValueError, match="alive"):  # past the top of Lemma A.2's range no nonzero minimizer is left
        mino.partial_minimum(n, 1.5 * lam1, 1.5 * lam1, L, True, np.array([True, False, False]))


def test_partial_minima_lists_the_weakest_first_chain_by_value_against_partial_minimum():
    n, lam, L = [100, 100, 200, 200, 300], 1e-4, 6  # a bias: kappa 10 (the pair of 100), two others, and 0
    pts = mino.partial_minima(n, lam, lam, L, True)
    kappa = mino.problem_spectrum(n, True)
    assert pts["count"].sum() == 4 and np.allclose(pts["kappa"], np.sort(kappa[:4]))
    assert pts["dead"].shape == (5, 4)  # 0 to 4 modes at 0, weakest first
    assert (pts["dead"][0] == 0).all() and pts["value"][0] == pytest.approx(ufm.minimum_value(n, lam, lam, L=L))
    assert np.all(np.diff(pts["value"]) >= 0)
    for d in range(5):  # each row is partial_minimum of alive_without_weakest
        chain, left = [], d
        for c in pts["count"]:  # the weakest kappa first
            chain.append(min(int(c), left))
            left -= chain[-1]
        row = np.flatnonzero((pts["dead"] == chain).all(axis=1))[0]
        mask = mino.alive_without_weakest(n, lam, lam, L, True, d)
        assert pts["value"][row] == pytest.approx(mino.partial_minimum(n, lam, lam, L, True, mask), rel=1e-12, abs=0)
    # equal counts: without a bias two classes of 200 share kappa = sqrt(200); one point per number at 0
    free = mino.partial_minima(n, lam, lam, L, False)
    assert free["count"].tolist() == [2, 2, 1] and free["dead"].tolist() == [[0, 0, 0], [1, 0, 0], [2, 0, 0],
                                                                            [2, 1, 0], [2, 2, 0], [2, 2, 1]]
    with pytest.raises(ValueError, match="L must be >= 2"):
        mino.partial_minima(n, lam, lam, 1, True)


def test_partial_minima_puts_the_global_minimizer_first_at_a_tie():
    """Near a collapse decay the value at 0 and at the nonzero minimizer of the mode can be the same float: there the
    global minimizer's own choice (the mode at 0 from lambda_k on) comes first, and nearest_partial_minimum names
    it.  Every float within 100 of each lambda_k of [4, 2, 1] (L = 2, no bias), at least one of them a tie where the
    global minimizer kills the mode."""
    n, L = [4, 2, 1], 2
    killing_ties = 0
    for lam_k in mino.mode_thresholds(n, L, False)["lam"]:
        lam = lam_k
        for _ in range(100):
            lam = np.nextafter(lam, 0.0)
        for _ in range(201):
            pts = mino.partial_minima(n, lam, lam, L, False)
            np.testing.assert_array_equal(pts["dead"][0], np.where(pts["kills"], pts["count"], 0))
            if pts["value"].size > 1 and pts["value"][1] == pts["value"][0]:
                place = mino.nearest_partial_minimum(n, lam, lam, L, False, float(pts["value"][0]))
                assert place["dead"] == place["kept"] == 0
                killing_ties += bool(pts["kills"].any())
            lam = np.nextafter(lam, 1.0)
    assert killing_ties > 0


def test_a_point_that_keeps_a_weaker_mode_than_one_at_zero_is_a_saddle():
    """Modes kappa_1 > kappa_2 (n = [6, 4, 2] without a bias, L = 3): the critical point with the stronger mode at 0
    and the weaker kept is not listed by partial_minima, and turning the kept direction towards the stronger one
    lowers objective (4.3) at once (the penalty depends only on the singular values)."""
    n, L = [6, 4, 2], 3
    lam = 0.5 * mino.mode_thresholds(n, L, False)["lam"][2]  # every mode alive at the global minimizer
    N, kappa = sum(n), mino.problem_spectrum(n, False)
    s = ufm.mode_strengths(kappa, N, lam, lam, L)
    listed = mino.partial_minima(n, lam, lam, L, False)
    assert [1, 0, 1] not in [d[::-1].tolist() for d in listed["dead"]]  # (strongest, middle, weakest) at 0
    saddle = mino.partial_minimum(n, lam, lam, L, False, np.array([False, True, False]))
    assert not np.isclose(listed["value"], saddle, rtol=1e-9).any()

    def value(theta):  # the one kept mode, of strength s_2, turned by theta from mode 2 towards mode 1
        r = np.array([np.sin(theta), np.cos(theta), 0.0])
        Z = s[1] * np.outer(r, r)  # W_L ... W_1 H-bar D in the basis of M = D (Theorem 4.1's modes are the classes)
        sv = np.linalg.svd(Z, compute_uv=False)
        return (np.sum((Z - np.diag(kappa)) ** 2) / (2 * N)
                + (L + 1) / 2 * lam * np.sum(sv ** (2 / (L + 1))))  # (lam^(L+1))^(1/(L+1)): L + 1 equal decays
    assert value(0.0) == pytest.approx(saddle, rel=1e-12, abs=0)
    assert value(1e-3) < value(0.0) and value(1e-2) < value(1e-3)


def test_nearest_partial_minimum_finds_the_point_and_the_next_nearest():
    n, lam, L = [100, 100, 200, 200, 300], 1e-4, 6
    pts = mino.partial_minima(n, lam, lam, L, False)
    target = np.flatnonzero((pts["dead"] == [2, 1, 0]).all(axis=1))[0]  # the pair of 100 and one class of 200
    place = mino.nearest_partial_minimum(n, lam, lam, L, False, 1.0003 * pts["value"][target])
    assert place["dead"] == 3 and np.allclose(place["dead_kappa"], [10, 10, np.sqrt(200)])
    assert place["kept"] == 0 and place["above"] == pytest.approx(3e-4)
    # the point as a mask over the modes (kappa sqrt 300, sqrt 200 twice, 10 twice): one mode of sqrt 200 kept
    assert place["alive"].tolist() == [True, False, True, False, False]
    np.testing.assert_array_equal(place["alive"], mino.alive_without_weakest(n, lam, lam, L, False, 3))
    others = np.delete(pts["value"], target)
    assert place["runner_up"] == pytest.approx(np.min(np.abs(1.0003 * pts["value"][target] / others - 1)))
    one = np.flatnonzero((pts["dead"] == [1, 0, 0]).all(axis=1))[0]  # one class of 100 at 0
    below = mino.nearest_partial_minimum(n, lam, lam, L, False, 0.9999 * pts["value"][one])
    assert below["dead"] == 1 and below["above"] == pytest.approx(-1e-4)
    for bad in (float("nan"), float("inf"), -1.0, 0.0):
        with pytest.raises(ValueError, match="value"):
            mino.nearest_partial_minimum(n, lam, lam, L, False, bad)
    with pytest.raises(ValueError, match="L must be"):
        mino.nearest_partial_minimum(n, lam, lam, 1, False, 1.0)


def test_nearest_partial_minimum_gives_the_side_of_the_next_nearest_point():
    """runner_up_above is value / p - 1 at the next nearest point p, with its sign: negative when the value is already
    below p (a run still descending moves away from it).  Just above the global minimum, every other point lies
    above the value; just above another point, the next nearest may lie on either side."""
    n, lam, L = [100, 100, 200, 200, 300], 1e-4, 6
    values = mino.partial_minima(n, lam, lam, L, False)["value"]
    assert np.unique(values).size == values.size  # no two points at one value: the next nearest is one point
    sides = set()
    for p in values:
        for value in (p * (1 + 1e-6), p * (1 - 1e-6)):
            if value < values.min():
                continue
            place = mino.nearest_partial_minimum(n, lam, lam, L, False, value)
            second = values[np.argsort(np.abs(value / values - 1), kind="stable")[1]]  # computed here again
            assert place["runner_up_above"] == pytest.approx(value / second - 1, rel=1e-12)
            assert abs(place["runner_up_above"]) == pytest.approx(place["runner_up"], rel=1e-12)
            assert (place["runner_up_above"] < 0) == (value < second)
            sides.add(bool(place["runner_up_above"] > 0))
    assert sides == {False, True}  # both sides occur on this profile
    at_minimum = mino.nearest_partial_minimum(n, lam, lam, L, False, 1.0003 * values.min())
    assert at_minimum["dead"] == 0 and at_minimum["runner_up_above"] < 0  # every other point above it
    assert at_minimum["runner_up_above"] == pytest.approx(1.0003 * values.min() / np.sort(values)[1] - 1, rel=1e-12)


@pytest.mark.parametrize("L, bias", [(2, True), (3, False), (6, True)])
def test_nearest_partial_minimum_refuses_a_value_below_the_global_minimum(L, bias):
    """No point of (4.3) is below the global minimum: a value more than rounding below it is refused by name, while
    (4.3) evaluated in float64 at the closed-form minimizer, and the minimum itself, are the global minimizer's."""
    n, lam = [60, 40, 20, 10], 2e-3
    minimum = ufm.minimum_value(n, lam, lam, L=L, bias=bias)
    g = ufm.global_minimizer(n, lam, lam, L=L, bias=bias)
    at = ufm.objective(g.Ws, g.H, g.b, n, lam, lam)
    for value in (minimum, at, minimum * (1 - mino.BELOW_MINIMUM_RTOL / 2)):
        place = mino.nearest_partial_minimum(n, lam, lam, L, bias, value)
        assert place["dead"] == place["kept"] == 0 and place["partial"] == minimum
        assert abs(place["above"]) < mino.BELOW_MINIMUM_RTOL
    for value in (minimum * (1 - 2 * mino.BELOW_MINIMUM_RTOL), minimum * (1 - 1e-6), 1e-9):
        with pytest.raises(ValueError, match="^value must be at least the global minimum"):
            mino.nearest_partial_minimum(n, lam, lam, L, bias, value)


@pytest.mark.parametrize("n, L, bias", [([6, 4, 2], 1, True), ([6, 4, 2], 3, True), ([9, 6, 3, 2], 2, False),
                                        ([9, 6, 3, 2], 6, True)])
def test_partial_point_is_the_point_whose_value_partial_minimum_gives(n, L, bias):
    th = mino.mode_thresholds(n, L, bias)
    lam = 0.5 * th["lam"][th["lam"] > 0].min()  # every mode with kappa > 0 alive at the global minimizer
    kappa, N = mino.problem_spectrum(n, bias), sum(n)
    alive = mino.alive_at_minimum(n, lam, lam, L, bias)
    g, p = ufm.global_minimizer(n, lam, lam, L, bias), mino.partial_point(n, lam, lam, L, bias, alive)
    for a, b in zip(p.Ws + [p.H], g.Ws + [g.H]):  # with the global minimizer's modes it is the global minimizer
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    assert (p.b is None) == (not bias)
    for dead in range(int(alive.sum()) + 1):
        keep = mino.alive_without_weakest(n, lam, lam, L, bias, dead)
        p = mino.partial_point(n, lam, lam, L, bias, keep)
        value = mino.partial_minimum(n, lam, lam, L, bias, keep)
        assert p.value == value
        assert ufm.objective(p.Ws, p.H, p.b, n, lam, lam) == pytest.approx(value, rel=1e-12, abs=0)
        s = ufmtrain.mode_values(p.Ws, p.H, n, bias)
        np.testing.assert_allclose(s[keep], ufm.mode_strengths(kappa, N, lam, lam, L)[keep], rtol=1e-12)
        np.testing.assert_allclose(s[~keep], 0, atol=1e-12)


def test_partial_point_refuses_layers_too_large_for_memory_before_anything_is_allocated(monkeypatch):
    """partial_point builds the point at width K: with MAX_WIDTH = 4 (16 entries of d x d layers) K = 3 at L = 3 (18)
    is refused naming d and L before the spectrum or the layers are computed (the patched functions fail the test
    where they are reached), and K = 2 at L = 5 (16, the edge) is built."""
    from nclib import _checks

    monkeypatch.setattr(_checks, "MAX_WIDTH", 4)
    monkeypatch.setattr(mino, "problem_spectrum",
                        lambda *a: pytest.fail("the spectrum was computed before the refusal"))
    monkeypatch.setattr(ufm, "point_from_strengths",
                        lambda *a: pytest.fail("the layers were built before the refusal"))
    with pytest.raises(ValueError, match=r"^d must be at most 2 with L=3 layers: .*got d=3 "):
        mino.partial_point([3, 2, 1], 0.01, 0.01, 3, True, np.array([True, True, False]))
    monkeypatch.undo()
    monkeypatch.setattr(_checks, "MAX_WIDTH", 4)
    p = mino.partial_point([3, 2], 0.01, 0.01, 5, False, np.array([True, False]))
    assert [W.shape for W in p.Ws] == [(2, 2)] * 5


def test_partial_point_metrics_see_a_class_at_zero_but_not_a_mode_at_zero_inside_a_block():
    """At the global minimizer all five metrics are 0.  At a point with modes at 0 NC1 stays 0 (every feature at its
    class mean) and each NC2 is the distance of the kept strengths from the global minimizer's, mode by mode (the
    two share the basis of M).  With a bias, one of two modes of equal kappa at 0 leaves their block aligned as a
    whole: NC3 is 0.  Without a bias a class whose direction is at 0 adds 1 to NC3 squared."""
    def apart(x, y):  # nd of two diagonal matrices in one basis
        return float(np.linalg.norm(x / np.linalg.norm(x) - y / np.linalg.norm(y)))

    lam, L = 1e-4, 3
    for n, bias, dead, nc3 in (([30, 10, 10, 10, 20], True, 1, 0.0), ([100, 100, 200, 200, 300], False, 3, np.sqrt(3))):
        kappa = mino.problem_spectrum(n, bias)
        st = ufm.structure(n, lam, lam, L=L, bias=bias)
        at_min = mino.partial_point_metrics(n, lam, lam, L, bias, mino.alive_at_minimum(n, lam, lam, L, bias))
        assert set(at_min) == {"nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3"} and max(at_min.values()) < 1e-12
        keep = mino.alive_without_weakest(n, lam, lam, L, bias, dead)
        out = mino.partial_point_metrics(n, lam, lam, L, bias, keep)
        assert out["nc1"] < 1e-20
        sp, sf = st.s_product, st.s_features
        np.testing.assert_allclose([out["nc2_w"], out["nc2_h"], out["nc2_wh"]],
                                   [apart(sp ** 2 * keep, sp ** 2), apart(sf ** 2 * keep, sf ** 2),
                                    apart(sp * sf * keep, sp * sf)], rtol=1e-9)
        assert out["nc2_w"] > 0.01
        np.testing.assert_allclose(out["nc3"], nc3, rtol=1e-12, atol=1e-12)
        if bias:  # the mode at 0 shares its kappa with a kept one
            assert np.sum(np.isclose(kappa, kappa[~keep & (kappa > 0)][0])) == 2
    with pytest.raises(ValueError, match="alive"):
        mino.partial_point_metrics([30, 10, 10, 10, 20], lam, lam, L, True, np.array([True, False]))


@pytest.mark.parametrize("bias", [True, False])
def test_partial_point_metrics_take_each_decay_where_it_belongs(bias):
    """lam_W != lam_H: the NC2 of a point with one mode of the global minimizer at 0 against targets built by hand from
    the global minimizer's structure at (lam_W, lam_H).  With the decays swapped the targets move (the strengths of
    W and of H share the product between them otherwise), so NC2^W reads 0.2813 at (2e-3, 5e-4) with a bias and
    0.2843 at (5e-4, 2e-3): a function that passed the decays on in the other order would be off by about 1 %."""
    def apart(x, y):  # nd of two diagonal matrices in one basis
        return float(np.linalg.norm(x / np.linalg.norm(x) - y / np.linalg.norm(y)))

    def by_hand(st, keep):
        sp, sf = st.s_product, st.s_features
        return np.array([apart(sp ** 2 * keep, sp ** 2), apart(sf ** 2 * keep, sf ** 2),
                         apart(sp * sf * keep, sp * sf)])

    n, L, lam_W, lam_H = [30, 20, 10, 5], 3, 2e-3, 5e-4
    for a, b in ((lam_W, lam_H), (lam_H, lam_W)):
        alive = mino.alive_at_minimum(n, a, b, L, bias)
        keep = mino.alive_without_weakest(n, a, b, L, bias, 1)
        assert keep.sum() == alive.sum() - 1 >= 2  # one mode of the global minimizer's at 0
        out = mino.partial_point_metrics(n, a, b, L, bias, keep)
        got = np.array([out["nc2_w"], out["nc2_h"], out["nc2_wh"]])
        np.testing.assert_allclose(got, by_hand(ufm.structure(n, a, b, L=L, bias=bias), keep), rtol=1e-9)
        swapped = by_hand(ufm.structure(n, b, a, L=L, bias=bias), keep)
        assert np.abs(got / swapped - 1).min() > 1e-3  # each of the three tells the two orders apart
        assert out["nc1"] < 1e-20


def test_partial_point_keeps_a_mode_past_its_collapse_decay_and_refuses_one_without_a_minimizer():
    n, L = [6, 4, 2], 3
    lam1 = mino.mode_thresholds(n, L)["lam"][0]
    kept = np.array([True, False, False])
    p = mino.partial_point(n, 1.02 * lam1, 1.02 * lam1, L, True, kept)  # past lambda_1, below (L+1)/4^(L/(L+1))
    assert ufm.objective(p.Ws, p.H, p.b, n, 1.02 * lam1, 1.02 * lam1) == pytest.approx(
        mino.partial_minimum(n, 1.02 * lam1, 1.02 * lam1, L, True, kept), rel=1e-12, abs=0)
    assert p.value > ufm.minimum_value(n, 1.02 * lam1, 1.02 * lam1, L=L)
    for bad in (np.array([True, False]), np.array([1, 0, 0])):
        with pytest.raises(ValueError, match="alive"):
            mino.partial_point(n, lam1, lam1, L, True, bad)
    with pytest.raises(ValueError, match="alive"):  # no nonzero minimizer left at 1.5 lambda_1
        mino.partial_point(n, 1.5 * lam1, 1.5 * lam1, L, True, kept)


def test_adam_returns_to_a_partial_point_with_the_weakest_at_zero_and_leaves_the_saddle():
    """n = [9, 6, 3] without a bias, L = 3, every mode alive at the global minimizer: started from a random
    perturbation, Adam goes back to the point with the weakest mode at 0 (a local minimizer) and away from the point
    with the strongest at 0 and the weakest kept (a saddle), to a lower value."""
    n, L, bias = [9, 6, 3], 3, False
    lam = 0.5 * mino.mode_thresholds(n, L, bias)["lam"].min()
    rng = np.random.default_rng(0)
    ends = {}
    for name, keep in (("minimizer", [True, True, False]), ("saddle", [False, True, True])):
        p = mino.partial_point(n, lam, lam, L, bias, np.array(keep))
        start = ([W + 1e-2 * rng.standard_normal(W.shape) for W in p.Ws], p.H + 1e-2 * rng.standard_normal(p.H.shape),
                 None)
        r = ufmtrain.train_ufm(n, lam, lam, L=L, bias=bias, steps=3000, lr=1e-3, final_lr_factor=1e-2, start=start)
        ends[name] = r.value / p.value - 1
    assert abs(ends["minimizer"]) < 1e-10
    assert ends["saddle"] < -1e-2


def test_partial_point_spread_nc1_is_not_continuous_at_a_point_with_a_mode_at_zero():
    """At the global minimizer NC1 of the features plus a spread falls as the spread's square; at the point of Lemma
    A.2 with the weakest mode at 0 (L = 2, with a bias: the rank NC1 keeps is K - 1, the point's class means span one
    direction fewer) it stays far from 0 however small the spread, while at the point itself it is 0."""
    n, lam, L = [30, 30, 10, 10], 1e-3, 2
    best = mino.alive_at_minimum(n, lam, lam, L, True)
    assert best.sum() == 3  # every mode but the zero mode of Y-bar
    lost = mino.alive_without_weakest(n, lam, lam, L, True, 1)
    at_best = [mino.partial_point_spread_nc1(n, lam, lam, L, True, best, s) for s in (1e-3, 1e-4)]
    at_lost = [mino.partial_point_spread_nc1(n, lam, lam, L, True, lost, s) for s in (1e-3, 1e-4)]
    assert np.isclose(at_best[0] / at_best[1], 100, rtol=0.05) and at_best[0] < 1e-3
    assert min(at_lost) > 1 and mino.partial_point_metrics(n, lam, lam, L, True, lost)["nc1"] < 1e-12
    # seeded: the same seed gives the same number, another seed another
    assert mino.partial_point_spread_nc1(n, lam, lam, L, True, lost, 1e-3) == at_lost[0]
    assert mino.partial_point_spread_nc1(n, lam, lam, L, True, lost, 1e-3, seed=1) != at_lost[0]
    for bad in (0, -1e-3, float("nan"), "0.1"):
        with pytest.raises(ValueError, match=r"^spread must"):
            mino.partial_point_spread_nc1(n, lam, lam, L, True, lost, bad)
    with pytest.raises(ValueError, match=r"^seed must"):
        mino.partial_point_spread_nc1(n, lam, lam, L, True, lost, 1e-3, seed=-1)
    with pytest.raises(ValueError, match=r"^alive must"):
        mino.partial_point_spread_nc1(n, lam, lam, L, True, np.array([True, False]), 1e-3)
