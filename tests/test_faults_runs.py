"""Faults tried against run folders, for real: run names that would leave out_dir, two writers on one folder,
SIGKILL and a crash while the checkpoint is written, SIGTERM to the command lines, data rewritten under a stopped
run, damaged checkpoints,
and the command line's answer to a user error.  Tiny synthetic runs; a second process or a kill runs in a
subprocess."""
import contextlib
import errno
import fcntl
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import warnings

import numpy as np
import pytest
import torch

import nclib
from nclib import checkpoints, locks, runplan, runs, sweep, train

TINY = dict(dataset="synthetic", width=16, depth=1, batch_size="full", lam_W=1e-3, lam_H=1e-3, progress=False,
            device="cpu")
LONG = dict(TINY, epochs=10**6, metric_every=5)  # runs until stopped (max_train_s) or killed
CLI = ["--dataset", "synthetic", "--width", "16", "--depth", "1", "--epochs", "5", "--batch-size", "full",
       "--lam-W", "1e-3", "--lam-H", "1e-3", "--progress", "false"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(nclib.ROOT)}

# A second process: train.run(**json argv[1]); with CRASH_IN_SAVE it dies (SIGKILL) half-way through writing its
# checkpoint, with CRASH_IN_RENAME once it is written and recorded but before its rename, as a machine that loses
# power or a job killed at that moment would leave it.
CHILD = """
import io, json, os, signal, sys
import torch
from nclib import train
if os.environ.get("CRASH_IN_SAVE"):
    real = torch.save
    def crash(obj, f, *args, **kwargs):
        buf = io.BytesIO()
        real(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    torch.save = crash
if os.environ.get("CRASH_IN_RENAME"):  # dies between recording the new checkpoint's checksum and its rename
    real_replace = os.replace
    def crash_replace(src, dst, *args, **kwargs):
        if str(dst).endswith("checkpoint.pt"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst, *args, **kwargs)
    os.replace = crash_replace
train.run(**json.loads(sys.argv[1]))
"""


def _child(crash_in_save=False, crash_in_rename=False, **kw):
    # the child resumes this process's runs and this process the child's: a CPU run resumes only with torch's thread
    # count, this process's as the child starts (an earlier test may have changed it)
    env = {**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads()), **({"CRASH_IN_SAVE": "1"} if crash_in_save else {}),
           **({"CRASH_IN_RENAME": "1"} if crash_in_rename else {})}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(kw, default=str)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(predicate, proc=None, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"condition not reached; child: {None if proc is None else proc.communicate()}")


def _epochs(folder):
    try:
        return train.load_history(folder)["epoch"].tolist()
    except (ValueError, KeyError, OSError):
        return []


def _files(folder):
    return {f.name: f.read_bytes() for f in folder.iterdir()}


def _same_history(a, b):
    ha, hb = train.load_history(a), train.load_history(b)
    for col in train.REPRODUCIBLE_COLUMNS:  # all but the wall time
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)


# ------------------------------------------------------------------------------------------ run names

def test_run_names_that_would_leave_out_dir_are_refused_before_anything_is_touched(tmp_path):
    """The fault: `--run-name . --overwrite true` deleted out_dir itself (and `..` its parent)."""
    out = tmp_path / "runs"
    (out / "old").mkdir(parents=True)
    (out / "old" / "history.csv").write_text("epoch\n0\n")
    proc = subprocess.run([sys.executable, "-m", "nclib.train", *CLI, "--out-dir", str(out), "--run-name", ".",
                           "--overwrite", "true"], capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("python -m nclib.train: error: run_name must be one folder name") and "'.'" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["old"]
    assert (out / "old" / "history.csv").read_text() == "epoch\n0\n"
    for bad in (".", "..", "", "  ", "a/b", "../x", "/abs", str(tmp_path / "x"), "a\\b", "a\0b", 3):
        with pytest.raises(ValueError, match=r"^run_name must be one folder name inside out_dir"):
            train.run(**TINY, epochs=5, out_dir=out, run_name=bad, overwrite=True)
        with pytest.raises(ValueError, match=r"^run_name must be one folder name inside out_dir"):
            runs.check_run_name(bad)
    with pytest.raises(ValueError, match=r"^run_name must be one folder name"):
        train.run_names([1, 3], "../up")
    assert sorted(p.name for p in out.iterdir()) == ["old"]


def test_a_run_name_too_long_for_a_folder_is_refused_as_an_argument(tmp_path):
    """The fault: a 300-character run name passed the check and failed as OSError (File name too long, exit status
    1) once the folder was made; it is an argument refused by name now, exit status 2, and nothing is made."""
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "nclib.train", *CLI, "--out-dir", str(out), "--run-name", "a" * 300],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("python -m nclib.train: error: run_name must be at most 255 bytes")
    assert not out.exists()


def test_a_run_name_of_name_max_bytes_passes_and_one_byte_more_is_refused():
    """NAME_MAX = 255 counts the bytes the file system stores, not the characters: 255 ASCII characters pass and
    256 are refused; 127 two-byte characters and one ASCII character (255 bytes) pass, 128 of them (256) do not."""
    assert runs.NAME_MAX == 255
    for name in ("a" * 255, "\u00e9" * 127 + "a"):
        assert runs.check_run_name(name) == name
    for name in ("a" * 256, "\u00e9" * 128):
        with pytest.raises(ValueError, match=r"^run_name must be at most 255 bytes.* got 256 bytes"):
            runs.check_run_name(name)


def test_overwrite_refuses_a_folder_holding_files_no_run_writes_naming_them(tmp_path):
    """overwrite deletes only a run's own files: a folder holding anything else, beside a run or alone, is refused
    naming the foreign entries, and nothing in it is deleted."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"run_dir '.*notes' holds entries a run does not write \(\['notes.txt'\]\)"):
        train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="notes", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes" / "notes.txt").read_text() == "mine"
    folder = train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="r")
    (folder / "plot.png").write_bytes(b"mine")
    (folder / "extra").mkdir()
    before = {f.name: f.is_file() and f.read_bytes() for f in folder.iterdir()}
    with pytest.raises(ValueError, match=r"holds entries a run does not write \(\['extra', 'plot.png'\]\)"):
        train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="r", overwrite=True)
    assert {f.name: f.is_file() and f.read_bytes() for f in folder.iterdir()} == before
    assert runs.run_status(folder) == "finished"


def test_the_check_before_an_overwrite_deletes_nothing(tmp_path):
    """run_many checks every folder it is to overwrite (clear_run_folder with check_only) before it clears any: the
    check deletes nothing, so a call whose second folder holds a file no run writes leaves the first run finished."""
    first = train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="a")
    before = _files(first)
    runs.clear_run_folder(first, check_only=True)
    assert _files(first) == before
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"^run_dir '.*b' holds entries a run does not write \(\['notes.txt'\]\)"):
        train.run_many([dict(run_name="a"), dict(run_name="b")], **TINY, epochs=5, out_dir=tmp_path, overwrite=True)
    assert _files(first) == before and runs.run_status(first) == "finished"
    assert _files(tmp_path / "b") == {"notes.txt": b"mine"}


def test_overwrite_deletes_a_cut_off_writes_temporary_but_refuses_any_other_hidden_file(tmp_path):
    """The fault: overwrite deleted every hidden file ending in .tmp, a user's own among them.  Now only the
    temporary of an atomic write of one of the run's files is the run's; any other hidden file is refused by name,
    and nothing is deleted."""
    folder = train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="r")
    (folder / ".my-draft-notes.tmp").write_text("mine")
    before = _files(folder)
    with pytest.raises(ValueError, match=r"run_dir .* holds entries a run does not write \(\['.my-draft-notes.tmp'\]"):
        train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="r", overwrite=True)
    assert _files(folder) == before and runs.run_status(folder) == "finished"
    (folder / ".my-draft-notes.tmp").unlink()
    cut_off = [f".history.csv.{locks.writer_tag()}.tmp", ".provenance.json.4242.tmp", ".params.json.tmp",
               ".class_accuracy.csv.gpu_node_3.77.tmp"]  # a host whose name writer_tag writes with '_'
    for name in cut_off:  # as atomic_write_text names its temporary (and as earlier versions did)
        (folder / name).write_text("half")
    train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="r", overwrite=True)
    assert not any((folder / name).exists() for name in cut_off) and runs.run_status(folder) == "finished"


@pytest.mark.parametrize("ended", ["finished", "stopped"])
def test_an_overwrite_cut_off_while_it_clears_leaves_a_dead_run_that_only_overwrite_replaces(tmp_path, monkeypatch,
                                                                                              ended):
    """The fault: the clear deleted in the folder's listing order, so a kill part-way left a folder that read
    "finished" (or "stopped") without its history, which every later plan skipped.  Now a clear cut off at any file
    leaves a run that is neither: a dead one that no plan skips or resumes, which another overwrite replaces."""
    kw = dict(TINY, epochs=5) if ended == "finished" else dict(LONG, max_train_s=0)
    folder = train.run(**kw, out_dir=tmp_path, run_name="r")
    assert runs.run_status(folder) == ended
    whole = _files(folder)
    real = pathlib.Path.unlink
    for k in range(len(whole)):  # the kill before the k-th deletion
        for name, data in whole.items():
            (folder / name).write_bytes(data)
        calls = []

        def unlink(self, *args, **kwargs):
            calls.append(self.name)
            if len(calls) > k:
                raise KeyboardInterrupt("killed")  # stands in for SIGKILL here
            return real(self, *args, **kwargs)

        monkeypatch.setattr(pathlib.Path, "unlink", unlink)
        with pytest.raises(KeyboardInterrupt):
            runs.clear_run_folder(folder)
        monkeypatch.setattr(pathlib.Path, "unlink", real)
        left = {f.name for f in folder.iterdir()}
        assert len(left) == len(whole) - k
        if k == 0:
            assert runs.run_status(folder) == ended
            continue
        assert runs.run_status(folder) == "dead" and "provenance.json" not in left
        # a checkpoint left without its provenance is none to resume from: the plan says so, and a sweep starts
        # the run again rather than trying a resume that would be refused
        assert not checkpoints.has_checkpoint(folder) and sweep.next_step(folder) == ("dead", "start")
        with pytest.raises(runs.RunExists, match="dead run without a checkpoint") as refused:
            runplan.plan_runs([folder])
        assert refused.value.status == "dead" and refused.value.continuable == ()
        said = "has no provenance.json beside it" if "checkpoint.pt" in left else "holds no checkpoint.pt"
        with pytest.raises(runs.ResumeRefused, match=said):
            train.run(**kw, out_dir=tmp_path, run_name="r", resume=True)
        assert {f.name for f in folder.iterdir()} == left  # refusals delete nothing
    for name, data in whole.items():  # and a power loss: the provenance's deletion is on disk before any other
        (folder / name).write_bytes(data)
    events = []
    monkeypatch.setattr(pathlib.Path, "unlink", lambda self, *a, **k: (events.append(self.name), real(self, *a, **k)))
    monkeypatch.setattr(runs, "fsync_folder", lambda d: events.append("fsync"))
    runs.clear_run_folder(folder)
    monkeypatch.undo()
    assert events[:2] == ["provenance.json", "fsync"] and not any(folder.iterdir())
    train.run(**kw, out_dir=tmp_path, run_name="r", overwrite=True)
    assert runs.run_status(folder) == ended


def test_command_line_prints_one_line_for_user_errors_and_lists_its_choices(tmp_path, capsys):
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "nclib.train", *CLI, "--out-dir", str(out), "--lr", "-1"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["python -m nclib.train: error: lr must be a finite positive "
                                                "number, got -1"]
    assert not out.exists()
    # refused by argparse itself (a value parse_value refuses, an unknown flag, a bad --L, a missing value): one
    # line naming the flag, no usage block
    for bad, flag in ((["--counts", "[1,2"], "--counts"), (["--bogus", "1"], "--bogus"), (["--L", "x"], "--L"),
                      (["--counts"], "--counts")):
        with pytest.raises(SystemExit) as exc:
            train.main([*CLI, "--out-dir", str(out), *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1, (bad, err)
        assert err[0].startswith("python -m nclib.train: error: ") and flag in err[0], (bad, err)
        assert not out.exists()
    train.run(**TINY, epochs=5, out_dir=out, run_name="synthetic-L1-bias-seed0")  # the command line's own name
    proc = subprocess.run([sys.executable, "-m", "nclib.train", *CLI, "--out-dir", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert repr(str(out / "synthetic-L1-bias-seed0")) in proc.stderr  # the folder named
    proc = subprocess.run([sys.executable, "-m", "nclib.train", "--help"], capture_output=True, text=True, env=ENV,
                          timeout=300)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    for choice in (*nclib.data.DATASETS, *train.PRECISIONS, *nclib.models.INITS):
        assert choice in text
    assert "results/runs/" in text and "<run-tag>-L<L>" in text and "--run-tag" in text


def test_command_line_and_notebook_name_run_folders_the_same_way():
    assert train.run_names([1, 3], None, dataset="cifar10", bias=False, seed=2) == \
        ["cifar10-L1-nobias-seed2", "cifar10-L3-nobias-seed2"]
    assert train.run_names([1, 3, 6], "fig1") == ["fig1-L1", "fig1-L3", "fig1-L6"]
    p = train.check_params(**TINY, L=3, bias=False, seed=2)
    assert p["run_name"] == train.run_names([3], None, dataset="synthetic", bias=False, seed=2)[0]
    with pytest.raises(ValueError, match="L_values"):
        train.run_names([0], "x")


# ------------------------------------------------------------------------------------------ one writer

def test_the_lock_file_of_another_host_is_refused_by_its_own_error(tmp_path):
    """No process holds the lock here, but its file names another host: whether that writer still runs cannot be
    seen from here, so lock_run refuses with RunLockedElsewhere (a RunFolderBusy), naming the file to remove and
    leaving it; removed, the folder is locked."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / locks.LOCK).write_text(json.dumps({"pid": 12, "host": "another-node"}) + "\n")
    with pytest.raises(locks.RunLockedElsewhere, match="another host 'another-node'") as refused:
        locks.lock_run(folder, retry_s=0)
    assert isinstance(refused.value, locks.RunFolderBusy) and refused.value.owner["host"] == "another-node"
    assert str(folder / locks.LOCK) in str(refused.value) and (folder / locks.LOCK).is_file()
    (folder / locks.LOCK).unlink()
    with locks.lock_run(folder, retry_s=0):
        assert locks.lock_owner(folder)["pid"] == os.getpid()


def test_is_this_process_reads_a_lock_record_for_this_pid_and_host(tmp_path):
    """The record of a lock this process holds names it; one of another pid on this host, or of this pid on another
    host, or with neither, does not; anything but a mapping is refused naming record."""
    folder = tmp_path / "r"
    with locks.lock_run(folder, retry_s=0):
        assert locks.is_this_process(locks.lock_owner(folder))
        assert locks.is_this_process(locks.read_lock_file(folder / locks.LOCK))
    host = socket.gethostname()
    assert not locks.is_this_process({"pid": os.getpid() + 1, "host": host})
    assert not locks.is_this_process({"pid": os.getpid(), "host": host + "-other"})
    assert not locks.is_this_process({"pid": None, "host": None}) and not locks.is_this_process({})
    for bad in (None, [os.getpid(), host], "pid"):
        with pytest.raises(ValueError, match=r"^record must be"):
            locks.is_this_process(bad)


