"""The checks of nclib._samples, the samples that the collapse metrics and the training accuracy read: what each
returns, and the refusal naming the argument."""
import numpy as np
import pytest

from nclib import _samples


def test_features_are_read_in_float64_and_refused_by_the_name_given():
    X32 = np.array([[0.1, -2.0], [3.5, 4.0]], dtype=np.float32)
    X = _samples.features(X32)
    assert X.dtype == np.float64 and np.array_equal(X, X32.astype(np.float64))
    X64 = np.arange(6.0).reshape(3, 2)
    assert _samples.features(X64) is X64  # float64 already: no copy
    assert _samples.features([[1, 2], [3, 4]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    for bad in ([[True, 2.0]], np.ones((2, 2), dtype=bool), [["a", "b"]], np.ones((2, 2), dtype=complex),
                np.ones(3), np.ones((0, 2)), np.ones((2, 0)), [[1.0, np.nan]], [[np.inf, 1.0]], [[0.0], [1.0, 2.0]]):
        with pytest.raises(ValueError, match=r"^H_train "):
            _samples.features(bad, "H_train")


def test_class_indices_give_the_range_as_stored_and_refuse_what_is_no_index():
    arr, lo, hi = _samples.class_indices([2.0, 0.0, 1.0])
    assert arr.tolist() == [2.0, 0.0, 1.0] and (lo, hi) == (0, 2)
    top = np.array([0, 2**64 - 1], dtype=np.uint64)
    assert _samples.class_indices(top)[1:] == (0, 2**64 - 1)  # exact, not its int64 wrap-around
    assert _samples.class_indices(np.array([-3, 5], dtype=np.int8))[1:] == (-3, 5)  # the range is the caller's
    for bad in ([[0, 1]], [], [0, True, 1], np.array([True, False]), [0.5, 1.0], [0.0, np.nan], [np.inf],
                ["0", "1"], [0, [1], 2]):
        with pytest.raises(ValueError, match=r"^y_train "):
            _samples.class_indices(bad, "y_train")


def test_shown_index_quotes_an_index_in_full_up_to_20_digits():
    assert _samples.shown_index(2**64 - 1) == str(2**64 - 1)
    assert _samples.shown_index(np.int64(-(2**63))) == str(-(2**63))
    assert _samples.shown_index(10**19 * 9) == str(10**19 * 9)
    assert float(_samples.shown_index(10**25)) == 1e25 and len(_samples.shown_index(10**25)) < 26
    for bad in (3.0, True, "3", None):
        with pytest.raises(ValueError, match=r"^value "):
            _samples.shown_index(bad)


def test_labels_give_int64_labels_and_the_class_counts():
    y, n = _samples.labels([2, 0, 0, 1, 0.0], 5)
    assert y.dtype == np.int64 and y.tolist() == [2, 0, 0, 1, 0]
    assert n.dtype == np.int64 and n.tolist() == [3, 1, 1]
    assert _samples.labels(np.array([1, 0, 1], dtype=np.uint64), 3, num_classes=2)[1].tolist() == [1, 2]


@pytest.mark.parametrize("labels, N, num_classes, name", [
    ([0, 1], 3, None, "y"),  # not one per sample
    ([0, -1, 1], 3, None, "y"),  # negative
    ([0, 1, 3], 3, None, "y"),  # a label >= N: a class would lack a sample
    ([0, 1, 1], 3, 4, "num_classes"),  # more classes than samples
    ([0, 2, 1], 3, 2, "y"),  # a label >= num_classes
    ([0, 2, 2], 3, None, "y"),  # class 1 has no sample
    ([0, 0, 0], 3, 2, "y"),  # class 1 of num_classes has no sample
    ([0, 0.5, 1], 3, None, "y"),  # what class_indices refuses
    ([0, 1, 1], 3, 0, "num_classes"),
    ([0, 1, 1], 3.0, None, "N"),
    ([0, 1, 1], 0, None, "N"),
])
def test_labels_are_refused_by_name(labels, N, num_classes, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        _samples.labels(labels, N, num_classes, name="y")


def test_labels_of_a_head_name_its_last_layer():
    with pytest.raises(ValueError, match=r"^Ws\[-1\] \(W_L\) has K=4 rows"):
        _samples.labels([0, 1, 2], 3, num_classes=4, head=True)
    with pytest.raises(ValueError, match=r"^labels must hold class indices 0..K-1 with K=2, the number of rows of Ws"):
        _samples.labels([0, 1, 2], 3, num_classes=2, head=True)


def test_means_average_the_rows_of_each_class():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0], [7.0, -1.0]])
    y = np.array([0, 1, 0, 0])
    np.testing.assert_array_equal(_samples.means(X, y, 2), [[13 / 3, 10 / 3], [3.0, 4.0]])
    y_any = np.array([1, 0, 2, 1], dtype=np.int32)  # any integer dtype
    np.testing.assert_array_equal(_samples.means(X, y_any, 3), [[3.0, 4.0], [4.0, 0.5], [5.0, 9.0]])


