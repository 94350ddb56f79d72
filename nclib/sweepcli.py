"""The command line of a sweep, ``python -m nclib.sweep`` (:ref:`ch-sweeps`): its flags read into a call of
:func:`nclib.sweep.run_sweep`, :func:`nclib.sweep.list_points`, :func:`nclib.sweep.run_point` or
:func:`nclib.sweeptable.summary`, the table printed, and the exit status.  :mod:`nclib.sweep` takes up
:func:`main` and :func:`exit_status`, so ``python -m nclib.sweep`` runs this command line::

    python -m nclib.sweep --grid lam_W=1e-4,1e-3,1e-2 --grid seed=0,1 \\
        --set dataset=synthetic --set epochs=200 --set width=64 --set batch_size=full \\
        --out-dir results/runs/decays [--workers 2]

``--grid NAME=V1,V2,...`` and ``--set NAME=VALUE`` take any parameter of :data:`nclib.train.DEFAULTS`; each
value is read by :func:`nclib.parameters.parse_value`, the grammar of every command line of the repository (a
list in brackets, ``--set counts=[500,100,20]``, ``--grid lr_milestones=[100],[100,150]``; a path or a name as
given; else a number, ``true``/``false``/``none`` or the text).  ``--tie NAME=GRIDNAME`` gives the parameter NAME
the value of the grid parameter GRIDNAME at every point (``--grid lam_W=1e-3,1e-2 --tie lam_H=lam_W`` sweeps the two
decays together, lam_W = lam_H; from Python ``tie={"lam_H": "lam_W"}``): the run folder is named after the grid
values alone (``lam_W-0.001``) and the table has a column for the tied parameter too.  ``--summary-only`` rewrites
the table from the run folders and starts no run (``--grid``, ``--set``, ``--tie``, ``--restart-refused``,
``--workers``, ``--scheduler`` and ``--resources`` are refused with it; a folder without runs, or none, is refused
with status 1, :class:`nclib.sweeptable.NoRuns`: no point has a run yet); with ``--forget-absent`` it first forgets, in
``sweep.json``, the points that no run folder holds and the calls that made only such points
(:func:`nclib.sweepmanifest.forget_absent`).
``--list-points`` prints the grid's points, numbered from 0, and ``--point I`` trains point I alone in this process:
the tasks of a job array (:func:`nclib.sweep.run_point`); neither takes ``--workers``, ``--scheduler`` or
``--resources``, nor ``--list-points``, which trains nothing, ``--restart-refused``.  The command prints the table's
main columns (each error cut short: ``sweep.csv`` holds it whole; with ``--point`` and ``--list-points``, which
write no ``sweep.csv``, a cut error follows whole on stderr, and ``sweep.json`` keeps the error of a run whose folder
does not record it) and exits with status 1 when a run failed, carries an error or was never trained
(:func:`exit_status`; a divergence is a result, status 0; ``--list-points`` lists points, no outcome, and exits with 0)
or the file system refuses flock locks (:class:`nclib.locks.LockUnsupported`), 2 for a usage error (a parameter, value
or combination of flags refused, a ``--scheduler`` address refused or one where no scheduler answers, the call then left
out of ``sweep.json``, an ``--out-dir`` that cannot be made or written, :func:`nclib.sweepplan.writable_out_dir`:
``--summary-only`` prints the table of a folder it cannot write and says in a note that ``sweep.csv`` was not written),
3 when another sweep is running in the same ``--out-dir`` (:class:`nclib.sweepmanifest.SweepBusy`).
"""
from __future__ import annotations

import argparse
import pathlib
import signal
import sys
import warnings

import pandas as pd

from . import locks, parameters
from .grid import parse_fixed, parse_grid, parse_tie
from .rounding import written
from .runs import OtherData, RunExists
from .sweepmanifest import MANIFEST, SweepBusy, forget_absent
from .sweepplan import writable_out_dir
from .sweeptable import SUMMARY, NoRuns, TableNotWritten, summary

