"""The configuration of the paper's Figures 1-4 (Section 5, Appendix C) at two scales.

A scale names where its runs are made and what it changes from the training engine's one parameter list,
:data:`nclib.parameters.DEFAULTS` (the paper's Section 5 settings, with the documented defaults of the closest
public code for what the paper leaves out):

- ``"gpu"``: the settings the paper states (12,000 epochs, width 2048, batch size 128, Adam at 1e-4), with the
  closest public code's defaults for what it leaves out (step decay x0.1 after epoch 6000, decays K x 1e-5) and
  the metrics every 100 epochs; a GPU trains them;
- ``"cpu-scale"``: class counts divided by 10, width 256, 1,000 epochs, Adam at 3e-4 with its step after
  epoch 500, metrics every 20 epochs: small enough for a 2-core CPU, **not** the paper's settings.

The scale is also the name of the folders of its runs (``results/figures/<scale>/fig<k>/``) and of its
executed notebooks (``book/figures/<scale>/fig<k>.run.ipynb``).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from .. import ROOT, _checks, data, parameters, plotting  # torch-free, as reading committed runs is

#: The folder holding the committed figure runs, one subfolder per scale.
RESULTS = ROOT / "results" / "figures"
#: The folder of the committed executed notebooks (``<scale>/fig<k>.run.ipynb``).
NOTEBOOKS = ROOT / "book" / "figures"
#: The head depths of every figure (Section 5).
L_VALUES = (1, 3, 6)
#: The input dimension of every figure's network: CIFAR-10's 32 x 32 x 3, and the letters resized to it (as the
#: reference code feeds EMNIST, :mod:`nclib.data`).
INPUT_DIM = 3 * 32 * 32


@dataclasses.dataclass(frozen=True)
class Figure:
    """One of the paper's Figures 1-4: which data, which bias case, what the paper's caption says.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""

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
    # "Base case" as printed: a mistake for "Bias case" (Section 5 makes Figures 1-2 the bias case; erratum M5)
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

#: What each scale changes in :data:`nclib.parameters.DEFAULTS`; ``divisor`` divides the paper's class counts.
SCALES: dict[str, dict] = {
    "gpu": dict(divisor=1),
    "cpu-scale": dict(divisor=10, width=256, epochs=1000, lr=3e-4, lr_milestones=[500], metric_every=20),
}

#: The engine's parameters that one notebook execution sets per run (one run per L of ``L_values``).
PER_RUN_KEYS = ("L", "run_name")

#: The history columns of the six panels of Figures 1-4 (:data:`nclib.plotting.PANELS`).
HISTORY_KEYS = tuple(key for key, _, _ in plotting.PANELS)


def figure(fig) -> Figure:
    """The :class:`Figure` numbered ``fig`` (1-4), or ``fig`` itself when it is one; ValueError otherwise.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if isinstance(fig, Figure):
        return fig
    if isinstance(fig, (bool, np.bool_)) or not isinstance(fig, (int, np.integer)) or int(fig) not in FIGURES:
        raise ValueError(f"fig must be one of {sorted(FIGURES)} (the paper's Figures 1-4), got {fig!r}")
    return FIGURES[int(fig)]


def check_scale(scale: str) -> str:
    """``scale`` if it names a scale of :data:`SCALES` (``"gpu"``, ``"cpu-scale"``); ValueError otherwise.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if not isinstance(scale, str) or scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    return scale


