"""A sweep's table (nclib.sweeptable) read from run folders written by hand, without training: which columns a run's
history gives, the row of a run whose provenance a clear cut off has already deleted, which rows the lock file of a
writer on another host makes an error, and the rows of a folder without a sweep record."""
from __future__ import annotations

import json
import warnings

import pytest

from nclib import locks, runs, sweeptable

PARAMS = {"lr": 0.01, "seed": 3, "counts": [6, 3], "max_train_s": 5.0}


def _run(folder, status="finished", history=((0, 0.1), (5, 0.01)), provenance=True, **recorded):
    """A run folder: ``params.json``, ``history.csv`` (rows (epoch, lr), every other column a number of its own:
    row i, column j holds i + j / 100), and unless ``provenance`` is False a ``provenance.json`` recording
    ``status`` and ``recorded``."""
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(runs.to_json(PARAMS))
    rest = [c for c in runs.HISTORY_COLUMNS if c not in ("epoch", "lr")]
    rows = [[e, lr, *(i + j / 100 for j in range(len(rest)))] for i, (e, lr) in enumerate(history)]
    lines = [",".join(["epoch", "lr", *rest])] + [",".join(map(str, r)) for r in rows]
    (folder / "history.csv").write_text("\n".join(lines) + "\n")
    if provenance:
        (folder / "provenance.json").write_text(runs.to_json({"status": status, "git_commit": "0" * 40, **recorded}))
    return folder


def test_the_table_gives_each_metric_of_the_last_row_and_no_rate_or_time(tmp_path):
    """One ``final_<column>`` per column of history.csv that the run's result is measured in (the loss, objective
    (4.3) and the metrics), each the last row's value; the epoch as ``epoch``; the rate and the wall time, which say
    how the run was trained, not what it reached, are no ``final_`` column.  max_train_s is no column either."""
    _run(tmp_path / "a")
    table = sweeptable.summary(tmp_path)
    final = {c for c in table.columns if c.startswith("final_")}
    assert final == {f"final_{c}" for c in ("loss", "objective", *runs.METRIC_COLUMNS)}
    rest = [c for c in runs.HISTORY_COLUMNS if c not in ("epoch", "lr")]
    row = table.iloc[0]
    assert row["epoch"] == 5 and row["status"] == "finished"
    for j, c in enumerate(rest):
        if c != "wall_time":
            assert row[f"final_{c}"] == pytest.approx(1 + j / 100, rel=1e-12, abs=0), c
    assert row["lr"] == 0.01 and json.loads(row["counts"]) == [6, 3] and "max_train_s" not in table.columns


def test_a_run_whose_provenance_a_cut_off_clear_deleted_is_a_dead_row_without_error(tmp_path):
    """clear_run_folder deletes provenance.json first: a clear cut off there leaves params.json and history.csv of a
    run that is being replaced.  Its row reads "dead", as run_status does, with no error (nothing in it is damaged)
    and no result read from the history left behind; a run beside it keeps its row."""
    _run(tmp_path / "a")
    _run(tmp_path / "b", provenance=False)
    assert runs.run_status(tmp_path / "b") == "dead"
    table = sweeptable.summary(tmp_path)
    assert table["run_name"].tolist() == ["a", "b"] and table["status"].tolist() == ["finished", "dead"]
    assert table["error"].isna().tolist() == [True, True]
    assert table["epoch"].isna().tolist() == [False, True]


def test_the_lock_file_of_another_host_is_an_error_only_for_a_run_the_next_call_would_train(tmp_path):
    """A finished or diverged run holds its result, which the next call keeps whatever lock file its folder holds:
    its row gives its own account (none, or the divergence its provenance records).  A stopped run, which the next
    call would resume, is refused that lock: its row gives that refusal (RunLockedElsewhere, naming the file)."""
    diverged = "TrainingDiverged: the objective became NaN/inf at epoch 5"
    _run(tmp_path / "diverged", "diverged", error=diverged)
    _run(tmp_path / "finished")
    _run(tmp_path / "stopped", "stopped")
    for name in ("diverged", "finished", "stopped"):
        (tmp_path / name / locks.LOCK).write_text(json.dumps({"pid": 4242, "host": "node17"}) + "\n")
    table = sweeptable.summary(tmp_path)
    assert table["status"].tolist() == ["diverged", "finished", "stopped"]
    assert table["error"][0] == diverged and table["error"].isna().tolist()[1:] == [True, False]
    assert table["error"][2].startswith("RunLockedElsewhere: ")
    assert str(tmp_path / "stopped" / locks.LOCK) in table["error"][2]
    for name, status, error in (("diverged", "diverged", diverged), ("finished", "finished", None)):
        prov = {"error": error} if error else {}
        assert sweeptable.recorded_outcome(name, status, {}, prov, tmp_path / name) == (status, error)


def test_a_folder_without_a_sweep_record_lists_its_run_folders_by_name_as_recorded(tmp_path):
    """Without sweep.json every run folder of out_dir is a row, by name; none is marked or warned of as unrecorded
    (that is for folders beside a record that does not list them): no column ``recorded``, no UnrecordedRuns."""
    for name in ("b", "a", "c"):
        _run(tmp_path / name)
    (tmp_path / "notes").mkdir()  # no params.json: no run folder
    with warnings.catch_warnings():
        warnings.simplefilter("error", sweeptable.UnrecordedRuns)
        table = sweeptable.summary(tmp_path)
    assert table["run_name"].tolist() == ["a", "b", "c"] and "recorded" not in table.columns
