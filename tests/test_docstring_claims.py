"""The chapters and scripts a docstring of nclib says use a function are those that do.

CONTRIBUTING.md asks every public function's docstring to name the chapter that uses it.  Such a claim is a
sentence starting "Used in", "Used by" or "Chapters:", naming chapters by their labels (``:ref:`ch-thm41```) and
files by their paths (````scripts/gpu_figures.sh````); "no chapter calls it" claims the opposite.  A chapter
uses a function when its source names it, or names an nclib function or class whose body names it, and so on
(the names nclib's code refers to, read with :mod:`ast`, followed to their definitions).  Names are matched as
words, not resolved to modules: a name defined twice in nclib (``main``) counts as either definition, so this
check can miss a false claim about such a name, never reject a true one.
"""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLAIM = re.compile(r"(?:Used (?:in|by)|Chapters?:)\s+((?:[^.]|\.(?!\s))*)", re.S)
REF = re.compile(r":ref:`([^`]+)`")
PATH = re.compile(r"``((?:scripts|benchmarks|book|tests)/[^`\s]+)")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _definitions():
    """Every top-level function and class of nclib: name -> the names its body refers to; and the public ones
    with their docstrings."""
    refers, public = {}, []
    for path in sorted((ROOT / "nclib").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            refers.setdefault(node.name, set()).update(names - {node.name})
            if not node.name.startswith("_"):
                public.append((path.relative_to(ROOT).as_posix(), node.name, ast.get_docstring(node) or ""))
    return refers, public


REFERS, PUBLIC = _definitions()


def _labels():
    out = {}
    for md in (ROOT / "book").rglob("*.md"):
        for m in re.finditer(r"^\(((?:ch|sec)-[a-z0-9-]+)\)=", md.read_text(), re.M):
            out[m.group(1)] = md
    return out


LABELS = _labels()


def uses(text: str) -> set[str]:
    """The nclib names a text uses: those it names and, through their bodies, all they refer to."""
    seen, todo = set(), [w for w in set(WORD.findall(text)) if w in REFERS]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(r for r in REFERS[name] if r in REFERS and r not in seen)
    return seen


_USES: dict[pathlib.Path, set[str]] = {}


def used_in(path: pathlib.Path) -> set[str]:
    if path not in _USES:
        _USES[path] = uses(path.read_text())
    return _USES[path]


CLAIMS = [(where, name, claim) for where, name, doc in PUBLIC for claim in CLAIM.findall(doc)]


def test_the_claims_are_found():
    # The sentences this file checks exist: a change of their wording must not leave the check with nothing to do.
    assert len(CLAIMS) > 80
    assert sum(len(REF.findall(c)) for _, _, c in CLAIMS) > 150


def test_uses_follows_nclib_bodies_and_only_them():
    assert "check_run_settings" in uses("figure_parameters")   # named in the body of figure_parameters
    assert "global_minimizer" not in uses("no nclib name here")


@pytest.mark.parametrize("where,name,claim", CLAIMS, ids=[f"{w}:{n}" for w, n, _ in CLAIMS])
def test_a_chapter_or_file_said_to_use_a_function_uses_it(where, name, claim):
    for label in REF.findall(claim):
        assert label in LABELS, f"{where}: {name}'s docstring names {label}, which no chapter defines"
        assert name in used_in(LABELS[label]), f"{where}: {name} is said to be used in {label}, which does not use it"
    for rel in PATH.findall(claim):
        path = ROOT / rel
        assert path.is_file(), f"{where}: {name}'s docstring names {rel}, which is not a file"
        assert name in used_in(path), f"{where}: {name} is said to be used by {rel}, which does not use it"


NO_CHAPTER = [(where, name) for where, name, doc in PUBLIC if "no chapter calls it" in doc]


def test_the_no_chapter_claims_are_found():
    assert len(NO_CHAPTER) >= 3


@pytest.mark.parametrize("where,name", NO_CHAPTER, ids=[f"{w}:{n}" for w, n in NO_CHAPTER])
def test_a_function_said_to_be_called_by_no_chapter_is_named_in_none(where, name):
    chapters = sorted((ROOT / "book").rglob("*.md"))
    naming = [md.relative_to(ROOT).as_posix() for md in chapters if re.search(rf"\b{name}\b", md.read_text())]
    assert naming == [], f"{where}: {name} is said to be called by no chapter, but {naming} name it"
