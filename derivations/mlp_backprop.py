"""Exercise 2: forward and backward pass of an MLP with K hidden layers, and their operation counts.

The network maps x ∈ R^I through K hidden layers of L units with activation ψ to a linear
output ŷ ∈ R^O, with the MSE J = ‖e‖²/O, e = ŷ − y (per example).  The backward pass follows
Goodfellow, Bengio & Courville, *Deep Learning* (MIT Press, 2016), §6.5.4, Algorithm 6.4,
written with δ_k = ∂J/∂a_k.

The roles live in three modules: :mod:`derivations.mlp_backprop_symbolic` (the layer
structure, the literal forward/backward pass and the operation counts, in SymPy),
:mod:`derivations.mlp_backprop_numerics` (torch, imported only inside :func:`run` and
:func:`check`) and this stage; :mod:`derivations.mlp_backprop_plot` derives and prints the
equations.  :func:`check` verifies the backward formulas
against ``torch.autograd`` (random sizes, several ψ) and against ``sympy.diff`` (a small
generic-ψ network), the rescaling to J = ½‖e‖², and the product counts against
``torch.utils.flop_counter.FlopCounterMode``.  Run as a stage of ``python build.py``.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab.checks import Check
from lab.io import load_json, save_json


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


@dataclass(frozen=True)
class Results:
    config: dict[str, Any]
    flops: list[dict[str, int]]  # per (I, K, L, O): derived and FlopCounterMode counts
    verification: dict[str, Any]  # the formula checks' errors, as in formula_checks()


def run(config: Config) -> Results:
    """The FlopCounterMode comparison and the formula checks' errors, as integers and floats.

    The equations and operation counts are exact SymPy results that the present module
    (:mod:`derivations.mlp_backprop_plot`) derives again to print them (in about a second).
    """
    from derivations.mlp_backprop_numerics import (
        AUTOGRAD_TOLERANCE,
        HALF_SUM_CASE,
        autograd_cases,
        autograd_error,
        flop_counts,
        product_counts,
        symbolic_error,
    )

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
    verification = {
        "autograd": [
            {"activation": act, "sizes": list(sizes), "error": autograd_error(sizes, act, seed=n)}
            for n, (act, sizes) in enumerate(autograd_cases())
        ],
        "half_sum_error": autograd_error(HALF_SUM_CASE, "tanh", 7, "half_sum"),
        "symbolic_mismatches": symbolic_error(),
        "tolerance": AUTOGRAD_TOLERANCE,
        "half_sum_case": list(HALF_SUM_CASE),
    }
    config_json = {"flop_sizes": [list(size) for size in config.flop_sizes]}  # as it reads back from JSON
    return Results(config_json, flops, verification)


def save(results: Results, directory: Path) -> None:
    save_json(asdict(results), directory)


def load(directory: Path) -> Results:
    return Results(**load_json(directory))


def check() -> list[Check]:
    """Backward formulas vs autograd and sympy.diff, ½‖e‖² rescaling, operation counts vs FlopCounterMode."""
    from derivations.mlp_backprop_numerics import flop_checks, formula_checks, product_counts

    return formula_checks() + flop_checks(PROFILES["full"].flop_sizes, product_counts)
