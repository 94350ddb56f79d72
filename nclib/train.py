"""The training engine of Section 5 / Appendix C: minimizes objective (4.3) and records the collapse metrics.

``run(**params)`` trains one network (an MLP backbone and an L-layer linear head, :mod:`nclib.models`) on
one imbalanced subset (:mod:`nclib.data`) and writes one run folder::

    params.json       every parameter, defaults filled in
    history.csv       one row per metric epoch (epoch 0 = the initialization)
    class_accuracy.csv  per metric epoch the training accuracy of each class (which classes a run misses)
    provenance.json   git commit and dirty flag (and the output folders left out of it), package versions,
                      device, precision, wall time, data sha256, command line, status ("running", "finished",
                      "stopped", "diverged" or "failed"), and one segment per call that trained it
                      (``max_train_s`` and ``resume``)
    checkpoint.pt     while a run can be continued (stopped, and a failed or dead run that wrote one before):
                      what ``resume=True`` continues from, and beside it
                      checkpoint.pt.sha256 (its sha256, size and epoch, checked before it is read)
    .lock             while a process writes the folder: its pid and host (one writer per run folder)

Each file is written atomically (a temporary file in the same folder, then ``os.replace``), and the history is
rewritten after every metric epoch, so an interrupted run leaves a complete history of the epochs it reached;
the folder's contract (names, the lock, statuses, checkpoints) is :mod:`nclib.runs`, its writing while a run
trains :mod:`nclib.runfolder`, and the checks of a resumed run against the call that started it
:mod:`nclib.resume`.
With ``max_train_s`` a call stops its runs at the first metric epoch past that many seconds and writes a
checkpoint; a later call with ``resume=True`` and the same parameters continues them exactly where they stopped
(the tests compare the histories with an uninterrupted run's, number for number), so a run longer than one call
allows (a GPU job's time limit) is made in several.  Under the command lines a SIGTERM (a batch job's time limit,
``scancel``) that comes while the runs train stops them the same way at their next metric epoch, then ends the
process (:func:`run_many`).

The objective (4.3), with H = [h_1, ..., h_N] the backbone features of all N training samples and
P = W_L ... W_1::

    F = 1/(2N) ||P H + b 1^T - Y||_F^2 + sum_j lam_Wj/2 ||W_j||_F^2 + lam_H/2 ||H||_F^2
        (+ lam_backbone/2 * sum of the squared backbone weights, 0 by default)

A mini-batch B (|B| = B, drawn without replacement from a fresh permutation each epoch) uses::

    F_B = 1/(2B) sum_{i in B} ||P h_i + b - y_i||^2 + lam_H N/(2B) sum_{i in B} ||h_i||^2 + sum_j lam_Wj/2 ||W_j||^2

whose expectation over the batch is F exactly; with ``batch_size="full"`` F_B = F.  The last N mod B samples of
each epoch's permutation are dropped (static shapes for CUDA graphs; each batch is still a uniform sample, so
the estimate stays unbiased).  ``lam_W``/``lam_H`` are in the normalization of (4.3); at full batch, as the
reference code trains, its "weight decay" wd and "feature decay" fd correspond to ``lam_W = K wd``,
``lam_H = K fd`` (:func:`from_reference_decay`; its feature term, a sum over the batch, is ``lam_H = K fd B/N``
on batches of B < N samples, :ref:`ch-engine`), and the default ``"reference"`` is that code's wd = fd = 1e-5 read
so: K x 1e-5.  Chapters: :ref:`ch-train` (the notebook) and :ref:`ch-engine` (the design).

Speed design (GPU): the whole subset lives on the device, batches are gathered with indices from
``torch.randperm`` made on the device, there is no host synchronisation inside an epoch (the loss is
accumulated on the device and read only at metric epochs, where NaN/divergence is checked), Adam is fused,
with ``cuda_graph`` the whole step (gather, forward, backward, Adam) is captured once and replayed, and the
host-side metrics (numpy, float64) of a metric epoch run in a worker thread while training continues.  Four
opt-in levers, off by default until a GPU has measured them (:data:`nclib.parameters.LEVER_KEYS`):
``grouped_adam`` (the runs of one :func:`run_many` call take one Adam step over all their parameters,
:func:`group_engines`), ``steps_per_graph`` (several steps per CUDA graph replay), ``deferred_metrics`` (a metric
epoch's device work queued, its row completed later) and ``adam_in_backward`` (each parameter's Adam step taken
inside the backward pass); none changes a run's arithmetic (:ref:`ch-engine`).
"""
from __future__ import annotations

import argparse
import datetime
import pathlib
import signal
import sys
import time

import torch
from tqdm import tqdm

from . import ROOT, _checks, data, imbalance, parameters, provenance  # noqa: F401 (ROOT re-exported)
from . import checkpoints as _checkpoints
from . import locks as _locks
from . import runs as _runs
from .runs import (CHECKPOINT, CHECKSUM, CLASS_ACCURACY, HISTORY_COLUMNS, REPRODUCIBLE_COLUMNS,  # noqa: F401
                   CheckpointDamaged, ResumeRefused, RunExists, atomic_write_text,
                   load_class_accuracy, load_history, load_run, setting_text)
from .parameters import (DEFAULTS, EXECUTION_KEYS, INITS, LEVER_KEYS, MEMBER_KEYS,  # noqa: F401 (re-exported)
                         NOTEBOOK_PARAMETERS, PRECISIONS, check_params, defining_params, parse_value, run_names,
                         unshared_keys)
from .engine import (Engine, group_engines, lr_at, time_side_by_side,  # noqa: F401 (re-exported)
                     train_epochs_together)
from .parameters import REFERENCE_DECAY, from_reference_decay  # noqa: F401 (re-exported)
from .runfolder import RunFolder, TrainingDiverged  # noqa: F401 (TrainingDiverged re-exported)
from .resume import check_resume, device_key, first_output_folders, resume_checkpoints  # noqa: F401 (device_key)


