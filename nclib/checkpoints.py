"""A run's checkpoint, committed and verified, without torch: the file from which ``resume=True`` continues a run
stopped by ``max_train_s`` or a job's SIGTERM, or killed or failed after a checkpoint (one of a stop, or of
``checkpoint_every`` while it trained), is never read as another, nor half-written (:ref:`ch-engine`).

The commit protocol (:func:`commit_checkpoint`):

1. the writer (``nclib.runfolder``) writes the checkpoint to ``checkpoint.pt.tmp`` and flushes it to disk, for
   every run of a call before any is committed, so that a write that fails leaves all of them at their previous
   checkpoint;
2. its sha256, size and epoch are recorded in :data:`nclib.runs.CHECKSUM`, written atomically and made durable
   (the folder fsync'd) before the rename: the record is the commit point;
3. the temporary file is renamed to :data:`nclib.runs.CHECKPOINT` and the folder fsync'd.

A crash before the record leaves the previous checkpoint and its record; one between the record and the rename
leaves the new checkpoint complete under its temporary name, which :func:`settle_checkpoint` puts in place.  A
resume, holding the folder's lock, reads a checkpoint only after :func:`verify_checkpoint` found the bytes its writer
recorded (:class:`nclib.runs.CheckpointDamaged` otherwise); :func:`has_checkpoint` says, reading only, whether a
folder holds one to resume from, and :func:`no_checkpoint` is the refusal where it does not.  The file names, the
atomic write and the refusals are those of the run-folder contract, :mod:`nclib.runs`, which this module imports
(:mod:`nclib.runplan`, a call's plan, imports this module to ask whether a folder holds a checkpoint).
"""
from __future__ import annotations

import json
import os
import pathlib

from . import _checks
from .datafiles import sha256_file
from .locks import run_folder_path
from .runs import (CHECKPOINT, CHECKSUM, CheckpointDamaged, ResumeRefused, atomic_write_text, fsync_folder,
                   setting_text)


def _sha256(path: pathlib.Path) -> tuple[str, int]:
    """The sha256 and size in bytes of a checkpoint file, as :data:`CHECKSUM` records them."""
    return sha256_file(path), os.path.getsize(path)


def commit_checkpoint(run_dir, epoch: int) -> None:
    """Make ``run_dir/checkpoint.pt.tmp`` (written completely by the caller) the run's :data:`CHECKPOINT`: fsync
    it, record its sha256, size and epoch in :data:`CHECKSUM` (atomically, the folder fsync'd after, so that the
    record is on disk before the rename), rename it, fsync the folder.  The record
    is the commit point: a crash before it leaves the previous checkpoint and its record; one between the record
    and the rename leaves the new checkpoint complete under its temporary name, which :func:`settle_checkpoint`
    puts in place.  A checkpoint is never read as another (:func:`verify_checkpoint`).  ValueError naming ``run_dir``
    for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`), and ``epoch`` for anything but a
    whole number >= 0 (2.7 would be recorded as 2), before anything is touched."""
    run_dir = run_folder_path(run_dir)
    epoch = _checks.nonneg_int(epoch, "epoch")
    tmp = run_dir / (CHECKPOINT + ".tmp")
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    digest, size = _sha256(tmp)
    atomic_write_text(run_dir / CHECKSUM, json.dumps({"file": CHECKPOINT, "sha256": digest, "bytes": size,
                                                      "epoch": epoch}) + "\n")
    fsync_folder(run_dir)  # the record's rename on disk before the checkpoint's: the commit point is durable
    os.replace(tmp, run_dir / CHECKPOINT)
    fsync_folder(run_dir)


def _recorded_tmp(run_dir: pathlib.Path) -> bool:
    """Whether ``checkpoint.pt.tmp`` holds exactly the bytes :data:`CHECKSUM` records: a checkpoint committed
    (:func:`commit_checkpoint`) whose rename a crash cut off.  False where either file is missing or unreadable,
    also when another process moves it meanwhile.  The file is hashed only where its size is the recorded one: a
    save cut off (a writer killed mid-save) leaves a file of another size, and a checkpoint of the paper's networks
    is half a gigabyte to read on every call."""
    try:
        record = json.loads((run_dir / CHECKSUM).read_text())
        want = (str(record["sha256"]), int(record["bytes"]))
        tmp = run_dir / (CHECKPOINT + ".tmp")
        if os.path.getsize(tmp) != want[1]:
            return False
        return _sha256(tmp) == want
    except (OSError, ValueError, KeyError, TypeError):
        return False


