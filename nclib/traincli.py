"""The command line of a run, ``python -m nclib.train`` (:ref:`ch-train`): its flags, one per parameter of
:data:`nclib.parameters.DEFAULTS`, read into a call of :func:`nclib.train.run_many` (or, with ``--resume auto``,
:func:`nclib.train.run_planned`), one run per ``--L``; each run's status line on stderr and its folder on stdout;
its exit statuses (2 for a refused argument or run folder, 1 for a divergence or a file that cannot be written,
143 for SIGTERM, which :func:`nclib.locks.sigterm_raises` turns into the runs' stop with a checkpoint, or their
failure, and the folders it names).  :func:`nclib.train.main` calls :func:`main`, so that ``python -m nclib.train``
runs it.
"""
from __future__ import annotations

import argparse
import pathlib
import signal
import sys

from . import data, imbalance, parameters
from . import locks as _locks
from . import runs as _runs
from .parameters import DEFAULTS, INITS, PRECISIONS, parse_value, run_names
from .runs import load_run
from .train import TrainingDiverged, run_many, run_planned

#: The choices the command line lists in ``--help`` (the checks themselves are those of :func:`check_params`).
CHOICES = {"dataset": data.DATASETS, "class_order": data.CLASS_ORDERS, "selection": data.SELECTIONS,
           "normalization": data.NORMALIZATIONS, "init": INITS, "precision": PRECISIONS,
           "device": ("auto", "cpu", "cuda", "cuda:<i>"),
           "cuda_graph": ("auto", "true", "false"), "async_metrics": ("auto", "true", "false")}

#: The first line of ``--help``: what the command does.
DESCRIPTION = ("Train one run per --L of objective (4.3) of Section 5 (an MLP backbone, an L-layer linear head, "
               "Adam) and record its collapse metrics.")

_EPILOG = """output: one run folder per L, <out-dir>/<run name>, holding params.json, history.csv,
class_accuracy.csv, provenance.json (and checkpoint.pt while a run is stopped, and from the first periodic
checkpoint on while it trains with --checkpoint-every, until it finishes); out-dir defaults to
results/runs/ in the repository; the run name is <run-tag>-L<L>, or without --run-tag
<dataset>-L<L>-<bias|nobias>-seed<seed> (the names of the training notebook); --run-name names the folder of a
single L exactly.  A folder that holds a run is never replaced without --overwrite true; --resume true continues a
stopped run from its checkpoint, and a run whose process was killed or failed from its last checkpoint, if it has
one (checkpoints are written where a run stops: at --max-train-s, or at the metric epoch after a SIGTERM; and, with
--checkpoint-every N, every N epochs while it trains, so that a job killed outright, SIGKILL, an out-of-memory kill,
a lost node or a preemption without grace period, loses at most N epochs; without one the run must start again).
--resume auto does what the training notebook does, so that one command serves every job of a run split over several
(with --max-train-s below the job's time limit): it starts the runs when no folder holds them, continues them from their
checkpoints when they stopped, prints their folders when they finished with these parameters, and refuses anything else.
Errors in the arguments print one line and exit with status 2; a run that diverges exits with status 1, after the status
line of every run (the other runs go on to their end or their stop; leave the diverged one out of later calls).  SIGTERM
(a job's time limit, scancel) stops the runs that train at their next metric epoch, each with its checkpoint, and exits
with status 143; the job's grace period before SIGKILL (Slurm's KillWait, or sbatch --signal=B:TERM@<seconds> with this
command exec-ed as the job's batch shell, which alone B: signals) should exceed one metric interval and a checkpoint's
write.  A SIGTERM that comes while the runs write a periodic checkpoint, a second one too, is only noted, and the runs
stop at that checkpoint's epoch once every run's is committed.  A second SIGTERM before the runs reach the metric epoch
of their stop, or one outside training, writes the open runs as failed; once the stop has begun, further SIGTERMs do
not cut it short.  A run that diverged before the stop, or at its
metric epoch, is named with its status line and the --L that leaves it out, and the status stays 143.  A flag's value is
read by nclib.parameters.parse_value, the grammar of every command line of the repository (--counts [500,100,20] or a
preset name; also, for short, --counts 500,100,20), but --L and --lr-milestones, which take integers apart (--L 1 3 6,
--lr-milestones 6000; --lr-milestones alone for none)."""


def _parser() -> argparse.ArgumentParser:
    """The command line's flags: one per key of :data:`DEFAULTS` (``max_train_s`` is ``--max-train-s``), each value
    read by :func:`nclib.parameters.parse_value`, and ``--run-tag``."""
    ap = parameters.one_line_errors(argparse.ArgumentParser(  # argparse's refusals as main's: one line
        prog="python -m nclib.train", description=DESCRIPTION, epilog=_EPILOG,
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
                                 "counts: [n1,n2,...] or n1,n2,... (default, by dataset: " + ", ".join(
                                     f"{d}: " + (f"preset {c}" if isinstance(c, str) else f"[{','.join(map(str, c))}]")
                                     for d, c in data.DEFAULT_COUNTS.items()) + ")")
        elif name == "checkpoint_every":
            ap.add_argument(flag, type=value_of(name), default=default,
                            help="none, or the epochs between the checkpoints written while the runs train, a "
                                 "multiple of --metric-every: a run killed outright loses at most that many (default "
                                 "none: a checkpoint only where the runs stop)")
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
    their next metric epoch, as at ``--max-train-s`` (sent, once or twice, as they write a periodic checkpoint, at
    that checkpoint's epoch), and ``--resume true`` (or ``auto``) continues them; sent
    outside training (while a run's folder is opened or finished), or a second time while the stop is pending
    (before the runs reach that metric epoch; once they have, a further SIGTERM is only noted and the stop goes on),
    the runs still open are written as failed with its error (:func:`run_many`).  One line on stderr names the folders
    stopped with a checkpoint, those written as failed and those that could not be (each with its error on a line
    of its own), and those that diverged, or says that no run was open (the signal came before the runs' folders
    were opened, as while the data loaded, or once every run had trained its last epoch: nothing is stopped, written
    as failed or diverged); a run that diverged before the signal, or at the metric epoch of its stop, is said as a
    divergence is, its status line before that line, why it diverged and the ``--L`` that leaves it out of later
    calls after it.  The status is 143 (128 + SIGTERM), as the signal itself would give, also where a run diverged:
    the process was terminated, and the next job (``--resume auto``) is told of the diverged run by its refusal.
    Where the runs' finishes fail in turn, the first run's error decides the status (1 for a full disk before a
    SIGTERM that ends the next finish, which is then said in a note), as :func:`nclib.train.run_many` raises it."""
    ns = vars(_parser().parse_args(argv))
    try:
        with _locks.sigterm_raises():
            return _command(ns)
    except _locks.Terminated as exc:  # the runs run_many ended: stopped with a checkpoint, or written as failed
        opened, failed = getattr(exc, "open_runs", []), getattr(exc, "failed_runs", [])
        stopped, diverged = getattr(exc, "stopped_runs", []), getattr(exc, "diverged_runs", [])
        unwritten = [d for d in opened if d not in failed and d not in stopped]
        named = {"stopped with a checkpoint at the metric epoch after the signal, or at the one whose periodic "
                 "checkpoint they were writing as it came (continue them from it with --resume true or auto)": stopped,
                 "written as failed": failed,
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
