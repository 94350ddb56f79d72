"""Write the rows of the shared CIFAR-10 copy that the GPU runs of Figures 1 and 3 use into a small .npz.

    python scripts/gpu_data_slice.py SRC.npz DEST.npz
    python scripts/gpu_data_slice.py --check DEST.npz

(DEST's folder is made if missing: ``.gpu/`` exists only once ``scripts/gpu_prepare.sh`` has run.)  ``--check``
says why a slice is outdated and must be made again (status 4, :data:`OUTDATED_STATUS`; :func:`stale`): made by an
older form of this script, or for other class counts than the figures that read it now train on (a profile of
``nclib/imbalance.py`` or ``nclib/figures/config.py`` changed since); or that the file is damaged or no data file
(status 3, :data:`DAMAGED_STATUS`: its arrays are read in full and it is loaded as each figure loads it,
:func:`loads`, so a file cut short or corrupted, or a slice's record the runs would refuse, is told here), as
``scripts/gpu_figures.sh`` checks before a GPU job starts.  Any other status (1: the check itself failed, say numpy
missing) says nothing of the file.

The GPU machine gets a copy of the repository and of the small ignored folder ``.gpu/``, nothing else, and the
34 MB ``cifar10_subset.npz`` (a JPEG-decoded copy of CIFAR-10, scripts/make_cifar10_subset.py) is too large to
travel with them whole. The runs at the paper's
settings take counts[k] rows of class k by ``nclib.data.select_per_class(..., seed=0, selection="random")``;
this script keeps exactly those rows, in their original order. Loading the slice then selects every row of
each class (counts[k] of counts[k]), whatever the seed, so the training data, and their sha256 in each run's
provenance (``data_sha256``), are identical to a run on the full file at seed 0, and the same at every seed: the
stability runs (``nclib.figures.stability``) train on Figure 1's data at seeds 0, 1, 2 on purpose. The script
checks that before it writes, and stores the source file's sha256, the kept row numbers and the seed and selection
they were chosen by (:data:`CUT_SEED`, :data:`CUT_SELECTION`) in the slice, with the source file's own
``classes``, ``source`` and ``lossy_jpeg`` members, so that a run on the slice records where its pixels come from
(``file_source``, ``lossy_jpeg``) as a run on the full file does, and that they are a slice (its ``slice``: the
source's sha256, the seed and selection of the cut), whatever seed the run was given.
"""
from __future__ import annotations

import os
import pathlib
import struct
import sys
import zipfile
import zlib

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import data, datafiles, figures  # noqa: E402


#: The form of the slice :func:`main` writes, stored in it as ``slice_format``: 3 since the slice stores the seed
#: and selection its rows were cut by (``slice_seed``, ``slice_selection``: a run's ``slice`` records them); 2 kept
#: the source file's own record (``classes``, ``source``, ``lossy_jpeg``); a slice without the member is of the first
#: form, whose runs recorded no ``file_source`` or ``lossy_jpeg``.  Raised with every change to what the slice holds.
SLICE_FORMAT = 3
#: The members every slice of the current form holds (the source's record members only where the source has them).
SLICE_MEMBERS = ("x_train", "y_train", "source_rows", "source_sha256", "slice_seed", "slice_selection", "note",
                 "slice_format")
#: The seed and selection the slice's rows are chosen by (``nclib.data.select_per_class``): those of the runs of
#: Figures 1 and 3 at the paper's settings.
CUT_SEED, CUT_SELECTION = 0, "random"
#: The status of ``--check`` for a file that is damaged or holds no training data.
DAMAGED_STATUS = 3
#: The status of ``--check`` for a slice that is outdated (:func:`stale`): its own, so that a check that fails
#: (status 1, a traceback) is never read as a slice to be made again.
OUTDATED_STATUS = 4


def slice_figures() -> list[int]:
    """The figures whose GPU runs read the slice: those that train on the CIFAR-10 copy (Figures 1 and 3; the
    stability runs train on Figure 1's data)."""
    return [n for n, f in figures.FIGURES.items() if f.dataset == "cifar10"]


