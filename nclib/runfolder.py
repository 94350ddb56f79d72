"""One run's folder while it trains (:ref:`ch-train`): params.json and provenance.json at the start, history.csv and
class_accuracy.csv rewritten atomically after every metric epoch, the checkpoint when a run stops (and every
``checkpoint_every`` epochs while it trains), the final provenance; and :class:`TrainingDiverged`, which a run that
blows up ends with.  :mod:`nclib.runs` is the folder's contract (names, files, statuses), :mod:`nclib.runplan`
a call's plan over its folders, :mod:`nclib.locks` its one writer (the lock) and :mod:`nclib.checkpoints` the commit
and check of its checkpoint (the checksum beside it); :mod:`nclib.train` makes the engines and drives them.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import math
import os
import pathlib
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from . import checkpoints, letters, metrics, models
from . import runs as _runs
from .engine import Engine
from .locks import run_folder_path, run_folder_paths
from .parameters import LEVER_KEYS
from .step import products_precision
from .runs import (ADDED_COLUMNS, CHECKPOINT, CHECKSUM, CLASS_ACCURACY, HISTORY_COLUMNS, atomic_write_text,
                   setting_text, to_json)


class TrainingDiverged(RuntimeError):
    """Raised when the loss or objective (4.3) becomes NaN/inf or grows past ``divergence_factor`` x its start
    (checked at metric epochs, :ref:`ch-engine`).  ``run_dirs``: the run folders of the call, the diverged ones
    and those trained with them (which went on to their end or their stop)."""

    def __init__(self, message: str, run_dirs=()):
        super().__init__(message)
        self.run_dirs = [pathlib.Path(d) for d in run_dirs]


def _history_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        # a row recorded before a column of ADDED_COLUMNS existed (a checkpoint of an older run) has NaN there
        r = {**{k: float("nan") for k in ADDED_COLUMNS}, **r}
        w.writerow({k: (repr(float(r[k])) if k != "epoch" else int(r[k])) for k in HISTORY_COLUMNS})
    return buf.getvalue()


def _class_accuracy_csv(rows: list[dict], K: int) -> str:
    """``class_accuracy.csv``: per metric epoch the training accuracy of each class (columns epoch, class_0 ..
    class_{K-1}); rows without it (written before it was recorded) are left out."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["epoch", *(f"class_{k}" for k in range(K))])
    for r in rows:
        if "class_acc" in r:
            w.writerow([int(r["epoch"]), *(repr(float(v)) for v in r["class_acc"])])
    return buf.getvalue()


def trained_with(run_dir, together) -> list[str]:
    """The runs trained beside the run in ``run_dir`` (``together``: the run folders of its call, its own among them),
    as its provenance's ``trained_with`` names them: each other folder by its run name where it lies in the same
    ``out_dir`` (the form of every run made so far), else by its path relative to that ``out_dir``
    (``../other/r``), so that runs of one name in two out_dirs, trained together, name each other.  Its own folder is
    told by its path (resolved), not by its name (:ref:`ch-train`).  ValueError naming ``run_dir`` or ``together``
    where it is no run folder, or no list of them (:func:`nclib.locks.run_folder_paths`)."""
    here = run_folder_path(run_dir).resolve()
    others = (d.resolve() for d in run_folder_paths(together, "together"))
    return [os.path.relpath(other, here.parent) for other in others if other != here]


@dataclasses.dataclass
class PendingRow:
    """A history row recorded but not yet written: ``row`` (its values so far), ``host_metrics`` (the worker thread's
    future of the host metrics, None when they are in ``row`` already) and ``device_half`` (with
    ``deferred_metrics``, the future of the loss and objective, None once they are in ``row``)."""
    row: dict
    host_metrics: Future | None = None
    device_half: Future | None = None


