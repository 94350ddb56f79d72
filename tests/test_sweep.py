"""nclib.sweep: grids of nclib.train runs on a Dask LocalCluster (tiny synthetic runs, one cluster for the module),
with the grid (nclib.grid), the sweep's plan (nclib.sweepplan), its command line (nclib.sweepcli), its record and
locks (nclib.sweepmanifest) and its table (nclib.sweeptable)."""
import contextlib
import errno
import hashlib
import json
import logging
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import dask
import numpy as np
import pandas as pd
import pytest
import torch
from dask.distributed import LocalCluster

from nclib import ROOT, checkpoints, locks, runplan, runs, sweep, sweepmanifest, sweepplan, sweeptable, train, ufm
from nclib.grid import SWEEP_KEYS, expand_grid, parse_fixed, parse_grid, parse_tie, run_name_for
from nclib.minority import minimizer_accuracy
from nclib.parameters import DEFAULTS, EXECUTION_KEYS, defining_params

TINY = dict(dataset="synthetic", counts=[6, 3, 2], dim=4, width=16, depth=1, epochs=4, batch_size="full",
            metric_every=2, device="cpu", lr=1e-2, lam_H=1e-3)


@pytest.fixture(scope="module")
def scheduler():
    """One LocalCluster of two single-threaded worker processes for every sweep of this module."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


#: torch's threads in a worker of that cluster: Dask starts each worker process with OMP_NUM_THREADS=1. A run stopped
#: here resumes there only if it was made with as many (a CPU run's sums round by how its kernels split them).
WORKER_THREADS = 1


@contextlib.contextmanager
def worker_threads():
    """Train in this process as a worker of the cluster does: with :data:`WORKER_THREADS` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(WORKER_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _files(folder):
    """{relative path: (sha256, mtime_ns)} of every file under ``folder``."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _data_writer(path, seed: int):
    """A function writing a small CIFAR-10-shaped data file at ``path``, 10 images of each of 3 classes, other
    pixels at each call: the data file a test rewrites at its path."""
    rng = np.random.default_rng(seed)

    def write():
        np.savez(path, x_train=rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8),
                 y_train=np.repeat(np.arange(3), 10))

    return write


def _names(text, *words) -> bool:
    """Whether a refusal names every one of ``words`` (parameters, flags, values), however it is worded."""
    return all(w in str(text) for w in words)


# ------------------------------------------------------------------------------------------ the grid

def test_grid_expands_in_parameter_order_with_safe_unique_names():
    grid = parse_grid(["seed=0,1,2", "lam_W=1e-3,[1e-3,1e-2]", "batch_size=full,4"])
    assert grid == {"seed": [0, 1, 2], "lam_W": [1e-3, [1e-3, 1e-2]], "batch_size": ["full", 4]}
    points = expand_grid(grid)
    assert len(points) == 3 * 2 * 2
    # parameters in the order of train.DEFAULTS (batch_size, lam_W, seed), the last one varying fastest
    assert [list(p) for p in points] == [["batch_size", "lam_W", "seed"]] * 12
    assert points[0] == {"batch_size": "full", "lam_W": 1e-3, "seed": 0}
    assert points[1] == {"batch_size": "full", "lam_W": 1e-3, "seed": 1}
    assert points[-1] == {"batch_size": 4, "lam_W": [1e-3, 1e-2], "seed": 2}
    names = [run_name_for(p) for p in points]
    assert len(set(names)) == 12
    assert all(re.fullmatch(r"[A-Za-z0-9.+_-]+", n) for n in names)
    assert names[0] == "batch_size-full_lam_W-0.001_seed-0"
    assert run_name_for({"data_path": "/a/b c"}) != run_name_for({"data_path": "/a/b_c"})
    # a value replaced by '_'s names the point by its hash whichever key holds it, also before a key written as is
    lossy = [run_name_for({"data_path": p, "seed": 0}) for p in ("/d/x y.npz", "/d/x_y.npz")]
    assert lossy[0] != lossy[1] and all(re.fullmatch(r"data_path-_d_x_y\.npz_seed-0-h[0-9a-f]{8}", x) for x in lossy)
    assert expand_grid({}) == [{}]
    # numpy values (np.logspace) are plain numbers in the points and the names
    points = expand_grid({"lam_W": np.array([1e-3, 1e-2]), "seed": np.arange(2)})
    assert points[1] == {"lam_W": 1e-3, "seed": 1} and type(points[1]["seed"]) is int
    assert run_name_for(points[1]) == "lam_W-0.001_seed-1"
    assert parse_fixed(["counts=[6,3,2]", "bias=false", "device=cpu", "lam_W=reference"]) == \
        {"counts": [6, 3, 2], "bias": False, "device": "cpu", "lam_W": "reference"}



def test_zero_dimensional_numpy_values_are_their_numbers(tmp_path):
    """A 0-d numpy array (``np.array(0.1)``, what numpy's reductions give) once crashed plain(), and with it the grid
    and the plan, with a TypeError ('float' object is not iterable); it is the number it holds, in a grid or fixed."""
    from nclib.grid import plain

    assert plain(np.array(0.1)) == 0.1 and type(plain(np.array(0.1))) is float
    assert plain(np.array(3)) == 3 and type(plain(np.array(3))) is int
    assert plain([np.array(2), np.array([1.5, 2.5])]) == [2, [1.5, 2.5]]
    points = expand_grid({"lam_W": [np.array(1e-3), np.float64(1e-2)], "seed": np.array([np.array(1)])})
    assert points == [{"lam_W": 1e-3, "seed": 1}, {"lam_W": 1e-2, "seed": 1}]
    assert type(points[0]["lam_W"]) is float and type(points[0]["seed"]) is int
    planned = sweep.plan({"seed": [np.array(0)]}, {**{k: v for k, v in TINY.items() if k != "lam_H"},
                                                  "lam_H": np.array(1e-3), "lam_W": np.array(1e-2)}, tmp_path / "out")
    assert [p["params"]["run_name"] for p in planned] == ["seed-0"]
    assert planned[0]["params"]["lam_H"] == 1e-3 and planned[0]["params"]["lam_W"] == 1e-2


def test_absolute_data_path_expands_the_home_folder_and_leaves_other_values(tmp_path, monkeypatch):
    """A data path as workers read it: ``~`` expanded (a worker's folder is not the shell's), a relative path made
    absolute from this process's folder, None and other values as they are."""
    from nclib.grid import absolute_data_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert absolute_data_path("~/x.npz") == os.path.expanduser("~/x.npz") == str(tmp_path / "home" / "x.npz")
    assert absolute_data_path(pathlib.PurePath("~/d")) == str(tmp_path / "home" / "d")
    assert absolute_data_path("data/x.npz") == str(tmp_path / "data" / "x.npz")
    assert absolute_data_path(None) is None and absolute_data_path(3) == 3


def test_run_names_write_booleans_and_none_as_the_grid_reads_them_and_hash_long_ones():
    """True, False and None are written true, false and none, the words --grid reads; a name of 120 characters is
    kept whole, a longer one (121 or 210) is its first 110 and -h with 8 hex digits, 120 characters in all."""
    assert run_name_for({"bias": False, "feature_dim": None}) == "bias-false_feature_dim-none"
    points = expand_grid(parse_grid(["bias=true,false", "feature_dim=none"]))
    assert [run_name_for(p) for p in points] == ["bias-true_feature_dim-none", "bias-false_feature_dim-none"]
    assert run_name_for({"data_path": "a" * 110}) == "data_path-" + "a" * 110  # 120 characters
    names = []
    for size in (111, 112, 200):
        plain = "data_path-" + "a" * size
        names.append(run_name_for({"data_path": "a" * size}))
        assert re.fullmatch(re.escape(plain[:110]) + r"-h[0-9a-f]{8}", names[-1]) and len(names[-1]) == 120
    assert len(set(names)) == 3  # cut to the same 110 characters, told apart by the hash


def test_run_names_tell_floats_one_ulp_apart_and_read_back_to_the_same_float(tmp_path):
    """A float is written in a run name with the digits that read back to it: two values one ulp apart, or 1e-3 and
    1.00001e-3, get names of their own (with 4 significant digits both would be lam_W-0.001, and the plan would
    refuse them as the same run), and the value's text in the name is read back as the same float."""
    for a, b in ((1e-3, np.nextafter(1e-3, 1.0)), (1e-3, 1.00001e-3), (0.1, np.nextafter(0.1, 0.0)),
                 (1e-5, np.nextafter(1e-5, 1.0)), (12345.678, np.nextafter(12345.678, 0.0))):
        values = [a, float(b)]
        points = expand_grid({"lam_W": values})
        names = [run_name_for(p) for p in points]
        assert names[0] != names[1]
        for name, value in zip(names, values):
            assert name.startswith("lam_W-") and float(name[len("lam_W-"):]) == value
        inside = run_name_for({"lam_W": [values[1], values[0]]})  # the items of a list read back alike
        assert [float(t) for t in inside[len("lam_W-"):].split("_")] == [values[1], values[0]]
    planned = sweep.plan({"lam_W": [1e-3, 1.00001e-3]}, TINY, tmp_path / "out")
    assert len({p["params"]["run_name"] for p in planned}) == 2
    assert [p["params"]["lam_W"] for p in planned] == [1e-3, 1.00001e-3]


def test_run_names_tell_nested_lists_apart(tmp_path):
    """[[1, 2], 3] and [1, [2, 3]] were both named counts-1_2_3 (and [[]] as [], lam_W-empty); an inner list is
    written in brackets, replaced by '_'s with the point's hash.  A flat list keeps its name; no run parameter takes
    a nested list, and the plan refuses one naming it."""
    names = [run_name_for({"counts": v}) for v in ([[1, 2], 3], [1, [2, 3]], [1, 2, 3])]
    assert re.fullmatch(r"counts-_1_2__3-h[0-9a-f]{8}", names[0])
    assert re.fullmatch(r"counts-1__2_3_-h[0-9a-f]{8}", names[1]) and names[2] == "counts-1_2_3"
    assert run_name_for({"lam_W": []}) == "lam_W-empty"
    assert re.fullmatch(r"lam_W-_empty_-h[0-9a-f]{8}", run_name_for({"lam_W": [[]]}))
    for not_a_point in ([("seed", 1)], [], None, "seed-1"):  # a list of pairs raised AttributeError; [] was "run"
        with pytest.raises(ValueError, match="^point must be a dict"):
            run_name_for(not_a_point)
    with pytest.raises(ValueError, match=r"^grid point counts-_1_2__3-h[0-9a-f]{8}: counts must be a 1-D"):
        sweep.plan({"counts": [[[1, 2], 3], [1, [2, 3]]]}, {k: v for k, v in TINY.items() if k != "counts"},
                   tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", EXECUTION_KEYS)
def test_an_execution_key_in_the_grid_is_refused_by_name(tmp_path, key):
    """How a call trains is no grid parameter, even with one value beside a parameter that makes the runs
    differ (two seeds: no two points are the same run)."""
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"^grid \(--grid\): .*" + re.escape(repr(key))):
        sweep.plan({"seed": [0, 1], key: [DEFAULTS[key]]}, {k: v for k, v in TINY.items() if k != "seed"}, out)
    assert not out.exists()

@pytest.mark.parametrize("items, name", [
    (["lam_W"], "lam_W"),             # no '='
    (["=1,2"], "=1,2"),               # no name
    (["lam_W="], "lam_W"),            # no value
    (["lam_W=1,,2"], "lam_W"),        # an empty value
    (["lam_W=[1,2"], "lam_W"),        # an unbalanced bracket
    (["seed=0", "seed=1"], "seed"),   # given twice
])
def test_bad_grid_syntax_is_refused_by_name(items, name):
    with pytest.raises(ValueError, match=re.escape(f"--grid {name}")):
        parse_grid(items)


@pytest.mark.parametrize("items", ["lam_W=1", None, 3, {"lam_W": "1"}])
def test_settings_not_in_a_list_are_refused_by_their_flag(items):
    """A bare string was read character by character ('--grid l: expected NAME=VALUE', naming the wrong thing), None
    or a number raised a TypeError; each is refused naming the flag.  A tuple is a list of settings."""
    for parse, flag in ((parse_grid, "--grid"), (parse_fixed, "--set"), (parse_tie, "--tie")):
        with pytest.raises(ValueError, match=rf"^{flag}: the settings must be a list of NAME=VALUE texts"):
            parse(items)
    assert parse_grid(("lam_W=1,2",)) == {"lam_W": [1, 2]} and parse_tie(("lam_H=lam_W",)) == {"lam_H": "lam_W"}
    assert parse_fixed(("seed=3",)) == {"seed": 3}


def test_grid_and_fixed_values_of_text_keys_stay_text():
    """A path or a name is read as text (nclib.parameters.TEXT_KEYS), ``none`` as None, in --grid as in --set."""
    assert parse_grid(["data_path=007.npz,007,none", "precision=fp32,tf32"]) == \
        {"data_path": ["007.npz", "007", None], "precision": ["fp32", "tf32"]}
    assert parse_fixed(["data_path=007", "device=NONE", "width=007"]) == \
        {"data_path": "007", "device": None, "width": 7}


def test_bad_fixed_syntax_is_refused_by_name():
    for text in ("counts=6,3,2", "seed=0,1"):  # a list goes in brackets; two values are a grid
        with pytest.raises(ValueError, match="--set " + text.split("=")[0]):
            parse_fixed([text])
    with pytest.raises(ValueError, match="--set width"):
        parse_fixed(["width"])
    with pytest.raises(ValueError, match="--set counts"):
        parse_fixed(["counts=[6,3"])


@pytest.mark.parametrize("grid, fixed, name", [
    ({"lam_w": [1e-3]}, {}, "lam_w"),                    # unknown in the grid (the parameter is lam_W)
    ({"seed": [0]}, {"widht": 16}, "widht"),             # unknown among the fixed
    ({"run_name": ["a", "b"]}, {}, "run_name"),          # set by the sweep
    ({"seed": [0]}, {"resume": True}, "resume"),
    ({"max_train_s": [1, 2]}, {}, "max_train_s"),        # how a call trains, not what a run is
    ({"seed": [0, 1]}, {"seed": 0}, "seed"),             # in both
    ({"seed": 0}, {}, "seed"),                           # not a list
    ({"seed": []}, {}, "seed"),                          # no value
    ({"lam_W": np.array(0.1)}, {}, "lam_W"),             # a 0-d array is not a list
    ({"L": [1, 0]}, {}, "L"),                            # one point fails check_params
    ({"batch_size": [2, 2]}, {}, "batch_size"),          # the same run twice
    ({"lr": [1, 1.0]}, {}, "lr"),                        # the same run under two names
    ({"counts": [[4, 2, 1], [4.0, 2.0, 1.0]]}, {}, "counts"),  # the same counts, as ints and as floats
])
def test_refusals_name_the_parameter_and_write_nothing(tmp_path, grid, fixed, name):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=re.escape(name)):
        sweep.run_sweep(grid, {**{k: v for k, v in TINY.items() if k not in grid}, **fixed}, out, progress=False)
    assert not out.exists()


def test_a_resource_amount_is_a_positive_number_refused_otherwise_by_the_argument_it_came_in():
    assert sweep.resource_amount("GPU", 1, "resources") == 1
    assert sweep.resource_amount("licence", 0.5, "--resources") == 0.5
    for bad in (0, -1, 0.0, float("nan"), True, "1", None, float("inf"), np.inf):
        with pytest.raises(ValueError, match="^--resources GPU\\b"):
            sweep.resource_amount("GPU", bad, "--resources")
    assert sweep.resource_amount("GPU", 10 ** 30, "resources") == 10 ** 30  # an int is finite


def test_task_resources_refuse_what_is_no_parameter_set_or_resources_by_name():
    """task_resources(None) and the like raised TypeError or KeyError, naming no argument."""
    run = {"device": "cpu"}
    for bad in (None, {}, [("device", "cuda")]):
        with pytest.raises(ValueError, match="^params must"):
            sweep.task_resources(bad)
    for bad in (5, [("GPU", 1)], {1: 1}):
        with pytest.raises(ValueError, match="^resources must"):
            sweep.task_resources(run, bad)
    for bad in (float("inf"), 0, True):
        with pytest.raises(ValueError, match="^resources GPU"):
            sweep.task_resources(run, {"GPU": bad})
    assert sweep.task_resources(run, {"GPU": 1, "licence": 0.5}) == {"GPU": 1, "licence": 0.5}
    assert sweep.task_resources({"device": "cuda:1"}) == {"GPU": 1} and sweep.task_resources(run) is None


@pytest.mark.parametrize("kw, name", [(dict(workers=0), "workers"),
                                      (dict(workers=2, scheduler="tcp://h:8786"), "workers"),
                                      (dict(resources={"GPU": -1}), "resources"), (dict(progress=1), "progress"),
                                      (dict(restart_refused="yes"), "restart_refused"),
                                      (dict(workers=True), "workers")])
def test_bad_sweep_arguments_are_refused_by_name(tmp_path, kw, name):
    with pytest.raises(ValueError, match=name):
        sweep.run_sweep({"seed": [0]}, TINY, tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


def test_a_scheduler_that_is_no_address_is_refused_by_name_before_anything_is_written(tmp_path, capsys):
    """scheduler is checked with the other execution arguments, before anything is planned or written: a value that is
    neither None, a cluster object nor an address of the form Dask reads ([SCHEME://]HOST:PORT) is refused naming
    scheduler (--scheduler), status 2 from the command line, where Dask would refuse it (or wait its connect timeout
    out) only after the call was recorded; the forms Dask reads pass."""
    out = tmp_path / "out"
    for address in (123, "", "localhost:8786x", "tcp://127.0.0.1", "tcp://:8786", "tcp://h:0", "tcp://h:65536",
                    "http://h:8786", ["tcp://h:8786"]):
        with pytest.raises(ValueError, match=re.escape("scheduler (--scheduler)")):
            sweep.run_sweep({"seed": [0]}, TINY, out, scheduler=address, progress=False)
        if isinstance(address, str):
            with pytest.raises(SystemExit) as exc:
                sweep.main(["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()],
                            "--out-dir", str(out), "--scheduler", address, "--no-progress"])
            error = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
            assert exc.value.code == 2 and len(error) == 1 and "--scheduler" in error[0], (address, error)
        assert not out.exists(), address

    class Cluster:  # what Client takes for a cluster: an object with the address of its scheduler
        scheduler_address = "tcp://127.0.0.1:8786"

    for address in ("tcp://127.0.0.1:8786", "localhost:8786", "tls://[::1]:8786", "inproc://10.0.0.1/1234/1",
                    Cluster()):
        assert sweep._check_sweep_args(None, address, None, True, False) == (None, True, False)


def test_a_scheduler_that_does_not_answer_leaves_the_record_as_it_was(tmp_path, capsys):
    """An address of the right form where no scheduler listens (a port closed again at once; Dask's connect timeout cut
    to 1 s): the call is refused naming scheduler (--scheduler), status 2 from the command line, before it is
    recorded, so that sweep.json and the run folders stay as they were, byte for byte and in time."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0, 1]}, TINY, out, 0)  # a folder holding a recorded call and one run
    before = _files(out)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        silent = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    argv = ["--grid", "seed=0,1,2", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
            "--scheduler", silent, "--no-progress"]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ValueError, match=re.escape(f"scheduler (--scheduler) {silent!r}")):
            sweep.run_sweep({"seed": [0, 1, 2]}, TINY, out, scheduler=silent, progress=False)
        with pytest.raises(SystemExit) as exc:
            sweep.main(argv)
    error = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert exc.value.code == 2 and len(error) == 1 and "--scheduler" in error[0], error
    after = _files(out)
    after.pop(sweepmanifest.LOCK)  # the sweep's lock, taken and given back
    assert after == before


def test_numpy_bools_and_ints_count_as_the_sweep_arguments_they_are():
    workers, progress, restart = sweep._check_sweep_args(np.int64(2), None, None, np.False_, np.True_)
    assert (workers, progress, restart) == (2, False, True)
    assert (type(workers), type(progress), type(restart)) == (int, bool, bool)
    with pytest.raises(ValueError, match="restart_refused"):
        sweep.run_point({"seed": [0]}, TINY, "unused", 0, restart_refused=1)


@pytest.mark.parametrize("out_dir", [["out"], 5, ""])
def test_an_out_dir_that_is_no_path_is_refused_by_name(tmp_path, monkeypatch, out_dir):
    monkeypatch.chdir(tmp_path)
    for call in (sweep.plan, sweep.run_sweep):
        with pytest.raises(ValueError, match="^out_dir must be the path of a folder"):
            call({"seed": [0]}, TINY, out_dir)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("under", [False, True])
def test_an_out_dir_that_is_a_file_or_under_one_is_refused_by_name_before_anything_is_written(tmp_path, capsys, under):
    """--out-dir naming a file, or a path under one: every mode that plans the grid refuses it, naming out_dir, the
    command line with status 2 (--list-points too, so that no array is submitted whose every task would fail)."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "runs" if under else tmp_path / "file"
    named = re.escape(f"out_dir {str(out)!r}")
    for call in (lambda: sweep.plan({"seed": [0]}, TINY, out), lambda: sweep.list_points({"seed": [0]}, TINY, out),
                 lambda: sweep.run_point({"seed": [0]}, TINY, out, 0),
                 lambda: sweep.run_sweep({"seed": [0]}, TINY, out, workers=1, progress=False)):
        with pytest.raises(ValueError, match=named):
            call()
    argv = ["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out)]
    for mode in (["--list-points"], ["--point", "0"], []):
        with pytest.raises(SystemExit) as exc:
            sweep.main([*argv, *mode])
        assert exc.value.code == 2 and str(out) in capsys.readouterr().err, mode
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and (tmp_path / "file").read_text() == "x"


def _read_only(folder):
    """A command prefix that runs a command with ``folder`` mounted read-only, in a user and mount namespace of its
    own (``unshare -Urm``: the mount is seen by that command alone); the test is skipped where the system makes
    no such namespace (no unshare, user namespaces disabled)."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 97; shift; exec "$@"'
    prefix = ["unshare", "-Urm", "sh", "-c", script, "sh", str(folder)]
    if shutil.which("unshare") is None:
        pytest.skip("no unshare: a read-only mount cannot be made here")
    probe = subprocess.run([*prefix, "sh", "-c", f"! touch {shlex.quote(str(folder / 'probe'))} 2>/dev/null"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no read-only mount in a namespace of its own here: {probe.stderr.decode()[-300:]}")
    return prefix


def test_a_read_only_out_dir_is_refused_when_planning_and_summarized_without_its_table_file(tmp_path):
    """An output folder on a read-only file system: --list-points, a task (--point) and a sweep refuse it with
    status 2, naming it, and so do they a folder to be made in it; --summary-only prints the table and says in a
    note that sweep.csv could not be written, with the status of the table; nothing in the folder changes."""
    out = tmp_path / "out"
    argv = ["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in TINY.items()]]
    with worker_threads():
        sweep.run_point({"seed": [0, 1]}, TINY, out, 0)
    before = _files(out)
    prefix = _read_only(out)
    command = [*prefix, sys.executable, "-m", "nclib.sweep"]
    for folder in (out, out / "new"):
        for mode in (["--list-points"], ["--point", "1"], ["--workers", "1", "--no-progress"]):
            refused = subprocess.run([*command, *argv, "--out-dir", str(folder), *mode], capture_output=True, text=True)
            assert refused.returncode == 2 and f"out_dir {str(folder)!r}" in refused.stderr, (mode, refused.stderr)
    summarized = subprocess.run([*command, "--summary-only", "--out-dir", str(out)], capture_output=True, text=True)
    shown = summarized.stdout.splitlines()
    assert summarized.returncode == 1, summarized.stderr  # point 1 has no run yet: the table's status
    assert shown[0].split()[:2] == ["run_name", "status"] and [line.split()[:2] for line in shown[1:]] == [
        ["seed-0", "finished"], ["seed-1", "absent"]], shown  # the table, and no path of a sweep.csv after it
    assert sweep.SUMMARY in summarized.stderr and "Read-only file system" in summarized.stderr
    assert _files(out) == before and not (out / sweep.SUMMARY).exists()


def test_the_command_line_refuses_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--grid", "lam_w=1e-3,1e-2", "--out-dir", str(tmp_path / "out")])
    assert exc.value.code == 2 and "lam_w" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, name", [(["--grid", "seed=0,1"], "--grid"), (["--set", "epochs=3"], "--set"),
                                         (["--tie", "lam_H=lam_W"], "--tie"),
                                         (["--restart-refused"], "--restart-refused"),
                                         (["--workers", "2"], "--workers"),
                                         (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
                                         (["--resources", "GPU=1"], "--resources")])
def test_summary_only_refuses_what_it_would_ignore(tmp_path, capsys, extra, name):
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--summary-only", *extra, "--out-dir", str(tmp_path / "out")])
    error = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]  # not the usage lines
    assert exc.value.code == 2 and len(error) == 1 and "--summary-only" in error[0] and name in error[0]
    assert not (tmp_path / "out").exists()


def test_a_second_sweep_in_a_running_sweeps_folder_is_refused_and_touches_nothing(tmp_path, capsys):
    """Another process holds OUT_DIR/.sweep.lock: run_sweep raises SweepBusy before it writes anything, the
    command line exits 3 with one line that says what to do, and once the lock is released the sweep runs."""
    out = tmp_path / "out"
    out.mkdir()
    holder = _flock_held(out / sweepmanifest.LOCK)
    try:
        with pytest.raises(sweep.SweepBusy, match=re.escape(f"another sweep is running in {str(out)!r}")):
            sweep.run_sweep({"seed": [0]}, TINY, out, workers=1, progress=False)
        args = ["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
                "--workers", "1", "--no-progress"]
        with pytest.raises(SystemExit) as exc:
            sweep.main(args)
        err = capsys.readouterr().err
        assert exc.value.code == 3 and "another sweep is running" in err and "usage:" not in err
        assert sorted(p.name for p in out.iterdir()) == [sweepmanifest.LOCK]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    df = sweep.main(args)
    assert df["status"].tolist() == ["finished"] and sweep.exit_status(df) == 0


def test_tied_parameters_follow_their_grid_parameter_and_stay_out_of_the_names(tmp_path):
    assert parse_tie(["lam_H=lam_W"]) == {"lam_H": "lam_W"}
    points = expand_grid({"lam_W": [1e-3, 1e-2], "L": [1, 3]}, {"lam_H": "lam_W"})
    assert points == [{"L": L, "lam_W": lam, "lam_H": lam} for L in (1, 3) for lam in (1e-3, 1e-2)]
    planned = sweep.plan({"lam_W": [1e-3, 1e-2], "L": [1, 3]}, {k: v for k, v in TINY.items() if k != "lam_H"},
                         str(tmp_path / "out"), tie={"lam_H": "lam_W"})
    assert [q["params"]["run_name"] for q in planned] == ["L-1_lam_W-0.001", "L-1_lam_W-0.01",
                                                         "L-3_lam_W-0.001", "L-3_lam_W-0.01"]
    assert [q["params"]["lam_H"] for q in planned] == [q["params"]["lam_W"] for q in planned] == [1e-3, 1e-2] * 2


@pytest.mark.parametrize("tie, fixed, name", [
    ({"lam_h": "lam_W"}, {}, "lam_h"),                    # unknown tied parameter
    ({"lam_H": "lam_w"}, {}, "lam_w"),                    # tied to a parameter not in the grid
    ({"lam_H": "lr"}, {}, "lr"),                          # lr is fixed, not in the grid
    ({"seed": "lam_W"}, {}, "seed"),                      # the tied parameter is also in the grid
    ({"lam_H": "lam_W"}, {"lam_H": 1e-3}, "lam_H"),       # the tied parameter is also fixed
    ({"max_train_s": "lam_W"}, {}, "max_train_s"),        # how a call trains
    ({"run_name": "lam_W"}, {}, "run_name"),              # set by the sweep
    (["lam_H", "lam_W"], {}, "tie"),                      # not a dict
])
def test_bad_ties_are_refused_by_name_and_write_nothing(tmp_path, tie, fixed, name):
    out = tmp_path / "out"
    base = {k: v for k, v in TINY.items() if k != "lam_H"}
    with pytest.raises(ValueError, match=re.escape(name)):
        sweep.run_sweep({"lam_W": [1e-3, 1e-2], "seed": [0]}, {**base, **fixed}, out, progress=False, tie=tie)
    assert not out.exists()
    with pytest.raises(ValueError, match=re.escape("--tie lam_H")):
        parse_tie(["lam_H"])
    with pytest.raises(ValueError, match=re.escape("--tie lam_H")):
        parse_tie(["lam_H=lam_W", "lam_H=lr"])


def test_cuda_points_are_checked_for_the_workers_of_a_cluster(tmp_path):
    """With a scheduler the runs train elsewhere: device="cuda" passes the check on a machine without a GPU
    (the workers check it again), and each such run asks for the resource GPU=1."""
    planned = sweep.plan({"seed": [0, 1]}, {**TINY, "device": "cuda"}, tmp_path, remote=True)
    assert [q["params"]["device"] for q in planned] == ["cuda", "cuda"]
    assert [q["params"]["seed"] for q in planned] == [0, 1]
    assert [sweep.task_resources(q["params"]) for q in planned] == [{"GPU": 1}] * 2
    assert sweep.task_resources(planned[0]["params"], {"GPU": 0.5}) == {"GPU": 0.5}
    assert sweep.task_resources(sweep.plan({}, TINY, tmp_path)[0]["params"]) is None
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            sweep.plan({"seed": [0, 1]}, {**TINY, "device": "cuda"}, tmp_path)
        with pytest.raises(ValueError, match="steps_per_graph = 2"):  # here: no GPU to replay graphs on
            sweep.plan({}, {**TINY, "steps_per_graph": 2}, tmp_path)
    # for the workers the GPU-only lever passes too, with device "cuda" or "auto"; a device misspelled does not
    for device in ("cuda", "auto"):
        p = sweep.plan({}, {**TINY, "device": device, "steps_per_graph": 2}, tmp_path, remote=True)[0]["params"]
        assert (p["device"], p["steps_per_graph"]) == (device, 2)
    with pytest.raises(ValueError, match="device must be"):
        sweep.plan({}, {**TINY, "device": "cuda:x"}, tmp_path, remote=True)
    assert not any(tmp_path.iterdir())


def test_a_sweep_on_a_scheduler_checks_cuda_points_for_its_workers(tmp_path, monkeypatch):
    """run_sweep and the command line with a scheduler plan device="cuda" for the cluster's workers: on a machine
    without a GPU the sweep reaches its cluster, its runs asking for GPU=1; without a scheduler (a local cluster of
    this machine) the point is refused by name before anything is written."""
    from nclib import parameters

    monkeypatch.setattr(parameters, "_cuda_available", lambda: False)
    reached = []

    def no_cluster(scheduler, workers, held, runs=None):
        reached.append((scheduler, held))
        raise OSError("no cluster here")

    monkeypatch.setattr(sweep, "_client", no_cluster)
    cuda = {**TINY, "device": "cuda"}
    with pytest.raises(OSError, match="no cluster here"):
        sweep.run_sweep({"seed": [0, 1]}, cuda, tmp_path / "api", scheduler="tcp://127.0.0.1:1", progress=False)
    with pytest.raises(OSError, match="no cluster here"):
        sweep.main(["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in cuda.items()],
                    "--out-dir", str(tmp_path / "cli"), "--scheduler", "tcp://127.0.0.1:2", "--no-progress"])
    assert reached == [("tcp://127.0.0.1:1", {"GPU": 1}), ("tcp://127.0.0.1:2", {"GPU": 1})]
    with pytest.raises(ValueError, match="device"):
        sweep.run_sweep({"seed": [0, 1]}, cuda, tmp_path / "here", progress=False)
    assert not (tmp_path / "here").exists() and len(reached) == 2


def test_a_folder_with_other_parameters_is_refused(tmp_path):
    train.run(**TINY, lam_W=1e-3, out_dir=tmp_path, run_name="lam_W-0.001", progress=False)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match="epochs"):
        sweep.run_sweep({"lam_W": [1e-3]}, {**TINY, "epochs": 6}, tmp_path, progress=False)
    # nor is a run made on another kind of device kept for workers that train on a GPU
    with pytest.raises(ValueError, match="device = 'cpu', now 'cuda'"):
        sweep.plan({"lam_W": [1e-3]}, {**TINY, "device": "cuda"}, tmp_path, remote=True)
    assert len(sweep.plan({"lam_W": [1e-3]}, {**TINY, "device": "auto"}, tmp_path, remote=True)) == 1  # unknown
    assert _files(tmp_path) == before


# ------------------------------------------------------------------------------------------ sweeps

def test_sweep_writes_one_folder_per_point_and_the_table(scheduler, tmp_path):
    grid = {"lam_W": [1e-3, 1e-2], "seed": [0, 1]}
    df = sweep.run_sweep(grid, TINY, tmp_path, scheduler=scheduler, progress=False)
    names = [run_name_for(p) for p in expand_grid(grid)]
    assert sorted(d.name for d in tmp_path.iterdir() if d.is_dir()) == sorted(names)
    assert df["run_name"].tolist() == names
    assert (df["status"] == "finished").all() and df["error"].isna().all()
    assert df["lam_W"].tolist() == [1e-3, 1e-3, 1e-2, 1e-2] and df["seed"].tolist() == [0, 1, 0, 1]
    table = pd.read_csv(tmp_path / sweep.SUMMARY)
    for _, row in table.iterrows():  # every number comes from the run folder
        params, hist, prov = runs.load_run(tmp_path / row["run_name"])
        assert row["lam_W"] == params["lam_W"] and row["seed"] == params["seed"] and row["width"] == 16
        assert row["epoch"] == hist["epoch"][-1] == 4
        for col in ("loss", "objective", "nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3", "train_acc"):
            assert row[f"final_{col}"] == pytest.approx(hist[col][-1], rel=1e-12, abs=0), col
        acc = runs.load_class_accuracy(tmp_path / row["run_name"])["acc"][-1]
        np.testing.assert_allclose([row[f"class_acc_{k}"] for k in range(3)], acc, rtol=1e-12)
        assert row["wall_time_s"] == pytest.approx(prov["wall_time_s"], rel=1e-12, abs=0)
    # the seeds give other runs, the decays other minima
    assert len(set(table["final_objective"])) == 4

    # run again: every run is finished, nothing is touched, the table is the same
    before = _files(tmp_path)
    again = sweep.run_sweep(grid, TINY, tmp_path, scheduler=scheduler, progress=False)
    after = _files(tmp_path)
    assert {k: v for k, v in after.items() if "/" in k} == {k: v for k, v in before.items() if "/" in k}
    pd.testing.assert_frame_equal(again, df)

    # the table is rebuilt from the run folders alone
    (tmp_path / sweep.SUMMARY).unlink()
    rebuilt = sweep.main(["--summary-only", "--out-dir", str(tmp_path)])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / sweep.SUMMARY), table)
    pd.testing.assert_frame_equal(rebuilt, df)


def test_a_tied_sweep_from_the_command_line_names_folders_by_the_grid(scheduler, tmp_path, capsys):
    """--grid lam_W=... --tie lam_H=lam_W: one folder per decay, named after lam_W alone, each run trained with
    lam_H = lam_W (the same history as a run given both), and both decays in the table."""
    sets = ["dataset=synthetic", "counts=[6,3,2]", "dim=4", "width=16", "depth=1", "epochs=4", "batch_size=full",
            "metric_every=2", "device=cpu", "lr=0.01"]
    df = sweep.main(["--grid", "lam_W=1e-3,1e-1", "--tie", "lam_H=lam_W", *sum((["--set", s] for s in sets), []),
                     "--scheduler", scheduler, "--out-dir", str(tmp_path / "tied"), "--no-progress"])
    capsys.readouterr()
    assert sorted(d.name for d in (tmp_path / "tied").iterdir() if d.is_dir()) == ["lam_W-0.001", "lam_W-0.1"]
    table = sweep.load_summary(tmp_path / "tied")
    assert table["run_name"].tolist() == df["run_name"].tolist() == ["lam_W-0.001", "lam_W-0.1"]
    assert table["lam_W"].tolist() == table["lam_H"].tolist() == [1e-3, 1e-1]
    assert list(table.columns[3:5]) == ["lam_W", "lam_H"]  # the tied decay is a grid column of the table
    assert (table["status"] == "finished").all()
    for _, row in table.iterrows():
        params, hist, _ = runs.load_run(tmp_path / "tied" / row["run_name"])
        assert params["lam_W"] == params["lam_H"] == row["lam_W"]
        assert row["final_objective"] == pytest.approx(hist["objective"][-1], rel=1e-12, abs=0)
    base = {k: v for k, v in TINY.items() if k != "lam_H"}
    train.run(**base, lam_W=1e-1, lam_H=1e-1, out_dir=tmp_path / "plain", run_name="both", progress=False)
    _, plain, _ = runs.load_run(tmp_path / "plain" / "both")
    _, tied, _ = runs.load_run(tmp_path / "tied" / "lam_W-0.1")
    for col in plain:
        if col != "wall_time":
            np.testing.assert_array_equal(tied[col], plain[col], err_msg=col)


def test_a_stopped_run_is_resumed_and_equals_an_uninterrupted_one(scheduler, tmp_path):
    grid = {"lam_W": [1e-3, 1e-2]}
    df = sweep.run_sweep(grid, {**TINY, "max_train_s": 0}, tmp_path / "sweep", scheduler=scheduler, progress=False)
    assert df["status"].tolist() == ["stopped", "stopped"] and df["epoch"].tolist() == [2, 2]
    assert all((tmp_path / "sweep" / n / train.CHECKPOINT).is_file() for n in df["run_name"])
    assert [runs.run_status(tmp_path / "sweep" / n) for n in df["run_name"]] == ["stopped"] * 2

    df = sweep.main(["--grid", "lam_W=1e-3,1e-2", *[f"--set={k}={_text(v)}" for k, v in TINY.items()],
                     "--out-dir", str(tmp_path / "sweep"), "--scheduler", scheduler, "--no-progress"])
    assert df["status"].tolist() == ["finished", "finished"] and df["epoch"].tolist() == [4, 4]
    for lam, name in zip(grid["lam_W"], df["run_name"]):
        whole = train.run(**TINY, lam_W=lam, out_dir=tmp_path / "whole", run_name=name, progress=False)
        part = tmp_path / "sweep" / name
        ha, hb = runs.load_history(whole), runs.load_history(part)
        for col in runs.REPRODUCIBLE_COLUMNS:  # all but the wall time
            np.testing.assert_array_equal(ha[col], hb[col], err_msg=f"{name}: {col}")
        prov = json.loads((part / "provenance.json").read_text())
        assert [(s["from_epoch"], s["to_epoch"], s["status"]) for s in prov["segments"]] == \
            [(0, 2, "stopped"), (2, 4, "finished")]
        assert not (part / train.CHECKPOINT).exists()


def _text(v):
    return "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else str(v)


def test_a_failing_point_is_reported_and_the_others_finish(scheduler, tmp_path):
    grid = {"lr": [1e-2, 1e3, 3e-2]}  # lr = 1000: the objective exceeds 1e4 x its start at the first metric epoch
    df = sweep.run_sweep(grid, {k: v for k, v in TINY.items() if k != "lr"}, tmp_path, scheduler=scheduler,
                         progress=False)
    assert df["lr"].tolist() == [1e-2, 1e3, 3e-2]
    assert df["status"].tolist() == ["finished", "diverged", "finished"]
    assert df["error"].isna().tolist() == [True, False, True]
    assert sweep.exit_status(df) == 0  # a divergence is a result
    prov = json.loads((tmp_path / df["run_name"][1] / "provenance.json").read_text())
    assert df["error"][1] == prov["error"]  # the engine's account of the divergence
    assert df["epoch"].tolist() == [4, 2, 4]
    # a diverged run is a result: running the sweep again keeps it
    before = _files(tmp_path / df["run_name"][1])
    again = sweep.run_sweep(grid, {k: v for k, v in TINY.items() if k != "lr"}, tmp_path, scheduler=scheduler,
                            progress=False)
    assert again["status"].tolist() == df["status"].tolist()
    assert _files(tmp_path / df["run_name"][1]) == before


def test_a_run_that_fails_before_its_folder_is_written_is_reported(scheduler, tmp_path):
    """A data file that exists (so check_params passes it) but lacks y_train, which only loading it finds: the
    run's error is in the table, no folder is left, and the other run finishes."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "good.npz", x_train=x, y_train=np.repeat(np.arange(3), 10))
    np.savez(tmp_path / "bad.npz", x_train=x)
    fixed = {**TINY, "dataset": "cifar10"}
    del fixed["dim"]
    out = tmp_path / "out"
    grid = {"data_path": [str(tmp_path / "good.npz"), str(tmp_path / "bad.npz")]}
    df = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert df["status"].tolist() == ["finished", "failed"] and sweep.exit_status(df) == 1
    assert df["error"].isna()[0] and "y_train" in df["error"][1] and "ValueError" in df["error"][1]
    assert not (out / df["run_name"][1]).exists()
    table = sweep.summary(out)  # rebuilt from the folders and sweep.json: the error is still there
    pd.testing.assert_frame_equal(table, df)


def test_every_run_name_is_a_run_folder_name():
    """The names the sweep makes pass nclib.runs.check_run_name, for values that are paths, dots, empty lists,
    separators, NUL or too long; different points keep different names."""
    values = ["/a/b", "..", ".", "a\\b", "a\0b", "", "x" * 300, [], ["..", "/"], None, True, 1e-3, "é/ü", "~/data"]
    points = [{"data_path": v} for v in values] + [{"class_order": ".."}, {"dataset": ".", "seed": 1}, {}]
    names = [run_name_for(p) for p in points]
    assert [runs.check_run_name(n) for n in names] == names
    assert all(re.fullmatch(r"[A-Za-z0-9.+_-]+", n) and len(n) <= 120 for n in names)
    assert len(set(names)) == len(names)


def _flock_held(path):
    """A live process holding a plain flock on ``path`` (another sweep's lock, say) until its stdin closes."""
    code = ("import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', "
            "flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _hold_lock(run_dir):
    """A live process holding run_dir's lock (nclib.locks.lock_run) until its stdin closes."""
    code = ("import sys; from nclib import locks; lock = locks.lock_run(sys.argv[1]); print('locked', flush=True); "
            "sys.stdin.read(); lock.release()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _kill(run_dir):
    """Make run_dir's run look killed mid-run: provenance says running, and the lock file of a writer gone."""
    prov = json.loads((run_dir / "provenance.json").read_text())
    (run_dir / "provenance.json").write_text(json.dumps({**prov, "status": "running"}))
    (run_dir / locks.LOCK).write_text(json.dumps({"pid": 2 ** 22 + 1, "host": socket.gethostname()}) + "\n")


def test_dead_runs_are_resumed_or_restarted_and_a_live_one_is_left_alone(scheduler, tmp_path):
    """seed 0: killed after a checkpoint (dead, resumed from it); seed 1: killed without one (dead, started
    again); seed 2: another live process holds its folder's lock (running: not trained, reported as running, a
    note naming that process)."""
    out = tmp_path / "sweep"
    grid = {"seed": [0, 1, 2]}
    names = [run_name_for(p) for p in expand_grid(grid)]
    with worker_threads():
        train.run(**TINY, seed=0, out_dir=out, run_name=names[0], max_train_s=0, progress=False)
        train.run(**TINY, seed=1, out_dir=out, run_name=names[1], progress=False)
    _kill(out / names[0])
    _kill(out / names[1])
    assert (out / names[0] / train.CHECKPOINT).is_file() and not (out / names[1] / train.CHECKPOINT).exists()
    holder = _hold_lock(out / names[2])
    try:
        assert [runs.run_status(out / n) for n in names] == ["dead", "dead", "running"]
        assert [sweep.next_step(out / n)[1] for n in names] == ["resume", "start", "leave"]
        # the workers take over the two dead runs' locks; their warnings come back to the sweep, one per run; the
        # live one is left to its writer, a note naming it
        with warnings.catch_warnings(record=True) as taken:
            warnings.simplefilter("always")
            df = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
        over = [str(w.message) for w in taken if w.category is RuntimeWarning and "taking over the lock" in
                str(w.message)]
        assert sorted(n for n in names[:2] for m in over if f"/{n}'" in m) == names[:2], over
        assert [_names_holder(str(w.message), out / names[2], holder.pid) for w in taken
                if w.category is sweep.RunLeft] == [True]
        assert df["status"].tolist() == ["finished", "finished", "running"]
        assert df["error"].isna().all() and df["epoch"].tolist()[:2] == [4, 4] and np.isnan(df["epoch"][2])
        assert sorted(p.name for p in (out / names[2]).iterdir()) == [locks.LOCK]  # nothing written beside it
        assert pd.read_csv(out / sweep.SUMMARY)["status"].tolist() == ["finished", "finished", "running"]
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    for seed, name, segments in ((0, names[0], [(0, 2), (2, 4)]), (1, names[1], [(0, 4)])):
        with worker_threads():
            whole = train.run(**TINY, seed=seed, out_dir=tmp_path / "whole", run_name=name, progress=False)
        ha, hb = runs.load_history(whole), runs.load_history(out / name)
        for col in runs.REPRODUCIBLE_COLUMNS:  # all but the wall time
            np.testing.assert_array_equal(ha[col], hb[col], err_msg=f"{name}: {col}")
        prov = json.loads((out / name / "provenance.json").read_text())
        assert [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == segments
        assert prov["status"] == "finished" and not (out / name / train.CHECKPOINT).exists()

    # once its writer has gone, the next sweep trains the third run and keeps the two others as they are
    kept = {n: _files(out / n) for n in names[:2]}
    again = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert again["status"].tolist() == ["finished"] * 3 and again["epoch"].tolist() == [4, 4, 4]
    assert {n: _files(out / n) for n in names[:2]} == kept


def test_a_failed_run_whose_resume_is_refused_is_kept_unless_a_restart_is_asked(scheduler, tmp_path, monkeypatch):
    """A failed run whose resume is refused (here its provenance names another card) is left as it is by the
    sweep's rerun, an error naming --restart-refused, as a stopped one is: it holds the checkpoint of an earlier
    stop.  With restart_refused it is trained again from the start, a RunRestarted warning naming it; the table's
    'restarted' column gives the refusal, and keeps it on the next rerun, which leaves the finished run as it is."""
    out = tmp_path / "sweep"
    grid = {"seed": [0, 1]}
    names = [run_name_for(p) for p in expand_grid(grid)]
    first = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert first["restarted"].isna().all()
    folder = out / names[0]
    with worker_threads():  # as a worker would, so that only the card below differs
        train.run(**TINY, seed=0, out_dir=out, run_name=names[0], max_train_s=0, overwrite=True, progress=False)
        monkeypatch.setattr(train.Engine, "host_metrics", lambda self, payload: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            train.run(**TINY, seed=0, out_dir=out, run_name=names[0], resume=True, progress=False)
        monkeypatch.undo()
    prov_path = folder / "provenance.json"
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "device_name": "NVIDIA H200"}))
    assert sweep.next_step(folder) == ("failed", "resume")
    failed = _files(folder)
    with warnings.catch_warnings(record=True) as notes:
        warnings.simplefilter("always")
        refused = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert not [w for w in notes if w.category is sweep.RunRestarted]
    assert refused["status"].tolist() == ["failed", "finished"] and sweep.exit_status(refused) == 1
    assert refused["error"][0].startswith("ResumeRefused: ") and "--restart-refused" in refused["error"][0]
    assert refused["restarted"].isna().all() and _files(folder) == failed
    with pytest.warns(sweep.RunRestarted) as restarted:
        again = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False, restart_refused=True)
    assert [str(folder) in str(w.message) for w in restarted.list if w.category is sweep.RunRestarted] == [True]
    assert again["status"].tolist() == ["finished", "finished"] and again["error"].isna().all()
    assert again["restarted"][0].startswith("ResumeRefused: ") and "another device" in again["restarted"][0]
    assert pd.isna(again["restarted"][1])
    kept = _files(folder)
    third = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert third["restarted"].tolist()[0] == again["restarted"][0] and _files(folder) == kept


def _sigterm(*_, **__):
    os.kill(os.getpid(), signal.SIGTERM)


def _sigterm_at_finish(monkeypatch):
    """SIGTERM sent, once, as a run is finished (the last flush of its rows), after the epoch loop: the run is
    written as failed, as today."""
    flush, sent = train.RunFolder.flush, []
    monkeypatch.setattr(train.RunFolder, "flush", lambda self, wait=False: (
        _sigterm() if wait and not sent and not sent.append(1) else flush(self, wait)))


def _sigterm_at_call(monkeypatch, n, times=1):
    """SIGTERM sent, ``times`` times in turn, from the ``n``-th call of Engine.host_metrics (one per metric epoch,
    epoch 0 first)."""
    host_metrics, calls = train.Engine.host_metrics, []

    def sends(self, payload):
        calls.append(1)
        if len(calls) == n:
            for _ in range(times):
                _sigterm()
        return host_metrics(self, payload)
    monkeypatch.setattr(train.Engine, "host_metrics", sends)


def test_a_task_ended_by_sigterm_after_a_checkpoint_is_not_deleted_by_a_task_that_cannot_resume_it(tmp_path,
                                                                                                    monkeypatch,
                                                                                                    capsys):
    """A task's run stopped with a checkpoint, resumed, then sent SIGTERM (a job's time limit, scancel) outside the
    epoch loop, as it finishes: written as failed with the error Terminated, its checkpoint kept.  The task
    submitted again where the run cannot resume (another CPU model, as with other torch threads or after a git
    pull) leaves it as it is, exit status 1, the error naming --restart-refused; with --restart-refused it trains it
    again from the start, and a note names it."""
    out = tmp_path / "out"
    args = ["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
            "--point", "0"]
    folder = out / "seed-0"
    assert sweep.main([*args, "--set", "max_train_s=0"])["status"].tolist() == ["stopped"]
    _sigterm_at_finish(monkeypatch)
    with pytest.raises(SystemExit) as ended:
        sweep.main(args)
    monkeypatch.undo()
    assert ended.value.code == 128 + signal.SIGTERM
    prov = json.loads((folder / "provenance.json").read_text())  # its last rows' flush ended by the signal
    assert prov["status"] == "failed" and "Terminated: " in prov["error"]
    assert (folder / runs.CHECKPOINT).is_file() and sweep.next_step(folder) == ("failed", "resume")
    _elsewhere_cpu(folder)
    before = _files(folder)
    capsys.readouterr()
    refused = sweep.main(args)
    assert refused["status"].tolist() == ["failed"] and sweep.exit_status(refused) == 1
    assert refused["error"][0].startswith("ResumeRefused: ") and "--restart-refused" in refused["error"][0]
    assert _files(folder) == before and f"{sweep.PROG}: note: " not in capsys.readouterr().err
    again = sweep.main([*args, "--restart-refused"])
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{sweep.PROG}: note: ")]
    assert again["status"].tolist() == ["finished"] and again["restarted"][0].startswith("ResumeRefused: ")
    assert len(notes) == 1 and str(folder) in notes[0], notes
    prov = json.loads((folder / "provenance.json").read_text())
    assert [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == [(0, 4)]


def _point_task(out) -> tuple[int, list]:
    """``python -m nclib.sweep --point 0`` of the one-seed grid of TINY runs in ``out``, with a SIGTERM handler found
    that only records a signal (not the process's end): the task's exit status and the signals that reached it."""
    reached = []
    found = signal.signal(signal.SIGTERM, lambda signum, frame: reached.append(signum))
    try:
        with pytest.raises(SystemExit) as ended:
            sweep.main(["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir",
                        str(out), "--point", "0"])
    finally:
        signal.signal(signal.SIGTERM, found)
    return ended.value.code, reached


@pytest.mark.parametrize("when", ["before", "initialization", "training", "twice", "in the stop"])
def test_sigterm_to_a_task_stops_its_run_with_a_checkpoint_or_names_it_failed_only_where_it_had_opened_it(
        tmp_path, monkeypatch, capsys, when):
    """SIGTERM to a task (--point) ends it with status 143.  Sent while the run trains (in the epoch loop), the run
    stops at that metric epoch with a checkpoint, "stopped" with no error: the message names its folder, the next
    task resumes it, and the table gives it as stopped, which is no failure of the sweep (exit status 0), also where
    more SIGTERMs come once the stop has begun (as the checkpoint is written and committed, as the run is finished).
    A second SIGTERM while that stop is merely pending (before the loop reaches the metric epoch), or one outside
    the loop (as the epoch-0 row is recorded), writes it as failed and the message names its folder; one before the
    task opened its run (here as it takes the run folder's lock, as while it imports torch) writes no run folder,
    at most sweep.json, and the message, one line, names none.  No SIGTERM reaches the handler found (here one that
    records it, not the process's end)."""
    out = tmp_path / "out"
    folder = out / "seed-0"
    if when == "before":
        monkeypatch.setattr(locks, "lock_runs", _sigterm)
    else:  # the row of epoch 0 (outside the loop), or of epoch 2, the first in the loop (twice there: "twice")
        _sigterm_at_call(monkeypatch, 1 if when == "initialization" else 2, times=2 if when == "twice" else 1)
    if when == "in the stop":  # a SIGTERM as the checkpoint is written, one as it is committed, one at the finish
        for name in ("save_checkpoint", "commit_checkpoint", "finish"):
            def sends(self, *args, _method=getattr(train.RunFolder, name), **kwargs):
                _sigterm()
                return _method(self, *args, **kwargs)
            monkeypatch.setattr(train.RunFolder, name, sends)
    code, reached = _point_task(out)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert reached == [], reached
    assert code == 128 + signal.SIGTERM and (str(folder) in err) == (when != "before"), err
    assert str(code) in re.findall(r"^  (\d+)  ", sweep.EPILOG, re.M)  # a status --help lists
    status = {"before": "absent", "training": "stopped", "in the stop": "stopped"}.get(when, "failed")
    assert runs.recorded_status(folder) == status and not (folder / locks.LOCK).exists()
    assert ("stopped with a checkpoint" in err) == (when in ("training", "in the stop")), err
    if when == "before":  # one line on stderr, and no run folder: at most sweep.json, recording the grid's points
        assert len(err.splitlines()) == 1 and not folder.exists(), err
        assert {f.name for f in out.iterdir()} <= {sweepmanifest.MANIFEST, sweepmanifest.MANIFEST_LOCK}
    if when in ("training", "in the stop"):
        assert train.load_history(folder)["epoch"].tolist() == [0, 2]
        assert sweep.next_step(folder) == ("stopped", "resume")
        table = sweep.summary(out)
        assert table["status"].tolist() == ["stopped"] and table["error"].isna().all()
        assert sweep.exit_status(table) == 0
        again = sweep.run_point({"seed": [0]}, TINY, out, 0)  # the next task resumes it
        assert again["status"].tolist() == ["finished"]
        prov = json.loads((folder / "provenance.json").read_text())
        assert [(s["from_epoch"], s["to_epoch"], s["status"]) for s in prov["segments"]] == [(0, 2, "stopped"),
                                                                                             (2, 4, "finished")]


def test_sigterm_to_a_task_whose_run_diverges_at_the_stop_names_it_diverged(tmp_path, monkeypatch, capsys):
    """A task sent SIGTERM while its run trains, the run diverging at the metric epoch where the noted signal
    would stop it: status 143, the run "diverged" (not stopped, no checkpoint), its folder named as diverged and
    unlocked, and the table gives it as diverged."""
    out = tmp_path / "out"
    folder = out / "seed-0"
    _sigterm_at_call(monkeypatch, 2)  # the row of epoch 2, the first in the loop
    divergence = train.RunFolder.divergence
    monkeypatch.setattr(train.RunFolder, "divergence", lambda self, row: (
        "diverged here by the test" if row["epoch"] == 2 else divergence(self, row)))
    code, reached = _point_task(out)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert reached == [] and code == 128 + signal.SIGTERM
    assert f"its run {str(folder)!r} diverged" in err and "stopped with a checkpoint" not in err, err
    assert runs.recorded_status(folder) == "diverged" and not (folder / locks.LOCK).exists()
    assert not checkpoints.has_checkpoint(folder)
    assert sweep.summary(out)["status"].tolist() == ["diverged"]


def test_sigterm_before_a_task_opens_a_run_an_earlier_attempt_left_failed_names_no_run(tmp_path, monkeypatch, capsys):
    """A task's run already reads "failed" (an earlier attempt ended by SIGTERM as it finished, after a checkpoint).
    SIGTERM to the next task before it opens that run (as it takes the run folder's lock): the task did not end the
    run, so Terminated names no failed or stopped run and the message names no folder; the folder is as the earlier
    attempt left it."""
    out = tmp_path / "out"
    folder = out / "seed-0"
    args = ["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
            "--point", "0"]

    assert sweep.main([*args, "--set", "max_train_s=0"])["status"].tolist() == ["stopped"]
    with monkeypatch.context() as m:
        _sigterm_at_finish(m)
        with pytest.raises(SystemExit):
            sweep.main(args)
    assert runs.recorded_status(folder) == "failed"
    before = _files(folder)
    capsys.readouterr()
    monkeypatch.setattr(locks, "lock_runs", _sigterm)
    with locks.sigterm_raises(), pytest.raises(locks.Terminated) as ended:
        sweep.run_point({"seed": [0]}, TINY, out, 0)
    assert ended.value.failed_run is None and ended.value.stopped_run is None
    with pytest.raises(SystemExit) as exited:
        sweep.main(args)
    assert exited.value.code == 128 + signal.SIGTERM and str(folder) not in capsys.readouterr().err
    assert _files(folder) == before and runs.recorded_status(folder) == "failed"


#: A sitecustomize module that sends its own process SIGTERM as the process imports pandas, which nclib.sweep
#: imports before its command line has set its SIGTERM handler.
_SIGTERM_AT_IMPORT = """
import importlib.abc, os, signal, sys

class SigtermAtImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            os.kill(os.getpid(), signal.SIGTERM)

sys.meta_path.insert(0, SigtermAtImport())
"""


def test_sigterm_as_a_task_starts_up_ends_it_at_once_printing_and_writing_nothing(tmp_path):
    """SIGTERM to a task while Python imports the command's modules (here as it imports pandas), before the command
    line has set its handler: the signal's default ends the process at once (status 143 to the shell, -SIGTERM to
    Popen), with nothing on stdout or stderr and nothing written, the output folder not even made."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_SIGTERM_AT_IMPORT)
    out = tmp_path / "out"
    task = subprocess.run([sys.executable, "-m", "nclib.sweep", "--grid", "seed=0",
                           *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out), "--point", "0"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)])})
    assert task.returncode == -signal.SIGTERM, task.stderr
    assert task.stdout == "" and task.stderr == "" and not out.exists()


def test_sigterm_to_a_local_sweep_leaves_its_runs_dead_with_this_hosts_lock(tmp_path, monkeypatch):
    """SIGTERM to a sweep on a local cluster (the time limit of the batch job it runs in): status 143, the cluster
    closed, and the run its worker was training left dead with the lock file of this host, which a later call on
    this host takes over and one on another host refuses (here this host seen under another name): the reason a
    batch job trains the points as a job array's tasks."""
    out = tmp_path / "out"
    folder = out / "seed-0"
    sets = [f"--set={k}={_text(v)}" for k, v in {**TINY, "epochs": 10 ** 6, "metric_every": 100}.items()]
    proc = subprocess.Popen([sys.executable, "-m", "nclib.sweep", "--grid", "seed=0", *sets, "--out-dir", str(out),
                             "--workers", "1", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:  # polled: the run trains, past its first rows
        while proc.poll() is None and not ((folder / "history.csv").is_file()
                                           and len(runs.load_history(folder)["epoch"]) >= 2):
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.terminate()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert runs.run_status(folder) == "dead"
    assert locks.read_lock_file(folder / locks.LOCK)["host"] == socket.gethostname()
    assert sweep.next_step(folder) == ("dead", "start")  # this host: its lock taken over, the run trained again
    monkeypatch.setattr(socket, "gethostname", lambda: "another-node")
    assert sweep.next_step(folder) == ("dead", "refuse")  # another host: refused until the lock file is removed


def test_the_lock_left_by_a_writer_on_another_host_is_reported_not_passed_over(scheduler, tmp_path):
    """A run stopped, then killed on another node of a cluster: its lock names that host, and no live process
    holds it here.  Whether that writer has ended cannot be seen from this host, so the run is not trained; the
    table says why (the lock file to remove), and once it is removed the next sweep resumes the run."""
    out = tmp_path / "sweep"
    grid = {"seed": [0]}
    name = run_name_for(expand_grid(grid)[0])
    with worker_threads():
        train.run(**TINY, seed=0, out_dir=out, run_name=name, max_train_s=0, progress=False)
    _kill(out / name)
    (out / name / locks.LOCK).write_text(json.dumps({"pid": 12, "host": "another-node"}) + "\n")
    before = _files(out / name)
    assert sweep.next_step(out / name) == ("dead", "refuse")  # what a listing of the points says, too
    assert sweep.list_points(grid, TINY, out)["next"].tolist() == ["refuse"]
    df = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert df["status"].tolist() == ["dead"] and sweep.exit_status(df) == 1
    assert "another host 'another-node'" in df["error"][0] and str(out / name / locks.LOCK) in df["error"][0]
    assert _files(out / name) == before
    (out / name / locks.LOCK).unlink()
    assert sweep.next_step(out / name) == ("dead", "resume")
    again = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert again["status"].tolist() == ["finished"] and again["error"].isna().all()
    assert sweep.exit_status(again) == 0
    prov = json.loads((out / name / "provenance.json").read_text())
    assert [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == [(0, 2), (2, 4)]


def test_a_workers_warnings_come_back_as_the_commands_notes(scheduler, tmp_path, capsys):
    """A Dask worker takes over the lock of a writer killed on this host: its warning is a note line of the command,
    not a warning in the worker's log."""
    out = tmp_path / "out"
    with worker_threads():
        train.run(**TINY, seed=0, out_dir=out, run_name="seed-0", max_train_s=0, progress=False)
    _kill(out / "seed-0")
    capsys.readouterr()
    table = sweep.main(["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir",
                        str(out), "--scheduler", scheduler, "--no-progress"])
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{sweep.PROG}: note: ")]
    assert table["status"].tolist() == ["finished"]
    assert len(notes) == 1 and str(out / "seed-0") in notes[0] and str(2 ** 22 + 1) in notes[0], notes


def test_the_table_reports_the_lock_of_another_host_as_the_refusal_the_next_call_meets(tmp_path, capsys):
    """The fault: a dead run whose lock file names another node read as resumable in the table (no error, exit 0:
    "the next submission resumes it") while --list-points said refuse.  The table and the list give the error the
    next task meets, naming the lock file to remove (exit 1); once it is removed the run is resumable again.  A
    finished run, which the next call keeps whatever lock file it holds, carries no such error."""
    out = tmp_path / "out"
    grid = {"seed": [0, 1, 2]}
    for i in (0, 1):
        sweep.run_point(grid, {**TINY, "max_train_s": 0}, out, i)
    sweep.run_point(grid, TINY, out, 2)
    for name in ("seed-0", "seed-1"):
        _kill(out / name)
    for name in ("seed-1", "seed-2"):
        (out / name / locks.LOCK).write_text(json.dumps({"pid": 4242, "host": "node17"}) + "\n")
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    listed = sweep.list_points(grid, TINY, out)
    capsys.readouterr()
    assert table["status"].tolist() == ["dead", "dead", "finished"] and sweep.exit_status(table) == 1
    assert table["error"].isna().tolist() == [True, False, True]
    assert table["error"][1].startswith("RunLockedElsewhere: ") and "another host 'node17'" in table["error"][1]
    assert str(out / "seed-1" / locks.LOCK) in table["error"][1]
    assert listed["next"].tolist() == ["resume", "refuse", "keep"]
    assert listed["error"].tolist() == table["error"].tolist()
    (out / "seed-1" / locks.LOCK).unlink()
    again = sweep.summary(out)
    assert again["error"].isna().all() and sweep.exit_status(again) == 0
    assert sweep.list_points(grid, TINY, out)["next"].tolist() == ["resume", "resume", "keep"]


def test_a_task_refused_for_the_lock_of_another_host_is_no_error_once_the_lock_is_removed(tmp_path, capsys):
    """The fault: a task resubmitted on another node was refused (RunLockedElsewhere), sweep.json kept that error,
    and the table and the list of points gave it before they looked at the folder again: once the lock file it named
    was removed, --summary-only still showed the error and exited 1 until the point was trained again.  A saved
    refusal of that kind holds only while the folder still holds the lock file of another host: for a dead run
    (seed-1) and for a finished one whose folder a task was refused (seed-2)."""
    out = tmp_path / "out"
    grid = {"seed": [0, 1, 2]}
    args = ["--grid", "seed=0,1,2", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out)]
    sweep.run_point(grid, TINY, out, 0)
    sweep.run_point(grid, {**TINY, "max_train_s": 0}, out, 1)
    sweep.run_point(grid, TINY, out, 2)
    _kill(out / "seed-1")
    for name in ("seed-1", "seed-2"):
        (out / name / locks.LOCK).write_text(json.dumps({"pid": 4242, "host": "node-other"}) + "\n")
    for i, status in ((1, "dead"), (2, "finished")):
        refused = sweep.main([*args, "--point", str(i)])
        assert refused["status"].tolist() == [status] and sweep.exit_status(refused) == 1
        assert refused["error"][0].startswith("RunLockedElsewhere: ")
    saved = json.loads((out / sweepmanifest.MANIFEST).read_text())["errors"]
    assert sorted(saved) == ["seed-1", "seed-2"] and all(e.startswith("RunLockedElsewhere: ") for e in saved.values())
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    assert table["error"].notna().tolist() == [False, True, True] and sweep.exit_status(table) == 1
    (out / "seed-1" / locks.LOCK).unlink()
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    listed = sweep.main([*args, "--list-points"])
    assert table["error"].notna().tolist() == [False, False, True] and sweep.exit_status(table) == 1
    assert listed["error"].tolist() == table["error"].tolist() and listed["next"].tolist()[:2] == ["keep", "resume"]
    assert str(out / "seed-2" / locks.LOCK) in table["error"][2]
    (out / "seed-2" / locks.LOCK).unlink()
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    capsys.readouterr()
    assert table["status"].tolist() == ["finished", "dead", "finished"]
    assert table["error"].isna().all() and sweep.exit_status(table) == 0
    assert sweep.list_points(grid, TINY, out)["error"].isna().all()


def test_a_rerun_of_a_finished_sweep_reaches_no_cluster(tmp_path, monkeypatch):
    """Every point of the grid finished: a rerun trains nothing, and neither starts a local cluster nor connects to a
    scheduler (nclib.sweep._client, which does both, is never called); it returns the table."""
    out = tmp_path / "out"
    for point in range(2):
        sweep.run_point({"seed": [0, 1]}, TINY, out, point)
    reached = []

    def no_cluster(*args, **kwargs):
        reached.append(args)
        raise OSError("no cluster here")

    monkeypatch.setattr(sweep, "_client", no_cluster)
    for kw in ({}, {"workers": 2}, {"scheduler": "tcp://127.0.0.1:1"}):
        table = sweep.run_sweep({"seed": [0, 1]}, TINY, out, progress=False, **kw)
        assert table["status"].tolist() == ["finished", "finished"] and sweep.exit_status(table) == 0
    assert reached == []


def test_a_rerun_whose_only_run_left_is_being_written_by_another_process_reaches_no_cluster(tmp_path, monkeypatch):
    """Every point finished but one, whose folder another live process holds (a task of a job array training it):
    the rerun leaves that run to its writer, trains nothing and reaches no cluster (nclib.sweep._client is never
    called); its table reports the run as running."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0, 1]}, TINY, out, 0)
    reached = []

    def no_cluster(*args, **kwargs):
        reached.append(args)
        raise OSError("no cluster here")

    monkeypatch.setattr(sweep, "_client", no_cluster)
    holder = _hold_lock(out / "seed-1")
    try:
        assert sweep.next_step(out / "seed-1") == ("running", "leave")
        with pytest.warns(sweep.RunLeft) as left:
            table = sweep.run_sweep({"seed": [0, 1]}, TINY, out, progress=False)
        assert table["status"].tolist() == ["finished", "running"] and table["error"].isna().all()
        assert reached == [] and sorted(p.name for p in (out / "seed-1").iterdir()) == [locks.LOCK]
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert [_names_holder(str(w.message), out / "seed-1", holder.pid) for w in left] == [True]


def _names_holder(message: str, run_dir, pid: int) -> bool:
    """Whether ``message`` names the run folder ``run_dir`` and the process ``pid`` of this host holding it."""
    rest = message.replace(repr(str(run_dir)), "", 1)
    return rest != message and re.search(rf"\b{pid}\b", rest) is not None and repr(socket.gethostname()) in rest


def test_a_task_whose_point_another_process_trains_leaves_it_and_names_that_process(tmp_path, capsys):
    """A job array submitted twice: the second task of a point finds its run folder's lock held by a live process
    (the first task).  It trains nothing and exits with status 0, the run reported as running with no error, and a
    note names the run folder and the pid and host of the process holding it (nclib.sweep.RunLeft): before, the
    task printed only the run's name and "running", like a success."""
    out = tmp_path / "out"
    folder = out / "seed-0"
    holder = _hold_lock(folder)
    try:
        capsys.readouterr()
        table = sweep.main(["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()],
                            "--out-dir", str(out), "--point", "0"])
        err = capsys.readouterr().err
        with pytest.warns(sweep.RunLeft) as left:
            again = sweep.run_point({"seed": [0]}, TINY, out, 0)
        assert sorted(p.name for p in folder.iterdir()) == [locks.LOCK]  # nothing written beside the lock
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    for t in (table, again):
        assert t["status"].tolist() == ["running"] and t["error"].isna().all() and sweep.exit_status(t) == 0
    notes = [line for line in err.splitlines() if f"{sweep.PROG}: note: " in line]
    assert [_names_holder(n, folder, holder.pid) for n in notes] == [True], err
    assert [_names_holder(str(w.message), folder, holder.pid) for w in left] == [True]
    assert all("another process" in str(w.message) for w in left), left
    assert sweep.run_point({"seed": [0]}, TINY, out, 0)["status"].tolist() == ["finished"]  # once it has ended


def test_a_point_whose_lock_this_process_holds_is_left_with_a_note_naming_this_process(tmp_path, monkeypatch):
    """The fault: a point whose run folder's lock the very process taking it up holds (a lock taken by hand in a
    notebook, another thread's run) was left with a note saying that another process trained it, under this
    process's own pid.  A task (run_point) and a sweep (run_sweep, whose plan leaves the point) now name this process
    as the holder, with its pid and host; the run folder stays as it was, and nothing reaches a cluster."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0, 1]}, TINY, out, 0)
    reached = []
    monkeypatch.setattr(sweep, "_client", lambda *args, **kwargs: reached.append(args))
    folder = out / "seed-1"
    lock = locks.lock_run(folder, retry_s=0)
    try:
        record = (folder / locks.LOCK).read_bytes()
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            task = sweep.run_point({"seed": [0, 1]}, TINY, out, 1)
            table = sweep.run_sweep({"seed": [0, 1]}, TINY, out, progress=False)
        assert sorted(p.name for p in folder.iterdir()) == [locks.LOCK]
        assert (folder / locks.LOCK).read_bytes() == record
    finally:
        lock.release()
    assert task["status"].tolist() == ["running"] and task["error"].isna().all() and sweep.exit_status(task) == 0
    assert table["status"].tolist() == ["finished", "running"] and table["error"].isna().all() and reached == []
    left = [str(w.message) for w in notes if w.category is sweep.RunLeft]
    assert [_names_holder(m, folder, os.getpid()) for m in left] == [True, True], [str(w.message) for w in notes]
    assert not any("another process" in m for m in left), left


def test_a_sweep_with_nothing_to_train_clears_the_errors_its_folders_replaced(scheduler, tmp_path):
    """A run kept as finished while sweep.json still holds an error from an earlier sweep (a lock of another host,
    since removed, and the run finished by hand): the rerun trains nothing and writes the manifest without it."""
    out = tmp_path / "sweep"
    grid = {"seed": [0]}
    first = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert first["status"].tolist() == ["finished"]
    manifest = json.loads((out / sweepmanifest.MANIFEST).read_text())
    manifest["errors"] = {first["run_name"][0]: "RunLockedElsewhere: lock of pid 1 on host other"}
    (out / sweepmanifest.MANIFEST).write_text(json.dumps(manifest))
    # the table reads no error (no lock file of another host is left), though sweep.json still holds it
    assert sweep.exit_status(sweep.summary(out)) == 0
    assert list(json.loads((out / sweepmanifest.MANIFEST).read_text())["errors"]) == [first["run_name"][0]]
    again = sweep.run_sweep(grid, TINY, out, scheduler=scheduler, progress=False)
    assert again["error"].isna().all() and sweep.exit_status(again) == 0
    assert json.loads((out / sweepmanifest.MANIFEST).read_text())["errors"] == {}


# ------------------------------------------------------------------------------------------ reruns that must not mix

@pytest.mark.parametrize("left", ["stopped", "dead"])
def test_a_run_another_process_finishes_before_the_lock_is_kept_not_trained_again(tmp_path, monkeypatch, left):
    """Between a sweep's reading of a run folder and its taking the folder's lock another writer finishes the run
    (here: in that gap, a stopped run resumed, a dead run without a checkpoint started again).  The task decides what
    the folder needs only under the lock, so it keeps the finished run: no error, not one byte changed."""
    p = train.check_params(**TINY, out_dir=tmp_path, run_name="r")
    folder = tmp_path / "r"
    if left == "stopped":
        train.run(**{**p, "max_train_s": 0})
    else:
        train.run(**p)
        _kill(folder)  # dead, without a checkpoint: the sweep would start it again
    assert sweep.next_step(folder) == (left, "resume" if left == "stopped" else "start")
    real, other = locks.lock_runs, {}

    def another_writer_first(run_dirs, *args, **kw):
        if not other:
            monkeypatch.setattr(locks, "lock_runs", real)
            # the other writer takes over the lock the killed writer left (a warning says so)
            with pytest.warns(RuntimeWarning, match="taking over the lock") if left == "dead" else \
                    contextlib.nullcontext():
                train.run(**{**p, "resume": left == "stopped", "overwrite": left == "dead"})
            other["files"] = _files(folder)
        return real(run_dirs, *args, **kw)

    monkeypatch.setattr(locks, "lock_runs", another_writer_first)
    result = sweep._run_point(p)
    assert other["files"] and runs.run_status(folder) == "finished"
    assert result == {"status": "finished", "error": None, "restarted": None, "fresh": False, "warnings": [],
                      "state": sweepmanifest.folder_state(folder)}
    assert _files(folder) == other["files"]


def test_a_rerun_loads_each_data_selection_once_to_check_the_runs_it_keeps(scheduler, tmp_path, monkeypatch):
    """The waste: a rerun compared each run it kept with the data its data_path holds now by loading the data once
    per run, so that a sweep of many points on one data selection read and decoded the file once per point.  The
    data are now loaded once per selection (the data-defining parameters, nclib.data.LOAD_KEYS: here the seed,
    which draws the order), and a rewritten file is still found in every run that the selection's load checks."""
    path = tmp_path / "data.npz"
    write = _data_writer(path, seed=1)

    write()
    fixed = {**{k: v for k, v in TINY.items() if k not in ("dim", "lr", "counts")}, "dataset": "cifar10",
             "data_path": str(path), "counts": [10, 10, 10]}
    grid, out = {"lr": [1e-2, 2e-2, 5e-3], "seed": [0, 1]}, tmp_path / "out"
    first = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert first["status"].tolist() == ["finished"] * 6
    loads = []
    real = runplan.load_for

    def counted(params):
        loads.append(params["seed"])
        return real(params)

    monkeypatch.setattr(runplan, "load_for", counted)
    again = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert again["status"].tolist() == ["finished"] * 6 and sweep.exit_status(again) == 0
    assert sorted(loads) == [0, 1]  # once per seed, not once per run (six before)
    write()  # other data at the same path: every kept run is an error, from the two loads alone
    loads.clear()
    other = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert sorted(loads) == [0, 1] and all(e.startswith("OtherData:") for e in other["error"])
    path.write_bytes(b"not a zip archive\n")  # a file that no longer loads: tried once per selection too
    loads.clear()
    damaged = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert sorted(loads) == [0, 1] and all("does not load" in e for e in damaged["error"])


def test_a_rerun_keeps_a_run_only_for_the_data_its_file_holds_now(scheduler, tmp_path, capsys):
    """The fault: a rerun kept, and listed "finished" without a word, a run whose data file had been rewritten at its
    path since (train.plan refused the same run).  A run the sweep would keep, finished or diverged, is compared with
    the data its data_path holds now, by the sweep and by a task of a job array under the folder's lock: on other
    data, or a file that no longer loads, it is an error of the table (exit status 1, a divergence included), and is
    neither kept silently nor trained again; --summary-only keeps the error; the data put back, the runs are kept."""
    path = tmp_path / "data.npz"
    write = _data_writer(path, seed=0)

    write()
    theirs = path.read_bytes()
    fixed = {**{k: v for k, v in TINY.items() if k not in ("dim", "lr")}, "dataset": "cifar10",
             "data_path": str(path)}
    grid, out = {"lr": [1e-2, 1e3]}, tmp_path / "out"  # lr = 1000 diverges
    first = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert first["status"].tolist() == ["finished", "diverged"] and sweep.exit_status(first) == 0
    names = first["run_name"].tolist()
    before = {n: _files(out / n) for n in names}
    shas = [json.loads((out / n / "provenance.json").read_text())["data_sha256"] for n in names]
    write()  # other data at the same path
    again = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert again["status"].tolist() == ["finished", "diverged"]
    for name, sha, error in zip(names, shas, again["error"]):
        assert error.startswith("OtherData:") and _names(error, str(out / name), str(path), sha[:12])
    assert sweep.exit_status(again) == 1 and sweep.exit_status(again.iloc[[1]]) == 1  # the diverged run's too
    assert {n: _files(out / n) for n in names} == before  # nothing trained, nothing deleted
    # each error saved with the state of its folder, so that it leaves the table once a later call rewrote the folder
    assert sweepmanifest.read_manifest(out)["error_states"] == {n: sweepmanifest.folder_state(out / n) for n in names}
    summary = sweep.main(["--summary-only", "--out-dir", str(out)])  # rebuilt from the folders and sweep.json
    assert summary["error"].tolist() == again["error"].tolist()
    for i, name in enumerate(names):  # a task of a job array, deciding under the folder's lock
        row = sweep.run_point(grid, fixed, out, i)
        assert row["status"].tolist() == [again["status"][i]] and row["error"].tolist() == [again["error"][i]]
    assert sweepmanifest.read_manifest(out)["errors"] == dict(zip(names, again["error"]))
    path.write_bytes(b"garbage, not a zip archive of arrays\n" * 4)  # a file that no longer loads: not confirmed
    damaged = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert all(e.startswith("OtherData:") and "does not load" in e for e in damaged["error"])
    assert sweep.exit_status(damaged) == 1 and {n: _files(out / n) for n in names} == before
    path.write_bytes(theirs)  # the runs' data back: kept, without an error
    kept = sweep.run_sweep(grid, fixed, out, scheduler=scheduler, progress=False)
    assert kept["status"].tolist() == ["finished", "diverged"] and sweep.exit_status(kept) == 0
    assert kept["error"][0] is None or pd.isna(kept["error"][0])
    assert kept["error"][1] == json.loads((out / names[1] / "provenance.json").read_text())["error"]
    assert sweepmanifest.read_manifest(out)["errors"] == {} and {n: _files(out / n) for n in names} == before
    capsys.readouterr()


UNTIED = {k: v for k, v in TINY.items() if k != "lam_H"}  # lam_H at its default, or tied to lam_W


@pytest.mark.parametrize("left", ["finished", "stopped"])
def test_a_run_another_call_made_after_the_plan_is_refused_under_the_lock_not_taken_for_this_one(tmp_path, left):
    """The fault: two calls differing only in a tie (lam_H tied to lam_W, or at its default) name their run
    lam_W-0.1 alike.  B plans while the folder is empty, A then trains there, and B's worker kept A's run as its own
    (a finished one) or resumed it, or with restart_refused deleted it: B's run never existed.  Under the lock B
    compares its parameters with the folder's, as its plan does: an error naming lam_H, A's run left as it is.  The
    table keeps that error (exit status 1) while the folder holds A's run, finished or not: B's point has no run of
    its own."""
    out = tmp_path / "out"
    planned = sweep.plan({"lam_W": [0.1]}, UNTIED, out)  # B, before A's run exists
    assert planned[0]["params"]["run_name"] == "lam_W-0.1" and planned[0]["params"]["lam_H"] != 0.1
    a = sweep.run_point({"lam_W": [0.1]}, {**UNTIED, "max_train_s": 0 if left == "stopped" else None}, out, 0,
                        tie={"lam_H": "lam_W"})
    assert a["status"].tolist() == [left] and a["lam_H"].tolist() == [0.1]
    before = _files(out / "lam_W-0.1")
    result = sweep._run_point(planned[0]["params"], restart_refused=True)
    assert result["status"] == left and result["fresh"] is False and result["restarted"] is None
    folder = str(out / "lam_W-0.1")
    assert result["error"].startswith("RunExists: ") and folder in result["error"]
    assert _names(result["error"].replace(folder, ""), "lam_H", "0.1", str(planned[0]["params"]["lam_H"]))
    assert _files(out / "lam_W-0.1") == before
    sweepmanifest.update_manifest(out, lambda m: sweepmanifest.record_result(m, "lam_W-0.1", result))
    table = sweep.summary(out)
    assert table["status"].tolist() == [left] and table["error"].tolist() == [result["error"]]
    assert sweep.exit_status(table) == 1
    with pytest.raises(ValueError, match="lam_H"):  # as B's plan now refuses it
        sweep.plan({"lam_W": [0.1]}, UNTIED, out)


def test_a_tie_is_one_setting_of_the_folder_as_a_fixed_value_is(tmp_path, monkeypatch):
    """Two tasks of a job array, one of a call that ties lam_H to lam_W, the other of a call that leaves lam_H at
    its default: B plans, A trains its point and records its call, then B records its call: refused, naming lam_H
    and both settings, before B trains anything.  The same tie is the same call; a grid over lam_H sweeps it."""
    out = tmp_path / "out"
    real_plan, a_made = sweep.plan, {}

    def a_between(*args, **kw):  # B's plan, then A's whole task, then the rest of B's task
        planned = real_plan(*args, **kw)
        monkeypatch.setattr(sweep, "plan", real_plan)
        sweep.run_point({"lam_W": [0.1]}, UNTIED, out, 0, tie={"lam_H": "lam_W"})
        a_made.update(_files(out / "lam_W-0.1"))
        return planned

    monkeypatch.setattr(sweep, "plan", a_between)
    with pytest.raises(ValueError, match=r"^fixed\['lam_H'\]") as refused:
        sweep.run_point({"lam_W": [0.1]}, UNTIED, out, 0)
    assert _names(refused.value, "--set lam_H", "--tie lam_H=lam_W", "'reference'")  # A's tie, B's default
    assert a_made and _files(out / "lam_W-0.1") == a_made and runs.read_params(out / "lam_W-0.1")["lam_H"] == 0.1
    manifest = sweepmanifest.read_manifest(out)
    assert [c["tie"] for c in manifest["calls"]] == [{"lam_H": "lam_W"}]  # B's call not recorded
    tied = sweepmanifest.call_record({"lam_W": [0.1, 1.0]}, UNTIED, {"lam_H": "lam_W"})
    sweepmanifest.check_fixed(tied, manifest, out)  # the same tie, another grid: accepted
    sweepmanifest.check_fixed(sweepmanifest.call_record({"lam_W": [0.1], "lam_H": [0.1, 1.0]}, UNTIED, {}),
                              manifest, out)  # lam_H swept by a grid: accepted
    for grid, tie, named in (({"lam_W": [0.1], "lr": [0.01]}, {"lam_H": "lr"}, r"^tie\['lam_H'\] \(--tie lam_H\)"),
                             ({"lam_W": [0.1]}, {}, r"^fixed\['lam_H'\]")):  # tied to another, or at its default
        with pytest.raises(ValueError, match=named):
            sweepmanifest.check_fixed(sweepmanifest.call_record(grid, {k: v for k, v in UNTIED.items()
                                                                       if k not in grid}, tie), manifest, out)
    # and the other way round: a tie after a call that fixed the parameter
    fixed_first = {"runs": {}, "errors": {}, "calls": [sweepmanifest.call_record({"lam_W": [0.1]}, TINY, {})]}
    with pytest.raises(ValueError, match=r"^tie\['lam_H'\]") as refused:
        sweepmanifest.check_fixed(tied, fixed_first, out)
    assert _names(refused.value, "0.001", "--tie lam_H=lam_W")


def test_a_parameter_that_any_calls_grid_sweeps_is_fixed_by_no_call(tmp_path):
    """A swept lam_W and seed; B fixes seed = 1, C leaves it at its default, 0: beside A both are accepted, in either
    order, since the folder's runs already differ in seed.  Without A, B and C refuse each other, naming seed, and A
    recorded after one of them lets the other in."""
    out = tmp_path / "out"
    a = sweepmanifest.call_record({"lam_W": [1e-3, 1e-2], "seed": [0, 1]}, TINY, {})
    b = sweepmanifest.call_record({"lam_W": [1e-3, 1e-2]}, {**TINY, "seed": 1}, {})
    c = sweepmanifest.call_record({"lam_W": [1e-3, 1e-2]}, TINY, {})

    def record(*calls):
        return {"runs": {}, "errors": {}, "calls": list(calls)}

    for first, second in ((b, c), (c, b)):
        sweepmanifest.check_fixed(first, record(a), out)
        sweepmanifest.check_fixed(second, record(a, first), out)
        with pytest.raises(ValueError, match=r"^fixed\['seed'\]"):
            sweepmanifest.check_fixed(second, record(first), out)
        sweepmanifest.check_fixed(a, record(first), out)
        sweepmanifest.check_fixed(second, record(first, a), out)
    # a parameter no grid sweeps is still one value in every call: lr fixed otherwise beside A is refused
    with pytest.raises(ValueError, match=r"^fixed\['lr'\]"):
        sweepmanifest.check_fixed(sweepmanifest.call_record({"seed": [2]}, {**TINY, "lr": 0.5}, {}), record(a, b, c),
                                  out)
    assert not out.exists()


def test_a_stopped_run_that_cannot_resume_here_says_what_resumes_it_and_restarts_when_asked(scheduler, tmp_path,
                                                                                              capsys):
    """A run stopped on another CPU model cannot resume here: the sweep leaves it as it is and reports it (exit 1)
    with the remedies named; --restart-refused trains it again from the start and the table says why."""
    out = tmp_path / "sweep"
    first = sweep.run_sweep({"seed": [0]}, {**TINY, "max_train_s": 0}, out, scheduler=scheduler, progress=False)
    folder = out / first["run_name"][0]
    prov_path = folder / "provenance.json"
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "host_cpu": "Another CPU (AVX512)"}))
    before = _files(folder)
    args = ["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
            "--scheduler", scheduler, "--no-progress"]
    df = sweep.main(args)
    assert df["status"].tolist() == ["stopped"] and sweep.exit_status(df) == 1
    assert "another CPU" in df["error"][0] and "--restart-refused" in df["error"][0]
    assert _files(folder) == before
    again = sweep.main([*args, "--restart-refused"])
    capsys.readouterr()
    assert again["status"].tolist() == ["finished"] and sweep.exit_status(again) == 0
    assert again["restarted"][0].startswith("ResumeRefused: ") and again["error"].isna().all()
    assert [(s["from_epoch"], s["to_epoch"]) for s in json.loads(prov_path.read_text())["segments"]] == [(0, 4)]


def _elsewhere_cpu(run_dir):
    """Make the run of run_dir look stopped on another CPU model: its resume is refused here."""
    prov_path = run_dir / "provenance.json"
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "host_cpu": "Another CPU (AVX512)"}))


