"""The training notebook (book/training/train.md) run by papermill in smoke mode, as a GPU job drives it."""
import ast
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import nclib
from nclib import train
from nclib.runs import run_status as runs_status

NOTEBOOK = nclib.ROOT / "book" / "training" / "train.md"


def test_notebook_smoke_run_with_papermill(tmp_path):
    bindir = pathlib.Path(sys.executable).parent
    runs = tmp_path / "runs"
    out = tmp_path / "train.ipynb"
    env = {**os.environ, "MPLBACKEND": "agg", "OMP_NUM_THREADS": "1"}
    cmd = (f"{bindir / 'jupytext'} --to ipynb -o - {NOTEBOOK} | {bindir / 'papermill'} - {out} -k python3 "
           f"--cwd {NOTEBOOK.parent} -p smoke True -p out_dir {runs} -p run_tag nbtest -y 'L_values: [1, 2]'")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out.read_text())
    assert nb["metadata"]["kernelspec"]["language"] == "python"
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    # the papermill parameters reached the runs: one folder per L with a full history
    folders = sorted(p.name for p in runs.iterdir())
    assert folders == ["nbtest-L1", "nbtest-L2"]
    for name in folders:
        params = json.loads((runs / name / "params.json").read_text())
        prov = json.loads((runs / name / "provenance.json").read_text())
        assert params["dataset"] == "synthetic" and params["width"] == 64 and prov["status"] == "finished"
        assert (runs / name / "history.csv").read_text().count("\n") == 1 + 600 // 50 + 1
    # the figure cell produced an image
    assert any("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))


def _papermill(tmp_path, *args, out="train.ipynb", env=()):
    bindir = pathlib.Path(sys.executable).parent
    env = {**os.environ, "MPLBACKEND": "agg", "OMP_NUM_THREADS": "1", **dict(env)}
    cmd = (f"{bindir / 'jupytext'} --to ipynb -o - {NOTEBOOK} | {bindir / 'papermill'} - {tmp_path / out} -k python3 "
           f"--cwd {NOTEBOOK.parent} " + " ".join(args))
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, env=env, timeout=300)


def _parameters_cell() -> dict:
    """The names and values the notebook's parameters cell assigns (literals only)."""
    text = NOTEBOOK.read_text()
    start = text.index(":tags: [parameters]")
    body = text[start:text.index("```", start)].split("\n", 1)[1]
    out = {}
    for node in ast.parse(body).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        name = node.targets[0].id
        if name != "parameter_defaults":
            out[name] = ast.literal_eval(node.value)
    return out


def test_the_parameters_cell_is_the_engine_parameter_list():
    """One parameter list: the notebook assigns exactly nclib.train.NOTEBOOK_PARAMETERS (DEFAULTS but L and
    run_name, plus smoke, L_values, run_tag), each engine parameter with the engine's default."""
    cell = _parameters_cell()
    assert sorted(cell) == sorted(train.NOTEBOOK_PARAMETERS)
    assert set(train.NOTEBOOK_PARAMETERS) - set(train.DEFAULTS) == {"smoke", "L_values", "run_tag"}
    for name, value in cell.items():
        if name in train.DEFAULTS:
            want = train.DEFAULTS[name]
            assert value == (list(want) if isinstance(want, tuple) else want), name
    assert cell["smoke"] is True and cell["L_values"] == [1, 3, 6] and cell["run_tag"] is None


def test_notebook_refuses_unknown_and_smoke_ignored_parameters(tmp_path):
    runs = tmp_path / "runs"
    proc = _papermill(tmp_path, f"-p out_dir {runs} -p epochs -5")  # smoke=True would train 600 epochs instead
    assert proc.returncode != 0
    assert re.search(r"ValueError: parameter\(s\) \['epochs'\] set while smoke=True", proc.stderr + proc.stdout)
    proc = _papermill(tmp_path, f"-p out_dir {runs} -p learning_rate 0.1")
    assert proc.returncode != 0
    assert re.search(r"ValueError: unknown notebook parameter\(s\) \['learning_rate'\]", proc.stderr + proc.stdout)
    assert not runs.exists()  # refused before anything is written
    # without the smoke run the same value reaches the engine's check, which names it
    proc = _papermill(tmp_path, f"-p smoke False -p dataset synthetic -p out_dir {runs} -p epochs -5")
    assert proc.returncode != 0 and "epochs must be a positive integer, got -5" in proc.stderr + proc.stdout
    # papermill -p reads only True and False as booleans: "false" stays text, which is refused, not read as true
    proc = _papermill(tmp_path, f"-p smoke False -p dataset synthetic -p out_dir {runs} -p resume false")
    assert proc.returncode != 0 and "resume must be True or False, got 'false'" in proc.stderr + proc.stdout
    # a list passed with -p arrives as text: the refusal says how to pass one
    proc = _papermill(tmp_path, f"-p out_dir {runs} -p L_values '[1]'")
    assert proc.returncode != 0
    assert "L_values must be a list of head depths L, e.g. [1, 3, 6] (papermill: -y" in proc.stderr + proc.stdout
    assert not runs.exists()


