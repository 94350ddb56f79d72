"""Unit tests of nclib.imbalance's basics (Definition 4.1, Y, Y-bar); ch-setting uses them."""
import numpy as np
import pytest

import nclib.imbalance as imb


def test_class_counts_expands_groups_in_order():
    assert imb.class_counts([(500, 2), (100, 1)]).tolist() == [500, 500, 100]
    assert imb.class_counts(imb.PROFILES["emnist-letters"]).tolist() == [1500] + [600] * 5 + [50] * 20
    n = imb.class_counts(imb.PROFILES["cifar10"])
    assert n.dtype == np.int64 and n.sum() == 3000 and n.size == 10


@pytest.mark.parametrize(
    "groups, match",
    [
        ([], "at least one"),
        ([(5, 1), (5, 2)], "strictly decreasing"),
        ([(3, 1), (5, 2)], "strictly decreasing"),
        ([(0, 1)], "N_i must be a positive integer"),
        ([(-4, 1)], "N_i must be a positive integer"),
        ([(2.5, 1)], "N_i must be a positive integer"),
        ([(5, 0)], "l_i must be a positive integer"),
        ([(5, 1.0)], "l_i must be a positive integer"),
        ([(5, 1, 2)], "pair"),
        (5, "sequence"),
        ([(2 ** 64, 1)], "below 2\\*\\*53"),  # float64 holds every integer only below 2**53
        ([(2 ** 53, 1), (1, 1)], "below 2\\*\\*53"),
        ({(3, 1): 0}, "^groups"),  # iterating a mapping gives its keys only
        ({(3, 1), (2, 1)}, "^groups"),  # a set has no order of its own
        ([{3, 1}], "^groups\\[0\\]"),
        ([(3, 1), {2: 1}], "^groups\\[1\\]"),
    ],
)
def test_class_counts_rejects_bad_groups(groups, match):
    with pytest.raises(ValueError, match=match):
        imb.class_counts(groups)


def test_groups_of_inverts_class_counts_for_any_order():
    groups = [(9, 3), (4, 1), (2, 2)]
    n = imb.class_counts(groups)
    rng = np.random.default_rng(1)
    assert imb.groups_of(rng.permutation(n)) == groups


def test_label_matrix_is_one_hot_grouped_by_class():
    Y = imb.label_matrix([2, 1, 3])
    assert Y.shape == (3, 6)
    np.testing.assert_array_equal(Y.sum(axis=0), 1.0)
    np.testing.assert_array_equal(Y.sum(axis=1), [2, 1, 3])
    np.testing.assert_array_equal(Y.argmax(axis=0), [0, 0, 1, 2, 2, 2])


@pytest.mark.parametrize("n, match", [([], "non-empty"), ([3, 0], "positive"), ([3, -1], "positive"),
                                      ([2.5, 1], "integer"), ([[1, 2]], "1-D"), (np.array([True, True]), "integer")])
def test_count_vectors_are_validated(n, match):
    with pytest.raises(ValueError, match=match):
        imb.ybar(n)
    with pytest.raises(ValueError, match=match):
        imb.label_matrix(n)