# --------------------------------------------------------------------------------------------- plans

def plan(runs, **shared) -> str:
    """What the training notebook (:ref:`ch-train`) does with the runs that :func:`run_many` would train with
    these arguments, so that it never deletes a run it could continue: "start" (no folder holds them, or
    ``overwrite=True``), "resume" (stopped, killed or failed, with a checkpoint), "skip" (finished with these
    parameters; for a call on a GPU, trained on one: :func:`nclib.parameters.required_device_type`; on the data
    its ``data_path`` holds now, whose checksum is compared once they are loaded: :func:`_refuse_other_data`);
    anything else (another writer, other parameters, a run trained on a CPU for a call on a GPU, a diverged run,
    runs in different states) is refused by :func:`nclib.runs.plan_runs` naming the folder, and finished runs whose
    data file now holds other data by :class:`~nclib.runs.OtherData` (a :class:`~nclib.runs.RunExists`).
    Parameters are checked as by :func:`run_many`."""
    return _plan(_checked_runs(runs, shared))


def _plan(plist: list[dict]) -> str:
    """:func:`plan` of checked parameters (:func:`_checked_runs`); a "skip" only once the data are found to be the
    runs' own (:func:`_refuse_other_data`)."""
    todo = _runs.plan_runs([_run_dir(q) for q in plist], overwrite=plist[0]["overwrite"],
                           params=[defining_params(q) for q in plist],
                           devices=[parameters.required_device_type(q["device"]) for q in plist])
    if todo == "skip":
        _refuse_other_data(plist)
    return todo


def _refuse_other_data(plist: list[dict]) -> None:
    """Refuse to read back finished runs (checked parameters ``plist``, trained together: one data set) as the result
    of a call whose data file now holds other data (:func:`nclib.runs.refuse_other_data`: the file rewritten at the
    same path since, say).  Refused, not trained again: a careful researcher wants to know that the file changed, and
    a finished run is never deleted unasked (:class:`~nclib.runs.OtherData`, a :class:`~nclib.runs.RunExists`,
    naming the folder, both checksums and the path; ``overwrite=True`` trains the runs again on the data there now,
    deleting them)."""
    _runs.refuse_other_data(plist[0], [_run_dir(q) for q in plist],
                            f"put the run's data back at that path, give the runs another run name or out_dir, or "
                            f"train them again on these data with {setting_text('overwrite', True, without='--resume')}"
                            f", which deletes them")


def _run_dir(q: dict) -> pathlib.Path:
    """The folder of the run of checked parameters ``q``: ``out_dir/run_name``."""
    return pathlib.Path(q["out_dir"]) / q["run_name"]


# --------------------------------------------------------------------------------------------- run

def run_planned(runs, **shared) -> tuple[str, list[pathlib.Path]]:
    """Train, continue or read the runs of one :func:`run_many` call, as :func:`plan` says, and never delete one
    it could continue: ``(todo, run folders)``, ``todo`` being :func:`plan`'s "start" (trained by
    :func:`run_many`), "resume" (continued from their checkpoints) or "skip" (finished with these parameters, on
    the data the data file holds now: read, not trained).  ``resume=True`` in ``shared`` refuses to start runs
    that are not there (as in :func:`run_many`).  So one call serves every job of a run split over several
    (:ref:`ch-train`)."""
    resume = _checks.flag(shared.get("resume", False), "resume")  # checked here: the plan below sets it itself
    plist = _checked_runs(runs, {**shared, "resume": False})
    todo = _plan(plist)
    if todo == "skip":
        return todo, [_run_dir(q) for q in plist]
    return todo, run_many(runs, **{**shared, "resume": resume or todo == "resume"})


#: What :func:`run_under_lock`'s ``decide`` may answer.
LOCKED_STEPS = ("keep", "resume", "start")


def run_under_lock(runs, decide, **shared) -> tuple[str, list[pathlib.Path]]:
    """Keep, continue or start the runs of one :func:`run_many` call as ``decide`` says, deciding only once every
    run folder is locked (:func:`nclib.locks.lock_runs`), so that no other process changes a folder between its
    reading and its training: ``decide(run_dirs, statuses)``, with each folder's
    :func:`nclib.runs.recorded_status` read under its lock, answers one of :data:`LOCKED_STEPS`: "keep" (nothing is
    trained or written), "resume" (``resume=True``: continued from their checkpoints) or "start" (``overwrite=True``:
    trained from epoch 0, deleting what the folders hold).  A run that another process finished after the caller
    last looked is so kept, never deleted and trained again (the reruns of a sweep, :ref:`ch-sweeps`).  Returns
    ``(step, run folders)``.  ``resume`` and ``overwrite`` are the decision's: a True one given is refused
    (ValueError naming it); the other refusals are :func:`run_many`'s, :class:`~nclib.locks.RunFolderBusy` when
    another live process holds a folder, and whatever ``decide`` raises (with the locks given back)."""
    if not callable(decide):
        raise ValueError(f"decide must be a function (run_dirs, statuses) -> one of {LOCKED_STEPS}, got {decide!r}")
    given = [k for k in ("resume", "overwrite") if shared.get(k) or (
        isinstance(runs, (list, tuple)) and any(isinstance(r, dict) and r.get(k) for r in runs))]
    if given:
        raise ValueError(f"{given[0]}=True given, but run_under_lock decides resume and overwrite itself from what "
                         f"the locked folders hold; leave {given[0]} out")
    plist = _checked_runs(runs, shared)
    run_dirs = [_run_dir(q) for q in plist]
    locks = _locks.lock_runs(run_dirs)
    try:
        step = decide(run_dirs, [_runs.recorded_status(d) for d in run_dirs])
        if step not in LOCKED_STEPS:
            raise ValueError(f"decide answered {step!r}; one of {LOCKED_STEPS} expected")
        if step == "keep":
            return step, run_dirs
        runs = [{**r, "resume": step == "resume", "overwrite": step == "start"} for r in runs]
        shared = {**shared, "resume": step == "resume", "overwrite": step == "start"}
        return step, _train_locked(runs, shared, _checked_runs(runs, shared), run_dirs)
    finally:
        for lock in reversed(locks):
            lock.release()


