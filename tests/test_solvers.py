"""Unit tests of nclib.solvers: the independent numerical minimizer against the closed forms of
Theorems 4.1, 4.2 and 4.3 (chapters ch-thm41, ch-thm42, ch-thm43)."""
import dataclasses

import numpy as np
import pytest

import nclib.solvers as solvers
import nclib.ufm as ufm
from nclib.imbalance import label_matrix

#: What the solver must reach against the closed forms, the bounds the chapters assert too (nclib.solvers)
VALUE_RTOL, STRUCT_ATOL = solvers.VALUE_RTOL, solvers.STRUCT_ATOL


@pytest.mark.parametrize("bias", [True, False])
def test_gradient_matches_finite_differences(bias):
    # the kernel nclib.ufm.objective_and_gradients, shared with nclib.ufmtrain.train_ufm, through the flat problem
    rng = np.random.default_rng(0)
    n = np.array([3, 2, 2])
    prob = solvers._Problem(n, np.array([0.02, 0.05, 0.01]), 0.03, 3, bias, 4)
    x = rng.standard_normal(prob.size)
    f, g = prob.value_and_grad(x)
    Ws, H, b = prob.unpack(x)
    assert f == pytest.approx(ufm.objective(Ws, H, b, n, [0.02, 0.05, 0.01], 0.03), rel=1e-14)
    # 25 coordinates at random, one of each block (W_1, W_2, W_3, H, b) and every bias coordinate: a gradient
    # wrong in one block alone (the bias's, 3 of 75 coordinates) cannot hide
    starts = np.cumsum([0] + prob.sizes)
    picks = set(rng.choice(prob.size, 25, replace=False).tolist())
    picks |= {int(rng.integers(lo, hi)) for lo, hi in zip(starts[:-1], starts[1:])}
    if bias:
        picks |= set(range(starts[-2], starts[-1]))
    assert len(prob.sizes) == 4 + bias and {int(np.searchsorted(starts, i, side="right")) - 1 for i in picks} == \
        set(range(len(prob.sizes)))
    for i in sorted(picks):
        e = np.zeros(prob.size)
        e[i] = 1e-6
        fd = (prob.value_and_grad(x + e)[0] - prob.value_and_grad(x - e)[0]) / 2e-6
        assert g[i] == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("theorem", ["4.1", "4.2", "4.3"])
def test_closed_form_matches_solver_on_20_random_instances(theorem):
    rng = np.random.default_rng({"4.1": 41, "4.2": 42, "4.3": 43}[theorem])
    collapsed = 0
    for i in range(20):
        inst = solvers.random_instance(theorem, rng)
        r = solvers.verify(**inst, seed=i)
        assert abs(r["rel_gap"]) <= VALUE_RTOL, (inst, r)
        assert r["rel_lowest"] >= -VALUE_RTOL, (inst, r)  # no start goes below the closed form
        for key in ("within_class_err", "bias_err", "balance", "PPt", "EtE", "PE"):
            assert r[key] <= STRUCT_ATOL, (key, inst, r)
        assert r["attained"] <= 1e-12, (inst, r)  # the closed form's own point has the value it reports
        collapsed += r["active"] < r["K"] - (1 if inst["bias"] else 0)
    assert collapsed >= 5  # the random instances do include minority collapse


def test_verify_reports_the_distance_of_the_features_from_their_class_means():
    """within_class_err is max |H - H-bar Y| at the numerical minimizer (features against their class means, not the
    NC1 metric); bias_err the larger of |b - n/N| and |h_G|, 0 without a bias."""
    n = [5, 3, 2]
    for bias in (True, False):
        r = solvers.verify(n, 0.01, 0.02, L=1, bias=bias, d=4)
        res = r["result"]
        y = np.repeat(np.arange(len(n)), n)
        means = np.stack([res.H[:, y == k].mean(axis=1) for k in range(len(n))], axis=1)
        np.testing.assert_allclose(r["within_class_err"], np.abs(res.H - means[:, y]).max(), rtol=1e-6, atol=1e-15)
        assert r["within_class_err"] <= STRUCT_ATOL
        if bias:
            expected = max(np.abs(res.b - np.array(n) / 10).max(), np.abs(res.H.mean(axis=1)).max())
            np.testing.assert_allclose(r["bias_err"], expected, rtol=1e-6, atol=1e-15)
        else:
            assert r["bias_err"] == 0.0


