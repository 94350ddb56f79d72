"""The chapters and scripts a docstring of nclib says use a function are those that do.

A docstring may name the chapters and scripts that use its function (CONTRIBUTING.md).  Such a claim is a
sentence starting "Used in", "Used by" or "Chapters:", naming chapters by their labels (``:ref:`ch-thm41```) and
files by their paths (````scripts/gpu_figures.sh````); "no chapter calls it" claims the opposite.  Only what a
claim names this way is checked: a chapter written as plain text, and a function that carries no claim, are not.

A chapter uses a function when the code of its code cells refers to it, or refers to an nclib function or class
whose body does, and so on.  References are resolved as Python resolves them, read with :mod:`ast`: a name
through the module that defines it or the import that brought it in (``F.load_figure`` after ``import
nclib.figures as F``, a name re-exported by another module followed to its definition), never by its spelling
alone, so a variable or a sentence that happens to spell a function's name is no use of it.  A Python script is
read the same way; a shell script uses a function when its text names it (its Python runs in ``-c`` strings).
What the check cannot see: a call through a value (a function stored in a dict, ``getattr``), which makes a true
claim fail, and so shows up.
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
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, package: str) -> dict[str, str]:
    """The names a piece of code imports from nclib: alias -> dotted target (a module, or a name in one)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "nclib":
                    out[a.asname or "nclib"] = a.name if a.asname else "nclib"
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = base + (f".{node.module}" if node.module else "")
            if source.split(".")[0] == "nclib":
                out.update({a.asname or a.name: f"{source}.{a.name}" for a in node.names})
    return out


def _modules() -> dict[str, tuple[dict, dict]]:
    """Every module of nclib: name -> (its top-level functions and classes by name, its nclib imports)."""
    out = {}
    for path in sorted((ROOT / "nclib").rglob("*.py")):
        tree = ast.parse(path.read_text())
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        out[name] = (defs, _imports(tree, package))
    return out


MODULES = _modules()


def resolve(dotted: str, depth: int = 0):
    """A dotted name -> ``("mod", module)``, ``("def", module, name)`` where it is defined, or None."""
    if dotted in MODULES:
        return ("mod", dotted)
    module, _, name = dotted.rpartition(".")
    if depth > 20 or not module:
        return None
    if module in MODULES:
        defs, imports = MODULES[module]
        if name in defs:
            return ("def", module, name)
        return resolve(imports[name], depth + 1) if name in imports else None
    outer = resolve(module, depth + 1)
    return resolve(f"{outer[1]}.{name}", depth + 1) if outer and outer[0] == "mod" else None


def refers_to(tree: ast.AST, module: str | None, imports: dict[str, str]) -> set[tuple[str, str]]:
    """The nclib definitions (module, name) that a piece of code refers to."""
    def target(e):
        if isinstance(e, ast.Name):
            if module is not None and e.id in MODULES[module][0]:
                return ("def", module, e.id)
            return resolve(imports[e.id]) if e.id in imports else None
        if isinstance(e, ast.Attribute):
            base = target(e.value)
            return resolve(f"{base[1]}.{e.attr}") if base and base[0] == "mod" else None
        return None

    found = (target(n) for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute)))
    return {t[1:] for t in found if t and t[0] == "def"}


REFERS = {(module, name): refers_to(node, module, imports) - {(module, name)}
          for module, (defs, imports) in MODULES.items() for name, node in defs.items()}


def closure(direct: set) -> set:
    seen, todo = set(), list(direct)
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo.extend(REFERS.get(d, ()))
    return seen


def direct_uses(path: pathlib.Path) -> set[tuple[str, str]]:
    """What a chapter's code cells or a Python script refer to in nclib."""
    text = path.read_text()
    if path.suffix == ".md":
        lines = "\n".join(CODE_CELL.findall(text)).splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!", ":")))  # magics, options
    tree = ast.parse(text)
    return refers_to(tree, None, _imports(tree, ""))


_USES: dict[pathlib.Path, set] = {}


def used_in(path: pathlib.Path) -> set[tuple[str, str]]:
    if path not in _USES:
        _USES[path] = closure(direct_uses(path))
    return _USES[path]


def _labels() -> dict[str, pathlib.Path]:
    out = {}
    for md in (ROOT / "book").rglob("*.md"):
        for m in re.finditer(r"^\(((?:ch|sec)-[a-z0-9-]+)\)=", md.read_text(), re.M):
            out[m.group(1)] = md
    return out


LABELS = _labels()
PUBLIC = [(module, name, ast.get_docstring(node) or "") for module, (defs, _) in MODULES.items()
          for name, node in defs.items() if not name.startswith("_")]
CLAIMS = [(module, name, claim) for module, name, doc in PUBLIC for claim in CLAIM.findall(doc)]


def test_the_claims_are_found():
    # The sentences this file checks exist: a change of their wording must not leave the check with nothing to do.
    assert len(CLAIMS) > 80
    assert sum(len(REF.findall(c)) for _, _, c in CLAIMS) > 150


def test_references_resolve_through_imports_and_re_exports_not_spelling():
    tree = ast.parse("import nclib.figures as F\nfrom nclib import train\nF.load_figure(1)\ntrain.Engine\n"
                     "run = 1\nsummary = run")
    assert refers_to(tree, None, _imports(tree, "")) == {("nclib.figures.load", "load_figure"),
                                                        ("nclib.engine", "Engine")}
    # through bodies: figure_parameters checks its runs' settings with check_run_settings
    assert ("nclib.figures.config", "check_run_settings") in closure({("nclib.figures.config", "figure_parameters")})


@pytest.mark.parametrize("module,name,claim", CLAIMS, ids=[f"{m}.{n}" for m, n, _ in CLAIMS])
def test_a_chapter_or_file_said_to_use_a_function_uses_it(module, name, claim):
    for label in REF.findall(claim):
        assert label in LABELS, f"{module}.{name}'s docstring names {label}, which no chapter defines"
        assert (module, name) in used_in(LABELS[label]), f"{module}.{name} is said to be used in {label}, which does not"
    for rel in PATH.findall(claim):
        path = ROOT / rel
        assert path.is_file(), f"{module}.{name}'s docstring names {rel}, which is not a file"
        if path.suffix == ".py":
            assert (module, name) in used_in(path), f"{module}.{name} is said to be used by {rel}, which does not"
        else:
            assert re.search(rf"\b{name}\b", path.read_text()), f"{module}.{name} is said to be used by {rel}"


NO_CHAPTER = [(module, name) for module, name, doc in PUBLIC if "no chapter calls it" in doc]


def test_the_no_chapter_claims_are_found():
    assert len(NO_CHAPTER) >= 3


@pytest.mark.parametrize("module,name", NO_CHAPTER, ids=[f"{m}.{n}" for m, n in NO_CHAPTER])
def test_a_function_said_to_be_called_by_no_chapter_is_called_by_none(module, name):
    calling = [md.relative_to(ROOT).as_posix() for md in sorted((ROOT / "book").rglob("*.md"))
               if (module, name) in direct_uses(md)]
    assert calling == [], f"{module}.{name} is said to be called by no chapter, but {calling} call it"
