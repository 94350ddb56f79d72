"""The (L-extended) unconstrained feature model: objective and closed-form global minimizers.

Implements the objective of Definition 3.1 / (4.1)-(4.3) of the paper and the closed forms of
Theorems 4.1 (bias-free UFM), 4.2 (UFM with bias) and 4.3 (L-layer head with bias; its bias-free
analogue is obtained with ``bias=False``), built on Lemma A.2 (the scalar function g(x) = 1/(x^L + 1) + a x,
:mod:`nclib.lemmas`, which also holds Lemma A.1): the parameter a of each singular value
(:func:`lemma_a2_a`), the modes' strengths, the geometry, the global minimizer (:func:`global_minimizer`) and
the norm of its global feature mean (:func:`minimizer_global_mean_norm`).  Which classes a global minimizer
separates (its outputs, their margins and ties, its training accuracy) is :mod:`nclib.minority`'s.
Used in :ref:`ch-lemma-a2`, :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`
and :ref:`ch-errata-theory`.

A *mode* is a pair of singular vectors of Y-bar with its singular value kappa_k (of D = diag(sqrt n) in the
bias-free model, whose modes are the classes), as :ref:`ch-setting` defines it; the paper says "singular value".

The reduction used throughout (checked symbolically and numerically in the chapters): at a global
minimizer features collapse to their class means H-bar, the bias is b* = n/N and the global feature
mean is 0; with E = H-bar D (D = diag(sqrt n)) the problem becomes

    min 1/(2N) ||W_L ... W_1 E - M||_F^2 + sum_j lam_Wj/2 ||W_j||_F^2 + lam_H/2 ||E||_F^2,

with M = Y-bar = (I - n 1^T/N) D with a bias and M = D without. Each singular value kappa of M
then solves a scalar problem (Lemma A.2 for L >= 2, soft thresholding for L = 1). Y-bar always
includes D here: the paper's abstract writes this matrix Y-hat, its Theorem 4.2 writes Y-bar for
I - n 1^T/N and takes the SVD of "Y-bar D", the same matrix (the notation note of
:ref:`ch-errata-theory`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _checks, lemmas
from .imbalance import BLOCK_RTOL, label_matrix, mode_blocks, ybar


# --------------------------------------------------------------------------------------------
# the checked arguments of a problem (4.1)-(4.3), read the same way by every module that solves one
# --------------------------------------------------------------------------------------------

def check_problem(n, lam_W, lam_H, L, bias, d=None, layers=False):
    """The checked arguments ``(n, lam_W, lam_H, L, bias, d)`` of the objective (4.1)-(4.3) of Definition 3.1 with
    positive decays, as Theorems 4.1-4.3 take them: the class counts ``n`` (an int64 array), the depth ``L`` >= 1,
    ``lam_W`` as L positive decays lambda_W1..lambda_WL (one number is every layer's), ``lam_H`` positive, ``bias`` a
    bool and the hidden width d (default K) at most max(K, :data:`nclib._checks.MAX_WIDTH`), and, with ``layers``
    (the caller builds the point's L layers), at most the width whose L - 1 layers of d x d fit the bound of
    :func:`nclib._checks.width`, refused naming d and L before anything is allocated.  A ValueError names the
    argument refused.  The closed forms of this module, the solver of :mod:`nclib.solvers`, the critical points of
    :mod:`nclib.minority` and the Adam runs of :mod:`nclib.ufmtrain` check their arguments with it, so that they
    refuse the same inputs in the same words."""
    n = _checks.counts(n)
    L = _checks.positive_int(L, "L")
    lam_W = _checks.layer_lambdas(lam_W, L, "lam_W", positive=True)
    lam_H = _checks.positive_float(lam_H, "lam_H")
    bias = _checks.flag(bias, "bias")
    d = _checks.width(n.size if d is None else d, n.size, L if layers else None)
    return n, lam_W, lam_H, L, bias, d


def _normal(x) -> np.ndarray:
    """Where x is a finite float of the normal range (neither overflowed nor underflowed)."""
    x = np.asarray(x, dtype=np.float64)
    return np.isfinite(x) & (np.abs(x) >= np.finfo(np.float64).tiny)


def _decay_root(N: int, lam_H: float, lam: np.ndarray, L: int) -> float:
    """(N lam_H lam_W1 ... lam_WL)^(1/L) of Theorem 4.3, evaluated as written where every partial product is a
    normal float and through logarithms where one over- or underflows (decays near 1e160, depths L in the hundreds);
    +inf or 0 only when the root itself is out of the float range."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        inner = N * lam_H
        if _normal(inner) and np.all(_normal(np.cumprod(lam))) and _normal(inner * np.prod(lam)):
            return (N * lam_H * np.prod(lam)) ** (1.0 / L)
        return float(np.exp(_log_decay_root(N, lam_H, lam, L)))


def _log_decay_root(N: int, lam_H: float, lam: np.ndarray, L: int) -> float:
    """log (N lam_H lam_W1 ... lam_WL)^(1/L), from the logarithms of the factors."""
    return (math.log(N) + math.log(lam_H) + float(np.sum(np.log(lam)))) / L


def _scaled_decay_root(c: int, N: int, lam_H: float, lam: np.ndarray, L: int) -> float:
    """c (N lam_H lam_W1 ... lam_WL)^(1/L) for a positive integer c (L N in a_k, L^2 N in the gap of Theorem 4.3):
    as written where c, the root and their product are normal floats, through logarithms otherwise, so that an N
    near the top of the float range (c beyond it, the root below the normal range) still gives the product where it
    is a float; +inf or 0 only when the product itself is out of the float range."""
    root = _decay_root(N, lam_H, lam, L)
    with np.errstate(over="ignore", under="ignore"):
        if c <= _checks.FLOAT_MAX and _normal(root) and _normal(float(c) * root):
            return float(c) * root
        return float(np.exp(math.log(c) + _log_decay_root(N, lam_H, lam, L)))


# --------------------------------------------------------------------------------------------
# the objective
# --------------------------------------------------------------------------------------------

def _layer_list(Ws) -> list:
    """``Ws = [W_1, ..., W_L]`` as a non-empty list (shapes are checked by the caller)."""
    if isinstance(Ws, np.ndarray) and Ws.ndim == 2:
        raise ValueError("Ws must be a list [W_1, ..., W_L] of matrices, got a single matrix (wrap it in a list)")
    try:
        Ws = list(Ws)
    except TypeError as exc:
        raise ValueError(f"Ws must be a list [W_1, ..., W_L] of matrices, got {type(Ws).__name__}") from exc
    if len(Ws) == 0:
        raise ValueError("Ws must hold at least one matrix (L >= 1), got an empty list")
    return Ws


def objective(Ws: Sequence[np.ndarray], H, b, n, lam_W, lam_H) -> float:
    """The objective f(W_L, ..., W_1, H, b) of Definition 3.1 with rho_b = 0 ((4.1)-(4.3) of the paper).

    f = 1/(2N) ||W_L ... W_1 H + b 1_N^T - Y||_F^2 + sum_j lam_Wj/2 ||W_j||_F^2 + lam_H/2 ||H||_F^2.

    ``Ws = [W_1, ..., W_L]`` (W_1 is applied first, W_L has K rows), ``H`` is d x N with its
    columns grouped by class as in :func:`nclib.imbalance.label_matrix`, ``b`` is a length-K vector
    or ``None`` (the bias-free model (4.1)), ``lam_W`` one number or L numbers lambda_W1..lambda_WL,
    ``lam_H`` a number (zero decays are allowed here). Used in :ref:`ch-thm41`, :ref:`ch-thm42`
    and :ref:`ch-thm43`.
    """
    n = _checks.counts(n)
    K, N = n.size, _checks.count_total(n)
    Ws = _layer_list(Ws)
    L = len(Ws)
    H = _checks.matrix(H, "H", (None, N))
    mats = []
    cols = H.shape[0]
    for j, W in enumerate(Ws):
        rows = K if j == L - 1 else None
        W = _checks.matrix(W, f"Ws[{j}]", (rows, cols))
        mats.append(W)
        cols = W.shape[0]
    lam = _checks.layer_lambdas(lam_W, L, "lam_W", positive=False)
    lam_H = _checks.nonneg_float(lam_H, "lam_H")
    out = H
    for W in mats:
        out = W @ out
    R = out - label_matrix(n)
    if b is not None:
        R = R + _checks.vector(b, "b", K)[:, None]
    value = 0.5 / N * np.sum(R * R)
    value += 0.5 * sum(l * np.sum(W * W) for l, W in zip(lam, mats))
    value += 0.5 * lam_H * np.sum(H * H)
    return float(value)


def objective_and_gradients(Ws, H, b, Y, lam_W, lam_H) -> tuple[float, list, np.ndarray, np.ndarray | None]:
    """The objective (4.3) of :func:`objective` and its gradients, written out for the inner loops of the solver of
    :mod:`nclib.solvers` and of the Adam runs of :func:`nclib.ufmtrain.train_ufm`, which call it at every step:
    ``Ws = [W_1, ..., W_L]`` of chaining shapes, ``H`` d x N, ``b`` a length-K vector or None, ``Y`` the K x N
    label matrix (:func:`nclib.imbalance.label_matrix`; any real K x N target is taken), ``lam_W`` one number or L
    non-negative numbers, ``lam_H`` a non-negative number: with R = (W_L...W_1 H + b 1^T - Y)/N,
    dF/dW_j = (W_L...W_(j+1))^T R (W_(j-1)...W_1 H)^T + lam_Wj W_j, dF/dH = (W_L...W_1)^T R + lam_H H and
    dF/db = R 1 (``b`` None: the bias-free model (4.1), no db).  Returns (value, [dF/dW_1, ..., dF/dW_L], dF/dH,
    dF/db or None).  A ValueError names a bad argument (a shape that does not chain, a NaN or inf, a negative
    decay); the finite float64 arrays of those loops are checked by their shapes and, only where the value comes out
    NaN or inf, by their entries, so that a step costs a few comparisons more."""
    Ws, H, b, Y, lam_W, lam_H = _gradient_args(Ws, H, b, Y, lam_W, lam_H)
    value, dWs, dH, db = _objective_and_gradients(Ws, H, b, Y, lam_W, lam_H)
    if not math.isfinite(value):  # a NaN or inf among the entries, named; a finite point whose value overflows passes
        for name, a in [(f"Ws[{j}]", W) for j, W in enumerate(Ws)] + [("H", H), ("b", b), ("Y", Y)]:
            if a is not None and not np.all(np.isfinite(a)):
                raise ValueError(f"{name} must be finite (no NaN or inf)")
    return value, dWs, dH, db


def _float_matrix(a) -> bool:
    """Whether ``a`` is already a 2-D float64 numpy array, which :func:`objective_and_gradients` takes as it is."""
    return isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype == np.float64


def _gradient_args(Ws, H, b, Y, lam_W, lam_H):
    """The checked arguments of :func:`objective_and_gradients`: float64 arrays are taken as they are (their entries
    are read there only where the value is not finite), anything else through :func:`nclib._checks.matrix` and
    :func:`nclib._checks.vector`; the shapes must chain, ``Y`` K x N with K the rows of W_L and N the columns of
    ``H``."""
    Ws = _layer_list(Ws)
    L = len(Ws)
    H = H if _float_matrix(H) else _checks.matrix(H, "H")
    Y = Y if _float_matrix(Y) else _checks.matrix(Y, "Y")
    cols = H.shape[0]
    for j, W in enumerate(Ws):
        if not _float_matrix(W):
            Ws[j] = W = _checks.matrix(W, f"Ws[{j}]")
        if W.shape[1] != cols:
            raise ValueError(f"Ws[{j}] must have {cols} columns (the rows of "
                             f"{'H' if j == 0 else f'Ws[{j - 1}]'}), got shape {W.shape}")
        cols = W.shape[0]
    if Y.shape != (cols, H.shape[1]):
        raise ValueError(f"Y must have shape {(cols, H.shape[1])} (the rows of Ws[{L - 1}], the columns of H), "
                         f"got {Y.shape}")
    if b is not None and not (isinstance(b, np.ndarray) and b.dtype == np.float64 and b.shape == (cols,)):
        b = _checks.vector(b, "b", cols)
    lam_W = _checks.layer_lambdas(lam_W, L, "lam_W", positive=False)
    lam_H = _checks.nonneg_float(lam_H, "lam_H")
    return Ws, H, b, Y, lam_W, lam_H


def _objective_and_gradients(Ws, H, b, Y, lam_W, lam_H):
    """:func:`objective_and_gradients` of checked arguments."""
    N = H.shape[1]
    forward = [H]
    for W in Ws:
        forward.append(W @ forward[-1])
    R = forward[-1] - Y
    if b is not None:
        R = R + b[:, None]
    value = 0.5 / N * float(np.sum(R * R)) + 0.5 * lam_H * float(np.sum(H * H))
    value += 0.5 * sum(lj * float(np.sum(W * W)) for lj, W in zip(lam_W, Ws))
    R /= N
    G, dWs = R, [None] * len(Ws)
    for j in range(len(Ws) - 1, -1, -1):
        dWs[j] = G @ forward[j].T + lam_W[j] * Ws[j]
        G = Ws[j].T @ G
    dH = G + lam_H * H
    db = None if b is None else R.sum(axis=1)
    return value, dWs, dH, db


def head_product(Ws: Sequence[np.ndarray]) -> np.ndarray:
    """The product P = W_L ... W_1 of the linear head of Definition 3.1, in float64.

    ``Ws = [W_1, ..., W_L]`` with W_1 applied first; consecutive shapes must chain
    (W_(j+1) has as many columns as W_j has rows). Used in :ref:`ch-thm43`, :ref:`ch-metrics`,
    :ref:`ch-errata-theory` and :ref:`ch-errata-metrics`.
    """
    Ws = _layer_list(Ws)
    P = _checks.matrix(Ws[0], "Ws[0]")
    for j, W in enumerate(Ws[1:], start=1):
        W = _checks.matrix(W, f"Ws[{j}]", (None, P.shape[0]))
        P = W @ P
    return P


# --------------------------------------------------------------------------------------------
# the scalar problem of each singular value
# --------------------------------------------------------------------------------------------

def lemma_a2_a(kappa, N: int, lam_W, lam_H: float, L: int) -> np.ndarray:
    """The parameter a of Lemma A.2 for a singular value kappa (Theorem 4.3 as corrected in erratum T1).

    a = L N / kappa^2 * (N lam_H lam_W1 ... lam_WL)^(1/L). As we read the OCR, the paper prints it without
    the factor N in front; the fraction before the root is a single garbled glyph, and a numerator L N would
    render the same, so the print may be right (erratum T1 of :ref:`ch-errata-theory`, possibly an OCR
    artefact). Infinite for kappa = 0. Used in :ref:`ch-thm43`.
    """
    return _a(*check_mode_args(kappa, N, lam_W, lam_H, L))


def _a(kappa: np.ndarray, N: int, lam: np.ndarray, lam_H: float, L: int) -> np.ndarray:
    """:func:`lemma_a2_a` of checked arguments."""
    with np.errstate(divide="ignore", over="ignore"):
        scale = _scaled_decay_root(L * N, N, lam_H, lam, L)
        return np.where(kappa > 0, scale / np.where(kappa > 0, kappa, 1.0) ** 2, np.inf)


def check_mode_args(kappa, N, lam_W, lam_H, L):
    """The checked arguments ``(kappa, N, lam, lam_H, L)`` of the scalar problems of Theorems 4.1-4.3, one per
    singular value kappa_k of M (Lemma A.2 for L >= 2, the soft threshold for L = 1): ``kappa`` as a 1-D float64 array
    of non-negative numbers (:func:`nclib._checks.singular_values`), the sample count ``N`` a positive int, ``lam``
    the L positive weight decays (``lam_W`` one number or L of them), ``lam_H`` positive and the depth ``L`` >= 1; a
    ValueError naming the argument refused.  The per-mode functions :func:`lemma_a2_a`, :func:`threshold_gap`,
    :func:`mode_strengths`, :func:`nonzero_strengths` and :func:`value_from_spectrum` check their arguments with it,
    and the statements of Theorem 4.3 in :mod:`nclib.statements` read their arguments back from it as those checked
    them."""
    L = _checks.positive_int(L, "L")
    lam = _checks.layer_lambdas(lam_W, L, "lam_W")
    lam_H = _checks.positive_float(lam_H, "lam_H")
    N = _checks.positive_int(N, "N")
    return _checks.singular_values(kappa), N, lam, lam_H, L


def threshold_gap(kappa, N: int, lam_W, lam_H: float, L: int) -> np.ndarray:
    """The quantity L^2 N (N lam_H lam_W1 ... lam_WL)^(1/L) - kappa^2 (L-1)^((L-1)/L) of Theorem 4.3.

    One value per singular value kappa_k of M (Y-bar with a bias, D without; see :func:`structure`).
    Mode k survives at the global minimizer (hidden widths >= K) iff its value is negative, i.e. iff
    a_k of :func:`lemma_a2_a` is below the critical value of Lemma A.2 (at zero both 0 and the
    nonzero point are global minimizers). For L = 1 it reads N^2 lam_W lam_H - kappa^2, the soft
    threshold of Theorems 4.1 and 4.2. The paper's prose after Theorem 4.3 says the modes collapse
    when it is negative, the reverse (erratum T6). Used in :ref:`ch-thm43` and :ref:`ch-errata-theory`.
    """
    return _threshold_gap(*check_mode_args(kappa, N, lam_W, lam_H, L))


def _threshold_gap(kappa: np.ndarray, N: int, lam: np.ndarray, lam_H: float, L: int) -> np.ndarray:
    """:func:`threshold_gap` of arguments that :func:`check_mode_args` (or :func:`check_problem`, with ``kappa`` a
    spectrum of :func:`problem_svd`) checked: the closed forms here decide from it which modes survive
    (:mod:`nclib.minority` searches with :func:`threshold_gap`, float by float, the least decay at which the closed
    form kills a mode).  Written so that its sign is decided by the same floats as
    the minimizer's: for L = 1 as (N r - kappa)(N r + kappa) with r = sqrt(lam_W lam_H), the soft threshold of
    :func:`_mode_products`; for L >= 2 as kappa^2 (L-1)^((L-1)/L) (a - a_c) / a_c with a of :func:`lemma_a2_a` and
    a_c of :func:`nclib.lemmas.lemma_a2_critical_a`, the comparison :func:`nclib.lemmas.lemma_a2_minimizer` makes
    (the same quantity: a / a_c = L^2 N (N lam_H prod lam_W)^(1/L) / (kappa^2 (L-1)^((L-1)/L))), so the sign of a
    float difference, exact, is the sign of the gap.  Where a / a_c overflows (a tiny kappa: a beyond 1e308 a_c) the
    gap is L^2 N (N lam_H prod lam_W)^(1/L) itself, kappa^2 (L-1)^((L-1)/L) being below its rounding, and positive as
    a >= a_c says; the product is taken as kappa^2 ((L-1)^((L-1)/L) (a - a_c) / a_c), so that only a gap beyond the
    float range is infinite."""
    with np.errstate(over="ignore", invalid="ignore"):
        if L == 1:
            t = N * _sqrt_decay_product(lam[0], lam_H)
            return (t - kappa) * (t + kappa)
        depth = float((L - 1) ** ((L - 1) / L))
        a_c = lemmas.lemma_a2_critical_a(L)
        ratio = (_a(kappa, N, lam, lam_H, L) - a_c) / a_c
        first = _scaled_decay_root(L * L * N, N, lam_H, lam, L)  # also the gap at kappa = 0, never alive
        return np.where((kappa ** 2 > 0) & np.isfinite(ratio), kappa ** 2 * (depth * ratio), first)


def sqrt_decay_product(lam_W: float, lam_H: float) -> float:
    """sqrt(lam_W lam_H) of one weight decay and the feature decay, in logs where the product leaves the float range:
    N times it is the soft threshold of Theorems 4.1 and 4.2, whose modes keep the strength (kappa - N sqrt(lam_W
    lam_H))_+.  Used by the closed forms here and by :func:`nclib.statements.soft_threshold_relations_error`, which
    writes the theorems' T with it.  ValueError naming ``lam_W`` or ``lam_H`` unless a finite positive number."""
    return _sqrt_decay_product(_checks.positive_float(lam_W, "lam_W"), _checks.positive_float(lam_H, "lam_H"))


def _sqrt_decay_product(lam_W: float, lam_H: float) -> float:
    """:func:`sqrt_decay_product` of checked positive decays."""
    with np.errstate(over="ignore", under="ignore"):
        prod = lam_W * lam_H
        return float(np.sqrt(prod) if _normal(prod) else np.exp(0.5 * (np.log(lam_W) + np.log(lam_H))))


def _mode_products(kappa: np.ndarray, N: int, lam: np.ndarray, lam_H: float, L: int) -> np.ndarray:
    """s_i = sigma_i(W_L ... W_1 E) at the global minimizer, for each singular value kappa_i of M."""
    # a mode is alive iff its threshold_gap is negative (at 0 the tie goes to the collapsed mode, as in
    # nclib.lemmas.lemma_a2_minimizer): decided by the one formula, so that a strength is never > 0 where
    # threshold_gap >= 0
    alive = _threshold_gap(kappa, N, lam, lam_H, L) < 0
    return _nonzero_strengths(kappa, N, lam, lam_H, L, alive)


def nonzero_strengths(kappa, N: int, lam_W, lam_H: float, L: int, where=None) -> np.ndarray:
    """The strength s_i of each mode at the nonzero local minimizer of its scalar problem, 0 where it has none:
    for L = 1 the soft threshold (kappa - N sqrt(lam_W lam_H))_+; for L >= 2 kappa x^L / (1 + x^L) at the largest
    stationary point x of Lemma A.2, which is a local minimizer wherever it exists (a below the top of
    L x^(L-1) / (x^L + 1)^2), also past the mode's threshold, where 0 is the global one.  Only the modes of the mask
    ``where`` (default all), a bool mask of ``kappa``'s shape, are computed, the others are 0.  The closed forms here
    keep the modes whose threshold gap is negative, and :mod:`nclib.minority` builds from it the other critical points
    of Lemma A.2 (:func:`nclib.minority.partial_point`) and the modes that have a nonzero local minimizer at all.
    Arguments as :func:`check_mode_args` checks them (``lam_W`` one number or L), and ``where``: a ValueError names a
    bad one."""
    kappa, N, lam, lam_H, L = check_mode_args(kappa, N, lam_W, lam_H, L)
    if where is not None:
        where = np.asarray(where)
        if where.dtype != bool or where.shape != kappa.shape:
            raise ValueError(f"where must be None or a bool mask of shape {kappa.shape} (one per kappa), got "
                             f"{where.dtype} {where.shape}")
    return _nonzero_strengths(kappa, N, lam, lam_H, L, where)


def _nonzero_strengths(kappa: np.ndarray, N: int, lam: np.ndarray, lam_H: float, L: int,
                       where: np.ndarray | None = None) -> np.ndarray:
    """:func:`nonzero_strengths` of arguments that :func:`check_mode_args` checked."""
    s = np.zeros_like(kappa)
    if where is None:
        where = np.ones(kappa.shape, dtype=bool)
    if L == 1:  # the soft threshold (an infinite one removes every mode)
        with np.errstate(over="ignore"):
            return np.where(where, np.maximum(kappa - N * _sqrt_decay_product(lam[0], lam_H), 0.0), 0.0)
    a = _a(kappa, N, lam, lam_H, L)
    for i, (k, ai) in enumerate(zip(kappa, a)):
        if k > 0 and where[i] and np.isfinite(ai):
            if not _normal(ai) or not math.isfinite(L / float(ai)):  # a below the normal floats (0 by underflow) or
                s[i] = k  # L / a beyond them: x^L > 1e200, and x^L/(1 + x^L) = 1 - O(a^(L/(L+1))) rounds to 1
                continue
            x = lemmas.lemma_a2_largest_root(ai, L)
            if x is None:  # a at the top of h's range by rounding: no nonzero stationary point left
                continue
            try:
                s[i] = k * x ** L / (1.0 + x ** L)
            except OverflowError:  # x^L beyond the float range: the ratio rounds to 1
                s[i] = k
    return s


def mode_strengths(kappa, N, lam_W, lam_H, L=1) -> np.ndarray:
    """The singular values s_k of W_L...W_1 H-bar D at the global minimizer, one per singular value
    kappa_k of M (Theorems 4.1-4.3): (kappa - N sqrt(lam_W lam_H))_+ for L = 1, kappa x^L/(1 + x^L)
    with x the minimizer of Lemma A.2 for L >= 2 (0 for a collapsed mode).

    Vectorised over ``kappa`` for the plots against lambda in :ref:`ch-thm41` and :ref:`ch-thm43` (hidden widths >= K).
    """
    kappa, N, lam, lam_H, L = check_mode_args(kappa, N, lam_W, lam_H, L)
    return _mode_products(kappa, N, lam, lam_H, L)


def balanced_factors(s, lam, lam_H: float):
    """Balanced factors of each singular value s_i of W_L ... W_1 E over the L weight layers and E = H-bar D (the
    AM-GM equality case), as every global minimizer of (4.1)-(4.3) splits a mode's strength (Theorems 4.1-4.3).

    Returns (t, a, e): t_i = lam_Wj a_ij^2 = lam_H e_i^2 = (lam_H prod_j lam_Wj s_i^2)^(1/(L+1)); ``a`` is L x K
    (layer j, mode i).  ``s`` finite non-negative strengths (:func:`mode_strengths`, :func:`nonzero_strengths`),
    ``lam`` the L positive decays lambda_W1..lambda_WL (L >= 1 of them, a list or an array) and ``lam_H`` a positive
    number; a ValueError names a bad one.  :func:`structure`, the points of :func:`point_from_strengths` and the
    values of :mod:`nclib.minority`'s critical points are built from them.
    """
    return _balanced_factors(_checks.strengths(s, "s"), _decays(lam), _checks.positive_float(lam_H, "lam_H"))


def _decays(lam) -> np.ndarray:
    """``lam`` checked as L >= 1 positive decays lambda_W1..lambda_WL (one number is one layer's): a float64 array;
    ValueError naming ``lam``."""
    size = _checks.array(lam, "lam").size  # ragged lists refused by name
    if size == 0:
        raise ValueError("lam must hold the L >= 1 positive decays lambda_W1..lambda_WL, got none")
    return _checks.layer_lambdas(lam, size, "lam")


def _balanced_factors(s: np.ndarray, lam: np.ndarray, lam_H: float):
    """:func:`balanced_factors` of checked arguments."""
    L = lam.size
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        direct = (lam_H * np.prod(lam) * s ** 2) ** (1.0 / (L + 1))
        ok = (_normal(lam_H * np.prod(lam)) & np.all(_normal(np.cumprod(lam))) & _normal(s ** 2)
              & _normal(lam_H * np.prod(lam) * s ** 2))
        logs = np.exp((np.log(lam_H) + np.sum(np.log(lam)) + 2.0 * np.log(np.where(s > 0, s, 1.0))) / (L + 1))
    t = np.where(s > 0, np.where(ok, direct, logs), 0.0)  # in logs where a partial product leaves the float range
    a = np.sqrt(t[None, :] / lam[:, None])  # (L, K): layer j, mode i
    e = np.sqrt(t / lam_H)
    return t, a, e


def weighted_class_means(H, n) -> np.ndarray:
    """E = H-bar D of the proofs of Theorems 4.1-4.3 (Appendices B.1-B.3), a d x K matrix.

    Column k is sqrt(n_k) times the class mean h-bar_k = (1/n_k) sum_i h_(k,i) of the d x N features
    ``H``, whose columns are grouped by class as in :func:`nclib.imbalance.label_matrix`; D = diag(sqrt n).
    The theorems state the geometry of E (E^T E, W_L ... W_1 E) in the SVD basis of Y-bar. Used in
    :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43` and :ref:`ch-errata-theory`.
    """
    n = _checks.counts(n)
    nf = n.astype(np.float64)
    H = _checks.matrix(H, "H", (None, int(n.sum())))
    return H @ label_matrix(n).T / nf[None, :] * np.sqrt(nf)[None, :]


def problem_matrix(n, bias: bool = True) -> np.ndarray:
    """The K x K matrix M whose SVD drives the closed forms: Y-bar = (I - n 1^T/N) D with a bias (Theorems 4.2, 4.3),
    D = diag(sqrt n) without (Theorem 4.1) (:ref:`ch-setting`)."""
    n = _checks.counts(n)
    return ybar(n) if _checks.flag(bias, "bias") else np.diag(np.sqrt(n.astype(np.float64)))


#: Singular values of M closer than this many times K eps kappa_1 are one repeated value that the SVD's rounding
#: split (:func:`problem_svd`): LAPACK computes them to within a small multiple of K eps kappa_1, and a repeated
#: sqrt(N_i) of Theorem 4.4 comes out a few ulps apart.
SVD_SPLIT_ULPS = 16


def problem_svd(n, bias: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``M = U diag(kappa) V^T`` (:func:`problem_matrix`), kappa non-increasing: ``(U, kappa, V^T)``.  With a bias
    kappa_K = 0 is set exactly (Y-bar sqrt(n) = 0; the SVD leaves it at rounding level, which a tiny decay would
    otherwise count as a surviving mode).

    A repeated singular value (sqrt(N_i) with multiplicity l_i - 1 with a bias, Theorem 4.4; sqrt(n_k) of equal
    counts without) comes out of the SVD a few ulps apart; each run of values within ``SVD_SPLIT_ULPS`` K eps
    kappa_1 of the next is set to its mean, so that the modes of one repeated value are one float and live or die
    together at every decay (a decay on a threshold would otherwise keep some of them and not the others, and the
    geometry would depend on the basis chosen inside the block). U and V are left as they are: M changes by
    rounding only.  Used by :ref:`ch-thm42`, :ref:`ch-thm43` and :ref:`ch-errata-theory`."""
    n = _checks.counts(n)
    bias = _checks.flag(bias, "bias")
    U, kappa, Vt = np.linalg.svd(problem_matrix(n, bias))
    if bias:
        kappa[-1] = 0.0
    _merge_rounding_splits(kappa[:-1] if bias else kappa)
    return U, kappa, Vt


def _merge_rounding_splits(kappa: np.ndarray) -> None:
    """Set, in place, each run of non-increasing ``kappa`` whose neighbours are within SVD_SPLIT_ULPS K eps kappa_1
    of each other to the run's mean (:func:`problem_svd`; the runs are :func:`nclib.imbalance.mode_blocks` at that
    tolerance)."""
    if kappa.size < 2:
        return
    rtol = SVD_SPLIT_ULPS * kappa.size * np.finfo(np.float64).eps
    for block in mode_blocks(kappa, np.ones(kappa.size, dtype=bool), rtol):
        kappa[block] = np.mean(kappa[block])


@dataclass(frozen=True)
class Structure:
    """The predicted geometry of Theorems 4.1-4.3 in the SVD basis of M (see :func:`structure`)."""

    M: np.ndarray
    U: np.ndarray
    kappa: np.ndarray
    V: np.ndarray
    s_product: np.ndarray
    s_features: np.ndarray


def structure(n, lam_W, lam_H, L=1, bias=True, d=None) -> Structure:
    """The geometry of every global minimizer (Theorems 4.1, 4.2 and 4.3; hidden widths >= K).

    ``M`` is the K x K matrix whose SVD drives the theorems: Y-bar = (I - n 1^T/N) D with a bias,
    D = diag(sqrt n) without; ``M = U diag(kappa) V^T`` with kappa non-increasing. At every global
    minimizer (P = W_L ... W_1, E = H-bar D):

    * P P^T = U diag(s_product^2) U^T,
    * E^T E = V diag(s_features^2) V^T,
    * P E = U diag(s_product * s_features) V^T,

    and zero entries mark collapsed modes. With a bias, M has a zero singular value (M sqrt(n) = 0),
    so at least one mode always collapses. Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`
    and by the metrics chapters.

    ``d``, the smallest hidden width (feature dimension and every W_j's rows but W_L's; default K): below K only
    the top d modes can survive, as in :func:`global_minimizer`.  When the cut falls inside a group of equal
    kappa among the surviving modes, the minimizers keep any d-dimensional part of that group and no one
    geometry is shared by all of them: ValueError naming ``d``.
    """
    n, lam, lam_H, L, bias, d = check_problem(n, lam_W, lam_H, L, bias, d)
    M = problem_matrix(n, bias)
    U, kappa, Vt = problem_svd(n, bias)
    N = _checks.count_total(n)
    s = _mode_products(kappa, N, lam, lam_H, L)
    _cut(s, kappa, d)
    t, a, e = _balanced_factors(s, lam, lam_H)
    s_product = np.prod(a, axis=0)
    return Structure(M=M, U=U, kappa=kappa, V=Vt.T, s_product=s_product, s_features=e)


def _cut(s: np.ndarray, kappa: np.ndarray, d: int) -> None:
    """Put at 0, in place, the modes beyond the hidden width ``d`` (a rank-d product carries the top d modes at
    most); ValueError naming ``d`` when the cut splits surviving modes of equal kappa (then the minimizer is not
    unique up to the rotations inside a group, :func:`structure`)."""
    if _width_splits_modes(s, kappa, d):
        raise ValueError(f"d={d} splits surviving modes of equal singular value {kappa[d]:.6g} (equal to within "
                         f"BLOCK_RTOL = {BLOCK_RTOL:g} times the largest, {kappa[0]:.6g}): the global minimizers keep "
                         f"any {d}-dimensional part of them, with no one geometry")
    s[d:] = 0.0


def width_splits_modes(s, kappa, d: int) -> bool:
    """Whether the hidden width ``d`` cuts a group of equal kappa among the surviving modes (strengths ``s``): equal
    to within ``BLOCK_RTOL`` times the largest kappa, the groups of :func:`nclib.imbalance.mode_blocks` (distinct
    values closer than that, which class counts give only beyond about 5e7 per class, count as one group).  There the
    global minimizers of Theorems 4.1-4.3 under width d keep any d-dimensional part of the group and share no one
    geometry: :func:`structure` refuses such a ``d``, and :func:`nclib.geometry.geometry_defined` reads it as no
    geometry to compare with.  ``s`` and ``kappa`` as :func:`structure` gives them (``s_product``, ``kappa``: finite,
    non-negative, of one length, kappa non-increasing), ``d`` a positive int; a ValueError names a bad one."""
    kappa = _checks.singular_values(kappa)
    if np.any(np.diff(kappa) > 0):
        raise ValueError(f"kappa must be non-increasing (the order of problem_svd), got {kappa.tolist()}")
    return _width_splits_modes(_checks.strengths(s, "s", kappa.size), kappa, _checks.positive_int(d, "d"))


def _width_splits_modes(s: np.ndarray, kappa: np.ndarray, d: int) -> bool:
    """:func:`width_splits_modes` of checked arguments."""
    return bool(d < s.size and s[d] > 0 and kappa[d - 1] - kappa[d] <= BLOCK_RTOL * kappa[0])


def scalar_problem_values(kappa, s, t, N, L):
    """Per-mode values (kappa - s)^2/(2N) + (L+1)/2 t of the reduced problem of Theorems 4.1-4.3 at strengths ``s``
    that are each 0 or a stationary point of the mode's scalar problem (Lemma A.2; the closed forms' strengths, ``t``
    of :func:`balanced_factors`).  Their sum is the global minimum (:func:`value_from_spectrum`,
    :func:`global_minimizer`); :mod:`nclib.minority` sums those of the modes a critical point keeps.  ``kappa`` as
    :func:`check_mode_args` checks it, ``s`` and ``t`` finite non-negative numbers, one per kappa, the sample count
    ``N`` and the depth ``L`` positive integers; a ValueError names a bad one.

    The residual kappa - s is not taken as a difference: where s is within an ulp of kappa (tiny decays) the
    difference is an ulp of kappa or 0, and its square, about 1e-33, swamps a true minimum near 1e-40.  It comes
    from the stationarity of (s - kappa)^2/(2N) + (L+1)/2 t(s), t(s) = (lam_H lam_W1...lam_WL s^2)^(1/(L+1)):
    (s - kappa)/N + t/s = 0, so kappa - s = N t / s, to the relative rounding of s and t (for L = 1 it is
    N sqrt(lam_W lam_H), the soft threshold; for L >= 2 kappa / (1 + x^L) of Lemma A.2), at most kappa; kappa where
    s = 0."""
    kappa = _checks.singular_values(kappa)
    s, t = _checks.strengths(s, "s", kappa.size), _checks.strengths(t, "t", kappa.size)
    return _scalar_problem_values(kappa, s, t, _checks.positive_int(N, "N"), _checks.positive_int(L, "L"))


def _scalar_problem_values(kappa: np.ndarray, s: np.ndarray, t: np.ndarray, N: int, L: int) -> np.ndarray:
    """:func:`scalar_problem_values` of checked arguments."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        residual = np.where(s > 0, np.minimum(N * t / np.where(s > 0, s, 1.0), kappa), kappa)
    return residual ** 2 / N / 2 + 0.5 * (L + 1) * t


def value_from_spectrum(kappa, N: int, lam_W, lam_H: float, L: int = 1) -> float:
    """The minimum of the reduced problem for given singular values ``kappa`` (Theorems 4.1-4.3).

    Sum over kappa_i of min_s (s - kappa_i)^2/(2N) + (L+1)/2 (lam_H lam_W1...lam_WL)^(1/(L+1)) s^(2/(L+1)):
    :func:`minimum_value` is this at the singular values of M. Takes any non-negative numbers, so that
    the chapters can show what a wrong spectrum (the eigenvalues of Y-bar, erratum T2; the singular
    values of the mixed reading (I - n 1^T/N) D^2, the notation note) would predict. Used in
    :ref:`ch-thm42` and :ref:`ch-errata-theory`.
    """
    kappa, N, lam, lam_H, L = check_mode_args(kappa, N, lam_W, lam_H, L)
    s = _mode_products(kappa, N, lam, lam_H, L)
    t, _, _ = _balanced_factors(s, lam, lam_H)
    return float(np.sum(_scalar_problem_values(kappa, s, t, N, L)))


def minimum_value(n, lam_W, lam_H, L=1, bias=True) -> float:
    """The closed-form global minimum of (4.1) (``bias=False``, L = 1), (4.2) (L = 1) or (4.3) (L >= 1).

    Sum over the singular values kappa_i of M (:func:`structure`) of the scalar problem
    min_s (s - kappa_i)^2/(2N) + (L+1)/2 (lam_H lam_W1...lam_WL)^(1/(L+1)) s^(2/(L+1)),
    equivalently kappa_i^2/(2N) min_x g(x) with g of Lemma A.2 (Theorems 4.1-4.3).

    Assumes every hidden width d_0, ..., d_(L-1) is >= K. With a smaller width d only the top d
    modes can be nonzero and the remaining modes each contribute kappa_i^2/(2N) (their collapsed
    value): pass ``d`` to :func:`global_minimizer`, whose ``value`` accounts for it. Decays whose
    products leave the float range (1e160 and up, 1e-160 and down, depths L in the hundreds or thousands) are
    taken through logarithms, N is summed exactly (counts up to 2**63 - 1), so the value stays right where
    the plain formulas give NaN. Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`, :ref:`ch-errata-theory`,
    :ref:`ch-minority`, :ref:`ch-engine` and :ref:`ch-sweeps`.
    """
    n, lam, lam_H, L, bias, _ = check_problem(n, lam_W, lam_H, L, bias)
    return value_from_spectrum(problem_svd(n, bias)[1], _checks.count_total(n), lam, lam_H, L)


@dataclass(frozen=True)
class Minimizer:
    """A point of the (L-extended) UFM: ``Ws = [W_1, ..., W_L]``, ``H`` (d x N), ``b`` (None when
    bias-free) and its objective ``value``."""

    Ws: list
    H: np.ndarray
    b: np.ndarray | None
    value: float


def global_minimizer(n, lam_W, lam_H, L=1, bias=True, d=None) -> Minimizer:
    """A closed-form global minimizer of (4.1)/(4.2)/(4.3) (Theorems 4.1, 4.2 and 4.3).

    Hidden width ``d`` (default K) for every layer: W_1 .. W_(L-1) are d x d, W_L is K x d and H is
    d x N. Built in the SVD basis of M: E = H-bar D = R diag(e) V^T, W_1 = R diag(a_1) R^T, ...,
    W_L = U diag(a_L) R^T with balanced factors lam_Wj a_j^2 = lam_H e^2, every sample equal to its
    class mean, and b = n/N (bias) or None. When d < K only the top d modes are kept (a rank-d
    product cannot carry more), which is the global minimum under that width. ``value`` is the
    closed-form minimum. H has N columns: counts summing past 2**63 - 1 are refused (ValueError naming ``n``), as is
    a width d past max(K, :data:`nclib._checks.MAX_WIDTH`) (naming ``d``: its layers are d x d), or one whose L - 1
    layers of d x d would hold more than MAX_WIDTH^2 entries together (naming ``d`` and ``L``,
    :func:`nclib._checks.width`), before anything is allocated.
    Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`, :ref:`ch-metrics`, :ref:`ch-errata-theory`,
    :ref:`ch-errata-metrics` and :ref:`ch-minority`.
    """
    n, lam, lam_H, L, bias, d = check_problem(n, lam_W, lam_H, L, bias, d, layers=True)
    U, kappa, Vt = problem_svd(n, bias)
    N = _checks.count_total(n)
    s = _mode_products(kappa, N, lam, lam_H, L)
    s[min(d, n.size):] = 0.0
    t, _, _ = _balanced_factors(s, lam, lam_H)
    Ws, H, b = point_from_strengths(n, bias, U, Vt, s, lam, lam_H, L, d)
    return Minimizer(Ws=Ws, H=H, b=b, value=float(np.sum(_scalar_problem_values(kappa, s, t, N, L))))


def point_from_strengths(n, bias, U, Vt, s, lam, lam_H, L, d):
    """The point (Ws, H, b) of (4.1)-(4.3) whose head product has the singular values ``s`` (one per mode of
    :func:`problem_svd`'s ``U``, ``Vt``; the first d modes, d >= the number of nonzero ones): E = H-bar D =
    R diag(e) V^T, W_1 = R diag(a_1) R^T, ..., W_L = U diag(a_L) R^T with balanced factors lam_Wj a_j^2 =
    lam_H e^2 (:func:`balanced_factors`), every sample at its class mean, b = n/N (bias) or None; R embeds the first
    min(d, K) modes into the hidden space of width d.  The global minimizer (:func:`global_minimizer`) and the
    other critical points of Lemma A.2 (:func:`nclib.minority.partial_point`) are such points.  ``n``, ``bias``,
    the decays ``lam`` (one number or L), ``lam_H``, ``L`` and ``d`` as :func:`check_problem` checks them (with the
    point's layers), ``U`` and ``Vt`` K x K (:func:`problem_svd`), ``s`` K finite non-negative strengths
    (:func:`mode_strengths`, :func:`nonzero_strengths`), 0 beyond the first d; a ValueError names a bad one."""
    n, lam, lam_H, L, bias, d = check_problem(n, lam, lam_H, L, bias, d, layers=True)
    K = n.size
    U, Vt = _checks.matrix(U, "U", (K, K)), _checks.matrix(Vt, "Vt", (K, K))
    s = _checks.strengths(s, "s", K)
    if np.any(s[d:] > 0):
        raise ValueError(f"s must be 0 beyond the first d={d} modes (a width-d point carries d modes at most), got "
                         f"{s.tolist()}")
    r = min(d, K)
    _, a, e = _balanced_factors(s, lam, lam_H)
    R = np.zeros((d, K))
    R[np.arange(r), np.arange(r)] = 1.0  # embeds the first r modes into the hidden space
    Ws = []
    for j in range(L):
        left = U if j == L - 1 else R
        Ws.append(left @ np.diag(a[j]) @ R.T)
    E = R @ np.diag(e) @ Vt
    Hbar = E / np.sqrt(n.astype(np.float64))[None, :]
    H = Hbar @ label_matrix(n)
    b = n / _checks.count_total(n) if bias else None  # float64: n is int64
    return Ws, H, b


def minimizer_global_mean_norm(n, lam_W, lam_H, L=1, bias=True) -> float:
    """||h_G|| at every global minimizer of (4.1), (4.2) or (4.3) (Theorems 4.1-4.3; hidden widths >= K), where
    h_G = (1/N) sum_{k,i} h_{k,i} is the global feature mean of Section 5, the mean of all N features; except, for
    L >= 2 without a bias, at a decay where some mode's scalar problem (Lemma A.2) has two minimizers (its threshold
    met with equality): there the global minimizers that keep the mode and those that put it at 0 differ in ||h_G||,
    and this is the value at the one :func:`structure` describes.

    Every global minimizer has h_{k,i} = h-bar_k, so h_G = H-bar n / N = E sqrt(n) / N with H-bar = [h-bar_1 ...
    h-bar_K] and E = H-bar D, D = diag(sqrt n), as in the theorems, and ||h_G||^2 = sqrt(n)^T E^T E sqrt(n) / N^2.
    E^T E = V diag(e^2) V^T is the same at every global minimizer (:func:`structure`, ``s_features`` = e;
    e is constant on each group of equal singular values, so the rotations inside a group drop out).  With a bias
    sqrt(n) spans the null space of Y-bar, a mode with e = 0, so h_G = 0 (eq. (B.5)-(B.7)) and this returns 0.
    Without a bias M = D: V is the class basis up to rotations inside groups of equal counts, E^T E =
    diag(n_k ||h-bar_k||^2), the class means are orthogonal and ||h_G||^2 = sum_k n_k^2 ||h-bar_k||^2 / N^2, positive
    whenever a mode is alive. Arguments as :func:`structure` (ValueError naming a bad one).
    Chapters: :ref:`ch-fig3`, :ref:`ch-fig4`.
    """
    st = structure(n, lam_W, lam_H, L, bias)
    if bias:
        return 0.0
    root_n = np.sqrt(_checks.counts(n).astype(np.float64))
    return float(np.linalg.norm(st.s_features * (st.V.T @ root_n)) / root_n.dot(root_n))
