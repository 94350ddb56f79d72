"""Input validation shared by every nclib module.

Each checker returns a clean value or raises a ``ValueError`` whose message starts with the
argument's name and says what was expected, so that a caller never gets a silently wrong answer
or a deep numpy traceback.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Sequence

import numpy as np


def is_integral(x) -> bool:
    """Whether ``x`` is an integer as Python's numbers tower counts them (an int or a numpy integer), a bool not:
    the test under :func:`positive_int` and :func:`nonneg_int`, and under the checks of a count, a rank or a seed
    in :mod:`nclib.imbalance`, :mod:`nclib.feature_collapse`, :mod:`nclib.printed_metrics` and
    :mod:`nclib.figures.stability`.  An integer-valued float (4.0) is not one; any ``x`` is answered, nothing is
    refused."""
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, numbers.Integral):
        return True
    return False


def mixes_bools(a) -> bool:
    """Whether a list or tuple holds a bool among its numbers at any depth: numpy reads [True, 2] as the integers
    [1, 2] and [[True, 2.0]] as floats, so the dtype alone never shows it.  False for anything else (an array, a
    tensor, a number; ragged nested lists, which the caller's own conversion refuses).  :func:`counts`,
    :func:`matrix`, :func:`vector` and :func:`singular_values` ask it, and so does any check elsewhere in nclib that
    reads an array of numbers itself, so that each refuses bools by name."""
    if not isinstance(a, (list, tuple)):
        return False
    try:
        items = np.asarray(a, dtype=object).ravel()
    except Exception:  # ragged: the caller's own conversion refuses it
        return False
    return any(isinstance(v, (bool, np.bool_)) or mixes_bools(v) for v in items)


#: The largest finite float64, about 1.8e308: a number beyond it is refused by name (:func:`positive_int`,
#: :func:`nonneg_float`, :func:`positive_float`, :func:`matrix`, :func:`vector`, :func:`singular_values`), where
#: ``float()`` or numpy would raise an OverflowError that names no argument.
FLOAT_MAX = float(np.finfo(np.float64).max)


def shown(value) -> str:
    """``value`` as a refusal quotes it: its repr, or its number of digits for an integer beyond float64."""
    if is_integral(value) and abs(int(value)) > FLOAT_MAX:  # int > float compares exactly, without converting
        return f"an integer of {len(str(abs(int(value))))} digits"
    return repr(value)


def path_arg(value, name: str, what: str, blank: bool = True) -> str:
    """``value`` as the text of a path: a str or a path (``os.PathLike``), not empty, since the empty path is the
    current directory (a lock taken, a run written or a checkout read in whatever folder the process runs in), and
    with ``blank=False`` not blank either; anything else (a number, a list, bytes) is refused with a ValueError
    naming ``name`` and saying it must be ``what`` ("the path of a folder")."""
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(text, str) or not (text if blank else text.strip()):
        raise ValueError(f"{name} must be {what} (a str or a path, not empty{'' if blank else ' nor blank'}: the empty "
                         f"path is the current directory), got {value!r}")
    return text


def positive_int(value, name: str) -> int:
    """An integer >= 1 (``L``, ``d``, ``K``, ``N``, an epoch count, ...), at most :data:`FLOAT_MAX`: every such
    count enters float arithmetic (N lam_H, L N, the depth (L-1)/L), where a larger Python int raises an
    OverflowError."""
    if not is_integral(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if int(value) > FLOAT_MAX:
        raise ValueError(f"{name} must be at most {FLOAT_MAX:.3g} (a float64), got {shown(value)}")
    return int(value)


def counts(n, name: str = "n") -> np.ndarray:
    """Class counts: a non-empty 1-D sequence of positive integers, each at most 2**63 - 1, returned as an int64
    array."""
    try:
        arr = np.asarray(n)
    except Exception as exc:  # ragged input and the like
        raise ValueError(f"{name} must be a 1-D sequence of positive integers, got {n!r}") from exc
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of class counts, got shape {arr.shape}")
    if (arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating))
            or mixes_bools(n)):
        raise ValueError(f"{name} must hold integer class counts, got dtype {arr.dtype}"
                         + (" with a bool among them" if mixes_bools(n) else ""))
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class counts, got {arr.tolist()}")
    if np.any(arr < 1):
        raise ValueError(f"{name} must hold positive class counts (every class needs a sample), got {arr.tolist()}")
    # would wrap around to negative numbers in int64; integers are compared exactly (as a float, 2**63 - 1 rounds
    # up to 2**63), floats against 2.0**63 (the float below it, 2**63 - 1024, fits)
    beyond = arr >= 2.0 ** 63 if np.issubdtype(arr.dtype, np.floating) else arr > np.iinfo(np.int64).max
    if np.any(beyond):
        raise ValueError(f"{name} must hold class counts below 2**63 (int64), got max {arr.max().item()!r}")
    return arr.astype(np.int64)


def count_total(n) -> int:
    """The sample count N = n_1 + ... + n_K of checked class counts ``n`` (int64, from :func:`counts`), as an exact
    Python int: ``n.sum()`` in int64 wraps around to a negative number once N reaches 2**63."""
    return sum(int(v) for v in n) if n.size and int(n.max()) > (2 ** 63 - 1) // n.size else int(n.sum())


def flag(value, name: str) -> bool:
    """A Python or numpy bool (``bias``); 0, 1 and strings are refused, not read as truth values."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def real_dtype(dtype) -> bool:
    """Whether an array of ``dtype`` holds real numbers: numpy floats or integers, not bools, complex numbers, text or
    objects (the arrays of features, weights and samples that the metrics of Section 5 read)."""
    return bool(np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer))


