"""Unit tests of nclib.errata: the entries of the Errata part and their statuses, read from its pages."""
import pytest

from nclib import errata


def pages(folder, **texts):
    """The four Errata pages in ``folder``, each with the text given for it (by its stem) or a title alone."""
    for name in errata.PAGES:
        stem = name.removesuffix(".md")
        (folder / name).write_text(texts.get(stem, f"# {stem}\n"), encoding="utf-8")
    return folder


@pytest.mark.parametrize("label", errata.STATUSES)
def test_status_is_the_label_the_heading_ends_with(label):
    assert errata.status(f"Theorem 4.3: a constant lacks a factor $N$ ({label})") == label
    assert errata.status(f"Section 5: a caption ({label})  ") == label  # trailing blanks are not part of it


@pytest.mark.parametrize("title", [
    "Theorem 4.3: a constant lacks a factor $N$",  # no status
    "Theorem 4.3 (mistake): a constant lacks a factor $N$",  # a status, but not at the end
    "Theorem 4.3: a constant (a mistake)",  # not one of the labels
    "Theorem 4.3: a constant (Mistake)",  # the labels are lower-case
])
def test_a_heading_without_one_status_at_its_end_is_refused_by_name(title):
    with pytest.raises(ValueError, match="^title must end with one status"):
        errata.status(title)
    with pytest.raises(ValueError, match="^title must be the text"):
        errata.status(None)


def test_headings_are_read_from_the_four_pages_in_order(tmp_path):
    pages(tmp_path,
          index="# Errata\n\n## The entries\n\n(erratum-T8)=\n## T8. The abstract: a word (mistake)\n\n"
                "## M5. A caption (mistake)\n",
          theory="## T1. Theorem 4.3: the constant (possibly an OCR artefact)\n### T9. a sub-heading, not an entry\n"
                 "text ## T10. not a heading\n## T2. Theorem 4.2: a word (ambiguous)\n",
          metrics="## M1. NC3 is 0/0 (ill-posed definition)\n## M12. NC1 (limit of a standard metric)\n")
    found = errata.headings(tmp_path)
    assert list(found) == ["T8", "M5", "T1", "T2", "M1", "M12"]
    assert found["T1"] == "Theorem 4.3: the constant (possibly an OCR artefact)"
    assert errata.statuses(str(tmp_path)) == {"T8": "mistake", "M5": "mistake", "T1": "possibly an OCR artefact",
                                              "T2": "ambiguous", "M1": "ill-posed definition",
                                              "M12": "limit of a standard metric"}


def test_an_entry_without_a_status_is_refused_naming_the_entry(tmp_path):
    pages(tmp_path, spectrum="## S1. Theorem 4.4: the roots (mistake)\n## S2. Theorem B.1: a sign\n")
    assert errata.headings(tmp_path) == {"S1": "Theorem 4.4: the roots (mistake)", "S2": "Theorem B.1: a sign"}
    with pytest.raises(ValueError, match="^entry S2: title must end with one status"):
        errata.statuses(tmp_path)


def test_an_entry_numbered_twice_or_a_missing_page_is_refused(tmp_path):
    pages(tmp_path, theory="## T1. one (mistake)\n", metrics="## T1. the same number (typo)\n")
    with pytest.raises(ValueError, match="^folder has entry T1 twice"):
        errata.headings(tmp_path)
    (tmp_path / "metrics.md").unlink()
    with pytest.raises(ValueError, match="^folder must hold the Errata pages"):
        errata.statuses(tmp_path)
    for bad in ("", 3, b"book/errata"):
        with pytest.raises(ValueError, match="^folder must be the path of a folder"):
            errata.headings(bad)


def test_entry_pages_name_the_page_that_holds_each_entry(tmp_path):
    pages(tmp_path, index="## T8. The abstract: a word (mistake)\n## M5. A caption (mistake)\n",
          theory="## T1. Theorem 4.3: the constant (typo)\n## T9. Theorem 4.1: a power (ambiguous)\n",
          spectrum="## S1. Theorem 4.4: the roots (mistake)\n", metrics="## M1. NC3 is 0/0 (ill-posed definition)\n")
    assert errata.entry_pages(tmp_path) == {"T8": "index.md", "M5": "index.md", "T1": "theory.md",
                                            "T9": "theory.md", "S1": "spectrum.md", "M1": "metrics.md"}
    (tmp_path / "spectrum.md").write_text("## T1. the same number again (typo)\n", encoding="utf-8")
    with pytest.raises(ValueError, match="^folder has entry T1 twice"):
        errata.entry_pages(tmp_path)


def test_statuses_of_one_topic_leave_the_headings_of_the_others_unread(tmp_path):
    pages(tmp_path, index="## T8. The abstract: a word, no status\n## M5. A caption (mistake)\n",
          theory="## T1. Theorem 4.3: the constant (typo)\n",
          spectrum="## S1. Theorem 4.4: the roots (mistake)\n## S2. Theorem B.1: a sign (possibly an OCR artefact)\n",
          metrics="## M1. NC3 is 0/0 (ill-posed definition)\n")
    assert errata.statuses(tmp_path, topic="S") == {"S1": "mistake", "S2": "possibly an OCR artefact"}
    assert errata.statuses(tmp_path, topic="M") == {"M5": "mistake", "M1": "ill-posed definition"}
    with pytest.raises(ValueError, match="^entry T8: title must end with one status"):
        errata.statuses(tmp_path, topic="T")
    with pytest.raises(ValueError, match="^entry T8: title must end with one status"):
        errata.statuses(tmp_path)
    for bad in ("s", "X", "TS", ["S"], 1):
        with pytest.raises(ValueError, match="^topic must be None or one of"):
            errata.statuses(tmp_path, topic=bad)
