"""Tests of nclib.figures on small run folders made here with a tiny nclib.train.run (seconds in all)."""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nclib  # noqa: E402
import nclib.data  # noqa: E402
import nclib.figures as figures  # noqa: E402
import nclib.figures.analysis  # noqa: E402
import nclib.geometry  # noqa: E402
import nclib.imbalance  # noqa: E402
import nclib.parameters  # noqa: E402
import nclib.plotting  # noqa: E402
from nclib import minority  # noqa: E402
import nclib.train  # noqa: E402
import nclib.ufm  # noqa: E402
from nclib.rounding import (at_least, at_most, number, reads_as, significant_figures, written,  # noqa: E402
                            written_column)

#: A tiny scale: the paper's CIFAR-10 profile divided by 100 (1,1,2,2,...,5,5; N = 30), a small network.
TINY = dict(divisor=100, width=32, depth=2, epochs=120, batch_size="full", lr=3e-3, lr_milestones=[80],
            lr_gamma=0.1, lam_W=1e-3, lam_H=1e-3, metric_every=20)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Figure 1 and Figure 3 run folders at the tiny scale on a fake CIFAR-10 .npz (structured class signal), recorded
    as made from a clean commit, as committed runs are (:func:`_as_committed`)."""
    root = tmp_path_factory.mktemp("figures")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 6)
    centers = rng.integers(40, 215, size=(10, 32, 32, 3))
    x = np.clip(centers[y] + rng.normal(0, 20, size=(y.size, 32, 32, 3)), 0, 255).astype(np.uint8)
    npz = root / "fake_cifar.npz"
    np.savez(npz, x_train=x, y_train=y)
    mp = pytest.MonkeyPatch()
    mp.setitem(figures.SCALES, "tiny", TINY)
    for fig in (1, 3):
        params = figures.figure_parameters(fig, "tiny", data_path=str(npz), progress=False,
                                           out_dir=str(root / "tiny" / f"fig{fig}"))
        if fig == 1:  # side by side, as the training notebook trains a figure
            nclib.train.run_many([figures.train_kwargs(params, L) for L in params["L_values"]])
        else:  # one after another
            for L in params["L_values"]:
                nclib.train.run(**figures.train_kwargs(params, L))
    for prov in root.glob("tiny/fig*/fig*-L*/provenance.json"):
        _as_committed(prov)
    yield root
    mp.undo()


def _as_committed(path) -> None:
    """Record the run whose provenance is at ``path`` as made from a clean commit (``git_dirty`` False at the start
    and in every segment), as the figures' checks ask of committed runs: the tests' checkout may have uncommitted
    changes, or no git (then a made-up commit hash, which no check can look up without git)."""
    prov = json.loads(path.read_text())
    commit = prov.get("git_commit")
    prov.update(git_dirty=False, git_dirty_paths=[], git_diff_sha256=None,
                git_commit=commit if isinstance(commit, str) and re.fullmatch("[0-9a-f]{40}", commit) else "0" * 40,
                segments=[{**seg, "git_dirty": False, "git_diff_sha256": None} for seg in prov.get("segments", [])])
    path.write_text(json.dumps(prov))


@pytest.fixture()
def tiny_scale(monkeypatch):
    monkeypatch.setitem(figures.SCALES, "tiny", TINY)


# ------------------------------------------------------------------------------------------ configuration

def test_gpu_configuration_is_section_5():
    for k, f in figures.FIGURES.items():
        p = figures.figure_parameters(k, "gpu")
        assert (p["epochs"], p["width"], p["depth"], p["batch_size"], p["lr"]) == (12000, 2048, 6, 128, 1e-4)
        assert p["L_values"] == [1, 3, 6] and p["bias"] == (k in (1, 2)) and p["smoke"] is False
        n = np.array(p["counts"])
        assert sorted(n.tolist()) == sorted(nclib.imbalance.class_counts(nclib.imbalance.PROFILES[f.preset]).tolist())
    assert figures.FIGURES[2].dataset == figures.FIGURES[4].dataset == "letters-synthetic"
    # the reference class order: CIFAR-10 ascending by class index, letters descending (a is the major class)
    assert figures.figure_counts(1)[:2] == [100, 100] and figures.figure_counts(2)[0] == 1500


def test_parameters_derive_from_the_engine_defaults():
    """One parameter list: every engine parameter but the per-run ones is a notebook parameter, at the engine's
    default unless the scale or the figure sets it."""
    figure_keys = {"dataset", "counts", "bias", "out_dir"}
    for scale, changes in figures.SCALES.items():
        p = figures.figure_parameters(1, scale)
        assert set(p) == (set(nclib.train.DEFAULTS) - set(figures.PER_RUN_KEYS)) | {"smoke", "L_values", "run_tag"}
        for key, default in nclib.train.DEFAULTS.items():
            if key in figures.PER_RUN_KEYS or key in figure_keys:
                continue
            want = changes.get(key, default)
            assert p[key] == (list(want) if isinstance(want, tuple) else want), key
    assert figures.SCALES["gpu"] == {"divisor": 1}  # the paper's settings are the engine's defaults
    assert figures.scale_settings("cpu-scale")["width"] == 256 and figures.scale_settings("gpu")["width"] == 2048


def test_cpu_scale_divides_the_counts_by_ten():
    for k in figures.FIGURES:
        gpu, cpu = np.array(figures.figure_counts(k, "gpu")), np.array(figures.figure_counts(k, "cpu-scale"))
        np.testing.assert_array_equal(gpu, 10 * cpu)
    p = figures.figure_parameters(3, "cpu-scale")
    assert p["out_dir"].endswith("results/figures/cpu-scale/fig3") and p["run_tag"] == "fig3"
    assert figures.figure_parameters(1, "gpu")["out_dir"].endswith("results/figures/gpu/fig1")


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="fig must be one of"):
        figures.figure_parameters(5)
    with pytest.raises(ValueError, match="fig must be one of"):
        figures.figure_parameters(True)
    with pytest.raises(ValueError, match="scale must be one of"):
        figures.figure_parameters(1, "huge")
    with pytest.raises(ValueError, match="scale must be one of"):
        figures.figure_parameters(1, "paper")  # one name per scale
    with pytest.raises(ValueError, match="unknown notebook parameter"):
        figures.figure_parameters(1, "gpu", epoch=10)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        figures.figure_parameters(1, "gpu", epochs=0)
    # every setting the engine would refuse for one of the runs, refused before a notebook starts, by name
    for bad, name in ((dict(lr=-1), "lr"), (dict(width=0), "width"), (dict(counts=[0, 1]), "counts"),
                      (dict(counts=[5]), "counts"), (dict(lam_H=-1.0), "lam_H"), (dict(batch_size=0), "batch_size"),
                      (dict(batch_size=4000), "batch_size"), (dict(lr_milestones=[0]), "lr_milestones"),
                      (dict(precision="fp8"), "precision"), (dict(dataset="mnist"), "dataset"),
                      (dict(class_order="random"), "class_order"), (dict(L_values=[]), "L_values"),
                      (dict(L_values=[1, 0]), "L_values"), (dict(L_values=[3, 3]), "L_values"),
                      (dict(run_tag="a/b"), "run_tag"), (dict(run_tag=7), "run_tag"), (dict(smoke="no"), "smoke")):
        with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b"):
            figures.figure_parameters(1, "gpu", **bad)
    # a run for a GPU is checked as one: device "cuda" passes on a machine without a GPU
    assert figures.figure_parameters(1, "gpu", device="cuda", epochs=7, lr=3e-4)["lr"] == 3e-4
    for bad in (["gpu"], None, 3, "GPU"):  # not a scale's name, also when not a str at all
        with pytest.raises(ValueError, match="scale must be one of"):
            figures.check_scale(bad)
        with pytest.raises(ValueError, match="scale must be one of"):
            figures.figure_parameters(1, bad)
    with pytest.raises(ValueError, match="smoke"):
        figures.train_kwargs(dict(figures.figure_parameters(1), smoke=True), 1)
    with pytest.raises(ValueError, match="key 'acc'"):
        figures.first_epoch({"epoch": np.arange(3)}, "acc", 1.0)
    h = {"epoch": np.arange(3), "train_acc": np.array([0.5, 1.0, 1.0])}
    assert (figures.first_epoch(h, "train_acc", 1.0), figures.settled_epoch(h, "train_acc", 1.0)) == (1, 1)
    for fn in (figures.first_epoch, figures.settled_epoch):  # a NaN threshold would read as "never reached"
        for bad in (np.nan, None, "1.0", True, np.True_):
            with pytest.raises(ValueError, match="threshold must be a finite number"):
                fn(h, "train_acc", bad)
        assert fn(h, "train_acc", np.float64(1.0)) == 1
    with pytest.raises(ValueError, match=r"L must be one of the figure's L_values \[1, 3, 6\], got 2"):
        figures.train_kwargs(figures.figure_parameters(1), 2)
    with pytest.raises(ValueError, match="key 'acc'"):
        figures.settled_epoch({"epoch": np.arange(3)}, "acc", 1.0)
    h = _history([1.0, 0.5, 0.4])
    with pytest.raises(ValueError, match="^history has no loss column"):
        figures.largest_rise(h, "loss")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lr'\]"):
        figures.largest_rise({k: v for k, v in h.items() if k != "lr"})
    with pytest.raises(ValueError, match="at least two finite positive values"):
        figures.largest_rise(_history([1.0, 0.0, 0.4]))
    with pytest.raises(ValueError, match="at least two finite positive values"):
        figures.largest_rise(_history([1.0]))
    for bad in (0, 0.5, 1.0):  # at or below 1 a flat stretch or a fall would count as a spike
        with pytest.raises(ValueError, match="threshold must be above 1 \\(a rise\\)"):
            figures.spikes({}, threshold=bad)
        with pytest.raises(ValueError, match="threshold must be above 1 \\(a rise\\)"):
            figures.other_spikes(h, threshold=bad)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        figures.other_spikes(h, threshold=np.inf)
    with pytest.raises(ValueError, match=r"spiked names runs L = \[6\]"):
        figures.orders_without_spikes([dict(L=1, nc1=1.0, nc3=1.0, gap=1.0, minimum=1.0)], {6: {}})
    with pytest.raises(ValueError, match="scale must be one of"):
        figures.run_folders(1, "paper")


#: The modules of nclib.figures in the order its docstring gives, each importing only those before it.
MODULE_ORDER = ("config", "load", "events", "analysis", "speed", "stability", "plots", "chapter", "summary")


def test_the_modules_import_only_those_before_them():
    """No module of nclib.figures imports one after it in MODULE_ORDER, at its top or inside a function (an import
    deferred to a call is a cycle all the same); imports for type checking only are not made at run time."""
    import ast

    folder = nclib.ROOT / "nclib" / "figures"
    assert sorted(MODULE_ORDER) == sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    later = {}
    for i, name in enumerate(MODULE_ORDER):
        tree = ast.parse((folder / f"{name}.py").read_text())
        # type-checking blocks (`if TYPE_CHECKING:`, `if typing.TYPE_CHECKING:`) are never executed
        def type_checking(node):
            return isinstance(node, ast.If) and "TYPE_CHECKING" in {getattr(node.test, k, None) for k in ("id", "attr")}
        tree.body = [node for node in tree.body if not type_checking(node)]
        used = set()
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.level == 1:  # from .x import y, and from . import x
                used |= {n.module.split(".")[0]} if n.module else {alias.name for alias in n.names}
        later[name] = sorted(used - set(MODULE_ORDER[:i]))
    assert later == {name: [] for name in MODULE_ORDER}


def test_everything_public_but_stability_is_re_exported():
    """What the package docstring says: every public name a module of nclib.figures defines (functions, classes,
    constants) but those of stability is nclib.figures.<name>, the same object."""
    import ast
    import importlib

    missing = {}
    for name in MODULE_ORDER:
        if name == "stability":
            continue
        module = importlib.import_module(f"nclib.figures.{name}")
        tree = ast.parse((nclib.ROOT / "nclib" / "figures" / f"{name}.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        missing[name] = sorted(x for x in defined if not x.startswith("_")
                               and getattr(figures, x, None) is not getattr(module, x))
    assert missing == {name: [] for name in MODULE_ORDER if name != "stability"}


def test_positive_values_and_rise_factor_refuse_what_no_rise_can_be_read_from():
    h = {"epoch": np.arange(3), "objective": np.array([3, 1, 2])}
    got = figures.positive_values(h)
    assert got.dtype == np.float64 and got.tolist() == [3.0, 1.0, 2.0]
    for bad in ([1.0], [1.0, 0.0], [1.0, np.nan], [1.0, -2.0], [1.0, np.inf]):  # no quotient of each two
        with pytest.raises(ValueError, match=r"^history\['objective'\] must hold at least two finite positive"):
            figures.positive_values({"epoch": np.arange(len(bad)), "objective": np.array(bad)})
    with pytest.raises(ValueError, match="^history has no loss column"):
        figures.positive_values(h, "loss")
    with pytest.raises(ValueError, match="^history must be a mapping"):
        figures.positive_values(None)
    assert figures.rise_factor(2) == 2.0 and figures.rise_factor(np.float64(1.5)) == 1.5
    assert type(figures.rise_factor(2)) is float
    for bad in (1, 0.5, 0, -3):  # no rise: flat stretches and falls would count
        with pytest.raises(ValueError, match=r"^threshold must be above 1 \(a rise\)"):
            figures.rise_factor(bad)
    for bad in (np.nan, np.inf, None, "2", True):
        with pytest.raises(ValueError, match="^threshold must be a finite number"):
            figures.rise_factor(bad)


def test_train_kwargs_are_accepted_by_the_engine():
    p = figures.figure_parameters(1, "gpu", data_path=str(figures.ROOT))
    kw = figures.train_kwargs(p, 6)
    assert kw["L"] == 6 and kw["run_name"] == "fig1-L6" and kw["overwrite"] is True
    checked = nclib.train.check_params(**kw)
    assert checked["epochs"] == 12000 and checked["batch_size"] == 128


def test_train_kwargs_name_the_runs_as_the_training_notebook_does():
    """One run per L of L_values, named as the notebook names it (nclib.train.run_names with the notebook's
    arguments), with the notebook's own parameters left out."""
    for k in figures.FIGURES:
        for scale in figures.SCALES:
            p = figures.figure_parameters(k, scale)
            names = nclib.train.run_names(p["L_values"], p["run_tag"], dataset=p["dataset"], bias=p["bias"],
                                          seed=p["seed"])
            assert [figures.train_kwargs(p, L)["run_name"] for L in p["L_values"]] == names == \
                [f"fig{k}-L1", f"fig{k}-L3", f"fig{k}-L6"]
            kw = figures.train_kwargs(p, 3)
            assert set(kw) == (set(p) - set(figures.NOTEBOOK_ONLY_KEYS)) | {"L", "run_name", "overwrite"}
    p = figures.figure_parameters(1, "gpu", L_values=[6, 3], run_tag="again")  # another order and tag
    assert [figures.train_kwargs(p, L)["run_name"] for L in (3, 6)] == ["again-L3", "again-L6"]


def test_train_kwargs_refuse_what_the_notebook_parameters_refuse():
    p = figures.figure_parameters(1, "gpu")
    for bad, name in (({**p, "run_tag": None}, "run_tag"), ({**p, "run_tag": ""}, "run_tag"),
                      ({k: v for k, v in p.items() if k != "run_tag"}, "run_tag"), ({**p, "lr": -1.0}, "lr"),
                      ({**p, "width": 0}, "width"), ({**p, "L_values": []}, "L_values"), (None, "params"),
                      ([("lr", 1e-4)], "params"), ({**p, "epoch": 10}, "unknown notebook parameter")):
        with pytest.raises(ValueError, match=rf"^{re.escape(name)}\b"):
            figures.train_kwargs(bad, 1)
    for L in (0, "1", 1.5, None):
        with pytest.raises(ValueError, match=r"^L\b"):
            figures.train_kwargs(p, L)


# ------------------------------------------------------------------------------------------ committed runs

def test_load_figure_reads_three_runs(tiny):
    runs = figures.load_figure(1, "tiny", root=tiny)
    assert sorted(runs) == [1, 3, 6]
    for L, run in runs.items():
        assert run.L == L and run.path.name == f"fig1-L{L}"
        assert run.history["epoch"].tolist() == [0, 20, 40, 60, 80, 100, 120]
    with pytest.raises(ValueError, match="has no runs of Figure 2"):
        figures.load_figure(2, "tiny", root=tiny)


def test_check_figure_accepts_the_configuration_and_rejects_changes(tiny, tiny_scale, tmp_path):
    runs = figures.load_figure(1, "tiny", root=tiny)
    assert figures.check_figure(runs, 1, "tiny") == {"epochs": {1: 120, 3: 120, 6: 120}}
    with pytest.raises(ValueError, match="bias = True"):
        figures.check_figure(runs, 3, "tiny")  # Figure 3 is bias-free
    # a run with another learning rate, and a run whose history stops early, are both caught
    bad = tmp_path / "tiny" / "fig1"
    shutil.copytree(tiny / "tiny" / "fig1", bad)
    p = json.loads((bad / "fig1-L3" / "params.json").read_text())
    (bad / "fig1-L3" / "params.json").write_text(json.dumps(dict(p, lr=1e-4)))
    lines = (bad / "fig1-L6" / "history.csv").read_text().splitlines()
    (bad / "fig1-L6" / "history.csv").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ValueError, match=r"L=3: lr = 0.0001.*L=6: history holds 5 metric epochs"):
        figures.check_figure(figures.load_figure(1, "tiny", root=tmp_path), 1, "tiny")


@pytest.mark.parametrize("change, named", [
    (dict(feature_dim=5), "feature_dim = 5"),
    (dict(normalization="none"), "normalization = 'none'"),
    (dict(selection="first"), "selection = 'first'"),
    (dict(lam_W=[1e-4, 1e-4, 1e-4]), r"lam_W = \[0.0001, 0.0001, 0.0001\]"),
    (dict(lr_milestones=[]), r"lr_milestones = \[\]"),
])
def test_check_figure_names_every_setting_that_differs(tiny, tmp_path, change, named):
    bad = tmp_path / "tiny" / "fig1"
    shutil.copytree(tiny / "tiny" / "fig1", bad)
    p = json.loads((bad / "fig1-L3" / "params.json").read_text())
    (bad / "fig1-L3" / "params.json").write_text(json.dumps(dict(p, **change)))
    with pytest.raises(ValueError, match="L=3: " + named):
        figures.check_figure(figures.load_figure(1, "tiny", root=tmp_path), 1, "tiny")


def test_check_run_refuses_a_folder_named_for_another_run(tiny, tiny_scale):
    """A run's folder must be fig<k>-L<L> with the run's own L, and its run_name the folder's name: a run of L = 3 in
    fig1-L6 would be read beside the run L = 3 (load_figure refuses two runs with one L)."""
    def names(problem, *words):  # the problem names the run's L, the parameter and the values, however worded
        return all(w in problem for w in ("L=3", *words))

    run = figures.load_figure(1, "tiny", root=tiny)[3]
    assert figures.check_run(run, 1, "tiny") == []
    folder, name = figures.check_run(dataclasses.replace(run, path=run.path.with_name("fig1-L6")), 1, "tiny")
    assert names(folder, "'fig1-L6'", "'fig1-L3'") and "run_name" not in folder
    assert names(name, "run_name", "'fig1-L3'", "'fig1-L6'")
    renamed, itself = figures.check_run(dataclasses.replace(run, params={**run.params, "run_name": "fig1-L6"}), 1,
                                        "tiny")
    assert names(renamed, "run_name", "'fig1-L6'", "'fig1-L3'")
    assert names(itself, "trained_with", "'fig1-L6'")  # named fig1-L6, it was trained beside fig1-L6
    assert any(names(p, "'fig1-L3'", "'fig3-L3'") for p in figures.check_run(run, 3, "tiny"))
    assert figures.check_run(dataclasses.replace(run, path=None), 1, "tiny") == []  # no folder: its name unchecked


def test_check_figure_refuses_a_run_recorded_at_another_interval(tiny, tmp_path):
    # the run's own history is complete for its interval; the figure's interval is another
    bad = tmp_path / "tiny" / "fig1"
    shutil.copytree(tiny / "tiny" / "fig1", bad)
    p = json.loads((bad / "fig1-L1" / "params.json").read_text())
    (bad / "fig1-L1" / "params.json").write_text(json.dumps(dict(p, metric_every=60)))
    lines = (bad / "fig1-L1" / "history.csv").read_text().splitlines()
    kept = [lines[0]] + [ln for ln in lines[1:] if int(float(ln.split(",")[0])) % 60 == 0]
    (bad / "fig1-L1" / "history.csv").write_text("\n".join(kept) + "\n")
    with pytest.raises(ValueError, match="L=1: metric_every = 60") as refused:
        figures.check_figure(figures.load_figure(1, "tiny", root=tmp_path), 1, "tiny")
    assert "history holds" not in str(refused.value)


def test_preferred_scale_switches_per_figure_when_its_gpu_runs_finished(tiny, tmp_path):
    assert figures.preferred_scale(1, tmp_path) == "cpu-scale"
    shutil.copytree(tiny / "tiny" / "fig3", tmp_path / "gpu" / "fig3")
    assert figures.preferred_scale(3, tmp_path) == "gpu"
    assert figures.preferred_scale(1, tmp_path) == "cpu-scale"
    # a run stopped by the time budget ("failed" in its provenance) keeps the figure on the CPU-scale runs
    prov = tmp_path / "gpu" / "fig3" / "fig3-L6" / "provenance.json"
    prov.write_text(json.dumps(dict(json.loads(prov.read_text()), status="failed")))
    assert figures.preferred_scale(3, tmp_path) == "cpu-scale"
    shutil.rmtree(tmp_path / "gpu" / "fig3" / "fig3-L6")
    assert figures.preferred_scale(3, tmp_path) == "cpu-scale"


def test_theory_matches_nclib_ufm_and_bounds_the_objective(tiny):
    for fig, bias in ((1, True), (3, False)):
        for L, run in figures.load_figure(fig, "tiny", root=tiny).items():
            th = figures.run_theory(run.params)
            n = np.array(run.params["counts"])
            assert th.bias is bias and th.L == L and th.N == 30 and th.K == 10
            st = nclib.ufm.structure(n, 1e-3, 1e-3, L, bias)
            np.testing.assert_allclose(th.s_product, st.s_product, rtol=0, atol=0)
            assert th.alive == np.count_nonzero(st.s_product > 0)
            assert th.minimum == nclib.ufm.minimum_value(n, 1e-3, 1e-3, L, bias)
            assert th.global_mean_norm == nclib.ufm.minimizer_global_mean_norm(n, 1e-3, 1e-3, L, bias)
            assert (th.global_mean_norm == 0) is bias
            if bias:
                np.testing.assert_allclose(th.b_star, n / 30, rtol=1e-15)
                assert th.alive < th.K  # Y-bar has a zero singular value: one mode always collapses
            else:
                assert th.b_star is None
            # the network's features are constrained, so its objective never goes below the UFM minimum
            assert np.all(run.history["objective"] >= th.minimum * (1 - 1e-12))
            # the accuracy of the global minimizers at the run's decays, and at decays that collapse small classes
            assert th.minimizer_accuracy == minority.minimizer_accuracy(n, 1e-3, 1e-3, L, bias) == 1.0
            strong = figures.run_theory(dict(run.params, lam_W=1e-2, lam_H=1e-2))
            want = minority.minimizer_accuracy(n, 1e-2, 1e-2, L, bias)
            assert strong.minimizer_accuracy == want and (want < 1) is (L > 1)
    with pytest.raises(ValueError, match="lam_H must be strictly positive"):
        figures.run_theory(dict(run.params, lam_H=0.0))


def test_final_rows_and_orderings(tiny):
    runs = figures.load_figure(1, "tiny", root=tiny)
    rows = figures.final_rows(runs)
    assert [r["L"] for r in rows] == [1, 3, 6]
    for r in rows:
        h = runs[r["L"]].history
        assert r["nc1"] == h["nc1"][-1] and r["train_acc"] == h["train_acc"][-1] and r["epochs"] == 120
        assert r["nc1_drop"] == h["nc1"][0] / h["nc1"][-1]
        assert r["gap"] == r["objective"] - r["minimum"] and r["gap"] >= 0
        assert r["acc100_epoch"] == figures.first_epoch(h, "train_acc", 1.0)
        assert r["acc100_stays"] == figures.settled_epoch(h, "train_acc", 1.0)
        assert r["rise"] == figures.largest_rise(h)
        assert r["wall_time_s"] > 0 and r["device"]
    order = figures.order_by(rows, "nc1")
    assert sorted(order) == [1, 3, 6]
    assert [r["nc1"] for r in sorted(rows, key=lambda r: order.index(r["L"]))] == sorted(r["nc1"] for r in rows)
    assert figures.order_by([dict(L=1, a=None), dict(L=3, a=2.0)], "a") == [3, 1]
    # a NaN of numpy's float32 (a value read from a float32 array) is last too, as the docstring says
    assert figures.order_by([dict(L=1, a=np.float32("nan")), dict(L=3, a=2.0), dict(L=6, a=1.0)], "a") == [6, 3, 1]
    assert figures.order_by([dict(L=1, a=np.float64("nan")), dict(L=3, a=np.float32(0.5))], "a") == [3, 1]
    for r in rows:  # the two keys a chapter reads beside the final values
        h = runs[r["L"]].history
        assert r["bias_error_0"] == h["bias_error"][0] and r["K"] == 10


