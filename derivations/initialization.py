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
"""

from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
import torch
from sympy import stats

from derivations.notation import latex
from lab.checks import Check
from lab.device import device
from lab.io import load_arrays, load_json, save_arrays, save_json

M, sigma2, s2 = sp.symbols("M sigma^2 s^2", positive=True)
s_b, x_max = sp.symbols("s_b x_max", positive=True)  # (e): fixed bias standard deviation, input range
sigma = sp.Symbol("sigma", positive=True)  # only for printing rates σ^n
ell = sp.Symbol("l", integer=True, positive=True)
Z = 5.0  # tolerance in standard errors: a correct formula fails with probability ~6e-7 per check


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
    grid: int = 401  # points of x in [-x_max, x_max] for the roughness statistic
    x_max: float = 2.0


PROFILES = {
    "full": Config(),
    "quick": Config(
        M=32, n_single=20_000, depth=6, n_networks=30, n_inputs=16, width_e=32, n_functions=300, grid=101
    ),
}


# --- derivations ---------------------------------------------------------------------------------------


@cache
def gaussian_moment(k: int, variance: sp.Expr) -> sp.Expr:
    """E[u^k] for u ~ N(0, variance), from sympy.stats."""
    return sp.simplify(stats.E(stats.Normal("u", 0, sp.sqrt(variance)) ** k))


def preactivation_moments() -> tuple[sp.Expr, sp.Expr]:
    """(a) E[z] and Var[z] of z = Σ_{m=1}^M w_m x_m, w_m ~ N(0, σ²), x_m ~ N(0, 1), all independent.

    One term: E[w x] = E[w] E[x] = 0 and E[(w x)²] = E[w²] E[x²] = σ² (independence).  The M
    terms are independent with mean 0, so the means add (0) and the variances add (M σ²).
    """
    term_mean = gaussian_moment(1, sigma2) * gaussian_moment(1, 1)
    term_var = gaussian_moment(2, sigma2) * gaussian_moment(2, 1) - term_mean**2
    return M * term_mean, M * term_var


def relu_second_moment(variance: sp.Expr) -> sp.Expr:
    """(b) E[ReLU(z)²] for any z with a density symmetric about 0 and Var[z] = ``variance``.

    ReLU(z)² = z² 1{z > 0}; the substitution z → −z maps E[z² 1{z > 0}] to E[z² 1{z < 0}],
    the two add up to E[z²] = Var[z] (mean 0), hence each is Var[z]/2.  (Checked against
    direct integration for a normal z in :func:`symbolic_checks`.)
    """
    return variance / 2


@cache
def layer_variance() -> sp.Expr:
    """(c) Var[z^{(l)}] for layer l of a ReLU network with all weights N(0, σ²), inputs N(0, 1).

    Layer 1 is (a).  For l ≥ 2, z^{(l)} = Σ_m w_m h_m with h_m = ReLU(z_m^{(l-1)}) not zero-mean,
    but E[z^{(l)}] = Σ E[w_m] E[h_m] = 0 and Var[z^{(l)}] = Σ_{m,n} E[w_m w_n] E[h_m h_n]
    = M σ² E[h²] (cross terms vanish since E[w_m w_n] = 0): a recursion v_l = M σ² v_{l-1}/2,
    because z^{(l-1)} is symmetric (its weights are).
    """
    v = sp.Function("v")
    _, first = preactivation_moments()
    recursion = v(ell + 1) - M * sigma2 * relu_second_moment(v(ell))
    return sp.simplify(sp.rsolve(recursion, v(ell), {v(1): first}))


def layer_variance_factored() -> sp.Expr:
    """(c) :func:`layer_variance` written as Var[z^{(1)}] times the per-layer factor to the power l − 1."""
    first = layer_variance().subs(ell, 1)
    factor = sp.simplify(layer_variance().subs(ell, ell + 1) / layer_variance())
    return sp.Mul(first, sp.Pow(factor, ell - 1, evaluate=False), evaluate=False)


def critical_sigma2() -> sp.Expr:
    """(d) The σ² with Var[z^{(l+1)}] = Var[z^{(l)}]: M σ²/2 = 1, i.e. σ² = 2/M."""
    ratio = sp.simplify(layer_variance().subs(ell, ell + 1) / layer_variance())
    (solution,) = sp.solve(sp.Eq(ratio, 1), sigma2)
    return solution


psi = sp.Function("psi")
x, w, b, v = sp.symbols("x w b v", real=True)


def unit_derivative(n: int) -> sp.Expr:
    """(e) d^n/dx^n of one unit v ψ(w x + b), for a generic ψ: v w^n ψ^{(n)}(w x + b)."""
    return sp.diff(v * psi(w * x + b), x, n)


def derivative_second_moment(n: int, activation: sp.Expr) -> sp.Expr:
    """(e) E[f^{(n)}(0)²] for f = Σ_j v_j ψ(w_j x + b_j), v_j ~ N(0, 1/M), w_j, b_j ~ N(0, σ²).

    The M units are independent with E[v_j] = 0, so cross terms vanish and
    E[f^{(n)}(0)²] = M E[v²] E[w^{2n}] E[ψ^{(n)}(b)²] = E[w^{2n}] E[ψ^{(n)}(b)²].
    Returned with E[ψ^{(n)}(b)²] left as an unevaluated expectation of ``activation``'s derivative.
    """
    b_random = stats.Normal("b", 0, sp.sqrt(sigma2))
    derivative = sp.diff(activation.subs(x, b), b, n).subs(b, b_random)
    return gaussian_moment(2 * n, sigma2) * stats.Expectation(derivative**2)


def small_sigma_expectation(g: sp.Expr, u: sp.Symbol, variance: sp.Expr, order: int = 8) -> sp.Expr:
    """Leading term of E[g(u)] for u ~ N(0, variance) as variance → 0 (Taylor expansion of g at 0)."""
    poly = sp.series(g, u, 0, order).removeO()
    expectation = sum(poly.coeff(u, k) * gaussian_moment(k, variance) for k in range(order))
    return sp.series(sp.expand(expectation), variance, 0, 1 + order // 2).removeO().as_ordered_terms()[-1]


def smoothness_leading_terms(activation: sp.Expr) -> dict[str, sp.Expr]:
    """(e) Leading small-σ² behavior of E[f(0)²], E[f'(0)²], E[f''(0)²] for ψ = ``activation``(x)."""
    u = sp.Symbol("u")
    out = {}
    for n, key in enumerate(("f", "f1", "f2")):
        g = sp.diff(activation.subs(x, u), u, n) ** 2
        out[key] = sp.factor(gaussian_moment(2 * n, sigma2) * small_sigma_expectation(g, u, sigma2))
    return out


def relu(u: sp.Expr) -> sp.Expr:
    return sp.Max(0, u)


def kink_probability(bias_std: sp.Expr) -> sp.Expr:
    """(e), ReLU: P(|x_j| < x_max) for the kink x_j = −b_j/w_j of a unit, w_j ~ N(0, σ²), b_j ~ N(0, bias_std²).

    The ratio of two independent centred normals is Cauchy with scale bias_std/σ (the angle of the
    point (w_j, b_j) is uniform after rescaling the axes); the probability is its CDF from sympy.stats.
    """
    kink = stats.Cauchy("x_j", 0, bias_std / sigma)
    return sp.simplify(stats.cdf(kink)(x_max) - stats.cdf(kink)(-x_max))


ACTIVATION = sp.tanh(x)  # the smooth contrast of (e)


def derive() -> dict[str, sp.Expr]:
    """All of Exercise 3's closed forms, as SymPy expressions."""
    mean, var = preactivation_moments()
    small = {f"small_{k}": e for k, e in smoothness_leading_terms(ACTIVATION).items()}
    ratio = sp.simplify(small["small_f2"] / small["small_f"])
    kinks_fixed = M * kink_probability(s_b)
    return {
        "mean": mean,
        "var": var,
        "relu": relu_second_moment(var),
        "layer_var": layer_variance(),
        "layer_var_factored": layer_variance_factored(),
        "layer2_var": layer_variance().subs(ell, 2),
        "critical": critical_sigma2(),
        "unit_d1": unit_derivative(1),
        "unit_d2": unit_derivative(2),
        "moment_d1": derivative_second_moment(1, ACTIVATION),
        "moment_d2": derivative_second_moment(2, ACTIVATION),
        **small,
        # E[f''(0)²]/E[f(0)²] ≈ c σ^(2p) as σ → 0: the rms curvature relative to f vanishes like σ^p
        "curvature_ratio": ratio,
        "curvature_rate": sigma ** (2 * sp.degree(ratio, sigma2)),
        "curvature_relative": sigma ** sp.degree(ratio, sigma2),
        # (e), ReLU: expected number of kinks in [-x_max, x_max] with b ~ N(0, σ²) and with b ~ N(0, s_b²)
        "kinks_scaled": M * kink_probability(sigma),
        "kinks_fixed": kinks_fixed,
        "kinks_fixed_small": sp.series(kinks_fixed, sigma, 0, 2).removeO(),
        "kinks_fixed_large": sp.limit(kinks_fixed, sigma, sp.oo),
    }


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


# --- Monte Carlo -------------------------------------------------------------------------------------------


def mean_and_se(samples: torch.Tensor) -> tuple[float, float]:
    """Sample mean and its standard error (samples i.i.d. along dim 0)."""
    return samples.mean().item(), (samples.std() / samples.numel() ** 0.5).item()


def single_neuron(config: Config, gen: torch.Generator) -> dict[str, tuple[float, float]]:
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


def depth_profile(config: Config, factor: float, gen: torch.Generator) -> np.ndarray:
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
    config: Config, variance: float, bias_std: float, gen: torch.Generator
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
    config: Config, units: tuple[torch.Tensor, ...], activation: Any
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


def random_functions(config: Config, variance: float, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """(e), tanh: f(x) = Σ_j v_j tanh(w_j x + b_j), b_j ~ N(0, σ²), on a grid, and f, f', f'' at 0."""
    w_, b_, v_ = units = random_units(config, variance, variance**0.5, gen)
    grid, f = on_grid(config, units, torch.tanh)
    t = torch.tanh(b_)  # tanh' = 1 - t², tanh'' = -2 t (1 - t²)
    return {
        "grid": grid,
        "f": f,
        "f0": (v_ * t).sum(1),
        "f1": (v_ * w_ * (1 - t**2)).sum(1),
        "f2": (v_ * w_**2 * (-2 * t * (1 - t**2))).sum(1),
    }


def relu_functions(
    config: Config, variance: float, bias_std: float, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """(e), ReLU: f on the grid and the number of kinks −b_j/w_j inside [−x_max, x_max], per network."""
    w_, b_, _ = units = random_units(config, variance, bias_std, gen)
    _, f = on_grid(config, units, torch.relu)
    return {"f": f, "kinks": ((-b_ / w_).abs() < config.x_max).sum(1).to(torch.float64)}


def roughness(f: torch.Tensor, step: float) -> torch.Tensor:
    """Mean squared second difference quotient over the grid, divided by the variance of f over the grid.

    ``f``: (n_functions, grid).  Returns (n_functions,), in units of 1/x⁴; 0 for a straight line.
    """
    second = (f[:, 2:] - 2 * f[:, 1:-1] + f[:, :-2]) / step**2
    return (second**2).mean(1) / f.var(1)


BIASES = ("scaled", "fixed")  # (e), ReLU: b_j ~ N(0, σ²) or b_j ~ N(0, s_b²)
BIAS_ITEM = {"scaled": "(i)", "fixed": "(ii)"}  # as the report names them


def simulate(config: Config) -> dict[str, Any]:
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
    return {"single": single, "depth": depth, "functions": functions, "relu": relu_nets}


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


def expected_kinks(d: dict[str, sp.Expr], config: Config, bias: str, variance: float) -> float:
    """(e), ReLU: the derived mean number of kinks in [−x_max, x_max] at σ² = ``variance``."""
    at = {M: config.width_e, x_max: config.x_max, s_b: config.bias_std_fixed, sigma: variance**0.5}
    return float(d[f"kinks_{bias}"].subs(at))


def comparisons(config: Config, sim: dict[str, Any], d: dict[str, sp.Expr]) -> list[Comparison]:
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
                    *mean_and_se(torch.from_numpy(per_network[:, layer - 1])),
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


# --- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    config: dict[str, Any]
    tex: dict[str, str]  # LaTeX of the derived expressions
    mc: list[dict[str, Any]]  # every Monte Carlo comparison: Comparison fields and "passed"
    roughness: list[dict[str, float]]  # per σ² of (e), tanh: mean roughness, its SE, E[f^(n)(0)²]
    relu: list[dict[str, Any]]  # per bias parameterization and σ² of (e), ReLU: roughness and kinks, with SEs
    tolerance_se: float  # Z: Monte Carlo tolerances in standard errors
    arrays: dict[str, np.ndarray]  # depth_mean/depth_se (factors, depth), shown_f (σ², n_shown, grid), grid


def run(config: Config) -> Results:
    """Derive, simulate, and collect LaTeX, Monte Carlo comparisons and figure data."""
    d = derive()
    sim = simulate(config)
    mc = [{**asdict(c), "passed": c.check().passed} for c in comparisons(config, sim, d)]
    step = 2 * config.x_max / (config.grid - 1)
    rough = []
    for s, fs in sim["functions"].items():
        r_mean, r_se = mean_and_se(roughness(fs["f"], step))
        rough.append(
            {
                "sigma2": s,
                "roughness": r_mean,
                "roughness_se": r_se,
                **{f"moment_f{n}": mean_and_se(fs[f"f{n}"] ** 2)[0] for n in (0, 1, 2)},
            }
        )
    relu_rows = [
        {
            "bias": bias,
            "sigma2": s,
            **dict(zip(("roughness", "roughness_se"), mean_and_se(roughness(fs["f"], step)), strict=True)),
            **dict(zip(("kinks", "kinks_se"), mean_and_se(fs["kinks"]), strict=True)),
            "kinks_exact": expected_kinks(d, config, bias, s),
        }
        for (bias, s), fs in sim["relu"].items()
    ]
    depth = np.stack([sim["depth"][f] for f in config.depth_factors])  # (factors, R, depth)
    arrays = {
        "depth_mean": depth.mean(1),
        "depth_se": depth.std(1, ddof=1) / np.sqrt(config.n_networks),
        "grid": sim["functions"][config.sigma2_e[0]]["grid"].cpu().numpy(),
        "shown_f": np.stack(
            [sim["functions"][s]["f"][: config.n_shown].cpu().numpy() for s in config.sigma2_e]
        ),
        **{
            f"shown_relu_{bias}": np.stack(
                [sim["relu"][bias, s]["f"][: config.n_shown].cpu().numpy() for s in config.sigma2_e]
            )
            for bias in BIASES
        },
    }
    tex = {key: latex(expr) for key, expr in d.items()}
    return Results(json_config(config), tex, mc, rough, relu_rows, Z, arrays)


def json_config(config: Config) -> dict[str, Any]:
    """The config as it reads back from JSON (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def save(results: Results, directory: Path) -> None:
    save_json({k: v for k, v in asdict(results).items() if k != "arrays"}, directory)
    save_arrays(results.arrays, directory)


def load(directory: Path) -> Results:
    return Results(**load_json(directory), arrays=load_arrays(directory))


# --- verification --------------------------------------------------------------------------------------


def symbolic_checks(d: dict[str, sp.Expr]) -> list[Check]:
    """The derived closed forms against independent SymPy computations."""

    def same(name: str, method: str, a: sp.Expr, b: sp.Expr, name_tex: str, method_tex: str) -> Check:
        error = 0.0 if sp.simplify(a - b) == 0 else 1.0
        return Check(name, method, error, 0.0, name_tex=name_tex, method_tex=method_tex)

    t = sp.Symbol("t", positive=True)
    by_angle = 4 * (sp.pi / 2 - sp.atan(s_b / (sigma * x_max))) / (2 * sp.pi)
    points = [
        {sigma: sp.Rational(a, 3), x_max: sp.Rational(b, 2), s_b: c}
        for a, b, c in ((1, 1, 1), (1, 4, 3), (7, 3, 2), (30, 1, 5), (2, 9, 1))
    ]
    z_normal = stats.Normal("z", 0, sp.sqrt(s2))
    relu_direct = stats.E(sp.Piecewise((z_normal**2, z_normal > 0), (0, True)))
    terms, layers = 3, 5  # (a) with M = ``terms`` explicit products; (c) unrolled up to layer ``layers``
    explicit = (
        rf"\texttt{{sympy.stats}}, $M = {terms}$ explicit terms",
        f"sympy.stats, M = {terms} explicit terms",
    )
    unrolled = f"recursion unrolled {layers - 1} times"
    return [
        same(
            "(a) E[z]",
            explicit[1],
            d["mean"].subs(M, terms),
            stats.E(sum_of_products(terms)),
            r"(a) $\mathbb{E}[z]$",
            explicit[0],
        ),
        same(
            "(a) Var[z]",
            explicit[1],
            d["var"].subs(M, terms),
            stats.variance(sum_of_products(terms)),
            r"(a) $\mathrm{Var}[z]$",
            explicit[0],
        ),
        same(
            "(b) E[ReLU(z)^2]",
            "direct integral for z ~ N(0, s^2)",
            relu_second_moment(s2),
            relu_direct,
            r"(b) $\mathbb{E}[\mathrm{ReLU}(z)^2]$",
            r"direct integral for $z \sim \mathcal{N}(0, s^2)$",
        ),
        same(
            "(c) Var[z^(l)]",
            unrolled,
            d["layer_var"].subs(ell, layers),
            unrolled_variance(layers),
            r"(c) $\mathrm{Var}[z^{(l)}]$",
            unrolled,
        ),
        same(
            "(c) printed form",
            f"Var[z^(1)] (factor)^(l-1) vs the {unrolled}",
            d["layer_var_factored"].subs(ell, layers),
            unrolled_variance(layers),
            "(c) printed form",
            rf"$\mathrm{{Var}}[z^{{(1)}}]\cdot(\text{{factor}})^{{l-1}}$ vs the {unrolled}",
        ),
        same(
            "(d) critical sigma^2",
            "Var[z^(l)] constant in l at sigma^2 = 2/M",
            d["layer_var"].subs(sigma2, d["critical"]),
            M * d["critical"],
            r"(d) critical $\sigma^2$",
            r"$\mathrm{Var}[z^{(l)}]$ constant in $l$ at $\sigma^2 = 2/M$",
        ),
        same(
            "(e) d^2/dx^2 of a unit",
            "psi = exp(2x): v w^2 psi''(wx+b)",
            d["unit_d2"].replace(psi, sp.Lambda(x, sp.exp(2 * x))).doit(),
            v * w**2 * 4 * sp.exp(2 * (w * x + b)),
            r"(e) $\frac{d^2}{dx^2}$ of a unit",
            rf"$\psi = e^{{2x}}$ in ${latex(d['unit_d2'])}$",
        ),
        same(
            "(e) small-sigma E[f''(0)^2]",
            "series vs 12 sigma^6",
            d["small_f2"],
            12 * sigma2**3,
            r"(e) small-$\sigma$ $\mathbb{E}[f''(0)^2]$",
            r"series vs $12\sigma^6$",
        ),
        Check(
            "(e) ReLU(sigma u) = sigma ReLU(u)",
            "simplified difference for u > 0 and u < 0",
            float(sum(sp.simplify(relu(sigma * u) - sigma * relu(u)) != 0 for u in (t, -t))),
            0.0,
            name_tex=r"(e) $\mathrm{ReLU}(\sigma u) = \sigma\,\mathrm{ReLU}(u)$",
            method_tex=r"simplified difference for $u > 0$ and $u < 0$",
        ),
        Check(
            "(e) P(ReLU kink in [-x_max, x_max])",
            "angle of (w/sigma, b/s_b) uniform: 4 (pi/2 - atan(s_b/(sigma x_max)))/(2 pi), at 5 points",
            max(abs(float((d["kinks_fixed"] / M - by_angle).subs(point))) for point in points),
            1e-14,
            name_tex=r"(e) $P(|x_j| < x_{max})$ of a ReLU kink",
            method_tex=(
                r"angle of $(w/\sigma, b/s_b)$ uniform: $\frac{4}{2\pi}\bigl(\frac{\pi}{2}"
                r" - \operatorname{atan}\frac{s_b}{\sigma x_{max}}\bigr)$, at 5 points"
            ),
        ),
    ]


def sum_of_products(m: int) -> sp.Expr:
    """Σ_{i<m} w_i x_i with independent sympy.stats normals (the reference for (a))."""
    ws = [stats.Normal(f"w{i}", 0, sp.sqrt(sigma2)) for i in range(m)]
    xs = [stats.Normal(f"x{i}", 0, 1) for i in range(m)]
    return sum(wi * xi for wi, xi in zip(ws, xs, strict=True))


def unrolled_variance(layers: int) -> sp.Expr:
    """Var[z^{(layers)}] by applying (a) and (b) layer by layer."""
    variance = preactivation_moments()[1]
    for _ in range(layers - 1):
        variance = M * sigma2 * relu_second_moment(variance)
    return variance


def check() -> list[Check]:
    """Symbolic checks, then Monte Carlo checks at the quick profile's sample sizes."""
    d = derive()
    config = replace(PROFILES["quick"], seed=1)  # a seed different from the report's
    return symbolic_checks(d) + [c.check() for c in comparisons(config, simulate(config), d)]
