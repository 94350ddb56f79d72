"""The plan of a call over its run folders, read without torch: what each folder records of the run made there, its
parameters (:func:`differing_params`), its data (:func:`refuse_other_data`) and its device
(:func:`device_difference`), set against the call's, and what the call does with each folder (:func:`plan_runs`:
start, resume or skip, or a refusal naming the folder and what it needs).  Chapters: :ref:`ch-train` (the plan of
the training notebook's call, :func:`nclib.train.plan`) and :ref:`ch-sweeps` (the runs a sweep keeps).

A plan never answers "resume" for runs whose checkpoints are at different epochs, which a resume refuses together
(:func:`epochs_apart_advice` says how to bring them to one epoch), and never advises deleting a run that can
continue.  It asks :mod:`nclib.checkpoints` whether a folder holds a checkpoint, and at which epoch.

The folder itself (its names, files and columns, its status, the atomic write, reading it back, clearing it) is the
run-folder contract of :mod:`nclib.runs`, whose statuses, records and refusals this module reads and raises; this
module imports that one, never the other way round.
"""
from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Mapping

from . import _checks
from .checkpoints import has_checkpoint, recorded_epoch
from .data import load_for
from .locks import RunFolderBusy, RunLockedElsewhere, lock_owner, other_host_lock, run_folder_path, run_folder_paths
from .runs import (RESUMABLE, OtherData, RunExists, json_values, read_params, recorded_status, run_status,
                   setting_text)


def _a(status: str) -> str:
    """The article before a status in a message: 'an absent run', 'a finished run'."""
    return f"{'an' if status[0] in 'aeiou' else 'a'} {status}"


def differing_params(run_dir, want, saved=False) -> dict:
    """{name: (saved, wanted)} for each parameter of ``want`` (a dict of the parameters that define a run) that
    the ``params.json`` of ``run_dir`` records otherwise (compared as :func:`nclib.runs.json_values`; an unreadable
    or missing file records nothing); empty when the folder holds that run (:ref:`ch-train`).  ``saved``: that
    file's contents as :func:`nclib.runs.read_params` read them already (a sweep compares a point with the run folders
    of its output folder that record its run's parameters, reading each file once); by default the file is read here.

    ``data_path`` spelled otherwise (relative or absolute) but naming the same existing file is the same.
    A parameter that a readable ``params.json`` lacks reads as its default (:data:`nclib.parameters.DEFAULTS`): it
    was added to the engine after the run was made, with a default that keeps the behaviour from before it
    (``CONTRIBUTING.md``), so an older run folder still holds the run its parameters describe.  ValueError naming
    ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`), ``want`` for anything
    but a dict and ``saved`` for anything but a dict or None."""
    from .parameters import DEFAULTS  # here: nclib.parameters imports this module

    run_dir = run_folder_path(run_dir)
    if not isinstance(want, Mapping):
        raise ValueError(f"want must be a dict of the parameters that define a run, got {want!r:.200}")
    if saved is not False and saved is not None and not isinstance(saved, dict):
        raise ValueError(f"saved must be the contents of a params.json as read_params reads them (a dict, or None), "
                         f"got {saved!r:.200}")

    if saved is False:
        saved = read_params(run_dir)
    want = json_values(want)
    if not isinstance(saved, dict):
        return {k: (None, v) for k, v in want.items() if v is not None}
    recorded = {k: saved[k] if k in saved else json_values({k: DEFAULTS.get(k)})[k] for k in want}
    return {k: (recorded[k], v) for k, v in want.items() if recorded[k] != v
            and not (k == "data_path" and same_file(recorded[k], v))}