def test_every_run_folder_locked_on_another_host_is_named_in_one_refusal(tmp_path, capsys):
    """The fault: a job whose three run folders held lock files of a node that died was refused on the first, then,
    once its file was removed, on the next: one queued job per folder.  Now one refusal names every such folder and
    file, leaves the files, and holds no lock after it; a folder locked here is not among them."""
    names = ["j-L1", "j-L2", "j-L3"]
    for i, name in enumerate(names[:2]):
        (tmp_path / name).mkdir()
        (tmp_path / name / locks.LOCK).write_text(json.dumps({"pid": 40 + i, "host": "another-node"}) + "\n")
    with pytest.raises(locks.RunLockedElsewhere) as refused:
        train.run_many([dict(L=L, run_name=name) for L, name in zip((1, 2, 3), names)], **TINY, epochs=5,
                       out_dir=tmp_path)
    locked = {tmp_path / name for name in names[:2]}
    assert set(refused.value.locked) == locked and refused.value.run_dir == tmp_path / names[0]
    assert [refused.value.locked[d]["pid"] for d in sorted(locked)] == [40, 41]
    assert all(str(d / locks.LOCK) in str(refused.value) for d in locked)
    assert all((d / locks.LOCK).is_file() for d in locked)  # left for whoever knows that their writers ended
    assert not (tmp_path / names[2]).exists()  # its lock was taken, then given back with the folder it made
    with pytest.raises(SystemExit) as exit_:  # the command line: one refusal, status 2, naming both files
        train.main([*CLI, "--counts", "6,4", "--L", "1", "2", "3", "--run-tag", "j", "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and all(str(d / locks.LOCK) in err for d in locked)
    for d in locked:
        (d / locks.LOCK).unlink()
    assert [p.name for p in train.main([*CLI, "--counts", "6,4", "--L", "1", "2", "3", "--run-tag", "j",
                                        "--out-dir", str(tmp_path)])] == names


def test_a_live_writer_refusal_still_names_the_lock_files_of_other_hosts(tmp_path):
    """A call whose first folder holds another host's lock file and whose second is being written here: the refusal
    is the live writer's, and it names the other host's file too, so that the next job does not meet it."""
    other, busy = tmp_path / "a", tmp_path / "b"
    other.mkdir()
    (other / locks.LOCK).write_text(json.dumps({"pid": 7, "host": "another-node"}) + "\n")
    held = locks.lock_run(busy)
    try:
        with pytest.raises(locks.RunFolderBusy) as refused:
            locks.lock_runs([other, busy], retry_s=0.0)
        assert not isinstance(refused.value, locks.RunLockedElsewhere) and refused.value.run_dir == busy
        assert str(other / locks.LOCK) in str(refused.value)
    finally:
        held.release()
    for lock in locks.lock_runs([busy]):  # nothing was kept
        lock.release()


def test_a_plan_refuses_the_lock_file_of_another_host_as_the_lock_does(tmp_path):
    """The fault: a stopped run whose lock file names another host read "dead" and planned "resume", and the resume
    was then refused by the lock.  The plan now refuses such a folder as lock_run does, whatever it holds and with
    overwrite too, naming every such folder and file; removed, the run resumes."""
    stopped = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    finished = train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="f")
    empty = tmp_path / "e"
    empty.mkdir()
    folders = [stopped, finished, empty]
    for i, d in enumerate(folders):
        (d / locks.LOCK).write_text(json.dumps({"pid": 12 + i, "host": "another-node"}) + "\n")
    before = {d: _files(d) for d in folders}
    assert locks.other_host_lock(stopped)["pid"] == 12 and locks.other_host_lock(tmp_path / "none") is None
    for d in folders:
        for overwrite in (False, True):
            with pytest.raises(locks.RunLockedElsewhere) as refused:
                runplan.plan_runs([d], overwrite=overwrite)
            assert refused.value.run_dir == d and str(d / locks.LOCK) in str(refused.value)
            with pytest.raises(locks.RunLockedElsewhere):
                locks.lock_run(d, retry_s=0)
    with pytest.raises(locks.RunLockedElsewhere) as refused:
        train.plan([dict(L=L, run_name=n) for L, n in ((1, "r"), (2, "f"))], **LONG, out_dir=tmp_path)
    assert set(refused.value.locked) == {stopped, finished}
    busy = locks.lock_run(tmp_path / "b")  # a live writer here: its refusal, naming the other host's file too
    try:
        with pytest.raises(locks.RunFolderBusy) as refused:
            runplan.plan_runs([stopped, tmp_path / "b"])
        assert not isinstance(refused.value, locks.RunLockedElsewhere)
        assert str(stopped / locks.LOCK) in str(refused.value)
    finally:
        busy.release()
    assert {d: _files(d) for d in folders} == before
    (stopped / locks.LOCK).write_text(json.dumps({"pid": 12, "host": socket.gethostname()}) + "\n")
    assert locks.other_host_lock(stopped) is None and runplan.plan_runs([stopped]) == "resume"
    (stopped / locks.LOCK).unlink()
    assert runplan.plan_runs([stopped]) == "resume"


def test_a_failure_after_the_lock_is_taken_gives_it_back(tmp_path, monkeypatch):
    """The fault: lock_run kept the lock (its file open) when the takeover warning was raised as an error or the
    record could not be written, so the folder read "running" until the process ended.  Now the lock is given back,
    the dead writer's record stays, and a folder the call made is removed."""
    folder = tmp_path / "r"
    folder.mkdir()
    dead = {"pid": 999999, "host": socket.gethostname(), "since": "then"}
    (folder / locks.LOCK).write_text(json.dumps(dead))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            locks.lock_run(folder, retry_s=0)
    assert locks.lock_owner(folder) is None and locks.read_lock_file(folder / locks.LOCK) == dead

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(locks, "write_lock_record", full)
    with pytest.raises(OSError) as exc:
        locks.lock_run(tmp_path / "new", retry_s=0)
    assert exc.value.errno == errno.ENOSPC and not (tmp_path / "new").exists()
    monkeypatch.undo()
    with pytest.warns(RuntimeWarning, match="999999"):  # nothing was kept: the next writer takes it over
        lock = locks.lock_run(folder, retry_s=0)
    with lock:
        assert lock.took_over == dead and locks.lock_owner(folder)["pid"] == os.getpid()


def test_the_holder_of_a_lock_answers_from_it_without_opening_its_file_again(tmp_path, monkeypatch):
    """On NFS flock is emulated with POSIX locks, which belong to the process: lock_owner's shared lock, unlock and
    close on a second descriptor, in the process holding the lock, would give it up.  The holder now answers
    lock_owner, run_status, plan_runs and a second lock_run from the lock it holds (by the folder's resolved path,
    a link to it too), never opening the lock file; once released, the file is read again."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    link = tmp_path / "link"
    link.symlink_to(folder)
    lock = locks.lock_run(folder, retry_s=0)
    real_open, real_read = os.open, pathlib.Path.read_text

    def no_lock_file(path, *args, **kwargs):
        if pathlib.Path(path).name == locks.LOCK:
            pytest.fail(f"the lock file {path} was opened by the process holding its lock")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(locks.os, "open", no_lock_file)
    monkeypatch.setattr(pathlib.Path, "read_text", lambda self, *a, **k: pytest.fail(f"{self} read")
                        if self.name == locks.LOCK else real_read(self, *a, **k))
    try:
        for d in (folder, link, str(folder)):
            assert locks.lock_owner(d)["pid"] == os.getpid() and runs.run_status(d) == "running"
            assert locks.other_host_lock(d) is None
            with pytest.raises(locks.RunFolderBusy, match=f"pid {os.getpid()}"):
                runplan.plan_runs([d])
            with pytest.raises(locks.RunFolderBusy, match=f"pid {os.getpid()}"):
                locks.lock_run(d, retry_s=0)
    finally:
        monkeypatch.undo()
        lock.release()
    assert locks.lock_owner(folder) is None and runs.run_status(folder) == "stopped"
    with locks.lock_run(link, retry_s=0):  # taken again, through the link
        assert locks.lock_owner(folder)["pid"] == os.getpid()
    assert locks.lock_owner(folder) is None and not (folder / locks.LOCK).exists()



@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_leaving_the_lock_leaves_it_to_its_holder(tmp_path):
    """The fault: a process forked while its parent held a run folder's lock (a worker pool, a subprocess made by
    fork) released it on leaving the with block: it removed the lock file, and the folder the lock made, while the
    parent still held the flock on the removed file, so a second writer took a new lock beside the parent's.  The
    child now only closes its copy of the descriptor; the lock, its file and its folder stay the holder's.  A child
    that asks once its parent has given the lock back holds none: it sees no owner and takes the lock itself."""
    folder = tmp_path / "new"  # made by the lock: the holder removes it on release, the child must not
    other = ("import sys\nfrom nclib import locks\ntry:\n    locks.lock_run(sys.argv[1], retry_s=0)\n"
             "except locks.RunFolderBusy:\n    sys.exit(3)\n")
    with locks.lock_run(folder, retry_s=0) as lock:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork in a process with threads (torch's)
            pid = os.fork()
        if pid == 0:  # the child: leaves the with block as a forked worker would, then tells what it left
            code = 1
            try:
                lock.release()
                code = 0 if lock.fd is None and (folder / locks.LOCK).is_file() else 2
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert (folder / locks.LOCK).is_file() and locks.lock_owner(folder)["pid"] == os.getpid()
        second = subprocess.run([sys.executable, "-c", other, str(folder)], env=ENV, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 3, second.stderr  # refused: the parent holds the lock still
    assert not folder.exists()  # the holder's release removed the file and the folder it made
    # a child forked while the parent held the lock, asking after the parent gave it back: it holds nothing (its copy
    # of the descriptor is no lock of its own), so it sees no owner and takes the lock itself
    lock = locks.lock_run(folder, retry_s=0)
    released, asked = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(asked)
            os.read(released, 1)  # the parent has released
            code = 4 if locks.lock_owner(folder) is not None else 5
            if code == 5:
                with locks.lock_run(folder, retry_s=0) as own:
                    code = 0 if own.pid == os.getpid() and locks.lock_owner(folder)["pid"] == own.pid else 6
        finally:
            os._exit(code)
    os.close(released)
    lock.release()
    os.write(asked, b"x")
    os.close(asked)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert not folder.exists()  # the child's own lock made the folder again and removed it on release

def test_a_writer_waiting_for_a_lock_takes_it_when_its_holder_removed_the_folder(tmp_path, monkeypatch):
    """The fault: a writer that made a run folder removes it, empty, when it gives its lock back; a second writer
    waiting for that lock (retry_s) then opened the lock file in a folder that was gone: FileNotFoundError instead of
    the lock.  It now makes the folder again and takes the lock; the folder is then its own, removed on release when
    nothing filled it.  The first writer's release happens, deterministically, while the second one waits (the
    holder is this process, whose lock the second call sees as busy without opening its file)."""
    folder = tmp_path / "out" / "r"
    first = locks.lock_run(folder, retry_s=0)
    assert first.created and folder.is_dir()
    waits = []

    def wait(seconds):  # the first writer ends while the second one waits
        waits.append(seconds)
        first.release()

    monkeypatch.setattr(locks.time, "sleep", wait)
    second = locks.lock_run(folder, retry_s=60)
    monkeypatch.undo()
    assert len(waits) == 1 and second.created and second.fd is not None
    assert locks.lock_owner(folder)["pid"] == os.getpid() and (folder / locks.LOCK).is_file()
    second.release()
    assert not folder.exists() and (tmp_path / "out").is_dir()  # the folder it made again, empty, is removed
    with locks.lock_run(folder, retry_s=0) as lock:  # a folder the run filled is kept
        (folder / "history.csv").write_text("epoch\n")
        assert lock.created
    assert (folder / "history.csv").is_file() and not (folder / locks.LOCK).exists()


@pytest.mark.parametrize("text", ["[1]", "7", "null", "{not json"])
def test_a_lock_file_that_is_no_json_object_is_taken_over_as_raw_text(tmp_path, text):
    """A damaged lock file (a list, a number, cut short) is a dead writer's: taken over with a warning, its text kept
    as ``raw`` (it raised AttributeError and kept the lock for a list)."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / locks.LOCK).write_text(text)
    assert locks.read_lock_file(folder / locks.LOCK) == {"pid": None, "host": None, "raw": text}
    with pytest.warns(RuntimeWarning, match="taking over"):
        lock = locks.lock_run(folder, retry_s=0)
    with lock:
        assert lock.took_over["raw"] == text and locks.lock_owner(folder)["pid"] == os.getpid()
    assert locks.lock_owner(folder) is None and not (folder / locks.LOCK).exists()


def test_a_takeover_leaves_the_new_record_alone_in_a_longer_dead_ones_file(tmp_path):
    """A dead writer's record longer than the new one (a longer command line) is replaced, not overwritten in part:
    the lock file reads back as the new holder's record, so a refused writer is told who holds the folder."""
    folder = tmp_path / "r"
    folder.mkdir()
    dead = {"pid": 999999, "host": socket.gethostname(), "since": "then", "command_line": ["x" * 5000]}
    (folder / locks.LOCK).write_text(json.dumps(dead))
    with pytest.warns(RuntimeWarning, match="999999"):
        lock = locks.lock_run(folder, retry_s=0)
    with lock:
        assert lock.took_over == dead
        assert locks.read_lock_file(folder / locks.LOCK) == lock.record and lock.record["pid"] == os.getpid()


