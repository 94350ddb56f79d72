"""Steps per second of nclib.train's step loop against a plain PyTorch loop, same model, data and batch size.

The plain loop is the usual research-code pattern: a DataLoader over a TensorDataset in host memory
(shuffled, batch size B, last partial batch dropped), each batch copied to the device, forward, the same
mini-batch objective as nclib.train, backward, a default torch.optim.Adam step, and ``loss.item()`` every
step.  nclib's loop is ``nclib.train.Engine.train_steps``: data on the device, device-side permutation,
no host synchronisation per step, fused Adam and a CUDA graph of the step on a GPU.  Both start from the
same initialization and run warm-up steps (not timed) before ``--steps`` timed steps.

The data have the shape of the paper's CIFAR-10 subset (N = 3000 samples of 3 x 32 x 32, K = 10; random
values, which do not change the cost of a step).  Chapter :ref:`ch-engine` quotes the output.

With ``--json auto`` a machine-readable record also goes to ``benchmarks/results/bench_train_gpu.json`` on a
GPU with TF32 (``bench_train_gpu_fp32.json`` and ``bench_train_gpu_bf16.json`` at the other precisions) or to
``bench_train_cpu.json`` in fp32 on the CPU (``bench_train_cpu_bf16.json`` and ``bench_train_cpu_tf32.json`` at
the others); ``--json PATH`` writes it to PATH, and by default none is written, so that a
trial run never rewrites a committed record.  The output's first line is the command that made it (``$ `` and
the variables of ``_common.COMMAND_ENV`` that are set, then ``python`` and the arguments).  Each loop is timed
``--repeats`` times (default 3), the two in alternation, so that a change of the machine's load falls on both; the
output gives the medians with the range of the repeats in brackets, and the ratio's median and range over the
rounds.  The record holds the device, torch (and CUDA), precision, the commit benchmarked (and whether the
checkout differed from it; the output prints it too), the command, the host's logical CPUs and those the process
may use, when the timings started and ended, the timing's settings and the CUDA graph's note, the steps per
second of both loops (medians, and every repeat), the host's load average when the timings ended (other jobs on a
shared machine slow the CPU loops) and, with ``--figure-epochs``, a figure's three runs one after another and side
by side, each timed ``--repeats`` times, the two in alternation (per epoch: the medians, and every repeat in
seconds), against the engine chapter's floor for that device (None where the chapter has no data sheet for it),
the time of one metric epoch of the three runs (the median of ``--repeats`` timings after one call that is not
timed), and the seconds of 12,000 epochs with a metric epoch at each epoch of
``nclib.runs.metric_epochs(12000, metric_every)`` (epoch 0, every ``metric_every``-th, the default 100, and the last).

    python benchmarks/bench_train.py                       # GPU: the paper's setting (width 2048)
    OMP_NUM_THREADS=1 python benchmarks/bench_train.py --device cpu --width 256 --steps 300 --threads 1 \
        --repeats 5 --figure-epochs 2 --json auto   # the committed CPU run (its printed output: bench_train_cpu.txt)
    python benchmarks/bench_train.py --precision tf32 --figure-epochs 40 --json auto   # + bench_train_gpu.json
    OMP_NUM_THREADS=1 python benchmarks/bench_train.py --device cpu --width 32 --steps 20 --warmup 2 \
        --figure-epochs 2 --repeats 1   # a trial, which writes nothing

``--json auto`` writes over a committed record: regenerate one from a clean checkout, in a commit of its own
(benchmarks/results/README.md).

With ``--levers SPEC ...`` it measures the engine's opt-in speed levers (``nclib.parameters.LEVER_KEYS``) beside the
plain engine instead: each SPEC is ``plain`` or comma-separated ``name=value`` settings of the levers (e.g.
``grouped_adam=true``, ``steps_per_graph=4``, ``deferred_metrics=true``); for each, the steps per second of one
run (L = ``--L``) over whole epochs (``--steps`` rounded up to epochs, after two warm-up epochs in which the graphs
are captured) and, with ``--figure-epochs``, a figure's three runs side by side per epoch, and what a metric epoch
of the three costs as training sees it (the same epochs again with a metric epoch every ``--figure-epochs // 4``
epochs, at least every epoch, as ``run_many`` records them, less the epochs alone, the two timed ``--repeats`` times
in alternation: ``metric_ms_seen_by_training``, the median of the rounds' differences per metric epoch, with
``metric_within_noise`` when it is no larger than the range of the epochs alone per metric epoch; the record's
``metric_epochs`` says how many).  A lever
the device refuses (several steps per graph on the CPU) or that fails is recorded with its error, and the others go
on.  The plain PyTorch loop is skipped; the record's ``levers`` holds one entry per SPEC, with the sha256 of the
runs' parameters after the timed steps and, once ``plain`` was measured, ``same_as_plain``: whether the lever's
runs (the same steps from the same start) ended bit for bit where the plain engine's did.

    python benchmarks/bench_train.py --precision tf32 --steps 300 --figure-epochs 10 \
        --levers plain grouped_adam=true steps_per_graph=4 grouped_adam=true,steps_per_graph=4 --json levers.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import data, models, parameters, provenance, train  # noqa: E402
from nclib import floor as nfloor  # noqa: E402
from nclib.figures.speed import round_quotients  # noqa: E402
from nclib.runs import metric_epochs  # noqa: E402
from nclib.step import WARMUP_STEPS, matmul_precision  # noqa: E402

if str(pathlib.Path(__file__).resolve().parent) not in sys.path:  # loaded from its file path: _common lies beside it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import command_line, commit_text, load_average, refuse_below, shown, utc_now  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
#: Samples of the problem timed (:func:`make_set`, the size of the paper's CIFAR-10 subset): no batch is larger.
N_SAMPLES = 3000


def make_set(N: int, D: int, K: int, seed: int = 0) -> data.TrainingSet:
    rng = np.random.default_rng(seed)
    counts = np.full(K, N // K, dtype=np.int64)
    y = np.repeat(np.arange(K), counts)
    x = rng.standard_normal((y.size, D)).astype(np.float32)
    return data.TrainingSet("bench", x, y, counts, tuple(map(str, range(K))), x, {"data_sha256": ""})


def plain_step(ts, p, device):
    """The plain loop's network, built as ``nclib.train.Engine`` builds its own (the same initialization from the
    run's seed), and its step: ``(model, one)``, where ``one(x, yb)`` takes one step of a default
    ``torch.optim.Adam`` on the rows ``x`` with one-hot labels ``yb`` (copied to ``device``), on the mini-batch
    objective F_B of (4.3) written out here, and returns F_B before the step, read on the host."""
    model = models.build_model(ts.x.shape[1], ts.K, p["L"], width=p["width"], depth=p["depth"], bias=True,
                               init=p["init"], seed=p["seed"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
    N, lam_H, lam_W = ts.N, p["lam_H"], p["lam_W"]
    bf16 = p["precision"] == "bf16"

    def one(x, yb):
        x, yb = x.to(device), yb.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, h = model(x)
        logits, h = logits.float(), h.float()
        B = x.shape[0]
        loss = ((logits - yb) ** 2).sum() / (2 * B) + lam_H * N / (2 * B) * (h * h).sum()
        loss = loss + sum(lam_W / 2 * (W * W).sum() for W in model.head_weights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return model, one


def plain_loop(ts, p, device, warmup: int):
    """The plain loop (DataLoader, host-to-device copies, .item() each step: :func:`plain_step`) after ``warmup``
    steps: a function of ``steps`` that times that many more steps and returns their steps per second."""
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(p["seed"])
    _, one = plain_step(ts, p, device)
    X = torch.as_tensor(ts.x)
    Y = torch.nn.functional.one_hot(torch.as_tensor(ts.y), ts.K).float()
    loader = DataLoader(TensorDataset(X, Y), batch_size=p["batch_size"], shuffle=True, drop_last=True)

    def batches():  # the loader's epochs, one after another, as a training loop draws them
        while True:
            yield from loader

    stream = batches()

    def steps_taken(n: int) -> None:
        for _ in range(n):
            one(*next(stream))
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    steps_taken(warmup)

    def timed(steps: int) -> float:
        t0 = time.perf_counter()
        steps_taken(steps)
        return steps / (time.perf_counter() - t0)

    return timed


def least_warmup(device: str, cuda: bool | None = None) -> int:
    """The fewest warm-up steps that keep a loop's one-time costs out of its first timed round, for ``device``
    (``--device``) on a machine with a CUDA device (``cuda=True``), without one (False) or this one (None): on the
    CPU one (the first step allocates); on a GPU the engine's ``nclib.step.WARMUP_STEPS`` eager steps, which load
    the kernels, and the next, which captures the CUDA graph of one step.  For the loops that ``--warmup`` warms
    up, the plain engine's (:func:`engine_loop`, one step a graph) and the plain loop, and for the figure's runs of
    :func:`figure_loop` and ``bench_anatomy.py``'s engine steps, which warm up an epoch (two in the latter) but
    never fewer steps than this; ``--levers`` warms each lever up on whole epochs of its own instead
    (:func:`lever_warmup_epochs`), which capture its graphs of ``steps_per_graph`` steps and of an epoch's
    remainder."""
    return WARMUP_STEPS + 1 if parameters.device_type(device, cuda) == "cuda" else 1


def engine_loop(ts, p, warmup: int):
    """nclib.train's loop (Engine.train_steps, synchronised at the end) after ``warmup`` steps: a function of
    ``steps`` that times that many more steps and returns their steps per second, and the Engine."""
    eng = train.Engine(ts, p)
    eng.train_steps(warmup)  # on a GPU at least least_warmup(...) steps: the eager steps and the graph's capture

    def timed(steps: int) -> float:
        t0 = time.perf_counter()
        eng.train_steps(steps)
        return steps / (time.perf_counter() - t0)

    return timed, eng


def interleaved(first, second, steps: int, repeats: int) -> tuple[list[float], list[float]]:
    """What two timed measurements return (steps per second of two loops, or seconds), each called with ``steps``
    ``repeats`` times in alternation (``first`` leads in the even rounds, ``second`` in the odd ones), so that a
    change in the machine's load during the benchmark falls on both alike."""
    rates = ([], [])
    for r in range(repeats):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for i in order:
            rates[i].append((first, second)[i](steps))
    return rates


