"""The chapters' tables: their labels, with their math typeset as in the prose, their cells as written, and the
names a table lists.

A table that a code cell shows (a pandas ``Styler``) reaches the page as raw HTML, which MyST does not parse:
``$...$`` in a row or column label stays a literal dollar sign, since the page's MathJax reads only
``\\(...\\)`` and only inside elements of class ``math`` (the configuration myst-parser gives it).
:func:`math_label` writes a label as Sphinx writes inline math in the prose, so that a table's header is
typeset as the sentence that names it (used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`,
:ref:`ch-lemma-a1`, :ref:`ch-lemma-a2`, :ref:`ch-engine`, :ref:`ch-fig1` to :ref:`ch-fig4`,
:ref:`ch-figures-summary` and :ref:`ch-minority`); :func:`styled` makes a frame such a table, its cells written
by the formats a chapter gives.  :func:`first_column_names` reads back the names that a markdown table's first
column lists, so that a table written by hand can be checked against the list it documents.
"""
from __future__ import annotations

import html
import re
from typing import Callable, Mapping

#: The element Sphinx puts around inline math, which the page's MathJax typesets.
_MATH = '<span class="math notranslate nohighlight">\\({}\\)</span>'

#: A markdown table's delimiter row, the second line of the table: ``| --- | :---: |``.
_DELIMITER = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


def math_label(label: str) -> str:
    """A table label written with ``$...$`` for its math, as the chapters' prose writes it, as HTML.

    Each ``$...$`` becomes the inline-math element of the page; the text around it and the TeX inside it are
    HTML-escaped (``<``, ``&``), so that the browser hands MathJax the characters written.  A label without a
    ``$`` comes back escaped and otherwise unchanged.  Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`,
    :ref:`ch-lemma-a1`, :ref:`ch-lemma-a2`, :ref:`ch-engine`, :ref:`ch-fig1` to :ref:`ch-fig4`,
    :ref:`ch-figures-summary` and :ref:`ch-minority`.
    """
    if not isinstance(label, str):
        raise ValueError(f"label must be a string, got {type(label).__name__}")
    pieces = label.split("$")
    if len(pieces) % 2 == 0:
        raise ValueError(f"label must pair every $ that opens math with one that closes it, got {label!r}")
    out = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            out.append(html.escape(piece, quote=False))
            continue
        if not piece.strip():
            raise ValueError(f"label must hold TeX between each pair of $, got {label!r}")
        if "\\(" in piece or "\\)" in piece:
            raise ValueError(f"label must hold no \\( or \\) inside its math, which would end it early, got {label!r}")
        out.append(_MATH.format(html.escape(piece, quote=False)))
    return "".join(out)


def styled(frame, formats: Mapping[str, str | Callable] | None = None, labels: Mapping[str, str] | None = None,
           caption: str | None = None, index: bool = False):
    """``frame`` (a pandas DataFrame) as a chapter's table, a pandas ``Styler``: each column named in ``formats``
    written by its format (a format string such as ``"{:.6f}"``, or a function of the value, as
    ``Styler.format`` takes them; a column not named there as pandas writes it), every column label typeset by
    :func:`math_label` from its text in ``labels`` (``$...$`` for math; a label not there is the column's own
    name), and ``caption`` above the table.  The index is hidden unless ``index``, which shows it with its labels
    typeset as the columns'.  Formats and labels of columns the frame lacks are left unused, so that one mapping
    serves the several tables cut from one frame.  Used in :ref:`ch-thm41`, :ref:`ch-thm42`,
    :ref:`ch-thm43`, :ref:`ch-lemma-a1`, :ref:`ch-engine` and :ref:`ch-errata-metrics`.

    ValueError naming ``frame`` unless it is a DataFrame, ``formats`` or ``labels`` unless each is a mapping (or
    None), ``caption`` unless it is a string (or None), and ``index`` unless it is True or False."""
    import pandas as pd  # the theory modules that import this one need no pandas

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    for name, given in (("formats", formats), ("labels", labels)):
        if given is not None and not isinstance(given, Mapping):
            raise ValueError(f"{name} must be a mapping from column names (or None), got {type(given).__name__}")
    if caption is not None and not isinstance(caption, str):
        raise ValueError(f"caption must be a string or None, got {type(caption).__name__}")
    if not isinstance(index, bool):
        raise ValueError(f"index must be True or False, got {index!r}")
    formats, labels = dict(formats or {}), dict(labels or {})
    shown = frame.style.format(formats)  # pandas leaves a format of a column the frame lacks unused

    def typeset(label):
        return math_label(labels.get(label, str(label)))

    shown = shown.format_index(typeset, axis="columns")
    shown = shown.format_index(typeset, axis="index") if index else shown.hide(axis="index")
    return shown if caption is None else shown.set_caption(caption)


def first_column_names(text: str) -> list[str]:
    """The names in the first column of the first markdown table in ``text``, in the order of its rows.

    The table starts at the first line beginning with ``|`` that a delimiter row (``| --- | --- |``) follows: that
    line is its header, and the lines beginning with ``|`` after the delimiter are its body.  A name is a word
    (letters, digits, underscores) in backticks; the first cell of each body row names one or more, as
    ``| `nc1`, `nc2_w` | ... |`` does.  The tables of the columns of a run's ``history.csv``
    (``nclib.runs.HISTORY_COLUMNS``) in the training chapter and ``results/README.md`` are read this way.
    ``text`` that is not a string, holds no table, or has a body row whose first cell names nothing is refused
    with a ValueError naming ``text``.  Used in :ref:`ch-train`; used by ``tests/test_train.py``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string holding a markdown table, got {type(text).__name__}")
    lines = [line.strip() for line in text.splitlines()]
    for start, line in enumerate(lines):
        if line.startswith("|") and start + 1 < len(lines) and _DELIMITER.match(lines[start + 1]):
            break
    else:
        raise ValueError("text must hold a markdown table (a header row, then a delimiter row such as | --- |)")
    names = []
    for row in lines[start + 2:]:
        if not row.startswith("|"):
            break
        found = re.findall(r"`(\w+)`", row[1:].split("|", 1)[0])
        if not found:
            raise ValueError(f"text must name something in backticks in the first cell of each body row, got {row!r}")
        names.extend(found)
    return names
