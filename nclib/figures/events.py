"""Events in the recorded history of a figure's runs: the first and the settled epoch at which a metric reaches a
threshold, the rises and training spikes of objective (4.3) between recorded epochs, the step decay of the learning
rate, dips of the training accuracy below 100 %.  Numbers only; the theory at the runs' decays, stalls, orderings and
the checks every figure chapter asserts are :mod:`nclib.figures.analysis`.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from .. import _checks
from .load import Run, checked_history, checked_params, checked_runs


def _epochs(history: Mapping) -> np.ndarray:
    """``history["epoch"]`` of a history checked by :func:`nclib.figures.load.checked_history` (ValueError naming
    ``history``)."""
    return np.asarray(checked_history(history)["epoch"])


def _finite_threshold(threshold) -> float:
    """``threshold`` as a float; ValueError naming it unless it is a finite real number (a NaN compares false with
    everything, so a NaN threshold would read as "never reached")."""
    if not _checks.real_number(threshold) or not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def rise_factor(threshold) -> float:
    """``threshold``, the factor by which objective (4.3) must rise to count as a training spike
    (:data:`SPIKE_FACTOR` by default), as a float; ValueError naming it unless it is a finite number above 1 (a
    threshold at or below 1 would count flat stretches or falls of the objective as spikes).  The figure chapters'
    spikes (:func:`spikes`, :func:`other_spikes`) and the stability runs'
    (:func:`nclib.figures.stability.spiked`) check their threshold with it.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    threshold = _finite_threshold(threshold)
    if threshold <= 1:
        raise ValueError(f"threshold must be above 1 (a rise), got {threshold!r}")
    return threshold


def first_epoch(history: Mapping, key: str, threshold: float, above: bool = True) -> int | None:
    """The first recorded epoch at which ``history[key] >= threshold`` (``above``) or ``<= threshold``.

    None when it never happens. Resolution: the run's ``metric_every``. Used for "the first epoch at which
    the training accuracy reaches 100 %" in :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    epochs = _epochs(history)
    if key not in history:
        raise ValueError(f"key {key!r} is not a history column; columns: {sorted(history)}")
    threshold, above = _finite_threshold(threshold), _checks.flag(above, "above")
    y = np.asarray(history[key], dtype=float)
    hit = np.flatnonzero(y >= threshold) if above else np.flatnonzero(y <= threshold)
    return int(epochs[hit[0]]) if hit.size else None


def settled_epoch(history: Mapping, key: str, threshold: float, above: bool = True) -> int | None:
    """The first recorded epoch from which ``history[key] >= threshold`` (``above``) or ``<= threshold`` holds at
    every later recorded epoch, up to the last one.

    None when the last recorded value misses the threshold. Equal to :func:`first_epoch` unless the value
    crosses back after first reaching the threshold (a training spike). Used for "the epoch from which the
    training accuracy stays at 100 % to the end" in :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    epochs = _epochs(history)
    if key not in history:
        raise ValueError(f"key {key!r} is not a history column; columns: {sorted(history)}")
    threshold, above = _finite_threshold(threshold), _checks.flag(above, "above")
    y = np.asarray(history[key], dtype=float)
    miss = np.flatnonzero(~(y >= threshold)) if above else np.flatnonzero(~(y <= threshold))
    if y.size == 0 or (miss.size and miss[-1] == y.size - 1):
        return None
    return int(epochs[miss[-1] + 1 if miss.size else 0])


#: A rise of the objective (4.3) by more than this factor between two consecutive recorded epochs counts as a
#: training spike in :ref:`ch-fig1` to :ref:`ch-fig4`: within one metric interval the objective rose by more
#: than its whole distance to the global minimum (which is > 0). A choice; the chapters glue the size of the
#: other rises next to it.
SPIKE_FACTOR = 2.0

#: The history columns whose values :func:`largest_rise` reports before, at and after a rise.
RISE_KEYS = ("objective", "nc1", "nc3", "train_acc")


