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

Three opt-in levers (:ref:`ch-engine`, off by default until a GPU has measured them): ``steps_per_graph=k``
captures k consecutive steps in one CUDA graph, the k batches' rows read from one device buffer (a shorter
graph for the epoch's remainder); :class:`GroupedAdamStep` takes one step of several runs with the same schedule
and step count (a figure's runs side by side) with one Adam over all their parameters, on a GPU one fused
multi-tensor launch instead of one per run; ``adam_in_backward=True`` steps each parameter's own Adam from a hook
as soon as the backward pass has completed its gradient.  Adam's arithmetic is elementwise per parameter, so all
three change where and when the work is launched, not what it computes.

How far a measured step is from what the device allows is :mod:`nclib.floor`'s concern.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Callable, Iterable

import torch

from . import _checks
# Adam's betas and eps (PyTorch's defaults, the paper's optimizer) and the one check of steps_per_graph
from .parameters import ADAM_BETAS, ADAM_EPS, check_steps_per_graph

#: Eager steps before a CUDA graph is captured (cuBLAS handles and Adam's state exist by then).
WARMUP_STEPS = 3

#: The dtypes of batch row indices: torch's integer index types (a bool or uint8 tensor would index as a mask).
INDEX_DTYPES = (torch.int64, torch.int32)


#: The float32 precision settings of torch's backends that :func:`matmul_precision` sets: CUDA products, cuDNN
#: convolutions, and the CPU's oneDNN products and convolutions (``torch.backends.<name>.fp32_precision``).
_FP32_BACKENDS = (("cuda", "matmul"), ("cudnn", "conv"), ("mkldnn", "matmul"), ("mkldnn", "conv"))


def _fp32_settings():
    """The settings objects of :data:`_FP32_BACKENDS`, or None for a torch without ``fp32_precision`` (before 2.9)."""
    found = [getattr(getattr(torch.backends, b), op, None) for b, op in _FP32_BACKENDS]
    return found if all(hasattr(f, "fp32_precision") for f in found) else None


@contextlib.contextmanager
def matmul_precision(allow_tf32: bool):
    """Context in which CUDA matrix products and convolutions use TF32 (``True``) or strict fp32 (``False``); the
    ``precision`` ``"tf32"`` of :ref:`ch-engine`.  On torch >= 2.9 the CPU's products and convolutions are strict
    fp32 either way, also where a global setting (``torch.set_float32_matmul_precision("medium")``) would let
    oneDNN use bf16; before 2.9 only the CUDA flags are set and the CPU keeps torch's setting.  The previous
    settings are restored on exit."""
    allow_tf32 = _checks.flag(allow_tf32, "allow_tf32")
    settings = _fp32_settings()
    if settings is None:  # torch < 2.9: only the CUDA flags exist
        old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        try:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow_tf32
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
        return
    old = [s.fp32_precision for s in settings]
    cuda = "tf32" if allow_tf32 else "ieee"
    try:
        for s, value in zip(settings, (cuda, cuda, "ieee", "ieee")):
            s.fp32_precision = value
        yield
    finally:
        for s, value in zip(settings, old):
            s.fp32_precision = value


def products_precision(device, allow_tf32: bool) -> str:
    """The float32 precision that training products on ``device`` (``"cpu"`` or ``"cuda"``) run under inside
    :func:`matmul_precision` (``allow_tf32``), as torch reads it back there: ``"ieee"`` (strict fp32) or ``"tf32"``;
    on torch < 2.9, whose CPU setting that context does not pin, ``"unpinned"`` for the CPU.  What a run's
    provenance records (outside bf16 autocast)."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a cpu or cuda device, got {device!r}") from exc
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device must be a cpu or cuda device, got {device!r}")
    with matmul_precision(allow_tf32):
        if _fp32_settings() is None:
            if kind == "cpu":
                return "unpinned"
            return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
        return (torch.backends.cuda.matmul if kind == "cuda" else torch.backends.mkldnn.matmul).fp32_precision


def _adam(params: list, lr, device: torch.device, use_graph: bool) -> torch.optim.Adam:
    """Adam over ``params`` as every way of stepping makes it (the training of Section 5: torch's betas and eps,
    :data:`nclib.parameters.ADAM_BETAS` and ``ADAM_EPS``), so that a setting of Adam is changed in one place.  On a
    GPU (``device`` a CUDA device) it is fused, capturable where the steps are captured in a CUDA graph
    (``use_graph``), and its rate a tensor in device memory, so that a captured graph sees the schedule's changes
    (``fill_``): ``lr`` a float is copied there, a tensor (another Adam's rate, shared) taken as it is.  On the
    CPU it is torch's default implementation with the float ``lr``."""
    if device.type != "cuda":
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    if not isinstance(lr, torch.Tensor):
        lr = torch.tensor(lr, device=device)
    return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, fused=True, capturable=use_graph)


class AdamStep:
    """One Adam step on ``objective(idx)``, the mini-batch objective F_B of (4.3) for the batch rows ``idx``
    (:ref:`ch-engine`).

    Called, ``step(idx)`` takes one eager step (counted in ``steps_done``) and returns F_B before it (a device
    tensor, no synchronisation);
    ``run(idx)`` takes one step of training: a replay of the captured CUDA graph once there is one, F_B added to
    the device sum that :meth:`take_loss` reads.  ``params`` are the parameters Adam updates, ``lr`` the first
    learning rate, ``batch_size`` the number of rows of every ``idx`` given to ``run`` (the graph's static input
    shape), ``tf32`` whether the products of ``run`` use TF32, ``cuda_graph`` ``"auto"`` or ``True`` (capture on
    a GPU; with ``True`` a failed capture is an error, with ``"auto"`` the steps stay eager) or ``False``,
    ``steps_per_graph`` the steps one graph replay takes (:meth:`run_steps`; above 1 only where a graph is
    captured, a GPU with ``cuda_graph`` on: a ValueError names it otherwise), ``capture_error_mode`` the CUDA
    stream-capture mode of the captures (:data:`CAPTURE_MODES`): ``"global"``, PyTorch's default, unless another
    thread may make CUDA calls while a graph is captured (the worker thread of ``deferred_metrics`` waits on events
    and frees pinned memory), which under ``"global"`` would invalidate the capture; ``"thread_local"`` then.
    """

    _grouped = False  # run_steps takes one run's (steps, batch_size) batches

    def __init__(self, params: Iterable[torch.nn.Parameter], objective: Callable[[torch.Tensor], torch.Tensor],
                 device: torch.device, *, lr: float, batch_size: int, tf32: bool = False, cuda_graph="auto",
                 steps_per_graph: int = 1, adam_in_backward: bool = False, capture_error_mode: str = "global"):
        device = _check_device(device)
        if isinstance(params, torch.Tensor) or not hasattr(params, "__iter__"):  # a tensor iterates over its rows
            raise ValueError(f"params must be a list of the parameters Adam updates, got {type(params).__name__}")
        self.params = list(params)
        if not self.params:
            raise ValueError("params must hold at least one parameter for Adam to update")
        for q in self.params:
            if not isinstance(q, torch.Tensor) or not q.is_leaf:
                what = "a tensor computed from others" if isinstance(q, torch.Tensor) else type(q).__name__
                raise ValueError(f"params must hold the parameters Adam updates (leaf tensors), got {what}")
        if not callable(objective):
            raise ValueError(f"objective must be a function of the batch rows, got {type(objective).__name__}")
        lr = _checks.positive_float(lr, "lr")
        self.batch_size = _checks.positive_int(batch_size, "batch_size")
        tf32 = _checks.flag(tf32, "tf32")
        cuda_graph = _checks.auto_flag(cuda_graph, "cuda_graph")
        self.objective, self.device, self.tf32, self.cuda_graph = objective, device, tf32, cuda_graph
        self.capture_error_mode = _check_capture_mode(capture_error_mode)
        self.is_cuda = self.device.type == "cuda"
        self.use_graph = self.is_cuda and cuda_graph in ("auto", True)
        self.steps_per_graph = check_steps_per_graph(steps_per_graph, self.use_graph,
                                                     f"device {str(self.device)!r}, cuda_graph {cuda_graph!r}")
        #: Whether Adam is the fused CUDA implementation (always on a GPU).
        self.fused = self.is_cuda
        self.opt = _adam(self.params, lr, self.device, self.use_graph)
        self.lr = lr
        #: Adam applied inside the backward pass: {parameter: its own Adam}, stepped by a hook as soon as the
        #: parameter's gradient is complete (None: one Adam step after the backward pass).
        self.in_backward = None
        if _checks.flag(adam_in_backward, "adam_in_backward"):
            self._adam_in_backward()
        self.loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        self.loss_count = 0
        self.steps_done = 0
        self._members, self._objectives = [self], [objective]  # whose objectives a step takes and whose sums it adds to
        self._grouped_state = None  # a GroupedAdamStep's Adam state, once one steps this run
        self._graph_state()
        # On a GPU every later operation of this run (schedule, steps, graph replays, metrics) is queued on a
        # stream of its own, so that runs trained side by side overlap on the device; it starts after all the
        # work queued so far (the data, the model and the rate above, copied on the current stream).
        self.stream = torch.cuda.Stream(device=self.device) if self.is_cuda else None
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))

    def _adam_in_backward(self) -> None:
        """One Adam per parameter, sharing the learning rate of ``self.opt`` (on a GPU the same device tensor) and
        keeping its state where ``self.opt`` finds it for a checkpoint; a post-accumulate-grad hook steps it and
        frees the gradient as soon as the backward pass has accumulated it (the lever ``adam_in_backward``)."""
        group = self.opt.param_groups[0]
        self.in_backward, self._in_step = {}, False
        for p in self.params:
            opt = _adam([p], group["lr"], self.device, self.use_graph)
            opt.state = self.opt.state  # one state dict (keyed by parameter) for all: state_dict reads it
            opt.param_groups[0]["lr"] = group["lr"]  # the same object: set_lr fills it once for all
            self.in_backward[p] = opt
            p.register_post_accumulate_grad_hook(self._step_in_backward)  # kept by p; its handle would only remove it

    def _step_in_backward(self, p: torch.nn.Parameter) -> None:
        """The hook: Adam on ``p`` during a step's backward pass (any other backward pass of the model only
        accumulates gradients, as without the lever)."""
        if self._in_step:
            self.in_backward[p].step()
            p.grad = None

    def _graph_state(self) -> None:
        """No graph yet: the warm-up count, the graphs by number of steps, the capture's side stream."""
        self.graph = None  # the graph of steps_per_graph steps once captured
        self.graphs: dict = {}  # number of steps -> (graph, static rows: (members, steps, batch_size) int64)
        #: How the steps run, as provenance records it ("off", "pending", "on: ..." or why capture failed).
        self.note = "off" if not self.use_graph else "pending"
        self._warmup_left = WARMUP_STEPS
        if self.use_graph:
            self.side_stream = torch.cuda.Stream(device=self.device)

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
        """One eager Adam step of training on the batch ``idx`` (``batch_size`` row indices, as :meth:`run`), with
        this run's stream and precision (:meth:`training`); returns F_B before the step (a device tensor, no
        synchronisation; on a GPU the caller's stream is ordered after it).  The step is one of the run's steps
        (``steps_done``; a checkpoint can no longer be loaded after it); its F_B is returned to the caller, not added
        to the sum that :meth:`take_loss` reads."""
        self._refuse_if_grouped()
        self._check_idx(idx)
        if self.stream is not None:  # idx may have been made on the caller's stream
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with self.training():
            loss = self._eager([idx])[0]
        if self.stream is not None:  # the caller reads F_B and the parameters on its own stream
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        self.steps_done += 1
        return loss

    def _check_idx(self, idx) -> None:
        """Refuse, naming ``idx``, anything but a tensor of ``batch_size`` row indices (one step's batch)."""
        if not isinstance(idx, torch.Tensor) or idx.dim() != 1 or len(idx) != self.batch_size:
            raise ValueError(f"idx must be a tensor of batch_size = {self.batch_size} indices, got "
                             f"{f'the shape {tuple(idx.shape)}' if isinstance(idx, torch.Tensor) else type(idx).__name__}")
        _check_index_dtype(idx, "idx")

    def _refuse_if_grouped(self) -> None:
        """A run that a :class:`GroupedAdamStep` steps holds its Adam state there: a step of its own Adam would
        start from a stale state (and leave the group's behind)."""
        if self._grouped_state is not None:
            raise RuntimeError("this run is stepped with others by one GroupedAdamStep: step the group "
                               "(run_steps with one slice of batches per run), not the run alone")

    def _eager(self, rows) -> list:
        """One eager step: each member's objective on its rows, backward, then one Adam step; the F_B values."""
        self.opt.zero_grad(set_to_none=True)
        losses = []
        self._in_step = self.in_backward is not None
        try:
            for objective, idx in zip(self._objectives, rows):
                loss = objective(idx)
                loss.backward()  # with adam_in_backward each parameter's Adam step is taken here, by its hook
                losses.append(loss.detach())
        finally:
            self._in_step = False
        if self.in_backward is None:
            self.opt.step()
        return losses

    def run(self, idx: torch.Tensor) -> None:
        """One step of training on the batch ``idx`` (``batch_size`` rows): a replay of the CUDA graph once it is
        captured, before that a warm-up step on the side stream, on the CPU an eager step.  F_B is added to the
        device sum that :meth:`take_loss` reads.  Call it inside :meth:`training`."""
        self._check_idx(idx)
        self.run_steps(idx[None])

    def run_steps(self, batches: torch.Tensor) -> None:
        """``len(batches)`` steps of training, one per row of the (steps, batch_size) index tensor ``batches``
        (for a :class:`GroupedAdamStep` a (runs, steps, batch_size) tensor, one slice per run): chunks of
        ``steps_per_graph`` steps, each one replay of a graph of that many steps once the graphs are captured
        (a chunk shorter than that, an epoch's remainder, replays a graph of its own length, captured when first
        needed); before that warm-up steps on the side stream; on the CPU eager steps.  Call it inside
        :meth:`training`."""
        self._refuse_if_grouped()
        if not isinstance(batches, torch.Tensor):
            raise ValueError(f"batches must be an index tensor, got {type(batches).__name__}")
        given = tuple(batches.shape)
        batches = batches if self._grouped else batches[None]
        if batches.dim() != 3 or batches.shape[0] != len(self._members) or batches.shape[2] != self.batch_size:
            shape = f"({len(self._members)} runs, steps, batch_size)" if self._grouped else "(steps, batch_size)"
            raise ValueError(f"batches must be a {shape} index tensor with batch_size = {self.batch_size}, got the "
                             f"shape {given}")
        _check_index_dtype(batches, "batches")  # once per call, on the host: no work inside a captured graph
        steps, done = batches.shape[1], 0
        while done < steps:
            if self.use_graph and self._warmup_left == 0:
                m = min(self.steps_per_graph, steps - done)
                if m not in self.graphs and not self._try_capture(m):
                    continue  # capture failed with cuda_graph "auto": the steps go on eagerly
                graph, static = self.graphs[m]
                static.copy_(batches[:, done:done + m])
                graph.replay()
            elif self.use_graph:
                self._warmup([b for b in batches[:, done]])
                m = 1
            else:
                for member, loss in zip(self._members, self._eager([b for b in batches[:, done]])):
                    member.loss_sum += loss
                m = 1
            for member in self._members:
                member.loss_count += m
                member.steps_done += m
            done += m

    def _warmup(self, rows) -> None:
        """A warm-up step on the side stream (cuBLAS handles and Adam's state exist after it)."""
        self.side_stream.wait_stream(torch.cuda.current_stream(self.device))
        for idx in rows:
            idx.record_stream(self.side_stream)  # its memory is not reused before the side stream has read it
        with torch.cuda.stream(self.side_stream):
            for member, loss in zip(self._members, self._eager(rows)):
                member.loss_sum += loss
        # what follows on this run's stream (the next batch, a metric epoch reading loss_sum and the
        # parameters) must see this step: warm-up can span epochs when an epoch has fewer than 3 steps
        torch.cuda.current_stream(self.device).wait_stream(self.side_stream)
        self._warmup_left -= 1

    def _try_capture(self, steps: int) -> bool:
        """Capture the graph of ``steps`` steps; on failure with ``cuda_graph="auto"`` go on eagerly (False)."""
        try:
            self._capture(steps)
            return True
        except Exception as exc:  # any op that refuses capture: keep training eagerly
            if self.cuda_graph is True:
                raise
            torch.cuda.set_stream(self.stream)  # a failed capture can leave the capture stream current
            torch.cuda.synchronize(self.device)
            self.graph, self.graphs, self.use_graph = None, {}, False
            self.note = f"capture failed, eager steps instead: {type(exc).__name__}: {exc}"
            self.opt.zero_grad(set_to_none=True)
            return False

    def _captured_step(self, rows) -> None:
        """The body of a captured step: as :meth:`_eager`, each F_B added to its member's sum on the device."""
        for member, loss in zip(self._members, self._eager(rows)):
            member.loss_sum += loss

    def _capture(self, steps: int) -> None:
        """Capture ``steps`` consecutive steps, their batch rows read from one static device buffer, into a CUDA
        graph (after the warm-up steps on the side stream).

        The capture runs on this run's own side stream, not on torch.cuda.graph's one class-wide capture stream:
        cuBLAS workspaces are kept per (handle, stream), so graphs of several runs captured on one stream would
        share a workspace and race when runs side by side replay them concurrently (pytorch/pytorch#193402)."""
        torch.cuda.current_stream(self.device).wait_stream(self.side_stream)
        graph = torch.cuda.CUDAGraph()
        static = torch.zeros((len(self._members), steps, self.batch_size), dtype=torch.int64, device=self.device)
        with torch.cuda.graph(graph, stream=self.side_stream, capture_error_mode=self.capture_error_mode):
            for j in range(steps):
                self._captured_step([static[r, j] for r in range(len(self._members))])
        self.graphs[steps] = (graph, static)
        if steps == self.steps_per_graph:
            self.graph = graph
        self.note = ("on: one graph per step (gather, forward, backward, fused Adam)" if self.steps_per_graph == 1
                     else f"on: one graph per {self.steps_per_graph} steps (gather, forward, backward, fused Adam)")
        if len(self._members) > 1:
            self.note += f", one Adam for {len(self._members)} runs"

    # -- learning rate and loss -------------------------------------------------------------------------
    def set_lr(self, lr: float) -> None:
        """Set Adam's learning rate (the step schedule of :ref:`ch-engine`); on a GPU the rate is a device tensor
        filled in place, ordered after the steps already queued, so a captured CUDA graph reads the new value."""
        lr = _checks.positive_float(lr, "lr")
        if lr == self.lr:
            return
        groups = list(self.opt.param_groups)
        if self.in_backward is not None and not self.is_cuda:  # float rates: each Adam's own (a GPU's is shared)
            groups += [opt.param_groups[0] for opt in self.in_backward.values()]
        with self.on_stream():  # ordered after the steps already queued with the old rate
            for g in groups:
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
        :meth:`take_loss`), once the device is idle.  Its tensors are copies (on their device), not Adam's live
        state: steps taken after it leave it as it was."""
        if self.loss_count:
            raise RuntimeError("state_dict is taken after take_loss; steps are pending")
        self.synchronize()
        shared = self._grouped_state
        if shared is not None:  # stepped by a GroupedAdamStep: its state of this run's parameters (same tensors)
            for p in self.params:
                if p in shared:
                    self.opt.state[p] = shared[p]
        return {"opt": copy.deepcopy(self.opt.state_dict()), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict, lr: float) -> None:
        """Continue from :meth:`state_dict` (``opt``, ``steps_done``) at learning rate ``lr``, before any step,
        so that a CUDA graph is captured after it.  On a GPU this run's stream then waits for every copy queued
        so far on the current stream (the loaded parameters too, when they were loaded before this call)."""
        lr, steps_done = self.check_state(state, lr)  # everything refused before anything is loaded
        # How this call steps is its own: Optimizer.load_state_dict would also bring back the checkpoint's group
        # settings, e.g. capturable=False from a run stepped by a GroupedAdamStep, which no graph can capture.
        own = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in self.opt.param_groups]
        self.opt.load_state_dict(state["opt"])
        for g, settings in zip(self.opt.param_groups, own):
            g.update(settings)
            g["lr"] = torch.tensor(lr, device=self.device) if self.is_cuda else lr  # a fresh rate, as __init__'s
            if g.get("capturable") or g.get("fused"):  # their step counts live beside the parameters, in float32
                for q in g["params"]:
                    st = self.opt.state.get(q)
                    if st and torch.is_tensor(st.get("step")):
                        st["step"] = st["step"].to(device=q.device, dtype=torch.float32)
        if self.in_backward is not None:  # load_state_dict replaced the state: share the new one and the rate
            for opt in self.in_backward.values():
                opt.state = self.opt.state
                opt.param_groups[0]["lr"] = self.opt.param_groups[0]["lr"]
        self.lr = lr
        self.steps_done = steps_done
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(self.device))

    def check_state(self, state, lr) -> tuple[float, int]:
        """``(lr, steps_done)`` of a :meth:`load_state_dict` call, checked without loading anything: a RuntimeError
        once a step was taken or the run grouped, a ValueError naming ``lr`` or ``state`` (its keys, Adam's
        parameter groups and the shapes of its moments against this run's parameters, the steps taken).  Asked by
        :meth:`load_state_dict` and, before it loads the model's tensors, by
        :meth:`nclib.engine.Engine.load_state_dict`, so that a checkpoint a run cannot take is refused before any
        part of it is loaded."""
        if self.started or self._grouped_state is not None:
            raise RuntimeError("load_state_dict must come before the run's first step (and before grouping)")
        lr = _checks.positive_float(lr, "lr")
        if not isinstance(state, dict) or not {"opt", "steps_done"} <= set(state):
            raise ValueError(f"state must be a dict with the keys of state_dict ('opt', 'steps_done'), got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        steps_done = _checks.nonneg_int(state["steps_done"], "state['steps_done']")
        opt = state["opt"]
        groups = opt.get("param_groups") if isinstance(opt, dict) else None
        if (not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups)
                or not isinstance(opt.get("state"), dict)
                or [len(g.get("params", ())) for g in groups] != [len(g["params"]) for g in self.opt.param_groups]):
            raise ValueError(f"state['opt'] must be Adam's state of this run's {len(self.params)} parameters, as "
                             f"state_dict gives it")
        shapes = {i: tuple(q.shape) for g, own in zip(groups, self.opt.param_groups)
                  for i, q in zip(g["params"], own["params"])}
        for i, st in opt["state"].items():
            if i not in shapes or not isinstance(st, dict):
                raise ValueError(f"state['opt'] holds an Adam state {i!r} of no parameter of this run")
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st and (not torch.is_tensor(st[key]) or tuple(st[key].shape) != shapes[i]):
                    raise ValueError(f"state['opt']: parameter {i} has the shape {shapes[i]}, its {key} "
                                     f"{tuple(st[key].shape) if torch.is_tensor(st[key]) else st[key]!r}")
        return lr, steps_done


#: The CUDA stream-capture modes ``torch.cuda.graph`` takes (``capture_error_mode`` of :class:`AdamStep`).
CAPTURE_MODES = ("global", "thread_local", "relaxed")


def _check_device(device) -> torch.device:
    """``device`` of :class:`AdamStep` as a ``torch.device``: the CPU or a CUDA device that torch sees; a ValueError
    names ``device`` otherwise (torch's own RuntimeError for an unknown name, and a CUDA device on a machine
    without one, would fail later, on the first tensor put there)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:i' or a torch.device, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be the CPU or a CUDA device, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    return dev


def _check_capture_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in CAPTURE_MODES:
        raise ValueError(f"capture_error_mode must be one of {CAPTURE_MODES}, got {mode!r}")
    return mode


def _check_index_dtype(idx: torch.Tensor, name: str) -> None:
    """Refuse, naming ``name``, row indices of a dtype outside :data:`INDEX_DTYPES`: a bool mask of batch_size
    entries would select other rows (a wrong F_B, silently), float indices fail deep inside torch."""
    if idx.dtype not in INDEX_DTYPES:
        raise ValueError(f"{name} must hold integer row indices (torch.int64 or torch.int32), got dtype {idx.dtype}")


class GroupedAdamStep(AdamStep):
    """One step of several runs at once (:ref:`ch-engine`): each run's F_B and its backward pass, then ONE Adam
    step over every run's parameters (on a GPU one fused multi-tensor launch, captured with the runs' forward
    and backward passes in one CUDA graph, each run's passes on a stream of its own inside it).

    ``steps`` are the runs' own :class:`AdamStep` objects, made with the same learning rate, batch size,
    precision and step count (a figure's runs side by side, whose schedules are one); their Adam state (after a
    checkpoint was loaded into them, if one was) becomes this step's, and stays readable through theirs
    (:meth:`AdamStep.state_dict`), so each run keeps its own checkpoint, loss sum, step count and rate.  Adam's
    update is elementwise per parameter, so each parameter gets the arithmetic of its own run's Adam.
    ``run_steps`` takes a (runs, steps, batch_size) tensor; ``set_lr`` sets every run's rate.  A run appears once
    and in one group only (a ValueError names ``steps`` otherwise), and from then on it is stepped only by the
    group: its own ``run_steps``, ``run`` and call raise."""

    _grouped = True

    def __init__(self, steps, *, cuda_graph="auto", steps_per_graph: int = 1, capture_error_mode: str = "global"):
        steps = list(steps)
        if not steps or not all(isinstance(s, AdamStep) and not isinstance(s, GroupedAdamStep) for s in steps):
            raise ValueError("steps must be a non-empty list of the runs' AdamStep objects")
        if len({id(s) for s in steps}) != len(steps):  # one run twice would take each of its steps twice
            raise ValueError("steps must be distinct runs' AdamStep objects; a run is given more than once")
        if any(s._grouped_state is not None for s in steps):  # its state would be two Adams' at once
            raise ValueError("steps must not be grouped already: each run is stepped by one GroupedAdamStep")
        first = steps[0]
        for key in ("device", "lr", "batch_size", "tf32", "steps_done"):
            values = [getattr(s, key) for s in steps]
            if any(v != values[0] for v in values[1:]):
                raise ValueError(f"steps differ in {key} ({values}); one Adam step serves runs with one schedule")
        if any(s.loss_count for s in steps):
            raise ValueError("steps hold pending losses; group them before training (or after take_loss)")
        if any(s.in_backward is not None for s in steps):
            raise ValueError("steps take Adam inside their backward pass (adam_in_backward); one Adam step after the "
                             "backward passes of all the runs cannot take them too")
        cuda_graph = _checks.auto_flag(cuda_graph, "cuda_graph")
        self.device, self.is_cuda, self.tf32, self.cuda_graph = first.device, first.is_cuda, first.tf32, cuda_graph
        self.capture_error_mode = _check_capture_mode(capture_error_mode)
        self.batch_size, self.lr = first.batch_size, first.lr
        self.use_graph = self.is_cuda and cuda_graph in ("auto", True)
        self.steps_per_graph = check_steps_per_graph(steps_per_graph, self.use_graph,
                                                     f"device {str(self.device)!r}, cuda_graph {cuda_graph!r}")
        self.params = [p for s in steps for p in s.params]
        self.fused = self.is_cuda
        self.opt = _adam(self.params, self.lr, self.device, self.use_graph)
        for s in steps:  # one state; each run's optimizer reads its parameters' part for its checkpoint
            for p in s.params:
                if p in s.opt.state:
                    self.opt.state[p] = s.opt.state[p]
            s._grouped_state = self.opt.state
        self.members = steps
        self._grouped_state = None  # a group is never a member of another (refused above)
        self.in_backward = None  # one Adam step after the runs' backward passes
        self._members, self._objectives = steps, [s.objective for s in steps]
        self.loss_count = self.steps_done = 0
        self._graph_state()
        self.stream = torch.cuda.Stream(device=self.device) if self.is_cuda else None
        if self.is_cuda:
            self._forks = [torch.cuda.Stream(device=self.device) for _ in steps]

    @contextlib.contextmanager
    def training(self):
        """Context for a stretch of :meth:`run_steps` calls: on a GPU the group's stream, after the work queued
        on every run's stream (a rate set, a loss read), and every run's stream after the steps; matmul
        precision as the runs'."""
        if self.stream is not None:
            for s in self.members:
                self.stream.wait_stream(s.stream)
        with self.on_stream(), matmul_precision(self.tf32):
            yield
        if self.stream is not None:
            for s in self.members:
                s.stream.wait_stream(self.stream)

    def _captured_step(self, rows) -> None:
        """Inside the capture: each run's forward and backward pass on a stream of its own (forked from the
        capture stream and joined back), then the one Adam step."""
        here = torch.cuda.current_stream(self.device)
        self.opt.zero_grad(set_to_none=True)
        for member, objective, idx, fork in zip(self.members, self._objectives, rows, self._forks):
            fork.wait_stream(here)
            with torch.cuda.stream(fork):
                loss = objective(idx)
                loss.backward()
                member.loss_sum += loss.detach()
        for fork in self._forks:
            here.wait_stream(fork)
        self.opt.step()

    def set_lr(self, lr: float) -> None:
        """Set every run's learning rate (the schedule), :meth:`AdamStep.set_lr`."""
        lr = _checks.positive_float(lr, "lr")
        for s in self.members:
            s.set_lr(lr)
        super().set_lr(lr)  # the rate of the one Adam that steps them

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a GroupedAdamStep steps every run on a batch of its own: call run_steps with a "
                           "(runs, steps, batch_size) index tensor")

    def take_loss(self) -> float:
        raise RuntimeError("each run reads its own loss: call take_loss on the runs' AdamStep objects")

    def state_dict(self) -> dict:
        raise RuntimeError("each run's checkpoint is its own: call state_dict on the runs' AdamStep objects")

    def load_state_dict(self, state: dict, lr: float) -> None:
        raise RuntimeError("load each run's checkpoint into its AdamStep before grouping them")
