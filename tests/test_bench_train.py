"""benchmarks/bench_train.py and benchmarks/bench_spectrum.py on the CPU: what their outputs and records say of how
they were made (the command, the CPUs, when the timings ended) and how their timings are repeated."""
import importlib.util
import json
import os
import pathlib
import re
import types

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import nclib
from nclib import figures, models, train
from nclib import floor as nfloor
from nclib.runs import metric_epochs
from nclib.step import WARMUP_STEPS


def _load(name):
    spec = importlib.util.spec_from_file_location(name, nclib.ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load("bench_train")
common = _load("_common")
TINY = ["--device", "cpu", "--width", "16", "--depth", "1", "--steps", "4", "--warmup", "1", "--threads", "1"]


def test_one_blas_thread_sets_what_the_caller_left_unset_and_returns_what_it_set(monkeypatch):
    for name in common.BLAS_THREAD_ENV:  # set, then unset: monkeypatch restores each as it was after the test
        monkeypatch.setenv(name, "1")
        monkeypatch.delenv(name)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert common.one_blas_thread() == {"OPENBLAS_NUM_THREADS": "4"}
    assert {k: os.environ[k] for k in common.BLAS_THREAD_ENV} == {
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "4", "MKL_NUM_THREADS": "1"}


def test_the_output_opens_with_its_command_and_the_record_names_the_cpus(tmp_path, capsys, monkeypatch):
    """The first line is ``$ `` and the command, with the thread variables that were set: what read_benchmark
    takes as the command, the same as the record's; the record and the output give the host's CPUs."""
    for name in common.COMMAND_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = tmp_path / "cpu.json"
    argv = TINY + ["--repeats", "2", "--json", str(path)]
    bench.main(argv)
    out = tmp_path / "out.txt"
    out.write_text(capsys.readouterr().out)
    record = json.loads(path.read_text())
    first = out.read_text().splitlines()[0]
    assert first.startswith("$ OMP_NUM_THREADS=1 python ") and first.endswith(" ".join(argv))
    assert "bench_train.py" in first
    assert figures.read_benchmark(out)["command"] == record["command"] == first[2:]
    assert record["cpu_count"] >= 1 and 1 <= record["cpu_affinity"] <= record["cpu_count"]
    assert f"cpus            {record['cpu_count']} logical CPUs, {record['cpu_affinity']} usable" in out.read_text()
    assert record["started_utc"] <= record["finished_utc"]


@pytest.mark.parametrize("flag,value", [("--depth", "0"), ("--warmup", "0"), ("--batch-size", "0"),
                                        ("--batch-size", str(bench.N_SAMPLES + 1))])
def test_a_setting_it_cannot_time_is_refused_by_its_flag_before_any_output(flag, value, capsys):
    """No backbone layer, no untimed warm-up step (the first step's one-time costs would fall in the first timed
    round), or a batch larger than the problem: the parser's error (status 2) naming the flag, before the output's
    first line."""
    with pytest.raises(SystemExit) as stop:
        bench.main(TINY + [flag, value])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and flag in captured.err and captured.out == ""


def test_a_gpu_needs_the_engines_warm_up_and_its_capture_before_the_timed_steps(capsys):
    """On a GPU the engine takes nclib.step.WARMUP_STEPS eager steps and captures its graph in the next: fewer
    warm-up steps would put them in the first timed round, so ``--warmup`` must be at least one more; on the CPU one
    step does.  Refused on a machine without a GPU too, before anything is built or printed."""
    assert bench.least_warmup("cuda", cuda=False) == bench.least_warmup("auto", cuda=True) == WARMUP_STEPS + 1
    assert bench.least_warmup("cuda:1", cuda=True) == WARMUP_STEPS + 1
    assert bench.least_warmup("cpu", cuda=True) == bench.least_warmup("auto", cuda=False) == 1
    with pytest.raises(SystemExit) as stop:
        bench.main(TINY + ["--device", "cuda", "--warmup", str(WARMUP_STEPS)])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and "--warmup" in captured.err and str(WARMUP_STEPS + 1) in captured.err
    assert captured.out == ""
    with pytest.raises(SystemExit) as stop:
        bench.main(TINY + ["--device", "gpu"])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and "--device" in captured.err and captured.out == ""


def test_levers_refuse_the_auto_record_before_any_output(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(TINY + ["--levers", "plain", "--json", "auto"])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and "--levers" in captured.err and captured.out == ""


def test_the_auto_record_is_named_by_its_device_and_precision():
    """``--json auto`` writes the committed record of the device's own precision (TF32 on a GPU, fp32 on the CPU)
    and another file at any other precision: a bf16 run on the CPU leaves the committed fp32 record alone."""
    names = {(cuda, q): bench.json_path("auto", cuda, q) for cuda in (False, True) for q in train.PRECISIONS}
    assert len(set(names.values())) == len(names)  # one file for each device and precision
    assert all(path.parent == nclib.ROOT / "benchmarks" / "results" for path in names.values())
    assert names[False, "fp32"].name == "bench_train_cpu.json" and names[True, "tf32"].name == "bench_train_gpu.json"
    assert names[True, "fp32"].name == "bench_train_gpu_fp32.json"  # the names the committed records have
    assert names[False, "bf16"].name == "bench_train_cpu_bf16.json"
    assert bench.json_path("none", False, "bf16") is None
    assert bench.json_path("x.json", False, "bf16") == pathlib.Path("x.json")


def test_the_warm_up_steps_fall_outside_the_timed_window(monkeypatch):
    """Timed on a clock that advances one second per optimizer step, each loop's timed call gives exactly one step
    per second: its ``warmup`` steps, taken before (and counted), fell outside the window, and nothing else did."""
    clock = [0]
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: float(clock[0])))
    ts = bench.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), width=8, depth=1, batch_size=16,
                           device="cpu", lr=1e-3, progress=False)
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: clock.__setitem__(0, clock[0] + 1))
    try:
        engine_timed, _ = bench.engine_loop(ts, p, 3)
        assert clock[0] == 3  # the warm-up steps were taken
        assert engine_timed(5) == 1.0 and clock[0] == 8
        plain_timed = bench.plain_loop(ts, p, torch.device("cpu"), 4)
        assert clock[0] == 12
        assert plain_timed(5) == 1.0 and clock[0] == 17
    finally:
        handle.remove()


