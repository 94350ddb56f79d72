"""A stand-in for ``myst_nb.glue`` on the GPU machine, which has no myst_nb (scripts/gpu_figures.sh).

The training notebook (book/training/train.md) calls ``from myst_nb import glue``. The GPU machine has
papermill, jupytext and ipykernel from .gpu/wheels but not myst_nb (it needs Sphinx). This module is put on
PYTHONPATH there only when ``import myst_nb`` fails, and its ``glue`` writes exactly the output that
myst_nb 1.4's ``myst_nb.ext.glue.glue`` writes (same mime bundle, same ``scrapbook`` metadata, same
``application/papermill.record/`` prefix for ``display=False``), so the book reads the glued values of the
committed executed notebook as if myst_nb had been there.
"""
from __future__ import annotations

__version__ = "1.4.0-gpu-shim"

GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, variable, display: bool = True) -> None:
    """Glue ``variable``'s display value under ``name`` (the output format of myst_nb 1.4's glue)."""
    import IPython.core.formatters
    from IPython.display import display as ipy_display

    mimebundle, metadata = IPython.core.formatters.format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)
