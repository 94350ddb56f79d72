"""Run folders of :mod:`nclib.train`, read and written without torch: the book's figure chapters and the
plotting helpers read committed runs on any machine (and without the 5 s of importing torch).

A run folder holds ``params.json``, ``history.csv`` (one row per metric epoch, the columns of
:data:`HISTORY_COLUMNS`), ``class_accuracy.csv`` (:data:`CLASS_ACCURACY`; runs made before it was recorded have
none) and ``provenance.json``; each is written atomically by :func:`atomic_write_text`.
Used by :mod:`nclib.train` (which writes them), :mod:`nclib.plotting` and :mod:`nclib.figures`.
"""
from __future__ import annotations

import csv
import json
import os
import pathlib

import numpy as np

#: The columns of ``history.csv``, in order (:ref:`ch-train`).
HISTORY_COLUMNS = ("epoch", "lr", "loss", "objective", "nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3", "train_acc",
                   "bias_error", "global_mean_norm", "wall_time")


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, fsync, ``os.replace`` (how a
    run folder of :ref:`ch-train` is written, so an interruption never leaves a half-written file)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_history(run_dir) -> dict[str, np.ndarray]:
    """The metric history of a run folder as {column: array} (epoch as int64, the rest float64): the curves of
    Figures 1-4 (:ref:`ch-train`)."""
    path = pathlib.Path(run_dir) / "history.csv"
    if not path.is_file():
        raise ValueError(f"run_dir {str(run_dir)!r} has no history.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = {k: np.array([float(r[k]) for r in rows]) for k in HISTORY_COLUMNS}
    out["epoch"] = out["epoch"].astype(np.int64)
    return out


#: The file of a run folder with the training accuracy of each class per metric epoch (runs made before it
#: was recorded have none).
CLASS_ACCURACY = "class_accuracy.csv"


def load_class_accuracy(run_dir) -> dict | None:
    """``{"epoch": (E,) int array, "acc": (E, K) array}`` from a run folder's ``class_accuracy.csv`` (entry [e, k]:
    the training accuracy of class k at the e-th recorded epoch), or None when the run has no such file (runs
    made before it was recorded).  Used by :mod:`nclib.figures` (:ref:`ch-fig1` to :ref:`ch-fig4`)."""
    path = pathlib.Path(run_dir) / CLASS_ACCURACY
    if not path.is_file():
        return None
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if not header or header[0] != "epoch" or not body:
        raise ValueError(f"run_dir {str(run_dir)!r}: {CLASS_ACCURACY} has no epoch column or no rows")
    arr = np.array([[float(v) for v in r] for r in body])
    return {"epoch": arr[:, 0].astype(np.int64), "acc": arr[:, 1:]}


def load_run(run_dir) -> tuple[dict, dict, dict]:
    """(params, history, provenance) of a run folder written by :func:`run` (:ref:`ch-train`); ValueError naming
    ``run_dir`` when one of its three files is missing."""
    run_dir = pathlib.Path(run_dir)
    missing = [name for name in ("params.json", "history.csv", "provenance.json") if not (run_dir / name).is_file()]
    if missing:
        raise ValueError(f"run_dir {str(run_dir)!r} is not a run folder of nclib.train.run: no {', '.join(missing)}")
    params = json.loads((run_dir / "params.json").read_text())
    prov = json.loads((run_dir / "provenance.json").read_text())
    return params, load_history(run_dir), prov
