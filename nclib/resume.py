"""Resuming a stopped run (``resume=True`` of :func:`nclib.train.run`, :ref:`ch-engine`): what a run must share
with the call that started it to continue (its defining parameters, its commit and uncommitted changes, on a CPU
the CPU model and torch's threads, its device, torch version and data), checked before and after the data are
loaded, and its checkpoint read back.  :mod:`nclib.train` calls these; the run folder's contract (statuses,
parameters compared) is :mod:`nclib.runs`, the checkpoint's checksum and its verification :mod:`nclib.checkpoints`.
"""
from __future__ import annotations

import json
import pathlib
import pickle
import re
from collections.abc import Mapping

import torch

from . import _checks
from . import checkpoints as _checkpoints
from . import parameters, provenance
from . import runplan as _runplan
from . import runs as _runs
from .locks import run_folder_paths
from .parameters import defining_params
from .runs import CHECKPOINT, CHECKSUM, CheckpointDamaged, ResumeRefused, setting_text


def device_key(device) -> str | None:
    """A device as a resume compares it: ``"cuda"`` (the current GPU, as a run on ``auto`` or ``cuda`` records it)
    and ``"cuda:<current index>"`` name the same card; None and other text stay as they are.  ValueError naming
    ``device`` for text that begins as a GPU's and names none (``"cuda:x"``)."""
    if not isinstance(device, str) or not device.startswith("cuda"):
        return device
    try:
        d = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'cuda' or 'cuda:<index>' where it names a GPU, got {device!r}") from None
    if d.index is None and torch.cuda.is_available():
        return f"cuda:{torch.cuda.current_device()}"
    return str(d) if d.index is not None else "cuda"


#: What :func:`check_resume` reads of the call's code and machine (``code``: :func:`nclib.provenance.git_state` and
#: the CPU and torch's threads, as :func:`nclib.train.run_many` records them).
CODE_KEYS = ("git_commit", "git_diff_sha256", "host_cpu", "torch_threads")


