"""nclib.minorityruns: the runs of minority collapse read back and placed among the critical points of Lemma A.2
(chapters ch-minority and ch-minority-runs): where a run of the UFM ends (the global minimum, a partial collapse, or
neither), its modes counted again at a tolerance, the committed tables and MLP runs read as those chapters read them,
and the refusals by name."""
import csv
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import nclib
import nclib.minority as mino
import nclib.minorityruns as mruns
import nclib.ufm as ufm
import nclib.ufmtrain as ufmtrain

RESULTS = nclib.ROOT / "results" / "minority"


def test_a_value_is_at_a_critical_point_within_the_gap_of_the_global_minimum():
    gap = ufmtrain.AT_MINIMUM_GAP
    assert mruns.at_critical_value(2.0 * (1 + 0.5 * gap), 2.0)
    assert mruns.at_critical_value(2.0 * (1 - 0.5 * gap), 2.0)
    assert not mruns.at_critical_value(2.0 * (1 + 2 * gap), 2.0)
    assert not mruns.at_critical_value(2.0 * (1 - 2 * gap), 2.0)


@pytest.mark.parametrize("value, point, name", [(0.0, 1.0, "value"), (1.0, -1.0, "point"), (np.nan, 1.0, "value"),
                                                (1.0, np.inf, "point"), ("1", 1.0, "value")])
def test_a_value_or_point_that_is_no_objective_is_refused_by_name(value, point, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        mruns.at_critical_value(value, point)


def _row(L, lam, value, s, profile="cifar10", bias=True):
    """One run of a UFM table at decay lam: its objective value and the strengths s of its modes."""
    n = ufmtrain.table_counts(profile)
    minimum = ufm.minimum_value(n, lam, lam, L=L, bias=bias)
    last = mino.mode_thresholds(n, L, bias)["lam"].max()
    return {"profile": profile, "bias": bias, "L": L, "lam": lam, "value": value, "s": np.asarray(s, float),
            "modes_theory": int(mino.alive_at_minimum(n, lam, lam, L=L, bias=bias).sum()), "rel": lam / last,
            "global": bool(ufmtrain.at_global_minimum(value / minimum - 1))}


def _write_ufm_tables(folder, rows, modes_alive, classes_correct):
    """The runs ``rows`` (of :func:`_row`) written as UFM tables in ``folder``, one per profile, as
    scripts/minority_runs.py writes them: the file's own count of modes alive and of classes classified
    (``modes_alive``, ``classes_correct``, one per row; its class accuracies that many ones, then zeros), the closed
    form's minimum, gap and classes of the global minimizer, floats as their repr."""
    def text(value):
        if isinstance(value, np.ndarray):
            return " ".join(repr(float(v)) for v in value)
        return repr(float(value)) if isinstance(value, float) else str(value)

    lines = {p: [",".join(ufmtrain.UFM_FIELDS)] for p in mruns.PROFILES}
    for r, alive, right in zip(rows, modes_alive, classes_correct):
        n, L, lam, bias = ufmtrain.table_counts(r["profile"]), r["L"], r["lam"], r["bias"]
        minimum = ufm.minimum_value(n, lam, lam, L=L, bias=bias)
        theory = mino.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias)
        values = dict(r, seed=0, init_scale=1.0, steps=4000, lr=0.05, minimum=minimum, gap=r["value"] / minimum - 1,
                      modes_alive=alive, classes_correct=right, classes_theory=int((theory == 1).sum()),
                      at_origin=not np.any(r["s"]),
                      s_theory=ufm.mode_strengths(mino.problem_spectrum(n, bias), n.sum(), lam, lam, L=L),
                      class_acc=np.r_[np.ones(right), np.zeros(n.size - right)])
        lines[r["profile"]].append(",".join(text(values[c]) for c in ufmtrain.UFM_FIELDS))
    for profile, table in lines.items():
        (folder / f"ufm-{profile}.csv").write_text("\n".join(table) + "\n")


