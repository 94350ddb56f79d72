"""The plots of Figures 1-4 from committed runs: the paper-style panels (drawn by
:func:`nclib.plotting.collapse_panels`) with the theory's targets, and the comparison with Theorems 4.1-4.3 at
the runs' own decays (:ref:`ch-fig1` to :ref:`ch-fig4`)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .. import plotting
from ..runs import NC_COLUMNS
from .analysis import run_theory
from .config import check_scale, scale_settings
from .load import Run, checked_runs


def as_plot_runs(runs: Mapping[int, Run]) -> dict:
    """{L: (params, history)}, the form ``nclib.plotting.collapse_panels`` draws.  ValueError naming ``runs``
    unless it holds at least one run (:func:`nclib.figures.load.checked_runs`).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    return {L: (r.params, r.history) for L, r in sorted(checked_runs(runs).items())}


#: How the legends name the paper's own data sets (:func:`nclib.plotting.dataset_label`): the official CIFAR-10 and
#: EMNIST letters.  Any other label (a JPEG-decoded copy, an .npz of unknown origin, the letters stand-in) is other
#: data.
PAPER_DATA = ("CIFAR-10", "EMNIST letters")


def on_other_data(runs: Mapping[int, Run]) -> bool:
    """Whether any of the runs read other data than the paper's (Section 5: CIFAR-10, EMNIST letters), by the label
    the legends give it (:data:`PAPER_DATA`).  ValueError naming ``runs`` when there is none.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    checked_runs(runs)
    return any(plotting.dataset_label(r.params, r.provenance.get("data")) not in PAPER_DATA for r in runs.values())


def figure_legend(runs: Mapping[int, Run], scale: str) -> str:
    """The legend title of a figure: the data (stand-in named as such), the bias case, the scale, the epochs
    (on every figure, against the paper's 12,000 when a GPU time budget cuts them) and, for GPU runs, whether the
    data are other than the paper's (:func:`on_other_data`).  ``scale``: ``"gpu"`` or ``"cpu-scale"``
    (:data:`nclib.figures.config.SCALES`); ValueError otherwise, and naming ``runs`` unless it holds at least one
    run (:func:`nclib.figures.load.checked_runs`).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    checked_runs(runs)
    check_scale(scale)
    case = plotting.data_case({L: r.params for L, r in runs.items()},
                              {L: r.provenance.get("data") for L, r in runs.items()})
    epochs = sorted({int(r.params["epochs"]) for r in runs.values()})
    ep = "/".join(f"{e:,}" for e in epochs)
    full = scale_settings("gpu")["epochs"]
    other = on_other_data(runs)
    if scale == "cpu-scale":
        scale = f"CPU-scale, not the paper's settings, {ep} epochs"
    elif max(epochs) < full:
        scale = f"GPU, the paper's stated settings but {ep} of {full:,} epochs" + (" and other data" if other else "")
    elif other:
        scale = f"GPU, the paper's stated settings but other data, {ep} epochs"
    else:
        scale = f"GPU, the paper's stated settings, {ep} epochs"
    return f"{case}\n{scale}"


def draw_panels(runs: Mapping[int, Run], scale: str = "cpu-scale"):
    """The six paper-style panels of Figures 1-4 from committed runs, with the theory's targets marked.

    Draws with ``nclib.plotting.collapse_panels``; the axis label of each NC panel says its target is 0 (the
    corrected metrics of :ref:`ch-metrics` vanish exactly at every global minimizer of Theorem 4.3, or, bias-free,
    of its form with ``M = D``: the chapters' captions name which, a label that named it ran past its panel), in
    the label rather than on the plotting area, where it would cover curves,
    the accuracy panel marks 100 % with a thin grey line, and a dotted vertical line on every panel marks each step
    decay of the learning rate (``lr_milestones``, shared by the runs). Returns the Figure.  ValueError naming
    ``runs`` unless it holds at least one run (:func:`nclib.figures.load.checked_runs`).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    checked_runs(runs)
    # runs recorded before the bias-free NC3 compared class with class say so on their NC3 panel (a second line)
    fig = plotting.collapse_panels(as_plot_runs(runs), legend_title=figure_legend(runs, scale),
                                   nc3_compares={L: r.nc3_compares for L, r in runs.items()})
    panel = dict(zip((key for key, _, _ in plotting.PANELS), fig.axes))
    # the target alone, short enough to stay beside its panel; the theorem it comes from (with a bias Theorem 4.3,
    # without one its form with M = D) is the caption's
    for key in NC_COLUMNS:
        name, *rest = panel[key].get_ylabel().split("\n", 1)
        panel[key].set_ylabel("\n".join([f"{name} (target 0)", *rest]))
    panel["train_acc"].axhline(100, color="0.5", ls="-", lw=0.5)  # thin and solid: the dashes are those of L's curves
    last = max(int(r.history["epoch"][-1]) for r in runs.values())
    milestones = sorted({int(m) for r in runs.values() for m in r.params.get("lr_milestones") or [] if m < last})
    for ax in panel.values():
        for m in milestones:
            ax.axvline(m, color="0.5", ls=":", lw=0.8)
    return fig


#: The type size of :func:`draw_theory`'s labels (its legends and ticks one point smaller): its one row of three
#: panels is shown at about half its size at the width of a book page.
THEORY_FONT = 15


def draw_theory(runs: Mapping[int, Run]):
    """Three panels in one row comparing a figure's runs with the theory at their own lambdas.

    (a) the objective (4.3) minus its global minimum over free features (:func:`run_theory`), which
    Theorems 4.1-4.3 say is >= 0 and 0 only at the minimizer; (b) with a bias, ||b - n/N|| and the global
    feature-mean norm, both 0 at every minimizer (b* = n/N, eq. (B.5)-(B.7)); bias-free, the global
    feature-mean norm of each run against its value at every global minimizer
    (:func:`nclib.ufm.minimizer_global_mean_norm`), a dashed horizontal line in the run's colour; (c) the
    predicted singular values of P = W_L ... W_1 at the minimizer, one series per L (0 = a collapsed mode): the
    prediction only, the runs do not record their own.  Panels (a) and (b) are on log scales. Returns the Figure.
    ValueError naming ``runs`` unless it holds at least one run whose history has the columns the panels read
    (``objective``, ``global_mean_norm``, and ``bias_error`` with a bias; :func:`nclib.figures.load.checked_runs`).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    import matplotlib.pyplot as plt

    checked_runs(runs, columns=("objective", "global_mean_norm"))
    cases = {bool(r.params["bias"]) for r in runs.values()}
    if len(cases) > 1:
        raise ValueError("runs mix runs with and without a bias: the panels of draw_theory are those of one case")
    if True in cases:
        checked_runs(runs, columns=("bias_error",))
    # one row of three, no empty place in a grid; the page shows it at about half its size, so its text is set
    # larger than matplotlib's default and its labels are short (the caption says the rest), each legend below its
    # panel, off the data
    fig, axes = plt.subplots(1, 3, figsize=(13, 5.2), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bias = cases.pop()
    for (L, run), c in zip(sorted(runs.items()), colors):
        h, th = run.history, run_theory(run.params)
        gap = np.asarray(h["objective"]) - th.minimum
        keep = gap > 0
        axes[0].plot(h["epoch"][keep], gap[keep], color=c, label=f"L = {L}")
        if bias:
            axes[1].plot(h["epoch"], h["bias_error"], color=c, label=f"$\\|b - n/N\\|$, L = {L}")
        axes[1].plot(h["epoch"], h["global_mean_norm"], color=c, ls=":", label=f"$\\|h_G\\|$, L = {L}")
        if not bias:  # with a bias the target is 0, off the log scale: the axis label gives it
            axes[1].axhline(th.global_mean_norm, color=c, ls="--", lw=1, label=f"minimizers, L = {L}")
        k = np.arange(1, th.K + 1)
        axes[2].plot(k, th.s_product, color=c, marker="o", ms=4, lw=1, label=f"L = {L} ({th.alive} of {th.K} alive)")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    labels = (("epoch", "objective (4.3) $-$ global minimum"),
              ("epoch", "distance to the minimizer's value" if bias else "global feature-mean norm"),
              ("mode i of M (by descending κ)", "predicted singular value of $W_L\\cdots W_1$"))
    for ax, (x, y), ncol in zip(axes, labels, (3, 2, 1)):
        ax.set_xlabel(x, fontsize=THEORY_FONT)
        ax.set_ylabel(y, fontsize=THEORY_FONT)
        ax.tick_params(labelsize=THEORY_FONT - 1)
        ax.grid(True, alpha=0.3)
        # one quantity per column of the legend ("‖b − n/N‖, L = 1" above "‖b − n/N‖, L = 3"), the runs in order
        handles, names = ax.get_legend_handles_labels()
        kinds = list(dict.fromkeys(name.rsplit(", L = ", 1)[0] for name in names))
        order = sorted(range(len(names)), key=lambda i: kinds.index(names[i].rsplit(", L = ", 1)[0]))
        ax.legend([handles[i] for i in order], [names[i] for i in order], fontsize=THEORY_FONT - 1,
                  loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False, columnspacing=1.0,
                  handlelength=1.8)
    return fig

