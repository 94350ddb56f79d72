"""What fits one GPU machine: the parameter counts of the figures' networks, the predicted seconds of a piece of a
figure's runs (nclib.figures.piece_seconds), the fewest pieces (fewest_pieces) and scripts/gpu_budget.py pieces."""
import json
import re

import pytest
import torch

import nclib.figures as figures
from nclib import ROOT, models

from test_gpu_scripts import _script

gpu_budget = _script("gpu_budget")

CAL = {"kinds": {"cifar10": dict(data_s=1.0, setup_s=6.0, epoch_s=0.06, eval_s=0.5),
                 "letters-synthetic": dict(data_s=30.0, setup_s=3.0, epoch_s=0.1, eval_s=0.7)}}


@pytest.mark.parametrize("fig", [1, 2, 3, 4])
def test_parameter_counts_are_the_networks(fig):
    p = figures.figure_parameters(fig, "gpu")
    with torch.device("meta"):  # shapes only
        built = {L: models.parameter_count(models.CollapseNet(figures.INPUT_DIM, len(p["counts"]), L, p["width"],
                                                              p["depth"], bias=p["bias"])) for L in (1, 3, 6)}
    assert figures.figure_parameter_counts(fig) == built


def test_a_whole_figure_is_the_calibrated_figure_and_a_piece_its_share():
    assert figures.piece_seconds(CAL, 1, (6, 3, 1)) == pytest.approx(figures.calibrated_seconds(CAL, 1, 12000))
    n = figures.figure_parameter_counts(1)
    share = n[6] / sum(n.values())
    fixed = figures.NOTEBOOK_OVERHEAD_S + 1.0 + 6.0 / 3
    evals = 12000 // 100 + 1  # epochs 0, 100, ..., 12,000
    assert figures.piece_seconds(CAL, 1, (6,)) == pytest.approx(fixed + 12000 * 0.06 * share + evals * 0.5 / 3)
    # no side-by-side credit for a partial piece; slower scales the epochs and metric epochs only
    assert figures.piece_seconds(CAL, 1, (6,), apart_ratio=1.5) == pytest.approx(
        fixed + 1.5 * 12000 * 0.06 * share + evals * 0.5 / 3)
    # slower scales the training epochs only (the metrics are fp32 at every precision); each start pays again
    assert figures.piece_seconds(CAL, 1, (6,), slower=2.0) == pytest.approx(
        fixed + 2 * 12000 * 0.06 * share + evals * 0.5 / 3)
    assert figures.piece_seconds(CAL, 1, (6,), starts=2) == pytest.approx(
        2 * fixed + 12000 * 0.06 * share + evals * 0.5 / 3)
    assert figures.piece_seconds(CAL, 1, (1, 3, 6), apart_ratio=9.0) == figures.piece_seconds(CAL, 1, (1, 3, 6))
    with pytest.raises(ValueError, match="piece must hold head depths"):
        figures.piece_seconds(CAL, 1, (2,))
    for bare in (6, "6"):  # one depth alone, not a tuple of them
        with pytest.raises(ValueError, match=r"piece must be a tuple of head depths .* e\.g\. \(6,\)"):
            figures.piece_seconds(CAL, 1, bare)
    with pytest.raises(ValueError, match="slower"):
        figures.piece_seconds(CAL, 1, (1,), slower=0)
    with pytest.raises(ValueError, match="no complete entry for 'letters-synthetic'"):
        figures.piece_seconds({"kinds": {"cifar10": CAL["kinds"]["cifar10"]}}, 2, (1,))


def test_fewest_pieces_prefers_fewer_then_the_most_room():
    cost = {(1,): 3, (3,): 4, (6,): 5, (1, 3): 6, (3, 6): 8, (1, 3, 6): 11}
    assert figures.fewest_pieces(cost.__getitem__, 11) == [(1, 3, 6)]
    assert figures.fewest_pieces(cost.__getitem__, 8) == [(1, 3), (6,)]  # not [(1,), (3, 6)]: its longest is 8
    assert figures.fewest_pieces(cost.__getitem__, 5) == [(1,), (3,), (6,)]
    assert figures.fewest_pieces(cost.__getitem__, 4.9) is None
    with pytest.raises(ValueError, match="budget_s"):
        figures.fewest_pieces(cost.__getitem__, 0)
    with pytest.raises(ValueError, match=r"^seconds_of must be a function"):
        figures.fewest_pieces(None, 10)
    with pytest.raises(ValueError, match=r"^seconds_of must be a function"):
        figures.fewest_pieces(cost, 10)  # the table, not its look-up
    for bad in (None, -1.0, float("nan"), float("inf"), "3"):  # what a piece's seconds cannot be
        with pytest.raises(ValueError, match=r"^seconds_of must give each piece a finite number of seconds"):
            figures.fewest_pieces(lambda piece, bad=bad: bad if piece == (6,) else cost[piece], 11)


