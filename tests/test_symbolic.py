"""Unit tests of nclib.symbolic: the spectrum derivations (Theorem 4.4, Theorems B.1, B.2; ch-spectrum) and Y-bar
with symbolic counts (ch-setting, ch-thm42)."""
import numpy as np
import pytest
import sympy as sp

import nclib.imbalance as imb
import nclib.symbolic as sym


def _subs(m, groups):
    mu, sizes, mults = sym.group_symbols(m)
    return mu, {**{s: N for s, (N, _) in zip(sizes, groups)}, **{l: li for l, (_, li) in zip(mults, groups)}}


def test_symbols_have_the_documented_names():
    mu, sizes, mults = sym.group_symbols(3)
    assert mu.name == "mu" and [s.name for s in sizes] == ["N1", "N2", "N3"]
    assert [l.name for l in mults] == ["l1", "l2", "l3"]
    assert sym.charpoly_GGt(3).free_symbols == {mu, *sizes, *mults}
    # plain symbols: a Symbol made elsewhere by name is the same symbol
    values = {sp.Symbol("mu"): 7, sp.Symbol("N1"): 5, sp.Symbol("N2"): 2, sp.Symbol("l1"): 1, sp.Symbol("l2"): 3}
    assert sym.charpoly_GGt(2).subs(values) == sp.Rational(7 * (7 * 11 - 5 * 2 * 4), 11)


def test_charpoly_m2_is_mu_times_mu_minus_N1N2_l1_plus_l2_over_N():
    mu, (N1, N2), (l1, l2) = sym.group_symbols(2)
    N = N1 * l1 + N2 * l2
    assert sp.simplify(sym.charpoly_GGt(2) - mu * (mu - N1 * N2 * (l1 + l2) / N)) == 0


def test_charpoly_m3_has_the_quadratic_factor_with_a_and_b():
    mu, (N1, N2, N3), (l1, l2, l3) = sym.group_symbols(3)
    N = N1 * l1 + N2 * l2 + N3 * l3
    a = (N1 * (N2 * l2 + N3 * l3) + N2 * (N1 * l1 + N3 * l3) + N3 * (N1 * l1 + N2 * l2)) / N
    b = N1 * N2 * N3 * (l1 + l2 + l3) / N
    assert sp.simplify(sym.charpoly_GGt(3) - mu * (mu**2 - a * mu + b)) == 0
    # and a wrong b (without the factor K = l1 + l2 + l3) is detected
    assert sp.simplify(sym.charpoly_GGt(3) - mu * (mu**2 - a * mu + N1 * N2 * N3 / N)) != 0


@pytest.mark.parametrize("m", [2, 3])
def test_the_charpoly_is_rational_while_G_G_transpose_keeps_square_roots(m):
    _, sizes, mults = sym.group_symbols(m)
    G = sym.group_matrix_symbolic(m)
    N = sym.total_count(sizes, mults)
    GGt = (G * G.T).applyfunc(sp.simplify)
    assert sp.simplify(GGt[0, 1] + sizes[0] * sizes[1] * sp.sqrt(mults[0]) * sp.sqrt(mults[1]) / N) == 0
    assert sp.simplify(sym.charpoly_GGt(m)).is_rational_function(sp.Symbol("mu"), *sizes, *mults)


@pytest.mark.parametrize("m", [1, 2, 3])
def test_charpoly_equals_the_secular_form(m):
    assert sp.simplify(sym.charpoly_GGt(m) - sym.secular_charpoly(m)) == 0


@pytest.mark.parametrize("groups", [[(9, 2), (4, 1)], [(7, 2), (4, 3), (2, 1)], [(1500, 1), (600, 5), (50, 20)]])
def test_symbolic_objects_evaluate_to_the_numeric_ones(groups):
    m = len(groups)
    mu, subs = _subs(m, groups)
    G = np.array(sym.group_matrix_symbolic(m).subs(subs).evalf(30), dtype=float)
    np.testing.assert_allclose(G, imb.group_matrix(groups), rtol=1e-13, atol=1e-13)
    coeffs = sp.Poly(sp.together(sym.charpoly_GGt(m).subs(subs)), mu).all_coeffs()
    got = np.array([float(c) for c in coeffs])
    want = np.poly(np.linalg.eigvalsh(G @ G.T))
    # the mu^(m-k) coefficient is a sum of products of k eigenvalues (each at most max N): an absolute tolerance
    # of 1e-12 max(N)^k per coefficient on top of the relative one (the constant term is 0: a root mu = 0)
    top = max(N for N, _ in groups)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == pytest.approx(w, rel=1e-12, abs=1e-12 * top ** k), (k, g, w)