def test_wall_time_counts_runs_trained_side_by_side_once(tiny):
    together, apart = figures.load_figure(1, "tiny", root=tiny), figures.load_figure(3, "tiny", root=tiny)
    assert [r["trained_with"] for r in figures.final_rows(together)] == [
        ["fig1-L3", "fig1-L6"], ["fig1-L1", "fig1-L6"], ["fig1-L1", "fig1-L3"]]
    assert all(r["trained_with"] == [] for r in figures.final_rows(apart))
    wall = {L: run.provenance["wall_time_s"] for L, run in together.items()}
    assert figures.wall_time_s(together) == max(wall.values())  # the three ran at the same time
    assert figures.wall_time_s(apart) == pytest.approx(sum(r.provenance["wall_time_s"] for r in apart.values()))
    assert figures.wall_time_s({1: together[1]}) == wall[1]  # a partner not among the runs is not counted
    # lists that name a partner on one side only still make one group: A -> [B], B -> [A, C], C -> [B] ran together
    # (the longest, 12 s), D alone (5 s)

    def made(run, name, seconds, partners):
        return dataclasses.replace(run, params={**run.params, "run_name": name},
                                   provenance={**run.provenance, "wall_time_s": seconds, "trained_with": partners})
    linked = {1: made(together[1], "A", 10.0, ["B"]), 3: made(together[3], "B", 12.0, ["A", "C"]),
              6: made(together[6], "C", 7.0, ["B"])}
    assert figures.wall_time_s(linked) == 12.0
    assert figures.wall_time_s({**linked, 2: made(apart[1], "D", 5.0, [])}) == 17.0
    assert figures.wall_time_s({1: linked[1], 6: linked[6]}) == 17.0  # B missing: A and C are not linked
    # a C started by another call (a partner left out of a landing, made again later) is another run named C
    later = dataclasses.replace(linked[6], provenance={**linked[6].provenance,
                                                       "started_utc": "2027-01-05T10:00:00+00:00"})
    assert figures.wall_time_s({**linked, 6: later}) == 19.0


def test_first_epoch():
    h = {"epoch": np.array([0, 10, 20, 30]), "train_acc": np.array([0.1, 0.9, 1.0, 1.0]),
         "nc1": np.array([5.0, 1.0, 0.5, 0.01])}
    assert figures.first_epoch(h, "train_acc", 1.0) == 20
    assert figures.first_epoch(h, "nc1", 0.6, above=False) == 20
    assert figures.first_epoch(h, "nc1", 1e-3, above=False) is None
    # a history without an epoch column is refused by name, as recorded_every and largest_rise refuse it
    no_epoch = {k: v for k, v in h.items() if k != "epoch"}
    for call in (lambda: figures.first_epoch(no_epoch, "train_acc", 1.0),
                 lambda: figures.settled_epoch(no_epoch, "train_acc", 1.0),
                 lambda: figures.record_rises({"objective": np.array([1.0, 2.0])})):
        with pytest.raises(ValueError, match="^history has no epoch column"):
            call()


def test_settled_epoch_is_where_it_stays_to_the_end():
    e = np.arange(0, 70, 10)
    spiked = {"epoch": e, "train_acc": np.array([0.1, 1.0, 1.0, 0.92, 0.99, 1.0, 1.0])}
    assert figures.first_epoch(spiked, "train_acc", 1.0) == 10
    assert figures.settled_epoch(spiked, "train_acc", 1.0) == 50  # reached at 10, lost at 30, back from 50 on
    ends_below = {"epoch": e, "train_acc": np.array([0.1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.98])}
    assert figures.first_epoch(ends_below, "train_acc", 1.0) == 10
    assert figures.settled_epoch(ends_below, "train_acc", 1.0) is None
    always = {"epoch": e[:2], "nc1": np.array([0.5, 0.1])}
    assert figures.settled_epoch(always, "nc1", 1.0, above=False) == 0
    assert figures.settled_epoch({"epoch": e[:2], "nc1": np.array([0.5, np.nan])}, "nc1", 1.0, above=False) is None


def _history(objective, lr=None, **columns):
    """A history with the columns largest_rise reads; NC1, NC3 and accuracy default to simple patterns."""
    y = np.asarray(objective, dtype=float)
    e = 10 * np.arange(y.size)
    h = {"epoch": e, "objective": y, "lr": np.full(y.size, 1e-3) if lr is None else np.asarray(lr),
         "nc1": y / 10, "nc3": 1 + y, "train_acc": np.ones(y.size)}
    return {**h, **{k: np.asarray(v, dtype=float) for k, v in columns.items()}}


def test_largest_rise_finds_the_spike_its_stretch_and_what_the_metrics_did():
    #          epoch:   0    10   20    30   40    50   60    70    80
    obj = np.array([1.0, 0.2, 0.1, 0.15, 0.6, 0.12, 0.08, 0.09, 0.07])
    acc = np.array([0.0, 1.0, 1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 1.0])
    lr = np.array([1e-3] * 5 + [1e-4] * 4)
    r = figures.largest_rise(_history(obj, lr, train_acc=acc))
    # the largest quotient of consecutive values is 0.6 / 0.15 = 4 (30 -> 40); the rise began at 20
    assert (r["factor"], r["prev_epoch"], r["epoch"], r["start_epoch"]) == (4.0, 30, 40, 20)
    assert r["climb"] == pytest.approx(6.0) and (r["lr"], r["lr_prev"]) == (1e-3, 1e-3)
    assert r["before"] == {"objective": 0.1, "nc1": 0.1 / 10, "nc3": 1.1, "train_acc": 1.0}
    assert r["at"] == {"objective": 0.6, "nc1": 0.6 / 10, "nc3": 1.6, "train_acc": 0.9}
    assert r["final"]["objective"] == 0.07 and r["back_epoch"] == 60  # 0.08 <= 0.1 first at epoch 60
    never_back = figures.largest_rise(_history([1.0, 0.1, 0.5, 0.3, 0.2]))
    assert (never_back["factor"], never_back["epoch"], never_back["back_epoch"]) == (5.0, 20, None)
    assert figures.largest_rise(_history([1.0, 0.5, 0.5, 0.2])) is None  # never rises
    # a flat step is no rise: the stretch before the rise 0.5 -> 0.6 -> 3.0 starts at epoch 20, not 10
    flat = figures.largest_rise(_history([1.0, 0.5, 0.5, 0.6, 3.0], train_acc=[0.2, 0.4, 0.6, 0.8, 1.0]))
    assert (flat["start_epoch"], flat["before"]["train_acc"]) == (20, 0.6)
    # back at its value before the rise counts as back: 0.2 again at epoch 40
    assert figures.largest_rise(_history([1.0, 0.2, 0.8, 0.4, 0.2, 0.1]))["back_epoch"] == 40
    # another column than the objective
    assert figures.largest_rise(_history(obj, nc3=[5, 4, 3, 2, 1, 1, 1, 3, 1]), "nc3")["epoch"] == 70


def _spike_run(objective, L, lr=None, milestones=(), **columns):
    h = _history(objective, lr, **columns)
    return figures.Run(path=None, params={"L": L, "lr_milestones": list(milestones), "lr_gamma": 0.1},
                       history=h, provenance={})


def test_a_spiked_run_that_ended_below_its_value_before_the_rise_keeps_its_final_value():
    """Only a final value above the value before the rise is replaced: L = 3 ends with NC1 1e-4, below L = 1's 1e-3
    and below its own 1e-2 before the rise, so its place in the NC1 ordering is its own, not the spike's (replaced,
    it would rank last); its NC3, above its value before the rise, is replaced and moves it."""
    rows = [dict(L=1, nc1=1e-3, nc3=0.5, gap=1.0, minimum=1.0), dict(L=3, nc1=1e-4, nc3=2.0, gap=0.5, minimum=1.0)]
    spiked = {3: dict(before={"objective": 2.0, "nc1": 1e-2, "nc3": 0.3, "train_acc": 1.0})}
    assert figures.order_by(rows, "nc1") == [3, 1]
    shaped = figures.orders_without_spikes(rows, spiked)
    assert shaped == {"nc3": {"order": [1, 3], "without": [3, 1], "runs": {3: (0.3, 2.0)}}}


def test_spikes_use_the_threshold_and_orderings_say_what_a_spike_decides():
    calm = _spike_run([1.0, 0.5, 0.6, 0.4], 1)  # largest rise 1.2
    spike = _spike_run([1.0, 0.5, 0.1, 0.3, 0.2], 3)  # rise 3 between epochs 20 and 30
    assert figures.spikes({1: calm, 3: spike}) == {3: figures.largest_rise(spike.history)}
    assert figures.spikes({1: calm, 3: spike}, threshold=3.5) == {}
    assert sorted(figures.spikes({1: calm, 3: spike}, threshold=1.1)) == [1, 3]
    # a rise by exactly the threshold is not a rise by more than it
    even = _spike_run([1.0, 0.5, 1.0, 0.4], 1)
    assert figures.largest_rise(even.history)["factor"] == figures.SPIKE_FACTOR and figures.spikes({1: even}) == {}
    # ordering: L = 3 ends with NC3 above the one before its rise and above L = 1's; replaced, it ranks first
    rows = [dict(L=1, nc1=1e-3, nc3=0.5, gap=1.0, minimum=1.0), dict(L=3, nc1=1e-3, nc3=2.0, gap=2.0, minimum=1.0)]
    spiked = {3: dict(before={"objective": 1.5, "nc1": 1e-2, "nc3": 0.3, "train_acc": 1.0})}
    shaped = figures.orders_without_spikes(rows, spiked)
    assert shaped == {"nc3": {"order": [1, 3], "without": [3, 1], "runs": {3: (0.3, 2.0)}},
                      "gap": {"order": [1, 3], "without": [3, 1], "runs": {3: (0.5, 2.0)}}}
    assert rows[1]["nc3"] == 2.0  # the rows are not changed
    # NC1 ended below its value before the rise: not replaced; no spike, or one that changes no order: empty
    assert "nc1" not in shaped and figures.orders_without_spikes(rows, {}) == {}
    mild = {3: dict(before={"objective": 2.5, "nc1": 1e-2, "nc3": 1.0, "train_acc": 1.0})}
    assert figures.orders_without_spikes(rows, mild) == {}


def test_other_spikes_milestones_dips_and_rise_ratios():
    lr = [1e-3] * 6 + [1e-4] * 3
    #        epoch:  0    10   20   30   40    50   60   70   80
    obj = np.array([1.0, 0.2, 0.1, 0.3, 0.05, 0.5, 0.3, 0.1, 0.04])  # x3 (20 -> 30) and x10 (40 -> 50)
    acc = np.array([0.0, 1.0, 1.0, 0.95, 1.0, 0.9, 1.0, 1.0, 1.0])
    run6 = _spike_run(obj, 6, lr, [50], train_acc=acc)
    assert figures.largest_rise(run6.history)["epoch"] == 50
    assert figures.other_spikes(run6.history) == [(20, 30, pytest.approx(3.0))]
    assert figures.other_spikes(run6.history, threshold=5) == []
    # every rise between consecutive records, in epoch order: here the two spikes; the learning rate only falls
    assert figures.record_rises(run6.history) == [(20, 30, pytest.approx(3.0)), (40, 50, pytest.approx(10.0))]
    assert figures.record_rises(_spike_run([1.0, 0.5, 0.4, 0.3], 1).history) == []
    assert figures.record_rises(run6.history, "lr") == []
    with pytest.raises(ValueError, match="^history has no nc9 column"):
        figures.record_rises(run6.history, "nc9")
    assert figures.next_milestone(run6.params, 50) == 50 and figures.next_milestone(run6.params, 51) is None
    # the accuracy: 100 % at 10, lost at 30 and at 50, lowest 0.9 at 50, back for good from 60
    calm = _spike_run([1.0, 0.5, 0.4, 0.3], 1)
    assert figures.accuracy_dips({1: calm, 6: run6}) == {
        6: dict(first=10, times=2, low=0.9, low_epoch=50, back=60, final=1.0)}
    ends_below = _spike_run([1.0, 0.5, 0.4, 0.3], 3, train_acc=[0.5, 1.0, 1.0, 0.98])
    assert figures.accuracy_dips({3: ends_below}) == {3: dict(first=10, times=1, low=0.98, low_epoch=30, back=None,
                                                              final=0.98)}
    # a dip that starts at the very next record after the first 100 %: a spell of its own, as one that starts later
    at_once = _spike_run([1.0, 0.5, 0.4, 0.3, 0.2, 0.1], 3, train_acc=[0.5, 1.0, 0.97, 1.0, 0.99, 1.0])
    assert figures.accuracy_dips({3: at_once}) == {3: dict(first=10, times=2, low=0.97, low_epoch=20, back=50,
                                                           final=1.0)}
    assert figures.accuracy_dips({3: _spike_run([1.0, 0.5, 0.4], 3, train_acc=[1.0, 0.9, 0.9])})[3]["times"] == 1
    # rises of the objective over all runs: calm has none, run6 two (x3 and x10, both above the threshold)
    ratios = np.concatenate([obj[1:] / obj[:-1], [0.5, 0.8, 0.75]])
    rises = ratios[ratios > 1]
    r = figures.rise_ratios({1: calm, 6: run6})
    assert r == dict(intervals=11, rises=int(rises.size), median=float(np.median(rises)),
                     largest_below=None)  # both rises are above the threshold x2
    assert rises.size == 2
    mild = _spike_run([1.0, 0.5, 0.75, 0.6, 0.66], 3)
    assert figures.rise_ratios({3: mild}) == dict(intervals=4, rises=2, median=pytest.approx(1.3),
                                                  largest_below=pytest.approx(1.5))
    assert figures.rise_ratios({1: calm}) == dict(intervals=3, rises=0, median=None, largest_below=None)
    # no runs, or a NaN objective (whose quotients would count as intervals but neither rise nor fall): refused
    with pytest.raises(ValueError, match="runs must hold at least one run"):
        figures.rise_ratios({})
    with pytest.raises(ValueError, match="at least two finite positive values"):
        figures.rise_ratios({3: _spike_run([1.0, np.nan, 0.75, 0.6, 0.66], 3)})


def test_recorded_every_keeps_the_records_of_a_coarser_interval():
    """recorded_every: the rows at multiples of the interval, every column alike, so that a rise measured on them is
    the rise between those records; refusals name the argument."""
    h = {"epoch": np.arange(0, 60, 10), "objective": np.array([4.0, 1.0, 3.0, 2.0, 8.0, 1.0])}
    got = figures.recorded_every(h, 20)
    assert got["epoch"].tolist() == [0, 20, 40] and got["objective"].tolist() == [4.0, 3.0, 8.0]
    assert figures.recorded_every(h, 10)["objective"].tolist() == h["objective"].tolist()
    for bad in (0, -20, 2.5, True):
        with pytest.raises(ValueError, match="every must be a positive integer"):
            figures.recorded_every(h, bad)
    with pytest.raises(ValueError, match="history has no epoch column"):
        figures.recorded_every({"objective": h["objective"]}, 20)


def test_read_benchmark_record_checks_the_fields_the_engine_chapter_reads(tmp_path):
    record = figures.read_benchmark_record(figures.ROOT / "benchmarks" / "results" / "bench_train_cpu.json")
    assert record["steps_per_s"]["engine"] > 0 and record["figure"]["epoch_ms_floor"] is None  # no data sheet
    good = dict(record)
    for broken, message in ((dict(good, steps_per_s={"engine": 1.0}), "no steps_per_s.plain"),
                            (dict(good, figure={k: v for k, v in good["figure"].items() if k != "metric_ms"}),
                             "no figure.metric_ms"),
                            ({k: v for k, v in good.items() if k != "commit"}, "no commit"),
                            (dict(good, steps_per_s={"engine": 0.0, "plain": 1.0}), "positive"),
                            (dict(good, figure=dict(good["figure"], seconds_12000_epochs_with_metrics=1.0)),
                             "inconsistent"),
                            ({k: v for k, v in good.items() if k != "steps_per_s_repeats"},
                             "no steps_per_s_repeats.engine, steps_per_s_repeats.plain"),
                            # the two loops' medians swapped, or a mean given for the median
                            (dict(good, steps_per_s={"engine": good["steps_per_s"]["plain"],
                                                     "plain": good["steps_per_s"]["engine"]}),
                             r"steps_per_s\['engine'\] = .* is not the median"),
                            (dict(good, steps_per_s=dict(good["steps_per_s"], plain=float(
                                np.mean(good["steps_per_s_repeats"]["plain"])))),
                             r"steps_per_s\['plain'\] = .* is not the median"),
                            (dict(good, steps_per_s_repeats={"engine": [1.0, 2.0], "plain": [1.0]}),
                             "two lists of repeats of one length")):
        path = tmp_path / "r.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=message):
            figures.read_benchmark_record(path)
    path.write_text(json.dumps(dict(good, figure=None)))  # a record without a figure's runs
    assert figures.read_benchmark_record(path)["figure"] is None
    path.write_text("{not json")
    with pytest.raises(ValueError, match="is not JSON"):
        figures.read_benchmark_record(path)
    for other in ([good], "text", 3):  # JSON, but not an object of fields
        path.write_text(json.dumps(other))
        with pytest.raises(ValueError, match=r"^path .* is not a bench_train record"):
            figures.read_benchmark_record(path)
    with pytest.raises(ValueError, match="is not a file"):
        figures.read_benchmark_record(tmp_path / "missing.json")


def test_round_quotients_are_the_rounds_whose_median_the_benchmark_prints():
    record = {"steps_per_s_repeats": {"engine": [10.0, 12.0, 9.0], "plain": [5.0, 4.0, 9.0]}, "figure": None}
    assert figures.round_quotients(record) == {"ratio": [2.0, 3.0, 1.0]}
    record["figure"] = {"seconds_one_after_another_repeats": [3.0, 2.0, 4.0],
                        "seconds_side_by_side_repeats": [1.5, 2.0, 1.0]}
    assert figures.round_quotients(record) == {"ratio": [2.0, 3.0, 1.0], "figure_ratio": [2.0, 1.0, 4.0]}
    # the committed CPU output prints the median of its record's rounds, and their range
    cpu = figures.BENCHMARKS / "bench_train_cpu"
    printed = figures.read_benchmark(cpu.with_suffix(".txt"))
    rounds = figures.round_quotients(json.loads(cpu.with_suffix(".json").read_text()))
    assert len(rounds["ratio"]) == printed["repeats"] > 1
    assert abs(np.median(rounds["ratio"]) - printed["ratio"]) <= 0.005 + 1e-12
    np.testing.assert_allclose(printed["ratio_range"], [min(rounds["ratio"]), max(rounds["ratio"])], atol=0.005)
    for broken in ({"steps_per_s_repeats": {"engine": [1.0, 2.0], "plain": [1.0]}, "figure": None},
                   {"steps_per_s_repeats": {"engine": [], "plain": []}, "figure": None},
                   {"steps_per_s_repeats": {"engine": [1.0], "plain": [0.0]}, "figure": None},
                   {"figure": None},
                   {"steps_per_s_repeats": {"engine": [np.inf], "plain": [1.0]}, "figure": None},
                   {"steps_per_s_repeats": {"engine": [1.0], "plain": [np.nan]}, "figure": None},
                   {"steps_per_s_repeats": [1.0, 2.0], "figure": None},
                   dict(record, figure=[1.0]),
                   dict(record, figure={"seconds_one_after_another_repeats": [1.0, np.inf, 1.0],
                                        "seconds_side_by_side_repeats": [1.0, 1.0, 1.0]}),
                   dict(record, figure={"seconds_side_by_side_repeats": [1.0, 1.0, 1.0]})):
        with pytest.raises(ValueError, match="record"):
            figures.round_quotients(broken)
    with pytest.raises(ValueError, match="record"):
        figures.round_quotients([1.0, 2.0])


def test_lr_step_says_what_the_step_decay_did():
    #        epoch:   0    10   20   30   40   50    60    70
    obj = np.array([1.0, 0.5, 0.4, 0.5, 0.45, 0.1, 0.05, 0.04])
    acc = np.array([0.0, 0.9, 1.0, 0.95, 0.97, 1.0, 1.0, 1.0])  # below 100 % at the step (epoch 40), settled from 50
    lr = [1e-3] * 5 + [1e-4] * 3
    stuck = _spike_run(obj, 6, lr, [40], train_acc=acc)
    fine = _spike_run([1.0, 0.5, 0.3, 0.2, 0.2, 0.1, 0.1, 0.1], 1, lr, [40])
    short = _spike_run([1.0, 0.5, 0.3, 0.2, 0.2], 3, lr[:5], [40])  # stops at its milestone: left out
    got = figures.lr_step({1: fine, 3: short, 6: stuck})
    assert sorted(got) == [1, 6]
    six = got[6]
    assert six["milestone"] == 40 and six["before"] == {"epoch": 40, "objective": 0.45, "nc1": 0.045, "nc3": 1.45,
                                                       "train_acc": 0.97}
    assert six["after"]["epoch"] == 50 and six["final"]["epoch"] == 70
    assert six["objective_drop"] == pytest.approx(0.45 / 0.04)
    assert six["below_100_before"] and six["settled_100"] == 50 and six["recovered"]
    assert not got[1]["below_100_before"] and got[1]["settled_100"] == 0 and not got[1]["recovered"]
    # the committed CPU-scale runs of Figure 4 go past their step after epoch 500
    runs = figures.load_figure(4, "cpu-scale")
    steps = figures.lr_step(runs)
    assert sorted(steps) == [1, 3, 6]
    for L, d in steps.items():
        assert d["milestone"] == 500 and d["before"]["epoch"] == 500 and d["after"]["epoch"] == 520
        assert d["final"]["objective"] == runs[L].history["objective"][-1]


def test_figure_legend_names_the_data_the_scale_and_the_epochs(tiny):
    runs = figures.load_figure(3, "tiny", root=tiny)

    def at(epochs, data=None, **params):
        """The runs with other epochs and parameters; ``data``: another data record in their provenance."""
        return {L: dataclasses.replace(r, params={**r.params, "epochs": epochs, **params},
                                       provenance=r.provenance if data is None else {**r.provenance, "data": data})
                for L, r in runs.items()}

    full = f"{figures.scale_settings('gpu')['epochs']:,}"
    short, whole, cpu = (figures.figure_legend(at(2600), "gpu"), figures.figure_legend(at(12000), "gpu"),
                         figures.figure_legend(at(1000), "cpu-scale"))
    # the first line is the data and the bias case of the runs
    case = nclib.plotting.data_case({L: r.params for L, r in runs.items()})
    assert {text.split("\n")[0] for text in (short, whole, cpu)} == {case}
    # GPU runs cut short: the epochs run and the paper's count; at the full count that count alone; CPU scale: its own
    assert "2,600" in short and full in short
    assert full in whole and "2,600" not in whole and whole != short
    assert "1,000" in cpu and full not in cpu and cpu.split("\n")[1] != short.split("\n")[1]
    # the fixture's .npz is not the paper's CIFAR-10: the GPU legends say the data differ too, as its first line
    # names them; the official CIFAR-10 (a torchvision root folder) is the paper's data, and they do not
    assert figures.on_other_data(runs) and case.startswith("CIFAR-10 (npz)")
    assert short.endswith("of 12,000 epochs and other data") and "but other data" in whole
    # a torchvision root folder: its record holds none of an .npz's fields (lossy_jpeg, shared_subset)
    torchvision = {"dataset": "cifar10", "source": "torchvision.datasets.CIFAR10 (python batches)"}
    official = {e: figures.figure_legend(at(e, torchvision, data_path="/data/cifar-10"), "gpu") for e in (2600, 12000)}
    assert not figures.on_other_data(at(2600, torchvision, data_path="/data/cifar-10"))
    # the record decides where it names the file: the fixture's .npz stays other data under any data_path
    assert figures.on_other_data(at(2600, data_path="/data/cifar-10"))
    assert official[2600].split("\n") == ["CIFAR-10, bias-free", "GPU, the paper's stated settings but 2,600 of "
                                                                 "12,000 epochs"]
    assert official[12000].split("\n")[1] == "GPU, the paper's stated settings, 12,000 epochs"
    assert "other data" not in cpu  # the CPU scale's line says it is not the paper's settings
    for bad in ({}, "x", [1]):  # none, or no mapping of runs
        with pytest.raises(ValueError, match="^runs must hold at least one run, a mapping"):
            figures.on_other_data(bad)
    with pytest.raises(ValueError, match=r"^runs\[1\] must be a Run"):  # a value that is no run
        figures.on_other_data({1: None})


