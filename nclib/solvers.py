"""An independent numerical minimizer of the (L-extended) unconstrained feature model.

Minimizes the full objective of Definition 3.1 / (4.1)-(4.3) (every column of H a free variable,
no class-mean reduction, no SVD of Y-bar, no closed form) with L-BFGS-B and an analytic gradient,
from several random starts of different scales, and keeps the best run. It is the reference the
closed forms of :mod:`nclib.ufm` are checked against in :ref:`ch-thm41`, :ref:`ch-thm42` and
:ref:`ch-thm43`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.sparse import linalg as splinalg

from . import _checks, ufm
from .imbalance import label_matrix
from .ufm import Minimizer, check_problem, objective, objective_and_gradients


@dataclass(frozen=True)
class SolverResult(Minimizer):
    """A :class:`nclib.ufm.Minimizer` found numerically, with the values of every start
    (``run_values``), their start scales (``run_scales``) and the best run's gradient norm."""

    run_values: tuple = field(default=())
    run_scales: tuple = field(default=())
    grad_norm: float = float("nan")


class _Problem:
    """Objective and analytic gradient of (4.3) on a flat parameter vector [W_1, ..., W_L, H, b]."""

    def __init__(self, n, lam, lam_H, L, bias, d):
        self.Y = label_matrix(n)
        self.K, self.N = self.Y.shape
        self.lam, self.lam_H, self.L, self.bias, self.d = lam, lam_H, L, bias, d
        self.shapes = [(d, d)] * (L - 1) + [(self.K, d), (d, self.N)]
        if bias:
            self.shapes.append((self.K, 1))
        self.sizes = [r * c for r, c in self.shapes]
        self.size = int(sum(self.sizes))

    def scaled(self, t):
        """The same problem with every decay multiplied by t (for the continuation in the decays)."""
        other = object.__new__(_Problem)
        other.__dict__.update(self.__dict__)
        other.lam, other.lam_H = self.lam * t, self.lam_H * t
        return other

    def unpack(self, x):
        out, i = [], 0
        for (r, c), s in zip(self.shapes, self.sizes):
            out.append(x[i:i + s].reshape(r, c))
            i += s
        Ws = out[:self.L]
        H = out[self.L]
        b = out[self.L + 1][:, 0] if self.bias else None
        return Ws, H, b

    def value_and_grad(self, x):
        Ws, H, b = self.unpack(x)
        f, dWs, dH, db = objective_and_gradients(Ws, H, b, self.Y, self.lam, self.lam_H)
        parts = [g.ravel() for g in dWs] + [dH.ravel()] + ([db] if b is not None else [])
        return f, np.concatenate(parts)


def _newton_polish(prob, x, steps=8, eps=1e-6):
    """Newton steps on the gradient norm (MINRES on finite-difference Hessian-vector products of the
    analytic gradient; the Hessian is singular along the rotation symmetries, which MINRES handles).
    A step, possibly halved, is kept only when it lowers the gradient norm."""
    f, g = prob.value_and_grad(x)
    gn = np.linalg.norm(g)
    for _ in range(steps):
        if gn < 1e-14:
            break

        def hv(v, x=x):
            nv = np.linalg.norm(v)
            if nv == 0:
                return np.zeros_like(v)
            h = eps / nv
            return (prob.value_and_grad(x + h * v)[1] - prob.value_and_grad(x - h * v)[1]) / (2 * h)

        op = splinalg.LinearOperator((x.size, x.size), matvec=hv, dtype=np.float64)
        p, _info = splinalg.minres(op, -g, rtol=1e-12, maxiter=20 * x.size)
        accepted = False
        for t in (1.0, 0.5, 0.25, 0.125):
            xn = x + t * p
            fn, gnew = prob.value_and_grad(xn)
            if np.linalg.norm(gnew) < gn and fn <= f + 1e-14 * max(1.0, abs(f)):
                x, f, g, gn = xn, fn, gnew, np.linalg.norm(gnew)
                accepted = True
                break
        if not accepted:
            break
    return x


