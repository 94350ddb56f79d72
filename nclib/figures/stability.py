"""The precision stability runs: does TF32 cause the training spikes of the L = 6 runs of Figure 1?

At the paper's settings the committed GPU runs of Figure 1 (TF32 products) saw the objective (4.3) of its L = 6
run more than double at the constant learning rate between epochs 100 and 200, and lose 100 % training accuracy.
The stability runs repeat Figure 1's setting (CIFAR-10, bias, width 2048, batch size 128, Adam at 1e-4) at L = 6
for the first epochs, in strict fp32 and with TF32 products, recording every few epochs.  They are paired: for each
seed the two runs train side by side in one :func:`nclib.train.run_many` call, with the same data, initialization
and batch order, and differ only in the precision of the training products.  They live in
``results/stability/fig1-L6-<precision>-seed<s>/`` (``scripts/stability_runs.py`` makes them).

What a seed varies depends on the data file, as everywhere in nclib (``nclib.data.select_per_class``): the GPU
job trains on the slice of the CIFAR-10 copy that holds Figure 1's 3,000 samples (``scripts/gpu_data_slice.py``),
so there every seed trains on exactly Figure 1's training data (the same ``data_sha256``) and varies the
initialization and the batch order; a run on the whole ``cifar10_subset.npz`` (the CPU runs of :data:`RESULTS_CPU`)
draws seed s's own 3,000 samples as well, Figure 1's for seed 0 only.  ``data_sha256`` in each run's provenance
says which.

What counts as a spike, and what decides the precision of the figure runs, is fixed here before any run is
made (:func:`spiked`, :func:`precision_decision`); :func:`stability_rows` and :func:`stability_glue` give the
numbers a chapter quotes (:func:`run_summary` those of one single run).
"""
from __future__ import annotations

import os
import pathlib
from typing import Mapping

import numpy as np

from .. import ROOT, _checks
from ..parameters import DEFAULTS, EXECUTION_KEYS, NOTEBOOK_PARAMETERS, reference_decay
from ..rounding import written
from ..runs import json_values, load_class_accuracy, load_run, metric_epochs, recorded_status
from .analysis import run_theory
from .events import SPIKE_FACTOR, first_epoch, largest_rise, positive_values, rise_factor, settled_epoch
from .config import figure_parameters, train_kwargs
from .load import (Run, checked_history, checked_params, commit_problems, device_kind, made_clean_problems,
                   provenance_problems, run_counts, together_problems)

#: Where the stability runs are committed.
RESULTS = ROOT / "results" / "stability"
#: The stability setting's strict fp32 runs made on a CPU (results/README.md; :ref:`ch-fig1`), single runs, not
#: pairs: outside :data:`RESULTS`, so that the GPU pairs are made beside no other run; read them with
#: ``load_stability(RESULTS_CPU)``.
RESULTS_CPU = ROOT / "results" / "stability-cpu"
#: The two precisions compared: strict fp32 products (PyTorch's default) and TF32 products (the committed runs').
PRECISIONS = ("fp32", "tf32")
#: The stability runs' setting: Figure 1 (CIFAR-10, bias) at the gpu scale, head depth 6, the first 400 epochs
#: (the committed run's spike came between epochs 100 and 200), the metrics every 10 epochs, seeds 0, 1, 2.
FIGURE, L, EPOCHS, METRIC_EVERY, SEEDS = 1, 6, 400, 10, (0, 1, 2)


def _checked_run(run, name: str = "run", history: bool = True) -> Run:
    """``run`` checked as the functions of one stability run read it: a :class:`Run` whose history (unless
    ``history`` is False: a reader of its per-class record alone) passes
    :func:`nclib.figures.load.checked_history`; ValueError naming ``name`` otherwise."""
    if not isinstance(run, Run):
        raise ValueError(f"{name} must be a stability run (a Run), got {type(run).__name__}")
    if history:
        checked_history(run.history, f"{name}.history")
    return run


