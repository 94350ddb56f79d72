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
error after such a stop, or after a periodic checkpoint of ``checkpoint_every``), starts again such a run without a
checkpoint, and leaves alone a run that another live
process is writing (it holds the run folder's lock; the table reports it as "running", and a :class:`RunLeft`
note names that process's pid and host).  Each worker decides again
once it holds the run folder's lock (:func:`nclib.train.run_under_lock`), so a run another process finished meanwhile
is kept.  What the sweep does with each point (trained, kept, resumed, left or refused) is decided by
:mod:`nclib.sweepplan`, its ``plan``, ``next_step`` and ``FINAL`` taken up here; this module trains the points.
A resume that is refused (the run started at another commit, on another device or CPU model, or with other torch
threads) leaves a stopped, dead or failed run as it is, reported with what resumes it; ``--restart-refused`` starts it
again, with a note (:class:`RunRestarted`).
A failing run is written to the table with its error and does not stop the others.

The runs of one output folder share every parameter that no grid sweeps: a call whose ``--set`` values or
``--tie`` ties differ from an earlier call's (recorded in ``sweep.json``, which keeps every call) is refused, and a
point whose run the folder already holds under another name (a grid parameter added later, at its default) is that
run.  A relative ``data_path`` is made absolute before the points reach the workers.  The table gives each run's
commit, whether its checkout had uncommitted changes, its GPU or CPU model and torch version, and warns when its
runs come from several versions of the code.

Command line: ``python -m nclib.sweep --grid NAME=V1,V2,... --set NAME=VALUE ... --out-dir DIR``, read by
:mod:`nclib.sweepcli` (its flags, what it prints, its exit statuses), whose :func:`main` and
:func:`exit_status` are taken up here.

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

import logging
import os
import pathlib
import sys
import threading
import uuid
import warnings

import numpy as np
import pandas as pd

from . import _checks, parameters
from .locks import RunFolderBusy, RunLockedElsewhere, Terminated, is_this_process, lock_owner
from .runs import RESUMABLE, OtherData, ResumeRefused, recorded_status, run_status
from .sweepcli import EPILOG, PROG, exit_status, main  # noqa: F401 (python -m nclib.sweep)
from .sweepmanifest import (SweepBusy, call_record, folder_state, lock_sweep, read_manifest,  # noqa: F401
                            record_call, record_result, update_manifest)
from .sweeptable import (PROVENANCE_COLUMNS, SUMMARY, MixedCodeVersions,  # noqa: F401 (the table's names)
                         NoRuns, TableNotWritten, UnrecordedRuns, load_summary, read_provenance, recorded_outcome,
                         summary, table_row)
from .sweepplan import FINAL, kept_run_error, next_step, plan, refuse_other_data, refuse_other_run, step_for_status


# --------------------------------------------------------------------------------------------- one run

#: What a refusal to resume a run advises (:func:`_train_point`).
RESUME_ADVICE = ("a run resumes only where it started: the same checkout (commit and uncommitted changes, a job's log "
                 "written into it included), torch, "
                 "device and, on a CPU, CPU model, on the same data; resume it there (on a cluster, a job "
                 "constrained to that node type, e.g. sbatch --constraint), or train it again from the start with "
                 "restart_refused=True (--restart-refused), which deletes it")


class RunRestarted(UserWarning):
    """A run whose resume was refused is trained again from the start, as ``restart_refused``
    (``--restart-refused``) asks, deleting what its folder held (:func:`_train_point`); warned once the run is given
    up, before the new training, which may still fail or diverge.  The command line prints it as a note, and the
    table's ``restarted`` column keeps the refusal."""


class RunLeft(UserWarning):
    """A point whose run folder a live process holds (its lock: a task of a job array, a worker of another call) is
    left to that process: not trained here, nothing written in its run folder, and no error of this call, its status
    "running" (:func:`_train_point`, :func:`run_sweep`).  The command line prints it as a note naming the folder and
    the holder's pid and host, so that a job array submitted twice does not read as two runs of the point.  The
    holder may be the very process that took up the point (a lock taken by hand in a notebook, another thread's run):
    the note then says so rather than naming another process."""


def _leave(run_dir: pathlib.Path, owner: dict | None) -> None:
    """Warn :class:`RunLeft` for ``run_dir``, whose lock the live process ``owner`` (its lock record: pid, host,
    since) holds: another process, or this one (:func:`nclib.locks.is_this_process`)."""
    owner = owner or {}
    since = f", since {owner['since']}" if owner.get("since") else ""
    holder = f"pid {owner.get('pid')} on host {owner.get('host')!r}{since}"
    if is_this_process(owner):
        held = (f"is held by the process that took up this point ({holder}), through a lock taken outside this "
                f"point's training (by hand, or by another of its threads): left to that lock")
    else:
        held = f"is being trained by another process ({holder}): left to that process"
    warnings.warn(f"run folder {str(run_dir)!r} {held}, nothing trained and nothing written in the run folder",
                  RunLeft, stacklevel=3)


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
    start ("Type: message" of the refused resume), "fresh": whether the run was started from the start, as planned
    or as a restart, "state": the folder's :func:`nclib.sweepmanifest.folder_state` after}``; ``restarted`` and
    ``fresh`` are set once the locked folder is given to a training from the start, so a training that then fails or
    diverges still reports the run it replaced.  A stopped, dead or failed
    run whose resume is refused (the code changed since, say) is trained again from the start only with
    ``restart_refused``, with a :class:`RunRestarted` warning naming it, given before that training; without it, the
    run is left as it is, an
    error whose message says what resumes it (:data:`RESUME_ADVICE`).  A failed run is no exception: it holds the
    checkpoint of an earlier stop (a job's SIGTERM, its time limit or ``scancel``, that comes while the run's folder
    is opened or finished, outside the epoch loop, ends a run resumed from one as failed), and what it holds is
    deleted only where the caller asks.  A folder that, once locked, holds a run with
    other defining parameters (another call made it after this call's :func:`plan`) is an error too, the refusal of
    :func:`plan`, and its run is left as it is; so is a run it would keep that was trained on other data than
    ``data_path`` holds now (:func:`nclib.sweepplan.refuse_other_data`)."""
    run_dir = pathlib.Path(params["out_dir"]) / params["run_name"]
    error = restarted = None
    fresh = False  # set as the plan answers "start", before training: a run that then fails was replaced all the same
    try:
        from . import train

        want = parameters.defining_params(params)

        try:
            def first(dirs, statuses):  # the folder as it is now: another call may have made its run meanwhile
                nonlocal fresh
                refuse_other_run(dirs[0], want, params)
                step = step_for_status(dirs[0], statuses[0])
                if step == "keep":  # a run is kept only for the data it was trained on
                    refuse_other_data(params, dirs[0])
                fresh = step == "start"
                return step

            train.run_under_lock([params], first)
        except ResumeRefused as refused:
            why, told = f"{type(refused).__name__}: {refused}", str(refused)

            def again(dirs, statuses):  # locked again: a run that another process finished meanwhile is kept
                nonlocal fresh, restarted
                refuse_other_run(dirs[0], want, params)
                if statuses[0] in FINAL:
                    refuse_other_data(params, dirs[0])
                    return "keep"
                if restart_refused and statuses[0] in RESUMABLE:
                    # a run is deleted only where the caller asks for it, a failed one too (a SIGTERM outside the
                    # epoch loop fails a run that resumed from a checkpoint); the table and a note say so, now that
                    # the run is given up, so that a new training that fails or diverges cannot lose them
                    restarted, fresh = why, True
                    warnings.warn(f"run folder {str(run_dir)!r} is trained again from the start, deleting what it "
                                  f"held (restart_refused, --restart-refused): its resume was refused ({why})",
                                  RunRestarted, stacklevel=4)
                    return "start"
                raise ResumeRefused(f"{told}; {RESUME_ADVICE}", run_dir)

            train.run_under_lock([params], again)
    except RunLockedElsewhere as exc:  # a writer on another host, whose end cannot be seen from here: an error,
        error = f"{type(exc).__name__}: {exc}"  # whose message names the lock file to remove
    except RunFolderBusy as exc:  # a live process (another, or this one) holds the run folder's lock: its run, not an
        _leave(run_dir, exc.owner)  # error of this one; a note names it, where a second task of the point said nothing
    except Exception as exc:  # noqa: BLE001 - a failing run is reported, the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    return {"status": run_status(run_dir), "error": error, "state": folder_state(run_dir), "restarted": restarted,
            "fresh": fresh}


# --------------------------------------------------------------------------------------------- the sweep

def task_resources(params: dict, resources: dict | None = None) -> dict | None:
    """The Dask resources a run asks its worker for (:ref:`ch-sweeps`): ``resources`` when given, else
    ``{"GPU": 1}`` for a run with ``device="cuda..."`` (one run per GPU at a time) and None otherwise.  ValueError
    naming ``params`` unless a parameter set with its device, ``resources`` unless None or a dict of resource name
    -> positive amount (:func:`resource_amount`)."""
    if not isinstance(params, dict) or "device" not in params:
        raise ValueError(f"params must be a run's parameter set, a dict with its device, got {params!r:.200}")
    if resources is not None:
        return _checked_resources(resources)
    return {"GPU": 1} if str(params["device"]).startswith("cuda") else None


def _checked_resources(resources) -> dict:
    """``resources`` of :func:`run_sweep` and :func:`task_resources`, a dict of resource name -> positive amount
    (:func:`resource_amount`), returned as a new dict; ValueError naming ``resources`` otherwise."""
    if not isinstance(resources, dict) or not all(isinstance(k, str) for k in resources):
        raise ValueError(f"resources must be a dict of resource name -> positive amount, got {resources!r:.200}")
    return {k: resource_amount(k, v, "resources") for k, v in resources.items()}


def resource_amount(name: str, value, what: str):
    """``value``, the amount of the Dask resource ``name`` that a sweep's runs ask for and its workers hold
    (:func:`run_sweep`'s ``resources``, ``--resources NAME=AMOUNT`` of its command line), returned as it is: a positive
    int or float.  ValueError naming ``what`` (the argument it came in) and the resource otherwise: a bool, text,
    zero, a negative amount, NaN or an infinite one (no amount of a GPU or a licence: on the workers of a
    scheduler, which hold finite amounts, a run asking for it would wait forever)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} {name}: a positive amount expected, got {value!r}")
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"{what} {name}: a finite amount expected, got {value!r}")
    return value


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system has one, else the machine's count): the
    default number of workers of a local cluster (:func:`run_sweep`)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _client(scheduler, workers, worker_resources, runs: int | None = None):
    """A dask Client: to ``scheduler`` (an address or a cluster object), else to a new LocalCluster of ``workers``
    single-threaded processes (each holding ``worker_resources``; by default one per core, but no more than the
    ``runs`` to train, or one where the runs ask for resources), without a dashboard; returns (client, cluster or
    None).  ValueError naming ``scheduler`` where no scheduler answers there."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler), None
        except OSError as exc:  # refused, timed out (distributed.comm.timeouts.connect), or no such host
            shown = scheduler if isinstance(scheduler, str) else type(scheduler).__name__
            raise ValueError(f"scheduler (--scheduler) {shown!r}: no Dask scheduler answered there "
                             f"({type(exc).__name__}: {exc}); start one (dask scheduler) or correct the address; "
                             f"nothing was recorded or trained") from None
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
    kept, left to the live process writing it (a :class:`RunLeft` warning names it), resumed or started again as
    :func:`next_step` says (finished and
    diverged runs kept, each once its data are found to be what its ``data_path`` holds now, else an error of the
    table, :class:`nclib.runs.OtherData`, and nothing trained; stopped, dead and failed ones resumed from their
    checkpoint, or started again without one), decided again by each worker once it holds the run folder's lock.  A
    stopped, dead or failed run whose resume is refused (another commit, device or CPU model) is an error saying what
    resumes it, or with ``restart_refused=True`` starts again (the table's ``restarted`` says why, and a
    :class:`RunRestarted` warning names it). ``scheduler``: None (a LocalCluster of ``workers`` processes, one thread
    each; by default one per core but no more than the runs to train, or a single one when the runs ask for
    resources, as ``device="cuda..."`` runs do), a
    scheduler address ``"tcp://HOST:8786"`` or a dask cluster object (dask-jobqueue's ``SLURMCluster``...); any
    other value, a malformed address included, is refused by name before anything is planned or written.  A call
    with runs to train reaches its scheduler before it records itself in ``sweep.json``: one where no scheduler
    answers within Dask's connect timeout (``distributed.comm.timeouts.connect``, 30 s by default) is a ValueError
    naming ``scheduler``, the record left as it was; a call with nothing to train reaches no cluster.
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
            error = kept_run_error(item["params"], out_dir / name, loaded) if step == "keep" else None
            if error is not None:  # trained on other data: neither kept as this point's run nor trained again
                other[name] = {"status": status, "error": error, "state": folder_state(out_dir / name)}
            elif step in ("keep", "leave"):
                kept.append(name)
                owner = lock_owner(out_dir / name) if step == "leave" else None
                if owner is not None:  # None: its writer has ended since, and the table gives what it left
                    _leave(out_dir / name, owner)
            else:
                todo.append(item["params"])

        def record(m):  # written now, with nothing to train too: an error that a kept run's folder has replaced
            record_call(m, call, planned, out_dir, kept)  # is gone from it
            for name, result in other.items():
                record_result(m, name, result)

        asks = [task_resources(p, resources) for p in todo]
        need = {}  # what the local cluster's workers hold: the largest amount any run asks for, per resource
        for ask in asks:
            for k, v in (ask or {}).items():
                need[k] = max(need.get(k, 0), v)
        client = cluster = None
        # a scheduler is reached before the call is recorded: one that does not answer (a mistyped address) leaves
        # sweep.json as it was; a local cluster starts after, and one that does not start leaves its points absent
        if todo and scheduler is not None:
            client, cluster = _client(scheduler, workers, need, runs=len(todo))
        try:
            update_manifest(out_dir, record)
            if todo:
                if client is None:
                    client, cluster = _client(scheduler, workers, need, runs=len(todo))
                _train_on_dask(client, todo, asks, need, out_dir, restart_refused, progress)
        finally:
            if client is not None:
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
    _check_scheduler(scheduler)
    if resources is not None:
        _checked_resources(resources)  # the rule task_resources applies to each run, before anything is planned
    return workers, progress, restart_refused


def _check_scheduler(scheduler) -> None:
    """Refuse a ``scheduler`` that is neither None, a cluster object (one with a ``scheduler_address``, as
    :class:`dask.distributed.LocalCluster` and dask-jobqueue's clusters have) nor an address of the form that
    :class:`dask.distributed.Client` reads, ``[SCHEME://]HOST:PORT`` (``tcp://HOST:8786``; the scheme tcp when left
    out; any scheme Dask knows, the location of one without a host and port, ``inproc``, as Dask reads it), with a
    ValueError naming ``scheduler (--scheduler)``: a mistyped address is refused here, before anything is planned
    or written, rather than by Dask after the call is recorded."""
    if scheduler is None or isinstance(getattr(scheduler, "scheduler_address", None), str):
        return
    refusal = (f"scheduler (--scheduler) must be the address of a running Dask scheduler, tcp://HOST:PORT (as "
               f"tcp://HOST:8786), or from Python a cluster object, got {scheduler!r}")
    if not isinstance(scheduler, str):
        raise ValueError(refusal)
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address

    try:
        scheme, location = parse_address(scheduler)
        backend = registry.get_backend(scheme)
    except ValueError as exc:  # an unknown scheme
        raise ValueError(f"{refusal}: {exc}") from None
    try:
        host, port = backend.get_address_host_port(location)
    except NotImplementedError:  # a scheme whose locations are no host and port (inproc)
        return
    except ValueError as exc:  # no port, a port that is no number, an IPv6 host without brackets
        raise ValueError(f"{refusal}: {exc}") from None
    if not host or not 0 < port < 65536:
        raise ValueError(f"{refusal}: a host and a port from 1 to 65535 expected")


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
    data their ``data_path`` holds now, as the task compares them (:func:`nclib.sweepplan.kept_run_error`, each data
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
            other = kept_run_error(item["params"], run_dir, loaded)
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
    finished is kept, one it trains is left to it, with a :class:`RunLeft` warning naming its pid and host).  The
    task records every point of the grid and its run's
    outcome in ``sweep.json`` (under that file's own lock) and writes no ``sweep.csv``: :func:`summary`
    (``--summary-only``) writes the table of all the tasks' runs once they have ended.  A run folder whose
    ``provenance.json`` is damaged reads "dead" (:func:`nclib.runs.recorded_status`): a warning naming the file says
    so (a note of the command line) before the run is resumed or trained again.  Returns the run's row of the table.
    SIGTERM, while :func:`nclib.locks.sigterm_raises` holds (the command line), raises :class:`nclib.locks.Terminated`
    through this call: sent while the run trains, once the run has stopped with a checkpoint at its next metric
    epoch, as ``max_train_s`` stops it (its ``stopped_run`` the run folder: the next task resumes it), else at once,
    its ``failed_run`` the run folder that the signal ended as failed (as while the run's folder was being opened or
    finished, or a second SIGTERM while the stop was pending, before the run reached its metric epoch; once the stop
    has begun a further SIGTERM is only noted), its ``diverged_run`` the run folder where the run diverged at the
    metric epoch where the signal would have stopped it, all None where it came before the task had opened its
    run (while it imported torch or loaded the data) or once the run had trained its last epoch.  Points are checked
    as :func:`plan` checks them (for this machine); ValueError naming ``point`` for an index outside the grid."""
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
    run_dir = out_dir / params["run_name"]
    before = folder_state(run_dir)
    try:
        result = _run_point(params, restart_refused)
    except Terminated as exc:  # SIGTERM: whether it stopped this task's run, ended it as failed, or came before
        status = recorded_status(run_dir) if folder_state(run_dir) != before else None  # the task wrote the folder
        exc.stopped_run = run_dir if status == "stopped" else None
        exc.failed_run = run_dir if status == "failed" else None
        exc.diverged_run = run_dir if status == "diverged" else None
        raise
    _warn_again(result)
    manifest = update_manifest(out_dir, lambda m: record_result(m, params["run_name"], result))
    grid_keys = list(planned[point]["point"])
    row, _ = table_row(out_dir, params["run_name"], planned[point]["point"], manifest, grid_keys)
    return pd.DataFrame([row])


if __name__ == "__main__":
    # run as ``python -m nclib.sweep`` this module is ``__main__``: Dask would send _run_point by value, with the
    # module's globals (a lock among them, which cannot be pickled); the module imported by name is sent by reference
    from nclib import sweep as _sweep

    table = _sweep.main()
    sys.exit(_sweep.exit_status(table) if "status" in table else 0)  # a list of points (--list-points) is no outcome
