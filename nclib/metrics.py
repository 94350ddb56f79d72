"""Neural-collapse metrics NC1, NC2^W, NC2^H, NC2^{WH}, NC3, made well defined.

Section 5 of the paper (bias case) and Appendix C (bias-free case) define the metrics plotted in
Figures 1-4. As printed they have defects (an undefined 0/0 in NC3 at every bias-case minimizer,
a dependence on the SVD routine's choice of basis when singular values repeat, targets that are not
zero at the exact minimizer); see :ref:`ch-errata-metrics`. The corrected, basis-independent definitions that
:ref:`ch-metrics` derives, each of which is exactly 0 (to rounding) at the closed-form global minimizer of
``nclib.ufm``, are in two modules, one per heading of Section 5, and this module gathers them:

* :mod:`nclib.feature_collapse` -- :func:`nc1`, tr(Sigma_W Sigma_B^+)/K of Section 5, without a d x d
  pseudo-inverse, with Sigma_B cut to the rank it has at the global minimizer (:func:`between_class_rank`) so that
  NC1 stays continuous when modes collapse; :func:`separation_cutoff` is the smallest separation of the class means
  it keeps; :func:`class_means`;
* :mod:`nclib.geometry` -- :func:`geometry_metrics`, NC2^W, NC2^H, NC2^{WH}, NC3 of the product P = W_L...W_1 and
  of E = H-bar D against the structure predicted by Theorems 4.1-4.3; :func:`geometry_defined`, whether NC2 and NC3
  have a target for a network's counts, decays and width; :func:`nc2_wh_at_labels`, the NC2^{WH} of class-mean
  outputs equal to the labels, against which a run's NC2^{WH} shows whether it measures more than the fit;
  :func:`normalized_distance`; :func:`nc3_compares`.

Each of those names is also a name of this module, which adds:

* :func:`collapse_metrics` -- all five from features, labels and the head weights;
* :func:`bias_error`, :func:`global_mean_norm` -- the distances of the bias and of the global feature mean to
  their values b* = n/N and h_G = 0 at every minimizer of Theorems 4.2 and 4.3, which the training runs report.

The printed forms, kept only to exhibit their defects, are in :mod:`nclib.printed_metrics`; the training accuracy,
overall and class by class, is in :mod:`nclib.accuracy`.

Features are given as an N x d array (one row per sample), labels as N integers 0..K-1 (integer-valued floats are
read as integers, as ``nclib.datafiles.check_labels`` reads them); float32 or float64 input is accepted and every
computation is carried out in float64. Torch tensors are read by their values (detached, also where they require
grad, as trained weights do), and nested lists that numpy cannot read as one array are refused naming the argument
(:mod:`nclib._samples`).
"""
from __future__ import annotations

import numpy as np

from . import _checks, _samples, ufm
from .feature_collapse import (between_class_rank, class_means, nc1, nc1_from_means,  # noqa: F401 (re-exported)
                               separation_cutoff)
from .geometry import (geometry_defined, geometry_metrics, nc2_wh_at_labels, nc3_compares,  # noqa: F401
                       normalized_distance)  # (re-exported)


# ---------------------------------------------------------------------------------------------
# all five from a network: features, labels and the head's weights
# ---------------------------------------------------------------------------------------------

