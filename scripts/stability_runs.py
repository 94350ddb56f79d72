"""The precision stability runs (nclib.figures.stability): Figure 1's setting at L = 6, strict fp32 against TF32.

    python scripts/stability_runs.py [--seeds 0 1 2] [--extra-seeds N] [--budget-s S] [--out DIR]
                                     [--set NAME=VALUE ...] [--precisions fp32 tf32] [--overwrite]
                                     [--summary-only] [--check-out [--on-gpu]]

For each seed one nclib.train.run_many call trains the fp32 run and the TF32 run side by side (same data,
initialization and batch order) for the first 400 epochs, metrics every 10 epochs, into
DIR/fig1-L6-<precision>-seed<s>/ (default results/stability/).  A run that diverges is written as such (a
spike) and the other seeds go on; so do they after any other error of a pair, which is printed (the status is
then 2).  A pair whose two runs ended (finished or diverged) with the same parameters is kept, not made again; a
run that did not end (failed, cut off by a time limit, dead, stopped) is no result and is made again; runs that
ended with other parameters in its folders are an error unless --overwrite.  Interrupted (SIGINT, as `timeout
--signal=INT` stops it), it prints the summary and the decision of the pairs that ended, then stops (status 1).
--budget-s: a pair starts only when the seconds left are at least 1.2 times the longest pair so far, made or kept
(until a pair has been made or kept, one starts whatever is left); --extra-seeds N: after the given seeds, up to N
more (the next seed numbers) while the budget allows.  At the end it prints one line per run and the precision
the fixed rule chooses (nclib.figures.stability.precision_decision).  --set NAME=VALUE replaces a parameter of
Figure 1's (data_path, device; for a test of the tooling width, epochs, ...), read by
nclib.parameters.parse_setting; the summary reads the runs with the same replacements (stability.load_stability
refuses runs of other parameters).  No decision is printed where, on a GPU, a TF32 run did not differ from its fp32
pair (nclib.figures.stability.tf32_not_engaged), nor where the runs cannot be read as runs of the setting; the
status is then 1.  --summary-only: train nothing, only summarize the runs under --out and print the decision (status
0 with a decision, 1 without), as scripts/gpu_figures.sh's STABILITY mode ends (status 3 without one).
--check-out: train nothing: refuse (status 2, naming each) the run folders under --out that these pairs can
neither keep nor make again (stray_runs: a run that ended with other parameters, a CPU trial of the tooling left
there, say, would fail its seed's pair and leave the summary no decision; or one that ended on a CPU where the
pairs train on a GPU), status 0 where there is none: scripts/gpu_figures.sh's STABILITY mode checks so before any
GPU time is spent, and scripts/gpu_prepare.sh here with --on-gpu (the pairs will train on a GPU, not here).
--precisions fp32 (or tf32): that run of each seed alone, no pair, into the --out it then requires (never beside
the pairs of results/stability/); it prints no decision, which needs pairs.  The strict fp32 runs of seeds 1 and 2
on a CPU, in results/stability-cpu/, were made so (results/README.md gives their commands).
Flags and parameters are checked before any pair is made: a negative seed or budget, a --set that the stability
runs fix (precision, run_name, L), an unknown one or a value nclib.train.check_params refuses is one line naming the
flag, status 2.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import parameters, runplan, train  # noqa: E402
from nclib import runs as runs_contract  # noqa: E402
from nclib.figures import stability  # noqa: E402


class OtherDevice(ValueError):
    """A run folder of the pair holds a run that ended on another kind of device than the one this machine trains
    on (:func:`pair_states`)."""


def pair_states(runs, shared, cuda: bool | None = None) -> list[tuple[str, dict | None]]:
    """What each run folder of the pair holds, read once: ``("ended", its provenance)`` for a run that ended
    (finished, or stopped as diverged) with exactly these parameters, ``("other", None)`` for one that ended with
    other parameters, ``("cut", None)`` for a run that did not end (failed, dead, stopped: never a result) and
    ``("absent", None)``.  :class:`OtherDevice` for a run that ended on a CPU where this machine trains on a GPU
    (TF32 exists only there: such a pair is not the one to make here); ValueError from
    :func:`nclib.train.check_params` for parameters it refuses (:func:`check_flags` has refused them before).
    ``cuda``: whether the machine that trains the pair has a CUDA device (None: this one is asked), for a check
    made on another machine before the job (:func:`stray_runs`)."""
    out = []
    for r in runs:
        want = train.check_params(**{**shared, **r})
        path = pathlib.Path(want["out_dir"]) / want["run_name"]
        status = runs_contract.run_status(path)
        if status not in stability.ENDED:
            out.append(("absent" if status == "absent" else "cut", None))
        elif runplan.differing_params(path, parameters.defining_params(want)):
            out.append(("other", None))
        else:
            other = runplan.device_difference(path, parameters.required_device_type(want["device"], cuda))
            if other:
                trained, here = other["device"]
                raise OtherDevice(f"run folder {str(path)!r} holds a run trained on {trained}, and this machine "
                                 f"trains on {here}: move the folder aside (it is not the pair to make here), or "
                                 f"pass --overwrite")
            out.append(("ended", json.loads((path / "provenance.json").read_text())))
    return out


def stray_runs(out, overrides, cuda: bool | None = None) -> dict[str, str]:
    """{run folder: why, naming it} for each run folder under ``out`` named as a stability run
    (:func:`stability.run_name`) that pairs made with ``overrides`` can neither keep nor make again (:func:`pair_states`): a run that ended with
    other parameters ("other": a CPU trial of the tooling left there, say), whose seed's pair would fail
    (``RunExists``) and whose folder would leave the summary no decision (:func:`stability.load_stability` refuses
    it), or one that ended on a CPU where the pairs train on a GPU (:class:`OtherDevice`), which stops every pair.
    A run that did not end is made again, and is no stray.  ``cuda`` as for :func:`pair_states`: True for a check
    made here before a GPU job (``scripts/gpu_prepare.sh``).  ValueError from :func:`stability.pair_kwargs` or
    :func:`nclib.train.check_params` for overrides they refuse."""
    found = {}
    for path in sorted(pathlib.Path(out).glob(f"fig{stability.FIGURE}-L{stability.L}-*-seed*")):
        match = re.fullmatch(rf"fig{stability.FIGURE}-L{stability.L}-(\w+)-seed(\d+)", path.name)
        if not path.is_dir() or match is None or match.group(1) not in stability.PRECISIONS \
                or path.name != stability.run_name(match.group(1), int(match.group(2))):
            continue  # not a name these pairs make or read as theirs
        runs, shared = stability.pair_kwargs(int(match.group(2)), out_dir=str(out), **overrides)
        run = [r for r in runs if r["precision"] == match.group(1)]
        try:
            (state, _), = pair_states(run, shared, cuda)
        except OtherDevice as exc:
            found[str(path)] = str(exc)
            continue
        if state == "other":
            want = parameters.defining_params(train.check_params(**{**shared, **run[0]}))
            found[str(path)] = (f"run folder {str(path)!r} holds a run that ended with other parameters than these "
                                f"pairs': {runplan.differences_text(runplan.differing_params(path, want))}")
    return found


def pair_seconds(states) -> float | None:
    """The wall seconds of a pair whose runs all ended with exactly its parameters (:func:`pair_states`), None
    if they did not."""
    if any(state != "ended" for state, _ in states):
        return None
    return max(float(record.get("wall_time_s") or 0.0) for _, record in states)


def remake(states) -> bool:
    """Whether the pair is to be made again over what its folders hold (:func:`pair_states`): some folder holds a
    run, yet the pair is not whole (a run that did not end; or one run that ended beside an absent or cut partner:
    a pair's runs share their batches only when trained side by side), and no folder holds a run that ended with
    other parameters (that one is refused, :func:`main`'s ``--overwrite``)."""
    kinds = [state for state, _ in states]
    return "other" not in kinds and any(k != "absent" for k in kinds) and any(k != "ended" for k in kinds)


def check_flags(args, seeds, overrides) -> str | None:
    """Why the flags cannot make the runs of ``seeds``, as one line naming the flag, or None: a negative seed
    (``--seeds``) or budget (``--budget-s``), or parameters that :func:`nclib.figures.stability.pair_kwargs` (a
    parameter the runs fix, an unknown one) or :func:`nclib.train.check_params` refuses (``--set``: a bad value, no
    ``data_path`` for CIFAR-10, a device this machine lacks)."""
    negative = [s for s in args.seeds if s < 0]
    if negative:
        return f"--seeds must be non-negative integers, got {negative[0]}"
    if args.budget_s is not None and not args.budget_s > 0:
        return f"--budget-s must be a positive number of seconds, got {args.budget_s}"
    try:
        for seed in seeds:
            runs, shared = stability.pair_kwargs(seed, out_dir=args.out, **overrides)
            for r in runs:
                if r["precision"] in args.precisions:
                    train.check_params(**{**shared, **r})
    except ValueError as exc:
        return f"--set: {exc}"
    return None


def main(argv=None) -> int:
    ap = parameters.one_line_errors(  # argparse's refusals and the script's own: one line, status 2
        argparse.ArgumentParser(prog="scripts/stability_runs.py", description=__doc__.split("\n")[0]))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(stability.SEEDS), metavar="SEED",
                    help=f"the seeds of the pairs, made in this order (default {' '.join(map(str, stability.SEEDS))})")
    ap.add_argument("--extra-seeds", type=int, default=0, metavar="N",
                    help="after --seeds, up to N more (the largest seed + 1, + 2, ...) while --budget-s allows")
    ap.add_argument("--budget-s", type=float, default=None, metavar="S",
                    help="seconds for the whole call: a pair starts only with 1.2 times the longest pair so far "
                         "(made or kept) left (default: no limit)")
    ap.add_argument("--out", default=None, help=f"default {stability.RESULTS} (pairs only)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="replace a parameter of Figure 1's (data_path, device; for a test of the tooling width, "
                         "epochs, ...), read by nclib.parameters.parse_setting; not precision, run_name or L")
    ap.add_argument("--precisions", nargs="+", choices=stability.PRECISIONS, default=list(stability.PRECISIONS),
                    help="the runs of each seed (default both, a pair)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a pair's run folders that hold runs that ended with other parameters (or on "
                         "another kind of device); runs that did not end are made again without it")
    ap.add_argument("--summary-only", action="store_true",
                    help="train nothing: summarize the runs under --out and print the decision (status 0 with a "
                         "decision, 1 without)")
    ap.add_argument("--check-out", action="store_true",
                    help="train nothing: status 2, naming them, where run folders under --out hold runs these pairs "
                         "can neither keep nor make again (other parameters, or a CPU where they train on a GPU)")
    ap.add_argument("--on-gpu", action="store_true",
                    help="with --check-out: the pairs will train on a machine with a GPU (a check made before the job)")
    args = ap.parse_args(argv)
    pairs = set(args.precisions) == set(stability.PRECISIONS)
    if args.out is None and not pairs:
        ap.error(f"--precisions {' '.join(args.precisions)} needs its own --out: single runs never go beside the "
                 f"pairs of {stability.RESULTS}")
    args.out = str(stability.RESULTS) if args.out is None else args.out
    try:
        overrides = parameters.parse_settings(args.set, "--set")
    except ValueError as exc:
        ap.error(str(exc))
    if args.extra_seeds < 0:
        ap.error(f"--extra-seeds must be >= 0, got {args.extra_seeds}")
    seeds = list(args.seeds) + [max(args.seeds) + 1 + i for i in range(args.extra_seeds)]
    refused = check_flags(args, seeds, overrides)
    if refused:
        ap.error(refused)
    if args.check_out:
        strays = stray_runs(args.out, overrides, True if args.on_gpu else None)
        for why in strays.values():
            print(f"refused: {why}. Move it out of {args.out!r}: a trial of the tooling goes into a folder of its "
                  f"own (--out)")
        if not strays:
            print(f"{args.out}: no run folder that these pairs can neither keep nor make again")
        return 2 if strays else 0
    if args.summary_only:
        return summarize(args, overrides, pairs)
    t0, failed, interrupted = time.perf_counter(), [], False
    try:
        failed = make_pairs(args, seeds, overrides, t0, pairs)
    except KeyboardInterrupt:  # the time limit: what ended is still summarized
        print("interrupted: the pairs that ended are summarized below", flush=True)
        interrupted = True
    except _Refused:
        return 2
    status = summarize(args, overrides, pairs)
    return 1 if interrupted else 2 if failed else status


class _Refused(Exception):
    """A pair trained on a CPU where this machine trains on a GPU, without --overwrite (printed already)."""


def make_pairs(args, seeds, overrides, t0, pairs) -> list[int]:
    """Train the pairs of ``seeds`` in turn (the loop of :func:`main`); returns the seeds whose pair raised an error
    (printed; the next seed goes on)."""
    longest, failed = 0.0, []
    for n, seed in enumerate(seeds):
        runs, shared = stability.pair_kwargs(seed, out_dir=args.out, **overrides)
        runs = [r for r in runs if r["precision"] in args.precisions]
        try:
            states = pair_states(runs, shared)
        except OtherDevice as exc:  # a pair trained on a CPU, here on a GPU: replaced only with --overwrite
            if not args.overwrite:
                print(f"seed {seed}: {exc}", file=sys.stderr)
                raise _Refused from None
            states = None
        kept = None if states is None else pair_seconds(states)
        if kept is not None:  # its time is the estimate of the next pair's
            longest = max(longest, kept)
            which = "both runs" if len(runs) == 2 else "the run"
            print(f"seed {seed}: {which} ended already ({kept:.0f} s), kept", flush=True)
            continue
        left = None if args.budget_s is None else args.budget_s - (time.perf_counter() - t0)
        if left is not None and longest > 0 and left < 1.2 * longest:
            what = "a pair" if pairs else "a run"
            print(f"seed {seed}: not started, {left:.0f} s left and {what} took {longest:.0f} s", flush=True)
            break
        extra = " (extra)" if n >= len(args.seeds) else ""
        how = "side by side" if len(runs) > 1 else "alone"
        print(f"seed {seed}{extra}: {', '.join(r['run_name'] for r in runs)} {how} ...", flush=True)
        start = time.perf_counter()
        again = states is not None and remake(states)
        if again:
            print(f"seed {seed}: its folders hold no whole pair (a run that did not end, or one without its "
                  f"partner); made again", flush=True)
        try:
            train.run_many(runs, **shared, overwrite=args.overwrite or again)
        except train.TrainingDiverged as exc:  # a result (a spike), written as such: the other seeds go on
            print(f"seed {seed}: diverged: {exc}", flush=True)
        except Exception as exc:  # a refusal (a folder holding other runs) or an error of the device: the next seed
            print(f"seed {seed}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            print(f"seed {seed}: FAILED ({type(exc).__name__}); the next seed goes on", flush=True)
            failed.append(seed)
            continue
        longest = max(longest, time.perf_counter() - start)
        print(f"seed {seed}: done in {time.perf_counter() - start:.0f} s", flush=True)
    return failed


def summarize(args, overrides, pairs) -> int:
    """Print one line per run that ended and, for pairs, the decision; 0, or 1 when there is nothing to decide."""
    try:
        rows = stability.stability_rows(stability.load_stability(args.out, **overrides))
    except ValueError as exc:
        print(f"no summary: {exc}")
        if pairs:
            print("no decision: the runs under --out cannot be read as stability runs of this setting (above)")
        return 1
    for r in rows:
        rise = "never rises" if r["rise"] is None else (f"largest rise above an earlier low x{r['rise']:.2f} "
                                                         f"(epochs {r['rise_from']}-{r['rise_to']})")
        what = "DIVERGED" if r["diverged"] else ("SPIKED" if r["spiked"] else "no spike")
        print(f"{r['precision']} seed {r['seed']}: {what}, {rise}; 100 % "
              f"accuracy first at {r['first_100']}, lost after: {r['lost_100']}, final {r['final_acc']:.4f}; "
              f"objective final {r['final_objective']:.4g}, min {r['min_objective']:.4g}")
    if not pairs:
        return 0
    flat = stability.tf32_not_engaged(stability.load_stability(args.out, **overrides))
    if flat:
        print(f"no decision: on the GPU the TF32 runs of seeds {flat} did not differ from their fp32 pairs (no "
              f"TF32 products recorded, or the same history): the pairs compare fp32 with itself")
        return 1
    try:
        decision = stability.precision_decision(rows)
    except ValueError as exc:
        print(f"no decision: {exc}")
        return 1
    print(f"decision: {decision['precision']} ({decision['case']}; seeds {decision['seeds']}, spiked "
          f"{decision['spiked']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
