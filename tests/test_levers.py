"""The engine's opt-in speed levers (nclib.step, nclib.train; :ref:`ch-engine`): one Adam step for all the runs
of a figure (``grouped_adam``), several steps per CUDA graph (``steps_per_graph``), metric epochs that do not
wait for the device (``deferred_metrics``: the rows are the same numbers, computed from copies queued on the
run's stream; a divergence is seen one metric epoch later, the history still ends at the row that shows it) and
each parameter's Adam step inside the backward pass (``adam_in_backward``).

On the CPU the grouped runs equal the plain runs number for number (Adam is elementwise per parameter, and the
CPU's Adam is the same per-parameter loop in both), across a learning-rate step and a stop/resume; several steps
per graph are refused by name there.  The grouped and in-backward runs are compared with plain runs also with every
parameter that reaches the step at another value (STEP_KEYS, OTHER), so that a lever that ignores one fails.  On a
GPU (CUDA-only tests) both levers are compared with the plain engine bit for bit: the grouped fused Adam runs the
per-parameter kernel of the per-run fused Adam over a longer list of tensors, and a graph of k steps holds the
kernels of k one-step graphs in the same order, so neither changes any operation's arithmetic."""
import json

import numpy as np
import pytest
import torch

from nclib import data, figures, step as nstep, train

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")

# an lr step after epoch 3 and, with metric_every 2, a stop/resume at epochs 2 and 4
KW = dict(dataset="synthetic", counts=[12, 6, 3], dim=8, width=16, depth=2, epochs=6, batch_size=4, lr=1e-3,
          lr_milestones=[3], lam_W=1e-3, lam_H=1e-3, metric_every=2, progress=False, device="cpu")
MEMBERS = [dict(L=1, run_name="L1"), dict(L=3, run_name="L3"), dict(L=6, bias=False, run_name="L6")]
COLUMNS = list(train.REPRODUCIBLE_COLUMNS)

#: The parameters that reach the step (nclib.step): the rate and its schedule (AdamStep's lr, set_lr), the batch
#: (batch_size, the rows of every step), the precision of the products (tf32 in the step, bf16 in the objective),
#: and the decays of the objective F_B that the step differentiates, shared and per run.  OTHER and OTHER_MEMBERS
#: set each of them to a value that is neither its default nor KW's (test_the_other_setting_moves_every_step_key),
#: so that a lever that ignores one, taking its default where the plain step takes the run's value, gives other
#: numbers than the plain runs there.  A parameter added to the run that reaches the step goes here and into
#: OTHER; one that does not goes into NOT_STEP_KEYS.
STEP_KEYS = ("batch_size", "lam_W", "lam_H", "lam_backbone", "lr", "lr_milestones", "lr_gamma", "precision")
#: The defining parameters that do not reach the step: the data, the network's shape and initialization, the
#: seed, the number of epochs and the history's rows.
NOT_STEP_KEYS = ("dataset", "data_path", "counts", "class_order", "selection", "normalization", "dim", "spread",
                 "L", "bias", "width", "depth", "feature_dim", "init", "epochs", "seed", "metric_every",
                 "divergence_factor")
# lr steps after epochs 2 and 5 by a factor of 0.5, 4 steps of 5 rows per epoch, bf16 products (the CPU's autocast)
OTHER = dict(lr=3e-3, lr_milestones=[2, 5], lr_gamma=0.5, batch_size=5, precision="bf16")
OTHER_MEMBERS = [dict(L=1, lam_W=5e-4, lam_H=2e-3, lam_backbone=1e-3, run_name="L1"),
                 dict(L=3, lam_W=[2e-3, 1e-3, 5e-4], lam_H=5e-4, lam_backbone=2e-3, run_name="L3"),
                 dict(L=6, bias=False, lam_W=3e-3, lam_H=2e-3, lam_backbone=5e-4, run_name="L6")]
#: The lever tests' two settings: KW's, and every step key at another value (OTHER, OTHER_MEMBERS).
SETTINGS = {"base": ({}, MEMBERS), "other": (OTHER, OTHER_MEMBERS)}


def _status(path):
    return json.loads((path / "provenance.json").read_text())["status"]


def _assert_same_histories(plain, other):
    for a, b in zip(plain, other):
        ha, hb = train.load_history(a), train.load_history(b)
        assert ha["epoch"].tolist() == hb["epoch"].tolist() == [0, 2, 4, 6]
        for col in COLUMNS:
            np.testing.assert_array_equal(ha[col], hb[col], err_msg=f"{b.name}: {col}")
        np.testing.assert_array_equal(np.loadtxt(a / train.CLASS_ACCURACY, delimiter=",", skiprows=1),
                                      np.loadtxt(b / train.CLASS_ACCURACY, delimiter=",", skiprows=1))


