#!/usr/bin/env bash
# The GPU runs of Figures 1-4 at the paper's settings, as one job on a GPU machine with a time budget
# (scripts/README.md gives the exact command; scripts/gpu_prepare.sh fills .gpu/ here first). Runs THERE, from
# the repository root:
#
#   OUT="$OUT" bash scripts/gpu_figures.sh      ($OUT: the folder whose files come back, set there already)
#
# 0. checks what must hold before any time is spent, each a refusal with status 2 and nothing made: the numbers
#    (BUDGET_S, RESERVE_S, LEVER_TIMEOUT_S, ANATOMY_TIMEOUT_S, MEASURE_S, PAIRS_S, STABILITY_EXTRA, TEST_EPOCHS,
#    MAX_TRAIN_S, FULL_EPOCHS) are whole numbers; PIECE names runs of a figure; $DATA exists (.gpu/, made here by
#    scripts/gpu_prepare.sh in the repository root and sent along with the checkout) where a CIFAR-10 figure or the
#    stability runs need it, and is neither damaged nor an outdated slice, of an older form or cut for other class
#    counts than the figures' (scripts/gpu_data_slice.py --check); a .gpu/ the job reads was made by the
#    preparation files ($PREPARATION: the preparation scripts and the nclib modules that render the letters and
#    select and read the data) as this checkout has them (their git hash-object in .gpu/prepared_from, written by
#    scripts/gpu_prepare.sh, against the working files here);
#    TIME_LEFT_S and LEVERS_FROM (below) can be read; torch sees a CUDA GPU (every mode, unless DEVICE=cpu: without
#    one the default mode would spend minutes on benchmarks and a calibration at the CPU's speed before failing); in
#    FULL and STABILITY modes, BUDGET_S is at least RESERVE_S + 60, the code is its commit's and the GPU's name
#    contains $EXPECT_GPU (default H200 there: every budget and timing of these jobs is an H200's); in FULL mode,
#    PRECISION is given and is the precision that the stability pairs committed in results/stability/ decide
#    (scripts/land_gpu_runs.py decision, the check of the landing: a job before any pair is committed, or in
#    another precision, is refused), and a piece's first command can finish the piece at PRECISION in what this
#    machine's commands leave its notebooks at the slow end of the runbook's times, from TIME_LEFT_S where given
#    (plan_seconds; scripts/gpu_budget.py pieces --piece, from the committed job PLAN_FROM); in STABILITY mode, no
#    run folder of $STABILITY_OUT is one that its pairs can neither keep nor make again (scripts/stability_runs.py --check-out: a run that ended with other parameters, a
#    CPU trial left there, would fail its seed's pair after the machine started); in every mode, PRECISION is tf32
#    or fp32;
# 1. installs papermill, jupytext and ipykernel from .gpu/wheels (no network there) unless present (not in
#    STABILITY mode, which runs no notebook; where pip installs nothing, an externally managed Python say, the job
#    ends with status 2 and what to do, nothing else run), and puts nclib on PYTHONPATH (and scripts/gpu_shim, a
#    stand-in for myst_nb.glue, if myst_nb is missing);
# 2. prints nvidia-smi, papermill's, ipykernel's, jupytext's and torch's versions, and runs the CUDA-only tests
#    of the engine (tests/test_train.py -k cuda -> $OUT/cuda_tests.txt; a failure is reported, not fatal:
#    the engine falls back to eager steps where a CUDA graph cannot be captured);
# 3. runs the engine benchmark for a few seconds at the runs' precision (benchmarks/bench_train.py, also a
#    figure's three runs one after another against side by side -> $OUT/bench_train_gpu.txt) and in strict
#    fp32 ($OUT/bench_train_gpu_fp32.txt), each stopped after 120 s (one that ends with another status than 0 is
#    named in the log, its file holding what it printed: the job goes on); then, at the runs' precision, the
#    engine's opt-in levers beside the plain engine (benchmarks/bench_train.py --levers $LEVERS --repeats 1:
#    steps/s of one run and a figure's runs side by side per epoch for each, timed once; the lines go to the log,
#    the record to $RESULTS_ROOT/gpu/bench_levers_$PRECISION.json, inside the archive, rewritten after each
#    lever), stopped after LEVER_TIMEOUT_S (default 60) s: a lever that fails costs at most that, and the figures
#    go on;
# 4. calibrates the engine's speed on the device (scripts/gpu_budget.py) and runs the figures of $FIGURES in
#    that order through the training notebook (scripts/gpu_run_figure.sh FIG gpu), each with the most epochs
#    (<= 12,000) that fit its share of the time left: this mode budgets in epochs (FULL mode uses the
#    engine's max_train_s instead), with `timeout` as a safety net; a figure that gets under 100 epochs is skipped; each figure's
#    three runs (L = 1, 3, 6) train side by side (nclib.train.run_many), in precision $PRECISION;
# 5. tars results/figures/gpu and book/figures/gpu into $OUT/figures_gpu.tar.gz (with the log, the
#    calibration, the CUDA test report and the two benchmark outputs beside it: 6 files).
# Status 1 (after the archive) when no figure's notebook ran, or one ended with another status than 0.
#
# STABILITY=1 (the first job on a GPU, before any 12,000-epoch run): after steps 0-2, the CUDA-only tests of the
# default step path ($CUDA_FIRST, == 2a; where the budget leaves under their 150 s and PAIRS_S, they run after the
# pairs instead, in == 5), the precision stability runs (== 3, scripts/stability_runs.py, seeds
# $STABILITY_SEEDS, default "0 1 2": Figure 1 at L = 6, fp32 against TF32, 400 epochs, into results/stability/;
# in what the budget leaves less MEASURE_S, default 150 s, kept for == 4 and 4b from what lies beyond PAIRS_S,
# default 170 s, so that a short budget goes to the pairs first; a pair started only with the time to finish it as
# the longest before it took),
# then the measurements the FULL runs are planned from: the engine benchmark at $PRECISION and fp32 with its JSON
# records (== 4), the levers (== 4b), the step's anatomy (== 4c, benchmarks/bench_anatomy.py $ANATOMY_ARGS,
# stopped after $ANATOMY_TIMEOUT_S s) (into $BENCH_DIR, default bench-tmp/ in the stability runs' folder, removed
# once archived: never the committed benchmarks/results/, whose rewritten files would make every later record of
# the job "dirty"; $OUT/benchmarks.tar.gz is rewritten after each, so that a job stopped later keeps them); then
# the other CUDA-only tests of tests/test_train.py and tests/test_levers.py (== 5; their report archived into
# benchmarks.tar.gz at once, so that a job stopped in == 6 keeps it there), then up to $STABILITY_EXTRA
# (default 3) more seeds while the budget lasts (== 6); archives (== 7) $OUT/stability.tar.gz (the folders of the
# whole pairs, both runs finished or diverged; a run cut off by the budget, and half a pair, are left out: no
# result; also written right after the pairs of == 3) and $OUT/benchmarks.tar.gz (the benchmark outputs and
# records, the CUDA test report), beside log.txt; then prints the summary and the decision of the pairs under the
# stability runs' folder (scripts/stability_runs.py --summary-only: its last line is `decision: ...`, or `no
# decision: ...` where, on the GPU, the TF32 runs did not differ from their fp32 pairs, or the runs cannot be read as
# runs of the setting). Status 1 when no pair is whole at the end; status 3 when whole pairs were archived (kept for
# inspection) but decide nothing: they are not to be landed (scripts/README.md).
# A CPU trial of this mode sets STABILITY_OUT to a folder outside results/stability/.
#
# FULL=1 (the paper's 12,000 epochs in several jobs): no benchmark and no calibration; each figure of $FIGURES
# trains toward 12,000 epochs (FULL_EPOCHS: fewer, the first FULL_EPOCHS epochs of the paper's run) with
# max_train_s = the seconds left (BUDGET_S - elapsed - RESERVE_S, default 60; MAX_TRAIN_S overrides), so its
# runs stop with a checkpoint when the job's time is up; the next job running the
# same command on the same (warm) machine resumes them (resume=true) until they finish (the log's last lines give
# that command in full: RESUME=1, TIME_LEFT_S, and this command's settings; next_command); with RESUME=1 (the runbook's
# second command) it refuses, status 2, where $STAGE holds no run of its piece, as on a fresh machine, where it would
# train the piece from epoch 0 in what is left. The runs live in
# $STAGE (default /var/tmp/nclib-gpu-stage, outside the repository copy, which each job refreshes; gone with the
# machine) and every job archives them (checkpoints excluded); after the notebook it prints each run's status and
# the epoch it reached (also before it starts, where an earlier job left runs); the executed notebook of an
# earlier job is kept as
# $STAGE/results/figures/gpu/figK/segments/figK[.PIECE].segment-N.run.ipynb before the notebook runs again, and
# where every run of the piece has finished already the notebook is not run again (the figure counts as made,
# its runs and the notebook that trained them archived as they are). With PIECE (e.g. PIECE=L1), each
# figure of $FIGURES makes only those runs (a letters figure does not fit one machine: one run per machine);
# PIECE=L1-L6, also spelled L1,L6, is the runs L = 1 and 6, not a range. A figure resumes where any run of its
# piece has a checkpoint, and trains only those runs (L_values): a run that diverged, or has no checkpoint, cannot
# continue and is left out, its folder as it is. The CUDA-only tests run only in a job that finds none of its pieces' runs in $STAGE
# (the first), and only those of stop-and-resume (CUDA_TESTS, a pytest -k expression, sets which). Each job keeps
# its log.txt and cuda_tests.txt in $STAGE/logs/ as callN-log.txt and callN-cuda_tests.txt, and the next job's
# archive holds them (logs/): the last job's figures_gpu.tar.gz carries the record of every job on the machine.
# TIME_LEFT_S (instead of BUDGET_S; FULL and STABILITY modes, a first command too): the time left on the GPU machine
# as the command starts; BUDGET_S is then that less 40 s, at most 570 (560 in STABILITY mode), and a FULL piece's
# first command plans the piece against what it leaves. In both modes a BUDGET_S, given or so computed, under
# RESERVE_S + 60 is refused. LEVERS_FROM: a lever record (a stability job's
# bench_levers_tf32.json, measured at PRECISION, else refused): its fastest lever that ends where the plain engine
# does joins the notebooks' settings.
# FULL mode, and STABILITY mode, refuse to start from a checkout whose code differs
# from its commit (nclib.provenance.git_state): scripts/land_gpu_runs.py promotes only runs made from a clean
# commit, so such a job would be lost; ALLOW_DIRTY=1 lets a CPU test of the script start anyway. Both modes
# also refuse to start where torch sees no CUDA device, or a GPU whose name lacks $EXPECT_GPU, unless DEVICE=cpu
# (a CPU test); the default mode refuses where torch sees no CUDA device (any model), unless DEVICE=cpu.
#
# Environment: BUDGET_S (seconds for the whole script, default 530), FIGURES (default "1 3": the figures to
# run, in priority order; "2 4" for the EMNIST-profile figures), PRECISION (default tf32: TF32 matrix
# products in training, the metrics in fp32; tf32 or fp32, anything else refused with status 2; FULL mode refuses
# to start without it, or with another than the committed stability pairs decide, status 2: there it is the
# stability job's decision, never a default), PY (default python3;
# exported: scripts/gpu_run_figure.sh runs the notebooks with it), DEVICE (default auto), DATA (default
# .gpu/cifar10_subset_slice.npz), LETTERS_DATA (default .gpu/letters_synthetic_gpu.npz: the letters of Figures 2
# and 4 rendered ahead, read by their notebooks and the calibration; where the file is missing they render the
# letters themselves, about 5 s a notebook), EXPECT_GPU, TIME_LEFT_S, LEVERS_FROM (above), EXTRA_SETS (more
# NAME=VALUE notebook overrides, e.g. "width=32 metric_every=1" in a CPU test, or levers on the GPU; the notebook
# and the stability runs read each word alike, nclib.parameters.parse_setting). For a CPU test of the script
# only: LIST_CUDA_TESTS=1 (print the CUDA-only test selections of the mode and stop), TEST_EPOCHS (every figure gets
# this many epochs),
# BENCH_ARGS, CALIB_ARGS, FORCE_SHIM=1, RESULTS_ROOT and NOTEBOOK_ROOT (scripts/gpu_run_figure.sh; the
# archive holds $RESULTS_ROOT/gpu and $NOTEBOOK_ROOT/gpu), DECISION_ROOT (FULL mode: a repository root whose
# committed stability pairs decide PRECISION, in place of this checkout's). tests/test_gpu_scripts.py runs it so
# on a CPU.
set -uo pipefail
# mapfile -d and empty arrays under set -u need bash 4.4
if (( BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4) )); then
  echo "scripts/gpu_figures.sh needs bash >= 4.4, this is $BASH_VERSION" >&2; exit 1
