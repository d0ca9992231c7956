"""Exercise 3, the numerics: seeded Monte Carlo estimates and quadrature for the closed forms.

:func:`simulate` draws every sample of the exercise from one seeded generator;
:func:`comparisons` sets each estimate against its derived value with a tolerance of ``Z``
standard errors estimated from the same samples.  Only the stage imports this module, inside
:func:`derivations.initialization.run` and ``check``, so listing the stages needs no torch.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp
import torch

from derivations.initialization_symbolic import (
    ACTIVATION,
    M,
    ell,
    gaussian_moment,
    s_b,
    sigma,
    sigma2,
    x,
    x_max,
)
from lab.checks import Check
from lab.device import device
from lab.stats import mean_se

if TYPE_CHECKING:
    from derivations.initialization import Config

Z = 5.0  # tolerance in standard errors: a correct formula fails with probability ~6e-7 per check


def gauss_expectation(g: sp.Expr, variance: float, points: int = 400_001) -> float:
    """E[g(b)] for b ~ N(0, variance) by the trapezoid rule over ±12 standard deviations.

    The step is at most 1/100 of min(1, sd), fine enough for tanh's derivatives, which vary on
    a unit scale whatever σ² is (Gauss–Hermite nodes would be too sparse near 0 for large σ²).
    """
    sd = variance**0.5
    half_width = 12 * sd
    n = max(points, int(2 * half_width / (min(1.0, sd) / 100)) + 1)
    u = np.linspace(-half_width, half_width, n)
    density = np.exp(-(u**2) / (2 * variance)) / np.sqrt(2 * np.pi * variance)
    return float(np.trapezoid(sp.lambdify(x, g, "numpy")(u) * density, u))


def derivative_moment_value(n: int, variance: float) -> float:
    """E[f^{(n)}(0)²] = E[w^{2n}] E[ψ^{(n)}(b)²] at σ² = ``variance`` (quadrature for the second factor)."""
    w_moment = float(gaussian_moment(2 * n, sigma2).subs(sigma2, variance))
    return w_moment * gauss_expectation(sp.diff(ACTIVATION, x, n) ** 2, variance)


def mean_and_se(samples: torch.Tensor) -> tuple[float, float]:
    """Sample mean and its standard error (:func:`lab.stats.mean_se` of i.i.d. samples along dim 0)."""
    return mean_se(samples.cpu().numpy())


def single_neuron(config: "Config", gen: torch.Generator) -> dict[str, tuple[float, float]]:
    """(a), (b): i.i.d. samples of z = Σ w_m x_m; mean/SE of z, z², ReLU(z)²."""
    dev = gen.device
    z = torch.empty(config.n_single, dtype=torch.float64, device=dev)
    chunk = 50_000
    for start in range(0, config.n_single, chunk):
        n = min(chunk, config.n_single - start)
        w_ = config.sigma2_single**0.5 * torch.randn(
            n, config.M, dtype=torch.float64, device=dev, generator=gen
        )
        x_ = torch.randn(n, config.M, dtype=torch.float64, device=dev, generator=gen)
        z[start : start + n] = (w_ * x_).sum(1)  # (n,)
    return {"mean": mean_and_se(z), "var": mean_and_se(z**2), "relu": mean_and_se(torch.relu(z) ** 2)}


def depth_profile(config: "Config", factor: float, gen: torch.Generator) -> np.ndarray:
    """(c), (d): per-network estimates of E[z^{(l)}²], l = 1..depth, at σ² = factor · 2/M.

    Returns an array (n_networks, depth); rows are independent networks, each averaging
    over its M units and n_inputs inputs.
    """
    dev, R = gen.device, config.n_networks
    s = (factor * 2 / config.M) ** 0.5
    h = torch.randn(R, config.n_inputs, config.M, dtype=torch.float64, device=dev, generator=gen)  # inputs
    out = np.empty((R, config.depth))
    for layer in range(config.depth):
        W = s * torch.randn(
            R, config.M, config.M, dtype=torch.float64, device=dev, generator=gen
        )  # (R, M, M)
        z = torch.bmm(h, W)  # (R, n_inputs, M)
        out[:, layer] = (z**2).mean(dim=(1, 2)).cpu().numpy()
        h = torch.relu(z)
    return out


def random_units(
    config: "Config", variance: float, bias_std: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(e): n_functions networks of width_e units: w_j ~ N(0, variance), b_j ~ N(0, bias_std²), v_j ~ N(0, 1/M).

    Returns (w, b, v), each (n_functions, width_e).
    """
    dev, R, J = gen.device, config.n_functions, config.width_e
    w_ = variance**0.5 * torch.randn(R, J, dtype=torch.float64, device=dev, generator=gen)
    b_ = bias_std * torch.randn(R, J, dtype=torch.float64, device=dev, generator=gen)
    v_ = torch.randn(R, J, dtype=torch.float64, device=dev, generator=gen) / J**0.5
    return w_, b_, v_


