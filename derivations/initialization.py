"""Exercise 3: how the weight variance σ² at initialization propagates through ReLU layers and shapes f.

Derived in SymPy (:func:`derive`): (a) mean and variance of a pre-activation z = Σ_m w_m x_m,
(b) E[ReLU(z)²] = Var(z)/2 by symmetry, (c) the layer-to-layer recursion, (d) the variance-
preserving σ² = 2/M (He et al., 2015), and (e) how σ² shapes a one-hidden-layer network
f(x) = Σ_j v_j ψ(w_j x + b_j) with w_j ~ N(0, σ²), v_j ~ N(0, 1/M): for ψ = ReLU, the kinks x_j = −b_j/w_j
(Cauchy distributed) with biases b_j ~ N(0, σ²) ("scaled") or b_j ~ N(0, s_b²) ("fixed"); for ψ = tanh,
the smooth contrast with b_j ~ N(0, σ²), the scaling of the derivatives.

Every result is compared with a seeded Monte Carlo estimate; the tolerance of each comparison
is ``Z`` standard errors estimated from the same samples, so it shrinks as 1/√n.  :func:`run`
computes the estimates reported (and plotted) with the profile's sample sizes, :func:`check`
repeats them at the quick profile's sizes.  Run as a stage of ``python build.py``; writes
``results.json`` and ``arrays.npz``.

The roles live in three modules: :mod:`derivations.initialization_symbolic` (SymPy),
:mod:`derivations.initialization_montecarlo` (torch, imported only inside :func:`run` and
:func:`check`) and this stage; :mod:`derivations.initialization_plot` prints.
"""

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from derivations import expr_json
from derivations.initialization_symbolic import derive, symbolic_checks
from lab.checks import Check
from lab.io import load_arrays, load_json, save_arrays, save_json


@dataclass(frozen=True)
class Config:
    seed: int = 0
    M: int = 100  # fan-in of every neuron (and width of every layer)
    sigma2_single: float = 0.03  # σ² of the single-neuron checks (a), (b); any value works
    n_single: int = 400_000  # i.i.d. samples of (w, x) for (a), (b)
    depth: int = 20  # layers of the variance-across-depth simulation (c), (d)
    depth_factors: tuple[float, ...] = (0.5, 1.0, 2.0)  # σ² in units of the critical 2/M
    n_networks: int = 200  # independent networks per σ² (the Monte Carlo sample of (c), (d))
    n_inputs: int = 64  # inputs x ~ N(0, I) pushed through each network
    width_e: int = 100  # hidden units of the scalar network of (e)
    sigma2_e: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)  # σ² of w_j (and of b_j, except "fixed") in (e)
    bias_std_fixed: float = 1.0  # s_b of (e)'s "fixed" ReLU parameterization, b_j ~ N(0, s_b²)
    n_functions: int = 4000  # random networks per σ² in (e)
    n_shown: int = 6  # random functions drawn per σ² in the figure
    grid: int = 401  # points of x in [-x_max, x_max] for the figure of random functions
    x_max: float = 2.0  # (e): the input range [-x_max, x_max] of the figure and of the ReLU kink counts
    grid_measure: int = 81  # (e): points of x in [-x_max, x_max] for the nonlinearity of every network


PROFILES = {
    "full": Config(),
    "quick": Config(
        M=32, n_single=20_000, depth=6, n_networks=30, n_inputs=16, width_e=32, n_functions=300, grid=101
    ),
}