def test_a_lock_held_before_its_record_is_written_has_a_live_owner(tmp_path):
    """Between taking the flock and writing its record a writer's lock file is empty: lock_owner answers a live
    owner it cannot name, not None (which would read the folder as free)."""
    import fcntl

    folder = tmp_path / "r"
    folder.mkdir()
    fd = os.open(folder / locks.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: another holder, as far as flock goes
        assert locks.lock_owner(folder) == {"pid": None, "host": None}
    finally:
        os.close(fd)
    assert locks.lock_owner(folder) is None


def _another_writer_takes(path) -> bool:
    """Whether another writer takes the lock of the lock file ``path`` now, as :func:`nclib.locks.lock_run` would: the
    file opened (made where missing) and locked, through an open file description of its own (flock locks belong to
    one, so the locks of this process conflict with it as another process's do)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return locks.flock(fd, fcntl.LOCK_EX, path)
    finally:
        os.close(fd)


def test_a_writer_that_locked_the_file_its_holder_just_removed_locks_the_new_one(tmp_path, monkeypatch):
    """The moment a holder gives its lock back: a second writer has opened the lock file, and the holder removes the
    file and closes it before that writer's flock, which then locks a file no longer in the folder; a third writer,
    making the file anew, would lock the folder too.  The second writer checks, after its flock, that the file it
    locked is the one at the path, and opens the file again where it is not.  The holder is another open file
    description of this process, which leaves, deterministically, between the second writer's open and its flock."""
    folder = tmp_path / "r"
    folder.mkdir()
    path = folder / locks.LOCK
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(holder, fcntl.LOCK_EX)
    real, left = locks.flock, []

    def flock(fd, operation, where):
        if operation & fcntl.LOCK_EX and not left:  # the file is open: its holder leaves now, as a release does
            path.unlink()
            os.close(holder)
            left.append(True)
        return real(fd, operation, where)

    monkeypatch.setattr(locks, "flock", flock)
    lock = locks.lock_run(folder, retry_s=0)
    monkeypatch.undo()
    with lock:
        assert left and path.is_file() and os.fstat(lock.fd).st_ino == os.stat(path).st_ino
        assert locks.read_lock_file(path)["pid"] == os.getpid()
        assert not _another_writer_takes(path)  # the folder has one writer


def test_a_release_removes_the_lock_file_before_it_gives_the_lock_back(tmp_path, monkeypatch):
    """A release that gave its lock back (closed the file) before it removed the file would let a writer waiting on
    that file lock it, and pass the check that the file is the one at the path, in between; the release then removed
    the file that writer holds, and a third writer, making it anew, would lock the folder too.  The release removes
    the file first, while it holds the lock.  The waiting writer is another open file description of this process,
    which tries the lock the moment the holder's descriptor is closed."""
    folder = tmp_path / "r"
    folder.mkdir()
    path = folder / locks.LOCK
    lock = locks.lock_run(folder, retry_s=0)
    held, real_close, waiter = lock.fd, os.close, []

    def close(fd):
        real_close(fd)
        if fd == held and not waiter:  # the flock is given back: the waiting writer takes it, as lock_run would
            mine = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            waiter.append(mine)
            assert locks.flock(mine, fcntl.LOCK_EX, path) and os.fstat(mine).st_ino == os.stat(path).st_ino

    monkeypatch.setattr(os, "close", close)
    lock.release()
    monkeypatch.undo()
    try:
        assert len(waiter) == 1 and lock.fd is None
        assert path.is_file() and os.fstat(waiter[0]).st_ino == os.stat(path).st_ino  # the waiter's file is there
        assert not _another_writer_takes(path)  # the folder has one writer
    finally:
        for fd in waiter:
            os.close(fd)


@pytest.mark.parametrize("moved", ["removed by hand", "folder renamed"])
def test_a_release_leaves_the_lock_file_of_a_writer_that_locked_the_folder_after_it(tmp_path, moved):
    """The fault: a release unlinked whatever lock file was at the folder's path.  Where the holder's file was removed
    by hand too early (the refusal of a lock file written on another host tells people to remove it), or the run
    folder renamed and made again, a second process then locked a new file there; the first writer's release removed
    that file, so the second's live run read as not running and a third writer took the folder beside it.  A release
    now removes the file only where it is the one its own descriptor holds."""
    folder = tmp_path / "r"
    first = locks.lock_run(folder, retry_s=0)
    (folder / "history.csv").write_text("epoch\n")  # a run's file: the folder is kept on release
    if moved == "removed by hand":
        (folder / locks.LOCK).unlink()
    else:
        folder.rename(tmp_path / "r-old")
        folder.mkdir()
    holder = ("import sys\nfrom nclib import locks\nlock = locks.lock_run(sys.argv[1], retry_s=0)\n"
              "print('locked', flush=True)\nsys.stdin.read()\nlock.release()\n")
    second = subprocess.Popen([sys.executable, "-c", holder, str(folder)], env=ENV, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert second.stdout.readline() == "locked\n", second.stderr.read()
        inode = os.stat(folder / locks.LOCK).st_ino
        first.release()
        assert first.fd is None and os.stat(folder / locks.LOCK).st_ino == inode  # the second writer's file stays
        assert locks.lock_owner(folder)["pid"] == second.pid and runs.run_status(folder) == "running"
        with pytest.raises(locks.RunFolderBusy) as err:  # a third writer is refused while the second one writes
            locks.lock_run(folder, retry_s=0)
        assert err.value.owner["pid"] == second.pid
    finally:
        second.communicate("", timeout=120)
    assert second.returncode == 0 and not (folder / locks.LOCK).exists() and locks.lock_owner(folder) is None


@pytest.mark.parametrize("lock_file", ["in place", "removed by another client"])
def test_a_release_whose_stat_of_the_lock_file_fails_gives_the_lock_back(tmp_path, monkeypatch, lock_file):
    """The fault: a release compared the file at the folder's lock path with its own descriptor's, and an OSError of
    that stat other than FileNotFoundError (ESTALE on NFS, for a file another client removed: the removed-by-hand case
    the comparison is there for) went up from release, skipping the removal of the folder the lock made.  A stat that
    fails now reads as a file not provably this lock's: it is left where it is, and the lock is given back."""
    folder = tmp_path / "r"
    lock = locks.lock_run(folder, retry_s=0)
    assert lock.created
    path = folder / locks.LOCK
    if lock_file != "in place":
        path.unlink()
    real_stat = os.stat

    def stale(target, *args, **kwargs):  # the NFS answer for a file handle whose file another client removed
        if pathlib.Path(target) == path:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(target))
        return real_stat(target, *args, **kwargs)

    monkeypatch.setattr(locks.os, "stat", stale)
    lock.release()
    monkeypatch.undo()
    assert lock.fd is None and locks.lock_owner(folder) is None
    if lock_file == "in place":  # left, its record this process's; the flock is given back: a second writer takes it
        assert locks.read_lock_file(path)["pid"] == os.getpid()
        with pytest.warns(RuntimeWarning, match="taking over the lock"):
            with locks.lock_run(folder, retry_s=0) as again:
                assert again.fd is not None and locks.lock_owner(folder) == again.record
    else:  # nothing left in the folder the lock made: it is removed, as a release without the failing stat does
        assert not folder.exists()


def test_a_lock_record_is_flushed_to_disk_once_written(tmp_path, monkeypatch):
    """The lock file's record (pid, host) is what a refused writer, and a writer on another host after a crash, is
    told of the holder: it is fsync'd once written, each time a lock is taken."""
    events = []
    real_pwrite, real_fsync = os.pwrite, os.fsync

    def named(fd):  # the entry of the run folder that is the file open as fd
        inode = os.fstat(fd).st_ino
        return next(e.name for e in (tmp_path / "r").iterdir() if e.stat().st_ino == inode)

    monkeypatch.setattr(locks.os, "pwrite", lambda fd, data, at: (events.append(("write", named(fd))),
                                                                  real_pwrite(fd, data, at))[1])
    monkeypatch.setattr(locks.os, "fsync", lambda fd: (events.append(("fsync", named(fd))), real_fsync(fd))[1])
    for _ in range(2):
        with locks.lock_run(tmp_path / "r") as lock:
            assert locks.read_lock_file(tmp_path / "r" / locks.LOCK) == lock.record
            (tmp_path / "r" / "kept").write_text("")  # so that the folder stays when the lock is given back
    assert events == [("write", locks.LOCK), ("fsync", locks.LOCK)] * 2


def test_clearing_a_run_folder_keeps_the_lock_its_writer_holds(tmp_path):
    """overwrite=True clears a run folder while holding its lock: deleting the lock file with the run's files would
    leave the lock on a file no longer in the folder, and another writer, making the file anew, would take the folder
    while the first one writes it."""
    folder = tmp_path / "r"
    with locks.lock_run(folder, retry_s=0) as lock:
        for name in ("params.json", "history.csv", "provenance.json", runs.CHECKPOINT):
            (folder / name).write_text("{}")
        runs.clear_run_folder(folder)
        assert [p.name for p in folder.iterdir()] == [locks.LOCK]
        assert os.fstat(lock.fd).st_ino == os.stat(folder / locks.LOCK).st_ino
        assert not _another_writer_takes(folder / locks.LOCK)
        other = subprocess.run([sys.executable, "-c", "import sys\nfrom nclib import locks\ntry:\n"
                                "    locks.lock_run(sys.argv[1], retry_s=0)\nexcept locks.RunFolderBusy:\n"
                                "    sys.exit(3)", str(folder)], env=ENV, capture_output=True, text=True, timeout=120)
        assert other.returncode == 3, other.stderr  # another process is refused


def test_a_run_folder_under_a_link_to_nothing_or_a_file_is_refused_naming_that_parent(tmp_path):
    """A parent of the run folder that is a link to nothing (or a file) was reported as the run folder itself
    "exists and is not a folder"; the refusal names the parent that stands in the way, and nothing is made."""
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    (tmp_path / "file").write_text("not a folder")
    for parent, run_dir in ((tmp_path / "out", tmp_path / "out" / "r"), (tmp_path / "out", tmp_path / "out" / "a" / "r"),
                            (tmp_path / "file", tmp_path / "file" / "r")):
        with pytest.raises(ValueError, match=f"its parent '{re.escape(str(parent))}' "):
            locks.lock_run(run_dir, retry_s=0)
    (tmp_path / "r").symlink_to(tmp_path / "nowhere")  # the run folder itself a link to nothing: named itself
    with pytest.raises(ValueError, match=f"run_dir '{re.escape(str(tmp_path / 'r'))}'"):
        locks.lock_run(tmp_path / "r", retry_s=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out", "r"] and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("retry_s", ["1", -1.0, float("nan"), True, None])
def test_a_bad_retry_time_is_refused_before_the_folder_is_made(tmp_path, retry_s):
    with pytest.raises(ValueError, match="retry_s"):
        locks.lock_run(tmp_path / "r", retry_s=retry_s)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="retry_s"):
        locks.lock_runs([tmp_path / "r"], retry_s=retry_s)
    assert not (tmp_path / "r").exists()


def test_the_setting_a_refusal_advises_refuses_what_is_no_parameter_or_flag():
    for kw, name in ((dict(name="over write", value=True), "name"), (dict(name=3, value=True), "name"),
                     (dict(name="overwrite", value=True, without="resume"), "without")):
        with pytest.raises(ValueError, match=name):
            runs.setting_text(**kw)
    assert "--max-train-s 60" in runs.setting_text("max_train_s", 60)  # the flag the command line takes


def test_two_writers_on_one_folder_the_second_refused_and_a_killed_run_recognised_and_resumed(tmp_path):
    """The faults: two processes on one run folder both "succeeded" and mixed their files (also with
    overwrite=True while the first ran); SIGKILL left the status "running" for good."""
    ref = train.run(**LONG, out_dir=tmp_path, run_name="reference", max_train_s=0)  # stopped at epoch 5
    train.run(**LONG, out_dir=tmp_path, run_name="reference", max_train_s=0, resume=True)  # and at 10
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    assert runs.run_status(folder) == "stopped" and _epochs(folder) == [0, 5]
    proc = _child(**LONG, out_dir=str(tmp_path), run_name="r", resume=True)  # trains until killed
    try:
        _wait(lambda: runs.run_status(folder) == "running" and len(_epochs(folder)) > 3, proc)
        owner = locks.lock_owner(folder)
        assert owner["pid"] == proc.pid and owner["host"]
        for kw in (dict(), dict(overwrite=True), dict(resume=True)):
            with pytest.raises(locks.RunFolderBusy, match=f"run folder {str(folder)!r} is being written by another "
                                                         f"process \\(pid {proc.pid}") as err:
                train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, **kw)  # not refused: stops at once
            assert err.value.run_dir == folder and err.value.owner["pid"] == proc.pid
        with pytest.raises(locks.RunFolderBusy):
            runplan.plan_runs([folder])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the killed run: its provenance still says "running", but no live process holds the lock
    assert json.loads((folder / "provenance.json").read_text())["status"] == "running"
    assert runs.run_status(folder) == "dead" and locks.lock_owner(folder) is None
    assert json.loads((folder / locks.LOCK).read_text())["pid"] == proc.pid  # the dead writer's lock is still there
    assert runplan.plan_runs([folder]) == "resume"
    # the next call takes the dead writer's lock over, saying so, and refuses to replace the run
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {proc.pid} .* which ended without "
                                            f"releasing it"):
        with pytest.raises(runs.RunExists, match="resume=True") as err:  # it offers the resume
            train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    assert err.value.status == "dead" and err.value.run_dir == folder
    assert runs.run_status(folder) == "dead"
    # resume continues from the last complete checkpoint
    train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert runs.run_status(folder) == "stopped" and not (folder / locks.LOCK).exists()
    _same_history(ref, folder)  # as if it had never been killed
    prov = json.loads((folder / "provenance.json").read_text())
    assert [s.get("status") for s in prov["segments"]] == ["stopped", "dead", "stopped"]
    assert prov["dead_segments"] == 1


@contextlib.contextmanager
def _recording_sigterm():
    """For the block, a SIGTERM handler found by the code under test that only records each signal it gets (not the
    process's end): yields the list of signals it got and the handler; the handler found before is put back."""
    seen = []

    def previous(signum, frame):
        seen.append(signum)

    before = signal.signal(signal.SIGTERM, previous)
    try:
        yield seen, previous
    finally:
        signal.signal(signal.SIGTERM, before)


def test_sigterm_raises_terminated_in_the_main_thread_once_and_puts_the_handler_back():
    """Held, SIGTERM raises Terminated (no Exception, as KeyboardInterrupt is none) and puts back the handler it
    found, so that a second SIGTERM is that handler's; left, the handler found is back.  In another thread, where no
    handler can be set, it changes nothing."""
    with _recording_sigterm() as (seen, previous):
        assert not issubclass(locks.Terminated, Exception)
        with pytest.raises(locks.Terminated):
            with locks.sigterm_raises():
                assert signal.getsignal(signal.SIGTERM) is not previous
                os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is previous and seen == []
        with locks.sigterm_raises():
            with pytest.raises(locks.Terminated):
                os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # the second: the handler found on entry
            assert seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is previous
        in_thread = []

        def held_in_a_thread():
            with locks.sigterm_raises():
                in_thread.append(signal.getsignal(signal.SIGTERM))

        thread = threading.Thread(target=held_in_a_thread)
        thread.start()
        thread.join()
        assert in_thread == [previous]


def test_sigterm_deferred_notes_a_first_sigterm_and_raises_a_second_at_once():
    """Inside sigterm_raises, sigterm_deferred turns a first SIGTERM into a note (``pending``), whose ``ended`` is
    the Terminated to raise, the handler found on entry put back; a second SIGTERM while one is pending raises at
    once; left with nothing pending, sigterm_raises's handler is back (a SIGTERM raises at once).  Without
    sigterm_raises it changes nothing, and ``ended`` with nothing pending is refused."""
    with _recording_sigterm() as (seen, previous):
        with locks.sigterm_raises():
            raising = signal.getsignal(signal.SIGTERM)
            with locks.sigterm_deferred() as noted:
                os.kill(os.getpid(), signal.SIGTERM)  # noted, not raised
                assert noted.pending
                ended = noted.ended()
            assert isinstance(ended, locks.Terminated) and signal.getsignal(signal.SIGTERM) is previous
        with locks.sigterm_raises():
            with pytest.raises(locks.Terminated):
                with locks.sigterm_deferred() as noted:
                    os.kill(os.getpid(), signal.SIGTERM)
                    assert noted.pending
                    os.kill(os.getpid(), signal.SIGTERM)  # the second: raised at once
            assert signal.getsignal(signal.SIGTERM) is previous and seen == []
        with locks.sigterm_raises():
            with locks.sigterm_deferred() as noted:
                pass
            assert not noted.pending and signal.getsignal(signal.SIGTERM) is not previous
            with pytest.raises(locks.Terminated):
                os.kill(os.getpid(), signal.SIGTERM)
        with locks.sigterm_deferred() as noted:  # no sigterm_raises: the handler found stays
            assert signal.getsignal(signal.SIGTERM) is previous
            os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM] and not noted.pending
        with pytest.raises(ValueError, match="no SIGTERM is pending"):
            noted.ended()
        assert raising is not previous


def test_once_the_stop_has_begun_every_sigterm_is_noted_until_ended():
    """Once the loop has begun its stop (``begin_stop``: the runs' checkpoints about to be written), a SIGTERM,
    a second one too, is noted and never raised, so that no signal cuts the stop short between two runs; left with
    a signal pending after the stop began, sigterm_deferred keeps noting (the runs the caller finishes after the
    loop are not cut short either) until ``ended`` puts back the handler found on entry to sigterm_raises.  A stop
    begun with nothing noted (max_train_s) notes the first SIGTERM and the second alike; one that ends with nothing
    noted leaves sigterm_raises's handler back, which raises at once."""
    with _recording_sigterm() as (seen, previous):
        for first_before_stop in (True, False):  # a noted signal's stop, or max_train_s's
            with locks.sigterm_raises():
                with locks.sigterm_deferred() as noted:
                    if first_before_stop:
                        os.kill(os.getpid(), signal.SIGTERM)
                    noted.begin_stop()
                    for _ in range(3):
                        os.kill(os.getpid(), signal.SIGTERM)  # noted, not raised
                    assert noted.pending and noted.stopping
                assert signal.getsignal(signal.SIGTERM) is noted  # the caller finishes runs: still noting
                os.kill(os.getpid(), signal.SIGTERM)
                ended = noted.ended()
                assert isinstance(ended, locks.Terminated) and signal.getsignal(signal.SIGTERM) is previous
                assert not noted.pending and seen == []
        with locks.sigterm_raises():
            raising = signal.getsignal(signal.SIGTERM)
            with locks.sigterm_deferred() as noted:
                noted.begin_stop()  # a stop with nothing noted: sigterm_raises's handler back on leaving
            assert not noted.pending and signal.getsignal(signal.SIGTERM) is raising
            with pytest.raises(locks.Terminated):
                os.kill(os.getpid(), signal.SIGTERM)
        assert seen == []