def on_grid(
    config: "Config", units: tuple[torch.Tensor, ...], activation: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """(grid, f) with f(x) = Σ_j v_j activation(w_j x + b_j) on the grid, shape (n_functions, grid)."""
    w_, b_, v_ = units
    grid = torch.linspace(-config.x_max, config.x_max, config.grid, dtype=torch.float64, device=w_.device)
    chunk = 200  # networks per step: bounds the (chunk, J, grid) intermediate
    f = torch.cat(
        [
            torch.einsum(
                "rj,rjg->rg",
                v_[i : i + chunk],
                activation(w_[i : i + chunk, :, None] * grid + b_[i : i + chunk, :, None]),
            )
            for i in range(0, w_.shape[0], chunk)
        ]
    )
    return grid, f


def shown(config: "Config", units: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The units of the first ``n_shown`` networks: the figure's functions, the only ones evaluated on the grid
    (no estimate uses the grid; evaluating all ``n_functions`` networks there was most of the stage's time)."""
    return tuple(u[: config.n_shown] for u in units)


def nonlinearity(config: "Config", units: tuple[torch.Tensor, ...], activation: Any) -> torch.Tensor:
    """(e): the smoothness measure of every network, the fraction of the variance of f over the inputs
    [−x_max, x_max] (``grid_measure`` equispaced points) that the least-squares straight line does not explain:
    0 for a line, the same for f and c·f (so σ² acting only as a scale leaves it unchanged).  Shape (n_functions,)."""
    grid, f = on_grid(replace(config, grid=config.grid_measure), units, activation)
    design = torch.stack([torch.ones_like(grid), grid], 1)  # (grid, 2)
    residual = f - torch.linalg.lstsq(design, f.T).solution.T @ design.T
    return residual.square().sum(1) / (f - f.mean(1, keepdim=True)).square().sum(1)


def random_functions(config: "Config", variance: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """(e), tanh: f(x) = Σ_j v_j tanh(w_j x + b_j), b_j ~ N(0, σ²), of the shown networks on a grid
    (n_shown, grid), and f, f', f'' at 0 and the nonlinearity of every network."""
    w_, b_, v_ = units = random_units(config, variance, variance**0.5, gen)
    grid, f = on_grid(config, shown(config, units), torch.tanh)
    t = torch.tanh(b_)  # tanh' = 1 - t², tanh'' = -2 t (1 - t²)
    return {
        "grid": grid,
        "f": f,
        "nonlinearity": nonlinearity(config, units, torch.tanh),
        "f0": (v_ * t).sum(1),
        "f1": (v_ * w_ * (1 - t**2)).sum(1),
        "f2": (v_ * w_**2 * (-2 * t * (1 - t**2))).sum(1),
    }


def relu_functions(
    config: "Config", variance: float, bias_std: float, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """(e), ReLU: f of the shown networks on the grid (n_shown, grid), the number of kinks −b_j/w_j
    inside [−x_max, x_max] and the nonlinearity of every network."""
    w_, b_, _ = units = random_units(config, variance, bias_std, gen)
    _, f = on_grid(config, shown(config, units), torch.relu)
    return {
        "f": f,
        "kinks": ((-b_ / w_).abs() < config.x_max).sum(1).to(torch.float64),
        "nonlinearity": nonlinearity(config, units, torch.relu),
    }


BIASES = ("scaled", "fixed")  # (e), ReLU: b_j ~ N(0, σ²) or b_j ~ N(0, s_b²)
BIAS_ITEM = {"scaled": "(i)", "fixed": "(ii)"}  # as the report names them


def bias_free_relu_nonlinearity(config: "Config", variance: float, gen: torch.Generator) -> torch.Tensor:
    """(e), the exercise's own network f(x) = Σ_j v_j ReLU(w_j x), no biases: the nonlinearity of every network."""
    w_, _, v_ = random_units(config, variance, 0.0, gen)
    return nonlinearity(config, (w_, torch.zeros_like(w_), v_), torch.relu)


def simulate(config: "Config") -> dict[str, Any]:
    """Every Monte Carlo estimate of the exercise, seeded by ``config.seed``."""
    gen = torch.Generator(device=device()).manual_seed(config.seed)
    single = single_neuron(config, gen)
    depth = {factor: depth_profile(config, factor, gen) for factor in config.depth_factors}
    functions = {s: random_functions(config, s, gen) for s in config.sigma2_e}
    relu_nets = {
        (bias, s): relu_functions(config, s, s**0.5 if bias == "scaled" else config.bias_std_fixed, gen)
        for bias in BIASES
        for s in config.sigma2_e
    }
    bias_free = {s: bias_free_relu_nonlinearity(config, s, gen) for s in config.sigma2_e}
    return {
        "single": single,
        "depth": depth,
        "functions": functions,
        "relu": relu_nets,
        "bias_free": bias_free,
    }


@dataclass(frozen=True)
class Comparison:
    """One Monte Carlo estimate against its derived value."""

    name: str  # plain text, for the --verify table
    label: str  # LaTeX, for the report
    estimate: float
    se: float  # standard error of the estimate
    exact: float
    n: int  # sample size

    def check(self) -> Check:
        return Check(
            self.name,
            f"Monte Carlo, n = {self.n}, tolerance {Z:g} standard errors",
            abs(self.estimate - self.exact),
            Z * self.se,
            name_tex=f"{self.name.split(' ', 1)[0]} ${self.label}$",
            method_tex=f"Monte Carlo, $n = {self.n}$, tolerance ${Z:g}$ standard errors",
        )


def expected_kinks(d: dict[str, sp.Expr], config: "Config", bias: str, variance: float) -> float:
    """(e), ReLU: the derived mean number of kinks in [−x_max, x_max] at σ² = ``variance``."""
    at = {M: config.width_e, x_max: config.x_max, s_b: config.bias_std_fixed, sigma: variance**0.5}
    return float(d[f"kinks_{bias}"].subs(at))


def comparisons(config: "Config", sim: dict[str, Any], d: dict[str, sp.Expr]) -> list[Comparison]:
    """All Monte Carlo comparisons of the derived formulas ``d`` with the simulation ``sim``."""
    at = {M: config.M, sigma2: config.sigma2_single}
    single = [
        ("(a) E[z]", r"\mathbb{E}[z]", "mean"),
        ("(a) Var[z] = E[z^2]", r"\mathrm{Var}[z]", "var"),
        ("(b) E[ReLU(z)^2]", r"\mathbb{E}[\mathrm{ReLU}(z)^2]", "relu"),
    ]
    out = [
        Comparison(name, label, *sim["single"][key], float(d[key].subs(at)), config.n_single)
        for name, label, key in single
    ]
    for factor, per_network in sim["depth"].items():
        for layer in (2, config.depth):
            exact = float(d["layer_var"].subs({M: config.M, sigma2: factor * 2 / config.M, ell: layer}))
            out.append(
                Comparison(
                    f"(c,d) Var[z^({layer})], sigma^2 = {factor:g}*2/M",
                    rf"\mathrm{{Var}}[z^{{({layer})}}],\ \sigma^2 = {factor:g}\cdot 2/M",
                    *mean_se(per_network[:, layer - 1]),
                    exact,
                    config.n_networks,
                )
            )
    for (bias, s), fs in sim["relu"].items():
        out.append(
            Comparison(
                f"(e) ReLU kinks in [-x_max, x_max], b {bias}, sigma^2 = {s:g}",
                rf"\#\mathrm{{kinks}}^{{{BIAS_ITEM[bias]}}},\ \sigma^2 = {s:g}",  # in [-x_max, x_max]
                *mean_and_se(fs["kinks"]),
                expected_kinks(d, config, bias, s),
                config.n_functions,
            )
        )
    for s, fs in sim["functions"].items():
        for n in (1, 2):
            out.append(
                Comparison(
                    f"(e) E[f^({n})(0)^2], sigma^2 = {s:g}",
                    rf"\mathbb{{E}}[f^{{({n})}}(0)^2],\ \sigma^2 = {s:g}",
                    *mean_and_se(fs[f"f{n}"] ** 2),
                    derivative_moment_value(n, s),
                    config.n_functions,
                )
            )
    return out
