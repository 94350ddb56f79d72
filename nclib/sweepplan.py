"""A sweep's plan (:ref:`ch-sweeps`): which points of a grid a sweep (:mod:`nclib.sweep`) trains, keeps, resumes,
leaves to another process or refuses, read from the run folders of its output folder; nothing here trains or writes.

:func:`plan` checks every point of the grid before anything is submitted, and finds the run that a folder already holds
under another name; :func:`next_step` says what a rerun does with a run folder in each state.  Two refusals are asked
again by the runner once it holds a run folder's lock, where another process may have changed the folder since the
plan: a folder holding a run with other parameters (:func:`refuse_other_run`), and a run it would keep that was
trained on other data than its ``data_path`` holds now (:func:`refuse_other_data`,
:class:`nclib.runs.OtherData`).  :func:`step_for_status` is what a rerun does with a folder in each recorded status,
in the plan and under the lock alike.
Torch-free: a sweep's points are checked on a login node too.
"""
from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping

from . import checkpoints, data, parameters, runplan, runs
from .grid import check_names, check_tie, expand_grid, plain, run_name_for
from .locks import other_host_lock, run_folder_path
from .parameters import DEFAULTS
from .runs import RESUMABLE, STATUSES, OtherData, run_status
from .sweepmanifest import MANIFEST, call_record, check_fixed, read_manifest

#: Statuses (:func:`nclib.runs.run_status`) that a rerun of the sweep keeps: a finished run, and a diverged one
#: (the divergence is the result of its parameters; delete its folder to train it again), each on its own data
#: only (:func:`refuse_other_data`).
FINAL = ("finished", "diverged")

#: What a sweep advises for a run it would keep that was trained on other data (:func:`refuse_other_data`).
DATA_ADVICE = ("put the run's data back at that path (the run is then kept), use another out_dir, or delete the run "
               "folder, which the next call trains again on these data")


# --------------------------------------------------------------------------------------------- the plan

def _folder_runs(out_dir: pathlib.Path) -> dict:
    """{run folder name: its params.json as recorded} of every run folder in ``out_dir``."""
    if not out_dir.is_dir():
        return {}
    found = {}
    for d in sorted(out_dir.iterdir()):
        if d.is_dir() and (d / "params.json").is_file():
            saved = runs.read_params(d)
            if saved is not None:
                found[d.name] = saved
    return found


def writable_out_dir(out_dir) -> pathlib.Path:
    """``out_dir``, a sweep's output folder (:ref:`ch-sweeps`), as a path that this process can make and write in:
    ValueError naming ``out_dir`` where it is a file or lies under one, or where this process may not write it (a
    read-only file system, a folder of another user), nor, where it does not exist yet, the nearest folder above it
    that exists, in which it would be made.  :func:`plan` checks it, so that a sweep, a task of a job array and
    ``--list-points`` alike refuse such a folder before anything is written, rather than each task of an array
    failing on its first write.  Nothing is written: the system is asked (``os.access``)."""
    out_dir = pathlib.Path(parameters.check_out_dir(out_dir))
    there = out_dir
    while not os.path.lexists(there) and there != there.parent:
        there = there.parent
    if not there.is_dir():
        where = "is a file" if there == out_dir else f"lies under the file {str(there)!r}"
        raise ValueError(f"out_dir {str(out_dir)!r} {where}, not a folder: give --out-dir a folder")
    if not os.access(there, os.R_OK | os.W_OK | os.X_OK):
        where = "" if there == out_dir else f", nor the folder {str(there)!r} above it in which it would be made"
        raise ValueError(f"out_dir {str(out_dir)!r} cannot be written by this process{where} (a read-only file "
                         f"system, or a folder of another user): give --out-dir a folder it may write")
    return out_dir


