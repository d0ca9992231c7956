"""Exercise 1: reverse-mode automatic differentiation of z(a, b) = log(b) / (1 + e^{a²} + b²).

The SymPy expression of ``z`` is the single source: :func:`build_graph` walks its tree
into a list of intermediate variables v_1, v_2, ... (each with its defining operation and
local partial derivatives), :func:`derivations.autodiff_plot.tikz` draws that graph, and :func:`reverse_mode` is a
small reverse-mode engine that propagates adjoints over it.  Changing :func:`z_expression`
changes the table, the picture and the gradients together.

Verified by :func:`check` against ``sympy.diff`` (symbolically) and ``torch.autograd`` in
float64 (numerically).  Run as a stage of ``python build.py``; writes ``results.json``.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sympy as sp

from lab.checks import Check
from lab.io import load_json, save_json

if TYPE_CHECKING:
    import torch

A, B = sp.symbols("a b")  # plain names: the checks' LaTeX labels print them as they are


def z_expression() -> sp.Expr:
    """The function of Exercise 1, z(a, b) = log(b) / (1 + e^{a²} + b²)."""
    return sp.log(B) / (1 + sp.exp(A**2) + B**2)


@dataclass(frozen=True)
class Config:
    a: int = 2  # the evaluation point of item (d)
    b: int = 3


PROFILES = {"full": Config(), "quick": Config()}


@dataclass(frozen=True)
class Node:
    """One vertex of the computational graph."""

    symbol: sp.Symbol  # v_i, or the input symbol itself
    op: sp.Expr  # definition in terms of the parents' symbols (an input: the symbol)
    parents: tuple[sp.Symbol, ...]

    def partial(self, parent: sp.Symbol) -> sp.Expr:
        """The local partial derivative ∂(self)/∂(parent), in the graph's symbols."""
        return sp.diff(self.op, parent)


def build_graph(expr: sp.Expr, inputs: tuple[sp.Symbol, ...]) -> list[Node]:
    """Turn ``expr`` into intermediate variables in topological order (inputs first).

    Every non-constant subexpression becomes one node ``v_i``; a repeated subexpression is
    one node.  Numbers stay inside the operation (``v_4 = v_2 + v_3 + 1``).  The post-order
    walk of the expression tree is a topological order: a node comes after all its parents.
    The nodes are then numbered as the graph is drawn, row by row and left to right
    (:func:`renumber`), so the numbers follow the picture's order of evaluation.
    """
    names: dict[sp.Expr, sp.Symbol] = {x: x for x in inputs}
    graph = [Node(x, x, ()) for x in inputs]

    def visit(e: sp.Expr) -> sp.Expr:
        if e in names or e.is_Number:
            return names.get(e, e)
        args = [visit(arg) for arg in e.args]
        symbol = sp.Symbol(f"v_{len(graph) - len(inputs) + 1}")
        parents = tuple(dict.fromkeys(arg for arg in args if arg in names.values()))
        graph.append(Node(symbol, e.func(*args), parents))
        names[e] = symbol
        return symbol

    visit(expr)
    return renumber(graph)


def renumber(graph: list[Node]) -> list[Node]:
    """The same graph with the intermediate variables numbered in drawing order: by row of
    :func:`layout`, then left to right.  Rows respect dependencies, so this is a topological order too."""
    position = layout(graph)
    inputs = [n for n in graph if not n.parents]
    ordered = sorted((n for n in graph if n.parents), key=lambda n: position[n.symbol][::-1])
    names = {n.symbol: n.symbol for n in inputs} | {
        n.symbol: sp.Symbol(f"v_{i}") for i, n in enumerate(ordered, start=1)
    }
    return inputs + [
        Node(names[n.symbol], n.op.xreplace(names), tuple(names[p] for p in n.parents)) for n in ordered
    ]


def children(graph: list[Node]) -> dict[sp.Symbol, list[Node]]:
    """For each variable, the nodes that use it, in topological order."""
    out: dict[sp.Symbol, list[Node]] = {n.symbol: [] for n in graph}
    for node in graph:
        for parent in node.parents:
            out[parent].append(node)
    return out