def refuse_other_data(params, run_dirs, advice: str, now: str | None = None) -> None:
    """Refuse to read back the runs of ``run_dirs`` (finished or diverged, trained together on one data set) as the
    runs of the checked parameters ``params`` (``nclib.parameters.check_params``) where their data file now holds
    other data: the file rewritten at the same ``data_path`` since, say.  The data are loaded
    (:func:`data_sha256_now`) and their ``data_sha256`` compared with each run's ``provenance.json``, as a resume
    compares them; runs whose data are drawn from the seed or rendered now (no ``data_path``) have no file to check.
    ``now``: that ``data_sha256`` where the caller has it already (a sweep loads each data selection once for all
    the runs it keeps), compared without loading; None loads the data.
    :class:`nclib.runs.OtherData` naming the folder, both checksums and the path, then ``advice`` (what the caller
    offers: to train again, delete, or put the data back); a data file that no longer loads raises what loading it
    raises.
    ValueError naming ``params`` where it holds no ``data_path``, ``run_dirs`` for one path alone or anything but a
    list of run folders (:func:`nclib.locks.run_folder_paths`), ``advice`` for anything but text, and ``now``
    unless None or a SHA-256 hex digest, before anything is read.  Used in :ref:`ch-train` (the notebook's
    :func:`nclib.train.run_planned`) and :ref:`ch-sweeps` (the runs a sweep keeps)."""
    if not isinstance(params, Mapping) or "data_path" not in params:
        raise ValueError(f"params must be a run's checked parameters, data_path among them, got {params!r}")
    run_dirs = run_folder_paths(run_dirs)  # one folder alone refused: its characters are no folders
    if not isinstance(advice, str):
        raise ValueError(f"advice must be the text a refusal ends with (what the caller offers), got {advice!r:.200}")
    if now is not None and not (isinstance(now, str) and re.fullmatch(r"[0-9a-f]{64}", now)):
        raise ValueError(f"now must be None or the data's SHA-256 hex digest, got {now!r}")
    if params["data_path"] is None:
        return
    if now is None:
        now = data_sha256_now(params)
    for d in run_dirs:
        try:
            then = json.loads((d / "provenance.json").read_text()).get("data_sha256")
        except (OSError, ValueError, AttributeError):
            then = None
        if then != now:
            status = recorded_status(d)
            raise OtherData(f"run folder {str(d)!r} holds {_a(status)} run trained on other data than data_path "
                            f"{params['data_path']!r} holds now: data_sha256 {str(then)[:12]}... then, {now[:12]}... "
                            f"now; {advice}", d, status)


def data_sha256_now(params) -> str:
    """The ``data_sha256`` of the training set that the checked parameters ``params`` select now
    (:func:`nclib.data.load_for`: the data file read, the classes and counts selected, the order drawn), which
    :func:`refuse_other_data` compares with a run's ``provenance.json``, and :mod:`nclib.sweep` once per data
    selection for the runs a sweep keeps; what loading raises where it does not load."""
    return load_for(params).provenance["data_sha256"]


def same_file(a, b) -> bool:
    """Whether two data paths name one existing file, however spelled (relative or absolute, through links): the
    data's checksum, compared on resume, guards its content."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    try:
        return pathlib.Path(a).expanduser().samefile(pathlib.Path(b).expanduser())
    except OSError:  # one of them is missing: no file to be the same
        return False


#: A device as a run names it, in its parameter ``device`` (but ``"auto"``) and in its provenance: the CPU, ``cpu``,
#: or a CUDA device, ``cuda`` (the current one) or ``cuda:<index>`` (a card).
_DEVICE = re.compile(r"(cpu)|(cuda)(?::[0-9]+)?")


def device_kind(device) -> str | None:
    """The kind of device, ``"cpu"`` or ``"cuda"``, that ``device`` names as a run's parameters and provenance write
    it: ``"cpu"``, ``"cuda"`` (the current GPU) or ``"cuda:<index>"`` (a card, its kind ``"cuda"``).  None for
    anything else: ``"auto"``, which names no device until a machine resolves it
    (:func:`nclib.parameters.device_type`), a device nclib does not train on (``"mps"``), text that names no
    device, and no text.  The one reading of a device's kind: a plan (:func:`device_difference`), the figures'
    checks of a run's provenance (:func:`nclib.figures.provenance_problems`) and the parameters
    (:func:`nclib.parameters.device_type`) all read it here.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    found = _DEVICE.fullmatch(device) if isinstance(device, str) else None
    return None if found is None else found.group(1) or found.group(2)


def _recorded_device(run_dir):
    """The device the provenance of ``run_dir`` records (the device the run resolved, never "auto"), as written;
    None where the folder records none."""
    run_dir = run_folder_path(run_dir)
    try:
        device = json.loads((run_dir / "provenance.json").read_text()).get("device")
    except (OSError, ValueError, AttributeError):
        return None
    return device if device else None