def _lbfgs(prob, x, maxiter):
    """L-BFGS-B from x, restarted from its end point until the value stops improving."""
    fx = np.inf
    for _restart in range(5):
        res = optimize.minimize(prob.value_and_grad, x, jac=True, method="L-BFGS-B",
                                options={"maxiter": maxiter, "maxfun": 4 * maxiter, "gtol": 1e-13,
                                         "ftol": 1e-16, "maxcor": 30})
        improved = res.fun < fx - 1e-15 * max(1.0, abs(fx))
        x, fx = res.x, min(fx, res.fun)
        if not improved:
            break
    return x, float(fx)


def _continuation(prob, x, maxiter, start=1e-3, stages=9):
    """Follow a local minimizer while every decay grows geometrically from ``start`` times its value
    to its value (warm starts). With small decays the spurious minima at zero have tiny basins, so
    the run starts with every mode alive and lets a mode die only when its branch ends."""
    for t in np.geomspace(start, 1.0, stages):
        x, fx = _lbfgs(prob.scaled(float(t)), x, maxiter)
    return _lbfgs(prob, x, maxiter)


def _prune_directions(prob, x, fx, maxiter):
    """Try removing each feature-space direction the product W_L...W_1 uses (an SVD of the current
    iterate's product, not of Y-bar), re-optimize, and keep any removal that lowers the value.

    For L >= 2 zero is a local minimum of every mode, so a run can end with a mode that is locally
    stable but globally worse than its collapse; this generic descent move removes it.
    """
    improved = True
    while improved:
        improved = False
        Ws, H, _b = prob.unpack(x)
        P = Ws[0]
        for W in Ws[1:]:
            P = W @ P
        _, sv, Bt = np.linalg.svd(P)
        for i in np.flatnonzero(sv > 1e-8 * max(sv[0], 1e-300)):
            q = Bt[i]
            Ws2, H2, b2 = prob.unpack(x.copy())
            H2 -= np.outer(q, q @ H2)
            Ws2[0] -= np.outer(Ws2[0] @ q, q)
            x2 = np.concatenate([W.ravel() for W in Ws2] + [H2.ravel()] + ([b2] if b2 is not None else []))
            x2, f2 = _lbfgs(prob, x2, maxiter)
            if f2 < fx - 1e-13 * max(1.0, abs(fx)):
                x, fx, improved = x2, f2, True
                break
    return x, fx


