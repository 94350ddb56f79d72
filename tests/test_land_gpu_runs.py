"""scripts/land_gpu_runs.py: the 12,000-epoch runs of a figure landed one piece at a time beside the figure's
committed runs, and made its runs only once all three are there (on fixture run folders: no training)."""
from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import pathlib
import shutil
import subprocess
import tarfile
from unittest.mock import ANY

import numpy as np
import pytest

import nclib
from nclib import figures, provenance, train

from test_gpu_scripts import _script
from test_stability import _gpu_pair

land_gpu_runs = _script("land_gpu_runs")

TEMPLATE = nclib.ROOT / "results" / "figures" / "gpu" / "fig1"  # the committed runs' parameters, as nclib wrote them


def fake_run(folder: pathlib.Path, L: int, epochs: int = 12000, status: str = "finished", precision: str = "tf32",
             prov: dict | None = None, name: str | None = None, **changes) -> pathlib.Path:
    """A run folder of Figure 1 at the paper's settings (a fixture: finite made-up metrics, every 100 epochs), named
    ``name`` (default fig1-L<L>, the run's own), its provenance the committed run's with the fields the landing
    compares made up (and ``prov``'s changes; a ``data_sha256`` is its data record's too, as nclib.train writes it)."""
    params = json.loads((TEMPLATE / f"fig1-L{L}" / "params.json").read_text())
    params.update(epochs=epochs, precision=precision, **changes)
    run = folder / (name or f"fig1-L{L}")
    run.mkdir(parents=True)
    (run / "params.json").write_text(json.dumps(params))
    ep = np.array(sorted({0, *range(100, epochs + 1, 100), epochs}))
    cols = {c: np.exp(-ep / 3000.0) + 0.01 for c in train.HISTORY_COLUMNS}
    cols.update(epoch=ep, lr=np.where(ep > 6000, 1e-5, 1e-4), train_acc=np.minimum(1.0, 0.1 + ep / 100))
    table = np.column_stack([cols[c] for c in train.HISTORY_COLUMNS])
    np.savetxt(run / "history.csv", table, delimiter=",", header=",".join(train.HISTORY_COLUMNS), comments="")
    per_epoch = committed_provenance(L)["steps_per_epoch"]  # the committed run's batches: a finished run's steps
    made = {"status": status, "precision": precision, "device_name": "NVIDIA H200", "git_dirty": False,
            "versions": {"torch": "2.11.0+cu130"}, "steps": epochs * per_epoch}  # git_commit the committed run's
    (run / "provenance.json").write_text(json.dumps(committed_provenance(L, **{**made, **(prov or {})})))
    return run


def committed_provenance(L: int, **changes) -> dict:
    """The provenance of the committed run L of Figure 1 with ``changes`` (a ``data_sha256`` in its data record too)."""
    prov = {**json.loads((TEMPLATE / f"fig1-L{L}" / "provenance.json").read_text()), **changes}
    if "data_sha256" in changes:
        prov["data"] = {**prov["data"], "data_sha256": changes["data_sha256"]}
    return prov


def job_outputs(tmp: pathlib.Path, name: str, piece: str, runs: list[dict]) -> pathlib.Path:
    """A GPU job's $OUT: figures_gpu.tar.gz as FULL mode archives it (runs, segments, the piece's notebook) and
    log.txt; each run trained beside the job's other runs (``trained_with``, unless its ``prov`` says)."""
    stage, files = tmp / f"{name}-stage", tmp / name
    gpu = stage / "results" / "figures" / "gpu" / "fig1"
    names = [r.get("name") or f"fig1-L{r['L']}" for r in runs]
    for r, own in zip(runs, names):
        fake_run(gpu, **{**r, "prov": {"trained_with": [n for n in names if n != own], **(r.get("prov") or {})}})
    (gpu / "segments").mkdir()
    (gpu / "segments" / f"fig1.{piece}.segment-1.run.ipynb").write_text("{}")
    books = stage / "book" / "figures" / "gpu"
    books.mkdir(parents=True)
    (books / f"fig1.{piece}.run.ipynb").write_text("{}")
    files.mkdir()
    with tarfile.open(files / "figures_gpu.tar.gz", "w:gz") as tar:
        tar.add(stage / "results" / "figures" / "gpu", arcname="results/figures/gpu")
        tar.add(books, arcname="book/figures/gpu")
    (files / "log.txt").write_text(f"the log of {name}\n")
    (files / "call1-log.txt").write_text(f"the first command's log of {name}\n")
    return files


def repack(archive: pathlib.Path, keep=lambda name: True, add: pathlib.Path | None = None,
           files: dict | None = None) -> None:
    """Write ``archive`` again with the members whose name ``keep`` accepts, the folder ``add`` as logs/, and
    ``files`` ({member name: bytes}) as files of their own."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers() if keep(m.name)]
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, None if data is None else io.BytesIO(data))
        if add is not None:
            tar.add(add, arcname="logs")
        for name, data in (files or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def bare_root(tmp_path):
    """A repository-shaped folder holding the figure's committed (shorter) GPU runs and their notebook, and no
    stability pair (results/ as it is before the stability job)."""
    base = tmp_path / "repo"
    for L in (1, 3, 6):
        fake_run(base / "results" / "figures" / "gpu" / "fig1", L, epochs=2600)
    (base / "book" / "figures" / "gpu").mkdir(parents=True)
    (base / "book" / "figures" / "gpu" / "fig1.run.ipynb").write_text("{}")
    return base


@pytest.fixture
def root(bare_root):
    """``bare_root`` with a committed stability pair that decides TF32, the fixture runs' precision."""
    stability_pairs(bare_root, "tf32")
    return bare_root