def test_the_plain_loop_times_shuffled_batches_of_the_batch_size(monkeypatch):
    """The batches that plain_loop's step receives: ``batch_size`` rows each with the one-hot labels of their
    classes, each epoch (N // B = 3 steps of 16 of 60 samples, the partial batch dropped) drawing 48 distinct rows,
    not in the data's order.  A loop on smaller batches would time steps of less work."""
    batches = []
    plain_step = bench.plain_step

    def recording(ts, p, device):
        model, one = plain_step(ts, p, device)

        def recorded(x, yb):
            batches.append((x.clone(), yb.clone()))
            return one(x, yb)

        return model, recorded

    monkeypatch.setattr(bench, "plain_step", recording)
    ts = bench.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), width=8, depth=1, batch_size=16,
                           device="cpu", lr=1e-3, progress=False)
    bench.plain_loop(ts, p, torch.device("cpu"), 1)(5)  # one warm-up step and five timed: two epochs
    assert len(batches) == 6
    X = torch.as_tensor(ts.x)
    rows = []
    for x, yb in batches:
        assert x.shape == (p["batch_size"], 12) and yb.shape == (p["batch_size"], ts.K)
        matches = (x[:, None, :] == X[None, :, :]).all(dim=2)  # each row of x against every sample
        assert matches.sum(dim=1).tolist() == [1] * p["batch_size"]
        idx = matches.int().argmax(dim=1)
        assert torch.equal(yb, torch.nn.functional.one_hot(torch.as_tensor(ts.y)[idx], ts.K).float())
        rows.append(idx)
    for epoch in (torch.cat(rows[:3]), torch.cat(rows[3:])):
        assert len(set(epoch.tolist())) == 48 and not torch.equal(epoch, torch.sort(epoch).values)


