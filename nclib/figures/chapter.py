"""What the figure chapters (:ref:`ch-fig1` to :ref:`ch-fig4`) show besides their plots: the checked runs, their
tables (pandas DataFrames narrow enough for the page) and the numbers their prose glues, formatted as printed.
Numbers only: the chapters' sentences are written in the chapters, each claim guarded by an assert there.  The
summary's tables and numbers, read from these chapters, are :mod:`nclib.figures.summary`.

One rule for the numbers: a run's own value, and the smallest and the largest of the runs' values, are written to
nearest (:func:`nclib.rounding.written`), in tables and in prose alike.  A bound (an "at least" or "at most" over
runs or over points) follows the book's rule for bounds (:mod:`nclib.rounding`): where a table of the chapters
writes the same number to nearest, it is :func:`nclib.rounding.at_least` or :func:`nclib.rounding.at_most` at that
table's figures and in the notation of its cell, so that it reads there as the table's number ("at most 249.43"
beside the drops table's 249, never 250; "at least 16.254" beside the drops table's 16.3, never 16.2; "at least
8.107 × 10⁵" beside its 8.11 × 10⁵, never 810,700); only a bound on numbers that no table or
sentence writes to nearest is rounded outward plainly (:func:`nclib.rounding.round_down`,
:func:`nclib.rounding.round_up`).  One exception: a training accuracy
below 100 % that would read 100 to nearest is written rounded down (:func:`percent`: 0.9997 -> "99.9"), so that no
run short of 100 % is written as one at 100 %.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Mapping

import numpy as np

from .. import _checks, data, plotting
from ..parameters import REFERENCE_DECAY
from ..rounding import at_least, at_most, round_down, round_up, written, written_column
from .analysis import (NEAR_BOUND, ORDER_KEYS, RunTheory, collapse_verdicts, final_rows, metric_drops, order_by,
                       order_held, orders_without_spikes, run_theory, stalls)
from .config import RESULTS, Figure, figure, figure_counts, scale_settings
from .events import (SPIKE_FACTOR, accuracy_dips, lr_step, next_milestone, other_spikes, rise_ratios,
                     spikes)
from .load import (Run, check_figure, checked_runs, commit_problems, compare_nc3, load_figure, preferred_scale,
                   provenance_problems, run_counts)


@dataclasses.dataclass
class FigureChapter:
    """Everything one figure chapter shows but its plots, from :func:`figure_chapter`.

    ``runs`` ({L: Run}, checked by :func:`check_figure`, whose result is ``check``), ``rows`` (:func:`final_rows`),
    ``theory`` ({L: :func:`run_theory`}), ``verdicts`` ({L: :func:`collapse_verdict`} of each run whose problem has a
    collapsed minimizer that fits every label: :func:`collapse_verdicts`), ``glue`` (the numbers of the prose,
    formatted, keyed without the ``fig<k>-`` prefix: the chapter glues ``glue[key]`` as ``fig<k>-<key>``) and
    ``tables`` (pandas DataFrames: ``"provenance"`` (one column per L), ``"theory"``, ``"final"``, ``"training"``
    and ``"drops"`` (indexed by L), ``"settings"`` (the paper's against the runs')).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """

    figure: Figure
    scale: str
    runs: dict
    check: dict
    rows: list
    theory: dict
    verdicts: dict
    glue: dict
    tables: dict


def comma_list(values) -> str:
    """``values`` written one after another with commas, as the prose and the tables of :ref:`ch-fig1` to
    :ref:`ch-fig4` and :ref:`ch-figures-summary` list head depths and counts: ``[1, 3, 6]`` -> ``"1, 3, 6"``, none
    -> ``""``.  ValueError naming ``values`` for anything but a list (or another iterable) of them: one str alone
    would be written letter by letter."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"values must be a list of the values to write, got {values!r:.200}")
    return ", ".join(str(v) for v in values)


def _order_label(class_order: str, dataset: str) -> str:
    """How a settings table names a run's class order: ``"reference"`` is the order of Dang et al. (2023)'s code,
    for the letters that of its EMNIST variant (:mod:`nclib.data`)."""
    if class_order != "reference":
        return f"order: {class_order}"
    return "as in Dang et al." if dataset == "cifar10" else "as in the EMNIST variant of Dang et al.'s code"


def epoch_cell(epoch) -> str:
    """A recorded epoch for a table cell of :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary`, with
    thousands separators as the prose writes it (``2600`` -> ``"2,600"``), "none recorded" when there is none (None):
    the runs are seen only at their recorded epochs, so a table says no more than that of what happened between
    them.  ValueError naming ``epoch`` unless None or a non-negative whole number."""
    return "none recorded" if epoch is None else _epoch_text(_checks.nonneg_int(epoch, "epoch"))


def _epoch_text(epoch) -> str | None:
    """An epoch as the prose and the tables write it, with thousands separators ("2,600"); None stays None (no such
    epoch: :func:`_put` leaves the key out)."""
    return None if epoch is None else f"{int(epoch):,}"


def _put(g: dict, key: str, value) -> None:
    """``g[key] = str(value)``, left out when ``value`` is None or empty: the glue holds numbers only, and a
    sentence that quotes a number the runs do not have fails the build instead of reading "never" or "none"."""
    if value is not None and value != "":
        g[key] = str(value)


def _one(values: set):
    """The one value the runs share, None where they differ (the glue then leaves it out)."""
    return next(iter(values)) if len(values) == 1 else None