def test_pieces_land_beside_the_figure_and_replace_it_once_complete(root, tmp_path):
    first = job_outputs(tmp_path, "job-a", "L1-L3", [dict(L=1), dict(L=3)])
    got = land_gpu_runs.land(first, "job-a", root)
    assert got == {"landed": ["fig1-L1", "fig1-L3"], "refused": {}}
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    assert sorted(p.name for p in pieces.iterdir()) == ["fig1-L1", "fig1-L3", "jobs"]
    record = pieces / "jobs" / "job-a"
    assert (record / "log.txt").read_text() == "the log of job-a\n"
    assert (record / "call1-log.txt").read_text() == "the first command's log of job-a\n"
    written = json.loads((record / "landed.json").read_text())
    assert {k: written[k] for k in ("landed", "refused")} == {"landed": ["fig1-L1", "fig1-L3"], "refused": {}}
    assert [p.name for p in (record / "notebooks").iterdir()] == ["fig1.L1-L3.run.ipynb"]
    with pytest.raises(ValueError, match="job 'job-a' has landed"):  # a job's record is never replaced
        land_gpu_runs.land(first, "job-a", root)
    # the figure's committed runs are untouched: its chapter still reads them
    committed = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert {r.params["epochs"] for r in committed.values()} == {2600}
    with pytest.raises(ValueError, match="no landed run L = 6"):
        land_gpu_runs.promote(1, root)

    second = job_outputs(tmp_path, "job-b", "L6", [dict(L=6)])
    assert land_gpu_runs.land(second, "job-b", root)["landed"] == ["fig1-L6"]
    toc = land_gpu_runs.promote(1, root)
    assert toc == ("sections: [{file: book/figures/gpu/fig1.L1-L3.run}, {file: book/figures/gpu/fig1.L6.run}, "
                   "{file: book/figures/cpu-scale/fig1.run}]")
    runs = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert figures.check_figure(runs, 1, "gpu")["epochs"] == {1: 12000, 3: 12000, 6: 12000}
    assert figures.preferred_scale(1, root=root / "results" / "figures") == "gpu"
    gpu = root / "results" / "figures" / "gpu" / "fig1"
    assert sorted(p.name for p in (gpu / "jobs").iterdir()) == ["job-a", "job-b"]
    assert (gpu / "jobs" / "job-b" / "log.txt").is_file()
    assert sorted(p.name for p in (gpu / "segments").iterdir()) == ["fig1.L1-L3.segment-1.run.ipynb",
                                                                    "fig1.L6.segment-1.run.ipynb"]
    assert sorted(p.name for p in (root / "book" / "figures" / "gpu").iterdir()) == ["fig1.L1-L3.run.ipynb",
                                                                                     "fig1.L6.run.ipynb"]
    assert not pieces.exists()


