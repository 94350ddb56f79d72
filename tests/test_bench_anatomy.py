"""benchmarks/bench_anatomy.py on the CPU: the parts of a step and the batched backbones compute what they claim."""
import importlib.util
import json
import types

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import nclib
import nclib.floor
from nclib import models, train
from nclib.step import WARMUP_STEPS

_spec = importlib.util.spec_from_file_location("bench_anatomy", nclib.ROOT / "benchmarks" / "bench_anatomy.py")
anatomy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(anatomy)

#: A small problem on the CPU, without and with a precision.
ANY_PRECISION = ["--device", "cpu", "--width", "24", "--depth", "2", "--reps", "2"]
SMALL = ANY_PRECISION + ["--precision", "fp32"]


def _engines(ts=None, width=24, depth=2):
    ts = anatomy.make_set(300, 12, 3) if ts is None else ts
    kw = dict(dataset="synthetic", counts=ts.counts.tolist(), width=width, depth=depth, batch_size=16, device="cpu",
              lr=1e-3, lam_W=1e-5, lam_H=1e-5, progress=False)
    return [train.Engine(ts, train.check_params(**kw, L=L)) for L in anatomy.FIGURE_L]


def test_batched_features_are_each_runs_backbone():
    """One baddbmm per layer over the stacked weights gives every run's own features (the function a
    batched-backbone lever would compute), to float32 rounding."""
    engines = _engines()
    with torch.no_grad():  # one seed gives the three backbones the same start: make them differ
        for r, eng in enumerate(engines):
            for q in eng.model.backbone.parameters():
                q.mul_(1 + 0.25 * r)
    x = torch.randn(3, 16, 12)
    layers = anatomy.stacked(engines)
    assert [tuple(W.shape) for W, _ in layers] == [(3, 24, 12), (3, 24, 24), (3, 24, 24)]
    assert all(W.requires_grad and b.requires_grad for W, b in layers)
    batched = anatomy.batched_features(layers, x)
    assert batched.shape == (3, 16, 24)
    with torch.no_grad():
        for r, eng in enumerate(engines):
            torch.testing.assert_close(batched[r], eng.model.backbone(x[r]), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(batched[0], engines[1].model.backbone(x[0]))  # each run through its own weights


def _one_second_per_optimizer_step(monkeypatch):
    """The clock of ``anatomy.time``, which advances one second at each optimizer step, and the hook's handle."""
    clock = [0]
    monkeypatch.setattr(anatomy, "time", types.SimpleNamespace(perf_counter=lambda: float(clock[0])))
    return clock, register_optimizer_step_post_hook(lambda opt, args, kwargs: clock.__setitem__(0, clock[0] + 1))


def test_the_parts_are_timed_per_step_and_per_call(monkeypatch):
    """On a clock that advances one second per optimizer step: the engine's step takes 1000 ms (the time of the
    timed epochs over their steps, with the warm-up before the window), Adam alone 1000 ms a call (the time of the
    ``reps`` calls over their number, the untimed first call outside it), and forward and backward alone 0 ms (no
    optimizer step).  Here ``reps`` exceeds an epoch's 18 steps, so two epochs are timed."""
    clock, handle = _one_second_per_optimizer_step(monkeypatch)
    try:
        eng = _engines()[0]
        assert eng.steps_per_epoch == 18
        part = anatomy.step_parts(eng, 20, None, "fp32")
        assert (part["step_ms"], part["adam_ms"], part["forward_backward_ms"]) == (1000.0, 1000.0, 0.0)
        calls = []

        def one_step():
            calls.append(clock[0])
            clock[0] += 1

        assert anatomy.timed(one_step, 4, torch.device("cpu")) == 1000.0 and len(calls) == 5  # 1 untimed + 4
    finally:
        handle.remove()


def test_a_run_is_warmed_up_past_the_capture_even_when_two_epochs_are_shorter(monkeypatch):
    """Two epochs of one step (a batch of 40 of 60 samples) are fewer steps than a GPU's warm-up and capture: on a
    machine taken for a GPU (least_warmup answering for "cuda" when asked of the run's device), the run takes
    WARMUP_STEPS + 1 steps before the timed ones (on the fake clock the step still takes 1000 ms: the timing
    holds only its two timed steps), not two."""
    asked = []
    least_warmup = anatomy.least_warmup

    def as_on_a_gpu(device, cuda=None):
        asked.append((device, cuda))
        return least_warmup("cuda", cuda=True)

    monkeypatch.setattr(anatomy, "least_warmup", as_on_a_gpu)
    clock, handle = _one_second_per_optimizer_step(monkeypatch)
    ts = anatomy.make_set(60, 12, 3)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), width=8, depth=1, batch_size=40,
                           device="cpu", lr=1e-3, progress=False)
    try:
        eng = train.Engine(ts, p)
        part = anatomy.step_parts(eng, 2, None, "fp32")
    finally:
        handle.remove()
    assert eng.steps_per_epoch == 1 and asked == [("cpu", False)]
    assert eng.steps_done == WARMUP_STEPS + 1 + 2 and part["step_ms"] == 1000.0