def test_a_held_sigterm_is_only_noted_and_the_rule_comes_back_when_none_came():
    """``held`` (the writing of a periodic checkpoint) notes every SIGTERM, a second one too, as a begun stop does.
    Left with none noted, the epoch loop's rule is back: a first SIGTERM noted, a second raised at once.  Left with
    one noted, every later SIGTERM stays noted (the caller stops its runs), until ``ended``.  Inside a begun stop it
    changes nothing."""
    with _recording_sigterm() as (seen, previous):
        with locks.sigterm_raises():
            with pytest.raises(locks.Terminated):
                with locks.sigterm_deferred() as noted:
                    with noted.held():
                        assert noted.stopping and not noted.pending
                    assert not noted.stopping
                    os.kill(os.getpid(), signal.SIGTERM)  # noted
                    assert noted.pending
                    os.kill(os.getpid(), signal.SIGTERM)  # the second: raised at once
        with locks.sigterm_raises():
            with locks.sigterm_deferred() as noted:
                with noted.held():
                    for _ in range(3):
                        os.kill(os.getpid(), signal.SIGTERM)  # noted, not raised
                assert noted.pending and noted.stopping
                os.kill(os.getpid(), signal.SIGTERM)  # after the hold too
            assert signal.getsignal(signal.SIGTERM) is noted
            assert isinstance(noted.ended(), locks.Terminated) and signal.getsignal(signal.SIGTERM) is previous
        with locks.sigterm_raises():
            with locks.sigterm_deferred() as noted:
                noted.begin_stop()
                with noted.held():
                    pass
                assert noted.stopping and not noted.pending
        assert seen == []


def test_each_sigterm_handler_is_put_back_however_its_block_is_left():
    """sigterm_raises left with no signal puts back the handler it found.  sigterm_deferred left by an error of the
    loop (no signal noted) puts back sigterm_raises's handler, and so does leaving it with a signal noted before any
    stop began (the loop ended first): the caller's finish of the runs is no stop, and a second SIGTERM there
    raises at once, the handler found put back."""
    with _recording_sigterm() as (seen, previous):
        with locks.sigterm_raises():
            pass
        assert signal.getsignal(signal.SIGTERM) is previous
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
        with locks.sigterm_raises():
            raising = signal.getsignal(signal.SIGTERM)
            with pytest.raises(RuntimeError, match="the loop's own error"):
                with locks.sigterm_deferred() as noted:
                    raise RuntimeError("the loop's own error")
            assert not noted.pending and signal.getsignal(signal.SIGTERM) is raising
            with locks.sigterm_deferred() as noted:
                os.kill(os.getpid(), signal.SIGTERM)  # noted; the loop ends before it begins a stop
            assert noted.pending and not noted.stopping and signal.getsignal(signal.SIGTERM) is raising
            with pytest.raises(locks.Terminated):
                os.kill(os.getpid(), signal.SIGTERM)  # the second: raised at once
            assert signal.getsignal(signal.SIGTERM) is previous
        assert seen == [signal.SIGTERM]


#: The flags of a run that trains until it is stopped (LONG), for each command line.
LONG_CLI = {"nclib.train": ["--dataset", "synthetic", "--width", "16", "--depth", "1", "--epochs", str(10**6),
                            "--metric-every", "5", "--batch-size", "full", "--lam-W", "1e-3", "--lam-H", "1e-3",
                            "--device", "cpu", "--progress", "false", "--run-name", "r"],
            "nclib.sweep": ["--grid", "seed=0", *(f"--set={k}={v}" for k, v in LONG.items() if k != "progress"),
                            "--point", "0"]}


@pytest.mark.parametrize("command", list(LONG_CLI))
def test_sigterm_stops_a_command_lines_run_with_a_checkpoint_unlocked_and_resumed_exactly(tmp_path, command):
    """SIGTERM to a command line training a run (a job's time limit, scancel): it ends with status 143 as the signal
    would, but not at once: the run stops at its next metric epoch as a max_train_s stop does, "stopped" with its
    checkpoint and no error, its lock given back and its lock file removed, and the message names its folder; the
    signal's default left it "running" with the lock file of this host.  The next call resumes it, to the history
    of an uninterrupted run, number for number; the sweep's table gives it as stopped, no error (exit status 0)."""
    folder = tmp_path / ("r" if command == "nclib.train" else "seed-0")
    env = {**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # resumed here: this process's torch threads
    proc = subprocess.Popen([sys.executable, "-m", command, *LONG_CLI[command], "--out-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        while proc.poll() is None and len(_epochs(folder)) < 3:  # polled: the run trains, past its first rows
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["status"] == "stopped" and "error" not in prov, prov.get("error")
    assert repr(str(folder)) in err and "stopped with a checkpoint" in err, err
    assert not (folder / locks.LOCK).exists() and locks.lock_owner(folder) is None
    assert not [f.name for f in folder.iterdir() if f.name.endswith(".tmp")]
    stopped_at = _epochs(folder)[-1]
    assert stopped_at >= 10 and stopped_at % 5 == 0 and sweep.next_step(folder) == ("stopped", "resume")
    assert checkpoints.recorded_epoch(folder) == stopped_at
    if command == "nclib.sweep":  # the table gives the run as stopped, without an error: no failure of the sweep
        table = sweep.summary(tmp_path)
        assert table["status"].tolist() == ["stopped"] and table["error"].isna().all()
        assert sweep.exit_status(table) == 0
        sweep.run_point({"seed": [0]}, {**{k: v for k, v in LONG.items() if k != "progress"}, "max_train_s": 0},
                        tmp_path, 0)
    else:
        train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)
    assert runs.run_status(folder) == "stopped" and _epochs(folder)[-1] == stopped_at + 5
    ref = train.run(**{**LONG, "epochs": stopped_at + 5}, out_dir=tmp_path / "whole", run_name="whole")
    _same_history(ref, folder)  # as if it had never been sent SIGTERM


def test_overwrite_waits_for_no_one_and_a_lock_is_released_on_every_exit(tmp_path):
    """The lock is taken before the existence check and the slow data load, and released however the call ends."""
    lock = locks.lock_run(tmp_path / "held")
    try:
        with pytest.raises(locks.RunFolderBusy, match=f"pid {os.getpid()}"):  # also in one process
            train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="held", overwrite=True)
        assert runs.run_status(tmp_path / "held") == "running"
    finally:
        lock.release()
    assert not (tmp_path / "held").exists()  # the lock made the folder and nothing filled it
    with pytest.raises(ValueError, match="batch_size 64 is larger"):  # refused after the lock was taken
        train.run(**{**TINY, "batch_size": 64}, epochs=5, out_dir=tmp_path, run_name="refused")
    assert not (tmp_path / "refused").exists()
    folder = train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="done")
    assert runs.run_status(folder) == "finished" and not (folder / locks.LOCK).exists()
    assert runplan.plan_runs([folder]) == "skip" and runs.run_status(tmp_path / "nothing") == "absent"


# ------------------------------------------------------------------------------------------ checkpoints

def test_a_crash_while_the_checkpoint_is_written_resumes_from_the_last_complete_one(tmp_path, monkeypatch):
    """The fault: a crash while checkpoint.pt is written left checkpoint.pt.tmp and the status "running" for
    good.  Now the run is recognised as dead and resumes from the previous checkpoint, which the crash left
    whole; the resume deletes the half-written file at once (a resume that fails before its first checkpoint
    leaves none)."""
    from nclib import engine

    ref = train.run(**LONG, out_dir=tmp_path, run_name="reference", max_train_s=0)
    train.run(**LONG, out_dir=tmp_path, run_name="reference", max_train_s=0, resume=True)
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    whole = (folder / runs.CHECKPOINT).read_bytes()
    proc = _child(crash_in_save=True, **LONG, out_dir=str(tmp_path), run_name="r", resume=True, max_train_s=0)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (folder / (runs.CHECKPOINT + ".tmp")).is_file()  # the half-written one
    assert (folder / runs.CHECKPOINT).read_bytes() == whole  # the last complete one, untouched
    assert json.loads((folder / "provenance.json").read_text())["status"] == "running"
    assert runs.run_status(folder) == "dead"
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {proc.pid}"):
        with pytest.raises(runs.RunExists, match="dead run") as err:
            train.run(**LONG, out_dir=tmp_path, run_name="r")
    assert err.value.status == "dead"

    def fail(self):
        raise RuntimeError("the device is lost")

    with monkeypatch.context() as m:  # a resume that fails before it writes a checkpoint of its own
        m.setattr(engine.Engine, "train_epoch", fail)
        with pytest.raises(RuntimeError, match="the device is lost"):
            train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert not (folder / (runs.CHECKPOINT + ".tmp")).exists() and runs.run_status(folder) == "failed"
    assert (folder / runs.CHECKPOINT).read_bytes() == whole
    train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert not (folder / (runs.CHECKPOINT + ".tmp")).exists() and runs.run_status(folder) == "stopped"
    _same_history(ref, folder)


@pytest.mark.parametrize("first", [True, False], ids=["first checkpoint", "a later one"])
def test_a_crash_between_the_checkpoints_record_and_its_rename_resumes_from_the_new_one(tmp_path, first):
    """The fault: the checksum of the new checkpoint was recorded, then the process died before the rename; the
    previous checkpoint (if any) no longer matched the record, so the run could not be resumed at all.  The record
    is now the commit point: planning sees the committed file without touching it, and the resume, holding the
    folder's lock, puts it in place and continues from it."""
    stops = 2 if first else 3  # the calls of the run: its last stop is one metric interval after the crash's
    ref = train.run(**LONG, out_dir=tmp_path, run_name="reference", max_train_s=0)
    for _ in range(stops - 1):
        train.run(**LONG, out_dir=tmp_path, run_name="reference", max_train_s=0, resume=True)
    folder = tmp_path / "r"
    if not first:
        train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    proc = _child(crash_in_rename=True, **LONG, out_dir=str(tmp_path), run_name="r", resume=not first, max_train_s=0)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL and runs.run_status(folder) == "dead"
    epoch = json.loads((folder / runs.CHECKSUM).read_text())["epoch"]
    assert epoch == (1 if first else 2) * LONG["metric_every"]
    assert (folder / runs.CHECKPOINT).is_file() is not first  # the previous checkpoint, if any, stayed
    tmp = (folder / (runs.CHECKPOINT + ".tmp")).read_bytes()
    assert runplan.plan_runs([folder]) == "resume"
    assert (folder / (runs.CHECKPOINT + ".tmp")).read_bytes() == tmp  # planning reads only
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {proc.pid}"):
        train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)
    assert runs.run_status(folder) == "stopped" and not (folder / (runs.CHECKPOINT + ".tmp")).exists()
    _same_history(ref, folder)


def test_a_resume_rewrites_the_history_to_its_checkpoint_before_it_trains(tmp_path, monkeypatch):
    """Rows a dead call wrote to history.csv after its last checkpoint are not the run's: the call that resumes
    from that checkpoint writes the history back to the checkpoint's rows at once, so that a call failing before
    its first metric epoch does not leave them there."""
    from nclib import engine

    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    history = (folder / "history.csv").read_text()
    last = history.splitlines()[-1].split(",")
    (folder / "history.csv").write_text(history + ",".join(["7", *last[1:]]) + "\n")  # a dead call's row
    assert _epochs(folder) == [0, 5, 7]

    def fail(self):
        raise RuntimeError("the device is lost")

    monkeypatch.setattr(engine.Engine, "train_epoch", fail)
    with pytest.raises(RuntimeError, match="the device is lost"):
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True)
    assert runs.run_status(folder) == "failed" and (folder / "history.csv").read_text() == history


def test_a_run_killed_after_its_checkpoint_resumes_with_a_wall_time_that_never_goes_back(tmp_path, monkeypatch):
    """The fault: a call killed after its checkpoint was committed, before its provenance recorded its seconds,
    left the resume counting wall_time from the calls before it, so the history's wall_time went back.  The
    checkpoint now holds the run's seconds so far; a checkpoint written before it did still resumes."""
    from nclib import engine, runfolder

    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    real_finish, real_epoch = runfolder.RunFolder.finish, engine.Engine.train_epoch

    def killed(self, status, error=None):
        if status == "stopped":
            raise SystemExit("killed after the checkpoint, before the provenance")
        return real_finish(self, status, error)

    def slow(self):
        time.sleep(0.2)
        return real_epoch(self)

    with monkeypatch.context() as m:
        m.setattr(runfolder.RunFolder, "finish", killed)
        m.setattr(engine.Engine, "train_epoch", slow)
        with pytest.raises(SystemExit):
            train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)
    assert runs.run_status(folder) == "dead" and json.loads((folder / runs.CHECKSUM).read_text())["epoch"] == 10
    train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)
    history = train.load_history(folder)
    assert history["epoch"].tolist() == [0, 5, 10, 15]
    assert np.all(np.diff(history["wall_time"]) > 0) and history["wall_time"][2] >= 5 * 0.2
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["status"] == "stopped" and prov["train_time_s"] >= history["wall_time"][-1]

    state = torch.load(folder / runs.CHECKPOINT, weights_only=True)  # a checkpoint written before the record
    del state["time_s"]
    torch.save(state, folder / (runs.CHECKPOINT + ".tmp"))
    checkpoints.commit_checkpoint(folder, state["epoch"])
    train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)
    history = train.load_history(folder)
    assert history["epoch"].tolist() == [0, 5, 10, 15, 20] and np.all(np.diff(history["wall_time"]) > 0)


def test_the_temporary_files_of_writes_a_kill_cut_off_go_when_the_run_is_written_again(tmp_path):
    """The fault: a writer killed inside atomic_write_text left .<file>.<host>.<pid>.tmp in the run folder for good
    (a resume and a finish deleted only the checkpoint's temporary file).  The call that resumes the run, holding
    its lock, deletes them; any other file is left alone."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    leftovers = [".history.csv.node-a.4242.tmp", ".provenance.json.17.tmp", ".class_accuracy.csv.tmp"]
    for name in leftovers:
        assert runs.is_write_temporary(name)
        (folder / name).write_text("half a file")
    (folder / ".notes.tmp").write_text("the user's")
    train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)
    assert runs.run_status(folder) == "stopped" and _epochs(folder) == [0, 5, 10]
    assert not any((folder / name).exists() for name in leftovers)
    assert (folder / ".notes.tmp").read_text() == "the user's" and not runs.is_write_temporary(".notes.tmp")
    with pytest.raises(ValueError, match="^name must be"):
        runs.is_write_temporary(folder / leftovers[0])
    for bad in ("", 5):
        with pytest.raises(ValueError, match="^run_dir"):
            runs.remove_write_temporaries(bad)


def test_a_stopped_run_whose_provenance_is_unreadable_is_refused_naming_its_folder(tmp_path):
    """A provenance.json cut short (a disk full while it was written by hand, a bad copy) reads as a dead run, and
    the checkpoint beside it would be resumed: the resume is refused naming the folder, not a bare JSON error."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    (folder / "provenance.json").write_text('{"status": "stopped", "git_commit"')
    assert runs.run_status(folder) == "dead"
    with pytest.raises(runs.ResumeRefused, match=f"run folder {str(folder)!r} cannot be resumed: its provenance.json "
                                                 f"cannot be read") as err:
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)  # not refused: stops at once
    assert err.value.run_dir == folder


def test_a_resume_refused_for_its_parameters_or_code_never_loads_the_data(tmp_path, monkeypatch):
    """What a resume can be refused for without the data (the run's status, parameters, code, CPU) is refused before
    they are loaded: the letters stand-in takes a minute and more to render at the paper's size."""
    from nclib import data

    train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    monkeypatch.setattr(data, "load_for", lambda p: pytest.fail("the data were loaded before the refusal"))
    with pytest.raises(runs.ResumeRefused, match="started with other parameters"):
        train.run(**{**LONG, "lam_H": 1e-2}, out_dir=tmp_path, run_name="r", resume=True)
    with pytest.raises(runs.ResumeRefused, match="holds no run to continue"):
        train.run(**LONG, out_dir=tmp_path, run_name="absent", resume=True)