def test_landed_json_records_where_and_when_the_runs_came_from(root, tmp_path, monkeypatch):
    """A job's landed.json records, beside which runs landed and which were refused, where they came from: the
    archive by its path as given on the command line (here relative) and its sha256, the time of the landing in UTC,
    and the commit of the checkout whose code landed them with whether that code was the commit's
    (nclib.provenance.git_state), so that two archives of one name, or one landed by other code, can be told
    apart."""
    job_outputs(tmp_path, "job", "L1-L3", [dict(L=1), dict(L=3, epochs=6000)])
    monkeypatch.chdir(tmp_path)
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    assert land_gpu_runs.main(["land", "job", "--job", "job-a", "--root", str(root)]) == 0
    after = datetime.datetime.now(datetime.timezone.utc)
    written = json.loads((root / "results" / "figures" / "pieces" / "fig1" / "jobs" / "job-a" / "landed.json")
                         .read_text())
    assert written["landed"] == ["fig1-L1"] and sorted(written["refused"]) == ["fig1-L3"]
    assert written["archive"] == "job/figures_gpu.tar.gz"
    assert written["archive_sha256"] == hashlib.sha256((tmp_path / written["archive"]).read_bytes()).hexdigest()
    landed = datetime.datetime.fromisoformat(written["landed_utc"])
    assert landed.utcoffset() == datetime.timedelta(0) and before <= landed <= after
    state = provenance.git_state(nclib.ROOT)
    assert written["checkout"] == {"git_commit": state["git_commit"], "git_dirty": state["git_dirty"]}
    if state["git_commit"] is not None:  # git can say: the commit checked out where the script lies
        head = subprocess.run(["git", "-C", str(nclib.ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True)
        assert written["checkout"]["git_commit"] == head.stdout.strip() and isinstance(state["git_dirty"], bool)


def test_a_run_lands_without_the_temporary_files_of_writes_a_kill_cut_off(root, tmp_path):
    """The fault: a writer killed inside atomic_write_text leaves .<file>.<host>.<pid>.tmp in the run folder, and
    the landing copied the whole folder into results/.  Such files are left out; the run's own files all land."""
    files = job_outputs(tmp_path, "job", "L1", [dict(L=1)])
    leftovers = [".history.csv.gpu-node.4242.tmp", ".provenance.json.17.tmp"]
    run = "results/figures/gpu/fig1/fig1-L1"
    repack(files / "figures_gpu.tar.gz", files={f"{run}/{name}": b"half a file" for name in leftovers})
    with tarfile.open(files / "figures_gpu.tar.gz") as tar:
        assert {f"{run}/{name}" for name in leftovers} <= set(tar.getnames())
    assert land_gpu_runs.land(files, "job", root)["landed"] == ["fig1-L1"]
    landed = root / "results" / "figures" / "pieces" / "fig1" / "fig1-L1"
    assert sorted(p.name for p in landed.iterdir()) == ["history.csv", "params.json", "provenance.json"]


def test_a_run_short_of_the_papers_epochs_or_settings_never_lands(root, tmp_path):
    files = job_outputs(tmp_path, "job", "L1-L6", [dict(L=1, status="stopped"), dict(L=3, epochs=11000),
                                                   dict(L=6, width=1024)])
    got = land_gpu_runs.land(files, "job", root)
    assert got["landed"] == []
    assert "status is 'stopped'" in got["refused"]["fig1-L1"]
    assert "11000 epochs, not the 12000" in got["refused"]["fig1-L3"]
    assert "width = 1024" in got["refused"]["fig1-L6"]
    assert not (root / "results" / "figures" / "pieces").exists()
    assert land_gpu_runs.main(["land", str(files), "--job", "job", "--root", str(root)]) == 1  # nothing landed


def test_a_landed_run_is_not_replaced_and_one_precision_per_figure(bare_root, tmp_path):
    root = bare_root
    stability_pairs(root, "fp32")
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1", [dict(L=1, precision="fp32")]), "a", root)
    again = land_gpu_runs.land(job_outputs(tmp_path, "b", "L1-L6", [dict(L=1), dict(L=3), dict(L=6)]), "b", root)
    # L1 is there already, and L3 and L6 (TF32) are not the landed L1's precision: nothing of job b lands
    assert again["landed"] == [] and sorted(again["refused"]) == ["fig1-L1", "fig1-L3", "fig1-L6"]
    assert all("not the landed fig1-L1's" in again["refused"][name] for name in ("fig1-L3", "fig1-L6"))
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    assert sorted(p.name for p in pieces.iterdir()) == ["fig1-L1", "jobs"]
    # runs put there by hand: promote checks the precision too
    for L in (3, 6):
        fake_run(pieces, L)
    with pytest.raises(ValueError, match="differ in precision: L=1 fp32, L=3 tf32"):
        land_gpu_runs.promote(1, root)
    assert len(figures.load_figure(1, "gpu", root=root / "results" / "figures")) == 3  # nothing moved
    assert land_gpu_runs.main(["promote", "1", "--root", str(root)]) == 2


def test_promote_refuses_pieces_that_are_not_one_arithmetic(root, tmp_path):
    """Pieces from another GPU model or torch, or from uncommitted code, are not the figure made at once (land
    refuses them: here they are put in the pieces' folder by hand)."""
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1), dict(L=3)]), "a", root)
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    fake_run(pieces, 6, prov={"device_name": "NVIDIA H100 80GB HBM3", "trained_with": []})
    with pytest.raises(ValueError, match="differ in GPU: L=1 NVIDIA H200, L=3 NVIDIA H200, L=6 NVIDIA H100"):
        land_gpu_runs.promote(1, root)
    # a run resumed from uncommitted code in a later job: clean at its start, dirty in its second segment
    resumed_dirty = [{"git_dirty": False}, {"git_dirty": True}]
    for torch_version, dirty, segments, match in (("2.12.0", False, [], "differ in torch"),
                                                  ("2.11.0+cu130", True, [], "clean commit"),
                                                  ("2.11.0+cu130", False, resumed_dirty, "clean commit"),
                                                  ("2.11.0+cu130", False, [], "not a commit in the history")):
        (pieces / "fig1-L6" / "provenance.json").write_text(json.dumps(committed_provenance(  # a piece of its own
            6, status="finished", precision="tf32", device_name="NVIDIA H200", git_commit="b" * 40,
            git_dirty=dirty, versions={"torch": torch_version}, segments=segments, trained_with=[],
            steps=12000 * committed_provenance(6)["steps_per_epoch"])))
        with pytest.raises(ValueError, match=match):
            land_gpu_runs.promote(1, root)
    # clean by git_dirty, but recording changed files: promote refuses it too
    (pieces / "fig1-L6" / "provenance.json").write_text(json.dumps(committed_provenance(
        6, status="finished", precision="tf32", device_name="NVIDIA H200", git_dirty=False,
        git_dirty_paths=["nclib/train.py"], versions={"torch": "2.11.0+cu130"}, trained_with=[],
        steps=12000 * committed_provenance(6)["steps_per_epoch"])))
    with pytest.raises(ValueError, match="not made from a clean commit: git_dirty = False beside changed files"):
        land_gpu_runs.promote(1, root)
    assert pieces.is_dir() and len(figures.load_figure(1, "gpu", root=root / "results" / "figures")) == 3