def recorded_epoch(run_dir) -> int | None:
    """The epoch that the :data:`CHECKSUM` record of ``run_dir``'s checkpoint holds (:func:`commit_checkpoint`
    records it), or None where the record cannot be read (:func:`verify_checkpoint` refuses that checkpoint):
    what :func:`nclib.runplan.plan_runs` compares between the runs of one call, reading only.  ValueError naming
    ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    try:
        return int(json.loads((run_dir / CHECKSUM).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def has_checkpoint(run_dir) -> bool:
    """Whether ``run_dir`` holds a checkpoint to resume from: :data:`CHECKPOINT`, or a committed one whose rename a
    crash cut off (:func:`settle_checkpoint` puts it in place), beside the run's ``provenance.json``.  A checkpoint
    without that provenance is none: a run writes its provenance before any checkpoint, so only a clear cut off
    part-way (:func:`nclib.runs.clear_run_folder` deletes the provenance first) leaves one, of a run being
    replaced, which a resume refuses.  Reads only; safe while another process writes.  ValueError naming
    ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    if not (run_dir / "provenance.json").is_file():
        return False
    return _recorded_tmp(run_dir) or (run_dir / CHECKPOINT).is_file()  # in this order: a rename between is seen


def settle_checkpoint(run_dir) -> bool:
    """Whether ``run_dir`` holds a :data:`CHECKPOINT`, once a commit that a crash cut off between its record and
    its rename (:func:`commit_checkpoint`) is completed: a ``checkpoint.pt.tmp`` that holds exactly the bytes
    :data:`CHECKSUM` records is the newest checkpoint, and is renamed into place.  Any other ``checkpoint.pt.tmp``
    (its writing cut off before the record) is left alone; the resumed run deletes it.  Renames a file: call it
    only while holding the folder's lock (:func:`nclib.locks.lock_run`), as :func:`verify_checkpoint` is called.
    ValueError naming ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    tmp, path = run_dir / (CHECKPOINT + ".tmp"), run_dir / CHECKPOINT
    if _recorded_tmp(run_dir):
        os.replace(tmp, path)
        fsync_folder(run_dir)
    return path.is_file()


def no_checkpoint(run_dir) -> ResumeRefused:
    """The refusal of ``resume=True`` for a run folder without a checkpoint (:func:`has_checkpoint`); ValueError
    naming ``run_dir`` for an empty path or anything but a path (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    if not (run_dir / "provenance.json").is_file() and any(
            (run_dir / name).is_file() for name in (CHECKPOINT, CHECKPOINT + ".tmp")):
        return ResumeRefused(f"run folder {str(run_dir)!r} cannot be resumed: its {CHECKPOINT} has no provenance.json "
                             f"beside it (a clear cut off part-way leaves the checkpoint of a run being replaced); "
                             f"start it again with {setting_text('overwrite', True, without='--resume')}", run_dir)
    return ResumeRefused(f"run folder {str(run_dir)!r} cannot be resumed: it holds no {CHECKPOINT} (a run stopped "
                         f"by max_train_s leaves one; a finished run does not)", run_dir)


def verify_checkpoint(run_dir) -> dict:
    """The :data:`CHECKSUM` record of ``run_dir``'s checkpoint (after :func:`settle_checkpoint`: the caller holds the
    folder's lock) once the file is found to hold exactly the bytes its writer recorded; :class:`ResumeRefused`
    when there is no checkpoint, and :class:`CheckpointDamaged` naming the file when it differs from its record
    (truncated, corrupted, no checksum beside it), since a damaged checkpoint can load and resume a different run
    (:ref:`ch-engine`).  ValueError naming ``run_dir`` for an empty path or anything but a path
    (:func:`nclib.locks.run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    path, record_path = run_dir / CHECKPOINT, run_dir / CHECKSUM
    if not settle_checkpoint(run_dir):
        raise no_checkpoint(run_dir)
    try:
        record = json.loads(record_path.read_text())
        want, want_size = str(record["sha256"]), int(record["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CheckpointDamaged(f"checkpoint {str(path)!r} has no readable {CHECKSUM} beside it, so its integrity "
                                f"cannot be checked; start the run again with "
                                f"{setting_text('overwrite', True, without='--resume')}", run_dir, path) from None
    digest, size = _sha256(path)
    if digest != want or size != want_size:
        raise CheckpointDamaged(f"checkpoint {str(path)!r} is damaged: {size} bytes with sha256 {digest[:12]}..., "
                                f"but its writer recorded {want_size} bytes with sha256 {want[:12]}... in {CHECKSUM}; "
                                f"it cannot be resumed: start the run again with "
                                f"{setting_text('overwrite', True, without='--resume')}", run_dir, path)
    return record
