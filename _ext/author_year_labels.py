"""The book's bibliography labelled as its text cites: author and year.

The chapters cite author-year (``bibtex_reference_style: author_year`` in ``_config.yml``: "Liu [2024]",
"[Dang et al., 2023]"), but pybtex's styles label a bibliography's entries by number ([1], [2], ...) or by
letters ([LZ24]), which a reader cannot match to a citation.  This Sphinx extension registers the pybtex style
``author_year_plain``: pybtex's plain style (its sorting and its entries) with each entry labelled as the
parenthetical citation names it, "Dang et al., 2023"; entries that would share a label get the letters a, b, ...
after the year, in the bibliography's order.  ``_config.yml`` loads it (``local_extensions``), and
``book/references.md``'s bibliography and ``bibtex_default_style`` name the style.
"""
from __future__ import annotations

import collections
import string

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import BasicAuthorYearParentheticalReferenceStyle
from sphinxcontrib.bibtex.style.template import join, year

#: The name under which the style is registered, for ``:style:`` and ``bibtex_default_style``.
STYLE = "author_year_plain"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels "Author, year", "A and B, year" or "A et al., year": the text of a parenthetical author-year
    citation of the entry (sphinxcontrib-bibtex's own template, so the two cannot drift apart), without its
    brackets; a label that two entries would share gets a letter per entry, in the order given."""

    def format_labels(self, sorted_entries):
        citation = BasicAuthorYearParentheticalReferenceStyle()
        template = join(sep=citation.author_year_sep)[citation.person.author_or_editor_or_title(full=False), year]
        labels = [template.format_data({"entry": e, "style": citation}).render_as("text") for e in sorted_entries]
        shared = {label for label, n in collections.Counter(labels).items() if n > 1}
        seen = collections.Counter()
        for label in labels:
            if label in shared:
                seen[label] += 1
                label += string.ascii_lowercase[seen[label] - 1]
            yield label


class AuthorYearPlainStyle(PlainStyle):
    """pybtex's plain style, its entries labelled by :class:`AuthorYearLabelStyle`."""

    default_label_style = AuthorYearLabelStyle


def setup(app):
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearPlainStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
