"""Unit tests of nclib.accuracy, the training accuracy overall and class by class (chapter ch-metrics)."""
from __future__ import annotations

import numpy as np
import pytest

import nclib.accuracy as acc
import nclib.imbalance as imb
import nclib.ufm as ufm

CIFAR = [500, 500, 400, 400, 300, 300, 200, 200, 100, 100]


def test_accuracy_by_hand():
    out = np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.5], [0.1, 0.3]])
    assert acc.accuracy(out, np.array([0, 1, 1, 1])) == 0.75
    assert acc.accuracy(np.array([1, 0, 1]), np.array([1, 1, 1])) == pytest.approx(2 / 3, rel=1e-15, abs=0)


def test_minimizer_outputs_classify_surviving_classes():
    n = CIFAR
    mz = ufm.global_minimizer(n, 1e-3, 1e-3, L=3, bias=True, d=12)
    P = mz.Ws[2] @ mz.Ws[1] @ mz.Ws[0]
    outputs = (P @ mz.H + mz.b[:, None]).T
    assert acc.accuracy(outputs, imb.class_labels(n)) == 1.0


def test_class_accuracy_by_hand():
    # 3 classes; class 0: 2 of 3 right, class 1: 1 of 1, class 2: 0 of 2; class 3 has no sample
    y = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(acc.class_accuracy(pred, y), [2 / 3, 1.0, 0.0])
    got = acc.class_accuracy(pred, y, num_classes=4)
    np.testing.assert_array_equal(got[:3], [2 / 3, 1.0, 0.0])
    assert np.isnan(got[3])
    scores = np.eye(4)[pred]  # N x K scores whose arg-max is pred
    np.testing.assert_array_equal(acc.class_accuracy(scores, y), got)
    # the overall accuracy is the count-weighted mean of the per-class ones
    counts = np.bincount(y, minlength=3)
    assert acc.accuracy(pred, y) == pytest.approx(np.sum(counts * got[:3]) / counts.sum(), rel=1e-15, abs=0)
    with pytest.raises(ValueError, match="^num_classes"):
        acc.class_accuracy(pred, y, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        acc.class_accuracy(pred, y, num_classes=0)
    with pytest.raises(ValueError, match="^labels"):
        acc.class_accuracy(pred, y[:3])


def test_an_exact_tie_goes_to_the_lowest_class_index():
    """A row whose largest score is shared predicts the first of the tied classes (NumPy's arg-max), with no
    tolerance: the tie of classes 0 and 1 is right for a sample of class 0 and wrong for one of class 1."""
    tied = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    y = np.array([0, 1])
    assert acc.accuracy(tied, y) == 0.5
    np.testing.assert_array_equal(acc.class_accuracy(tied, y), [1.0, 0.0, np.nan])
    # ties of classes 1 and 2 go to 1, a three-way tie to 0, and a score 1e-12 above the others wins
    rows = np.array([[0.0, 2.0, 2.0], [3.0, 3.0, 3.0], [3.0, 3.0, 3.0 + 1e-12]])
    labels = np.array([1, 0, 2])
    assert acc.accuracy(rows, labels) == 1.0
    np.testing.assert_array_equal(acc.class_accuracy(rows, labels), [1.0, 1.0, 1.0])
    assert acc.accuracy(rows, np.array([2, 1, 2])) == pytest.approx(1 / 3, rel=1e-15, abs=0)
    np.testing.assert_array_equal(acc.class_accuracy(rows, np.array([2, 1, 2])), [np.nan, 0.0, 0.5])


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------

def test_bad_input_raises_value_error_naming_the_argument():
    y = imb.class_labels([4, 3, 2])
    with pytest.raises(ValueError, match="labels"):
        acc.accuracy(np.ones((9, 3)), y[:-1])
    with pytest.raises(ValueError, match="^outputs"):  # -1 is no class, not a miss
        acc.accuracy(np.array([-1, 0, 1]), np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="^outputs"):  # booleans are not scores
        acc.accuracy(np.eye(3, dtype=bool), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="^outputs"):  # one float per sample is neither scores nor classes
        acc.accuracy(np.array([0.2, 0.9, 0.7]), [0, 1, 1])
    for call in (acc.accuracy, acc.class_accuracy):  # no sample: no fraction to take
        with pytest.raises(ValueError, match="^outputs"):
            call(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
        with pytest.raises(ValueError, match="^outputs"):
            call(np.zeros((0, 3)), np.array([], dtype=np.int64))


def test_predictions_and_num_classes_are_checked_against_the_classes():
    """A prediction outside 0..K-1 is no class, and num_classes must agree with the columns of N x K scores: both are
    refused by name rather than read as a miss or a shorter list."""
    y = np.array([0, 0, 1, 2, 2])
    rng = np.random.default_rng(28)
    scores5 = rng.standard_normal((5, 5))
    for call in (acc.accuracy, acc.class_accuracy):
        with pytest.raises(ValueError, match="^num_classes"):
            call(scores5, y, num_classes=3)  # five scores per row, three classes
        with pytest.raises(ValueError, match="^num_classes"):
            call(scores5[:, :3], y, num_classes=4)
        with pytest.raises(ValueError, match="^outputs"):
            call(y + 5, y)  # predictions 5..7 with labels 0..2
        with pytest.raises(ValueError, match="^outputs"):
            call(np.array([0, 0, 1, 2, 4]), y, num_classes=4)
    np.testing.assert_array_equal(acc.class_accuracy(scores5[:, :3], y, num_classes=3),
                                  acc.class_accuracy(scores5[:, :3], y))
    # a class without samples may still be predicted when num_classes says it exists
    assert acc.accuracy(np.array([0, 0, 1, 2, 3]), y, num_classes=4) == 0.8
    np.testing.assert_array_equal(acc.class_accuracy(np.array([0, 0, 1, 2, 3]), y, num_classes=4)[:3], [1.0, 1.0, 0.5])


def test_a_label_outside_the_score_columns_is_refused_by_name():
    """With N x K scores the classes are 0..K-1: a label of K (one past the last column) or of -1 names no class the
    arg-max can pick, and is refused naming labels rather than read as a miss (accuracy) or as an extra class
    (class_accuracy). One label less than K, and 0, are read."""
    scores = np.eye(3)  # predictions 0, 1, 2
    for call in (acc.accuracy, acc.class_accuracy):
        for bad in ([0, 1, 3], [-1, 1, 2]):
            with pytest.raises(ValueError, match="^labels"):
                call(scores, np.array(bad))
    assert acc.accuracy(scores, np.array([0, 1, 1])) == pytest.approx(2 / 3, rel=1e-15, abs=0)
    np.testing.assert_array_equal(acc.class_accuracy(scores, np.array([0, 1, 1])), [1.0, 0.5, np.nan])

def test_class_accuracy_of_predicted_classes_has_at_most_n_classes():
    """With N predicted classes for outputs, K (num_classes, else the largest label + 1) is at most N: N samples fill
    at most N of the K entries, and K = 10**11 would be K counters allocated (745 GiB); refused by name before that.
    N x K scores, which hold K already, give any K."""
    one = np.array([0])
    with pytest.raises(ValueError, match="^labels must be below the number of samples N=1"):
        acc.class_accuracy(one, [10**11])
    with pytest.raises(ValueError, match="^num_classes must be at most the number of samples N=1"):
        acc.class_accuracy(one, [0], num_classes=10**11)
    with pytest.raises(ValueError, match="^num_classes must be at most the number of samples N=2"):
        acc.class_accuracy(np.array([0, 1]), [0, 1], num_classes=3)
    # K = N is kept, a class without samples NaN; N x K scores of K = 3 > N = 2 too
    np.testing.assert_array_equal(acc.class_accuracy(np.array([0, 0]), [0, 0], num_classes=2), [1.0, np.nan])
    np.testing.assert_array_equal(acc.class_accuracy(np.array([1, 0]), [0, 1]), [0.0, 0.0])
    np.testing.assert_array_equal(acc.class_accuracy(np.eye(3)[[0, 2]], [0, 1]), [1.0, 0.0, np.nan])
    assert acc.accuracy(one, [0], num_classes=10**11) == 1.0  # no K counters: the overall fraction only

def test_labels_are_read_as_every_metric_reads_them():
    """Class indices are integers or integer-valued floats, as in nclib.metrics (and nclib.datafiles.check_labels),
    and an out-of-range value is reported as stored."""
    y = np.array([0, 0, 1, 2, 2])
    pred = np.array([0, 1, 1, 2, 0])
    y_float = y.astype(np.float64)
    assert acc.accuracy(pred, y_float) == acc.accuracy(pred, y) == 0.6
    np.testing.assert_array_equal(acc.class_accuracy(pred, y_float), acc.class_accuracy(pred, y))
    for bad in (y + 0.5, y.astype(bool), np.where(y == 2, np.nan, y_float)):
        for call in (lambda lab: acc.accuracy(pred, lab), lambda lab: acc.class_accuracy(pred, lab)):
            with pytest.raises(ValueError, match="^labels"):
                call(bad)
    stray = np.array([0, 2**64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match=f"^labels .*got {2**64 - 1}$"):
        acc.accuracy(np.eye(2), stray)


def test_text_bools_and_complex_numbers_are_refused_by_name():
    """numpy would read these silently: a complex arg-max by its real part first, text as numbers; each is refused
    naming the argument."""
    y = imb.class_labels([2, 1])
    cases = [
        (lambda: acc.accuracy(np.ones((3, 2)) * (1 + 1j), y), "outputs"),
        (lambda: acc.accuracy(np.array([["a", "b"]] * 3), y), "outputs"),
        # a list mixing bools with numbers, which numpy reads as numbers
        (lambda: acc.accuracy(np.eye(3), [0, True, 1]), "labels"),
        (lambda: acc.class_accuracy([0, 1, 1], [0, np.True_, 1]), "labels"),
        (lambda: acc.accuracy([0, True, 1], [0, 1, 1]), "outputs"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=f"^{name} must"):
            call()


def test_tensors_that_require_grad_are_read_and_ragged_labels_refused_by_name():
    """A torch tensor is read by its values (detached), also one that requires grad, which numpy refuses with torch's
    RuntimeError; labels numpy cannot read as one array are refused naming ``labels``, not with numpy's message."""
    torch = pytest.importorskip("torch")
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 0, 2, 2, 2, 1])
    scores = torch.eye(3, dtype=torch.float64, requires_grad=True)[torch.as_tensor(pred)]  # arg-max pred, with grad
    assert scores.requires_grad
    assert acc.accuracy(scores, torch.as_tensor(y)) == acc.accuracy(pred, y) == pytest.approx(4 / 6, rel=1e-15, abs=0)
    np.testing.assert_array_equal(acc.class_accuracy(scores, torch.as_tensor(y)), [1.0, 0.0, 2 / 3])
    for call in (acc.accuracy, acc.class_accuracy):
        with pytest.raises(ValueError, match="^labels"):
            call(pred, [0, 0, 1, [1], 2, 2])
        with pytest.raises(ValueError, match="^labels"):
            call(np.eye(3)[pred], [0, 0, 1, [1], 2, 2])
        with pytest.raises(ValueError, match="^outputs"):
            call([[1.0, 0.0], [0.0]], [0, 1])
