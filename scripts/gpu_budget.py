"""Epoch budgets for the GPU runs of Figures 1-4 (scripts/gpu_figures.sh).

The default mode of gpu_figures.sh budgets its runs by epochs (it came before the engine's ``max_train_s``, which
its FULL mode uses instead): ``calibrate`` measures
on this device, at the paper's settings (width 2048, batch size 128) and the runs' precision, the seconds
per epoch of a figure's three runs (L = 1, 3, 6) trained side by side as ``nclib.train.run_many`` trains
them, for both data shapes (CIFAR-10: N = 3000, 3072 inputs, K = 10;
the letters profile: N = 5500, 3072 inputs (32 x 32 x 3, as the letters reach the network), K = 26; random inputs, which do not change a step's cost), the
cost of one metric evaluation and of building a run, and of a notebook's data (the letters read from their
rendering saved ahead with ``--letters-data``, else rendered); ``epochs`` then splits the seconds left between the
figures still to run (Figures 1 and 3 first: 40 % each, Figures 2 and 4 10 % each, what one does not need
going to the next in priority order; a figure whose share fits no epoch takes all the time left if that
fits it) and prints the epochs of one figure: the most that fit its share, a multiple of ``metric_every``,
at most the paper's 12,000.

    python scripts/gpu_budget.py calibrate --out calib.json [--device auto] [--precision tf32] [--epochs 12]
            [--letters-data .gpu/letters_synthetic_gpu.npz]
    python scripts/gpu_budget.py epochs FIG --calibration calib.json --remaining SECONDS --todo "1 3 2 4"
        -> prints "EPOCHS SECONDS" (the epochs and the seconds allotted to FIG); EPOCHS 0 means skip
    python scripts/gpu_budget.py pieces FIG --calibration calib.json --budget-s SECONDS [--slower X]
            [--apart-ratio R] [--starts 2] [--data-s S] [--levers bench_levers_tf32.json] [--precision Q]
            [--piece L1-L3] [--epochs E]
        -> prints the fewest pieces of FIG's runs (e.g. "L1-L3 L6") that each fit SECONDS of notebook time on one
           GPU machine at the paper's 12,000 epochs (--epochs: E), each piece's runs started STARTS times (a second
           command resumes them), with their predicted seconds (nclib.figures.piece_seconds, fewest_pieces); status 1
           when a run does not fit alone.  --levers: the epochs at the speed of a lever record's fastest lever
           (:func:`lever_speed`), e.g. a stability job's, instead of the calibration's.  --precision: the runs'
           precision, --slower and --apart-ratio (unless given) read from the engine benchmark outputs beside the
           calibration (:func:`precision_speeds`; a lever record is then one measured at Q).  --piece: that piece
           alone, its predicted seconds against SECONDS, status 1 when it does not fit (scripts/gpu_figures.sh's FULL
           mode refuses such a piece before any GPU time is spent)
    python scripts/gpu_budget.py levers benchmarks/results/bench_levers_tf32.json [--metric-every 100]
            [--precision tf32]
        -> prints the notebook settings (NAME=VALUE ...) of the fastest lever measured for a figure's runs, for
           EXTRA_SETS (gpu_figures.sh's LEVERS_FROM reads them so); nothing for the plain engine
           (:func:`choose_levers`); status 1, and why, when the record is missing, holds no timed plain engine,
           or (--precision) was measured at another precision than the runs'
    python scripts/gpu_budget.py device [--device auto] [--expect H200]
        -> prints the name of the GPU the runs would train on; status 2, and why, when torch sees no CUDA device or
           the GPU's name does not contain EXPECT (:func:`check_device`): every budget here is an H200's
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import re
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import figures  # noqa: E402

SHARES = {1: 0.4, 3: 0.4, 2: 0.1, 4: 0.1}


def calibrate(device: str, epochs: int, letters_images: int | None, precision: str, width: int | None = None,
              letters_data: str | None = None) -> dict:
    import torch

    from nclib import data, train

    out = {"device": None, "torch": torch.__version__, "epochs": epochs, "precision": precision, "kinds": {}}
    for fig in (1, 2):
        f = figures.FIGURES[fig]
        counts = np.array(figures.figure_counts(fig, "gpu"))
        D = 3 * 32 * 32 if f.dataset == "cifar10" else 3 * data.LETTERS_INPUT_SIZE ** 2
        y = np.repeat(np.arange(counts.size), counts)
        x = np.random.default_rng(0).standard_normal((y.size, D)).astype(np.float32)
        ts = data.TrainingSet("calibration", x, y, counts, tuple(map(str, range(counts.size))), x,
                              {"data_sha256": ""})
        params = figures.figure_parameters(fig, "gpu", device=device, progress=False, data_path=".",
                                           precision=precision)
        if width is not None:  # CPU tests of the script only
            params["width"] = width
        t0 = time.perf_counter()
        engines = [train.Engine(ts, train.check_params(**dict(figures.train_kwargs(params, L), dataset="synthetic",
                                                              data_path=None)))
                   for L in figures.L_VALUES]
        for eng in engines:
            eng.train_steps(10)  # warm-up, CUDA-graph capture
        kind = {"N": int(y.size), "K": int(counts.size), "steps_per_epoch": engines[0].steps_per_epoch,
                "setup_s": time.perf_counter() - t0}

        kind["epoch_s"] = train.time_side_by_side(engines, epochs) / epochs  # the lockstep of nclib.train.run_many
        for eng in engines:
            eng.evaluate()
        t0 = time.perf_counter()
        for eng in engines:  # device and host parts in turn (in the runs the host part overlaps training)
            eng.evaluate()
        kind["eval_s"] = time.perf_counter() - t0
        out["device"] = torch.cuda.get_device_name(engines[0].device) if engines[0].is_cuda else "cpu"
        out["kinds"][f.dataset] = kind
    letters = out["kinds"]["letters-synthetic"]
    letters["data_s"], letters["data"] = letters_data_seconds(letters_data, letters_images)
    out["kinds"]["cifar10"]["data_s"] = 1.0  # the .npz slice, read once for the three runs
    return out


def letters_data_seconds(letters_data: str | None = None, letters_images: int | None = None,
                         scale: str = "gpu") -> tuple[float, str]:
    """A notebook's seconds for the letters of Figures 2 and 4 at ``scale``, and how it gets them: read from the
    rendering saved ahead ``letters_data`` (scripts/gpu_letters_data.py); rendered whole, as a notebook does
    without it (also when the file is refused, for other counts or seed or damaged: the reason is given); or, with
    ``letters_images``, that many rendered and scaled to the profile, an overestimate (each letter's glyph in each
    font is drawn once and reused, which a few images hardly do), for CPU tests of the script."""
    from nclib import data, letters

    p = figures.figure_parameters(2, scale)
    how = "rendered in the notebook"
    if letters_data is not None:
        t0 = time.perf_counter()
        try:
            data.load_for({**p, "data_path": letters_data})
            return time.perf_counter() - t0, "rendered ahead"
        except ValueError as exc:
            how += f" (the file was refused: {exc})"
            print(f"letters: {how}", file=sys.stderr)
    if letters_images is not None:
        per_class = max(1, letters_images // 26)
        t0 = time.perf_counter()
        letters.letters_synthetic(np.full(26, per_class), seed=0)
        seconds = (time.perf_counter() - t0) / (26 * per_class) * sum(p["counts"])
        return seconds, how + f", scaled from {26 * per_class} images"
    t0 = time.perf_counter()
    data.load_for(p)
    return time.perf_counter() - t0, how


def epochs_for(cal: dict, fig: int, remaining: float, todo: list[int]) -> tuple[int, float]:
    full = figures.scale_settings("gpu")["epochs"]
    m = figures.scale_settings("gpu")["metric_every"]
    if fig not in todo:
        raise SystemExit(f"FIG {fig} is not in --todo {todo}")
    need = {f: figures.calibrated_seconds(cal, f, full) for f in todo}
    total_share = sum(SHARES[f] for f in todo)
    alloc = {f: min(need[f], remaining * SHARES[f] / total_share) for f in todo}
    spare = remaining - sum(alloc.values())
    for f in todo:  # priority order: what one figure does not need goes to the next that does
        extra = min(spare, need[f] - alloc[f])
        alloc[f] += extra
        spare -= extra
    def fit(budget: float) -> int:
        lo, hi = 0, full // m  # largest multiple of m whose predicted time fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if figures.calibrated_seconds(cal, fig, mid * m) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return lo * m

    budget = alloc[fig]
    epochs = fit(budget)
    if epochs == 0 and fit(remaining) > 0:  # too little for its share, but the time left fits it: priority wins
        budget = remaining
        epochs = fit(budget)
    return epochs, budget


def choose_levers(record: dict, metric_every: int = 100, precision: str | None = None) -> tuple[str, float, float]:
    """The lever of a ``benchmarks/bench_train.py --levers`` record with the least time for a figure's runs
    side by side per epoch, a metric epoch every ``metric_every`` epochs included (``epoch_ms_side_by_side`` +
    ``metric_ms_seen_by_training`` / ``metric_every``), among the plain engine and the levers that ran without
    error and ended bit for bit where the plain engine did (``same_as_plain``).  Returns ``(spec, ms, plain_ms)``:
    the lever's SPEC (``"plain"`` when none is faster), its time per epoch and the plain engine's.  ValueError
    when the record has no timed plain engine, or, given the runs' ``precision``, when the record was measured at
    another (a lever that ends bit for bit as the plain engine at one precision says nothing of another)."""
    if precision is not None and record.get("precision") != precision:
        raise ValueError(f"the record was measured at precision {record.get('precision')!r}, the runs train at "
                         f"precision {precision!r}")
    levers = record.get("levers") or {}

    def ms(m: dict) -> float | None:
        if "error" in m or m.get("epoch_ms_side_by_side") is None:
            return None
        return m["epoch_ms_side_by_side"] + (m.get("metric_ms_seen_by_training") or 0.0) / metric_every

    plain = ms(levers.get("plain", {"error": "missing"}))
    if plain is None:
        raise ValueError("the record has no timed plain engine (--levers plain ... --figure-epochs N)")
    best, best_ms = "plain", plain
    for spec, m in levers.items():
        t = ms(m)
        if spec != "plain" and t is not None and m.get("same_as_plain") is True and t < best_ms:
            best, best_ms = spec, t
    return best, best_ms, plain


def lever_speed(record: dict, calibration: dict, precision: str | None = None) -> tuple[str, float]:
    """The fastest lever of a lever record that ends as the plain engine does (:func:`choose_levers`, at the runs'
    ``precision``, by default the calibration's) and its time per epoch of a CIFAR-10 figure's three runs side by
    side against the calibration's (``epoch_ms_side_by_side`` over ``epoch_s``): the factor by which ``pieces
    --levers`` scales the calibrated epochs (the metric epochs keep the calibration's time).  ValueError for a
    record of another precision, or without the lever's timing."""
    spec, _, _ = choose_levers(record, precision=precision or calibration.get("precision"))
    try:
        ms = float(record["levers"][spec]["epoch_ms_side_by_side"])
        return spec, ms / (1000.0 * float(calibration["kinds"]["cifar10"]["epoch_s"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"the record or the calibration lacks an epoch time: {exc!r}") from None


def precision_speeds(calibration_path, precision: str, calibrated: str | None) -> tuple[float, float]:
    """How a figure's runs train at ``precision`` against the precision ``calibrated`` of the calibration at
    ``calibration_path``, from the engine benchmark outputs of the job that made it (``bench_train_gpu*.txt``
    beside it, read by :func:`nclib.figures.read_benchmark`): ``(slower, apart_ratio)``, the ratio of the two
    precisions' times for a figure's three runs side by side (1 for the calibration's own precision) and, at
    ``precision``, one after another against side by side (``pieces --slower``, ``--apart-ratio``).  ValueError
    naming the folder where no benchmark output of either precision timed a figure's runs."""
    folder = pathlib.Path(calibration_path).parent
    timed = {}
    for path in sorted(folder.glob("bench_train_gpu*.txt")):
        try:
            bench = figures.read_benchmark(path)
        except ValueError:
            continue
        q = str(bench.get("precision", "")).split(";")[0].strip()
        if bench.get("figure_together_s") and bench.get("figure_ratio"):
            timed.setdefault(q, bench)
    missing = [q for q in dict.fromkeys((precision, calibrated)) if q not in timed]
    if missing:
        raise ValueError(f"no engine benchmark output beside the calibration in {str(folder)!r} timed a figure's runs "
                         f"at precision {' or '.join(map(repr, missing))} (bench_train_gpu*.txt, --figure-epochs)")
    slower = timed[precision]["figure_together_s"] / timed[calibrated]["figure_together_s"]
    return slower, float(timed[precision]["figure_ratio"])


def piece_of(text: str) -> tuple[int, ...]:
    """The head depths of a piece as ``PIECE`` names it (``L6``, ``L1-L3``, ``L1-L6``: the runs named, not a range).
    ValueError naming ``piece`` for anything else."""
    if not isinstance(text, str) or not re.fullmatch(r"L[0-9]+(-L[0-9]+)*", text):
        raise ValueError(f"piece must name head depths as L1, L1-L3 or L1-L6, got {text!r}")
    return tuple(int(L) for L in text[1:].split("-L"))


def check_device(device: str = "auto", expect: str | None = "H200") -> str:
    """The name of the GPU that ``device`` (``"auto"``, ``"cuda"``, ``"cuda:N"``) trains on, checked before a GPU
    job spends any time: ValueError when torch sees no CUDA device (the runs would train on the CPU for hours), or
    when the name does not contain ``expect`` in any case (the speeds the budgets use were measured on an H200; an
    H100 is about 1.4 times slower by the data-sheet bandwidths, and a figure's pieces made on two GPU models are refused by
    ``scripts/land_gpu_runs.py promote``).  ``expect`` empty or None accepts any CUDA GPU."""
    import torch

    if device == "cpu" or not str(device).startswith(("auto", "cuda")):
        raise ValueError(f"device must be auto, cuda or cuda:N for a GPU job, got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError("torch sees no CUDA device")
    name = torch.cuda.get_device_name(torch.device("cuda" if device == "auto" else device))
    if expect and expect.lower() not in name.lower():
        raise ValueError(f"the GPU is {name!r}, not an {expect} (EXPECT_GPU): the time budgets are an H200's, and a "
                         f"figure's runs must all be made on one GPU model; EXPECT_GPU= accepts any GPU")
    return name


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("calibrate")
    c.add_argument("--out", required=True)
    c.add_argument("--device", default="auto")
    c.add_argument("--epochs", type=int, default=12, help="epochs of the three runs side by side to time")
    c.add_argument("--precision", default="tf32", help="the figure runs' precision (nclib.train.PRECISIONS)")
    c.add_argument("--letters-images", type=int, default=None,
                   help="time this many letters and scale to the profile (CPU tests; an overestimate), instead of "
                        "rendering the whole profile as a notebook does")
    c.add_argument("--letters-data", default=None,
                   help="the letters of Figures 2 and 4 rendered ahead (scripts/gpu_letters_data.py): time reading them")
    c.add_argument("--width", type=int, default=None, help="override the width (CPU tests of the script only)")
    e = sub.add_parser("epochs")
    e.add_argument("fig", type=int)
    e.add_argument("--calibration", required=True)
    e.add_argument("--remaining", type=float, required=True)
    e.add_argument("--todo", required=True, help='figures not yet run, in priority order, e.g. "1 3 2 4"')
    pc = sub.add_parser("pieces")
    pc.add_argument("fig", type=int)
    pc.add_argument("--calibration", required=True)
    pc.add_argument("--budget-s", type=float, required=True, help="one GPU machine's seconds for the notebooks")
    pc.add_argument("--slower", type=float, default=None,
                    help="the runs' precision against the calibration's (e.g. fp32 side by side / tf32 side by side; "
                         "default 1, or from the benchmarks with --precision)")
    pc.add_argument("--apart-ratio", type=float, default=None,
                    help="a figure's runs one after another against side by side (bench_train.py --figure-epochs; "
                         "default 1, or from the benchmarks with --precision)")
    pc.add_argument("--precision", default=None,
                    help="the runs' precision: --slower and --apart-ratio from the engine benchmark outputs beside "
                         "the calibration (bench_train_gpu*.txt), unless given")
    pc.add_argument("--piece", default=None,
                    help="only this piece (e.g. L6, L1-L3): its seconds against --budget-s, status 1 when over")
    pc.add_argument("--epochs", type=int, default=None, help="the runs' epochs (default the paper's 12,000)")
    pc.add_argument("--starts", type=int, default=2, help="notebooks a piece's runs go through (two commands: 2)")
    pc.add_argument("--levers", default=None,
                    help="a lever record (bench_levers_*.json): the epochs at its fastest lever's measured speed")
    pc.add_argument("--data-s", type=float, default=None,
                    help="a notebook's seconds for its data instead of the calibration's (e.g. 1 for the letters "
                         "rendered ahead, read from .gpu/letters_synthetic_gpu.npz, with a calibration that rendered them)")
    lv = sub.add_parser("levers")
    lv.add_argument("record")
    lv.add_argument("--metric-every", type=int, default=100)
    lv.add_argument("--precision", default=None, help="the runs' precision: a record measured at another is refused")
    dv = sub.add_parser("device")
    dv.add_argument("--device", default="auto")
    dv.add_argument("--expect", default="H200", help="a part of the GPU's name (empty: any CUDA GPU)")
    args = ap.parse_args(argv)
    if args.command == "device":
        try:
            name = check_device(args.device, args.expect)
        except ValueError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            sys.exit(2)
        print(f"GPU: {name}" + (f" (an {args.expect}, as expected)" if args.expect else ""))
        return
    if args.command == "levers":
        try:
            with open(args.record) as fh:
                spec, best, plain = choose_levers(json.load(fh), args.metric_every, args.precision)
        except (OSError, ValueError) as exc:  # json's errors are ValueErrors
            raise SystemExit(f"levers: no lever record in {args.record!r}: {exc}")
        print(f"levers: {spec}, {best:.2f} ms per epoch of a figure's runs against {plain:.2f} for the plain engine",
              file=sys.stderr)
        print("" if spec == "plain" else " ".join(spec.split(",")))
        return
    if args.command == "pieces":
        try:
            with open(args.calibration) as fh:
                cal = json.load(fh)
        except (OSError, ValueError) as exc:  # json's errors are ValueErrors
            raise SystemExit(f"pieces: no calibration in {args.calibration!r}: {exc}")
        if args.data_s is not None:
            if args.data_s < 0:
                raise SystemExit(f"--data-s must be a number of seconds >= 0, got {args.data_s}")
            cal = figures.with_data_seconds(cal, args.fig, args.data_s)
        slower, apart_ratio = 1.0, 1.0
        if args.precision is not None:
            try:
                slower, apart_ratio = precision_speeds(args.calibration, args.precision, cal.get("precision"))
            except ValueError as exc:
                raise SystemExit(f"pieces: {exc}")
        slower = slower if args.slower is None else args.slower
        apart_ratio = apart_ratio if args.apart_ratio is None else args.apart_ratio
        if args.levers is not None:
            try:
                with open(args.levers) as fh:
                    spec, speed = lever_speed(json.load(fh), cal, args.precision)
            except (OSError, ValueError) as exc:  # json's errors are ValueErrors
                raise SystemExit(f"pieces: no lever speed in {args.levers!r}: {exc}")
            print(f"levers: {spec}, the epochs at {speed:.3f} times the calibration's time", file=sys.stderr)
            # a record measured at the runs' precision: its speed is theirs, no other precision's factor on it
            slower = (1.0 if args.slower is None else args.slower) * speed

        def seconds(piece):
            return figures.piece_seconds(cal, args.fig, piece, epochs=args.epochs, slower=slower,
                                         apart_ratio=apart_ratio, starts=args.starts)

        if args.piece is not None:
            try:
                t = seconds(piece_of(args.piece))
            except ValueError as exc:
                raise SystemExit(f"pieces: {exc}")
            fits = t <= args.budget_s
            print(f"Figure {args.fig}, {args.piece}{'' if args.precision is None else ' at ' + args.precision}: "
                  f"{t:.0f} s, {'within' if fits else 'more than'} {args.budget_s:.0f} s of one machine")
            if not fits:
                sys.exit(1)
            return

        plan = figures.fewest_pieces(seconds, args.budget_s)
        alone = {L: seconds((L,)) for L in figures.L_VALUES}
        if plan is None:
            print(f"Figure {args.fig}: no plan; alone " + ", ".join(f"L{L} {t:.0f} s" for L, t in alone.items())
                  + f", against {args.budget_s:.0f} s of one machine")
            sys.exit(1)
        print(" ".join("L" + "-L".join(map(str, pc)) for pc in plan) + "   ("
              + ", ".join(f"{seconds(pc):.0f} s" for pc in plan) + f" of {args.budget_s:.0f} s each)")
        return
    if args.command == "calibrate":
        cal = calibrate(args.device, args.epochs, args.letters_images, args.precision, args.width, args.letters_data)
        with open(args.out, "w") as fh:
            json.dump(cal, fh, indent=1)
        for name, k in cal["kinds"].items():
            full = figures.calibrated_seconds(cal, 1 if name == "cifar10" else 2, 12000)
            print(f"{name}: L = 1, 3, 6 side by side {k['epoch_s'] * 1e3:.1f} ms per epoch "
                  f"({k['steps_per_epoch'] / k['epoch_s']:.0f} steps/s of each run, {cal['precision']}); "
                  f"a metric epoch of the three {k['eval_s']:.2f} s; data {k['data_s']:.1f} s; a full figure "
                  f"(3 x 12,000 epochs) ~{full:.0f} s on {cal['device']}")
    else:
        with open(args.calibration) as fh:
            cal = json.load(fh)
        todo = [int(t) for t in args.todo.replace(",", " ").split()]
        epochs, budget = epochs_for(cal, args.fig, max(0.0, args.remaining), todo)
        print(epochs, int(math.floor(budget)))


if __name__ == "__main__":
    main()
