"""Periodic checkpoints (``checkpoint_every``): a run writes a checkpoint every that many epochs while it trains, so
that a run killed outright (SIGKILL, an out-of-memory kill, a lost node) or failed continues from its last one with
``resume=True``, on the numbers of an uninterrupted run.  Tiny synthetic CPU runs; a kill runs in a subprocess."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import nclib
from nclib import checkpoints, grid, locks, parameters, runfolder, runs, sweep, train
from test_train import _sigterm_recorded

# mini-batches of 4 of 21 samples (the batch generator's state must survive a checkpoint), an lr step after epoch 6,
# rows every 2 epochs; with checkpoint_every 4 the checkpoints fall at epochs 4 and 8 (12 is the last: none there)
KW = dict(dataset="synthetic", counts=[12, 6, 3], dim=8, width=16, depth=2, epochs=12, batch_size=4, lr=1e-3,
          lr_milestones=[6], lam_W=1e-3, lam_H=1e-3, metric_every=2, progress=False, device="cpu")
MEMBERS = [dict(L=1, run_name="L1"), dict(L=3, run_name="L3"), dict(L=6, bias=False, run_name="L6")]
EVERY, KILLED_AT, LAST_CHECKPOINT = 4, 11, 8  # killed as epoch 11 begins: rows 0 to 10 written, checkpoint at 8
RUN_FILES = (runs.CHECKPOINT, runs.CHECKSUM, runs.CHECKPOINT + ".tmp")

# A second process: train.run_many(members argv[1], **shared argv[2]), which kills itself with SIGKILL as the epoch
# argv[3] begins (nclib.train.lr_at is called once per epoch, with the epoch, before it is trained).
CHILD = """
import json, os, signal, sys
from nclib import train
real, kill_at = train.lr_at, int(sys.argv[3])
def lr_at(epoch, *args, **kwargs):
    if epoch == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(epoch, *args, **kwargs)
train.lr_at = lr_at
train.run_many(json.loads(sys.argv[1]), **json.loads(sys.argv[2]))
"""


def _killed(members, shared, kill_at):
    """Run CHILD to its SIGKILL; the runs resume only with this process's torch threads, which the child gets."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(nclib.ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(members), json.dumps(shared, default=str),
                           str(kill_at)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]


def _assert_same_history(path, reference):
    got, want = train.load_history(path), train.load_history(reference)
    assert got["epoch"].tolist() == want["epoch"].tolist() == [0, 2, 4, 6, 8, 10, 12]
    for col in runs.REPRODUCIBLE_COLUMNS:
        np.testing.assert_array_equal(got[col], want[col], err_msg=f"{path.name}: {col}")


def _segments(path):
    return json.loads((path / "provenance.json").read_text())["segments"]


@pytest.mark.parametrize("lever", [{}, {"grouped_adam": True}, {"deferred_metrics": True}])
def test_periodic_checkpoints_change_no_number_and_are_written_in_two_phases(tmp_path, monkeypatch, lever):
    """Runs with checkpoint_every give the histories of runs without, number for number (the write draws no random
    number and changes no state; here with mini-batches, an lr step and each lever that changes where the work is
    done); every run's checkpoint of an epoch is written before any is committed, at epochs 4 and 8, none at the
    last; the finished runs keep none, and each call's segment records checkpoint_every."""
    events = []
    save, commit = runfolder.RunFolder.save_checkpoint, runfolder.RunFolder.commit_checkpoint

    def saving(self, epoch):
        events.append(("save", self.p["run_name"], epoch))
        return save(self, epoch)

    def committing(self, epoch):
        events.append(("commit", self.p["run_name"], epoch))
        return commit(self, epoch)

    monkeypatch.setattr(runfolder.RunFolder, "save_checkpoint", saving)
    monkeypatch.setattr(runfolder.RunFolder, "commit_checkpoint", committing)
    plain = train.run_many(MEMBERS, out_dir=tmp_path / "plain", **KW, **lever)
    assert events == []  # without checkpoint_every no checkpoint is written
    periodic = train.run_many(MEMBERS, out_dir=tmp_path / "periodic", checkpoint_every=EVERY, **KW, **lever)
    names = [m["run_name"] for m in MEMBERS]
    assert events == [(what, name, epoch) for epoch in (4, 8) for what in ("save", "commit") for name in names]
    for a, b in zip(plain, periodic):
        _assert_same_history(b, a)
        prov = json.loads((b / "provenance.json").read_text())
        assert prov["status"] == "finished" and prov["steps"] == 12 * 5
        assert [s["checkpoint_every"] for s in prov["segments"]] == [EVERY]
        assert [s["checkpoint_every"] for s in _segments(a)] == [None]
        assert not any((b / name).exists() for name in RUN_FILES)