def _head_direction(Ws, d: int, K: int | None = None) -> np.ndarray:
    """P = W_L ... W_1 (K x d) in float64 up to a positive factor, checking that the shapes chain (W_1 has d
    columns). The running product is rescaled by a power of two after each factor
    (:func:`nclib._samples.unit_peak`), and where a product with W_j overflows or falls near the bottom of the float64
    range, it is formed again with W_j rescaled too: factors the scale-free metrics do not see, so that the product
    of finite weights of any size stays finite and accurate, while an ordinary W_j (d x d) is neither copied nor
    scanned."""
    if isinstance(Ws, np.ndarray) or not hasattr(Ws, "__len__"):
        raise ValueError("Ws must be a list [W_1, ..., W_L] of 2-D arrays (W_1 applied first)")
    if len(Ws) == 0:
        raise ValueError("Ws must hold at least one layer (L >= 1), got an empty list")
    mats = []
    cols = d
    for j, W in enumerate(Ws):
        W = _checks.array(W, f"Ws[{j}]")
        if W.ndim != 2 or not _checks.real_dtype(W.dtype):
            raise ValueError(f"Ws[{j}] must be a 2-D real array, got shape {W.shape} and dtype {W.dtype}")
        if _checks.mixes_bools(Ws[j]):  # numpy reads [[True, 2.0]] as floats
            raise ValueError(f"Ws[{j}] must be a 2-D real array, not bools")
        if W.shape[1] != cols:
            what = f"the feature dimension d={d}" if j == 0 else f"the {cols} rows of Ws[{j - 1}]"
            raise ValueError(f"Ws[{j}] has shape {W.shape}; its number of columns must equal {what}")
        if not np.all(np.isfinite(W)):
            raise ValueError(f"Ws[{j}] must be finite (no NaN or inf)")
        cols = W.shape[0]
        mats.append(W)
    if K is not None and mats[-1].shape[0] != K:
        raise ValueError(f"Ws[-1] (W_L) must have K={K} rows, one per class; got shape {mats[-1].shape}")
    P = _samples.unit_peak(mats[-1].astype(np.float64))
    for W in mats[-2::-1]:
        W = W.astype(np.float64, copy=False)
        with np.errstate(over="ignore", under="ignore"):
            Q = P @ W  # K x d_(j-1): never a d x d product
        if not np.all(np.isfinite(Q)) or _samples.peak_exponent(Q) < -768:  # overflow, or entries at risk of underflow
            Q = P @ np.ldexp(W, -_samples.peak_exponent(W))
        P = _samples.unit_peak(Q)
    return P


_GEOMETRY_KEYS = ("nc2_w", "nc2_h", "nc2_wh", "nc3")


def collapse_metrics(features, labels, Ws, lam_W, lam_H, bias: bool = True) -> dict[str, float]:
    """NC1, NC2^W, NC2^H, NC2^{WH}, NC3 of Section 5 (bias) or Appendix C (bias-free), made well defined.

    features: N x d array of the features H^T (one row per sample, float32 or float64); labels: N
    integers 0..K-1 where K is the number of rows of W_L and every class has a sample;
    Ws = [W_1, ..., W_L] with W_1 applied first (d_1 x d) and W_L of shape K x d_{L-1};
    lam_W: one weight decay or L of them (lambda_{W_1}, ..., lambda_{W_L}); lam_H > 0; bias: whether
    the model of Theorem 4.2/4.3 (with b) or of Theorem 4.1 (without) gives the targets.

    Returns the dict {"nc1", "nc2_w", "nc2_h", "nc2_wh", "nc3"}: :func:`nc1` at the rank
    :func:`between_class_rank` that Sigma_B has at every global minimizer (K - 1 unless modes other
    than the zero mode of Y-bar collapse, and then the rank that keeps NC1 continuous there), and
    :func:`geometry_metrics` of P = W_L...W_1 and E = H-bar D against
    ``nclib.ufm.structure(n, lam_W, lam_H, L, bias, d)`` with n the class counts of ``labels`` and d the
    smallest of the feature dimension and the hidden widths (only the top d modes survive when d < K). When d
    splits a group of surviving modes of equal kappa the global minimizers share no one geometry, and the four
    geometry metrics are NaN (NC1 is still defined: Sigma_B has rank d there). Without
    a bias too the features enter as E = H-bar D, not as H-bar (erratum M4 says why).
    All five are 0 (to rounding) at every closed-form global minimizer and independent of the
    choice of singular vectors of M (chapter :ref:`ch-metrics`). The bias-case H-bar is not
    centred, so a non-zero global feature mean (0 at every minimizer, Theorem 4.2) shows up in
    nc2_h and nc2_wh.
    """
    X = _samples.features(features)
    N, d = X.shape
    if isinstance(Ws, np.ndarray) or not hasattr(Ws, "__len__") or len(Ws) == 0:
        raise ValueError("Ws must be a non-empty list [W_1, ..., W_L] of 2-D arrays (W_1 applied first)")
    W_L = _checks.array(Ws[-1], "Ws[-1] (W_L)")
    if W_L.ndim != 2:
        raise ValueError(f"Ws[-1] (W_L) must be a 2-D array of shape (K, d_(L-1)), got shape {W_L.shape}")
    K = W_L.shape[0]
    y, n = _samples.labels(labels, N, num_classes=K, head=True)
    L = len(Ws)
    lam_W = _checks.layer_lambdas(lam_W, L, "lam_W")
    lam_H = _checks.positive_float(lam_H, "lam_H")
    bias = _checks.flag(bias, "bias")
    P = _head_direction(Ws, d, K)
    X = _samples.unit_peak(X)  # every metric is scale free: an exact rescaling keeps every step in range (nc1)
    means = _samples.means(X, y, K)  # K x d
    E = means.T * np.sqrt(n)[None, :]  # H-bar D, d x K, up to the power of two
    width = min([d] + [np.shape(W)[0] for W in Ws[:-1]])  # the feature dimension and the hidden widths
    structure = ufm.structure(n, lam_W, lam_H, L=L, bias=bias)
    if width < K:  # only the top `width` modes can survive
        if not geometry_defined(n, lam_W, lam_H, L, bias, width):  # no one target geometry
            rank = min(width, between_class_rank(structure))
            return {"nc1": nc1_from_means(X, y, n, means, None, rank), **{k: float("nan") for k in _GEOMETRY_KEYS}}
        structure = ufm.structure(n, lam_W, lam_H, L=L, bias=bias, d=width)
    out = {"nc1": nc1_from_means(X, y, n, means, None, between_class_rank(structure))}
    out.update(geometry_metrics(P, E, structure))
    return out