def test_the_runs_with_a_deep_head_are_placed_at_the_minimum_at_a_partial_collapse_or_neither(tmp_path):
    """CIFAR-10's table counts with a bias, L = 3, read from tables written here (:func:`ufm_frame`).  At half the last
    threshold: a run at the global minimizer's value and strengths, one at the value of the critical point without
    the weakest mode the minimizer keeps (its strengths those of that point), one far above every critical point and
    one a relative 1e-5 above the minimum (not at it, by AT_MINIMUM_GAP = 1e-6, nor at a partial collapse), and a run
    with L = 1, which is not placed.  At a tenth of it (below 0.3): one at the global minimum and one at the origin,
    although the minimizer keeps modes there; at 1.5 times it (above 1), one at the origin, the global minimizer
    there.  One EMNIST run with L = 1, as a frame of both profiles holds.  The classes each run classifies, its modes
    alive by the file, and the bands, set by hand below from these settings."""
    n, L = ufmtrain.table_counts("cifar10"), 3
    kappa = mino.problem_spectrum(n, True)
    last = mino.mode_thresholds(n, L, True)["lam"].max()
    lam, low, high = 0.5 * last, 0.1 * last, 1.5 * last
    keep = mino.alive_without_weakest(n, lam, lam, L, True, 1)
    at_min = ufm.mode_strengths(kappa, n.sum(), lam, lam, L=L)
    origin_low = mino.partial_minimum(n, low, low, L, True, np.zeros(kappa.size, bool))
    rows = [_row(L, lam, ufm.minimum_value(n, lam, lam, L=L), at_min),
            _row(L, lam, mino.partial_minimum(n, lam, lam, L, True, keep), np.where(keep, at_min, 0.0)),
            _row(L, lam, 3 * ufm.minimum_value(n, lam, lam, L=L), 0.9 * kappa),
            _row(1, lam, ufm.minimum_value(n, lam, lam, L=1), ufm.mode_strengths(kappa, n.sum(), lam, lam, L=1)),
            _row(L, lam, (1 + 1e-5) * ufm.minimum_value(n, lam, lam, L=L), at_min),
            _row(L, low, ufm.minimum_value(n, low, low, L=L), ufm.mode_strengths(kappa, n.sum(), low, low, L=L)),
            _row(L, low, origin_low, np.zeros(kappa.size)),
            _row(L, high, ufm.minimum_value(n, high, high, L=L), np.zeros(kappa.size)),
            _row(1, 1e-3, ufm.minimum_value(ufmtrain.table_counts("emnist-letters"), 1e-3, 1e-3, L=1, bias=False),
                 np.ones(26), profile="emnist-letters", bias=False)]
    # with L = 3 the global minimizer keeps 7 modes and classifies 8 classes at half the last threshold, 9 and all 10
    # at a tenth of it, none past it (the origin); with L = 1 at the same decay, 9 and 10
    assert [r["modes_theory"] for r in rows[:8]] == [7, 7, 7, 9, 7, 9, 9, 0]
    # the file's own counts: the run far above keeps the 9 modes of nonzero kappa, more than the minimizer's 7; the
    # partial collapse classifies 6 classes, the run at the origin below the last threshold none (the two largest
    # classes tie for the largest output, b = n / N, and a tie counts as wrong)
    _write_ufm_tables(tmp_path, rows, [7, 6, 9, 9, 7, 9, 0, 0, 26], [8, 6, 8, 10, 8, 10, 0, 0, 26])
    frame = mruns.ufm_frame(tmp_path)
    np.testing.assert_allclose(frame["rel"][:8], [0.5, 0.5, 0.5, 0.5 * last / mino.mode_thresholds(n, 1, True)[
        "lam"].max(), 0.5, 0.1, 0.1, 1.5], rtol=1e-15)
    assert frame["global"].tolist() == [True, False, False, True, False, True, False, True, True]
    assert frame["classes_theory"].tolist() == [8, 8, 8, 10, 8, 10, 10, 0, 26]
    assert frame["classes_lost"].tolist() == [0, 2, 0, 0, 0, 0, 10, 0, 0]
    assert frame["file_modes_alive"].tolist() == [7, 6, 9, 9, 7, 9, 0, 0, 26]
    deep = mruns.place_deep_runs(frame)
    assert list(deep.index) == [0, 1, 2, 4, 5, 6, 7]
    assert deep["global"].tolist() == [True, False, False, False, True, False, True]
    assert deep["partial"].tolist() == [False, True, False, False, False, True, False]  # the origin: a critical point
    assert deep["jumped"].tolist() == [False, False, True, True, False, False, False]
    assert deep["modes_alive"].tolist() == [int(keep.sum()) + 1, int(keep.sum()), int((kappa > 0).sum()), 7, 9, 0, 0]
    assert deep["fewer_modes"].tolist() == [False, True, False, False, False, True, False]
    assert deep["more_modes"].tolist() == [False, False, True, False, False, False, False]
    assert deep["band"].tolist() == ["0.3 to 1"] * 4 + ["below 0.3"] * 2 + ["above 1"]
    # at the origin wrongly: only below the last threshold, where the global minimizer keeps modes
    assert deep["origin_wrongly"].tolist() == [False] * 5 + [True, False]


