"""The one place where numbers become LaTeX text.

Templates never format numbers themselves: a stage's ``context()`` passes every value
through :func:`num` (or :func:`integer`), which returns :class:`Tex` so the template
environment inserts it unescaped.  Precision is chosen here, once.
"""

import math
import re


class Tex(str):
    """A string that is already valid LaTeX; templates insert it verbatim."""

    __slots__ = ()


def num(x: float, sig: int = 3) -> Tex:
    r"""Format ``x`` with ``sig`` significant digits as an siunitx ``\num``.

    >>> num(0.000123456)
    '\\num{1.23e-04}'
    >>> num(2.5, sig=2)
    '\\num{2.5}'
    """
    x = float(x)
    if not math.isfinite(x):
        return Tex(r"\text{" + ("NaN" if math.isnan(x) else r"$\infty$") + "}")
    if x == 0:
        return Tex(r"\num{0}")
    exponent = math.floor(math.log10(abs(x)))
    text = f"{x:.{sig - 1}e}" if exponent < -3 or exponent >= 5 else f"{x:.{max(sig - 1 - exponent, 0)}f}"
    return Tex(rf"\num{{{text}}}")


def integer(n: int) -> Tex:
    r"""Format an integer with digit grouping, e.g. ``\num{12345}``."""
    return Tex(rf"\num{{{int(n)}}}")


def tex(s: str) -> Tex:
    """Mark a LaTeX string (e.g. from ``sympy.latex``) as trusted."""
    return Tex(s)


_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))


def latex_escape(text: str) -> str:
    r"""Escape the ten characters TeX treats specially.

    >>> latex_escape("50% of x_1 & {y}")
    '50\\% of x\\_1 \\& \\{y\\}'
    """
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], text)