def test_notebook_resumes_a_stopped_run_and_never_deletes_one(tmp_path):
    """Executed again on a stopped run the notebook continues it (its first segment kept); on a finished run it
    reads the run as it is; with other parameters it refuses by folder name unless overwrite=True."""
    runs = tmp_path / "runs"
    base = f"-p out_dir {runs} -p run_tag nb -y 'L_values: [1]'"
    proc = _papermill(tmp_path, base, "-p max_train_s 0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = runs / "nb-L1"
    assert runs_status(folder) == "stopped" and (folder / train.CHECKPOINT).is_file()
    assert train.load_history(folder)["epoch"].tolist() == [0, 50]
    proc = _papermill(tmp_path, base)  # resume=False, overwrite=False: the stopped run is continued, not replaced
    assert proc.returncode == 0, proc.stderr[-3000:]
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["status"] == "finished"
    assert [(s["from_epoch"], s["to_epoch"], s["status"]) for s in prov["segments"]] == [(0, 50, "stopped"),
                                                                                          (50, 600, "finished")]
    assert train.load_history(folder)["epoch"].tolist() == list(range(0, 601, 50))
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    proc = _papermill(tmp_path, base)  # finished with the same parameters: read as it is
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    proc = _papermill(tmp_path, base, "-p seed 1")  # another run in the same folder: refused by name
    assert proc.returncode != 0
    assert re.search(r"RunExists: run folder '[^']*nb-L1' holds a finished run with other parameters \(seed = 0, "
                     r"now 1\)", proc.stderr + proc.stdout)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    proc = _papermill(tmp_path, base, "-p seed 1 -p overwrite True")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((folder / "params.json").read_text())["seed"] == 1


def test_a_smoke_run_without_out_dir_refuses_max_train_s(tmp_path):
    """Without out_dir a smoke run trains in a temporary folder that the notebook deletes at its end, so a run that
    max_train_s stopped could never be continued: refused naming max_train_s and out_dir, before any folder is
    made; with out_dir the same call stops the run and keeps it (test_notebook_resumes_a_stopped_run_...)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _papermill(tmp_path, "-p max_train_s 0 -y 'L_values: [1]'", env={"TMPDIR": str(tmp)})
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0
    assert "ValueError: max_train_s = 0 needs out_dir in a smoke run" in out, out[-3000:]
    assert not list(tmp.glob("nclib-smoke-*"))  # no temporary run folder was made


def test_notebook_refuses_a_head_depth_given_twice(tmp_path):
    """L_values [1, 1] would be one run written twice into one folder: refused naming L_values and the repeated
    depth (not the run_name the notebook has no parameter for), before anything is written."""
    runs = tmp_path / "runs"
    proc = _papermill(tmp_path, f"-p smoke False -p dataset synthetic -p out_dir {runs} -y 'L_values: [1, 3, 1]'")
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0
    assert "ValueError: L_values must name each head depth L once (one run per L), got [1, 3, 1]: L = 1 given" in out
    assert "run_name" not in out.split("ValueError: L_values")[-1]
    assert not runs.exists()


def test_a_finished_run_too_short_for_nc1_to_fall_stops_the_notebook_naming_it(tmp_path):
    """The check that NC1 fell assumes runs trained long enough: ten full-batch epochs at the paper's lr leave NC1
    above its value at initialization on the smoke problem's network, and the notebook stops with an error that
    names the run and says to train longer (the runs themselves finished and are kept)."""
    runs = tmp_path / "runs"
    proc = _papermill(tmp_path, f"-p smoke False -p dataset synthetic -p width 64 -p depth 2 -p batch_size full "
                      f"-p epochs 10 -p metric_every 5 -p progress False -p out_dir {runs} -p run_tag short "
                      f"-y 'L_values: [1]'")
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0
    assert re.search(r"AssertionError: NC1 did not fall below its value at initialization in run L = 1: "
                     r"[0-9.]+ times it after 10 epochs; .*train it for more epochs", out), out[-3000:]
    assert runs_status(runs / "short-L1") == "finished"


@pytest.mark.parametrize("case, args", [
    ("no-feature-decay", "-p lam_H 0.0 -y 'counts: [40, 20, 10]' -p batch_size 16"),
    ("split-width", "-y 'counts: [8, 5, 5, 5, 1]' -p feature_dim 2 -p batch_size full -p lr 0.01")],
    ids=["no-feature-decay", "split-width"])
def test_a_run_without_nc2_and_nc3_passes_the_checks_with_them_nan(tmp_path, case, args):
    """NC2 and NC3 are not defined for a feature decay of 0 (which the parameters allow) nor for a feature
    dimension 2 < K that splits the two equal singular values of [8, 5, 5, 5, 1] (nclib.metrics.geometry_defined):
    the runs record NaN there, and the notebook's checks hold them to that, not to being finite, and its figure's
    NC2 and NC3 panels to holding no finite point of them; they finish, the notebook runs to its end and prints a
    line naming each such run."""
    runs = tmp_path / "runs"
    proc = _papermill(tmp_path, f"-p smoke False -p dataset synthetic -p width 16 -p depth 2 -p epochs 40 "
                      f"-p device cpu -p progress False -p out_dir {runs} -p run_tag {case} -y 'L_values: [1, 2]' "
                      + args)
    out = proc.stderr + proc.stdout
    assert proc.returncode == 0, out[-3000:]
    nb = json.loads((tmp_path / "train.ipynb").read_text())
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    for L in (1, 2):
        folder = runs / f"{case}-L{L}"
        h = train.load_history(folder)
        assert runs_status(folder) == "finished" and h["epoch"].tolist() == [0, 40]
        assert all(np.isnan(h[k]).all() for k in ("nc2_w", "nc2_h", "nc2_wh", "nc3"))
        assert np.isfinite(h["nc1"]).all() and h["nc1"][-1] < h["nc1"][0]
        assert re.search(rf"L = {L}: NC2 and NC3 not defined \(lam_W = [^)]*\): NaN, no curve", printed)
