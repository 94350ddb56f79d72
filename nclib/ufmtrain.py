"""The unconstrained feature model trained by Adam, set against the closed form (chapter :ref:`ch-minority`, section
:ref:`sec-minority-ufm`).

:func:`train_ufm` minimizes the full objective (4.3) of the L-extended UFM (Definition 3.1; (4.1), (4.2) for L = 1)
over free H and W_1..W_L, with or without a bias, by full-batch Adam in float64, from :func:`init_ufm`, and returns a
:class:`UFMRun` set against the closed form of Theorems 4.1-4.3: the value reached and its gap to the global minimum,
the strength of each mode in the run (:func:`mode_values`) beside its strength at the global minimizer, the modes
alive (:func:`nclib.minority.alive_modes`) and the accuracy of each class.  :data:`AT_MINIMUM_GAP` is the book's
reading of such a run: at the global minimum, or at another critical point of Lemma A.2
(:func:`nclib.minority.partial_minimum`).  :func:`read_ufm_table` reads the tables of such runs that
``scripts/minority_runs.py`` writes (:data:`UFM_FIELDS`, then :data:`UFM_HISTORY_FIELDS`, a summary of the
objective's history, in a table made since they were added), whose class counts are :func:`table_counts`.  The
closed form itself (the collapse decays, the classes a global minimizer still separates, the other critical points)
is :mod:`nclib.minority`'s, which imports nothing of this module.
"""
from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass

import numpy as np

from . import ROOT, _checks, imbalance, minority, ufm
from .imbalance import label_matrix, mode_blocks
from .parameters import ADAM_BETAS, ADAM_EPS


@dataclass(frozen=True)
class UFMRun:
    """The end point of :func:`train_ufm`: ``Ws`` = [W_1, ..., W_L], ``H`` (d x N), ``b`` (None without a bias),
    ``value`` (objective (4.3) there, float64), ``minimum`` (the closed-form global minimum), ``s`` (the strength of
    each mode of M in the run, :func:`mode_values`), ``s_theory`` (at the global minimizer,
    :func:`nclib.ufm.mode_strengths`), ``class_acc`` (:func:`nclib.minority.grouped_class_accuracy`), ``history``
    (the objective every ``record_every`` steps, then at the end) and ``kappa`` (the spectrum of M,
    :func:`nclib.minority.problem_spectrum`)."""

    Ws: list
    H: np.ndarray
    b: np.ndarray | None
    value: float
    minimum: float
    s: np.ndarray
    s_theory: np.ndarray
    class_acc: np.ndarray
    history: np.ndarray
    kappa: np.ndarray

    @property
    def gap(self) -> float:
        """(value - minimum) / minimum: how far above the global minimum the run ended."""
        return (self.value - self.minimum) / self.minimum

    @property
    def alive(self) -> np.ndarray:
        """The modes alive in the trained model (:func:`nclib.minority.alive_modes` of ``s``)."""
        return minority.alive_modes(self.s, self.kappa)

    @property
    def alive_theory(self) -> np.ndarray:
        """The modes alive at the global minimizer (``s_theory`` > 0, as in
        :func:`nclib.minority.alive_at_minimum`)."""
        return self.s_theory > 0

    @property
    def at_origin(self) -> bool:
        """Whether every mode is dead: the point where each mode sits at the local minimizer 0 of Lemma A.2."""
        return not self.alive.any()


def mode_values(Ws, H, n, bias: bool = True) -> np.ndarray:
    """The strength of each mode of M (:func:`nclib.minority.problem_spectrum`) in a model (Ws, H): with M =
    U diag(kappa) V^T and the modes grouped by equal kappa (a repeated singular value has no preferred basis), the
    singular values of U_g^T W_L ... W_1 H-bar D V_g for each group g, in the order of kappa.  At a global minimizer
    these are the values of Theorems 4.1-4.3 (:func:`nclib.ufm.mode_strengths`); at another point, a mode of zero
    strength is dead."""
    n = _checks.counts(n)
    U, kappa, Vt = ufm.problem_svd(n, bias)
    P, E = ufm.head_product(Ws), ufm.weighted_class_means(H, n)
    if P.shape[0] != n.size:
        raise ValueError(f"Ws: W_L must have one row per class, K={n.size}, got {P.shape[0]}")
    if P.shape[1] != E.shape[0]:
        raise ValueError(f"H must have as many rows as W_1 has columns ({P.shape[1]}), got {E.shape[0]}")
    C = U.T @ P @ E @ Vt.T
    out = np.empty(kappa.size)
    for block in mode_blocks(kappa, np.ones(kappa.size, dtype=bool)):  # contiguous: kappa non-increasing
        out[block] = np.linalg.svd(C[np.ix_(block, block)], compute_uv=False)
    return out


