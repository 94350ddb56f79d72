"""scripts/minority_runs.py, the runs of chapter ch-minority.  The UFM sweep on a grid of two depths and two decays:
its table has the columns of the committed tables the chapter reads, every column of each row is train_ufm's run
(and minimizer_class_accuracy) at the row's settings, and the provenance beside the table names the commit and the
CPU; with --like it trains the runs of a table again, with and without a bias.  The MLP sweeps at a toy size: one
sweep per head depth, each run nclib.train.run at the script's settings.  The script's settings are those the
committed runs and their replica record; a folder of runs, an option of the other command and a missing table are
refused by name."""
from __future__ import annotations

import csv
import json
import pathlib

import pytest

import numpy as np

import nclib
import nclib.minority as mino
import nclib.ufm as ufm
import nclib.ufmtrain as ufmtrain
from nclib import provenance

from test_gpu_scripts import _script

minority_runs = _script("minority_runs")
COMMITTED = nclib.ROOT / "results" / "minority"


def _history_columns(history) -> dict:
    """The summary of an objective history recorded at every step (steps 0, 1, ..., len - 1), step by step: the lowest
    value and the first step at it, the largest ratio of a value to the lowest one up to its step and the first step
    at it."""
    best_step, low, rise, rise_step = 0, history[0], 1.0, 0
    for k, v in enumerate(history):
        if v < history[best_step]:
            best_step = k
        low = min(low, v)
        if v / low > rise:
            rise, rise_step = v / low, k
    return {"best_value": float(history[best_step]), "best_step": best_step, "largest_rise": float(rise),
            "rise_step": rise_step}


def _assert_row_is_the_run(row: dict, n) -> None:
    """Every column of a row of a UFM table, as the script wrote it, against train_ufm and minimizer_class_accuracy
    at the row's settings (bias, L, decay, seed), computed here: the same machine, so to the last bit.  The history
    columns from the objective recorded at every step."""
    bias, L, lam, seed = {"True": True, "False": False}[row["bias"]], int(row["L"]), float(row["lam"]), int(row["seed"])
    run = ufmtrain.train_ufm(n, lam, lam, L=L, bias=bias, steps=minority_runs.UFM_STEPS, lr=minority_runs.UFM_LR,
                             seed=seed, record_every=1)
    assert run.history.size == minority_runs.UFM_STEPS + 1 and run.history[-1] == run.value
    theory = mino.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias)
    exact = {"profile": "cifar10", "bias": bias, "L": L, "lam": lam, "seed": seed, "init_scale": 1.0,
             "steps": minority_runs.UFM_STEPS, "lr": minority_runs.UFM_LR, "value": run.value,
             "minimum": run.minimum, "gap": run.gap, "modes_alive": int(run.alive.sum()),
             "modes_theory": int(run.alive_theory.sum()), "classes_correct": int((run.class_acc == 1).sum()),
             "classes_theory": int((theory == 1).sum()), "at_origin": run.at_origin,
             **_history_columns(run.history)}
    six_digits = {"s": run.s, "s_theory": run.s_theory, "class_acc": run.class_acc}
    assert list(row) == list(ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS)
    assert set(row) == set(exact) | set(six_digits)
    for column, want in exact.items():  # floats as their repr, to the last bit
        assert row[column] == (repr(float(want)) if isinstance(want, float) else str(want)), column
    for column, want in six_digits.items():  # 6 significant digits; a zero written as 0
        np.testing.assert_allclose(np.array(row[column].split(), float), want, rtol=1e-5, atol=0, err_msg=column)


