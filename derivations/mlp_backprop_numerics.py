"""Exercise 2, the numerics: the literal backward pass against ``torch.autograd`` and the
operation counts against ``torch.utils.flop_counter.FlopCounterMode``.

Only the stage (:mod:`derivations.mlp_backprop`) imports this module, inside ``run`` and
``check``, so listing the stages needs no torch.
"""

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from derivations.mlp_backprop_symbolic import (
    I,
    K,
    L,
    O,
    backward,
    count_operations,
    forward,
    layer_blocks,
    layer_sizes,
    symbolic_error,
    totals,
)
from lab.checks import Check

ACTIVATIONS: dict[
    str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
] = {
    "tanh": (torch.tanh, lambda a: 1 - torch.tanh(a) ** 2),
    "sigmoid": (torch.sigmoid, lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a))),
    "relu": (torch.relu, lambda a: (a > 0).to(a.dtype)),
}


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
        loss = torch.nn.functional.mse_loss(model(x), y)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    return {"forward": fwd.get_total_flops(), "backward": bwd.get_total_flops()}


def product_counts(i: int, k: int, l: int, o: int) -> dict[str, int]:
    """Derived multiply-adds of the matrix products of each pass at concrete sizes."""
    t = totals(count_operations(layer_blocks()))
    point = {I: i, K: k, L: l, O: o}
    return {stage: int(t[stage, "product"].subs(point)) for stage in ("forward", "backward")}


LOSSES: dict[str, tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[int], float]]] = {
    "mean": (torch.nn.functional.mse_loss, lambda o: 1.0),  # J = ‖e‖²/O, the MSE: ours, torch's MSELoss
    "half_sum": (lambda yhat, y: 0.5 * ((yhat - y) ** 2).sum(), lambda o: o / 2),  # J = ½‖e‖²
}
"""Loss conventions: the reference loss on (ŷ, y) and the factor it puts on our gradients."""


def autograd_error(sizes: tuple[int, int, int, int], activation: str, seed: int, loss: str = "mean") -> float:
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


HALF_SUM_CASE = (4, 2, 5, 3)  # (I, K, L, O) of the ½‖e‖²-convention check


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
    """Backward formulas vs autograd (random sizes, each ψ) and sympy.diff, and the ½‖e‖² rescaling."""
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
            "half squared error convention",
            "O/2 x our gradient vs autograd of 1/2 |e|^2",
            autograd_error(HALF_SUM_CASE, "tanh", 7, "half_sum"),
            AUTOGRAD_TOLERANCE,
            name_tex=r"convention $\tfrac12\lVert e\rVert^2$",
            method_tex=r"$\tfrac{O}{2}\times{}$our gradient vs autograd of $\tfrac12\lVert e\rVert^2$",
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