#: The learning-rate factor that :func:`train_ufm` reaches at its last step by default: the rate is ``lr`` for the first
#: half of the steps, then decays geometrically to ``lr * FINAL_LR_FACTOR`` (the schedule of the UFM runs of chapter
#: :ref:`ch-minority`).
FINAL_LR_FACTOR = 1e-3

#: A trained UFM run whose relative gap (:attr:`UFMRun.gap`, (value - minimum) / minimum) is below this counts
#: as at the closed-form global minimum (:ref:`sec-minority-ufm`; the bias-free figure chapters count so too), and
#: one whose value is within this relative distance of the value of another critical point of Lemma A.2
#: (:func:`nclib.minority.partial_minimum`) as at that point, a partial collapse (:ref:`sec-minority-ufm`).
AT_MINIMUM_GAP = 1e-6


def at_global_minimum(gap):
    """Whether trained UFM runs of relative gap ``gap`` ((value - minimum) / minimum, :attr:`UFMRun.gap`: one number,
    or an array of them, such as the ``gap`` column of a table of runs) are at the closed-form global minimum of
    objective (4.3) (Theorems 4.1-4.3): below :data:`AT_MINIMUM_GAP`.  A bool, or a bool array of the shape of
    ``gap``.  Used in :ref:`ch-minority` and by :func:`trained_ufm_at_minimum`.  ValueError naming ``gap`` unless
    real numbers, none of them NaN (a NaN would read as "not at the minimum") and none below the minimum by more
    than rounding (:data:`nclib.minority.BELOW_MINIMUM_RTOL`): no point of (4.3) has a value below its global
    minimum, so such a gap is of another problem's run, not one at this minimum; nor bools, also among numbers
    ([1e-9, True], which numpy reads as floats), nor nested lists numpy cannot read as one array."""
    values = _checks.array(gap, "gap")
    real = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
    if values.dtype == bool or not real or _checks.mixes_bools(gap):
        raise ValueError(f"gap must be real numbers (relative gaps to the minimum), got {gap!r:.200}")
    if np.isnan(values).any():
        raise ValueError(f"gap must not be NaN, got {gap!r:.200}")
    if (values < -minority.BELOW_MINIMUM_RTOL).any():
        raise ValueError(f"gap must be >= -{minority.BELOW_MINIMUM_RTOL:g} (no value of (4.3) is below its global "
                         f"minimum but by rounding), got {gap!r:.200}")
    at = values < AT_MINIMUM_GAP
    return bool(at) if at.ndim == 0 else at


def _lr_factor(step: int, steps: int, final: float) -> float:
    """The learning-rate factor of step ``step`` (0-based): 1 for the first half of ``steps``, then a geometric
    decay that reaches ``final`` at the last step."""
    half = steps // 2
    if step < half:
        return 1.0
    return final ** ((step - half) / max(1, steps - 1 - half))


def _check_width(n, lam, lam_H, L, bias, d):
    """The arguments of :func:`nclib.ufm.check_problem`, with a hidden width below K refused by name."""
    if d < n.size:
        raise ValueError(f"d must be at least K={n.size} (the closed form's hidden width), got {d}")
    return n, lam, lam_H, L, bias, d


def init_ufm(n, L: int, bias: bool = True, d: int | None = None, init_scale: float = 1.0, seed: int = 0):
    """A random starting point (Ws, H, b) of the L-extended UFM of Definition 3.1 (objective (4.3); (4.1), (4.2) for
    L = 1), times ``init_scale``: every W_j (W_1 .. W_(L-1) d x d, W_L K x d) as PyTorch's ``nn.Linear``
    initializes it (U(-1/sqrt(d), 1/sqrt(d)), the head of :mod:`nclib.models` with ``init="pytorch"``), H (d x N)
    with N(0, 1) entries, b = 0 (None without a bias); hidden width d = K by default.  Drawn from
    ``numpy.random.default_rng(seed)``.  The paper gives no initialization (Section 5 trains the MLP, not the free
    model): this one is the book's choice, the start of :func:`train_ufm` in chapter :ref:`ch-minority`, section
    :ref:`sec-minority-ufm`.  ValueError naming ``d`` for d < K (see :func:`train_ufm`)."""
    n, _, _, L, bias, d = _check_width(*ufm.check_problem(n, 1.0, 1.0, L, bias, d, layers=True))
    init_scale = _checks.positive_float(init_scale, "init_scale")
    seed = _checks.nonneg_int(seed, "seed")
    rng = np.random.default_rng(seed)
    K, N = n.size, int(n.sum())
    Ws = [rng.uniform(-1, 1, size=(K if j == L - 1 else d, d)) / np.sqrt(d) * init_scale for j in range(L)]
    H = rng.standard_normal((d, N)) * init_scale
    return Ws, H, (np.zeros(K) if bias else None)


