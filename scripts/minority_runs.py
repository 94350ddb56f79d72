"""Make the committed runs of the chapter "Minority collapse: theory against training" (book/minority).

    python scripts/minority_runs.py mlp --out OTHER    # the 6-layer MLP on the CIFAR-10 subset: one nclib.sweep per L
    python scripts/minority_runs.py ufm --profile cifar10 --like results/minority/ufm-cifar10.csv --out OTHER
    python scripts/minority_runs.py ufm --profile emnist-letters --like results/minority/ufm-emnist-letters.csv \
        --out OTHER                                        # the committed UFM runs again, into the folder OTHER
    python scripts/minority_runs.py ufm --profile cifar10 --out OTHER   # the UFM sweep at the decays computed now

Both write under results/minority/ by default (see its README.md for the exact commands and settings), or under
``--out`` (the same files in another folder: a replica of the runs on another machine,
results/replica-cpu/minority/).  A UFM table that exists already is refused (ValueError naming ``out``, before any
run trains) unless ``--overwrite`` is given: the committed tables, results/minority/ufm-PROFILE.csv, were made from
decays a few ulps off those the script computes now, so a plain rerun into results/minority/ would replace their
rows with others (and the chapter, which checks the replica against them bit for bit, would stop building);
``--like`` with a committed table trains exactly its runs again, into another folder.  A folder ``mlp-cifar10``
that exists already is refused the same way, unless ``--overwrite``: a sweep into the committed one,
results/minority/mlp-cifar10/, would keep its finished runs, train nothing and write its sweep.json and sweep.csv
again (a call of this checkout, its data path); ``--overwrite`` sweeps into it, resuming a stopped sweep.  The
options of the other command (``--like`` and ``--profile`` for ``mlp``, ``--data-path`` and ``--workers`` for
``ufm``) are refused by name, not ignored.  The MLP runs are a sweep of nclib.sweep for each head depth L (the
grids of decays differ), over lam_W with lam_H tied to it (lam_W = lam_H), on a local Dask cluster of two
single-threaded workers, into one folder: a run folder ``L-{L}_lam_W-{lambda}`` per point and the table sweep.csv
of all of them.  The UFM sweep writes one row per run:
the columns nclib.ufmtrain.UFM_FIELDS (results/minority/README.md says what each holds), then
nclib.ufmtrain.UFM_HISTORY_FIELDS, four that summarize the run's objective (4.3) recorded at every step (train_ufm's
history with ``record_every=1``, the values after 0, 1, ..., 4000 Adam steps; recording leaves the run as it is, bit
for bit): ``best_value``, the lowest of these values, and ``best_step``, the first step at it; ``largest_rise``, the
largest ratio of the value at a step to the lowest value up to that step (1.0 for an objective that never rose),
and ``rise_step``, the first step at it.  nclib.ufmtrain.read_ufm_table reads such a table and those made before
the last four columns were added.  Beside the table, ``ufm-PROFILE.provenance.json``: the command, the
git commit, the CPU and the BLAS kernels numpy runs on it (a run of float64 Adam is reproducible bit for bit only
with the same ones; ``OPENBLAS_CORETYPE`` in the environment chooses them, and the file records it), the versions, the
threads, the wall time and the settings.  Run with OMP_NUM_THREADS=1.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
import nclib  # noqa: E402
from nclib import data, imbalance, minority, provenance, ufmtrain  # noqa: E402
from nclib.runs import atomic_write_text  # noqa: E402

OUT = nclib.ROOT / "results" / "minority"

#: The CIFAR-10 subset beside the checkout (``../shared/data/cifar10_subset.npz``, where the committed runs read it;
#: ``--data-path`` to read it elsewhere).
DATA_PATH = str(data.SHARED_CIFAR10)
#: The CPU scale of the MLP runs: the CIFAR-10 profile's counts divided by nclib.ufmtrain.COUNT_DIVISOR (N = 300),
#: width 128, full batch.
MLP = dict(dataset="cifar10", width=128, depth=6, bias=True,
           epochs=1000, batch_size="full", lr=1e-3, lr_milestones=(700,), lr_gamma=0.1, metric_every=100,
           seed=0, device="cpu")
#: The decays of the MLP runs: for each head depth L, a log grid across the thresholds of the scaled profile.
MLP_DECAYS = {1: np.geomspace(0.006, 0.03, 8), 3: np.geomspace(0.004, 0.02, 5)}


def mlp_counts() -> list[int]:
    return (data.preset_counts("cifar10") // ufmtrain.COUNT_DIVISOR).tolist()


#: Local Dask workers of the MLP sweeps (one thread each).
MLP_WORKERS = 2


def run_mlp(out_dir: pathlib.Path, data_path: str = DATA_PATH, workers: int = MLP_WORKERS,
            overwrite: bool = False) -> None:
    """One sweep per head depth L over lam_W (4 significant digits) with lam_H tied to it, into ``out_dir``.
    ValueError naming ``out`` when ``out_dir`` exists and is not empty, unless ``overwrite``, checked before any run
    trains: a sweep into a folder of runs keeps its finished runs (nclib.sweep) and writes its sweep.json and
    sweep.csv again, so the committed folder would gain a call of this checkout and train nothing; ``overwrite``
    sweeps into it (a stopped sweep resumed)."""
    from nclib import sweep
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(f"out: {out_dir} exists; a sweep into it would keep its finished runs and write its "
                         f"sweep.json and sweep.csv again (pass --overwrite to sweep into it, or --out another "
                         f"folder)")
    for L, lams in MLP_DECAYS.items():
        t0 = time.time()
        table = sweep.run_sweep({"L": [L], "lam_W": [float(f"{lam:.4g}") for lam in lams]},
                                {**MLP, "data_path": data_path, "counts": mlp_counts()}, out_dir, workers=workers,
                                tie={"lam_H": "lam_W"}, progress=False)
        print(table[["run_name", "status", "final_objective", "final_train_acc", "train_time_s"]].to_string(index=False))
        print(f"L = {L}: {time.time() - t0:.1f} s", flush=True)


#: The UFM sweep: profiles scaled by 1/nclib.ufmtrain.COUNT_DIVISOR (its table_counts), L, bias, decays relative to
#: the thresholds, seeds.
UFM_LS = (1, 2, 3, 6)
#: lambda / (the largest collapse decay of the profile, L and bias): 8 points from well inside to past the thresholds.
UFM_RELATIVE = np.geomspace(0.1, 1.5, 8)
UFM_STEPS = 4000
UFM_LR = 0.05


def ufm_seeds(profile: str, bias: bool, L: int) -> tuple:
    """Three seeds for the CIFAR-10 profile with a bias and L >= 2 (how often training ends at a local minimizer),
    one otherwise (the EMNIST-letters profile, K = 26, costs about five times as much per step)."""
    return (0, 1, 2) if (profile == "cifar10" and bias and L > 1) else (0,)


def ufm_rows(profile: str):
    n = ufmtrain.table_counts(profile)
    for bias in (True, False):
        for L in UFM_LS:
            top = float(minority.mode_thresholds(n, L, bias)["lam"].max())
            for rel in UFM_RELATIVE:
                for seed in ufm_seeds(profile, bias, L):
                    yield profile, n, bias, L, float(rel * top), seed


def rows_like(table: pathlib.Path, profile: str):
    """The runs of a UFM table made before (``--like``): its rows' bias, L, decay (to the last bit, as the table wrote
    it) and seed, in its order, so that a replica trains exactly those runs again.  The table is read by
    nclib.ufmtrain.read_ufm_table; a file it refuses, or a table whose profile, steps, rate or initialization scale
    are not this sweep's, is refused with a ValueError naming ``like``.  The decays :func:`ufm_rows`
    computes have moved by a few ulps since the committed tables were made (the collapse decays and the spectrum were
    later made exact to the last bit), so a replica of those takes them from the table."""
    n = ufmtrain.table_counts(profile)
    try:
        rows = ufmtrain.read_ufm_table(table)
    except (ValueError, OSError) as e:  # a file it refuses, or no file it can read
        raise ValueError(f"like: {e}") from None
    if not rows:
        raise ValueError(f"like: {table} holds no rows")
    for r in rows:
        settings = (r["profile"], r["steps"], r["lr"], r["init_scale"])
        if settings != (profile, UFM_STEPS, UFM_LR, 1.0):
            raise ValueError(f"like: {table} has a row of profile, steps, lr, init_scale {settings}, not this sweep's "
                             f"{(profile, UFM_STEPS, UFM_LR, 1.0)}")
        yield profile, n, r["bias"], r["L"], r["lam"], r["seed"]


#: train_ufm records the objective at every step of a UFM run (its ``record_every``): the history the columns
#: :data:`nclib.ufmtrain.UFM_HISTORY_FIELDS` summarize.  Recording leaves the run as it is, bit for bit (the
#: objective is computed at every step for its gradient anyway).
UFM_RECORD_EVERY = 1


def ufm_row(profile: str, n, bias: bool, L: int, lam: float, seed: int) -> dict:
    """One run of the UFM sweep (nclib.ufmtrain.train_ufm at the sweep's settings) as its row of the table: the
    columns nclib.ufmtrain.UFM_FIELDS, then the summary of its objective's history (nclib.ufmtrain.history_summary),
    floats as their repr."""
    r = ufmtrain.train_ufm(n, lam, lam, L=L, bias=bias, steps=UFM_STEPS, lr=UFM_LR, seed=seed,
                           record_every=UFM_RECORD_EVERY)
    theory = minority.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias)
    summary = ufmtrain.history_summary(r.history, UFM_STEPS, UFM_RECORD_EVERY)
    return dict(profile=profile, bias=bias, L=L, lam=repr(lam), seed=seed, init_scale=1.0, steps=UFM_STEPS,
                lr=UFM_LR, value=repr(r.value), minimum=repr(r.minimum), gap=repr(r.gap),
                modes_alive=int(r.alive.sum()), modes_theory=int(r.alive_theory.sum()),
                classes_correct=int((r.class_acc == 1).sum()), classes_theory=int((theory == 1).sum()),
                at_origin=r.at_origin, s=" ".join(f"{v:.6g}" for v in r.s),
                s_theory=" ".join(f"{v:.6g}" for v in r.s_theory),
                class_acc=" ".join(f"{v:.6g}" for v in r.class_acc),
                **{k: repr(v) if isinstance(v, float) else v for k, v in summary.items()})


def ufm_provenance(profile: str, rows: int, wall_s: float) -> dict:
    """Where and how a UFM table was made: the command, commit, CPU, BLAS kernels, versions, threads, wall time.
    The kernels are those OpenBLAS reports (``blas_core``) and the environment's ``OPENBLAS_CORETYPE``, which chooses
    them on any CPU that can run them (None where it is not set: OpenBLAS chose by the CPU), so that one machine can
    make again a table made with other kernels (results/minority/README.md)."""
    return {"profile": profile, "rows": rows, "command_line": list(sys.argv), "made_utc":
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **provenance.git_state(), "host_cpu": provenance.cpu_name(), "cpu_model": provenance.cpu_model(),
            "blas_core": provenance.blas_core(), "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "versions": provenance.versions(),
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
            "wall_time_s": round(wall_s, 1),
            "settings": {"steps": UFM_STEPS, "lr": UFM_LR, "final_lr_factor": ufmtrain.FINAL_LR_FACTOR,
                         "record_every": UFM_RECORD_EVERY,
                         "L": list(UFM_LS), "relative_decays": [float(v) for v in UFM_RELATIVE],
                         "scale": ufmtrain.COUNT_DIVISOR}}


def run_ufm(profile: str, path: pathlib.Path, like: pathlib.Path | None = None, overwrite: bool = False) -> None:
    """The UFM sweep of one profile (:func:`ufm_rows`, or the runs of the table ``like``, :func:`rows_like`) into the
    table ``path`` and its provenance beside it.  ValueError naming ``out`` when ``path`` exists, unless
    ``overwrite``: checked before any run trains (after ``like``'s rows are read and checked), and before the folder
    of ``path`` is made."""
    plan = list(ufm_rows(profile) if like is None else rows_like(like, profile))
    if path.exists() and not overwrite:
        raise ValueError(f"out: {path} exists; a rerun would replace its rows (pass --overwrite to replace it, or "
                         f"--out another folder)")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.time()
    for profile, n, bias, L, lam, seed in plan:
        rows.append(ufm_row(profile, n, bias, L, lam, seed))
        print(f"{len(rows)} {profile} bias={bias} L={L} lam={lam:.3g} seed={seed} gap={float(rows[-1]['gap']):.1e} "
              f"modes {rows[-1]['modes_alive']}/{rows[-1]['modes_theory']} rise {float(rows[-1]['largest_rise']):.3g}"
              f" ({time.time() - t0:.0f} s)", flush=True)
    made = {**ufm_provenance(profile, len(rows), time.time() - t0), "like": None if like is None else str(like)}

    table = io.StringIO()
    w = csv.DictWriter(table, fieldnames=ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, table.getvalue())
    atomic_write_text(path.with_suffix(".provenance.json"), json.dumps(made, indent=1) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("mlp", "ufm"))
    ap.add_argument("--profile", choices=tuple(imbalance.PROFILES), default=None,
                    help="ufm only: the class profile of the UFM sweep, one csv each (default: cifar10)")
    ap.add_argument("--data-path", default=None,
                    help="mlp only: the CIFAR-10 .npz or torchvision root of the MLP runs (default: the shared subset)")
    ap.add_argument("--workers", type=int, default=None,
                    help=f"mlp only: local Dask workers of the MLP sweeps (default: {MLP_WORKERS})")
    ap.add_argument("--out", type=pathlib.Path, default=OUT,
                    help="the folder that receives mlp-cifar10/ or ufm-PROFILE.csv (default: results/minority)")
    ap.add_argument("--like", type=pathlib.Path, default=None,
                    help="ufm only: a UFM table made before: train its runs again (its decays to the last bit), for "
                         "a replica")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace an existing ufm-PROFILE.csv in --out, or sweep into an existing mlp-cifar10/ "
                         "there (refused otherwise)")
    args = ap.parse_args(argv)
    other = {"mlp": {"like": args.like, "profile": args.profile},
             "ufm": {"data_path": args.data_path, "workers": args.workers}}[args.what]
    for name, value in other.items():  # an option of the other command would be ignored: refused
        if value is not None:
            raise ValueError(f"{name}: --{name.replace('_', '-')} is not an option of {args.what!r} "
                             f"(it was given {value!r})")
    if args.what == "mlp":
        run_mlp(args.out / "mlp-cifar10", DATA_PATH if args.data_path is None else args.data_path,
                MLP_WORKERS if args.workers is None else args.workers, args.overwrite)
    else:
        profile = "cifar10" if args.profile is None else args.profile
        run_ufm(profile, args.out / f"ufm-{profile}.csv", args.like, args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