def _labels_within_panels(fig) -> None:
    """Every axis label of ``fig`` within the height of its panel, not running into the next one or the legend."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        label, box = ax.yaxis.label.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert box.y0 <= label.y0 and label.y1 <= box.y1, ax.get_ylabel()


def test_drawing(tiny):
    for fig in (1, 3):
        runs = figures.load_figure(fig, "tiny", root=tiny)
        f = figures.draw_panels(runs, "cpu-scale")
        assert len(f.axes) == 6
        title = f.legends[0].get_title().get_text()
        assert title.endswith("\nCPU-scale, not the paper's settings, 120 epochs")
        lines = f.axes[0].get_lines()  # three curves and the dotted line of the step decay after epoch 80
        assert len(lines) == 4 and lines[-1].get_linestyle() == ":" and list(lines[-1].get_xdata()) == [80, 80]
        # the target of each NC panel in its axis label; nothing written on the plotting areas
        target = "(target 0)"
        assert all(ax.get_ylabel().endswith(target) for ax in f.axes[:5]) and target not in f.axes[5].get_ylabel()
        assert not any(ax.texts for ax in f.axes)
        _labels_within_panels(f)
        # the training accuracy in percent, as the prose and the tables give it, with its 100 % line
        acc = f.axes[5]
        assert acc.get_ylabel() == "training accuracy (%)" and acc.get_ylim() == (-2, 102)
        np.testing.assert_allclose(acc.lines[0].get_ydata(), 100 * runs[1].history["train_acc"], rtol=1e-12)
        assert any(list(ln.get_ydata()) == [100, 100] and ln.get_linestyle() == "-" for ln in acc.lines)
        g = figures.draw_theory(runs)
        assert len(g.axes) == 3 and len(g.axes[2].get_lines()) == 3
        # the objective's excess over the minimum and the distances to the minimizer span decades: log scales
        assert [ax.get_yscale() for ax in g.axes] == ["log", "log", "linear"]
        assert len(g.axes[1].get_lines()) == 6
        # bias-free, each run's global feature-mean norm beside its value at every global minimizer, flat and dashed
        dashed = [ln for ln in g.axes[1].get_lines() if ln.get_linestyle() == "--"]
        want = [] if fig == 1 else [figures.run_theory(r.params).global_mean_norm for _, r in sorted(runs.items())]
        assert [ln.get_ydata()[0] for ln in dashed] == want and all(len(set(ln.get_ydata())) == 1 for ln in dashed)
        assert all(w > 0 for w in want)
        # what NC3 compares, as the runs made now record it: modes with a bias, classes without (Appendix C)
        assert {r.nc3_compares for r in runs.values()} == {"modes" if fig == 1 else "classes"}
        assert "\n" not in f.axes[4].get_ylabel()
        plt.close("all")
    # runs recorded before the bias-free NC3 compared class with class have no record: with a bias their NC3 is
    # the same, without one it compared blocks of equal counts, and the NC3 panel says so
    older = {fig: {L: dataclasses.replace(r, provenance={k: v for k, v in r.provenance.items() if k != "nc3_compares"})
                   for L, r in figures.load_figure(fig, "tiny", root=tiny).items()} for fig in (1, 3)}
    assert {r.nc3_compares for r in older[1].values()} == {"modes"}
    assert {r.nc3_compares for r in older[3].values()} == {figures.NC3_EQUAL_COUNT_BLOCKS}
    blocks = figures.draw_panels(older[3], "cpu-scale")
    assert blocks.axes[4].get_ylabel().endswith(f"\n({figures.NC3_EQUAL_COUNT_BLOCKS})")
    _labels_within_panels(blocks)  # its two lines too
    assert figures.draw_panels(older[1], "cpu-scale").axes[4].get_ylabel().endswith("(target 0)")
    some = {**figures.load_figure(3, "tiny", root=tiny), 6: older[3][6]}
    assert figures.draw_panels(some, "cpu-scale").axes[4].get_ylabel().endswith(", some runs)")
    plt.close("all")
    with pytest.raises(ValueError, match="runs must hold"):
        figures.draw_panels({})
    mixed = {**figures.load_figure(1, "tiny", root=tiny)}
    mixed[3] = figures.load_figure(3, "tiny", root=tiny)[3]
    with pytest.raises(ValueError, match="share the data and the bias case"):
        figures.draw_panels(mixed)
    with pytest.raises(ValueError, match="runs mix runs with and without a bias"):
        figures.draw_theory(mixed)
    # a scale that is not one of the book's is refused, not drawn as the paper's GPU settings
    with pytest.raises(ValueError, match="scale must be one of"):
        figures.draw_panels(figures.load_figure(1, "tiny", root=tiny), "CPU-scale")
    with pytest.raises(ValueError, match="runs must hold"):
        figures.draw_theory({})


def test_collapse_panels_say_which_nc3_the_runs_compared(tiny, tmp_path):
    """The panels the executed notebooks are redrawn with (nclib.plotting.collapse_panels) label NC3 from the runs,
    as the chapters' panels do: a bias-free run folder recorded before its provenance said what NC3 compares
    compared blocks of equal counts, and its NC3 axis says so; with a bias, or recorded since, the label is "NC3"."""
    for fig in (1, 3):
        for L, r in figures.load_figure(fig, "tiny", root=tiny).items():
            shutil.copytree(r.path, tmp_path / f"fig{fig}" / r.path.name)
            prov = json.loads((r.path / "provenance.json").read_text())
            del prov["nc3_compares"]
            (tmp_path / f"fig{fig}" / r.path.name / "provenance.json").write_text(json.dumps(prov))
    older = {fig: sorted((tmp_path / f"fig{fig}").iterdir()) for fig in (1, 3)}
    assert nclib.plotting.collapse_panels(older[3]).axes[4].get_ylabel() == "NC3\n(blocks of equal counts)"
    assert nclib.plotting.collapse_panels(older[1]).axes[4].get_ylabel() == "NC3"
    made_now = [r.path for r in figures.load_figure(3, "tiny", root=tiny).values()]
    assert nclib.plotting.collapse_panels(made_now).axes[4].get_ylabel() == "NC3"
    assert nclib.plotting.collapse_panels([*made_now[:2], older[3][2]]).axes[4].get_ylabel() == (
        "NC3\n(blocks of equal counts, some runs)")
    # as the redraw gives them: {L: (params, history)} and what each run's NC3 compared
    runs = figures.load_figure(3, "tiny", root=tiny)
    plain = nclib.plotting.collapse_panels(figures.as_plot_runs(runs))
    blocks = nclib.plotting.collapse_panels(figures.as_plot_runs(runs),
                                            nc3_compares={L: figures.NC3_EQUAL_COUNT_BLOCKS for L in runs})
    assert (plain.axes[4].get_ylabel(), blocks.axes[4].get_ylabel()) == ("NC3", "NC3\n(blocks of equal counts)")
    plt.close("all")
    with pytest.raises(ValueError, match="nc3_compares.*lacks L = \\[6\\]"):
        nclib.plotting.collapse_panels(figures.as_plot_runs(runs), nc3_compares={1: "classes", 3: "classes"})
    with pytest.raises(ValueError, match="nc3_compares must be a mapping"):
        nclib.plotting.collapse_panels(figures.as_plot_runs(runs), nc3_compares=["classes"])
    for bad in ("classes", [], ["rows"], [["modes"]]):
        with pytest.raises(ValueError, match="compared"):
            nclib.plotting.nc3_label(bad)
    # the rule for a run's record: what it recorded, else with a bias modes and without one blocks of equal counts
    assert [nclib.geometry.recorded_nc3_compares(b, rec) for b, rec in
            ((True, None), (False, None), (False, "classes"))] == ["modes", figures.NC3_EQUAL_COUNT_BLOCKS, "classes"]
    with pytest.raises(ValueError, match="^recorded"):
        nclib.geometry.recorded_nc3_compares(False, "rows")
    with pytest.raises(ValueError, match="bias"):
        nclib.geometry.recorded_nc3_compares(0)


def test_draw_theory_plots_what_its_labels_say(tiny):
    """Each curve of draw_theory is the quantity its label names, run by run: (a) the objective (4.3) less the
    global minimum at the run's decays, where positive; (b) ||b - n/N|| (with a bias) and the global feature-mean
    norm from the history; (c) the predicted singular values of W_L ... W_1, mode by mode."""
    for fig in (1, 3):
        runs = figures.load_figure(fig, "tiny", root=tiny)
        g = figures.draw_theory(runs)
        assert g.axes[0].get_ylabel() == "objective (4.3) $-$ global minimum"
        # one row of three panels, no empty place in a grid
        assert len(g.axes) == 3 and len({ax.get_subplotspec().rowspan.start for ax in g.axes}) == 1
        assert [ax.get_subplotspec().colspan.start for ax in g.axes] == [0, 1, 2]
        lines = [{ln.get_label(): ln for ln in ax.get_lines()} for ax in g.axes]
        for L, run in runs.items():
            h, th = run.history, figures.run_theory(run.params)
            gap = np.asarray(h["objective"], dtype=float) - th.minimum
            assert (gap > 0).sum() >= 2 and np.ptp(th.s_product) > 0  # curves, not a point or a flat line
            objective = lines[0][f"L = {L}"]
            np.testing.assert_array_equal(objective.get_xdata(), np.asarray(h["epoch"])[gap > 0])
            np.testing.assert_allclose(objective.get_ydata(), gap[gap > 0], rtol=1e-12)
            np.testing.assert_array_equal(lines[1][f"$\\|h_G\\|$, L = {L}"].get_ydata(), h["global_mean_norm"])
            if fig == 1:
                np.testing.assert_array_equal(lines[1][f"$\\|b - n/N\\|$, L = {L}"].get_ydata(), h["bias_error"])
                assert not np.array_equal(h["bias_error"], h["global_mean_norm"])
            modes = next(ln for label, ln in lines[2].items() if label.startswith(f"L = {L} ("))
            np.testing.assert_array_equal(modes.get_xdata(), np.arange(1, th.K + 1))
            np.testing.assert_allclose(modes.get_ydata(), th.s_product, rtol=1e-12)
        assert sum(label.startswith("$\\|b - n/N\\|$") for label in lines[1]) == (3 if fig == 1 else 0)
        plt.close("all")


def test_compare_nc3_reads_two_nc3_of_one_training(tiny):
    """Two readings of one training: the runs of an older NC3 (no record, bias-free: blocks of equal counts) and
    the same runs made again with Appendix C's, every other column equal number for number."""
    made = figures.load_figure(3, "tiny", root=tiny)
    clean = {L: dataclasses.replace(r, provenance={**r.provenance, "git_dirty": False}) for L, r in made.items()}

    def older(runs, factor=1.5, **changes):
        out = {}
        for L, r in runs.items():
            prov = {k: v for k, v in r.provenance.items() if k != "nc3_compares"}
            out[L] = dataclasses.replace(r, provenance={**prov, **changes},
                                         history={**r.history, "nc3": factor * np.asarray(r.history["nc3"])})
        return out

    got = figures.compare_nc3(older(clean), clean)
    assert sorted(got) == [1, 3, 6]
    for L, g in got.items():
        assert g["classes"] == clean[L].history["nc3"][-1] and g["blocks"] == pytest.approx(1.5 * g["classes"])
        assert g["largest"] == pytest.approx(1.5) and g["smallest"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="host_cpu"):
        figures.compare_nc3(older(clean, host_cpu="another CPU"), clean)
    with pytest.raises(ValueError, match=r"not made from a clean commit: git_dirty = True \(classes\)"):
        figures.compare_nc3(older(clean), {L: dataclasses.replace(r, provenance={**r.provenance, "git_dirty": True})
                                           for L, r in made.items()})
    with pytest.raises(ValueError, match=r"L=1: not a finished run: status 'failed' \(blocks\)"):
        figures.compare_nc3(older(clean, status="failed"), clean)
    with pytest.raises(ValueError, match="NC3 compares 'classes' and 'classes'"):
        figures.compare_nc3(clean, clean)
    trained_apart = {L: dataclasses.replace(r, history={**r.history, "nc1": 2 * np.asarray(r.history["nc1"])})
                     for L, r in older(clean).items()}
    with pytest.raises(ValueError, match=r"the training differs \(\['nc1'\]\)"):
        figures.compare_nc3(trained_apart, clean)
    with pytest.raises(ValueError, match="classes has L"):
        figures.compare_nc3(older(clean), {1: clean[1]})
    # NC2 of the same network from the code of another commit: equal to rounding, not beyond
    for factor, fine in ((1 + 1e-12, True), (1.01, False)):
        nc2_moved = {L: dataclasses.replace(r, history={**r.history, "nc2_wh": factor * np.asarray(r.history["nc2_wh"])})
                     for L, r in older(clean).items()}
        if fine:
            # the relative gap of fl(factor x) to x is (1 + 1e-12) - 1 to about one ulp of 1 (2e-4 of it)
            assert (max(g["nc2_apart"] for g in figures.compare_nc3(nc2_moved, clean).values())
                    == pytest.approx((1 + 1e-12) - 1, rel=1e-3, abs=0))
        else:
            with pytest.raises(ValueError, match="NC2 differs by 0.01 relative"):
                figures.compare_nc3(nc2_moved, clean)
    # a NaN in an NC2 column is refused wherever it is, not dropped by the largest difference (nc2_h is not the
    # first NC2 column, where a NaN would have reached the result); in nc2_w too, and in the runs of either reading
    for key, side in (("nc2_h", "blocks"), ("nc2_w", "blocks"), ("nc2_wh", "classes")):
        pair = {"blocks": older(clean), "classes": dict(clean)}
        r = pair[side][3]
        h = {**r.history, key: np.array(r.history[key], dtype=float, copy=True)}
        h[key][len(h[key]) // 2] = np.nan
        pair[side][3] = dataclasses.replace(r, history=h)
        with pytest.raises(ValueError, match=rf"L=3: NC2 has no relative difference \(NaN\) at some epoch in "
                                             rf"\['{key}'\]"):
            figures.compare_nc3(pair["blocks"], pair["classes"])


def test_nc3_readings_of_the_committed_bias_free_runs():
    """The committed remake with Appendix C's NC3 is the replica's training read again: every other column the
    same (compare_nc3 checks it), and the table holds each final NC3 as the run recorded it."""
    for fig in (3, 4):
        compared, table = figures.nc3_readings(fig)
        assert list(table.index) == [1, 3, 6] and sorted(compared) == [1, 3, 6]
        replica = figures.load_figure(fig, "cpu-scale", root=figures.RESULTS.parent / "replica-cpu")
        remake = figures.load_figure(fig, "cpu-scale", root=figures.RESULTS.parent / figures.NC3_BY_CLASS)
        for L, g in compared.items():
            assert g["blocks"] == replica[L].history["nc3"][-1] and g["classes"] == remake[L].history["nc3"][-1]
            assert g["smallest"] <= g["blocks"] / g["classes"] <= g["largest"] and g["nc2_apart"] < 1e-10
            assert float(table.loc[L, "replica CPU: NC3 at the end, class by class"]) == pytest.approx(g["classes"],
                                                                                                   rel=5e-3)
            # the ratio at the end, to nearest at the table's figures (a run's own value), inside its range
            end = number(table.loc[L, "blocks / class by class at the end"])
            assert end == pytest.approx(g["blocks"] / g["classes"], rel=5e-3)
            assert g["smallest"] <= g["blocks"] / g["classes"] <= g["largest"]
        # both NC3 columns say whose runs they read: the replica CPU's, not those of the chapter's other tables
        nc3_columns = [c for c in table.columns if "NC3" in c]
        assert len(nc3_columns) == 2 and all(c.startswith("replica CPU: ") for c in nc3_columns)
    with pytest.raises(ValueError, match="fig must be a bias-free figure"):
        figures.nc3_readings(1)


# ------------------------------------------------------------------------------------------ figure chapters

def test_figure_chapter_glue_values(tiny, tiny_scale):
    for fig in (1, 3):
        ch = figures.figure_chapter(fig, "tiny", root=tiny)
        runs = figures.load_figure(fig, "tiny", root=tiny)
        rows = figures.final_rows(runs)
        assert (ch.figure.number, ch.scale) == (fig, "tiny") and sorted(ch.runs) == [1, 3, 6]
        assert [(r["L"], r["gap"]) for r in ch.rows] == [(r["L"], r["gap"]) for r in rows]
        assert ch.check == figures.check_figure(runs, fig, "tiny")
        assert ch.theory[6].minimum == figures.run_theory(runs[6].params).minimum
        g = ch.glue
        assert all(isinstance(v, str) for v in g.values())
        bias_keys = {"bstar", "bias0", "bias-end-min", "bias-end-max"}
        assert bias_keys <= set(g) if fig == 1 else not bias_keys & set(g)
        # the paper's settings (Section 5) and the runs' own
        assert (g["paper-counts"], g["paper-epochs"], g["paper-width"], g["paper-batch"], g["paper-lr"]) == \
            ("500, 500, 400, 400, 300, 300, 200, 200, 100, 100", "12,000", "2,048", "128", "0.0001")
        assert (g["N"], g["counts"], g["epochs"], g["width"], g["batch"], g["lr"], g["gamma"], g["milestone"],
                g["decay"], g["metric-every"], g["divisor"], g["K"], g["precision"], g["wd"]) == \
            ("30", "5, 5, 4, 4, 3, 3, 2, 2, 1, 1", "120", "32", "full", "0.003", "0.1", "80", "0.001", "20", "100",
             "10", "fp32", "10⁻⁵")
        # against the theory, and the comparison, from the rows
        alive = sorted({figures.run_theory(r.params).alive for r in runs.values()})
        assert len(alive) == 1 and g["alive"] == str(alive[0]) and (fig != 1 or g["alive"] == "9")
        low, high = min(rows, key=lambda r: r['gap'] / r['minimum']), max(rows, key=lambda r: r['gap'] / r['minimum'])
        # two runs' own values, to nearest, and whose they are
        assert number(g["gap-min"]) == pytest.approx(low['gap'] / low['minimum'], rel=5e-3) and g["gap-min-L"] == \
            str(low["L"])
        assert number(g["gap-max"]) == pytest.approx(high['gap'] / high['minimum'], rel=5e-3) and g["gap-max-L"] == \
            str(high["L"])
        top = max(r["global_mean_norm"] for r in rows)  # an upper bound
        assert top <= number(g["mean-end"]) < 1.1 * top
        if fig == 3:  # without a bias the theory table writes each run's global mean: the bound reads as its largest
            cells = ch.tables["theory"]["global feature-mean norm at the end"]
            assert written(number(g["mean-end"]), 3) == written(max(number(c) for c in cells), 3)
        assert g["minimizer-acc"] == "1.000"
        fitted = [r for r in rows if r["train_acc"] >= 1.0]
        assert g["n-fitted"] == str(len(fitted)) == "3"
        nc3 = max(runs[r["L"]].history["nc3"][0] / r["nc3"] for r in fitted)
        # bounds over the runs of the drops table: they hold, and read at its three figures as its cells do
        drops_table = ch.tables["drops"]
        assert nc3 <= number(g["fit-nc3-drop"]) < 1.01 * nc3 and g["fit-nc3-drop"] == at_most(nc3, 3, zeros=True)
        assert written(number(g["fit-nc3-drop"]), 3) == written(max(number(c) for c in drops_table["NC3 fall"]), 3)
        least = min(r['nc1_drop'] for r in fitted)
        assert 0.99 * least < number(g["fit-nc1-drop"]) <= least and g["fit-nc1-drop"] == at_least(least, 3, zeros=True)
        assert written(number(g["fit-nc1-drop"]), 3) == written(min(number(c) for c in drops_table["NC1 fall"]), 3)
        # NC1 on NC3's scale: the square root of its fall, the smallest over the runs, and over NC3's fall
        drops = figures.metric_drops(runs)
        root = min(np.sqrt(r["nc1_drop"]) for r in fitted)
        assert number(g["fit-nc1-root-drop"]) <= root and g["fit-nc1-root-drop"] == at_least(root, 3, zeros=True)
        assert written(number(g["fit-nc1-root-drop"]), 3) == written(min(number(c) for c in
                                                                         drops_table["its square root"]), 3)
        # one quotient per run, the root of its own NC1 fall over its own NC3 fall: the smallest and the largest,
        # to nearest, and whose they are
        quotient = {L: d["nc1_root"] / d["nc3"] for L, d in drops.items()}
        low, high = min(quotient, key=quotient.get), max(quotient, key=quotient.get)
        assert (g["fit-root-over-nc3-lo-L"], g["fit-root-over-nc3-hi-L"]) == (str(low), str(high))
        assert number(g["fit-root-over-nc3-lo"]) == pytest.approx(quotient[low], rel=5e-3)
        assert number(g["fit-root-over-nc3-hi"]) == pytest.approx(quotient[high], rel=5e-3)
        assert all(g[f"root-over-nc3-L{L}"] == ch.tables["drops"].loc[L, "square root / NC3 fall"] for L in quotient)
        assert "fit-root-over-nc3" not in g  # no bound that pairs one run's fall with another's
        assert [g[f"nc3-drop-L{L}"] for L in drops] == written_column([d["nc3"] for d in drops.values()], 3)
        assert [g[f"nc1-drop-L{L}"] for L in drops] == written_column([r["nc1_drop"] for r in rows], 3)
        for r in rows:  # every run of the fixture reaches 100 % and stays there
            L = r["L"]
            assert (g[f"acc100-L{L}"], g[f"stays-L{L}"], g[f"acc-L{L}"]) == \
                (f"{r['acc100_epoch']:,}", f"{r['acc100_stays']:,}", f"{100 * r['train_acc']:.1f}")
        # numbers only: no words, and no key where the runs have no such number (here no stalled run)
        assert not any(word in v for v in g.values() for word in ("never", "none", "once", "twice", " or "))
        assert "stall-runs" not in g and not any(k.startswith("stall-L") for k in g)
        for key in ("nc1", "nc3", "gap"):
            assert g[f"{key}-order"] == ", ".join(map(str, figures.order_by(rows, key)))
        noise = figures.rise_ratios(runs)
        assert (g["rise-intervals"], g["rise-count"]) == (str(noise["intervals"]), str(noise["rises"]))
        assert noise["intervals"] == 18  # three runs, six intervals between their seven recorded epochs each
        assert g["spike-threshold"] == "2"
        spiked = figures.spikes(runs)
        assert g.get("spike-runs") == (", ".join(map(str, spiked)) or None)
        for L, s in spiked.items():
            assert g[f"spike-L{L}-factor"] == written(s['factor'], 3) and g[f"spike-L{L}-to"] == f"{s['epoch']:,}"
        if fig == 1:
            assert g["bstar"] == f"{np.linalg.norm(np.array(runs[1].params['counts']) / 30):.3f}"
            top, low = max(r["bias_error"] for r in rows), min(r["bias_error_0"] for r in rows)
            assert number(g["bias-end-max"]) == pytest.approx(top, rel=5e-3) and 0.9 * low < number(g["bias0"]) <= low


def test_figure_glue_of_stalled_and_spiked_runs(tiny, monkeypatch):
    """A run that loses 100 % accuracy in a spike: the glue carries the spike's and the stall's numbers."""
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)
    runs = figures.load_figure(1, "tiny", root=tiny)
    N = figures.run_theory(runs[6].params).N
    h = runs[6].history
    obj = np.asarray(h["objective"], dtype=float).copy()
    # x4 between the recorded epochs 40 and 60, never back; then falling a little, so that the objective at the
    # start of the second half (epoch 60), at the learning-rate step (epoch 80) and at the end differ
    obj[3:] = obj[2] * 4.0 * np.linspace(1.0, 0.9, obj.size - 3)
    acc = np.ones(obj.size)
    acc[3:] = 1.0 - 2.0 / N
    # two small rises of L = 3's objective beside the spike, whose median (x1.5) is not their mean
    obj3 = np.asarray(runs[3].history["objective"], dtype=float).copy()
    obj3[2], obj3[4] = obj3[1] * 1.05, obj3[3] * 1.5
    stalled = {**runs, 6: _with_history(runs[6], objective=obj, train_acc=acc),
               3: _with_history(runs[3], objective=obj3)}
    rows = figures.final_rows(stalled)
    theory = {L: figures.run_theory(r.params) for L, r in stalled.items()}
    g = figures.figure_glue(1, "cpu-scale", stalled, {"epochs": {1: 120, 3: 120, 6: 120}}, rows, theory)
    assert g["divisor"] == "10" and g["spike-runs"] == "6" and g["stall-runs"] == "6"
    # never back below its level before the rise: no such epoch, no key
    assert (g["spike-L6-factor"], g["spike-L6-from"], g["spike-L6-to"]) == ("4", "40", "60")
    assert "spike-L6-back" not in g
    assert g["spike-L6-milestone"] == "80" and g["spike-L6-count"] == "1"
    assert (g["stall-L6-before"], g["stall-L6-since"], g["stall-L6-wrong"], g["stall-L6-N"]) == ("40", "60", "2", "30")
    assert (g["stall-L6-smallest"], g["stall-L6-smallest-count"], g["stall-L6-multiple"]) == ("1", "2", "2")
    assert g["stall-L6-rise"] == "4" and g["stall-L6-acc"] == f"{100 * (1 - 2 / N):.1f}"
    # the highest accuracy since the stall, an "at most": rounded up (93.34 %), not to nearest
    best = 100 * (1 - 2 / N)
    assert number(g["stall-L6-best"]) >= best and reads_as(g["stall-L6-best"], written(best, 3), 3)
    assert g["n-fitted"] == "2" and "stays-L6" not in g and "acc100-L6" in g
    assert (g["dip-L6-low"], g["dip-L6-epoch"], g["dip-L6-times"]) == (f"{100 * (1 - 2 / N):.2f}", "60", "1")
    assert "dip-L6-back" not in g
    # the numbers glued, against the histories they come from: NC1 before and at the spike
    e, nc1 = np.asarray(h["epoch"]), np.asarray(h["nc1"], dtype=float)
    start = list(e).index(int(g["spike-L6-start"]))
    assert number(g["spike-L6-nc1-before"]) == pytest.approx(nc1[start], rel=5e-3)
    assert number(g["spike-L6-nc1-at"]) == pytest.approx(nc1[3], rel=5e-3)
    # the objective's fall from the learning-rate step (the record of epoch 80) to the end, smallest and largest
    step = list(e).index(80)
    falls = [float(r.history["objective"][step] / r.history["objective"][-1]) for r in stalled.values()]
    assert min(falls) < 0.99 * max(falls)
    assert number(g["lrstep-drop-min"]) == pytest.approx(min(falls), rel=5e-3)
    assert number(g["lrstep-drop-max"]) == pytest.approx(max(falls), rel=5e-3)
    # the final objective against its value at the start of the second half (epoch 60), 10 % below it, written
    # without its sign (the chapter writes "below" and asserts the sign)
    assert g["stall-L6-half"] == "60"
    assert number(g["stall-L6-change"]) == pytest.approx(100 * abs(obj[-1] / obj[3] - 1), rel=5e-2)
    # the median of the rises of the objective between records, over every run
    ratios = np.concatenate([np.asarray(r.history["objective"][1:]) / np.asarray(r.history["objective"][:-1])
                             for r in stalled.values()])
    rises = ratios[ratios > 1]
    assert number(g["rise-count"]) == rises.size == 3 and abs(np.mean(rises) / np.median(rises) - 1) > 1e-3
    assert number(g["rise-median"]) == pytest.approx(np.median(rises), rel=5e-4)


