"""Symbolic (sympy) derivations used by the book.

Each function returns sympy expressions built from named symbols so that the chapters can
print them with ``{glue:math}`` and prove identities with ``sympy.simplify``.  Two sections: the spectrum of
Y-bar for grouped counts (Theorem 4.4 and Theorems B.1, B.2 of :cite:`liu2024exploration`; chapters
:ref:`ch-spectrum` and :ref:`ch-errata-spectrum`), then Y-bar with K symbolic class counts (:func:`ybar_symbolic`;
chapters :ref:`ch-setting` and :ref:`ch-thm42`).  A derivation that another chapter needs twice goes into a section
of its own at the end.
"""

import math
import numbers
from collections.abc import Mapping, Set

import sympy

from . import _checks


# ---------------------------------------------------------------------------------------------
# The spectrum of Y-bar: Theorem 4.4 and Theorems B.1, B.2 (chapter ch-spectrum).
# ---------------------------------------------------------------------------------------------

def group_symbols(m):
    """The symbols of a grouped profile with m groups (Definition 4.1): ``(mu, (N1..Nm), (l1..lm))``.

    Plain symbols without assumptions, so that ``sympy.Symbol("N1")`` written anywhere is the same
    symbol.  G and G G^T keep square roots (G G^T's off-diagonal entries are -N_i N_j sqrt(l_i) sqrt(l_j) / N);
    the characteristic polynomial det(mu I - G G^T) is free of them, a rational function of these symbols.
    Used in :ref:`ch-spectrum` and :ref:`ch-errata-spectrum`.
    """
    m = _checks.positive_int(m, "m")
    mu = sympy.Symbol("mu")
    sizes = sympy.symbols(f"N1:{m + 1}")
    mults = sympy.symbols(f"l1:{m + 1}")
    return mu, tuple(sizes), tuple(mults)


