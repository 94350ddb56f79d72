"""The floor of one training step on a GPU (:ref:`ch-engine`): the least time a step of objective (4.3) can take,
Adam's memory traffic (which no schedule hides) plus the matrix products at the device's data-sheet peaks.  The
engine chapter and the benchmarks measure a step against it; nothing here runs on a device.
"""
from __future__ import annotations

from . import _checks, models


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