def test_the_levers_are_off_by_default_and_execution_keys():
    assert train.DEFAULTS["grouped_adam"] is False and train.DEFAULTS["steps_per_graph"] == 1
    assert train.DEFAULTS["deferred_metrics"] is False
    assert set(train.LEVER_KEYS) == {"grouped_adam", "steps_per_graph", "deferred_metrics", "adam_in_backward"}
    assert train.DEFAULTS["adam_in_backward"] is False
    assert set(train.LEVER_KEYS) <= set(train.EXECUTION_KEYS)
    p = train.check_params(**KW)
    assert p["grouped_adam"] is False and p["steps_per_graph"] == 1 and p["deferred_metrics"] is False


def test_deferred_metrics_capture_their_graphs_thread_local():
    """The worker thread of deferred_metrics makes CUDA calls (it waits on an event, frees pinned memory) while a
    graph may be captured: those runs capture in the "thread_local" mode, which such calls cannot invalidate;
    the others in PyTorch's default, "global"; any other mode is refused by name."""
    ts = data.load("synthetic", counts=KW["counts"], dim=KW["dim"], seed=0)
    modes = {}
    for deferred in (False, True):
        for grouped in (False, True):
            engines = [train.Engine(ts, train.check_params(**KW, L=L, deferred_metrics=deferred, grouped_adam=grouped))
                       for L in (1, 3)]
            steps = [train.group_engines(engines)] if grouped else [e.step for e in engines]
            modes[deferred, grouped] = {s.capture_error_mode for s in steps}
    assert modes == {(False, False): {"global"}, (False, True): {"global"}, (True, False): {"thread_local"},
                     (True, True): {"thread_local"}}
    w = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="capture_error_mode must be one of"):
        nstep.AdamStep([w], lambda idx: (w * w).sum(), "cpu", lr=0.1, batch_size=1, capture_error_mode="local")


def test_the_other_setting_moves_every_step_key():
    """Every defining parameter either reaches the step (STEP_KEYS) or does not (NOT_STEP_KEYS), and the lever
    tests' other setting gives each step key, in every run, a value that is neither its default nor KW's: a
    parameter added to the run fails here until it is placed, and a step key left at its default in the other
    setting would let a lever that ignores it pass."""
    defining = train.defining_params(train.check_params(**KW))
    assert sorted(STEP_KEYS + NOT_STEP_KEYS) == sorted(defining)
    # the defaults as check_params resolves them ("reference" decays: K x 1e-5), with counts that hold a default batch
    default = train.check_params(**{**KW, "counts": [128] * len(KW["counts"]),
                                    **{k: train.DEFAULTS[k] for k in STEP_KEYS}})
    base = [train.check_params(**{**KW, **m}) for m in MEMBERS]
    other = [train.check_params(**{**KW, **OTHER, **m}) for m in OTHER_MEMBERS]
    for key in STEP_KEYS:
        for q, b in zip(other, base):
            assert q[key] != default[key] and q[key] != b[key], key
    assert len({str(q["lam_W"]) for q in other}) == len(other)  # the runs of a group differ in their decays too


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_grouped_adam_runs_equal_plain_runs_number_for_number(tmp_path, setting):
    """L = 1, 3, 6 side by side, one Adam for the three against one Adam each, across the lr steps; at KW's
    setting and with every parameter that reaches the step at another value (OTHER)."""
    kw, members = {**KW, **SETTINGS[setting][0]}, SETTINGS[setting][1]
    plain = train.run_many(members, out_dir=tmp_path / "plain", **kw)
    grouped = train.run_many(members, out_dir=tmp_path / "grouped", grouped_adam=True, **kw)
    _assert_same_histories(plain, grouped)
    steps = 6 * (sum(KW["counts"]) // kw["batch_size"])
    for a, b in zip(plain, grouped):
        pa, pb = (json.loads((p / "provenance.json").read_text()) for p in (a, b))
        assert pa["steps"] == pb["steps"] == steps
        assert json.loads((b / "params.json").read_text())["grouped_adam"] is True


@pytest.mark.parametrize("first", [False, True])
def test_grouped_adam_across_a_stop_and_resume(tmp_path, first):
    """Stopped at every metric epoch (max_train_s=0) and resumed, switching between the plain and the grouped Adam
    at each call (execution keys: the checkpoint is each run's own Adam state), the runs equal uninterrupted
    plain runs."""
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **KW)
    parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, grouped_adam=first, **KW)
    use, calls = not first, 1
    while _status(parts[0]) == "stopped":
        parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True, grouped_adam=use,
                               **KW)
        use, calls = not use, calls + 1
    assert calls == 3 and [_status(p) for p in parts] == ["finished"] * 3
    _assert_same_histories(plain, parts)
    for path in parts:  # each segment says how its call trained
        segments = json.loads((path / "provenance.json").read_text())["segments"]
        assert [s["levers"]["grouped_adam"] for s in segments] == [first, not first, first]