def plan(grid: dict, fixed: dict | None, out_dir, remote: bool = False, tie: dict | None = None) -> list[dict]:
    """The checked parameters of every run of the sweep (:func:`nclib.parameters.check_params` of fixed + point,
    with ``out_dir`` and the point's run name), in grid order; nothing is written.  ``tie``: parameters that take
    the value of a grid parameter at every point (:func:`nclib.grid.expand_grid`); the run name is made from the grid
    values alone.  A point whose run a folder of ``out_dir`` already holds under another name (the run of
    ``--grid lam_W=1e-3`` is the point lam_W = 1e-3, seed = 0 of a later ``--grid lam_W=1e-3 --grid seed=0,1``,
    seed 0 being the default) is that run: it keeps its folder and name, and the table lists it once.
    A relative ``data_path`` is made absolute here (:func:`nclib.parameters.checked`, with
    :func:`nclib.grid.absolute_data_path`), from this process's working folder, so that workers started
    elsewhere read the same file.  ValueError naming ``out_dir`` where this process could not make or write it
    (:func:`writable_out_dir`), and naming the parameter when a point is refused, two points are the same run, an
    existing run folder holds a run with other parameters, or a parameter that the grid does not sweep
    differs from the value (or the tie) an earlier call recorded in ``out_dir/sweep.json`` (the runs of one folder
    share them).  A run recorded with another ``data_path`` is the point's where it was trained on the data that the
    point's ``data_path`` holds now and the sweep keeps it (finished or diverged, :func:`_differing`): the runs of two
    clusters, each with its copy of the data at a path of its own, merge into one folder; such a run it would resume
    is refused, since a resume compares ``data_path`` as written.  ``remote``: the runs train on other machines,
    which are taken to have a GPU (:func:`nclib.parameters.checked` with ``cuda=True``): ``device="cuda"`` and the
    GPU-only ``steps_per_graph`` are accepted where this machine has none, and each worker checks them again."""
    fixed = {} if fixed is None else fixed
    check_names(grid, fixed)
    tie = check_tie(tie, grid, fixed)
    fixed = {k: plain(v) for k, v in fixed.items()}
    if out_dir is None:
        raise ValueError("out_dir must be a folder for the run folders and sweep.csv, got None")
    out_dir = writable_out_dir(out_dir).resolve()
    if (out_dir / MANIFEST).is_file():
        check_fixed(call_record(grid, fixed, tie), read_manifest(out_dir), out_dir)
    present = _folder_runs(out_dir)
    loaded: dict = {}  # each data selection's checksum, read once (_data_sha256), where only a data_path differs
    indexed: dict = {}  # the folders by what they record, once per set of defining parameters (_folder_index)
    planned, seen, first_of = [], set(), {}  # the names planned; {what a point is: its first name}
    for point in expand_grid(grid, tie):
        name = run_name_for({k: v for k, v in point.items() if k not in tie})
        q = {**fixed, **point, "out_dir": str(out_dir), "run_name": name, "progress": False}
        try:
            p = parameters.checked(q, cuda=True if remote else None)
        except ValueError as exc:
            raise ValueError(f"grid point {name}: {exc}") from None
        want = parameters.defining_params(p)
        if name not in present:  # its run may be in the folder under another name: then it is that run
            if tuple(want) not in indexed:
                indexed[tuple(want)] = _folder_index(present, tuple(want))
            maybe = indexed[tuple(want)].get(_record_key(runs.json_values(want), p["device"]), [])
            same = [n for n in maybe if present[n].get("device", DEFAULTS["device"]) == p["device"]
                    and not _differing(out_dir / n, want, p, loaded, present[n])]
            if same:
                name = p["run_name"] = same[0]
        # what the point is: the run, and where it trains (a grid over device compares devices)
        key = json.dumps(runs.json_values({**want, "device": p["device"]}), sort_keys=True)
        if name in seen or key in first_of:
            other = name if name in seen else first_of[key]
            raise ValueError(f"grid: points {other} and {name} are the same run (a value listed twice?)")
        seen.add(name)
        first_of[key] = name
        if (out_dir / name / "params.json").is_file():
            differ = _differing(out_dir / name, want, p, loaded)
            # and a run trained on a CPU is not kept for a GPU (asked only then, so that torch answers for "auto"
            # only then; on remote workers "auto" is not known here)
            if runplan.recorded_device_type(out_dir / name) == "cpu" and not (remote and p["device"] == "auto"):
                kind = parameters.required_device_type(p["device"], True if remote else None)
                differ.update(runplan.device_difference(out_dir / name, kind))
            if differ:
                raise _other_run(out_dir / name, differ)
        planned.append({"point": point, "params": p})
    return planned


