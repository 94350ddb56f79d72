"""The training engine's one parameter list (chapter :ref:`ch-engine`): every parameter of
:func:`nclib.train.run`, with its documented default.

Torch-free, so that what reads or checks the parameters without training (the figures' configuration, the
sweeps' grids and plans, the training notebook's parameters cell) need not import torch: the one grammar of a
parameter's value written as text on a command line (:func:`parse_value`, :func:`parse_setting`,
:func:`parse_settings`), the parameter list with its defaults (:data:`DEFAULTS`), the check of a whole parameter set (:func:`check_params`, or
:func:`checked` for a set that trains on another machine), which parameters define what a run is
(:func:`defining_params`), and the reference code's decay convention that ``lam_W="reference"`` and
``lam_H="reference"`` name, lam = K x 1e-5 (:func:`reference_decay`, :func:`from_reference_decay`).
"""
from __future__ import annotations

import re

import numpy as np

from . import ROOT, _checks, data, runplan, runs

PRECISIONS = ("fp32", "tf32", "bf16")
#: The initializations of the network (:func:`nclib.models.build_model`).
INITS = ("reference", "orthogonal", "pytorch")


#: Parameters whose value written as text (:func:`parse_value`) is that text, never a number: paths and names
#: (``run_name=007`` names the folder "007", not 7); ``none`` (any case) reads as None.  ``run_tag`` is the training
#: notebook's (and ``python -m nclib.train --run-tag``'s) name of its runs.
TEXT_KEYS = ("dataset", "data_path", "class_order", "selection", "normalization", "init", "device", "precision",
             "out_dir", "run_name", "run_tag")


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_scalar(text: str):
    """A scalar written as text (:func:`parse_value` without brackets and text keys): an int (ASCII digits with an
    optional sign), else a float (decimal, optional exponent; not ``nan``, ``inf``, ``1_000`` or other scripts'
    digits, which stay text), else ``true``/``false``/``none`` (any case) as True/False/None, else the text
    itself."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def _label(name: str | None, flag: str | None) -> str:
    """How a refusal names the value: ``--set counts``, ``counts``, or ``value``."""
    return " ".join(w for w in (flag, name) if w) or "value"


def split_items(text: str, what: str = "value") -> list[str]:
    """``text`` split at its commas outside brackets (``1,[2,3]`` -> ``["1", "[2,3]"]``), the items of a list in
    :func:`parse_value` and the values of ``python -m nclib.sweep --grid``; ValueError naming ``what`` on unbalanced
    brackets or an empty item."""
    if not isinstance(text, str):
        raise ValueError(f"{what}: text expected, got {type(text).__name__}")
    items, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{what} {text!r}: unbalanced ']'")
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if depth != 0:
        raise ValueError(f"{what} {text!r}: unbalanced '['")
    items.append(cur)
    if any(not t.strip() for t in items):
        raise ValueError(f"{what} {text!r}: an empty item (write V1,V2,... with no empty item)")
    return items


def one_line_errors(parser):
    """``parser`` (an ``argparse.ArgumentParser``), its refusals made one line on stderr, status 2: argparse's own (a
    bad value, an unknown flag, a missing value), which would print the whole usage block first, and those a command
    line raises through ``parser.error``, each ending with a pointer to ``--help``.  The command lines that promise
    one line for a refused value use it (``python -m nclib.train``, ``scripts/stability_runs.py``).  Returns the
    parser."""
    def error(message):
        parser.exit(2, f"{parser.prog}: error: {message} (--help lists the flags)\n")

    parser.error = error
    return parser


def parse_value(text: str, name: str | None = None, flag: str | None = None):
    """The value of the parameter ``name`` written as text: the one grammar of the repository's command lines, for
    every ``NAME=VALUE`` setting (:func:`parse_setting`; each value of a sweep's ``--grid``) and the flag values of
    ``python -m nclib.train`` (but ``--L`` and ``--lr-milestones``, whose integers come apart,
    ``--L 1 3 6``), so that one word means one value whichever tool reads it.

    Surrounding spaces are dropped, then:

    - ``[a,b,...]``: a list, each item read by this same rule (``[1,[2,3]]`` nests; ``[]`` is empty); the commas
      outside inner brackets separate the items;
    - for a name of :data:`TEXT_KEYS` (paths and names): the text as given, ``none`` (any case) as None;
    - otherwise :func:`parse_scalar`: an int, a float, ``true``/``false``/``none`` (any case), else the text.

    ValueError naming ``flag`` and ``name`` for an empty value or item, unbalanced brackets, or text after a
    list's closing bracket (a bracket elsewhere in a value is refused too, but in a text key's text).  Used by the
    command lines of ``nclib.train`` and ``nclib.sweep`` (through :mod:`nclib.grid`) and by
    ``benchmarks/bench_train.py``; no chapter calls it."""
    what = _label(name, flag)
    if not isinstance(text, str):
        raise ValueError(f"{what}: text expected, got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise ValueError(f"{what}: an empty value")
    if s.startswith("["):
        depth = 0
        for i, ch in enumerate(s):
            depth += (ch == "[") - (ch == "]")
            if depth == 0:
                break
        if depth != 0:
            raise ValueError(f"{what} {text!r}: unbalanced '['")
        if i != len(s) - 1:
            raise ValueError(f"{what} {text!r}: text after the list's ']' (a list is [a,b,...])")
        inner = s[1:-1]
        return [] if not inner.strip() else [parse_value(t, name, flag) for t in split_items(inner, what)]
    if name in TEXT_KEYS:
        return None if s.lower() == "none" else s
    if "[" in s or "]" in s:
        raise ValueError(f"{what} {text!r}: a bracket outside a list (a list is [a,b,...])")
    return parse_scalar(s)


def split_setting(item: str, flag: str = "--set") -> tuple[str, str]:
    """``NAME=VALUE`` split at its first ``=`` into the name and the value's text (unparsed: :func:`parse_setting`
    parses it); ValueError naming ``flag`` and ``item`` for a missing ``=``, an empty name or an empty value."""
    if not isinstance(item, str) or "=" not in item:
        raise ValueError(f"{flag} {item}: expected NAME=VALUE")
    name, text = item.split("=", 1)
    name = name.strip()
    if not name:
        raise ValueError(f"{flag} {item}: no parameter name before '='")
    if not text.strip():
        raise ValueError(f"{flag} {name}: no value after '='")
    return name, text


def parse_setting(item: str, flag: str = "--set") -> tuple:
    """One command-line setting ``NAME=VALUE`` -> ``(name, value)``, the value read by :func:`parse_value` (the
    grammar); ValueError naming ``flag`` and the item or name for a missing ``=``, an empty name or value, or a
    value that grammar refuses."""
    name, text = split_setting(item, flag)
    return name, parse_value(text, name, flag)


def parse_settings(items, flag: str = "--set") -> dict:
    """The settings ``NAME=VALUE`` of a repeated command-line option (``--set``), each read by
    :func:`parse_setting`, as ``{name: value}`` (a later setting of a name replaces an earlier one); ValueError
    naming ``flag`` and the setting for the first one refused."""
    if isinstance(items, str):
        raise ValueError(f"{flag}: a list of NAME=VALUE settings expected, got the text {items!r}")
    return dict(parse_setting(item, flag) for item in items)


#: Documented defaults (``../shared/paper/README.md``: the closest public code, Dang et al. 2023, and Section 5).
DEFAULTS: dict = dict(
    dataset="cifar10", data_path=None, counts=None, class_order="reference", selection="random",
    normalization="reference", download=False, verify_checksums=True, dim=32, spread=1.0,
    L=1, bias=True, width=2048, depth=6, feature_dim=None, init="reference",
    epochs=12000, batch_size=128, lam_W="reference", lam_H="reference", lam_backbone=0.0,
    lr=1e-4, lr_milestones=(6000,), lr_gamma=0.1,
    seed=0, device="auto", precision="fp32", cuda_graph="auto", grouped_adam=False, steps_per_graph=1,
    deferred_metrics=False, adam_in_backward=False,
    metric_every=100, divergence_factor=1e4, async_metrics="auto",
    out_dir=None, run_name=None, overwrite=False, progress=True, max_train_s=None, checkpoint_every=None,
    resume=False,
)

#: Parameters that say how one call trains, not what the run is: a call that resumes a run (``resume=True``) may
#: set them differently from the call that started it (every other parameter must be the same).  ``cuda_graph``
#: says only whether a GPU launches the steps as a captured graph or one kernel at a time: the same kernels in the
#: same order (a graph run takes eager warm-up steps in every call, and ``"auto"`` goes on eagerly where capture
#: fails; on the CPU the steps are always eager).  ``checkpoint_every`` says only how often a call writes the
#: checkpoint a killed run continues from (:func:`check_checkpoint_every`); the write draws no random number and
#: changes no state.
EXECUTION_KEYS = ("progress", "overwrite", "max_train_s", "checkpoint_every", "resume", "async_metrics",
                  "cuda_graph", "grouped_adam", "steps_per_graph", "deferred_metrics", "adam_in_backward")

#: The engine's opt-in speed levers (:ref:`ch-engine`), off by default until a GPU has measured them; each changes
#: where the work is launched, not the arithmetic of a run (hence execution keys):
#: ``grouped_adam`` (True/False): the runs of one call take ONE Adam step over all their parameters per batch (on a
#: GPU one fused multi-tensor launch, the runs' forward and backward passes and that step captured in one graph)
#: instead of one Adam per run; ``steps_per_graph`` (a positive int): consecutive steps captured in one CUDA graph,
#: their batch rows read from one device buffer; above 1 only on a GPU with ``cuda_graph`` on;
#: ``deferred_metrics`` (True/False): a metric epoch queues its device work and copies to host memory on the run's
#: stream and training goes on at once; the row is completed in the worker thread (with ``async_metrics``) and
#: checked for divergence at the next metric epoch (or the run's end), so a metric epoch does not wait for the
#: device's queue to drain.
#: ``adam_in_backward`` (True/False): each parameter's Adam step is taken inside the backward pass, by a hook, as
#: soon as its gradient is complete, then the gradient is freed (on a GPU it may still be in the cache when Adam
#: reads it); not with ``grouped_adam``.
LEVER_KEYS = ("grouped_adam", "steps_per_graph", "deferred_metrics", "adam_in_backward")


#: The training notebook's parameters (:ref:`ch-train`): those of :data:`DEFAULTS` but ``L`` and ``run_name``,
#: which ``L_values`` (one run per L) and ``run_tag`` (:func:`nclib.train.run_names`) replace, and ``smoke``.
NOTEBOOK_PARAMETERS = tuple(k for k in DEFAULTS if k not in ("L", "run_name")) + ("smoke", "L_values", "run_tag")

#: Adam's constants (betas, eps): ``torch.optim.Adam``'s defaults, as the paper's training uses them; the training
#: step (:mod:`nclib.step`) and the numpy Adam of the UFM (:func:`nclib.ufmtrain.train_ufm`) both take them from here.
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8

#: Parameters that say where a run is written; the folder itself, not what the run is.
PLACE_KEYS = ("out_dir", "run_name")

#: A seed is drawn into torch's generators, which take at most 64 bits.
SEED_LIMIT = 2 ** 64


# ------------------------------------------------------------------ the reference code's decays

#: The reference code's weight decay wd and feature decay fd (Dang et al. 2023: 1e-5 each); ``lam_W="reference"``
#: and ``lam_H="reference"`` mean K times this in (4.3)'s normalization (:func:`from_reference_decay`).
REFERENCE_DECAY = 1e-5


def from_reference_decay(weight_decay: float, feature_decay: float, K: int) -> tuple[float, float]:
    """(lam_W, lam_H) of (4.3) equivalent to a reference-style loss (Dang et al. 2023, ``sep_decay``).

    That loss is mean((P h + b - y)^2)/2 over the N*K entries + wd/2 sum ||W_j||^2 + fd/2 sum_i ||h_i||^2
    (full batch), i.e. (4.3) divided by K with lam_W = K wd and lam_H = K fd.  Adam is invariant to this
    rescaling of the loss (up to its eps), so both follow the same trajectory (chapter :ref:`ch-engine`).
    """
    wd = _checks.nonneg_float(weight_decay, "weight_decay")
    fd = _checks.nonneg_float(feature_decay, "feature_decay")
    K = _checks.positive_int(K, "K")
    return K * wd, K * fd


def reference_decay(K: int) -> float:
    """The value of the decays ``"reference"`` for K classes: the reference code's wd = fd = :data:`REFERENCE_DECAY`
    in (4.3)'s normalization, K x 1e-5 (:func:`from_reference_decay`), rounded to 15 decimals so that K = 26 gives
    2.6e-4 and not 2.6000000000000003e-4 (chapter :ref:`ch-engine`)."""
    return round(from_reference_decay(REFERENCE_DECAY, REFERENCE_DECAY, K)[0], 15)


def defining_params(p: dict) -> dict:
    """The parameters of a checked set ``p`` (:func:`check_params`) that say what the run is: all of
    :data:`DEFAULTS` but

    - :data:`EXECUTION_KEYS` (how one call trains) and :data:`PLACE_KEYS` (where the run is written: the folder is
      found by them, however they are spelled);
    - ``device`` (where it trains: ``auto`` and ``cpu`` name one device on a machine without a GPU; plans compare
      the kind of device instead, :func:`device_type` against the provenance, and a resumed run's device, card
      and torch version);
    - ``download`` and ``verify_checksums`` (how the data are fetched and checked, not which: a resumed run's data
      checksum is compared anyway), and for the letters stand-in ``data_path`` (the same images rendered now or
      read from a rendering saved ahead);
    - ``dim`` and ``spread`` but for the synthetic Gaussian mixture, the only data they shape.

    A run folder holds the run ``p`` asks for iff its ``params.json`` records these values
    (:func:`nclib.runplan.differing_params`); resuming, planning a run and planning a sweep all compare these."""
    if not isinstance(p, dict) or set(p) != set(DEFAULTS):
        raise ValueError(f"p must be a checked parameter set (check_params), got {p!r:.200}")
    skip = {*EXECUTION_KEYS, *PLACE_KEYS, "device", "download", "verify_checksums"}
    if p["dataset"] == "letters-synthetic":
        skip.add("data_path")
    if p["dataset"] != "synthetic":
        skip |= {"dim", "spread"}
    return {k: v for k, v in p.items() if k not in skip}


def device_type(device: str, cuda: bool | None = None) -> str:
    """The kind of device, "cpu" or "cuda", on which a run with ``device`` ("auto", "cpu", "cuda", "cuda:i")
    trains on a machine that has a CUDA device (``cuda=True``), has none (False) or is this one (None: torch is
    asked): "auto" is "cuda" where there is one, any other its kind as :func:`nclib.runplan.device_kind` reads it.
    What a finished run's provenance is compared with, since ``device`` itself does not define a run
    (:func:`defining_params`).  ValueError naming ``device`` for anything else ("mps", which nclib does not train
    on, "gpu", no text)."""
    _check_device(device)
    if device == "auto":
        return "cuda" if (_cuda_available() if cuda is None else cuda) else "cpu"
    return runplan.device_kind(device)


def _check_device(device) -> str:
    """``device`` as a parameter names it: ``auto`` (a GPU where torch sees one, else the CPU), or a device of a
    kind (:func:`nclib.runplan.device_kind`): ``cpu``, ``cuda`` or ``cuda:i``; ValueError naming ``device``
    otherwise."""
    if device != "auto" and runplan.device_kind(device) is None:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:i', got {device!r}")
    return device


def check_steps_per_graph(steps_per_graph, graph: bool, here: str) -> int:
    """``steps_per_graph``, the steps that one replay of the step's CUDA graph takes (:ref:`ch-engine`): a positive
    integer, above 1 only where the step is captured as a graph (``graph``: a GPU, with cuda_graph 'auto' or True);
    ValueError naming it otherwise, ``here`` saying the device and cuda_graph at hand.  The lever's one check,
    torch-free: :func:`checked` and the steps of :mod:`nclib.step` call it."""
    k = _checks.positive_int(steps_per_graph, "steps_per_graph")
    if k > 1 and not graph:
        raise ValueError(f"steps_per_graph = {k} takes several steps per CUDA graph replay, which needs a GPU with "
                         f"cuda_graph 'auto' or True (here {here}); use steps_per_graph=1")
    return k


def required_device_type(device: str, cuda: bool | None = None) -> str | None:
    """The kind of device on which a finished run must have been trained to be read back, as it is, for a call with
    ``device`` (on a machine with a CUDA device, ``cuda=True``; without, False; this one, None): "cuda" for a call
    that trains on a GPU, since a run trained on a CPU has neither TF32 products nor the GPU's kernels; None (any)
    for a call on a CPU, which reads a run trained on a GPU as it is (:func:`nclib.runplan.plan_runs`)."""
    return "cuda" if device_type(device, cuda) == "cuda" else None


def _cuda_available() -> bool:
    import torch  # here, not above: only a parameter set that asks for (or may use) a GPU needs torch

    return torch.cuda.is_available()


def _cuda_device_count() -> int:
    import torch  # here, not above: only a parameter set that names a card needs torch

    return torch.cuda.device_count()


def check_params(**params) -> dict:
    """All parameters of :func:`nclib.train.run` with defaults filled in (:data:`DEFAULTS`, the documented defaults
    of :ref:`ch-engine`), validated before anything is loaded or written: a ValueError names the parameter and says
    what to fix (``counts`` of one class too: every feature is then its class mean, NC1 is 0 whatever the network
    learnt).  Also normalizes: ``lam_W`` equal on every layer becomes one number, ``"reference"`` decays become
    K x 1e-5 (:func:`reference_decay`), ``batch_size`` None becomes ``"full"``, a list of ``counts``
    (a tuple, an array, whole numbers such as 4.0) becomes a list of ints, a ``data_path`` becomes absolute (``~``
    expanded, from the working folder: a relative path given in another folder names another file, and so another
    run), a run without ``run_name`` gets :func:`run_names`'s.  Torch is imported only to ask whether a CUDA device
    is there."""
    return checked(params)


def checked(params: dict, cuda: bool | None = None) -> dict:
    """:func:`check_params` of the parameter dict ``params``, for a run that trains on a machine with a CUDA device
    (``cuda=True``), without one (False), or on this machine (None: torch is asked).  A sweep planned here for
    workers elsewhere passes True: ``device="cuda"`` and the GPU-only ``steps_per_graph`` are accepted, and the
    worker checks them again where the run trains (:ref:`ch-sweeps`)."""
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict of parameters, got {type(params).__name__}")
    if cuda is not None and not isinstance(cuda, bool):
        raise ValueError(f"cuda must be True, False or None, got {cuda!r}")
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    n, _, p["dim"], p["spread"] = data.check_load_args(p["dataset"], p["counts"], p["class_order"], p["selection"],
                                                       p["normalization"], p["dim"], p["spread"])
    if n.size < 2:  # one class: every feature is its class mean, NC1 = 0 whatever the network learnt
        raise ValueError(f"counts must give at least two classes (K >= 2) for a training run, got {n.tolist()}")
    p["L"] = _checks.positive_int(p["L"], "L")
    for k in ("bias", "grouped_adam", "deferred_metrics", "adam_in_backward", "overwrite", "progress", "download",
              "verify_checksums", "resume"):
        p[k] = _checks.flag(p[k], k)
    for k in ("width", "depth", "epochs", "metric_every"):
        p[k] = _checks.positive_int(p[k], k)
    if p["feature_dim"] is not None:
        p["feature_dim"] = _checks.positive_int(p["feature_dim"], "feature_dim")
    p["seed"] = _checks.nonneg_int(p["seed"], "seed")
    if p["seed"] >= SEED_LIMIT:
        raise ValueError(f"seed must be below 2**64 (torch's generators take 64 bits), got {p['seed']!r}")
    for key in ("lam_W", "lam_H"):  # "reference": the reference code's wd = fd = 1e-5, i.e. K x 1e-5 in (4.3)
        if isinstance(p[key], str):
            if p[key] != "reference":
                raise ValueError(f"{key} must be a non-negative number{' (or L of them)' if key == 'lam_W' else ''} "
                                 f"or 'reference' (K x {REFERENCE_DECAY:g}), got {p[key]!r}")
            p[key] = reference_decay(n.size)
    lam = _checks.layer_lambdas(p["lam_W"], p["L"], "lam_W", positive=False)
    p["lam_W"] = float(lam[0]) if np.all(lam == lam[0]) else lam.tolist()  # equal on every layer: one number
    p["lam_H"] = _checks.nonneg_float(p["lam_H"], "lam_H")
    p["lam_backbone"] = _checks.nonneg_float(p["lam_backbone"], "lam_backbone")
    p["lr"] = _checks.positive_float(p["lr"], "lr")
    p["lr_gamma"] = _checks.positive_float(p["lr_gamma"], "lr_gamma")
    p["divergence_factor"] = _checks.positive_float(p["divergence_factor"], "divergence_factor")
    if p["divergence_factor"] <= 1:  # the objective of a healthy run may sit at its initial value: never "diverged"
        raise ValueError(f"divergence_factor must be above 1 (a run is diverged once its objective exceeds this "
                         f"many times its initial value), got {p['divergence_factor']!r}")
    p["lr_milestones"] = check_milestones(p["lr_milestones"])
    bs = p["batch_size"]
    if bs is None or (isinstance(bs, str) and bs == "full"):
        p["batch_size"] = "full"
    else:
        p["batch_size"] = _checks.positive_int(bs, "batch_size (a positive integer or 'full')")
        N = _checks.count_total(n)
        if p["batch_size"] > N:
            raise ValueError(f"batch_size {p['batch_size']} is larger than the N = {N} training samples that counts "
                             f"gives; use batch_size='full' or a smaller batch")
    if not isinstance(p["precision"], str) or p["precision"] not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {p['precision']!r}")
    p["cuda_graph"] = _checks.auto_flag(p["cuda_graph"], "cuda_graph")
    p["async_metrics"] = _checks.auto_flag(p["async_metrics"], "async_metrics")
    p["steps_per_graph"] = _checks.positive_int(p["steps_per_graph"], "steps_per_graph")
    if p["adam_in_backward"] and p["grouped_adam"]:
        raise ValueError("adam_in_backward=True takes each parameter's Adam step inside its run's backward pass, "
                         "grouped_adam=True one Adam step after all the runs' passes; choose one")
    if not isinstance(p["init"], str) or p["init"] not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {p['init']!r}")
    dev = _check_device(p["device"])
    if dev.startswith("cuda") and not (_cuda_available() if cuda is None else cuda):
        raise ValueError(f"device {dev!r} asked for, but torch sees no CUDA device; use device='cpu' or 'auto'")
    if dev.startswith("cuda:") and cuda is None:  # a card of this machine: one torch sees (elsewhere: its worker's)
        count = _cuda_device_count()
        if int(dev.split(":")[1]) >= count:
            raise ValueError(f"device {dev!r} asked for, but torch sees {count} CUDA device(s), cuda:0 to "
                             f"cuda:{count - 1}; use one of them, 'cuda' or 'auto'")
    if p["steps_per_graph"] > 1:  # (device_type asks torch about "auto" only here, for the GPU-only lever)
        graph = p["cuda_graph"] is not False and device_type(dev, cuda) != "cpu"
        check_steps_per_graph(p["steps_per_graph"], graph, f"device {dev!r}, cuda_graph {p['cuda_graph']!r}")
    if p["cuda_graph"] is True and device_type(dev, cuda) == "cpu":
        raise ValueError(f"cuda_graph=True asks for the step captured as a CUDA graph, which needs a GPU (here device "
                         f"{dev!r}); use cuda_graph='auto' (a graph where there is a GPU) or False")
    if p["resume"] and p["overwrite"]:
        raise ValueError("resume=True continues the run in its folder, overwrite=True replaces it; choose one")
    path = data.source_path(p["dataset"], p["data_path"], p["download"])  # refuses a data_path for synthetic too
    if path is not None:  # absolute: the file it names wherever the run is planned, resumed or read back from
        from .grid import absolute_data_path  # here, not above: nclib.grid imports this module

        p["data_path"] = absolute_data_path(path)
    if p["max_train_s"] is not None:
        p["max_train_s"] = _checks.nonneg_float(p["max_train_s"], "max_train_s")
    p["checkpoint_every"] = check_checkpoint_every(p["checkpoint_every"], p["metric_every"])
    p["out_dir"] = str(ROOT / "results" / "runs") if p["out_dir"] is None else check_out_dir(p["out_dir"])
    if p["run_name"] is None:
        p["run_name"] = run_names([p["L"]], None, dataset=p["dataset"], bias=p["bias"], seed=p["seed"])[0]
    p["run_name"] = runs.check_run_name(p["run_name"])
    if p["counts"] is not None and not isinstance(p["counts"], str):
        # the checked counts, ints (nclib._checks.counts takes whole numbers such as 4.0, as every function of
        # class counts does): [4.0, 2.0] is the run of [4, 2], one folder and one record
        p["counts"] = n.tolist()
    return p


def check_checkpoint_every(checkpoint_every, metric_every: int):
    """``checkpoint_every``, the epochs between the periodic checkpoints of a run (:ref:`ch-engine`): None (a run
    writes a checkpoint only when it stops, ``max_train_s`` or a job's SIGTERM) or a positive integer that is a
    multiple of ``metric_every``, since a checkpoint holds the history up to a metric epoch and is written there.  A
    run killed outright (SIGKILL, an out-of-memory kill, a lost node) then loses at most that many epochs:
    ``resume=True`` continues it from its last checkpoint.  ValueError naming ``checkpoint_every`` (and
    ``metric_every`` where it is no multiple of it) otherwise; ``metric_every`` itself must be a positive
    integer."""
    metric_every = _checks.positive_int(metric_every, "metric_every")
    if checkpoint_every is None:
        return None
    every = _checks.positive_int(checkpoint_every, "checkpoint_every (None or a positive number of epochs)")
    if every % metric_every:
        raise ValueError(f"checkpoint_every must be a multiple of metric_every (a checkpoint is written at a metric "
                         f"epoch), got checkpoint_every = {every} and metric_every = {metric_every}")
    return every


def check_milestones(milestones, name: str = "lr_milestones") -> list[int]:
    """The epochs of the step schedule's drops (``lr_milestones``; :func:`nclib.engine.lr_at`, :ref:`ch-engine`),
    checked and sorted: None (no drop), one epoch, or a list of distinct positive epochs (a tuple, an array).
    ValueError naming ``name`` for anything else: an epoch below 1, one that is no whole number, text, a mapping
    (whose keys a loop would read as epochs), a set (which numpy reads as one object), or an epoch given twice,
    which would multiply the rate by ``lr_gamma`` once more at that epoch."""
    if isinstance(milestones, (dict, set, frozenset)):
        kind = "mapping" if isinstance(milestones, dict) else "set"
        raise ValueError(f"{name} must be a list of epochs, got the {kind} {milestones!r}")
    ms = [] if milestones is None else ([milestones] if np.ndim(milestones) == 0 else list(milestones))
    ms = sorted(_checks.positive_int(m, name) for m in ms)
    if len(set(ms)) != len(ms):
        raise ValueError(f"{name} must not repeat an epoch (each listed epoch multiplies the rate by lr_gamma once "
                         f"more), got {ms}; for a larger drop at one epoch, set lr_gamma")
    return ms


def check_out_dir(out_dir) -> str:
    """``out_dir``, the folder of a call's run folders, as the text of its path: a str or a path (``os.PathLike``),
    not empty nor blank (the empty path is the current directory, a list or a number is no folder); ValueError
    naming ``out_dir`` otherwise."""
    return _checks.path_arg(out_dir, "out_dir", "the path of a folder", blank=False)


def run_names(L_values, run_tag=None, *, dataset=DEFAULTS["dataset"], bias=DEFAULTS["bias"],
              seed=DEFAULTS["seed"]) -> list[str]:
    """The run folder names of one run per head depth L (objective (4.3), Section 5), the same for the command line
    (``--run-tag``) and the training notebook (``run_tag``): ``<run_tag>-L<L>``, or without a tag
    ``<dataset>-L<L>-<bias|nobias>-seed<seed>`` (the name :func:`check_params` gives a run without ``run_name``)
    (:ref:`ch-train`).  A head depth given twice is refused (ValueError naming ``L_values`` and the depth): its two
    runs would be one run, written into one folder."""
    Ls = [_checks.positive_int(L, "L_values") for L in (L_values if np.ndim(L_values) else [L_values])]
    if not Ls:
        raise ValueError("L_values must name at least one head depth L")
    repeated = sorted({L for L in Ls if Ls.count(L) > 1})
    if repeated:
        raise ValueError(f"L_values must name each head depth L once (one run per L), got {Ls}: L = "
                         f"{', '.join(map(str, repeated))} given more than once")
    if run_tag is None:
        names = [f"{dataset}-L{L}-{'bias' if bias else 'nobias'}-seed{seed}" for L in Ls]
    elif not isinstance(run_tag, str):
        raise ValueError(f"run_tag must be a string or None, got {run_tag!r}")
    else:
        names = [f"{run_tag}-L{L}" for L in Ls]
    return [runs.check_run_name(n) for n in names]


#: The parameters in which the runs of one :func:`nclib.train.run_many` call may differ: the head (depth, bias), the
#: decays of (4.3), the initialization scheme, the precision of the training products (each run's steps use its own,
#: the metrics are fp32 for all; the same seed then gives each run the same data, initialization and batch order, a
#: paired comparison of precisions), and where each run is written.  Everything else (data, network width and
#: depth, schedule, seed, device, recording, whether the call may delete runs) is one setting for all of them.
MEMBER_KEYS = ("L", "bias", "lam_W", "lam_H", "lam_backbone", "init", "precision", "run_name", "out_dir")


def unshared_keys(plist, grouped: bool = False) -> list[str]:
    """The parameters, in the order of :data:`DEFAULTS`, in which the checked parameter sets ``plist`` differ
    although the runs of one :func:`nclib.train.run_many` call share them: every one but :data:`MEMBER_KEYS`, and
    with ``grouped`` (one Adam step for all, ``grouped_adam``) the precision of the products too.  ValueError naming
    ``plist`` unless a list (or tuple) of parameter sets, dicts holding every key of :data:`DEFAULTS`, and
    ``grouped`` unless a bool."""
    if not isinstance(plist, (list, tuple)) or not all(isinstance(q, dict) for q in plist):
        raise ValueError(f"plist must be a list of checked parameter sets (dicts), got {plist!r:.200}")
    missing = [k for q in plist for k in DEFAULTS if k not in q]
    if missing:
        raise ValueError(f"plist must hold checked parameter sets, each with every parameter of DEFAULTS; one lacks "
                         f"{missing[0]!r}")
    grouped = _checks.flag(grouped, "grouped")
    return [k for k in DEFAULTS if (k not in MEMBER_KEYS or (grouped and k == "precision"))
            and any(q[k] != plist[0][k] for q in plist[1:])]
