"""One writer per run folder (:ref:`ch-engine`, :ref:`ch-sweeps`): the lock a process takes before it writes or
deletes anything in a run folder of :mod:`nclib.train`, and what a refused writer is told.

- :func:`lock_run` takes an exclusive ``flock`` lock on the folder's :data:`LOCK` file, which holds the writer's
  pid and host, and :meth:`RunLock.release` gives it back; the kernel releases the lock of a process that dies,
  so a later writer takes over a dead writer's lock (with a warning that names it) and a second live writer is
  refused (:class:`RunFolderBusy`);
- a lock file written on another host is refused (:class:`RunLockedElsewhere`): whether its writer lives cannot
  be seen from here; :func:`other_host_lock` reads such a record, so that a plan refuses the folder before any
  lock is taken (:func:`nclib.runplan.plan_runs`);
- a file system that refuses ``flock`` is :class:`LockUnsupported`, never mistaken for a busy lock;
- :func:`lock_owner` says which live process holds a folder's lock (a live owner: the run is "running");
- the command lines end on SIGTERM (a batch job's time limit, ``scancel``) as on Ctrl-C (:func:`sigterm_raises`):
  the runs they were writing recorded, their locks given back and their lock files removed, where the signal's
  default would leave the lock file of a process gone, which a writer on another host is refused; inside the epoch
  loop the signal is noted (:func:`sigterm_deferred`) and the runs stop with a checkpoint at their next metric epoch.

A process never opens the lock file of a folder whose lock it holds (:func:`lock_owner`, :func:`lock_run` and
:func:`other_host_lock` answer from the locks it holds, by the folder's resolved path, and the takeover reads the
previous record through the locked descriptor): on NFS, Linux emulates ``flock`` with POSIX locks, which belong to
the process, not to a descriptor, so a second descriptor's shared lock, unlock or close would give up the
process's own exclusive lock.  A lock file opened otherwise in the holding process (by hand, another library) still
does so there; on a local file system it does not.

Torch-free, like :mod:`nclib.runs`, which reads run folders on any machine.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import re
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Mapping

from . import _checks

#: The lock file of the process writing a run folder (JSON: pid, host, since, command line).
LOCK = ".lock"


def writer_tag() -> str:
    """This process as the names of its temporary files give it: ``<host>.<pid>``, the host's characters other than
    letters, digits, '.' and '-' written '_', so that writers on two nodes of a cluster sharing a folder, even with
    one pid, never name one temporary file alike (:func:`nclib.runs.atomic_write_text`,
    :func:`nclib.datafiles.temporary_path`)."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
    return f"{host}.{os.getpid()}"


def run_folder_path(run_dir, name: str = "run_dir") -> pathlib.Path:
    """``run_dir`` as the path of one run folder: a str or a path; anything else is refused with a ValueError naming
    ``name``, and so is an empty path, which would name the current directory (a lock taken, a status read or a
    run cleared in whatever folder the process runs in)."""
    return pathlib.Path(_checks.path_arg(run_dir, name, "the path of a run folder"))


def run_folder_paths(run_dirs, name: str = "run_dirs") -> list[pathlib.Path]:
    """``run_dirs`` as the paths of run folders (:func:`run_folder_path`, each): a list or another iterable of them;
    one path alone (a str, bytes or a path, whose characters are no folders) or anything not iterable is refused
    with a ValueError naming ``name``."""
    if isinstance(run_dirs, (str, bytes, os.PathLike)):
        raise ValueError(f"{name} must be a list of run folders, got one path {str(run_dirs)!r}: pass [path]")
    try:
        items = list(run_dirs)
    except TypeError:
        raise ValueError(f"{name} must be a list of run folders, got {run_dirs!r}") from None
    return [run_folder_path(d, name) for d in items]


class RunFolderBusy(ValueError):
    """Another live process holds the lock of the run folder ``run_dir`` (``owner``: its pid and host)."""

    def __init__(self, message: str, run_dir, owner: dict | None = None):
        super().__init__(message)
        self.run_dir, self.owner = pathlib.Path(run_dir), owner


