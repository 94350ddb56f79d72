"""nclib.train on CPU: the objective and its mini-batch estimate, a short training run, the run folder."""
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import torch

from nclib import (checkpoints, data, imbalance, locks, parameters, provenance, runplan, runs, sweep, train, traincli,
                   ufm)

SMALL = dict(dataset="synthetic", counts=[20, 10, 5], dim=16, width=64, depth=2, progress=False, device="cpu")
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")


def _engine(**kw):
    p = train.check_params(**{**SMALL, **kw})
    ts = data.load("synthetic", counts=p["counts"], dim=p["dim"], seed=p["seed"])
    return train.Engine(ts, p), ts


@pytest.mark.parametrize("lam_backbone", [0.0, 0.3])
def test_full_batch_loss_is_objective_4_3_and_minibatches_are_unbiased(lam_backbone):
    """F_B on all N rows, the recorded objective and the mean of F_B over one epoch's batches are (4.3) of an
    independent implementation, plus lam_backbone/2 times the squared backbone weights summed by hand."""
    eng, ts = _engine(L=3, bias=True, lam_W=[1e-2, 2e-2, 3e-2], lam_H=5e-2, lam_backbone=lam_backbone, batch_size=5)
    with torch.no_grad():
        # give the bias a non-trivial value so that its term is exercised
        eng.model.head_bias().copy_(torch.tensor([0.3, -0.2, 0.1]))
        H = eng.model.features(eng.X).double().numpy().T  # d x N, columns grouped by class
        Ws = [W.double().numpy() for W in eng.model.head_weights()]
        b = eng.model.head_bias().double().numpy()
        exact = ufm.objective(Ws, H, b, ts.counts, [1e-2, 2e-2, 3e-2], 5e-2)  # independent implementation
        linear = [m.weight.double().numpy() for m in eng.model.backbone if isinstance(m, torch.nn.Linear)]
        assert len(linear) == 3  # depth 2: two Linear + ReLU, then the feature layer; all three decayed
        exact += lam_backbone / 2 * sum(float(np.sum(W ** 2)) for W in linear)
        full = eng.batch_objective(torch.arange(ts.N)).item()
        np.testing.assert_allclose(full, exact, rtol=1e-5)
        np.testing.assert_allclose(eng.evaluate()["objective"], exact, rtol=1e-6)
        # the batches of one permutation partition the samples: their mean is F exactly (N = 35 = 7 x 5)
        batches = eng.batches()
        assert batches.shape == (7, 5) and sorted(batches.flatten().tolist()) == list(range(ts.N))
        mean = np.mean([eng.batch_objective(idx).item() for idx in batches])
        np.testing.assert_allclose(mean, exact, rtol=1e-5)