def recorded_every(history: Mapping, every: int) -> dict:
    """The history's records at the epochs that are multiples of ``every``: the same run as if it had recorded its
    metrics every ``every`` epochs (its ``metric_every`` a divisor of ``every``), so that the rises of two runs
    recorded at different intervals (:func:`largest_rise`, :data:`SPIKE_FACTOR`) are compared on one grid
    (:ref:`ch-fig1`, :ref:`ch-figures-summary`).  ``every``: a positive integer, a multiple of the history's
    interval (the greatest common divisor of its recorded epochs but the last, which may be a run's final epoch off
    that grid, :func:`nclib.runs.metric_epochs`), every multiple of which up to the last recorded epoch the history
    holds; ValueError naming it otherwise (a ``metric_every`` that does not divide it would leave a coarser grid, on
    which a rise spans several of ``every``'s intervals), or naming ``history`` as
    :func:`nclib.figures.load.checked_history` does or when it holds no record."""
    every = _checks.positive_int(every, "every")
    epochs = _epochs(history).astype(np.int64)
    if epochs.size == 0:
        raise ValueError("history must hold at least one record to be read every few epochs")
    on_grid = epochs[:-1] if epochs.size > 2 else epochs
    interval = int(np.gcd.reduce(np.abs(on_grid)))
    if interval and every % interval:
        raise ValueError(f"every must be a multiple of the history's interval of {interval} epochs, got {every}")
    missing = np.setdiff1d(np.arange(0, int(epochs.max()) + 1, every), epochs)
    if missing.size:
        raise ValueError(f"every must name epochs the history recorded: of the multiples of every={every}, epoch(s) "
                         f"{', '.join(str(int(e)) for e in missing[:3])}{'...' if missing.size > 3 else ''} "
                         f"are not recorded")
    keep = epochs % every == 0
    return {k: np.asarray(v)[keep] for k, v in history.items()}


