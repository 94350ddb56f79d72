"""The labels of the chapters' tables, with their math typeset as in the prose.

A table that a code cell shows (a pandas ``Styler``) reaches the page as raw HTML, which MyST does not parse:
``$...$`` in a row or column label stays a literal dollar sign, since the page's MathJax reads only
``\\(...\\)`` and only inside elements of class ``math`` (the configuration myst-parser gives it).
:func:`math_label` writes a label as Sphinx writes inline math in the prose, so that a table's header is
typeset as the sentence that names it.  Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`,
:ref:`ch-lemma-a1` and :ref:`ch-lemma-a2`.
"""
from __future__ import annotations

import html

#: The element Sphinx puts around inline math, which the page's MathJax typesets.
_MATH = '<span class="math notranslate nohighlight">\\({}\\)</span>'


def math_label(label: str) -> str:
    """A table label written with ``$...$`` for its math, as the chapters' prose writes it, as HTML.

    Each ``$...$`` becomes the inline-math element of the page; the text around it and the TeX inside it are
    HTML-escaped (``<``, ``&``), so that the browser hands MathJax the characters written.  A label without a
    ``$`` comes back escaped and otherwise unchanged.  Used in :ref:`ch-thm41`, :ref:`ch-thm42`, :ref:`ch-thm43`,
    :ref:`ch-lemma-a1` and :ref:`ch-lemma-a2`.
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
