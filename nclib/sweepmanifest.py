"""The record of a sweep (:mod:`nclib.sweep`, :ref:`ch-sweeps`), ``OUT_DIR/sweep.json``, and the locks by which
several processes share a sweep's output folder.

- ``sweep.json`` (:data:`MANIFEST`) keeps every call made on the folder (its grid, fixed parameters and ties,
  :func:`call_record`), every planned grid point under its run name, the errors that the run folders do not record,
  each with the state of its folder when it was saved (:func:`folder_state`), and why a run was trained again from
  the start (:func:`record_call`, :func:`record_result`).
  :func:`read_manifest` reads it, for the sweep and for its table (:mod:`nclib.sweeptable`);
  :func:`update_manifest` changes it under a lock of its own (:data:`MANIFEST_LOCK`), so that a sweep and the
  tasks of a job array record their runs in one folder without losing each other's entries;
- the runs of one output folder share every parameter that no grid sweeps: :func:`check_fixed` refuses a call whose
  fixed parameters or ties differ from those of a call the record holds; :func:`forget_absent` forgets the points
  that no run folder holds and the calls that made only such points;
- one sweep at a time trains the grid of a folder: :func:`lock_sweep` holds ``OUT_DIR/.sweep.lock`` (:data:`LOCK`)
  and refuses a second sweep (:class:`SweepBusy`); the tasks of a job array take only their run folders' locks
  (:func:`nclib.locks.lock_run`).

Both locks need flock locks that work across the machines sharing the folder.  Torch-free, like the table.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pathlib

from . import locks, parameters, runplan, runs
from .grid import absolute_data_path, check_names, check_tie, plain
from .parameters import DEFAULTS, EXECUTION_KEYS
from .runs import atomic_write_text

#: The record of a sweep's calls and grid points (run name -> point), in its output folder.
MANIFEST = "sweep.json"
#: The lock file of the sweep that uses an output folder (:func:`lock_sweep`).
LOCK = ".sweep.lock"
#: The lock of ``sweep.json``'s read-modify-write (:func:`update_manifest`).
MANIFEST_LOCK = ".sweep.json.lock"


def _folder(out_dir) -> pathlib.Path:
    """``out_dir`` as a path (:func:`nclib.parameters.check_out_dir`: ValueError naming ``out_dir``)."""
    return pathlib.Path(parameters.check_out_dir(out_dir))


def _checked_manifest(manifest, entries: bool = True) -> dict:
    """``manifest`` refused by name unless it is a dict (with the dicts ``runs`` and ``errors`` where ``entries``),
    as :func:`read_manifest` returns it."""
    if not isinstance(manifest, dict) or (entries and not (isinstance(manifest.get("runs"), dict)
                                                           and isinstance(manifest.get("errors"), dict))):
        raise ValueError(f"manifest must be a sweep's record as read_manifest returns it (a dict with the dicts runs "
                         f"and errors), got {type(manifest).__name__}")
    return manifest


def _checked_call(call) -> dict:
    """``call`` refused by name unless it is a call's record (:func:`call_record`)."""
    if not isinstance(call, dict) or not all(isinstance(call.get(k), dict) for k in ("grid", "fixed", "tie")):
        raise ValueError(f"call must be a call's record (call_record: a dict of the dicts grid, fixed and tie), got "
                         f"{call!r}")
    return call


def read_manifest(out_dir) -> dict:
    """``out_dir/sweep.json`` as a dict (empty where there is none), with its ``runs`` (run name -> grid point) and
    ``errors`` (run name -> the last attempt's error where the run folder does not record it).  A file that is not
    a JSON object raises a ValueError naming it; ValueError naming ``out_dir`` where it is no path.  Used in
    :ref:`ch-sweeps`."""
    path = _folder(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc}): move it away to start the sweep's record again") from exc
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} holds a {type(manifest).__name__}, not the JSON object of a sweep's record")
    manifest.setdefault("runs", {})
    manifest.setdefault("errors", {})
    return manifest