def test_bias_glue_reads_as_the_final_table_writes_it(tiny):
    """The smallest and the largest final ||b - n/N|| are glued as the final table's cells of those runs, with
    their trailing zeros (0.000290 and 0.0510, not 0.00029 and 0.051)."""
    runs = figures.load_figure(1, "tiny", root=tiny)
    ends = {1: 2.9e-4, 3: 0.051, 6: 0.012}
    runs = {L: _with_history(r, bias_error=np.append(np.asarray(r.history["bias_error"])[:-1], ends[L]))
            for L, r in runs.items()}
    rows = figures.final_rows(runs)
    theory = {L: figures.run_theory(r.params) for L, r in runs.items()}
    check = {"epochs": {L: 120 for L in runs}}
    g = figures.figure_glue(1, "tiny", runs, check, rows, theory)
    final = figures.figure_tables(1, runs, check, rows, theory)["final"]
    assert (g["bias-end-min"], g["bias-end-max"]) == (final.loc[1, "‖b − n/N‖"], final.loc[3, "‖b − n/N‖"])
    assert [significant_figures(g[k]) for k in ("bias-end-min", "bias-end-max")] == [3, 3]


def test_falls_are_glued_as_the_drops_table_writes_them(tiny):
    """Each run's falls of NC1 and NC3 are glued as the drops table's cells: one notation over the runs, the
    trailing zeros kept (6.28 × 10⁴ and 1.50 × 10⁶ beside 16.2, not 62,800 and 1.5 × 10⁶)."""
    runs = figures.load_figure(1, "tiny", root=tiny)
    falls = {1: 62_800.0, 3: 1.5e6, 6: 16.25}
    runs = {L: _with_history(r, nc1=np.asarray(r.history["nc1"], dtype=float)[0] / np.geomspace(1, falls[L],
                                                                                                 len(r.history["nc1"])))
            for L, r in runs.items()}
    rows = figures.final_rows(runs)
    theory = {L: figures.run_theory(r.params) for L, r in runs.items()}
    g = figures.figure_glue(1, "tiny", runs, {"epochs": {L: 120 for L in runs}}, rows, theory)
    table = figures.drops_table(runs)
    assert [g[f"nc1-drop-L{L}"] for L in runs] == table["NC1 fall"].tolist() == written_column(list(falls.values()), 3)
    for key, col in (("nc1-root-drop", "its square root"), ("nc3-drop", "NC3 fall"),
                     ("root-over-nc3", "square root / NC3 fall")):
        assert [g[f"{key}-L{L}"] for L in runs] == table[col].tolist(), key


def test_figure_chapter_tables(tiny, tiny_scale):
    for fig in (1, 3):
        ch = figures.figure_chapter(fig, "tiny", root=tiny)
        t = ch.tables
        assert set(t) == {"provenance", "theory", "final", "training", "drops", "settings"}
        for name in ("theory", "final", "training", "drops"):
            assert t[name].index.name == "L" and t[name].index.tolist() == [1, 3, 6]
        # the provenance is transposed to fit the page: one column per run
        assert t["provenance"].columns.tolist() == ["L = 1", "L = 3", "L = 6"]
        assert t["provenance"].loc["N"].tolist() == ["30"] * 3 and t["provenance"].loc["K"].tolist() == [10] * 3
        assert all(len(t[name].columns) <= 9 for name in t)
        assert t["theory"].loc[1, "modes alive"] == f"{ch.theory[1].alive} of 10"
        # the minimum and the final objective at five significant figures each, trailing zeros kept, one notation
        # per column; bias-free the global feature-mean norms at three
        columns = {"global minimum of (4.3)": ([ch.theory[L].minimum for L in (1, 3, 6)], 5),
                   "objective at the end": ([ch.runs[L].history["objective"][-1] for L in (1, 3, 6)], 5)}
        if fig == 3:
            columns.update({
                "global feature-mean norm at the global minimizers": ([ch.theory[L].global_mean_norm
                                                                       for L in (1, 3, 6)], 3),
                "global feature-mean norm at the end": ([ch.runs[L].history["global_mean_norm"][-1]
                                                         for L in (1, 3, 6)], 3)})
        assert all(t["theory"][col].tolist() == written_column(values, sig) for col, (values, sig) in columns.items())
        assert not any("_" in col for col in t["theory"].columns)  # no TeX subscript left in a header
        assert number(t["final"].loc[6, "NC1"]) == pytest.approx(ch.runs[6].history['nc1'][-1], rel=5e-3)
        # the metrics headed as the prose and the panels name them, each column in one notation: powers of ten on
        # every value where one needs them
        names = nclib.plotting.MATH_NAMES
        assert [c for c in t["final"].columns if c in names.values()] == list(names.values())
        for key, name in names.items():
            assert t["final"][name].tolist() == written_column([r[key] for r in ch.rows], 3, uniform=True)
        assert ("‖b − n/N‖" in t["final"].columns) is (fig == 1)
        assert t["final"].loc[1, "train acc (%)"] == figures.percent(ch.rows[0]["train_acc"], 2)  # in percent
        if fig == 1:  # small distances keep their significant digits
            assert number(t["final"].loc[3, "‖b − n/N‖"]) == pytest.approx(ch.rows[1]['bias_error'], rel=5e-3)
        assert t["training"].loc[1, "100 % acc first at epoch"] == f"{ch.rows[0]['acc100_epoch']:,}"
        assert t["training"].loc[3, "largest objective rise"] == figures.rise_cell(ch.rows[1]["rise"])
        # NC1's fall in one table of the chapter, at one precision: the drops table's
        assert [(name, col) for name, table in t.items() for col in table.columns
                if re.fullmatch(r"NC1 (drop|fall)", str(col))] == [("drops", "NC1 fall")]
        # each run's two falls in one row: NC1's, its square root, NC3's and their quotient
        drops = figures.metric_drops(ch.runs)
        for L, d in drops.items():
            row = t["drops"].loc[L]
            assert row["ends at 100 %"] == "yes"
            assert number(row["NC1 fall"]) == pytest.approx(d["nc1"], rel=5e-3)
            assert number(row["its square root"]) ** 2 == pytest.approx(d["nc1"], rel=1e-2)
            assert number(row["NC3 fall"]) == pytest.approx(d["nc3"], rel=5e-3)
            assert number(row["square root / NC3 fall"]) == pytest.approx(d["nc1_root"] / d["nc3"], rel=5e-3)
        s = t["settings"]
        assert s.index.tolist() == ["data", "class counts", "counts by class index", "samples of a class", "input",
                                    "normalization", "backbone", "width", "batch size",
                                    "an epoch's last partial batch", "optimizer, lr", "lr schedule",
                                    "decays", "precision of the products", "metrics every (epochs)", "epochs"]
        # what the paper does not say of its data: how its random subset is drawn, the input, the normalization
        assert s.loc[["samples of a class", "input", "normalization"], "paper (Section 5)"].tolist() == [
            "random, drawn how not stated", "not stated", "not stated"]
        assert re.findall(r"[0-9]+", s.loc["samples of a class", "these runs"]) == [str(ch.runs[1].params["seed"])]
        assert s.loc["input", "these runs"] == "the images as stored"  # CIFAR-10: no input transform recorded
        assert [float(v) for v in re.findall(r"0\.[0-9]+", s.loc["normalization", "these runs"])] == [
            *nclib.data.CIFAR10_MEAN, *nclib.data.CIFAR10_STD]
        # the letters: rendered from the seed, resized as the provenance records, EMNIST's constants
        letters = {L: dataclasses.replace(r, params={**r.params, "dataset": "letters-synthetic", "seed": 4},
                                          provenance={**r.provenance, "data": {
                                              **r.provenance["data"], "dataset": "letters-synthetic", "seed": 4,
                                              "input": "28 to 32"}})
                   for L, r in ch.runs.items()}
        cells = figures.figure_tables(fig, letters, ch.check, ch.rows, ch.theory)["settings"]["these runs"]
        assert cells["samples of a class"] == "rendered from seed 4" and cells["input"] == "28 to 32"
        assert [float(v) for v in re.findall(r"0\.[0-9]+", cells["normalization"])] == [
            *nclib.data.EMNIST_MEAN, *nclib.data.EMNIST_STD]
        mixed = {**ch.runs, 6: dataclasses.replace(ch.runs[6], params={**ch.runs[6].params, "seed": 1},
                                                   provenance={**ch.runs[6].provenance,
                                                               "data": {**ch.runs[6].provenance["data"], "seed": 1}})}
        assert figures.figure_tables(fig, mixed, ch.check, ch.rows, ch.theory)["settings"].loc[
            "samples of a class", "these runs"] == "varies"
        # the backbone as built (depth 2, width 32, feature layer 32 x 32) and the paper's layer count, not its layers
        assert re.findall(r"[0-9]+", s.loc["backbone", "these runs"]) == ["2", "32", "32"]
        # the layer as code writes it: two arguments, no thousands separators inside the call at the paper's width
        cell = nclib.figures.chapter._backbone({**ch.runs[1].params, "width": 2048})
        assert re.search(r"Linear\(([^)]*)\)", cell).group(1).split(", ") == ["2048", "2048"]
        assert re.findall(r"[0-9]+", s.loc["backbone", "paper (Section 5)"]) == ["6"]
        # full batch: no sample left out; the paper does not say what becomes of an epoch's last partial batch
        assert s.loc["an epoch's last partial batch", "paper (Section 5)"] == "not stated"
        assert not re.findall(r"[0-9]+", s.loc["an epoch's last partial batch", "these runs"])
        # batches of 8 of the 30 samples leave 6 out each epoch, as the runs' provenance records it
        batched = {L: dataclasses.replace(r, params={**r.params, "batch_size": 8},
                                          provenance={**r.provenance, "steps_per_epoch": 3, "dropped_per_epoch": 6,
                                                      "steps": 3 * r.params["epochs"]})
                   for L, r in ch.runs.items()}
        cell = figures.figure_tables(fig, batched, ch.check, ch.rows, ch.theory)["settings"].loc[
            "an epoch's last partial batch", "these runs"]
        assert re.findall(r"[0-9]+", cell) == ["6", "30"]
        assert figures.figure_glue(fig, "tiny", batched, ch.check, ch.rows, ch.theory)["dropped"] == "6"
        assert re.findall(r"[0-9.]+", s.loc["lr schedule", "these runs"]) == ["0.1", "80"]  # factor, epoch
        assert s.loc["precision of the products"].tolist() == ["not stated", "fp32"]
        assert s.loc["epochs"].tolist() == ["12,000", "120"] and s.loc["width"].tolist() == ["2,048", "32"]
        assert number(s.loc["decays", "these runs"].split("= ")[-1]) == 0.001
        assert s.loc["counts by class index", "these runs"].endswith("(as in Dang et al.)")
    assert figures.rise_cell(None) == "none"
    assert re.findall(r"[0-9.]+", figures.rise_cell(dict(factor=21.63, prev_epoch=480, epoch=500))) == \
        ["21.6", "480", "500"]


def test_figure_chapter_picks_the_preferred_scale(tiny, tmp_path):
    # no GPU runs: the CPU-scale folder, empty here; finished GPU runs: checked against the paper's settings
    with pytest.raises(ValueError, match="'cpu-scale' has no runs of Figure 3"):
        figures.figure_chapter(3, root=tmp_path)
    shutil.copytree(tiny / "tiny" / "fig3", tmp_path / "gpu" / "fig3")
    with pytest.raises(ValueError, match=r"Figure 3 \(gpu\) runs do not match its configuration: L=1: width = 32"):
        figures.figure_chapter(3, root=tmp_path)


def test_summary_tables_and_glue(tiny, tiny_scale, monkeypatch):
    chapters = {k: figures.figure_chapter(k, "tiny", root=tiny) for k in (1, 3)}
    t = figures.summary_tables(chapters)
    assert t["figures"].index.tolist() == [1, 3] and t["figures"]["epochs"].tolist() == ["120", "120"]
    assert t["figures"]["bias"].tolist() == ["yes", "no"]
    # the data as the legends name them: the fixture's CIFAR-10 file is an .npz, the letters a stand-in
    assert t["figures"]["data"].tolist() == [nclib.plotting.dataset_label(chapters[k].runs[1].params) for k in (1, 3)]
    assert t["final"].index.tolist() == [(k, "tiny", L) for k in (1, 3) for L in (1, 3, 6)]
    assert t["final"].loc[(3, "tiny", 1), "‖b − n/N‖"] == "no bias"
    for key, name in nclib.plotting.MATH_NAMES.items():  # as a figure chapter's final table heads and writes them
        assert t["final"][name].tolist() == written_column([r[key] for c in chapters.values() for r in c.rows], 2,
                                                           uniform=True)
    assert t["made"].loc[(1, "tiny", 3), "trained"] == "side by side"
    # the spacing of the records the epochs and rises are read at
    assert t["training"]["recorded every (epochs)"].tolist() == [TINY["metric_every"]] * 6
    assert t["made"].loc[(3, "tiny", 3), "trained"] == "alone"
    assert t["stalls"].empty and t["stalls"].index.names == ["figure", "L"]
    g = figures.summary_glue(chapters)
    rows = [r for c in chapters.values() for r in c.rows]
    assert int(g["n-runs"]) == len(rows)
    assert (g["n-runs"], g["n-fitted"], g["n-stalled"], g["gpu-figures"]) == ("6", "6", "0", "")
    assert (g["n-gpu-runs"], g["n-fitted-gpu"], g["n-cpu-runs"]) == ("0", "0", "6")
    assert g["paper-epochs"] == "12,000"
    assert not {"n-gpu", "n-cpu", "drop-min"} & set(g)  # quoted by no chapter
    wall = figures.wall_time_s(chapters[1].runs) + figures.wall_time_s(chapters[3].runs)
    assert g["wall-cpu"] == f"{wall / 60:.1f}" and "wall-gpu" not in g
    wh = lambda k: [r["nc2_wh"] for r in chapters[k].rows]  # noqa: E731
    assert (g["wh-1-3-with-min"], g["wh-1-3-without-max"]) == (written(min(wh(1)), 2), written(max(wh(3)), 2))
    be = [r["bias_error"] / r["bias_error_0"] for r in chapters[1].rows]
    assert (g["be-min"], g["be-max"]) == (written(min(be), 2), written(max(be), 2))
    assert "partial-off-max" not in g  # no run ends below 100 %
    # L = 6 of Figure 1 made to end with 3 samples wrong at 3x its objective: a row of the stalls table and its glue
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)
    run6 = chapters[1].runs[6]
    N = figures.run_theory(run6.params).N
    acc6 = np.where(np.arange(len(run6.history["epoch"])) >= 2, 1.0 - 3.0 / N, 1.0)
    obj6 = 3.0 * np.asarray(run6.history["objective"], dtype=float)
    chapters[1] = dataclasses.replace(chapters[1], runs={**chapters[1].runs,
                                                         6: _with_history(run6, train_acc=acc6, objective=obj6)})
    t, g = figures.summary_tables(chapters), figures.summary_glue(chapters)
    place = figures.stalls(chapters[1].runs)[6]["partial"]
    assert t["stalls"].index.tolist() == [(1, 6)] and t["stalls"].loc[(1, 6), "misclassified"] == "3"
    assert t["stalls"].loc[(1, 6), "train acc (%)"] == figures.percent(figures.stalls(chapters[1].runs)[6]["train_acc"])
    assert t["stalls"].loc[(1, 6), "modes at 0"] == place["dead"]
    off, runner_up = 100 * abs(place["above"]), 100 * place["runner_up"]
    assert t["stalls"].loc[(1, 6), "above the nearest point (%)"] == ("-" if place["above"] < 0 else "+") + written(off, 2)
    assert t["stalls"].loc[(1, 6), "distance to the next point (%)"] == written_column([runner_up], 3)[0]
    # the bounds over the stalled runs hold and read, at the table's figures, as the one run's values there
    assert number(g["partial-off-max"]) >= off and g["partial-off-max"] == at_most(off, 2, zeros=True)
    assert written(number(g["partial-off-max"]), 2) == written(off, 2)
    # the distance to the next point, the one run's own: to nearest, as the table's cell
    cell = t["stalls"].loc[(1, 6), "distance to the next point (%)"]
    assert g["partial-runner-up-min"] == g["partial-runner-up-max"] == cell == written_column([runner_up], 3)[0]
    # NC2^WH's four ends, with and without a bias, over the runs at 100 % only: the stalled L = 6 of Figure 1 and a
    # stalled L = 1 of Figure 3 end far above and below every other run, and are left out
    def stalled(k, L, wh_factor):
        run = chapters[k].runs[L]
        acc = np.where(np.arange(len(run.history["epoch"])) >= 2, 1.0 - 3.0 / N, 1.0)
        runs = {**chapters[k].runs, L: _with_history(
            run, train_acc=acc, nc2_wh=wh_factor * np.asarray(run.history["nc2_wh"], dtype=float))}
        return dataclasses.replace(chapters[k], runs=runs, rows=figures.final_rows(runs))

    chapters[1], chapters[3] = stalled(1, 6, 100.0), stalled(3, 1, 1e-3)
    g = figures.summary_glue(chapters)
    fit = {k: [r["nc2_wh"] for r in chapters[k].rows if r["train_acc"] == 1.0] for k in (1, 3)}
    assert [len(fit[1]), len(fit[3])] == [2, 2] and g["n-fitted"] == "4"
    assert [g[f"wh-1-3-{case}-{end}"] for case in ("with", "without") for end in ("min", "max")] == \
        [written(f(fit[k]), 2) for k in (1, 3) for f in (min, max)]
    assert len({g[f"wh-1-3-{case}-{end}"] for case in ("with", "without") for end in ("min", "max")}) == 4


def test_one_call_reads_the_start_of_the_call_two_runs_record():
    def run(started):
        return figures.Run(None, {"L": 1}, {"epoch": np.arange(2)},
                           {} if started is None else {"started_utc": started})
    t, u = "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"
    assert figures.one_call(run(t), run(t)) and not figures.one_call(run(t), run(u))
    assert figures.one_call(run(t), run(None)) and figures.one_call(run(None), run(None))  # no record: the name alone
    for bad, name in (((None, run(t)), "a"), ((run(t), {"started_utc": t}), "b")):
        with pytest.raises(ValueError, match=f"^{name} must be a Run"):
            figures.one_call(*bad)


def test_the_cells_of_the_chapters_tables_are_written_and_refused_by_name():
    """comma_list, epoch_cell and table_column, the cells the figure chapters and the summary write: lists joined by
    commas, epochs with thousands separators (or "none recorded"), columns of numbers at one precision with "" for
    a run that has no value."""
    assert figures.comma_list([1, 3, 6]) == "1, 3, 6" and figures.comma_list(f"{m:,}" for m in (6000, 9000)) == \
        "6,000, 9,000"
    assert figures.comma_list([]) == ""
    for bad in ("136", 5, None):  # one str would be written letter by letter
        with pytest.raises(ValueError, match="^values must be a list"):
            figures.comma_list(bad)
    assert (figures.epoch_cell(2600), figures.epoch_cell(np.int64(0)), figures.epoch_cell(None)) == \
        ("2,600", "0", "none recorded")
    for bad in (-1, 2.5, "2600", True):
        with pytest.raises(ValueError, match="^epoch must be a non-negative integer"):
            figures.epoch_cell(bad)
    values = [3.2, np.nan, 1.7e-6, np.inf, 0.048]
    shown = written_column([3.2, 1.7e-6, 0.048], 2)
    assert figures.table_column(values, 2) == [shown[0], "", shown[1], "", shown[2]]
    powers = written_column([3.2, 1.7e-6, 0.048], 2, uniform=True)
    assert figures.table_column(values, 2, uniform=True) == [powers[0], "", powers[1], "", powers[2]]
    for bad in ("1.5", None, [1.0, "x"], [1.0, None]):
        with pytest.raises(ValueError, match="^values must be a list of numbers"):
            figures.table_column(bad, 2)
    with pytest.raises(ValueError, match="^uniform must be True or False"):
        figures.table_column([1.0], 2, uniform="yes")


def test_epochs_are_written_with_thousands_separators():
    """Every epoch the figure chapters glue is written as the settings are ("2,800", not "2800"), and a list of
    epochs is joined by "; ", not by the commas inside its numbers: the committed GPU runs, past epoch 1,000."""
    chapters = {k: figures.figure_chapter(k, "gpu") for k in (1, 2, 3)}
    g3, runs3 = chapters[3].glue, chapters[3].runs
    dips = figures.accuracy_dips(runs3)
    spiked = figures.spikes(runs3)
    rows3 = {r["L"]: r for r in chapters[3].rows}
    pairs = [(g3["dip-L1-epoch"], dips[1]["low_epoch"]), (g3["dip-L1-back"], dips[1]["back"]),
             (g3["stays-L1"], rows3[1]["acc100_stays"]),
             (g3["spike-L6-milestone"], figures.next_milestone(runs3[6].params, spiked[6]["epoch"]))]
    assert all(e >= 1000 and text == f"{e:,}" for text, e in pairs), pairs
    assert chapters[3].tables["training"].loc[1, "100 % acc to the end from epoch"] == f"{rows3[1]['acc100_stays']:,}"
    epochs = [max(c.check["epochs"].values()) for c in chapters.values()]
    # the tables too: each run's epochs in the final table, each figure's in the summary's first
    assert all(c.tables["final"]["epochs"].tolist() == [f"{r['epochs']:,}" for r in c.rows] for c in chapters.values())
    assert figures.summary_tables(chapters)["figures"]["epochs"].tolist() == [f"{e:,}" for e in epochs]
    gpu_epochs = figures.summary_glue(chapters)["gpu-epochs"]
    assert gpu_epochs == "; ".join(f"{e:,}" for e in epochs) and max(epochs) >= 1000
    assert [int(e.replace(",", "")) for e in gpu_epochs.split("; ")] == epochs