def test_a_figure_run_is_warmed_up_past_the_capture_even_when_an_epoch_is_shorter(monkeypatch):
    """An epoch of one step (a batch of 40 of 60 samples) is fewer steps than a GPU's warm-up and capture: on a
    machine taken for a GPU (least_warmup answering for "cuda" when asked of each run's device), each of the
    figure's runs has taken WARMUP_STEPS + 1 steps when its first timing starts, not the one step of an epoch."""
    asked, seen = [], {}
    least_warmup, side_by_side = bench.least_warmup, train.time_side_by_side

    def as_on_a_gpu(device, cuda=None):
        asked.append((device, cuda))
        return least_warmup("cuda", cuda=True)

    def first_timing(engines, epochs):
        for eng in engines:
            seen.setdefault(id(eng), eng.steps_done)
        return side_by_side(engines, epochs)

    monkeypatch.setattr(bench, "least_warmup", as_on_a_gpu)
    monkeypatch.setattr(train, "time_side_by_side", first_timing)
    ts = bench.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), width=8, depth=1, batch_size=40,
                           device="cpu", lr=1e-3, progress=False)
    engines = bench.figure_loop(ts, p, (1, 3, 6), 1, 1)[3]
    assert [eng.steps_per_epoch for eng in engines] == [1, 1, 1]
    assert [seen[id(eng)] for eng in engines] == [WARMUP_STEPS + 1] * 3
    assert asked == [("cpu", False)] * 3


def test_a_lever_is_warmed_up_past_the_eager_steps_and_a_whole_epoch_of_captures(monkeypatch):
    """A lever's run and its figure's runs warm up on whole epochs: two where an epoch holds the GPU's eager warm-up
    steps, and where it does not (one step an epoch here, on a machine taken for a GPU) the epochs those steps span
    and one more, so that the timed epochs replay only graphs captured before."""
    calls = []
    least_warmup, side_by_side = bench.least_warmup, train.time_side_by_side

    def record(engines, epochs):
        calls.append((len(engines), epochs, [eng.steps_done for eng in engines]))
        return side_by_side(engines, epochs)

    monkeypatch.setattr(train, "time_side_by_side", record)
    ts = bench.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), width=8, depth=1, batch_size=40,
                           device="cpu", lr=1e-3, progress=False)
    bench.lever_loop(ts, p, (1, 3), 1, 1, {})
    assert [c[:2] for c in calls[:2]] == [(1, 2), (1, 1)]  # on the CPU: two epochs, then the timing
    calls.clear()
    monkeypatch.setattr(bench, "least_warmup", lambda device, cuda=None: least_warmup("cuda", cuda=True))
    bench.lever_loop(ts, p, (1, 3), 1, 1, {})
    warm = WARMUP_STEPS + 1  # the eager steps' epochs, one step each, and one more
    assert calls[0] == (1, warm, [0]) and calls[1] == (1, 1, [warm])
    figure_warm = [c for c in calls if c[0] == 2][0]
    assert figure_warm == (2, warm, [0, 0])
    p23 = train.check_params(**{**p, "batch_size": 2})  # 30 steps an epoch: two epochs as before
    assert bench.lever_warmup_epochs(train.Engine(ts, p23)) == 2


def test_the_record_ends_after_the_figure_timings(tmp_path, capsys, monkeypatch):
    """``finished_utc`` is taken once every timing, the figure's runs included, is done."""
    events = []

    def now():
        events.append("time")
        return f"t{len(events)}"

    figure_loop = bench.figure_loop

    def timed_figure(*args, **kw):
        events.append("figure")
        return figure_loop(*args, **kw)

    monkeypatch.setattr(bench, "utc_now", now)
    monkeypatch.setattr(bench, "figure_loop", timed_figure)
    path = tmp_path / "cpu.json"
    bench.main(TINY + ["--repeats", "1", "--figure-epochs", "1", "--json", str(path)])
    record = json.loads(path.read_text())
    finished = int(record["finished_utc"][1:]) - 1  # the event that gave it
    assert events[finished] == "time" and events.index("figure") < finished