def _differing(run_dir: pathlib.Path, want: dict, params: dict | None, loaded: dict, saved=False) -> dict:
    """:func:`nclib.runplan.differing_params` of the run folder ``run_dir`` and a point's defining parameters ``want``
    (``saved`` as there), but for a ``data_path`` that names another file holding the data the run was trained on:
    the ``data_sha256`` that its ``provenance.json`` records is that of the data which the ``data_path`` of the
    point's checked parameters ``params`` selects now (:func:`nclib.runplan.data_sha256_now`, the checksum a resume and
    a kept run are compared by).  A run copied from the output folder of another cluster, whose data lay at another
    path there, so holds its point (:ref:`ch-sweeps`), where the sweep keeps it (finished or diverged, :data:`FINAL`).
    A run it would resume (stopped, dead or failed) on the same data is refused, ValueError (:func:`_copied_run_text`):
    a resume compares ``data_path`` as written (:func:`nclib.resume.check_resume`), so the plan refuses the run
    rather than planning a resume that would then be refused.  The data are loaded only where ``data_path`` is all that
    differs, once per data selection (``loaded``, :func:`_data_sha256`); a file that does not load matches no run.
    ``params`` None compares ``data_path`` as written."""
    differ = runplan.differing_params(run_dir, want, saved)
    if set(differ) != {"data_path"} or params is None or params["data_path"] is None:
        return differ
    try:
        then = json.loads((run_dir / "provenance.json").read_text()).get("data_sha256")
    except (OSError, ValueError, AttributeError):
        return differ
    if then is None or _data_sha256(params, loaded) != then:
        return differ
    status = runs.recorded_status(run_dir)
    if status not in FINAL:
        raise ValueError(_copied_run_text(run_dir, status, differ["data_path"]))
    return {}


def _copied_run_text(run_dir: pathlib.Path, status: str, paths: tuple) -> str:
    """The refusal of a run folder holding a run that a sweep would resume (``status``) and that was started with
    another ``data_path`` than its point's, on the same data: ``paths`` (recorded, wanted), as
    :func:`nclib.runplan.differing_params` gives them."""
    then, now = paths
    return (f"run folder {str(run_dir)!r} holds a {status} run started with data_path {then!r}, whose data are those "
            f"that data_path {now!r} holds now, but a copied run resumes only with the data_path it started with: "
            f"give the data the same path on both clusters (a symlink) and run the sweep with that data_path, or "
            f"delete the run folder, which the next call trains again from the start")


def _data_sha256(params: dict, loaded: dict):
    """The ``data_sha256`` of the data that the checked parameters ``params`` select now
    (:func:`nclib.runplan.data_sha256_now`), or the exception loading them raised; ``loaded``, a dict this function
    fills, maps each setting of the data-defining parameters (:data:`nclib.data.LOAD_KEYS`) to that answer, so that
    a sweep whose runs share one data selection loads it once."""
    key = json.dumps({k: params[k] for k in data.LOAD_KEYS}, sort_keys=True, default=str)
    if key not in loaded:
        try:
            loaded[key] = runplan.data_sha256_now(params)
        except Exception as exc:  # noqa: BLE001 - a file that does not load: the caller says what follows
            loaded[key] = exc
    return loaded[key]


