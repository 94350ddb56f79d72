"""The floor of one training step on a GPU (:ref:`ch-engine`): the time of a step of objective (4.3) done in turn,
its matrix products and then Adam's memory traffic, each at the device's data-sheet peak, and the lower bound
that no schedule of the step gets below; and the memory traffic of a step with the products' own (the weights
they read), which no precision of the products and no overlap with Adam removes.  The engine chapter and the
benchmarks measure a step against the floor; nothing here runs on a device.
"""
from __future__ import annotations

from . import _checks, models


#: Bytes of memory traffic per parameter and step of Adam in the floor: fused Adam reads p, g, m, v and writes
#: p, m, v (fp32), and the backward pass writes g.
ADAM_BYTES = 32

#: Of :data:`ADAM_BYTES`, the bytes per parameter and step that no engine avoids: p, m and v read and written
#: (fp32).  The gradient's write and read may stay in the GPU's cache (Adam inside the backward pass).
ADAM_STATE_BYTES = 24

#: Bytes of one weight, or of its gradient, in memory: float32 (the products' precision, fp32 or TF32, reads the
#: fp32 weights).
WEIGHT_BYTES = 4

#: Bytes of memory traffic per weight and step of the three matrix products that use it, in fp32 or TF32: the
#: forward product and the input-gradient product each read the weight, the weight-gradient product writes its
#: gradient (the write that :data:`ADAM_BYTES` counts too), :data:`WEIGHT_BYTES` each.
PRODUCT_BYTES = 3 * WEIGHT_BYTES

#: Data-sheet peaks (dense) of the GPUs whose floors :ref:`ch-engine` computes: HBM bandwidth in bytes/s and
#: matrix-product throughput in FLOP/s, strict fp32 and TF32 (NVIDIA's H100 SXM and H200 data sheets).
DATASHEETS = {"H100 SXM": dict(bandwidth=3.35e12, fp32=67e12, tf32=495e12),
              "H200": dict(bandwidth=4.8e12, fp32=67e12, tf32=495e12)}


def _networks(nets) -> list:
    """``nets`` as a list of at least one network, each an nclib.models.CollapseNet; ValueError naming ``nets``
    for anything else (one network, a number, an empty list)."""
    if isinstance(nets, models.CollapseNet):
        raise ValueError("nets must be a list of networks, got one CollapseNet (write [net])")
    try:
        nets = list(nets)
    except TypeError:  # not iterable: a number, None
        raise ValueError(f"nets must be a list of networks, got {type(nets).__name__}") from None
    if not nets:
        raise ValueError("nets must hold at least one network")
    for net in nets:
        if not isinstance(net, models.CollapseNet):
            raise ValueError(f"nets must hold nclib.models.CollapseNet networks, got {type(net).__name__}")
    return nets


def _parts(nets, rows, bandwidth, flops_per_s, bytes_per_parameter: int) -> tuple[float, float]:
    """Seconds of one step of every network of ``nets`` on ``rows`` samples: the memory traffic of
    ``bytes_per_parameter`` per parameter at ``bandwidth``, and the matrix products at ``flops_per_s``."""
    nets = _networks(nets)
    bandwidth = _checks.positive_float(bandwidth, "bandwidth")
    flops_per_s = _checks.positive_float(flops_per_s, "flops_per_s")
    memory = sum(bytes_per_parameter * models.parameter_count(net) for net in nets) / bandwidth
    return memory, sum(product_flops(net, rows) for net in nets) / flops_per_s


def _weights(model: models.CollapseNet) -> list[int]:
    """The sizes of the weight matrices of ``model``, the first layer's first."""
    return [W.numel() for W in model.backbone_weights() + model.head_weights()]


def _weight_products(model) -> int:
    """The weights the matrix products of one step use, each counted once per product that uses it: the forward
    and weight-gradient products use every weight, the input-gradient products all but the first layer's (the data
    need no gradient).  ValueError naming ``model`` where it is no nclib.models.CollapseNet."""
    if not isinstance(model, models.CollapseNet):
        raise ValueError(f"model must be an nclib.models.CollapseNet, got {type(model).__name__}")
    weights = _weights(model)
    return 3 * sum(weights) - weights[0]


def product_flops(model: models.CollapseNet, rows: int) -> int:
    """Matrix-product FLOPs of one step on ``rows`` samples: forward and weight gradients for every layer, input
    gradients for every layer but the first (the data need none); :ref:`ch-engine`'s arithmetic."""
    uses = _weight_products(model)
    return 2 * _checks.positive_int(rows, "rows") * uses


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


def product_bytes(model: models.CollapseNet) -> int:
    """Bytes of memory traffic of one step's matrix products, each reading its operands from memory and writing its
    result there: :data:`PRODUCT_BYTES` per weight of every layer, less the read of the first layer's weights by
    the input-gradient product that the first layer does not have (the data need no gradient, as in
    :func:`product_flops`).  The activations (``rows`` per layer) and the biases are left out, so this is the
    least such traffic, which :ref:`ch-engine` and ``benchmarks/bench_anatomy.py`` set against the products'
    arithmetic."""
    return WEIGHT_BYTES * _weight_products(model)  # per product that reads or writes a weight


def traffic_seconds(nets, bandwidth: float, gradients_in_cache: bool = False) -> float:
    """Seconds of the memory traffic of one step of every network of ``nets`` at ``bandwidth`` bytes/s
    (:ref:`ch-engine`): Adam's, :data:`ADAM_BYTES` per parameter (or :data:`ADAM_STATE_BYTES` with
    ``gradients_in_cache``: every gradient kept in the GPU's cache from the backward pass until Adam reads it), and
    the weights that the products read, :func:`product_bytes` less the gradients' write that Adam's count already
    holds.  The products' arithmetic is left out: it may overlap this traffic, but the products' reads use the
    same memory as Adam and stay whatever the precision of the products (bf16 under autocast reads the fp32
    weights to cast them).  So no schedule that reads the weights from memory gets below this time; one that also
    served the weights' reads from the cache could, down to :func:`bound_seconds`."""
    gradients_in_cache = _checks.flag(gradients_in_cache, "gradients_in_cache")  # a numpy bool is a bool too
    nets = _networks(nets)
    bandwidth = _checks.positive_float(bandwidth, "bandwidth")
    adam_bytes = ADAM_STATE_BYTES if gradients_in_cache else ADAM_BYTES
    # the products' bytes less the gradients' write, which Adam's count holds: the weights' reads
    return sum(adam_bytes * models.parameter_count(net) + product_bytes(net) - WEIGHT_BYTES * sum(_weights(net))
               for net in nets) / bandwidth
