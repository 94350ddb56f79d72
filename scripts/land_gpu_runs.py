"""Land the 12,000-epoch GPU runs of a figure one piece at a time, and make them the figure's runs once complete.

A figure's three runs at the paper's 12,000 epochs come back in pieces (``FULL=1 PIECE=L6 scripts/gpu_figures.sh``
on one GPU machine, ``PIECE=L3`` and ``PIECE=L1`` on others, or ``PIECE=L1-L3`` on one where it fits), each piece
committed as soon as it is back.  Until all three are
there the figure keeps its committed runs and its chapter builds unchanged; so a piece lands beside them:

    python scripts/land_gpu_runs.py land FILES --job NAME
        FILES is the folder the GPU job's $OUT files were copied to (figures_gpu.tar.gz, log.txt).  Every run
        of the archive that finished the paper's epochs with its figure's configuration
        (nclib.figures.check_run) is copied to results/figures/pieces/fig<k>/fig<k>-L<L>/ (without the temporary
        files that a write cut off by a kill leaves, nclib.runs.is_write_temporary); the job's record
        goes to results/figures/pieces/fig<k>/jobs/NAME/: its executed notebook(s) and its earlier segments'
        notebooks as the job wrote them, the earlier commands' logs and CUDA test reports that the archive holds
        (logs/call<N>-*.txt), the .txt files of FILES (log.txt) and landed.json (which runs landed, which were
        refused and why, and where and when they came from: the archive's path as given and its sha256, the time
        of the landing in UTC, and the commit of the checkout whose code landed them and whether that code was
        the commit's, nclib.provenance.git_state).  A run that did not finish, or finished fewer epochs, or was
        trained in any of its calls from code that was not its commit's (nclib.figures.made_clean_problems:
        git_dirty, or changed files recorded beside it), or whose folder cannot be read or is not named by it
        (fig<k>-L<L> with the L of its params, and its run_name), is reported and not landed: it never becomes a
        figure's run; nor is a run made in another precision, on another GPU model, with another torch, another
        NC3 or other training data (data_sha256) than the runs of its figure landed before, in this job or an
        earlier one (promote would refuse the figure, and the run would stand in the way of the right one), nor
        one of another precision than the committed stability pairs of results/stability/ decide
        (nclib.figures.stability.precision_decision).  The stability runs come before any figure run
        (scripts/README.md): while no committed pair decides a precision, nothing lands.  A job none of whose
        runs of a figure landed leaves no record there.  A run already landed is not replaced, nor a job's
        record.
    python scripts/land_gpu_runs.py promote FIG
        once results/figures/pieces/fig<FIG>/ holds the runs L = 1, 3, 6 of the paper's 12,000 epochs, clean
        commits of one precision, GPU model, torch version, NC3 and training data, that precision the one the
        committed stability pairs decide (none promoted while no pair decides one), and the runs trained side by
        side at one commit (nclib.figures.together_problems: a run named in another's trained_with is the run
        trained beside it only where the two record one started_utc, the start of the call that trained them; a
        partner refused at landing and made again later records another and is not held to the other runs'
        commit; it prints the commits in the order of git's history, and what changed in nclib/ and
        book/training/train.md from each to the next):
        they replace the figure's committed GPU runs in results/figures/gpu/fig<FIG>/ (the earlier ones stay in
        git's history), with the jobs' records in results/figures/gpu/fig<FIG>/jobs/ and their notebooks in
        book/figures/gpu/, and it prints the _toc.yml line that lists those.  The figure's chapter then reads
        the new runs, and its asserts say which sentences to rewrite.
    python scripts/land_gpu_runs.py decision [--precision Q]
        prints the precision that the committed stability pairs of results/stability/ decide (the check of land and
        promote, decided_precision); status 2, and why, where none is decided, or where it is not Q: FULL mode of
        scripts/gpu_figures.sh checks its PRECISION so before any GPU time is spent, since runs of another
        precision, or made before a decision is committed, never land; and a stability job's pairs, unpacked into
        results/stability/, are read so before they are committed (scripts/README.md), so that a damaged pair or
        a run folder that is no run of the setting is caught before the commit.

``--epochs`` (default: the paper's 12,000) is the epoch count a run must have finished to land (a trial of the
tooling); promote takes only runs of the paper's epochs, so shorter runs never replace a figure's.  ``--root``
(default: the repository) is where results/ and book/ are.  scripts/README.md gives the whole recipe.
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import ROOT, figures, provenance  # noqa: E402
from nclib.datafiles import sha256_file  # noqa: E402
from nclib.figures import stability  # noqa: E402
from nclib.runs import is_write_temporary, load_run  # noqa: E402

#: Where landed pieces wait for their figure's other runs (under --root).
PIECES = figures.RESULTS.relative_to(ROOT) / "pieces"
#: Where a figure's GPU runs and their executed notebooks are committed (under --root), as nclib.figures reads them.
GPU_RUNS = figures.RESULTS.relative_to(ROOT) / "gpu"
GPU_NOTEBOOKS = figures.NOTEBOOKS.relative_to(ROOT) / "gpu"
#: Where a FULL job's archive holds the logs of the earlier commands on its machine (scripts/gpu_figures.sh).
EARLIER_LOGS = pathlib.Path("logs")
#: Where the committed precision stability pairs lie (under --root): their decision is every figure run's precision.
STABILITY = pathlib.Path("results") / "stability"


def arithmetic(params: dict, provenance: dict) -> dict:
    """What the runs of one figure must share to be the figure made at once: the precision of the products, the
    GPU model, the torch version, what NC3 compares (``nclib.figures.Run.nc3_compares``: a bias-free run made
    before NC3 compared class with class reads otherwise) and the training data (``data_sha256``) (land refuses a
    run that differs from those landed before, promote a figure whose runs differ)."""
    return {"precision": params.get("precision"), "GPU": provenance.get("device_name"),
            "torch": provenance.get("versions", {}).get("torch"),
            "NC3": figures.Run(None, params, {}, provenance).nc3_compares,
            "data_sha256": provenance.get("data_sha256")}


def decided_precision(root: pathlib.Path) -> dict:
    """The precision decision of the committed stability pairs under ``root`` (:data:`STABILITY`:
    ``nclib.figures.stability.precision_decision`` of the pairs as ``load_stability(committed=True)`` reads them).
    ValueError, naming the folder, where no stability run lies there (none committed yet: the stability runs come
    before any figure run, and their decision is every figure run's precision, tf32 or fp32) or where the runs
    there cannot be read as committed pairs or decide nothing: no figure run's precision can then be checked."""
    folder = pathlib.Path(root) / STABILITY
    if not any(folder.glob(f"fig{stability.FIGURE}-L{stability.L}-*-seed*")):
        raise ValueError(f"no stability pair is committed in {str(folder)!r}: the stability runs decide the figure "
                         f"runs' precision before any figure run lands or is promoted (scripts/README.md: the "
                         f"stability job first)")
    try:
        return stability.precision_decision(stability.stability_rows(stability.load_stability(folder,
                                                                                              committed=True)))
    except ValueError as exc:
        raise ValueError(f"the stability runs in {str(folder)!r} decide no precision, against which the figure "
                         f"runs' is checked: {exc}") from None


def _decision_text(decision: dict) -> str:
    """The decision of :func:`decided_precision` in a refusal's words."""
    return (f"the {decision['precision']} that the committed stability pairs decide ({STABILITY}/: "
            f"{decision['case']}, seeds {decision['seeds']})")


def _runs_in(tree: pathlib.Path) -> list[pathlib.Path]:
    """The run folders of an unpacked archive: every folder results/figures/gpu/fig<k>/fig<k>-L<L>/, whatever it
    holds (one without its params.json is refused by :func:`land` as a folder that cannot be read, not passed
    over)."""
    return sorted(p for p in (tree / GPU_RUNS).glob("fig[0-9]/fig[0-9]-L*") if p.is_dir())


def land(files: pathlib.Path, job: str, root: pathlib.Path, epochs: int | None = None) -> dict:
    """Land the finished runs of the GPU job whose outputs are in ``files``; returns {"landed": [...],
    "refused": {run: why}} (module docstring).  Each figure's landed.json holds these and :func:`landing_source`."""
    files, root = pathlib.Path(files), pathlib.Path(root)
    archive = files / "figures_gpu.tar.gz"
    if not archive.is_file():
        raise ValueError(f"files must be the folder of a GPU job's outputs, with figures_gpu.tar.gz; {str(files)!r} "
                         f"has none")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", job or ""):
        raise ValueError(f"job must name the job in letters, digits, '.', '_' or '-', got {job!r}")
    want = figures.scale_settings("gpu")["epochs"] if epochs is None else epochs
    decision = decided_precision(root)  # no figure run lands before the committed stability pairs decide
    source = landing_source(archive)
    landed, refused = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tree = pathlib.Path(tmp)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tree, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ValueError(f"{str(archive)!r} cannot be read, cut short or damaged ({type(exc).__name__}: {exc}); "
                             f"land the archive of a command that ended") from None
        runs = _runs_in(tree)
        if not runs:
            raise ValueError(f"{str(archive)!r} holds no run folder under {GPU_RUNS}/fig<k>/")
        figs = sorted({int(path.parent.name[3:]) for path in runs})
        for fig in figs:
            record = root / PIECES / f"fig{fig}" / "jobs" / job
            if record.exists():
                raise ValueError(f"job {job!r} has landed in {str(record.relative_to(root))!r} already; give this "
                                 f"job another name")
        before = {fig: _landed_arithmetic(root / PIECES / f"fig{fig}") for fig in figs}
        for path in runs:
            fig = int(path.parent.name[3:])
            try:  # a run folder the job left without its history or provenance (killed early): refused alone
                params, history, prov = load_run(path)
            except ValueError as exc:
                refused[path.name] = "not a run folder that can be read: " + str(exc).replace(f"{tree}/", "")
                continue
            run = figures.Run(path, params, history, prov)
            # the figure's configuration, and made from a clean commit in every call that trained it
            # (nclib.figures.made_clean_problems), as promote checks them
            problems = figures.check_run(run, fig, "gpu")
            if int(params["epochs"]) != want:
                problems.append(f"L={run.L}: {params['epochs']} epochs, not the {want} a figure run needs")
            problems += figures.commit_problems({run.L: run})  # a commit rebased away: a fresh clone lacks it
            made_with = arithmetic(params, prov)
            if made_with["precision"] != decision["precision"]:
                problems.append(f"L={run.L}: precision {made_with['precision']}, not {_decision_text(decision)}, "
                                f"which promote refuses")
            for name, theirs in before[fig].items():
                differ = [f"{what} {made_with[what]}, not the landed {name}'s {theirs[what]}" for what in made_with
                          if made_with[what] != theirs[what]]
                if differ:
                    problems.append(f"L={run.L}: {'; '.join(differ)} (promote needs one precision, GPU model, "
                                    f"torch, NC3 and training data in a figure)")
                    break
            dest = root / PIECES / f"fig{fig}" / path.name
            if dest.exists():
                problems.append(f"already landed in {dest.relative_to(root)}")
            if problems:
                refused[path.name] = "; ".join(problems)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            # the run's files, without the temporary files of writes a kill cut off (no part of the run)
            shutil.copytree(path, dest, ignore=lambda folder, names: [n for n in names if is_write_temporary(n)])
            landed.append(path.name)
            before[fig][path.name] = made_with
        for fig in figs:  # the job's record where a run of its landed: its notebooks show every run it made
            if not any(n.startswith(f"fig{fig}-") for n in landed):
                continue
            record = root / PIECES / f"fig{fig}" / "jobs" / job
            record.mkdir(parents=True)
            for sub, found in (("notebooks", (tree / GPU_NOTEBOOKS).glob(f"fig{fig}.*run.ipynb")),
                               ("segments", (tree / GPU_RUNS / f"fig{fig}" / "segments").glob("*.run.ipynb"))):
                for nb in sorted(found):
                    (record / sub).mkdir(exist_ok=True)
                    shutil.copy2(nb, record / sub / nb.name)
            # the earlier commands' logs the archive carries (call1-log.txt, ...), then log.txt of FILES
            for text in sorted((tree / EARLIER_LOGS).glob("*.txt")) + sorted(files.glob("*.txt")):
                shutil.copy2(text, record / text.name)
            mine = {"landed": [n for n in landed if n.startswith(f"fig{fig}-")],
                    "refused": {n: why for n, why in refused.items() if n.startswith(f"fig{fig}-")}, **source}
            (record / "landed.json").write_text(json.dumps(mine, indent=2) + "\n")
    return {"landed": landed, "refused": refused}


def landing_source(archive: pathlib.Path) -> dict:
    """Where and when a landing's runs came from, for its landed.json: the ``archive`` (a job's figures_gpu.tar.gz)
    by its path as given and its sha256, so that the file the runs were taken from can be told from another of the
    same name; ``landed_utc``, the time of the landing; and ``checkout``, the ``git_commit`` of the checkout whose
    code landed them (this script's, whose nclib made the checks) and ``git_dirty``, whether that code differed
    from it (:func:`nclib.provenance.git_state`: both None where git cannot say)."""
    state = provenance.git_state(ROOT)
    return {"archive": str(archive), "archive_sha256": sha256_file(archive),
            "landed_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "checkout": {"git_commit": state["git_commit"], "git_dirty": state["git_dirty"]}}


def _landed_arithmetic(here: pathlib.Path) -> dict:
    """{run name: :func:`arithmetic`} of the runs landed in ``here`` (a figure's pieces folder) that can be read."""
    found = {}
    for path in sorted(here.glob("fig[0-9]-L*/params.json")):
        try:
            params, _, prov = load_run(path.parent)
        except ValueError:
            continue  # a folder damaged by hand: promote names it
        found[path.parent.name] = arithmetic(params, prov)
    return found


#: What :func:`code_changes` reports between commits: the library and the training notebook the runs went through.
CODE_PATHS = ("nclib", "book/training/train.md")


def in_history_order(commits: list[str], root: pathlib.Path) -> list[str]:
    """The distinct ``commits``, oldest first in the order of git's history (``git rev-list --topo-order``), not of
    their hashes; CalledProcessError where git does not know one."""
    unique = list(dict.fromkeys(commits))
    listed = subprocess.run(["git", "-C", str(root), "rev-list", "--topo-order", "--reverse", *unique],
                            capture_output=True, text=True, check=True).stdout.split()
    place = {c: i for i, c in enumerate(listed)}
    return sorted(unique, key=lambda c: place[c])


def code_changes(commits: list[str], root: pathlib.Path) -> str:
    """What changed in :data:`CODE_PATHS` from each of the landed runs' commits to the next in history
    (``git diff --stat`` of consecutive commits), or why it cannot be said: a report, not a check."""
    if len(set(commits)) < 2:
        return "one commit"
    try:
        ordered = in_history_order(commits, root)
        parts = []
        for a, b in zip(ordered, ordered[1:]):
            stat = subprocess.run(["git", "-C", str(root), "diff", "--stat", a, b, "--", *CODE_PATHS],
                                  capture_output=True, text=True, check=True).stdout.strip()
            parts.append(f"{a[:10]}..{b[:10]}:" + (f"\n{stat}" if stat else " unchanged"))
    except (OSError, subprocess.CalledProcessError, KeyError) as exc:
        return f"not known ({type(exc).__name__})"
    return "\n".join(parts)


def promote(fig: int, root: pathlib.Path) -> str:
    """Make the landed runs of Figure ``fig`` its GPU runs (module docstring); returns the _toc.yml line."""
    f = figures.figure(fig)
    root = pathlib.Path(root)
    here = root / PIECES / f"fig{f.number}"
    runs = {}
    for L in figures.L_VALUES:
        path = here / f"fig{f.number}-L{L}"
        if not (path / "params.json").is_file():
            raise ValueError(f"Figure {f.number} has no landed run L = {L} in {str(path.relative_to(root))!r}; "
                             f"promote once L = {', '.join(map(str, figures.L_VALUES))} are all landed")
        params, history, prov = load_run(path)
        runs[L] = figures.Run(path, params, history, prov)
    # each folder named by its run too (L and run_name), every call that trained a run (its segments: a run resumed
    # in a later job has one per job) from a clean commit (made_clean_problems), one torch and one data_sha256
    figures.check_figure(runs, f, "gpu")
    # the paper's epochs only: runs landed with a smaller --epochs (a trial) never replace the figure's runs
    want = figures.scale_settings("gpu")["epochs"]
    short = {L: int(r.params["epochs"]) for L, r in runs.items() if int(r.params["epochs"]) != want}
    if short:
        raise ValueError(f"the landed runs {', '.join(f'L={L} of {e} epochs' for L, e in short.items())} are not of "
                         f"the paper's {want}: only runs of {want} epochs replace the figure's runs")
    # a figure made in pieces is the figure made at once only with the same arithmetic and NC3 on the same data:
    # check_figure found one torch and one data_sha256; what land compares besides, one precision, GPU model and NC3
    made_with = {L: arithmetic(r.params, r.provenance) for L, r in runs.items()}
    for what in ("precision", "GPU", "NC3"):
        values = {L: made[what] for L, made in made_with.items()}
        if len(set(values.values())) > 1:
            raise ValueError(f"the landed runs differ in {what}: " + ", ".join(f"L={L} {v}" for L, v in values.items()))
    # and the precision the committed stability pairs decide: never a default's, and none before they decide
    decision = decided_precision(root)
    precision = next(iter(made_with.values()))["precision"]
    if precision != decision["precision"]:
        raise ValueError(f"the landed runs were trained in precision {precision}, not {_decision_text(decision)}")
    outside = figures.commit_problems(runs, "the landed runs")  # the chapters refuse them in a fresh clone
    if outside:
        raise ValueError("; ".join(outside))
    jobs = sorted((here / "jobs").iterdir()) if (here / "jobs").is_dir() else []
    moves = {}  # every notebook a job brought, to its place in the book or beside the runs
    books = root / GPU_NOTEBOOKS
    target = root / GPU_RUNS / f"fig{f.number}"
    for job in jobs:
        for nb in sorted((job / "notebooks").glob("*.run.ipynb")) if (job / "notebooks").is_dir() else []:
            moves.setdefault(books / nb.name, []).append(nb)
        for nb in sorted((job / "segments").glob("*.run.ipynb")) if (job / "segments").is_dir() else []:
            moves.setdefault(target / "segments" / nb.name, []).append(nb)
    clash = {str(dest.relative_to(root)): [str(s.relative_to(root)) for s in srcs]
             for dest, srcs in moves.items() if len(srcs) > 1}
    if clash:
        raise ValueError(f"jobs bring notebooks of the same name: {clash}; keep one job's (remove the other job's "
                         f"record from {str((here / 'jobs').relative_to(root))!r}) and promote again")
    commits = [r.provenance.get("git_commit") for r in runs.values()]
    print(f"Figure {f.number}: runs from commits {sorted(set(commits))}; what changed in {', '.join(CODE_PATHS)} "
          f"from each to the next:\n{code_changes(commits, root)}")
    if target.exists():
        shutil.rmtree(target)  # the figure's earlier runs; git keeps them
    target.mkdir(parents=True)
    for L in figures.L_VALUES:
        shutil.move(str(here / f"fig{f.number}-L{L}"), str(target / f"fig{f.number}-L{L}"))
    books.mkdir(parents=True, exist_ok=True)
    for old in books.glob(f"fig{f.number}.*run.ipynb"):
        old.unlink()  # the earlier runs' executed notebook(s)
    for dest, (src,) in moves.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest))
    if jobs:
        shutil.move(str(here / "jobs"), str(target / "jobs"))  # logs and landed.json, beside the runs
    shutil.rmtree(here)
    notebooks = sorted(dest for dest in moves if dest.parent == books)
    sections = [f"{{file: {GPU_NOTEBOOKS.as_posix()}/{nb.name[:-len('.ipynb')]}}}" for nb in notebooks]
    sections.append(f"{{file: book/figures/cpu-scale/fig{f.number}.run}}")
    return f"sections: [{', '.join(sections)}]"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("land", help="land the finished runs of one GPU job's outputs beside the figure's runs")
    a.add_argument("files", type=pathlib.Path)
    a.add_argument("--job", required=True,
                   help="a name for the job (its record goes to results/figures/pieces/fig<k>/jobs/JOB/)")
    a.add_argument("--epochs", type=int, default=None, help="the epochs a run must have finished (default 12,000)")
    b = sub.add_parser("promote", help="make a figure's landed runs its GPU runs once L = 1, 3, 6 are there")
    b.add_argument("fig", type=int)
    c = sub.add_parser("decision", help="print the precision the committed stability pairs decide")
    c.add_argument("--precision", default=None,
                   help="the figure runs' precision: status 2 where the committed pairs decide another, or none")
    for p in (a, b, c):
        p.add_argument("--root", type=pathlib.Path, default=ROOT)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "land":
            got = land(args.files, args.job, args.root, args.epochs)
            for name in got["landed"]:
                print(f"landed   {name}")
            for name, why in got["refused"].items():
                print(f"refused  {name}: {why}")
            return 0 if got["landed"] else 1
        if args.cmd == "decision":
            decision = decided_precision(args.root)
            if args.precision is not None and args.precision != decision["precision"]:
                raise ValueError(f"precision {args.precision!r} is not {_decision_text(decision)}")
            print(f"decision: {decision['precision']} ({decision['case']}; seeds {decision['seeds']})")
            return 0
        print(promote(args.fig, args.root))
        print(f"Figure {args.fig}: its GPU runs are now the landed ones; put the line above under its file in "
              f"_toc.yml and rewrite the sentences whose asserts fail")
        return 0
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
