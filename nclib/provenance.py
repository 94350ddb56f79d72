"""Where a run or a benchmark was made: the commit of the checkout and whether its code differed from it, and the
versions of the software (every run's ``provenance.json``, :ref:`ch-train`; the benchmarks' records).  Torch is
imported only to read its version.
"""
from __future__ import annotations

import ctypes
import glob
import hashlib
import os
import pathlib
import platform
import re
import subprocess

import numpy as np

from . import ROOT, _checks

#: Paths whose changes do not make a run's code "dirty": the committed outputs of runs themselves (run folders
#: under results/, executed notebooks *.run.ipynb) and of the benchmarks (benchmarks/results/), which a run or a
#: benchmark that regenerates them rewrites while it starts (``> benchmarks/results/x.txt`` empties the file first).
OUTPUT_PATHSPECS = (":(exclude)results", ":(exclude,glob)**/*.run.ipynb", ":(exclude)benchmarks/results")
#: The files whose rules say what :func:`git_state` counts as ignored: the checkout's own ignore lists, in each folder,
#: and no user's (``core.excludesFile``, ``.git/info/exclude``).
IGNORE_FILE = ".gitignore"
#: A commit as a run records it (``git_commit``, :func:`git_state`): 40 lowercase hexadecimal digits.
COMMIT_HASH = re.compile(r"[0-9a-f]{40}")


def output_folders(outputs, root=None) -> list[str]:
    """The output folders among ``outputs`` (paths, relative ones to the working directory) that lie inside the
    checkout at ``root`` (default the repository's), each once, relative to ``root`` (POSIX form): a call's run
    folders, whose files it writes while it trains, are its output, not its code.  A folder outside the checkout
    needs no leaving out; a folder that is the checkout or holds it is not left out, since that would leave out the
    code itself.  What :func:`git_state` leaves out of a checkout's changes, and what a run records as its
    ``git_output_folders`` so that its resume leaves them out too.  ValueError naming ``outputs`` for anything but
    a list of paths, and naming ``root`` as :func:`_root` does."""
    if isinstance(outputs, (str, bytes, os.PathLike)) or not hasattr(outputs, "__iter__"):
        raise ValueError(f"outputs must be a list of paths, got {outputs!r}")
    folders = list(outputs)
    if not all(isinstance(f, (str, os.PathLike)) and str(f) for f in folders):
        raise ValueError(f"outputs must be a list of non-empty paths, got {outputs!r}")
    top = _root(root).resolve()
    inside = []
    for folder in folders:
        path = pathlib.Path(folder).resolve()
        if path != top and path.is_relative_to(top):
            inside.append(path.relative_to(top).as_posix())
    return list(dict.fromkeys(inside))


def _root(root) -> pathlib.Path:
    """``root``, the folder of a checkout, as a path: None is the repository's (:data:`nclib.ROOT`); anything but a
    str or a path (a number, a list), and the empty path, are refused with a ValueError naming ``root``."""
    if root is None:
        return ROOT
    return pathlib.Path(_checks.path_arg(root, "root", "None (the repository) or the path of a checkout's folder"))


