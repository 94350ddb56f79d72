"""Sweeps of the training engine (objective (4.3), :mod:`nclib.train`) over a grid of parameters, on Dask
distributed (:ref:`ch-sweeps`).

A sweep is a grid (parameter -> list of values) and fixed parameters (parameter -> one value), over any
parameter of :data:`nclib.train.DEFAULTS`.  Every grid point is one run of :func:`nclib.train.run`, written to
its own run folder ``OUT_DIR/<run name>`` (the name is made from the point's grid values, e.g.
``lam_W-0.001_seed-1``), and the sweep ends with one table, ``OUT_DIR/sweep.csv``, of every run's parameters,
status and final metrics, read back from the run folders (so :func:`summary` rebuilds it without training; the
table is :mod:`nclib.sweeptable`'s, its ``summary`` and ``load_summary`` taken up here).
Every point is validated by :func:`nclib.parameters.check_params` before anything is submitted.  Running the same
sweep again reads each run folder's state with :func:`nclib.runs.run_status` and keeps the finished (and the
diverged) runs, where they were trained on the data their ``data_path`` holds now (else the run is an error of the
table, :class:`nclib.runs.OtherData`, and is neither kept as a result nor trained again), resumes (``resume=True``)
from its checkpoint a run that ``max_train_s`` stopped, a "dead" one (whose process was killed) and a failed one (an
error after such a stop), starts again such a run without a checkpoint, and leaves alone a run that another live
process is writing (it holds the run folder's lock; the table reports it as "running").  Each worker decides again
once it holds the run folder's lock (:func:`nclib.train.run_under_lock`), so a run another process finished meanwhile
is kept.  What the sweep does with each point (trained, kept, resumed, left or refused) is decided by
:mod:`nclib.sweepplan`, its ``plan``, ``next_step`` and ``FINAL`` taken up here; this module trains the points.
A resume that is refused (the run started at another commit, on another device or CPU model) starts a
failed run again; a stopped or dead one is reported with what resumes it, and ``--restart-refused`` starts it again.
A failing run is written to the table with its error and does not stop the others.

The runs of one output folder share every parameter that no grid sweeps: a call whose ``--set`` values or
``--tie`` ties differ from an earlier call's (recorded in ``sweep.json``, which keeps every call) is refused, and a
point whose run the folder already holds under another name (a grid parameter added later, at its default) is that
run.  A relative ``data_path`` is made absolute before the points reach the workers.  The table gives each run's
commit, whether its checkout had uncommitted changes, its GPU or CPU model and torch version, and warns when its
runs come from several versions of the code.

Command line::

    python -m nclib.sweep --grid lam_W=1e-4,1e-3,1e-2 --grid seed=0,1 \\
        --set dataset=synthetic --set epochs=200 --set width=64 --set batch_size=full \\
        --out-dir results/runs/decays [--workers 2]

``--grid NAME=V1,V2,...`` and ``--set NAME=VALUE`` take any parameter of :data:`nclib.train.DEFAULTS`; each
value is read by :func:`nclib.parameters.parse_value`, the grammar of every command line of the repository (a
list in brackets, ``--set counts=[500,100,20]``, ``--grid lr_milestones=[100],[100,150]``; a path or a name as
given; else a number, ``true``/``false``/``none`` or the text).  ``--tie NAME=GRIDNAME`` gives the parameter NAME
the value of the grid parameter GRIDNAME at every point (``--grid lam_W=1e-3,1e-2 --tie lam_H=lam_W`` sweeps the two
decays together, lam_W = lam_H; from Python ``tie={"lam_H": "lam_W"}``): the run folder is named after the grid
values alone (``lam_W-0.001``) and the table has a column for the tied parameter too.  ``--summary-only`` rewrites
the table from the run folders and starts no run (``--grid``, ``--set``, ``--tie``, ``--restart-refused``,
``--workers``, ``--scheduler`` and ``--resources`` are refused with it; a folder without runs, or none, is refused
with status 1, :class:`NoRuns`: no point has a run yet); with ``--forget-absent`` it first forgets, in
``sweep.json``, the points that no run folder holds and the calls that made only such points
(:func:`nclib.sweepmanifest.forget_absent`).
``--list-points`` prints the grid's points, numbered from 0, and ``--point I`` trains point I alone in this
process: the tasks of a job array (:func:`run_point`); neither takes ``--workers``, ``--scheduler`` or
``--resources``, nor ``--list-points``, which trains nothing, ``--restart-refused``.  The command prints the
table's main columns (each error cut short:
``sweep.csv`` holds it whole; with ``--point`` and ``--list-points``, which write no ``sweep.csv``, a cut error
follows whole on stderr, and ``sweep.json`` keeps the error of a run whose folder does not record it) and exits
with status 1 when a run failed, carries an error or was never trained (:func:`exit_status`; a divergence is a
result, status 0; ``--list-points`` lists points, no outcome, and exits with 0) or the file system refuses flock
locks (:class:`nclib.locks.LockUnsupported`), 3 when another sweep is running in the same ``--out-dir``
(:class:`SweepBusy`).

Where the runs go (:ref:`ch-sweeps` gives each with its commands): by default a
:class:`dask.distributed.LocalCluster` on this machine, ``--workers N`` processes of one thread each;
``--scheduler tcp://HOST:8786``, the workers of a running Dask cluster (``--out-dir`` on a file system they all
share); on GPUs one worker per card, each run asking for the Dask resource ``GPU=1`` (``--resources`` sets
another request); Slurm or PBS through ``dask-jobqueue`` (``scheduler=`` a cluster object); or a job array without
Dask, each task training one point in the shared output folder, ``--point $SLURM_ARRAY_TASK_ID``
(``--list-points`` gives the indices), and ``--summary-only`` once the tasks have ended.

One sweep at a time may use an output folder (a lock file, ``OUT_DIR/.sweep.lock``, holding its pid and host,
refuses a second one); the tasks of a job array take only their run folders' locks
(:func:`nclib.locks.lock_run`), so they run beside each other and beside a sweep, and no run is trained by two
processes at once.  ``sweep.json`` is read and written under a lock of its own (``OUT_DIR/.sweep.json.lock``).
Both need flock locks that work across the machines sharing the folder; :mod:`nclib.sweepmanifest` holds them and
the record ``sweep.json``.
"""
from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import sys
import threading
import uuid
import warnings

