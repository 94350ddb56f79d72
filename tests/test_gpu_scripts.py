"""The figure-run tooling of scripts/: the GPU figure script (scripts/gpu_figures.sh) end to end on the CPU at a
toy size (the GPU job that makes Figures 1-4 runs this same script, so a break in it must show here first, not on
the GPU), and scripts/figure_notebook.py (the notebook parameters of a figure, the relabelling of an executed
notebook)."""
from __future__ import annotations

import json
import os
import re
import signal
import pathlib
import shlex
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np

import pytest

import nclib
import nclib.figures as figures

ROOT = nclib.ROOT


def _script(name: str):
    """A script of scripts/ as a module (scripts/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figure_notebook = _script("figure_notebook")


def fake_cifar(path: pathlib.Path) -> pathlib.Path:
    """A CIFAR-10-shaped .npz (torchvision's layout, uint8 32 x 32 x 3) with 500 images per class and a class
    signal, enough rows for the Figure 1 profile (a fixture: input data are never committed)."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10), 500)
    centers = rng.integers(40, 215, size=(10, 32, 32, 3))
    x = np.clip(centers[y] + rng.normal(0, 20, size=(y.size, 32, 32, 3)), 0, 255).astype(np.uint8)
    np.savez(path, x_train=x, y_train=y)
    return path


def fake_wheel(folder: pathlib.Path, name: str, tag: str = "py3-none-any", requires=()) -> pathlib.Path:
    """A wheel of version 9 of ``name`` for ``tag`` that holds only its metadata, requiring ``requires``: enough for
    pip to resolve it (a fixture: the real wheels of ../shared/wheels-gpu are not part of the repository)."""
    import zipfile

    dist, path = f"{name}-9.dist-info", folder / f"{name}-9-{tag}.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 9\n"
                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
        z.writestr(f"{dist}/WHEEL", f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


def fake_notebook_wheels(folder: pathlib.Path) -> list[str]:
    """papermill, jupytext and ipykernel as wheels that resolve by themselves (:func:`fake_wheel`); their names."""
    folder.mkdir(parents=True, exist_ok=True)
    return sorted(fake_wheel(folder, name).name for name in ("papermill", "jupytext", "ipykernel"))


@pytest.fixture(scope="module")
def decided(tmp_path_factory) -> dict:
    """FULL mode's DECISION_ROOT for each precision: a repository-shaped folder whose results/stability/ holds a
    committed stability pair that decides it (tests/test_land_gpu_runs.py's fixture). This checkout commits no
    pair yet, and FULL mode refuses to start before committed pairs decide its PRECISION."""
    from test_land_gpu_runs import stability_pairs  # here: that module imports this one

    roots = {q: tmp_path_factory.mktemp(f"decided-{q}") for q in ("tf32", "fp32")}
    for q, root in roots.items():
        stability_pairs(root, q)
    return {q: str(root) for q, root in roots.items()}


def run_gpu_figures(env: dict) -> str:
    """scripts/gpu_figures.sh run with the environment ``env``; asserts that it ended with status 0 and returns its
    stdout (stderr is shown when it did not)."""
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


#: What scripts/gpu_figures.sh reads from its environment, which a test's environment may give: a command pasted from
#: a log into an environment without them gets only what the command itself gives.
SCRIPT_SETTINGS = ("OUT", "PY", "DEVICE", "FIGURES", "PIECE", "PRECISION", "FULL", "RESUME", "STABILITY", "BUDGET_S",
                   "TIME_LEFT_S", "RESERVE_S", "MAX_TRAIN_S", "TEST_EPOCHS", "FULL_EPOCHS", "EXTRA_SETS", "DATA",
                   "LETTERS_DATA", "STAGE", "DECISION_ROOT", "ALLOW_DIRTY", "LEVERS_FROM", "EXPECT_GPU", "FORCE_SHIM",
                   "RESULTS_ROOT", "NOTEBOOK_ROOT", "PLAN_FROM", "CUDA_TESTS")


def next_command(log: str) -> tuple[str, dict]:
    """The command that a FULL command's log gives for resuming its stopped runs, the one line a person pastes, and
    the settings it gives, as a shell reads them (``OUT`` as the unexpanded ``$OUT``); asserts that the log gives one
    such line and that it runs the script."""
    lines = [line for line in log.splitlines() if line.startswith('OUT="$OUT" ')]
    assert len(lines) == 1, log[-3000:]
    words = shlex.split(lines[0])
    assert words[-2:] == ["bash", "scripts/gpu_figures.sh"] and all("=" in w for w in words[:-2]), lines[0]
    return lines[0], dict(w.split("=", 1) for w in words[:-2])


def run_pasted(line: str, out: pathlib.Path) -> str:
    """``line`` run by bash from the repository root, as a person pastes it, in this environment without any of the
    script's settings but ``OUT``; asserts that it ended with status 0 and returns its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_SETTINGS}
    done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=dict(env, OUT=str(out), OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def test_gpu_figures_script_runs_end_to_end_on_the_cpu(tmp_path):
    out, results, notebooks = tmp_path / "out", tmp_path / "results", tmp_path / "notebooks"
    # the benchmark's first line names the variables of its command that its caller set: only OMP_NUM_THREADS
    # here, whatever the shell running the tests has set
    shown = ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "NVIDIA_TF32_OVERRIDE")
    caller = {k: v for k, v in os.environ.items() if k not in shown}
    env = dict(caller, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1", TEST_EPOCHS="3",
               LETTERS_DATA=str(tmp_path / "no-letters.npz"),  # the calibration renders them, .gpu/ or not
               DATA=str(fake_cifar(tmp_path / "cifar.npz")), EXTRA_SETS="width=32 metric_every=1 lr=0.001",
               BENCH_ARGS="--device cpu --width 32 --steps 10 --warmup 2 --figure-epochs 1",
               CALIB_ARGS="--width 32 --epochs 1 --letters-images 26",
               RESULTS_ROOT=str(results), NOTEBOOK_ROOT=str(notebooks), OMP_NUM_THREADS="1")
    log = run_gpu_figures(env)
    assert sorted(p.name for p in out.iterdir()) == ["bench_train_gpu.txt", "bench_train_gpu_fp32.txt",
                                                     "calibration.json", "figures_gpu.tar.gz", "log.txt"]
    assert "): ended with status" not in log  # each benchmark ended with status 0: no status line
    # the two benchmark outputs are what the summary chapter reads, at the precisions the script says
    tf32, fp32 = (figures.read_benchmark(out / f) for f in ("bench_train_gpu.txt", "bench_train_gpu_fp32.txt"))
    assert tf32["precision"].startswith("tf32") and fp32["precision"].startswith("fp32")
    assert "side by side" in (out / "bench_train_gpu.txt").read_text()
    for name, q in (("bench_train_gpu.txt", "tf32"), ("bench_train_gpu_fp32.txt", "fp32")):  # one command line each
        lines = (out / name).read_text().splitlines()
        assert lines[0].startswith("$ OMP_NUM_THREADS=1 python benchmarks/bench_train.py --device cpu")
        assert lines[0].endswith(f"--precision {q}") and sum(line.startswith("$ ") for line in lines) == 1
    # the calibration times a figure's three runs side by side for both data shapes
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["precision"] == "tf32" and set(cal["kinds"]) == {"cifar10", "letters-synthetic"}
    assert all(k["epoch_s"] > 0 and k["eval_s"] > 0 for k in cal["kinds"].values())
    # Figure 1's three runs, trained side by side through the papermill-executed training notebook
    runs = figures.load_figure(1, "gpu", root=results)
    assert sorted(runs) == [1, 3, 6]
    for L, run in runs.items():
        assert run.provenance["status"] == "finished" and run.provenance["precision"] == "tf32"
        assert run.params["epochs"] == 3 and run.history["epoch"].tolist() == [0, 1, 2, 3]
        assert sorted(run.provenance["trained_with"]) == sorted(f"fig1-L{k}" for k in (1, 3, 6) if k != L)
    notebook = notebooks / "gpu" / "fig1.run.ipynb"
    assert f"({figure_notebook.run_label(1, 'gpu')})=" in notebook.read_text()
    with tarfile.open(out / "figures_gpu.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("gpu/fig1.run.ipynb") for n in names)
    assert sum(n.endswith("history.csv") for n in names) == 3
    assert "== Figure 1: 3 epochs" in log and "== Figure 1 (gpu) ended with status 0" in log and "== done" in log


def test_gpu_figures_script_names_an_engine_benchmark_that_failed(tmp_path):
    """The default mode's two engine benchmarks (== 3) do not stop the job, but one that ended with another status
    than 0 (stopped by its 120 s timeout, its output cut short; here refused for an option it does not know) is
    named in the log with its status, as the levers' benchmark is. The calibration, refused for the same reason,
    then ends the job (status 1)."""
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1",
               DATA=str(fake_cifar(tmp_path / "cifar.npz")), LETTERS_DATA=str(tmp_path / "no-letters.npz"),
               BENCH_ARGS="--no-such-option", CALIB_ARGS="--no-such-option", RESULTS_ROOT=str(tmp_path / "results"),
               NOTEBOOK_ROOT=str(tmp_path / "notebooks"), OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    log = (out / "log.txt").read_text()
    for q, name in (("tf32", "bench_train_gpu.txt"), ("fp32", "bench_train_gpu_fp32.txt")):
        assert f"engine benchmark ({q}): ended with status 2: {name} holds what it printed" in log
        assert "--no-such-option" in (out / name).read_text()
    assert "lever benchmark: ended with status 2" in log
    assert log.index("engine benchmark (fp32)") < log.index("== 4. calibration")


def test_gpu_figures_script_full_mode_stops_and_resumes_on_the_cpu(tmp_path, decided):
    """FULL=1, the paper's epochs in several calls: the first call's runs stop with checkpoints (MAX_TRAIN_S=0:
    at their first metric epoch), the archive leaves the checkpoints out, and the second command, which the first
    one's log gives in full (RESUME=1, TIME_LEFT_S in place of a budget, and the first command's settings), pasted
    into a shell whose environment gives none of them, resumes them to the end, keeping the first call's executed
    notebook as a segment."""
    out, stage = tmp_path / "out", tmp_path / "stage"
    base = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1", TEST_EPOCHS="3", FULL="1",
                PRECISION="tf32", DECISION_ROOT=decided["tf32"], ALLOW_DIRTY="1", STAGE=str(stage),
                DATA=str(fake_cifar(tmp_path / "cifar.npz")),
                EXTRA_SETS="width=32 metric_every=1 lr=0.001", OMP_NUM_THREADS="1")
    for name in ("BUDGET_S", "TIME_LEFT_S", "PIECE", "RESUME"):
        base.pop(name, None)

    def call(line=None, **env):
        log = run_gpu_figures(dict(base, **env)) if line is None else run_pasted(line, out)
        with tarfile.open(out / "figures_gpu.tar.gz") as tar:
            names = tar.getnames()
        assert not any("checkpoint" in n for n in names) and sum(n.endswith("history.csv") for n in names) == 3
        return log, names

    log, names = call(MAX_TRAIN_S="0")
    assert sorted(p.name for p in out.iterdir()) == ["figures_gpu.tar.gz", "log.txt"]  # no benchmark, no calibration
    assert "resume=false, max_train_s=0" in log
    assert not any(n.startswith("logs") for n in names)  # no earlier command on this machine
    assert "stopped with a checkpoint: fig1-L1 fig1-L3 fig1-L6" in log
    first_log = (out / "log.txt").read_text()
    gpu = stage / "results" / "figures" / "gpu"
    for L in (1, 3, 6):
        run = gpu / "fig1" / f"fig1-L{L}"
        assert json.loads((run / "provenance.json").read_text())["status"] == "stopped"
        assert (run / "checkpoint.pt").is_file()
    line, given = next_command(log)
    assert {k: given[k] for k in ("OUT", "FULL", "RESUME", "FIGURES", "PRECISION", "EXTRA_SETS", "STAGE")} == \
        {"OUT": "$OUT", "FULL": "1", "RESUME": "1", "FIGURES": "1", "PRECISION": "tf32",
         "EXTRA_SETS": "width=32 metric_every=1 lr=0.001", "STAGE": str(stage)}
    # the time left as a whole machine's first command starts, less what the command ran and the way to the next
    assert 0 < int(given["TIME_LEFT_S"]) <= 900 - 120 - 30
    assert not {"PIECE", "BUDGET_S", "MAX_TRAIN_S"} & set(given)  # the whole figure; a budget from TIME_LEFT_S
    log, names = call(line)  # the runbook's second command: refused only where the stage holds no run
    assert "RESUME=1: " in log and "resuming: 1" in log and "resume=true" in log
    # the first command's log comes back in the second command's archive: nothing is copied between the two
    with tarfile.open(out / "figures_gpu.tar.gz") as tar:
        assert tar.extractfile("logs/call1-log.txt").read().decode() == first_log
    assert [n for n in names if n.startswith("logs/")] == ["logs/call1-log.txt"]  # no CUDA test report on a CPU
    assert "CUDA tests: not run again" in log and "CUDA tests: not run again" not in first_log
    assert "no run is stopped with a checkpoint" in log
    # each run's status before the command chose to resume: all three stopped by the first
    assert sorted(re.findall(r"^  (fig1-L\d): (\w+) at epoch (\d+)$", log, re.M)) == \
        [(f"fig1-L{L}", "stopped", "1") for L in (1, 3, 6)]
    # each run's own status once resumed (its segments' statuses are not counted with it)
    assert sorted(re.findall(r"^(fig1-L\d): (\w+) at epoch (\d+)$", log, re.M)) == \
        [(f"fig1-L{L}", "finished", "3") for L in (1, 3, 6)]
    runs = figures.load_figure(1, "gpu", root=stage / "results" / "figures")
    for L, run in runs.items():
        prov = run.provenance
        assert prov["status"] == "finished" and run.history["epoch"].tolist() == [0, 1, 2, 3]
        assert [(s["from_epoch"], s["to_epoch"], s["status"]) for s in prov["segments"]] == \
            [(0, 1, "stopped"), (1, 3, "finished")]
        assert not (run.path / "checkpoint.pt").exists()
    assert "results/figures/gpu/fig1/segments/fig1.segment-1.run.ipynb" in names
    assert "book/figures/gpu/fig1.run.ipynb" in names


def test_gpu_figures_script_full_mode_makes_a_figure_in_pieces_on_the_cpu(tmp_path, decided):
    """FULL=1 with PIECE: a figure made one piece of its runs at a time (a letters figure does not fit one GPU
    machine): PIECE=L1 stops and resumes its one run (by the second command its log gives, which names the piece),
    keeping its own notebook and segment; PIECE=L3-L6 makes
    the other two side by side; together they are the figure's three runs."""
    out, stage = tmp_path / "out", tmp_path / "stage"
    base = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1", TEST_EPOCHS="2", FULL="1",
                PRECISION="tf32", DECISION_ROOT=decided["tf32"], ALLOW_DIRTY="1", STAGE=str(stage),
                DATA=str(fake_cifar(tmp_path / "cifar.npz")),
                EXTRA_SETS="width=16 metric_every=1 lr=0.001", OMP_NUM_THREADS="1")

    def call(**env):
        return run_gpu_figures(dict(base, **env))

    log = call(PIECE="L1", MAX_TRAIN_S="0")
    assert "resume=false" in log
    gpu = stage / "results" / "figures" / "gpu" / "fig1"
    assert sorted(p.name for p in gpu.glob("fig1-L*")) == ["fig1-L1"] and (gpu / "fig1-L1" / "checkpoint.pt").is_file()
    line, given = next_command(log)  # the second command that the log gives names the piece
    assert (given["FIGURES"], given["PIECE"], given["PRECISION"], given["RESUME"]) == ("1", "L1", "tf32", "1")
    assert "resuming: 1" in run_pasted(line, out)
    assert "resuming: none" in call(PIECE="L3,L6")  # L3-L6 spelled as the runs it names, not as a range
    runs = figures.load_figure(1, "gpu", root=stage / "results" / "figures")
    assert sorted(runs) == [1, 3, 6]
    assert all(r.provenance["status"] == "finished" and r.history["epoch"].tolist() == [0, 1, 2] for r in runs.values())
    assert runs[1].provenance["trained_with"] == [] and runs[3].provenance["trained_with"] == ["fig1-L6"]
    assert [s["status"] for s in runs[1].provenance["segments"]] == ["stopped", "finished"]
    notebooks = stage / "book" / "figures" / "gpu"
    assert sorted(p.name for p in notebooks.iterdir()) == ["fig1.L1.run.ipynb", "fig1.L3-L6.run.ipynb"]
    assert [p.name for p in (gpu / "segments").iterdir()] == ["fig1.L1.segment-1.run.ipynb"]
    first = json.loads((notebooks / "fig1.L1.run.ipynb").read_text())["cells"][0]["source"]
    assert first.startswith("(run-fig1-gpu-L1)=\n# Figure 1, runs L = 1: GPU runs (executed notebook)\n\n")
    with tarfile.open(out / "figures_gpu.tar.gz") as tar:
        assert sum(n.endswith("history.csv") for n in tar.getnames()) == 3