fi
export PYTHONUNBUFFERED=1  # a step stopped by its timeout keeps every line it printed in the log
cd "$(dirname "$0")/.."
T0=$(date +%s)
BUDGET_GIVEN=${BUDGET_S:-}
# FULL mode: the settings that a piece's next command on this machine must share with this one, as the environment
# gives them, before any default (next_command writes them into that command; those not given keep their defaults)
NEXT_SHARES="LEVERS_FROM EXTRA_SETS FULL_EPOCHS TEST_EPOCHS DATA LETTERS_DATA STAGE PY DEVICE EXPECT_GPU RESERVE_S"
NEXT_SHARES+=" DECISION_ROOT ALLOW_DIRTY FORCE_SHIM"
declare -A GIVEN=()
for name in $NEXT_SHARES; do if [ -n "${!name+set}" ]; then GIVEN[$name]=${!name}; fi; done
BUDGET_S=${BUDGET_S:-530}
export PY=${PY:-python3}  # scripts/gpu_run_figure.sh runs the notebooks with the same interpreter
DEVICE=${DEVICE:-auto}
DATA=${DATA:-.gpu/cifar10_subset_slice.npz}
LETTERS_DATA=${LETTERS_DATA:-.gpu/letters_synthetic_gpu.npz}
# FULL mode needs PRECISION given (the stability job's decision), refused otherwise: the default is no decision
PRECISION_GIVEN=${PRECISION:-}
PRECISION=${PRECISION:-tf32}
# the levers' benchmark: BENCH_ARGS where the environment sets them (a CPU test), a few seconds a lever otherwise;
# each lever is timed once (--repeats 1, given before LEVER_ARGS, whose own --repeats wins): bench_train.py's
# default three rounds a lever, estimated at 15-20 s a lever from the H200's speeds measured so far, would leave the
# last two or three of the seven levers out of the stability job's 90 s (LEVER_TIMEOUT_S=90, scripts/README.md)
LEVER_ARGS=${LEVER_ARGS:-${BENCH_ARGS:---steps 600 --figure-epochs 20}}
LEVERS=${LEVERS:-plain grouped_adam=true adam_in_backward=true steps_per_graph=23 grouped_adam=true,steps_per_graph=23 adam_in_backward=true,steps_per_graph=23 deferred_metrics=true}
LEVER_TIMEOUT_S=${LEVER_TIMEOUT_S:-60}  # the lever benchmark stops after this many seconds (the levers measured stay)
ANATOMY_ARGS=${ANATOMY_ARGS:---reps 200}  # STABILITY mode: benchmarks/bench_anatomy.py (a step's parts, batched backbones)
ANATOMY_TIMEOUT_S=${ANATOMY_TIMEOUT_S:-45}
MEASURE_S=${MEASURE_S:-150}  # STABILITY mode: the seconds the pairs (== 3) leave for the benchmark and the levers
# STABILITY mode: the seconds the three pairs are given first (their 2 minutes or so, their start and a margin):
# MEASURE_S is kept only from what the budget leaves beyond it, and the first CUDA tests (== 2a) run before the
# pairs only where the budget leaves PAIRS_S after their 150 s
PAIRS_S=${PAIRS_S:-170}
BENCH_ARGS=${BENCH_ARGS:---steps 600 --warmup 50 --repeats 3 --figure-epochs 40}
CALIB_ARGS=${CALIB_ARGS:-}
TEST_EPOCHS=${TEST_EPOCHS:-}
EXTRA_SETS=${EXTRA_SETS:-}
read -ra EXTRA <<< "$EXTRA_SETS"  # its words, never expanded as file names (lr_milestones=[6000])
FIGURES=${FIGURES:-1 3}  # which figures, in priority order (e.g. FIGURES=3 to finish one figure alone, "2 4" later)
FULL=${FULL:-}
# FULL mode, a piece's second command: RESUME=1 refuses (status 2) where $STAGE holds no run of the piece (a fresh
# machine: the first command's went back), which would otherwise train the piece from epoch 0 in what is left
RESUME=${RESUME:-}
# the CUDA-only engine tests run first (-k, in $ENGINE_TEST_FILES); in FULL mode only the stop-and-resume ones, to
# leave the time to training
CUDA_TESTS=${CUDA_TESTS:-$([ -n "$FULL" ] && echo "cuda and resumes" || echo cuda)}
ENGINE_TEST_FILES="tests/test_train.py"
RESERVE_S=${RESERVE_S:-60}
# PIECE (e.g. L1, L1-L3): only those runs of each figure (scripts/gpu_run_figure.sh), one piece per GPU machine
# (L1,L6 spells L1-L6, the runs L = 1 and 6, not a range; a piece's notebook and runs are named by the dash form)
PIECE=${PIECE:-}
export PIECE=${PIECE//,/-}
STABILITY=${STABILITY:-}
STABILITY_SEEDS=${STABILITY_SEEDS:-0 1 2}
STABILITY_EXTRA=${STABILITY_EXTRA:-3}
# STABILITY mode: the stability runs' folder (a CPU trial of the mode names one outside results/stability/)
STABILITY_OUT=${STABILITY_OUT:-results/stability}
# in STABILITY mode the CUDA tests of the default step path run before the stability runs (-k), the others after
CUDA_FIRST=${CUDA_FIRST:-graph_replays or graph_matches_eager or fp32_and_tf32 or matmul_precision}
FIRST_TEST_FILES="tests/test_step.py tests/test_train.py"
LATER_TESTS="cuda and not ($CUDA_FIRST)"
LATER_TEST_FILES="tests/test_train.py tests/test_levers.py"
# STABILITY mode: where the benchmark records go (then into the archive); default bench-tmp/ in the stability
# runs' folder (under results/, which no run counts as a change to its code), made and removed by stability_job
BENCH_DIR=${BENCH_DIR:-}
MAX_TRAIN_S=${MAX_TRAIN_S:-}
FULL_EPOCHS=${FULL_EPOCHS:-}
# FULL and STABILITY modes: the GPU model the job must run on (a part of its name, any case), checked before anything
# else; their timings, and so their budgets, are an H200's, and a figure's pieces must share one GPU model
# (scripts/land_gpu_runs.py promote). EXPECT_GPU= (empty) accepts any CUDA GPU. Not checked with DEVICE=cpu.
EXPECT_GPU=${EXPECT_GPU-$([ -n "$FULL$STABILITY" ] && echo H200)}
# FULL and STABILITY modes: the time left on the GPU machine as this command starts (a FULL piece's second command:
# the time left after the first; a first command where the machine has less than its full time left); BUDGET_S is
# then that less LEFT_MARGIN_S (the command's start and the files' way back), at most MOST_BUDGET_S (budget_of_left),
# and refused under RESERVE_S + 60
TIME_LEFT_S=${TIME_LEFT_S:-}
LEFT_MARGIN_S=40
MOST_BUDGET_S=$([ -n "$FULL" ] && echo 570 || echo 560)
# FULL mode: a lever record (benchmarks/bench_train.py --levers --json, e.g. a stability job's
# bench_levers_tf32.json): its fastest lever that ends where the plain engine does is added to the notebooks'
# settings (scripts/gpu_budget.py levers); the job refuses to start when the record cannot be read or was measured
# at another precision than PRECISION
LEVERS_FROM=${LEVERS_FROM:-}
# FULL mode: the repository root whose committed stability pairs (results/stability/) decide PRECISION, checked before
# anything runs (scripts/land_gpu_runs.py decision); this checkout, unless a CPU test of the script names a fixture's
DECISION_ROOT=${DECISION_ROOT:-.}
# FULL mode, a piece's first command: the piece must finish in what this machine's commands leave its notebooks at
# PRECISION, at the speed of the committed GPU job PLAN_FROM (its calibration.json and engine benchmark outputs:
# scripts/gpu_budget.py pieces --precision); checked before anything runs. What the commands leave is planned at the
# slow end of the runbook's times (scripts/README.md, "Why three pieces"; plan_seconds), from the seconds left as this
# command starts: TIME_LEFT_S where given, else a whole machine's FULL_LEFT_S (its 900 s less the slowest start, 120
# s). Each command trains its BUDGET_S less its setup before the notebook (FIRST_SETUP_S: the install and the
# stop-and-resume CUDA tests; SECOND_SETUP_S, a second command's, runs no CUDA test) and less RESERVE_S; the first
# ends by its BUDGET_S, and the second starts WAY_S later (the runbook's "less 30") with what is left, where that
# gives it a BUDGET_S it accepts (RESERVE_S + 60 or more). A piece that misses the slow end by a little would finish
# only on a machine that started fast, and what is still stopped at the machine's end is lost with it
PLAN_FROM=${PLAN_FROM:-results/figures/gpu/logs/call1}
FULL_LEFT_S=780
FIRST_SETUP_S=55
SECOND_SETUP_S=22
WAY_S=30
# what makes .gpu/ (scripts/gpu_prepare.sh), the preparation files: its scripts and the library code that makes its
# contents (nclib.letters renders the letters, nclib.data selects the CIFAR-10 slice's rows, nclib.datafiles reads
# and writes the files); a .gpu/ made by other forms of them than this checkout's is refused. scripts/gpu_prepare.sh
# records the same list (tests/test_gpu_scripts.py checks it)
PREPARATION="scripts/gpu_prepare.sh scripts/gpu_data_slice.py scripts/gpu_letters_data.py nclib/letters.py nclib/data.py nclib/datafiles.py"
KDIR=""
# LIST_CUDA_TESTS=1: print the CUDA-only test selections this mode runs, one a line (the step, the files, the -k
# expression, separated by tabs), and stop: nothing else runs (tests/test_gpu_scripts.py collects them on a CPU)
if [ -n "${LIST_CUDA_TESTS:-}" ]; then
  if [ -n "$STABILITY" ]; then
    printf '%s\t%s\t%s\n' 2a "$FIRST_TEST_FILES" "$CUDA_FIRST" 5 "$LATER_TEST_FILES" "$LATER_TESTS"
  else
    printf '%s\t%s\t%s\n' 2 "$ENGINE_TEST_FILES" "$CUDA_TESTS"
  fi
  exit 0
fi
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
if [ -n "$FULL" ]; then
  STAGE=${STAGE:-/var/tmp/nclib-gpu-stage}
  export RESULTS_ROOT=$STAGE/results/figures NOTEBOOK_ROOT=$STAGE/book/figures
fi

elapsed() { echo $(( $(date +%s) - T0 )); }
# the BUDGET_S of a command that starts with $1 s left on the GPU machine (TIME_LEFT_S): that less LEFT_MARGIN_S, at
# most MOST_BUDGET_S
budget_of_left() { echo $(( $1 - LEFT_MARGIN_S < MOST_BUDGET_S ? $1 - LEFT_MARGIN_S : MOST_BUDGET_S )); }
# "status S" for a command's exit status S, and what 124 (timeout's status) means for that command, $2
status_text() { if [ "$1" -eq 124 ]; then echo "status 124 ($2)"; else echo "status $1"; fi; }

# the data of figure $1 for its notebook (appended to the caller's sets): the CIFAR-10 slice for Figures 1 and 3,
# the letters rendered ahead for Figures 2 and 4 when $LETTERS_DATA exists (else the notebook renders them)
data_sets() {
  case $1 in
    1|3) sets+=("data_path=$DATA") ;;
    2|4) if [ -f "$LETTERS_DATA" ]; then sets+=("data_path=$LETTERS_DATA")
         else echo "Figure $1: no $LETTERS_DATA (scripts/gpu_prepare.sh makes it): its notebook renders the letters"; fi ;;
  esac
}

