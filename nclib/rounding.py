"""Numbers as the chapters write them: never in a program's E-notation.

:func:`written` writes a number to a few significant figures the way the prose and the tables state it: a
decimal (``0.058``, ``18``), a whole number with thousands separators (``13,000``), or, below 10^-4 and from
10^6 on, a power of ten (``6.4 × 10⁻⁷``, ``4.9 × 10⁶``, and ``10⁻⁵`` for a mantissa of 1), its spaces
non-breaking so that a line never ends inside it; :func:`number` reads such text back, so that a hidden cell can
assert a claim about the very number it glued, and :func:`as_tex` writes it in TeX, for an equation that holds it.

A glued "at most" or "at least" stays true of the unrounded value: it is rounded outward (up for an upper
bound, down for a lower one), and the book holds one rule for how.  A bound on a number that the book also
writes to nearest (a table's cell, or a run's own value in a sentence), or over several numbers any of which
it writes so, is written by :func:`at_most` or :func:`at_least` at the significant figures of that writing (the
chapter's own table where it has one).  These add figures beyond ``sig`` where the plain outward rounding would
read as another number, so that the bound, read at those figures, is the number written there: "at least
4.928 × 10⁶" beside a table's 4.93 × 10⁶, never 4.92 × 10⁶; "at most 249.43" beside 249, never 250.  Only a
bound on numbers that the book writes nowhere to nearest is rounded outward plainly, by :func:`round_up` and
:func:`round_down`, at the figures its sentence needs.  Either way ``zeros`` keeps the trailing zeros of the
figures written (0.013 to 0.020; "at least 31.0" beside 31.0), so that the bounds of a range read at one
precision where their values allow it; where one of them needs a figure more (10.9 to 249.43) it keeps it, for
a bound that reads as another number than the table's contradicts the table; :func:`significant_figures` gives
the figures a table's cell shows, at which a bound beside it is written, and their ``like`` the cell itself, whose
notation the bound takes ("at least 6.278 × 10⁴" beside a column's 6.28 × 10⁴, not "at least 62,780").

Used in the chapters :ref:`ch-setting`, :ref:`ch-engine`, :ref:`ch-train`, :ref:`ch-sweeps`, :ref:`ch-metrics`,
:ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`, :ref:`ch-lemma-a1`, :ref:`ch-lemma-a2`, :ref:`ch-spectrum`,
:ref:`ch-minority`, :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`, :ref:`ch-errata-theory` and
:ref:`ch-errata-metrics`, and by ``nclib.sweepcli`` (the table a sweep prints) and the package ``nclib.figures``.
"""
from __future__ import annotations

import decimal
import math
import re

import numpy as np

from . import _checks

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_PLAIN = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
#: From here down (in absolute value) a number is written as a power of ten; from LARGE on as well.
SMALL, LARGE = 1e-4, 1e6
#: Beside a number from LARGE on, a table column (:func:`written_column`) writes the numbers from here on as powers
#: of ten too, and those below it as decimals: 16.3 and 144 stay decimals beside 1.50 × 10⁶.
COLUMN_LARGE = 1e4
_POWER = re.compile(r"(-?)(?:([0-9]+(?:\.[0-9]+)?)[ \u00a0]×[ \u00a0])?10([⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
#: Between a mantissa and its power of ten: no-break spaces, so that "6.4 × 10⁻⁷" stays on one line.
TIMES = "\u00a0×\u00a0"
_DECIMAL = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")


def _finite(x) -> float:
    if isinstance(x, (bool, np.bool_, str, bytes)):
        raise ValueError(f"x must be a finite number, got {x!r}")
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"x must be a finite number, got {x!r}") from None
    except OverflowError:  # an int or Fraction beyond float64's range, 10**400
        raise ValueError("x must be a finite number, got one beyond float64's range (1.8e+308)") from None
    if not math.isfinite(x):
        raise ValueError(f"x must be a finite number, got {x!r}")
    return x


def _powered(mag: decimal.Decimal) -> bool:
    return mag < decimal.Decimal(str(SMALL)) or mag >= decimal.Decimal(str(LARGE))