def real_number(value) -> bool:
    """Whether ``value`` is a real number: a Python or numpy int or float, or anything numpy reads as a 0-d int or
    float array (a 0-d numpy array or torch tensor); not a bool, a string or a complex number (``float("0.1")``
    would read the text)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return False
    if isinstance(value, numbers.Real):
        return True
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - whatever numpy cannot read is not a number
        return False
    return arr.ndim == 0 and real_dtype(arr.dtype)


def _real_float(value) -> float:
    """A real number (:func:`real_number`) as a float: inf (with its sign) where it is beyond float64's range, which
    ``float()`` refuses with an OverflowError (a Python int or Fraction of 10**400)."""
    try:
        return float(value)
    except OverflowError:
        return np.inf if value > 0 else -np.inf


def nonneg_float(value, name: str) -> float:
    """A finite real number >= 0 (a weight decay), at most :data:`FLOAT_MAX`; bools and text are refused, not read
    as numbers."""
    if isinstance(value, float) and 0 <= value <= FLOAT_MAX:  # at once for a float (a decay read at every step)
        return float(value)
    if not real_number(value):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    x = _real_float(value)
    if not np.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {shown(value)}")
    return x


def positive_float(value, name: str) -> float:
    """A finite real number > 0 (a learning rate, a decay that must not vanish), at most :data:`FLOAT_MAX`; bools
    and text are refused, not read as numbers, and 0 is refused with its own message."""
    if isinstance(value, float) and 0 < value <= FLOAT_MAX:  # at once for a float (a decay read at every step)
        return float(value)
    if not real_number(value) or not np.isfinite(_real_float(value)) or _real_float(value) < 0:
        raise ValueError(f"{name} must be a finite positive number, got {shown(value)}")
    x = float(value)
    if x == 0:
        raise ValueError(f"{name} must be strictly positive, got {value!r}")
    return x


def positive_normal_float(value, name: str) -> float:
    """A :func:`positive_float` of float64's normal range, at least 2.2e-308: a subnormal has lost significant digits,
    the mark of an underflow, and its square root or reciprocal would carry that loss (or overflow)."""
    x = positive_float(value, name)
    if x < np.finfo(np.float64).tiny:
        raise ValueError(f"{name} must be a normal float64 (at least {np.finfo(np.float64).tiny:.3g}), got {value!r}")
    return x


#: The deepest head whose per-layer decays :func:`layer_lambdas` lays out, a million layers.  Theorem 4.3 holds at
#: every depth, but its closed forms take the decays as a list of L floats and each mode's strength as
#: kappa x^L / (1 + x^L), with x the root of Lemma A.2 found to about 4 ulps
#: (:func:`nclib.lemmas.lemma_a2_largest_root`): x^L carries L times that rounding, 9e-10 at a million layers.
#: Deeper, float64 runs out of digits before memory runs out of room (at L = 10**12 the list alone would take 8 TB,
#: and numpy raised a MemoryError naming no argument), so the bound is set there and a deeper L is refused by name.
MAX_DEPTH = 10 ** 6


def depth(L) -> int:
    """A depth ``L`` for the closed forms: a positive integer of at most :data:`MAX_DEPTH` layers."""
    L = positive_int(L, "L")
    if L > MAX_DEPTH:
        raise ValueError(f"L must be at most MAX_DEPTH = {MAX_DEPTH:,} layers (the depths whose closed forms keep "
                         f"their digits in float64), got {L:,}")
    return L


#: The largest hidden width ``d`` of the UFM past its K classes (:func:`width`): a width beyond K carries no mode of
#: the closed forms (only K modes exist; the extra rows of the minimizer are zero), while the points built at that
#: width (:func:`nclib.ufm.global_minimizer`, the solver's, the trained UFM's) hold d x d layers, 8 d^2 bytes of
#: float64 each, 800 MB at this bound.  At d = 10**12 numpy raised a MemoryError naming no argument.  An L-layer
#: head holds L - 1 such layers, which together get the memory of one at this bound: (L - 1) d^2 <= MAX_WIDTH^2.
MAX_WIDTH = 10 ** 4


def width(d, K: int, L: int | None = None) -> int:
    """A hidden width ``d`` of the UFM with ``K`` classes: a positive integer of at most max(K, :data:`MAX_WIDTH`)
    and, where the caller builds the layers of an ``L``-layer head (W_1 .. W_(L-1) d x d, W_L K x d), one whose
    L - 1 layers of d x d hold at most MAX_WIDTH^2 float64 entries together, (L - 1) d^2 <= MAX_WIDTH^2 (800 MB):
    a deep head asks for no more memory than one layer at :data:`MAX_WIDTH` (at d = MAX_WIDTH and L = 1000 its
    layers would take 800 GB, and numpy's MemoryError names no argument).  K itself, the closed forms' default
    width, is taken where it fits: always for L = 1 (W_1 is K x d, no larger than the K x K matrices of the closed
    forms), for a deeper head only under that bound (with K = 10**5 classes and L = 3, d is at most 7,071, and the
    default d = K is refused naming d and L).  ``L``: None for a caller that builds no layer (the closed forms'
    values).  ValueError naming ``d``, and ``L`` where the depth decides."""
    d = positive_int(d, "d")
    if d > max(K, MAX_WIDTH):
        raise ValueError(f"d must be at most max(K, MAX_WIDTH) = {max(K, MAX_WIDTH):,} (a width past K={K:,} carries "
                         f"no mode; a d x d layer of float64 takes 8 d^2 bytes, 800 MB at MAX_WIDTH = "
                         f"{MAX_WIDTH:,}), got {d:,}")
    if L is not None and (positive_int(L, "L") - 1) * d * d > MAX_WIDTH ** 2:
        widest = math.isqrt(MAX_WIDTH ** 2 // (L - 1))
        raise ValueError(f"d must be at most {widest:,} with L={L:,} layers: the L - 1 = {L - 1:,} hidden layers, "
                         f"d x d float64 each, hold at most MAX_WIDTH^2 = {MAX_WIDTH ** 2:,} entries together "
                         f"({8 * MAX_WIDTH ** 2:,} bytes), got d={d:,} (lower d or L)")
    return d


def layer_lambdas(lam_W, L: int, name: str = "lam_W", positive: bool = True) -> np.ndarray:
    """Per-layer weight decays lambda_W1..lambda_WL: one float for all layers, or exactly L floats; ValueError
    naming ``L`` for an L beyond :data:`MAX_DEPTH`, before anything is allocated."""
    L = depth(L)
    check = positive_float if positive else nonneg_float
    if np.ndim(lam_W) == 0:
        return np.full(L, check(lam_W, name))
    if isinstance(lam_W, np.ndarray) and lam_W.dtype == np.float64 and lam_W.shape == (L,):
        # the decays of a checked problem, read again at every step of a loop: passed as the loop below would pass
        # them, in one sweep of Python floats (NaN fails both comparisons; a bad one gets the loop's message)
        if all((0 < v if positive else 0 <= v) and v < math.inf for v in lam_W.tolist()):
            return lam_W.copy()
    arr = np.asarray(lam_W, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one number or a flat sequence of L={L} numbers, got shape {arr.shape}")
    values = list(arr)
    if len(values) != L:
        raise ValueError(f"{name} must be one number or a sequence of L={L} numbers, got {len(values)}")
    return np.array([check(v, f"{name}[{j}]") for j, v in enumerate(values)], dtype=np.float64)


def _as_float64(raw: np.ndarray, name: str) -> np.ndarray:
    """The numpy array ``raw`` of real numbers (its dtype already checked by the caller) as float64; ValueError naming
    ``name`` where one is beyond :data:`FLOAT_MAX` (a Python int of 10**400 in an object array), which numpy's
    conversion refuses with an OverflowError.  Under :func:`vector` and :func:`matrix`."""
    try:
        return raw.astype(np.float64)
    except OverflowError:
        raise ValueError(f"{name} must be finite: a number beyond float64's range ({FLOAT_MAX:.3g})") from None


def array(a, name: str) -> np.ndarray:
    """``a`` as numpy reads it (``np.asarray``), the values only: a torch tensor is read from a detached copy on the
    CPU, since numpy refuses a tensor that requires grad (or lives on a GPU) with torch's RuntimeError or TypeError,
    naming no argument; and input numpy cannot read as one array (ragged nested lists such as ``[0, [1], 2]``, a
    tensor of a dtype numpy lacks) is refused with a ValueError naming ``name``, not numpy's "inhomogeneous shape"
    message. The dtype and shape are the caller's to check."""
    torch = sys.modules.get("torch")  # a tensor exists only where torch was imported: no import here
    if torch is not None and isinstance(a, torch.Tensor):
        a = a.detach().cpu()
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - ragged input and the like
        raise ValueError(f"{name} must be a rectangular array of numbers; numpy cannot read it as one "
                         f"({type(exc).__name__}: {exc})") from exc


def matrix(a, name: str, shape: Sequence[int | None] | None = None) -> np.ndarray:
    """A finite 2-D float64 array of real numbers, optionally with a required shape (None = any size on that axis);
    bool, complex and text arrays are refused, not converted."""
    raw = array(a, name)
    if raw.dtype == object:
        if not all(real_number(v) for v in raw.ravel()):
            raise ValueError(f"{name} must hold real numbers (no text, bools or complex numbers)")
    elif not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise ValueError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    if mixes_bools(a):
        raise ValueError(f"{name} must hold real numbers, not bools")
    arr = _as_float64(raw, name)  # real numbers only, checked above
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(arr.shape, shape)):
            if want is not None and got != want:
                any_size = " (None = any size on that axis)" if None in tuple(shape) else ""
                raise ValueError(f"{name} must have shape {tuple(shape)}{any_size}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def vector(a, name: str, size: int | None = None) -> np.ndarray:
    """A finite 1-D float64 array of real numbers (a bias ``b``, decays, strengths), optionally of a required
    length; bool, complex and text entries are refused, not converted."""
    raw = np.atleast_1d(array(a, name))
    if raw.dtype == object:
        if not all(real_number(v) for v in raw.ravel()):
            raise ValueError(f"{name} must hold real numbers (no text, bools or complex numbers)")
    elif not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)) or mixes_bools(a):
        raise ValueError(f"{name} must hold real numbers (no text, bools or complex numbers), got dtype {raw.dtype}")
    arr = _as_float64(raw, name)
    if arr.ndim != 1 or (size is not None and arr.size != size):
        want = "1-D" if size is None else f"of length {size}"
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def strengths(a, name: str, size: int | None = None) -> np.ndarray:
    """Predicted singular values per mode (``nclib.ufm.structure``'s ``s_product`` and ``s_features``, those of the
    head's product P and of E = H-bar D at a minimizer): a vector of finite non-negative real numbers, optionally of
    a required length, refused by name."""
    arr = vector(a, name, size)
    if np.any(arr < 0):
        raise ValueError(f"{name} must hold non-negative numbers, got the value {float(arr.min()):g}")
    return arr