def _train_at_the_second_lock(monkeypatch, folder, params, then=None):
    """Make another writer train ``params`` into ``folder`` from the start to its end just before a worker's second
    lock of the folder (the one after a refused resume), and call ``then`` (if given) after it.  Returns (the run
    lists each lock was asked for, {"files": the folder's files as that writer left them})."""
    real, calls, other = locks.lock_runs, [], {}

    def another_writer_second(run_dirs, *args, **kw):
        calls.append(list(run_dirs))
        if len(calls) == 2:  # the lock after the refused resume
            monkeypatch.setattr(locks, "lock_runs", real)
            train.run(**{**params, "overwrite": True})
            other["files"] = _files(folder)
            if then is not None:
                then()
        return real(run_dirs, *args, **kw)

    monkeypatch.setattr(locks, "lock_runs", another_writer_second)
    return calls, other


def test_a_run_another_process_finishes_after_a_refused_resume_is_kept_not_an_error(tmp_path, monkeypatch):
    """The resume of a stopped run is refused (it stopped on another CPU model); before the worker locks the folder
    again to decide what follows, another writer trains the run from the start to its end.  The worker keeps that
    finished run: no error, nothing trained again, not one byte changed."""
    p = train.check_params(**TINY, out_dir=tmp_path, run_name="r")
    folder = tmp_path / "r"
    train.run(**{**p, "max_train_s": 0})
    _elsewhere_cpu(folder)
    calls, other = _train_at_the_second_lock(monkeypatch, folder, p)
    result = sweep._run_point(p)
    assert len(calls) == 2 and other["files"] and runs.run_status(folder) == "finished"
    assert result == {"status": "finished", "error": None, "restarted": None, "fresh": False, "warnings": [],
                      "state": sweepmanifest.folder_state(folder)}
    assert _files(folder) == other["files"]