import numpy as np
import pandas as pd

from . import _checks, locks, parameters
from .grid import parse_fixed, parse_grid, parse_tie
from .locks import RunFolderBusy, RunLockedElsewhere
from .rounding import written
from .runs import RESUMABLE, OtherData, ResumeRefused, run_status
from .sweepmanifest import (MANIFEST, SweepBusy, call_record, folder_state, forget_absent, lock_sweep, read_manifest,
                            record_call, record_result, update_manifest)
from .sweeptable import (PROVENANCE_COLUMNS, SUMMARY, MixedCodeVersions,  # noqa: F401 (the table's names)
                         NoRuns, load_summary, read_provenance, recorded_outcome, summary, table_row)
from .sweepplan import FINAL, _kept_error, _refuse_other_data, _refuse_other_run, _step, next_step, plan


# --------------------------------------------------------------------------------------------- one run

#: What a refusal to resume a run advises (:func:`_run_point`).
RESUME_ADVICE = ("a run resumes only where it started: the same checkout (commit and uncommitted changes, a job's log "
                 "written into it included), torch, "
                 "device and, on a CPU, CPU model, on the same data; resume it there (on a cluster, a job "
                 "constrained to that node type, e.g. sbatch --constraint), or train it again from the start with "
                 "restart_refused=True (--restart-refused), which deletes it")


#: Held by the one :func:`_run_point` of a process that records warnings: the warnings filter is the process's, and
#: two threads entering and leaving ``warnings.catch_warnings`` out of order would leave the first one's recorder in
#: place, so that later warnings went to a finished run's list and were lost.
_RECORDING = threading.Lock()


def _run_point(params: dict, restart_refused: bool = False) -> dict:
    """:func:`_train_point`, whose warnings (a dead writer's lock taken over, say) are returned as the result's
    ``warnings``, (category, message) pairs, for the caller to warn again: a Dask worker's own would go to the
    worker's log, not to the sweep's notes.  The warnings filter is the process's, so only one run of a process
    records at a time (:data:`_RECORDING`): in a worker training two runs at once (``--nthreads 2``), the second
    run's warnings are listed under the first while it trains, and go to the worker's log once it has ended."""
    if not _RECORDING.acquire(blocking=False):
        return {**_train_point(params, restart_refused), "warnings": []}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _train_point(params, restart_refused)
    finally:
        _RECORDING.release()
    return {**result, "warnings": [(w.category, str(w.message)) for w in caught]}


def _warn_again(result: dict) -> None:
    """Warn, in this process, the warnings a run's worker returned (:func:`_run_point`)."""
    for category, message in result.get("warnings") or ():
        warnings.warn(message, category, stacklevel=3)