def _checked_runs(runs, shared) -> list[dict]:
    """The checked parameters of each run of one :func:`run_many` call (``shared`` under each run's own): a
    ValueError for anything but a non-empty list of dicts, for runs that differ in anything but
    :data:`MEMBER_KEYS` or in precision with ``grouped_adam``, and for two runs writing one folder."""
    if isinstance(runs, (str, bytes)) or not hasattr(runs, "__len__") or len(runs) == 0 or not all(
            isinstance(r, dict) for r in runs):
        raise ValueError(f"runs must be a non-empty list of parameter dicts, got {runs!r}")
    plist = [check_params(**{**shared, **r}) for r in runs]
    differ = unshared_keys(plist)
    if differ:
        key = differ[0]
        raise ValueError(f"runs differ in {key!r} ({[q[key] for q in plist]}); runs trained together share "
                         f"the data, network shape, schedule and device and may differ only in {MEMBER_KEYS}")
    if plist[0]["grouped_adam"] and unshared_keys(plist, grouped=True):  # then only the precision differs
        raise ValueError(f"runs differ in 'precision' ({[q['precision'] for q in plist]}) with grouped_adam=True, "
                         f"whose one Adam step takes the runs' products at one precision; use "
                         f"{setting_text('grouped_adam', False)}")
    run_dirs = [_run_dir(q) for q in plist]
    if len({d.resolve() for d in run_dirs}) < len(run_dirs):
        raise ValueError(f"two runs would write the same run folder: {[str(d) for d in run_dirs]}; give each its "
                         f"own run_name")
    return plist


def run(**params) -> pathlib.Path:
    """Train one network on objective (4.3) and write its run folder; returns the folder's path.

    Parameters (defaults in :data:`DEFAULTS`): data (``dataset``, ``data_path``, ``counts``,
    ``class_order``, ``selection``, ``normalization``, ``download``, ``verify_checksums``, ``dim``,
    ``spread``: see :func:`nclib.data.load`), model (``L``, ``bias``, ``width``, ``depth``,
    ``feature_dim``, ``init``: :func:`nclib.models.build_model`), objective (``lam_W`` one number or L,
    ``lam_H``, ``lam_backbone``, in the normalization of (4.3)), optimization (``epochs``, ``batch_size``
    an int or ``"full"``, ``lr``, ``lr_milestones``, ``lr_gamma``, ``seed``), execution (``device``
    ``"auto"``/``"cpu"``/``"cuda"``, ``precision`` ``"fp32"``/``"tf32"``/``"bf16"``, ``cuda_graph``
    ``"auto"``/True/False, ``progress``; the opt-in levers ``grouped_adam``, ``steps_per_graph``,
    ``deferred_metrics`` and ``adam_in_backward``, see :data:`nclib.parameters.LEVER_KEYS`), recording
    (``metric_every``, ``divergence_factor``, ``async_metrics`` (``"auto"``: on a GPU the numpy metrics of a
    metric epoch run in a worker thread while training goes on; rows reach history.csv in epoch order as they
    complete),
    ``out_dir``, ``run_name``, ``overwrite``), calls (``max_train_s``: None, or the seconds after which the
    run stops at its next metric epoch with status "stopped" and a checkpoint; ``resume``: continue a stopped
    run from its checkpoint; every parameter but :data:`EXECUTION_KEYS` must equal the first call's, and the
    code, device (type and name) and torch version the first call's).  Raises ValueError for bad parameters
    (before any file is written) and :class:`TrainingDiverged` on NaN/inf or divergence (the history so far is
    kept).  The run folder is locked for the call (one writer, :func:`nclib.locks.lock_run`); its refusals are
    ValueErrors of their own: :class:`~nclib.locks.RunFolderBusy` (another live process writes the folder),
    :class:`~nclib.runs.RunExists` (the folder holds a run and ``overwrite`` is False; its ``status`` says which,
    "dead" for a run whose process was killed), :class:`~nclib.runs.ResumeRefused` and
    :class:`~nclib.runs.CheckpointDamaged` (:mod:`nclib.resume`); a ValueError naming the files where one of
    nclib's modules this process imported has changed on disk since (:func:`nclib.provenance.changed_sources`: the
    provenance would record code the process does not run).  Notebook: :ref:`ch-train`.
    """
    return run_many([params])[0]