def check_resume(run_dirs, plist, code) -> list[dict]:
    """The checks of ``resume=True`` (:ref:`ch-engine`) that need neither the data nor the networks, made before
    either is loaded: each folder holds a stopped, dead or failed run (:data:`nclib.runs.RESUMABLE`) with a
    checkpoint; the run was started with the same parameters (but :data:`~nclib.parameters.EXECUTION_KEYS`, and
    ``data_path`` for the letters stand-in, rendered or read from a rendering saved ahead), at the same commit with
    the same uncommitted changes (none, or the same ``git diff``; a run whose first call recorded no commit, where
    git could not read its checkout, is refused, since no code can be compared with its, and so is a run that
    recorded a commit where this checkout's commit cannot be read), and, on a CPU, on the same CPU model with
    torch's kernels there (``host_cpu``) and as many torch threads (``torch_threads``).  Refusals are
    :class:`ResumeRefused` naming the folder; nothing is written.  Returns each folder's provenance, as read here.
    ``run_dirs``: the run folders (:func:`nclib.locks.run_folder_paths`); ``plist``: one checked parameter set
    each (:func:`nclib.parameters.check_params`); ``code``: this call's commit, changes, CPU and torch threads
    (:data:`CODE_KEYS`).  ValueError naming the argument for anything else, before a folder is read."""
    run_dirs = run_folder_paths(run_dirs)
    if not run_dirs:
        raise ValueError("run_dirs must hold at least one run folder to resume, got none")
    plist = _checks.one_per_folder(plist, "plist", "checked parameter set (a dict)", len(run_dirs),
                                   lambda q: isinstance(q, dict) and {"device", "run_name"} <= set(q))
    if not isinstance(code, Mapping) or not set(CODE_KEYS) <= set(code):
        raise ValueError(f"code must be the call's code and machine, a mapping with {list(CODE_KEYS)}, got "
                         f"{code!r:.200}")
    on_cpu = parameters.device_type(plist[0]["device"]) == "cpu"
    provs = []
    for d in run_dirs:  # first what each folder holds, so that a run that cannot continue is named before the rest
        status = _runs.recorded_status(d)
        if status in _runs.RESUMABLE and not _checkpoints.has_checkpoint(d):  # also a run killed before its provenance
            raise _checkpoints.no_checkpoint(d)
        if status == "absent":
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it holds no run to continue; start it "
                                f"with {setting_text('resume', False)}", d)
        if status not in _runs.RESUMABLE:
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it holds a {status} run, and only a "
                                f"stopped, dead or failed run continues from its checkpoint; leave it out of the "
                                f"call" + ("" if status != "diverged" else
                                           f" (to train it again, start it in a call of its own with "
                                           f"{setting_text('overwrite', True, without='--resume')}, which deletes "
                                           f"it)"), d)
    for d, q in zip(run_dirs, plist):
        differ = _runplan.differing_params(d, defining_params(q))
        if differ:
            raise ResumeRefused(f"run {q['run_name']!r} cannot be resumed: it was started with other parameters: "
                                f"{_runplan.differences_text(differ)}", d)
        try:
            prov = json.loads((d / "provenance.json").read_text())
        except (OSError, ValueError) as exc:  # a run status reads as dead; its provenance is needed from here on
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: its provenance.json cannot be read "
                                f"({exc}); start it again with {setting_text('overwrite', True, without='--resume')}",
                                d) from exc
        first = prov.get("git_commit")
        if first is None:  # started where git could not read the checkout: no code to compare this call's with
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: its first call recorded no commit "
                                f"(git_commit None: git could not read the checkout it ran from, a copy without "
                                f".git or a package installed without its repository), so the code of this call "
                                f"cannot be compared with its: start it again in a git checkout with "
                                f"{setting_text('overwrite', True, without='--resume')}, which deletes it", d)
        if code["git_commit"] is None:  # a copy without git, say: its code cannot be compared
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it was started at commit {first[:10]} "
                                f"(git_commit) and this checkout's commit cannot be read (no git, or not the top of "
                                f"a repository of its own), so its code cannot be compared: resume it in a checkout "
                                f"of that commit", d)
        if first != code["git_commit"]:
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it was started at commit "
                                f"{first[:10]} and this checkout is at {code['git_commit'][:10]}: a run's code "
                                f"must not change", d)
        # the same commit, and the same changes to it (none, or the same diff) as the first call's
        then_diff = prov.get("git_diff_sha256") if prov.get("git_dirty") else None
        # runs made before the diff was recorded say only whether they had changes: a dirty one is not compared
        known = prov.get("git_dirty") is False or "git_diff_sha256" in prov
        if known and then_diff != code["git_diff_sha256"]:
            now_diff = code["git_diff_sha256"]
            then_text = "uncommitted changes" if then_diff else "no uncommitted changes"
            now_text = "none" if now_diff is None else "other ones" if then_diff else "uncommitted changes"
            files = provenance.changed_files(prov, code)  # which files, so that a stray one can be found
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it was started from commit {first[:10]} "
                                f"with {then_text} and this checkout has {now_text}"
                                f"{f' ({files})' if files else ''}: a run's checkout (its "
                                f"tracked files and the untracked ones its .gitignore does not ignore, outside "
                                f"results/, benchmarks/results/, the executed notebooks and the out_dirs of "
                                f"this call and of the one that started it) must not change between its calls (a "
                                f"file a job writes into it, such as its log, counts: write it elsewhere)", d)
        if on_cpu and prov.get("host_cpu") not in (None, code["host_cpu"]):
            # a CPU run's arithmetic is that of the kernels torch picks on its CPU (runs made before it was recorded
            # say nothing, and are not refused)
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it was started on another CPU: "
                                f"{prov['host_cpu']!r}, now {code['host_cpu']!r}", d)
        if on_cpu and prov.get("torch_threads") not in (None, code["torch_threads"]):
            # and with its kernels split over as many threads: the split may change how their sums round
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it was started with "
                                f"{prov['torch_threads']} CPU threads for torch, now {code['torch_threads']} (set "
                                f"OMP_NUM_THREADS or torch.set_num_threads to {prov['torch_threads']})", d)
        provs.append(prov)
    return provs


