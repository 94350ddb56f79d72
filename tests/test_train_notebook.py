"""The training notebook (book/training/train.md) run by papermill in smoke mode, as a GPU session would drive it."""
import json
import os
import pathlib
import subprocess
import sys

import nclib

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
