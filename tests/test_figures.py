"""Tests of nclib.figures on small run folders made here with a tiny nclib.train.run (seconds in all)."""
from __future__ import annotations

import dataclasses
import json
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nclib.data  # noqa: E402
import nclib.figures as figures  # noqa: E402
import nclib.imbalance  # noqa: E402
import nclib.train  # noqa: E402
import nclib.ufm  # noqa: E402

#: A tiny scale: the paper's CIFAR-10 profile divided by 100 (1,1,2,2,...,5,5; N = 30), a small network.
TINY = dict(divisor=100, width=32, depth=2, epochs=120, batch_size="full", lr=3e-3, lr_milestones=[80],
            lr_gamma=0.1, lam_W=1e-3, lam_H=1e-3, metric_every=20)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Figure 1 and Figure 3 run folders at the tiny scale on a fake CIFAR-10 .npz (structured class signal)."""
    root = tmp_path_factory.mktemp("figures")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 6)
    centers = rng.integers(40, 215, size=(10, 32, 32, 3))
    x = np.clip(centers[y] + rng.normal(0, 20, size=(y.size, 32, 32, 3)), 0, 255).astype(np.uint8)
    npz = root / "fake_cifar.npz"
    np.savez(npz, x_train=x, y_train=y)
    mp = pytest.MonkeyPatch()
    mp.setitem(figures.SCALES, "tiny", TINY)
    mp.setitem(figures.SCALE_FOLDERS, "tiny", "tiny")
    for fig in (1, 3):
        params = figures.figure_parameters(fig, "tiny", data_path=str(npz), progress=False,
                                           out_dir=str(root / "tiny" / f"fig{fig}"))
        if fig == 1:  # side by side, as the training notebook trains a figure
            nclib.train.run_many([figures.train_kwargs(params, L) for L in params["L_values"]])
        else:  # one after another
            for L in params["L_values"]:
                nclib.train.run(**figures.train_kwargs(params, L))
    yield root
    mp.undo()


@pytest.fixture()
def tiny_scale(monkeypatch):
    monkeypatch.setitem(figures.SCALES, "tiny", TINY)
    monkeypatch.setitem(figures.SCALE_FOLDERS, "tiny", "tiny")
    monkeypatch.setitem(figures.SCALE_LABELS, "tiny", "tiny runs (a test scale)")


# ------------------------------------------------------------------------------------------ configuration

def test_paper_configuration_is_section_5():
    for k, f in figures.FIGURES.items():
        p = figures.figure_parameters(k, "paper")
        assert (p["epochs"], p["width"], p["depth"], p["batch_size"], p["lr"]) == (12000, 2048, 6, 128, 1e-4)
        assert p["L_values"] == [1, 3, 6] and p["bias"] == (k in (1, 2)) and p["smoke"] is False
        n = np.array(p["counts"])
        assert sorted(n.tolist()) == sorted(nclib.imbalance.class_counts(nclib.imbalance.PROFILES[f.preset]).tolist())
    assert figures.FIGURES[2].dataset == figures.FIGURES[4].dataset == "letters-synthetic"
    # the reference class order: CIFAR-10 ascending by class index, letters descending (a is the major class)
    assert figures.figure_counts(1)[:2] == [100, 100] and figures.figure_counts(2)[0] == 1500


def test_cpu_scale_divides_the_counts_by_ten():
    for k in figures.FIGURES:
        paper, cpu = np.array(figures.figure_counts(k, "paper")), np.array(figures.figure_counts(k, "cpu-scale"))
        np.testing.assert_array_equal(paper, 10 * cpu)
    p = figures.figure_parameters(3, "cpu-scale")
    assert p["out_dir"].endswith("results/figures/cpu-scale/fig3") and p["run_tag"] == "fig3"
    assert figures.figure_parameters(1, "paper")["out_dir"].endswith("results/figures/gpu/fig1")


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="fig must be one of"):
        figures.figure_parameters(5)
    with pytest.raises(ValueError, match="fig must be one of"):
        figures.figure_parameters(True)
    with pytest.raises(ValueError, match="scale must be one of"):
        figures.figure_parameters(1, "huge")
    with pytest.raises(ValueError, match="unknown notebook parameter"):
        figures.figure_parameters(1, "paper", epoch=10)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        figures.figure_parameters(1, "paper", epochs=0)
    with pytest.raises(ValueError, match="smoke"):
        figures.train_kwargs(dict(figures.figure_parameters(1), smoke=True), 1)
    with pytest.raises(ValueError, match="key 'acc'"):
        figures.first_epoch({"epoch": np.arange(3)}, "acc", 1.0)
    with pytest.raises(ValueError, match="key 'acc'"):
        figures.settled_epoch({"epoch": np.arange(3)}, "acc", 1.0)
    h = _history([1.0, 0.5, 0.4])
    with pytest.raises(ValueError, match="key 'loss'"):
        figures.largest_rise(h, "loss")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lr'\]"):
        figures.largest_rise({k: v for k, v in h.items() if k != "lr"})
    with pytest.raises(ValueError, match="at least two finite positive values"):
        figures.largest_rise(_history([1.0, 0.0, 0.4]))
    with pytest.raises(ValueError, match="at least two finite positive values"):
        figures.largest_rise(_history([1.0]))
    with pytest.raises(ValueError, match="threshold must be strictly positive"):
        figures.spikes({}, threshold=0)
    with pytest.raises(ValueError, match=r"spiked names runs L = \[6\]"):
        figures.orders_without_spikes([dict(L=1, nc1=1.0, nc3=1.0, gap=1.0, minimum=1.0)], {6: {}})
    with pytest.raises(ValueError, match="scale_folder"):
        figures.notebook_path(1, "paper")


def test_command_line_prints_the_parameters(capsys):
    import yaml

    assert figures.main(["params", "2", "--scale", "cpu-scale", "--set", "epochs=7", "--set", "device=cuda"]) == 0
    out = capsys.readouterr().out
    want = figures.figure_parameters(2, "cpu-scale", epochs=7, device="cuda")
    # JSON, and YAML for papermill -f: a float like 1e-5 comes back as a float, not as the string '1e-05'
    assert json.loads(out) == want and yaml.safe_load(out) == want
    assert figures.main(["params", "1", "--set", "lam_W=1e-5", "--set", "lam_H=2e-05"]) == 0
    decays = yaml.safe_load(capsys.readouterr().out)
    assert (decays["lam_W"], decays["lam_H"]) == (1e-5, 2e-5) and isinstance(decays["lam_W"], float)
    odd = {"a": 1e-05, "b": -2e+20, "c": 0.001, "d": "run 1e-05", "e": [3e-07, 1.5], "f": 12, "g": None}
    assert yaml.safe_load(figures.yaml_safe_json(odd)) == json.loads(figures.yaml_safe_json(odd)) == odd


def test_train_kwargs_are_accepted_by_the_engine():
    p = figures.figure_parameters(1, "paper", data_path=str(figures.ROOT))
    kw = figures.train_kwargs(p, 6)
    assert kw["L"] == 6 and kw["run_name"] == "fig1-L6"
    checked = nclib.train.check_params(**kw)
    assert checked["epochs"] == 12000 and checked["batch_size"] == 128


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
    assert figures.check_figure(runs, 1, "tiny") == {"epochs": {1: 120, 3: 120, 6: 120}, "complete": True}
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
            if bias:
                np.testing.assert_allclose(th.b_star, n / 30, rtol=1e-15)
                assert th.alive < th.K  # Y-bar has a zero singular value: one mode always collapses
            else:
                assert th.b_star is None
            # the network's features are constrained, so its objective never goes below the UFM minimum
            assert np.all(run.history["objective"] >= th.minimum * (1 - 1e-12))
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


def test_wall_time_counts_runs_trained_side_by_side_once(tiny):
    together, apart = figures.load_figure(1, "tiny", root=tiny), figures.load_figure(3, "tiny", root=tiny)
    assert [r["trained_with"] for r in figures.final_rows(together)] == [
        ["fig1-L3", "fig1-L6"], ["fig1-L1", "fig1-L6"], ["fig1-L1", "fig1-L3"]]
    assert all(r["trained_with"] == [] for r in figures.final_rows(apart))
    wall = {L: run.provenance["wall_time_s"] for L, run in together.items()}
    assert figures.wall_time_s(together) == max(wall.values())  # the three ran at the same time
    assert figures.wall_time_s(apart) == pytest.approx(sum(r.provenance["wall_time_s"] for r in apart.values()))
    assert figures.wall_time_s({1: together[1]}) == wall[1]  # a partner not among the runs is not counted


def test_first_epoch():
    h = {"epoch": np.array([0, 10, 20, 30]), "train_acc": np.array([0.1, 0.9, 1.0, 1.0]),
         "nc1": np.array([5.0, 1.0, 0.5, 0.01])}
    assert figures.first_epoch(h, "train_acc", 1.0) == 20
    assert figures.first_epoch(h, "nc1", 0.6, above=False) == 20
    assert figures.first_epoch(h, "nc1", 1e-3, above=False) is None


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
    # another column than the objective
    assert figures.largest_rise(_history(obj, nc3=[5, 4, 3, 2, 1, 1, 1, 3, 1]), "nc3")["epoch"] == 70


def _spike_run(objective, L, lr=None, milestones=(), **columns):
    h = _history(objective, lr, **columns)
    return figures.Run(path=None, params={"L": L, "lr_milestones": list(milestones), "lr_gamma": 0.1},
                       history=h, provenance={})


def test_spikes_use_the_threshold_and_orderings_say_what_a_spike_decides():
    calm = _spike_run([1.0, 0.5, 0.6, 0.4], 1)  # largest rise 1.2
    spike = _spike_run([1.0, 0.5, 0.1, 0.3, 0.2], 3)  # rise 3 between epochs 20 and 30
    assert figures.spikes({1: calm, 3: spike}) == {3: figures.largest_rise(spike.history)}
    assert figures.spikes({1: calm, 3: spike}, threshold=3.5) == {}
    assert sorted(figures.spikes({1: calm, 3: spike}, threshold=1.1)) == [1, 3]
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


def test_spike_sentences_place_the_rise_against_the_step_decay():
    lr = [1e-3] * 6 + [1e-4] * 3
    obj = [1.0, 0.2, 0.1, 0.1, 0.05, 0.5, 0.3, 0.1, 0.04]  # x10 between 40 and 50, the milestone
    runs = {1: _spike_run([1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.09, 0.08, 0.07], 1, lr, [50]),
            6: _spike_run(obj, 6, lr, [50], train_acc=[0, 1, 1, 1, 1, 0.9, 1, 1, 1])}
    rows = [dict(L=L, rise=figures.largest_rise(r.history), acc100_epoch=figures.first_epoch(r.history, "train_acc", 1),
                 acc100_stays=figures.settled_epoch(r.history, "train_acc", 1), train_acc=1.0) for L, r in runs.items()]
    text = figures._spike_sentence(runs, rows, figures.spikes(runs))
    assert text.startswith("For L = 6 the objective rises by a factor 10 between the recorded epochs 40 and 50, "
                           "at the constant learning rate 0.001, in the 10 epochs that end where the step decay")
    assert "x0.1 from epoch 51 on" in text and "did not cause it" in text
    assert "at epoch 80" in text  # back at or below 0.05 first at epoch 80
    later = {6: _spike_run(obj, 6, lr, [70])}
    assert "20 epochs before the step decay after epoch 70" in figures._spike_sentence(
        later, rows[1:], figures.spikes(later))
    inside = {6: _spike_run(obj, 6, lr, [45])}
    assert "contains the step decay after epoch 45" in figures._spike_sentence(
        inside, rows[1:], figures.spikes(inside))
    assert figures._spike_sentence({1: runs[1]}, rows[:1], {}) == (
        "No run's objective ever rises between consecutive recorded epochs.")
    mild = {3: _spike_run([1.0, 0.5, 0.75, 0.4], 3)}
    mild_rows = [dict(L=3, rise=figures.largest_rise(mild[3].history))]
    assert figures.spikes(mild) == {} and figures._spike_sentence(mild, mild_rows, {}) == (
        "No run's objective rises by more than a factor 2 between consecutive recorded epochs: the largest rise "
        "is a factor 1.5, for L = 3 between epochs 10 and 20.")
    assert figures._accuracy_sentence(runs, rows) == ("After first reaching 100 %, the training accuracy falls "
                                                     "again: for L = 6 it falls to 0.9000 at epoch 50 and is at "
                                                     "100 % again from epoch 60 on.")
    assert figures._accuracy_sentence({1: runs[1]}, rows[:1]) == (
        "Once at 100 %, the training accuracy of every run stays there.")


def test_drawing(tiny):
    for fig in (1, 3):
        runs = figures.load_figure(fig, "tiny", root=tiny)
        f = figures.draw_panels(runs, "cpu-scale")
        assert len(f.axes) == 6
        assert "CPU-scale, not the paper's settings, 120 epochs" in f.axes[0].get_legend().get_title().get_text()
        lines = f.axes[0].get_lines()  # three curves and the dotted line of the step decay after epoch 80
        assert len(lines) == 4 and lines[-1].get_linestyle() == ":" and list(lines[-1].get_xdata()) == [80, 80]
        g = figures.draw_theory(runs)
        assert len(g.axes) == 3 and len(g.axes[2].get_lines()) == 3
        assert len(g.axes[1].get_lines()) == (6 if fig == 1 else 3)
        plt.close("all")


# ------------------------------------------------------------------------------------------ figure chapters

def test_config_scale_inverts_the_scale_folders():
    assert figures.config_scale("gpu") == "paper" and figures.config_scale("cpu-scale") == "cpu-scale"
    with pytest.raises(ValueError, match="scale_folder must be one of"):
        figures.config_scale("paper")


def test_figure_chapter_glue_values(tiny, tiny_scale):
    for fig in (1, 3):
        ch = figures.figure_chapter(fig, "tiny", root=tiny)
        runs = figures.load_figure(fig, "tiny", root=tiny)
        rows = figures.final_rows(runs)
        assert (ch.figure.number, ch.scale_folder, ch.config_scale) == (fig, "tiny", "tiny")
        assert sorted(ch.runs) == [1, 3, 6]
        assert [(r["L"], r["gap"]) for r in ch.rows] == [(r["L"], r["gap"]) for r in rows]
        assert ch.check == figures.check_figure(runs, fig, "tiny")
        assert ch.theory[6].minimum == figures.run_theory(runs[6].params).minimum
        g = ch.glue
        bias_keys = {"bstar", "bias0", "bias-end-min", "bias-end-max"}
        assert bias_keys <= set(g) if fig == 1 else not bias_keys & set(g)
        assert all(isinstance(v, str) for k, v in g.items() if k != "K") and g["K"] == 10
        # the paper's settings (Section 5) and the runs' own
        assert g["caption"] == figures.FIGURES[fig].caption
        assert (g["paper-counts"], g["paper-epochs"], g["paper-width"], g["paper-batch"], g["paper-lr"]) == \
            ("500, 500, 400, 400, 300, 300, 200, 200, 100, 100", "12,000", "2,048", "128", "0.0001")
        assert (g["N"], g["counts"], g["epochs"], g["width"], g["batch"], g["lr"], g["gamma"], g["milestone"],
                g["decay"], g["metric-every"]) == ("30", "5, 5, 4, 4, 3, 3, 2, 2, 1, 1", "120", "32", "full", "0.003",
                                                   "0.1", "80", "0.001", "20")
        assert g["scale"] == "tiny runs (a test scale)" and g["counts-note"] == "the paper's counts divided by 100"
        assert g["data"] == "CIFAR-10 (npz)"
        assert g["differs"].startswith("The runs stop at 120 of the paper's 12,000 epochs")
        # against the theory, and the comparison, from the rows
        alive = sorted({figures.run_theory(r.params).alive for r in runs.values()})
        assert g["alive"] == " or ".join(map(str, alive)) and (fig != 1 or g["alive"] == "9")
        assert g["gap-min"] == f"{min(r['gap'] / r['minimum'] for r in rows):.2g}"
        assert g["gap-max"] == f"{max(r['gap'] / r['minimum'] for r in rows):.2g}"
        assert g["mean-end"] == f"{max(r['global_mean_norm'] for r in rows):.3f}"
        nc3 = max(runs[r['L']].history['nc3'][0] / r['nc3'] for r in rows)
        assert f"NC3 falls by at most a factor {nc3:.3g} over a run" in g["fit-sentence"]
        assert f"NC1 falls by at least a factor {min(r['nc1_drop'] for r in rows):.1e}" in g["fit-sentence"]
        assert g["stall"] == "Every run ends at 100 % training accuracy."
        never = lambda e: "never" if e is None else str(e)  # noqa: E731
        assert g["acc-epochs"] == ", ".join(never(r["acc100_epoch"]) for r in rows)
        assert g["acc-stays"] == ", ".join(never(r["acc100_stays"]) for r in rows)
        # where the decays come from: the tiny scale sets 1e-3 by hand
        assert g["decay-reading"] == figures.decay_reading(runs[1].params)
        assert g["decay-reading"].startswith("set by hand (lam_W = 0.001, lam_H = 0.001)")
        assert g["spike-threshold"] == "2"
        spiked = figures.spikes(runs)
        assert g["spike-runs"] == figures._spike_sentence(runs, rows, spiked)
        assert g["spike-orders"] == figures._orders_sentence(rows, spiked)
        assert g["spike-noise"].startswith("Of the ") or g["spike-noise"].endswith("never rises between "
                                                                                     "consecutive recorded epochs.")
        for key in ("nc1", "nc3", "gap"):
            assert g[f"{key}-order"] == ", ".join(map(str, figures.order_by(rows, key)))
        assert g["gap-trend"].startswith("in these runs (one seed per L) " + (
            "the deeper the head" if figures.order_by(rows, "gap") == [1, 3, 6]
            else "the distance to the global minimum is not monotone"))
        if fig == 1:
            assert g["bstar"] == f"{np.linalg.norm(np.array(runs[1].params['counts']) / 30):.3f}"
            assert g["bias-end-max"] == f"{max(r['bias_error'] for r in rows):.3f}"


def test_figure_chapter_scale_notes(tiny, tiny_scale, monkeypatch):
    runs = figures.load_figure(1, "tiny", root=tiny)
    check, rows = figures.check_figure(runs, 1, "tiny"), figures.final_rows(runs)
    theory = {L: figures.run_theory(r.params) for L, r in runs.items()}
    cpu = figures.figure_glue(1, "cpu-scale", runs, check, rows, theory)
    assert cpu["scale-note"].startswith("Until GPU runs") and cpu["differs"].startswith("The runs are CPU-scale")
    assert cpu["counts-note"] == "the paper's counts divided by 10"
    full = figures.figure_glue(1, "gpu", runs, {"epochs": {1: 12000, 3: 12000, 6: 12000}}, rows, theory)
    assert full["differs"] == "The runs use the paper's stated settings."
    assert full["counts-note"] == "the paper's counts"
    assert full["epochs"] == "12,000"


def test_figure_chapter_tables(tiny, tiny_scale):
    for fig in (1, 3):
        ch = figures.figure_chapter(fig, "tiny", root=tiny)
        t = ch.tables
        assert set(t) == {"provenance", "theory", "final", "settings"}
        for name in ("provenance", "theory", "final"):
            assert t[name].index.name == "L" and t[name].index.tolist() == [1, 3, 6]
        assert t["provenance"]["N"].tolist() == [30] * 3 and t["provenance"]["K"].tolist() == [10] * 3
        assert t["theory"].loc[1, "modes alive"] == f"{ch.theory[1].alive} of 10"
        assert t["theory"].loc[3, "global minimum of (4.3)"] == f"{ch.theory[3].minimum:.4e}"
        assert t["final"].loc[6, "NC1"] == f"{ch.runs[6].history['nc1'][-1]:.2e}"
        assert ("||b - n/N||" in t["final"].columns) is (fig == 1)
        s = t["settings"]
        assert s.index.tolist() == ["data", "class counts", "class order", "width", "batch size", "optimizer, lr",
                                    "lr schedule", "decays", "precision of the products", "epochs"]
        assert s.loc["lr schedule", "these runs"] == "multiplied by 0.1 after epoch 80"
        assert s.loc["precision of the products"].tolist() == ["not stated", "fp32"]
        assert s.loc["epochs"].tolist() == ["12,000", "120"] and s.loc["width"].tolist() == ["2048", "32"]
        assert s.loc["decays", "these runs"] == "lam_W = lam_H = 0.001"


def test_figure_chapter_picks_the_preferred_scale(tiny, tmp_path):
    # no GPU runs: the CPU-scale folder, empty here; finished GPU runs: checked against the paper's settings
    with pytest.raises(ValueError, match="'cpu-scale' has no runs of Figure 3"):
        figures.figure_chapter(3, root=tmp_path)
    shutil.copytree(tiny / "tiny" / "fig3", tmp_path / "gpu" / "fig3")
    with pytest.raises(ValueError, match=r"Figure 3 \(paper\) runs do not match its configuration"):
        figures.figure_chapter(3, root=tmp_path)


def _with_history(run, **columns):
    return dataclasses.replace(run, history=dict(run.history, **columns))


def test_check_runs_passes_the_runs_and_names_what_fails(tiny, monkeypatch):
    runs1, runs3 = figures.load_figure(1, "tiny", root=tiny), figures.load_figure(3, "tiny", root=tiny)
    figures.check_runs(runs1, 1)
    figures.check_runs(runs3, 3)
    h = runs1[3].history
    broken = {
        "objective goes below the global minimum": dict(objective=h["objective"] * 0),
        "NC1 falls by a factor": dict(nc1=np.full_like(h["nc1"], 1.0)),
        "not more than NC3": dict(nc3=h["nc3"] * np.geomspace(1, 1e-9, h["nc3"].size)),
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
    monkeypatch.setattr(figures, "load_class_accuracy", lambda path: None)  # the fixture's record says 100 %
    acc = h["train_acc"].copy()
    acc[-1] = 1.0 - 2.0 / N
    stalled = _with_history(runs1[3], train_acc=acc, nc1=np.full_like(h["nc1"], 1.0))
    figures.check_runs({**runs1, 3: stalled}, 1)
    assert figures.stalls({**runs1, 3: stalled})[3]["misclassified"] == 2
    acc[-1] = 1.0 - 2.5 / N
    with pytest.raises(AssertionError, match="L=3: .* is not a whole number of samples"):
        figures.check_runs({**runs1, 3: _with_history(runs1[3], train_acc=acc)}, 1)
    real = figures.run_theory
    monkeypatch.setattr(figures, "run_theory",
                        lambda params: dataclasses.replace(real(params), minimizer_accuracy=0.5))
    with pytest.raises(AssertionError, match="L=3: the final training accuracy .* is not below .*global minimizers"):
        figures.check_runs({**runs1, 3: stalled}, 1)
    monkeypatch.undo()
    other = dataclasses.replace(runs1[6], provenance=dict(runs1[6].provenance, data_sha256="0" * 64))
    with pytest.raises(AssertionError, match="L=6: data sha256"):
        figures.check_runs({**runs1, 6: other}, 1)
    with pytest.raises(AssertionError, match="L=1: a bias-free run has a recorded bias error"):
        figures.check_runs({1: _with_history(runs3[1], bias_error=np.zeros_like(runs3[1].history["bias_error"]))}, 3)
    with pytest.raises(AssertionError, match="Figure 3 has bias=False"):
        figures.check_runs(runs1, 3)
    # Figure 2 is Figure 1's bias case on the stand-in: these CIFAR-10 runs do not name it
    with pytest.raises(AssertionError, match="L=1: the provenance does not label the letters-synthetic stand-in"):
        figures.check_runs(runs1, 2)
    with pytest.raises(ValueError, match="runs must hold"):
        figures.check_runs({}, 1)


# ------------------------------------------------------------------------------------------ executed notebooks

def test_relabel_notebook(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["(ch-train)=\n", "# The training notebook\n", "\n", "Text."]},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": "smoke = False\nepochs = 2600\n",
         "outputs": [], "execution_count": 1},
        {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [{"output_type": "stream", "name": "stdout",
                                                                           "text": "1\n"}], "execution_count": 1},
        {"cell_type": "code", "metadata": {"mystnb": {"figure": {"caption": "c", "name": "fig-train-panels"}}},
         "source": "fig = 1", "outputs": [], "execution_count": 2},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "fig3.run.ipynb"
    path.write_text(json.dumps(nb))
    figures.relabel_notebook(path, 3, "gpu")
    out = json.loads(path.read_text())
    md = out["cells"][0]["source"]
    assert md.startswith("(run-fig3-gpu)=\n# Figure 3: the executed training notebook (GPU runs at the paper's settings "
                         "but 2,600 of its 12,000 epochs)")
    # the training chapter's introduction (its smoke run, how to make runs) gives way to the note
    assert "(ch-train)=" not in md and "{ref}`ch-fig3`" in md and "Text." not in md
    assert out["cells"][1:3] == nb["cells"][1:3]
    assert out["cells"][3]["metadata"]["mystnb"]["figure"] == {"caption": figures.RUN_PANELS_CAPTION,
                                                               "name": "run-fig3-gpu-fig-train-panels"}
    assert out["cells"][3]["outputs"] == [] and out["cells"][3]["source"] == "fig = 1"
    figures.relabel_notebook(path, 3, "gpu")  # idempotent
    assert json.loads(path.read_text()) == out
    path.write_text(json.dumps(dict(nb, cells=nb["cells"][1:])))
    with pytest.raises(ValueError, match="not an executed training notebook"):
        figures.relabel_notebook(path, 3, "gpu")
    with pytest.raises(ValueError, match="is not a file"):
        figures.relabel_notebook(tmp_path / "missing.ipynb", 3, "gpu")
    assert figures.notebook_path(2, "cpu-scale").relative_to(figures.ROOT).as_posix() == \
        "book/figures/cpu-scale/fig2.run.ipynb"


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
    """The figure chapters read run folders on any machine without torch (nclib.runs), which keeps their
    execution in the book build fast."""
    import subprocess
    import sys

    code = ("import sys, nclib.figures as F, nclib.plotting; F.figure_chapter(1, 'cpu-scale'); "
            "nclib.plotting.load_runs(F.run_folders(3, 'cpu-scale')); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_decay_reading_names_the_reading_of_the_reference_decays():
    cifar = dict(dataset="cifar10", counts=figures.figure_counts(1, "paper"))
    ref = nclib.train.from_reference_decay(1e-5, 1e-5, 10)[0]
    assert "as that code trains them" in figures.decay_reading(dict(cifar, lam_W=ref, lam_H=ref))
    assert "K x 1e-05 = 0.0001" in figures.decay_reading(dict(cifar, lam_W=ref, lam_H=ref))
    assert figures.decay_reading(dict(cifar, lam_W=1e-5, lam_H=1e-5)).startswith("the literal reading")
    assert figures.decay_reading(dict(cifar, lam_W=1e-5, lam_H=1e-4)).startswith("set by hand")
    assert figures.decay_reading(dict(cifar, lam_W=[1e-4, 2e-4], lam_H=1e-4)).startswith("set per layer")
    # the figure configurations take the reference decays, and check_figure resolves them as nclib.train does
    for k in figures.FIGURES:
        p = figures.figure_parameters(k, "paper")
        assert p["lam_W"] == p["lam_H"] == "reference"
        K = len(p["counts"])
        resolved = nclib.train.check_params(**figures.train_kwargs(dict(p, data_path=None, dataset="synthetic"), 1))
        assert resolved["lam_W"] == resolved["lam_H"] == nclib.ufm.reference_decay(K)


def test_stalls_and_their_sentences(tiny, monkeypatch):
    """A run that reached 100 % and fell below for good, and one that never reached it: what stalls records and
    what the chapters' sentences say of them, against the history written here (first without, then with a
    per-class record)."""
    runs = figures.load_figure(1, "tiny", root=tiny)
    monkeypatch.setattr(figures, "load_class_accuracy", lambda path: None)
    N = figures.run_theory(runs[6].params).N
    h6, h3 = runs[6].history, runs[3].history
    e = np.asarray(h6["epoch"])
    assert e.size >= 4
    acc6 = np.ones(e.size)
    acc6[2:] = 1.0 - 3.0 / N  # 100 % up to the second recorded epoch, then 3 samples wrong to the end
    acc6[2] = 1.0 - 4.0 / N
    obj6 = np.asarray(h6["objective"], dtype=float).copy()
    obj6[2:] = obj6[1] * 3.0
    acc3 = np.full(e.size, 1.0 - 1.0 / N)  # never at 100 %
    acc3[0] = 0.1
    stalled = {**runs, 6: _with_history(runs[6], train_acc=acc6, objective=obj6),
               3: _with_history(runs[3], train_acc=acc3)}
    st = figures.stalls(stalled)
    assert sorted(st) == [3, 6]
    assert (st[6]["since"], st[6]["before"], st[6]["end"], st[6]["misclassified"]) == (int(e[2]), int(e[1]), int(e[-1]), 3)
    assert st[6]["best_acc"] == 1.0 - 3.0 / N and st[6]["objective_since"] == obj6[2]
    assert st[3]["before"] is None and st[3]["since"] == 0 and st[3]["acc100_epoch"] is None
    assert st[6]["minimizer_accuracy"] == 1.0
    half = int(e[np.searchsorted(e, e[-1] / 2)])
    assert st[6]["half"] == half
    np.testing.assert_allclose(st[6]["objective_change"], obj6[-1] / obj6[list(e).index(half)] - 1)
    text = figures._stall_sentence(stalled, st)
    assert (f"For L = 6 the training accuracy was 100 % at the recorded epoch {e[1]} and is below 100 % at every "
            f"recorded epoch from {e[2]} to the last ({e[-1]:,})") in text
    assert f"(3 of the {N:,} training samples misclassified)" in text
    assert f"its objective rose by a factor 3, from {obj6[1]:.3g} to {obj6[2]:.3g}" in text
    assert "a training spike by the rule below (x2)" in text
    assert "For L = 3 the training accuracy never reaches 100 %" in text
    assert text.endswith("so at the end of the epochs trained the runs L = 3 and 6 are away from every global "
                         "minimizer: the collapse that Theorem 4.3 predicts at its minimizers is not what such a "
                         "run shows.")
    rows = figures.final_rows(stalled)
    assert figures._fitted(rows) == [1]
    assert "in the run that ends at 100 % training accuracy (L = 1)" in figures._fit_sentence(stalled, rows)
    assert figures._fit_sentence(stalled, rows).endswith(
        "The runs L = 3 and 6 end below 100 % training accuracy (section Comparison).")
    assert f"NC1 falls by at least a factor {rows[0]['nc1_drop']:.1e} (checked below)" in figures._fit_sentence(stalled,
                                                                                                        rows)
    assert "for L = 1, as the paper's claim" in figures._collapse_claim(rows)
    assert "but not for L = 3 and 6 within these epochs" in figures._collapse_claim(rows)
    assert "The history of L = 3 and 6 records the accuracy over all training samples only" in text
    # with a per-class record for L = 6: the classes below 100 % at the end, checked against the overall accuracy
    n = figures.run_theory(runs[6].params).n
    k = int(np.argmax(n))
    per = np.ones((e.size, n.size))
    per[-1, k] = 1.0 - 3.0 / n[k]
    monkeypatch.setattr(figures, "load_class_accuracy",
                        lambda path: {"epoch": e, "acc": per} if path == runs[6].path else None)
    st = figures.stalls(stalled)
    assert st[6]["classes"] == [(k, int(n[k]), per[-1, k])] and st[3]["classes"] is None
    text = figures._stall_sentence(stalled, st)
    assert (f"At the end of the run L = 6 the misclassified samples are in class {k} ({n[k]} samples, accuracy "
            f"{per[-1, k]:.3f})") in text
    assert "The history of L = 3 records the accuracy over all training samples only" in text
    per[-1, k] = 1.0 - 1.0 / n[k]
    with pytest.raises(ValueError, match="class_accuracy.csv misclassifies 1 samples at the end, the history 3"):
        figures.stalls(stalled)
    monkeypatch.setattr(figures, "load_class_accuracy", lambda path: None)
    none = {L: _with_history(r, train_acc=acc3) for L, r in runs.items()}
    assert figures._fit_sentence(none, figures.final_rows(none)).startswith("No run ends at 100 % training accuracy")
    assert figures.stalls(runs) == {} and figures._stall_sentence(runs, {}) == "Every run ends at 100 % training accuracy."


def test_calibrated_seconds_and_the_benchmark_figure_line(tmp_path):
    cal = {"kinds": {"cifar10": dict(data_s=1.0, setup_s=2.0, epoch_s=0.05, eval_s=0.5),
                     "letters-synthetic": dict(data_s=30.0, setup_s=3.0, epoch_s=0.1, eval_s=0.7)}}
    m = figures.SCALES["paper"]["metric_every"]
    want = figures.NOTEBOOK_OVERHEAD_S + 1.0 + 2.0 + 1000 * 0.05 + (1000 // m + 2) * 0.5
    assert figures.calibrated_seconds(cal, 1, 1000) == pytest.approx(want, rel=1e-15)
    assert figures.calibrated_seconds(cal, 4, 0) == pytest.approx(figures.NOTEBOOK_OVERHEAD_S + 33.0 + 2 * 0.7)
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


def test_scale_label_and_schedule_phrase():
    assert figures.scale_label("gpu", 2600) == "GPU runs at the paper's settings but 2,600 of its 12,000 epochs"
    assert figures.scale_label("gpu", 12000) == "GPU runs at the paper's settings"
    assert figures.scale_label("cpu-scale", 1000) == "CPU-scale runs (not the paper's settings)"
    p = dict(lr_milestones=[6000], lr_gamma=0.1)
    assert figures.schedule_phrase(p, 2600) == ("multiplied by 0.1 after epoch 6000 (a step these runs, 2,600 epochs "
                                                "long, do not reach)")
    assert figures.schedule_phrase(p, 12000) == "multiplied by 0.1 after epoch 6000"
    assert figures.schedule_phrase(dict(lr_milestones=[500, 6000], lr_gamma=0.5), 1000) == (
        "multiplied by 0.5 after epoch 500, 6000 (the runs, 1,000 epochs long, do not reach the step after epoch 6000)")
    assert figures.schedule_phrase(dict(lr_milestones=[], lr_gamma=0.1), 10) == "constant"