def test_batch_size_drop_last_and_schedule(tmp_path):
    eng, ts = _engine(batch_size=8)
    assert eng.steps_per_epoch == 4 and eng.dropped_per_epoch == 3
    assert train.lr_at(6000, 1e-4, [6000], 0.1) == 1e-4
    np.testing.assert_allclose(train.lr_at(6001, 1e-4, [6000], 0.1), 1e-5, rtol=1e-12)
    # two milestones, each a step of its own: epochs 1-2 at lr, 3-4 at lr * gamma, from 5 on at lr * gamma^2
    for epoch, steps in ((1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (9, 2)):
        np.testing.assert_allclose(train.lr_at(epoch, 1e-3, [4, 2], 0.5), 1e-3 * 0.5 ** steps, rtol=1e-12)
    h = train.load_history(train.run(**SMALL, L=1, epochs=5, batch_size="full", lr=1e-3, lr_milestones=[2, 4],
                                     lr_gamma=0.5, metric_every=1, out_dir=tmp_path))
    np.testing.assert_allclose(h["lr"], [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4], rtol=1e-12)  # epochs 0 to 5
    for args, name in (((0, 1e-4, [6000], 0.1), "epoch"), ((1, -1e-4, [6000], 0.1), "lr"),
                       ((1, 1e-4, "6000", 0.1), "milestones"), ((1, 1e-4, [0], 0.1), "milestones"),
                       ((1, 1e-4, [6000], 0.0), "gamma"),
                       ((7, 1e-3, [5, 5], 0.1), "^milestones must not repeat an epoch"),  # was 1e-5: two drops
                       ((7, 1e-3, {5: 1}, 0.1), "^milestones must be a list of epochs")):  # was its keys
        with pytest.raises(ValueError, match=name):
            train.lr_at(*args)
    # the forms a run's lr_milestones take: none, one epoch, any order
    assert train.lr_at(7, 1e-3, None, 0.1) == train.lr_at(7, 1e-3, [], 0.1) == 1e-3
    assert train.lr_at(7, 1e-3, 5, 0.1) == train.lr_at(7, 1e-3, [5], 0.1) == train.lr_at(7, 1e-3, (9, 5), 0.1)
    assert train.from_reference_decay(1e-5, 2e-5, 10) == pytest.approx((1e-4, 2e-4))


def test_short_training_collapses(tmp_path):
    path = train.run(**SMALL, L=2, epochs=1000, batch_size="full", lam_W=1e-3, lam_H=1e-3, lr=1e-3,
                     lr_milestones=[], metric_every=250, out_dir=tmp_path)
    h = train.load_history(path)
    assert h["epoch"].tolist() == [0, 250, 500, 750, 1000]
    assert h["nc1"][-1] < 1e-4 * h["nc1"][0]  # NC1 falls by more than four orders of magnitude
    assert h["train_acc"][-1] == 1.0
    assert h["objective"][-1] < 0.05 * h["objective"][0]
    cols = ["objective", "nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3", "train_acc", "bias_error", "global_mean_norm"]
    assert all(np.all(np.isfinite(h[c])) for c in cols) and np.all(np.isfinite(h["loss"][1:]))
    params, _, prov = train.load_run(path)
    assert params["L"] == 2 and params["batch_size"] == "full"
    assert prov["status"] == "finished" and prov["steps"] == 1000 and prov["device"] == "cpu"
    assert prov["precision"] == "fp32" and len(prov["data_sha256"]) == 64
    assert {"git_commit", "git_dirty", "versions", "wall_time_s", "command_line", "device_name"} <= set(prov)
    assert not [f for f in os.listdir(path) if f.endswith(".tmp")]


def test_runs_are_reproducible_and_minibatch_schedule_recorded(tmp_path):
    kw = dict(**SMALL, L=1, epochs=40, batch_size=8, lr=1e-3, lr_milestones=[20], metric_every=20, out_dir=tmp_path)
    a = train.load_history(train.run(run_name="a", **kw))
    b = train.load_history(train.run(run_name="b", **kw))
    for k in ("loss", "objective", "nc1", "nc3"):
        np.testing.assert_array_equal(a[k][1:], b[k][1:])
    np.testing.assert_allclose(a["lr"], [1e-3, 1e-3, 1e-4], rtol=1e-12)


def test_metrics_in_a_worker_thread_give_the_same_history(tmp_path):
    kw = dict(**SMALL, L=2, epochs=30, batch_size=8, lr=1e-3, metric_every=5, out_dir=tmp_path)
    sync = train.run(run_name="sync", async_metrics=False, **kw)
    asyn = train.run(run_name="async", async_metrics=True, **kw)
    a, b = train.load_history(sync), train.load_history(asyn)
    assert b["epoch"].tolist() == list(range(0, 31, 5))
    for k in train.REPRODUCIBLE_COLUMNS:
        np.testing.assert_array_equal(a[k], b[k])
    assert json.loads((asyn / "provenance.json").read_text())["async_metrics"] is True


def test_bias_free_and_bf16_on_cpu(tmp_path):
    path = train.run(**SMALL, L=2, bias=False, epochs=20, batch_size=16, lr=1e-3, precision="bf16",
                     metric_every=10, out_dir=tmp_path)
    h = train.load_history(path)
    assert np.all(np.isnan(h["bias_error"])) and np.all(np.isfinite(h["nc2_wh"]))
    assert json.loads((path / "provenance.json").read_text())["precision"] == "bf16"


@pytest.mark.skipif(not hasattr(torch.backends.mkldnn.matmul, "fp32_precision"), reason="torch < 2.9")
def test_the_provenance_records_the_products_precision_and_the_cpu_runs_strict_fp32(tmp_path):
    """On the CPU both fp32 and tf32 runs' products are read back as strict fp32 ("ieee"), also under a global
    setting that would let oneDNN use bf16 products, which is restored after the runs; a bf16 run records "bf16".
    (This machine's CPU may compute bf16 products as fp32 ones: the read-back setting is what is checked.)"""
    saved = torch.backends.mkldnn.matmul.fp32_precision
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    try:
        for precision, want in (("fp32", "ieee"), ("tf32", "ieee"), ("bf16", "bf16")):
            path = train.run(**SMALL, epochs=2, batch_size=16, metric_every=1, precision=precision, out_dir=tmp_path,
                             run_name=precision)
            prov = json.loads((path / "provenance.json").read_text())
            assert prov["products_precision"] == want and not prov["tf32_matmul"]
            assert [s["products_precision"] for s in prov["segments"]] == [want]
            assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = saved


def test_divergence_stops_with_clear_error_and_keeps_history(tmp_path):
    with pytest.raises(train.TrainingDiverged, match="diverged at epoch 10.*lower lr"):
        train.run(**SMALL, L=3, epochs=200, batch_size=5, lr=10.0, lam_W=1e-3, lam_H=1e-3, metric_every=10,
                  out_dir=tmp_path, run_name="boom")
    h = train.load_history(tmp_path / "boom")
    assert h["epoch"].tolist() == [0, 10]
    prov = json.loads((tmp_path / "boom" / "provenance.json").read_text())
    assert prov["status"] == "diverged" and "diverged" in prov["error"]


def test_the_divergence_advice_names_strict_fp32_only_for_a_run_not_in_it(tmp_path):
    """Lowering lr is always advised; strict fp32 only where the run's products were not already in it."""
    kw = dict(**SMALL, L=3, epochs=200, batch_size=5, lr=10.0, lam_W=1e-3, lam_H=1e-3, metric_every=10,
              out_dir=tmp_path)
    for precision, named in (("fp32", False), ("bf16", True)):
        with pytest.raises(train.TrainingDiverged, match="lower lr") as err:
            train.run(**kw, precision=precision, run_name=precision)
        assert ("precision" in str(err.value)) is named, (precision, str(err.value))
        assert err.value.run_dirs == [tmp_path / precision]


def test_a_resumed_run_that_diverges_keeps_no_checkpoint(tmp_path):
    """A diverged run cannot be resumed, so the checkpoint of its earlier stop is deleted with it."""
    # a step up of the learning rate at epoch 10, where the first call stops: the second call diverges
    kw = dict(**SMALL, L=3, epochs=200, batch_size=5, lr=0.01, lr_milestones=(10,), lr_gamma=1000.0,
              lam_W=1e-3, lam_H=1e-3, metric_every=10, out_dir=tmp_path, run_name="boom")
    train.run(**kw, max_train_s=0)
    folder = tmp_path / "boom"
    assert json.loads((folder / "provenance.json").read_text())["status"] == "stopped"
    assert train.load_history(folder)["epoch"].tolist()[-1] == 10  # stopped where the rate steps up
    assert (folder / runs.CHECKPOINT).is_file() and (folder / runs.CHECKSUM).is_file()
    with pytest.raises(train.TrainingDiverged, match="diverged at epoch 20"):
        train.run(**kw, resume=True)
    assert json.loads((folder / "provenance.json").read_text())["status"] == "diverged"
    assert not (folder / runs.CHECKPOINT).exists() and not (folder / runs.CHECKSUM).exists()


def test_interrupted_run_leaves_a_complete_history(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train.Engine.evaluate_device

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # an interruption in the middle of the third metric epoch
        return real(self)

    monkeypatch.setattr(train.Engine, "evaluate_device", flaky)
    with pytest.raises(KeyboardInterrupt):
        train.run(**SMALL, epochs=30, batch_size=8, metric_every=10, out_dir=tmp_path, run_name="cut")
    run_dir = tmp_path / "cut"
    assert train.load_history(run_dir)["epoch"].tolist() == [0, 10]
    assert json.loads((run_dir / "provenance.json").read_text())["status"] == "failed"
    assert sorted(os.listdir(run_dir)) == ["class_accuracy.csv", "history.csv", "params.json", "provenance.json"]
    os.remove(run_dir / "provenance.json")
    with pytest.raises(ValueError, match="is not a run folder of nclib.train.run: no provenance.json"):
        train.load_run(run_dir)
    with pytest.raises(ValueError, match="no params.json, history.csv, provenance.json"):
        train.load_run(tmp_path / "none")


def test_a_failing_worker_metric_still_writes_the_final_provenance(tmp_path, monkeypatch):
    """The last metric row is computed in the worker thread; if it raises, the run reports "failed"."""
    real = train.Engine.host_metrics
    calls = {"n": 0}

    def last_one_fails(self, payload):
        # the fourth row (epochs 0, 1, 2, 3) is the last: counted, since the worker's one thread computes the rows in
        # order while the training thread may be an epoch ahead (its step count says nothing of the row's epoch)
        calls["n"] += 1
        if calls["n"] == 4:
            raise FloatingPointError("metric blew up")
        return real(self, payload)

    monkeypatch.setattr(train.Engine, "host_metrics", last_one_fails)
    with pytest.raises(FloatingPointError, match="metric blew up"):
        train.run(**SMALL, epochs=3, batch_size=8, metric_every=1, async_metrics=True, out_dir=tmp_path,
                  run_name="late")
    prov = json.loads((tmp_path / "late" / "provenance.json").read_text())
    assert prov["status"] == "failed" and "metric blew up" in prov["error"]
    assert train.load_history(tmp_path / "late")["epoch"].tolist() == [0, 1, 2]


def test_rows_done_before_a_failing_metric_are_written_when_the_run_ends(tmp_path, monkeypatch):
    """The fault: at the end of a run, the rows still pending were moved to the history one by one and written
    only after the last; when a later row's metric raised, an earlier row completed in that same last flush was
    missing from history.csv.  Here the third row's metrics are held until the run's last flush begins, so that
    it is still pending there, and the fourth raises: the third is written all the same."""
    import threading

    from nclib import runfolder

    real_metrics, real_flush = train.Engine.host_metrics, runfolder.RunFolder.flush
    last_flush, calls = threading.Event(), {"n": 0}

    def held_then_failing(self, payload):
        calls["n"] += 1
        if calls["n"] == 3:
            assert last_flush.wait(timeout=60), "the run's last flush never began"
        if calls["n"] == 4:
            raise FloatingPointError("metric blew up")
        return real_metrics(self, payload)

    def flush(self, wait=False):
        if wait:
            last_flush.set()
        return real_flush(self, wait)

    monkeypatch.setattr(train.Engine, "host_metrics", held_then_failing)
    monkeypatch.setattr(runfolder.RunFolder, "flush", flush)
    with pytest.raises(FloatingPointError, match="metric blew up"):
        train.run(**SMALL, epochs=3, batch_size=8, metric_every=1, async_metrics=True, out_dir=tmp_path,
                  run_name="held")
    assert json.loads((tmp_path / "held" / "provenance.json").read_text())["status"] == "failed"
    assert train.load_history(tmp_path / "held")["epoch"].tolist() == [0, 1, 2]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "history.csv"
    train.atomic_write_text(target, "epoch\n0\n")

    def broken(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        train.atomic_write_text(target, "epoch\n0\n1\n")
    assert target.read_text() == "epoch\n0\n"
    assert os.listdir(tmp_path) == ["history.csv"]


def test_decays_default_to_the_reference_code_read_in_4_3(tmp_path):
    """lam_W = lam_H = "reference": the reference code's wd = fd = 1e-5 are K x 1e-5 in (4.3) (its loss is (4.3)/K)."""
    assert train.DEFAULTS["lam_W"] == train.DEFAULTS["lam_H"] == "reference"
    for counts, K in (("cifar10", 10), ("emnist-letters", 26), ([5, 4, 3], 3)):
        p = train.check_params(dataset="synthetic", counts=counts, batch_size="full")
        want = train.from_reference_decay(1e-5, 1e-5, K)[0]
        assert p["lam_W"] == p["lam_H"] == pytest.approx(want, rel=1e-12, abs=0)
    assert train.check_params(dataset="synthetic", counts="emnist-letters")["lam_W"] == 26e-5  # rounded, not 2.6000000000000003e-4
    path = train.run(**SMALL, epochs=1, batch_size="full", lam_H=2e-3, out_dir=tmp_path)
    params, _, prov = train.load_run(path)
    assert params["lam_W"] == pytest.approx(3e-5) and params["lam_H"] == 2e-3
    assert "lam_W = 3e-05: 'reference'" in prov["decays"] and "lam_H = 0.002: given" in prov["decays"]
    for key in ("lam_W", "lam_H"):
        with pytest.raises(ValueError, match=f"{key} must be a non-negative number.* or 'reference'"):
            train.check_params(**SMALL, **{key: "literal"})


def test_a_numpy_array_of_decays_trains_as_the_same_list(tmp_path):
    """lam_W as a numpy array (one decay per head layer) is accepted and trains the run its list trains, also when it
    overwrites a run: the folder's old run is replaced, not deleted by a call that then fails."""
    kw = dict(**SMALL, L=2, epochs=4, batch_size=8, lam_H=1e-3, metric_every=2)
    listed = train.run(**kw, lam_W=[1e-3, 2e-3], out_dir=tmp_path, run_name="list")
    array = train.run(**kw, lam_W=np.array([1e-3, 2e-3]), out_dir=tmp_path, run_name="array")
    train.run(**{**kw, "epochs": 2}, lam_W=[1e-3, 2e-3], out_dir=tmp_path, run_name="again")
    again = train.run(**kw, lam_W=np.array([1e-3, 2e-3]), out_dir=tmp_path, run_name="again", overwrite=True)
    (pl, hl, vl) = train.load_run(listed)
    for path in (array, again):
        pa, ha, va = train.load_run(path)
        assert pa["lam_W"] == pl["lam_W"] == [1e-3, 2e-3] and va["status"] == "finished"
        assert va["decays"] == vl["decays"]
        for col in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(ha[col], hl[col], err_msg=f"{path.name}: {col}")


def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="dataset must be one of"):
        train.run(dataset="mnist", out_dir=tmp_path)
    with pytest.raises(ValueError, match="L must be a positive integer"):
        train.run(**SMALL, L=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="lam_W"):
        train.run(**SMALL, lam_W=-1e-5, out_dir=tmp_path)
    with pytest.raises(ValueError, match="lam_H"):
        train.run(**SMALL, lam_H=-1.0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="data_path is required"):
        train.run(dataset="cifar10", out_dir=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        train.run(dataset="cifar10", data_path=tmp_path / "missing.npz", out_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown parameter"):
        train.run(**SMALL, learning_rate=1e-3, out_dir=tmp_path)
    with pytest.raises(ValueError, match="precision"):
        train.run(**SMALL, precision="fp16", batch_size="full", out_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size 64 is larger than the N = 35"):
        train.run(**SMALL, batch_size=64, epochs=1, out_dir=tmp_path)
    y = np.repeat(np.arange(10), 3)
    np.savez(tmp_path / "tiny.npz", x_train=np.zeros((30, 32, 32, 3), np.uint8), y_train=y)
    with pytest.raises(ValueError, match=r"counts\[0\] = 100 is larger than the 3 samples"):
        train.run(dataset="cifar10", data_path=tmp_path / "tiny.npz", out_dir=tmp_path, progress=False)
    train.run(**SMALL, epochs=1, batch_size="full", out_dir=tmp_path, run_name="once")
    with pytest.raises(train.RunExists, match="overwrite") as exists:  # names the parameter that replaces it
        train.run(**SMALL, epochs=1, batch_size="full", out_dir=tmp_path, run_name="once")
    assert exists.value.status == "finished" and exists.value.run_dir == tmp_path / "once"
    # overwrite=True replaces a run only once its parameters passed data.load and the Engine
    before = train.load_history(tmp_path / "once")
    for bad in (dict(batch_size=64), dict(counts=[3, 0], batch_size="full")):
        with pytest.raises(ValueError, match="batch_size 64|counts"):
            train.run(**{**SMALL, **bad}, epochs=1, out_dir=tmp_path, run_name="once", overwrite=True)
        np.testing.assert_array_equal(train.load_history(tmp_path / "once")["objective"], before["objective"])


MEMBERS = [dict(L=1, run_name="L1"), dict(L=2, bias=False, lam_W=[1e-3, 2e-3], run_name="L2-nobias"),
           dict(L=3, lam_H=2e-3, init="orthogonal", run_name="L3")]


def test_runs_trained_together_equal_runs_trained_alone(tmp_path):
    """run_many trains each run exactly as run() does: same data, initialization, batch order and steps."""
    kw = dict(**SMALL, epochs=12, batch_size=8, lr=1e-3, lr_milestones=[6], lam_W=1e-3, lam_H=1e-3, metric_every=4)
    together = train.run_many(MEMBERS, out_dir=tmp_path / "together", **kw)
    assert [p.name for p in together] == ["L1", "L2-nobias", "L3"]
    for member, path in zip(MEMBERS, together):
        alone = train.run(**{**kw, **member}, out_dir=tmp_path / "alone")
        (pa, ha, va), (pt, ht, vt) = train.load_run(alone), train.load_run(path)
        assert {k: v for k, v in pa.items() if k != "out_dir"} == {k: v for k, v in pt.items() if k != "out_dir"}
        for k in train.REPRODUCIBLE_COLUMNS:  # every column but the wall time, number for number
            np.testing.assert_array_equal(ha[k], ht[k], err_msg=f"{member['run_name']}: {k}")
        assert va["trained_with"] == [] and vt["status"] == "finished" and vt["steps"] == va["steps"] == 12 * 4
        assert vt["trained_with"] == [m["run_name"] for m in MEMBERS if m is not member]
        assert vt["data_sha256"] == va["data_sha256"] and vt["parameter_count"] == va["parameter_count"]


def test_runs_of_one_name_in_two_out_dirs_trained_together_name_each_other(tmp_path):
    """The fault: trained_with left out a run's partners by run name, so two runs named alike in two out_dirs,
    trained together, each recorded none.  Each names the other, by its path from its own out_dir (a partner in the
    same out_dir by its name, as above)."""
    kw = dict(**SMALL, epochs=2, batch_size="full", lam_W=1e-3, lam_H=1e-3, metric_every=1)
    a, b = train.run_many([dict(L=1, run_name="r", out_dir=tmp_path / "A"),
                           dict(L=3, run_name="r", out_dir=tmp_path / "B")], **kw)
    names = {f: json.loads((f / "provenance.json").read_text())["trained_with"] for f in (a, b)}
    assert names == {a: ["../B/r"], b: ["../A/r"]}
    assert (a.parent / names[a][0]).resolve() == b.resolve() and (b.parent / names[b][0]).resolve() == a.resolve()


@pytest.mark.parametrize("run_dir, together, named", [(5, ["x"], "run_dir"), ("", ["x"], "run_dir"),
                                                      ("a/b", 5, "together"), ("a/b", "a/c", "together"),
                                                      ("a/b", ["a/c", None], "together")])
def test_trained_with_refuses_what_is_no_run_folder_by_name(run_dir, together, named):
    from nclib import runfolder

    with pytest.raises(ValueError, match=rf"^{named} must be"):
        runfolder.trained_with(run_dir, together)


def test_trained_with_names_a_partner_by_name_or_by_its_path_from_the_out_dir(tmp_path):
    from nclib import runfolder

    here = tmp_path / "A" / "r"
    assert runfolder.trained_with(here, [here, tmp_path / "A" / "s", tmp_path / "B" / "r"]) == ["s", "../B/r"]
    assert runfolder.trained_with(str(here), (str(here),)) == []  # its own folder alone, as a str in a tuple


def test_runs_of_several_precisions_trained_together_equal_runs_trained_alone(tmp_path):
    """precision is a member key: one seed gives each run the same data, initialization and batches, and each
    run's steps use its own precision (on the CPU TF32 is not used, so fp32 and tf32 runs are identical; bf16
    autocast is not)."""
    kw = dict(**SMALL, L=2, epochs=6, batch_size=8, lr=1e-3, lam_W=1e-3, lam_H=1e-3, metric_every=3)
    members = [dict(precision=q, run_name=q) for q in ("fp32", "tf32", "bf16")]
    together = train.run_many(members, out_dir=tmp_path / "together", **kw)
    histories = {}
    for member, path in zip(members, together):
        alone = train.load_history(train.run(**kw, **member, out_dir=tmp_path / "alone"))
        histories[member["precision"]] = both = train.load_history(path)
        assert json.loads((path / "provenance.json").read_text())["precision"] == member["precision"]
        for k in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(alone[k], both[k], err_msg=f"{member['run_name']}: {k}")
    np.testing.assert_array_equal(histories["fp32"]["objective"], histories["tf32"]["objective"])
    assert not np.array_equal(histories["fp32"]["loss"][1:], histories["bf16"]["loss"][1:])
    with pytest.raises(ValueError, match="runs differ in 'precision'.*grouped_adam"):
        train.run_many(members[:2], out_dir=tmp_path / "grouped", grouped_adam=True, **kw)
    assert not (tmp_path / "grouped").exists()  # refused before any folder is made


def test_runs_trained_together_must_share_everything_but_the_head_and_decays(tmp_path):
    kw = dict(**SMALL, epochs=1, batch_size="full", out_dir=tmp_path)
    with pytest.raises(ValueError, match="runs differ in 'width'"):
        train.run_many([dict(L=1, run_name="a"), dict(L=2, width=32, run_name="b")], **kw)
    with pytest.raises(ValueError, match="runs differ in 'seed'"):
        train.run_many([dict(L=1, run_name="a"), dict(L=1, seed=1, run_name="b")], **kw)
    with pytest.raises(ValueError, match="two runs would write the same run folder"):
        train.run_many([dict(L=1, run_name="a"), dict(L=2, run_name="a")], **kw)
    for bad in ([], dict(L=1), "L1", [dict(L=1), 3]):
        with pytest.raises(ValueError, match="runs must be a non-empty list of parameter dicts"):
            train.run_many(bad, **kw)
    with pytest.raises(ValueError, match="L must be a positive integer"):
        train.run_many([dict(L=1, run_name="a"), dict(L=0, run_name="b")], **kw)
    assert not any(tmp_path.iterdir())  # nothing written for refused parameters


def test_a_run_that_diverges_stops_alone(tmp_path, monkeypatch):
    real = train.Engine.evaluate_device

    def blows_up(self):
        row, payload = real(self)
        if self.p["run_name"] == "L2-nobias" and self.steps_done >= 4 * self.steps_per_epoch:
            return {"objective": float("inf")}, None
        return row, payload

    monkeypatch.setattr(train.Engine, "evaluate_device", blows_up)
    kw = dict(**SMALL, epochs=12, batch_size=8, lr=1e-3, lam_W=1e-3, lam_H=1e-3, metric_every=4, out_dir=tmp_path)
    with pytest.raises(train.TrainingDiverged, match="run 'L2-nobias' diverged at epoch 4: objective became NaN/inf"):
        train.run_many(MEMBERS, **kw)
    provs = {m["run_name"]: train.load_run(tmp_path / m["run_name"])[2] for m in MEMBERS}
    assert {k: v["status"] for k, v in provs.items()} == {"L1": "finished", "L2-nobias": "diverged", "L3": "finished"}
    assert train.load_history(tmp_path / "L2-nobias")["epoch"].tolist() == [0, 4]
    assert train.load_history(tmp_path / "L3")["epoch"].tolist() == [0, 4, 8, 12]
    assert provs["L2-nobias"]["steps"] == 4 * 4 and provs["L3"]["steps"] == 12 * 4


def test_command_line_help_says_what_it_does_and_each_dataset_s_default_counts(capsys):
    """``--help`` exits 0 with the command's own first line (not a module docstring's) and, for --counts, each
    dataset's default counts as data.DEFAULT_COUNTS names them."""
    with pytest.raises(SystemExit) as ended:
        train.main(["--help"])
    shown = capsys.readouterr().out
    assert ended.value.code == 0 and shown.startswith("usage: python -m nclib.train ")
    bare = "".join(shown.split())  # argparse wraps the help, also at a hyphen
    assert "".join(traincli.DESCRIPTION.split()) in bare
    assert "".join("default, by dataset: cifar10: preset cifar10, emnist-letters: preset emnist-letters, "
                   "letters-synthetic: preset emnist-letters, synthetic: [20,10,5])".split()) in bare


def test_command_line_one_run_per_L(tmp_path, capsys):
    paths = train.main(["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1",
                        "--L", "1", "2", "--epochs", "3", "--batch-size", "full", "--lr-milestones",
                        "--metric-every", "3", "--out-dir", str(tmp_path), "--progress", "false"])
    assert [p.name for p in paths] == ["synthetic-L1-bias-seed0", "synthetic-L2-bias-seed0"]
    assert str(paths[1]) in capsys.readouterr().out
    params, h, _ = train.load_run(paths[1])
    assert params["L"] == 2 and params["counts"] == [6, 4] and params["lr_milestones"] == []
    assert h["epoch"].tolist() == [0, 3]
    assert imbalance.groups_of(params["counts"]) == [(6, 1), (4, 1)]


def test_command_line_resume_auto_serves_every_job_of_a_split_run(tmp_path, capsys):
    """--resume auto, the one command of a run split over jobs: it starts the runs, continues them from their
    checkpoints (also after a job was killed: the runs are then "dead"), then reads them as finished without
    training, printing their folders; each call says on stderr where each run is.  With --overwrite true, or
    another value than true, false or auto, it is refused."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--L", "1",
            "2", "--epochs", "6", "--batch-size", "full", "--lr-milestones", "--metric-every", "2", "--out-dir",
            str(tmp_path), "--progress", "false", "--max-train-s", "0", "--resume", "Auto"]
    statuses, said = [], []
    for call in range(4):
        with pytest.warns(RuntimeWarning, match="taking over the lock") if call == 2 else contextlib.nullcontext():
            paths = train.main(argv)
        said.append(capsys.readouterr())
        statuses.append([train.load_run(p)[2]["status"] for p in paths])
        if call == 1:  # the job is killed after its runs stopped at epoch 4: provenance "running", a dead lock
            for path in paths:
                prov = json.loads((path / "provenance.json").read_text())
                (path / "provenance.json").write_text(json.dumps({**prov, "status": "running"}))
                (path / locks.LOCK).write_text(json.dumps({"pid": 2 ** 22 + 1, "host": socket.gethostname()}) + "\n")
                assert runs.run_status(path) == "dead"
    assert statuses == [["stopped"] * 2, ["stopped"] * 2, ["finished"] * 2, ["finished"] * 2]
    out, err = "".join(o for o, _ in said), "".join(e for _, e in said)
    assert out.split().count(str(paths[1])) == 4
    assert "synthetic-L2-bias-seed0: stopped at epoch 2 of 6" in err and "finished at epoch 6 of 6" in err
    # only the last call, which trained nothing, says so
    assert ["finished already, read, not trained" in e for _, e in said] == [False, False, False, True]
    for path in paths:
        prov = train.load_run(path)[2]
        assert [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == [(0, 2), (2, 4), (4, 6)]
        assert train.load_history(path)["epoch"].tolist() == [0, 2, 4, 6]
    for extra, message in ((["--overwrite", "true"], "resume auto never deletes a run"),
                           (["--resume", "yes"], "resume must be true, false or auto, got 'yes'")):
        with pytest.raises(SystemExit) as exit_:
            train.main([*argv, *extra])
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_command_line_reports_every_run_when_one_diverges_and_never_advises_deleting_the_others(
        tmp_path, capsys, monkeypatch):
    """A job in which one run diverges exits with status 1 after every run's status line (the other run stopped
    with its checkpoint).  The same command again is refused (status 2) without touching a file, and the refusal
    names the runs that continue by themselves (RunExists.continuable) and their --L; that call continues them."""
    real = train.Engine.evaluate_device

    def blows_up(self):
        row, payload = real(self)
        return ({"objective": float("inf")}, None) if self.p["L"] == 2 else (row, payload)

    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "6", "--batch-size", "full", "--lr-milestones", "--metric-every", "2", "--out-dir", str(tmp_path),
            "--progress", "false", "--max-train-s", "0", "--resume", "auto", "--run-tag", "job", "--L", "1", "2"]
    folders = [tmp_path / "job-L1", tmp_path / "job-L2"]
    monkeypatch.setattr(train.Engine, "evaluate_device", blows_up)
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    monkeypatch.undo()
    out, err = capsys.readouterr()
    assert exit_.value.code == 1
    assert [runs.run_status(d) for d in folders] == ["stopped", "diverged"]
    for d, status in zip(folders, ("stopped", "diverged")):  # one status line and one folder per run
        assert f"{d.name}: {status} at epoch 2 of 6" in err and str(d) in out.split()
    before = {f: f.read_bytes() for d in folders for f in d.iterdir()}
    with pytest.raises(runs.RunExists) as refused:
        runplan.plan_runs(folders)
    assert refused.value.continuable == (folders[0],) and refused.value.run_dir == folders[1]
    with pytest.raises(SystemExit) as exit_:
        train.main(argv)
    assert exit_.value.code == 2 and "--L 1 " in capsys.readouterr().err
    assert {f: f.read_bytes() for d in folders for f in d.iterdir()} == before  # nothing deleted or rewritten
    path, = train.main([*argv[:-2], "1"])  # the stopped run, without the diverged one
    assert path == folders[0] and runs.run_status(path) == "stopped"
    assert train.load_history(path)["epoch"].tolist() == [0, 2, 4]


def _sigterm(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)


def _sigterm_at_call(monkeypatch, n):
    """SIGTERM sent from the ``n``-th call of Engine.host_metrics (one per run per metric epoch, the epoch-0 rows
    first), once."""
    _sigterm_at_calls(monkeypatch, (n,))


def _sigterm_at_calls(monkeypatch, ns):
    """SIGTERM sent from each of the calls of Engine.host_metrics numbered in ``ns`` (counted from 1)."""
    host_metrics, calls = train.Engine.host_metrics, []

    def sends(self, payload):
        calls.append(1)
        if len(calls) in ns:
            _sigterm()
        return host_metrics(self, payload)
    monkeypatch.setattr(train.Engine, "host_metrics", sends)


@contextlib.contextmanager
def _sigterm_recorded():
    """SIGTERM's handler, while held, one that records the signal (the list yielded), not the default that would
    end the test process: the handler that sigterm_raises finds and puts back."""
    reached = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: reached.append(signum))
    try:
        yield reached
    finally:
        signal.signal(signal.SIGTERM, before)


def _sigterms_in_the_stop(monkeypatch, also=()):
    """SIGTERM sent as each run's checkpoint is written, as each is committed, and as each run's folder is finished
    (by RunFolder.save_checkpoint, commit_checkpoint and finish): every moment of a stop between two runs; with
    ``also`` ("rows_to_check",) also as each run's rows are checked for divergence, at every metric epoch of the
    loop (so only for a stop at its first)."""
    for name in ("save_checkpoint", "commit_checkpoint", "finish", *also):
        def sends(self, *args, _method=getattr(train.RunFolder, name), **kwargs):
            _sigterm()
            return _method(self, *args, **kwargs)
        monkeypatch.setattr(train.RunFolder, name, sends)


@pytest.mark.parametrize("when", ["data", "initialization", "training", "twice", "in the stop", "last epoch",
                                  "last epoch, then finishing", "unwritable", "finishing", "report"])
def test_sigterm_to_the_command_line_names_the_runs_it_stopped_or_wrote_as_failed_or_none(tmp_path, capsys,
                                                                                          monkeypatch, when):
    """SIGTERM to ``python -m nclib.train`` (a job's time limit, scancel) ends it with status 143.  Sent while the
    runs train (in the epoch loop), both stop at that metric epoch with a checkpoint, "stopped", and the message
    names their folders as stopped, also where more SIGTERMs come once the stop has begun (as each checkpoint is
    written and committed, as each run is finished); a second SIGTERM while that stop is merely pending (before the
    loop reaches the metric epoch) writes both as failed.  Sent outside the loop: while the epoch-0 rows are
    recorded, both are written as failed (the error Terminated) and named, or, where their folders cannot be
    written (a full disk), named as runs that could not be written as failed, never as no run open; while the first
    run is being finished, that run is written as failed and named, the other finishes; while the data load, before
    any run folder is opened, at the last metric epoch (the runs finish, also where more SIGTERMs come as each is
    finished) or after every run has ended (as their status lines are printed), no run is stopped or written as
    failed and the message names no folder.  No folder keeps a lock file, no run diverged is said, and no SIGTERM
    reaches the handler found (here one that records it, not the process's end)."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--L", "1",
            "2", "--epochs", "6", "--batch-size", "full", "--metric-every", "3", "--out-dir", str(tmp_path),
            "--progress", "false", "--run-tag", "t"]
    folders = [tmp_path / "t-L1", tmp_path / "t-L2"]
    if when == "data":
        monkeypatch.setattr(data, "load_for", _sigterm)
    elif when in ("initialization", "unwritable"):  # the first epoch-0 row, before the epoch loop
        _sigterm_at_call(monkeypatch, 1)
    elif when in ("training", "in the stop"):  # the first run's row of epoch 3, in the loop
        _sigterm_at_call(monkeypatch, 3)
    elif when == "twice":  # the rows of epoch 3 of both runs, before the loop reads the flag at that epoch
        _sigterm_at_calls(monkeypatch, (3, 4))
    elif when in ("last epoch", "last epoch, then finishing"):  # the first run's row of epoch 6, the last
        _sigterm_at_call(monkeypatch, 5)
    elif when == "finishing":  # the first finish's last flush is ended by the signal, once
        flush, sent = train.RunFolder.flush, []
        monkeypatch.setattr(train.RunFolder, "flush", lambda self, wait=False: (
            _sigterm() if wait and not sent and not sent.append(1) else flush(self, wait)))
    else:
        monkeypatch.setattr(traincli, "_report", _sigterm)
    if when in ("in the stop", "last epoch, then finishing"):  # more SIGTERMs once the stop has begun, each noted
        _sigterms_in_the_stop(monkeypatch)
    if when == "unwritable":  # no folder can be written as failed
        finish = train.RunFolder.finish

        def full_disk(self, status, error=None):
            if status == "failed":
                raise OSError(28, "No space left on device")
            finish(self, status, error)
        monkeypatch.setattr(train.RunFolder, "finish", full_disk)
    with _sigterm_recorded() as reached, pytest.raises(SystemExit) as ended:
        train.main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert ended.value.code == 128 + signal.SIGTERM and reached == []  # no SIGTERM left to the handler found
    status = {"data": ["absent"] * 2, "initialization": ["failed"] * 2, "training": ["stopped"] * 2,
              "twice": ["failed"] * 2, "in the stop": ["stopped"] * 2, "last epoch": ["finished"] * 2,
              "last epoch, then finishing": ["finished"] * 2, "unwritable": ["dead"] * 2,
              "finishing": ["failed", "finished"], "report": ["finished"] * 2}[when]
    assert [runs.recorded_status(d) for d in folders] == status
    named = {"initialization": [True, True], "training": [True, True], "twice": [True, True],
             "in the stop": [True, True], "unwritable": [True, True], "finishing": [True, False]}.get(when, [False] * 2)
    assert [str(d) in err for d in folders] == named, err
    assert ("no run was open" in err) == (when in ("data", "last epoch", "last epoch, then finishing", "report")), err
    assert "diverged" not in err, err  # no run diverged: no status line, no --L that leaves one out
    assert "a SIGTERM had come" not in err, err  # said only where another error cut a SIGTERM's stop short
    assert ("could not be written as failed" in err) == (when == "unwritable"), err
    assert ("stopped with a checkpoint" in err) == (when in ("training", "in the stop")), err
    if when in ("initialization", "twice"):
        assert all(json.loads((d / "provenance.json").read_text())["error"].startswith("Terminated: ")
                   for d in folders)
    if when in ("training", "in the stop"):  # stopped as max_train_s stops: at epoch 3, with its checkpoint, no error
        assert all(train.load_history(d)["epoch"].tolist() == [0, 3] and checkpoints.recorded_epoch(d) == 3
                   and "error" not in json.loads((d / "provenance.json").read_text()) for d in folders)
    assert not any((d / locks.LOCK).exists() for d in folders)


@pytest.mark.parametrize("diverging", ["one at the stop", "both at the stop", "one before a last-epoch signal"])
def test_a_run_that_diverged_before_or_at_a_sigterms_stop_is_named_as_a_divergence(tmp_path, capsys, monkeypatch,
                                                                                   diverging):
    """SIGTERM to ``python -m nclib.train`` whose runs diverge at the metric epoch where the noted signal stops them
    (one or both), or where one diverged before and the signal is noted at the last metric epoch (the other
    finishes): status 143 (the process was terminated), the message names the diverged runs' folders, never "no
    run was open", and, as for a divergence, each diverged run's status line, why it diverged, and the ``--L`` of
    the runs that did not diverge (where any), which leaves it out of later calls."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--L", "1",
            "2", "--epochs", "6", "--batch-size", "full", "--metric-every", "3", "--out-dir", str(tmp_path),
            "--progress", "false", "--run-tag", "t"]
    folders = [tmp_path / "t-L1", tmp_path / "t-L2"]
    diverges = ("t-L1", "t-L2") if diverging == "both at the stop" else ("t-L1",)
    divergence = train.RunFolder.divergence
    monkeypatch.setattr(train.RunFolder, "divergence", lambda self, row: (
        f"run {self.p['run_name']!r} diverged at epoch {row['epoch']} (here by the test)"
        if row["epoch"] == 3 and self.p["run_name"] in diverges else divergence(self, row)))
    _sigterm_at_call(monkeypatch, 5 if diverging == "one before a last-epoch signal" else 3)
    with _sigterm_recorded() as reached, pytest.raises(SystemExit) as ended:
        train.main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert ended.value.code == 128 + signal.SIGTERM and reached == []
    other = {"one at the stop": "stopped", "both at the stop": "diverged"}.get(diverging, "finished")
    assert [runs.recorded_status(d) for d in folders] == ["diverged", other]
    assert "no run was open" not in err and "the runs that diverged (their status lines above): " in err, err
    assert "could not be written as failed" not in err, err  # a diverged run is written: no run the signal ended
    for name in diverges:
        assert f"{name}: diverged at epoch 3 of 6" in err and f"run {name!r} diverged at epoch 3" in err, err
    assert str(folders[0]) in err and (str(folders[1]) in err) == (other != "finished"), err
    assert ("leave the diverged runs out of later calls: --L 2\n" in err) == (other != "diverged"), err
    # every run diverged: no run is left to name, and no advice with an empty --L
    assert ("leave the diverged runs out of later calls" in err) == (other != "diverged"), err
    assert ("stopped with a checkpoint" in err) == (other == "stopped"), err


@pytest.mark.parametrize("stop", ["sigterm", "max_train_s"])
def test_a_sigterms_stop_that_fails_says_the_signal_came_and_names_every_run_written_failed(tmp_path, capsys,
                                                                                            monkeypatch, stop):
    """A SIGTERM noted in the epoch loop, then the stop at its metric epoch fails (a checkpoint cannot be written: a
    full disk): the command line exits with that error's status 1, and says, after the error, that a SIGTERM had
    come and names both runs, each written as failed with that error, not only the one whose file the error
    names.  The same failure of a --max-train-s stop, no signal sent, says nothing of a SIGTERM."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--L", "1",
            "2", "--epochs", "6", "--batch-size", "full", "--metric-every", "3", "--out-dir", str(tmp_path),
            "--progress", "false", "--run-tag", "t"]
    folders = [tmp_path / "t-L1", tmp_path / "t-L2"]
    if stop == "sigterm":
        _sigterm_at_call(monkeypatch, 3)  # the first run's row of epoch 3: the runs stop there
    else:
        argv += ["--max-train-s", "0"]  # the runs stop at epoch 3 for time

    def full_disk(self, epoch):
        raise OSError(28, "No space left on device", str(self.run_dir / "checkpoint.pt.tmp"))
    monkeypatch.setattr(train.RunFolder, "save_checkpoint", full_disk)
    with _sigterm_recorded() as reached, pytest.raises(SystemExit) as ended:
        train.main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert ended.value.code == 1 and reached == [] and "No space left on device" in err, err
    assert [runs.recorded_status(d) for d in folders] == ["failed"] * 2
    notes = [line for line in err.splitlines() if "a SIGTERM had come" in line]
    assert len(notes) == (stop == "sigterm"), err
    if notes:
        assert "the runs written as failed: " + ", ".join(repr(str(d)) for d in folders) in notes[0], err


@pytest.mark.parametrize("first", ["full disk", "sigterm"])
def test_a_full_disk_and_a_sigterm_as_the_runs_finish_are_both_said(tmp_path, capsys, monkeypatch, first):
    """After the last epoch one run's finish fails (a full disk) and a SIGTERM ends the other's (that run written
    failed): the command line exits with the status of the first run's error (1 for the disk, 143 for the signal)
    and says the other run's error on a line of its own, naming that run: neither is left unsaid."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--L", "1",
            "2", "--epochs", "6", "--batch-size", "full", "--metric-every", "3", "--out-dir", str(tmp_path),
            "--progress", "false", "--run-tag", "t"]
    disk, signalled = ("t-L1", "t-L2") if first == "full disk" else ("t-L2", "t-L1")
    finish, flush, sent = train.RunFolder.finish, train.RunFolder.flush, []

    def full_disk(self, status, error=None):
        if status == "finished" and self.p["run_name"] == disk:
            raise OSError(28, "No space left on device", str(self.run_dir / "provenance.json"))
        finish(self, status, error)
    monkeypatch.setattr(train.RunFolder, "finish", full_disk)
    monkeypatch.setattr(train.RunFolder, "flush", lambda self, wait=False: (  # the finish's last flush, once
        _sigterm() if wait and self.p["run_name"] == signalled and not sent and not sent.append(1)
        else flush(self, wait)))
    with _sigterm_recorded() as reached, pytest.raises(SystemExit) as ended:
        train.main(argv)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert ended.value.code == (1 if first == "full disk" else 128 + signal.SIGTERM) and reached == [], err
    assert runs.recorded_status(tmp_path / signalled) == "failed" and "No space left on device" in err, err
    other = (f"while finishing run {signalled!r}: Terminated: " if first == "full disk" else
             f"while finishing run {disk!r}: OSError: ")
    assert f"python -m nclib.train: {other}" in err, err


@pytest.mark.parametrize("stop", ["sigterm", "max_train_s"])
def test_sigterms_during_a_stop_are_noted_and_the_runs_stop_at_one_epoch_and_resume(tmp_path, monkeypatch, stop):
    """SIGTERMs that come once a stop has begun (as each run's rows of the stop's metric epoch are checked for
    divergence, as each run's checkpoint is written, as each is committed, as each run is finished) cut nothing
    short: the stop of a noted SIGTERM, or of max_train_s during which a first and a
    second SIGTERM come, leaves every run "stopped" at one epoch with its checkpoint of that epoch, then
    Terminated is raised naming them all as stopped; a resume (``--resume auto``'s next job) continues them to the
    histories of an uninterrupted call (a run with the new checkpoint beside one without, as a second SIGTERM
    between two runs' commits would leave them, is refused by every resume)."""
    whole = train.run_many(RESUME_MEMBERS[:2], out_dir=tmp_path / "whole", **RESUME_KW)
    parts = [tmp_path / "parts" / m["run_name"] for m in RESUME_MEMBERS[:2]]
    if stop == "sigterm":
        _sigterm_at_call(monkeypatch, 3)  # the first run's row of epoch 2: the stop there
    _sigterms_in_the_stop(monkeypatch, also=("rows_to_check",))  # epoch 2 is the loop's first metric epoch
    kw = dict(RESUME_KW, max_train_s=0) if stop == "max_train_s" else RESUME_KW
    with _sigterm_recorded() as reached, locks.sigterm_raises(), pytest.raises(locks.Terminated) as ended:
        train.run_many(RESUME_MEMBERS[:2], out_dir=tmp_path / "parts", **kw)
    monkeypatch.undo()
    assert reached == []  # every SIGTERM noted: none reached the handler found (a process's end)
    assert ended.value.stopped_runs == ended.value.open_runs == parts and ended.value.failed_runs == []
    assert [_status(d) for d in parts] == ["stopped"] * 2 and not any((d / locks.LOCK).exists() for d in parts)
    assert [train.load_history(d)["epoch"].tolist() for d in parts] == [[0, 2]] * 2
    assert [checkpoints.recorded_epoch(d) for d in parts] == [2, 2]
    assert train.run_many(RESUME_MEMBERS[:2], out_dir=tmp_path / "parts", resume=True, **RESUME_KW) == parts
    for a, b in zip(whole, parts):
        ha, hb = train.load_history(a), train.load_history(b)
        for col in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(ha[col], hb[col], err_msg=f"{b.name}: {col}")


@pytest.mark.parametrize("where", ["a diverged run's finish", "as the noted signal is raised"])
def test_a_sigterm_names_every_run_it_ended_from_what_its_folder_records(tmp_path, monkeypatch, where):
    """The runs a SIGTERM ended are read from what every opened folder records, not from the runs the epoch loop
    still held.  A first SIGTERM noted at a metric epoch after the loop read its flag there, as the first run
    diverges, and a second as that run is finished as diverged (the stop still pending: raised at once): that run,
    which had left the loop's runs, is written failed by its finish and named with the other, written failed too.
    A signal that lands as the noted one is raised (here Terminated raised by
    SigtermNoted.ended itself, bare) names both runs, stopped, as the noted signal would have."""
    members = [dict(L=1, run_name="a"), dict(L=2, run_name="b")]
    kw = dict(SMALL, epochs=6, batch_size="full", metric_every=3, out_dir=tmp_path)
    folders = [tmp_path / "a", tmp_path / "b"]
    if where == "a diverged run's finish":
        divergence, finish = train.RunFolder.divergence, train.RunFolder.finish

        def diverges(self, row):  # the first run's row of epoch 3: the first SIGTERM, after the flag was read
            if row["epoch"] == 3 and self.p["run_name"] == "a":
                _sigterm()
                return "run 'a' diverged at epoch 3 (here by the test)"
            return divergence(self, row)

        def finishes(self, status, error=None):  # the diverged run's finish: a second SIGTERM in its last flush
            if status == "diverged":
                flush = self.flush
                self.flush = lambda wait=False: (_sigterm(), flush(wait))
            return finish(self, status, error)
        monkeypatch.setattr(train.RunFolder, "divergence", diverges)
        monkeypatch.setattr(train.RunFolder, "finish", finishes)
    else:
        _sigterm_at_call(monkeypatch, 3)  # the first run's row of epoch 3: the runs stop there

        def cut(self):
            self.raising.ended()
            raise locks.Terminated("the process was sent SIGTERM")
        monkeypatch.setattr(locks.SigtermNoted, "ended", cut)
    with _sigterm_recorded() as reached, locks.sigterm_raises(), pytest.raises(locks.Terminated) as ended:
        train.run_many(members, **kw)
    monkeypatch.undo()
    assert reached == [] and ended.value.open_runs == folders
    status = "failed" if where == "a diverged run's finish" else "stopped"
    assert [runs.recorded_status(d) for d in folders] == [status] * 2
    assert ended.value.failed_runs == (folders if status == "failed" else [])
    assert ended.value.stopped_runs == (folders if status == "stopped" else [])


def test_run_many_records_on_the_sigterm_exception_the_folders_it_wrote_as_failed(tmp_path, monkeypatch):
    """run_many, ended by SIGTERM's exception (nclib.locks.Terminated), records on it the folders of the runs it
    wrote as failed: none before they were opened (and none stopped or diverged), every open run's while they
    train."""
    def terminated(*args, **kwargs):
        raise locks.Terminated("the process was sent SIGTERM")

    members = [dict(L=1, run_name="a"), dict(L=2, run_name="b")]
    kw = dict(SMALL, epochs=2, batch_size="full", out_dir=tmp_path)
    monkeypatch.setattr(data, "load_for", terminated)
    with pytest.raises(locks.Terminated) as before:
        train.run_many(members, **kw)
    assert before.value.open_runs == before.value.failed_runs == []
    assert before.value.stopped_runs == before.value.diverged_runs == []
    monkeypatch.undo()
    monkeypatch.setattr(train.Engine, "host_metrics", lambda self, payload: terminated())
    with pytest.raises(locks.Terminated) as during:
        train.run_many(members, **kw)
    assert during.value.open_runs == during.value.failed_runs == [tmp_path / "a", tmp_path / "b"]
    assert [runs.recorded_status(d) for d in during.value.failed_runs] == ["failed", "failed"]


def test_a_sigterm_in_the_epoch_loop_stops_the_runs_with_a_checkpoint_and_they_resume_exactly(tmp_path, monkeypatch):
    """SIGTERM while run_many's runs train, under sigterm_raises (the command lines): noted, not raised, until the
    runs' next metric epoch (here the one whose rows it came with), where both stop as max_train_s stops them, each
    with its checkpoint; then Terminated is raised, its stopped_runs (and open_runs) both folders, its failed_runs
    none, the folders unlocked.  A resume continues them to the histories and step counts of an uninterrupted
    call, number for number, across the step decay of the learning rate after epoch 3."""
    whole = train.run_many(RESUME_MEMBERS[:2], out_dir=tmp_path / "whole", **RESUME_KW)
    _sigterm_at_call(monkeypatch, 3)  # the first run's row of epoch 2 (epoch 0's rows are calls 1 and 2)
    with locks.sigterm_raises(), pytest.raises(locks.Terminated) as ended:
        train.run_many(RESUME_MEMBERS[:2], out_dir=tmp_path / "parts", **RESUME_KW)
    monkeypatch.undo()
    parts = [tmp_path / "parts" / m["run_name"] for m in RESUME_MEMBERS[:2]]
    assert ended.value.stopped_runs == ended.value.open_runs == parts and ended.value.failed_runs == []
    assert [_status(d) for d in parts] == ["stopped"] * 2 and not any((d / locks.LOCK).exists() for d in parts)
    assert [train.load_history(d)["epoch"].tolist() for d in parts] == [[0, 2]] * 2
    assert all(checkpoints.has_checkpoint(d) and sweep.next_step(d) == ("stopped", "resume") for d in parts)
    assert train.run_many(RESUME_MEMBERS[:2], out_dir=tmp_path / "parts", resume=True, **RESUME_KW) == parts
    for a, b in zip(whole, parts):
        ha, hb = train.load_history(a), train.load_history(b)
        for col in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(ha[col], hb[col], err_msg=f"{b.name}: {col}")
        pb = json.loads((b / "provenance.json").read_text())
        assert pb["steps"] == json.loads((a / "provenance.json").read_text())["steps"]
        assert [(s["from_epoch"], s["to_epoch"], s["status"]) for s in pb["segments"]] == \
            [(0, 2, "stopped"), (2, 6, "finished")]


def test_without_sigterm_raises_the_epoch_loop_defers_nothing(tmp_path):
    """Outside sigterm_raises (a notebook, a Dask worker) the epoch loop leaves the SIGTERM handler as it is: the
    handler of the caller is the one in place while the runs train."""
    seen = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        host_metrics = train.Engine.host_metrics

        def sends(self, payload):
            seen.append(signal.getsignal(signal.SIGTERM))
            return host_metrics(self, payload)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(train.Engine, "host_metrics", sends)
            train.run(**SMALL, epochs=2, metric_every=1, batch_size="full", out_dir=tmp_path, run_name="r")
        handler = signal.getsignal(signal.SIGTERM)
        assert len(seen) == 3 and all(h is handler for h in seen)
    finally:
        signal.signal(signal.SIGTERM, before)


def test_command_line_values_follow_the_one_grammar(tmp_path, capsys):
    """A flag's value is read by nclib.parameters.parse_value: a run name stays text, a bad bracket is refused
    (status 2, naming the flag) before anything is written."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "2", "--batch-size", "full", "--metric-every", "2", "--progress", "false", "--out-dir", str(tmp_path)]
    path, = train.main([*argv, "--run-name", "007", "--lam-W", "[1e-3]"])
    listed, = train.main([*argv, "--run-name", "listed", "--lam-W", "[1e-3]", "--counts", "[6,4]"])
    assert train.load_run(listed)[0]["counts"] == train.load_run(path)[0]["counts"] == [6, 4]  # n1,n2 for short
    params = train.load_run(path)[0]
    assert path.name == "007" and params["run_name"] == "007" and params["lam_W"] == 1e-3
    with pytest.raises(SystemExit) as exit_:
        train.main([*argv, "--run-name", "x", "--width", "[16"])
    assert exit_.value.code == 2 and "--width" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_command_line_refuses_a_run_name_for_more_than_one_run(tmp_path, capsys):
    """--run-name names the folder of one run: with two values of --L, or with --run-tag, it is refused (status 2)
    before anything is written, rather than training the first L alone; with one L it names that run's folder."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "2", "--batch-size", "full", "--metric-every", "2", "--progress", "false", "--out-dir", str(tmp_path)]
    for extra in (["--L", "1", "2", "--run-name", "one"], ["--L", "1", "--run-name", "one", "--run-tag", "t"]):
        with pytest.raises(SystemExit) as exit_:
            train.main([*argv, *extra])
        assert exit_.value.code == 2, extra
        assert not tmp_path.exists() or not any(tmp_path.iterdir()), extra
    capsys.readouterr()
    assert train.main([*argv, "--L", "2", "--run-name", "one"]) == [tmp_path / "one"]
    assert train.load_run(tmp_path / "one")[0]["L"] == 2


def test_command_line_refuses_a_depth_below_1_naming_the_flag(tmp_path, capsys):
    """--L 0 is refused (status 2) naming --L, the flag the caller typed, with and without --run-name; nothing is
    written."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "2", "--batch-size", "full", "--progress", "false", "--out-dir", str(tmp_path)]
    for extra in (["--L", "0"], ["--L", "1", "0"], ["--L", "-2", "--run-name", "one"]):
        with pytest.raises(SystemExit) as exit_:
            train.main([*argv, *extra])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "error: --L must" in err and "L_values" not in err, (extra, err)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_head_depth_given_twice_is_refused_naming_it(tmp_path, capsys):
    """One run per L: run_names refuses a repeated L naming L_values (the notebook's parameter) and the depth, and
    the command line refuses --L 1 3 1 (status 2) naming --L; nothing is written."""
    with pytest.raises(ValueError, match=r"L_values must name each head depth L once .*got \[1, 3, 1\]: L = 1 given"):
        train.run_names([1, 3, 1], "t")
    with pytest.raises(ValueError, match=r"L = 3, 6 given more than once"):
        train.run_names([6, 3, 3, 6], None, dataset="cifar10")
    assert train.run_names([3, 1], "t") == ["t-L3", "t-L1"]  # any order, each once
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "2", "--batch-size", "full", "--progress", "false", "--out-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        train.main([*argv, "--L", "1", "3", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "error: --L must name each head depth once" in err and "--L 1 3 1: 1 given" in err
    assert "run_name" not in err and "L_values" not in err, err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_command_line_takes_the_reference_decays_by_name(tmp_path):
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "2", "--batch-size", "full", "--metric-every", "2", "--progress", "false"]
    named = train.load_run(train.main([*argv, "--lam-W", "reference", "--out-dir", str(tmp_path / "a")])[0])[0]
    default = train.load_run(train.main([*argv, "--out-dir", str(tmp_path / "b")])[0])[0]
    assert named["lam_W"] == default["lam_W"] == train.check_params(dataset="synthetic", counts=[6, 4], batch_size="full")["lam_W"]


def test_command_line_checkpoint_every_reaches_the_run_and_is_refused_by_name(tmp_path, capsys):
    """--checkpoint-every N is the run's checkpoint_every (recorded in its call's segment; none by default); one that
    is no multiple of --metric-every is refused (status 2) naming both, before anything is written."""
    argv = ["--dataset", "synthetic", "--counts", "6,4", "--dim", "8", "--width", "16", "--depth", "1", "--epochs",
            "4", "--batch-size", "full", "--metric-every", "1", "--progress", "false"]
    for flag, want in ((["--checkpoint-every", "2"], 2), (["--checkpoint-every", "none"], None), ([], None)):
        path, = train.main([*argv, *flag, "--out-dir", str(tmp_path / str(want) / str(len(flag)))])
        params, _, prov = train.load_run(path)
        assert params["checkpoint_every"] == prov["segments"][0]["checkpoint_every"] == want, flag
    with pytest.raises(SystemExit) as exit_:
        train.main([*argv, "--metric-every", "2", "--checkpoint-every", "3", "--out-dir", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "checkpoint_every must be a multiple of metric_every" in err, err
    assert not (tmp_path / "bad").exists()


def test_every_metric_column_is_computed_and_named(tmp_path, monkeypatch):
    """The evaluation writes exactly runs.METRIC_COLUMNS (and the class accuracies), with and without bias and
    with a decay of 0 (NaN for NC2/NC3 then), and the panels and tables name the columns of runs.NC_COLUMNS."""
    from nclib import plotting

    real, seen = train.Engine.host_metrics, []

    def recorded(self, payload):
        out = real(self, payload)
        seen.append(out)
        return out

    monkeypatch.setattr(train.Engine, "host_metrics", recorded)
    for kw in (dict(bias=True), dict(bias=False), dict(lam_W=0.0)):
        seen.clear()
        train.run(**SMALL, epochs=2, batch_size="full", metric_every=1, out_dir=tmp_path, run_name="r",
                  overwrite=True, **kw)
        assert len(seen) == 3 and all(set(out) == {*runs.METRIC_COLUMNS, "class_acc"} for out in seen), kw
        nc23 = [seen[-1][k] for k in runs.NC_COLUMNS[1:]]
        assert np.isnan(nc23).all() if "lam_W" in kw else np.isfinite(nc23).all(), kw
    assert runs.HISTORY_COLUMNS == ("epoch", "lr", "loss", "objective", *runs.METRIC_COLUMNS, "wall_time")
    assert [key for key, _, _ in plotting.PANELS] == [*runs.NC_COLUMNS, "train_acc"]
    assert list(runs.NC_COLUMNS) == list(plotting.MATH_NAMES)


def test_the_table_of_history_columns_in_results_readme_names_every_column():
    """results/README.md's table of history.csv's columns names each column of runs.HISTORY_COLUMNS, in the file's
    order, and no other (the training chapter's table is checked by a hidden cell beside it); CONTRIBUTING.md,
    "Adding a metric", has both tables changed with the columns."""
    import nclib
    from nclib.tables import first_column_names

    readme = (nclib.ROOT / "results" / "README.md").read_text()
    table = readme[readme.index("The columns of `history.csv`"):].split("\n\n")[1]
    assert table.startswith("| column | what |")
    assert tuple(first_column_names(table)) == runs.HISTORY_COLUMNS


def test_paper_style_panels_from_run_folders(tmp_path):
    import matplotlib

    matplotlib.use("agg")
    from nclib import plotting

    dirs = [train.run(**SMALL, L=L, epochs=10, batch_size="full", lr=1e-3, metric_every=5, out_dir=tmp_path)
            for L in (3, 1)]
    fig = plotting.collapse_panels(dirs)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == [label for _, label, _ in plotting.PANELS]
    assert [ax.get_yscale() for ax in axes] == ["log"] * 5 + ["linear"]
    legend, = fig.legends  # one legend, above the panels
    assert [t.get_text() for t in legend.get_texts()] == ["L = 1", "L = 3"]
    assert legend.get_title().get_text() == "Gaussian mixture, with bias"
    np.testing.assert_array_equal(axes[0].lines[0].get_xdata(), [0, 5, 10])
    # one line style per L on every panel, so that two runs' curves at 100 % accuracy both stay visible
    assert all([ln.get_linestyle() for ln in ax.lines] == ["-", "--"] for ax in axes)
    assert plotting.dataset_label({"dataset": "letters-synthetic"}) == "letters-synthetic (stand-in for EMNIST letters)"
    with pytest.raises(ValueError, match="two runs with L=3"):
        plotting.load_runs([dirs[0], dirs[0]])
    # one folder passed alone is named, not read as a list of one-letter folders
    for one in (dirs[0], str(dirs[0])):
        with pytest.raises(ValueError, match="runs must be .* got the one path"):
            plotting.collapse_panels(one)
        with pytest.raises(ValueError, match="run_dirs must be a list of run folders"):
            plotting.load_runs(one)
    assert [ln.get_label() for ln in plotting.collapse_panels([dirs[0]]).axes[0].lines] == ["L = 3"]
    # one legend title cannot name two bias cases: a bias-free L = 2 among runs with a bias is refused, not
    # labelled by whichever run came first
    free = train.run(**SMALL, L=2, bias=False, epochs=10, batch_size="full", lr=1e-3, metric_every=5,
                     out_dir=tmp_path)
    with pytest.raises(ValueError, match="share the data and the bias case.*L=2: Gaussian mixture, bias-free"):
        plotting.collapse_panels(dirs + [free])
    titled = plotting.collapse_panels(dirs + [free], legend_title="mixed")
    assert titled.legends[0].get_title().get_text() == "mixed"
    # drawn into a figure that does not lay itself out, the legend goes above the first panel
    import matplotlib.pyplot as plt

    _, own = plt.subplots(3, 2)
    into = plotting.collapse_panels(dirs, axes=own)
    assert not into.legends and into.axes[0].get_legend().get_title().get_text() == "Gaussian mixture, with bias"


def test_panels_refuse_what_is_not_runs_by_name():
    """nclib.plotting: run folders that are not a list of paths, runs that are not {L: (params, history)} with every
    panel's column, and parameters that are not {L: params} are refused naming the argument, not answered with a
    TypeError, an AttributeError or a KeyError deep inside."""
    from nclib import plotting

    for bad in (None, 5, {1: "a"}, [None]):
        with pytest.raises(ValueError, match=r"^run_dirs must (be a list of|hold) run folders"):
            plotting.load_runs(bad)
    for bad in (None, 5, [None]):
        with pytest.raises(ValueError, match=r"^runs must (be|hold)"):
            plotting.collapse_panels(bad)
    params = {"dataset": "cifar10"}
    h = {key: np.ones(2) for key in ("epoch", *(key for key, _, _ in plotting.PANELS))}
    for bad, match in (({1: (params, {})}, r"^runs\[1\]: its history lacks the column\(s\) \['epoch', 'nc1'"),
                       ({1: (params, {k: v for k, v in h.items() if k != "nc3"})}, r"^runs\[1\]: .* \['nc3'\]"),
                       ({1: params}, r"^runs\[1\] must be \(params, history\)"),
                       ({1: (params, h, {})}, r"^runs\[1\] must be \(params, history\)")):
        with pytest.raises(ValueError, match=match):
            plotting.collapse_panels(bad)
    for bad in (None, {}, [params]):
        with pytest.raises(ValueError, match=r"^params_by_L must hold at least one run"):
            plotting.data_case(bad)
    with pytest.raises(ValueError, match=r"^params_by_L\[1\] must be a run's parameters"):
        plotting.data_case({1: "cifar10"})
    with pytest.raises(ValueError, match=r"^data_by_L must be a mapping"):
        plotting.data_case({1: params}, [{"lossy_jpeg": True}])
    assert plotting.data_case({1: params}) == "CIFAR-10, with bias"


@cuda_only
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_cuda_graph_run(tmp_path, precision):
    path = train.run(**{**SMALL, "device": "cuda"}, L=3, epochs=300, batch_size=5, lam_W=1e-3, lam_H=1e-3,
                     lr=1e-3, lr_milestones=[200], metric_every=100, precision=precision, out_dir=tmp_path)
    prov = json.loads((path / "provenance.json").read_text())
    assert prov["cuda_graph"].startswith("on"), prov["cuda_graph"]
    assert prov["fused_adam"] and prov["async_metrics"] and prov["precision"] == precision
    assert prov["steps"] == 300 * 7 and prov["status"] == "finished"
    h = train.load_history(path)
    assert h["epoch"].tolist() == [0, 100, 200, 300]
    assert all(np.all(np.isfinite(h[k])) for k in ("objective", "nc1", "nc2_w", "nc3", "train_acc"))
    assert h["nc1"][-1] < 1e-2 * h["nc1"][0] and h["train_acc"][-1] == 1.0


@cuda_only
def test_cuda_graph_matches_eager_steps_and_follows_the_schedule(tmp_path):
    kw = dict(**{**SMALL, "device": "cuda"}, L=2, epochs=60, batch_size=5, lam_W=1e-3, lam_H=1e-3, lr=1e-3,
              lr_milestones=[30], metric_every=10, out_dir=tmp_path)
    graph = train.load_history(train.run(run_name="graph", cuda_graph=True, **kw))
    eager = train.load_history(train.run(run_name="eager", cuda_graph=False, **kw))
    # the same batches and the same fused Adam: the graph replays what the eager steps compute, including the
    # learning-rate drop at epoch 30 (a device tensor the captured Adam reads)
    for k in ("loss", "objective", "nc1"):
        np.testing.assert_allclose(graph[k][1:], eager[k][1:], rtol=1e-4)


@cuda_only
def test_cuda_runs_trained_together_on_streams_equal_runs_trained_alone(tmp_path):
    """On a GPU each run of run_many is queued on its own CUDA stream; the histories must not change."""
    kw = dict(**{**SMALL, "device": "cuda"}, epochs=40, batch_size=5, lam_W=1e-3, lam_H=1e-3, lr=1e-3,
              lr_milestones=[20], metric_every=10)
    together = train.run_many(MEMBERS, out_dir=tmp_path / "together", **kw)
    for member, path in zip(MEMBERS, together):
        alone = train.load_history(train.run(**{**kw, **member}, out_dir=tmp_path / "alone"))
        both = train.load_history(path)
        assert json.loads((path / "provenance.json").read_text())["cuda_graph"].startswith("on")
        for k in ("loss", "objective", "nc1", "train_acc"):  # the same kernels on the same data, in the same order
            np.testing.assert_array_equal(alone[k], both[k], err_msg=f"{member['run_name']}: {k}")


def test_git_state_ignores_the_run_outputs_it_rewrites(tmp_path):
    """A run that regenerates committed runs rewrites them while it starts; only code changes make it dirty."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results" / "fig1").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    files = {"code.py": "x = 1\n", "results/fig1/history.csv": "epoch\n0\n", "book/fig1.run.ipynb": "{}\n",
             "benchmarks/results/bench.txt": "old\n", "benchmarks/bench.py": "y = 1\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    assert provenance.git_state(tmp_path)["git_dirty"] is False
    (tmp_path / "results/fig1/history.csv").write_text("epoch\n0\n20\n")
    (tmp_path / "book/fig1.run.ipynb").write_text('{"cells": []}\n')
    (tmp_path / "benchmarks/results/bench.txt").write_text("")  # emptied by the shell's > before the benchmark
    state = provenance.git_state(tmp_path)
    assert state["git_dirty"] is False and state["git_dirty_paths"] == [] and len(state["git_commit"]) == 40
    assert state["git_diff_sha256"] is None  # the outputs' changes are not the code's
    assert provenance.code_state(tmp_path) == "clean"
    (tmp_path / "benchmarks/bench.py").write_text("y = 2\n")  # a benchmark's code is code
    assert provenance.git_state(tmp_path)["git_dirty_paths"] == ["benchmarks/bench.py"]
    (tmp_path / "benchmarks/bench.py").write_text("y = 1\n")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_state(tmp_path)["git_dirty_paths"] == ["code.py"]
    assert provenance.git_state(tmp_path)["git_dirty"] is True
    # the GPU jobs' one-line form of it: the changed files, "clean", or "no git" outside a repository
    assert provenance.code_state(tmp_path) == "code.py"
    assert provenance.code_state(tmp_path.parent / "nowhere") == "no git"
    # the changes themselves are recorded by their hash: the same changes, the same hash; others, another
    two = provenance.git_state(tmp_path)["git_diff_sha256"]
    assert len(two) == 64 and provenance.git_state(tmp_path)["git_diff_sha256"] == two
    git("config", "diff.noprefix", "true")  # another user's way of showing a diff: the same changes, the same hash
    git("config", "color.diff", "always")
    assert provenance.git_state(tmp_path)["git_diff_sha256"] == two
    (tmp_path / "code.py").write_text("x = 3\n")
    assert provenance.git_state(tmp_path)["git_diff_sha256"] not in (None, two)
    assert provenance.git_state(tmp_path / "no-such-folder") == dict.fromkeys(("git_commit", "git_dirty",
                                                                                "git_dirty_paths", "git_diff_sha256"))


def test_file_at_commit_reads_a_file_as_a_commit_holds_it(tmp_path, monkeypatch):
    """The code a run's recorded commit held: the file's text at that commit, not the working copy's or a later
    commit's; None for a file the commit lacks, a commit git does not hold, and a folder that is no checkout's top."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                              capture_output=True, text=True).stdout.strip()

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    first = git("rev-parse", "HEAD")
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    (tmp_path / "new.py").write_text("y = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "second")
    second = git("rev-parse", "HEAD")
    (tmp_path / "pkg" / "code.py").write_text("x = 3\n")  # the working copy, committed nowhere
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))  # the checkout at root decides, not the environment
    assert provenance.file_at_commit(first, "pkg/code.py", tmp_path) == "x = 1\n"
    assert provenance.file_at_commit(first[:7], pathlib.PurePosixPath("pkg/code.py"), tmp_path) == "x = 1\n"
    assert provenance.file_at_commit(second, "pkg/code.py", tmp_path) == "x = 2\n"
    assert provenance.file_at_commit(first, "new.py", tmp_path) is None  # not yet at the first commit
    assert provenance.file_at_commit(first, "pkg", tmp_path) is None  # a folder, not a file
    assert provenance.file_at_commit(second, "new.py", tmp_path) == "y = 1\n"
    assert provenance.file_at_commit("0" * 40, "pkg/code.py", tmp_path) is None  # a commit git does not hold
    assert provenance.file_at_commit(first, "code.py", tmp_path / "pkg") is None  # inside the checkout, not its top
    assert provenance.file_at_commit(first, "pkg/code.py", tmp_path / "nowhere") is None
    for commit in ("HEAD", first.upper(), first[:6], first + "0", 7):
        with pytest.raises(ValueError, match="commit"):
            provenance.file_at_commit(commit, "pkg/code.py", tmp_path)
    for path in ("", "/pkg/code.py", "../pkg/code.py", 3):
        with pytest.raises(ValueError, match="path"):
            provenance.file_at_commit(first, path, tmp_path)
    with pytest.raises(ValueError, match="root"):
        provenance.file_at_commit(first, "pkg/code.py", 3)


def test_git_state_counts_untracked_code_files_and_their_contents(tmp_path):
    """The fault: a new code file that git does not track yet (nor ignore) changed neither git_dirty nor the hash,
    so a run resumed with that file changed was taken for the same code.  Now it is dirty, named, and its contents
    are in git_diff_sha256; ignored files and the run outputs of OUTPUT_PATHSPECS stay out."""
    import hashlib
    import subprocess

    def git(*args):
        return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path, check=True,
                              capture_output=True).stdout

    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("*.log\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    (tmp_path / "results" / "fig1").mkdir(parents=True)
    (tmp_path / "results" / "fig1" / "history.csv").write_text("epoch\n0\n")  # a run's output
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "fig1.run.ipynb").write_text("{}\n")  # an executed notebook
    (tmp_path / "train.log").write_text("ignored\n")
    assert provenance.git_state(tmp_path)["git_dirty"] is False and provenance.code_state(tmp_path) == "clean"
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "new.py").write_text("y = 1\n")
    state = provenance.git_state(tmp_path)
    assert state["git_dirty"] is True and state["git_dirty_paths"] == ["lib/new.py"]
    assert provenance.code_state(tmp_path) == "lib/new.py"
    first = state["git_diff_sha256"]
    assert len(first) == 64 and provenance.git_state(tmp_path)["git_diff_sha256"] == first
    (tmp_path / "lib" / "new.py").write_text("y = 2\n")  # the untracked file changed: another hash
    second = provenance.git_state(tmp_path)["git_diff_sha256"]
    assert second not in (None, first)
    (tmp_path / "lib" / "new.py").write_text("y = 1\n")
    assert provenance.git_state(tmp_path)["git_diff_sha256"] == first
    (tmp_path / "code.py").write_text("x = 2\n")  # tracked first, then untracked
    assert provenance.git_state(tmp_path)["git_dirty_paths"] == ["code.py", "lib/new.py"]
    (tmp_path / "lib" / "new.py").unlink()
    # without untracked files, the hash is the tracked changes' alone, as runs recorded it before they counted
    diff = git("diff-index", "-p", "--binary", "--full-index", "--no-color", "--no-ext-diff", "--no-textconv",
               "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--", ".", *provenance.OUTPUT_PATHSPECS)
    assert provenance.git_state(tmp_path)["git_diff_sha256"] == hashlib.sha256(diff).hexdigest()


def _git(path, *args):
    import subprocess

    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=path, check=True,
                   capture_output=True)


def _git_checkout(path):
    """A git checkout at ``path`` holding one committed code file, ``code.py``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "code.py").write_text("x = 1\n")
    for args in (("init", "-q"), ("add", "."), ("commit", "-q", "-m", "init")):
        _git(path, *args)
    return path


def test_unknown_commits_asks_this_repository_or_says_it_cannot(monkeypatch, tmp_path):
    head = json.loads((provenance.ROOT / "results" / "figures" / "gpu" / "fig1" / "fig1-L1" / "provenance.json")
                      .read_text())["git_commit"]
    known = provenance.unknown_commits([head])
    if known is None:
        pytest.skip("git cannot say which commits this checkout holds (no git, a copy or a shallow clone)")
    assert known == [] and provenance.unknown_commits([head, "f" * 40, "not a hash"]) == ["f" * 40, "not a hash"]
    monkeypatch.setenv("GIT_DIR", str(tmp_path))  # the caller's git settings do not move the question elsewhere
    assert provenance.unknown_commits(["f" * 40]) == ["f" * 40]
    monkeypatch.delenv("GIT_DIR")
    # a repository whose first commit was amended: the old one stays stored, but is no ancestor of HEAD, as a commit
    # rebased away or one of an unmerged branch (a fresh clone would not hold it)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@b", GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@b")

    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                              text=True).stdout.strip()
    git("init", "-q")
    (repo / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    first = git("rev-parse", "HEAD")
    git("commit", "-q", "--amend", "-m", "first, amended")
    amended = git("rev-parse", "HEAD")
    assert git("cat-file", "-t", first) == "commit"  # still stored
    assert provenance.unknown_commits([first, amended], root=repo) == [first]
    monkeypatch.setattr(provenance, "ROOT", repo)  # the default root is the repository's
    assert provenance.unknown_commits([first, amended]) == [first]
    # a copy of the files (no repository), or a folder inside another checkout: git cannot say
    (repo / "a").mkdir()
    for elsewhere in (tmp_path, repo / "a"):
        assert provenance.unknown_commits(["f" * 40], root=elsewhere) is None
    with pytest.raises(ValueError, match="commits must be a list"):
        provenance.unknown_commits("f" * 40)
    with pytest.raises(ValueError, match="^root "):
        provenance.unknown_commits([], root=5)


def test_git_state_leaves_out_the_output_folders_inside_the_checkout(tmp_path, monkeypatch):
    """The fault: the files a run wrote into an output folder inside the checkout (not results/, not ignored)
    counted as untracked code, so each call saw other code.  The folders given as outputs are left out; the checkout
    itself, a folder holding it, a folder in which git tracks files, and code files beside an output folder still
    count."""
    root = _git_checkout(tmp_path / "repo")
    (root / "myruns" / "r").mkdir(parents=True)
    (root / "myruns" / "r" / "history.csv").write_text("epoch\n0\n")
    (root / "myruns" / "sweep.json").write_text("{}\n")
    assert provenance.git_state(root)["git_dirty_paths"] == ["myruns/r/history.csv", "myruns/sweep.json"]
    clean = provenance.git_state(root, outputs=[root / "myruns"])
    assert clean["git_dirty"] is False and clean["git_diff_sha256"] is None
    monkeypatch.chdir(root)  # a relative folder is the working directory's
    assert provenance.git_state(root, outputs=["myruns"]) == clean
    assert provenance.git_state(root, outputs=[root / "myruns" / "r"])["git_dirty_paths"] == ["myruns/sweep.json"]
    # the checkout itself, a folder holding it, or one elsewhere leave out nothing
    for folder in (root, tmp_path, tmp_path / "elsewhere"):
        assert provenance.output_folders([folder], root) == []
        assert provenance.git_state(root, outputs=[folder])["git_dirty"] is True
    # inside: relative to the checkout, each once; the default checkout is the repository's
    assert provenance.output_folders([root / "myruns", "myruns", root / "myruns" / "r"], root) == ["myruns", "myruns/r"]
    assert provenance.output_folders([provenance.ROOT / "results" / "runs"]) == ["results/runs"]
    # a folder's name is matched as written, not as a glob
    (root / "r*").mkdir()
    (root / "r*" / "history.csv").write_text("epoch\n")
    (root / "run.py").write_text("y = 1\n")
    state = provenance.git_state(root, outputs=[root / "myruns", root / "r*"])
    assert state["git_dirty_paths"] == ["run.py"]
    for bad in ("myruns", [""], [3]):  # one path where a list is meant, an empty path, no path
        with pytest.raises(ValueError, match="^outputs must be a list of"):
            provenance.git_state(root, outputs=bad)
    for bad in (3, ""):  # no path, the empty path
        with pytest.raises(ValueError, match="^root"):
            provenance.output_folders([root / "myruns"], bad)
    # code changes still count, with the same hash as without the output folders (which hold no changes of code)
    (root / "code.py").write_text("x = 2\n")
    dirty = provenance.git_state(root, outputs=[root / "myruns", root / "r*"])
    assert dirty["git_dirty_paths"] == ["code.py", "run.py"]
    (root / "myruns" / "r" / "history.csv").unlink()
    (root / "myruns" / "sweep.json").unlink()
    (root / "r*" / "history.csv").unlink()
    assert provenance.git_state(root)["git_diff_sha256"] == dirty["git_diff_sha256"]
    # an output folder in which git tracks a file is not left out: its tracked files are code
    (root / "code.py").write_text("x = 1\n")
    (root / "lib").mkdir()
    (root / "lib" / "model.py").write_text("w = 1\n")
    _git(root, "add", "lib/model.py")
    _git(root, "commit", "-q", "-m", "lib")
    (root / "lib" / "model.py").write_text("w = 2\n")
    (root / "lib" / "r").mkdir()
    (root / "lib" / "r" / "history.csv").write_text("epoch\n")
    assert provenance.git_state(root, outputs=[root / "lib"])["git_dirty_paths"] == [
        "lib/model.py", "lib/r/history.csv", "run.py"]
    assert provenance.git_state(root, outputs=[root / "lib" / "r"])["git_dirty_paths"] == ["lib/model.py", "run.py"]
    for bad in ("myruns", None, [""], [5]):
        with pytest.raises(ValueError, match="outputs"):
            provenance.git_state(root, outputs=bad)


def test_a_run_inside_the_checkout_stops_and_resumes_and_code_changes_are_refused(tmp_path, monkeypatch):
    """A run whose out_dir lies inside the checkout (not ignored by git) is its own output, not code: it stops and
    resumes, and ends as the uninterrupted run; a code file changed or added between its calls is refused."""
    whole = train.load_history(train.run(**RESUME_KW, out_dir=tmp_path / "whole", run_name="r"))
    root = _git_checkout(tmp_path / "repo")
    monkeypatch.setattr(provenance, "ROOT", root)
    monkeypatch.chdir(root)
    kw = dict(**RESUME_KW, out_dir="myruns", run_name="r")  # relative, as from the command line
    folder = train.run(**kw, max_train_s=0)
    first = json.loads((folder / "provenance.json").read_text())
    assert first["git_dirty"] is False and first["git_diff_sha256"] is None
    train.run(**kw, max_train_s=0, resume=True)
    assert _status(folder) == "stopped"
    (root / "code.py").write_text("x = 2\n")  # an edited tracked file
    with pytest.raises(train.ResumeRefused, match="with no uncommitted changes and this checkout has uncommitted"):
        train.run(**kw, resume=True)
    (root / "code.py").write_text("x = 1\n")
    (root / "myruns" / "notes.py").write_text("z = 1\n")  # in the output folder: output, whatever its name
    (root / "new.py").write_text("y = 1\n")  # a new code file
    with pytest.raises(train.ResumeRefused, match="with no uncommitted changes and this checkout has uncommitted"):
        train.run(**kw, resume=True)
    assert _status(folder) == "stopped"
    (root / "new.py").unlink()
    train.run(**kw, resume=True)
    assert _status(folder) == "finished"
    ended = train.load_history(folder)
    for col in ("loss", "objective", "nc1", "train_acc"):
        np.testing.assert_array_equal(whole[col], ended[col], err_msg=col)



def test_a_run_resumes_only_where_both_calls_read_their_commit(tmp_path, monkeypatch):
    """The fault: a run started where git could not read the checkout (a copy without .git, a package installed
    without its repository) recorded git_commit None, and a resume compared no code: it went on with any code, here
    edited, then another checkout's commit.  A resume is refused where either call has no commit; nothing in the
    folder changes."""
    copy = tmp_path / "copy"  # a copy of the code without .git
    copy.mkdir()
    (copy / "code.py").write_text("x = 1\n")
    monkeypatch.setattr(provenance, "ROOT", copy)
    kw = dict(**RESUME_KW, out_dir=tmp_path / "runs")
    folder = train.run(**kw, run_name="r", max_train_s=0)
    assert json.loads((folder / "provenance.json").read_text())["git_commit"] is None
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    (copy / "code.py").write_text("x = 2\n")  # the code edited between the calls
    with pytest.raises(train.ResumeRefused, match="git_commit"):
        train.run(**kw, run_name="r", resume=True)
    monkeypatch.setattr(provenance, "ROOT", _git_checkout(tmp_path / "repo"))  # a checkout at some commit
    with pytest.raises(train.ResumeRefused, match="git_commit"):
        train.run(**kw, run_name="r", resume=True)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before and _status(folder) == "stopped"
    # the other way round: a run started at a commit is not resumed where no commit can be read
    other = train.run(**kw, run_name="s", max_train_s=0)
    assert len(json.loads((other / "provenance.json").read_text())["git_commit"]) == 40
    monkeypatch.setattr(provenance, "ROOT", copy)
    with pytest.raises(train.ResumeRefused, match="git_commit"):
        train.run(**kw, run_name="s", resume=True)
    assert _status(other) == "stopped"


def test_a_run_refuses_to_train_while_the_code_it_imported_differs_on_disk(tmp_path, monkeypatch):
    """The fault: a run records the checkout on disk when it is called, not the code the process imported: a
    kernel that imported nclib, whose code was then edited and committed, trained with the old code and recorded the
    new commit.  nclib records each of its source files as it imports it; a call refuses to train while a module it
    imported differs on disk, naming the file, and writes nothing.  A module imported after an edit runs the edited
    code and is not named; a file written back as it was is not changed.  The record is made in a process of its
    own, on a copy of the package."""
    import shutil
    import subprocess
    import sys

    import nclib
    from nclib import metrics

    shutil.copytree(nclib.ROOT / "nclib", tmp_path / "nclib", ignore=shutil.ignore_patterns("__pycache__"))
    script = """
import pathlib, sys
import nclib.rounding
from nclib import provenance
pkg = pathlib.Path(nclib.__file__).parent
assert pkg == pathlib.Path(sys.argv[1]), pkg  # the copy, never the checkout
assert provenance.changed_sources() == [], provenance.changed_sources()
first = (pkg / "rounding.py").read_text()
(pkg / "rounding.py").write_text(first + "\\nEDITED = True\\n")
(pkg / "imbalance.py").write_text((pkg / "imbalance.py").read_text() + "\\nEDITED = True\\n")
import nclib.imbalance
assert nclib.imbalance.EDITED
print(provenance.changed_sources())
(pkg / "rounding.py").write_text(first)
print(provenance.changed_sources())
"""
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script, str((tmp_path / "nclib").resolve())], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['nclib/rounding.py']", "[]"]
    # a call of this process, one of its modules changed on disk since it was imported
    metrics_file = os.path.realpath(metrics.__file__)
    monkeypatch.setitem(nclib.LOADED_SOURCES, metrics_file, "0" * 64)
    assert provenance.changed_sources() == ["nclib/metrics.py"]
    with pytest.raises(ValueError, match="nclib/metrics.py"):
        train.run(**RESUME_KW, out_dir=tmp_path / "runs", run_name="r")
    assert not (tmp_path / "runs" / "r").exists()
    monkeypatch.undo()
    # the modules metrics.py gathers, where a run's NC1, NC2 and NC3 are computed, are recorded as they are imported
    from nclib import _samples, feature_collapse, geometry
    for module in (feature_collapse, geometry, _samples):
        assert os.path.realpath(module.__file__) in nclib.LOADED_SOURCES
        monkeypatch.setitem(nclib.LOADED_SOURCES, os.path.realpath(module.__file__), "0" * 64)
        assert provenance.changed_sources() == [f"nclib/{module.__name__.rpartition('.')[2]}.py"]
        monkeypatch.undo()
    assert provenance.changed_sources() == []
    train.run(**RESUME_KW, out_dir=tmp_path / "runs", run_name="r")
    assert _status(tmp_path / "runs" / "r") == "finished"


def test_runs_started_together_in_two_out_dirs_inside_the_checkout_resume_alone(tmp_path, monkeypatch):
    """The fault: runs trained together may differ in out_dir; resumed alone (as a refusal of runs in different
    states advises), a run counted the other run's folder, inside the checkout, as new code and was refused
    ("changed now and not then: outB/b/...").  The first call records the output folders it left out
    (git_output_folders), and a resume leaves them out too; code changes are still refused."""
    root = _git_checkout(tmp_path / "repo")
    monkeypatch.setattr(provenance, "ROOT", root)
    monkeypatch.chdir(root)
    members = [dict(L=1, run_name="a", out_dir="outA"), dict(L=3, run_name="b", out_dir="outB")]
    a, b = train.run_many(members, max_train_s=0, **RESUME_KW)
    for folder in (a, b):
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["git_dirty"] is False and prov["git_output_folders"] == ["outA", "outB", "outA/a", "outB/b"]
    (root / "new.py").write_text("y = 1\n")  # a new code file: refused still
    with pytest.raises(train.ResumeRefused, match="changed now and not then: new.py"):
        train.run_many(members[:1], resume=True, max_train_s=0, **RESUME_KW)
    (root / "new.py").unlink()
    train.run_many(members[:1], resume=True, max_train_s=0, **RESUME_KW)  # a alone: outB/b is the first call's
    assert train.load_history(a)["epoch"].tolist() == [0, 2, 4] and _status(a) == "stopped"
    train.run_many(members[1:], resume=True, **RESUME_KW)  # b alone, with a's folder changed since
    train.run_many(members[:1], resume=True, **RESUME_KW)
    assert _status(a) == _status(b) == "finished"
    whole = train.run_many([{**m, "out_dir": tmp_path / "whole" / m["out_dir"]} for m in members], **RESUME_KW)
    for part, alone in zip((a, b), whole):
        for col in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(train.load_history(alone)[col], train.load_history(part)[col])

def test_a_refused_resume_names_the_files_whose_changes_differ(tmp_path, monkeypatch):
    """The fault: a batch system's logs written into the checkout (slurm-%A_%a.out, not ignored) are uncommitted
    changes; at the next submission a new or grown log refused every stopped run without saying which files
    differed.  The refusal names the files changed now and not then, then and not now, or, where the same files
    are changed, those files; the files changed alike on both sides are not named."""
    root = _git_checkout(tmp_path / "repo")
    monkeypatch.setattr(provenance, "ROOT", root)
    monkeypatch.chdir(root)
    (root / "notes.py").write_text("n = 1\n")  # changed alike in both calls
    (root / "slurm-1_0.out").write_text("task start\n")
    kw = dict(**RESUME_KW, out_dir=tmp_path / "runs", run_name="r")
    folder = train.run(**kw, max_train_s=0)
    assert json.loads((folder / "provenance.json").read_text())["git_dirty_paths"] == ["notes.py", "slurm-1_0.out"]
    (root / "slurm-2_0.out").write_text("task start\n")
    with pytest.raises(train.ResumeRefused) as refused:
        train.run(**kw, resume=True)
    assert "slurm-2_0.out" in str(refused.value) and "notes.py" not in str(refused.value)
    assert "slurm-1_0.out" not in str(refused.value)  # the same name on both sides: not told apart by name here
    (root / "slurm-2_0.out").unlink()
    (root / "slurm-1_0.out").write_text("task start\nepoch 2\n")  # the same files, one of them grown
    with pytest.raises(train.ResumeRefused) as refused:
        train.run(**kw, resume=True)
    assert "slurm-1_0.out" in str(refused.value)
    (root / "slurm-1_0.out").unlink()
    with pytest.raises(train.ResumeRefused) as refused:
        train.run(**kw, resume=True)
    assert "slurm-1_0.out" in str(refused.value) and "notes.py" not in str(refused.value)
    assert _status(folder) == "stopped"
    (root / "slurm-1_0.out").write_text("task start\n")  # the checkout as it was: the run resumes
    train.run(**kw, resume=True)
    assert _status(folder) == "finished"
    # the names compared: those a state records (at most 20 each); a state without them names none
    then, now = {"git_dirty_paths": ["a.py", "b.out"]}, {"git_dirty_paths": ["a.py", "c.out"]}
    assert "c.out" in provenance.changed_files(then, now) and "b.out" in provenance.changed_files(then, now)
    assert "a.py" not in provenance.changed_files(then, now)
    assert provenance.changed_files({"git_dirty": True}, now) == ""
    assert provenance.changed_files({"git_dirty_paths": []}, {"git_dirty_paths": []}) == ""
    for bad in ({"then": None, "now": now}, {"then": then, "now": ["a.py"]}):
        with pytest.raises(ValueError, match=f"^{next(k for k, v in bad.items() if not isinstance(v, dict))} must"):
            provenance.changed_files(**bad)


def test_the_checkouts_gitignore_leaves_out_a_batch_systems_logs(tmp_path):
    """Slurm's default logs (slurm-%j.out, slurm-%A_%a.out), written where a job is submitted, are not code: the
    checkout's .gitignore leaves them out of a run's git state, so two tasks of one array record one checkout."""
    root = _git_checkout(tmp_path / "repo")
    (root / ".gitignore").write_text((provenance.ROOT / ".gitignore").read_text())  # the project's
    _git(root, "add", ".gitignore")
    _git(root, "commit", "-q", "-m", "ignore")
    for name in ("slurm-1234.out", "slurm-1002_0.out", "slurm-1002_14.out"):
        (root / name).write_text("task start\n")
    assert provenance.git_state(root)["git_dirty"] is False
    (root / "slurm.py").write_text("x = 1\n")  # code named alike still counts
    assert provenance.git_state(root)["git_dirty_paths"] == ["slurm.py"]



def test_git_env_is_this_processs_environment_without_its_git_variables(monkeypatch):
    """What git runs in: every variable but those starting GIT_ (which redirect it to another repository, index or
    settings), whatever they are set to."""
    for name, value in (("GIT_DIR", "/elsewhere/.git"), ("GIT_CONFIG_COUNT", "1"), ("GIT_LITERAL_PATHSPECS", "1"),
                        ("NCLIB_KEPT", "git"), ("LANG_GIT", "kept")):
        monkeypatch.setenv(name, value)
    env = provenance.git_env()
    assert not any(k.startswith("GIT_") for k in env)
    assert env["NCLIB_KEPT"] == "git" and env["LANG_GIT"] == "kept" and env["PATH"] == os.environ["PATH"]
    assert set(env) == {k for k in os.environ if not k.startswith("GIT_")}


def test_git_state_reads_the_checkout_at_root_and_no_other(tmp_path, monkeypatch):
    """The fault: git ran with the environment's GIT_DIR, GIT_WORK_TREE or GIT_INDEX_FILE (a git hook sets them), so
    git_state of one checkout recorded another repository's commit and changes; and a root inside another checkout
    (a subfolder, or a package installed into an ignored virtual environment there) recorded the outer checkout's
    commit as "clean".  Now those variables are left out, and a root that is not the top of its own repository has
    no git state."""
    root = _git_checkout(tmp_path / "repo")
    other = _git_checkout(tmp_path / "other")
    (other / "more.py").write_text("m = 1\n")
    _git(other, "add", "more.py")
    _git(other, "commit", "-q", "-m", "more")
    (other / "code.py").write_text("x = 2\n")  # the other repository: another commit, and changed
    own = provenance.git_state(root)
    assert own["git_dirty"] is False and len(own["git_commit"]) == 40
    for name, value in (("GIT_DIR", other / ".git"), ("GIT_WORK_TREE", other), ("GIT_INDEX_FILE", tmp_path / "none"),
                        ("GIT_OBJECT_DIRECTORY", tmp_path / "no-objects"), ("GIT_LITERAL_PATHSPECS", "1")):
        monkeypatch.setenv(name, str(value))
        assert provenance.git_state(root) == own, name
        assert provenance.code_state(root) == "clean", name
        monkeypatch.delenv(name)
    # inside another checkout: a subfolder, and an ignored folder holding a package (a virtual environment)
    (root / ".gitignore").write_text(".venv\n")
    _git(root, "add", ".gitignore")
    _git(root, "commit", "-q", "-m", "ignore")
    none = dict.fromkeys(("git_commit", "git_dirty", "git_dirty_paths", "git_diff_sha256"))
    for inner in (root / "lib", root / ".venv" / "lib" / "site-packages"):
        inner.mkdir(parents=True)
        (inner / "mod.py").write_text("z = 1\n")
        assert provenance.git_state(inner) == none, inner
        assert provenance.code_state(inner) == "no git"
    assert provenance.git_state(root)["git_dirty_paths"] == ["lib/mod.py"]
    odd = _git_checkout(tmp_path / os.fsdecode(b"caf\xe9"))  # a folder name that is no UTF-8: read as it is
    state = provenance.git_state(odd)
    assert state["git_dirty"] is False and len(state["git_commit"]) == 40


def test_git_state_ignores_only_what_the_checkouts_gitignore_ignores(tmp_path, monkeypatch):
    """The fault: untracked files were listed with git's --exclude-standard, which adds a user's own ignore lists
    (core.excludesFile, .git/info/exclude): a new code file one of them hid was recorded clean.  Now only the
    checkout's .gitignore files decide, so the same checkout gives the same state under any user's settings."""
    root = _git_checkout(tmp_path / "repo")
    (root / ".gitignore").write_text("*.log\n")
    _git(root, "add", ".gitignore")
    _git(root, "commit", "-q", "-m", "ignore")
    home = tmp_path / "home"  # a user's own list, and the repository's list of its own
    home.mkdir()
    (home / "ignored-by-me").write_text("personal.py\n")
    (home / ".gitconfig").write_text(f"[core]\n\texcludesFile = {home / 'ignored-by-me'}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("local.py\n")
    (root / "train.log").write_text("a log\n")  # ignored by the checkout's .gitignore
    assert provenance.git_state(root)["git_dirty"] is False
    for name in ("personal.py", "local.py"):
        (root / name).write_text("y = 1\n")
    state = provenance.git_state(root)
    assert state["git_dirty"] is True and state["git_dirty_paths"] == ["local.py", "personal.py"]
    (root / ".git" / "repo-ignore").write_text("config.py\n")  # the repository's setting, outside its tree
    _git(root, "config", "core.excludesFile", str(root / ".git" / "repo-ignore"))
    (root / "config.py").write_text("c = 1\n")
    assert provenance.git_state(root)["git_dirty_paths"] == ["config.py", "local.py", "personal.py"]
    assert provenance.code_state(root) == "config.py local.py personal.py"


def test_git_state_counts_the_files_of_an_untracked_nested_repository(tmp_path):
    """The fault: a git repository inside the checkout, untracked there, was one entry ``vend/`` whose contents
    (a directory's) hashed as "unreadable", so its files could change between two calls with the same hash.  Now
    every file that repository tracks or does not ignore counts by its contents, with or without a commit of its
    own; what its .gitignore ignores does not."""
    root = _git_checkout(tmp_path / "repo")
    vend = _git_checkout(root / "vend")
    (vend / ".gitignore").write_text("*.log\n")
    (vend / "new.py").write_text("n = 1\n")  # untracked in vend, not ignored
    state = provenance.git_state(root)
    assert state["git_dirty"] is True and state["git_dirty_paths"] == ["vend/"]
    first = state["git_diff_sha256"]
    assert len(first) == 64 and provenance.git_state(root)["git_diff_sha256"] == first
    (vend / "vend.log").write_text("ignored there\n")
    assert provenance.git_state(root)["git_diff_sha256"] == first
    seen = {first}
    for name, text in (("code.py", "x = 2\n"), ("new.py", "n = 2\n"), ("more.py", "m = 1\n")):
        before = (vend / name).read_text() if (vend / name).exists() else None
        (vend / name).write_text(text)  # a tracked file, an untracked one, a new one: each another hash
        now = provenance.git_state(root)["git_diff_sha256"]
        assert now not in seen, name
        seen.add(now)
        if before is None:
            (vend / name).unlink()
        else:
            (vend / name).write_text(before)
    assert provenance.git_state(root)["git_diff_sha256"] == first
    bare = root / "bare"  # a repository without a commit
    bare.mkdir()
    _git(bare, "init", "-q")
    (bare / "b.py").write_text("b = 1\n")
    one = provenance.git_state(root)
    assert one["git_dirty_paths"] == ["bare/", "vend/"]
    (bare / "b.py").write_text("b = 2\n")
    assert provenance.git_state(root)["git_diff_sha256"] not in (None, one["git_diff_sha256"])


def test_git_state_counts_a_submodule_not_checked_out_by_its_recorded_commit(tmp_path):
    """The fault: a submodule that an untracked nested repository records but has not checked out (an empty
    folder) made the whole state None, as if git could not say which code ran.  It names its code by the commit
    it records: the state is a hash, another recorded commit another hash; a folder with files that is not a
    repository of its own still leaves the state None."""
    root = _git_checkout(tmp_path / "repo")
    vend = _git_checkout(root / "vend")
    (vend / "lib").mkdir()
    commit = "1" * 40
    _git(vend, "update-index", "--add", "--cacheinfo", f"160000,{commit},lib")
    first = provenance.git_state(root)
    assert first["git_dirty_paths"] == ["vend/"] and len(first["git_diff_sha256"]) == 64
    assert provenance.git_state(root)["git_diff_sha256"] == first["git_diff_sha256"]
    _git(vend, "update-index", "--cacheinfo", f"160000,{'2' * 40},lib")
    assert provenance.git_state(root)["git_diff_sha256"] not in (None, first["git_diff_sha256"])
    (vend / "lib" / "stray.py").write_text("s = 1\n")  # files there, yet no repository: git cannot list them
    assert provenance.git_state(root)["git_commit"] is None


def test_git_state_names_the_first_20_changed_files_and_counts_them_all(tmp_path):
    """With 21 new code files the state is dirty and names the first 20 in git's order (``git_dirty_paths``, at most
    20), while its hash covers all 21: the 21st file's contents change it."""
    root = _git_checkout(tmp_path / "repo")
    names = [f"m{i:02d}.py" for i in range(21)]
    for name in names:
        (root / name).write_text(f"{name[:-3]} = 1\n")
    state = provenance.git_state(root)
    assert state["git_dirty"] is True and state["git_dirty_paths"] == names[:20]
    (root / names[20]).write_text("m20 = 2\n")  # the file the names leave out
    again = provenance.git_state(root)
    assert again["git_dirty_paths"] == names[:20] and again["git_diff_sha256"] not in (None, state["git_diff_sha256"])


def test_unknown_commits_cannot_say_in_a_shallow_clone(tmp_path):
    """A shallow clone lacks the commits before its depth: a commit of the history it does not hold is not known to
    be foreign, so unknown_commits says None; the full clone of the same history knows it (an empty list)."""
    repo = _git_checkout(tmp_path / "repo")
    first = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                           check=True).stdout.strip()
    (repo / "code.py").write_text("x = 2\n")
    _git(repo, "commit", "-q", "-am", "second")
    for depth, want in ((["--depth", "1"], None), ([], [])):
        clone = tmp_path / f"clone{len(depth)}"
        _git(tmp_path, "clone", "-q", "--no-local", *depth, f"file://{repo}", str(clone))
        assert provenance.unknown_commits([first], root=clone) == want


def test_git_state_that_cannot_list_the_untracked_files_is_none(tmp_path, monkeypatch):
    """Where git cannot list the untracked files (``ls-files --others`` fails, here made to fail), the state cannot
    say which code ran: all four entries are None, not a clean checkout."""
    root = _git_checkout(tmp_path / "repo")
    assert provenance.git_state(root)["git_dirty"] is False
    real = subprocess.run

    def failing(args, **kw):
        if args[:2] == ["git", "ls-files"] and "--others" in args:
            return subprocess.CompletedProcess(args, 128, b"", b"fatal: cannot list")
        return real(args, **kw)
    monkeypatch.setattr(provenance.subprocess, "run", failing)
    assert provenance.git_state(root) == dict.fromkeys(("git_commit", "git_dirty", "git_dirty_paths",
                                                        "git_diff_sha256"))


def test_letters_resume_whether_rendered_or_read_ahead(tmp_path):
    """A letters-synthetic run started on letters rendered in the call resumes on the same letters read from a
    rendering saved ahead (data_path), and the other way round, ending as the uninterrupted run; the synthetic
    Gaussian mixture, which reads no file, refuses a data_path.  The run records the version of Pillow that resized
    its letters."""
    import PIL

    from nclib import letters

    kw = dict(dataset="letters-synthetic", counts=[2] * 26, width=8, depth=1, epochs=4, batch_size=13, lr=1e-3,
              metric_every=1, progress=False, device="cpu")
    ahead = str(letters.save_letters_synthetic(tmp_path / "letters.npz", counts=kw["counts"], seed=0))
    whole = train.run(**kw, L=1, out_dir=tmp_path / "whole")
    assert json.loads((whole / "provenance.json").read_text())["data"]["pillow"] == PIL.__version__
    for first, then in ((None, ahead), (ahead, None)):
        out = tmp_path / f"from-{'file' if first else 'render'}"
        part = train.run(**kw, L=1, out_dir=out, data_path=first, max_train_s=0)
        while _status(part) == "stopped":
            part = train.run(**kw, L=1, out_dir=out, data_path=then, max_train_s=0, resume=True)
        for col in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(train.load_history(whole)[col], train.load_history(part)[col])
    stopped = train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path / "synthetic", max_train_s=0, **RESUME_KW)
    with pytest.raises(ValueError, match="the synthetic Gaussian mixture is drawn from the seed"):
        train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path / "synthetic", resume=True, **RESUME_KW,
                       data_path=ahead)  # refused before any folder is read: such a data_path reads nothing
    assert _status(stopped[0]) == "stopped"


def test_a_run_resumes_and_plans_alike_however_its_folder_and_letters_are_given(tmp_path, monkeypatch):
    """The folder is found by out_dir and run_name, so their spelling (relative or absolute) is not what the run is;
    nor is where the letters stand-in comes from.  Resuming (run_many) and planning (plan, the notebook's and
    ``--resume auto``'s choice) compare the same parameters (nclib.parameters.defining_params)."""
    monkeypatch.chdir(tmp_path)
    train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path / "runs", max_train_s=0, **RESUME_KW)
    assert train.plan(RESUME_MEMBERS[:1], out_dir="runs", **RESUME_KW) == "resume"
    done = train.run_many(RESUME_MEMBERS[:1], out_dir="runs", resume=True, **RESUME_KW)
    assert _status(done[0]) == "finished"
    assert train.plan(RESUME_MEMBERS[:1], out_dir=tmp_path / "runs", **RESUME_KW) == "skip"
    from nclib import letters

    kw = dict(dataset="letters-synthetic", counts=[2] * 26, width=8, depth=1, epochs=4, batch_size=13, lr=1e-3,
              metric_every=1, progress=False, device="cpu", out_dir="letters")
    ahead = str(letters.save_letters_synthetic(tmp_path / "letters.npz", counts=kw["counts"], seed=0))
    train.run(**kw, L=1, max_train_s=0)
    assert train.plan([dict(L=1)], **kw, data_path=ahead) == "resume"
    with pytest.raises(ValueError, match="runs differ in 'overwrite'"):
        train.plan([dict(L=1, overwrite=True), dict(L=3)], **RESUME_KW, out_dir="other")


@cuda_only
@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_cuda_paper_width_runs_together_equal_runs_alone(tmp_path, precision):
    """At the paper's width and batch (where cuBLAS may split K and use its workspace), runs replayed concurrently
    on their streams give the losses of runs trained alone, bit for bit (scripts/gpu_figures.sh runs -k cuda)."""
    kw = dict(dataset="synthetic", counts=[200, 200, 200], dim=3072, width=2048, depth=6, epochs=4, batch_size=128,
              lr=1e-4, metric_every=2, progress=False, device="cuda", precision=precision)
    members = [dict(L=1, run_name="L1"), dict(L=3, run_name="L3"), dict(L=6, bias=False, run_name="L6")]
    together = train.run_many(members, out_dir=tmp_path / "together", **kw)
    for member, path in zip(members, together):
        alone = train.load_history(train.run(**kw, **member, out_dir=tmp_path / "alone"))
        both = train.load_history(path)
        for k in ("loss", "objective", "nc1"):
            np.testing.assert_array_equal(alone[k], both[k], err_msg=f"{member['run_name']}: {k}")


@cuda_only
def test_cuda_fp32_and_tf32_runs_together_equal_runs_alone(tmp_path):
    """The paired precision runs (results/stability/): a strict fp32 run and a TF32 run side by side on their
    streams each give the losses of the same run trained alone, bit for bit."""
    kw = dict(dataset="synthetic", counts=[200, 200, 200], dim=3072, width=2048, depth=6, epochs=4, batch_size=128,
              lr=1e-4, metric_every=2, progress=False, device="cuda", L=6)
    members = [dict(precision="fp32", run_name="fp32"), dict(precision="tf32", run_name="tf32")]
    together = train.run_many(members, out_dir=tmp_path / "together", **kw)
    losses = []
    for member, path in zip(members, together):
        alone = train.load_history(train.run(**kw, **member, out_dir=tmp_path / "alone"))
        both = train.load_history(path)
        losses.append(both["loss"])
        for k in ("loss", "objective", "nc1"):
            np.testing.assert_array_equal(alone[k], both[k], err_msg=f"{member['run_name']}: {k}")
    assert not np.array_equal(losses[0][1:], losses[1][1:])  # TF32 products do change the arithmetic on a GPU


def test_time_side_by_side_advances_every_engine_by_whole_epochs():
    engines = [_engine(L=L, batch_size=8)[0] for L in (1, 2)]
    seconds = train.time_side_by_side(engines, 3)
    assert seconds > 0 and [e.steps_done for e in engines] == [3 * 4, 3 * 4]
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.time_side_by_side(engines, 0)
    with pytest.raises(ValueError, match="engines must be a non-empty list"):
        train.time_side_by_side([], 3)
    # a timing's steps: a whole number of them, refused by name otherwise
    engines[0].train_steps(5)
    assert engines[0].steps_done == 3 * 4 + 5
    for bad in (-3, True, 2.5):
        with pytest.raises(ValueError, match="n must be a non-negative integer"):
            engines[0].train_steps(bad)
    assert engines[0].steps_done == 3 * 4 + 5


# ------------------------------------------------------------------------------------------ stop and resume

RESUME_KW = dict(dataset="synthetic", counts=[12, 6, 3], dim=8, width=16, depth=2, epochs=6, batch_size=4,
                 lr=1e-3, lr_milestones=[3], lam_W=1e-3, lam_H=1e-3, metric_every=2, progress=False, device="cpu")
RESUME_MEMBERS = [dict(L=1, run_name="L1"), dict(L=3, run_name="L3"), dict(L=6, bias=False, run_name="L6")]


def _status(path):
    return json.loads((path / "provenance.json").read_text())["status"]


def test_a_stopped_run_resumes_exactly(tmp_path):
    """max_train_s=0 stops the runs at their first metric epoch after the call's start, with a checkpoint; each
    resume continues by one metric interval; the histories (every column but the wall time) and step counts equal
    an uninterrupted run's, across the step decay of the learning rate after epoch 3."""
    whole = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "whole", **RESUME_KW)
    parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, **RESUME_KW)
    assert [_status(p) for p in parts] == ["stopped"] * 3
    assert all((p / train.CHECKPOINT).is_file() for p in parts)
    assert [train.load_history(p)["epoch"].tolist() for p in parts] == [[0, 2]] * 3
    calls = 1
    while _status(parts[0]) == "stopped":  # async_metrics says how a call computes the rows: it may change
        parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True,
                               async_metrics=calls % 2 == 1, **RESUME_KW)
        calls += 1
    assert calls == 3 and [_status(p) for p in parts] == ["finished"] * 3
    for a, b in zip(whole, parts):
        ha, hb = train.load_history(a), train.load_history(b)
        for col in train.REPRODUCIBLE_COLUMNS:
            np.testing.assert_array_equal(ha[col], hb[col], err_msg=f"{b.name}: {col}")
        pa, pb = (json.loads((p / "provenance.json").read_text()) for p in (a, b))
        assert pb["steps"] == pa["steps"] == 6 * 5
        assert [(s["from_epoch"], s["to_epoch"], s["status"], s["steps"]) for s in pb["segments"]] == \
            [(0, 2, "stopped", 10), (2, 4, "stopped", 10), (4, 6, "finished", 10)]
        assert [s["async_metrics"] for s in pb["segments"]] == [False, True, False]  # "auto" on the CPU: False
        assert all(s["levers"] == {k: train.DEFAULTS[k] for k in train.LEVER_KEYS} for s in pb["segments"])
        assert pb["wall_time_s"] == pytest.approx(sum(s["wall_time_s"] for s in pb["segments"]))
        assert not (b / train.CHECKPOINT).exists()  # a finished run keeps no checkpoint
        assert sorted(f.name for f in b.iterdir()) == ["class_accuracy.csv", "history.csv", "params.json",
                                                        "provenance.json"]  # nor its checksum or lock
        assert np.all(np.diff(hb["wall_time"]) > 0)  # the wall-time column goes on across calls


