"""The metrics NC1, NC2, NC3 of Section 5 and Appendix C as printed, and the targets of Theorem 4.3 as printed.

Kept only to exhibit their defects (chapter :ref:`ch-errata-metrics`) beside the corrected, well-defined forms of
:mod:`nclib.metrics` (chapter :ref:`ch-metrics`), with whose inputs and rounding conventions they are computed:

* :func:`printed_nc1` -- tr(Sigma_W Sigma_B^+)/K with d x d matrices and NumPy's ``pinv`` (erratum M6);
* :func:`printed_nc2` -- || X/||X||_F - T/||T||_F ||_F with no convention for 0/0 (errata M3, M4);
* :func:`printed_nc3` -- the per-mode comparison of normalized columns, NaN at a collapsed mode (errata M1, M2);
* :func:`printed_upsilon` -- the diagonal targets Upsilon_1, Upsilon_2 of Theorem 4.3 as read from the text (M3, M4).
"""
from __future__ import annotations

import numpy as np

from . import _checks, _samples, statements
from .feature_collapse import about_midrange, relative_cutoff, rounding_level, zero_to_rounding


#: NumPy's default cutoff of ``numpy.linalg.pinv``, relative to the largest singular value.
_PINV_RCOND = 1e-15


def printed_nc1(features, labels, num_classes: int | None = None, rcond: float | None = None,
                rank: int | None = None) -> float:
    """The printed NC1 = tr(Sigma_W Sigma_B^+)/K of Section 5 (Appendix C uses the same), computed as printed.

    Sigma_W = (1/N) sum_{k,i} (h_{k,i} - h_k)(h_{k,i} - h_k)^T and Sigma_B = (1/K) sum_k (h_k - h_G)(h_k - h_G)^T
    with h_G the mean of all N features, both formed as d x d matrices, and Sigma_B^+ from
    ``numpy.linalg.pinv``, which drops the singular values of Sigma_B at or below ``rcond`` times the largest
    (0 <= rcond < 1; default None: NumPy's own cutoff, 1e-15). ``rank``, when given, cuts Sigma_B to its ``rank``
    largest eigenvalues, the rank it has at a global minimizer with collapsed modes (erratum M6), inside the
    pseudo-inverse: only those eigenpairs (of an eigendecomposition) are inverted, the eigenvalues at or below
    ``rcond`` times the largest dropped as ``pinv`` drops them. (A ``pinv`` of Sigma_B rebuilt from them would see
    the rounding of the rebuilt matrix in every other direction, and at large d its cutoff keeps some of it.)
    ``rank = 0`` leaves no between-class direction and gives 0. :func:`nclib.metrics.nc1` computes the same
    quantity without a d x d matrix, with its cutoff relative to the singular values of [h_k - h_G] rather than of
    Sigma_B; this form is kept to show what the printed one does near a minimizer with collapsed modes, where its
    cutoff decides the value. Cutoff caveat: the two agree in floating point only where no singular value of
    [h_k - h_G] lies between their cutoffs. :func:`nclib.metrics.nc1` drops those at or below max(d, K) eps times the
    largest and those within the rounding error of [h_k - h_G], sqrt(d K) (N + 2) eps max|x_ij|
    (:func:`nclib.metrics.separation_cutoff`); this form those at or below sqrt(rcond) times the largest (3.2e-8 at
    NumPy's default). Either can drop what the other keeps, and the within-class spread along that direction,
    divided by the square of the value, then enters one of them only: a value above max(d, K) eps and the rounding
    error but below sqrt(rcond) times the largest enters :func:`nclib.metrics.nc1` only (section
    :ref:`sec-metrics-nc1-rank`), one above sqrt(rcond) times the largest but within the rounding error (a small
    separation beside a large one, with a wide spread or a large N) enters this form only.
    Class means that coincide (Sigma_B = 0) give 0 however spread the features are, as printed (Sigma_B^+ = 0); they
    are read to rounding with the level of :func:`nclib.metrics.nc1` (every entry of [h_k - h_G] within
    (N + 2) eps max|x_ij|, and where it is, within the level of the features read about their midrange, so that a
    common offset is no collapse), since means equal in exact arithmetic but not bit for bit would otherwise give a
    Sigma_B of rounding errors and NC1 ~ 1e30. The features are rescaled by a power of two first, as in
    :func:`nclib.metrics.nc1`.
    features: N x d; labels: N integers 0..K-1 (K = ``num_classes`` or the largest label + 1), every class
    with a sample. Used by :ref:`ch-metrics` and :ref:`ch-errata-metrics`.
    """
    X = _samples.features(features)
    y, n = _samples.labels(labels, X.shape[0], num_classes)
    K, (N, d) = n.size, X.shape
    if rcond is not None:
        rcond = relative_cutoff(rcond, "rcond")
    if rank is not None:
        if not _checks.is_integral(rank) or not 0 <= int(rank) <= min(d, K - 1):
            raise ValueError(f"rank must be an integer 0..min(d, K-1) = 0..{min(d, K - 1)}, got {rank!r}")
        rank = int(rank)
    if rank == 0:
        return 0.0  # no between-class direction: the pseudo-inverse of the zero matrix
    X = _samples.unit_peak(X)  # the ratio is scale free: an exact rescaling keeps the d x d products in range
    means = _samples.means(X, y, K)
    A = (means - X.mean(axis=0)).T  # d x K
    if zero_to_rounding(A, rounding_level(X)):  # zero to the rounding of the features, offset included
        X, level = about_midrange(X)  # read again about their midrange, as nc1 does
        means = _samples.means(X, y, K)
        A = (means - X.mean(axis=0)).T
        if zero_to_rounding(A, level):  # Sigma_B = 0 to rounding: pinv(0) = 0, as printed
            return 0.0
    C = X - means[y]
    S_W, S_B = C.T @ C / N, A @ A.T / K
    if rank is None:
        pinv = np.linalg.pinv(S_B) if rcond is None else np.linalg.pinv(S_B, rcond=rcond)
    else:  # the rank cut inside the pseudo-inverse: the rank largest eigenpairs, above pinv's cutoff, inverted
        w, Q = np.linalg.eigh(S_B)  # ascending: the last rank eigenpairs are the largest
        w, Q = w[d - rank:], Q[:, d - rank:]
        kept = w > (_PINV_RCOND if rcond is None else rcond) * w[-1]
        pinv = (Q[:, kept] / w[kept]) @ Q[:, kept].T
    return float(np.trace(S_W @ pinv) / K)