def recorded_device_type(run_dir) -> str | None:
    """The kind of device (:func:`device_kind`: "cpu" or "cuda") the run in ``run_dir`` was trained on, from its
    provenance; None where the folder records no device, or one of no such kind.  ValueError naming ``run_dir`` for
    an empty path or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    return device_kind(_recorded_device(run_dir))


def device_difference(run_dir, kind: str | None) -> dict:
    """``{"device": (recorded, kind)}`` when the run in ``run_dir`` was trained on another kind of device than
    ``kind`` ("cpu", "cuda", or None for any; a card, "cuda:<i>", is its kind "cuda"), else ``{}``: a difference in
    the form of :func:`differing_params`.  ``recorded`` is the kind the provenance's device names
    (:func:`device_kind`), or that device as written where it names no kind ("mps"), which differs from every
    ``kind``; a folder that records no device differs from none.  ValueError naming ``kind`` for anything else
    ("gpu", "auto", a number)."""
    if kind is not None and device_kind(kind) is None:
        raise ValueError(f"kind must be 'cpu', 'cuda' (or a card, 'cuda:<i>') or None for any device, got {kind!r}")
    kind = None if kind is None else device_kind(kind)
    device = _recorded_device(run_dir)
    recorded = device_kind(device) or device
    return {"device": (recorded, kind)} if kind is not None and recorded not in (None, kind) else {}


def differences_text(differ: dict) -> str:
    """The answer of :func:`differing_params` as a refusal names it: ``lr = 0.001, now 0.01; ...`` (the first
    five, and how many more).  ValueError naming ``differ`` for anything but such a dict ({name: (recorded,
    wanted)})."""
    if not isinstance(differ, Mapping) or not all(isinstance(v, tuple) and len(v) == 2 for v in differ.values()):
        raise ValueError(f"differ must be a dict of name -> (recorded, wanted), as differing_params gives it, got "
                         f"{differ!r:.200}")
    shown = [f"{k} = {was!r}, now {now!r}" for k, (was, now) in list(differ.items())[:5]]
    more = len(differ) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def plan_runs(run_dirs, overwrite: bool = False, params=None, devices=None) -> str:
    """What a caller that must never lose a run does with the folders ``run_dirs`` of runs trained together
    (:ref:`ch-train`): "start" (all absent, or ``overwrite=True``), "resume" (all stopped, dead or failed with a
    checkpoint, :func:`nclib.checkpoints.has_checkpoint`, and their checkpoints' records at one epoch), "skip" (all
    finished).  ``params``: one dict per folder of the parameters that define its run; a folder whose
    ``params.json`` differs in one of them is refused.  ``devices``: one device type per folder ("cpu", "cuda", or
    None for any), the kind a run must have been trained on; a run recorded on another kind
    (:func:`recorded_device_type`) is refused too.  Reads only.  Anything else is refused with
    :class:`nclib.locks.RunFolderBusy` (a live writer), :class:`nclib.locks.RunLockedElsewhere` (the lock file of
    a writer on another host, :func:`nclib.locks.other_host_lock`, which :func:`nclib.locks.lock_run` refuses too,
    whatever the folder's status; every such folder named) or :class:`nclib.runs.RunExists` naming the folder and
    its status: other parameters (``overwrite=True`` replaces the run), or runs that cannot continue together (a
    diverged or finished run beside one that can, a run without a checkpoint): the refusal says what each run needs
    and never advises deleting a run that can continue, and its ``continuable`` lists the runs that continue in a
    call without the others; or runs whose checkpoints are at different epochs (a stop that reached only some of
    them), which the resume would refuse together: the refusal names the runs behind and how to bring them to the
    leading epoch.  ``run_dirs`` is a list (or another iterable) of folders: one path alone, a str or a Path, is
    refused with a ValueError naming it, and so are ``params`` and ``devices`` given otherwise than as one entry per
    folder (one dict or one device type for all of them, whose keys or characters would be compared one per run)."""
    overwrite = _checks.flag(overwrite, "overwrite")
    run_dirs = run_folder_paths(run_dirs)  # one folder alone refused: its characters are no folders
    if params is not None:
        params = _checks.one_per_folder(params, "params", "dict", len(run_dirs),
                                        lambda x: x is None or isinstance(x, dict))
    if devices is not None:
        devices = _checks.one_per_folder(devices, "devices", "device type ('cpu', 'cuda' or None)", len(run_dirs),
                                         lambda x: x in (None, "cpu", "cuda"))
    status = {d: run_status(d) for d in run_dirs}
    # the lock files of writers on other hosts, which lock_run refuses: refused here too, every one named at once
    elsewhere = {d: o for d in run_dirs if status[d] != "running" and (o := other_host_lock(d)) is not None}
    for d, s in status.items():
        if s == "running":
            owner = lock_owner(d) or {}
            raise RunFolderBusy(f"run folder {str(d)!r} is being written by another process (pid {owner.get('pid')} "
                                f"on host {owner.get('host')!r})"
                                + (f"; and {RunLockedElsewhere.naming(elsewhere)}" if elsewhere else ""), d, owner)
    if elsewhere:
        raise RunLockedElsewhere.naming(elsewhere)
    if overwrite or all(s == "absent" for s in status.values()):
        return "start"
    together = ", ".join(f"{x.name} {y}" for x, y in status.items())
    nothing = [None] * len(run_dirs)
    for (d, s), want, kind in zip(status.items(), params or nothing, devices or nothing):
        if s == "absent":
            continue
        differ = {**({} if want is None else differing_params(d, want)), **device_difference(d, kind)}
        if differ:
            others = "" if len(status) == 1 else (
                " (in a call of its own: in a call with the other runs it would delete them too)")
            raise RunExists(f"run folder {str(d)!r} holds {_a(s)} run with other parameters ({differences_text(differ)}"
                            f"); give the runs another run name or out_dir, or start this run again with "
                            f"{setting_text('overwrite', True, without='--resume')}{others}, which deletes it", d, s)
    if all(s == "finished" for s in status.values()):
        return "skip"
    resumable = {d: s in RESUMABLE and has_checkpoint(d) for d, s in status.items()}
    if all(resumable.values()):
        epochs = {d: e for d in run_dirs if (e := recorded_epoch(d)) is not None}
        apart = epochs_apart_advice(epochs)
        if apart:  # a stop that reached only some of the runs: the resume would refuse them together
            d = min(epochs, key=epochs.get)
            raise RunExists(f"run folder {str(d)!r} holds {_a(status[d])} run whose checkpoint is at another epoch "
                            f"than those of the runs trained with it ({together}): {apart}", d, status[d])
        return "resume"
    d = next(d for d, ok in resumable.items() if not ok)
    s = status[d]
    go_on = [x for x, ok in resumable.items() if ok]
    raise RunExists(f"run folder {str(d)!r} holds {_a(s)} run" + (" without a checkpoint" if s in RESUMABLE else "")
                    + (f" (the runs trained with it: {together})" if len(status) > 1 else "") + "; "
                    + _mixed_advice(status, resumable), d, s, go_on)


def epochs_apart_advice(epochs) -> str | None:
    """What to do about the runs of one call whose checkpoints are at different epochs (a stop that reached only
    some of them, a kill while their checkpoints were committed, or a run resumed alone), which cannot continue
    together: ``epochs`` maps each run folder (a path) to the epoch of its checkpoint.

    Returns None where every checkpoint is at one epoch (one run, or none, included); else a sentence naming the
    runs' epochs, the runs behind the leading epoch, and how to bring them to it: each resumed in a call of its own
    with ``max_train_s=0``, which trains it to its next metric epoch and stops it there (every stop is at a metric
    epoch), until it stops at the leading one; then the runs continue together.  The plan of a call
    (:func:`plan_runs`, from the epochs the checkpoints' records hold) and the resume of :func:`nclib.train.run`
    (after reading the checkpoints themselves) refuse such runs with it.  ValueError naming ``epochs`` for anything
    but a mapping of paths to non-negative integers."""
    if not isinstance(epochs, Mapping):
        raise ValueError(f"epochs must map run folders to the epochs of their checkpoints, got {epochs!r}")
    for d, e in epochs.items():
        if not isinstance(d, pathlib.PurePath):
            raise ValueError(f"epochs must map run folders (paths) to epochs, got the key {d!r}")
        _checks.nonneg_int(e, f"epochs[{str(d)!r}]")
    if len(set(epochs.values())) < 2:
        return None
    lead = max(epochs.values())
    behind = [d.name for d, e in epochs.items() if e < lead]
    return (f"the checkpoints are at epochs {', '.join(f'{d.name} {e}' for d, e in epochs.items())} (a stop that "
            f"reached only some of the runs, killed while their checkpoints were committed, or a run resumed "
            f"alone), and runs continue together only from one epoch; to bring {', '.join(behind)} to epoch {lead}, "
            f"resume "
            f"{'it' if len(behind) == 1 else 'each of them'} in a call of its own with "
            f"{setting_text('max_train_s', 0)}, which trains a run to its next metric epoch and stops it there, "
            f"until it stops at epoch {lead}; then all of them continue together")


def _mixed_advice(status: dict, resumable: dict) -> str:
    """What to do with runs of one call that cannot continue together (:func:`plan_runs`): the runs that can
    continue keep their checkpoints, and only runs that cannot are ever advised to be deleted."""
    overwrite = setting_text("overwrite", True, without="--resume")
    again = f"start it in a call of its own with {overwrite}, which deletes it"
    why = {"finished": "is finished", "absent": "has not started: start it in a call of its own",
           "diverged": f"diverged, a result of its parameters: to train it again, {again}"}
    left = {x: why.get(s, f"is {s} without a checkpoint: it can only start again; {again}")
            for x, s in status.items() if not resumable[x]}
    go_on = [x.name for x, ok in resumable.items() if ok]
    notes = "".join(f" {x.name} {text}." for x, text in left.items())
    if go_on:
        return (f"runs continue together only when each of them can: leave {', '.join(x.name for x in left)} out of "
                f"the call, and {', '.join(go_on)} continue{'s' if len(go_on) == 1 else ''} from "
                f"{'its checkpoint' if len(go_on) == 1 else 'their checkpoints'}.{notes}")
    if len(status) == 1:
        return f"it cannot continue; {overwrite} starts it again, deleting it"
    if all(s != "finished" for s in status.values()):
        return f"none of them can continue; {overwrite} starts them again, deleting them"
    return f"none of them can continue.{notes}"