def git_env() -> dict:
    """The environment every git command of nclib runs in (:func:`git_state`, the figures' check that the runs'
    commits are in the history): this process's without any ``GIT_*`` variable, since
    those redirect git to another repository, index or object store (``GIT_DIR``, ``GIT_WORK_TREE``,
    ``GIT_INDEX_FILE``, ``GIT_COMMON_DIR``, ``GIT_OBJECT_DIRECTORY``, as a git hook sets some of them), change how
    pathspecs match (``GIT_LITERAL_PATHSPECS``) or add settings (``GIT_CONFIG_*``): git reads the checkout at the
    folder it runs in, and nothing else."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def git_state(root=None, outputs=()) -> dict:
    """The commit of the checkout at ``root`` (default the repository's) and whether its code differs from it:
    ``git_commit``, ``git_dirty`` (files other than :data:`OUTPUT_PATHSPECS` and the output folders ``outputs``
    (:func:`output_folders`) modified, or untracked and not ignored: a new code file is code too),
    ``git_dirty_paths`` (those files, the tracked ones first, at most 20) and ``git_diff_sha256`` (the sha256 of the
    tracked files' changes against the commit, ``git diff-index -p HEAD``, followed by each untracked file's name and
    contents; None when there is none), so that two calls can tell whether they ran from the same checkout; all
    four None where git or the repository is missing, and where ``root`` is not the top folder of the repository
    git finds there (a folder inside another checkout, or ignored by it, as a package installed into a virtual
    environment in a checkout: the outer checkout's commit is not its code's).  Without untracked files the hash is
    that of the changes alone, as it was before they counted.  ``outputs``: the call's output folders (a run's
    ``out_dir``), whose files change while it runs; leaving them out changes the hash only where their files were
    counted as code.  An output folder in which git tracks a file is not left out: a tracked file there is code,
    whose changes count.

    Only the checkout's own files decide: git runs without the ``GIT_*`` variables of the environment
    (:func:`git_env`), and what is ignored is what the checkout's ``.gitignore`` files say, not a user's own
    ignore lists (``core.excludesFile``, ``.git/info/exclude``), so that a new code file one user's list hides is
    code for every user.  An untracked folder holding a git repository of its own, which git names as one entry
    (``vend/``), counts by the contents of every file that repository tracks or does not ignore
    (:func:`_repository_sha256`); where those cannot be read the state is all None: git cannot say which code it
    is.  ValueError naming ``root`` for anything but None or a path (:func:`_root`)."""
    root = _root(root)
    folders = output_folders(outputs, root)
    env = git_env()

    def git(*args, text=True):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=text, timeout=20, env=env)
    none = {"git_commit": None, "git_dirty": None, "git_dirty_paths": None, "git_diff_sha256": None}
    try:
        top = git("rev-parse", "--show-toplevel", text=False)  # a path: its bytes as they are
        if top.returncode != 0 or pathlib.Path(os.fsdecode(top.stdout.rstrip(b"\n"))).resolve() != root.resolve():
            return none  # root is no checkout of its own: inside another one, or no git repository at all
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return none
        specs = list(OUTPUT_PATHSPECS)
        for folder in folders:
            tracked = git("ls-files", "-z", "--", f":(literal){folder}", text=False)
            if tracked.returncode != 0:
                return none
            if not tracked.stdout:
                specs.append(f":(exclude,literal){folder}")
        status = git("status", "--porcelain", "--untracked-files=no", "--", ".", *specs)
        # -z: each name as it is, never quoted; relative to root, as the status's names; only the checkout's
        # .gitignore files decide what is ignored (--exclude-standard would add each user's own lists)
        others = git("ls-files", "-z", "--others", f"--exclude-per-directory={IGNORE_FILE}", "--", ".", *specs,
                     text=False)
        if status.returncode != 0 or others.returncode != 0:
            return none
        paths = [line[3:] for line in status.stdout.splitlines() if line.strip()]
        untracked = sorted(os.fsdecode(name) for name in others.stdout.split(b"\0") if name)
        diff = None
        if paths or untracked:
            h = hashlib.sha256()
            if paths:
                # plumbing with fixed options: the same changes give the same bytes under any user's git configuration
                out = git("diff-index", "-p", "--binary", "--full-index", "--no-color", "--no-ext-diff",
                          "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/", "HEAD", "--", ".", *specs,
                          text=False)
                if out.returncode != 0:
                    return none
                h.update(out.stdout)
            for name in untracked:
                if name.endswith("/"):  # a repository of its own, which git does not look into
                    digest = _repository_sha256(root / name, env)
                    if digest is None:
                        return none
                    h.update(b"\0repository\0" + os.fsencode(name) + b"\0" + digest.encode())
                    continue
                h.update(b"\0untracked\0" + os.fsencode(name) + b"\0" + _file_sha256(root / name).encode())
            diff = h.hexdigest()
        dirty = paths + untracked
        return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty), "git_dirty_paths": dirty[:20],
                "git_diff_sha256": diff}
    except (OSError, subprocess.SubprocessError):
        return none


def _repository_sha256(folder: pathlib.Path, env: dict) -> str | None:
    """The sha256 of the files of the git repository at ``folder`` (one nested in a checkout, untracked there) that it
    tracks or does not ignore (its ``.gitignore`` files decide), each by name and contents, a repository nested in it
    likewise: what an untracked nested repository adds to :func:`git_state`'s hash, whatever its commit.  A submodule
    it records but has not checked out (an empty folder) counts by the commit it records, the code it names.  None
    where ``folder`` is not the top of a repository of its own or git cannot list its files (``env``:
    :func:`git_env`'s)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, timeout=20, env=env)
    top = git("rev-parse", "--show-toplevel")
    if top.returncode != 0 or pathlib.Path(os.fsdecode(top.stdout.rstrip(b"\n"))).resolve() != folder.resolve():
        return None  # no repository of its own there: git cannot list its files
    listed = git("ls-files", "-z", "--cached", "--others", f"--exclude-per-directory={IGNORE_FILE}")
    staged = git("ls-files", "-z", "--stage")  # "mode sha stage\tname"; mode 160000: a submodule's commit
    if listed.returncode != 0 or staged.returncode != 0:
        return None
    recorded = {}
    for entry in staged.stdout.split(b"\0"):
        info, _, name = entry.partition(b"\t")
        if info.startswith(b"160000 "):
            recorded[os.fsdecode(name)] = info.split()[1].decode()
    h = hashlib.sha256()
    for name in sorted(set(os.fsdecode(n) for n in listed.stdout.split(b"\0") if n)):
        path = folder / name
        if path.is_dir() and not path.is_symlink():  # a repository nested in it, or a submodule
            digest = _repository_sha256(path, env)
            if digest is None and name in recorded and not any(path.iterdir()):
                h.update(b"\0submodule\0" + os.fsencode(name) + b"\0" + recorded[name].encode())
                continue
            if digest is None:
                return None
            h.update(b"\0repository\0" + os.fsencode(name) + b"\0" + digest.encode())
        else:
            h.update(b"\0file\0" + os.fsencode(name) + b"\0" + _file_sha256(path).encode())
    return h.hexdigest()


def changed_files(then: dict, now: dict) -> str:
    """The files that make two checkouts' uncommitted changes differ, as a refused resume names them
    (:func:`nclib.train.run`, ``resume=True``, :ref:`ch-engine`): ``then`` and ``now`` are :func:`git_state`'s answers
    at the same commit (a run's ``provenance.json`` records the first call's).  The files changed in one and not the
    other, by name; where both name the same files, those files (their contents differ); empty where a state
    records no ``git_dirty_paths`` (runs made before it was recorded).  Each state names at most 20 files, so with
    more the comparison covers those.  A file that a job writes into the checkout (a batch system's log) is such a
    change unless git ignores it.  ValueError naming ``then`` or ``now`` where one is no dict."""
    for name, state in (("then", then), ("now", now)):
        if not isinstance(state, dict):
            raise ValueError(f"{name} must be a git state (a dict with git_dirty_paths), got {state!r}")
    was, have = then.get("git_dirty_paths"), now.get("git_dirty_paths")
    if was is None or have is None:
        return ""
    added, gone = [p for p in have if p not in was], [p for p in was if p not in have]
    parts = ([f"changed now and not then: {', '.join(added)}"] if added else []) + (
        [f"changed then and not now: {', '.join(gone)}"] if gone else [])
    if not parts and have:
        parts = [f"the same files, changed since: {', '.join(have)}"]
    more = " (of the first 20 files on each side)" if max(len(was), len(have)) >= 20 else ""
    return "; ".join(parts) + more


def _file_sha256(path: pathlib.Path) -> str:
    """The sha256 of a file's bytes (a symbolic link's target name), or "unreadable" where it cannot be read."""
    try:
        data = os.fsencode(os.readlink(path)) if path.is_symlink() else path.read_bytes()
    except OSError:
        return "unreadable"
    return hashlib.sha256(data).hexdigest()


def code_state(root=None) -> str:
    """One line for the GPU jobs' check that a checkout's code is its commit's (``scripts/gpu_prepare.sh`` here,
    ``scripts/gpu_figures.sh`` there, in FULL and STABILITY modes): ``"clean"``, ``"no git"`` where
    :func:`git_state` cannot tell, else the changed files (at most 20), space-separated.  ValueError naming ``root``
    for anything but None or a path."""
    state = git_state(_root(root))
    if state["git_dirty"] is None:
        return "no git"
    return "clean" if state["git_dirty"] is False else " ".join(state["git_dirty_paths"])


def file_at_commit(commit: str, path, root=None) -> str | None:
    """The text of the file ``path`` (relative to the checkout, POSIX form) as the commit ``commit`` of the checkout
    at ``root`` (default the repository's) holds it: the code that made a run whose provenance records that commit
    (``git_commit``), where the code has since moved or changed.  Used in :ref:`ch-engine` and :ref:`ch-fig1`.
    None where git cannot show it: no git, no repository there, a commit it does not hold (a shallow clone, a copy
    of the files), no such file at that commit (a folder there is none), or a ``root`` that is not the top folder of
    a checkout (a folder inside another checkout, whose commits are not its own), as for :func:`git_state`.  Git runs
    without the ``GIT_*`` variables of the environment (:func:`git_env`).  ValueError naming ``commit`` unless it is 7 to 40
    lowercase hexadecimal digits (a name such as ``HEAD`` would follow the checkout), naming ``path`` unless it is
    a relative path inside the checkout, and naming ``root`` as :func:`_root` does."""
    if not isinstance(commit, str) or not 7 <= len(commit) <= 40 or any(c not in "0123456789abcdef" for c in commit):
        raise ValueError(f"commit must be a commit hash (7 to 40 lowercase hexadecimal digits), got {commit!r}")
    rel = pathlib.PurePosixPath(_checks.path_arg(path, "path", "a path relative to the checkout", blank=False))
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"path must be a path relative to the checkout, inside it, got {path!r}")
    root = _root(root)

    def git(*args, text=True):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=text, timeout=20, env=git_env())
    try:
        top = git("rev-parse", "--show-toplevel", text=False)  # root itself, not a checkout around it
        if top.returncode != 0 or pathlib.Path(os.fsdecode(top.stdout.rstrip(b"\n"))).resolve() != root.resolve():
            return None
        kind = git("cat-file", "-t", f"{commit}:{rel.as_posix()}")  # a file ("blob"), not a folder ("tree")
        if kind.returncode != 0 or kind.stdout.strip() != "blob":
            return None
        shown = git("show", f"{commit}:{rel.as_posix()}")
    except (OSError, subprocess.SubprocessError):
        return None
    return shown.stdout if shown.returncode == 0 else None