def test_a_run_another_process_finishes_after_a_refused_resume_on_data_rewritten_since_is_an_error(tmp_path,
                                                                                                    monkeypatch):
    """As above, on a data file: another writer trains the run to its end before the worker's second lock, and the
    file is then rewritten at its path.  Under the second lock the worker compares the finished run with the data
    the file holds now, as under the first: an OtherData error naming the folder and the file, the run neither kept
    as this point's result nor trained again, not one byte changed."""
    path = tmp_path / "data.npz"
    write = _data_writer(path, seed=2)

    write()
    on_file = {**{k: v for k, v in TINY.items() if k != "dim"}, "dataset": "cifar10", "data_path": str(path)}
    p = train.check_params(**on_file, out_dir=tmp_path / "out", run_name="r")
    folder = tmp_path / "out" / "r"
    train.run(**{**p, "max_train_s": 0})
    _elsewhere_cpu(folder)
    calls, other = _train_at_the_second_lock(monkeypatch, folder, p, then=write)
    result = sweep._run_point(p)
    assert len(calls) == 2 and other["files"] and runs.run_status(folder) == "finished"
    assert result["status"] == "finished" and result["restarted"] is None and result["fresh"] is False
    assert result["error"].startswith("OtherData:") and _names(result["error"], str(folder), str(path))
    assert _files(folder) == other["files"]