def test_the_record_on_the_cpu(tmp_path, capsys):
    path = tmp_path / "anatomy.json"
    record = anatomy.main(SMALL + ["--json", str(path)])
    assert json.loads(path.read_text()) == json.loads(json.dumps(record))
    # the output opens with the command that made it and names the commit, as bench_train.py's does
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"$ {record['command']}" and record["command"].endswith("bench_anatomy.py " + " ".join(
        SMALL + ["--json", str(path)]))
    commit = [line.split()[1] for line in lines if line.startswith("commit ")]
    assert commit == [record["commit"]]
    assert record["started_utc"] <= record["finished_utc"]
    assert record["load_average"] is None or (len(record["load_average"]) == 3
                                              and min(record["load_average"]) >= 0)
    assert record["graphs"] is False and record["problem"]["width"] == 24
    engines = _engines(anatomy.make_set(3000, 3 * 32 * 32, 10))  # the problem main times
    for L, eng in zip(anatomy.FIGURE_L, engines):
        part = record["steps"][str(L)]
        assert part["parameters"] == models.parameter_count(eng.model)
        assert min(part["step_ms"], part["forward_backward_ms"], part["adam_ms"]) > 0
        assert part["products_floor_ms"] is None  # no data sheet for a CPU
        assert part["graph_note"] == eng.graph_note == "off"  # no CUDA graph on the CPU
    assert record["problem"]["threads"] == torch.get_num_threads() and record["cuda"] is None
    bb = record["backbones"]
    assert bb["runs"] == 3 and bb["side_by_side_ms"] is None and bb["batched_ms"] > 0
    assert bb["parameters"] == 3 * sum(q.numel() for q in engines[0].model.backbone.parameters())
    # the batched features and gradients are each run's, to float32 rounding at the least, and bit for bit
    # exactly when they differ nowhere
    assert bb["max_relative_difference"] < 1e-5
    assert bb["equal_bits"] == (bb["max_relative_difference"] == 0.0)


def test_floors_are_the_engine_chapters():
    """The parts' floors add up to nclib.floor.floor_seconds: the products at the peak, Adam's own 28 bytes per
    parameter, and the gradient's 4 bytes written by the backward pass (counted in the products' bytes, beside the
    weights the products read)."""
    eng = _engines()[0]
    sheet = anatomy.data_sheet("NVIDIA H200")
    part = anatomy.step_parts(eng, 2, sheet, "tf32")
    n = models.parameter_count(eng.model)
    whole = nclib.floor.floor_seconds([eng.model], eng.B, sheet["bandwidth"], sheet["tf32"])
    grad_write = nclib.floor.WEIGHT_BYTES * n / sheet["bandwidth"]
    assert 1e-3 * (part["products_floor_ms"] + part["adam_floor_ms"]) + grad_write == pytest.approx(
        whole, rel=1e-12, abs=0)  # abs=0: seconds of about 1e-8, below approx's implicit abs of 1e-12
    # the weights read by the forward and (but the first layer's) the input-gradient products, the gradients written
    weights = [W.numel() for W in eng.model.backbone_weights() + eng.model.head_weights()]
    read_written = nclib.floor.WEIGHT_BYTES * ((2 * sum(weights) - weights[0]) + sum(weights))
    assert part["forward_backward_bytes_floor_ms"] == pytest.approx(
        1e3 * read_written / sheet["bandwidth"], rel=1e-12, abs=0)
    assert anatomy.data_sheet("NVIDIA H100 80GB HBM3") == nclib.floor.DATASHEETS["H100 SXM"]
    assert sheet == nclib.floor.DATASHEETS["H200"]
    # cards of other bandwidths and peaks get no floor rather than the SXM card's
    for other in ("NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H200 NVL", "NVIDIA GH200 480GB", "NVIDIA A100-SXM4-80GB"):
        assert anatomy.data_sheet(other) is None, other


