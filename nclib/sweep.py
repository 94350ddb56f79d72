"""Sweeps of the training engine (objective (4.3), :mod:`nclib.train`) over a grid of parameters, on Dask
distributed (:ref:`ch-sweeps`).

A sweep is a grid (parameter -> list of values) and fixed parameters (parameter -> one value), over any
parameter of :data:`nclib.train.DEFAULTS`.  Every grid point is one run of :func:`nclib.train.run`, written to
its own run folder ``OUT_DIR/<run name>`` (the name is made from the point's grid values, e.g.
``lam_W-0.001_seed-1``), and the sweep ends with one table, ``OUT_DIR/sweep.csv``, of every run's parameters,
status and final metrics, read back from the run folders (so :func:`summary` rebuilds it without training).
Every point is validated by :func:`nclib.parameters.check_params` before anything is submitted.  Running the same
sweep again reads each run folder's state with :func:`nclib.runs.run_status` and keeps the finished (and the
diverged) runs, resumes (``resume=True``) from its checkpoint a run that ``max_train_s`` stopped, a "dead" one
(whose process was killed) and a failed one (an error after such a stop), starts again such a run without a
checkpoint, and leaves alone a run that another live process is writing (it holds the run folder's lock; the
table reports it as "running").  A failing run is written to the table with its error and does not stop the
others.

Command line::

    python -m nclib.sweep --grid lam_W=1e-4,1e-3,1e-2 --grid seed=0,1 \\
        --set dataset=synthetic --set epochs=200 --set width=64 --set batch_size=full \\
        --out-dir runs/decays [--workers 2]

``--grid NAME=V1,V2,...`` and ``--set NAME=VALUE`` take any parameter of :data:`nclib.train.DEFAULTS`; each
value is read by :func:`nclib.parameters.parse_value`, the grammar of every command line of the repository (a
list in brackets, ``--set counts=[500,100,20]``, ``--grid lr_milestones=[100],[100,150]``; a path or a name as
given; else a number, ``true``/``false``/``none`` or the text).  ``--tie NAME=GRIDNAME`` gives the parameter NAME
the value of the grid parameter GRIDNAME at every point (``--grid lam_W=1e-3,1e-2 --tie lam_H=lam_W`` sweeps the two
decays together, lam_W = lam_H; from Python ``tie={"lam_H": "lam_W"}``): the run folder is named after the grid
values alone (``lam_W-0.001``) and the table has a column for the tied parameter too.  ``--summary-only`` rewrites
the table from the run folders and starts no run (``--grid``, ``--set`` and ``--tie`` are refused with it).  The
command prints the table's main columns (each error cut short: ``sweep.csv`` holds it whole) and exits with status
1 when a run failed or carries an error (:func:`exit_status`; a divergence is a result, status 0), 3 when another
sweep is running in the same ``--out-dir`` (:class:`SweepBusy`).

Where the runs go:

- By default a :class:`dask.distributed.LocalCluster` on this machine: ``--workers N`` processes (default one
  per core), one thread each (dask sets ``OMP_NUM_THREADS=1`` in its workers, so N runs use N cores).
- ``--scheduler tcp://HOST:8786``: the workers of a running Dask cluster, started for instance with
  ``dask scheduler`` on one machine and ``dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1`` on others.
  The run folders are written by the workers: ``--out-dir`` must be on a file system they all share (and
  the client validates the parameters, ``data_path`` included, against its own view of it).
- GPUs: a run with ``device=cuda`` asks for the Dask resource ``GPU=1`` (``--resources`` sets another
  request), so that each GPU trains one run at a time.  Start one worker per GPU, each seeing its own card::

      CUDA_VISIBLE_DEVICES=0 dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1 --resources GPU=1
      CUDA_VISIBLE_DEVICES=1 dask worker tcp://HOST:8786 --nworkers 1 --nthreads 1 --resources GPU=1

  (``--resources GPU=2`` on a worker lets two small runs share its card).  Without ``--scheduler``, a sweep
  with ``device=cuda`` starts a local cluster of ``--workers`` workers (default 1) that each hold ``GPU=1``;
  they all see every card and train on the first (``cuda`` is ``cuda:0``), so on a machine with several GPUs
  start one worker per card as above.
- Slurm or PBS through ``dask-jobqueue`` (``pip install dask-jobqueue``), from Python::

      from dask_jobqueue import SLURMCluster          # or PBSCluster
      cluster = SLURMCluster(cores=1, processes=1, memory="8GB", walltime="04:00:00",
                             job_extra_directives=["--gres=gpu:1"], worker_extra_args=["--resources", "GPU=1"])
      cluster.scale(jobs=8)                           # eight batch jobs, one worker (one GPU) each
      nclib.sweep.run_sweep(grid, fixed, "runs/decays", scheduler=cluster)

  or start ``dask scheduler`` on a login node and submit ``dask worker tcp://LOGIN:8786 ...`` as batch jobs,
  then pass ``--scheduler tcp://LOGIN:8786``.

One sweep at a time may use an output folder (a lock file, ``OUT_DIR/.sweep.lock``, refuses a second one): each
run folder has its own lock (:func:`nclib.runs.lock_run`), but ``sweep.json`` and ``sweep.csv`` belong to the
whole folder.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import logging
import os
import pathlib
import re
import sys
import uuid
import warnings

import numpy as np
import pandas as pd

from . import parameters, runs
from .parameters import DEFAULTS, EXECUTION_KEYS
from .rounding import written
from .runs import (CLASS_ACCURACY, HISTORY_COLUMNS, RESUMABLE, ResumeRefused, RunExists, RunFolderBusy,
                   RunLockedElsewhere, atomic_write_text, check_run_name, load_class_accuracy, load_run, plan_runs,
                   run_status)

#: The table a sweep writes into its output folder, and the record of its grid points (run name -> point).
SUMMARY = "sweep.csv"
MANIFEST = "sweep.json"
LOCK = ".sweep.lock"

#: Parameters of :func:`nclib.train.run` that the sweep sets itself: where each run goes, whether it resumes or
#: replaces a folder, and the progress bars (one for the whole sweep instead of one per run).
SWEEP_KEYS = ("out_dir", "run_name", "resume", "overwrite", "progress")

#: Statuses (:func:`nclib.runs.run_status`) that a rerun of the sweep keeps: a finished run, and a diverged one
#: (the divergence is the result of its parameters; delete its folder to train it again).
FINAL = ("finished", "diverged")

#: What a sweep does with a run folder (:func:`next_step`): "keep" it (finished or diverged), "leave" it to the live
#: process that writes it, "resume" it from its checkpoint, or "start" it (again) from epoch 0.
STEPS = ("keep", "leave", "resume", "start")

_SAFE = re.compile(r"[^A-Za-z0-9.+-]")


# --------------------------------------------------------------------------------------------- the grid

def parse_grid(items) -> dict:
    """``["lam_W=1e-4,1e-3", "seed=0,1"]`` (the ``--grid`` arguments) -> ``{"lam_W": [1e-4, 1e-3], "seed": [0, 1]}``:
    the values are the text's items at its commas outside brackets, each read by :func:`nclib.parameters.parse_value`
    (with the parameter's name, so a text key's values stay text); ValueError naming the argument for a missing
    '=', an empty value, a value that grammar refuses or a parameter given twice."""
    grid: dict = {}
    for item in items:
        name, text = parameters.split_setting(item, "--grid")
        if name in grid:
            raise ValueError(f"--grid {name}: given twice")
        grid[name] = [parameters.parse_value(t, name, "--grid")
                      for t in parameters.split_items(text, f"--grid {name}")]
    return grid


def parse_fixed(items) -> dict:
    """``["dataset=synthetic", "counts=[4,2,1]"]`` (the ``--set`` arguments) -> ``{"dataset": "synthetic",
    "counts": [4, 2, 1]}``, each read by :func:`nclib.parameters.parse_setting`; one value each (a comma outside
    brackets, which ``--grid`` reads as several values, is refused); ValueError naming the argument otherwise."""
    fixed: dict = {}
    for item in items:
        name, text = parameters.split_setting(item, "--set")
        if name in fixed:
            raise ValueError(f"--set {name}: given twice")
        if len(parameters.split_items(text, f"--set {name}")) > 1:
            raise ValueError(f"--set {name}: one value expected (a list goes in brackets, [a,b]); sweep several "
                             f"values with --grid")
        fixed[name] = parameters.parse_value(text, name, "--set")
    return fixed


def parse_tie(items) -> dict:
    """``["lam_H=lam_W"]`` (the ``--tie`` arguments) -> ``{"lam_H": "lam_W"}``: each tied parameter and the grid
    parameter whose value it takes (a name, never parsed as a value); ValueError naming the argument for a missing
    '=' or a name given twice."""
    tie: dict = {}
    for item in items:
        name, text = parameters.split_setting(item, "--tie")
        if name in tie:
            raise ValueError(f"--tie {name}: given twice")
        tie[name] = text.strip()
    return tie


def _plain(v):
    """A value as JSON has it: numpy scalars and arrays (``np.logspace(-4, -1, 4)``) as Python numbers and lists."""
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _check_names(grid: dict, fixed: dict) -> None:
    for what, d in (("grid", grid), ("fixed", fixed)):
        if not isinstance(d, dict):
            raise ValueError(f"{what} must be a dict of parameter -> {'list of values' if what == 'grid' else 'value'}"
                             f", got {type(d).__name__}")
        unknown = [k for k in d if k not in DEFAULTS]
        if unknown:
            raise ValueError(f"{what}: unknown parameter(s) {unknown}; the parameters of nclib.train.run are "
                             f"{sorted(DEFAULTS)}")
        own = [k for k in d if k in SWEEP_KEYS]
        if own:
            raise ValueError(f"{what}: {own} set by the sweep itself (each run goes to out_dir/<run name>, "
                             f"is resumed or replaced as its folder requires, under one progress bar)")
    execution = [k for k in grid if k in EXECUTION_KEYS]
    if execution:
        raise ValueError(f"grid: {execution} say how a call trains, not what a run is; give them in fixed")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{both} given both in grid and in fixed")
    for k, values in grid.items():
        if (not isinstance(values, (list, tuple, np.ndarray)) or (isinstance(values, np.ndarray) and values.ndim == 0)
                or len(values) == 0):
            raise ValueError(f"grid[{k!r}] must be a non-empty list of values, got {values!r}")


def _check_tie(tie, grid: dict, fixed: dict) -> dict:
    """``tie`` (tied parameter -> grid parameter) checked against the grid and the fixed parameters: a tied
    parameter is a parameter of the run that neither the grid nor ``fixed`` sets, tied to a parameter of the grid."""
    if tie is None:
        return {}
    if not isinstance(tie, dict):
        raise ValueError(f"tie must be a dict of parameter -> grid parameter, got {type(tie).__name__}")
    for name, to in tie.items():
        if name not in DEFAULTS:
            raise ValueError(f"tie: unknown parameter {name!r}; the parameters of nclib.train.run are "
                             f"{sorted(DEFAULTS)}")
        if name in SWEEP_KEYS or name in EXECUTION_KEYS:
            raise ValueError(f"tie[{name!r}]: {name} says how a call trains or is set by the sweep itself; it "
                             f"cannot follow a grid parameter")
        if name in grid:
            raise ValueError(f"tie[{name!r}]: {name} is also in the grid (a tied parameter takes the values of "
                             f"another)")
        if name in fixed:
            raise ValueError(f"tie[{name!r}]: {name} is also fixed (a tied parameter takes the values of a grid "
                             f"parameter)")
        if not isinstance(to, str) or to not in grid:
            raise ValueError(f"tie[{name!r}] = {to!r}: not a parameter of the grid {sorted(grid)}")
    return dict(tie)


def expand_grid(grid: dict, tie: dict | None = None) -> list[dict]:
    """Every point of ``grid`` (parameter -> list of values): the cartesian product, parameters in the order of
    :data:`nclib.train.DEFAULTS`, values in the order given (the last parameter varies fastest); ``{}`` has one
    point, ``{}``.  ``tie`` (parameter -> grid parameter, e.g. ``{"lam_H": "lam_W"}``) adds each tied parameter
    to every point with the value of the grid parameter it follows (:ref:`ch-sweeps`)."""
    _check_names(grid, {})
    tie = _check_tie(tie, grid, {})
    keys = [k for k in DEFAULTS if k in grid]
    points = [dict(zip(keys, combo)) for combo in itertools.product(*([_plain(v) for v in grid[k]] for k in keys))]
    order = [k for k in DEFAULTS if k in grid or k in tie]
    return [{k: point[k] if k in point else point[tie[k]] for k in order} for point in points]


def _value_text(v) -> str:
    if v is None or isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "_".join(_value_text(x) for x in v) or "empty"
    return str(v)


def run_name_for(point: dict) -> str:
    """The run folder's name of a grid point: ``NAME-VALUE`` joined by ``_`` (``L-3_lam_W-0.001_seed-1``), only
    the characters ``A-Za-z0-9.+-_``; a value with other characters (a path) is replaced by ``_``s and the
    name gets the first 8 hex digits of the point's sha256, as does a name past 120 characters; ``{}`` ->
    ``"run"``."""
    if not point:
        return "run"
    lossy, parts = False, []
    for k, v in point.items():
        text = _value_text(v)
        safe = _SAFE.sub("_", text)
        lossy |= safe != text
        parts.append(f"{k}-{safe}")
    name = "_".join(parts)
    if lossy or len(name) > 120:
        digest = hashlib.sha256(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = f"{name[:110]}-h{digest}"
    return check_run_name(name)  # never fails: "NAME-..." has no separator and is never "." or ".."


def plan(grid: dict, fixed: dict | None, out_dir, remote: bool = False, tie: dict | None = None) -> list[dict]:
    """The checked parameters of every run of the sweep (:func:`nclib.parameters.check_params` of fixed + point,
    with ``out_dir`` and the point's run name), in grid order; nothing is written.  ``tie``: parameters that take
    the value of a grid parameter at every point (:func:`expand_grid`); the run name is made from the grid
    values alone.  ValueError naming the parameter when a point is refused, two points are the same run, or an
    existing run folder holds a run with other parameters.  ``remote``: the runs train on other machines, which
    are taken to have a GPU (:func:`nclib.parameters.checked` with ``cuda=True``): ``device="cuda"`` and the
    GPU-only ``steps_per_graph`` are accepted where this machine has none, and each worker checks them again."""
    fixed = {} if fixed is None else fixed
    _check_names(grid, fixed)
    tie = _check_tie(tie, grid, fixed)
    fixed = {k: _plain(v) for k, v in fixed.items()}
    if out_dir is None:
        raise ValueError("out_dir must be a folder for the run folders and sweep.csv, got None")
    out_dir = pathlib.Path(out_dir).resolve()
    planned, seen = [], {}
    for point in expand_grid(grid, tie):
        name = run_name_for({k: v for k, v in point.items() if k not in tie})
        q = {**fixed, **point, "out_dir": str(out_dir), "run_name": name, "progress": False}
        try:
            p = parameters.checked(q, cuda=True if remote else None)
        except ValueError as exc:
            raise ValueError(f"grid point {name}: {exc}") from None
        # what the point is: the run, and where it trains (a grid over device compares devices)
        key = json.dumps(runs.json_values({**parameters.defining_params(p), "device": p["device"]}), sort_keys=True)
        if name in seen or key in seen.values():
            other = name if name in seen else next(n for n, s in seen.items() if s == key)
            raise ValueError(f"grid: points {other} and {name} are the same run (a value listed twice?)")
        seen[name] = key
        if (out_dir / name / "params.json").is_file():
            differ = runs.differing_params(out_dir / name, parameters.defining_params(p))
            # and a run trained on a CPU is not kept for a GPU (asked only then, so that torch answers for "auto"
            # only then; on remote workers "auto" is not known here)
            if runs.recorded_device_type(out_dir / name) == "cpu" and not (remote and p["device"] == "auto"):
                kind = parameters.required_device_type(p["device"], True if remote else None)
                differ.update(runs.device_difference(out_dir / name, kind))
            if differ:
                raise ValueError(f"run folder {str(out_dir / name)!r} holds a run with other parameters: "
                                 f"{runs.differences_text(differ)}; use another out_dir (or delete the folder)")
        planned.append({"point": point, "params": p})
    return planned


# --------------------------------------------------------------------------------------------- one run

def next_step(run_dir) -> tuple[str, str]:
    """(status, step) of a run folder on a rerun of a sweep (:ref:`ch-sweeps`): its :func:`nclib.runs.run_status`
    and one of :data:`STEPS`.  Finished and diverged runs are kept; a run another live process writes (it holds
    the folder's lock) is left to it; a stopped, dead (killed without recording an end) or failed run
    (:data:`nclib.runs.RESUMABLE`) is resumed where :func:`nclib.runs.plan_runs` finds a checkpoint to resume
    from, as ``resume="auto"`` of the command line and the training notebook do, else started again, as is an
    absent one (and a failed run whose resume is refused, :func:`_run_point`)."""
    status = run_status(run_dir)
    if status in FINAL:
        return status, "keep"
    if status == "running":
        return status, "leave"
    if status in RESUMABLE:
        try:
            return status, "resume" if plan_runs([run_dir]) == "resume" else "start"
        except RunFolderBusy:  # a process took the lock since run_status read the folder
            return "running", "leave"
        except RunExists:  # no checkpoint to continue from
            return status, "start"
    return status, "start"


def _run_point(params: dict) -> dict:
    """Train (or resume, or skip) one grid point on a worker; never raises for the run's own failure: returns
    ``{"status": the folder's run_status after, "error": None or "Type: message", "restarted": None or why a failed
    run was trained again from the start ("Type: message" of the refused resume), "fresh": whether the run was
    started from the start as planned}``."""
    run_dir = pathlib.Path(params["out_dir"]) / params["run_name"]
    status, step = next_step(run_dir)  # read again here: a retried task finds what its first attempt left
    if step in ("keep", "leave"):
        return {"status": status, "error": None, "restarted": None, "fresh": False}
    error = restarted = None
    try:
        from . import train

        try:
            train.run(**{**params, "resume": step == "resume", "overwrite": step == "start"})
        except ResumeRefused as refused:
            if run_status(run_dir) != "failed":  # read again: another process may have finished it since
                raise
            # a failed run whose checkpoint cannot continue (the code changed since, say) starts again: the
            # checkpoint was a convenience, and a failed run is never kept as a result; the table says so
            restarted = f"{type(refused).__name__}: {refused}"
            train.run(**{**params, "resume": False, "overwrite": True})
    except RunLockedElsewhere as exc:  # a writer on another host, whose end cannot be seen from here: an error,
        error = f"{type(exc).__name__}: {exc}"  # whose message names the lock file to remove
    except RunFolderBusy:  # another process took the run folder's lock first: its run, not an error of this one
        pass
    except Exception as exc:  # noqa: BLE001 - a failing run is reported, the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    return {"status": run_status(run_dir), "error": error, "restarted": restarted, "fresh": step == "start"}


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


class SweepBusy(RuntimeError):
    """Another sweep holds the output folder's lock (``OUT_DIR/.sweep.lock``): :func:`run_sweep` refuses to run
    a second sweep in the same folder while the first is running."""


@contextlib.contextmanager
def _lock(out_dir: pathlib.Path):
    """Hold ``OUT_DIR/.sweep.lock`` (an exclusive flock) for the sweep; :class:`SweepBusy` when another sweep
    holds it.

    Not the lock of a run folder (:func:`nclib.runs.lock_run`, taken by :func:`nclib.train.run` for each run):
    this one guards what belongs to the whole output folder, the read-modify-write of ``sweep.json`` (the grid
    points and the errors of runs without a folder) and ``sweep.csv``, which two sweeps would overwrite."""
    import fcntl

    with open(out_dir / LOCK, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepBusy(f"another sweep is running in {str(out_dir)!r} (it holds {LOCK}); wait for it to "
                            f"end, or give this sweep another --out-dir") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read_manifest(out_dir: pathlib.Path) -> dict:
    path = out_dir / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {"runs": {}, "errors": {}}


def _client(scheduler, workers, worker_resources):
    """A dask Client: to ``scheduler`` (an address or a cluster object), else to a new LocalCluster of ``workers``
    single-threaded processes (each holding ``worker_resources``); returns (client, cluster or None)."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler), None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = (1 if worker_resources else cores) if workers is None else workers
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                           resources=worker_resources or None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


def run_sweep(grid: dict, fixed: dict | None = None, out_dir=None, workers: int | None = None, scheduler=None,
              resources: dict | None = None, progress: bool = True, tie: dict | None = None) -> pd.DataFrame:
    """Train every point of ``grid`` (parameter -> list of values) with the parameters ``fixed`` (parameter ->
    value) on Dask, one run folder each under ``out_dir``, and return the sweep's table (also written to
    ``out_dir/sweep.csv``, :func:`summary`).  The sweeps of :ref:`ch-sweeps`: objective (4.3) trained by
    :func:`nclib.train.run` across its parameters.

    Every point is checked (:func:`plan`) before anything is submitted.  A run folder already in ``out_dir`` is
    kept, left to the live process writing it, resumed or started again as :func:`next_step` says (finished
    and diverged runs kept; stopped, dead and failed ones resumed from their checkpoint, or started again without
    one).
    ``scheduler``: None (a LocalCluster of ``workers`` processes, default one per core, one thread each), a
    scheduler address ``"tcp://HOST:8786"`` or a dask cluster object (dask-jobqueue's ``SLURMCluster``...).
    ``resources``: the Dask resources each run asks for (default ``{"GPU": 1}`` for a run with
    ``device="cuda..."``, none otherwise).  ``progress``: a tqdm bar over the finished runs.  ``tie``: parameters
    that take the value of a grid parameter at every point, ``{"lam_H": "lam_W"}`` for lam_H = lam_W (each must be a
    parameter of the run set neither by the grid nor by ``fixed``, and follow a parameter of the grid); the run
    folders are named after the grid values and the table has a column for each tied parameter.
    :class:`SweepBusy` when another sweep is running in ``out_dir``."""
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer (or None: one per core), got {workers!r}")
    if workers is not None and scheduler is not None:
        raise ValueError("workers sets the size of the local cluster; with scheduler the cluster's own workers "
                         "run the sweep")
    if resources is not None:
        if not isinstance(resources, dict) or not all(isinstance(k, str) for k in resources):
            raise ValueError(f"resources must be a dict of resource name -> positive amount, got {resources!r}")
        for k, v in resources.items():
            _resource_amount(k, v, "resources")
    planned = plan(grid, fixed, out_dir, remote=scheduler is not None, tie=tie)
    tie = dict(tie or {})
    grid = {k: [_plain(v) for v in values] for k, values in grid.items()}
    fixed = {k: _plain(v) for k, v in (fixed or {}).items()}
    out_dir = pathlib.Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _lock(out_dir):
        manifest = _read_manifest(out_dir)
        manifest.update(format=1, grid=grid, fixed=fixed, tie=tie)
        manifest.setdefault("errors", {})
        for item in planned:
            manifest["runs"][item["params"]["run_name"]] = item["point"]
        todo = []
        for item in planned:
            name = item["params"]["run_name"]
            if next_step(out_dir / name)[1] in ("keep", "leave"):
                manifest["errors"].pop(name, None)  # the folder says what the run is now
            else:
                todo.append(item["params"])
        # written now, with nothing to train too: an error that a kept run's folder has replaced is gone from it
        atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, default=str))

        asks = [task_resources(p, resources) for p in todo]
        if todo:
            need = {}
            for ask in asks:
                for k, v in (ask or {}).items():
                    need[k] = max(need.get(k, 0), v)
            client, cluster = _client(scheduler, workers, need)
            try:
                from dask.distributed import as_completed
                from tqdm import tqdm

                held = [w.get("resources", {}) for w in client.scheduler_info().get("workers", {}).values()]
                lacking = sorted(k for k, v in need.items() if not any(r.get(k, 0) >= v for r in held))
                if lacking:  # a cluster that scales up (dask-jobqueue) may still add such workers
                    warnings.warn(f"no worker of the cluster holds the resources {lacking} that the runs ask "
                                  f"for; they wait until one joins (start workers with --resources, e.g. "
                                  f"GPU=1)", stacklevel=2)
                tag = uuid.uuid4().hex[:8]
                futures = {client.submit(_run_point, p, key=f"train-{p['run_name']}-{tag}", pure=False,
                                         resources=ask): p["run_name"] for p, ask in zip(todo, asks)}
                failed = 0
                with tqdm(total=len(futures), desc="sweep", unit="run", disable=not progress) as bar:
                    for fut in as_completed(futures):
                        name = futures[fut]
                        try:
                            result = fut.result()
                        except Exception as exc:  # noqa: BLE001 - the worker died (KilledWorker) or was cancelled
                            result = {"status": run_status(out_dir / name), "error": f"{type(exc).__name__}: {exc}"}
                        # the folder records a diverged or failed run's error itself; others (refused before
                        # the folder was written, a killed worker) are kept in the manifest
                        if result["error"] and result["status"] not in ("diverged", "failed"):
                            manifest["errors"][name] = result["error"]
                        else:
                            manifest["errors"].pop(name, None)
                        if result.get("restarted"):  # kept until a fresh start replaces the run
                            manifest.setdefault("restarted", {})[name] = result["restarted"]
                        elif result.get("fresh"):
                            manifest.get("restarted", {}).pop(name, None)
                        failed += result["error"] is not None
                        bar.set_postfix(errors=failed, refresh=False)
                        bar.update()
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
            atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, default=str))
        return summary(out_dir)