def positive_values(history: Mapping, key: str = "objective") -> np.ndarray:
    """``history[key]`` (default: objective (4.3)) as floats, checked as every measure of its rises reads it: at
    least two values, all finite and positive, so that the quotient of any two is defined. ValueError naming ``history``
    where it has no such column or another value, and as :func:`nclib.figures.load.checked_history` does. The rises
    between consecutive records (:func:`largest_rise`, :func:`record_rises`, :func:`rise_ratios`) and above an earlier
    low (:func:`nclib.figures.stability.rise_from_low`) read the column through it.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    checked_history(history)
    if key not in history:
        raise ValueError(f"history has no {key} column; columns: {sorted(history)}")
    y = np.asarray(history[key], dtype=float)
    if y.size < 2 or not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError(f"history[{key!r}] must hold at least two finite positive values, got {y.tolist()[:5]}...")
    return y


def _ratios(history: Mapping, key: str = "objective") -> tuple[np.ndarray, np.ndarray]:
    """``history[key]`` as floats (:func:`positive_values`) and its quotients between consecutive recorded
    epochs."""
    y = positive_values(history, key)
    return y, y[1:] / y[:-1]


def largest_rise(history: Mapping, key: str = "objective") -> dict | None:
    """The largest rise of ``history[key]`` (default: objective (4.3)) between two consecutive recorded epochs.

    Returns None when the column never rises, else a dict: ``factor`` (value at ``epoch`` over the value at
    ``prev_epoch``, the largest such quotient of consecutive recorded epochs), ``epoch``, ``prev_epoch``;
    ``start_epoch`` and ``climb``: where the stretch of consecutive rises that ends at ``epoch`` starts, and
    the value at ``epoch`` over the value there (``climb >= factor``; the two differ when the rise took more
    than one metric interval); ``lr`` and ``lr_prev``: the learning rate recorded at ``epoch`` (the rate of
    the epochs since ``prev_epoch`` when the two agree) and at ``prev_epoch``; ``before``, ``at`` and
    ``final``: the objective, NC1, NC3 and training accuracy (:data:`RISE_KEYS`) at ``start_epoch``, at
    ``epoch`` and at the last recorded epoch; ``back_epoch``: the first recorded epoch after ``epoch`` at which
    ``history[key]`` is back at or below its value at ``start_epoch`` (None if never). Used for the training
    spikes (:data:`SPIKE_FACTOR`) of :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """
    y, ratio = _ratios(history, key)
    missing = [k for k in ("epoch", "lr", *RISE_KEYS) if k not in history]
    if missing:
        raise ValueError(f"history lacks the column(s) {missing}")
    if not np.any(ratio > 1):
        return None
    j = int(np.argmax(ratio)) + 1
    s = j - 1
    while s > 0 and y[s] > y[s - 1]:
        s -= 1
    e = np.asarray(history["epoch"])
    values = lambda i: {k: float(history[k][i]) for k in RISE_KEYS}  # noqa: E731
    back = np.flatnonzero(y[j + 1:] <= y[s])
    return dict(factor=float(ratio[j - 1]), epoch=int(e[j]), prev_epoch=int(e[j - 1]), start_epoch=int(e[s]),
                climb=float(y[j] / y[s]), lr=float(history["lr"][j]), lr_prev=float(history["lr"][j - 1]),
                before=values(s), at=values(j), final=values(-1),
                back_epoch=int(e[j + 1 + back[0]]) if back.size else None)


def spikes(runs: Mapping[int, Run], threshold: float = SPIKE_FACTOR) -> dict[int, dict]:
    """{L: :func:`largest_rise` of the objective} of the runs whose objective rises by more than ``threshold``
    between two consecutive recorded epochs (the training spikes of :ref:`ch-fig1` to :ref:`ch-fig4` and
    :ref:`ch-figures-summary`), sorted by L.  ``threshold``: above 1; ValueError naming it otherwise, and naming
    ``runs`` as :func:`nclib.figures.load.checked_runs` does."""
    threshold, runs = rise_factor(threshold), checked_runs(runs, columns=("lr", *RISE_KEYS))
    out = {}
    for L, run in sorted(runs.items()):
        rise = largest_rise(run.history)
        if rise is not None and rise["factor"] > threshold:
            out[L] = rise
    return out


def rise_ratios(runs: Mapping[int, Run]) -> dict:
    """How objective (4.3) moves between consecutive recorded epochs over all of a figure's runs.

    ``intervals`` (the number of pairs of consecutive recorded epochs), ``rises`` (how many of them see the
    objective rise), ``median`` (the median factor of those rises, None if none) and ``largest_below`` (the
    largest rise factor at most :data:`SPIKE_FACTOR`, None if none): the scale against which a training
    spike stands out.  ValueError for no runs or a history without an objective column
    (:func:`nclib.figures.load.checked_runs`), or a run whose objective is not finite and positive throughout.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    checked_runs(runs, columns=("objective",))
    ratios = np.concatenate([_ratios(r.history)[1] for r in runs.values()])
    rises = ratios[ratios > 1]
    below = rises[rises <= SPIKE_FACTOR]
    return dict(intervals=int(ratios.size), rises=int(rises.size),
                median=float(np.median(rises)) if rises.size else None,
                largest_below=float(below.max()) if below.size else None)


def record_rises(history: Mapping, key: str = "objective") -> list[tuple[int, int, float]]:
    """Every rise of ``history[key]`` (default: objective (4.3)) between two consecutive recorded epochs, as
    ``(previous epoch, epoch, factor)`` in epoch order, ``factor`` > 1 the value at ``epoch`` over the value at
    ``previous epoch``: the rises a reader counts on a figure's objective, of which :func:`largest_rise` is the
    largest and :func:`spikes` those above :data:`SPIKE_FACTOR` (:ref:`ch-fig1` to :ref:`ch-fig4`).  ValueError
    naming ``history`` unless the column holds at least two values, all finite and positive
    (:func:`positive_values`), or without an ``epoch`` column."""
    _, ratio = _ratios(history, key)
    ep = _epochs(history)
    return [(int(ep[i]), int(ep[i + 1]), float(q)) for i, q in enumerate(ratio) if q > 1]


def other_spikes(history: Mapping, threshold: float = SPIKE_FACTOR) -> list[tuple[int, int, float]]:
    """Every rise of objective (4.3) by more than ``threshold`` between consecutive recorded epochs but the
    largest (:func:`largest_rise`), as ``(previous epoch, epoch, factor)`` in epoch order: a run's training spikes
    after its largest in :ref:`ch-fig1` to :ref:`ch-fig4`.  ``threshold``: above 1 (:func:`rise_factor`);
    ValueError naming it otherwise."""
    threshold = rise_factor(threshold)
    rise = largest_rise(history)
    return [(e0, e1, q) for e0, e1, q in record_rises(history)
            if q > threshold and (rise is None or e1 != rise["epoch"])]


