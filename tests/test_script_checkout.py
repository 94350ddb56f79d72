"""The scripts of scripts/ and benchmarks/ import the nclib of the checkout they lie in, also when the Python that
runs them has another checkout's nclib installed in editable mode (a second checkout using the first one's
.venv, CONTRIBUTING.md): `python scripts/NAME.py` puts scripts/, not the checkout's root, on sys.path."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import nclib

ROOT = nclib.ROOT

#: The scripts that import nclib.
SCRIPTS = sorted(str(p.relative_to(ROOT)) for folder in ("scripts", "benchmarks") for p in (ROOT / folder).glob("*.py")
                 if re.search(r"^\s*(from nclib\b|import nclib\b)", p.read_text(), re.M))


def _without_pythonpath() -> dict:
    """This process's environment without PYTHONPATH: the nclib the interpreter finds by itself is then the one
    installed in it (editable, from its own checkout), or none."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return env


def test_the_scripts_that_import_nclib_are_found():
    assert {"scripts/figure_notebook.py", "scripts/stability_runs.py", "benchmarks/bench_train.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_script_imports_the_nclib_of_its_own_checkout(tmp_path, script):
    """The script's folder copied into another checkout whose nclib only prints where it lies and exits: run from
    that checkout's root, the script imports it."""
    other = tmp_path / "checkout"
    folder = pathlib.Path(script).parent
    shutil.copytree(ROOT / folder, other / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (other / "nclib").mkdir()
    (other / "nclib" / "__init__.py").write_text("import sys\nprint('nclib from', __file__)\nsys.exit(0)\n")
    done = subprocess.run([sys.executable, script, "--help"], cwd=other, env=_without_pythonpath(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f"nclib from {other / 'nclib' / '__init__.py'}"], done.stdout[-2000:]


def test_a_figures_parameters_write_into_the_checkout_of_the_script(tmp_path):
    """scripts/figure_notebook.py in a copy of the checkout (nclib and the script): the runs' default out_dir is
    the copy's results/ (nclib.ROOT), not the folder of the nclib that the interpreter has installed."""
    other = tmp_path / "checkout"
    shutil.copytree(ROOT / "nclib", other / "nclib", ignore=shutil.ignore_patterns("__pycache__"))
    (other / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "figure_notebook.py", other / "scripts")
    done = subprocess.run([sys.executable, "scripts/figure_notebook.py", "params", "1", "--scale", "cpu-scale"],
                          cwd=other, env=_without_pythonpath(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert pathlib.Path(json.loads(done.stdout)["out_dir"]) == other / "results" / "figures" / "cpu-scale" / "fig1"
