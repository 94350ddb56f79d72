"""Unit tests of the theorems' own quantities in nclib.ufm, evaluated at a point: the soft-threshold relations of
Theorems 4.1 and 4.2 (chapters ch-thm41, ch-thm42)."""
import numpy as np
import pytest

import nclib.ufm as ufm
from nclib.imbalance import ybar


# ------------------------------------------------------------------ the relations of Theorems 4.1 and 4.2

@pytest.mark.parametrize("n, lam, bias", [([5, 3, 2], 0.03, True), ([6, 6, 6, 2, 1], 0.02, True),
                                          ([5, 3, 2], 0.03, False), ([4, 4, 1], 0.05, False)])
def test_soft_threshold_relations_hold_at_the_global_minimizer(n, lam, bias):
    g = ufm.global_minimizer(n, lam, 2 * lam, L=1, bias=bias, d=len(n) + 1)
    assert ufm.soft_threshold_relations_error(g.Ws[0], g.H, n, lam, 2 * lam, bias) < 1e-13
    assert ufm.soft_threshold_relations_error(g.Ws[0], g.H, n, [lam], 2 * lam, bias) < 1e-13  # L = 1 decays as a list


@pytest.mark.parametrize("bias", [True, False])
def test_soft_threshold_relations_error_is_the_largest_entry_error(bias):
    n, lam_W, lam_H = np.array([7, 4, 2]), 0.01, 0.04
    N = n.sum()
    # the soft threshold T, from the spectrum of M computed here: singular values of Y-bar, or sqrt(n) without a bias
    kappa = np.linalg.svd(ybar(n), compute_uv=False) if bias else np.sort(np.sqrt(n))[::-1]
    top = max(kappa[0] - N * np.sqrt(lam_W * lam_H), 0.0)
    assert top > 0.5
    ratio = np.sqrt(lam_H / lam_W)  # 2: the relation on W W^T carries the larger weight
    # at W = 0, H = 0 every left-hand side is 0: the error is the largest right-hand side
    zero = ufm.soft_threshold_relations_error(np.zeros((3, 4)), np.zeros((4, N)), n, lam_W, lam_H, bias)
    assert zero == pytest.approx(ratio * top, rel=1e-13)
    # W twice and H half the global minimizer's: W E holds, W W^T is four times its value, E^T E a quarter
    g = ufm.global_minimizer(n, lam_W, lam_H, L=1, bias=bias)
    off = ufm.soft_threshold_relations_error(2 * g.Ws[0], g.H / 2, n, lam_W, lam_H, bias)
    assert off == pytest.approx(3 * ratio * top, rel=1e-12)


@pytest.mark.parametrize("args, name", [
    (dict(W=np.zeros((4, 3))), "W"),
    (dict(H=np.zeros((3, 9))), "H"),
    (dict(H=np.zeros((2, 10))), "H"),
    (dict(lam_W=0.0), "lam_W"),
    (dict(lam_W=[0.01, 0.01]), "lam_W"),
    (dict(lam_H=-1.0), "lam_H"),
    (dict(bias=1), "bias"),
    (dict(n=[5, 0, 5]), "n"),
])
def test_soft_threshold_relations_error_refuses_bad_input_by_name(args, name):
    call = dict(W=np.zeros((3, 3)), H=np.zeros((3, 10)), n=[5, 3, 2], lam_W=0.01, lam_H=0.01, bias=True)
    call.update(args)
    with pytest.raises(ValueError, match=f"^{name}"):
        ufm.soft_threshold_relations_error(**call)
