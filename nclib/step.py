"""One Adam step on the mini-batch objective F_B of (4.3), as fast as the device allows (:ref:`ch-engine`).

``AdamStep(params, objective, device, lr=...)`` owns what a step needs beyond the objective itself:

- Adam (betas 0.9, 0.999, eps 1e-8, the paper's optimizer); on a GPU the fused CUDA implementation, whose
  learning rate is a device tensor, so the step schedule (:meth:`AdamStep.set_lr`) changes it in place and a
  captured graph reads the new value;
- on a GPU, a CUDA stream of the run's own, on which every step (and, through :meth:`AdamStep.on_stream`, the
  run's metric work) is queued, so that runs trained side by side overlap on the device;
- with ``cuda_graph`` on a GPU, the whole step (gather, forward, F_B, backward, Adam) captured once as a CUDA
  graph after three warm-up steps and replayed, one launch per step;
- the batch objectives summed on the device and read once by :meth:`AdamStep.take_loss` (no host
  synchronisation per step).

On the CPU the same step runs eagerly with a float learning rate: ``objective(idx)``, backward, Adam.

The floor of a step (:func:`floor_seconds`: Adam's memory traffic plus the matrix products at a GPU's data-sheet
peaks, :data:`DATASHEETS`) is the engine chapter's measure of how far a measured step is from what the device
allows.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch

from . import _checks, models

#: Adam's hyperparameters besides the learning rate (the paper's optimizer with PyTorch's defaults).
BETAS, EPS = (0.9, 0.999), 1e-8

#: Eager steps before a CUDA graph is captured (cuBLAS handles and Adam's state exist by then).
WARMUP_STEPS = 3


#: Bytes of memory traffic per parameter and step at the least: fused Adam reads p, g, m, v and writes p, m, v
#: (fp32), and the backward pass writes g.
ADAM_BYTES = 32

#: Data-sheet peaks (dense) of the GPUs whose floors :ref:`ch-engine` computes: HBM bandwidth in bytes/s and
#: matrix-product throughput in FLOP/s, strict fp32 and TF32 (NVIDIA's H100 SXM and H200 data sheets).
DATASHEETS = {"H100 SXM": dict(bandwidth=3.35e12, fp32=67e12, tf32=495e12),
              "H200": dict(bandwidth=4.8e12, fp32=67e12, tf32=495e12)}


def product_flops(model: models.CollapseNet, rows: int) -> int:
    """Matrix-product FLOPs of one step on ``rows`` samples: forward and weight gradients for every layer, input
    gradients for every layer but the first (the data need none); :ref:`ch-engine`'s arithmetic."""
    rows = _checks.positive_int(rows, "rows")
    weights = [W.numel() for W in model.backbone_weights() + model.head_weights()]
    return 2 * rows * (3 * sum(weights) - weights[0])


def floor_seconds(nets, rows: int, bandwidth: float, flops_per_s: float) -> float:
    """The least time of one step of each network of ``nets`` on ``rows`` samples (:ref:`ch-engine`): Adam's
    memory traffic (:data:`ADAM_BYTES` per parameter at ``bandwidth`` bytes/s), which no schedule hides, plus
    the matrix products at ``flops_per_s``, taken in turn."""
    nets = list(nets)
    if not nets:
        raise ValueError("nets must hold at least one network")
    bandwidth = _checks.positive_float(bandwidth, "bandwidth")
    flops_per_s = _checks.positive_float(flops_per_s, "flops_per_s")
    adam = sum(ADAM_BYTES * models.parameter_count(net) for net in nets) / bandwidth
    return adam + sum(product_flops(net, rows) for net in nets) / flops_per_s