def test_the_figure_modes_alternate_and_the_metric_epoch_is_warmed_up(tmp_path, capsys, monkeypatch):
    """A figure's runs one after another and side by side, each timed ``--repeats`` times in alternation (the
    first mode leads in even rounds); ``evaluate`` once per run untimed, then ``--repeats`` times; the record
    holds the medians and every repeat, the output the medians and their ranges."""
    calls, evaluations = [], []
    side_by_side = train.time_side_by_side

    def recorded(engines, epochs):
        calls.append(len(engines))
        return side_by_side(engines, epochs)

    evaluate = train.Engine.evaluate

    def counted(self):
        evaluations.append(id(self))
        return evaluate(self)

    monkeypatch.setattr(train, "time_side_by_side", recorded)
    monkeypatch.setattr(train.Engine, "evaluate", counted)
    path = tmp_path / "cpu.json"
    bench.main(TINY + ["--repeats", "3", "--figure-epochs", "1", "--json", str(path)])
    text = capsys.readouterr().out
    # one after another: three calls of one run; side by side: one call of three; rounds 0 and 2 lead with the first
    apart, together = [1, 1, 1], [3]
    assert calls == apart + together + together + apart + apart + together
    assert len(set(evaluations)) == 3 and all(evaluations.count(e) == 4 for e in evaluations)  # 1 + 3 per run
    fig = json.loads(path.read_text())["figure"]
    assert fig["repeats"] == 3 and len(fig["metric_ms_repeats"]) == 3
    assert fig["metric_ms"] == pytest.approx(float(np.median(fig["metric_ms_repeats"])))
    for key, mode in (("epoch_ms_side_by_side", "seconds_side_by_side_repeats"),
                      ("epoch_ms_one_after_another", "seconds_one_after_another_repeats")):
        assert len(fig[mode]) == 3 and fig[key] == pytest.approx(1e3 * float(np.median(fig[mode])))
    out = tmp_path / "out.txt"
    out.write_text(text)
    b = figures.read_benchmark(out)
    # the record's rounds, as round_quotients gives them, are the ones whose median and range the output printed
    rounds = figures.round_quotients(json.loads(path.read_text()))["figure_ratio"]
    assert len(rounds) == 3
    assert abs(b["figure_ratio"] - np.median(rounds)) <= 0.005 + 1e-12
    np.testing.assert_allclose(b["figure_ratio_range"], [min(rounds), max(rounds)], atol=0.005 + 1e-12)
    np.testing.assert_allclose(b["figure_together_range"], [min(fig["seconds_side_by_side_repeats"]),
                                                            max(fig["seconds_side_by_side_repeats"])], atol=0.005)
    assert b["repeats"] == 3 and "metric epoch    of the three runs" in text


