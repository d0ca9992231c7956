"""Presentation of Exercise 1 (reverse-mode AD): template values only, no figures.

The computational graph is TikZ code generated in :mod:`derivations.autodiff`, so it is
typeset by LaTeX with the report's fonts rather than saved as a figure file.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from lab.fmt import integer, num, tex

if TYPE_CHECKING:  # the compute module imports torch, which a present module must not
    from derivations.autodiff import Results

FIGURES: dict[str, Callable[["Results"], Figure]] = {}

SIG = 6  # significant digits of the tables' decimals


def decimal(x: float) -> str:
    """An integral value as an integer, anything else with ``SIG`` significant digits."""
    return integer(int(x)) if float(x).is_integer() else num(x, SIG)


def context(results: "Results") -> dict[str, Any]:
    """Values for ``templates/sections/autodiff.tex.j2``."""
    return {
        "a": integer(results.config["a"]),
        "b": integer(results.config["b"]),
        "function": tex(results.function),
        "graph": tex(results.tikz),
        "nodes": [
            {
                "symbol": tex(n["symbol"]),
                "definition": tex(n["definition"]),
                "value": decimal(n["value"]),
                "partials": [
                    {"name": tex(p["name"]), "symbolic": tex(p["symbolic"]), "value": decimal(p["value"])}
                    for p in n["partials"]
                ],
            }
            for n in results.nodes
        ],
        "adjoints": [
            {
                "symbol": tex(r["symbol"]),
                "terms": tex(r["terms"]),
                "substituted": tex(r["substituted"]),
                "value": decimal(r["value"]),
            }
            for r in results.adjoints
        ],
        "gradients": [
            {"symbol": tex(g["symbol"]), "exact": tex(g["exact"]), "value": num(g["value"], 10)}
            for g in results.gradients
        ],
        "torch_error": num(results.torch_error, 2),
        "torch_tolerance": num(results.torch_tolerance, 1),
        "n_nodes": integer(sum(1 for n in results.nodes if n["partials"])),
    }