def test_the_modes_alive_are_counted_again_at_a_tolerance_of_each_mode_s_own_kappa():
    n = ufmtrain.table_counts("emnist-letters")
    kappa = mino.problem_spectrum(n, False)
    s = kappa * np.r_[0.5, 3e-3, 3e-4, np.zeros(kappa.size - 3)]
    frame = pd.DataFrame([_row(2, 1e-3, 1.0, s, profile="emnist-letters", bias=False)])
    assert mruns.count_alive(frame, 1e-3)["modes_alive"].tolist() == [2]
    assert mruns.count_alive(frame, 1e-4)["modes_alive"].tolist() == [3]
    assert mruns.count_alive(frame, 1e-2)["modes_alive"].tolist() == [1]
    assert not mruns.count_alive(frame, 0.4)["at_origin"].item() and mruns.count_alive(
        frame.assign(s=[np.zeros(kappa.size)]))["at_origin"].item()


@pytest.mark.parametrize("tol", [0.0, 1.0, -1e-3, np.nan])
def test_a_tolerance_outside_0_1_is_refused_by_name(tol):
    frame = pd.DataFrame([_row(2, 1e-3, 1.0, np.ones(10))])
    with pytest.raises(ValueError, match="^tol must"):
        mruns.count_alive(frame, tol)


def test_a_frame_without_the_columns_of_a_table_of_runs_is_refused_by_name():
    with pytest.raises(ValueError, match="^frame must be a pandas DataFrame"):
        mruns.count_alive([{"L": 2}])
    with pytest.raises(ValueError, match=r"^frame lacks the columns \['rel', 'global', 'alive', 'at_origin'\]"):
        mruns.place_deep_runs(pd.DataFrame([_row(2, 1e-3, 1.0, np.ones(10))]).drop(columns=["rel", "global"]))


def test_the_committed_ufm_tables_are_read_for_both_profiles():
    frame = mruns.ufm_frame(RESULTS)
    assert len(frame) == 176 and set(frame["profile"]) == set(mruns.PROFILES)
    np.testing.assert_allclose([frame["rel"].min(), frame["rel"].max()], [0.1, 1.5], rtol=1e-9)
    assert (frame["global"] == ufmtrain.at_global_minimum(frame["gap"])).all()
    assert (frame.loc[frame.L == 1, "global"]).all()  # every run with L = 1 at the global minimum
    deep = mruns.place_deep_runs(frame)
    assert (deep["global"] | deep["partial"] | deep["jumped"]).all()
    assert not (deep["partial"] & deep["jumped"]).any() and deep["jumped"].any() and deep["partial"].any()


def test_a_folder_without_both_ufm_tables_is_refused_by_name(tmp_path):
    shutil.copy(RESULTS / "ufm-cifar10.csv", tmp_path)
    with pytest.raises(ValueError, match=r"^folder .* has no UFM table of \['emnist-letters'\]"):
        mruns.ufm_frame(tmp_path)


def test_the_committed_mlp_runs_are_read_beside_the_ufm_at_their_decays():
    table, frame = mruns.mlp_frame(RESULTS / "mlp-cifar10")
    assert len(frame) == len(table) == 13 and set(frame["L"]) == {1, 3}
    assert frame[["L", "lam"]].equals(frame.sort_values(["L", "lam"])[["L", "lam"]])
    assert (frame["gap"] >= -mino.BELOW_MINIMUM_RTOL).all()
    assert (frame.loc[frame.L == 1, "modes_lost"] == 0).all()  # L = 1: set against the global minimum alone
    assert (frame.loc[frame.L == 3, "modes_lost"] > 0).sum() == 2
    n = frame["counts"].iloc[0]
    for _, r in frame.iterrows():  # the theory's columns, from the decay alone
        assert r["modes_theory"] == int(mino.alive_at_minimum(n, r["lam"], r["lam"], L=r["L"]).sum())
        assert r["minimum"] == ufm.minimum_value(n, r["lam"], r["lam"], L=r["L"])