def unknown_commits(commits, root=None) -> list[str] | None:
    """The commits among ``commits`` that are not in the history of the checkout at ``root`` (default the
    repository's, :data:`nclib.ROOT`), sorted: not stored, or stored but no ancestor of its HEAD (a commit amended or
    rebased away stays stored until git collects it, and a commit of an unmerged branch is stored too; a fresh clone
    of the history holds neither).  None where git cannot say: no git, no repository at ``root`` (a copy of the
    files, or a folder inside another checkout), or a shallow clone, which lacks older commits.  Reading the runs
    never needs git; where it is there, a run whose commit (``git_commit``, :func:`git_state`) is not in the history
    was not made by its code.  Git runs without the ``GIT_*`` variables of the environment (:func:`git_env`).
    ValueError for ``commits`` other than a list of text, and naming ``root`` as :func:`_root` does.
    Chapters: :ref:`ch-fig1` to :ref:`ch-fig4`, :ref:`ch-figures-summary`."""
    if not isinstance(commits, (list, tuple, set)) or not all(isinstance(c, str) for c in commits):
        raise ValueError(f"commits must be a list of commit hashes, got {commits!r}")
    commits = sorted(set(commits))
    root = _root(root)
    env = git_env()  # the repository at root, whatever the caller's environment points git at

    def git(*args, stdin=None):
        return subprocess.run(["git", *args], cwd=root, env=env, input=stdin, capture_output=True, text=True,
                              timeout=30)
    try:
        top = git("rev-parse", "--show-toplevel")
        shallow = git("rev-parse", "--is-shallow-repository")
        if (top.returncode != 0 or pathlib.Path(top.stdout.strip()).resolve() != root.resolve()
                or shallow.returncode != 0 or shallow.stdout.strip() != "false"):
            return None
        if not commits:
            return []
        found = git("cat-file", "--batch-check", stdin="".join(f"{c}^{{commit}}\n" for c in commits))
        lines = found.stdout.splitlines()
        if found.returncode != 0 or len(lines) != len(commits):
            return None
        stored = [c for c, line in zip(commits, lines)
                  if COMMIT_HASH.fullmatch(c) and line.split()[:2] == [c, "commit"]]
        # merge-base --is-ancestor: status 0 for an ancestor of HEAD, 1 for none, anything else an error
        ancestry = {c: git("merge-base", "--is-ancestor", c, "HEAD").returncode for c in stored}
    except (OSError, subprocess.SubprocessError):
        return None
    if any(code not in (0, 1) for code in ancestry.values()):
        return None
    return [c for c in commits if ancestry.get(c) != 0]