@pytest.mark.parametrize("async_metrics", [False, True])
def test_deferred_metrics_rows_equal_plain_rows_number_for_number(tmp_path, async_metrics):
    """Metric epochs that queue their device work and complete the row later (in the worker thread with
    async_metrics, while the main thread trains on and changes the parameters in place) give the rows of the
    plain engine, across the lr step and with grouped_adam too."""
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **KW)
    deferred = train.run_many(MEMBERS, out_dir=tmp_path / "deferred", deferred_metrics=True,
                              async_metrics=async_metrics, **KW)
    _assert_same_histories(plain, deferred)
    both = train.run_many(MEMBERS, out_dir=tmp_path / "both", deferred_metrics=True, grouped_adam=True,
                          async_metrics=async_metrics, **KW)
    _assert_same_histories(plain, both)
    for path in deferred:
        prov = json.loads((path / "provenance.json").read_text())
        assert prov["status"] == "finished" and prov["async_metrics"] is async_metrics


def test_deferred_metrics_across_a_stop_and_resume(tmp_path):
    """Stopped at every metric epoch (the stop waits for the newest row and checks it) and resumed with and
    without the lever, the runs equal uninterrupted plain runs."""
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **KW)
    parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, deferred_metrics=True,
                           async_metrics=True, **KW)
    use, calls = False, 1
    while _status(parts[0]) == "stopped":
        parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True,
                               deferred_metrics=use, async_metrics=True, **KW)
        use, calls = not use, calls + 1
    assert calls == 3
    _assert_same_histories(plain, parts)


@pytest.mark.parametrize("epochs, max_train_s", [(12, None), (2, None), (12, 0)])
def test_a_deferred_run_that_diverges_ends_at_the_same_row(tmp_path, epochs, max_train_s):
    """A divergence is seen one metric epoch later with deferred_metrics; the run is still written as diverged,
    its history ending at the row that shows it, as the plain engine's does, and the other runs go on.  Where
    no later metric epoch comes, the diverging one is checked at once: it is the run's last (epochs 2), or the
    call stops there for time (max_train_s 0), and a diverged run keeps no checkpoint."""
    kw = dict(KW, epochs=epochs, lr_milestones=[], divergence_factor=2.0, lr=0.2, max_train_s=max_train_s)
    ended = "finished" if max_train_s is None else "stopped"  # L = 3 and 6 diverge at epoch 2, L = 1 goes on
    histories = {}
    for deferred in (False, True):
        with pytest.raises(train.TrainingDiverged) as err:
            train.run_many(MEMBERS, out_dir=tmp_path / str(deferred), deferred_metrics=deferred, **kw)
        runs = [tmp_path / str(deferred) / m["run_name"] for m in MEMBERS]
        histories[deferred] = [train.load_history(r) for r in runs]
        assert [_status(r) for r in runs] == [ended, "diverged", "diverged"]
        assert str(err.value).count("diverged at epoch 2") == 2
        assert [(r / train.CHECKPOINT).exists() for r in runs] == [ended == "stopped", False, False]
    for ha, hb in zip(histories[False], histories[True]):
        assert ha["epoch"].tolist() == hb["epoch"].tolist()
        for col in COLUMNS:
            np.testing.assert_array_equal(ha[col], hb[col])


def test_a_deferred_run_that_diverges_drops_the_later_row_its_worker_still_computes(tmp_path, monkeypatch):
    """With a worker thread (async_metrics) a row stays pending until its host metrics are computed; the row after
    the diverging one, recorded before the divergence is seen, is dropped also while it is still pending (its
    metrics are held here until the run drops its later rows): the history ends at the row that shows it."""
    import threading

    from nclib import runfolder

    real_metrics, real_drop = train.Engine.host_metrics, runfolder.RunFolder.drop_rows_after
    dropped, calls = threading.Event(), []

    def held(self, payload):  # the third row's (epoch 4's) metrics, in the worker thread
        calls.append(None)
        if len(calls) == 3:
            assert dropped.wait(timeout=60), "the run never dropped its later rows"
        return real_metrics(self, payload)

    def drop_rows_after(self, epoch):
        real_drop(self, epoch)
        dropped.set()

    monkeypatch.setattr(train.Engine, "host_metrics", held)
    monkeypatch.setattr(runfolder.RunFolder, "drop_rows_after", drop_rows_after)
    kw = dict(KW, epochs=12, lr_milestones=[], divergence_factor=2.0, lr=0.2)  # L = 3 diverges at epoch 2
    with pytest.raises(train.TrainingDiverged, match="diverged at epoch 2"):
        train.run_many(MEMBERS[1:2], out_dir=tmp_path, deferred_metrics=True, async_metrics=True, **kw)
    assert dropped.is_set() and len(calls) == 3
    assert _status(tmp_path / "L3") == "diverged" and train.load_history(tmp_path / "L3")["epoch"].tolist() == [0, 2]


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_adam_in_backward_runs_equal_plain_runs_number_for_number(tmp_path, setting):
    """Each parameter's Adam step taken by a hook inside the backward pass gives the plain runs, across the lr
    steps: Adam is elementwise per parameter, and no later part of the backward pass reads a parameter once its
    gradient is complete; at KW's setting and with every parameter that reaches the step at another value."""
    kw, members = {**KW, **SETTINGS[setting][0]}, SETTINGS[setting][1]
    plain = train.run_many(members, out_dir=tmp_path / "plain", **kw)
    inside = train.run_many(members, out_dir=tmp_path / "inside", adam_in_backward=True, **kw)
    _assert_same_histories(plain, inside)
    with_deferred = train.run_many(members, out_dir=tmp_path / "both", adam_in_backward=True, deferred_metrics=True,
                                   **kw)
    _assert_same_histories(plain, with_deferred)


