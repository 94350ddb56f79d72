"""Minority collapse in the closed form: the decays at which the modes of Theorems 4.1-4.3 die, the classes a global
minimizer still separates, the other critical points of Lemma A.2 (each mode at 0 or at its nonzero minimizer, which
for L >= 2 outlives the mode's collapse decay by the factor (L+1)/4^(L/(L+1)): :func:`partial_minimum`, as a point
:func:`partial_point`; the local minimizers among them, the weakest modes at 0, listed by :func:`partial_minima`, the
one nearest a run's objective by :func:`nearest_partial_minimum`) and which modes of a model are alive
(:func:`alive_modes`), chapter :ref:`ch-minority`.

A *mode* is a pair of singular vectors of Y-bar with its singular value kappa_k (of D = diag(sqrt n) in the
bias-free model, whose modes are the classes), as :ref:`ch-setting` defines it; the paper says "singular value".

With every decay equal to lambda (lam_W1 = ... = lam_WL = lam_H = lambda) the threshold of Theorem 4.3
(corrected, :ref:`ch-thm43`), L^2 N (N lam_H lam_W1 ... lam_WL)^(1/L) >= kappa_k^2 (L-1)^((L-1)/L), depends on
the decays only through their product Pi = lam_H lam_W1 ... lam_WL: mode k dies once

    Pi >= Pi_k = (kappa_k^2 (L-1)^((L-1)/L) / (L^2 N))^L / N        (L = 1: Pi_k = kappa_k^2 / N^2),

i.e. once lambda >= lambda_k = Pi_k^(1/(L+1)).  The classes a global minimizer still classifies are read off its
outputs (:func:`minimizer_outputs`, those of the closed-form minimizer of :func:`nclib.ufm.global_minimizer`): each
sample's margin, its own output minus the largest other one (:func:`class_margins`), with outputs within 1e-9 times the
largest one read as a tie (:func:`tie_tolerance`), gives the training accuracy of Section 5 at the minimizer, overall
(:func:`minimizer_accuracy`) and class by class (:func:`minimizer_class_accuracy`, :func:`grouped_class_accuracy`).
The unconstrained feature model trained by Adam, which the chapter sets against all this, and the tables of such runs
are :mod:`nclib.ufmtrain`'s.
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks
from . import metrics, ufm
from .imbalance import class_labels, mode_blocks

#: A mode of a trained model counts as alive when its singular value of W_L ... W_1 H-bar D is above this fraction
#: of its own singular value kappa_k of M (:func:`alive_modes`).  The closed form needs no tolerance: a mode
#: is alive at the global minimizer iff its strength is > 0 (iff its threshold gap is < 0, :func:`alive_at_minimum`).
ALIVE_TOL = 1e-3


# ------------------------------------------------------------------------------------------ thresholds

def problem_spectrum(n, bias: bool = True) -> np.ndarray:
    """The singular values kappa_1 >= ... >= kappa_K of M: Y-bar = (I - n 1^T/N) D with a bias (Theorems 4.2,
    4.3), D = diag(sqrt n) without (Theorem 4.1).  With a bias kappa_K = 0 (set exactly: Y-bar sqrt(n) = 0)."""
    return ufm.problem_svd(n, bias)[1]


def product_threshold(kappa, N: int, L: int) -> np.ndarray:
    """The product of the decays Pi = lam_H lam_W1 ... lam_WL at which a mode of singular value kappa dies
    (Theorem 4.3 corrected; Theorems 4.1 and 4.2 for L = 1): Pi_k = (kappa^2 (L-1)^((L-1)/L) / (L^2 N))^L / N.

    The mode is alive at the global minimizer iff Pi < Pi_k (hidden widths >= K); a zero kappa gives 0 (the mode is
    never alive).  Vectorised over ``kappa``.  The closed form decides survival from the decays themselves, not from
    their product, so within a few ulps of Pi_k the float comparison and its decision may differ; for equal decays
    :func:`collapse_decay` gives the decay at which they agree exactly.
    """
    kappa, N, L = _threshold_args(kappa, N, L)
    return _product_threshold(kappa, N, L)


def _product_threshold(kappa: np.ndarray, N: int, L: int) -> np.ndarray:
    """Pi_k of checked arguments, as written (0 where it underflows, for deep heads)."""
    depth = float((L - 1) ** ((L - 1) / L)) if L > 1 else 1.0
    # L^2 N in floats: inf for an N near the top of the float range (Pi_k is then 0), where the integer would
    # raise an OverflowError on its way into numpy
    with np.errstate(under="ignore"):
        return (kappa ** 2 * depth / (float(L) * float(L) * float(N))) ** L / float(N)


def _threshold_args(kappa, N, L):
    L = _checks.depth(L)
    N = _checks.positive_int(N, "N")
    return _checks.singular_values(kappa), N, L


def _log_product_threshold(kappa: np.ndarray, N: int, L: int) -> np.ndarray:
    """log Pi_k of :func:`product_threshold` (-inf for kappa = 0), in logs: Pi_k itself leaves the float range for
    deep heads (about 1e-348 for CIFAR-10's counts at L = 120) while the decay lambda_k stays an ordinary number."""
    depth = (L - 1) / L * math.log(L - 1) if L > 1 else 0.0  # log (L-1)^((L-1)/L)
    with np.errstate(divide="ignore"):
        return L * (2 * np.log(kappa) + depth - math.log(L ** 2 * N)) - math.log(N)


def collapse_decay(kappa, N: int, L: int) -> np.ndarray:
    """The common decay lambda = lam_W1 = ... = lam_WL = lam_H at which a mode of singular value kappa dies: the
    collapse threshold of Theorem 4.3, which keeps mode k iff L^2 N (N lam_H lam_W1 ... lam_WL)^(1/L) <
    kappa_k^2 (L-1)^((L-1)/L) (the condition for its sigma_k^2 to be nonzero; the prose after the theorem reverses
    the sign, erratum T6), solved with every decay equal to lambda: lambda_k = Pi_k^(1/(L+1)) with Pi_k of
    :func:`product_threshold` (chapter :ref:`ch-minority`, section :ref:`sec-minority-threshold`, equation
    ``eq-min-threshold``; the collapse points of :ref:`ch-thm43`).  For L = 1 it is kappa / N, the soft threshold
    kappa_k > N sqrt(lam_W lam_H) of Theorem 4.2 (with a bias) and n_k > N^2 lam_W lam_H of Theorem 4.1 (without,
    where kappa_k = sqrt(n_k)).  Through log Pi_k where Pi_k underflows (deep heads), so that it stays right there.
    Vectorised.

    The formula is then moved by the few ulps that rounding puts between it and the closed form's own decision
    (:func:`alive_at_minimum`, through :func:`nclib.ufm.threshold_gap`): the float returned is the least at which
    the mode is dead, so that at every float lambda the mode is alive iff lambda < lambda_k."""
    kappa, N, L = _threshold_args(kappa, N, L)
    Pi = _product_threshold(kappa, N, L)
    with np.errstate(under="ignore"):
        in_logs = np.exp(_log_product_threshold(kappa, N, L) / (L + 1))
    # the formula as written where Pi_k is a normal float (to the last bit there), through logs where it underflows
    normal = np.isfinite(Pi) & (Pi >= np.finfo(np.float64).tiny)
    lam = np.where(normal, Pi ** (1.0 / (L + 1)), in_logs)
    return np.array([_least_dead_decay(k, N, L, v) for k, v in zip(kappa, lam)], dtype=np.float64)


def _least_dead_decay(kappa: float, N: int, L: int, guess: float) -> float:
    """The least float lambda > 0 at which the closed form kills a mode of singular value ``kappa`` (threshold gap
    >= 0 with every decay lambda), searched from ``guess`` (the formula of :func:`collapse_decay`, a few ulps off):
    a bracket widened in ulps, then a bisection on the floats' bit patterns (increasing for positive floats)."""
    if not (kappa > 0 and 0 < guess < np.inf):
        return float(guess)

    def dead(bits: int) -> bool:
        lam = float(np.int64(bits).view(np.float64))
        return bool(ufm.threshold_gap(kappa, N, lam, lam, L)[0] >= 0)

    top = int(np.float64(np.finfo(np.float64).max).view(np.int64))
    guess_bits = int(np.float64(guess).view(np.int64))
    step = 1
    if dead(guess_bits):  # the least dead float is at or below the guess
        hi, lo = guess_bits, guess_bits - step
        while lo > 0 and dead(lo):
            hi, step = lo, 2 * step
            lo = max(hi - step, 0)  # bits 0 is lambda = 0, where every mode is alive
    else:  # alive at the guess: the least dead float is above it
        lo, hi = guess_bits, guess_bits + step
        while hi < top and not dead(hi):
            lo, step = hi, 2 * step
            hi = min(lo + step, top)
        if not dead(hi):
            return float(np.int64(hi).view(np.float64))
    while hi - lo > 1:  # lo alive, hi dead
        mid = (lo + hi) // 2
        if dead(mid):
            hi = mid
        else:
            lo = mid
    return float(np.int64(hi).view(np.float64))


def mode_thresholds(n, L: int, bias: bool = True) -> dict:
    """For each mode of M (:func:`problem_spectrum`, non-increasing kappa: the singular values of Y-bar =
    (I - n 1^T/N) D of Theorems 4.2 and 4.3 with a bias, of D of Theorem 4.1 without): ``kappa``, the product
    threshold ``Pi`` (:func:`product_threshold`; 0 where it underflows, for deep heads) and the common decay ``lam``
    (:func:`collapse_decay`) at which it dies by the collapse threshold of Theorem 4.3 (Theorems 4.1 and 4.2 for
    L = 1).  The thresholds of the paper's two class profiles (Section 5) are the table of chapter
    :ref:`ch-minority`, section :ref:`sec-minority-threshold`."""
    n = _checks.counts(n)
    kappa = problem_spectrum(n, bias)
    N = _checks.count_total(n)
    return {"kappa": kappa, "Pi": product_threshold(kappa, N, L), "lam": collapse_decay(kappa, N, L)}


# ------------------------------------------------------------------------------------------ the minimizer

def minimizer_outputs(n, lam_W, lam_H, L=1, bias=True) -> np.ndarray:
    """The K x N outputs W_L ... W_1 H + b 1^T of the head of Definition 3.1 (W_L ... W_1 H without a bias) at the
    closed-form global minimizer of (4.1)/(4.2)/(4.3) (Theorems 4.1, 4.2 and 4.3, :func:`nclib.ufm.global_minimizer`).

    One column per sample, grouped by class as :func:`nclib.imbalance.label_matrix` orders them; every feature equals
    its class mean there, so a class's columns are equal.  They are the outputs at every global minimizer of hidden
    widths >= K (the strengths of the modes fix W_L ... W_1 H-bar D, and b* = n/N), except at a decay where some
    mode's scalar problem (Lemma A.2) has two minimizers, where they are those of the minimizer with the mode
    collapsed.  Section 5's training accuracy at the minimizer is read from them (:func:`minimizer_accuracy`, and
    class by class :func:`minimizer_class_accuracy`).  Arguments as :func:`nclib.ufm.global_minimizer` (ValueError
    naming a bad one).
    """
    g = ufm.global_minimizer(n, lam_W, lam_H, L, bias)
    out = ufm.head_product(g.Ws) @ g.H
    return out if g.b is None else out + g.b[:, None]


def minimizer_accuracy(n, lam_W, lam_H, L=1, bias=True) -> float:
    """The training accuracy of the closed-form global minimizer of (4.1)/(4.2)/(4.3)
    (:func:`nclib.ufm.global_minimizer`).

    The fraction of the N samples whose output W_L ... W_1 h (+ b) is largest, strictly, at the sample's own class, by
    more than 1e-9 times the largest output (a tie counts as an error). At every global minimizer each feature equals
    its class mean and the outputs are fixed by the strengths of the modes (Theorems 4.1-4.3), so this is the accuracy
    at all of them, except at a decay where some mode's scalar problem (Lemma A.2) has two minimizers. It is 1 when
    the decays are weak enough and falls below 1 when they collapse the modes that separate minority classes. A run
    whose training accuracy stays below it is not near a global minimizer (chapters :ref:`ch-fig1` to :ref:`ch-fig4`).
    """
    n = _checks.counts(n)
    return float(np.mean(class_margins(minimizer_outputs(n, lam_W, lam_H, L, bias), n) > 0))


def class_margins(out, n) -> np.ndarray:
    """Per sample, its output at its own class minus the largest other output, for the K x N outputs ``out`` of
    samples grouped by class (``n``, as :func:`nclib.imbalance.label_matrix` orders them): the training accuracy of
    Section 5 at the global minimizers of Theorems 4.1-4.3 is the fraction of positive margins
    (:func:`minimizer_accuracy`; class by class, :func:`grouped_class_accuracy`).  Margins within 1e-9 times the
    largest output (:func:`tie_tolerance`) are 0: the modes past their threshold (Theorems 4.1-4.3) leave exact ties
    between classes, which rounding turns into margins of +-1e-16, and a tie counts as an error.  Used in
    :ref:`ch-minority`."""
    n = _checks.counts(n)
    out = _checks.matrix(out, "out", (n.size, int(n.sum())))
    y = np.repeat(np.arange(n.size), n)
    cols = np.arange(y.size)
    own = out[y, cols]
    others = out.copy()
    others[y, cols] = -np.inf
    margin = own - others.max(axis=0)
    return np.where(np.abs(margin) <= tie_tolerance(out), 0.0, margin)


def tie_tolerance(out) -> float:
    """How close two outputs of the K x N ``out`` are to count as a tie: 1e-9 times the largest output.

    A mode past its threshold has row k of U^T W_L ... W_1 and column k of H-bar D V equal to 0 at every global
    minimizer (the last bullet of Theorem 4.3; Theorems 4.1 and 4.2 for L = 1), and the classes that only such modes
    told apart get equal outputs there: exactly equal in the closed form, apart by rounding (about 1e-16 of the
    largest output) in floats.  The paper reads no tie (its training accuracy, Section 5, is that of a trained
    network); this tolerance is the book's rule for the closed form (chapter :ref:`ch-minority`, section
    :ref:`sec-minority-phase`), relative so that outputs all small (a mode just alive) still separate classes
    (:func:`class_margins`, :func:`grouped_class_accuracy`)."""
    out = _checks.matrix(out, "out")
    if out.size == 0:
        raise ValueError(f"out must hold at least one output, got shape {out.shape}")
    return 1e-9 * float(np.abs(out).max())


#: How :func:`grouped_class_accuracy` reads a tie between the largest outputs (within 1e-9 times the largest output, the
#: rule of :func:`class_margins`): "error", no class wins it (the closed form decides nothing there); "argmax", the
#: lowest class index wins it, as an arg-max of the outputs breaks an exact tie and as a trained network's read-out
#: breaks one by its residues (one of the tied classes right, the others wrong).
TIES = ("error", "argmax")


def grouped_class_accuracy(out, n, ties: str = "error") -> np.ndarray:
    """The training accuracy of each class (length K; Section 5's training accuracy of Figures 1-4, class by class)
    for the K x N outputs ``out`` = W_L ... W_1 H (+ b 1^T), one column per sample, of samples grouped by class as
    :func:`nclib.imbalance.label_matrix` orders them: the class counts ``n`` stand for the labels.  Entry k is the
    fraction of class k's samples whose own output is largest, strictly.

    Ties: two outputs within 1e-9 times the largest output (:func:`tie_tolerance`) tie.  With ``ties`` = "error" (the
    default, as in :func:`minimizer_accuracy`) a tie for the largest output counts as an error; with "argmax" it goes
    to the lowest tied class index (:data:`TIES`).  The collapsed modes of Theorems 4.1-4.3 leave exact ties between
    the classes they no longer separate, which rounding turns into differences of 1e-16: hence the tolerance.
    :func:`nclib.accuracy.class_accuracy` is the form for a trained network: N x K outputs (one row per sample),
    labels in any order, and an exact tie to the lowest class index, with no tolerance.
    Chapter :ref:`ch-minority`, section :ref:`sec-minority-phase`."""
    n = _checks.counts(n)
    out = _checks.matrix(out, "out", (n.size, int(n.sum())))
    if not isinstance(ties, str) or ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    y = class_labels(n)
    if ties == "error":
        correct = class_margins(out, n) > 0
    else:
        top = out >= out.max(axis=0, keepdims=True) - tie_tolerance(out)  # the classes tied for the largest output
        correct = np.argmax(top, axis=0) == y  # the lowest of them
    return np.bincount(y, weights=correct.astype(np.float64), minlength=n.size) / n


def minimizer_class_accuracy(n, lam_W, lam_H, L: int = 1, bias: bool = True, ties: str = "error") -> np.ndarray:
    """The training accuracy of each class at the closed-form global minimizer of (4.1)-(4.3) (Theorems 4.1-4.3,
    :func:`nclib.ufm.global_minimizer`): 1 or 0 per class, since every feature equals its class mean there.

    Its mean weighted by n is :func:`minimizer_accuracy`.  At a decay where some mode's scalar problem has two
    minimizers (exactly at a threshold) it describes the one with the mode collapsed.  Collapsed modes leave
    classes whose outputs tie: ``ties`` (:data:`TIES`) says how a tie is read, as an error (no class of it right) or
    as an arg-max breaks it (one right), the reading to set against a trained network, which classifies one.
    """
    n = _checks.counts(n)
    return grouped_class_accuracy(minimizer_outputs(n, lam_W, lam_H, L=L, bias=bias), n, ties)


def alive_modes(s, kappa, tol: float = ALIVE_TOL) -> np.ndarray:
    """Which modes of a trained model are alive: s_k > tol * kappa_k, each mode against its own singular value, for
    the singular values ``s`` of W_L ... W_1 H-bar D in the SVD basis of M (:func:`nclib.ufmtrain.mode_values`) and
    the spectrum ``kappa`` (a mode of kappa_k = 0, never alive at a minimizer, against tol * kappa_1).  At a global
    minimizer the last bullet of Theorem 4.3 (Theorems 4.1 and 4.2 for L = 1) makes row k of U^T W_L ... W_1 and
    column k of H-bar D V both nonzero or both zero, so s_k is either positive or 0, and an alive mode of the closed
    form has s_k >= kappa_k (L-1)/L for L >= 2, whatever kappa_1 is; at the closed form a mode is alive iff its
    strength is > 0, without a tolerance (:func:`alive_at_minimum`).  Training leaves dead modes small but not 0: the
    tolerance (:data:`ALIVE_TOL`) is this book's reading of a trained model, not the paper's (chapter
    :ref:`ch-minority`, section :ref:`sec-minority-phase`).  ValueError naming ``s`` for a negative strength (a
    singular value is >= 0) and ``tol`` unless 0 < tol < 1 (at tol >= 1 a mode at the closed form's strength, which
    is below kappa_k, would count as dead)."""
    kappa = _checks.singular_values(kappa)
    s = _checks.vector(s, "s", kappa.size)
    if np.any(s < 0):
        raise ValueError(f"s must hold singular values, >= 0, got {s.min()!r}")
    tol = _checks.positive_float(tol, "tol")
    if tol >= 1:
        raise ValueError(f"tol must be in (0, 1), a fraction of kappa_k, got {tol!r}")
    if not np.any(kappa > 0):
        raise ValueError("kappa must hold a positive singular value, not all 0")
    return s > tol * np.where(kappa > 0, kappa, float(kappa.max()))


def _alive_at_minimum(kappa, N: int, lam, lam_H, L: int) -> np.ndarray:
    """The modes alive at the global minimizer of (4.3) for the spectrum ``kappa`` of M: those of strength > 0
    (:func:`nclib.ufm.mode_strengths`, exactly those whose threshold gap is < 0); arguments already validated."""
    return ufm.mode_strengths(kappa, N, lam, lam_H, L=L) > 0


def alive_at_minimum(n, lam_W, lam_H, L: int = 1, bias: bool = True) -> np.ndarray:
    """Which modes of M (:func:`problem_spectrum` order) are alive at the global minimizer of (4.1)-(4.3) (Theorems
    4.1-4.3, hidden widths >= K): a boolean mask, True where the mode's strength
    (:func:`nclib.ufm.mode_strengths`) is > 0, i.e. where its threshold gap (:func:`nclib.ufm.threshold_gap`) is < 0;
    at a gap of exactly 0 the mode counts as collapsed (both are minimizers there)."""
    n, lam, lam_H, L, bias, _ = ufm.check_problem(n, lam_W, lam_H, L, bias)
    return _alive_at_minimum(problem_spectrum(n, bias), _checks.count_total(n), lam, lam_H, L)


def phase_diagram(n, lams, L: int, bias: bool = True, ties: str = "error") -> dict:
    """Along lam_W = lam_H = lambda for each lambda in ``lams``: ``modes`` (how many modes are alive at the global
    minimizer, :func:`alive_at_minimum`), ``classes`` (the classes it classifies correctly),
    ``class_acc`` (len(lams) x K, :func:`minimizer_class_accuracy` with ``ties``) and ``accuracy`` (weighted by n).

    The minority collapse that Theorems 4.1-4.3 predict (the modes of M die one by one past their collapse
    thresholds, the weakest first; the phenomenon named by Fang et al., Section 2 of the paper), read as the
    training accuracy of Figures 1-4 (Section 5) at the global minimizer: figure ``fig-minority-phase`` of chapter
    :ref:`ch-minority`, section :ref:`sec-minority-phase`."""
    n = _checks.counts(n)
    lams = _checks.vector(lams, "lams")
    if lams.size == 0 or np.any(lams <= 0):
        raise ValueError("lams must be a non-empty 1-D array of positive decays")
    kappa = problem_spectrum(n, bias)
    N = _checks.count_total(n)
    modes, acc = [], []
    for lam in lams:
        modes.append(int(_alive_at_minimum(kappa, N, lam, lam, L).sum()))
        acc.append(minimizer_class_accuracy(n, lam, lam, L=L, bias=bias, ties=ties))
    acc = np.array(acc)
    return {"lam": lams, "modes": np.array(modes), "classes": (acc == 1).sum(axis=1), "class_acc": acc,
            "accuracy": acc @ n / N}


def partial_minimum(n, lam_W, lam_H, L: int, bias: bool, alive) -> float:
    """The value of (4.1)-(4.3) at the critical point that keeps the modes in ``alive`` (a boolean mask over the modes
    of M, :func:`problem_spectrum` order) at their nonzero minimizer and puts every other mode at 0, the local
    minimizer x = 0 of Lemma A.2 (all modes dead is the origin).  For L >= 2 the point is a local minimizer when no
    kept mode is weaker than a mode at 0 (:func:`partial_minima` lists those), a saddle otherwise.

    sum over alive k of (s_k - kappa_k)^2/(2N) + (L+1)/2 (Pi s_k^2)^(1/(L+1)) at the mode's nonzero minimizer s_k
    (Theorems 4.1-4.3, as in :func:`nclib.ufm.value_from_spectrum`) plus kappa_k^2/(2N) for each dead mode.  For
    L >= 2 a mode slightly past its collapse decay still has a nonzero local minimizer (Lemma A.2's g keeps a local
    minimum at its largest stationary point until a reaches the top of L x^(L-1)/(x^L + 1)^2, about 1.6 times the
    critical a_c for L = 3): ``alive`` may keep it, :func:`nonzero_minimizer_exists`.  A mode in ``alive`` without a
    nonzero minimizer (for L = 1 every mode past its threshold): ValueError naming ``alive``.
    """
    n, lam, lam_H, L, bias, _ = ufm.check_problem(n, lam_W, lam_H, L, bias)
    kappa = problem_spectrum(n, bias)
    alive = np.asarray(alive)
    if alive.shape != kappa.shape or alive.dtype != bool:
        raise ValueError(f"alive must be a boolean mask of shape {kappa.shape}, got {alive.dtype} {alive.shape}")
    N = _checks.count_total(n)
    kept = _kept_values(kappa, N, lam, lam_H, L)
    if np.any(alive & np.isnan(kept)):
        raise ValueError("alive keeps a mode that has no nonzero minimizer at these decays (past the top of Lemma "
                         "A.2's range for L >= 2, past its threshold for L = 1)")
    return float(np.sum(kept[alive]) + np.sum(kappa[~alive] ** 2) / (2 * N))


def partial_point(n, lam_W, lam_H, L: int, bias: bool, alive) -> ufm.Minimizer:
    """The critical point of (4.1)-(4.3) whose value :func:`partial_minimum` gives, as a point (Ws, H, b): each mode
    in ``alive`` at its nonzero minimizer, every other mode at 0 (x = 0 of Lemma A.2).  Built as
    :func:`nclib.ufm.global_minimizer` builds the global minimizer (the SVD basis of M, factors balanced over the
    layers and E = H-bar D, every feature at its class mean, b = n/N with a bias, hidden width K), which it is when
    ``alive`` holds the modes of :func:`alive_at_minimum`.  For L >= 2 the point is a local minimizer when no kept mode
    is weaker than a mode at 0 (:func:`partial_minima`), a saddle otherwise; chapter :ref:`ch-minority`, section
    :ref:`sec-minority-ufm`, starts Adam near both kinds.  ``value`` is :func:`partial_minimum`'s.  ValueError naming
    ``alive`` as there, and ``d`` and ``L`` where the L - 1 layers of width K would not fit the bound of
    :func:`nclib._checks.width`, before anything is allocated."""
    checked = ufm.check_problem(n, lam_W, lam_H, L, bias, layers=True)  # the layers' memory, before any SVD
    value = partial_minimum(n, lam_W, lam_H, L, bias, alive)  # checks alive against the decays
    n, lam, lam_H, L, bias, d = checked
    U, kappa, Vt = ufm.problem_svd(n, bias)
    s = ufm.nonzero_strengths(kappa, _checks.count_total(n), lam, lam_H, L, np.asarray(alive))
    Ws, H, b = ufm.point_from_strengths(n, bias, U, Vt, s, lam, lam_H, L, d)
    return ufm.Minimizer(Ws=Ws, H=H, b=b, value=value)


def _kept_values(kappa: np.ndarray, N: int, lam: np.ndarray, lam_H: float, L: int) -> np.ndarray:
    """Per mode, its value (s - kappa)^2/(2N) + (L+1)/2 t at its nonzero local minimizer s (the global one where the
    mode is alive at the global minimizer; for L >= 2 also the local one past its threshold), NaN where it has
    none; arguments already validated."""
    s = ufm.nonzero_strengths(kappa, N, lam, lam_H, L)
    t, _, _ = ufm.balanced_factors(s, lam, lam_H)
    return np.where(s > 0, ufm.scalar_problem_values(kappa, s, t, N, L), np.nan)


def nonzero_minimizer_exists(n, lam_W, lam_H, L: int = 1, bias: bool = True) -> np.ndarray:
    """Which modes of M (:func:`problem_spectrum` order) have a nonzero local minimizer at these decays: those alive
    at the global minimizer (:func:`alive_at_minimum`) and, for L >= 2, those past their collapse decay whose scalar
    problem (Lemma A.2) still has one, where 0 is the global minimizer and the nonzero point a worse local one.  A
    trained model can keep such a mode alive, e.g. one started near the global minimizer of a smaller decay."""
    n, lam, lam_H, L, bias, _ = ufm.check_problem(n, lam_W, lam_H, L, bias)
    kappa = problem_spectrum(n, bias)
    return ufm.nonzero_strengths(kappa, _checks.count_total(n), lam, lam_H, L) > 0


def alive_without_weakest(n, lam_W, lam_H, L: int, bias: bool, dead: int) -> np.ndarray:
    """The modes kept at the critical point of :func:`partial_minimum` that puts at 0 the ``dead`` weakest of the
    modes alive at the global minimizer (those of smallest kappa; the mask over :func:`problem_spectrum` order):
    those modes at the local minimizer x = 0 of Lemma A.2, every other mode the global minimizer of Theorems 4.1-4.3
    keeps at its nonzero minimizer.  For L >= 2 it is a local minimizer, one of :func:`partial_minima`, since no kept
    mode is weaker than one at 0; for L = 1 and ``dead`` > 0 a saddle.  With a bias and equal counts the weakest
    mode tells the two smallest classes apart (:ref:`ch-fig1`, "Where the runs stopped").  ``dead`` = 0 gives the
    global minimizer's modes; ValueError naming ``dead`` when it is negative or more than the modes alive there."""
    n, lam, lam_H, L, bias, _ = ufm.check_problem(n, lam_W, lam_H, L, bias)
    kappa = problem_spectrum(n, bias)
    alive = _alive_at_minimum(kappa, _checks.count_total(n), lam, lam_H, L)
    if isinstance(dead, bool) or not isinstance(dead, (int, np.integer)) or not 0 <= dead <= int(alive.sum()):
        raise ValueError(f"dead must be an int from 0 to the {int(alive.sum())} modes alive, got {dead!r}")
    weakest = [k for k in np.argsort(kappa, kind="stable") if alive[k]][:dead]
    alive[weakest] = False
    return alive


def partial_minima(n, lam_W, lam_H, L: int, bias: bool) -> dict:
    """Every local minimizer of (4.3) that Lemma A.2 gives for L >= 2, by value, up to rotations among modes of
    equal kappa.  Each mode that has a nonzero local minimizer (:func:`nonzero_minimizer_exists`) sits there or at
    0, every other mode at 0 (:func:`partial_minimum`), and the modes at 0 are the weakest: a point that puts a mode
    at 0 and keeps a weaker one is a saddle, since turning the kept direction towards the stronger one keeps the
    penalty and lowers the fit.  A point is thus fixed by how many modes it puts at 0, weakest first.

    Returns ``kappa`` (the distinct kappa of the modes with a nonzero minimizer, increasing), ``count`` (how many
    modes have each), ``kills`` (per kappa, whether the global minimizer puts its modes at 0: past their collapse
    decay, where the nonzero point is only a local minimizer), ``dead`` (one row per point: how many of each it
    puts at 0; the first row is the global minimizer, with ``count`` where ``kills`` and 0 elsewhere) and ``value``
    (objective (4.3) there: the global minimum plus, per mode away from the global minimizer's choice, the
    difference between the mode's value at 0, kappa^2/(2N), and at its nonzero minimizer, so no row is below the
    first).  ValueError naming ``L`` for L < 2, where points with modes at 0 are saddles (Lemma A.2 has no local
    minimizer at 0 for L = 1)."""
    n, lam, lam_H, L, bias, _ = ufm.check_problem(n, lam_W, lam_H, L, bias)
    if L < 2:
        raise ValueError(f"L must be >= 2 for local minimizers with modes at 0 (Lemma A.2), got {L}")
    kappa = problem_spectrum(n, bias)
    N = _checks.count_total(n)
    kept = _kept_values(kappa, N, lam, lam_H, L)
    blocks = mode_blocks(kappa, ~np.isnan(kept))[::-1]  # weakest first
    groups = np.array([kappa[b].min() for b in blocks], dtype=np.float64)
    count = np.array([b.size for b in blocks], dtype=int)
    alive = _alive_at_minimum(kappa, N, lam, lam_H, L)
    kills = np.array([not alive[b].any() for b in blocks], dtype=bool)
    # what one mode of each group adds when it is at 0 rather than at its nonzero minimizer (> 0 for the modes the
    # global minimizer keeps, <= 0 for those it kills)
    cost = np.array([g ** 2 / (2 * N) - kept[b[0]] for g, b in zip(groups, blocks)])
    before = np.concatenate([[0], np.cumsum(count)[:-1]])  # the modes of the weaker groups
    dead = np.clip(np.arange(int(count.sum()) + 1)[:, None] - before[None, :], 0, count[None, :])
    away = dead - np.where(kills, count, 0)  # modes away from the global minimizer's choice (< 0: kept past it)
    value = ufm.minimum_value(n, lam, lam_H, L, bias) + away @ cost
    order = np.lexsort((np.abs(away).sum(axis=1), value))  # by value; at a tie (a decay on a threshold) the global
    # minimizer's own choice first
    return {"kappa": groups, "count": count, "kills": kills, "dead": dead[order], "value": value[order]}


#: How far, relatively, a float64 value of the objective (4.3) may lie below the closed-form global minimum by
#: rounding alone.  No point of the landscape is below the minimum; a value of (4.3) summed in float64 and the closed
#: form (:func:`nclib.ufm.minimum_value`) each carry a relative rounding error of about 1e-15 (the committed UFM runs
#: at the global minimum end at most 8e-16 below it), and the book compares two float64 values of one point to
#: 1e-12.  :func:`nearest_partial_minimum` refuses a value further below.
BELOW_MINIMUM_RTOL = 1e-12


def nearest_partial_minimum(n, lam_W, lam_H, L: int, bias: bool, value) -> dict:
    """The local minimizer of :func:`partial_minima` whose value is nearest (relatively) to ``value``, e.g. a run's
    final objective (4.3): ``dead`` (how many of the modes the global minimizer keeps it puts at 0, the weakest),
    ``dead_kappa`` (their kappa, increasing, with repeats), ``kept`` and ``kept_kappa`` (the same for the modes the
    global minimizer kills that it keeps at their nonzero local minimizer), ``partial`` (its value), ``above``
    (value / partial - 1; negative when ``value`` is below it), ``runner_up`` (|value / p - 1| for the next
    nearest value p of another point: how far off any other such point is, whichever side of ``value`` it lies),
    ``runner_up_above`` (value / p - 1 for that point, with its sign: negative when ``value`` is already below it,
    so that a run whose objective still falls is moving away from that point, not towards it, and cannot be at it
    however near it is) and ``alive`` (the point as a mask over the
    modes of :func:`problem_spectrum` for :func:`partial_point`; where it puts only some modes of a block of equal
    kappa at 0, which of them is a choice, the point being the same up to a rotation inside the block: the first in
    the order of :func:`alive_without_weakest`, which gives the same mask for a point that keeps no mode the global
    minimizer kills).  ValueError naming ``value`` when it is
    not a finite positive number or lies below the global minimum (Theorems 4.1-4.3) by more than a relative
    :data:`BELOW_MINIMUM_RTOL`, which no point of (4.3) does (a value from another problem: other counts or
    decays), or from :func:`partial_minima`."""
    value = _checks.positive_float(value, "value")
    points = partial_minima(n, lam_W, lam_H, L, bias)
    minimum = float(points["value"].min())  # the global minimizer's row
    if value < minimum * (1 - BELOW_MINIMUM_RTOL):
        raise ValueError(f"value must be at least the global minimum {minimum!r} of (4.3) at these decays (to a "
                         f"relative {BELOW_MINIMUM_RTOL:g}, rounding), as every point's value is, got {value!r}")
    off = np.abs(value / points["value"] - 1)
    order = np.argsort(off, kind="stable")
    best = points["dead"][order[0]]
    kills, count = points["kills"], points["count"]
    dead = np.where(kills, 0, best)
    kept = np.where(kills, count - best, 0)
    kappa = problem_spectrum(n, bias)
    alive = np.zeros(kappa.size, dtype=bool)
    # the groups of partial_minima, weakest first: in each, its first best[i] modes (weakest first, then by index) at 0
    for group, at_zero in zip(mode_blocks(kappa, nonzero_minimizer_exists(n, lam_W, lam_H, L, bias))[::-1], best):
        alive[group[np.argsort(kappa[group], kind="stable")][at_zero:]] = True
    return {"dead": int(dead.sum()), "dead_kappa": np.repeat(points["kappa"], dead),
            "kept": int(kept.sum()), "kept_kappa": np.repeat(points["kappa"], kept),
            "partial": float(points["value"][order[0]]), "above": value / float(points["value"][order[0]]) - 1,
            "runner_up": float(off[order[1]]) if order.size > 1 else None,
            "runner_up_above": value / float(points["value"][order[1]]) - 1 if order.size > 1 else None,
            "alive": alive}


def partial_point_metrics(n, lam_W, lam_H, L: int, bias: bool, alive) -> dict[str, float]:
    """NC1, NC2^W, NC2^H, NC2^{WH} and NC3 of Section 5 (with a bias) or Appendix C (without),
    :func:`nclib.metrics.collapse_metrics`, at the critical point :func:`partial_point` of Lemma A.2 that keeps the
    modes in ``alive`` and puts the others at 0: what a run's metrics read if it stopped there.

    Every feature is at its class mean, so NC1 is 0; the NC2 targets are those of the global minimizer, so an NC2 is
    not 0 once a mode the global minimizer keeps is at 0.  NC3 compares what :func:`nclib.metrics.geometry_metrics` compares: with a
    bias the blocks of equal kappa, each as a whole, so that a block keeping some of its modes, all at one strength,
    is aligned and adds 0: NC3 does not see the modes at 0 inside it (the EMNIST-letters profile has blocks of 4
    and 19 modes).  Without a bias it compares class with class, and a class whose direction the point puts at 0
    adds 1.  (With a bias a block whose modes are all at 0 is 0 only to rounding, and its term compares two rounding
    residues: not a measurement.)  ValueError naming ``alive`` as :func:`partial_point` does.
    Chapters: :ref:`ch-fig2`, :ref:`ch-fig3`."""
    point = partial_point(n, lam_W, lam_H, L, bias, alive)  # checks every argument
    n = _checks.counts(n)
    return metrics.collapse_metrics(point.H.T, class_labels(n), point.Ws, lam_W, lam_H, bias)


def partial_point_spread_nc1(n, lam_W, lam_H, L: int, bias: bool, alive, spread, seed: int = 0) -> float:
    """NC1 of Section 5 (with a bias) or Appendix C (without), as :func:`nclib.metrics.collapse_metrics` computes
    it (at the rank of Sigma_B at the global minimizer), at the features of the critical point :func:`partial_point`
    moved off their class means: each entry plus an independent normal number of standard deviation ``spread``
    times the largest |entry| of the features (``numpy.random.default_rng(seed)``).  With ``alive`` the modes of
    :func:`alive_at_minimum` the point is the global minimizer.

    What a network near the point with some within-class spread left would read.  At the point itself NC1 is 0
    (:func:`partial_point_metrics`), but not continuous there when it puts at 0 a mode the global minimizer keeps:
    the class means then span fewer directions than the rank NC1 keeps, the smallest between-class singular value
    kept is only the spread's own, and the spread along it is divided by it, so NC1 stays far from 0 however small
    the spread, while at the global minimizer it shrinks as spread^2.  ValueError naming ``spread`` unless it is a
    finite positive number, ``seed`` unless a non-negative integer, and the others as :func:`partial_point` does.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig3`."""
    spread = _checks.positive_float(spread, "spread")
    seed = _checks.nonneg_int(seed, "seed")
    point = partial_point(n, lam_W, lam_H, L, bias, alive)  # checks every other argument
    X = point.H.T
    X = X + spread * np.abs(X).max() * np.random.default_rng(seed).standard_normal(X.shape)
    return metrics.collapse_metrics(X, class_labels(_checks.counts(n)), point.Ws, lam_W, lam_H, bias)["nc1"]
