"""The book build executed every chapter of _toc.yml, every code cell of it, without an error.

Runs after `make book` (the test command builds the book first).  The build executes each chapter in a fresh
kernel and fails on the first cell that raises (``nb_execution_raise_on_error``), which is where a chapter's
own asserts fail it; this test checks that nothing escaped that execution: no chapter excluded or left
unexecuted, no cell skipped, no error output kept, no executed copy older than its source.  It reads the
executed notebooks the build leaves in ``_build/jupyter_execute`` instead of running the chapters a second time.
"""
import importlib.util
import json

import pytest

import nclib

EXECUTED = nclib.ROOT / "_build" / "jupyter_execute"


def _chapters():
    spec = importlib.util.spec_from_file_location("chapters", nclib.ROOT / "scripts" / "chapters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [p for p in module.chapters() if p.suffix == ".md" and module.is_notebook(p)]


CHAPTERS = _chapters()


def test_every_notebook_chapter_is_listed():
    names = {str(p.relative_to(nclib.ROOT)) for p in CHAPTERS}
    assert {"book/setting.md", "book/training/engine.md", "book/training/train.md"} <= names


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: str(p.relative_to(nclib.ROOT)))
def test_the_build_executed_the_chapter_without_error(chapter):
    executed = EXECUTED / chapter.relative_to(nclib.ROOT).with_suffix(".ipynb")
    if not executed.is_file():
        pytest.fail(f"{executed} is missing: run `make book` first (it executes every chapter)")
    assert executed.stat().st_mtime >= chapter.stat().st_mtime, f"{executed} is older than {chapter}"
    cells = [c for c in json.loads(executed.read_text())["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).strip()]  # an empty cell is not executed
    assert cells, f"{chapter} has no code cell"
    # one kernel ran every cell in order: execution counts 1, 2, ... with none missing
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1)), "a cell was not executed"
    errors = [o.get("ename") for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