def next_milestone(params: Mapping, epoch: int) -> int | None:
    """The first step decay of the learning rate (``lr_milestones``) at or after ``epoch``, None if none: whether a
    training spike of :ref:`ch-fig1` to :ref:`ch-fig4` came before the step.  ``epoch``: a non-negative integer;
    ValueError naming it otherwise, and naming ``params`` unless it is a mapping (a run's ``params.json``)."""
    checked_params(params)
    epoch = _checks.nonneg_int(epoch, "epoch")
    later = sorted(int(m) for m in params.get("lr_milestones") or [] if int(m) >= epoch)
    return later[0] if later else None


def lr_step(runs: Mapping[int, Run]) -> dict[int, dict]:
    """{L: what the step decay of the learning rate did} of the runs whose history goes past their first
    milestone (``lr_milestones``: epochs after it use lr x ``lr_gamma``; the paper's runs step after epoch 6,000).

    For each: ``milestone``; ``before``: the last recorded epoch at or before it (``epoch`` and the objective,
    NC1, NC3 and training accuracy there, :data:`RISE_KEYS`); ``after``: the first recorded epoch after it (the
    same keys); ``final``: the last recorded epoch (the same keys); ``objective_drop``: the objective at
    ``before`` over the final one (above 1: it fell after the step); ``below_100_before``: whether the accuracy
    was below 100 % at ``before``; ``settled_100``: the recorded epoch from which it stays at 100 % to the end
    (:func:`settled_epoch`; None if it ends below); ``recovered``: the accuracy was below 100 % at ``before`` and
    settled at 100 % after the milestone.  Sorted by L; runs that stop at or before their milestone are left out.
    ValueError naming ``runs`` as :func:`nclib.figures.load.checked_runs` does.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    out = {}
    for L, run in sorted(checked_runs(runs, columns=RISE_KEYS).items()):
        h = run.history
        milestones = sorted(int(m) for m in run.params.get("lr_milestones") or [])
        epochs = np.asarray(h["epoch"])
        if not milestones or epochs[-1] <= milestones[0]:
            continue
        m = milestones[0]
        i = int(np.flatnonzero(epochs <= m)[-1])
        values = lambda j: {"epoch": int(epochs[j]), **{k: float(h[k][j]) for k in RISE_KEYS}}  # noqa: E731
        settled = settled_epoch(h, "train_acc", 1.0)
        below = float(h["train_acc"][i]) < 1.0
        out[L] = dict(milestone=m, before=values(i), after=values(i + 1), final=values(-1),
                      objective_drop=float(h["objective"][i] / h["objective"][-1]), below_100_before=below,
                      settled_100=settled, recovered=below and settled is not None and settled > m)
    return out


def accuracy_dips(runs: Mapping[int, Run]) -> dict[int, dict]:
    """{L: the dip} of the runs whose training accuracy falls below 100 % again after first reaching it.

    ``first`` (the first recorded epoch at 100 %, :func:`first_epoch`), ``times`` (how many separate spells of
    recorded epochs below 100 % follow it), ``low`` and ``low_epoch`` (the lowest accuracy recorded after
    ``first`` and where), ``back`` (the epoch from which it is at 100 % to the end, :func:`settled_epoch`; None if
    it ends below) and ``final`` (the final accuracy). Sorted by L.  ValueError naming ``runs`` as
    :func:`nclib.figures.load.checked_runs` does.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    out = {}
    for L, run in sorted(checked_runs(runs, columns=("train_acc",)).items()):
        h = run.history
        first, back = first_epoch(h, "train_acc", 1.0), settled_epoch(h, "train_acc", 1.0)
        if first is None or back == first:
            continue
        after = np.asarray(h["epoch"]) > first
        i = np.flatnonzero(after)[np.argmin(np.asarray(h["train_acc"])[after])]
        below = np.asarray(h["train_acc"])[after] < 1.0
        times = int(below[0]) + int(np.sum(below[1:] & ~below[:-1]))
        out[L] = dict(first=first, times=times, low=float(h["train_acc"][i]), low_epoch=int(h["epoch"][i]),
                      back=back, final=float(h["train_acc"][-1]))
    return out