def test_the_training_time_leaves_out_writing_the_checkpoints(tmp_path, monkeypatch):
    """train_time_s and the history's wall_time count the training loop, not the checkpoints written when
    max_train_s stops the runs: with a clock that jumps by a million seconds while each checkpoint is written and
    while it is committed, the provenance of a stopped run records the training time its checkpoint holds (which
    ends before any checkpoint is written, also for the second run, whose checkpoint is written after the first's:
    its clock stopped with the first's, and writing its own does not start it again), the call's wall_time_s holds
    the jumps, and the resumed run's times and history hold none."""
    from nclib import runfolder

    jump, shift = 1e6, [0.0]
    clock, save, commit = time.perf_counter, runfolder.torch.save, checkpoints.commit_checkpoint

    def saving_takes_a_jump(obj, f):
        save(obj, f)
        shift[0] += jump

    def writing_takes_a_jump(run_dir, epoch):
        commit(run_dir, epoch)
        shift[0] += jump

    monkeypatch.setattr(time, "perf_counter", lambda: clock() + shift[0])
    monkeypatch.setattr(runfolder.torch, "save", saving_takes_a_jump)
    monkeypatch.setattr(checkpoints, "commit_checkpoint", writing_takes_a_jump)
    members = RESUME_MEMBERS[:2]  # trained together: neither run counts the other's checkpoint either
    parts = train.run_many(members, out_dir=tmp_path, max_train_s=0, **RESUME_KW)
    assert shift[0] == 4 * jump and [_status(p) for p in parts] == ["stopped"] * 2
    stopped = {}
    for p in parts:
        prov = json.loads((p / "provenance.json").read_text())
        held = torch.load(p / train.CHECKPOINT, weights_only=True)["time_s"]
        assert prov["train_time_s"] == held["train_time_s"] == prov["segments"][0]["train_time_s"]
        assert prov["wall_time_s"] >= prov["train_time_s"] + jump and prov["train_time_s"] < jump
        stopped[p.name] = prov["train_time_s"]
    parts = train.run_many(members, out_dir=tmp_path, resume=True, **RESUME_KW)
    assert shift[0] == 4 * jump  # a finished run writes no checkpoint
    for p in parts:
        prov, history = json.loads((p / "provenance.json").read_text()), train.load_history(p)
        assert prov["status"] == "finished" and history["epoch"].tolist() == [0, 2, 4, 6]
        assert prov["train_time_s"] == pytest.approx(stopped[p.name] + prov["segments"][1]["train_time_s"],
                                                     rel=1e-12, abs=0)
        assert np.all(np.diff(history["wall_time"]) > 0) and history["wall_time"][-1] <= prov["train_time_s"] < jump


