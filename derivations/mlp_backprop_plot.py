"""Presentation of Exercise 2 (MLP backpropagation and operation counts): template values only, no figures."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from lab.fmt import integer, num, tex

if TYPE_CHECKING:  # the compute module imports torch, which a present module must not
    from derivations.mlp_backprop import Results

FIGURES: dict[str, Callable[["Results"], Figure]] = {}


def context(results: "Results") -> dict[str, Any]:
    """Values for ``templates/sections/mlp_backprop.tex.j2``."""

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
        "forward": rows(results.forward),
        "backward": rows(results.backward),
        "parameters": rows(results.parameters),
        "operations": {
            stage: rows(
                [
                    {k: v for k, v in op.items() if k != "stage"}
                    for op in results.operations
                    if op["stage"] == stage
                ]
            )
            for stage in ("forward", "backward")
        },
        "totals": {key: tex(value) for key, value in results.totals.items()},
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
        "mean_case": tex(", ".join(map(str, v["mean_case"]))),
        "mean_error": num(v["mean_error"], 2),
        "symbolic_mismatches": integer(v["symbolic_mismatches"]),
    }
