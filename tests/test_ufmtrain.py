"""Unit tests of nclib.ufmtrain: the unconstrained feature model trained by Adam (its start, its update against
torch.optim.Adam, its schedule, where its runs end against the closed form), the strengths of the modes in a model,
and the tables of such runs (chapter ch-minority)."""
import numpy as np
import pytest
import torch

import nclib.minority as mino
import nclib.ufm as ufm
import nclib.ufmtrain as ufmtrain
from nclib.imbalance import label_matrix


def test_mode_values_refuse_shapes_that_do_not_chain():
    n = [5, 3, 1]
    g = ufm.global_minimizer(n, 1e-3, 1e-3, L=2, d=4)
    with pytest.raises(ValueError, match="^Ws: W_L must have one row per class"):
        ufmtrain.mode_values([g.Ws[0], g.Ws[1][:2]], g.H, n)
    with pytest.raises(ValueError, match="^H must have as many rows"):
        ufmtrain.mode_values(g.Ws, g.H[:3], n)


@pytest.mark.parametrize("n", [[5, 3, 3, 1], [4, 4, 4, 2]])
def test_mode_values_at_the_global_minimizer(n):
    for L, bias in ((1, True), (3, False)):
        g = ufm.global_minimizer(n, 0.01, 0.02, L=L, bias=bias)
        kappa = mino.problem_spectrum(n, bias)
        np.testing.assert_allclose(ufmtrain.mode_values(g.Ws, g.H, n, bias),
                                   ufm.mode_strengths(kappa, sum(n), 0.01, 0.02, L=L), atol=1e-12)


@pytest.mark.parametrize("bias, L", [(False, 1), (True, 1), (False, 2)])
def test_mode_values_of_a_partial_collapse_inside_a_repeated_singular_value(bias, L):
    """A repeated kappa has no preferred basis: a point that keeps all but one mode of the block, built in another
    basis of it (W_L ... W_1 H-bar D = U R diag(s) R^T V^T, R a rotation of the block), has the block's strengths
    (s_k, s_k, 0), not the diagonal of U^T W_L ... W_1 H-bar D V, and one mode fewer alive."""
    n = [20, 5, 5, 5]
    U, kappa, Vt = ufm.problem_svd(n, bias)
    block = np.flatnonzero(np.isclose(kappa, np.sqrt(5)))
    assert block.size >= 2
    s = kappa.copy()
    s[block[-1]] = 0.0  # one mode of the block at 0
    R = np.eye(kappa.size)
    R[np.ix_(block, block)] = np.linalg.qr(np.random.default_rng(0).standard_normal((block.size,) * 2))[0]
    Z = U @ R @ np.diag(s) @ R.T @ Vt
    H = np.repeat(Z / np.sqrt(n)[None, :], n, axis=1)  # every feature at its class mean: H-bar D = Z
    diagonal = np.abs(np.diag(U.T @ Z @ Vt.T))
    assert np.abs(diagonal - s)[block].max() > 0.1  # the basis is far from the SVD's own
    strengths = ufmtrain.mode_values([np.eye(len(n))] * L, H, n, bias)
    np.testing.assert_allclose(strengths, s, atol=1e-12)
    assert mino.alive_modes(strengths, kappa).sum() == (s > 0).sum() == (kappa > 0).sum() - 1


