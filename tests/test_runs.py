"""The run folder's contract (nclib.runs) on folders written by hand, without training: what a history with rows
run together is.  The plan over such folders (nclib.runplan) is tested in test_runplan.py."""
from __future__ import annotations

import pytest

from nclib import runs


def _history(path, rows):
    """``history.csv`` of ``path`` with one row per list of values (the header: every column)."""
    lines = [",".join(runs.HISTORY_COLUMNS)] + [",".join(map(str, r)) for r in rows]
    (path / "history.csv").write_text("\n".join(lines) + "\n")


def test_a_first_history_row_holding_two_rows_is_refused_naming_row_1(tmp_path):
    """Rows run together (a newline lost) are refused wherever they are, the first row too: its extra values were
    otherwise dropped and the row read as the first of the two."""
    row = [0] + [0.5] * (len(runs.HISTORY_COLUMNS) - 1)
    _history(tmp_path, [row + row, [5] + row[1:]])
    with pytest.raises(ValueError, match=f"history.csv row 1 has {2 * len(row)} values"):
        runs.load_history(tmp_path)
    _history(tmp_path, [row, [5] + row[1:]])
    assert runs.load_history(tmp_path)["epoch"].tolist() == [0, 5]