def scale_settings(scale: str) -> dict:
    """The training settings of a scale: :data:`nclib.parameters.DEFAULTS` with the scale's changes (:data:`SCALES`)
    applied, plus its ``divisor``. ``scale``: ``"gpu"`` or ``"cpu-scale"``; ValueError otherwise.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    check_scale(scale)
    s = {k: v for k, v in parameters.DEFAULTS.items() if k not in PER_RUN_KEYS}
    s.update(SCALES[scale])
    s["lr_milestones"] = list(s["lr_milestones"])
    return s


def figure_counts(fig, scale: str = "gpu") -> list[int]:
    """The class counts of a figure's run, class k getting entry k (Section 5's profiles).

    The paper's profile (``nclib.imbalance.PROFILES``) in the reference code's class order
    (:func:`nclib.data.preset_counts`), divided by the scale's divisor (``"cpu-scale"``: 10).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`.
    """
    f, s = figure(fig), scale_settings(scale)
    n = data.preset_counts(f.preset, "reference")
    if np.any(n % s["divisor"]):
        raise ValueError(f"scale {scale!r} divides the counts by {s['divisor']}, which does not divide {n.tolist()}")
    return (n // s["divisor"]).astype(int).tolist()


def figure_parameters(fig, scale: str = "gpu", **overrides) -> dict:
    """The papermill parameters of the training notebook (:ref:`ch-train`) that run one figure.

    Every parameter of :data:`nclib.parameters.DEFAULTS` but the per-run ones (:data:`PER_RUN_KEYS`), set to the
    scale's value (:func:`scale_settings`), with the figure's data, counts and bias case, plus the notebook's
    ``smoke`` (False), ``L_values`` (1, 3, 6) and ``run_tag`` (``fig<k>``: the run folders are
    ``<out_dir>/fig<k>-L<L>``). ``overrides`` replace any parameter (e.g. ``epochs`` when a GPU time budget
    cannot fit 12,000, ``data_path``, ``device``, or ``max_train_s`` and ``resume`` to make a run in several
    jobs); an unknown name raises ValueError, and so does a value the training engine would refuse for one of the
    figure's runs (:func:`check_run_settings`), before any notebook is started with it.
    Used in :ref:`ch-figures-summary`, by the figure chapters through the run checks of :mod:`nclib.figures.load`,
    and by ``scripts/figure_notebook.py`` and ``scripts/gpu_budget.py``.
    """
    f, s = figure(fig), scale_settings(scale)
    p = {k: v for k, v in s.items() if k != "divisor"}
    p.update(smoke=False, dataset=f.dataset, counts=figure_counts(f, scale), bias=f.bias, L_values=list(L_VALUES),
             out_dir=str(RESULTS / scale / f"fig{f.number}"), run_tag=f"fig{f.number}")
    unknown = set(overrides) - set(p)
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {sorted(unknown)}; known: {sorted(p)}")
    p.update(overrides)
    if "epochs" in overrides:
        p["epochs"] = _checks.positive_int(p["epochs"], "epochs")
    check_run_settings(p)
    return p


#: The training notebook's own parameters, which are not the engine's (:data:`nclib.parameters.NOTEBOOK_PARAMETERS`).
NOTEBOOK_ONLY_KEYS = ("smoke", "L_values", "run_tag")


def check_run_settings(params: Mapping) -> None:
    """Refuse figure notebook parameters (:func:`figure_parameters`) that the training engine would refuse for one of
    the runs: ValueError naming the parameter (a learning rate of -1, a width of 0, counts [0, 1], an empty
    ``L_values``, ...; ``params`` where it is not a mapping), as :func:`nclib.parameters.checked` names it for each
    run of ``L_values`` (a run on a GPU: ``device="cuda"`` is accepted here).  The data file is left to the machine
    that trains, which may be the only one with a copy: the data's arguments are checked by
    :func:`nclib.data.check_load_args`, the rest with a data set drawn from the seed in its place.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be the notebook parameters (a mapping), got {type(params).__name__}")
    unknown = set(params) - set(parameters.NOTEBOOK_PARAMETERS)
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {sorted(unknown)}; "
                         f"known: {sorted(parameters.NOTEBOOK_PARAMETERS)}")
    p = {**{k: v for k, v in parameters.DEFAULTS.items() if k not in PER_RUN_KEYS}, **params}
    data.check_load_args(p.get("dataset"), p.get("counts"), p.get("class_order"), p.get("selection"),
                         p.get("normalization"), p.get("dim"), p.get("spread"))
    _checks.flag(p.get("smoke", False), "smoke")
    L_values = p.get("L_values")
    if isinstance(L_values, (str, bytes)) or not isinstance(L_values, (list, tuple)) or not L_values:
        raise ValueError(f"L_values must be a non-empty list of head depths, got {L_values!r}")
    Ls = [_checks.positive_int(L, "L_values") for L in L_values]
    if len(set(Ls)) != len(Ls):
        raise ValueError(f"L_values must not repeat a depth (one run folder each), got {list(L_values)}")
    tag = p.get("run_tag")
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"run_tag must be a non-empty str (the run folders are <run_tag>-L<L>), got {tag!r}")
    try:
        names = parameters.run_names(Ls, tag)  # as the training notebook names them
    except ValueError as exc:
        raise ValueError(f"run_tag must make run folder names <run_tag>-L<L> inside out_dir: {exc}") from None
    run = {k: v for k, v in p.items() if k not in NOTEBOOK_ONLY_KEYS}
    run.update(dataset="synthetic", data_path=None, selection=data.SELECTIONS[0])  # no file read here
    for L, name in zip(Ls, names):
        parameters.checked({**run, "L": L, "run_name": name}, cuda=True)


def train_kwargs(params: Mapping, L: int) -> dict:
    """The ``nclib.train.run`` keyword arguments of one run (head depth ``L``) of a figure's notebook parameters.

    The same mapping as the training notebook (:ref:`ch-train`): the parameters less the notebook's own
    (:data:`NOTEBOOK_ONLY_KEYS`), one run per L of ``L_values`` named by :func:`nclib.parameters.run_names`
    (``<run_tag>-L<L>``).  ``params`` must pass :func:`check_run_settings` (a non-empty ``run_tag``: the figures'
    run folders are named by it), ``smoke`` must be False and ``L`` one of ``L_values``: ValueError naming the
    argument otherwise.
    Used by the stability runs (:func:`nclib.figures.stability.pair_kwargs`) and ``scripts/gpu_budget.py``.
    """
    check_run_settings(params)
    if params.get("smoke"):
        raise ValueError("params['smoke'] must be False: a smoke run replaces the figure's data and network")
    L = _checks.positive_int(L, "L")
    Ls = [int(M) for M in params["L_values"]]
    if L not in Ls:
        raise ValueError(f"L must be one of the figure's L_values {Ls}, got {L}")
    name = parameters.run_names(Ls, params["run_tag"])[Ls.index(L)]  # as the training notebook names it
    kw = {k: v for k, v in params.items() if k not in NOTEBOOK_ONLY_KEYS}
    return dict(kw, L=L, run_name=name, overwrite=True)

