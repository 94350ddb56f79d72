"""nclib: the small shared package of the neural-collapse companion book (arXiv:2411.17278).

Modules: ``imbalance`` (class profiles, Y, Y-bar and its spectrum), ``symbolic`` (sympy derivations), ``ufm`` (the
objective of Definition 3.1 and the closed-form minimizers of Theorems 4.1-4.3), ``lemmas`` (Appendix A's lemmas: the
variational form of the nuclear norm, A.1, and the scalar problem g(x) = 1/(x^L + 1) + a x, A.2), ``statements`` (the
statements of Theorems 4.1-4.3 as printed, checked beside those minimizers), ``solvers`` (an independent numerical
minimizer), ``metrics`` (NC1-NC3, gathering ``feature_collapse``, NC1, and ``geometry``, NC2 and NC3),
``printed_metrics`` (NC1-NC3 and the targets of Theorem 4.3 as printed, kept to show their defects), ``accuracy``
(the training accuracy of Figures 1-4, overall and class by class), ``minority`` (minority collapse in the closed
form: the decays at which modes die, the classes a global minimizer separates, the other critical points of Lemma
A.2), ``ufmtrain`` (the unconstrained feature model
trained by Adam, set against the closed form, and the tables of such runs), ``data``, ``letters`` (the
letters-synthetic stand-in for EMNIST letters), ``datafiles`` (reading the data files, with their checks), ``models``,
``parameters`` (the training engine's one parameter list, its defaults and checks, and the grammar of a value written
as text; the reference code's decays, K x 1e-5), ``step`` (one optimizer step: Adam, CUDA streams and graphs),
``floor`` (the least time of a step on a GPU),
``engine`` (one run's training state: data, model, step, metrics), ``train`` (runs: plans, training side by side,
the command line), ``resume`` (a stopped run continued: what it must share with the call that started it, its
checkpoint read back), ``runfolder`` (one run's folder while it trains: history, checkpoint, provenance
segments), ``provenance`` (the commit and software versions a run or a benchmark records), ``runs`` (the run-folder
contract: names, files and history columns, status, a folder written, read back and cleared), ``runplan`` (a call's
plan over its run folders: their runs' parameters, data and device set against the call's; start, resume or skip),
``checkpoints`` (a run's checkpoint, a stop's or a periodic one, committed and verified),
``locks`` (one writer per run folder), ``grid`` (a sweep's grid and its points), ``sweepplan`` (which points a sweep
trains, keeps, resumes or refuses), ``sweep`` (grids of runs on Dask or a job array), ``sweepcli`` (its command line,
``python -m nclib.sweep``), ``sweepmanifest`` (a sweep's record, ``sweep.json``, and the locks of its output folder),
``sweeptable`` (a sweep's table), ``rounding`` (bounds stated in prose, rounded outward), ``tables`` (the math in
the labels of a chapter's tables, typeset as in the prose), ``errata`` (the Errata part's entries and their
statuses, read from its pages), ``plotting`` and the package ``figures`` (Figures 1-4 from committed runs).
"""
import hashlib
import sys
from importlib.machinery import PathFinder
from pathlib import Path

#: The repository root (nclib is installed editable from it): where ``results/`` lives.
ROOT = Path(__file__).resolve().parents[1]

#: The sha256 of each of nclib's source files as this process imported it ({resolved path: hex digest}), recorded as
#: its module is found (:class:`_SourceRecorder`).  A run records the checkout on disk as it is called, not the code
#: this process runs: :func:`nclib.provenance.changed_sources` compares the two, and a run refuses to train while
#: they differ (:ref:`ch-engine`).  Kept when the package is reloaded.
LOADED_SOURCES: dict[str, str] = globals().get("LOADED_SOURCES", {})


def _record_source(path) -> None:
    """Record the sha256 of the source file ``path`` in :data:`LOADED_SOURCES`; an unreadable one is not recorded."""
    try:
        with open(path, "rb") as f:
            LOADED_SOURCES[str(Path(path).resolve())] = hashlib.sha256(f.read()).hexdigest()
    except OSError:
        pass


class _SourceRecorder:
    """First on ``sys.meta_path``: for a module of this package that is being imported, records the sha256 of the
    source file the path finder finds for it (:data:`LOADED_SOURCES`), and finds nothing itself, so that the import
    goes on as it would without it."""

    records_sources_of = __name__

    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is not None and name.startswith(__name__ + "."):
            spec = PathFinder.find_spec(name, path)
            if spec is not None and isinstance(spec.origin, str) and spec.origin.endswith(".py"):
                _record_source(spec.origin)
        return None


_record_source(__file__)
# one recorder, also when the package is reloaded
sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "records_sources_of", None) != __name__]
sys.meta_path.insert(0, _SourceRecorder)