def test_verify_evaluates_the_closed_form_point_not_only_its_value(monkeypatch):
    """A closed-form point built wrong with its value still right: its layers' norms swapped (layer j given the norm
    of layer L + 1 - j), or the bias moved. The value and the structure in the SVD basis do not see either; the
    objective at the point does, and verify reports it (``attained``)."""
    n, lam_W, lam_H, d = [9, 9, 6, 3, 2, 1], [0.004, 0.006, 0.01], 0.005, 7
    right = solvers.verify(n, lam_W, lam_H, L=3, bias=True, d=d)
    assert right["attained"] <= 1e-12
    built = ufm.global_minimizer

    def swapped(*args, **kwargs):
        g = built(*args, **kwargs)
        return dataclasses.replace(g, Ws=[W * (np.linalg.norm(V) / np.linalg.norm(W)) for W, V in zip(g.Ws, g.Ws[::-1])])

    def moved_bias(*args, **kwargs):
        g = built(*args, **kwargs)
        return dataclasses.replace(g, b=2 * g.b)

    for wrong in (swapped, moved_bias):
        monkeypatch.setattr(ufm, "global_minimizer", wrong)
        r = solvers.verify(n, lam_W, lam_H, L=3, bias=True, d=d)
        assert r["closed"] == right["closed"] and r["attained"] > 1e-3, wrong.__name__
        monkeypatch.undo()


def test_verify_reports_a_solver_below_the_closed_form_as_negative_gaps(monkeypatch):
    """rel_gap and rel_lowest are signed: negative when the solver (its best point, its lowest start) went below the
    closed form, which is how a closed form that is not the minimum shows itself.  A closed form built wrong, for a
    width of 1 (only the top mode kept) against the solver's width 4, lies 0.67 of its value above the minimum."""
    n, lam_W, lam_H = [5, 3, 2], 0.01, 0.02
    built = ufm.global_minimizer

    def one_mode(n, lam, lam_H, L, bias, d):
        return built(n, lam, lam_H, L, bias, 1)

    monkeypatch.setattr(ufm, "global_minimizer", one_mode)
    r = solvers.verify(n, lam_W, lam_H, L=1, bias=True, d=4)
    wrong = built(n, lam_W, lam_H, 1, True, 1).value
    assert r["closed"] == wrong
    assert r["numerical"] == pytest.approx(ufm.minimum_value(n, lam_W, lam_H), rel=VALUE_RTOL, abs=0)
    assert r["rel_gap"] == pytest.approx((r["numerical"] - wrong) / wrong, rel=1e-12, abs=0)
    assert r["rel_lowest"] == pytest.approx((min(r["result"].run_values) - wrong) / wrong, rel=1e-12, abs=0)
    assert r["rel_gap"] < -0.5 and r["rel_lowest"] < -0.5  # the guards of the tests above (>= -1e-12) would fail


def test_verify_reports_the_lowest_start_where_the_starts_differ(monkeypatch):
    """rel_lowest is the gap of the lowest start, not of any other: at L = 3 a start of scale 1e-3 is trapped near
    the origin (its value 0.374) and one of scale 1 ends lower (0.106, the minimum being 0.085), so the two gaps
    differ by far more than the bounds, and rel_lowest is that of the second."""
    n, lam_W, lam_H = [6, 6, 6, 1, 1, 1], [0.0089, 0.0101, 0.0100], 0.00254
    found = solvers.minimize

    def two_starts(*args, **kwargs):
        return found(*args, **kwargs, scales=(1e-3, 1.0), repeats=1, continuations=0)

    monkeypatch.setattr(solvers, "minimize", two_starts)
    r = solvers.verify(n, lam_W, lam_H, L=3, bias=True)
    trapped, reached = r["result"].run_values
    assert trapped > 3 * reached  # the starts differ: the small one is trapped
    assert r["rel_lowest"] == pytest.approx((reached - r["closed"]) / r["closed"], rel=1e-12, abs=0)
    assert (trapped - r["closed"]) / r["closed"] > r["rel_lowest"] + 1  # the trapped start's gap, far above it


