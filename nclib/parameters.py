"""The training engine's one parameter list (chapter :ref:`ch-engine`): every parameter of
:func:`nclib.train.run`, with its documented default.

Torch-free, so that what reads the parameters without training (the figures' configuration, the sweeps'
grids, the training notebook's parameters cell) need not import torch; :mod:`nclib.train` re-exports all of
it and validates a parameter set (:func:`nclib.train.check_params`).
"""
from __future__ import annotations

PRECISIONS = ("fp32", "tf32", "bf16")


def parse_scalar(text: str):
    """A parameter's value written as text (the command lines of :mod:`nclib.train` and :mod:`nclib.sweep`): an
    int, else a float, else ``true``/``false``/``none`` (any case) as True/False/None, else the text itself."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)

#: Documented defaults (``../shared/paper/README.md``: the closest public code, Dang et al. 2023, and Section 5).
DEFAULTS: dict = dict(
    dataset="cifar10", data_path=None, counts=None, class_order="reference", selection="random",
    normalization="reference", download=False, verify_checksums=True, dim=32, spread=1.0,
    L=1, bias=True, width=2048, depth=6, feature_dim=None, init="reference",
    epochs=12000, batch_size=128, lam_W="reference", lam_H="reference", lam_backbone=0.0,
    lr=1e-4, lr_milestones=(6000,), lr_gamma=0.1,
    seed=0, device="auto", precision="fp32", cuda_graph="auto", grouped_adam=False, steps_per_graph=1,
    deferred_metrics=False, adam_in_backward=False,
    metric_every=100, divergence_factor=1e4, async_metrics="auto",
    out_dir=None, run_name=None, overwrite=False, progress=True, max_train_s=None, resume=False,
)

#: Parameters that say how one call trains, not what the run is: a call that resumes a run (``resume=True``) may
#: set them differently from the call that started it (every other parameter must be the same).
EXECUTION_KEYS = ("progress", "overwrite", "max_train_s", "resume", "async_metrics", "grouped_adam",
                  "steps_per_graph", "deferred_metrics", "adam_in_backward")

#: The engine's opt-in speed levers (:ref:`ch-engine`), off by default until a GPU has measured them; each changes
#: where the work is launched, not the arithmetic of a run (hence execution keys):
#: ``grouped_adam`` (True/False): the runs of one call take ONE Adam step over all their parameters per batch (on a
#: GPU one fused multi-tensor launch, the runs' forward and backward passes and that step captured in one graph)
#: instead of one Adam per run; ``steps_per_graph`` (a positive int): consecutive steps captured in one CUDA graph,
#: their batch rows read from one device buffer; above 1 only on a GPU with ``cuda_graph`` on;
#: ``deferred_metrics`` (True/False): a metric epoch queues its device work and copies to host memory on the run's
#: stream and training goes on at once; the row is completed in the worker thread (with ``async_metrics``) and
#: checked for divergence at the next metric epoch (or the run's end), so a metric epoch does not wait for the
#: device's queue to drain.
#: ``adam_in_backward`` (True/False): each parameter's Adam step is taken inside the backward pass, by a hook, as
#: soon as its gradient is complete, then the gradient is freed (on a GPU it may still be in the cache when Adam
#: reads it); not with ``grouped_adam``.
LEVER_KEYS = ("grouped_adam", "steps_per_graph", "deferred_metrics", "adam_in_backward")


#: The training notebook's parameters (:ref:`ch-train`): those of :data:`DEFAULTS` but ``L`` and ``run_name``,
#: which ``L_values`` (one run per L) and ``run_tag`` (:func:`nclib.train.run_names`) replace, and ``smoke``.
NOTEBOOK_PARAMETERS = tuple(k for k in DEFAULTS if k not in ("L", "run_name")) + ("smoke", "L_values", "run_tag")

#: Adam's constants (betas, eps): ``torch.optim.Adam``'s defaults, as the paper's training uses them; the training
#: step (:mod:`nclib.step`) and the numpy Adam of the UFM (:func:`nclib.minority.train_ufm`) both take them from here.
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
