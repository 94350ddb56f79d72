"""List the book's chapters from _toc.yml, or convert the CPU ones to .ipynb for nbval.

    python scripts/chapters.py              # print the chapter files
    python scripts/chapters.py --to DIR     # jupytext every CPU chapter into DIR

Executed run notebooks (``*.run.ipynb``, papermill output of GPU or CPU-scale runs) are committed with
their outputs and never re-run.
"""
from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _files(entries):
    for entry in entries or []:
        if "file" in entry:
            yield entry["file"]
        yield from _files(entry.get("sections"))
        for part in entry.get("parts", []) or []:
            yield from _files(part.get("chapters"))
        yield from _files(entry.get("chapters"))


def chapters() -> list[pathlib.Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = [toc["root"], *_files(toc.get("parts", [])), *_files(toc.get("chapters", []))]
    out = []
    for name in names:
        for suffix in ("", ".md", ".ipynb"):
            path = ROOT / f"{name}{suffix}"
            if path.is_file():
                out.append(path)
                break
        else:
            raise SystemExit(f"_toc.yml names {name!r}, which is not a file")
    return out


def is_notebook(path: pathlib.Path) -> bool:
    """Whether a chapter file is a MyST notebook (jupytext front matter), not a plain markdown page."""
    text = path.read_text()
    return text.startswith("---") and "jupytext:" in text.split("---", 2)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--to", type=pathlib.Path, help="folder to write the CPU chapters into as .ipynb")
    args = parser.parse_args()
    files = chapters()
    if args.to is None:
        print("\n".join(str(p.relative_to(ROOT)) for p in files))
        return
    args.to.mkdir(parents=True, exist_ok=True)
    jupytext = pathlib.Path(sys.executable).with_name("jupytext")
    for path in files:
        if path.suffix != ".md":
            continue
        if not is_notebook(path):
            continue  # plain markdown page, nothing to execute
        target = args.to / (str(path.relative_to(ROOT).with_suffix(".ipynb")).replace("/", "__"))
        subprocess.run([str(jupytext), "--quiet", "--to", "ipynb", "-o", str(target), str(path)], check=True)
        print(f"{path.relative_to(ROOT)} -> {target}")


if __name__ == "__main__":
    main()