def test_a_run_with_other_parameters_made_after_a_refused_resume_is_refused_under_the_second_lock(tmp_path,
                                                                                                     monkeypatch):
    """The resume of a stopped run is refused (it stopped on another CPU model); before the worker locks the folder
    again to decide what follows, another call trains a run with another learning rate in that folder to its end.
    Under the second lock the worker compares its parameters with the folder's, as under the first: an error naming
    lr and both values, nothing trained again (restart_refused notwithstanding), the other run left as it is."""
    p = train.check_params(**TINY, out_dir=tmp_path, run_name="r")
    folder = tmp_path / "r"
    train.run(**{**p, "max_train_s": 0})
    _elsewhere_cpu(folder)
    calls, other = _train_at_the_second_lock(monkeypatch, folder, {**p, "lr": 0.02})
    result = sweep._run_point(p, restart_refused=True)
    assert len(calls) == 2 and other["files"] and runs.run_status(folder) == "finished"
    assert result["status"] == "finished" and result["restarted"] is None and result["fresh"] is False
    assert result["error"].startswith("RunExists: ") and _names(result["error"], "lr", "0.02", "0.01")
    assert _files(folder) == other["files"]


def test_a_task_of_a_job_array_restarts_a_refused_run_when_asked(tmp_path, capsys):
    """--point I --restart-refused, as a whole sweep's flag does: a stopped run that cannot resume here (another CPU
    model) is an error naming the flag without it, and with it is trained again from the start, the table saying
    why."""
    out = tmp_path / "out"
    args = ["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
            "--point", "1"]
    stopped = sweep.main([*args, "--set", "max_train_s=0"])
    assert stopped["status"].tolist() == ["stopped"] and stopped["run_name"].tolist() == ["seed-1"]
    _elsewhere_cpu(out / "seed-1")
    before = _files(out / "seed-1")
    refused = sweep.main(args)
    assert refused["status"].tolist() == ["stopped"] and sweep.exit_status(refused) == 1
    assert "another CPU" in refused["error"][0] and "--restart-refused" in refused["error"][0]
    assert _files(out / "seed-1") == before
    again = sweep.main([*args, "--restart-refused"])
    capsys.readouterr()
    assert again["status"].tolist() == ["finished"] and sweep.exit_status(again) == 0
    assert again["restarted"][0].startswith("ResumeRefused: ") and again["error"].isna().all()
    prov = json.loads((out / "seed-1" / "provenance.json").read_text())
    assert [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == [(0, 4)]


def test_a_grid_parameter_added_later_finds_its_runs_under_their_first_names(scheduler, tmp_path):
    """--grid lam_W=... and then --grid lam_W=... --grid seed=0,1: seed 0 is the default, so the points with seed 0
    are the runs already there; they keep their folders (untouched) and the table lists every run once."""
    out = tmp_path / "sweep"
    first = sweep.run_sweep({"lam_W": [1e-3, 1e-1]}, TINY, out, scheduler=scheduler, progress=False)
    kept = {n: _files(out / n) for n in first["run_name"]}
    df = sweep.run_sweep({"lam_W": [1e-3, 1e-1], "seed": [0, 1]}, TINY, out, scheduler=scheduler, progress=False)
    assert sorted(d.name for d in out.iterdir() if d.is_dir()) == \
        ["lam_W-0.001", "lam_W-0.001_seed-1", "lam_W-0.1", "lam_W-0.1_seed-1"]
    assert df["run_name"].tolist() == ["lam_W-0.001", "lam_W-0.001_seed-1", "lam_W-0.1", "lam_W-0.1_seed-1"]
    assert df["seed"].tolist() == [0, 1, 0, 1] and df["lam_W"].tolist() == [1e-3, 1e-3, 1e-1, 1e-1]  # grid order
    assert (df["status"] == "finished").all() and len(set(df["final_objective"])) == 4
    assert {n: _files(out / n) for n in first["run_name"]} == kept
    # and the other way round: a point without seed is the run of seed 0
    planned = sweep.plan({"lam_W": [1e-3]}, TINY, out)
    assert [q["params"]["run_name"] for q in planned] == ["lam_W-0.001"]


def test_a_plan_compares_each_point_only_with_the_folders_that_may_hold_its_run(tmp_path, monkeypatch):
    """The waste: a point whose name had no folder yet was compared with every run folder of the output folder, so
    that planning a grid of n points against n folders made n * n comparisons.  The folders are now indexed once by
    what they record, and a point is compared only with the folders under its key: with seed added to a grid of 30
    decays, each folder is compared twice (found under its first name, then checked by that name), however many
    folders there are; a folder recording a whole float (epochs 4.0) or lacking a parameter at its default is still
    found."""
    out = tmp_path / "out"
    decays = [float(v) for v in np.round(np.logspace(-4, -1, 30), 8)]
    for q in sweep.plan({"lam_W": decays}, TINY, out):  # the params.json of each point, as a sweep leaves them
        folder = out / q["params"]["run_name"]
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps(runs.json_values(q["params"])))
    names = sorted(d.name for d in out.iterdir())
    older = json.loads((out / names[0] / "params.json").read_text())
    (out / names[0] / "params.json").write_text(json.dumps({k: v for k, v in older.items() if k != "spread"}))
    whole = json.loads((out / names[1] / "params.json").read_text())
    (out / names[1] / "params.json").write_text(json.dumps({**whole, "epochs": 4.0}))
    compared = []
    real = runplan.differing_params

    def counted(run_dir, *args, **kw):
        compared.append(pathlib.Path(run_dir).name)
        return real(run_dir, *args, **kw)

    monkeypatch.setattr(runplan, "differing_params", counted)
    planned = sweep.plan({"lam_W": decays, "seed": [0, 1]}, TINY, out)
    assert [q["params"]["run_name"] for q in planned[::2]] == [run_name_for({"lam_W": v}) for v in decays]
    assert [q["params"]["run_name"] for q in planned[1::2]] == [run_name_for({"lam_W": v, "seed": 1}) for v in decays]
    assert sorted(compared) == sorted(names * 2)  # 60 comparisons; 1830 before
    assert sorted(d.name for d in out.iterdir()) == names  # nothing written