def test_a_run_killed_after_a_periodic_checkpoint_is_dead_and_resumes_on_the_uninterrupted_numbers(tmp_path):
    """SIGKILL as epoch 11 begins: the run reads "dead", its checkpoint is the one of epoch 8 (verified against its
    record), its history holds the row of epoch 10 written after it; resume=True (with another checkpoint_every, an
    execution key) drops that row, finishes the run on the history of a run never interrupted, number for number,
    and leaves no checkpoint."""
    whole = train.run(**KW, out_dir=tmp_path / "whole", run_name="r")
    _killed([dict(run_name="r")], dict(KW, out_dir=str(tmp_path / "killed"), checkpoint_every=EVERY), KILLED_AT)
    folder = tmp_path / "killed" / "r"
    assert runs.run_status(folder) == "dead" and checkpoints.has_checkpoint(folder)
    assert checkpoints.recorded_epoch(folder) == LAST_CHECKPOINT
    assert checkpoints.verify_checkpoint(folder)["epoch"] == LAST_CHECKPOINT
    assert train.load_history(folder)["epoch"].tolist() == [0, 2, 4, 6, 8, 10]
    assert train.plan([dict(run_name="r")], out_dir=tmp_path / "killed", **KW) == "resume"
    with pytest.warns(RuntimeWarning, match="taking over the lock of process .* which ended without releasing it"):
        resumed = train.run(**KW, out_dir=tmp_path / "killed", run_name="r", checkpoint_every=2, resume=True)
    _assert_same_history(resumed, whole)
    assert runs.run_status(resumed) == "finished" and not any((resumed / name).exists() for name in RUN_FILES)
    segments = _segments(resumed)
    assert [(s["status"], s["from_epoch"], s["checkpoint_every"]) for s in segments] == [
        ("dead", 0, EVERY), ("finished", LAST_CHECKPOINT, 2)]


