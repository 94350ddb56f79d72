"""The speed of the GPU runs of Figures 1-4: the engine benchmark's committed outputs and records, the benchmark of
the letters' rendering, the GPU jobs' logs, the calibration behind each GPU figure's epoch budget
(:ref:`ch-engine`, :ref:`ch-figures-summary`), and what one GPU machine of limited time fits at the paper's 12,000
epochs (``scripts/gpu_budget.py pieces``, ``scripts/README.md``)."""
from __future__ import annotations

import json
import math
import pathlib
import re
from typing import Mapping

import numpy as np

from .. import ROOT, _checks
from ..runs import metric_epochs
from .config import L_VALUES, RESULTS, figure, figure_parameters, scale_settings
from .load import parameter_count


#: Where the engine benchmark's committed outputs live (``benchmarks/bench_train.py``).
BENCHMARKS = ROOT / "benchmarks" / "results"


def read_benchmark(path) -> dict:
    """The numbers of one committed output of ``benchmarks/bench_train.py`` (e.g. ``bench_train_cpu.txt``).

    Returns ``command`` (the first line, without ``$``), ``device``, ``problem``, ``plain`` and ``engine``
    (steps per second of the plain PyTorch loop and of nclib.train) and ``ratio`` (their quotient as
    printed); with ``--figure-epochs`` also ``figure_epochs``, ``figure_apart_s`` and ``figure_together_s``
    (seconds for a figure's three runs of that many epochs one after another and side by side) and
    ``figure_ratio``; ``repeats``, how many times each loop was timed (1 where the ``timed steps`` line names no
    count: the first outputs timed each loop once); where the benchmark timed each loop several times,
    ``plain_range``, ``engine_range`` and ``ratio_range`` (the least and the largest of the repeats; the other
    numbers are their medians), and likewise ``figure_apart_range``, ``figure_together_range`` and
    ``figure_ratio_range`` where it timed a figure's runs several times; where it printed its commit, ``commit``.
    Raises ValueError naming the file when a line is missing.
    Chapters: :ref:`ch-engine`, :ref:`ch-figures-summary`.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    lines = path.read_text().splitlines()
    out: dict = {"command": lines[0].lstrip("$ ").strip() if lines and lines[0].startswith("$") else None}
    for line in lines:
        key, _, rest = line.partition("  ")
        key, rest = key.strip(), rest.strip()
        if key in ("device", "problem", "precision", "commit"):
            out[key] = rest
        elif key == "timed steps":
            times = re.search(r"(\d+) times each loop", rest)
            out["repeats"] = int(times.group(1)) if times else 1
        elif key in ("plain loop", "nclib.train", "ratio"):
            name = {"plain loop": "plain", "nclib.train": "engine", "ratio": "ratio"}[key]
            out[name] = float(rest.split()[0])
            spread = re.search(r"\[([\d.]+), ([\d.]+)\]", rest)
            if spread is not None:
                out[f"{name}_range"] = (float(spread.group(1)), float(spread.group(2)))
        elif key == "figure runs":
            bracket = r"(?: \[([\d.]+), ([\d.]+)\])?"  # the range of the repeats, where there were several
            m = re.search(rf"(\d+) epochs each: one after another ([\d.]+) s{bracket}, "
                          rf"side by side ([\d.]+) s{bracket}, ratio ([\d.]+) x{bracket}", rest)
            if m is None:
                raise ValueError(f"path {str(path)!r}: unreadable 'figure runs' line {line!r}")
            out["figure_epochs"] = int(m.group(1))
            for i, name in ((2, "figure_apart"), (5, "figure_together"), (8, "figure_ratio")):
                out[name if name == "figure_ratio" else f"{name}_s"] = float(m.group(i))
                if m.group(i + 1) is not None:
                    out[f"{name}_range"] = (float(m.group(i + 1)), float(m.group(i + 2)))
    missing = [k for k in ("device", "plain", "engine", "ratio") if k not in out]
    if missing:
        raise ValueError(f"path {str(path)!r} is not a bench_train output: no {', '.join(missing)} line")
    return out


#: The fields every JSON record of ``benchmarks/bench_train.py --json`` holds (dotted: inside ``steps_per_s``, the
#: medians, and ``steps_per_s_repeats``, every round's; when the record timed a figure's runs, inside ``figure``).
RECORD_FIELDS = ("device", "torch", "precision", "commit", "commit_dirty", "command", "problem", "steps_per_s.engine",
                 "steps_per_s.plain", "steps_per_s_repeats.engine", "steps_per_s_repeats.plain")
#: The fields of a record's ``figure`` (``--figure-epochs``): a figure's three runs side by side per epoch, the engine
#: chapter's floor for them on that device (None where it has no data sheet), one metric epoch of the three, and
#: 12,000 epochs with a metric epoch every ``metric_every``.
RECORD_FIGURE_FIELDS = ("epoch_ms_side_by_side", "epoch_ms_floor", "metric_ms", "metric_every",
                        "seconds_12000_epochs_with_metrics")


def read_benchmark_record(path) -> dict:
    """The JSON record of one ``benchmarks/bench_train.py --json`` run (e.g. ``bench_train_gpu.json``), checked:
    every field of :data:`RECORD_FIELDS`, and of :data:`RECORD_FIGURE_FIELDS` when ``figure`` is not None, is
    there, the speeds are positive, each loop's ``steps_per_s`` is the median of its ``steps_per_s_repeats`` (to
    float rounding; the repeats as :func:`round_quotients` checks them) and the figure's times consistent (12,000
    epochs with metrics at least 12,000 side-by-side epochs).  ValueError naming the file and what is missing or
    wrong.
    Not yet used by a chapter: ``scripts/README.md`` (the stability job's landing) has the section of
    :ref:`ch-engine` on the GPU rewritten from the records it reads once a GPU job has made them."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"path {str(path)!r} is not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"path {str(path)!r} is not a bench_train record: its JSON is a {type(record).__name__}, "
                         f"not an object of fields")

    def get(d, dotted):
        for part in dotted.split("."):
            if not isinstance(d, dict) or part not in d:
                return KeyError
            d = d[part]
        return d

    missing = [f for f in RECORD_FIELDS if get(record, f) is KeyError]
    fig = record.get("figure")
    if fig is not None:
        missing += [f"figure.{f}" for f in RECORD_FIGURE_FIELDS if get(fig, f) is KeyError]
    if missing:
        raise ValueError(f"path {str(path)!r} is not a bench_train record: no {', '.join(missing)}")
    speeds = record["steps_per_s"]
    if not all(isinstance(speeds[k], (int, float)) and speeds[k] > 0 for k in ("engine", "plain")):
        raise ValueError(f"path {str(path)!r}: steps_per_s must be positive numbers, got {speeds}")
    if fig is not None and not (fig["epoch_ms_side_by_side"] > 0 and fig["metric_ms"] >= 0
                                and fig["seconds_12000_epochs_with_metrics"] >= 12 * fig["epoch_ms_side_by_side"]):
        raise ValueError(f"path {str(path)!r}: the figure's times are inconsistent: {fig}")
    try:
        round_quotients(record)  # the repeats: lists of one length of positive finite numbers
    except ValueError as exc:
        raise ValueError(f"path {str(path)!r}: {exc}") from None
    repeats = record["steps_per_s_repeats"]
    for k in ("engine", "plain"):
        if not math.isclose(speeds[k], float(np.median(repeats[k])), rel_tol=1e-12, abs_tol=0.0):
            raise ValueError(f"path {str(path)!r}: steps_per_s[{k!r}] = {speeds[k]} is not the median of "
                             f"steps_per_s_repeats[{k!r}] = {repeats[k]}")
    return record