def minimize(n, lam_W, lam_H, L=1, bias=True, d=None, seed=0, scales=(0.1, 1.0, 3.0),
             repeats=2, continuations=1, maxiter=20000) -> SolverResult:
    """Numerically minimize (4.1) / (4.2) / (4.3) over all of W_1..W_L, H (d x N) and b.

    L-BFGS-B with the analytic gradient from ``repeats`` random Gaussian starts at each of the
    ``scales`` (entries of factor j of standard deviation scale * sqrt(lam_mean / lam_j) / sqrt(width),
    lam_mean the geometric mean of all decays, since critical points are balanced), tolerances at the limit of
    float64 (gtol 1e-13, ftol 1e-16), each run restarted from its end point until the value stops
    improving. For L >= 2 there are also ``continuations`` continuation runs (every decay grown from
    1e-3 times its value to its value, warm-starting L-BFGS at each of 9 stages, so that no mode is
    lost to the spurious minimum at zero), each followed by tries at removing, one at a time, each
    direction that its product W_L...W_1 uses in feature space (against the opposite trap: a mode
    alive at a local minimum where its collapse is lower), re-optimizing after each (run scale NaN in
    ``run_scales``). The best point is then polished by Newton steps (MINRES on Hessian-vector
    products) until its gradient norm stops decreasing. Small starts alone are trapped at the spurious origin-like local
    minimum for L >= 2, which is why the scales differ. Independent of the closed forms (it never
    looks at an SVD of Y-bar). Hidden width ``d`` defaults to K; a width whose L - 1 layers of d x d would hold
    more than MAX_WIDTH^2 entries together is refused naming d and L (:func:`nclib._checks.width`) before anything
    is allocated. Used in :ref:`ch-thm41`, :ref:`ch-thm42` and :ref:`ch-thm43`.
    """
    n, lam, lam_H, L, bias, d = check_problem(n, lam_W, lam_H, L, bias, d, layers=True)
    seed = _checks.nonneg_int(seed, "seed")
    try:
        scales = tuple(_checks.positive_float(s, "scales") for s in scales)
    except TypeError as exc:
        raise ValueError(f"scales must be a sequence of positive numbers, got {scales!r}") from exc
    if not scales:
        raise ValueError("scales must hold at least one start scale")
    repeats = _checks.positive_int(repeats, "repeats")
    continuations = _checks.nonneg_int(continuations, "continuations")
    maxiter = _checks.positive_int(maxiter, "maxiter")
    prob = _Problem(n, lam, lam_H, L, bias, d)
    rng = np.random.default_rng(seed)
    # Start each factor with entries of size ~ sqrt(lam_mean / lam_j): at any critical point the
    # factors are balanced (lam_j ||W_j||^2 equal across j), so this puts starts near that manifold.
    lam_all = np.append(lam, lam_H)
    lam_mean = np.exp(np.mean(np.log(lam_all)))
    weights = list(np.sqrt(lam_mean / lam_all)) + ([1.0] if bias else [])

    def random_start(scale):
        return np.concatenate([rng.standard_normal(r * c) * scale * w / np.sqrt(c)
                               for (r, c), w in zip(prob.shapes, weights)])

    best = None
    run_values, run_scales = [], []
    for scale in scales:
        for _ in range(repeats):
            x, fx = _lbfgs(prob, random_start(scale), maxiter)
            run_values.append(float(fx))
            run_scales.append(float(scale))
            if best is None or fx < best[1]:
                best = (x, fx)
    if L >= 2:
        for _ in range(continuations):
            x, fx = _continuation(prob, random_start(1.0), maxiter)
            x, fx = _prune_directions(prob, x, fx, maxiter)
            run_values.append(float(fx))
            run_scales.append(float("nan"))
            if fx < best[1]:
                best = (x, fx)
    x, fx = best
    x = _newton_polish(prob, x)
    Ws, H, b = prob.unpack(x)
    gnorm = float(np.linalg.norm(prob.value_and_grad(x)[1]))
    Ws = [W.copy() for W in Ws]
    value = objective(Ws, H, b, n, lam, lam_H)
    return SolverResult(Ws=Ws, H=H.copy(), b=None if b is None else b.copy(), value=value,
                        run_values=tuple(run_values), run_scales=tuple(run_scales), grad_norm=gnorm)


# --------------------------------------------------------------------------------------------
# closed form vs solver: random instances and the comparison every theorem chapter tabulates
# --------------------------------------------------------------------------------------------

#: Which model each theorem is about: (bias, allowed L values).
THEOREMS = {"4.1": (False, (1,)), "4.2": (True, (1,)), "4.3": (True, (1, 2, 3, 6))}

#: What :func:`minimize` reaches against the closed forms of Theorems 4.1-4.3 (:func:`verify`): minima to
#: VALUE_RTOL relative, structural identities and the theorems' relations to STRUCT_ATOL (largest entry error).
#: Measured worst over tests/test_solvers.py's instances (the 60 of :func:`verify_many` with seeds 41, 42 and 43,
#: which are also the tables of the chapters on Theorems 4.1-4.3, and the fixed ones): a relative gap of 6.6e-16
#: and a structural error of 1.9e-12 (PPt); the bounds leave about 1000 times that for other LAPACK kernels.
VALUE_RTOL, STRUCT_ATOL = 1e-12, 2e-9