# What must hold before any time is spent, each a refusal with status 2 and nothing made: the piece, the data, the
# budget, the lever record, the code (FULL, STABILITY), a CUDA device (every mode unless DEVICE=cpu) of the expected
# model (FULL, STABILITY: EXPECT_GPU)
preflight() {
  echo "== 0. checks ($(date -u +%FT%TZ))"
  # the numbers of the environment: whole, read in base 10 (0570 is not octal); bash arithmetic would otherwise
  # stop at "570s" only after the install and the CUDA tests, with no archive, and read "abc" as 0
  local name
  for name in BUDGET_S RESERVE_S LEVER_TIMEOUT_S ANATOMY_TIMEOUT_S MEASURE_S PAIRS_S STABILITY_EXTRA \
              TEST_EPOCHS MAX_TRAIN_S FULL_EPOCHS; do
    case $name in TEST_EPOCHS|MAX_TRAIN_S|FULL_EPOCHS) [ -z "${!name}" ] && continue ;; esac  # unset: not used
    if ! [[ "${!name}" =~ ^[0-9]+$ ]]; then
      echo "refused: $name must be a whole number (of seconds, epochs or seeds, as its name says), got $name='${!name}'"
      return 2
    fi
    printf -v "$name" '%d' "$(( 10#${!name} ))"
  done
  if [ -n "$FULL" ] && [ -z "$PRECISION_GIVEN" ]; then
    echo "refused: FULL mode needs PRECISION, the stability job's decision (tf32 or fp32: its log's 'decision: ...'"
    echo "line, nclib.figures.stability.precision_decision of the landed pairs); the default, tf32, is no decision,"
    echo "and scripts/land_gpu_runs.py refuses runs of another precision than the committed pairs decide"
    return 2
  fi
  # every mode: the figure runs, and the measurements they are planned from, are in one of the two precisions the
  # stability runs compare (bf16 is studied on the CPU, results/precision/); land_gpu_runs.py would refuse the runs
  case $PRECISION in
    tf32|fp32) ;;
    *) echo "refused: PRECISION must be tf32 or fp32 (the stability job's decision between the two), got" \
         "PRECISION='$PRECISION'"
       return 2 ;;
  esac
  if [ -n "$PIECE" ] && ! "$PY" -c "import sys; sys.path.insert(0, 'scripts'); import figure_notebook as f
