"""Symbolic (sympy) derivations used by the book.

Each function returns sympy expressions built from named symbols so that the chapters can
print them with ``{glue:math}`` and prove identities with ``sympy.simplify``.  The functions
here start with the spectrum of Y-bar (Theorem 4.4 and Theorems B.1, B.2 of
:cite:`liu2024exploration`, chapter ``ch-spectrum``); other chapters append their own helpers
at the end of this module.
"""

import sympy