def test_ybar_grouped_symbolic_matches_ybar_and_its_gram():
    Yb, sizes = sym.ybar_grouped_symbolic([2, 1, 3])
    subs = {sizes[0]: 9, sizes[1]: 4, sizes[2]: 2}
    n = imb.class_counts([(9, 2), (4, 1), (2, 3)])
    np.testing.assert_allclose(np.array(Yb.subs(subs).evalf(30), dtype=float), imb.ybar(n), rtol=1e-13, atol=1e-13)
    nvec = sp.Matrix([s for s, l in zip(sizes, [2, 1, 3]) for _ in range(l)])
    N = sum(nvec)
    assert sp.simplify(Yb * Yb.T - (sp.diag(*nvec) - nvec * nvec.T / N)) == sp.zeros(6, 6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_bad_m_raises(bad):
    for func in (sym.group_symbols, sym.group_matrix_symbolic, sym.charpoly_GGt, sym.secular_charpoly):
        with pytest.raises(ValueError, match="^m "):
            func(bad)


@pytest.mark.parametrize("bad, match", [([], "mults"), ([2, 0], r"mults\[1\]"), ([1.5], r"mults\[0\]"),
                                        (2, "mults must be a sequence"), ("12", "mults must be a sequence"),
                                        ({1: 2}, "^mults must be a sequence .* not a dict"),
                                        ({2, 1}, "^mults must be a sequence .* not a set"),
                                        (frozenset({3}), "^mults must be a sequence .* not a frozenset")])
def test_bad_mults_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        sym.ybar_grouped_symbolic(bad)


def test_total_count_checks_lengths():
    _, sizes, mults = sym.group_symbols(2)
    assert sym.total_count(sizes, mults) == sizes[0] * mults[0] + sizes[1] * mults[1]
    with pytest.raises(ValueError, match="sizes and mults"):
        sym.total_count(sizes, mults[:1])
    with pytest.raises(ValueError, match="sizes and mults"):
        sym.total_count([], [])


def test_total_count_takes_numbers_and_expressions():
    _, sizes, mults = sym.group_symbols(2)
    got = sym.total_count([3, np.float64(2.5), sizes[0]], [mults[0], np.int64(2), sp.Rational(1, 2)])
    assert sp.simplify(got - (3 * mults[0] + 5 + sizes[0] / 2)) == 0
    # numbers as nclib reads them elsewhere (a 0-d array), and an integer beyond float64's range, kept exact
    assert sym.total_count([np.array(2), 10 ** 400], [3, 1]) == 10 ** 400 + 6


@pytest.mark.parametrize("sizes, mults, match", [
    ("ab", "cd", "^sizes must be a sequence"), (3, [1], "^sizes must be a sequence"),
    ([1, 2], None, "^mults must be a sequence"), (["a", "b"], [1, 2], r"^sizes\[0\]"),
    ([1, 2], [3, "x"], r"^mults\[1\]"), ([True], [1], r"^sizes\[0\]"), ([1], [np.bool_(True)], r"^mults\[0\]"),
    ([float("nan")], [1], r"^sizes\[0\]"), ([1], [sp.oo], r"^mults\[0\]"), ([sp.nan], [1], r"^sizes\[0\]"),
    ([1j], [1], r"^sizes\[0\]"), ([sp.Matrix([1])], [1], r"^sizes\[0\]"), ([np.array([1.0])], [1], r"^sizes\[0\]"),
    ([1], [float("inf")], r"^mults\[0\]"), ({3: 1}, [1], "^sizes must be a sequence .* not a dict"),
    ([1, 2], {1, 2}, "^mults must be a sequence .* not a set")])
def test_total_count_refuses_entries_that_are_not_numbers_or_expressions(sizes, mults, match):
    with pytest.raises(ValueError, match=match):
        sym.total_count(sizes, mults)


# ------------------------------------------------------------------ Y-bar with symbolic counts (ch-setting)

def test_ybar_symbolic_is_ybar_at_numbers_and_kills_sqrt_n():
    Yb, n = sym.ybar_symbolic(4)
    assert Yb.shape == (4, 4) and [v.name for v in n] == ["n1", "n2", "n3", "n4"] and all(v.is_positive for v in n)
    counts = [7, 3, 3, 1]
    at = np.array(Yb.subs(dict(zip(n, counts))).evalf(30), dtype=float)
    np.testing.assert_allclose(at, imb.ybar(counts), rtol=1e-14, atol=1e-14)
    assert (Yb * sp.Matrix([sp.sqrt(v) for v in n])).applyfunc(sp.simplify) == sp.zeros(4, 1)
    N = sum(n)
    assert sp.simplify(Yb * Yb.T - (sp.diag(*n) - sp.Matrix(n) * sp.Matrix(n).T / N)) == sp.zeros(4, 4)
    Y1, n1 = sym.ybar_symbolic(1)  # one class: the centring leaves nothing
    assert Y1 == sp.zeros(1, 1) and len(n1) == 1


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "3", None])
def test_ybar_symbolic_refuses_a_class_count_that_is_not_a_positive_integer(bad):
    with pytest.raises(ValueError, match="^K must be a positive integer"):
        sym.ybar_symbolic(bad)