#: The command line's name, in its messages.
PROG = "python -m nclib.sweep"

#: What ``--help`` says the command does.
DESCRIPTION = """\
Train a grid of runs of nclib.train.run on Dask (a local cluster by default), one run
folder per grid point under --out-dir, and write the table of every run, sweep.csv.
Running the same command again keeps finished runs and resumes stopped ones."""

#: What ``--help`` says after the options: values, exit statuses, a job array.
EPILOG = """\
values:
  --grid lam_W=1e-3,1e-2       comma-separated values, one run per combination
  --set 'counts=[500,100,20]'  a list in brackets; --grid 'lr_milestones=[100],[100,150]'
  true/false/none, numbers, else the text as given (a path, a name)

exit status:
  0  no run failed or carries an error, and every point has a run (stopped, dead
     and diverged runs included: the table's status says which); --list-points
  1  a run failed or carries an error, or a point has no run yet (absent), or no
     point has one; or the file system refuses flock locks
  2  a usage error: a parameter, value or combination of options refused, a
     --scheduler that does not answer (nothing recorded), or an --out-dir that
     cannot be made or written (a file, a read-only file system)
  3  another sweep is running in --out-dir
  143  sent SIGTERM (a job's time limit, scancel): with --point, a run training
       stops with a checkpoint at its next metric epoch (the next task resumes
       it; a second SIGTERM before that epoch, or one outside training, writes
       it failed; one once the stop has begun does not cut it short), its
       folder unlocked

a job array (Slurm), one point per task:
  ARGS="--grid lam_W=1e-3,1e-2 --grid seed=0,1 --set dataset=synthetic \\
        --set batch_size=full --out-dir runs/d"
  .venv/bin/python -m nclib.sweep $ARGS --list-points   # the points, 0 to 3
  sbatch --array=0-3 \\
    --wrap "OMP_NUM_THREADS=1 .venv/bin/python -m nclib.sweep $ARGS --point \\$SLURM_ARRAY_TASK_ID"
  # OMP_NUM_THREADS=1: a CPU run resumes only with the torch threads it started with,
  # one in a Dask worker
  .venv/bin/python -m nclib.sweep --summary-only --out-dir runs/d   # once the tasks have ended

book/training/sweeps.md (the chapter "Sweeps on Dask") gives the details."""


#: What the command says when SIGTERM ends a sweep on a local cluster (:func:`main`).
LOCAL_SWEEP_ENDED = ("a local cluster is closed with it, and the runs its workers were training are left dead, each "
                     "with this host's lock file: a later call on this host takes them over, one on another host "
                     "refuses them until the files are removed; in a batch job, train the points as the tasks of a "
                     "job array (--point), which stop their runs with a checkpoint and unlock them")