def test_adam_in_backward_across_a_stop_and_resume(tmp_path):
    """Stopped at every metric epoch and resumed, switching the lever off and on at each call: the checkpoint's
    Adam state is the same whoever took the steps."""
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **KW)
    parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, adam_in_backward=True, **KW)
    use, calls = False, 1
    while _status(parts[0]) == "stopped":
        parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True,
                               adam_in_backward=use, **KW)
        use, calls = not use, calls + 1
    assert calls == 3
    _assert_same_histories(plain, parts)


def test_adam_in_backward_step_holds_one_state_and_one_rate():
    """nclib.step.AdamStep(adam_in_backward=True): the hooks step every parameter once per step, the state a
    checkpoint takes holds every parameter, and set_lr reaches every parameter's Adam."""
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    X, Y = torch.randn(16, 4), torch.randn(16, 2)
    steps = [nstep.AdamStep(net.parameters(), lambda idx, net=net: ((net(X[idx]) - Y[idx]) ** 2).mean(), "cpu",
                            lr=1e-2, batch_size=4, adam_in_backward=flag) for net, flag in zip(nets, (False, True))]
    batches = torch.arange(16).view(4, 4)
    for k, lr in enumerate((1e-2, 1e-2, 3e-3, 3e-3)):
        for st in steps:
            st.set_lr(lr)
            st.run_steps(batches[k:k + 1])
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.equal(a, b) and b.grad is None  # the hook freed the gradient
    before = [q.detach().clone() for q in nets[1].parameters()]
    (nets[1](X) ** 2).sum().backward()  # a backward pass outside a step only accumulates gradients
    assert all(torch.equal(a, q) and q.grad is not None for a, q in zip(before, nets[1].parameters()))
    nets[1].zero_grad(set_to_none=True)
    assert steps[0].take_loss() == steps[1].take_loss()
    saved = [st.state_dict() for st in steps]
    assert len(saved[1]["opt"]["state"]) == 4 and saved[1]["steps_done"] == 4
    for i in range(4):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(saved[0]["opt"]["state"][i][key], saved[1]["opt"]["state"][i][key])
    assert all(g["lr"] == 3e-3 for opt in steps[1].in_backward.values() for g in opt.param_groups)
    with pytest.raises(ValueError, match="adam_in_backward"):
        nstep.GroupedAdamStep([steps[1]])
    with pytest.raises(ValueError, match="adam_in_backward"):
        nstep.AdamStep(nets[0].parameters(), steps[0].objective, "cpu", lr=1e-2, batch_size=4, adam_in_backward=1)


def test_adam_in_backward_is_refused_with_grouped_adam_and_unless_a_bool():
    with pytest.raises(ValueError, match="adam_in_backward=True .* grouped_adam=True"):
        train.check_params(**KW, adam_in_backward=True, grouped_adam=True)
    with pytest.raises(ValueError, match="adam_in_backward must be True or False"):
        train.check_params(**KW, adam_in_backward="true")


def test_deferred_metrics_is_refused_unless_a_bool():
    with pytest.raises(ValueError, match="deferred_metrics must be True or False"):
        train.check_params(**KW, deferred_metrics="yes")