def stability_pairs(root: pathlib.Path, decided: str) -> pathlib.Path:
    """Seed 0's stability pair committed under ``root`` (results/stability/), a GPU pair whose TF32 run engaged, made
    as tests/test_stability.py makes one, deciding ``decided``: "tf32" as made (both runs spiked alike, with the
    committed CPU run's spike), "fp32" with the fp32 run's objective falling throughout (its running minimum), so
    that only the TF32 run spiked."""
    from nclib.figures import stability

    folder = _gpu_pair(root / "results" / "stability", engaged=True)
    if decided == "fp32":
        path = folder / stability.run_name("fp32", 0) / "history.csv"
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        low = np.minimum.accumulate([float(r["objective"]) for r in rows])
        for r, value in zip(rows, low):
            r["objective"] = repr(float(value))
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    rows = stability.stability_rows(stability.load_stability(folder, committed=True))
    assert stability.precision_decision(rows)["precision"] == decided
    return folder


@pytest.mark.parametrize("decided", ["tf32", "fp32"])
def test_land_and_promote_take_only_the_precision_the_committed_stability_pairs_decide(bare_root, tmp_path, decided):
    """The decision of the stability pairs committed in results/stability/ (precision_decision) is the figure runs'
    precision, never a default's: land refuses a run of another precision, naming the decision, and lands the
    others; promote refuses a figure whose runs were put among the pieces in another precision."""
    root, other = bare_root, {"tf32": "fp32", "fp32": "tf32"}[decided]
    pairs = stability_pairs(root, decided)
    assert land_gpu_runs.decided_precision(root)["precision"] == decided
    # the check FULL mode of scripts/gpu_figures.sh makes before it trains: the decision, another precision refused
    assert land_gpu_runs.main(["decision", "--root", str(root), "--precision", decided]) == 0
    assert land_gpu_runs.main(["decision", "--root", str(root), "--precision", other]) == 2
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    for L in (1, 3, 6):  # put there by hand
        fake_run(pieces, L, precision=other)
    with pytest.raises(ValueError, match=f"trained in precision {other}, not the {decided} that the committed "
                                         r"stability pairs decide \(results/stability/: "):
        land_gpu_runs.promote(1, root)
    assert land_gpu_runs.main(["promote", "1", "--root", str(root)]) == 2
    assert len(figures.load_figure(1, "gpu", root=root / "results" / "figures")) == 3  # nothing moved
    shutil.rmtree(pieces)
    got = land_gpu_runs.land(job_outputs(tmp_path, "b", "L1-L3-L6", [dict(L=1, precision=other),
                                                                      dict(L=3, precision=decided),
                                                                      dict(L=6, precision=decided)]), "b", root)
    assert got == {"landed": ["fig1-L3", "fig1-L6"], "refused": {"fig1-L1": ANY}}
    assert f"L=1: precision {other}, not the {decided} that the committed stability pairs" in got["refused"]["fig1-L1"]
    assert land_gpu_runs.land(job_outputs(tmp_path, "c", "L1", [dict(L=1, precision=decided)]), "c",
                              root)["landed"] == ["fig1-L1"]
    land_gpu_runs.promote(1, root)
    assert {r.params["precision"] for r in figures.load_figure(1, "gpu", root=root / "results" / "figures").values()} \
        == {decided}
    shutil.rmtree(pairs / "fig1-L6-tf32-seed0")  # half a pair committed: no seed with both runs decides anything
    with pytest.raises(ValueError, match="decide no precision.*no seed with both a fp32 and a tf32 run"):
        land_gpu_runs.decided_precision(root)


@pytest.mark.parametrize("damage", [None, "cut-short", "stray"])
def test_decision_checks_the_unpacked_stability_pairs_before_they_are_committed(bare_root, tmp_path, capsys, damage):
    """scripts/README.md's landing of a stability job: its stability.tar.gz (the whole pairs, as scripts/gpu_figures.sh
    archives them) unpacked into the checkout with the job's logs beside, then `land_gpu_runs.py decision` before the
    commit, which reads the pairs as the landing of the figure runs and FULL mode will once they are committed. It
    prints the decision of the job's pair; a pair damaged on its way (a history cut short) or a run folder left in
    results/stability/ that is no run of the setting (a CPU trial's, of another width) is refused, status 2, naming
    the folder, so that neither is committed."""
    from nclib.figures import stability

    job = _gpu_pair(tmp_path / "job" / "results" / "stability", engaged=True)
    archive = tmp_path / "FILES" / "stability.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for run in sorted(job.iterdir()):
            tar.add(run, arcname=f"results/stability/{run.name}")
    root = bare_root
    folder = root / "results" / "stability"
    if damage == "stray":  # left there before the job's pairs came
        trial = shutil.copytree(stability.RESULTS_CPU / "fig1-L6-fp32-seed1", folder / "fig1-L6-fp32-seed1")
        params = json.loads((trial / "params.json").read_text())
        (trial / "params.json").write_text(json.dumps(dict(params, width=16)))
    with tarfile.open(archive) as tar:  # tar xzf FILES/stability.tar.gz -C .
        tar.extractall(root, filter="data")
    (folder / "logs" / "job-1").mkdir(parents=True)
    (folder / "logs" / "job-1" / "log.txt").write_text("decision: tf32 (...)\n")
    named = None
    if damage == "cut-short":
        named = folder / stability.run_name("tf32", 0)
        lines = (named / "history.csv").read_text().splitlines(keepends=True)
        (named / "history.csv").write_text("".join(lines[:-2]))
    elif damage == "stray":
        named = folder / "fig1-L6-fp32-seed1"
    capsys.readouterr()
    status = land_gpu_runs.main(["decision", "--root", str(root)])
    said = capsys.readouterr()
    if damage is None:
        assert status == 0 and said.out.startswith("decision: tf32 (")
    else:
        assert status == 2 and said.out == "" and str(named) in said.err, said.err
        assert {"cut-short": "its history holds", "stray": "'width': (16, 2048)"}[damage] in said.err