def _with_history(run, **columns):
    return dataclasses.replace(run, history=dict(run.history, **columns))


def test_tables_say_a_run_is_below_100_percent_only_at_its_records_and_pair_each_runs_falls(tiny):
    runs = figures.load_figure(1, "tiny", root=tiny)
    h = runs[3].history
    acc = np.full(np.asarray(h["epoch"]).size, 0.9)  # below 100 % at every record
    below = {**runs, 3: _with_history(runs[3], train_acc=acc)}
    rows = figures.final_rows(below)
    training = figures.figure_tables(1, below, {"epochs": {L: 120 for L in below}}, rows,
                                     {L: figures.run_theory(r.params) for L, r in below.items()})["training"]
    assert training.loc[3, "100 % acc first at epoch"] == "none recorded"
    assert training.loc[3, "100 % acc to the end from epoch"] == "none recorded"
    table = figures.drops_table(below)
    assert table["ends at 100 %"].tolist() == ["yes", "no", "yes"]
    # a run whose NC3 falls more than NC1 on its scale: the quotient below 1, its own row
    toy = _with_history(runs[1], nc1=h["nc1"][0] * np.geomspace(1, 1e-2, h["nc1"].size),
                        nc3=h["nc3"][0] * np.geomspace(1, 1e-3, h["nc3"].size))
    assert figures.drops_table({1: toy}).loc[1, "square root / NC3 fall"] == "0.0100"
    with pytest.raises(ValueError, match="runs must hold at least one run"):
        figures.drops_table({})


def test_metric_drops_put_nc1_on_the_scale_of_the_linear_metrics(tiny):
    runs = figures.load_figure(1, "tiny", root=tiny)
    drops = figures.metric_drops(runs)
    assert sorted(drops) == sorted(runs)
    for L, run in runs.items():
        h = run.history
        for key in figures.DROP_KEYS:
            assert drops[L][key] == pytest.approx(h[key][0] / h[key][-1], rel=1e-12)
        assert drops[L]["nc1_root"] ** 2 == pytest.approx(drops[L]["nc1"], rel=1e-12)
    # the final rows give NC1's fall as metric_drops does, and refuse a fall that has no factor as it does
    assert {r["L"]: r["nc1_drop"] for r in figures.final_rows(runs)} == {L: d["nc1"] for L, d in drops.items()}
    gone = _with_history(runs[1], nc1=np.concatenate([runs[1].history["nc1"][:-1], [0.0]]))
    for fn in (figures.final_rows, figures.metric_drops):
        with pytest.raises(ValueError, match="^run L=1: nc1 must be finite and positive"):
            fn({1: gone})
    # a metric that falls by 100 ends a hundredth of its start; NC1 falling by 10^4 is a fall of 100 on that scale
    h = runs[1].history
    toy = _with_history(runs[1], nc1=h["nc1"][0] * np.geomspace(1, 1e-4, h["nc1"].size),
                        nc3=h["nc3"][0] * np.geomspace(1, 1e-2, h["nc3"].size))
    d = figures.metric_drops({1: toy})[1]
    assert (d["nc1_root"], d["nc3"]) == (pytest.approx(100), pytest.approx(100))
    with pytest.raises(ValueError, match="runs must hold at least one run"):
        figures.metric_drops({})
    with pytest.raises(ValueError, match="run L=1: nc3 must be finite and positive"):
        figures.metric_drops({1: _with_history(runs[1], nc3=np.zeros_like(h["nc3"]))})


def test_check_runs_passes_the_runs_and_names_what_fails(tiny, monkeypatch):
    runs1, runs3 = figures.load_figure(1, "tiny", root=tiny), figures.load_figure(3, "tiny", root=tiny)
    figures.check_runs(runs1, 1)
    figures.check_runs(runs3, 3)
    h = runs1[3].history
    broken = {
        "objective goes below the global minimum": dict(objective=h["objective"] * 0),
        "NC1 falls by a factor": dict(nc1=np.full_like(h["nc1"], 1.0)),
        # NC3 falls less than NC1, but more than NC1 on NC3's scale (the square root of its fall)
        "the square root of NC1's fall, .*, is not more than NC3's fall": dict(nc3=h["nc3"] * np.geomspace(
            1, figures.metric_drops(runs1)[3]["nc3"] / (2 * figures.metric_drops(runs1)[3]["nc1_root"]),
            h["nc3"].size)),
        "is not finite": dict(bias_error=np.full_like(h["bias_error"], np.nan)),
        r"\|\|b - n/N\|\| ends at .* not below": dict(bias_error=h["bias_error"][::-1].copy()),
        "global feature-mean norm ends at": dict(global_mean_norm=np.full_like(h["global_mean_norm"], 0.5)),
        "nc2_w ends at": dict(nc2_w=np.full_like(h["nc2_w"], 0.5)),
        "nc2_h ends at": dict(nc2_h=h["nc2_h"][::-1].copy()),
        "nc2_wh ends at": dict(nc2_wh=np.full_like(h["nc2_wh"], 0.5)),
        "nc3 ends at": dict(nc3=np.full_like(h["nc3"], 0.5), nc1=h["nc1"]),
    }
    for message, columns in broken.items():
        with pytest.raises(AssertionError, match=f"L=3: .*{message}"):
            figures.check_runs({**runs1, 3: _with_history(runs1[3], **columns)}, 1)
    # a run that ends below 100 % accuracy is checked as stalled: no NC1 fall is asked of it, but its accuracy
    # must be below the global minimizers' and leave a whole number of samples misclassified
    N = figures.run_theory(runs1[3].params).N
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)  # the fixture's record says 100 %
    acc = h["train_acc"].copy()
    acc[-1] = 1.0 - 2.0 / N
    stalled = _with_history(runs1[3], train_acc=acc, nc1=np.full_like(h["nc1"], 1.0))
    figures.check_runs({**runs1, 3: stalled}, 1)
    assert figures.stalls({**runs1, 3: stalled})[3]["misclassified"] == 2
    acc[-1] = 1.0 - 2.5 / N
    with pytest.raises(AssertionError, match="L=3: .* is not a whole number of samples"):
        figures.check_runs({**runs1, 3: _with_history(runs1[3], train_acc=acc)}, 1)
    real = figures.run_theory
    monkeypatch.setattr(nclib.figures.analysis, "run_theory",
                        lambda params: dataclasses.replace(real(params), minimizer_accuracy=0.5))
    with pytest.raises(AssertionError, match="L=3: the final training accuracy .* is not below .*global minimizers"):
        figures.check_runs({**runs1, 3: stalled}, 1)
    monkeypatch.undo()
    with pytest.raises(AssertionError, match="L=1: a bias-free run has a recorded bias error"):
        figures.check_runs({1: _with_history(runs3[1], bias_error=np.zeros_like(runs3[1].history["bias_error"]))}, 3)
    # Figure 2 is Figure 1's bias case on the stand-in: these CIFAR-10 runs do not name it
    with pytest.raises(AssertionError, match="L=1: the provenance does not label the letters-synthetic stand-in"):
        figures.check_runs(runs1, 2)
    with pytest.raises(ValueError, match="runs must hold"):
        figures.check_runs({}, 1)


def test_read_benchmark(tmp_path):
    text = ("$ python benchmarks/bench_train.py --steps 1500\n"
            "device          NVIDIA H100 80GB HBM3, torch 2.11.0+cu130\n"
            "problem         N=3000, input dim 3072, K=10, batch 128 (23 steps/epoch), width 2048\n"
            "plain loop           512.0 steps/s   (DataLoader, host->device copies, .item() per step)\n"
            "nclib.train         4096.0 steps/s\n"
            "ratio                 8.00 x\n")
    path = tmp_path / "bench_train_gpu.txt"
    path.write_text(text)
    b = figures.read_benchmark(path)
    assert b["command"] == "python benchmarks/bench_train.py --steps 1500"
    assert (b["plain"], b["engine"], b["ratio"]) == (512.0, 4096.0, 8.0)
    assert b["device"].startswith("NVIDIA H100") and "figure_ratio" not in b
    path.write_text(text + "figure runs     L = 1, 3, 6, 40 epochs each: one after another 3.60 s, side by side "
                    "2.40 s, ratio 1.50 x\n")
    b = figures.read_benchmark(path)
    assert (b["figure_apart_s"], b["figure_together_s"], b["figure_ratio"]) == (3.6, 2.4, 1.5)
    path.write_text(text + "figure runs     garbled\n")
    with pytest.raises(ValueError, match="unreadable 'figure runs' line"):
        figures.read_benchmark(path)
    path.write_text("\n".join(text.splitlines()[:3]))
    with pytest.raises(ValueError, match="no plain, engine, ratio line"):
        figures.read_benchmark(path)
    with pytest.raises(ValueError, match="is not a file"):
        figures.read_benchmark(tmp_path / "none.txt")
    assert "engine_range" not in b and "commit" not in b  # an output of one timing per loop has none
    path.write_text(text.replace("512.0 steps/s", "512.0 steps/s   [498.5, 530.0]")
                    .replace("8.00 x", "8.00 x   [7.70, 8.21] (per round)") + "commit          0123abc\n")
    b = figures.read_benchmark(path)
    assert (b["plain_range"], b["ratio_range"], b["commit"]) == ((498.5, 530.0), (7.7, 8.21), "0123abc")
    assert (b["plain"], b["ratio"]) == (512.0, 8.0) and "engine_range" not in b
    committed = figures.read_benchmark(figures.BENCHMARKS / "bench_train_cpu.txt")
    assert committed["engine"] > 0 and committed["plain"] > 0


def test_run_counts_reads_counts_as_the_run_resolved_them():
    assert figures.run_counts({"dataset": "cifar10", "counts": None}).tolist() == figures.figure_counts(1)
    assert figures.run_counts({"dataset": "letters-synthetic", "counts": "emnist-letters",
                               "class_order": "reference"}).tolist() == figures.figure_counts(2)
    assert figures.run_counts({"dataset": "synthetic", "counts": [4, 2]}).tolist() == [4, 2]
    assert figures.run_counts({"dataset": "synthetic", "counts": None}).tolist() == [20, 10, 5]
    with pytest.raises(ValueError, match="counts"):
        figures.run_counts({"dataset": "synthetic", "counts": [4, 0]})


def test_reading_committed_runs_does_not_import_torch():
    """Reading and analysing run folders needs no torch (nclib.runs); what compares them with the engine's
    parameter list (figure_chapter, the legends' epochs against the paper's, through nclib.train.DEFAULTS)
    imports it."""
    import subprocess
    import sys

    code = ("import sys, nclib.figures as F, nclib.plotting; runs = F.load_figure(1, 'cpu-scale'); "
            "F.final_rows(runs); F.stalls(runs); F.draw_theory(runs); "
            "nclib.plotting.load_runs(F.run_folders(3, 'cpu-scale')); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert out.stdout.strip() == "False", out.stderr


def test_figure_configurations_take_the_reference_decays():
    # the figure configurations take the reference decays, and check_figure resolves them as nclib.train does
    for k in figures.FIGURES:
        p = figures.figure_parameters(k, "gpu")
        assert p["lam_W"] == p["lam_H"] == "reference"
        K = len(p["counts"])
        resolved = nclib.train.check_params(**figures.train_kwargs(dict(p, data_path=None, dataset="synthetic"), 1))
        assert resolved["lam_W"] == resolved["lam_H"] == nclib.parameters.reference_decay(K)


def test_check_stalls_asserts_each_stalled_run_is_next_to_a_local_minimizer(monkeypatch):
    runs = figures.load_figure(1, "gpu")  # the committed runs: L = 6 stalled, next to the point with one mode at 0
    st = figures.check_stalls(runs)
    assert sorted(st) == [6] and st[6]["partial"]["dead"] == 1
    nearest = minority.nearest_partial_minimum
    # as far above its point as the next nearest point is: no longer "far nearer it than any other"
    monkeypatch.setattr(minority, "nearest_partial_minimum",
                        lambda *a: {**nearest(*a), "runner_up": nearest(*a)["above"] * 4})
    with pytest.raises(AssertionError, match="^L=6: not just above a local minimizer"):
        figures.check_stalls(runs)
    monkeypatch.undo()
    real = figures.run_theory
    monkeypatch.setattr(nclib.figures.analysis, "run_theory",
                        lambda params: dataclasses.replace(real(params), minimizer_accuracy=0.5))
    with pytest.raises(AssertionError, match="^L=6: accuracy .* that of the global minimizers 0.5"):
        figures.check_stalls(runs)


def test_smallest_multiple_is_none_where_the_smallest_count_does_not_divide_the_misclassified():
    """The committed GPU runs: Figure 3's L = 6 misclassifies 399 samples, no whole number of its smallest classes
    of 100 (the case fig3.md asserts), Figure 1's L = 6 one class of 100, Figure 2's L = 3 and 6 two and eighteen
    classes of 50."""
    got = {}
    for fig in (1, 2, 3):
        for L, st in figures.stalls(figures.load_figure(fig, "gpu")).items():
            got[fig, L] = (st["misclassified"], st["smallest"], st["smallest_multiple"])
    assert got == {(1, 6): (100, 100, 1), (2, 3): (100, 50, 2), (2, 6): (900, 50, 18), (3, 6): (399, 100, None)}


def test_stalls(tiny, monkeypatch):
    """A run that reached 100 % and fell below for good, and one that never reached it: what stalls records
    against the history written here (first without, then with a per-class record)."""
    runs = figures.load_figure(1, "tiny", root=tiny)
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)
    N = figures.run_theory(runs[6].params).N
    h6 = runs[6].history
    e = np.asarray(h6["epoch"])
    assert e.size >= 4
    acc6 = np.ones(e.size)
    acc6[2:] = 1.0 - 3.0 / N  # 100 % up to the second recorded epoch, then 3 samples wrong to the end
    acc6[2] = 1.0 - 4.0 / N
    obj6 = np.asarray(h6["objective"], dtype=float).copy()
    # three objective values at the start of the stall (epoch 40), at the start of the second half (60) and at the
    # end, so that the change over the second half is measured from the half alone
    obj6[2:] = obj6[1] * 3.0
    obj6[2], obj6[3] = obj6[1] * 3.3, obj6[1] * 3.2
    acc3 = np.full(e.size, 1.0 - 1.0 / N)  # never at 100 %
    acc3[0] = 0.1
    stalled = {**runs, 6: _with_history(runs[6], train_acc=acc6, objective=obj6),
               3: _with_history(runs[3], train_acc=acc3)}
    st = figures.stalls(stalled)
    assert sorted(st) == [3, 6]
    assert (st[6]["since"], st[6]["before"], st[6]["end"], st[6]["misclassified"]) == (int(e[2]), int(e[1]), int(e[-1]), 3)
    assert st[6]["best_acc"] == 1.0 - 3.0 / N and st[6]["objective_since"] == obj6[2]
    assert st[6]["objective_before"] == obj6[1] and st[6]["lr_before"] == st[6]["lr_since"] == h6["lr"][1]
    assert st[3]["before"] is None and st[3]["since"] == 0 and st[3]["acc100_epoch"] is None
    assert st[3]["lr_before"] is None and st[3]["misclassified"] == 1
    assert st[6]["minimizer_accuracy"] == 1.0
    n = figures.run_theory(runs[6].params).n
    # the counts are 1,1,2,2,...,5,5: 3 samples are 3 smallest classes, but only 2 classes have that size
    assert (st[6]["smallest"], st[6]["smallest_count"], st[6]["smallest_multiple"]) == (1, 2, 3)
    assert int(n.min()) == 1
    # the fixture records every 20 epochs to 120: the second half starts at the record of epoch 60, the midpoint
    assert e.tolist() == [0, 20, 40, 60, 80, 100, 120]
    half = 60
    assert st[6]["half"] == half
    np.testing.assert_allclose(st[6]["objective_change"], obj6[-1] / obj6[list(e).index(half)] - 1)
    np.testing.assert_allclose(st[6]["objective_change"], 3.0 / 3.2 - 1)
    th6 = figures.run_theory(runs[6].params)
    np.testing.assert_allclose(st[6]["objective_ratio"], obj6[-1] / th6.minimum)
    # the Lemma A.2 local minimizer with modes at 0 nearest the final objective (L >= 2 only)
    place = st[6]["partial"]
    values = minority.partial_minima(n, th6.lam_W, th6.lam_H, 6, th6.bias)["value"]
    assert place["partial"] == values[np.argmin(np.abs(obj6[-1] / values - 1))]
    assert st[6]["partial_ratio"] == place["partial"] / th6.minimum
    # NC1 to NC3 at that point: of the modes the global minimizer keeps, the point keeps the strongest, aligned, and
    # puts the 8 others at 0; their kappa are distinct, so each is a block of one mode that adds 1 to NC3^2
    kappa = nclib.ufm.problem_svd(n, th6.bias)[1]
    kept_at_minimum = nclib.ufm.mode_strengths(kappa, th6.N, th6.lam_W, th6.lam_H, 6) > 0
    at_zero = kept_at_minimum & ~place["alive"]
    assert not (place["alive"] & ~kept_at_minimum).any() and place["alive"].sum() == 1
    assert place["dead"] == int(at_zero.sum()) == np.unique(kappa[at_zero]).size == 8
    np.testing.assert_allclose(np.sort(kappa[at_zero]), np.sort(place["dead_kappa"]), rtol=1e-12)
    np.testing.assert_allclose(st[6]["partial_metrics"]["nc3"], np.sqrt(8), rtol=1e-12)
    assert st[6]["partial_metrics"]["nc1"] < 1e-20
    assert st[3]["partial"] is not None and st[3]["partial_metrics"] is not None
    at_L1 = figures.stalls({1: _with_history(runs[1], train_acc=acc3)})[1]
    assert at_L1["partial"] is None and at_L1["partial_metrics"] is None
    assert st[3]["classes"] is None and st[6]["classes"] is None
    # with a per-class record for L = 6: the classes below 100 % at the end, checked against the overall accuracy
    k = int(np.argmax(n))
    per = np.ones((e.size, n.size))
    per[-1, k] = 1.0 - 3.0 / n[k]
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy",
                        lambda path: {"epoch": e, "acc": per} if path == runs[6].path else None)
    st = figures.stalls(stalled)
    assert st[6]["classes"] == [(k, int(n[k]), per[-1, k])] and st[3]["classes"] is None
    per[-1, k] = 1.0 - 1.0 / n[k]
    with pytest.raises(ValueError, match="class_accuracy.csv misclassifies 1 samples at the end, the history 3"):
        figures.stalls(stalled)
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy",
                        lambda path: {"epoch": e[:-1], "acc": per[:-1]})
    with pytest.raises(ValueError, match="class_accuracy.csv ends at epoch"):
        figures.stalls(stalled)
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)
    assert figures.stalls(runs) == {}