class RunLockedElsewhere(RunFolderBusy):
    """The run folder ``run_dir`` holds the lock file of a writer on another host (``owner``), which no process
    holds here: whether that writer still runs cannot be seen from this host; the file is removed once it has
    ended (a job killed on another node of a cluster).  ``locked``: {run folder: owner} of every folder of the
    call refused so (:func:`lock_runs`), ``run_dir`` the first of them."""

    def __init__(self, message: str, run_dir, owner: dict | None = None, locked: dict | None = None):
        super().__init__(message, run_dir, owner)
        self.locked = ({pathlib.Path(d): o for d, o in locked.items()} if locked
                       else {self.run_dir: owner})

    @classmethod
    def naming(cls, locked: dict) -> RunLockedElsewhere:
        """The refusal of the run folders of ``locked`` ({run folder: owner}, in the call's order), each holding
        the lock file of a writer on another host: one message naming every folder and file, ``run_dir`` the
        first folder.  ValueError naming ``locked`` for anything but a non-empty dict."""
        if not isinstance(locked, Mapping) or not locked:
            raise ValueError(f"locked must be a non-empty dict of run folder -> owner, got {locked!r:.200}")
        first = next(iter(locked))
        return cls(_elsewhere_message(locked), first, locked[first], locked)


class LockUnsupported(OSError):
    """The file system of ``path`` refuses ``flock`` locks (``ENOLCK``, ``ENOSYS``, ``EOPNOTSUPP``...: an NFS without
    a lock daemon, Lustre mounted without ``-o flock``): no lock there tells one writer from two, so nothing is
    written; a folder shared by the nodes of a cluster needs flock locks that work across them."""

    def __init__(self, path, error: OSError):
        super().__init__(error.errno, f"the file system of {str(path)!r} does not support flock locks "
                                      f"({error.strerror or error}); one writer per run folder cannot be ensured "
                                      f"there: use a folder on a file system with flock locks working across the "
                                      f"machines that write it (on Lustre, mounted with -o flock)")
        self.path = pathlib.Path(path)


def flock(fd, operation: int, path) -> bool:
    """``fcntl.flock(fd, operation)`` with ``LOCK_NB``: True when taken, False when another process holds a
    conflicting lock (``EWOULDBLOCK``/``EAGAIN``); any other error of the file system is :class:`LockUnsupported`
    naming ``path``, never mistaken for a busy lock (:ref:`ch-sweeps`).  ValueError naming ``fd`` for anything but
    a file descriptor (an int >= 0) and ``operation`` for anything but ``fcntl.LOCK_SH``, ``LOCK_EX`` or
    ``LOCK_UN``."""
    if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0:
        raise ValueError(f"fd must be an open file descriptor (an int >= 0), got {fd!r}")
    if operation not in (fcntl.LOCK_SH, fcntl.LOCK_EX, fcntl.LOCK_UN) or isinstance(operation, bool):
        raise ValueError(f"operation must be fcntl.LOCK_SH, LOCK_EX or LOCK_UN, got {operation!r}")
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise LockUnsupported(path, exc) from None
    return True


def read_lock_file(path) -> dict | None:
    """What a lock file records of its writer (pid, host, since, command line), or None where it cannot be read
    or is empty (:func:`_lock_record`).  ValueError naming ``path`` for anything but a path (a str or a path, not
    empty)."""
    name = _checks.path_arg(path, "path", "the path of a lock file")
    try:
        text = pathlib.Path(name).read_text()
    except OSError:
        return None
    return _lock_record(text)


def _lock_record(text: str) -> dict | None:
    """The record of a lock file's text: None for an empty file, the JSON object it holds, or, for text that is not
    a JSON object (a damaged file, a list), ``{"pid": None, "host": None, "raw": its first 200 characters}``."""
    if not text.strip():
        return None
    try:
        owner = json.loads(text)
    except ValueError:
        owner = None
    return owner if isinstance(owner, dict) else {"pid": None, "host": None, "raw": text[:200]}


#: The locks this process holds, by the resolved path of their folder (:func:`_held_here`).
_HELD: dict[str, RunLock] = {}
#: Held while a thread of this process opens a folder's lock file or changes :data:`_HELD`: a lock is in the registry
#: from the moment it is taken to the moment it is given back, so no other thread opens the file of a lock this
#: process holds (NFS: see the module's notes).
_GUARD = threading.RLock()


