#!/usr/bin/env bash
# Prepare .gpu/ (an ignored folder) for the GPU runs of Figures 1-4 (scripts/gpu_figures.sh): run HERE before the GPU
# job that scripts/README.md gives, and again after any change to this script, scripts/gpu_data_slice.py,
# scripts/gpu_letters_data.py or the library code that makes what .gpu/ holds (nclib/letters.py, nclib/data.py,
# nclib/datafiles.py), committed or not (the job refuses a .gpu/ that other forms of them made:
# .gpu/prepared_from, below), and after a change of the class counts of Figures 1 and 3 (their profile in
# nclib/imbalance.py or nclib/figures/config.py: the job refuses a slice cut for other counts than the figures' now,
# scripts/gpu_data_slice.py --check).
# Refuses (status 2) a checkout whose code is not its commit's, as
# the job's FULL and STABILITY modes do there, unless ALLOW_DIRTY=1; and (status 2, after the CIFAR-10 slice) run
# folders in results/stability/ that the stability job's pairs could neither keep nor make again, as its STABILITY
# mode does there (scripts/stability_runs.py --check-out: a CPU trial left there, say).
#   .gpu/wheels/             papermill, jupytext, ipykernel and their needs (cp312 wheels, ../shared/wheels-gpu),
#                            checked to install those three on the GPU machine's Python 3.12 by themselves (a dry run
#                            of pip for CPython 3.12 on manylinux x86-64; status 1 naming what does not resolve)
#   .gpu/cifar10_subset_slice.npz   the 3,000 rows of the CIFAR-10 copy that Figures 1 and 3 use (scripts/gpu_data_slice.py)
#   .gpu/letters_synthetic_gpu.npz  the 5,500 letters of Figures 2 and 4, rendered here once (scripts/gpu_letters_data.py)
#   .gpu/prepared_from              written last: the git hash-object of each preparation file (PREPARATION, below)
#                                   as this run read it (committed or not), and the commit; scripts/gpu_figures.sh
#                                   refuses a .gpu/ without it, or one whose files differ from the working files there
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
# the check of gpu_figures.sh's FULL and STABILITY modes (clean_code), made here before a GPU machine is started:
# the code must be its commit's (nclib.provenance.git_state of this checkout); ALLOW_DIRTY=1 prepares anyway
state=$("$PY" -c "import sys; from nclib import provenance; print(provenance.code_state(sys.argv[1]))" "$PWD") \
  || state="the check itself failed"
if [ "$state" != clean ]; then
  if [ -z "${ALLOW_DIRTY:-}" ]; then
    echo "refused: the checkout's code is not its commit's ($state); the GPU job's FULL and STABILITY modes refuse" >&2
    echo "to start from it. Commit first (ALLOW_DIRTY=1 to prepare anyway)." >&2
    exit 2
  fi
  echo "ALLOW_DIRTY: preparing a checkout that is not clean ($state)"
fi
rm -f .gpu/prepared_from  # written again only once everything below is made
# the preparation files as this run reads them (git hash-object of the working files, before they run): the scripts
# and the nclib modules whose code makes what .gpu/ holds, what the job compares with its checkout's (the same list
# as scripts/gpu_figures.sh's PREPARATION)
PREPARATION="scripts/gpu_prepare.sh scripts/gpu_data_slice.py scripts/gpu_letters_data.py nclib/letters.py nclib/data.py nclib/datafiles.py"
made_by=""
for file in $PREPARATION; do
  made_by+="$(git hash-object -- "$file") $file"$'\n'
done
rm -rf .gpu/wheels  # only the wheels of $SHARED, none left from an earlier preparation
mkdir -p .gpu/wheels
cp "$SHARED"/wheels-gpu/*.whl .gpu/wheels/
# the job installs papermill, jupytext and ipykernel there from these wheels alone (no network, Python 3.12 on x86-64
# Linux): pip resolves them here as it would there, a dry run for CPython 3.12 and the manylinux platforms up to
# glibc 2.28 whatever this Python is, installing nothing, with none of what is installed here counted; a need
# missing, or a wheel built for another Python, is named now, before a GPU machine is started, not in its install.
# The legacy names too: pip matches each name given exactly, and a wheel tagged only manylinux2014 (glibc 2.17),
# manylinux2010 (2.12) or manylinux1 (2.5) is not one of manylinux_2_17, _2_12 or _2_5 to it
platforms=()
for glibc in $(seq 28 -1 5); do platforms+=(--platform "manylinux_2_${glibc}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
if ! resolved=$("$PY" -m pip install --dry-run --quiet --ignore-installed --no-index --find-links .gpu/wheels \
    --python-version 3.12 --implementation cp "${platforms[@]}" --only-binary=:all: --disable-pip-version-check \
    papermill jupytext ipykernel 2>&1); then
  echo "refused: the wheels of $SHARED/wheels-gpu do not install papermill, jupytext and ipykernel on Python 3.12" >&2
  echo "(CPython, manylinux x86-64) by themselves; pip's dry run said:" >&2
  echo "$resolved" >&2
  exit 1
fi
echo "wheels: papermill, jupytext and ipykernel install from .gpu/wheels alone on Python 3.12 (pip's dry run)"
"$PY" scripts/gpu_data_slice.py "$SHARED/data/cifar10_subset.npz" .gpu/cifar10_subset_slice.npz
# the stability job's check of its runs' folder (scripts/stability_runs.py --check-out), made here before a GPU machine
# is started, at the job's default settings (the slice just made, the GPU): a run folder in results/stability/ that
# its pairs can neither keep nor make again (a CPU trial left there, say) would fail its seed's pair there
if ! "$PY" scripts/stability_runs.py --check-out --on-gpu --set data_path=.gpu/cifar10_subset_slice.npz \
    --set device=auto; then
  echo "refused: results/stability/ holds runs that the stability job's pairs can neither keep nor make again" >&2
  echo "(above): move each aside, out of the checkout, and prepare again" >&2
  exit 2
fi
"$PY" scripts/gpu_letters_data.py .gpu/letters_synthetic_gpu.npz
git check-ignore -q .gpu || { echo ".gpu is not ignored by git" >&2; exit 1; }
du -sh .gpu/wheels .gpu/cifar10_subset_slice.npz .gpu/letters_synthetic_gpu.npz
# what travels to the GPU machine: the tree (tracked and untracked-not-ignored files), .git (the jobs check that the
# code is its commit's) and .gpu/, at most LIMIT_MIB (64) MiB in all
LIMIT_MIB=${LIMIT_MIB:-64}
tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1)
dotgit=$(du -sb .git | cut -f1)
gpu=$(du -sb .gpu | cut -f1)
total=$(( tree + dotgit + gpu ))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "what travels: tree $(mib "$tree") + .git $(mib "$dotgit") + .gpu/ $(mib "$gpu") = $(mib "$total") of $LIMIT_MIB MiB"
if [ "$total" -gt $(( LIMIT_MIB * 1048576 )) ]; then
  echo "too large: the repository copy with .gpu/ must stay within $LIMIT_MIB MiB (git gc --prune=now, or leave out" >&2
  echo "untracked files)" >&2
  exit 1
fi
printf 'commit %s\n%s' "$(git rev-parse HEAD)" "$made_by" > .gpu/prepared_from.tmp
mv .gpu/prepared_from.tmp .gpu/prepared_from
echo ".gpu/ prepared$([ "$state" = clean ] || echo " from a checkout that is not clean ($state)"):"
sed 's/^/  /' .gpu/prepared_from