def figure_loop(ts, p, Ls, epochs: int, repeats: int) -> tuple[list[float], list[float], list[float], list]:
    """Seconds for ``epochs`` epochs of one run per L, one run after another and all side by side (the lockstep of
    ``nclib.train.run_many``: each epoch queued for every run, on a GPU each on its own stream), the two timed
    ``repeats`` times in alternation (:func:`interleaved`); then the seconds of one metric epoch of all runs
    (``Engine.evaluate``, device and host parts, in turn), ``repeats`` times after one call of each that is not
    timed.  Each run is warmed up first, not timed: an epoch, or :func:`least_warmup` steps where an epoch has
    fewer (a large batch), so that the CUDA graph's capture falls before the timings.  Returns the three lists of
    seconds and the engines."""
    engines = [train.Engine(ts, train.check_params(**{**p, "L": L})) for L in Ls]
    for eng in engines:
        eng.train_steps(max(eng.steps_per_epoch, least_warmup(str(eng.device), eng.is_cuda)))

    def one_after_another(E: int) -> float:  # each run alone, the device idle between them (else streams overlap)
        return sum(train.time_side_by_side([eng], E) for eng in engines)

    apart, together = interleaved(one_after_another, lambda E: train.time_side_by_side(engines, E), epochs, repeats)
    for eng in engines:
        eng.evaluate()  # warm-up: the first call allocates and, on a GPU, loads its kernels
    metric = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for eng in engines:
            eng.evaluate()
        metric.append(time.perf_counter() - t0)
    return apart, together, metric, engines


