"""nclib: the small shared package of the neural-collapse companion book (arXiv:2411.17278).

Modules: ``imbalance`` (class profiles, Y, Y-bar and its spectrum), ``symbolic`` (sympy derivations),
``ufm`` (the objective of Definition 3.1 and the closed-form minimizers of Theorems 4.1-4.3),
``solvers`` (an independent numerical minimizer), ``metrics`` (NC1-NC3), ``data``, ``models``,
``train`` (the training engine), ``plotting`` and ``figures`` (Figures 1-4 from committed runs).
"""
from pathlib import Path

#: The repository root (nclib is installed editable from it): where ``results/`` lives.
ROOT = Path(__file__).resolve().parents[1]