def _held_here(run_dir: pathlib.Path) -> RunLock | None:
    """The lock of ``run_dir`` that this process holds (taken by :func:`lock_run`, not yet released), or None; a
    process forked from the holder holds none of them."""
    if not _HELD:
        return None
    lock = _HELD.get(os.path.realpath(run_dir))
    return lock if lock is not None and lock.pid == os.getpid() and lock.fd is not None else None


def lock_owner(run_dir) -> dict | None:
    """The live process that holds the lock of ``run_dir`` (its :data:`LOCK` contents: pid, host, since,
    command line), or None when no live process holds it (no lock file, or the lock of a writer that died); this
    process's own record, without opening the file, where it holds the lock itself.  ValueError naming ``run_dir``
    for an empty path or anything but a path (:func:`run_folder_path`)."""
    run_dir = run_folder_path(run_dir)
    with _GUARD:
        held = _held_here(run_dir)
        if held is not None:  # never a second descriptor of a lock this process holds (NFS: the module's notes)
            return dict(held.record)
        path = run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if not flock(fd, fcntl.LOCK_SH, path):
                return read_lock_file(path) or {"pid": None, "host": None}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def other_host_lock(run_dir) -> dict | None:
    """What the lock file of ``run_dir`` records of its writer where that writer is on another host, else None (no
    lock file, an empty or damaged one, one written on this host).  A folder with such a record and no process
    holding its lock here is one :func:`lock_run` refuses (:class:`RunLockedElsewhere`), and
    :func:`nclib.runplan.plan_runs` refuses it too, before any lock is taken.  Reads only, and not at all a folder
    whose lock this process holds."""
    run_dir = run_folder_path(run_dir)
    with _GUARD:
        if _held_here(run_dir) is not None:
            return None
        record = read_lock_file(run_dir / LOCK)
    return record if record is not None and _on_another_host(record) else None


def _on_another_host(record: dict) -> bool:
    """Whether a lock record names a host, and one other than this: a writer whose life cannot be seen from here."""
    return record.get("host") not in (None, _this_process()["host"])


