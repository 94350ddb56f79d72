"""Figures 1-4 of Section 5 and Appendix C: their run configurations, the committed runs, theory and tables.

The paper's Figures 1-4 plot NC1, NC2^W, NC2^H, NC2^{WH}, NC3 and the training accuracy against epochs
for a 6-layer MLP backbone and an L-layer linear head (L = 1, 3, 6) trained on objective (4.3):

========  =====================================  ============  ==========================
figure    data                                   bias          chapter
========  =====================================  ============  ==========================
1         CIFAR-10, 500,500,400,...,100,100      with bias     :ref:`ch-fig1`
2         EMNIST letters, 1 x 1500, 5 x 600,     with bias     :ref:`ch-fig2`
          20 x 50
3         CIFAR-10                               bias-free     :ref:`ch-fig3`
4         EMNIST letters                         bias-free     :ref:`ch-fig4`
========  =====================================  ============  ==========================

This module holds (i) the configuration of each figure at two scales: ``"paper"`` (Section 5: 12,000
epochs, width 2048, batch size 128, Adam at 1e-4; the decays and the schedule are the documented defaults
of ``nclib.train.DEFAULTS``) and ``"cpu-scale"`` (class counts divided by 10, width 256, 1,000 epochs,
Adam at 1e-3: small enough for a 2-core CPU, **not** the paper's settings); (ii) the papermill parameters of
the training notebook (:ref:`ch-train`) for a figure, as a function and as a command line
(``python -m nclib.figures params 1 --scale paper``); (iii) readers of the committed run folders
(``results/figures/<scale>/fig<k>/fig<k>-L<L>/``), the checks that a committed run is the figure's
configuration and complete, the theory a run can be compared with (the surviving modes and the global
minimum of Theorems 4.1-4.3 at the run's own lambdas, b* = n/N), and the comparison tables of the figure
chapters and of :ref:`ch-figures-summary`; (iv) everything a figure chapter shows but its plots
(:func:`figure_chapter`: the checked runs, the values its prose glues, its tables) and the properties of the
runs it asserts (:func:`check_runs`), so that the four chapters differ only in their narration.

EMNIST letters cannot be downloaded here; Figures 2 and 4 run on the ``letters-synthetic`` stand-in with
the same class-count profile (:data:`nclib.data.LETTERS_SYNTHETIC_LABEL`), and every label says so.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import re
import sys
from typing import Mapping

import numpy as np

from . import ROOT, _checks, data, ufm
from .runs import atomic_write_text, load_class_accuracy, load_run

#: The folder holding the committed figure runs, one subfolder per scale.
RESULTS = ROOT / "results" / "figures"
#: The folder of the committed executed notebooks (``<scale>/fig<k>.run.ipynb``).
NOTEBOOKS = ROOT / "book" / "figures"
#: The head depths of every figure (Section 5).
L_VALUES = (1, 3, 6)


@dataclasses.dataclass(frozen=True)
class Figure:
    """One of the paper's Figures 1-4: which data, which bias case, what the paper's caption says."""

    number: int
    dataset: str  # an nclib.data dataset name
    preset: str  # the class-count profile (nclib.imbalance.PROFILES)
    bias: bool
    paper_data: str  # the data the paper used
    caption: str  # the paper's caption, de-OCR'd


FIGURES: dict[int, Figure] = {
    1: Figure(1, "cifar10", "cifar10", True, "CIFAR-10",
              "Bias Case: The performance of the NC metrics and training accuracy versus epoch with a 6-layer "
              "MLP backbone on an imbalanced subset of CIFAR10 for L-extended unconstrained feature model with "
              "L = 1, 3, 6."),
    # "Base case" as printed: a typo for "Bias case" (Section 5 makes Figures 1-2 the bias case; erratum M5)
    2: Figure(2, "letters-synthetic", "emnist-letters", True, "EMNIST letters",
              "Base case: The performance of the NC metrics and training accuracy versus epoch with a 6-layer "
              "MLP backbone on an imbalanced subset of EMNIST for L-extended unconstrained feature model with "
              "L = 1, 3, 6."),
    3: Figure(3, "cifar10", "cifar10", False, "CIFAR-10",
              "Bias-free case: The performance of the NC metrics and training accuracy versus epoch with a "
              "6-layer MLP backbone on an imbalanced subset of CIFAR10 for L-extended unconstrained feature "
              "model with L = 1, 3, 6."),
    4: Figure(4, "letters-synthetic", "emnist-letters", False, "EMNIST letters",
              "Bias-free case: The performance of the NC metrics and training accuracy versus epoch with a "
              "6-layer MLP backbone on an imbalanced subset of EMNIST for L-extended unconstrained feature "
              "model with L = 1, 3, 6."),
}

#: What each scale changes. ``divisor`` divides the paper's class counts; the rest are notebook parameters.
#: "paper": Section 5 (12,000 epochs, width 2048, batch size 128, Adam lr 1e-4) with the documented defaults
#: of the closest public code for what the paper leaves out (decays 1e-5, lr x0.1 at epoch 6000, metrics every
#: 100 epochs). "cpu-scale": what two shared CPU cores can do in minutes; NOT the paper's settings.
SCALES: dict[str, dict] = {
    "paper": dict(divisor=1, width=2048, depth=6, epochs=12000, batch_size=128, lr=1e-4, lr_milestones=[6000],
                  lr_gamma=0.1, lam_W="reference", lam_H="reference", metric_every=100),
    "cpu-scale": dict(divisor=10, width=256, depth=6, epochs=1000, batch_size=128, lr=3e-4, lr_milestones=[500],
                      lr_gamma=0.1, lam_W="reference", lam_H="reference", metric_every=20),
}
#: The results folder of each scale's runs (GPU runs at the paper's settings go to "gpu").
SCALE_FOLDERS = {"paper": "gpu", "cpu-scale": "cpu-scale"}
#: Human-readable scale labels, used in legends, tables and prose.
SCALE_LABELS = {"gpu": "GPU runs at the paper's settings", "cpu-scale": "CPU-scale runs (not the paper's settings)"}

HISTORY_KEYS = ("nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3", "train_acc")


def _figure(fig) -> Figure:
    if isinstance(fig, Figure):
        return fig
    if isinstance(fig, (bool, np.bool_)) or not isinstance(fig, (int, np.integer)) or int(fig) not in FIGURES:
        raise ValueError(f"fig must be one of {sorted(FIGURES)} (the paper's Figures 1-4), got {fig!r}")
    return FIGURES[int(fig)]


def _scale(scale: str) -> dict:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    return SCALES[scale]


def figure_counts(fig, scale: str = "paper") -> list[int]:
    """The class counts of a figure's run, class k getting entry k (Section 5's profiles).

    The paper's profile (``nclib.imbalance.PROFILES``) in the reference code's class order
    (:func:`nclib.data.preset_counts`), divided by the scale's divisor (``"cpu-scale"``: 10).
    Used by :func:`figure_parameters` and the chapters :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    f, s = _figure(fig), _scale(scale)
    n = data.preset_counts(f.preset, "reference")
    if np.any(n % s["divisor"]):
        raise ValueError(f"scale {scale!r} divides the counts by {s['divisor']}, which does not divide {n.tolist()}")
    return (n // s["divisor"]).astype(int).tolist()


def figure_parameters(fig, scale: str = "paper", **overrides) -> dict:
    """The papermill parameters of the training notebook (:ref:`ch-train`) that run one figure.

    ``scale``: ``"paper"`` (Section 5) or ``"cpu-scale"`` (:data:`SCALES`). ``overrides`` replace any parameter (e.g.
    ``epochs`` when a GPU budget cannot fit 12,000, ``data_path``, ``device``, or ``max_train_s`` and ``resume`` to
    make a run in several calls); an unknown name raises ValueError. The run folders are ``<out_dir>/fig<k>-L<L>``.
    Used by ``scripts/gpu_figures.sh``, the CPU-scale runs of ``results/README.md`` and the figure chapters.
    """
    f, s = _figure(fig), _scale(scale)
    p = dict(smoke=False, dataset=f.dataset, data_path=None, counts=figure_counts(f, scale),
             class_order="reference", bias=f.bias, L_values=list(L_VALUES), epochs=s["epochs"],
             batch_size=s["batch_size"], lam_W=s["lam_W"], lam_H=s["lam_H"], lam_backbone=0.0, lr=s["lr"],
             lr_milestones=list(s["lr_milestones"]), lr_gamma=s["lr_gamma"], width=s["width"], depth=s["depth"],
             init="reference", seed=0, device="auto", precision="fp32", cuda_graph="auto",
             metric_every=s["metric_every"], out_dir=str(RESULTS / SCALE_FOLDERS[scale] / f"fig{f.number}"),
             run_tag=f"fig{f.number}", progress=True, max_train_s=None, resume=False)
    unknown = set(overrides) - set(p)
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {sorted(unknown)}; known: {sorted(p)}")
    p.update(overrides)
    if "epochs" in overrides:
        p["epochs"] = _checks.positive_int(p["epochs"], "epochs")
    return p



def train_kwargs(params: Mapping, L: int) -> dict:
    """The ``nclib.train.run`` keyword arguments of one run (head depth ``L``) of a figure's notebook parameters.

    The same mapping as the training notebook (:ref:`ch-train`): ``L_values`` gives one run per L named
    ``<run_tag>-L<L>``; ``smoke`` must be False. Used by ``tests/test_figures.py`` to make run folders
    without a notebook.
    """
    if params.get("smoke"):
        raise ValueError("params['smoke'] must be False: a smoke run replaces the figure's data and network")
    L = _checks.positive_int(L, "L")
    skip = {"smoke", "L_values", "run_tag"}
    kw = {k: v for k, v in params.items() if k not in skip}
    return dict(kw, L=L, run_name=f"{params['run_tag']}-L{L}", overwrite=True)


# --------------------------------------------------------------------------------------------- reading runs

@dataclasses.dataclass
class Run:
    """One committed run folder: ``params.json``, ``history.csv`` (as arrays) and ``provenance.json``
    (the files :func:`nclib.train.run` writes). Used by :ref:`ch-fig1` to :ref:`ch-fig4`."""

    path: pathlib.Path
    params: dict
    history: dict
    provenance: dict

    @property
    def L(self) -> int:
        return int(self.params["L"])


def preferred_scale(fig, root=None) -> str:
    """``"gpu"`` when ``results/figures/gpu/fig<k>/`` holds the three finished runs of Figure ``fig``, else
    ``"cpu-scale"``.

    Each figure chapter sets ``SCALE = nclib.figures.preferred_scale(FIG)``: committing a figure's GPU runs
    switches its chapter to them with no edit (one line to change to force a scale). Runs whose provenance
    does not say ``finished`` (a run stopped by the time budget) do not count. Used by :ref:`ch-fig1` to
    :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """
    f = _figure(fig)
    paths = run_folders(f, "gpu", root)
    finished = [p for p in paths if (p / "provenance.json").is_file()
                and json.loads((p / "provenance.json").read_text()).get("status") == "finished"]
    return "gpu" if len(finished) == len(L_VALUES) else "cpu-scale"


def run_folders(fig, scale_folder: str = "cpu-scale", root=None) -> list[pathlib.Path]:
    """The run folders of one figure (``<root>/<scale_folder>/fig<k>/fig<k>-L*``), sorted by L.

    Used by :func:`load_figure` and :func:`preferred_scale` (:ref:`ch-fig1` to :ref:`ch-fig4`).
    """
    f = _figure(fig)
    root = RESULTS if root is None else pathlib.Path(root)
    base = root / scale_folder / f"fig{f.number}"
    found = [p for p in base.glob(f"fig{f.number}-L*") if (p / "params.json").is_file()]
    return sorted(found, key=lambda p: int(json.loads((p / "params.json").read_text())["L"]))


def load_figure(fig, scale_folder: str = "cpu-scale", root=None) -> dict[int, Run]:
    """{L: Run} of one figure's committed runs (read with ``nclib.runs.load_run``).

    Raises ValueError when the folder holds no runs or two runs with the same L. Used by the figure
    chapters :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """

    f = _figure(fig)
    paths = run_folders(f, scale_folder, root)
    if not paths:
        where = (RESULTS if root is None else pathlib.Path(root)) / scale_folder / f"fig{f.number}"
        raise ValueError(f"scale_folder {scale_folder!r} has no runs of Figure {f.number} under {str(where)!r}")
    out: dict[int, Run] = {}
    for path in paths:
        params, history, prov = load_run(path)
        run = Run(path, params, history, prov)
        if run.L in out:
            raise ValueError(f"Figure {f.number} has two runs with L={run.L}: {out[run.L].path} and {path}")
        out[run.L] = run
    return out


def as_plot_runs(runs: Mapping[int, Run]) -> dict:
    """{L: (params, history)}, the form ``nclib.plotting.collapse_panels`` draws (:ref:`ch-fig1` to :ref:`ch-fig4`)."""
    return {L: (r.params, r.history) for L, r in sorted(runs.items())}



def run_counts(params: Mapping) -> np.ndarray:
    """The class counts n of a run (class k has n[k] samples) from its ``params.json``.

    ``counts`` is a list, a preset name (:func:`nclib.data.preset_counts` with the run's ``class_order``) or
    None (the dataset's own preset), resolved by :func:`nclib.data.resolve_counts` exactly as
    :func:`nclib.data.load` resolved them for the run. The n of Definition 4.1 that :func:`run_theory` feeds
    to Theorems 4.1-4.3; used by :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    return data.resolve_counts(params.get("dataset"), params.get("counts"), params.get("class_order", "reference"))[0]


# --------------------------------------------------------------------------------------------- theory

@dataclasses.dataclass(frozen=True)
class RunTheory:
    """What Theorems 4.1-4.3 predict for a run's own problem (counts n, lambdas, L, bias).

    ``kappa``: singular values of M (Y-bar with a bias, D = diag(sqrt n) without); ``s_product``: the
    singular values of P = W_L ... W_1 at every global minimizer (0 = a collapsed mode); ``alive``: the
    number of nonzero modes; ``minimum``: the global minimum of (4.3) over free features (a lower bound of
    the run's objective whenever every hidden width is >= K); ``b_star``: n/N (bias case, Theorems 4.2/4.3)
    or None; ``minimizer_accuracy``: the training accuracy of every global minimizer
    (:func:`nclib.ufm.minimizer_accuracy`).
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

    @property
    def N(self) -> int:
        return int(self.n.sum())

    @property
    def K(self) -> int:
        return int(self.n.size)


def run_theory(params: Mapping) -> RunTheory:
    """The predictions of Theorems 4.1-4.3 (``nclib.ufm.structure`` and ``minimum_value``) at a run's settings.

    Uses the run's counts (:func:`run_counts`), ``lam_W`` (one number or L), ``lam_H``, ``L`` and ``bias``
    from its ``params.json``. Raises ValueError when a decay is 0 (the theorems then have no minimizer).
    Used by the figure chapters :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    n = run_counts(params)
    L = _checks.positive_int(int(params["L"]), "L")
    bias = params.get("bias")
    if not isinstance(bias, bool):
        raise ValueError(f"params['bias'] must be True or False, got {bias!r}")
    lam_W = params["lam_W"]
    lam_H = _checks.positive_float(params["lam_H"], "lam_H")
    _checks.layer_lambdas(lam_W, L, "lam_W", positive=True)
    st = ufm.structure(n, lam_W, lam_H, L, bias)
    alive = int(np.count_nonzero(st.s_product > 0))
    minimum = ufm.minimum_value(n, lam_W, lam_H, L, bias)
    b_star = n / n.sum() if bias else None
    return RunTheory(n=n, L=L, bias=bias, lam_W=lam_W, lam_H=lam_H, kappa=st.kappa, s_product=st.s_product,
                     alive=alive, minimum=float(minimum), b_star=b_star,
                     minimizer_accuracy=ufm.minimizer_accuracy(n, lam_W, lam_H, L, bias))


# --------------------------------------------------------------------------------------------- checks

#: The parameters a committed run must share with its figure's configuration (``epochs`` may be lower on a
#: GPU whose time budget cannot fit the paper's 12,000; it is reported, never hidden).
CONFIG_KEYS = ("dataset", "bias", "width", "depth", "batch_size", "lr", "lr_milestones", "lr_gamma", "lam_W",
               "lam_H", "lam_backbone", "init", "seed", "class_order")


def check_figure(runs: Mapping[int, Run], fig, scale: str) -> dict:
    """Check that committed runs are the figure's configuration and complete; raise ValueError if not.

    For every run: its parameters equal :func:`figure_parameters` (``fig``, ``scale``) on
    :data:`CONFIG_KEYS` and the class counts, its ``epochs`` is at most the scale's and at least one
    metric interval, its history holds epoch 0, every ``metric_every``-th epoch and the last one with
    finite metrics, and its provenance says ``finished``. The runs must be exactly L = 1, 3, 6.
    Returns ``{"epochs": {L: epochs}, "complete": True}``. Used by :ref:`ch-fig1` to :ref:`ch-fig4` and
    :ref:`ch-figures-summary`.
    """
    f = _figure(fig)
    cfg = figure_parameters(f, scale)
    problems = []
    if sorted(runs) != list(L_VALUES):
        problems.append(f"runs have L = {sorted(runs)}, expected {list(L_VALUES)}")
    epochs = {}
    for L, run in sorted(runs.items()):
        p = run.params
        for k in CONFIG_KEYS:
            want, got = cfg[k], p.get(k)
            if k in ("lam_W", "lam_H") and want == "reference":  # K x 1e-5, as nclib.train resolves it
                want = ufm.reference_decay(len(cfg["counts"]))
            if isinstance(want, float) or isinstance(got, float):
                same = got is not None and want is not None and math.isclose(float(got), float(want), rel_tol=1e-12)
            else:
                same = got == want
            if not same:
                problems.append(f"L={L}: {k} = {got!r}, the figure's configuration has {want!r}")
        if run_counts(p).tolist() != list(cfg["counts"]):
            problems.append(f"L={L}: counts {run_counts(p).tolist()} differ from {cfg['counts']}")
        E, m = int(p["epochs"]), int(p["metric_every"])
        epochs[L] = E
        if E > cfg["epochs"] or E < m:
            problems.append(f"L={L}: epochs = {E}, expected between {m} and {cfg['epochs']}")
        expected = sorted({0, *range(m, E + 1, m), E})
        got_epochs = run.history["epoch"].tolist()
        if got_epochs != expected:
            problems.append(f"L={L}: history holds {len(got_epochs)} metric epochs "
                            f"({got_epochs[:2]}...{got_epochs[-1:]}), expected {len(expected)} up to {E}")
        for k in ("objective", *HISTORY_KEYS):
            if not np.all(np.isfinite(run.history[k])):
                problems.append(f"L={L}: history column {k} is not finite everywhere")
        if run.provenance.get("status") != "finished":
            problems.append(f"L={L}: provenance status is {run.provenance.get('status')!r}, not 'finished'")
    if problems:
        raise ValueError(f"Figure {f.number} ({scale}) runs do not match its configuration: " + "; ".join(problems))
    return {"epochs": epochs, "complete": True}


# --------------------------------------------------------------------------------------------- tables

def first_epoch(history: Mapping, key: str, threshold: float, above: bool = True) -> int | None:
    """The first recorded epoch at which ``history[key] >= threshold`` (``above``) or ``<= threshold``.

    None when it never happens. Resolution: the run's ``metric_every``. Used for "the first epoch at which
    the training accuracy reaches 100 %" in :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    if key not in history:
        raise ValueError(f"key {key!r} is not a history column; columns: {sorted(history)}")
    y = np.asarray(history[key], dtype=float)
    hit = np.flatnonzero(y >= threshold) if above else np.flatnonzero(y <= threshold)
    return int(history["epoch"][hit[0]]) if hit.size else None


def settled_epoch(history: Mapping, key: str, threshold: float, above: bool = True) -> int | None:
    """The first recorded epoch from which ``history[key] >= threshold`` (``above``) or ``<= threshold`` holds at
    every later recorded epoch, up to the last one.

    None when the last recorded value misses the threshold. Equal to :func:`first_epoch` unless the value
    crosses back after first reaching the threshold (a training spike). Used for "the epoch from which the
    training accuracy stays at 100 % to the end" in :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    if key not in history:
        raise ValueError(f"key {key!r} is not a history column; columns: {sorted(history)}")
    y = np.asarray(history[key], dtype=float)
    miss = np.flatnonzero(~(y >= threshold)) if above else np.flatnonzero(~(y <= threshold))
    if y.size == 0 or (miss.size and miss[-1] == y.size - 1):
        return None
    return int(history["epoch"][miss[-1] + 1 if miss.size else 0])


#: A rise of the objective (4.3) by more than this factor between two consecutive recorded epochs counts as a
#: training spike in :ref:`ch-fig1` to :ref:`ch-fig4`: within one metric interval the objective rose by more
#: than its whole distance to the global minimum (which is > 0). A choice; the chapters glue the size of the
#: other rises next to it.
SPIKE_FACTOR = 2.0

#: The history columns whose values :func:`largest_rise` reports before, at and after a rise.
RISE_KEYS = ("objective", "nc1", "nc3", "train_acc")


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
    if key not in history:
        raise ValueError(f"key {key!r} is not a history column; columns: {sorted(history)}")
    missing = [k for k in ("epoch", "lr", *RISE_KEYS) if k not in history]
    if missing:
        raise ValueError(f"history lacks the column(s) {missing}")
    y = np.asarray(history[key], dtype=float)
    if y.size < 2 or not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError(f"history[{key!r}] must hold at least two finite positive values, got {y.tolist()[:5]}...")
    ratio = y[1:] / y[:-1]
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
    :ref:`ch-figures-summary`), sorted by L."""
    threshold = _checks.positive_float(threshold, "threshold")
    out = {}
    for L, run in sorted(runs.items()):
        rise = largest_rise(run.history)
        if rise is not None and rise["factor"] > threshold:
            out[L] = rise
    return out


def stalls(runs: Mapping[int, Run]) -> dict[int, dict]:
    """{L: what the history says} of the runs whose training accuracy ends below 100 % (sorted by L).

    For each such run: ``n`` (its class counts), ``since`` (the first recorded epoch from which the accuracy is below 100 % at every recorded
    epoch to the end), ``end`` (the last recorded epoch), ``train_acc`` and ``misclassified`` (the final accuracy and
    the training samples misclassified then, (1 - accuracy) x N), ``best_acc`` (the highest accuracy recorded from
    ``since`` on), ``before`` (None when the run never reached 100 %; else the recorded epoch just before ``since``,
    where it was at 100 %, with ``objective_before`` and ``objective_since``, the objective there and at ``since``),
    ``half`` (the first recorded epoch of the run's second half) and ``objective_change`` (the final objective over
    the objective there, minus 1), ``acc100_epoch`` (:func:`first_epoch` at 100 %), ``objective_ratio`` (final
    objective over the global minimum of (4.3)), ``nc1`` and ``nc3`` (final), ``nc1_drop`` (NC1 at epoch 0 over the
    final NC1) and ``minimizer_accuracy`` (the training accuracy of every global minimizer at the run's decays,
    :func:`run_theory`), and ``classes``: None when the run has no ``class_accuracy.csv`` (runs made before it was
    recorded), else the classes below 100 % at the last recorded epoch as ``(class index, its sample count, its
    accuracy)``, whose misclassified samples must add up to ``misclassified`` (ValueError otherwise). A run whose
    accuracy stays below ``minimizer_accuracy`` has stalled away from the global minimizers. Used by :ref:`ch-fig1` to
    :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """
    out = {}
    for L, run in sorted(runs.items()):
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
        out[L] = dict(n=th.n, classes=classes, since=int(e[i]), end=int(e[-1]), train_acc=float(acc[-1]), half=int(e[half]),
                      objective_change=float(obj[-1] / obj[half] - 1.0),
                      misclassified=misclassified, best_acc=float(acc[i:].max()),
                      before=before, objective_before=float(obj[i - 1]) if before is not None else None,
                      objective_since=float(obj[i]), acc100_epoch=first_epoch(h, "train_acc", 1.0),
                      objective_ratio=float(obj[-1] / th.minimum), nc1=float(h["nc1"][-1]),
                      nc3=float(h["nc3"][-1]), nc1_drop=float(h["nc1"][0] / h["nc1"][-1]),
                      minimizer_accuracy=th.minimizer_accuracy)
    return out


#: The final values whose L-orderings the figure chapters state (:func:`order_by` keys of :func:`final_rows`).
ORDER_KEYS = ("nc1", "nc3", "gap")


def orders_without_spikes(rows: list[dict], spiked: Mapping[int, dict]) -> dict[str, dict]:
    """Which L-orderings of the final values (:data:`ORDER_KEYS`) a training spike decides.

    For every run in ``spiked`` ({L: :func:`largest_rise`}, from :func:`spikes`) whose final NC1, NC3 or
    objective is above its value before the rise (``before``, at ``start_epoch``), that final value is
    replaced by the value before the rise (for ``gap``: the objective then minus the global minimum); where
    this changes :func:`order_by`, the result holds ``{key: {"order": final order, "without": the order
    with the replaced values, "runs": {L: (value before the rise, final value)}}}`` for the runs replaced.
    Empty when no ordering depends on a spike. Used by :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    by_L = {r["L"]: r for r in rows}
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

    Keys: ``L``, ``epochs``, the final ``nc1`` .. ``nc3`` and ``train_acc``, ``acc100_epoch`` (first
    recorded epoch with 100 % training accuracy, None if never), ``acc100_stays`` (the recorded epoch from
    which it stays at 100 % to the end, :func:`settled_epoch`, None if the final accuracy is below 1),
    ``rise`` (:func:`largest_rise` of the objective, None if it never rises), ``nc1_drop`` (NC1 at epoch 0 over the
    final NC1), ``bias_error`` (final ||b - n/N||, NaN bias-free), ``global_mean_norm``, ``objective``,
    ``minimum`` and ``gap`` (objective - global minimum of (4.3), :func:`run_theory`), ``alive`` (modes
    that survive at the run's lambdas), ``wall_time_s``, ``device`` (the provenance's device name),
    ``steps_per_s`` and ``trained_with`` (the runs trained side by side with it by ``nclib.train.run_many``,
    which share its wall time). Used by :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """
    rows = []
    for L, run in sorted(runs.items()):
        h, th = run.history, run_theory(run.params)
        rows.append(dict(
            L=L, epochs=int(h["epoch"][-1]),
            **{k: float(h[k][-1]) for k in HISTORY_KEYS},
            acc100_epoch=first_epoch(h, "train_acc", 1.0), acc100_stays=settled_epoch(h, "train_acc", 1.0),
            rise=largest_rise(h),
            nc1_drop=float(h["nc1"][0] / h["nc1"][-1]),
            bias_error=float(h["bias_error"][-1]), bias_error_0=float(h["bias_error"][0]),
            global_mean_norm=float(h["global_mean_norm"][-1]),
            objective=float(h["objective"][-1]), minimum=th.minimum, gap=float(h["objective"][-1] - th.minimum),
            alive=th.alive, K=th.K,
            wall_time_s=float(run.provenance.get("wall_time_s", float("nan"))),
            device=str(run.provenance.get("device_name", run.provenance.get("device", "?"))),
            steps_per_s=float(run.provenance.get("steps_per_s") or float("nan")),
            trained_with=list(run.provenance.get("trained_with", []))))
    return rows


def wall_time_s(runs: Mapping[int, Run]) -> float:
    """The wall time the runs took together, in seconds: runs trained side by side (``nclib.train.run_many``,
    recorded in the provenance as ``trained_with``) ran at the same time and count once, with the longest of
    their wall times; runs trained alone add up. Used by :ref:`ch-figures-summary`."""
    by_name = {run.params["run_name"]: run for run in runs.values()}
    total, counted = 0.0, set()
    for name, run in sorted(by_name.items()):
        if name in counted:
            continue
        group = {name} | ({n for n in run.provenance.get("trained_with", []) if n in by_name})
        counted |= group
        total += max(float(by_name[n].provenance["wall_time_s"]) for n in group)
    return total


def order_by(rows: list[dict], key: str) -> list[int]:
    """The head depths L of ``rows`` sorted by ``key`` (smallest first; None/NaN last).

    "How L changes the curves" in the comparison sections of :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    def value(r):
        v = r[key]
        return (1, 0.0) if v is None or (isinstance(v, float) and math.isnan(v)) else (0, float(v))
    if rows and key not in rows[0]:
        raise ValueError(f"key {key!r} is not a column of rows; columns: {sorted(rows[0])}")
    return [r["L"] for r in sorted(rows, key=value)]


# --------------------------------------------------------------------------------------------- figures

def figure_legend(runs: Mapping[int, Run], scale_folder: str) -> str:
    """The legend title of a figure: the data (stand-in named as such), the bias case, the scale, the epochs.

    The epoch count is on every figure, as the issue asks when a GPU budget cuts the paper's 12,000
    (:ref:`ch-fig1` to :ref:`ch-fig4`).
    """
    from . import plotting

    first = next(iter(runs.values())).params
    epochs = sorted({int(r.params["epochs"]) for r in runs.values()})
    ep = "/".join(f"{e:,}" for e in epochs)
    full = SCALES["paper"]["epochs"]
    if scale_folder == "cpu-scale":
        scale = f"CPU-scale, not the paper's settings, {ep} epochs"
    elif max(epochs) < full:
        scale = f"GPU, paper's settings but {ep} of {full:,} epochs"
    else:
        scale = f"GPU, paper's settings, {ep} epochs"
    return f"{plotting.dataset_label(first)}, {'with bias' if first.get('bias', True) else 'bias-free'}\n{scale}"


def draw_panels(runs: Mapping[int, Run], scale_folder: str = "cpu-scale"):
    """The six paper-style panels of Figures 1-4 from committed runs, with the theory's targets marked.

    Draws with ``nclib.plotting.collapse_panels``; on each NC panel a note says its target is 0 (the
    corrected metrics of :ref:`ch-metrics` vanish exactly at every global minimizer of Theorems 4.1-4.3),
    the accuracy panel marks 100 %, and a dotted vertical line on every panel marks each step decay of the
    learning rate (``lr_milestones``, shared by the runs). Returns the Figure. Used by :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    from . import plotting

    if not runs:
        raise ValueError("runs must hold at least one run")
    fig = plotting.collapse_panels(as_plot_runs(runs), legend_title=figure_legend(runs, scale_folder))
    axes = fig.axes[:6]
    for ax in axes[:5]:
        ax.text(0.02, 0.02, "target: 0 (Thm 4.3)", transform=ax.transAxes, ha="left", va="bottom",
                fontsize="x-small", color="0.35")
    axes[5].axhline(1.0, color="0.5", ls="--", lw=0.8)
    last = max(int(r.history["epoch"][-1]) for r in runs.values())
    milestones = sorted({int(m) for r in runs.values() for m in r.params.get("lr_milestones") or [] if m < last})
    for ax in axes:
        for m in milestones:
            ax.axvline(m, color="0.5", ls=":", lw=0.8)
    return fig


def draw_theory(runs: Mapping[int, Run]):
    """Three panels comparing a figure's runs with the theory at their own lambdas.

    (a) the objective (4.3) minus its global minimum over free features (:func:`run_theory`), which
    Theorems 4.1-4.3 say is >= 0 and 0 only at the minimizer; (b) with a bias, ||b - n/N|| and the global
    feature-mean norm, both 0 at every minimizer (b* = n/N, eq. (B.5)-(B.7)); bias-free, the global
    feature-mean norm (no prediction); (c) the predicted singular values of P = W_L ... W_1 at the
    minimizer, one series per L (0 = a collapsed mode). Returns the Figure. Used by :ref:`ch-fig1` to
    :ref:`ch-fig4`.
    """
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("runs must hold at least one run")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bias = bool(next(iter(runs.values())).params["bias"])
    for (L, run), c in zip(sorted(runs.items()), colors):
        h, th = run.history, run_theory(run.params)
        gap = np.asarray(h["objective"]) - th.minimum
        keep = gap > 0
        axes[0].plot(h["epoch"][keep], gap[keep], color=c, label=f"L = {L}")
        if bias:
            axes[1].plot(h["epoch"], h["bias_error"], color=c, label=f"$\\|b - n/N\\|$, L = {L}")
        axes[1].plot(h["epoch"], h["global_mean_norm"], color=c, ls=":", label=f"$\\|h_G\\|$, L = {L}")
        k = np.arange(1, th.K + 1)
        axes[2].plot(k, th.s_product, color=c, marker="o", ms=3, lw=0.8, label=f"L = {L} ({th.alive} of {th.K} alive)")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("objective (4.3) $-$ global minimum")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("distance to the minimizer's value (target 0)" if bias else "global feature-mean norm")
    axes[2].set_xlabel("mode i (singular values of M, descending)")
    axes[2].set_ylabel("predicted singular value of $W_L\\cdots W_1$")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="x-small")
    return fig



# --------------------------------------------------------------------------------------------- the figure chapters

def config_scale(scale_folder: str) -> str:
    """The configuration (:data:`SCALES`) whose runs a results folder holds: ``"gpu"`` -> ``"paper"``,
    ``"cpu-scale"`` -> ``"cpu-scale"`` (the inverse of :data:`SCALE_FOLDERS`).

    The scale that :func:`check_figure` checks a figure's runs against, in :ref:`ch-fig1` to :ref:`ch-fig4`
    and :ref:`ch-figures-summary`.
    """
    inverse = {folder: scale for scale, folder in SCALE_FOLDERS.items()}
    if scale_folder not in inverse:
        raise ValueError(f"scale_folder must be one of {sorted(inverse)}, got {scale_folder!r}")
    return inverse[scale_folder]


@dataclasses.dataclass
class FigureChapter:
    """Everything one figure chapter shows, from :func:`figure_chapter`.

    ``runs`` ({L: Run}, checked by :func:`check_figure`, whose result is ``check``), ``rows``
    (:func:`final_rows`), ``theory`` ({L: :func:`run_theory`}), ``glue`` (the numbers and phrases of the
    prose, formatted, keyed without the ``fig<k>-`` prefix: the chapter glues ``glue[key]`` as
    ``fig<k>-<key>``) and ``tables`` (pandas DataFrames indexed by L, or by setting for ``"settings"``:
    ``"provenance"``, ``"theory"``, ``"final"``, ``"settings"``).
    """

    figure: Figure
    scale_folder: str
    config_scale: str
    runs: dict
    check: dict
    rows: list
    theory: dict
    glue: dict
    tables: dict


def _comma(values) -> str:
    return ", ".join(str(v) for v in values)


def rise_cell(rise: dict | None) -> str:
    """A table cell for a :func:`largest_rise`: ``"x21.6 (480 to 500)"``, or ``"none"`` (the tables of
    :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-figures-summary`)."""
    return "none" if rise is None else f"x{rise['factor']:.3g} ({rise['prev_epoch']} to {rise['epoch']})"



def figure_glue(fig, scale_folder: str, runs: Mapping[int, Run], check: Mapping, rows: list[dict],
                theory: Mapping[int, RunTheory]) -> dict:
    """The values that the prose of a figure chapter quotes, formatted as the chapter prints them.

    Keys (the chapter glues them as ``fig<k>-<key>``): the paper's caption and settings (``caption``,
    ``paper-counts``, ``paper-epochs``, ``paper-width``, ``paper-batch``, ``paper-lr``); the runs' scale and settings
    (``scale``, ``data``, ``epochs``, ``N``, ``counts``, ``counts-note``, ``width``, ``lr``, ``gamma``, ``batch``,
    ``decay``, ``milestone``, ``metric-every``), what the scale means (``scale-note``, ``differs``); against Theorem
    4.3 (``alive``, ``K`` (an int), ``gap-min``, ``gap-max``, ``mean-end``, ``fit-sentence``, with a bias also
    ``bstar``, ``bias0``, ``bias-end-min``, ``bias-end-max``); the comparison (``acc-epochs``: first recorded epoch at
    100 % training accuracy per L, ``acc-stays``: the epoch from which it stays at 100 % to the end, "never" if it
    ends below; ``acc-drops``: a sentence on the runs whose accuracy falls again after reaching 100 %; ``stall``: the
    runs that end below 100 %, :func:`stalls`; ``collapse-claim``, ``nc1-order``, ``nc3-order``,
    ``gap-order``, ``gap-trend``); where the runs' decays come from (``decay-reading``, :func:`decay_reading`); the
    training spikes (:func:`spikes`: ``spike-threshold``, ``spike-noise``, ``spike-runs``, ``spike-orders``,
    sentences).
    ``runs``, ``check``, ``rows`` and ``theory`` are those of :func:`figure_chapter`. Used by
    :ref:`ch-fig1` to :ref:`ch-fig4` through :func:`figure_chapter`.
    """
    from . import plotting

    f = _figure(fig)
    cfg = config_scale(scale_folder)
    first = runs[min(runs)]
    p = first.params
    n = run_counts(p)
    paper = SCALES["paper"]
    paper_n = figure_counts(f, "paper")
    epochs = max(check["epochs"].values())
    g: dict = {
        "caption": f.caption,
        "paper-counts": _comma(sorted(paper_n, reverse=True)),
        "paper-epochs": f"{paper['epochs']:,}",
        "paper-width": f"{paper['width']:,}",
        "paper-batch": str(paper["batch_size"]),
        "paper-lr": f"{paper['lr']:g}",
        "scale": scale_label(scale_folder, max(check["epochs"].values())),
        "data": plotting.dataset_label(p),
        "epochs": f"{epochs:,}",
        "N": f"{int(n.sum()):,}",
        "counts": _comma(sorted(n.tolist(), reverse=True)),
        "width": f"{p['width']:,}",
        "lr": f"{p['lr']:g}",
        "gamma": f"{p['lr_gamma']:g}",
        "batch": str(p["batch_size"]),
        "decay": f"{p['lam_W']:g}",
        "milestone": _comma(p["lr_milestones"]),
        "schedule": schedule_phrase(p, max(check["epochs"].values())),
    }
    divisor = SCALES[cfg]["divisor"]
    g["counts-note"] = "the paper's counts" if divisor == 1 else f"the paper's counts divided by {divisor}"
    full_epochs = all(e == paper["epochs"] for e in check["epochs"].values())
    on = " on the letters-synthetic stand-in for EMNIST letters" if f.dataset == "letters-synthetic" else ""
    if scale_folder == "cpu-scale":
        note = ("Until GPU runs at the paper's settings are committed, every number below describes these CPU-scale "
                "runs, which check the pipeline and the qualitative behaviour and do not reproduce the paper's "
                "figure.")
        differs = ("The runs are CPU-scale: a fraction of the data, a narrower network, far fewer and larger steps, "
                   f"because two shared CPU cores cannot train the paper's network for {paper['epochs']:,} epochs.")
    elif full_epochs:
        note = f"These runs use the paper's settings{on}, all {paper['epochs']:,} epochs included."
        differs = "The runs use the paper's stated settings."
    else:
        note = (f"These runs use the paper's settings{on} except the epoch count: {epochs:,} of the paper's "
                f"{paper['epochs']:,} epochs, what the device time of one GPU session (15 minutes, shared between "
                "the figures made in it) gave this figure (results/README.md).")
        differs = (f"The runs stop at {epochs:,} of the paper's {paper['epochs']:,} epochs: one GPU session's device "
                   "time, shared between the figures made in it, allowed no more.")
    if scale_folder == "gpu":
        precision = _precisions(runs)
        if precision != "fp32":
            differs += (f" The matrix products of training ran in {precision} (TF32: fp32 data, a 10-bit "
                        "mantissa inside the products), a precision the paper does not state; the metrics come from "
                        "a full-fp32 forward pass, computed in float64.")
        if any(str(r.params.get("data_path", "")).endswith("_slice.npz") for r in runs.values()):
            differs += (" The images were read from a slice of cifar10_subset.npz holding exactly the rows "
                        "these runs use: the training data, and so the data checksum in each run's provenance, are "
                        "those of a run on the full file.")
    g["scale-note"] = note
    g["differs"] = differs

    t_first = theory[min(theory)]
    g["alive"] = " or ".join(map(str, sorted({t.alive for t in theory.values()})))
    g["K"] = t_first.K
    g["gap-min"] = f"{min(r['gap'] / r['minimum'] for r in rows):.2g}"
    g["gap-max"] = f"{max(r['gap'] / r['minimum'] for r in rows):.2g}"
    g["mean-end"] = f"{max(r['global_mean_norm'] for r in rows):.3f}"
    if t_first.b_star is not None:
        g["bstar"] = f"{np.linalg.norm(t_first.b_star):.3f}"
        g["bias0"] = f"{min(r['bias_error_0'] for r in rows):.3f}"
        g["bias-end-min"] = f"{min(r['bias_error'] for r in rows):.3f}"
        g["bias-end-max"] = f"{max(r['bias_error'] for r in rows):.3f}"

    by_L = {r["L"]: r for r in rows}
    g["acc-epochs"] = _comma(_never(by_L[L]["acc100_epoch"]) for L in L_VALUES)
    g["acc-stays"] = _comma(_never(by_L[L]["acc100_stays"]) for L in L_VALUES)
    stays = [by_L[L]["acc100_stays"] for L in L_VALUES]
    if all(st is not None and st == by_L[L]["acc100_epoch"] for L, st in zip(L_VALUES, stays)):
        g["acc-stays-sentence"] = "it stays there at every recorded epoch to the end."
    else:
        g["acc-stays-sentence"] = (f"the epochs from which it is at 100 % at every recorded epoch to the end are "
                                   f"{g['acc-stays']}" + (' ("never": it ends below 100 %)' if None in stays else "")
                                   + ".")
    g["acc-drops"] = _accuracy_sentence(runs, rows)
    g["decay-reading"] = decay_reading(p)
    spiked = spikes(runs)
    g["spike-threshold"] = f"{SPIKE_FACTOR:g}"
    g["spike-noise"] = _noise_sentence(runs)
    g["spike-runs"] = _spike_sentence(runs, rows, spiked)
    g["spike-orders"] = _orders_sentence(rows, spiked)
    g["metric-every"] = str(p["metric_every"])
    g["stall"] = _stall_sentence(runs, stalls(runs))
    g["fit-sentence"] = _fit_sentence(runs, rows)
    g["collapse-claim"] = _collapse_claim(rows)
    g["nc1-order"] = _comma(order_by(rows, "nc1"))
    g["nc3-order"] = _comma(order_by(rows, "nc3"))
    gap_order = order_by(rows, "gap")
    g["gap-order"] = _comma(gap_order)
    g["gap-trend"] = ("in these runs (one seed per L) the deeper the head, the further its run ends from the global "
                      "minimum after the same number of epochs" if gap_order == sorted(gap_order) else
                      "in these runs (one seed per L) the distance to the global minimum is not monotone in L")
    return g


def scale_label(scale_folder: str, epochs: int) -> str:
    """What the runs of a results folder are, with their epoch count where it falls short of the paper's: "GPU runs
    at the paper's settings but 2,600 of its 12,000 epochs" (the figure chapters' ``scale`` glue)."""
    label = SCALE_LABELS[scale_folder]
    full = SCALES["paper"]["epochs"]
    if scale_folder == "gpu" and epochs < full:
        label += f" but {epochs:,} of its {full:,} epochs"
    return label


def schedule_phrase(params: Mapping, epochs: int) -> str:
    """The learning-rate schedule of a run in words, saying when the run ends before a step: "multiplied by 0.1
    after epoch 6000 (a step these runs, 2,600 epochs long, do not reach)" (glue ``schedule``)."""
    ms, gamma = [int(m) for m in params.get("lr_milestones") or []], float(params["lr_gamma"])
    if not ms:
        return "constant"
    out = f"multiplied by {gamma:g} after epoch {_comma(ms)}"
    missed = [m for m in ms if m >= epochs]
    if missed:
        out += (f" (a step these runs, {epochs:,} epochs long, do not reach)" if len(missed) == len(ms) else
                f" (the runs, {epochs:,} epochs long, do not reach the step after epoch {_comma(missed)})")
    return out


def _precisions(runs: Mapping[int, Run]) -> str:
    """The precision(s) of the runs' matrix products as their provenance records them: "tf32", or "fp32/tf32"."""
    return "/".join(sorted({str(r.provenance.get("precision", "?")) for r in runs.values()}))


def _never(epoch) -> str:
    return "never" if epoch is None else str(epoch)


_ORDER_NAMES = {"nc1": "NC1", "nc3": "NC3", "gap": "the distance of the objective to its global minimum"}


def _accuracy_sentence(runs: Mapping[int, Run], rows: list[dict]) -> str:
    """Which runs' training accuracy falls below 100 % again after first reaching it (:func:`figure_glue`)."""
    parts = []
    for r in rows:
        first, stays = r["acc100_epoch"], r["acc100_stays"]
        if first is None or stays == first:
            continue
        h = runs[r["L"]].history
        after = np.asarray(h["epoch"]) > first
        i = np.flatnonzero(after)[np.argmin(np.asarray(h["train_acc"])[after])]
        end = (f"is at 100 % again from epoch {stays} on" if stays is not None else
               f"ends at {r['train_acc']:.3f}")
        parts.append(f"for L = {r['L']} it falls to {h['train_acc'][i]:.4f} at epoch {int(h['epoch'][i])} and {end}")
    reached = [r for r in rows if r["acc100_epoch"] is not None]
    if not reached:
        return "No run reaches 100 % training accuracy."
    if not parts:
        return ("Once at 100 %, the training accuracy of every run stays there." if len(reached) == len(rows) else
                "Once at 100 %, the training accuracy of every run that reaches it stays there.")
    return "After first reaching 100 %, the training accuracy falls again: " + "; ".join(parts) + "."


def _ls(Ls) -> str:
    """"L = 1", "L = 1 and 3", "L = 1, 3 and 6"."""
    Ls = [str(L) for L in Ls]
    return "L = " + (Ls[0] if len(Ls) == 1 else ", ".join(Ls[:-1]) + " and " + Ls[-1])


def _fitted(rows: list[dict]) -> list[int]:
    """The head depths whose run ends at 100 % training accuracy."""
    return [r["L"] for r in rows if r["train_acc"] >= 1.0]


def _fit_sentence(runs: Mapping[int, Run], rows: list[dict]) -> str:
    """How far NC1 and NC3 fall in the runs that fit the labels (:func:`figure_glue`, key ``fit-sentence``)."""
    fitted = _fitted(rows)
    if not fitted:
        return ("No run ends at 100 % training accuracy (section Comparison), so none has reached the regime "
                "where the theory predicts collapse.")
    nc3 = max(runs[L].history["nc3"][0] / runs[L].history["nc3"][-1] for L in fitted)
    nc1 = min(r["nc1_drop"] for r in rows if r["L"] in fitted)
    who = ("every run" if len(fitted) == len(rows) else
           f"the run{'s' if len(fitted) > 1 else ''} that end{'' if len(fitted) > 1 else 's'} at 100 % training "
           f"accuracy ({_ls(fitted)})")
    out = (f"With decays this small the fit term dominates: in {who} the network fits the labels, and NC1 "
           f"collapses, long before the decays shape the geometry, so NC3 falls by at most a factor {nc3:.3g} "
           f"over a run while NC1 falls by at least a factor {nc1:.1e} (checked below).")
    rest = [r["L"] for r in rows if r["L"] not in fitted]
    if rest:
        out += (f" The run{'s' if len(rest) > 1 else ''} {_ls(rest)} end{'' if len(rest) > 1 else 's'} below 100 % "
                "training accuracy (section Comparison).")
    return out


def _collapse_claim(rows: list[dict]) -> str:
    """What the runs show of the paper's claim of collapse, for the comparison with the paper (:func:`figure_glue`)."""
    fitted = _fitted(rows)
    rest = [r["L"] for r in rows if r["L"] not in fitted]
    if not rest:
        return ("that NC1 falls by orders of magnitude and the training accuracy reaches 100 % for every L (as the "
                "paper's claim of \"neural collapse\" requires)")
    if not fitted:
        return ("that no run reaches 100 % training accuracy within these epochs, so none shows the collapse that "
                "the paper reports")
    return (f"that NC1 falls by orders of magnitude and the training accuracy ends at 100 % for {_ls(fitted)}, as "
            f"the paper's claim of \"neural collapse\" requires, but not for {_ls(rest)} within these epochs "
            "(above)")


def _stall_sentence(runs: Mapping[int, Run], stalled: Mapping[int, dict]) -> str:
    """The runs whose training accuracy ends below 100 %, in words (:func:`stalls`; :func:`figure_glue`)."""
    if not stalled:
        return "Every run ends at 100 % training accuracy."
    out = []
    for L, st in stalled.items():
        h = runs[L].history
        wrong = f"{st['misclassified']:,} of the {int(st['n'].sum()):,} training samples misclassified"
        end = (f"{st['train_acc']:.3f} at the end ({wrong}), the highest it reached from epoch {st['since']} on"
               if st["best_acc"] == st["train_acc"] else
               f"at most {st['best_acc']:.3f}, and {st['train_acc']:.3f} at the end ({wrong})")
        if st["before"] is None:
            text = f"For L = {L} the training accuracy never reaches 100 %: {end}."
        else:
            e = list(np.asarray(h["epoch"]))
            lr0, lr1 = float(h["lr"][e.index(st["before"])]), float(h["lr"][e.index(st["since"])])
            lr = (f"at the constant learning rate {lr1:g}" if lr0 == lr1 else
                  f"while the learning rate went from {lr0:g} to {lr1:g}")
            factor = st["objective_since"] / st["objective_before"]
            spike = f", a training spike by the rule below (x{SPIKE_FACTOR:g})" if factor > SPIKE_FACTOR else ""
            text = (f"For L = {L} the training accuracy was 100 % at the recorded epoch {st['before']} and is below "
                    f"100 % at every recorded epoch from {st['since']} to the last ({st['end']:,}): {end}. Between "
                    f"epochs {st['before']} and {st['since']} its objective rose by a factor {factor:.3g}, from "
                    f"{st['objective_before']:.3g} to {st['objective_since']:.3g}, {lr}{spike}.")
        text += (f" Its objective changed by {100 * st['objective_change']:+.2g} % over the second half of the run "
                 f"(from epoch {st['half']:,}) and ends {st['objective_ratio']:.3g} times the global minimum of "
                 f"(4.3), with NC1 at {st['nc1']:.2g} (a fall by a factor {st['nc1_drop']:.3g} from epoch 0) and "
                 f"NC3 at {st['nc3']:.3g}.")
        out.append(text)
    for L, st in stalled.items():
        if st["classes"] is not None:
            n, cls = st["n"], st["classes"]
            out.append(f"At the end of the run L = {L} the misclassified samples are in class"
                       f"{'es' if len(cls) > 1 else ''} " + ", ".join(f"{k} ({c} samples, accuracy {a:.3f})"
                                                                     for k, c, a in cls)
                       + f" (class_accuracy.csv; the class counts range from {int(n.min())} to {int(n.max())}).")
    unknown = [L for L, st in stalled.items() if st["classes"] is None]
    if unknown:
        out.append(f"The history of {_ls(unknown)} records the accuracy over all training samples only (made "
                   "before class_accuracy.csv was recorded), so which classes the misclassified samples belong to "
                   "is not known.")
    for L in unknown:
        n, m = stalled[L]["n"], stalled[L]["misclassified"]
        small, count = int(n.min()), int(np.sum(n == n.min()))
        if m % small == 0 and 0 < m // small <= count:
            out.append(f"For L = {L} the {m:,} misclassified samples are exactly {m // small} times the smallest class "
                       f"size ({small}; {count} classes have it): what losing {m // small} of those classes whole "
                       "(minority collapse) would give, though the count alone does not show it.")
    accs = sorted({st["minimizer_accuracy"] for st in stalled.values()})
    below = [L for L, st in stalled.items() if st["train_acc"] < st["minimizer_accuracy"]]
    if accs == [1.0]:
        out.append("Every global minimizer of (4.3) at these decays classifies every training sample correctly "
                   "(nclib.ufm.minimizer_accuracy),")
    else:
        out.append("The global minimizers of (4.3) at these decays classify "
                   + " and ".join(f"{a:.3f}" for a in accs) + " of the training samples correctly "
                   "(nclib.ufm.minimizer_accuracy),")
    if below:
        out[-1] += (f" so at the end of the epochs trained the run{'s' if len(below) > 1 else ''} {_ls(below)} "
                    f"{'are' if len(below) > 1 else 'is'} away from every global minimizer: the collapse that "
                    "Theorem 4.3 predicts at its minimizers is not what such a run shows.")
    else:
        out[-1] += " as many as these runs: their accuracy alone does not separate them from the minimizers."
    return " ".join(out)


def _noise_sentence(runs: Mapping[int, Run]) -> str:
    """How much the objective of the runs rises between consecutive recorded epochs (:func:`figure_glue`)."""
    ratios = np.concatenate([np.asarray(r.history["objective"][1:]) / np.asarray(r.history["objective"][:-1])
                             for r in runs.values()])
    rises = ratios[ratios > 1]
    if not rises.size:
        return "The objective of these runs never rises between consecutive recorded epochs."
    below = rises[rises <= SPIKE_FACTOR]
    out = (f"Of the {ratios.size} intervals between consecutive recorded epochs in these {len(runs)} runs, "
           f"{rises.size} see the objective rise; the median rise is a factor {np.median(rises):.4g}")
    return out + (f", and the largest that stays under the threshold a factor {below.max():.3g}." if below.size
                  else ".")


def _lr_phrase(run: Run, rise: dict) -> str:
    """Where a rise lies against the step decay of the learning rate (``lr_milestones`` of params.json)."""
    p = run.params
    ms, gamma = sorted(int(m) for m in p.get("lr_milestones") or []), float(p["lr_gamma"])
    prev, epoch = rise["prev_epoch"], rise["epoch"]
    inside = [m for m in ms if prev < m < epoch]
    if inside:
        return (f"over an interval that contains the step decay after epoch {inside[0]} (learning rate "
                f"{rise['lr_prev']:g}, then {rise['lr']:g})")
    out = f"at the constant learning rate {rise['lr']:g}"
    later, earlier = [m for m in ms if m >= epoch], [m for m in ms if m <= prev]
    if later and later[0] == epoch:
        return (out + f", in the {epoch - prev} epochs that end where the step decay takes over (x{gamma:g} from "
                f"epoch {epoch + 1} on): the rise comes before the decay, which did not cause it")
    if later and later[0] >= int(run.history["epoch"][-1]):
        return out + f" (the run ends before the step decay after epoch {later[0]})"
    if later:
        return out + f", {later[0] - epoch} epochs before the step decay after epoch {later[0]}"
    if earlier:
        return out + f", {prev - earlier[-1]} epochs after the step decay after epoch {earlier[-1]}"
    return out + " (the run has no step decay)"


def _spike_sentence(runs: Mapping[int, Run], rows: list[dict], spiked: Mapping[int, dict],
                    threshold: float = SPIKE_FACTOR) -> str:
    """The training spikes of a figure's runs in words (:func:`figure_glue`): each run's largest rise in detail,
    its other rises above ``threshold`` by epochs and factor."""
    if not spiked:
        rises = [(r["rise"]["factor"], r["L"], r["rise"]) for r in rows if r["rise"] is not None]
        if not rises:
            return "No run's objective ever rises between consecutive recorded epochs."
        factor, L, rise = max(rises, key=lambda t: t[0])
        return (f"No run's objective rises by more than a factor {SPIKE_FACTOR:g} between consecutive recorded "
                f"epochs: the largest rise is a factor {factor:.3g}, for L = {L} between epochs "
                f"{rise['prev_epoch']} and {rise['epoch']}.")
    out = []
    for L, r in spiked.items():
        b, a, f, start = r["before"], r["at"], r["final"], r["start_epoch"]
        climb = (f" (a factor {r['climb']:.3g} from epoch {start}, where its rise began)"
                 if start != r["prev_epoch"] else "")
        back = (f"The objective is back at or below its level of epoch {start} at epoch {r['back_epoch']}"
                if r["back_epoch"] is not None else f"The objective never returns to its level of epoch {start}")
        rel = lambda k: "above" if f[k] > b[k] else "at or below"  # noqa: E731
        h = runs[L].history
        obj, ep = np.asarray(h["objective"], dtype=float), np.asarray(h["epoch"])
        others = [(int(ep[i]), int(ep[i + 1]), obj[i + 1] / obj[i]) for i in range(obj.size - 1)
                  if obj[i + 1] / obj[i] > threshold and int(ep[i + 1]) != r["epoch"]]
        also = ("" if not others else
                f" (its largest of {len(others) + 1} rises above x{threshold:g}; the other"
                + ("s" if len(others) > 1 else "") + ": " + ", ".join(f"epochs {a} to {b_} (x{x:.3g})"
                                                                         for a, b_, x in others) + ")")
        out.append(
            f"For L = {L} the objective rises by a factor {r['factor']:.3g} between the recorded epochs "
            f"{r['prev_epoch']} and {r['epoch']}{climb}{also}, {_lr_phrase(runs[L], r)}. From epoch {start} to "
            f"{r['epoch']} NC1 goes from {b['nc1']:.2g} to {a['nc1']:.2g}, NC3 from {b['nc3']:.3g} to "
            f"{a['nc3']:.3g} and the training accuracy from {b['train_acc']:.3f} to {a['train_acc']:.3f}. "
            f"{back}; at the end NC1 is {f['nc1']:.2g} ({rel('nc1')} its value of epoch {start}) and NC3 "
            f"{f['nc3']:.3g} ({rel('nc3')} its value there).")
    if any(r["lr"] == r["lr_prev"] for r in spiked.values()):
        out.append("A rise at a constant learning rate is an instability of the training itself (Adam on "
                   "mini-batches), not an effect of the step schedule.")
    return " ".join(out)


def _orders_sentence(rows: list[dict], spiked: Mapping[int, dict]) -> str:
    """Which L-orderings of the final values a spike decides, in words (:func:`orders_without_spikes`)."""
    if not spiked:
        return "No L-ordering above is shaped by a spike."
    caveat = (" With one seed per L, an ordering in L of final values says little about L when a run's last "
              "stretch is the recovery from such a spike.")
    shaped = orders_without_spikes(rows, spiked)
    if not shaped:
        return ("None of the L-orderings above depends on the spikes: with the final NC1, NC3 and objective of "
                "each spiked run replaced by their values before its largest rise wherever those were lower, every "
                "ordering stays the same." + caveat)
    out = []
    for key, s in shaped.items():
        runs_txt = " and ".join(f"L = {L} at its value before the rise ({was:.3g} instead of the final {end:.3g})"
                                for L, (was, end) in s["runs"].items())
        out.append(f"The L-ordering of the final {_ORDER_NAMES[key]} ({_comma(s['order'])}) is shaped by a spike: "
                   f"with {runs_txt} it would be {_comma(s['without'])}.")
    return " ".join(out) + caveat


def figure_tables(fig, runs: Mapping[int, Run], check: Mapping, rows: list[dict],
                  theory: Mapping[int, RunTheory]) -> dict:
    """The four tables of a figure chapter as pandas DataFrames (pandas is a dependency of the book).

    ``"provenance"``: what each run's provenance recorded (N, K, parameters, steps, speed, wall time, device,
    precision, torch, git commit, data checksum); ``"theory"``: the modes alive, the extreme nonzero kappa,
    the global minimum of (4.3) and the final objective (:func:`run_theory`); ``"final"``: the final metrics
    of :func:`final_rows` (the first epoch at 100 % training accuracy and the epoch from which it stays
    there, the largest rise of the objective, :func:`rise_cell`; with a bias also ||b - n/N||);
    ``"settings"``: the paper's settings (Section 5) next to the runs'. Used by :ref:`ch-fig1` to
    :ref:`ch-fig4` through :func:`figure_chapter`.
    """
    import pandas as pd

    from . import plotting

    f = _figure(fig)
    provenance = pd.DataFrame([{
        "L": L, "N": r.provenance["N"], "K": r.provenance["K"], "parameters": r.provenance["parameter_count"],
        "steps": r.provenance["steps"], "steps/s": round(r.provenance["steps_per_s"], 1),
        "wall time (s)": round(r.provenance["wall_time_s"], 1), "device": r.provenance["device_name"],
        "precision": r.provenance["precision"], "torch": r.provenance["versions"]["torch"],
        "git commit": (r.provenance["git_commit"] or "?")[:10], "data sha256": r.provenance["data_sha256"][:12],
    } for L, r in sorted(runs.items())]).set_index("L")
    theory_table = pd.DataFrame([{
        "L": L, "modes alive": f"{t.alive} of {t.K}", "largest kappa": round(float(t.kappa[0]), 3),
        "smallest nonzero kappa": round(float(t.kappa[t.kappa > 1e-9 * t.kappa[0]].min()), 3),
        "global minimum of (4.3)": f"{t.minimum:.4e}",
        "objective at the end": f"{runs[L].history['objective'][-1]:.4e}",
    } for L, t in sorted(theory.items())]).set_index("L")
    final = pd.DataFrame([{
        "L": r["L"], "epochs": r["epochs"], "NC1": f"{r['nc1']:.2e}", "NC2^W": f"{r['nc2_w']:.3f}",
        "NC2^H": f"{r['nc2_h']:.3f}", "NC2^WH": f"{r['nc2_wh']:.2e}", "NC3": f"{r['nc3']:.3f}",
        "train acc": f"{r['train_acc']:.4f}", "100 % acc first at epoch": _never(r["acc100_epoch"]),
        "100 % acc to the end from epoch": _never(r["acc100_stays"]),
        "largest objective rise": rise_cell(r["rise"]),
        "NC1 drop": f"{r['nc1_drop']:.1e}",
        **({"||b - n/N||": f"{r['bias_error']:.3f}"} if f.bias else {}),
    } for r in rows]).set_index("L")
    p = runs[min(runs)].params
    paper = SCALES["paper"]
    epochs = max(check["epochs"].values())
    precision = _precisions(runs)
    settings = pd.DataFrame({
        "paper (Section 5)": [f.paper_data, _comma(sorted(figure_counts(f, "paper"), reverse=True)), "not stated",
                              str(paper["width"]), str(paper["batch_size"]), f"Adam, {paper['lr']:g}", "not stated",
                              "not stated", "not stated", f"{paper['epochs']:,}"],
        "these runs": [plotting.dataset_label(p), _comma(sorted(run_counts(p).tolist(), reverse=True)),
                       f"class k has the k-th of {_comma(run_counts(p).tolist())} ({p.get('class_order', '?')})",
                       str(p["width"]), str(p["batch_size"]), f"Adam, {p['lr']:g}", schedule_phrase(p, epochs),
                       f"lam_W = lam_H = {p['lam_W']:g}", precision, f"{epochs:,}"],
    }, index=["data", "class counts", "class order", "width", "batch size", "optimizer, lr", "lr schedule", "decays",
              "precision of the products", "epochs"])
    return {"provenance": provenance, "theory": theory_table, "final": final, "settings": settings}


def decay_reading(params: Mapping) -> str:
    """A sentence on where a run's decays lam_W, lam_H come from, against the closest public code's wd = fd = 1e-5
    (Dang et al. 2023), whose loss (trained full batch) is (4.3) divided by K: K x 1e-5 in (4.3)'s normalization
    (:func:`nclib.ufm.reference_decay`, the engine's default ``"reference"``), 1e-5 read literally, or neither.
    Used by :ref:`ch-fig1` to :ref:`ch-fig4` (glue ``decay-reading``)."""
    K = int(run_counts(params).size)
    ref, wd = ufm.reference_decay(K), ufm.REFERENCE_DECAY
    lam_W, lam_H = params["lam_W"], params["lam_H"]
    if np.ndim(lam_W) or np.ndim(lam_H):
        return f"set per layer by hand (lam_W = {lam_W}, lam_H = {lam_H}); that code's decays would be K x {wd:g} = {ref:g}"
    if math.isclose(lam_W, ref, rel_tol=1e-12) and math.isclose(lam_H, ref, rel_tol=1e-12):
        return (f"the closest public code's weight decay and feature decay wd = fd = {wd:g} as that code trains them: "
                f"its loss (trained full batch) is (4.3) divided by K, so they are K x {wd:g} = {ref:g} in (4.3)'s "
                f"normalization (K = {K}); read literally, {wd:g} would decay {K} times more weakly")
    if math.isclose(lam_W, wd, rel_tol=1e-12) and math.isclose(lam_H, wd, rel_tol=1e-12):
        return (f"the literal reading of the closest public code's wd = fd = {wd:g} in (4.3)'s normalization; that "
                f"code's own loss is (4.3) divided by K, so it trains with K x {wd:g} = {ref:g} (K = {K}), "
                f"{K} times more strongly than these runs")
    return (f"set by hand (lam_W = {lam_W:g}, lam_H = {lam_H:g}); the closest public code's wd = fd = {wd:g} would "
            f"be K x {wd:g} = {ref:g} in (4.3)'s normalization (K = {K})")


def figure_chapter(fig, scale_folder: str | None = None, root=None) -> FigureChapter:
    """Read, check and tabulate one figure's committed runs: everything a figure chapter shows but its plots.

    ``scale_folder``: ``"gpu"`` or ``"cpu-scale"`` (None: :func:`preferred_scale`); ``root``: the results
    folder (default :data:`RESULTS`). Loads the runs (:func:`load_figure`), checks them against the figure's
    configuration (:func:`check_figure`, ValueError if they differ), and returns a :class:`FigureChapter`
    with the final rows, the theory at each run's decays, the glued values (:func:`figure_glue`) and the
    tables (:func:`figure_tables`). The plots are :func:`draw_panels` and :func:`draw_theory`, the
    properties asserted :func:`check_runs`. Used by :ref:`ch-fig1` to :ref:`ch-fig4` and
    :ref:`ch-figures-summary`.
    """
    f = _figure(fig)
    if scale_folder is None:
        scale_folder = preferred_scale(f, root)
    cfg = config_scale(scale_folder)
    runs = load_figure(f, scale_folder, root)
    check = check_figure(runs, f, cfg)
    rows = final_rows(runs)
    theory = {L: run_theory(run.params) for L, run in runs.items()}
    return FigureChapter(figure=f, scale_folder=scale_folder, config_scale=cfg, runs=runs, check=check, rows=rows,
                         theory=theory, glue=figure_glue(f, scale_folder, runs, check, rows, theory),
                         tables=figure_tables(f, runs, check, rows, theory))


def _require(ok, message: str) -> None:
    if not ok:
        raise AssertionError(message)


def check_runs(runs: Mapping[int, Run], fig) -> None:
    """Assert the properties of a figure's committed runs that the figure chapters check; AssertionError if not.

    Each is a property of the recorded histories and provenance, which other runs could fail (the theory's
    own identities are tested in ``tests/``, not here). For every run (each message names the run's L and the
    property): the objective (4.3) never goes below its global minimum over free features
    (:func:`run_theory`, relative tolerance 1e-12); NC2^W, NC2^H, NC2^WH and NC3 each end below their value
    at epoch 0 (every corrected metric is 0 at the minimizers of Theorems 4.1-4.3). A run whose final training
    accuracy is exactly 1: NC1 falls by more than a factor 100 from epoch 0 to the last epoch, and by more
    than NC3. A run that ends below 1 (:func:`stalls`): its accuracy is below that of every global minimizer
    (``minimizer_accuracy``), and (1 - accuracy) x N is a whole number. For every run: the data checksum
    equals the first run's; the run's bias case is Figure ``fig``'s. Figures 1
    and 2 (with a bias, Theorems 4.2/4.3: b* = n/N and a zero global feature mean): the recorded
    ||b - n/N|| is finite and ends below its value at epoch 0, and so does the global feature-mean norm.
    Figures 3 and 4 (bias-free, Appendix C): the recorded bias error is NaN. Figures 2 and 4 (the
    letters-synthetic stand-in): every run's provenance names the stand-in. Used by :ref:`ch-fig1` to
    :ref:`ch-fig4`.
    """
    f = _figure(fig)
    if not runs:
        raise ValueError("runs must hold at least one run")
    first = runs[min(runs)]
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
            drop_nc1, drop_nc3 = h["nc1"][0] / h["nc1"][-1], h["nc3"][0] / h["nc3"][-1]
            _require(drop_nc1 > 1e2, f"L={L}: NC1 falls by a factor {drop_nc1:.3g} ({h['nc1'][0]:.3g} to "
                                     f"{h['nc1'][-1]:.3g}), not more than 100")
            _require(drop_nc1 > drop_nc3, f"L={L}: NC1 falls by a factor {drop_nc1:.3g}, not more than NC3 "
                                          f"({drop_nc3:.3g})")
        else:  # stalled (stalls): away from every global minimizer
            _require(acc < t.minimizer_accuracy, f"L={L}: the final training accuracy {acc!r} is not below "
                                                 f"{t.minimizer_accuracy!r}, that of the global minimizers")
            wrong = (1.0 - acc) * t.N
            _require(abs(wrong - round(wrong)) < 1e-6, f"L={L}: (1 - accuracy) x N = {wrong!r} is not a whole "
                                                       "number of samples")
        _require(run.provenance["data_sha256"] == first.provenance["data_sha256"],
                 f"L={L}: data sha256 {run.provenance['data_sha256'][:12]} differs from the first run's "
                 f"{first.provenance['data_sha256'][:12]}")
        _require(t.bias is f.bias, f"L={L}: the run has bias={t.bias}, Figure {f.number} has bias={f.bias}")
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


# --------------------------------------------------------------------------------------------- the engine benchmark

#: Where the engine benchmark's committed outputs live (``benchmarks/bench_train.py``).
BENCHMARKS = ROOT / "benchmarks" / "results"


def read_benchmark(path) -> dict:
    """The numbers of one committed output of ``benchmarks/bench_train.py`` (e.g. ``bench_train_cpu.txt``).

    Returns ``command`` (the first line, without ``$``), ``device``, ``problem``, ``plain`` and ``engine``
    (steps per second of the plain PyTorch loop and of nclib.train) and ``ratio`` (their quotient as
    printed); with ``--figure-epochs`` also ``figure_epochs``, ``figure_apart_s`` and ``figure_together_s``
    (seconds for a figure's three runs of that many epochs one after another and side by side) and
    ``figure_ratio``. Raises ValueError naming
    the file when a line is missing. Used by :ref:`ch-figures-summary`.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    lines = path.read_text().splitlines()
    out: dict = {"command": lines[0].lstrip("$ ").strip() if lines and lines[0].startswith("$") else None}
    for line in lines:
        key, _, rest = line.partition("  ")
        key, rest = key.strip(), rest.strip()
        if key in ("device", "problem", "precision"):
            out[key] = rest
        elif key in ("plain loop", "nclib.train"):
            out["plain" if key == "plain loop" else "engine"] = float(rest.split()[0])
        elif key == "ratio":
            out["ratio"] = float(rest.split()[0])
        elif key == "figure runs":
            m = re.search(r"(\d+) epochs each: one after another ([\d.]+) s, side by side ([\d.]+) s, "
                          r"ratio ([\d.]+) x", rest)
            if m is None:
                raise ValueError(f"path {str(path)!r}: unreadable 'figure runs' line {line!r}")
            out["figure_epochs"] = int(m.group(1))
            out["figure_apart_s"], out["figure_together_s"], out["figure_ratio"] = map(float, m.groups()[1:])
    missing = [k for k in ("device", "plain", "engine", "ratio") if k not in out]
    if missing:
        raise ValueError(f"path {str(path)!r} is not a bench_train output: no {', '.join(missing)} line")
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
    ``data_s``, ``setup_s``, ``epochs x epoch_s`` and one evaluation per ``metric_every`` epochs (plus the
    first and the last). Used by ``scripts/gpu_budget.py`` (the epoch budget of each GPU figure) and by
    :ref:`ch-figures-summary` (how long all four figures take at 12,000 epochs).
    """
    f = _figure(fig)
    epochs = _checks.nonneg_int(epochs, "epochs")
    try:
        kind = calibration["kinds"][f.dataset]
        parts = {k: float(kind[k]) for k in ("data_s", "setup_s", "epoch_s", "eval_s")}
    except (KeyError, TypeError) as exc:
        raise ValueError(f"calibration has no complete entry for {f.dataset!r} (kinds/{f.dataset}/data_s, setup_s, "
                         f"epoch_s, eval_s): {exc!r}") from exc
    evals = epochs // SCALES["paper"]["metric_every"] + 2
    return (NOTEBOOK_OVERHEAD_S + parts["data_s"] + parts["setup_s"] + epochs * parts["epoch_s"]
            + evals * parts["eval_s"])


# --------------------------------------------------------------------------------------------- executed notebooks

def notebook_path(fig, scale_folder: str = "cpu-scale") -> pathlib.Path:
    """Where the executed training notebook of a figure's runs is committed: ``book/figures/<scale>/fig<k>.run.ipynb``.

    The ``*.run.ipynb`` name keeps the book build from re-executing it (``_config.yml``). The chapters
    :ref:`ch-fig1` to :ref:`ch-fig4` name it; ``scripts/gpu_run_figure.sh`` writes it.
    """
    f = _figure(fig)
    if scale_folder not in SCALE_LABELS:
        raise ValueError(f"scale_folder must be one of {sorted(SCALE_LABELS)}, got {scale_folder!r}")
    return NOTEBOOKS / scale_folder / f"fig{f.number}.run.ipynb"


def run_label(fig, scale_folder: str) -> str:
    """The target of an executed figure notebook in the book, e.g. ``run-fig1-cpu-scale`` (see
    :func:`relabel_notebook`; the notebooks sit under :ref:`ch-fig1` to :ref:`ch-fig4`)."""
    f = _figure(fig)
    if scale_folder not in SCALE_LABELS:
        raise ValueError(f"scale_folder must be one of {sorted(SCALE_LABELS)}, got {scale_folder!r}")
    return f"run-fig{f.number}-{scale_folder}"


#: The caption of the panels in an executed copy of the training notebook (:func:`relabel_notebook`): the
#: training chapter's own caption speaks of its smoke run.
RUN_PANELS_CAPTION = ("The collapse metrics and the training accuracy against epochs, one curve per head depth L, "
                      "read back from the run folders this execution wrote; the figure's chapter draws them with the "
                      "theory's targets and the epoch count against the paper's.")


def _injected_epochs(nb: dict) -> int | None:
    """The ``epochs`` papermill injected into an executed training notebook, or None."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            m = re.search(r"^epochs = (\d+)\s*$", text, flags=re.M)
            return int(m.group(1)) if m else None
    return None


def relabel_notebook(path, fig, scale_folder: str) -> pathlib.Path:
    """Give an executed copy of the training notebook (:ref:`ch-train`) its own title, target, note and figure names.

    Every executed copy would otherwise repeat the ``(ch-train)=`` target, the title and the figure names
    (``fig-train-panels``) of the training chapter: duplicate labels in the book. Only markdown and code-cell
    metadata change: the first cell becomes the target :func:`run_label`, a title naming the figure and the scale
    with the epochs papermill injected (:func:`scale_label`) and a note on what the notebook is, in place of the
    training chapter's introduction (which speaks of its smoke run and of how to make these runs); each figure
    name gets the run label as prefix, and the panels' caption becomes :data:`RUN_PANELS_CAPTION`. Code, outputs
    and execution metadata are left exactly as papermill wrote them. Idempotent. Used by
    ``scripts/gpu_run_figure.sh`` (GPU and CPU-scale runs alike).
    """
    path = pathlib.Path(path)
    f = _figure(fig)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    nb = json.loads(path.read_text())
    label = run_label(f, scale_folder)
    epochs = _injected_epochs(nb)
    scale = SCALE_LABELS[scale_folder] if epochs is None else scale_label(scale_folder, epochs)
    title = f"Figure {f.number}: the executed training notebook ({scale})"
    note = (f"This is the training notebook of {{ref}}`ch-train` as papermill executed it for Figure {f.number} "
            f"({f.paper_data if f.dataset == 'cifar10' else data.LETTERS_SYNTHETIC_LABEL}, "
            f"{'with bias' if f.bias else 'bias-free'}), shown with its outputs and never re-executed by the "
            f"book build. Its parameters are in the cell tagged `injected-parameters` (smoke = False: where the "
            f"text below, the training chapter's own, speaks of the smoke run, those parameters apply instead); "
            f"the chapter {{ref}}`ch-fig{f.number}` draws and discusses the runs it wrote, with their epoch count "
            f"against the paper's.")
    titled = False
    for cell in nb["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and not titled and ("(ch-train)=" in text or f"({label})=" in text):
            cell["source"] = f"({label})=\n# {title}\n\n{note}"
            titled = True
        elif cell["cell_type"] == "code":
            fig_meta = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            if "name" in fig_meta and not str(fig_meta["name"]).startswith(label):
                fig_meta["name"] = f"{label}-{fig_meta['name']}"
            if "caption" in fig_meta:
                fig_meta["caption"] = RUN_PANELS_CAPTION
    if not titled:
        raise ValueError(f"path {str(path)!r} is not an executed training notebook (no '(ch-train)=' title cell)")
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------------------------- command line

def yaml_safe_json(params: Mapping) -> str:
    """``params`` as JSON that a YAML 1.1 reader (PyYAML, papermill's ``-f``) reads back with the same types.

    JSON writes 1e-05 for 0.00001, which YAML 1.1 reads as the *string* '1e-05' (its floats need a dot);
    every float in exponent form gets one (1.0e-05), which both read as the float. Strings are left alone.
    Used by :func:`main` for the papermill parameters of ``scripts/gpu_run_figure.sh`` (:ref:`ch-fig1` to
    :ref:`ch-fig4`).
    """
    floats: list[str] = []
    tag = "\x00float\x00"

    def mark(v):
        if isinstance(v, Mapping):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [mark(x) for x in v]
        if isinstance(v, float) and math.isfinite(v):
            text = repr(v)
            mantissa, e, exponent = text.partition("e")
            floats.append(f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text)
            return f"{tag}{len(floats) - 1}"
        return v

    text = json.dumps(mark(params), indent=1)
    return re.sub(r'"\\u0000float\\u0000(\d+)"', lambda m: floats[int(m.group(1))], text)


def main(argv=None) -> int:
    """``python -m nclib.figures params FIG [--scale S] [--set NAME=VALUE ...]``: print a figure's notebook
    parameters as JSON (valid YAML, for ``papermill -f``); ``... relabel NOTEBOOK FIG SCALE_FOLDER``: give an
    executed training notebook its own title and target (:func:`relabel_notebook`). The papermill runs of
    Figures 1-4 (Section 5) through :ref:`ch-train`, made by ``scripts/gpu_run_figure.sh``."""
    ap = argparse.ArgumentParser(prog="python -m nclib.figures", description=main.__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("params", help="print the papermill parameters of one figure as JSON")
    pp.add_argument("fig", type=int)
    pp.add_argument("--scale", default="paper", choices=sorted(SCALES))
    pp.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override one parameter; VALUE is read as JSON when it parses, else as a string")
    rp = sub.add_parser("relabel", help="retitle an executed training notebook for the book")
    rp.add_argument("notebook", type=pathlib.Path)
    rp.add_argument("fig", type=int)
    rp.add_argument("scale_folder", choices=sorted(SCALE_LABELS))
    args = ap.parse_args(argv)
    if args.command == "params":
        overrides = {}
        for item in args.set:
            if "=" not in item:
                raise SystemExit(f"--set takes NAME=VALUE, got {item!r}")
            name, value = item.split("=", 1)
            try:
                overrides[name] = json.loads(value)
            except json.JSONDecodeError:
                overrides[name] = value
        print(yaml_safe_json(figure_parameters(args.fig, args.scale, **overrides)))
    else:
        relabel_notebook(args.notebook, args.fig, args.scale_folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