def generator(rng, name: str = "rng") -> np.random.Generator:
    """A numpy random Generator (``np.random.default_rng(seed)``), not a seed or the legacy RandomState."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name} must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    return rng


#: The range of a nonzero singular value: kappa^2, which the closed forms compute, is a normal float64 there (at
#: 1e-170 it would round to 0, a live mode read as kappa = 0; at 1e200 overflow).  Class counts give kappa in
#: [1, sqrt(N)] or 0.
KAPPA_RANGE = (float(np.sqrt(np.finfo(np.float64).tiny)), float(np.sqrt(np.finfo(np.float64).max)))


def singular_values(kappa, name: str = "kappa") -> np.ndarray:
    """Singular values (of M, one per mode): a non-empty 1-D float64 array of finite non-negative real numbers, each
    0 or within :data:`KAPPA_RANGE`; text, bools and complex numbers are refused, a list mixing number types
    (sympy's Float, say) is read."""
    lo, hi = KAPPA_RANGE
    if isinstance(kappa, float) or (isinstance(kappa, np.ndarray) and kappa.dtype == np.float64 and kappa.ndim == 1):
        arr = np.array(kappa, dtype=np.float64, ndmin=1)  # a float or a float64 vector: at once where every value is
        if arr.size and all(v == 0 or lo <= v <= hi for v in arr.tolist()):  # good (NaN fails both comparisons)
            return arr
    arr = np.atleast_1d(np.asarray(kappa))
    if arr.dtype == object:
        arr = np.array([_real_float(v) if real_number(v) else np.nan for v in arr.ravel()]).reshape(arr.shape)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)) or mixes_bools(kappa):
        raise ValueError(f"{name} must hold real singular values, got dtype {arr.dtype}"
                         + (" with a bool among them" if mixes_bools(kappa) else ""))
    arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.size == 0 or np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must be a non-empty 1-D array of finite non-negative singular values")
    if np.any((arr > 0) & ((arr < lo) | (arr > hi))):
        raise ValueError(f"{name} must hold 0 or values in [{lo:.3g}, {hi:.3g}], where kappa^2 is a normal float64, "
                         f"got {arr[(arr > 0) & ((arr < lo) | (arr > hi))][0]:.3g}")
    return arr


