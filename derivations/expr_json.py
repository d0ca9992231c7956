"""SymPy expressions in JSON results: written by compute modules, printed by present modules.

A compute module stores what it derived as :func:`dump` text (``sympy.srepr``: exact, with the
symbols' assumptions) rather than as LaTeX, so that the printing (:mod:`derivations.notation`)
stays out of its cache key: a notation edit reprints, and recomputes nothing.  A present module
reads the text back with :func:`parse` and prints it.

>>> import sympy as sp
>>> M = sp.Symbol("M", positive=True)
>>> dump(M / 2)
"Mul(Rational(1, 2), Symbol('M', positive=True))"
>>> parse(dump(M / 2)) == M / 2
True
"""

import sympy as sp
from sympy.stats.crv import SingleContinuousPSpace
from sympy.stats.crv_types import NormalDistribution
from sympy.stats.rv import RandomSymbol
from sympy.stats.symbolic_probability import Expectation

# srepr names outside the top-level ``sympy`` namespace that derivations produce
_NAMES = {
    cls.__name__: cls for cls in (Expectation, NormalDistribution, RandomSymbol, SingleContinuousPSpace)
}


def dump(expr: sp.Basic) -> str:
    """Exact text of ``expr`` for a JSON file."""
    return sp.srepr(expr)


def parse(text: str) -> sp.Basic:
    """The expression :func:`dump` wrote."""
    return sp.parse_expr(text, local_dict=dict(_NAMES))
