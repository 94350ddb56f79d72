"""The examples in nclib's docstrings run as written (doctest); `make test` runs only `pytest tests`, so they are
checked here."""
import doctest
import importlib
import pkgutil

import pytest

import nclib

MODULES = sorted(m.name for m in pkgutil.walk_packages(nclib.__path__, "nclib."))

#: The modules whose docstrings hold examples: a module given its first example is listed here, and so run.
WITH_EXAMPLES = ("nclib.imbalance",)


def _examples(name):
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(importlib.import_module(name)))


def test_the_examples_are_found():
    """The walk reaches the modules (the subpackage too), and the modules with examples are those listed."""
    assert "nclib.imbalance" in MODULES and "nclib.figures.chapter" in MODULES
    assert [name for name in MODULES if _examples(name) > 0] == sorted(WITH_EXAMPLES)
    assert _examples("nclib.imbalance") >= 3


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted == _examples(name) > 0 and result.failed == 0