# What loading a checkpoint whose bytes are those its writer recorded (its sha256 matched) may meet that says
# nothing of the bytes: memory short, of the host (MemoryError) or of a GPU (torch.OutOfMemoryError, torch.cuda's
# too), a device's own error (torch.AcceleratorError: a CUDA error), a file system's (OSError: the file was read
# whole a moment before).  Raised as they are, never as CheckpointDamaged, which a sweep's restart_refused answers by
# deleting the run: a transient shortage must not destroy a good run.
_NOT_THE_BYTES = (MemoryError, torch.cuda.OutOfMemoryError, OSError,
                  *((torch.AcceleratorError,) if hasattr(torch, "AcceleratorError") else ()))
# The host's memory short, as torch's CPU allocator reports it: a plain RuntimeError, no MemoryError ("[enforce fail
# at alloc_cpu.cpp:...] ... DefaultCPUAllocator: can't allocate memory: you tried to allocate ... bytes", "not enough
# memory" on Windows), and a GPU's as some CUDA paths report it ("CUDA error: out of memory").  Raised as it is too.
_ALLOCATOR_FAILED = re.compile(r"can't allocate memory|not enough memory|out of memory", re.IGNORECASE)
# What loading raises where the bytes are no checkpoint of this code (other bytes recorded with their sha256): no zip
# archive or a cut one (RuntimeError of torch's reader, EOFError), a pickle the weights-only unpickler refuses
# (pickle.UnpicklingError), content that is not a checkpoint's (LookupError, TypeError, ValueError, OverflowError of
# its epoch).  Only these are a damaged checkpoint; the RuntimeErrors of _NOT_THE_BYTES are caught before them, and
# those of an allocator that could not allocate (_ALLOCATOR_FAILED) are told apart from them by their text.
_UNREADABLE = (pickle.UnpicklingError, EOFError, RuntimeError, LookupError, TypeError, ValueError, OverflowError)


