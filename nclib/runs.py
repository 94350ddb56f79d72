"""Run folders of :mod:`nclib.train`, read and written without torch: the book's figure chapters and the
plotting helpers read committed runs on any machine (and without the 5 s of importing torch).

A run folder holds ``params.json``, ``history.csv`` (one row per metric epoch, the columns of
:data:`HISTORY_COLUMNS`), ``class_accuracy.csv`` (:data:`CLASS_ACCURACY`; runs made before it was recorded have
none) and ``provenance.json``; each is written atomically by :func:`atomic_write_text`, whose temporary file a
kill can leave behind (:func:`is_write_temporary`: the next call that writes the run deletes it).  A run stopped by
``max_train_s`` or a job's SIGTERM, and one that trains with ``checkpoint_every`` once it has passed that many epochs,
also holds :data:`CHECKPOINT` and its sha256 beside it (:data:`CHECKSUM`).

The contract that keeps a run folder whole (:ref:`ch-engine`):

- a run name is one folder name inside ``out_dir`` (:func:`check_run_name`), never ``.``, ``..``, a path or empty;
- one writer per run folder: :func:`nclib.locks.lock_run` takes an exclusive lock (:data:`nclib.locks.LOCK`,
  holding the writer's pid and host) before anything in the folder is written or deleted (:mod:`nclib.locks`);
- :func:`run_status` says what a folder holds ("absent", "running", "finished", "stopped", "diverged",
  "failed", or "dead": a run whose writer ended without recording an end, after a crash or SIGKILL);
- a folder is read back (:func:`load_run`, :func:`load_history`, :func:`load_class_accuracy`,
  :func:`read_params`), its records written as JSON (:func:`to_json`, :func:`json_values`), and cleared for
  ``overwrite=True`` (:func:`clear_run_folder`).

That is this module's one concern.  What a call does with its folders, their runs' parameters, data and device
set against the call's, and whether it starts, resumes or skips them (:func:`nclib.runplan.plan_runs`, never
"resume" for runs whose checkpoints are at different epochs, :func:`nclib.runplan.epochs_apart_advice`), is the
plan of :mod:`nclib.runplan`, which imports this module (this module never imports it).

A run's checkpoint is committed and verified by :mod:`nclib.checkpoints`: written to
``checkpoint.pt.tmp``, its sha256 recorded in :data:`CHECKSUM` (the commit point), then renamed to
:data:`CHECKPOINT`, and read by a resume only once its bytes are those its writer recorded
(:class:`CheckpointDamaged` otherwise).  That module imports this one (the file names, the atomic write, the
refusals); :func:`nclib.runplan.plan_runs` asks it whether a folder holds a checkpoint, and at which epoch.
"""
from __future__ import annotations

import csv
import json
import os
import pathlib
import re
from collections.abc import Mapping

import numpy as np

from . import _checks
from .locks import LOCK, lock_owner, run_folder_path, writer_tag

#: The collapse metrics of a history row, in the paper's order: ``nclib.metrics.collapse_metrics`` at the run's
#: own lambdas (:ref:`ch-metrics`).
NC_COLUMNS = ("nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3")

#: The columns that an evaluation of the model on the training set writes (``nclib.engine``'s ``host_metrics``):
#: the collapse metrics, the training accuracy, ``||b - n/N||`` and the norm of the global feature mean.
METRIC_COLUMNS = (*NC_COLUMNS, "train_acc", "bias_error", "global_mean_norm")

#: The columns of ``history.csv``, in order (:ref:`ch-train`).  ``wall_time`` is the seconds of training up to the
#: row, summed over the calls that trained the run (without loading data, building the networks or writing
#: checkpoints: the provenance's ``train_time_s``, not its ``wall_time_s``).
HISTORY_COLUMNS = ("epoch", "lr", "loss", "objective", *METRIC_COLUMNS, "wall_time")

#: Every column but ``wall_time``: what a rerun, a resume or a run trained beside others reproduces number for
#: number (:ref:`ch-engine`).
REPRODUCIBLE_COLUMNS = tuple(c for c in HISTORY_COLUMNS if c != "wall_time")

