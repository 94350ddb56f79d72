# The two commands of README.md:  `make book` builds the book, `make test` runs every test.
# Both set everything up on a fresh machine (a virtual environment in .venv from requirements.txt).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JB_FLAGS := --builder html -W -n --keep-going

.PHONY: own-venv setup browser book test nbval-notebooks nbval clean

# A .venv that is a link (to another checkout's environment, CONTRIBUTING.md "Checking your work") is refused before
# anything is installed: requirements.txt ends in `-e .`, so installing it there would switch that environment's
# nclib to this checkout, and the book built here would import the other checkout's nclib.
own-venv:
	@if [ -L $(VENV) ]; then echo "make: $(VENV) is a link to $$(readlink $(VENV)), another checkout's environment, which make would switch to this checkout's nclib (requirements.txt ends in -e .): remove the link for an environment of this checkout's own, or use the link without make, as CONTRIBUTING.md says" >&2; exit 1; fi

$(STAMP): requirements.txt pyproject.toml | own-venv
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium for the test that looks at the rendered pages (math typeset offline).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null)

# Build the book into a clean _build/html; any failing cell, broken reference or missing citation fails.
book: $(STAMP)
	rm -rf _build/html _build/.doctrees _build/jupyter_execute _build/reports
	$(VENV)/bin/jupyter-book build . $(JB_FLAGS)

# All tests: the book build, nclib's unit tests, the rendered-page check and the check that the build executed
# every chapter of _toc.yml, every cell, without an error (tests/test_executed_chapters.py reads the executed
# notebooks in _build/jupyter_execute).  Each chapter is executed once, by the build, which fails on any cell
# that raises, so on each chapter's own asserts.  nbval is not run a second time here: on two chapters
# (engine, thm43) the build executed them in 122 s and nbval took 146 s for the same cells in the same kind of
# fresh kernel (commit 31191e8, two CPU cores), doubling the time for no check the build lacks.
test: $(STAMP) browser book
	$(PY) -m pytest tests -p no:cacheprovider

# Optional, not part of `make test`: every chapter executed again under nbval (one pytest item per cell),
# converted by jupytext into a scratch folder (never next to the .md).
nbval-notebooks: $(STAMP)
	rm -rf _build/nbval && mkdir -p _build/nbval
	$(PY) scripts/chapters.py --to _build/nbval

nbval: nbval-notebooks
	$(PY) -m pytest _build/nbval --nbval-lax -p no:cacheprovider

clean:
	rm -rf _build
