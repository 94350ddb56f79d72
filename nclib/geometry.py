"""Convergence to geometric structure: NC2^W, NC2^H, NC2^{WH} and NC3 of Section 5 (bias case) and Appendix C
(bias-free case), made well defined.

Section 5 of the paper compares the head's product P = W_L...W_1 and the class means H-bar with the structure that
Theorems 4.1-4.3 predict at every global minimizer. As printed these metrics have defects (an undefined 0/0 in NC3 at
every bias-case minimizer, a dependence on the SVD routine's choice of basis when singular values repeat, targets
that are not zero at the exact minimizer); see :ref:`ch-errata-metrics`. This module implements the corrected,
basis-independent definitions that :ref:`ch-metrics` derives, each exactly 0 (to rounding) at the closed-form global
minimizer of ``nclib.ufm``:

* :func:`geometry_metrics` -- NC2^W, NC2^H, NC2^{WH}, NC3 of the product P = W_L...W_1 and of E = H-bar D against
  the structure predicted by Theorems 4.1-4.3, and :func:`normalized_distance`, the distance every NC2 takes;
* :func:`geometry_defined` -- whether NC2 and NC3 have a target for a network's counts, decays and width;
  :func:`nc3_compares` -- what NC3 compares, modes or classes, and :func:`recorded_nc3_compares`, what a run's
  NC3 compared, made before or since that was recorded;
* :func:`nc2_wh_at_labels` -- the NC2^{WH} of class-mean outputs equal to the labels, against which a run's
  NC2^{WH} shows whether it measures more than the fit.

NC1 is in :mod:`nclib.feature_collapse`; all five from a network's features, labels and head weights are
:func:`nclib.metrics.collapse_metrics`. Matrices are read in float64; a torch tensor by its values.
"""
from __future__ import annotations

import numpy as np

from . import _checks, _samples, ufm
from .imbalance import BLOCK_RTOL, mode_blocks


def _normalized(X: np.ndarray) -> np.ndarray:
    """X / ||X||_F, with the convention normalized(0) = 0, for any finite X: ||X||_F is taken after
    :func:`nclib._samples.unit_peak`, since the sum of squares of entries below 1e-154 underflows and above 1e154
    overflows."""
    Y = _samples.unit_peak(X)
    nrm = np.linalg.norm(Y)
    return Y / nrm if nrm > 0 else np.zeros_like(Y)


def _distance(X: np.ndarray, T: np.ndarray) -> float:
    """|| X/||X||_F - T/||T||_F ||_F of validated arrays, 0/0 := 0 (:func:`normalized_distance`)."""
    return float(np.linalg.norm(_normalized(X) - _normalized(T)))


def normalized_distance(X, T) -> float:
    """|| X/||X||_F - T/||T||_F ||_F with 0/0 := 0 for a zero matrix (the shape of every NC2 metric).

    Lies in [0, 2]; equals 1 when exactly one of X, T is zero and 0 when both are. X and T must be
    finite: a NaN or inf has no direction, and the distance is refused (ValueError naming X or T) rather
    than returned as a number, like every other input of this module. Used in :ref:`ch-errata-metrics`.
    """
    X, T = (_real_array(v, name) for v, name in ((X, "X"), (T, "T")))
    if X.shape != T.shape:
        raise ValueError(f"X and T must have the same shape, got {X.shape} and {T.shape}")
    return _distance(X, T)


def _real_array(a, name: str) -> np.ndarray:
    """``a`` as a float64 array of any shape (vectors and matrices alike), refused by name unless every entry is a
    finite real number: a matrix with NaN or inf has no direction."""
    arr = _checks.array(a, name)
    if arr.ndim == 2:
        return _checks.matrix(a, name)
    if arr.ndim <= 1:
        return _checks.vector(a, name)
    raise ValueError(f"{name} must be a vector or a matrix, got shape {arr.shape}")


