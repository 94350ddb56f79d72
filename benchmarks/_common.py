"""What the benchmarks in this folder say of how their outputs were made: the command (with the environment
variables that change what it measures), a path as the output shows it, the commit as the output prints it,
the UTC time and the host's load average; and their refusal of a count below its least value.

Standard library only, so that ``bench_spectrum.py`` can import it before numpy (its BLAS thread defaults must
be set first).  A script imports it from the folder it lies in: ``python benchmarks/bench_x.py`` puts that
folder on ``sys.path``, and a script loaded from its file path puts it there itself.
"""
from __future__ import annotations

import os
import pathlib
import shlex
import sys
import time

#: The environment variables that change what a benchmark measures (threads of the CPU kernels, the GPU seen, TF32
#: forced on or off), shown before the command where they are set.
COMMAND_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
               "NVIDIA_TF32_OVERRIDE")


#: The environment variables that set the threads of the numerical libraries (OpenMP, OpenBLAS, MKL): the CPU
#: benchmarks of numpy code run them at one thread (:func:`one_blas_thread`).
BLAS_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> dict:
    """Set each of :data:`BLAS_THREAD_ENV` to 1 where the caller has not set it, which must happen before numpy is
    imported; returns those the caller set, as the command line shows them (``command_line(..., env=...)``)."""
    given = {k: os.environ[k] for k in BLAS_THREAD_ENV if k in os.environ}
    for k in BLAS_THREAD_ENV:
        os.environ.setdefault(k, "1")
    return given


def command_line(script, argv=None, env=None) -> str:
    """The command that ran ``script`` with the arguments ``argv`` (default: this process's), as a shell would take
    it: the variables ``env`` (a mapping; default: those of :data:`COMMAND_ENV` that are set), then ``python``, the
    script (relative to the working directory where it lies below it) and the arguments.  The output's first line
    is it after ``$ ``."""
    args = sys.argv[1:] if argv is None else list(argv)
    if env is None:
        env = {k: os.environ[k] for k in COMMAND_ENV if k in os.environ}
    assignments = [f"{k}={shlex.quote(v)}" for k, v in env.items()]
    return " ".join(assignments + [shlex.join(["python", shown(pathlib.Path(script)), *args])])


def shown(path: pathlib.Path) -> str:
    """``path`` as the output shows it: relative to the working directory where it lies below it."""
    try:
        return str(pathlib.Path(path).resolve().relative_to(pathlib.Path.cwd()))
    except ValueError:
        return str(path)


def commit_text(commit: str, dirty: bool) -> str:
    """The commit benchmarked as the outputs print it: its hash, and whether the checkout differed from it."""
    return f"{commit}{' with uncommitted changes' if dirty else ''}"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load_average() -> list[float] | None:
    """The host's load average over 1, 5 and 15 minutes (other jobs on a shared machine slow the CPU timings);
    None where the system does not say."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def closing_line(commit: str, dirty: bool, cpu: str) -> str:
    """The last line of a CPU benchmark's output, what qualifies its timings: the code timed (:func:`commit_text`),
    the processor ``cpu``, the load average of the machine (other jobs on it) and the time (UTC) it ended."""
    load = load_average()
    load = "n/a" if load is None else ", ".join(f"{x:.2f}" for x in load)
    return (f"commit {commit_text(commit, dirty)}, {cpu}, load average {load}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def refuse_below(ap, args, least: dict) -> None:
    """``ap.error`` (exit status 2) naming the first flag of ``least`` (argument name: least value) whose value in
    ``args`` is below its least value; a value None (the flag not given, no default) passes."""
    for name, floor in least.items():
        value = getattr(args, name)
        if value is not None and value < floor:
            ap.error(f"--{name.replace('_', '-')} must be at least {floor}, got {value}")
