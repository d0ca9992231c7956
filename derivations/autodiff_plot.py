"""Presentation of Exercise 1 (reverse-mode AD): template values only, no figures.

The computational graph is TikZ code generated here from :func:`derivations.autodiff.derive`'s
graph, so it is typeset by LaTeX with the report's fonts rather than saved as a figure file.
The derivation is exact and takes a fraction of a second, so this module runs it again to print
it; the stage's results hold the numeric check only.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sympy as sp

from derivations.autodiff import Config, Node, Results, bar, children, derive, layout, z_expression
from derivations.notation import latex
from lab.fmt import integer, num, tex

if TYPE_CHECKING:  # matplotlib is imported only where a figure is drawn
    from matplotlib.figure import Figure

FIGURES: dict[str, Callable[[Results], "Figure"]] = {}

SIG = 6  # significant digits of the tables' decimals


def decimal(x: float) -> str:
    """An integral value as an integer, anything else with ``SIG`` significant digits."""
    return integer(int(x)) if float(x).is_integer() else num(x, SIG)


def context(results: Results) -> dict[str, Any]:
    """Values for ``templates/sections/autodiff.tex.j2``."""
    derived = derived_rows(Config(**results.config))
    return {
        "a": integer(results.config["a"]),
        "b": integer(results.config["b"]),
        "function": tex(derived["function"]),
        "graph": tex(derived["tikz"]),
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
            for n in derived["nodes"]
        ],
        "adjoints": [
            {
                "symbol": tex(r["symbol"]),
                "terms": tex(r["terms"]),
                "substituted": tex(r["substituted"]),
                "value": decimal(r["value"]),
            }
            for r in derived["adjoints"]
        ],
        "gradients": [
            {
                "symbol": tex(g["symbol"]),
                "exact": tex(g["exact"]),
                "value": num(g["value"], 10),
                "brief": num(g["value"], 4),  # the abstract's digits; the exact form stays in the section
            }
            for g in derived["gradients"]
        ],
        "torch_error": num(results.torch_error, 2),
        "torch_tolerance": num(results.torch_tolerance, 1),
        "n_nodes": integer(sum(1 for n in derived["nodes"] if n["partials"])),
    }


# --- TikZ --------------------------------------------------------------------------------


def tikz(graph: list[Node], dy: float = 1.25, max_label: int = 24) -> str:
    """A ``tikzpicture`` of the graph: nodes ``v_i = op``, edges labelled with local partials.

    Inputs at the top, the output at the bottom; a vertical edge has its label beside it, so
    that a tall label (a fraction) does not hide the edge.  A partial whose LaTeX is longer than
    ``max_label`` characters is shown as the symbol ∂v_j/∂v_i instead (the forward table
    lists it in full).
    """
    position = layout(graph)
    lines = [
        (
            r"\begin{tikzpicture}[>={Stealth[length=2mm]}, font=\small,"
            r" var/.style={draw, rounded corners, inner sep=3pt, fill=black!4},"
            r" lab/.style={font=\footnotesize, fill=white, inner sep=1pt}]"
        )
    ]
    for node in graph:
        x, k = position[node.symbol]
        text = latex(node.symbol) if not node.parents else f"{latex(node.symbol)} = {latex(node.op)}"
        lines.append(rf"\node[var] ({node.symbol.name}) at ({x:.2f}, {-k * dy:.2f}) {{${text}$}};")
    for node in graph:
        for parent in node.parents:
            label = latex(node.partial(parent))
            if len(label) > max_label:
                label = rf"\partial {latex(node.symbol)} / \partial {latex(parent)}"
            rows = position[node.symbol][1] - position[parent][1]  # a long edge: label in its last row gap
            vertical = position[node.symbol][0] == position[parent][0]
            side = ", right" if vertical else ""  # a vertical edge's label beside it, not on it
            lines.append(
                rf"\draw[->] ({parent.name}) -- node[lab{side}, pos={1 - 0.55 / rows:.2f}] {{${label}$}}"
                rf" ({node.symbol.name});"
            )
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def derived_rows(config: Config) -> dict[str, Any]:
    """The exact derivation of :func:`derivations.autodiff.derive`, printed: forward and backward rows,
    gradients, the function and the TikZ graph (LaTeX strings and floats)."""
    d = derive(config)
    graph, values, adjoints = d["graph"], d["values"], d["adjoints"]
    nodes = [
        {
            "symbol": latex(n.symbol),
            "definition": latex(n.op),
            "value": float(values[n.symbol]),
            "partials": [
                {
                    "name": rf"\partial {latex(n.symbol)} / \partial {latex(p)}",
                    "symbolic": latex(n.partial(p)),
                    "value": float(n.partial(p).subs(values)),
                }
                for p in n.parents
            ],
        }
        for n in graph
    ]
    uses = children(graph)
    rows = []
    for node in reversed(graph):
        # the output's adjoint is the seed 1: no terms
        terms = [(bar(c.symbol), c.partial(node.symbol)) for c in uses[node.symbol]]
        rows.append(
            {
                "symbol": latex(bar(node.symbol)),
                "terms": " + ".join(
                    rf"{latex(cb)} \frac{{\partial {latex(c.symbol)}}}{{\partial {latex(node.symbol)}}}"
                    for c, (cb, _) in zip(uses[node.symbol], terms, strict=True)
                ),
                "substituted": latex(
                    sp.Add(*(sp.Mul(cb, p, evaluate=False) for cb, p in terms)), order="none"
                ),
                "value": float(adjoints[node.symbol]),
            }
        )
    gradients = [{"symbol": latex(x), "exact": latex(g), "value": float(g)} for x, g in d["gradient"].items()]
    return {
        "function": latex(z_expression(), order="rev-lex"),  # 1 + e^{a²} + b², the assignment's order
        "tikz": tikz(graph),
        "nodes": nodes,
        "adjoints": rows,
        "gradients": gradients,
    }