def main(argv=None) -> pd.DataFrame:
    """``python -m nclib.sweep --grid NAME=V1,V2 ... --set NAME=VALUE ... --out-dir DIR``:
    :func:`nclib.sweep.run_sweep` from the shell (:ref:`ch-sweeps`); prints the table's main columns and the path of
    sweep.csv.  With ``--list-points`` the grid's points (:func:`nclib.sweep.list_points`), with ``--point I`` the
    one point I trained here (:func:`nclib.sweep.run_point`, a task of a job array; an error the table cuts short
    follows whole on stderr, and the last line is the path of the run folder, or of sweep.json where the run has no
    folder), with ``--summary-only`` the table rebuilt from the folders (:func:`nclib.sweeptable.summary`).
    Warnings (runs of several code versions, :class:`nclib.sweeptable.MixedCodeVersions`) are printed as notes on
    stderr.  SIGTERM (a job's time limit, ``scancel``) ends it as Ctrl-C would, with status 143 (128 + SIGTERM), as the
    signal itself would: the run of ``--point``, where it was training, stopped with a checkpoint at its next metric
    epoch (as ``max_train_s`` stops it; the next task resumes it; a further SIGTERM once that stop has begun is only
    noted), or, where the task had opened it but the signal came outside training (or twice before that epoch),
    written as failed with its error, its folder's lock given back either way
    (:func:`nclib.locks.sigterm_raises`), the message naming that folder and what it holds only then; a sweep's
    local cluster closed, the runs its workers were training left dead with this host's lock files
    (:data:`LOCAL_SWEEP_ENDED`), which a later call on this host takes over and one on another host refuses
    (:class:`nclib.locks.RunLockedElsewhere`) until they are removed: in a batch job, whose next job may run on
    another node, a job array's tasks (``--point``) end their runs cleanly."""
    ap = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="a parameter of nclib.train.run and its values (repeat for more parameters)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="fixed",
                    help="a parameter of nclib.train.run fixed for every run (repeatable)")
    ap.add_argument("--tie", action="append", default=[], metavar="NAME=GRIDNAME",
                    help="a parameter that takes the value of a grid parameter at every point (lam_H=lam_W)")
    ap.add_argument("--out-dir", required=True, help="the folder of the run folders and sweep.csv")
    ap.add_argument("--workers", type=int, default=None,
                    help="local cluster size (default: one per core but no more than the runs to train, or one "
                         "when the runs ask for resources such as a GPU)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, tcp://HOST:8786")
    ap.add_argument("--resources", action="append", default=[], metavar="NAME=AMOUNT",
                    help="Dask resources each run asks for (default GPU=1 for device=cuda)")
    ap.add_argument("--restart-refused", action="store_true",
                    help="train again from the start a stopped, dead or failed run whose resume is refused "
                         "(another commit, device, CPU model or torch threads), deleting it; a note names each")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--list-points", action="store_true",
                    help="print the grid's points (index, run name, what its folder holds, its run's error) and "
                         "train nothing")
    ap.add_argument("--point", type=int, default=None, metavar="I",
                    help="train only point I of the grid, in this process (a task of a job array: "
                         "--point $SLURM_ARRAY_TASK_ID); no sweep.csv: --summary-only writes it afterwards")
    ap.add_argument("--summary-only", action="store_true",
                    help="rewrite sweep.csv from the run folders and sweep.json only: what the folders and the last "
                         "sweep or task recorded, no data loaded (a run found trained on other data stays an error "
                         "until a sweep or a task checks its data again), nothing trained")
    ap.add_argument("--forget-absent", action="store_true",
                    help="with --summary-only: first forget, in sweep.json, the points that no run folder holds and "
                         "the calls that made only such points (an interrupted call, a grid given by mistake, a "
                         "cancelled job array); the error of a point that failed before its folder was written is "
                         "forgotten with it, and printed")
    ns = ap.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught, locks.sigterm_raises():
            warnings.simplefilter("always")
            df = _command(ns)
    except locks.Terminated as exc:  # a job's time limit, scancel: what it was training is recorded, and unlocked
        failed = getattr(exc, "failed_run", None)  # a task's run, where the signal ended it (nclib.sweep.run_point)
        stopped = getattr(exc, "stopped_run", None)
        diverged = getattr(exc, "diverged_run", None)
        done = (f"its run {str(stopped)!r} stopped with a checkpoint at the metric epoch after the signal (or at "
                f"the one whose periodic checkpoint it was writing as it came), its folder unlocked: the next task "
                f"(or sweep) resumes it" if stopped is not None else
                f"its run {str(diverged)!r} diverged (the table gives it as diverged), its folder unlocked"
                if diverged is not None else
                None if failed is None else f"its run {str(failed)!r} is written as failed, its folder unlocked")
        if ns.point is None:
            done = None if ns.summary_only or ns.list_points or ns.scheduler else LOCAL_SWEEP_ENDED
        ap.exit(128 + signal.SIGTERM, f"{ap.prog}: {exc}{f': {done}' if done else ''}\n")
    except NoRuns as exc:  # no point has a run yet (no task has started): the status of a point without a run
        ap.exit(1, f"{ap.prog}: error: {exc}\n")
    except ValueError as exc:
        ap.error(str(exc))
    except SweepBusy as exc:  # not a usage error: the same command works once the other sweep has ended
        ap.exit(3, f"{ap.prog}: {exc}\n")
    except locks.LockUnsupported as exc:  # nor a busy folder: a retry would never succeed
        ap.exit(1, f"{ap.prog}: error: {exc.strerror}\n")
    for w in caught:
        print(f"{ap.prog}: note: {w.message}", file=sys.stderr)
    if ns.list_points:
        errors = df["error"].notna().any()  # a column of errors only where a point has one, cut short
        print((df.assign(error=[_cut(e) for e in df["error"]]) if errors else df.drop(columns="error"))
              .to_string(index=False))
        _whole_errors(df, ap.prog)
        return df
    view = df[[c for c in ("run_name", "status", "epoch", "final_objective", "final_train_acc", "final_nc1",
                           "recorded", "error") if c in df.columns]].copy()  # recorded: only where a run is not
    if "error" in view and view["error"].isna().all():  # no run failed: no column of empty errors
        view = view.drop(columns="error")
    elif "error" in view:
        view["error"] = [_cut(e) for e in view["error"]]
    short = {"final_objective": "objective", "final_train_acc": "train_acc", "final_nc1": "nc1"}
    formats = {"epoch": lambda v: f"{v:.0f}", "final_objective": lambda v: written(v, 4),
               "final_train_acc": lambda v: f"{v:.3f}",
               "final_nc1": lambda v: written(v, 3)}  # numbers as the book writes them, no E-notation
    # blank where a run has none (na_rep alone leaves a float column's epochs as 4.0, an Int64 one's gaps as <NA>)
    formatters = {short.get(c, c): (lambda v, f=f: "" if pd.isna(v) else f(v)) for c, f in formats.items()
                  if c in view.columns}
    print(view.rename(columns=short).to_string(index=False, na_rep="", formatters=formatters))
    if ns.point is not None:  # no sweep.csv holds the error whole: the log of the task does
        _whole_errors(df, ap.prog)
        folder = pathlib.Path(ns.out_dir) / df["run_name"][0]
        print(folder if folder.is_dir() else pathlib.Path(ns.out_dir) / MANIFEST)  # none: the error is recorded there
    elif not any(issubclass(w.category, TableNotWritten) for w in caught):  # a note said it was not written
        print(pathlib.Path(ns.out_dir) / SUMMARY)
    return df