def test_resume_refuses_what_would_not_be_the_same_run(tmp_path, monkeypatch):
    """Each check of a resume refuses by name: other parameters, another commit, other uncommitted changes, a
    checkout whose commit cannot be read (the fault: a run started at a known commit resumed from a copy without
    git with any code), another device name, another torch version, another CPU or thread count, runs stopped at
    different epochs; nothing refused is touched."""
    import re

    monkeypatch.setattr(provenance, "ROOT", _git_checkout(tmp_path / "repo"))  # a checkout whose commit is known
    with pytest.raises(ValueError, match="max_train_s"):
        train.check_params(**RESUME_KW, max_train_s=-1.0)
    with pytest.raises(ValueError, match="resume must be True or False"):
        train.check_params(**RESUME_KW, resume="yes")
    with pytest.raises(train.ResumeRefused, match="holds no run to continue"):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "none", resume=True, **RESUME_KW)
    parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path, max_train_s=0, **RESUME_KW)
    with pytest.raises(train.ResumeRefused, match=r"run 'L1' .*started with other parameters: lr = 0.001, now 0.002"):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **{**RESUME_KW, "lr": 2e-3})
    first = json.loads((parts[0] / "provenance.json").read_text())
    assert len(first["git_commit"]) == 40 and first["git_dirty"] is False
    real = provenance.git_state
    monkeypatch.setattr(provenance, "git_state", lambda **kw: {**real(**kw), "git_commit": "f" * 40})
    with pytest.raises(train.ResumeRefused, match="a run's code must not change"):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    # a checkout whose commit cannot be read (a copy without .git): its code cannot be compared
    monkeypatch.setattr(provenance, "git_state", lambda **kw: dict.fromkeys(real(**kw)))
    with pytest.raises(train.ResumeRefused, match=f"started at commit {first['git_commit'][:10]} \\(git_commit\\) and "
                                                  f"this checkout's commit cannot be read"):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    # the same commit with other uncommitted changes than the first call's is other code too
    monkeypatch.setattr(provenance, "git_state", lambda **kw: {**real(**kw), "git_commit": first["git_commit"],
                                                              "git_dirty": True, "git_diff_sha256": "0" * 64})
    with pytest.raises(train.ResumeRefused, match="with no uncommitted changes and this checkout has"):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    monkeypatch.setattr(provenance, "git_state", real)
    prov_path = parts[0] / "provenance.json"
    saved = prov_path.read_text()
    prov_path.write_text(json.dumps({**json.loads(saved), "device_name": "NVIDIA H200"}))
    with pytest.raises(train.ResumeRefused, match="started on another device or torch: device_name 'NVIDIA H200', now"):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    # another torch: its kernels (and fused Adam's) may compute otherwise
    prov_path.write_text(json.dumps({**json.loads(saved), "versions": {**json.loads(saved)["versions"],
                                                                       "torch": "1.0.0"}}))
    with pytest.raises(train.ResumeRefused, match=re.escape(f"started on another device or torch: torch '1.0.0', now "
                                                            f"{torch.__version__!r}")):
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    prov_path.write_text(saved)
    # a CPU run records its CPU and the kernels torch picks there; another CPU would not continue it exactly
    assert json.loads(saved)["host_cpu"] == provenance.cpu_name()
    assert json.loads(saved)["torch_threads"] == torch.get_num_threads()  # and how many threads its kernels used
    with monkeypatch.context() as m:
        m.setattr(provenance, "cpu_name", lambda: "Another CPU (AVX512)")
        with pytest.raises(train.ResumeRefused, match="started on another CPU: .*, now 'Another CPU \\(AVX512\\)'"):
            train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    threads = json.loads(saved)["torch_threads"]  # the same CPU with its kernels split over other threads
    with monkeypatch.context() as m:
        m.setattr(torch, "get_num_threads", lambda: threads + 1)
        with pytest.raises(train.ResumeRefused, match=f"started with {threads} CPU threads for torch, now "
                                                      f"{threads + 1} "):
            train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    # a run resumed alone moves on to the next metric epoch: the three no longer stop at the same epoch
    train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path, resume=True, max_train_s=0, **RESUME_KW)
    with pytest.raises(train.ResumeRefused, match=r"stopped at different epochs \[2, 4\]") as apart:
        train.run_many(RESUME_MEMBERS, out_dir=tmp_path, resume=True, **RESUME_KW)
    assert str(apart.value).endswith(runplan.epochs_apart_advice(dict(zip(parts, (4, 2, 2)))))  # how to join them
    assert [_status(p) for p in parts] == ["stopped"] * 3  # nothing refused was touched


