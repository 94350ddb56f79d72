"""The numbers and tables of :ref:`ch-figures-summary` (and the numbers :ref:`ch-intro` quotes from it), read from the
four figure chapters' :class:`nclib.figures.chapter.FigureChapter`: the figures and their runs side by side, the runs
that stall, the wall times, the ranges the summary's sentences compare; and its numbers of the engine benchmark and of
the GPU calibration, which :mod:`nclib.figures.speed` reads.  Numbers only, written by the rule of
:mod:`nclib.figures.chapter` (a run's own value and the extremes of the runs' values to nearest, a bound rounded
outward, reading as the table that writes the same number: :mod:`nclib.rounding`); the sentences are the
chapter's.
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Mapping

import numpy as np

from .. import plotting
from ..rounding import at_most, written
from .analysis import NEAR_BOUND, collapse_verdict, stalls, wall_time_s
from .chapter import FigureChapter, comma_list, epoch_cell, percent, rise_cell, table_column
from .config import FIGURES, scale_settings
from .events import SPIKE_FACTOR
from .load import Run, checked_runs
from .speed import calibrated_seconds, logged_figure, read_benchmark


def _check_chapters(chapters) -> None:
    """ValueError naming ``chapters`` unless it is a non-empty {figure: FigureChapter} mapping."""
    if not isinstance(chapters, Mapping) or not chapters or \
            not all(isinstance(c, FigureChapter) for c in chapters.values()):
        raise ValueError(f"chapters must map figures to their FigureChapter (figure_chapter), at least one, got "
                         f"{chapters!r:.80}")


def summary_tables(chapters: Mapping[int, FigureChapter]) -> dict:
    """The tables of :ref:`ch-figures-summary` from the four :class:`FigureChapter`: ``"figures"`` (data, named as
    the legends name it, :func:`nclib.plotting.dataset_label`, so a copy or a stand-in says so; bias case, scale and
    epochs of each figure, with thousands separators), ``"final"`` (the final values of every run, indexed by figure and
    L, each metric's column headed by its name in :data:`nclib.plotting.MATH_NAMES` and written in powers of ten
    throughout where one value needs them; "no bias" for the bias of a bias-free run), ``"training"`` (the spacing
    of its records, when it first reached 100 % and from when it stayed there at those records, its largest rise
    between two of them),
    ``"made"`` (wall time, whether trained side by side, device, precision; these three also indexed by the scale
    of the runs) and ``"stalls"``
    (the runs that end below 100 % training accuracy, :func:`stalls`: final accuracy, misclassified samples,
    objective over the global minimum, and for L >= 2 the local minimizer of Lemma A.2 with modes at 0 nearest the
    final objective, :func:`nclib.minority.nearest_partial_minimum`: how many modes it puts at 0, the final
    objective over its value, and how far off (relatively) the next nearest such point is).  ValueError naming
    ``chapters`` unless it holds at least one."""
    import pandas as pd

    _check_chapters(chapters)
    figures = pd.DataFrame([{
        # the data with the qualifier of its label: a copy, a stand-in
        "figure": k, "data": plotting.dataset_label(c.runs[min(c.runs)].params,
                                                    c.runs[min(c.runs)].provenance.get("data")),
        "bias": "yes" if c.figure.bias else "no", "scale": c.scale,
        "epochs": f'{max(c.check["epochs"].values()):,}',  # "2,600", as the prose writes it
    } for k, c in sorted(chapters.items())]).set_index("figure")
    final = pd.DataFrame([{
        "figure": k, "scale": c.scale, "L": r["L"], **{name: r[key] for key, name in plotting.MATH_NAMES.items()},
        "train acc (%)": percent(r["train_acc"]),
        "objective / minimum": f"{r['objective'] / r['minimum']:.2f}", "‖b − n/N‖": r["bias_error"],
    } for k, c in sorted(chapters.items()) for r in c.rows]).set_index(["figure", "scale", "L"])
    for col in (*plotting.MATH_NAMES.values(), "‖b − n/N‖"):  # significant figures, one notation per column
        final[col] = table_column(final[col], 2, uniform=col in plotting.MATH_NAMES.values())
    final["‖b − n/N‖"] = ["no bias" if not chapters[k].runs[L].params["bias"] else v
                          for (k, _, L), v in final["‖b − n/N‖"].items()]
    training = pd.DataFrame([{
        # the records' spacing first: the epochs and the rises of the next columns are those seen at the records
        "figure": k, "scale": c.scale, "L": r["L"],
        "recorded every (epochs)": int(c.runs[r["L"]].params["metric_every"]),
        "100 % first at epoch": epoch_cell(r["acc100_epoch"]),
        "100 % to the end from epoch": epoch_cell(r["acc100_stays"]), "largest objective rise": rise_cell(r["rise"]),
    } for k, c in sorted(chapters.items()) for r in c.rows]).set_index(["figure", "scale", "L"])
    made = pd.DataFrame([{  # a table of its own: with the records' columns it was too wide for the page
        "figure": k, "scale": c.scale, "L": r["L"], "wall time (s)": round(r["wall_time_s"], 1),
        "trained": "side by side" if r["trained_with"] else "alone", "device": r["device"],
        "precision": c.runs[r["L"]].provenance["precision"],
    } for k, c in sorted(chapters.items()) for r in c.rows]).set_index(["figure", "scale", "L"])
    stalled = pd.DataFrame([{
        "figure": k, "L": L, "train acc (%)": percent(st["train_acc"]), "misclassified": f"{st['misclassified']:,}",
        "objective / minimum": f"{st['objective_ratio']:.2f}",
        "modes at 0": "" if st["partial"] is None else st["partial"]["dead"],
        "above the nearest point (%)": float("nan") if st["partial"] is None else 100 * st["partial"]["above"],
        "distance to the next point (%)": float("nan") if st["partial"] is None or st["partial"]["runner_up"] is None
        else 100 * st["partial"]["runner_up"],
    } for k, c in sorted(chapters.items()) for L, st in stalls(c.runs).items()],
        columns=["figure", "L", "train acc (%)", "misclassified", "objective / minimum", "modes at 0",
                 "above the nearest point (%)", "distance to the next point (%)"]).set_index(["figure", "L"])
    # significant figures, one notation and precision per column ("31.0" beside "44.4", not "31"); the distance
    # above the point signed, so that a run below its point shows
    above = stalled["above the nearest point (%)"]
    stalled["above the nearest point (%)"] = [("-" if v < 0 else "+") + w if w else w
                                              for v, w in zip(above, table_column(above.abs(), 2))]
    stalled["distance to the next point (%)"] = table_column(stalled["distance to the next point (%)"], 3)
    return {"figures": figures, "final": final, "training": training, "made": made, "stalls": stalled}


def nc2_wh_pair(with_bias: Mapping[int, Run], without: Mapping[int, Run]) -> dict | None:
    """NC2^WH (Section 5 with a bias, Appendix C without; :ref:`ch-metrics`) of two figures' runs, one with a bias
    and one without, compared at equal epochs: over the runs of each that end at 100 % training accuracy, ``end``
    (``{"with": [...], "without": [...]}``, the values at each run's own last epoch, which differ between figures
    trained for different epochs), ``shared_epoch`` (the last epoch after epoch 0 that all of them recorded) and
    ``shared`` (the values there), ``records`` (how many epochs after epoch 0 all of them recorded), ``below`` and
    ``above`` (at how many of those every run with a bias is below, or above, every run without; at the others the
    two ranges overlap).  None when either figure has no run at 100 % or they share no epoch after 0.  The
    comparison of Figures 1 and 3 that :func:`summary_glue` glues.  ValueError naming ``with_bias`` or ``without``
    unless each holds at least one run whose history has the columns it reads, ``train_acc`` and ``nc2_wh``
    (:func:`nclib.figures.load.checked_runs`).  Chapters: :ref:`ch-figures-summary`."""
    checked_runs(with_bias, "with_bias", ("train_acc", "nc2_wh"))
    checked_runs(without, "without", ("train_acc", "nc2_wh"))
    fit = {case: [run for _, run in sorted(runs.items()) if float(run.history["train_acc"][-1]) == 1.0]
           for case, runs in (("with", with_bias), ("without", without))}
    if not fit["with"] or not fit["without"]:
        return None
    shared = sorted(set.intersection(*(set(np.asarray(run.history["epoch"]).tolist())
                                       for case in fit for run in fit[case])) - {0})
    if not shared:
        return None

    def at(run, epoch) -> float:
        return float(run.history["nc2_wh"][int(np.flatnonzero(np.asarray(run.history["epoch"]) == epoch)[0])])

    below = above = 0
    for epoch in shared:
        a, b = ([at(run, epoch) for run in fit[case]] for case in ("with", "without"))
        below += max(a) < min(b)
        above += max(b) < min(a)
    return {"end": {case: [float(run.history["nc2_wh"][-1]) for run in fit[case]] for case in fit},
            "shared_epoch": int(shared[-1]),
            "shared": {case: [at(run, shared[-1]) for run in fit[case]] for case in fit},
            "records": len(shared), "below": below, "above": above}


def summary_glue(chapters: Mapping[int, FigureChapter]) -> dict:
    """The numbers of :ref:`ch-figures-summary` (keys without the ``sum-`` prefix), from the four chapters.

    ``n-runs`` (``n-gpu-runs`` and ``n-cpu-runs`` of them read from GPU and CPU-scale runs, ``n-fitted-gpu`` of the
    GPU runs at 100 %), ``gpu-figures`` and ``gpu-epochs`` (the figures read from GPU runs and their epochs, with
    thousands separators and so joined by "; ", against the paper's ``paper-epochs``), ``n-fitted`` (the runs that end
    at 100 % training accuracy), ``n-stalled`` (the others) and
    ``partial-off-max`` (over those with L >= 2, the largest relative distance, in %, between the final objective
    and the nearest local minimizer of Lemma A.2 with modes at 0, :func:`stalls`; an "at most") and
    ``partial-runner-up-min`` and ``-max`` (the smallest and the largest run's distance to the next nearest such
    point, to nearest as the table of the stalled runs writes them), the verdict (:func:`collapse_verdict`):
    ``near-bound``, ``n-near`` and ``n-near-gpu`` (the runs near the collapsed minimizer, all and of the GPU runs),
    ``near-metric-max`` and ``near-gpu-metric-max`` (over those runs, all and of the GPU runs, the largest of the
    final NC2^W, NC2^H, NC2^WH and NC3; an "at most" reading as the final table's two figures) and
    ``near-excess-max`` and ``near-gpu-excess-max`` (the largest excess of the objective over the global minimum, in
    per cent; an "at most" reading as the figure chapters write a run's, to two figures), per device
    ``wall-<gpu|cpu>`` (minutes, :func:`wall_time_s`), ``spike-threshold``, ``be-min``/``be-max`` (final over
    initial ||b - n/N||, with a bias: the smallest and the largest run's, to nearest), and for the pairs with and
    without a bias at the same scale, over the runs that end at 100 % (:func:`nc2_wh_pair`):
    ``wh-<a>-<b>-with-min`` .. ``-without-max`` (NC2^WH at each run's own last epoch, which need not be the same in
    both figures), ``wh-<a>-<b>-shared-epoch`` (the last epoch that all of them recorded) and
    ``wh-<a>-<b>-shared-with-min`` .. ``-shared-without-max`` (NC2^WH there), ``wh-<a>-<b>-shared-records`` (how many
    epochs after epoch 0 all of them recorded) and ``wh-<a>-<b>-shared-below`` and ``-shared-above`` (at how many of
    those every run with a bias is below, or above, every run without).  ValueError naming ``chapters`` unless it
    holds at least one.
    """
    _check_chapters(chapters)
    rows = {k: c.rows for k, c in chapters.items()}
    all_rows = [r for k in sorted(rows) for r in rows[k]]
    fitted = [r for r in all_rows if r["train_acc"] == 1.0]
    gpu = [k for k, c in sorted(chapters.items()) if c.scale == "gpu"]
    g = {"n-runs": str(len(all_rows)), "gpu-figures": comma_list(gpu),
         "gpu-epochs": "; ".join(f"{max(chapters[k].check['epochs'].values()):,}" for k in gpu),  # "2,600; 700"
         "n-fitted": str(len(fitted)), "n-stalled": str(len(all_rows) - len(fitted)),
         "n-gpu-runs": str(sum(len(rows[k]) for k in gpu)),
         "n-fitted-gpu": str(sum(r["train_acc"] == 1.0 for k in gpu for r in rows[k])),
         "n-cpu-runs": str(sum(len(rows[k]) for k in rows if k not in gpu)),
         "paper-epochs": f"{scale_settings('gpu')['epochs']:,}",
         "spike-threshold": written(SPIKE_FACTOR, 6)}
    places = [st["partial"] for c in chapters.values() for st in stalls(c.runs).values() if st["partial"] is not None]
    if places:  # bounds over the table of the stalled runs (summary_tables), reading as its columns' figures
        g["partial-off-max"] = at_most(100 * max(abs(p["above"]) for p in places), 2, zeros=True)
        runners = [p["runner_up"] for p in places if p["runner_up"] is not None]
        if runners:  # the smallest and the largest run's own, to nearest as the table writes them
            g["partial-runner-up-min"] = written(100 * min(runners), 3, zeros=True)
            g["partial-runner-up-max"] = written(100 * max(runners), 3, zeros=True)
    # the verdict of each run whose problem has a collapsed minimizer that fits the labels (it refuses the others)
    judged = {(k, r["L"]): (r, chapters[k].theory[r["L"]]) for k in sorted(rows) for r in rows[k]}
    near = {kL: collapse_verdict(r, t) for kL, (r, t) in judged.items() if t.fitting_collapse}
    near = {kL: v for kL, v in near.items() if v["near"]}
    g.update({"near-bound": written(NEAR_BOUND, 6), "n-near": str(len(near)),
              "n-near-gpu": str(sum(k in gpu for k, _ in near))})
    for name, part in (("near", near), ("near-gpu", {kL: v for kL, v in near.items() if kL[0] in gpu})):
        if part:  # bounds over values written to nearest: the final table's metrics and the chapters' excesses
            g[f"{name}-metric-max"] = at_most(max(v["metric_max"] for v in part.values()), 2, zeros=True)
            g[f"{name}-excess-max"] = at_most(100 * max(v["excess"] for v in part.values()), 2, zeros=True)
    for name, ks in (("gpu", gpu), ("cpu", [k for k in sorted(chapters) if k not in gpu])):
        if ks:
            g[f"wall-{name}"] = f"{sum(wall_time_s(chapters[k].runs) for k in ks) / 60:.1f}"
    for with_bias, without in ((1, 3), (2, 4)):
        if with_bias not in chapters or without not in chapters or chapters[with_bias].scale != chapters[without].scale:
            continue
        pair = nc2_wh_pair(chapters[with_bias].runs, chapters[without].runs)
        if pair is None:
            continue
        s = f"wh-{with_bias}-{without}-"
        for at, prefix in (("end", ""), ("shared", "shared-")):
            for case in ("with", "without"):
                for end, f in (("min", min), ("max", max)):
                    g[f"{s}{prefix}{case}-{end}"] = written(f(pair[at][case]), 2)
        g.update({s + "shared-epoch": f"{pair['shared_epoch']:,}", s + "shared-records": str(pair["records"]),
                  s + "shared-below": str(pair["below"]), s + "shared-above": str(pair["above"])})
    be = [r["bias_error"] / r["bias_error_0"] for k in sorted(rows) if chapters[k].figure.bias for r in rows[k]]
    if be:
        g["be-min"], g["be-max"] = written(min(be), 2), written(max(be), 2)  # two runs' own values, to nearest
    return g


def benchmark_glue(files) -> dict:
    """The numbers of the committed engine benchmark outputs (:func:`read_benchmark`) that
    :ref:`ch-figures-summary` quotes, keyed ``bench-<cpu|gpu|gpu-fp32>-<engine|plain|ratio>`` (steps per
    second of one run and their quotient), ``bench-tf32-speedup`` (TF32 over strict fp32 on the GPU) and
    ``bench-figure-<epochs|together|apart|ratio>`` (a figure's three runs side by side against one after
    another); ``files``: the paths of ``bench_train_*.txt``, a list of at least one (ValueError naming ``files``
    otherwise: a single path, whose characters would read as paths, or something that is not a path)."""
    if isinstance(files, (str, bytes, os.PathLike)) or not isinstance(files, (list, tuple)) or not files \
            or not all(isinstance(f, (str, os.PathLike)) for f in files):
        raise ValueError(f"files must be a list of at least one path of a bench_train output, got {files!r:.80}")
    g = {}
    for path in files:
        b = read_benchmark(path)
        name = pathlib.Path(path).stem.removeprefix("bench_train_").replace("_", "-")
        digits = ",.1f" if name == "cpu" else ",.0f"  # "1,389"
        g.update({f"bench-{name}-engine": f"{b['engine']:{digits}}", f"bench-{name}-plain": f"{b['plain']:{digits}}",
                  f"bench-{name}-ratio": f"{b['ratio']:.2f}"})
        if name == "gpu":
            model = re.search(r"[(](.*?)[)]", b["device"])
            if model is None:
                raise ValueError(f"{path}: its device line {b['device']!r} names no GPU model in parentheses")
            g["bench-gpu-device"] = model.group(1)
            if "figure_ratio" in b:
                g.update({"bench-figure-epochs": str(b["figure_epochs"]),
                          "bench-figure-together": f"{b['figure_together_s']:.2f}",
                          "bench-figure-apart": f"{b['figure_apart_s']:.2f}",
                          "bench-figure-ratio": f"{b['figure_ratio']:.2f}"})
        g[f"_{name}"] = b
    if "_gpu" in g and "_gpu-fp32" in g:
        g["bench-tf32-speedup"] = f"{g['_gpu']['engine'] / g['_gpu-fp32']['engine']:.2f}"
    return {k: v for k, v in g.items() if not k.startswith("_")}


def calibration_glue(calibration: Mapping, chapters: Mapping[int, FigureChapter], log_text: str,
                     own: Mapping[int, Mapping] | None = None) -> dict:
    """What a committed GPU calibration (``calibration.json``, :func:`calibrated_seconds`) predicts, keyed for
    :ref:`ch-figures-summary`: ``cal-cifar-min`` and ``cal-letters-min`` (minutes for one figure's notebook at
    the paper's 12,000 epochs), ``cal-all-min`` (all four), ``cal-epochs``, ``cal-device``; per
    figure read from GPU runs ``cal-fig<k>-predicted`` (seconds at its epochs), ``cal-fig<k>-budget`` and
    ``cal-fig<k>-took`` (the wall-clock cap on its notebook and the notebook's seconds, :func:`logged_figure`; left
    out where the log does not record them) and ``cal-fig<k>-runs`` (its runs' wall time).  ``own``: per figure,
    the calibration of the GPU command that ran it, which predicts its seconds (default ``calibration``)."""
    E = scale_settings("gpu")["epochs"]
    full = {k: calibrated_seconds(calibration, k, E) for k in FIGURES}
    g = {"cal-epochs": f"{E:,}", "cal-cifar-min": f"{full[1] / 60:.0f}", "cal-letters-min": f"{full[2] / 60:.0f}",
         "cal-all-min": f"{sum(full.values()) / 60:.0f}", "cal-device": str(calibration["device"])}
    for k, c in sorted(chapters.items()):
        if c.scale == "gpu":
            epochs = max(c.check["epochs"].values())
            g[f"cal-fig{k}-predicted"] = f"{calibrated_seconds((own or {}).get(k, calibration), k, epochs):.0f}"
            logged = logged_figure(log_text, k)
            for key, value in (("took", logged["took_s"]), ("budget", logged["budget_s"])):
                if value is not None:
                    g[f"cal-fig{k}-{key}"] = str(value)
            g[f"cal-fig{k}-runs"] = f"{wall_time_s(c.runs):.0f}"
    return g