@pytest.mark.parametrize("ended", ["diverged", "finished"])
def test_gpu_figures_script_full_mode_resumes_the_runs_beside_a_diverged_one(tmp_path, ended, decided):
    """FULL=1, a piece of two runs after a command that left one stopped with a checkpoint and the other diverged
    (without a checkpoint, as a diverged run is written): the next commands train only the run with a checkpoint
    (a diverged run beside it would refuse them both), list only it as the one a second command resumes, and leave
    the diverged run's folder as it is. So too for a run that finished beside one that stopped (runs of one call
    stop together, but a run may have been finished by a call of its own): runs continue together only when each
    can (nclib.runplan.plan_runs), so with it in the call the notebook would be refused."""
    out, stage = tmp_path / "out", tmp_path / "stage"
    base = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1", PIECE="L3-L6",
                TEST_EPOCHS="3", FULL="1", PRECISION="tf32", DECISION_ROOT=decided["tf32"], ALLOW_DIRTY="1",
                STAGE=str(stage),
                DATA=str(fake_cifar(tmp_path / "cifar.npz")), EXTRA_SETS="width=16 metric_every=1 lr=0.001",
                OMP_NUM_THREADS="1")
    base.pop("BUDGET_S", None)
    run_gpu_figures(dict(base, MAX_TRAIN_S="0"))  # both stop at epoch 1 with a checkpoint
    gpu = stage / "results" / "figures" / "gpu" / "fig1"
    L6 = gpu / "fig1-L6"
    prov = json.loads((L6 / "provenance.json").read_text())
    (L6 / "provenance.json").write_text(json.dumps(dict(prov, status=ended)))
    for name in ("checkpoint.pt", "checkpoint.pt.sha256"):
        (L6 / name).unlink(missing_ok=True)
    diverged = {p.name: p.read_bytes() for p in L6.iterdir()}

    def statuses(log):
        return {n: (s, int(e)) for n, s, e in re.findall(r"^(fig1-L\d): (\w+) at epoch (\d+)$", log, re.M)}

    # the second command, stopped again at its first metric epoch: L = 3 alone goes on, and alone is resumable
    log = run_gpu_figures(dict(base, TIME_LEFT_S="230", MAX_TRAIN_S="0"))
    assert statuses(log) == {"fig1-L3": ("stopped", 2), "fig1-L6": (ended, 1)}
    assert re.search(r"stopped with a checkpoint: (.*) \(", log).group(1) == "fig1-L3"
    notebook = json.loads((stage / "book" / "figures" / "gpu" / "fig1.L3-L6.run.ipynb").read_text())
    assert figure_notebook.injected_value(notebook, "L_values") == [3]
    assert notebook["cells"][0]["source"].startswith("(run-fig1-gpu-L3-L6)=\n")  # the piece's target in the book
    log = run_gpu_figures(dict(base, TIME_LEFT_S="230"))
    assert statuses(log) == {"fig1-L3": ("finished", 3), "fig1-L6": (ended, 1)}
    assert [s["status"] for s in json.loads((gpu / "fig1-L3" / "provenance.json").read_text())["segments"]] == \
        ["stopped", "stopped", "finished"]
    assert {p.name: p.read_bytes() for p in L6.iterdir()} == diverged
    assert not list(stage.rglob("checkpoint.pt"))  # nothing a further command could resume
    assert sorted(p.name for p in (gpu / "segments").iterdir()) == ["fig1.L3-L6.segment-1.run.ipynb",
                                                                   "fig1.L3-L6.segment-2.run.ipynb"]


def test_gpu_figures_script_full_mode_keeps_a_finished_piece_and_its_notebook(tmp_path, decided):
    """FULL=1, the runbook's second command after a first that finished every run of the piece: the notebook is not
    run again (it would find the runs finished, and papermill would write over the notebook that trained them),
    the figure counts as made (status 0), and the archive holds the runs and the notebook that trained them. Both
    commands take their lever from a lever record (LEVERS_FROM), as the runbook's do."""
    out, stage = tmp_path / "out", tmp_path / "stage"
    record = lever_record(tmp_path, "tf32")  # its lever, read by the script, reaches the notebook and the run
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1", PIECE="L1", TEST_EPOCHS="2",
               FULL="1", PRECISION="tf32", DECISION_ROOT=decided["tf32"], ALLOW_DIRTY="1", STAGE=str(stage),
               DATA=str(fake_cifar(tmp_path / "cifar.npz")), EXTRA_SETS="width=16 metric_every=1 lr=0.001",
               LEVERS_FROM=str(record), OMP_NUM_THREADS="1")
    log = run_gpu_figures(env)
    assert f"levers from {record}: grouped_adam=true" in log and '"grouped_adam":true' in log
    run = stage / "results" / "figures" / "gpu" / "fig1" / "fig1-L1"
    assert json.loads((run / "params.json").read_text())["grouped_adam"] is True
    assert json.loads((run / "provenance.json").read_text())["segments"][0]["levers"]["grouped_adam"] is True
    notebook = stage / "book" / "figures" / "gpu" / "fig1.L1.run.ipynb"
    trained = notebook.read_bytes()
    assert b"start: fig1-L1" in trained  # the notebook that trained the run
    log = run_gpu_figures(env)  # status 0
    assert "resuming: none" in log and "has finished in" in log
    # no checkpoint is left, yet the CUDA tests are not run again (they ran before the first command trained)
    assert "CUDA tests: not run again" in log
    assert "== Figure 1 (gpu): parameters" not in log  # no notebook ran
    assert notebook.read_bytes() == trained
    assert not (stage / "results" / "figures" / "gpu" / "fig1" / "segments").exists()
    assert re.findall(r"^(fig1-L\d): (\w+) at epoch (\d+)$", log, re.M) == [("fig1-L1", "finished", "2")]
    with tarfile.open(out / "figures_gpu.tar.gz") as tar:
        assert tar.extractfile("book/figures/gpu/fig1.L1.run.ipynb").read() == trained
        assert sum(n.endswith("history.csv") for n in tar.getnames()) == 1
        assert "logs/call1-log.txt" in tar.getnames()


def test_gpu_figures_script_reads_the_letters_rendered_ahead(tmp_path, decided):
    """Figures 2 and 4 read the letters that scripts/gpu_letters_data.py rendered ahead (LETTERS_DATA) instead of
    rendering them in each notebook: the runs' training data are those of a fresh rendering (the same
    data_sha256), and their provenance names the file. Without the file the notebook renders them, and says so."""
    from nclib import data, letters

    counts = [3] * 20 + [4] * 6
    letters_file = letters.save_letters_synthetic(tmp_path / "letters.npz", counts=counts, seed=0)
    out, stage = tmp_path / "out", tmp_path / "stage"
    base = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="2", TEST_EPOCHS="1", FULL="1",
                PRECISION="tf32", DECISION_ROOT=decided["tf32"], ALLOW_DIRTY="1", STAGE=str(stage),
                LETTERS_DATA=str(letters_file),
                OMP_NUM_THREADS="1",
                EXTRA_SETS="width=32 depth=1 metric_every=1 lr=0.001 batch_size=16 counts="
                + json.dumps(counts).replace(" ", ""))  # width >= K = 26: NC2 of W is defined
    log = run_gpu_figures(base)
    assert f'"data_path":"{letters_file}"' in log
    fresh = data.load("letters-synthetic", counts=counts, seed=0).provenance["data_sha256"]
    runs = figures.load_figure(2, "gpu", root=stage / "results" / "figures")
    for run in runs.values():
        assert run.provenance["status"] == "finished"
        assert run.provenance["data_sha256"] == fresh and run.provenance["data"]["rendered_ahead"] == "letters.npz"
    log = run_gpu_figures(dict(base, LETTERS_DATA=str(tmp_path / "missing.npz"), PIECE="L1",
                               STAGE=str(tmp_path / "stage2")))
    assert "Figure 2: no " in log and "its notebook renders the letters" in log and '"data_path":null' in log


def test_gpu_run_figure_leaves_the_notebook_alone_when_no_run_trains(tmp_path):
    """scripts/gpu_run_figure.sh again over finished runs (results/README.md's command for the CPU-scale runs, before
    their folders are removed) reads them as they are and trains nothing: the executed notebook that trained them
    stays as it was, byte for byte and with its mode, also when the call is stopped while papermill runs, and no
    temporary file is left. Runs trained in an out_dir given by NAME=VALUE count as trained: the notebook is the
    new one. With overwrite=true the runs train again and the notebook is the new one, with the old one's mode."""
    results, notebooks, scratch = tmp_path / "results", tmp_path / "notebooks", tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, PY=sys.executable, RESULTS_ROOT=str(results), NOTEBOOK_ROOT=str(notebooks),
               OMP_NUM_THREADS="1", TMPDIR=str(scratch))
    sets = ["progress=false", "epochs=20", "metric_every=5", "width=32", "device=cpu",
            f"data_path={fake_cifar(tmp_path / 'cifar.npz')}"]
    command = ["bash", "scripts/gpu_run_figure.sh", "1", "cpu-scale", *sets]
    notebook = notebooks / "cpu-scale" / "fig1.run.ipynb"

    def run_figure(*more):
        done = subprocess.run([*command, *more], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        assert not list(scratch.glob("fig1-*"))  # no temporary file of the script left (torch keeps its own there)
        assert sorted(p.name for p in notebook.parent.iterdir()) == ["fig1.run.ipynb"]
        return done.stdout

    def folders(root=results):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    run_figure()
    trained, made = notebook.read_bytes(), folders()
    assert len([p for p in made if p.name == "history.csv"]) == 3
    notebook.chmod(0o640)  # neither a new file's mode nor a temporary file's
    said = run_figure()  # every run finished with these parameters: read, not trained
    assert "(to make the runs again: rm -r their folders" in said  # folders git does not track: no git rm
    assert notebook.read_bytes() == trained and folders() == made and notebook.stat().st_mode & 0o777 == 0o640
    def papermill_writes():  # a notebook written beside, or over, the one that trained the runs
        return notebook.read_bytes() != trained or any(
            p.stat().st_size for p in notebook.parent.iterdir() if p.name != notebook.name)

    # stopped (TERM, as `timeout` sends it, to the script and papermill) once papermill has started writing
    call = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            process_group=0)  # its own group, as `timeout` makes one
    try:
        while call.poll() is None and not papermill_writes():
            time.sleep(0.05)
        assert call.poll() is None, "the call ended before papermill wrote its notebook"
        os.killpg(call.pid, signal.SIGTERM)
        call.wait(timeout=120)
    finally:
        if call.poll() is None:
            os.killpg(call.pid, signal.SIGKILL)
    assert notebook.read_bytes() == trained and notebook.stat().st_mode & 0o777 == 0o640
    assert not list(scratch.glob("fig1-*")) and sorted(p.name for p in notebook.parent.iterdir()) == ["fig1.run.ipynb"]
    elsewhere = tmp_path / "elsewhere"  # given after the script's own out_dir, it wins: the runs train there
    run_figure(f"out_dir={elsewhere}")
    assert len([p for p in folders(elsewhere) if p.name == "history.csv"]) == 3 and folders() == made
    assert notebook.read_bytes() != trained and notebook.stat().st_mode & 0o777 == 0o640
    assert figure_notebook.injected_value(json.loads(notebook.read_text()), "out_dir") == str(elsewhere)
    trained = notebook.read_bytes()
    run_figure(f"out_dir={elsewhere}")  # finished there: read, not trained
    assert notebook.read_bytes() == trained
    run_figure("overwrite=true")
    assert notebook.read_bytes() != trained and notebook.stat().st_mode & 0o777 == 0o640
    assert figure_notebook.injected_value(json.loads(notebook.read_text()), "overwrite") is True


def test_gpu_figures_script_full_mode_refuses_a_checkout_whose_code_is_not_its_commit(tmp_path, decided):
    """Runs made from uncommitted code are never promoted (scripts/land_gpu_runs.py), so FULL mode does not start
    them: in a clone with a changed tracked file it stops before anything is trained, naming the file."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True, capture_output=True)
    for script in [*(ROOT / "scripts").glob("*.sh"), *(ROOT / "scripts").glob("*.py")]:  # the checks it makes first
        (clone / "scripts" / script.name).write_text(script.read_text())
    (clone / "CONTRIBUTING.md").write_text((clone / "CONTRIBUTING.md").read_text() + "\na change\n")
    env = dict(os.environ, OUT=str(tmp_path / "out"), PY=sys.executable, DEVICE="cpu", FULL="1", PRECISION="tf32",
               DECISION_ROOT=decided["tf32"], PIECE="L6",
               STAGE=str(tmp_path / "stage"), DATA=str(fake_cifar(tmp_path / "cifar.npz")), OMP_NUM_THREADS="1")
    env.pop("ALLOW_DIRTY", None)
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout[-2000:]
    assert "FULL mode refused" in done.stdout and "CONTRIBUTING.md" in done.stdout
    assert not (tmp_path / "stage" / "results" / "figures" / "gpu").exists()


def test_gpu_prepare_refuses_uncommitted_code_and_replaces_the_wheels(tmp_path):
    """scripts/gpu_prepare.sh makes the clean-commit check of the GPU job here, before a GPU machine is started
    (status 2, naming the file, nothing touched), leaves in .gpu/wheels only the wheels it copies, and refuses
    (status 1, before the data) wheels that do not install papermill, jupytext and ipykernel on Python 3.12 by
    themselves, naming what pip cannot resolve: here ipykernel needs pyzmq, first there only for Python 3.11, then
    for Python 3.12 tagged with a legacy manylinux name or a current one, each accepted (here it then stops at the
    data, which the fixture's shared folder lacks, after the wheels)."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True, capture_output=True)
    (clone / "scripts" / "gpu_prepare.sh").write_text((ROOT / "scripts" / "gpu_prepare.sh").read_text())
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-am", "the script under test"], check=True,
                   capture_output=True)
    shared = tmp_path / "shared"
    wheels = fake_notebook_wheels(shared / "wheels-gpu")
    fake_wheel(shared / "wheels-gpu", "ipykernel", requires=["pyzmq"])  # in place of the one without needs
    cp311 = fake_wheel(shared / "wheels-gpu", "pyzmq", "cp311-cp311-manylinux_2_17_x86_64")
    (clone / ".gpu" / "wheels").mkdir(parents=True)
    (clone / ".gpu" / "wheels" / "papermill-1-py3-none-any.whl").write_text("stale")
    env = dict(os.environ, PY=sys.executable, SHARED=str(shared), OMP_NUM_THREADS="1")
    env.pop("ALLOW_DIRTY", None)

    def prepare():
        return subprocess.run(["bash", "scripts/gpu_prepare.sh"], cwd=clone, env=env, capture_output=True, text=True,
                              timeout=300)

    (clone / "CONTRIBUTING.md").write_text((clone / "CONTRIBUTING.md").read_text() + "\na change\n")
    done = prepare()
    assert done.returncode == 2 and "CONTRIBUTING.md" in done.stderr, done.stdout + done.stderr
    assert [p.name for p in (clone / ".gpu" / "wheels").iterdir()] == ["papermill-1-py3-none-any.whl"]
    subprocess.run(git + ["checkout", "-q", "CONTRIBUTING.md"], check=True)
    done = prepare()  # clean: the wheels are copied, and refused: pyzmq is there for Python 3.11 only
    assert done.returncode == 1, done.stdout + done.stderr
    assert "on Python 3.12" in done.stderr and "pyzmq (from ipykernel)" in done.stderr
    assert "cifar10_subset.npz" not in done.stdout + done.stderr and not (clone / ".gpu" / "prepared_from").exists()
    cp311.unlink()
    # the wheels resolve, then the missing data stop it: a wheel tagged with a legacy manylinux name only, as many
    # are, resolves as one tagged manylinux_2_17 does
    for tag in ("manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_17_x86_64"):
        cp312 = fake_wheel(shared / "wheels-gpu", "pyzmq", f"cp312-cp312-{tag}")
        done = prepare()
        assert done.returncode != 0 and "cifar10_subset.npz" in done.stdout + done.stderr, done.stderr[-2000:]
        assert "install from .gpu/wheels alone on Python 3.12" in done.stdout
        assert sorted(p.name for p in (clone / ".gpu" / "wheels").iterdir()) == sorted(wheels + [cp312.name])
        cp312.unlink()