def test_calibrated_seconds_and_the_benchmark_figure_line(tmp_path):
    cal = {"kinds": {"cifar10": dict(data_s=1.0, setup_s=2.0, epoch_s=0.05, eval_s=0.5),
                     "letters-synthetic": dict(data_s=30.0, setup_s=3.0, epoch_s=0.1, eval_s=0.7)}}
    m = figures.scale_settings("gpu")["metric_every"]
    # one evaluation per history row: epoch 0, every m-th epoch, and the last when m does not divide the epochs
    want = figures.NOTEBOOK_OVERHEAD_S + 1.0 + 2.0 + 1000 * 0.05 + (1000 // m + 1 + (1000 % m > 0)) * 0.5
    assert figures.calibrated_seconds(cal, 1, 1000) == pytest.approx(want, rel=1e-15, abs=0)
    assert figures.calibrated_seconds(cal, 4, 0) == pytest.approx(figures.NOTEBOOK_OVERHEAD_S + 33.0 + 1 * 0.7)
    with pytest.raises(ValueError, match="calibration has no complete entry for 'letters-synthetic'"):
        figures.calibrated_seconds({"kinds": {"cifar10": cal["kinds"]["cifar10"]}}, 2, 10)
    with pytest.raises(ValueError, match="epochs"):
        figures.calibrated_seconds(cal, 1, -1)
    out = tmp_path / "bench_train_x.txt"
    out.write_text("$ python benchmarks/bench_train.py --figure-epochs 40\ndevice          cuda (X)\n"
                   "plain loop           200.0 steps/s\nnclib.train         1000.0 steps/s\nratio                 5.00 x\n"
                   "figure runs     L = 1, 3, 6, 40 epochs each: one after another 2.89 s, side by side 2.31 s, "
                   "ratio 1.25 x\n")
    b = figures.read_benchmark(out)
    assert (b["figure_epochs"], b["figure_apart_s"], b["figure_together_s"], b["figure_ratio"]) == (40, 2.89, 2.31, 1.25)


def test_benchmark_glue_logged_figures_and_calibration_glue(tmp_path, tiny, tiny_scale):
    line = ("figure runs     L = 1, 3, 6, 40 epochs each: one after another 2.89 s, side by side 2.31 s, "
            "ratio 1.25 x\n")
    files = []
    for name, device, plain, engine in (("cpu", "cpu (x)", 27.3, 37.7), ("gpu", "cuda (NVIDIA H200), torch", 214.0,
                                                                          1389.0), ("gpu_fp32", "cuda (NVIDIA H200)",
                                                                                    239.0, 730.0)):
        path = tmp_path / f"bench_train_{name}.txt"
        path.write_text(f"device          {device}\nplain loop  {plain} steps/s\nnclib.train  {engine} steps/s\n"
                        f"ratio  {engine / plain:.2f} x\n" + (line if name == "gpu" else ""))
        files.append(path)
    g = figures.benchmark_glue(files)
    assert (g["bench-cpu-engine"], g["bench-cpu-plain"], g["bench-cpu-ratio"]) == ("37.7", "27.3", "1.38")
    assert (g["bench-gpu-engine"], g["bench-gpu-plain"], g["bench-gpu-ratio"]) == ("1,389", "214", "6.49")
    assert (g["bench-gpu-fp32-engine"], g["bench-gpu-fp32-ratio"]) == ("730", "3.05")
    assert g["bench-tf32-speedup"] == f"{1389 / 730:.2f}" and g["bench-gpu-device"] == "NVIDIA H200"
    assert (g["bench-figure-epochs"], g["bench-figure-together"], g["bench-figure-apart"],
            g["bench-figure-ratio"]) == ("40", "2.31", "2.89", "1.25")
    # a single path is not a list of paths (its characters would be read as paths), nor is a list of other things
    for bad in (str(files[0]), files[0], [], None, [None], tuple(str(f) for f in files) + (3,)):
        with pytest.raises(ValueError, match=r"^files must be a list of at least one path"):
            figures.benchmark_glue(bad)
    assert figures.benchmark_glue([str(files[0])]) == {"bench-cpu-engine": "37.7", "bench-cpu-plain": "27.3",
                                                       "bench-cpu-ratio": "1.38"}
    bare = tmp_path / "bench_train_gpu.txt"
    bare.write_text(bare.read_text().replace("cuda (NVIDIA H200), torch", "cuda H200, torch"))
    with pytest.raises(ValueError, match="bench_train_gpu.txt: its device line .* names no GPU model"):
        figures.benchmark_glue(files)
    log = ("== Figure 1: 2600 epochs in a budget of 199 s (132 s elapsed, 399 s left)\n"
           "== Figure 1 (gpu) ended with status 0 after 174 s: ...\n"
           "== Figure 3: 3000 epochs in a budget of 223 s (308 s elapsed, 223 s left)\n")
    assert figures.logged_figure(log, 1) == {"epochs": 2600, "budget_s": 199, "took_s": 174}
    assert figures.logged_figure(log, 3) == {"epochs": 3000, "budget_s": 223, "took_s": None}
    assert figures.logged_figure(log, 2) == {"epochs": None, "budget_s": None, "took_s": None}
    cal = {"device": "NVIDIA H200", "precision": "tf32",
           "kinds": {"cifar10": dict(data_s=1.0, setup_s=2.0, epoch_s=0.0574, eval_s=0.5),
                     "letters-synthetic": dict(data_s=35.0, setup_s=3.0, epoch_s=0.1047, eval_s=0.73)}}
    chapters = {k: figures.figure_chapter(k, "tiny", root=tiny) for k in (1, 3)}
    c = figures.calibration_glue(cal, chapters, log)
    full = {k: figures.calibrated_seconds(cal, k, 12000) for k in figures.FIGURES}
    assert (c["cal-epochs"], c["cal-cifar-min"], c["cal-letters-min"]) == \
        ("12,000", f"{full[1] / 60:.0f}", f"{full[2] / 60:.0f}")
    assert c["cal-all-min"] == f"{sum(full.values()) / 60:.0f}" and c["cal-device"] == "NVIDIA H200"
    assert not any(k.startswith("cal-fig") for k in c)  # no figure here is read from GPU runs
    # read as GPU runs: each figure's seconds predicted by the calibration of the command that ran it
    import dataclasses
    as_gpu = {1: dataclasses.replace(chapters[1], scale="gpu")}
    slower = {**cal, "kinds": {**cal["kinds"], "cifar10": {**cal["kinds"]["cifar10"], "epoch_s": 0.2}}}
    epochs = max(as_gpu[1].check["epochs"].values())
    for own, used in ((None, cal), ({1: slower}, slower)):
        c = figures.calibration_glue(cal, as_gpu, log, own)
        assert c["cal-fig1-predicted"] == f"{figures.calibrated_seconds(used, 1, epochs):.0f}"
        assert (c["cal-fig1-budget"], c["cal-fig1-took"]) == ("199", "174")
    assert c["cal-cifar-min"] == f"{full[1] / 60:.0f}"  # the whole-figure minutes stay the given calibration's


def test_gpu_logs_read_every_job_in_order_and_the_budget_lines_of_each_figure(tmp_path):
    """The committed logs: two jobs, the first fitting Figures 1 and 3 to their budgets, the second Figure 2; a folder
    of logs of one's own is read in the order of its jobs, and one without logs is refused by name."""
    files = figures.gpu_log_files()
    assert [p.parent.name for p in files] == ["call1", "call2"]
    assert figures.gpu_logs() == "\n".join(files.values())
    assert [[line["figure"] for line in figures.budget_lines(text)] for text in files.values()] == [[1, 3], [2]]
    for job, text in (("b", "== Figure 2: 700 epochs in a budget of 147 s (99 s elapsed, 147 s left)\n"),
                      ("a", "x\n== Figure 1: 10 epochs in a budget of 20 s (30 s elapsed, 40 s left)\n"
                            "== Figure 1 (gpu) ended with status 0 after 19 s\n")):
        (tmp_path / job).mkdir()
        (tmp_path / job / "log.txt").write_text(text)
    (tmp_path / "c").mkdir()  # a folder without a log is no job
    text = figures.gpu_logs(tmp_path)
    assert figures.budget_lines(text) == [
        {"figure": 1, "epochs": 10, "budget_s": 20, "elapsed_s": 30, "left_s": 40},
        {"figure": 2, "epochs": 700, "budget_s": 147, "elapsed_s": 99, "left_s": 147}]
    assert figures.logged_figure(text, 1) == {"epochs": 10, "budget_s": 20, "took_s": 19}
    assert figures.budget_lines("== Figure 1 (gpu): parameters {}") == []
    with pytest.raises(ValueError, match="root .* holds no GPU job log"):
        figures.gpu_log_files(tmp_path / "c")
    with pytest.raises(ValueError, match="log_text must be the text of a GPU log"):
        figures.budget_lines(files)


def test_the_letters_benchmark_times_a_sample_and_the_whole_profile_and_is_read_back(tmp_path, capsys, monkeypatch):
    """benchmarks/bench_letters.py at the CPU scale (550 letters): its output opens with the command, names the
    profile and the sample, and its ratio is the quotient of the whole profile's median by the sample's scaled to
    the profile; read_letters_benchmark reads every number back and refuses a file that is no such output."""
    import importlib.util

    # the script sets the thread variables the caller left unset as it loads; set, then unset here, they are
    # restored after this test (monkeypatch undoes only what it changed), and no later test's subprocess inherits them
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
        monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = importlib.util.spec_from_file_location("bench_letters", nclib.ROOT / "benchmarks" / "bench_letters.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--scale", "cpu-scale", "--sample", "52", "--repeats", "1"])
    out = tmp_path / "bench_letters.txt"
    out.write_text(capsys.readouterr().out)
    b = figures.read_letters_benchmark(out)
    assert b["command"].startswith("OMP_NUM_THREADS=1 python ") and b["command"].endswith("--repeats 1")
    counts = figures.figure_parameters(2, "cpu-scale")["counts"]
    assert (b["scale"], b["letters"], b["classes"], b["sample"], b["repeats"]) == ("cpu-scale", sum(counts), 26, 52, 1)
    assert b["sample_scaled_s"] == pytest.approx(b["sample_s"] * sum(counts) / 52, rel=0.01)
    assert b["ratio"] == pytest.approx(b["whole_s"] / b["sample_scaled_s"], rel=0.01)
    # one round: its range is the ratio itself, printed to 3 decimals where the ratio has 4, so the two agree
    # within half a unit of each last decimal (a relative margin fails on a ratio below 0.5 rounded the other way)
    printed = 0.5e-3 + 0.5e-4
    assert b["ratio_range"][0] - printed <= b["ratio"] <= b["ratio_range"][1] + printed
    assert len(b["commit"]) == 40 and len(b["load"]) == 3
    with pytest.raises(SystemExit):
        bench.main(["--sample", "25"])  # fewer than one letter of each class
    out.write_text(out.read_text().replace("ratio ", "quotient "))
    with pytest.raises(ValueError, match="is not a bench_letters output: no ratio line"):
        figures.read_letters_benchmark(out)
    with pytest.raises(ValueError, match="is not a file"):
        figures.read_letters_benchmark(tmp_path / "none.txt")


def test_the_committed_letters_benchmark_is_of_the_gpu_profile():
    b = figures.read_letters_benchmark()
    counts = figures.figure_parameters(2, "gpu")["counts"]
    assert (b["scale"], b["letters"], b["sample"]) == ("gpu", sum(counts), 260) and not b["dirty"]
    assert b["command"].startswith("OMP_NUM_THREADS=1 ")
    assert b["ratio"] == pytest.approx(b["whole_s"] / b["sample_scaled_s"], rel=0.01)


def test_order_held_counts_the_records_that_rank_as_the_last(tiny):
    runs = figures.load_figure(1, "tiny", root=tiny)
    e = np.asarray(runs[1].history["epoch"])
    k = e.size
    # NC1: L = 1 < 3 < 6 at every record but the first of the last three, where 1 and 3 trade places
    nc1 = {1: np.full(k, 1.0), 3: np.full(k, 2.0), 6: np.full(k, 3.0)}
    nc1[3][k - 3] = 0.5
    made = {L: _with_history(run, nc1=nc1[L]) for L, run in runs.items()}
    held = figures.order_held(made, "nc1", last=3)
    assert held == {"records": 3, "held": 2, "order": [1, 3, 6], "kept": [6]}
    assert figures.order_held(made, "nc1", last=2)["kept"] == [1, 3, 6]
    assert figures.order_held(made, "nc1", last=10 * k)["records"] == k - 1  # every record but epoch 0
    # the distance to the global minimum is the objective less each run's own minimum
    gap = figures.order_held(runs, "gap", last=1)
    final = {L: float(r.history["objective"][-1]) - figures.run_theory(r.params).minimum for L, r in runs.items()}
    assert gap["order"] == sorted(final, key=final.get) and gap["held"] == gap["records"] == 1
    with pytest.raises(ValueError, match="key must be one of"):
        figures.order_held(runs, "objective")
    with pytest.raises(ValueError, match="last"):
        figures.order_held(runs, "nc1", last=0)
    with pytest.raises(ValueError, match="runs must hold"):
        figures.order_held({}, "nc1")
    short = {**runs, 6: _with_history(runs[6], **{k: np.asarray(v)[:-1] for k, v in runs[6].history.items()})}
    with pytest.raises(ValueError, match="runs must all end at the same epoch"):
        figures.order_held(short, "nc1")  # a shorter run would move the window away from the final rows
    first = {L: _with_history(r, **{k: np.asarray(v)[:1] for k, v in r.history.items()}) for L, r in runs.items()}
    with pytest.raises(ValueError, match="no recorded epoch after epoch 0"):
        figures.order_held(first, "nc1")


def test_percent_writes_a_training_accuracy_as_the_prose_does():
    assert figures.percent(0.9667) == "96.7" and figures.percent(1.0) == "100.0"
    assert figures.percent(0.99966667, 2) == "99.97" and figures.percent(0.0) == "0.0"
    assert figures.percent(np.float64(0.5), 0) == "50"
    # below 100 % never reads as 100: rounded down to the last figure instead, still a true "at least"
    assert figures.percent(2999 / 3000) == "99.9" and figures.percent(2999 / 3000, 2) == "99.97"
    assert [figures.percent(1 - 1e-9, d) for d in (0, 1, 2, 3)] == ["99", "99.9", "99.99", "99.999"]
    assert figures.percent(0.9994) == "99.9" and figures.percent(0.99949, 2) == "99.95"
    for bad in (1.5, -0.2, np.nan, None, "0.5", True):  # not a fraction between 0 and 1
        with pytest.raises(ValueError, match="acc must be a training accuracy, a fraction between 0 and 1"):
            figures.percent(bad)
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="decimals must be a non-negative integer"):
            figures.percent(0.5, decimals=bad)


def test_functions_of_runs_and_chapters_refuse_what_they_cannot_read(tiny):
    """Nothing to read is refused by the argument's name, not answered with 0, an empty list or a deep error."""
    runs = figures.load_figure(1, "tiny", root=tiny)
    h = runs[1].history
    for fn in (figures.wall_time_s, figures.final_rows, figures.metric_drops):
        with pytest.raises(ValueError, match="runs must hold at least one run"):
            fn({})
    for fn in (figures.summary_glue, figures.summary_tables):
        for bad in ({}, {1: runs}):
            with pytest.raises(ValueError, match="chapters must map figures to their FigureChapter"):
                fn(bad)
    for bad in ({}, {"factor": 2.0}, 2.0):
        with pytest.raises(ValueError, match="rise must be None or a largest_rise result"):
            figures.rise_cell(bad)
    assert figures.rise_cell(None) == "none"
    assert figures.rise_cell({"factor": 21.6, "prev_epoch": 480, "epoch": 500}) == "×21.6 (epochs 480 to 500)"
    for fn in (figures.first_epoch, figures.settled_epoch):
        with pytest.raises(ValueError, match="above must be True or False"):
            fn(h, "nc1", 1.0, above="x")
    params = {"lr_milestones": [80]}
    assert (figures.next_milestone(params, 0), figures.next_milestone(params, 80),
            figures.next_milestone(params, 81)) == (80, 80, None)
    for bad in (-5, 1.5, None):
        with pytest.raises(ValueError, match="epoch must be a non-negative integer"):
            figures.next_milestone(params, bad)


def test_check_remake_accepts_the_committed_remake_and_names_what_differs():
    """check_remake: Figure 4's CPU-scale runs made again on another CPU start within rounding of the committed ones
    (the largest relative difference at epoch 0, computed here independently); a remake with other data, another
    parameter, no CPU named or missing a depth is refused naming that."""
    runs = figures.load_figure(4, "cpu-scale")
    remake = figures.load_figure(4, "cpu-scale", root=nclib.ROOT / "results" / "replica-cpu")
    keys = ("objective", "nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3")
    start = max(abs(float(remake[L].history[k][0]) / float(runs[L].history[k][0]) - 1) for L in runs for k in keys)
    assert figures.check_remake(runs, remake) == start and 0 < start < 1e-5

    def changed(L, params=None, provenance=None):
        r = remake[L]
        return {**remake, L: dataclasses.replace(r, params={**r.params, **(params or {})},
                                                 provenance={**r.provenance, **(provenance or {})})}

    for bad, match in ((changed(3, provenance={"data_sha256": "0" * 64}), r"L=3: other data"),
                       (changed(6, params={"lr": 1.0}), r"L=6: parameters \['lr'\] differ"),
                       (changed(1, provenance={"host_cpu": None}), r"L=1: the remake must name its CPU"),
                       (changed(1, provenance={"git_dirty": True}),
                        r"L=1: not made from a clean commit: git_dirty = True \(remake\)"),
                       (changed(3, provenance={"status": "stopped"}),
                        r"L=3: not a finished run: status 'stopped' \(remake\)"),
                       ({1: remake[1], 3: remake[3]}, r"remake has L = \[1, 3\]")):
        with pytest.raises(ValueError, match=match):
            figures.check_remake(runs, bad)
    assert figures.check_remake(runs, changed(1, params={"data_path": "/elsewhere/x.npz", "run_name": "x"})) == start
    # a NaN at epoch 0 in the remake, or 0 in the runs against a value in the remake, is refused, not read as
    # "started identical"; 0 in both is identical there (a difference of 0), not refused

    def at_zero(src, L, key, value):
        h = {k: np.array(v, copy=True) for k, v in src[L].history.items()}
        h[key][0] = value
        return {**src, L: dataclasses.replace(src[L], history=h)}
    for key, L, args in (("nc1", 3, (runs, at_zero(remake, 3, "nc1", np.nan))),
                         ("nc3", 6, (at_zero(runs, 6, "nc3", 0.0), remake))):
        with pytest.raises(ValueError, match=rf"L={L}: no finite relative difference at epoch 0 in \['{key}'\]"):
            figures.check_remake(*args)
    both = (at_zero(runs, 6, "nc3", 0.0), at_zero(remake, 6, "nc3", 0.0))
    others = max(abs(float(remake[L].history[k][0]) / float(runs[L].history[k][0]) - 1) for L in runs for k in keys
                 if (L, k) != (6, "nc3"))
    assert figures.check_remake(*both) == others <= start
    with pytest.raises(ValueError, match="^runs must hold at least one run"):
        figures.check_remake({}, remake)


def test_check_remake_asks_runs_that_name_their_cpu_for_a_remake_on_another():
    """check_remake of runs made since CPUs were recorded (a committed CPU-scale figure made again, as
    results/README.md invites): the remake must name another CPU than theirs, the CPU whose rounding it is there to
    show; runs that name none (made before CPUs were recorded) pass, and a remake naming none never does."""
    runs = figures.load_figure(4, "cpu-scale")
    remake = figures.load_figure(4, "cpu-scale", root=nclib.ROOT / "results" / "replica-cpu")
    start = figures.check_remake(runs, remake)
    assert all(not r.provenance.get("host_cpu") for r in runs.values())
    remade_cpu = {r.provenance["host_cpu"] for r in remake.values()}
    assert len(remade_cpu) == 1 and all(remade_cpu)

    def naming(src, cpu):
        return {L: dataclasses.replace(r, provenance={**r.provenance, "host_cpu": cpu}) for L, r in src.items()}
    (cpu,) = remade_cpu
    for named in ("AMD EPYC 7B13 (AVX2)", None):
        assert figures.check_remake(naming(runs, named), remake) == start
    with pytest.raises(ValueError, match=r"L=1: the remake must be made on another CPU than the runs"):
        figures.check_remake(naming(runs, cpu), remake)
    with pytest.raises(ValueError, match=r"L=3: the remake must name its CPU \(host_cpu\)"):
        figures.check_remake(naming(runs, "AMD EPYC 7B13 (AVX2)"), {**remake, 3: naming(remake, None)[3]})

    # Figure 4 is bias-free: its runs, made before NC3 compared class with class, read NC3 by blocks of classes of
    # equal count; a remake made since reads it class by class (Appendix C), another quantity in the same column
    assert {r.nc3_compares for r in (*runs.values(), *remake.values())} == {figures.NC3_EQUAL_COUNT_BLOCKS}
    since = {**remake, 6: dataclasses.replace(remake[6],
                                              provenance={**remake[6].provenance, "nc3_compares": "classes"})}
    with pytest.raises(ValueError, match=r"L=6: NC3 compares 'classes' in the remake, 'blocks of equal counts' in"):
        figures.check_remake(runs, since)


# ------------------------------------------------------------------------------------------ provenance of the runs

#: Every committed run folder the book reads as runs of its networks, with the kind of device it was made on: the
#: figures' runs at both scales, their remakes on another CPU, the bf16 runs, the stability runs and the minority
#: MLP's runs (``results/minority/`` and their remake in ``results/replica-cpu/minority/``).
COMMITTED_RUNS = [(path.parent, kind) for base, kind in (("figures/gpu", "cuda"), ("figures/cpu-scale", "cpu"),
                                                         ("replica-cpu", "cpu"), ("nc3-by-class", "cpu"),
                                                         ("precision", "cpu"), ("stability-cpu", "cpu"),
                                                         ("minority", "cpu"))
                  for path in sorted((nclib.ROOT / "results" / base).rglob("provenance.json"))
                  if (path.parent / "history.csv").is_file()]


def _read(path) -> figures.Run:
    return figures.Run(path, *nclib.runs.load_run(path))


def test_every_committed_run_is_the_clean_record_of_its_parameters():
    """The provenance of every committed run records its own parameters (precision, device, data, network size,
    N and K, steps, the runs trained beside it), a clean commit of this repository where git can say."""
    # figures gpu, cpu-scale; replica-cpu's figures, minority MLP and stability run; nc3-by-class; precision;
    # stability-cpu; minority's MLP
    assert len(COMMITTED_RUNS) == 9 + 12 + (12 + 13 + 1) + 6 + 3 + 3 + 13
    for path, kind in COMMITTED_RUNS:
        run = _read(path)
        assert figures.provenance_problems(run, kind) == [] and figures.made_clean_problems(run) == [], path
        assert figures.commit_problems({run.L: run}) == [], path


def test_the_minority_results_name_clean_commits_of_this_history():
    """The minority chapter's results that are no run folder record their commits too: the UFM tables, committed and
    replica, in their provenance files (``results/minority/ufm-*.provenance.json`` and
    ``results/replica-cpu/minority/ufm-*.provenance.json``, each from a clean checkout) and both
    MLP sweeps in their tables (``sweep.csv``'s ``git_commit``, the commits of their run folders); every one is a
    commit of this history where git can say (the run folders' own commits are checked with every committed run)."""
    import pandas as pd

    minority = nclib.ROOT / "results" / "minority"
    replica = nclib.ROOT / "results" / "replica-cpu" / "minority"
    ufm = [json.loads(path.read_text()) for folder in (minority, replica)
           for path in sorted(folder.glob("ufm-*.provenance.json"))]
    assert len(ufm) == 4 and all(p["git_dirty"] is False and p["git_dirty_paths"] == [] for p in ufm)
    tables = {folder: pd.read_csv(folder / "mlp-cifar10" / "sweep.csv") for folder in (minority, replica)}
    for folder, table in tables.items():
        runs = {_read(path).provenance["git_commit"] for path, _ in COMMITTED_RUNS if folder in path.parents}
        assert len(table) == 13 and set(table["git_commit"]) == runs and len(runs) == 1, folder
        assert table["git_dirty"].tolist() == [False] * 13, folder
    commits = [p["git_commit"] for p in ufm] + [c for t in tables.values() for c in t["git_commit"]]
    unknown = figures.unknown_commits(commits)
    if unknown is None:
        pytest.skip("git cannot say which commits this checkout holds (no git, a copy or a shallow clone)")
    assert unknown == []


def test_parameter_count_is_the_networks():
    import nclib.models

    base = dict(dataset="cifar10", counts=[3, 2, 1], width=8, depth=2, L=3, bias=True, feature_dim=None)
    for change, in_dim in ((dict(), 3072), (dict(bias=False, L=1), 3072), (dict(feature_dim=5), 3072),
                           (dict(dataset="synthetic", dim=7), 7), (dict(dataset="letters-synthetic",
                                                                        counts=[1] * 26), 3072)):
        p = {**base, **change}
        model = nclib.models.build_model(in_dim, len(p["counts"]), p["L"], p["width"], p["depth"], p["feature_dim"],
                                         p["bias"])
        assert figures.parameter_count(p) == nclib.models.parameter_count(model), change
    for bad, named in ((dict(width=0), "width"), (dict(bias="yes"), "bias"), (dict(L=None), "L")):
        with pytest.raises(ValueError, match=named):
            figures.parameter_count({**base, **bad})
    with pytest.raises(ValueError, match="params lacks 'depth'"):
        figures.parameter_count({k: v for k, v in base.items() if k != "depth"})
    with pytest.raises(ValueError, match="params must be"):
        figures.parameter_count([8, 2])


def _edit(path, **changes) -> None:
    prov = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            prov.pop(key)
        elif key == "torch":
            prov["versions"]["torch"] = value
        else:
            prov[key] = value(prov) if callable(value) else value
    path.write_text(json.dumps(prov))


def _zeros_in_both(prov):
    prov["data"]["data_sha256"] = "0" * 64
    return "0" * 64


def _swap(folder, a, b):
    x, y = (folder / a / "provenance.json").read_text(), (folder / b / "provenance.json").read_text()
    (folder / a / "provenance.json").write_text(y)
    (folder / b / "provenance.json").write_text(x)


@pytest.mark.parametrize("fig, scale, tamper, named", [
    (1, "gpu", dict(data_sha256=_zeros_in_both), r"the runs differ in data_sha256: L=1 0cf8b155.*L=3 0000"),
    (1, "gpu", dict(data_sha256="0" * 64), r"L=3: provenance data_sha256 000000000000\.\.\. differs from its data"),
    (1, "gpu", dict(data_sha256=None), r"L=3: provenance data_sha256 = None is missing"),
    (1, "gpu", dict(git_dirty=True), r"L=3: not made from a clean commit: git_dirty = True"),
    (1, "gpu", dict(segments=[{"git_dirty": False}, {"git_dirty": True}]), r"L=3: not made from a clean commit: a call"),
    (1, "gpu", dict(git_commit="f" * 40), r"fig1-L1: git_commit '835d38d2\w+', but fig1-L3, trained beside it "
                                          r"\(trained_with\), records 'f{40}'"),
    (1, "gpu", dict(git_dirty_paths=["nclib/train.py"]),
     r"L=3: not made from a clean commit: git_dirty = False beside changed files \(git_dirty_paths \['nclib/train.py'\]"),
    (1, "gpu", dict(git_diff_sha256="0" * 64), r"L=3: not made from a clean commit: git_dirty = False beside changed "
                                              r"files \(git_dirty_paths \[\], git_diff_sha256 '0{64}'\)"),
    (1, "gpu", dict(data=lambda prov: {**prov["data"], "dataset": "letters-synthetic", "counts": [1] * 10}),
     r"L=3: provenance data counts \[1, 1, 1, 1, 1, 1, 1, 1, 1, 1\], its parameters give \[100, 100, 200, .*"
     r"L=3: provenance data dataset = 'letters-synthetic', its parameters 'cifar10'"),
    (1, "gpu", dict(data=lambda prov: {**prov["data"], "seed": 1}), r"L=3: provenance data seed = 1, its parameters 0"),
    (1, "gpu", dict(steps=5), r"L=3: provenance steps = 5, a finished run of 2,600 epochs of 23 steps trains 59,800"),
    (1, "gpu", dict(steps_per_epoch=99), r"L=3: provenance steps_per_epoch = 99, dropped_per_epoch = 56; its 3,000 "
                                         r"samples in batches of 128 give 23 and 56"),
    (1, "gpu", dict(device="cpu", device_name="cpu"), r"L=3: provenance device 'cpu', not on a cuda device"),
    (1, "gpu", dict(precision="bf16"), r"L=3: provenance precision 'bf16', its parameters 'tf32'"),
    (1, "gpu", dict(torch="1.0"), r"the runs differ in torch: L=1 2.11.0\+cu130, L=3 1.0"),
    (1, "gpu", dict(parameter_count=1), r"L=3: provenance parameter_count 1, the network of its parameters has "
                                        r"39,880,714"),
    (1, "gpu", dict(N=3001), r"L=3: provenance N = 3001, K = 10, its class counts give 3000 and 10"),
    (1, "gpu", dict(trained_with=["fig2-L1"]), r"L=3: provenance trained_with \['fig2-L1'\] names runs other"),
    (4, "cpu-scale", dict(device="cuda"), r"L=3: provenance device 'cuda', not on a cpu device"),
])
def test_figure_chapter_refuses_runs_whose_provenance_is_not_their_record(tmp_path, fig, scale, tamper, named):
    """A copy of a committed figure's runs with one edit to the provenance of its run L = 3 is refused by the figure
    chapter with a ValueError naming the run and the key: the provenance is the record of the run's parameters,
    made from a clean commit of this repository, on the scale's device, with the figure's data and torch."""
    shutil.copytree(figures.RESULTS / scale / f"fig{fig}", tmp_path / scale / f"fig{fig}")
    figures.figure_chapter(fig, scale, tmp_path)  # the copy as committed
    if "git_commit" in tamper and figures.unknown_commits([]) is None:
        pytest.skip("git cannot say which commits this checkout holds")
    _edit(tmp_path / scale / f"fig{fig}" / f"fig{fig}-L3" / "provenance.json", **tamper)
    with pytest.raises(ValueError, match=named):
        figures.figure_chapter(fig, scale, tmp_path)