def _this_process() -> dict:
    """This process as a lock record names its writer: its pid and host."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def is_this_process(record) -> bool:
    """Whether the lock record ``record`` (:func:`lock_owner`, ``RunFolderBusy.owner``) names this process: its pid
    and host as :func:`write_lock_record` writes them (a lock this process holds, taken by another of its threads or
    by hand).  ValueError naming ``record`` unless it is a mapping."""
    if not isinstance(record, Mapping):
        raise ValueError(f"record must be a lock record (a mapping of pid, host...), got {type(record).__name__}")
    me = _this_process()
    return record.get("pid") == me["pid"] and record.get("host") == me["host"]


class RunLock:
    """The exclusive lock of one run folder, held from :func:`lock_run` to :meth:`release` (also a context
    manager).  ``took_over``: the lock contents of a dead writer this lock replaced, or None."""

    def __init__(self, run_dir: pathlib.Path, fd: int, created: bool, took_over: dict | None,
                 record: dict | None = None):
        self.run_dir, self.fd, self.created, self.took_over = run_dir, fd, created, took_over
        self.record, self.pid = record or {}, os.getpid()  # what the lock file says of this process

    def release(self) -> None:
        """Remove the lock file and give the lock back; a folder the lock created and nothing filled is removed.  The
        file is removed only where the one at the folder's :data:`LOCK` path is the file this lock's descriptor holds
        (same device and inode, compared without opening the file again: the module's notes; a file whose ``stat``
        fails, ``ESTALE`` on NFS say, is left, and the lock is given back all the same): where the holder's
        file was removed by hand too early, or the run folder renamed, and a second writer then locked a new file
        at that path, removing that file would read the second writer's live run as not running and let a third
        writer in beside it.  In a process forked from the holder (the lock's ``pid`` is not this process's) only
        this process's copy of the descriptor is closed: the lock stays the holder's, with its file and folder,
        since removing the file would let a second writer take a new lock while the holder still writes."""
        if self.fd is None:
            return
        if self.pid != os.getpid():  # a fork's copy: the flock is the holder's, and close() does not give it back
            with _GUARD:
                key = os.path.realpath(self.run_dir)
                if _HELD.get(key) is self:
                    del _HELD[key]
                os.close(self.fd)
                self.fd = None
            return
        with _GUARD:  # out of the registry as the flock goes, no other thread of this process in between
            try:
                if self._holds_file_at_path():
                    (self.run_dir / LOCK).unlink(missing_ok=True)
            finally:
                key = os.path.realpath(self.run_dir)
                if _HELD.get(key) is self:
                    del _HELD[key]
                os.close(self.fd)  # releases the flock
                self.fd = None
        if self.created:
            try:
                self.run_dir.rmdir()  # only when empty
            except OSError:
                pass

    def _holds_file_at_path(self) -> bool:
        """Whether the file at ``run_dir/.lock`` is the one this lock's descriptor holds (same device and inode):
        False where none is there, or another (a second writer's, made after this one's was removed), and False
        where either file cannot be read (any OSError: on NFS, ``ESTALE`` for a file another client removed, the
        removed-by-hand case itself), since a file not provably this lock's is left where it is."""
        try:
            at_path = os.stat(self.run_dir / LOCK)
            held = os.fstat(self.fd)
        except OSError:
            return False
        return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_run(run_dir, retry_s: float = 1.0) -> RunLock:
    """Take the exclusive lock of the run folder ``run_dir`` (created with its parents if missing) before anything
    in it is written or deleted: one writer per run folder (:ref:`ch-engine`).

    The lock is ``flock`` on :data:`LOCK`, which holds the writer's pid and host; the kernel releases it when the
    writer's process ends, however it ends.  A lock file whose writer died (SIGKILL, a crash) is taken over with
    a warning naming that writer; a lock held by a live process is refused with :class:`RunFolderBusy` naming
    the folder and the owner's pid and host (after ``retry_s`` seconds, which cover a
    :func:`nclib.runs.run_status` reading the folder at that moment; a folder removed meanwhile by the writer that
    made it, empty, as it gave its lock back, is made again, and is then this lock's to remove on release).  A lock
    file written on another host is refused too, with :class:`RunLockedElsewhere`: whether its writer lives cannot
    be known from here (remove the file once that process is gone).  A file system that refuses flock locks is
    :class:`LockUnsupported`.  ``retry_s`` must be a number >= 0 and ``run_dir`` a non-empty path (ValueError naming
    it, before anything is created); a failure after the lock is taken (the takeover warning raised as an error, the
    record not written) gives the lock back before it propagates."""
    retry_s = _checks.nonneg_float(retry_s, "retry_s")
    run_dir = run_folder_path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"run_dir {str(run_dir)!r} exists and is not a folder; choose another run_name or out_dir")
    created = _make_folder(run_dir)
    path = run_dir / LOCK
    deadline = time.monotonic() + retry_s
    while True:
        with _GUARD:  # taken and registered with no other thread of this process opening the file in between
            lock, owner = _try_lock(run_dir, path, created)
        if lock is not None:
            return lock
        if owner is _GONE:  # the writer that made the folder released it and removed it, empty: made again, by us
            created = _make_folder(run_dir) or created
            continue
        if owner is None:  # a file that a releasing writer unlinked after it was opened: again at once
            continue
        if time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        raise RunFolderBusy(f"run folder {str(run_dir)!r} is being written by another process (pid "
                            f"{owner.get('pid')} on host {owner.get('host')!r}, since {owner.get('since')}); "
                            f"one writer per run folder: wait for it to end or use another run name",
                            run_dir, owner) from None


#: What :func:`_try_lock` answers for the owner when the run folder itself is gone.
_GONE = object()


def _make_folder(run_dir: pathlib.Path) -> bool:
    """Make the run folder ``run_dir`` with its parents; whether this call made it (False: it was there), so that
    the lock taken in it removes it again on release if nothing filled it.  ValueError naming ``run_dir`` where
    something else is there (a file, a link to nothing), or naming its parent where a parent is no folder."""
    try:
        run_dir.mkdir(parents=True)
    except (FileExistsError, NotADirectoryError):
        if run_dir.is_dir():
            return False
        blocked = _not_a_folder(run_dir)
        if blocked is None or blocked == run_dir:
            raise ValueError(f"run_dir {str(run_dir)!r} exists and is not a folder"
                             f"{' (a link to nothing)' if blocked is not None and not blocked.exists() else ''}; "
                             f"choose another run_name or out_dir") from None
        why = (f"is a link to nothing ({os.readlink(blocked)!r}): make the folder it points to, or choose another out_dir"
               if not blocked.exists() else "exists and is not a folder: choose another out_dir")
        raise ValueError(f"run_dir {str(run_dir)!r} cannot be made: its parent {str(blocked)!r} {why}") from None
    return True