def _preparation_clone(tmp_path: pathlib.Path, *more: str):
    """A local clone of the repository with the working preparation scripts (and scripts/stability_runs.py, whose
    check they make, and ``more`` scripts) committed, and a shared folder holding one wheel and a CIFAR-10 file:
    (clone, the git command line in it, shared)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True, capture_output=True)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    for name in ("gpu_prepare.sh", *more, "gpu_data_slice.py", "gpu_letters_data.py", "stability_runs.py"):
        (clone / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-am", "the scripts under test"], check=True,
                   capture_output=True)
    shared = tmp_path / "shared"
    fake_notebook_wheels(shared / "wheels-gpu")
    (shared / "data").mkdir()
    fake_cifar(shared / "data" / "cifar10_subset.npz")
    return clone, git, shared


def test_gpu_prepare_refuses_a_copy_larger_than_the_limit(tmp_path):
    """What travels to the GPU machine (the tree, .git and .gpu/) must stay within LIMIT_MIB (64 MiB there): above
    it scripts/gpu_prepare.sh ends with status 1, naming the sizes, and leaves no .gpu/prepared_from (the one of an
    earlier preparation removed), so the GPU job refuses the .gpu/ it made."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history")
    clone, _, shared = _preparation_clone(tmp_path)
    (clone / ".gpu").mkdir()
    (clone / ".gpu" / "prepared_from").write_text("commit 0\n")  # an earlier preparation's record
    env = dict(os.environ, PY=sys.executable, PYTHONPATH=str(clone), SHARED=str(shared), LIMIT_MIB="1",
               OMP_NUM_THREADS="1")
    env.pop("ALLOW_DIRTY", None)
    done = subprocess.run(["bash", "scripts/gpu_prepare.sh"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1, (done.stdout + done.stderr)[-2000:]
    assert "of 1 MiB" in done.stdout and "within 1 MiB" in done.stderr
    assert (clone / ".gpu" / "cifar10_subset_slice.npz").is_file()  # made, then refused for its size
    assert not (clone / ".gpu" / "prepared_from").exists()


def test_gpu_prepare_refuses_runs_the_stability_pairs_can_neither_keep_nor_make_again(tmp_path):
    """scripts/gpu_prepare.sh makes the stability job's check of results/stability/ here, before a GPU machine is
    started (scripts/stability_runs.py --check-out at the job's settings, on a GPU): a run folder there that its
    pairs can neither keep nor make again (a run of other parameters, as a CPU trial leaves one; the code check
    does not see it, results/ being no code) is named, status 2, and no .gpu/prepared_from is written; moved aside,
    the preparation ends."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history")
    clone, _, shared = _preparation_clone(tmp_path)
    run = stray_run(clone / "results" / "stability")
    env = dict(os.environ, PY=sys.executable, PYTHONPATH=str(clone), SHARED=str(shared), LIMIT_MIB="100000",
               OMP_NUM_THREADS="1")
    env.pop("ALLOW_DIRTY", None)

    def prepare():
        return subprocess.run(["bash", "scripts/gpu_prepare.sh"], cwd=clone, env=env, capture_output=True, text=True,
                              timeout=600)

    done = prepare()
    assert done.returncode == 2, (done.stdout + done.stderr)[-2000:]
    assert f"refused: run folder '{run}' holds a run that ended with other parameters" in done.stdout
    assert "results/stability/ holds runs" in done.stderr and not (clone / ".gpu" / "prepared_from").exists()
    shutil.move(run, tmp_path / run.name)
    done = prepare()
    assert done.returncode == 0 and (clone / ".gpu" / "prepared_from").is_file(), (done.stdout + done.stderr)[-2000:]


def test_gpu_prepare_records_its_scripts_and_the_job_refuses_a_gpu_folder_they_did_not_make(tmp_path):
    """scripts/gpu_prepare.sh records the preparation files that made .gpu/ (the git hash-object of each working
    file as it ran: the scripts and the nclib modules whose code makes what .gpu/ holds, the job's PREPARATION);
    the GPU job reads a .gpu/ only where that record is there and equals the checkout's working files (status 2
    otherwise, naming the file changed, before anything is trained): an uncommitted edit made after the
    preparation is refused, an edit the preparation ran with is accepted once committed, a committed change to the
    library code that renders the letters is refused as a script's is, and a change to another file is no change,
    unless it changes the class counts the CIFAR-10 slice was cut for (a profile of nclib/imbalance.py): that slice
    is refused as outdated (scripts/gpu_data_slice.py --check). The check holds through a checkout reached by a
    link, too."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git history")
    clone, git, shared = _preparation_clone(tmp_path, "gpu_figures.sh")
    env = dict(os.environ, PY=sys.executable, PYTHONPATH=str(clone), SHARED=str(shared), LIMIT_MIB="100000",
               OMP_NUM_THREADS="1")
    env.pop("ALLOW_DIRTY", None)

    def prepare(**more):
        done = subprocess.run(["bash", "scripts/gpu_prepare.sh"], cwd=clone, env=dict(env, **more),
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]

    preparation = re.search(r'^PREPARATION="([^"]*)"$', (clone / "scripts" / "gpu_figures.sh").read_text(), re.M)
    names = preparation.group(1).split()
    assert {"scripts/gpu_prepare.sh", "nclib/letters.py", "nclib/data.py", "nclib/datafiles.py"} <= set(names)

    def hashes():
        found = subprocess.run(git + ["hash-object", "--", *names], check=True, capture_output=True, text=True)
        return dict(zip(names, found.stdout.split()))

    prepare()
    head = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    record = (clone / ".gpu" / "prepared_from").read_text()
    assert {p: h for h, p in (line.split() for line in record.splitlines()[1:])} == hashes()
    assert record.splitlines()[0] == f"commit {head}"
    assert _script("gpu_data_slice").stale(clone / ".gpu" / "cifar10_subset_slice.npz") is None
    out, stage = tmp_path / "out", tmp_path / "stage"
    job = dict(env, OUT=str(out), DEVICE="cpu", FIGURES="1", FULL="1", PRECISION="tf32", STAGE=str(stage),
               LEVERS_FROM=str(tmp_path / "missing.json"))  # refused for the lever record once .gpu/ is accepted
    link = tmp_path / "link"
    link.symlink_to(clone)  # the same checkout reached by a link: $PWD is the link's path there

    def refused(via=clone):
        done = subprocess.run(["bash", str(via / "scripts" / "gpu_figures.sh")], cwd=tmp_path, env=job,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and not stage.exists(), (done.stdout + done.stderr)[-2000:]
        return done.stdout

    assert "LEVERS_FROM=" in refused()  # .gpu/ accepted: made by the scripts of this very checkout
    slicer = clone / "scripts" / "gpu_data_slice.py"
    committed = slicer.read_text()
    slicer.write_text(committed + "\n# an edit made after the preparation\n")  # not committed
    for via in (clone, link):
        log = refused(via)
        assert "LEVERS_FROM=" not in log and "scripts/gpu_data_slice.py" in log
        assert "scripts/gpu_letters_data.py" not in log  # only the script that changed
    prepare(ALLOW_DIRTY="1")  # prepared with the edit, then the edit committed: .gpu/ is what the scripts make
    subprocess.run(git + ["commit", "-q", "-am", "the edit .gpu/ was prepared with"], check=True, capture_output=True)
    assert "LEVERS_FROM=" in refused() and "LEVERS_FROM=" in refused(link)
    record = (clone / ".gpu" / "prepared_from").read_text()
    (clone / ".gpu" / "prepared_from").unlink()  # as an older scripts/gpu_prepare.sh left .gpu/
    assert "LEVERS_FROM=" not in refused()
    (clone / ".gpu" / "prepared_from").write_text(f"{head}\n")  # what an older scripts/gpu_prepare.sh wrote
    assert "LEVERS_FROM=" not in refused()
    (clone / ".gpu" / "prepared_from").write_text(f"--output={tmp_path / 'written'}\n")  # never an option to git
    assert "LEVERS_FROM=" not in refused() and not (tmp_path / "written").exists()
    (clone / ".gpu" / "prepared_from").write_text(record)
    (clone / "README.md").write_text((clone / "README.md").read_text() + "\na change\n")
    subprocess.run(git + ["commit", "-q", "-am", "not a preparation script"], check=True, capture_output=True)
    assert "LEVERS_FROM=" in refused()
    slicer.write_text(committed)
    subprocess.run(git + ["commit", "-q", "-am", "a preparation script changed"], check=True, capture_output=True)
    log = refused()
    assert "LEVERS_FROM=" not in log and "scripts/gpu_data_slice.py" in log
    prepare()  # prepared again, then a profile changes in a commit: the slice's rows are not the figures' counts
    assert "LEVERS_FROM=" in refused()
    imbalance = clone / "nclib" / "imbalance.py"
    profiles = imbalance.read_text()
    assert profiles.count("(200, 2), (100, 2)]") == 1
    imbalance.write_text(profiles.replace("(200, 2), (100, 2)]", "(200, 2), (50, 2)]"))
    subprocess.run(git + ["commit", "-q", "-am", "the CIFAR-10 profile changed"], check=True, capture_output=True)
    log = refused()
    assert "LEVERS_FROM=" not in log and "is outdated" in log and "Figure 1 trains on [50, 50, 200," in log
    imbalance.write_text(profiles)  # the profile the slice was cut for, again
    subprocess.run(git + ["commit", "-q", "-am", "the profile back"], check=True, capture_output=True)
    assert "LEVERS_FROM=" in refused()
    letters = clone / "nclib" / "letters.py"
    letters.write_text(letters.read_text() + "\n# a change to the rendering\n")
    subprocess.run(git + ["commit", "-q", "-am", "the letters rendered otherwise"], check=True, capture_output=True)
    log = refused()
    assert "LEVERS_FROM=" not in log and "nclib/letters.py" in log and "scripts/gpu_data_slice.py" not in log


def test_gpu_figures_script_stability_mode_on_the_cpu(tmp_path):
    """STABILITY=1, the first GPU job: the paired precision runs (seed 0, then one extra seed while the budget
    lasts), the engine benchmark with its JSON records and the levers, two archives beside the log."""
    from nclib.figures import stability

    out, runs, bench = tmp_path / "out", tmp_path / "stability runs", tmp_path / "bench"  # a path with a space
    committed = {p.name: p.read_bytes() for p in (ROOT / "benchmarks" / "results").iterdir() if p.is_file()}
    # no BENCH_DIR: the records go to a new folder, never over the committed benchmarks/results/
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", STABILITY="1", STABILITY_SEEDS="0",
               STABILITY_EXTRA="1", BUDGET_S="900", DATA=str(fake_cifar(tmp_path / "cifar.npz")), ALLOW_DIRTY="1",
               EXTRA_SETS="width=16 epochs=10", STABILITY_OUT=str(runs),
               BENCH_ARGS="--device cpu --width 32 --steps 10 --warmup 2 --figure-epochs 1",
               ANATOMY_ARGS="--device cpu --width 32 --depth 2 --reps 2", OMP_NUM_THREADS="1")
    log = run_gpu_figures(env)
    assert sorted(p.name for p in out.iterdir()) == ["benchmarks.tar.gz", "log.txt", "stability.tar.gz"]
    made = stability.load_stability(runs, width=16, epochs=10)
    assert sorted(made) == [("fp32", 0), ("fp32", 1), ("tf32", 0), ("tf32", 1)]
    assert all(r.provenance["status"] == "finished" and r.params["epochs"] == 10 for r in made.values())
    # the measurements the FULL runs are planned from come right after the pairs, before the longer CUDA tests
    assert log.index("== 3. stability runs") < log.index("== 4. engine benchmark") < log.index("== 4b. levers") \
        < log.index("== 4c. step anatomy") < log.index("seed 1 (extra)")
    assert "decision: tf32 (no spike; seeds [0, 1]" in log
    with tarfile.open(out / "stability.tar.gz") as tar:
        assert sum(n.endswith("history.csv") for n in tar.getnames()) == 4
    with tarfile.open(out / "benchmarks.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["bench_anatomy_tf32.json", "bench_levers_tf32.json", "bench_train_gpu.json",
                                          "bench_train_gpu.txt", "bench_train_gpu_fp32.json",
                                          "bench_train_gpu_fp32.txt", "cuda_tests.txt"]
        tar.extractall(bench, filter="data")
    assert {p.name: p.read_bytes() for p in (ROOT / "benchmarks" / "results").iterdir() if p.is_file()} == committed
    assert not (runs / "bench-tmp").exists()  # the records' folder is gone once they are archived
    # so no run after the benchmarks (the extra seed) counts them among the changes to its code
    assert not any(path.startswith("benchmarks/results/") for r in made.values()
                   for path in r.provenance["git_dirty_paths"])
    record = figures.read_benchmark_record(bench / "bench_train_gpu.json")  # the fields the engine chapter reads
    assert record["precision"] == "tf32" and record["figure"] is not None
    assert figures.read_benchmark(bench / "bench_train_gpu_fp32.txt")["precision"].startswith("fp32")
    assert [line.startswith("$ ") for line in (bench / "bench_train_gpu.txt").read_text().splitlines()].count(True) == 1
    levers = json.loads((bench / "bench_levers_tf32.json").read_text())
    # each lever timed once, within the levers' seconds; the engine benchmark at bench_train.py's default rounds
    assert "plain" in levers["levers"] and levers["problem"]["repeats"] == 1
    assert json.loads((bench / "bench_train_gpu.json").read_text())["timing"]["repeats"] == 3
    anatomy = json.loads((bench / "bench_anatomy_tf32.json").read_text())
    assert sorted(anatomy["steps"]) == ["1", "3", "6"] and anatomy["backbones"]["runs"] == 3


def test_gpu_figures_script_stability_mode_without_a_decision_ends_with_status_3(tmp_path):
    """STABILITY=1 whose whole pairs decide nothing: here the stability runs' folder holds, beside the pair this job
    makes, a GPU pair whose TF32 run did not use TF32 (strict fp32 products recorded, the fp32 run's history number
    for number: nclib.figures.stability.tf32_not_engaged). The job archives the pairs for inspection, its last
    summary (== 7b) prints no decision, and it ends with status 3, not 0: the pairs are not to be landed."""
    from nclib.figures import stability

    out, pairs = tmp_path / "out", tmp_path / "pairs"
    data = fake_cifar(tmp_path / "cifar.npz")
    tiny = ["--set", f"data_path={data}", "--set", "width=16", "--set", "epochs=10"]
    assert _script("stability_runs").main(["--seeds", "0", "--out", str(pairs), "--set", "device=cpu", *tiny]) == 0
    for q in stability.PRECISIONS:  # seed 0's pair as a GPU would hand it back with TF32 not engaged
        path = pairs / stability.run_name(q, 0)
        for name, more in (("params.json", dict(device="cuda")),
                           ("provenance.json", dict(device="cuda", device_name="NVIDIA H200",
                                                    products_precision="ieee", tf32_matmul=False))):
            (path / name).write_text(json.dumps({**json.loads((path / name).read_text()), **more}))
    # device=auto, as on the GPU: the runs are read by the device their parameters name, the CPU pair's and the GPU's
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", STABILITY="1", STABILITY_SEEDS="1",
               STABILITY_EXTRA="0", BUDGET_S="900", DATA=str(data), ALLOW_DIRTY="1",
               EXTRA_SETS="width=16 epochs=10 device=auto", STABILITY_OUT=str(pairs),
               BENCH_ARGS="--device cpu --width 32 --steps 10 --warmup 2 --repeats 1 --figure-epochs 1",
               ANATOMY_ARGS="--device cpu --width 32 --depth 2 --reps 2", OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 3, (done.stdout + done.stderr)[-3000:]
    last = done.stdout[done.stdout.index("== 7b. decision"):]
    assert "no decision: on the GPU the TF32 runs of seeds [0] did not differ" in last
    assert "\ndecision: " not in last and "status 3: the whole pairs decide nothing" in last
    with tarfile.open(out / "stability.tar.gz") as tar:  # kept for inspection: seed 0's pair and this job's seed 1
        assert sorted(pathlib.Path(n).parent.name for n in tar.getnames() if n.endswith("history.csv")) == sorted(
            stability.run_name(q, s) for s in (0, 1) for q in stability.PRECISIONS)
    assert sorted(p.name for p in out.iterdir()) == ["benchmarks.tar.gz", "log.txt", "stability.tar.gz"]


def lever_record(folder: pathlib.Path, precision: str) -> pathlib.Path:
    """A lever record (benchmarks/bench_train.py --levers --json) measured at ``precision`` whose fastest lever that
    ends as the plain engine does is grouped_adam=true."""
    path = folder / f"lever_record_{precision}.json"  # not the name another case needs missing
    path.write_text(json.dumps({"precision": precision, "levers": {
        "plain": dict(epoch_ms_side_by_side=60.0, metric_ms_seen_by_training=300.0, steps_per_s=1.0),
        "grouped_adam=true": dict(epoch_ms_side_by_side=50.0, metric_ms_seen_by_training=300.0, same_as_plain=True)}}))
    return path


def stray_run(folder: pathlib.Path) -> pathlib.Path:
    """A run folder of the stability runs that ended at Figure 1's setting (the committed strict fp32 CPU run of seed
    0) in ``folder``: a run of other parameters than a CPU trial's tiny pairs, left where the pairs go."""
    from nclib.figures import stability

    return pathlib.Path(shutil.copytree(stability.RESULTS_CPU / "fig1-L6-fp32-seed0", folder / "fig1-L6-fp32-seed0"))


FAKE_H100 = """import torch
torch.cuda.is_available = lambda: True
torch.cuda.get_device_name = lambda device=None: "NVIDIA H100 80GB HBM3"
"""


NOT_NUMBERS = {"budget-unit": dict(BUDGET_S="570s"), "budget-word": dict(BUDGET_S="abc"),
               "lever-timeout": dict(LEVER_TIMEOUT_S="60s"), "reserve": dict(RESERVE_S="-5"),
               "test-epochs": dict(TEST_EPOCHS="3 epochs"), "max-train": dict(MAX_TRAIN_S="1.5"),
               "full-epochs": dict(FULL_EPOCHS="1e4"), "anatomy": dict(FULL="", STABILITY="1", ANATOMY_TIMEOUT_S="x"),
               "extra-seeds": dict(FULL="", STABILITY="1", STABILITY_EXTRA="three"),
               "pairs": dict(FULL="", STABILITY="1", PAIRS_S="3m")}
#: A PRECISION other than the two the stability runs compare, in each mode: refused before anything runs.
OTHER_PRECISIONS = {"full-bf16": dict(PRECISION="bf16"), "default-bf16": dict(FULL="", PRECISION="bf16"),
                    "stability-bf16": dict(FULL="", STABILITY="1", PRECISION="bf16"),
                    "full-ieee": dict(PRECISION="ieee")}


@pytest.mark.parametrize("case", ["piece", "stability-data", "full-data", "old-slice", "slice-counts", "check-fails",
                                  "damaged-data", "no-cuda",
                                  "no-cuda-default", "h100", "resume-fresh", "resume-default", "resume-word",
                                  "time-left",
                                  "two-budgets", "time-capped", "time-short", "time-narrow", "time-enough",
                                  "time-stability", "time-stability-capped", "short-budget",
                                  "short-budget-stability", "short-default-budget", "least-budget", "levers",
                                  "levers-precision", "full-precision", "no-decision", "other-decision",
                                  "decided-fp32", "stability-stray", "piece-fp32", "whole-figure",
                                  "no-calibration", *OTHER_PRECISIONS, *NOT_NUMBERS])
def test_gpu_figures_script_refuses_before_anything_runs(tmp_path, case, decided):
    """What would waste the GPU machine's time is refused at once, with status 2 and nothing but the log in $OUT: a
    piece that names no runs, a missing or damaged .gpu/ data file, a slice of an older form (whose runs would
    record less of their data's provenance) or one cut for other class counts than the figure's now (its runs
    would train on other rows than the full file's), a data file whose check itself fails (here numpy cannot be
    imported: told as such, not as an outdated slice), no CUDA device (every mode: the default one would otherwise spend
    minutes on benchmarks at the CPU's speed) or a GPU that is not an H200 (FULL and STABILITY modes; a fake
    torch.cuda stands in for the H100), a budget that cannot be read, a budget under RESERVE_S + 60 s in
    FULL and STABILITY modes (given, by default or from TIME_LEFT_S: the setup would be paid and nothing trained), a
    lever record that is missing, FULL mode without PRECISION (the stability job's decision: a default is none), a
    PRECISION in any mode other than tf32 or fp32 (the two that the stability runs compare; bf16 is never a figure
    run's), FULL mode where no committed stability pair decides a precision, or where they decide another than
    PRECISION (scripts/land_gpu_runs.py would land none of its runs; the precision they decide passes, refused
    next for the device), a STABILITY job whose runs' folder holds a run that ended with other parameters than its
    pairs' (a CPU trial left there: its seed's pair would fail, RunExists, after the machine started), a FULL piece
    that cannot finish in one machine's two commands at its precision (L6 in strict fp32; the whole figure) at the
    committed job's speed, or where no committed calibration plans it (L6 with TF32 and L1 in strict fp32 pass),
    RESUME=1 where the stage holds no run of the piece (a second command on a fresh machine) or outside FULL mode,
    a number of seconds, epochs or seeds that is not a whole number (BUDGET_S=570s would otherwise stop the job
    after its install and CUDA tests, BUDGET_S=abc would be read as 0)."""
    out, stage = tmp_path / "out", tmp_path / "stage"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", FIGURES="1", FULL="1", PRECISION="tf32",
               DECISION_ROOT=decided["tf32"], PIECE="L6",  # a piece that fits one machine at TF32
               ALLOW_DIRTY="1", STAGE=str(stage), DATA=str(fake_cifar(tmp_path / "cifar.npz")), OMP_NUM_THREADS="1")
    env.pop("BUDGET_S", None)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(FAKE_H100)
    broken = tmp_path / "broken" / "numpy"  # a numpy that cannot be imported, first on the path
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no numpy here')\n")
    env.update({"piece": dict(PIECE="L1-L2"),
                "stability-data": dict(FULL="", STABILITY="1", DATA=str(tmp_path / "no" / "slice.npz")),
                "full-data": dict(DATA=str(tmp_path / "no" / "slice.npz")),
                "old-slice": dict(DATA=str(older_slice(tmp_path / "old-slice.npz"))),
                "slice-counts": dict(DATA=str(slice_of_other_counts(tmp_path / "cifar.npz", tmp_path / "counts.npz"))),
                # no PIECE: the check of the piece, which imports numpy too, would refuse it first
                "check-fails": dict(PYTHONPATH=f"{broken.parent}{os.pathsep}{env.get('PYTHONPATH', '')}", PIECE=""),
                "damaged-data": dict(DATA=str(cut_short(tmp_path / "cifar.npz", tmp_path / "cut.npz"))),
                "no-cuda": dict(DEVICE="auto"),
                "no-cuda-default": dict(FULL="", DEVICE="auto"),  # the default mode, any GPU model accepted
                # a second command on a fresh machine: the stage holds no run of the piece, which would start over
                "resume-fresh": dict(RESUME="1", PIECE="L6"),
                "resume-default": dict(FULL="", RESUME="1"), "resume-word": dict(RESUME="yes"),
                "h100": dict(DEVICE="auto", PYTHONPATH=f"{fake}{os.pathsep}{env.get('PYTHONPATH', '')}"),
                "time-left": dict(TIME_LEFT_S="7 minutes"),
                "two-budgets": dict(TIME_LEFT_S="600", BUDGET_S="500"),
                # the time left less 40 s, at most 570, read in base 10 (0700 is not octal 448), leaves no more than
                # the seconds kept after training (0600 is not octal 384 either): nothing could train
                "time-capped": dict(TIME_LEFT_S="0700", RESERVE_S="0600"),
                "time-short": dict(TIME_LEFT_S="0100", RESERVE_S="60"),
                # BUDGET_S = 70 s: 10 s more than the reserve, but the setup alone takes longer (max_train_s < 0)
                "time-narrow": dict(TIME_LEFT_S="110", RESERVE_S="60"),
                # BUDGET_S = 120 s = RESERVE_S + 60, the least accepted; the missing lever record is refused next
                "time-enough": dict(TIME_LEFT_S="160", RESERVE_S="60", LEVERS_FROM=str(tmp_path / "missing.json")),
                # a STABILITY command given the time left (a first command on a machine with less than its full
                # time): its budget taken from it, at most 560 s; refused next for the device (no CUDA here)
                "time-stability": dict(FULL="", STABILITY="1", TIME_LEFT_S="160", DEVICE="auto"),
                "time-stability-capped": dict(FULL="", STABILITY="1", TIME_LEFT_S="900", DEVICE="auto"),
                # a BUDGET_S given by hand is held to the same floor as one from TIME_LEFT_S, in both modes
                "short-budget": dict(BUDGET_S="60", RESERVE_S="1000"),
                "short-budget-stability": dict(FULL="", STABILITY="1", BUDGET_S="119"),
                "short-default-budget": dict(RESERVE_S="471"),  # the default 530 s, 1 s under 471 + 60
                # BUDGET_S = RESERVE_S + 60, the least accepted: refused next for the missing lever record
                "least-budget": dict(BUDGET_S="120", LEVERS_FROM=str(tmp_path / "missing.json")),
                "levers": dict(LEVERS_FROM=str(tmp_path / "bench_levers_tf32.json")),
                # a lever record measured with TF32 products, for runs in strict fp32
                "levers-precision": dict(PRECISION="fp32", LEVERS_FROM=str(lever_record(tmp_path, "tf32"))),
                # FULL mode without PRECISION: the default tf32 is not the stability job's decision
                "full-precision": dict(PRECISION=""),
                # FULL mode before any stability pair is committed, or in another precision than the pairs decide
                "no-decision": dict(DECISION_ROOT=str(tmp_path)),
                "other-decision": dict(PRECISION="fp32"),
                "decided-fp32": dict(PRECISION="fp32", DECISION_ROOT=decided["fp32"], DEVICE="auto", PIECE="L1"),
                # pieces that one machine's two commands cannot finish, or that nothing committed plans
                "piece-fp32": dict(PRECISION="fp32", DECISION_ROOT=decided["fp32"]),
                "whole-figure": dict(PIECE=""),
                "no-calibration": dict(PLAN_FROM=str(tmp_path / "no-job")),
                "stability-stray": dict(FULL="", STABILITY="1", STABILITY_OUT=str(stray_run(tmp_path / "pairs").parent),
                                        EXTRA_SETS="width=16 epochs=10"),
                **OTHER_PRECISIONS, **NOT_NUMBERS}[case])
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, (done.stdout + done.stderr)[-2000:]
    assert [p.name for p in out.iterdir()] == ["log.txt"] and not stage.exists()
    assert "== 1. install" not in done.stdout
    if case == "h100":
        assert "NVIDIA H100" in done.stdout
    if case.startswith("resume-"):
        assert {"resume-fresh": "holds no run of L6 of Figure(s) 1", "resume-default": "RESUME='1' FULL=''",
                "resume-word": "RESUME='yes'"}[case] in done.stdout
    if case.startswith("no-cuda"):
        assert "torch sees no CUDA device" in done.stdout
        assert ("default mode refused" in done.stdout) == (case == "no-cuda-default")
    if case == "levers-precision":
        assert "measured at precision 'tf32', the runs train at precision 'fp32'" in done.stdout
    assert ("FULL mode needs PRECISION" in done.stdout) == (case == "full-precision")
    assert ("PRECISION must be tf32 or fp32" in done.stdout) == (case in OTHER_PRECISIONS)
    assert ("FULL mode trains in the precision" in done.stdout) == (case in ("no-decision", "other-decision"))
    if case == "no-decision":
        assert f"no stability pair is committed in '{tmp_path / 'results' / 'stability'}'" in done.stdout
    if case == "other-decision":
        assert "precision 'fp32' is not the tf32 that the committed stability pairs decide" in done.stdout
    assert ("STABILITY mode needs a stability runs' folder" in done.stdout) == (case == "stability-stray")
    if case == "stability-stray":  # named, with the parameter that differs
        assert f"run folder '{tmp_path / 'pairs' / 'fig1-L6-fp32-seed0'}' holds a run that ended" in done.stdout
        assert "width = 2048, now 16" in done.stdout
    assert ("FULL mode starts a piece only where" in done.stdout) == (case in ("piece-fp32", "whole-figure",
                                                                              "no-calibration"))
    if case in ("piece-fp32", "whole-figure"):  # the piece and its predicted seconds against the two commands'
        plan, _ = slow_end_plan(530)  # the default BUDGET_S on a whole machine
        assert re.search(rf"Figure 1, L(6|1-L3-L6) at (fp32|tf32): \d+ s, more than {plan} s", done.stdout)
    if case == "no-calibration":
        assert f"no calibration in '{tmp_path / 'no-job' / 'calibration.json'}'" in done.stdout
    if case == "decided-fp32":  # the decision and the piece (L1 in strict fp32) accepted, refused for the device
        assert "FULL mode refused" in done.stdout and "torch sees no CUDA device" in done.stdout
    if case == "stability-data":
        assert str(tmp_path / "no" / "slice.npz") in done.stdout
    if case == "old-slice":  # the member the current form has and the older one lacks
        assert "old-slice.npz" in done.stdout and "slice_format" in done.stdout
    if case in ("old-slice", "slice-counts"):
        assert "is outdated" in done.stdout and "could not be checked" not in done.stdout
    if case == "slice-counts":  # the counts it was cut for against the figure's now
        assert "counts.npz holds the rows per class" in done.stdout and "Figure 1 trains on" in done.stdout
    if case == "check-fails":  # the check's own failure, not a slice to be made again
        assert "no numpy here" in done.stdout and "could not be checked" in done.stdout
        assert "outdated" not in done.stdout and "older form" not in done.stdout
    if case == "damaged-data":  # told by the check itself (DamagedFileError: the file and its sha256), no traceback
        from nclib.datafiles import sha256_file

        assert sha256_file(tmp_path / "cut.npz") in done.stdout and "Traceback" not in done.stdout
    if case in NOT_NUMBERS:  # refused for the number, named, before the data or the device are looked at
        name, value = next((k, v) for k, v in NOT_NUMBERS[case].items() if k not in ("FULL", "STABILITY"))
        assert f"{name}='{value}'" in done.stdout
    if case.startswith("time-"):
        assert {"time-left": "7 minutes", "time-capped": "leaves BUDGET_S=570 s", "time-short": "leaves BUDGET_S=60 s",
                "time-narrow": "leaves BUDGET_S=70 s", "time-enough": "BUDGET_S=120: the 160 s left",
                "time-stability": "BUDGET_S=120: the 160 s left",
                "time-stability-capped": "BUDGET_S=560: the 900 s left"}[case] in done.stdout
        assert ("LEVERS_FROM=" in done.stdout) == (case == "time-enough")  # refused for the lever record, not the time
        # refused for the device, not the time
        assert ("STABILITY mode refused" in done.stdout) == case.startswith("time-stability")
    if case.endswith("-budget") or case.startswith("short-budget"):
        refused_for = {"short-budget": "BUDGET_S=60 ", "short-budget-stability": "BUDGET_S=119 ",
                       "short-default-budget": "BUDGET_S=530 ", "least-budget": "LEVERS_FROM="}[case]
        assert refused_for in done.stdout
        assert ("LEVERS_FROM=" in done.stdout) == (case == "least-budget")  # refused for the lever record only


