"""The book build executed every chapter of _toc.yml, every code cell of it, without an error.

Runs after `make book` (the test command builds the book first).  The build executes each chapter in a fresh
kernel and fails on the first cell that raises (``nb_execution_raise_on_error``), which is where a chapter's
own asserts fail it; this test checks that nothing escaped that execution: no chapter excluded or left
unexecuted, no cell skipped, no error output kept, no executed copy older than its source.  It reads the
executed notebooks the build leaves in ``_build/jupyter_execute`` instead of running the chapters a second time.

It also reads the chapters' sources: every line of code that a page shows fits its code box, so that no reader
scrolls sideways (this part needs no build).
"""
import importlib.util
import json

import jupytext
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


#: The characters of code a page's code box shows without scrolling sideways: measured in Chromium on a built
#: page, the box is 754 px wide inside its padding at the theme's widest layout (windows of 1440 px and more)
#: and a character of its 14 px monospace font 8.43 px, so 89 characters fit and a 90th scrolls.
CODE_BOX_CHARACTERS = 89
#: The cell tags that keep a cell's source off the page (hide-input folds it away behind a toggle).
HIDDEN_SOURCE_TAGS = {"hide-input", "remove-input", "remove-cell"}


def shown_code_lines(chapter):
    """(cell number, line) for every line of source that the page of a MyST chapter shows: the code cells whose
    tags do not hide their source."""
    for number, cell in enumerate(jupytext.read(chapter).cells):
        if cell.cell_type == "code" and not HIDDEN_SOURCE_TAGS & set(cell.metadata.get("tags", [])):
            yield from ((number, line) for line in cell.source.splitlines())


def test_shown_code_lines_are_those_of_the_cells_without_a_hiding_tag(tmp_path):
    front = "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n\n"
    cells = ["```{code-cell} ipython3\nshown = 1\nalso_shown = 2\n```",
             "```{code-cell} ipython3\n:tags: [hide-input]\nfolded = 3\n```",
             "```{code-cell} ipython3\n:tags: [remove-cell]\nremoved = 4\n```",
             "```{code-cell} ipython3\n:tags: [parameters]\nparameter = 5\n```"]
    chapter = tmp_path / "chapter.md"
    chapter.write_text(front + "Some prose.\n\n" + "\n\n".join(cells) + "\n", encoding="utf-8")
    assert [line for _, line in shown_code_lines(chapter)] == ["shown = 1", "also_shown = 2", "parameter = 5"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: str(p.relative_to(nclib.ROOT)))
def test_every_shown_code_line_fits_the_code_box(chapter):
    too_wide = [f"cell {number}, {len(line)} characters: {line.strip()[:50]}"
                for number, line in shown_code_lines(chapter) if len(line) > CODE_BOX_CHARACTERS]
    assert not too_wide, (f"{chapter.name}: {len(too_wide)} shown lines wider than {CODE_BOX_CHARACTERS} "
                          "characters:\n" + "\n".join(too_wide))
