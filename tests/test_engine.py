"""nclib.engine on the CPU: a run's checkpoint (all or nothing when loaded, a copy), the classes a run needs."""
import copy

import pytest
import torch

from nclib import data, parameters, train

KW = dict(dataset="synthetic", counts=[12, 6, 3], dim=8, width=16, depth=2, epochs=4, batch_size=4, lr=1e-3,
          lam_W=1e-3, lam_H=1e-3, progress=False, device="cpu")


def _engine(**kw):
    p = train.check_params(**{**KW, **kw})
    return train.Engine(data.load_for(p), p)


def _snapshot(eng):
    return ([q.detach().clone() for q in eng.model.parameters()], eng.gen.get_state().clone(), eng.steps_done,
            eng.current_lr, copy.deepcopy(eng.step.opt.state_dict()))


def _same(a, b):
    (pa, ga, na, la, oa), (pb, gb, nb, lb, ob) = a, b
    return (all(torch.equal(x, y) for x, y in zip(pa, pb)) and torch.equal(ga, gb) and na == nb and la == lb
            and oa["state"].keys() == ob["state"].keys())


def test_a_refused_checkpoint_loads_nothing():
    """Every refusal of Engine.load_state_dict (a bad rate, a key missing, another network's tensors, Adam's
    state of other parameters, a bad step count or generator state) comes before anything is loaded: the engine
    is as made, and then takes the checkpoint."""
    a = _engine()
    a.train_epoch()
    a.take_loss()
    state = a.state_dict()
    other = _engine(L=2)
    other.train_epoch()
    other.take_loss()
    other_state = other.state_dict()
    moments = copy.deepcopy(state)
    moments["opt"]["state"][0]["exp_avg"] = torch.zeros(3)
    b = _engine()
    before = _snapshot(b)
    for bad, lr, name in [(state, 0.0, "lr"), ({k: v for k, v in state.items() if k != "gen"}, 1e-3, "state"),
                          ([state], 1e-3, "state"), (other_state, 1e-3, r"state\['model'\]"),
                          ({**state, "opt": other_state["opt"]}, 1e-3, r"state\['opt'\]"),
                          (moments, 1e-3, r"state\['opt'\]"),
                          ({**state, "steps_done": -1}, 1e-3, r"state\['steps_done'\]"),
                          ({**state, "gen": state["gen"].float()}, 1e-3, r"state\['gen'\]")]:
        with pytest.raises(ValueError, match=f"^{name} must|^{name}: "):
            b.load_state_dict(bad, lr)
        assert _same(_snapshot(b), before), name
    b.load_state_dict(state, 2e-3)
    assert b.steps_done == a.steps_done == 5 and b.current_lr == 2e-3
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    with pytest.raises(RuntimeError, match="before the run's first step"):
        b.load_state_dict(state, 1e-3)


def test_a_checkpoint_is_a_copy_that_training_on_leaves_as_it_was():
    """Engine.state_dict copies the model's and Adam's tensors: an epoch trained after it changes the run, not
    the checkpoint, and a run loaded from it continues as the run did."""
    a = _engine()
    a.train_epoch()
    a.take_loss()
    state = a.state_dict()
    kept = copy.deepcopy(state)
    live = {q.data_ptr() for q in a.model.parameters()}
    live |= {t.data_ptr() for st in a.step.opt.state.values() for t in st.values() if torch.is_tensor(t)}
    assert not live & {t.data_ptr() for t in state["model"].values()}
    assert not live & {t.data_ptr() for st in state["opt"]["state"].values() for t in st.values()}
    a.train_epoch()
    a.take_loss()
    for k, t in kept["model"].items():
        assert torch.equal(state["model"][k], t) and not torch.equal(a.model.state_dict()[k], t), k
    for i, st in kept["opt"]["state"].items():
        for key, t in st.items():
            assert torch.equal(state["opt"]["state"][i][key], t), (i, key)
    b = _engine()
    b.load_state_dict(state, 1e-3)
    b.train_epoch()
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def test_a_training_run_needs_two_classes():
    """With K = 1 every feature is its class mean: NC1 would be 0 for any network, so a run of one class is refused
    naming counts, before anything is loaded or written (the sweeps' check on another machine too)."""
    for counts in ([6], (5,)):
        with pytest.raises(ValueError, match=r"^counts must give at least two classes \(K >= 2\)"):
            train.check_params(**{**KW, "counts": counts})
    with pytest.raises(ValueError, match="^counts must give at least two classes"):
        parameters.checked({**KW, "counts": [6]}, cuda=True)
    assert train.check_params(**{**KW, "counts": [6, 1]})["counts"] == [6, 1]