try: f.check_piece(sys.argv[1])
except ValueError as exc: sys.exit(f'PIECE refused: {exc} (or L1,L6 for L = 1 and 6)')" "$PIECE"; then
    return 2
  fi
  if [ -n "$RESUME" ]; then resumes_here || return 2; fi
  local f need_data="$STABILITY"
  for f in $FIGURES; do case $f in 1|3) need_data=1 ;; esac; done
  if [ -n "$need_data" ] && [ ! -f "$DATA" ]; then
    echo "refused: no data file $DATA (DATA). scripts/gpu_prepare.sh makes .gpu/ in the repository root, here, and"
    echo ".gpu/ must be sent along with the checkout to the GPU machine"
    return 2
  fi
  # a slice made by an older scripts/gpu_data_slice.py lacks what its runs' provenance records (file_source, ...),
  # and one cut for other class counts than the figures' now (a profile changed) would train them on other rows than
  # the full file's; a damaged file (cut short on its way, corrupted) would fail only in the notebook, after the
  # install and the tests. Status 4 is the check's "outdated", 3 its "damaged"; any other (1: the check failed,
  # numpy missing say) says nothing of the file
  if [ -n "$need_data" ]; then
    local rc=0
    "$PY" scripts/gpu_data_slice.py --check "$DATA" || rc=$?
    case $rc in
      0) ;;
      4) echo "refused: DATA=$DATA is outdated (above: made by an older form of scripts/gpu_data_slice.py, or for other"
         echo "class counts than the figures train on now): run scripts/gpu_prepare.sh again here, and send the new"
         echo ".gpu/ along with the checkout"
         return 2 ;;
      3) echo "refused: DATA=$DATA is damaged or holds no training data (above): run scripts/gpu_prepare.sh again"
         echo "here, and send the new .gpu/ along with the checkout (or copy the file named by DATA again)"
         return 2 ;;
      *) echo "refused: DATA=$DATA could not be checked (scripts/gpu_data_slice.py --check ended with status $rc, above)"
         return 2 ;;
    esac
  fi
  local reads_gpu=""
  if [ -n "$need_data" ] && in_gpu_folder "$DATA"; then reads_gpu=1; fi
  for f in $FIGURES; do
    case $f in 2|4) if [ -f "$LETTERS_DATA" ] && in_gpu_folder "$LETTERS_DATA"; then reads_gpu=1; fi ;; esac
  done
  if [ -n "$reads_gpu" ]; then prepared_here || return 2; fi
  if [ -n "$TIME_LEFT_S" ]; then
    if [ -z "$FULL$STABILITY" ] || [ -n "$BUDGET_GIVEN" ] || ! [[ "$TIME_LEFT_S" =~ ^[0-9]+$ ]]; then
      echo "refused: TIME_LEFT_S (FULL and STABILITY modes only, instead of BUDGET_S) must be the whole seconds left"
      echo "on the GPU machine, got TIME_LEFT_S='$TIME_LEFT_S' BUDGET_S='$BUDGET_GIVEN' FULL='$FULL'" \
        "STABILITY='$STABILITY'"
      return 2
    fi
    local left=$(( 10#$TIME_LEFT_S ))  # base 10: 0570 is not octal
    TIME_LEFT_S=$left
    BUDGET_S=$(budget_of_left "$left")
    # the setup before the notebook (install, versions; about 22 s when resuming) and a minute of training at least
    if (( BUDGET_S < RESERVE_S + 60 )); then
      echo "refused: TIME_LEFT_S=$TIME_LEFT_S leaves BUDGET_S=$BUDGET_S s, under the RESERVE_S=$RESERVE_S s kept after"
      echo "training and 60 s for the setup and some training: max_train_s would be about 0 or negative"
      return 2
    fi
    echo "BUDGET_S=$BUDGET_S: the $left s left on the GPU machine less $LEFT_MARGIN_S s, at most $MOST_BUDGET_S"
  elif [ -n "$FULL$STABILITY" ] && (( BUDGET_S < RESERVE_S + 60 )); then
    # a BUDGET_S given (or the default against a larger RESERVE_S) with the same floor: its setup would cost GPU
    # time and then train nothing (FULL: max_train_s about 0 or negative; STABILITY: no pair, no measurement)
    echo "refused: BUDGET_S=$BUDGET_S is under the RESERVE_S=$RESERVE_S s kept after training and 60 s for the setup"
    echo "and some training (FULL and STABILITY modes): the setup would be paid and nothing trained"
    return 2
  fi
  if [ -n "$LEVERS_FROM" ]; then
    local words
    if [ -z "$FULL" ] || ! words=$("$PY" scripts/gpu_budget.py levers "$LEVERS_FROM" --precision "$PRECISION"); then
      echo "refused: LEVERS_FROM='$LEVERS_FROM' (FULL mode only) is not a lever record that can be read, measured at"
      echo "PRECISION=$PRECISION (the runs' precision: the stability job's decision)"
      return 2
    fi
    read -ra words <<< "$words"
    EXTRA+=("${words[@]}")
    echo "levers from $LEVERS_FROM: ${words[*]:-none (the plain engine is the fastest)}"
  fi
  # FULL mode: PRECISION is the precision that the committed stability pairs decide (results/stability/ of
  # DECISION_ROOT, this checkout by default), read as scripts/land_gpu_runs.py reads it at landing: runs of another
  # precision, or made before any pair decides one, would never land
  if [ -n "$FULL" ] && ! "$PY" scripts/land_gpu_runs.py decision --root "$DECISION_ROOT" --precision "$PRECISION"; then
    echo "refused: FULL mode trains in the precision that the stability pairs committed in"
    echo "$DECISION_ROOT/results/stability/ decide (above): land and commit the stability job's pairs first"
    echo "(scripts/README.md), then give their decision as PRECISION"
    return 2
  fi
  # STABILITY mode: a run folder of the stability runs' folder that the pairs can neither keep nor make again (one
  # that ended with other parameters, a CPU trial left there, say; or on a CPU) would fail its seed's pair
  # (RunExists) after the machine started, and leave the job no decision. The code check below does not see it:
  # no run counts results/ as a change to its code
  if [ -n "$STABILITY" ]; then
    local sets=()
    stability_sets
    if ! "$PY" scripts/stability_runs.py --check-out --out "$STABILITY_OUT" "${sets[@]}"; then
      echo "refused: STABILITY mode needs a stability runs' folder ($STABILITY_OUT) without runs of other"
      echo "parameters than its pairs' (above: move each aside, out of the checkout; a CPU trial sets STABILITY_OUT)"
      return 2
    fi
  fi
  if [ -n "$FULL" ] && [ -z "$RESUME" ]; then fits_one_machine || return 2; fi
  if [ -n "$FULL$STABILITY" ]; then clean_code || return 2; fi
  # every mode: a GPU job on a machine whose torch sees no CUDA device would spend its budget on CPU-width
  # benchmarks and calibration before failing (the default mode accepts any GPU model: EXPECT_GPU is empty there)
  if [ "$DEVICE" != cpu ]; then
    local mode=default
    if [ -n "$FULL" ]; then mode=FULL; elif [ -n "$STABILITY" ]; then mode=STABILITY; fi
    "$PY" scripts/gpu_budget.py device --device "$DEVICE" --expect "$EXPECT_GPU" || {
      echo "$mode mode refused (DEVICE=cpu for a CPU test of the script)"; return 2; }
  fi
}

# FULL mode, a piece's first command: the seconds of notebooks this machine's commands leave the piece at the slow
# end of the runbook's times (the constants after PLAN_FROM above), in PLAN_S; PLAN_STARTS, the notebooks they come
# in (2 where the time left after this command gives a second command a BUDGET_S it accepts, else 1); PLAN_WHY, how
plan_seconds() {
  local left=${TIME_LEFT_S:-$FULL_LEFT_S} first rest budget2 from
  first=$(( BUDGET_S - FIRST_SETUP_S - RESERVE_S ))
  rest=$(( left - BUDGET_S - WAY_S ))
  budget2=$(budget_of_left "$rest")
  if [ -n "$TIME_LEFT_S" ]; then from="TIME_LEFT_S=$TIME_LEFT_S s left as this command starts"
  else from="a whole machine's $FULL_LEFT_S s left as its first command starts (its 900 s less the slowest start)"; fi
  if (( budget2 >= RESERVE_S + 60 )); then
    PLAN_STARTS=2 PLAN_S=$(( first + budget2 - SECOND_SETUP_S - RESERVE_S ))
    PLAN_WHY="this command's $first s and a second command's $(( PLAN_S - first )) s (its TIME_LEFT_S=$rest,"
    PLAN_WHY+=" BUDGET_S=$budget2), from $from"
  else
    PLAN_STARTS=1 PLAN_S=$first
    PLAN_WHY="this command's alone (BUDGET_S=$BUDGET_S less $FIRST_SETUP_S s of setup and RESERVE_S=$RESERVE_S s):"
    PLAN_WHY+=" the $rest s left after it give a second command a BUDGET_S under RESERVE_S + 60 s, which it refuses;"
    PLAN_WHY+=" from $from"
  fi
}

# FULL mode, a piece's first command: status 0 when each figure's piece (PIECE, or its three runs) can finish its
# epochs (FULL_EPOCHS, TEST_EPOCHS, else the paper's) at PRECISION in what this machine's commands leave its
# notebooks (plan_seconds: PLAN_S s in PLAN_STARTS notebooks), at the committed job's speed (PLAN_FROM; with the
# lever of LEVERS_FROM, and for Figures 2 and 4 the letters read from LETTERS_DATA where it exists):
# scripts/gpu_budget.py pieces --piece; status 1, and why, where one cannot, or where it cannot be planned (no
# committed calibration there, say)
fits_one_machine() {
  local f more
  plan_seconds
  echo "FULL mode: the piece's notebooks have $PLAN_S s on this machine: $PLAN_WHY"
  for f in $FIGURES; do
    more=()
    if [ -n "$LEVERS_FROM" ]; then more+=(--levers "$LEVERS_FROM"); fi
    case $f in 2|4) if [ -f "$LETTERS_DATA" ]; then more+=(--data-s 1); fi ;; esac
    if ! "$PY" scripts/gpu_budget.py pieces "$f" --calibration "$PLAN_FROM/calibration.json" --precision "$PRECISION" \
        --piece "${PIECE:-L1-L3-L6}" --epochs "${TEST_EPOCHS:-${FULL_EPOCHS:-12000}}" --starts "$PLAN_STARTS" \
        --budget-s "$PLAN_S" "${more[@]}"; then
      echo "refused: FULL mode starts a piece only where scripts/gpu_budget.py pieces (above) plans it to finish in"
      echo "the $PLAN_S s that this machine's commands leave its notebooks at the slow end of the runbook's times"
      echo "(how: the line 'the piece's notebooks have ...' above), at PRECISION=$PRECISION, from the committed job in"
      echo "$PLAN_FROM (its calibration.json and bench_train_gpu*.txt): a piece that does not fit is made in smaller"
      echo "pieces, or on a machine with more time left (scripts/README.md, \"Why three pieces\"); a job that cannot"
      echo "be planned from is named above"
      return 1
    fi
  done
}