@pytest.mark.parametrize("ended", ["finished", "diverged"])
def test_a_finished_or_diverged_run_is_not_resumed_even_with_its_checkpoint_left(tmp_path, monkeypatch, ended):
    """A finished or diverged run is refused by its status, before the data are loaded (else a finished run was
    refused only after the load, for its missing checkpoint, and a diverged one never told that overwrite=True
    trains it again).  Also where the checkpoint of its earlier stop is still there: a call killed after it wrote
    the final provenance, before it deleted the checkpoint, leaves that (here put back by hand)."""
    from nclib import data

    kw = dict(TINY, epochs=10, metric_every=5, lr=0.01)
    if ended == "diverged":  # the rate steps up 1000-fold after epoch 5, where the first call stops
        kw.update(lr_milestones=(5,), lr_gamma=1000.0)
    folder = train.run(**kw, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    stop = {name: (folder / name).read_bytes() for name in (runs.CHECKPOINT, runs.CHECKSUM)}
    if ended == "diverged":
        with pytest.raises(train.TrainingDiverged, match="diverged at epoch 10"):
            train.run(**kw, out_dir=tmp_path, run_name="r", resume=True)
    else:
        train.run(**kw, out_dir=tmp_path, run_name="r", resume=True)
    assert runs.run_status(folder) == ended and not (folder / runs.CHECKPOINT).exists()
    monkeypatch.setattr(data, "load_for", lambda p: pytest.fail("the data were loaded before the refusal"))
    for left in (False, True):
        if left:  # the crash between the final provenance and the checkpoint's deletion
            for name, content in stop.items():
                (folder / name).write_bytes(content)
        before = _files(folder)
        with pytest.raises(runs.ResumeRefused, match=rf"\b{ended}\b") as err:
            train.run(**kw, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
        assert err.value.run_dir == folder and _files(folder) == before
        assert ("overwrite" in str(err.value)) is (ended == "diverged")  # the way to train it again, offered


def test_a_crash_before_the_first_checkpoint_leaves_a_dead_run_that_only_overwrite_replaces(tmp_path):
    proc = _child(crash_in_save=True, **LONG, out_dir=str(tmp_path), run_name="r", max_train_s=0)
    proc.communicate(timeout=300)
    folder = tmp_path / "r"
    assert proc.returncode == -signal.SIGKILL and runs.run_status(folder) == "dead"
    assert not (folder / runs.CHECKPOINT).exists()
    with pytest.warns(RuntimeWarning, match=f"taking over the lock of process {proc.pid}"):
        with pytest.raises(runs.RunExists) as first:
            train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    assert first.value.status == "dead" and "resume=True" not in str(first.value)  # nothing to resume offered
    with pytest.raises(runs.ResumeRefused, match=f"run folder {str(folder)!r} .*holds no checkpoint.pt"):
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)  # not refused: stops at once
    with pytest.raises(runs.RunExists, match="holds a dead run without a checkpoint") as err:
        runplan.plan_runs([folder])
    assert err.value.run_dir == folder
    train.run(**LONG, out_dir=tmp_path, run_name="r", overwrite=True, max_train_s=0)
    assert runs.run_status(folder) == "stopped" and not (folder / (runs.CHECKPOINT + ".tmp")).exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "no-checksum", "another-run"])
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage):
    """The faults: corrupted tensor bytes resumed to a different run (or a false "diverged ... lower lr"); a
    truncated checkpoint gave "PytorchStreamReader failed".  The checksum's own case: another run's checkpoint of
    the same epoch, copied in, loads and holds the state of the epoch its record names, so only the sha256 tells
    that it is not this run's (without the comparison the run continued as the other run)."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)
    path = folder / runs.CHECKPOINT
    raw = bytearray(path.read_bytes())
    if damage == "another-run":  # stopped at epoch 5 too, from another seed
        other = train.run(**{**LONG, "seed": 1}, out_dir=tmp_path, run_name="other", max_train_s=0)
        path.write_bytes((other / runs.CHECKPOINT).read_bytes())
        assert torch.load(path, weights_only=True)["epoch"] == checkpoints.verify_checkpoint(other)["epoch"] == 5
    elif damage == "flip":  # bytes inside the tensors' storage, the zip container intact
        mid = len(raw) // 2
        raw[mid:mid + 64] = bytes(b ^ 0xFF for b in raw[mid:mid + 64])
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        (folder / runs.CHECKSUM).unlink()
    before = _files(folder)
    with pytest.raises(runs.CheckpointDamaged, match=f"checkpoint {str(path)!r} (is damaged|has no readable "
                                                     f"checkpoint.pt.sha256)") as err:
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)  # a resume stops at once
    assert err.value.path == path and err.value.run_dir == folder
    assert "PytorchStreamReader" not in str(err.value)
    assert _files(folder) == before and runs.run_status(folder) == "stopped"


def test_a_checkpoint_whose_record_names_another_epoch_is_refused(tmp_path):
    """A checkpoint whose bytes match its record, but whose record names another epoch than the state it holds (a
    record written for another checkpoint of the run): the resume is refused with CheckpointDamaged, the folder
    unchanged; unchecked, the run went on from the checkpoint's own epoch as if it were the recorded one."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    path = folder / runs.CHECKPOINT
    os.replace(path, folder / (runs.CHECKPOINT + ".tmp"))
    checkpoints.commit_checkpoint(folder, 10)  # the state of epoch 5, recorded as epoch 10
    assert checkpoints.verify_checkpoint(folder)["epoch"] == 10 and torch.load(path, weights_only=True)["epoch"] == 5
    before = _files(folder)
    with pytest.raises(runs.CheckpointDamaged) as err:
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)  # a resume stops at once
    assert err.value.path == path and err.value.run_dir == folder
    assert _files(folder) == before and runs.run_status(folder) == "stopped"


def test_a_settled_checkpoints_rename_is_made_durable(tmp_path, monkeypatch):
    """settle_checkpoint puts a committed checkpoint whose rename a crash cut off in place and fsyncs the folder, so
    that the rename is on disk before the resume writes anything that depends on it; a folder with nothing to settle
    is left as it is."""
    (tmp_path / "provenance.json").write_text("{}")
    (tmp_path / (runs.CHECKPOINT + ".tmp")).write_bytes(b"state")
    checkpoints.commit_checkpoint(tmp_path, 4)
    os.replace(tmp_path / runs.CHECKPOINT, tmp_path / (runs.CHECKPOINT + ".tmp"))  # the rename cut off
    events = []
    real = os.replace
    monkeypatch.setattr(checkpoints.os, "replace", lambda src, dst: (events.append(("rename", pathlib.Path(dst).name)),
                                                              real(src, dst)))
    monkeypatch.setattr(checkpoints, "fsync_folder",
                        lambda folder: events.append(("fsync folder", pathlib.Path(folder))))
    assert checkpoints.settle_checkpoint(tmp_path)
    assert events == [("rename", runs.CHECKPOINT), ("fsync folder", tmp_path)]
    assert checkpoints.settle_checkpoint(tmp_path) and len(events) == 2  # settled already: nothing renamed or flushed
    assert (tmp_path / runs.CHECKPOINT).read_bytes() == b"state"
    assert checkpoints.verify_checkpoint(tmp_path)["epoch"] == 4


def test_a_temporary_checkpoint_of_another_size_than_recorded_is_not_hashed(tmp_path, monkeypatch):
    """The fault: has_checkpoint and settle_checkpoint hashed the whole checkpoint.pt.tmp (half a gigabyte for the
    paper's networks) on every call, even where its size differs from the recorded one, as a save cut off leaves it.
    A file of another size is now refused without being read; one of the recorded size is hashed, and is a
    committed checkpoint only where its sha256 is the recorded one too."""
    (tmp_path / "provenance.json").write_text("{}")
    tmp = tmp_path / (runs.CHECKPOINT + ".tmp")
    tmp.write_bytes(b"state")
    checkpoints.commit_checkpoint(tmp_path, 4)
    os.replace(tmp_path / runs.CHECKPOINT, tmp)  # the rename cut off: committed, under its temporary name
    real, hashed = checkpoints.sha256_file, []
    monkeypatch.setattr(checkpoints, "sha256_file",
                        lambda path: (hashed.append(pathlib.Path(path).name), real(path))[1])
    for cut in (b"sta", b"state, then more"):  # a save cut off, and a later save of another size
        tmp.write_bytes(cut)
        assert not checkpoints.has_checkpoint(tmp_path) and not checkpoints.settle_checkpoint(tmp_path)
    assert hashed == [] and tmp.read_bytes() == b"state, then more"  # never hashed, never renamed
    tmp.write_bytes(b"stale")  # the recorded size, other bytes: hashed, and refused
    assert not checkpoints.has_checkpoint(tmp_path) and hashed == [tmp.name]
    tmp.write_bytes(b"state")  # the recorded bytes: a committed checkpoint, put in place
    assert checkpoints.has_checkpoint(tmp_path) and hashed == [tmp.name] * 2
    assert checkpoints.settle_checkpoint(tmp_path) and (tmp_path / runs.CHECKPOINT).read_bytes() == b"state"
    assert checkpoints.verify_checkpoint(tmp_path)["epoch"] == 4