def _structure_arrays(structure, K: int):
    """M, U, V (K x K), kappa, s_product, s_features (K each) of ``structure``, each refused by its name
    (``structure.U`` and so on) unless finite real numbers of that shape, the strengths non-negative."""
    fields = ("M", "U", "V", "kappa", "s_product", "s_features")
    if not all(hasattr(structure, f) for f in fields):
        raise ValueError("structure must have the fields M, U, V, kappa, s_product, s_features "
                         "(nclib.ufm.structure)")
    U = _checks.matrix(structure.U, "structure.U", (K, K))
    V = _checks.matrix(structure.V, "structure.V", (K, K))
    kappa = _checks.singular_values(structure.kappa, "structure.kappa")
    if kappa.size != K:
        raise ValueError(f"structure.kappa must have K={K} entries, got {kappa.size}")
    s_p = _checks.strengths(structure.s_product, "structure.s_product", K)
    s_f = _checks.strengths(structure.s_features, "structure.s_features", K)
    M = _checks.matrix(structure.M, "structure.M", (K, K))
    return M, U, V, kappa, s_p, s_f


def _modes_are_classes(M: np.ndarray) -> bool:
    """Whether M is diagonal with non-negative entries, exactly, as M = D = diag(sqrt n) of the bias-free model is
    (Theorem 4.1, :func:`nclib.ufm.structure`): its modes are then the classes, a basis the problem fixes, and NC3
    compares class with class as Appendix C does.  (With a bias, M = Y-bar has non-zero entries off its diagonal
    for every K >= 2.)"""
    return not np.any(M - np.diag(np.diag(M))) and bool(np.all(np.diag(M) >= 0))


def geometry_metrics(P, E, structure, block_rtol: float = BLOCK_RTOL) -> dict[str, float]:
    """NC2^W, NC2^H, NC2^{WH} and NC3 of Section 5 / Appendix C, basis-independent (:ref:`ch-metrics`).

    P = W_L ... W_1 (K x d) is the product of the head, E = H-bar D (d x K) the class-mean matrix
    times D = diag(sqrt(n)), and ``structure`` the prediction of Theorems 4.1-4.3 for the same n and
    lambdas (``nclib.ufm.structure``: M = U diag(kappa) V^T, and at every global minimizer
    P P^T = U diag(s_product^2) U^T, E^T E = V diag(s_features^2) V^T,
    P E = U diag(s_product s_features) V^T). With nd(X, T) = ||X/||X||_F - T/||T||_F||_F:

    * nc2_w  = nd(P P^T, U diag(s_product^2) U^T),
    * nc2_h  = nd(E^T E, V diag(s_features^2) V^T),
    * nc2_wh = nd(P E,   U diag(s_product s_features) V^T),
    * nc3    = sqrt(sum_B || sqrt|B| P^T U_B/||P^T U_B||_F - sqrt|B| E V_B/||E V_B||_F ||_F^2)
      over the blocks B of equal kappa among the modes with s_product > 0 (:func:`mode_blocks`), with a
      bias (M = Y-bar; ``block_rtol`` the tolerance of equal kappa); without one (M = D, diagonal with
      non-negative entries, as :func:`nclib.ufm.structure` builds it) every class is a block of its own, U = V = I:
      nc3 = sqrt(sum_k || w_k/||w_k|| - g_k/||g_k|| ||^2) over the surviving classes, w_k^T the k-th row of
      P and g_k the k-th column of E, the NC3 of Appendix C.

    The targets are functions of M alone, hence independent of the choice of U, V; with a bias NC3 is
    invariant under a common rotation inside a block, and for singleton blocks it is the paper's
    per-mode comparison of the rows of U^T P with the columns of H-bar D V. A block of more than one mode is
    normalized as a whole, so with a bias NC3 also measures the balance of strengths inside a block of equal
    kappa: P = U diag(a) R^T and E = R diag(b) V^T (R with orthonormal columns), every mode aligned, give a block
    the term 0 only when a and b are proportional on it, and NC3 > 0 for unequal strengths such as independent
    random a and b. At every global minimizer both are constant on each block (s_product and s_features depend on
    kappa alone), so NC3 is 0 there. This is a choice, kept because the committed runs recorded it: comparing per
    block the polar factors of P^T U_B and E V_B instead is as free of the basis and does not weigh the strengths
    (:ref:`ch-metrics` computes both). The CIFAR-10 profile with a bias has blocks of one mode only, where NC3 is
    per mode; the EMNIST-letters profile with a bias has blocks of 4 and 19 modes. Without a bias the classes
    are a basis the problem fixes, and Appendix C compares class with class: a block of classes of equal
    count compared as a whole would also weigh the norms of its classes against each other, which NC2
    measures, and would not be the paper's NC3. Conventions (documented
    in :ref:`ch-metrics`): a zero matrix normalizes to 0 (so an NC2 is 1 when exactly one side
    vanishes, 0 when both do); a surviving block (or class) where P^T U_B or E V_B vanishes, or both do (as at
    P = 0, E = 0, a critical point of the objective), contributes |B|;
    collapsed modes (the printed 0/0) are left out of NC3, so NC3 = 0 when no mode survives. Every value is
    unchanged (to the rounding of the scaled entries) when P or E is multiplied by any positive number that keeps
    its entries finite: both are normalized before a product is formed.
    """
    P = _checks.matrix(P, "P")
    if 0 in P.shape:  # no class or no feature: nothing has a direction (collapse_metrics refuses d = 0 too)
        raise ValueError(f"P must be K x d with K >= 1 classes and d >= 1 features, got shape {P.shape}")
    K = P.shape[0]
    E = _checks.matrix(E, "E", shape=(P.shape[1], K))
    M, U, V, kappa, s_p, s_f = _structure_arrays(structure, K)
    block_rtol = _checks.nonneg_float(block_rtol, "block_rtol")
    alive = (s_p > 0) & (s_f > 0)
    # every metric is scale free: P, E and the predicted strengths are normalized before any product is
    # formed, so that no Gram matrix under- or overflows and the values do not change when P or E is scaled
    P, E = _normalized(P), _normalized(E)
    s_p, s_f = _samples.unit_peak(s_p), _samples.unit_peak(s_f)
    T_W = (U * s_p**2) @ U.T
    T_H = (V * s_f**2) @ V.T
    T_WH = (U * (s_p * s_f)) @ V.T
    out = {
        "nc2_w": _distance(P @ P.T, T_W),
        "nc2_h": _distance(E.T @ E, T_H),
        "nc2_wh": _distance(P @ E, T_WH),
    }
    if _modes_are_classes(M):  # bias-free: class with class (Appendix C), the classes of the surviving modes
        blocks = [np.array([k]) for k in np.flatnonzero(np.abs(U[:, alive]).sum(axis=1) > 0)]
        U = V = np.eye(K)
    else:
        blocks = mode_blocks(kappa, alive, block_rtol)
    total = 0.0
    for B in blocks:
        a = _normalized(P.T @ U[:, B])
        b = _normalized(E @ V[:, B])
        if not (a.any() and b.any()):  # a side without a direction, or both (P = 0, E = 0): |B|, never 0
            total += B.size
            continue
        scale = np.sqrt(B.size)
        total += float(np.sum((scale * a - scale * b) ** 2))
    out["nc3"] = float(np.sqrt(total))
    return out