def train_ufm(n, lam_W, lam_H, L: int = 1, bias: bool = True, d: int | None = None, steps: int = 4000,
              lr: float = 0.05, final_lr_factor: float = FINAL_LR_FACTOR, init_scale: float = 1.0, seed: int = 0,
              record_every: int = 100, start=None) -> UFMRun:
    """Minimize the objective (4.3) of the L-extended UFM (Definition 3.1; (4.1)/(4.2) for L = 1) over free
    W_1, ..., W_L, H and b (``bias``) by full-batch Adam in float64, from :func:`init_ufm` (or from ``start`` =
    (Ws, H, b)).

    Adam is ``torch.optim.Adam``'s update (:data:`nclib.parameters.ADAM_BETAS`, ``ADAM_EPS``, bias-corrected moments;
    the tests compare the two step for step) on the gradients of (4.3) written out in numpy because
    the per-step overhead of autograd dominates at these sizes.  The rate is ``lr`` for the first half of ``steps``,
    then decays geometrically to ``lr * final_lr_factor`` (default :data:`FINAL_LR_FACTOR`).  Decays as in :func:`nclib.ufm.objective` (``lam_W`` one
    number or L).  Returns a :class:`UFMRun` set against the closed form of Theorems 4.1-4.3 (:ref:`ch-minority`).

    The hidden width ``d`` (default K) must be at least K: the closed form the run is set against (its ``minimum``,
    ``s_theory`` and so ``gap`` and ``alive_theory``) is that of widths >= K, and a narrower model, which carries at
    most d modes, would read as a minority collapse; ValueError naming ``d`` for d < K, and ``d`` and ``L`` for a
    width whose L - 1 layers of d x d would not fit the bound of :func:`nclib._checks.width`, before anything is
    allocated.  ``seed`` and ``init_scale``
    are refused by name when bad also with a ``start``, where they are unused.
    """
    n, lam, lam_H, L, bias, d = _check_width(*ufm.check_problem(n, lam_W, lam_H, L, bias, d, layers=True))
    if bias and n.size == 1:
        raise ValueError("n must hold at least two classes with a bias: for one class M = 0 and the minimum is 0, "
                         "so no relative gap to report")
    steps = _checks.positive_int(steps, "steps")
    lr = _checks.positive_float(lr, "lr")
    final_lr_factor = _checks.positive_float(final_lr_factor, "final_lr_factor")
    if final_lr_factor > 1:
        raise ValueError(f"final_lr_factor must be in (0, 1], got {final_lr_factor!r}")
    record_every = _checks.positive_int(record_every, "record_every")
    init_scale = _checks.positive_float(init_scale, "init_scale")  # checked also with a start, where they are unused
    seed = _checks.nonneg_int(seed, "seed")
    K, N = n.size, int(n.sum())
    if start is None:
        Ws, H, b = init_ufm(n, L, bias, d, init_scale, seed)
    else:
        if not isinstance(start, (tuple, list)) or len(start) != 3:
            raise ValueError(f"start must be (Ws, H, b) as init_ufm returns it, got {type(start).__name__}")
        Ws, H, b = start
        if isinstance(Ws, np.ndarray) or not isinstance(Ws, (tuple, list)):
            raise ValueError(f"start Ws must be a list of the L={L} weight matrices W_1..W_L")
        if len(Ws) != L:
            raise ValueError(f"start must hold L={L} weight matrices, got {len(Ws)}")
        Ws = [_checks.matrix(W, f"start Ws[{j}]", (K if j == L - 1 else d, d)).copy() for j, W in enumerate(Ws)]
        H = _checks.matrix(H, "start H", (d, N)).copy()
        if (b is None) == bias:
            raise ValueError(f"start b must be {'a length-K vector' if bias else 'None'} when bias={bias}")
        if b is not None:
            b = _checks.vector(b, "start b", K).copy()
    Y = label_matrix(n)
    params = [*Ws, H] + ([b] if bias else [])
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    beta1, beta2 = ADAM_BETAS
    history = []
    for k in range(steps):
        value, dWs, dH, db = ufm.objective_and_gradients(Ws, H, b, Y, lam, lam_H)
        if k % record_every == 0:
            history.append(value)
        grads = [*dWs, dH] + ([db] if bias else [])
        rate = lr * _lr_factor(k, steps, final_lr_factor)
        t = k + 1
        c1, c2 = 1 - beta1 ** t, np.sqrt(1 - beta2 ** t)
        for p, g, a, v in zip(params, grads, m1, m2):  # torch.optim.Adam, single-tensor form
            a *= beta1
            a += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            p -= (rate / c1) * a / (np.sqrt(v) / c2 + ADAM_EPS)
    value = ufm.objective(Ws, H, b, n, lam, lam_H)
    history.append(value)
    kappa = minority.problem_spectrum(n, bias)
    out = ufm.head_product(Ws) @ H + (b[:, None] if b is not None else 0.0)
    return UFMRun(Ws=[W.copy() for W in Ws], H=H.copy(), b=None if b is None else b.copy(), value=value,
                  minimum=ufm.minimum_value(n, lam, lam_H, L=L, bias=bias), s=mode_values(Ws, H, n, bias),
                  s_theory=ufm.mode_strengths(kappa, N, lam, lam_H, L=L),
                  class_acc=minority.grouped_class_accuracy(out, n), history=np.array(history), kappa=kappa)