def _comparable(value):
    """A JSON value (as :func:`nclib.runs.json_values` gives it) in a form that two values equal in Python share:
    booleans and whole floats as integers (``True == 1 == 1.0``), lists and dicts item by item; the key of
    :func:`_record_key`."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def _record_key(values: dict, device) -> str:
    """The text under which :func:`plan` looks a run up among the folders of its output folder: the defining
    parameters ``values`` (JSON values) and the ``device``, :func:`_comparable`, but ``data_path`` (a path spelled
    otherwise may name the same file, which :func:`nclib.runplan.differing_params` then finds).  Two records that
    ``differing_params`` takes for one run share the key; the folders under a point's key are then compared with
    the point one by one, so the key finds them but decides nothing."""
    return json.dumps([_comparable({k: v for k, v in values.items() if k != "data_path"}), _comparable(device)],
                      sort_keys=True)


def _folder_index(present: dict, keys: tuple) -> dict:
    """{:func:`_record_key`: the names of the folders under it, in the order of ``present``} of the run folders
    ``present`` ({name: params.json as recorded}, :func:`_folder_runs`), each recording the defining parameters
    ``keys`` (a key it lacks reads as its default, as :func:`nclib.runplan.differing_params` reads it) and its device:
    built once per plan and set of keys, so that a point finds the folders that may hold its run without comparing
    it with every folder."""
    defaults = runs.json_values({k: DEFAULTS.get(k) for k in keys})
    index: dict = {}
    for n, saved in present.items():
        recorded = {k: saved[k] if k in saved else defaults[k] for k in keys}
        index.setdefault(_record_key(recorded, saved.get("device", DEFAULTS["device"])), []).append(n)
    return index


def _other_run(run_dir: pathlib.Path, differ: dict) -> runs.RunExists:
    """The refusal of a run folder that holds a run with other parameters (``differ``, as
    :func:`nclib.runplan.differing_params` gives them) than a point of the sweep: a :class:`nclib.runs.RunExists` (a
    ValueError), so that the error a worker saves for it under the folder's lock reads "RunExists: ..." and the
    sweep's table keeps it beside the finished run it names (:func:`nclib.sweeptable.recorded_outcome`)."""
    return runs.RunExists(f"run folder {str(run_dir)!r} holds a run with other parameters: "
                          f"{runplan.differences_text(differ)}; use another out_dir (or delete the folder)", run_dir,
                          runs.recorded_status(run_dir))


# --------------------------------------------------------------------------------------------- a run folder

def _always_defining() -> list[str]:
    """The defining parameters (:func:`nclib.parameters.defining_params`) of every run, whatever its data set: those
    it gives the defaults on each of :data:`nclib.data.DATASETS`, in common, read from it so that a parameter it
    leaves out on some data set (``dim`` and ``spread`` but on the synthetic mixture) is never asked for here.  What
    :func:`refuse_other_run` asks its ``want`` to hold."""
    sets = [parameters.defining_params({**DEFAULTS, "dataset": name}) for name in data.DATASETS]
    return [k for k in DEFAULTS if all(k in s for s in sets)]


def _checked_point(params, name: str = "params") -> dict:
    """``params``, a point's checked parameters, as the functions below read them: a dict holding ``data_path`` and
    every parameter that loading its data reads (:data:`nclib.data.LOAD_KEYS`, :func:`_data_sha256`); ValueError
    naming ``name`` otherwise."""
    missing = [k for k in data.LOAD_KEYS if k not in params] if isinstance(params, Mapping) else None
    if missing is None or missing:
        raise ValueError(f"{name} must be a point's checked parameters (nclib.parameters.check_params), a dict "
                         f"holding {list(data.LOAD_KEYS)}" + (f", got {params!r:.200}" if missing is None else
                                                              f"; it lacks {missing}"))
    return params