def nc3_compares(bias) -> str:
    """What the NC3 of :func:`geometry_metrics` compares in the model with (``bias=True``) or without a bias, as
    a run's provenance records it (``nc3_compares``, :ref:`ch-metrics`): "modes" with a bias (the blocks of equal
    singular value of Y-bar), "classes" without (class with class, Appendix C)."""
    return "modes" if _checks.flag(bias, "bias") else "classes"


#: What the NC3 of a bias-free run recorded before the bias-free NC3 compared class with class compares: each block
#: of classes of equal count as a whole, as the blocks of equal singular value are compared with a bias
#: (:func:`recorded_nc3_compares`).  At a global minimizer it is 0 as Appendix C's is; away from one it also weighs
#: the norms of a block's classes against each other, and it does not see a class lost from a block: where the
#: classifier row and the class mean of one class are 0 and the block's other classes are aligned at one ratio of the
#: norm of a row to that of its class mean, the block adds 0 to NC3^2, while Appendix C's NC3 adds 1 to NC3^2 for the
#: lost class (:ref:`ch-fig3`, at the point next to which its L = 6 run stopped).
NC3_EQUAL_COUNT_BLOCKS = "blocks of equal counts"


def recorded_nc3_compares(bias, recorded=None) -> str:
    """What a run's ``nc3`` column compares: ``recorded``, the ``nc3_compares`` of its provenance
    (:func:`nc3_compares`), where it is recorded.  A run recorded without it was made before the bias-free NC3
    compared class with class: with a bias its NC3 is the same ("modes"), without one it compared each block of
    classes of equal count as a whole, :data:`NC3_EQUAL_COUNT_BLOCKS` (:ref:`ch-metrics`).  ValueError naming
    ``recorded`` unless it is None or one of those three, and ``bias`` unless it is a bool.  A record its bias case
    would not make (:func:`nc3_compares`) is returned as recorded: ``scripts/land_gpu_runs.py`` compares it with
    the landed runs' and refuses a run of another arithmetic by name."""
    known = ("modes", "classes", NC3_EQUAL_COUNT_BLOCKS)
    if recorded is not None and recorded not in known:
        raise ValueError(f"recorded must be None or one of {list(known)}, got {recorded!r}")
    bias = _checks.flag(bias, "bias")
    if recorded is not None:
        return recorded
    return "modes" if bias else NC3_EQUAL_COUNT_BLOCKS


