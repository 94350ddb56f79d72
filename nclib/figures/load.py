"""Reading the committed runs of Figures 1-4 and checking that they are the figure's configuration.

A run folder (``results/figures/<scale>/fig<k>/fig<k>-L<L>/``) holds what :func:`nclib.train.run` writes:
``params.json``, ``history.csv`` and ``provenance.json`` (:mod:`nclib.runs`).  The checks of what the functions of
the figures package are given, a run (:class:`Run`), its parameters and its history, are here too
(:func:`checked_runs`): every module of the package reads its arguments through them.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from typing import Mapping

import numpy as np

from .. import _checks, data, provenance, runs
from ..geometry import NC3_EQUAL_COUNT_BLOCKS, recorded_nc3_compares  # noqa: F401 (re-exported)
from ..parameters import EXECUTION_KEYS, PLACE_KEYS, reference_decay
from ..runplan import device_kind
from ..runs import NC_COLUMNS, load_run, metric_epochs
from .config import HISTORY_KEYS, INPUT_DIM, L_VALUES, RESULTS, check_scale, figure, figure_parameters


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
        """What the run's ``nc3`` column compares, as its provenance records it, or, recorded before that was, as
        its bias case says (:func:`nclib.geometry.recorded_nc3_compares`: "modes" with a bias, "classes" or, made
        earlier without one, :data:`NC3_EQUAL_COUNT_BLOCKS`)."""
        return recorded_nc3_compares(self.params["bias"], self.provenance.get("nc3_compares"))


# --------------------------------------------------------------------------------------------- arguments

def checked_params(params, name: str = "params", keys=()) -> Mapping:
    """``params`` (a run's ``params.json``) checked as the functions of the figures package read it: a mapping that
    holds ``keys``.  Returns ``params``; ValueError naming ``name`` otherwise (and the keys it lacks).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if not isinstance(params, Mapping):
        raise ValueError(f"{name} must be a mapping, a run's parameters (its params.json), got {type(params).__name__}")
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(map(repr, missing))}; keys: {sorted(params)}")
    return params


def checked_history(history, name: str = "history", columns=()) -> Mapping:
    """``history`` (a run's metric history, {column: values}) checked as every function of the figures package reads
    it: a mapping with an ``epoch`` column and the ``columns`` the caller reads, every column as long as the epoch
    column (a shorter or longer column would pair its values with other epochs, or index past the records).
    Returns ``history``; ValueError naming ``name`` (and the columns it lacks) otherwise.  The functions of one
    history (:func:`nclib.figures.first_epoch`, :func:`nclib.figures.largest_rise`, ...) and, through
    :func:`checked_runs`, those of a figure's runs read their histories through it.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if not isinstance(history, Mapping):
        raise ValueError(f"{name} must be a mapping of history columns, got {type(history).__name__}")
    if "epoch" not in history:
        raise ValueError(f"{name} has no epoch column; columns: {sorted(history)}")
    if np.ndim(history["epoch"]) != 1:
        raise ValueError(f"{name}['epoch'] must be one epoch per record, got shape {np.shape(history['epoch'])}")
    size = np.shape(history["epoch"])[0]
    uneven = {k: np.shape(v)[:1] for k, v in history.items() if np.shape(v)[:1] != (size,)}
    if uneven:
        raise ValueError(f"{name} must have every column as long as its epoch column ({size} records), got {uneven}")
    missing = [k for k in columns if k not in history]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing}; columns: {sorted(history)}")
    return history


def checked_run(run, name: str = "run", columns=None) -> Run:
    """``run`` checked as the functions of the figures package read one: a :class:`Run` whose ``params`` are a
    mapping (:func:`checked_params`) and, where ``columns`` is given, whose history holds them
    (:func:`checked_history`).  Returns ``run``; ValueError naming ``name`` otherwise: a value that is no run (None,
    a path, a dict of its files) is refused before any of its attributes is read.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    if not isinstance(run, Run):
        raise ValueError(f"{name} must be a Run (a run folder as load_figure reads it), got {type(run).__name__}")
    checked_params(run.params, f"{name}.params")
    if columns is not None:
        checked_history(run.history, f"{name}.history", columns)
    return run


