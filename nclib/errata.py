"""The entries of the book's Errata part as its pages state them: each entry's heading and its status.

The Errata part lists one entry per defect of the paper, numbered by topic (T: the theorems, S: the spectrum of
Y-bar, M: the metrics and the experiments).  The heading of an entry, ``## T1. Theorem 4.3: ... (status)``, ends
with its status, one of :data:`STATUSES`, the labels that the part's first page defines.  A chapter that names
entries and their statuses, or the pages that hold them, in its prose reads them here and asserts them, so that an
entry whose status or page changes fails the build at every sentence that states the old one.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import ROOT, _checks

#: The statuses an entry's heading ends with, in the order of the Errata part's first page: four on how the
#: print is wrong (a legible defect, a slip of notation, a glyph the OCR may have mangled, words read two ways),
#: then two, for M entries only, on a metric printed as meant whose definition is at fault.
STATUSES = ("mistake", "typo", "possibly an OCR artefact", "ambiguous", "ill-posed definition",
            "limit of a standard metric")

#: The pages of the Errata part, in the folder ``book/errata``: the first page holds two short entries (T8, M5).
PAGES = ("index.md", "theory.md", "spectrum.md", "metrics.md")

#: The letters that number the entries, one per topic: the theorems, the spectrum of Y-bar, the metrics.
TOPICS = ("T", "S", "M")

#: The folder of the Errata part.
FOLDER = ROOT / "book" / "errata"

_HEADING = re.compile(r"^## ([TSM][1-9][0-9]*)\. (.*\S)\s*$", flags=re.M)


def status(title: str) -> str:
    """The status that an entry's heading ``title`` (the text after ``T1. ``) ends with, ``(mistake)`` and so on:
    exactly one of :data:`STATUSES`, else a ValueError naming ``title``.  Used in :ref:`ch-intro`,
    :ref:`ch-errata` and :ref:`ch-spectrum`."""
    if not isinstance(title, str):
        raise ValueError(f"title must be the text of an entry's heading (a str), got {title!r}")
    found = [label for label in STATUSES if title.rstrip().endswith(f"({label})")]
    if len(found) != 1:
        raise ValueError(f"title must end with one status in parentheses, one of {list(STATUSES)}, got {title!r}")
    return found[0]


def _entries(folder) -> list[tuple[str, str, str]]:
    """Every entry of the Errata part as (its page's name, its number, its heading after the number), in page
    order; a missing page or an entry numbered twice is refused with a ValueError naming ``folder``."""
    folder = FOLDER if folder is None else Path(_checks.path_arg(folder, "folder", "the path of a folder"))
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for name in PAGES:
        page = folder / name
        if not page.is_file():
            raise ValueError(f"folder must hold the Errata pages {list(PAGES)}; {str(page)!r} is not a file")
        for entry, title in _HEADING.findall(page.read_text(encoding="utf-8")):
            if entry in seen:
                raise ValueError(f"folder has entry {entry} twice ({str(page)!r} and an earlier page)")
            seen.add(entry)
            out.append((name, entry, title))
    return out


def headings(folder=None) -> dict[str, str]:
    """Every entry of the Errata part: its number (``"T1"``) -> its heading after the number, read from the
    :data:`PAGES` in ``folder`` (default :data:`FOLDER`), in page order.  A page that is missing, or an entry
    numbered twice, is refused with a ValueError naming ``folder``.  Used in :ref:`ch-intro`,
    :ref:`ch-errata` and :ref:`ch-spectrum`."""
    return {entry: title for _, entry, title in _entries(folder)}


def entry_pages(folder=None) -> dict[str, str]:
    """Every entry of the Errata part: its number -> the name of the page of :data:`PAGES` that holds it
    (``"theory.md"``), in page order, read as :func:`headings` reads them.  Used in :ref:`ch-errata`,
    :ref:`ch-errata-theory` and :ref:`ch-errata-metrics`."""
    return {entry: name for name, entry, _ in _entries(folder)}


def statuses(folder=None, topic=None) -> dict[str, str]:
    """Every entry of the Errata part: its number -> the status its heading ends with (:func:`headings`,
    :func:`status`); a heading without exactly one status is refused with a ValueError naming the entry.  With
    ``topic``, one of :data:`TOPICS`, only the entries numbered with that letter are read, so that a heading of
    another topic is not parsed.  Used in :ref:`ch-intro`, :ref:`ch-errata`, :ref:`ch-errata-theory`,
    :ref:`ch-errata-metrics`, :ref:`ch-metrics` and :ref:`ch-spectrum`."""
    if topic is not None and (not isinstance(topic, str) or topic not in TOPICS):
        raise ValueError(f"topic must be None or one of {list(TOPICS)}, got {topic!r}")
    out = {}
    for entry, title in headings(folder).items():
        if topic is not None and entry[0] != topic:
            continue
        try:
            out[entry] = status(title)
        except ValueError as exc:
            raise ValueError(f"entry {entry}: {exc}") from None
    return out
