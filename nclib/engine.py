"""One run's training state (chapter :ref:`ch-engine`): the data on the device, the model and its mini-batch
objective F_B of (4.3), one optimizer step (:mod:`nclib.step`), and the metrics of a history row; and the
lockstep in which a figure's runs train side by side.

A mini-batch B (|B| = B, drawn without replacement from a fresh permutation each epoch) uses::

    F_B = 1/(2B) sum_{i in B} ||P h_i + b - y_i||^2 + lam_H N/(2B) sum_{i in B} ||h_i||^2 + sum_j lam_Wj/2 ||W_j||^2
          (+ lam_backbone/2 sum ||V||^2 over the backbone's Linear weights V, 0 by default)

whose expectation over the batch is F of (4.3) exactly (with that term, (4.3) plus it).  The ``objective`` of a
history row is F on all N samples, the ``lam_backbone`` term included.  :mod:`nclib.train` builds engines from validated
parameters and trains them, :mod:`nclib.runfolder` writes their run folders.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from . import _checks, data, models, parameters
from .runs import METRIC_COLUMNS, NC_COLUMNS
from .step import AdamStep, GroupedAdamStep, matmul_precision


def lr_at(epoch: int, lr: float, milestones, gamma: float) -> float:
    """The step schedule: epoch e (1-based) uses lr * gamma^#{m in milestones : e > m}.

    With milestone 6000 this is the reference code's StepLR(step_size=6000): epochs 1..6000 at lr,
    6001.. at lr * gamma (the schedule of the Section 5 runs, :ref:`ch-engine`).  ``milestones`` is checked as a
    run's ``lr_milestones`` are (:func:`nclib.parameters.check_milestones`): an epoch given twice, a mapping or
    text is refused by name, not counted twice or read as its keys or characters.
    """
    epoch = _checks.positive_int(epoch, "epoch")
    lr = _checks.positive_float(lr, "lr")
    gamma = _checks.positive_float(gamma, "gamma")
    milestones = parameters.check_milestones(milestones, "milestones")
    return lr * gamma ** sum(1 for m in milestones if epoch > m)


def capture_mode(p: dict) -> str:
    """The stream-capture mode of a run's CUDA graphs (``capture_error_mode`` of :class:`nclib.step.AdamStep`):
    ``"thread_local"`` with ``deferred_metrics``, whose worker thread makes CUDA calls (it waits on the copies'
    event, frees their pinned memory) while another run's graph may be captured; PyTorch's ``"global"``
    otherwise (:ref:`ch-engine`).  ``p`` is a run's parameters (:func:`nclib.parameters.check_params`); a
    ValueError names it, or its ``deferred_metrics``, when that is missing or not True or False."""
    if not isinstance(p, dict) or "deferred_metrics" not in p:
        raise ValueError(f"p must be a run's parameters (check_params), which hold deferred_metrics, got "
                         f"{p!r:.100}")
    return "thread_local" if _checks.flag(p["deferred_metrics"], "p['deferred_metrics']") else "global"


# --------------------------------------------------------------------------------------------- the engine

class Engine:
    """One run's training state (:ref:`ch-engine`), top to bottom: the data on the device and the batches, the
    model and its mini-batch objective F_B, one :class:`nclib.step.AdamStep` (Adam, and on a GPU the run's
    stream and CUDA graph), and the metrics of a history row.

    ``train_epoch()`` takes one step per batch without host synchronisation; ``evaluate()`` computes the history
    row on the whole training set.
    """

    def __init__(self, ts: data.TrainingSet, p: dict):
        """The run of the checked parameters ``p`` (every parameter of :data:`nclib.parameters.DEFAULTS`, as
        :func:`nclib.parameters.check_params` returns them) on the training set ``ts`` of those parameters
        (:func:`nclib.data.load_for`).  ``p`` is checked again here, by the same checker, so a value that checker
        refuses (a negative decay, a precision it does not know, a batch size of 0) is refused by name, not trained
        as something else; and ``ts`` must hold the class counts that ``p`` gives, or the run would train on
        another N than its parameters say.  ValueError naming ``ts``, ``p`` or the parameter otherwise."""
        if not isinstance(ts, data.TrainingSet):
            raise ValueError(f"ts must be the training set of the run (a nclib.data.TrainingSet, nclib.data.load_for), "
                             f"got {type(ts).__name__}")
        if not isinstance(p, dict):
            raise ValueError(f"p must be a checked parameter set (a dict, nclib.parameters.check_params), got "
                             f"{type(p).__name__}")
        missing = sorted(set(parameters.DEFAULTS) - set(p))
        if missing:
            raise ValueError(f"p must be a checked parameter set (nclib.parameters.check_params), which holds every "
                             f"parameter; missing {missing}")
        p = parameters.checked(p)
        n = data.resolve_counts(p["dataset"], p["counts"], p["class_order"])[0]
        if not np.array_equal(ts.counts, n):
            raise ValueError(f"ts holds the class counts {ts.counts.tolist()} (N = {ts.N}), but p['counts'] gives "
                             f"{n.tolist()} (N = {int(n.sum())}): ts must be the training set of p "
                             f"(nclib.data.load_for(p))")
        self.p, self.ts = p, ts
        dev = p["device"]
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev)
        self.is_cuda = self.device.type == "cuda"
        # the data: the whole training set on the device, batches cut from a permutation drawn there
        self.N, self.K = ts.N, ts.K
        self.B = self.N if p["batch_size"] == "full" else p["batch_size"]  # at most N: checked with p's counts
        self.steps_per_epoch = self.N // self.B
        self.dropped_per_epoch = self.N - self.steps_per_epoch * self.B
        self.X = torch.as_tensor(ts.x, dtype=torch.float32).to(self.device)
        self.y = torch.as_tensor(ts.y, dtype=torch.int64).to(self.device)
        self.Y = torch.nn.functional.one_hot(self.y, self.K).to(torch.float32)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(p["seed"])
        # the model and the decays of (4.3)
        self.model = models.build_model(ts.x.shape[1], self.K, p["L"], width=p["width"], depth=p["depth"],
                                        feature_dim=p["feature_dim"], bias=p["bias"], init=p["init"],
                                        seed=p["seed"]).to(self.device)
        self.lam_W = [float(v) for v in _checks.layer_lambdas(p["lam_W"], p["L"], "lam_W", positive=False)]
        self.lam_H = float(p["lam_H"])
        self.lam_backbone = float(p["lam_backbone"])
        self.bf16 = p["precision"] == "bf16"
        # the step, made last: on a GPU its stream starts after the copies above; with grouped_adam the runs'
        # steps are taken by one GroupedAdamStep (group_engines), which captures the graphs, so this one stays eager
        grouped = p["grouped_adam"]
        self.step = AdamStep(self.model.parameters(), self.batch_objective, self.device,
                             lr=lr_at(1, p["lr"], p["lr_milestones"], p["lr_gamma"]), batch_size=self.B,
                             tf32=p["precision"] == "tf32", cuda_graph=False if grouped else p["cuda_graph"],
                             steps_per_graph=1 if grouped else p["steps_per_graph"],
                             adam_in_backward=p["adam_in_backward"], capture_error_mode=capture_mode(p))
        #: The GroupedAdamStep that steps this run with others (grouped_adam), once group_engines made it.
        self.group: GroupedAdamStep | None = None

    @property
    def device_name(self) -> str:
        """The device as run folders name it (provenance, and what resume checks): the GPU's name, else ``"cpu"``
        for every CPU.  The CPU's model is the provenance's ``host_cpu`` (:func:`nclib.provenance.cpu_name`), which a
        resume of a CPU run compares on its own; a fixed name here, not ``platform.processor()`` (``uname -p``,
        "x86_64" on some systems and "" on others), so that the same CPU under another system is no other device."""
        return torch.cuda.get_device_name(self.device) if self.is_cuda else "cpu"

    # -- the data -------------------------------------------------------------------------------------
    def batches(self) -> torch.Tensor:
        """This epoch's batches: a (steps_per_epoch, B) index tensor from a permutation made on the device."""
        perm = torch.randperm(self.N, device=self.device, generator=self.gen)
        return perm[: self.steps_per_epoch * self.B].view(self.steps_per_epoch, self.B)

    # -- the objective ------------------------------------------------------------------------------
    def batch_objective(self, idx: torch.Tensor) -> torch.Tensor:
        """F_B of the module docstring for the rows ``idx`` (equals (4.3) when idx is all N rows)."""
        x, yb = self.X[idx], self.Y[idx]
        B = idx.shape[0]
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16,
                            cache_enabled=False):
            logits, h = self.model(x)
        logits, h = logits.float(), h.float()
        loss = ((logits - yb) ** 2).sum() / (2 * B)
        loss = loss + (self.lam_H * self.N / (2 * B)) * (h * h).sum()
        for lam, W in zip(self.lam_W, self.model.head_weights()):
            if lam:
                loss = loss + (lam / 2) * (W * W).sum()
        if self.lam_backbone:
            loss = loss + (self.lam_backbone / 2) * sum((W * W).sum() for W in self.model.backbone_weights())
        return loss

    # -- training: the step on every batch ----------------------------------------------------------------
    def train_epoch(self) -> None:
        """One epoch: a step on F_B for each batch of :meth:`batches`, without host synchronisation
        (:ref:`ch-engine`)."""
        if self.group is not None:
            raise RuntimeError("this run is stepped with others by one Adam (grouped_adam): train_epochs_together")
        with self.step.training():
            self.step.run_steps(self.batches())

    def train_steps(self, n: int) -> None:
        """``n`` steps of the same path as training, ending with a device synchronisation (what a timing needs);
        ``n`` a non-negative int (ValueError otherwise)."""
        n = _checks.nonneg_int(n, "n")
        if self.group is not None:
            raise RuntimeError("this run is stepped with others by one Adam (grouped_adam): train_epochs_together")
        with self.step.training():
            done = 0
            while done < n:
                batches = self.batches()[: n - done]
                self.step.run_steps(batches)
                done += len(batches)
        self.step.synchronize()

    # The step's state as the run folder and the schedule read and set it.
    @property
    def steps_done(self) -> int:
        return self.step.steps_done

    @property
    def current_lr(self) -> float:
        return self.step.lr

    @property
    def graph_note(self) -> str:
        return self.step.note if self.group is None else self.group.note

    @property
    def fused(self) -> bool:
        return self.step.fused

    @property
    def allow_tf32(self) -> bool:
        return self.step.tf32

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of the next steps (the schedule :func:`lr_at`), :meth:`nclib.step.AdamStep.set_lr`.
        A grouped run (``grouped_adam``) is stepped at its group's rate: ``group.set_lr`` sets it for all the runs,
        and this raises (it would change only the rate the run reports)."""
        if self.group is not None:
            raise RuntimeError("this run is stepped with others by one Adam (grouped_adam): set the rate of all of "
                               "them with group.set_lr")
        self.step.set_lr(lr)

    def take_loss(self) -> float:
        """Mean batch objective since the last call (one host synchronisation); NaN if no step was taken."""
        return self.step.take_loss()

    def synchronize(self) -> None:
        """Wait until the device has done everything queued so far (a no-op on the CPU; timings)."""
        self.step.synchronize()

    # -- checkpoints ----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What a run needs to continue exactly from its checkpoint (``resume``; written when ``max_train_s`` or a
        job's SIGTERM stops it, and every ``checkpoint_every`` epochs while it trains): the model, Adam's state, the
        batch generator's state and the steps taken.  Taken at a metric epoch, when no loss is pending.  Its
        tensors are copies, not the training tensors, so steps taken after it leave it as it was; the model's and
        Adam's are made on the device (12 bytes a parameter, 0.4-0.6 GB for the paper's width-2048 networks)."""
        step = self.step.state_dict()  # refuses pending steps, waits for the device
        return {"model": copy.deepcopy(self.model.state_dict()), "opt": step["opt"],
                "gen": self.gen.get_state().cpu(), "steps_done": step["steps_done"]}

    def load_state_dict(self, state: dict, lr: float) -> None:
        """Continue from :meth:`state_dict` of a run with the same parameters, at learning rate ``lr`` (the
        schedule's rate of the next epoch).  Called before any step (and before :func:`group_engines`), so a CUDA
        graph is captured after it.  All or nothing: ``lr`` and ``state`` (its keys, the model's tensors by name and
        shape, the generator's state, Adam's state against the model's parameters, the steps taken) are checked
        before anything is loaded, a ValueError naming the one refused."""
        if self.step.started or self.group is not None:
            raise RuntimeError("load_state_dict must come before the run's first step (and before grouping)")
        lr = _checks.positive_float(lr, "lr")
        keys = ("model", "opt", "gen", "steps_done")
        if not isinstance(state, dict) or not set(keys) <= set(state):
            raise ValueError(f"state must be a dict with the keys of state_dict {keys}, got "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        own = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        model = state["model"]
        saved = ({k: tuple(v.shape) if torch.is_tensor(v) else None for k, v in model.items()}
                 if isinstance(model, dict) else None)
        if saved != own:
            wrong = sorted(k for k in set(own) | set(saved or {}) if (saved or {}).get(k) != own.get(k))
            raise ValueError(f"state['model'] must hold this run's model tensors by name and shape; differing: "
                             f"{wrong[:6]}")
        gen, own_gen = state["gen"], self.gen.get_state()
        if not torch.is_tensor(gen) or gen.dtype != own_gen.dtype or gen.shape != own_gen.shape:
            raise ValueError(f"state['gen'] must be the batch generator's state, a {own_gen.dtype} tensor of the "
                             f"shape {tuple(own_gen.shape)}")
        self.step.check_state(state, lr)
        self.model.load_state_dict(state["model"])
        self.gen.set_state(state["gen"].cpu())
        self.step.load_state_dict(state, lr)  # last: on a GPU the run's stream waits for the copies above

    # -- metrics --------------------------------------------------------------------------------------
    @torch.no_grad()
    def features(self) -> torch.Tensor:
        """H^T: the (N, d) float32 features of the whole training set, computed in full fp32."""
        with self.step.on_stream(), matmul_precision(False):
            chunks = [self.model.features(self.X[i:i + 4096]) for i in range(0, self.N, 4096)]
            return torch.cat(chunks).float()

    def _device_half(self):
        """On the device, in the run's stream's order: the features H^T (float32), the logits (fp32 products),
        the objective in float64 as a device scalar, and the head's weights and bias (the tensors themselves).  The
        objective is (4.3) plus lam_backbone/2 times the squared backbone weights (the term the training adds, 0 by
        default): what the steps minimize, on all N samples."""
        Ht = self.features()
        with matmul_precision(False):
            logits = self.model.classify(Ht)
        Hd = Ht.double()
        Ws = [W.detach().double() for W in self.model.head_weights()]
        P = Ws[0]
        for W in Ws[1:]:
            P = W @ P
        R = Hd @ P.T - self.Y.double()
        b = self.model.head_bias()
        if b is not None:
            R = R + b.detach().double()
        obj = (R * R).sum() / (2 * self.N) + self.lam_H / 2 * (Hd * Hd).sum()
        obj = obj + sum(lam / 2 * (W * W).sum() for lam, W in zip(self.lam_W, Ws))
        if self.lam_backbone:
            obj = obj + self.lam_backbone / 2 * sum((W.double() ** 2).sum() for W in self.model.backbone_weights())
        return Ht, logits, obj, [W.detach() for W in self.model.head_weights()], None if b is None else b.detach()

    @staticmethod
    def _payload(Ht, logits, Ws, b) -> dict | None:
        """The arrays the host metrics need, in float64 (from float32 an exact conversion); None when any of
        them holds NaN/inf."""
        Hd, lg, Wd = Ht.double(), logits.double(), [W.double() for W in Ws]
        finite = bool(torch.isfinite(Hd).all().item()) and bool(torch.isfinite(lg).all().item()) and all(
            bool(torch.isfinite(W).all().item()) for W in Wd)
        if not finite:
            return None
        return {"H": Hd.cpu().numpy(), "logits": lg.cpu().numpy(), "Ws": [W.cpu().numpy() for W in Wd],
                "b": None if b is None else b.double().cpu().numpy()}

    @torch.no_grad()
    def evaluate_device(self) -> tuple[dict, dict | None]:
        """The device half of a history row: ``objective`` ((4.3) plus the ``lam_backbone`` term, in float64 on the
        device, :meth:`_device_half`) and the arrays the host metrics need (None when the network holds NaN/inf)."""
        with self.step.on_stream():
            Ht, logits, obj, Ws, b = self._device_half()
            return {"objective": float(obj.item())}, self._payload(Ht, logits, Ws, b)

    @torch.no_grad()
    def queue_evaluation(self):
        """The device half of a history row queued on the run's stream without a host synchronisation (the
        ``deferred_metrics`` lever, :ref:`ch-engine`): the loss sum since the last row taken and reset, the
        features, logits and objective computed as :meth:`evaluate_device` does, and copies of them, of
        the head and of the loss into host memory (pinned on a GPU) ordered after them.  Returns a function of no
        arguments that waits for those copies and gives ``(row, payload)`` as :meth:`take_loss` and
        :meth:`evaluate_device` would have at this point (``row`` with ``loss`` and ``objective``), the same
        numbers; it may run in a worker thread while training goes on (it reads only its own copies)."""
        step = self.step
        count, step.loss_count = step.loss_count, 0
        pin = self.is_cuda

        def to_host(t: torch.Tensor) -> torch.Tensor:  # a copy of its own, queued after what computed t
            out = torch.empty(t.shape, dtype=t.dtype, device="cpu", pin_memory=pin)
            return out.copy_(t, non_blocking=pin)

        with step.on_stream():
            loss = to_host(step.loss_sum)
            step.loss_sum.zero_()
            Ht, logits, obj, Ws, b = self._device_half()
            host = {"loss": loss, "objective": to_host(obj), "H": to_host(Ht), "logits": to_host(logits),
                    "Ws": [to_host(W) for W in Ws], "b": None if b is None else to_host(b)}
            done = torch.cuda.Event(blocking=True) if self.is_cuda else None  # the waiting thread sleeps
            if done is not None:
                done.record()

        def finish() -> tuple[dict, dict | None]:
            if done is not None:
                done.synchronize()
            row = {"loss": float(host["loss"].item()) / count if count else float("nan"),
                   "objective": float(host["objective"].item())}
            return row, self._payload(host["H"], host["logits"], host["Ws"], host["b"])

        return finish

    def host_metrics(self, payload: dict | None) -> dict:
        """The host half: ``nc1``..``nc3`` from ``nclib.metrics.collapse_metrics`` with the run's own
        lambdas (NaN for NC2/NC3 where :func:`nclib.metrics.geometry_defined` says they have no target: a decay of 0,
        or a feature dimension that splits a group of modes), ``bias_error`` (NaN without
        bias) and ``global_mean_norm`` from ``nclib.metrics``, ``train_acc`` and ``class_acc`` (the accuracy of each
        class) from ``nclib.accuracy`` (:func:`nclib.accuracy.accuracy`, :func:`nclib.accuracy.class_accuracy`); all
        NaN when ``payload`` is None.  Pure numpy on copies, so it may run in a worker thread."""
        from . import accuracy, metrics

        if payload is None:
            return {**{k: float("nan") for k in METRIC_COLUMNS}, "class_acc": [float("nan")] * self.K}
        Hn, y = payload["H"], self.ts.y
        row = {"train_acc": accuracy.accuracy(payload["logits"], y), "global_mean_norm": metrics.global_mean_norm(Hn),
               "class_acc": accuracy.class_accuracy(payload["logits"], y, self.K).tolist(),
               "bias_error": float("nan") if payload["b"] is None else metrics.bias_error(payload["b"], y)}
        # the decays' condition of metrics.geometry_defined; a width that splits modes: collapse_metrics' NaN
        if metrics.geometry_defined(self.ts.counts, self.lam_W, self.lam_H, len(self.lam_W), self.p["bias"]):
            lam_W = self.lam_W[0] if len(set(self.lam_W)) == 1 else self.lam_W
            m = metrics.collapse_metrics(Hn, y, payload["Ws"], lam_W, self.lam_H, bias=self.p["bias"])
            row.update({k: float(m[k]) for k in NC_COLUMNS})
        else:
            row.update({k: float("nan") for k in NC_COLUMNS})
            row["nc1"] = metrics.nc1(Hn, y, num_classes=self.K)
        return row

    def evaluate(self) -> dict:
        """One history row (except epoch, lr, loss, wall time) on the whole training set:
        :meth:`evaluate_device` then :meth:`host_metrics`."""
        row, payload = self.evaluate_device()
        return {**row, **self.host_metrics(payload)}


def group_engines(engines: list[Engine]) -> GroupedAdamStep:
    """One :class:`nclib.step.GroupedAdamStep` for the runs of ``engines`` (made with ``grouped_adam=True`` and one
    schedule, batch size and step count): one Adam step over all their parameters per batch, with their
    ``cuda_graph`` and ``steps_per_graph`` (:ref:`ch-engine`'s first lever).  Made after any checkpoint is loaded
    into the engines; from then on :func:`train_epochs_together` trains them."""
    engines = list(engines)
    _check_engine_list(engines)  # one run twice would take each of its steps twice
    if not all(e.p["grouped_adam"] for e in engines):
        raise ValueError("engines must be Engines made with grouped_adam=True")
    if any(e.group is not None for e in engines):
        raise ValueError("engines must not be grouped already")
    p = engines[0].p
    # one Adam step for all: the runs share everything run_many's runs share, and the precision of the products
    differ = parameters.unshared_keys([e.p for e in engines], grouped=True)
    if differ:
        key = differ[0]
        raise ValueError(f"engines differ in {key!r} ({[e.p[key] for e in engines]}); grouped runs share the "
                         f"data, network shape, schedule, device and precision and may differ only in "
                         f"{tuple(k for k in parameters.MEMBER_KEYS if k != 'precision')}")
    group = GroupedAdamStep([e.step for e in engines], cuda_graph=p["cuda_graph"], steps_per_graph=p["steps_per_graph"],
                            capture_error_mode=capture_mode(p))
    for e in engines:
        e.group = group
    return group


def _check_engine_list(engines) -> None:
    """Refuse, naming ``engines``, anything but a non-empty list of distinct :class:`Engine` objects (one run given
    twice would take each epoch twice)."""
    if not isinstance(engines, (list, tuple)) or not engines or not all(isinstance(e, Engine) for e in engines):
        raise ValueError(f"engines must be a non-empty list of Engine, got {engines!r:.100}")
    if len({id(e) for e in engines}) != len(engines):
        raise ValueError("engines must be distinct Engines; a run is given more than once")


def train_epochs_together(engines: list[Engine], epochs: int = 1) -> None:
    """``epochs`` epochs of every engine in the lockstep of :func:`run_many`: each epoch queued for every engine in
    turn (on a GPU each on its own stream), or, for engines grouped by :func:`group_engines`, one step of all of
    them per batch (each run's own batches, one Adam); no host synchronisation (:ref:`ch-engine`)."""
    epochs = _checks.positive_int(epochs, "epochs")
    _check_engine_list(engines)
    groups = {id(e.group): e.group for e in engines if e.group is not None}
    members = {key: [e for e in engines if e.group is group] for key, group in groups.items()}
    for key, group in groups.items():  # before any epoch is queued, so that a refusal leaves no engine ahead
        if [e.step for e in members[key]] != group.members:
            raise ValueError("engines: a group's engines are trained all together or not at all")
    for _ in range(epochs):
        for eng in engines:
            if eng.group is None:
                eng.train_epoch()
        for key, group in groups.items():
            with group.training():
                group.run_steps(torch.stack([e.batches() for e in members[key]]))


def time_side_by_side(engines: list[Engine], epochs: int) -> float:
    """Seconds for ``epochs`` epochs of ``engines`` in the lockstep of :func:`run_many`
    (:func:`train_epochs_together`: each epoch queued for every engine in turn, on a GPU each on its own stream, or
    one Adam for grouped engines), from an idle device to an idle device: the speed of a figure's runs side by side
    (:ref:`ch-engine`)."""
    epochs = _checks.positive_int(epochs, "epochs")
    _check_engine_list(engines)  # before the device is waited for
    engines[0].synchronize()
    t0 = time.perf_counter()
    train_epochs_together(engines, epochs)
    engines[0].synchronize()
    return time.perf_counter() - t0