@dataclass(frozen=True)
class Results:
    config: dict[str, Any]
    exprs: dict[str, str]  # the derived expressions, as expr_json.dump text (printed by the present module)
    mc: list[dict[str, Any]]  # every Monte Carlo comparison: Comparison fields and "passed"
    tanh: list[
        dict[str, float]
    ]  # per σ² of (e), tanh: E[f^(n)(0)²], n = 1, 2: Monte Carlo mean, its SE, derived
    relu: list[
        dict[str, Any]
    ]  # per bias parameterization and σ² of (e), ReLU: kinks in range (mean, SE, derived)
    nonlinearity: list[
        dict[str, Any]
    ]  # per case ("relu_none", "relu_scaled", "relu_fixed", "tanh") and σ² of (e): nonlinearity mean, SE
    tolerance_se: float  # Z: Monte Carlo tolerances in standard errors
    arrays: dict[str, np.ndarray]  # depth_mean/depth_se (factors, depth), shown_f (σ², n_shown, grid), grid


def run(config: Config) -> Results:
    """Derive, simulate, and collect the expressions, Monte Carlo comparisons and figure data."""
    from derivations.initialization_montecarlo import (
        BIASES,
        Z,
        comparisons,
        derivative_moment_value,
        expected_kinks,
        mean_and_se,
        simulate,
    )

    d = derive()
    sim = simulate(config)
    mc = [{**asdict(c), "passed": c.check().passed} for c in comparisons(config, sim, d)]
    tanh_rows = [
        {
            "sigma2": s,
            **{
                f"{key}{n}": value
                for n in (1, 2)
                for key, value in zip(("moment_f", "moment_se_f"), mean_and_se(fs[f"f{n}"] ** 2), strict=True)
            },
            **{f"exact_f{n}": derivative_moment_value(n, s) for n in (1, 2)},
        }
        for s, fs in sim["functions"].items()
    ]
    relu_rows = [
        {
            "bias": bias,
            "sigma2": s,
            **dict(zip(("kinks", "kinks_se"), mean_and_se(fs["kinks"]), strict=True)),
            "kinks_exact": expected_kinks(d, config, bias, s),
        }
        for (bias, s), fs in sim["relu"].items()
    ]
    nonlinear_rows = [
        {"case": case, "sigma2": s, **dict(zip(("mean", "se"), mean_and_se(values), strict=True))}
        for case, by_sigma2 in (
            ("relu_none", sim["bias_free"]),
            *(
                (f"relu_{bias}", {s: sim["relu"][bias, s]["nonlinearity"] for s in config.sigma2_e})
                for bias in BIASES
            ),
            ("tanh", {s: fs["nonlinearity"] for s, fs in sim["functions"].items()}),
        )
        for s, values in by_sigma2.items()
    ]
    depth = np.stack([sim["depth"][f] for f in config.depth_factors])  # (factors, R, depth)
    arrays = {
        "depth_mean": depth.mean(1),
        "depth_se": depth.std(1, ddof=1) / np.sqrt(config.n_networks),
        "grid": sim["functions"][config.sigma2_e[0]]["grid"].cpu().numpy(),
        "shown_f": np.stack([sim["functions"][s]["f"].cpu().numpy() for s in config.sigma2_e]),
        **{
            f"shown_relu_{bias}": np.stack([sim["relu"][bias, s]["f"].cpu().numpy() for s in config.sigma2_e])
            for bias in BIASES
        },
    }
    exprs = {key: expr_json.dump(expr) for key, expr in d.items()}
    return Results(json_config(config), exprs, mc, tanh_rows, relu_rows, nonlinear_rows, Z, arrays)


def json_config(config: Config) -> dict[str, Any]:
    """The config as it reads back from JSON (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def save(results: Results, directory: Path) -> None:
    save_json({k: v for k, v in asdict(results).items() if k != "arrays"}, directory)
    save_arrays(results.arrays, directory)


def load(directory: Path) -> Results:
    return Results(**load_json(directory), arrays=load_arrays(directory))


def check() -> list[Check]:
    """Symbolic checks, then Monte Carlo checks at the quick profile's sample sizes."""
    from derivations.initialization_montecarlo import comparisons, simulate

    d = derive()
    config = replace(PROFILES["quick"], seed=1)  # a seed different from the report's
    return symbolic_checks(d) + [c.check() for c in comparisons(config, simulate(config), d)]