def test_a_run_resumes_with_another_cuda_graph_setting(tmp_path):
    """cuda_graph says how a GPU launches the steps (a captured graph or one kernel at a time), not what they
    compute: an execution key, so a stopped run resumes with another value (the fault: refused, "cuda_graph =
    'auto', now False") and ends as the uninterrupted run; on the CPU the steps are eager whatever it says."""
    assert "cuda_graph" in train.EXECUTION_KEYS
    assert "cuda_graph" not in parameters.defining_params(train.check_params(**RESUME_KW))
    whole = train.run(**RESUME_KW, out_dir=tmp_path, run_name="whole")
    kw = dict(**RESUME_KW, out_dir=tmp_path, run_name="r")
    folder = train.run(**kw, max_train_s=0)  # "auto", the default
    train.run(**kw, max_train_s=0, resume=True, cuda_graph=False)
    train.run(**kw, resume=True, cuda_graph="auto")
    assert _status(folder) == "finished"
    ha, hb = train.load_history(whole), train.load_history(folder)
    for col in train.REPRODUCIBLE_COLUMNS:
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)
    segments = json.loads((folder / "provenance.json").read_text())["segments"]
    assert [s["cuda_graph"] for s in segments] == ["off"] * 3  # no graph on the CPU


def test_a_run_finished_after_a_failed_call_carries_no_error(tmp_path, monkeypatch):
    """A call that fails after a stop keeps the checkpoint; the next call continues from it (as a sweep's rerun
    and resume "auto" do), and once the run has finished its provenance carries no error: the failed call's
    error stays in its own segment.  The history equals an uninterrupted run's."""
    whole = train.run(**RESUME_KW, out_dir=tmp_path, run_name="whole")
    kw = dict(**RESUME_KW, out_dir=tmp_path, run_name="r")
    folder = train.run(**kw, max_train_s=0)
    real = train.Engine.host_metrics

    def fails(self, payload):
        raise FloatingPointError("metric blew up")

    monkeypatch.setattr(train.Engine, "host_metrics", fails)
    with pytest.raises(FloatingPointError):
        train.run(**kw, resume=True)
    monkeypatch.setattr(train.Engine, "host_metrics", real)
    assert _status(folder) == "failed" and (folder / train.CHECKPOINT).is_file()
    assert train.plan([{}], **kw) == "resume" and sweep.next_step(folder) == ("failed", "resume")
    train.run(**kw, resume=True)
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["status"] == "finished" and "error" not in prov
    assert [(s["status"], "metric blew up" in s.get("error", "")) for s in prov["segments"]] == \
        [("stopped", False), ("failed", True), ("finished", False)]
    ha, hb = train.load_history(whole), train.load_history(folder)
    for col in train.REPRODUCIBLE_COLUMNS:
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)


