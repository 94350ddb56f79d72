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
# A notebook already there (a committed one) is left as it was, byte for byte and with its mode, when no run of the
# call wrote to its folder (every run finished already with these parameters and was read as it is, or the call was
# refused), also when the call is stopped: papermill writes into a temporary file beside it, which replaces it only
# once a run was trained (or where there was none). Its folder is the out_dir of the notebook's parameters: the
# script's own, or one a NAME=VALUE gives. To make the runs again, remove their folders first (git rm -r
# results/figures/SCALE/figK for committed ones, rm -r in a folder git ignores such as results/runs/) or pass
# overwrite=true.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then echo "usage: $0 FIG SCALE [NAME=VALUE ...]" >&2; exit 2; fi
fig=$1; scale=$2; shift 2
if [ -z "${PY:-}" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi; fi
case "$scale" in gpu|cpu-scale) ;; *) echo "SCALE must be gpu or cpu-scale" >&2; exit 2 ;; esac
results=${RESULTS_ROOT:-results/figures}/$scale/fig$fig
nbdir=${NOTEBOOK_ROOT:-book/figures}/$scale
mkdir -p "$results" "$nbdir"
# the temporary files of this call (the parameters, the marker, the notebook as papermill writes it), removed however
# it ends
params="" marker="" written=""
trap 'rm -f -- ${params:+"$params"} ${marker:+"$marker"} ${written:+"$written"}' EXIT
params=$(mktemp "${TMPDIR:-/tmp}/fig${fig}-params.XXXXXX.yaml")
sets=(--set "out_dir=$results")
name=fig$fig
relabel=()
PIECE=${PIECE:-}
PIECE=${PIECE//,/-}
if [ -n "$PIECE" ]; then
  Ls=$("$PY" -c "import sys; sys.path.insert(0, 'scripts'); import figure_notebook as f; p = f.check_piece(sys.argv[1]); print([int(x[1:]) for x in p.split('-')])" "$PIECE") || exit 2
  sets+=(--set "L_values=$Ls")
  name=fig$fig.$PIECE
  relabel=(--piece "$PIECE")
fi
nb=$nbdir/$name.run.ipynb
for kv in "$@"; do sets+=(--set "$kv"); done
"$PY" scripts/figure_notebook.py params "$fig" --scale "$scale" "${sets[@]}" > "$params"
# where the runs are written: $results, or the out_dir a NAME=VALUE gave (the last one given wins)
out_dir=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['out_dir'] or 'results/runs')" "$params")
echo "== Figure $fig ($scale): parameters $(tr -d ' \n' < "$params")"
start=$(date +%s)
marker=$(mktemp "${TMPDIR:-/tmp}/fig${fig}-start.XXXXXX")
# papermill writes beside the notebook, into a file of its own: the notebook already there (a committed one) stays as
# it was until a run of the call has written to its folder (read below), however the call ends. A hidden *.run.ipynb,
# so that no run counts it as a change to its code (nclib.provenance) and no figK.*run.ipynb glob reads it
written=$(mktemp --suffix=.run.ipynb "$nbdir/.$name.XXXXXX")
# An interrupt (the time budget's `timeout --signal=INT`, or a TERM) stops papermill, which keeps the cells run so
# far; this shell only notes it, so that the executed notebook is still kept and relabelled below.
trap 'echo "== Figure $fig: interrupted"' INT TERM
set +e
"$PY" -m jupytext --to ipynb -o - book/training/train.md | "$PY" -m papermill - "$written" -f "$params" --cwd . --no-progress-bar
status=$?
set -e
# did a run of the call write to its folder? (find cannot tell: taken as yes, so that no trained notebook is lost)
trained=""
if [ -d "$out_dir" ]; then
  trained=$(find "$out_dir" -type f \( -name provenance.json -o -name history.csv \) -newer "$marker" -print -quit) \
    || trained="unknown: find failed"
fi
if [ -f "$nb" ] && [ -z "$trained" ]; then
  if git ls-files --error-unmatch "$out_dir" > /dev/null 2>&1; then remove="git rm -r"; else remove="rm -r"; fi
  echo "== Figure $fig ($scale): no run was trained, so $nb is left as it was (to make the runs again: $remove" \
    "their folders in $out_dir first, or overwrite=true)"
elif [ -s "$written" ]; then
  # in place first, then relabelled there (a call stopped meanwhile keeps papermill's notebook as before), with the
  # mode of the notebook it replaces, or a new file's (not mktemp's 0600, which would hide it from other readers)
  mode=$(stat -c %a "$nb" 2>/dev/null) || mode=$(printf '%o' $(( 0666 & ~$(umask) )))
  mv -f "$written" "$nb"
  relabelled=0
  "$PY" scripts/figure_notebook.py relabel "$nb" "$fig" "$scale" "${relabel[@]}" || relabelled=$?
  chmod "$mode" "$nb"
  if [ "$status" -eq 0 ]; then status=$relabelled; fi
fi
echo "== Figure $fig ($scale) ended with status $status after $(( $(date +%s) - start )) s: $nb, $(ls -d "$out_dir"/fig$fig-L* 2>/dev/null | tr '\n' ' ')"
exit $status
