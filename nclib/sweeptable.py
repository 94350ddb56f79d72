"""The table of a sweep (:mod:`nclib.sweep`, :ref:`ch-sweeps`): one row per run, read back from the run folders and
the sweep's record ``sweep.json`` (:mod:`nclib.sweepmanifest`), written to ``sweep.csv``.  Torch-free: the table is
rebuilt on any machine without training (``python -m nclib.sweep --summary-only``).
"""
from __future__ import annotations

import json
import os
import pathlib
import warnings

import pandas as pd

from . import _checks
from .grid import SWEEP_KEYS
from .locks import RunLockedElsewhere, other_host_lock
from .runs import (CLASS_ACCURACY, HISTORY_COLUMNS, OtherData, RunExists, atomic_write_text, load_class_accuracy,
                   load_run, read_record, run_status)
from .sweepmanifest import MANIFEST, folder_state, read_manifest

#: The table a sweep writes into its output folder.
SUMMARY = "sweep.csv"


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


#: The provenance of each run that the table gives (from its ``provenance.json``): where and with which code it
#: trained, so that a table mixing code versions or machines shows it.
PROVENANCE_COLUMNS = ("wall_time_s", "train_time_s", "device_name", "host_cpu", "torch", "git_commit", "git_dirty",
                      "git_diff_sha256")


class MixedCodeVersions(UserWarning):
    """The runs of one sweep table were trained from more than one version of the code (commits, or uncommitted
    changes): their numbers may differ for that reason alone (:func:`summary`)."""


class UnrecordedRuns(UserWarning):
    """The output folder holds run folders that its record ``sweep.json`` does not list (copied in from another
    node's output folder, say): :func:`summary` lists them after the recorded runs, its column ``recorded`` False,
    and names them.  No call of the folder planned them, so nothing has checked that they share the parameters that
    the folder's calls fix; a sweep called again in the folder with a grid that holds their points does (it refuses
    a folder holding a run with other parameters), records them and trains none that is finished."""


class TableNotWritten(UserWarning):
    """:func:`summary` could not write ``sweep.csv`` into the output folder (a read-only file system, a folder of
    another user, a full disk): the table is returned all the same, and the command line prints it and says so in a
    note; a ``sweep.csv`` already there is an earlier call's."""


class NoRuns(ValueError):
    """The output folder holds no run of a sweep: it does not exist, or it holds neither ``sweep.json`` nor a run
    folder, as before the first task of a job array has started.  Every point of the sweep is then without a run,
    and the command line's ``--summary-only`` exits with status 1, as it does while any point has none."""