def test_a_failed_run_whose_resume_is_refused_is_kept_by_a_sweep_unless_a_restart_is_asked(tmp_path, monkeypatch):
    """A sweep's rerun resumes a failed run from its checkpoint; where the resume is refused (here the run's card
    is another, as after a change of the code), the run is left as it is, an error, as a stopped run is: it holds
    the checkpoint of an earlier stop.  With restart_refused it is trained again from the start."""
    p = train.check_params(**RESUME_KW, out_dir=tmp_path, run_name="r")
    folder = train.run(**{**p, "max_train_s": 0})
    monkeypatch.setattr(train.Engine, "host_metrics", lambda self, payload: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train.run(**{**p, "resume": True})
    monkeypatch.undo()
    prov_path = folder / "provenance.json"
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "device_name": "NVIDIA H200"}))
    assert sweep.next_step(folder) == ("failed", "resume")
    with pytest.raises(train.ResumeRefused, match="another device"):
        train.run(**{**p, "resume": True})
    before = prov_path.read_bytes()
    kept = sweep._run_point(p)
    assert (kept["status"], kept["restarted"], kept["fresh"]) == ("failed", None, False)
    assert kept["error"].startswith("ResumeRefused: ") and prov_path.read_bytes() == before
    result = sweep._run_point(p, restart_refused=True)
    # trained again from the start: fresh, as the restart is (sweep._train_point)
    assert (result["status"], result["error"], result["fresh"]) == ("finished", None, True)
    assert result["restarted"].startswith("ResumeRefused: ") and "another device" in result["restarted"]
    assert [w[0] for w in result["warnings"]] == [sweep.RunRestarted]
    assert [s["from_epoch"] for s in json.loads(prov_path.read_text())["segments"]] == [0]  # from the start