def _run_files(run):
    """A run folder's params, its history's epoch, objective and train_acc columns and its class accuracies at the
    last record, read with csv and json alone (floats as Python parses them, to the last bit)."""
    params = json.loads((run / "params.json").read_text())
    with open(run / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    with open(run / "class_accuracy.csv", newline="") as f:
        final = list(csv.reader(f))[-1][1:]
    return params, {c: np.array([float(r[c]) for r in history]) for c in ("epoch", "objective", "train_acc")}, \
        np.array([float(v) for v in final])


@pytest.mark.parametrize("edited", [False, True])
def test_each_mlp_run_s_last_records_are_read_from_its_own_files(tmp_path, edited):
    """Per run, against its own files: the records' spacing is its metric_every, train_acc and the objective its
    history's last (the last three kept), the classes it classifies those whose last accuracy is 1, the gap
    relative to the UFM's minimum, and with L = 1 the nearest critical point the global minimizer (above it by the
    gap).  The theory's classes read a tie of the minimizer's largest outputs as an arg-max (one tied class right)
    or as an error (none): never fewer the first way, and more at the decays past a threshold where two classes
    tie.  ``edited``: a copy of the runs where one run classifies a class on half its samples at its last record
    and had another training accuracy at the record before."""
    folder = RESULTS / "mlp-cifar10"
    if edited:
        folder = tmp_path / "mlp"
        shutil.copytree(RESULTS / "mlp-cifar10", folder)
        run = folder / "L-1_lam_W-0.01196"
        lines = (run / "class_accuracy.csv").read_text().splitlines()
        assert lines[-1].startswith("1000,0.0,")
        (run / "class_accuracy.csv").write_text("\n".join(lines[:-1] + ["1000,0.5," + lines[-1][9:]]) + "\n")
        lines = (run / "history.csv").read_text().splitlines()
        assert lines[-2].startswith("900,") and lines[-2].count(",0.9333333333333333,") == 1
        lines[-2] = lines[-2].replace(",0.9333333333333333,", ",0.9,")
        (run / "history.csv").write_text("\n".join(lines) + "\n")
    _, frame = mruns.mlp_frame(folder)
    for _, r in frame.iterrows():
        params, history, final = _run_files(folder / r["name"])
        n, lam, L, bias = np.array(params["counts"]), params["lam_H"], params["L"], params["bias"]
        assert r["record_every"] == params["metric_every"] == history["epoch"][-1] - history["epoch"][-2]
        assert r["train_acc"] == history["train_acc"][-1] and r["objective"] == history["objective"][-1]
        assert len(r["objective_last"]) == 3
        np.testing.assert_array_equal(r["objective_last"], history["objective"][-3:])
        assert r["classes_correct"] == int((final == 1).sum())
        minimum = ufm.minimum_value(n, lam, lam, L=L, bias=bias)
        assert r["gap"] == (history["objective"][-1] - minimum) / minimum
        if L == 1:
            assert r["above_nearest"] == r["gap"] and r["modes_lost"] == 0
        for column, ties in (("classes_theory", "argmax"), ("classes_strict", "error")):
            assert r[column] == int((mino.minimizer_class_accuracy(n, lam, lam, L=L, bias=bias, ties=ties) == 1).sum())
    assert (frame["classes_theory"] >= frame["classes_strict"]).all()
    assert (frame["classes_theory"] > frame["classes_strict"]).any()
    if edited:  # the class right on half its samples is not counted, nor the record before the last read
        assert frame.set_index("name").loc["L-1_lam_W-0.01196", ["classes_correct", "train_acc"]].tolist() == [
            8, 0.9333333333333333]


def test_a_folder_of_mlp_runs_that_is_not_one_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="^folder .* is not a folder of MLP runs"):
        mruns.mlp_frame(tmp_path / "none")
    with pytest.raises(ValueError, match="^folder .* has no sweep.csv"):
        mruns.mlp_frame(tmp_path)
    copy = tmp_path / "mlp"
    shutil.copytree(RESULTS / "mlp-cifar10", copy)
    shutil.rmtree(next(d for d in sorted(copy.iterdir()) if d.is_dir()))
    with pytest.raises(ValueError, match="^folder .*: its sweep.csv lists"):
        mruns.mlp_frame(copy)


@pytest.mark.parametrize("change", ["status", "lam_H"])
def test_an_mlp_run_unfinished_or_with_other_decays_is_refused_by_name(tmp_path, change):
    """A run folder of the MLP that did not finish, or whose lam_H is not its lam_W (the UFM it is set against ties
    them), is refused naming ``folder`` and the run."""
    copy = tmp_path / "mlp"
    shutil.copytree(RESULTS / "mlp-cifar10", copy)
    run = sorted(d for d in copy.iterdir() if d.is_dir())[0]
    name = "provenance.json" if change == "status" else "params.json"
    record = json.loads((run / name).read_text())
    if change == "status":
        record["status"] = "stopped"
    else:
        record["lam_H"] = 2 * record["lam_W"]
    (run / name).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=rf"^folder .*: the run {run.name} is not a finished run"):
        mruns.mlp_frame(copy)


