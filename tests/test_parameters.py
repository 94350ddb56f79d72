"""The one grammar of a parameter's value written as text (nclib.parameters.parse_value, parse_setting): lists in
brackets, numbers, booleans and none, the text keys kept as text, the refusals by name; and the scripts that take
``--set NAME=VALUE`` (scripts/stability_runs.py, scripts/figure_notebook.py) reading one word to one value; the
reference code's decays, K x 1e-5, that the decays "reference" name."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nclib import parameters
from nclib.grid import parse_grid
from nclib.parameters import parse_setting, parse_value

from test_gpu_scripts import _script

stability_runs = _script("stability_runs")
figure_notebook = _script("figure_notebook")


@pytest.mark.parametrize("text, value", [
    ("[6,3,2]", [6, 3, 2]),
    ("[ 1e-3 , reference ]", [1e-3, "reference"]),
    ("[]", []),
    ("[ ]", []),  # the spaces inside an empty list dropped as around any value
    ("[1,[ ],[ 2 ]]", [1, [], [2]]),
    ("[1,[2,[3,4]],[]]", [1, [2, [3, 4]], []]),
    ("12", 12),
    ("-3", -3),
    ("1e-5", 1e-5),
    ("0.5", 0.5),
    ("true", True),
    ("False", False),
    ("none", None),
    ("NONE", None),
    ("[true,none]", [True, None]),
    ("full", "full"),
    ("  7  ", 7),
    ("+2.", 2.0),
    (".5e+2", 50.0),
    ("nan", "nan"),  # only decimal numbers in ASCII digits are numbers
    ("inf", "inf"),
    ("1_000", "1_000"),
    ("\u0661\u0662", "\u0661\u0662"),
])
def test_values_are_lists_numbers_booleans_none_or_text(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name, text, value", [
    ("run_name", "007", "007"),          # a folder name, not the int 7
    ("run_tag", "1e3", "1e3"),
    ("data_path", "none", None),
    ("data_path", "None", None),
    ("data_path", "/data/a b.npz", "/data/a b.npz"),
    ("precision", "tf32", "tf32"),
    ("device", "true", "true"),          # a name, never a boolean
    ("out_dir", "runs/a[1]", "runs/a[1]"),  # a bracket inside a path's text
    ("data_path", "[a.npz,007]", ["a.npz", "007"]),  # a list's items follow the same rule
    ("width", "007", 7),                 # not a text key: a number
    ("lam_W", "reference", "reference"),
])
def test_text_keys_keep_their_text(name, text, value):
    assert (name in parameters.TEXT_KEYS) == (name not in ("width", "lam_W"))
    got = parse_value(text, name)
    assert got == value and type(got) is type(value)


def test_a_setting_splits_at_the_first_equals_sign():
    assert parse_setting("run_name=007") == ("run_name", "007")
    assert parse_setting("data_path=none") == ("data_path", None)
    assert parse_setting("precision=tf32") == ("precision", "tf32")
    assert parse_setting(" counts = [500,100,20]") == ("counts", [500, 100, 20])
    assert parse_setting("lr_milestones=[6000]") == ("lr_milestones", [6000])
    assert parse_setting("out_dir=a=b") == ("out_dir", "a=b")


@pytest.mark.parametrize("item, flag, named", [
    ("width", "--set", "--set width"),                # no '='
    ("=32", "--set", "--set =32"),                    # no name
    ("  =32", "--levers", "--levers"),
    ("width=", "--set", "--set width"),               # no value
    ("width=  ", "--set", "--set width"),
    ("counts=[6,3", "--set", "--set counts"),         # unbalanced brackets
    ("counts=[6,3]]", "--set", "--set counts"),
    ("counts=6]", "--set", "--set counts"),
    ("counts=[[6,3],2", "--set", "--set counts"),
    ("counts=[6,,3]", "--set", "--set counts"),       # an empty item
    ("counts=[6,3,]", "--set", "--set counts"),
    ("counts=[6,[],[,]]", "--set", "--set counts"),
    ("counts=[6][3]", "--set", "--set counts"),       # text after the list
])
def test_bad_settings_are_refused_by_name(item, flag, named):
    with pytest.raises(ValueError, match=named):
        parse_setting(item, flag)


def test_settings_of_a_repeated_option_become_one_dict():
    got = parameters.parse_settings(["width=32", "counts=[5,3]", "data_path=none", "width=16"])
    assert got == {"width": 16, "counts": [5, 3], "data_path": None}  # the later width replaces the earlier
    assert parameters.parse_settings([]) == {}
    with pytest.raises(ValueError, match="--set epochs: expected NAME=VALUE"):
        parameters.parse_settings(["width=32", "epochs"])
    with pytest.raises(ValueError, match=r"--levers counts .*unbalanced"):
        parameters.parse_settings(["counts=[6,3"], "--levers")
    with pytest.raises(ValueError, match="--set: a list of NAME=VALUE settings expected"):
        parameters.parse_settings("width=32")


def test_bad_values_are_refused_by_name():
    with pytest.raises(ValueError, match="counts"):
        parse_value("[1,2", "counts")
    with pytest.raises(ValueError, match="lam_W"):
        parse_value("", "lam_W")
    with pytest.raises(ValueError, match="data_path"):
        parse_value("[a,", "data_path")
    with pytest.raises(ValueError, match="counts"):
        parse_value(12, "counts")
    with pytest.raises(ValueError, match="--grid seed"):
        parameters.split_items("0,,1", "--grid seed")
    with pytest.raises(ValueError, match="^--grid seed .*an empty item"):  # blank is empty too
        parameters.split_items("0, ,1", "--grid seed")
    assert parameters.split_items("1,[2,3],[[4]]") == ["1", "[2,3]", "[[4]]"]
    # a ']' before its '[' is unbalanced though the count comes out even, also in a text key's --grid values
    with pytest.raises(ValueError, match=r"^--grid class_order .*unbalanced"):
        parameters.split_items("]a[,b", "--grid class_order")
    with pytest.raises(ValueError, match=r"^--grid class_order .*unbalanced"):
        parse_grid(["class_order=]a[,b"])


# the words scripts/gpu_figures.sh passes to both scripts (EXTRA_SETS, the data, the device), and some that the
# two scripts' old grammars read differently (JSON in the one, parse_scalar in the other)
WORDS = ["epochs=10", "metric_every=1", "width=32", "lr=0.001", "lam_W=1e-5", "data_path=none", "device=cpu",
         "precision=tf32", "progress=false", "counts=[6,3,2]", "batch_size=4", "lr_milestones=[6000]", "run_tag=007"]


def test_the_stability_runs_and_the_figure_parameters_read_a_word_alike(monkeypatch, tmp_path, capsys):
    sets = [arg for w in WORDS for arg in ("--set", w)]
    taken = {}

    class Stop(Exception):
        pass

    def pair_kwargs(seed, out_dir=None, **overrides):  # the overrides the script read, then no training
        taken.update(overrides)
        raise Stop

    monkeypatch.setattr(stability_runs.stability, "pair_kwargs", pair_kwargs)
    with pytest.raises(Stop):
        stability_runs.main(["--seeds", "0", "--out", str(tmp_path), *sets])
    assert figure_notebook.main(["params", "1", *sets]) == 0
    printed = json.loads(capsys.readouterr().out)
    want = dict(parse_setting(w) for w in WORDS)
    assert taken == want
    assert {k: printed[k] for k in want} == want
    assert printed["data_path"] is None and printed["run_tag"] == "007" and printed["lr_milestones"] == [6000]
    assert isinstance(printed["lr"], float) and printed["counts"] == [6, 3, 2]


@pytest.mark.parametrize("word", ["width", "width=", "=32", "counts=[6,3"])
def test_both_scripts_refuse_a_bad_word_before_any_work(monkeypatch, tmp_path, capsys, word):
    def pair_kwargs(*args, **kwargs):
        raise AssertionError("a refused --set reached the runs")

    monkeypatch.setattr(stability_runs.stability, "pair_kwargs", pair_kwargs)
    with pytest.raises(SystemExit) as exc:  # the stability runs' refusals: one line on stderr, status 2
        stability_runs.main(["--seeds", "0", "--out", str(tmp_path), "--set", word])
    assert exc.value.code == 2 and "--set" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--set"):
        figure_notebook.main(["params", "1", "--set", word])


SMALL = dict(dataset="synthetic", counts=[5, 3], device="cpu", batch_size="full")


@pytest.mark.parametrize("bad, named", [
    (dict(selection="frist"), "selection"),
    (dict(normalization="zscore"), "normalization"),
    (dict(class_order="up"), "class_order"),
    (dict(dim=0), "dim"),
    (dict(spread=-1.0), "spread"),
    (dict(counts=[0, 2, 1]), "counts"),
    (dict(dataset="cifar10", counts=[5] * 11), "counts has 11 classes but cifar10 has 10"),
    (dict(divergence_factor=1.0), "divergence_factor must be above 1"),
    (dict(divergence_factor=0.5), "divergence_factor must be above 1"),
    (dict(lam_W=[1e-3, 1e-3], L=3), "lam_W"),
    (dict(lam_backbone=-1.0), "^lam_backbone must be a finite non-negative number"),
    (dict(lam_backbone=float("nan")), "^lam_backbone must be a finite non-negative number"),
    (dict(lam_backbone="0.1"), "^lam_backbone must be a non-negative number"),  # text is not read as a number
    (dict(class_order="descending"), "class_order orders a preset's counts"),  # counts [5, 3] are the order
    (dict(batch_size=9), "batch_size 9 is larger than the N = 8 training samples"),
    (dict(seed=2 ** 64), r"seed must be below 2\*\*64"),
    (dict(device="cuda:x"), "device must be"),
    (dict(device="cuda:"), "^device must be"),  # no card's index
    (dict(feature_dim=0), "^feature_dim must be a positive integer, got 0"),
    (dict(feature_dim=2.5), "^feature_dim must be a positive integer, got 2.5"),
    (dict(feature_dim=True), "^feature_dim must be a positive integer, got True"),
    (dict(device="gpu"), "device must be"),
    (dict(bias=1), "bias must be True or False"),
    (dict(cuda_graph="yes"), "cuda_graph must be 'auto', True or False"),
    (dict(cuda_graph=True), "cuda_graph=True asks for the step captured as a CUDA graph, which needs a GPU"),
    (dict(resume=True, overwrite=True), "resume=True continues the run in its folder, overwrite=True replaces it"),
    (dict(data_path="cifar.npz"), "the synthetic Gaussian mixture is drawn from the seed"),
    (dict(lr_milestones=[100, 100]), "^lr_milestones must not repeat an epoch"),
    (dict(lr_milestones={100: 1}), "^lr_milestones must be a list of epochs, got the mapping"),
    (dict(lr_milestones="100"), "^lr_milestones must be a positive integer"),
    (dict(out_dir=["a"]), "^out_dir must be the path of a folder"),  # was written as the folder "['a']"
    (dict(out_dir=5), "^out_dir must be the path of a folder"),
    (dict(out_dir=""), "^out_dir must be the path of a folder"),  # the current directory
    (dict(out_dir=" "), "^out_dir must be the path of a folder"),
    (dict(out_dir=b"runs"), "^out_dir must be the path of a folder"),
    (dict(run_name="a" * 256), "^run_name must be at most 255 bytes"),  # was OSError: File name too long
    (dict(run_name="\u00e9" * 128), "^run_name must be at most 255 bytes"),  # 128 characters, 256 bytes in UTF-8
    (dict(run_name="\ud800"), "^run_name must be a folder name"),  # no file system stores a lone surrogate
])
def test_a_parameter_set_is_refused_by_name_before_any_work(bad, named):
    """Every data argument is checked with the rest, so that a sweep refuses a bad point before any worker loads
    data (nclib.parameters.check_params, nclib.data.check_load_args)."""
    with pytest.raises(ValueError, match=named):
        parameters.check_params(**{**SMALL, **bad})


def test_milestones_are_distinct_positive_epochs_sorted():
    """check_milestones, the one check of the schedule's epochs (check_params and nclib.engine.lr_at): None is no
    drop, one epoch a list of it, any sequence of distinct epochs a sorted list of ints; refused by the name given."""
    assert parameters.check_milestones(None) == []
    assert parameters.check_milestones(6000) == [6000]
    assert parameters.check_milestones((4, 2)) == parameters.check_milestones(np.array([4, 2])) == [2, 4]
    assert all(type(m) is int for m in parameters.check_milestones(np.array([4, 2])))
    for bad, words in (([5, 5], "must not repeat an epoch"), ({5: 1}, "must be a list of epochs"),
                       ({3, 1}, "must be a list of epochs, got the set"),
                       ([0], "must be a positive integer"), ("6000", "must be a positive integer"),
                       ([2.5], "must be a positive integer")):
        with pytest.raises(ValueError, match=f"^milestones {words}"):
            parameters.check_milestones(bad, "milestones")


@pytest.mark.parametrize("key", ["dataset", "normalization", "selection", "class_order", "precision", "init"])
def test_a_word_given_as_an_array_is_refused_by_name(key):
    """A parameter that takes one word is refused by name when given a numpy array of words, which ``in`` would
    compare element by element (numpy's "truth value is ambiguous" refusal names no parameter)."""
    with pytest.raises(ValueError, match=f"^{key} must be one of"):
        parameters.check_params(**{**SMALL, key: np.array(["reference", "random"])})


def test_out_dir_and_run_name_at_their_limits():
    """out_dir is a str or a path, recorded as its text; a run name is one folder name of at most 255 bytes, the
    names made from a run tag counted whole (the tag and its "-L<L>")."""
    import pathlib

    assert parameters.check_params(**SMALL, out_dir=pathlib.Path("runs") / "a")["out_dir"] == "runs/a"
    assert parameters.check_params(**SMALL, out_dir="runs/a")["out_dir"] == "runs/a"
    assert parameters.check_params(**SMALL, run_name="a" * 255)["run_name"] == "a" * 255
    assert parameters.check_params(**SMALL, run_name="\u00e9" * 127)["run_name"] == "\u00e9" * 127  # 254 bytes
    assert parameters.run_names([1], "t" * 252) == ["t" * 252 + "-L1"]
    with pytest.raises(ValueError, match="^run_name must be at most 255 bytes"):
        parameters.run_names([1, 10], "t" * 252)  # "-L10" makes the second name 256 bytes
    assert parameters.check_out_dir(pathlib.Path("x")) == "x"


def test_a_card_this_machine_lacks_is_refused_by_name(monkeypatch):
    """The fault: device "cuda:7" passed wherever torch saw any GPU, and torch refused it later, building the
    engine, with a traceback ("invalid device ordinal") instead of the refusal of an argument.  Now the index is
    checked against the cards torch sees here; a sweep planned for workers elsewhere (cuda=True) leaves it to
    them."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for device in ("cuda", "cuda:0", "cuda:1", "auto"):
        assert parameters.check_params(**{**SMALL, "device": device})["device"] == device
    for device in ("cuda:2", "cuda:7", "cuda:10"):
        with pytest.raises(ValueError, match=f"^device '{device}' asked for, but torch sees 2 CUDA device"):
            parameters.check_params(**{**SMALL, "device": device})
        assert parameters.checked({**SMALL, "device": device}, cuda=True)["device"] == device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match="^device 'cuda:0' asked for, but torch sees no CUDA device"):
        parameters.check_params(**{**SMALL, "device": "cuda:0"})


def test_a_machine_said_to_have_no_gpu_refuses_a_gpu_device(monkeypatch):
    """checked(params, cuda=False) checks for a machine without a CUDA device whatever torch sees here: a GPU
    named is refused, "auto" and "cpu" taken; cuda=True takes a GPU without asking torch, but never "cuda:",
    which names no card."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for device in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match=f"^device '{device}' asked for, but torch sees no CUDA device"):
            parameters.checked({**SMALL, "device": device}, cuda=False)
        assert parameters.checked({**SMALL, "device": device}, cuda=True)["device"] == device
    for device in ("auto", "cpu"):
        assert parameters.checked({**SMALL, "device": device}, cuda=False)["device"] == device
    for cuda in (True, False, None):
        with pytest.raises(ValueError, match="^device must be 'auto', 'cpu', 'cuda' or 'cuda:i', got 'cuda:'"):
            parameters.checked({**SMALL, "device": "cuda:"}, cuda=cuda)

def test_counts_given_as_whole_numbers_are_one_list_of_ints():
    """Class counts are checked as every function of counts checks them (whole numbers such as 4.0 are counts) and
    recorded as ints: [4.0, 2.0] is the run of [4, 2] (the fault: recorded as floats, a sweep planned two folders
    for the one run); a fraction is refused by name, as before."""
    import numpy as np

    for given in ([8.0, 4.0, 2.0], (8, 4, 2), np.array([8, 4, 2]), np.array([8.0, 4.0, 2.0]), [np.int64(8), 4, 2.0]):
        counts = parameters.check_params(**{**SMALL, "counts": given})["counts"]
        assert counts == [8, 4, 2] and all(type(c) is int for c in counts)
    assert parameters.check_params(**{**SMALL, "counts": None})["counts"] is None  # the data set's own preset
    with pytest.raises(ValueError, match="counts must hold integer class counts"):
        parameters.check_params(**{**SMALL, "counts": [8.5, 4, 2]})


def test_equal_decays_on_every_layer_are_one_number():
    """lam_W given once or once per layer, the same decays: one run, recorded alike (resume, plans and sweeps
    compare the recorded value)."""
    one = parameters.check_params(**SMALL, L=3, lam_W=1e-3)
    assert parameters.check_params(**SMALL, L=3, lam_W=[1e-3] * 3)["lam_W"] == one["lam_W"] == 1e-3
    assert parameters.check_params(**SMALL, L=1, lam_W=[2e-3])["lam_W"] == 2e-3
    assert parameters.check_params(**SMALL, L=2, lam_W=[1e-3, 2e-3])["lam_W"] == [1e-3, 2e-3]


def test_the_largest_seed_and_numpy_bools_pass():
    p = parameters.check_params(**SMALL, seed=2 ** 64 - 1, bias=np.bool_(False), cuda_graph=np.bool_(False))
    assert p["seed"] == 2 ** 64 - 1 and p["bias"] is False and p["cuda_graph"] is False
    # a GPU-only setting passes for a machine with a GPU (a sweep planned here for workers there)
    assert parameters.checked({**SMALL, "device": "cuda", "cuda_graph": np.bool_(True)}, cuda=True)["cuda_graph"] is True
    assert parameters.check_params(**{**SMALL, "batch_size": 8})["batch_size"] == 8  # N = 8: one batch


def test_what_defines_a_run_leaves_out_how_and_where_it_is_trained():
    p = parameters.check_params(**SMALL, out_dir="runs", run_name="a", max_train_s=5.0)
    d = parameters.defining_params(p)
    assert not set(d) & set(parameters.EXECUTION_KEYS + parameters.PLACE_KEYS)
    assert not set(d) & {"device", "download", "verify_checksums"}  # where it trains, how the data are fetched
    assert d["counts"] == [5, 3] and "data_path" in d and d["dim"] == 32  # the mixture's dimension shapes it
    cifar = parameters.check_params(dataset="cifar10", counts=[5] * 10, batch_size=5, device="cpu", data_path=__file__)
    assert not {"dim", "spread"} & set(parameters.defining_params(cifar))  # they shape the synthetic data only
    letters = parameters.check_params(dataset="letters-synthetic", counts=[2] * 26, batch_size=4, device="cpu")
    assert "data_path" not in parameters.defining_params(letters)  # rendered now or read ahead: the same images
    with pytest.raises(ValueError, match="p must be a checked parameter set"):
        parameters.defining_params({"dataset": "synthetic"})


#: The parameters that say what a run is, written out (not derived from nclib.parameters): the data, the network,
#: the objective (4.3) with its decays, the optimisation and its schedule, the seed, the products' precision and the
#: history's rows (metric_every; divergence_factor, where a run stops).
DEFINING = ("dataset", "data_path", "counts", "class_order", "selection", "normalization", "dim", "spread",
            "L", "bias", "width", "depth", "feature_dim", "init", "epochs", "batch_size",
            "lam_W", "lam_H", "lam_backbone", "lr", "lr_milestones", "lr_gamma", "seed", "precision",
            "metric_every", "divergence_factor")


def test_the_defining_parameters_are_exactly_these_for_each_dataset():
    """The whole set, so that a defining key dropped (a run resumed or skipped although it differs there, such as
    lam_backbone, the backbone's decay) or an execution key added fails: for the synthetic mixture all of
    DEFINING; for CIFAR-10 all but dim and spread; for the letters stand-in also not data_path."""
    synthetic = parameters.check_params(**SMALL)
    assert list(parameters.defining_params(synthetic)) == list(DEFINING)
    cifar = parameters.check_params(dataset="cifar10", counts=[5] * 10, batch_size=5, device="cpu", data_path=__file__)
    assert set(parameters.defining_params(cifar)) == set(DEFINING) - {"dim", "spread"}
    letters = parameters.check_params(dataset="letters-synthetic", counts=[2] * 26, batch_size=4, device="cpu")
    assert set(parameters.defining_params(letters)) == set(DEFINING) - {"dim", "spread", "data_path"}
    # the values are the set's own
    q = parameters.check_params(**SMALL, lam_backbone=1e-4, metric_every=7)
    d = parameters.defining_params(q)
    assert d["lam_backbone"] == 1e-4 and d["metric_every"] == 7 and d == {k: q[k] for k in DEFINING}


def test_checking_parameters_needs_no_torch():
    """The figures' configuration and the sweeps' plans check parameters without importing torch."""
    import subprocess
    import sys

    code = ("import sys, nclib.parameters as p, nclib.sweep as s; "
            "p.check_params(dataset='synthetic', counts=[5, 3], batch_size='full'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_parameter_list_imports_no_closed_forms():
    """Reading the decays "reference" takes the reference code's convention from this module, not the closed forms
    of nclib.ufm, which bring in Lemma A.2's scipy.optimize."""
    import subprocess
    import sys

    code = ("import sys, nclib.parameters; "
            "print([m for m in ('nclib.ufm', 'nclib.lemmas', 'scipy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reference_decay_is_k_times_the_reference_codes_decays():
    """lam_W = K wd and lam_H = K fd, each from its own decay; reference_decay(26) is 2.6e-4 exactly, not
    2.6000000000000003e-4."""
    assert parameters.from_reference_decay(1e-5, 3e-5, 10) == pytest.approx((1e-4, 3e-4), rel=1e-15, abs=0)
    assert 26 * parameters.REFERENCE_DECAY != 2.6e-4  # what the rounding is for
    assert parameters.reference_decay(26) == 2.6e-4 and parameters.reference_decay(10) == 1e-4
    q = parameters.check_params(dataset="synthetic", counts=[5, 3, 2], batch_size="full")
    assert q["lam_W"] == q["lam_H"] == parameters.reference_decay(3) == 3e-5  # what "reference" resolves to


@pytest.mark.parametrize("call, name", [
    (lambda: parameters.from_reference_decay(-1e-5, 1e-5, 10), "weight_decay"),
    (lambda: parameters.from_reference_decay(1e-5, float("nan"), 10), "feature_decay"),
    (lambda: parameters.from_reference_decay(1e-5, 1e-5, 0), "K"),
    (lambda: parameters.from_reference_decay(1e-5, 1e-5, 10 ** 400), "K"),  # beyond float64, once an OverflowError
    (lambda: parameters.reference_decay(2.5), "K"),
])
def test_bad_reference_decays_are_refused_by_name(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()


def test_unshared_keys_are_what_runs_trained_together_may_not_differ_in():
    """nclib.parameters.unshared_keys, the one rule of run_many and of grouped Adam: the head, decays,
    initialization, precision and folders may differ; anything else (here the learning rate and the seed) may not,
    and with one Adam step for all the precision may not either."""
    kw = dict(dataset="synthetic", counts=[4, 2], batch_size="full", device="cpu", progress=False)
    base = parameters.check_params(**kw)
    members = [parameters.check_params(**kw, L=3, bias=False, lam_W=1e-2, precision="bf16", run_name="b")]
    assert parameters.unshared_keys([base, *members]) == []
    assert parameters.unshared_keys([base, *members], grouped=True) == ["precision"]
    other = parameters.check_params(**kw, seed=1, lr=1e-2)
    assert parameters.unshared_keys([base, other]) == [k for k in parameters.DEFAULTS if k in ("lr", "seed")]
    assert parameters.unshared_keys([base]) == []
    assert parameters.unshared_keys((base, other)) == parameters.unshared_keys([base, other])
    # refused naming the argument, where they raised TypeError (None) or KeyError (a dict of other keys)
    for bad in (None, base, [base, None], [base, {"lr": 1e-2}], [{}]):
        with pytest.raises(ValueError, match="^plist must"):
            parameters.unshared_keys(bad)
    with pytest.raises(ValueError, match="^grouped must be True or False"):
        parameters.unshared_keys([base, *members], grouped=1)
    assert parameters.unshared_keys([base, *members], grouped=np.True_) == ["precision"]


def test_a_training_run_needs_two_classes():
    """With K = 1 every feature is its class mean: NC1 would be 0 for any network, so a run of one class is refused
    naming counts, before anything is loaded or written (the sweeps' check on another machine too)."""
    for counts in ([6], (5,)):
        with pytest.raises(ValueError, match=r"^counts must give at least two classes \(K >= 2\)"):
            parameters.check_params(**{**SMALL, "counts": counts})
    with pytest.raises(ValueError, match="^counts must give at least two classes"):
        parameters.checked({**SMALL, "counts": [6]}, cuda=True)
    assert parameters.check_params(**{**SMALL, "counts": [6, 1]})["counts"] == [6, 1]


def test_one_line_errors_refuses_in_one_line_with_status_2(capsys):
    """nclib.parameters.one_line_errors: argparse's own refusals (an unknown flag, a bad int, a missing value) and a
    command line's parser.error print one line on stderr, naming the program and the error, and exit with status 2;
    --help is unchanged (status 0, the flags listed)."""
    import argparse

    ap = parameters.one_line_errors(argparse.ArgumentParser(prog="prog"))
    ap.add_argument("--n", type=int)
    for argv in (["--bogus", "1"], ["--n", "x"], ["--n"]):
        with pytest.raises(SystemExit) as stop:
            ap.parse_args(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("prog: error: ") and "--help" in err, err
    with pytest.raises(SystemExit) as stop:
        ap.error("--n must be positive")
    assert stop.value.code == 2 and capsys.readouterr().err.startswith("prog: error: --n must be positive")
    with pytest.raises(SystemExit) as stop:
        ap.parse_args(["--help"])
    assert stop.value.code == 0 and "--n" in capsys.readouterr().out
