"""Paper-style panels of Figures 1-4: NC1, NC2^W, NC2^H, NC2^{WH}, NC3 and training accuracy against epochs.

One curve per head depth L, drawn from the run folders that :func:`nclib.train.run` writes (never from a
model in memory), so a figure can be redrawn without retraining.  The NC metrics use a log scale (an assumption:
the paper's figures are images its text does not contain, so their axes cannot be checked); the accuracy a linear
one, in percent as the book's prose and tables give it (:ref:`ch-train`, :ref:`ch-fig1` to :ref:`ch-fig4`).
"""
from __future__ import annotations

import os
import pathlib
from typing import Iterable, Mapping

import numpy as np

from .geometry import NC3_EQUAL_COUNT_BLOCKS, recorded_nc3_compares
from .runs import load_run

#: The line style of each head depth's curves, in the order of L: where two runs' curves coincide (both at 100 %
#: training accuracy) the dashes of the later one leave the earlier one visible.
LINE_STYLES = ("-", "--", "-.", ":")

#: How the book names the collapse metrics (:data:`nclib.runs.NC_COLUMNS`) in its prose, tables and axis labels,
#: as :ref:`ch-metrics` writes them: NC1, NC2 with its superscript in ``$...$`` (matplotlib typesets it on an
#: axis; a table's header or row label through :func:`nclib.tables.math_label`; a name glued into a sentence as
#: Markdown), NC3.
MATH_NAMES = {"nc1": "NC1", "nc2_w": "NC2$^W$", "nc2_h": "NC2$^H$", "nc2_wh": "NC2$^{WH}$", "nc3": "NC3"}

#: (history column, axis label, log scale) of the six panels, in the paper's order.
PANELS = (
    *((key, name, True) for key, name in MATH_NAMES.items()),
    ("train_acc", "training accuracy (%)", False),
)
#: The panels drawn in percent: their history columns hold fractions (the training accuracy, 0 to 1).
PERCENT_KEYS = frozenset({"train_acc"})