# ------------------------------------------------------------------------------------------ the tables of UFM runs

#: What the class counts of a profile (Section 5's, :data:`nclib.imbalance.PROFILES`) are divided by in the CPU runs
#: of :ref:`ch-minority`, so that a sweep takes a few CPU minutes: the UFM tables (:func:`table_counts`) and the MLP
#: sweep of ``scripts/minority_runs.py``.  Both profiles' counts are multiples of it, so every collapse decay lambda_k
#: of the scaled profile is COUNT_DIVISOR^(1/(L+1)) times the full profile's (checked in that chapter).
COUNT_DIVISOR = 10


def table_counts(profile: str) -> np.ndarray:
    """The class counts n of the UFM table of ``profile`` (``ufm-PROFILE.csv``): the counts of Definition 4.1 for
    the paper's profile (Section 5, :data:`nclib.imbalance.PROFILES`, largest first) each divided by
    :data:`COUNT_DIVISOR`, rounded down (CIFAR-10: 50, 50, 40, ..., 10, N = 300; EMNIST letters: 150, 5 x 60,
    20 x 5, N = 550).  Used by ``scripts/minority_runs.py`` and in :ref:`ch-minority`.  ValueError naming
    ``profile`` for one that is not a key of that dict."""
    if not isinstance(profile, str) or profile not in imbalance.PROFILES:
        raise ValueError(f"profile must be one of {sorted(imbalance.PROFILES)}, got {profile!r}")
    return imbalance.class_counts(imbalance.PROFILES[profile]) // COUNT_DIVISOR


#: The columns of a table of UFM runs, ``ufm-PROFILE.csv`` (results/minority/README.md says what each holds), one
#: row per run of :func:`train_ufm`, as ``scripts/minority_runs.py`` writes them and :func:`read_ufm_table` reads them.
#: A table the script writes now, the committed tables of :ref:`ch-minority` among them, has
#: :data:`UFM_HISTORY_FIELDS` after them; a table written before those columns existed has these only.
UFM_FIELDS = ("profile", "bias", "L", "lam", "seed", "init_scale", "steps", "lr", "value", "minimum", "gap",
              "modes_alive", "modes_theory", "classes_correct", "classes_theory", "at_origin", "s", "s_theory",
              "class_acc")
