"""The grid of a sweep (:ref:`ch-sweeps`): the command line's ``--grid``, ``--set`` and ``--tie`` read into the grid
(parameter -> list of values), the fixed parameters and the ties, their names checked against the parameters of
:func:`nclib.train.run`, the grid's points, a relative data path made absolute for the workers, and the name of each
point's run folder.  Nothing here reads or writes a file; :mod:`nclib.sweep` plans and trains the points.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import pathlib
import re

import numpy as np

from . import parameters
from .parameters import DEFAULTS, EXECUTION_KEYS
from .runs import check_run_name

#: Parameters of :func:`nclib.train.run` that the sweep sets itself: where each run goes, whether it resumes or
#: replaces a folder, and the progress bars (one for the whole sweep instead of one per run).
SWEEP_KEYS = ("out_dir", "run_name", "resume", "overwrite", "progress")

_SAFE = re.compile(r"[^A-Za-z0-9.+-]")


def _settings(items, flag: str) -> list:
    """The texts of a flag's settings (``--grid``, ``--set``, ``--tie``), a list or tuple, as argparse gives them;
    a bare string, whose characters would be read as settings, None or a number refused naming ``flag``."""
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"{flag}: the settings must be a list of NAME=VALUE texts, one per {flag}, got {items!r}")
    return list(items)


def parse_grid(items) -> dict:
    """``["lam_W=1e-4,1e-3", "seed=0,1"]`` (the ``--grid`` arguments) -> ``{"lam_W": [1e-4, 1e-3], "seed": [0, 1]}``:
    the values are the text's items at its commas outside brackets, each read by :func:`nclib.parameters.parse_value`
    (with the parameter's name, so a text key's values stay text); ValueError naming the argument for a missing
    '=', an empty value, a value that grammar refuses, a parameter given twice, or ``items`` not a list (a bare
    string)."""
    grid: dict = {}
    for item in _settings(items, "--grid"):
        name, text = parameters.split_setting(item, "--grid")
        if name in grid:
            raise ValueError(f"--grid {name}: given twice")
        grid[name] = [parameters.parse_value(t, name, "--grid")
                      for t in parameters.split_items(text, f"--grid {name}")]
    return grid


def parse_fixed(items) -> dict:
    """``["dataset=synthetic", "counts=[4,2,1]"]`` (the ``--set`` arguments) -> ``{"dataset": "synthetic",
    "counts": [4, 2, 1]}``, each read by :func:`nclib.parameters.parse_setting`; one value each (a comma outside
    brackets, which ``--grid`` reads as several values, is refused); ValueError naming the argument otherwise, and
    naming ``--set`` where ``items`` is not a list (a bare string)."""
    fixed: dict = {}
    for item in _settings(items, "--set"):
        name, text = parameters.split_setting(item, "--set")
        if name in fixed:
            raise ValueError(f"--set {name}: given twice")
        if len(parameters.split_items(text, f"--set {name}")) > 1:
            raise ValueError(f"--set {name}: one value expected (a list goes in brackets, [a,b]); sweep several "
                             f"values with --grid")
        fixed[name] = parameters.parse_value(text, name, "--set")
    return fixed


def parse_tie(items) -> dict:
    """``["lam_H=lam_W"]`` (the ``--tie`` arguments) -> ``{"lam_H": "lam_W"}``: each tied parameter and the grid
    parameter whose value it takes (a name, never parsed as a value); ValueError naming the argument for a missing
    '=', a name given twice, or ``items`` not a list (a bare string)."""
    tie: dict = {}
    for item in _settings(items, "--tie"):
        name, text = parameters.split_setting(item, "--tie")
        if name in tie:
            raise ValueError(f"--tie {name}: given twice")
        tie[name] = text.strip()
    return tie


def plain(v):
    """A value as JSON has it: numpy scalars and arrays (``np.logspace(-4, -1, 4)``) as Python numbers and lists, a
    0-d array (``np.array(0.1)``) as its number."""
    if isinstance(v, np.ndarray):
        return plain(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def absolute_data_path(value):
    """A data path as the workers must read it: absolute, from this process's working folder (``~`` expanded), as
    ``out_dir`` is; None and other values as they are.  Every run's checked parameters
    (:func:`nclib.parameters.checked`, and so a sweep's points, :func:`nclib.sweepplan.plan`) and the call that
    ``sweep.json`` records (:func:`nclib.sweepmanifest.call_record`) hold their ``data_path`` so, since workers
    started in another folder must read the same file.  Used in :ref:`ch-sweeps`."""
    if isinstance(value, (str, pathlib.PurePath)):
        return os.path.abspath(os.path.expanduser(str(value)))
    return value


def check_names(grid: dict, fixed: dict) -> None:
    """Refuse a sweep's parameters before any run (:ref:`ch-sweeps`): ``grid`` (parameter -> list of values) and
    ``fixed`` (parameter -> value) must be dicts of parameters of :func:`nclib.train.run`, none of those the sweep
    sets itself (:data:`SWEEP_KEYS`), no execution key (:data:`nclib.parameters.EXECUTION_KEYS`) in ``grid``, none
    in both, and each of ``grid``'s values a non-empty list.  ValueError naming the argument and the parameters
    otherwise."""
    for what, d in (("grid (--grid)", grid), ("fixed (--set)", fixed)):
        if not isinstance(d, dict):
            raise ValueError(f"{what} must be a dict of parameter -> {'list of values' if d is grid else 'value'}"
                             f", got {type(d).__name__}")
        unknown = [k for k in d if k not in DEFAULTS]
        if unknown:
            raise ValueError(f"{what}: unknown parameter(s) {unknown}; the parameters of nclib.train.run are "
                             f"{sorted(DEFAULTS)}")
        own = [k for k in d if k in SWEEP_KEYS]
        if own:
            raise ValueError(f"{what}: {own} set by the sweep itself (each run goes to out_dir/<run name>, "
                             f"is resumed or replaced as its folder requires, under one progress bar)")
    execution = [k for k in grid if k in EXECUTION_KEYS]
    if execution:
        raise ValueError(f"grid (--grid): {execution} say how a call trains, not what a run is; give them in fixed "
                         f"(--set)")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ValueError(f"{both} given both in grid (--grid) and in fixed (--set)")
    for k, values in grid.items():
        if (not isinstance(values, (list, tuple, np.ndarray)) or (isinstance(values, np.ndarray) and values.ndim == 0)
                or len(values) == 0):
            raise ValueError(f"grid[{k!r}] (--grid {k}) must be a non-empty list of values, got {values!r}")


def check_tie(tie, grid: dict, fixed: dict) -> dict:
    """``tie`` (tied parameter -> grid parameter) checked against the grid and the fixed parameters: a tied
    parameter is a parameter of the run that neither the grid nor ``fixed`` sets, tied to a parameter of the grid."""
    if tie is None:
        return {}
    if not isinstance(tie, dict):
        raise ValueError(f"tie (--tie) must be a dict of parameter -> grid parameter, got {type(tie).__name__}")
    for name, to in tie.items():
        where = f"tie[{name!r}] (--tie {name})"
        if name not in DEFAULTS:
            raise ValueError(f"{where}: unknown parameter {name!r}; the parameters of nclib.train.run are "
                             f"{sorted(DEFAULTS)}")
        if name in SWEEP_KEYS or name in EXECUTION_KEYS:
            raise ValueError(f"{where}: {name} says how a call trains or is set by the sweep itself; it "
                             f"cannot follow a grid parameter")
        if name in grid:
            raise ValueError(f"{where}: {name} is also in the grid (a tied parameter takes the values of "
                             f"another)")
        if name in fixed:
            raise ValueError(f"{where}: {name} is also fixed (a tied parameter takes the values of a grid "
                             f"parameter)")
        if not isinstance(to, str) or to not in grid:
            raise ValueError(f"{where} = {to!r}: not a parameter of the grid {sorted(grid)}")
    return dict(tie)


def expand_grid(grid: dict, tie: dict | None = None) -> list[dict]:
    """Every point of ``grid`` (parameter -> list of values): the cartesian product, parameters in the order of
    :data:`nclib.train.DEFAULTS`, values in the order given (the last parameter varies fastest); ``{}`` has one
    point, ``{}``.  ``tie`` (parameter -> grid parameter, e.g. ``{"lam_H": "lam_W"}``) adds each tied parameter
    to every point with the value of the grid parameter it follows (:ref:`ch-sweeps`)."""
    check_names(grid, {})
    tie = check_tie(tie, grid, {})
    keys = [k for k in DEFAULTS if k in grid]
    points = [dict(zip(keys, combo)) for combo in itertools.product(*([plain(v) for v in grid[k]] for k in keys))]
    order = [k for k in DEFAULTS if k in grid or k in tie]
    return [{k: point[k] if k in point else point[tie[k]] for k in order} for point in points]


def _value_text(v, inner: bool = False) -> str:
    """A value's text in a run name: a list's items joined by ``_``, a list inside a list in brackets (which the
    name then replaces, adding the point's hash), so that [[1, 2], 3] and [1, [2, 3]] are named apart."""
    if v is None or isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        text = "_".join(_value_text(x, inner=True) for x in v) or "empty"
        return f"[{text}]" if inner else text
    return str(v)


def run_name_for(point: dict) -> str:
    """The run folder's name of a grid point: ``NAME-VALUE`` joined by ``_`` (``L-3_lam_W-0.001_seed-1``), only
    the characters ``A-Za-z0-9.+-_``; a value with other characters (a path, a list inside a list) is replaced by
    ``_``s and the name gets the first 8 hex digits of the point's sha256, as does a name past 120 characters;
    ``{}`` -> ``"run"``.  ValueError naming ``point`` unless a dict."""
    if not isinstance(point, dict):  # a list of pairs, say: its items are no NAME-VALUE parts
        raise ValueError(f"point must be a dict of parameter name -> value, got {type(point).__name__}")
    if not point:
        return "run"
    lossy, parts = False, []
    for k, v in point.items():
        text = _value_text(v)
        safe = _SAFE.sub("_", text)
        lossy |= safe != text
        parts.append(f"{k}-{safe}")
    name = "_".join(parts)
    if lossy or len(name) > 120:
        digest = hashlib.sha256(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = f"{name[:110]}-h{digest}"
    return check_run_name(name)  # never fails: "NAME-..." has no separator and is never "." or ".."