def _cut(error) -> str:
    """An error as the printed table shows it: at most 60 characters, blank for none."""
    if not isinstance(error, str):
        return ""
    return error[:57] + "..." if len(error) > 60 else error


def _whole_errors(df: pd.DataFrame, prog: str) -> None:
    """Print on stderr, after the table printed on stdout, each error that the table cut short, whole (a task of a
    job array writes no sweep.csv, and its log is where its error is read)."""
    errors = df["error"] if "error" in df else [None] * len(df)
    cut = [(name, e) for name, e in zip(df["run_name"], errors) if isinstance(e, str) and _cut(e) != e]
    sys.stdout.flush()  # the table first, where both go to one file (a Slurm log)
    for name, e in cut:
        print(f"{prog}: error of {name}: {e}", file=sys.stderr)


def _command(ns) -> pd.DataFrame:
    """What the command line's arguments ``ns`` ask for (:func:`main`); ValueError naming the flag for arguments
    that do not go together."""
    modes = [flag for flag, on in (("--list-points", ns.list_points), ("--point", ns.point is not None),
                                   ("--summary-only", ns.summary_only)) if on]
    if len(modes) > 1:
        raise ValueError(f"{' and '.join(modes)}: give one of them")
    if ns.summary_only:  # the table is rebuilt from the folders only: what trains runs would be silently ignored
        given = [flag for flag, values in (("--grid", ns.grid), ("--set", ns.fixed), ("--tie", ns.tie),
                                            ("--restart-refused", ns.restart_refused),
                                            ("--workers", ns.workers is not None),
                                            ("--scheduler", ns.scheduler is not None),
                                            ("--resources", ns.resources)) if values]
        if given:
            raise ValueError(f"--summary-only rewrites {SUMMARY} from the run folders and starts no run; it takes "
                             f"no {', '.join(given)}")
        if ns.forget_absent and pathlib.Path(ns.out_dir).is_dir():
            writable_out_dir(ns.out_dir)  # sweep.json is rewritten
            gone = forget_absent(ns.out_dir)
            print(f"{PROG}: note: forgot {len(gone)} point{'s' * (len(gone) != 1)} without a run folder"
                  f"{': ' + ', '.join(gone) if gone else ''}", file=sys.stderr)
            for name, error in gone.items():  # an error no table will show again
                if error:
                    print(f"{PROG}: note: forgot with {name} the error of its last attempt: {error}", file=sys.stderr)
        return summary(ns.out_dir)
    if ns.forget_absent:
        raise ValueError("--forget-absent forgets points before --summary-only rewrites the table; give it with "
                         "--summary-only")
    if modes:  # one point trained here, or none: no cluster (and with --list-points, nothing restarted)
        given = [flag for flag, value in (("--workers", ns.workers is not None),
                                          ("--scheduler", ns.scheduler is not None),
                                          ("--resources", ns.resources),
                                          ("--restart-refused", ns.list_points and ns.restart_refused)) if value]
        if given:
            what = "lists the points" if ns.list_points else "trains its point in this process"
            raise ValueError(f"{modes[0]} {what}; it takes no {', '.join(given)}")
    elif ns.workers is not None:  # run_sweep's refusals, in the command line's spelling
        if ns.workers < 1:
            raise ValueError(f"--workers must be a positive integer (the processes of the local cluster; left out, "
                             f"one per core, or one for runs that ask for resources), got {ns.workers}")
        if ns.scheduler is not None:
            raise ValueError("--workers sets the size of the local cluster; with --scheduler the cluster's own "
                             "workers run the sweep")
    from . import sweep  # here, not above: nclib.sweep imports this module, its command line

    grid, fixed, tie = parse_grid(ns.grid), parse_fixed(ns.fixed), parse_tie(ns.tie)
    if ns.list_points:
        return sweep.list_points(grid, fixed, ns.out_dir, tie=tie)
    if ns.point is not None:
        return sweep.run_point(grid, fixed, ns.out_dir, ns.point, tie=tie, restart_refused=ns.restart_refused)
    res = None
    if ns.resources:
        res = {}
        for item in ns.resources:
            name, value = parameters.parse_setting(item, "--resources")
            res[name] = sweep.resource_amount(name, value, "--resources")
    return sweep.run_sweep(grid, fixed, ns.out_dir, workers=ns.workers, scheduler=ns.scheduler, resources=res,
                           progress=not ns.no_progress, tie=tie, restart_refused=ns.restart_refused)


def exit_status(table: pd.DataFrame) -> int:
    """The command's exit status for a sweep's table: 1 when a run failed, carries an error other than its
    divergence (a divergence is a result; a diverged run trained on other data than its data file holds now,
    :class:`nclib.runs.OtherData`, or another call's run in the point's folder, :class:`nclib.runs.RunExists`, is an
    error), or is absent (its point was never trained: a task of a job array that
    never ran, a sweep whose cluster never started), else 0 (a stopped run and a dead one without an error, which
    the next call resumes, included).  ``table``: a sweep's table (:func:`nclib.sweep.run_sweep`), with its ``status``
    column; ValueError otherwise."""
    if not isinstance(table, pd.DataFrame) or "status" not in table:
        raise ValueError("table must be a sweep's table (a DataFrame with a status column)")
    status = table["status"]
    errors = refused = pd.Series(False, index=table.index)
    if "error" in table:
        errors = table["error"].notna()
        refused = errors & table["error"].astype(str).str.startswith((f"{OtherData.__name__}:",
                                                                      f"{RunExists.__name__}:"))
    return int(bool((status.isin(("failed", "absent")) | (errors & (status != "diverged")) | refused).any()))