def test_a_device_added_to_a_grid_finds_only_the_runs_of_that_device(tmp_path):
    """--grid seed=0 on a CPU, then --grid seed=0 --grid device=cpu,cuda: the point on the CPU is the run already
    there; the point on a GPU is another run, with a folder of its own, not the CPU run nor a duplicate point."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0]}, TINY, out, 0)
    untouched = {k: v for k, v in TINY.items() if k != "device"}
    planned = sweep.plan({"seed": [0], "device": ["cpu", "cuda"]}, untouched, out, remote=True)
    assert [q["params"]["run_name"] for q in planned] == ["seed-0", "seed-0_device-cuda"]
    assert [q["params"]["device"] for q in planned] == ["cpu", "cuda"]


def test_a_value_added_to_a_grid_keeps_the_table_in_grid_order(tmp_path, capsys):
    """The fault: after a value was added to a grid, the table listed its run after the others (where a call first
    recorded it), and the printed epoch of a run without one read <NA>.  The rows follow the grid, whichever call
    recorded them first, and a run without an epoch prints it blank, as its other numbers."""
    out = tmp_path / "out"
    for i in (0, 1):
        sweep.run_point({"lam_W": [1e-3, 1e-1]}, TINY, out, i)
    sweep.run_point({"lam_W": [1e-3, 1e-2, 1e-1]}, TINY, out, 0)  # records the added point; its own run is kept
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    lines = capsys.readouterr().out.splitlines()
    assert table["lam_W"].tolist() == [1e-3, 1e-2, 1e-1]
    assert table["status"].tolist() == ["finished", "absent", "finished"] and table["epoch"].isna().tolist() == [
        False, True, False]
    assert [line.split() for line in lines[1:4]][1] == ["lam_W-0.01", "absent"]  # nothing printed in its other cells
    assert [line.split()[2] for line in lines[1:4:2]] == ["4", "4"]
    # a value before the first, and a parameter added (seed 0, the default, is the runs already there): grid order
    grid = {"lam_W": [1e-4, 1e-3, 1e-2, 1e-1], "seed": [0, 1]}
    names = [q["params"]["run_name"] for q in sweep.plan(grid, TINY, out)]
    sweep.run_point(grid, TINY, out, 0)
    recorded = sweep.summary(out)["run_name"].tolist()
    assert [name for name in recorded if name in names] == names and names[0] == recorded[0]
    assert set(recorded) - set(names) == {"lam_W-0.01"}  # the earlier point, whose run was never made, stays listed


def test_other_fixed_parameters_in_a_sweeps_folder_are_refused_and_every_call_is_recorded(scheduler, tmp_path,
                                                                                          capsys):
    """lam_W = 1e-3 with lr = 1e-2, then lam_W = 1e-1 with lr = 1e-3 in the same out_dir: the second call is
    refused before anything is written, naming lr and both values; a call that changes only an execution key or
    gives a parameter at its default is no change, and sweep.json keeps every call."""
    out = tmp_path / "sweep"
    sweep.run_sweep({"lam_W": [1e-3]}, TINY, out, scheduler=scheduler, progress=False)
    before = _files(out)
    with pytest.raises(ValueError, match=r"^fixed\['lr'\]") as refused:
        sweep.run_sweep({"lam_W": [1e-1]}, {**TINY, "lr": 1e-3}, out, scheduler=scheduler, progress=False)
    assert _names(refused.value, "--set lr", "0.01", "0.001")
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--grid", "lam_W=0.1", *[f"--set={k}={_text({**TINY, 'lr': 1e-3}[k])}" for k in TINY],
                    "--out-dir", str(out), "--scheduler", scheduler, "--no-progress"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--set lr" in err and "0.01" in err and "0.001" in err
    assert _files(out) == before
    with pytest.raises(ValueError, match=r"fixed\['width'\]"):  # left out now: its default, 128, differs from 16
        sweep.plan({"lam_W": [1e-1]}, {k: v for k, v in TINY.items() if k != "width"}, out)
    df = sweep.run_sweep({"lam_W": [1e-1]}, {**TINY, "seed": 0, "max_train_s": 100}, out, scheduler=scheduler,
                         progress=False)
    assert df["lam_W"].tolist() == [1e-3, 1e-1] and (df["lr"] == 1e-2).all()
    # the time limit says how a call trained, not what a run is: no column of the table, nor are the sweep's own keys
    assert not ({"max_train_s", *SWEEP_KEYS} - {"run_name"}) & set(df.columns)
    calls = json.loads((out / sweepmanifest.MANIFEST).read_text())["calls"]
    assert [c["grid"] for c in calls] == [{"lam_W": [1e-3]}, {"lam_W": [1e-1]}]
    assert [c["fixed"]["lr"] for c in calls] == [1e-2, 1e-2] and calls[1]["fixed"]["max_train_s"] == 100
    # a parameter that a grid sweeps now is no fixed parameter of the folder
    assert len(sweep.plan({"lr": [1e-2, 1e-3]}, {k: v for k, v in TINY.items() if k != "lr"}, out)) == 2


def test_the_table_gives_each_runs_code_and_machine_and_warns_of_mixed_commits(tmp_path, capsys):
    out = tmp_path / "sweep"
    for seed in (0, 1):
        train.run(**TINY, seed=seed, out_dir=out, run_name=f"seed-{seed}", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", sweep.MixedCodeVersions)
        df = sweep.summary(out)
    for _, row in df.iterrows():
        prov = json.loads((out / row["run_name"] / "provenance.json").read_text())
        assert (row["git_commit"], row["git_dirty"], row["host_cpu"], row["device_name"], row["torch"]) == \
            (prov["git_commit"], prov["git_dirty"], prov["host_cpu"], prov["device_name"], prov["versions"]["torch"])
    prov_path = out / "seed-1" / "provenance.json"
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "git_commit": "0" * 40, "git_dirty": False}))
    with pytest.warns(sweep.MixedCodeVersions):
        df = sweep.summary(out)
    assert df["git_commit"].tolist()[1] == "0" * 40 and df["git_commit"].nunique() == 2
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    err = capsys.readouterr().err
    assert "0" * 10 in err and table["git_commit"].nunique() == 2
    assert pd.read_csv(out / sweep.SUMMARY)["git_commit"].tolist() == df["git_commit"].tolist()
    # one commit, two different sets of uncommitted changes: two versions, told apart by their diffs' sha256
    for name, diff in (("seed-0", "a" * 64), ("seed-1", "b" * 64)):
        path = out / name / "provenance.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "git_commit": "1" * 40, "git_dirty": True,
                                    "git_diff_sha256": diff}))
    with pytest.warns(sweep.MixedCodeVersions, match="diff sha256 aaaaaaaaaa.*diff sha256 bbbbbbbbbb"):
        df = sweep.summary(out)
    assert df["git_diff_sha256"].tolist() == ["a" * 64, "b" * 64]


def test_run_folders_the_record_does_not_list_are_listed_marked_and_named(tmp_path, monkeypatch, capsys):
    """Run folders copied in from another node's output folder, which the folder's sweep.json does not list: the table
    lists them after the recorded runs, its column recorded False, and warns naming them (a note of the command line).
    The sweep run again there with a grid that holds every point (the nodes' folders merged) trains nothing, records
    them and lists them all, unmarked; a copied run with other parameters is refused by it, naming them."""
    node_a, node_b, node_c = tmp_path / "node-a", tmp_path / "node-b", tmp_path / "node-c"
    sweep.run_point({"lam_W": [1e-3]}, TINY, node_a, 0)
    for point in range(2):
        sweep.run_point({"lam_W": [1e-2, 1e-1]}, TINY, node_b, point)
    for name in ("lam_W-0.01", "lam_W-0.1"):
        shutil.copytree(node_b / name, node_a / name)
    with pytest.warns(sweep.UnrecordedRuns, match="lam_W-0.01, lam_W-0.1"):
        table = sweep.summary(node_a)
    assert table["run_name"].tolist() == ["lam_W-0.001", "lam_W-0.01", "lam_W-0.1"]
    assert table["recorded"].tolist() == [True, False, False] and table["lam_W"].tolist() == [1e-3, 1e-2, 1e-1]
    assert (table["status"] == "finished").all() and sweep.exit_status(table) == 0
    shown = sweep.main(["--summary-only", "--out-dir", str(node_a)])
    assert "lam_W-0.01" in capsys.readouterr().err and shown["recorded"].tolist() == [True, False, False]
    assert pd.read_csv(node_a / sweep.SUMMARY)["recorded"].tolist() == [True, False, False]
    # the merged folder's union grid: nothing trained, no cluster, every run recorded
    runs_before = {name: _files(node_a / name) for name in table["run_name"]}
    monkeypatch.setattr(sweep, "_client", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("no cluster")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", sweep.UnrecordedRuns)
        merged = sweep.run_sweep({"lam_W": [1e-3, 1e-2, 1e-1]}, TINY, node_a, progress=False)
    assert merged["run_name"].tolist() == table["run_name"].tolist() and "recorded" not in merged
    assert (merged["status"] == "finished").all()
    assert {name: _files(node_a / name) for name in table["run_name"]} == runs_before
    assert list(sweepmanifest.read_manifest(node_a)["runs"]) == table["run_name"].tolist()
    # a run of other epochs copied in: the union grid is refused naming them, and the record is left as it was
    sweep.run_point({"lam_W": [1e-3]}, {**TINY, "epochs": 2}, node_c, 0)
    shutil.copytree(node_c / "lam_W-0.001", node_b / "lam_W-0.001")
    record = (node_b / sweepmanifest.MANIFEST).read_bytes()
    with pytest.warns(sweep.UnrecordedRuns, match="lam_W-0.001"):
        assert sweep.summary(node_b)["recorded"].tolist() == [True, True, False]
    with pytest.raises(ValueError, match="epochs"):
        sweep.run_sweep({"lam_W": [1e-3, 1e-2, 1e-1]}, TINY, node_b, progress=False)
    assert (node_b / sweepmanifest.MANIFEST).read_bytes() == record


def test_runs_merged_from_a_cluster_whose_data_lay_at_another_path_hold_their_points_on_the_same_data(tmp_path,
                                                                                                      monkeypatch):
    """Two clusters, each with its copy of one data file at a path of its own: the run folders of the first, copied
    into the second's output folder, hold its points there, since the data_sha256 they record is that of the data
    its data_path holds: the list of points keeps them, the sweep run again keeps them without a cluster, and a task
    keeps its run under its folder's lock, nothing written into the runs.  A run whose data differ from what the
    point's data_path holds now is refused, naming data_path."""
    here, there = tmp_path / "cluster-x" / "c.npz", tmp_path / "cluster-y" / "c.npz"
    here.parent.mkdir()
    there.parent.mkdir()
    _data_writer(here, seed=3)()
    shutil.copy(here, there)

    def on(path):
        return {**{k: v for k, v in TINY.items() if k != "dim"}, "dataset": "cifar10", "data_path": str(path)}

    grid, made, merged = {"seed": [0, 1]}, tmp_path / "runs-x", tmp_path / "runs-y"
    for point in range(2):
        assert sweep.run_point(grid, on(here), made, point)["error"].isna().all()
    for name in ("seed-0", "seed-1"):
        shutil.copytree(made / name, merged / name)
    copied = {name: _files(merged / name) for name in ("seed-0", "seed-1")}
    listed = sweep.list_points(grid, on(there), merged)
    assert listed["next"].tolist() == ["keep", "keep"] and listed["error"].isna().all()
    monkeypatch.setattr(sweep, "_client", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("no cluster")))
    table = sweep.run_sweep(grid, on(there), merged, progress=False)
    assert table["status"].tolist() == ["finished"] * 2 and table["error"].isna().all()
    assert sweep.exit_status(table) == 0
    assert table["data_path"].tolist() == [str(here)] * 2  # each run's path as it recorded it
    task = sweep.run_point(grid, on(there), merged, 1)
    assert task["status"].tolist() == ["finished"] and task["error"].isna().all()
    # the task kept the run under its folder's lock, not refused it for its data_path (the row alone would not
    # tell: a finished run's table row hides what sweep.json saved)
    assert sweepmanifest.read_manifest(merged)["errors"] == {}
    assert {name: _files(merged / name) for name in ("seed-0", "seed-1")} == copied
    # other data at the second cluster's path: the copied run is another run
    _data_writer(there, seed=4)()
    other = tmp_path / "runs-other"
    shutil.copytree(made / "seed-0", other / "seed-0")
    with pytest.raises(ValueError, match=re.escape(str(other / "seed-0")) + ".*data_path"):
        sweep.plan(grid, on(there), other)


def test_a_stopped_run_copied_from_a_cluster_whose_data_lay_at_another_path_is_refused_in_the_plan(tmp_path):
    """A stopped run copied from a cluster whose data lay at another path, the same bytes: its resume would be
    refused (a run resumes only at the data_path it started with), so the plan refuses it, naming both paths, before
    the list of points calls it a resume and before a task is tried; nothing is written into it.  At the path it
    started with (a symlink of that name on both clusters) it resumes in the merged folder."""
    here, there = tmp_path / "cluster-x" / "c.npz", tmp_path / "cluster-y" / "c.npz"
    here.parent.mkdir()
    there.parent.mkdir()
    _data_writer(here, seed=3)()
    shutil.copy(here, there)

    def on(path, **more):
        return {**{k: v for k, v in TINY.items() if k != "dim"}, "dataset": "cifar10", "data_path": str(path), **more}

    grid, made, merged = {"seed": [0]}, tmp_path / "runs-x", tmp_path / "runs-y"
    with worker_threads():
        assert sweep.run_point(grid, on(here, max_train_s=0), made, 0)["status"].tolist() == ["stopped"]
    shutil.copytree(made / "seed-0", merged / "seed-0")
    copied = _files(merged / "seed-0")
    assert sweep.next_step(merged / "seed-0") == ("stopped", "resume")
    for call in (lambda: sweep.list_points(grid, on(there), merged),
                 lambda: sweep.run_point(grid, on(there), merged, 0)):
        with pytest.raises(ValueError) as refused:
            call()
        assert _names(refused.value, str(merged / "seed-0"), "data_path", str(here), str(there), "symlink")
    assert _files(merged / "seed-0") == copied and not (merged / sweepmanifest.MANIFEST).exists()
    # its own data_path, as a path both clusters hold, resumes it there
    assert sweep.list_points(grid, on(here), merged)["next"].tolist() == ["resume"]
    with worker_threads():
        resumed = sweep.run_point(grid, on(here), merged, 0)
    assert resumed["status"].tolist() == ["finished"] and resumed["error"].isna().all()


