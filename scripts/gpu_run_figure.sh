#!/usr/bin/env bash
# Run one of the paper's Figures 1-4 (three runs, L = 1, 3, 6) through the training notebook with papermill,
# exactly as the book's figure runs are made (GPU at the paper's settings, or CPU-scale), then give the
# executed notebook its own title and target (scripts/figure_notebook.py relabel).
#
#   scripts/gpu_run_figure.sh FIG SCALE [NAME=VALUE ...]
#
# FIG: 1-4; SCALE: gpu (the paper's settings; results/figures/gpu/, book/figures/gpu/) or cpu-scale (results/figures/cpu-scale/,
# book/figures/cpu-scale/); NAME=VALUE: notebook parameters to override (read by nclib.parameters.parse_setting).
# Environment: PY (python interpreter with nclib, papermill, jupytext and ipykernel; scripts/gpu_figures.sh exports
# its own; default .venv/bin/python when it exists, else python3), RESULTS_ROOT / NOTEBOOK_ROOT (default
# results/figures and book/figures),
# PIECE (e.g. L1 or L1-L3: the notebook makes only those runs, L_values set to match, and is written as
# figK.PIECE.run.ipynb: a figure trained one piece per GPU machine; L1-L6 are the runs L = 1 and 6, not a range,
# also spelled L1,L6).
# A notebook already there (a committed one) is left as it was when no run of the call wrote to its folder (every
# run finished already with these parameters and was read as it is, or the call was refused): to make the runs
# again, remove their folders first (git rm -r results/figures/SCALE/figK) or pass overwrite=true.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then echo "usage: $0 FIG SCALE [NAME=VALUE ...]" >&2; exit 2; fi
fig=$1; scale=$2; shift 2
if [ -z "${PY:-}" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi; fi
case "$scale" in gpu|cpu-scale) ;; *) echo "SCALE must be gpu or cpu-scale" >&2; exit 2 ;; esac
results=${RESULTS_ROOT:-results/figures}/$scale/fig$fig
nbdir=${NOTEBOOK_ROOT:-book/figures}/$scale
mkdir -p "$results" "$nbdir"
params=$(mktemp /tmp/fig${fig}-params.XXXXXX.yaml)
sets=(--set "out_dir=$results")
nb=$nbdir/fig$fig.run.ipynb
relabel=()
PIECE=${PIECE:-}
PIECE=${PIECE//,/-}
if [ -n "$PIECE" ]; then
  Ls=$("$PY" -c "import sys; sys.path.insert(0, 'scripts'); import figure_notebook as f; p = f.check_piece(sys.argv[1]); print([int(x[1:]) for x in p.split('-')])" "$PIECE") || exit 2
  sets+=(--set "L_values=$Ls")
  nb=$nbdir/fig$fig.$PIECE.run.ipynb
  relabel=(--piece "$PIECE")
fi
for kv in "$@"; do sets+=(--set "$kv"); done
"$PY" scripts/figure_notebook.py params "$fig" --scale "$scale" "${sets[@]}" > "$params"
echo "== Figure $fig ($scale): parameters $(tr -d ' \n' < "$params")"
start=$(date +%s)
# the notebook already there, kept aside: put back if no run of the call writes to its folder (read below)
kept=""
if [ -f "$nb" ]; then kept=$(mktemp /tmp/fig${fig}-kept.XXXXXX); cp "$nb" "$kept"; fi
marker=$(mktemp /tmp/fig${fig}-start.XXXXXX)
# An interrupt (the time budget's `timeout --signal=INT`) stops papermill, which keeps the cells run so far;
# this shell only notes it, so that the executed notebook is still relabelled below.
trap 'echo "== Figure $fig: interrupted"' INT
set +e
"$PY" -m jupytext --to ipynb -o - book/training/train.md | "$PY" -m papermill - "$nb" -f "$params" --cwd . --no-progress-bar
status=$?
set -e
trained=$(find "$results" -type f \( -name provenance.json -o -name history.csv \) -newer "$marker" -print -quit)
if [ -n "$kept" ] && [ -z "$trained" ]; then
  mv "$kept" "$nb"
  echo "== Figure $fig ($scale): no run was trained, so $nb is left as it was (to make the runs again: git rm -r" \
    "their folders in $results first, or overwrite=true)"
elif [ -f "$nb" ]; then
  "$PY" scripts/figure_notebook.py relabel "$nb" "$fig" "$scale" "${relabel[@]}"
fi
rm -f "$params" "$marker" ${kept:+"$kept"}
echo "== Figure $fig ($scale) ended with status $status after $(( $(date +%s) - start )) s: $nb, $(ls -d "$results"/fig$fig-L* 2>/dev/null | tr '\n' ' ')"
exit $status