def round_quotients(record: Mapping) -> dict:
    """The quotients of one ``benchmarks/bench_train.py --json`` record, round by round: ``ratio``, the engine's
    steps per second over the plain loop's (``steps_per_s_repeats``; each round times the two loops back to back)
    and, where the record timed a figure's runs, ``figure_ratio``, their seconds one after another over their
    seconds side by side (``figure``'s two ``*_repeats`` lists).  The benchmark prints the median of each list as
    its ratio and the least and largest as its range.  ValueError naming ``record`` where it, its
    ``steps_per_s_repeats`` or its ``figure`` (when not None) is not a mapping, or the repeats are missing, empty, of
    unequal length or not positive finite numbers.
    Chapters: :ref:`ch-engine`, :ref:`ch-figures-summary`.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"record must be a bench_train record (a mapping), got {type(record).__name__}")
    pairs = {"ratio": ("steps_per_s_repeats", "engine", "plain")}
    if record.get("figure") is not None:
        pairs["figure_ratio"] = ("figure", "seconds_one_after_another_repeats", "seconds_side_by_side_repeats")
    out = {}
    for key, (field, top, bottom) in pairs.items():
        d = record.get(field, {})
        if not isinstance(d, Mapping):
            raise ValueError(f"record: {field!r} must be a mapping of {top!r} and {bottom!r}, "
                             f"got {type(d).__name__}")
        a, b = d.get(top), d.get(bottom)
        if not isinstance(a, list) or not isinstance(b, list) or not a or len(a) != len(b):
            raise ValueError(f"record: {top!r} and {bottom!r} must be two lists of repeats of one length, "
                             f"got {a!r} and {b!r}")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf for v in a + b):
            raise ValueError(f"record: the repeats of {top!r} and {bottom!r} must be positive finite numbers")
        out[key] = [float(x) / float(y) for x, y in zip(a, b)]
    return out


#: Seconds per figure notebook outside its runs' steps and metrics (kernel start, imports, cells, plots): the
#: allowance of :func:`calibrated_seconds`.
NOTEBOOK_OVERHEAD_S = 25.0


def calibrated_seconds(calibration: Mapping, fig, epochs: int) -> float:
    """Predicted wall seconds of one figure notebook (three runs side by side) at ``epochs`` epochs.

    ``calibration`` is what ``scripts/gpu_budget.py calibrate`` measured on a device (committed with the GPU
    runs as ``results/figures/gpu/logs/*/calibration.json``): per data shape, seconds per epoch of the three
    runs in lockstep (``epoch_s``), of one metric evaluation of the three (``eval_s``), of building the
    runs (``setup_s``) and of making the data (``data_s``). The prediction adds :data:`NOTEBOOK_OVERHEAD_S`,
    ``data_s``, ``setup_s``, ``epochs x epoch_s`` and one evaluation per history row (epoch 0, every
    ``metric_every``-th epoch and the last, :func:`nclib.runs.metric_epochs`): the time model behind each GPU
    figure's epoch budget, and :func:`piece_seconds` of all three runs in one notebook.
    Chapters: :ref:`ch-figures-summary`.
    """
    return piece_seconds(calibration, fig, L_VALUES, _checks.nonneg_int(epochs, "epochs"))


def with_data_seconds(calibration: Mapping, fig, seconds: float) -> dict:
    """A copy of ``calibration`` in which a notebook of Figure ``fig``'s data set spends ``seconds`` on its data
    (``kinds/<dataset>/data_s``), the rest unchanged: a plan with the letters read from their rendering saved
    ahead, or with a corrected rendering time (``scripts/gpu_budget.py pieces --data-s``).  ValueError for negative
    ``seconds`` or a calibration without the data set."""
    seconds = _checks.nonneg_float(seconds, "seconds")
    kind = figure(fig).dataset
    kinds = calibration.get("kinds") if isinstance(calibration, Mapping) else None
    if not isinstance(kinds, Mapping) or kind not in kinds:
        raise ValueError(f"calibration has no entry kinds/{kind} for Figure {figure(fig).number}")
    return {**calibration, "kinds": {**kinds, kind: {**kinds[kind], "data_s": seconds}}}


def figure_parameter_counts(fig) -> dict[int, int]:
    """{L: trainable parameters} of Figure ``fig``'s networks at the paper's settings (:mod:`nclib.models`: a
    backbone of ``depth`` Linear layers of ``width`` with biases and the feature layer, then L head layers, the
    last one K x d with a bias where the figure has one), counted without building them (:func:`piece_seconds`), as
    :func:`nclib.figures.load.parameter_count` counts a run's."""
    p = figure_parameters(figure(fig), "gpu")
    return {L: parameter_count({**p, "L": L}) for L in L_VALUES}


def piece_seconds(calibration: Mapping, fig, piece, epochs: int | None = None, slower: float = 1.0,
                  apart_ratio: float = 1.0, starts: int = 1) -> float:
    """Predicted wall seconds of the notebooks that make only the runs ``piece`` (head depths, e.g. ``(1, 3)``) of
    Figure ``fig`` at ``epochs`` epochs (default the paper's), as :func:`calibrated_seconds` predicts a whole
    figure in one notebook.  A step's Adam traffic and its matrix products both grow with the parameters, so the
    piece's epoch is the three runs' calibrated side-by-side epoch times the piece's share of their parameters
    (:func:`figure_parameter_counts`); a piece of fewer than three runs gets no credit for running side by side:
    its epochs take ``apart_ratio`` (a figure's runs one after another against side by side,
    ``bench_train.py --figure-epochs``) times as long.  Its metric epochs and setup are its share of the three
    runs', by number of runs.  ``slower`` scales the training epochs only, e.g. to strict fp32 from a TF32
    calibration (the ratio of the two benchmarks' side-by-side figure times; the metrics are computed in fp32
    at every precision).  ``starts``: how many notebooks the runs go through (a run stopped with a checkpoint
    and resumed by a second command starts a second notebook), each paying the notebook's overhead, the data
    and the setup.  Used by ``scripts/gpu_budget.py pieces``."""
    f = figure(fig)
    if isinstance(piece, (str, bytes)) or not hasattr(piece, "__iter__"):
        raise ValueError(f"piece must be a tuple of head depths of {L_VALUES}, e.g. (6,), got {piece!r}")
    piece = tuple(sorted(set(piece)))
    if not piece or any(L not in L_VALUES for L in piece):
        raise ValueError(f"piece must hold head depths of {L_VALUES}, got {piece!r}")
    slower = _checks.positive_float(slower, "slower")
    apart_ratio = _checks.positive_float(apart_ratio, "apart_ratio")
    starts = _checks.positive_int(starts, "starts")
    E = scale_settings("gpu")["epochs"] if epochs is None else _checks.nonneg_int(epochs, "epochs")
    whole = figure_parameter_counts(f)
    share = sum(whole[L] for L in piece) / sum(whole.values())
    try:
        kind = {k: float(calibration["kinds"][f.dataset][k]) for k in ("data_s", "setup_s", "epoch_s", "eval_s")}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"calibration has no complete entry for {f.dataset!r} (kinds/{f.dataset}/data_s, setup_s, "
                         f"epoch_s, eval_s): {exc!r}") from exc
    runs = len(piece) / len(L_VALUES)
    overlap = 1.0 if len(piece) == len(L_VALUES) else apart_ratio
    evals = len(metric_epochs(E, scale_settings("gpu")["metric_every"])) if E else 1  # the history rows
    return (starts * (NOTEBOOK_OVERHEAD_S + kind["data_s"] + kind["setup_s"] * runs)
            + slower * E * kind["epoch_s"] * share * overlap + evals * kind["eval_s"] * runs)


def fewest_pieces(seconds_of, budget_s: float) -> list[tuple[int, ...]] | None:
    """The fewest pieces of consecutive head depths (L = 1, 3, 6 in order) each of which ``seconds_of(piece)`` says
    fits ``budget_s`` seconds (one GPU machine's); of plans with as few pieces, the one whose longest piece is
    shortest (the most room left).  None when a run does not fit alone.  ValueError naming ``seconds_of`` unless it
    is a function that gives each piece a number of seconds >= 0, and naming ``budget_s`` unless it is positive.
    Used by ``scripts/gpu_budget.py pieces``."""
    if not callable(seconds_of):
        raise ValueError(f"seconds_of must be a function of a piece (a tuple of head depths), got "
                         f"{type(seconds_of).__name__}")
    budget_s = _checks.positive_float(budget_s, "budget_s")
    Ls = list(L_VALUES)
    plans = []
    for cuts in range(2 ** (len(Ls) - 1)):  # each bit: a cut after that L
        plan, start = [], 0
        for i in range(1, len(Ls)):
            if cuts >> (i - 1) & 1:
                plan.append(tuple(Ls[start:i]))
                start = i
        plan.append(tuple(Ls[start:]))
        times = [seconds_of(pc) for pc in plan]
        if not all(_checks.real_number(t) and 0 <= float(t) < math.inf for t in times):
            raise ValueError(f"seconds_of must give each piece a finite number of seconds >= 0, got {times} for "
                             f"{plan}")
        if max(times) <= budget_s:
            plans.append((len(plan), max(times), plan))
    return min(plans)[2] if plans else None




# --------------------------------------------------------------------------------------------- the letters' rendering

#: The committed output of ``benchmarks/bench_letters.py`` (:func:`read_letters_benchmark`).
LETTERS_BENCHMARK = BENCHMARKS / "bench_letters.txt"


def read_letters_benchmark(path=None) -> dict:
    """The numbers of a committed output of ``benchmarks/bench_letters.py`` (default :data:`LETTERS_BENCHMARK`):
    the rendering of the letters-synthetic stand-in, a sample against the whole profile, which shows the GPU
    calibration's rendering time too high (:ref:`ch-figures-summary`).

    Returns ``command`` (the first line, without ``$``), ``repeats`` (the timings of each rendering), ``scale``,
    ``letters`` and ``classes`` (the profile rendered whole), ``seed``, ``sample`` (the letters of the sample),
    ``sample_s`` and ``sample_scaled_s`` (its median seconds, and those scaled to the profile's letters),
    ``whole_s`` (the whole profile's median seconds), ``ratio`` (``whole_s`` over ``sample_scaled_s`` as printed),
    ``ratio_range`` (the least and the largest of the rounds' own quotients), ``commit``, ``dirty`` (whether the
    checkout differed from it), ``cpu``, ``load`` (the three load averages) and ``date``.  ValueError naming the
    file when it is missing or a line is."""
    path = LETTERS_BENCHMARK if path is None else pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    text = path.read_text()
    num = r"([\d.]+)"
    patterns = {
        "command": r"^\$ (.+)$",
        "repeats": r"timings of each rendering: (\d+),",
        "profile": r"^profile +Figure 2 at scale (\S+): ([\d,]+) letters in (\d+) classes, seed (\d+)$",
        "sample": rf"^sample +([\d,]+) letters \(\d+ of each class\): {num} s \[.*?\], scaled to the profile {num} s",
        "whole": rf"^whole profile +[\d,]+ letters: {num} s",
        "ratio": rf"^ratio +whole / scaled sample {num} \(of the medians; per round \[{num}, {num}\]\)$",
        "end": r"^commit ([0-9a-f]+)( with uncommitted changes)?, (.+), load average ([\d.]+), ([\d.]+), ([\d.]+), "
               r"(\d{4}-\d\d-\d\d \d\d:\d\d UTC)$",
    }
    m = {key: re.search(pattern, text, re.M) for key, pattern in patterns.items()}
    missing = [key for key, found in m.items() if found is None]
    if missing:
        raise ValueError(f"path {str(path)!r} is not a bench_letters output: no {', '.join(missing)} line")
    scale, letters, classes, seed = m["profile"].groups()
    return {"command": m["command"].group(1), "repeats": int(m["repeats"].group(1)), "scale": scale,
            "letters": int(letters.replace(",", "")), "classes": int(classes), "seed": int(seed),
            "sample": int(m["sample"].group(1).replace(",", "")), "sample_s": float(m["sample"].group(2)),
            "sample_scaled_s": float(m["sample"].group(3)), "whole_s": float(m["whole"].group(1)),
            "ratio": float(m["ratio"].group(1)),
            "ratio_range": (float(m["ratio"].group(2)), float(m["ratio"].group(3))),
            "commit": m["end"].group(1), "dirty": m["end"].group(2) is not None, "cpu": m["end"].group(3),
            "load": tuple(float(m["end"].group(i)) for i in (4, 5, 6)), "date": m["end"].group(7)}


# --------------------------------------------------------------------------------------------- the GPU jobs' logs

#: Where the GPU jobs' files are committed, one folder per job (``scripts/gpu_figures.sh``: ``log.txt``,
#: ``calibration.json``, the engine benchmark's outputs).
GPU_LOGS = RESULTS / "gpu" / "logs"


def gpu_log_files(root=None) -> dict[pathlib.Path, str]:
    """{path: text} of the committed GPU job logs ``<root>/*/log.txt`` (``root`` default :data:`GPU_LOGS`), sorted by
    path, so in the order of the jobs (``call1``, ``call2``): what :ref:`ch-fig1` to :ref:`ch-fig4` and
    :ref:`ch-figures-summary` read of how the GPU runs were made.  ValueError naming ``root`` when it holds none."""
    root = GPU_LOGS if root is None else pathlib.Path(root)
    paths = sorted(root.glob("*/log.txt"))
    if not paths:
        raise ValueError(f"root {str(root)!r} holds no GPU job log (*/log.txt)")
    return {path: path.read_text() for path in paths}


def gpu_logs(root=None) -> str:
    """The text of all the committed GPU job logs (:func:`gpu_log_files`), one after another in the order of the
    jobs: what :func:`logged_figure` and :func:`budget_lines` read (:ref:`ch-fig1` to :ref:`ch-fig4`,
    :ref:`ch-figures-summary`)."""
    return "\n".join(gpu_log_files(root).values())


def budget_lines(log_text: str) -> list[dict]:
    """Every figure a GPU log (:func:`gpu_logs`, ``scripts/gpu_figures.sh``) fitted epochs to a budget for, in the
    order of the log: from each line ``== Figure k: E epochs in a budget of B s (X s elapsed, Y s left)``,
    ``figure`` (k), ``epochs``, ``budget_s`` (the wall-clock cap on its notebook), ``elapsed_s`` (the job's seconds
    before it) and ``left_s`` (the job's seconds left then).  Which figures each GPU job trained and what time each
    got (:ref:`ch-fig4`, :ref:`ch-figures-summary`).  ValueError unless ``log_text`` is a string."""
    if not isinstance(log_text, str):
        raise ValueError(f"log_text must be the text of a GPU log, got {type(log_text).__name__}")
    pattern = r"^== Figure (\d+): (\d+) epochs in a budget of (\d+) s \((\d+) s elapsed, (\d+) s left\)"
    keys = ("figure", "epochs", "budget_s", "elapsed_s", "left_s")
    return [dict(zip(keys, map(int, m.groups()))) for m in re.finditer(pattern, log_text, re.M)]


def logged_figure(log_text: str, fig) -> dict:
    """What a GPU log (:func:`gpu_logs`, written by ``scripts/gpu_figures.sh``) records of one figure: ``epochs`` and
    ``budget_s`` (the epochs it got and the wall-clock cap in seconds on its notebook they were fitted to, its first
    line of :func:`budget_lines`) and ``took_s`` (the wall seconds of its notebook); each None when the log does not
    record it (:ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`)."""
    f = figure(fig)
    lines = [line for line in budget_lines(log_text) if line["figure"] == f.number]
    took = re.search(rf"== Figure {f.number} \((?:paper|gpu)\) ended with status 0 after (\d+) s", log_text)
    return {"epochs": lines[0]["epochs"] if lines else None, "budget_s": lines[0]["budget_s"] if lines else None,
            "took_s": int(took.group(1)) if took else None}