@contextlib.contextmanager
def matmul_precision(allow_tf32: bool):
    """Context in which CUDA matrix products and convolutions use TF32 (``True``) or strict fp32 (``False``); the
    ``precision`` ``"tf32"`` of :ref:`ch-engine`.  The previous setting is restored on exit."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


class AdamStep:
    """One Adam step on ``objective(idx)``, the mini-batch objective F_B of (4.3) for the batch rows ``idx``
    (:ref:`ch-engine`).

    Called, ``step(idx)`` takes one eager step and returns F_B before it (a device tensor, no synchronisation);
    ``run(idx)`` takes one step of training: a replay of the captured CUDA graph once there is one, F_B added to
    the device sum that :meth:`take_loss` reads.  ``params`` are the parameters Adam updates, ``lr`` the first
    learning rate, ``batch_size`` the number of rows of every ``idx`` given to ``run`` (the graph's static input
    shape), ``tf32`` whether the products of ``run`` use TF32, ``cuda_graph`` ``"auto"`` or ``True`` (capture on
    a GPU; with ``True`` a failed capture is an error, with ``"auto"`` the steps stay eager) or ``False``.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], objective: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device, *, lr: float, batch_size: int, tf32: bool = False, cuda_graph="auto"):
        self.params = list(params)
        if not self.params:
            raise ValueError("params must hold at least one parameter for Adam to update")
        if not callable(objective):
            raise ValueError(f"objective must be a function of the batch rows, got {type(objective).__name__}")
        lr = _checks.positive_float(lr, "lr")
        self.batch_size = _checks.positive_int(batch_size, "batch_size")
        tf32 = _checks.flag(tf32, "tf32")
        if cuda_graph not in ("auto", True, False):
            raise ValueError(f"cuda_graph must be 'auto', True or False, got {cuda_graph!r}")
        self.objective, self.device, self.tf32, self.cuda_graph = objective, torch.device(device), tf32, cuda_graph
        self.is_cuda = self.device.type == "cuda"
        self.use_graph = self.is_cuda and cuda_graph in ("auto", True)
        #: Whether Adam is the fused CUDA implementation (always on a GPU).
        self.fused = self.is_cuda
        if self.is_cuda:
            # A tensor lr lives in device memory, so a captured graph sees schedule changes (fill_).
            self.opt = torch.optim.Adam(self.params, lr=torch.tensor(lr, device=self.device), betas=BETAS, eps=EPS,
                                        fused=True, capturable=self.use_graph)
        else:
            self.opt = torch.optim.Adam(self.params, lr=lr, betas=BETAS, eps=EPS)
        self.lr = lr
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        self.loss_count = 0
        self.steps_done = 0
        self.graph = None
        #: How the steps run, as provenance records it ("off", "pending", "on: ..." or why capture failed).
        self.note = "off" if not self.use_graph else "pending"
        self._warmup_left = WARMUP_STEPS
        if self.use_graph:
            self.static_idx = torch.zeros(self.batch_size, dtype=torch.int64, device=self.device)
            self.side_stream = torch.cuda.Stream(device=self.device)
        # On a GPU every later operation of this run (schedule, steps, graph replays, metrics) is queued on a
        # stream of its own, so that runs trained side by side overlap on the device; it starts after all the
        # work queued so far (the data, the model and the rate above, copied on the current stream).
        self.stream = torch.cuda.Stream(device=self.device) if self.is_cuda else None
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))

    # -- where the work is queued ---------------------------------------------------------------------
    def on_stream(self):
        """Context in which this run's device work is queued: its own CUDA stream (a no-op on the CPU)."""
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def training(self):
        """Context for a stretch of :meth:`run` calls: this run's stream and its matmul precision."""
        with self.on_stream(), matmul_precision(self.tf32):
            yield

    def synchronize(self) -> None:
        """Wait until the device has done everything queued so far (a no-op on the CPU; timings)."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    # -- the step ---------------------------------------------------------------------------------------
    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        """One eager Adam step on the batch ``idx``; returns F_B before the step (a device tensor, no sync)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.objective(idx)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def run(self, idx: torch.Tensor) -> None:
        """One step of training on the batch ``idx`` (``batch_size`` rows): a replay of the CUDA graph once it is
        captured, before that a warm-up step on the side stream, on the CPU an eager step.  F_B is added to the
        device sum that :meth:`take_loss` reads.  Call it inside :meth:`training`."""
        if self.graph is not None:
            self.static_idx.copy_(idx)
            self.graph.replay()
            self.loss_sum += self.static_loss
        elif self.use_graph and self._warmup_left > 0:
            self.side_stream.wait_stream(torch.cuda.current_stream(self.device))
            idx.record_stream(self.side_stream)  # its memory is not reused before the side stream has read it
            with torch.cuda.stream(self.side_stream):
                self.loss_sum += self(idx)
            # what follows on this run's stream (the next batch, a metric epoch reading loss_sum and the
            # parameters) must see this step: warm-up can span epochs when an epoch has fewer than 3 steps
            torch.cuda.current_stream(self.device).wait_stream(self.side_stream)
            self._warmup_left -= 1
            if self._warmup_left == 0:
                try:
                    self._capture()
                except Exception as exc:  # any op that refuses capture: keep training eagerly
                    if self.cuda_graph is True:
                        raise
                    torch.cuda.set_stream(self.stream)  # a failed capture can leave the capture stream current
                    torch.cuda.synchronize(self.device)
                    self.graph, self.use_graph = None, False
                    self.note = f"capture failed, eager steps instead: {type(exc).__name__}: {exc}"
                    self.opt.zero_grad(set_to_none=True)
        else:
            self.loss_sum += self(idx)
        self.loss_count += 1
        self.steps_done += 1

    def _capture(self) -> None:
        """Capture the step on ``static_idx`` into a CUDA graph (after the warm-up steps on the side stream).

        The capture runs on this run's own side stream, not on torch.cuda.graph's one class-wide capture stream:
        cuBLAS workspaces are kept per (handle, stream), so graphs of several runs captured on one stream would
        share a workspace and race when runs side by side replay them concurrently (pytorch/pytorch#193402)."""
        torch.cuda.current_stream(self.device).wait_stream(self.side_stream)
        graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph, stream=self.side_stream):
            loss = self.objective(self.static_idx)
            loss.backward()
            self.opt.step()
        self.static_loss = loss.detach()
        self.graph = graph
        self.note = "on: one graph per step (gather, forward, backward, fused Adam)"

    # -- learning rate and loss -------------------------------------------------------------------------
    def set_lr(self, lr: float) -> None:
        """Set Adam's learning rate (the step schedule of :ref:`ch-engine`); on a GPU the rate is a device tensor
        filled in place, ordered after the steps already queued, so a captured CUDA graph reads the new value."""
        lr = _checks.positive_float(lr, "lr")
        if lr == self.lr:
            return
        with self.on_stream():  # ordered after the steps already queued with the old rate
            for g in self.opt.param_groups:
                if torch.is_tensor(g["lr"]):
                    g["lr"].fill_(lr)
                else:
                    g["lr"] = lr
        self.lr = lr

    def take_loss(self) -> float:
        """Mean F_B of the :meth:`run` steps since the last call (one host synchronisation); NaN if none."""
        if self.loss_count == 0:
            return float("nan")
        with self.on_stream():
            value = float(self.loss_sum.item()) / self.loss_count
            self.loss_sum.zero_()
        self.loss_count = 0
        return value

    # -- checkpoints ------------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        """Whether this object has taken a step or captured a graph (a checkpoint can no longer be loaded)."""
        return self.steps_done > 0 or self.graph is not None

    def state_dict(self) -> dict:
        """Adam's state (``opt``) and the steps taken (``steps_done``); taken when no loss is pending (after
        :meth:`take_loss`), once the device is idle."""
        if self.loss_count:
            raise RuntimeError("state_dict is taken after take_loss; steps are pending")
        self.synchronize()
        return {"opt": self.opt.state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict, lr: float) -> None:
        """Continue from :meth:`state_dict` (``opt``, ``steps_done``) at learning rate ``lr``, before any step,
        so that a CUDA graph is captured after it.  On a GPU this run's stream then waits for every copy queued
        so far on the current stream (the loaded parameters too, when they were loaded before this call)."""
        if self.started:
            raise RuntimeError("load_state_dict must come before the run's first step")
        lr = _checks.positive_float(lr, "lr")
        self.opt.load_state_dict(state["opt"])
        for g in self.opt.param_groups:  # a fresh rate, as __init__ makes it (a device tensor on a GPU)
            g["lr"] = torch.tensor(lr, device=self.device) if self.is_cuda else lr
        self.lr = lr
        self.steps_done = int(state["steps_done"])
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