def run_many(runs, **shared) -> list[pathlib.Path]:
    """Train several networks side by side, each exactly as :func:`run` would, and write one run folder each.

    ``runs`` is a list of parameter dicts; ``shared`` holds the parameters common to all of them (a key in
    both takes the run's value).  The runs may differ only in :data:`MEMBER_KEYS` (head depth L, bias, the
    decays, the initialization scheme, the precision of the training products, run_name/out_dir); a
    ValueError names any other parameter that differs, before anything is written (and different precisions
    with ``grouped_adam``, whose one Adam step takes every run's products at one precision).  The data are loaded once; each run keeps its own model,
    optimizer and batch order (its own generator, seeded with the shared seed, as in :func:`run`), so every
    run folder holds what :func:`run` would have written (the tests compare them number for number).  The
    runs advance in lockstep, one epoch at a time; on a GPU each run's steps are queued on a CUDA stream of
    its own, so that one run's memory-bound Adam update overlaps another's matrix products.  A run that
    diverges is stopped and written as in :func:`run` while the others go on; :class:`TrainingDiverged` is
    raised at the end, naming every run that diverged.  ``max_train_s`` stops all the runs at the same metric
    epoch, each with its checkpoint; ``resume=True`` continues them together (they must have stopped at the
    same epoch).  Every run folder is locked (:func:`nclib.locks.lock_run`) before it is checked, written or
    deleted, until the call ends; ``overwrite=True`` deletes only the files a run writes, and only once the
    data and the networks are built (:ref:`ch-train`, :ref:`ch-engine`).  The folders that hold the lock files of
    writers on other hosts are all named in one refusal (:func:`nclib.locks.lock_runs`).  SIGTERM, while
    :func:`nclib.locks.sigterm_raises` holds (the command line, :func:`main`), raises
    :class:`nclib.locks.Terminated` through this call.  Sent while the runs are in the epoch loop, it is first only
    noted (:func:`nclib.locks.sigterm_deferred`): at the runs' next metric epoch every run still training stops as a
    ``max_train_s`` stop does (its rows recorded and checked for divergence, every checkpoint written, then
    committed, status "stopped"), and then Terminated is raised; noted at the last metric epoch, the runs finish
    ("finished") before it is raised.  Once the loop has reached that metric epoch (or a ``max_train_s`` stop has
    begun), a further SIGTERM is only noted, so that every run ends at that one epoch.  A second SIGTERM while the
    stop is pending (before that epoch), and one that comes outside the loop (while the data load, while a run's
    folder is opened or finished), raise at once, the runs still open written "failed" with its error.  Its
    ``open_runs`` are the folders of the runs the signal ended (empty where it came before the folders were opened,
    or once every run had trained its last epoch), of which ``stopped_runs`` those that stopped with a checkpoint
    (resumed with ``resume=True``) and ``failed_runs`` those whose folder records "failed" (one that could not be
    written is left out, its error in a note of the exception); its ``diverged_runs`` are the runs that diverged
    before the signal ended the call or at the metric epoch of its stop (why each did in a note), which
    :class:`TrainingDiverged` would have named had the signal not come.  Where the stop of a noted SIGTERM fails
    (its checkpoint cannot be written: a full disk), that error is raised, the runs written as failed, with a note
    that a SIGTERM had come and naming every run stopped or written as failed.
    """
    try:
        plist = _checked_runs(runs, shared)
        run_dirs = [_run_dir(q) for q in plist]
        # one writer per run folder, from before anything is checked, written or deleted until the end
        locks = _locks.lock_runs(run_dirs)
        try:
            return _train_locked(runs, shared, plist, run_dirs)
        finally:
            for lock in reversed(locks):
                lock.release()
    except _locks.Terminated as exc:  # SIGTERM: the runs it ended, where the training part recorded them
        exc.open_runs = getattr(exc, "open_runs", [])
        exc.stopped_runs = getattr(exc, "stopped_runs", [])
        exc.failed_runs = getattr(exc, "failed_runs", [])
        exc.diverged_runs = getattr(exc, "diverged_runs", [])
        raise


def _exists_message(run_dirs, existing) -> str:
    """The refusal of a call that would start runs in folders that hold runs (``existing``: their statuses): every
    such folder is named with what it holds and what continues it, and ``overwrite``, which deletes every run of the
    call, is offered only for the runs that cannot continue."""
    held = []
    for d, status in zip(run_dirs, existing):
        if status == "absent":
            continue
        hint = ""
        if status in _runs.RESUMABLE:
            hint = (", which continues from its checkpoint" if _checkpoints.has_checkpoint(d)
                    else " without a checkpoint")
        if status == "dead":
            hint += " (its writer ended without recording an end: killed or crashed)"
        held.append(f"{str(d)!r} holds a {status} run{hint}")
    go_on = [d for d, s in zip(run_dirs, existing) if s in _runs.RESUMABLE and _checkpoints.has_checkpoint(d)]
    advice = (f"{setting_text('resume', True)} continues the stopped runs, in a call of their own if the others "
              f"cannot continue; " if go_on else "")
    return (f"run folders already exist: {'; '.join(held)}. {advice}{setting_text('overwrite', True)} starts every "
            f"run of the call again, deleting its folder, so give it only runs to start again; or give the runs "
            f"another run name")


def _decays_note(given: dict, q: dict) -> str:
    """Where the decays of the run of checked parameters ``q`` come from (``given``: as the caller passed them), for
    its provenance.  A decay given as text is "reference" (:func:`check_params` refuses other text); any other value
    (a number, a list, a numpy array, which ``==`` would compare element by element) was given."""
    def by_reference(value) -> bool:
        return isinstance(value, str) and value == "reference"
    return "; ".join(
        f"{key} = {q[key]!r}: " + ("'reference', the reference code's 1e-5 in (4.3)'s normalization (K x 1e-5, "
                                   "from_reference_decay)" if by_reference(given.get(key, DEFAULTS[key]))
                                   else "given") for key in ("lam_W", "lam_H"))


