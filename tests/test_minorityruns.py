"""nclib.minorityruns: the runs of minority collapse read back and placed among the critical points of Lemma A.2
(chapters ch-minority and ch-minority-runs): where a run of the UFM ends (the global minimum, a partial collapse, or
neither), its modes counted again at a tolerance, the committed tables and MLP runs read as those chapters read them,
and the refusals by name."""
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


def test_the_runs_with_a_deep_head_are_placed_at_the_minimum_at_a_partial_collapse_or_neither():
    """CIFAR-10's table counts with a bias, L = 3, half the last threshold: a run at the global minimizer's value and
    strengths, one at the value of the critical point without the weakest mode the minimizer keeps (its strengths
    those of that point), one far above every critical point, and a run with L = 1, which is not placed."""
    n, L = ufmtrain.table_counts("cifar10"), 3
    kappa = mino.problem_spectrum(n, True)
    lam = 0.5 * mino.mode_thresholds(n, L, True)["lam"].max()
    keep = mino.alive_without_weakest(n, lam, lam, L, True, 1)
    at_min = ufm.mode_strengths(kappa, n.sum(), lam, lam, L=L)
    rows = [_row(L, lam, ufm.minimum_value(n, lam, lam, L=L), at_min),
            _row(L, lam, mino.partial_minimum(n, lam, lam, L, True, keep), np.where(keep, at_min, 0.0)),
            _row(L, lam, 3 * ufm.minimum_value(n, lam, lam, L=L), 0.9 * kappa),
            _row(1, lam, ufm.minimum_value(n, lam, lam, L=1), ufm.mode_strengths(kappa, n.sum(), lam, lam, L=1))]
    deep = mruns.place_deep_runs(mruns.count_alive(pd.DataFrame(rows)))
    assert list(deep.index) == [0, 1, 2]
    assert deep["global"].tolist() == [True, False, False]
    assert deep["partial"].tolist() == [False, True, False]
    assert deep["jumped"].tolist() == [False, False, True]
    assert deep["modes_alive"].tolist() == [int(keep.sum()) + 1, int(keep.sum()), int((kappa > 0).sum())]
    assert deep["fewer_modes"].tolist() == [False, True, False] and deep["more_modes"].tolist() == [False, False, True]
    assert (deep["band"] == "0.3 to 1").all() and not deep["origin_wrongly"].any()


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
    """Three seeds of CIFAR-10 with a bias at two decays of L = 2 and one of L = 3, beside a setting with one seed:
    the fewest and most modes alive, whether the seeds end apart, the spread among those at a critical point and
    whether one is at the global minimum and another at a partial collapse; decays equal to six digits group."""
    rows = (_seed_rows("cifar10", True, 2, 0.1, [8, 9, 9], "pgg") + _seed_rows("cifar10", True, 2, 0.5 + 1e-9,
            [5, 5, 5], "ggg") + _seed_rows("cifar10", True, 3, 0.5, [2, 4, 7], "ppj")
            + _seed_rows("emnist-letters", True, 2, 0.1, [1], "g"))
    rows[4]["rel"] = 0.5  # the same decay to six digits as its two other seeds
    out = mruns.seed_spread(pd.DataFrame(rows))
    assert out.index.tolist() == [(2, 0.1), (2, 0.5), (3, 0.5)]
    assert out["min"].tolist() == [8, 5, 2] and out["max"].tolist() == [9, 5, 7] and out["runs"].tolist() == [3] * 3
    assert out["differ"].tolist() == [True, False, True]
    assert out["spread"].tolist() == [1, 0, 2]  # the jumped run of L = 3 is left out of the spread
    assert out["kinds"].tolist() == [True, False, False]


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
