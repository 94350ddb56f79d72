"""The runs of minority collapse read back and placed among the critical points of Lemma A.2 (chapters
:ref:`ch-minority` and :ref:`ch-minority-runs`).

The unconstrained feature model trained by Adam (the tables ``ufm-PROFILE.csv`` of ``scripts/minority_runs.py``,
read by :func:`nclib.ufmtrain.read_ufm_table`): :func:`ufm_frame` reads the tables of both profiles in a folder
into one frame, with each run's decay over its last threshold and its modes alive counted again from its strengths
(:func:`count_alive`); :func:`place_deep_runs` says where each run with L >= 2 ended: at the global minimum, at a
*partial collapse* (the critical point of (4.3) that keeps exactly the run's alive modes at their nonzero minimizer
and puts every other at x = 0 of Lemma A.2, :func:`nclib.minority.partial_minimum`) or at neither, a *jumped* run;
:func:`seed_spread` says where the seeds of a setting trained at several seeds end apart.
A run is at a critical point when its objective is within a relative :data:`nclib.ufmtrain.AT_MINIMUM_GAP` of the
point's value (:func:`at_critical_value`), the measure by which a run is at the global minimum.

The 6-layer MLP (the run folders of one :mod:`nclib.sweep` per L): :func:`mlp_frame` reads each run's last records
beside the global minimizer of the UFM with the same class counts, L and decays (the classes it classifies, its
minimum) and the critical point of Lemma A.2 whose value is nearest the run's objective
(:func:`nclib.minority.nearest_partial_minimum`).  Whether a run's record of its making holds up is the business of
:mod:`nclib.figures` and of the chapters, not of this module.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np
import pandas as pd

from . import _checks, minority, runs, sweeptable, ufm, ufmtrain

#: The profiles of the UFM tables, one table each (``ufm-PROFILE.csv``): Section 5's CIFAR-10 and EMNIST-letters
#: profiles, their counts divided by :data:`nclib.ufmtrain.COUNT_DIVISOR`.
PROFILES = ("cifar10", "emnist-letters")

#: The bands of lambda / lambda_last by which the chapter pools the runs with L >= 2 (:func:`place_deep_runs`).
BANDS = ((0.0, 0.3, "below 0.3"), (0.3, 1.0, "0.3 to 1"), (1.0, 2.0, "above 1"))

_UFM_NEEDS = ("profile", "bias", "L", "lam", "value", "s", "modes_theory")


def at_critical_value(value, point) -> bool:
    """Whether the objective (4.3) ``value`` of a run is at the value ``point`` of a critical point of Lemma A.2:
    within a relative :data:`nclib.ufmtrain.AT_MINIMUM_GAP` of it, as a run at the global minimum is
    (:func:`nclib.ufmtrain.at_global_minimum`).  ValueError naming ``value`` or ``point`` where it is not a finite
    positive number (the objective with positive decays is positive)."""
    value = _checks.positive_float(value, "value")
    point = _checks.positive_float(point, "point")
    return abs(value - point) <= ufmtrain.AT_MINIMUM_GAP * point


def _frame(frame, needs, name: str = "frame") -> pd.DataFrame:
    """``frame`` checked to be a DataFrame with the columns ``needs``; ValueError naming ``name`` otherwise."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in needs if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing} of a table of UFM runs")
    return frame


def count_alive(frame, tol: float = minority.ALIVE_TOL) -> pd.DataFrame:
    """A copy of a frame of UFM runs (:func:`ufm_frame`) with the modes alive in each run counted again from its
    strengths ``s`` at the tolerance ``tol`` (``alive``, :func:`nclib.minority.alive_modes`: a mode alive above
    ``tol`` times its own kappa_k of Theorems 4.1-4.3), and what follows: ``modes_alive``, ``at_origin`` (every
    mode dead), ``fewer_modes`` and ``more_modes`` (than the global minimizer keeps, ``modes_theory``).
    ValueError naming ``tol`` unless it lies in (0, 1), naming ``frame`` where it is no such frame."""
    frame = _frame(frame, _UFM_NEEDS).copy()
    tol = _checks.positive_float(tol, "tol")
    if not tol < 1:
        raise ValueError(f"tol must lie below 1 (a fraction of kappa_k), got {tol!r}")
    frame["alive"] = [minority.alive_modes(r["s"], minority.problem_spectrum(ufmtrain.table_counts(r["profile"]),
                                                                             bool(r["bias"])), tol)
                      for _, r in frame.iterrows()]
    frame["modes_alive"] = [int(a.sum()) for a in frame["alive"]]
    frame["at_origin"] = [not a.any() for a in frame["alive"]]
    frame["fewer_modes"] = frame["modes_alive"] < frame["modes_theory"]
    frame["more_modes"] = frame["modes_alive"] > frame["modes_theory"]
    return frame


