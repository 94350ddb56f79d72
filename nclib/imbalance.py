"""Imbalanced class profiles, the label matrix Y and the centred, weighted label matrix Y-bar.

Definition 4.1 of the paper (grouped imbalance ({N_i, l_i}, {n_k})) and the matrices of
Section 3 and Theorem 4.2; used from :ref:`ch-setting` on.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _checks

#: The paper's two class profiles (Section 5) as groups (N_i, l_i), N_i strictly decreasing.
PROFILES: dict[str, list[tuple[int, int]]] = {
    "cifar10": [(500, 2), (400, 2), (300, 2), (200, 2), (100, 2)],
    "emnist-letters": [(1500, 1), (600, 5), (50, 20)],
}


def check_groups(groups) -> list[tuple[int, int]]:
    """Validate a grouped profile ``[(N_1, l_1), ..., (N_m, l_m)]`` of Definition 4.1.

    N_i must be strictly decreasing positive integers and l_i positive integers.
    Returns the groups as a list of Python int pairs.
    """
    try:
        pairs = [tuple(g) for g in groups]
    except TypeError as exc:
        raise ValueError(f"groups must be a sequence of (N_i, l_i) pairs, got {groups!r}") from exc
    if len(pairs) == 0:
        raise ValueError("groups must hold at least one (N_i, l_i) pair (m >= 1), got none")
    out = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"groups[{i}] must be a pair (N_i, l_i), got {pair!r}")
        N_i, l_i = pair
        if not _checks._is_integral(N_i) or int(N_i) < 1:
            raise ValueError(f"groups[{i}]: N_i must be a positive integer class size, got {N_i!r}")
        if not _checks._is_integral(l_i) or int(l_i) < 1:
            raise ValueError(f"groups[{i}]: l_i must be a positive integer number of classes (l_i >= 1), got {l_i!r}")
        out.append((int(N_i), int(l_i)))
    sizes = [N for N, _ in out]
    if any(a <= b for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"groups: the class sizes N_i must be strictly decreasing (Definition 4.1), got {sizes}")
    return out


def class_counts(groups) -> np.ndarray:
    """The count vector n = [N_1 1_{l_1}; ...; N_m 1_{l_m}] of Definition 4.1 (length K = sum l_i).

    >>> class_counts([(500, 2), (100, 1)]).tolist()
    [500, 500, 100]
    """
    pairs = check_groups(groups)
    return np.concatenate([np.full(l, N, dtype=np.int64) for N, l in pairs])


def groups_of(n) -> list[tuple[int, int]]:
    """The grouped profile ({N_i, l_i}) of Definition 4.1 for any count vector n (any order).

    Inverse of :func:`class_counts` up to the order of the classes.
    """
    n = _checks.counts(n)
    values, multiplicities = np.unique(n, return_counts=True)
    return [(int(N), int(l)) for N, l in zip(values[::-1], multiplicities[::-1])]


def label_matrix(n) -> np.ndarray:
    """The K x N one-hot label matrix Y of Definition 3.1, columns grouped by class.

    Column j is e_k for the k-th block of n_k columns (class 0 first).
    """
    n = _checks.counts(n)
    labels = np.repeat(np.arange(n.size), n)
    Y = np.zeros((n.size, labels.size))
    Y[labels, np.arange(labels.size)] = 1.0
    return Y


def ybar(n) -> np.ndarray:
    """Y-bar = (I_K - n 1_K^T / N) D with D = diag(sqrt(n)) (Theorem 4.2; abstract of the paper).

    The K x K float64 matrix whose singular values drive Theorems 4.2-4.4.
    """
    n = _checks.counts(n)
    nf = n.astype(np.float64)
    K, N = n.size, nf.sum()
    return (np.eye(K) - np.outer(nf, np.ones(K)) / N) * np.sqrt(nf)[None, :]