def _train_locked(runs, shared, plist, run_dirs) -> list[pathlib.Path]:
    """:func:`run_many` once it holds the lock of every run folder: the folders refused or cleared, the networks
    built (:func:`_engines`), every run recorded in its :class:`RunFolder` epoch by epoch (:func:`_train_epochs`),
    and each folder finished with its status, also when training raises."""
    p = plist[0]
    changed = provenance.changed_sources()
    if changed:  # the provenance would record the checkout on disk, not the code this process runs
        raise ValueError(f"nclib's source file{'s' if len(changed) > 1 else ''} {', '.join(changed)} changed on disk "
                         f"since this process imported {'them' if len(changed) > 1 else 'it'}: a run records the "
                         f"checkout on disk (git_commit, its changes), which is no longer the code this process "
                         f"runs; restart the Python process (the notebook's kernel, the sweep's workers) and call "
                         f"again")
    existing = [_runs.recorded_status(d) for d in run_dirs]
    if not p["resume"]:
        for d, q, status in zip(run_dirs, plist, existing):
            if status != "absent":
                if not q["overwrite"]:
                    raise RunExists(_exists_message(run_dirs, existing), d, status)
                _runs.clear_run_folder(d, check_only=True)  # only a run folder is ever deleted
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    # one checkout and one environment for all the runs
    # the threads of torch's CPU kernels too: a CPU run's arithmetic may depend on how its reductions are split
    # the runs' own folders (each out_dir, or the run folder where out_dir is the checkout itself) are output, not code,
    # and so are those of the call that started them (runs trained together may write into other out_dirs)
    outputs = [*dict.fromkeys(q["out_dir"] for q in plist), *run_dirs]
    if p["resume"]:
        outputs += first_output_folders(run_dirs)
    code = {**provenance.git_state(outputs=outputs), "git_output_folders": provenance.output_folders(outputs),
            "versions": provenance.versions(), "host_cpu": provenance.cpu_name(),
            "torch_threads": torch.get_num_threads()}
    # the provenance's notes made before _engines clears the folders being overwritten
    decays = [_decays_note({**shared, **r}, q) for r, q in zip(runs, plist)]
    engines, checkpoints, start = _engines(plist, run_dirs, existing, code)
    folders, active = [], []

    def stop(folder: RunFolder, status: str, error: str) -> None:
        active.remove(folder)
        folder.finish(status, error)

    sigterm = _locks.SigtermNoted()  # nothing noted outside the epoch loop
    try:
        try:
            # inside the try: where a later run's folder cannot be written, the folders made before it end "failed"
            for eng, d, note, c in zip(engines, run_dirs, decays, checkpoints):
                folders.append(RunFolder(eng, d, started, t_start, run_dirs, note, code, c))
                active.append(folders[-1])
            if not p["resume"]:
                for folder in list(active):
                    folder.record(0)
            with _locks.sigterm_deferred() as sigterm:  # the epoch loop only: a SIGTERM there is noted
                diverged = _train_epochs(engines, active, stop, p, start, t_start, sigterm,
                                         show_objective=len(folders) == 1)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            for folder in list(active):  # every run still open is written as failed, then the error is raised
                try:
                    stop(folder, "failed", error)
                except BaseException as also:  # noqa: PERF203 - each folder must be finished
                    exc.add_note(f"while writing run {folder.p['run_name']!r} as failed: "
                                 f"{type(also).__name__}: {also}")
            if sigterm.pending and not isinstance(exc, _locks.Terminated):  # the stop of a noted SIGTERM failed
                ended = _recorded(folders)
                said = {"stopped": "stopped with a checkpoint", "failed": "written as failed"}
                exc.add_note("; ".join([
                    "a SIGTERM had come (a job's time limit, scancel): noted, the runs were to stop with a checkpoint "
                    "at their next metric epoch when this error ended them",
                    *(f"the runs {what}: {', '.join(repr(str(d)) for d in ended[status])}"
                      for status, what in said.items() if ended[status])]))
            raise
        errors = []
        for folder in list(active):
            try:
                stop(folder, "finished", None)
            except BaseException as exc:  # noqa: PERF203 - finish every folder, then raise the first error
                errors.append(exc)  # a SIGTERM that ended this run's finish: RunFolder.finish wrote it failed
        if sigterm.pending and not any(isinstance(e, _locks.Terminated) for e in errors):
            # a SIGTERM noted in the epoch loop: raised now that the runs stopped with their checkpoints (or, noted
            # at the last metric epoch, finished)
            ended = sigterm.ended()
            for exc in errors:  # a run whose finish failed: its folder says how
                ended.add_note(f"while finishing a run: {type(exc).__name__}: {exc}")
            raise ended
        if errors:
            raise errors[0]
    except _locks.Terminated as exc:  # SIGTERM, wherever it landed: the runs it ended, as their folders record
        _name_ended(exc, folders)
        raise
    if diverged:
        raise TrainingDiverged("; ".join(diverged), run_dirs)
    return run_dirs


def _name_ended(exc: _locks.Terminated, folders) -> None:
    """Sets on ``exc`` (SIGTERM's exception, raised through :func:`_train_locked`) the runs of the
    :class:`RunFolder` s ``folders`` (every folder the call opened) that it ended, read from the status each folder
    records now, not from the runs the loop still held: ``stopped_runs`` ("stopped", with a checkpoint),
    ``failed_runs`` ("failed", also a run a second SIGTERM ended while it was being finished as diverged) and
    ``open_runs``, those and the runs that could not be written as failed (still "running" on disk).  A run that
    finished or diverged is no run it ended; the diverged ones, at the epoch of the stop or before it, are
    ``diverged_runs``, and a note of ``exc`` says why each diverged, as :class:`TrainingDiverged` would."""
    ended = _recorded(folders)
    exc.stopped_runs, exc.failed_runs, exc.diverged_runs = ended["stopped"], ended["failed"], ended["diverged"]
    exc.open_runs = [f.run_dir for f in folders if f.run_dir not in ended["finished"] + ended["diverged"]]
    why = [f.prov.get("error") or f"run {f.p['run_name']!r} diverged" for f in folders
           if f.run_dir in ended["diverged"]]
    if why:
        exc.add_note(f"diverged: {'; '.join(why)}")


def _recorded(folders) -> dict[str, list[pathlib.Path]]:
    """The run folders of the :class:`RunFolder` s ``folders`` by the status each records now
    (:func:`nclib.runs.recorded_status`: "dead" for one still "running" on disk), every status of
    :data:`nclib.runs.STATUSES` a key."""
    ended = {status: [] for status in _runs.STATUSES}
    for f in folders:
        ended[_runs.recorded_status(f.run_dir)].append(f.run_dir)
    return ended