def _folder(folder) -> pathlib.Path:
    """``folder`` as a path: ValueError naming it where it is no path (a str or os.PathLike) or an empty one."""
    if isinstance(folder, bytes) or not isinstance(folder, (str, os.PathLike)) or not str(folder):
        raise ValueError(f"folder must be the path of a folder, got {folder!r}")
    return pathlib.Path(folder)


def ufm_frame(folder) -> pd.DataFrame:
    """The UFM runs of both profiles (:data:`PROFILES`) in ``folder`` (its ``ufm-PROFILE.csv``, read by
    :func:`nclib.ufmtrain.read_ufm_table`, floats to the last bit), one row per run in the tables' order, with:
    ``rel``, its decay over the last threshold of its profile, L and bias (the largest collapse decay lambda_k of
    Theorem 4.3, :func:`nclib.minority.mode_thresholds`, at the table's counts); ``global``, whether it ends at the
    global minimum (:func:`nclib.ufmtrain.at_global_minimum`); ``classes_lost``, how many fewer classes it
    classifies than the global minimizer; and the modes alive counted again by :func:`count_alive`, the file's own
    count kept as ``file_modes_alive``.  ValueError naming ``folder`` where it is no path or a profile's table is
    missing."""
    folder = _folder(folder)
    missing = [p for p in PROFILES if not (folder / f"ufm-{p}.csv").is_file()]
    if missing:
        raise ValueError(f"folder {str(folder)!r} has no UFM table of {missing} (ufm-PROFILE.csv)")
    frames = []
    for profile in PROFILES:
        rows = ufmtrain.read_ufm_table(folder / f"ufm-{profile}.csv")
        columns = [c for c in ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS if c in rows[0]]
        frames.append(pd.DataFrame(rows, columns=columns))
    frame = pd.concat(frames, ignore_index=True)
    frame["rel"] = np.nan
    for (profile, bias, L), group in frame.groupby(["profile", "bias", "L"]):
        last = minority.mode_thresholds(ufmtrain.table_counts(profile), int(L), bool(bias))["lam"].max()
        frame.loc[group.index, "rel"] = group["lam"] / last
    frame["file_modes_alive"] = frame["modes_alive"]
    frame["global"] = ufmtrain.at_global_minimum(frame["gap"])
    frame["classes_lost"] = frame["classes_theory"] - frame["classes_correct"]
    return count_alive(frame)


def _at_partial_collapse(row) -> bool:
    """Whether a run sits at the critical point that keeps exactly its own alive modes (the others at x = 0)."""
    n, lam, L, bias = ufmtrain.table_counts(row["profile"]), row["lam"], int(row["L"]), bool(row["bias"])
    if np.any(row["alive"] & ~minority.nonzero_minimizer_exists(n, lam, lam, L, bias)):
        return False  # it keeps a mode that has no nonzero minimizer at its decay: at no such point
    return at_critical_value(row["value"], minority.partial_minimum(n, lam, lam, L, bias, row["alive"]))