def nc2_wh_at_labels(n, lam_W, lam_H, L=1, bias=True) -> float:
    """NC2^{WH} (:func:`geometry_metrics`) of a point whose class-mean outputs equal the labels.

    NC2^{WH} compares P E = W_L...W_1 H-bar D with U diag(s_product s_features) V^T, its value at every global
    minimizer (Theorems 4.1-4.3, :func:`nclib.ufm.structure`), so it depends on the features and the head only
    through the outputs of the class means, P H-bar.  Where these equal the labels, P H-bar = I without a bias
    (and P H-bar + b* 1^T = I with one, the bias at b* = n/N), P E = M: D = diag(sqrt n) without a bias, Y-bar with
    one.  Its NC2^{WH}, ||M/||M||_F - T/||T||_F||_F, is how far fitting the labels alone is from the minimizers'
    product, whose modes the decays scale down each by a factor of its own (s_product s_features / kappa); 0 where
    that factor is the same for every mode with kappa_k > 0, none of which collapses (equal counts without a bias).
    A mode with kappa_k > 0 that collapses has the factor 0: where some collapse and others do not, the value is
    above 0 however alike the survivors' factors, and where every mode collapses the target is 0, which
    normalizes to 0 (:func:`normalized_distance`), and the value is 1.  Arguments as :func:`nclib.ufm.structure`
    (ValueError naming the one refused).  Used in :ref:`ch-fig4` and :ref:`ch-figures-summary`.
    """
    st = ufm.structure(n, lam_W, lam_H, L=L, bias=bias)
    K = st.M.shape[0]
    return geometry_metrics(np.eye(K), st.M, st)["nc2_wh"]


def geometry_defined(n, lam_W, lam_H, L=1, bias=True, d=None) -> bool:
    """Whether NC2^W, NC2^H, NC2^{WH} and NC3 have a target for a network of class counts ``n``, decays ``lam_W``
    (one or L of them) and ``lam_H``, head depth ``L``, the model with or without a bias, and smallest hidden width
    ``d`` (the feature dimension and every W_j's rows but W_L's; None: at least K).

    False where a decay is 0: Theorems 4.1-4.3 assume positive decays and give no geometry of the minimizers then
    (:func:`nclib.metrics.collapse_metrics` refuses such a decay; a training run records NaN in those columns, the
    engine's ``host_metrics``).  False where d < K cuts a group of equal kappa among the surviving modes: the
    minimizers share no one geometry, and :func:`nclib.metrics.collapse_metrics` returns NaN for the four
    (:func:`nclib.ufm.structure` refuses such a ``d``).  True otherwise.  NC1 is defined in every case.  Each
    argument is checked (zero decays allowed), a ValueError naming the one refused.  Used in :ref:`ch-train` (the
    checks of a run's history) and by :func:`nclib.metrics.collapse_metrics`.
    """
    n = _checks.counts(n)
    L = _checks.positive_int(L, "L")
    lam = _checks.layer_lambdas(lam_W, L, "lam_W", positive=False)
    lam_H = _checks.nonneg_float(lam_H, "lam_H")
    bias = _checks.flag(bias, "bias")
    if d is not None:
        d = _checks.positive_int(d, "d")
    if lam.min() == 0 or lam_H == 0:
        return False
    if d is None or d >= n.size:
        return True
    structure = ufm.structure(n, lam, lam_H, L=L, bias=bias)
    return not ufm.width_splits_modes(structure.s_product, structure.kappa, d)

