"""Presentation of Exercise 2 (MLP backpropagation and operation counts): template values only, no figures.

The equations with their sizes and the operation-count table are exact SymPy results of
:mod:`derivations.mlp_backprop_symbolic`; this module derives them again (about a second) and
prints them through :mod:`derivations.notation`, so that the stage's cached results hold only the
numeric comparisons and no printing reaches their cache key.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import sympy as sp

from derivations.mlp_backprop import Results
from derivations.mlp_backprop_symbolic import I, L, O, big_o, count_operations, layer_blocks, totals
from derivations.notation import latex
from lab.fmt import integer, num, tex

if TYPE_CHECKING:  # matplotlib is imported only where a figure is drawn
    from matplotlib.figure import Figure

FIGURES: dict[str, Callable[[Results], "Figure"]] = {}


def context(results: Results) -> dict[str, Any]:
    """Values for ``templates/sections/mlp_backprop.tex.j2``."""
    derived = derived_rows()

    def rows(items: list[dict[str, str]]) -> list[dict[str, Any]]:
        return [{key: tex(value) for key, value in row.items()} for row in items]

    flops = [
        {key: integer(value) for key, value in row.items()}
        | {"ratio_forward": num(row["counter_forward"] / row["derived_forward"], 2)}
        | {"ratio_backward": num(row["counter_backward"] / row["derived_backward"], 2)}
        for row in results.flops
    ]
    ratios = {
        row["counter_" + s] / row["derived_" + s] for row in results.flops for s in ("forward", "backward")
    }
    pass_ratios = [row["derived_backward"] / row["derived_forward"] for row in results.flops]
    v = results.verification
    return {
        "forward": rows(derived["forward"]),
        "backward": rows(derived["backward"]),
        "parameters": rows(derived["parameters"]),
        "operations": {
            stage: rows(
                [
                    {k: v for k, v in op.items() if k != "stage"}
                    for op in derived["operations"]
                    if op["stage"] == stage
                ]
            )
            for stage in ("forward", "backward")
        },
        "totals": {key: tex(value) for key, value in derived["totals"].items()},
        "flops": flops,
        "flops_all_twice": len(ratios) == 1 and ratios == {2.0},
        "n_flop_sizes": integer(len(results.flops)),
        "pass_ratio_min": num(min(pass_ratios), 3),
        "pass_ratio_max": num(max(pass_ratios), 3),
        "autograd": [
            {
                "activation": c["activation"],
                "sizes": tex(", ".join(map(str, c["sizes"]))),
                "error": num(c["error"], 2),
            }
            for c in v["autograd"]
        ],
        "autograd_tolerance": num(v["tolerance"], 1),
        "half_sum_case": tex(", ".join(map(str, v["half_sum_case"]))),
        "half_sum_error": num(v["half_sum_error"], 2),
        "symbolic_mismatches": integer(v["symbolic_mismatches"]),
    }


# --- equations (a) and (b), with sizes ----------------------------------------------------------------


class Elementwise(sp.MatrixExpr):
    """A scalar function applied entrywise to a vector, printed f(v); e.g. ψ'(a_k)."""

    def __new__(cls, name: str, arg: sp.MatrixExpr) -> Self:
        return super().__new__(cls, sp.Symbol(name), arg)

    @property
    def shape(self) -> tuple[sp.Expr, sp.Expr]:
        return self.args[1].shape

    def _latex(self, printer: Any) -> str:
        return rf"{printer._print(self.args[0])}\left({printer._print(self.args[1])}\right)"


def vec(name: str, n: Any) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(name, n, 1)