# RESUME=1 (FULL mode): status 0 when $STAGE holds a run folder of the piece for each figure of $FIGURES (a run that
# stopped, diverged or finished: the second command resumes or keeps them); status 1, and why, where a figure has none
# (this is not the machine the first command ran on: starting here would train the piece from epoch 0), or where
# RESUME is another word than 1, or is given outside FULL mode
resumes_here() {
  if [ "$RESUME" != 1 ] || [ -z "$FULL" ]; then
    echo "refused: RESUME=1 (FULL mode only: a piece's second command) is the only form, got RESUME='$RESUME'" \
      "FULL='$FULL'"
    return 1
  fi
  local f d found none=()
  for f in $FIGURES; do
    found=""
    while read -r d; do if [ -d "$d" ]; then found=1; fi; done < <(piece_runs "$f")
    if [ -z "$found" ]; then none+=("$f"); fi
  done
  if [ "${#none[@]}" -gt 0 ]; then
    echo "refused: RESUME=1, and $STAGE holds no run of ${PIECE:-the three runs} of Figure(s) ${none[*]}: this is not"
    echo "the machine the first command ran on (it went back; the runs and their checkpoints went with it), and the"
    echo "piece would train from epoch 0 here. Start the piece again with its first command (without RESUME)"
    return 1
  fi
  echo "RESUME=1: $STAGE holds runs of ${PIECE:-the three runs} of Figure(s) $FIGURES"
}

# status 0 when the path $1 lies in this checkout's .gpu/ (made by scripts/gpu_prepare.sh); both paths resolved, so
# that a checkout reached through a link is no way around the check
in_gpu_folder() { [[ "$(realpath -m -- "$1")" == "$(realpath -m -- .gpu)/"* ]]; }

# status 0 when .gpu/ was made by this checkout's preparation files: .gpu/prepared_from records the git hash-object
# of each of $PREPARATION as it ran (scripts/gpu_prepare.sh), and each equals its working file's here, committed or
# not; status 1, and why, when a file is not recorded (an older scripts/gpu_prepare.sh made .gpu/) or differs
# (what .gpu/ holds may not be what the files make now, named), or git cannot hash it
prepared_here() {
  local -A made=()
  local hash path rest s now why missing=() changed=()
  if [ -f .gpu/prepared_from ]; then
    while read -r hash path rest; do
      if [[ "$hash" =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]] && [ -n "$path" ] && [ -z "$rest" ]; then made[$path]=$hash; fi
    done < .gpu/prepared_from
  fi
  for s in $PREPARATION; do
    if [ -z "${made[$s]:-}" ]; then missing+=("$s"); continue; fi
    if ! now=$(git hash-object -- "$s" 2>/dev/null); then
      why=$(git hash-object -- "$s" 2>&1 >/dev/null)
      echo "refused: git cannot read the preparation file $s here ($why)"
      return 1
    fi
    if [ "$now" != "${made[$s]}" ]; then changed+=("$s"); fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "refused: .gpu/prepared_from does not record the preparation files that made .gpu/ (${missing[*]}): an"
    echo "older scripts/gpu_prepare.sh made it. Run scripts/gpu_prepare.sh again here, and send the new .gpu/ along"
    echo "with the checkout"
    return 1
  fi
  if [ "${#changed[@]}" -gt 0 ]; then
    echo "refused: .gpu/ was made by other forms of these preparation files than the checkout's: ${changed[*]}."
    echo "Run scripts/gpu_prepare.sh again here, and send the new .gpu/ along with the checkout"
    return 1
  fi
  echo ".gpu/ made by the checkout's preparation files ($(sed -n 's/^commit //p' .gpu/prepared_from))"
}

main() {
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  preflight || return $?
  echo "== 1. install ($(elapsed) s)"
  # STABILITY mode runs no notebook: the notebook tools are neither installed nor needed there
  if [ -z "$STABILITY" ]; then
    # a pip that installs nothing ends the job here, status 2 as a refusal, with what to do: nothing else has run
    # (a Python whose distribution manages its packages, PEP 668, refuses any install: "externally-managed-environment")
    if ! "$PY" -c "import papermill, jupytext, ipykernel" 2>/dev/null \
        && ! "$PY" -m pip install -q --no-index --find-links .gpu/wheels papermill jupytext ipykernel; then
      echo "refused: pip could not install papermill, jupytext and ipykernel from .gpu/wheels into PY=$PY (above;"
      echo "a Python that its distribution manages refuses any install): give PY the Python of a virtual environment"
      echo "with torch, or one that has the three, and run the same command again; nothing else has run"
      return 2
    fi
    # the kernel papermill starts ("python3") must be this interpreter, not another one the machine may register
    KDIR=$(mktemp -d /tmp/nclib-kernel.XXXXXX)
    "$PY" -m ipykernel install --prefix "$KDIR" --name python3 > /dev/null || return 1
    export JUPYTER_PATH="$KDIR/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
  fi
  if [ -n "${FORCE_SHIM:-}" ] || ! "$PY" -c "import myst_nb" 2>/dev/null; then
    export PYTHONPATH="$PWD/scripts/gpu_shim:$PYTHONPATH"
    echo "myst_nb missing: using scripts/gpu_shim (myst_nb.glue's output format)"
  fi
  echo "== 2. versions"
  nvidia-smi || echo "(no nvidia-smi)"
  "$PY" -c "import torch, numpy; print('torch', torch.__version__, '| numpy', numpy.__version__, '| cuda available', torch.cuda.is_available())" || return 1
  if [ -z "$STABILITY" ]; then
    "$PY" -m papermill --version
    "$PY" -c "import ipykernel, jupytext, myst_nb; print('ipykernel', ipykernel.__version__, '| jupytext', jupytext.__version__, '| myst_nb', myst_nb.__version__)" \
      || return 1
    "$PY" -m jupyter kernelspec list 2>/dev/null | grep python3 || true
  fi
  "$PY" -c "import pytest; print('pytest', pytest.__version__)" \
    || echo "WARNING: no pytest here: the CUDA-only tests cannot run (each pytest step below says so)"
  if [ -n "$STABILITY" ]; then stability_job; return; fi
  local resuming="" earlier="" d dirs
  if [ -n "$FULL" ]; then
    mkdir -p "$RESULTS_ROOT" "$NOTEBOOK_ROOT"
    rm -f "$OUT/cuda_tests.txt"  # this command's report only (kept in $STAGE/logs/ at its end)
    # what an earlier command on this machine left of the pieces: a figure resumes where any of its piece's runs
    # has a checkpoint (not only the first: one of them may have diverged)
    for f in $FIGURES; do
      mapfile -t dirs < <(piece_runs "$f")
      for d in "${dirs[@]}"; do
        [ -d "$d" ] || continue
        earlier=1
        if [ -f "$d/checkpoint.pt" ] && [[ " $resuming " != *" $f "* ]]; then resuming="$resuming $f"; fi
      done
    done
    if [ -n "$earlier" ]; then
      echo "FULL mode: the runs in $STAGE before this command:"
      for f in $FIGURES; do run_statuses "$f" | sed 's/^/  /'; done
    fi
    echo "FULL mode: runs in $STAGE; resuming:${resuming:- none}"
  fi
  if [ -n "$earlier" ]; then
    # the command that made them ran the tests before it trained (a finished run leaves no checkpoint: a second
    # command after a first that finished every run must not spend the tests' 150 s again)
    echo "CUDA tests: not run again (an earlier command on this machine ran them, then made the runs above)"
  elif [ "$DEVICE" != cpu ]; then
    : > "$OUT/cuda_tests.txt"
    cuda_tests 150 "$CUDA_TESTS" $ENGINE_TEST_FILES
  fi
  if [ -n "$FULL" ]; then full_figures "$resuming"; archive; return; fi
  echo "== 3. engine benchmark ($(elapsed) s)"
  # each output's first line is the command that made it, printed by bench_train.py itself
  engine_benchmark "$PRECISION" bench_train_gpu.txt
  engine_benchmark fp32 bench_train_gpu_fp32.txt
  local levers_json="${RESULTS_ROOT:-results/figures}/gpu/bench_levers_$PRECISION.json"
  timeout --kill-after=5 "$LEVER_TIMEOUT_S" "$PY" benchmarks/bench_train.py --repeats 1 $LEVER_ARGS --precision "$PRECISION" --levers $LEVERS \
    --json "$levers_json" 2>&1 || echo "lever benchmark: ended with $(status_text $? "stopped after $LEVER_TIMEOUT_S s"); the runs go on"
  echo "== 4. calibration ($(elapsed) s)"
  local letters=()
  if [ -f "$LETTERS_DATA" ]; then letters=(--letters-data "$LETTERS_DATA"); fi
  timeout 120 "$PY" scripts/gpu_budget.py calibrate --out "$OUT/calibration.json" --device "$DEVICE" \
    --precision "$PRECISION" "${letters[@]}" $CALIB_ARGS || return 1
  local todo="$FIGURES" f E alloc line
  for f in $FIGURES; do
    local remaining=$(( BUDGET_S - $(elapsed) - 20 ))  # 20 s kept for the archive
    if [ -n "$TEST_EPOCHS" ]; then
      E=$TEST_EPOCHS; alloc=$(( remaining > 60 ? remaining : 60 ))
    else
      if ! line=$("$PY" scripts/gpu_budget.py epochs "$f" --calibration "$OUT/calibration.json" --remaining "$remaining" --todo "$todo"); then
        # counted as a figure that failed (status 1), after the archive of the figures made before it
        FIGS_FAILED="$FIGS_FAILED $f"; echo "Figure $f: scripts/gpu_budget.py epochs failed; the figures made are archived"
        break
      fi
      read -r E alloc <<< "$line"
    fi
    todo=$(echo " $todo " | sed "s/ $f / /" | xargs)
    echo "== Figure $f: $E epochs in a budget of $alloc s ($(elapsed) s elapsed, $remaining s left)"
    if [ "$E" -lt 1 ]; then echo "Figure $f skipped: under 100 epochs would fit"; continue; fi
    # overwrite: this mode replaces the copy's committed runs of the figure (the archive brings the new ones back)
    local sets=("epochs=$E" "progress=false" "device=$DEVICE" "precision=$PRECISION" "overwrite=true")
    data_sets "$f"
    for kv in "${EXTRA[@]}"; do sets+=("$kv"); done
    notebook "$f" "stopped by the time budget" timeout --signal=INT --kill-after=15 $(( alloc + 45 )) \
      scripts/gpu_run_figure.sh "$f" gpu "${sets[@]}"
  done
  archive
}

