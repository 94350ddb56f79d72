"""The examples in nclib's docstrings run as written (doctest); `make test` runs only `pytest tests`, so they are
checked here."""
import doctest
import importlib
import pkgutil

import pytest

import nclib

MODULES = sorted(m.name for m in pkgutil.walk_packages(nclib.__path__, "nclib."))


def test_the_examples_are_found():
    """The walk reaches the modules (the subpackage too), and the examples of nclib.imbalance are among them."""
    assert "nclib.imbalance" in MODULES and "nclib.figures.chapter" in MODULES
    found = doctest.DocTestFinder().find(importlib.import_module("nclib.imbalance"))
    assert sum(len(t.examples) for t in found) >= 3


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