def place_deep_runs(frame) -> pd.DataFrame:
    """The runs with L >= 2 of a frame of UFM runs (:func:`ufm_frame` or :func:`count_alive`), each marked as at the
    global minimum (``global``), at a ``partial`` collapse (not at the global minimum, and its objective at the
    value of the critical point of Lemma A.2 that keeps exactly its alive modes, :func:`at_critical_value`; a local
    minimizer of (4.3) where the modes at 0 are the weakest) or ``jumped`` (at neither), with ``origin_wrongly``
    (it ends at the origin although the global minimizer keeps modes) and its ``band`` of lambda / lambda_last
    (:data:`BANDS`).  ValueError naming ``frame`` where it lacks the columns of such a frame."""
    deep = _frame(frame, _UFM_NEEDS + ("rel", "global", "alive", "at_origin"))
    deep = deep[deep["L"] > 1].copy()
    deep["partial"] = [not r["global"] and _at_partial_collapse(r) for _, r in deep.iterrows()]
    deep["jumped"] = ~deep["global"] & ~deep["partial"]
    deep["origin_wrongly"] = deep["at_origin"] & (deep["modes_theory"] > 0)
    deep["band"] = pd.cut(deep["rel"], [lo for lo, _, _ in BANDS] + [BANDS[-1][1]],
                          labels=[label for _, _, label in BANDS])
    return deep


def seed_spread(deep) -> pd.DataFrame:
    """The runs with L >= 2 (:func:`place_deep_runs`) of the settings trained at several seeds, profile, bias and L
    alike, grouped by L and decay (lambda / lambda_last to six digits, ``decay``): per group the seeds' fewest and
    most modes alive (``min``, ``max``), its number of ``runs``, whether they end apart (``differ``: not the same
    number of modes alive), the spread of the modes alive among those of them at a critical point (``spread``:
    global minimum or partial collapse; 0 where fewer than two are) and whether one seed ends at the global minimum
    and another at a partial collapse (``kinds``).  The committed tables have one such setting, CIFAR-10 with a bias
    (:ref:`ch-minority`, :ref:`ch-minority-runs`).  ValueError naming ``deep`` where it lacks the columns of such a
    frame, or holds no setting with several seeds, or several settings with several seeds (their runs would be
    grouped together)."""
    deep = _frame(deep, ("profile", "bias", "L", "rel", "seed", "modes_alive", "global", "partial"), "deep")
    seeds = deep.groupby(["profile", "bias", "L"])["seed"].nunique()
    several = seeds[seeds > 1]
    settings = {(profile, bool(bias)) for profile, bias, _ in several.index}
    if len(settings) != 1:
        raise ValueError(f"deep must hold runs at several seeds for one profile and bias, got {sorted(settings)}")
    (profile, bias), = settings
    trio = deep[(deep["profile"] == profile) & (deep["bias"].astype(bool) == bias)
                & deep["L"].isin(several.index.get_level_values("L"))]
    trio = trio.assign(decay=trio["rel"].round(6))
    groups = trio.groupby(["L", "decay"])
    out = groups["modes_alive"].agg(["min", "max"])
    out["runs"] = groups.size()
    out["differ"] = out["min"] < out["max"]
    at_point = trio[trio["global"] | trio["partial"]].groupby(["L", "decay"])
    out["spread"] = (at_point["modes_alive"].agg(lambda v: int(v.max() - v.min()))
                     .reindex(out.index, fill_value=0).astype(int))
    out["kinds"] = (at_point["global"].any() & at_point["partial"].any()).reindex(out.index, fill_value=False)
    return out


def _nearest_point(n, lam, L: int, bias: bool, objective, gap) -> dict:
    """Where an MLP run ended among the critical points of Lemma A.2 (L >= 2): the nearest by value; for L = 1,
    where every critical point with modes at 0 is a saddle, the global minimizer and the run's gap."""
    if L == 1:
        return {"dead": 0, "above": gap, "runner_up": None, "runner_up_above": None}
    return minority.nearest_partial_minimum(n, lam, lam, L, bias, objective)


