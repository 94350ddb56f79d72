"""Where the time of a training step goes: its parts timed alone, and the figure's backbones as one batched product.

For one run at each L of a figure (1, 3, 6) on the paper's CIFAR-10 problem (the shapes of
``bench_train.py``):

- ``step``: the engine's own training steps (``Engine.train_steps`` over whole epochs: its graph replays and
  each epoch's permutation), per step, timed on the host from an idle device to an idle device;
- ``forward_backward``: the step without Adam (the gradients zeroed as the engine does, then F_B and its
  backward pass), captured as a graph and replayed ``--reps`` times alone, timed by CUDA events;
- ``adam``: Adam alone, on the gradients the previous graph leaves, captured and timed the same way (its
  warm-up and replays move the weights by a few Adam steps; the parts after it do not need the run's own
  weights).

The two parts are set against their shares of the engine chapter's floor (``nclib.floor.floor_seconds``, the
products at the data-sheet peak plus ``nclib.floor.ADAM_BYTES`` per parameter): ``products_floor_ms`` for
``forward_backward``, ``adam_floor_ms`` (Adam's reads of p, g, m, v and writes of p, m, v: 28 of those bytes)
for ``adam``; the other 4 bytes, the gradient written by the backward pass, are counted in
``forward_backward_bytes_floor_ms``, which bounds ``forward_backward`` from the memory side
(``nclib.floor.product_bytes``): the weights read twice (the forward and the input-gradient products; the first
layer's once, as it has no input-gradient product) and the gradient written once, 12 bytes per weight at the
data-sheet bandwidth.  With 128 rows a product does 256 FLOPs for each weight's 4 bytes; at the data-sheet peaks of
an H100 SXM or an H200, TF32 does them in less time than the memory moves the bytes and strict fp32 in more, so
with TF32 this bound exceeds the arithmetic one and in strict fp32 the arithmetic's is the larger.

Then the backbones of the three runs (identical shapes: ``depth`` Linear + ReLU layers and the feature layer),
the products that the lever "batched backbones" would merge: their forward and backward passes (the loss the sum
of the squared features) timed one after another, side by side (each run's graph on its own stream, as a figure's
runs train) and as one batched product per layer (``torch.baddbmm`` over the three runs' stacked weights).  Whether
the batched products keep each run's arithmetic is recorded too: ``equal_bits`` compares the batched features
and weight gradients with each run's own, bit for bit, and ``max_relative_difference`` says by how much they
differ where they do.

On the CPU the parts run eagerly (no graphs, no streams) and, unless ``--precision`` says otherwise, in fp32 (TF32
is the default on a GPU only): a check of the code path, not a measurement of a GPU.  ``--json PATH`` writes the
record (``benchmarks/results/bench_anatomy_tf32.json`` on the GPU).  As ``bench_train.py``'s, the output opens with
the command that made it (``$ ``, the variables of ``_common.COMMAND_ENV`` that are set, ``python`` and the
arguments) and names the host's CPUs and the commit benchmarked; the record holds them too, with when the timings
started and ended and the host's load average when they ended.

    python benchmarks/bench_anatomy.py --precision tf32 --json benchmarks/results/bench_anatomy_tf32.json
    python benchmarks/bench_anatomy.py --device cpu --width 32 --depth 2 --reps 3   # the code path only; writes nothing
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import models, parameters, provenance, train  # noqa: E402
from nclib import floor as nfloor  # noqa: E402
from nclib.step import matmul_precision  # noqa: E402

if str(pathlib.Path(__file__).resolve().parent) not in sys.path:  # loaded from its file path: _common lies beside it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import command_line, commit_text, load_average, refuse_below, shown, utc_now  # noqa: E402
# the problem, the GPUs' data sheets and the record's head of bench_train.py
from bench_train import N_SAMPLES, cpus_line, data_sheet, least_warmup, make_set, record_head  # noqa: E402

FIGURE_L = (1, 3, 6)

#: Of nclib.floor.ADAM_BYTES, what Adam alone moves: all but the gradient's write by the backward pass.
ADAM_ALONE_BYTES = nfloor.ADAM_BYTES - nfloor.WEIGHT_BYTES


def timed(fn, reps: int, device: torch.device, stream=None) -> float:
    """Milliseconds per call of ``fn``: on a GPU a CUDA graph of one call (captured on ``stream`` after three warm-up
    calls there) replayed ``reps`` times between two events; on the CPU ``reps`` eager calls."""
    if device.type != "cuda":
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return 1e3 * (time.perf_counter() - t0) / reps
    graph = capture(fn, device, stream)
    return replay_ms([graph], [stream], reps, device)


def capture(fn, device: torch.device, stream):
    """A CUDA graph of one call of ``fn``, captured on ``stream`` (a run's own side stream: cuBLAS keeps a workspace
    per stream, so graphs captured on one stream and replayed side by side would share it) after three warm-up calls
    there."""
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        fn()
    return graph


def replay_ms(graphs, streams, reps: int, device: torch.device) -> float:
    """Milliseconds per round of ``reps`` rounds in which every graph of ``graphs`` is replayed once, each on its
    stream of ``streams`` (side by side where the streams differ), from an idle device to an idle device."""
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    here = torch.cuda.current_stream(device)
    start.record(here)
    for s in set(streams):
        s.wait_stream(here)
    for _ in range(reps):
        for graph, s in zip(graphs, streams):
            with torch.cuda.stream(s):
                graph.replay()
    for s in set(streams):
        here.wait_stream(s)
    end.record(here)
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / reps


def step_parts(eng: train.Engine, reps: int, sheet: dict | None, precision: str) -> dict:
    """The step of one run and its two parts, in ms, beside their floors (module docstring).  The run is warmed up
    first, not timed: two epochs, or ``bench_train.least_warmup`` steps where two epochs have fewer (a large
    batch), so that the capture of the engine's own graph falls before the timing."""
    step, model = eng.step, eng.model
    eng.train_steps(max(2 * eng.steps_per_epoch, least_warmup(str(eng.device), eng.is_cuda)))
    eng.synchronize()
    t0 = time.perf_counter()
    epochs = max(1, -(-reps // eng.steps_per_epoch))
    eng.train_steps(epochs * eng.steps_per_epoch)
    step_ms = 1e3 * (time.perf_counter() - t0) / (epochs * eng.steps_per_epoch)
    side = torch.cuda.Stream(device=eng.device) if eng.is_cuda else None
    with step.training():  # on the run's stream, which the capture's side stream waits for
        idx = eng.batches()[0]

        def forward_backward():
            step.opt.zero_grad(set_to_none=True)
            eng.batch_objective(idx).backward()

        fb_ms = timed(forward_backward, reps, eng.device, side)
        adam_ms = timed(step.opt.step, reps, eng.device, side)
    n = models.parameter_count(model)
    out = {"parameters": n, "step_ms": step_ms, "forward_backward_ms": fb_ms, "adam_ms": adam_ms,
           "products_floor_ms": None, "adam_floor_ms": None, "forward_backward_bytes_floor_ms": None}
    if sheet is not None:
        out["products_floor_ms"] = 1e3 * nfloor.product_flops(model, eng.B) / sheet[precision]
        out["adam_floor_ms"] = 1e3 * ADAM_ALONE_BYTES * n / sheet["bandwidth"]
        out["forward_backward_bytes_floor_ms"] = 1e3 * nfloor.product_bytes(model) / sheet["bandwidth"]
    return out


def stacked(engines) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The backbones' Linear layers of ``engines`` as (weights (runs, out, in), biases (runs, 1, out)), copies that
    require gradients: the stacked storage a batched-backbone lever would keep, each run's weight in the layout
    of its ``nn.Linear``."""
    layers = []
    linears = [[m for m in e.model.backbone if isinstance(m, torch.nn.Linear)] for e in engines]
    for per_run in zip(*linears):
        W = torch.stack([m.weight.detach() for m in per_run]).requires_grad_(True)
        b = torch.stack([m.bias.detach()[None] for m in per_run]).requires_grad_(True)
        layers.append((W, b))
    return layers


def batched_features(layers, x: torch.Tensor) -> torch.Tensor:
    """The features of every run at once: ``x`` (runs, rows, in) through the stacked layers, one ``baddbmm`` per
    layer (x W^T + b, as ``nn.Linear`` computes it per run), ReLU between them and none after the feature layer
    (as ``CollapseNet.backbone``)."""
    h = x
    for j, (W, b) in enumerate(layers):
        h = torch.baddbmm(b, h, W.mT)
        if j < len(layers) - 1:
            h = torch.relu(h)
    return h


def backbones(engines, reps: int, sheet: dict | None, precision: str) -> dict:
    """The three backbones' forward and backward passes: one after another, side by side, batched; and whether the
    batched products give each run's features and weight gradients bit for bit."""
    device = engines[0].device
    rows = [e.batches()[0] for e in engines]
    xs = [e.X[idx] for e, idx in zip(engines, rows)]
    layers = stacked(engines)
    x_all = torch.stack(xs)
    separate = []
    for e, x in zip(engines, xs):
        def one(e=e, x=x):
            e.model.zero_grad(set_to_none=True)
            e.model.backbone(x).square().sum().backward()
        separate.append(one)

    def batched():
        for W, b in layers:
            W.grad = b.grad = None
        batched_features(layers, x_all).square().sum().backward()

    with matmul_precision(precision == "tf32"):
        if device.type == "cuda":
            streams = [torch.cuda.Stream(device=device) for _ in engines]
            graphs = [capture(fn, device, s) for fn, s in zip(separate, streams)]
            in_turn = sum(replay_ms([g], [s], reps, device) for g, s in zip(graphs, streams))
            side_by_side = replay_ms(graphs, streams, reps, device)
            batched_ms = timed(batched, reps, device, torch.cuda.Stream(device=device))
        else:
            in_turn = sum(timed(fn, reps, device) for fn in separate)
            side_by_side = None
            batched_ms = timed(batched, reps, device)
        # the arithmetic, from the same weights: each run's features and gradients against the batched ones
        for fn in separate:
            fn()
        batched()
        with torch.no_grad():
            own_h = [e.model.backbone(x) for e, x in zip(engines, xs)]
            all_h = batched_features(layers, x_all)
    pairs = [(all_h[r], own_h[r]) for r in range(len(engines))]
    linears = [[m for m in e.model.backbone if isinstance(m, torch.nn.Linear)] for e in engines]
    for j, (W, b) in enumerate(layers):
        for r in range(len(engines)):
            pairs += [(W.grad[r], linears[r][j].weight.grad), (b.grad[r, 0], linears[r][j].bias.grad)]
    equal = all(torch.equal(a, b) for a, b in pairs)
    worst = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) for a, b in pairs)
    weights = sum(W.numel() for W, _ in layers)
    # forward and weight-gradient products of every layer, input gradients of all but the first (product_flops)
    flops = sum(2 * rows[0].numel() * W.numel() * (2 if j == 0 else 3) for j, (W, _) in enumerate(layers))
    return {"runs": len(engines), "parameters": weights + sum(b.numel() for _, b in layers),
            "in_turn_ms": in_turn, "side_by_side_ms": side_by_side, "batched_ms": batched_ms,
            "products_floor_ms": None if sheet is None else 1e3 * flops / sheet[precision],
            "equal_bits": equal, "max_relative_difference": worst}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--reps", type=int, default=200, help="replays (GPU) or calls (CPU) per timing")
    ap.add_argument("--precision", default=None, choices=("fp32", "tf32"),
                    help="of the products (default: tf32, the runs' precision, on a GPU; fp32 on the CPU)")
    ap.add_argument("--json", default=None, help="where the record goes (default: none)")
    args = ap.parse_args(argv)
    try:  # as bench_train.py: a device it cannot name is refused before the output's first line
        kind = parameters.device_type(args.device)
    except ValueError as exc:
        ap.error(f"--device: {exc}")
    refuse_below(ap, args, {"width": 1, "depth": 1, "batch_size": 1, "reps": 1})
    if args.batch_size > N_SAMPLES:
        ap.error(f"--batch-size must be at most the N = {N_SAMPLES} samples of the problem, got {args.batch_size}")
    command = command_line(__file__, argv)
    print(f"$ {command}", flush=True)  # the output's first line: what made it, as bench_train.py's
    if args.precision is None:  # the record names the precision of the device it ran on
        args.precision = "tf32" if kind == "cuda" else "fp32"
    ts = make_set(N_SAMPLES, 3 * 32 * 32, 10)
    kw = dict(dataset="synthetic", counts=ts.counts.tolist(), width=args.width, depth=args.depth,
              batch_size=args.batch_size,
              device=args.device, precision=args.precision, lr=1e-4, lam_W=1e-5, lam_H=1e-5, progress=False)
    engines = [train.Engine(ts, train.check_params(**kw, L=L)) for L in FIGURE_L]
    device = engines[0].device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else provenance.cpu_model()
    sheet = data_sheet(name) if device.type == "cuda" else None
    head = record_head(name, device.type == "cuda", args.precision, command, "started_utc")
    print(f"device          {name}, torch {torch.__version__}, precision {args.precision}, {args.reps} reps per timing")
    print(cpus_line(head))
    print(f"commit          {commit_text(head['commit'], head['commit_dirty'])}", flush=True)
    record = {**head,
              "problem": {"N": ts.N, "input_dim": ts.x.shape[1], "K": ts.K, "batch_size": args.batch_size,
                          "width": args.width, "depth": args.depth, "threads": torch.get_num_threads()},
              "reps": args.reps, "graphs": device.type == "cuda", "steps": {}, "backbones": None}
    for L, eng in zip(FIGURE_L, engines):
        part = step_parts(eng, args.reps, sheet, args.precision)
        part["graph_note"] = eng.graph_note  # how the engine's own steps ran (a capture that fell back says why)
        record["steps"][str(L)] = part
        floors = "" if sheet is None else (f" (floors: products {part['products_floor_ms']:.3f}, Adam "
                                           f"{part['adam_floor_ms']:.3f}, bytes of the products "
                                           f"{part['forward_backward_bytes_floor_ms']:.3f})")
        print(f"L = {L}           step {part['step_ms']:.3f} ms; alone: forward+backward "
              f"{part['forward_backward_ms']:.3f}, Adam {part['adam_ms']:.3f}{floors}", flush=True)
    bb = backbones(engines, args.reps, sheet, args.precision)
    record["backbones"] = bb
    # on a shared machine other jobs slow the CPU timings: the load when the timings ended qualifies them
    record["load_average"] = load_average()
    record["finished_utc"] = utc_now()
    side = "n/a" if bb["side_by_side_ms"] is None else f"{bb['side_by_side_ms']:.3f}"
    print(f"backbones x{bb['runs']}    in turn {bb['in_turn_ms']:.3f} ms, side by side {side} ms, batched "
          f"{bb['batched_ms']:.3f} ms; batched equal bit for bit: {bb['equal_bits']} (max relative difference "
          f"{bb['max_relative_difference']:.2e})")
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        train.atomic_write_text(path, json.dumps(record, indent=2) + "\n")  # whole, even if stopped by a timeout
        print(f"record          {shown(path)}")
    return record


if __name__ == "__main__":
    main()