def folder_state(run_dir) -> str | None:
    """The state of the run folder ``run_dir`` that a saved error is tied to (:func:`record_result`): the sha256 of
    its ``provenance.json``, which every call that trains the run writes as it starts and as it ends (a segment
    added, a status), and nothing else writes; None where the folder has none (no folder, or one refused before
    anything was written).  Once a folder's state is another than the one saved with its error, a later call has
    written the run, and the table drops the error (:func:`nclib.sweeptable.recorded_outcome`).  ValueError naming
    ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`).  Used in
    :ref:`ch-sweeps`."""
    path = locks.run_folder_path(run_dir) / "provenance.json"
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def call_record(grid: dict, fixed: dict, tie: dict) -> dict:
    """What one call of the sweep asks for, as ``sweep.json`` records it (its ``calls``): grid, fixed and tie as JSON
    holds them, a relative ``data_path`` made absolute (:func:`nclib.grid.absolute_data_path`).  The arguments are
    refused by name as :func:`nclib.sweepplan.plan` refuses them (:func:`nclib.grid.check_names`,
    :func:`nclib.grid.check_tie`).  Used in :ref:`ch-sweeps`."""
    check_names(grid, fixed)
    tie = check_tie(tie, grid, fixed)
    grid = {k: [plain(v) for v in values] for k, values in grid.items()}
    fixed = {k: plain(v) for k, v in fixed.items()}
    if "data_path" in fixed:
        fixed["data_path"] = absolute_data_path(fixed["data_path"])
    return {"grid": runs.json_values(grid, "grid"), "fixed": runs.json_values(fixed, "fixed"),
            "tie": runs.json_values(dict(tie), "tie")}


def recorded_calls(manifest: dict) -> list[dict]:
    """Every call a ``sweep.json`` records (``manifest``, :func:`read_manifest`); one written before it kept them all
    records only its last call's grid, fixed and tie.  ValueError naming ``manifest`` where it is no dict.  Used in
    :ref:`ch-sweeps`."""
    manifest = _checked_manifest(manifest, entries=False)
    if manifest.get("calls"):
        return manifest["calls"]
    if "fixed" in manifest:
        return [{k: manifest.get(k) or {} for k in ("grid", "fixed", "tie")}]
    return []


def _setting(call: dict, k: str):
    """What the call ``call`` (a recorded call's grid, fixed and tie) gives the parameter ``k`` that its grid does not
    sweep: ``("tied to", GRIDNAME)`` for a tie, else its fixed value (its default where it is left out) as JSON
    holds it; and whether that value is the default left out."""
    tie, fixed = call.get("tie") or {}, call.get("fixed") or {}
    if k in tie:
        return ("tied to", tie[k]), False
    return runs.json_values({"v": fixed.get(k, DEFAULTS[k])})["v"], k not in fixed


def _setting_text(k: str, setting, default: bool, named: bool = True) -> str:
    """A parameter's setting (:func:`_setting`) as a refusal names it (a value after ``k = `` where ``named``)."""
    if isinstance(setting, tuple):
        return f"{k} tied to {setting[1]} (--tie {k}={setting[1]})"
    return f"{f'{k} = ' if named else ''}{setting!r}{' (its default)' if default else ''}"


