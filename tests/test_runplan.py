"""A call's plan over its run folders (nclib.runplan) on folders written by hand, without training: which recorded
devices differ from the device a call asks for, which runs a data check refuses, and what a plan offers to continue
beside a run not yet started.  The folders themselves are those of the run-folder contract (nclib.runs, tested in
test_runs.py)."""
from __future__ import annotations

import pytest

from nclib import parameters, runplan, runs


def _folder(path, status="finished", params=None, **provenance):
    """A run folder holding ``params.json`` and a ``provenance.json`` with ``status`` and ``provenance``."""
    path.mkdir(parents=True)
    (path / "params.json").write_text(runs.to_json(params or {"epochs": 5}))
    (path / "provenance.json").write_text(runs.to_json({"status": status, **provenance}))
    return path


@pytest.mark.parametrize("recorded, kind, differ", [
    ("cpu", "cuda", {"device": ("cpu", "cuda")}),
    ("cuda:1", "cpu", {"device": ("cuda", "cpu")}),
    ("cuda:1", "cuda", {}),  # a card is of its kind
    ("cuda", "cuda:0", {}),
    ("mps", "cuda", {"device": ("mps", "cuda")}),  # no kind nclib trains on: differs from every kind
    ("mps", "cpu", {"device": ("mps", "cpu")}),
    (None, "cuda", {}),  # a folder that records no device differs from none
    (None, "cpu", {}),
    ("cpu", None, {}),  # any device
])
def test_a_recorded_device_differs_only_in_its_kind(tmp_path, recorded, kind, differ):
    folder = _folder(tmp_path / "r", **({} if recorded is None else {"device": recorded}))
    assert runplan.device_difference(folder, kind) == differ
    if kind is not None:  # a plan for that kind skips the finished run or refuses it, by the same difference
        if differ:
            with pytest.raises(runs.RunExists):
                runplan.plan_runs([folder], devices=[runplan.device_kind(kind)])
        else:
            assert runplan.plan_runs([folder], devices=[runplan.device_kind(kind)]) == "skip"


@pytest.mark.parametrize("device, cuda, kind", [
    ("cuda", True, "cuda"), ("cuda:1", True, "cuda"), ("auto", True, "cuda"),  # a call that trains on a GPU
    ("cuda", False, "cuda"),  # a GPU named: its kind, though this machine has none (checked refuses the call)
    ("cpu", True, None), ("auto", False, None), ("cpu", False, None),  # on a CPU: a run of any device is read
])
def test_a_call_on_a_gpu_requires_a_run_trained_on_one(device, cuda, kind):
    """required_device_type: the kind of device a finished run must have been trained on to be read back by a call
    with ``device`` on a machine with (cuda=True) or without (False) a CUDA device; "auto" is the GPU where there
    is one.  A device of no kind is refused naming it."""
    assert parameters.required_device_type(device, cuda) == kind


def test_the_device_required_here_asks_torch_only_for_auto(monkeypatch):
    """cuda=None is this machine: "auto" is "cuda" where torch sees a GPU, any other device its own kind."""
    for seen, auto in ((True, "cuda"), (False, None)):
        monkeypatch.setattr(parameters, "_cuda_available", lambda: seen)
        assert parameters.required_device_type("auto") == auto
        assert parameters.required_device_type("cuda:0") == "cuda" and parameters.required_device_type("cpu") is None
    for bad in ("gpu", "mps", "cuda:", "", None):
        with pytest.raises(ValueError, match="^device must be"):
            parameters.required_device_type(bad, True)


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_a_plan_on_a_gpu_never_takes_a_finished_cpu_run_as_its_result(tmp_path, device):
    """The plan of a call that trains on a GPU (as nclib.train.run and nclib.sweepplan make it) refuses a finished
    run whose provenance records the CPU, naming its device, instead of skipping it as done; the same folder is
    skipped by a call on a CPU, and a finished GPU run by both."""
    cpu_run = _folder(tmp_path / "cpu", device="cpu")
    gpu_run = _folder(tmp_path / "gpu", device="cuda:0")
    on_gpu = [parameters.required_device_type(device, True)]
    with pytest.raises(runs.RunExists, match=r"device = 'cpu', now 'cuda'") as refused:
        runplan.plan_runs([cpu_run], devices=on_gpu)
    assert (refused.value.run_dir, refused.value.status) == (cpu_run, "finished")
    assert runplan.plan_runs([gpu_run], devices=on_gpu) == "skip"
    for on_cpu in ([parameters.required_device_type("auto", False)], [parameters.required_device_type("cpu", True)]):
        assert runplan.plan_runs([cpu_run], devices=on_cpu) == runplan.plan_runs([gpu_run], devices=on_cpu) == "skip"


def test_a_run_that_records_no_data_checksum_is_refused_as_trained_on_other_data(tmp_path):
    """refuse_other_data keeps only runs whose provenance records the data's checksum now: a run that records
    another one, none, or no readable provenance is refused (OtherData naming it), never read back as a result of
    these data."""
    now = "a" * 64
    params = {"data_path": str(tmp_path / "data.npz")}
    same = _folder(tmp_path / "same", data_sha256=now)
    runplan.refuse_other_data(params, [same], "train it again", now=now)  # the data it was trained on: kept
    other = _folder(tmp_path / "other", data_sha256="b" * 64)
    unrecorded = _folder(tmp_path / "unrecorded")
    unreadable = _folder(tmp_path / "unreadable")
    (unreadable / "provenance.json").write_text("{")
    for folder in (other, unrecorded, unreadable):
        with pytest.raises(runs.OtherData) as refused:
            runplan.refuse_other_data(params, [same, folder], "train it again", now=now)
        assert refused.value.run_dir == folder
    runplan.refuse_other_data({"data_path": None}, [unrecorded], "train it again", now=now)  # no file to check


def test_a_plan_with_parameters_offers_the_stopped_run_beside_one_not_started(tmp_path):
    """A stopped run with its checkpoint beside a run not yet started, the wanted parameters given: the plan refuses
    the call naming the run not started, and offers the stopped one to continue by itself (continuable), as it
    does without parameters; the run not started has no parameters to differ in."""
    want = {"epochs": 5}
    stopped = _folder(tmp_path / "stopped", "stopped", params=want)
    (stopped / runs.CHECKPOINT).write_bytes(b"state")
    absent = tmp_path / "absent"
    for params in (None, [want, want]):
        with pytest.raises(runs.RunExists) as refused:
            runplan.plan_runs([stopped, absent], params=params)
        assert (refused.value.run_dir, refused.value.status) == (absent, "absent")
        assert refused.value.continuable == (stopped,), params
    assert runplan.plan_runs([stopped], params=[want]) == "resume"
    with pytest.raises(runs.RunExists) as refused:  # other parameters: refused naming the stopped run
        runplan.plan_runs([stopped, absent], params=[{"epochs": 6}, want])
    assert refused.value.run_dir == stopped and refused.value.continuable == ()