def test_a_run_resumes_whatever_its_device_is_called_on_the_same_machine(tmp_path, monkeypatch):
    """device "auto" and "cpu" name one device on a machine without a GPU: a run started with one resumes and
    plans with the other; what a resume compares is the device the run trained on (provenance)."""
    if torch.cuda.is_available():
        pytest.skip("auto names the GPU on this machine")
    kw = dict(**{k: v for k, v in RESUME_KW.items() if k != "device"}, out_dir=tmp_path, run_name="r")
    folder = train.run(**kw, device="auto", max_train_s=0)
    assert train.plan([{}], **kw, device="cpu") == "resume"
    train.run(**kw, device="cpu", resume=True)
    assert train.plan([{}], **kw, device="auto") == "skip"
    # a call that trains on a GPU does not take a run trained on a CPU (no TF32, other kernels) ...
    monkeypatch.setattr(parameters, "_cuda_available", lambda: True)  # "auto" is a GPU now
    with pytest.raises(runs.RunExists, match="device = 'cpu', now 'cuda'"):
        train.plan([{}], **kw, device="auto")
    monkeypatch.undo()
    # ... but a call on a CPU reads a run trained on a GPU as it is
    prov_path = folder / "provenance.json"
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "device": "cuda:0"}))
    assert train.plan([{}], **kw, device="cpu") == "skip"


