"""nclib.engine on the CPU: training against an independent plain-torch loop (an Engine's epochs and a whole
nclib.train.run across a step of the rate: the networks bit for bit, the run's objective column), a run's checkpoint
(all or nothing when loaded, a copy), the features of a training set larger than one chunk."""
import copy

import numpy as np
import pytest
import torch

from nclib import data, engine, models, train, ufm

KW = dict(dataset="synthetic", counts=[12, 6, 3], dim=8, width=16, depth=2, epochs=4, batch_size=4, lr=1e-3,
          lam_W=1e-3, lam_H=1e-3, progress=False, device="cpu")


def _engine(**kw):
    p = train.check_params(**{**KW, **kw})
    return train.Engine(data.load_for(p), p)


def _snapshot(eng):
    return ([q.detach().clone() for q in eng.model.parameters()], eng.gen.get_state().clone(), eng.steps_done,
            eng.current_lr, copy.deepcopy(eng.step.opt.state_dict()))


def _same(a, b):
    (pa, ga, na, la, oa), (pb, gb, nb, lb, ob) = a, b
    return (all(torch.equal(x, y) for x, y in zip(pa, pb)) and torch.equal(ga, gb) and na == nb and la == lb
            and oa["state"].keys() == ob["state"].keys())


def test_a_refused_checkpoint_loads_nothing():
    """Every refusal of Engine.load_state_dict (a bad rate, a key missing, another network's tensors, Adam's
    state of other parameters, a bad step count or generator state) comes before anything is loaded: the engine
    is as made, and then takes the checkpoint."""
    a = _engine()
    a.train_epoch()
    a.take_loss()
    state = a.state_dict()
    other = _engine(L=2)
    other.train_epoch()
    other.take_loss()
    other_state = other.state_dict()
    moments = copy.deepcopy(state)
    moments["opt"]["state"][0]["exp_avg"] = torch.zeros(3)
    b = _engine()
    before = _snapshot(b)
    for bad, lr, name in [(state, 0.0, "lr"), ({k: v for k, v in state.items() if k != "gen"}, 1e-3, "state"),
                          ([state], 1e-3, "state"), (other_state, 1e-3, r"state\['model'\]"),
                          ({**state, "opt": other_state["opt"]}, 1e-3, r"state\['opt'\]"),
                          (moments, 1e-3, r"state\['opt'\]"),
                          ({**state, "steps_done": -1}, 1e-3, r"state\['steps_done'\]"),
                          ({**state, "gen": state["gen"].float()}, 1e-3, r"state\['gen'\]")]:
        with pytest.raises(ValueError, match=f"^{name} must|^{name}: "):
            b.load_state_dict(bad, lr)
        assert _same(_snapshot(b), before), name
    b.load_state_dict(state, 2e-3)
    assert b.steps_done == a.steps_done == 5 and b.current_lr == 2e-3
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    with pytest.raises(RuntimeError, match="before the run's first step"):
        b.load_state_dict(state, 1e-3)