def _terms(values, name: str) -> list:
    """``values`` as a list of real finite numbers (:func:`nclib._checks.real_number`: Python, numpy, 0-d arrays) or
    sympy expressions, refused by ``name``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a sequence of numbers or sympy expressions, got {values!r}")
    if isinstance(values, (Mapping, Set)):  # a set has no order; iterating a mapping gives its keys only
        raise ValueError(f"{name} must be a sequence of numbers or sympy expressions in order, not a "
                         f"{type(values).__name__}, got {values!r}")
    out = list(values)
    for i, value in enumerate(out):
        if isinstance(value, sympy.Expr):
            ok = not value.is_number or bool(value.is_finite)  # a symbol, or a number that is not nan, oo or zoo
        else:  # a real number as _checks reads one (0-d arrays and tensors too), finite; an integer of any size is
            ok = _checks.real_number(value) and (isinstance(value, numbers.Integral) or math.isfinite(float(value)))
        if not ok:
            raise ValueError(f"{name}[{i}] must be a finite real number or a sympy expression, got {value!r}")
    return out


def total_count(sizes, mults):
    """N = sum_i N_i l_i (Definition 4.1) as a sympy expression; ``sizes``, ``mults`` of equal length (ch-spectrum).

    Each entry is a finite real number or a sympy expression (a symbol of :func:`group_symbols`, say).
    """
    sizes, mults = _terms(sizes, "sizes"), _terms(mults, "mults")
    if len(sizes) == 0 or len(sizes) != len(mults):
        raise ValueError(f"sizes and mults must be non-empty and of equal length, got {len(sizes)} and {len(mults)}")
    return sympy.Add(*[a * b for a, b in zip(sizes, mults)])


def group_matrix_symbolic(m):
    """The m x m group matrix G of Theorem 4.4 / B.1 in the symbols of :func:`group_symbols` (ch-spectrum).

    G_ii = sqrt(N_i)(1 - N_i l_i / N), G_ij = -(N_i sqrt(N_j) / N) sqrt(l_i l_j), N = sum_i N_i l_i
    substituted; the symbolic twin of :func:`nclib.imbalance.group_matrix`.
    """
    _, sizes, mults = group_symbols(m)
    N = total_count(sizes, mults)
    m = len(sizes)
    return sympy.Matrix(m, m, lambda i, j: sympy.sqrt(sizes[i]) * (1 - sizes[i] * mults[i] / N) if i == j
                        else -sizes[i] * sympy.sqrt(sizes[j]) / N * sympy.sqrt(mults[i]) * sympy.sqrt(mults[j]))


def charpoly_GGt(m):
    """det(mu I - G G^T) for the group matrix G (Theorem B.2 for m = 2, 3; any small m), from first principles.

    Forms G G^T from :func:`group_matrix_symbolic`, takes the determinant (Berkowitz, no division) and
    simplifies to a single fraction in ``mu``, ``N1..Nm``, ``l1..lm`` with N = sum N_i l_i substituted.
    Used in :ref:`ch-spectrum`; m up to 4 runs in seconds.
    """
    m = _checks.positive_int(m, "m")
    mu, _, _ = group_symbols(m)
    G = group_matrix_symbolic(m)
    A = mu * sympy.eye(m) - G * G.T
    det = A.det(method="berkowitz")
    return sympy.factor(sympy.cancel(sympy.expand(det)))


def secular_charpoly(m):
    """The characteristic polynomial f(mu) = det(mu I - G G^T) of the group matrix G of Theorem 4.4, whose roots the
    proof of Theorem B.1 interlaces with the N_i (and Theorem B.2 expands for m = 2, 3), in the secular form
    prod_i (mu - N_i) * (1 - (1/N) sum_i l_i N_i^2 / (N_i - mu)).

    Written as the polynomial prod_i (mu - N_i) + (1/N) sum_i l_i N_i^2 prod_{j != i} (mu - N_j), from
    G G^T = diag(N_i) - v v^T / N with v_i = N_i sqrt(l_i) and the matrix determinant lemma.  Used in
    :ref:`ch-spectrum`.
    """
    mu, sizes, mults = group_symbols(m)
    N = total_count(sizes, mults)
    prod_all = sympy.Mul(*[mu - s for s in sizes])
    rank_one = sympy.Add(*[mults[i] * sizes[i] ** 2 * sympy.Mul(*[mu - s for j, s in enumerate(sizes) if j != i])
                           for i in range(len(sizes))])
    return prod_all + rank_one / N


def ybar_grouped_symbolic(mults):
    """Y-bar = D - n sqrt(n)^T / N (Theorem 4.4) for concrete group multiplicities and symbolic sizes.

    ``mults`` = (l_1, ..., l_m) positive integers, in order: a mapping or a set is refused, as
    :func:`nclib.imbalance.check_groups` refuses one (a set has no order of its own, and iterating a mapping gives
    its keys only); returns ``(Ybar, (N1..Nm))`` with n = [N_1 1_{l_1}; ...; N_m 1_{l_m}].  Used in
    :ref:`ch-spectrum` for the symbolic check of Theorem B.1.
    """
    if isinstance(mults, (str, bytes)) or not hasattr(mults, "__iter__"):
        raise ValueError(f"mults must be a sequence of group multiplicities (l_1, ..., l_m), got {mults!r}")
    if isinstance(mults, (Mapping, Set)):
        raise ValueError(f"mults must be a sequence of group multiplicities (l_1, ..., l_m) in order, not a "
                         f"{type(mults).__name__}, got {mults!r}")
    values = [_checks.positive_int(l, f"mults[{i}]") for i, l in enumerate(list(mults))]
    if not values:
        raise ValueError("mults must hold at least one group multiplicity (m >= 1), got none")
    _, sizes, _ = group_symbols(len(values))
    n = [s for s, l in zip(sizes, values) for _ in range(l)]
    N = sympy.Add(*n)
    K = len(n)
    return sympy.Matrix(K, K, lambda i, j: (sympy.sqrt(n[i]) if i == j else 0) - n[i] * sympy.sqrt(n[j]) / N), sizes


# ---------------------------------------------------------------------------------------------
# Y-bar with symbolic counts (chapters ch-setting and ch-thm42).
# ---------------------------------------------------------------------------------------------

def ybar_symbolic(K):
    """Y-bar = (I_K - n 1_K^T / N) D with D = diag(sqrt n), for K symbolic class counts (Theorem 4.3).

    Returns ``(Ybar, n)``: the K x K matrix and the symbols ``n1..nK``, declared positive so that sqrt(n_k)^2 = n_k
    simplifies; N = n_1 + ... + n_K is written out in the entries.  The symbolic twin of :func:`nclib.imbalance.ybar`
    (ungrouped counts; :func:`ybar_grouped_symbolic` takes groups).  The paper's abstract writes this matrix Y-hat (the
    notation note of :ref:`ch-errata-theory`).  Used in :ref:`ch-setting` and :ref:`ch-thm42`.
    """
    K = _checks.positive_int(K, "K")
    n = sympy.symbols(f"n1:{K + 1}", positive=True)
    D = sympy.diag(*[sympy.sqrt(v) for v in n])
    return (sympy.eye(K) - sympy.Matrix(n) * sympy.ones(1, K) / sympy.Add(*n)) * D, n