def test_the_refusals_asked_under_a_run_folder_s_lock_refuse_bad_arguments_naming_them(tmp_path):
    """step_for_status, refuse_other_run, refuse_other_data and kept_run_error, which the worker asks under a run
    folder's lock, refuse what they cannot read with a ValueError naming the argument: a misspelled status (which
    would read as a run to start again, deleting it) and "running" (a live writer's folder), a folder that is no
    path, defining parameters or a point's parameters that lack what is compared, and a cache that is no dict."""
    p = train.check_params(**TINY, out_dir=tmp_path, run_name="r")
    want, folder = defining_params(p), tmp_path / "r"
    train.run(**p)
    assert sweepplan.step_for_status(folder, "finished") == "keep"
    assert sweepplan.step_for_status(str(folder), "absent") == "start"
    assert sweepplan.refuse_other_run(str(folder), want, p) is None
    assert sweepplan.kept_run_error(p, str(folder), {}) is None
    files = _files(folder)
    lacking = {k: v for k, v in want.items() if k != "epochs"}
    refusals = [("status", lambda: sweepplan.step_for_status(folder, "finishd")),
                ("status", lambda: sweepplan.step_for_status(folder, "running")),
                ("status", lambda: sweepplan.step_for_status(folder, None)),
                ("run_dir", lambda: sweepplan.step_for_status(None, "finished")),
                ("run_dir", lambda: sweepplan.refuse_other_run("", want)),
                ("want", lambda: sweepplan.refuse_other_run("/tmp", {})),
                ("want", lambda: sweepplan.refuse_other_run(folder, lacking)),
                ("want", lambda: sweepplan.refuse_other_run(folder, list(want))),
                ("params", lambda: sweepplan.refuse_other_run(folder, want, {"data_path": None})),
                ("params", lambda: sweepplan.refuse_other_data({}, folder)),
                ("run_dir", lambda: sweepplan.refuse_other_data(p, 3)),
                ("loaded", lambda: sweepplan.refuse_other_data(p, folder, [])),
                ("params", lambda: sweepplan.kept_run_error({}, "/tmp")),
                ("run_dir", lambda: sweepplan.kept_run_error(p, None))]
    for name, call in refusals:
        with pytest.raises(ValueError, match=f"^{name} must"):
            call()
    assert _files(folder) == files


def test_a_relative_data_path_is_made_absolute_for_the_workers(scheduler, tmp_path, monkeypatch):
    """The workers of the module's cluster run in another folder than the client: a data_path relative to the
    client's folder is made absolute before it reaches them, so the run reads the client's file."""
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "good.npz", x_train=rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8),
             y_train=np.repeat(np.arange(3), 10))
    fixed = {**{k: v for k, v in TINY.items() if k != "dim"}, "dataset": "cifar10", "data_path": "data/good.npz"}
    monkeypatch.chdir(tmp_path)
    planned = sweep.plan({"seed": [0]}, fixed, "out")
    assert planned[0]["params"]["data_path"] == str(tmp_path / "data" / "good.npz")
    df = sweep.run_sweep({"seed": [0]}, fixed, "out", scheduler=scheduler, progress=False)
    assert df["status"].tolist() == ["finished"] and df["error"].isna().all()
    assert runs.read_params(tmp_path / "out" / "seed-0")["data_path"] == str(tmp_path / "data" / "good.npz")
    manifest = json.loads((tmp_path / "out" / sweepmanifest.MANIFEST).read_text())
    assert manifest["fixed"]["data_path"] == str(tmp_path / "data" / "good.npz")


# ------------------------------------------------------------------------------------------ locks and job arrays

