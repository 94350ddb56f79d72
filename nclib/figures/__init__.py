"""Figures 1-4 of Section 5 and Appendix C: their configuration, the committed runs, the theory at the runs'
decays, the plots and the numbers and tables of the figure chapters.

The paper's Figures 1-4 plot NC1, NC2^W, NC2^H, NC2^{WH}, NC3 and the training accuracy against epochs
for a 6-layer MLP backbone and an L-layer linear head (L = 1, 3, 6) trained on objective (4.3):

========  =====================================  ============  ==========================
figure    data                                   bias          chapter
========  =====================================  ============  ==========================
1         CIFAR-10, 500,500,400,...,100,100      with bias     :ref:`ch-fig1`
2         EMNIST letters, 1 x 1500, 5 x 600,     with bias     :ref:`ch-fig2`
          20 x 50
3         CIFAR-10                               bias-free     :ref:`ch-fig3`
4         EMNIST letters                         bias-free     :ref:`ch-fig4`
========  =====================================  ============  ==========================

One module per concern, imported in this order (no cycles): :mod:`.config` (the figures and the two scales, ``"gpu"``
and ``"cpu-scale"``, derived from :data:`nclib.parameters.DEFAULTS`), :mod:`.load` (reading the run folders, checking
them against the configuration), :mod:`.events` (first and settled epochs, rises and training spikes, the
learning-rate step, accuracy dips: events in a run's history), :mod:`.analysis` (theory at the runs' decays, stalls,
final values and orderings, wall times, the verdict near the collapsed minimizer, the checks the chapters assert),
:mod:`.speed` (benchmark outputs, the GPU calibration, what one machine fits; the GPU jobs' logs and the letters'
rendering), :mod:`.stability` (the precision stability runs of Figure 1's setting: what counts as a spike, and the
rule that chooses the precision of the figure runs; used as ``nclib.figures.stability``), :mod:`.plots` (the panels
and the theory overlay), :mod:`.chapter` (the figure chapters' tables and glued numbers) and :mod:`.summary` (the
summary's, read from the figure chapters, the benchmark outputs and the GPU calibration). Everything public but
:mod:`.stability`'s is re-exported here, and three functions the figure chapters read from other modules:
:func:`nclib.imbalance.small_classes`, :func:`nclib.provenance.unknown_commits` and
:func:`nclib.ufmtrain.trained_ufm_at_minimum`. The tooling that makes the runs (notebook parameters, relabelling,
GPU budget) is in ``scripts/``.

EMNIST letters cannot be downloaded here; Figures 2 and 4 run on the ``letters-synthetic`` stand-in with
the same class-count profile (:data:`nclib.letters.LETTERS_SYNTHETIC_LABEL`), and every label says so.
"""
from .config import (FIGURES, HISTORY_KEYS, INPUT_DIM, L_VALUES, NOTEBOOK_ONLY_KEYS, NOTEBOOKS, PER_RUN_KEYS, RESULTS,
                     SCALES, Figure, check_run_settings, check_scale, figure, figure_counts, figure_parameters,
                     scale_settings, train_kwargs)
from .load import (CONFIG_KEYS, DATA_RECORD_KEYS, NC2_ROUNDING, NC3_EQUAL_COUNT_BLOCKS, PROVENANCE_TYPES,
                   REMAKE_MAY_DIFFER, SCALE_DEVICES, Run, check_figure, check_remake, check_run, checked_history,
                   checked_params, checked_run, checked_runs, commit_problems, compare_nc3, device_kind, load_figure,
                   made_clean_problems, one_call, parameter_count, preferred_scale, provenance_problems, run_counts,
                   run_folders, together_problems)
from .events import (RISE_KEYS, SPIKE_FACTOR, accuracy_dips, first_epoch, largest_rise, lr_step, next_milestone,
                     other_spikes, positive_values, record_rises, recorded_every, rise_factor, rise_ratios,
                     settled_epoch, spikes)
from .analysis import (DROP_KEYS, NC2_KEYS, NEAR_BOUND, ORDER_KEYS, SPREADS, VERDICT_KEYS, RunTheory, check_runs,
                       check_stalls, collapse_verdict, collapse_verdicts, final_rows, metric_drops, order_by,
                       order_held, orders_without_spikes, run_theory, stall_nc2, stall_spread_nc1, stalls,
                       wall_time_s)
from .speed import (BENCHMARKS, GPU_LOGS, LETTERS_BENCHMARK, NOTEBOOK_OVERHEAD_S, RECORD_FIELDS,
                    RECORD_FIGURE_FIELDS, budget_lines, calibrated_seconds, fewest_pieces, figure_parameter_counts,
                    gpu_log_files, gpu_logs, logged_figure, piece_seconds, read_benchmark, read_benchmark_record,
                    read_letters_benchmark, round_quotients, with_data_seconds)
from .plots import PAPER_DATA, THEORY_FONT, as_plot_runs, draw_panels, draw_theory, figure_legend, on_other_data
from .chapter import (NC3_BY_CLASS, FigureChapter, comma_list, drops_table, epoch_cell, figure_chapter, figure_glue,
                      figure_tables, nc3_readings, percent, precisions, rise_cell, table_column)
from .summary import benchmark_glue, calibration_glue, nc2_wh_pair, summary_glue, summary_tables
from . import stability
from .. import ROOT
from ..imbalance import small_classes  # the chapters read these three as nclib.figures' too
from ..provenance import unknown_commits
from ..ufmtrain import trained_ufm_at_minimum

__all__ = [name for name in dir() if not name.startswith("_")]