def check_fixed(call: dict, manifest: dict, out_dir) -> None:
    """Refuse a call (:func:`call_record`) whose fixed parameters or ties differ from those of a call that
    ``out_dir``'s ``sweep.json`` (``manifest``) records: a parameter that no call's grid sweeps (neither this call's nor
    that of any call recorded) takes one value in every run of the folder (a parameter left out takes its default),
    or follows one grid parameter in every run (a tie, ``lam_H`` tied to ``lam_W``), so that the folder's table
    compares runs that differ in their grid values alone, and no two calls name by the same grid values runs that
    differ in a tied parameter.  A parameter that some call's grid sweeps may take any value in the others (two
    calls that fix it otherwise and name a run alike meet :func:`nclib.sweepplan.plan`'s refusal of a folder holding a
    run with other parameters).  Execution keys (``max_train_s``...) may change.  ValueError naming the parameter,
    both settings and the folder; ValueError naming ``call``, ``manifest`` or ``out_dir`` where one is not what it
    should be.  Used in :ref:`ch-sweeps`."""
    call, out_dir = _checked_call(call), _folder(out_dir)
    recorded = recorded_calls(manifest)
    # swept by the grid of any call of the folder, this one's included: the folder's runs hold several of its values,
    # so no two calls need agree on it (a call that fixes seed and one that leaves it at its default, beside a call
    # that swept seed); compared call by call, the first two would refuse each other
    varied = {*call["grid"]}.union(*((then.get("grid") or {}) for then in recorded))
    for then in recorded:
        given = {*call["fixed"], *call["tie"], *(then.get("fixed") or {}), *(then.get("tie") or {})}
        for k in [k for k in DEFAULTS if k in given and k not in varied and k not in EXECUTION_KEYS]:
            (was, was_default), (now, now_default) = _setting(then, k), _setting(call, k)
            if was != now and not (k == "data_path" and runplan.same_file(was, now)):
                flag = ("tie", "--tie") if k in call["tie"] else ("fixed", "--set")
                raise ValueError(
                    f"{flag[0]}[{k!r}] ({flag[1]} {k}): the sweeps of {str(out_dir)!r} ran with "
                    f"{_setting_text(k, was, was_default)} ({MANIFEST}), this one asks for "
                    f"{_setting_text(k, now, now_default, named=False)}; the runs of one out_dir share every "
                    f"parameter that no grid sweeps, so that its table compares like with like: give this sweep "
                    f"another out_dir (--out-dir), or sweep {k} with --grid (a call none of whose runs was made is "
                    f"forgotten by --summary-only --forget-absent)")


class SweepBusy(RuntimeError):
    """Another sweep holds the output folder's lock (``OUT_DIR/.sweep.lock``): :func:`nclib.sweep.run_sweep` refuses
    to run a second sweep in the same folder while the first is running (:func:`lock_sweep`)."""


@contextlib.contextmanager
def lock_sweep(out_dir):
    """Hold ``OUT_DIR/.sweep.lock`` (an exclusive flock, the file holding this process's pid and host) for the
    sweep; :class:`SweepBusy` naming the holder when another sweep holds it, and
    :class:`nclib.locks.LockUnsupported` where the file system refuses flock locks (never taken for a busy folder:
    a retry would wait forever); ValueError naming ``out_dir`` where it is no path.  Used in :ref:`ch-sweeps`.

    Not the lock of a run folder (:func:`nclib.locks.lock_run`, taken for each run): this one lets one whole sweep
    at a time train the grid of a folder and write its ``sweep.csv``; the tasks of a job array
    (:func:`nclib.sweep.run_point`) take only their run folder's lock, and ``sweep.json`` has a lock of its own
    (:func:`update_manifest`)."""
    out_dir = _folder(out_dir)
    path = out_dir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not locks.flock(fd, fcntl.LOCK_EX, path):
            owner = locks.read_lock_file(path) or {}
            held = (f": pid {owner.get('pid')} on host {owner.get('host')!r} since {owner.get('since')}"
                    if owner.get("pid") is not None else "")
            raise SweepBusy(f"another sweep is running in {str(out_dir)!r} (it holds {LOCK}{held}); wait for it to "
                            f"end, or give this sweep another --out-dir (the tasks of a job array, --point, run "
                            f"beside it)")
        locks.write_lock_record(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # no holder named once it is released
    finally:
        os.close(fd)


def update_manifest(out_dir, change) -> dict:
    """Read ``out_dir/sweep.json``, apply ``change`` (a function of the manifest dict that changes it in place), write
    it back atomically, all under the manifest's own lock (``OUT_DIR/.sweep.json.lock``, held for the read and the
    write alone), so that a sweep and the tasks of a job array record their runs in one folder without losing each
    other's entries.  Returns the manifest written; nothing is written when ``change`` raises.  ValueError naming
    ``out_dir`` where it is no path, ``change`` where it is not a function; :class:`nclib.locks.LockUnsupported`
    where the file system refuses flock locks.  Used in :ref:`ch-sweeps`."""
    out_dir = _folder(out_dir)
    if not callable(change):
        raise ValueError(f"change must be a function of the manifest dict, got {change!r}")
    path = out_dir / MANIFEST_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held only for a read and a write: waiting is short
        except OSError as exc:
            raise locks.LockUnsupported(path, exc) from None
        manifest = read_manifest(out_dir)
        change(manifest)
        atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, default=str))
        return manifest
    finally:
        os.close(fd)  # releases the flock