def test_a_run_that_fails_after_a_periodic_checkpoint_resumes_from_it_with_its_clock_running(tmp_path, monkeypatch):
    """An error as epoch 11 begins: the run is "failed" with the checkpoint of epoch 8 and the rows to epoch 10. The
    periodic checkpoint did not end the training clock: the failed call's training time covers the row of epoch
    10, recorded after the checkpoint, whose own training time lies between the rows of epochs 8 and 10. resume=True
    continues from it on the uninterrupted numbers, the error left with the failed call's segment."""
    whole = train.run(**KW, out_dir=tmp_path / "whole", run_name="r")
    real = train.lr_at

    def failing(epoch, *args, **kwargs):
        if epoch == KILLED_AT:
            raise RuntimeError("a fault in epoch 11")
        return real(epoch, *args, **kwargs)

    monkeypatch.setattr(train, "lr_at", failing)
    with pytest.raises(RuntimeError, match="a fault in epoch 11"):
        train.run(**KW, out_dir=tmp_path / "failed", run_name="r", checkpoint_every=EVERY)
    monkeypatch.setattr(train, "lr_at", real)
    folder = tmp_path / "failed" / "r"
    prov, history = json.loads((folder / "provenance.json").read_text()), train.load_history(folder)
    assert runs.run_status(folder) == "failed" and checkpoints.recorded_epoch(folder) == LAST_CHECKPOINT
    assert history["epoch"].tolist() == [0, 2, 4, 6, 8, 10] and "a fault in epoch 11" in prov["error"]
    saved = torch.load(folder / runs.CHECKPOINT, weights_only=False)
    assert saved["epoch"] == LAST_CHECKPOINT and [r["epoch"] for r in saved["rows"]] == [0, 2, 4, 6, 8]
    wall = dict(zip(history["epoch"].tolist(), history["wall_time"].tolist()))
    assert wall[8] <= saved["time_s"]["train_time_s"] <= wall[10] <= prov["train_time_s"]
    resumed = train.run(**KW, out_dir=tmp_path / "failed", run_name="r", resume=True)
    _assert_same_history(resumed, whole)
    prov = json.loads((resumed / "provenance.json").read_text())
    assert prov["status"] == "finished" and "error" not in prov
    assert [(s["status"], s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == [
        ("failed", 0, 10), ("finished", LAST_CHECKPOINT, 12)]
    assert "a fault in epoch 11" in prov["segments"][0]["error"]


def test_the_runs_of_one_call_all_checkpoint_at_one_epoch_and_resume_together(tmp_path):
    """Three runs trained side by side and killed as epoch 11 begins: every one is dead with its checkpoint at epoch
    8, the plan resumes them together, and each finishes on the history of its uninterrupted run."""
    whole = train.run_many(MEMBERS, out_dir=tmp_path / "whole", **KW)
    _killed(MEMBERS, dict(KW, out_dir=str(tmp_path / "killed"), checkpoint_every=EVERY), KILLED_AT)
    folders = [tmp_path / "killed" / m["run_name"] for m in MEMBERS]
    assert [runs.run_status(f) for f in folders] == ["dead"] * 3
    assert [checkpoints.recorded_epoch(f) for f in folders] == [LAST_CHECKPOINT] * 3
    with pytest.warns(RuntimeWarning, match="taking over the lock of process"):  # one for each dead run's folder
        todo, resumed = train.run_planned(MEMBERS, out_dir=tmp_path / "killed", **KW)
    assert todo == "resume"
    for a, b in zip(whole, resumed):
        _assert_same_history(b, a)
        assert runs.run_status(b) == "finished"


def test_a_run_that_diverges_is_never_checkpointed(tmp_path, monkeypatch):
    """With deferred_metrics a row is checked for divergence one metric epoch later, but a periodic checkpoint checks
    every row first: the runs that diverge at epoch 2 (L = 3 and 6 at this rate) are written "diverged" there and
    never saved, the healthy one is saved at epochs 2 and 4 and finishes; no folder keeps a checkpoint."""
    saved = []
    save = runfolder.RunFolder.save_checkpoint

    def saving(self, epoch):
        saved.append((self.p["run_name"], epoch))
        return save(self, epoch)

    monkeypatch.setattr(runfolder.RunFolder, "save_checkpoint", saving)
    kw = dict(KW, epochs=6, lr_milestones=[], divergence_factor=2.0, lr=0.2, checkpoint_every=2)
    with pytest.raises(train.TrainingDiverged) as err:
        train.run_many(MEMBERS, out_dir=tmp_path, deferred_metrics=True, **kw)
    assert str(err.value).count("diverged at epoch 2") == 2
    assert saved == [("L1", 2), ("L1", 4)]
    folders = [tmp_path / m["run_name"] for m in MEMBERS]
    assert [runs.run_status(f) for f in folders] == ["finished", "diverged", "diverged"]
    assert [train.load_history(f)["epoch"].tolist() for f in folders] == [[0, 2, 4, 6], [0, 2], [0, 2]]
    assert not any((f / name).exists() for f in folders for name in RUN_FILES)


@pytest.mark.parametrize("value, message", [
    (3, r"checkpoint_every must be a multiple of metric_every .*got checkpoint_every = 3 and metric_every = 2"),
    (5, r"checkpoint_every must be a multiple of metric_every .*got checkpoint_every = 5 and metric_every = 2"),
    (0, r"^checkpoint_every .*must be a positive integer, got 0"),
    (-4, r"^checkpoint_every .*must be a positive integer, got -4"),
    (4.0, r"^checkpoint_every .*must be a positive integer, got 4\.0"),
    (2.5, r"^checkpoint_every .*must be a positive integer, got 2\.5"),
    ("4", r"^checkpoint_every .*must be a positive integer, got '4'"),
    (True, r"^checkpoint_every .*must be a positive integer, got True")])
def test_checkpoint_every_is_refused_by_name_before_anything_is_written(tmp_path, value, message):
    with pytest.raises(ValueError, match=message):
        parameters.check_params(**KW, checkpoint_every=value)
    with pytest.raises(ValueError, match=message):
        train.run(**KW, checkpoint_every=value, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_checkpoint_every_takes_none_or_a_multiple_of_metric_every_and_is_an_execution_key():
    """None (the default: checkpoints only where a run stops) or any positive multiple of metric_every; it says how
    a call trains, not what the run is, so it defines no run (a resume may change it, and a params.json written
    before it existed, without it, holds the same run)."""
    assert parameters.DEFAULTS["checkpoint_every"] is None and "checkpoint_every" in parameters.EXECUTION_KEYS
    for value, metric_every in ((None, 2), (2, 2), (4, 2), (300, 100), (np.int64(6), 3)):
        q = parameters.check_params(**{**KW, "metric_every": metric_every}, checkpoint_every=value)
        assert q["checkpoint_every"] == value and type(q["checkpoint_every"]) is (type(None) if value is None else int)
        assert "checkpoint_every" not in train.defining_params(q)
    with pytest.raises(ValueError, match="metric_every must be a positive integer"):
        parameters.check_checkpoint_every(4, 0)


def test_checkpoint_every_reaches_a_sweep_s_runs_and_may_change_between_its_calls(tmp_path):
    """A sweep's fixed parameters (--set) may set checkpoint_every and a later call may set another (a run stopped
    under one value resumes under the other, to the numbers of an uninterrupted run); the grid may not sweep it,
    and the sweep's table has no column of it (it says how a call ran, not what the run is)."""
    fixed, out_dir = {k: v for k, v in KW.items() if k not in ("progress", "seed")}, tmp_path / "sweep"
    stopped = sweep.run_point({"seed": [0]}, {**fixed, "checkpoint_every": EVERY, "max_train_s": 0}, out_dir, 0)
    folder = out_dir / stopped["run_name"][0]
    assert stopped["status"].tolist() == ["stopped"] and _segments(folder)[0]["checkpoint_every"] == EVERY
    finished = sweep.run_point({"seed": [0]}, {**fixed, "checkpoint_every": 2 * EVERY}, out_dir, 0)
    assert finished["status"].tolist() == ["finished"] and finished["error"].isna().all()
    assert [s["checkpoint_every"] for s in _segments(folder)] == [EVERY, 2 * EVERY]
    _assert_same_history(folder, train.run(**KW, out_dir=tmp_path / "whole", run_name="r"))
    assert "checkpoint_every" not in sweep.summary(out_dir).columns
    with pytest.raises(ValueError, match=r"grid \(--grid\): \['checkpoint_every'\] say how a call trains"):
        grid.check_names({"checkpoint_every": [2, 4]}, {})


def test_the_writing_of_periodic_checkpoints_is_no_training_time(tmp_path, monkeypatch):
    """What was wrong: the seconds a call spent saving and committing periodic checkpoints counted as training: the
    provenance's train_time_s (and so steps_per_s), the history's wall_time and a later checkpoint's time_s held them,
    where the history's columns say they leave the writing of checkpoints out.  Here time.perf_counter is a clock of
    the test's own, a microsecond a reading, and every commit takes JUMP seconds of it: three runs fail as epoch 11
    begins, after their checkpoints of epochs 4 and 8 (six commits), and are resumed with a checkpoint every 2 epochs
    (three more, at epoch 10).  No run's training time, history row or checkpoint holds a jump; the wall times hold
    them all, and the history's wall_time never goes back, the resumed rows counting on from the checkpoint."""
    jump, clock = 1000.0, [0.0]

    def perf_counter():
        clock[0] += 1e-6
        return clock[0]

    commit, lr_at = runfolder.RunFolder.commit_checkpoint, train.lr_at

    def slow_commit(self, epoch):
        clock[0] += jump
        return commit(self, epoch)

    def failing(epoch, *args, **kwargs):
        if epoch == KILLED_AT:
            raise RuntimeError("a fault in epoch 11")
        return lr_at(epoch, *args, **kwargs)

    monkeypatch.setattr(time, "perf_counter", perf_counter)
    monkeypatch.setattr(runfolder.RunFolder, "commit_checkpoint", slow_commit)
    monkeypatch.setattr(train, "lr_at", failing)
    with pytest.raises(RuntimeError, match="a fault in epoch 11"):
        train.run_many(MEMBERS, out_dir=tmp_path, checkpoint_every=EVERY, **KW)
    monkeypatch.setattr(train, "lr_at", lr_at)
    folders = [tmp_path / m["run_name"] for m in MEMBERS]
    for folder in folders:
        prov = json.loads((folder / "provenance.json").read_text())
        saved = torch.load(folder / runs.CHECKPOINT, weights_only=False)["time_s"]
        assert saved["train_time_s"] < jump and saved["wall_time_s"] >= 3 * jump  # epoch 4's three commits
        assert prov["train_time_s"] < jump and prov["wall_time_s"] >= 6 * jump
        assert train.load_history(folder)["wall_time"].max() < jump
    train.run_many(MEMBERS, out_dir=tmp_path, checkpoint_every=2, resume=True, **KW)
    for folder in folders:
        prov, wall = json.loads((folder / "provenance.json").read_text()), train.load_history(folder)["wall_time"]
        assert prov["status"] == "finished" and [s["to_epoch"] for s in prov["segments"]] == [10, 12]
        assert prov["train_time_s"] < jump and prov["wall_time_s"] >= 9 * jump
        assert prov["steps_per_s"] == prov["steps"] / prov["train_time_s"]
        assert wall.max() < jump and (np.diff(wall) >= 0).all()



@pytest.mark.parametrize("method, run, signals", [("commit_checkpoint", "L1", 2), ("save_checkpoint", "L3", 2),
                                                 ("commit_checkpoint", "L6", 1)])
def test_sigterms_while_a_periodic_checkpoint_is_written_stop_every_run_at_its_epoch(tmp_path, monkeypatch, method,
                                                                                     run, signals):
    """What was wrong: a second SIGTERM (scancel twice) while the runs' periodic checkpoints of epoch 8 were being
    saved and committed raised Terminated between two commits: the runs failed with checkpoints at epochs 8 and 4,
    which no later call resumes together.  Now every SIGTERM is only noted while they are written (real signals,
    as the command line holds them: one or two, sent as one run saves or commits its checkpoint), and once every
    checkpoint of epoch 8 is committed the runs stop there, "stopped", each holding it: the call raises Terminated
    naming them, and the plan resumes them together to the numbers of an uninterrupted run."""
    real = getattr(runfolder.RunFolder, method)

    def signalling(self, epoch):
        real(self, epoch)
        if epoch == LAST_CHECKPOINT and self.p["run_name"] == run:
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(runfolder.RunFolder, method, signalling)
    with _sigterm_recorded() as reached, locks.sigterm_raises(), pytest.raises(locks.Terminated) as ended:
        train.run_many(MEMBERS, out_dir=tmp_path / "parts", checkpoint_every=EVERY, **KW)
    monkeypatch.undo()
    folders = [tmp_path / "parts" / m["run_name"] for m in MEMBERS]
    assert reached == [] and ended.value.stopped_runs == folders and ended.value.failed_runs == []
    assert [runs.run_status(f) for f in folders] == ["stopped"] * 3
    assert [checkpoints.recorded_epoch(f) for f in folders] == [LAST_CHECKPOINT] * 3
    assert [train.load_history(f)["epoch"].tolist() for f in folders] == [[0, 2, 4, 6, 8]] * 3
    todo, resumed = train.run_planned(MEMBERS, out_dir=tmp_path / "parts", **KW)
    assert todo == "resume"
    for a, b in zip(train.run_many(MEMBERS, out_dir=tmp_path / "whole", **KW), resumed):
        _assert_same_history(b, a)


def test_after_a_periodic_checkpoint_a_second_sigterm_raises_at_once_again(tmp_path, monkeypatch):
    """The periodic checkpoint holds SIGTERM as only noted for its writes alone: two SIGTERMs as epoch 5 begins,
    after the checkpoints of epoch 4, follow the rule of the epoch loop again (the second, while the first's stop is
    pending, raises Terminated at once): the runs are written failed, each with its checkpoint of epoch 4."""
    real = train.lr_at

    def signalling(epoch, *args, **kwargs):
        if epoch == EVERY + 1:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(epoch, *args, **kwargs)

    monkeypatch.setattr(train, "lr_at", signalling)
    with _sigterm_recorded() as reached, locks.sigterm_raises(), pytest.raises(locks.Terminated) as ended:
        train.run_many(MEMBERS, out_dir=tmp_path, checkpoint_every=EVERY, **KW)
    folders = [tmp_path / m["run_name"] for m in MEMBERS]
    assert reached == [] and ended.value.failed_runs == folders and ended.value.stopped_runs == []
    assert [checkpoints.recorded_epoch(f) for f in folders] == [EVERY] * 3