def test_nothing_lands_or_is_promoted_before_the_stability_pairs_decide(bare_root, tmp_path):
    """With no stability pair committed (results/ before the stability job) no precision is decided, and a figure run
    of any precision, bf16 among them, is refused: land lands nothing (status 2) and promote moves nothing."""
    root = bare_root
    with pytest.raises(ValueError, match="no stability pair is committed in .*results/stability"):
        land_gpu_runs.decided_precision(root)
    for q in ("tf32", "fp32"):  # nor does a FULL job start (scripts/gpu_figures.sh asks the same)
        assert land_gpu_runs.main(["decision", "--root", str(root), "--precision", q]) == 2
    for q in ("tf32", "bf16"):
        files = job_outputs(tmp_path, f"job-{q}", "L1-L3-L6", [dict(L=L, precision=q) for L in (1, 3, 6)])
        with pytest.raises(ValueError, match="no stability pair is committed"):
            land_gpu_runs.land(files, f"job-{q}", root)
        assert land_gpu_runs.main(["land", str(files), "--job", f"job-{q}", "--root", str(root)]) == 2
    assert not (root / "results" / "figures" / "pieces").exists()
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    for L in (1, 3, 6):  # put there by hand
        fake_run(pieces, L)
    with pytest.raises(ValueError, match="no stability pair is committed"):
        land_gpu_runs.promote(1, root)
    assert land_gpu_runs.main(["promote", "1", "--root", str(root)]) == 2
    committed = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert {r.params["epochs"] for r in committed.values()} == {2600} and (pieces / "fig1-L1").is_dir()
    stability_pairs(root, "tf32")  # the stability job's pairs committed: the same runs are promoted
    land_gpu_runs.promote(1, root)
    assert {r.params["epochs"] for r in figures.load_figure(1, "gpu", root=root / "results" / "figures").values()} \
        == {12000}


#: A run's settings that differ from the fixture's in one of what :func:`land_gpu_runs.arithmetic` compares.
OTHER_ARITHMETIC = [dict(prov={"device_name": "NVIDIA H100 80GB HBM3"}), dict(precision="fp32"),
                    dict(prov={"versions": {"torch": "2.12.0+cu130"}}), dict(prov={"nc3_compares": "classes"}),
                    dict(prov={"data_sha256": "2" * 64})]


@pytest.mark.parametrize("other", OTHER_ARITHMETIC)
def test_land_refuses_a_run_of_another_arithmetic_than_the_landed_ones(root, tmp_path, other):
    """A piece made on another GPU model, in another precision, with another torch, another NC3 or on other training
    data than the pieces of its figure landed before would be refused by promote, and would stand in the way of the right run: land refuses it and
    lands the right one afterwards."""
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1), dict(L=3)]), "a", root)
    wrong = job_outputs(tmp_path, "b", "L6", [dict(L=6, **other)])
    assert land_gpu_runs.land(wrong, "b", root) == {"landed": [], "refused": {"fig1-L6": ANY}}
    assert land_gpu_runs.main(["land", str(wrong), "--job", "b2", "--root", str(root)]) == 1
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    assert not (pieces / "fig1-L6").exists() and sorted(p.name for p in (pieces / "jobs").iterdir()) == ["a"]
    right = job_outputs(tmp_path, "c", "L6", [dict(L=6)])
    assert land_gpu_runs.land(right, "c", root)["landed"] == ["fig1-L6"]
    land_gpu_runs.promote(1, root)  # one arithmetic


@pytest.mark.parametrize("other", OTHER_ARITHMETIC)
def test_land_refuses_two_runs_of_one_archive_of_another_arithmetic(root, tmp_path, other):
    """Two runs of one figure in one archive, the second of another arithmetic than the first: the first lands and
    the second is compared with it, as with a run landed by an earlier job, and refused."""
    files = job_outputs(tmp_path, "job", "L1-L3", [dict(L=1), dict(L=3, **other)])
    got = land_gpu_runs.land(files, "job", root)
    assert got == {"landed": ["fig1-L1"], "refused": {"fig1-L3": ANY}}
    assert "not the landed fig1-L1's" in got["refused"]["fig1-L3"]
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    assert sorted(p.name for p in pieces.iterdir()) == ["fig1-L1", "jobs"]