# the default mode's engine benchmark at precision $1 into $OUT/$2, for at most 120 s; a status other than 0 (124:
# stopped by the timeout, the file then cut short) is named in the log, and the job goes on
engine_benchmark() {
  local rc
  timeout 120 "$PY" benchmarks/bench_train.py $BENCH_ARGS --precision "$1" 2>&1 | tee "$OUT/$2"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "engine benchmark ($1): ended with $(status_text "$rc" "stopped after 120 s"): $2 holds what it printed" \
      "before; the runs go on"
  fi
}

# the CUDA-only tests of the files "${@:3}" that the -k expression $2 selects, for at most $1 s, appended to
# $OUT/cuda_tests.txt after the command (in STABILITY mode after the measurements, into benchmarks.tar.gz too); a
# failure is reported and the job goes on (the engine falls back to eager
# steps where a CUDA graph cannot be captured), and so is a selection that matched no test (pytest's status 5)
cuda_tests() {
  local cap=$1 k=$2 rc
  shift 2
  { echo "\$ python -m pytest -q -p no:cacheprovider $* -k '$k'"
    timeout --kill-after=5 "$cap" "$PY" -m pytest -q -p no:cacheprovider "$@" -k "$k" 2>&1; } | tee -a "$OUT/cuda_tests.txt"
  rc=$?
  case $rc in
    0) ;;
    5) echo "CUDA tests: -k '$k' selected no test of $* (a test renamed?); the runs go on" ;;
    *) echo "CUDA tests: not all passed, $(status_text "$rc" "stopped after $cap s") (see cuda_tests.txt); the runs go on" ;;
  esac
  # STABILITY mode, once the measurements' folder is there (== 4 on): the report archived with them at once, so that
  # a job stopped later (in == 6, by the machine's time limit) keeps it in benchmarks.tar.gz, the file that is landed
  if [ -n "${STABILITY:-}" ] && [ -d "${BENCH_DIR:-}" ]; then archive_benchmarks; fi
}

# the figure $1's notebook, the command "${@:3}" (its timeout, scripts/gpu_run_figure.sh): its status noted in
# FIGS_OK or FIGS_FAILED (archive's status), $2 what status 124 means
FIGS_OK="" FIGS_FAILED=""
notebook() {
  local f=$1 why=$2 rc
  shift 2
  "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then FIGS_OK="$FIGS_OK $f"
  else FIGS_FAILED="$FIGS_FAILED $f"; echo "Figure $f: scripts/gpu_run_figure.sh ended with $(status_text $rc "$why")"; fi
}

# STABILITY mode: the settings of the stability runs for scripts/stability_runs.py (appended to the caller's sets):
# the data, the device and EXTRA_SETS' words
stability_sets() {
  local kv
  sets+=(--set "data_path=$DATA" --set "device=$DEVICE")
  for kv in "${EXTRA[@]}"; do sets+=(--set "$kv"); done
}

# STABILITY mode: the precision stability runs first, then the measurements the FULL runs are planned from (the
# engine benchmark, the levers), the step's anatomy, the other CUDA tests, then more seeds; status 1 when no pair is
# whole at the end, 3 when the whole pairs decide nothing (their archive kept for inspection)
stability_job() {
  local out_dir=$STABILITY_OUT sets=() t
  stability_sets
  : > "$OUT/cuda_tests.txt"
  # the first CUDA tests go before the pairs only where the budget leaves the pairs PAIRS_S after the tests' 150 s;
  # otherwise they run after the measurements (== 5): a short budget goes to the pairs, the question of the job
  local first_later="" left=$(( BUDGET_S - $(elapsed) - 30 )) keep
  if (( left < 150 + PAIRS_S )); then
    first_later=1
    echo "== 2a. CUDA tests of the default step path: after the pairs, in == 5 (the budget leaves $left s, under"
    echo "150 s for them and PAIRS_S=$PAIRS_S s for the pairs)"
  elif [ "$DEVICE" != cpu ] && t=$(capped 150); then
    echo "== 2a. CUDA tests of the default step path ($(elapsed) s)"
    cuda_tests "$t" "$CUDA_FIRST" $FIRST_TEST_FILES
  fi
  echo "== 3. stability runs, seeds $STABILITY_SEEDS ($(elapsed) s)"
  # what the budget leaves less what it leaves for the benchmark and the levers (== 4, 4b), which the FULL runs are
  # planned from: MEASURE_S, from what lies beyond PAIRS_S only; a pair starts only with 1.2 times the longest pair
  # so far left (stability_runs.py --budget-s), whose clock starts after torch is imported and the device started:
  # 15 s less than the timeout's
  if t=$(capped 100000); then
    keep=$(( t - PAIRS_S < 0 ? 0 : t - PAIRS_S ))
    keep=$(( keep < MEASURE_S ? keep : MEASURE_S ))
    t=$(( t - keep ))
  fi
  if [ -n "$t" ] && (( t >= 20 )); then
    echo "stability runs: $t s, $keep s kept for == 4 and 4b (PAIRS_S=$PAIRS_S, MEASURE_S=$MEASURE_S)"
    timeout --signal=INT --kill-after=15 "$t" "$PY" scripts/stability_runs.py --seeds $STABILITY_SEEDS --out "$out_dir" \
      --budget-s "$(( t > 30 ? t - 15 : t ))" "${sets[@]}" || echo "stability runs: ended with status $?"
  else
    echo "stability runs: skipped, the budget leaves them under 20 s (PAIRS_S=$PAIRS_S, MEASURE_S=$MEASURE_S)"
  fi
  archive_stability "$out_dir"  # now, in case the job is stopped later
  local q name own_bench=""
  if [ -z "$BENCH_DIR" ]; then BENCH_DIR="$out_dir/bench-tmp"; rm -rf "$BENCH_DIR"; own_bench=1; fi
  mkdir -p "$BENCH_DIR" || return 1
  echo "== 4. engine benchmark ($(elapsed) s)"
  for q in $(printf '%s\n' "$PRECISION" fp32 | awk '!seen[$0]++'); do
    name=bench_train_gpu$([ "$q" = tf32 ] || echo "_$q")
    t=$(capped 120) || { echo "benchmark ($q): skipped, no time left"; continue; }
    timeout --kill-after=5 "$t" "$PY" benchmarks/bench_train.py $BENCH_ARGS --precision "$q" --json "$BENCH_DIR/$name.json" 2>&1 \
      | tee "$BENCH_DIR/$name.txt" || echo "benchmark ($q): ended with status $?"
    archive_benchmarks  # after each step: a job stopped later keeps what was measured
  done
  echo "== 4b. levers ($(elapsed) s)"
  if t=$(capped "$LEVER_TIMEOUT_S"); then
    timeout --kill-after=5 "$t" "$PY" benchmarks/bench_train.py --repeats 1 $LEVER_ARGS --precision "$PRECISION" --levers $LEVERS \
      --json "$BENCH_DIR/bench_levers_$PRECISION.json" 2>&1 || echo "lever benchmark: ended with status $?"
    archive_benchmarks
  fi
  echo "== 4c. step anatomy ($(elapsed) s)"
  if t=$(capped "$ANATOMY_TIMEOUT_S"); then
    timeout --kill-after=5 "$t" "$PY" benchmarks/bench_anatomy.py $ANATOMY_ARGS --precision "$PRECISION" \
      --json "$BENCH_DIR/bench_anatomy_$PRECISION.json" 2>&1 || echo "step anatomy: ended with status $?"
    archive_benchmarks
  fi
  if [ "$DEVICE" != cpu ] && [ -n "$first_later" ] && t=$(capped 150); then
    echo "== 5. CUDA tests of the default step path, after the pairs ($(elapsed) s)"
    cuda_tests "$t" "$CUDA_FIRST" $FIRST_TEST_FILES
  fi
  if [ "$DEVICE" != cpu ] && t=$(capped 240); then
    echo "== 5. the other CUDA tests ($(elapsed) s)"
    cuda_tests "$t" "$LATER_TESTS" $LATER_TEST_FILES
  fi
  echo "== 6. more seeds ($(elapsed) s)"
  if [ "$STABILITY_EXTRA" -gt 0 ] && t=$(capped 100000); then
    # its budget clock starts after torch is imported and the device started: 15 s less than the timeout's
    timeout --signal=INT --kill-after=15 "$t" "$PY" scripts/stability_runs.py --seeds $STABILITY_SEEDS \
      --extra-seeds "$STABILITY_EXTRA" --budget-s "$(( t > 30 ? t - 15 : t ))" --out "$out_dir" "${sets[@]}" \
      || echo "stability runs: ended with status $?"
  fi
  echo "== 7. archive ($(elapsed) s)"
  archive_stability "$out_dir"
  archive_benchmarks && tar tzf "$OUT/benchmarks.tar.gz" && rm -f "$OUT/cuda_tests.txt"
  if [ -n "$own_bench" ]; then rm -rf "$BENCH_DIR"; fi
  # the decision of the pairs as they now lie in the folder, the one line to read before landing them: a pair of
  # this job or an earlier one whose TF32 run did not use TF32 (or runs not of the setting) leave none, status 1
  local decided=0
  if [ -f "$OUT/stability.tar.gz" ]; then
    echo "== 7b. decision ($(elapsed) s)"
    "$PY" scripts/stability_runs.py --summary-only --out "$out_dir" "${sets[@]}" || decided=$?
  fi
  echo "== done in $(elapsed) s"
  if [ ! -f "$OUT/stability.tar.gz" ]; then echo "status 1: no whole pair was made"; return 1; fi
  if [ "$decided" -ne 0 ]; then
    echo "status 3: the whole pairs decide nothing (no decision line above, scripts/stability_runs.py ended with"
    echo "status $decided): stability.tar.gz is kept for inspection, not to be landed (scripts/README.md)"
    return 3
  fi
}