# --------------------------------------------------------------------------------------------- the table

def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def summary(out_dir) -> pd.DataFrame:
    """The sweep's table, one row per run, written to ``out_dir/sweep.csv`` (atomically) and returned: run_name,
    status (:func:`nclib.runs.run_status`; "failed" for a run refused before its folder was written), error, the
    grid parameters, the last recorded epoch and ``final_<metric>`` for each column of ``history.csv``
    (objective (4.3), NC1-NC3, training accuracy, ...), ``class_acc_<k>`` (the training accuracy of class k at
    the last epoch), ``restarted`` (for a failed run that a rerun trained again from the start because its resume
    was refused, the refusal; else empty), wall and training time, device, then every other parameter of the run
    (lists as JSON).
    Read from the run folders only (torch-free), so it is rebuilt without training (:ref:`ch-sweeps`).  The
    rows follow ``sweep.json`` (the grid order); without it, every run folder in ``out_dir`` by name."""
    out_dir = pathlib.Path(out_dir)
    if not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is not a folder")
    manifest = _read_manifest(out_dir)
    runs = manifest.get("runs") or {d.name: {} for d in sorted(out_dir.iterdir())
                                    if d.is_dir() and (d / "params.json").is_file()}
    errors = manifest.get("errors", {})
    restarted = manifest.get("restarted", {})
    grid_keys = list(dict.fromkeys(k for point in runs.values() for k in point))
    skip = set(SWEEP_KEYS) | {"max_train_s"}
    rows = []
    for name, point in runs.items():
        run_dir = out_dir / name
        status = run_status(run_dir)
        row = {"run_name": name, "status": status, "error": None}
        params, prov, hist, classes = dict(point), {}, None, None
        if (run_dir / "params.json").is_file():
            if (run_dir / "history.csv").is_file() and (run_dir / "provenance.json").is_file():
                params, hist, prov = load_run(run_dir)
            else:
                params = json.loads((run_dir / "params.json").read_text())
                if (run_dir / "provenance.json").is_file():
                    prov = json.loads((run_dir / "provenance.json").read_text())
            if (run_dir / CLASS_ACCURACY).is_file():
                classes = load_class_accuracy(run_dir)
        if errors.get(name):  # the last attempt's error where the folder does not record it
            row["status"], row["error"] = ("failed" if status == "absent" else status), errors[name]
        elif prov.get("error"):
            row["error"] = prov["error"]
        for k in grid_keys:
            row[k] = _cell(params.get(k, point.get(k)))
        if hist is not None and hist["epoch"].size:
            row["epoch"] = int(hist["epoch"][-1])
            for col in HISTORY_COLUMNS:
                if col not in ("epoch", "lr", "wall_time"):
                    row[f"final_{col}"] = float(hist[col][-1])
        if classes is not None:
            for k, acc in enumerate(classes["acc"][-1]):
                row[f"class_acc_{k}"] = float(acc)
        # a failed run trained again from the start because its resume was refused: why (sweep.json keeps it)
        row["restarted"] = restarted.get(name)
        for k in ("wall_time_s", "train_time_s", "device_name"):
            row[k] = prov.get(k)
        for k, v in params.items():
            if k not in grid_keys and k not in skip:
                row[k] = _cell(v)
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["run_name", "status", "error", *grid_keys])
    atomic_write_text(out_dir / SUMMARY, df.to_csv(index=False))
    return df