def forward(graph: list[Node], inputs: dict[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    """Values of every variable given the inputs' values (numbers or expressions)."""
    values = dict(inputs)
    for node in graph[len(inputs) :]:
        values[node.symbol] = node.op.subs(values)
    return values


def reverse_mode(graph: list[Node], values: dict[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    """The reverse sweep: adjoints v̄ = ∂z/∂v of every variable, the output being the last node.

    v̄_out = 1 and, in reverse topological order, v̄ = Σ_{c child of v} c̄ · ∂c/∂v with the
    local partials evaluated at ``values`` (from :func:`forward`).  Returns adjoint values.
    """
    adjoint = {graph[-1].symbol: sp.Integer(1)}
    uses = children(graph)
    for node in reversed(graph[:-1]):
        adjoint[node.symbol] = sp.Add(
            *(adjoint[c.symbol] * c.partial(node.symbol).subs(values) for c in uses[node.symbol])
        )
    return adjoint


def bar(symbol: sp.Symbol) -> sp.Symbol:
    """The adjoint symbol of a variable: v_3 -> \\bar{v}_3, a -> \\bar{a}."""
    stem, _, index = symbol.name.partition("_")
    return sp.Symbol(f"{stem}bar" + (f"_{index}" if index else ""))


def derive(config: Config = Config()) -> dict[str, Any]:
    """The graph, forward values, adjoints and gradients of z at (a, b) = (config.a, config.b).

    Returns
    -------
    dict
        ``graph`` (list of :class:`Node`), ``values`` (exact forward values),
        ``adjoints`` (exact adjoint values), ``gradient`` (symbol -> exact ∂z/∂symbol,
        simplified) and ``gradient_symbolic`` (∂z/∂a, ∂z/∂b as functions of a, b from the engine).
    """
    inputs = (A, B)
    graph = build_graph(z_expression(), inputs)
    point = {A: sp.Integer(config.a), B: sp.Integer(config.b)}
    values = forward(graph, point)
    adjoints = reverse_mode(graph, values)
    symbolic = reverse_mode(graph, forward(graph, {x: x for x in inputs}))
    return {
        "graph": graph,
        "values": values,
        "adjoints": adjoints,
        "gradient": {x: sp.factor(sp.simplify(adjoints[x])) for x in inputs},
        "gradient_symbolic": {x: symbolic[x] for x in inputs},
    }


# --- drawing order ----------------------------------------------------------------------


def layout(graph: list[Node], gap: float = 3.0) -> dict[sp.Symbol, tuple[float, int]]:
    """Layered layout, top to bottom, x = mean of the parents' x.

    Inputs are on the first layer and the output on the last (the longest path from an input);
    every other node sits just above its first use, so that no edge runs past a row of nodes
    (``log b`` of Exercise 1 is computed early but drawn next to the product that uses it).
    Nodes of one layer are pushed apart to at least ``gap`` (in cm), left to right.
    Returns (x, layer) per symbol.
    """
    depth: dict[sp.Symbol, int] = {}
    for node in graph:
        depth[node.symbol] = 1 + max((depth[p] for p in node.parents), default=-1)
    uses = children(graph)
    layer: dict[sp.Symbol, int] = {}
    for node in reversed(graph):
        later = [layer[c.symbol] - 1 for c in uses[node.symbol]]
        layer[node.symbol] = 0 if not node.parents else min(later, default=depth[node.symbol])
    n_inputs = sum(1 for node in graph if not node.parents)
    x: dict[sp.Symbol, float] = {}
    for k in range(max(layer.values()) + 1):
        nodes = [n for n in graph if layer[n.symbol] == k]
        wanted = {
            n.symbol: sum(x[p] for p in n.parents) / len(n.parents)
            if n.parents
            else gap * (i - (n_inputs - 1) / 2)
            for i, n in enumerate(nodes)
        }
        previous = -float("inf")
        for symbol in sorted(wanted, key=wanted.__getitem__):
            x[symbol] = previous = max(wanted[symbol], previous + gap)
    return {s: (x[s], layer[s]) for s in layer}


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    config: dict[str, int]
    torch_error: float  # largest |engine - torch.autograd| over both partials
    torch_tolerance: float


def run(config: Config) -> Results:
    """Check the engine's gradients against torch.autograd at the point; the present module prints the rest.

    The graph, its values and the adjoints are exact SymPy results of :func:`derive`, which
    :mod:`derivations.autodiff_plot` calls itself (a fraction of a second) to print them, so that
    no printing reaches this module's cache key.
    """
    d = derive(config)
    torch_error = max(
        c.error for c in gradient_checks(d["gradient"], d["gradient_symbolic"], config) if "torch" in c.method
    )
    return Results(asdict(config), torch_error, TORCH_TOLERANCE)


def save(results: Results, directory: Path) -> None:
    save_json(asdict(results), directory)


def load(directory: Path) -> Results:
    return Results(**load_json(directory))


# --- verification ----------------------------------------------------------------------------


def z_torch(a: "torch.Tensor", b: "torch.Tensor") -> "torch.Tensor":
    """Exercise 1's function written independently in torch (the numeric reference)."""
    import torch

    return torch.log(b) / (1 + torch.exp(a**2) + b**2)


TORCH_TOLERANCE = 1e-12  # float64 rounding of a handful of operations is ~1e-17


def gradient_checks(
    gradient: dict[sp.Symbol, sp.Expr], gradient_symbolic: dict[sp.Symbol, sp.Expr], config: Config
) -> list[Check]:
    """Compare engine gradients (exact at the point, and as functions of a, b) with the references."""
    import torch  # here, not at the top: listing the stages must not load torch

    z = z_expression()
    a = torch.tensor(float(config.a), dtype=torch.float64, requires_grad=True)
    b = torch.tensor(float(config.b), dtype=torch.float64, requires_grad=True)
    reference = dict(zip((A, B), torch.autograd.grad(z_torch(a, b), (a, b)), strict=True))
    point = {A: config.a, B: config.b}
    checks = []
    for x in (A, B):
        name = f"dz/d{x} at ({config.a}, {config.b})"
        name_tex = rf"$\partial z/\partial {x}$ at $({config.a}, {config.b})$"
        symbolic_error = sp.simplify(gradient_symbolic[x] - sp.diff(z, x))
        exact_error = sp.simplify(gradient[x] - sp.diff(z, x).subs(point))
        checks += [
            Check(
                f"dz/d{x}(a, b)",
                "reverse-mode engine vs sympy.diff, simplified difference",
                0.0 if symbolic_error == 0 else 1.0,
                0.0,
                name_tex=rf"$\partial z/\partial {x}$ as a function of $(a, b)$",
                method_tex=r"reverse-mode engine vs \texttt{sympy.diff}, simplified difference",
            ),
            Check(
                name,
                "exact engine value vs sympy.diff at the point",
                0.0 if exact_error == 0 else 1.0,
                0.0,
                name_tex=name_tex,
                method_tex=r"exact engine value vs \texttt{sympy.diff} at the point",
            ),
            Check(
                name,
                "engine value vs torch.autograd (float64)",
                abs(float(gradient[x]) - reference[x].item()),
                TORCH_TOLERANCE,
                name_tex=name_tex,
                method_tex=r"engine value vs \texttt{torch.autograd} (float64)",
            ),
        ]
    return checks


def check() -> list[Check]:
    """Verify the graph reproduces z and the engine's gradients against sympy.diff and torch.autograd."""
    config = PROFILES["full"]
    d = derive(config)
    graph = d["graph"]
    rebuilt = forward(graph, {A: A, B: B})[graph[-1].symbol]
    return [
        Check(
            "graph of z",
            "nodes substituted back equal z (symbolic)",
            0.0 if rebuilt == z_expression() else 1.0,
            0.0,
            name_tex="graph of $z$",
            method_tex="nodes substituted back equal $z$ (symbolic)",
        ),
        *gradient_checks(d["gradient"], d["gradient_symbolic"], config),
    ]
