"""The training engine's one parameter list (chapter :ref:`ch-engine`): every parameter of
:func:`nclib.train.run`, with its documented default.

Torch-free, so that what reads the parameters without training (the figures' configuration, the sweeps'
grids, the training notebook's parameters cell) need not import torch; :mod:`nclib.train` re-exports all of
it and validates a parameter set (:func:`nclib.train.check_params`).
"""
from __future__ import annotations

PRECISIONS = ("fp32", "tf32", "bf16")

#: Documented defaults (``../shared/paper/README.md``: the closest public code, Dang et al. 2023, and Section 5).
DEFAULTS: dict = dict(
    dataset="cifar10", data_path=None, counts=None, class_order="reference", selection="random",
    normalization="reference", download=False, verify_checksums=True, dim=32, spread=1.0,
    L=1, bias=True, width=2048, depth=6, feature_dim=None, init="reference",
    epochs=12000, batch_size=128, lam_W="reference", lam_H="reference", lam_backbone=0.0,
    lr=1e-4, lr_milestones=(6000,), lr_gamma=0.1,
    seed=0, device="auto", precision="fp32", cuda_graph="auto",
    metric_every=100, divergence_factor=1e4, async_metrics="auto",
    out_dir=None, run_name=None, overwrite=False, progress=True, max_train_s=None, resume=False,
)

#: Parameters that say how one call trains, not what the run is: a call that resumes a run (``resume=True``) may
#: set them differently from the call that started it (every other parameter must be the same).
EXECUTION_KEYS = ("progress", "overwrite", "max_train_s", "resume")


#: The training notebook's parameters (:ref:`ch-train`): those of :data:`DEFAULTS` but ``L`` and ``run_name``,
#: which ``L_values`` (one run per L) and ``run_tag`` (:func:`nclib.train.run_names`) replace, and ``smoke``.
NOTEBOOK_PARAMETERS = tuple(k for k in DEFAULTS if k not in ("L", "run_name")) + ("smoke", "L_values", "run_tag")