def test_ybar_matches_its_definition_and_gram_identity():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = rng.integers(1, 50, size=int(rng.integers(1, 12)))
        N, K = n.sum(), n.size
        D = np.diag(np.sqrt(n))
        expected = (np.eye(K) - np.outer(n, np.ones(K)) / N) @ D
        np.testing.assert_allclose(imb.ybar(n), expected, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(imb.ybar(n) @ imb.ybar(n).T, np.diag(n) - np.outer(n, n) / N,
                                   rtol=0, atol=1e-12 * n.max())


def test_ybar_equals_centred_labels_weighted_by_class():
    # Y-bar D^{-1} has columns e_k - n/N: the centred one-hot labels of each class
    n = np.array([4, 2, 1])
    cols = imb.ybar(n) / np.sqrt(n)[None, :]
    np.testing.assert_allclose(cols, np.eye(3) - (n / n.sum())[:, None], atol=1e-15)


def test_class_labels_are_the_columns_of_the_label_matrix():
    n = [3, 1, 2]
    np.testing.assert_array_equal(imb.class_labels(n), [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(imb.label_matrix(n).argmax(axis=0), imb.class_labels(n))
    with pytest.raises(ValueError, match="positive"):
        imb.class_labels([2, 0])
    with pytest.raises(ValueError, match=r"^n sums to N = 9223372036854775813 samples, more than an array can index"):
        imb.class_labels([2 ** 62, 2 ** 62, 5])  # N = 2**63 + 5: every count fits in int64, their sum does not


def test_random_groups_are_valid_grouped_profiles():
    rng = np.random.default_rng(7)
    for _ in range(200):
        groups = imb.random_groups(rng, 50, 8, 30)
        n = imb.class_counts(groups)  # validates: strictly decreasing sizes, multiplicities >= 1
        assert 1 <= n.size <= 50 and 1 <= len(groups) <= 8 and n.max() <= 30
    assert sum(l for _, l in imb.random_groups(rng, 50, 8, 30, K=17)) == 17


def test_random_groups_refuses_bad_input_by_name():
    rng = np.random.default_rng(7)
    cases = [((0, 50, 8, 30), {}, "rng"),  # a seed, not a Generator
             ((np.random.RandomState(0), 50, 8, 30), {}, "rng"),  # the legacy generator
             ((rng, 0, 8, 30), {}, "K_max"), ((rng, 50, 0, 30), {}, "m_max"), ((rng, 50, 8, 0), {}, "N_max"),
             ((rng, 50, 8, 30), {"K": 0}, "K")]
    for args, kwargs, name in cases:
        with pytest.raises(ValueError, match=f"^{name} must"):
            imb.random_groups(*args, **kwargs)


def test_random_groups_draw_from_a_huge_range_without_forming_it():
    """N_max = 10**12 (a range of 8 TB as an array) and 2**53 - 1 give valid profiles with sizes in 1..N_max; for
    the N_max the book and the tests use, the profile is the one a choice from the range 1..N_max itself draws, so
    their seeds keep their profiles; N_max = 2**53, beyond the bound on a class size, is refused by name."""
    rng = np.random.default_rng(8)
    for N_max in (10**12, 2**53 - 1):
        for _ in range(20):
            groups = imb.random_groups(rng, 400, 40, N_max)
            assert imb.check_groups(groups) == groups and 1 <= groups[-1][0] and groups[0][0] <= N_max
    for seed in range(60):
        N_max = (30, 5000, 10**6)[seed % 3]
        ref = np.random.default_rng(seed)  # the draw as made from the range 1..N_max
        K = int(ref.integers(1, 401))
        m = int(ref.integers(1, min(K, 40, N_max) + 1))
        sizes = np.sort(ref.choice(np.arange(1, N_max + 1), size=m, replace=False))[::-1]
        mults = ref.multinomial(K - m, np.ones(m) / m) + 1
        assert imb.random_groups(np.random.default_rng(seed), 400, 40, N_max) == list(zip(sizes.tolist(), mults.tolist()))
    with pytest.raises(ValueError, match="^N_max must be below 2"):
        imb.random_groups(rng, 5, 3, 2**53)


def test_mode_blocks_groups_equal_singular_values_of_the_surviving_modes():
    blocks = imb.mode_blocks([5.0, 3.0, 3.0 + 1e-12, 2.0, 0.0], [True, True, True, True, False])
    assert [sorted(b.tolist()) for b in blocks] == [[0], [1, 2], [3]]
    assert [b.tolist() for b in imb.mode_blocks([2.0, 3.0, 3.0], [True, True, True])] == [[1, 2], [0]]  # any order
    assert [b.tolist() for b in imb.mode_blocks([3.0, 3.0 + 1e-6], [True, True], rtol=1e-6)] == [[1, 0]]
    assert len(imb.mode_blocks([3.0, 3.0 + 1e-6], [True, True])) == 2  # apart at the default BLOCK_RTOL
    assert imb.mode_blocks([1.0, 1.0], [False, False]) == []
    # "at most rtol * max(kappa)" includes the bound: equal kappas at rtol = 0, and a gap of exactly 0.25 * 4 = 1
    assert [b.tolist() for b in imb.mode_blocks([2.0, 2.0, 1.0], [True] * 3, rtol=0)] == [[0, 1], [2]]
    assert [b.tolist() for b in imb.mode_blocks([4.0, 3.0, 1.5], [True] * 3, rtol=0.25)] == [[0, 1], [2]]
    # the EMNIST letters profile: sqrt(600) four times and sqrt(50) nineteen times (Theorem 4.4)
    n = imb.class_counts(imb.PROFILES["emnist-letters"])
    kappa = np.linalg.svd(imb.ybar(n), compute_uv=False)
    sizes = sorted((round(kappa[b[0]] ** 2), b.size) for b in imb.mode_blocks(kappa, kappa > 1e-9) if b.size > 1)
    assert sizes == [(50, 19), (600, 4)]


def test_mode_blocks_refuses_bad_input_by_name():
    for kappa, alive, name in [([1.0, 2.0], [True], "alive"), ([np.nan, 1.0, 1.0], [True] * 3, "kappa"),
                               ([2.0, 1.0], ["no", ""], "alive"), ([2.0, 1.0], [0.3, 0.0], "alive"),
                               ([2.0, -1.0], [True, True], "kappa")]:
        with pytest.raises(ValueError, match=f"^{name}"):  # a NaN would split the equal pair and break the order
            imb.mode_blocks(kappa, alive)
    with pytest.raises(ValueError, match="^rtol"):
        imb.mode_blocks([1.0], [True], rtol=-1.0)


def test_small_classes_are_those_below_the_average_count():
    n1 = np.array([500, 500, 400, 400, 300, 300, 200, 200, 100, 100])  # the profiles of Figures 1 and 2
    n2 = np.array([1500] + [600] * 5 + [50] * 20)
    assert sorted(set(n1[imb.small_classes(n1)].tolist())) == [100, 200]
    assert n2[imb.small_classes(n2)].tolist() == [50] * 20
    assert imb.small_classes([7, 7, 7]).size == 0
    for bad in ([], [3, 0], None):
        with pytest.raises(ValueError, match="^n "):
            imb.small_classes(bad)


def test_small_classes_of_counts_near_2_to_the_63_are_exact():
    """n_k < N/K compared in exact integers: in int64, n_k K and N wrap around past 2**63 - 1 ([2**62, 1] gave both
    classes, the class of 2**62 among the small ones); checked against the average as an exact fraction."""
    from fractions import Fraction

    big = 2 ** 63 - 1
    assert imb.small_classes([2 ** 62, 1]).tolist() == [1]
    assert imb.small_classes([big, big - 1, 1]).tolist() == [2]
    assert imb.small_classes([big] * 3).size == 0
    rng = np.random.default_rng(5)
    for _ in range(20):
        n = rng.integers(1, 2 ** 63 - 1, size=int(rng.integers(1, 9)), dtype=np.int64).tolist()
        average = Fraction(sum(n), len(n))
        assert imb.small_classes(n).tolist() == [k for k, v in enumerate(n) if v < average]


def test_the_multiplicities_of_a_huge_total_are_scaled_by_an_even_power_of_two(monkeypatch):
    """A total N = sum N_i l_i of 961 bits is above the 2**960 that _pair_arrays forms unscaled, so the l_i are divided
    by 2**2, the even power of two that brings it there (2**1 would, but its square root is not exact).  Float64 holds
    such an N, so the group matrix and its singular values (Theorem 4.4) equal, bit for bit, those computed with the
    l_i unscaled (the bound raised past N).  With the l_i divided by 2**1, G_11 came out as -2**-52, not 2**-52."""
    groups = [(3, 3 * 2 ** 957 + 12345), (2, 5 ** 300 + 1), (1, 7)]
    assert sum(N * l for N, l in groups).bit_length() == 961
    scaled = [imb.group_matrix(groups), imb.group_singular_values(groups)]
    monkeypatch.setattr(imb, "_UNSCALED_BITS", 1000)
    unscaled = [imb.group_matrix(groups), imb.group_singular_values(groups)]
    for a, b in zip(scaled, unscaled):
        np.testing.assert_array_equal(a, b)