def slow_end_plan(budget_s: int, left: int = 900 - 120) -> tuple[int, int]:
    """FULL mode's seconds of notebooks for a piece whose first command has ``budget_s`` and starts with ``left`` s
    left on the machine (a whole machine's 900 s less the slowest start, 120 s, unless TIME_LEFT_S says), at the slow
    end of scripts/README.md's times ("Why three pieces"), and the notebooks they come in: the first command trains
    its BUDGET_S less 55 s of setup and RESERVE_S (60 s); a second starts 30 s after the first's BUDGET_S with the
    rest, its BUDGET_S that less 40 s (at most 570), and trains that less 22 s of setup and RESERVE_S, where its
    BUDGET_S is RESERVE_S + 60 s or more (else it is refused, and the first command trains alone)."""
    first, second = budget_s - 55 - 60, min(left - budget_s - 30 - 40, 570)
    return (first + second - 22 - 60, 2) if second >= 60 + 60 else (first, 1)


@pytest.mark.parametrize("given, piece, precision, admitted", [
    (dict(BUDGET_S="570"), "L6", "tf32", True),  # the runbook's first command on a whole machine
    (dict(BUDGET_S="570"), "L1-L3", "tf32", False),  # it fits the high end of the two commands (610 s) only
    (dict(BUDGET_S="570"), "L3", "fp32", False),  # likewise
    (dict(TIME_LEFT_S="630"), "L6", "tf32", True),  # no second command after it: the first alone, one notebook
    (dict(TIME_LEFT_S="200"), "L6", "tf32", False)])  # a shortened first command: about 45 s of training