def record_call(manifest: dict, call: dict, planned: list[dict], out_dir, kept=()) -> None:
    """Record a call (:func:`call_record`) in the manifest: refused (:func:`check_fixed`) if its fixed parameters
    or ties differ from a recorded call's; else its grid, fixed and tie added to ``calls`` (once: the tasks of a job
    array make the same call) with the run names it planned (``runs``, which :func:`forget_absent` reads), and as
    the last call's; every planned point (``planned``, :func:`nclib.sweepplan.plan`) under
    its run name, in grid order (a point new to the record beside its neighbours in the grid, the others where they
    were, so that a value or a parameter added to a grid keeps the runs in grid order); the errors of the runs
    ``kept`` (run names) dropped (their folders say what they are now).  ValueError naming the argument that is not
    what it should be.  Used in :ref:`ch-sweeps`."""
    manifest, call = _checked_manifest(manifest), _checked_call(call)
    if not isinstance(planned, list) or not all(
            isinstance(item, dict) and isinstance(item.get("point"), dict) and isinstance(item.get("params"), dict)
            and isinstance(item["params"].get("run_name"), str) for item in planned):
        raise ValueError("planned must be a sweep's plan (nclib.sweep.plan: a list of dicts of a point and its "
                         "params, run_name included)")
    if not isinstance(kept, (list, tuple)) or not all(isinstance(name, str) for name in kept):
        raise ValueError(f"kept must be a list of run names, got {kept!r}")
    check_fixed(call, manifest, out_dir)
    calls = recorded_calls(manifest)
    entry = next((c for c in calls if _same_call(c, call)), None)
    if entry is None:
        entry = dict(call)
        calls = calls + [entry]
    # the run names the call planned: forget_absent forgets a call once none of them is left
    entry["runs"] = list(dict.fromkeys([*(entry.get("runs") or []), *(item["params"]["run_name"] for item in planned)]))
    manifest["calls"] = calls
    manifest.update(format=1, **call)
    recorded, points = manifest["runs"], {item["params"]["run_name"]: item["point"] for item in planned}
    # a point new to the record goes after the point before it in this grid that the record holds, else before the
    # grid's first recorded point: a value or a parameter added to a grid keeps the table in grid order
    after, anchor = {}, None
    for name in points:
        if name in recorded:
            anchor = name
        else:
            after.setdefault(anchor, []).append(name)
    first = next((name for name in points if name in recorded), None)
    order = []
    for name in recorded:
        order += after.pop(None, []) if name == first else []
        order += [name, *after.pop(name, [])]
    order += after.pop(None, [])  # none of this grid's points recorded yet: after the others
    manifest["runs"] = {name: points.get(name, recorded.get(name)) for name in order}
    for name in kept:
        manifest["errors"].pop(name, None)
        manifest.get("error_states", {}).pop(name, None)


def _same_call(recorded: dict, call: dict) -> bool:
    """Whether a recorded call (with the run names it planned) is the call ``call`` (:func:`call_record`)."""
    return all((recorded.get(k) or {}) == call[k] for k in ("grid", "fixed", "tie"))


def _forget(manifest: dict, out_dir: pathlib.Path) -> dict[str, str | None]:
    """Drop from ``manifest`` every point whose run folder in ``out_dir`` holds no run (status "absent": never
    trained, or failed before its folder was written), with its recorded error, and every call none of whose planned
    points is left (a call recorded before the calls listed their points is kept); returns the names dropped, each
    with the error dropped with it (None where it had none)."""
    gone = {name: manifest["errors"].get(name) for name in manifest["runs"]
            if runs.run_status(out_dir / name) == "absent"}
    for name in gone:
        del manifest["runs"][name]
        manifest["errors"].pop(name, None)
        manifest.get("error_states", {}).pop(name, None)
        manifest.get("restarted", {}).pop(name, None)
    calls = [c for c in recorded_calls(manifest) if "runs" not in c or any(n in manifest["runs"] for n in c["runs"])]
    for k in ("grid", "fixed", "tie"):  # the last call's, which recorded_calls reads where no call is listed
        manifest.pop(k, None)
    manifest["calls"] = calls
    if calls:
        manifest.update({k: calls[-1].get(k) or {} for k in ("grid", "fixed", "tie")})
    return gone


