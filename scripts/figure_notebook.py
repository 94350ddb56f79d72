"""The papermill parameters of a figure's runs, and the relabelling of the executed training notebook.

    python scripts/figure_notebook.py params FIG [--scale gpu|cpu-scale] [--set NAME=VALUE ...]
        prints the training notebook's parameters of Figure FIG (nclib.figures.figure_parameters) as JSON that
        YAML readers (papermill -f) read back with the same types; each --set is read by
        nclib.parameters.parse_setting, as scripts/stability_runs.py reads it
    python scripts/figure_notebook.py relabel NOTEBOOK FIG SCALE [--piece L1-L3]
        gives an executed copy of the training notebook its own title, target and figure names for the book
        (--piece: the notebook made only those runs of the figure)
    python scripts/figure_notebook.py redraw NOTEBOOK FIG SCALE
        redraws the stored panels of an executed copy from the committed run folders with the current plotting
        code, without retraining, and says so in its caption
    python scripts/figure_notebook.py reglue NOTEBOOK FIG SCALE
        writes the numbers glued into the closing sentence of an executed copy again from the committed run
        folders as the book writes numbers (nclib.rounding), without re-executing it, and says so in its note

scripts/gpu_run_figure.sh runs both around papermill; the runs are those of Figures 1-4 (Section 5).
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import pathlib
import re
import sys
from typing import Mapping

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # this checkout's nclib, not an installed one
from nclib import data, figures, letters, parameters, plotting, rounding, sweeptable  # noqa: E402
from nclib import runs as runs_contract  # noqa: E402
from nclib.runs import atomic_write_text  # noqa: E402

#: The caption of the panels in an executed copy of the training notebook (:func:`relabel_notebook`), by the
#: scale of its runs and whether the figure's chapter draws them (:func:`drawn_by_chapter`): the training chapter's
#: caption speaks of its smoke run.
_READ_BACK = ("The collapse metrics and the training accuracy against epochs, one curve per head depth L, read back "
              "from the run folders this execution wrote")
RUN_PANELS_CAPTIONS = {
    ("gpu", True): f"{_READ_BACK}; the figure's chapter draws them with the theory's targets and the epoch count "
                   f"against the paper's.",
    ("gpu", False): f"{_READ_BACK}; the figure's chapter draws its CPU-scale runs, not these.",
    ("cpu-scale", True): f"{_READ_BACK} (CPU scale, not the paper's settings); the figure's chapter draws them with "
                         f"the theory's targets.",
    ("cpu-scale", False): f"{_READ_BACK} (CPU scale, not the paper's settings); the figure's chapter draws its GPU "
                          f"runs instead.",
}
RUN_PANELS_CAPTION = RUN_PANELS_CAPTIONS["gpu", True]

#: What the caption adds once :func:`redraw_panels` has replaced the stored panels.
REDRAWN = (" Redrawn from the committed run folders with the book's current plotting code "
           "(`scripts/figure_notebook.py redraw`), without retraining; the legend names the scale and the epochs. "
           "The code cell shows the call as executed, whose output had an older layout.")

#: The names the glue cell of the training notebook recorded before it wrote its closing numbers as the book
#: writes them (:func:`reglue_numbers` rewrites those of an executed copy): the runs, their epochs, the smallest
#: fall of NC1 from its value at initialization, the lowest final training accuracy and the data.
EXECUTED_GLUE = ("train-n-runs", "train-epochs", "train-min-drop", "train-final-acc", "train-dataset")

#: What the note of an executed notebook adds once :func:`reglue_numbers` has written its closing numbers again.
REGLUED = (" The numbers glued into its closing sentence were written again from the committed run folders as the "
           "book writes numbers (`scripts/figure_notebook.py reglue`), without re-executing it: the epochs with "
           "thousands separators, the fall of NC1 as a lower bound rounded down (where needed to more figures than "
           "the figure chapter's table of NC1's falls, so that it stays a bound and still reads as that table's "
           "number), the training accuracy in percent. "
           "The hidden cell that glued them still shows the code as it was executed, which wrote them in other "
           "formats.")

#: How the title of an executed notebook names the runs of each scale, briefly: "Figure 1: GPU runs (executed
#: notebook)"; its first paragraph says what they are (:data:`SCALE_TITLES`).
SCALE_NAMES = {"gpu": "GPU runs", "cpu-scale": "CPU-scale runs"}

#: How the first paragraph of an executed notebook says what the runs of each scale are.
SCALE_TITLES = {"gpu": "GPU runs with every setting the paper states",
                "cpu-scale": "CPU-scale runs (not the paper's settings)"}


def yaml_safe_json(params: Mapping) -> str:
    """``params`` as JSON that a YAML 1.1 reader (PyYAML, papermill's ``-f``) reads back with the same types.

    JSON writes 1e-05 for 0.00001, which YAML 1.1 reads as the *string* '1e-05' (its floats need a dot);
    every float in exponent form gets one (1.0e-05), which both read as the float. Strings are left alone.
    """
    floats: list[str] = []
    tag = "\x00float\x00"

    def mark(v):
        if isinstance(v, Mapping):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [mark(x) for x in v]
        if isinstance(v, float) and math.isfinite(v):
            text = repr(v)
            mantissa, e, exponent = text.partition("e")
            floats.append(f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text)
            return f"{tag}{len(floats) - 1}"
        return v

    text = json.dumps(mark(params), indent=1)
    return re.sub(r'"\\u0000float\\u0000(\d+)"', lambda m: floats[int(m.group(1))], text)


def check_piece(piece) -> str | None:
    """``piece`` if it names some of a figure's runs, as ``L1`` or ``L1-L3`` (head depths of ``L_VALUES`` in
    increasing order), or None; ValueError otherwise."""
    if piece is None:
        return None
    Ls = [int(x) for x in re.findall(r"L(\d+)", str(piece))]
    if not Ls or str(piece) != "-".join(f"L{L}" for L in Ls) or sorted(set(Ls)) != Ls or not set(Ls) <= set(
            figures.L_VALUES):
        raise ValueError(f"piece must name head depths of {list(figures.L_VALUES)} in increasing order, as 'L1' or "
                         f"'L1-L3', got {piece!r}")
    return str(piece)


def piece_of(L_values) -> str:
    """The piece name of the runs ``L_values`` (``[1, 3]`` -> ``"L1-L3"``)."""
    return check_piece("-".join(f"L{int(L)}" for L in sorted(L_values)))


def drawn_by_chapter(fig, scale: str) -> bool:
    """Whether the chapter of Figure ``fig`` draws its runs of ``scale``: those of
    :func:`nclib.figures.preferred_scale`, the GPU runs where all three are committed finished, else the CPU-scale
    runs (the committed run folders decide, so that a notebook's note and caption say what its page is now)."""
    return figures.preferred_scale(fig) == scale


def panels_caption(scale: str, redrawn: bool, drawn: bool = True) -> str:
    """The caption of the panels an executed notebook of ``scale`` drew (:data:`RUN_PANELS_CAPTIONS`), saying
    whether the figure's chapter draws these runs (``drawn``, :func:`drawn_by_chapter`) or the other scale's, with
    :data:`REDRAWN` when :func:`redraw_panels` drew them again; ValueError naming ``scale`` for a scale that has
    no caption."""
    scales = sorted({s for s, _ in RUN_PANELS_CAPTIONS})
    if scale not in scales:
        raise ValueError(f"scale must be one of {scales} for a run notebook's caption, got {scale!r}")
    return RUN_PANELS_CAPTIONS[scale, bool(drawn)] + (REDRAWN if redrawn else "")


def run_label(fig, scale: str, piece=None) -> str:
    """The target of an executed figure notebook in the book, e.g. ``run-fig1-cpu-scale``; for a notebook that
    made only some of the figure's runs (``piece``, :func:`check_piece`), e.g. ``run-fig2-gpu-L1``."""
    f = figures.figure(fig)
    figures.scale_settings(scale)
    piece = check_piece(piece)
    return f"run-fig{f.number}-{scale}" + ("" if piece is None else f"-{piece}")


def injected_value(nb: dict, name: str):
    """The value of ``name`` that papermill injected into an executed training notebook (a Python literal in its
    ``injected-parameters`` cell), or None where it injected none."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            m = re.search(rf"^{re.escape(name)} = (.+?)\s*$", text, flags=re.M)
            if m is None:
                return None
            try:
                return ast.literal_eval(m.group(1))
            except (ValueError, SyntaxError):
                return None
    return None


def injected_epochs(nb: dict) -> int | None:
    """The ``epochs`` papermill injected into an executed training notebook, or None."""
    epochs = injected_value(nb, "epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


def written_runs(nb: dict) -> list[pathlib.Path] | None:
    """The run folders an executed training notebook wrote, as its injected parameters name them (``out_dir``,
    relative to the checkout's root where papermill ran it, ``--cwd .``; ``L_values``, ``run_tag``, ``dataset``,
    ``bias``, ``seed``: :func:`nclib.parameters.run_names`); None where it names none."""
    out_dir, L_values = injected_value(nb, "out_dir"), injected_value(nb, "L_values")
    if not isinstance(out_dir, str) or L_values is None:
        return None
    named = {k: injected_value(nb, k) for k in ("dataset", "bias", "seed")}
    try:
        names = parameters.run_names(L_values, injected_value(nb, "run_tag"),
                                     **{k: parameters.DEFAULTS[k] if v is None else v for k, v in named.items()})
    except ValueError:
        return None
    return [figures.ROOT / out_dir / name for name in names]  # an absolute out_dir stays as it is


def epochs_reached(nb: dict) -> int | None:
    """The last epoch in the histories of the runs an executed training notebook wrote (:func:`written_runs`), the
    fewest of them (the runs of one call stop together); None where it names none or one has no history there."""
    folders = written_runs(nb)
    try:
        last = [runs_contract.load_history(folder)["epoch"] for folder in folders or []]
    except ValueError:
        return None
    return min(int(epochs[-1]) for epochs in last) if last and all(len(epochs) for epochs in last) else None


def runs_commit(nb: dict) -> str | None:
    """The git commit (its first 7 hex digits) that the provenance of the runs an executed training notebook wrote
    records (:func:`written_runs`), where they all record one; None where the notebook names no run folder, one has
    no readable provenance, or they record different commits."""
    commits = set()
    for folder in written_runs(nb) or []:
        try:
            commit = json.loads((folder / "provenance.json").read_text()).get("git_commit")
        except (OSError, ValueError, AttributeError):
            return None
        if not isinstance(commit, str) or not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            return None
        commits.add(commit[:7])
    return commits.pop() if len(commits) == 1 else None


def _data_record(folder) -> dict | None:
    """The data record (``provenance["data"]``) of a run folder, None where it has no readable one."""
    record = sweeptable.read_provenance(folder)[0].get("data")  # {} where missing or damaged
    return record if isinstance(record, dict) else None


def data_label(nb: dict, dataset: str) -> str:
    """How the legends name the data of an executed training notebook's runs (:func:`nclib.plotting.dataset_label`):
    from the ``params.json`` its runs recorded (:func:`written_runs`), since papermill may inject ``data_path = None``,
    which the notebook reads as ``../shared/data/cifar10_subset.npz`` for CIFAR-10; from the injected ``data_path``
    where no run folder has a record, None then read as the notebook reads it.  A run's data record
    (``provenance["data"]``), where it has one, decides as it does in the legends."""
    recorded = [(runs_contract.read_params(folder), _data_record(folder)) for folder in written_runs(nb) or []]
    labels = {plotting.dataset_label(p, d) for p, d in recorded if p is not None}
    if len(labels) == 1:  # the runs of one call read one data set
        return labels.pop()
    data_path = injected_value(nb, "data_path")
    if data_path is None and dataset == "cifar10":  # the training notebook's default (:ref:`ch-train`)
        data_path = str(data.SHARED_CIFAR10)
    return plotting.dataset_label({"dataset": dataset, "data_path": data_path or ""})


#: How a notebook's note names the data of its runs, by dataset (the figure's own data where none was injected).
DATA_LABELS = {"cifar10": "CIFAR-10", "emnist-letters": "EMNIST letters",
               "letters-synthetic": letters.LETTERS_SYNTHETIC_LABEL, "synthetic": "a Gaussian mixture"}


def scale_title(scale: str, epochs: int | None) -> str:
    """How the first paragraph of a notebook says what its runs are: "GPU runs with every setting the paper states
    but 2,600 of its 12,000 epochs"."""
    label = SCALE_TITLES[scale]
    full = figures.scale_settings("gpu")["epochs"]
    if scale == "gpu" and epochs is not None and epochs < full:
        label += f" but {epochs:,} of its {full:,} epochs"
    return label


def relabel_notebook(path, fig, scale: str, piece=None) -> pathlib.Path:
    """Give an executed copy of the training notebook (:ref:`ch-train`) its own title, target, note and figure names.

    Every executed copy would otherwise repeat the ``(ch-train)=`` target, the title and the figure names
    (``fig-train-panels``) of the training chapter: duplicate labels in the book. Only markdown and code-cell
    metadata change: the first cell becomes the target :func:`run_label`, a short title naming the figure and the
    scale (:data:`SCALE_NAMES`: it is also the text of the neighbouring pages' links to this one), and a note on
    what the notebook is, in place of the training chapter's introduction.  The note's first sentence says what its
    runs are: the scale with the epochs papermill injected (or, where the runs in the folders it names stopped
    before them, the epoch they reached: :func:`epochs_reached`), the bias case and the data (the stand-in for the
    letters, the JPEG-decoded copy of CIFAR-10 that the runs recorded: :func:`data_label`); the rest says that its
    text is the chapter's as it was when executed (naming the commit the runs' provenance records,
    :func:`runs_commit`), not necessarily its current text, and its last what the figure's chapter does with these
    runs now: draws them, or the other scale's (:func:`drawn_by_chapter`); each figure name gets the run label as
    prefix, and the panels' caption becomes the one of the notebook's scale and of what the chapter draws
    (:func:`panels_caption`, :data:`RUN_PANELS_CAPTIONS`);
    where :func:`reglue_numbers` wrote its closing numbers again, the note says so (:data:`REGLUED`).
    Code, outputs and execution metadata are left exactly as papermill wrote them.
    ``piece`` (e.g. ``"L1"``): the notebook made only those runs of the figure (a figure trained one piece per
    GPU machine); the title and the target say which.  Where papermill injected fewer of the piece's head depths
    (``L_values``: a command that resumed only the runs with a checkpoint), the title names those it trained.
    Idempotent.
    """
    path = pathlib.Path(path)
    f = figures.figure(fig)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    nb = json.loads(path.read_text())
    label = run_label(f, scale, piece)
    runs = "" if piece is None else ", runs " + ", ".join(f"L = {L[1:]}" for L in piece.split("-"))
    trained = injected_value(nb, "L_values")
    if piece is not None and isinstance(trained, list) and set(trained) < {int(L[1:]) for L in piece.split("-")}:
        runs = ", runs " + ", ".join(f"L = {L}" for L in sorted(trained)) + f" of the piece {piece}"
    dataset = injected_value(nb, "dataset") or f.dataset  # the runs' data: real EMNIST letters where injected
    epochs, reached = injected_epochs(nb), epochs_reached(nb)
    if epochs is not None and reached is not None and reached < epochs:
        epochs = reached  # runs stopped before their epochs (max_train_s): the note gives the epoch they reached
    title = f"Figure {f.number}{runs}: {SCALE_NAMES[scale]} (executed notebook)"
    data_text = DATA_LABELS.get(dataset, dataset)  # the stand-in for the letters says so: not the paper's data
    if data_label(nb, dataset) == "CIFAR-10 (JPEG-decoded copy)":  # nor is a lossy copy, as the legends say
        data_text = "a JPEG-decoded copy of CIFAR-10"
    commit = runs_commit(nb)
    at = f" (the runs it wrote record commit `{commit}`)" if commit else ""
    drawn = drawn_by_chapter(f, scale)
    # what the figure's chapter does with these runs now (the committed run folders decide: drawn_by_chapter)
    # each link with its own text: a chapter's title ("Figure 1: CIFAR-10 with a bias") reads badly in a sentence
    of_figure = f"chapter of Figure {f.number} <ch-fig{f.number}>`"
    chapter = {("gpu", True): f"{{ref}}`The {of_figure} draws and discusses the runs it wrote, with their epoch count "
                              f"against the paper's.",
               ("gpu", False): f"{{ref}}`The {of_figure} draws the figure's CPU-scale runs, not these.",
               ("cpu-scale", True): f"The figure has no GPU runs, and {{ref}}`the {of_figure} draws and discusses the "
                                    f"runs it wrote.",
               ("cpu-scale", False): f"{{ref}}`The {of_figure} draws the figure's GPU runs, not these; "
                                     f"{{ref}}`the figures' summary <ch-figures-summary>` says what changes at the "
                                     f"CPU scale."}[scale, drawn]
    note = (f"This is {{ref}}`the training notebook <ch-train>` as papermill executed it for Figure {f.number}; "
            f"its runs are {scale_title(scale, epochs)}, {'with bias' if f.bias else 'bias-free'}, on {data_text}. "
            f"It is shown with its outputs and never re-executed by the book build. The text below is the training "
            f"chapter's as it was when the notebook was executed{at}, not necessarily the chapter's current text, "
            f"and speaks of this execution. Its parameters are in the cell tagged `injected-parameters` "
            f"(smoke = False: where the text below speaks of the smoke run, those parameters apply instead). "
            f"{chapter}")
    if any("reglued" in cell.get("metadata", {}) for cell in nb["cells"]):
        note += REGLUED
    titled = False
    for cell in nb["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown" and not titled and ("(ch-train)=" in text or f"({label})=" in text):
            cell["source"] = f"({label})=\n# {title}\n\n{note}"
            titled = True
        elif cell["cell_type"] == "code":
            fig_meta = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            if "name" in fig_meta and not str(fig_meta["name"]).startswith(label):
                fig_meta["name"] = f"{label}-{fig_meta['name']}"
            if "caption" in fig_meta:
                redrawn = "redrawn" in cell.get("metadata", {})
                fig_meta["caption"] = panels_caption(scale, redrawn, drawn)
    if not titled:
        raise ValueError(f"path {str(path)!r} is not an executed training notebook (no '(ch-train)=' title cell)")
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def redraw_panels(path, fig, scale: str, root=None) -> pathlib.Path:
    """Redraw the stored panels of an executed, relabelled copy of the training notebook from the committed run
    folders (``results/figures/<scale>/fig<k>/``, or ``root``), without retraining.

    The output of the cell that drew the panels (the one whose figure name ends in ``fig-train-panels``) is
    replaced by the panels that :func:`nclib.plotting.collapse_panels` draws now from the same runs, with the
    legend title of the figure's chapter (:func:`nclib.figures.figure_legend`: the data, the bias case, the scale
    and the epochs); the cell's code is left as executed; its metadata ``redrawn`` says what drew the output, and
    its caption says that it was redrawn (:data:`REDRAWN`).  The runs must be those the notebook made: the figure
    and scale of its label (:func:`run_label`, given by :func:`relabel_notebook`), and the head depths, epochs, data
    set and bias case papermill injected (ValueError otherwise: the CPU-scale figures share their depths and
    epochs).  Idempotent up to the PNG's bytes.
    """
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nclib import plotting

    path = pathlib.Path(path)
    f = figures.figure(fig)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    nb = json.loads(path.read_text())
    runs = figures.load_figure(f, scale, root)
    injected_L, epochs = injected_value(nb, "L_values"), injected_epochs(nb)
    if injected_L is not None and sorted(injected_L) != sorted(runs):
        raise ValueError(f"path {str(path)!r} made the runs L = {injected_L}, the run folders hold L = {sorted(runs)}")
    if epochs is not None and {int(r.params["epochs"]) for r in runs.values()} != {epochs}:
        raise ValueError(f"path {str(path)!r} made runs of {epochs} epochs, the run folders hold others")
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"
             and str(c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name", "")).endswith(
                 "fig-train-panels")]
    if len(cells) != 1:
        raise ValueError(f"path {str(path)!r} has {len(cells)} cells that draw the panels, expected 1 (relabel it first)")
    cell = cells[0]
    made = str(cell["metadata"]["mystnb"]["figure"]["name"])[:-len("-fig-train-panels")]  # as relabel named it
    if not made.startswith(run_label(f, scale)):
        raise ValueError(f"path {str(path)!r} is the notebook {made!r}, not one of Figure {f.number} at scale "
                         f"{scale!r} ({run_label(f, scale)!r})")
    for name in ("dataset", "bias"):  # where papermill injected them (every figure injects both)
        given, held = injected_value(nb, name), sorted({r.params[name] for r in runs.values()})
        if given is not None and held != [given]:
            raise ValueError(f"path {str(path)!r} made runs with {name} = {given!r}, the run folders of Figure "
                             f"{f.number} hold {name} = {', '.join(map(repr, held))}")
    legend = figures.figure_legend(runs, scale)
    drawn = plotting.collapse_panels(figures.as_plot_runs(runs), legend_title=legend,
                                     nc3_compares={L: r.nc3_compares for L, r in runs.items()})
    buffer = io.BytesIO()
    drawn.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    width, height = drawn.get_size_inches() * drawn.dpi
    plt.close(drawn)
    cell["outputs"] = [{"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                                 "text/plain": f"<Figure size {width:.0f}x{height:.0f} with 6 Axes>"}}]
    cell["metadata"]["redrawn"] = {
        "by": "scripts/figure_notebook.py redraw", "plotting": "nclib.plotting.collapse_panels",
        "legend_title": legend,
        "runs": [str(r.path.relative_to(figures.ROOT)) if root is None else r.path.name for _, r in sorted(runs.items())]}
    cell["metadata"]["mystnb"]["figure"]["caption"] = panels_caption(scale, True, drawn_by_chapter(f, scale))
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def _plain(output: dict) -> str:
    """The text/plain of a glue output (``application/papermill.record/text/plain``)."""
    data = output.get("data", {})
    text = data.get(output["metadata"]["scrapbook"].get("mime_prefix", "") + "text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def reglue_numbers(path, fig, scale: str) -> pathlib.Path:
    """Write the numbers glued into the closing sentence of an executed, relabelled copy of the training notebook
    again from the committed run folders it wrote, as the book writes numbers, without re-executing it.

    A notebook executed before the training chapter wrote its closing numbers as the book does glued them in a
    program's formats: the epochs without thousands separators (``2600``), the smallest fall of NC1 (NC1 at epoch
    0 over NC1 at the last epoch) rounded to nearest in E-notation (``2.3e+00``) although the sentence calls it a
    lower bound, and the lowest final training accuracy as a fraction (``0.836``).  The glue outputs of
    :data:`EXECUTED_GLUE` are recomputed from the histories of the run folders the notebook names
    (:func:`written_runs`): each stored value must be what the executed code gives from them (or what this
    function writes, so that it is idempotent), ValueError naming the value otherwise; they are replaced by the
    epochs with thousands separators, the fall of NC1 rounded down (:func:`nclib.rounding.at_least`, three
    significant figures with their trailing zeros, as the figure chapters write the smallest fall of NC1 and their
    drops table each run's, so that it reads there as the table's number, and in the notation of that table's cell:
    a true "at least", "8.107 × 10⁵" beside 8.11 × 10⁵) and the accuracy in
    percent with its sign (:func:`nclib.figures.percent`: the executed sentence has none).  The number of runs and
    the data's name are kept.  The cell's code is left as executed; its metadata ``reglued`` records the run
    folders and the values as executed, and the note says so (:data:`REGLUED`).  A notebook reglued before, at
    another rounding, is written again where the values its metadata records as executed are those its run folders
    give.  Refused (ValueError) as well: a notebook whose label is not one of Figure ``fig`` at ``scale``
    (:func:`run_label`: relabel it first), one whose glue names are not :data:`EXECUTED_GLUE`, and one whose runs
    did not finish the epochs papermill injected.
    """
    path = pathlib.Path(path)
    f = figures.figure(fig)
    if not path.is_file():
        raise ValueError(f"path {str(path)!r} is not a file")
    nb = json.loads(path.read_text())
    label = run_label(f, scale)
    head = nb["cells"][0] if nb.get("cells") else {"source": ""}
    head_text = "".join(head["source"]) if isinstance(head["source"], list) else head["source"]
    if not re.match(rf"\({re.escape(label)}(-L[0-9L-]+)?\)=\n", head_text):
        raise ValueError(f"path {str(path)!r} is not a notebook of Figure {f.number} at scale {scale!r} labelled "
                         f"{label!r} (relabel it first)")
    glued = {}
    for cell in nb["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is not None:
                glued[name] = (cell, output)
    if set(glued) != set(EXECUTED_GLUE):
        raise ValueError(f"path {str(path)!r} glues {sorted(glued)}, not the names {list(EXECUTED_GLUE)} of the "
                         f"training notebook whose numbers this rewrites")
    cells = {id(cell): cell for cell, _ in glued.values()}
    if len(cells) != 1:
        raise ValueError(f"path {str(path)!r} glues its numbers in {len(cells)} cells, expected 1")
    folders, epochs = written_runs(nb), injected_epochs(nb)
    if not folders or epochs is None:
        raise ValueError(f"path {str(path)!r} names no run folders or epochs in its injected parameters")
    histories = [runs_contract.load_history(folder) for folder in folders]  # ValueError naming a missing one
    for folder, h in zip(folders, histories):
        if not len(h["epoch"]) or int(h["epoch"][-1]) != epochs:
            raise ValueError(f"path {str(path)!r} made runs of {epochs} epochs; the run folder {str(folder)!r} "
                             f"ends at epoch {int(h['epoch'][-1]) if len(h['epoch']) else None}")
    falls = [float(h["nc1"][0] / h["nc1"][-1]) for h in histories]
    drop = min(falls)
    # the runs' falls as the figure chapter's drops table writes them (its column of NC1's falls): the bound takes
    # the notation of the smallest's cell
    drop_cell = rounding.written_column(falls, 3)[falls.index(drop)]
    acc = min(float(h["train_acc"][-1]) for h in histories)
    values = {  # name: (as the executed glue cell wrote it, as the book writes it)
        "train-epochs": (epochs, f"{epochs:,}"),
        # three figures, as the figure chapters write the smallest fall of NC1 and their drops table each run's
        "train-min-drop": (f"{drop:.1e}", rounding.at_least(drop, 3, zeros=True, like=drop_cell)),
        "train-final-acc": (f"{acc:.3f}", f"{figures.percent(acc)}\u00a0%"),
    }
    runs = len(folders)
    if _plain(glued["train-n-runs"][1]) != repr(runs):
        raise ValueError(f"path {str(path)!r} glued train-n-runs = {_plain(glued['train-n-runs'][1])}, but names "
                         f"{runs} run folders")
    cell = next(iter(cells.values()))
    # reglued before (at an older rounding): the values it recorded as executed stand for the stored ones
    before = cell.get("metadata", {}).get("reglued", {}).get("executed", {})
    for name, (executed, written) in values.items():
        stored = _plain(glued[name][1])
        if stored not in (repr(executed), repr(written)) and (name not in before or before[name] != executed):
            raise ValueError(f"path {str(path)!r} glued {name} = {stored}, which its run folders do not give "
                             f"(executed: {executed!r})")
    for name, (_, written) in values.items():
        output = glued[name][1]
        output["data"] = {output["metadata"]["scrapbook"].get("mime_prefix", "") + "text/plain": repr(written)}
    cell["metadata"]["reglued"] = {
        "by": "scripts/figure_notebook.py reglue", "rounding": "nclib.rounding.at_least, nclib.figures.percent",
        "runs": [str(p.relative_to(figures.ROOT)) if p.is_relative_to(figures.ROOT) else str(p) for p in folders],
        "executed": {name: executed for name, (executed, _) in values.items()}}
    # one note: any earlier one (its opening words, and whatever wording followed them) gives way to REGLUED
    opening = head_text.find(REGLUED[:REGLUED.index(" from the committed")])
    head["source"] = (head_text if opening < 0 else head_text[:opening]) + REGLUED
    atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/figure_notebook.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("params", help="print the papermill parameters of one figure as JSON")
    pp.add_argument("fig", type=int)
    pp.add_argument("--scale", default="gpu", choices=sorted(figures.SCALES))
    pp.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override one parameter (read by nclib.parameters.parse_setting)")
    rp = sub.add_parser("relabel", help="retitle an executed training notebook for the book")
    rp.add_argument("notebook", type=pathlib.Path)
    rp.add_argument("fig", type=int)
    rp.add_argument("scale", choices=sorted(figures.SCALES))
    rp.add_argument("--piece", default=None, help="the runs this notebook made, as L1 or L1-L3 (default: all)")
    dp = sub.add_parser("redraw", help="redraw the stored panels of an executed notebook from the run folders")
    dp.add_argument("notebook", type=pathlib.Path)
    dp.add_argument("fig", type=int)
    dp.add_argument("scale", choices=sorted(figures.SCALES))
    gp = sub.add_parser("reglue", help="write an executed notebook's closing numbers again from the run folders")
    gp.add_argument("notebook", type=pathlib.Path)
    gp.add_argument("fig", type=int)
    gp.add_argument("scale", choices=sorted(figures.SCALES))
    args = ap.parse_args(argv)
    if args.command == "params":
        try:
            overrides = parameters.parse_settings(args.set, "--set")
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        try:  # parameters the engine would refuse: one line, status 1, before any notebook runs
            params = figures.figure_parameters(args.fig, args.scale, **overrides)
        except ValueError as exc:
            raise SystemExit(f"params: {exc}") from None
        print(yaml_safe_json(params))
    else:
        try:
            if args.command == "redraw":
                redraw_panels(args.notebook, args.fig, args.scale)
            elif args.command == "reglue":
                reglue_numbers(args.notebook, args.fig, args.scale)
            else:
                relabel_notebook(args.notebook, args.fig, args.scale, args.piece)
        except ValueError as exc:  # a notebook or run folder refused: one line, status 1, as for params
            raise SystemExit(f"{args.command}: {exc}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