def spread(values) -> str:
    """``[least, largest]`` of ``values`` as the output prints a range."""
    return f"[{min(values):.2f}, {max(values):.2f}]"


def parse_lever(spec: str) -> dict:
    """The lever settings of one ``--levers`` SPEC: ``plain`` (none) or ``name=value,...`` of LEVER_KEYS, each
    value read by ``nclib.parameters.parse_value``; ValueError naming ``--levers`` for another name or a setting
    that ``nclib.parameters.parse_setting`` refuses."""
    if spec == "plain":
        return {}
    out = {}
    for part in spec.split(","):
        name, value = parameters.parse_setting(part, "--levers")
        if name not in train.LEVER_KEYS:
            raise ValueError(f"--levers {part}: {name!r} is not a lever; the levers are {train.LEVER_KEYS}")
        out[name] = value
    return out


def params_sha256(engines) -> str:
    """sha256 of every parameter of ``engines`` (their bytes, in order): equal for runs equal bit for bit."""
    h = hashlib.sha256()
    for eng in engines:
        eng.synchronize()
        for q in eng.model.parameters():
            h.update(q.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def lever_loop(ts, p, Ls, steps: int, figure_epochs: int, settings: dict, repeats: int = 1) -> dict:
    """One lever's measures: steps/s of one run over whole epochs, and a figure's runs side by side per epoch; what a
    metric epoch costs as training sees it: the epochs with metric epochs less the same epochs alone, the two timed
    ``repeats`` times in alternation (:func:`interleaved`), the median of the rounds' differences, and whether it
    lies within the noise (at most the range of the epochs alone, per metric epoch; None after one round)."""
    q = train.check_params(**{**p, **settings})  # refusals (several steps per graph on the CPU) by name
    eng = train.Engine(ts, q)
    if q["grouped_adam"]:
        train.group_engines([eng])
    epochs = -(-steps // eng.steps_per_epoch)
    train.time_side_by_side([eng], lever_warmup_epochs(eng))  # warm-up, the graphs' capture
    seconds = train.time_side_by_side([eng], epochs)
    out = {"settings": settings, "steps_per_s": epochs * eng.steps_per_epoch / seconds, "graph_note": eng.graph_note,
           "epoch_ms_side_by_side": None, "params_sha256": params_sha256([eng])}
    if figure_epochs > 0:
        engines = [train.Engine(ts, train.check_params(**{**q, "L": L})) for L in Ls]
        if q["grouped_adam"]:
            train.group_engines(engines)
        train.time_side_by_side(engines, lever_warmup_epochs(engines[0]))
        every = max(1, figure_epochs // 4)
        n = figure_epochs // every
        alone, with_metrics = interleaved(
            lambda E: train.time_side_by_side(engines, E),
            lambda E: with_metric_epochs(engines, E, every, q["deferred_metrics"]), figure_epochs, repeats)
        costs = [1e3 * (w - a) / n for a, w in zip(alone, with_metrics)]  # per metric epoch, round by round
        noise = 1e3 * (max(alone) - min(alone)) / n
        out["epoch_ms_side_by_side"] = 1e3 * float(np.median(alone)) / figure_epochs
        out["epoch_ms_side_by_side_repeats"] = [1e3 * a / figure_epochs for a in alone]
        out["figure_graph_note"] = engines[0].graph_note
        out["figure_params_sha256"] = params_sha256(engines)  # after every round: the same epochs for each lever
        out["metric_epochs"] = n
        out["metric_ms_seen_by_training"] = float(np.median(costs))
        out["metric_ms_seen_by_training_repeats"] = costs
        out["metric_ms_noise"] = noise
        out["metric_within_noise"] = None if repeats < 2 else bool(out["metric_ms_seen_by_training"] <= noise)
    return out


def lever_warmup_epochs(eng) -> int:
    """The whole epochs that warm up a lever's run (:func:`lever_loop`) before its timing: two, or where an epoch
    has fewer steps than the GPU's eager warm-up (:func:`least_warmup`, ``nclib.step.WARMUP_STEPS``), the epochs
    those steps span and one more, whose steps capture every graph a later epoch replays (of ``steps_per_graph``
    steps and of an epoch's remainder)."""
    eager = least_warmup(str(eng.device), eng.is_cuda) - 1
    return max(2, -(-eager // eng.steps_per_epoch) + 1)


def with_metric_epochs(engines, epochs: int, every: int, deferred: bool) -> float:
    """Seconds for ``epochs`` epochs of ``engines`` side by side with a metric epoch of every run each ``every``
    epochs, as ``nclib.train.run_many`` records them (without files): the device half and the loss read at once
    and the host metrics in a worker thread, or with ``deferred`` the device work queued
    (``Engine.queue_evaluation``) and the whole row completed in the worker thread; from an idle device until
    the device and the worker are done.  Less the same epochs without metrics, the cost of the metric epochs
    as training sees it."""
    from concurrent.futures import ThreadPoolExecutor

    futures = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        engines[0].synchronize()
        t0 = time.perf_counter()
        for epoch in range(1, epochs + 1):
            train.train_epochs_together(engines)
            if epoch % every:
                continue
            for eng in engines:
                if deferred:
                    finish = eng.queue_evaluation()
                    futures.append(pool.submit(lambda f=finish, e=eng: e.host_metrics(f()[1])))
                else:
                    eng.take_loss()
                    futures.append(pool.submit(eng.host_metrics, eng.evaluate_device()[1]))
        for f in futures:
            f.result()
        engines[0].synchronize()
        return time.perf_counter() - t0


def run_levers(args, ts, p, command: str) -> None:
    """``--levers``: the plain engine and each lever, one line each; the record is rewritten after each lever, so
    that a run stopped by a time limit leaves the levers it measured."""
    Ls = (1, 3, 6)
    first = train.Engine(ts, p)  # where device="auto" resolves
    is_cuda = first.is_cuda
    name = torch.cuda.get_device_name(first.device) if is_cuda else provenance.cpu_model()
    del first
    floor = None
    if args.figure_epochs > 0:  # the floor needs the networks' shapes only: built on the CPU
        floor = floor_ms([train.Engine(ts, train.check_params(**{**p, "L": L, "device": "cpu", "cuda_graph": False}))
                          for L in Ls], name, args.precision)
    head = record_head(name, is_cuda, args.precision, command, "started_utc")
    print(f"device          {name}, torch {torch.__version__}, precision {args.precision}; figure floor "
          f"{'n/a' if floor is None else f'{floor:.2f} ms/epoch'}")
    print(cpus_line(head))
    levers = {}
    record = {**head,
              "problem": {"N": ts.N, "input_dim": ts.x.shape[1], "K": ts.K, "batch_size": p["batch_size"],
                          "width": args.width, "depth": args.depth, "L": args.L, "figure_L": list(Ls),
                          "threads": torch.get_num_threads(), "figure_epochs_timed": args.figure_epochs,
                          "repeats": args.repeats},
              "epoch_ms_floor": floor, "levers": levers, "load_average": None}
    path = json_path(args.json, is_cuda, args.precision)
    for spec in args.levers:
        try:
            settings = parse_lever(spec)
            levers[spec] = lever_loop(ts, p, Ls, args.steps, args.figure_epochs, settings, args.repeats)
        except Exception as exc:  # noqa: BLE001 - a lever that fails is recorded, the others go on
            levers[spec] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"lever {spec:<40} failed: {type(exc).__name__}: {exc}")
        else:
            m = levers[spec]
            if spec != "plain" and "steps_per_s" in levers.get("plain", {}):  # same steps, same start as plain
                m["same_as_plain"] = all(m.get(k) == levers["plain"].get(k)
                                         for k in ("params_sha256", "figure_params_sha256"))
            fig = "" if m["epoch_ms_side_by_side"] is None else (
                f", figure {m['epoch_ms_side_by_side']:8.2f} ms/epoch, a metric epoch "
                f"{m['metric_ms_seen_by_training']:7.1f} ms {spread(m['metric_ms_seen_by_training_repeats'])}"
                + {None: " (one round: its noise unknown)", True: " (within the noise of the epochs alone)",
                   False: ""}[m["metric_within_noise"]])
            same = "" if "same_as_plain" not in m else f", bit for bit as plain: {m['same_as_plain']}"
            print(f"lever {spec:<40} {m['steps_per_s']:10.1f} steps/s{fig}{same}   ({m['graph_note']})", flush=True)
        record["load_average"] = load_average()
        record["finished_utc"] = utc_now()  # the last lever measured so far
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            train.atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    if path is not None:
        print(f"record          {shown(path)}")


def floor_ms(engines: list[train.Engine], device_name: str, precision: str) -> float | None:
    """The engine chapter's floor for one epoch of ``engines`` in turn (Adam's traffic plus the products, at the
    data-sheet peaks of the GPU named), in ms; None on a device or at a precision the chapter has no peak for."""
    sheet = data_sheet(device_name)
    if sheet is None or precision not in sheet:
        return None
    eng = engines[0]
    return 1e3 * eng.steps_per_epoch * nfloor.floor_seconds([e.model for e in engines], eng.B, sheet["bandwidth"],
                                                           sheet[precision])


def record_head(device_name: str, is_cuda: bool, precision: str, command: str, time_key: str) -> dict:
    """The fields every benchmark record opens with: the device, torch (and CUDA on a GPU), the precision, the
    commit benchmarked and whether the checkout differed from it, the command, the host's logical CPUs
    (``cpu_count``) and those this process may run on (``cpu_affinity``, None where the system does not say), and
    the UTC time as ``time_key``."""
    code = provenance.git_state()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"device": device_name, "torch": torch.__version__, "cuda": torch.version.cuda if is_cuda else None,
            "precision": precision, "commit": code["git_commit"], "commit_dirty": code["git_dirty"],
            "command": command, "cpu_count": os.cpu_count(), "cpu_affinity": affinity, time_key: utc_now()}


def cpus_line(head: dict) -> str:
    """The output's line of the host's CPUs, from a record's head (:func:`record_head`)."""
    usable = "n/a" if head["cpu_affinity"] is None else head["cpu_affinity"]
    return f"cpus            {head['cpu_count']} logical CPUs, {usable} usable by this process"


def data_sheet(device_name: str) -> dict | None:
    """The data sheet of ``nclib.floor.DATASHEETS`` for the GPU named (an H200 or an H100 SXM card, as torch names
    them), None for another device: the PCIe and NVL cards and the Grace Hopper superchips (GH200) have other
    bandwidths and peaks."""
    if "GH200" in device_name or "NVL" in device_name or "PCIe" in device_name:
        return None
    if "H200" in device_name:
        return nfloor.DATASHEETS["H200"]
    if "H100" in device_name:  # the SXM card ("NVIDIA H100 80GB HBM3")
        return nfloor.DATASHEETS["H100 SXM"]
    return None


def json_path(arg: str, is_cuda: bool, precision: str) -> pathlib.Path | None:
    """Where ``--json arg`` writes the record: nowhere for ``none``, the path given, or for ``auto`` the committed
    record of the device and precision, ``bench_train_gpu.json`` or ``bench_train_cpu.json`` at the device's own
    precision (TF32 on a GPU, fp32 on the CPU) and ``bench_train_gpu_PRECISION.json`` or
    ``bench_train_cpu_PRECISION.json`` at another, so that no run overwrites a record made at another precision."""
    if arg == "none":
        return None
    if arg != "auto":
        return pathlib.Path(arg)
    device, own = ("gpu", "tf32") if is_cuda else ("cpu", "fp32")
    return RESULTS / (f"bench_train_{device}.json" if precision == own else f"bench_train_{device}_{precision}.json")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--L", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2000, help="timed steps (per repeat)")
    ap.add_argument("--warmup", type=int, default=20,
                    help="steps of each loop before the timed ones, not timed: at least 1 on the CPU (the first step "
                         f"allocates), at least {WARMUP_STEPS + 1} on a GPU (the engine's {WARMUP_STEPS} eager steps, "
                         "which load the kernels, and the step that captures the CUDA graph)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="times each loop is timed, the two in alternation; the output gives the median and range")
    ap.add_argument("--precision", default="fp32", choices=train.PRECISIONS)
    ap.add_argument("--cuda-graph", default="auto", choices=["auto", "true", "false"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--figure-epochs", type=int, default=0,
                    help="also time a figure's runs (L = 1, 3, 6) for this many epochs each, one after another "
                         "and side by side (nclib.train.run_many); 0: skip")
    ap.add_argument("--json", default="none",
                    help="where the machine-readable record goes: 'none' (the default), 'auto' "
                         "(benchmarks/results/bench_train_gpu.json with TF32 on a GPU, bench_train_gpu_PRECISION.json "
                         "otherwise; bench_train_cpu.json in fp32 on the CPU, bench_train_cpu_PRECISION.json "
                         "otherwise) or a path")
    ap.add_argument("--levers", nargs="+", default=None, metavar="SPEC",
                    help="measure the plain engine and the opt-in levers instead: 'plain' or name=value[,...] of "
                         f"{', '.join(train.LEVER_KEYS)} (see the module docstring); the plain loop is skipped")
    args = ap.parse_args(argv)
    try:
        least = least_warmup(args.device)
    except ValueError as exc:
        ap.error(f"--device: {exc}")
    refuse_below(ap, args, {"steps": 1, "repeats": 1, "width": 1, "depth": 1, "L": 1, "batch_size": 1,
                            "warmup": least, "figure_epochs": 0, "threads": 1})
    if args.batch_size > N_SAMPLES:
        ap.error(f"--batch-size must be at most the N = {N_SAMPLES} samples of the problem, got {args.batch_size}")
    if args.levers and args.json == "auto":
        ap.error("--levers writes its record with --json PATH (not auto: the main records stay as they are)")
    command = command_line(__file__, argv)
    print(f"$ {command}", flush=True)  # the output's first line: what made it (nclib.figures.read_benchmark)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda_graph = {"auto": "auto", "true": True, "false": False}[args.cuda_graph]
    ts = make_set(N_SAMPLES, 3 * 32 * 32, 10)
    p = train.check_params(dataset="synthetic", counts=ts.counts.tolist(), L=args.L, width=args.width,
                           depth=args.depth,
                           batch_size=args.batch_size, device=args.device, precision=args.precision,
                           cuda_graph=cuda_graph, lr=1e-4, lam_W=1e-5, lam_H=1e-5, progress=False)
    if args.levers:
        run_levers(args, ts, p, command)
        return
    engine_timed, eng = engine_loop(ts, p, args.warmup)
    device = eng.device  # the plain loop runs where the Engine resolved device="auto"
    name = torch.cuda.get_device_name(device) if eng.is_cuda else provenance.cpu_model()
    head = record_head(name, eng.is_cuda, args.precision, command, "started_utc")
    with matmul_precision(p["precision"] == "tf32"):
        plain_timed = plain_loop(ts, p, device, args.warmup)
        engines_rates, plain_rates = interleaved(engine_timed, plain_timed, args.steps, args.repeats)
    n_params = models.parameter_count(eng.model)
    rate_engine, rate_plain = float(np.median(engines_rates)), float(np.median(plain_rates))
    record = {**head, "problem": {"N": ts.N, "input_dim": ts.x.shape[1], "K": ts.K, "batch_size": eng.B,
                          "width": args.width, "depth": args.depth, "L": args.L, "parameters": n_params,
                          "threads": torch.get_num_threads()},
              "timing": {"steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
                         "graph_note": eng.graph_note, "fused_adam": eng.fused},
              "steps_per_s": {"engine": rate_engine, "plain": rate_plain},
              "steps_per_s_repeats": {"engine": engines_rates, "plain": plain_rates}, "figure": None}
    # the median of each loop, and of the ratios of the rounds (each round times both loops side by side in time)
    ratios = round_quotients(record)["ratio"]
    print(f"device          {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(cpus_line(head))
    print(f"commit          {commit_text(head['commit'], head['commit_dirty'])}")
    print(f"precision       {args.precision}; nclib cuda graph: {eng.graph_note}; fused Adam: {eng.fused}")
    print(f"problem         N={ts.N}, input dim {ts.x.shape[1]}, K={ts.K}, batch {eng.B} "
          f"({eng.steps_per_epoch} steps/epoch), width {args.width}, depth {args.depth}, L={args.L}, "
          f"{n_params} parameters")
    print(f"timed steps     {args.steps} after {args.warmup} warm-up steps, {args.repeats} times each loop, "
          f"the two in alternation (medians; the range in brackets)")
    print(f"plain loop      {rate_plain:10.1f} steps/s   [{min(plain_rates):.1f}, {max(plain_rates):.1f}] "
          f"(DataLoader, host->device copies, .item() per step)")
    print(f"nclib.train     {rate_engine:10.1f} steps/s   [{min(engines_rates):.1f}, {max(engines_rates):.1f}]")
    print(f"ratio           {float(np.median(ratios)):10.2f} x   [{min(ratios):.2f}, {max(ratios):.2f}] "
          f"(per round)")
    epochs_12000 = 12000 * eng.steps_per_epoch
    print(f"12000 epochs    {epochs_12000} steps: {epochs_12000 / rate_engine:.0f} s with nclib.train, "
          f"{epochs_12000 / rate_plain:.0f} s with the plain loop (training steps only)", flush=True)
    if args.figure_epochs > 0:
        E, R = args.figure_epochs, args.repeats
        apart_s, together_s, metric_s, engines = figure_loop(ts, p, (1, 3, 6), E, R)
        apart, together, metric = (float(np.median(v)) for v in (apart_s, together_s, metric_s))
        every = train.DEFAULTS["metric_every"]
        record["figure"] = {
            "L": [1, 3, 6], "epochs_timed": E, "repeats": R, "epoch_ms_side_by_side": 1e3 * together / E,
            "epoch_ms_one_after_another": 1e3 * apart / E, "epoch_ms_floor": floor_ms(engines, name, args.precision),
            "seconds_side_by_side_repeats": together_s, "seconds_one_after_another_repeats": apart_s,
            "metric_ms": 1e3 * metric, "metric_ms_repeats": [1e3 * m for m in metric_s], "metric_every": every,
            "seconds_12000_epochs_with_metrics": 12000 * together / E
            + len(metric_epochs(12000, every)) * metric}  # nclib.train.run's rows
        rounds = round_quotients(record)["figure_ratio"]
        print(f"figure runs     L = 1, 3, 6, {E} epochs each: one after another {apart:.2f} s {spread(apart_s)}, "
              f"side by side {together:.2f} s {spread(together_s)}, ratio {float(np.median(rounds)):.2f} x "
              f"{spread(rounds)} (per round) ({R} times each, in alternation; medians, the range in brackets)")
        print(f"12000 epochs    a figure's three runs side by side: {12000 * together / E:.0f} s "
              f"(one after another: {12000 * apart / E:.0f} s; training steps only)")
        print(f"metric epoch    of the three runs (evaluate): {1e3 * metric:.1f} ms "
              f"[{1e3 * min(metric_s):.1f}, {1e3 * max(metric_s):.1f}] (median of {R} after one call not timed)")
    # on a shared machine other jobs slow the CPU loops: the load when the timings ended qualifies them
    record["load_average"] = load_average()
    record["finished_utc"] = utc_now()
    path = json_path(args.json, eng.is_cuda, args.precision)
    if path is not None:
        train.atomic_write_text(path, json.dumps(record, indent=2) + "\n")
        print(f"record          {shown(path)}")


if __name__ == "__main__":
    main()