def forget_absent(out_dir) -> dict[str, str | None]:
    """Forget, in ``out_dir/sweep.json``, the points of the sweep that no run folder holds and the calls that made
    only such points (the command line's ``--summary-only --forget-absent``): a call interrupted before any of its
    runs was written, a grid given by mistake, the tasks of a job array that was cancelled.  Until then every call
    recorded fixes the parameters of the folder (:func:`check_fixed`), and every point recorded is a row of the table,
    "absent" (exit status 1) until its run is trained.  A point whose last attempt failed before its folder was
    written (a damaged data file, a data path given by mistake) is forgotten too, with its error: else a call whose
    every point failed so could never be forgotten, and its values would fix the folder's for good; the command
    line prints each error so forgotten.  A point that a live process is training is kept (its run folder is
    locked); a task of the array that starts later records its point again.  Held under the sweep's lock
    (:func:`lock_sweep`: :class:`SweepBusy` while a sweep is running in the folder, whose points would be lost from
    its table) and the record's own.  Returns the run names forgotten, in the record's order, each with the error
    its point's last attempt recorded (None where none); ValueError naming ``out_dir`` where it is no folder.  Used
    by the command line, :func:`nclib.sweepcli.main` (``--forget-absent``), which the sweeps chapter runs in a
    subprocess."""
    folder = _folder(out_dir)
    if not folder.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} is not a folder")
    gone: dict[str, str | None] = {}
    with lock_sweep(folder):
        if (folder / MANIFEST).is_file():
            update_manifest(folder, lambda m: gone.update(_forget(m, folder.resolve())))
    return gone


def record_result(manifest: dict, name: str, result: dict) -> None:
    """Record what training the run ``name`` gave (``result``, as a worker of :mod:`nclib.sweep` returns it: the
    ``status`` of its folder after, its ``error`` or None, ``state``, the folder's :func:`folder_state` after, and
    ``restarted`` and ``fresh``, whether and why it was trained again from the start): the folder records a diverged
    or failed run's error itself; others (refused before the folder was written, a killed worker, a lock of another
    host, a run whose resume was refused, a failed one included, a finished or diverged run trained on other data than
    its data file holds now, :class:`nclib.runs.OtherData`, a folder holding another call's run,
    :class:`nclib.runs.RunExists`) are kept in the manifest's ``errors``, with the folder's
    state in its ``error_states`` where the result gives it, so that the table drops the error once a later call has
    written the run (:func:`nclib.sweeptable.recorded_outcome`); why a run was trained again from the start is kept
    until a fresh start replaces the run.  ValueError naming the argument that is not what it should be.  Used in
    :ref:`ch-sweeps`."""
    manifest = _checked_manifest(manifest)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a run name, got {name!r}")
    if not isinstance(result, dict) or not {"status", "error"} <= set(result) or not (
            result.get("state") is None or isinstance(result["state"], str)):
        raise ValueError(f"result must be a dict with the run's status and error (and its folder's state, a "
                         f"folder_state), got {result!r}")
    # a refusal to keep a diverged run for other data, to take another call's run for this point, or to resume a
    # failed one, is no error of its folder
    own = result["status"] in ("diverged", "failed") and not str(result["error"]).startswith(
        (f"{runs.OtherData.__name__}:", f"{runs.RunExists.__name__}:", f"{runs.ResumeRefused.__name__}:"))
    if result["error"] and not own:
        manifest["errors"][name] = result["error"]
        if "state" in result:
            manifest.setdefault("error_states", {})[name] = result["state"]
        else:  # a state saved with an earlier error is not this one's
            manifest.get("error_states", {}).pop(name, None)
    else:
        manifest["errors"].pop(name, None)
        manifest.get("error_states", {}).pop(name, None)
    if result.get("restarted"):
        manifest.setdefault("restarted", {})[name] = result["restarted"]
    elif result.get("fresh"):
        manifest.get("restarted", {}).pop(name, None)