def test_gpu_figures_script_plans_a_piece_against_the_time_the_machine_has_left(tmp_path, decided, given, piece,
                                                                                 precision, admitted):
    """A FULL piece's first command plans the piece against what the machine's commands leave its notebooks at the
    slow end of the runbook's times (:func:`slow_end_plan`), from TIME_LEFT_S where given: a first command given
    the 200 s a machine has left refuses L6 (status 2, naming the piece's seconds against the plan's), where it
    used to plan against both commands' 610 s and train about 50 s of a piece that would be lost with the machine;
    on a whole machine the pieces scripts/README.md lists pass (refused next for the device: no CUDA here), and
    those that fit only the high end are refused. The piece's seconds count as many notebooks as the plan has."""
    out, stage = tmp_path / "out", tmp_path / "stage"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="auto", FIGURES="1", FULL="1", PIECE=piece,
               PRECISION=precision, DECISION_ROOT=decided[precision], ALLOW_DIRTY="1", STAGE=str(stage),
               DATA=str(fake_cifar(tmp_path / "cifar.npz")), OMP_NUM_THREADS="1")
    for name in ("BUDGET_S", "TIME_LEFT_S", "LEVERS_FROM", "TEST_EPOCHS", "FULL_EPOCHS", "RESERVE_S"):
        env.pop(name, None)
    env.update(given)
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, (done.stdout + done.stderr)[-2000:]
    assert [p.name for p in out.iterdir()] == ["log.txt"] and not stage.exists()
    if "TIME_LEFT_S" in given:
        left = int(given["TIME_LEFT_S"])
        plan, starts = slow_end_plan(min(left - 40, 570), left)
    else:
        plan, starts = slow_end_plan(int(given["BUDGET_S"]))
    said = re.search(rf"^Figure 1, {piece} at {precision}: (\d+) s, (within|more than) (\d+) s of one machine$",
                     done.stdout, re.M)
    assert said and int(said.group(3)) == plan and (said.group(2) == "within") == admitted
    gpu_budget = _script("gpu_budget")
    job = ROOT / "results" / "figures" / "gpu" / "logs" / "call1"
    cal = json.loads((job / "calibration.json").read_text())
    slower, apart = gpu_budget.precision_speeds(job / "calibration.json", precision, cal["precision"])
    want = figures.piece_seconds(cal, 1, gpu_budget.piece_of(piece), slower=slower, apart_ratio=apart, starts=starts)
    assert said.group(1) == f"{want:.0f}"
    assert ("FULL mode starts a piece only where" in done.stdout) == (not admitted)
    assert ("torch sees no CUDA device" in done.stdout) == admitted  # a piece that fits is refused next, for the device


def test_gpu_figures_script_refuses_a_python_pip_cannot_install_into(tmp_path):
    """Where papermill is missing and pip installs nothing into PY (here a stand-in whose pip says what a Python that
    its distribution manages says, PEP 668), the job ends at its install with status 2, saying what to do, and with
    nothing but its log made: before, pip's own error was the only word, and the status 1 read as a job that ran."""
    out = tmp_path / "out"
    broken = tmp_path / "broken" / "papermill"  # a papermill that cannot be imported, first on the path
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no papermill here')\n")
    python = tmp_path / "python"
    python.write_text(f'#!/bin/bash\nif [ "$1 $2" = "-m pip" ]; then echo "error: externally-managed-environment" >&2; '
                      f'exit 1; fi\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    env = dict(os.environ, OUT=str(out), PY=str(python), DEVICE="cpu", FIGURES="1", OMP_NUM_THREADS="1",
               DATA=str(fake_cifar(tmp_path / "cifar.npz")), RESULTS_ROOT=str(tmp_path / "results"),
               PYTHONPATH=f"{broken.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, (done.stdout + done.stderr)[-2000:]
    assert "externally-managed-environment" in done.stdout and "pip could not install" in done.stdout
    assert [p.name for p in out.iterdir()] == ["log.txt"] and not (tmp_path / "results").exists()
    assert "== 2. versions" not in done.stdout


def test_check_device_accepts_only_the_expected_gpu(monkeypatch):
    import torch

    budget = _script("gpu_budget")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device"):
        budget.check_device("auto", "H200")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert budget.check_device("auto", "H200") == budget.check_device("cuda:0", "h200") == "NVIDIA H200"
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    with pytest.raises(ValueError, match="not an H200"):
        budget.check_device("auto", "H200")
    assert budget.check_device("auto", "") == "NVIDIA H100 80GB HBM3"  # EXPECT_GPU= accepts any GPU
    with pytest.raises(ValueError, match="device must be"):
        budget.check_device("cpu", "H200")
    with pytest.raises(SystemExit) as exc:
        budget.main(["device", "--device", "auto"])
    assert exc.value.code == 2


def test_gpu_figures_script_fails_when_nothing_was_made(tmp_path, decided):
    """A job that makes nothing ends with status 1, not 0: FULL mode whose figure's notebook fails (here its
    parameters are refused, lr < 0), after the archive, its runs not made. (STABILITY mode whose budget leaves no
    pair whole: test_gpu_figures_script_stability_pairs_leave_time_for_the_measurements; a budget too short for
    any training is refused before the setup, test_gpu_figures_script_refuses_before_anything_runs.)"""
    out, stage = tmp_path / "out", tmp_path / "stage"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", ALLOW_DIRTY="1", FULL="1", PRECISION="tf32",
               DECISION_ROOT=decided["tf32"],
               FIGURES="1", STAGE=str(stage), DATA=str(fake_cifar(tmp_path / "cifar.npz")), TEST_EPOCHS="2",
               EXTRA_SETS="width=16 lr=-1", OMP_NUM_THREADS="1")
    env.pop("BUDGET_S", None)
    full = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert full.returncode == 1, full.stdout[-2000:]
    assert "== Figure 1 (FULL)" in full.stdout and (out / "log.txt").is_file()
    assert not list(stage.rglob("params.json")) and not list(stage.rglob("*.run.ipynb"))


def test_gpu_figures_script_stability_pairs_leave_time_for_the_measurements(tmp_path):
    """STABILITY=1: the pairs (== 3) get what the budget leaves less MEASURE_S, kept for the benchmark and the levers
    that the FULL runs are planned from, from what lies beyond PAIRS_S; where that leaves them too little (here
    PAIRS_S=0 and MEASURE_S over the budget), no pair starts and the measurements are still made (status 1: no
    pair)."""
    out, pairs = tmp_path / "out", tmp_path / "pairs"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", STABILITY="1", STABILITY_SEEDS="0",
               STABILITY_EXTRA="0", BUDGET_S="400", MEASURE_S="400", PAIRS_S="0",
               DATA=str(fake_cifar(tmp_path / "cifar.npz")),
               ALLOW_DIRTY="1", EXTRA_SETS="width=16 epochs=10", STABILITY_OUT=str(pairs),
               BENCH_ARGS="--device cpu --width 32 --steps 10 --warmup 2 --repeats 1 --figure-epochs 1",
               ANATOMY_ARGS="--device cpu --width 32 --depth 2 --reps 2", OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    assert not (out / "stability.tar.gz").exists() and not list(pairs.glob("fig1-L6-*"))
    with tarfile.open(out / "benchmarks.tar.gz") as tar:
        assert {"bench_train_gpu.json", "bench_train_gpu_fp32.json", "bench_levers_tf32.json"} <= set(tar.getnames())


@pytest.mark.parametrize("time_left, pairs_s", [(220, None), (300, 170)])
def test_gpu_figures_script_stability_pairs_come_first_on_a_short_budget(tmp_path, time_left, pairs_s):
    """STABILITY=1 with little GPU time left (TIME_LEFT_S, after an H100 refused or a start that failed): the pairs,
    the question the job answers, get the budget first. MEASURE_S (150 s) is kept for the measurements only from
    what lies beyond PAIRS_S (170 s), so the pairs are made at == 3: with TIME_LEFT_S=220 (BUDGET_S=180) they get
    all the budget leaves, where before they were skipped and made only in == 6; with 300 (BUDGET_S=260), PAIRS_S
    and the rest to the measurements. The first CUDA tests, under 150 s + PAIRS_S, go after the pairs (== 5)."""
    out, pairs = tmp_path / "out", tmp_path / "pairs"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", STABILITY="1", STABILITY_SEEDS="0",
               STABILITY_EXTRA="0", TIME_LEFT_S=str(time_left), DATA=str(fake_cifar(tmp_path / "cifar.npz")),
               ALLOW_DIRTY="1", EXTRA_SETS="width=16 epochs=10", STABILITY_OUT=str(pairs),
               BENCH_ARGS="--device cpu --width 32 --steps 10 --warmup 2 --repeats 1 --figure-epochs 1",
               ANATOMY_ARGS="--device cpu --width 32 --depth 2 --reps 2", OMP_NUM_THREADS="1")
    for name in ("BUDGET_S", "MEASURE_S", "PAIRS_S"):
        env.pop(name, None)
    log = run_gpu_figures(env)
    assert "CUDA tests of the default step path: after the pairs, in == 5" in log
    step3, step4 = log.index("== 3. stability runs"), log.index("== 4. engine benchmark")
    given, kept = map(int, re.search(r"stability runs: (\d+) s, (\d+) s kept", log[step3:step4]).groups())
    if pairs_s is None:
        assert kept == 0 and given > 20
    else:
        assert given == pairs_s and 0 < kept < 150
    assert "stability.tar.gz: 2 runs of whole pairs" in log[step3:step4]
    with tarfile.open(out / "stability.tar.gz") as tar:
        assert sum(n.endswith("history.csv") for n in tar.getnames()) == 2


# the tests each CUDA test selection of scripts/gpu_figures.sh is meant to collect (by function: the parameters may
# grow), by mode and step; a test renamed out of its selection would otherwise silently stop running on the GPU
CUDA_SELECTIONS = {
    ("default", "2"): {
        "test_cuda_graph_matches_eager_steps_and_follows_the_schedule", "test_cuda_graph_run",
        "test_cuda_runs_trained_together_on_streams_equal_runs_trained_alone",
        "test_cuda_paper_width_runs_together_equal_runs_alone",
        "test_cuda_fp32_and_tf32_runs_together_equal_runs_alone",
        "test_a_run_resumes_with_another_cuda_graph_setting", "test_cuda_a_stopped_run_resumes_exactly",
        "test_cuda_a_run_resumes_with_and_without_graphs_exactly",
        "test_a_resume_takes_cuda_and_the_current_cuda_index_for_one_card"},
    ("full", "2"): {
        "test_a_run_resumes_with_another_cuda_graph_setting", "test_cuda_a_stopped_run_resumes_exactly",
        "test_cuda_a_run_resumes_with_and_without_graphs_exactly"},
    ("stability", "2a"): {
        "test_matmul_precision_sets_tf32_on_cuda_strict_fp32_on_the_cpu_and_restores_them",
        "test_cuda_graph_replays_the_eager_steps_and_reads_the_tensor_rate",
        "test_cuda_graph_matches_eager_steps_and_follows_the_schedule",
        "test_cuda_fp32_and_tf32_runs_together_equal_runs_alone"},
    ("stability", "5"): {
        "test_cuda_graph_run", "test_cuda_runs_trained_together_on_streams_equal_runs_trained_alone",
        "test_cuda_paper_width_runs_together_equal_runs_alone", "test_a_run_resumes_with_another_cuda_graph_setting",
        "test_cuda_a_stopped_run_resumes_exactly", "test_cuda_a_run_resumes_with_and_without_graphs_exactly",
        "test_a_resume_takes_cuda_and_the_current_cuda_index_for_one_card",
        "test_cuda_levers_equal_the_plain_engine_bit_for_bit", "test_cuda_grouped_adam_across_a_stop_and_resume",
        "test_cuda_a_grouped_run_resumed_alone_is_still_captured",
        "test_cuda_paper_width_levers_equal_the_plain_engine",
        "test_cuda_paper_width_deferred_rows_equal_the_plain_rows"},
}


