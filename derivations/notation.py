"""The one place where SymPy objects become LaTeX for the report.

Every derivation prints through :func:`latex`, so a change of notation (the transpose
mark, the Hadamard product symbol, ``\\log`` versus ``\\ln``) is made here once.  The
printer is a small :class:`sympy.printing.latex.LatexPrinter` subclass in the way
``sympy/printing/printer.py`` documents: settings in ``_default_settings`` and one
``_print_<Class>`` method per construct that differs from SymPy's default.
"""

import re
from typing import Any, NamedTuple

from sympy import Basic, Derivative, MatMul, Pow, Symbol
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter


class ReportPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the report's conventions.

    * natural logarithm written ``\\log`` (the assignment's notation), products by juxtaposition;
    * matrix transpose as ``^{\\top}`` and the Hadamard product as ``\\odot``;
    * a rational factor of a matrix product without parentheses;
    * a derivative of an undefined function at a point with primes, highest degree first:
      ``\\psi''\\left(w x + b\\right)``;
    * a power of a symbol named like a power, ``sigma^2``, as one power: ``\\sigma^{4}``;
    * in a sum of matrices the positive terms first: ``\\hat{y} - y``;
    * an expectation as ``\\mathbb{E}\\left[\\cdot\\right]``.
    """

    _default_settings: dict[str, Any] = {  # noqa: RUF012 (overrides the parent's class attribute)
        **LatexPrinter._default_settings,
        "ln_notation": False,
        "mul_symbol": None,
        "mat_symbol_style": "plain",
    }

    def _print_Transpose(self, expr: Basic) -> str:
        # SymPy decides the parentheses; only the mark differs.
        return super()._print_Transpose(expr).removesuffix("^{T}") + r"^{\top}"

    def _print_MatMul(self, expr: Basic) -> str:
        # a positive rational factor is written in front without parentheses: \frac{1}{2} e^{\top} e
        coeff, matrices = expr.as_coeff_matrices()
        if coeff.is_Rational and coeff > 0 and coeff != 1:
            return f"{self._print(coeff)} {super()._print_MatMul(MatMul(*matrices))}"
        return super()._print_MatMul(expr)

    def _print_Subs(self, expr: Basic) -> str:
        # f'(w x + b) rather than d/dξ f(ξ)|_{ξ = w x + b}, for an undefined function f of one variable
        body, (old, *more), (new, *_) = expr.args
        if (
            isinstance(body, Derivative)
            and not more
            and isinstance(body.expr, AppliedUndef)
            and body.expr.args == (old,)
        ):
            n = body.derivative_count
            marks = "'" * n if n <= 3 else f"^{{({n})}}"
            point = self._print_Add(new, order="grlex") if new.is_Add else self._print(new)  # w x + b
            return rf"{self._print(Symbol(body.expr.func.__name__))}{marks}\left({point}\right)"
        return super()._print_Subs(expr)

    def _print_Pow(self, expr: Basic) -> str:
        # (sigma^2)^3 -> sigma^{6}: a symbol whose name is a power, raised to a positive integer
        base, exp = expr.args
        match = re.fullmatch(r"(.+)\^\{?(\d+)\}?", base.name) if isinstance(base, Symbol) else None
        if match and exp.is_Integer and exp > 0:
            stem = Symbol(match[1], **base.assumptions0)
            return self._print(Pow(stem, int(match[2]) * exp, evaluate=False))
        return super()._print_Pow(expr)

    def _print_MatAdd(self, expr: Basic) -> str:
        # the terms in SymPy's order, but those with a minus sign last: \hat{y} - y, not - y + \hat{y}
        terms = sorted(expr.args, key=lambda term: term.could_extract_minus_sign())
        out = self._print(terms[0])
        for term in terms[1:]:
            sign, term = (" - ", -term) if term.could_extract_minus_sign() else (" + ", term)
            out += sign + self._print(term)
        return out

    def _print_Expectation(self, expr: Basic) -> str:
        return rf"\mathbb{{E}}\left[{self._print(expr.args[0])}\right]"

    def _print_HadamardProduct(self, expr: Basic) -> str:
        return super()._print_HadamardProduct(expr).replace(r" \circ ", r" \odot ")


def latex(expr: Basic, **settings: Any) -> str:
    r"""Print ``expr`` as LaTeX in the report's notation.

    Parameters
    ----------
    expr
        Any SymPy object.
    **settings
        Overrides of :class:`ReportPrinter` settings, e.g. ``order="none"``.

    Returns
    -------
    str
        LaTeX math without surrounding ``$``.

    Examples
    --------
    >>> from sympy import MatrixSymbol, Transpose, symbols
    >>> latex(Transpose(MatrixSymbol("W", 2, 3)))
    'W^{\\top}'
    >>> a, b = symbols("a b")
    >>> latex(2 * a * b)
    '2 a b'
    """
    return ReportPrinter(settings).doprint(expr)


class Notation(NamedTuple):
    """One row of the report's symbol table: symbol and meaning in LaTeX, the stems of the sections using it."""

    symbol: str
    meaning: str
    sections: tuple[str, ...]


EX1, EX2, EX3 = ("autodiff",), ("mlp_backprop",), ("initialization",)
ASSIGNMENTS = ("double_descent", "sgd_implicit_reg")

# The one symbol table of the report, printed near its start; every section uses these names.
SYMBOLS: tuple[Notation, ...] = (
    Notation(
        r"a, b, z", r"inputs and output of $z(a,b)$; $v_i$ intermediate variables, $\bar v$ adjoints", EX1
    ),
    Notation(r"I, O", r"input and output dimensions", EX2),
    Notation(r"K", r"number of hidden layers", EX2),
    Notation(r"L", r"units per hidden layer", EX2),
    Notation(r"\psi", r"activation function of the hidden units", EX2 + EX3),
    Notation(r"\sigma^2", r"variance of the initial weights", EX3),
    Notation(r"M", r"hidden width (in Exercise 3 also the fan-in of a neuron)", EX3 + ASSIGNMENTS),
    Notation(r"N", r"number of training samples", ASSIGNMENTS),
    Notation(
        r"\bm\varepsilon \sim \mathcal{N}(\mathbf 0, \tau^2 \mathbf I)",
        r"label noise of the data process; $\tau^2$ is the noise variance",
        ASSIGNMENTS,
    ),
    Notation(r"J", r"training loss, the mean squared error", ASSIGNMENTS),
    Notation(r"\mu", r"learning rate of SGD", ASSIGNMENTS[1:]),
    Notation(r"B", r"mini-batch size", ASSIGNMENTS[1:]),
    Notation(r"\lambda", r"weight-decay rate", ASSIGNMENTS[1:]),
    Notation(r"G = \lVert \nabla J \rVert^2", r"squared norm of the full-data gradient", ASSIGNMENTS[1:]),
    Notation(
        r"V, V_{\mathrm{fix}}",
        r"mini-batch gradient variation, expected over random partitions or of one fixed partition",
        ASSIGNMENTS[1:],
    ),
)
