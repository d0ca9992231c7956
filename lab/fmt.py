"""The one place where numbers become LaTeX text.

Templates never format numbers themselves: a stage's ``context()`` passes every value
through :func:`num` (or :func:`integer`), which returns :class:`Tex` so the template
environment inserts it unescaped.  Precision is chosen here, once.
"""

import math
import re
from collections.abc import Callable, Iterable


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


def decade(x: float) -> int:
    """The exponent e of a positive ``x`` = m × 10^e with 1 ≤ m < 10 (robust to 0.1 + 0.2 rounding)."""
    return math.floor(math.log10(x) + 1e-9)


def power_of_ten(x: float, digits: int = 3) -> Tex:
    r"""A positive ``x`` for mathematics mode as m × 10^e, m rounded to ``digits`` decimals; 10^e when m is 1.

    >>> power_of_ten(1e-5)
    '10^{-5}'
    >>> power_of_ten(2.5e-5)
    '2.5\\times10^{-5}'
    """
    exponent = decade(x)
    mantissa = round(x / 10.0**exponent, digits)
    return Tex(f"10^{{{exponent}}}" if mantissa == 1 else rf"{mantissa:g}\times10^{{{exponent}}}")


def integer(n: int) -> Tex:
    r"""Format an integer with digit grouping, e.g. ``\num{12345}``."""
    return Tex(rf"\num{{{int(n)}}}")


def pm(mean: float, se: float) -> Tex:
    r"""A mean and its standard error (two significant digits), the mean rounded to the same decimal place.

    >>> pm(2.0, 0.5)
    '\\ensuremath{\\num{2.00} \\pm \\num{0.50}}'
    >>> pm(0.54223, 0.00851)
    '\\ensuremath{\\num{0.5422} \\pm \\num{0.0085}}'
    """
    if not (math.isfinite(mean) and math.isfinite(se) and se > 0 and mean != 0):
        return Tex(rf"\ensuremath{{{num(mean)} \pm {num(se, sig=2)}}}")
    sig = max(decade(abs(mean)) - decade(se) + 2, 1)
    return Tex(rf"\ensuremath{{{num(mean, sig=sig)} \pm {num(se, sig=2)}}}")


def setting(x: float) -> Tex:
    """A hyperparameter as set (e.g. 0.02, 1e-04), not rounded to significant digits."""
    return Tex(rf"\num{{{x:g}}}")


def power(x: float) -> Tex:
    """A positive number for math mode as a power of ten where it is one (1e-05 -> 10^{-5}),
    else m × 10^e for small or large numbers (:func:`lab.fmt.power_of_ten`), else as set."""
    text = power_of_ten(x)
    return setting(x) if -2 <= decade(x) <= 2 and not text.startswith("10^") else text


def num_list(values: Iterable[float], fmt: Callable[[float], Tex] = setting) -> Tex:
    """Comma-separated values for inline math, breakable after each comma."""
    return Tex(r",\allowbreak ".join(fmt(v) for v in values))


def in_set(symbol: str, values: Iterable[float], fmt: Callable[[float], Tex] = setting) -> Tex:
    """Inline math without dollars: ``μ = 2.56`` for one value, ``μ ∈ {0.32, 0.64}`` for several."""
    values = list(values)
    if len(values) == 1:
        return Tex(rf"{symbol}={fmt(values[0])}")
    return Tex(rf"{symbol}\in\{{{num_list(values, fmt)}\}}")


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