#: The columns after :data:`UFM_FIELDS` in a table that ``scripts/minority_runs.py`` writes now: a summary of the
#: run's objective (4.3) recorded at every step (:attr:`UFMRun.history` with ``record_every=1``, the values after
#: 0, 1, ..., ``steps`` Adam steps): ``best_value``, the lowest of them, and ``best_step``, the first step at it;
#: ``largest_rise``, the largest ratio of the value at a step to the lowest value up to that step (1.0 for an
#: objective that never rose), and ``rise_step``, the first step at it.
UFM_HISTORY_FIELDS = ("best_value", "best_step", "largest_rise", "rise_step")


def history_summary(history, steps: int, record_every: int = 1) -> dict:
    """The columns :data:`UFM_HISTORY_FIELDS` of a run's objective (4.3) ``history`` (:attr:`UFMRun.history`,
    recorded every ``record_every`` steps of ``steps``, then at the end): ``best_value``, the lowest value, and
    ``best_step``, the first step at it; ``largest_rise``, the largest ratio of a value to the lowest value up to its
    step (1.0 when the objective never rose), and ``rise_step``, the first step at it.  Written by
    ``scripts/minority_runs.py``, read in :ref:`ch-minority-runs`.  ValueError naming ``history`` where it is not a 1-D
    sequence of finite positive numbers (the objective with positive decays is positive, and each value is divided
    by the lowest before it) or its length is not that of such a record."""
    steps = _checks.positive_int(steps, "steps")
    record_every = _checks.positive_int(record_every, "record_every")
    history = _checks.vector(history, "history")
    at = np.r_[np.arange(0, steps, record_every), steps]  # the step of each recorded value
    if history.size != at.size:
        raise ValueError(f"history must hold the {at.size} values of {steps} steps recorded every {record_every} "
                         f"(at steps 0, {record_every}, ... and {steps}), got {history.size}")
    if not np.all(history > 0):
        raise ValueError(f"history must hold positive values (objective (4.3) with positive decays), got min "
                         f"{history.min()!r}")
    rise = history / np.minimum.accumulate(history)
    return dict(best_value=float(history.min()), best_step=int(at[np.argmin(history)]),
                largest_rise=float(rise.max()), rise_step=int(at[np.argmax(rise)]))
_UFM_INTS = ("L", "seed", "steps", "modes_alive", "modes_theory", "classes_correct", "classes_theory", "best_step",
             "rise_step")
_UFM_FLOATS = ("lam", "init_scale", "lr", "value", "minimum", "gap", "best_value", "largest_rise")
_UFM_FLAGS = ("bias", "at_origin")
_UFM_VECTORS = ("s", "s_theory", "class_acc")


def _ufm_kind(column: str) -> str:
    """What a value of a column of a UFM table is, in words."""
    return ("an int" if column in _UFM_INTS else "a finite float written as its repr" if column in _UFM_FLOATS
            else "True or False" if column in _UFM_FLAGS else "space-separated finite floats")


def _ufm_value(column: str, text: str):
    """The value of a column of a UFM table from its text, None where the text is not of the column's type."""
    try:
        if column in _UFM_INTS:
            value = int(text)
            return value if str(value) == text else None
        if column in _UFM_FLOATS:
            value = float(text)
            return value if repr(value) == text and np.isfinite(value) else None
        if column in _UFM_FLAGS:
            return {"True": True, "False": False}.get(text)  # as csv writes a Python bool; not "true", nor "1"
        values = np.array(text.split(), dtype=np.float64)
        return values if np.all(np.isfinite(values)) else None
    except ValueError:
        return None


