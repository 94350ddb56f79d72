"""Numbers as the chapters state bounds on them: a glued "at most" or "at least" must stay true of the unrounded
value, so the value is rounded outward (up for an upper bound, down for a lower one) to a few significant figures.
Chapters :ref:`ch-metrics`, :ref:`ch-errata-metrics` and :ref:`ch-fig1` to :ref:`ch-fig4`.
"""
from __future__ import annotations

import math

from . import _checks


def _outward(x, sig, up: bool) -> str:
    x = float(x)
    sig = _checks.positive_int(sig, "sig")
    if not math.isfinite(x):
        raise ValueError(f"x must be a finite number, got {x!r}")
    if x == 0:
        return "0"
    step = 10.0 ** (math.floor(math.log10(abs(x))) - sig + 1)
    rounded = (math.ceil(x / step) if up else math.floor(x / step)) * step
    if step >= 1:  # a whole number: written out (1300, 100), never as 1.3e+03 or 1e+02
        return f"{rounded:.0f}"
    return f"{rounded:.{sig}g}"


def round_up(x, sig: int = 2) -> str:
    """``x`` rounded up to ``sig`` significant figures, as text: a true "at most x" (``float(text) >= x``)."""
    return _outward(x, sig, up=True)


def round_down(x, sig: int = 2) -> str:
    """``x`` rounded down to ``sig`` significant figures, as text: a true "at least x" (``float(text) <= x``)."""
    return _outward(x, sig, up=False)