def test_resume_refuses_data_rewritten_at_the_same_path(tmp_path):
    """The fault: stop a run, rewrite the data file at the same path, resume: the run finished as "finished" and
    its provenance kept the old data hash."""
    rng = np.random.default_rng(0)
    npz = tmp_path / "data.npz"
    y = np.repeat(np.arange(10), 4)
    np.savez(npz, x_train=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y_train=y)
    kw = dict(LONG, dataset="cifar10", data_path=npz, counts=[4, 3, 2, 2, 2, 2, 2, 2, 2, 2])
    folder = train.run(**kw, out_dir=tmp_path, run_name="r", max_train_s=0)
    np.savez(npz, x_train=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y_train=y)  # same path, shape
    before = _files(folder)
    with pytest.raises(runs.ResumeRefused, match=f"run folder {str(folder)!r} cannot be resumed: the data differ "
                                                 f"from those it started on: data_sha256 ") as err:
        # max_train_s 0: a resume that is not refused stops at its first metric epoch, and fails here, not trains on
        train.run(**kw, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert err.value.run_dir == folder and str(npz) in str(err.value)
    assert _files(folder) == before and runs.run_status(folder) == "stopped"


def test_a_finished_run_is_not_read_back_as_a_result_of_other_data(tmp_path, monkeypatch):
    """The faults: run_planned skipped, reading back as the call's result, a finished run whose data file was
    rewritten at its path since, and one made from another working folder, where the same relative data_path named
    another file.  The data_path is now absolute in the parameters (from another folder: another run, other
    parameters), and a skip first compares the data's checksum with the run's: other data are refused, not trained
    again, and nothing is deleted; overwrite=True trains the run again on them."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)

    def write(path):
        np.savez(path, x_train=rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), y_train=labels)

    for sub in ("A", "B"):
        (tmp_path / sub).mkdir()
        write(tmp_path / sub / "data.npz")
    kw = dict(TINY, dataset="cifar10", counts=[4, 3, 2, 2, 2, 2, 2, 2, 2, 2], epochs=2, metric_every=1,
              out_dir=tmp_path / "runs", run_name="r")
    monkeypatch.chdir(tmp_path / "A")
    todo, (folder,) = train.run_planned([{}], **kw, data_path="data.npz")
    assert todo == "start" and runs.read_params(folder)["data_path"] == str(tmp_path / "A" / "data.npz")
    assert train.run_planned([{}], **kw, data_path="data.npz") == ("skip", [folder])  # the same file and data
    monkeypatch.chdir(tmp_path / "B")  # "data.npz" is B's file here
    with pytest.raises(runs.RunExists, match="data_path") as other:
        train.run_planned([{}], **kw, data_path="data.npz")
    assert other.value.run_dir == folder
    write(tmp_path / "A" / "data.npz")  # other data at the run's path
    before = _files(folder)
    for call in (train.plan, train.run_planned):
        with pytest.raises(runs.RunExists, match="data_sha256") as refused:
            call([{}], **kw, data_path=tmp_path / "A" / "data.npz")
        assert refused.value.run_dir == folder and refused.value.status == "finished"
        assert isinstance(refused.value, runs.OtherData)  # the refusal nclib.sweep reports for a run it would keep
    assert _files(folder) == before
    assert train.run_planned([{}], **kw, data_path=tmp_path / "A" / "data.npz", overwrite=True)[0] == "start"
    assert train.plan([{}], **kw, data_path=tmp_path / "A" / "data.npz") == "skip"


@pytest.mark.parametrize("params", [5, "data.npz", {"dataset": "cifar10"}])
def test_the_data_check_refuses_what_is_no_runs_parameters_by_name(tmp_path, params):
    with pytest.raises(ValueError, match="params must be a run's checked parameters"):
        runplan.refuse_other_data(params, [tmp_path], "advice")


@pytest.mark.parametrize("name, run_dirs, advice", [("run_dirs", "rr", "advice"), ("run_dirs", 5, "advice"),
                                                     ("run_dirs", [""], "advice"), ("advice", None, 5),
                                                     ("advice", None, None)])
def test_the_data_check_refuses_one_path_or_advice_that_is_no_text_by_name(tmp_path, name, run_dirs, advice):
    """The faults: one path was read as a list of one-character folders ("run folder '/' holds a dead run ..."),
    a number as run_dirs gave a TypeError, and advice was never checked.  Each is refused naming the argument,
    before any folder is read, also for runs whose data are drawn from the seed (no data_path)."""
    (tmp_path / "r").mkdir()
    run_dirs = [tmp_path / "r"] if run_dirs is None else run_dirs
    for data_path in (str(tmp_path / "data.npz"), None):
        with pytest.raises(ValueError, match=rf"^{name} must be") as err:
            runplan.refuse_other_data({"data_path": data_path}, run_dirs, advice, now="0" * 64)
        assert not isinstance(err.value, runs.OtherData)


@pytest.mark.parametrize("now", [5, "abc", "A" * 64, b"0" * 64])
def test_the_data_check_refuses_a_checksum_that_is_no_sha256_by_name(tmp_path, now):
    with pytest.raises(ValueError, match="now must be None or the data's SHA-256"):
        runplan.refuse_other_data({"data_path": str(tmp_path / "data.npz")}, [tmp_path], "advice", now=now)


def test_the_data_check_compares_a_given_checksum_without_loading(tmp_path, monkeypatch):
    # the checksum a caller loaded already (a sweep, once per data selection) is compared as the loaded one is
    (tmp_path / "provenance.json").write_text(json.dumps({"data_sha256": "a" * 64}))
    monkeypatch.setattr(runplan, "load_for", lambda params: pytest.fail("loaded although the checksum was given"))
    params = {"data_path": str(tmp_path / "data.npz")}
    runplan.refuse_other_data(params, [tmp_path], "advice", now="a" * 64)
    with pytest.raises(runs.OtherData, match="bbbbbbbbbbbb... now; advice"):
        runplan.refuse_other_data(params, [tmp_path], "advice", now="b" * 64)


def test_differing_params_compares_numpy_values_as_numbers(tmp_path):
    # a caller's numpy values (np.int64 epochs, an array of counts) are the recorded JSON numbers and lists
    (tmp_path / "params.json").write_text(json.dumps({"epochs": 400, "counts": [3, 2, 1], "lr": 1e-4}))
    same = {"epochs": np.int64(400), "counts": np.array([3, 2, 1]), "lr": np.float64(1e-4)}
    assert runs.json_values(same) == {"epochs": 400, "counts": [3, 2, 1], "lr": 1e-4}
    assert runplan.differing_params(tmp_path, same) == {}
    assert runplan.differing_params(tmp_path, {**same, "epochs": np.int64(401)}) == {"epochs": (400, 401)}
    assert runs.json_values({"out_dir": tmp_path, "milestones": (6000,)}) == {"out_dir": str(tmp_path),
                                                                             "milestones": [6000]}
    # one encoder: what json_values compares is what to_json writes into params.json, read back
    written = {"epochs": np.int32(7), "lr": np.float32(0.5), "flag": np.bool_(True), "grid": np.eye(2),
               "out_dir": tmp_path, "counts": (3, 2)}
    text = runs.to_json(written)
    assert text.endswith("}\n") and json.loads(text) == runs.json_values(written) == {
        "epochs": 7, "lr": 0.5, "flag": True, "grid": [[1.0, 0.0], [0.0, 1.0]], "out_dir": str(tmp_path),
        "counts": [3, 2]}
    with pytest.raises(TypeError, match="not JSON serializable: set"):
        runs.to_json({"x": {1, 2}})
    with pytest.raises(ValueError, match="^params must hold values a params.json can hold"):
        runs.json_values({"x": {1, 2}})  # once read as its text, "{1, 2}", which no params.json records
    with pytest.raises(ValueError, match="^fixed must hold values a params.json can hold"):
        runs.json_values({"x": {1, 2}}, "fixed")
    # a sweep's call names the argument that holds such a value
    from nclib import sweepmanifest

    for grid, fixed, name in (({"seed": [0, 1]}, {"lr_milestones": {6000}}, "fixed"),
                              ({"lr_milestones": [{6000}]}, {}, "grid")):
        with pytest.raises(ValueError, match=f"^{name} must hold values a params.json can hold"):
            sweepmanifest.call_record(grid, fixed, {})


def test_a_data_path_spelled_otherwise_is_the_same_file(tmp_path, monkeypatch):
    """A run started with a relative data path resumes with the absolute one (and the other way round): the same
    file; another existing file is another run (the data checksum, compared on resume, guards the content)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for name in ("a.npz", "b.npz"):
        (tmp_path / "data" / name).write_bytes(b"x")
    (tmp_path / "params.json").write_text(json.dumps({"data_path": "data/a.npz"}))
    assert runplan.differing_params(tmp_path, {"data_path": str(tmp_path / "data" / "a.npz")}) == {}
    assert runplan.differing_params(tmp_path, {"data_path": "./data/../data/a.npz"}) == {}
    assert runplan.differing_params(tmp_path, {"data_path": str(tmp_path / "data" / "b.npz")}) == \
        {"data_path": ("data/a.npz", str(tmp_path / "data" / "b.npz"))}
    assert runplan.differing_params(tmp_path, {"data_path": "data/missing.npz"}) == \
        {"data_path": ("data/a.npz", "data/missing.npz")}


def test_a_parameter_an_older_run_lacks_reads_as_its_default(tmp_path):
    """A defining parameter added after a run was made is missing from its params.json: it reads as its default
    (which keeps the engine's behaviour from before it), so the older folder still holds its run."""
    from nclib.parameters import DEFAULTS

    (tmp_path / "params.json").write_text(json.dumps({"epochs": 400}))
    assert runplan.differing_params(tmp_path, {"epochs": 400, "init": DEFAULTS["init"]}) == {}
    other = "orthogonal" if DEFAULTS["init"] != "orthogonal" else "pytorch"
    assert runplan.differing_params(tmp_path, {"epochs": 400, "init": other}) == {"init": (DEFAULTS["init"], other)}
    assert runplan.differing_params(tmp_path / "absent", {"epochs": 400, "init": None}) == {"epochs": (None, 400)}


def test_a_damaged_history_is_refused_naming_the_folder_and_the_row(tmp_path):
    train.run(**TINY, epochs=10, metric_every=5, out_dir=str(tmp_path), run_name="r")
    folder = tmp_path / "r"
    assert runs.load_history(folder)["epoch"].tolist() == [0, 5, 10] == runs.metric_epochs(10, 5)
    text = (folder / "history.csv").read_text()
    lines = text.splitlines()
    (folder / "history.csv").write_text("\n".join(lines[:-1] + [lines[-1][: len(lines[-1]) // 2]]) + "\n")
    with pytest.raises(ValueError, match=r"history.csv row 3 has no number in column \w+"):
        runs.load_history(folder)
    # two rows run together, a newline lost: one row with twice the values (it read as the first of them)
    (folder / "history.csv").write_text("\n".join(lines[:2] + [lines[2] + "," + lines[3]]) + "\n")
    with pytest.raises(ValueError, match=f"history.csv row 2 has {2 * len(runs.HISTORY_COLUMNS)} values"):
        runs.load_history(folder)
    header = lines[0].split(",")
    (folder / "history.csv").write_text("\n".join([",".join(h for h in header if h != "nc3")] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match="history.csv has no column nc3"):
        runs.load_history(folder)


def test_a_damaged_class_accuracy_or_record_is_refused_naming_its_folder_or_file(tmp_path):
    """The fault: an empty class_accuracy.csv raised IndexError, a row cut short was read as fewer classes, a value
    that is no number and a damaged params.json raised errors that named no file.  Now each is a ValueError naming
    the run folder (class_accuracy.csv, as history.csv) or the file (the JSON records)."""
    folder = train.run(**TINY, epochs=10, metric_every=5, out_dir=str(tmp_path), run_name="r")
    acc = runs.load_class_accuracy(folder)
    assert acc["epoch"].tolist() == [0, 5, 10] and acc["acc"].shape[0] == 3
    path = folder / runs.CLASS_ACCURACY
    good = path.read_text()
    lines = good.splitlines()
    head, last = lines[:-1], lines[-1]
    assert lines[0].startswith("epoch,class_0,class_1,")
    wrong = lines[0].replace("class_1", "nc1", 1)  # a column that is no class: the fault, read as a class
    swapped = lines[0].replace("class_0,class_1", "class_1,class_0", 1)  # the classes out of their order
    for text in ("", lines[0] + "\n", "epoch\n0\n",  # no rows; no class column
                 "\n".join([wrong] + lines[1:]) + "\n", "\n".join([swapped] + lines[1:]) + "\n",
                 "\n".join(head + [last.rsplit(",", 1)[0]]) + "\n",  # a row cut short
                 "\n".join(head + [last + ",0.5"]) + "\n",  # a row run on
                 "\n".join(head + [last.rsplit(",", 1)[0] + ",abc"]) + "\n"):  # a value that is no number
        path.write_text(text)
        with pytest.raises(ValueError, match=re.escape(repr(str(folder)))):
            runs.load_class_accuracy(folder)
    path.write_text(good)
    for name in ("params.json", "provenance.json"):
        saved = (folder / name).read_bytes()
        for damaged in (saved[: len(saved) // 2], b"[1, 2]\n", b"\xff\xfe{"):
            (folder / name).write_bytes(damaged)
            with pytest.raises(ValueError, match=re.escape(repr(str(folder / name)))):
                runs.load_run(folder)
        (folder / name).write_bytes(saved)
    params, history, prov = runs.load_run(folder)
    assert params["run_name"] == "r" and prov["status"] == "finished" and history["epoch"].tolist() == [0, 5, 10]


def test_plan_runs_refuses_one_path_for_a_list_of_folders(tmp_path):
    """plan_runs("folder") took each character of the path for a run folder (and "/" for a dead run)."""
    folder = train.run(**TINY, epochs=5, out_dir=str(tmp_path), run_name="r")
    for one in (str(folder), folder, bytes(folder)):
        with pytest.raises(ValueError, match="^run_dirs"):
            runplan.plan_runs(one)
    assert runplan.plan_runs([str(folder)]) == runplan.plan_runs((folder,)) == "skip"


def test_a_finished_run_is_skipped_only_when_every_run_of_the_call_is(tmp_path):
    """plan_runs answers "skip" for a call whose runs are all finished; a finished run beside one not yet started
    (or beside one stopped with a checkpoint) is refused, naming the first run of the call that cannot continue,
    not skipped with the other left untrained, and only the stopped run is offered to continue."""
    finished = train.run(**TINY, epochs=5, out_dir=tmp_path, run_name="done")
    stopped = train.run(**LONG, out_dir=tmp_path, run_name="cut", max_train_s=0)
    assert runs.run_status(stopped) == "stopped" and checkpoints.has_checkpoint(stopped)
    assert runplan.plan_runs([finished]) == "skip" and runplan.plan_runs([stopped]) == "resume"
    for other, continuable in ((tmp_path / "new", ()), (stopped, (stopped,))):
        for order in ([finished, other], [other, finished]):
            with pytest.raises(runs.RunExists) as info:
                runplan.plan_runs(order)
            first = next(d for d in order if d != stopped)
            assert info.value.run_dir == first and info.value.status == ("finished" if first == finished else "absent")
            assert info.value.continuable == continuable
    assert not (tmp_path / "new").exists()


def test_a_folder_whose_provenance_says_absent_is_a_dead_run(tmp_path):
    """"absent" is what a folder with nothing in it (or only a lock) reads as; a provenance that records it is no
    run a writer leaves, so the folder reads as a dead run (as one saying "running" with no writer): plan_runs
    refuses it (no checkpoint to continue from) instead of starting a run over its files."""
    for recorded in ("absent", "running"):
        folder = tmp_path / recorded
        folder.mkdir()
        (folder / "provenance.json").write_text(json.dumps({"status": recorded}))
        assert runs.recorded_status(folder) == runs.run_status(folder) == "dead", recorded
        with pytest.raises(runs.RunExists) as info:
            runplan.plan_runs([folder])
        assert info.value.status == "dead" and info.value.continuable == ()
        assert runplan.plan_runs([folder], overwrite=True) == "start"


def test_one_path_one_device_or_one_dict_for_many_run_folders_is_refused_by_name(tmp_path, monkeypatch):
    """lock_runs("ab") locked the folders 'a' and 'b'; plan_runs(folders, devices="cpu") compared each run with one
    character, and params as one dict with its keys; lock_run(""), run_status("") and clear_run_folder("") acted on
    the current directory.  Each is refused naming the argument, before a file is touched."""
    monkeypatch.chdir(tmp_path)
    for one in ("ab", tmp_path / "ab", b"ab"):
        with pytest.raises(ValueError, match="^run_dirs"):
            locks.lock_runs(one)
    folders = [train.run(**TINY, epochs=5, out_dir=tmp_path, run_name=n) for n in ("x", "y")]
    before = {d: _files(d) for d in folders}
    for devices in ("cpu", "cu", {"x": "cpu", "y": "cpu"}, ["cpu", "gpu"], ["cpu"], 3):
        with pytest.raises(ValueError, match="^devices"):
            runplan.plan_runs(folders, devices=devices)
    params = json.loads((folders[0] / "params.json").read_text())
    for bad in (params, {"x": params, "y": params}, "ab", [params, "lr=0.1"], [params]):
        with pytest.raises(ValueError, match="^params"):
            runplan.plan_runs(folders, params=bad)
    assert runplan.plan_runs(folders, params=[params, None], devices=("cpu", None)) == "skip"
    readers = (runs.load_history, runs.load_run, runs.load_class_accuracy, runs.read_params,
               checkpoints.has_checkpoint, checkpoints.settle_checkpoint, checkpoints.verify_checkpoint,
               checkpoints.no_checkpoint, runplan.recorded_device_type,
               lambda d: runplan.differing_params(d, {"epochs": 5}), lambda d: runplan.device_difference(d, "cpu"),
               lambda d: checkpoints.commit_checkpoint(d, 5))
    for call in (locks.lock_run, locks.lock_owner, runs.recorded_status, runs.run_status, runs.clear_run_folder,
                 *readers):  # the readers too: load_history("") read ./history.csv, load_history(None) TypeError
        for bad in ("", None, 3):
            with pytest.raises(ValueError, match="^run_dir"):
                call(bad)
    for bad in ([""], [folders[0], None]):
        with pytest.raises(ValueError, match="^run_dirs"):
            runplan.plan_runs(bad)
        with pytest.raises(ValueError, match="^run_dirs"):
            locks.lock_runs(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "y"]  # no lock, no folder made, nothing cleared
    assert {d: _files(d) for d in folders} == before


def test_the_run_folder_functions_refuse_bad_arguments_by_name(tmp_path):
    """The faults: json_values(5), differing_params(d, 5), git_state(root=5), code_state(root=5) and
    read_lock_file(5) raised TypeError; commit_checkpoint(d, "x") an unnamed ValueError, and commit_checkpoint(d, 2.7)
    recorded epoch 2; device_difference(d, "cuda:0") of a run recorded on "cuda:0" answered a difference, and "gpu" was
    taken; clear_run_folder(d, check_only="no") was taken.  Each is refused naming the argument, before a file is
    touched; a card is its kind of device, and a numpy epoch is recorded as the number it is."""
    from nclib import provenance

    (tmp_path / "params.json").write_text(json.dumps({"epochs": 5}))
    (tmp_path / "provenance.json").write_text(json.dumps({"status": "finished", "device": "cuda:0"}))
    (tmp_path / (runs.CHECKPOINT + ".tmp")).write_bytes(b"x")
    before = _files(tmp_path)
    refusals = [("params", lambda: runs.json_values(5)), ("params", lambda: runs.json_values([("epochs", 5)])),
                ("want", lambda: runplan.differing_params(tmp_path, 5)),
                ("want", lambda: runplan.differing_params(tmp_path, ["epochs"])),
                ("saved", lambda: runplan.differing_params(tmp_path, {"epochs": 5}, saved=5)),
                ("differ", lambda: runplan.differences_text(5)),
                ("differ", lambda: runplan.differences_text({"lr": 1})),
                ("kind", lambda: runplan.device_difference(tmp_path, "gpu")),
                ("kind", lambda: runplan.device_difference(tmp_path, 0)),
                ("root", lambda: provenance.git_state(root=5)), ("root", lambda: provenance.git_state(root="")),
                ("root", lambda: provenance.code_state(root=5)),
                ("path", lambda: locks.read_lock_file(5)), ("path", lambda: locks.read_lock_file("")),
                ("epoch", lambda: checkpoints.commit_checkpoint(tmp_path, "x")),
                ("epoch", lambda: checkpoints.commit_checkpoint(tmp_path, 2.7)),
                ("epoch", lambda: checkpoints.commit_checkpoint(tmp_path, -1)),
                ("check_only", lambda: runs.clear_run_folder(tmp_path, check_only="no")),
                ("check_only", lambda: runs.clear_run_folder(tmp_path, check_only=1))]
    for name, call in refusals:
        with pytest.raises(ValueError, match=rf"^{name}\b"):
            call()
    assert _files(tmp_path) == before
    assert runplan.device_difference(tmp_path, "cuda:0") == {} == runplan.device_difference(tmp_path, "cuda")
    assert runplan.device_difference(tmp_path, "cpu") == {"device": ("cuda", "cpu")}
    assert runplan.differing_params(tmp_path, {"epochs": 6}, saved=None) == {"epochs": (None, 6)}
    checkpoints.commit_checkpoint(tmp_path, np.int64(3))
    assert json.loads((tmp_path / runs.CHECKSUM).read_text())["epoch"] == 3


@pytest.mark.parametrize("device, kind", [("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda"), ("mps", None),
                                          ("junk", None)])
def test_every_reader_of_a_device_reads_one_kind(tmp_path, device, kind):
    """The fault: five readers of a device's kind disagreed where it named no kind they knew: for "mps" the figures'
    device_kind gave None, parameters.device_type raised, runplan.recorded_device_type gave "mps".  All read
    runplan.device_kind now: a parameter of no kind is refused naming it, a recorded one has no kind and differs from
    every kind a plan asks for."""
    import nclib.figures
    from nclib import parameters

    assert runplan.device_kind(device) == nclib.figures.device_kind(device) == kind
    if kind is None:
        with pytest.raises(ValueError, match="^device must be"):
            parameters.device_type(device)
    else:
        assert parameters.device_type(device) == kind == parameters.device_type(device, cuda=False)
    (tmp_path / "provenance.json").write_text(json.dumps({"status": "finished", "device": device}))
    assert runplan.recorded_device_type(tmp_path) == kind
    for want in ("cpu", "cuda", "cuda:0"):
        wanted = runplan.device_kind(want)
        differ = {} if kind == wanted else {"device": (kind or device, wanted)}
        assert runplan.device_difference(tmp_path, want) == differ
    assert runplan.device_difference(tmp_path, None) == {}
    # no device of a kind ("cuda:" names no card), or not yet resolved
    for nothing in ("auto", "cpu:0", "cuda:", "cuda:x", " cuda", "", None, 3):
        assert runplan.device_kind(nothing) is None


def test_read_record_reads_a_json_object_and_names_the_file_that_holds_none(tmp_path):
    (tmp_path / "params.json").write_text(json.dumps({"epochs": 5, "lr": 1e-3}))
    assert runs.read_record(tmp_path / "params.json") == runs.read_record(str(tmp_path / "params.json")) == {
        "epochs": 5, "lr": 1e-3}
    for text, why in (('{"epochs": 5', "is damaged or cut short"), ("[1, 2]", "holds a JSON list"),
                      (b"\xff\xfe", "is damaged or cut short")):
        path = tmp_path / "provenance.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ValueError, match=f"^'{re.escape(str(path))}' {why}"):
            runs.read_record(path)
    for bad in ("", None, 5):
        with pytest.raises(ValueError, match="^path must be"):
            runs.read_record(bad)


def test_fsync_folder_syncs_the_folder_itself_or_nothing_it_cannot_open(tmp_path, monkeypatch):
    """fsync_folder, the order of a run folder's writes on disk (a checkpoint's record before its rename, a run's
    provenance deleted before its other files): the fsync reaches the folder itself; a folder that is not there is
    left alone; what is no path is refused naming it."""
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd))[1])
    runs.fsync_folder(tmp_path)
    runs.fsync_folder(str(tmp_path))
    assert synced == [tmp_path.stat().st_ino] * 2
    runs.fsync_folder(tmp_path / "missing")  # nothing to open: nothing synced, no error
    assert len(synced) == 2
    for bad in ("", "  ", 5, None):
        with pytest.raises(ValueError, match="^folder must be the path of a folder"):
            runs.fsync_folder(bad)


def test_the_checks_of_a_resume_refuse_what_they_cannot_read_by_name(tmp_path):
    """check_resume, resume_checkpoints and first_output_folders, the steps of resume=True that nclib.train calls:
    each refuses arguments that are not what it reads, naming the argument, before a folder is read; an absent run
    is refused as a resume; the output folders a run's first call left out of its git state are read back, each
    once."""
    from nclib import resume

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    (a / "provenance.json").write_text(json.dumps({"status": "stopped", "git_output_folders": ["runs", "x/y", ""]}))
    b.mkdir()
    (b / "provenance.json").write_text(json.dumps({"status": "stopped", "git_output_folders": ["runs"]}))
    assert resume.first_output_folders([a, b, tmp_path / "absent"]) == [resume.provenance.ROOT / "runs",
                                                                        resume.provenance.ROOT / "x/y"]
    p = train.check_params(dataset="synthetic", batch_size="full", out_dir=str(tmp_path), run_name="absent")
    code = dict.fromkeys(resume.CODE_KEYS)
    with pytest.raises(runs.ResumeRefused, match="holds no run to continue"):
        resume.check_resume([tmp_path / "absent"], [p], code)
    refusals = [("run_dirs", lambda: resume.first_output_folders(tmp_path)),
                ("run_dirs", lambda: resume.check_resume(str(a), [p], code)),
                ("run_dirs", lambda: resume.check_resume([], [], code)),
                ("plist", lambda: resume.check_resume([a], p, code)),
                ("plist", lambda: resume.check_resume([a, b], [p], code)),
                ("plist", lambda: resume.check_resume([a], [None], code)),
                ("code", lambda: resume.check_resume([a], [p], None)),
                ("code", lambda: resume.check_resume([a], [p], {"git_commit": None})),
                ("run_dirs", lambda: resume.resume_checkpoints([], [], [], None)),
                ("provs", lambda: resume.resume_checkpoints([a], None, [], None)),
                ("engines", lambda: resume.resume_checkpoints([a], [{}], [None], None)),
                ("ts", lambda: resume.resume_checkpoints([a], [{}], [types.SimpleNamespace(
                    device="cpu", device_name="cpu", p=p)], None))]
    before = {d: _files(d) for d in (a, b)}
    for name, call in refusals:
        with pytest.raises(ValueError, match=rf"^{name} must"):
            call()
    assert {d: _files(d) for d in (a, b)} == before


def test_atomic_write_text_refuses_what_is_no_path_or_no_text_by_name(tmp_path):
    """The faults: atomic_write_text(5, "x") and (path, b"x") raised TypeError, and ("", "x") a ValueError that did
    not name the path.  Each is refused naming the argument, and nothing is written."""
    for name, call in [("path", lambda: runs.atomic_write_text(5, "x")),
                       ("path", lambda: runs.atomic_write_text("", "x")),
                       ("path", lambda: runs.atomic_write_text(None, "x")),
                       ("text", lambda: runs.atomic_write_text(tmp_path / "f", b"x")),
                       ("text", lambda: runs.atomic_write_text(tmp_path / "f", 5))]:
        with pytest.raises(ValueError, match=rf"^{name} must be"):
            call()
    assert list(tmp_path.iterdir()) == []
    runs.atomic_write_text(str(tmp_path / "f"), "x")
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_text() == "x"


def test_the_lock_functions_refuse_a_bad_descriptor_or_no_folders_by_name(tmp_path):
    """The faults: RunLockedElsewhere.naming({}) raised StopIteration, and flock(-1, ...) a ValueError that did not
    name the descriptor.  Each is refused naming the argument; a descriptor locks as before."""
    import fcntl

    for name, call in [("locked", lambda: locks.RunLockedElsewhere.naming({})),
                       ("locked", lambda: locks.RunLockedElsewhere.naming([tmp_path])),
                       ("fd", lambda: locks.flock(-1, fcntl.LOCK_EX, tmp_path)),
                       ("fd", lambda: locks.flock("3", fcntl.LOCK_EX, tmp_path)),
                       ("fd", lambda: locks.flock(True, fcntl.LOCK_EX, tmp_path))]:
        with pytest.raises(ValueError, match=rf"^{name} must be"):
            call()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(ValueError, match="^operation must be"):
            locks.flock(fd, fcntl.LOCK_NB, tmp_path / "f")
        assert locks.flock(fd, fcntl.LOCK_EX, tmp_path / "f") and locks.flock(fd, fcntl.LOCK_UN, tmp_path / "f")
    finally:
        os.close(fd)
    refusal = locks.RunLockedElsewhere.naming({tmp_path: {"pid": 1, "host": "elsewhere"}})
    assert refusal.run_dir == tmp_path and refusal.locked == {tmp_path: {"pid": 1, "host": "elsewhere"}}


def test_a_device_key_refuses_text_that_names_no_gpu_by_name():
    """The fault: device_key("cuda:x") raised torch's RuntimeError.  It is refused naming the device; a card's
    index, the CPU and None are kept as they are."""
    from nclib import resume

    for bad in ("cuda:x", "cudaX", "cuda:-1"):
        with pytest.raises(ValueError, match="^device must be"):
            resume.device_key(bad)
    assert resume.device_key("cuda:3") == "cuda:3"
    assert resume.device_key("cpu") == "cpu" and resume.device_key(None) is None


def test_a_column_added_later_is_nan_in_older_runs_and_resumes(tmp_path, monkeypatch):
    """A metric appended to the history after runs were made (runs.ADDED_COLUMNS): an older run reads with NaN in
    that column and every other column as before; a resume from an older run's checkpoint writes the column (NaN
    where nothing computed it); the committed figures, given a panel for it, still load and pass their checks; a
    column missing that was not added later is still refused."""
    from nclib import runfolder

    old = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5: a checkpoint
    before = runs.load_history(old)
    columns = (*runs.HISTORY_COLUMNS[:-1], "nc1_new", "wall_time")
    for module in (runs, runfolder):
        monkeypatch.setattr(module, "HISTORY_COLUMNS", columns)
        monkeypatch.setattr(module, "ADDED_COLUMNS", (*runs.ADDED_COLUMNS, "nc1_new"))  # beside any added before
    after = runs.load_history(old)
    assert list(after) == list(columns) and np.isnan(after["nc1_new"]).all() and after["nc1_new"].size == 2
    for col in before:
        np.testing.assert_array_equal(after[col], before[col])
    train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0, resume=True)  # on to epoch 10
    resumed = runs.load_history(old)
    assert resumed["epoch"].tolist() == [0, 5, 10] and np.isnan(resumed["nc1_new"]).all()
    assert "nc1_new" in (old / "history.csv").read_text().splitlines()[0].split(",")
    # drawn as a panel of the figures, the column leaves the committed figures readable and passing their checks
    import nclib.figures
    from nclib.figures import load as figure_load

    monkeypatch.setattr(figure_load, "HISTORY_KEYS", (*figure_load.HISTORY_KEYS, "nc1_new"))
    committed = nclib.figures.load_figure(4, "cpu-scale")
    assert all(np.isnan(run.history["nc1_new"]).all() for run in committed.values())
    epochs = nclib.figures.check_figure(committed, 4, "cpu-scale")["epochs"]  # raises where a check fails
    assert epochs == {L: int(r.history["epoch"][-1]) for L, r in committed.items()}
    monkeypatch.setattr(runs, "ADDED_COLUMNS", ())
    with pytest.raises(ValueError, match="history.csv has no column nc1_new"):
        runs.load_history(_without(old, "nc1_new", tmp_path))


def _without(folder, column, tmp_path):
    """A copy of ``folder`` whose history.csv lacks ``column``."""
    copy = tmp_path / "copy"
    copy.mkdir()
    rows = [line.split(",") for line in (folder / "history.csv").read_text().splitlines()]
    i = rows[0].index(column)
    (copy / "history.csv").write_text("\n".join(",".join(r[:i] + r[i + 1:]) for r in rows) + "\n")
    return copy


def test_metric_epochs_are_epoch_0_every_interval_and_the_last():
    assert runs.metric_epochs(10, 4) == [0, 4, 8, 10]
    assert runs.metric_epochs(3, 5) == [0, 3]
    assert runs.metric_epochs(np.int64(6), 3) == [0, 3, 6]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="epochs"):
            runs.metric_epochs(bad, 5)
        with pytest.raises(ValueError, match="metric_every"):
            runs.metric_epochs(10, bad)


SMALL = dict(TINY, counts=[6, 3, 2], dim=4, epochs=4, metric_every=2)


def test_writers_on_two_hosts_with_one_pid_write_their_own_temporary_files(tmp_path, monkeypatch):
    """atomic_write_text names its temporary file by host and pid: two nodes sharing a folder whose writers have one
    pid never write into one temporary file."""
    seen = []
    real = os.replace
    monkeypatch.setattr(runs.os, "getpid", lambda: 4242)
    monkeypatch.setattr(runs.os, "replace", lambda src, dst: (seen.append(pathlib.Path(src).name), real(src, dst)))
    for host in ("node-a", "node-b"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        runs.atomic_write_text(tmp_path / "f.txt", host)
    assert (tmp_path / "f.txt").read_text() == "node-b"
    assert len(set(seen)) == 2 and all(name.endswith(".4242.tmp") for name in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_the_checksum_record_is_on_disk_before_the_checkpoint_is_renamed(tmp_path, monkeypatch):
    """The record is commit_checkpoint's commit point: the checkpoint's bytes are flushed to disk (the file
    fsync'd) before the record is written, and the record's rename is made durable (the folder fsync'd) before the
    checkpoint's rename, which a crash could otherwise put on disk without it, or the record beside bytes not yet
    written."""
    events = []
    real, real_fsync = os.replace, os.fsync

    def fsync(fd):  # a file's fsync, named by the entry of the folder that is that file
        inode = os.fstat(fd).st_ino
        events.append(("fsync", next(e.name for e in tmp_path.iterdir() if e.stat().st_ino == inode)))
        real_fsync(fd)

    monkeypatch.setattr(checkpoints.os, "replace", lambda src, dst: (events.append(("rename", pathlib.Path(dst).name)),
                                                              real(src, dst)))
    monkeypatch.setattr(checkpoints.os, "fsync", fsync)
    monkeypatch.setattr(checkpoints, "fsync_folder",
                        lambda folder: events.append(("fsync folder", pathlib.Path(folder))))
    (tmp_path / (runs.CHECKPOINT + ".tmp")).write_bytes(b"state")
    checkpoints.commit_checkpoint(tmp_path, 4)
    # the record's own temporary file, flushed before its rename
    record_tmp = next(name for kind, name in events if kind == "fsync" and name != runs.CHECKPOINT + ".tmp")
    assert record_tmp.startswith(f".{runs.CHECKSUM}.") and record_tmp.endswith(".tmp")
    assert events == [("fsync", runs.CHECKPOINT + ".tmp"), ("fsync", record_tmp), ("rename", runs.CHECKSUM),
                      ("fsync folder", tmp_path), ("rename", runs.CHECKPOINT), ("fsync folder", tmp_path)]
    assert checkpoints.verify_checkpoint(tmp_path)["epoch"] == 4
    assert (tmp_path / runs.CHECKPOINT).read_bytes() == b"state"


def test_a_checkpoint_that_cannot_be_written_leaves_every_run_of_the_call_at_one_epoch(tmp_path, monkeypatch):
    """The fault: the runs of one call committed their checkpoints one after another, so a full disk while the
    second run's checkpoint was written left the first at epoch 10 and the second at 5; the plan said "resume" and
    the resume refused them together.  Every checkpoint is now written before any is committed: both runs fail
    at their checkpoints of epoch 5, and continue from them together."""
    from nclib import runfolder

    pair = [dict(L=1, run_name="a"), dict(L=2, run_name="b")]
    folders = train.run_many(pair, **LONG, out_dir=tmp_path, max_train_s=0)  # both stopped at epoch 5
    real, saved = torch.save, []

    def second_is_full(obj, f, *args, **kwargs):
        saved.append(obj["epoch"])
        if len(saved) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, f, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(runfolder.torch, "save", second_is_full)
        with pytest.raises(OSError) as exc:
            train.run_many(pair, **LONG, out_dir=tmp_path, max_train_s=0, resume=True)
    assert exc.value.errno == errno.ENOSPC and saved == [10, 10]
    assert [runs.run_status(d) for d in folders] == ["failed"] * 2
    assert [json.loads((d / runs.CHECKSUM).read_text())["epoch"] for d in folders] == [5, 5]
    assert runplan.plan_runs(folders) == "resume"
    train.run_many(pair, **LONG, out_dir=tmp_path, max_train_s=0, resume=True)
    assert [runs.run_status(d) for d in folders] == ["stopped"] * 2
    assert [_epochs(d) for d in folders] == [[0, 5, 10]] * 2


def test_a_plan_refuses_runs_whose_checkpoints_are_at_different_epochs_and_its_advice_joins_them(tmp_path):
    """The fault: runs of one call whose checkpoints are at different epochs (a kill between their commits, or a run
    resumed alone) were planned "resume", and the resume then refused them together.  The plan refuses them up
    front, naming the run behind, and what it advises (that run resumed alone with max_train_s=0 until it is at the
    leading epoch) brings them to one epoch, from which they continue together."""
    pair = [dict(L=1, run_name="a"), dict(L=2, run_name="b")]
    a, b = folders = train.run_many(pair, **LONG, out_dir=tmp_path, max_train_s=0)  # both stopped at epoch 5
    for _ in range(2):  # a resumed alone, twice: to epoch 15
        train.run_many(pair[:1], **LONG, out_dir=tmp_path, max_train_s=0, resume=True)
    assert (checkpoints.recorded_epoch(a), checkpoints.recorded_epoch(str(b))) == (15, 5)  # what the plan compares
    before = {d: _files(d) for d in folders}
    with pytest.raises(runs.RunExists) as exc:
        runplan.plan_runs(folders)
    assert exc.value.run_dir == b and exc.value.status == "stopped" and exc.value.continuable == ()
    assert str(exc.value).endswith(runplan.epochs_apart_advice({a: 15, b: 5}))  # the plan's refusal ends with the advice
    assert checkpoints.recorded_epoch(tmp_path / "none") is None  # no record: no epoch, read, never refused
    with pytest.raises(ValueError, match="^run_dir"):
        checkpoints.recorded_epoch("")
    assert {d: _files(d) for d in folders} == before  # planning reads only
    while _epochs(b)[-1] < _epochs(a)[-1]:  # the advice: b alone, a metric epoch per call
        assert runplan.plan_runs([b]) == "resume"
        train.run_many(pair[1:], **LONG, out_dir=tmp_path, max_train_s=0, resume=True)
    assert _epochs(b) == _epochs(a) == [0, 5, 10, 15] and runplan.plan_runs(folders) == "resume"
    train.run_many(pair, **LONG, out_dir=tmp_path, max_train_s=0, resume=True)
    assert [runs.run_status(d) for d in folders] == ["stopped"] * 2 and _epochs(a) == _epochs(b) == [0, 5, 10, 15, 20]


def test_the_advice_for_checkpoints_at_different_epochs_names_the_runs_behind_and_the_leading_epoch(tmp_path):
    """epochs_apart_advice: None where the runs' checkpoints are at one epoch (one run, none, several at one epoch);
    else advice that names each run behind the leading epoch, that epoch, and the setting that moves a run on one
    metric epoch per call (max_train_s=0), and names no run at the leading epoch as one to bring there; bad
    arguments refused naming ``epochs``."""
    lead, behind, also_behind, level = (tmp_path / name for name in ("lead-run", "behind-run", "late-run", "tied-run"))
    assert runplan.epochs_apart_advice({}) is None
    assert runplan.epochs_apart_advice({lead: 15}) is None
    assert runplan.epochs_apart_advice({lead: 15, level: 15, behind: np.int64(15)}) is None
    advice = runplan.epochs_apart_advice({lead: 15, behind: 5, also_behind: 10, level: 15})
    assert all(f"{d.name} {e}" in advice for d, e in ((lead, 15), (behind, 5), (also_behind, 10), (level, 15)))
    # each run named once with its epoch; the runs behind once more, as those to resume alone up to epoch 15
    assert [advice.count(d.name) for d in (lead, level, behind, also_behind)] == [1, 1, 2, 2]
    assert "epoch 15" in advice and runs.setting_text("max_train_s", 0) in advice
    for bad in ([(lead, 15), (behind, 5)], {str(lead): 15, behind: 5}, {lead: -1, behind: 5}, {lead: 15.0},
                {lead: True, behind: 0}, None):
        with pytest.raises(ValueError, match="^epochs"):
            runplan.epochs_apart_advice(bad)


def test_a_run_folder_that_cannot_be_made_leaves_the_others_failed_not_running(tmp_path, monkeypatch):
    """The fault: the run folders were made before the training's try, so when the second could not be written (a
    full disk), the first stayed "running", later "dead", instead of "failed" with the error; also on a resume."""
    real = train.RunFolder
    made = []

    def second_fails(*args, **kwargs):
        if made:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        made.append(real(*args, **kwargs))
        return made[-1]

    pair = [dict(L=1, run_name="a"), dict(L=2, run_name="b")]
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    train.run_many(pair, **SMALL, out_dir=resumed, max_train_s=0)  # both stopped, to be resumed
    monkeypatch.setattr(train, "RunFolder", second_fails)
    for out, kw, second in ((fresh, {}, "absent"), (resumed, dict(resume=True), "stopped")):
        made.clear()
        with pytest.raises(OSError) as exc:
            train.run_many(pair, **SMALL, out_dir=out, **kw)
        assert exc.value.errno == errno.ENOSPC
        prov = json.loads((out / "a" / "provenance.json").read_text())
        assert runs.run_status(out / "a") == "failed" and os.strerror(errno.ENOSPC) in prov["error"]
        assert runs.run_status(out / "b") == second and locks.lock_owner(out / "a") is None


def test_a_history_that_cannot_be_written_ends_the_runs_record_where_the_file_does(tmp_path, monkeypatch):
    """The fault: a row joined the run's rows before history.csv was written, so a full disk at epoch 10 left a
    provenance saying the call trained to epoch 10 while history.csv ends at 5.  The provenance's to_epoch is the
    last epoch history.csv holds, in a call that starts the run and in one that resumes it."""
    from nclib import runfolder

    real, writes = runfolder.atomic_write_text, []

    def third_history_is_full(path, text):
        if pathlib.Path(path).name == "history.csv":
            writes.append(path)
            if len(writes) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)

    stopped = train.run(**LONG, out_dir=tmp_path, run_name="resumed", max_train_s=0)  # stopped at epoch 5
    for name, kw, last in (("started", dict(TINY, epochs=20, metric_every=5), 5),  # epochs 0, 5, then 10 fails
                           ("resumed", dict(LONG, resume=True), 10)):  # the checkpoint's rows, 10, then 15 fails
        writes.clear()
        with monkeypatch.context() as m:
            m.setattr(runfolder, "atomic_write_text", third_history_is_full)
            with pytest.raises(OSError) as exc:
                train.run(**kw, out_dir=tmp_path, run_name=name)
        assert exc.value.errno == errno.ENOSPC and len(writes) == 3
        folder = tmp_path / name
        prov = json.loads((folder / "provenance.json").read_text())
        assert prov["status"] == "failed" and _epochs(folder)[-1] == last
        assert prov["segments"][-1]["to_epoch"] == last
    assert stopped == tmp_path / "resumed" and runplan.plan_runs([stopped]) == "resume"


def test_a_file_system_without_flock_locks_is_refused_by_its_own_error(tmp_path, monkeypatch):
    """flock failing otherwise than "held" (ENOLCK, ENOSYS) is LockUnsupported naming the file, never RunFolderBusy:
    lock_run writes nothing, lock_owner and run_status refuse it too."""
    folder = train.run(**SMALL, out_dir=tmp_path, run_name="r")
    (folder / locks.LOCK).write_text("")
    for err in (errno.ENOLCK, errno.ENOSYS):
        def no_flock(fd, operation, err=err):
            raise OSError(err, os.strerror(err))

        monkeypatch.setattr(locks.fcntl, "flock", no_flock)
        with pytest.raises(locks.LockUnsupported) as exc:
            locks.lock_run(tmp_path / "new")
        assert exc.value.errno == err and exc.value.path == tmp_path / "new" / locks.LOCK
        assert not (tmp_path / "new").exists()
        with pytest.raises(locks.LockUnsupported):
            runs.run_status(folder)
        with pytest.raises(locks.LockUnsupported):
            train.run(**SMALL, out_dir=tmp_path, run_name="r", overwrite=True)
    monkeypatch.undo()
    assert runs.run_status(folder) == "finished"


def test_run_under_lock_decides_from_the_locked_folder_and_refuses_what_it_decides_itself(tmp_path):
    seen = []

    def decide(dirs, statuses):
        seen.append((statuses, locks.lock_owner(dirs[0]) is not None))
        return "keep" if statuses == ["finished"] else "start"

    assert train.run_under_lock([{}], decide, **SMALL, out_dir=tmp_path, run_name="r")[0] == "start"
    before = (tmp_path / "r" / "history.csv").read_bytes()
    assert train.run_under_lock([{}], decide, **SMALL, out_dir=tmp_path, run_name="r")[0] == "keep"
    assert seen == [(["absent"], True), (["finished"], True)]  # each decision under the folder's lock
    assert (tmp_path / "r" / "history.csv").read_bytes() == before
    for bad in (dict(resume=True), dict(overwrite=True)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            train.run_under_lock([{}], decide, **SMALL, **bad, out_dir=tmp_path, run_name="r")
    with pytest.raises(ValueError, match="decide"):
        train.run_under_lock([{}], lambda dirs, statuses: "skip", **SMALL, out_dir=tmp_path, run_name="r")
    with pytest.raises(ValueError, match="decide"):
        train.run_under_lock([{}], "start", **SMALL, out_dir=tmp_path, run_name="r")
    assert locks.lock_owner(tmp_path / "r") is None and not (tmp_path / "r" / locks.LOCK).exists()


def test_plan_runs_reads_numpy_bools_as_bools(tmp_path):
    folder = tmp_path / "a"
    for flag in (False, True):  # a numpy bool (a value read from an array) counts as the bool it is
        got = runplan.plan_runs([folder], overwrite=np.bool_(flag))
        assert got == runplan.plan_runs([folder], overwrite=flag) == "start"
    for bad in (0, 1, "yes"):
        with pytest.raises(ValueError, match="overwrite must be True or False"):
            runplan.plan_runs([folder], overwrite=bad)
    assert not folder.exists()


def test_check_resume_without_run_folders_blames_run_dirs_not_plist(tmp_path):
    """What was wrong: check_resume([], [a parameter set], code) said that plist must hold one parameter set per
    run folder (0), where the call names no run folder at all.  run_dirs is checked first, as resume_checkpoints
    does; a plist that does not fit the folders given is still refused by name."""
    from nclib import resume

    p = train.check_params(dataset="synthetic", batch_size="full", out_dir=str(tmp_path), run_name="r")
    code = dict.fromkeys(resume.CODE_KEYS)
    for plist in ([p], [], None):
        with pytest.raises(ValueError, match="^run_dirs must hold at least one run folder"):
            resume.check_resume([], plist, code)
    with pytest.raises(ValueError, match="^plist must hold one"):
        resume.check_resume([tmp_path / "r"], [], code)


_SHORT = [MemoryError, torch.OutOfMemoryError, OSError,
          *((torch.AcceleratorError,) if hasattr(torch, "AcceleratorError") else ())]


@pytest.mark.parametrize("error", _SHORT, ids=lambda e: e.__name__)
def test_a_checkpoint_load_short_of_memory_raises_that_error_and_keeps_the_run(tmp_path, monkeypatch, error):
    """What was wrong: a checkpoint whose sha256 matched, loaded while the GPU (or the host) was short of memory,
    was refused as damaged (CheckpointDamaged), which tells the user to start the run again and lets a sweep's
    restart_refused delete it.  The shortage, a GPU's error or a file system's is raised as it is, nothing is
    written, and once it has passed the run resumes from that checkpoint."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    real = torch.load

    def short(f, *args, **kwargs):
        if pathlib.Path(f).name == runs.CHECKPOINT:
            raise error("CUDA out of memory. Tried to allocate 512.00 MiB")
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", short)
    before = _files(folder)
    with pytest.raises(error) as err:
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert type(err.value) is error and not isinstance(err.value, runs.ResumeRefused)
    assert _files(folder) == before and runs.run_status(folder) == "stopped"
    monkeypatch.undo()
    train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)  # a resume stops at once
    assert runs.run_status(folder) == "stopped" and _epochs(folder) == [0, 5, 10]


#: What torch's CPU allocator raises where the host's memory is short (a plain RuntimeError: POSIX, then Windows),
#: and a RuntimeError some CUDA paths raise for a GPU's; beside them what torch's reader raises for bytes that are no
#: checkpoint.  Only the latter are a damaged checkpoint.
_ALLOCATOR_FAILED = ["[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                     "tried to allocate 4194304 bytes. Error code 12 (Cannot allocate memory)",
                     "[enforce fail at alloc_cpu.cpp:114] data. DefaultCPUAllocator: not enough memory: you tried to "
                     "allocate 4194304 bytes.",
                     "CUDA error: out of memory"]
_NO_CHECKPOINT = ["PytorchStreamReader failed reading file data/0: invalid header or archive is corrupted",
                  "Invalid magic number; corrupt file?"]


@pytest.mark.parametrize("message, short", [*((m, True) for m in _ALLOCATOR_FAILED),
                                            *((m, False) for m in _NO_CHECKPOINT)],
                         ids=["cpu-posix", "cpu-windows", "cuda", "bad-archive", "bad-magic"])
def test_an_allocator_that_cannot_allocate_is_no_damaged_checkpoint(tmp_path, monkeypatch, message, short):
    """What was wrong: on the CPU torch reports a host short of memory as a plain RuntimeError (its allocator's
    "can't allocate memory"), not MemoryError, and a checkpoint load that met one was refused as damaged
    (CheckpointDamaged), which a sweep's restart_refused answers by deleting the run.  Such a RuntimeError is raised
    as it is, the run left as it is; the RuntimeErrors of bytes that are no checkpoint are still CheckpointDamaged."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    real = torch.load

    def failing(f, *args, **kwargs):
        if pathlib.Path(f).name == runs.CHECKPOINT:
            raise RuntimeError(message)
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", failing)
    before = _files(folder)
    with pytest.raises((RuntimeError, runs.CheckpointDamaged)) as err:
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert type(err.value) is (RuntimeError if short else runs.CheckpointDamaged)
    assert _files(folder) == before and runs.run_status(folder) == "stopped"


# A second process: resume=True of the stopped run of train.run(**json argv[1]), its checkpoint loaded with the
# process's address space capped (RLIMIT_AS) at what it holds then and 2 MiB more, so that the first 4 MiB tensor of
# the checkpoint cannot be allocated, as on a host short of memory (glibc's mmap threshold is fixed by the parent:
# memory freed earlier cannot serve it).  Prints what the resume raised as JSON, or that the cap cannot be set here.
CAPPED_LOAD = """
import json, pathlib, resource, sys
import torch
from nclib import runs, train
real = torch.load
def capped(f, *args, **kwargs):
    if pathlib.Path(f).name != runs.CHECKPOINT:
        return real(f, *args, **kwargs)
    with open("/proc/self/status") as status:
        held = int(next(line for line in status if line.startswith("VmSize:")).split()[1]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (held + 2**21, hard))
    except (ValueError, OSError) as exc:
        print(json.dumps({"unsupported": str(exc)}))
        sys.exit(0)
    try:
        return real(f, *args, **kwargs)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
torch.load = capped
try:
    train.run(**json.loads(sys.argv[1]), resume=True)
except Exception as exc:
    print(json.dumps({"type": type(exc).__name__, "refused": isinstance(exc, runs.ResumeRefused), "text": str(exc)}))
else:
    print(json.dumps({"type": None}))
"""


def test_a_checkpoint_load_the_host_cannot_allocate_keeps_the_run(tmp_path):
    """The real thing: a resume whose checkpoint load the CPU allocator cannot serve (the address space capped with
    RLIMIT_AS in a second process) raises the allocator's RuntimeError, not CheckpointDamaged, the folder left byte
    for byte as it was, and the run resumes from that checkpoint once memory is there.  Skipped where the address
    space cannot be capped (no RLIMIT_AS, no /proc/self/status)."""
    resource = pytest.importorskip("resource")
    if not hasattr(resource, "RLIMIT_AS") or not pathlib.Path("/proc/self/status").exists():
        pytest.skip("the address space cannot be capped here (RLIMIT_AS and /proc/self/status are Linux's)")
    # a 1024-wide layer: its weight and Adam's moments are tensors of 4 MiB, past the cap's 2 MiB
    kw = dict(TINY, counts=[20, 10, 5], dim=64, width=1024, depth=2, epochs=4, metric_every=2, run_name="r")
    folder = train.run(**kw, out_dir=tmp_path, max_train_s=0)  # stopped at epoch 2
    before = _files(folder)
    env = {**ENV, "OMP_NUM_THREADS": str(torch.get_num_threads()), "MALLOC_MMAP_THRESHOLD_": "131072"}
    proc = subprocess.run([sys.executable, "-c", CAPPED_LOAD, json.dumps(dict(kw, out_dir=str(tmp_path)))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if "unsupported" in got:
        pytest.skip(f"RLIMIT_AS cannot be set here: {got['unsupported']}")
    assert got["type"] == "RuntimeError" and not got["refused"], got
    assert "DefaultCPUAllocator" in got["text"], got  # the allocator failed, not something else
    assert _files(folder) == before and runs.run_status(folder) == "stopped"
    train.run(**kw, out_dir=tmp_path, resume=True)
    assert runs.run_status(folder) == "finished" and _epochs(folder) == [0, 2, 4]


@pytest.mark.parametrize("content", ["text", "list", "no-epoch", "epoch-text", "epoch-inf", "other-class"])
def test_bytes_that_match_their_sha256_but_hold_no_checkpoint_are_refused_as_damaged(tmp_path, content):
    """A file recorded with its own sha256 whose bytes are no checkpoint of this code (written by something else):
    no zip archive, a pickle the weights-only unpickler refuses, content without the checkpoint's epoch, or one that
    is no whole number.  Each is CheckpointDamaged naming the file, the folder left as it is, now that only these
    errors of a load count as a damaged checkpoint."""
    folder = train.run(**LONG, out_dir=tmp_path, run_name="r", max_train_s=0)  # stopped at epoch 5
    tmp, path = folder / (runs.CHECKPOINT + ".tmp"), folder / runs.CHECKPOINT
    path.unlink()
    if content == "text":
        tmp.write_bytes(b"not a checkpoint at all\n" * 8)
    else:
        obj = {"list": [5], "no-epoch": {"engine": {}}, "epoch-text": {"epoch": "five"},
               "epoch-inf": {"epoch": float("inf")}, "other-class": {"epoch": 5, "x": types.SimpleNamespace()}}
        torch.save(obj[content], tmp)
    checkpoints.commit_checkpoint(folder, 5)  # recorded with its sha256: only its content can refuse it
    assert checkpoints.verify_checkpoint(folder)["epoch"] == 5
    before = _files(folder)
    with pytest.raises(runs.CheckpointDamaged, match=f"checkpoint {re.escape(repr(str(path)))} matches its sha256 "
                                                     f"but cannot be read") as err:
        train.run(**LONG, out_dir=tmp_path, run_name="r", resume=True, max_train_s=0)
    assert err.value.path == path and err.value.run_dir == folder
    assert _files(folder) == before and runs.run_status(folder) == "stopped"