def table_column(values, sig: int, uniform: bool = False) -> list[str]:
    """A table column of numbers of :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary`, each to ``sig``
    significant figures, powers of ten only on the side of 1 that needs them, or, ``uniform``, on every value where
    one needs them (:func:`nclib.rounding.written_column`), "" where there is none (NaN, an infinity: a run without
    that value).  ValueError naming ``values`` for anything but a list of numbers, and ``sig`` or ``uniform`` as
    :func:`nclib.rounding.written_column` does."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") \
            or not all(_checks.real_number(v) for v in values):
        raise ValueError(f"values must be a list of numbers, got {values!r:.200}")
    values = [float(v) for v in values]
    written_ = iter(written_column([v for v in values if np.isfinite(v)], sig, uniform=uniform))
    return [next(written_) if np.isfinite(v) else "" for v in values]


def percent(acc, decimals: int = 1) -> str:
    """A training accuracy (a fraction in [0, 1]) as the prose and the tables of :ref:`ch-fig1` to :ref:`ch-fig4`
    and :ref:`ch-figures-summary` write it, in percent beside "100 %": 0.9667 -> ``"96.7"``; never 100 below 1
    (2999/3000 -> ``"99.9"``, rounded down where to nearest would read 100).  ValueError naming ``acc`` outside
    [0, 1] (or not a number) and ``decimals`` unless a non-negative integer."""
    if not _checks.real_number(acc) or not 0.0 <= float(acc) <= 1.0:
        raise ValueError(f"acc must be a training accuracy, a fraction between 0 and 1, got {acc!r}")
    decimals = _checks.nonneg_int(decimals, "decimals")
    text = f"{100 * float(acc):.{decimals}f}"
    if float(acc) < 1.0 and float(text) >= 100.0:  # a run below 100 % is never written as one at 100 %
        text = f"{100 - 10.0 ** -decimals:.{decimals}f}"
    return text


def rise_cell(rise: dict | None) -> str:
    """A table cell of :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary` for a :func:`largest_rise`:
    ``"×21.6 (epochs 480 to 500)"``, the factor to three significant figures with their trailing zeros (``"×1.20"``,
    one precision down a column) and the epochs with thousands separators as the prose writes them (``"epochs
    2,700 to 2,800"``), or ``"none"`` for None.  ValueError naming ``rise`` when it is neither None
    nor a rise (a mapping with ``factor``, ``prev_epoch`` and ``epoch``)."""
    if rise is None:
        return "none"
    if not isinstance(rise, Mapping) or any(k not in rise for k in ("factor", "prev_epoch", "epoch")):
        raise ValueError(f"rise must be None or a largest_rise result (factor, prev_epoch, epoch), got {rise!r}")
    return (f"×{written(rise['factor'], 3, zeros=True)} "  # three figures with their zeros: "×1.20" beside "×1.49"
            f"(epochs {_epoch_text(rise['prev_epoch'])} to {_epoch_text(rise['epoch'])})")


def precisions(runs: Mapping[int, Run]) -> str:
    """The precision(s) of the runs' matrix products as their provenance records them: "tf32", or "fp32/tf32".
    ValueError naming ``runs`` unless it holds at least one run (:func:`nclib.figures.load.checked_runs`).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    return "/".join(sorted({str(r.provenance.get("precision", "?")) for r in checked_runs(runs).values()}))


def _settings_glue(f: Figure, scale: str, runs: Mapping[int, Run], check: Mapping, rows: list[dict]) -> dict:
    """The paper's settings (Section 5) and the runs' own, from their parameters and provenance."""
    p = runs[min(runs)].params
    n = run_counts(p)
    paper = scale_settings("gpu")
    epochs = max(check["epochs"].values())
    return {
        "paper-counts": comma_list(sorted(figure_counts(f, "gpu"), reverse=True)),
        "paper-epochs": f"{paper['epochs']:,}", "paper-width": f"{paper['width']:,}",
        "paper-batch": str(paper["batch_size"]), "paper-lr": written(paper['lr'], 6),
        "epochs": f"{epochs:,}", "N": f"{int(n.sum()):,}", "counts": comma_list(sorted(n.tolist(), reverse=True)),
        "divisor": str(scale_settings(scale)["divisor"]), "width": f"{p['width']:,}", "lr": written(p['lr'], 6),
        "gamma": written(p['lr_gamma'], 6), "batch": str(p["batch_size"]), "decay": written(p['lam_W'], 6),
        "wd": written(REFERENCE_DECAY, 6), "milestone": comma_list(f"{m:,}" for m in p["lr_milestones"]),
        "metric-every": str(p["metric_every"]), "precision": precisions(runs),
        "device": " / ".join(sorted({r["device"] for r in rows})), "smallest-count": str(int(n.min())),
        "depth": str(p["depth"]), **({} if _dropped(runs) is None else {"dropped": f"{_dropped(runs):,}"}),
    }


def _theory_glue(rows: list[dict], theory: Mapping[int, RunTheory]) -> dict:
    """The runs against Theorem 4.3: modes alive, excess over the minimum, global mean, bias."""
    g = {}
    t_first = theory[min(theory)]
    _put(g, "alive", _one({t.alive for t in theory.values()}))
    g["K"] = str(t_first.K)
    # the smallest and the largest excess are two runs' own values, written to nearest as the tables write them
    low, high = (min(rows, key=lambda r: r['gap'] / r['minimum']), max(rows, key=lambda r: r['gap'] / r['minimum']))
    g["gap-min"], g["gap-min-L"] = written(low['gap'] / low['minimum'], 3, zeros=True), str(low["L"])
    g["gap-max"], g["gap-max-L"] = written(high['gap'] / high['minimum'], 3, zeros=True), str(high["L"])
    # an "at most": with a bias no table writes the global mean, without one the theory table does, to three figures
    top = max(r['global_mean_norm'] for r in rows)
    g["mean-end"] = round_up(top, 2, zeros=True) if t_first.b_star is not None else at_most(top, 3, zeros=True)
    if t_first.b_star is None:  # bias-free: each run's global feature mean against the minimizers' (nonzero) one
        for r in rows:
            want = theory[r["L"]].global_mean_norm
            g[f"mean-pred-L{r['L']}"] = written(want, 3)
            g[f"mean-end-L{r['L']}"] = written(r['global_mean_norm'], 3)
            g[f"mean-off-L{r['L']}"] = written(100 * abs(r['global_mean_norm'] / want - 1), 2)
    _put(g, "minimizer-acc", _one({f"{t.minimizer_accuracy:.3f}" for t in theory.values()}))
    if t_first.b_star is not None:
        g["bstar"] = f"{np.linalg.norm(t_first.b_star):.3f}"
        g["bias0"] = round_down(min(r['bias_error_0'] for r in rows), 2, zeros=True)  # no table writes it
        # runs' own values, as the final table writes them, with their trailing zeros (0.000290, not 0.00029)
        g["bias-end-min"] = written(min(r['bias_error'] for r in rows), 3, zeros=True)
        g["bias-end-max"] = written(max(r['bias_error'] for r in rows), 3, zeros=True)
    return g


def _accuracy_glue(runs: Mapping[int, Run], rows: list[dict]) -> dict:
    """Per run the epochs at 100 % training accuracy, the final accuracy and the fall of NC1; over the fitted runs."""
    g = {}
    by_L = {r["L"]: r for r in rows}
    drops, table = metric_drops(runs), drops_table(runs)
    for L, r in by_L.items():
        _put(g, f"acc100-L{L}", _epoch_text(r["acc100_epoch"]))
        _put(g, f"stays-L{L}", _epoch_text(r["acc100_stays"]))
        g[f"acc-L{L}"] = percent(r['train_acc'])
        # each fall as the table of the falls (drops_table) writes it: in one notation over the runs, with its
        # trailing zeros ("6.28 × 10⁴ and 1.50 × 10⁶", not "62,800 and 1.5 × 10⁶"); NC1 on the scale of NC3 (its
        # square root, metric_drops) beside NC3's own fall
        g[f"nc1-drop-L{L}"], g[f"nc1-root-drop-L{L}"] = table.loc[L, "NC1 fall"], table.loc[L, "its square root"]
        g[f"nc3-drop-L{L}"], g[f"root-over-nc3-L{L}"] = table.loc[L, "NC3 fall"], table.loc[L, "square root / NC3 fall"]
    fitted = [L for L, r in by_L.items() if r["train_acc"] >= 1.0]
    g["n-fitted"] = str(len(fitted))
    if fitted:
        # "at most" and "at least" over the runs of the drops table (drops_table), reading as its three figures and
        # written in the notation of the cell of the run they bound ("at least 8.107 × 10⁵" beside 8.11 × 10⁵)
        for name, bound, key, column in (("fit-nc3-drop", at_most, "nc3", "NC3 fall"),
                                         ("fit-nc1-drop", at_least, "nc1", "NC1 fall"),
                                         ("fit-nc1-root-drop", at_least, "nc1_root", "its square root")):
            L = (max if bound is at_most else min)(fitted, key=lambda L: drops[L][key])
            g[name] = bound(drops[L][key], 3, zeros=True, like=table.loc[L, column])
        # the quotient of the two falls, each run's own: the smallest and the largest run's, to nearest as the table
        # writes them, and whose they are (one pair of falls per run, never the extremes of two runs)
        quotient = {L: drops[L]["nc1_root"] / drops[L]["nc3"] for L in fitted}
        low, high = min(quotient, key=quotient.get), max(quotient, key=quotient.get)
        g["fit-root-over-nc3-lo"], g["fit-root-over-nc3-lo-L"] = written(quotient[low], 3, zeros=True), str(low)
        g["fit-root-over-nc3-hi"], g["fit-root-over-nc3-hi-L"] = written(quotient[high], 3, zeros=True), str(high)
    return g


def _verdict_glue(rows: list[dict], theory: Mapping[int, RunTheory]) -> dict:
    """Each run that fits every training label judged by :func:`collapse_verdict`: the largest of its final NC2^W,
    NC2^H, NC2^WH and NC3 as the final table writes it (three figures, in its column's notation), and in per cent its
    objective's excess over the global minimum and half that of the point that gives up the weakest mode (the
    verdict's halfway mark), runs' own values to nearest; the bound.  Left out where the global minimizers at a run's
    decays keep no mode or misclassify, which the verdict refuses (:func:`collapse_verdicts`)."""
    g = {"near-bound": written(NEAR_BOUND, 6)}
    verdicts = collapse_verdicts(rows, theory)
    for r in rows:
        v = verdicts.get(r["L"])
        if v is None or not v["fits"]:
            continue
        s = f"verdict-L{r['L']}-"
        # the final table's cell of that metric (_final_table: three figures, one notation per column)
        g[s + "metric"] = table_column([x[v["metric_key"]] for x in rows], 3, uniform=True)[rows.index(r)]
        g[s + "excess"] = written(100 * v["excess"], 2, zeros=True)
        g[s + "halfway"] = written(50 * v["lost_excess"], 2, zeros=True)
    return g


def _order_glue(runs: Mapping[int, Run], rows: list[dict]) -> dict:
    """The orderings in L at the end, and for how many of the last records they held."""
    g = {}
    same_end = len({int(np.asarray(r.history["epoch"])[-1]) for r in runs.values()}) == 1
    for key in ORDER_KEYS:
        g[f"{key}-order"] = comma_list(order_by(rows, key))
        if same_end and len(runs[min(runs)].history["epoch"]) > 1:  # order_held ranks runs that end together
            held = order_held(runs, key)
            if held["order"] != order_by(rows, key):
                raise ValueError(f"{key}: the last shared record ranks {held['order']}, the final rows "
                                 f"{order_by(rows, key)}")
            g[f"{key}-order-held"], g["order-records"] = str(held["held"]), str(held["records"])
            _put(g, f"{key}-order-kept", comma_list(held["kept"]))
    return g


def _unspiked_order_glue(rows: list[dict], spiked: Mapping[int, dict]) -> dict:
    """The orderings in L with the training spikes' values replaced, and the factor that makes a spike."""
    g = {}
    shaped = orders_without_spikes(rows, spiked)
    for key in ORDER_KEYS:
        g[f"{key}-order-without-spikes"] = comma_list(shaped[key]["without"] if key in shaped else order_by(rows, key))
        for L, (was, end) in (shaped[key]["runs"].items() if key in shaped else ()):
            g[f"{key}-spike-L{L}-before"], g[f"{key}-spike-L{L}-end"] = written(was, 3), written(end, 3)
    g["spike-threshold"] = written(SPIKE_FACTOR, 6)
    return g


def _rise_glue(runs: Mapping[int, Run], rows: list[dict]) -> dict:
    """The rises of the objective between records: how many, their median, the largest."""
    g = {}
    noise = rise_ratios(runs)
    g["rise-intervals"], g["rise-count"] = str(noise["intervals"]), str(noise["rises"])
    if noise["median"] is not None:
        g["rise-median"] = written(noise['median'], 4)
    if noise["largest_below"] is not None:
        g["rise-below"] = written(noise['largest_below'], 3)
    rises = [(r["rise"]["factor"], r["L"], r["rise"]) for r in rows if r["rise"] is not None]
    if rises:
        factor, L, rise = max(rises, key=lambda t: t[0])
        g.update({"rise-max": written(factor, 3), "rise-max-L": str(L),
                  "rise-max-from": _epoch_text(rise["prev_epoch"]), "rise-max-to": _epoch_text(rise["epoch"])})
    return g


def _spike_glue(runs: Mapping[int, Run], spiked: Mapping[int, dict]) -> dict:
    """Each training spike: its size, epochs, learning rate, the metrics before, at and after it."""
    g = {}
    _put(g, "spike-runs", comma_list(spiked))
    for L, r in spiked.items():
        b, a, fin = r["before"], r["at"], r["final"]
        s = f"spike-L{L}-"
        g.update({s + "factor": written(r['factor'], 3), s + "from": _epoch_text(r["prev_epoch"]),
                  s + "to": _epoch_text(r["epoch"]), s + "start": _epoch_text(r["start_epoch"]),
                  s + "climb": written(r['climb'], 3), s + "lr": written(r['lr'], 6),
                  s + "lr-before": written(r['lr_prev'], 6),
                  s + "nc1-before": written(b['nc1'], 3), s + "nc1-at": written(a['nc1'], 3),
                  s + "nc3-before": written(b['nc3'], 3), s + "nc3-at": written(a['nc3'], 3),
                  s + "acc-before": percent(b['train_acc']), s + "acc-at": percent(a['train_acc']),
                  s + "nc1-end": written(fin['nc1'], 3),
                  s + "nc3-end": written(fin['nc3'], 3)})
        _put(g, s + "milestone", _epoch_text(next_milestone(runs[L].params, r["epoch"])))
        _put(g, s + "back", _epoch_text(r["back_epoch"]))
        others = other_spikes(runs[L].history)
        g[s + "count"] = str(len(others) + 1)
        for i, (e0, e1, x) in enumerate(others, start=1):
            g.update({f"{s}other{i}-from": _epoch_text(e0), f"{s}other{i}-to": _epoch_text(e1),
                      f"{s}other{i}-factor": written(x, 3)})
    return g


def _dip_glue(runs: Mapping[int, Run]) -> dict:
    """Each dip of the training accuracy after it reached 100 %."""
    g = {}
    for L, d in accuracy_dips(runs).items():
        s = f"dip-L{L}-"
        g.update({s + "low": percent(d['low'], 2), s + "epoch": _epoch_text(d["low_epoch"]),
                  s + "final": percent(d['final']),
                  s + "times": str(d["times"])})  # a count: the chapter writes "once" or "twice", asserting it
        _put(g, s + "back", _epoch_text(d["back"]))
    return g


def _lr_step_glue(runs: Mapping[int, Run]) -> dict:
    """The runs past their learning-rate step: the objective's fall from the step to the end, 100 % before and after."""
    g = {}
    stepped = lr_step(runs)
    if stepped:
        drops = [d["objective_drop"] for d in stepped.values()]
        g["lrstep-drop-min"], g["lrstep-drop-max"] = written(min(drops), 3), written(max(drops), 3)
        _put(g, "lrstep-recovered", comma_list(L for L, d in stepped.items() if d["recovered"]))
        _put(g, "lrstep-below", comma_list(L for L, d in stepped.items() if d["below_100_before"]))
    for L, d in stepped.items():
        s = f"lrstep-L{L}-"
        g.update({s + "before": _epoch_text(d["before"]["epoch"]), s + "acc-before": percent(d['before']['train_acc']),
                  s + "obj-before": written(d['before']['objective'], 3), s + "obj-end": written(d['final']['objective'], 3),
                  s + "drop": written(d['objective_drop'], 3)})
        _put(g, s + "settled", _epoch_text(d["settled_100"]))
    return g


def _stall_glue(runs: Mapping[int, Run]) -> dict:
    """Each run that ends below 100 % training accuracy: where it stalled and the nearest point with modes at 0."""
    g = {}
    stalled = stalls(runs)
    _put(g, "stall-runs", comma_list(stalled))
    for L, st in stalled.items():
        s = f"stall-L{L}-"
        g.update({s + "since": _epoch_text(st["since"]), s + "end": _epoch_text(st["end"]),
                  s + "acc": percent(st['train_acc']),
                  # "at most", since the stall: rounded up, reading as the percentage to nearest (three figures),
                  # as the final accuracy beside it is written, which is the best where the run ends at its best
                  # (at most 93.34 beside 93.3, not 93.4)
                  s + "best": at_most(100 * st['best_acc'], 3, zeros=True), s + "wrong": f"{st['misclassified']:,}",
                  s + "N": f"{int(st['n'].sum()):,}", s + "half": f"{st['half']:,}",
                  # how far, either way: the chapter writes "above" or "below" and asserts the sign
                  s + "change": written(abs(100 * st["objective_change"]), 2),
                  s + "ratio": written(st['objective_ratio'], 3, zeros=True),
                  s + "nc1": written(st['nc1'], 2), s + "nc1-drop": written(st['nc1_drop'], 3), s + "nc3": written(st['nc3'], 3),
                  s + "smallest": str(st["smallest"]), s + "smallest-count": str(st["smallest_count"])})
        _put(g, s + "multiple", st["smallest_multiple"])
        place = st["partial"]
        # |objective / that point's value - 1| and the distance to the next nearest point, the run's own: to nearest,
        # the latter as the summary's table of the stalled runs writes it (nclib.figures.summary.summary_tables), to
        # three figures with their zeros
        if place is not None:
            g.update({s + "dead": str(place["dead"]), s + "partial-ratio": written(st['partial_ratio'], 3),
                      s + "partial-off": written(100 * abs(place["above"]), 2)})
            if place["runner_up"] is not None:
                g[s + "partial-runner-up"] = written(100 * place["runner_up"], 3, zeros=True)
        if st["before"] is not None:
            g.update({s + "before": _epoch_text(st["before"]), s + "lr-before": written(st['lr_before'], 6),
                      s + "lr-since": written(st['lr_since'], 6),
                      s + "rise": written(st['objective_since'] / st['objective_before'], 3),
                      s + "obj-before": written(st['objective_before'], 3), s + "obj-since": written(st['objective_since'], 3)})
    return g


def figure_glue(fig, scale: str, runs: Mapping[int, Run], check: Mapping, rows: list[dict],
                theory: Mapping[int, RunTheory]) -> dict:
    """The numbers the prose of a figure chapter quotes, formatted as printed (keys without ``fig<k>-``): numbers
    only, a key left out where the runs have no such number (no epoch, no run), so that the chapter writes the
    words and asserts the case they assume; every epoch with thousands separators ("2,800"), as the settings.

    The paper's settings (``paper-counts``, ``paper-epochs``, ``paper-width``, ``paper-batch``, ``paper-lr``); the
    runs' (``epochs``, ``N``, ``counts``, ``divisor``, ``width``, ``lr``, ``gamma``, ``batch``, ``decay``, ``wd``
    (the closest public code's 1e-5), ``milestone``, ``metric-every``, ``precision``, ``device``, ``depth``,
    ``smallest-count`` (the smallest class count), ``dropped`` (the samples an epoch leaves out of its batches,
    where every run leaves out the same number)); against Theorem
    4.3 (``alive`` and ``minimizer-acc`` where every run has the same, ``K``, ``gap-min``, ``gap-max`` (the smallest
    and the largest run's excess over the minimum, to nearest, and ``gap-min-L``, ``gap-max-L``, whose they are),
    ``mean-end``; without a bias per run ``mean-pred-L<L>`` (the global feature-mean norm at every global
    minimizer, :func:`nclib.ufm.minimizer_global_mean_norm`), ``mean-end-L<L>`` (the run's at the end) and
    ``mean-off-L<L>`` (how far, in per cent of the prediction, either way); with a bias ``bstar``, ``bias0``,
    ``bias-end-min``, ``bias-end-max``); per run ``acc100-L<L>``,
    ``stays-L<L>`` (first and settled epoch at 100 % training accuracy), ``acc-L<L>`` (in percent, as every training
    accuracy the prose glues: :func:`percent`) and ``nc1-drop-L<L>``, ``nc3-drop-L<L>``, ``nc1-root-drop-L<L>`` (the
    square root of NC1's fall, its fall on the scale of NC3, :func:`metric_drops`) and ``root-over-nc3-L<L>`` (that
    over NC3's fall, as the table ``"drops"`` writes it); over the runs that end at 100 % (``n-fitted``)
    ``fit-nc1-drop`` (the smallest fall of NC1), ``fit-nc3-drop`` (the largest fall of NC3), ``fit-nc1-root-drop``
    (the smallest square root of NC1's fall) and ``fit-root-over-nc3-lo``, ``fit-root-over-nc3-hi`` (the smallest
    and the largest run's quotient of the two, each run's square root over its own NC3 fall, with
    ``fit-root-over-nc3-lo-L`` and ``-hi-L``, whose they are); the verdict (:func:`collapse_verdict`): ``near-bound``
    and per run that fits ``verdict-L<L>-metric`` (the largest of its final NC2^W, NC2^H, NC2^WH and NC3, as the
    final table writes it), ``verdict-L<L>-excess`` (its objective's excess over the global minimum, in per cent) and
    ``verdict-L<L>-halfway`` (half that of the point that gives up the weakest mode); the orderings in L ``nc1-order``,
    ``nc3-order``, ``gap-order`` (where the runs end at one epoch, with ``<key>-order-held``, at how many of the
    last ``order-records`` recorded epochs the runs rank so, and ``<key>-order-kept``, the runs whose place never
    changes there, :func:`order_held`; and ``<key>-order-without-spikes``, :func:`orders_without_spikes`, with the
    replaced values ``<key>-spike-L<L>-before`` and ``-end``); the rises of the objective (``rise-intervals``,
    ``rise-count``, ``rise-median``, ``rise-below``, ``rise-max``, ``rise-max-L``, ``rise-max-from``,
    ``rise-max-to``; :func:`rise_ratios`); each training spike (``spike-L<L>-...``, :func:`spikes`), each dip of the
    accuracy after 100 % (``dip-L<L>-...``, :func:`accuracy_dips`; ``dip-L<L>-times`` the count of its spells) and
    each run that ends below 100 % (``stall-L<L>-...``, :func:`stalls`; ``stall-L<L>-change`` is how far its final
    objective is from its value at the start of the second half, in per cent, either way); for runs past their
    learning-rate step (:func:`lr_step`) the smallest and largest fall of the objective from the step to the end
    (``lrstep-drop-min``, ``-max``), the runs below 100 % at the step and those that then settled at 100 %
    (``lrstep-below``, ``lrstep-recovered``) and per run ``lrstep-L<L>-...``.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    f = figure(fig)
    spiked = spikes(runs)
    return {**_settings_glue(f, scale, runs, check, rows), **_theory_glue(rows, theory),
            **_accuracy_glue(runs, rows), **_verdict_glue(rows, theory), **_order_glue(runs, rows),
            **_unspiked_order_glue(rows, spiked),
            **_rise_glue(runs, rows), **_spike_glue(runs, spiked), **_dip_glue(runs), **_lr_step_glue(runs),
            **_stall_glue(runs)}


def figure_tables(fig, runs: Mapping[int, Run], check: Mapping, rows: list[dict],
                  theory: Mapping[int, RunTheory]) -> dict:
    """The tables of a figure chapter as pandas DataFrames, each narrow enough for the page.

    ``"provenance"``: what each run's provenance recorded (one column per L: N, K, parameters, steps per epoch
    and samples dropped per epoch, steps, training time and speed, wall time, device, precision, torch, git
    commit, data checksum); ``"theory"``: the modes alive, the extreme nonzero kappa, the global minimum of (4.3)
    and the final objective (:func:`run_theory`; five significant figures, their trailing zeros kept, so the two
    compare by eye) and, bias-free, the global feature-mean norm at the global minimizers and at the end;
    ``"final"``: the epochs (with thousands separators, as the prose writes them) and the final metrics of
    :func:`final_rows` (with a bias also ||b - n/N||), each metric's column headed by its name in
    :data:`nclib.plotting.MATH_NAMES` (a chapter shows it typeset, :func:`nclib.tables.math_label`) and written in
    powers of ten throughout where one value needs them; ``"training"``: the first epoch at 100 % training
    accuracy and the epoch from which it stays there and the largest rise of the objective (:func:`rise_cell`);
    ``"drops"``: each run's fall of NC1
    and NC3 side by side (:func:`drops_table`, the chapter's one table of NC1's fall); ``"settings"``: the paper's
    settings (Section 5) next to the runs'.  ValueError where a run's provenance is not the record of its
    parameters (:func:`nclib.figures.provenance_problems`), as :func:`check_figure` refuses it.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    f = figure(fig)
    return {"provenance": _provenance_table(runs), "theory": _theory_table(runs, theory),
            "final": _final_table(f, rows), "training": _training_table(rows), "drops": drops_table(runs),
            "settings": _settings_table(f, runs, check)}


def _provenance_table(runs: Mapping[int, Run]):
    import pandas as pd

    problems = [p for run in runs.values() for p in provenance_problems(run)]
    if problems:  # as check_figure refuses them: the table shows what the provenance records of each run
        raise ValueError("runs do not hold the provenance of their parameters: " + "; ".join(problems))
    table = pd.DataFrame([{
        "L": L, "N": f'{r.provenance["N"]:,}', "K": r.provenance["K"],
        "parameters": f'{r.provenance["parameter_count"]:,}',
        # the samples of the last, partial batch of each epoch are not trained on in that epoch (drop_last)
        "steps per epoch": r.provenance["steps_per_epoch"], "samples dropped per epoch": r.provenance["dropped_per_epoch"],
        "steps": f'{r.provenance["steps"]:,}', "training time (s)": round(r.provenance["train_time_s"], 1),
        "steps/s (of training time)": round(r.provenance["steps_per_s"], 1),
        "wall time (s)": round(r.provenance["wall_time_s"], 1), "device": r.provenance["device_name"],
        "precision": r.provenance["precision"], "torch": r.provenance["versions"]["torch"],
        "git commit": (r.provenance["git_commit"] or "?")[:10], "data sha256": r.provenance["data_sha256"][:12],
    } for L, r in sorted(runs.items())]).set_index("L").T
    table.columns = [f"L = {L}" for L in table.columns]
    return table


# The theory table's columns of the global feature mean's norm (bias-free), named in words: a table header cannot
# write h_G's subscript.
_MEAN_AT_MINIMIZERS, _MEAN_AT_END = ("global feature-mean norm at the global minimizers",
                                     "global feature-mean norm at the end")


def _theory_table(runs: Mapping[int, Run], theory: Mapping[int, RunTheory]):
    import pandas as pd

    # bias-free, the global feature mean of every global minimizer is not 0 (minimizer_global_mean_norm): beside
    # the run's; with a bias it is 0, and the final table gives the run's
    table = pd.DataFrame([{
        "L": L, "modes alive": f"{t.alive} of {t.K}", "largest κ": round(float(t.kappa[0]), 3),
        "smallest nonzero κ": round(float(t.kappa[t.kappa > 1e-9 * t.kappa[0]].min()), 3),
        "global minimum of (4.3)": t.minimum, "objective at the end": runs[L].history['objective'][-1],
        **({} if t.bias else {_MEAN_AT_MINIMIZERS: t.global_mean_norm,
                              _MEAN_AT_END: runs[L].history['global_mean_norm'][-1]}),
    } for L, t in sorted(theory.items())]).set_index("L")
    # each column at one precision, its trailing zeros kept (0.0072600 beside 0.0072648), so that the minimum and
    # the final objective compare by eye
    for col, sig in (("global minimum of (4.3)", 5), ("objective at the end", 5), (_MEAN_AT_MINIMIZERS, 3),
                     (_MEAN_AT_END, 3)):
        if col in table:
            table[col] = table_column(table[col], sig)
    return table


def _final_table(f: Figure, rows: list[dict]):
    import pandas as pd

    final = pd.DataFrame([{
        "L": r["L"], "epochs": f'{r["epochs"]:,}', **{name: r[key] for key, name in plotting.MATH_NAMES.items()},
        "train acc (%)": percent(r["train_acc"], 2), **({"‖b − n/N‖": r["bias_error"]} if f.bias else {}),
    } for r in rows]).set_index("L")
    # spanning orders of magnitude: significant figures, one notation per column (a metric's powers of ten
    # throughout where one needs them, so that collapsed and stalled runs compare by their powers)
    for col in (*plotting.MATH_NAMES.values(), "‖b − n/N‖"):
        if col in final:
            final[col] = table_column(final[col], 3, uniform=col in plotting.MATH_NAMES.values())
    return final


def _training_table(rows: list[dict]):
    import pandas as pd

    training = pd.DataFrame([{
        "L": r["L"], "100 % acc first at epoch": epoch_cell(r["acc100_epoch"]),
        "100 % acc to the end from epoch": epoch_cell(r["acc100_stays"]),
        "largest objective rise": rise_cell(r["rise"]),  # NC1's fall: the drops table's, to three figures
    } for r in rows]).set_index("L")
    return training


def drops_table(runs: Mapping[int, Run]):
    """Each run's fall of NC1 beside its fall of NC3, on one scale (:func:`metric_drops`), a pandas DataFrame
    indexed by L: whether the run ends at 100 % training accuracy, NC1's factor (its value at epoch 0 over its
    last), the square root of that factor (by a rule of thumb NC1 is quadratic in the distance from collapse, NC3
    linear in it, as along a straight path to the minimizer: the root is NC1's fall on NC3's scale), NC3's factor
    and the root over NC3's factor.  One row per run, so
    that no sentence sets one run's fall beside another's.  ValueError for no runs.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    import pandas as pd

    drops = metric_drops(runs)
    table = pd.DataFrame([{
        "L": L, "ends at 100 %": "yes" if float(runs[L].history["train_acc"][-1]) >= 1.0 else "no",
        "NC1 fall": d["nc1"], "its square root": d["nc1_root"], "NC3 fall": d["nc3"],
        "square root / NC3 fall": d["nc1_root"] / d["nc3"],
    } for L, d in drops.items()]).set_index("L")
    for col in ("NC1 fall", "its square root", "NC3 fall", "square root / NC3 fall"):
        table[col] = table_column(table[col], 3)
    return table


def _dropped(runs: Mapping[int, Run]) -> int | None:
    """The samples each epoch leaves out of its batches (the last partial batch, :ref:`ch-engine`), as the runs'
    provenance records them: one number for all the runs, None where they differ."""
    return _one({int(r.provenance["dropped_per_epoch"]) for r in runs.values()})


def _backbone(p: Mapping) -> str:
    """The backbone of a run's parameters as :class:`nclib.models.CollapseNet` builds it: ``depth`` x (Linear +
    ReLU) of width ``width``, then the feature layer Linear(width, d)."""
    d = p["width"] if p.get("feature_dim") is None else p["feature_dim"]
    # code-like: no thousands separators inside the call, which would read as more arguments
    return f"{p['depth']} × (Linear + ReLU), then Linear({p['width']}, {d}) to the features"


def _input_cells(runs: Mapping[int, Run]) -> list[str]:
    """The settings table's cells of the runs' draw of each class's samples, input and normalization, from their
    params and provenance and :data:`nclib.data.REFERENCE_NORMALIZATION` ("varies" where the runs differ)."""
    p, seed = runs[min(runs)].params, _one({r.params["seed"] for r in runs.values()})
    drawn = (f"rendered from seed {seed}" if p["dataset"] in data.GENERATED else "the first rows of each class"
             if p["selection"] == "first" else f"a permutation of each class's rows by seed {seed}")
    shown = _one({r.provenance["data"].get("input", "the images as stored") for r in runs.values()})
    norm, ref = p["normalization"], data.REFERENCE_NORMALIZATION.get(p["dataset"])
    # the letters' constants are not in the closest public code, which has no EMNIST, but in its EMNIST variant
    whose = ("the EMNIST variant of the closest public code" if ref == (data.EMNIST_MEAN, data.EMNIST_STD)
             else "the closest public code's")
    scaled = ("x / 255" if norm == "none" else "the subset's own mean and std per channel" if norm == "standardize"
              else "per channel, mean ({}), std ({}) ({})".format(
                  *(", ".join(f"{v:.4f}" for v in t) for t in ref), whose))
    return ["varies" if v is None else v for v in (None if seed is None else drawn, shown, scaled)]


def _settings_table(f: Figure, runs: Mapping[int, Run], check: Mapping):
    import pandas as pd

    p = runs[min(runs)].params
    paper = scale_settings("gpu")
    epochs = max(check["epochs"].values())
    N, dropped = int(run_counts(p).sum()), _dropped(runs)
    # what the paper does not state is said so in its column, also where these runs read its words one way: the
    # layers of its "6-layer MLP" (the reference code's reading) and what becomes of an epoch's last partial batch
    return pd.DataFrame({
        "paper (Section 5)": [f.paper_data, comma_list(sorted(figure_counts(f, "gpu"), reverse=True)), "not stated",
                              "random, drawn how not stated", "not stated", "not stated",
                              f"{paper['depth']}-layer MLP, its layers not stated", f"{paper['width']:,}",
                              str(paper["batch_size"]), "not stated", f"Adam, {written(paper['lr'], 6)}", "not stated",
                              "not stated", "not stated", "not stated", f"{paper['epochs']:,}"],
        "these runs": [plotting.dataset_label(p, runs[min(runs)].provenance.get("data")),
                       comma_list(sorted(run_counts(p).tolist(), reverse=True)),
                       f"{comma_list(run_counts(p).tolist())} "
                       f"({_order_label(p.get('class_order', '?'), p['dataset'])})",
                       *_input_cells(runs),
                       f"{_backbone(p)} (the reference code's reading)", f"{p['width']:,}", str(p["batch_size"]),
                       "varies" if dropped is None else "none (one batch)" if dropped == 0 else
                       f"left out: {dropped:,} of the {N:,} samples each epoch",
                       f"Adam, {written(p['lr'], 6)}",
                       f"×{written(p['lr_gamma'], 6)} after epoch "
                       f"{comma_list(f'{m:,}' for m in p['lr_milestones'])}" if p["lr_milestones"] else "constant",
                       f"lam_W = lam_H = {written(p['lam_W'], 6)}", precisions(runs),
                       str(p["metric_every"]), f"{epochs:,}"],
    }, index=["data", "class counts", "counts by class index", "samples of a class", "input", "normalization",
              "backbone", "width", "batch size", "an epoch's last partial batch", "optimizer, lr", "lr schedule",
              "decays", "precision of the products", "metrics every (epochs)", "epochs"])


def figure_chapter(fig, scale: str | None = None, root=None) -> FigureChapter:
    """Read, check and tabulate one figure's committed runs: everything a figure chapter shows but its plots.

    ``scale``: ``"gpu"`` or ``"cpu-scale"`` (None: :func:`preferred_scale`); ``root``: the results folder
    (default :data:`RESULTS`). Loads the runs (:func:`load_figure`), checks them against the figure's
    configuration and their provenance (:func:`check_figure`, ValueError if they differ) and, where git can say, that
    each was made at a commit in the history of this checkout (:func:`commit_problems`), and returns a :class:`FigureChapter`.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    f = figure(fig)
    if scale is None:
        scale = preferred_scale(f, root)
    runs = load_figure(f, scale, root)
    check = check_figure(runs, f, scale)
    unknown = commit_problems(runs)
    if unknown:
        raise ValueError(f"Figure {f.number} ({scale}) runs were not made by this repository's code: "
                         + "; ".join(unknown))
    rows = final_rows(runs)
    theory = {L: run_theory(run.params) for L, run in runs.items()}
    return FigureChapter(figure=f, scale=scale, runs=runs, check=check, rows=rows, theory=theory,
                         verdicts=collapse_verdicts(rows, theory),
                         glue=figure_glue(f, scale, runs, check, rows, theory),
                         tables=figure_tables(f, runs, check, rows, theory))


# --------------------------------------------------------------------------------------------- NC3 read two ways

#: Where the bias-free figures' CPU-scale runs made again with Appendix C's NC3 are (:func:`nc3_readings`).
NC3_BY_CLASS = "nc3-by-class"


def nc3_readings(fig, root=None) -> tuple:
    """The two readings of NC3 in the CPU-scale runs of bias-free Figure 3 or 4 (:ref:`ch-fig3`, :ref:`ch-fig4`):
    :func:`nclib.figures.compare_nc3` of the runs of ``<root>/replica-cpu/`` (recorded before NC3 compared class
    with class) and of the same runs made again on that CPU, ``<root>/nc3-by-class/`` (``root``: the results
    folder, by default ``results/``), and its table: per L the final NC3 in each reading, their ratio at the end and
    its range over the recorded epochs, each column named as a reading of the runs on the replica's CPU (CPU-scale
    runs, not those a chapter's other tables show).  ValueError naming ``fig`` for a figure with a bias."""
    import pandas as pd

    f = figure(fig)
    if f.bias:
        raise ValueError(f"fig must be a bias-free figure (3 or 4), got Figure {f.number}, which has a bias")
    root = RESULTS.parent if root is None else pathlib.Path(root)
    compared = compare_nc3(load_figure(f, "cpu-scale", root / "replica-cpu"),
                           load_figure(f, "cpu-scale", root / NC3_BY_CLASS))
    final = {"blocks": "replica CPU: NC3 at the end, blocks", "classes": "replica CPU: NC3 at the end, class by class"}
    table = pd.DataFrame([{"L": L, **{name: g[key] for key, name in final.items()},
                           "blocks / class by class at the end": written(g["blocks"] / g["classes"], 3, zeros=True),
                           "blocks / class by class over the run":
                               f"{written(g['smallest'], 3, zeros=True)} to {written(g['largest'], 3, zeros=True)}"}
                          for L, g in compared.items()]).set_index("L")
    for name in final.values():
        table[name] = table_column(table[name], 3)
    return compared, table
