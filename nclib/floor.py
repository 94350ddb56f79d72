"""The floor of one training step on a GPU (:ref:`ch-engine`): the time of a step of objective (4.3) done in turn,
its matrix products and then Adam's memory traffic, each at the device's data-sheet peak, and the lower bound
that no schedule of the step gets below.  The engine chapter and the benchmarks measure a step against the
floor; nothing here runs on a device.
"""
from __future__ import annotations

from . import _checks, models


#: Bytes of memory traffic per parameter and step of Adam in the floor: fused Adam reads p, g, m, v and writes
#: p, m, v (fp32), and the backward pass writes g.
ADAM_BYTES = 32

#: Of :data:`ADAM_BYTES`, the bytes per parameter and step that no engine avoids: p, m and v read and written
#: (fp32).  The gradient's write and read may stay in the GPU's cache (Adam inside the backward pass).
ADAM_STATE_BYTES = 24

#: Data-sheet peaks (dense) of the GPUs whose floors :ref:`ch-engine` computes: HBM bandwidth in bytes/s and
#: matrix-product throughput in FLOP/s, strict fp32 and TF32 (NVIDIA's H100 SXM and H200 data sheets).
DATASHEETS = {"H100 SXM": dict(bandwidth=3.35e12, fp32=67e12, tf32=495e12),
              "H200": dict(bandwidth=4.8e12, fp32=67e12, tf32=495e12)}


def _parts(nets, rows, bandwidth, flops_per_s, bytes_per_parameter: int) -> tuple[float, float]:
    """Seconds of one step of every network of ``nets`` on ``rows`` samples: the memory traffic of
    ``bytes_per_parameter`` per parameter at ``bandwidth``, and the matrix products at ``flops_per_s``."""
    if isinstance(nets, models.CollapseNet):
        raise ValueError("nets must be a list of networks, got one CollapseNet (write [net])")
    nets = list(nets)
    if not nets:
        raise ValueError("nets must hold at least one network")
    for net in nets:
        if not isinstance(net, models.CollapseNet):
            raise ValueError(f"nets must hold nclib.models.CollapseNet networks, got {type(net).__name__}")
    bandwidth = _checks.positive_float(bandwidth, "bandwidth")
    flops_per_s = _checks.positive_float(flops_per_s, "flops_per_s")
    memory = sum(bytes_per_parameter * models.parameter_count(net) for net in nets) / bandwidth
    return memory, sum(product_flops(net, rows) for net in nets) / flops_per_s


def product_flops(model: models.CollapseNet, rows: int) -> int:
    """Matrix-product FLOPs of one step on ``rows`` samples: forward and weight gradients for every layer, input
    gradients for every layer but the first (the data need none); :ref:`ch-engine`'s arithmetic."""
    if not isinstance(model, models.CollapseNet):
        raise ValueError(f"model must be an nclib.models.CollapseNet, got {type(model).__name__}")
    rows = _checks.positive_int(rows, "rows")
    weights = [W.numel() for W in model.backbone_weights() + model.head_weights()]
    return 2 * rows * (3 * sum(weights) - weights[0])


def floor_seconds(nets, rows: int, bandwidth: float, flops_per_s: float) -> float:
    """The floor of :ref:`ch-engine`: the time of one step of each network of ``nets`` on ``rows`` samples done
    in turn, Adam's memory traffic (:data:`ADAM_BYTES` per parameter at ``bandwidth`` bytes/s) plus the matrix
    products at ``flops_per_s``.  Not a bound on every schedule: one that overlaps the products with Adam's
    traffic, or keeps the gradients in the cache, may go below it down to :func:`bound_seconds`."""
    return sum(_parts(nets, rows, bandwidth, flops_per_s, ADAM_BYTES))


def bound_seconds(nets, rows: int, bandwidth: float, flops_per_s: float) -> float:
    """A lower bound on one step of every network of ``nets`` on ``rows`` samples under any schedule
    (:ref:`ch-engine`): the larger of the traffic of Adam's state (:data:`ADAM_STATE_BYTES` per parameter at
    ``bandwidth`` bytes/s) and the matrix products at ``flops_per_s``, which an engine reaches only by hiding the
    one entirely behind the other."""
    return max(_parts(nets, rows, bandwidth, flops_per_s, ADAM_STATE_BYTES))