# $OUT/benchmarks.tar.gz from what $BENCH_DIR holds so far and the CUDA test report, written beside and moved (a job
# stopped while it is written keeps the one written before); status 1 when there is nothing to archive
archive_benchmarks() {
  local files=()
  cp "$OUT/cuda_tests.txt" "$BENCH_DIR/cuda_tests.txt" 2>/dev/null
  mapfile -t files < <(cd "$BENCH_DIR" && ls bench_train_gpu* bench_levers_* bench_anatomy_* cuda_tests.txt 2>/dev/null)
  [ "${#files[@]}" -gt 0 ] || return 1
  tar czf "$OUT/benchmarks.tar.gz.tmp" -C "$BENCH_DIR" "${files[@]}" \
    && mv "$OUT/benchmarks.tar.gz.tmp" "$OUT/benchmarks.tar.gz"
}

# the seconds a step may take: at most $1 and what the budget leaves (30 s kept for the archives); status 1, and a
# note, when under 20 s are left
capped() {
  local left=$(( BUDGET_S - $(elapsed) - 30 ))
  if [ "$left" -lt 20 ]; then echo "skipped: $left s left in the budget" >&2; return 1; fi
  echo $(( left < $1 ? left : $1 ))
}

# the run folders under $1 of the whole pairs, both runs ended (nclib.figures.stability.whole_pairs): a run cut
# off is no result, half a pair is none either, and landed they would stand in the way of the next job's pair
archive_stability() {
  local pairs=() list="$OUT/.pairs"
  if ! "$PY" -c "import sys; from nclib.figures.stability import whole_pairs
sys.stdout.write(''.join(str(p) + chr(0) for p in whole_pairs(sys.argv[1])))" "$1" > "$list"; then
    echo "stability.tar.gz: the pairs could not be listed; an archive written before stays"; rm -f "$list"; return
  fi
  mapfile -d '' pairs < "$list"
  rm -f "$list"
  if [ "${#pairs[@]}" -eq 0 ]; then echo "stability.tar.gz: no whole pair under $1"; return; fi
  # written beside, then moved: a job stopped while it is written keeps the archive written before
  tar czf "$OUT/stability.tar.gz.tmp" --exclude=checkpoint.pt --exclude=checkpoint.pt.tmp \
    --exclude=checkpoint.pt.sha256 --exclude=.lock "${pairs[@]}" && mv "$OUT/stability.tar.gz.tmp" "$OUT/stability.tar.gz" \
    && echo "stability.tar.gz: $(tar tzf "$OUT/stability.tar.gz" | grep -c history.csv) runs of whole pairs"
}

# FULL and STABILITY modes: status 1, and why, where the checkout's code differs from its commit (or git cannot
# say), unless ALLOW_DIRTY is set
clean_code() {
  local state
  state=$("$PY" -c "from nclib import provenance; print(provenance.code_state())") || state="the check itself failed"
  [ "$state" = clean ] && return 0
  if [ -n "${ALLOW_DIRTY:-}" ]; then echo "ALLOW_DIRTY: starting from a checkout that is not clean ($state)"; return 0; fi
  echo "$([ -n "$FULL" ] && echo FULL || echo STABILITY) mode refused: the checkout's code is not its commit's"
  echo "($state); its runs would record git_dirty, and scripts/land_gpu_runs.py promotes only runs made from a"
  echo "clean commit. Commit first (ALLOW_DIRTY=1 for a test of the script)."
  return 1
}

# FULL mode: each figure toward the paper's 12,000 epochs in the seconds left, resumed where a checkpoint exists
full_figures() {
  local resuming=" $1 " f resume max_s sets
  for f in $FIGURES; do
    resume=false
    if [[ "$resuming" == *" $f "* ]]; then resume=true; fi
    if [ "$resume" = false ] && piece_finished "$f"; then
      # the same command again after a call that finished them: the notebook that trained them stays as it is
      echo "Figure $f: every run of ${PIECE:-the figure} has finished in $STAGE already; its notebook is not run again"
      FIGS_OK="$FIGS_OK $f"; run_statuses "$f"; continue
    fi
    keep_notebook "$f"
    max_s=${MAX_TRAIN_S:-$(( BUDGET_S - $(elapsed) - RESERVE_S ))}
    echo "== Figure $f (FULL): resume=$resume, max_train_s=$max_s ($(elapsed) s elapsed)"
    if [ "$max_s" -lt 0 ]; then echo "Figure $f skipped: no time left"; continue; fi
    sets=("progress=false" "device=$DEVICE" "precision=$PRECISION" "max_train_s=$max_s" "resume=$resume")
    if [ -n "$TEST_EPOCHS" ]; then sets+=("epochs=$TEST_EPOCHS"); elif [ -n "$FULL_EPOCHS" ]; then sets+=("epochs=$FULL_EPOCHS"); fi
    data_sets "$f"
    for kv in "${EXTRA[@]}"; do sets+=("$kv"); done
    if [ "$resume" = true ]; then
      # only the runs with a checkpoint continue: one beside them that diverged, stopped without one, or finished
      # (runs of one call continue together only when each can: nclib.runplan.plan_runs) would refuse them all
      local Ls d left=()
      Ls=$(checkpointed_runs "$f" | sed 's/.*-L//' | paste -sd, -)
      if [ "$Ls" != "$(piece_runs "$f" | sed 's/.*-L//' | paste -sd, -)" ]; then
        while read -r d; do
          if [ ! -f "$d/checkpoint.pt" ]; then left+=("$(basename "$d") ($(run_status "$d"))"); fi
        done < <(piece_runs "$f")
        echo "Figure $f: resuming only the runs with a checkpoint, L = $Ls; left out, as they are: ${left[*]}"
        sets+=("L_values=[$Ls]")
      fi
    fi
    # the safety net: a notebook still running 15 s before the budget ends is stopped, so that the archive is
    # written before the machine's own limit (max_train_s stops the runs well before, RESERVE_S before the end)
    local net=$(( BUDGET_S - $(elapsed) - 15 ))
    if [ "$net" -lt 1 ]; then echo "Figure $f skipped: no time left before the budget's end"; continue; fi
    notebook "$f" "stopped by the safety net" timeout --signal=INT --kill-after=10 \
      $(( net < max_s + 150 ? net : max_s + 150 )) scripts/gpu_run_figure.sh "$f" gpu "${sets[@]}"
    run_statuses "$f"
  done
}

# FULL mode: the run folders of figure $1's piece in $STAGE (the figure's three runs without PIECE)
piece_runs() {
  local L
  for L in $(echo "${PIECE:-L1-L3-L6}" | tr '-' ' '); do echo "$RESULTS_ROOT/gpu/fig$1/fig$1-$L"; done
}

