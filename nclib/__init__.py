"""nclib: the small shared package of the neural-collapse companion book (arXiv:2411.17278).

Modules: ``imbalance`` (class profiles, Y, Y-bar and its spectrum), ``symbolic`` (sympy derivations), ``ufm`` (the
objective of Definition 3.1 and the closed-form minimizers of Theorems 4.1-4.3), ``lemmas`` (Appendix A's lemmas: the
variational form of the nuclear norm, A.1, and the scalar problem g(x) = 1/(x^L + 1) + a x, A.2), ``statements`` (the
statements of Theorems 4.1-4.3 as printed, checked beside those minimizers), ``solvers`` (an independent numerical
minimizer), ``metrics`` (NC1-NC3), ``printed_metrics`` (NC1-NC3 and the targets of Theorem 4.3 as printed, kept to
show their defects), ``accuracy`` (the training accuracy of Figures 1-4, overall and class by class), ``minority``
(minority collapse in the closed form: the decays at which modes die, the classes a
global minimizer separates, the other critical points of Lemma A.2), ``ufmtrain`` (the unconstrained feature model
trained by Adam, set against the closed form, and the tables of such runs), ``data``, ``letters`` (the
letters-synthetic stand-in for EMNIST letters), ``datafiles`` (reading the data files, with their checks), ``models``,
``parameters`` (the training engine's one parameter list, its defaults and checks, and the grammar of a value written
as text), ``step`` (one optimizer step: Adam, CUDA streams and graphs), ``floor`` (the least time of a step on a GPU),
``engine`` (one run's training state: data, model, step, metrics), ``train`` (runs: plans, training side by side,
resuming, the command line), ``runfolder`` (one run's folder while it trains: history, checkpoint, provenance
segments), ``provenance`` (the commit and software versions a run or a benchmark records), ``runs`` (the run-folder
contract: names, history columns, status, checkpoints), ``locks`` (one writer per run folder), ``grid`` (a sweep's
grid and its points), ``sweep`` (grids of runs on Dask or a job array), ``sweepmanifest`` (a sweep's record,
``sweep.json``, and the locks of its output folder), ``sweeptable`` (a sweep's table), ``rounding`` (bounds stated in
prose, rounded outward), ``plotting`` and the package ``figures`` (Figures 1-4 from committed runs).
"""
from pathlib import Path

#: The repository root (nclib is installed editable from it): where ``results/`` lives.
ROOT = Path(__file__).resolve().parents[1]