def test_grouped_engines_equal_engines_stepped_alone():
    """The grouped step's parameters and Adam state (each run's checkpoint) equal those of per-run Adam steps."""
    p = train.check_params(**KW)
    ts = data.load("synthetic", counts=p["counts"], dim=p["dim"], seed=p["seed"])
    alone = [train.Engine(ts, train.check_params(**{**KW, **m})) for m in MEMBERS]
    grouped = [train.Engine(ts, train.check_params(**{**KW, **m, "grouped_adam": True})) for m in MEMBERS]
    group = train.group_engines(grouped)
    train.train_epochs_together(alone, 3)
    train.train_epochs_together(grouped, 3)
    assert [e.steps_done for e in grouped] == [15] * 3 and group.note == "off"
    for a, b in zip(alone, grouped):
        assert a.take_loss() == b.take_loss()
        for pa, pb in zip(a.model.parameters(), b.model.parameters()):
            assert torch.equal(pa, pb)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa["steps_done"] == sb["steps_done"] == 15
        for i, st in sa["opt"]["state"].items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(torch.as_tensor(st[key]), torch.as_tensor(sb["opt"]["state"][i][key])), (i, key)
    with pytest.raises(RuntimeError, match="train_epochs_together"):
        grouped[0].train_epoch()
    # a grouped run's rate is the group's: set alone it would only change the rate the run reports
    with pytest.raises(RuntimeError, match="group.set_lr"):
        grouped[0].set_lr(1e-2)
    assert [e.current_lr for e in grouped] == [1e-3] * 3 and group.opt.param_groups[0]["lr"] == 1e-3
    group.set_lr(2e-3)
    assert [e.current_lr for e in grouped] == [2e-3] * 3 and group.opt.param_groups[0]["lr"] == 2e-3
    with pytest.raises(ValueError, match="grouped already"):
        train.group_engines(grouped)
    # part of a group with an engine of its own: refused before any epoch is queued, so no engine is ahead
    extra = train.Engine(ts, train.check_params(**KW))
    with pytest.raises(ValueError, match="^engines: a group's engines are trained all together"):
        train.train_epochs_together([extra, *grouped[:2]], 1)
    assert extra.steps_done == 0 and [e.steps_done for e in grouped] == [15] * 3
    # one run given twice would take each epoch twice: refused before the device is waited for or a step taken
    for together in (train.train_epochs_together, train.time_side_by_side):
        with pytest.raises(ValueError, match="^engines must be distinct"):
            together([extra, extra], 1)
        with pytest.raises(ValueError, match="^engines must be a non-empty list of Engine"):
            together([1, 2], 1)
    assert extra.steps_done == 0


def test_grouping_refusals_name_the_argument():
    p = train.check_params(**KW)
    ts = data.load("synthetic", counts=p["counts"], dim=p["dim"], seed=p["seed"])
    with pytest.raises(ValueError, match="engines must"):
        train.group_engines([train.Engine(ts, p)])  # made without grouped_adam
    with pytest.raises(ValueError, match="steps must"):
        nstep.GroupedAdamStep([])
    a = train.Engine(ts, train.check_params(**{**KW, "grouped_adam": True}))
    b = train.Engine(ts, train.check_params(**{**KW, "grouped_adam": True, "lr": 2e-3}))
    with pytest.raises(ValueError, match="steps differ in lr"):
        nstep.GroupedAdamStep([a.step, b.step])
    # a run one epoch ahead: one Adam step count (its bias correction) cannot serve both
    ahead = train.Engine(ts, train.check_params(**{**KW, "grouped_adam": True}))
    ahead.train_epoch()
    ahead.take_loss()
    assert ahead.steps_done > 0 == a.steps_done
    with pytest.raises(ValueError, match="steps differ in steps_done"):
        nstep.GroupedAdamStep([a.step, ahead.step])
    with pytest.raises(ValueError, match="steps differ in steps_done"):
        train.group_engines([a, ahead])
    assert a.group is None and ahead.group is None and a.step._grouped_state is None
    with pytest.raises(ValueError, match="cuda_graph"):
        nstep.GroupedAdamStep([a.step], cuda_graph="yes")
    with pytest.raises(ValueError, match="^steps_per_graph = 2 takes several steps"):  # no CUDA graph on the CPU
        nstep.GroupedAdamStep([a.step], steps_per_graph=2)
    assert a.step._grouped_state is None
    # the engines' schedules and capture modes must agree too: another step decay of the learning rate, or a
    # run whose worker thread needs the thread-local capture grouped after one that does not
    for other in (dict(lr_milestones=[4]), dict(lr_gamma=0.5), dict(deferred_metrics=True), dict(precision="bf16")):
        c = train.Engine(ts, train.check_params(**{**KW, "grouped_adam": True, **other}))
        with pytest.raises(ValueError, match=f"engines differ in '{next(iter(other))}'"):
            train.group_engines([a, c])
        assert a.group is None and c.group is None  # refused before any engine is grouped
    # a run given twice would take each step twice: refused, nothing grouped
    with pytest.raises(ValueError, match="^engines must be distinct"):
        train.group_engines([a, a])
    with pytest.raises(ValueError, match="^steps must be distinct"):
        nstep.GroupedAdamStep([a.step, a.step])
    assert a.group is None and a.step._grouped_state is None
    train.group_engines([a, train.Engine(ts, train.check_params(**{**KW, "grouped_adam": True, "L": 2}))])
    # a run is in one group only, and stepped only by it: its own Adam would start from a stale state
    with pytest.raises(ValueError, match="^steps must not be grouped already"):
        nstep.GroupedAdamStep([a.step])
    before = [q.detach().clone() for q in a.model.parameters()]
    with pytest.raises(RuntimeError, match="GroupedAdamStep"):
        a.step.run_steps(a.batches()[:1])
    with pytest.raises(RuntimeError, match="GroupedAdamStep"):
        a.step.run(a.batches()[0])
    with pytest.raises(RuntimeError, match="GroupedAdamStep"):
        a.step(a.batches()[0])
    assert a.steps_done == 0 and all(torch.equal(x, q) for x, q in zip(before, a.model.parameters()))