def test_verify_measures_its_errors_at_a_point_off_the_minimizer(monkeypatch):
    """The diagnostics are measured, not only small: at the solver's point with every parameter moved they are
    the distances of that point from the identities, computed here from the closed-form minimizer."""
    n, lam_W, lam_H, d = [5, 3, 2], [0.01, 0.02], 0.02, 4
    rng = np.random.default_rng(12)
    found = solvers.minimize

    def moved(*args, **kwargs):
        res = found(*args, **kwargs)
        return dataclasses.replace(res, Ws=[W + 0.3 * rng.standard_normal(W.shape) for W in res.Ws],
                                   H=res.H + 0.3 * rng.standard_normal(res.H.shape), b=res.b + 0.1)

    monkeypatch.setattr(solvers, "minimize", moved)
    r = solvers.verify(n, lam_W, lam_H, L=2, bias=True, d=d)
    res, closed = r["result"], ufm.global_minimizer(n, lam_W, lam_H, L=2, bias=True, d=d)
    nf = np.array(n, dtype=np.float64)
    Y = label_matrix(n)
    means = res.H @ Y.T / nf
    P, Pc = ufm.head_product(res.Ws), ufm.head_product(closed.Ws)
    E, Ec = res.H @ Y.T / np.sqrt(nf), closed.H @ Y.T / np.sqrt(nf)  # H-bar D
    dist = lambda A, B: np.abs(A - B).max()  # noqa: E731
    want = {
        "within_class_err": dist(res.H, means @ Y),
        "bias_err": max(dist(res.b, nf / nf.sum()), dist(means @ nf / nf.sum(), 0.0)),
        "balance": max(dist(lam_W[1] * res.Ws[1].T @ res.Ws[1], lam_W[0] * res.Ws[0] @ res.Ws[0].T),
                       dist(lam_W[0] * res.Ws[0].T @ res.Ws[0], lam_H * res.H @ res.H.T)),
        "PPt": dist(P @ P.T, Pc @ Pc.T),
        "EtE": dist(E.T @ E, Ec.T @ Ec),
        "PE": dist(P @ E, Pc @ Ec),
    }
    for key, value in want.items():
        assert value > 0.01, key  # far from every identity (at a minimizer each is below 2e-12)
        assert r[key] == pytest.approx(value, rel=1e-12, abs=0), key


def test_verify_measures_the_balance_of_adjacent_layers_not_only_of_W_1_and_H(monkeypatch):
    """At a solver's point with only its last layer W_2 doubled, W_1 and H stay balanced, and ``balance`` is the
    distance of lam_W2 W_2^T W_2 from lam_W1 W_1 W_1^T, three times the latter."""
    n, lam_W, lam_H = [5, 3, 2], [0.01, 0.02], 0.02
    found = solvers.minimize

    def doubled(*args, **kwargs):
        res = found(*args, **kwargs)
        return dataclasses.replace(res, Ws=[res.Ws[0], 2 * res.Ws[1]])

    monkeypatch.setattr(solvers, "minimize", doubled)
    r = solvers.verify(n, lam_W, lam_H, L=2, bias=True)
    W1, W2 = r["result"].Ws
    want = np.abs(lam_W[1] * W2.T @ W2 - lam_W[0] * W1 @ W1.T).max()
    assert want > 0.01 and r["balance"] == pytest.approx(want, rel=1e-12, abs=0)


def test_random_instances_keep_lam_H_off_the_thresholds():
    """No mode's threshold lies within a factor 1 + margin of an instance's lam_H: Theorem 4.3's gap has one sign
    for every mode over [lam_H / (1 + margin), lam_H (1 + margin)]."""
    rng = np.random.default_rng(7)
    for theorem in ("4.1", "4.2", "4.3"):
        for margin in (0.05, 0.5):
            for _ in range(40):
                inst = solvers.random_instance(theorem, rng, margin=margin)
                n, L = inst["n"], inst["L"]
                kappa = np.linalg.svd(ufm.problem_matrix(n, inst["bias"]), compute_uv=False)
                kappa = kappa[kappa > 1e-9 * kappa[0]]
                inner = 1 + margin * (1 - 1e-6)  # just inside the band: rounding at its edge is no failure
                below = ufm.threshold_gap(kappa, sum(n), inst["lam_W"], inst["lam_H"] / inner, L)
                above = ufm.threshold_gap(kappa, sum(n), inst["lam_W"], inst["lam_H"] * inner, L)
                np.testing.assert_array_equal(np.sign(below), np.sign(above), err_msg=str(inst))


