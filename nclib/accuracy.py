"""The training accuracy of Section 5, plotted in Figures 1-4: overall and class by class.

Section 5 of the paper reports beside the collapse metrics the training accuracy of each run, the fraction of the
training samples whose largest output is their label. This module computes it from the outputs of a trained network
(or from its predicted classes):

* :func:`accuracy` -- the fraction of all N samples predicted right (the accuracy panel of Figures 1-4);
* :func:`class_accuracy` -- the same fraction within each class, which under imbalance shows the minority classes
  lost first (minority collapse).

Chapter :ref:`ch-metrics` computes the accuracy at a closed-form minimizer; the training engine
(:meth:`nclib.engine.Engine.host_metrics`) records both at every metric epoch of a run, as ``history.csv``'s
``train_acc`` and ``class_accuracy.csv``: the records that the training chapters (:ref:`ch-engine`, :ref:`ch-train`,
:ref:`ch-sweeps`), the figure chapters :ref:`ch-fig1` to :ref:`ch-fig4` and :ref:`ch-minority` read. The accuracy of
the closed-form minimizers, whose samples are grouped by class and whose collapsed modes leave ties that need a
tolerance, is :func:`nclib.minority.minimizer_accuracy` and :func:`nclib.minority.grouped_class_accuracy`.

Labels are read as the metrics of :mod:`nclib.metrics` read them (integers, or floats with integer values), by the
same checks (:mod:`nclib._samples`); scores are finite real numbers, compared in float64. Torch tensors are read by
their values (detached, also where they require grad), and nested lists that numpy cannot read as one array are
refused naming the argument.
"""
from __future__ import annotations

import numpy as np

from . import _checks, _samples