def nonneg_int(value, name: str) -> int:
    """An integer >= 0 (a random seed, an epoch index)."""
    if not is_integral(value) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def auto_flag(value, name: str):
    """``"auto"``, True or False (a switch whose default is decided by the device: ``cuda_graph``,
    ``async_metrics``); numpy bools read as bools."""
    if isinstance(value, str) and value == "auto":
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be 'auto', True or False, got {value!r}")


def one_per_folder(values, name: str, what: str, n: int, fits) -> list:
    """``values`` as a list of one entry per run folder (``n`` of them), each one that ``fits`` (a predicate): what a
    call over several run folders takes beside them (their parameters, devices, provenances, engines), in the
    folders' order: a list, tuple or numpy array.  A str, bytes or mapping (one value for every folder, whose
    characters or keys are no entries), a set (no order), anything else that is no sequence, a length other than
    ``n`` and an entry that does not fit are refused with a ValueError naming ``name``."""
    ordered = isinstance(values, (Sequence, np.ndarray)) and not isinstance(values, (str, bytes))
    if not ordered or len(values) != n:
        raise ValueError(f"{name} must hold one {what} per run folder ({n}), got {values!r:.200}")
    for x in values:
        if not fits(x):
            raise ValueError(f"{name} must hold one {what} per run folder, got {x!r:.200} among them")
    return list(values)