def test_random_instances_span_what_the_docstring_promises():
    """K in 3..8 classes, counts 1..12, d from K to K+2, L from THEOREMS and the theorem's bias: over 60 draws of each
    theorem every K and every d - K occurs, and nothing else."""
    rng = np.random.default_rng(11)
    for theorem, (bias, Ls) in solvers.THEOREMS.items():
        insts = [solvers.random_instance(theorem, rng) for _ in range(60)]
        assert {len(i["n"]) for i in insts} == set(range(3, 9))
        assert {i["d"] - len(i["n"]) for i in insts} == {0, 1, 2}
        assert {i["L"] for i in insts} == set(Ls) and {i["bias"] for i in insts} == {bias}
        assert min(min(i["n"]) for i in insts) == 1 and max(max(i["n"]) for i in insts) == 12


def test_repeated_singular_values_and_d_larger_than_K():
    n = [10, 10, 10, 3, 3, 3]  # two groups: kappa has multiplicities
    r = solvers.verify(n, [0.01, 0.03], 0.02, L=2, bias=True, d=8)
    assert abs(r["rel_gap"]) <= VALUE_RTOL and max(r["PPt"], r["EtE"], r["PE"]) <= STRUCT_ATOL


@pytest.mark.parametrize("L, bias", [(1, False), (2, True)])
def test_width_below_K(L, bias):
    n, lam_W, lam_H = [8, 6, 4, 3, 2], 0.002, 0.002
    res = solvers.minimize(n, lam_W, lam_H, L=L, bias=bias, d=2)
    closed = ufm.global_minimizer(n, lam_W, lam_H, L=L, bias=bias, d=2)
    assert res.H.shape == (2, sum(n))
    assert res.value == pytest.approx(closed.value, rel=VALUE_RTOL, abs=0)
    assert closed.value > ufm.minimum_value(n, lam_W, lam_H, L=L, bias=bias)


def test_small_starts_alone_are_trapped_for_L_at_least_2():
    n, lam_W, lam_H = [6, 6, 6, 1, 1, 1], [0.0089, 0.0101, 0.0100], 0.00254
    trapped = solvers.minimize(n, lam_W, lam_H, L=3, bias=True, scales=(1e-3,), repeats=1)
    assert max(trapped.run_values[:1]) > ufm.minimum_value(n, lam_W, lam_H, L=3) * (1 + 1e-3)
    full = solvers.minimize(n, lam_W, lam_H, L=3, bias=True)
    assert full.value == pytest.approx(ufm.minimum_value(n, lam_W, lam_H, L=3), rel=VALUE_RTOL, abs=0)



def test_minimize_keeps_the_lowest_of_its_starts():
    """Of a trapped small start (0.374) and a start at scale 1 (0.106), the result is the lower.  The Newton polish
    keeps a step only where the value rises by at most 1e-14 max(1, |f|), at most 8 steps: the result is never
    above the lowest start by more than that, plus the rounding of the objective's recomputation."""
    n, lam_W, lam_H = [6, 6, 6, 1, 1, 1], [0.0089, 0.0101, 0.0100], 0.00254
    res = solvers.minimize(n, lam_W, lam_H, L=3, bias=True, scales=(1e-3, 1.0), repeats=1, continuations=0)
    assert len(res.run_values) == 2 and res.run_values[0] > 3 * res.run_values[1]  # the worse start comes first
    lowest = min(res.run_values)
    assert res.value <= lowest + 9e-14 * max(1.0, abs(lowest))
    # a converged start: the polish moves it by rounding
    assert res.value == pytest.approx(lowest, rel=VALUE_RTOL, abs=0)


@pytest.mark.parametrize("L", [1, 2, 3])
def test_continuation_runs_are_made_for_a_deep_head_only(L):
    """For L >= 2 each of ``continuations`` continuation runs adds one value, its scale NaN, after the random starts;
    for L = 1, which has no spurious minimum at zero, none is made."""
    res = solvers.minimize([3, 2, 1], 0.01, 0.01, L=L, scales=(1.0,), repeats=1, continuations=2, maxiter=200)
    extra = 2 if L >= 2 else 0
    assert len(res.run_values) == len(res.run_scales) == 1 + extra
    assert res.run_scales[0] == 1.0 and all(np.isnan(s) for s in res.run_scales[1:])