def test_the_printed_speeds_ratio_and_12000_epochs_are_the_records(tmp_path, capsys, monkeypatch):
    """With each timing made known (round by round the engine's 30, 60 and 40 steps/s and the plain loop's 10, 24
    and 25; a figure run alone 0.5 s, the three side by side 1.0, 1.2 and 0.9 s, for E = 2 epochs): the record's
    steps_per_s are the medians of its repeats, 40 and 24 (read_benchmark_record checks it; not their means), and
    the output, read by nclib.figures.read_benchmark, prints them, the median of the rounds' ratios (2.5, not the
    1.67 of the medians) and the ranges, each within its rounding; its two lines of 12,000 epochs give 12,000
    epochs' steps at each loop's median rate, and the figure's runs side by side and one after another scaled from E to 12,000
    epochs."""
    known = {"engine": [30.0, 60.0, 40.0], "plain": [10.0, 24.0, 25.0], "together": [1.0, 1.2, 0.9]}
    given = {k: iter(v) for k, v in known.items()}
    engine_loop, plain_loop, side_by_side = bench.engine_loop, bench.plain_loop, train.time_side_by_side

    def known_rates(timed, name):  # the loop's steps taken, its rate the next one given
        def rate(steps):
            timed(steps)
            return next(given[name])
        return rate

    def engine_known(*args):
        timed, eng = engine_loop(*args)
        return known_rates(timed, "engine"), eng

    def plain_known(*args):
        return known_rates(plain_loop(*args), "plain")

    def figure_known(engines, epochs):
        side_by_side(engines, epochs)
        return 0.5 if len(engines) == 1 else next(given["together"])

    monkeypatch.setattr(bench, "engine_loop", engine_known)
    monkeypatch.setattr(bench, "plain_loop", plain_known)
    monkeypatch.setattr(train, "time_side_by_side", figure_known)
    path, out = tmp_path / "cpu.json", tmp_path / "out.txt"
    bench.main(TINY + ["--repeats", "3", "--figure-epochs", "2", "--json", str(path)])
    text = capsys.readouterr().out
    out.write_text(text)
    record = figures.read_benchmark_record(path)
    assert record["steps_per_s_repeats"] == {"engine": known["engine"], "plain": known["plain"]}
    assert record["steps_per_s"] == {"engine": 40.0, "plain": 24.0}
    rounds = figures.round_quotients(record)["ratio"]
    b = figures.read_benchmark(out)
    for name, half_unit in (("engine", 0.05), ("plain", 0.05)):  # printed to 0.1
        repeats = record["steps_per_s_repeats"][name]
        assert abs(b[name] - record["steps_per_s"][name]) <= half_unit + 1e-12
        np.testing.assert_allclose(b[f"{name}_range"], [min(repeats), max(repeats)], rtol=0, atol=half_unit)
    assert abs(b["ratio"] - np.median(rounds)) <= 0.005 + 1e-12 and b["ratio"] == 2.5  # printed to 0.01
    np.testing.assert_allclose(b["ratio_range"], [min(rounds), max(rounds)], rtol=0, atol=0.005)
    # 12,000 epochs of the loops' steps (N // B an epoch) at their medians, printed to the second
    steps, engine_s, plain_s = map(int, re.search(r"^12000 epochs    (\d+) steps: (\d+) s with nclib.train, "
                                                  r"(\d+) s with the plain loop", text, re.M).groups())
    assert steps == 12000 * (bench.N_SAMPLES // record["problem"]["batch_size"]) == 12000 * 23
    assert abs(engine_s - steps / record["steps_per_s"]["engine"]) <= 0.5
    assert abs(plain_s - steps / record["steps_per_s"]["plain"]) <= 0.5
    # and a figure's three runs, the medians of their seconds for E epochs scaled to 12,000 epochs
    fig = record["figure"]
    together_s, apart_s = map(int, re.search(r"^12000 epochs    a figure's three runs side by side: (\d+) s "
                                             r"\(one after another: (\d+) s;", text, re.M).groups())
    assert fig["epochs_timed"] == 2 and fig["seconds_one_after_another_repeats"] == [1.5] * 3
    assert fig["seconds_side_by_side_repeats"] == known["together"]
    assert abs(together_s - 12000 * np.median(fig["seconds_side_by_side_repeats"]) / 2) <= 0.5
    assert abs(apart_s - 12000 * np.median(fig["seconds_one_after_another_repeats"]) / 2) <= 0.5


def _lever_with(monkeypatch, alone, with_metrics, repeats):
    """lever_loop of a tiny problem whose figure epochs alone and with metric epochs take the seconds given,
    round by round; 4 figure epochs, a metric epoch each (n = 4)."""
    alone, with_metrics = iter(alone), iter(with_metrics)
    side_by_side = train.time_side_by_side

    def fake(engines, epochs):
        if len(engines) == 3 and epochs == 4:
            side_by_side(engines, 1)
            return next(alone)
        return side_by_side(engines, epochs)

    monkeypatch.setattr(train, "time_side_by_side", fake)
    monkeypatch.setattr(bench, "with_metric_epochs", lambda engines, epochs, every, deferred: next(with_metrics))
    ts = bench.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), width=8, depth=1, batch_size=16,
                           device="cpu", lr=1e-3, progress=False)
    return bench.lever_loop(ts, p, (1, 3, 6), 4, 4, {}, repeats)


def test_a_levers_metric_epoch_is_the_median_of_paired_rounds_and_its_noise_said(monkeypatch):
    m = _lever_with(monkeypatch, [1.0, 1.4, 1.2], [1.01, 1.42, 1.23], 3)
    # per metric epoch, round by round: 2.5, 5 and 7.5 ms; the epochs alone range over 0.4 s / 4 = 100 ms
    np.testing.assert_allclose(m["metric_ms_seen_by_training_repeats"], [2.5, 5.0, 7.5], rtol=1e-9)
    assert m["metric_ms_seen_by_training"] == pytest.approx(5.0) and m["metric_ms_noise"] == pytest.approx(100.0)
    assert m["metric_within_noise"] is True and m["metric_epochs"] == 4
    assert m["epoch_ms_side_by_side"] == pytest.approx(1e3 * 1.2 / 4)
    m = _lever_with(monkeypatch, [1.0, 1.01, 1.02], [2.0, 2.01, 2.02], 3)  # 250 ms a metric epoch, noise 5 ms
    assert m["metric_ms_seen_by_training"] == pytest.approx(250.0) and m["metric_within_noise"] is False
    m = _lever_with(monkeypatch, [1.0], [0.9], 1)  # one round: a negative cost, and no noise to judge it by
    assert m["metric_ms_seen_by_training"] == pytest.approx(-25.0) and m["metric_within_noise"] is None


