"""Reading the committed runs of Figures 1-4 and checking that they are the figure's configuration.

A run folder (``results/figures/<scale>/fig<k>/fig<k>-L<L>/``) holds what :func:`nclib.train.run` writes:
``params.json``, ``history.csv`` and ``provenance.json`` (:mod:`nclib.runs`).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Mapping

import numpy as np

from .. import data, runs, ufm
from ..parameters import EXECUTION_KEYS, PLACE_KEYS
from ..runs import NC_COLUMNS, load_run, metric_epochs
from .config import HISTORY_KEYS, L_VALUES, RESULTS, check_scale, figure, figure_parameters


@dataclasses.dataclass
class Run:
    """One committed run folder: ``params.json``, ``history.csv`` (as arrays) and ``provenance.json``
    (the files :func:`nclib.train.run` writes).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""

    path: pathlib.Path
    params: dict
    history: dict
    provenance: dict

    @property
    def L(self) -> int:
        return int(self.params["L"])

    @property
    def nc3_compares(self) -> str:
        """What the run's ``nc3`` column compares, as its provenance records it
        (:func:`nclib.metrics.nc3_compares`: "modes" with a bias, "classes" without).  A run recorded without it
        was made before the bias-free NC3 compared class with class: with a bias its NC3 is the same ("modes"),
        without one it compared each block of classes of equal count as a whole, :data:`NC3_EQUAL_COUNT_BLOCKS`
        (:ref:`ch-metrics`)."""
        recorded = self.provenance.get("nc3_compares")
        if recorded is not None:
            return recorded
        return "modes" if self.params["bias"] else NC3_EQUAL_COUNT_BLOCKS


#: What the NC3 of a bias-free run recorded before the bias-free NC3 compared class with class compares: each block
#: of classes of equal count as a whole, as the blocks of equal singular value are compared with a bias
#: (:attr:`Run.nc3_compares`).  At a global minimizer it is 0 as Appendix C's is; away from one it also weighs the
#: norms of a block's classes against each other, and it does not see a class lost from a block: where the classifier
#: row and the class mean of one class are 0 and the block's other classes are aligned at one ratio of the norm of a
#: row to that of its class mean, the block adds 0 to NC3^2, while Appendix C's NC3 adds 1 to NC3^2 for the lost
#: class (:ref:`ch-fig3`, at the point next to which its L = 6 run stopped).
NC3_EQUAL_COUNT_BLOCKS = "blocks of equal counts"


def preferred_scale(fig, root=None) -> str:
    """``"gpu"`` when ``results/figures/gpu/fig<k>/`` holds the three finished runs of Figure ``fig``, else
    ``"cpu-scale"``.

    Committing a figure's GPU runs switches its chapter to them with no edit. Runs whose provenance does not
    say ``finished`` (a run stopped by its time budget) do not count.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    f = figure(fig)
    paths = run_folders(f, "gpu", root)
    finished = [p for p in paths if (p / "provenance.json").is_file()
                and json.loads((p / "provenance.json").read_text()).get("status") == "finished"]
    return "gpu" if len(finished) == len(L_VALUES) else "cpu-scale"


def run_folders(fig, scale: str = "cpu-scale", root=None) -> list[pathlib.Path]:
    """The run folders of one figure (``<root>/<scale>/fig<k>/fig<k>-L*``), sorted by L.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    f = figure(fig)
    check_scale(scale)
    root = RESULTS if root is None else pathlib.Path(root)
    base = root / scale / f"fig{f.number}"
    found = [p for p in base.glob(f"fig{f.number}-L*") if (p / "params.json").is_file()]
    return sorted(found, key=lambda p: int(json.loads((p / "params.json").read_text())["L"]))