def test_a_file_system_without_flock_is_named_not_taken_for_a_busy_folder(tmp_path, monkeypatch, capsys):
    """flock failing with ENOLCK (Lustre without -o flock, NFS without a lock daemon) is LockUnsupported (exit 1, a
    retry would never succeed), not SweepBusy (exit 3); the run folder's lock and status refuse it the same way."""
    folder = tmp_path / "r"
    train.run(**TINY, out_dir=tmp_path, run_name="r", progress=False)
    (folder / locks.LOCK).write_text("")

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_flock)
    out = tmp_path / "out"
    with pytest.raises(locks.LockUnsupported, match="flock"):
        sweep.run_sweep({"seed": [0]}, TINY, out, workers=1, progress=False)
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--grid", "seed=0", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out)])
    assert exc.value.code == 1 and "flock" in capsys.readouterr().err
    with pytest.raises(locks.LockUnsupported):
        runs.run_status(folder)
    with pytest.raises(locks.LockUnsupported):
        locks.lock_run(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_busy_sweep_folder_names_the_process_holding_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code = ("import pathlib, sys; from nclib import sweepmanifest; "
            "hold = sweepmanifest.lock_sweep(pathlib.Path(sys.argv[1])); "
            "hold.__enter__(); print('locked', flush=True); sys.stdin.read(); hold.__exit__(None, None, None)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=os.environ)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(sweep.SweepBusy) as exc:
            sweep.run_sweep({"seed": [0]}, TINY, out, workers=1, progress=False)
        assert f"pid {holder.pid}" in str(exc.value) and socket.gethostname() in str(exc.value)
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert (out / sweepmanifest.LOCK).read_text() == ""  # released: no holder named


def test_the_tasks_of_a_job_array_train_their_points_side_by_side_in_one_folder(tmp_path, capsys):
    """Four tasks at once on one out_dir (points 0, 1, 2, and point 0 again), while a whole sweep holds the folder's
    sweep lock: each trains only its point, the two tasks of point 0 train it once, and --summary-only then writes
    the table of all three runs, in grid order."""
    out = tmp_path / "out"
    args = ["--grid", "seed=0,1,2", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out)]
    listing = sweep.main([*args, "--list-points"])
    assert listing["point"].tolist() == [0, 1, 2] and listing["run_name"].tolist() == ["seed-0", "seed-1", "seed-2"]
    assert (listing["found"] == "absent").all() and (listing["next"] == "start").all() and not out.exists()
    out.mkdir()
    holder = _flock_held(out / sweepmanifest.LOCK)
    try:
        tasks = [subprocess.Popen([sys.executable, "-m", "nclib.sweep", *args, "--point", str(i)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
                 for i in (0, 1, 2, 0)]
        outcomes = [t.communicate(timeout=300) for t in tasks]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert [t.returncode for t in tasks] == [0] * 4, [o[1][-2000:] for o in outcomes]
    for name in ("seed-0", "seed-1", "seed-2"):
        prov = json.loads((out / name / "provenance.json").read_text())
        assert prov["status"] == "finished" and [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == [(0, 4)]
    assert not (out / sweep.SUMMARY).exists()
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    assert table["run_name"].tolist() == ["seed-0", "seed-1", "seed-2"] and (table["status"] == "finished").all()
    assert table["seed"].tolist() == [0, 1, 2] and sweep.exit_status(table) == 0
    listing = sweep.main([*args, "--list-points"])
    assert (listing["found"] == "finished").all() and (listing["next"] == "keep").all()
    with pytest.raises(SystemExit) as exc:
        sweep.main([*args, "--point", "3"])
    assert exc.value.code == 2 and "--point" in capsys.readouterr().err


def test_the_command_line_sweeps_on_a_dask_cluster(scheduler, tmp_path):
    """``python -m nclib.sweep`` as the README gives it, on a running cluster (``--scheduler``): the points go to the
    workers (the module is ``__main__`` there, whose functions Dask would have to pickle by value) and the table
    lists every run finished."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nclib.sweep", "--grid", "seed=0,1",
               *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out), "--scheduler", scheduler]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = sweep.load_summary(out)
    assert table["run_name"].tolist() == ["seed-0", "seed-1"] and (table["status"] == "finished").all()
    for name in ("seed-0", "seed-1"):
        assert json.loads((out / name / "provenance.json").read_text())["status"] == "finished"


def test_the_readmes_sweep_demo_ends_as_the_readme_says(scheduler, tmp_path):
    """The README's sweep demo, its command (on the module's cluster, in a temporary folder): each run ends with the
    training accuracy of the global minimizer of (4.3), every point at the two smaller decays and only the largest
    class ("20 of the 35 points", the README's numbers, from its counts) at the largest; the smallest decay's
    objective ends more than 10 % above the global minimum, the others' within 1 %; and the README's command that
    prints these fractions runs on the table."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    command = shlex.split(next(b for b in blocks if "nclib.sweep" in b and "sweep-demo" in b).replace("\\\n", " "))
    argv = command[command.index("nclib.sweep") + 1:]
    assert argv[argv.index("--out-dir") + 1] == "results/runs/sweep-demo"
    argv[argv.index("--out-dir") + 1] = str(tmp_path / "results" / "runs" / "sweep-demo")
    table = sweep.main([*argv, "--scheduler", scheduler, "--no-progress"])
    fixed = parse_fixed([v for k, v in zip(argv, argv[1:]) if k == "--set"])
    counts, lams = fixed["counts"], table["lam_W"].to_numpy()
    assert (table["status"] == "finished").all() and (table["lam_H"].to_numpy() == lams).all()  # tied
    assert lams.tolist() == [1e-3, 1e-2, 1e-1]
    best = [minimizer_accuracy(counts, lam, lam, L=1, bias=True) for lam in lams]
    assert table["final_train_acc"].tolist() == best
    assert best[:2] == [1.0, 1.0] and best[2] == max(counts) / sum(counts)
    assert table[[f"class_acc_{k}" for k in range(3)]].to_numpy()[2].tolist() == [1.0, 0.0, 0.0]
    assert counts[0] == max(counts)
    largest, total = map(int, re.search(r"\((\d+) of the (\d+) points\)", readme).groups())
    assert (largest, total) == (max(counts), sum(counts))
    minimum = np.array([ufm.minimum_value(counts, lam, lam, L=1, bias=True) for lam in lams])
    above = (table["final_objective"].to_numpy() - minimum) / minimum
    assert above[0] > 0.1 and (0 < above[1:]).all() and (above[1:] < 0.01).all(), above
    printing = next(b for b in blocks if "sweep-demo/sweep.csv" in b)
    code = printing[printing.index("-c '") + 4:printing.rindex("'")]
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                             env=os.environ, timeout=300)
    assert printed.returncode == 0 and all(name in printed.stdout for name in table["run_name"]), printed.stderr


@pytest.mark.parametrize("point", ["-1", "2"])
def test_a_point_outside_the_grid_is_refused_by_name(tmp_path, capsys, point):
    """--point -1 is no index of a job array's task (it would train the last point under another index)."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out),
                    "--point", point])
    assert exc.value.code == 2 and f"--point) {point} is not a point of the grid" in capsys.readouterr().err
    assert not out.exists()


def test_a_cpu_run_a_dask_worker_stopped_resumes_in_a_task_started_with_one_thread(scheduler, tmp_path):
    """A CPU run resumes only with as many torch threads as it started with: a Dask worker has one, and a task of a
    job array as many as its node gives it.  The task's command of the docs, OMP_NUM_THREADS=1 before it, resumes
    the run that a sweep's worker stopped; started with two threads it is refused, naming both counts."""
    out = tmp_path / "out"
    stopped = sweep.run_sweep({"seed": [0]}, {**TINY, "max_train_s": 0}, out, scheduler=scheduler, progress=False)
    assert stopped["status"].tolist() == ["stopped"]
    task = [sys.executable, "-m", "nclib.sweep", "--grid", "seed=0",
            *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out), "--point", "0"]
    # a task's environment: no MKL_NUM_THREADS (which a LocalCluster sets in the process that starts it, this one)
    shell = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    two = subprocess.run(task, capture_output=True, text=True, env={**shell, "OMP_NUM_THREADS": "2"}, timeout=300)
    assert two.returncode == 1 and "started with 1 CPU threads for torch, now 2" in two.stdout + two.stderr
    one = subprocess.run(task, capture_output=True, text=True, env={**shell, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    prov = json.loads((out / "seed-0" / "provenance.json").read_text())
    assert prov["status"] == "finished" and [(s["from_epoch"], s["to_epoch"]) for s in prov["segments"]] == \
        [(0, 2), (2, 4)]


def _damaged_data_args(tmp_path):
    """The command line of a sweep over two seeds whose data file exists but is no .npz (what only loading it finds),
    and its output folder."""
    (tmp_path / "bad.npz").write_bytes(b"garbage, not a zip archive of arrays\n" * 4)
    fixed = {**TINY, "dataset": "cifar10", "data_path": str(tmp_path / "bad.npz")}
    del fixed["dim"]
    out = tmp_path / "out"
    return ["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in fixed.items()], "--out-dir", str(out)], out


def test_a_task_of_a_job_array_prints_its_runs_error_whole(tmp_path, capsys):
    """The fault: a task (--point) printed its run's error cut to 60 characters and writes no sweep.csv, so the end
    of the error (the lock file to remove, the reason of a refusal) was in no file.  The error follows whole on
    stderr, after the table on stdout; the table still shows it cut short."""
    args, out = _damaged_data_args(tmp_path)
    df = sweep.main([*args, "--point", "0"])
    printed = capsys.readouterr()
    error = sweepmanifest.read_manifest(out)["errors"]["seed-0"]
    assert df["status"].tolist() == ["failed"] and df["error"].tolist() == [error] and sweep.exit_status(df) == 1
    assert len(error) > 60 and error in printed.err and error not in printed.out
    assert error[:57] in printed.out
    assert not (out / sweep.SUMMARY).exists()


def test_the_printed_table_cuts_only_errors_longer_than_60_characters(capsys):
    """An error of at most 60 characters is printed whole; a longer one is cut to its first 57 and "...", 60 in all,
    and only such an error follows whole on stderr; a point without one is blank."""
    from nclib import sweepcli

    assert sweepcli._cut("e" * 60) == "e" * 60
    assert sweepcli._cut("e" * 57 + "f" * 4) == "e" * 57 + "..."
    assert sweepcli._cut(None) == sweepcli._cut(float("nan")) == ""
    df = pd.DataFrame({"run_name": ["a", "b", "c"], "error": ["e" * 60, "e" * 61, None]})
    sweepcli._whole_errors(df, "prog")
    assert capsys.readouterr().err.splitlines() == [f"prog: error of b: {'e' * 61}"]


def test_a_point_whose_run_failed_before_its_folder_is_listed_as_the_table_gives_it(tmp_path, capsys):
    """The fault: a run that failed before its folder was written (a damaged data file) was "failed" in the table
    but "absent" in --list-points, without its error, and its task's last line named a folder that does not exist.
    The list gives the table's status and error (the error whole on stderr), and the task's last line is a path that
    exists: the run folder, else sweep.json, which holds the error."""
    args, out = _damaged_data_args(tmp_path)
    sweep.main([*args, "--point", "0"])
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == str(out / sweepmanifest.MANIFEST) and not (out / "seed-0").exists()
    listing = sweep.main([*args, "--list-points"])
    printed = capsys.readouterr()
    table = sweep.summary(out)
    assert listing["found"].tolist() == table["status"].tolist() == ["failed", "absent"]
    assert listing["error"][0] == table["error"][0] and len(listing["error"][0]) > 60 and pd.isna(listing["error"][1])
    assert listing["next"].tolist() == ["start", "start"] and listing["point"].tolist() == [0, 1]
    assert table["error"][0] in printed.err and table["error"][0] not in printed.out
    # a run with a folder: the task's last line is its folder; a failed run's error comes from its provenance
    out = tmp_path / "good"
    args = ["--grid", "lr=1e-2,1e3", *[f"--set={k}={_text(v)}" for k, v in TINY.items() if k != "lr"],
            "--out-dir", str(out)]
    for i in (0, 1):
        sweep.main([*args, "--point", str(i)])
        assert capsys.readouterr().out.splitlines()[-1] == str(out / run_name_for({"lr": [1e-2, 1e3][i]}))
    listing, table = sweep.list_points(parse_grid(["lr=1e-2,1e3"]), {k: v for k, v in TINY.items() if k != "lr"},
                                       out), sweep.summary(out)
    assert listing["found"].tolist() == table["status"].tolist() == ["finished", "diverged"]
    prov = json.loads((out / table["run_name"][1] / "provenance.json").read_text())
    assert pd.isna(listing["error"][0]) and listing["error"][1] == table["error"][1] == prov["error"]


def test_the_list_of_points_refuses_a_run_trained_on_other_data_as_its_task_does(tmp_path, monkeypatch, capsys):
    """The fault: --list-points said "keep" for a finished (or diverged) run whose data file had been rewritten at
    its path since, a run its task refuses (OtherData), without an error until a task had met it.  The list compares
    the runs it would keep with the data as the task does, loading each data selection once: such a point is
    "refuse", with the error its task meets; the data back, "keep", without the error the tasks recorded."""
    path = tmp_path / "data.npz"
    write = _data_writer(path, seed=3)

    write()
    theirs = path.read_bytes()
    fixed = {**{k: v for k, v in TINY.items() if k not in ("dim", "lr")}, "dataset": "cifar10", "data_path": str(path)}
    grid, out = {"lr": [1e-2, 1e3]}, tmp_path / "out"  # lr = 1000 diverges
    assert [sweep.run_point(grid, fixed, out, i)["status"][0] for i in (0, 1)] == ["finished", "diverged"]
    loads = []
    real = runplan.load_for
    monkeypatch.setattr(runplan, "load_for", lambda params: loads.append(params["seed"]) or real(params))
    kept = sweep.list_points(grid, fixed, out)
    assert kept["next"].tolist() == ["keep", "keep"] and pd.isna(kept["error"][0]) and loads == [0]
    write()  # other data at the same path
    before = _files(out)
    listed = sweep.list_points(grid, fixed, out)
    assert listed["found"].tolist() == ["finished", "diverged"] and listed["next"].tolist() == ["refuse", "refuse"]
    assert loads == [0, 0]  # one selection, loaded once for both runs
    tasks = [sweep.run_point(grid, fixed, out, i)["error"][0] for i in (0, 1)]
    assert all(e.startswith("OtherData:") for e in tasks)
    assert listed["error"].tolist() == tasks
    printed = sweep.main(["--grid", "lr=0.01,1000", *[f"--set={k}={_text(v)}" for k, v in fixed.items()],
                          "--out-dir", str(out), "--list-points"])
    assert printed["next"].tolist() == ["refuse", "refuse"] and "OtherData" in capsys.readouterr().out
    path.write_bytes(theirs)  # the runs' data back
    back = sweep.list_points(grid, fixed, out)  # sweep.json still holds the tasks' errors: no longer theirs
    assert sweepmanifest.read_manifest(out)["errors"] and back["next"].tolist() == ["keep", "keep"]
    diverged = json.loads((out / back["run_name"][1] / "provenance.json").read_text())["error"]
    assert pd.isna(back["error"][0]) and back["error"][1] == diverged
    assert {k: v for k, v in _files(out).items() if k != sweepmanifest.MANIFEST} == \
        {k: v for k, v in before.items() if k != sweepmanifest.MANIFEST}  # the runs untouched


@pytest.mark.parametrize("made", [True, False])
def test_a_summary_of_a_folder_without_runs_exits_with_status_1(tmp_path, capsys, made):
    """An empty output folder, or none yet (before the first task of a job array has started): no point has a run,
    the status of a point without a run; no table is written."""
    out = tmp_path / "runs"
    if made:
        out.mkdir()
    with pytest.raises(sweep.NoRuns, match=re.escape(repr(str(out)))):
        sweep.summary(out)
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--summary-only", "--out-dir", str(out)])
    assert exc.value.code == 1 and str(out) in capsys.readouterr().err
    assert not (out / sweep.SUMMARY).exists() and out.exists() == made


def test_a_summary_of_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "runs").write_text("")
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--summary-only", "--out-dir", str(tmp_path / "runs")])
    assert exc.value.code == 2 and str(tmp_path / "runs") in capsys.readouterr().err


def test_a_summary_of_what_is_no_path_is_refused_naming_out_dir(tmp_path, monkeypatch):
    """summary(5) raised pathlib's TypeError; the empty path would be read as the current folder."""
    monkeypatch.chdir(tmp_path)
    for bad in (5, None, "", [str(tmp_path)]):
        with pytest.raises(ValueError, match="^out_dir must be the path of a sweep's output folder"):
            sweep.summary(bad)
    assert list(tmp_path.iterdir()) == []  # nothing written in the current folder


@pytest.mark.parametrize("text, named", [("{\"runs\": {", "is not JSON"), ("[1, 2]", "holds a list, not the JSON")])
def test_a_damaged_sweep_record_is_named_by_its_path(tmp_path, capsys, text, named):
    out = tmp_path / "runs"
    out.mkdir()
    (out / sweepmanifest.MANIFEST).write_text(text)
    with pytest.raises(ValueError, match=re.escape(str(out / sweepmanifest.MANIFEST)) + " " + named):
        sweep.plan({"seed": [0]}, {"epochs": 1}, out)
    with pytest.raises(SystemExit) as exc:  # the command line says which file, as a usage error
        sweep.main(["--grid", "seed=0", "--set", "epochs=1", "--out-dir", str(out), "--list-points"])
    assert exc.value.code == 2 and str(out / sweepmanifest.MANIFEST) in capsys.readouterr().err
    assert (out / sweepmanifest.MANIFEST).read_text() == text  # left as it was


def test_the_record_keeps_each_call_once_and_the_errors_its_folders_do_not_hold(tmp_path, monkeypatch):
    """record_call lists a call once (the tasks of a job array make the same call) with its planned points and
    refuses other fixed parameters, leaving sweep.json as it was; record_result keeps the error of a run whose folder
    does not record it and why a run was trained again, until the run is fine or starts afresh; an error saved
    without its folder's state drops the state an earlier error was saved with, which is not its own."""
    monkeypatch.chdir(tmp_path)
    call = sweepmanifest.call_record({"seed": np.arange(2)}, {"epochs": np.int64(3), "data_path": "x.npz"}, {})
    assert call == {"grid": {"seed": [0, 1]}, "fixed": {"epochs": 3, "data_path": os.path.abspath("x.npz")},
                    "tie": {}}
    planned = [{"point": {"seed": s}, "params": {"run_name": f"seed-{s}"}} for s in (0, 1)]
    for _ in range(2):
        written = sweepmanifest.update_manifest(tmp_path,
                                                lambda m: sweepmanifest.record_call(m, call, planned, tmp_path))
    manifest = sweepmanifest.read_manifest(tmp_path)
    assert manifest == written and manifest["calls"] == [{**call, "runs": ["seed-0", "seed-1"]}]
    assert manifest["runs"] == {"seed-0": {"seed": 0}, "seed-1": {"seed": 1}}
    other = sweepmanifest.call_record({"seed": [0]}, {"epochs": 4, "data_path": "x.npz"}, {})
    before = (tmp_path / sweepmanifest.MANIFEST).read_text()
    with pytest.raises(ValueError, match=r"fixed\['epochs'\]"):
        sweepmanifest.update_manifest(tmp_path, lambda m: sweepmanifest.record_call(m, other, [], tmp_path))
    assert (tmp_path / sweepmanifest.MANIFEST).read_text() == before
    # a record written before every call was kept holds its last call only
    assert sweepmanifest.recorded_calls({"grid": {"seed": [0]}, "fixed": {"epochs": 3}}) == \
        [{"grid": {"seed": [0]}, "fixed": {"epochs": 3}, "tie": {}}]
    assert sweepmanifest.recorded_calls({"runs": {}, "errors": {}}) == []
    sweepmanifest.record_result(manifest, "seed-0", {"status": "absent", "error": "ValueError: refused"})
    sweepmanifest.record_result(manifest, "seed-1", {"status": "failed", "error": "RuntimeError: nan",
                                                     "restarted": "ResumeRefused: commit", "fresh": True})
    assert manifest["errors"] == {"seed-0": "ValueError: refused"}  # a failed run's folder records its error
    assert manifest["restarted"] == {"seed-1": "ResumeRefused: commit"}
    sweepmanifest.record_result(manifest, "seed-0", {"status": "finished", "error": None})
    sweepmanifest.record_result(manifest, "seed-1", {"status": "stopped", "error": None, "restarted": None,
                                                     "fresh": False})
    assert manifest["errors"] == {} and manifest["restarted"] == {"seed-1": "ResumeRefused: commit"}
    sweepmanifest.record_result(manifest, "seed-1", {"status": "finished", "error": None, "restarted": None,
                                                     "fresh": True})
    assert manifest["restarted"] == {}
    # an error saved with its folder's state, then one without a state: the first state is not the second's, and
    # the second error holds for the folder (absent here) as it is
    sweepmanifest.record_result(manifest, "seed-0", {"status": "stopped", "error": "KilledWorker: a", "state": "f0"})
    sweepmanifest.record_result(manifest, "seed-0", {"status": "absent", "error": "KilledWorker: b"})
    assert manifest["errors"] == {"seed-0": "KilledWorker: b"} and "seed-0" not in manifest["error_states"]
    assert sweeptable.recorded_outcome("seed-0", "absent", manifest, {}, tmp_path / "seed-0") == \
        ("failed", "KilledWorker: b")
    # a diverged folder records its own error, but not a refusal to take it for this point: that one is kept
    sweepmanifest.record_result(manifest, "seed-0", {"status": "diverged", "error": "RunExists: another call's"})
    assert manifest["errors"] == {"seed-0": "RunExists: another call's"}
    sweepmanifest.record_result(manifest, "seed-0", {"status": "finished", "error": None})
    manifest["errors"]["seed-1"] = "RunLockedElsewhere: another host"
    sweepmanifest.record_call(manifest, call, planned, tmp_path, kept=["seed-1"])
    assert manifest["errors"] == {} and manifest["calls"] == [{**call, "runs": ["seed-0", "seed-1"]}]


def test_a_saved_error_leaves_the_table_once_a_later_call_has_written_its_run(tmp_path, monkeypatch):
    """A task's resume refused (started on another CPU model): sweep.json keeps the error, with the state of the run
    folder (its provenance's sha256), and the table gives it (exit 1) while the folder is unchanged.  Once the run is
    resumed where it started, by hand with nclib.train.run, the error leaves the table and the list of points, the
    run stopped again as well as finished; so does the error of a point that failed before its folder was written,
    once a later call has written it.  A saved error without a state (a record written before they were kept) is
    dropped for a finished run, but for OtherData, which the table cannot check without loading the data."""
    from nclib import provenance

    out, fixed = tmp_path / "out", {**TINY, "epochs": 6}
    sweep.run_point({"seed": [0, 1]}, {**fixed, "max_train_s": 0}, out, 0)  # seed 0 stopped at epoch 2
    folder = out / "seed-0"
    with monkeypatch.context() as m:
        m.setattr(provenance, "cpu_name", lambda: "Another CPU (AVX512)")
        refused = sweep.run_point({"seed": [0, 1]}, fixed, out, 0)
    assert refused["status"].tolist() == ["stopped"] and refused["error"][0].startswith("ResumeRefused: ")
    manifest = sweepmanifest.read_manifest(out)
    assert manifest["error_states"] == {"seed-0": sweepmanifest.folder_state(folder)} and \
        sweepmanifest.folder_state(folder) is not None
    table = sweep.summary(out)
    assert table["error"][0] == refused["error"][0] and sweep.exit_status(table.iloc[:1]) == 1
    assert sweepmanifest.folder_state(out / "seed-1") is None  # no folder
    # resumed here, where it started: stopped again at epoch 4, then finished
    train.run(**fixed, seed=0, out_dir=out, run_name="seed-0", resume=True, max_train_s=0, progress=False)
    table = sweep.summary(out)
    assert table["status"][0] == "stopped" and table["error"].isna()[0] and sweep.exit_status(table.iloc[:1]) == 0
    assert sweep.list_points({"seed": [0, 1]}, fixed, out)["error"].isna()[0]
    assert sweepmanifest.read_manifest(out)["errors"]["seed-0"] == refused["error"][0]  # the record is as it was
    train.run(**fixed, seed=0, out_dir=out, run_name="seed-0", resume=True, progress=False)
    assert sweep.summary(out)["error"].isna()[0]
    # seed 1 failed before its folder was written (state None): written since by a call that stopped it
    sweepmanifest.update_manifest(out, lambda m: sweepmanifest.record_result(
        m, "seed-1", {"status": "absent", "error": "ValueError: before its folder", "state": None}))
    assert sweep.summary(out)[["status", "error"]].values[1].tolist() == ["failed", "ValueError: before its folder"]
    train.run(**fixed, seed=1, out_dir=out, run_name="seed-1", max_train_s=0, progress=False)
    table = sweep.summary(out)
    assert table["status"].tolist() == ["finished", "stopped"] and table["error"].isna().all()
    assert sweep.exit_status(table) == 0
    # errors saved without a state: a finished run's only if they are OtherData; a stopped run's stay
    for error, shown in (("KilledWorker: gone", [None, "KilledWorker: gone"]),
                         ("OtherData: rewritten", ["OtherData: rewritten", "OtherData: rewritten"])):
        def saved(m, error=error):
            m["errors"].update({"seed-0": error, "seed-1": error})
            m.pop("error_states", None)

        sweepmanifest.update_manifest(out, saved)
        errors = sweep.summary(out)["error"]
        assert [None if pd.isna(e) else e for e in errors] == shown, error


WRITER = """
import fcntl, os, sys
from nclib import sweepmanifest
out, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def change(manifest, i):
    # no other writer gets in while this one reads and writes: a lock of the file taken otherwise is refused
    probe = os.open(os.path.join(out, sweepmanifest.MANIFEST_LOCK), os.O_RDWR)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        sys.exit("sweep.json changed without its lock")
    except BlockingIOError:
        pass
    finally:
        os.close(probe)
    manifest["errors"][f"{who}-{i}"] = f"RuntimeError: {who} {i}"


for i in range(n):
    sweepmanifest.update_manifest(out, lambda m, i=i: change(m, i))
"""


def test_writers_of_the_record_at_once_lose_none_of_each_others_entries(tmp_path):
    """Four processes (a sweep and the tasks of a job array, say) record 25 errors each in one sweep.json at once:
    each holds the record's lock while it reads and writes, and every entry survives."""
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{k}", "25"], stderr=subprocess.PIPE,
                                text=True, env=os.environ) for k in range(4)]
    ends = [(w.wait(timeout=300), w.stderr.read()) for w in writers]
    assert [rc for rc, _ in ends] == [0] * 4, [err[-2000:] for _, err in ends]
    errors = sweepmanifest.read_manifest(tmp_path)["errors"]
    assert errors == {f"w{k}-{i}": f"RuntimeError: w{k} {i}" for k in range(4) for i in range(25)}


def test_a_data_path_spelled_otherwise_is_the_same_fixed_parameter(tmp_path):
    """A call that names the data file through a link, after one that named it directly, fixes the same data_path;
    another file is refused, naming data_path."""
    (tmp_path / "data.npz").write_bytes(b"x")
    (tmp_path / "other.npz").write_bytes(b"x")
    (tmp_path / "link.npz").symlink_to(tmp_path / "data.npz")
    first = sweepmanifest.call_record({"seed": [0]}, {"data_path": str(tmp_path / "data.npz")}, {})
    manifest = {"runs": {}, "errors": {}, "calls": [first]}
    sweepmanifest.check_fixed(sweepmanifest.call_record({"seed": [1]}, {"data_path": str(tmp_path / "link.npz")}, {}),
                              manifest, tmp_path)
    with pytest.raises(ValueError, match=r"^fixed\['data_path'\]"):
        sweepmanifest.check_fixed(sweepmanifest.call_record({"seed": [1]}, {"data_path": str(tmp_path / "other.npz")},
                                                            {}), manifest, tmp_path)


CALL = {"grid": {"seed": [0]}, "fixed": {}, "tie": {}}
RECORD = {"runs": {}, "errors": {}}


@pytest.mark.parametrize("name, refused", [
    ("grid", lambda out: sweepmanifest.call_record([("seed", [0])], {}, {})),
    ("tie", lambda out: sweepmanifest.call_record({"seed": [0]}, {}, ["lam_H"])),
    ("call", lambda out: sweepmanifest.check_fixed({"grid": {}}, dict(RECORD), out)),
    ("manifest", lambda out: sweepmanifest.check_fixed(CALL, [], out)),
    ("out_dir", lambda out: sweepmanifest.check_fixed(CALL, dict(RECORD), 5)),
    ("manifest", lambda out: sweepmanifest.recorded_calls(None)),
    ("manifest", lambda out: sweepmanifest.record_call({}, CALL, [], out)),
    ("planned", lambda out: sweepmanifest.record_call(dict(RECORD), CALL, [{"point": {}}], out)),
    ("kept", lambda out: sweepmanifest.record_call(dict(RECORD), CALL, [], out, kept="seed-0")),
    ("name", lambda out: sweepmanifest.record_result(dict(RECORD), "", {"status": "finished", "error": None})),
    ("result", lambda out: sweepmanifest.record_result(dict(RECORD), "seed-0", {"status": "finished"})),
    ("result", lambda out: sweepmanifest.record_result(dict(RECORD), "seed-0", {"status": "stopped", "error": "E: x",
                                                                              "state": 3})),
    ("run_dir", lambda out: sweepmanifest.folder_state("")),
    ("run_dir", lambda out: sweepmanifest.folder_state(5)),
    ("change", lambda out: sweepmanifest.update_manifest(out, "record")),
    ("out_dir", lambda out: sweepmanifest.read_manifest(None)),
    ("out_dir", lambda out: sweepmanifest.lock_sweep([str(out)]).__enter__()),
])
def test_the_records_functions_refuse_by_name_and_write_nothing(tmp_path, name, refused):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        refused(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_whose_runs_never_ran_exits_with_status_1(tmp_path, monkeypatch):
    """The cluster did not start: the call recorded its points and trained none.  The table lists them as absent,
    and the summary's exit status says that the sweep is not done, as it does for a task of a job array that never
    ran."""
    out = tmp_path / "out"

    def no_cluster(*args, **kwargs):
        raise OSError("the cluster did not start")

    monkeypatch.setattr(sweep, "_client", no_cluster)
    with pytest.raises(OSError, match="the cluster did not start"):
        sweep.run_sweep({"seed": [0, 1]}, TINY, out, workers=1, progress=False)
    table = sweep.summary(out)
    assert table["status"].tolist() == ["absent", "absent"] and table["error"].isna().all()
    assert sweep.exit_status(table) == 1
    proc = subprocess.run([sys.executable, "-m", "nclib.sweep", "--summary-only", "--out-dir", str(out)],
                          capture_output=True, text=True, env=os.environ, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert sweep.load_summary(out)["status"].tolist() == ["absent", "absent"]
    # one of the two trained: the other is still missing
    sweep.run_point({"seed": [0, 1]}, TINY, out, 0)
    table = sweep.summary(out)
    assert table["status"].tolist() == ["finished", "absent"] and sweep.exit_status(table) == 1


def test_a_call_interrupted_before_any_run_is_forgotten_on_request_and_fixes_nothing_after(tmp_path, monkeypatch,
                                                                                           capsys):
    """A call whose cluster never started recorded its fixed values and points: a corrected call is refused until
    --summary-only --forget-absent forgets them (the folder then holds no run: status 1, as before any run)."""
    out = tmp_path / "out"
    monkeypatch.setattr(sweep, "_client", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("no cluster")))
    with pytest.raises(OSError, match="no cluster"):
        sweep.run_sweep({"seed": [0, 1]}, {**TINY, "epochs": 40000}, out, workers=1, progress=False)
    with pytest.raises(ValueError, match=r"fixed\['epochs'\]"):
        sweep.plan({"seed": [0, 1]}, TINY, out)
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--summary-only", "--forget-absent", "--out-dir", str(out)])
    assert exc.value.code == 1 and "seed-0, seed-1" in capsys.readouterr().err
    manifest = sweepmanifest.read_manifest(out)
    assert manifest["runs"] == {} and manifest["calls"] == [] and "fixed" not in manifest
    assert [q["params"]["epochs"] for q in sweep.plan({"seed": [0, 1]}, TINY, out)] == [4, 4]
    # the corrected call is the folder's only one
    sweep.run_point({"seed": [0, 1]}, TINY, out, 0)
    assert [c["fixed"]["epochs"] for c in sweepmanifest.read_manifest(out)["calls"]] == [4]


def test_forget_absent_drops_the_points_without_a_run_folder_and_keeps_the_others(tmp_path, capsys):
    """A grid with a point given by mistake (seed 7 of a job array cancelled before its task ran): the summary exits
    with status 1 until --forget-absent forgets that point; the call that made seed 0 is kept, a call that made
    nothing (seed 8, failed before its folder was written) is dropped, its error printed, and a sweep running in the
    folder refuses the forgetting (exit 3).  A forgotten point's note that it was trained again from the start goes
    with it: recorded again, its row has none."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0, 7]}, TINY, out, 0)
    sweepmanifest.update_manifest(out, lambda m: sweepmanifest.record_call(
        m, sweepmanifest.call_record({"seed": [8]}, TINY, {}), sweep.plan({"seed": [8]}, TINY, out), out))
    sweepmanifest.update_manifest(out, lambda m: m["errors"].update({"seed-8": "ValueError: before its folder"}))
    # seed 7 was once trained again from the start, its folder deleted by hand since
    sweepmanifest.update_manifest(out, lambda m: m.setdefault("restarted", {}).update({"seed-7": "ResumeRefused: x"}))
    table = sweep.summary(out)
    assert table["status"].tolist() == ["finished", "absent", "failed"] and sweep.exit_status(table) == 1
    assert table["restarted"].tolist()[1] == "ResumeRefused: x"
    with sweepmanifest.lock_sweep(out):
        with pytest.raises(SystemExit) as exc:
            sweep.main(["--summary-only", "--forget-absent", "--out-dir", str(out)])
    assert exc.value.code == 3 and len(sweepmanifest.read_manifest(out)["runs"]) == 3
    capsys.readouterr()
    table = sweep.main(["--summary-only", "--forget-absent", "--out-dir", str(out)])
    err = capsys.readouterr().err.splitlines()
    assert any("seed-7, seed-8" in line for line in err)
    # seed 8's error, which no table gives any more, is printed, naming seed 8 alone
    notes = [line for line in err if "ValueError: before its folder" in line]
    assert len(notes) == 1 and "seed-8" in notes[0] and "seed-7" not in notes[0]
    assert table["run_name"].tolist() == ["seed-0"] and sweep.exit_status(table) == 0
    manifest = sweepmanifest.read_manifest(out)
    assert [c["grid"] for c in manifest["calls"]] == [{"seed": [0, 7]}] and manifest["grid"] == {"seed": [0, 7]}
    assert manifest["errors"] == {} and manifest["restarted"] == {} and sweepmanifest.forget_absent(out) == {}
    sweep.run_point({"seed": [0, 7]}, TINY, out, 0)  # seed 7 recorded again, without an error or a restart
    assert sweep.summary(out)["restarted"].isna().all()
    assert sweepmanifest.forget_absent(out) == {"seed-7": None}
    # the same grid again: its point without a run is recorded, and absent, again
    sweep.run_point({"seed": [0, 7]}, TINY, out, 0)
    assert sweep.summary(out)["status"].tolist() == ["finished", "absent"]
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--forget-absent", "--grid", "seed=0", "--out-dir", str(out)])
    assert exc.value.code == 2 and "--forget-absent" in capsys.readouterr().err


#: A sweep.json written before the calls listed their run names, as committed.
OLD_RECORD = pathlib.Path(__file__).resolve().parents[1] / "results/replica-cpu/minority/mlp-cifar10/sweep.json"


@pytest.mark.parametrize("form", ["calls without their runs", "the last call only, at the top"])
def test_forget_absent_keeps_the_calls_of_a_record_that_cannot_say_which_points_they_made(tmp_path, capsys, form):
    """A sweep.json whose calls do not list their run names (the committed minority sweep's, copied without its run
    folders), or one written before the record kept every call (the last call's grid, fixed and tie at its top):
    --forget-absent forgets every point without a run folder but keeps each call, whose fixed values still refuse a
    call that changes them."""
    committed = json.loads(OLD_RECORD.read_text())
    assert committed["calls"] and not any("runs" in c for c in committed["calls"])
    record = committed if form == "calls without their runs" else {
        k: v for k, v in committed.items() if k not in ("calls", "format")}
    out = tmp_path / "out"
    out.mkdir()
    (out / sweepmanifest.MANIFEST).write_text(json.dumps(record))
    calls = sweepmanifest.recorded_calls(sweepmanifest.read_manifest(out))
    with pytest.raises(SystemExit) as exc:  # no point left, no run folder: status 1, as before any run
        sweep.main(["--summary-only", "--forget-absent", "--out-dir", str(out)])
    assert exc.value.code == 1 and f"forgot {len(committed['runs'])} points" in capsys.readouterr().err
    manifest = sweepmanifest.read_manifest(out)
    assert manifest["runs"] == {} and sweepmanifest.recorded_calls(manifest) == calls
    last = calls[-1]
    with pytest.raises(ValueError, match=r"^fixed\['epochs'\]"):
        sweepmanifest.check_fixed(sweepmanifest.call_record(last["grid"], {**last["fixed"], "epochs": 5}, last["tie"]),
                                  manifest, out)
    sweepmanifest.check_fixed(sweepmanifest.call_record(last["grid"], last["fixed"], last["tie"]), manifest, out)


def test_a_run_folder_with_a_damaged_provenance_is_a_row_with_an_error_naming_the_file(tmp_path, capsys):
    """provenance.json cut short: the table and the list give the run (dead) with an error naming the file, the
    summary's status is 1; a task of the array says so before it trains the run again."""
    out = tmp_path / "out"
    args = ["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in TINY.items()], "--out-dir", str(out)]
    for i in (0, 1):
        sweep.run_point({"seed": [0, 1]}, TINY, out, i)
    path = out / "seed-0" / "provenance.json"
    assert sweeptable.read_provenance(out / "seed-0")[1] is None
    path.write_text(path.read_text()[:40])
    record, error = sweeptable.read_provenance(str(out / "seed-0"))
    assert record == {} and str(path) in error
    with pytest.raises(ValueError, match="^run_dir must be the path of a run folder"):
        sweeptable.read_provenance(5)
    capsys.readouterr()
    table = sweep.main(["--summary-only", "--out-dir", str(out)])
    assert table["status"].tolist() == ["dead", "finished"] and sweep.exit_status(table) == 1
    assert str(path) in table["error"][0] and table["error"][1:].isna().all()
    listed = sweep.main([*args, "--list-points"])
    assert listed["found"].tolist() == ["dead", "finished"] and listed["error"].tolist() == table["error"].tolist()
    capsys.readouterr()
    again = sweep.main([*args, "--point", "0"])
    notes = [line for line in capsys.readouterr().err.splitlines() if ": note: " in line]
    assert len(notes) == 1 and str(path) in notes[0]
    assert again["status"].tolist() == ["finished"] and again["error"].isna().all()
    assert sweep.exit_status(sweep.summary(out)) == 0


def test_a_diverged_run_outlives_a_saved_error_and_its_time_limit_is_no_column(tmp_path):
    """A diverged run's folder holds its result, as a finished run's does: an ordinary error that sweep.json saved
    for it (a worker killed, say) leaves its row, which gives the engine's account of the divergence from its
    provenance; a saved OtherData error stays.  The run's params.json records max_train_s, which says how the call
    ran, not what the run is: no column of the table."""
    out, fixed = tmp_path / "out", {k: v for k, v in TINY.items() if k != "lr"}
    row = sweep.run_point({"lr": [1e-2, 1e3]}, {**fixed, "max_train_s": 100}, out, 1)  # lr = 1000 diverges
    name = row["run_name"][0]
    assert row["status"].tolist() == ["diverged"]
    assert json.loads((out / name / "params.json").read_text())["max_train_s"] == 100
    table = sweep.summary(out)
    assert "max_train_s" not in table.columns and "lr" in table.columns
    diverged = json.loads((out / name / "provenance.json").read_text())["error"]
    assert diverged and table["error"][1] == diverged
    for saved, shown in (("KilledWorker: gone", diverged), ("OtherData: rewritten", "OtherData: rewritten")):
        def save(m, saved=saved):
            m["errors"][name] = saved
            m.pop("error_states", None)

        sweepmanifest.update_manifest(out, save)
        table = sweep.summary(out)
        assert table["status"][1] == "diverged" and table["error"][1] == shown, saved
        outcome = sweeptable.recorded_outcome(name, "diverged", {"errors": {name: saved}}, {})
        assert outcome == ("diverged", None if shown == diverged else saved)
    assert sweeptable.recorded_outcome(name, "stopped", {"errors": {name: "KilledWorker: gone"}}, {}) == \
        ("stopped", "KilledWorker: gone")


def test_a_damaged_run_folder_names_its_file_before_a_saved_error(tmp_path):
    """A run stopped with an error saved in sweep.json (which holds for a stopped run), then its provenance.json cut
    short: the row's error is the damaged file's, naming it, not the saved one (table_row: a run folder whose files
    are damaged is a row whose error names the file)."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0]}, {**TINY, "max_train_s": 0}, out, 0)

    def save(m):
        m["errors"]["seed-0"] = "KilledWorker: gone"
        m.pop("error_states", None)

    sweepmanifest.update_manifest(out, save)
    table = sweep.summary(out)
    assert table["status"][0] == "stopped" and table["error"][0] == "KilledWorker: gone"
    path = out / "seed-0" / "provenance.json"
    path.write_text(path.read_text()[:40])
    table = sweep.summary(out)
    assert table["error"][0].startswith("ValueError: ") and str(path) in table["error"][0]
    assert sweeptable.read_provenance(out / "seed-0")[1] == table["error"][0]


def test_loading_a_table_that_was_never_written_is_refused_naming_out_dir(tmp_path):
    """load_summary of a folder without sweep.csv (a task of a job array writes none), or of no folder at all: a
    ValueError naming out_dir and the folder, not a FileNotFoundError; once summary has written the table it reads
    it back."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0]}, TINY, out, 0)
    for folder in (out, tmp_path / "missing"):
        with pytest.raises(ValueError, match="^out_dir") as refused:
            sweep.load_summary(folder)
        assert str(folder) in str(refused.value)
    assert sweep.summary(out)["run_name"].tolist() == ["seed-0"]
    assert sweep.load_summary(out)["run_name"].tolist() == ["seed-0"]


def test_the_help_gives_a_job_array_whose_indices_are_its_points(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--help"])
    shown = capsys.readouterr().out
    assert exc.value.code == 0 and sweep.EPILOG in shown
    args = re.search(r'ARGS="([^"]*)"', sweep.EPILOG).group(1).replace("runs/d", str(tmp_path / "d"))
    args = args.replace("\\\n", " ")  # the shell's line continuation
    listed = sweep.main([*args.split(), "--list-points"])
    last = int(re.search(r"--array=0-(\d+)", sweep.EPILOG).group(1))
    assert listed["point"].tolist() == list(range(last + 1)) and not (tmp_path / "d").exists()
    # each task trains with one torch thread, as a Dask worker does (a CPU run resumes only with as many)
    wrap = re.search(r'--wrap "([^"]*)"', sweep.EPILOG).group(1).split()
    assert wrap[0] == "OMP_NUM_THREADS=1" and wrap[1:5] == [".venv/bin/python", "-m", "nclib.sweep", "$ARGS"]


def test_the_list_of_points_gives_what_a_task_would_do_in_its_fourth_field(tmp_path, capsys):
    """--list-points prints point, run_name, found and next as its first four fields, an error after them: the
    chapter's awk line picks the points a task would train (next start or resume) from it, for --array, and leaves
    out a finished run (keep), one a live process writes (leave) and one a lock of another host holds (refuse)."""
    out, grid = tmp_path / "out", {"seed": [0, 1, 2, 3, 4]}
    names = [run_name_for(p) for p in expand_grid(grid)]
    with worker_threads():
        train.run(**TINY, seed=0, out_dir=out, run_name=names[0], progress=False)
        train.run(**TINY, seed=1, out_dir=out, run_name=names[1], max_train_s=0, progress=False)
        train.run(**TINY, seed=4, out_dir=out, run_name=names[4], max_train_s=0, progress=False)
    _kill(out / names[4])
    (out / names[4] / locks.LOCK).write_text(json.dumps({"pid": 12, "host": "another-node"}) + "\n")
    holder = _hold_lock(out / names[2])
    try:
        capsys.readouterr()
        listed = sweep.main(["--grid", "seed=0,1,2,3,4", *[f"--set={k}={_text(v)}" for k, v in TINY.items()],
                             "--out-dir", str(out), "--list-points"])
        shown = capsys.readouterr().out
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    assert listed["next"].tolist() == ["keep", "resume", "leave", "start", "refuse"] and listed["error"].notna()[4]
    fields = [line.split() for line in shown.splitlines()]
    assert fields[0][:4] == ["point", "run_name", "found", "next"]
    assert [f[:4] for f in fields[1:]] == [[str(i), n, s, x] for i, n, s, x in listed[["point", "run_name", "found",
                                                                                          "next"]].values.tolist()]
    todo = subprocess.run(["bash", "-c", "awk 'NR>1 && ($4==\"start\" || $4==\"resume\") {print $1}' | paste -sd, -"],
                          input=shown, capture_output=True, text=True, check=True).stdout.strip()
    assert todo == "1,3"


def test_exit_status_refuses_what_is_not_a_sweeps_table():
    assert sweep.exit_status(pd.DataFrame({"status": ["finished", "diverged"], "error": [None, "diverged"]})) == 0
    assert sweep.exit_status(pd.DataFrame({"status": ["finished", "stopped"], "error": [None, None]})) == 0
    assert sweep.exit_status(pd.DataFrame({"status": ["finished", "stopped"], "error": [None, "x"]})) == 1
    assert sweep.exit_status(pd.DataFrame({"status": ["finished", "absent"], "error": [None, None]})) == 1
    for refused in ("OtherData: x", "RunExists: x"):  # a diverged run that is not this point's result
        assert sweep.exit_status(pd.DataFrame({"status": ["finished", "diverged"], "error": [None, refused]})) == 1
    for bad in (pd.DataFrame({"seed": [0]}), {"status": ["failed"]}):
        with pytest.raises(ValueError, match="table must be a sweep's table"):
            sweep.exit_status(bad)


@pytest.mark.parametrize("argv, named", [(["--set", "widht=16"], ["--set"]),
                                         (["--grid", "seed=0", "--tie", "lam_h=seed"], ["--tie lam_h"]),
                                         (["--grid", "max_train_s=1,2"], ["--grid"]),
                                         (["--grid", "seed=0", "--workers", "0"], ["--workers"]),
                                         (["--grid", "seed=0", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"],
                                          ["--workers", "--scheduler"]),
                                         (["--grid", "seed=0", "--list-points", "--restart-refused"],
                                          ["--list-points", "--restart-refused"]),
                                         (["--grid", "seed=0", "--list-points", "--point", "0"],
                                          ["--list-points", "--point"]),
                                         (["--point", "0", "--summary-only"], ["--point", "--summary-only"]),
                                         (["--grid", "seed=0", "--forget-absent"], ["--forget-absent"])])
def test_command_line_refusals_use_the_command_lines_spelling(tmp_path, capsys, argv, named):
    with pytest.raises(SystemExit) as exc:
        sweep.main([*argv, *[f"--set={k}={_text(v)}" for k, v in TINY.items()],
                    "--out-dir", str(tmp_path / "out")])
    error = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]  # not the usage lines
    assert exc.value.code == 2 and len(error) == 1 and all(name in error[0] for name in named), error
    assert not (tmp_path / "out").exists()


def test_a_local_cluster_opens_no_dashboard_and_no_fixed_port_and_its_workers_have_one_thread(monkeypatch):
    """The local cluster of a sweep: its scheduler's web server on a free port of this machine only, serving no
    dashboard (its page /status is not found), and OMP_NUM_THREADS=1 in its workers, which Dask sets (here started
    from an environment without it), so that N runs use N cores."""
    import urllib.error
    import urllib.request

    with monkeypatch.context() as env:
        env.delenv("OMP_NUM_THREADS", raising=False)
        client, cluster = sweep._client(None, 1, {})
    try:
        addresses = [s.getsockname()[:2] for s in cluster.scheduler.http_server._sockets.values()]
        assert addresses and all(host == "127.0.0.1" and port != 8787 for host, port in addresses)
        assert list(client.run(lambda: os.environ.get("OMP_NUM_THREADS")).values()) == ["1"]  # read in the worker
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as page:
            no_proxy.open(f"http://127.0.0.1:{addresses[0][1]}/status", timeout=30)
        assert page.value.code == 404
    finally:
        client.close()
        cluster.close()


def test_a_local_cluster_has_one_worker_per_core_or_one_when_the_runs_ask_for_resources(tmp_path, monkeypatch):
    import dask.distributed

    made = []
    monkeypatch.setattr(dask.distributed, "LocalCluster", lambda **kw: made.append(kw) or object())
    monkeypatch.setattr(dask.distributed, "Client", lambda cluster: cluster)
    for workers, held in ((None, {}), (None, {"GPU": 1}), (None, {"licence": 2}), (3, {"GPU": 1}), (2, {})):
        sweep._client(None, workers, held)
    cores = len(os.sched_getaffinity(0))
    assert [kw["n_workers"] for kw in made] == [cores, 1, 1, 3, 2]
    # each worker holds what the runs ask for (a run asking for GPU=1 waits forever on workers holding nothing)
    assert [kw["resources"] for kw in made] == [None, {"GPU": 1}, {"licence": 2}, {"GPU": 1}, None]
    # no more workers than runs to train (at least one), unless asked for
    for runs_left in (1, 2, cores + 3, 0):
        sweep._client(None, None, {}, runs=runs_left)
    sweep._client(None, 3, {}, runs=1)
    assert [kw["n_workers"] for kw in made[5:]] == [1, min(2, cores), cores, 1, 3]
    assert {kw["threads_per_worker"] for kw in made} == {1}  # one run per worker process at a time
    # what a sweep's workers hold: the largest amount any of its runs asks for, of each resource
    asked = []

    def no_cluster(scheduler, workers, held, runs=None):
        asked.append(held)
        raise OSError("no cluster here")

    monkeypatch.setattr(sweep, "_client", no_cluster)
    for resources in (None, {"licence": 1}):
        with pytest.raises(OSError, match="no cluster here"):
            sweep.run_sweep({"seed": [0, 1]}, TINY, tmp_path / str(resources), progress=False, resources=resources)
    assert asked == [{}, {"licence": 1}]
    sized = []
    monkeypatch.setattr(sweep, "_client", lambda scheduler, workers, held, runs=None: sized.append(runs) or no_cluster(
        scheduler, workers, held))
    with pytest.raises(OSError, match="no cluster here"):
        sweep.run_sweep({"seed": [0, 1, 2]}, TINY, tmp_path / "three", progress=False)
    assert sized == [3]


def test_runs_on_any_cuda_device_ask_for_a_gpu_and_a_cluster_without_one_warns(scheduler, tmp_path):
    assert [sweep.task_resources({"device": d}) for d in ("cuda", "cuda:1", "cpu", "auto")] == \
        [{"GPU": 1}, {"GPU": 1}, None, None]
    from dask.distributed import Client

    with Client(scheduler) as client:  # the module's cluster: workers without resources
        with pytest.warns(UserWarning) as caught:
            sweep._train_on_dask(client, [], [], {"GPU": 1}, tmp_path, False, False)
        assert len(caught) == 1 and "['GPU']" in str(caught[0].message)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sweep._train_on_dask(client, [], [], {}, tmp_path, False, False)


def test_the_points_of_a_gpu_array_are_listed_on_a_machine_without_a_gpu(tmp_path, monkeypatch, capsys):
    """--list-points, the array's first step, runs on a login node without a GPU; --point there is refused."""
    from nclib import parameters

    monkeypatch.setattr(parameters, "_cuda_available", lambda: False)
    argv = ["--grid", "seed=0,1", *[f"--set={k}={_text(v)}" for k, v in TINY.items() if k != "device"],
            "--set", "device=cuda", "--out-dir", str(tmp_path / "out")]
    listed = sweep.main([*argv, "--list-points"])
    assert listed["run_name"].tolist() == ["seed-0", "seed-1"] and listed["next"].tolist() == ["start", "start"]
    with pytest.raises(SystemExit) as exc:
        sweep.main([*argv, "--point", "0"])
    assert exc.value.code == 2 and "device" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_run_another_hosts_process_is_writing_is_running_not_an_error(tmp_path, capsys):
    """A live writer holds the run folder's lock, and its lock record names another host (a folder shared by the
    nodes of a cluster): the table says "running", with no error, and the summary's status is 0 for it."""
    out = tmp_path / "out"
    sweep.run_point({"seed": [0]}, {**TINY, "max_train_s": 0}, out, 0)
    holder = _flock_held(out / "seed-0" / locks.LOCK)
    try:
        (out / "seed-0" / locks.LOCK).write_text(json.dumps({"pid": 4242, "host": "node17"}) + "\n")
        table = sweep.main(["--summary-only", "--out-dir", str(out)])
        assert table["status"].tolist() == ["running"] and table["error"].isna().all()
        assert sweep.exit_status(table) == 0
        assert sweep.list_points({"seed": [0]}, {**TINY, "max_train_s": 0}, out)["error"].isna().all()
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0


def test_two_runs_of_one_worker_leave_the_warnings_filter_as_it_was(monkeypatch):
    """The fault: two runs trained at once in one worker process (``--nthreads 2``) each entered and left the
    process's warnings recorder; leaving out of order put the first run's recorder back, so that later warnings of
    the process went to a finished run's list.  Now one run records at a time: the first run (entered first, left
    first) lists its warning, the second lists none, and after both the process warns as before.  A run lists every
    warning it gave, a repeated one each time and a DeprecationWarning too, whatever the process's filter."""
    import threading

    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def fake_train_point(params, restart_refused=False):
        if params["name"] == "a":
            a_in.set()
            assert b_in.wait(30)
            warnings.warn("from a", RuntimeWarning)
        else:
            assert a_in.wait(30)
            b_in.set()
            assert a_out.wait(30)  # b leaves after a: out of order for nested recorders
        return {"status": "finished", "error": None, "restarted": None, "fresh": True}

    monkeypatch.setattr(sweep, "_train_point", fake_train_point)
    results = {}

    def run(name):
        results[name] = sweep._run_point({"name": name})
        if name == "a":
            a_out.set()

    before = (warnings.showwarning, getattr(warnings, "_showwarnmsg_impl", None), list(warnings.filters))
    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["a"]["warnings"] == [(RuntimeWarning, "from a")] and results["b"]["warnings"] == []
    assert (warnings.showwarning, getattr(warnings, "_showwarnmsg_impl", None), list(warnings.filters)) == before
    with pytest.warns(RuntimeWarning, match="later"):
        warnings.warn("later", RuntimeWarning)
    # every warning of a run is listed, a repeated one each time it came, whatever the process's filter would show
    # (here Python's defaults: a RuntimeWarning once per line, a DeprecationWarning not at all)

    def repeating(params, restart_refused=False):
        for _ in range(2):
            warnings.warn("taking over the lock", RuntimeWarning)
        warnings.warn("old API", DeprecationWarning)
        return {"status": "finished", "error": None, "restarted": None, "fresh": True}

    monkeypatch.setattr(sweep, "_train_point", repeating)
    with warnings.catch_warnings():
        warnings.simplefilter("default", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        listed = sweep._run_point({"name": "c"})["warnings"]
    assert listed == [(RuntimeWarning, "taking over the lock")] * 2 + [(DeprecationWarning, "old API")]


def test_a_sweep_keeps_a_run_whose_checkpoint_a_gpu_short_of_memory_could_not_load(tmp_path, monkeypatch):
    """What was wrong: a CUDA out-of-memory error while a stopped run's checkpoint loaded (its sha256 matching) was
    taken for a damaged checkpoint, a refused resume; with restart_refused the sweep then deleted the good run and
    trained it again.  The shortage is the point's error, the run is left as it is with no restart noted, and the
    next call resumes it."""
    kw = dict(TINY, epochs=10**6, out_dir=str(tmp_path), run_name="r", progress=False)
    folder = train.run(**kw, max_train_s=0)  # stopped, with a checkpoint
    p = train.check_params(**kw, max_train_s=0)
    real = torch.load

    def short(f, *args, **kwargs):
        if pathlib.Path(f).name == runs.CHECKPOINT:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", short)
    before = _files(folder)
    result = sweep._run_point(p, restart_refused=True)
    assert result["status"] == "stopped" and result["error"].startswith("OutOfMemoryError: ")
    assert result["restarted"] is None and result["fresh"] is False and result["warnings"] == []
    assert _files(folder) == before
    monkeypatch.undo()
    resumed = sweep._run_point(p, restart_refused=True)  # resumed, and stopped again at once
    assert resumed["status"] == "stopped" and resumed["error"] is None and resumed["restarted"] is None
    assert train.load_history(folder)["epoch"].tolist() == [0, 2, 4]


def test_a_restart_whose_new_training_fails_still_notes_the_run_it_replaced(tmp_path, monkeypatch):
    """What was wrong: a stopped run whose resume is refused is deleted and trained again with restart_refused; where
    that new training failed (or diverged), the point reported no restart, no RunRestarted warning, and fresh False,
    so that sweep.json kept an older 'restarted' note for a run that had been replaced.  Both are set, and the note
    given, once the run is given up, before its new training."""
    kw = dict(TINY, epochs=10**6, out_dir=str(tmp_path), run_name="r", progress=False)
    folder = train.run(**kw, max_train_s=0)  # stopped, with a checkpoint
    prov_path = folder / "provenance.json"  # a resume is refused: started on another card
    prov_path.write_text(json.dumps({**json.loads(prov_path.read_text()), "device_name": "NVIDIA H200"}))
    monkeypatch.setattr(train.Engine, "host_metrics", lambda self, payload: 1 / 0)  # the new training fails
    result = sweep._run_point(train.check_params(**kw), restart_refused=True)
    assert result["status"] == "failed" and result["error"].startswith("ZeroDivisionError: ")
    assert result["restarted"].startswith("ResumeRefused: ") and "another device" in result["restarted"]
    assert result["fresh"] is True
    notes = [message for category, message in result["warnings"] if category is sweep.RunRestarted]
    assert len(notes) == 1 and str(folder) in notes[0]
    assert json.loads(prov_path.read_text())["device_name"] != "NVIDIA H200"  # the old run is gone
    manifest = {"runs": {}, "errors": {}, "restarted": {"r": "ResumeRefused: an earlier call's refusal"}}
    sweepmanifest.record_result(manifest, "r", result)
    assert manifest["restarted"] == {"r": result["restarted"]}


def test_a_planned_start_whose_training_fails_is_fresh(tmp_path, monkeypatch):
    """A point planned "start" (its folder holds no run) whose training fails was reported not fresh, so sweep.json
    kept a 'restarted' note of the run the folder held before; the start is recorded as the plan answers it."""
    kw = dict(TINY, out_dir=str(tmp_path), run_name="r", progress=False)
    monkeypatch.setattr(train.Engine, "host_metrics", lambda self, payload: 1 / 0)
    result = sweep._run_point(train.check_params(**kw), restart_refused=True)
    assert result["status"] == "failed" and result["error"].startswith("ZeroDivisionError: ")
    assert result["fresh"] is True and result["restarted"] is None and result["warnings"] == []
    manifest = {"runs": {}, "errors": {}, "restarted": {"r": "ResumeRefused: an earlier call's refusal"}}
    sweepmanifest.record_result(manifest, "r", result)
    assert manifest["restarted"] == {}


def test_a_parameter_that_defines_runs_on_some_data_sets_only_leaves_the_workers_working(tmp_path, monkeypatch):
    """What was wrong: the worker's check that its run folder holds no other call's run asked the point's defining
    parameters to hold a list written out by hand (every parameter but the per-data-set ones of defining_params,
    data_path, dim and spread, repeated).  A parameter that defining_params came to leave out on some data set, as
    it leaves out dim and spread, would have made every point of that data set an error.  The list is read from
    defining_params: here width, left out on the synthetic mixture, and the point trains; a want lacking a parameter
    that defines runs on every data set is still refused by name."""
    from nclib import data, parameters

    real = parameters.defining_params

    def width_not_on_synthetic(p):
        return {k: v for k, v in real(p).items() if not (k == "width" and p["dataset"] == "synthetic")}

    monkeypatch.setattr(parameters, "defining_params", width_not_on_synthetic)
    for name in data.DATASETS:
        want = parameters.defining_params({**DEFAULTS, "dataset": name})
        assert sweepplan.refuse_other_run(tmp_path / "none", want) is None
        with pytest.raises(ValueError, match=r"^want must .*it lacks \['epochs'\]"):
            sweepplan.refuse_other_run(tmp_path / "none", {k: v for k, v in want.items() if k != "epochs"})
    result = sweep._run_point(train.check_params(**TINY, out_dir=str(tmp_path), run_name="r", progress=False))
    assert result["error"] is None and result["status"] == "finished" and result["fresh"] is True


@pytest.mark.parametrize("bad", [{"GPU": 0}, {"GPU": -1}, {"GPU": float("inf")}, {"GPU": True}, {"GPU": "1"},
                                 {1: 1}, [("GPU", 1)], "GPU=1"], ids=repr)
def test_run_sweep_refuses_the_resources_that_task_resources_refuses(tmp_path, bad):
    """run_sweep checks its resources before anything is planned or written, by the rule task_resources applies to
    each run (one check for both): each bad value is refused naming resources by both, and nothing is written."""
    with pytest.raises(ValueError, match="^resources"):
        sweep.task_resources({"device": "cpu"}, bad)
    with pytest.raises(ValueError, match="^resources"):
        sweep.run_sweep({"seed": [0]}, TINY, tmp_path / "out", resources=bad, progress=False)
    assert not (tmp_path / "out").exists()