def versions() -> dict:
    """The versions of Python, torch (and its CUDA, None for a CPU build), numpy, torchvision, scipy and matplotlib
    (None for one that is not installed).  Pillow's is recorded where it makes the data, in the data record of the
    letters it resizes (``pillow``, :func:`nclib.data.load`)."""
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
           "cuda": torch.version.cuda}
    for name in ("torchvision", "scipy", "matplotlib"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def changed_sources() -> list[str]:
    """The source files of nclib's imported modules that differ on disk from what this process imported (edited since,
    replaced by a checkout of another commit, or gone), each relative to the repository (:data:`nclib.ROOT`), in
    the order of their modules' names.  A module imported after an edit runs the edited code, and is not named.  A
    run records the checkout as it is on disk when it is called (:func:`git_state`): where this list is not empty,
    that is not the code the process runs, and :func:`nclib.train.run` refuses to train (:ref:`ch-engine`).  The
    files are compared by their sha256 (:data:`nclib.LOADED_SOURCES`, recorded as each module is imported): a file
    touched, or written back as it was, is not changed."""
    import sys

    import nclib

    changed = []
    for name, module in sorted(sys.modules.items()):
        if name != "nclib" and not name.startswith("nclib."):
            continue
        file = getattr(module, "__file__", None)
        path = pathlib.Path(file).resolve() if isinstance(file, str) else None
        then = None if path is None else nclib.LOADED_SOURCES.get(str(path))
        if then is not None and _file_sha256(path) != then:
            changed.append(path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path))
    return changed


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``, else "cpu": how a CPU run's
    provenance and a CPU benchmark name the machine."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def cpu_name() -> str:
    """The CPU a run trains on, as its provenance names it (``host_cpu``): :func:`cpu_model` and the vector kernels
    torch chooses on it (``torch.backends.cpu.get_cpu_capability()``, e.g. "AVX2"), which decide the arithmetic
    of a CPU run: a resumed CPU run must find the same."""
    import torch

    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # a torch without it
        capability = "unknown kernels"
    return f"{cpu_model()} ({capability})"


def blas_core() -> str | None:
    """The kernels numpy's OpenBLAS runs on this CPU, as OpenBLAS names them (its ``get_corename``, e.g. "Haswell" or
    "SkylakeX"); None where numpy's BLAS does not say.  OpenBLAS picks them by the CPU unless the environment's
    ``OPENBLAS_CORETYPE`` names them (read when numpy loads it); the float64 products of
    :func:`nclib.ufmtrain.train_ufm` are its, and a run is reproducible bit for bit only with the same kernels
    (results/minority/README.md: one machine gives either table set of :ref:`ch-minority` by choosing them)."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "lib*openblas*"))
    for lib in libs:
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename64_",
                     "openblas_get_corename"):
            try:
                f = getattr(ctypes.CDLL(lib), name)
            except (OSError, AttributeError):
                continue
            f.restype = ctypes.c_char_p
            return f().decode()
    return None
