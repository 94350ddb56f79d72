"""The network of Section 5: an MLP backbone producing the features H and an L-layer linear head.

Backbone: ``depth`` x (Linear + ReLU) of width ``width``, then one Linear(width, d) whose output is the
feature h of a sample (the columns of H in objective (4.3)); head: L Linear layers W_1 (d x d), ...,
W_{L-1} (d x d), W_L (K x d) with no activation between them (the deep linear head of the L-extended
UFM, Section 4.2), a bias b only on the last layer (``bias=True``) or none (the bias-free case,
Appendix C).  This is the architecture of the closest public code (Dang et al. 2023, ``models/mlp.py``,
without batch norm).  Used by :ref:`ch-train` and :ref:`ch-engine`.

Initialization (``init``):

``"reference"`` (default)
    What the reference code does: orthogonal weights (``torch.nn.init.orthogonal_``, gain 1) on the
    first ``ceil(depth/2)`` backbone Linear layers (its loop ``for i in range(depth_relu)`` runs over the
    first ``depth_relu`` modules of a Sequential that alternates Linear and ReLU, so for depth 6 it
    reaches Linear layers 1-3 only) and on every head layer; PyTorch's default (Kaiming-uniform with
    a = sqrt(5), biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))) on the other backbone layers, the feature
    layer and all biases.
``"orthogonal"``
    Orthogonal weights on every Linear layer, PyTorch's default biases.
``"pytorch"``
    PyTorch's default everywhere.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from . import _checks
from .parameters import INITS, SEED_LIMIT  # the parameter list names the choices; build_model checks them


class CollapseNet(nn.Module):
    """Backbone + deep linear head; ``forward(x)`` returns ``(logits, features)`` (Section 5, eq. (4.3)).

    ``backbone`` maps x to the feature h (d = ``feature_dim``); ``head`` is an ``nn.ModuleList`` of the L
    linear layers, ``head[j].weight`` is W_{j+1}.  ``head_weights()`` lists W_1..W_L.
    """

    def __init__(self, in_dim: int, K: int, L: int, width: int = 2048, depth: int = 6,
                 feature_dim: int | None = None, bias: bool = True):
        super().__init__()
        in_dim = _checks.positive_int(in_dim, "in_dim")
        K = _checks.positive_int(K, "K")
        L = _checks.positive_int(L, "L")
        width = _checks.positive_int(width, "width")
        depth = _checks.positive_int(depth, "depth")
        d = width if feature_dim is None else _checks.positive_int(feature_dim, "feature_dim")
        bias = _checks.flag(bias, "bias")
        layers: list[nn.Module] = []
        fan_in = in_dim
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), nn.ReLU()]
            fan_in = width
        layers.append(nn.Linear(width, d))  # the feature layer: its output is h
        self.backbone = nn.Sequential(*layers)
        dims = [d] * L + [K]
        self.head = nn.ModuleList(
            nn.Linear(dims[j], dims[j + 1], bias=(bias and j == L - 1)) for j in range(L))
        self.in_dim, self.K, self.L, self.width, self.depth, self.d, self.bias = in_dim, K, L, width, depth, d, bias

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The features h of the rows of ``x``: the columns of H in objective (4.3) (:ref:`ch-engine`)."""
        return self.backbone(x)

    def classify(self, h: torch.Tensor) -> torch.Tensor:
        """The logits W_L ... W_1 h + b of features ``h`` (rows): the prediction P H + b 1^T of (4.3)
        (:ref:`ch-engine`)."""
        for layer in self.head:
            h = layer(h)
        return h

    def forward(self, x: torch.Tensor):
        """``(logits, h)`` of a batch ``x``: :meth:`classify` of :meth:`features`, as (4.3) uses them
        (:ref:`ch-engine`)."""
        h = self.backbone(x)
        return self.classify(h), h

    def head_weights(self) -> list[torch.Tensor]:
        """[W_1, ..., W_L] (W_L is K x d), the matrices penalized by lambda_W in (4.3)."""
        return [layer.weight for layer in self.head]

    def head_bias(self) -> torch.Tensor | None:
        """The bias b of the last head layer (not penalized in (4.3)), or None in the bias-free case."""
        return self.head[-1].bias

    def backbone_weights(self) -> list[torch.Tensor]:
        """The backbone's Linear weights, decayed only by ``lam_backbone`` (0 by default; (4.3) penalizes the head and
        H only, :ref:`ch-engine`)."""
        return [m.weight for m in self.backbone if isinstance(m, nn.Linear)]


def initialize(model: CollapseNet, init: str = "reference") -> CollapseNet:
    """Re-initialize ``model`` in place as documented in the module docstring (the reference code's scheme
    for the network of Section 5, :ref:`ch-engine`); returns it.  A ``model`` that is not a :class:`CollapseNet`
    is refused before any of its weights is touched."""
    if not isinstance(model, CollapseNet):
        raise ValueError(f"model must be a CollapseNet (nclib.models.build_model), got {type(model).__name__}")
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()  # PyTorch's default
        if init == "pytorch":
            return model
        linears = [m for m in model.backbone if isinstance(m, nn.Linear)]
        if init == "reference":
            backbone_orth = linears[:math.ceil(model.depth / 2)]  # the reference loop reaches modules 0..depth-1 only
        else:
            backbone_orth = linears
        for m in backbone_orth + list(model.head):
            nn.init.orthogonal_(m.weight)
    return model


def build_model(in_dim: int, K: int, L: int, width: int = 2048, depth: int = 6, feature_dim: int | None = None,
                bias: bool = True, init: str = "reference", seed: int | None = None) -> CollapseNet:
    """A :class:`CollapseNet` initialized by ``init``; with ``seed`` the initialization is reproducible on one CPU
    with one number of torch threads (the orthogonal initialization's QR rounds differently with the thread count,
    relatively by about 1e-6; a run's provenance records both, ``host_cpu`` and ``torch_threads``).

    The network of Section 5 (defaults: depth 6, width 2048, d = 2048).  Used by :func:`nclib.train.run` and
    :ref:`ch-engine`.  ``seed``: None or an integer 0 <= seed < 2**64 (torch's generators take 64 bits, as
    :func:`nclib.parameters.check_params` says), a ValueError naming it otherwise.
    """
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if seed is not None:
        seed = _checks.nonneg_int(seed, "seed")
        if seed >= SEED_LIMIT:  # torch.manual_seed raises "Overflow when unpacking long long", naming no argument
            raise ValueError(f"seed must be below 2**64 (torch's generators take 64 bits), got {_checks.shown(seed)}")
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return initialize(CollapseNet(in_dim, K, L, width, depth, feature_dim, bias), init)
    return initialize(CollapseNet(in_dim, K, L, width, depth, feature_dim, bias), init)


def parameter_count(model: nn.Module) -> int:
    """The number of trainable scalars, what Adam updates each step (the speed arithmetic of :ref:`ch-engine`);
    ``model`` a ``torch.nn.Module`` (a ValueError names it otherwise)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a network (a torch.nn.Module, nclib.models.build_model), got "
                         f"{type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