#: Columns added to :data:`HISTORY_COLUMNS` after runs were committed without them: :func:`load_history` gives
#: NaN for such a column where a run lacks it (every other column must be there).  A new metric is appended
#: here and to :data:`METRIC_COLUMNS` (CONTRIBUTING.md, "Adding a metric"); none has been added so far.
ADDED_COLUMNS: tuple[str, ...] = ()


#: The file of a stopped run from which ``resume=True`` continues (model, Adam, the batch generator, the history so
#: far); removed when the run finishes.  Never committed (``.gitignore``).
CHECKPOINT = "checkpoint.pt"

#: The sha256 of :data:`CHECKPOINT`, written beside it (JSON: file, sha256, bytes, epoch) before the rename.
CHECKSUM = "checkpoint.pt.sha256"

#: Every file name a run writes in its folder; :func:`clear_run_folder` deletes nothing else.
RUN_FILES = ("params.json", "history.csv", "class_accuracy.csv", "provenance.json", CHECKPOINT, CHECKSUM,
             CHECKPOINT + ".tmp", LOCK)

#: The statuses :func:`run_status` returns.
STATUSES = ("absent", "running", "finished", "stopped", "diverged", "failed", "dead")


#: The statuses of a run that its checkpoint continues (:func:`nclib.runplan.plan_runs`, ``resume=True``): stopped by
#: ``max_train_s`` or a job's SIGTERM, dead (its writer was killed), or failed (an error in a call), each from the
#: last checkpoint it holds: that of a stop, or the latest of ``checkpoint_every``.  Without a checkpoint such a run
#: can only start again.
RESUMABLE = ("stopped", "dead", "failed")


class RunExists(ValueError):
    """The run folder ``run_dir`` already holds a run (``status``, one of :data:`STATUSES`) that the call would
    replace; ``overwrite=True`` replaces it, ``resume=True`` continues a run of :data:`RESUMABLE` status from its
    checkpoint.  ``continuable``: the run folders of the call that would continue from their checkpoints in a call
    of their own (:func:`nclib.runplan.plan_runs`, runs in different states), the others left out; empty where none
    would."""

    def __init__(self, message: str, run_dir, status: str, continuable=()):
        super().__init__(message)
        self.run_dir, self.status = pathlib.Path(run_dir), status
        self.continuable = tuple(pathlib.Path(d) for d in continuable)


class OtherData(RunExists):
    """The run folder ``run_dir`` holds a finished (or diverged) run trained on other data than its ``data_path``
    holds now, the file rewritten at that path since, say (:func:`nclib.runplan.refuse_other_data`): the run is not
    read back as the result of these data, and not deleted either."""


class ResumeRefused(ValueError):
    """``resume=True`` would not continue the run that the folder ``run_dir`` holds (other parameters, code,
    device, data, or no checkpoint)."""

    def __init__(self, message: str, run_dir):
        super().__init__(message)
        self.run_dir = pathlib.Path(run_dir)


class CheckpointDamaged(ResumeRefused):
    """The checkpoint ``path`` is not the file its writer recorded (truncated, corrupted, or without its
    :data:`CHECKSUM`)."""

    def __init__(self, message: str, run_dir, path):
        super().__init__(message, run_dir)
        self.path = pathlib.Path(path)


