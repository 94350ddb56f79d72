"""The precision stability runs (nclib.figures.stability, scripts/stability_runs.py): the paired runs' parameters,
what counts as a spike, the rule that chooses the figure runs' precision, and the script end to end on the CPU."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from nclib import figures, train, ufm
from nclib.figures import stability

from test_gpu_scripts import _script, fake_cifar

stability_runs = _script("stability_runs")


def row(precision, seed, spiked):
    return dict(precision=precision, seed=seed, spiked=spiked)


@pytest.mark.parametrize("fp32, tf32, precision, case", [
    ([], [], "tf32", "no spike"),
    ([], [1], "fp32", "tf32 spikes more"),
    ([0], [0, 2], "fp32", "tf32 spikes more"),
    ([1], [1], "tf32", "alike"),
    ([0, 1, 2], [0, 1, 2], "tf32", "alike"),
    ([0], [], "tf32", "fp32 spikes too"),
    ([0], [1, 2], "tf32", "fp32 spikes too"),
])
def test_precision_decision_follows_the_fixed_rule(fp32, tf32, precision, case):
    rows = [row("fp32", s, s in fp32) for s in (0, 1, 2)] + [row("tf32", s, s in tf32) for s in (0, 1, 2)]
    got = stability.precision_decision(rows)
    assert (got["precision"], got["case"]) == (precision, case)
    assert got["seeds"] == [0, 1, 2] and got["spiked"] == {"fp32": fp32, "tf32": tf32}


def test_precision_decision_counts_only_paired_seeds():
    rows = [row("fp32", 0, False), row("tf32", 0, False), row("tf32", 1, True)]  # seed 1 has no fp32 run
    assert stability.precision_decision(rows) == dict(precision="tf32", case="no spike", seeds=[0],
                                                      spiked={"fp32": [], "tf32": []})
    with pytest.raises(ValueError, match="no seed with both"):
        stability.precision_decision([row("tf32", 1, True)])


def test_precision_decision_and_stability_glue_refuse_what_is_not_rows_by_name():
    """Text, None, a row without its columns, a precision other than the two, a spiked that is not True or False,
    and two rows of one run are refused naming rows, not read (a string's characters as rows, a missing key)."""
    glue_row = dict(diverged=False, rise=None, first_100=10, lost_100=False)
    pair = [dict(row("fp32", 0, False), **glue_row), dict(row("tf32", 0, True), **glue_row)]
    for bad in ("ab", None, [{}], [row("fp16", 0, True)], [row("fp32", -1, True)], [row("fp32", 0, 1)],
                [row("fp32", 0, True), row("fp32", 0, False), row("tf32", 0, True)], pair + ["row"]):
        for fn in (stability.precision_decision, stability.stability_glue):
            with pytest.raises(ValueError, match=r"^rows\b"):
                fn(bad)
    with pytest.raises(ValueError, match=r"^rows\[1\] lacks the column\(s\) \['diverged'"):
        stability.stability_glue([pair[0], row("tf32", 0, True)])  # what the decision reads, but not the glue
    assert stability.precision_decision(pair)["precision"] == "fp32"
    assert stability.stability_glue(tuple(pair))["tf32-spiked"] == "1"


def test_rise_from_low_measures_a_rise_above_any_earlier_low():
    epoch = np.arange(0, 80, 10)
    # a rise that pauses on the way (x1.5, a dip, x1.6): no two consecutive records differ by x2, the peak is
    # 2.4 / 0.9 times the low at epoch 20
    h = dict(epoch=epoch, objective=np.array([3.0, 1.0, 0.9, 1.35, 1.3, 2.08, 2.4, 1.0]))
    got = stability.rise_from_low(h)
    assert got == dict(factor=pytest.approx(2.4 / 0.9), low_epoch=20, epoch=60)
    assert stability.spiked(figures.Run(None, {}, h, {})) and not stability.spiked(figures.Run(None, {}, h, {}), 3)
    assert figures.largest_rise(dict(h, lr=np.ones(8), nc1=h["objective"], nc3=h["objective"],
                                     train_acc=np.ones(8)))["factor"] < figures.SPIKE_FACTOR
    assert stability.rise_from_low(dict(epoch=epoch[:3], objective=np.array([3.0, 2.0, 2.0]))) is None
    with pytest.raises(ValueError, match="finite positive"):
        stability.rise_from_low(dict(epoch=epoch[:2], objective=np.array([1.0, np.nan])))


def test_rise_is_consecutive_says_when_the_two_measures_of_a_rise_agree():
    """A rise from the record just before its peak is the same rise between consecutive records; one that paused on
    the way, or rose from a low two records back, is not; a run that never rises has none."""
    epoch = np.arange(0, 60, 10)

    def run(objective):
        y = np.array(objective)
        return figures.Run(None, {}, dict(epoch=epoch, objective=y, lr=np.ones(6), nc1=y, nc3=y,
                                          train_acc=np.ones(6)), {})

    assert stability.rise_is_consecutive(run([3.0, 1.0, 0.5, 20.0, 4.0, 2.0]))  # x40 from epoch 20 to 30
    assert not stability.rise_is_consecutive(run([3.0, 1.0, 0.5, 0.9, 20.0, 2.0]))  # the low is two records back
    assert not stability.rise_is_consecutive(run([3.0, 1.0, 0.9, 0.8, 0.7, 0.6]))  # never rises
    # the committed strict fp32 runs of Figure 1's L = 6 setting rose from the record just before their peaks
    assert all(stability.rise_is_consecutive(r) for r in stability.load_stability(stability.RESULTS_CPU).values())


def test_the_committed_figure_1_spike_counts_as_a_spike():
    """The rise that raised the question (Figure 1 on the GPU, L = 6, between epochs 100 and 200) is a spike by
    the stability runs' definition; the L = 1 and 3 runs are not."""
    runs = figures.load_figure(1, "gpu")
    assert [L for L, run in runs.items() if stability.spiked(run)] == [6]
    assert (100, 200) in [(a, b) for a, b, _ in figures.other_spikes(runs[6].history)]
    with pytest.raises(ValueError, match="threshold"):
        stability.spiked(runs[6], threshold=0)
    with pytest.raises(ValueError, match="threshold must be above 1"):
        stability.spiked(runs[6], threshold=1)  # every rise would be a spike
    assert stability.spiked(runs[6], threshold=1.01)


def test_a_pair_differs_only_in_precision_and_is_figure_1_at_L6(tmp_path):
    data = str(fake_cifar(tmp_path / "cifar.npz"))
    runs, shared = stability.pair_kwargs(2, out_dir="/tmp/x", data_path=data)
    assert runs == [dict(precision="fp32", run_name="fig1-L6-fp32-seed2"),
                    dict(precision="tf32", run_name="fig1-L6-tf32-seed2")]
    fig1 = figures.train_kwargs(figures.figure_parameters(1, "gpu"), 6)
    changed = {k: shared[k] for k in shared if shared[k] != fig1.get(k)}
    assert changed == dict(epochs=400, metric_every=10, seed=2, out_dir="/tmp/x", data_path=data, progress=False)
    assert shared["L"] == 6 and shared["bias"] is True and shared["width"] == 2048 and shared["lr"] == 1e-4
    for q in (train.check_params(**{**shared, **r}) for r in runs):  # valid parameter sets
        assert q["precision"] in stability.PRECISIONS
    for bad in (dict(precision="bf16"), dict(L=3), dict(run_name="x")):
        with pytest.raises(ValueError, match="must not set"):
            stability.pair_kwargs(0, **bad)
    with pytest.raises(ValueError, match="unknown parameter"):
        stability.pair_kwargs(0, widht=32)
    # an override is checked as figure_parameters checks it, not applied after that check
    for bad, name in ((dict(lr=-1.0), "lr"), (dict(width=0), "width"), (dict(epochs=0), "epochs"),
                      (dict(batch_size=0), "batch_size"), (dict(lam_H=-1.0), "lam_H")):
        with pytest.raises(ValueError, match=rf"^{name}\b"):
            stability.pair_kwargs(0, **bad)
    assert stability.pair_kwargs(0, width=32, epochs=3)[1]["width"] == 32  # a CPU test's settings pass
    with pytest.raises(ValueError, match="seed"):
        stability.pair_kwargs(-1)
    with pytest.raises(ValueError, match="precision must be one of"):
        stability.run_name("bf16", 0)


def _tiny_sets(tmp_path, **more):
    """The script's --set arguments for a tiny CPU test of the tooling on a fake CIFAR-10 file."""
    params = dict(data_path=fake_cifar(tmp_path / "cifar.npz"), device="cpu", width=16, **more)
    return [arg for k, v in params.items() for arg in ("--set", f"{k}={v}")]


def test_the_script_makes_the_pairs_keeps_finished_ones_and_summarizes(tmp_path, capsys):
    out = tmp_path / "stability"
    sets = _tiny_sets(tmp_path, epochs=10)
    assert stability_runs.main(["--seeds", "0", "--extra-seeds", "1", "--out", str(out), *sets]) == 0
    log = capsys.readouterr().out
    assert "seed 1 (extra)" in log and "decision: tf32 (no spike; seeds [0, 1]" in log
    with pytest.raises(ValueError, match="'width': \\(16, 2048\\)"):
        stability.load_stability(out)  # tooling runs never count as runs of the setting
    runs = stability.load_stability(out, width=16, epochs=10)
    assert sorted(runs) == [("fp32", 0), ("fp32", 1), ("tf32", 0), ("tf32", 1)]
    for (precision, seed), run in runs.items():
        assert run.params["precision"] == precision and run.params["seed"] == seed and run.params["L"] == 6
        assert run.history["epoch"].tolist() == [0, 10]
        assert sorted(run.provenance["trained_with"]) == [stability.run_name(
            "tf32" if precision == "fp32" else "fp32", seed)]
    # on the CPU TF32 does not exist: each pair's two runs are identical
    for seed in (0, 1):
        np.testing.assert_array_equal(runs["fp32", seed].history["objective"], runs["tf32", seed].history["objective"])
    rows = stability.stability_rows(runs)
    assert [(r["precision"], r["seed"]) for r in rows] == sorted(runs)
    assert all(r["epochs"] == 10 and r["final_objective"] >= r["min_objective"] > 0 for r in rows)
    # again: the finished pairs are kept; a pair with other parameters in the same folders is refused
    assert stability_runs.main(["--seeds", "0", "1", "--out", str(out), *sets]) == 0
    assert capsys.readouterr().out.count("both runs ended already") == 2
    assert stability_runs.main(["--seeds", "0", "--out", str(out), *sets, "--set", "width=8"]) == 2
    assert "RunExists" in capsys.readouterr().err
    # a budget that one pair used up stops before the next
    assert stability_runs.main(["--seeds", "3", "4", "--budget-s", "0.01", "--out", str(out), *sets]) == 0
    log = capsys.readouterr().out
    assert "seed 4: not started" in log and (out / "fig1-L6-fp32-seed3").is_dir()
    assert not (out / "fig1-L6-fp32-seed4").exists()
    # the kept pairs' wall time is the estimate: with less budget than that, no new pair starts
    assert stability_runs.main(["--seeds", "0", "5", "--budget-s", "0.01", "--out", str(out), *sets]) == 0
    assert "seed 5: not started" in capsys.readouterr().out and not (out / "fig1-L6-fp32-seed5").exists()


@pytest.mark.parametrize("budget_s, made", [(26.9, [0, 1]), (27.0, [0, 1, 2]), (37.0, [0, 1, 2, 3])])
def test_a_pair_starts_only_with_1_2_times_the_longest_pair_left(tmp_path, monkeypatch, capsys, budget_s, made):
    """--budget-s: a pair starts only when the seconds left are at least 1.2 times the longest pair so far (not the
    last one). On a clock that the fake pairs advance, seed 0 takes 10 s and the others 5 s: after seeds 0 and 1,
    at 15 s, seed 2 needs 12 s left; after seed 2, at 20 s, seed 3 too."""
    import types

    clock = [0.0]
    trained = []

    def fake_pair(runs, **shared):
        trained.append(shared["seed"])
        clock[0] += 10.0 if shared["seed"] == 0 else 5.0

    monkeypatch.setattr(stability_runs, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(stability_runs, "pair_states", lambda runs, shared: [("absent", None)] * len(runs))
    monkeypatch.setattr(stability_runs.train, "run_many", fake_pair)
    args = types.SimpleNamespace(out=str(tmp_path), precisions=list(stability.PRECISIONS), overwrite=False,
                                 budget_s=budget_s, seeds=[0, 1])
    assert stability_runs.make_pairs(args, [0, 1, 2, 3], {}, 0.0, True) == []
    assert trained == made
    log = capsys.readouterr().out
    if len(made) < 4:
        left = budget_s - clock[0]
        assert f"seed {len(made)}: not started, {left:.0f} s left and a pair took 10 s" in log
    assert ("seed 2 (extra)" in log) == (2 in made) and "seed 1 (extra)" not in log


def test_extra_seeds_follow_the_largest_seed_given(tmp_path, monkeypatch):
    """--extra-seeds N: the N seeds after the largest of --seeds (max + 1, max + 2, ...), after the given ones."""
    got = []
    monkeypatch.setattr(stability_runs, "make_pairs", lambda args, seeds, *rest: got.append(seeds) or [])
    monkeypatch.setattr(stability_runs, "summarize", lambda *a: 0)
    sets = _tiny_sets(tmp_path)
    assert stability_runs.main(["--seeds", "2", "0", "--extra-seeds", "3", "--out", str(tmp_path), *sets]) == 0
    assert stability_runs.main(["--seeds", "1", "--out", str(tmp_path), *sets]) == 0
    assert got == [[2, 0, 3, 4, 5], [1]]


@pytest.mark.parametrize("flags, refusal", [
    (["--seeds", "-1"], "--seeds must be non-negative integers, got -1"),
    (["--seeds", "0", "x"], "argument --seeds: invalid int value: 'x'"),
    (["--extra-seeds", "-1"], "--extra-seeds must be >= 0, got -1"),
    (["--budget-s", "-5"], "--budget-s must be a positive number of seconds, got -5.0"),
    (["--set", "precision=tf32"], "--set: overrides must not set 'precision': the stability runs fix it"),
    (["--set", "L=3"], "--set: overrides must not set 'L'"),
    (["--set", "widht=3"], "--set: unknown parameter(s) ['widht']"),
    (["--set", "width=abc"], "--set: width must be a positive integer, got 'abc'"),
    (["--set", "width=abc", "--overwrite"], "--set: width must be a positive integer, got 'abc'"),
    (["--set", "data_path=none"], "--set: data_path is required for dataset 'cifar10'"),
    (["--set", "width"], "--set"),
    (["--precisions", "bf16"], "argument --precisions: invalid choice: 'bf16'"),
])
def test_the_script_refuses_bad_flags_in_one_line_before_any_run(tmp_path, capsys, monkeypatch, flags, refusal):
    """A bad flag or parameter: one line naming the flag, status 2, before any pair is made or summarized."""
    def no_training(*args, **kwargs):
        raise AssertionError("a refused call reached the runs")

    monkeypatch.setattr(stability_runs.train, "run_many", no_training)
    out = tmp_path / "stability"
    with pytest.raises(SystemExit) as exc:
        stability_runs.main(["--out", str(out), *_tiny_sets(tmp_path), *flags])
    err = capsys.readouterr()
    assert exc.value.code == 2 and err.out == "" and not out.exists()
    assert err.err.startswith("scripts/stability_runs.py: error: ") and err.err.count("\n") == 1, err.err
    assert refusal in err.err


def test_only_a_run_on_another_device_is_the_overwrite_case(tmp_path, monkeypatch, capsys):
    """make_pairs replaces a pair's folders under --overwrite, or refuses them, only for a run trained on another
    kind of device (OtherDevice); any other error of reading the pair's folders is not taken as that one."""
    import types

    trained, error = [], []

    def states(runs, shared):
        raise error[0]

    monkeypatch.setattr(stability_runs.train, "run_many", lambda runs, **shared: trained.append(shared["seed"]))
    monkeypatch.setattr(stability_runs, "pair_states", states)
    args = types.SimpleNamespace(out=str(tmp_path), precisions=list(stability.PRECISIONS), overwrite=True,
                                 budget_s=None, seeds=[0])
    error[:] = [stability_runs.OtherDevice("trained on cpu")]
    assert stability_runs.make_pairs(args, [0], {}, 0.0, True) == [] and trained == [0]  # replaced
    args.overwrite = False
    with pytest.raises(stability_runs._Refused):
        stability_runs.make_pairs(args, [0], {}, 0.0, True)
    assert "seed 0: trained on cpu" in capsys.readouterr().err and trained == [0]
    error[:] = [ValueError("width must be a positive integer")]
    for args.overwrite in (True, False):  # not a device to replace: raised, nothing trained
        with pytest.raises(ValueError, match="width must be"):
            stability_runs.make_pairs(args, [0], {}, 0.0, True)
    assert trained == [0]


def test_stray_runs_are_the_folders_the_pairs_can_neither_keep_nor_make_again(tmp_path, capsys):
    """--check-out (stray_runs), the check a GPU job makes before its pairs: a run folder named as a stability run
    that ended with other parameters (a CPU trial left in the folder; it would fail its seed's pair, RunExists) or on
    a CPU where the pairs train on a GPU (OtherDevice) is named, status 2; the same run with the pairs' parameters
    on their kind of device is kept, and one that did not end is made again: neither is a stray."""
    out, data = tmp_path / "pairs", fake_cifar(tmp_path / "cifar.npz")
    run = out / "fig1-L6-fp32-seed0"
    shutil.copytree(stability.RESULTS_CPU / run.name, run)  # Figure 1's setting at L = 6, strict fp32, on a CPU
    params = json.loads((run / "params.json").read_text())
    (run / "params.json").write_text(json.dumps(dict(params, data_path=str(data))))
    own = dict(data_path=str(data), device="cpu")
    assert stability_runs.stray_runs(out, own) == {}  # the pair's own run: kept
    assert stability_runs.stray_runs(out, dict(own, device="auto"), cuda=False) == {}
    other = stability_runs.stray_runs(out, dict(own, width=16, epochs=10))
    assert list(other) == [str(run)] and "width = 2048, now 16; epochs = 400, now 10" in other[str(run)]
    on_gpu = stability_runs.stray_runs(out, dict(own, device="auto"), cuda=True)
    assert list(on_gpu) == [str(run)] and "trained on cpu" in on_gpu[str(run)]
    flags = ["--check-out", "--out", str(out), "--set", f"data_path={data}"]
    assert stability_runs.main(flags + ["--set", "width=16"]) == 2
    assert f"refused: run folder '{run}' holds a run that ended with other parameters" in capsys.readouterr().out
    assert stability_runs.main(flags + ["--set", "device=auto", "--on-gpu"]) == 2
    assert stability_runs.main(flags + ["--set", "device=cpu"]) == 0
    assert not run.with_name("fig1-L6-tf32-seed0").exists()
    prov = json.loads((run / "provenance.json").read_text())
    (run / "provenance.json").write_text(json.dumps(dict(prov, status="failed")))  # cut: made again, no stray
    assert stability_runs.stray_runs(out, dict(own, width=16, epochs=10)) == {}
    assert stability_runs.main(flags + ["--set", "width=16"]) == 0


def test_the_script_makes_the_fp32_runs_alone_when_asked_and_decides_nothing(tmp_path, capsys):
    """--precisions fp32: one run per seed (the strict fp32 runs made on a CPU), no TF32 folder, no decision."""
    out = tmp_path / "stability-cpu"
    sets = _tiny_sets(tmp_path, epochs=10)
    assert stability_runs.main(["--seeds", "1", "--precisions", "fp32", "--out", str(out), *sets]) == 0
    log = capsys.readouterr().out
    assert "fp32 seed 1: no spike" in log and "decision" not in log
    runs = stability.load_stability(out, width=16, epochs=10)
    assert sorted(runs) == [("fp32", 1)] and not (out / "fig1-L6-tf32-seed1").exists()
    assert runs["fp32", 1].provenance["trained_with"] == []
    assert stability_runs.main(["--seeds", "1", "--precisions", "fp32", "--out", str(out), *sets]) == 0
    assert "seed 1: the run ended already" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        stability_runs.main(["--precisions", "bf16", "--out", str(out), *sets])
    with pytest.raises(SystemExit) as exc:  # never beside the pairs of results/stability/
        stability_runs.main(["--seeds", "1", "--precisions", "fp32", *sets])
    assert exc.value.code == 2 and "needs its own --out" in capsys.readouterr().err


def test_a_diverged_run_is_a_spike_and_the_other_seeds_go_on(tmp_path, capsys):
    """A learning rate at which the runs diverge: nclib.train stops them as diverged, the script goes on to the
    next seed, the runs load as spiked ones and the decision counts them (here both precisions alike)."""
    out = tmp_path / "stability"
    sets = _tiny_sets(tmp_path, epochs=20, lr=50)
    assert stability_runs.main(["--seeds", "0", "1", "--out", str(out), *sets]) == 0
    log = capsys.readouterr().out
    assert log.count("diverged: ") == 2 and "fp32 seed 1: DIVERGED" in log
    assert "decision: tf32 (alike; seeds [0, 1]" in log
    runs = stability.load_stability(out, width=16, epochs=20, lr=50)
    assert len(runs) == 4 and all(stability.diverged(r) and stability.spiked(r) for r in runs.values())
    rows = stability.stability_rows(runs)
    assert all(r["diverged"] and r["spiked"] and r["epochs"] == 10 for r in rows)
    assert all(np.isfinite(r["final_objective"]) for r in rows)
    # ended pairs (diverged ones too) are kept when the command is run again
    assert stability_runs.main(["--seeds", "0", "1", "--out", str(out), *sets]) == 0
    assert capsys.readouterr().out.count("both runs ended already") == 2


def test_an_error_in_one_pair_leaves_the_other_seeds_and_a_cut_pair_is_made_again(tmp_path, capsys, monkeypatch):
    """A device error in seed 0's pair (any exception but divergence) is printed and seed 1 goes on (status 2); the
    runs of seed 0 that did not end are made again by the next call, without --overwrite."""
    out = tmp_path / "stability"
    sets = _tiny_sets(tmp_path, epochs=10)
    real = train.run_many

    def broken_for_seed_0(runs, **shared):
        if shared["seed"] == 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(runs, **shared)

    monkeypatch.setattr(stability_runs.train, "run_many", broken_for_seed_0)
    assert stability_runs.main(["--seeds", "0", "1", "--out", str(out), *sets]) == 2
    log = capsys.readouterr().out
    assert "seed 0: FAILED (RuntimeError); the next seed goes on" in log and "seed 1: done in" in log
    assert "decision: tf32 (no spike; seeds [1]" in log
    monkeypatch.undo()
    # seed 0's folders as a run cut off by a time limit leaves them: a failed run, never a result
    for name in ("fig1-L6-fp32-seed0", "fig1-L6-tf32-seed0"):
        (out / name).mkdir()
        (out / name / "params.json").write_text("{}")
        (out / name / "provenance.json").write_text(json.dumps({"status": "failed", "error": "KeyboardInterrupt"}))
    assert stability.whole_pairs(out) == [out / "fig1-L6-fp32-seed1", out / "fig1-L6-tf32-seed1"]
    assert stability_runs.main(["--seeds", "0", "1", "--out", str(out), *sets]) == 0
    log = capsys.readouterr().out
    assert "seed 0: its folders hold no whole pair" in log
    assert "seed 1: both runs ended already" in log and "decision: tf32 (no spike; seeds [0, 1]" in log
    # half a pair: the TF32 run ended (it diverged, say) and its fp32 partner was cut off, or never landed
    prov = out / "fig1-L6-fp32-seed1" / "provenance.json"
    prov.write_text(json.dumps(dict(json.loads(prov.read_text()), status="failed")))
    assert stability.whole_pairs(out) == [out / "fig1-L6-fp32-seed0", out / "fig1-L6-tf32-seed0"]
    assert stability_runs.main(["--seeds", "0", "1", "--out", str(out), *sets]) == 0
    assert "seed 1: its folders hold no whole pair" in capsys.readouterr().out
    shutil.rmtree(out / "fig1-L6-fp32-seed1")
    assert stability_runs.main(["--seeds", "1", "--out", str(out), *sets]) == 0
    assert "seed 1: its folders hold no whole pair" in capsys.readouterr().out
    assert len(stability.whole_pairs(out)) == 4


def test_an_interrupted_script_still_summarizes_the_pairs_that_ended(tmp_path, capsys, monkeypatch):
    out = tmp_path / "stability"
    sets = _tiny_sets(tmp_path, epochs=10)
    real = train.run_many

    def interrupted_at_seed_1(runs, **shared):
        if shared["seed"] == 1:
            raise KeyboardInterrupt  # what `timeout --signal=INT` raises
        return real(runs, **shared)

    monkeypatch.setattr(stability_runs.train, "run_many", interrupted_at_seed_1)
    assert stability_runs.main(["--seeds", "0", "1", "2", "--out", str(out), *sets]) == 1
    log = capsys.readouterr().out
    assert "interrupted: the pairs that ended are summarized below" in log and "seed 2" not in log
    assert "fp32 seed 0: no spike" in log and "decision: tf32 (no spike; seeds [0]" in log


def test_a_gpu_pair_whose_tf32_run_equals_its_fp32_run_is_named():
    """On a GPU a pair whose TF32 run did not use TF32 products (or ran number for number as the fp32 one) compares
    fp32 with itself; such seeds are named, and the script then makes no decision. CPU pairs are identical by
    design and never named."""
    base = stability.load_stability(stability.RESULTS_CPU)[("fp32", 0)]

    def run(precision, seed, device, products, shift=0.0):
        history = {k: np.asarray(v, dtype=float) + (shift if k == "objective" else 0.0)
                   for k, v in base.history.items()}
        return figures.Run(base.path, dict(base.params, precision=precision, seed=seed), history,
                           dict(base.provenance, device=device, products_precision=products))

    gpu = {("fp32", 0): run("fp32", 0, "cuda", "ieee"), ("tf32", 0): run("tf32", 0, "cuda", "tf32", 1e-9),
           ("fp32", 1): run("fp32", 1, "cuda", "ieee"), ("tf32", 1): run("tf32", 1, "cuda", "tf32"),
           ("fp32", 2): run("fp32", 2, "cuda:0", "ieee"), ("tf32", 2): run("tf32", 2, "cuda:0", "ieee", 1e-9),
           ("fp32", 3): run("fp32", 3, "cuda", "ieee")}
    assert stability.tf32_not_engaged(gpu) == [1, 2]  # 1: the same history; 2: no TF32 products recorded
    cpu = {("fp32", 0): run("fp32", 0, "cpu", "ieee"), ("tf32", 0): run("tf32", 0, "cpu", "ieee")}
    assert stability.tf32_not_engaged(cpu) == []


def _gpu_pair(folder, *, engaged: bool):
    """Seed 0's pair as a GPU job would hand it back, made from the committed strict fp32 run of seed 0
    (results/stability-cpu/): both runs recorded on a CUDA device, trained side by side; with ``engaged`` the TF32 run
    recorded TF32 products and its objective parts from the fp32 run's in the last digits, without it the TF32 run
    recorded strict fp32 products and the fp32 run's history number for number (TF32 not engaged)."""
    import csv

    src = stability.RESULTS_CPU / "fig1-L6-fp32-seed0"
    for q, products in (("fp32", "ieee"), ("tf32", "tf32" if engaged else "ieee")):
        path = folder / stability.run_name(q, 0)
        shutil.copytree(src, path)
        params = json.loads((path / "params.json").read_text())
        (path / "params.json").write_text(json.dumps(dict(params, precision=q, device="cuda", run_name=path.name)))
        prov = json.loads((path / "provenance.json").read_text())
        partner = stability.run_name("tf32" if q == "fp32" else "fp32", 0)
        (path / "provenance.json").write_text(json.dumps(dict(
            prov, precision=q, device="cuda", device_name="NVIDIA H200", products_precision=products,
            tf32_matmul=products == "tf32", trained_with=[partner])))
        if q == "tf32" and engaged:
            with open(path / "history.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            for r in rows:
                r["objective"] = repr(float(r["objective"]) * (1 + 1e-9))
            with open(path / "history.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return folder


@pytest.mark.parametrize("engaged", [True, False])
def test_committed_gpu_pairs_must_have_used_tf32(tmp_path, engaged):
    """load_stability(committed=True), as a chapter reads results/stability/, refuses a GPU pair whose TF32 run did not
    use TF32 (tf32_not_engaged: it compares fp32 with itself, and precision_decision, which reads only whether each
    run spiked, would call it "tf32 (no spike)"), naming the check and the seed; a job's folder (committed=False)
    still loads, for scripts/stability_runs.py to say why it decides nothing. A pair whose TF32 run engaged loads."""
    folder = _gpu_pair(tmp_path / "stability", engaged=engaged)
    runs = stability.load_stability(folder)
    assert sorted(runs) == [("fp32", 0), ("tf32", 0)]
    assert stability.tf32_not_engaged(runs) == ([] if engaged else [0])
    if engaged:
        assert sorted(stability.load_stability(folder, committed=True)) == [("fp32", 0), ("tf32", 0)]
    else:
        with pytest.raises(ValueError, match=r"tf32_not_engaged: on the GPU the TF32 runs of seeds \[0\]"):
            stability.load_stability(folder, committed=True)


@pytest.mark.parametrize("engaged", [True, False])
def test_the_script_summarizes_without_training_and_decides_only_on_tf32_pairs(tmp_path, capsys, engaged):
    """--summary-only (how scripts/gpu_figures.sh's STABILITY mode ends): no run is made; the pairs under --out are
    summarized and decided (status 0), or, where the TF32 runs did not use TF32, the script says so and decides
    nothing (status 1)."""
    folder = _gpu_pair(tmp_path / "stability", engaged=engaged)
    before = sorted(p.name for p in folder.iterdir())
    sets = ["--set", f"data_path={fake_cifar(tmp_path / 'cifar.npz')}"]
    status = stability_runs.main(["--summary-only", "--seeds", "0", "1", "--out", str(folder), *sets])
    log = capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == before  # seed 1's pair is not made
    assert "fp32 seed 0: " in log and "tf32 seed 0: " in log
    if engaged:
        assert status == 0 and "\ndecision: " in log and "no decision" not in log
    else:
        assert status == 1 and "no decision: on the GPU the TF32 runs of seeds [0]" in log and "\ndecision" not in log


def test_load_stability_refuses_what_is_not_a_stability_run(tmp_path):
    with pytest.raises(ValueError, match="no stability runs that ended"):
        stability.load_stability(tmp_path)
    path = tmp_path / "fig1-L6-fp32-seed0"
    path.mkdir()
    (path / "provenance.json").write_text(json.dumps({"status": "stopped"}))
    with pytest.raises(ValueError, match="no stability runs that ended"):
        stability.load_stability(tmp_path)  # stopped runs do not count


def test_load_stability_refuses_a_finished_run_whose_history_is_cut_short(tmp_path):
    # a cut history would read as a run without a spike and could change the precision decision
    src = stability.RESULTS_CPU / "fig1-L6-fp32-seed0"
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    assert sorted(stability.load_stability(tmp_path)) == [("fp32", 0)]
    lines = (dst / "history.csv").read_text().splitlines()
    (dst / "history.csv").write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(ValueError, match="its history holds 4 metric epochs .* finished run of 400 epochs"):
        stability.load_stability(tmp_path)


@pytest.mark.parametrize("drop", [("precision",), ("seed",), ("precision", "seed")])
def test_load_stability_refuses_a_run_whose_parameters_do_not_name_its_pair_by_name(tmp_path, drop):
    src = stability.RESULTS_CPU / "fig1-L6-fp32-seed0"
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    params = json.loads((dst / "params.json").read_text())
    (dst / "params.json").write_text(json.dumps({k: v for k, v in params.items() if k not in drop}))
    with pytest.raises(ValueError, match=f"{dst.name}.* records no {' and no '.join(drop)}$"):
        stability.load_stability(tmp_path)


def test_setting_differences_reads_the_recorded_parameters_against_the_pair():
    # a committed strict fp32 run made on a CPU: its data file, device and folder are free, the rest is the setting
    run = stability.load_stability(stability.RESULTS_CPU)[("fp32", 1)]
    assert run.params["data_path"] is not None and run.params["device"] == "cpu"
    assert stability.setting_differences(run.params) == {}
    assert stability.setting_differences(dict(run.params, lr=1e-3)) == {"lr": (1e-3, 1e-4)}
    assert stability.setting_differences(dict(run.params, lam_H=2e-4)) == {"lam_H": (2e-4, 1e-4)}  # K x 1e-5
    assert stability.setting_differences(dict(run.params, width=16), width=16) == {}
    assert set(stability.setting_differences(run.params, epochs=10)) == {"epochs"}
    assert stability.setting_differences(run.params, epochs=np.int64(400)) == {}  # numpy values compare as numbers
    older = {k: v for k, v in run.params.items() if k != "lam_backbone"}  # made before lam_backbone existed
    assert stability.setting_differences(older) == {}
    with pytest.raises(ValueError, match="seed"):
        stability.setting_differences(dict(run.params, seed=-1))
    with pytest.raises(ValueError, match="must not set"):
        stability.setting_differences(run.params, L=3)


def test_stability_glue_counts_per_precision_over_the_paired_seeds():
    def r(q, seed, spiked, rise, first, lost=False, diverged=False):
        return dict(precision=q, seed=seed, spiked=spiked, rise=rise, first_100=first, lost_100=lost,
                    diverged=diverged)

    rows = [r("fp32", 0, False, 1.3, 90), r("fp32", 1, False, None, 100), r("fp32", 2, False, 1.1, 90),
            r("tf32", 0, True, 2.4, 90, lost=True), r("tf32", 1, False, 1.2, 110), r("tf32", 2, True, None, None,
                                                                                     diverged=True),
            r("tf32", 3, True, 9.0, 80)]  # seed 3 has no fp32 pair: left out
    g = stability.stability_glue(rows)
    assert g == {"seeds": "3",
                 "fp32-spiked": "0", "fp32-diverged": "0", "fp32-rose": "2", "fp32-rise-max": "1.3",
                 "fp32-reached-100": "3", "fp32-first-100-min": "90", "fp32-first-100-max": "100",
                 "fp32-lost-100": "0",
                 "tf32-spiked": "2", "tf32-spiked-seeds": "0, 2", "tf32-diverged": "1", "tf32-rose": "2",
                 "tf32-rise-max": "2.4", "tf32-reached-100": "2", "tf32-first-100-min": "90",
                 "tf32-first-100-max": "110", "tf32-lost-100": "1"}
    # what does not exist is absent, not a word: no run rose, none spiked
    same = [r(q, 0, False, None, 50) for q in ("fp32", "tf32")]
    g = stability.stability_glue(same)
    assert (g["fp32-first-100-min"], g["fp32-first-100-max"], g["tf32-rose"]) == ("50", "50", "0")
    assert not {"tf32-rise-max", "fp32-spiked-seeds", "tf32-spiked-seeds"} & set(g)
    never = stability.stability_glue([r("fp32", 0, True, 1234.5, None), r("tf32", 0, False, None, 50)])
    assert never["fp32-reached-100"] == "0" and "fp32-first-100-min" not in never
    assert all(v.replace(",", "").replace(".", "").replace(" ", "").isdigit() for v in [*g.values(), *never.values()])
    # a rise of four digits is written as the chapters write numbers, not in E-notation
    assert never["fp32-rise-max"] == "1,230"


def _class_record(path, counts, rows):
    path.mkdir()
    lines = ["epoch," + ",".join(f"class_{k}" for k in range(len(counts)))]
    lines += [",".join([str(e)] + [str(v) for v in acc]) for e, acc in rows]
    (path / "class_accuracy.csv").write_text("\n".join(lines) + "\n")
    return figures.Run(path, {"dataset": "synthetic", "counts": counts}, {}, {})


def test_smallest_pair_turns_counts_the_records_where_one_smallest_class_is_lost_whole(tmp_path):
    counts = [2, 1, 1, 3]  # the smallest pair: classes 1 and 2
    rows = [(0, [0.5, 0.0, 0.0, 0.3]),  # both lost: not "one of the two"
            (10, [1, 0.0, 1.0, 1]), (20, [1, 1.0, 0.0, 1]),  # one, then the other, held at 100 %
            (30, [1, 0.6, 0.6, 1]),  # both partly held: the turns start again after this record
            (40, [1, 0.0, 0.9, 1]), (50, [1, 0.0, 0.75, 1]), (60, [1, 0.8, 0.0, 1]), (70, [0, 0.0, 1.0, 1])]
    turns = stability.smallest_pair_turns(_class_record(tmp_path / "a", counts, rows))
    assert turns == dict(since=40, records=4, held=0.75, swaps=2, both_since=None)
    # the last record holds both: no such stretch up to the end
    none = stability.smallest_pair_turns(_class_record(tmp_path / "b", counts, rows + [(80, [1, 1, 1, 1])]))
    assert none == dict(since=None, records=0, held=None, swaps=0, both_since=None)
    # both lost whole from epoch 80 to the last record (after a record where one of them was held)
    both = stability.smallest_pair_turns(_class_record(tmp_path / "e", counts,
                                                       rows + [(80, [1, 0, 0, 1]), (90, [1, 0, 0, 1])]))
    assert both == dict(since=None, records=0, held=None, swaps=0, both_since=80)
    with pytest.raises(ValueError, match="has 3 classes, not 2"):
        stability.smallest_pair_turns(_class_record(tmp_path / "c", [1, 1, 1], [(0, [0, 0, 1])]))
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="has no per-class record"):
        stability.smallest_pair_turns(figures.Run(tmp_path / "d", {"dataset": "synthetic", "counts": counts}, {}, {}))


def test_the_boundaries_of_a_spike_a_held_class_and_a_finite_history(tmp_path):
    """A rise to exactly the threshold is no spike (more than the threshold is); a class of the smallest pair is
    held above 50 %, so one at 40 % or at exactly 50 % beside a class lost whole is no turn; a history is cut at its
    first row whose objective is not a finite positive number, wherever that row is, not at its last one."""
    def run(objective, status="finished"):
        return figures.Run(None, {}, dict(epoch=10 * np.arange(len(objective)), objective=np.array(objective)),
                           {"status": status})

    for threshold in (stability.SPIKE_FACTOR, 3.0):
        assert not stability.spiked(run([2.0, 1.0, threshold]), threshold)  # a rise by exactly the threshold
        assert stability.spiked(run([2.0, 1.0, np.nextafter(threshold, np.inf)]), threshold)
    assert stability.SPIKE_FACTOR == 2.0 and not stability.spiked(run([1.0, 2.0]))
    counts = [2, 1, 1, 3]  # the smallest pair: classes 1 and 2
    for held, since in ((0.4, None), (0.5, None), (0.51, 10)):
        rows = [(0, [1, 1.0, 1.0, 1]), (10, [1, 0.0, held, 1]), (20, [1, held, 0.0, 1])]
        turns = stability.smallest_pair_turns(_class_record(tmp_path / f"held-{held}", counts, rows))
        assert turns["since"] == since, held
        assert turns["records"] == (0 if since is None else 2) and turns["swaps"] == (0 if since is None else 1)
    history = run([3.0, 1.0, np.nan, 2.0, np.inf, 0.5], status="diverged")
    cut = stability.finite_history(history)
    assert cut["epoch"].tolist() == [0, 10] and cut["objective"].tolist() == [3.0, 1.0]
    for bad in (0.0, -1.0, np.inf):  # a single bad row in the middle: the rows after it are left out too
        cut = stability.finite_history(run([3.0, 1.0, bad, 2.0, 0.5]))
        assert cut["objective"].tolist() == [3.0, 1.0], bad
    assert stability.finite_rise(run([3.0, 1.0, np.nan, 2.0, 0.5])) is None  # no rise before the cut


def test_functions_of_stability_runs_refuse_what_is_not_runs_by_name(tmp_path):
    """The functions of one stability run, of a history and of a set of runs refuse what they cannot read by the
    argument's name; no runs is refused, not read as "no run spiked" or "every pair differed"."""
    h = dict(epoch=np.array([0, 10, 20]), objective=np.array([3.0, 1.0, 2.5]))
    run = figures.Run(None, {}, h, {"status": "finished"})
    assert stability.spiked(run) and not stability.diverged(run)
    for bad in (None, {}, {"objective": np.ones(3)}):
        with pytest.raises(ValueError, match=r"^history (must be a mapping|has no epoch column)"):
            stability.rise_from_low(bad)
    with pytest.raises(ValueError, match=r"^history has no objective column"):
        stability.rise_from_low({"epoch": h["epoch"]})
    for fn in (stability.spiked, stability.diverged, stability.smallest_pair_turns, stability.finite_history,
               stability.finite_rise, stability.rise_is_consecutive):
        for bad in (None, h):
            with pytest.raises(ValueError, match=r"^run must be a stability run \(a Run\)"):
                fn(bad)
    with pytest.raises(ValueError, match=r"^run\.history has no epoch column"):
        stability.spiked(figures.Run(None, {}, {"objective": h["objective"]}, {}))
    for bad in (None, 5):
        with pytest.raises(ValueError, match=r"^root must be a folder"):
            stability.whole_pairs(bad)
    assert stability.whole_pairs(tmp_path) == [] and stability.whole_pairs(str(tmp_path)) == []
    for fn in (stability.stability_rows, stability.tf32_not_engaged):
        for bad in ({}, None, [run]):
            with pytest.raises(ValueError, match=r"^runs must hold at least one stability run"):
                fn(bad)
        for key in ("fp32", ("bf16", 0), ("fp32", "0")):
            with pytest.raises(ValueError, match=r"^runs must be keyed by \(precision, seed\)"):
                fn({key: run})
        with pytest.raises(ValueError, match=r"^runs\[\('fp32', 0\)\] must be a stability run"):
            fn({("fp32", 0): h})
    assert stability.tf32_not_engaged({("fp32", 0): run}) == []  # no pair: nothing to list


def test_run_summary_reads_the_peak_the_errors_and_the_distance_to_the_minimum(tmp_path):
    counts = [2, 1, 1, 3]  # 7 samples, the smallest pair: classes 1 and 2
    run = _class_record(tmp_path / "a", counts, [(0, [0, 0, 0, 0]), (10, [1, 1, 1, 1]), (20, [1, 0, 1, 1]),
                                                 (30, [1, 1, 0, 1])])
    run.params.update(precision="fp32", seed=2, L=1, bias=True, lam_W=1e-2, lam_H=1e-3)
    run.history.update(epoch=np.array([0, 10, 20, 30]), objective=np.array([1.0, 0.1, 0.5, 0.2]),
                       train_acc=np.array([0.0, 1.0, 6 / 7, 6 / 7]), nc1=np.array([9.0, 0.5, 3.0, 1.0]))
    summary = stability.run_summary(run)
    assert (summary["row"]["seed"], summary["row"]["rise"], summary["row"]["rise_from"],
            summary["row"]["rise_to"]) == (2, 5.0, 10, 20)
    assert (summary["acc_peak"], summary["nc1_peak"], summary["wrong"]) == (6 / 7, 3.0, 1)
    minimum = ufm.minimum_value(np.array(counts), 1e-2, 1e-3, 1, True)
    assert summary["final_ratio"] == pytest.approx(0.2 / minimum, rel=1e-12)
    assert summary["turns"] == dict(since=20, records=2, held=1.0, swaps=1, both_since=None)
    # 100 % first at epoch 10, lost after it and never regained; a run that keeps it, and one that never reaches it
    assert (summary["row"]["first_100"], summary["row"]["lost_100"], summary["row"]["settled_100"]) == (10, True, None)
    for acc, want in (([0.0, 1.0, 1.0, 1.0], (10, False, 10)), ([0.0, 1.0, 6 / 7, 1.0], (10, True, 30)),
                      ([0.0, 5 / 7, 6 / 7, 6 / 7], (None, False, None))):
        row = stability.stability_rows({("fp32", 2): dataclasses.replace(
            run, history={**run.history, "train_acc": np.array(acc)})})[0]
        assert (row["first_100"], row["lost_100"], row["settled_100"]) == want, acc
    # an objective that only falls: no peak to read
    run.history.update(objective=np.array([1.0, 0.5, 0.3, 0.2]))
    falling = stability.run_summary(run)
    assert falling["row"]["rise"] is None and falling["acc_peak"] is None and falling["nc1_peak"] is None
    # a diverged run: its last row (NaN objective) is left out; the numbers are those of its last finite record
    run.provenance.update(status="diverged")
    run.history.update(epoch=np.array([0, 10, 20, 30, 40]), objective=np.array([1.0, 0.1, 0.5, 0.2, np.nan]),
                       train_acc=np.array([0.0, 1.0, 6 / 7, 5 / 7, 0.0]), nc1=np.array([9.0, 0.5, 3.0, 1.0, np.nan]))
    broke = stability.run_summary(run)
    assert broke["row"]["diverged"] and broke["row"]["spiked"] and broke["row"]["epochs"] == 40
    assert (broke["row"]["rise"], broke["row"]["rise_to"], broke["acc_peak"], broke["nc1_peak"]) == (5.0, 20, 6 / 7, 3.0)
    assert broke["wrong"] == 2 and broke["final_ratio"] == pytest.approx(0.2 / minimum, rel=1e-12)
    assert (broke["row"]["first_100"], broke["row"]["lost_100"]) == (10, True)


def test_run_name_refuses_a_precision_that_is_not_one_word():
    assert stability.run_name("fp32", 0) == "fig1-L6-fp32-seed0"
    for bad in (np.array(["fp32"]), "bf16", None):
        with pytest.raises(ValueError, match="^precision must be one of"):
            stability.run_name(bad, 0)


def _committed_copy(tmp_path, **tamper):
    """A copy of the committed strict fp32 runs (results/stability-cpu/) with ``tamper`` made to seed 0's provenance."""
    copy = tmp_path / "stability-cpu"
    shutil.copytree(stability.RESULTS_CPU, copy)
    path = copy / "fig1-L6-fp32-seed0" / "provenance.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **tamper}))
    return copy


@pytest.mark.parametrize("tamper, named", [
    (dict(precision="tf32"), r"L=6: provenance precision 'tf32', its parameters 'fp32'"),
    (dict(device="cuda", device_name="NVIDIA H200"), r"L=6: provenance device 'cuda', not on a cpu device"),
    (dict(data_sha256="0" * 64), r"L=6: provenance data_sha256 000000000000\.\.\. differs from its data record"),
    (dict(parameter_count=1), r"L=6: provenance parameter_count 1, the network of its parameters has 52,463,626"),
    (dict(trained_with=["fig1-L6-fp32-seed1"]), r"trained_with \['fig1-L6-fp32-seed1'\] names runs other than its"),
    (dict(data={**json.loads((stability.RESULTS_CPU / "fig1-L6-fp32-seed0" / "provenance.json").read_text())["data"],
                "dataset": "letters-synthetic", "counts": [1] * 10}),
     r"L=6: provenance data counts \[1, 1, 1, 1, 1, 1, 1, 1, 1, 1\], its parameters give \[100, 100, 200, .*"
     r"L=6: provenance data dataset = 'letters-synthetic', its parameters 'cifar10'"),
    (dict(steps=1), r"L=6: provenance steps = 1, a finished run of 400 epochs of 23 steps trains 9,200"),
    (dict(steps_per_epoch=24, dropped_per_epoch=0), r"L=6: provenance steps_per_epoch = 24, dropped_per_epoch = 0; "
                                                    r"its 3,000 samples in batches of 128 give 23 and 56"),
    (dict(status="diverged", steps=9200 + 23), r"L=6: provenance steps = 9223, not between the 9,200 of its last "
                                               r"recorded epoch and the 9,200 of its 400 epochs"),
])
@pytest.mark.parametrize("committed", [False, True])
def test_load_stability_refuses_a_run_whose_provenance_is_not_its_record(tmp_path, tamper, named, committed):
    """Read as committed results or as a job's folder, a run's provenance records its own parameters: the strict fp32
    run of seed 0 with another precision, device (its parameters say cpu), data checksum, data set and class counts,
    network size, steps (as a finished or a diverged run) or partner recorded is refused, naming its folder and the
    key."""
    how = {"committed": True} if committed else {}  # as the chapters read results/, as the script reads its folder
    assert sorted(stability.load_stability(_committed_copy(tmp_path), **how)) == [("fp32", 0), ("fp32", 1), ("fp32", 2)]
    shutil.rmtree(tmp_path / "stability-cpu")
    with pytest.raises(ValueError, match=r"fig1-L6-fp32-seed0': its provenance is not the record of this run: .*"
                                         + named):
        stability.load_stability(_committed_copy(tmp_path, **tamper), **how)


def test_load_stability_refuses_a_pair_trained_side_by_side_at_two_commits(tmp_path):
    """A pair's two runs are trained in one call, from one checkout: made up from a copy of seed 0's strict fp32 run
    (its TF32 partner the same run recorded in TF32, each naming the other in trained_with), the pair is read, and
    refused, naming both, once the TF32 run and its call record another commit."""
    copy = _committed_copy(tmp_path, trained_with=[stability.run_name("tf32", 0)])
    partner = copy / stability.run_name("tf32", 0)
    shutil.copytree(copy / stability.run_name("fp32", 0), partner)
    params, prov = (json.loads((partner / name).read_text()) for name in ("params.json", "provenance.json"))
    (partner / "params.json").write_text(json.dumps({**params, "precision": "tf32",
                                                     "run_name": stability.run_name("tf32", 0)}))

    def record(commit):
        (partner / "provenance.json").write_text(json.dumps({
            **prov, "precision": "tf32", "trained_with": [stability.run_name("fp32", 0)], "git_commit": commit,
            "segments": [{**seg, "git_commit": commit} for seg in prov["segments"]]}))
    record(prov["git_commit"])
    assert sorted(stability.load_stability(copy)) == [("fp32", 0), ("fp32", 1), ("fp32", 2), ("tf32", 0)]
    record("0" * 40)
    with pytest.raises(ValueError, match=r"trained side by side at two commits: fig1-L6-fp32-seed0: git_commit "
                                         r"'[0-9a-f]{40}', but fig1-L6-tf32-seed0, trained beside it \(trained_with\), "
                                         r"records '0{40}'"):
        stability.load_stability(copy)
    with pytest.raises(ValueError, match="runs must be a mapping of Run"):
        figures.together_problems([stability.load_stability(stability.RESULTS_CPU)[("fp32", 0)]])


def test_load_stability_asks_committed_runs_to_have_ended_from_a_clean_commit(tmp_path):
    """committed=True: a run that did not end is an error, not left out, and every run was made from a clean commit
    of this repository; a job's folder (committed=False, as scripts/stability_runs.py reads it) leaves out a run that
    did not end and does not ask what its checkout was."""
    committed = json.loads((stability.RESULTS_CPU / "fig1-L6-fp32-seed0" / "provenance.json").read_text())
    other_call = [{**seg, "git_commit": "f" * 40} for seg in committed["segments"]]
    for tamper, named in ((dict(git_dirty=True), r"seed0': .*L=6: not made from a clean commit: git_dirty = True"),
                          (dict(segments=[{"git_dirty": True}]), r"seed0': .*L=6: not made from a clean commit: a"),
                          (dict(git_commit=None), r"seed0': .*L=6: git_commit None is not a commit hash"),
                          (dict(git_dirty_paths=["nclib/train.py"]), r"seed0': .*L=6: not made from a clean commit: "
                                                                    r"git_dirty = False beside changed files"),
                          (dict(segments=other_call), r"seed0': .*L=6: a call that trained it \(segments\) records "
                                                      r"git_commit 'f{40}', the run '[0-9a-f]{40}'")):
        copy = _committed_copy(tmp_path, **tamper)
        assert len(stability.load_stability(copy)) == 3
        with pytest.raises(ValueError, match=named):
            stability.load_stability(copy, committed=True)
        shutil.rmtree(copy)
    copy = _committed_copy(tmp_path, status="running")
    assert sorted(stability.load_stability(copy)) == [("fp32", 1), ("fp32", 2)]  # a job's run still training
    with pytest.raises(ValueError, match=r"seed0' holds a run that did not end \(status 'dead'\)"):
        stability.load_stability(copy, committed=True)
    shutil.rmtree(copy)
    if figures.unknown_commits([]) is not None:  # git can say which commits this checkout holds
        copy = _committed_copy(tmp_path, git_commit="f" * 40, segments=other_call)  # the run and its call
        with pytest.raises(ValueError, match=r"L=6 of fig1-L6-fp32-seed0: git_commit 'f{40}' is not a commit in the "
                                             r"history.*L=6 of fig1-L6-fp32-seed0: segment 0's git_commit 'f{40}'"):
            stability.load_stability(copy, committed=True)
        assert len(stability.load_stability(copy)) == 3  # a job's folder: its checkout is not asked
        shutil.rmtree(copy)
    with pytest.raises(ValueError, match="committed must be True or False"):
        stability.load_stability(stability.RESULTS_CPU, committed="yes")