# ---------------------------------------------------------------------------------------------
# the bias and the global feature mean against the minimizer: b* = n/N and h_G = 0 (Theorems 4.2, 4.3)
# ---------------------------------------------------------------------------------------------

def bias_error(b, labels, num_classes: int | None = None) -> float:
    """||b - n/N||_2: distance of the bias to its value n/N at every minimizer (Theorems 4.2, 4.3).

    b: the K bias entries; labels: the N training labels 0..K-1 (n = class counts), every class with a sample;
    K = ``num_classes`` when given, else the classes of ``labels`` (largest label + 1), and b must have K entries
    (ValueError naming ``b`` otherwise). Chapter :ref:`ch-metrics`.
    """
    b = _checks.vector(b, "b")
    if num_classes is not None:
        num_classes = _checks.positive_int(num_classes, "num_classes")
        if b.size != num_classes:
            raise ValueError(f"b must have num_classes={num_classes} entries, got {b.size}")
    y, n = _samples.labels(labels, _checks.array(labels, "labels").size, num_classes=num_classes)
    if b.size != n.size:
        raise ValueError(f"b must have one entry per class of labels, K={n.size} (labels 0..{n.size - 1}), "
                         f"got {b.size}")
    return float(np.linalg.norm(b - n / n.sum()))


def global_mean_norm(features) -> float:
    """||h_G||_2 with h_G = (1/N) sum_{k,i} h_{k,i}, the global feature mean (0 at every bias-case
    minimizer: proof of Theorem 4.2, eq. (B.5)-(B.7)). features: N x d. Chapter :ref:`ch-metrics`.

    Scale-safe like the rest of the module: the norm is taken of h_G rescaled by a power of two
    (:func:`nclib._samples.unit_peak`) and scaled back, since the sum of squares of entries above 1e154 overflows and
    below 1e-154 underflows; where the sum of N entries near the top of the float64 range overflows, h_G is the mean
    of the rescaled features, scaled back. The result is inf only when ||h_G|| itself exceeds the float64 range."""
    X = _samples.features(features)
    with np.errstate(over="ignore", invalid="ignore"):
        h_G = X.mean(axis=0)
    if not np.all(np.isfinite(h_G)):  # the sum of N finite entries overflowed: average the rescaled features
        e = _samples.peak_exponent(X)
        h_G = np.ldexp(np.ldexp(X, -e).mean(axis=0), e)  # |h_G| <= max |x_ij|: finite
    with np.errstate(over="ignore", under="ignore"):  # squares of entries far below the peak may underflow: negligible
        return float(np.ldexp(np.linalg.norm(_samples.unit_peak(h_G)), _samples.peak_exponent(h_G)))

