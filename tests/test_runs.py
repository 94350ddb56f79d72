"""The run folder's contract (nclib.runs) on folders written by hand, without training: what a history with rows
run together is, what a failed write leaves, which params.json is a record.  The plan over such folders
(nclib.runplan) is tested in test_runplan.py."""
from __future__ import annotations

import json
import os

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


def test_a_write_that_fails_at_its_replace_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """atomic_write_text writes a temporary file and replaces the file with it: where the replace fails, its
    OSError reaches the caller, the file keeps its earlier text and the temporary file is removed."""
    target = tmp_path / "history.csv"
    runs.atomic_write_text(target, "epoch\n0\n")
    tried = []

    def refused(src, dst):
        tried.append(os.path.basename(src))
        raise OSError("replace refused")

    monkeypatch.setattr(runs.os, "replace", refused)
    with pytest.raises(OSError, match="^replace refused$"):
        runs.atomic_write_text(target, "epoch\n0\n5\n")
    assert len(tried) == 1 and tried[0].startswith(".history.csv.") and tried[0].endswith(".tmp")
    assert os.listdir(tmp_path) == ["history.csv"] and target.read_text() == "epoch\n0\n"


@pytest.mark.parametrize("text", ["[1]", '"x"', "5", "null", "{", ""])
def test_a_params_json_that_holds_no_dict_reads_as_none(tmp_path, text):
    """read_params gives the recorded parameters only where params.json holds a JSON object: a list, text, a
    number, null or no JSON at all read as None, as a missing file does, which every caller takes as no record."""
    assert runs.read_params(tmp_path) is None
    (tmp_path / "params.json").write_text(text)
    assert runs.read_params(tmp_path) is None
    (tmp_path / "params.json").write_text(json.dumps({"epochs": 5, "lr": 0.001}))
    assert runs.read_params(tmp_path) == {"epochs": 5, "lr": 0.001}