def setting_text(name: str, value, without: str | None = None) -> str:
    """A parameter's setting as a refusal of the training engine advises it, in the spelling of both its callers:
    the keyword of :func:`nclib.train.run` (the training notebook's parameter is the same name) and the flag of
    ``python -m nclib.train``, e.g. ``overwrite=True (--overwrite true)``; ``without``: a flag the command line
    must then leave out (``"--resume"``) (:ref:`ch-train`).  ValueError naming ``name`` or ``without`` for
    anything but a parameter name and a flag."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a parameter name, got {name!r}")
    if without is not None and (not isinstance(without, str) or not without.startswith("--")):
        raise ValueError(f"without must be None or a flag such as '--resume', got {without!r}")
    word = str(value).lower() if isinstance(value, bool) or value is None else str(value)
    return f"{name}={value!r} (--{name.replace('_', '-')} {word}" + (f", without {without}" if without else "") + ")"


#: The longest folder name, in bytes, that the common file systems take (ext4, XFS, Btrfs, NFS, Lustre: NAME_MAX).
NAME_MAX = 255


def check_run_name(run_name) -> str:
    """A run name is one folder name inside ``out_dir``: a non-empty string, not ``.`` or ``..``, without a path
    separator or NUL, not absolute, at most :data:`NAME_MAX` bytes as the file system stores it; anything else is
    refused by name (ValueError naming ``run_name``) before a file is touched, since ``overwrite=True`` deletes the
    folder it names (:ref:`ch-train`).  The names made from a run tag or a sweep's grid values are checked whole."""
    seps = {"/", "\\", os.sep, os.altsep or "/", "\0"}
    if (not isinstance(run_name, str) or not run_name.strip() or run_name in (".", "..")
            or any(c in run_name for c in seps) or os.path.isabs(run_name)):
        raise ValueError(f"run_name must be one folder name inside out_dir (not '.', '..', empty, or with a path "
                         f"separator), got {run_name!r}")
    try:
        size = len(os.fsencode(run_name))
    except UnicodeEncodeError:
        raise ValueError(f"run_name must be a folder name the file system can store, got {run_name!r}") from None
    if size > NAME_MAX:
        raise ValueError(f"run_name must be at most {NAME_MAX} bytes, the longest folder name a file system takes; "
                         f"got {size} bytes: {run_name[:60]!r}...; give a shorter run_name (or run tag)")
    return run_name