def _predictions(outputs, labels, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(predicted classes, labels, K) of :func:`accuracy` and :func:`class_accuracy`, validated.

    K is the number of columns of N x K outputs, else ``num_classes``, else the largest label + 1. Labels are
    integers or integer-valued floats, as every metric of :mod:`nclib.metrics` reads them
    (:func:`nclib._samples.class_indices`); N predictions must be integers 0..K-1, and ``num_classes`` must equal the
    columns of N x K outputs (the arg-max of a row picks among those K classes, no more and no fewer)."""
    out = _checks.array(outputs, "outputs")
    if out.dtype == bool:
        raise ValueError("outputs must be N x K scores or N integer predictions, not booleans")
    if out.ndim == 2:
        if out.shape[0] == 0 or out.shape[1] == 0:
            raise ValueError(f"outputs must be N x K with N, K >= 1, got shape {out.shape}")
        out = _checks.matrix(outputs, "outputs")  # real and finite: an arg-max of complex or text scores means nothing
        pred = np.argmax(out, axis=1)
        K_out = out.shape[1]
    elif out.ndim == 1:
        if not np.issubdtype(out.dtype, np.integer):
            raise ValueError(f"outputs must be an N x K array of scores or N integer predictions, got dtype "
                             f"{out.dtype}")
        if _checks.mixes_bools(outputs):  # numpy reads [0, True, 1] as integers
            raise ValueError("outputs must be N x K scores or N integer predictions, not booleans")
        if out.size == 0:
            raise ValueError("outputs must hold at least one sample")
        if int(out.min()) < 0:
            raise ValueError(f"outputs must hold non-negative class predictions, got "
                             f"{_samples.shown_index(int(out.min()))}")
        pred = out
        K_out = None
    else:
        raise ValueError(f"outputs must be an N x K array of scores or N predictions, got shape {out.shape}")
    y = _checks.array(labels, "labels")
    if y.ndim != 1 or y.size != pred.size:
        raise ValueError(f"labels must be 1-D with one entry per row of outputs ({pred.size}), got shape {y.shape}")
    # the bools of a list show only in the list itself (numpy reads [0, True, 1] as integers): refused there
    y, lo, hi = _samples.class_indices(labels if _checks.mixes_bools(labels) else y, "labels")
    if lo < 0:
        raise ValueError(f"labels must hold non-negative integer class indices, got the value "
                         f"{_samples.shown_index(lo)}")
    if num_classes is not None:
        K = _checks.positive_int(num_classes, "num_classes")
        if K_out is not None and K != K_out:
            raise ValueError(f"num_classes must equal the number of columns of outputs ({K_out}), one score per "
                             f"class, got {K}")
        if hi >= K:
            raise ValueError(f"num_classes must exceed every label, got {K} with a label {_samples.shown_index(hi)}")
    elif K_out is not None:
        K = K_out
        if hi >= K:
            raise ValueError(f"labels must be < K={K} (the number of columns of outputs), got "
                             f"{_samples.shown_index(hi)}")
    else:
        K = hi + 1
    if K_out is None and int(pred.max()) >= K:
        source = "num_classes" if num_classes is not None else "the largest label + 1"
        raise ValueError(f"outputs must hold class predictions 0..K-1 with K={K} ({source}), got the value "
                         f"{_samples.shown_index(int(pred.max()))}")
    return pred.astype(np.int64), y.astype(np.int64), K


def accuracy(outputs, labels, num_classes: int | None = None) -> float:
    """Training accuracy: the fraction of samples whose prediction equals the label (Figures 1-4).

    outputs: N x K network outputs W_L...W_1 h + b (the predicted class is the arg-max of a row),
    or N predicted class indices 0..K-1. labels: N class indices (integers or integer-valued floats).
    K: the columns of outputs, else ``num_classes``, else the largest label + 1; a prediction or label outside
    0..K-1, or a ``num_classes`` other than the columns of N x K outputs, is refused by name. Chapter
    :ref:`ch-metrics`.
    """
    pred, y, _ = _predictions(outputs, labels, num_classes)
    return float(np.mean(pred == y))


def class_accuracy(outputs, labels, num_classes: int | None = None) -> np.ndarray:
    """The training accuracy of each class (Section 5's training accuracy of Figures 1-4, class by class): entry k
    is the fraction of class k's samples predicted as k.

    outputs: N x K network outputs, one row per sample (the prediction is the arg-max of a row), or N predicted
    class indices; labels: N class indices in any order, as in :func:`accuracy`.  ``num_classes`` (default: the
    columns of outputs, or the largest label + 1) sets the length; with N x K outputs it must be K (ValueError
    naming ``num_classes`` otherwise), and N predictions must lie below it; a class without samples gets NaN.  Ties:
    an exact tie for the largest output of a row goes to the lowest class index (NumPy's arg-max, as the accuracy of
    a trained network is read), with no tolerance.  :func:`nclib.minority.grouped_class_accuracy` is the form for
    the closed-form minimizers: K x N outputs of samples grouped by class (class counts for labels), outputs within
    1e-9 of the largest tied, and a tie counted as an error by default, since their collapsed modes leave exact
    ties.  Which classes a run misclassifies, under imbalance the minority ones first (minority collapse): the
    per-class record of ``nclib.train`` (``class_accuracy.csv``) and the figure chapters :ref:`ch-fig1` to
    :ref:`ch-fig4`.  With N predicted classes for outputs, K is at most N (ValueError naming ``num_classes``, or
    ``labels`` where K is the largest label + 1): N samples fill at most N of the K entries, and a K that no
    N x K outputs hold would be allocated here (K = 10**11 asked for 745 GiB); N x K scores give any K.
    """
    pred, y, K = _predictions(outputs, labels, num_classes)
    if K > y.size and _checks.array(outputs, "outputs").ndim == 1:  # K counters, K not held by N x K scores
        if num_classes is not None:
            raise ValueError(f"num_classes must be at most the number of samples N={y.size} with N predicted classes "
                             f"for outputs (N samples fill at most N classes; N x K scores give any K), got {K:,}")
        raise ValueError(f"labels must be below the number of samples N={y.size} with N predicted classes for outputs "
                         f"and no num_classes (K is the largest label + 1; N samples fill at most N classes, N x K "
                         f"scores give any K), got the value {K - 1:,}")
    counts = np.bincount(y, minlength=K).astype(np.float64)
    right = np.bincount(y[pred == y], minlength=K).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, right / np.maximum(counts, 1), np.nan)