def load_figure(fig, scale: str = "cpu-scale", root=None) -> dict[int, Run]:
    """{L: Run} of one figure's committed runs (read with ``nclib.runs.load_run``).

    Raises ValueError when the folder holds no runs or two runs with the same L.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    f = figure(fig)
    paths = run_folders(f, scale, root)
    if not paths:
        where = (RESULTS if root is None else pathlib.Path(root)) / scale / f"fig{f.number}"
        raise ValueError(f"scale {scale!r} has no runs of Figure {f.number} under {str(where)!r}")
    out: dict[int, Run] = {}
    for path in paths:
        params, history, prov = load_run(path)
        run = Run(path, params, history, prov)
        if run.L in out:
            raise ValueError(f"Figure {f.number} has two runs with L={run.L}: {out[run.L].path} and {path}")
        out[run.L] = run
    return out


def run_counts(params: Mapping) -> np.ndarray:
    """The class counts n of a run (class k has n[k] samples) from its ``params.json``: the n of Definition 4.1.

    ``counts`` is a list, a preset name (:func:`nclib.data.preset_counts` with the run's ``class_order``) or
    None (the dataset's own preset), resolved by :func:`nclib.data.resolve_counts` exactly as
    :func:`nclib.data.load` resolved them for the run.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    return data.resolve_counts(params.get("dataset"), params.get("counts"), params.get("class_order", "reference"))[0]



#: The parameters a committed run must share with its figure's configuration (``epochs`` may be lower on a
#: GPU whose time budget cannot fit the paper's 12,000; it is reported, never hidden).
CONFIG_KEYS = ("dataset", "bias", "width", "depth", "feature_dim", "batch_size", "lr", "lr_milestones", "lr_gamma",
               "lam_W", "lam_H", "lam_backbone", "init", "seed", "class_order", "selection", "normalization",
               "metric_every")


def _same_value(want, got) -> bool:
    """Whether a run's recorded parameter ``got`` is the configuration's ``want``: numbers (and lists of numbers,
    such as per-layer decays) equal to 12 digits, anything else (text, None, booleans) equal as written."""
    def numeric(v):
        if isinstance(v, (list, tuple)):
            return len(v) > 0 and all(numeric(x) for x in v)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if numeric(want) and numeric(got):
        w, g = np.asarray(want, dtype=float), np.asarray(got, dtype=float)
        return w.shape == g.shape and bool(np.allclose(g, w, rtol=1e-12, atol=0.0))
    return type(want) is type(got) and want == got


def check_run(run: Run, fig, scale: str) -> list[str]:
    """What keeps one run from being a run of Figure ``fig`` at ``scale``: its parameters against
    :func:`figure_parameters` on :data:`CONFIG_KEYS` and the class counts, its ``epochs`` (at most the scale's, at
    least one metric interval), its history (epoch 0, every ``metric_every``-th epoch and the last one, finite
    metrics), its provenance status (``finished``) and, for a run read from a folder, the folder's name:
    ``fig<k>-L<L>`` with the run's own L, and its ``run_name`` (:func:`load_figure` reads a figure's runs by their
    folders: a run under another L's name would stand beside the run of its own L).  Returns the problems, each
    naming the run's L; empty when there is none (:func:`check_figure` for a figure's runs,
    ``scripts/land_gpu_runs.py`` for one run).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    f = figure(fig)
    cfg = figure_parameters(f, scale)
    L, p = run.L, run.params
    problems = []
    if run.path is not None:
        name = pathlib.Path(run.path).name
        if name != f"fig{f.number}-L{L}":
            problems.append(f"L={L}: its folder is {name!r}, not 'fig{f.number}-L{L}' (the L of its params)")
        if p.get("run_name") != name:
            problems.append(f"L={L}: run_name = {p.get('run_name')!r}, not its folder's name {name!r}")
    for k in CONFIG_KEYS:
        want, got = cfg[k], p.get(k)
        if k in ("lam_W", "lam_H") and want == "reference":  # K x 1e-5, as nclib.train resolves it
            want = ufm.reference_decay(len(cfg["counts"]))
        if not _same_value(want, got):
            problems.append(f"L={L}: {k} = {got!r}, the figure's configuration has {want!r}")
    if run_counts(p).tolist() != list(cfg["counts"]):
        problems.append(f"L={L}: counts {run_counts(p).tolist()} differ from {cfg['counts']}")
    E, m = int(p["epochs"]), int(p["metric_every"])
    if E > cfg["epochs"] or E < m:
        problems.append(f"L={L}: epochs = {E}, expected between {m} and {cfg['epochs']}")
    expected = metric_epochs(E, m)
    got_epochs = run.history["epoch"].tolist()
    if got_epochs != expected:
        problems.append(f"L={L}: history holds {len(got_epochs)} metric epochs "
                        f"({got_epochs[:2]}...{got_epochs[-1:]}), expected {len(expected)} up to {E}")
    for k in ("objective", *HISTORY_KEYS):
        if k in runs.ADDED_COLUMNS and np.all(np.isnan(run.history[k])):  # a run made before the column existed
            continue
        if not np.all(np.isfinite(run.history[k])):
            problems.append(f"L={L}: history column {k} is not finite everywhere")
    if run.provenance.get("status") != "finished":
        problems.append(f"L={L}: provenance status is {run.provenance.get('status')!r}, not 'finished'")
    return problems


#: What a remake of runs may change (:func:`check_remake`): how and where it was trained, and the path of its data
#: file, which names the file as the remaking checkout spells it (the data themselves are compared by sha256).
REMAKE_MAY_DIFFER = (*EXECUTION_KEYS, *PLACE_KEYS, "data_path")


def check_remake(runs: Mapping[int, Run], remake: Mapping[int, Run], keys=("objective", *NC_COLUMNS)) -> float:
    """Check that ``remake`` is ``runs`` made again on a CPU of another model (``results/replica-cpu/``,
    :ref:`ch-engine`); raise ValueError naming what differs if not.  For every L: the same parameters but
    :data:`REMAKE_MAY_DIFFER`, the same data (``data_sha256``) and recorded epochs, the remake finished from a
    clean checkout and naming its CPU (``host_cpu``) while ``runs``, made before CPUs were recorded, name none.
    Returns the largest relative difference at epoch 0 (the initialization) over the history columns ``keys``:
    how far apart the two CPUs' rounding starts them (0 for a column equal in both, 0 included; a NaN, or 0 against
    a value that is not, has no finite relative difference and is refused)."""
    if not isinstance(runs, Mapping) or not isinstance(remake, Mapping) or not runs:
        raise ValueError("runs and remake must be non-empty {L: Run} mappings")
    problems = [] if sorted(remake) == sorted(runs) else [f"remake has L = {sorted(remake)}, runs {sorted(runs)}"]
    start = 0.0
    for L in sorted(set(runs) & set(remake)):
        a, b = runs[L], remake[L]
        differ = sorted(k for k in {*a.params, *b.params} - set(REMAKE_MAY_DIFFER)
                        if a.params.get(k) != b.params.get(k))
        if differ:
            problems.append(f"L={L}: parameters {differ} differ")
        if a.provenance.get("data_sha256") != b.provenance.get("data_sha256"):
            problems.append(f"L={L}: other data (data_sha256)")
        if a.history["epoch"].tolist() != b.history["epoch"].tolist():
            problems.append(f"L={L}: other recorded epochs")
        if b.provenance.get("status") != "finished" or b.provenance.get("git_dirty") is not False:
            problems.append(f"L={L}: the remake is not a finished run of a clean checkout")
        if not b.provenance.get("host_cpu") or "host_cpu" in a.provenance:
            problems.append(f"L={L}: the remake must name its CPU (host_cpu) and the runs none")
        if not problems:
            with np.errstate(divide="ignore", invalid="ignore"):  # equal values (0 in both too) differ by 0
                diff = {k: 0.0 if np.float64(b.history[k][0]) == np.float64(a.history[k][0]) else
                        abs(np.float64(b.history[k][0]) / np.float64(a.history[k][0]) - 1) for k in keys}
            broken = sorted(k for k, d in diff.items() if not np.isfinite(d))
            if broken:  # a NaN would drop out of max() and read as "the two start identical"
                problems.append(f"L={L}: no finite relative difference at epoch 0 in {broken}")
            else:
                start = max(start, *diff.values())
    if problems:
        raise ValueError("remake is not the runs made again: " + "; ".join(problems))
    return float(start)


#: How far apart, relative, :func:`compare_nc3` lets the NC2 columns of one training computed by the code of two
#: commits be: rounding in their last digits, far below any difference of the metrics' meaning.
NC2_ROUNDING = 1e-10


def compare_nc3(blocks: Mapping[int, Run], classes: Mapping[int, Run]) -> dict[int, dict]:
    """The NC3 of bias-free runs recorded before NC3 compared class with class (``blocks``,
    :data:`NC3_EQUAL_COUNT_BLOCKS`) against the same runs made again on the same CPU with Appendix C's NC3
    (``classes``, ``results/nc3-by-class/``, :ref:`ch-fig3`, :ref:`ch-fig4`).  Checked first, for every L (ValueError
    naming what differs otherwise): the same L values and parameters but :data:`REMAKE_MAY_DIFFER`, the same data
    (``data_sha256``) and CPU (``host_cpu``), both finished from clean checkouts, what each NC3 compares as named
    above, every history column but the NC2 and NC3 columns and ``wall_time`` equal number for number (the same
    training, so that the two NC3 columns are two readings of one network at every recorded epoch), and the NC2
    columns equal to within :data:`NC2_ROUNDING` relative (the code that computes them from the same network
    has changed in its last digits since the older runs).  Returns, per L, the final NC3 of each (``blocks``,
    ``classes``), the largest and smallest ratio blocks / classes over the recorded epochs (``largest``,
    ``smallest``), and the largest relative difference of the NC2 columns (``nc2_apart``)."""
    if not isinstance(blocks, Mapping) or not isinstance(classes, Mapping) or not blocks:
        raise ValueError("blocks and classes must be non-empty {L: Run} mappings")
    if sorted(blocks) != sorted(classes):
        raise ValueError(f"classes has L = {sorted(classes)}, blocks {sorted(blocks)}")
    nc2 = [k for k in runs.NC_COLUMNS if k.startswith("nc2")]
    same = [k for k in runs.REPRODUCIBLE_COLUMNS if k != "nc3" and k not in nc2]
    problems, out = [], {}
    for L in sorted(blocks):
        a, b = blocks[L], classes[L]
        differ = sorted(k for k in {*a.params, *b.params} - set(REMAKE_MAY_DIFFER)
                        if a.params.get(k) != b.params.get(k))
        if differ:
            problems.append(f"L={L}: parameters {differ} differ")
        for key in ("data_sha256", "host_cpu"):
            if a.provenance.get(key) is None or a.provenance.get(key) != b.provenance.get(key):
                problems.append(f"L={L}: {key} differs or is not recorded")
        if any(r.provenance.get("status") != "finished" or r.provenance.get("git_dirty") is not False for r in (a, b)):
            problems.append(f"L={L}: not both finished runs of clean checkouts")
        if (a.nc3_compares, b.nc3_compares) != (NC3_EQUAL_COUNT_BLOCKS, "classes"):
            problems.append(f"L={L}: NC3 compares {a.nc3_compares!r} and {b.nc3_compares!r}, not "
                            f"{NC3_EQUAL_COUNT_BLOCKS!r} and 'classes'")
        moved = [k for k in same if len(a.history[k]) != len(b.history[k])
                 or not np.array_equal(a.history[k], b.history[k], equal_nan=True)]
        if moved:
            problems.append(f"L={L}: the training differs ({moved})")
        if problems:
            continue
        nc2_apart = max(float(np.max(np.abs(np.asarray(a.history[k], dtype=float)
                                            / np.asarray(b.history[k], dtype=float) - 1))) for k in nc2)
        if not nc2_apart <= NC2_ROUNDING:
            problems.append(f"L={L}: NC2 differs by {nc2_apart:.3g} relative, more than rounding")
            continue
        ratio = np.asarray(a.history["nc3"], dtype=float) / np.asarray(b.history["nc3"], dtype=float)
        out[L] = {"blocks": float(a.history["nc3"][-1]), "classes": float(b.history["nc3"][-1]),
                  "largest": float(np.max(ratio)), "smallest": float(np.min(ratio)), "nc2_apart": nc2_apart}
    if problems:
        raise ValueError("classes is not blocks made again with another NC3: " + "; ".join(problems))
    return out


def check_figure(runs: Mapping[int, Run], fig, scale: str) -> dict:
    """Check that committed runs are the figure's configuration and complete; raise ValueError if not.

    Every run passes :func:`check_run`, and the runs are exactly L = 1, 3, 6.
    Returns ``{"epochs": {L: epochs}, "complete": True}``.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    f = figure(fig)
    problems = []
    if sorted(runs) != list(L_VALUES):
        problems.append(f"runs have L = {sorted(runs)}, expected {list(L_VALUES)}")
    for L, run in sorted(runs.items()):
        problems += check_run(run, f, scale)
    if problems:
        raise ValueError(f"Figure {f.number} ({scale}) runs do not match its configuration: " + "; ".join(problems))
    return {"epochs": {L: int(run.params["epochs"]) for L, run in sorted(runs.items())}, "complete": True}