def dataset_label(params: Mapping, data: Mapping | None = None) -> str:
    """How a run's data is named in the legends of Figures 1-4 (:ref:`ch-train`): the stand-in always says it
    is one, and CIFAR-10 read from an .npz whether its pixels are a JPEG-decoded copy.

    ``data``: the run's data record (``provenance["data"]`` of its run folder, what :func:`nclib.data.load`
    recorded), or None.  Where it holds the fields the loader records of an .npz (``lossy_jpeg``,
    ``shared_subset``), they decide: "CIFAR-10 (JPEG-decoded copy)" for a file that says its pixels were decoded
    from JPEG, or, saying nothing of it, is the shared subset or a slice of it; "CIFAR-10 (npz)" otherwise.  A run
    recorded before those fields existed (the committed GPU runs of Figures 1 and 3), or named without its record,
    keeps the rule of the file's name: "cifar10_subset" in ``data_path`` names the shared JPEG-decoded subset.
    ValueError naming ``params`` or ``data`` where one is not a mapping."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a run's parameters (a mapping), got {type(params).__name__}")
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"data must be a run's data record (provenance['data'], a mapping) or None, got "
                         f"{type(data).__name__}")
    name = params.get("dataset", "?")
    if name == "letters-synthetic":
        return "letters-synthetic (stand-in for EMNIST letters)"
    if name == "cifar10" and data is not None and ("lossy_jpeg" in data or "shared_subset" in data):  # an .npz
        jpeg = data.get("lossy_jpeg")
        if jpeg is None:  # the file says nothing of it: the shared subset, whole or sliced, is JPEG-decoded
            jpeg = bool(data.get("shared_subset")) or bool((data.get("slice") or {}).get("source_is_shared_subset"))
        return "CIFAR-10 (JPEG-decoded copy)" if jpeg else "CIFAR-10 (npz)"
    if name == "cifar10" and str(params.get("data_path", "")).endswith(".npz"):
        return "CIFAR-10 (JPEG-decoded copy)" if "cifar10_subset" in str(params["data_path"]) else "CIFAR-10 (npz)"
    return {"cifar10": "CIFAR-10", "emnist-letters": "EMNIST letters", "synthetic": "Gaussian mixture"}.get(name, name)


def data_case(params_by_L: Mapping, data_by_L: Mapping | None = None) -> str:
    """The data and bias case that the runs of one panel set of Figures 1-4 share ({L: params}), as their legend
    names it (:ref:`ch-train`): "CIFAR-10, with bias".  ``data_by_L``: {L: the run's data record} where known
    (:func:`dataset_label`'s ``data``).  Runs on other data or another bias case are refused, since a legend title
    can name only one.  ValueError naming ``params_by_L`` unless it is a mapping that holds at least one run's
    parameters (a mapping each), and ``data_by_L`` unless it is a mapping or None."""
    if not isinstance(params_by_L, Mapping) or not params_by_L:
        got = "an empty mapping" if isinstance(params_by_L, Mapping) else type(params_by_L).__name__
        raise ValueError(f"params_by_L must hold at least one run, a mapping {{L: params}}, got {got}")
    if data_by_L is not None and not isinstance(data_by_L, Mapping):
        raise ValueError(f"data_by_L must be a mapping {{L: data record}} or None, got {type(data_by_L).__name__}")
    for L, p in params_by_L.items():
        if not isinstance(p, Mapping):
            raise ValueError(f"params_by_L[{L!r}] must be a run's parameters (a mapping), got {type(p).__name__}")
    data_by_L = {} if data_by_L is None else data_by_L
    cases = {L: f"{dataset_label(p, data_by_L.get(L))}, {'with bias' if p.get('bias', True) else 'bias-free'}"
             for L, p in params_by_L.items()}
    if len(set(cases.values())) > 1:
        listed = "; ".join(f"L={L}: {case}" for L, case in cases.items())
        raise ValueError(f"the runs of one panel set must share the data and the bias case, got {listed} "
                         f"(draw each case on its own, or pass legend_title)")
    return next(iter(cases.values()))


def load_runs(run_dirs) -> dict:
    """{L: (params, history)} of the given run folders, sorted by L, one run per L (the curves of one panel
    set of Figures 1-4, :ref:`ch-train`).  ValueError naming ``run_dirs`` unless it is a list of run folders
    (paths)."""
    return {L: (params, history) for L, (params, history, _) in _read_runs(run_dirs).items()}


def _read_runs(run_dirs, name: str = "run_dirs") -> dict:
    """{L: (params, history, provenance)} of the given run folders, sorted by L (:func:`load_runs`); ValueError
    naming ``name`` unless ``run_dirs`` is a list of paths."""
    if isinstance(run_dirs, (str, pathlib.PurePath)):
        raise ValueError(f"{name} must be a list of run folders, got the one path {str(run_dirs)!r} "
                         f"(write [{str(run_dirs)!r}])")
    if isinstance(run_dirs, Mapping) or not isinstance(run_dirs, Iterable):
        raise ValueError(f"{name} must be a list of run folders, got {type(run_dirs).__name__}")
    out = {}
    for run_dir in run_dirs:
        if not isinstance(run_dir, (str, os.PathLike)):
            raise ValueError(f"{name} must hold run folders (paths), got {run_dir!r}")
        params, history, provenance = load_run(pathlib.Path(run_dir))
        L = int(params["L"])
        if L in out:
            raise ValueError(f"{name} holds two runs with L={L}; pass one run per L")
        out[L] = (params, history, provenance)
    return dict(sorted(out.items()))


def _checked_curves(runs: Mapping) -> Mapping:
    """``runs`` ({L: (params, history)}) checked as :func:`collapse_panels` draws it: each value a pair of
    mappings, the history holding ``epoch`` and the column of every panel (:data:`PANELS`); ValueError naming
    ``runs[L]`` otherwise."""
    for L, run in runs.items():
        if not (isinstance(run, (tuple, list)) and len(run) == 2 and all(isinstance(x, Mapping) for x in run)):
            raise ValueError(f"runs[{L!r}] must be (params, history), two mappings, got {run!r:.80}")
        missing = [key for key in ("epoch", *(key for key, _, _ in PANELS)) if key not in run[1]]
        if missing:
            raise ValueError(f"runs[{L!r}]: its history lacks the column(s) {missing}")
    return runs


def nc3_label(compared: Iterable[str]) -> str:
    """The axis label of the NC3 panel of runs whose NC3 compared ``compared`` (each run's
    :func:`nclib.geometry.recorded_nc3_compares`): "NC3", and on a second line "(blocks of equal counts)" where the
    runs were made before the bias-free NC3 compared class with class (", some runs" where only some were), so that
    a panel of such runs does not pass for Appendix C's NC3 (:ref:`ch-metrics`, :ref:`ch-fig3`).  ValueError naming
    ``compared`` unless it holds at least one of "modes", "classes" and :data:`NC3_EQUAL_COUNT_BLOCKS`, and nothing
    else."""
    if isinstance(compared, str) or not isinstance(compared, Iterable):
        raise ValueError(f"compared must be a collection of what each run's NC3 compared, got {compared!r}")
    compared = list(compared)
    if not all(isinstance(c, str) for c in compared):
        raise ValueError(f"compared must hold texts (what each run's NC3 compared), got {compared!r}")
    compared = set(compared)
    known = {"modes", "classes", NC3_EQUAL_COUNT_BLOCKS}
    if not compared or not compared <= known:
        raise ValueError(f"compared must hold at least one of {sorted(known)} and nothing else, "
                         f"got {sorted(compared)}")
    if NC3_EQUAL_COUNT_BLOCKS not in compared:
        return MATH_NAMES["nc3"]
    which = "" if len(compared) == 1 else ", some runs"
    return f"{MATH_NAMES['nc3']}\n({NC3_EQUAL_COUNT_BLOCKS}{which})"


def collapse_panels(runs, axes=None, legend_title: str | None = None, nc3_compares: Mapping | None = None):
    """Draw the six panels of Figures 1-4 for ``runs`` ({L: (params, history)} or a list of run folders).

    Returns the matplotlib Figure.  Each L has its own colour and line style (:data:`LINE_STYLES`).  ``axes``: six
    Axes to draw into (default: a new figure of 3 rows x 2 columns).
    The legend names each curve "L = ..." and its title the dataset (:func:`dataset_label`, from the runs' data
    records where run folders are given) and the bias case, unless ``legend_title`` is given (:ref:`ch-train`;
    with the theory's targets, :func:`nclib.figures.draw_panels`).  The NC3 panel's label says which NC3 the runs
    compared (:func:`nc3_label`): ``nc3_compares`` ({L: what the run's NC3 compared}, as
    :attr:`nclib.figures.Run.nc3_compares` gives it) where given, else, for run folders, their provenance
    (:func:`nclib.geometry.recorded_nc3_compares`); runs given as {L: (params, history)} without it get the plain
    label "NC3".  ValueError naming ``runs`` unless it is
    one of those forms, with at least one run whose history holds every panel's column, and ``nc3_compares``
    unless it is None or a mapping with an entry for each run's L.
    """
    import matplotlib
    import matplotlib.layout_engine
    import matplotlib.pyplot as plt

    if isinstance(runs, (str, pathlib.PurePath)):
        raise ValueError(f"runs must be {{L: (params, history)}} or a list of run folders, got the one path "
                         f"{str(runs)!r}")
    if not isinstance(runs, (Mapping, Iterable)):
        raise ValueError(f"runs must be {{L: (params, history)}} or a list of run folders, got {type(runs).__name__}")
    if nc3_compares is not None and not isinstance(nc3_compares, Mapping):
        raise ValueError(f"nc3_compares must be a mapping {{L: what the run's NC3 compared}} or None, got "
                         f"{type(nc3_compares).__name__}")
    data_by_L = None
    if not isinstance(runs, Mapping):  # run folders: their data records name the data too (dataset_label)
        read = _read_runs(runs, "runs")
        runs = {L: (params, history) for L, (params, history, _) in read.items()}
        data_by_L = {L: provenance.get("data") for L, (_, _, provenance) in read.items()}
        if nc3_compares is None:  # and their provenance what their NC3 compared
            nc3_compares = {L: recorded_nc3_compares(params["bias"], provenance.get("nc3_compares"))
                            for L, (params, _, provenance) in read.items()}
    if not runs:
        raise ValueError("runs must hold at least one run")
    _checked_curves(runs)
    labels = {key: label for key, label, _ in PANELS}
    if nc3_compares is not None:
        missing = sorted(set(runs) - set(nc3_compares))
        if missing:
            raise ValueError(f"nc3_compares must say what the NC3 of every run compared, it lacks L = {missing}")
        labels["nc3"] = nc3_label(nc3_compares[L] for L in runs)
    if axes is None:
        # three rows of two: at the width of a book page each panel stays readable (2 x 3 halves the text)
        fig, axes = plt.subplots(3, 2, figsize=(8, 9), constrained_layout=True)
    axes = np.asarray(axes).ravel()
    if axes.size != len(PANELS):
        raise ValueError(f"axes must hold {len(PANELS)} Axes, got {axes.size}")
    fig = axes[0].figure
    if legend_title is None:
        legend_title = data_case({L: params for L, (params, _) in runs.items()}, data_by_L)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (L, (params, h)) in enumerate(runs.items()):
        color, style = colors[i % len(colors)], LINE_STYLES[i % len(LINE_STYLES)]
        for ax, (key, label, log) in zip(axes, PANELS):
            y = np.asarray(h[key], dtype=float) * (100.0 if key in PERCENT_KEYS else 1.0)
            x = np.asarray(h["epoch"])
            keep = np.isfinite(y) & ((y > 0) if log else True)
            ax.plot(x[keep], y[keep], color=color, ls=style, marker="o" if keep.sum() < 30 else None, ms=3,
                    label=f"L = {L}")
    for ax, (key, label, log) in zip(axes, PANELS):
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels[key])
        ax.grid(True, which="major", alpha=0.3)
        if key in PERCENT_KEYS:
            ax.set_ylim(-2, 102)
    # outside every axes, so that no curve is hidden behind it: above the panels, across the figure, where the
    # figure lays itself out (constrained layout; the legend above the first panel alone widened its column), else
    # above the first panel
    legend = dict(title=legend_title, fontsize="small", title_fontsize="small", ncol=len(runs), alignment="left")
    if isinstance(fig.get_layout_engine(), matplotlib.layout_engine.ConstrainedLayoutEngine):
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper left", **legend)
    else:
        axes[0].legend(loc="lower left", bbox_to_anchor=(0.0, 1.02), borderaxespad=0.0, **legend)
    return fig