def fsync_folder(folder) -> None:
    """Put the entries of ``folder`` on disk: fsync the folder itself, so that a file written, renamed or deleted in
    it stays so after a power loss (a file's own fsync keeps its bytes, not its name).  How a run folder orders what
    a crash may cut (:func:`clear_run_folder`; :func:`nclib.checkpoints.commit_checkpoint`, whose checksum must be on
    disk before its checkpoint's rename, :ref:`ch-engine`).  Nothing where the folder cannot be opened or the file
    system refuses an fsync of a folder: the order then rests on the file system's.  ValueError naming ``folder``
    for an empty path or anything but a path."""
    folder = _checks.path_arg(folder, "folder", "the path of a folder", blank=False)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, ``os.replace`` (how a
    run folder of :ref:`ch-train` is written, so an interruption never leaves a half-written file).  The temporary
    file is named by the writer's host and pid, so that writers on two nodes of a cluster sharing the folder never
    write one temporary file.  ValueError naming ``path`` for anything but a path (a str or a path, not empty) and
    ``text`` for anything but a str, before anything is written."""
    path = pathlib.Path(_checks.path_arg(path, "path", "the path of the file to write"))
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, the file's text, got {type(text).__name__} {text!r:.100}")
    tmp = path.with_name(f".{path.name}.{writer_tag()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_history(run_dir) -> dict[str, np.ndarray]:
    """The metric history of a run folder as {column: array} (epoch as int64, the rest float64): the curves of
    Figures 1-4 (:ref:`ch-train`).  Every column of :data:`HISTORY_COLUMNS` must be there, except one of
    :data:`ADDED_COLUMNS`, which is NaN throughout for a run made before it existed; ValueError otherwise, naming
    the row where one is cut short, holds a value that is not a number or holds more values than the header has
    columns (two rows run together where a newline was lost), and for a ``run_dir`` that is empty or no path
    (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    path = run_dir / "history.csv"
    if not path.is_file():
        raise ValueError(f"run_dir {str(run_dir)!r} has no history.csv")
    with open(path) as f:
        reader = csv.DictReader(f)
        absent = [k for k in HISTORY_COLUMNS if k not in (reader.fieldnames or ())]
        missing = [k for k in absent if k not in ADDED_COLUMNS]
        if missing:
            raise ValueError(f"run_dir {str(run_dir)!r}: history.csv has no column {', '.join(missing)}")
        rows = list(reader)
        width = len(reader.fieldnames or ())
    long = next((i for i, r in enumerate(rows) if None in r), None)  # csv keeps a row's extra values under None
    if long is not None:
        raise ValueError(f"run_dir {str(run_dir)!r}: history.csv row {long + 1} has {width + len(rows[long][None])} "
                         f"values, its header {width} columns (rows run together)")
    out = {}
    for k in HISTORY_COLUMNS:
        if k in absent:  # a column added after the run was made
            out[k] = np.full(len(rows), np.nan)
            continue
        try:
            out[k] = np.array([float(r[k]) for r in rows])
        except (TypeError, ValueError):  # a row cut short (None) or a field that is not a number
            bad = next(i for i, r in enumerate(rows) if not _is_number(r[k]))
            raise ValueError(f"run_dir {str(run_dir)!r}: history.csv row {bad + 1} has no number in column {k} "
                             f"({rows[bad][k]!r})") from None
    out["epoch"] = out["epoch"].astype(np.int64)
    return out


def _is_number(text) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def metric_epochs(epochs: int, metric_every: int) -> list[int]:
    """The epochs at which :func:`nclib.train.run` records a history row for a run of ``epochs`` epochs: epoch 0,
    every ``metric_every``-th epoch and the last one (a diverged run's history is a prefix of these)."""
    epochs, metric_every = _checks.positive_int(epochs, "epochs"), _checks.positive_int(metric_every, "metric_every")
    return sorted({0, *range(metric_every, epochs + 1, metric_every), epochs})


#: The file of a run folder with the training accuracy of each class per metric epoch (runs made before it
#: was recorded have none).
CLASS_ACCURACY = "class_accuracy.csv"


def load_class_accuracy(run_dir) -> dict | None:
    """``{"epoch": (E,) int array, "acc": (E, K) array}`` from a run folder's ``class_accuracy.csv`` (entry [e, k]:
    the training accuracy of class k at the e-th recorded epoch), or None when the run has no such file (runs
    made before it was recorded) (:ref:`ch-fig1` to :ref:`ch-fig4`).  A file without the header ``epoch, class_0,
    ...`` or without rows, a row with another number of values than its header has columns, and a value that is
    not a number are refused with a ValueError naming ``run_dir``, the row and the column, as
    :func:`load_history` does (and a ``run_dir`` that is empty or no path)."""
    run_dir = run_folder_path(run_dir)
    path = run_dir / CLASS_ACCURACY
    if not path.is_file():
        return None
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    classes = [f"class_{k}" for k in range(len(header) - 1)]
    if len(header) < 2 or header[0] != "epoch" or header[1:] != classes or not body:
        raise ValueError(f"run_dir {str(run_dir)!r}: {CLASS_ACCURACY} has no header 'epoch, class_0, ...' (it has "
                         f"{', '.join(header[:4]) or 'none'}{', ...' if len(header) > 4 else ''}) or no rows")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError(f"run_dir {str(run_dir)!r}: {CLASS_ACCURACY} row {i + 1} has {len(r)} values, its "
                             f"header {len(header)} columns (a row cut short or run on)")
        for name, v in zip(header, r):
            if not _is_number(v):
                raise ValueError(f"run_dir {str(run_dir)!r}: {CLASS_ACCURACY} row {i + 1} has no number in column "
                                 f"{name} ({v!r})")
    arr = np.array([[float(v) for v in r] for r in body])
    return {"epoch": arr[:, 0].astype(np.int64), "acc": arr[:, 1:]}


def load_run(run_dir) -> tuple[dict, dict, dict]:
    """(params, history, provenance) of a run folder written by :func:`nclib.train.run` (:ref:`ch-train`); ValueError
    naming ``run_dir`` when one of its three files is missing, and naming the file when ``params.json`` or
    ``provenance.json`` is not a JSON object (damaged, cut short), and naming ``run_dir`` for an empty path or
    anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    missing = [name for name in ("params.json", "history.csv", "provenance.json") if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(f"run_dir {str(run_dir)!r} is not a run folder of nclib.train.run: no {', '.join(missing)}")
    params, prov = (read_record(run_dir / name) for name in ("params.json", "provenance.json"))
    return params, load_history(run_dir), prov


def read_record(path) -> dict:
    """The JSON object that a run folder's ``params.json`` or ``provenance.json`` at ``path`` holds, as
    :func:`load_run` and a sweep's table (:mod:`nclib.sweeptable`) read it; ValueError naming the file where it holds
    none (damaged, cut short, or another JSON value), and naming ``path`` for anything but a path; OSError where the
    file cannot be read."""
    path = pathlib.Path(_checks.path_arg(path, "path", "the path of a run folder's JSON file"))
    try:
        record = json.loads(path.read_text())
    except ValueError as exc:  # not JSON, or not text (UnicodeDecodeError)
        raise ValueError(f"{str(path)!r} is damaged or cut short: not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{str(path)!r} holds a JSON {type(record).__name__}, not the object of a run's record")
    return record


#: The name of a temporary file that :func:`atomic_write_text` leaves when cut off while it writes one of
#: :data:`RUN_FILES`: ``.<name>.<host>.<pid>.tmp`` (:func:`nclib.locks.writer_tag`), or as earlier versions named it,
#: ``.<name>.<pid>.tmp`` and ``.<name>.tmp``.  Any other hidden file is not the run's.
_WRITE_TEMPORARY = re.compile(r"\.(?:" + "|".join(re.escape(n) for n in RUN_FILES if n != LOCK)
                              + r")(?:\.(?:[A-Za-z0-9._-]+\.)?[0-9]+)?\.tmp")  # writer_tag\'s host alphabet


def is_write_temporary(name) -> bool:
    """Whether the file name ``name`` is that of a temporary file :func:`atomic_write_text` leaves when it is cut off
    (SIGKILL, a power loss) while it writes one of :data:`RUN_FILES`, ``.history.csv.<host>.<pid>.tmp`` say: no
    part of the run, deleted by the next writer of its folder (:func:`remove_write_temporaries`) and never copied
    with it (``scripts/land_gpu_runs.py``) (:ref:`ch-engine`).  ValueError naming ``name`` for anything but a str."""
    if not isinstance(name, str):
        raise ValueError(f"name must be a file name (a str), got {name!r}")
    return _WRITE_TEMPORARY.fullmatch(name) is not None


def remove_write_temporaries(run_dir) -> list[str]:
    """Delete the temporary files that writes cut off left in ``run_dir`` (:func:`is_write_temporary`), and return
    their names: with the folder's lock held (:func:`nclib.locks.lock_run`), as a call that starts or resumes a run
    holds it, no write of another process is under way there, so each such file is a leftover (:ref:`ch-engine`).
    ValueError naming ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    if not run_dir.is_dir():
        return []
    gone = sorted(e.name for e in run_dir.iterdir() if is_write_temporary(e.name) and e.is_file())
    for name in gone:
        (run_dir / name).unlink(missing_ok=True)
    return gone


def clear_run_folder(run_dir, check_only: bool = False) -> None:
    """Delete the files of the run in ``run_dir`` (``overwrite=True``), keeping the lock the caller holds.  Only
    the files a run writes (:data:`RUN_FILES`, and the temporaries of :func:`atomic_write_text` writing one of
    them: ``.history.csv.<host>.<pid>.tmp``, or ``.history.csv.<pid>.tmp`` and ``.history.csv.tmp`` as earlier
    versions named them) are deleted; a folder holding anything else is refused (ValueError naming ``run_dir`` and
    those entries) and left as it is.  With ``check_only`` (True or False; anything else is refused naming it)
    nothing is deleted (the refusal alone).  ``run_dir`` must be a non-empty path (ValueError naming it: the empty
    path is the current directory).

    ``provenance.json`` goes first, and that is on disk (the folder fsync'd) before anything else goes, then the
    checkpoint and its record, then the rest: a clear cut off part-way (a kill, a power loss) leaves a "dead" run
    (:func:`recorded_status`), never a finished or stopped one without its history, and a dead run without a
    provenance is never resumed (``resume=True`` refuses it): only another ``overwrite=True`` replaces it."""
    run_dir = run_folder_path(run_dir)
    check_only = _checks.flag(check_only, "check_only")
    entries = [e for e in run_dir.iterdir() if e.name != LOCK]
    ours = [e.is_file() and (e.name in RUN_FILES or is_write_temporary(e.name)) for e in entries]
    foreign = sorted(e.name for e, mine in zip(entries, ours) if not mine)
    if foreign:
        raise ValueError(f"run_dir {str(run_dir)!r} holds entries a run does not write ({foreign[:5]}); "
                         f"overwrite deletes only run folders: move them or choose another run name")
    if check_only:
        return
    first = ("provenance.json", CHECKPOINT, CHECKSUM, CHECKPOINT + ".tmp")  # the record of a result, then the rest
    entries.sort(key=lambda e: first.index(e.name) if e.name in first else len(first))
    for i, e in enumerate(entries):
        e.unlink()
        if i == 0:
            fsync_folder(run_dir)  # no longer a run with a result before any of its files goes
    fsync_folder(run_dir)


# --------------------------------------------------------------------------------------------- status

def recorded_status(run_dir) -> str:
    """What ``run_dir`` records, without asking whether a process writes it now: "absent" (no folder, or nothing
    but a lock), the provenance's status, or "dead" where the provenance is missing or says "running" (a run that
    the caller knows has no live writer).  ValueError naming ``run_dir`` for an empty path (the current directory)
    or anything but a path."""
    run_dir = run_folder_path(run_dir)
    if not run_dir.is_dir() or not any(e.name != LOCK for e in run_dir.iterdir()):
        return "absent"
    try:
        status = json.loads((run_dir / "provenance.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return "dead"
    return "dead" if status not in STATUSES or status in ("running", "absent") else status


def run_status(run_dir) -> str:
    """The state of a run folder, one of :data:`STATUSES`: "running" while a live process holds its lock, otherwise
    "absent" (nothing there), "finished", "stopped" (by ``max_train_s`` or a job's SIGTERM: ``resume=True``
    continues it from its checkpoint), "diverged", "failed", or "dead" (the provenance still says "running" but no
    live process holds the lock: its writer was killed or crashed; ``resume=True`` continues from the last complete
    checkpoint where one exists; a folder whose lock file names a writer on another host reads so too, and
    :func:`nclib.runplan.plan_runs` and :func:`nclib.locks.lock_run` refuse it,
    :class:`nclib.locks.RunLockedElsewhere`).  Reads only the folder's files (no torch) (:ref:`ch-train`).
    ValueError naming ``run_dir`` for an empty path (the current directory) or anything but a path."""
    return "running" if lock_owner(run_dir) is not None else recorded_status(run_dir)


def _json_default(o):
    """A value the JSON of a run folder's files holds in the form JSON has for it: a numpy scalar as the number (or
    bool) it is, a numpy array as a list, a path as its text; TypeError for anything else."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):  # tuples json encodes itself, as lists
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def to_json(obj) -> str:
    """``obj`` as the JSON of a run folder's files (``params.json``, ``provenance.json``, :ref:`ch-train`):
    indented, numpy scalars and arrays, tuples and paths as JSON values, ending with a newline.  TypeError for a
    value JSON cannot hold, before anything is written."""
    return json.dumps(obj, indent=2, default=_json_default) + "\n"


def json_values(params, name: str = "params") -> dict:
    """``params`` as a run folder's ``params.json`` holds them (written by :func:`to_json`, read back): numpy scalars
    and arrays as JSON numbers and lists, tuples as lists, paths as their text: the form in which wanted parameters
    are compared with recorded ones.  ValueError naming ``name`` (the caller's argument, ``params`` by default) for
    anything but a dict (a mapping) of them, or one that holds a value no ``params.json`` can hold."""
    if not isinstance(params, Mapping):
        raise ValueError(f"{name} must be a dict of parameters (name -> value), got {params!r:.200}")
    try:
        return json.loads(to_json(dict(params)))
    except TypeError as exc:
        raise ValueError(f"{name} must hold values a params.json can hold: {exc}") from None


def read_params(run_dir) -> dict | None:
    """The ``params.json`` of ``run_dir`` as recorded, or None where it is missing, unreadable or not a dict (the
    record that :func:`nclib.runplan.differing_params` compares).  ValueError naming ``run_dir`` for an empty path
    or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    try:
        saved = json.loads((run_dir / "params.json").read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None