def _engines(plist, run_dirs, existing, code) -> tuple[list[Engine], list, int]:
    """The networks of the runs of checked parameters ``plist`` (one :class:`Engine` each, on the data of
    :func:`nclib.data.load_for`), at epoch 0, or with ``resume`` at the epoch their checkpoints hold (refused by
    :func:`nclib.resume.check_resume`, before the data are loaded, and by :func:`nclib.resume.resume_checkpoints`);
    without ``resume`` the folders in ``run_dirs`` whose status in ``existing`` is not absent are cleared, only once
    the data and the networks were accepted.  Returns ``(engines, checkpoints, start)``: the checkpoints, None for
    runs that start, with their engine state taken out, and the epoch the runs continue from.  With
    ``grouped_adam`` the engines share one Adam."""
    p = plist[0]
    if p["resume"]:  # what can be refused without the data, before they are loaded (the letters: a minute and more)
        provs = check_resume(run_dirs, plist, code)
    ts = data.load_for(p)
    engines = [Engine(ts, q) for q in plist]
    checkpoints = [None] * len(engines)
    start = 0
    if p["resume"]:
        start, checkpoints = resume_checkpoints(run_dirs, provs, engines, ts)
        next_lr = lr_at(start + 1, p["lr"], p["lr_milestones"], p["lr_gamma"])
        for eng, c in zip(engines, checkpoints):
            eng.load_state_dict(c.pop("engine"), next_lr)  # popped: the loaded tensors need not outlive the load
    else:
        for d, status in zip(run_dirs, existing):  # only now: parameters data.load or the Engine refuse leave old runs
            if status != "absent":
                _runs.clear_run_folder(d)
    if p["grouped_adam"]:
        group_engines(engines)  # after the load: the group takes over the runs' Adam state
    return engines, checkpoints, start


def _train_epochs(engines, active, stop, p, start, t_start, sigterm, show_objective) -> list[str]:
    """The epochs ``start + 1 .. p["epochs"]`` of the runs of ``engines``, each at the rate of :func:`lr_at`; every
    ``metric_every`` epochs and at the last the :class:`RunFolder` s in ``active`` record their rows, and a run
    whose row diverges is stopped (``stop(folder, "diverged", why)``) after its later rows are dropped.  With
    ``max_train_s`` (seconds since ``t_start``) passed at a recorded epoch before the last, or a SIGTERM noted since
    the loop began (``sigterm``, the :class:`~nclib.locks.SigtermNoted` of :func:`nclib.locks.sigterm_deferred`,
    which the caller holds around this loop only: the signal handler sets a flag, read here at metric epochs, no
    host synchronisation added), every run still active saves its checkpoint and stops "stopped".  Returns why each
    diverged run diverged; ``sigterm`` is left ``pending`` where a SIGTERM was noted (the caller finishes the runs
    left, those of a signal noted at the last metric epoch, then raises its :meth:`~nclib.locks.SigtermNoted.ended`).
    A second SIGTERM while one is pending raises :class:`~nclib.locks.Terminated` here at once, until the metric
    epoch of the stop is reached: from there (:meth:`~nclib.locks.SigtermNoted.begin_stop`, also where
    ``max_train_s`` stops the runs) every SIGTERM is only noted, so that the runs end at one epoch, every checkpoint
    written and committed."""
    diverged = []
    names = [folder.p["run_name"] for folder in active]
    bar = tqdm(range(start + 1, p["epochs"] + 1), disable=not p["progress"], desc=", ".join(names), mininterval=1.0)
    for epoch in bar:
        lr = lr_at(epoch, p["lr"], p["lr_milestones"], p["lr_gamma"])
        if p["grouped_adam"]:  # one Adam for all the runs (a diverged run is stepped on, but not recorded)
            engines[0].group.set_lr(lr)
            train_epochs_together(engines)
        for folder in ([] if p["grouped_adam"] else active):  # queues each run's epoch (a GPU: on its stream)
            folder.engine.set_lr(lr)
            folder.engine.train_epoch()
        if epoch % p["metric_every"] == 0 or epoch == p["epochs"]:
            for folder in active:
                folder.record(epoch)
            # out of time, or a job's SIGTERM noted (a flag, read only here): stop, unless at the last epoch
            noted = sigterm.pending
            stopping = epoch < p["epochs"] and (noted or (
                p["max_train_s"] is not None and time.perf_counter() - t_start >= p["max_train_s"]))
            if stopping or noted:  # the stop (at the last epoch the finish) begins: a SIGTERM now only noted
                sigterm.begin_stop()
            for folder in list(active):
                for row in folder.rows_to_check(wait=epoch == p["epochs"] or stopping):
                    why = folder.divergence(row)
                    if why is not None:
                        folder.drop_rows_after(row["epoch"])
                        diverged.append(why)
                        stop(folder, "diverged", why)
                        break
                    if show_objective:
                        bar.set_postfix(objective=f"{row['objective']:.3e}", refresh=False)
            if not active:
                break
            if stopping:
                for folder in active:  # every run's training time ends here, before any checkpoint is written
                    folder.stop_clock()
                # each run keeps its state and stops; every checkpoint is written before any is committed, so
                # that a write that fails leaves the runs at one epoch, their previous checkpoints
                for folder in active:
                    folder.save_checkpoint(epoch)
                for folder in active:
                    folder.commit_checkpoint(epoch)
                for folder in list(active):
                    stop(folder, "stopped", None)
                break
    bar.close()
    return diverged


# --------------------------------------------------------------------------------------------- CLI

#: The choices the command line lists in ``--help`` (the checks themselves are those of :func:`check_params`).
CHOICES = {"dataset": data.DATASETS, "class_order": data.CLASS_ORDERS, "selection": data.SELECTIONS,
           "normalization": data.NORMALIZATIONS, "init": INITS, "precision": PRECISIONS, "device": ("auto", "cpu", "cuda", "cuda:<i>"),
           "cuda_graph": ("auto", "true", "false"), "async_metrics": ("auto", "true", "false")}