def test_runs_trained_at_one_commit_are_refused_where_it_is_not_this_history_or_not_one(tmp_path):
    """A copy of the replica of Figure 1's CPU-scale runs (each with a segment per call that trained it): every run
    and every call at a commit outside this history is refused by commit_problems (the figure chapter, check_remake);
    a call of a run (its segment) at a commit other than the run's is refused without git, and commit_problems names
    a segment's commit outside this history too."""
    folder = tmp_path / "cpu-scale" / "fig1"
    shutil.copytree(nclib.ROOT / "results" / "replica-cpu" / "cpu-scale" / "fig1", folder)
    figures.figure_chapter(1, "cpu-scale", tmp_path)  # the copy as committed

    def at(commit, segment_commit):
        return dict(git_commit=commit, segments=lambda prov: [{**seg, "git_commit": segment_commit}
                                                               for seg in prov["segments"]])
    real = json.loads((folder / "fig1-L3" / "provenance.json").read_text())["git_commit"]
    _edit(folder / "fig1-L3" / "provenance.json", **at(real, "f" * 40))
    with pytest.raises(ValueError, match=rf"L=3: a call that trained it \(segments\) records git_commit 'f{{40}}', "
                                         rf"the run '{real}': a run is trained at one commit"):
        figures.figure_chapter(1, "cpu-scale", tmp_path)
    if figures.unknown_commits([]) is None:
        pytest.skip("git cannot say which commits this checkout holds")
    run = figures.load_figure(1, "cpu-scale", tmp_path)[3]
    assert figures.commit_problems({3: run}) == [
        f"L=3: segment 0's git_commit {'f' * 40!r} is not a commit in the history of this checkout"]
    for L in (1, 3, 6):  # every run and call at one commit, none of this history
        _edit(folder / f"fig1-L{L}" / "provenance.json", **at("f" * 40, "f" * 40))
    with pytest.raises(ValueError, match=r"were not made by this repository's code: L=1: git_commit 'f{40}' is not a "
                                         r"commit in the history of this checkout; L=1: segment 0's git_commit"):
        figures.figure_chapter(1, "cpu-scale", tmp_path)
    with pytest.raises(ValueError, match=r"L=6 of remake: segment 0's git_commit 'f{40}' is not a commit"):
        figures.check_remake(figures.load_figure(1, "cpu-scale"), figures.load_figure(1, "cpu-scale", tmp_path))


def test_check_figure_refuses_the_provenance_of_another_run(tmp_path):
    """The provenance files of Figure 4's runs L = 1 and L = 6 swapped: each names its own folder among the runs
    trained beside it, and records the other network's size."""
    shutil.copytree(figures.RESULTS / "cpu-scale" / "fig4", tmp_path / "cpu-scale" / "fig4")
    _swap(tmp_path / "cpu-scale" / "fig4", "fig4-L1", "fig4-L6")
    runs = figures.load_figure(4, "cpu-scale", tmp_path)
    with pytest.raises(ValueError) as refused:
        figures.check_figure(runs, 4, "cpu-scale")
    for words in ("L=1: provenance parameter_count 1,515,776, the network of its parameters has 1,188,096",
                  "L=6: provenance parameter_count 1,188,096, the network of its parameters has 1,515,776",
                  "L=1: provenance trained_with ['fig4-L1', 'fig4-L3']", "L=6: provenance trained_with ['fig4-L3', "
                                                                         "'fig4-L6']"):
        assert words in str(refused.value)
    with pytest.raises(ValueError, match="do not hold the provenance of their parameters"):
        figures.figure_tables(4, runs, {}, [], {})  # the provenance table, read without check_figure


@pytest.mark.parametrize("tamper, named", [
    (dict(torch="2.0.0"), r"L=3: torch '2.0.0' made again, '2.14.1\+cu130' first"),
    (dict(device="cuda", device_name="NVIDIA H200"), r"L=3: device 'cuda' made again, 'cpu' first"),
    (dict(git_commit="f" * 40), r"L=3 of (remake|classes): git_commit 'f{40}' is not a commit in the history of this checkout"),
    (dict(precision="bf16"), r"L=3: provenance precision 'bf16', its parameters 'fp32'"),
    (dict(trained_with=["fig3-L1"]), r"L=3: trained_with \['fig3-L1'\] made again"),
    (dict(git_commit="0" * 40, segments=lambda prov: [{**seg, "git_commit": "0" * 40} for seg in prov["segments"]]),
     r"fig3-L1 of (remake|classes): git_commit '[0-9a-f]{40}', but fig3-L3, trained beside it \(trained_with\), "
     r"records '0{40}'"),
])
def test_remakes_are_refused_when_their_provenance_is_not_the_runs_made_again(tmp_path, tamper, named):
    """check_remake (the replica of Figure 3's CPU-scale runs) and compare_nc3 (the replica made again with
    Appendix C's NC3), each on a copy of the committed remake whose run L = 3 records another torch, device,
    commit (outside this history, or other than that of the runs trained beside it), precision or partners."""
    if "git_commit" in tamper and figures.unknown_commits([]) is None:
        pytest.skip("git cannot say which commits this checkout holds")
    for folder, check in (("replica-cpu", lambda d: figures.check_remake(figures.load_figure(3, "cpu-scale"),
                                                                         figures.load_figure(3, "cpu-scale", d))),
                          (figures.NC3_BY_CLASS, lambda d: figures.compare_nc3(
                              figures.load_figure(3, "cpu-scale", nclib.ROOT / "results" / "replica-cpu"),
                              figures.load_figure(3, "cpu-scale", d)))):
        copy = tmp_path / folder
        shutil.copytree(nclib.ROOT / "results" / folder / "cpu-scale" / "fig3", copy / "cpu-scale" / "fig3")
        check(copy)  # as committed
        _edit(copy / "cpu-scale" / "fig3" / "fig3-L3" / "provenance.json", **tamper)
        with pytest.raises(ValueError, match=named):
            check(copy)


# ------------------------------------------------------------------------------------------ refusals, stalls, glue

def test_functions_of_a_run_refuse_what_is_no_run_by_name(tiny):
    """The fault: given None, a path or a history for a run, or None for its parameters, these functions raised
    AttributeError or KeyError from deep inside.  One check (nclib.figures.load.checked_run, checked_runs,
    checked_params) refuses each, naming the argument."""
    runs = figures.load_figure(1, "tiny", root=tiny)
    for call, name in ((lambda: figures.run_counts(None), "params"), (lambda: figures.run_theory(None), "params"),
                       (lambda: figures.run_theory({"L": 1, "bias": True}), "params"),  # no decays
                       (lambda: figures.parameter_count(None), "params"),
                       (lambda: figures.next_milestone(None, 3), "params"),
                       (lambda: figures.check_run(None, 1, "cpu-scale"), "run"),
                       (lambda: figures.check_run(runs[1].path, 1, "cpu-scale"), "run"),
                       (lambda: figures.provenance_problems(None), "run"),
                       (lambda: figures.made_clean_problems(runs[1].history), "run"),
                       (lambda: figures.check_remake({1: None}, runs), r"runs\[1\]"),
                       (lambda: figures.check_remake(runs, {1: runs[1].history}), r"remake\[1\]"),
                       (lambda: figures.check_remake(runs, None), "remake"),
                       (lambda: figures.compare_nc3({1: None}, runs), r"blocks\[1\]"),
                       (lambda: figures.compare_nc3(runs, dict.fromkeys(runs)), r"classes\[1\]"),
                       (lambda: figures.on_other_data({1: None}), r"runs\[1\]"),
                       (lambda: figures.stability.setting_differences(None), "params"),
                       (lambda: figures.stability.run_summary(None), "run")):
        with pytest.raises(ValueError, match=rf"^{name} (must|lacks)"):
            call()
    # what passes is returned as it is
    assert figures.checked_runs(runs, columns=("nc1", "lr")) is runs and figures.checked_run(runs[1]) is runs[1]
    assert figures.checked_params(runs[1].params, keys=("L", "lam_W")) is runs[1].params
    assert figures.checked_history(runs[1].history, columns=figures.HISTORY_KEYS) is runs[1].history
    with pytest.raises(ValueError, match=r"^h lacks the column\(s\) \['acc'\]"):
        figures.checked_history(runs[1].history, "h", ("nc1", "acc"))
    # a run whose history lacks a column the figure's check reads: a problem named, not a KeyError
    short = dataclasses.replace(runs[3], history={k: v for k, v in runs[3].history.items() if k != "nc2_h"})
    assert "L=3: history lacks the column(s) ['nc2_h']" in figures.check_run(short, 1, "tiny")
    # the summary's NC2^WH pair and the theory panels name the columns they read, not a KeyError
    for column in ("train_acc", "nc2_wh", "objective", "global_mean_norm", "bias_error"):
        lacking = {L: dataclasses.replace(r, history={k: v for k, v in r.history.items() if k != column})
                   for L, r in runs.items()}
        calls = [(lambda: figures.draw_theory(lacking), "runs")] if column not in ("train_acc", "nc2_wh") else [
            (lambda: figures.nc2_wh_pair(lacking, runs), "with_bias"),
            (lambda: figures.nc2_wh_pair(runs, lacking), "without")]
        for call, name in calls:
            with pytest.raises(ValueError, match=rf"^{name}\[1\]\.history lacks the column\(s\) \[.{column}.\]"):
                call()


def test_functions_of_runs_and_histories_refuse_what_they_cannot_read_by_name():
    """One check of a figure's runs (a mapping holding at least one Run) and of a history (every column as long as
    its epochs) behind every function of the events and the analysis; each refusal names the argument."""
    good = _spike_run([1.0, 0.5, 0.4], 1)
    uneven = _spike_run([1.0, 0.5, 0.4], 1)
    uneven = dataclasses.replace(uneven, history={**uneven.history, "nc1": np.ones(2)})
    for fn in (figures.spikes, figures.stalls, figures.lr_step, figures.accuracy_dips, figures.check_stalls,
               figures.rise_ratios, figures.final_rows, figures.metric_drops, figures.wall_time_s):
        for bad in ({}, None, [good]):  # {} would read as "no run stalled", "no run spiked"
            with pytest.raises(ValueError, match=r"^runs must hold at least one run"):
                fn(bad)
        with pytest.raises(ValueError, match=r"^runs\[1\] must be a Run"):
            fn({1: good.history})
        with pytest.raises(ValueError, match=r"^runs\[1\]\.history must have every column as long as its epoch"):
            fn({1: uneven})
    with pytest.raises(ValueError, match=r"^runs must hold at least one run"):
        figures.spikes({})  # with the default threshold, which is valid
    # a history without a column a function reads: refused naming the run and the column, not a KeyError
    def without(key):
        return {1: dataclasses.replace(good, history={k: v for k, v in good.history.items() if k != key})}
    for fn, key in ((figures.stalls, "lr"), (figures.lr_step, "nc3"), (figures.accuracy_dips, "train_acc"),
                    (figures.spikes, "lr"), (figures.rise_ratios, "objective"), (figures.final_rows, "nc1"),
                    (lambda runs: figures.order_held(runs, "nc3"), "nc3"),
                    (lambda runs: figures.order_held(runs, "gap"), "objective")):
        with pytest.raises(ValueError, match=rf"^runs\[1\]\.history lacks the column\(s\) \[.*'{key}'"):
            fn(without(key))
    with pytest.raises(ValueError, match=r"^runs\[1\]\.history lacks the column\(s\) \['nc2_w', 'nc2_h', 'nc2_wh'\]"):
        figures.metric_drops({1: good})  # the spike run records NC1 and NC3 only
    with pytest.raises(ValueError, match=r"^runs\[1\]\.params lacks 'run_name'"):
        figures.wall_time_s({1: good})
    # a column longer or shorter than the epochs: first_epoch answered with the epochs of other records,
    # settled_epoch indexed past the last
    for fn in (figures.first_epoch, figures.settled_epoch):
        for column in (np.array([0.0, 1.0, 1.0]), np.array([1.0])):
            with pytest.raises(ValueError, match=r"^history must have every column as long as its epoch column"):
                fn({"epoch": np.array([0, 10]), "acc": column}, "acc", 1.0)
        with pytest.raises(ValueError, match=r"^history must be a mapping"):
            fn(None, "acc", 1.0)
    with pytest.raises(ValueError, match=r"^history must be a mapping"):
        figures.largest_rise(None)
    with pytest.raises(ValueError, match=r"^history must have every column"):
        figures.largest_rise(uneven.history)
    with pytest.raises(ValueError, match=r"^params must be a mapping"):
        figures.next_milestone(None, 3)
    assert figures.next_milestone({"lr_milestones": [5, 50]}, 6) == 50
    rows = [{"L": 1, "nc1": 2.0}, {"L": 3}]
    with pytest.raises(ValueError, match=r"^key 'nc1' is not a column of every row: the rows of L = \[3\]"):
        figures.order_by(rows, "nc1")
    for bad in (None, "rows", [{"nc1": 1.0}]):
        with pytest.raises(ValueError, match=r"^rows must be a list of rows"):
            figures.order_by(bad, "nc1")
        with pytest.raises(ValueError, match=r"^rows must be a list of rows"):
            figures.orders_without_spikes(bad, {})
    with pytest.raises(ValueError, match=r"^spiked must be a mapping"):
        figures.orders_without_spikes([dict(L=1, nc1=1.0, nc3=1.0, gap=1.0, minimum=1.0)], None)
    assert figures.order_by([{"L": 3, "nc1": 2.0}, {"L": 1, "nc1": 1.0}], "nc1") == [1, 3]


def test_plots_and_precisions_refuse_what_is_not_a_figures_runs_by_name():
    """The plots of a figure's runs, their legend and the precisions of their products read the runs through the
    check of the events and the analysis: no runs, a list or None is refused naming ``runs``, not answered with ""
    or a deep AttributeError."""
    good = _spike_run([1.0, 0.5, 0.4], 1)
    good = dataclasses.replace(good, provenance={"precision": "tf32"})
    assert figures.precisions({1: good}) == "tf32"
    assert figures.as_plot_runs({1: good}) == {1: (good.params, good.history)}
    for fn in (figures.draw_panels, figures.draw_theory, figures.as_plot_runs, figures.precisions,
               lambda runs: figures.figure_legend(runs, "gpu")):
        for bad in ({}, None, [good], [1]):
            with pytest.raises(ValueError, match=r"^runs must hold at least one run"):
                fn(bad)
        with pytest.raises(ValueError, match=r"^runs\[1\] must be a Run"):
            fn({1: good.history})


def test_recorded_every_refuses_an_interval_the_history_was_not_recorded_at():
    h = {"epoch": np.arange(0, 201, 40), "objective": np.linspace(2, 1, 6)}
    # recorded every 40 epochs: read every 100, it would keep only epochs 0 and 200, a grid of 200
    with pytest.raises(ValueError, match=r"^every must be a multiple of the history's interval of 40 epochs, got 100"):
        figures.recorded_every(h, 100)
    assert figures.recorded_every(h, 80)["epoch"].tolist() == [0, 80, 160]
    assert figures.recorded_every(h, 40)["objective"].tolist() == h["objective"].tolist()
    # a last record off the grid (a run's final epoch) leaves the interval as it is
    off = {"epoch": np.array([0, 20, 40, 60, 70]), "objective": np.ones(5)}
    assert figures.recorded_every(off, 40)["epoch"].tolist() == [0, 40]
    # nor does it make the interval finer: recorded every 100, the final epoch 150 leaves 150 refused
    with pytest.raises(ValueError, match=r"^every must be a multiple of the history's interval of 100 epochs, got 150"):
        figures.recorded_every({"epoch": np.array([0, 100, 150]), "objective": np.ones(3)}, 150)
    # a record missing from the grid
    gap = {"epoch": np.array([0, 50, 150, 200]), "objective": np.ones(4)}
    with pytest.raises(ValueError, match=r"^every must name epochs the history recorded: .* epoch\(s\) 100 "):
        figures.recorded_every(gap, 100)
    with pytest.raises(ValueError, match=r"^history must hold at least one record"):
        figures.recorded_every({"epoch": np.array([], dtype=int)}, 10)


def _ending_at(run, objective):
    """``run`` with its final objective replaced by ``objective``."""
    obj = np.asarray(run.history["objective"], dtype=float).copy()
    obj[-1] = objective
    return _with_history(run, objective=obj)


def test_check_stalls_refuses_a_large_class_mode_at_0_and_a_run_below_its_point():
    """Figure 2's runs (class counts 1,500, 600 and 50, the small classes those of 50): L = 6 stalls just above
    the point of Lemma A.2 with 18 modes of the small classes at 0.  Moved to just above the point that also puts at
    0 the mixed mode and one mode of the classes of 600 (a kappa at most the root of 600, the second smallest count,
    which the bound let through before), and to just below its own point, it is refused."""
    runs = figures.load_figure(2, "gpu")
    st = figures.check_stalls(runs)
    assert sorted(st) == [3, 6] and st[6]["partial"]["dead"] == 18
    th = figures.run_theory(runs[6].params)
    points = minority.partial_minima(th.n, th.lam_W, th.lam_H, th.L, th.bias)
    dead = points["dead"].sum(axis=1)
    value = {int(d): float(v) for d, v in zip(dead, points["value"])}
    large = _ending_at(runs[6], value[21] * (1 + 1e-7))
    place = figures.stalls({**runs, 6: large})[6]["partial"]
    assert place["dead"] == 21 and 0 < place["above"] < place["runner_up"] / 5
    assert np.isclose(place["dead_kappa"].max(), np.sqrt(600), rtol=1e-12)  # a mode of the classes of 600
    with pytest.raises(AssertionError, match=r"^L=6: a mode at 0 of kappa 24.49.* above 7.07.*, the root of the "
                                             r"largest count of a small class \(50\)"):
        figures.check_stalls({**runs, 6: large})
    mixed = _ending_at(runs[6], value[20] * (1 + 1e-7))  # the mode between the small classes and those of 600
    with pytest.raises(AssertionError, match=r"^L=6: a mode at 0 of kappa 13.1"):
        figures.check_stalls({**runs, 6: mixed})
    below = _ending_at(runs[6], st[6]["partial"]["partial"] * (1 - 1e-6))
    assert figures.stalls({**runs, 6: below})[6]["partial"]["above"] < 0
    with pytest.raises(AssertionError, match=r"^L=6: not just above a local minimizer"):
        figures.check_stalls({**runs, 6: below})
    # just above its own point again: accepted
    figures.check_stalls({**runs, 6: _ending_at(runs[6], st[6]["partial"]["partial"] * (1 + 1e-6))})


def test_check_stalls_at_the_edges_of_its_checks(monkeypatch):
    """Figure 2's stalled runs (L = 3 and 6; the small classes those of 50) with the nearest point of Lemma A.2
    moved to the edge of each check: a mode at 0 of kappa just above sqrt(50) is refused (at sqrt(50) it is
    accepted), as is a run exactly at its point (above = 0) or exactly a fifth of the way to the next nearest one,
    and counts without a class below the average."""
    runs = figures.load_figure(2, "gpu")
    assert sorted(figures.check_stalls(runs)) == [3, 6]
    nearest, bound = minority.nearest_partial_minimum, np.sqrt(50.0)

    def moved(**change):
        monkeypatch.setattr(minority, "nearest_partial_minimum", lambda *a: {**nearest(*a), **{
            k: v(nearest(*a)) if callable(v) else v for k, v in change.items()}})

    moved(dead_kappa=np.array([1.0, bound]))
    figures.check_stalls(runs)
    moved(dead_kappa=np.array([1.0, bound * (1 + 1e-9)]))
    with pytest.raises(AssertionError, match=r"^L=3: a mode at 0 of kappa 7\.07.* above 7\.07"):
        figures.check_stalls(runs)
    moved(above=0.0)
    with pytest.raises(AssertionError, match="^L=3: not just above a local minimizer"):
        figures.check_stalls(runs)
    moved(runner_up=lambda p: 5 * p["above"])
    assert all((5 * st["partial"]["above"]) / 5 == st["partial"]["above"] for st in figures.stalls(runs).values())
    with pytest.raises(AssertionError, match="^L=3: not just above a local minimizer"):
        figures.check_stalls(runs)
    monkeypatch.undo()
    monkeypatch.setattr(nclib.figures.analysis, "small_classes", lambda n: np.array([], dtype=np.int64))
    with pytest.raises(AssertionError, match="^L=3: the counts .* have no class below the average"):
        figures.check_stalls(runs)