def random_instance(theorem: str, rng: np.random.Generator, margin: float = 0.05) -> dict:
    """A random test instance of Theorem ``theorem`` ("4.1", "4.2" or "4.3") for :func:`verify`.

    K in 3..8 classes with counts 1..12 (half of the draws grouped, which gives repeated singular
    values), per-layer decays that differ, L from ``THEOREMS``, hidden width d from K to K+2, and lam_H placed between the
    collapse thresholds of two modes (or below all of them), so that a random number of modes
    collapse, never within ``margin`` (relative, in lam_H) of a threshold where convergence is slow.
    Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43` and the unit tests.
    """
    from .minority import product_threshold  # the instance's placement uses the spectrum, the solver never does
    from .ufm import problem_matrix

    if not isinstance(theorem, str) or theorem not in THEOREMS:
        raise ValueError(f"theorem must be one of {sorted(THEOREMS)}, got {theorem!r}")
    rng = _checks.generator(rng)
    margin = _checks.nonneg_float(margin, "margin")
    if margin >= 1:
        raise ValueError(f"margin must be below 1 (a relative distance in lam_H), got {margin!r}")
    bias, Ls = THEOREMS[theorem]
    while True:
        K = int(rng.integers(3, 9))
        if rng.random() < 0.5:
            sizes = rng.choice(np.arange(1, 13), size=int(rng.integers(2, 4)), replace=False)
            mult = rng.multinomial(K - sizes.size, np.ones(sizes.size) / sizes.size) + 1
            n = np.repeat(np.sort(sizes)[::-1], mult)
        else:
            n = rng.integers(1, 13, size=K)
        L = int(rng.choice(Ls))
        lam = 10 ** rng.uniform(-0.5, 0.5, size=L)  # relative per-layer decays; rescaled below
        N = int(n.sum())
        kappa = np.linalg.svd(problem_matrix(n, bias), compute_uv=False)
        kappa = kappa[kappa > 1e-9 * kappa[0]]
        # the lam_H at which each mode sits on its threshold: the product Pi_k of Theorem 4.3 over the lam_Wj
        logcuts = np.log(product_threshold(kappa, N, L) / np.prod(lam))
        cuts = np.sort(np.unique(np.round(logcuts, 9)))  # ascending log lam_H
        pos = int(rng.integers(0, cuts.size))  # 0: every mode survives
        hi = cuts[pos]
        lo = cuts[pos - 1] if pos > 0 else hi - np.log(100.0)
        log_lam_H = lo + rng.uniform(0.3, 0.7) * (hi - lo)
        if np.min(np.abs(logcuts - log_lam_H)) < np.log1p(margin):
            continue
        lam_H = float(np.exp(log_lam_H))
        # only lam_H prod(lam) matters for the thresholds: spread it evenly over the L+1 decays
        # (times the relative factors drawn above), so that no factor is badly scaled
        g = (lam_H * np.prod(lam)) ** (1.0 / (L + 1))
        rel = 10 ** rng.uniform(-0.5, 0.5, size=L)
        lam_W = g * rel
        lam_H = lam_H * np.prod(lam) / np.prod(lam_W)
        d = K + int(rng.integers(0, 3))  # hidden width K, K+1 or K+2
        return {"n": n.astype(int).tolist(), "lam_W": lam_W.tolist(), "lam_H": float(lam_H), "L": L, "bias": bias,
                "d": d}