def _not_a_folder(run_dir: pathlib.Path) -> pathlib.Path | None:
    """The first of ``run_dir``'s parents, then ``run_dir`` itself, that is there but is no folder (a file, a link
    to nothing), or None."""
    for path in (*reversed(run_dir.parents), run_dir):
        if os.path.lexists(path) and not path.is_dir():
            return path
    return None


def _try_lock(run_dir: pathlib.Path, path: pathlib.Path, created: bool) -> tuple[RunLock | None, object]:
    """One attempt of :func:`lock_run`, with :data:`_GUARD` held: ``(lock, None)`` when the lock is taken, claimed
    (:func:`_claim`) and registered; ``(None, owner)`` when a live process holds it (this one too: its record,
    without opening the file); ``(None, None)`` when the file opened was unlinked meanwhile; ``(None, _GONE)`` when
    the folder itself is gone (a writer that made it, waited for here, gave its lock back and removed it, empty).
    LockUnsupported, and whatever the claim raises, leave nothing of this call behind."""
    held = _held_here(run_dir)
    if held is not None:  # this process's own lock: its file is not opened again (NFS: the module's notes)
        return None, dict(held.record)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        if run_dir.is_dir():  # the folder is there: not the folder removed, but something else
            raise
        return None, _GONE
    try:
        taken = flock(fd, fcntl.LOCK_EX, path)
    except LockUnsupported:
        os.close(fd)
        if created:  # leave nothing behind on a file system where no writer can lock
            path.unlink(missing_ok=True)
            run_dir.rmdir()
        raise
    if not taken:
        os.close(fd)
        return None, read_lock_file(path) or {}
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # a file that a releasing writer unlinked after we opened it
        os.close(fd)
        return None, None
    try:
        lock = _claim(run_dir, fd, created)
        _HELD[os.path.realpath(run_dir)] = lock
        return lock, None
    except BaseException:
        if created:  # the folder and its lock file are this call's: leave nothing behind
            path.unlink(missing_ok=True)
        os.close(fd)  # releases the flock
        if created:
            try:
                run_dir.rmdir()
            except OSError:
                pass
        raise