#: A run folder whose name is not its run's: params of L = 3 in fig1-L6 (its run_name fig1-L6 too), and the run L = 6
#: with the run_name of L = 3.
MISNAMED = [dict(L=3, name="fig1-L6", run_name="fig1-L6"), dict(L=6, run_name="fig1-L3")]
MISNAMED_WHY = ["its folder is 'fig1-L6', not 'fig1-L3'", "run_name = 'fig1-L3', not its folder's name 'fig1-L6'"]


@pytest.mark.parametrize("misnamed, why", list(zip(MISNAMED, MISNAMED_WHY)))
def test_land_refuses_a_run_whose_folder_is_not_named_by_its_l(root, tmp_path, misnamed, why):
    """A folder fig1-L6 holding another L's run (or another run_name) would be promoted beside the run of its own L,
    and the figure could no longer be read (load_figure: two runs with one L): land refuses it."""
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1), dict(L=3)]), "a", root)
    got = land_gpu_runs.land(job_outputs(tmp_path, "b", "L6", [misnamed]), "b", root)
    assert got == {"landed": [], "refused": {"fig1-L6": ANY}} and why in got["refused"]["fig1-L6"]
    assert not (root / "results" / "figures" / "pieces" / "fig1" / "fig1-L6").exists()
    assert land_gpu_runs.land(job_outputs(tmp_path, "c", "L6", [dict(L=6)]), "c", root)["landed"] == ["fig1-L6"]
    land_gpu_runs.promote(1, root)
    assert sorted(figures.load_figure(1, "gpu", root=root / "results" / "figures")) == [1, 3, 6]


@pytest.mark.parametrize("misnamed, why", list(zip(MISNAMED, MISNAMED_WHY)))
def test_promote_refuses_a_run_whose_folder_is_not_named_by_its_l(root, tmp_path, misnamed, why):
    """The same folder put among the pieces by hand: promote refuses the figure before it removes the committed
    runs."""
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1), dict(L=3)]), "a", root)
    fake_run(root / "results" / "figures" / "pieces" / "fig1", **misnamed)
    with pytest.raises(ValueError, match=why):
        land_gpu_runs.promote(1, root)
    committed = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert {L: r.params["epochs"] for L, r in committed.items()} == {1: 2600, 3: 2600, 6: 2600}
    assert (root / "results" / "figures" / "pieces" / "fig1" / "fig1-L6").is_dir()


def test_promote_takes_only_runs_of_the_papers_epochs(root, tmp_path):
    """Runs landed with a smaller --epochs (a trial of the tooling) never replace the figure's committed runs, not
    even beside runs of the paper's 12,000 epochs."""
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1, epochs=8000), dict(L=3, epochs=8000)]), "a",
                       root, epochs=8000)
    assert land_gpu_runs.land(job_outputs(tmp_path, "b", "L6", [dict(L=6)]), "b", root)["landed"] == ["fig1-L6"]
    with pytest.raises(ValueError, match="L=1 of 8000 epochs, L=3 of 8000 epochs are not of the paper's 12000"):
        land_gpu_runs.promote(1, root)
    assert land_gpu_runs.main(["promote", "1", "--root", str(root)]) == 2
    committed = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert {r.params["epochs"] for r in committed.values()} == {2600}  # the figure keeps its runs
    assert (root / "results" / "figures" / "pieces" / "fig1" / "fig1-L6").is_dir()


def test_promote_refuses_runs_of_other_training_data(root, tmp_path):
    """Pieces trained on other data (another data_sha256; land refuses them, here they are put there by hand) are not
    one figure."""
    land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1, prov={"data_sha256": "1" * 64}),
                                                             dict(L=3, prov={"data_sha256": "1" * 64})]), "a", root)
    fake_run(root / "results" / "figures" / "pieces" / "fig1", 6, prov={"data_sha256": "2" * 64})
    with pytest.raises(ValueError, match="differ in data_sha256: L=1 1111"):
        land_gpu_runs.promote(1, root)
    committed = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert {r.params["epochs"] for r in committed.values()} == {2600}


def test_land_refuses_an_unreadable_run_folder_and_lands_the_others(root, tmp_path):
    """A run folder the job left with its parameters only (its process killed before the first row) is refused
    alone: the archive's other runs land."""
    files = job_outputs(tmp_path, "job", "L1-L6", [dict(L=1), dict(L=3), dict(L=6)])
    repack(files / "figures_gpu.tar.gz", keep=lambda name: not name.startswith("results/figures/gpu/fig1/fig1-L3/")
           or name.endswith("/params.json"))
    got = land_gpu_runs.land(files, "job", root)
    assert got["landed"] == ["fig1-L1", "fig1-L6"] and sorted(got["refused"]) == ["fig1-L3"]
    record = root / "results" / "figures" / "pieces" / "fig1" / "jobs" / "job"
    assert sorted(json.loads((record / "landed.json").read_text())["refused"]) == ["fig1-L3"]


def test_land_refuses_a_run_folder_without_its_parameters_and_records_it(root, tmp_path):
    """A run folder the archive holds without its params.json is refused, with why, and landed.json says so: it is
    not passed over as if the job had never made it."""
    files = job_outputs(tmp_path, "job", "L1-L6", [dict(L=1), dict(L=3), dict(L=6)])
    repack(files / "figures_gpu.tar.gz", keep=lambda name: name != "results/figures/gpu/fig1/fig1-L3/params.json")
    got = land_gpu_runs.land(files, "job", root)
    assert got == {"landed": ["fig1-L1", "fig1-L6"], "refused": {"fig1-L3": ANY}}
    why = got["refused"]["fig1-L3"]
    assert "not a run folder that can be read" in why and "no params.json" in why
    record = root / "results" / "figures" / "pieces" / "fig1" / "jobs" / "job"
    assert json.loads((record / "landed.json").read_text())["refused"] == got["refused"]
    assert not (root / "results" / "figures" / "pieces" / "fig1" / "fig1-L3").exists()


