"""The training engine of Section 5 / Appendix C: minimizes objective (4.3) and records the collapse metrics.

``run(**params)`` trains one network (an MLP backbone and an L-layer linear head, :mod:`nclib.models`) on
one imbalanced subset (:mod:`nclib.data`) and writes one run folder::

    params.json       every parameter of the call that started the run, defaults filled in (a resumed run keeps
                      it: its execution keys, checkpoint_every and max_train_s among them, are that call's)
    history.csv       one row per metric epoch (epoch 0 = the initialization)
    class_accuracy.csv  per metric epoch the training accuracy of each class (which classes a run misses)
    provenance.json   git commit and dirty flag (and the output folders left out of it), package versions,
                      device, precision, wall time, data sha256, command line, status ("running", "finished",
                      "stopped", "diverged" or "failed"), and one segment per call that trained it
                      (``max_train_s``, ``checkpoint_every`` and ``resume``)
    checkpoint.pt     while a run can be continued (stopped, and a failed or dead run that wrote one before: at
                      a stop, or every ``checkpoint_every`` epochs):
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
``scancel``) that comes while the runs train stops them the same way at their next metric epoch (or, where it comes
as they write a periodic checkpoint, at that checkpoint's epoch), then ends the process (:func:`run_many`).  A run
killed outright (SIGKILL, an out-of-memory kill, a lost node, a preemption
without grace period) writes nothing more: with ``checkpoint_every`` a call also writes a checkpoint every that many
epochs while the runs train, so that ``resume=True`` continues such a run from its last one, at most that many
epochs lost (without, from its last stop's checkpoint, or from epoch 0).

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

import datetime
import pathlib
import time

import torch
from tqdm import tqdm

from . import ROOT, _checks, data, parameters, provenance  # noqa: F401 (ROOT re-exported)
from . import checkpoints as _checkpoints
from . import locks as _locks
from . import runplan as _runplan
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
    runs in different states) is refused by :func:`nclib.runplan.plan_runs` naming the folder, and finished runs whose
    data file now holds other data by :class:`~nclib.runs.OtherData` (a :class:`~nclib.runs.RunExists`).
    Parameters are checked as by :func:`run_many`."""
    return _plan(_checked_runs(runs, shared))


def _plan(plist: list[dict]) -> str:
    """:func:`plan` of checked parameters (:func:`_checked_runs`); a "skip" only once the data are found to be the
    runs' own (:func:`_refuse_other_data`)."""
    todo = _runplan.plan_runs([_run_dir(q) for q in plist], overwrite=plist[0]["overwrite"],
                              params=[defining_params(q) for q in plist],
                              devices=[parameters.required_device_type(q["device"]) for q in plist])
    if todo == "skip":
        _refuse_other_data(plist)
    return todo


def _refuse_other_data(plist: list[dict]) -> None:
    """Refuse to read back finished runs (checked parameters ``plist``, trained together: one data set) as the result
    of a call whose data file now holds other data (:func:`nclib.runplan.refuse_other_data`: the file rewritten at the
    same path since, say).  Refused, not trained again: a careful researcher wants to know that the file changed, and
    a finished run is never deleted unasked (:class:`~nclib.runs.OtherData`, a :class:`~nclib.runs.RunExists`,
    naming the folder, both checksums and the path; ``overwrite=True`` trains the runs again on the data there now,
    deleting them)."""
    _runplan.refuse_other_data(plist[0], [_run_dir(q) for q in plist],
                               f"put the run's data back at that path, give the runs another run name or out_dir, "
                               f"or train them again on these data with "
                               f"{setting_text('overwrite', True, without='--resume')}, which deletes them")


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
    run stops at its next metric epoch with status "stopped" and a checkpoint; ``checkpoint_every``: None, or
    the epochs, a multiple of ``metric_every``, between the checkpoints a call writes while its runs train, from
    which a run killed outright continues; ``resume``: continue a stopped, dead or failed run from its checkpoint;
    every parameter but :data:`EXECUTION_KEYS` must equal the first call's, and the code, device (type and name)
    and torch version the first call's).  Raises ValueError for bad parameters
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
    that a SIGTERM had come and naming every run stopped or written as failed.  Where the finishes of several runs
    fail (a full disk, a SIGTERM), the first run's error is raised, every other run's in a note that names it; where
    a SIGTERM noted in the loop is pending and no finish was ended by one, that Terminated is raised instead, every
    failed finish in its notes.
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
                errors.append((folder, exc))  # a SIGTERM that ended this run's finish: RunFolder.finish wrote it failed
        said = [f"while finishing run {f.p['run_name']!r}: {type(e).__name__}: {e}" for f, e in errors]
        if sigterm.pending and not any(isinstance(e, _locks.Terminated) for _, e in errors):
            # a SIGTERM noted in the epoch loop: raised now that the runs stopped with their checkpoints (or, noted
            # at the last metric epoch, finished)
            ended = sigterm.ended()
            for note in said:  # a run whose finish failed: its folder says how
                ended.add_note(note)
            raise ended
        if errors:  # the first error, every other run's in its notes (a SIGTERM's too, or an OSError's)
            for note in said[1:]:
                errors[0][1].add_note(note)
            raise errors[0][1]
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