def _train_point(params: dict, restart_refused: bool = False) -> dict:
    """Train (or resume, or keep) one grid point, deciding under the run folder's lock what its folder needs
    (:func:`nclib.train.run_under_lock`); never raises for the run's own failure: returns ``{"status": the folder's
    run_status after, "error": None or "Type: message", "restarted": None or why a run was trained again from the
    start ("Type: message" of the refused resume), "fresh": whether the run was started from the start as
    planned, "state": the folder's :func:`nclib.sweepmanifest.folder_state` after}``.  A failed run whose resume
    is refused (the code changed since, say) is trained again from the start, as is, with ``restart_refused``, a
    stopped or dead one; without it, such a run is an error whose message says what resumes it
    (:data:`RESUME_ADVICE`).  A folder that, once locked, holds a run with other defining parameters
    (another call made it after this call's :func:`plan`) is an error too, the refusal of :func:`plan`, and its run
    is left as it is; so is a run it would keep that was trained on other data than ``data_path`` holds now
    (:func:`nclib.sweepplan._refuse_other_data`)."""
    run_dir = pathlib.Path(params["out_dir"]) / params["run_name"]
    error = restarted = None
    step = "leave"
    try:
        from . import train

        want = parameters.defining_params(params)

        try:
            def first(dirs, statuses):  # the folder as it is now: another call may have made its run meanwhile
                _refuse_other_run(dirs[0], want)
                step = _step(dirs[0], statuses[0])
                if step == "keep":  # a run is kept only for the data it was trained on
                    _refuse_other_data(params, dirs[0])
                return step

            step, _ = train.run_under_lock([params], first)
        except ResumeRefused as refused:
            why, told = f"{type(refused).__name__}: {refused}", str(refused)

            def again(dirs, statuses):  # locked again: a run that another process finished meanwhile is kept
                _refuse_other_run(dirs[0], want)
                if statuses[0] in FINAL:
                    _refuse_other_data(params, dirs[0])
                    return "keep"
                if statuses[0] == "failed" or (restart_refused and statuses[0] in RESUMABLE):
                    return "start"
                raise ResumeRefused(f"{told}; {RESUME_ADVICE}", run_dir)

            # a failed run is never kept as a result, and its checkpoint was a convenience: it starts again, and
            # so does a stopped or dead one where the caller asks for it; the table says so
            if train.run_under_lock([params], again)[0] == "start":
                restarted = why
    except RunLockedElsewhere as exc:  # a writer on another host, whose end cannot be seen from here: an error,
        error = f"{type(exc).__name__}: {exc}"  # whose message names the lock file to remove
    except RunFolderBusy:  # another process holds the run folder's lock: its run, not an error of this one
        pass
    except Exception as exc:  # noqa: BLE001 - a failing run is reported, the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    return {"status": run_status(run_dir), "error": error, "state": folder_state(run_dir), "restarted": restarted,
            "fresh": step == "start"}


# --------------------------------------------------------------------------------------------- the sweep

def task_resources(params: dict, resources: dict | None = None) -> dict | None:
    """The Dask resources a run asks its worker for (:ref:`ch-sweeps`): ``resources`` when given, else
    ``{"GPU": 1}`` for a run with ``device="cuda..."`` (one run per GPU at a time) and None otherwise."""
    if resources is not None:
        return dict(resources)
    return {"GPU": 1} if str(params["device"]).startswith("cuda") else None