@pytest.mark.parametrize("damage", ["cut short", "not gzip"])
def test_land_refuses_an_archive_that_cannot_be_read_by_name(root, tmp_path, damage):
    files = job_outputs(tmp_path, "job", "L1", [dict(L=1)])
    archive = files / "figures_gpu.tar.gz"
    data = archive.read_bytes()
    archive.write_bytes(data[:len(data) // 2] if damage == "cut short" else b"not an archive" * 100)
    with pytest.raises(ValueError, match="figures_gpu.tar.gz"):
        land_gpu_runs.land(files, "job", root)
    assert land_gpu_runs.main(["land", str(files), "--job", "job", "--root", str(root)]) == 2
    assert not (root / "results" / "figures" / "pieces").exists()


def test_land_keeps_the_earlier_commands_logs_the_archive_carries(root, tmp_path):
    """A FULL job's last archive holds the logs of the machine's earlier commands (logs/call<N>-*.txt, kept by
    scripts/gpu_figures.sh): they go into the job's record beside the log.txt of FILES."""
    files = job_outputs(tmp_path, "job", "L1", [dict(L=1)])
    (files / "call1-log.txt").unlink()  # nothing copied by hand between the commands
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "call1-log.txt").write_text("the first command's log\n")
    (logs / "call1-cuda_tests.txt").write_text("3 passed\n")
    repack(files / "figures_gpu.tar.gz", add=logs)
    land_gpu_runs.land(files, "job", root)
    record = root / "results" / "figures" / "pieces" / "fig1" / "jobs" / "job"
    assert sorted(p.name for p in record.glob("*.txt")) == ["call1-cuda_tests.txt", "call1-log.txt", "log.txt"]
    assert (record / "call1-cuda_tests.txt").read_text() == "3 passed\n"


def later_commit() -> str:
    """A commit of this checkout's history other than the committed runs' (HEAD), or one made up where git cannot
    say which commits it holds (commit_problems then finds none)."""
    import subprocess

    if figures.unknown_commits([]) is None:
        return "c" * 40
    head = subprocess.run(["git", "-C", str(nclib.ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert head != committed_provenance(3)["git_commit"]
    return head


def test_a_partner_refused_at_landing_and_made_again_later_is_not_the_one_trained_beside(root, tmp_path):
    """Job a trained L1, L3 and L6 side by side; L1 and L6 landed and L3, stopped, was refused, yet L1 and L6 still
    name fig1-L3 in trained_with.  Job b made L3 again alone, at a later commit (each landing is a commit): it records
    another started_utc, so it is not the run L1 and L6 were trained beside, and the figure is promoted."""
    a = land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3-L6", [dict(L=1), dict(L=3, status="stopped"),
                                                                    dict(L=6)]), "a", root)
    assert a["landed"] == ["fig1-L1", "fig1-L6"] and sorted(a["refused"]) == ["fig1-L3"]
    pieces = root / "results" / "figures" / "pieces" / "fig1"
    assert json.loads((pieces / "fig1-L1" / "provenance.json").read_text())["trained_with"] == ["fig1-L3", "fig1-L6"]
    later = {"git_commit": later_commit(), "started_utc": "2027-01-05T10:00:00+00:00"}
    assert land_gpu_runs.land(job_outputs(tmp_path, "b", "L3", [dict(L=3, prov=later)]), "b", root) == {
        "landed": ["fig1-L3"], "refused": {}}
    land_gpu_runs.promote(1, root)
    runs = figures.load_figure(1, "gpu", root=root / "results" / "figures")
    assert {L: r.provenance["git_commit"] for L, r in runs.items()} == {
        1: committed_provenance(1)["git_commit"], 3: later["git_commit"], 6: committed_provenance(6)["git_commit"]}
    # the landed runs pass the figure's checks (check_figure raises otherwise), each to its last epoch
    assert figures.check_figure(runs, 1, "gpu")["epochs"] == {L: int(r.history["epoch"][-1]) for L, r in runs.items()}


def test_promote_refuses_runs_trained_side_by_side_at_two_commits(root, tmp_path):
    """Runs of one job trained side by side record one started_utc; where one of them records another commit (made
    up here: one call runs one checkout), promote refuses the figure, naming the two runs."""
    got = land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3-L6", [
        dict(L=1), dict(L=3, prov={"git_commit": later_commit()}), dict(L=6)]), "a", root)
    assert got["landed"] == ["fig1-L1", "fig1-L3", "fig1-L6"]
    with pytest.raises(ValueError, match=r"fig1-L1: git_commit '[0-9a-f]{40}', but fig1-L3, trained beside it "
                                         r"\(trained_with\), records '[0-9a-fc]{40}'"):
        land_gpu_runs.promote(1, root)
    assert {r.params["epochs"] for r in figures.load_figure(1, "gpu", root=root / "results" / "figures").values()} \
        == {2600}  # the figure keeps its runs