def test_the_script_prints_the_pieces_or_says_none_fits(tmp_path, capsys):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(CAL))
    gpu_budget.main(["pieces", "1", "--calibration", str(path), "--budget-s", "1000"])
    assert capsys.readouterr().out.startswith("L1-L3-L6   (")
    gpu_budget.main(["pieces", "1", "--calibration", str(path), "--budget-s", "600"])
    assert capsys.readouterr().out.startswith("L1-L3 L6   (")
    with pytest.raises(SystemExit) as done:
        gpu_budget.main(["pieces", "2", "--calibration", str(path), "--budget-s", "100"])
    assert done.value.code == 1 and "Figure 2: no plan" in capsys.readouterr().out


def test_the_runbook_quotes_what_its_pieces_commands_print(monkeypatch, capsys):
    """Each `gpu_budget.py pieces` command of scripts/README.md that the runbook follows with what it prints (the
    committed calibration, TF32 and strict fp32) prints that line, a plan or none (status 1)."""
    text = (ROOT / "scripts" / "README.md").read_text()
    quoted = re.findall(r"```\n\.venv/bin/python scripts/gpu_budget\.py (pieces [^\n]*)\n```\n+prints `([^`]*)`", text)
    assert len(quoted) >= 3 and any("--slower" in command for command, _ in quoted)
    monkeypatch.chdir(ROOT)  # the runbook's commands run from the repository root
    for command, printed in quoted:
        if printed.startswith("Figure 1: no plan") or ", more than " in printed:
            with pytest.raises(SystemExit) as done:
                gpu_budget.main(command.split())
            assert done.value.code == 1
        else:
            gpu_budget.main(command.split())
        assert capsys.readouterr().out.rstrip("\n") == printed, command


def test_one_piece_at_the_runs_precision_against_one_machine(tmp_path, capsys):
    """pieces --piece --precision, the check FULL mode makes before a piece's first command: the piece's seconds at
    the runs' precision, its epochs slower and apart by the committed job's engine benchmarks beside its calibration
    (fp32 against the calibration's TF32: the ratio of their side-by-side figure times, and fp32's own ratio of
    one after another to side by side), status 1 over the budget; a calibration that is missing, or without the
    benchmarks, refused by name rather than planned from a guess."""
    job = ROOT / "results" / "figures" / "gpu" / "logs" / "call1"
    cal = json.loads((job / "calibration.json").read_text())
    tf32, fp32 = (figures.read_benchmark(job / name) for name in ("bench_train_gpu.txt", "bench_train_gpu_fp32.txt"))
    slower = fp32["figure_together_s"] / tf32["figure_together_s"]
    assert gpu_budget.precision_speeds(job / "calibration.json", "fp32", "tf32") == (slower, fp32["figure_ratio"])
    assert gpu_budget.precision_speeds(job / "calibration.json", "tf32", "tf32") == (1.0, tf32["figure_ratio"])
    args = ["pieces", "1", "--calibration", str(job / "calibration.json"), "--starts", "2", "--budget-s", "610"]

    def want(piece, q):
        speeds = dict(slower=slower, apart_ratio=fp32["figure_ratio"]) if q == "fp32" else \
            dict(apart_ratio=tf32["figure_ratio"])
        return figures.piece_seconds(cal, 1, piece, starts=2, **speeds)

    assert want((6,), "fp32") > 610 >= max(want((1,), "fp32"), want((6,), "tf32"))
    with pytest.raises(SystemExit) as done:
        gpu_budget.main(args + ["--precision", "fp32", "--piece", "L6"])
    assert done.value.code == 1
    said = capsys.readouterr().out
    assert said == f"Figure 1, L6 at fp32: {want((6,), 'fp32'):.0f} s, more than 610 s of one machine\n"
    for q, piece, L in (("fp32", "L1", (1,)), ("tf32", "L6", (6,))):
        gpu_budget.main(args + ["--precision", q, "--piece", piece])
        assert capsys.readouterr().out == f"Figure 1, {piece} at {q}: {want(L, q):.0f} s, within 610 s of one machine\n"
    gpu_budget.main(args + ["--precision", "fp32", "--piece", "L1-L6", "--epochs", "100"])  # L = 1 and 6, few epochs
    assert capsys.readouterr().out.startswith("Figure 1, L1-L6 at fp32: ")
    alone = tmp_path / "calibration.json"
    alone.write_text((job / "calibration.json").read_text())
    for calibration, refusal in ((tmp_path / "none.json", "no calibration in"),
                                 (alone, "no engine benchmark output beside the calibration")):
        with pytest.raises(SystemExit, match=refusal):
            gpu_budget.main(["pieces", "1", "--calibration", str(calibration), "--budget-s", "610", "--precision",
                             "fp32", "--piece", "L6"])
    with pytest.raises(SystemExit, match="piece must name head depths"):
        gpu_budget.main(args + ["--piece", "L1..L3"])