@pytest.mark.parametrize("kwargs, name", [
    (dict(lam_W=-1.0), "lam_W"),
    (dict(lam_H=0.0), "lam_H"),
    (dict(lam_W=[0.1, 0.1], L=3), "lam_W"),
    (dict(L=0), "L"),
    (dict(d=0), "d"),
    (dict(d=10 ** 12), "d must be at most max"),  # was a MemoryError
    (dict(seed=-1), "seed"),
    (dict(scales=()), "scales"),
    (dict(repeats=0), "repeats"),
])
def test_bad_input(kwargs, name):
    args = dict(n=[3, 2, 2], lam_W=0.01, lam_H=0.01)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}"):
        solvers.minimize(**args)
    with pytest.raises(ValueError, match="^theorem"):
        solvers.random_instance("4.4", np.random.default_rng(0))
    with pytest.raises(ValueError, match="^rng"):
        solvers.random_instance("4.1", 0)
    with pytest.raises(ValueError, match="^n must hold at least two classes"):
        solvers.verify([5], 0.01, 0.01, 1, True)  # one class with a bias: M = 0, a minimum of 0
    for margin in (-0.05, 1.0, "0.05"):  # a negative margin would place decays on the thresholds
        with pytest.raises(ValueError, match="^margin"):
            solvers.random_instance("4.2", np.random.default_rng(0), margin=margin)


def test_a_deep_head_too_wide_for_memory_is_refused_before_the_solver_allocates(monkeypatch):
    """minimize and verify at d = MAX_WIDTH and L = 1000 (800 GB of d x d layers, and as much again for each start)
    are refused naming d and L before the problem or a start is made (the patched class fails the test where it is
    reached); with MAX_WIDTH = 4, d = K = 3 at L = 3 (18 entries of layers) is refused, d = 4 at L = 2 (16) solved."""
    monkeypatch.setattr(solvers, "_Problem", lambda *a: pytest.fail("the solver's problem was made before the refusal"))
    for solve in (solvers.minimize, solvers.verify):
        with pytest.raises(ValueError, match=r"^d must be at most 316 with L=1,000 layers: .*got d=10,000 "):
            solve([3, 2], 0.1, 0.1, L=1000, d=10 ** 4)
    monkeypatch.undo()
    monkeypatch.setattr(solvers._checks, "MAX_WIDTH", 4)
    with pytest.raises(ValueError, match=r"^d must be at most 2 with L=3 layers: .*got d=3 "):
        solvers.minimize([3, 2, 1], 0.1, 0.1, L=3)
    res = solvers.minimize([3, 2], 0.1, 0.1, L=2, d=4, scales=(1.0,), repeats=1, continuations=0)
    assert [W.shape for W in res.Ws] == [(4, 4), (2, 4)]


def test_verify_many_rows():
    rows = solvers.verify_many("4.2", count=2, seed=5)
    assert len(rows) == 2 and all({"n", "lam_W", "lam_H", "result", "rel_gap"} <= set(r) for r in rows)
    assert all(abs(r["rel_gap"]) <= VALUE_RTOL for r in rows)
    with pytest.raises(ValueError, match="^count"):
        solvers.verify_many("4.2", count=0)


def test_width_K_minus_1_suffices_with_a_bias():
    """Erratum T4: with a bias d >= K - 1 loses nothing (Y-bar sqrt(n) = 0), even with all K - 1 modes alive."""
    n, lam = [7, 5, 4, 2, 1], 0.005
    assert np.sum(ufm.structure(n, lam, lam, L=1, bias=True).s_product > 0) == len(n) - 1
    res = solvers.minimize(n, lam, lam, L=1, bias=True, d=len(n) - 1)
    assert res.value == pytest.approx(ufm.minimum_value(n, lam, lam, L=1, bias=True), rel=VALUE_RTOL, abs=0)


def test_width_cap_r_for_L_2():
    """Theorem 4.3 with r = d < number of surviving modes: only the top r modes survive (erratum T4)."""
    n, lam_W, lam_H, d = [9, 7, 5, 3, 1], [0.01, 0.02], 0.01, 2
    st = ufm.structure(n, lam_W, lam_H, L=2, bias=True)
    assert np.sum(st.s_product > 0) == 4 > d
    res = solvers.minimize(n, lam_W, lam_H, L=2, bias=True, d=d)
    closed = ufm.global_minimizer(n, lam_W, lam_H, L=2, bias=True, d=d)
    assert res.value == pytest.approx(closed.value, rel=VALUE_RTOL, abs=0)
    assert closed.value > ufm.minimum_value(n, lam_W, lam_H, L=2, bias=True) * (1 + 1e-2)
    rows = np.linalg.norm(st.U.T @ ufm.head_product(res.Ws), axis=1)
    np.testing.assert_allclose(rows[d:], 0, atol=STRUCT_ATOL)  # modes 3 and 4 pass the threshold, yet vanish
    np.testing.assert_allclose(rows[:d] ** 2, st.s_product[:d] ** 2, rtol=1e-6)