@pytest.mark.parametrize("precision", ["tf32", "fp32"])
def test_the_products_floors_are_at_the_precisions_peak(precision):
    """A run's products and the three backbones' at the data-sheet peak of the precision timed (an H200's): the
    products of nclib.floor.product_flops, and of the backbones those less the head's (each head weight in the
    forward, the weight-gradient and the input-gradient products, 2 FLOPs a multiply-add per row).  With the
    backbones' batched products the record says whether they were each run's bit for bit, and by how much not."""
    sheet = anatomy.data_sheet("NVIDIA H200")
    engines = _engines()
    part = anatomy.step_parts(engines[0], 2, sheet, precision)
    flops = nclib.floor.product_flops(engines[0].model, engines[0].B)
    assert part["products_floor_ms"] == pytest.approx(1e3 * flops / sheet[precision], rel=1e-12, abs=0)
    bb = anatomy.backbones(engines, 2, sheet, precision)
    B = engines[0].B
    head_weights = [sum(W.numel() for W in e.model.head_weights()) for e in engines]
    backbone_flops = sum(nclib.floor.product_flops(e.model, B) - 2 * B * 3 * w for e, w in zip(engines, head_weights))
    assert bb["products_floor_ms"] == pytest.approx(1e3 * backbone_flops / sheet[precision], rel=1e-12, abs=0)
    assert bb["equal_bits"] == (bb["max_relative_difference"] == 0.0)
    assert anatomy.backbones(engines, 2, None, precision)["products_floor_ms"] is None  # no data sheet


def test_with_the_papers_rows_tf32_products_are_bound_by_their_bytes_and_fp32_by_their_arithmetic():
    """The module docstring's reading of the floors at the paper's setting (128 rows, width 2048, depth 6): at
    either GPU's data-sheet peaks, the bytes of a run's products (nclib.floor.product_bytes) take longer than their
    TF32 arithmetic and less time than their strict fp32 arithmetic, for every L of a figure."""
    with torch.device("meta"):
        nets = [models.CollapseNet(3 * 32 * 32, 10, L) for L in anatomy.FIGURE_L]
    for sheet in nclib.floor.DATASHEETS.values():
        for net in nets:
            bytes_s = nclib.floor.product_bytes(net) / sheet["bandwidth"]
            flops = nclib.floor.product_flops(net, 128)
            assert flops / sheet["tf32"] < bytes_s < flops / sheet["fp32"]


@pytest.mark.parametrize("flag,value", [("--reps", "0"), ("--width", "0"), ("--depth", "0"), ("--batch-size", "0"),
                                        ("--batch-size", str(anatomy.N_SAMPLES + 1)), ("--device", "gpu")])
def test_a_setting_it_cannot_time_is_refused_by_its_flag(flag, value, capsys):
    """The parser's error (status 2) naming the flag, before anything is built or printed: a device that is not
    'auto', 'cpu', 'cuda' or 'cuda:i' too (as bench_train.py refuses it)."""
    with pytest.raises(SystemExit) as stop:
        anatomy.main(SMALL + [flag, value])
    captured = capsys.readouterr()
    assert stop.value.code == 2 and flag in captured.err and captured.out == ""


def test_the_precision_defaults_to_the_devices():
    """Without --precision the record names fp32 on the CPU (TF32, the GPU runs' precision, is the default on a GPU
    only), and the command that ran it."""
    record = anatomy.main(ANY_PRECISION)
    assert record["precision"] == "fp32"
    assert record["command"].endswith("bench_anatomy.py " + " ".join(ANY_PRECISION))