def _resource_amount(name: str, value, what: str):
    """A Dask resource amount: a positive number (ValueError naming ``what`` and the resource otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} {name}: a positive amount expected, got {value!r}")
    return value


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system has one, else the machine's count): the
    default number of workers of a local cluster (:func:`run_sweep`)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _client(scheduler, workers, worker_resources, runs: int | None = None):
    """A dask Client: to ``scheduler`` (an address or a cluster object), else to a new LocalCluster of ``workers``
    single-threaded processes (each holding ``worker_resources``; by default one per core, but no more than the
    ``runs`` to train, or one where the runs ask for resources), without a dashboard; returns (client, cluster or
    None)."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler), None
    if workers is None:  # a worker more than the runs would only start, import torch and wait
        n = 1 if worker_resources else usable_cores() if runs is None else max(1, min(usable_cores(), runs))
    else:
        n = workers
    # dashboard_address=None alone still opens the scheduler's web server on port 8787 of every interface
    # (dask 2026.8): no dashboard, and its server on a free port of this machine only
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                           resources=worker_resources or None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_sweep(grid: dict, fixed: dict | None = None, out_dir=None, workers: int | None = None, scheduler=None,
              resources: dict | None = None, progress: bool = True, tie: dict | None = None,
              restart_refused: bool = False) -> pd.DataFrame:
    """Train every point of ``grid`` (parameter -> list of values) with the parameters ``fixed`` (parameter ->
    value) on Dask, one run folder each under ``out_dir``, and return the sweep's table (also written to
    ``out_dir/sweep.csv``, :func:`summary`).  The sweeps of :ref:`ch-sweeps`: objective (4.3) trained by
    :func:`nclib.train.run` across its parameters.

    Every point is checked (:func:`plan`) before anything is submitted.  A run folder already in ``out_dir`` is
    kept, left to the live process writing it, resumed or started again as :func:`next_step` says (finished and
    diverged runs kept, each once its data are found to be what its ``data_path`` holds now, else an error of the
    table, :class:`nclib.runs.OtherData`, and nothing trained; stopped, dead and failed ones resumed from their
    checkpoint, or started again without one), decided again by each worker once it holds the run folder's lock.  A
    failed run whose resume is refused starts again; a stopped or dead one so refused (another commit, device or CPU
    model) is an error saying what resumes it, or with ``restart_refused=True`` starts again too (the table's
    ``restarted`` says why). ``scheduler``: None (a LocalCluster of ``workers`` processes, one thread each; by
    default one per core but no more than the runs to train, or a single one when the runs ask for resources, as
    ``device="cuda..."`` runs do), a
    scheduler address ``"tcp://HOST:8786"`` or a dask cluster object (dask-jobqueue's ``SLURMCluster``...).
    ``resources``: the Dask resources each run asks for (default ``{"GPU": 1}`` for a run with
    ``device="cuda..."``, none otherwise).  ``progress``: a tqdm bar over the finished runs.  ``tie``: parameters
    that take the value of a grid parameter at every point, ``{"lam_H": "lam_W"}`` for lam_H = lam_W (each must be a
    parameter of the run set neither by the grid nor by ``fixed``, and follow a parameter of the grid); the run
    folders are named after the grid values and the table has a column for each tied parameter.
    :class:`SweepBusy` when another sweep is running in ``out_dir``.

    From a Python script, call it under ``if __name__ == "__main__":``.  The workers of a local cluster are new
    Python processes, which import the calling script again (Dask starts them by multiprocessing's "spawn"); without
    the guard each would start the sweep anew, refused with :class:`SweepBusy` naming the script's own process
    (the sweep holding the folder), and the cluster would not start ("Nanny failed to start").  A notebook needs no
    guard."""
    workers, progress, restart_refused = _check_sweep_args(workers, scheduler, resources, progress, restart_refused)
    planned = plan(grid, fixed, out_dir, remote=scheduler is not None, tie=tie)
    call = call_record(grid, fixed or {}, tie or {})
    out_dir = pathlib.Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with lock_sweep(out_dir):
        todo, kept, other, loaded = [], [], {}, {}  # loaded: each data selection's checksum, read once
        for item in planned:
            name = item["params"]["run_name"]
            status, step = next_step(out_dir / name)
            error = _kept_error(item["params"], out_dir / name, loaded) if step == "keep" else None
            if error is not None:  # trained on other data: neither kept as this point's run nor trained again
                other[name] = {"status": status, "error": error, "state": folder_state(out_dir / name)}
            elif step in ("keep", "leave"):
                kept.append(name)
            else:
                todo.append(item["params"])

        def record(m):  # written now, with nothing to train too: an error that a kept run's folder has replaced
            record_call(m, call, planned, out_dir, kept)  # is gone from it
            for name, result in other.items():
                record_result(m, name, result)

        update_manifest(out_dir, record)

        if todo:
            asks = [task_resources(p, resources) for p in todo]
            need = {}  # what the local cluster's workers hold: the largest amount any run asks for, per resource
            for ask in asks:
                for k, v in (ask or {}).items():
                    need[k] = max(need.get(k, 0), v)
            client, cluster = _client(scheduler, workers, need, runs=len(todo))
            try:
                _train_on_dask(client, todo, asks, need, out_dir, restart_refused, progress)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
        return summary(out_dir)


def _check_sweep_args(workers, scheduler, resources, progress, restart_refused) -> tuple[int | None, bool, bool]:
    """Refuse :func:`run_sweep`'s execution arguments by name, before anything is planned or written; returns
    ``(workers, progress, restart_refused)`` as Python ints and bools."""
    progress = _checks.flag(progress, "progress")
    restart_refused = _checks.flag(restart_refused, "restart_refused")
    if workers is not None:
        workers = _checks.positive_int(workers, "workers (or None: one per core, one for runs that ask for resources)")
    if workers is not None and scheduler is not None:
        raise ValueError("workers sets the size of the local cluster; with scheduler the cluster's own workers "
                         "run the sweep")
    if resources is not None:
        if not isinstance(resources, dict) or not all(isinstance(k, str) for k in resources):
            raise ValueError(f"resources must be a dict of resource name -> positive amount, got {resources!r}")
        for k, v in resources.items():
            _resource_amount(k, v, "resources")
    return workers, progress, restart_refused