def _claim(run_dir: pathlib.Path, fd: int, created: bool) -> RunLock:
    """The lock file of ``run_dir``, locked through ``fd``, made this process's: the record of a previous writer
    on another host refused (:class:`RunLockedElsewhere`), a dead writer's record taken over with a warning,
    then this process's record written."""
    # read through fd, the file locked: no other writer replaces it now (and on NFS a second descriptor's close
    # would give up the lock just taken)
    previous = _lock_record(os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace"))
    if previous is not None:
        if _on_another_host(previous):
            raise RunLockedElsewhere.naming({run_dir: previous})
        warnings.warn(f"run folder {str(run_dir)!r}: taking over the lock of process {previous.get('pid')} on "
                      f"{previous.get('host')!r} (since {previous.get('since')}), which ended without releasing it",
                      RuntimeWarning, stacklevel=3)
    return RunLock(run_dir, fd, created, previous, write_lock_record(fd))


def write_lock_record(fd: int) -> dict:
    """Write this process's record (pid, host, since, command line) into the lock file open as ``fd``, whose lock
    it holds: what a refused writer is told of the holder.  Returns the record."""
    me = {**_this_process(),
          "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "command_line": list(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    os.fsync(fd)
    return me


def _elsewhere_message(locked: dict) -> str:
    """The refusal of run folders ({folder: owner}) that hold the lock files of writers on other hosts."""
    one = len(locked) == 1
    files = ", ".join(f"{str(pathlib.Path(d) / LOCK)!r} (pid {o.get('pid')} on another host {o.get('host')!r})"
                      for d, o in locked.items())
    folders = ", ".join(repr(str(d)) for d in locked)
    return (f"run folder{'' if one else 's'} {folders} hold{'s' if one else ''} the lock file of "
            f"{'a writer' if one else 'writers'} on another host: {files}; whether "
            f"{'that process still runs' if one else 'those processes still run'} cannot be seen from "
            f"{_this_process()['host']!r}: remove {'the file' if one else 'each file'} once its process has ended")


def lock_runs(run_dirs, retry_s: float = 1.0) -> list[RunLock]:
    """The locks of every run folder of one call (:func:`lock_run`, in order), or none: the folders that hold the
    lock files of writers on other hosts are all named in one :class:`RunLockedElsewhere` (its ``locked``), so
    that one job learns every file to remove, and any refusal gives back the locks already taken.  ``run_dirs`` is
    a list (or another iterable) of folders: one path alone is refused with a ValueError naming ``run_dirs``
    (:func:`run_folder_paths`), before any folder is locked."""
    run_dirs = run_folder_paths(run_dirs)
    retry_s = _checks.nonneg_float(retry_s, "retry_s")
    locks, elsewhere = [], {}
    try:
        for d in run_dirs:
            try:
                locks.append(lock_run(d, retry_s))
            except RunLockedElsewhere as exc:
                elsewhere.update(exc.locked)
            except RunFolderBusy as exc:  # a live writer here: refused, naming the other hosts' files found too
                if not elsewhere:
                    raise
                raise RunFolderBusy(f"{exc}; and {_elsewhere_message(elsewhere)}", exc.run_dir, exc.owner) from None
        if elsewhere:
            raise RunLockedElsewhere.naming(elsewhere)
    except BaseException:
        for lock in reversed(locks):
            lock.release()
        raise
    return locks


class Terminated(BaseException):
    """The process was sent SIGTERM while :func:`sigterm_raises` held: raised in its main thread, as Ctrl-C raises
    KeyboardInterrupt, and like it no Exception, so that no ``except Exception`` takes it for a run's own failure.
    A training call sets on it the run folders it ended (:func:`nclib.train.run_many`): ``open_runs`` (every run
    the signal ended), of which ``stopped_runs`` (stopped with a checkpoint, the signal noted inside the epoch loop:
    :func:`sigterm_deferred`), ``failed_runs`` (written "failed") and ``diverged_runs`` (diverged before the stop or
    at its metric epoch); a sweep's task (:func:`nclib.sweep.run_point`) sets its one run's folder as
    ``stopped_run``, ``failed_run`` or ``diverged_run`` (the others None)."""


class _RaiseTerminated:
    """The SIGTERM handler of :func:`sigterm_raises`: puts back the handler found on entry (``previous``), so that a
    second SIGTERM ends the process as before, and raises :class:`Terminated`."""

    def __init__(self, previous):
        self.previous = previous

    def ended(self) -> Terminated:
        """The handler found on entry put back, and the :class:`Terminated` to raise."""
        signal.signal(signal.SIGTERM, self.previous)
        return Terminated("the process was sent SIGTERM (a job's time limit, scancel, kill)")

    def __call__(self, signum, frame):
        raise self.ended()


@contextlib.contextmanager
def sigterm_raises():
    """While held, SIGTERM (a batch job's time limit, ``scancel``, ``kill``) raises :class:`Terminated` in the main
    thread instead of ending the process at once, so that the calls it unwinds do what they do for Ctrl-C: a
    training call records the runs it was writing as "failed" with that error (:func:`nclib.train.run_many`), and
    every run folder's lock is given back, its lock file removed (:meth:`RunLock.release`); inside the epoch loop,
    where :func:`sigterm_deferred` holds, the signal is noted instead and the runs stop with a checkpoint at their
    next metric epoch before Terminated is raised.  Ended by the signal's default, the process would leave its runs
    "running" and the lock file naming its host, which a writer on another host is refused
    (:class:`RunLockedElsewhere`) until someone removes it.  The first SIGTERM that raises puts the handler found on
    entry back, so that a later one ends the process as before; leaving restores it too.  Outside the main thread,
    or where the handler found was not set from Python (it could not be put back), it changes nothing.  Used by the
    command lines, :func:`nclib.train.main` and :func:`nclib.sweepcli.main`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:
        yield
        return
    signal.signal(signal.SIGTERM, _RaiseTerminated(previous))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class SigtermNoted:
    """What :func:`sigterm_deferred` yields: ``pending`` turns True when a first SIGTERM is noted (the handler only
    sets it), and :meth:`ended` gives the :class:`Terminated` to raise once the runs have stopped.  Once the loop
    has begun its stop (:meth:`begin_stop`, ``stopping``), every SIGTERM is only noted, a second one too, so that
    no signal cuts the stop short between two runs' checkpoints or status writes; :meth:`held` does the same for
    the writing of a periodic checkpoint, after which the runs train on."""

    def __init__(self, raising: _RaiseTerminated | None = None):
        self.raising, self.pending, self.stopping = raising, False, False

    def __call__(self, signum, frame):
        if self.pending and not self.stopping:  # a second SIGTERM while the stop is pending: raised at once
            self.raising(signum, frame)
        self.pending = True

    def begin_stop(self) -> None:
        """The stop has begun (the runs' checkpoints are about to be written, or they are about to finish): from now
        on a SIGTERM is noted, never raised, so that the runs end at one epoch before :meth:`ended` is raised."""
        self.stopping = True

    @contextlib.contextmanager
    def held(self):
        """While held, every SIGTERM is only noted, a second one too, as once the stop has begun: writes that must
        reach every run or none (the saves and commits of a periodic checkpoint, ``checkpoint_every``) are not cut
        short between two runs.  Left with no SIGTERM pending, the rule before it is back (where no stop had begun, a
        SIGTERM while one is pending raises at once again); left with one pending, every SIGTERM stays noted, as
        after :meth:`begin_stop`, so that the caller stops its runs with nothing cut short; left by an error, nothing
        is put back (the error goes on, and :func:`sigterm_deferred` puts back its own handler)."""
        before = self.stopping
        self.stopping = True
        yield self  # an error raised here leaves every SIGTERM noted
        if not self.pending:
            self.stopping = before

    def ended(self) -> Terminated:
        """The :class:`Terminated` of the noted signal, the handler found on entry to :func:`sigterm_raises` put
        back (a later SIGTERM ends the process, as after a SIGTERM raised at once).  ValueError where no SIGTERM
        is pending."""
        if not self.pending:
            raise ValueError("no SIGTERM is pending: nothing ended the call")
        ended = self.raising.ended()  # the handler found put back first: no window where a signal raises unnoted
        self.pending = False
        return ended


@contextlib.contextmanager
def sigterm_deferred():
    """While held inside :func:`sigterm_raises` (in the main thread), a first SIGTERM raises nothing: it is noted
    (the :class:`SigtermNoted` yielded turns ``pending``), so that a loop that checks it at its own moments (the
    epoch loop of :func:`nclib.train.run_many`, at its metric epochs) stops its runs with a checkpoint, as
    ``max_train_s`` stops them, and then raises :meth:`SigtermNoted.ended`; a second SIGTERM while one is pending
    raises :class:`Terminated` at once, unless the stop has begun (:meth:`SigtermNoted.begin_stop`): then it is
    noted too, and the stop goes on to its end.  Leaving puts :func:`sigterm_raises`'s handler back, a signal still
    pending kept in ``pending`` for the caller; left with a signal pending once the stop has begun, the handler that
    notes stays until the caller takes :meth:`SigtermNoted.ended`, so that the runs the caller ends after the loop
    (those that reach their last epoch) are not cut short either.  Without :func:`sigterm_raises` (or outside the
    main thread) it changes nothing: the SIGTERM handler stays as it is and ``pending`` stays False."""
    handler = (signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None)
    if not isinstance(handler, _RaiseTerminated):
        yield SigtermNoted()
        return
    noted = SigtermNoted(handler)
    signal.signal(signal.SIGTERM, noted)
    try:
        yield noted
    except BaseException:
        if signal.getsignal(signal.SIGTERM) is noted:  # not where a second SIGTERM or ended() put another back
            signal.signal(signal.SIGTERM, handler)
        raise
    if signal.getsignal(signal.SIGTERM) is noted and not (noted.pending and noted.stopping):
        signal.signal(signal.SIGTERM, handler)
    # else the stop of a noted signal has begun: a further SIGTERM stays noted while the caller ends the runs (at the
    # last epoch it finishes them), until ended() puts back the handler found on entry to sigterm_raises
