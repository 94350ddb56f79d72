"""nclib.step on the CPU: one Adam step against Adam written out by hand, the learning rate, the loss sum, the
checkpoint (a copy), refusals by name; on a GPU (CUDA-only tests) the captured graph against eager steps."""
import numpy as np
import pytest
import torch

from nclib import floor as nfloor
from nclib import step as nstep

cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on the GPU machine)")

X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7], [2.0, 1.0]])
T = np.array([1.0, -2.0, 0.5, 3.0])
W0 = np.array([0.4, -0.3])


def _problem(device="cpu", dtype=torch.float64, **kw):
    """Least squares F(idx) = 1/(2|idx|) ||X[idx] w - t[idx]||^2 in one parameter w."""
    w = torch.nn.Parameter(torch.tensor(W0, dtype=dtype, device=device))
    Xt, Tt = torch.tensor(X, dtype=dtype, device=device), torch.tensor(T, dtype=dtype, device=device)

    def objective(idx):
        r = Xt[idx] @ w - Tt[idx]
        return (r * r).sum() / (2 * idx.shape[0])

    kw = {"lr": 0.1, "batch_size": 2, **kw}
    return w, nstep.AdamStep([w], objective, device, **kw)


def _adam_by_hand(batches, lrs, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adam (Kingma and Ba, Algorithm 1) in float64 numpy: the parameters and losses after each step."""
    w, m, v = W0.copy(), np.zeros(2), np.zeros(2)
    ws, losses = [], []
    for t, (rows, lr) in enumerate(zip(batches, lrs), start=1):
        r = X[rows] @ w - T[rows]
        losses.append((r @ r) / (2 * len(rows)))
        g = X[rows].T @ r / len(rows)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        w = w - lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
        ws.append(w.copy())
    return ws, losses


BATCHES = [[0, 1], [2, 3], [1, 3], [0, 2]]


def test_a_step_is_adam_written_out_and_a_new_rate_takes_effect_at_the_next_step():
    w, step = _problem()
    lrs = [0.1, 0.1, 0.02, 0.02]
    expected, losses = _adam_by_hand(BATCHES, lrs)
    for k, rows in enumerate(BATCHES):
        step.set_lr(lrs[k])
        loss = step(torch.tensor(rows))
        np.testing.assert_allclose(loss.item(), losses[k], rtol=1e-14)  # F_B before the step
        np.testing.assert_allclose(w.detach().numpy(), expected[k], rtol=1e-12, atol=1e-15)
        assert step.steps_done == k + 1 and step.started  # a step of the run: counted, a checkpoint too late
    assert step.lr == 0.02
    assert np.isnan(step.take_loss())  # F_B was returned, not added to the sum of run's steps
    assert step.state_dict()["steps_done"] == 4
    # the same steps at the first rate throughout end elsewhere: the rate change was used
    unchanged, _ = _adam_by_hand(BATCHES, [0.1] * 4)
    assert np.abs(unchanged[-1] - expected[-1]).max() > 1e-3


def test_run_sums_the_batch_objectives_until_take_loss():
    w, step = _problem()
    _, losses = _adam_by_hand(BATCHES, [0.1] * 4)
    assert np.isnan(step.take_loss())  # no step taken yet
    with step.training():
        for rows in BATCHES[:3]:
            step.run(torch.tensor(rows))
    assert step.steps_done == 3
    # the device sum is float32 (as in training), so its mean is exact to single precision
    np.testing.assert_allclose(step.take_loss(), np.mean(losses[:3]), rtol=1e-6)
    with step.training():
        step.run(torch.tensor(BATCHES[3]))
    np.testing.assert_allclose(step.take_loss(), losses[3], rtol=1e-6)  # the sum restarts after each read
    assert step.steps_done == 4 and np.isnan(step.take_loss())


def test_run_steps_takes_adams_steps_written_out_one_per_batch():
    """run_steps(batches), the path of every epoch: one Adam step per row of batches, each as Adam written out by
    hand (a rate set between two calls used from the next step on), F_B summed for take_loss; the same steps as
    run(idx) one batch at a time."""
    batches = BATCHES + [[3, 0]]
    lrs = [0.1, 0.1, 0.1, 0.02, 0.02]
    expected, losses = _adam_by_hand(batches, lrs)
    w, step = _problem()
    with step.training():
        step.run_steps(torch.tensor(batches[:3]))
        np.testing.assert_allclose(w.detach().numpy(), expected[2], rtol=1e-12, atol=1e-15)
        step.set_lr(0.02)
        step.run_steps(torch.tensor(batches[3:]))
    np.testing.assert_allclose(w.detach().numpy(), expected[4], rtol=1e-12, atol=1e-15)
    assert step.steps_done == 5 and step.opt.state[w]["step"].item() == 5
    np.testing.assert_allclose(step.take_loss(), np.mean(losses), rtol=1e-6)  # a float32 sum, as in training
    w1, one = _problem()
    with one.training():
        for k, rows in enumerate(batches):
            one.set_lr(lrs[k])
            one.run(torch.tensor(rows))
    assert torch.equal(w1, w) and one.steps_done == 5


def test_int32_row_indices_take_the_steps_of_int64_ones():
    (w64, s64), (w32, s32) = _problem(), _problem()
    with s64.training(), s32.training():
        s64.run_steps(torch.tensor(BATCHES))
        s32.run_steps(torch.tensor(BATCHES, dtype=torch.int32))
    assert torch.equal(w64, w32) and s64.take_loss() == s32.take_loss() and s32.steps_done == 4


def test_on_the_cpu_the_step_is_eager_with_plain_adam():
    w, step = _problem(cuda_graph=True)  # a graph is a GPU feature: asked for on the CPU, the steps stay eager
    assert step.note == "off" and step.fused is False and step.stream is None
    assert step.opt.param_groups[0]["lr"] == 0.1 and not torch.is_tensor(step.opt.param_groups[0]["lr"])


def test_a_loaded_state_continues_exactly():
    w_whole, whole = _problem()
    for rows in BATCHES:
        whole(torch.tensor(rows))
    with pytest.raises(RuntimeError, match="before the run's first step"):  # its called steps count
        whole.load_state_dict(whole.state_dict(), lr=0.1)
    w_a, a = _problem()
    with a.training():
        for rows in BATCHES[:2]:
            a.run(torch.tensor(rows))
    with pytest.raises(RuntimeError, match="steps are pending"):
        a.state_dict()
    a.take_loss()
    state = a.state_dict()
    w_b, b = _problem()
    with torch.no_grad():
        w_b.copy_(w_a)
    with pytest.raises(ValueError, match=r"^state\['steps_done'\] must be a non-negative integer"):
        b.load_state_dict({**state, "steps_done": -1}, lr=0.1)
    assert not b.opt.state and b.steps_done == 0 and not b.started  # refused before Adam's state was loaded
    b.load_state_dict(state, lr=0.1)
    assert b.steps_done == 2 and b.started
    for rows in BATCHES[2:]:
        b(torch.tensor(rows))
    np.testing.assert_array_equal(w_b.detach().numpy(), w_whole.detach().numpy())
    with pytest.raises(RuntimeError, match="before the run's first step"):
        b.load_state_dict(state, lr=0.1)


def test_a_loaded_state_keeps_this_calls_optimizer_settings():
    """A checkpoint holds Adam's state, not how the next call steps: settings saved with it (capturable, as a
    GPU run made without a graph saves it False) do not replace the loading step's own, so a run stopped while
    grouped (its own Adam not capturable) and resumed alone can still be captured in a graph."""
    _, a = _problem()
    a(torch.tensor(BATCHES[0]))
    state = a.state_dict()
    moments = {k: v.clone() for k, v in state["opt"]["state"][0].items()}
    a(torch.tensor(BATCHES[1]))  # a copy: the step moves Adam's state, not the checkpoint's
    assert all(torch.equal(state["opt"]["state"][0][k], v) for k, v in moments.items())
    assert not torch.equal(a.opt.state[a.params[0]]["exp_avg"], moments["exp_avg"])
    own = {k: v for k, v in a.opt.param_groups[0].items() if k not in ("params", "lr")}
    for flag in (True, False):  # another call's settings in the checkpoint
        state["opt"]["param_groups"][0].update(capturable=flag, foreach=flag)
        _, b = _problem()
        b.load_state_dict(state, lr=0.05)
        group = b.opt.param_groups[0]
        assert {k: v for k, v in group.items() if k not in ("params", "lr")} == own and group["lr"] == 0.05
        assert torch.equal(b.opt.state[b.params[0]]["exp_avg"], moments["exp_avg"])


def test_refusals_name_the_argument():
    w = torch.nn.Parameter(torch.zeros(2))

    def f(idx):
        return (w * w).sum()

    with pytest.raises(ValueError, match="lr must be strictly positive"):
        nstep.AdamStep([w], f, "cpu", lr=0.0, batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        nstep.AdamStep([w], f, "cpu", lr=0.1, batch_size=0)
    with pytest.raises(ValueError, match="tf32 must be True or False"):
        nstep.AdamStep([w], f, "cpu", lr=0.1, batch_size=2, tf32="yes")
    with pytest.raises(ValueError, match="cuda_graph must be 'auto', True or False"):
        nstep.AdamStep([w], f, "cpu", lr=0.1, batch_size=2, cuda_graph="always")
    with pytest.raises(ValueError, match="params must hold at least one parameter"):
        nstep.AdamStep([], f, "cpu", lr=0.1, batch_size=2)
    with pytest.raises(ValueError, match="objective must be a function"):
        nstep.AdamStep([w], None, "cpu", lr=0.1, batch_size=2)
    # what torch.optim or torch.device would refuse later, with a TypeError or RuntimeError naming no argument
    for params, words in (([1, 2], "params must hold the parameters Adam updates .*got int"),
                          ([w * 2], "params must hold .*got a tensor computed from others"),
                          (w, "params must be a list of the parameters Adam updates, got Parameter"),
                          (3, "params must be a list .*got int")):
        with pytest.raises(ValueError, match=f"^{words}"):
            nstep.AdamStep(params, f, "cpu", lr=0.1, batch_size=2)
    for device in ("gpu", 3.5, "meta"):
        with pytest.raises(ValueError, match="^device must be"):
            nstep.AdamStep([w], f, device, lr=0.1, batch_size=2)
    assert nstep.AdamStep([w], f, torch.device("cpu"), lr=0.1, batch_size=2).device == torch.device("cpu")
    step = nstep.AdamStep([w], f, "cpu", lr=0.1, batch_size=2)
    with pytest.raises(ValueError, match="^lr must be"):
        step.set_lr(-1e-3)
    with pytest.raises(ValueError, match="^lr must be strictly positive"):
        step.set_lr(0)
    assert step.lr == 0.1
    # a batch of another size would change F_B's scale (and a captured graph's input): refused, nothing stepped
    with step.training():
        with pytest.raises(ValueError, match=r"idx must be a tensor of batch_size = 2 indices, got the shape \(3,\)"):
            step.run(torch.tensor([0, 1, 2]))
        with pytest.raises(ValueError, match=r"batches must be a \(steps, batch_size\) .* got the shape \(4, 3\)"):
            step.run_steps(torch.zeros((4, 3), dtype=torch.int64))
        with pytest.raises(ValueError, match=r"got the shape \(2,\)"):
            step.run_steps(torch.zeros(2, dtype=torch.int64))
        with pytest.raises(ValueError, match="idx must be a tensor .* got list"):
            step.run([0, 1])
        with pytest.raises(ValueError, match=r"idx must be a tensor of batch_size = 2 indices, got the shape \(3,\)"):
            step(torch.tensor([0, 1, 2]))
        with pytest.raises(ValueError, match="batches must be an index tensor, got list"):
            step.run_steps([[0, 1]])
        # row indices only: a bool mask of batch_size entries would select other rows, floats fail inside torch
        for dtype in (torch.bool, torch.uint8, torch.float32, torch.int16):
            with pytest.raises(ValueError, match=f"^idx must hold integer row indices.*{dtype}"):
                step.run(torch.tensor([1, 0], dtype=dtype))
            with pytest.raises(ValueError, match=f"^idx must hold integer row indices.*{dtype}"):
                step(torch.tensor([1, 0], dtype=dtype))
            with pytest.raises(ValueError, match=f"^batches must hold integer row indices.*{dtype}"):
                step.run_steps(torch.tensor([[1, 0]], dtype=dtype))
    # a grouped step's batches hold one slice per run: a slice missing would leave a run without its step
    v = torch.nn.Parameter(torch.zeros(2))
    other = nstep.AdamStep([v], lambda idx: (v * v).sum(), "cpu", lr=0.1, batch_size=2)
    group = nstep.GroupedAdamStep([step, other])
    with group.training():
        with pytest.raises(ValueError, match=r"\(2 runs, steps, batch_size\) .* got the shape \(1, 4, 2\)"):
            group.run_steps(torch.zeros((1, 4, 2), dtype=torch.int64))
    with pytest.raises(RuntimeError, match="run_steps"):  # one batch would step the first run alone
        group(torch.tensor([0, 1]))
    assert step.steps_done == 0 and torch.equal(w.detach(), torch.zeros(2))


def test_a_cuda_device_torch_does_not_see_is_refused_by_name(monkeypatch):
    """On a machine where torch sees no CUDA device, device "cuda" is refused when the step is made, not at the
    first tensor put there (torch's own error names no argument)."""
    w = torch.nn.Parameter(torch.zeros(2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1", torch.device("cuda", 0)):
        with pytest.raises(ValueError, match="^device .* asked for, but torch sees no CUDA device"):
            nstep.AdamStep([w], lambda idx: (w * w).sum(), device, lr=0.1, batch_size=2)


new_fp32_api = pytest.mark.skipif(nstep._fp32_settings() is None, reason="torch < 2.9 has no fp32_precision")


@new_fp32_api
def test_matmul_precision_sets_tf32_on_cuda_strict_fp32_on_the_cpu_and_restores_them():
    backends = (torch.backends.cuda.matmul, torch.backends.cudnn.conv, torch.backends.mkldnn.matmul,
                torch.backends.mkldnn.conv)
    saved = torch.backends.mkldnn.matmul.fp32_precision
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"  # a global setting that would lower the CPU's products
    try:
        before = [b.fp32_precision for b in backends]
        with nstep.matmul_precision(True):
            assert [b.fp32_precision for b in backends] == ["tf32", "tf32", "ieee", "ieee"]
            with nstep.matmul_precision(False):
                assert [b.fp32_precision for b in backends] == ["ieee", "ieee", "ieee", "ieee"]
            assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert [b.fp32_precision for b in backends] == before
        assert [nstep.products_precision(d, t) for d in ("cpu", "cuda") for t in (False, True)] == \
            ["ieee", "ieee", "ieee", "tf32"]
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    finally:
        torch.backends.mkldnn.matmul.fp32_precision = saved
    for device in ("meta", "gpu", 3.5):  # another device type, a name torch cannot read, not a device at all
        with pytest.raises(ValueError, match="^device must be a cpu or cuda device"):
            nstep.products_precision(device, True)
    with pytest.raises(ValueError, match="allow_tf32"):
        with nstep.matmul_precision("yes"):
            pass


def test_before_torch_2_9_only_the_cuda_flags_are_set_and_the_cpu_is_said_unpinned(monkeypatch):
    """The fallback for a torch without fp32_precision (as pyproject's torch>=2.4 allows): the legacy CUDA flags,
    set and restored, also when the body raises; the CPU's products recorded as not pinned."""
    monkeypatch.setattr(nstep, "_fp32_settings", lambda: None)
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with nstep.matmul_precision(True):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with nstep.matmul_precision(False):
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32
    with pytest.raises(KeyError):
        with nstep.matmul_precision(True):
            raise KeyError("boom")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    assert [nstep.products_precision(d, t) for d in ("cpu", "cuda") for t in (False, True)] == \
        ["unpinned", "unpinned", "ieee", "tf32"]


@cuda_only
def test_cuda_graph_replays_the_eager_steps_and_reads_the_tensor_rate():
    """Fused Adam with a device-tensor rate: after the warm-up steps the captured graph replays what eager steps
    compute, including a rate changed in place between replays (no re-capture)."""
    runs = {}
    for graph in (True, False):
        w, step = _problem("cuda", torch.float32, cuda_graph=graph)
        with step.training():
            for k in range(12):
                if k == 8:
                    step.set_lr(0.01)
                step.run(torch.tensor(BATCHES[k % 4], device="cuda"))
        loss = step.take_loss()
        step.synchronize()
        assert step.fused and torch.is_tensor(step.opt.param_groups[0]["lr"])
        assert step.note.startswith("on") if graph else step.note == "off"
        runs[graph] = (w.detach().cpu().numpy(), loss)
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-5)
    np.testing.assert_allclose(runs[True][1], runs[False][1], rtol=1e-5)


def test_the_floor_of_a_step_counts_adam_traffic_and_products():
    from nclib import models

    net = models.build_model(in_dim=6, K=3, L=2, width=5, depth=2, feature_dim=4, seed=0)
    # weights 5x6 (the first: no input gradient), 5x5, 4x5, head 4x4 and 3x4: per row 2 FLOPs per weight for the
    # forward product, the weight gradient and the input gradient
    sizes = [W.numel() for W in net.backbone_weights() + net.head_weights()]
    assert sizes == [30, 25, 20, 16, 12]
    assert nfloor.product_flops(net, 7) == 2 * 7 * (3 * 103 - 30)
    n = models.parameter_count(net)
    seconds = nfloor.floor_seconds([net, net], 7, bandwidth=1e9, flops_per_s=1e12)
    # Adam: p, g, m, v read and p, m, v written in fp32, and g written by the backward pass: 8 x 4 bytes
    np.testing.assert_allclose(seconds, 2 * (32 * n / 1e9 + 2 * 7 * (3 * 103 - 30) / 1e12), rtol=1e-15)
    # the bound on any schedule: the larger of Adam's state traffic (p, m, v read and written: 6 x 4 bytes) and
    # the products, each side in turn the larger
    state, products = 2 * 24 * n / 1e9, 2 * 2 * 7 * (3 * 103 - 30) / 1e12
    assert state > products
    np.testing.assert_allclose(nfloor.bound_seconds([net, net], 7, 1e9, 1e12), state, rtol=1e-15)
    assert products > state / 1e6  # at a million times the bandwidth the products are the larger
    np.testing.assert_allclose(nfloor.bound_seconds([net, net], 7, 1e15, 1e12), products, rtol=1e-15)
    assert nfloor.bound_seconds([net], 7, 1e9, 1e12) < nfloor.floor_seconds([net], 7, 1e9, 1e12)
    # the data sheets the chapter quotes: HBM bytes/s, dense fp32 and TF32 FLOP/s (H100 SXM, H200)
    assert nfloor.DATASHEETS == {"H100 SXM": dict(bandwidth=3.35e12, fp32=67e12, tf32=495e12),
                                 "H200": dict(bandwidth=4.8e12, fp32=67e12, tf32=495e12)}
    with pytest.raises(ValueError, match="nets must be a list of networks, got one CollapseNet"):
        nfloor.floor_seconds(net, 7, 1e9, 1e12)
    with pytest.raises(ValueError, match="nets must hold nclib.models.CollapseNet networks, got object"):
        nfloor.bound_seconds([object()], 7, 1e9, 1e12)
    with pytest.raises(ValueError, match="model must be an nclib.models.CollapseNet, got Linear"):
        nfloor.product_flops(torch.nn.Linear(2, 2), 7)
    with pytest.raises(ValueError, match="nets must hold at least one network"):
        nfloor.floor_seconds([], 7, 1e9, 1e12)
    for not_a_list in (5, None):  # not iterable: refused by name, not with a TypeError from list()
        with pytest.raises(ValueError, match=f"nets must be a list of networks, got {type(not_a_list).__name__}"):
            nfloor.floor_seconds(not_a_list, 7, 1e9, 1e12)
        with pytest.raises(ValueError, match="nets must be a list of networks"):
            nfloor.traffic_seconds(not_a_list, 1e9)
    with pytest.raises(ValueError, match="bandwidth must be strictly positive"):
        nfloor.floor_seconds([net], 7, 0.0, 1e12)
    for flops_per_s in (0.0, -1e12, float("inf"), float("nan"), "fast", True):  # no negative or infinite time
        for seconds in (nfloor.floor_seconds, nfloor.bound_seconds):
            with pytest.raises(ValueError, match="^flops_per_s must"):
                seconds([net], 7, 1e9, flops_per_s)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        nfloor.product_flops(net, 0)


def test_the_traffic_of_a_step_counts_the_weights_the_products_read():
    from nclib import models

    net = models.build_model(in_dim=6, K=3, L=2, width=5, depth=2, feature_dim=4, seed=0)
    n = models.parameter_count(net)
    assert n == 103 + 5 + 5 + 4 + 3  # the weights above, the backbone's biases and the last layer's
    # the forward product reads 103 weights, the input-gradient product 103 - 30 (not the first layer's), the
    # weight-gradient product writes 103 gradients: 4 bytes each
    assert nfloor.PRODUCT_BYTES == 12
    assert nfloor.product_bytes(net) == 4 * (103 + 73 + 103) == 1116
    # a step's traffic: Adam's 32 bytes per parameter (which count the gradients' write) and the 176 weights read
    np.testing.assert_allclose(nfloor.traffic_seconds([net, net], 1e9), 2 * (32 * n + 4 * 176) / 1e9, rtol=1e-15)
    # the gradients kept in the cache: Adam's state (24 bytes per parameter) and the same reads
    np.testing.assert_allclose(nfloor.traffic_seconds([net], 1e9, gradients_in_cache=True),
                               (24 * n + 4 * 176) / 1e9, rtol=1e-15)
    # above the bound on any schedule whatever the arithmetic, and above the floor's traffic (Adam's alone)
    assert nfloor.traffic_seconds([net], 1e9, True) > nfloor.bound_seconds([net], 7, 1e9, 1e15)
    assert nfloor.traffic_seconds([net], 1e9) > nfloor.floor_seconds([net], 7, 1e9, float("1e300"))
    # a generator of networks is read once, as a list
    np.testing.assert_allclose(nfloor.traffic_seconds((m for m in [net, net]), 1e9),
                               nfloor.traffic_seconds([net, net], 1e9))
    with pytest.raises(ValueError, match="gradients_in_cache must be True or False, got 1"):
        nfloor.traffic_seconds([net], 1e9, gradients_in_cache=1)
    # a numpy bool (a value read from an array) is the bool it is, as nclib._checks.flag reads it
    assert nfloor.traffic_seconds([net], 1e9, np.bool_(True)) == nfloor.traffic_seconds([net], 1e9, True)
    assert nfloor.traffic_seconds([net], 1e9, np.bool_(False)) == nfloor.traffic_seconds([net], 1e9, False)
    with pytest.raises(ValueError, match="nets must be a list of networks, got one CollapseNet"):
        nfloor.traffic_seconds(net, 1e9)
    with pytest.raises(ValueError, match="bandwidth must be strictly positive"):
        nfloor.traffic_seconds([net], 0)
    with pytest.raises(ValueError, match="model must be an nclib.models.CollapseNet, got Linear"):
        nfloor.product_bytes(torch.nn.Linear(2, 2))