class RunFolder:
    """One run's folder while it trains: params.json and provenance.json at the start, history.csv rewritten atomically
    after every metric epoch (rows in epoch order, metrics of a GPU run computed in a worker thread), the final
    provenance at the end; a checkpoint when ``max_train_s`` stops the run, and every ``checkpoint_every`` epochs
    while it trains (its status stays "running").  A resumed run (``checkpoint`` given) keeps its params.json and
    provenance.json and adds a segment to the provenance's ``segments`` (one per call: when, from which epoch to
    which, on what, with which levers and whether the host metrics ran in a worker thread, how long, the error it
    ended with; a call whose process was killed is marked "dead" when a later call resumes the run; each records its
    ``max_train_s`` and ``checkpoint_every``).  So the execution keys of params.json
    (:data:`nclib.parameters.EXECUTION_KEYS`: ``checkpoint_every``, ``max_train_s``, the levers...) are those of the
    call that started the run, though a resume may give others: how each call trained is its segment's.  The
    provenance's ``error`` is the last call's only: a run resumed after a failed call and finished has none."""

    def __init__(self, engine: Engine, run_dir: pathlib.Path, started: str, t_start: float, together: list,
                 decays: str, code: dict, checkpoint: dict | None = None):
        self.engine, self.p, self.run_dir, self.t_start = engine, engine.p, run_dir, t_start
        p, ts = engine.p, engine.ts
        run_dir.mkdir(parents=True, exist_ok=True)
        _runs.remove_write_temporaries(run_dir)  # left by a writer killed while it wrote a file: none is the run's
        dev_name = engine.device_name
        use_async = engine.is_cuda if p["async_metrics"] == "auto" else p["async_metrics"]
        # the products' precision: "bf16" under autocast, else what torch reads back, "ieee" (strict fp32) or "tf32"
        matmul = "bf16" if p["precision"] == "bf16" else products_precision(engine.device, engine.allow_tf32)
        segment = {"started_utc": started, "from_epoch": 0 if checkpoint is None else int(checkpoint["epoch"]),
                   "git_commit": code["git_commit"], "git_dirty": code["git_dirty"],
                   "git_diff_sha256": code["git_diff_sha256"], "device_name": dev_name,
                   "host_cpu": code["host_cpu"], "torch_threads": code["torch_threads"],
                   "torch": code["versions"]["torch"], "max_train_s": p["max_train_s"],
                   "checkpoint_every": p["checkpoint_every"],
                   "levers": {k: p[k] for k in LEVER_KEYS}, "async_metrics": use_async,
                   "products_precision": matmul,
                   "command_line": list(sys.argv)}
        if checkpoint is None:
            atomic_write_text(run_dir / "params.json", to_json(p))
            self.prov = {"status": "running", "started_utc": started, **code,
                         "device": str(engine.device), "device_name": dev_name, "precision": p["precision"],
                         "tf32_matmul": engine.allow_tf32 and engine.is_cuda, "products_precision": matmul,
                         "fused_adam": engine.fused,
                         "cuda_graph": engine.graph_note, "command_line": list(sys.argv),
                         "parameter_count": models.parameter_count(engine.model), "N": ts.N, "K": ts.K,
                         "batch_size": engine.B, "steps_per_epoch": engine.steps_per_epoch,
                         "dropped_per_epoch": engine.dropped_per_epoch, "data": ts.provenance,
                         "data_sha256": ts.provenance["data_sha256"],
                         "async_metrics": use_async,  # the first call's; each segment records its own
                         "trained_with": trained_with(run_dir, together), "decays": decays,
                         "nc3_compares": metrics.nc3_compares(p["bias"]), "segments": [segment]}
            if p["dataset"] == "letters-synthetic":
                self.prov["stand_in"] = letters.LETTERS_SYNTHETIC_LABEL
            self.rows: list[dict] = []
            self.initial_objective = self.limit = math.inf
            self.before = {"wall_time_s": 0.0, "train_time_s": 0.0}
        else:
            self.prov = json.loads((run_dir / "provenance.json").read_text())
            if self.prov.get("status") == "running":  # its writer died (SIGKILL, a crash): say so, then go on
                self.prov.setdefault("segments", [{}])[-1]["status"] = "dead"
                self.prov["dead_segments"] = self.prov.get("dead_segments", 0) + 1
            (run_dir / (CHECKPOINT + ".tmp")).unlink(missing_ok=True)  # a checkpoint whose writing was cut off
            earlier = self.prov.pop("error", None)  # the error of an earlier call is its segment's, not the run's
            if earlier is not None and self.prov.get("segments"):
                self.prov["segments"][-1].setdefault("error", earlier)
            self.prov["status"] = "running"
            self.prov.setdefault("segments", []).append(segment)
            # the history as the checkpoint has it: rows a dead call recorded after its last checkpoint go now, not
            # at this call's first metric epoch (which a call that fails earlier never reaches)
            self._write_history([dict(r) for r in checkpoint["rows"]])
            self.initial_objective, self.limit = float(checkpoint["initial_objective"]), float(checkpoint["limit"])
            # the seconds of the calls before: the provenance's sums, or the checkpoint's where more (a call killed
            # after its checkpoint never wrote its own into the provenance; checkpoints before the record have none)
            saved = checkpoint.get("time_s") or {}
            self.before = {k: max(float(self.prov.get(k) or 0.0), float(saved.get(k) or 0.0))
                           for k in ("wall_time_s", "train_time_s")}
        atomic_write_text(run_dir / "provenance.json", to_json(self.prov))
        self.pending: list[PendingRow] = []  # the rows recorded, in epoch order, until written to history.csv
        self.unchecked: list[PendingRow] = []  # the same rows until checked for divergence (rows_to_check)
        self.pool = ThreadPoolExecutor(max_workers=1) if use_async else None
        self.t_train = time.perf_counter()
        self.t_stopped: float | None = None  # when a run that stops for time stopped training (stop_clock)
        self.steps_at_start = engine.steps_done

    def flush(self, wait: bool = False) -> None:
        """Move finished rows to the history (in epoch order) and rewrite history.csv atomically; the rows moved
        before one whose metrics raise are written too, then the error goes on.  A row joins ``rows`` only once
        history.csv holds it (:meth:`_write_history`), so that a write that fails (a full disk) leaves ``rows``,
        and the ``to_epoch`` the provenance takes from them, as the file is."""
        moved = []
        try:
            while self.pending and (wait or self.pending[0].host_metrics is None
                                    or self.pending[0].host_metrics.done()):
                entry = self.pending.pop(0)
                if entry.device_half is not None:  # a deferred row not checked yet (a run that stops): loss, objective
                    entry.row.update(entry.device_half.result()[0])
                if entry.host_metrics is not None:
                    entry.row.update(entry.host_metrics.result())
                moved.append(entry.row)
        finally:
            if moved:
                self._write_history([*self.rows, *moved])

    def _write_history(self, rows: list[dict]) -> None:
        """Write ``rows`` to history.csv and class_accuracy.csv; they are the run's ``rows`` once history.csv holds
        them."""
        atomic_write_text(self.run_dir / "history.csv", _history_csv(rows))
        self.rows = rows
        atomic_write_text(self.run_dir / CLASS_ACCURACY, _class_accuracy_csv(rows, self.engine.K))

    def record(self, epoch: int) -> None:
        """Record the history row of ``epoch``: the device half now and the host metrics now or in the worker
        thread; with ``deferred_metrics`` the device half queued (:meth:`Engine.queue_evaluation`) and read in
        the worker thread, then the host metrics there, or both now without a worker thread (``async_metrics``
        False, the CPU's default: then the lever only delays the divergence check).  :meth:`rows_to_check` gives
        the rows whose loss and objective are known for the divergence check."""
        eng = self.engine
        row = {"epoch": epoch, "lr": eng.current_lr}
        if self.p["deferred_metrics"]:
            finish = eng.queue_evaluation()
            row["wall_time"] = self.before["train_time_s"] + time.perf_counter() - self.t_train
            if self.pool is not None:  # two tasks in the one worker, in order: the device half, then the metrics
                device_half = self.pool.submit(finish)
                entry = PendingRow(row, self.pool.submit(lambda: eng.host_metrics(device_half.result()[1])),
                                   device_half)
            else:  # no worker thread (the CPU's default): the row is completed at once
                part, payload = finish()
                row.update(part, **eng.host_metrics(payload))
                entry = PendingRow(row)
        else:
            loss = eng.take_loss()
            part, payload = eng.evaluate_device()
            row.update(loss=loss, **part, wall_time=self.before["train_time_s"] + time.perf_counter() - self.t_train)
            if self.pool is not None and payload is not None:
                entry = PendingRow(row, self.pool.submit(eng.host_metrics, payload))
            else:
                row.update(eng.host_metrics(payload))
                entry = PendingRow(row)
        self.pending.append(entry)
        self.unchecked.append(entry)
        self.flush()

    def rows_to_check(self, wait: bool) -> list[dict]:
        """The rows to check for divergence, in epoch order, their loss and objective known: without
        ``deferred_metrics`` those recorded since the last call; with it all of those but the newest (whose
        device work is still queued behind training), and the newest too when ``wait`` (the run's last metric
        epoch, or it stops for time).  An epoch-0 row is not returned: it sets the divergence limit."""
        deferred = self.p["deferred_metrics"]
        n = len(self.unchecked) if (wait or not deferred) else len(self.unchecked) - 1
        out = []
        for entry in self.unchecked[:max(n, 0)]:
            row = entry.row
            if entry.device_half is not None:  # the loss and objective only: the host metrics may still be computed
                row.update(entry.device_half.result()[0])
                entry.device_half = None
            if row["epoch"] == 0:  # the initialization: it sets the limit and is not itself checked
                self.initial_objective = row["objective"]
                self.limit = self.p["divergence_factor"] * max(row["objective"], 1e-12)
            else:
                out.append(row)
        del self.unchecked[:max(n, 0)]
        self.flush()
        return out

    def drop_rows_after(self, epoch: int) -> None:
        """Forget the rows recorded after ``epoch`` (a deferred run that diverged at ``epoch`` trained on)."""
        self.pending = [e for e in self.pending if e.row["epoch"] <= epoch]
        self.unchecked = [e for e in self.unchecked if e.row["epoch"] <= epoch]
        if any(r["epoch"] > epoch for r in self.rows):
            self._write_history([r for r in self.rows if r["epoch"] <= epoch])

    def divergence(self, row: dict) -> str | None:
        """Why the run diverged at this row (NaN/inf loss or objective, or the objective past
        ``divergence_factor`` x its initial value), or None; the advice names strict fp32 only for a run that is
        not in it."""
        bad = [k for k in ("loss", "objective") if not math.isfinite(row[k])]
        if not bad and row["objective"] <= self.limit:
            return None
        p = self.p
        why = (f"{' and '.join(bad)} became NaN/inf" if bad else
               f"the objective {row['objective']:.3e} exceeds {p['divergence_factor']:g} x its "
               f"initial value {self.initial_objective:.3e}")
        fp32 = "" if p["precision"] == "fp32" else f" or train in strict fp32, {setting_text('precision', 'fp32')}"
        return (f"run {p['run_name']!r} diverged at epoch {row['epoch']}: {why}; lower lr (now "
                f"{self.engine.current_lr:g}){fp32}. The history up to this epoch is in "
                f"{self.run_dir / 'history.csv'}")

    def stop_clock(self) -> None:
        """Stop the run's training time (``train_time_s``, the history's ``wall_time`` and the ``time_s`` of its
        checkpoint) once its recorded rows are written: the checkpoint and the provenance written after it are not
        training.  Only the first call counts.  A stop calls it for good; a periodic checkpoint (``checkpoint_every``)
        calls it before its writes and :meth:`restart_clock` after them, the run training on."""
        self.flush(wait=True)
        if self.t_stopped is None:
            self.t_stopped = time.perf_counter()

    def restart_clock(self) -> None:
        """Start the run's training time again after :meth:`stop_clock` (a periodic checkpoint written, the run
        training on), the seconds it stood left out: its origin ``t_train`` moves on by them, so that the history's
        ``wall_time`` goes on from its last row and ``train_time_s`` (and so ``steps_per_s``) counts training only.
        Nothing happens where the clock runs."""
        if self.t_stopped is not None:
            self.t_train += time.perf_counter() - self.t_stopped
            self.t_stopped = None

    def save_checkpoint(self, epoch: int) -> None:
        """Write the state of metric epoch ``epoch`` to ``checkpoint.pt.tmp`` and flush it to disk: the engine's
        state, the history so far (every row recorded, written first) and the divergence limit, all a later call
        with ``resume=True`` needs to continue exactly, and the run's seconds so far (``time_s``: its
        ``wall_time_s`` and ``train_time_s``, the latter up to :meth:`stop_clock`, which a stop and a periodic
        checkpoint call before their writes, or up to now), from which a call resuming after this one was killed,
        before its provenance recorded them, goes on counting (the history's ``wall_time`` never goes back).
        Nothing of the run changes: its state is copied, no random number is drawn.  It is not yet the run's
        checkpoint: :meth:`commit_checkpoint` makes it so, once every run of the call has written its own, so that a
        write that fails (a full disk) leaves all of them at their previous checkpoint, which they continue from
        together."""
        self.flush(wait=True)
        now = time.perf_counter()
        trained_until = now if self.t_stopped is None else self.t_stopped
        state = {"format": 1, "epoch": int(epoch), "engine": self.engine.state_dict(), "rows": self.rows,
                 "initial_objective": self.initial_objective, "limit": self.limit,
                 "time_s": {"wall_time_s": self.before["wall_time_s"] + now - self.t_start,
                            "train_time_s": self.before["train_time_s"] + trained_until - self.t_train}}
        with open(self.run_dir / (CHECKPOINT + ".tmp"), "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())

    def commit_checkpoint(self, epoch: int) -> None:
        """Make the checkpoint :meth:`save_checkpoint` wrote at ``epoch`` the run's :data:`CHECKPOINT`: its sha256
        recorded beside it, then renamed (:func:`nclib.checkpoints.commit_checkpoint`)."""
        checkpoints.commit_checkpoint(self.run_dir, epoch)

    def finish(self, status: str, error: str | None = None) -> None:
        """Flush the last rows and write the final provenance, also when that flush itself fails (a
        metric computed in the worker thread raised): then the status is "failed" and the error says so.
        A finished or diverged run's checkpoint is removed (a diverged run is never resumed, a finished one needs
        none); "stopped" (by ``max_train_s`` or a job's SIGTERM) and "failed" keep their latest one, a periodic one
        (``checkpoint_every``) too."""
        eng, prov = self.engine, self.prov
        try:
            try:
                self.flush(wait=True)
            finally:
                if self.pool is not None:
                    self.pool.shutdown(wait=True)
        except BaseException as exc:
            status = "failed"
            error = "; ".join(filter(None, [error, f"recording the last metric rows: {type(exc).__name__}: {exc}"]))
            raise
        finally:
            now = time.perf_counter()  # the training time of a run that stopped for time ends before its checkpoint
            wall, train = now - self.t_start, (now if self.t_stopped is None else self.t_stopped) - self.t_train
            prov["segments"][-1].update(
                status=status, to_epoch=int(self.rows[-1]["epoch"]) if self.rows else None,
                finished_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                steps=eng.steps_done - self.steps_at_start, wall_time_s=wall, train_time_s=train,
                cuda_graph=eng.graph_note)
            prov.update(status=status, cuda_graph=eng.graph_note, steps=eng.steps_done,
                        finished_utc=prov["segments"][-1]["finished_utc"],
                        wall_time_s=self.before["wall_time_s"] + wall,
                        train_time_s=self.before["train_time_s"] + train)
            prov["steps_per_s"] = eng.steps_done / prov["train_time_s"] if prov["train_time_s"] > 0 else None
            if error:  # the run's error is this call's; each segment keeps its own
                prov["error"] = prov["segments"][-1]["error"] = error
            atomic_write_text(self.run_dir / "provenance.json", to_json(prov))
            if status in ("finished", "diverged"):  # a diverged run is never resumed: its checkpoint is dead weight
                for name in (CHECKPOINT, CHECKSUM, CHECKPOINT + ".tmp"):
                    (self.run_dir / name).unlink(missing_ok=True)