def test_read_benchmark_reads_the_figure_ranges_and_the_repeats(tmp_path):
    head = ("device          cpu (x)\ntimed steps     300 after 20 warm-up steps{}\nplain loop  50.0 steps/s\n"
            "nclib.train  52.0 steps/s\nratio  1.04 x\n")
    path = tmp_path / "b.txt"
    path.write_text(head.format(", 5 times each loop, the two in alternation")
                    + "figure runs     L = 1, 3, 6, 2 epochs each: one after another 2.77 s [2.70, 2.90], side by "
                      "side 2.79 s [2.75, 2.95], ratio 0.99 x [0.97, 1.01] (5 times each, in alternation)\n")
    b = figures.read_benchmark(path)
    assert (b["figure_apart_s"], b["figure_together_s"], b["figure_ratio"], b["repeats"]) == (2.77, 2.79, 0.99, 5)
    assert (b["figure_apart_range"], b["figure_together_range"], b["figure_ratio_range"]) == (
        (2.7, 2.9), (2.75, 2.95), (0.97, 1.01))
    path.write_text(head.format(""))  # the first outputs: one timing of each loop
    assert figures.read_benchmark(path)["repeats"] == 1


def test_the_spectrum_benchmark_names_its_command_blas_and_repeats(capsys, monkeypatch):
    threads = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    for name in threads:  # set here, so that the script's defaults leave this process's environment as it was
        monkeypatch.setenv(name, "1")
    spectrum = _load("bench_spectrum")
    spectrum.main(["--repeats", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("$ OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python ")
    assert lines[0].endswith("bench_spectrum.py --repeats 2")
    assert ", BLAS " in lines[1] and lines[1].endswith("each time the best of 2 calls")
    # the ratio is the quotient of the two times, within the rounding of the three printed numbers
    fast, svd, ratio = re.search(r"ybar_singular_values ([\d.]+) ms, dense SVD of Y-bar ([\d.]+) ms, "
                                 r"ratio SVD / structured = (\d+) \(best of 2 each\)$", lines[3]).groups()
    fast, svd, ratio = float(fast), float(svd), int(ratio)
    assert fast > 0.0005  # printed to 0.001 ms: the quotient's bounds below are finite
    assert (svd - 0.05) / (fast + 0.0005) - 0.5 <= ratio <= (svd + 0.05) / (fast - 0.0005) + 0.5
    with pytest.raises(SystemExit):
        spectrum.main(["--repeats", "0"])


@pytest.mark.parametrize("L", [1, 3])
def test_the_plain_loops_step_is_the_engines(L):
    """The plain loop times the engine's training: from the Engine's start, its steps on the same rows give the
    F_B of ``Engine.batch_objective`` before each step and the engine's parameters after it, bit for bit on the
    CPU (a loop without the backward pass, or without a term of F_B, would time less work).  A feature decay
    large enough to weigh in F_B at float32's resolution, and two steps, so that Adam's second step sees how the
    two gradients compare, not only their signs."""
    ts = bench.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), L=L, width=8, depth=2, batch_size=16,
                           device="cpu", lr=1e-3, lam_W=1e-2, lam_H=1e-2, progress=False)
    eng = train.Engine(ts, p)
    model, one = bench.plain_step(ts, p, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), eng.model.parameters()))  # the same start
    start = [q.detach().clone() for q in model.parameters()]
    X = torch.as_tensor(ts.x)
    Y = torch.nn.functional.one_hot(torch.as_tensor(ts.y), ts.K).float()
    for idx in torch.randperm(ts.N, generator=torch.Generator().manual_seed(1))[:32].view(2, 16):
        with torch.no_grad():
            objective = float(eng.batch_objective(idx))
            feature_term = p["lam_H"] * ts.N / (2 * 16) * float((eng.model.features(eng.X[idx]) ** 2).sum())
        assert feature_term > 1e-6 * objective  # the term weighs in the float32 value compared below
        assert one(X[idx], Y[idx]) == objective == float(eng.step(idx))
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), eng.model.parameters()))
    assert eng.step.steps_done == 2 and not any(torch.equal(a, b) for a, b in zip(start, model.parameters()))