_EPILOG = """output: one run folder per L, <out-dir>/<run name>, holding params.json, history.csv,
class_accuracy.csv, provenance.json (and checkpoint.pt while a run is stopped); out-dir defaults to
results/runs/ in the repository; the run name is <run-tag>-L<L>, or without --run-tag
<dataset>-L<L>-<bias|nobias>-seed<seed> (the names of the training notebook); --run-name names the folder of a
single L exactly.  A folder that holds a run is never replaced without --overwrite true; --resume true continues a
stopped run from its checkpoint, and a run whose process was killed or failed from its last checkpoint, if it has
one (checkpoints are written only where a run stops: at --max-train-s, or at the metric epoch after a SIGTERM;
without one the run must start again).
--resume auto does what the training notebook does, so that one command serves every job of a run split over several
(with --max-train-s below the job's time limit): it starts the runs when no folder holds them, continues them from their
checkpoints when they stopped, prints their folders when they finished with these parameters, and refuses anything else.
Errors in the arguments print one line and exit with status 2; a run that diverges exits with status 1, after the status
line of every run (the other runs go on to their end or their stop; leave the diverged one out of later calls).  SIGTERM
(a job's time limit, scancel) stops the runs that train at their next metric epoch, each with its checkpoint, and exits
with status 143; the job's grace period before SIGKILL (Slurm's KillWait, or sbatch --signal=B:TERM@<seconds> with this
command exec-ed as the job's batch shell, which alone B: signals) should exceed one metric interval and a checkpoint's
write.  A second SIGTERM before the runs reach that metric epoch, or one outside training, writes the open runs as
failed; once the stop has begun, further SIGTERMs do not cut it short.  A run that diverged before the stop, or at its
metric epoch, is named with its status line and the --L that leaves it out, and the status stays 143.  A flag's value is
read by nclib.parameters.parse_value, the grammar of every command line of the repository (--counts [500,100,20] or a
preset name; also, for short, --counts 500,100,20), but --L and --lr-milestones, which take integers apart (--L 1 3 6,
--lr-milestones 6000; --lr-milestones alone for none)."""


def _parser() -> argparse.ArgumentParser:
    """The command line's flags: one per key of :data:`DEFAULTS` (``max_train_s`` is ``--max-train-s``), each value
    read by :func:`nclib.parameters.parse_value`, and ``--run-tag``."""
    ap = parameters.one_line_errors(argparse.ArgumentParser(  # argparse's refusals as main's: one line
        prog="python -m nclib.train", description=__doc__.split("\n")[0], epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter))

    def value_of(key):  # parse_value for one flag; its refusal reaches the user as argparse's error line
        def read(text):
            try:
                return parse_value(text, key)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
        return read

    for name, default in DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        choices = f"; one of {', '.join(CHOICES[name])}" if name in CHOICES else ""
        if name == "L":
            ap.add_argument("--L", nargs="+", type=int, default=[1], help="one run per value (default 1)")
        elif name == "lr_milestones":
            ap.add_argument(flag, nargs="*", type=int, default=None, help=f"default {default}")
        elif name == "lam_W":
            ap.add_argument(flag, nargs="*", type=value_of("lam_W"), default=None,
                            help=f"one value for every head layer, one per layer, or reference (default {default})")
        elif name == "counts":
            ap.add_argument(flag, type=value_of(name), default=None,
                            help=f"a preset, {' or '.join(sorted(imbalance.PROFILES))} (Section 5's profiles), or the "
                                 "counts: [n1,n2,...] or n1,n2,... (default the dataset's own: cifar10's, the "
                                 "letters' emnist-letters, [20,10,5] for synthetic)")
        elif name == "resume":
            ap.add_argument(flag, type=value_of(name), default=default,
                            help=f"true/false/auto (default {default}; auto: see below)")
        elif isinstance(default, bool):
            ap.add_argument(flag, type=value_of(name), default=default, help=f"true/false (default {default})")
        else:
            shown = {"out_dir": "results/runs/ in the repository", "run_name": "see below",
                     "data_path": "none; cifar10 and emnist-letters need one (a torchvision root or an .npz), "
                                  "letters-synthetic reads the .npz of nclib.letters.save_letters_synthetic or, "
                                  "with none, renders"}.get(name, default)
            ap.add_argument(flag, type=value_of(name), default=default, help=f"default {shown}{choices}")
        if name == "run_name":
            ap.add_argument("--run-tag", type=value_of("run_tag"), default=None,
                            help="folders <run-tag>-L<L>, as the notebook's run_tag")
    return ap