def test_gpu_figures_script_cuda_test_selections_collect_their_tests():
    """Every CPU test of the script sets DEVICE=cpu, which skips its CUDA-only tests: here each selection, the files
    and the -k expression as the script itself lists them (LIST_CUDA_TESTS=1, nothing run), is collected by pytest on
    the CPU and selects the tests it is meant to (an empty selection would end pytest with status 5 on the GPU,
    reported only as tests not all passed). In STABILITY mode, the two steps' selections do not overlap."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OUT", "FULL", "STABILITY", "CUDA_TESTS", "CUDA_FIRST", "DEVICE")}
    found = {}
    for mode, more in {"default": {}, "full": {"FULL": "1"}, "stability": {"STABILITY": "1"}}.items():
        listed = subprocess.run(["bash", "scripts/gpu_figures.sh"], cwd=ROOT,
                                env=dict(env, LIST_CUDA_TESTS="1", **more), capture_output=True, text=True,
                                timeout=60, check=True).stdout
        for line in listed.splitlines():
            step, files, k = line.split("\t")
            collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                                        "-p", "no:cacheprovider", *files.split(), "-k", k], cwd=ROOT, env=env,
                                       capture_output=True, text=True, timeout=300)
            assert collected.returncode == 0, collected.stdout[-2000:]  # 5: the selection matched no test
            ids = [i for i in collected.stdout.splitlines() if "::" in i]
            assert ids and all(i.split("::")[0] in files.split() for i in ids)
            found[mode, step] = ids
    assert {key: {i.split("::")[1].split("[")[0] for i in ids} for key, ids in found.items()} == CUDA_SELECTIONS
    assert not set(found["stability", "2a"]) & set(found["stability", "5"])


def test_gpu_figures_script_cuda_tests_reports_each_outcome_and_goes_on(tmp_path):
    """The script's CUDA-test runner (cuda_tests, with status_text), taken from the script as written and run with a
    stand-in for PY (every CPU test of the whole script sets DEVICE=cpu and so never calls it): pytest's status 0 is
    silent, 1 is reported as tests not all passed, 5 as a selection that matched no test, and a run stopped at the
    cap as status 124 with the cap; each call's command and output are appended to cuda_tests.txt. In STABILITY
    mode, once the measurements' folder is there, the report goes into benchmarks.tar.gz at once (as the CUDA tests
    after the measurements run, == 5): a job that the machine's time limit stops later (== 6) keeps it there, in
    the archive that is landed; in the other modes no archive is written."""
    text = (ROOT / "scripts" / "gpu_figures.sh").read_text()
    assert re.search(r"^set -uo pipefail$", text, re.M)  # the runner reads pytest's status through tee
    functions = [re.search(r"^status_text\(\) \{.*\}$", text, re.M).group(0),
                 *(re.search(rf"^{name}\(\) \{{\n.*?\n\}}$", text, re.M | re.S).group(0)
                   for name in ("cuda_tests", "archive_benchmarks"))]
    stub = tmp_path / "python"
    stub.write_text('#!/bin/bash\necho "stand-in for pytest, given: $*"\n'
                    '[ "$STATUS" = slow ] && exec sleep 30\nexit "$STATUS"\n')
    stub.chmod(0o755)
    (tmp_path / "cuda_tests.txt").write_text("an earlier report\n")
    harness = "\n".join(["set -uo pipefail", *functions,
                         'STATUS=$1 cuda_tests "$2" "graph or cuda" tests/test_a.py tests/test_b.py',
                         'echo "went on"'])
    said = {}
    for status, cap in (("0", "60"), ("1", "60"), ("5", "60"), ("slow", "1")):
        done = subprocess.run(["bash", "-c", harness, "harness", status, cap], capture_output=True, text=True,
                              env=dict(os.environ, OUT=str(tmp_path), PY=str(stub)), timeout=60)
        assert done.returncode == 0 and done.stdout.endswith("went on\n"), done.stdout + done.stderr
        assert ("$ python -m pytest -q -p no:cacheprovider tests/test_a.py tests/test_b.py -k 'graph or cuda'\n"
                "stand-in for pytest, given: -m pytest -q -p no:cacheprovider tests/test_a.py tests/test_b.py -k "
                "graph or cuda\n") in done.stdout
        said[status] = [line for line in done.stdout.splitlines() if line.startswith("CUDA tests:")]
    assert said["0"] == []
    assert len(said["1"]) == 1 and "not all passed, status 1 " in said["1"][0]
    assert len(said["5"]) == 1 and all(w in said["5"][0] for w in ("-k 'graph or cuda'", "selected no test",
                                                                     "tests/test_a.py tests/test_b.py"))
    assert len(said["slow"]) == 1 and "status 124 (stopped after 1 s)" in said["slow"][0]
    report = (tmp_path / "cuda_tests.txt").read_text()
    assert report.startswith("an earlier report\n") and report.count("$ python -m pytest") == 4
    assert not (tmp_path / "benchmarks.tar.gz").exists()  # the default and FULL modes archive no measurements
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "bench_train_gpu.json").write_text("{}")  # a measurement archived before the tests
    done = subprocess.run(["bash", "-c", harness, "harness", "1", "60"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, OUT=str(tmp_path), PY=str(stub), STABILITY="1", BENCH_DIR=str(bench)))
    assert done.returncode == 0 and done.stdout.endswith("went on\n"), done.stdout + done.stderr
    with tarfile.open(tmp_path / "benchmarks.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["bench_train_gpu.json", "cuda_tests.txt"]
        assert tar.extractfile("cuda_tests.txt").read().decode() == (tmp_path / "cuda_tests.txt").read_text()
    assert (tmp_path / "cuda_tests.txt").read_text().count("$ python -m pytest") == 5


def test_gpu_figures_script_stability_mode_keeps_the_measurements_when_stopped(tmp_path):
    """The GPU machine's time limit kills a job without warning: the benchmark records archived after each
    measurement, and the pairs archived after they were made, are in $OUT when the job is killed later (here in
    its extra seeds)."""
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PY=sys.executable, DEVICE="cpu", STABILITY="1", STABILITY_SEEDS="0",
               STABILITY_EXTRA="5", BUDGET_S="900", DATA=str(fake_cifar(tmp_path / "cifar.npz")), ALLOW_DIRTY="1",
               EXTRA_SETS="width=16 epochs=10", STABILITY_OUT=str(tmp_path / "pairs"),
               BENCH_ARGS="--device cpu --width 32 --steps 10 --warmup 2 --repeats 1 --figure-epochs 1",
               ANATOMY_ARGS="--device cpu --width 32 --depth 2 --reps 2", OMP_NUM_THREADS="1")
    job = subprocess.Popen(["bash", "scripts/gpu_figures.sh"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    try:
        for line in job.stdout:
            seen.append(line)
            if line.startswith("== 6. more seeds"):
                os.killpg(job.pid, signal.SIGKILL)
                break
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    assert any(line.startswith("== 6. more seeds") for line in seen), "".join(seen)[-2000:]
    with tarfile.open(out / "benchmarks.tar.gz") as tar:
        assert {"bench_train_gpu.json", "bench_train_gpu_fp32.json", "bench_levers_tf32.json",
                "bench_anatomy_tf32.json"} <= set(tar.getnames())
    with tarfile.open(out / "stability.tar.gz") as tar:
        assert sum(n.endswith("history.csv") for n in tar.getnames()) == 2


def test_gpu_data_slice_makes_its_destination_folder_and_keeps_the_training_data(tmp_path):
    """The fault: a destination in a folder not made yet (.gpu/ before scripts/gpu_prepare.sh) ended in a
    FileNotFoundError.  The folder is made, and the slice trains on the same data as the full file."""
    from nclib import data

    src = fake_cifar(tmp_path / "cifar.npz")
    dest = tmp_path / "not-yet" / "deeper" / "slice.npz"
    _script("gpu_data_slice").main(str(src), str(dest))
    counts = figures.figure_counts(1, "gpu")
    full, sliced = (data.load("cifar10", data_path=p, counts=counts, seed=0) for p in (src, dest))
    assert sliced.provenance["data_sha256"] == full.provenance["data_sha256"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["slice.npz"]  # no temporary file left


def test_gpu_data_slice_keeps_the_rows_it_says_and_records_its_cut(tmp_path):
    """``source_rows`` holds the rows of the source file the slice keeps, in their order, and every stability seed
    (0, 1, 2) trains on them, seed 0's, with a ``slice`` record saying so (file, seed and selection of the cut)."""
    from nclib import data
    from nclib.figures import stability

    src = fake_cifar(tmp_path / "cifar.npz")
    dest = tmp_path / "slice.npz"
    slicer = _script("gpu_data_slice")
    slicer.main(str(src), str(dest))
    with np.load(src) as full, np.load(dest) as cut:
        np.testing.assert_array_equal(full["x_train"][cut["source_rows"]], cut["x_train"])
        np.testing.assert_array_equal(full["y_train"][cut["source_rows"]], cut["y_train"])
        assert (int(cut["slice_seed"]), str(cut["slice_selection"])) == (slicer.CUT_SEED, slicer.CUT_SELECTION)
        assert str(cut["source_sha256"]) == data.sha256_file(src)
    counts = figures.figure_counts(1, "gpu")
    seed0 = data.load("cifar10", data_path=src, counts=counts, seed=0).provenance["data_sha256"]
    for seed in stability.SEEDS:
        record = data.load("cifar10", data_path=dest, counts=counts, seed=seed).provenance
        assert record["data_sha256"] == seed0 and record["seed"] == seed
        assert record["slice"] == {"source_sha256": data.sha256_file(src), "source_is_shared_subset": False,
                                   "rows": sum(counts), "seed": 0, "selection": "random"}


def test_gpu_data_slice_leaves_no_temporary_file_when_its_check_fails(tmp_path, monkeypatch):
    """The fault: the slice was written to the fixed name DEST.tmp.npz, shared by every process and left behind when
    the check of the slice failed.  Now a temporary file of this process's own, removed whatever happens."""
    from nclib import data

    src = fake_cifar(tmp_path / "cifar.npz")
    dest = tmp_path / "out" / "slice.npz"
    real = data.load

    def load(*args, **kwargs):  # the slice, read back, gives other training data than the full file
        ts = real(*args, **kwargs)
        if pathlib.Path(kwargs["data_path"]) != src:
            ts.provenance["data_sha256"] = "0" * 64
        return ts

    monkeypatch.setattr(data, "load", load)
    with pytest.raises(SystemExit, match="does not reproduce"):
        _script("gpu_data_slice").main(str(src), str(dest))
    assert list(dest.parent.iterdir()) == []


def older_slice(path: pathlib.Path) -> pathlib.Path:
    """A slice as the first form of scripts/gpu_data_slice.py wrote it: its rows and their record, without the source
    file's own members or the slice's form."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(10), 300)
    np.savez(path, x_train=rng.integers(0, 255, size=(y.size, 32, 32, 3), dtype=np.uint8), y_train=y,
             source_rows=np.arange(y.size), source_sha256=np.array("0" * 64), note=np.array("rows of a copy"))
    return path


def cut_short(path: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """The first half of the file ``path`` at ``dest``: a copy cut short on its way."""
    dest.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    return dest


def slice_of_other_counts(src: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A slice of the current form cut from ``src`` as the script cut it under another profile: for class counts
    whose last class (500 rows in Figures 1 and 3) has 50 rows fewer than the figures' now."""
    from unittest import mock

    counts = figures.figure_counts(1, "gpu")
    other = counts[:-1] + [counts[-1] - 50]
    with mock.patch.object(figures, "figure_counts", lambda fig, scale="gpu": list(other)):
        _script("gpu_data_slice").main(str(src), str(dest))
    return dest


def test_gpu_data_slice_tells_a_slice_of_an_older_form(tmp_path):
    """A slice made by an older form of the script (without the source's record members, so its runs record less
    provenance) is told from a current one, and so is a slice of the current form cut for other class counts than
    the figures that read it train on now (a profile changed since: their runs would select other rows than the
    full file's), each as outdated (its own status); a full copy, no slice, is read as it is; a file cut short or
    corrupted is told as damaged (its own status, the file named, no traceback), not as an outdated slice."""
    from nclib.datafiles import DamagedFileError

    slicer = _script("gpu_data_slice")
    src = fake_cifar(tmp_path / "cifar.npz")
    slicer.main(str(src), str(tmp_path / "slice.npz"))
    assert slicer.stale(tmp_path / "slice.npz") is None and slicer.stale(src) is None
    assert "slice_format" in slicer.stale(older_slice(tmp_path / "old.npz"))
    with np.load(tmp_path / "slice.npz") as f:  # every member of the current form, but an older slice_format
        members = dict(f)
    np.savez(tmp_path / "form1.npz", **dict(members, slice_format=np.array(1)))
    assert set(members) >= set(slicer.SLICE_MEMBERS) and "form 1" in slicer.stale(tmp_path / "form1.npz")
    assert slicer.slice_figures() == [1, 3]
    counts = figures.figure_counts(1, "gpu")
    why = slicer.stale(slice_of_other_counts(src, tmp_path / "counts.npz"))
    assert f"rows per class {counts[:-1] + [counts[-1] - 50]}," in why
    assert f"Figure 1 trains on {counts}; Figure 3 trains on {counts}" in why
    y = members["y_train"].copy()
    y[0] = len(counts)  # a row of a class the figures do not have, the counts of theirs one short
    np.savez(tmp_path / "class.npz", **dict(members, y_train=y))
    assert "and 1 of other classes" in slicer.stale(tmp_path / "class.npz")
    whole = (tmp_path / "slice.npz").read_bytes()
    damaged = bytearray(whole)
    damaged[len(whole) // 2:len(whole) // 2 + 64] = bytes(64)  # a corrupted block inside x_train
    (tmp_path / "corrupted.npz").write_bytes(bytes(damaged))
    with pytest.raises(DamagedFileError):
        slicer.stale(cut_short(tmp_path / "slice.npz", tmp_path / "cut.npz"))
    # a slice's record that the runs' load refuses, though its training arrays read and its counts are the figures':
    # source_rows not one distinct row per image, source_sha256 no sha256
    np.savez(tmp_path / "rows.npz", **dict(members, source_rows=np.zeros_like(members["source_rows"])))
    np.savez(tmp_path / "sha.npz", **dict(members, source_sha256=np.array("not a sha256")))
    for bad in ("rows.npz", "sha.npz"):
        assert slicer.stale(tmp_path / bad) is None
        with pytest.raises(ValueError, match="make the slice again"):
            slicer.loads(tmp_path / bad)
    slicer.loads(tmp_path / "slice.npz")
    for path, status in ((tmp_path / "slice.npz", 0), (tmp_path / "old.npz", slicer.OUTDATED_STATUS), (src, 0),
                         (tmp_path / "counts.npz", slicer.OUTDATED_STATUS),
                         (tmp_path / "cut.npz", slicer.DAMAGED_STATUS),
                         (tmp_path / "corrupted.npz", slicer.DAMAGED_STATUS),
                         (tmp_path / "rows.npz", slicer.DAMAGED_STATUS), (tmp_path / "sha.npz", slicer.DAMAGED_STATUS)):
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_data_slice.py"), "--check", str(path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == status, done.stderr
        assert (str(path) in done.stderr) == (status != 0) and "Traceback" not in done.stderr


def test_params_prints_the_figure_parameters_as_yaml_safe_json(capsys):
    import yaml

    assert figure_notebook.main(["params", "2", "--scale", "cpu-scale", "--set", "epochs=7", "--set", "device=cuda"]) == 0
    out = capsys.readouterr().out
    want = figures.figure_parameters(2, "cpu-scale", epochs=7, device="cuda")
    # JSON, and YAML for papermill -f: a float like 1e-5 comes back as a float, not as the string '1e-05'
    assert json.loads(out) == want and yaml.safe_load(out) == want
    assert figure_notebook.main(["params", "1", "--set", "lam_W=1e-5", "--set", "lam_H=2e-05"]) == 0
    decays = yaml.safe_load(capsys.readouterr().out)
    assert (decays["lam_W"], decays["lam_H"]) == (1e-5, 2e-5) and isinstance(decays["lam_W"], float)
    assert decays["out_dir"].endswith("results/figures/gpu/fig1") and decays["epochs"] == 12000
    odd = {"a": 1e-05, "b": -2e+20, "c": 0.001, "d": "run 1e-05", "e": [3e-07, 1.5], "f": 12, "g": None}
    assert yaml.safe_load(figure_notebook.yaml_safe_json(odd)) == json.loads(figure_notebook.yaml_safe_json(odd)) == odd
    with pytest.raises(SystemExit):
        figure_notebook.main(["params", "1", "--scale", "paper"])  # one name per scale: "gpu" or "cpu-scale"
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        figure_notebook.main(["params", "1", "--set", "epochs"])
    with pytest.raises(SystemExit, match="^params: lr must"):  # a value the engine refuses: one line, no traceback
        figure_notebook.main(["params", "1", "--set", "lr=-1"])


def _runs_sentence(md: str) -> str:
    """What a relabelled notebook's note says its runs are: its first sentence after "its runs are"."""
    note = md.split("\n\n", 1)[1]
    return note.split("; its runs are ", 1)[1].split(". It is shown with its outputs", 1)[0]


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
    figure_notebook.relabel_notebook(path, 3, "gpu")
    out = json.loads(path.read_text())
    md = out["cells"][0]["source"]
    # a short title (the neighbouring pages' links read it); what the runs are is the note's first sentence
    assert md.startswith("(run-fig3-gpu)=\n# Figure 3: GPU runs (executed notebook)\n\n")
    # no data_path: the notebook's default, the copy
    assert _runs_sentence(md) == ("GPU runs with every setting the paper states but 2,600 of its 12,000 epochs, "
                                  "bias-free, on a JPEG-decoded copy of CIFAR-10")
    # the training chapter's introduction (its smoke run, how to make runs) gives way to the note
    assert "(ch-train)=" not in md and "<ch-fig3>`" in md and "Text." not in md
    # every link carries its own text: a bare {ref}`ch-...` would print the chapter's title in the sentence
    assert re.search(r"\{ref\}`ch-[a-z0-9-]+`", md) is None
    # the link to the training chapter carries its own text (the chapter's title would read "the training
    # notebook of The training notebook")
    assert "This is {ref}`the training notebook <ch-train>` as papermill executed it for Figure 3" in md
    assert out["cells"][1:3] == nb["cells"][1:3]
    assert out["cells"][3]["metadata"]["mystnb"]["figure"] == {"caption": figure_notebook.RUN_PANELS_CAPTION,
                                                               "name": "run-fig3-gpu-fig-train-panels"}
    assert out["cells"][3]["outputs"] == [] and out["cells"][3]["source"] == "fig = 1"
    figure_notebook.relabel_notebook(path, 3, "gpu")  # idempotent
    assert json.loads(path.read_text()) == out
    path.write_text(json.dumps(dict(nb, cells=nb["cells"][1:])))
    with pytest.raises(ValueError, match="not an executed training notebook"):
        figure_notebook.relabel_notebook(path, 3, "gpu")
    with pytest.raises(ValueError, match="is not a file"):
        figure_notebook.relabel_notebook(tmp_path / "missing.ipynb", 3, "gpu")
    with pytest.raises(ValueError, match="scale must be one of"):
        figure_notebook.run_label(3, "paper")


def test_relabel_says_which_runs_the_figure_chapter_draws(tmp_path, monkeypatch):
    """A relabelled notebook's note and panels' caption say what its figure's chapter does with its runs now, as the
    committed run folders decide (nclib.figures.preferred_scale): draws them, or the other scale's runs, one
    statement each; the committed pages say it of their chapters: Figure 4's chapter draws its CPU-scale runs,
    Figures 1-3's their GPU runs."""
    cpu = json.loads((ROOT / "book" / "figures" / "cpu-scale" / "fig1.run.ipynb").read_text())
    path = tmp_path / "fig1.run.ipynb"
    said = {}
    for preferred in ("gpu", "cpu-scale"):
        monkeypatch.setattr(figure_notebook.figures, "preferred_scale", lambda fig, root=None: preferred)
        assert figure_notebook.drawn_by_chapter(1, "cpu-scale") is (preferred == "cpu-scale")
        path.write_text(json.dumps(cpu))
        figure_notebook.relabel_notebook(path, 1, "cpu-scale")
        out = json.loads(path.read_text())
        panel = next(c for c in out["cells"] if "redrawn" in c.get("metadata", {}))
        caption = panel["metadata"]["mystnb"]["figure"]["caption"]
        assert caption == figure_notebook.panels_caption("cpu-scale", True, drawn=preferred == "cpu-scale")
        said[preferred] = (out["cells"][0]["source"], caption)
    assert said["gpu"][0] != said["cpu-scale"][0] and said["gpu"][1] != said["cpu-scale"][1]
    monkeypatch.undo()
    for scale, k in [("gpu", 1), ("gpu", 2), ("gpu", 3)] + [("cpu-scale", k) for k in (1, 2, 3, 4)]:
        page = json.loads((ROOT / "book" / "figures" / scale / f"fig{k}.run.ipynb").read_text())
        drawn = figure_notebook.drawn_by_chapter(k, scale)
        assert drawn is (scale == "gpu" or k == 4), (scale, k)
        panel = next(c for c in page["cells"] if "redrawn" in c.get("metadata", {}))
        assert panel["metadata"]["mystnb"]["figure"]["caption"] == figure_notebook.panels_caption(scale, True, drawn)


def test_relabel_note_names_the_commit_the_runs_record(tmp_path):
    """The note of a relabelled notebook says its text is the training chapter's as it was when executed, naming the
    one commit that the provenance of the runs it wrote records (runs_commit); none where the runs record several,
    or a run folder has no provenance. The committed pages name the commit of their runs."""
    out_dir = tmp_path / "fig3"
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "(ch-train)=\n# The training notebook\n"},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "execution_count": 1,
         "source": f'smoke = False\nL_values = [1, 3]\nepochs = 2600\nout_dir = "{out_dir}"\nrun_tag = "fig3"\n'}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "fig3.run.ipynb"

    def note(commits):
        for L, commit in zip((1, 3), commits):
            (out_dir / f"fig3-L{L}").mkdir(parents=True, exist_ok=True)
            prov = out_dir / f"fig3-L{L}" / "provenance.json"
            prov.unlink(missing_ok=True)
            if commit is not None:
                prov.write_text(json.dumps({"git_commit": commit}))
        path.write_text(json.dumps(nb))
        figure_notebook.relabel_notebook(path, 3, "gpu")
        return figure_notebook.runs_commit(nb), json.loads(path.read_text())["cells"][0]["source"]

    one, other = "a" * 40, "b" * 40
    commit, text = note((one, one))
    assert commit == "aaaaaaa" and "`aaaaaaa`" in text
    for commits in ((one, other), (one, None), (one, "not a commit")):
        commit, text = note(commits)
        assert commit is None and "`aaaaaaa`" not in text, commits
    assert "the training chapter's own" not in text
    for scale, k in (("gpu", 2), ("cpu-scale", 4)):
        page = json.loads((ROOT / "book" / "figures" / scale / f"fig{k}.run.ipynb").read_text())
        recorded = json.loads((ROOT / "results" / "figures" / scale / f"fig{k}" / f"fig{k}-L1" / "provenance.json")
                              .read_text())["git_commit"][:7]
        assert figure_notebook.runs_commit(page) == recorded and f"`{recorded}`" in page["cells"][0]["source"]