# FULL mode: the run folders of figure $1's piece that hold a checkpoint (those a command resumes)
checkpointed_runs() {
  local d
  while read -r d; do if [ -f "$d/checkpoint.pt" ]; then echo "$d"; fi; done < <(piece_runs "$1")
}

# FULL mode: status 0 when every run of figure $1's piece has finished (nclib.runs.run_status)
piece_finished() {
  local dirs
  mapfile -t dirs < <(piece_runs "$1")
  "$PY" -c "import sys; from nclib import runs
sys.exit(0 if all(runs.run_status(d) == 'finished' for d in sys.argv[1:]) else 1)" "${dirs[@]}"
}

# FULL mode: figure $1's notebook of this piece, where one exists (an earlier call's), moved to its segments before
# the notebook runs again (papermill would write over it): segments/figK[.PIECE].segment-N.run.ipynb
keep_notebook() {
  local name="fig$1${PIECE:+.$PIECE}" n
  [ -f "$NOTEBOOK_ROOT/gpu/$name.run.ipynb" ] || return 0
  n=$(ls "$RESULTS_ROOT/gpu/fig$1/segments" 2>/dev/null | grep -c "^$name\.segment-" || true)
  mkdir -p "$RESULTS_ROOT/gpu/fig$1/segments"
  mv "$NOTEBOOK_ROOT/gpu/$name.run.ipynb" "$RESULTS_ROOT/gpu/fig$1/segments/$name.segment-$((n + 1)).run.ipynb"
}

# FULL mode: each run of figure $1 in $STAGE with its own status (its provenance's top level; its segments have
# theirs) and the last epoch of its history; an error is shown here and does not end the job
run_statuses() {
  "$PY" -c "import pathlib, sys; from nclib import runs
for d in filter(lambda d: pathlib.Path(d).is_dir(), sys.argv[1:]):
    try:
        epochs = runs.load_history(d)['epoch']
        epoch = int(epochs[-1]) if len(epochs) else '-'
    except ValueError as exc:
        epoch = f'- ({exc})'
    print(f'{pathlib.Path(d).name}: {runs.run_status(d)} at epoch {epoch}')" "$RESULTS_ROOT"/gpu/fig$1/fig$1-L*/ \
    || echo "Figure $1: the runs' statuses could not be read (above); the job goes on"
}

# FULL mode, among the last lines of the log: the runs of the pieces stopped with a checkpoint, which the next command
# on this machine, started at once, resumes (without a checkpoint a run cannot be resumed, on any machine), with that
# command in full (next_command), and the runs that did not finish and cannot continue (diverged, or without a
# checkpoint), which it leaves out
stopped_runs() {
  local f d stopped=() stuck=()
  for f in $FIGURES; do
    while read -r d; do
      if [ -f "$d/checkpoint.pt" ]; then stopped+=("$(basename "$d")")
      elif [ -d "$d" ] && [ "$(run_status "$d")" != finished ]; then stuck+=("$(basename "$d") ($(run_status "$d"))"); fi
    done < <(piece_runs "$f")
  done
  if [ "${#stopped[@]}" -gt 0 ]; then
    echo "FULL mode: stopped with a checkpoint: ${stopped[*]} (the next command, below, resumes them on this machine)"
    next_command
  else
    echo "FULL mode: no run is stopped with a checkpoint: a second command would resume none"
  fi
  if [ "${#stuck[@]}" -gt 0 ]; then
    echo "FULL mode: cannot continue (no checkpoint): ${stuck[*]}; a second command leaves them out"
  fi
}

# FULL mode: the runbook's next command, which resumes this command's stopped runs on this machine, as one line to
# paste (RESUME=1, TIME_LEFT_S in place of any BUDGET_S; this command's figures, piece and precision, and each
# setting of NEXT_SHARES that its environment gave), and where its TIME_LEFT_S comes from: the seconds left as this
# command started (TIME_LEFT_S, else a whole machine's FULL_LEFT_S) less those it ran and WAY_S
next_command() {
  local left=${TIME_LEFT_S:-$FULL_LEFT_S} ran next name words=('OUT="$OUT"' FULL=1 RESUME=1)
  ran=$(elapsed)
  next=$(( left - ran - WAY_S > 0 ? left - ran - WAY_S : 0 ))
  words+=("$(setting FIGURES "$FIGURES")")
  if [ -n "$PIECE" ]; then words+=("$(setting PIECE "$PIECE")"); fi
  words+=("$(setting PRECISION "$PRECISION")" "TIME_LEFT_S=$next")
  for name in $NEXT_SHARES; do
    if [ -n "${GIVEN[$name]+set}" ]; then words+=("$(setting "$name" "${GIVEN[$name]}")"); fi
  done
  echo "FULL mode: the next command, at once (the machine goes back after 30 s idle):"
  echo "${words[*]} bash scripts/gpu_figures.sh"
  echo "FULL mode: its TIME_LEFT_S=$next is the $left s left as this command started ($([ -n "$TIME_LEFT_S" ] \
    && echo "its TIME_LEFT_S" || echo "a whole machine's 900 s less the slowest start")) less the $ran s it ran"
  echo "and $WAY_S s for the way to the next; where the GPU time left as this command ended is known, give that less"
  echo "$WAY_S s instead"
  if (( $(budget_of_left "$next") < RESERVE_S + 60 )); then
    echo "FULL mode: TIME_LEFT_S=$next gives the next command a BUDGET_S under RESERVE_S + 60 s, which it refuses:"
    echo "hand the machine back (the stopped runs go with it) unless the GPU time left, less $WAY_S s, is at least"
    echo "$(( RESERVE_S + 60 + LEFT_MARGIN_S )) s"
  fi
}

# NAME=VALUE as a shell reads it back: VALUE bare where no character of it needs quoting, else quoted
setting() {
  if [[ "$2" =~ ^[A-Za-z0-9_./:,+=@%-]+$ ]]; then printf '%s=%s' "$1" "$2"
  elif [[ "$2" != *"'"* ]]; then printf "%s='%s'" "$1" "$2"
  else printf '%s=%q' "$1" "$2"; fi
}

# the status of the run folder $1 (nclib.runs.run_status), or "unreadable"
run_status() {
  "$PY" -c "import sys; from nclib import runs; print(runs.run_status(sys.argv[1]))" "$1" 2>/dev/null || echo unreadable
}

# the archive of the runs; status 1 when no figure's notebook ran, or one ended with another status than 0
archive() {
  rm -rf "$KDIR"
  echo "== 5. archive ($(elapsed) s)"
  local made
  # written beside, then moved, as the other archives: a job stopped while it is written leaves no truncated
  # figures_gpu.tar.gz for scripts/land_gpu_runs.py to read
  if [ -n "$FULL" ]; then
    made=$(cd "$STAGE" && ls -d results/figures/gpu book/figures/gpu 2>/dev/null)
    # with the logs and CUDA test reports of the earlier commands on this machine (keep_logs): the last command's
    # archive holds every command's record, and nothing is copied between commands
    if [ -n "$made" ] && [ -d "$STAGE/logs" ]; then made="$made logs"; fi
    if [ -n "$made" ]; then
      tar czf "$OUT/figures_gpu.tar.gz.tmp" --exclude=checkpoint.pt --exclude=checkpoint.pt.tmp --exclude=checkpoint.pt.sha256 --exclude=.lock -C "$STAGE" $made \
        && mv "$OUT/figures_gpu.tar.gz.tmp" "$OUT/figures_gpu.tar.gz" && tar tzf "$OUT/figures_gpu.tar.gz"
    else echo "no figure ran"; fi
  else
    made=$(ls -d "${RESULTS_ROOT:-results/figures}/gpu" "${NOTEBOOK_ROOT:-book/figures}/gpu" 2>/dev/null)
    if [ -n "$made" ]; then
      tar czf "$OUT/figures_gpu.tar.gz.tmp" $made && mv "$OUT/figures_gpu.tar.gz.tmp" "$OUT/figures_gpu.tar.gz" \
        && tar tzf "$OUT/figures_gpu.tar.gz"
    else echo "no figure ran"; fi
  fi
  if [ -n "$FULL" ]; then stopped_runs; fi
  echo "== done in $(elapsed) s"
  if [ -z "$FIGS_OK$FIGS_FAILED" ]; then echo "status 1: no figure's notebook ran"; return 1; fi
  if [ -n "$FIGS_FAILED" ]; then echo "status 1: the notebook of Figure(s)$FIGS_FAILED did not end with status 0"; return 1; fi
}

# FULL mode: this command's log and CUDA test report kept in $STAGE/logs/ as callN-log.txt and callN-cuda_tests.txt
# (N: the commands on this machine so far), where the next command's archive takes them; not for a command that
# was refused (status 2) or made no stage
keep_logs() {
  local n
  [ -d "$STAGE/results" ] && mkdir -p "$STAGE/logs" || return 0
  n=$(( $(ls "$STAGE/logs" | grep -c '^call[0-9]*-log\.txt$') + 1 ))
  cp "$OUT/log.txt" "$STAGE/logs/call$n-log.txt"
  if [ -f "$OUT/cuda_tests.txt" ]; then cp "$OUT/cuda_tests.txt" "$STAGE/logs/call$n-cuda_tests.txt"; fi
}

main 2>&1 | tee "$OUT/log.txt"
status=${PIPESTATUS[0]}
if [ -n "$FULL" ] && [ "$status" -ne 2 ]; then keep_logs; fi
exit "$status"
