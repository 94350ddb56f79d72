"""Benchmark of nclib.imbalance.ybar_singular_values (Theorem 4.4 via the secular equation; ch-spectrum).

Prints the time for K = 1,000,000 classes in m = 100 groups, and, at K = 1,000 classes, the time of
the structured solver against a dense SVD of Y-bar, with their ratio.  One core (OMP_NUM_THREADS=1),
best of several repeats.  The book quotes the committed output:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_spectrum.py > benchmarks/results/bench_spectrum.txt
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

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


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; best of repeats")
    big = random_profile(10**6, 100, 100_000, seed=0)
    t_big = best_time(lambda: imb.ybar_singular_values(big), repeats=7)
    s_big = imb.ybar_singular_values(big)
    print(f"ybar_singular_values, K = {s_big.size:,} classes in m = {len(big)} groups: {t_big * 1e3:.2f} ms")

    small = random_profile(1000, 100, 100_000, seed=1)
    Yb = imb.ybar(imb.class_counts(small))
    t_fast = best_time(lambda: imb.ybar_singular_values(small), repeats=20)
    t_svd = best_time(lambda: np.linalg.svd(Yb, compute_uv=False), repeats=3)
    s_fast = imb.ybar_singular_values(small)
    s_svd = np.linalg.svd(Yb, compute_uv=False)
    rel = np.max(np.abs(s_fast[:-1] - s_svd[:-1]) / s_svd[:-1])
    print(f"K = 1,000 classes in m = {len(small)} groups: ybar_singular_values {t_fast * 1e3:.3f} ms, "
          f"dense SVD of Y-bar {t_svd * 1e3:.1f} ms, ratio SVD / structured = {t_svd / t_fast:.0f}")
    print(f"K = 1,000: largest relative difference of the positive singular values = {rel:.1e}, "
          f"zero singular value from the SVD = {s_svd[-1] / s_svd[0]:.1e} x the largest")
    # what qualifies the timings: the code timed, the processor, and other jobs on the machine when they ended
    code = provenance.git_state()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"commit {code['git_commit']}{' with uncommitted changes' if code['git_dirty'] else ''}, "
          f"{provenance.cpu_model()}, load average {load}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