def equations() -> dict[str, list[tuple[str, sp.Basic, sp.Basic, str]]]:
    """Forward and backward equations as (lhs LaTeX, rhs, lhs matrix for its size, range of k)."""
    x, y, yhat, e = vec("x", I), vec("y", O), vec("yhat", O), vec("e", O)
    forward_rows: list[tuple[str, sp.Basic, sp.Basic, str]] = [("h_{0}", x, x, "")]
    backward_rows: list[tuple[str, sp.Basic, sp.Basic, str]] = []
    blocks = layer_blocks()
    for n, block in enumerate(blocks):
        index = "k" if block.repeat != 1 else latex(block.first)
        k = sp.Symbol(index) if index == "k" else block.first
        where = (
            rf"k = {latex(block.first)}, \dots, {latex(block.first + block.repeat - 1)}"
            if index == "k"
            else ""
        )
        W = sp.MatrixSymbol(f"W_{k}", block.fan_out, block.fan_in)
        b = vec(f"b_{k}", block.fan_out)
        h_prev = vec(f"h_{k - 1}", block.fan_in)
        a = vec(f"a_{k}", block.fan_out) if block.activation else yhat
        forward_rows.append((latex(a), W * h_prev + b, a, where))
        if block.activation:
            forward_rows.append((latex(vec(f"h_{k}", block.fan_out)), Elementwise("psi", a), a, where))
        delta = vec(f"delta_{k}", block.fan_out)
        if block.activation:
            following = blocks[n + 1]
            W_next = sp.MatrixSymbol(f"W_{k + 1}", following.fan_out, following.fan_in)
            rhs = sp.HadamardProduct(
                Elementwise("psiprime", a), W_next.T * vec(f"delta_{k + 1}", following.fan_out)
            )
            down = (  # descending: the backward pass runs from the output layer down
                rf"k = {latex(block.first + block.repeat - 1)}, \dots, {latex(block.first)}" if where else ""
            )
        else:
            rhs, down = sp.Rational(2) / O * e, ""
        backward_rows = [
            (latex(delta), rhs, delta, down),
            (rf"\nabla_{{{latex(W)}}} J", delta * h_prev.T, W, down),
            (rf"\nabla_{{{latex(b)}}} J", delta, b, down),
            *backward_rows,
        ]
    forward_rows += [
        ("e", yhat - y, e, ""),
        ("J", 1 / O * e.T * e, sp.MatrixSymbol("J", 1, 1), ""),
    ]
    return {"forward": forward_rows, "backward": backward_rows}


def size_tex(matrix: sp.Basic) -> str:
    rows, cols = matrix.shape
    return latex(rows) if cols == 1 else rf"{latex(rows)} \times {latex(cols)}"


def derived_rows() -> dict[str, Any]:
    """Equations with sizes, the operation-count table, totals and parameter sizes, as LaTeX strings."""
    eqs = equations()
    rows = {
        name: [
            {"lhs": lhs, "rhs": latex(rhs, order="none"), "size": size_tex(m), "where": where}
            for lhs, rhs, m, where in eqs[name]
        ]
        for name in eqs
    }
    ops = count_operations(layer_blocks(), latex)
    table = [
        {
            "stage": op.stage,
            "layers": op.layers,
            "what": op.what,
            "kind": op.kind,
            "each": latex(op.each),
            "times": latex(op.times),
            "total": latex(op.total),
        }
        for op in ops
    ]
    t = totals(ops)
    summary = {f"{stage}_{kind}": latex(value) for (stage, kind), value in t.items()}
    for stage in ("forward", "backward"):
        all_ops = t[stage, "product"] + t[stage, "elementwise"]
        summary[f"{stage}_all"] = latex(all_ops)
        summary[f"{stage}_O"] = latex(big_o(all_ops))
    hidden = [block for block in layer_blocks() if block.activation]
    last = hidden[-1].first + hidden[-1].repeat - 1
    summary["recursion"] = (
        rf"{latex(last)}, {latex(last - 1)}, \dots, {latex(hidden[0].first)}"  # δ_k: k = K, …, 1
    )
    ratio = t["backward", "product"] / t["forward", "product"]  # in [1, 2): each term at most doubles
    summary["ratio_L_limit"] = latex(sp.cancel(sp.limit(ratio, L, sp.oo)))  # K L² terms dominate (K ≥ 2)
    summary["ratio_I_limit"] = latex(sp.cancel(sp.limit(ratio, I, sp.oo)))  # the I L term dominates
    parameters = [
        {"name": latex(m), "size": size_tex(m), "where": where}
        for _, _, m, where in eqs["backward"]
        if isinstance(m, sp.MatrixSymbol) and m.name[0] in "Wb"
    ]
    return {
        "forward": rows["forward"],
        "backward": rows["backward"],
        "operations": table,
        "totals": summary,
        "parameters": parameters,
    }