def test_two_jobs_with_the_same_notebook_must_be_resolved_by_hand(root, tmp_path):
    """Job a landed L1 of piece L1-L3 (its L3 stopped); job b made the piece again and landed L3: both records hold
    fig1.L1-L3.run.ipynb, which promote refuses to choose between."""
    a = land_gpu_runs.land(job_outputs(tmp_path, "a", "L1-L3", [dict(L=1), dict(L=3, status="stopped")]), "a", root)
    b = land_gpu_runs.land(job_outputs(tmp_path, "b", "L1-L3", [dict(L=1), dict(L=3)]), "b", root)
    land_gpu_runs.land(job_outputs(tmp_path, "c", "L6", [dict(L=6)]), "c", root)
    assert (a["landed"], b["landed"]) == (["fig1-L1"], ["fig1-L3"])
    with pytest.raises(ValueError, match="jobs bring notebooks of the same name"):
        land_gpu_runs.promote(1, root)


def test_refusals_name_the_argument(root, tmp_path):
    with pytest.raises(ValueError, match="files must be the folder of a GPU job's outputs"):
        land_gpu_runs.land(tmp_path, "job", root)
    files = job_outputs(tmp_path, "job", "L1", [dict(L=1)])
    with pytest.raises(ValueError, match="job must name the job"):
        land_gpu_runs.land(files, "../elsewhere", root)


def test_land_refuses_a_run_made_from_uncommitted_code(root, tmp_path):
    """A run whose call (or a later call that resumed it: a segment) ran from code that was not its commit's is
    refused by land, as promote would refuse it, rather than landed and found out at promotion."""
    resumed_dirty = {"segments": [{"git_dirty": False}, {"git_dirty": True}]}
    files = job_outputs(tmp_path, "job", "L1-L6", [dict(L=1, prov={"git_dirty": True}), dict(L=3, prov=resumed_dirty),
                                                   dict(L=6, prov={"git_dirty": None})])
    got = land_gpu_runs.land(files, "job", root)
    assert got["landed"] == [] and sorted(got["refused"]) == ["fig1-L1", "fig1-L3", "fig1-L6"]
    assert all("not made from a clean commit" in why for why in got["refused"].values())
    assert not (root / "results" / "figures" / "pieces").exists()
    at_its_commit = {"git_dirty": False, "git_commit": committed_provenance(1)["git_commit"]}  # every call, the run's
    clean = job_outputs(tmp_path, "job2", "L1", [dict(L=1, prov={"segments": [at_its_commit] * 2})])
    assert land_gpu_runs.land(clean, "job2", root)["landed"] == ["fig1-L1"]
    # git_dirty False, but beside the changed files that only a checkout with changes records: not clean either
    changed = {"git_dirty_paths": ["nclib/train.py"], "git_diff_sha256": "0" * 64}
    got = land_gpu_runs.land(job_outputs(tmp_path, "job4", "L6", [dict(L=6, prov=changed)]), "job4", root)
    assert got["landed"] == [] and "not made from a clean commit" in got["refused"]["fig1-L6"]
    # clean, but at a commit outside this checkout's history (rebased away): a fresh clone's chapters would refuse it
    if figures.unknown_commits([]) is not None:  # git can say
        elsewhere = job_outputs(tmp_path, "job3", "L3", [dict(L=3, prov={"git_commit": "f" * 40})])
        got = land_gpu_runs.land(elsewhere, "job3", root)
        assert got["landed"] == [] and "not a commit in the history" in got["refused"]["fig1-L3"]


def test_code_changes_follow_the_history_not_the_hashes(tmp_path):
    """The commits of the landed runs are compared each with the next in git's history, in nclib/ and the training
    notebook: a diff from the smallest hash to the largest could run backwards in time and merge two changes."""
    import subprocess

    repo = tmp_path / "repo"
    (repo / "nclib").mkdir(parents=True)
    (repo / "book" / "training").mkdir(parents=True)

    def commit(path, text):
        (repo / path).write_text(text)
        git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", path], check=True)
        return subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    first = commit("nclib/engine.py", "a = 1\n")
    second = commit("nclib/engine.py", "a = 2\n")
    third = commit("book/training/train.md", "the notebook\n")
    commit("README.md", "not code\n")
    order = [first, second, third]
    assert land_gpu_runs.in_history_order([third, first, second, first], repo) == order
    report = land_gpu_runs.code_changes([third, second, first], repo).splitlines()
    starts = [i for i, line in enumerate(report) if ".." in line and line.endswith(":")]
    assert [report[i] for i in starts] == [f"{first[:10]}..{second[:10]}:", f"{second[:10]}..{third[:10]}:"]
    between_first, between_next = report[starts[0]:starts[1]], report[starts[1]:]
    assert any("nclib/engine.py" in line for line in between_first)
    assert not any("train.md" in line for line in between_first)
    assert any("book/training/train.md" in line for line in between_next)
    assert not any("engine.py" in line for line in between_next)
    assert land_gpu_runs.code_changes([first, first], repo) == "one commit"
    assert land_gpu_runs.code_changes([first, "f" * 40], repo) == "not known (CalledProcessError)"