def _floor_ms(D, K, width, depth, Ls, N, B, bandwidth, flops_per_s):
    """The engine chapter's floor of one epoch of a figure's runs in turn, from the networks' shapes: per step and
    run, Adam's nclib.floor.ADAM_BYTES per parameter at the bandwidth, and the products (2 FLOPs a multiply-add
    per row: forward and weight gradient of every weight, the input gradient of all but the first layer's) at the
    peak; N // B steps an epoch."""
    seconds = 0.0
    for L in Ls:
        first = D * width
        weights = first + depth * width * width + (L - 1) * width * width + K * width  # + the feature layer's
        biases = (depth + 1) * width + K
        seconds += nfloor.ADAM_BYTES * (weights + biases) / bandwidth + 2 * B * (3 * weights - first) / flops_per_s
    return 1e3 * (N // B) * seconds


def test_the_figure_floor_is_the_chapters_at_the_data_sheets_peaks():
    """floor_ms of a figure's runs at the paper's setting (networks on the meta device: shapes only), against the
    floor worked out from the shapes: on an H200 and an H100 SXM with TF32 and strict fp32 products; none for
    bf16 products (no peak in the data sheet) or for a device without a data sheet."""
    B, width, depth, Ls = 128, 2048, 6, (1, 3, 6)
    with torch.device("meta"):
        nets = [models.CollapseNet(3 * 32 * 32, 10, L, width=width, depth=depth) for L in Ls]
    engines = [types.SimpleNamespace(model=net, B=B, steps_per_epoch=bench.N_SAMPLES // B) for net in nets]
    for name, gpu in (("NVIDIA H200", "H200"), ("NVIDIA H100 80GB HBM3", "H100 SXM")):
        sheet = nfloor.DATASHEETS[gpu]
        for precision in ("tf32", "fp32"):
            expected = _floor_ms(3 * 32 * 32, 10, width, depth, Ls, bench.N_SAMPLES, B, sheet["bandwidth"],
                                 sheet[precision])
            assert bench.floor_ms(engines, name, precision) == pytest.approx(expected, rel=1e-12), (name, precision)
        assert bench.floor_ms(engines, name, "bf16") is None
    assert bench.floor_ms(engines, "NVIDIA H100 PCIe", "tf32") is None
    assert bench.floor_ms(engines, "AMD EPYC 7B13", "fp32") is None


def test_the_records_floor_is_that_of_the_runs_timed(tmp_path, capsys, monkeypatch):
    """On a CPU named as an H200 (the data sheet is chosen by the device's name), the figure record's and the
    lever record's ``epoch_ms_floor`` are the floor of the figure's three runs at the shapes and precision
    timed."""
    monkeypatch.setattr(bench.provenance, "cpu_model", lambda: "NVIDIA H200")
    sheet = nfloor.DATASHEETS["H200"]
    for precision in ("fp32", "tf32"):
        expected = _floor_ms(3 * 32 * 32, 10, 16, 1, (1, 3, 6), bench.N_SAMPLES, 128, sheet["bandwidth"],
                             sheet[precision])
        path = tmp_path / f"{precision}.json"
        bench.main(TINY + ["--repeats", "1", "--figure-epochs", "1", "--precision", precision, "--json", str(path)])
        assert json.loads(path.read_text())["figure"]["epoch_ms_floor"] == pytest.approx(expected, rel=1e-12, abs=0)
        levers = tmp_path / f"levers-{precision}.json"
        bench.main(TINY + ["--figure-epochs", "1", "--precision", precision, "--levers", "plain", "--json",
                           str(levers)])
        assert json.loads(levers.read_text())["epoch_ms_floor"] == pytest.approx(expected, rel=1e-12, abs=0)


def test_twelve_thousand_epochs_count_every_metric_epoch_a_run_records(tmp_path, capsys, monkeypatch):
    """``seconds_12000_epochs_with_metrics``: the figure's epochs side by side scaled to 12,000, and a metric epoch
    of the three runs for each epoch that nclib.runs.metric_epochs lists (epoch 0, every ``metric_every``-th and
    the last, here 7, which does not divide 12,000)."""
    monkeypatch.setitem(train.DEFAULTS, "metric_every", 7)
    path = tmp_path / "cpu.json"
    bench.main(TINY + ["--repeats", "1", "--figure-epochs", "1", "--json", str(path)])
    fig = json.loads(path.read_text())["figure"]
    assert fig["metric_every"] == 7 and fig["metric_ms"] > 0
    metric_rows = len(metric_epochs(12000, 7))
    assert metric_rows == 12000 // 7 + 2  # 0, 7, ..., 11,998 and 12,000
    training = 12000 * fig["seconds_side_by_side_repeats"][0] / fig["epochs_timed"]  # one round: its median
    expected = training + metric_rows * fig["metric_ms"] / 1e3
    assert fig["seconds_12000_epochs_with_metrics"] == pytest.approx(expected, rel=1e-12)
