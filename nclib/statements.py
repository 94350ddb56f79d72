"""The theorems' statements checked as the paper writes them: the quantities a statement names, at a given point
or spectrum, beside the global minimizer that :mod:`nclib.ufm` computes without them.

The three soft-threshold relations of Theorems 4.1 and 4.2 at a point (W, H) (:func:`soft_threshold_relations_error`),
and c, x_k^*, sigma_k^2 and the minimum value of Theorem 4.3 through Lemma A.2, with the corrected constant a or the
printed one, N times smaller (erratum T1).  Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43` and
:ref:`ch-errata-theory`.
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks, lemmas, ufm

_TINY = float(np.finfo(np.float64).tiny)  # the smallest normal float64: below it a float has lost significant digits


def soft_threshold_relations_error(W, H, n, lam_W, lam_H, bias: bool = True) -> float:
    """The largest entry error of the three relations of Theorems 4.2 (``bias``) and 4.1 (bias-free) at a point (W, H).

    With M = U diag(kappa) V^T (:func:`nclib.ufm.problem_svd`: Y-bar with a bias, D = diag(sqrt n) without, whose
    SVD basis is the class basis up to order), E = H-bar D (:func:`nclib.ufm.weighted_class_means`) and T =
    diag((kappa - N sqrt(lam_W lam_H))_+): U^T W E V = T, U^T W W^T U = sqrt(lam_H/lam_W) T and (E V)^T E V =
    sqrt(lam_W/lam_H) T, which every global minimizer of (4.2) or (4.1) satisfies when d is at least the number of
    surviving modes (erratum T4); without a bias they are Theorem 4.1's printed relations, the third as
    Sigma^2 D^-2 where the OCR reads D^2 (erratum T9), in the form kappa = D of its corrected statement.  With
    repeated kappa any SVD does: T is then a multiple of the identity on the block.
    ``W`` is K x d, ``H`` d x N with columns grouped by class, ``lam_W`` one number (L = 1).  Used in
    :ref:`ch-thm41` and :ref:`ch-thm42`.
    """
    n = _checks.counts(n)
    N = _checks.count_total(n)
    W = _checks.matrix(W, "W", (n.size, None))
    H = _checks.matrix(H, "H", (W.shape[1], N))
    lam_W = float(_checks.layer_lambdas(lam_W, 1, "lam_W")[0])
    lam_H = _checks.positive_float(lam_H, "lam_H")
    U, kappa, Vt = ufm.problem_svd(n, _checks.flag(bias, "bias"))
    G = ufm.weighted_class_means(H, n) @ Vt.T  # E V: column k is g_k
    T = np.diag(np.maximum(kappa - N * ufm.sqrt_decay_product(lam_W, lam_H), 0.0))
    ratio = np.sqrt(lam_H) / np.sqrt(lam_W)
    return float(max(np.abs(U.T @ W @ G - T).max(), np.abs(U.T @ W @ W.T @ U - ratio * T).max(),
                     np.abs(G.T @ G - T / ratio).max()))


def theorem43_c(lam_W, L: int) -> float:
    """The constant c = lam_W1^(L-1) / (lam_W2 ... lam_WL) of Theorem 4.3 (1 for L = 1 or equal decays).

    At balanced layers (lam_Wj s_j^2 = lam_W1 sigma^2 on each mode) W_L ... W_1 has the squared singular values
    c sigma_k^(2L), sigma_k those of W_1.  ``lam_W`` one number or L numbers.  Computed as the product of the
    ratios lam_W1 / lam_Wj, j = 2..L, so that decays near the bottom of the float range (where lam_W1^(L-1) and the
    product would underflow to 0 / 0) still give c, exactly 1 for equal decays.  Used in :ref:`ch-thm43` and
    :ref:`ch-errata-theory`.
    """
    L = _checks.positive_int(L, "L")
    lam = _checks.layer_lambdas(lam_W, L, "lam_W")
    return float(np.prod(lam[0] / lam[1:]))


def theorem43_x_star(kappa, N: int, lam_W, lam_H: float, L: int, printed_a: bool = False) -> np.ndarray:
    """x_k^* of Theorem 4.3, one per singular value kappa_k: the global minimizer of g(x) = 1/(x^L + 1) + a_k x on
    x >= 0 (Lemma A.2, :func:`nclib.lemmas.lemma_a2_minimizer`; for L = 1, g is convex and x^* = (a_k^(-1/2) - 1)_+),
    0 for kappa_k = 0.  a_k is that of :func:`nclib.ufm.lemma_a2_a`, or with ``printed_a`` the one Theorem 4.3 prints,
    N times smaller (erratum T1), to show what the printed form predicts.  Where a_k is below the normal floats (0 by
    underflow, or a subnormal that has lost digits) or too small for L / a_k to be a float64 (decays near 1e-300, or
    kappa_k near 1e150), x_k^* comes from the logarithm of a_k, computed from the arguments: a_k^(-1/2) - 1 for L = 1,
    (L / a_k)^(1/(L+1)) for L >= 2 (the largest root of Lemma A.2 to a relative 1e-200 there, so to the rounding of
    the logarithms).  Used in :ref:`ch-thm43` and :ref:`ch-errata-theory`.
    """
    a = ufm.lemma_a2_a(kappa, N, lam_W, lam_H, L)
    kappa, N, lam, lam_H, L = ufm.check_mode_args(kappa, N, lam_W, lam_H, L)  # as lemma_a2_a checked them
    printed_a = _checks.flag(printed_a, "printed_a")
    a = a / (N if printed_a else 1)
    x = np.zeros_like(a)
    for i, ai in enumerate(a):
        if not np.isfinite(ai):  # kappa_k = 0: the mode is never alive
            continue
        if ai >= _TINY and (L == 1 or math.isfinite(L / float(ai))):
            x[i] = max(1.0 / math.sqrt(ai) - 1.0, 0.0) if L == 1 else lemmas.lemma_a2_minimizer(ai, L)
            continue
        log_a = _log_a(kappa[i], N, lam, lam_H, L, printed_a)
        with np.errstate(over="ignore"):  # beyond the float range only where x^* itself is
            x[i] = np.expm1(-0.5 * log_a) if L == 1 else np.exp((math.log(L) - log_a) / (L + 1))
    return x


def _log_a(kappa: float, N: int, lam: np.ndarray, lam_H: float, L: int, printed_a: bool) -> float:
    """log a_k of :func:`nclib.ufm.lemma_a2_a` (printed: over N) for kappa_k > 0, from the logarithms of the checked
    arguments, where a_k itself leaves the float range."""
    return (math.log(L * N) - 2.0 * math.log(kappa) - (math.log(N) if printed_a else 0.0)
            + (math.log(N) + math.log(lam_H) + float(np.sum(np.log(lam)))) / L)


def theorem43_sigma_squared(kappa, N: int, lam_W, lam_H: float, L: int, printed_a: bool = False) -> np.ndarray:
    """sigma_k^2 = (N lam_H / c)^(1/L) x_k^* of Theorem 4.3 (:func:`theorem43_c`, :func:`theorem43_x_star`), one per
    singular value kappa_k of Y-bar: the squared singular values of W_1 at the global minimizer (hidden widths >= K),
    0 for a collapsed mode; ``printed_a`` as in :func:`theorem43_x_star`.  Where N lam_H / c or its product with
    x_k^* leaves the normal floats (decays near 1e300 or 1e-300, c far from 1), sigma_k^2 comes from the logarithms of
    the arguments, so that it is infinite only where it is beyond the float range.  Used in :ref:`ch-thm43` and
    :ref:`ch-errata-theory`.
    """
    x = theorem43_x_star(kappa, N, lam_W, lam_H, L, printed_a)
    _, N, lam, lam_H, L = ufm.check_mode_args(kappa, N, lam_W, lam_H, L)  # as theorem43_x_star checked them
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        inner = N * lam_H / theorem43_c(lam, L)
        direct = inner ** (1.0 / L) * x
        # log c = sum over j >= 2 of (log lam_W1 - log lam_Wj), as theorem43_c takes c
        log_scale = (math.log(N) + math.log(lam_H) - float(np.sum(np.log(lam[0]) - np.log(lam[1:])))) / L
        logs = np.exp(log_scale + np.log(np.where(x > 0, x, 1.0)))
    ok = (inner >= _TINY) & np.isfinite(inner) & (direct >= _TINY) & np.isfinite(direct)
    return np.where(x > 0, np.where(ok, direct, logs), 0.0)


def theorem43_value(kappa, N: int, lam_W, lam_H: float, L: int, printed_a: bool = False) -> float:
    """The minimum of (4.3) as the proof of Theorem 4.3 writes it: the sum over the singular values kappa_k of
    kappa_k^2/(2N) g_k(x_k^*), g_k(x) = 1/(x^L + 1) + a_k x of Lemma A.2 at :func:`theorem43_x_star` (a mode with
    kappa_k = 0 adds 0).  It is :func:`nclib.ufm.value_from_spectrum` with the corrected a; with ``printed_a`` it is
    what the printed a gives, at most the global minimum and below it whenever a mode survives the printed a
    (erratum T1).  Used in :ref:`ch-errata-theory`.
    """
    x = theorem43_x_star(kappa, N, lam_W, lam_H, L, printed_a)
    a = ufm.lemma_a2_a(kappa, N, lam_W, lam_H, L) / (N if printed_a else 1)
    kappa, N, lam, lam_H, L = ufm.check_mode_args(kappa, N, lam_W, lam_H, L)
    alive = kappa > 0
    # a_k x_k^* where a_k is below the normal floats but x_k^* > 0: in logarithms, as theorem43_x_star found x_k^*;
    # 0 at x_k^* = 0, also where a_k overflowed to inf (a tiny kappa_k), which inf * 0 would make NaN
    ax = [0.0 if xi == 0 else ai * xi if ai >= _TINY else math.exp(_log_a(k, N, lam, lam_H, L, printed_a)
                                                                    + math.log(xi))
          for k, ai, xi in zip(kappa[alive], a[alive], x[alive])]
    with np.errstate(over="ignore"):  # x^L beyond the float range: 1/(x^L + 1) rounds to 0
        g = 1.0 / (x[alive] ** L + 1.0) + np.array(ax)
    return float(np.sum(kappa[alive] ** 2 / N / 2 * g))  # / N / 2: 2 N may be an int beyond float64
