"""Presentation of Exercise 1 (reverse-mode AD): template values only, no figures.

The computational graph is TikZ code generated in :mod:`derivations.autodiff`, so it is
typeset by LaTeX with the report's fonts rather than saved as a figure file.
"""

from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure

from derivations.autodiff import TORCH_TOLERANCE, Results
from report.fmt import integer, num, tex

FIGURES: dict[str, Callable[[Results], Figure]] = {}

SIG = 6  # significant digits of the tables' decimals


def context(results: Results) -> dict[str, Any]:
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
                "value": num(n["value"], SIG),
                "partials": [
                    {"name": tex(p["name"]), "symbolic": tex(p["symbolic"]), "value": num(p["value"], SIG)}
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
                "value": num(r["value"], SIG),
            }
            for r in results.adjoints
        ],
        "gradients": [
            {"symbol": tex(g["symbol"]), "exact": tex(g["exact"]), "value": num(g["value"], 10)}
            for g in results.gradients
        ],
        "torch_error": num(results.torch_error, 2),
        "torch_tolerance": num(TORCH_TOLERANCE, 1),
        "n_nodes": integer(sum(1 for n in results.nodes if n["partials"])),
    }