def _train_on_dask(client, todo: list[dict], asks: list, need: dict, out_dir: pathlib.Path, restart_refused: bool,
                   progress: bool) -> None:
    """Submit each run of ``todo`` (asking for its resources, ``asks``) to ``client`` and record each outcome in the
    sweep's record as it arrives, under one progress bar; warns when no worker holds the resources ``need``."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    held = [w.get("resources", {}) for w in client.scheduler_info().get("workers", {}).values()]
    lacking = sorted(k for k, v in need.items() if not any(r.get(k, 0) >= v for r in held))
    if lacking:  # a cluster that scales up (dask-jobqueue) may still add such workers
        warnings.warn(f"no worker of the cluster holds the resources {lacking} that the runs ask "
                      f"for; they wait until one joins (start workers with --resources, e.g. "
                      f"GPU=1)", stacklevel=3)
    tag = uuid.uuid4().hex[:8]
    futures = {client.submit(_run_point, p, restart_refused, key=f"train-{p['run_name']}-{tag}",
                             pure=False, resources=ask): p["run_name"] for p, ask in zip(todo, asks)}
    failed = 0
    with tqdm(total=len(futures), desc="sweep", unit="run", disable=not progress) as bar:
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                result = fut.result()
                _warn_again(result)
            except Exception as exc:  # noqa: BLE001 - the worker died (KilledWorker) or was cancelled
                result = {"status": run_status(out_dir / name), "error": f"{type(exc).__name__}: {exc}",
                          "state": folder_state(out_dir / name)}
            update_manifest(out_dir, lambda m, name=name, result=result: record_result(m, name, result))
            failed += result["error"] is not None
            bar.set_postfix(errors=failed, refresh=False)
            bar.update()


# --------------------------------------------------------------------------------------------- job arrays

def list_points(grid: dict, fixed: dict | None, out_dir, tie: dict | None = None) -> pd.DataFrame:
    """The points of a sweep as the tasks of a job array train them (:func:`run_point`): a table of ``point`` (the
    index a task is given, 0 to n - 1), ``run_name``, ``found`` (the folder's :func:`nclib.runs.run_status`, or
    "failed" for a run whose attempt failed before its folder was written), ``next`` (what a task would do with it,
    :func:`next_step`) and ``error`` (the run's error, or None), status and error as the sweep's table gives them
    (:func:`nclib.sweeptable.recorded_outcome`), but for the runs a task would keep, which are compared with the
    data their ``data_path`` holds now, as the task compares them (:func:`nclib.sweepplan._kept_error`, each data
    selection loaded once): on other data, or a file that no longer loads, its ``next`` is "refuse" (the task
    neither keeps nor trains it) and its error the :class:`nclib.runs.OtherData` the task meets; on its own data it
    is kept, and an OtherData error that ``sweep.json`` keeps from an earlier call (the data since put back) is not
    its error here, though the table (``--summary-only``, which loads no data) shows it until a sweep or a task has
    checked the data again.  Checked as :func:`plan` checks them, for runs that train on other machines
    (``device="cuda"`` passes on a login node without a GPU); nothing is written."""
    planned = plan(grid, fixed, out_dir, remote=True, tie=tie)
    manifest = read_manifest(planned[0]["params"]["out_dir"]) if planned else {}
    rows, loaded = [], {}  # loaded: each data selection's checksum, read once
    for i, item in enumerate(planned):
        name = item["params"]["run_name"]
        run_dir = pathlib.Path(item["params"]["out_dir"]) / name
        status, step = next_step(run_dir)
        prov, damaged = read_provenance(run_dir)  # a damaged one: its error, naming it, as in the table
        found, error = recorded_outcome(name, status, manifest, prov, run_dir)
        if step == "keep":
            other = _kept_error(item["params"], run_dir, loaded)
            if other is not None:  # trained on other data: a task neither keeps it nor trains it again
                step, error = "refuse", other
            elif error is not None and error.startswith(f"{OtherData.__name__}:"):  # the data are back: kept
                error = prov.get("error") or None  # what its folder records (a divergence), as a task leaves it
        rows.append({"point": i, "run_name": name, "found": found, "next": step, "error": damaged or error})
    return pd.DataFrame(rows)


def run_point(grid: dict, fixed: dict | None, out_dir, point: int, tie: dict | None = None,
              restart_refused: bool = False) -> pd.DataFrame:
    """Train the one point ``point`` (0 to n - 1, in the order of :func:`list_points`) of a sweep in this process, in
    the sweep's ``out_dir``: one task of a job array (``--point $SLURM_ARRAY_TASK_ID``, :ref:`ch-sweeps`).

    The task takes only its run folder's lock, never the sweep's (``.sweep.lock``), so the tasks of an array train
    side by side in one folder, beside a whole sweep too; a run is still trained by one process at a time, which
    decides what the folder needs once it holds the lock (:func:`_run_point`: a run another task or the sweep
    finished is kept, one it trains is left to it).  The task records every point of the grid and its run's
    outcome in ``sweep.json`` (under that file's own lock) and writes no ``sweep.csv``: :func:`summary`
    (``--summary-only``) writes the table of all the tasks' runs once they have ended.  A run folder whose
    ``provenance.json`` is damaged reads "dead" (:func:`nclib.runs.recorded_status`): a warning naming the file says
    so (a note of the command line) before the run is resumed or trained again.  Returns the run's row of the
    table.  Points are checked as :func:`plan` checks them (for this machine); ValueError naming ``point`` for an
    index outside the grid."""
    if isinstance(point, bool) or not isinstance(point, (int, np.integer)):
        raise ValueError(f"point (--point) must be the index of a grid point, an integer, got {point!r}")
    restart_refused = _checks.flag(restart_refused, "restart_refused")
    planned = plan(grid, fixed, out_dir, tie=tie)
    if not 0 <= point < len(planned):
        raise ValueError(f"point (--point) {point} is not a point of the grid: its {len(planned)} points are "
                         f"0 to {len(planned) - 1} (--list-points lists them)")
    call = call_record(grid, fixed or {}, tie or {})
    out_dir = pathlib.Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    params = planned[point]["params"]
    update_manifest(out_dir, lambda m: record_call(m, call, planned, out_dir))
    damaged = read_provenance(out_dir / params["run_name"])[1]
    if damaged is not None:  # the folder reads "dead": resumed from its checkpoint, or trained again from the start
        warnings.warn(f"{damaged}; its run reads as dead: resumed from its checkpoint where it has one, else trained "
                      f"again from the start", stacklevel=2)
    result = _run_point(params, restart_refused)
    _warn_again(result)
    manifest = update_manifest(out_dir, lambda m: record_result(m, params["run_name"], result))
    grid_keys = list(planned[point]["point"])
    row, _ = table_row(out_dir, params["run_name"], planned[point]["point"], manifest, grid_keys)
    return pd.DataFrame([row])


# --------------------------------------------------------------------------------------------- CLI

#: The command line's name, in its messages.
PROG = "python -m nclib.sweep"

#: What ``--help`` says the command does.
DESCRIPTION = """\
Train a grid of runs of nclib.train.run on Dask (a local cluster by default), one run
folder per grid point under --out-dir, and write the table of every run, sweep.csv.
Running the same command again keeps finished runs and resumes stopped ones."""

#: What ``--help`` says after the options: values, exit statuses, a job array.
EPILOG = """\
values:
  --grid lam_W=1e-3,1e-2       comma-separated values, one run per combination
  --set 'counts=[500,100,20]'  a list in brackets; --grid 'lr_milestones=[100],[100,150]'
  true/false/none, numbers, else the text as given (a path, a name)

exit status:
  0  no run failed or carries an error, and every point has a run (stopped, dead
     and diverged runs included: the table's status says which); --list-points
  1  a run failed or carries an error, or a point has no run yet (absent), or no
     point has one; or the file system refuses flock locks
  2  a usage error: a parameter, value or combination of options refused
  3  another sweep is running in --out-dir

a job array (Slurm), one point per task:
  ARGS="--grid lam_W=1e-3,1e-2 --grid seed=0,1 --set dataset=synthetic \\
        --set batch_size=full --out-dir runs/d"
  python -m nclib.sweep $ARGS --list-points        # the points, 0 to 3
  sbatch --array=0-3 \\
    --wrap "OMP_NUM_THREADS=1 python -m nclib.sweep $ARGS --point \\$SLURM_ARRAY_TASK_ID"
  # OMP_NUM_THREADS=1: a CPU run resumes only with the torch threads it started with,
  # one in a Dask worker
  python -m nclib.sweep --summary-only --out-dir runs/d   # once the tasks have ended

book/training/sweeps.md (the chapter "Sweeps on Dask") gives the details."""


def main(argv=None) -> pd.DataFrame:
    """``python -m nclib.sweep --grid NAME=V1,V2 ... --set NAME=VALUE ... --out-dir DIR``: :func:`run_sweep`
    from the shell (:ref:`ch-sweeps`); prints the table's main columns and the path of sweep.csv.  With
    ``--list-points`` the grid's points (:func:`list_points`), with ``--point I`` the one point I trained here
    (:func:`run_point`, a task of a job array; an error the table cuts short follows whole on stderr, and the last
    line is the path of the run folder, or of sweep.json where the run has no folder), with ``--summary-only`` the
    table rebuilt from the folders (:func:`summary`).  Warnings (runs of several code versions,
    :class:`MixedCodeVersions`) are printed as notes on stderr.  SIGTERM (a job's time limit, ``scancel``) ends it
    as Ctrl-C would, with status 143 (128 + SIGTERM), as the signal itself would: the run of ``--point`` written as
    failed with its error and its folder's lock given back (:func:`nclib.locks.sigterm_raises`); a sweep's local
    cluster closed, the runs its workers were training left dead (their lock files, of this host, are taken over by
    the next call)."""
    ap = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="a parameter of nclib.train.run and its values (repeat for more parameters)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="fixed",
                    help="a parameter of nclib.train.run fixed for every run (repeatable)")
    ap.add_argument("--tie", action="append", default=[], metavar="NAME=GRIDNAME",
                    help="a parameter that takes the value of a grid parameter at every point (lam_H=lam_W)")
    ap.add_argument("--out-dir", required=True, help="the folder of the run folders and sweep.csv")
    ap.add_argument("--workers", type=int, default=None,
                    help="local cluster size (default: one per core but no more than the runs to train, or one "
                         "when the runs ask for resources such as a GPU)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://HOST:8786")
    ap.add_argument("--resources", action="append", default=[], metavar="NAME=AMOUNT",
                    help="Dask resources each run asks for (default GPU=1 for device=cuda)")
    ap.add_argument("--restart-refused", action="store_true",
                    help="train again from the start a stopped or dead run whose resume is refused (another "
                         "commit, device or CPU model), deleting it")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--list-points", action="store_true",
                    help="print the grid's points (index, run name, what its folder holds, its run's error) and "
                         "train nothing")
    ap.add_argument("--point", type=int, default=None, metavar="I",
                    help="train only point I of the grid, in this process (a task of a job array: "
                         "--point $SLURM_ARRAY_TASK_ID); no sweep.csv: --summary-only writes it afterwards")
    ap.add_argument("--summary-only", action="store_true",
                    help="rewrite sweep.csv from the run folders and sweep.json only: what the folders and the last "
                         "sweep or task recorded, no data loaded (a run found trained on other data stays an error "
                         "until a sweep or a task checks its data again), nothing trained")
    ap.add_argument("--forget-absent", action="store_true",
                    help="with --summary-only: first forget, in sweep.json, the points that no run folder holds and "
                         "the calls that made only such points (an interrupted call, a grid given by mistake, a "
                         "cancelled job array); the error of a point that failed before its folder was written is "
                         "forgotten with it, and printed")
    ns = ap.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught, locks.sigterm_raises():
            warnings.simplefilter("always")
            df = _command(ns)
    except locks.Terminated as exc:  # a job's time limit, scancel: what it was training is recorded, and unlocked
        done = ("the run it was training is written as failed, its folder unlocked" if ns.point is not None else
                None if ns.summary_only or ns.list_points or ns.scheduler else
                "a local cluster is closed with it, the runs its workers were training left dead")
        ap.exit(128 + signal.SIGTERM, f"{ap.prog}: {exc}{f': {done}' if done else ''}\n")
    except NoRuns as exc:  # no point has a run yet (no task has started): the status of a point without a run
        ap.exit(1, f"{ap.prog}: error: {exc}\n")
    except ValueError as exc:
        ap.error(str(exc))
    except SweepBusy as exc:  # not a usage error: the same command works once the other sweep has ended
        ap.exit(3, f"{ap.prog}: {exc}\n")
    except locks.LockUnsupported as exc:  # nor a busy folder: a retry would never succeed
        ap.exit(1, f"{ap.prog}: error: {exc.strerror}\n")
    for w in caught:
        print(f"{ap.prog}: note: {w.message}", file=sys.stderr)
    if ns.list_points:
        errors = df["error"].notna().any()  # a column of errors only where a point has one, cut short
        print((df.assign(error=[_cut(e) for e in df["error"]]) if errors else df.drop(columns="error"))
              .to_string(index=False))
        _whole_errors(df, ap.prog)
        return df
    view = df[[c for c in ("run_name", "status", "epoch", "final_objective", "final_train_acc", "final_nc1",
                           "error") if c in df.columns]].copy()
    if "error" in view and view["error"].isna().all():  # no run failed: no column of empty errors
        view = view.drop(columns="error")
    elif "error" in view:
        view["error"] = [_cut(e) for e in view["error"]]
    short = {"final_objective": "objective", "final_train_acc": "train_acc", "final_nc1": "nc1"}
    formats = {"epoch": lambda v: f"{v:.0f}", "final_objective": lambda v: written(v, 4),
               "final_train_acc": lambda v: f"{v:.3f}",
               "final_nc1": lambda v: written(v, 3)}  # numbers as the book writes them, no E-notation
    # blank where a run has none (na_rep alone leaves a float column's epochs as 4.0, an Int64 one's gaps as <NA>)
    formatters = {short.get(c, c): (lambda v, f=f: "" if pd.isna(v) else f(v)) for c, f in formats.items()
                  if c in view.columns}
    print(view.rename(columns=short).to_string(index=False, na_rep="", formatters=formatters))
    if ns.point is not None:  # no sweep.csv holds the error whole: the log of the task does
        _whole_errors(df, ap.prog)
        folder = pathlib.Path(ns.out_dir) / df["run_name"][0]
        print(folder if folder.is_dir() else pathlib.Path(ns.out_dir) / MANIFEST)  # none: the error is recorded there
    else:
        print(pathlib.Path(ns.out_dir) / SUMMARY)
    return df


def _cut(error) -> str:
    """An error as the printed table shows it: at most 60 characters, blank for none."""
    if not isinstance(error, str):
        return ""
    return error[:57] + "..." if len(error) > 60 else error


def _whole_errors(df: pd.DataFrame, prog: str) -> None:
    """Print on stderr, after the table printed on stdout, each error that the table cut short, whole (a task of a
    job array writes no sweep.csv, and its log is where its error is read)."""
    errors = df["error"] if "error" in df else [None] * len(df)
    cut = [(name, e) for name, e in zip(df["run_name"], errors) if isinstance(e, str) and _cut(e) != e]
    sys.stdout.flush()  # the table first, where both go to one file (a Slurm log)
    for name, e in cut:
        print(f"{prog}: error of {name}: {e}", file=sys.stderr)


def _command(ns) -> pd.DataFrame:
    """What the command line's arguments ``ns`` ask for (:func:`main`); ValueError naming the flag for arguments
    that do not go together."""
    modes = [flag for flag, on in (("--list-points", ns.list_points), ("--point", ns.point is not None),
                                   ("--summary-only", ns.summary_only)) if on]
    if len(modes) > 1:
        raise ValueError(f"{' and '.join(modes)}: give one of them")
    if ns.summary_only:  # the table is rebuilt from the folders only: what trains runs would be silently ignored
        given = [flag for flag, values in (("--grid", ns.grid), ("--set", ns.fixed), ("--tie", ns.tie),
                                            ("--restart-refused", ns.restart_refused),
                                            ("--workers", ns.workers is not None), ("--scheduler", ns.scheduler),
                                            ("--resources", ns.resources)) if values]
        if given:
            raise ValueError(f"--summary-only rewrites {SUMMARY} from the run folders and starts no run; it takes "
                             f"no {', '.join(given)}")
        if ns.forget_absent and pathlib.Path(ns.out_dir).is_dir():
            gone = forget_absent(ns.out_dir)
            print(f"{PROG}: note: forgot {len(gone)} point{'s' * (len(gone) != 1)} without a run folder"
                  f"{': ' + ', '.join(gone) if gone else ''}", file=sys.stderr)
            for name, error in gone.items():  # an error no table will show again
                if error:
                    print(f"{PROG}: note: forgot with {name} the error of its last attempt: {error}", file=sys.stderr)
        return summary(ns.out_dir)
    if ns.forget_absent:
        raise ValueError("--forget-absent forgets points before --summary-only rewrites the table; give it with "
                         "--summary-only")
    if modes:  # one point trained here, or none: no cluster (and with --list-points, nothing restarted)
        given = [flag for flag, value in (("--workers", ns.workers is not None), ("--scheduler", ns.scheduler),
                                          ("--resources", ns.resources),
                                          ("--restart-refused", ns.list_points and ns.restart_refused)) if value]
        if given:
            what = "lists the points" if ns.list_points else "trains its point in this process"
            raise ValueError(f"{modes[0]} {what}; it takes no {', '.join(given)}")
    elif ns.workers is not None:  # run_sweep's refusals, in the command line's spelling
        if ns.workers < 1:
            raise ValueError(f"--workers must be a positive integer (the processes of the local cluster; left out, "
                             f"one per core, or one for runs that ask for resources), got {ns.workers}")
        if ns.scheduler is not None:
            raise ValueError("--workers sets the size of the local cluster; with --scheduler the cluster's own "
                             "workers run the sweep")
    grid, fixed, tie = parse_grid(ns.grid), parse_fixed(ns.fixed), parse_tie(ns.tie)
    if ns.list_points:
        return list_points(grid, fixed, ns.out_dir, tie=tie)
    if ns.point is not None:
        return run_point(grid, fixed, ns.out_dir, ns.point, tie=tie, restart_refused=ns.restart_refused)
    res = None
    if ns.resources:
        res = {}
        for item in ns.resources:
            name, value = parameters.parse_setting(item, "--resources")
            res[name] = _resource_amount(name, value, "--resources")
    return run_sweep(grid, fixed, ns.out_dir, workers=ns.workers, scheduler=ns.scheduler, resources=res,
                     progress=not ns.no_progress, tie=tie, restart_refused=ns.restart_refused)


def exit_status(table: pd.DataFrame) -> int:
    """The command's exit status for a sweep's table: 1 when a run failed, carries an error other than its
    divergence (a divergence is a result; a diverged run trained on other data than its data file holds now,
    :class:`nclib.runs.OtherData`, is an error), or is absent (its point was never trained: a task of a job array that
    never ran, a sweep whose cluster never started), else 0 (a stopped run and a dead one without an error, which
    the next call resumes, included).  ``table``: a sweep's table (:func:`run_sweep`), with its ``status`` column;
    ValueError otherwise."""
    if not isinstance(table, pd.DataFrame) or "status" not in table:
        raise ValueError("table must be a sweep's table (a DataFrame with a status column)")
    status = table["status"]
    errors = other_data = pd.Series(False, index=table.index)
    if "error" in table:
        errors = table["error"].notna()
        other_data = errors & table["error"].astype(str).str.startswith(f"{OtherData.__name__}:")
    return int(bool((status.isin(("failed", "absent")) | (errors & (status != "diverged")) | other_data).any()))


if __name__ == "__main__":
    # run as ``python -m nclib.sweep`` this module is ``__main__``: Dask would send _run_point by value, with the
    # module's globals (a lock among them, which cannot be pickled); the module imported by name is sent by reference
    from nclib import sweep as _sweep

    table = _sweep.main()
    sys.exit(_sweep.exit_status(table) if "status" in table else 0)  # a list of points (--list-points) is no outcome