def mlp_frame(folder) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The MLP runs of ``folder`` (run folders of :func:`nclib.train.run`, made by :mod:`nclib.sweep` with lam_H
    tied to lam_W): the sweeps' table ``sweep.csv`` and one row per run, ordered by L and decay, with its settings
    (``params``), last records (``objective``, ``objective_0`` at the first record, ``objective_last`` at the last
    three, ``record_every``, ``train_acc``, ``nc1``, ``nc2_w``, ``nc2_h``, ``nc2_wh``, ``nc3``, ``final``: the last
    training accuracy of each class) and provenance (``wall_s``, ``host_cpu``, ``data_sha256``), set against the
    UFM with the same counts, L and decays (Theorems 4.2-4.3 with a bias, 4.1 without): its ``minimum``
    (:func:`nclib.ufm.minimum_value`) and the run's relative ``gap`` above it; ``theory`` and ``classes_theory``, the
    classes its global minimizer classifies with a tie of its largest outputs read as an arg-max reads it (one of
    the tied classes right, as a network's read-out breaks it), ``classes_strict`` with a tie read as an error;
    ``modes_theory``, its modes alive; and, from the critical point of Lemma A.2 whose value is nearest the run's
    objective (:func:`nclib.minority.nearest_partial_minimum`, for L >= 2), ``modes_lost`` (that point's modes at 0
    that the global minimizer keeps), ``above_nearest``, ``runner_up`` and ``runner_up_above``.  ValueError naming
    ``folder`` where its table is missing or lists other runs than its run folders, or a run is not finished, has
    no class accuracies or decays lam_W and lam_H that differ, and where it is no path."""
    folder = _folder(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} is not a folder of MLP runs")
    if not (folder / sweeptable.SUMMARY).is_file():
        raise ValueError(f"folder {str(folder)!r} has no {sweeptable.SUMMARY}, the table of the sweeps that made its "
                         "runs")
    table = sweeptable.load_summary(folder)
    names = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if sorted(table["run_name"]) != names:
        raise ValueError(f"folder {str(folder)!r}: its sweep.csv lists {sorted(table['run_name'])}, its run folders "
                         f"are {names}")
    rows = []
    for name in table["run_name"]:
        params, hist, prov = runs.load_run(folder / name)
        accuracy = runs.load_class_accuracy(folder / name)
        if prov.get("status") != "finished" or accuracy is None or params["lam_W"] != params["lam_H"]:
            raise ValueError(f"folder {str(folder)!r}: the run {name} is not a finished run with class accuracies "
                             f"and lam_W = lam_H")
        n, lam, L, bias = np.array(params["counts"]), params["lam_H"], int(params["L"]), bool(params["bias"])
        theory = minority.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias, ties="argmax")
        strict = minority.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias)
        final = accuracy["acc"][-1]
        rows.append({"name": name, "L": L, "lam": lam, "epochs": int(hist["epoch"][-1]),
                     "objective": hist["objective"][-1], "objective_0": hist["objective"][0],
                     "objective_last": hist["objective"][-3:],
                     "record_every": int(hist["epoch"][-1] - hist["epoch"][-2]),
                     "minimum": ufm.minimum_value(n, lam, lam, L=L, bias=bias),
                     "classes_correct": int((final == 1).sum()), "classes_theory": int((theory == 1).sum()),
                     "classes_strict": int((strict == 1).sum()),
                     "train_acc": hist["train_acc"][-1], "acc_theory": float(theory @ n / n.sum()),
                     "nc1": hist["nc1"][-1], "nc2_w": hist["nc2_w"][-1], "nc2_h": hist["nc2_h"][-1],
                     "nc2_wh": hist["nc2_wh"][-1], "nc3": hist["nc3"][-1],
                     "final": final, "theory": theory, "counts": n, "bias": bias, "wall_s": prov["wall_time_s"],
                     "seed": params["seed"], "host_cpu": prov.get("host_cpu"), "data_sha256": prov["data_sha256"],
                     "params": params})
    frame = pd.DataFrame(rows).sort_values(["L", "lam"]).reset_index(drop=True)
    frame["gap"] = (frame["objective"] - frame["minimum"]) / frame["minimum"]
    frame["modes_theory"] = [int(minority.alive_at_minimum(r["counts"], r["lam"], r["lam"], L=r["L"],
                                                           bias=r["bias"]).sum()) for _, r in frame.iterrows()]
    nearest = [_nearest_point(r["counts"], r["lam"], r["L"], r["bias"], r["objective"], r["gap"])
               for _, r in frame.iterrows()]
    frame["modes_lost"] = [q["dead"] for q in nearest]
    frame["above_nearest"] = [q["above"] for q in nearest]
    frame["runner_up"] = [q["runner_up"] for q in nearest]
    frame["runner_up_above"] = [q["runner_up_above"] for q in nearest]
    return table, frame
