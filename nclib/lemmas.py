"""Appendix A's lemmas: Lemma A.1 (the variational form of the nuclear norm) and Lemma A.2 (the scalar function
g(x) = 1/(x^L + 1) + a x).

Lemma A.1, in its corrected form (erratum T3 of :ref:`ch-errata-theory`): ||Z||_* = min_{Z = W H}
1/2 (||W||_F^2 / alpha + alpha ||H||_F^2), with the minimizing factorization built from the SVD of Z
(:func:`nuclear_factorization`, :func:`nuclear_variational_value`; test matrices of any spectrum,
:func:`lemma_a1_instance`); the proofs of Theorems 4.1 and 4.2 replace the two decay terms by a nuclear norm through
it.  Chapter :ref:`ch-lemma-a1`.

Lemma A.2: for L >= 2, g has a local minimum at 0 and, for a below the top of L x^(L-1) / (x^L + 1)^2, a nonzero
one at the largest stationary point, which is the global minimizer iff a is below the critical value
(L-1)^((L-1)/L) / L (:func:`lemma_a2_critical_a`, :func:`lemma_a2_largest_root`, :func:`lemma_a2_minimizer`).
Each singular value of M solves such a scalar problem in Theorem 4.3; :mod:`nclib.ufm` gives its a
(:func:`nclib.ufm.lemma_a2_a`) and builds the closed forms on these functions.  Chapters :ref:`ch-lemma-a2`,
:ref:`ch-thm43` and :ref:`ch-minority`.

Neither lemma depends on the model: this module imports nothing of :mod:`nclib.ufm`, which imports it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from . import _checks

# --------------------------------------------------------------------------------------------
# Lemma A.1: the variational form of the nuclear norm
# --------------------------------------------------------------------------------------------

def nuclear_factorization(Z, alpha: float = 1.0):
    """The minimizing factorization Z = W H of Lemma A.1 in its corrected form (erratum T3).

    ||Z||_* = min_{Z = W H} 1/2 (||W||_F^2 / alpha + alpha ||H||_F^2), attained at
    W = alpha^(1/2) U Sigma^(1/2), H = alpha^(-1/2) Sigma^(1/2) V^T (thin SVD Z = U Sigma V^T); so are
    W R^T, R H for any d x min(K, N) matrix R with orthonormal columns (R^T R = I), as in the corrected
    lemma, and every minimizer is of that form with the compact SVD. As we read the OCR, the paper prints
    a negative power of alpha on W and a positive one on H (their size, 1/2 or 1/4, is illegible), the
    signs swapped; but the sign rests on one glyph, and the source the paper cites prints the right signs,
    so the OCR cannot settle the print (erratum T3 of :ref:`ch-errata-theory`, possibly an OCR artefact).
    ``alpha`` must be a normal float64: a subnormal has lost digits, which its square root would carry.
    Returns (W, H). Used in :ref:`ch-lemma-a1`.
    """
    Z = _checks.matrix(Z, "Z")
    alpha = _checks.positive_normal_float(alpha, "alpha")
    U, sig, Vt = np.linalg.svd(Z, full_matrices=False)
    root = np.sqrt(sig)
    return alpha ** 0.5 * U * root[None, :], alpha ** -0.5 * root[:, None] * Vt


def nuclear_variational_value(W, H, alpha: float = 1.0) -> float:
    """The variational objective 1/2 (||W||_F^2 / alpha + alpha ||H||_F^2) of Lemma A.1.

    Never below ||W H||_* (Lemma A.1). Computed as 1/2 (||alpha^(-1/2) W||_F^2 + ||alpha^(1/2) H||_F^2), so that
    neither weight overflows on its own; ``alpha`` must be a normal float64 (a subnormal is refused by name, as in
    :func:`nuclear_factorization`). Used in :ref:`ch-lemma-a1`.
    """
    W = _checks.matrix(W, "W")
    H = _checks.matrix(H, "H", (W.shape[1], None))
    root = math.sqrt(_checks.positive_normal_float(alpha, "alpha"))
    # each factor scaled first: at the minimizer W / alpha^(1/2) and alpha^(1/2) H are of the size of Sigma^(1/2),
    # where ||W||^2 or alpha ||H||^2 alone can leave the float range (alpha near 1e308 or 1e-308)
    Ws, Hs = W / root, H * root
    return float(0.5 * (np.sum(Ws * Ws) + np.sum(Hs * Hs)))


def lemma_a1_instance(K: int, N: int, singular_values, rng: np.random.Generator) -> np.ndarray:
    """A K x N test matrix Z of Lemma A.1 with the given singular values (and zeros beyond them; an empty list gives
    Z = 0), between random orthonormal bases: Q1[:, :r] diag(s) Q2[:, :r]^T, Q1 and Q2 the Q factors of a K x K and
    then an N x N standard normal matrix drawn from ``rng``.  Its nuclear norm is sum(s), so that Lemma A.1 is checked
    on a rank-deficient Z, a repeated singular value or Z = 0 as on a random one.  Used in :ref:`ch-lemma-a1` and
    the unit tests.  ValueError naming ``K`` or ``N`` unless positive ints, ``singular_values`` (more than
    min(K, N), not a flat sequence, an empty 2-D one such as ``[[]]`` included, or not finite non-negative numbers)
    and ``rng`` unless a numpy Generator."""
    K, N = _checks.positive_int(K, "K"), _checks.positive_int(N, "N")
    shape = _checks.array(singular_values, "singular_values").shape
    if len(shape) > 1:
        raise ValueError(f"singular_values must be a flat sequence of numbers (empty for Z = 0), got shape {shape}")
    empty = shape == (0,)
    s = np.zeros(0) if empty else _checks.singular_values(singular_values, "singular_values")
    if s.size > min(K, N):
        raise ValueError(f"singular_values must hold at most min(K, N) = {min(K, N)} values, got {s.size}")
    rng = _checks.generator(rng, "rng")
    Q1, Q2 = np.linalg.qr(rng.standard_normal((K, K)))[0], np.linalg.qr(rng.standard_normal((N, N)))[0]
    return Q1[:, :s.size] * s @ Q2[:, :s.size].T


# --------------------------------------------------------------------------------------------
# Lemma A.2: the scalar function g(x) = 1/(x^L + 1) + a x
# --------------------------------------------------------------------------------------------

def _lemma_a2_depth(L) -> int:
    """L checked for Lemma A.2: an integer >= 2 that a float64 holds (the functions compute with L as a float;
    :func:`nclib._checks.positive_int` refuses a larger one by name)."""
    L = _checks.positive_int(L, "L")
    if L < 2:
        raise ValueError(f"L must be >= 2 for Lemma A.2, got {L}")
    return L


def lemma_a2_critical_a(L: int) -> float:
    """The critical a of Lemma A.2 where the nonzero minimizer of g ties with 0: (L-1)^((L-1)/L) / L.

    Derived in :ref:`ch-lemma-a2`; needs L >= 2 (and L a float64, below 1.8e308).
    """
    L = _lemma_a2_depth(L)
    return float((L - 1) ** ((L - 1) / L) / L)


def lemma_a2_largest_root(a: float, L: int) -> float | None:
    """The largest solution x > 0 of a = L x^(L-1) / (x^L + 1)^2 (stationarity of g in Lemma A.2).

    ``None`` when there is none (a above the maximum of the right-hand side, attained at
    x^L = (L-1)/(L+1)). Found by bracketing on the decreasing branch (Brent's method to machine
    precision). ``a`` must leave L / a finite in float64 (a >= L / 1.8e308 or so; the root is about
    (L / a)^(1/(L+1)) and the bracket is built from L / a); a smaller a is refused by name, as is an L >= 2
    beyond the float64 range.
    Used in :ref:`ch-lemma-a2` and :ref:`ch-thm43`.
    """
    L = _lemma_a2_depth(L)
    a = _checks.positive_float(a, "a")
    if not math.isfinite(L / a):
        raise ValueError(f"a must leave L / a finite in float64 (a >= {L / np.finfo(np.float64).max:.3g} for L = {L}), "
                         f"got {a!r}")
    x_peak = ((L - 1) / (L + 1)) ** (1.0 / L)
    h = lambda x: L * x ** (L - 1) / (x ** L + 1) ** 2 - a  # noqa: E731
    hi = (L / a) ** (1.0 / (L + 1))  # h(x) < L x^(-L-1) - a <= 0 beyond this point
    hi = max(hi, 2 * x_peak)
    try:
        h(hi)
    except OverflowError:  # x^L beyond the float range (L in the thousands, or a tiny a): the same h in logs,
        # L exp((L-1) log x - 2 log(1 + x^L)) - a, which is finite for every x > 0
        h = lambda x: L * math.exp((L - 1) * math.log(x) - 2.0 * np.logaddexp(0.0, L * math.log(x))) - a  # noqa: E731
    if h(x_peak) <= 0:
        return None
    while h(hi) > 0:
        hi *= 2
    return float(optimize.brentq(h, x_peak, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def lemma_a2_minimizer(a: float, L: int) -> float:
    """The global minimizer of g(x) = 1/(x^L + 1) + a x on x >= 0 (Lemma A.2, L >= 2).

    0 when a is at or above the critical value (the tie is resolved towards 0), otherwise the largest
    stationary point. ``a`` and ``L`` are checked as in :func:`lemma_a2_largest_root` (a too small for
    L / a to be a float64 is refused by name). Used in :ref:`ch-lemma-a2` and :ref:`ch-thm43`.
    """
    root = lemma_a2_largest_root(a, L)
    if root is None or a >= lemma_a2_critical_a(L):
        return 0.0
    return root
