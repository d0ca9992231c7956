"""Exercise 2: forward and backward pass of an MLP with K hidden layers, and their operation counts.

The network maps x ∈ R^I through K hidden layers of L units with activation ψ to a linear
output ŷ ∈ R^O, with loss J = ½‖e‖², e = ŷ − y (per example).  The backward pass follows
Goodfellow, Bengio & Courville, *Deep Learning* (MIT Press, 2016), §6.5.4, Algorithm 6.4,
written with δ_k = ∂J/∂a_k.

One description of the layer structure (:func:`layer_blocks`) drives everything here:
the equations with their sizes, the literal forward/backward implementation
(:func:`forward`, :func:`backward`, generic over torch tensors and SymPy matrices) and the
operation count (:func:`count_operations`).  :func:`check` verifies the backward formulas
against ``torch.autograd`` (random sizes, several ψ) and against ``sympy.diff`` (a small
generic-ψ network), the MSE rescaling, and the product counts against
``torch.utils.flop_counter.FlopCounterMode``.  Run as a stage of ``python build.py``.
"""

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import sympy as sp
import torch
from torch.utils.flop_counter import FlopCounterMode

from derivations.notation import latex
from lab.checks import Check
from lab.io import load_json, save_json

I, K, L, O = sp.symbols("I K L O", positive=True, integer=True)


@dataclass(frozen=True)
class Config:
    flop_sizes: tuple[tuple[int, int, int, int], ...] = (
        (3, 1, 4, 2),
        (8, 2, 16, 8),
        (5, 4, 32, 3),
        (64, 3, 100, 10),
    )
    # (I, K, L, O) compared with FlopCounterMode


PROFILES = {"full": Config(), "quick": Config(flop_sizes=((3, 1, 4, 2), (8, 2, 16, 8)))}


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
            rhs, down = e, ""
        backward_rows = [
            (latex(delta), rhs, delta, down),
            (rf"\nabla_{{{latex(W)}}} J", delta * h_prev.T, W, down),
            (rf"\nabla_{{{latex(b)}}} J", delta, b, down),
            *backward_rows,
        ]
    forward_rows += [
        ("e", yhat - y, e, ""),
        ("J", sp.Rational(1, 2) * e.T * e, sp.MatrixSymbol("J", 1, 1), ""),
    ]
    return {"forward": forward_rows, "backward": backward_rows}


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
    """Backward pass for J = ½‖e‖² (GBC §6.5.4, Alg. 6.4): gradients of every W_k and b_k.

    δ_{K+1} = e;  ∇W_k = δ_k h_{k−1}ᵀ;  ∇b_k = δ_k;  δ_{k−1} = ψ'(a_{k−1}) ⊙ (W_kᵀ δ_k).
    """
    grad_W, grad_b = [None] * len(W), [None] * len(W)
    delta = e
    for k in reversed(range(len(W))):
        grad_W[k], grad_b[k] = delta @ h[k].T, delta
        if k > 0:  # no gradient is needed for the input x
            delta = hadamard(dpsi(a[k - 1]), W[k].T @ delta)
    return grad_W, grad_b


ACTIVATIONS: dict[
    str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
] = {
    "tanh": (torch.tanh, lambda a: 1 - torch.tanh(a) ** 2),
    "sigmoid": (torch.sigmoid, lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a))),
    "relu": (torch.relu, lambda a: (a > 0).to(a.dtype)),
}


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


def layer_range(first: Any, last: Any) -> str:
    """LaTeX of the layer indices first, ..., last (one index if they are equal)."""
    return latex(first) if sp.expand(last - first) == 0 else rf"{latex(first)},\dots,{latex(last)}"


def count_operations(blocks: list[Block]) -> list[Operation]:
    """Walk the layers and count multiply-adds of products and elementwise operations.

    A matrix-vector product (m×n)(n×1) costs mn multiply-adds, an outer product
    (m×1)(1×n) mn multiplications; each is counted as one "product" operation here.
    Elementwise: bias additions, ψ and ψ' evaluations, Hadamard products, e = ŷ − y and
    J = ½ Σ e² (O squares, O − 1 additions, one halving).

    The backward rows follow the equations of (b), indexed by the k of δ_k = ψ'(a_k) ⊙ W_{k+1}ᵀ δ_{k+1}:
    the product W_{k+1}ᵀ δ_{k+1} uses the next layer's weights (none for k = 0, the input), and the
    Hadamard rows of consecutive blocks are merged into one row k = 1, ..., K (listed last).  The
    other backward rows are listed from the output down.
    """

    def row(stage: str, first: Any, last: Any, what: Callable[[Any], str], kind: str, each: Any) -> Operation:
        k = first if sp.expand(last - first) == 0 else sp.Symbol("k")  # the index the operation is written in
        return Operation(stage, layer_range(first, last), what(k), kind, each, last - first + 1)

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
        Operation("forward", "", r"J = \tfrac12 e^{\top} e", "elementwise", 2 * o, 1),
    ]
    return forward_ops + backward_ops


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