def test_check_runs_at_the_edges_of_its_checks(tiny, monkeypatch):
    """Figure 1's and 3's tiny runs moved to the edge of each check of check_runs: an objective a relative 1e-9
    below the global minimum (within 1e-13 it is rounding, accepted); NC1 falling by exactly 100, and by 10^4
    beside an NC3 that falls by exactly 100 (its square root); a bias error that ends where it started; a stalled
    run exactly at the accuracy of the global minimizers; a bias-free run with a bias error recorded at its last
    epoch only.  Each is refused naming the run."""
    runs1, runs3 = figures.load_figure(1, "tiny", root=tiny), figures.load_figure(3, "tiny", root=tiny)
    h, minimum = runs1[3].history, figures.run_theory(runs1[3].params).minimum
    size = np.asarray(h["epoch"]).size
    below = np.asarray(h["objective"], dtype=float).copy()
    below[size // 2] = minimum * (1 - 1e-13)
    figures.check_runs({**runs1, 3: _with_history(runs1[3], objective=below)}, 1)
    below[size // 2] = minimum * (1 - 1e-9)
    with pytest.raises(AssertionError, match="^L=3: the objective goes below the global minimum"):
        figures.check_runs({**runs1, 3: _with_history(runs1[3], objective=below)}, 1)

    def falling(start, end):  # a column that falls from start to end exactly
        column = np.geomspace(start, end, size)
        column[0], column[-1] = start, end
        return column

    by_100 = _with_history(runs1[3], nc1=falling(100.0, 1.0), nc3=falling(1.0, 0.5))
    assert figures.metric_drops({3: by_100})[3]["nc1"] == 100.0
    with pytest.raises(AssertionError, match="^L=3: NC1 falls by a factor 100 .*not more than 100"):
        figures.check_runs({**runs1, 3: by_100}, 1)
    level = _with_history(runs1[3], nc1=falling(1e4, 1.0), nc3=falling(100.0, 1.0))
    drop = figures.metric_drops({3: level})[3]
    assert drop["nc1_root"] == drop["nc3"] == 100.0
    with pytest.raises(AssertionError, match="^L=3: the square root of NC1's fall, 100, is not more than NC3's"):
        figures.check_runs({**runs1, 3: level}, 1)
    figures.check_runs({**runs1, 3: _with_history(runs1[3], nc1=falling(1e4, 1.0), nc3=falling(99.0, 1.0))}, 1)
    with pytest.raises(AssertionError, match=r"^L=3: \|\|b - n/N\|\| ends at .* not below"):
        figures.check_runs({**runs1, 3: _with_history(runs1[3], bias_error=np.full_like(h["bias_error"], 0.5))}, 1)
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)
    acc = np.asarray(h["train_acc"], dtype=float).copy()
    acc[-1] = 1.0 - 2.0 / figures.run_theory(runs1[3].params).N
    stalled = _with_history(runs1[3], train_acc=acc, nc1=np.full_like(h["nc1"], 1.0))
    figures.check_runs({**runs1, 3: stalled}, 1)
    real = figures.run_theory
    monkeypatch.setattr(nclib.figures.analysis, "run_theory",
                        lambda params: dataclasses.replace(real(params), minimizer_accuracy=float(acc[-1])))
    with pytest.raises(AssertionError, match="^L=3: the final training accuracy .* is not below"):
        figures.check_runs({**runs1, 3: stalled}, 1)
    monkeypatch.undo()
    bias_error = np.full_like(runs3[1].history["bias_error"], np.nan)
    figures.check_runs({**runs3, 1: _with_history(runs3[1], bias_error=bias_error)}, 3)
    bias_error[-1] = 0.1
    with pytest.raises(AssertionError, match="^L=1: a bias-free run has a recorded bias error"):
        figures.check_runs({**runs3, 1: _with_history(runs3[1], bias_error=bias_error)}, 3)


def test_check_runs_asks_a_fitted_run_for_an_nc1_fall_of_more_than_100(tiny):
    runs1 = figures.load_figure(1, "tiny", root=tiny)
    h = runs1[3].history
    size = np.asarray(h["nc1"]).size

    def falls(factor):  # NC1 falls by `factor`, NC3 by 2 (less than NC1 on its scale)
        return _with_history(runs1[3], nc1=h["nc1"][0] * np.geomspace(1, 1 / factor, size),
                             nc3=h["nc3"][0] * np.geomspace(1, 0.5, size))

    with pytest.raises(AssertionError, match=r"^L=3: NC1 falls by a factor 50 .*not more than 100"):
        figures.check_runs({**runs1, 3: falls(50.0)}, 1)
    figures.check_runs({**runs1, 3: falls(150.0)}, 1)


def test_summary_glue_counts_the_gpu_and_the_cpu_scale_runs_apart(tiny, tiny_scale, monkeypatch):
    """Figure 1's tiny runs read as GPU runs, with L = 6 stalled, beside Figure 3's as CPU-scale runs: the counts
    the introduction and the summary quote, each of its own scale."""
    monkeypatch.setattr(nclib.figures.analysis, "load_class_accuracy", lambda path: None)
    chapters = {k: figures.figure_chapter(k, "tiny", root=tiny) for k in (1, 3)}
    run6 = chapters[1].runs[6]
    N = figures.run_theory(run6.params).N
    acc6 = np.where(np.arange(len(run6.history["epoch"])) >= 2, 1.0 - 1.0 / N, 1.0)  # above 90 %, below 100 %
    runs1 = {**chapters[1].runs, 6: _with_history(run6, train_acc=acc6,
                                                  objective=3.0 * np.asarray(run6.history["objective"]))}
    chapters[1] = dataclasses.replace(chapters[1], scale="gpu", runs=runs1, rows=figures.final_rows(runs1))
    g = figures.summary_glue(chapters)
    assert (g["n-gpu-runs"], g["n-fitted-gpu"], g["n-cpu-runs"]) == ("3", "2", "3")
    assert (g["n-runs"], g["n-fitted"], g["n-stalled"]) == ("6", "5", "1")
    assert (g["gpu-figures"], g["gpu-epochs"]) == ("1", "120")
    assert g["wall-gpu"] == f"{figures.wall_time_s(runs1) / 60:.1f}"
    assert g["wall-cpu"] == f"{figures.wall_time_s(chapters[3].runs) / 60:.1f}"
    assert int(g["n-fitted"]) == int(g["n-fitted-gpu"]) + int(g["n-cpu-runs"])
    # both GPU: the counts add up the same way over the scales
    chapters[3] = dataclasses.replace(chapters[3], scale="gpu")
    g = figures.summary_glue(chapters)
    assert (g["n-gpu-runs"], g["n-fitted-gpu"], g["n-cpu-runs"], g["gpu-figures"]) == ("6", "5", "0", "1, 3")


def test_nc2_wh_of_the_bias_pair_is_compared_at_equal_epochs(tiny, tiny_scale):
    """Figure 1's runs one record shorter (to epoch 100) than Figure 3's (to 120): the glue's ends are each run's
    own last epoch, its shared values those of epoch 100, and its counts those of the records both have."""
    chapters = {k: figures.figure_chapter(k, "tiny", root=tiny) for k in (1, 3)}

    def with_wh(runs, wh, keep=None):
        out = {}
        for L, run in runs.items():
            h = {k: np.asarray(v)[:keep] for k, v in run.history.items()}
            out[L] = dataclasses.replace(run, history={**h, "nc2_wh": np.asarray(wh(L, h["epoch"]), dtype=float)})
        return out

    # with a bias 1e-3 at every record but epoch 40 (1.0: above every run without); without 1e-2, but one run at
    # 1e-4 at epoch 60 (the ranges overlap there) and every run at 5e-3 at its last epoch, 120
    with_bias = with_wh(chapters[1].runs, lambda L, e: np.where(e == 40, 1.0, 1e-3), keep=-1)
    without = with_wh(chapters[3].runs, lambda L, e: np.where(e == 120, 5e-3,
                                                              np.where((e == 60) & (L == 3), 1e-4, 1e-2)))
    pair = figures.nc2_wh_pair(with_bias, without)
    assert (pair["shared_epoch"], pair["records"], pair["below"], pair["above"]) == (100, 5, 3, 1)
    assert pair["end"] == {"with": [1e-3] * 3, "without": [5e-3] * 3}
    assert pair["shared"] == {"with": [1e-3] * 3, "without": [1e-2] * 3}
    for k, runs in ((1, with_bias), (3, without)):
        chapters[k] = dataclasses.replace(chapters[k], runs=runs, rows=figures.final_rows(runs))
    g = figures.summary_glue(chapters)
    assert [g[f"wh-1-3-{case}-{end}"] for case in ("with", "without") for end in ("min", "max")] == \
        ["0.001", "0.001", "0.005", "0.005"]
    assert [g[f"wh-1-3-shared-{case}-{end}"] for case in ("with", "without") for end in ("min", "max")] == \
        ["0.001", "0.001", "0.01", "0.01"]
    assert (g["wh-1-3-shared-epoch"], g["wh-1-3-shared-records"], g["wh-1-3-shared-below"],
            g["wh-1-3-shared-above"]) == ("100", "5", "3", "1")
    # a run below 100 % at its end is left out; no run at 100 % in one figure: no comparison
    stalled = {L: _with_history(run, train_acc=np.full(len(run.history["epoch"]), 0.5)) for L, run in without.items()}
    assert figures.nc2_wh_pair(with_bias, stalled) is None
    with pytest.raises(ValueError, match=r"^with_bias must hold at least one run"):
        figures.nc2_wh_pair({}, without)
    with pytest.raises(ValueError, match=r"^without must hold at least one run"):
        figures.nc2_wh_pair(with_bias, None)


def test_the_summary_tables_write_one_precision_per_column_and_epochs_with_separators():
    """The committed GPU runs of Figures 1 and 3 stall with the next point 44.4 % and 31.0 % away (not "31"); a
    rise of the objective between records past epoch 1,000 is written with thousands separators."""
    chapters = {k: figures.figure_chapter(k, "gpu") for k in (1, 3)}
    t = figures.summary_tables(chapters)["stalls"]
    runner = [100 * figures.stalls(chapters[k].runs)[L]["partial"]["runner_up"] for k, L in t.index]
    assert t["distance to the next point (%)"].tolist() == written_column(runner, 3)
    assert len({len(cell.split(".")[-1]) for cell in t["distance to the next point (%)"]}) == 1  # one precision
    above = [100 * figures.stalls(chapters[k].runs)[L]["partial"]["above"] for k, L in t.index]
    assert t["above the nearest point (%)"].tolist() == ["+" + w for w in written_column(above, 2)]
    assert figures.rise_cell({"factor": 1.2, "prev_epoch": 2700, "epoch": 2800}) == "×1.20 (epochs 2,700 to 2,800)"


def test_glued_bounds_of_the_committed_runs_read_as_the_tables_that_write_their_numbers():
    """Every "at least" and "at most" that the figure chapters and the summary glue from nclib.figures over numbers a
    table of the book writes to nearest holds, and rounded to that table's figures it is the table's cell (the rule
    for bounds of nclib.rounding, at_least's and at_most's contract), in the cell's notation: no "at least 16.2"
    beside the drops table's 16.3, no NC3 fall "at most 186" beside its 185, no "at least 810,700" beside its
    8.11 × 10⁵.  A run's own distance to the next point, and the smallest and
    the largest of them, are the stalled runs' table's cells (2.95, not "at least 2.948").  The committed runs, at
    the scale each chapter reads."""
    chapters = {k: figures.figure_chapter(k) for k in figures.FIGURES}
    tables, summary = figures.summary_tables(chapters), figures.summary_glue(chapters)
    checked = []

    def check(bound: str, upper: bool, numbers: list, sig: int) -> None:
        """``bound``, an upper bound or a lower one over ``numbers`` (each a value and the cell that writes it)."""
        value, cell = (max if upper else min)(numbers, key=lambda pair: pair[0])
        assert (number(bound) >= value) if upper else (number(bound) <= value), (bound, value)
        assert reads_as(bound, cell, sig), (bound, cell)  # never another number than the table's, at its figures
        assert ("×" in bound) == ("×" in cell), (bound, cell)  # and in its notation: no 810,700 beside 8.11 × 10⁵
        checked.append(bound)

    stalls_table = tables["stalls"]
    for k, c in chapters.items():
        g, drops, table = c.glue, figures.metric_drops(c.runs), c.tables["drops"]
        fitted = [r for r in c.rows if r["train_acc"] >= 1.0]
        assert fitted and table.index.tolist() == [r["L"] for r in c.rows]
        # the drops table: each run's falls, three figures
        check(g["fit-nc3-drop"], True, [(drops[r["L"]]["nc3"], table.loc[r["L"], "NC3 fall"]) for r in fitted], 3)
        check(g["fit-nc1-drop"], False, [(r["nc1_drop"], table.loc[r["L"], "NC1 fall"]) for r in fitted], 3)
        check(g["fit-nc1-root-drop"], False,
              [(drops[r["L"]]["nc1_root"], table.loc[r["L"], "its square root"]) for r in fitted], 3)
        if not c.figure.bias:  # the theory table: each run's global feature mean at the end, three figures
            means = c.tables["theory"]["global feature-mean norm at the end"]
            check(g["mean-end"], True, [(r["global_mean_norm"], means[r["L"]]) for r in c.rows], 3)
        # the summary's table of the stalled runs: the distance to the next point, each run's own, the same cell
        for L, st in figures.stalls(c.runs).items():
            if st["partial"] is not None and st["partial"]["runner_up"] is not None:
                assert g[f"stall-L{L}-partial-runner-up"] == stalls_table.loc[(k, L), "distance to the next point (%)"]
    places = {(k, L): st["partial"] for k, c in chapters.items() for L, st in figures.stalls(c.runs).items()
              if st["partial"] is not None}
    assert places and sorted(places) == sorted(stalls_table.index)
    check(summary["partial-off-max"], True, [(100 * abs(p["above"]), stalls_table.loc[kL, "above the nearest point (%)"]
                                              .lstrip("+-")) for kL, p in places.items()], 2)
    # the smallest and the largest run's distance to the next point, to nearest: two cells of the table
    runner = {kL: p["runner_up"] for kL, p in places.items() if p["runner_up"] is not None}
    assert [summary["partial-runner-up-min"], summary["partial-runner-up-max"]] == [
        stalls_table.loc[f(runner, key=runner.get), "distance to the next point (%)"] for f in (min, max)]
    # three falls per figure, the bias-free figures' mean, the summary's bound on the distance above the point
    assert len(checked) == 3 * len(chapters) + sum(not c.figure.bias for c in chapters.values()) + 1


# ------------------------------------------------------------------------------------------ the verdict

def _weakest_given_up(th):
    """The value of (4.3) at the point of Lemma A.2 that puts the weakest mode the global minimizer keeps at 0 and
    every other mode where the global minimizer has it, evaluated as the objective of that point's weights."""
    kappa = minority.problem_spectrum(th.n, th.bias)
    alive = nclib.ufm.mode_strengths(kappa, th.N, th.lam_W, th.lam_H, th.L) > 0
    alive[np.argmin(np.where(alive, kappa, np.inf))] = False
    point = minority.partial_point(th.n, th.lam_W, th.lam_H, th.L, th.bias, alive)
    return nclib.ufm.objective(point.Ws, point.H, point.b, th.n, th.lam_W, th.lam_H)


def test_collapse_verdict_of_a_run_near_the_minimizer_one_part_of_the_way_and_one_that_does_not_fit():
    gpu3, cpu1, gpu1 = (figures.figure_chapter(*a) for a in ((3, "gpu"), (1, "cpu-scale"), (1, "gpu")))
    near = figures.collapse_verdict(gpu3.rows[0], gpu3.theory[1])  # Figure 3, L = 1: NC3 0.059 at the end
    r, th = gpu3.rows[0], gpu3.theory[1]
    assert near["near"] and near["fits"] and near["metrics_near"] and near["objective_near"]
    assert near["metric_key"] == "nc3" and near["metric_max"] == r["nc3"] == max(r[k] for k in figures.VERDICT_KEYS)
    assert 0.05 < near["metric_max"] < figures.NEAR_BOUND == 0.1
    np.testing.assert_allclose(near["excess"], r["objective"] / th.minimum - 1, rtol=1e-12)
    np.testing.assert_allclose(near["lost_excess"], _weakest_given_up(th) / th.minimum - 1, rtol=1e-9)
    assert 0 < near["excess"] < 0.01 < 0.4 < near["lost_excess"] / 2  # a class of 100 given up: far above
    # Figure 1 at the CPU scale, L = 1: every label fitted, NC2^H 0.30 at the end: only part of the way
    part = figures.collapse_verdict(cpu1.rows[0], cpu1.theory[1])
    assert part["fits"] and part["objective_near"] and not part["metrics_near"] and not part["near"]
    assert part["metric_key"] == "nc2_h" and 0.29 < part["metric_max"] < 0.31
    # Figure 1's GPU run with L = 6 ends below 100 % and just above the point that gives up the pair of 100: refused
    # on the accuracy and on the objective, whose lowest point with a mode at 0 is the first of Lemma A.2's chain
    stalled = figures.collapse_verdict(gpu1.rows[2], gpu1.theory[6])
    assert not stalled["fits"] and not stalled["objective_near"] and not stalled["near"]
    th6 = gpu1.theory[6]
    values = minority.partial_minima(th6.n, th6.lam_W, th6.lam_H, 6, th6.bias)["value"]
    np.testing.assert_allclose(stalled["lost_excess"], values[1] / values[0] - 1, rtol=1e-12)
    np.testing.assert_allclose(stalled["lost_excess"], _weakest_given_up(th6) / th6.minimum - 1, rtol=1e-9)


def test_collapse_verdict_bounds_are_strict_and_the_objective_rules_out_a_letter_given_up():
    gpu2 = figures.figure_chapter(2, "gpu")
    r, th = gpu2.rows[0], gpu2.theory[1]
    assert figures.collapse_verdict(r, th)["near"]
    halfway = th.minimum * (1 + figures.collapse_verdict(r, th)["lost_excess"] / 2)
    for changes, near in (({"nc2_h": 0.1}, False), ({"nc2_wh": 0.0999}, True), ({"nc2_wh": 0.2}, False),
                          ({"nc2_w": 0.5}, False), ({"nc3": 0.1}, False), ({"objective": halfway}, False),
                          ({"objective": halfway * (1 - 1e-9)}, True), ({"train_acc": 1 - 1 / th.N}, False),
                          ({"objective": th.minimum, **dict.fromkeys(figures.VERDICT_KEYS, 0.0)}, True)):
        assert figures.collapse_verdict({**r, **changes}, th)["near"] is near, changes
    # the letters' point that gives up one letter of 50 (L = 1, a saddle): each NC2 reads 0.089 there and NC3 0 (with a
    # bias it compares the block of the letters of 50 as a whole), under the bound; its objective, 4.2 % above the
    # global minimum, is past the halfway mark, and the verdict refuses it even with every label counted as fitted
    kappa = minority.problem_spectrum(th.n, th.bias)
    given_up = minority.alive_without_weakest(th.n, th.lam_W, th.lam_H, 1, th.bias, 1)
    assert np.isclose(kappa[~given_up & (kappa > 0)].max(), np.sqrt(50), rtol=1e-9)
    at = minority.partial_point_metrics(th.n, th.lam_W, th.lam_H, 1, th.bias, given_up)
    point = {"L": 1, "train_acc": 1.0, "minimum": th.minimum, **{k: at[k] for k in figures.VERDICT_KEYS},
             "objective": _weakest_given_up(th)}
    verdict = figures.collapse_verdict(point, th)
    assert verdict["metrics_near"] and 0.08 < verdict["metric_max"] < 0.1 and at["nc3"] < 1e-6
    assert not verdict["objective_near"] and not verdict["near"]
    np.testing.assert_allclose(verdict["excess"], verdict["lost_excess"], rtol=1e-9)
    assert 0.04 < verdict["excess"] < 0.045


def test_collapse_verdict_refusals():
    gpu1 = figures.figure_chapter(1, "gpu")
    r, th = gpu1.rows[0], gpu1.theory[1]
    for row, match in ((None, r"^row must be a run's final values"), ({**r, "nc3": float("nan")}, "^row must hold"),
                       ({k: v for k, v in r.items() if k != "nc2_wh"}, r"^row must be a run's final values"),
                       ({**r, "train_acc": 1.5}, r"^row\['train_acc'\] must be a training accuracy"),
                       ({**r, "objective": "1.0"}, "^row must hold finite"),
                       ({**r, "L": 3}, "^row must be a run of the problem of theory"),
                       ({**r, "minimum": r["minimum"] * 1.01}, "^row must be a run of the problem of theory"),
                       ({**r, "objective": th.minimum * (1 - 1e-9)}, r"^row\['objective'\] .* is below the global")):
        with pytest.raises(ValueError, match=match):
            figures.collapse_verdict(row, th)
    with pytest.raises(ValueError, match="^theory must be a RunTheory"):
        figures.collapse_verdict(r, dataclasses.asdict(th))
    assert th.fitting_collapse is True
    for changed in (dict(minimizer_accuracy=0.9), dict(alive=0)):
        assert dataclasses.replace(th, **changed).fitting_collapse is False
        with pytest.raises(ValueError, match="^theory must be a problem whose global minimizers keep a mode and fit"):
            figures.collapse_verdict(r, dataclasses.replace(th, **changed))


def test_collapse_verdicts_judge_each_run_and_leave_out_a_problem_without_a_collapse_that_fits():
    gpu1 = figures.figure_chapter(1, "gpu")
    assert sorted(gpu1.verdicts) == [1, 3, 6]
    for r in gpu1.rows:
        assert gpu1.verdicts[r["L"]] == figures.collapse_verdict(r, gpu1.theory[r["L"]])
    assert [L for L, v in gpu1.verdicts.items() if v["near"]] == [1, 3]
    # L = 3's problem given global minimizers that keep no mode: the verdict refuses it, so the runs' verdicts skip it
    theory = {**gpu1.theory, 3: dataclasses.replace(gpu1.theory[3], alive=0)}
    assert sorted(figures.collapse_verdicts(gpu1.rows, theory)) == [1, 6]
    assert figures.collapse_verdicts([], {}) == {}
    for rows, match in ((tuple(gpu1.rows), "^rows must be a list"), ([{"nc3": 0.1}], "^rows must be a list")):
        with pytest.raises(ValueError, match=match):
            figures.collapse_verdicts(rows, gpu1.theory)
    for theory, match in (({1: gpu1.theory[1]}, "^theory must map each run's L"), (None, "^theory must map"),
                          ({L: dataclasses.asdict(t) for L, t in gpu1.theory.items()}, "^theory must map")):
        with pytest.raises(ValueError, match=match):
            figures.collapse_verdicts(gpu1.rows, theory)
    with pytest.raises(ValueError, match="^row must be a run of the problem of theory"):  # as collapse_verdict
        figures.collapse_verdicts([{**gpu1.rows[0], "minimum": gpu1.rows[0]["minimum"] * 2}], gpu1.theory)


def test_stall_spread_nc1_is_nc1_near_the_point_and_near_the_global_minimizer():
    """Figure 2's stalled runs: per spread, NC1 of nclib.minority.partial_point_spread_nc1 at the run's point and at
    the global minimizer, computed here; the change at the point and the factors at the global minimizer derived
    from them; at the global minimizer NC1 falls as the spread's square (a factor of 100 per tenfold spread) while at
    the point it barely moves; L = 1 has no entry; refusals of the spreads."""
    runs = figures.load_figure(2, "gpu")
    got = figures.stall_spread_nc1(runs, spreads=(1e-2, 1e-3))
    assert sorted(got) == [3, 6]
    stalled = figures.stalls(runs)
    for L in (3, 6):
        th = figures.run_theory(runs[L].params)
        args = (th.n, th.lam_W, th.lam_H, L, th.bias)
        point = [minority.partial_point_spread_nc1(*args, stalled[L]["partial"]["alive"], s) for s in (1e-2, 1e-3)]
        best = [minority.partial_point_spread_nc1(*args, minority.alive_at_minimum(*args), s) for s in (1e-2, 1e-3)]
        assert got[L]["point"] == point and got[L]["global"] == best
        assert got[L]["point_change"] == max(point) / min(point) - 1 and got[L]["global_factors"] == [best[0] / best[1]]
        assert got[L]["point_change"] < 0.05 and np.isclose(got[L]["global_factors"][0], 100, rtol=0.05)
        assert min(point) > 1e4 * max(best)
    assert figures.stall_spread_nc1({1: runs[1]}) == {}  # L = 1 fits the labels: no stall
    for bad in ((1e-2,), 1e-2, "ab", (1e-3, 1e-2), (1e-2, 1e-2), (1e-2, 0.0), (1e-2, math.nan)):
        with pytest.raises(ValueError, match=r"^spreads must"):
            figures.stall_spread_nc1(runs, spreads=bad)
    with pytest.raises(ValueError, match=r"^runs must"):
        figures.stall_spread_nc1({})


def test_stall_nc2_sets_a_run_against_its_point_and_the_two_next_to_it():
    """Figure 2's L = 6 run (18 modes at 0): its final NC2 against those of its point and of the points with 17 and
    19 modes at 0, computed here from nclib.minority; with its final NC2 replaced by the point's the distance is
    0 and the neighbours' is what separates the points; a run ending next to the point with 1 mode at 0 has the
    global minimizer (NC2 0 to rounding, distance inf) as one neighbour."""
    runs = figures.load_figure(2, "gpu")
    got = figures.stall_nc2(runs)
    assert sorted(got) == [3, 6] and got[6]["dead"] == 18 and sorted(got[6]["neighbours"]) == [17, 19]
    th = figures.run_theory(runs[6].params)
    at = {}
    for dead in (17, 18, 19):
        keep = minority.alive_without_weakest(th.n, th.lam_W, th.lam_H, 6, th.bias, dead)
        at[dead] = minority.partial_point_metrics(th.n, th.lam_W, th.lam_H, 6, th.bias, keep)
    h = runs[6].history
    keys = ("nc2_w", "nc2_h", "nc2_wh")
    off = max(abs(h[k][-1] / at[18][k] - 1) for k in keys)
    nxt = min(abs(h[k][-1] / at[d][k] - 1) for d in (17, 19) for k in keys)
    assert np.isclose(got[6]["off"], off, rtol=1e-12) and np.isclose(got[6]["next_off"], nxt, rtol=1e-12)
    assert 0 < got[6]["off"] < got[6]["next_off"] and got[6]["ratio"] == got[6]["next_off"] / got[6]["off"]
    # the run's NC2 moved onto its point's: off 0, the neighbours still apart
    on = _with_history(runs[6], **{k: np.r_[h[k][:-1], at[18][k]] for k in keys})
    moved = figures.stall_nc2({6: on})[6]
    assert moved["off"] < 1e-12 < moved["next_off"] and moved["ratio"] > 1e10
    assert moved["ratio"] == (math.inf if moved["off"] == 0 else moved["next_off"] / moved["off"])
    assert np.isclose(moved["next_off"], min(abs(at[18][k] / at[d][k] - 1) for d in (17, 19) for k in keys))
    # moved onto the NC2 of the point with 19 modes at 0 (the objective still next to 18's): the NC2 pick out
    # another point than the objective does, ratio below 1
    astray = figures.stall_nc2({6: _with_history(runs[6], **{k: np.r_[h[k][:-1], at[19][k]] for k in keys})})[6]
    assert astray["dead"] == 18 and astray["next_off"] < 1e-12 < astray["off"] and astray["ratio"] < 1e-10
    # Figure 1's L = 6 (1 mode at 0): the global minimizer is a neighbour, its NC2 0 to rounding
    fig1 = figures.stall_nc2(figures.load_figure(1, "gpu"))
    assert sorted(fig1) == [6] and sorted(fig1[6]["neighbours"]) == [0, 2]
    assert max(fig1[6]["neighbours"][0].values()) < 1e-12
    assert figures.stall_nc2({1: runs[1]}) == {}  # L = 1 fits the labels: no stall
    with pytest.raises(ValueError, match=r"^runs must"):
        figures.stall_nc2({})
