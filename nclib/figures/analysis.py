"""What the committed runs of Figures 1-4 show, as numbers and tables: the theory at each run's own decays
(Theorems 4.1-4.3), stalls below 100 % training accuracy, the final values and their orderings in L, the falls of
the collapse metrics, wall times; the verdict near the collapsed minimizer or only part of the way
(:func:`collapse_verdict`); the properties every figure chapter asserts (:func:`check_runs`).  The events in
a run's history (first and settled epochs, rises and training spikes of objective (4.3), the learning-rate step,
accuracy dips) are :mod:`nclib.figures.events`; the speed of the GPU runs (benchmarks, calibration, what one machine
fits) is :mod:`nclib.figures.speed`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from .. import _checks, minority, ufm
from ..imbalance import small_classes
from ..runs import load_class_accuracy
from .config import HISTORY_KEYS, figure
from .events import RISE_KEYS, first_epoch, largest_rise, settled_epoch
from .load import Run, checked_params, checked_runs, one_call, run_counts

# --------------------------------------------------------------------------------------------- theory


@dataclasses.dataclass(frozen=True)
class RunTheory:
    """What Theorems 4.1-4.3 predict for a run's own problem (counts n, lambdas, L, bias).

    ``kappa``: singular values of M (Y-bar with a bias, D = diag(sqrt n) without); ``s_product``: the
    singular values of P = W_L ... W_1 at every global minimizer (0 = a collapsed mode); ``alive``: the
    number of nonzero modes; ``minimum``: the global minimum of (4.3) over free features (a lower bound of
    the run's objective whenever every hidden width is >= K); ``b_star``: n/N (bias case, Theorems 4.2/4.3)
    or None; ``minimizer_accuracy``: the training accuracy of every global minimizer
    (:func:`nclib.minority.minimizer_accuracy`); ``global_mean_norm``: the norm of the global feature mean at every
    global minimizer (:func:`nclib.ufm.minimizer_global_mean_norm`: 0 with a bias, a positive number without).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """

    n: np.ndarray
    L: int
    bias: bool
    lam_W: object
    lam_H: float
    kappa: np.ndarray
    s_product: np.ndarray
    alive: int
    minimum: float
    b_star: np.ndarray | None
    minimizer_accuracy: float
    global_mean_norm: float

    @property
    def N(self) -> int:
        return int(self.n.sum())

    @property
    def K(self) -> int:
        return int(self.n.size)

    @property
    def fitting_collapse(self) -> bool:
        """Whether the global minimizers keep a mode and fit every training label: a collapsed minimizer that fits
        the labels, which :func:`collapse_verdict` judges a run against (it refuses a problem without one)."""
        return self.alive > 0 and self.minimizer_accuracy == 1.0


def run_theory(params: Mapping) -> RunTheory:
    """The predictions of Theorems 4.1-4.3 (``nclib.ufm.structure`` and ``minimum_value``) at a run's settings.

    Uses the run's counts (:func:`run_counts`), ``lam_W`` (one number or L), ``lam_H``, ``L`` and ``bias``
    from its ``params.json``. Raises ValueError when a decay is 0 (the theorems then have no minimizer), and naming
    ``params`` unless a mapping that holds them (:func:`nclib.figures.load.checked_params`).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    n = run_counts(checked_params(params, keys=("L", "lam_W", "lam_H")))
    L = _checks.positive_int(params["L"], "params['L']")
    bias = _checks.flag(params.get("bias"), "params['bias']")
    lam_W = params["lam_W"]
    lam_H = _checks.positive_float(params["lam_H"], "lam_H")
    _checks.layer_lambdas(lam_W, L, "lam_W", positive=True)
    st = ufm.structure(n, lam_W, lam_H, L, bias)
    alive = int(np.count_nonzero(st.s_product > 0))
    minimum = ufm.minimum_value(n, lam_W, lam_H, L, bias)
    b_star = n / n.sum() if bias else None
    return RunTheory(n=n, L=L, bias=bias, lam_W=lam_W, lam_H=lam_H, kappa=st.kappa, s_product=st.s_product,
                     alive=alive, minimum=float(minimum), b_star=b_star,
                     minimizer_accuracy=minority.minimizer_accuracy(n, lam_W, lam_H, L, bias),
                     global_mean_norm=ufm.minimizer_global_mean_norm(n, lam_W, lam_H, L, bias))


def stalls(runs: Mapping[int, Run]) -> dict[int, dict]:
    """{L: what the history says} of the runs whose training accuracy ends below 100 % (sorted by L).

    For each such run: ``n`` (its class counts), ``since`` (the first recorded epoch from which the accuracy is below
    100 % at every recorded epoch to the end), ``end`` (the last recorded epoch), ``train_acc`` and ``misclassified``
    (the final accuracy and the training samples misclassified then, (1 - accuracy) x N), ``best_acc`` (the highest
    accuracy recorded from ``since`` on), ``before`` (None when the run never reached 100 %; else the recorded epoch
    just before ``since``, where it was at 100 %, with ``objective_before`` and ``objective_since``, the objective there
    and at ``since``, and ``lr_before`` and ``lr_since``, the learning rate recorded there; ``lr_before`` is None when
    ``before`` is), ``half`` (the first recorded epoch of the run's second half) and ``objective_change`` (the final
    objective over the objective there, minus 1), ``acc100_epoch`` (:func:`nclib.figures.events.first_epoch` at 100 %),
    ``objective_ratio`` (final objective over the global minimum of (4.3)), ``nc1`` and ``nc3`` (final), ``nc1_drop``
    (NC1 at epoch 0 over the final NC1) and ``minimizer_accuracy`` (the training accuracy of every global minimizer at
    the run's decays, :func:`run_theory`), and ``classes``: None when the run has no ``class_accuracy.csv`` (runs made
    before it was recorded), else the classes below 100 % at the last recorded epoch as ``(class index, its sample
    count, its accuracy)``, whose misclassified samples must add up to ``misclassified`` (ValueError otherwise);
    ``smallest`` and ``smallest_count`` (the smallest class count and how many classes have it) and
    ``smallest_multiple`` (``misclassified`` over ``smallest`` when it divides evenly, else None: how many smallest
    classes the misclassified samples would fill, which the count alone does not show they do). A run whose accuracy
    stays below ``minimizer_accuracy`` has stalled away from the global minimizers. ``partial``: for L >= 2 (None
    for L = 1) the local minimizer of Lemma A.2 with some modes at 0 whose value is nearest the final objective
    (:func:`nclib.minority.nearest_partial_minimum`), with ``partial_ratio`` (its value over the global minimum; None
    for L = 1) and ``partial_metrics`` (NC1 to NC3 at that point, :func:`nclib.minority.partial_point_metrics`: what the
    run's metrics would read if it had stopped there; None for L = 1).
    ValueError naming ``runs`` unless it holds at least one run whose history has the columns read
    (:func:`nclib.figures.load.checked_runs`), and
    naming the run where its NC1 is not finite and positive at epoch 0 and at the end (its fall, as
    :func:`metric_drops` reads it).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    out = {}
    for L, run in sorted(checked_runs(runs, columns=("train_acc", "objective", "nc1", "nc3", "lr")).items()):
        h, th = run.history, run_theory(run.params)
        acc, e = np.asarray(h["train_acc"], dtype=float), np.asarray(h["epoch"])
        if acc[-1] >= 1.0:
            continue
        full = np.flatnonzero(acc >= 1.0)
        i = int(full[-1]) + 1 if full.size else 0
        obj = np.asarray(h["objective"], dtype=float)
        before = int(e[i - 1]) if i > 0 else None
        half = int(np.searchsorted(e, e[-1] / 2))  # the first recorded epoch of the second half
        misclassified = int(round((1.0 - acc[-1]) * th.N))
        classes, per_class = None, load_class_accuracy(run.path)
        if per_class is not None:
            if int(per_class["epoch"][-1]) != int(e[-1]):
                raise ValueError(f"run L={L}: class_accuracy.csv ends at epoch {int(per_class['epoch'][-1])}, the "
                                 f"history at {int(e[-1])}")
            last = per_class["acc"][-1]
            classes = [(int(k), int(th.n[k]), float(last[k])) for k in np.flatnonzero(last < 1.0)]
            wrong = sum(round((1.0 - a) * n) for _, n, a in classes)
            if wrong != misclassified:
                raise ValueError(f"run L={L}: class_accuracy.csv misclassifies {wrong} samples at the end, the "
                                 f"history {misclassified}")
        partial = (minority.nearest_partial_minimum(th.n, th.lam_W, th.lam_H, th.L, th.bias, float(obj[-1]))
                   if th.L >= 2 else None)
        at_partial = (None if partial is None else
                      minority.partial_point_metrics(th.n, th.lam_W, th.lam_H, th.L, th.bias, partial["alive"]))
        out[L] = dict(n=th.n, classes=classes, partial=partial, partial_metrics=at_partial,
                      partial_ratio=None if partial is None else partial["partial"] / th.minimum, since=int(e[i]),
                      end=int(e[-1]), train_acc=float(acc[-1]), half=int(e[half]),
                      objective_change=float(obj[-1] / obj[half] - 1.0),
                      misclassified=misclassified, best_acc=float(acc[i:].max()),
                      before=before, objective_before=float(obj[i - 1]) if before is not None else None,
                      objective_since=float(obj[i]), acc100_epoch=first_epoch(h, "train_acc", 1.0),
                      objective_ratio=float(obj[-1] / th.minimum), nc1=float(h["nc1"][-1]),
                      nc3=float(h["nc3"][-1]), nc1_drop=_fall(h, "nc1", L),
                      minimizer_accuracy=th.minimizer_accuracy,
                      lr_before=float(h["lr"][i - 1]) if before is not None else None, lr_since=float(h["lr"][i]),
                      smallest=int(th.n.min()), smallest_count=int(np.sum(th.n == th.n.min())),
                      smallest_multiple=(misclassified // int(th.n.min()) if misclassified % int(th.n.min()) == 0
                                         else None))
    return out


#: The NC2 metrics :func:`stall_nc2` sets a stalled run against its nearest local minimizer with modes at 0.
NC2_KEYS = ("nc2_w", "nc2_h", "nc2_wh")


def stall_nc2(runs: Mapping[int, Run]) -> dict[int, dict]:
    """{L: NC2^W, NC2^H and NC2^{WH} of Section 5 / Appendix C at the end of a stalled run (:func:`stalls`) with
    L >= 2, against the local minimizer of Lemma A.2 nearest its final objective and the two next to it}: a test of
    that point by a measure that does not use the objective.  The NC2 pick out the same point of the chain as the
    objective does when ``off < next_off``: every final NC2 is nearer its value at the point than any is to its value
    at either neighbour.

    For each run: ``final`` and ``at_point`` ({key: value} of :data:`NC2_KEYS`, the run's last record and
    :func:`nclib.minority.partial_point_metrics` at the point), ``dead`` (how many of the weakest modes the point puts
    at 0), ``off`` (the largest over the three of |final / at point - 1|), ``neighbours`` ({dead: {key: value}} at
    the points of the chain with one mode fewer and one more at 0, :func:`nclib.minority.alive_without_weakest`,
    those that exist; the one with none at 0 is the global minimizer, where every NC2 is 0 to rounding),
    ``next_off`` (the smallest |final / there - 1| over the neighbours and the three; inf against a value 0) and
    ``ratio`` (``next_off / off``: how many times as far off the neighbours are; inf where ``off`` is 0).
    ValueError naming ``runs`` as :func:`stalls` does, and naming the run where its point keeps a mode the global
    minimizer puts at 0 (``kept`` of :func:`nclib.minority.nearest_partial_minimum`), whose neighbours are not those.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig3`.
    """
    checked_runs(runs, columns=NC2_KEYS)
    out = {}
    for L, st in stalls(runs).items():
        place = st["partial"]
        if place is None:  # L = 1: no local minimizer with modes at 0
            continue
        if place["kept"]:
            raise ValueError(f"run L={L}: its nearest point keeps {place['kept']} modes the global minimizer puts "
                             "at 0; the chain of alive_without_weakest does not hold it")
        th, h = run_theory(runs[L].params), runs[L].history
        final = {k: float(h[k][-1]) for k in NC2_KEYS}
        at_point = {k: st["partial_metrics"][k] for k in NC2_KEYS}
        dead = place["dead"]
        neighbours = {}
        for other in (dead - 1, dead + 1):
            if 0 <= other <= th.alive:
                keep = minority.alive_without_weakest(th.n, th.lam_W, th.lam_H, L, th.bias, other)
                there = minority.partial_point_metrics(th.n, th.lam_W, th.lam_H, L, th.bias, keep)
                neighbours[other] = {k: there[k] for k in NC2_KEYS}

        def rel(values):
            return [abs(final[k] / values[k] - 1) if values[k] != 0 else math.inf for k in NC2_KEYS]

        out[L] = dict(final=final, at_point=at_point, dead=dead, off=max(rel(at_point)), neighbours=neighbours,
                      next_off=min(min(rel(v)) for v in neighbours.values()))
        out[L]["ratio"] = out[L]["next_off"] / out[L]["off"] if out[L]["off"] > 0 else math.inf
    return out


#: The spreads :func:`stall_spread_nc1` adds to the features, of their largest |entry|: a hundredfold range.
SPREADS = (1e-2, 1e-3, 1e-4)


def stall_spread_nc1(runs: Mapping[int, Run], spreads=SPREADS) -> dict[int, dict]:
    """{L: NC1 of Section 5 / Appendix C near the local minimizer of Lemma A.2 nearest the final objective of a
    stalled run (:func:`stalls`) with L >= 2, and near the global minimizer}: that NC1 is 0 at such a point but not
    continuous there, which the chapters state.  For each run: ``point`` and ``global``, one NC1 per spread of
    ``spreads`` (decreasing, each a fraction of the features' largest |entry|,
    :func:`nclib.minority.partial_point_spread_nc1` at the point and at the global minimizer); ``point_change``
    (the largest NC1 at the point over its smallest, minus 1: how little it moves as the spread shrinks) and
    ``global_factors`` (each NC1 at the global minimizer over the next, at the smaller spread: the square law gives
    the square of the spreads' ratio).  ValueError naming ``runs`` as :func:`stalls` does, and ``spreads`` unless it
    holds at least two finite positive numbers, decreasing.  Chapters: :ref:`ch-fig1` to :ref:`ch-fig3`."""
    if isinstance(spreads, (str, bytes)) or not hasattr(spreads, "__len__") or len(spreads) < 2:
        raise ValueError(f"spreads must hold at least two spreads, got {spreads!r}")
    spreads = [_checks.positive_float(s, "spreads") for s in spreads]
    if any(a <= b for a, b in zip(spreads, spreads[1:])):
        raise ValueError(f"spreads must decrease, got {spreads}")
    out = {}
    for L, st in stalls(runs).items():
        if st["partial"] is None:  # L = 1: no local minimizer with modes at 0
            continue
        th = run_theory(runs[L].params)
        args = (th.n, th.lam_W, th.lam_H, L, th.bias)
        best = minority.alive_at_minimum(*args)
        point = [minority.partial_point_spread_nc1(*args, st["partial"]["alive"], s) for s in spreads]
        at_best = [minority.partial_point_spread_nc1(*args, best, s) for s in spreads]
        out[L] = {"point": point, "global": at_best, "point_change": max(point) / min(point) - 1,
                  "global_factors": [a / b for a, b in zip(at_best, at_best[1:])]}
    return out


#: The final values whose L-orderings the figure chapters state (:func:`order_by` keys of :func:`final_rows`).
ORDER_KEYS = ("nc1", "nc3", "gap")


def orders_without_spikes(rows: list[dict], spiked: Mapping[int, dict]) -> dict[str, dict]:
    """Which L-orderings of the final values (:data:`ORDER_KEYS`) a training spike decides.

    For every run in ``spiked`` ({L: :func:`nclib.figures.events.largest_rise`}, from
    :func:`nclib.figures.events.spikes`) whose final NC1, NC3 or objective is above its value before the rise
    (``before``, at ``start_epoch``), that final value is replaced by the value before the rise (for ``gap``: the
    objective then minus the global minimum); where this changes :func:`order_by`, the result holds
    ``{key: {"order": final order, "without": the order with the replaced values, "runs": {L: (value before the rise,
    final value)}}}`` for the runs replaced. Empty when no ordering depends on a spike.  ValueError naming ``rows``
    (as :func:`order_by`) or ``spiked`` (not a mapping, or naming runs that ``rows`` do not hold).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    by_L = {r["L"]: r for r in _checked_rows(rows)}
    if not isinstance(spiked, Mapping):
        raise ValueError(f"spiked must be a mapping {{L: largest_rise}} (spikes), got {type(spiked).__name__}")
    unknown = sorted(set(spiked) - set(by_L))
    if unknown:
        raise ValueError(f"spiked names runs L = {unknown} that rows do not hold")
    out = {}
    for key in ORDER_KEYS:
        changed, replaced = [dict(r) for r in rows], {}
        for r in changed:
            if r["L"] not in spiked:
                continue
            before = spiked[r["L"]]["before"]
            was = before["objective"] - r["minimum"] if key == "gap" else before[key]
            if r[key] > was:
                replaced[r["L"]] = (float(was), float(r[key]))
                r[key] = was
        order, without = order_by(rows, key), order_by(changed, key)
        if replaced and order != without:
            out[key] = {"order": order, "without": without, "runs": replaced}
    return out


def final_rows(runs: Mapping[int, Run]) -> list[dict]:
    """One row per run (sorted by L) of the comparison tables of the figure chapters.

    Keys: ``L``, ``epochs``, the final ``nc1`` .. ``nc3`` and ``train_acc``, ``acc100_epoch`` (first recorded epoch with
    100 % training accuracy, None if never), ``acc100_stays`` (the recorded epoch from which it stays at 100 % to the
    end, :func:`nclib.figures.events.settled_epoch`, None if the final accuracy is below 1), ``rise``
    (:func:`nclib.figures.events.largest_rise` of the objective, None if it never rises), ``nc1_drop`` (NC1 at epoch 0
    over the final NC1, as :func:`metric_drops` gives it), ``bias_error`` (final ||b - n/N||, NaN bias-free),
    ``global_mean_norm``, ``objective``, ``minimum`` and ``gap`` (objective - global minimum of (4.3),
    :func:`run_theory`), ``alive`` (modes that survive at the run's lambdas), ``wall_time_s``, ``device`` (the
    provenance's device name), ``steps_per_s`` and ``trained_with`` (the runs trained side by side with it by
    ``nclib.train.run_many``, which share its wall time), ``bias_error_0`` (||b - n/N|| at epoch 0, NaN bias-free: the
    start that ``bias_error`` is set against) and ``K`` (the number of classes). ValueError for no runs or a history
    without a column read, and naming the run where its NC1 is not finite and positive at epoch 0 and at the end (its
    fall, as :func:`metric_drops` reads it).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    checked_runs(runs, columns=(*HISTORY_KEYS, "objective", "lr", *RISE_KEYS, "bias_error", "global_mean_norm"))
    rows = []
    for L, run in sorted(runs.items()):
        h, th = run.history, run_theory(run.params)
        rows.append(dict(
            L=L, epochs=int(h["epoch"][-1]),
            **{k: float(h[k][-1]) for k in HISTORY_KEYS},
            acc100_epoch=first_epoch(h, "train_acc", 1.0), acc100_stays=settled_epoch(h, "train_acc", 1.0),
            rise=largest_rise(h),
            nc1_drop=_fall(h, "nc1", L),
            bias_error=float(h["bias_error"][-1]), bias_error_0=float(h["bias_error"][0]),
            global_mean_norm=float(h["global_mean_norm"][-1]),
            objective=float(h["objective"][-1]), minimum=th.minimum, gap=float(h["objective"][-1] - th.minimum),
            alive=th.alive, K=th.K,
            wall_time_s=float(run.provenance.get("wall_time_s", float("nan"))),
            device=str(run.provenance.get("device_name", run.provenance.get("device", "?"))),
            steps_per_s=float(run.provenance.get("steps_per_s") or float("nan")),
            trained_with=list(run.provenance.get("trained_with", []))))
    return rows


#: The collapse metrics whose falls :func:`metric_drops` gives (:data:`nclib.runs.NC_COLUMNS`).
DROP_KEYS = ("nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3")


def metric_drops(runs: Mapping[int, Run]) -> dict[int, dict]:
    """{L: how far each collapse metric fell} of the runs, sorted by L: for each metric of :data:`DROP_KEYS` its
    value at epoch 0 over its last recorded value, and ``nc1_root``, the square root of NC1's.  Along a straight path
    to the minimizer NC1, a ratio of covariances, is quadratic in the distance from collapse and the NC2 and NC3
    metrics are linear in it (:ref:`sec-metrics-path`); a training run need not follow such a path, so ``nc1_root`` is
    NC1's fall on their scale by a rule of thumb, the one to set beside theirs (:ref:`ch-fig1` to :ref:`ch-fig4`,
    :func:`check_runs`). ValueError for no runs or a history without one of those metrics, or a metric not finite and
    positive at both ends."""
    checked_runs(runs, columns=DROP_KEYS)
    out = {}
    for L, run in sorted(runs.items()):
        falls = {key: _fall(run.history, key, L) for key in DROP_KEYS}
        out[L] = {**falls, "nc1_root": math.sqrt(falls["nc1"])}
    return out


def _fall(h: Mapping, key: str, L) -> float:
    """How far the history column ``h[key]`` of run ``L`` fell: its value at epoch 0 over its last recorded value;
    ValueError naming the run unless both are finite and positive (a fall to 0 or from NaN has no factor)."""
    first, last = float(h[key][0]), float(h[key][-1])
    if not (math.isfinite(first) and math.isfinite(last) and first > 0 and last > 0):
        raise ValueError(f"run L={L}: {key} must be finite and positive at epoch 0 and at the end, got "
                         f"{first!r} and {last!r}")
    return first / last


def wall_time_s(runs: Mapping[int, Run]) -> float:
    """The wall time the runs took together, in seconds: runs trained side by side (``nclib.train.run_many``,
    recorded in the provenance as ``trained_with``) ran at the same time and count once, with the longest of their wall
    times; runs trained alone add up (:ref:`ch-figures-summary`). A group is every run linked to another by
    ``trained_with``, named by either run and through other runs of the group, so that lists that name a partner on one
    side only still make one group; a run of the name given that records another ``started_utc`` (started by another
    call: a partner left out of a landing and made again later) is not linked, as in
    :func:`nclib.figures.together_problems`. ValueError for no runs: no time is not a wall time; and naming ``runs`` for
    a run whose parameters name no ``run_name``."""
    for L, run in checked_runs(runs).items():
        checked_params(run.params, f"runs[{L!r}].params", ("run_name",))
    by_name = {run.params["run_name"]: run for run in runs.values()}
    timeless = sorted(name for name, run in by_name.items()
                      if isinstance(run.provenance.get("wall_time_s"), bool)
                      or not isinstance(run.provenance.get("wall_time_s"), (int, float)))
    if timeless:
        raise ValueError(f"runs {timeless} record no wall_time_s in their provenance")
    partners = {name: set() for name in by_name}
    for name, run in by_name.items():
        for other in run.provenance.get("trained_with", []):
            if other in by_name and other != name and one_call(run, by_name[other]):
                partners[name].add(other)
                partners[other].add(name)
    total, counted = 0.0, set()
    for name in sorted(by_name):
        if name in counted:
            continue
        group, todo = set(), [name]
        while todo:  # every run reachable through partners
            m = todo.pop()
            if m not in group:
                group.add(m)
                todo.extend(partners[m] - group)
        counted |= group
        total += max(float(by_name[m].provenance["wall_time_s"]) for m in group)
    return total


def order_by(rows: list[dict], key: str) -> list[int]:
    """The head depths L of ``rows`` sorted by ``key`` (smallest first; None/NaN last).

    "How L changes the curves" in the comparison sections of :ref:`ch-fig1` to :ref:`ch-fig4`.  ValueError naming
    ``rows`` unless it is a list of rows (mappings with an ``L``), and naming ``key`` unless every row has it.
    """
    def value(r):
        v = r[key]  # a NaN of any float type (numpy's float32 too) sorts last, as None does
        return (1, 0.0) if v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) else (0, float(v))
    _checked_rows(rows)
    lacking = [r["L"] for r in rows if key not in r]
    if lacking:
        raise ValueError(f"key {key!r} is not a column of every row: the rows of L = {lacking} lack it; columns of "
                         f"the first: {sorted(rows[0])}")
    return [r["L"] for r in sorted(rows, key=value)]


def _checked_rows(rows) -> list:
    """``rows`` (:func:`final_rows`) as :func:`order_by` and :func:`orders_without_spikes` read them; ValueError
    naming ``rows`` unless a list or tuple of mappings, each with an ``L``."""
    if not isinstance(rows, (list, tuple)) or not all(isinstance(r, Mapping) and "L" in r for r in rows):
        raise ValueError(f"rows must be a list of rows (mappings with an 'L', as final_rows gives), got "
                         f"{type(rows).__name__}")
    return list(rows)


def order_held(runs: Mapping[int, Run], key: str, last: int = 10) -> dict:
    """How firm the final L-ordering by ``key`` (:data:`ORDER_KEYS`: NC1, NC3, or ``gap``, the objective (4.3) minus
    the global minimum at the run's decays) is, over the last ``last`` recorded epochs after epoch 0 (the
    initialization) that every run of ``runs`` recorded: ``records`` (how many that is), ``held`` (at how many of
    them the runs rank as at the last), ``order`` (the ranking at the last, smallest first, that of
    :func:`order_by` on the final rows) and ``kept`` (the runs whose place in it is the same at every one of those
    records).  A final ordering that the records before it do not share is a snapshot, not a trend.  ValueError
    naming ``key`` or ``last``, or ``runs`` when they are empty, do not all end at the same epoch, or share no
    epoch after 0.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if key not in ORDER_KEYS:
        raise ValueError(f"key must be one of {ORDER_KEYS}, got {key!r}")
    last = _checks.positive_int(last, "last")
    checked_runs(runs, columns=("objective" if key == "gap" else key,))
    ends = {L: int(np.asarray(r.history["epoch"])[-1]) for L, r in runs.items()}
    if len(set(ends.values())) > 1:
        raise ValueError(f"runs must all end at the same epoch to rank them, got {ends}")
    shared = set.intersection(*(set(np.asarray(r.history["epoch"]).tolist()) for r in runs.values())) - {0}
    if not shared:
        raise ValueError("runs share no recorded epoch after epoch 0")
    epochs = sorted(shared)[-last:]
    minimum = {L: run_theory(run.params).minimum for L, run in runs.items()} if key == "gap" else {}
    rankings = []
    for e in epochs:
        value = {}
        for L, run in runs.items():
            h = run.history
            i = int(np.flatnonzero(np.asarray(h["epoch"]) == e)[0])
            value[L] = float(h["objective"][i]) - minimum[L] if key == "gap" else float(h[key][i])
        rankings.append(sorted(value, key=lambda L: (math.isnan(value[L]), value[L])))
    final = rankings[-1]
    kept = [L for k, L in enumerate(final) if all(r[k] == L for r in rankings)]
    return {"records": len(epochs), "held": sum(r == final for r in rankings), "order": final, "kept": kept}


# --------------------------------------------------------------------------------------------- the verdict

#: The bound below which each of :data:`VERDICT_KEYS` must end for :func:`collapse_verdict` to call a run near the
#: collapsed minimizer.  Each NC2 is the distance between two matrices scaled to unit Frobenius norm
#: (:func:`nclib.geometry.normalized_distance`), 0 at the structure of Theorems 4.1-4.3 and sqrt 2 for a matrix
#: orthogonal to it; NC3 is the root of the summed squared distances of unit vectors, a class's (or a block's)
#: classifier direction and its class mean's.  Below a tenth, the head and the class means have the structure the
#: theorem predicts to within a tenth of their size: to one significant figure.
NEAR_BOUND = 0.1

#: The final values :func:`collapse_verdict` bounds by :data:`NEAR_BOUND`: the four metrics of the geometry
#: (:mod:`nclib.geometry`), every one 0 at each global minimizer.
VERDICT_KEYS = ("nc2_w", "nc2_h", "nc2_wh", "nc3")


def collapse_verdict(row: Mapping, theory: RunTheory) -> dict:
    """Whether a run ends near the collapsed minimizer of Theorems 4.1-4.3 (without a bias, the book's extension of
    Theorem 4.3 with M = D), or fits the labels but only part of the way: the one criterion the figure chapters, the
    summary and the introduction judge the runs by.

    ``row``: a run's final values (:func:`final_rows`: ``L``, ``train_acc``, ``objective``, ``minimum`` and the
    metrics of :data:`VERDICT_KEYS`); ``theory``: its problem (:func:`run_theory`).  A run is ``near`` when three
    things hold at its last epoch: ``fits``, it classifies every training sample correctly, as every global
    minimizer does; ``metrics_near``, each of NC2^W, NC2^H, NC2^WH and NC3 is below :data:`NEAR_BOUND`; and
    ``objective_near``, its objective (4.3) is nearer the global minimum than the value of the point that gives up
    the weakest mode the global minimizer keeps (Lemma A.2's x = 0 for that mode, every other mode at the global
    minimizer's strength: a local minimizer for L >= 2, a saddle for L = 1; :func:`nclib.minority.partial_minimum`).
    That value is the lowest of any critical point that puts a kept mode at 0 (a mode's cost at 0 grows with its
    kappa): the nearest point of minority collapse.  The metric bound alone does not exclude such a point, whose
    NC2 is small where the weakest mode is a small share of M (with L = 1 and a bias, each NC2 reads 0.089 at the
    point that gives up one letter of 50 samples of the letters' profile at the GPU runs' decays) and whose NC3 with
    a bias does not see a mode at 0 inside a block of equal kappa; its objective does.

    Returns ``fits``, ``metrics_near``, ``objective_near``, ``near`` (all three), ``metric_max`` (the largest of the
    four final metrics) and ``metric_key`` (whose it is), ``excess`` (objective over the global minimum, minus 1)
    and ``lost_excess`` (the same for the point that gives up the weakest mode: ``objective_near`` is ``excess <
    lost_excess / 2``).  ValueError naming ``theory`` unless a :class:`RunTheory` whose global minimizers keep a
    mode and fit every training label (else there is no collapsed minimizer that fits them), and naming ``row``
    unless a mapping with those keys, finite values, a training accuracy in [0, 1], the L and the global minimum of
    ``theory`` (to a relative 1e-12) and an objective not below that minimum (to a relative
    :data:`nclib.minority.BELOW_MINIMUM_RTOL`), which no point of (4.3) undercuts.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`, :ref:`ch-intro`.
    """
    if not isinstance(theory, RunTheory):
        raise ValueError(f"theory must be a RunTheory (run_theory), got {type(theory).__name__}")
    if not theory.fitting_collapse:
        raise ValueError(f"theory must be a problem whose global minimizers keep a mode and fit every training label, "
                         f"got {theory.alive} modes alive and accuracy {theory.minimizer_accuracy!r}")
    keys = ("L", "train_acc", "objective", "minimum", *VERDICT_KEYS)
    if not isinstance(row, Mapping) or any(k not in row for k in keys):
        raise ValueError(f"row must be a run's final values (final_rows) with the keys {keys}, got "
                         f"{sorted(row) if isinstance(row, Mapping) else type(row).__name__}")
    values = {k: row[k] for k in keys[1:]}
    if not all(_checks.real_number(v) and math.isfinite(float(v)) for v in values.values()):
        raise ValueError(f"row must hold finite numbers, got {values}")
    values = {k: float(v) for k, v in values.items()}
    if not 0.0 <= values["train_acc"] <= 1.0:
        raise ValueError(f"row['train_acc'] must be a training accuracy in [0, 1], got {values['train_acc']!r}")
    if row["L"] != theory.L or not math.isclose(values["minimum"], theory.minimum, rel_tol=1e-12):
        raise ValueError(f"row must be a run of the problem of theory (L = {theory.L}, minimum {theory.minimum!r}), "
                         f"got L = {row['L']!r}, minimum {values['minimum']!r}")
    if values["objective"] < theory.minimum * (1 - minority.BELOW_MINIMUM_RTOL):
        raise ValueError(f"row['objective'] {values['objective']!r} is below the global minimum {theory.minimum!r} "
                         f"of (4.3), which no point undercuts")
    lost = minority.partial_minimum(theory.n, theory.lam_W, theory.lam_H, theory.L, theory.bias,
                                    minority.alive_without_weakest(theory.n, theory.lam_W, theory.lam_H, theory.L,
                                                                   theory.bias, 1))
    excess, lost_excess = values["objective"] / theory.minimum - 1.0, lost / theory.minimum - 1.0
    key = max(VERDICT_KEYS, key=lambda k: values[k])
    fits = values["train_acc"] == 1.0
    metrics_near, objective_near = values[key] < NEAR_BOUND, excess < lost_excess / 2
    return {"fits": fits, "metrics_near": metrics_near, "objective_near": objective_near,
            "near": fits and metrics_near and objective_near, "metric_max": values[key], "metric_key": key,
            "excess": excess, "lost_excess": lost_excess}


def collapse_verdicts(rows: list, theory: Mapping) -> dict:
    """{L: :func:`collapse_verdict`} of a figure's runs: ``rows`` their final values (:func:`final_rows`),
    ``theory`` {L: :func:`run_theory`}.  A run whose problem has no collapsed minimizer that fits every training label
    (its global minimizers keep no mode, or misclassify: ``RunTheory.fitting_collapse`` false) is left out, as the
    verdict refuses it.  ValueError naming ``rows`` unless a list of mappings with an ``L`` each, ``theory`` unless a
    mapping that holds a :class:`RunTheory` of every such L, and as :func:`collapse_verdict` for a row.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`, :ref:`ch-intro`."""
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) and "L" in r for r in rows):
        raise ValueError(f"rows must be a list of runs' final values (final_rows), got {rows!r:.200}")
    if not isinstance(theory, Mapping) or any(not isinstance(theory.get(r["L"]), RunTheory) for r in rows):
        raise ValueError(f"theory must map each run's L to its RunTheory (run_theory), got "
                         f"{sorted(theory) if isinstance(theory, Mapping) else type(theory).__name__} for the runs' L "
                         f"{[r['L'] for r in rows]}")
    return {r["L"]: collapse_verdict(r, theory[r["L"]]) for r in rows if theory[r["L"]].fitting_collapse}


# --------------------------------------------------------------------------------------------- checks

def check_stalls(runs: Mapping[int, Run]) -> dict[int, dict]:
    """:func:`stalls` of a figure's runs, each asserted to have stalled next to a local minimizer (AssertionError
    naming the L and the property, as :func:`check_runs`): every global minimizer at the run's decays fits every
    training label and the run does not; its final objective lies above that of a point of Lemma A.2 with at least one
    of the weakest modes of M at 0 (not below it), by less than a fifth of the distance to the next nearest such point;
    and every mode at 0 is one of the small classes' (:func:`nclib.imbalance.small_classes`, fewer samples than the
    average class): its kappa at most the square root of the largest count among them, below the kappa sqrt(n_k) of
    every other class (with a bias, the kappa of Y-bar interlace the roots of the counts, so a mode of kappa at most
    that root is one of the modes that the small classes span). Returns the stalls. ValueError naming ``runs`` as
    :func:`stalls`. Chapters: :ref:`ch-intro`, :ref:`ch-figures-summary`."""
    out = stalls(runs)
    for L, st in out.items():
        place, n = st["partial"], run_counts(runs[L].params)
        _require(st["train_acc"] < st["minimizer_accuracy"] == 1.0,
                 f"L={L}: accuracy {st['train_acc']!r}, that of the global minimizers {st['minimizer_accuracy']!r}")
        _require(place is not None and place["dead"] >= 1 and 0 < place["above"] < place["runner_up"] / 5,
                 f"L={L}: not just above a local minimizer with modes at 0, far nearer it than any other: {place}")
        small = small_classes(n)
        _require(small.size > 0, f"L={L}: the counts {sorted(set(n.tolist()))} have no class below the average")
        bound = math.sqrt(int(n[small].max()))
        _require(np.all(place["dead_kappa"] <= bound * (1 + 1e-12)),
                 f"L={L}: a mode at 0 of kappa {float(np.max(place['dead_kappa'])):.6g} above {bound:.6g}, the root "
                 f"of the largest count of a small class ({int(n[small].max())}): not a mode of the small classes")
    return out


def _require(ok, message: str) -> None:
    if not ok:
        raise AssertionError(message)


def check_runs(runs: Mapping[int, Run], fig) -> None:
    """Assert the properties of a figure's committed runs that the figure chapters check; AssertionError if not.

    ``runs`` are Figure ``fig``'s runs as :func:`nclib.figures.check_figure` accepts them (every path to a chapter reads
    them through it, :func:`nclib.figures.figure_chapter`): their configuration (the bias case among it), one data
    checksum and complete histories are checked there, not again here. Each property below is one of the recorded
    histories and provenance, which other runs could fail (the theory's own identities are tested in ``tests/``, not
    here). For every run (each message names the run's L and the property): the objective (4.3) never goes below its
    global minimum over free features (:func:`run_theory`, relative tolerance 1e-12); NC2^W, NC2^H, NC2^WH and NC3 each
    end below their value at epoch 0 (every corrected metric is 0 at the minimizers of Theorems 4.1-4.3; NC3 is 0 also
    at local minimizers of Lemma A.2 that put some modes of a block of equal kappa at 0,
    :func:`nclib.minority.partial_point_metrics`, so its fall is no check of collapse where a block holds several
    modes). A run whose final training accuracy is exactly 1: NC1 falls by more than a factor 100 from epoch 0 to the
    last epoch, and on NC3's scale (its square root, by the rule of thumb of :func:`metric_drops`) by more than NC3
    does. A run that ends below 1 (:func:`stalls`): its accuracy is below that of every global minimizer
    (``minimizer_accuracy``), and (1 - accuracy) x N is a whole number. Figures 1 and 2 (with a bias, Theorems 4.2/4.3:
    b* = n/N and a zero global feature mean): the recorded ||b - n/N|| is finite and ends below its value at epoch 0,
    and so does the global feature-mean norm. Figures 3 and 4 (bias-free, Appendix C): the recorded bias error is NaN.
    Figures 2 and 4 (the letters-synthetic stand-in): every run's provenance names the stand-in.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    f = figure(fig)
    checked_runs(runs, columns=("objective", *DROP_KEYS, "train_acc", "bias_error", "global_mean_norm"))
    for L, run in runs.items():
        h, t = run.history, run_theory(run.params)
        _require(np.all(h["objective"] >= t.minimum * (1 - 1e-12)),
                 f"L={L}: the objective goes below the global minimum {t.minimum:.6e} of (4.3) "
                 f"(smallest {np.min(h['objective']):.6e})")
        for key in ("nc2_w", "nc2_h", "nc2_wh", "nc3"):
            _require(h[key][-1] < h[key][0], f"L={L}: {key} ends at {h[key][-1]:.3g}, not below its value "
                                             f"{h[key][0]:.3g} at epoch 0")
        acc = float(h["train_acc"][-1])
        if acc == 1.0:  # fitted: collapse
            drop = metric_drops({L: run})[L]
            _require(drop["nc1"] > 1e2, f"L={L}: NC1 falls by a factor {drop['nc1']:.3g} ({h['nc1'][0]:.3g} to "
                                        f"{h['nc1'][-1]:.3g}), not more than 100")
            # by the rule of thumb of metric_drops (NC1 quadratic in the distance from collapse, NC3 linear, as
            # along a straight path to the minimizer): compared on one scale
            _require(drop["nc1_root"] > drop["nc3"], f"L={L}: the square root of NC1's fall, "
                                                     f"{drop['nc1_root']:.3g}, is not more than NC3's fall "
                                                     f"({drop['nc3']:.3g})")
        else:  # stalled (stalls): away from every global minimizer
            _require(acc < t.minimizer_accuracy, f"L={L}: the final training accuracy {acc!r} is not below "
                                                 f"{t.minimizer_accuracy!r}, that of the global minimizers")
            wrong = (1.0 - acc) * t.N
            _require(abs(wrong - round(wrong)) < 1e-6, f"L={L}: (1 - accuracy) x N = {wrong!r} is not a whole "
                                                       "number of samples")
        if f.bias:
            be, gm = h["bias_error"], h["global_mean_norm"]
            _require(np.all(np.isfinite(be)), f"L={L}: the recorded ||b - n/N|| is not finite")
            _require(be[-1] < be[0], f"L={L}: ||b - n/N|| ends at {be[-1]:.3g}, not below its value {be[0]:.3g} "
                                     f"at epoch 0")
            _require(gm[-1] < gm[0], f"L={L}: the global feature-mean norm ends at {gm[-1]:.3g}, not below its "
                                     f"value {gm[0]:.3g} at epoch 0")
        else:
            _require(np.all(np.isnan(h["bias_error"])), f"L={L}: a bias-free run has a recorded bias error")
        if f.dataset == "letters-synthetic":
            _require("stand-in" in (run.provenance.get("stand_in") or ""),
                     f"L={L}: the provenance does not label the letters-synthetic stand-in "
                     f"(stand_in = {run.provenance.get('stand_in')!r})")