# --- results -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    config: dict[str, Any]
    forward: list[dict[str, str]]  # rows: lhs, rhs, size, range of k
    backward: list[dict[str, str]]
    operations: list[dict[str, str]]  # the count table
    totals: dict[str, str]  # LaTeX of exact totals and O(·) per pass
    flops: list[dict[str, int]]  # per (I, K, L, O): derived and FlopCounterMode counts
    parameters: list[dict[str, str]]  # name and size of every W_k, b_k
    verification: dict[str, Any]  # the formula checks' errors, as in formula_checks()


def size_tex(matrix: sp.Basic) -> str:
    rows, cols = matrix.shape
    return latex(rows) if cols == 1 else rf"{latex(rows)} \times {latex(cols)}"


def flop_counts(i: int, k: int, l: int, o: int) -> dict[str, int]:
    """Matmul FLOPs of one forward and one backward pass by FlopCounterMode, batch of one x."""
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for fan_in, fan_out, activation in layer_sizes(i, k, l, o):
        layers += [
            torch.nn.Linear(fan_in, fan_out, dtype=torch.float64),
            *([torch.nn.Tanh()] if activation else []),
        ]
    model = torch.nn.Sequential(*layers)
    x, y = torch.randn(1, i, dtype=torch.float64), torch.randn(1, o, dtype=torch.float64)  # (1, I), (1, O)
    with FlopCounterMode(display=False) as fwd:
        loss = 0.5 * ((model(x) - y) ** 2).sum()
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    return {"forward": fwd.get_total_flops(), "backward": bwd.get_total_flops()}


def product_counts(i: int, k: int, l: int, o: int) -> dict[str, int]:
    """Derived multiply-adds of the matrix products of each pass at concrete sizes."""
    t = totals(count_operations(layer_blocks()))
    point = {I: i, K: k, L: l, O: o}
    return {stage: int(t[stage, "product"].subs(point)) for stage in ("forward", "backward")}


def run(config: Config) -> Results:
    """Equations with sizes, operation counts and the FlopCounterMode comparison, as LaTeX and integers."""
    eqs = equations()
    rows = {
        name: [
            {"lhs": lhs, "rhs": latex(rhs, order="none"), "size": size_tex(m), "where": where}
            for lhs, rhs, m, where in eqs[name]
        ]
        for name in eqs
    }
    ops = count_operations(layer_blocks())
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
    flops = [
        {
            "I": i,
            "K": k,
            "L": l,
            "O": o,
            **{f"derived_{s}": v for s, v in product_counts(i, k, l, o).items()},
            **{f"counter_{s}": v for s, v in flop_counts(i, k, l, o).items()},
        }
        for i, k, l, o in config.flop_sizes
    ]
    parameters = [
        {"name": latex(m), "size": size_tex(m), "where": where}
        for _, _, m, where in eqs["backward"]
        if isinstance(m, sp.MatrixSymbol) and m.name[0] in "Wb"
    ]
    verification = {
        "autograd": [
            {"activation": act, "sizes": list(sizes), "error": autograd_error(sizes, act, seed=n)}
            for n, (act, sizes) in enumerate(autograd_cases())
        ],
        "mean_error": autograd_error(MEAN_CASE, "tanh", 7, "mean"),
        "symbolic_mismatches": symbolic_error(),
        "tolerance": AUTOGRAD_TOLERANCE,
        "mean_case": list(MEAN_CASE),
    }
    config_json = {"flop_sizes": [list(size) for size in config.flop_sizes]}  # as it reads back from JSON
    return Results(
        config_json, rows["forward"], rows["backward"], table, summary, flops, parameters, verification
    )


def save(results: Results, directory: Path) -> None:
    save_json(asdict(results), directory)


def load(directory: Path) -> Results:
    return Results(**load_json(directory))


# --- verification ---------------------------------------------------------------------------------------


LOSSES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[int], float]]] = {
    "half_sum": (lambda yhat, y: 0.5 * ((yhat - y) ** 2).sum(), lambda o: 1.0),  # J = ½‖e‖², ours
    "mean": (torch.nn.functional.mse_loss, lambda o: 2 / o),  # J = ‖e‖²/O, torch's MSELoss default
}
"""Loss conventions: the reference loss on (ŷ, y) and the factor it puts on our gradients."""