def test_the_ufm_sweep_on_a_small_grid(tmp_path, monkeypatch):
    """Two depths and two decays: half the largest collapse decay, where the global minimizer has collapsed modes
    and training with L = 2 ends at a partial collapse (the run's modes and classes differ from the minimizer's), and
    1.5 times it, where the minimizer is the origin and every class ties (a tie read as an arg-max would count one
    class correct).  Every column of every row is the run's at the row's settings."""
    monkeypatch.setattr(minority_runs, "UFM_LS", (1, 2))
    monkeypatch.setattr(minority_runs, "UFM_RELATIVE", np.array([0.5, 1.5]))
    assert minority_runs.main(["ufm", "--profile", "cifar10", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "ufm-cifar10.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header == list(ufmtrain.UFM_FIELDS + ufmtrain.UFM_HISTORY_FIELDS)
    for name in ("cifar10", "emnist-letters"):  # the committed tables: the same columns
        with open(COMMITTED / f"ufm-{name}.csv", newline="") as f:
            assert next(csv.reader(f)) == header
    with open(tmp_path / "ufm-cifar10.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # with a bias: L = 1 with seed 0, L = 2 with seeds 0, 1, 2; without: one seed each; each at both decays
    plan = [(bias, L, rel, seed) for bias in (True, False) for L in (1, 2) for rel in (0.5, 1.5)
            for seed in ((0, 1, 2) if bias and L == 2 else (0,))]
    assert [(r["bias"], r["L"], r["seed"]) for r in rows] == [(str(b), str(L), str(s)) for b, L, _, s in plan]
    n = ufmtrain.table_counts("cifar10")
    for r, (bias, L, rel, _) in zip(rows, plan):
        lam = float(np.float64(rel) * mino.mode_thresholds(n, L, bias)["lam"].max())
        assert float(r["lam"]) == lam and float(r["minimum"]) == ufm.minimum_value(n, lam, lam, L=L, bias=bias)
        _assert_row_is_the_run(r, n)
    # the grid holds what tells the columns apart: runs whose modes, classes and strengths are not the global
    # minimizer's, and classes that tie at the minimizer
    assert any(r["classes_correct"] != r["classes_theory"] for r in rows)
    assert any(r["s"] != r["s_theory"] for r in rows) and any(r["at_origin"] == "True" for r in rows)
    made = json.loads((tmp_path / "ufm-cifar10.provenance.json").read_text())
    assert made["rows"] == len(rows) and made["profile"] == "cifar10"
    assert made["git_commit"] == provenance.git_state()["git_commit"]
    assert made["host_cpu"] == provenance.cpu_name() and made["versions"]["numpy"] == np.__version__
    assert made["settings"]["steps"] == minority_runs.UFM_STEPS and made["settings"]["L"] == [1, 2]
    assert made["settings"]["record_every"] == 1
    assert made["wall_time_s"] >= 0
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left over


def test_history_summary_of_a_history_by_hand():
    """The lowest value, the largest rise over the lowest value so far, and their first steps, for histories whose
    answers are read off by hand; recorded every 2 of 9 steps (steps 0, 2, 4, 6, 8, then 9 at the end)."""
    h = [5.0, 3.0, 4.5, 2.0, 6.0, 1.0]
    assert ufmtrain.history_summary(h, 9, 2) == {"best_value": 1.0, "best_step": 9, "largest_rise": 3.0,
                                                      "rise_step": 8}
    # a falling objective never rises: ratio 1.0 at step 0; a tie goes to the first step
    assert ufmtrain.history_summary([4.0, 2.0, 2.0, 3.0], 3, 1) == {
        "best_value": 2.0, "best_step": 1, "largest_rise": 1.5, "rise_step": 3}
    assert ufmtrain.history_summary([5.0, 4.0, 3.0], 2, 1) == {
        "best_value": 3.0, "best_step": 2, "largest_rise": 1.0, "rise_step": 0}
    # the rise is against the lowest value up to the step, not the last value, nor the first
    assert ufmtrain.history_summary([1.0, 8.0, 4.0, 0.5, 2.0], 4, 1)["largest_rise"] == 8.0
    assert ufmtrain.history_summary([8.0, 1.0, 4.0, 0.5, 2.5], 4, 1)["largest_rise"] == 5.0
    for history, steps, every in (([1.0, 2.0], 3, 1), ([1.0, 2.0, 3.0], 5, 2)):  # not the values of those steps
        with pytest.raises(ValueError, match=r"^history must hold the \d values of \d steps recorded every \d"):
            ufmtrain.history_summary(history, steps, every)


@pytest.mark.parametrize("history, what", [
    ("abc", "real numbers"), (["1.0", "2.0"], "real numbers"),  # text is not read as numbers
    ([[1.0, 2.0]], "1-D"),  # a (1, 2) array once passed for the 2 values of one step
    ([1.0, np.nan], "finite"), ([np.inf, 1.0], "finite"),  # NaN once gave a summary of NaNs
    ([1.0, 0.0], "positive"), ([2.0, -1.0], "positive"),  # divided by the lowest value so far
    ([1.0], "the 2 values"), ([1.0, 2.0, 3.0], "the 2 values"),
])
def test_history_summary_refuses_what_is_no_recorded_objective_by_name(history, what):
    with pytest.raises(ValueError, match=rf"^history must (be |hold )?.*{what}"):
        ufmtrain.history_summary(history, 1, 1)


def test_like_trains_the_runs_of_a_table_again(tmp_path):
    """--like: rows of a committed table (three L = 1 runs, at the global minimum on any CPU, two with a bias and
    one without), their decays to the last bit; a table of other settings is refused by name."""
    with open(COMMITTED / "ufm-cifar10.csv", newline="") as f:
        lines = f.read().splitlines()
    assert lines[1].startswith("cifar10,True,1,") and lines[2].startswith("cifar10,True,1,")
    assert lines[82].startswith("cifar10,False,1,")
    like = tmp_path / "like.csv"
    like.write_text("\n".join(lines[:3] + [lines[82]]) + "\n")
    out = tmp_path / "out"
    assert minority_runs.main(["ufm", "--profile", "cifar10", "--like", str(like), "--out", str(out)]) == 0
    with open(like, newline="") as f:
        before = list(csv.DictReader(f))
    with open(out / "ufm-cifar10.csv", newline="") as f:
        again = list(csv.DictReader(f))
    assert [(r["bias"], r["L"], r["lam"], r["seed"]) for r in again] == [(r["bias"], r["L"], r["lam"], r["seed"])
                                                                          for r in before]
    assert [r["bias"] for r in again] == ["True", "True", "False"]
    n = ufmtrain.table_counts("cifar10")
    for a, b in zip(before, again):
        np.testing.assert_allclose(float(b["value"]), float(a["value"]), rtol=1e-13)
        assert (a["modes_theory"], a["classes_correct"], a["classes_theory"]) == (
            b["modes_theory"], b["classes_correct"], b["classes_theory"])
        _assert_row_is_the_run(b, n)
    assert json.loads((out / "ufm-cifar10.provenance.json").read_text())["like"] == str(like)
    other = tmp_path / "other.csv"
    for setting, changed in ((",4000,", ",3000,"), (",4000,0.05,", ",4000,0.01,"), (",1.0,4000,", ",2.0,4000,")):
        assert lines[1].count(setting) == 1  # steps, lr, init_scale
        other.write_text(lines[0] + "\n" + lines[1].replace(setting, changed) + "\n")
        with pytest.raises(ValueError, match="^like: .* not this sweep's"):
            minority_runs.main(["ufm", "--profile", "cifar10", "--like", str(other), "--out", str(out)])
    with pytest.raises(ValueError, match="^like: .* not this sweep's"):  # a table of the other profile
        minority_runs.main(["ufm", "--profile", "emnist-letters", "--like", str(like), "--out", str(out)])


def test_an_existing_table_is_refused_unless_overwrite(tmp_path, monkeypatch):
    """A second sweep into a folder that holds its table (the committed tables under results/minority/ are the case
    in point) is refused by name before any run trains, and leaves the table as it was; --overwrite replaces it."""
    monkeypatch.setattr(minority_runs, "UFM_LS", (1,))
    monkeypatch.setattr(minority_runs, "UFM_RELATIVE", np.array([0.5]))
    args = ["ufm", "--profile", "cifar10", "--out", str(tmp_path)]
    assert minority_runs.main(args) == 0
    table = tmp_path / "ufm-cifar10.csv"
    before = table.read_bytes()
    trained = []
    real_row = minority_runs.ufm_row
    monkeypatch.setattr(minority_runs, "ufm_row", lambda *a: trained.append(a) or real_row(*a))
    with pytest.raises(ValueError, match="^out: .*ufm-cifar10.csv exists"):
        minority_runs.main(args)
    assert trained == [] and table.read_bytes() == before
    assert minority_runs.main(args + ["--overwrite"]) == 0
    assert len(trained) == 2  # one seed with a bias and one without, at L = 1
    with open(table, newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_the_mlp_sweeps_at_a_toy_size(tmp_path, monkeypatch, capsys):
    """run_mlp at a toy size (3 epochs, width 16, one decay per head depth, the module's settings otherwise):
    one sweep per L with lam_H tied to lam_W, into one folder; each run is nclib.train.run at the sweep's settings,
    on the CIFAR-10 profile divided by 10."""
    import torch

    from nclib import runs, sweep, train
    from test_gpu_scripts import fake_cifar

    monkeypatch.setitem(minority_runs.MLP, "epochs", 3)
    monkeypatch.setitem(minority_runs.MLP, "width", 16)
    monkeypatch.setitem(minority_runs.MLP, "lr_milestones", (2,))
    monkeypatch.setitem(minority_runs.MLP, "metric_every", 1)
    monkeypatch.setattr(minority_runs, "MLP_DECAYS", {1: np.array([0.012345]), 3: np.array([0.02])})
    data_path = str(fake_cifar(tmp_path / "cifar.npz"))
    out = tmp_path / "mlp-cifar10"
    minority_runs.run_mlp(out, data_path, workers=1)
    assert "L = 1:" in capsys.readouterr().out
    table = sweep.summary(out)
    assert table["run_name"].tolist() == ["L-1_lam_W-0.01235", "L-3_lam_W-0.02"]  # 4 significant digits
    assert (table["status"] == "finished").all()
    assert minority_runs.mlp_counts() == [10, 10, 20, 20, 30, 30, 40, 40, 50, 50]
    for name, L, lam in (("L-1_lam_W-0.01235", 1, 0.01235), ("L-3_lam_W-0.02", 3, 0.02)):
        params = runs.load_run(out / name)[0]
        assert (params["L"], params["lam_W"], params["lam_H"]) == (L, lam, lam)
        assert list(params["counts"]) == minority_runs.mlp_counts() and params["epochs"] == 3
        assert params["width"] == 16 and params["depth"] == 6 and params["bias"] is True
    # the L = 3 run is nclib.train.run at those settings, epoch for epoch
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as a worker of the sweep's cluster trains (one thread)
    try:
        alone = train.run(**{**minority_runs.MLP, "data_path": data_path, "counts": minority_runs.mlp_counts(), "L": 3,
                             "lam_W": 0.02, "lam_H": 0.02, "out_dir": str(tmp_path / "alone"),
                             "run_name": "L-3_lam_W-0.02", "progress": False})
    finally:
        torch.set_num_threads(before)
    swept = runs.load_run(out / "L-3_lam_W-0.02")[1]["objective"]
    assert len(swept) == 4  # epochs 0 to 3
    np.testing.assert_array_equal(runs.load_run(alone)[1]["objective"], swept)


def test_mlp_refuses_a_folder_of_runs_unless_overwrite(tmp_path, monkeypatch, capsys):
    """The README's command of the committed MLP runs, ``mlp`` with no --out, is refused by name before any sweep
    starts and leaves the committed folder as it is (a sweep into it would train nothing and write its sweep.json
    and sweep.csv again); so is any folder that holds files.  --overwrite sweeps into it, one sweep per head depth;
    an empty folder is no folder of runs."""
    import pandas as pd

    from nclib import sweep

    calls = []

    def fake_sweep(grid, fixed, out_dir, **kw):
        calls.append((grid["L"], pathlib.Path(out_dir)))
        return pd.DataFrame(columns=["run_name", "status", "final_objective", "final_train_acc", "train_time_s"])

    monkeypatch.setattr(sweep, "run_sweep", fake_sweep)
    committed = COMMITTED / "mlp-cifar10"
    before = {p: p.read_bytes() for p in committed.glob("sweep.*")}
    assert sorted(p.name for p in before) == ["sweep.csv", "sweep.json"]
    with pytest.raises(ValueError, match="^out: .*mlp-cifar10 exists"):
        minority_runs.main(["mlp"])
    assert calls == [] and {p: p.read_bytes() for p in committed.glob("sweep.*")} == before
    folder = tmp_path / "mlp-cifar10"
    folder.mkdir()
    assert minority_runs.main(["mlp", "--out", str(tmp_path)]) == 0  # empty: swept into
    assert calls == [([1], folder), ([3], folder)]
    (folder / "sweep.json").write_text("{}")
    calls.clear()
    with pytest.raises(ValueError, match="^out: "):
        minority_runs.main(["mlp", "--out", str(tmp_path)])
    assert calls == []
    assert minority_runs.main(["mlp", "--out", str(tmp_path), "--overwrite"]) == 0
    assert calls == [([1], folder), ([3], folder)]


@pytest.mark.parametrize("args, name", [
    (["mlp", "--like", "results/minority/ufm-cifar10.csv"], "like"),
    (["mlp", "--profile", "cifar10"], "profile"),
    (["ufm", "--data-path", "elsewhere.npz"], "data_path"),
    (["ufm", "--workers", "3"], "workers"),
    (["ufm", "--like", "/nonexistent/ufm-cifar10.csv"], "like"),
])
def test_options_of_the_other_command_and_a_missing_table_are_refused_by_name(tmp_path, monkeypatch, args, name):
    """An option that the command would ignore, and a --like table that is not there, are refused with a ValueError
    naming the argument, before anything trains and before --out is made."""
    from nclib import sweep

    def no_training(*a, **kw):
        raise AssertionError("nothing may train")

    monkeypatch.setattr(sweep, "run_sweep", no_training)
    monkeypatch.setattr(minority_runs, "ufm_row", no_training)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=f"^{name}: "):
        minority_runs.main(args + ["--out", str(out)])
    assert not out.exists()


def _listed(v):
    """A setting as params.json or sweep.json records it (a tuple as a list)."""
    return list(v) if isinstance(v, tuple) else v


@pytest.mark.parametrize("folder", [COMMITTED, nclib.ROOT / "results" / "replica-cpu" / "minority"])
def test_the_settings_are_those_of_the_committed_runs(folder):
    """The script's settings against what the committed runs and their replica record, so that a change to one of
    them shows here: MLP, MLP_DECAYS (4 significant digits, as the run names) and mlp_counts() against every run
    folder's params.json and the sweep's sweep.json; UFM_LS, UFM_RELATIVE, ufm_seeds, UFM_STEPS and UFM_LR against
    the rows of the UFM tables, in the order the script trains them (the decays to a few ulps: the committed tables
    were made from decays computed before they were made exact to the last bit)."""
    from nclib import runs

    mlp = folder / "mlp-cifar10"
    grid = {(L, float(f"{lam:.4g}")) for L, lams in minority_runs.MLP_DECAYS.items() for lam in lams}
    assert len(grid) == sum(len(v) for v in minority_runs.MLP_DECAYS.values())
    folders = sorted(p for p in mlp.iterdir() if p.is_dir())
    seen = set()
    for path in folders:
        params = runs.load_run(path)[0]
        for k, v in minority_runs.MLP.items():
            assert params[k] == _listed(v), (path.name, k)
        assert params["counts"] == minority_runs.mlp_counts() and params["lam_H"] == params["lam_W"]
        seen.add((params["L"], params["lam_W"]))
        assert path.name == f"L-{params['L']}_lam_W-{params['lam_W']}"
    assert seen == grid and len(folders) == len(grid)
    manifest = json.loads((mlp / "sweep.json").read_text())
    assert {k: v for k, v in manifest["fixed"].items() if k != "data_path"} == {
        **{k: _listed(v) for k, v in minority_runs.MLP.items()}, "counts": minority_runs.mlp_counts()}
    assert manifest["tie"] == {"lam_H": "lam_W"} and sorted(manifest["runs"]) == sorted(p.name for p in folders)

    for profile in ("cifar10", "emnist-letters"):
        rows = ufmtrain.read_ufm_table(folder / f"ufm-{profile}.csv")
        plan = list(minority_runs.ufm_rows(profile))
        assert [(r["profile"], r["bias"], r["L"], r["seed"]) for r in rows] == [
            (p, bias, L, seed) for p, _, bias, L, _, seed in plan]
        np.testing.assert_allclose([r["lam"] for r in rows], [lam for *_, lam, _ in plan], rtol=1e-13, atol=0)
        assert {(r["steps"], r["lr"], r["init_scale"]) for r in rows} == {
            (minority_runs.UFM_STEPS, minority_runs.UFM_LR, 1.0)}


def test_the_provenance_records_the_blas_kernels_and_the_one_forced(monkeypatch):
    """A UFM table's provenance records the kernels OpenBLAS runs (blas_core) and OPENBLAS_CORETYPE, which forces
    them: None where it is not set.  In a fresh process with OPENBLAS_CORETYPE=Haswell (x86-64 with AVX2, the kernels
    of the committed tables) OpenBLAS reports Haswell, and the provenance records both."""
    import os
    import platform
    import subprocess
    import sys

    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    made = minority_runs.ufm_provenance("cifar10", 1, 0.0)
    assert made["openblas_coretype"] is None and made["blas_core"] == provenance.blas_core()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert minority_runs.ufm_provenance("cifar10", 1, 0.0)["openblas_coretype"] == "Haswell"
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if made["blas_core"] is None or platform.machine() != "x86_64" or not cpuinfo.is_file() \
            or " avx2" not in cpuinfo.read_text():
        pytest.skip("Haswell kernels need OpenBLAS on an x86-64 CPU with AVX2")
    code = ("import json, runpy; m = runpy.run_path('scripts/minority_runs.py'); "
            "made = m['ufm_provenance']('cifar10', 1, 0.0); print(json.dumps([made['blas_core'], "
            "made['openblas_coretype']]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=nclib.ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OPENBLAS_CORETYPE": "Haswell", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == ["Haswell", "Haswell"]


def test_the_provenance_settings_are_the_scripts_and_the_committed_ones():
    """The settings a UFM table's provenance records, as the script writes them, are the module's constants and
    the default rate schedule of train_ufm (ufm_row leaves it at its default), and equal those of the committed
    provenance files, of the committed tables and of the replica's, number for number."""
    import inspect

    written = minority_runs.ufm_provenance("cifar10", 1, 0.0)["settings"]
    assert written == {"steps": minority_runs.UFM_STEPS, "lr": minority_runs.UFM_LR,
                       "final_lr_factor": ufmtrain.FINAL_LR_FACTOR, "record_every": minority_runs.UFM_RECORD_EVERY,
                       "L": list(minority_runs.UFM_LS),
                       "relative_decays": [float(v) for v in minority_runs.UFM_RELATIVE],
                       "scale": ufmtrain.COUNT_DIVISOR}
    assert inspect.signature(ufmtrain.train_ufm).parameters["final_lr_factor"].default == ufmtrain.FINAL_LR_FACTOR
    for folder in (COMMITTED, nclib.ROOT / "results" / "replica-cpu" / "minority"):
        for profile in ("cifar10", "emnist-letters"):
            made = json.loads((folder / f"ufm-{profile}.provenance.json").read_text())
            assert made["settings"] == json.loads(json.dumps(written))