def _checked_loaded(loaded) -> dict | None:
    """``loaded``, None or the dict of data checksums a caller shares (:func:`_data_sha256`); ValueError naming
    ``loaded`` otherwise."""
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"loaded must be None or a dict (the data checksums read so far), got {loaded!r:.200}")
    return loaded


def refuse_other_run(run_dir: pathlib.Path, want: dict, params: dict | None = None) -> None:
    """:class:`nclib.runs.RunExists` (a ValueError, :func:`_other_run`) where the ``params.json`` of ``run_dir``
    records another run than the one whose defining parameters are ``want`` (:func:`nclib.parameters.defining_params`):
    read under the folder's lock, so that a point is refused, as :func:`plan` refuses it, where another call (one that
    ties a parameter this one does not, say) made its run in that folder after this call's plan.  The worker of
    :mod:`nclib.sweep` asks it once it holds the folder's lock.  ``run_dir`` a :class:`pathlib.Path` or str, ``want``
    the defining parameters of a checked parameter set (:func:`nclib.parameters.check_params`), as the worker has
    them; ``params``: the point's checked parameters, whose ``data_path`` holds a run recorded with another one where
    its data are the run's and the run is kept (:func:`_differing`, which refuses such a run it would resume); a
    folder without ``params.json`` holds no run and is never refused.  ValueError naming ``run_dir`` for anything but
    a path (:func:`nclib.locks.run_folder_path`), ``want`` for anything but a dict holding the parameters that
    define every run, and ``params`` unless None or a dict holding what loading the data reads
    (:data:`nclib.data.LOAD_KEYS`), before the folder is read."""
    run_dir = run_folder_path(run_dir)
    always = _always_defining()
    missing = [k for k in always if k not in want] if isinstance(want, Mapping) else None
    if missing is None or missing:
        raise ValueError(f"want must be the defining parameters of a checked set (nclib.parameters.defining_params), "
                         f"a dict holding {always}" + (f", got {want!r:.200}" if missing is None else
                                                       f"; it lacks {missing}"))
    if params is not None:
        _checked_point(params)
    if (run_dir / "params.json").is_file():
        differ = _differing(run_dir, want, params, {})
        if differ:
            raise _other_run(run_dir, differ)


def refuse_other_data(params: dict, run_dir: pathlib.Path, loaded: dict | None = None) -> None:
    """:class:`~nclib.runs.OtherData` where the run that a sweep would keep in ``run_dir`` (finished or diverged) was
    trained on other data than the ``data_path`` of its checked parameters ``params`` holds now
    (:func:`nclib.runplan.refuse_other_data`, the comparison of :func:`nclib.train.plan`), or where that file no longer
    loads, so that the run cannot be compared with it: an error of the run in the sweep's table, not a silent keep,
    and not a run trained again (nothing is deleted; :data:`DATA_ADVICE` says what to do).  ``loaded``: a dict this
    function fills, from the data-defining parameters (:data:`nclib.data.LOAD_KEYS`) to what loading them gave, so
    that a sweep whose kept runs share one data selection loads it once, not once per run.  The worker of
    :mod:`nclib.sweep` asks it under the folder's lock before it keeps a run; :func:`kept_run_error` gives its
    refusal as text.  ``params`` as :func:`nclib.parameters.check_params` returns them, ``run_dir`` a
    :class:`pathlib.Path` or str.  ValueError naming ``params`` for anything but a dict holding what loading the
    data reads (:data:`nclib.data.LOAD_KEYS`), ``run_dir`` for anything but a path
    (:func:`nclib.locks.run_folder_path`) and ``loaded`` unless None or a dict, before anything is read."""
    params, run_dir, loaded = _checked_point(params), run_folder_path(run_dir), _checked_loaded(loaded)
    now = None
    if params["data_path"] is not None:
        got = _data_sha256(params, {} if loaded is None else loaded)
        if isinstance(got, Exception):  # the file no longer loads: the run kept is not confirmed either
            raise OtherData(f"run folder {str(run_dir)!r} holds a run whose data cannot be compared with what "
                            f"data_path {params['data_path']!r} holds now, which does not load "
                            f"({type(got).__name__}: {got}); {DATA_ADVICE}", run_dir,
                            runs.recorded_status(run_dir)) from got
        now = got
    runplan.refuse_other_data(params, [run_dir], DATA_ADVICE, now=now)