def test_a_checkpoint_is_a_copy_that_training_on_leaves_as_it_was():
    """Engine.state_dict copies the model's and Adam's tensors: an epoch trained after it changes the run, not
    the checkpoint, and a run loaded from it continues as the run did."""
    a = _engine()
    a.train_epoch()
    a.take_loss()
    state = a.state_dict()
    kept = copy.deepcopy(state)
    live = {q.data_ptr() for q in a.model.parameters()}
    live |= {t.data_ptr() for st in a.step.opt.state.values() for t in st.values() if torch.is_tensor(t)}
    assert not live & {t.data_ptr() for t in state["model"].values()}
    assert not live & {t.data_ptr() for st in state["opt"]["state"].values() for t in st.values()}
    a.train_epoch()
    a.take_loss()
    for k, t in kept["model"].items():
        assert torch.equal(state["model"][k], t) and not torch.equal(a.model.state_dict()[k], t), k
    for i, st in kept["opt"]["state"].items():
        for key, t in st.items():
            assert torch.equal(state["opt"]["state"][i][key], t), (i, key)
    b = _engine()
    b.load_state_dict(state, 1e-3)
    b.train_epoch()
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def _reference_run(ts, p, epochs):
    """The same training written independently in plain torch: the network of the same seed, torch.optim.Adam over
    every parameter, F_B of (4.3) by hand (L2 terms on the head weights W_1..W_L, the bias b unpenalised, and
    lam_backbone's on the backbone's Linear weights, their biases unpenalised), the batches of a fresh permutation
    each epoch from a generator of the run's seed (the last partial batch dropped), the step schedule set at each
    epoch."""
    N, K = ts.N, ts.K
    B = N if p["batch_size"] == "full" else p["batch_size"]
    X, y = torch.tensor(ts.x, dtype=torch.float32), torch.tensor(ts.y)
    Y = torch.zeros(N, K)
    Y[torch.arange(N), y] = 1
    net = models.build_model(ts.x.shape[1], K, p["L"], width=p["width"], depth=p["depth"],
                             feature_dim=p["feature_dim"], bias=p["bias"], init=p["init"], seed=p["seed"])
    lam_W = p["lam_W"] if isinstance(p["lam_W"], list) else [p["lam_W"]] * p["L"]
    opt = torch.optim.Adam(net.parameters(), lr=p["lr"])
    gen = torch.Generator()
    gen.manual_seed(p["seed"])
    for epoch in range(1, epochs + 1):
        for group in opt.param_groups:
            group["lr"] = p["lr"] * p["lr_gamma"] ** sum(epoch > m for m in p["lr_milestones"])
        perm = torch.randperm(N, generator=gen)
        for s in range(N // B):
            idx = perm[s * B:(s + 1) * B]
            h = net.backbone(X[idx])
            out = h
            for layer in net.head:
                out = torch.nn.functional.linear(out, layer.weight, layer.bias)
            loss = ((out - Y[idx]) ** 2).sum() / (2 * B) + p["lam_H"] * N / (2 * B) * (h ** 2).sum()
            for lam, layer in zip(lam_W, net.head):
                loss = loss + lam / 2 * (layer.weight ** 2).sum()
            backbone = [layer.weight for layer in net.backbone if isinstance(layer, torch.nn.Linear)]
            loss = loss + p["lam_backbone"] / 2 * sum((W ** 2).sum() for W in backbone)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


@pytest.mark.parametrize("case", [dict(batch_size="full", L=2, counts=[1, 1]), dict(batch_size=4, L=1),
                                  dict(batch_size=5, L=3), dict(batch_size=7, L=2, bias=False),
                                  dict(batch_size=1, L=1, counts=[2, 1], bias=False),
                                  dict(batch_size=4, L=2, lam_W=0.0, lam_H=0.0),
                                  dict(batch_size=4, L=3, lam_W=[1e-3, 0.0, 2e-3]),
                                  dict(batch_size=5, L=2, lam_backbone=0.3)],
                         ids=["full-L2", "B4-L1", "B5-L3", "B7-L2-nobias", "B1-L1-nobias", "B4-L2-nodecay",
                              "B4-L3-layer-decays", "B5-L2-backbone-decay"])
def test_training_equals_an_independent_torch_loop_exactly(case):
    """Three epochs of Engine (set_lr, then train_epoch, each epoch, called here as nclib.train's epoch loop calls
    them; that loop itself is compared in the next test), across a step of the rate after epoch 2, with L = 1, 2, 3,
    with and without bias, batches that do not divide N (21 samples in batches of 4 and 5), zero and per-layer
    decays, a decay of the backbone (lam_backbone), equal :func:`_reference_run`'s parameters bit for bit on the
    CPU: the same float32 operations in the same order."""
    p = train.check_params(**{**KW, "lr_milestones": [2], "epochs": 3, **case})
    ts = data.load_for(p)
    eng = train.Engine(ts, p)
    start = [q.detach().clone() for q in eng.model.parameters()]
    for epoch in range(1, 4):
        eng.set_lr(train.lr_at(epoch, p["lr"], p["lr_milestones"], p["lr_gamma"]))
        eng.train_epoch()
    ref = _reference_run(ts, p, 3)
    assert eng.steps_done == 3 * (ts.N // (ts.N if p["batch_size"] == "full" else p["batch_size"]))
    for (name, q), r, q0 in zip(eng.model.named_parameters(), ref.parameters(), start):
        assert torch.equal(q, r), name
        assert not torch.equal(q, q0), name  # every parameter trained, the head's bias too


def _objective(net, ts, p) -> float:
    """(4.3) of ``net`` on the whole training set, in float64 numpy from its float32 features: 1/(2N) ||P H + b 1^T
    - Y||^2 + sum_j lam_Wj/2 ||W_j||^2 + lam_H/2 ||H||^2, written out here (no nclib)."""
    with torch.no_grad():
        H = net.backbone(torch.tensor(ts.x, dtype=torch.float32)).double().numpy()
    Ws = [layer.weight.detach().double().numpy() for layer in net.head]
    P = Ws[0]
    for W in Ws[1:]:
        P = W @ P
    R = H @ P.T - np.eye(ts.K)[ts.y]
    if net.head[-1].bias is not None:
        R = R + net.head[-1].bias.detach().double().numpy()
    lam_W = p["lam_W"] if isinstance(p["lam_W"], list) else [p["lam_W"]] * p["L"]
    return float((R ** 2).sum() / (2 * ts.N) + p["lam_H"] / 2 * (H ** 2).sum()
                 + sum(lam / 2 * (W ** 2).sum() for lam, W in zip(lam_W, Ws)))


def test_a_run_across_a_step_of_the_rate_equals_an_independent_torch_loop(tmp_path):
    """nclib.train.run itself (its epoch loop, which sets each epoch's rate of :func:`nclib.engine.lr_at` before
    the epoch's steps), across the step of the rate after epoch 2 (lr = 1e-2, then 1e-3): the network of a run
    stopped at epoch 3 (``max_train_s=0``), as its checkpoint holds it, equals :func:`_reference_run`'s after 3
    epochs bit for bit, and the objective column of a run to epoch 4 equals (4.3) of the reference loop's network at
    every epoch 0-4 (float64 sums of the same float32 features, within 1e-12).  A rate set one epoch late (epoch 3
    at 1e-2) changes both."""
    kw = {**KW, "lr": 1e-2, "lr_milestones": [2], "lr_gamma": 0.1}
    p = train.check_params(**kw)
    ts = data.load_for(p)
    folder = train.run(**kw, metric_every=3, max_train_s=0, out_dir=tmp_path, run_name="stopped")
    state = torch.load(folder / train.CHECKPOINT, weights_only=False)
    assert state["epoch"] == 3
    ref = _reference_run(ts, p, 3)
    assert state["engine"]["steps_done"] == 3 * (ts.N // p["batch_size"])
    assert state["engine"]["model"].keys() == ref.state_dict().keys()
    for name, r in ref.state_dict().items():
        assert torch.equal(state["engine"]["model"][name], r), name
    h = train.load_history(train.run(**kw, metric_every=1, out_dir=tmp_path, run_name="whole"))
    assert h["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert h["lr"].tolist() == [1e-2, 1e-2, 1e-2, 1e-3, 1e-3]
    np.testing.assert_allclose(h["objective"], [_objective(_reference_run(ts, p, e), ts, p) for e in range(5)],
                               rtol=1e-12, atol=0)


def test_a_bias_free_run_records_the_bias_free_collapse_metrics(tmp_path):
    """The NC columns of a bias-free run's history are nclib.metrics.collapse_metrics with ``bias=False`` (the
    targets of Theorem 4.1's model, erratum M4) of the run's own features and head: an engine trained as the run
    trains (the same steps bit for bit) gives those arrays at the last epoch.  The bias case's targets differ
    there, so a run scored against them would record other numbers."""
    from nclib import metrics

    kw = {**KW, "bias": False, "L": 2, "epochs": 20, "metric_every": 10, "lam_W": [1e-3, 2e-3], "lam_H": 2e-3}
    h = train.load_history(train.run(**kw, out_dir=tmp_path))
    assert h["epoch"].tolist() == [0, 10, 20]
    p = train.check_params(**kw)
    ts = data.load_for(p)
    eng = train.Engine(ts, p)
    for epoch in range(1, 21):
        eng.set_lr(train.lr_at(epoch, p["lr"], p["lr_milestones"], p["lr_gamma"]))
        eng.train_epoch()
    assert eng.model.head_bias() is None
    H = eng.features().double().numpy()
    Ws = [W.detach().double().numpy() for W in eng.model.head_weights()]
    free = metrics.collapse_metrics(H, ts.y, Ws, [1e-3, 2e-3], 2e-3, bias=False)
    with_bias = metrics.collapse_metrics(H, ts.y, Ws, [1e-3, 2e-3], 2e-3, bias=True)
    for k in ("nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3"):
        assert h[k][-1] == free[k], k
    for k in ("nc2_w", "nc2_h", "nc2_wh", "nc3"):  # the geometry metrics: targets of another model
        assert abs(with_bias[k] - free[k]) > 0.1 * free[k], k


def test_features_of_more_rows_than_one_chunk_are_those_of_the_whole_set():
    """Engine.features computes H^T in chunks of 4096 rows: with N = 4500 (as EMNIST letters' 5500) every row is
    there, each agreeing with the network applied to the whole set at once, and the recorded objective is (4.3) of
    an independent implementation on those features."""
    p = train.check_params(**{**KW, "counts": [3000, 1500], "width": 4, "depth": 1, "batch_size": "full"})
    ts = data.load_for(p)
    eng = train.Engine(ts, p)
    assert ts.N == 4500 > 4096
    with torch.no_grad():
        whole = eng.model.features(eng.X)
    H = eng.features()
    assert H.shape == whole.shape == (4500, 4)
    torch.testing.assert_close(H, whole, rtol=1e-6, atol=0)
    Ws = [W.detach().double().numpy() for W in eng.model.head_weights()]
    b = eng.model.head_bias().detach().double().numpy()
    exact = ufm.objective(Ws, whole.double().numpy().T, b, ts.counts, [p["lam_W"]] * p["L"], p["lam_H"])
    np.testing.assert_allclose(eng.evaluate_device()[0]["objective"], exact, rtol=1e-6)


@pytest.mark.parametrize("init", ["orthogonal", "pytorch", "reference"])
def test_an_engine_starts_from_the_network_of_its_init_feature_dim_and_seed(init):
    """The network an Engine trains is nclib.models.build_model of the run's architecture, ``init``,
    ``feature_dim`` and ``seed``: every tensor equal to that of a network built with the same arguments (d = 5
    features, not the width 16; the inits and the seeds give different networks, so each of them reaches it)."""
    eng = _engine(init=init, feature_dim=5, seed=3, L=2)
    built = {q: models.build_model(8, 3, 2, width=16, depth=2, feature_dim=5, bias=True, init=q, seed=3)
             for q in ("reference", "orthogonal", "pytorch")}
    other_seed = models.build_model(8, 3, 2, width=16, depth=2, feature_dim=5, bias=True, init=init, seed=0)
    own = eng.model.state_dict()
    assert eng.model.d == 5 and own["backbone.4.weight"].shape == (5, 16) and own["head.0.weight"].shape == (5, 5)
    assert own["head.1.weight"].shape == (3, 5)
    assert own.keys() == built[init].state_dict().keys()
    for name, t in built[init].state_dict().items():
        assert torch.equal(own[name], t), name
    for net in [other_seed] + [built[q] for q in built if q != init]:
        assert not all(torch.equal(own[name], t) for name, t in net.state_dict().items())


def test_an_engine_refuses_parameters_the_checker_refuses_and_another_training_set():
    """Engine checks its parameters again with nclib.parameters.checked (the checker of every run) and compares
    the training set's class counts with those of ``p``: each refusal is a ValueError naming the argument, where
    the engine would otherwise fail on a missing key, divide by a batch of 0, train fp32 under another precision's
    name, a negative decay, or train on N = 7 samples for parameters of N = 70."""
    p = train.check_params(**KW)
    ts = data.load_for(p)
    for bad, name in [({}, "p must be a checked parameter set"), ([p], "p must be a checked parameter set"),
                      ({k: v for k, v in p.items() if k != "device"}, r"p must .*missing \['device'\]"),
                      ({**p, "lam_H": -1.0}, "lam_H must be"), ({**p, "lam_backbone": -1.0}, "lam_backbone must be"),
                      ({**p, "lam_W": -1.0}, "lam_W"), ({**p, "precision": "fp16"}, "precision must be one of"),
                      ({**p, "batch_size": 0}, "batch_size .*must be a positive integer"),
                      ({**p, "lr": -1.0}, "lr must be"), ({**p, "device": "gpu"}, "device must be"),
                      ({**p, "counts": [120, 60, 30]}, r"ts holds the class counts \[12, 6, 3\] \(N = 21\), but "
                                                       r"p\['counts'\] gives \[120, 60, 30\]"),
                      ({**p, "counts": [6, 12, 3]}, r"ts holds the class counts")]:
        with pytest.raises(ValueError, match=f"^{name}"):
            train.Engine(ts, bad)
    with pytest.raises(ValueError, match="^ts must be the training set"):
        train.Engine(ts.x, p)
    eng = train.Engine(ts, p)  # the checked set itself is taken as it is
    assert eng.p == p and eng.N == 21 and eng.B == 4


def test_the_capture_mode_follows_deferred_metrics_and_refuses_other_parameters():
    """nclib.engine.capture_mode: "thread_local" with deferred_metrics (its worker thread makes CUDA calls while
    a graph may be captured), "global" without; a ValueError names p, or its deferred_metrics, otherwise."""
    p = train.check_params(**KW)
    assert engine.capture_mode(p) == "global"
    assert engine.capture_mode(train.check_params(**KW, deferred_metrics=True)) == "thread_local"
    for bad, name in (({}, "p must be a run's parameters"), ([p], "p must be a run's parameters"),
                      ({**p, "deferred_metrics": 1}, r"p\['deferred_metrics'\] must be True or False")):
        with pytest.raises(ValueError, match=f"^{name}"):
            engine.capture_mode(bad)


def test_a_cpu_run_names_its_device_cpu_whatever_the_system_calls_the_processor(tmp_path, monkeypatch):
    """What was wrong: a CPU engine's device_name was platform.processor() (uname -p), "" on some systems (recorded
    "cpu") and "x86_64" on others, so that a CPU run stopped under one system was refused as started on "another
    device" when resumed on the same CPU under the other.  device_name is "cpu" on every CPU (every committed CPU
    provenance records that); the CPU's model is host_cpu, which the resume compares on its own."""
    import json
    import platform

    from nclib import provenance, runs

    names = []
    for processor in ("", "x86_64", "aarch64"):
        monkeypatch.setattr(platform, "processor", lambda processor=processor: processor)
        names.append(_engine().device_name)
    assert names == ["cpu"] * 3
    monkeypatch.setattr(provenance, "cpu_name", lambda: "the CPU model")  # one CPU, whatever /proc/cpuinfo says
    monkeypatch.setattr(platform, "processor", lambda: "")
    kw = dict(KW, epochs=10**6, metric_every=2, out_dir=tmp_path, run_name="r")
    folder = train.run(**kw, max_train_s=0)  # stopped at epoch 2
    monkeypatch.setattr(platform, "processor", lambda: "x86_64")
    train.run(**kw, max_train_s=0, resume=True)  # the same CPU under another system: resumed, not refused
    assert runs.run_status(folder) == "stopped" and train.load_history(folder)["epoch"].tolist() == [0, 2, 4]
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["device_name"] == "cpu" and prov["host_cpu"] == "the CPU model"
