"""Exercise 2, the SymPy side: the layer structure, the literal forward/backward pass and the operation counts.

One description of the layer structure (:func:`layer_blocks`) drives the equations with their
sizes (printed by :mod:`derivations.mlp_backprop_plot`), the literal forward/backward
implementation (:func:`forward`, :func:`backward`, generic over torch tensors and SymPy
matrices) and the operation count (:func:`count_operations`).  Nothing here imports torch or a
printer: the stage (:mod:`derivations.mlp_backprop`) checks these against torch.
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy as sp

I, K, L, O = sp.symbols("I K L O", positive=True, integer=True)
Printer = Callable[[Any], str]  # e.g. derivations.notation.latex


# --- the layer structure --------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """``repeat`` consecutive layers of the same shape: a = W h + b, then ψ if ``activation``."""

    first: Any  # index k of the first layer of the block (an int or a SymPy expression)
    fan_in: Any
    fan_out: Any
    repeat: Any
    activation: bool


def layer_blocks(i: Any = I, k: Any = K, l: Any = L, o: Any = O) -> list[Block]:
    """The MLP as blocks: input layer, K−1 hidden-to-hidden layers, linear output layer (K ≥ 1)."""
    return [Block(1, i, l, 1, True), Block(2, l, l, k - 1, True), Block(k + 1, l, o, 1, False)]


def layer_sizes(i: int, k: int, l: int, o: int) -> list[tuple[int, int, bool]]:
    """The concrete layers (fan_in, fan_out, activation) of one network."""
    return [(b.fan_in, b.fan_out, b.activation) for b in layer_blocks(i, k, l, o) for _ in range(b.repeat)]


# --- the literal implementation, generic over torch tensors and SymPy matrices ----------------------


def forward(
    W: list[Any], b: list[Any], x: Any, psi: Callable[[Any], Any]
) -> tuple[list[Any], list[Any], Any]:
    """Forward pass for one column vector x: pre-activations a_k, activations h_k (h_0 = x), ŷ."""
    h, a = [x], []
    for k, (W_k, b_k) in enumerate(zip(W, b, strict=True)):
        a.append(W_k @ h[-1] + b_k)
        if k < len(W) - 1:
            h.append(psi(a[-1]))
    return a, h, a[-1]


def backward(
    W: list[Any],
    a: list[Any],
    h: list[Any],
    e: Any,
    dpsi: Callable[[Any], Any],
    hadamard: Callable[[Any, Any], Any] = operator.mul,
) -> tuple[list[Any], list[Any]]:
    """Backward pass for the MSE J = ‖e‖²/O of one example (GBC §6.5.4, Alg. 6.4): gradients of every W_k and b_k.

    δ_{K+1} = (2/O) e;  ∇W_k = δ_k h_{k−1}ᵀ;  ∇b_k = δ_k;  δ_{k−1} = ψ'(a_{k−1}) ⊙ (W_kᵀ δ_k).
    """
    grad_W, grad_b = [None] * len(W), [None] * len(W)
    scale = sp.Rational(2, e.shape[0])  # ∂J/∂ŷ = (2/O) e, exact for SymPy matrices
    delta = e * (scale if isinstance(e, sp.MatrixBase) else float(scale))
    for k in reversed(range(len(W))):
        grad_W[k], grad_b[k] = delta @ h[k].T, delta
        if k > 0:  # no gradient is needed for the input x
            delta = hadamard(dpsi(a[k - 1]), W[k].T @ delta)
    return grad_W, grad_b


# --- operation counts (c) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One kind of operation of a pass, with its cost per execution and how often it runs."""

    stage: str  # "forward" or "backward"
    layers: str  # LaTeX of the range of layer indices k it belongs to
    what: str  # LaTeX of the operation
    kind: str  # "product" (multiply-adds of a matrix product) or "elementwise"
    each: Any  # operations per execution
    times: Any  # executions per example

    @property
    def total(self) -> Any:
        return sp.expand(self.each * self.times)


def layer_range(first: Any, last: Any, latex: Printer) -> str:
    """LaTeX of the layer indices first, ..., last (one index if they are equal)."""
    return latex(first) if sp.expand(last - first) == 0 else rf"{latex(first)},\dots,{latex(last)}"


