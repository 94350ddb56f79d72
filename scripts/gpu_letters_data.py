"""Render the letters stand-in of Figures 2 and 4 once, here, into the .npz their GPU notebooks read.

    python scripts/gpu_letters_data.py DEST.npz [--scale gpu]

Figures 2 and 4 train on ``letters-synthetic`` (the stand-in for EMNIST letters). A notebook renders its 5,500
images at the paper's counts on the processor, once per notebook (about 5 s on one core, with the GPU idle, as
``benchmarks/results/bench_letters.txt`` times it), and a run made in two commands goes through two notebooks. This
script renders them once with ``nclib.letters.save_letters_synthetic`` at the figures' counts, class order and seed;
a notebook given the file as ``data_path`` reads it instead (``nclib.letters.read_letters_synthetic`` checks that it
holds the rendering of the counts and seed the run asks for), and the training data, and their sha256 in each run's
provenance (``data_sha256``), are those of a fresh rendering. The script checks that before it finishes.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import data, figures, letters  # noqa: E402


def main(dest: str, scale: str = "gpu") -> str:
    """Write the rendering of Figures 2 and 4 at ``scale`` to ``dest``; returns its training data's sha256."""
    p2, p4 = (figures.figure_parameters(k, scale) for k in (2, 4))
    if any(p2[k] != p4[k] for k in data.LOAD_KEYS):
        raise SystemExit("Figures 2 and 4 no longer share their data: render each figure's letters separately")
    path = letters.save_letters_synthetic(dest, counts=p2["counts"], class_order=p2["class_order"], seed=p2["seed"])
    letters._render_letters.cache_clear()  # rendered again, not the memo of the rendering just saved
    fresh = data.load_for(p2)
    ahead = data.load_for({**p2, "data_path": path})
    if ahead.provenance["data_sha256"] != fresh.provenance["data_sha256"]:
        raise SystemExit("the rendering read back does not give the training data of a fresh rendering")
    print(f"{dest}: {ahead.N} letters of Figures 2 and 4 ({scale}), training data sha256 "
          f"{ahead.provenance['data_sha256']} (same as a fresh rendering)")
    return ahead.provenance["data_sha256"]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--scale", default="gpu", choices=tuple(figures.SCALES))
    args = ap.parse_args()
    main(args.dest, args.scale)