def printed_nc2(X, target) -> float:
    """The printed NC2 shape || X/||X||_F - T/||T||_F ||_F with no convention for 0/0 (Section 5).

    X is U^T P P^T U, V^T E^T E V or U^T P E V (or, Appendix C, P P^T, H-bar^T H-bar, P H-bar) and T
    the printed target. Returns NaN where a norm is 0. Used by :ref:`ch-errata-metrics`.
    """
    X = _checks.matrix(X, "X")
    T = _checks.matrix(target, "target")
    if X.shape != T.shape:
        raise ValueError(f"X and target must have the same shape, got {X.shape} and {T.shape}")
    nx, nt = np.linalg.norm(X), np.linalg.norm(T)
    if nx == 0 or nt == 0:
        return float("nan")
    return float(np.linalg.norm(X / nx - T / nt))


def printed_nc3(P, G_left, G_right) -> float:
    """The printed NC3 = || [w_k/||w_k||]_k - [g_k/||g_k||]_k ||_F of Section 5 / Appendix C.

    P: K x d; w_k is row k of ``G_left^T P`` (G_left = U in Section 5, I in Appendix C);
    G_right: d x K whose columns are g_k (H-bar D V in Section 5, H-bar in Appendix C).
    Every mode is compared, so a zero w_k or g_k gives 0/0 = NaN, as printed.
    Used by :ref:`ch-errata-metrics`.
    """
    P = _checks.matrix(P, "P")
    G_left = _checks.matrix(G_left, "G_left", (P.shape[0], P.shape[0]))
    Wt = (G_left.T @ P).T  # d x K, columns w_k
    G = _checks.matrix(G_right, "G_right")
    if Wt.shape != G.shape:
        raise ValueError(f"G_right must be d x K = {Wt.shape}, got {G.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        a = Wt / np.linalg.norm(Wt, axis=0, keepdims=True)
        b = G / np.linalg.norm(G, axis=0, keepdims=True)
    return float(np.linalg.norm(a - b))


def printed_upsilon(structure, lam_W, lam_H, N: int, L: int) -> dict[str, np.ndarray]:
    """The diagonal targets Upsilon_1, Upsilon_2 of Theorem 4.3 as read from the printed text.

    Theorem 4.3 sets c = lambda_{W_1}^{L-1} / (lambda_{W_2} ... lambda_{W_L}) and
    Upsilon_1 = diag(sigma_1^{2L}, ..., sigma_r^{2L}, 0, ..., 0), and states
    U^T P P^T U = c Upsilon_1, V^T E^T E V = c Upsilon_2 kappa^2, U^T P E V = c Upsilon_2 kappa;
    the OCR of Upsilon_2 = diag(sigma_k^{2L} / (c sigma_k^{2L} + N lambda_H)^p) leaves the power p
    unreadable, so both readings are returned ("upsilon2_p1", "upsilon2_p2"). sigma_k^{2L} is taken
    from the exact minimizer (c sigma_k^{2L} = s_product_k^2), so that only the form of each target is
    tested, not the formula for sigma_k. Returns K x K diagonal matrices in the order of
    ``structure.kappa`` together with ``kappa`` as a diagonal matrix. Used by :ref:`ch-errata-metrics`.
    ``structure.s_product`` holds strengths, non-negative (a ValueError names it otherwise, as
    :func:`nclib.geometry.geometry_metrics` and :func:`nclib.feature_collapse.between_class_rank` do): squared here, a
    negative one would pass as its absolute value.
    """
    L = _checks.positive_int(L, "L")
    lam = _checks.layer_lambdas(lam_W, L, "lam_W")
    lam_H = _checks.positive_float(lam_H, "lam_H")
    N = _checks.positive_int(N, "N")
    try:
        s_p = _checks.strengths(structure.s_product, "structure.s_product")
        kappa = _checks.singular_values(structure.kappa, "structure.kappa")
    except AttributeError as exc:
        raise ValueError("structure must have the fields kappa and s_product (nclib.ufm.structure)") from exc
    if s_p.size != kappa.size:
        raise ValueError(f"structure.s_product must have one entry per kappa ({kappa.size}), got {s_p.size}")
    c = statements.theorem43_c(lam, L)
    sigma2L = s_p**2 / c
    q = c * sigma2L + N * lam_H
    return {
        "c": c,
        "upsilon1": np.diag(sigma2L),
        "upsilon2_p1": np.diag(sigma2L / q),
        "upsilon2_p2": np.diag(sigma2L / q**2),
        "kappa": np.diag(kappa),
    }