def test_the_script_counts_a_notebook_s_data_as_told(tmp_path, capsys):
    """--data-s replaces the calibration's seconds for a notebook's data of the figure's kind (the letters read
    from their rendering saved ahead, with a calibration that rendered them): each of a piece's two starts saves
    the difference."""
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(CAL))

    def alone_l6(*extra):
        with pytest.raises(SystemExit):  # budget 1 s: no plan, and the line says each run's seconds
            gpu_budget.main(["pieces", "2", "--calibration", str(path), "--budget-s", "1", *extra])
        out = capsys.readouterr().out
        return float(out.split("L6 ")[1].split(" s")[0])

    assert alone_l6() - alone_l6("--data-s", "1") == pytest.approx(2 * (30.0 - 1.0), abs=1.0)
    with pytest.raises(SystemExit, match="--data-s must be a number of seconds >= 0"):
        gpu_budget.main(["pieces", "2", "--calibration", str(path), "--budget-s", "1", "--data-s", "-1"])


def test_the_calibration_times_the_letters_as_a_notebook_gets_them(tmp_path, capsys):
    """calibrate's letters: read from the rendering saved ahead (scripts/gpu_letters_data.py, checked to give the
    training data of a fresh rendering); a file for other counts is refused, said, and the letters rendered whole
    instead; or a sample rendered and scaled (CPU tests)."""
    from nclib import data, letters

    gpu_letters_data = _script("gpu_letters_data")
    ahead = tmp_path / "letters.npz"
    sha = gpu_letters_data.main(str(ahead), "cpu-scale")
    assert "same as a fresh rendering" in capsys.readouterr().out
    p = figures.figure_parameters(2, "cpu-scale")
    assert sha == data.load("letters-synthetic", counts=p["counts"], seed=p["seed"]).provenance["data_sha256"]
    seconds, how = gpu_budget.letters_data_seconds(str(ahead), scale="cpu-scale")
    assert how == "rendered ahead" and seconds > 0
    other = letters.save_letters_synthetic(tmp_path / "other.npz", counts=[2] * 26)
    seconds, how = gpu_budget.letters_data_seconds(str(other), scale="cpu-scale")
    assert how.startswith("rendered in the notebook (the file was refused: data_path") and seconds > 0
    assert "the file was refused" in capsys.readouterr().err
    seconds, how = gpu_budget.letters_data_seconds(None, letters_images=52, scale="cpu-scale")
    assert how == "rendered in the notebook, scaled from 52 images" and seconds > 0


def test_with_data_seconds_replaces_one_data_set_s_data_time():
    ahead = figures.with_data_seconds(CAL, 4, 1.5)
    assert ahead["kinds"]["letters-synthetic"] == {**CAL["kinds"]["letters-synthetic"], "data_s": 1.5}
    assert ahead["kinds"]["cifar10"] == CAL["kinds"]["cifar10"]
    assert CAL["kinds"]["letters-synthetic"]["data_s"] == 30.0  # the calibration given is not changed
    assert figures.piece_seconds(CAL, 2, (6,), starts=2) - figures.piece_seconds(ahead, 2, (6,), starts=2) == \
        pytest.approx(2 * (30.0 - 1.5))
    with pytest.raises(ValueError, match="seconds"):
        figures.with_data_seconds(CAL, 2, -1.0)
    with pytest.raises(ValueError, match="no entry kinds/letters-synthetic for Figure 2"):
        figures.with_data_seconds({"kinds": {"cifar10": CAL["kinds"]["cifar10"]}}, 2, 1.0)
