"""nclib.models: the backbone + deep linear head of Section 5 and its documented initialization."""
import numpy as np
import pytest
import torch

from nclib import models


def test_shapes_and_bias_only_on_last_head_layer():
    m = models.build_model(in_dim=12, K=4, L=3, width=16, depth=6, seed=0)
    logits, h = m(torch.randn(5, 12))
    assert logits.shape == (5, 4) and h.shape == (5, 16)
    assert [tuple(W.shape) for W in m.head_weights()] == [(16, 16), (16, 16), (4, 16)]
    assert [layer.bias is not None for layer in m.head] == [False, False, True]
    assert m.head_bias().shape == (4,)
    # 6 x (Linear + ReLU) then the feature Linear: 7 Linear layers, 6 ReLUs, and no ReLU after the features
    kinds = [type(x).__name__ for x in m.backbone]
    assert kinds == ["Linear", "ReLU"] * 6 + ["Linear"]
    # the head is linear: logits are W_3 W_2 W_1 h + b
    P = m.head[2].weight @ m.head[1].weight @ m.head[0].weight
    torch.testing.assert_close(logits, h @ P.T + m.head_bias(), rtol=1e-5, atol=1e-6)


def test_bias_free_and_feature_dim():
    m = models.build_model(in_dim=3, K=2, L=1, width=8, depth=2, feature_dim=5, bias=False, seed=0)
    assert m.head_bias() is None and m.head[0].weight.shape == (2, 5)
    assert models.parameter_count(m) == 3 * 8 + 8 + 8 * 8 + 8 + 8 * 5 + 5 + 5 * 2


def _is_orthogonal(W):
    W = W.detach().double()
    G = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
    return torch.allclose(G, torch.eye(G.shape[0], dtype=torch.float64), atol=1e-5)


def test_reference_initialization():
    m = models.build_model(in_dim=20, K=3, L=3, width=20, depth=6, init="reference", seed=0)
    linears = m.backbone_weights()
    # the reference loop reaches backbone Linear layers 1-3 only, then every head layer
    assert [_is_orthogonal(W) for W in linears] == [True, True, True, False, False, False, False]
    assert all(_is_orthogonal(W) for W in m.head_weights())
    # the others keep PyTorch's default: Kaiming-uniform, |w| <= 1/sqrt(fan_in)
    assert linears[4].abs().max() <= 1 / np.sqrt(20)
    orth = models.build_model(in_dim=20, K=3, L=3, width=20, depth=6, init="orthogonal", seed=0)
    assert all(_is_orthogonal(W) for W in orth.backbone_weights() + orth.head_weights())
    plain = models.build_model(in_dim=20, K=3, L=3, width=20, depth=6, init="pytorch", seed=0)
    assert not any(_is_orthogonal(W) for W in plain.head_weights())


@pytest.mark.parametrize("depth", [5, 6, 7])
def test_reference_initialization_at_odd_and_even_depth(depth):
    """The module docstring's rule, at odd depth too: the reference loop ``for i in range(depth_relu)`` visits the
    first ``depth`` modules of the backbone's Sequential (Linear, ReLU, Linear, ...), and the Linear layers among
    them, and only those, are orthogonal; depth 5 reaches Linear layers 1-3 (modules 0, 2, 4), depth 7 layers 1-4."""
    m = models.build_model(in_dim=20, K=3, L=2, width=20, depth=depth, init="reference", seed=0)
    reached = sum(isinstance(module, torch.nn.Linear) for module in list(m.backbone)[:depth])
    linears = m.backbone_weights()
    assert len(linears) == depth + 1 and reached == {5: 3, 6: 3, 7: 4}[depth]
    assert [_is_orthogonal(W) for W in linears] == [True] * reached + [False] * (len(linears) - reached)
    assert all(_is_orthogonal(W) for W in m.head_weights())


def test_seed_makes_initialization_reproducible():
    a = models.build_model(10, 3, 2, width=8, depth=2, seed=7)
    b = models.build_model(10, 3, 2, width=8, depth=2, seed=7)
    c = models.build_model(10, 3, 2, width=8, depth=2, seed=8)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert not torch.equal(a.head[0].weight, c.head[0].weight)


def test_a_seed_beyond_64_bits_is_refused_naming_seed():
    """torch's generators take 64 bits: seed=2**64 gave torch's "Overflow when unpacking long long", naming no
    argument; the largest seed torch takes, 2**64 - 1, still makes a reproducible network."""
    for bad in (2 ** 64, 2 ** 70, -1, 1.0, True):
        with pytest.raises(ValueError, match="^seed must be"):
            models.build_model(10, 3, 2, width=8, depth=2, seed=bad)
    a, b = (models.build_model(10, 3, 2, width=8, depth=2, seed=2 ** 64 - 1) for _ in range(2))
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_numpy_bools_are_bools():
    assert models.build_model(3, 2, 1, width=4, depth=1, bias=np.True_, seed=0).head_bias() is not None
    assert models.build_model(3, 2, 1, width=4, depth=1, bias=np.False_, seed=0).head_bias() is None
    for bias in (1, 0, None):
        with pytest.raises(ValueError, match="^bias"):
            models.CollapseNet(3, 2, 1, width=4, depth=1, bias=bias)


def test_initialize_refuses_another_module_before_touching_it():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 3)
    before = [p.detach().clone() for p in layer.parameters()]
    with pytest.raises(ValueError, match="^model"):
        models.initialize(layer)
    for p, q in zip(layer.parameters(), before):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="L must be a positive integer"):
        models.build_model(10, 3, 0)
    with pytest.raises(ValueError, match="init must be one of"):
        models.build_model(10, 3, 1, init="xavier")
    with pytest.raises(ValueError, match="bias must be True or False"):
        models.build_model(10, 3, 1, width=4, depth=1, bias="yes")
    with pytest.raises(ValueError, match="width"):
        models.build_model(10, 3, 1, width=0)
    for not_a_network in ("x", [torch.zeros(3)], None):
        with pytest.raises(ValueError, match="^model must be a network"):
            models.parameter_count(not_a_network)
    assert models.parameter_count(torch.nn.Linear(3, 2)) == 3 * 2 + 2