def resume_checkpoints(run_dirs, provs, engines, ts) -> tuple[int, list[dict]]:
    """The rest of the checks of ``resume=True`` (:ref:`ch-engine`) once the data ``ts`` are loaded and the networks
    built (``engines``, :class:`nclib.engine.Engine`, one per folder), after :func:`check_resume`, which read the
    folders' provenances ``provs``; then the checkpoints: the runs were
    started on the same device (type and name) and torch version, on the same data (the ``data_sha256`` of the
    provenance equals the data loaded now); each checkpoint holds the bytes its writer recorded beside it (sha256)
    and loads; the runs stopped at the same epoch.  Refusals are :class:`ResumeRefused` (:class:`CheckpointDamaged`
    for the checkpoint) naming the folder,
    before anything is written but a checkpoint whose writer recorded it and was cut off before its rename (then
    renamed).  A load that runs short of memory (the host's or a GPU's), or meets a GPU's or a file system's error,
    raises that error as it is, the run left as it is: its checkpoint is not damaged, and a call with the memory
    resumes it.  Returns the epoch the runs continue from and their checkpoints.  ValueError naming ``run_dirs``,
    ``provs``, ``engines`` or ``ts`` for anything but those, before a folder is read."""
    run_dirs = run_folder_paths(run_dirs)
    if not run_dirs:
        raise ValueError("run_dirs must hold at least one run folder to resume, got none")
    provs = _checks.one_per_folder(provs, "provs", "provenance (a dict, as check_resume returns it)", len(run_dirs),
                                   lambda prov: isinstance(prov, dict))
    engines = _checks.one_per_folder(engines, "engines", "Engine", len(run_dirs),
                                     lambda eng: all(hasattr(eng, a) for a in ("device", "device_name", "p")))
    if not isinstance(getattr(ts, "provenance", None), Mapping) or "data_sha256" not in ts.provenance:
        raise ValueError(f"ts must be the loaded training set (nclib.data.load_for), got {type(ts).__name__}")
    here = {"device": device_key(str(engines[0].device)), "device_name": engines[0].device_name,
            "torch": torch.__version__}
    for d, prov, eng in zip(run_dirs, provs, engines):
        then = {"device": device_key(prov.get("device")), "device_name": prov.get("device_name"),
                "torch": (prov.get("versions") or {}).get("torch")}
        differ = [k for k in here if then[k] != here[k]]
        if differ:  # another device, card or torch changes the kernels (and fused Adam's flags): not the same run
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: it was started on another device or torch: "
                                + "; ".join(f"{k} {then[k]!r}, now {here[k]!r}" for k in differ), d)
        then_data, now_data = prov.get("data_sha256"), ts.provenance["data_sha256"]
        if then_data != now_data:  # the data file rewritten at the same path, or other data
            raise ResumeRefused(f"run folder {str(d)!r} cannot be resumed: the data differ from those it started on: "
                                f"data_sha256 {str(then_data)[:12]}... then, {now_data[:12]}... now (data_path "
                                f"{eng.p['data_path']!r}); resume on the run's own data, or start again with "
                                f"{setting_text('overwrite', True, without='--resume')}", d)
    checkpoints = []
    for d, eng in zip(run_dirs, engines):
        record = _checkpoints.verify_checkpoint(d)
        path = d / CHECKPOINT
        try:
            c = torch.load(path, map_location=eng.device, weights_only=True)
            epoch = int(c["epoch"])
            ok = epoch == int(record["epoch"]) and {"engine", "rows", "initial_objective", "limit"} <= set(c)
        except _NOT_THE_BYTES:  # memory short, a GPU's error, a read that failed now: the run is kept as it is
            raise
        except _UNREADABLE as exc:
            if isinstance(exc, RuntimeError) and _ALLOCATOR_FAILED.search(str(exc)):  # memory short, not the bytes
                raise
            raise CheckpointDamaged(f"checkpoint {str(path)!r} matches its sha256 but cannot be read "
                                    f"({type(exc).__name__}: {str(exc)[:200]}); start the run again with "
                                    f"{setting_text('overwrite', True, without='--resume')}", d, path) from None
        if not ok:
            raise CheckpointDamaged(f"checkpoint {str(path)!r} does not hold the state of epoch {record['epoch']} "
                                    f"its {CHECKSUM} records; start the run again with "
                                    f"{setting_text('overwrite', True, without='--resume')}", d, path)
        checkpoints.append(c)
    epochs_at = sorted({int(c["epoch"]) for c in checkpoints})
    if len(epochs_at) > 1:
        apart = _runplan.epochs_apart_advice({d: int(c["epoch"]) for d, c in zip(run_dirs, checkpoints)})
        raise ResumeRefused(f"the runs cannot be resumed together: they stopped at different epochs {epochs_at}; "
                            f"{apart}", run_dirs[0])
    return epochs_at[0], checkpoints


def first_output_folders(run_dirs) -> list[pathlib.Path]:
    """The output folders that the call that started the runs in ``run_dirs`` left out of its git state, as their
    provenance records them (``git_output_folders``, relative to the checkout, :func:`nclib.provenance.output_folders`),
    each once, as paths in the checkout, so that a resume leaves them out too (:ref:`ch-engine`): the folders of runs
    started together with a run resumed alone, which would otherwise count as new code.  Runs made before it was
    recorded, and a provenance that cannot be read (refused later), add none.  ValueError naming ``run_dirs`` for
    anything but a list of run folders (:func:`nclib.locks.run_folder_paths`)."""
    folders = []
    for d in run_folder_paths(run_dirs):
        try:
            recorded = json.loads((d / "provenance.json").read_text()).get("git_output_folders")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(recorded, list):
            folders += [provenance.ROOT / f for f in recorded if isinstance(f, str) and f]
    return list(dict.fromkeys(folders))