def test_lever_parameters_are_refused_by_name():
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="steps_per_graph"):
            train.check_params(**{**KW, "steps_per_graph": bad})
    for bad in (1, "true", None):
        with pytest.raises(ValueError, match="grouped_adam"):
            train.check_params(**{**KW, "grouped_adam": bad})
    # several steps per graph replay need a CUDA graph: refused on the CPU and with cuda_graph=False
    with pytest.raises(ValueError, match="steps_per_graph"):
        train.check_params(**{**KW, "steps_per_graph": 2})
    with pytest.raises(ValueError, match="steps_per_graph"):
        train.check_params(**{**KW, "device": "auto", "cuda_graph": False, "steps_per_graph": 4})
    w = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="steps_per_graph"):
        nstep.AdamStep([w], lambda idx: (w * w).sum(), "cpu", lr=0.1, batch_size=2, steps_per_graph=3)
    # the step refuses as a run's parameters do (one check, nclib.parameters'), naming the device at hand
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="^steps_per_graph must be a positive integer"):
            nstep.AdamStep([w], lambda idx: (w * w).sum(), "cpu", lr=0.1, batch_size=2, steps_per_graph=bad)
    for cuda_graph in ("auto", False):
        with pytest.raises(ValueError, match="^steps_per_graph = 3 takes several steps .* device 'cpu'"):
            nstep.AdamStep([w], lambda idx: (w * w).sum(), "cpu", lr=0.1, batch_size=2, cuda_graph=cuda_graph,
                           steps_per_graph=3)
        with pytest.raises(ValueError, match="^steps_per_graph = 3 takes several steps .* device 'cpu'"):
            train.check_params(**{**KW, "device": "cpu", "cuda_graph": cuda_graph, "steps_per_graph": 3})


# ------------------------------------------------------------------------------------------ on a GPU

GPU_KW = dict(KW, device="cuda", counts=[40, 30, 20], width=64, batch_size=8, epochs=6)  # 11 steps per epoch
#: OTHER on a GPU: the step's own precision setting, TF32 products, and 15 steps of 6 rows per epoch.
GPU_OTHER = dict(OTHER, precision="tf32", batch_size=6)


@cuda_only
@pytest.mark.parametrize("levers,setting", [
    *((levers, "base") for levers in (
        dict(grouped_adam=True), dict(steps_per_graph=4), dict(steps_per_graph=11),
        dict(grouped_adam=True, steps_per_graph=3), dict(deferred_metrics=True),
        dict(grouped_adam=True, steps_per_graph=4, deferred_metrics=True),
        dict(adam_in_backward=True), dict(adam_in_backward=True, steps_per_graph=4))),
    (dict(grouped_adam=True), "other"), (dict(grouped_adam=True, steps_per_graph=4), "other"),
    (dict(adam_in_backward=True), "other"), (dict(adam_in_backward=True, steps_per_graph=4), "other")])
def test_cuda_levers_equal_the_plain_engine_bit_for_bit(tmp_path, levers, setting):
    """On a GPU the lever runs equal the plain runs bit for bit (every column but the wall time), with a
    remainder graph where steps_per_graph does not divide the 11 (or 15) steps of an epoch: the grouped fused Adam
    is the per-run fused kernel over more tensors, a k-step graph the kernels of k one-step graphs in order.  The
    levers that build Adams of their own (grouped_adam, adam_in_backward) also with every parameter that reaches
    the step at another value (GPU_OTHER, OTHER_MEMBERS): the GPU's fused Adams are made apart from the CPU's."""
    kw, members = (GPU_KW, MEMBERS) if setting == "base" else ({**GPU_KW, **GPU_OTHER}, OTHER_MEMBERS)
    plain = train.run_many(members, out_dir=tmp_path / "plain", **kw)
    lever = train.run_many(members, out_dir=tmp_path / "lever", **kw, **levers)
    _assert_same_histories(plain, lever)
    for path in lever:
        note = json.loads((path / "provenance.json").read_text())["cuda_graph"]
        assert note.startswith("on"), note