@pytest.mark.parametrize("folder", [None, 3, b"results", ""])
def test_a_folder_that_is_no_path_is_refused_by_name(folder):
    for read in (mruns.ufm_frame, mruns.mlp_frame):
        with pytest.raises(ValueError, match="^folder must be the path of a folder"):
            read(folder)


def test_a_run_that_keeps_a_mode_without_a_nonzero_minimizer_is_placed_as_jumped():
    """L = 3 with a bias, CIFAR-10's table counts, twice the last threshold: no mode has a nonzero minimizer there,
    so a run whose strengths keep every mode is at no partial collapse (and not at the global minimum, the origin):
    jumped, where partial_minimum itself would refuse its alive modes."""
    n, L = ufmtrain.table_counts("cifar10"), 3
    kappa = mino.problem_spectrum(n, True)
    lam = 2 * mino.mode_thresholds(n, L, True)["lam"].max()
    assert not mino.nonzero_minimizer_exists(n, lam, lam, L, True).any()
    deep = mruns.place_deep_runs(mruns.count_alive(pd.DataFrame([_row(L, lam, 3 * ufm.minimum_value(n, lam, lam, L=L),
                                                                     0.9 * kappa)])))
    assert deep["jumped"].tolist() == [True] and deep["partial"].tolist() == [False]
    with pytest.raises(ValueError, match="^alive keeps a mode"):
        mino.partial_minimum(n, lam, lam, L, True, deep["alive"].iloc[0])


def _seed_rows(profile, bias, L, rel, modes, kinds):
    """Runs of one setting at one decay, one per seed: their modes alive and where each ended ("g", "p" or "j")."""
    return [dict(profile=profile, bias=bias, L=L, rel=rel, seed=seed, modes_alive=m, **{"global": k == "g"},
                 partial=k == "p") for seed, (m, k) in enumerate(zip(modes, kinds))]


def test_the_seeds_of_a_setting_are_compared_per_l_and_decay():
    """Three seeds of CIFAR-10 with a bias at two decays of L = 2 and one of L = 3, two more seeds of L = 2 at a decay
    0.0004 above one of those, beside a setting with one seed: the fewest and most modes alive, whether the seeds end
    apart, the spread among those at a critical point and whether one is at the global minimum and another at a
    partial collapse; decays equal to six digits group, decays that differ in the fourth do not."""
    rows = (_seed_rows("cifar10", True, 2, 0.1, [8, 9, 9], "pgg") + _seed_rows("cifar10", True, 2, 0.5 + 1e-9,
            [5, 5, 5], "ggg") + _seed_rows("cifar10", True, 3, 0.5, [2, 4, 7], "ppj")
            + _seed_rows("cifar10", True, 2, 0.5004, [4, 4], "gg")
            + _seed_rows("emnist-letters", True, 2, 0.1, [1], "g"))
    rows[4]["rel"] = 0.5  # the same decay to six digits as its two other seeds
    out = mruns.seed_spread(pd.DataFrame(rows))
    assert out.index.tolist() == [(2, 0.1), (2, 0.5), (2, 0.5004), (3, 0.5)]
    assert out["min"].tolist() == [8, 5, 4, 2] and out["max"].tolist() == [9, 5, 4, 7]
    assert out["runs"].tolist() == [3, 3, 2, 3]
    assert out["differ"].tolist() == [True, False, False, True]
    assert out["spread"].tolist() == [1, 0, 0, 2]  # the jumped run of L = 3 is left out of the spread
    assert out["kinds"].tolist() == [True, False, False, False]


def test_seed_spread_refuses_a_frame_without_exactly_one_setting_at_several_seeds_by_name():
    one_seed = pd.DataFrame(_seed_rows("cifar10", True, 2, 0.1, [8], "g"))
    with pytest.raises(ValueError, match="^deep must hold runs at several seeds for one profile and bias"):
        mruns.seed_spread(one_seed)
    two = pd.DataFrame(_seed_rows("cifar10", True, 2, 0.1, [8, 9], "gp") + _seed_rows("cifar10", False, 2, 0.1,
                                                                                        [8, 9], "gp"))
    with pytest.raises(ValueError, match="^deep must hold runs at several seeds for one profile and bias"):
        mruns.seed_spread(two)
    with pytest.raises(ValueError, match="^deep"):
        mruns.seed_spread(one_seed.drop(columns="seed"))