def _checked_pairs(runs) -> Mapping:
    """``runs`` ({(precision, seed): Run}, as :func:`load_stability` gives them) checked: a mapping that holds at
    least one run, keyed by a precision of :data:`PRECISIONS` and a seed, each value passing :func:`_checked_run`.
    Returns ``runs``; ValueError naming ``runs`` otherwise: an empty mapping would read as "no run spiked"."""
    if not isinstance(runs, Mapping) or not runs:
        got = "an empty mapping" if isinstance(runs, Mapping) else type(runs).__name__
        raise ValueError(f"runs must hold at least one stability run, a mapping {{(precision, seed): Run}}, got {got}")
    for key, run in runs.items():
        if not (isinstance(key, tuple) and len(key) == 2 and key[0] in PRECISIONS and _checks.is_integral(key[1])):
            raise ValueError(f"runs must be keyed by (precision, seed), a precision of {PRECISIONS}, got {key!r}")
        _checked_run(run, f"runs[{key!r}]")
    return runs


def run_name(precision: str, seed: int) -> str:
    """The run folder name of one stability run: ``fig1-L6-<precision>-seed<seed>``.
    Chapters: :ref:`ch-fig1` (the precision stability runs it awaits)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return f"fig{FIGURE}-L{L}-{precision}-seed{_checks.nonneg_int(seed, 'seed')}"


def pair_kwargs(seed: int, out_dir=None, **overrides) -> tuple[list[dict], dict]:
    """The :func:`nclib.train.run_many` arguments of one seed's pair: ``(runs, shared)``, the runs differing only
    in ``precision`` and ``run_name``, ``shared`` Figure 1's gpu-scale parameters at L = 6 with the stability
    runs' epochs, metric interval and ``seed``.  ``overrides`` replace parameters of ``shared`` (``data_path``,
    ``device``; for a CPU test of the tooling ``width``, ``epochs`` and the like) and are checked with them by
    :func:`nclib.figures.figure_parameters`: a value the engine would refuse is a ValueError naming it, as is an
    unknown name or one the stability runs fix (``precision``, ``run_name``, ``L``); ``out_dir`` defaults to
    :data:`RESULTS`.
    Chapters: :ref:`ch-fig1` (the precision stability runs it awaits)."""
    seed = _checks.nonneg_int(seed, "seed")
    for key in ("precision", "run_name", "L"):
        if key in overrides:
            raise ValueError(f"overrides must not set {key!r}: the stability runs fix it")
    unknown = set(overrides) - set(NOTEBOOK_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)} in overrides")
    # the overrides go through figure_parameters, which refuses a value the engine would refuse (lr=-1, width=0)
    setting = dict(epochs=EPOCHS, metric_every=METRIC_EVERY, progress=False)
    params = figure_parameters(FIGURE, "gpu", **{**setting, **overrides}, seed=seed,
                               out_dir=str(RESULTS if out_dir is None else out_dir))
    shared = train_kwargs(params, L)
    del shared["run_name"], shared["overwrite"]
    runs = [dict(precision=q, run_name=run_name(q, seed)) for q in PRECISIONS]
    return runs, shared


#: The statuses of a stability run that ended by itself: it trained all its epochs, or it diverged (nclib.train
#: stopped it, its history ending at the row that showed it), which is a spike too.
ENDED = ("finished", "diverged")


#: The parameters a stability run may set as its machine needs, outside the setting it tests: its data file (the
#: slice of Figure 1's samples or the whole CIFAR-10 copy; ``data_sha256`` says which), its device, its folder and
#: how one call trains (:data:`nclib.parameters.EXECUTION_KEYS`).
FREE_KEYS = ("data_path", "device", "out_dir") + EXECUTION_KEYS


def setting_differences(params: Mapping, **overrides) -> dict:
    """{name: (recorded, wanted)} for each parameter that defines a stability run (all but :data:`FREE_KEYS` and the
    precision, which its folder name states, :func:`load_stability`) that a run's ``params`` record otherwise than
    :func:`pair_kwargs` of its seed with ``overrides`` gives (decays ``"reference"`` read as
    :func:`nclib.parameters.reference_decay`; compared as :func:`nclib.runs.json_values`; a parameter the run does not
    record, added since it was made, counts at its default); empty for a run of the stability setting.  ValueError
    from :func:`pair_kwargs` for overrides it refuses.
    Chapters: :ref:`ch-fig1` (the precision stability runs it awaits)."""
    _, shared = pair_kwargs(_checks.nonneg_int(checked_params(params).get("seed"), "params['seed']"), **overrides)
    want = {k: v for k, v in shared.items() if k not in FREE_KEYS + ("precision",)}  # the folder name has it
    for key in ("lam_W", "lam_H"):
        if want[key] == "reference":
            want[key] = reference_decay(run_counts(shared).size)
    want = json_values(want)
    # a parameter added after a run was made is recorded at its default
    recorded = {k: params.get(k, DEFAULTS.get(k)) for k in want}
    return {k: (recorded[k], v) for k, v in want.items() if recorded[k] != v}


def load_stability(root=None, *, committed: bool = False, **overrides) -> dict[tuple[str, int], Run]:
    """{(precision, seed): Run} of the stability runs under ``root`` (default :data:`RESULTS`) that ended
    (:data:`ENDED`); ValueError when there is none, or when a run is not of the stability setting: its folder name
    (which names its precision and seed), or a parameter that :func:`setting_differences` finds, so that a run made
    with other parameters (a CPU test of the tooling) never counts as one, or its history (a finished run holds
    every metric epoch of :func:`nclib.runs.metric_epochs`, a diverged one a prefix of them), or its provenance,
    which must be the record of its parameters (:func:`nclib.figures.provenance_problems`: the kind of device is
    that of the ``device`` override where one is given, else that of its parameters) trained beside its pair's
    other run or none (``trained_with``), the two at one commit (:func:`nclib.figures.together_problems`).
    ``overrides``: the parameters that the runs were made with on purpose (:func:`pair_kwargs`; ``width``,
    ``epochs`` for such a test).  ``committed``: the runs are committed results
    (``results/README.md``), so every run folder under ``root`` must hold a run that ended (one that did not is an
    error, not left out), made from a clean commit (:func:`nclib.figures.made_clean_problems`) of this repository
    where git can say (:func:`nclib.figures.commit_problems`); without it, as ``scripts/stability_runs.py`` reads the
    folders a job is filling, runs that did not end are left out and the checkout they came from is not asked.
    Committed pairs must also have trained in two precisions: a GPU pair whose TF32 run did not differ from its
    fp32 run (:func:`tf32_not_engaged`) is an error naming its seeds, since :func:`precision_decision`, which reads
    only whether each run spiked, would take it for a comparison of TF32 with fp32.
    Chapters: :ref:`ch-fig1`, :ref:`ch-figures-summary`."""
    root = RESULTS if root is None else pathlib.Path(root)
    if not isinstance(committed, bool):
        raise ValueError(f"committed must be True or False, got {committed!r}")
    device = device_kind(overrides["device"]) if "device" in overrides else None
    out: dict[tuple[str, int], Run] = {}
    for path in sorted(root.glob(f"fig{FIGURE}-L{L}-*-seed*")):
        status = recorded_status(path)
        if status not in ENDED:
            if committed:
                raise ValueError(f"{str(path)!r} holds a run that did not end (status {status!r}): committed "
                                 f"stability runs are runs that ended ({' or '.join(ENDED)})")
            continue
        params, history, prov = load_run(path)
        lacks = [k for k in ("precision", "seed") if k not in params]
        if lacks:  # a run made before the parameter existed, or a params.json written by hand
            raise ValueError(f"{str(path)!r} is not a stability run: its params.json records no "
                             f"{' and no '.join(lacks)}")
        key = (params["precision"], int(params["seed"]))
        if path.name != run_name(*key):
            raise ValueError(f"{str(path)!r} is not a stability run: its folder name is not {run_name(*key)!r}")
        differ = setting_differences(params, **overrides)
        if differ:
            raise ValueError(f"{str(path)!r} is not a stability run of this setting: (recorded, wanted) {differ}")
        # a finished run recorded every metric epoch; a diverged one those up to the row that showed it
        want, got = metric_epochs(int(params["epochs"]), int(params["metric_every"])), history["epoch"].tolist()
        whole = got == want if prov["status"] == "finished" else 0 < len(got) and got == want[:len(got)]
        if not whole:
            raise ValueError(f"{str(path)!r}: its history holds {len(got)} metric epochs ({got[:2]}...{got[-1:]}), "
                             f"not those of a {prov['status']} run of {params['epochs']} epochs")
        run = Run(path, params, history, prov)
        problems = provenance_problems(run, device) + (made_clean_problems(run) if committed else [])
        partner = {run_name(q, key[1]) for q in PRECISIONS if q != key[0]}
        if isinstance(prov.get("trained_with"), list) and not set(prov["trained_with"]) <= partner:
            problems.append(f"provenance trained_with {prov['trained_with']!r} names runs other than its pair's")
        if problems:
            raise ValueError(f"{str(path)!r}: its provenance is not the record of this run: " + "; ".join(problems))
        out[key] = run
    if not out:
        raise ValueError(f"no stability runs that ended ({' or '.join(ENDED)}) under {str(root)!r}")
    apart = together_problems(out)  # a pair trained side by side: one commit
    if apart:
        raise ValueError(f"stability runs under {str(root)!r} trained side by side at two commits: " + "; ".join(apart))
    unknown = [p for run in out.values() for p in commit_problems({L: run}, run.path.name)] if committed else []
    if unknown:
        raise ValueError(f"stability runs under {str(root)!r} not made by the code of this checkout's history: "
                         + "; ".join(unknown))
    flat = tf32_not_engaged(out) if committed else []
    if flat:
        raise ValueError(f"stability runs under {str(root)!r}: tf32_not_engaged: on the GPU the TF32 runs of seeds "
                         f"{flat} did not differ from their fp32 pairs (no TF32 products recorded, or the same "
                         f"history); such pairs compare fp32 with itself and decide nothing of TF32")
    return out


def whole_pairs(root) -> list[pathlib.Path]:
    """The run folders under ``root`` of the pairs whose two runs ended (:data:`ENDED`), both precisions of each
    seed, sorted: what a GPU job archives (``scripts/gpu_figures.sh``). A run that did not end is no result, and a
    run whose partner did not end is half a pair; landed, either would stand in the way of the next job's pair.
    Used by ``scripts/gpu_figures.sh``, and in :ref:`ch-fig1`, which asserts that no pair is committed yet.
    ValueError naming ``root`` unless it is a path."""
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root must be a folder (a path), got {type(root).__name__}")
    root = pathlib.Path(root)
    ended = {path.name for path in root.glob(f"fig{FIGURE}-L{L}-*-seed*") if recorded_status(path) in ENDED}
    seeds = sorted({int(tail) for tail in (name.rsplit("seed", 1)[1] for name in ended) if tail.isdigit()})
    pairs = [[run_name(q, seed) for q in PRECISIONS] for seed in seeds]
    return [root / name for pair in pairs if ended.issuperset(pair) for name in pair]


def rise_from_low(history: Mapping) -> dict | None:
    """The largest rise of the objective (4.3) above its lowest value recorded before: ``factor`` (the largest
    quotient of a recorded objective by the lowest one recorded at an earlier epoch), ``low_epoch`` (where that
    low was) and ``epoch`` (where the objective reached ``factor`` times it); None when the objective never rises
    above an earlier value.  Unlike a rise between consecutive recorded epochs, it does not depend on the
    metric interval, nor on whether the rise was monotone.  ValueError naming ``history`` unless it is a history
    (:func:`nclib.figures.load.checked_history`) with an ``objective`` column of at least two finite positive
    values.
    Chapters: :ref:`ch-fig1`."""
    y = positive_values(history, "objective")
    low_at = np.array([int(np.argmin(y[:i + 1])) for i in range(y.size - 1)])  # the earliest low of y[0..i]
    ratio = y[1:] / y[low_at]
    j = int(np.argmax(ratio))
    if ratio[j] <= 1:
        return None
    epochs = np.asarray(history["epoch"])
    return dict(factor=float(ratio[j]), low_epoch=int(epochs[low_at[j]]), epoch=int(epochs[j + 1]))


def rise_is_consecutive(run: Run) -> bool:
    """Whether the run's largest rise above an earlier low (:func:`finite_rise`) is a rise between two consecutive
    recorded epochs, the largest such (:func:`nclib.figures.events.largest_rise`), with the same factor: then the
    stability runs' measure of a rise (from the lowest earlier record) and the figure chapters' (between consecutive
    records, the training spikes) give the same epochs and factor for it (:ref:`ch-fig1`).  False when the
    objective never rises.  ValueError naming ``run`` unless it is a :class:`Run`."""
    h = finite_history(run)
    if h["objective"].size < 2:
        return False
    low, step = rise_from_low(h), largest_rise(h)
    if low is None or step is None:
        return False
    epochs = [int(e) for e in h["epoch"]]
    return (epochs.index(low["epoch"]) - epochs.index(low["low_epoch"]) == 1
            and (step["prev_epoch"], step["epoch"]) == (low["low_epoch"], low["epoch"])
            and bool(np.isclose(step["factor"], low["factor"], rtol=1e-12)))


def diverged(run: Run) -> bool:
    """Whether nclib.train stopped the run as diverged (its objective past ``divergence_factor`` times the
    initial one, or NaN/inf).  ValueError naming ``run`` unless it is a :class:`Run`.
    Chapters: :ref:`ch-fig1`."""
    return _checked_run(run).provenance.get("status") == "diverged"


def finite_history(run: Run) -> dict:
    """The run's history up to its first row whose objective is not a finite positive number (a diverged run's
    last row may be NaN/inf); the whole history otherwise.  ValueError naming ``run`` unless it is a :class:`Run`
    whose history has an ``objective`` column.
    Chapters: :ref:`ch-fig1`."""
    if "objective" not in _checked_run(run).history:
        raise ValueError(f"run.history has no objective column; columns: {sorted(run.history)}")
    y = np.asarray(run.history["objective"], dtype=float)
    bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)))
    end = int(bad[0]) if bad.size else y.size
    return {k: np.asarray(v)[:end] for k, v in run.history.items()}


def finite_rise(run: Run) -> dict | None:
    """:func:`rise_from_low` over the run's :func:`finite_history`; None where that holds fewer than two rows.
    Chapters: :ref:`ch-fig1`."""
    h = finite_history(run)
    return rise_from_low(h) if h["objective"].size >= 2 else None


def spiked(run: Run, threshold: float = SPIKE_FACTOR) -> bool:
    """Whether a run spiked: it diverged (:func:`diverged`), or its objective (4.3) rose to more than
    ``threshold`` (:data:`SPIKE_FACTOR`; ValueError unless above 1) times its lowest earlier recorded value
    (:func:`rise_from_low`).  The
    figure chapters' spikes (a rise by more than the factor between consecutive recorded epochs, every 100
    epochs) are spikes by this definition too; recorded every 10 epochs, a rise that took 100 epochs, or that
    paused on the way, still counts.  ValueError naming ``run`` unless it is a :class:`Run`.
    Chapters: :ref:`ch-fig1`."""
    _checked_run(run)
    threshold = rise_factor(threshold)
    if diverged(run):
        return True
    rise = rise_from_low(run.history)
    return rise is not None and rise["factor"] > threshold


def stability_rows(runs: Mapping[tuple[str, int], Run]) -> list[dict]:
    """One row per run, sorted by precision then seed: ``precision``, ``seed``, ``epochs`` (the last recorded),
    ``spiked`` (:func:`spiked`), ``diverged``, ``rise``, ``rise_from`` and ``rise_to`` (:func:`rise_from_low`:
    the largest rise of the objective above an earlier low, the epochs of the low and of the peak, over
    :func:`finite_history`; None when it never rises), ``first_100`` (the first recorded epoch at 100 % training
    accuracy), ``lost_100`` (whether the accuracy fell below 100 % after it), ``settled_100`` (the epoch from
    which it stays at 100 %), ``final_acc``, ``final_objective``, ``min_objective`` (these over
    :func:`finite_history` too) and ``wall_s``.  ValueError naming ``runs`` unless it holds at least one run,
    keyed by its precision and seed (an empty table would read as "no run spiked").
    Chapters: :ref:`ch-fig1`."""
    rows = []
    for (precision, seed), run in sorted(_checked_pairs(runs).items()):
        h, rise = finite_history(run), finite_rise(run)
        first, settled = first_epoch(h, "train_acc", 1.0), settled_epoch(h, "train_acc", 1.0)
        rows.append(dict(precision=precision, seed=seed, epochs=int(run.history["epoch"][-1]),
                         spiked=spiked(run), diverged=diverged(run),
                         rise=None if rise is None else rise["factor"],
                         rise_from=None if rise is None else rise["low_epoch"],
                         rise_to=None if rise is None else rise["epoch"],
                         first_100=first, lost_100=first is not None and settled != first, settled_100=settled,
                         final_acc=float(h["train_acc"][-1]), final_objective=float(h["objective"][-1]),
                         min_objective=float(np.min(h["objective"])),
                         wall_s=float(run.provenance.get("wall_time_s", float("nan")))))
    return rows


def tf32_not_engaged(runs: Mapping[tuple[str, int], Run]) -> list[int]:
    """The seeds whose pair trained on a GPU and yet did not differ in precision: the TF32 run's provenance does not
    record TF32 products (``products_precision``), or its history equals the fp32 run's number for number (TF32
    products round differently, so two runs that differ only in them part within a few steps).  A decision made
    from such pairs compares fp32 with itself: it says nothing of TF32.  Pairs trained on a CPU (where TF32 does
    not exist, and each pair is identical by design) and seeds without both runs are not listed.
    Used by ``scripts/stability_runs.py`` (no decision is printed for such pairs) and by :func:`load_stability`,
    which refuses committed pairs it lists; no chapter calls it.  ValueError naming ``runs`` unless it holds at
    least one run, keyed by its precision and seed (no runs would read as "every pair differed")."""
    out = []
    for seed in sorted({seed for _, seed in _checked_pairs(runs)}):
        pair = {q: runs.get((q, seed)) for q in PRECISIONS}
        if any(r is None for r in pair.values()):
            continue
        devices = {device_kind(r.provenance.get("device")) for r in pair.values()}
        if devices != {"cuda"}:
            continue
        tf32, fp32 = pair["tf32"], pair["fp32"]
        same = all(np.array_equal(tf32.history[k], fp32.history[k], equal_nan=True)
                   for k in ("objective", "loss", "nc1"))
        if tf32.provenance.get("products_precision") != "tf32" or same:
            out.append(seed)
    return out


def smallest_pair_turns(run: Run) -> dict:
    """How a run holds its two smallest classes (the two classes of the smallest count: Figure 1's 100 samples
    each), from its per-class record (``class_accuracy.csv``, :func:`nclib.runs.load_class_accuracy`).

    ``since``: the first recorded epoch from which, at every record to the last, one of the two is misclassified
    whole (accuracy 0) while the other is above 50 % (None when the last record is not so); over the records from
    ``since`` on (none when ``since`` is None): ``records``, ``held`` (the lowest accuracy of the class held) and
    ``swaps`` (how often the class lost changes from one record to the next); and ``both_since``: the first recorded
    epoch from which both are misclassified whole at every record to the last (None when the last record holds
    either).  The minority collapse of a trained network seen one class at a time, in :ref:`ch-fig1`.  ValueError
    when the run has no per-class record, or when its smallest count is not shared by exactly two classes, and
    naming ``run`` unless it is a :class:`Run`."""
    record = load_class_accuracy(_checked_run(run, history=False).path)
    if record is None:
        raise ValueError(f"run {run.path.name!r} has no per-class record ({run.path}/class_accuracy.csv)")
    counts = run_counts(run.params)
    pair = np.flatnonzero(counts == counts.min())
    if pair.size != 2:
        raise ValueError(f"run {run.path.name!r}: its smallest count {counts.min()} has {pair.size} classes, not 2")
    acc = record["acc"][:, pair]
    one_lost = (acc.min(axis=1) == 0) & (acc.max(axis=1) > 0.5)
    since = settled_epoch({"epoch": record["epoch"], "one_lost": one_lost.astype(float)}, "one_lost", 1.0)
    both = settled_epoch({"epoch": record["epoch"], "both_lost": (acc.max(axis=1) == 0).astype(float)},
                         "both_lost", 1.0)
    both_since = None if both is None else int(both)
    if since is None:
        return dict(since=None, records=0, held=None, swaps=0, both_since=both_since)
    tail = record["epoch"] >= since
    lost = acc[tail].argmin(axis=1)  # which of the two is lost at each of those records
    return dict(since=int(since), records=int(np.count_nonzero(tail)), held=float(acc[tail].max(axis=1).min()),
                swaps=int(np.count_nonzero(np.diff(lost))), both_since=both_since)


def run_summary(run: Run) -> dict:
    """What :ref:`ch-fig1` tells of one strict fp32 run of :data:`RESULTS_CPU`: ``row`` (its
    :func:`stability_rows` row), ``acc_peak`` and ``nc1_peak`` (the training accuracy and NC1 recorded at the peak
    of its largest rise, None when its objective never rose), ``wrong`` (how many training samples it
    misclassifies at its last finite record), ``final_ratio`` (its objective (4.3) there over the global minimum at
    its decays, Theorems 4.1-4.3 through :func:`nclib.figures.analysis.run_theory`) and ``turns``
    (:func:`smallest_pair_turns`, so the run must have a per-class record)."""
    row = stability_rows({(_checked_run(run).params["precision"], int(run.params["seed"])): run})[0]
    h = finite_history(run)
    peak = None if row["rise_to"] is None else list(h["epoch"]).index(row["rise_to"])
    n_samples = int(run_counts(run.params).sum())
    return dict(row=row, acc_peak=None if peak is None else float(h["train_acc"][peak]),
                nc1_peak=None if peak is None else float(h["nc1"][peak]),
                wrong=round((1 - float(h["train_acc"][-1])) * n_samples),
                final_ratio=float(h["objective"][-1]) / run_theory(run.params).minimum,
                turns=smallest_pair_turns(run))


# the columns of a stability_rows row that precision_decision reads, and those stability_glue reads
_DECISION_KEYS = ("precision", "seed", "spiked")
_GLUE_KEYS = _DECISION_KEYS + ("diverged", "rise", "first_100", "lost_100")


def _checked_rows(rows, keys) -> list:
    """``rows`` checked as :func:`stability_rows` gives them: a list (or tuple) of mappings, each with ``keys``, a
    precision of :data:`PRECISIONS`, a seed (a whole number >= 0) and ``spiked`` True or False, no two of one
    precision and seed.  Returns them as a list; ValueError naming ``rows`` otherwise."""
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError(f"rows must be a list of stability_rows rows (mappings), got {type(rows).__name__}"
                         + ("" if not isinstance(rows, (list, tuple)) else " holding something else"))
    seen = set()
    for i, r in enumerate(rows):
        lacks = [k for k in keys if k not in r]
        if lacks:
            raise ValueError(f"rows[{i}] lacks the column(s) {lacks} of stability_rows")
        if r["precision"] not in PRECISIONS or not _checks.is_integral(r["seed"]) or int(r["seed"]) < 0 \
                or not isinstance(r["spiked"], (bool, np.bool_)):
            raise ValueError(f"rows[{i}] must have a precision of {PRECISIONS}, a seed >= 0 and spiked True or "
                             f"False, got {r['precision']!r}, {r['seed']!r}, {r['spiked']!r}")
        key = (r["precision"], int(r["seed"]))
        if key in seen:
            raise ValueError(f"rows hold two rows of precision {key[0]!r} and seed {key[1]}")
        seen.add(key)
    return list(rows)


def precision_decision(rows: list[dict]) -> dict:
    """The precision of the figure runs, by the rule fixed before the stability runs were made.

    Only seeds with both a fp32 and a TF32 row count (a pair).  Strict fp32 is chosen when TF32 runs spike where
    fp32 runs do not: the seeds whose fp32 run spiked are among those whose TF32 run spiked, and there are more
    of the latter.  Otherwise TF32 stays: when both spike alike (or fp32 runs spike where TF32 runs do not), the
    spike is not a precision artefact; when no run spiked, the stability runs did not reproduce the spike in
    their epochs, and say nothing about precision.  Returns ``precision``, ``case`` (``"tf32 spikes more"``;
    ``"alike"``: the same seeds spiked; ``"fp32 spikes too"``: some fp32 run spiked where its TF32 pair did not;
    ``"no spike"``), ``seeds`` (the paired seeds) and ``spiked`` ({precision: seeds whose run spiked}).
    ``rows``: rows of :func:`stability_rows` (``precision``, ``seed`` and ``spiked`` are read), at most one per
    precision and seed; ValueError naming ``rows`` otherwise, and where no seed has both a fp32 and a TF32 row.

    It is a decision rule, not a test of a cause: a pair's two runs drift apart after their first different
    rounding, so one seed on which only the TF32 run spiked can be chance; more seeds (``--extra-seeds`` of
    ``scripts/stability_runs.py``) weigh it, and the book says how many seeds decided.  It reads the rows only, not
    the runs' provenance: rows of pairs whose TF32 run did not use TF32 (:func:`tf32_not_engaged`) would read as
    a comparison of TF32 with fp32, so those pairs are refused before, by ``load_stability(committed=True)`` and by
    ``scripts/stability_runs.py``, which then prints no decision.
    Used by ``scripts/stability_runs.py`` and by ``scripts/land_gpu_runs.py``, whose land and promote refuse figure
    runs of another precision than the committed pairs decide, and any before they decide one; no chapter calls it
    yet.
    """
    by = {(r["precision"], int(r["seed"])): r for r in _checked_rows(rows, _DECISION_KEYS)}
    seeds = sorted({s for (q, s) in by if all((p, s) in by for p in PRECISIONS)})
    if not seeds:
        raise ValueError("rows hold no seed with both a fp32 and a tf32 run")
    hit = {q: [s for s in seeds if by[q, s]["spiked"]] for q in PRECISIONS}
    if not hit["fp32"] and not hit["tf32"]:
        case, precision = "no spike", "tf32"
    elif set(hit["fp32"]) < set(hit["tf32"]):
        case, precision = "tf32 spikes more", "fp32"
    elif hit["fp32"] == hit["tf32"]:
        case, precision = "alike", "tf32"
    else:
        case, precision = "fp32 spikes too", "tf32"
    return dict(precision=precision, case=case, seeds=seeds, spiked=hit)


def stability_glue(rows: list[dict]) -> dict:
    """The numbers a chapter quotes about the stability runs (:func:`stability_rows`), formatted as printed, and
    only numbers: the chapter writes the words around them, asserting what they say against
    :func:`precision_decision` and these counts.  ``seeds`` (how many paired seeds) and, per precision ``<q>`` of
    :data:`PRECISIONS`, over its paired runs: ``<q>-spiked`` (how many spiked) and, if any, ``<q>-spiked-seeds``
    (which); ``<q>-diverged``; ``<q>-rose`` (how many rose above an earlier low) and, if any, ``<q>-rise-max``
    (the largest rise); ``<q>-reached-100`` (how many reached 100 % training accuracy) and, if any,
    ``<q>-first-100-min`` and ``<q>-first-100-max`` (the earliest and latest first epoch at 100 %); and
    ``<q>-lost-100`` (how many fell below 100 % after reaching it).  A key whose number does not exist (no run
    rose) is absent, never a word.  ``rows``: rows of :func:`stability_rows`, ValueError naming ``rows`` as for
    :func:`precision_decision`, and where a row lacks ``diverged``, ``rise``, ``first_100`` or ``lost_100``.
    Not yet used by a chapter: ``scripts/README.md`` (the stability job's landing) has the sentence of
    :ref:`ch-fig1` on the precision stability runs rewritten from it once a pair is committed in
    ``results/stability/``; only the tests call it until then."""
    rows = _checked_rows(rows, _GLUE_KEYS)
    paired = set(precision_decision(rows)["seeds"])
    g = {"seeds": str(len(paired))}
    for q in PRECISIONS:
        mine = [r for r in rows if r["precision"] == q and r["seed"] in paired]
        hit = sorted(r["seed"] for r in mine if r["spiked"])
        rises = [r["rise"] for r in mine if r["rise"] is not None]
        firsts = sorted(r["first_100"] for r in mine if r["first_100"] is not None)
        g.update({f"{q}-spiked": str(len(hit)), f"{q}-diverged": str(sum(r["diverged"] for r in mine)),
                  f"{q}-rose": str(len(rises)), f"{q}-reached-100": str(len(firsts)),
                  f"{q}-lost-100": str(sum(r["lost_100"] for r in mine))})
        if hit:
            g[f"{q}-spiked-seeds"] = ", ".join(map(str, hit))
        if rises:
            g[f"{q}-rise-max"] = written(max(rises), 3)
        if firsts:
            g[f"{q}-first-100-min"], g[f"{q}-first-100-max"] = str(firsts[0]), str(firsts[-1])
    return g