def checked_runs(runs, name: str = "runs", columns=()) -> Mapping:
    """``runs`` (a figure's runs, {L: :class:`Run`}) checked as every function of a figure's runs reads them: a mapping
    that holds at least one run, each passing :func:`checked_run` with the history ``columns`` the caller reads.
    Returns ``runs``; ValueError naming ``name`` (and the run's key, and the columns a history lacks) otherwise: an
    empty mapping would read as "no run stalled" or "no run spiked", and a missing column as a KeyError deep inside.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    if not isinstance(runs, Mapping) or not runs:
        got = "an empty mapping" if isinstance(runs, Mapping) else type(runs).__name__
        raise ValueError(f"{name} must hold at least one run, a mapping {{L: Run}}, got {got}")
    for key, run in runs.items():
        checked_run(run, f"{name}[{key!r}]", tuple(columns))
    return runs


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
    ValueError naming ``params`` unless a mapping (:func:`checked_params`), and what
    :func:`nclib.data.resolve_counts` raises for counts it cannot resolve.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    checked_params(params)
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


#: The kind of device on which each scale's runs are made (a scale names where its runs are made,
#: :mod:`nclib.figures.config`): the GPU runs on a CUDA device, the CPU-scale runs on a CPU.  A scale not named here
#: (a test's) is made wherever its test runs.
SCALE_DEVICES = {"gpu": "cuda", "cpu-scale": "cpu"}

#: What a run's provenance must record, and of what type, for the checks and the chapters' tables to read it
#: (:func:`provenance_problems`): what :func:`nclib.train.run` writes for every run.
PROVENANCE_TYPES = {"status": str, "git_commit": (str, type(None)), "git_dirty": (bool, type(None)),
                    "versions": dict, "device": str, "device_name": str, "precision": str, "parameter_count": int,
                    "N": int, "K": int, "steps_per_epoch": int, "dropped_per_epoch": int, "steps": int,
                    "wall_time_s": (int, float), "train_time_s": (int, float), "steps_per_s": (int, float),
                    "data": dict, "data_sha256": str, "trained_with": list}

_SHA256 = re.compile(r"[0-9a-f]{64}")


def parameter_count(params: Mapping) -> int:
    """The trainable parameters of the network of Section 5 that a run's ``params`` describe
    (:class:`nclib.models.CollapseNet`: ``depth`` Linear layers of ``width`` with biases, the feature layer of
    ``feature_dim`` (``width`` when None), then the L head layers of (4.3), W_1..W_{L-1} d x d and W_L K x d, with a
    bias b on the last where ``bias``), counted without building it: what the run's provenance records as
    ``parameter_count``.  The input is :data:`nclib.figures.INPUT_DIM` pixels (the letters are made 32 x 32 x 3 as
    CIFAR-10's images are), ``dim`` for the ``synthetic`` data.  ValueError naming ``params`` where a key is missing
    or not a positive whole number.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    checked_params(params)
    try:
        w, depth, L = (_checks.positive_int(params[k], f"params[{k!r}]") for k in ("width", "depth", "L"))
        d = w if params.get("feature_dim") is None else _checks.positive_int(params["feature_dim"],
                                                                            "params['feature_dim']")
        n_in = _checks.positive_int(params["dim"], "params['dim']") if params["dataset"] == "synthetic" else INPUT_DIM
        K = len(run_counts(params))
        bias = params["bias"]
    except KeyError as exc:
        raise ValueError(f"params lacks {exc.args[0]!r}, which the network's size needs") from None
    if not isinstance(bias, bool):
        raise ValueError(f"params['bias'] must be True or False, got {bias!r}")
    backbone = n_in * w + w + (depth - 1) * (w * w + w) + w * d + d
    return backbone + (L - 1) * d * d + K * d + (K if bias else 0)


#: What a run's data record (its provenance's ``data``, written by :func:`nclib.data.load`) names as its parameters
#: do, besides the class counts (:func:`provenance_problems`): the data the run was trained on are those its
#: parameters choose.
DATA_RECORD_KEYS = ("dataset", "class_order", "selection", "seed", "normalization")


def _steps_problems(run: Run, N: int) -> list[str]:
    """What keeps the steps a run's provenance records from being those of its parameters with ``N`` samples: the
    batch size B (``batch_size``, N for ``"full"``) gives ``steps_per_epoch`` = N // B and ``dropped_per_epoch`` =
    N mod B (the last partial batch of each epoch is left out, :class:`nclib.engine.Engine`), and ``steps`` counts
    every step of every call that trained it (a resumed run goes on from its checkpoint's count): ``epochs`` x
    ``steps_per_epoch`` for a finished run, at most that and at least as many as the epochs of its last history row
    take for one that ended otherwise (a diverged run may train past the row that showed it).  Empty when there is
    none; each problem names the run's L (:func:`provenance_problems`)."""
    prov, p = run.provenance, run.params
    who = f"L={p.get('L')}"
    batch = N if p.get("batch_size") == "full" else p.get("batch_size")
    epochs = p.get("epochs")
    if (not isinstance(batch, int) or isinstance(batch, bool) or not 0 < batch <= N
            or not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0):
        return [f"{who}: its parameters batch_size = {p.get('batch_size')!r}, epochs = {epochs!r} do not say how "
                f"many steps it trained"]
    per = N // batch
    recorded = {k: prov.get(k) for k in ("steps_per_epoch", "dropped_per_epoch", "steps")}
    if (recorded["steps_per_epoch"], recorded["dropped_per_epoch"]) != (per, N - per * batch):
        return [f"{who}: provenance steps_per_epoch = {recorded['steps_per_epoch']!r}, dropped_per_epoch = "
                f"{recorded['dropped_per_epoch']!r}; its {N:,} samples in batches of {batch:,} give {per:,} and "
                f"{N - per * batch:,}"]
    steps, most = recorded["steps"], epochs * per
    if prov.get("status") == "finished":
        if steps != most:
            return [f"{who}: provenance steps = {steps!r}, a finished run of {epochs:,} epochs of {per:,} steps "
                    f"trains {most:,}"]
        return []
    recorded_epochs = np.asarray(run.history.get("epoch", []) if isinstance(run.history, Mapping) else [])
    least = int(recorded_epochs[-1]) * per if recorded_epochs.size else 0
    if not isinstance(steps, int) or not least <= steps <= most:
        return [f"{who}: provenance steps = {steps!r}, not between the {least:,} of its last recorded epoch and "
                f"the {most:,} of its {epochs:,} epochs"]
    return []


def provenance_problems(run: Run, device: str | None = None) -> list[str]:
    """What keeps a run's ``provenance.json`` from being the record of the run its ``params.json`` describe, each
    problem naming the run's L and the key: a key of :data:`PROVENANCE_TYPES` missing or of another type; the precision
    of the products (``precision``) other than the parameters'; the kind of device (:func:`nclib.runplan.device_kind` of
    ``device``) other than ``device`` (``"cpu"`` or ``"cuda"``; None: the parameters' where they name one, any where
    they say ``"auto"``); ``data_sha256`` not a sha256, or not the one its data record (``data``) holds;
    ``parameter_count`` other than :func:`parameter_count` of the parameters; ``N`` and ``K`` other than the run's
    class counts (:func:`run_counts`); the data record's class counts and :data:`DATA_RECORD_KEYS` (its data set,
    class order, selection, seed and normalization) other than the parameters'; ``steps_per_epoch`` and
    ``dropped_per_epoch`` other than N // B and N mod B for the parameters' batch size B (N for ``"full"``), and
    ``steps`` other than what ``epochs`` of them make; ``trained_with`` not a list of other runs' names (its own
    among them, or one twice).  Empty when there is none.  What the runs were made from
    (:func:`made_clean_problems`) and with whom (:func:`check_run`, :func:`together_problems`) is checked apart.
    ValueError for ``device`` other than None, ``"cpu"`` or ``"cuda"``.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be None, 'cpu' or 'cuda', got {device!r}")
    prov, p = checked_run(run).provenance, run.params
    who = f"L={p.get('L')}"
    if not isinstance(prov, Mapping):
        return [f"{who}: its provenance is not a mapping"]
    problems = []
    for key, kind in PROVENANCE_TYPES.items():
        value = prov.get(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if key not in prov or not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            problems.append(f"{who}: provenance {key} = {value!r} is missing or not of the type nclib.train writes")
    if problems:
        return problems
    if not isinstance(prov["versions"].get("torch"), str):
        problems.append(f"{who}: provenance versions does not name torch")
    if prov["precision"] != p.get("precision"):
        problems.append(f"{who}: provenance precision {prov['precision']!r}, its parameters {p.get('precision')!r}")
    want = device if device is not None else device_kind(p.get("device"))
    got = device_kind(prov["device"])
    if got is None or (want is not None and got != want):
        problems.append(f"{who}: provenance device {prov['device']!r}, "
                        f"{'not cpu or cuda' if want is None else f'not on a {want} device'}")
    sha, recorded = prov["data_sha256"], prov["data"].get("data_sha256", prov["data_sha256"])
    if not _SHA256.fullmatch(sha):
        problems.append(f"{who}: provenance data_sha256 {sha!r} is not a sha256")
    elif sha != recorded:
        problems.append(f"{who}: provenance data_sha256 {sha[:12]}... differs from its data record's "
                        f"{str(recorded)[:12]}...")
    try:
        size, counts = parameter_count(p), run_counts(p)
    except ValueError as exc:
        return problems + [f"{who}: its parameters do not describe a network ({exc})"]
    if prov["parameter_count"] != size:
        problems.append(f"{who}: provenance parameter_count {prov['parameter_count']:,}, the network of its "
                        f"parameters has {size:,}")
    if (prov["N"], prov["K"]) != (int(counts.sum()), counts.size):
        problems.append(f"{who}: provenance N = {prov['N']}, K = {prov['K']}, its class counts give "
                        f"{int(counts.sum())} and {counts.size}")
    record = prov["data"]
    if record.get("counts") != counts.tolist():
        problems.append(f"{who}: provenance data counts {record.get('counts')!r}, its parameters give "
                        f"{counts.tolist()}")
    for key in DATA_RECORD_KEYS:
        if key not in record or not _same_value(p.get(key), record[key]):
            problems.append(f"{who}: provenance data {key} = {record.get(key)!r}, its parameters {p.get(key)!r}")
    problems += _steps_problems(run, int(counts.sum()))
    names = prov["trained_with"]
    if (not all(isinstance(n, str) for n in names) or len(set(names)) != len(names)
            or p.get("run_name") in names):
        problems.append(f"{who}: provenance trained_with {names!r} is not a list of other runs' names")
    return problems


def made_clean_problems(run: Run) -> list[str]:
    """What keeps a run from being made from a clean checkout of a commit, as committed results are
    (``results/README.md``): ``git_dirty`` not False (True: uncommitted changes; None: no git), at the start or in
    any later call that resumed the run (its ``segments``), or False beside the changed files or their hash that only
    a checkout with changes records (``git_dirty_paths`` not empty, ``git_diff_sha256`` not None:
    :func:`nclib.provenance.git_state`); ``git_commit`` not a commit hash, or a call of its ``segments`` at another
    commit (``nclib.train`` resumes a run only at the commit that started it).  Empty when there is none; each
    problem names the run's L.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    checked_run(run)
    prov = run.provenance if isinstance(run.provenance, Mapping) else {}
    who = f"L={run.params.get('L')}"
    problems = []
    if prov.get("git_dirty") is not False:
        problems.append(f"{who}: not made from a clean commit: git_dirty = {prov.get('git_dirty')!r}")
    elif prov.get("git_dirty_paths") or prov.get("git_diff_sha256") is not None:
        problems.append(f"{who}: not made from a clean commit: git_dirty = False beside changed files "
                        f"(git_dirty_paths {prov.get('git_dirty_paths')!r}, git_diff_sha256 "
                        f"{prov.get('git_diff_sha256')!r})")
    segments = prov.get("segments", [])
    if not isinstance(segments, list) or any(not isinstance(s, Mapping) or s.get("git_dirty") is not False
                                             or s.get("git_diff_sha256") is not None for s in segments):
        problems.append(f"{who}: not made from a clean commit: a call that trained it records git_dirty other "
                        f"than False, or changed files (segments)")
    if not isinstance(prov.get("git_commit"), str) or not provenance.COMMIT_HASH.fullmatch(prov["git_commit"]):
        problems.append(f"{who}: git_commit {prov.get('git_commit')!r} is not a commit hash")
    elif isinstance(segments, list):
        other = [s.get("git_commit") if isinstance(s, Mapping) else None for s in segments]
        other = [c for c in other if c != prov["git_commit"]]
        if other:
            problems.append(f"{who}: a call that trained it (segments) records git_commit {other[0]!r}, the run "
                            f"{prov['git_commit']!r}: a run is trained at one commit")
    return problems


def commit_problems(runs: Mapping[int, Run], name: str = "") -> list[str]:
    """A problem for each run of ``runs`` ({L: Run}) whose ``git_commit``, or the ``git_commit`` of a call that
    trained it (its ``segments``), :func:`nclib.provenance.unknown_commits` finds outside the history of this
    checkout, naming its L (and ``name``, which runs they are); empty where git cannot say.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    if not isinstance(runs, Mapping) or not all(isinstance(r, Run) for r in runs.values()):
        raise ValueError(f"runs must be a {{L: Run}} mapping, got {type(runs).__name__}")

    def recorded(prov) -> list[tuple[str, str]]:  # (where, commit): the run's, then each call's
        if not isinstance(prov, Mapping):
            return []
        segments = prov.get("segments") if isinstance(prov.get("segments"), list) else []
        calls = [("git_commit", prov.get("git_commit"))] + [(f"segment {i}'s git_commit", s.get("git_commit"))
                                                          for i, s in enumerate(segments) if isinstance(s, Mapping)]
        return [(where, c) for where, c in calls if isinstance(c, str)]
    commits = {L: recorded(r.provenance) for L, r in sorted(runs.items())}
    unknown = provenance.unknown_commits(sorted({c for calls in commits.values() for _, c in calls}))
    if not unknown:
        return []
    return [f"L={L}{' of ' + name if name else ''}: {where} {c!r} is not a commit in the history of this checkout"
            for L, calls in commits.items() for where, c in calls if c in unknown]


def one_call(a: Run, b: Run) -> bool:
    """Whether runs ``a`` and ``b`` can be runs of one :func:`nclib.train.run_many` call, as their provenance says:
    not where each records a ``started_utc`` (when the call that started it began, the same for every run of that
    call, and kept when the run is resumed) and the two differ.  A name in ``trained_with`` is a partner's only at
    the time of training: the run of that name that records another ``started_utc`` was started by another call (a
    partner left out when its runs were landed, made again later), and is not the run trained beside it.  What
    :func:`together_problems` and :func:`nclib.figures.wall_time_s` link runs by.  ValueError naming ``a`` or
    ``b`` unless a :class:`Run`.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    checked_run(a, "a")
    checked_run(b, "b")
    started = [r.provenance.get("started_utc") if isinstance(r.provenance, Mapping) else None for r in (a, b)]
    return not (all(isinstance(t, str) for t in started) and started[0] != started[1])


def together_problems(runs: Mapping, name: str = "") -> list[str]:
    """What keeps runs that were trained side by side from being one training: a run of ``runs`` (a mapping of
    :class:`Run`) whose ``trained_with`` names another of them (by its ``run_name``) that records the same
    ``started_utc`` (the name alone where either records none), at another ``git_commit``.  One
    :func:`nclib.train.run_many` call trains its runs in one process, from one checkout, so its runs record one
    commit and one ``started_utc``; a run of the name ``trained_with`` gives that records another ``started_utc`` is
    another run of that name (the partner left out of a landing and made again by a later call,
    ``scripts/land_gpu_runs.py``), not compared.  Each problem names the two runs (and ``name``, which runs they
    are); empty when there is none.
    ValueError for ``runs`` other than a mapping of Run.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    if not isinstance(runs, Mapping) or not all(isinstance(r, Run) for r in runs.values()):
        raise ValueError(f"runs must be a mapping of Run, got {type(runs).__name__}")
    named = {r.params.get("run_name"): r for r in runs.values() if isinstance(r.provenance, Mapping)}
    where = f" of {name}" if name else ""
    problems = []
    for run_name, run in sorted(named.items(), key=lambda kv: str(kv[0])):
        together = run.provenance.get("trained_with")
        names = {n for n in together if isinstance(n, str)} if isinstance(together, list) else set()
        for other in sorted(n for n in names & set(named) if one_call(run, named[n])):
            a, b = run.provenance.get("git_commit"), named[other].provenance.get("git_commit")
            if a != b:
                problems.append(f"{run_name}{where}: git_commit {a!r}, but {other}, trained beside it "
                                f"(trained_with), records {b!r}")
    return problems


def check_run(run: Run, fig, scale: str) -> list[str]:
    """What keeps one run from being a run of Figure ``fig`` at ``scale``: its parameters against
    :func:`figure_parameters` on :data:`CONFIG_KEYS` and the class counts, its ``epochs`` (at most the scale's, at
    least one metric interval), its history (epoch 0, every ``metric_every``-th epoch and the last one, finite
    metrics), its provenance status (``finished``) and, for a run read from a folder, the folder's name:
    ``fig<k>-L<L>`` with the run's own L, and its ``run_name`` (:func:`load_figure` reads a figure's runs by their
    folders: a run under another L's name would stand beside the run of its own L).  Its provenance must be the
    record of its parameters (:func:`provenance_problems`, on the scale's kind of device, :data:`SCALE_DEVICES`:
    a CUDA device for ``"gpu"``, the CPU for ``"cpu-scale"``), made from a clean commit
    (:func:`made_clean_problems`), and trained beside none but the figure's other runs (``trained_with``: a run
    whose provenance is another L's names its own folder there).  Returns the problems, each naming the run's L;
    empty when there is none (:func:`check_figure` for a figure's runs, ``scripts/land_gpu_runs.py`` for one run).
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`."""
    f = figure(fig)
    cfg = figure_parameters(f, scale)
    L, p = checked_run(run, columns=()).L, run.params
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
            want = reference_decay(len(cfg["counts"]))
        if not _same_value(want, got):
            problems.append(f"L={L}: {k} = {got!r}, the figure's configuration has {want!r}")
    if run_counts(p).tolist() != list(cfg["counts"]):
        problems.append(f"L={L}: counts {run_counts(p).tolist()} differ from {cfg['counts']}")
    E, m = int(p["epochs"]), int(p["metric_every"])
    if E > cfg["epochs"] or E < m:
        problems.append(f"L={L}: epochs = {E}, expected between {m} and {cfg['epochs']}")
    expected = metric_epochs(E, m)
    got_epochs = np.asarray(run.history["epoch"]).tolist()
    if got_epochs != expected:
        problems.append(f"L={L}: history holds {len(got_epochs)} metric epochs "
                        f"({got_epochs[:2]}...{got_epochs[-1:]}), expected {len(expected)} up to {E}")
    lacking = [k for k in ("objective", *HISTORY_KEYS) if k not in run.history]
    if lacking:
        problems.append(f"L={L}: history lacks the column(s) {lacking}")
    for k in ("objective", *HISTORY_KEYS):
        if k in lacking:
            continue
        if k in runs.ADDED_COLUMNS and np.all(np.isnan(run.history[k])):  # a run made before the column existed
            continue
        if not np.all(np.isfinite(run.history[k])):
            problems.append(f"L={L}: history column {k} is not finite everywhere")
    if run.provenance.get("status") != "finished":
        problems.append(f"L={L}: provenance status is {run.provenance.get('status')!r}, not 'finished'")
    problems += provenance_problems(run, SCALE_DEVICES.get(scale)) + made_clean_problems(run)
    together, others = run.provenance.get("trained_with"), {f"fig{f.number}-L{M}" for M in L_VALUES if M != L}
    if isinstance(together, list) and not set(together) <= others:
        problems.append(f"L={L}: provenance trained_with {together!r} names runs other than the figure's "
                        f"{sorted(others)}")
    return problems


#: What a remake of runs may change (:func:`check_remake`): how and where it was trained, and the path of its data
#: file, which names the file as the remaking checkout spells it (the data themselves are compared by sha256).
REMAKE_MAY_DIFFER = (*EXECUTION_KEYS, *PLACE_KEYS, "data_path")


def _made_again_problems(L: int, a: Run, b: Run, names=("runs", "remake")) -> list[str]:
    """What keeps run ``b`` from being run ``a`` made again, as far as their parameters and provenance say (what
    :func:`check_remake` and :func:`compare_nc3` ask of each pair): the same parameters but
    :data:`REMAKE_MAY_DIFFER`; each finished, the record of its parameters (:func:`provenance_problems`) made from a
    clean commit (:func:`made_clean_problems`); on one kind of device, with one torch version, beside the same runs.
    Each problem names the L and, where it is one run's, which (``names``: what ``a`` and ``b`` are)."""
    problems = []
    differ = sorted(k for k in {*a.params, *b.params} - set(REMAKE_MAY_DIFFER) if a.params.get(k) != b.params.get(k))
    if differ:
        problems.append(f"L={L}: parameters {differ} differ")
    problems += [f"L={L}: not a finished run: status {r.provenance.get('status')!r} ({which})"
                 for which, r in zip(names, (a, b)) if r.provenance.get("status") != "finished"]
    records = [f"{p} ({which})" for which, r in zip(names, (a, b))
               for p in provenance_problems(r) + made_clean_problems(r)]
    if records:
        return problems + records
    kinds = [device_kind(r.provenance["device"]) for r in (a, b)]
    torches = [r.provenance["versions"]["torch"] for r in (a, b)]
    together = [sorted(r.provenance["trained_with"]) for r in (a, b)]
    for what, pair in (("device", kinds), ("torch", torches), ("trained_with", together)):
        if pair[0] != pair[1]:
            problems.append(f"L={L}: {what} {pair[1]!r} made again, {pair[0]!r} first")
    return problems


def check_remake(runs: Mapping[int, Run], remake: Mapping[int, Run], keys=("objective", *NC_COLUMNS)) -> float:
    """Check that ``remake`` is ``runs`` made again on a CPU of another model (``results/replica-cpu/``,
    :ref:`ch-engine`); raise ValueError naming what differs if not.  For every L: the same parameters but
    :data:`REMAKE_MAY_DIFFER`, the same data (``data_sha256``) and recorded epochs, both finished, the remake
    naming its CPU (``host_cpu``), and where ``runs`` name theirs, another one (the remake is
    there for another CPU model's rounding); runs made before CPUs were recorded name none, and pass; the same
    reading of NC3 (:attr:`Run.nc3_compares`: a bias-free run made since NC3 compared class with class against one
    made before is two quantities in one column); both the records of their parameters (:func:`provenance_problems`)
    made from clean commits (:func:`made_clean_problems`) of this repository where git can say
    (:func:`nclib.provenance.unknown_commits`), on one kind of device, with one torch version and beside the same
    runs (``trained_with``), the runs trained side by side at one commit (:func:`together_problems`).
    Returns the largest relative difference at epoch 0 (the initialization) over the history columns ``keys``:
    how far apart the two CPUs' rounding starts them (0 for a column equal in both, 0 included; a NaN, or 0 against
    a value that is not, has no finite relative difference and is refused)."""
    checked_runs(runs, "runs", keys)
    checked_runs(remake, "remake", keys)
    problems = [] if sorted(remake) == sorted(runs) else [f"remake has L = {sorted(remake)}, runs {sorted(runs)}"]
    start = 0.0
    for L in sorted(set(runs) & set(remake)):
        a, b = runs[L], remake[L]
        if a.provenance.get("data_sha256") != b.provenance.get("data_sha256"):
            problems.append(f"L={L}: other data (data_sha256)")
        if a.history["epoch"].tolist() != b.history["epoch"].tolist():
            problems.append(f"L={L}: other recorded epochs")
        cpu, first = b.provenance.get("host_cpu"), a.provenance.get("host_cpu")
        if not cpu:
            problems.append(f"L={L}: the remake must name its CPU (host_cpu)")
        elif first and first == cpu:  # runs made before CPUs were recorded name none: nothing to compare
            problems.append(f"L={L}: the remake must be made on another CPU than the runs, which name the same "
                            f"(host_cpu {cpu!r})")
        if a.nc3_compares != b.nc3_compares:  # two readings of NC3 (a bias-free run made before and since)
            problems.append(f"L={L}: NC3 compares {b.nc3_compares!r} in the remake, {a.nc3_compares!r} in the runs")
        problems += _made_again_problems(L, a, b)
        if not problems:
            with np.errstate(divide="ignore", invalid="ignore"):  # equal values (0 in both too) differ by 0
                diff = {k: 0.0 if np.float64(b.history[k][0]) == np.float64(a.history[k][0]) else
                        abs(np.float64(b.history[k][0]) / np.float64(a.history[k][0]) - 1) for k in keys}
            broken = sorted(k for k, d in diff.items() if not np.isfinite(d))
            if broken:  # a NaN would drop out of max() and read as "the two start identical"
                problems.append(f"L={L}: no finite relative difference at epoch 0 in {broken}")
            else:
                start = max(start, *diff.values())
    problems += together_problems(runs, "runs") + together_problems(remake, "remake")
    problems += commit_problems(runs, "runs") + commit_problems(remake, "remake")
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
    (``data_sha256``) and CPU (``host_cpu``), both finished from clean checkouts, each the record of its
    parameters on one kind of device with one torch version, beside the same runs (those trained side by side at one
    commit, :func:`together_problems`) and from commits of this repository where git can say (as
    :func:`check_remake` asks of a remake), what each NC3 compares as named above, every history column but the
    NC2 and NC3 columns and ``wall_time`` equal number for number (the same training, so that the two NC3 columns
    are two readings of one network at every recorded epoch), and the NC2 columns (``nc2_w``, ``nc2_h``,
    ``nc2_wh``) equal to within :data:`NC2_ROUNDING` relative at every recorded epoch (the code that computes them
    from the same network has changed in its last digits since the older runs; a NaN in either is refused).
    Returns, per L, the final NC3 of each (``blocks``, ``classes``), the largest and smallest ratio blocks / classes
    over the recorded epochs (``largest``, ``smallest``), and the largest relative difference of the NC2 columns
    (``nc2_apart``)."""
    checked_runs(blocks, "blocks", runs.REPRODUCIBLE_COLUMNS)
    checked_runs(classes, "classes", runs.REPRODUCIBLE_COLUMNS)
    if sorted(blocks) != sorted(classes):
        raise ValueError(f"classes has L = {sorted(classes)}, blocks {sorted(blocks)}")
    nc2 = ["nc2_w", "nc2_h", "nc2_wh"]
    same = [k for k in runs.REPRODUCIBLE_COLUMNS if k != "nc3" and k not in nc2]
    problems, out = [], {}
    for L in sorted(blocks):
        a, b = blocks[L], classes[L]
        for key in ("data_sha256", "host_cpu"):
            if a.provenance.get(key) is None or a.provenance.get(key) != b.provenance.get(key):
                problems.append(f"L={L}: {key} differs or is not recorded")
        problems += _made_again_problems(L, a, b, ("blocks", "classes"))
        if (a.nc3_compares, b.nc3_compares) != (NC3_EQUAL_COUNT_BLOCKS, "classes"):
            problems.append(f"L={L}: NC3 compares {a.nc3_compares!r} and {b.nc3_compares!r}, not "
                            f"{NC3_EQUAL_COUNT_BLOCKS!r} and 'classes'")
        moved = [k for k in same if len(a.history[k]) != len(b.history[k])
                 or not np.array_equal(a.history[k], b.history[k], equal_nan=True)]
        if moved:
            problems.append(f"L={L}: the training differs ({moved})")
        if problems:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 and a NaN give NaN, refused below
            apart = {k: np.abs(np.asarray(a.history[k], dtype=float) / np.asarray(b.history[k], dtype=float) - 1)
                     for k in nc2}
        unread = [k for k, d in apart.items() if np.isnan(d).any()]
        if unread:  # max() would drop a NaN that does not come first, and read it as "equal"
            problems.append(f"L={L}: NC2 has no relative difference (NaN) at some epoch in {unread}")
            continue
        nc2_apart = max(float(np.max(d)) for d in apart.values())
        if not nc2_apart <= NC2_ROUNDING:
            problems.append(f"L={L}: NC2 differs by {nc2_apart:.3g} relative, more than rounding")
            continue
        ratio = np.asarray(a.history["nc3"], dtype=float) / np.asarray(b.history["nc3"], dtype=float)
        out[L] = {"blocks": float(a.history["nc3"][-1]), "classes": float(b.history["nc3"][-1]),
                  "largest": float(np.max(ratio)), "smallest": float(np.min(ratio)), "nc2_apart": nc2_apart}
    problems += together_problems(blocks, "blocks") + together_problems(classes, "classes")
    problems += commit_problems(blocks, "blocks") + commit_problems(classes, "classes")
    if problems:
        raise ValueError("classes is not blocks made again with another NC3: " + "; ".join(problems))
    return out


def check_figure(runs: Mapping[int, Run], fig, scale: str) -> dict:
    """Check that committed runs are the figure's configuration and complete; raise ValueError if not.

    Every run passes :func:`check_run`, the runs are exactly L = 1, 3, 6, they record one training set
    (``data_sha256``) and one torch version, and those trained side by side one commit (:func:`together_problems`).
    Returns ``{"epochs": {L: epochs}}``, the epochs each run trained (at most the scale's: a GPU's time budget may
    cut them, :data:`CONFIG_KEYS`), which the chapters read as :attr:`nclib.figures.FigureChapter.check`.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`.
    """
    f = figure(fig)
    problems = []
    if sorted(runs) != list(L_VALUES):
        problems.append(f"runs have L = {sorted(runs)}, expected {list(L_VALUES)}")
    for L, run in sorted(runs.items()):
        problems += check_run(run, f, scale)
    problems += together_problems(runs)  # the runs trained side by side: one commit
    # one training set and one torch: the figure's runs are one experiment (worded as scripts/land_gpu_runs.py's)
    for what, value in (("data_sha256", lambda r: r.provenance.get("data_sha256")),
                        ("torch", lambda r: (r.provenance.get("versions") or {}).get("torch"))):
        values = {L: value(run) for L, run in sorted(runs.items())}
        if len(set(map(json.dumps, values.values()))) > 1:
            problems.append(f"the runs differ in {what}: " + ", ".join(f"L={L} {v}" for L, v in values.items()))
    if problems:
        raise ValueError(f"Figure {f.number} ({scale}) runs do not match its configuration: " + "; ".join(problems))
    return {"epochs": {L: int(run.params["epochs"]) for L, run in sorted(runs.items())}}