def test_relabel_notebook_names_the_data_the_runs_were_given(tmp_path):
    """Figure 2's notebook names the stand-in when it ran on it, and EMNIST letters when papermill gave it the real
    data (dataset injected), not the figure's default."""
    def executed(injected):
        return {"cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "(ch-train)=\n# The training notebook\n"},
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": injected, "outputs": [],
             "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for injected, named, not_named in (
            ("smoke = False\nepochs = 700\n", "on letters-synthetic (a stand-in", "on EMNIST letters"),
            ("smoke = False\ndataset = \"emnist-letters\"\ndata_path = \"/data/emnist\"\n",
             "with bias, on EMNIST letters", "stand-in")):
        path = tmp_path / "fig2.run.ipynb"
        path.write_text(json.dumps(executed(injected)))
        figure_notebook.relabel_notebook(path, 2, "gpu")
        md = json.loads(path.read_text())["cells"][0]["source"]
        # the first sentence says so: the stand-in is not the paper's data at any scale; the title stays short
        assert named in _runs_sentence(md) and not_named not in md, md
        assert md.splitlines()[1] == "# Figure 2: GPU runs (executed notebook)"
    # Figure 1's notebook on the JPEG-decoded copy of CIFAR-10 (the slice the GPU runs read) says so in its title;
    # the data the runs recorded decide, where the run folders the notebook names have a params.json (papermill's
    # None is the notebook's default, the copy; an injected path is not the one the runs read when they resumed
    # runs made from another), else the injected data_path, None read as the notebook reads it
    path = tmp_path / "fig1.run.ipynb"
    out_dir = tmp_path / "fig1"
    for data_path, recorded, copy in (
            ('".gpu/cifar10_subset_slice.npz"', None, True), ('"/data/cifar-10"', None, False), ("None", None, True),
            ("None", "/work/shared/data/cifar10_subset.npz", True), ("None", "/data/cifar-10", False),
            ('".gpu/cifar10_subset_slice.npz"', "/data/cifar-10", False),
            ('"/data/cifar-10"', ".gpu/cifar10_subset_slice.npz", True)):
        shutil.rmtree(out_dir, ignore_errors=True)
        if recorded is not None:
            for L in (1, 3):
                (out_dir / f"fig1-L{L}").mkdir(parents=True)
                (out_dir / f"fig1-L{L}" / "params.json").write_text(json.dumps(
                    {"dataset": "cifar10", "data_path": recorded, "L": L}))
        path.write_text(json.dumps(executed(f'smoke = False\nepochs = 12000\ndata_path = {data_path}\n'
                                            f'L_values = [1, 3]\nout_dir = "{out_dir}"\nrun_tag = "fig1"\n')))
        figure_notebook.relabel_notebook(path, 1, "gpu")
        runs = _runs_sentence(json.loads(path.read_text())["cells"][0]["source"])
        assert runs == "GPU runs with every setting the paper states, with bias, on " + (
            "a JPEG-decoded copy of CIFAR-10" if copy else "CIFAR-10"), (data_path, recorded, runs)
    # the committed notebooks of Figures 1 and 3 read their runs' records: the GPU runs read the slice, the CPU-scale
    # runs (data_path None) the full copy; their titles say so, and relabelling them again changes nothing
    for scale in ("gpu", "cpu-scale"):
        for k in (1, 3):
            nb = json.loads((ROOT / "book" / "figures" / scale / f"fig{k}.run.ipynb").read_text())
            assert figure_notebook.data_label(nb, "cifar10") == "CIFAR-10 (JPEG-decoded copy)", (scale, k)
            copy = tmp_path / f"{scale}-fig{k}.run.ipynb"
            copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
            figure_notebook.relabel_notebook(copy, k, scale)
            assert json.loads(copy.read_text()) == nb, (scale, k)
            assert _runs_sentence(nb["cells"][0]["source"]).endswith(", on a JPEG-decoded copy of CIFAR-10")
    # a run's data record decides over its file's name, as in the legends: an .npz named like the shared subset
    # whose record says its pixels are not JPEG-decoded is "CIFAR-10 (npz)"
    out_dir = tmp_path / "recorded"
    (out_dir / "fig1-L1").mkdir(parents=True)
    (out_dir / "fig1-L1" / "params.json").write_text(json.dumps(
        {"dataset": "cifar10", "data_path": "/d/cifar10_subset.npz", "L": 1}))
    nb = executed(f'smoke = False\nepochs = 12000\ndata_path = None\nL_values = [1]\nout_dir = "{out_dir}"\n'
                  f'run_tag = "fig1"\n')
    assert figure_notebook.data_label(nb, "cifar10") == "CIFAR-10 (JPEG-decoded copy)"  # the name alone
    (out_dir / "fig1-L1" / "provenance.json").write_text(json.dumps(
        {"data": {"lossy_jpeg": False, "shared_subset": False}}))
    assert figure_notebook.data_label(nb, "cifar10") == "CIFAR-10 (npz)"
    assert figure_notebook.injected_value(executed("epochs = 700\n"), "epochs") == 700
    assert figure_notebook.injected_value(executed("epochs = 700\n"), "dataset") is None
    assert figure_notebook.run_label(2, "cpu-scale") == "run-fig2-cpu-scale"
    assert figure_notebook.run_label(2, "gpu", "L1-L3") == "run-fig2-gpu-L1-L3"
    assert figure_notebook.piece_of([3, 1]) == "L1-L3" and figure_notebook.check_piece(None) is None
    for bad in ("L2", "L3-L1", "L1-L1", "1", "L1_L3", "L1-"):
        with pytest.raises(ValueError, match="piece must name head depths"):
            figure_notebook.check_piece(bad)


def test_pieces_plans_at_the_speed_of_a_lever_record(tmp_path, capsys):
    """scripts/gpu_budget.py pieces --levers: the pieces at the speed of the record's fastest lever (the runbook's
    check whether L1-L3 fits one machine): the calibrated epochs scaled by its time per epoch against the
    calibration's; a record of another precision than the calibration's is refused."""
    budget = _script("gpu_budget")
    calibration = ROOT / "results" / "figures" / "gpu" / "logs" / "call1" / "calibration.json"
    cal = json.loads(calibration.read_text())
    epoch_ms = 1000 * cal["kinds"]["cifar10"]["epoch_s"]
    record = tmp_path / "levers.json"
    record.write_text(json.dumps({"precision": "tf32", "levers": {
        "plain": dict(epoch_ms_side_by_side=epoch_ms, metric_ms_seen_by_training=500.0, steps_per_s=1.0),
        "grouped_adam=true": dict(epoch_ms_side_by_side=0.7 * epoch_ms, metric_ms_seen_by_training=500.0,
                                  same_as_plain=True)}}))
    assert budget.lever_speed(json.loads(record.read_text()), cal) == ("grouped_adam=true", pytest.approx(0.7))
    args = ["pieces", "1", "--calibration", str(calibration), "--apart-ratio", "1.25", "--starts", "2",
            "--budget-s", "510"]

    def want(piece, slower):
        return round(figures.piece_seconds(cal, 1, piece, slower=slower, apart_ratio=1.25, starts=2))

    budget.main(args)  # at the calibrated speed L1-L3 needs more than 510 s: one run per machine
    assert capsys.readouterr().out == (f"L1 L3 L6   ({want((1,), 1)} s, {want((3,), 1)} s, {want((6,), 1)} s "
                                       f"of 510 s each)\n")
    budget.main(args + ["--levers", str(record)])
    got = capsys.readouterr()
    assert got.out == f"L1-L3 L6   ({want((1, 3), 0.7)} s, {want((6,), 0.7)} s of 510 s each)\n"
    assert "levers: grouped_adam=true" in got.err and want((1, 3), 0.7) <= 510 < want((1, 3), 1)
    record.write_text(record.read_text().replace('"tf32"', '"fp32"'))
    with pytest.raises(SystemExit, match="measured at precision 'fp32', the runs train at precision 'tf32'"):
        budget.main(args + ["--levers", str(record)])


