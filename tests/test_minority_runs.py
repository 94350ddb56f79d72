"""scripts/minority_runs.py, the UFM sweep of chapter ch-minority: on a grid of two depths and one decay, its table
has the columns of the committed tables the chapter reads, each row is train_ufm's run at the row's settings, and
the provenance beside the table names the commit and the CPU; with --like it trains the runs of a table again."""
from __future__ import annotations

import csv
import json

import pytest

import numpy as np

import nclib
import nclib.imbalance as imb
import nclib.minority as mino
import nclib.ufm as ufm
import nclib.ufmtrain as ufmtrain
from nclib import provenance

from test_gpu_scripts import _script

minority_runs = _script("minority_runs")
COMMITTED = nclib.ROOT / "results" / "minority"


def test_the_ufm_sweep_on_a_small_grid(tmp_path, monkeypatch):
    monkeypatch.setattr(minority_runs, "UFM_LS", (1, 2))
    monkeypatch.setattr(minority_runs, "UFM_RELATIVE", np.array([0.5]))
    assert minority_runs.main(["ufm", "--profile", "cifar10", "--out", str(tmp_path)]) == 0
    with open(tmp_path / "ufm-cifar10.csv", newline="") as f:
        header = next(csv.reader(f))
    for name in ("cifar10", "emnist-letters"):  # the schema of the committed tables
        with open(COMMITTED / f"ufm-{name}.csv", newline="") as f:
            assert next(csv.reader(f)) == header == list(ufmtrain.UFM_FIELDS)
    with open(tmp_path / "ufm-cifar10.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # with a bias: L = 1 with seed 0, L = 2 with seeds 0, 1, 2; without: one seed each
    assert [(r["bias"], r["L"], r["seed"]) for r in rows] == [
        ("True", "1", "0"), ("True", "2", "0"), ("True", "2", "1"), ("True", "2", "2"), ("False", "1", "0"),
        ("False", "2", "0")]
    n = imb.class_counts(imb.PROFILES["cifar10"]) // 10
    for r in rows:
        bias, L, lam = r["bias"] == "True", int(r["L"]), float(r["lam"])
        np.testing.assert_allclose(lam / mino.mode_thresholds(n, L, bias)["lam"].max(), 0.5, rtol=1e-15)
        assert float(r["minimum"]) == ufm.minimum_value(n, lam, lam, L=L, bias=bias)
    # a row is train_ufm's run at its settings, to the last bit (the same machine)
    r = rows[2]
    run = ufmtrain.train_ufm(n, float(r["lam"]), float(r["lam"]), L=2, bias=True, steps=int(r["steps"]),
                             lr=float(r["lr"]), seed=int(r["seed"]))
    assert float(r["value"]) == run.value and float(r["gap"]) == run.gap
    assert int(r["modes_alive"]) == run.alive.sum() and int(r["modes_theory"]) == run.alive_theory.sum()
    assert int(r["classes_correct"]) == (run.class_acc == 1).sum() and r["at_origin"] == str(run.at_origin)
    np.testing.assert_allclose(np.array(r["s"].split(), float), run.s, rtol=1e-5, atol=0)  # 6 digits
    made = json.loads((tmp_path / "ufm-cifar10.provenance.json").read_text())
    assert made["rows"] == len(rows) and made["profile"] == "cifar10"
    assert made["git_commit"] == provenance.git_state()["git_commit"]
    assert made["host_cpu"] == provenance.cpu_name() and made["versions"]["numpy"] == np.__version__
    assert made["settings"]["steps"] == minority_runs.UFM_STEPS and made["settings"]["L"] == [1, 2]
    assert made["wall_time_s"] >= 0
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left over


def test_like_trains_the_runs_of_a_table_again(tmp_path):
    """--like: the rows of a committed table (two L = 1 runs, at the global minimum on any CPU), their decays to the
    last bit; a table of other settings is refused by name."""
    with open(COMMITTED / "ufm-cifar10.csv", newline="") as f:
        lines = f.read().splitlines()
    assert lines[1].split(",")[2] == "1" and lines[2].split(",")[2] == "1"  # L = 1
    like = tmp_path / "like.csv"
    like.write_text("\n".join(lines[:3]) + "\n")
    out = tmp_path / "out"
    assert minority_runs.main(["ufm", "--profile", "cifar10", "--like", str(like), "--out", str(out)]) == 0
    with open(like, newline="") as f:
        before = list(csv.DictReader(f))
    with open(out / "ufm-cifar10.csv", newline="") as f:
        again = list(csv.DictReader(f))
    assert [(r["bias"], r["L"], r["lam"], r["seed"]) for r in again] == [(r["bias"], r["L"], r["lam"], r["seed"])
                                                                          for r in before]
    for a, b in zip(before, again):
        np.testing.assert_allclose(float(b["value"]), float(a["value"]), rtol=1e-13)
        assert (a["modes_theory"], a["classes_correct"], a["classes_theory"]) == (
            b["modes_theory"], b["classes_correct"], b["classes_theory"])
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