@cuda_only
def test_cuda_grouped_adam_across_a_stop_and_resume(tmp_path):
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **GPU_KW)
    parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, grouped_adam=True, **GPU_KW)
    while _status(parts[0]) == "stopped":
        parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True, grouped_adam=True,
                               steps_per_graph=2, **GPU_KW)
    _assert_same_histories(plain, parts)


@cuda_only
def test_cuda_a_grouped_run_resumed_alone_is_still_captured(tmp_path):
    """A run stopped while grouped (its own Adam made without a graph) and resumed without grouped_adam, and back:
    every segment's steps are captured graphs, and the runs equal uninterrupted plain runs bit for bit."""
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **GPU_KW)
    parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, grouped_adam=True, **GPU_KW)
    use = False
    while _status(parts[0]) == "stopped":
        parts = train.run_many(MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True, grouped_adam=use,
                               **GPU_KW)
        use = not use
    _assert_same_histories(plain, parts)
    for path in parts:
        segments = json.loads((path / "provenance.json").read_text())["segments"]
        assert len(segments) > 1 and all(s["cuda_graph"].startswith("on") for s in segments), segments


@cuda_only
@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_cuda_paper_width_levers_equal_the_plain_engine(tmp_path, precision):
    """At the paper's width and batch, the losses and objective of the lever runs equal the plain runs' bit for
    bit (scripts/gpu_figures.sh runs -k cuda)."""
    kw = dict(dataset="synthetic", counts=[200, 200, 200], dim=3072, width=2048, depth=6, epochs=4, batch_size=128,
              lr=1e-4, metric_every=2, progress=False, device="cuda", precision=precision)
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **kw)
    lever = train.run_many(MEMBERS, out_dir=tmp_path / "lever", grouped_adam=True, steps_per_graph=4, **kw)
    for a, b in zip(plain, lever):
        ha, hb = train.load_history(a), train.load_history(b)
        for k in ("loss", "objective", "nc1"):
            np.testing.assert_array_equal(ha[k], hb[k], err_msg=f"{b.name}: {k}")


@cuda_only
def test_cuda_paper_width_deferred_rows_equal_the_plain_rows(tmp_path):
    """At the paper's width and learning rate, a metric epoch after every epoch: the deferred rows (device work and pinned copies queued on each run's stream, read in the worker
    thread while the next epochs run) equal the rows computed at once, bit for bit."""
    kw = dict(dataset="synthetic", counts=[200, 200, 200], dim=3072, width=2048, depth=6, epochs=6, batch_size=128,
              lr=1e-4, metric_every=1, progress=False, device="cuda", precision="tf32")
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **kw)
    deferred = train.run_many(MEMBERS, out_dir=tmp_path / "deferred", deferred_metrics=True, **kw)
    for a, b in zip(plain, deferred):
        ha, hb = train.load_history(a), train.load_history(b)
        assert hb["epoch"].tolist() == list(range(7))
        for k in COLUMNS:
            np.testing.assert_array_equal(ha[k], hb[k], err_msg=f"{b.name}: {k}")


def test_the_benchmark_measures_each_lever_beside_the_plain_engine(tmp_path, capsys):
    """benchmarks/bench_train.py --levers: one record with the plain engine and each lever (steps/s of one run,
    a figure's runs side by side per epoch, whether the runs ended bit for bit as the plain engine's), a lever
    refused on the CPU recorded with its error and the others measured."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", train.ROOT / "benchmarks" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "levers.json"
    bench.main(["--device", "cpu", "--width", "16", "--depth", "2", "--steps", "20", "--figure-epochs", "1",
                "--threads", "1", "--levers", "plain", "grouped_adam=true", "steps_per_graph=4",
                "deferred_metrics=true", "--json", str(path)])
    record = json.loads(path.read_text())
    assert {"device", "torch", "precision", "commit", "epoch_ms_floor", "levers"} <= set(record)
    levers = record["levers"]
    assert list(levers) == ["plain", "grouped_adam=true", "steps_per_graph=4", "deferred_metrics=true"]
    for name in ("plain", "grouped_adam=true", "deferred_metrics=true"):
        assert levers[name]["steps_per_s"] > 0 and levers[name]["epoch_ms_side_by_side"] > 0
        assert levers[name]["metric_epochs"] == 1 and np.isfinite(levers[name]["metric_ms_seen_by_training"])
    assert levers["grouped_adam=true"]["settings"] == {"grouped_adam": True}
    assert levers["grouped_adam=true"]["same_as_plain"] is True and "same_as_plain" not in levers["plain"]
    assert "steps_per_graph" in levers["steps_per_graph=4"]["error"]
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--levers", "plain", "--json", "auto"])


@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--repeats", "0"), ("--warmup", "-1"),
                                        ("--threads", "0"), ("--figure-epochs", "-2"), ("--width", "0")])
def test_the_benchmark_refuses_a_bad_count_by_its_flag(flag, value, capsys):
    """benchmarks/bench_train.py refuses, before any timing, a count it cannot time (``--steps 0`` divided by
    None, ``--warmup 0 --steps 0`` never returned), naming the flag."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", train.ROOT / "benchmarks" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--device", "cpu", flag, value])
    assert stop.value.code == 2 and f"{flag} must be at least" in capsys.readouterr().err