def stale(path) -> str | None:
    """Why the slice at ``path`` is outdated and must be made again, or None: a slice of the current form whose rows
    of each class are the class counts that each figure reading it (:func:`slice_figures`) trains on now
    (``nclib.figures.figure_counts``, from the profiles of ``nclib/imbalance.py`` and ``nclib/figures/config.py``),
    or a file that is no slice (no ``source_rows``: a full copy, read as it is).  Outdated: made by an older form of
    this script (a member of :data:`SLICE_MEMBERS` missing, or a ``slice_format`` other than :data:`SLICE_FORMAT`),
    or for other class counts than a figure's now, whose runs would then select among the slice's rows other data
    than the full file's.  A file numpy cannot read (cut short, corrupted) raises
    :class:`nclib.datafiles.DamagedFileError` naming it."""
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            if "source_rows" not in f.files:
                return None
            missing = [k for k in SLICE_MEMBERS if k not in f.files]
            made = int(f["slice_format"]) if "slice_format" in f.files else 1
            y = np.asarray(f["y_train"]) if "y_train" in f.files else None
    except (ValueError, TypeError, zipfile.BadZipFile, EOFError, zlib.error, struct.error) as exc:
        raise datafiles.DamagedFileError(path, datafiles.reader_error_text(exc)) from exc
    if missing or made != SLICE_FORMAT:
        return (f"{path} is a slice of form {made}, not the form {SLICE_FORMAT} that scripts/gpu_data_slice.py writes"
                + (f" (it lacks {', '.join(missing)})" if missing else ""))
    held, differ = "", []
    for fig in slice_figures():
        want = figures.figure_counts(fig, "gpu")
        rows = [int(np.count_nonzero(y == k)) for k in range(len(want))]
        if rows != want or sum(rows) != y.size:  # rows of a class the figure does not have count too
            held = f"{rows}" + (f" and {y.size - sum(rows)} of other classes" if sum(rows) != y.size else "")
            differ.append(f"Figure {fig} trains on {want}")
    if differ:
        return (f"{path} holds the rows per class {held}, cut for other class counts than the figures that read it "
                f"train on now ({'; '.join(differ)}: nclib.figures.figure_counts, from the profiles of "
                f"nclib/imbalance.py and nclib/figures/config.py)")
    return None


def loads(path) -> None:
    """Load ``path`` as the figures reading it (:func:`slice_figures`) load it, once per set of class counts
    (``nclib.data.load`` with a figure's counts, at the cut's seed and selection), so that whatever the notebook's
    load would refuse (a damaged member of the slice's record, a ``source_rows`` that is not one distinct row number
    per image) is told before a GPU job starts: ValueError (:class:`nclib.datafiles.DamagedFileError` for a member
    numpy cannot read) naming the file."""
    for counts in {tuple(figures.figure_counts(fig, "gpu")) for fig in slice_figures()}:  # Figures 1 and 3: once
        data.load("cifar10", data_path=path, counts=list(counts), seed=CUT_SEED, selection=CUT_SELECTION)


def main(src: str, dest: str) -> None:
    """Write the slice of ``src`` that Figures 1 and 3 train on to ``dest`` (its folder made if missing)."""
    counts = figures.figure_counts(1, "gpu")
    assert counts == figures.figure_counts(3, "gpu"), "Figures 1 and 3 share their class counts"
    full = data.load("cifar10", data_path=src, counts=counts, seed=CUT_SEED, selection=CUT_SELECTION)
    x, y, shas = data.load_npz(src)
    source_sha = next(iter(shas.values()))
    rows = data.select_per_class(y, counts, seed=CUT_SEED, selection=CUT_SELECTION)
    with np.load(src, allow_pickle=False) as f:  # the file's own record: its class names, the copy, JPEG or not
        record = {k: f[k] for k in ("classes", *datafiles.NPZ_RECORD) if k in f.files}
    pathlib.Path(dest).parent.mkdir(parents=True, exist_ok=True)
    # this process's own temporary file (two preparations at once never share one), named .npz, as data.load reads
    tmp = datafiles.temporary_path(dest)
    tmp = tmp.with_name(tmp.name + ".npz")
    try:
        with open(tmp, "xb") as handle:
            np.savez_compressed(handle, **record, x_train=x[rows], y_train=y[rows], source_rows=rows.astype(np.int64),
                                source_sha256=np.array(source_sha), slice_seed=np.int64(CUT_SEED),
                                slice_selection=np.array(CUT_SELECTION), slice_format=np.array(SLICE_FORMAT),
                                note=np.array("rows of cifar10_subset.npz (a JPEG-decoded copy of CIFAR-10) used by "
                                              "the paper-scale runs of Figures 1 and 3, in their original order"))
        sliced = data.load("cifar10", data_path=tmp, counts=counts, seed=CUT_SEED, selection=CUT_SELECTION)
        if sliced.provenance["data_sha256"] != full.provenance["data_sha256"]:
            raise SystemExit("the slice does not reproduce the training data of the full file")
        if any(sliced.provenance.get(k) != full.provenance.get(k) for k in datafiles.NPZ_RECORD.values()):
            raise SystemExit("the slice does not record the source and lossy_jpeg of the full file")
        cut = {"source_sha256": source_sha, "source_is_shared_subset": source_sha == data.SHARED_CIFAR10_SHA256,
               "rows": int(rows.size), "seed": CUT_SEED, "selection": CUT_SELECTION}
        if sliced.provenance.get("slice") != cut:
            raise SystemExit("the slice does not record the file, seed and selection it was cut from and by")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{dest}: {rows.size} rows, training data sha256 {full.provenance['data_sha256']} (same as the full file)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    if sys.argv[1] == "--check":
        try:
            datafiles.load_npz(sys.argv[2])  # every array of the training data read: a damaged file is told here
            why = stale(sys.argv[2])
            if why is None:
                loads(sys.argv[2])
        except ValueError as exc:  # DamagedFileError, a file without x_train and y_train, or a slice's record that
            # is not what a slice holds (its source_rows, say), which the notebook's load would refuse
            print(exc, file=sys.stderr)
            sys.exit(DAMAGED_STATUS)
        if why:
            print(why, file=sys.stderr)
            sys.exit(OUTDATED_STATUS)
    else:
        main(sys.argv[1], sys.argv[2])