def autograd_error(
    sizes: tuple[int, int, int, int], activation: str, seed: int, loss: str = "half_sum"
) -> float:
    """Largest |literal backward × factor − torch.autograd| over all parameter gradients (float64)."""
    gen = torch.Generator().manual_seed(seed)
    psi, dpsi = ACTIVATIONS[activation]
    reference_loss, factor = LOSSES[loss]
    shapes = layer_sizes(*sizes)
    W = [torch.randn(fo, fi, dtype=torch.float64, generator=gen, requires_grad=True) for fi, fo, _ in shapes]
    b = [torch.randn(fo, 1, dtype=torch.float64, generator=gen, requires_grad=True) for _, fo, _ in shapes]
    x = torch.randn(sizes[0], 1, dtype=torch.float64, generator=gen)  # (I, 1)
    y = torch.randn(sizes[3], 1, dtype=torch.float64, generator=gen)  # (O, 1)
    a, h, yhat = forward(W, b, x, psi)
    reference = torch.autograd.grad(reference_loss(yhat, y), [*W, *b])
    with torch.no_grad():
        grad_W, grad_b = backward(W, a, h, yhat - y, dpsi)
    return max(
        (factor(sizes[3]) * g - r).abs().max().item()
        for g, r in zip([*grad_W, *grad_b], reference, strict=True)
    )


MEAN_CASE = (4, 2, 5, 3)  # (I, K, L, O) of the MSE-convention check


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
    J = (e.T * e)[0] / 2
    grad_W, grad_b = backward(W, a, h, e, lambda v: v.applyfunc(psiprime), sp.Matrix.multiply_elementwise)
    return sum(
        sp.expand(g - sp.diff(J, p)) != 0
        for G, P in zip([*grad_W, *grad_b], [*W, *b], strict=True)
        for g, p in zip(G, P, strict=True)
    )


def flop_checks(
    sizes: tuple[tuple[int, int, int, int], ...], derived: Callable[..., dict[str, int]]
) -> list[Check]:
    """FlopCounterMode FLOPs vs 2 × derived multiply-adds of the products, per pass and size."""
    checks = []
    for size in sizes:
        counted, ours = flop_counts(*size), derived(*size)
        checks += [
            Check(
                f"{stage} products, (I,K,L,O) = {size}",
                "FlopCounterMode FLOPs vs 2 x derived multiply-adds",
                abs(counted[stage] - 2 * ours[stage]),
                0,
                name_tex=f"{stage} products, $(I,K,L,O) = {size}$",
                method_tex=r"\texttt{FlopCounterMode} FLOPs vs $2\times{}$derived multiply-adds",
            )
            for stage in ("forward", "backward")
        ]
    return checks


AUTOGRAD_TOLERANCE = 1e-12  # float64 rounding over a few layers is ~1e-16


def autograd_cases(seed: int = 0) -> list[tuple[str, tuple[int, int, int, int]]]:
    """One random (I, K, L, O), each entry in 1..6, per activation."""
    gen = torch.Generator().manual_seed(seed)
    return [(act, tuple(int(v) for v in torch.randint(1, 7, (4,), generator=gen))) for act in ACTIVATIONS]


def formula_checks() -> list[Check]:
    """Backward formulas vs autograd (random sizes, each ψ) and sympy.diff, and the MSE rescaling."""
    checks = [
        Check(
            f"backward, psi = {act}, (I,K,L,O) = {sizes}",
            "literal formulas vs torch.autograd (float64)",
            autograd_error(sizes, act, seed=n),
            AUTOGRAD_TOLERANCE,
            name_tex=rf"backward, $\psi = \mathrm{{{act}}}$, $(I,K,L,O) = {sizes}$",
            method_tex=r"literal formulas vs \texttt{torch.autograd} (float64)",
        )
        for n, (act, sizes) in enumerate(autograd_cases())
    ]
    return [
        *checks,
        Check(
            "MSE mean convention",
            "2/O x our gradient vs autograd of MSELoss(mean)",
            autograd_error(MEAN_CASE, "tanh", 7, "mean"),
            AUTOGRAD_TOLERANCE,
            name_tex="MSE mean convention",
            method_tex=r"$\tfrac{2}{O}\times{}$our gradient vs autograd of \texttt{MSELoss} (mean)",
        ),
        Check(
            "backward, generic psi, I=K=L=O=2",
            "literal formulas vs sympy.diff (entries differing)",
            symbolic_error(),
            0,
            name_tex=r"backward, generic $\psi$, $I=K=L=O=2$",
            method_tex=r"literal formulas vs \texttt{sympy.diff} (entries differing)",
        ),
    ]


def check() -> list[Check]:
    """Backward formulas vs autograd and sympy.diff, MSE rescaling, operation counts vs FlopCounterMode."""
    return formula_checks() + flop_checks(PROFILES["full"].flop_sizes, product_counts)