def test_the_benchmarks_parameter_hash_tells_runs_apart():
    """bench_train.params_sha256, on which ``same_as_plain`` rests: equal for runs equal bit for bit, different for
    runs from another seed or after one more step."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", train.ROOT / "benchmarks" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    p = train.check_params(**KW)
    ts = data.load("synthetic", counts=p["counts"], dim=p["dim"], seed=p["seed"])
    a, b = train.Engine(ts, p), train.Engine(ts, p)
    other = train.Engine(ts, train.check_params(**{**KW, "seed": 1}))
    assert bench.params_sha256([a]) == bench.params_sha256([b]) != bench.params_sha256([other])
    a.train_steps(1)
    assert bench.params_sha256([a]) != bench.params_sha256([b])
    b.train_steps(1)
    assert bench.params_sha256([a]) == bench.params_sha256([b])


def test_the_benchmark_times_both_loops_in_alternation(tmp_path, capsys):
    """benchmarks/bench_train.py: each loop timed ``--repeats`` times, the two in alternation; the output and the
    record give the medians and every repeat, the commit and the timing's settings."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", train.ROOT / "benchmarks" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = []
    first, second = (lambda steps: calls.append(("a", steps)) or 2.0), (lambda steps: calls.append(("b", steps)) or 1.0)
    assert bench.interleaved(first, second, 5, 3) == ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert calls == [("a", 5), ("b", 5), ("b", 5), ("a", 5), ("a", 5), ("b", 5)]
    path = tmp_path / "cpu.json"
    bench.main(["--device", "cpu", "--width", "16", "--depth", "1", "--steps", "4", "--warmup", "1",
                "--repeats", "3", "--threads", "1", "--json", str(path)])
    record = json.loads(path.read_text())
    rates = record["steps_per_s_repeats"]
    assert [len(rates[k]) for k in ("engine", "plain")] == [3, 3]
    assert record["steps_per_s"] == {k: float(np.median(rates[k])) for k in ("engine", "plain")}
    assert record["timing"]["steps"] == 4 and record["timing"]["repeats"] == 3 and record["cuda"] is None
    out = tmp_path / "out.txt"
    out.write_text(capsys.readouterr().out)
    b = figures.read_benchmark(out)
    assert b["commit"].startswith(record["commit"])
    assert b["engine_range"][0] <= b["engine"] <= b["engine_range"][1]
    np.testing.assert_allclose(b["engine_range"], [min(rates["engine"]), max(rates["engine"])], rtol=1e-3, atol=0.06)
    np.testing.assert_allclose(b["plain_range"], [min(rates["plain"]), max(rates["plain"])], rtol=1e-3, atol=0.06)
    # the printed ratio is the median of the rounds' ratios (each round times both loops), within its range
    rounds = [e / q for e, q in zip(rates["engine"], rates["plain"])]
    assert abs(b["ratio"] - np.median(rounds)) <= 0.005 + 1e-12
    np.testing.assert_allclose(b["ratio_range"], [min(rounds), max(rounds)], atol=0.005 + 1e-12)


def test_a_lever_spec_is_read_by_the_one_grammar():
    """benchmarks/bench_train.py --levers SPEC: ``plain`` or comma-separated settings of the levers, each value read
    by nclib.parameters.parse_value; another name, or a setting that grammar refuses, is refused naming --levers."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", train.ROOT / "benchmarks" / "bench_train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.parse_lever("plain") == {}
    got = bench.parse_lever("grouped_adam=true,steps_per_graph=23")
    assert got == {"grouped_adam": True, "steps_per_graph": 23} and type(got["steps_per_graph"]) is int
    assert bench.parse_lever("deferred_metrics=False") == {"deferred_metrics": False}
    for bad in ("lr=1e-3", "grouped_adam", "grouped_adam=", "grouped_adam=true,,steps_per_graph=2", "=true"):
        with pytest.raises(ValueError, match="--levers"):
            bench.parse_lever(bad)