def kept_run_error(params: dict, run_dir: pathlib.Path, loaded: dict | None = None) -> str | None:
    """The error of a run that :func:`nclib.sweep.run_sweep` would keep (:func:`refuse_other_data`, ``loaded`` as
    there), "OtherData: ...", or None where it is kept: the error :func:`nclib.sweep.run_sweep` records for such a
    run instead of keeping it, and the one :func:`nclib.sweep.list_points` shows.  Arguments as
    :func:`refuse_other_data` takes them, refused as there (ValueError naming the argument)."""
    try:
        refuse_other_data(params, run_dir, loaded)
    except OtherData as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def step_for_status(run_dir, status: str) -> str:
    """What a sweep does with a run folder whose recorded status is ``status`` and that no live process writes:
    "keep" a finished or diverged run, "resume" a stopped, dead or failed one (:data:`nclib.runs.RESUMABLE`) from
    its checkpoint, "start" anything else from epoch 0 (an absent run, or one without a checkpoint).  The one rule
    of both readings of a folder: :func:`next_step` in the plan, and the worker of :mod:`nclib.sweep` once it holds
    the folder's lock.  ``status`` one of :data:`nclib.runs.STATUSES`, as :func:`nclib.runs.run_status` or
    :func:`nclib.runs.recorded_status` read it from ``run_dir`` (a run folder, :class:`pathlib.Path` or str), but
    "running": a folder that a live process writes is left to it (:func:`next_step`), never started again, which
    would delete its run.  ValueError naming ``run_dir`` for anything but a path (:func:`nclib.locks.run_folder_path`)
    and ``status`` for anything else, a misspelled status among them, before the folder is read."""
    run_dir = run_folder_path(run_dir)
    if status not in STATUSES or status == "running":
        raise ValueError(f"status must be one of {[s for s in STATUSES if s != 'running']} (nclib.runs.STATUSES "
                         f"of a folder that no live process writes), got {status!r}")
    if status in FINAL:
        return "keep"
    if status in RESUMABLE and checkpoints.has_checkpoint(run_dir):
        return "resume"
    return "start"


def next_step(run_dir) -> tuple[str, str]:
    """(status, step) of a run folder on a rerun of a sweep (:ref:`ch-sweeps`): its :func:`nclib.runs.run_status` and
    what the sweep does with the folder: "keep", "leave", "resume", "start" or "refuse".  Finished and diverged runs
    are kept (on their own data only: the sweep then compares them, :func:`refuse_other_data`); a run another live
    process writes (it holds the folder's lock) is left to it; a stopped, dead (killed without recording an end) or
    failed run (:data:`nclib.runs.RESUMABLE`) is resumed where it has a checkpoint to resume from, as
    ``resume="auto"`` of the command line and the training notebook do, else started again, as is an absent one (a
    run whose resume is refused is started again only on request, ``restart_refused``, by the worker of
    :func:`nclib.sweep.run_sweep` and :func:`nclib.sweep.run_point`).  A run not kept whose lock file names a writer
    on another host (:func:`nclib.locks.other_host_lock`) is refused: its run is an error naming the lock file to
    remove.  What the folder holds may change after this reading; the worker decides again once it holds the folder's
    lock (:func:`nclib.train.run_under_lock`)."""
    status = run_status(run_dir)
    if status == "running":
        return status, "leave"
    step = step_for_status(run_dir, status)
    if step != "keep" and other_host_lock(run_dir) is not None:
        return status, "refuse"
    return status, step