def verify(n, lam_W, lam_H, L=1, bias=True, d=None, seed=0) -> dict:
    """Closed form (:mod:`nclib.ufm`) against :func:`minimize` on one instance (Theorems 4.1-4.3).

    Returns the closed-form and numerical minima, their relative gap (``rel_gap``, negative when the
    solver went below the closed form), the lowest value any start reached relative to the closed form
    (``rel_lowest``), how far the objective at the closed form's own point (W_1..W_L, H, b of
    :func:`nclib.ufm.global_minimizer`) lies from the value it reports (``attained``, relative: a point built
    wrong cannot hide behind a right value), and the largest entry-wise errors of the structural identities at
    the numerical minimizer: the within-class collapse H = H-bar Y, every feature at its class mean
    (``within_class_err``, the
    largest entry of |H - H-bar Y|; a distance, not the NC1 metric of Section 5, :func:`nclib.metrics.nc1`),
    b = n/N and zero global mean (``bias_err``, the larger of the two errors; 0 without a bias),
    P P^T = U diag(s_p^2) U^T (``PPt``), E^T E = V diag(s_f^2) V^T (``EtE``),
    P E = U diag(s_p s_f) V^T (``PE``) and the balance lam_Wj W_j^T W_j = lam_W(j-1) W_(j-1) W_(j-1)^T,
    lam_W1 W_1^T W_1 = lam_H H H^T (``balance``), with P = W_L ... W_1 and E = H-bar D; ``result`` is the
    numerical minimizer. Used in :ref:`ch-thm41`, :ref:`ch-thm42` and :ref:`ch-thm43`.
    """
    n, lam, lam_H, L, bias, d = check_problem(n, lam_W, lam_H, L, bias, d, layers=True)
    if bias and n.size == 1:
        raise ValueError("n must hold at least two classes with a bias: for one class M = 0 and the minimum is 0, "
                         "so no relative gap to report")
    res = minimize(n, lam, lam_H, L, bias, d, seed)
    closed = ufm.global_minimizer(n, lam, lam_H, L, bias, d)
    st = ufm.structure(n, lam, lam_H, L, bias)
    nf = n.astype(np.float64)
    Y = label_matrix(n)
    Hbar = res.H @ Y.T / nf[None, :]  # the class means, d x K
    E = ufm.weighted_class_means(res.H, n)
    P = ufm.head_product(res.Ws)
    err = lambda A, B: float(np.max(np.abs(A - B)))  # noqa: E731
    bal = [err(lam[j] * res.Ws[j].T @ res.Ws[j], lam[j - 1] * res.Ws[j - 1] @ res.Ws[j - 1].T) for j in range(1, L)]
    bal.append(err(lam[0] * res.Ws[0].T @ res.Ws[0], lam_H * res.H @ res.H.T))
    out = {
        "K": int(n.size), "N": int(n.sum()), "L": L, "bias": bias, "d": d,
        "closed": closed.value, "numerical": res.value,
        "attained": abs(ufm.objective(closed.Ws, closed.H, closed.b, n, lam, lam_H) / closed.value - 1),
        "rel_gap": (res.value - closed.value) / abs(closed.value),
        "rel_lowest": (min(res.run_values) - closed.value) / abs(closed.value),
        "active": int(np.sum(st.s_product[: min(d, n.size)] > 0)),
        "within_class_err": err(res.H, Hbar @ Y),
        "bias_err": (max(err(res.b, nf / nf.sum()), float(np.max(np.abs(Hbar @ nf / nf.sum())))) if bias else 0.0),
        "balance": max(bal),
        "result": res,
    }
    if d >= n.size:
        out["PPt"] = err(P @ P.T, st.U @ np.diag(st.s_product ** 2) @ st.U.T)
        out["EtE"] = err(E.T @ E, st.V @ np.diag(st.s_features ** 2) @ st.V.T)
        out["PE"] = err(P @ E, st.U @ np.diag(st.s_product * st.s_features) @ st.V.T)
    return out


def verify_many(theorem: str, count: int = 20, seed: int = 0) -> list[dict]:
    """:func:`verify` on ``count`` instances of :func:`random_instance` (Theorem ``theorem``).

    Each row also carries the instance (``n``, ``lam_W``, ``lam_H``). The table of closed form vs
    numerical minimum in :ref:`ch-thm41`, :ref:`ch-thm42` and :ref:`ch-thm43`.
    """
    count = _checks.positive_int(count, "count")
    seed = _checks.nonneg_int(seed, "seed")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        inst = random_instance(theorem, rng)
        row = verify(**inst, seed=i)
        row.update(n=inst["n"], lam_W=inst["lam_W"], lam_H=inst["lam_H"])
        rows.append(row)
    return rows