def _text(d: decimal.Decimal, power: bool | None = None, zeros: bool = False) -> str:
    """The decimal ``d`` (already rounded to its significant figures) as the chapters write it; ``power``: as a
    power of ten or not (None: by its size); ``zeros``: keep the trailing zeros of its significant figures."""
    if d == 0:
        return "0"
    sign, mag = ("-" if d < 0 else ""), abs(d)
    if _powered(mag) if power is None else power:
        e = mag.adjusted()
        mant = mag.scaleb(-e) if zeros else mag.scaleb(-e).normalize()
        power_text = f"10{str(e).translate(_SUPERSCRIPT)}"
        return f"{sign}{power_text}" if mant == 1 and not zeros else f"{sign}{mant:f}{TIMES}{power_text}"
    if zeros and mag.as_tuple().exponent < 0:  # 5.00 of three figures stays 5.00
        return f"{sign}{mag:f}"
    mag = mag.normalize()
    if mag == mag.to_integral_value():
        return f"{sign}{int(mag):,}"
    return f"{sign}{mag:f}"


def _significant(sig) -> int:
    """``sig`` significant figures: 1 to 17, the most a float64 holds (ValueError naming ``sig`` otherwise)."""
    sig = _checks.positive_int(sig, "sig")
    if sig > 17:
        raise ValueError(f"sig must be at most 17 (the significant figures of a float64), got {sig}")
    return sig


def _rounded(x, sig, rounding) -> decimal.Decimal:
    x = _finite(x)
    sig = _significant(sig)
    if x == 0:
        return decimal.Decimal(0)
    # the shortest decimal that reads back as x (repr): rounded outward, it reads back on x's side (float() is
    # monotone), and a value such as 1e-05 is not pushed to 1.1e-05 by the binary digits beyond its repr
    return _quantized(decimal.Decimal(repr(x)), sig, rounding)


def _quantized(d: decimal.Decimal, sig: int, rounding) -> decimal.Decimal:
    """The nonzero decimal ``d`` rounded to ``sig`` significant figures."""
    q = decimal.Decimal(1).scaleb(d.adjusted() - sig + 1)
    r = d.quantize(q, rounding=rounding)
    if r.adjusted() > d.adjusted():  # 9.96 -> 10.0: one figure more than asked for; drop it
        r = r.quantize(q.scaleb(1), rounding=rounding)
    return r


def _round(x, sig, rounding, zeros=False) -> str:
    if not isinstance(zeros, (bool, np.bool_)):
        raise ValueError(f"zeros must be True or False, got {zeros!r}")
    return _text(_rounded(x, sig, rounding), zeros=bool(zeros))


def written(x, sig: int = 2, zeros: bool = False) -> str:
    """``x`` to ``sig`` significant figures (rounded to nearest, ties to even) as the chapters write it:
    ``0.058``, ``13,000``, ``6.4 × 10⁻⁷``, ``10⁻⁵``; trailing zeros dropped, or kept with ``zeros=True`` (``3.30``
    to three figures, as :func:`written_column` writes a column of that one number).  :func:`number` reads it
    back.  ValueError naming ``zeros`` unless it is True or False."""
    return _round(x, sig, decimal.ROUND_HALF_EVEN, zeros)


