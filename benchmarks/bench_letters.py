"""Benchmark of the rendering of the letters-synthetic stand-in (nclib.letters.letters_synthetic) that a letters
figure's notebook does when it does not read a rendering saved ahead (ch-figures-summary, "Speed of the
engine").

The GPU calibration (``scripts/gpu_budget.py calibrate --letters-images 260``) timed the rendering of a sample of
260 letters and scaled it to the profile's letters.  Rendering draws each letter's glyph in each font once and
reuses it, so a small sample costs more per letter than the whole profile.  This script times both, the sample
(``--sample`` letters, as many of each class) and the whole profile of Figure 2 at ``--scale``, each ``--repeats``
times in alternation after one untimed rendering (which pays the imports of the renderer), and prints the medians,
their ranges and the quotient of the whole profile's time by the sample's scaled to the profile.  The summary
quotes the two times to show the calibration's rendering time too high; it does not correct that time.  One core
(OMP_NUM_THREADS=1).  The output opens with the command that made it and ends with the commit, the processor, the
load average and the time.  The book quotes the committed output, which this command writes over (from a clean
checkout, in a commit of its own: benchmarks/results/README.md):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_letters.py > benchmarks/results/bench_letters.txt

A trial, which writes nothing:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_letters.py --scale cpu-scale --sample 26 --repeats 1
"""
import os
import pathlib
import sys

if str(pathlib.Path(__file__).resolve().parent) not in sys.path:  # loaded from its file path: _common lies beside it
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import closing_line, command_line, one_blas_thread, refuse_below  # noqa: E402

_GIVEN_ENV = one_blas_thread()  # one thread, where the caller did not say, before numpy is imported

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import letters, provenance  # noqa: E402
from nclib.figures import figure_parameters  # noqa: E402


def render_seconds(counts, seed: int) -> float:
    """Wall seconds of one rendering of ``counts`` letters, computed afresh (the renderer keeps its last few
    renderings; a kept one would be returned at once)."""
    letters._render_letters.cache_clear()
    t0 = time.perf_counter()
    letters.letters_synthetic(counts, seed=seed)
    return time.perf_counter() - t0


def spread(values) -> str:
    return f"[{min(values):.3f}, {max(values):.3f}]"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=("gpu", "cpu-scale"), default="gpu",
                    help="whose profile of Figure 2 to render whole (default gpu: the paper's 5,500 letters)")
    ap.add_argument("--sample", type=int, default=260,
                    help="letters of the sample, as many of each of the 26 classes (default 260, the calibration's)")
    ap.add_argument("--repeats", type=int, default=5, help="renderings of each, in alternation (default 5)")
    args = ap.parse_args(argv)
    refuse_below(ap, args, {"sample": 26, "repeats": 1})
    p = figure_parameters(2, args.scale)
    counts = np.asarray(p["counts"])
    per_class = args.sample // counts.size
    sample = np.full(counts.size, per_class)
    print(f"$ {command_line(__file__, argv, env=_GIVEN_ENV)}")
    import matplotlib
    import scipy
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, matplotlib "
          f"{matplotlib.__version__}, {platform.machine()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; "
          f"timings of each rendering: {args.repeats}, the two in alternation, after one untimed rendering "
          f"(medians; the range in brackets)")
    render_seconds(np.ones(counts.size, dtype=int), seed=p["seed"] + 1)  # the imports of the renderer, untimed
    sample_s, whole_s = [], []
    for _ in range(args.repeats):
        sample_s.append(render_seconds(sample, seed=p["seed"]))
        whole_s.append(render_seconds(counts, seed=p["seed"]))
    scaled = [s / sample.sum() * counts.sum() for s in sample_s]
    rounds = [w / s for w, s in zip(whole_s, scaled)]
    med_sample, med_scaled, med_whole = (float(np.median(v)) for v in (sample_s, scaled, whole_s))
    print(f"profile         Figure 2 at scale {args.scale}: {int(counts.sum()):,} letters in {counts.size} classes, "
          f"seed {p['seed']}")
    print(f"sample          {int(sample.sum()):,} letters ({per_class} of each class): {med_sample:.3f} s "
          f"{spread(sample_s)}, scaled to the profile {med_scaled:.3f} s {spread(scaled)}")
    print(f"whole profile   {int(counts.sum()):,} letters: {med_whole:.3f} s {spread(whole_s)}")
    print(f"ratio           whole / scaled sample {med_whole / med_scaled:.4f} (of the medians; per round "
          f"{spread(rounds)})")
    code = provenance.git_state()
    print(closing_line(code["git_commit"], code["git_dirty"], provenance.cpu_model()))


if __name__ == "__main__":
    main()