def read_provenance(run_dir: pathlib.Path) -> tuple[dict, str | None]:
    """The ``provenance.json`` of ``run_dir`` (an empty dict where there is none yet) and None, or, where the file is
    damaged or cut short, an empty dict and the error naming the file ("ValueError: ..."), which the run's row of
    the table and its line of :func:`nclib.sweep.list_points` give (such a folder reads "dead",
    :func:`nclib.runs.recorded_status`).  ValueError naming ``run_dir`` where it is no path.  Used in
    :ref:`ch-sweeps`."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise ValueError(f"run_dir must be the path of a run folder (a str or a path), got {run_dir!r}")
    path = pathlib.Path(run_dir) / "provenance.json"
    if not path.is_file():
        return {}, None
    try:
        return read_record(path), None
    except ValueError as exc:
        return {}, f"{type(exc).__name__}: {exc}"


def table_row(out_dir: pathlib.Path, name: str, point: dict, manifest: dict, grid_keys: list) -> tuple[dict, dict]:
    """One row of the table (:func:`summary`) and the run's provenance, read from its folder and the manifest
    (:func:`nclib.sweepmanifest.read_manifest`); ``grid_keys`` are the columns of the grid's parameters.  A run
    folder whose files are damaged (cut short, say) is a row whose error names the file, not a table refused."""
    run_dir = out_dir / name
    status = run_status(run_dir)
    row = {"run_name": name, "status": status, "error": None}
    params, prov, hist, classes, damaged = dict(point), {}, None, None, None
    if (run_dir / "params.json").is_file():
        try:
            params = read_record(run_dir / "params.json")
            prov, damaged = read_provenance(run_dir)
            if damaged is None and (run_dir / "history.csv").is_file() and prov:
                params, hist, prov = load_run(run_dir)
            if damaged is None and (run_dir / CLASS_ACCURACY).is_file():
                classes = load_class_accuracy(run_dir)
        except ValueError as exc:  # each names its file
            damaged = f"{type(exc).__name__}: {exc}"
    row["status"], row["error"] = recorded_outcome(name, status, manifest, prov, run_dir)
    row["error"] = damaged or row["error"]
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
    # a run trained again from the start because its resume was refused: why (sweep.json keeps it)
    row["restarted"] = manifest.get("restarted", {}).get(name)
    for k in PROVENANCE_COLUMNS:
        row[k] = (prov.get("versions") or {}).get("torch") if k == "torch" else prov.get(k)
    skip = set(SWEEP_KEYS) | {"max_train_s", "checkpoint_every"}  # how the first call ran, not what the run is
    for k, v in params.items():
        if k not in grid_keys and k not in skip:
            row[k] = _cell(v)
    return row, prov


def _outlived(error: str, name: str, status: str, manifest: dict, run_dir: pathlib.Path | None) -> bool:
    """Whether the error ``error`` that ``sweep.json`` (``manifest``) saved for the run ``name`` no longer holds for
    its folder ``run_dir`` (None: not known) of status ``status``: see :func:`recorded_outcome`."""
    kept = (OtherData, RunExists, RunLockedElsewhere)  # other data, another call's run, another host's lock
    if status in ("finished", "diverged") and not error.startswith(tuple(f"{e.__name__}:" for e in kept)):
        return True  # the folder holds the run's result: only the errors above stand against it
    if run_dir is None:
        return False
    states = manifest.get("error_states") or {}
    if name in states and folder_state(run_dir) != states[name]:
        return True  # a later call wrote the run since the error was saved
    # the lock file that refused the last attempt is gone: the next call is not refused
    return error.startswith(f"{RunLockedElsewhere.__name__}:") and other_host_lock(run_dir) is None


def recorded_outcome(name: str, status: str, manifest: dict, prov: dict,
                     run_dir: pathlib.Path | None = None) -> tuple[str, str | None]:
    """The status and the error that a sweep gives the run ``name``, in its table (:func:`table_row`) and in its list
    of points (:func:`nclib.sweep.list_points`) alike: ``status`` (its folder's :func:`nclib.runs.run_status`) and
    the error of its last attempt that ``sweep.json`` (``manifest``) keeps where the folder does not record it,
    "failed" for a run whose attempt failed before its folder was written (a damaged data file, say), as long as
    that error holds for the folder ``run_dir``: not once the folder has changed since the error was saved (its
    :func:`nclib.sweepmanifest.folder_state` is another: a later call, of a sweep, a task or
    :func:`nclib.train.run`, wrote the run), not for a finished or diverged run unless the error is that its data
    file now holds other data (:class:`nclib.runs.OtherData`), that the folder holds another call's run, with other
    parameters (:class:`nclib.runs.RunExists`, a worker's refusal under the folder's lock,
    :func:`nclib.sweepplan.refuse_other_run`: the point has no run of its own), or the refusal below, and not a
    saved refusal for the lock file of a writer on another host (:class:`nclib.locks.RunLockedElsewhere`) once
    ``run_dir`` holds no such file (it was removed, as that refusal said to: the next call is not refused).  The
    table reads what the last call recorded and loads no data: an OtherData error stays until a call checks the
    data again.  Else,
    for a run that the next call would train (neither finished, diverged nor running) in a folder ``run_dir`` whose
    lock file names a writer on another host (:func:`nclib.locks.other_host_lock`), the refusal that call meets
    (naming the file to remove); else the error its provenance ``prov`` records, or None.  Used in
    :ref:`ch-sweeps`."""
    error = manifest.get("errors", {}).get(name)
    if error and _outlived(error, name, status, manifest, run_dir):
        error = None  # the folder says what the run is now
    if error:  # the last attempt's error where the folder does not record it
        return ("failed" if status == "absent" else status), error
    if run_dir is not None and status not in ("finished", "diverged", "running"):
        owner = other_host_lock(run_dir)
        if owner is not None:  # the next task or sweep is refused this run (nclib.sweepplan.next_step): say why now
            return status, f"{RunLockedElsewhere.__name__}: {RunLockedElsewhere.naming({run_dir: owner})}"
    return status, prov.get("error") or None


def _code_versions(provs: list[dict]) -> dict:
    """{(commit, uncommitted diff's sha256 or None): number of runs} of the runs' provenances that record a commit."""
    seen: dict = {}
    for prov in provs:
        if prov.get("git_commit"):
            key = (prov["git_commit"], prov.get("git_diff_sha256") if prov.get("git_dirty") else None)
            seen[key] = seen.get(key, 0) + 1
    return seen


def summary(out_dir) -> pd.DataFrame:
    """The sweep's table, one row per run, written to ``out_dir/sweep.csv`` (atomically) and returned: run_name,
    status (:func:`nclib.runs.run_status`; "failed" for a run refused before its folder was written), error (of a
    run not finished whose folder holds the lock file of a writer on another host, that lock, the file to remove:
    :func:`recorded_outcome`), the grid parameters, the last recorded epoch and ``final_<metric>`` for each column
    of ``history.csv`` (objective (4.3), NC1-NC3, training accuracy, ...), ``class_acc_<k>`` (the training accuracy
    of class k at the last epoch), ``restarted`` (for a run that a rerun trained again from the start because its resume
    was refused, the refusal; else empty), the provenance of :data:`PROVENANCE_COLUMNS` (wall and training time,
    GPU or CPU model, torch version, git commit, whether the checkout had uncommitted changes and the sha256 of
    those changes), then every other parameter of the run (lists as JSON) but ``max_train_s``, ``checkpoint_every``
    and the sweep's own keys (:data:`nclib.grid.SWEEP_KEYS`), which say how a call ran, not what the run is.  A
    table whose runs were trained from several versions of the code warns (:class:`MixedCodeVersions`) naming them.
    Read from the run folders and ``sweep.json`` only (torch-free), so it is rebuilt without training
    (:ref:`ch-sweeps`): it shows what they and the last sweep or task recorded, the errors saved in ``sweep.json``
    that still hold (:func:`recorded_outcome`), and loads no data (a run found trained on other data stays an error
    until a sweep or a task checks its data again).  The rows follow ``sweep.json``, in the grid order of the calls
    (:func:`nclib.sweepmanifest.record_call`: a point a later call added goes beside its neighbours in that call's
    grid); without it, every run folder in ``out_dir`` by name.
    Run folders that ``sweep.json`` does not list (copied in from another node's output folder, say) follow the
    recorded runs, by name, with a column ``recorded`` (True for the others; the column is there only then), and
    the table warns naming them (:class:`UnrecordedRuns`).  Where ``sweep.csv`` cannot be written (a read-only
    folder), the table is returned all the same, with a :class:`TableNotWritten` warning.
    :class:`NoRuns` (a ValueError) where ``out_dir`` does not exist or holds no run of a sweep; ValueError where it
    is a file, or no path (a number, None; the empty path, which is the current folder)."""
    out_dir = pathlib.Path(_checks.path_arg(out_dir, "out_dir", "the path of a sweep's output folder"))
    if not out_dir.exists():  # before any task of a job array has started, say
        raise NoRuns(f"out_dir {str(out_dir)!r} holds no run of a sweep: there is no such folder")
    if not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is not a folder")
    manifest = read_manifest(out_dir)
    folders = [d.name for d in sorted(out_dir.iterdir()) if d.is_dir() and (d / "params.json").is_file()]
    points = manifest.get("runs") or {name: {} for name in folders}
    # run folders that no call of the folder recorded (copied in from another node): listed after, and marked
    unrecorded = [name for name in folders if name not in points]
    points = {**points, **{name: {} for name in unrecorded}}
    if not points:  # an empty folder, or another one: no table rather than an empty one
        raise NoRuns(f"out_dir {str(out_dir)!r} holds no run of a sweep (no {MANIFEST}, no run folder with a "
                     f"params.json)")
    grid_keys = list(dict.fromkeys(k for point in points.values() for k in point))
    rows, provs = [], []
    for name, point in points.items():
        row, prov = table_row(out_dir, name, point, manifest, grid_keys)
        if unrecorded:
            row["recorded"] = name not in unrecorded
        rows.append(row)
        provs.append(prov)
    versions = _code_versions(provs)
    if len(versions) > 1:
        shown = ", ".join(f"commit {c[:10]}{f' with uncommitted changes (diff sha256 {d[:10]})' if d else ''} "
                          f"({n} run{'s' * (n > 1)})" for (c, d), n in versions.items())
        warnings.warn(f"the runs of {str(out_dir)!r} were trained from {len(versions)} versions of the code: "
                      f"{shown}; the table's git_commit, git_dirty and git_diff_sha256 say which run is which",
                      MixedCodeVersions,
                      stacklevel=2)
    if unrecorded:
        warnings.warn(f"{len(unrecorded)} run folder{'s' * (len(unrecorded) > 1)} of {str(out_dir)!r} "
                      f"{'are' if len(unrecorded) > 1 else 'is'} not recorded in {MANIFEST}: {', '.join(unrecorded)}; "
                      f"listed at the end of the table (recorded False), not checked against the parameters of the "
                      f"folder's calls: run the sweep again in this folder with a grid that holds their points, "
                      f"which checks and records them and trains none that is finished", UnrecordedRuns,
                      stacklevel=2)
    df = pd.DataFrame(rows)
    try:
        atomic_write_text(out_dir / SUMMARY, df.to_csv(index=False))
    except OSError as exc:  # the table is read, not written: it is the answer all the same
        warnings.warn(f"{SUMMARY} could not be written into {str(out_dir)!r} ({type(exc).__name__}: {exc}): the table "
                      f"is returned without it, and a {SUMMARY} there is an earlier call's", TableNotWritten,
                      stacklevel=2)
    return df


def load_summary(out_dir) -> pd.DataFrame:
    """``out_dir/sweep.csv`` as written by :func:`summary` (:ref:`ch-sweeps`)."""
    path = pathlib.Path(out_dir) / SUMMARY
    if not path.is_file():
        raise ValueError(f"out_dir {str(out_dir)!r} has no {SUMMARY}; run the sweep or summary(out_dir)")
    return pd.read_csv(path)