def _write_checkpoints(active, epoch: int) -> None:
    """The checkpoints of metric epoch ``epoch`` of the :class:`RunFolder` s in ``active``, a stop's or a periodic one:
    every run's training clock stopped first (the writing is no training: ``train_time_s`` and the history's
    ``wall_time`` leave it out), then every checkpoint written before any is committed, so that a write that fails
    leaves the runs at one epoch, their previous checkpoints."""
    for folder in active:
        folder.stop_clock()
    for folder in active:
        folder.save_checkpoint(epoch)
    for folder in active:
        folder.commit_checkpoint(epoch)


def _train_epochs(engines, active, stop, p, start, t_start, sigterm, show_objective) -> list[str]:
    """The epochs ``start + 1 .. p["epochs"]`` of the runs of ``engines``, each at the rate of :func:`lr_at`; every
    ``metric_every`` epochs and at the last the :class:`RunFolder` s in ``active`` record their rows, and a run
    whose row diverges is stopped (``stop(folder, "diverged", why)``) after its later rows are dropped.  With
    ``max_train_s`` (seconds since ``t_start``) passed at a recorded epoch before the last, or a SIGTERM noted since
    the loop began (``sigterm``, the :class:`~nclib.locks.SigtermNoted` of :func:`nclib.locks.sigterm_deferred`,
    which the caller holds around this loop only: the signal handler sets a flag, read here at metric epochs, no
    host synchronisation added), every run still active saves its checkpoint and stops "stopped".  With
    ``checkpoint_every``, at each metric epoch before the last that is a multiple of it and no stop's, every run
    still active, its rows checked for divergence first, saves its checkpoint, every one is then committed (the
    stop's two phases: a write that fails leaves all at their previous checkpoint) and the runs train on, their
    status "running", their clocks stopped while the checkpoints are written (:meth:`RunFolder.stop_clock`, then
    :meth:`RunFolder.restart_clock`: the writing is no training time): a run killed later (SIGKILL, a lost node) is
    "dead" and continues from it.  While they are written every SIGTERM is only noted, a second one too
    (:meth:`~nclib.locks.SigtermNoted.held`), so that no signal leaves the runs' checkpoints at two epochs; one noted
    by the time every checkpoint is committed stops the runs there, "stopped", each holding its checkpoint of that
    epoch (sooner than the next metric epoch, within a job's grace period).  Returns why each diverged run diverged;
    ``sigterm`` is left ``pending`` where a SIGTERM was noted (the caller finishes the runs left, those of a signal
    noted at the last metric epoch, then raises its :meth:`~nclib.locks.SigtermNoted.ended`).  A second SIGTERM
    while one is pending raises :class:`~nclib.locks.Terminated` here at once, until the metric epoch of the stop is
    reached: from there (:meth:`~nclib.locks.SigtermNoted.begin_stop`, also where ``max_train_s`` stops the runs)
    every SIGTERM is only noted, so that the runs end at one epoch, every checkpoint written and committed."""
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
            # a periodic checkpoint, where no stop writes one and the run goes on after it
            periodic = (not stopping and epoch < p["epochs"] and p["checkpoint_every"] is not None
                        and epoch % p["checkpoint_every"] == 0)
            if stopping or noted:  # the stop (at the last epoch the finish) begins: a SIGTERM now only noted
                sigterm.begin_stop()
            for folder in list(active):  # every row checked before a checkpoint: a diverged run is not saved
                for row in folder.rows_to_check(wait=epoch == p["epochs"] or stopping or periodic):
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
            if stopping:  # each run keeps its state and stops
                _write_checkpoints(active, epoch)
                for folder in list(active):
                    stop(folder, "stopped", None)
                break
            if periodic:  # as a stop writes them, every SIGTERM only noted meanwhile
                with sigterm.held():
                    _write_checkpoints(active, epoch)
                if sigterm.pending:  # noted by now: every run holds its checkpoint of this epoch, and stops here
                    sigterm.begin_stop()
                    for folder in list(active):
                        stop(folder, "stopped", None)
                    break
                for folder in active:
                    folder.restart_clock()
    bar.close()
    return diverged


# --------------------------------------------------------------------------------------------- CLI

def main(argv=None) -> list[pathlib.Path]:
    """``python -m nclib.train --dataset cifar10 --data-path ... --L 1 3 6 ...``: the command line of
    :mod:`nclib.traincli` (its flags, messages and exit statuses are told there), one run per ``--L`` trained side
    by side by :func:`run_many`; the shell form of :ref:`ch-train`.  Returns the runs' folders."""
    from .traincli import main as command_line  # it imports this module: imported here, when called
    return command_line(argv)


if __name__ == "__main__":
    main()