@pytest.mark.parametrize("X, y, K, name", [
    ([[1.0], [2.0]], np.array([0, 1]), 2, "X"),  # a list: the checked features are an array
    (np.ones(2), np.array([0, 1]), 2, "X"),
    (np.ones((2, 1), dtype=bool), np.array([0, 1]), 2, "X"),
    (np.ones((2, 1)), [0, 1], 2, "y"),
    (np.ones((2, 1)), np.array([0.0, 1.0]), 2, "y"),
    (np.ones((2, 1)), np.array([0, 1, 1]), 2, "y"),
    (np.ones((2, 1)), np.array([0, 2]), 2, "y"),
    (np.ones((2, 1)), np.array([-1, 1]), 2, "y"),
    (np.ones((2, 1)), np.array([0, 0]), 2, "y"),  # class 1 has no sample: its mean is 0/0
    (np.ones((2, 1)), np.array([0, 1]), 0, "K"),
    (np.ones((2, 1)), np.array([0, 1]), 2.0, "K"),
])
def test_means_are_refused_by_name(X, y, K, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        _samples.means(X, y, K)


def test_peak_exponent_and_unit_peak_put_the_largest_entry_in_half_to_one_exactly():
    X = np.array([[3.0, -5.0], [0.25, 0.0]])
    assert _samples.peak_exponent(X) == 3  # 5 = 0.625 * 2^3
    np.testing.assert_array_equal(_samples.unit_peak(X), [[0.375, -0.625], [0.03125, 0.0]])
    for peak, e in ((np.finfo(np.float64).max, 1024), (5e-324, -1073), (0.5, 0), (1.0, 1)):
        assert _samples.peak_exponent(np.array([-peak, peak / 2])) == e
        assert 0.5 <= np.max(np.abs(_samples.unit_peak(np.array([peak])))) < 1
    assert _samples.peak_exponent(np.zeros((2, 3))) == 0 and _samples.peak_exponent(np.zeros(0)) == 0
    np.testing.assert_array_equal(_samples.unit_peak(np.zeros(3)), np.zeros(3))
    ints = _samples.unit_peak(np.array([6, -2]))  # integers are rescaled as floats
    assert ints.dtype == np.float64 and ints.tolist() == [0.75, -0.25]
    rng = np.random.default_rng(3)
    Y = rng.standard_normal((4, 5)) * 1e200
    np.testing.assert_array_equal(np.ldexp(_samples.unit_peak(Y), _samples.peak_exponent(Y)), Y)  # exact


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, np.array([True]), np.array([1 + 1j]), np.array(["a"]),
                                 np.array([1.0, np.nan]), np.array([np.inf]), np.array([[1.0, -np.inf]])])
def test_peak_exponent_and_unit_peak_refuse_other_than_finite_real_arrays_as_x(bad):
    for func in (_samples.peak_exponent, _samples.unit_peak):
        with pytest.raises(ValueError, match=r"^X must be "):
            func(bad)
