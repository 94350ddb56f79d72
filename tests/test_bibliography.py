"""_ext/author_year_labels.py: the bibliography's entries labelled as the text cites them, author and year."""
import importlib.util

import pytest
import yaml

import nclib

pybtex_database = pytest.importorskip("pybtex.database")


def _labels_module():
    spec = importlib.util.spec_from_file_location("author_year_labels", nclib.ROOT / "_ext" / "author_year_labels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _labels(bib: str) -> dict:
    labels = _labels_module()
    style = labels.AuthorYearPlainStyle()
    entries = style.sort(pybtex_database.parse_string(bib, "bibtex").entries.values())
    return {e.key: label for e, label in zip(entries, style.format_labels(entries))}


def test_an_entry_is_labelled_by_its_authors_and_year_as_a_parenthetical_citation_names_it():
    got = _labels("""
        @article{one, author = {Golub, Gene H.}, title = {A}, journal = {J}, year = {1973}}
        @article{two, author = {Tirer, Tom and Bruna, Joan}, title = {B}, journal = {J}, year = {2022}}
        @article{many, author = {Zhu, Zhihui and Ding, Tianyu and Zhou, Jinxin}, title = {C}, journal = {J},
                 year = {2021}}
        @article{accent, author = {Cand{\\`e}s, Emmanuel}, title = {D}, journal = {J}, year = {2010}}
    """)
    assert got == {"one": "Golub, 1973", "two": "Tirer and Bruna, 2022", "many": "Zhu et al., 2021",
                   "accent": "Candès, 2010"}


def test_entries_that_would_share_a_label_get_a_letter_each_in_the_bibliographys_order():
    got = _labels("""
        @article{first, author = {Zhu, Z. and Ding, T. and Zhou, J.}, title = {A}, journal = {J}, year = {2021}}
        @article{second, author = {Zhu, Z. and Li, X. and You, C.}, title = {B}, journal = {J}, year = {2021}}
        @article{other, author = {Zhu, Z.}, title = {C}, journal = {J}, year = {2021}}
    """)
    assert sorted([got["first"], got["second"]]) == ["Zhu et al., 2021a", "Zhu et al., 2021b"]
    assert got["other"] == "Zhu, 2021"


def test_the_book_loads_the_style_and_its_bibliography_uses_it():
    style = _labels_module().STYLE
    config = yaml.safe_load((nclib.ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"] == {"author_year_labels": "_ext/"}
    assert config["sphinx"]["config"]["bibtex_default_style"] == style
    assert config["sphinx"]["config"]["bibtex_reference_style"] == "author_year"
    assert f":style: {style}\n" in (nclib.ROOT / "book" / "references.md").read_text()