def test_relabel_gives_the_epoch_that_stopped_runs_reached(tmp_path):
    """A FULL command's notebook whose runs max_train_s stopped before the injected epochs: its title gives the
    epoch they reached (the fewest of its runs'), read from the histories in the run folders it names, not the
    paper's epochs it was given; once they finish, the paper's settings."""
    from nclib import runs

    def history(run, last):
        run.mkdir(parents=True, exist_ok=True)
        ep = np.array([0, last // 2, last])
        table = np.column_stack([ep if c == "epoch" else np.full(3, 0.5) for c in runs.HISTORY_COLUMNS])
        np.savetxt(run / "history.csv", table, delimiter=",", header=",".join(runs.HISTORY_COLUMNS), comments="")

    out_dir = tmp_path / "fig3"
    injected = (f'smoke = False\nL_values = [1, 3]\nepochs = 12000\nout_dir = "{out_dir}"\nrun_tag = "fig3"\n'
                'data_path = "/data/cifar-10"\n')  # the original images: a title without the JPEG-decoded copy
    path = tmp_path / "fig3.L1-L3.run.ipynb"

    def said(L1, L3):
        history(out_dir / "fig3-L1", L1)
        history(out_dir / "fig3-L3", L3)
        path.write_text(json.dumps({"cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "(ch-train)=\n# The training notebook\n"},
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": injected, "outputs": [],
             "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        figure_notebook.relabel_notebook(path, 3, "gpu", "L1-L3")
        return _runs_sentence(json.loads(path.read_text())["cells"][0]["source"])

    assert said(8400, 8300).startswith("GPU runs with every setting the paper states but 8,300 of its 12,000 epochs,")
    assert said(12000, 12000).startswith("GPU runs with every setting the paper states, bias-free")
    nb = json.loads(path.read_text())
    assert figure_notebook.epochs_reached(nb) == 12000
    shutil.rmtree(out_dir / "fig3-L3")  # a run folder without its history: the injected epochs
    assert figure_notebook.epochs_reached(nb) is None


def test_choose_levers_takes_the_fastest_lever_that_ended_as_the_plain_engine(tmp_path, capsys):
    budget = _script("gpu_budget")
    record = {"levers": {
        "plain": dict(epoch_ms_side_by_side=60.0, metric_ms_seen_by_training=300.0, steps_per_s=1.0),
        "grouped_adam=true": dict(epoch_ms_side_by_side=58.0, metric_ms_seen_by_training=300.0, same_as_plain=True),
        "steps_per_graph=23": dict(epoch_ms_side_by_side=50.0, metric_ms_seen_by_training=300.0, same_as_plain=False),
        "adam_in_backward=true": {"error": "RuntimeError: capture failed"},
        "grouped_adam=true,deferred_metrics=true": dict(epoch_ms_side_by_side=58.5, metric_ms_seen_by_training=20.0,
                                                        same_as_plain=True)}}
    # per epoch with a metric epoch every 100: plain 63, grouped 61, grouped + deferred 58.7; steps_per_graph is
    # faster but did not end where the plain engine did, and the failed lever is not a candidate
    spec, ms, plain = budget.choose_levers(record)
    assert spec == "grouped_adam=true,deferred_metrics=true" and ms == pytest.approx(58.7) and plain == 63.0
    # the runs' precision, given, must be the record's: a lever bit for bit at one precision says nothing of another
    with pytest.raises(ValueError, match="measured at precision None, the runs train at precision 'tf32'"):
        budget.choose_levers(record, precision="tf32")
    assert budget.choose_levers(dict(record, precision="tf32"), precision="tf32")[0] == spec
    with pytest.raises(ValueError, match="measured at precision 'tf32', the runs train at precision 'fp32'"):
        budget.choose_levers(dict(record, precision="tf32"), precision="fp32")
    assert budget.choose_levers(record, metric_every=10**9)[0] == "grouped_adam=true"
    slow = {"levers": {"plain": record["levers"]["plain"],
                       "grouped_adam=true": dict(epoch_ms_side_by_side=70.0, same_as_plain=True)}}
    assert budget.choose_levers(slow)[0] == "plain"
    with pytest.raises(ValueError, match="no timed plain engine"):
        budget.choose_levers({"levers": {"grouped_adam=true": record["levers"]["grouped_adam=true"]}})
    path = tmp_path / "levers.json"
    path.write_text(json.dumps(record))
    budget.main(["levers", str(path)])
    out = capsys.readouterr()
    assert out.out == "grouped_adam=true deferred_metrics=true\n" and "58.70 ms per epoch" in out.err
    path.write_text(json.dumps(slow))
    budget.main(["levers", str(path)])
    assert capsys.readouterr().out == "\n"
    path.write_text(json.dumps(dict(record, precision="tf32")))
    with pytest.raises(SystemExit, match="the runs train at precision 'fp32'"):
        budget.main(["levers", str(path), "--precision", "fp32"])


def test_epochs_for_gives_the_committed_jobs_their_epochs_and_shares_the_time():
    """scripts/gpu_budget.py epochs (the default mode's budget, which every CPU test of the script replaces by
    TEST_EPOCHS): from each committed GPU command's calibration, the epochs and the seconds its log records; the
    most epochs, a multiple of 100, that the calibration predicts to fit; a figure's share of the time left, with
    what another figure does not need; all the time left where its share fits no epoch."""
    budget = _script("gpu_budget")
    logs = ROOT / "results" / "figures" / "gpu" / "logs"
    jobs = {"call1": [1, 3], "call2": [2]}  # each command's FIGURES, in priority order
    for job, order in jobs.items():
        cal = json.loads((logs / job / "calibration.json").read_text())
        log = (logs / job / "log.txt").read_text()
        for i, fig in enumerate(order):
            m = re.search(rf"^== Figure {fig}: (\d+) epochs in a budget of (\d+) s \(\d+ s elapsed, (\d+) s left\)$",
                          log, re.M)
            epochs, seconds = budget.epochs_for(cal, fig, float(m.group(3)), order[i:])
            assert (epochs, int(seconds)) == (int(m.group(1)), int(m.group(2)))
            assert epochs % 100 == 0
            assert figures.calibrated_seconds(cal, fig, epochs) <= seconds < figures.calibrated_seconds(cal, fig,
                                                                                                       epochs + 100)
    cal = json.loads((logs / "call1" / "calibration.json").read_text())
    need = {k: figures.calibrated_seconds(cal, k, 12000) for k in (1, 2)}
    # Figure 1 needs less than its 80 % of 2,000 s: it gets the paper's epochs, Figure 2 its 20 % and the rest
    assert budget.epochs_for(cal, 1, 2000.0, [1, 2]) == (12000, pytest.approx(need[1]))
    epochs, seconds = budget.epochs_for(cal, 2, 2000.0, [1, 2])
    assert seconds == pytest.approx(min(2000.0 - need[1], need[2])) and 0 < epochs < 12000
    assert figures.calibrated_seconds(cal, 2, epochs) <= seconds < figures.calibrated_seconds(cal, 2, epochs + 100)
    # 100 s: Figure 2's 20 s fit no epoch, the 100 s do
    assert figures.calibrated_seconds(cal, 2, 100) > 20
    epochs, seconds = budget.epochs_for(cal, 2, 100.0, [1, 2])
    assert seconds == 100.0 and epochs > 0
    assert figures.calibrated_seconds(cal, 2, epochs) <= 100 < figures.calibrated_seconds(cal, 2, epochs + 100)
    assert budget.epochs_for(cal, 1, 10.0, [1]) == (0, 10.0)  # nothing fits: skipped
    with pytest.raises(SystemExit, match=r"FIG 3 is not in --todo \[1, 2\]"):
        budget.epochs_for(cal, 3, 100.0, [1, 2])


def test_gpu_shim_glue_writes_what_myst_nb_glue_writes(monkeypatch):
    """scripts/gpu_shim stands in for myst_nb on the GPU machine: its glue hands IPython's display exactly what
    myst_nb's glue (the one the training notebook imports) hands it, for shown and hidden values of each kind."""
    import importlib.util

    import IPython.display
    import myst_nb
    import myst_nb.ext.glue
    import pandas as pd

    spec = importlib.util.spec_from_file_location("gpu_shim_myst_nb", ROOT / "scripts" / "gpu_shim" / "myst_nb" /
                                                  "__init__.py")
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)
    calls = []
    monkeypatch.setattr(myst_nb.ext.glue, "ipy_display", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    values = [("n", 3, True), ("x", 2.5e-05, False), ("s", "text", False), ("t", pd.DataFrame({"a": [1, 2]}), True),
              ("m", IPython.display.Math("x^2"), False)]
    for glue in (myst_nb.glue, shim.glue):
        for name, value, display in values:
            glue(name, value, display=display)
    real, stand_in = calls[:len(values)], calls[len(values):]
    assert len(stand_in) == len(values) and stand_in == real
    assert real[1][0][0] == {"application/papermill.record/text/plain": "2.5e-05"}
    assert real[1][1]["metadata"]["scrapbook"] == {"name": "x", "mime_prefix": "application/papermill.record/"}


def test_redraw_replaces_the_stored_panels_from_the_run_folders(tmp_path):
    """scripts/figure_notebook.py redraw: the stored panels of an executed notebook are drawn again from the
    committed run folders (the legend names the data, scale and epochs), the code cell as executed; notebooks whose
    label, injected depths, epochs, data set or bias case are not those of the run folders, or with no panel cell,
    are refused."""
    import base64

    committed = ROOT / "book" / "figures" / "gpu" / "fig1.run.ipynb"
    path = tmp_path / "fig1.run.ipynb"
    nb = json.loads(committed.read_text())
    panel = next(i for i, c in enumerate(nb["cells"]) if "redrawn" in c.get("metadata", {}))
    nb["cells"][panel]["outputs"] = []  # as if drawn by older code: nothing of the stored output may remain
    path.write_text(json.dumps(nb))
    figure_notebook.redraw_panels(path, 1, "gpu")
    out = json.loads(path.read_text())
    cell = out["cells"][panel]
    assert cell["source"] == nb["cells"][panel]["source"]
    assert [o["output_type"] for o in cell["outputs"]] == ["display_data"]
    assert base64.b64decode(cell["outputs"][0]["data"]["image/png"]).startswith(b"\x89PNG")
    runs = figures.load_figure(1, "gpu")
    legend = cell["metadata"]["redrawn"]["legend_title"]
    assert legend == figures.figure_legend(runs, "gpu")
    # runs cut short of the paper's epochs: the legend gives both the epochs run and the paper's full count
    run_epochs, full = {int(r.params["epochs"]) for r in runs.values()}, figures.scale_settings("gpu")["epochs"]
    assert run_epochs == {2600} and f"{2600:,}" in legend and f"{full:,}" in legend
    assert legend.endswith(" and other data")  # a JPEG-decoded copy of CIFAR-10, not the paper's data
    assert cell["metadata"]["redrawn"]["runs"] == [f"results/figures/gpu/fig1/fig1-L{L}" for L in (1, 3, 6)]
    assert cell["metadata"]["mystnb"]["figure"]["caption"].endswith(figure_notebook.REDRAWN)
    # every other cell as it was
    assert [c for i, c in enumerate(out["cells"]) if i != panel] == [c for i, c in enumerate(nb["cells"]) if i != panel]
    for i, (old, new) in enumerate((("epochs = 2600", "epochs = 2000"), ("L_values = [1, 3, 6]", "L_values = [1, 3]"))):
        other = json.loads(json.dumps(nb))
        injected = next(c for c in other["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        source = "".join(injected["source"])
        assert old in source, source
        injected["source"] = source.replace(old, new)
        path.write_text(json.dumps(other))
        with pytest.raises(ValueError, match=("made runs of 2000 epochs", r"made the runs L = \[1, 3\]")[i]):
            figure_notebook.redraw_panels(path, 1, "gpu")
    # another figure's runs of the same depths and epochs (the CPU-scale figures share both) are refused: by the
    # notebook's label, and by the data set and the bias case papermill injected
    cpu = json.loads((ROOT / "book" / "figures" / "cpu-scale" / "fig1.run.ipynb").read_text())
    path.write_text(json.dumps(cpu))
    # (each refusal checked for what it names, the label or the parameter and the value held, not for its wording)
    for k in (2, 3, 4):
        with pytest.raises(ValueError) as refused:
            figure_notebook.redraw_panels(path, k, "cpu-scale")
        assert all(w in str(refused.value) for w in ("'run-fig1-cpu-scale'", f"Figure {k}", "'cpu-scale'"))
    # Figure 3 differs from Figure 1 in its bias case alone, Figure 2 in its data set alone
    for k, name, given, held in ((3, "bias", "True", "False"), (2, "dataset", "'cifar10'", "'letters-synthetic'")):
        relabelled = json.loads(json.dumps(cpu).replace("run-fig1-cpu-scale", f"run-fig{k}-cpu-scale"))
        path.write_text(json.dumps(relabelled))
        with pytest.raises(ValueError) as refused:
            figure_notebook.redraw_panels(path, k, "cpu-scale")
        assert all(w in str(refused.value) for w in (f"Figure {k}", name, given, held)), str(refused.value)
    assert json.loads(path.read_text()) == relabelled  # refused: the notebook is left as it was
    path.write_text(json.dumps(dict(nb, cells=[c for i, c in enumerate(nb["cells"]) if i != panel])))
    with pytest.raises(ValueError, match="has 0 cells that draw the panels"):
        figure_notebook.redraw_panels(path, 1, "gpu")
    with pytest.raises(ValueError, match="is not a file"):
        figure_notebook.redraw_panels(tmp_path / "missing.ipynb", 1, "gpu")
    for command in ("redraw", "relabel"):  # the command line: the refusal on one line, status 1, no traceback
        with pytest.raises(SystemExit) as exc:
            figure_notebook.main([command, str(tmp_path / "missing.ipynb"), "1", "gpu"])
        assert str(exc.value).startswith(f"{command}: ") and "is not a file" in str(exc.value)
    assert figure_notebook.panels_caption("cpu-scale", False) == figure_notebook.RUN_PANELS_CAPTIONS["cpu-scale", True]
    assert figure_notebook.panels_caption("cpu-scale", False, drawn=False) == figure_notebook.RUN_PANELS_CAPTIONS[
        "cpu-scale", False]
    with pytest.raises(ValueError, match="scale must be one of .* got 'tiny'"):
        figure_notebook.panels_caption("tiny", True)


def _as_executed(nb: dict) -> dict:
    """A notebook as papermill left it (and relabelled): where reglued, the glue outputs its metadata records as
    executed, no record, and the note without the sentence that says it was reglued."""
    nb = json.loads(json.dumps(nb))
    cell = next((c for c in nb["cells"] if "reglued" in c.get("metadata", {})), None)
    if cell is None:
        return nb
    executed = cell["metadata"].pop("reglued")["executed"]
    for output in cell["outputs"]:
        name = output["metadata"]["scrapbook"]["name"]
        if name in executed:
            output["data"] = {"application/papermill.record/text/plain": repr(executed[name])}
    nb["cells"][0]["source"] = nb["cells"][0]["source"].replace(figure_notebook.REGLUED, "")
    return nb


def _glued(nb: dict) -> dict:
    """The values an executed notebook glued, by name, as {glue:text} reads them."""
    import ast

    return {o["metadata"]["scrapbook"]["name"]: ast.literal_eval(o["data"]["application/papermill.record/text/plain"])
            for c in nb["cells"] for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}


def test_reglue_writes_the_closing_numbers_from_the_run_folders(tmp_path):
    """scripts/figure_notebook.py reglue: the closing numbers of an executed notebook, glued in a program's formats
    (E-notation rounded to nearest for a lower bound, a fraction for an accuracy), are written again from the
    committed run folders as the book writes them; the code as executed; values the run folders do not give, other
    glue names and another figure's label are refused; the committed pages hold what it writes."""
    from nclib import rounding, runs as runs_contract

    committed = ROOT / "book" / "figures" / "gpu" / "fig2.run.ipynb"
    nb = _as_executed(json.loads(committed.read_text()))
    path = tmp_path / "fig2.run.ipynb"
    path.write_text(json.dumps(nb))
    histories = [runs_contract.load_history(ROOT / "results" / "figures" / "gpu" / "fig2" / f"fig2-L{L}")
                 for L in (1, 3, 6)]
    drop = min(h["nc1"][0] / h["nc1"][-1] for h in histories)
    executed = _glued(nb)
    # as executed, "at least" a number above the smallest fall: the run L = 6 fell by 2.27 < 2.3
    assert executed["train-min-drop"] == "2.3e+00" and float(executed["train-min-drop"]) > drop
    figure_notebook.reglue_numbers(path, 2, "gpu")
    out = json.loads(path.read_text())
    glued = _glued(out)
    # a true "at least" that reads, at three figures, as the chapter's drops table writes that run's fall (2.27)
    table = figures.drops_table(figures.load_figure(2, "gpu"))
    assert rounding.number(glued["train-min-drop"]) <= drop < 2.3 and table.loc[6, "NC1 fall"] == "2.27"
    assert rounding.reads_as(glued["train-min-drop"], table.loc[6, "NC1 fall"], 3)
    acc = min(h["train_acc"][-1] for h in histories)
    assert executed["train-final-acc"] == "0.836" and glued["train-final-acc"] == "83.6\u00a0%"
    assert abs(float(glued["train-final-acc"][:-2]) - 100 * acc) <= 0.05
    assert (executed["train-epochs"], glued["train-epochs"]) == (700, "700")
    assert {k: glued[k] for k in ("train-n-runs", "train-dataset")} == {
        k: executed[k] for k in ("train-n-runs", "train-dataset")}
    at = next(i for i, c in enumerate(out["cells"]) if "reglued" in c["metadata"])
    assert out["cells"][at]["source"] == nb["cells"][at]["source"]  # the code as executed
    assert out["cells"][at]["metadata"]["reglued"]["runs"] == [f"results/figures/gpu/fig2/fig2-L{L}" for L in (1, 3, 6)]
    assert out["cells"][0]["source"] == nb["cells"][0]["source"] + figure_notebook.REGLUED
    # only the glue cell and the note change; again, and relabelled again, nothing changes
    assert [c for i, c in enumerate(out["cells"]) if i not in (0, at)] == [
        c for i, c in enumerate(nb["cells"]) if i not in (0, at)]
    figure_notebook.reglue_numbers(path, 2, "gpu")
    figure_notebook.relabel_notebook(path, 2, "gpu")
    assert json.loads(path.read_text()) == out
    # reglued before at another rounding (two figures, 2.2): written again, as from the values executed
    older = json.loads(json.dumps(out))
    next(o for c in older["cells"] for o in c.get("outputs", []) if o.get("metadata", {}).get("scrapbook", {}).get(
        "name") == "train-min-drop")["data"] = {"application/papermill.record/text/plain": "'2.2'"}
    path.write_text(json.dumps(older))
    figure_notebook.reglue_numbers(path, 2, "gpu")
    assert json.loads(path.read_text()) == out
    # reglued before under an older wording of the note: that note gives way to the present one, not kept beside it
    worded = json.loads(json.dumps(out))
    worded["cells"][0]["source"] = nb["cells"][0]["source"] + figure_notebook.REGLUED.replace(
        " The hidden cell", " An older sentence. The hidden cell")
    path.write_text(json.dumps(worded))
    figure_notebook.reglue_numbers(path, 2, "gpu")
    assert json.loads(path.read_text()) == out
    # the committed run pages hold what it writes, a smallest fall of NC1 that reads as its run's in the drops table
    for scale, k in [("gpu", 1), ("gpu", 2), ("gpu", 3)] + [("cpu-scale", k) for k in (1, 2, 3, 4)]:
        page = ROOT / "book" / "figures" / scale / f"fig{k}.run.ipynb"
        copy = tmp_path / f"{scale}-fig{k}.run.ipynb"
        copy.write_text(json.dumps(_as_executed(json.loads(page.read_text()))))
        figure_notebook.reglue_numbers(copy, k, scale)
        assert json.loads(copy.read_text()) == json.loads(page.read_text()), (scale, k)
        runs = figures.load_figure(k, scale)
        falls = figures.metric_drops(runs)
        least = min(falls, key=lambda L: falls[L]["nc1"])
        bound = _glued(json.loads(page.read_text()))["train-min-drop"]
        assert rounding.number(bound) <= falls[least]["nc1"], (scale, k)
        cell = figures.drops_table(runs).loc[least, "NC1 fall"]
        assert rounding.reads_as(bound, cell, 3), (scale, k)
        assert ("×" in bound) == ("×" in cell), (scale, k, bound, cell)  # in its notation: 8.107 × 10⁵, not 810,700
        # and to no more figures than that takes: one fewer, rounded down, reads as another number than the cell
        # (beside 16.3, the fall 16.2549 is 16.25 to four figures, a tie that rounds to 16.2 by ties to even)
        fewer = rounding.round_down(falls[least]["nc1"], rounding.significant_figures(bound) - 1)
        assert not rounding.reads_as(fewer, cell, 3), (scale, k, bound, fewer)
    # refused, the notebook left as it was: a value its run folders do not give (also where it records values
    # as executed that they do not give), other glue names, another figure
    stale = json.loads(json.dumps(older))
    next(c for c in stale["cells"] if "reglued" in c["metadata"])["metadata"]["reglued"]["executed"][
        "train-min-drop"] = "9.9e+00"
    path.write_text(json.dumps(stale))
    with pytest.raises(ValueError, match=r"glued train-min-drop = '2.2', which its run folders do not give"):
        figure_notebook.reglue_numbers(path, 2, "gpu")
    assert json.loads(path.read_text()) == stale
    wrong = json.loads(json.dumps(nb))
    output = next(o for c in wrong["cells"] for o in c.get("outputs", [])
                  if o.get("metadata", {}).get("scrapbook", {}).get("name") == "train-min-drop")
    output["data"] = {"application/papermill.record/text/plain": "'9.9e+00'"}
    path.write_text(json.dumps(wrong))
    with pytest.raises(ValueError, match=r"glued train-min-drop = '9.9e\+00', which its run folders do not give"):
        figure_notebook.reglue_numbers(path, 2, "gpu")
    assert json.loads(path.read_text()) == wrong
    output["metadata"]["scrapbook"]["name"] = "train-nc1-ratio"
    path.write_text(json.dumps(wrong))
    with pytest.raises(ValueError, match="glues .*'train-nc1-ratio'.*, not the names"):
        figure_notebook.reglue_numbers(path, 2, "gpu")
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="is not a notebook of Figure 4 at scale 'gpu' labelled 'run-fig4-gpu'"):
        figure_notebook.reglue_numbers(path, 4, "gpu")
    with pytest.raises(SystemExit) as exc:  # the command line: the refusal on one line, status 1
        figure_notebook.main(["reglue", str(tmp_path / "missing.ipynb"), "2", "gpu"])
    assert str(exc.value).startswith("reglue: ") and "is not a file" in str(exc.value)