def load_summary(out_dir) -> pd.DataFrame:
    """``out_dir/sweep.csv`` as written by :func:`summary` (:ref:`ch-sweeps`)."""
    path = pathlib.Path(out_dir) / SUMMARY
    if not path.is_file():
        raise ValueError(f"out_dir {str(out_dir)!r} has no {SUMMARY}; run the sweep or summary(out_dir)")
    return pd.read_csv(path)


# --------------------------------------------------------------------------------------------- CLI

def main(argv=None) -> pd.DataFrame:
    """``python -m nclib.sweep --grid NAME=V1,V2 ... --set NAME=VALUE ... --out-dir DIR``: :func:`run_sweep`
    from the shell (:ref:`ch-sweeps`); prints the table's main columns and the path of sweep.csv."""
    ap = argparse.ArgumentParser(prog="python -m nclib.sweep", description=__doc__.split("\n")[0])
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="a parameter of nclib.train.run and its values (repeat for more parameters)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="fixed",
                    help="a parameter of nclib.train.run fixed for every run (repeatable)")
    ap.add_argument("--tie", action="append", default=[], metavar="NAME=GRIDNAME",
                    help="a parameter that takes the value of a grid parameter at every point (lam_H=lam_W)")
    ap.add_argument("--out-dir", required=True, help="the folder of the run folders and sweep.csv")
    ap.add_argument("--workers", type=int, default=None, help="local cluster size (default: one per core)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://HOST:8786")
    ap.add_argument("--resources", action="append", default=[], metavar="NAME=AMOUNT",
                    help="Dask resources each run asks for (default GPU=1 for device=cuda)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--summary-only", action="store_true", help="rewrite sweep.csv from the run folders only")
    ns = ap.parse_args(argv)
    try:
        given = [flag for flag, values in (("--grid", ns.grid), ("--set", ns.fixed), ("--tie", ns.tie)) if values]
        if ns.summary_only and given:  # they would be silently ignored: the table is rebuilt from the folders only
            raise ValueError(f"--summary-only rewrites {SUMMARY} from the run folders and starts no run; it takes no "
                             f"{', '.join(given)}")
        if ns.summary_only:
            df = summary(ns.out_dir)
        else:
            res = None
            if ns.resources:
                res = {}
                for item in ns.resources:
                    name, value = parameters.parse_setting(item, "--resources")
                    res[name] = _resource_amount(name, value, "--resources")
            df = run_sweep(parse_grid(ns.grid), parse_fixed(ns.fixed), ns.out_dir, workers=ns.workers,
                           scheduler=ns.scheduler, resources=res, progress=not ns.no_progress,
                           tie=parse_tie(ns.tie))
    except ValueError as exc:
        ap.error(str(exc))
    except SweepBusy as exc:  # not a usage error: the same command works once the other sweep has ended
        ap.exit(3, f"{ap.prog}: {exc}\n")
    view = df[[c for c in ("run_name", "status", "epoch", "final_objective", "final_train_acc", "final_nc1",
                           "error") if c in df.columns]].copy()
    if "epoch" in view:
        view["epoch"] = view["epoch"].astype("Int64")
    if "error" in view and view["error"].isna().all():  # no run failed: no column of empty errors
        view = view.drop(columns="error")
    elif "error" in view:
        view["error"] = [e[:57] + "..." if isinstance(e, str) and len(e) > 60 else ("" if pd.isna(e) else e)
                         for e in view["error"]]
    short = {"final_objective": "objective", "final_train_acc": "train_acc", "final_nc1": "nc1"}
    formats = {"final_objective": lambda v: written(v, 4), "final_train_acc": lambda v: f"{v:.3f}",
               "final_nc1": lambda v: written(v, 3)}  # numbers as the book writes them, no E-notation
    formatters = {short[c]: (lambda v, f=f: "" if pd.isna(v) else f(v)) for c, f in formats.items()
                  if c in view.columns}
    print(view.rename(columns=short).to_string(index=False, na_rep="", formatters=formatters))
    print(pathlib.Path(ns.out_dir) / SUMMARY)
    return df


def exit_status(table: pd.DataFrame) -> int:
    """The command's exit status for a sweep's table: 1 when a run failed or carries an error other than its
    divergence (a divergence is a result), else 0."""
    errors = table["error"].notna() if "error" in table else pd.Series(False, index=table.index)
    return int(bool(((table["status"] == "failed") | (errors & (table["status"] != "diverged"))).any()))


if __name__ == "__main__":
    sys.exit(exit_status(main()))