def read_ufm_table(path) -> list[dict]:
    """The rows of a table of UFM runs (:data:`UFM_FIELDS`, and :data:`UFM_HISTORY_FIELDS` in a table that has them;
    objective (4.3) trained by :func:`train_ufm` and set against the closed form of Theorems 4.1-4.3), typed:
    ``profile`` a str; ``bias`` and ``at_origin`` bools; ``L``, ``seed``, ``steps``, the counts of modes and classes,
    ``best_step`` and ``rise_step`` ints; ``lam``, ``init_scale``, ``lr``, ``value``, ``minimum``, ``gap``,
    ``best_value`` and ``largest_rise`` floats to the last bit (the script writes each as its repr, which Python's
    float, correctly rounded, gives back); ``s``, ``s_theory`` and ``class_acc`` float64 arrays of one entry per mode
    or class (the space-separated 6 significant digits written).  A row of a table without the history columns (one
    written before the script wrote them) has no such keys.  Used in :ref:`ch-minority`, in :ref:`ch-fig3` and
    :ref:`ch-fig4` (through :func:`trained_ufm_at_minimum`) and by
    ``scripts/minority_runs.py`` (``--like``).  ValueError naming ``path`` for a header other than these two, a value
    that is not of its column's type (a float not written as its repr, NaN or inf, a flag other than True or
    False), strengths and accuracies of different or zero lengths, or a history summary that no history gives (a
    step outside 0 .. ``steps``, a rise below 1, a lowest value above the last)."""
    path = pathlib.Path(path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) not in (UFM_FIELDS, UFM_FIELDS + UFM_HISTORY_FIELDS):
            raise ValueError(f"path: {path} has the columns {header}, not those of a UFM table {list(UFM_FIELDS)} "
                             f"(followed by {list(UFM_HISTORY_FIELDS)} in a table with the history's summary)")
        lines = list(reader)
    rows = []
    for i, line in enumerate(lines, start=2):
        if len(line) != len(header):
            raise ValueError(f"path: {path}, line {i}, has {len(line)} values, not {len(header)}")
        text = dict(zip(header, line))
        row = {"profile": text["profile"]}
        for c in header[1:]:
            row[c] = _ufm_value(c, text[c])
            if row[c] is None:
                raise ValueError(f"path: {path}, line {i}: {c} = {text[c]!r} is not {_ufm_kind(c)}")
        sizes = {row[c].size for c in _UFM_VECTORS}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"path: {path}, line {i}: s, s_theory and class_acc must have one value per mode or "
                             f"class, all as many, got {[row[c].size for c in _UFM_VECTORS]}")
        if len(header) > len(UFM_FIELDS):
            for c in ("best_step", "rise_step"):
                if not 0 <= row[c] <= row["steps"]:
                    raise ValueError(f"path: {path}, line {i}: {c} = {row[c]} is not a step from 0 to steps = "
                                     f"{row['steps']}")
            if not row["largest_rise"] >= 1:
                raise ValueError(f"path: {path}, line {i}: largest_rise = {row['largest_rise']!r} is below 1, the "
                                 f"ratio of a value to itself")
            if not row["best_value"] <= row["value"]:
                raise ValueError(f"path: {path}, line {i}: best_value = {row['best_value']!r} is above the last "
                                 f"value, value = {row['value']!r}")
        rows.append(row)
    return rows


def trained_ufm_at_minimum(bias: bool, root=None) -> dict[int, dict]:
    """How many of the unconstrained-feature-model runs of :ref:`ch-minority` (free features trained by Adam on
    (4.3), ``<root>/minority/ufm-*.csv``, both profiles; ``root``: the results folder, by default ``results/``) with
    or without a bias reach the closed-form global minimum of Theorems 4.1-4.3, per L: ``runs`` and ``at_minimum``
    (:func:`at_global_minimum`, as that chapter counts them), and of them ``keeping`` and ``keeping_at_minimum``,
    the runs at a decay where the global minimizer keeps a mode (below the last threshold; past it the minimizer is
    the origin).  The tables are read by :func:`read_ufm_table`, as the chapter reads them.  The bias-free figure
    chapters (:ref:`ch-fig3`, :ref:`ch-fig4`) set their runs against that closed form.  ValueError naming ``bias``
    unless a bool, or when no run in the files has that bias case (an empty count would read as "no run reached
    it"), naming the folder when it holds no such file, and naming ``path`` (from :func:`read_ufm_table`) for a
    file that is not a UFM table."""
    bias = _checks.flag(bias, "bias")
    folder = (ROOT / "results" if root is None else pathlib.Path(root)) / "minority"
    files = sorted(folder.glob("ufm-*.csv"))
    if not files:
        raise ValueError(f"{folder} holds no UFM runs (ufm-*.csv)")
    out: dict[int, dict] = {}
    for path in files:
        for row in read_ufm_table(path):  # typed: bias a bool, gap a float, L and modes_theory ints
            if row["bias"] != bias:
                continue
            at_min, keeps = at_global_minimum(row["gap"]), row["modes_theory"] > 0
            c = out.setdefault(row["L"], dict.fromkeys(("runs", "at_minimum", "keeping", "keeping_at_minimum"), 0))
            c["runs"] += 1
            c["at_minimum"] += at_min
            c["keeping"] += keeps
            c["keeping_at_minimum"] += keeps and at_min
    if not out:
        raise ValueError(f"no UFM run in {folder} has bias={bias}")
    return dict(sorted(out.items()))
