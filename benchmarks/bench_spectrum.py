"""Benchmark of nclib.imbalance.ybar_singular_values (Theorem 4.4 via the secular equation; ch-spectrum).

Prints the time for K = 1,000,000 classes in m = 100 groups, and, at K = 1,000 classes, the time of
the structured solver against a dense SVD of Y-bar, with their ratio.  One core (OMP_NUM_THREADS=1), every
time the best of ``--repeats`` calls (default 20), the same count for the solver and the SVD, so that their
ratio compares like with like.  The output opens with the command that made it and names the BLAS that numpy
was built with (the dense SVD's speed is that library's).  The book quotes the committed output, which this
command writes over (from a clean checkout, in a commit of its own: benchmarks/results/README.md):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_spectrum.py > benchmarks/results/bench_spectrum.txt

A trial, which writes nothing:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_spectrum.py --repeats 1
"""
import os
import pathlib
import sys

if str(pathlib.Path(__file__).resolve().parent) not in sys.path:  # loaded from its file path: _common lies beside it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import closing_line, command_line, one_blas_thread, refuse_below  # noqa: E402 - standard library
_GIVEN_ENV = one_blas_thread()  # one thread, where the caller did not say, before numpy is imported

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
import nclib.imbalance as imb  # noqa: E402
from nclib import provenance  # noqa: E402


def random_profile(K, m, N_max, seed):
    """m distinct sizes in [1, N_max] and multiplicities l_i >= 1 summing to K."""
    rng = np.random.default_rng(seed)
    sizes = np.sort(rng.choice(np.arange(1, N_max + 1), size=m, replace=False))[::-1]
    mults = rng.multinomial(K - m, np.ones(m) / m) + 1
    return list(zip(sizes.tolist(), mults.tolist()))


def best_time(func, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def blas() -> str:
    """The BLAS that numpy was built with, as numpy's build configuration names it: name, version and, for
    OpenBLAS, its build configuration."""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # noqa: BLE001 - an older numpy without the dictionary form
        return "unknown"
    text = f"{info.get('name', '?')} {info.get('version', '?')}"
    config = " ".join(str(info.get("openblas configuration", "")).split())
    return f"{text} ({config})" if config else text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20, help="calls per timing, the best one taken (default 20)")
    args = ap.parse_args(argv)
    refuse_below(ap, args, {"repeats": 1})
    R = args.repeats
    print(f"$ {command_line(__file__, argv, env=_GIVEN_ENV)}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, BLAS {blas()}; each time the best of {R} calls")
    big = random_profile(10**6, 100, 100_000, seed=0)
    t_big = best_time(lambda: imb.ybar_singular_values(big), repeats=R)
    s_big = imb.ybar_singular_values(big)
    print(f"ybar_singular_values, K = {s_big.size:,} classes in m = {len(big)} groups: {t_big * 1e3:.2f} ms")

    small = random_profile(1000, 100, 100_000, seed=1)
    Yb = imb.ybar(imb.class_counts(small))
    t_fast = best_time(lambda: imb.ybar_singular_values(small), repeats=R)
    t_svd = best_time(lambda: np.linalg.svd(Yb, compute_uv=False), repeats=R)
    s_fast = imb.ybar_singular_values(small)
    s_svd = np.linalg.svd(Yb, compute_uv=False)
    rel = np.max(np.abs(s_fast[:-1] - s_svd[:-1]) / s_svd[:-1])
    print(f"K = 1,000 classes in m = {len(small)} groups: ybar_singular_values {t_fast * 1e3:.3f} ms, "
          f"dense SVD of Y-bar {t_svd * 1e3:.1f} ms, ratio SVD / structured = {t_svd / t_fast:.0f} "
          f"(best of {R} each)")
    print(f"K = 1,000: largest relative difference of the positive singular values = {rel:.1e}, "
          f"zero singular value from the SVD = {s_svd[-1] / s_svd[0]:.1e} x the largest")
    code = provenance.git_state()
    print(closing_line(code["git_commit"], code["git_dirty"], provenance.cpu_model()))


if __name__ == "__main__":
    main()