def test_resume_of_a_run_killed_before_its_provenance_is_refused_by_name(tmp_path):
    """A process killed between writing params.json and provenance.json leaves a dead run without a checkpoint:
    resume=True refuses it by name (it raised FileNotFoundError)."""
    p = train.check_params(**RESUME_KW, out_dir=tmp_path, run_name="r")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "params.json").write_text(json.dumps(runs.json_values(p)))
    assert runs.run_status(tmp_path / "r") == "dead"
    with pytest.raises(train.ResumeRefused, match="holds no checkpoint.pt"):
        train.run(**{**p, "resume": True})


@cuda_only
@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_cuda_a_stopped_run_resumes_exactly(tmp_path, precision):
    """On a GPU (fused capturable Adam, a CUDA graph captured again after the resume's warm-up steps) a run stopped
    at a metric epoch and resumed gives the losses of an uninterrupted run bit for bit (scripts/gpu_figures.sh)."""
    kw = dict(dataset="synthetic", counts=[200, 200, 200], dim=3072, width=2048, depth=6, epochs=4, batch_size=128,
              lr=1e-4, lr_milestones=[3], metric_every=2, progress=False, device="cuda", precision=precision)
    whole = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "whole", **kw)
    parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, **kw)
    while _status(parts[0]) == "stopped":
        parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True, **kw)
    for a, b in zip(whole, parts):
        ha, hb = train.load_history(a), train.load_history(b)
        for k in ("loss", "objective", "nc1", "train_acc"):
            np.testing.assert_array_equal(ha[k], hb[k], err_msg=f"{b.name}: {k}")


@cuda_only
def test_cuda_a_run_resumes_with_and_without_graphs_exactly(tmp_path):
    """cuda_graph is an execution key: a run stopped at each metric epoch and resumed with graphs and without, in
    turn, gives the numbers of an uninterrupted graph run bit for bit (the same kernels in the same order)."""
    kw = dict(dataset="synthetic", counts=[200, 200, 200], dim=3072, width=2048, depth=6, epochs=6, batch_size=128,
              lr=1e-4, lr_milestones=[3], metric_every=2, progress=False, device="cuda")
    whole = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "whole", **kw)
    parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, cuda_graph=False, **kw)
    graph = True
    while _status(parts[0]) == "stopped":
        parts = train.run_many(RESUME_MEMBERS, out_dir=tmp_path / "parts", max_train_s=0, resume=True,
                               cuda_graph=graph, **kw)
        graph = not graph
    for a, b in zip(whole, parts):
        ha, hb = train.load_history(a), train.load_history(b)
        for k in ("loss", "objective", "nc1", "train_acc"):
            np.testing.assert_array_equal(ha[k], hb[k], err_msg=f"{b.name}: {k}")
        segments = json.loads((b / "provenance.json").read_text())["segments"]
        assert [s["cuda_graph"].startswith("on") for s in segments] == [False, True, False]


def test_class_accuracy_record_agrees_with_the_overall_accuracy(tmp_path):
    """class_accuracy.csv holds one row per metric epoch; the count-weighted mean of a row is that epoch's
    train_acc in history.csv (both from the same logits), and resuming continues it like the history."""
    path = train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path, **RESUME_KW)[0]
    h, per = train.load_history(path), train.load_class_accuracy(path)
    n = np.array(RESUME_KW["counts"])
    assert per["epoch"].tolist() == h["epoch"].tolist() and per["acc"].shape == (h["epoch"].size, n.size)
    np.testing.assert_allclose(per["acc"] @ n / n.sum(), h["train_acc"], rtol=0, atol=1e-12)
    parts = train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path / "parts", max_train_s=0, **RESUME_KW)
    while _status(parts[0]) == "stopped":
        parts = train.run_many(RESUME_MEMBERS[:1], out_dir=tmp_path / "parts", max_train_s=0, resume=True, **RESUME_KW)
    np.testing.assert_array_equal(train.load_class_accuracy(parts[0])["acc"], per["acc"])
    assert train.load_class_accuracy(tmp_path / "none") is None


def test_a_resume_takes_cuda_and_the_current_cuda_index_for_one_card(monkeypatch):
    """A run started on device "auto" or "cuda" records "cuda"; resumed with device "cuda:0" on the same card it is
    the same device (the card's name is compared too), while another index is another card."""
    assert train.device_key("cpu") == "cpu" and train.device_key(None) is None
    monkeypatch.setattr(train.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(train.torch.cuda, "current_device", lambda: 0)
    assert train.device_key("cuda") == train.device_key("cuda:0") == "cuda:0"
    assert train.device_key("cuda:1") == "cuda:1" != train.device_key("cuda")
    monkeypatch.setattr(train.torch.cuda, "is_available", lambda: False)
    assert train.device_key("cuda") == "cuda" != train.device_key("cuda:0")


def test_a_checkpoint_holds_twelve_bytes_per_parameter(tmp_path):
    """A checkpoint holds each parameter's float32 weight and Adam's two float32 moments, 12 bytes per parameter,
    and little else (the sizes a GPU plan counts on: Figures 1-4 summary)."""
    train.run(dataset="synthetic", counts=[20, 10], dim=64, L=3, width=256, depth=2, epochs=4, metric_every=1,
              batch_size="full", max_train_s=0, out_dir=tmp_path, run_name="r", progress=False)
    prov = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert prov["status"] == "stopped" and prov["parameter_count"] > 200_000
    per_parameter = (tmp_path / "r" / runs.CHECKPOINT).stat().st_size / prov["parameter_count"]
    assert 12 <= per_parameter < 12.2



def test_an_objective_at_the_divergence_limit_is_not_past_it(tmp_path):
    """A run diverges when its objective grows past divergence_factor x its initial value (or a value is NaN/inf):
    at the limit itself it goes on, one float above it has diverged."""
    from types import SimpleNamespace

    from nclib import runfolder

    folder = runfolder.RunFolder.__new__(runfolder.RunFolder)  # the divergence check alone, no engine built
    folder.p = {"divergence_factor": 4.0, "precision": "fp32", "run_name": "r"}
    folder.engine, folder.run_dir = SimpleNamespace(current_lr=0.1), tmp_path
    folder.initial_objective = 0.5
    folder.limit = folder.p["divergence_factor"] * folder.initial_objective
    assert folder.divergence({"epoch": 10, "loss": 1.0, "objective": 2.0}) is None
    assert folder.divergence({"epoch": 10, "loss": 1.0, "objective": float(np.nextafter(2.0, 3.0))}) is not None
    assert folder.divergence({"epoch": 10, "loss": float("nan"), "objective": 1.0}) is not None