@pytest.mark.parametrize("final", [1.0, 0.1])
def test_adam_is_torch_adam(final):
    n, lam_W, lam_H, L = [4, 2, 1], [0.01, 0.03], 0.02, 2
    start = ufmtrain.init_ufm(n, L, bias=True, seed=3)
    r = ufmtrain.train_ufm(n, lam_W, lam_H, L=L, bias=True, steps=25, lr=0.01, final_lr_factor=final, start=start)
    # the documented rate: lr for the first half (12 of 25 steps), then geometric down to lr * final at the last step
    rates = 0.01 * np.concatenate([np.ones(12), np.geomspace(1.0, final, 13)])
    Ws = [torch.tensor(W, requires_grad=True) for W in start[0]]
    H = torch.tensor(start[1], requires_grad=True)
    b = torch.tensor(start[2], requires_grad=True)
    Y = torch.tensor(label_matrix(n))
    opt = torch.optim.Adam([*Ws, H, b], lr=0.01)
    for rate in rates:
        opt.param_groups[0]["lr"] = float(rate)
        opt.zero_grad()
        R = Ws[1] @ Ws[0] @ H + b[:, None] - Y
        f = (R * R).sum() / (2 * sum(n)) + lam_H / 2 * (H * H).sum()
        f = f + sum(lj / 2 * (W * W).sum() for lj, W in zip(lam_W, Ws))
        f.backward()
        opt.step()
    for mine, ref in zip([*r.Ws, r.H, r.b], [*Ws, H, b]):
        np.testing.assert_allclose(mine, ref.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert r.value == pytest.approx(ufm.objective(r.Ws, r.H, r.b, n, lam_W, lam_H), rel=1e-15, abs=0)


def test_history_holds_every_record_every_th_value_and_the_final_one():
    n, lam = [4, 2, 1], 0.02
    start = ufmtrain.init_ufm(n, 1, bias=True, seed=4)
    run = lambda steps: ufmtrain.train_ufm(n, lam, lam, steps=steps, lr=0.01, final_lr_factor=1.0,  # noqa: E731
                                       record_every=4, start=start)
    r = run(10)
    # the values before steps 0, 4 and 8, then the value after the last step: ceil(10 / 4) + 1 entries
    assert r.history.shape == (4,)
    assert r.history[-1] == r.value
    assert r.history[0] == pytest.approx(ufm.objective(*start, n, lam, lam), rel=1e-15, abs=0)
    for j, steps in ((1, 4), (2, 8)):  # at a constant rate, a run of 4 (8) steps ends where this one was then
        assert r.history[j] == pytest.approx(run(steps).value, rel=1e-15, abs=0)
    assert ufmtrain.train_ufm(n, lam, lam, steps=8, record_every=4, start=start).history.shape == (3,)  # 0, 4, end


def test_recording_every_step_leaves_the_run_as_it_is():
    """The cadence of the history changes nothing of the run, to the last bit (the objective is computed at every
    step for its gradient): the end point and value of a deep run with a bias at any record_every, and the history
    at a cadence is every k-th value of the history at every step, then the last."""
    n, lam = [5, 3, 2, 1], 0.003
    runs = {k: ufmtrain.train_ufm(n, lam, lam, L=3, bias=True, steps=300, lr=0.05, seed=2, record_every=k)
            for k in (1, 7, 100)}
    every = runs[1].history
    assert every.size == 301
    for k, r in runs.items():
        for mine, ref in zip([*r.Ws, r.H, r.b], [*runs[1].Ws, runs[1].H, runs[1].b]):
            np.testing.assert_array_equal(mine, ref)
        assert r.value == runs[1].value == every[-1]
        np.testing.assert_array_equal(r.history, np.r_[every[:-1:k], every[-1]])


def test_init_ufm_draws_the_weights_as_nn_linear():
    """W_j uniform on (-1/sqrt(d), 1/sqrt(d)) (nn.Linear's default for d inputs), H standard normal, b = 0, all
    times init_scale."""
    n, d = [3] * 8, 64
    for scale in (1.0, 0.25):
        Ws, H, b = ufmtrain.init_ufm(n, 3, bias=True, d=d, init_scale=scale, seed=1)
        bound = scale / np.sqrt(d)
        assert [W.shape for W in Ws] == [(d, d), (d, d), (8, d)] and H.shape == (d, 24)
        for W in Ws:  # 512 draws or more: the largest falls short of 0.99 bound with chance 0.99^512 = 0.6 %
            assert 0.99 * bound < np.abs(W).max() <= bound
        np.testing.assert_allclose(np.concatenate([W.ravel() for W in Ws]).std(), bound / np.sqrt(3), rtol=0.03)
        np.testing.assert_allclose(H.std(), scale, rtol=0.05)
        np.testing.assert_array_equal(b, np.zeros(8))
    assert ufmtrain.init_ufm(n, 1, bias=False, d=d)[2] is None


def test_init_ufm_draws_from_its_seed():
    """The same seed gives the same start, entry for entry; another seed another start."""
    n = [6, 4, 2]
    first, again, other = (ufmtrain.init_ufm(n, 2, bias=True, seed=seed) for seed in (5, 5, 6))
    for a, b in zip([*first[0], first[1]], [*again[0], again[1]]):
        np.testing.assert_array_equal(a, b)
    for a, c in zip([*first[0], first[1]], [*other[0], other[1]]):
        assert not np.any(a == c)


@pytest.mark.parametrize("L, bias, lam", [(1, True, 0.02), (1, False, 0.05), (2, True, 0.01)])
def test_train_ufm_reaches_the_closed_form(L, bias, lam):
    n = [6, 4, 2]
    r = ufmtrain.train_ufm(n, lam, lam, L=L, bias=bias, steps=4000, lr=0.05)
    # measured worst over the three cases: |gap| 3.1e-16, |s - s_theory| 1.3e-15; about 1000 times that here
    assert abs(r.gap) < 3e-13
    np.testing.assert_allclose(r.s, r.s_theory, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(r.alive, r.alive_theory)
    np.testing.assert_array_equal(r.class_acc, mino.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias))
    assert not r.at_origin


def test_train_ufm_reads_the_classes_with_the_bias():
    """n = [6, 4, 2], L = 1, with a bias, midway between the first two collapse decays, started at the global
    minimizer: one mode alive, and class_acc is the closed form's, [1, 0, 0], read from W H + b 1^T.  Without b the
    outputs W H would put the second class right too, so a class accuracy that left out the bias would read
    [1, 1, 0]."""
    n = [6, 4, 2]
    lam = mino.mode_thresholds(n, 1, True)["lam"][:2].mean()
    g = ufm.global_minimizer(n, lam, lam, L=1, bias=True)
    r = ufmtrain.train_ufm(n, lam, lam, L=1, bias=True, steps=1, lr=1e-12, start=(g.Ws, g.H, g.b))
    assert abs(r.gap) < ufmtrain.AT_MINIMUM_GAP and r.alive_theory.tolist() == [True, False, False]
    np.testing.assert_array_equal(r.class_acc, mino.minimizer_class_accuracy(n, lam, lam, L=1, bias=True))
    np.testing.assert_array_equal(r.class_acc, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(mino.grouped_class_accuracy(ufm.head_product(r.Ws) @ r.H, n), [1.0, 1.0, 0.0])


def test_train_ufm_small_start_ends_at_the_origin():
    # Lemma A.2: for L >= 2 the origin is a local minimizer; a small start stays in its basin
    n, lam = [6, 4, 2], 0.01
    r = ufmtrain.train_ufm(n, lam, lam, L=3, bias=True, steps=2000, lr=0.01, init_scale=1e-3)
    assert r.at_origin and r.alive_theory.any()
    assert r.gap > 0.1
    # the gap is relative to the global minimum, the closed form's value
    assert r.minimum == ufm.minimum_value(n, lam, lam, L=3, bias=True)
    assert r.gap == pytest.approx((r.value - r.minimum) / r.minimum, rel=1e-15, abs=0)
    assert r.value == pytest.approx(ufm.objective([np.zeros((3, 3))] * 3, np.zeros((3, 12)), np.array(n) / 12,
                                                  n, lam, lam), rel=1e-13, abs=0)  # measured: equal


def test_alive_theory_is_alive_at_minimum_just_below_a_threshold():
    """Just below the second mode's threshold its strength at the global minimizer is positive but far below the
    tolerance of :func:`nclib.minority.alive_modes`: the closed form keeps it alive (s_theory > 0, no tolerance),
    as :func:`nclib.minority.alive_at_minimum` does, where a reading of s_theory with the tolerance would not."""
    n = [5, 3, 1]
    lam = (1 - 1e-5) * mino.mode_thresholds(n, 1, True)["lam"][1]
    r = ufmtrain.train_ufm(n, lam, lam, L=1, bias=True, steps=10)
    assert 0 < r.s_theory[1] < mino.ALIVE_TOL * r.kappa[1] and r.s_theory[2] == 0
    np.testing.assert_array_equal(r.alive_theory, mino.alive_at_minimum(n, lam, lam, L=1, bias=True))
    assert r.alive_theory.sum() == 2


def test_at_origin_counts_the_mode_of_kappa_zero():
    """With a bias kappa_K = 0; a model whose only nonzero strength is on that mode (W H-bar D = s u_K v_K^T) is not
    at the origin: alive_modes reads that mode against tol * kappa_1, and at_origin counts it like any other."""
    n = [5, 3, 1]
    U, kappa, Vt = ufm.problem_svd(n, True)
    assert kappa[-1] == 0 and kappa[0] > 0
    Z = U[:, -1:] @ Vt[-1:, :]  # strength 1 on the last mode, 0 on the others
    H = np.repeat(Z / np.sqrt(n)[None, :], n, axis=1)  # every feature at its class mean: H-bar D = Z
    r = ufmtrain.train_ufm(n, 0.01, 0.01, L=1, bias=True, steps=1, lr=1e-12, start=([np.eye(3)], H, np.zeros(3)))
    np.testing.assert_allclose(r.s, [0, 0, 1], atol=1e-10)
    np.testing.assert_array_equal(r.alive, [False, False, True])
    assert not r.at_origin


def test_train_ufm_counts_tied_classes_as_wrong():
    """Without a bias the origin has zero gradient, so a run started there stays there; past the last threshold it is
    the global minimizer.  Every output is 0 there, all classes tie, and class_acc counts each tied class as wrong
    (the closed form's reading), not as an arg-max would (the first class right)."""
    n, L = [6, 4, 2], 2
    lam = 1.01 * mino.mode_thresholds(n, L, bias=False)["lam"].max()
    origin = ([np.zeros((3, 3)), np.zeros((3, 3))], np.zeros((3, 12)), None)
    r = ufmtrain.train_ufm(n, lam, lam, L=L, bias=False, steps=20, start=origin)
    assert r.at_origin and not r.alive_theory.any() and not np.any(r.H)
    assert abs(r.gap) < 1e-15
    np.testing.assert_array_equal(r.class_acc, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(r.class_acc, mino.minimizer_class_accuracy(n, lam, lam, L=L, bias=False))
    np.testing.assert_array_equal(mino.grouped_class_accuracy(np.zeros((3, 12)), n, ties="argmax"), [1.0, 0.0, 0.0])


@pytest.mark.parametrize("kwargs, name", [
    (dict(lam_W=-1.0), "lam_W"), (dict(lam_H=0.0), "lam_H"), (dict(L=0), "L"), (dict(bias="yes"), "bias"),
    (dict(steps=0), "steps"), (dict(lr=-0.1), "lr"), (dict(final_lr_factor=2.0), "final_lr_factor"),
    (dict(init_scale=0.0), "init_scale"), (dict(seed=-1), "seed"), (dict(record_every=0), "record_every"),
    (dict(start=([np.zeros((3, 3))], np.zeros((2, 12)), np.zeros(3))), "start H"),
    (dict(start=([np.zeros((3, 3))], np.zeros((3, 12)), None)), "start b"),
    (dict(start=([np.zeros((3, 3))], np.zeros((3, 12)), np.zeros(1))), "start b"),
    (dict(start=([np.zeros((3, 3))], np.zeros((3, 12)), np.array([0.0, np.nan, 0.0]))), "start b"),
    (dict(start=([np.zeros((3, 3))], np.zeros((3, 12)))), "start must be"),
    (dict(start=([np.zeros((3, 3))] * 2, np.zeros((3, 12)), np.zeros(3))), "start must hold L=1"),
    (dict(start=(np.zeros((3, 3)), np.zeros((3, 12)), np.zeros(3))), "start Ws"),
    (dict(d=2), "^d must be at least K=3"), (dict(d=1, L=2, bias=False), "^d must be at least K=3"),
    (dict(d=10 ** 12), "^d must be at most max"), (dict(d=10 ** 4 + 1, L=2), "^d must be at most max"),
])
def test_train_ufm_refusals(kwargs, name):
    args = dict(n=[6, 4, 2], lam_W=0.01, lam_H=0.01, L=1, bias=True, steps=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        ufmtrain.train_ufm(**args)


def test_a_deep_head_too_wide_for_memory_is_refused_before_its_start_is_drawn(monkeypatch):
    """init_ufm and train_ufm at d = MAX_WIDTH and L = 1000 (800 GB of d x d layers) are refused naming d and L
    before a start is drawn (the patched generator fails the test where it is reached); with MAX_WIDTH = 4, d = K = 3
    at L = 3 (18 entries of layers) is refused, and d = 4 at L = 2 (16, the edge) trained."""
    monkeypatch.setattr(np.random, "default_rng", lambda *a: pytest.fail("a start was drawn before the refusal"))
    for call in (lambda: ufmtrain.init_ufm([3, 2], 1000, d=10 ** 4),
                 lambda: ufmtrain.train_ufm([3, 2], 0.01, 0.01, L=1000, d=10 ** 4, steps=1)):
        with pytest.raises(ValueError, match=r"^d must be at most 316 with L=1,000 layers: .*got d=10,000 "):
            call()
    monkeypatch.undo()
    monkeypatch.setattr(ufmtrain._checks, "MAX_WIDTH", 4)
    with pytest.raises(ValueError, match=r"^d must be at most 2 with L=3 layers: .*got d=3 "):
        ufmtrain.train_ufm([3, 2, 1], 0.01, 0.01, L=3, steps=1)
    run = ufmtrain.train_ufm([3, 2], 0.01, 0.01, L=2, d=4, steps=2)
    assert [W.shape for W in run.Ws] == [(4, 4), (2, 4)]


@pytest.mark.parametrize("kwargs, name", [(dict(seed=-1), "seed"), (dict(init_scale=float("nan")), "init_scale"),
                                           (dict(init_scale=0.0), "init_scale"), (dict(seed=1.5), "seed")])
def test_train_ufm_refuses_a_bad_seed_or_init_scale_also_with_a_start(kwargs, name):
    """seed and init_scale are unused with ``start``, and were once checked only by init_ufm, so that a bad value
    ran silently; they are refused by name with or without a start."""
    n = [3, 2]
    start = ufmtrain.init_ufm(n, 1, True)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        ufmtrain.train_ufm(n, 0.01, 0.01, steps=3, start=start, **kwargs)


def test_refusals_by_name():
    with pytest.raises(ValueError, match="^d must be at least K=3"):
        ufmtrain.init_ufm([6, 4, 2], 2, d=2)
    with pytest.raises(ValueError, match=r"^d must be at most max\(K, MAX_WIDTH\) = 10,000 "):
        ufmtrain.init_ufm([6, 4, 2], 2, d=10 ** 12)  # was a MemoryError
    with pytest.raises(ValueError, match="n must hold at least two classes"):
        ufmtrain.train_ufm([5], 0.01, 0.01, L=1, bias=True, steps=10)
    n, L = [3, 1], 1
    Ws, H, b = ufmtrain.init_ufm(n, L, True, 2, 1.0, 0)
    with pytest.raises(ValueError, match="start b"):
        ufmtrain.train_ufm(n, 0.01, 0.01, L=L, bias=True, steps=10, start=(Ws, H, [True, False]))


def test_table_counts_are_each_profiles_counts_divided_by_ten():
    """The class counts of the minority chapter's UFM tables, largest first: CIFAR-10's 500, 500, ..., 100, 100 and
    EMNIST letters' 1 x 1500, 5 x 600, 20 x 50 (Section 5), each divided by COUNT_DIVISOR = 10."""
    assert ufmtrain.COUNT_DIVISOR == 10
    cifar = ufmtrain.table_counts("cifar10")
    assert cifar.tolist() == [50, 50, 40, 40, 30, 30, 20, 20, 10, 10] and cifar.sum() == 300
    letters = ufmtrain.table_counts("emnist-letters")
    assert letters.tolist() == [150] + [60] * 5 + [5] * 20 and letters.sum() == 550
    assert cifar.dtype.kind == letters.dtype.kind == "i"


@pytest.mark.parametrize("profile", ["cifar100", "CIFAR10", "", None, ["cifar10"], [(500, 2), (100, 2)]])
def test_table_counts_refuse_a_profile_that_is_not_the_papers(profile):
    with pytest.raises(ValueError, match="^profile must be one of"):
        ufmtrain.table_counts(profile)


def test_small_start_ends_at_a_local_minimizer_of_the_partial_form():
    # the second mode starts inside the basin of x = 0 (Lemma A.2) and stays there; the first reaches its minimizer
    n, L = [6, 4, 2], 2
    lam = 0.9 * mino.mode_thresholds(n, L, True)["lam"][1]
    r = ufmtrain.train_ufm(n, lam, lam, L=L, bias=True, steps=3000, lr=0.01, init_scale=0.3, seed=0)
    np.testing.assert_array_equal(r.alive, [True, False, False])
    np.testing.assert_array_equal(r.alive_theory, [True, True, False])
    assert r.value == pytest.approx(mino.partial_minimum(n, lam, lam, L, True, r.alive), rel=1e-10)
    assert r.gap > 1e-3


def test_train_ufm_decays_the_rate_to_final_lr_factor_by_default():
    args = dict(n=[6, 4, 2], lam_W=0.01, lam_H=0.01, L=2, bias=True, steps=40, lr=0.05, seed=3)
    default = ufmtrain.train_ufm(**args)
    same = ufmtrain.train_ufm(**args, final_lr_factor=ufmtrain.FINAL_LR_FACTOR)
    other = ufmtrain.train_ufm(**args, final_lr_factor=0.5)
    np.testing.assert_array_equal(default.history, same.history)
    assert default.value != other.value


def test_read_ufm_table_types_the_committed_rows_and_refuses_a_bad_file(tmp_path):
    """The committed CIFAR-10 table read back typed (its columns and the summary of each run's objective history),
    its floats equal to the text written to the last bit; a file whose header, value types or vector lengths are not
    a UFM table's is refused naming path."""
    import nclib
    path = nclib.ROOT / "results" / "minority" / "ufm-cifar10.csv"
    rows = ufmtrain.read_ufm_table(path)
    lines = path.read_text().splitlines()
    assert len(rows) == len(lines) - 1 == 112
    assert tuple(lines[0].split(",")) == ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS
    first = lines[1].split(",")
    r = rows[0]
    assert (r["profile"], r["bias"], r["L"], r["seed"], r["steps"]) == ("cifar10", True, 1, 0, 4000)
    assert r["at_origin"] is False and r["lr"] == 0.05
    assert type(r["L"]) is int and type(r["bias"]) is bool and type(r["lam"]) is float
    assert r["lam"] == 0.0023570226039551587 and repr(r["lam"]) == first[3]  # to the last bit
    assert r["value"] == float(first[8]) and r["gap"] == 1.3373019671140784e-16 and repr(r["gap"]) == first[10]
    assert (r["best_value"], r["best_step"], r["largest_rise"], r["rise_step"]) == (
        0.10377452624079339, 2357, 1.001069222940109, 1959)
    assert type(r["best_step"]) is int and repr(r["best_value"]) == first[19]
    assert r["s"].dtype == np.float64 and r["s"].shape == r["s_theory"].shape == r["class_acc"].shape == (10,)
    np.testing.assert_array_equal(r["class_acc"], np.ones(10))
    assert r["s_theory"][-1] == 0.0 and r["s"][0] == 6.36396
    assert sorted({x["L"] for x in rows}) == [1, 2, 3, 6] and {x["bias"] for x in rows} == {True, False}
    bad = tmp_path / "bad.csv"
    for header, row, why in [
            (lines[0].replace(",gap", ""), lines[1], "columns"),  # a column missing
            (lines[0], lines[1] + ",1", "values"),  # a value too many
            (lines[0], lines[1].replace("cifar10,True,", "cifar10,yes,"), "bias = 'yes' is not True or False"),
            (lines[0], lines[1].replace("cifar10,True,", "cifar10,true,"), "bias = 'true' is not True or False"),
            (lines[0], lines[1].replace(",4000,", ",4000.0,"), "steps = '4000.0' is not an int"),
            (lines[0], lines[1].replace(first[3], first[3] + "0"),
             "lam = .* is not a finite float written as its repr"),
            (lines[0], lines[1].replace(",0.05,", ",0.050,"), "lr = .* is not a finite float"),
            (lines[0], lines[1].replace(",0.05,", ",nan,"), "lr = 'nan' is not a finite float"),  # repr(nan) is nan
            (lines[0], lines[1].replace(f",{first[8]},", ",inf,"), "value = 'inf' is not a finite float"),
            (lines[0], lines[1].replace(",1 1 1 1 1 1 1 1 1 1", ",1 1 nan 1 1 1 1 1 1 1"),
             "class_acc = .* is not space-separated finite floats"),
            (lines[0], lines[1].replace(",1 1 1 1 1 1 1 1 1 1", ",1 1 1"), "s, s_theory and class_acc"),
            (lines[0], lines[1].replace(",1 1 1 1 1 1 1 1 1 1", ",1 1 x 1 1 1 1 1 1 1"), "class_acc = ")]:
        bad.write_text(header + "\n" + row + "\n")
        with pytest.raises(ValueError, match=f"^path: .*bad.csv.*{why}"):
            ufmtrain.read_ufm_table(bad)
    bad.write_text("")
    with pytest.raises(ValueError, match="^path: .*columns"):
        ufmtrain.read_ufm_table(bad)
    bad.write_text(lines[0] + "\n")  # a header alone: no runs
    assert ufmtrain.read_ufm_table(bad) == []


def test_read_ufm_table_reads_a_table_with_and_without_the_history_columns(tmp_path):
    """The committed tables end with the summary of each run's objective history (as scripts/minority_runs.py writes
    it now); a table made before those columns existed has none.  Both are read typed, the columns they share alike,
    the floats to the last bit; a summary no history gives, or the columns out of order, refused naming path."""
    import nclib
    committed = nclib.ROOT / "results" / "minority" / "ufm-cifar10.csv"
    made_now = committed.read_text().splitlines()
    header = ",".join(ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS)
    assert made_now[0] == header
    # the same rows without the last four columns: a table as the script wrote them before (no comma in a value)
    lines = [",".join(line.split(",")[:len(ufmtrain.UFM_FIELDS)]) for line in made_now[:3]]
    assert lines[0] == ",".join(ufmtrain.UFM_FIELDS)
    before = tmp_path / "before.csv"
    before.write_text("\n".join(lines) + "\n")
    value = lines[1].split(",")[8]
    made = tmp_path / "made.csv"
    made.write_text(f"{header}\n{lines[1]},0.10377452624079331,3999,1.0009986859274964,1340\n"
                    f"{lines[2]},{value},0,1.0,0\n")
    rows = ufmtrain.read_ufm_table(made)
    old = ufmtrain.read_ufm_table(before)
    assert set(old[0]) == set(ufmtrain.UFM_FIELDS)
    assert set(rows[0]) == set(ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS)
    for new, earlier, full in zip(rows, old, ufmtrain.read_ufm_table(committed)):  # the shared columns read alike
        assert {k: v for k, v in new.items() if not isinstance(v, np.ndarray) and k in earlier} == \
            {k: v for k, v in earlier.items() if not isinstance(v, np.ndarray)} == \
            {k: v for k, v in full.items() if not isinstance(v, np.ndarray) and k in earlier}
    r = rows[0]
    assert (r["best_value"], r["best_step"], r["largest_rise"], r["rise_step"]) == (
        0.10377452624079331, 3999, 1.0009986859274964, 1340)
    assert type(r["best_step"]) is int and type(r["largest_rise"]) is float
    assert rows[1]["best_value"] == float(value) and rows[1]["largest_rise"] == 1.0
    bad = tmp_path / "bad.csv"
    good = f"{lines[1]},0.1,3999,2.5,1340"
    for head, row, why in [
            (header, good + ",0", "values"),  # a value too many
            (header.replace("best_value,best_step", "best_step,best_value"), good, "columns"),  # out of order
            (lines[0] + ",best_value,best_step", f"{lines[1]},0.1,3999", "columns"),  # some of them only
            (header, good.replace(",3999,", ",3999.0,"), "best_step = '3999.0' is not an int"),
            (header, good.replace(",2.5,", ",2.50,"),
             "largest_rise = '2.50' is not a finite float written as its repr"),
            (header, good.replace(",3999,", ",4001,"), "best_step = 4001 is not a step from 0 to steps = 4000"),
            (header, good.replace(",1340", ",-1"), "rise_step = -1 is not a step"),
            (header, good.replace(",2.5,", ",0.5,"), "largest_rise = 0.5 is below 1"),
            (header, good.replace(",2.5,", ",nan,"), "largest_rise = 'nan' is not a finite float"),
            (header, good.replace(",0.1,3999", ",0.2,3999"), "best_value = 0.2 is above the last value")]:
        bad.write_text(head + "\n" + row + "\n")
        with pytest.raises(ValueError, match=f"^path: .*bad.csv.*{why}"):
            ufmtrain.read_ufm_table(bad)


def _ufm_table(path, rows):
    """A table of UFM runs as scripts/minority_runs.py writes it (nclib.ufmtrain.UFM_FIELDS), one row per
    (profile, bias, L, gap, modes_theory); the columns trained_ufm_at_minimum does not count are filled alike."""
    lines = [",".join(ufmtrain.UFM_FIELDS)]
    for profile, bias, L, gap, modes_theory in rows:
        lines.append(f"{profile},{bias},{L},0.001,0,1.0,4000,0.05,1.0,1.0,{gap!r},0,{modes_theory},0,0,False,"
                     "0 0,0 0,1 1")
    path.write_text("\n".join(lines) + "\n")


def test_at_global_minimum_reads_a_gap_below_the_books_threshold():
    assert ufmtrain.at_global_minimum(0.0) is True and ufmtrain.at_global_minimum(-1e-16) is True
    for below in (-0.5, -1e300, -2e-12, [0.0, -0.5]):  # below the minimum by more than rounding: another problem's
        with pytest.raises(ValueError, match="^gap must be >= -1e-12"):
            ufmtrain.at_global_minimum(below)
    assert ufmtrain.at_global_minimum(ufmtrain.AT_MINIMUM_GAP) is False and ufmtrain.at_global_minimum(0.2) is False
    got = ufmtrain.at_global_minimum(np.array([5e-7, 1e-6, 3.0, np.inf]))
    assert got.dtype == bool and got.tolist() == [True, False, False, False]
    for bad in (np.nan, [0.0, np.nan], "0.1", None, True, [1j]):
        with pytest.raises(ValueError, match="^gap must"):
            ufmtrain.at_global_minimum(bad)
    # a bool among numbers (read by numpy as 1.0, "not at the minimum") and a ragged list: refused naming gap
    for bad in ([1e-9, True], [[0.0, np.True_]], [1e-9, [1]], [[0.0], [0.0, 1.0]]):
        with pytest.raises(ValueError, match="^gap must"):
            ufmtrain.at_global_minimum(bad)
    assert ufmtrain.at_global_minimum([1e-9, 1]).tolist() == [True, False]


def test_trained_ufm_at_minimum_counts_the_runs_of_the_minority_chapter(tmp_path):
    folder = tmp_path / "minority"
    folder.mkdir()
    _ufm_table(folder / "ufm-a.csv", [("a", False, 1, 0.0, 3), ("a", False, 3, 0.2, 3), ("a", False, 3, 1e-9, 0),
                                      ("a", True, 3, 0.0, 2)])
    _ufm_table(folder / "ufm-b.csv", [("b", False, 3, -1e-16, 2), ("b", False, 1, 5e-7, 3)])
    assert ufmtrain.trained_ufm_at_minimum(False, root=tmp_path) == {
        1: {"runs": 2, "at_minimum": 2, "keeping": 2, "keeping_at_minimum": 2},
        3: {"runs": 3, "at_minimum": 2, "keeping": 2, "keeping_at_minimum": 1}}
    assert ufmtrain.trained_ufm_at_minimum(True, root=tmp_path) == {
        3: {"runs": 1, "at_minimum": 1, "keeping": 1, "keeping_at_minimum": 1}}
    for flag in (False, True):  # a numpy bool (a value read from an array) counts as the bool it is
        assert ufmtrain.trained_ufm_at_minimum(np.bool_(flag), root=tmp_path) == \
            ufmtrain.trained_ufm_at_minimum(flag, root=tmp_path)
    for bad in ("no", 0, 1):
        with pytest.raises(ValueError, match="bias must be True or False"):
            ufmtrain.trained_ufm_at_minimum(bad, root=tmp_path)
    with pytest.raises(ValueError, match="holds no UFM runs"):
        ufmtrain.trained_ufm_at_minimum(False, root=tmp_path / "elsewhere")
    # files with runs of the other bias case only: refused naming the case, not counted as {} (no run at the minimum)
    (tmp_path / "one" / "minority").mkdir(parents=True)
    _ufm_table(tmp_path / "one" / "minority" / "ufm-a.csv", [("a", True, 3, 0.0, 2)])
    assert ufmtrain.trained_ufm_at_minimum(True, root=tmp_path / "one") == {
        3: {"runs": 1, "at_minimum": 1, "keeping": 1, "keeping_at_minimum": 1}}
    with pytest.raises(ValueError, match="has bias=False"):
        ufmtrain.trained_ufm_at_minimum(False, root=tmp_path / "one")
    # the tables are read by nclib.ufmtrain.read_ufm_table: a file with only some of its columns is refused naming
    # it, not counted
    (tmp_path / "one" / "minority" / "ufm-b.csv").write_text("profile,bias,L,gap,modes_theory\nb,True,3,0.0,2\n")
    with pytest.raises(ValueError, match="^path: .*ufm-b.csv has the columns"):
        ufmtrain.trained_ufm_at_minimum(True, root=tmp_path / "one")
    # the committed runs without a bias: every L = 1 run at the minimum; below the last threshold none with L = 3, 6
    committed = ufmtrain.trained_ufm_at_minimum(False)
    assert committed[1]["at_minimum"] == committed[1]["runs"] > 0
    assert committed[3]["keeping_at_minimum"] == committed[6]["keeping_at_minimum"] == 0 < committed[3]["keeping"]