def written_column(values, sig: int = 2, uniform: bool = False) -> list[str]:
    """The numbers of one table column, each to ``sig`` significant figures (as :func:`written`) but in one
    notation on each side of the column: where a value needs a power of ten, the values on its side of 1 are
    written as powers, those below 0.1 when one is below 10^-4 (``1.7 × 10⁻⁶`` beside ``4.8 × 10⁻²``), those from
    10^4 (:data:`COLUMN_LARGE`) on when one is from 10^6 on (``9.5 × 10⁵`` and ``6.3 × 10⁴`` beside ``1.0 × 10⁶``);
    the others, and always those from 0.1 to below 10^4, are decimals (``0.61``, ``3.2``, ``16``, ``1,400``: no
    power of ten on a number a reader takes in at a glance).  Each keeps the trailing zeros of its significant
    figures (``0.20`` beside ``0.22``), so that the column reads at one precision.  ``uniform``: where any value
    needs a power of ten, write every nonzero value as one (``6.1 × 10⁻¹`` and ``3.2 × 10⁰`` beside ``1.7 × 10⁻⁶``
    and ``4.8 × 10⁻²``), for a column whose values span orders of magnitude on both sides of 0.1 and are compared
    by their powers; a column that needs none is written as without it.  :func:`number` reads each back.
    ValueError naming ``uniform`` unless it is True or False."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"values must be a list of numbers, got {values!r}")
    if not isinstance(uniform, (bool, np.bool_)):
        raise ValueError(f"uniform must be True or False, got {uniform!r}")
    sig = _significant(sig)
    rounded = [_rounded(v, sig, decimal.ROUND_HALF_EVEN) for v in values]
    small = any(r != 0 and abs(r) < decimal.Decimal(str(SMALL)) for r in rounded)
    large = any(abs(r) >= decimal.Decimal(str(LARGE)) for r in rounded)

    column_large = decimal.Decimal(str(COLUMN_LARGE))

    def power(r: decimal.Decimal) -> bool:
        if r != 0 and uniform and (small or large):
            return True
        return r != 0 and ((small and abs(r).adjusted() < -1) or (large and abs(r) >= column_large))

    return [_text(r, power=power(r), zeros=True) for r in rounded]


def round_up(x, sig: int = 2, zeros: bool = False) -> str:
    """``x`` rounded up to ``sig`` significant figures, written as by :func:`written`: a true "at most x"
    (``number(text) >= x``).  ``zeros``: keep the trailing zeros of the significant figures (``round_up(0.0192, 2,
    zeros=True)`` is ``0.020``, beside a lower bound ``0.013``), as :func:`written_column` does, so that the bounds
    of a range or a list read at one precision.  ValueError naming ``zeros`` unless it is True or False."""
    return _round(x, sig, decimal.ROUND_CEILING, zeros)


def round_down(x, sig: int = 2, zeros: bool = False) -> str:
    """``x`` rounded down to ``sig`` significant figures, written as by :func:`written`: a true "at least x"
    (``number(text) <= x``).  ``zeros`` as for :func:`round_up` (``round_down(1.00008, 3, zeros=True)`` is
    ``1.00``)."""
    return _round(x, sig, decimal.ROUND_FLOOR, zeros)


def _reads_as(bound: decimal.Decimal, near: decimal.Decimal, sig: int) -> bool:
    """Whether ``bound``, rounded to ``sig`` significant figures of its own, is ``near``, under ties to even and
    ties away alike (a reader who rounds 2.305 to 2.31 must not meet 2.30 elsewhere; 9.9 is not 10 to two
    figures, 9.99 is)."""
    if bound == 0 or near == 0:
        return bound == near
    return all(_quantized(bound, sig, r) == near for r in (decimal.ROUND_HALF_EVEN, decimal.ROUND_HALF_UP))


def _like_power(like) -> bool | None:
    """Whether ``like``, a number as the chapters write it, is written as a power of ten (None for no ``like``);
    ValueError naming ``like`` for anything else."""
    if like is None:
        return None
    try:
        number(like)  # refuses anything but text too
    except ValueError:
        raise ValueError(f"like must be a number as the chapters write it (0.058, 6.28 × 10⁴), got {like!r}") from None
    return _POWER.fullmatch(like) is not None


def _bound(x, sig, rounding, zeros, like) -> str:
    if not isinstance(zeros, (bool, np.bool_)):
        raise ValueError(f"zeros must be True or False, got {zeros!r}")
    power = _like_power(like)
    x = _finite(x)
    sig = _significant(sig)
    near = _rounded(x, sig, decimal.ROUND_HALF_EVEN)
    # at 17 figures the bound is x's own shortest decimal, which reads as near unless that decimal is itself a tie
    # at sig figures (2.305 to three: 2.30 by ties to even, 2.31 by ties away), which no bound avoids: x it is
    for extra in range(sig, 18):
        bound = _rounded(x, extra, rounding)
        if _reads_as(bound, near, sig):
            return _text(bound, power=power, zeros=bool(zeros))
    return _text(_rounded(x, 17, rounding), power=power)


def at_most(x, sig: int = 2, zeros: bool = False, like: str | None = None) -> str:
    """``x`` rounded up (a true "at most x": ``number(text) >= x``) to ``sig`` significant figures, or to more
    where that rounding would not read as :func:`written` writes ``x`` (``at_most(0.14007, 2)`` is ``0.141``, not
    ``0.15``, beside ``written(0.14007, 2) == "0.14"``): the bound and the number's own restatements agree.  A
    number whose shortest decimal is a tie at ``sig`` figures (2.305 to three) is written whole, as its own bound.
    ``zeros``: keep the trailing zeros of the figures written, as :func:`written_column` does (``at_most(1.7452,
    3, zeros=True)`` is ``1.75``; ``at_most(0.0199993, 2, zeros=True)`` is ``0.020``, beside a table's ``0.020``).
    ``like``: the number the bound stands beside, as the chapters write it (a table's cell, :func:`written_column`):
    the bound takes its notation, a power of ten where ``like`` is one and a decimal where it is not, so that the
    two read alike (``at_least(810_735, 3, like="8.11 × 10⁵")`` is ``8.107 × 10⁵``, not ``810,700``); None: the
    notation :func:`written` gives the bound by its size.  ValueError naming ``zeros`` unless it is True or False,
    and ``like`` unless it is None or a number as the chapters write it (:func:`number`)."""
    return _bound(x, sig, decimal.ROUND_CEILING, zeros, like)


def at_least(x, sig: int = 2, zeros: bool = False, like: str | None = None) -> str:
    """``x`` rounded down (a true "at least x": ``number(text) <= x``) to ``sig`` significant figures, or to more
    where that rounding would not read as :func:`written` writes ``x`` (``at_least(4928822, 3)`` is
    ``4.928 × 10⁶``, not ``4.92 × 10⁶``, beside ``written(4928822, 3) == "4.93 × 10⁶"``).  ``zeros`` as for
    :func:`at_most` (``at_least(31.032, 3, zeros=True)`` is ``31.0``, beside a table's ``31.0``), and ``like``
    (``at_least(62_786, 3, zeros=True, like="6.28 × 10⁴")`` is ``6.278 × 10⁴``, beside a table's ``6.28 × 10⁴``)."""
    return _bound(x, sig, decimal.ROUND_FLOOR, zeros, like)


def number(text: str) -> float:
    """The number that :func:`written`, :func:`round_up` or :func:`round_down` wrote as ``text``
    (``"6.4 × 10⁻⁷"``, ``"10⁻⁵"``, ``"13,000"``, ``"0.058"``; ordinary or no-break spaces around the ×);
    ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    m = _POWER.fullmatch(text)
    if m:
        return float(f"{m.group(1)}{m.group(2) or '1'}e{m.group(3).translate(_PLAIN)}")
    if _DECIMAL.fullmatch(text):
        return float(text.replace(",", ""))
    raise ValueError(f"text must be a number as the chapters write it (0.058, 13,000, 6.4 × 10⁻⁷), got {text!r}")


def _number_text(text) -> None:
    """ValueError naming ``text`` unless it is a string that is a number as the chapters write it (:func:`number`)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    try:
        number(text)
    except ValueError:
        raise ValueError(f"text must be a number as the chapters write it (0.058, 13,000, 6.4 × 10⁻⁷), got "
                         f"{text!r}") from None


def as_tex(text: str) -> str:
    """The number ``text``, as the chapters write it (:func:`written`, :func:`number`), in TeX for inline math, so
    that a number glued into an equation is typeset with its symbols in one font and the line does not break
    inside the equation: ``"0.0001"`` is ``0.0001``, ``"10⁻⁵"`` is ``10^{-5}``, ``"6.4 × 10⁻⁷"`` is
    ``6.4 \\times 10^{-7}``, ``"1.5 × 10³"`` is ``1.5 \\times 10^{3}``, and ``"13,000"`` is ``13{,}000`` (a bare
    comma is punctuation in TeX's math, spaced after).  ValueError naming ``text`` unless it is a string that is a
    number as the chapters write it.  Used in :ref:`ch-fig1`, :ref:`ch-fig2`, :ref:`ch-fig3` and :ref:`ch-fig4`,
    for the decays of the closest public code in (4.3)'s normalization."""
    _number_text(text)
    power = _POWER.fullmatch(text)
    if power is None:
        return text.replace(",", "{,}")
    sign, mantissa, exponent = power.group(1), power.group(2), power.group(3).translate(_PLAIN)
    return f"{sign}{mantissa} \\times 10^{{{exponent}}}" if mantissa else f"{sign}10^{{{exponent}}}"


def reads_as(bound: str, text: str, sig: int) -> bool:
    """Whether the glued bound ``bound`` (as :func:`at_least` or :func:`at_most` writes it), rounded to nearest to
    ``sig`` significant figures, is the number ``text`` writes to those figures (a table's cell, by :func:`written`
    or :func:`written_column`), under ties to even and ties away alike: the book's rule for a bound beside the same
    number written to nearest, which it must not contradict.  ``reads_as("4.928 × 10⁶", "4.93 × 10⁶", 3)`` and
    ``reads_as("31", "31.0", 3)`` hold; ``reads_as("4.92 × 10⁶", "4.93 × 10⁶", 3)`` does not, nor does
    ``reads_as("2.305", "2.30", 3)`` (2.31 to a reader who rounds ties away).  ValueError naming ``bound`` or
    ``text`` unless each is a number as the chapters write it (:func:`number`), and ``sig`` unless 1 to 17.
    Chapters: :ref:`ch-engine`, :ref:`ch-sweeps`, :ref:`ch-metrics`, :ref:`ch-thm41`, :ref:`ch-thm42`,
    :ref:`ch-thm43`, :ref:`ch-lemma-a1`, :ref:`ch-spectrum`, :ref:`ch-minority`, :ref:`ch-fig1`, :ref:`ch-fig4`,
    :ref:`ch-figures-summary` and :ref:`ch-errata-metrics`."""
    read = {}
    for name, value in (("bound", bound), ("text", text)):
        try:
            read[name] = decimal.Decimal(repr(number(value)))
        except ValueError:
            raise ValueError(f"{name} must be a number as the chapters write it (0.058, 13,000, 6.4 × 10⁻⁷), got "
                             f"{value!r}") from None
    return _reads_as(read["bound"], read["text"], _significant(sig))


def significant_figures(text: str) -> int:
    """The significant figures that ``text``, a number as the chapters write it (:func:`number`), shows: the
    figures at which a bound beside it is written (:func:`at_most`, :func:`at_least`) and read (:func:`reads_as`)
    when the cell is all a chapter has, a table's ratio or percentage as printed.  Its digits from the first that is
    not 0, the sign and the thousands separators not counted: ``"0.058"`` shows 2, ``"1.740"`` 4, ``"-1.2"`` 2,
    ``"1,234.5"`` 5.  A power of ten shows its mantissa's (``"6.4 × 10⁻⁷"`` 2, ``"1.0 × 10⁶"`` 2, ``"10⁻⁵"``
    1).  The trailing zeros of a whole number are not counted: ``"13,000"`` shows 2, the fewest it may have been
    written to (:func:`written` writes 12,987 to two figures so), at which a bound can always read as it.  A zero
    shows the figures after its point, and one where it has none (``"0.0"`` 1, ``"0.00"`` 2, ``"0"`` 1), so
    that the answer is always a ``sig`` the bounds accept.  ValueError naming ``text`` unless it is a string that
    is a number as the chapters write it.  Used in :ref:`ch-engine`, :ref:`ch-thm43` and :ref:`ch-minority`."""
    _number_text(text)
    power = _POWER.fullmatch(text)
    figures = (power.group(2) or "1") if power else text.lstrip("-")
    whole, point, after = figures.replace(",", "").partition(".")
    if not point:  # a whole number: its trailing zeros may be a rounding's
        return max(len(whole.strip("0")), 1)
    return len((whole + after).lstrip("0")) or len(after)
