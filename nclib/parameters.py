"""The training engine's one parameter list (chapter :ref:`ch-engine`): every parameter of
:func:`nclib.train.run`, with its documented default.

Torch-free, so that what reads the parameters without training (the figures' configuration, the sweeps'
grids, the training notebook's parameters cell) need not import torch; :mod:`nclib.train` re-exports all of
it and validates a parameter set (:func:`nclib.train.check_params`).  It also holds the one grammar of a
parameter's value written as text on a command line (:func:`parse_value`, :func:`parse_setting`).
"""
from __future__ import annotations

import re

PRECISIONS = ("fp32", "tf32", "bf16")


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


def parse_value(text: str, name: str | None = None, flag: str | None = None):
    """The value of the parameter ``name`` written as text: the one grammar of the repository's command lines, for
    every ``NAME=VALUE`` setting (:func:`parse_setting`; each value of a sweep's ``--grid``) and every flag value of
    ``python -m nclib.train`` (:ref:`ch-engine`), so that one word means one value whichever tool reads it.

    Surrounding spaces are dropped, then:

    - ``[a,b,...]``: a list, each item read by this same rule (``[1,[2,3]]`` nests; ``[]`` is empty); the commas
      outside inner brackets separate the items;
    - for a name of :data:`TEXT_KEYS` (paths and names): the text as given, ``none`` (any case) as None;
    - otherwise :func:`parse_scalar`: an int, a float, ``true``/``false``/``none`` (any case), else the text.

    ValueError naming ``flag`` and ``name`` for an empty value or item, unbalanced brackets, or text after a
    list's closing bracket (a bracket elsewhere in a value is refused too, but in a text key's text)."""
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
    out_dir=None, run_name=None, overwrite=False, progress=True, max_train_s=None, resume=False,
)

#: Parameters that say how one call trains, not what the run is: a call that resumes a run (``resume=True``) may
#: set them differently from the call that started it (every other parameter must be the same).
EXECUTION_KEYS = ("progress", "overwrite", "max_train_s", "resume", "async_metrics", "grouped_adam",
                  "steps_per_graph", "deferred_metrics", "adam_in_backward")

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
#: step (:mod:`nclib.step`) and the numpy Adam of the UFM (:func:`nclib.minority.train_ufm`) both take them from here.
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