def count_operations(blocks: list[Block], latex: Printer = str) -> list[Operation]:
    """Walk the layers and count multiply-adds of products and elementwise operations.

    A matrix-vector product (m×n)(n×1) costs mn multiply-adds, an outer product
    (m×1)(1×n) mn multiplications; each is counted as one "product" operation here.
    Elementwise: bias additions, ψ and ψ' evaluations, Hadamard products, e = ŷ − y,
    J = Σ e² / O (O squares, O − 1 additions, one division) and δ_{K+1} = (2/O) e (O multiplications).

    The backward rows follow the equations of (b), indexed by the k of δ_k = ψ'(a_k) ⊙ W_{k+1}ᵀ δ_{k+1}:
    the product W_{k+1}ᵀ δ_{k+1} uses the next layer's weights (none for k = 0, the input), and the
    Hadamard rows of consecutive blocks are merged into one row k = 1, ..., K (listed last).  The
    other backward rows are listed from the output down.

    ``latex`` prints the layer indices in the rows' labels (``layers``, ``what``): the present
    module passes :func:`derivations.notation.latex`; the counts do not depend on it, and this
    module imports no printer, so that a notation edit leaves the stage's results cached.
    """

    def row(stage: str, first: Any, last: Any, what: Callable[[Any], str], kind: str, each: Any) -> Operation:
        k = first if sp.expand(last - first) == 0 else sp.Symbol("k")  # the index the operation is written in
        return Operation(stage, layer_range(first, last, latex), what(k), kind, each, last - first + 1)

    forward_ops, backward_ops = [], []
    hadamard: list[tuple[Any, Any, Any]] = []  # (first, last, cost) of the ψ'(a_k) ⊙ (·) rows
    for n, blk in enumerate(blocks):
        first, last, size = blk.first, blk.first + blk.repeat - 1, blk.fan_out * blk.fan_in
        forward_ops += [
            row("forward", first, last, lambda k: f"W_{{{latex(k)}}} h_{{{latex(k - 1)}}}", "product", size),
            row("forward", first, last, lambda k: rf"(\cdot) + b_{{{latex(k)}}}", "elementwise", blk.fan_out),
        ]
        if blk.activation:
            forward_ops.append(
                row("forward", first, last, lambda k: rf"\psi(a_{{{latex(k)}}})", "elementwise", blk.fan_out)
            )
            hadamard.append((first, last, 2 * blk.fan_out))
        group = [
            row(
                "backward",
                first,
                last,
                lambda k: rf"\delta_{{{latex(k)}}} h_{{{latex(k - 1)}}}^{{\top}}",
                "product",
                size,
            )
        ]
        if n > 0:  # W_jᵀ δ_j for j in this block feeds δ_{j−1}: listed under k = j − 1
            group.append(
                row(
                    "backward",
                    first - 1,
                    last - 1,
                    lambda k: rf"W_{{{latex(k + 1)}}}^{{\top}} \delta_{{{latex(k + 1)}}}",
                    "product",
                    size,
                )
            )
        backward_ops = group + backward_ops  # from the output down
    # consecutive Hadamard rows of equal cost per layer become one row
    merged = hadamard[:1]
    for f, l, c in hadamard[1:]:
        f0, l0, c0 = merged[-1]
        if sp.expand(f - l0 - 1) == 0 and sp.expand(c - c0) == 0:
            merged[-1] = (f0, l, c0)
        else:
            merged.append((f, l, c))
    backward_ops += [
        row("backward", f, l, lambda k: rf"\psi'(a_{{{latex(k)}}}) \odot (\cdot)", "elementwise", c)
        for f, l, c in merged
    ]
    o = blocks[-1].fan_out
    forward_ops += [
        Operation("forward", "", r"e = \hat{y} - y", "elementwise", o, 1),
        Operation("forward", "", r"J = \tfrac{1}{O} e^{\top} e", "elementwise", 2 * o, 1),
    ]
    output = Operation(
        "backward", latex(blocks[-1].first), r"\delta_{K+1} = \tfrac{2}{O} e", "elementwise", o, 1
    )
    return [*forward_ops, output, *backward_ops]


def totals(ops: list[Operation]) -> dict[tuple[str, str], Any]:
    """Sum of operations per (stage, kind)."""
    out: dict[tuple[str, str], Any] = {}
    for op in ops:
        out[op.stage, op.kind] = sp.expand(out.get((op.stage, op.kind), 0) + op.total)
    return out


def big_o(expr: sp.Expr) -> sp.Expr:
    """The terms that matter in O(·): drop coefficients, and monomials that divide another one.

    All sizes are ≥ 1, so a monomial m dividing m' (e.g. L² | K L²) satisfies m ≤ m'.
    """
    monomials = {term.as_coeff_Mul()[1] for term in sp.Add.make_args(expr)}
    return sp.Add(
        *(
            m
            for m in monomials
            if not any(o != m and sp.cancel(o / m).is_polynomial(I, K, L, O) for o in monomials)
        )
    )


class psi(sp.Function):
    """A generic activation whose derivative is the generic function ``psiprime``."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return psiprime(self.args[0])


psiprime = sp.Function("psiprime")


def symbolic_error(sizes: tuple[int, int, int, int] = (2, 2, 2, 2)) -> int:
    """Number of parameter entries where the literal backward differs from ``sympy.diff`` (generic ψ)."""
    shapes = layer_sizes(*sizes)
    W = [
        sp.Matrix(fo, fi, lambda r, c, n=n: sp.Symbol(f"w{n}_{r}{c}")) for n, (fi, fo, _) in enumerate(shapes)
    ]
    b = [sp.Matrix(fo, 1, lambda r, c, n=n: sp.Symbol(f"b{n}_{r}")) for n, (_, fo, _) in enumerate(shapes)]
    x = sp.Matrix(sp.symbols(f"x:{sizes[0]}"))
    y = sp.Matrix(sp.symbols(f"y:{sizes[3]}"))
    a, h, yhat = forward(W, b, x, lambda v: v.applyfunc(psi))
    e = yhat - y
    J = (e.T * e)[0] / sizes[3]
    grad_W, grad_b = backward(W, a, h, e, lambda v: v.applyfunc(psiprime), sp.Matrix.multiply_elementwise)
    return sum(
        sp.expand(g - sp.diff(J, p)) != 0
        for G, P in zip([*grad_W, *grad_b], [*W, *b], strict=True)
        for g, p in zip(G, P, strict=True)
    )