def main(argv=None) -> list[pathlib.Path]:
    """``python -m nclib.train --dataset cifar10 --data-path ... --L 1 3 6 ...``: one run (objective (4.3),
    Section 5) per L, trained side by side by :func:`run_many`; the shell form of :ref:`ch-train`.  Each run's
    status line goes to stderr and its folder to stdout.  A refused argument (by argparse, as an unknown flag, or a
    ValueError) or run folder prints one line to stderr (and, for runs of which some can continue, the ``--L`` that
    continues them) and exits with status 2, a divergence (:class:`TrainingDiverged`: after every run's status line
    and the ``--L`` of the runs that did not diverge) or a file that cannot be written (OSError; its notes on lines
    of their own, as that a SIGTERM had come whose stop it cut short and the runs it left failed) with status 1,
    without a traceback.  SIGTERM (a batch job's time limit, ``scancel``) ends it as Ctrl-C would, its folders'
    locks given back (:func:`nclib.locks.sigterm_raises`): sent while the runs train, they stop with a checkpoint at
    their next metric epoch, as at ``--max-train-s``, and ``--resume true`` (or ``auto``) continues them; sent
    outside training (while a run's folder is opened or finished), or a second time while the stop is pending
    (before the runs reach that metric epoch; once they have, a further SIGTERM is only noted and the stop goes on),
    the runs still open are written as failed with its error (:func:`run_many`).  One line on stderr names the folders
    stopped with a checkpoint, those written as failed and those that could not be (each with its error on a line
    of its own), and those that diverged, or says that no run was open (the signal came before the runs' folders
    were opened, as while the data loaded, or once every run had trained its last epoch: nothing is stopped, written
    as failed or diverged); a run that diverged before the signal, or at the metric epoch of its stop, is said as a
    divergence is, its status line before that line, why it diverged and the ``--L`` that leaves it out of later
    calls after it.  The status is 143 (128 + SIGTERM), as the signal itself would give, also where a run diverged:
    the process was terminated, and the next job (``--resume auto``) is told of the diverged run by its refusal."""
    ns = vars(_parser().parse_args(argv))
    try:
        with _locks.sigterm_raises():
            return _command(ns)
    except _locks.Terminated as exc:  # the runs run_many ended: stopped with a checkpoint, or written as failed
        opened, failed = getattr(exc, "open_runs", []), getattr(exc, "failed_runs", [])
        stopped, diverged = getattr(exc, "stopped_runs", []), getattr(exc, "diverged_runs", [])
        unwritten = [d for d in opened if d not in failed and d not in stopped]
        named = {"stopped with a checkpoint at the metric epoch after the signal (continue them from it with "
                 "--resume true or auto)": stopped, "written as failed": failed,
                 "that could not be written as failed": unwritten, "that diverged (their status lines above)": diverged}
        done = ("; ".join(f"the runs {what}: {', '.join(repr(str(d)) for d in folders)}"
                          for what, folders in named.items() if folders) + "; their folders unlocked"
                if opened or diverged else
                "no run was open, none is stopped or written as failed (the signal came before the runs' folders "
                "were opened, as while the data loaded, or once every run had trained its last epoch)")
        print(f"python -m nclib.train: {exc}: {done}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):  # a run not written as failed, why runs diverged, the --L left
            print(f"python -m nclib.train: {note}", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM) from None


def _command(ns: dict) -> list[pathlib.Path]:
    """What :func:`main` does with its parsed arguments ``ns``, SIGTERM aside."""
    Ls, tag, base = ns.pop("L"), ns.pop("run_tag"), ns.pop("run_name")
    members = []

    def flag_L(folders) -> str:  # the --L of the runs in these folders (one out_dir: their names tell them apart)
        names = {pathlib.Path(d).name for d in folders}
        return "--L " + " ".join(str(m["L"]) for m in members if m["run_name"] in names)

    try:
        if min(Ls) < 1:  # checked here, not by run_names or check_params, so that the refusal names the flag
            raise ValueError(f"--L must hold positive integers (head depths), got {min(Ls)}")
        repeated = sorted({L for L in Ls if Ls.count(L) > 1})
        if repeated:  # as run_names refuses it, but naming the flag
            raise ValueError(f"--L must name each head depth once (one run per L), got --L {' '.join(map(str, Ls))}: "
                             f"{', '.join(map(str, repeated))} given more than once")
        if isinstance(ns["counts"], str) and "," in ns["counts"]:  # n1,n2,... for [n1,n2,...]
            ns["counts"] = parse_value(f"[{ns['counts']}]", "counts", "--counts")
        for name in ("lr_milestones", "lam_W"):
            if ns[name] is None:
                ns[name] = DEFAULTS[name]
            elif name == "lam_W" and len(ns[name]) == 1:
                ns[name] = ns[name][0]
        if base is not None and (tag is not None or len(Ls) > 1):
            raise ValueError(f"run_name names the folder of one run; with {len(Ls)} values of L (or with "
                             f"--run-tag) use --run-tag, which names them <run-tag>-L<L>")
        names = [base] if base is not None else run_names(Ls, tag, dataset=ns["dataset"], bias=ns["bias"],
                                                           seed=ns["seed"])
        members = [dict(L=L, run_name=n) for L, n in zip(Ls, names)]
        if isinstance(ns["resume"], str):
            if ns["resume"].lower() != "auto":
                raise ValueError(f"resume must be true, false or auto, got {ns['resume']!r}")
            if ns["overwrite"] is True:
                raise ValueError("resume auto never deletes a run, and overwrite true would start the runs again "
                                 "in every job: pass one of them")
            todo, out = run_planned(members, **{**ns, "resume": False})
            if todo == "skip":
                print(f"python -m nclib.train: finished already, read, not trained: {', '.join(names)}",
                      file=sys.stderr)
        else:
            out = run_many(members, **ns)
    except TrainingDiverged as exc:  # the other runs went on: their status lines first
        _report(exc.run_dirs)
        print(f"python -m nclib.train: diverged: {exc}", file=sys.stderr)
        others = [d for d in exc.run_dirs if _runs.recorded_status(d) != "diverged"]
        if others:
            print(f"python -m nclib.train: leave the diverged runs out of later calls: {flag_L(others)}",
                  file=sys.stderr)
        raise SystemExit(1) from None
    except _locks.Terminated as exc:  # SIGTERM (main says what it ended); the runs that diverged said as above
        diverged = {pathlib.Path(d).name for d in getattr(exc, "diverged_runs", [])}
        _report(getattr(exc, "diverged_runs", []))
        others = [m["run_name"] for m in members if m["run_name"] not in diverged]
        if diverged and others:
            exc.add_note(f"leave the diverged runs out of later calls: {flag_L(others)}")
        raise
    except ValueError as exc:  # the argument or run folder refused, named in the message
        print(f"python -m nclib.train: error: {exc}", file=sys.stderr)
        if getattr(exc, "continuable", ()):  # runs in different states: the ones that continue in a call of their own
            print(f"python -m nclib.train: to continue the runs that can, call with {flag_L(exc.continuable)} "
                  f"(and --resume auto or true)", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:  # a folder that cannot be written, a full disk: the file is in the message
        print(f"python -m nclib.train: {type(exc).__name__}: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):  # a SIGTERM whose stop it cut short, the runs it failed
            print(f"python -m nclib.train: {note}", file=sys.stderr)
        raise SystemExit(1) from None
    _report(out)
    return out


def _report(paths) -> None:
    """The command line's report of its runs: each run's status line on stderr, its folder on stdout."""
    for path in paths:
        try:
            params, history, prov = load_run(path)
        except ValueError as exc:  # a folder the call left without a run: say so, and go on with the others
            print(f"python -m nclib.train: {pathlib.Path(path).name}: {exc}", file=sys.stderr)
            continue
        print(f"python -m nclib.train: {path.name}: {prov['status']} at epoch {int(history['epoch'][-1])} of "
              f"{params['epochs']}", file=sys.stderr)
        print(path)


if __name__ == "__main__":
    main()
