"""Presentation of Exercise 3 (initialization): the two figures and the template values.

Figures: ``init_variance_depth`` (pre-activation variance across depth for each σ² of the
configuration, Monte Carlo against the recursion) and ``init_random_functions`` (random initial
functions of the one-hidden-layer network for several σ²: ReLU with scaled and with fixed bias
variance, and tanh).
"""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from derivations import expr_json
from derivations.notation import latex
from lab.fmt import Tex, integer, num, tex

if TYPE_CHECKING:  # the compute module imports torch, and matplotlib is imported only where a figure is drawn
    from matplotlib.figure import Figure

    from derivations.initialization import Results


ERROR_BAR_SE = 2.0  # half-length of the error bars of Fig. init_variance_depth, in standard errors


def factor_text(factor: float) -> Tex:
    """A σ² factor as the figure and Table init_mc print it (``:g``: 0.5, 1, 2)."""
    return tex(rf"\num{{{factor:g}}}")


def theory_depth(results: "Results") -> np.ndarray:
    """Var[z^(l)] = M σ² (M σ²/2)^(l−1) with σ² = factor · 2/M: 2 · factor^l. Shape (factors, depth)."""
    layers = np.arange(1, results.config["depth"] + 1)
    return np.array([2 * f**layers for f in results.config["depth_factors"]])


def plot_variance_depth(results: "Results") -> "Figure":
    import matplotlib.pyplot as plt

    from lab.style import CAPTION_PT, figsize, sequential

    fig, ax = plt.subplots(figsize=figsize(1.55), layout="constrained")  # printed unscaled
    layers = np.arange(1, results.config["depth"] + 1)
    mean, se = results.arrays["depth_mean"], results.arrays["depth_se"]
    factors = results.config["depth_factors"]
    for i, (factor, theory, color) in enumerate(
        zip(factors, theory_depth(results), sequential(len(factors)), strict=True)
    ):
        ax.plot(layers, theory, "--", color=color, lw=1)
        ax.errorbar(
            layers,
            mean[i],
            yerr=ERROR_BAR_SE * se[i],
            fmt="o",
            ms=3.5,
            color=color,
            capsize=2,
            label=rf"$\sigma^2 = {factor:g}\cdot 2/M$",
        )
    ax.set_yscale("log")
    ax.set_xlabel(r"layer $l$", fontsize=CAPTION_PT)
    ax.set_ylabel(r"$\mathrm{Var}[z^{(l)}]$", fontsize=CAPTION_PT)
    ax.tick_params(labelsize=CAPTION_PT)
    ax.set_xticks(layers[:: max(1, len(layers) // 10)])
    handles, labels = ax.get_legend_handles_labels()
    (line,) = ax.plot([], [], "--", color="gray", lw=1)
    ax.legend(  # beside the axes: inside, it covers the growing and the shrinking series alike
        [*handles, line],
        [*labels, "recursion (exact)"],
        fontsize=CAPTION_PT,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    ax.grid(alpha=0.3, which="major")
    return fig


ROWS = (  # (e): the rows of Fig. init_random_functions: arrays key, y label ((i), (ii): the bias parameterizations),
    # and the case of Table init_nonlinear whose mean nonlinearity each panel prints
    ("shown_relu_scaled", "ReLU (i)", "relu_scaled"),
    ("shown_relu_fixed", "ReLU (ii)", "relu_fixed"),
    ("shown_f", r"$\tanh$", "tanh"),
)


def plot_random_functions(results: "Results") -> "Figure":
    import matplotlib.pyplot as plt

    from lab.style import figsize

    sigmas = results.config["sigma2_e"]
    fig, axes = plt.subplots(
        len(ROWS), len(sigmas), figsize=figsize(5.4), sharex=True, layout="constrained"
    )  # each panel its own y scale: (i) differs between σ² by a factor of σ only, which shows as equal shapes
    grid = results.arrays["grid"]
    for row, (key, label, case) in zip(axes, ROWS, strict=True):
        means = [r["mean"] for r in results.nonlinearity if r["case"] == case]
        for ax, fs, mean in zip(row, results.arrays[key], means, strict=True):
            for f in fs:
                ax.plot(grid, f, lw=0.9)
            ax.text(
                0.04,
                0.94,
                f"{mean:.2f}",
                transform=ax.transAxes,
                va="top",
                fontsize=8,
                bbox={"fc": "w", "lw": 0},
            )
            ax.grid(alpha=0.3)
        row[0].set_ylabel(label + "\n" + r"$f(x)$")
    for ax, s in zip(axes[0], sigmas, strict=True):
        ax.set_title(rf"$\sigma^2={s:g}$")
    for ax in axes[-1]:
        ax.set_xlabel(r"$x$")
    return fig


FIGURES: dict[str, Callable[["Results"], "Figure"]] = {
    "init_variance_depth": plot_variance_depth,
    "init_random_functions": plot_random_functions,
}


def trend(values: list[float]) -> str:
    """ "increasing", "decreasing" or "mixed" for a sequence."""
    steps = np.diff(values)
    return "increasing" if (steps > 0).all() else "decreasing" if (steps < 0).all() else "mixed"


def value_se(x: float, se: float) -> tuple[Tex, Tex]:
    """A mean and its standard error, the error to 2 significant digits and the mean to the same decimal place
    (to tens, hundreds, ... when the error is that large: 1189 ± 191 prints as 1190 ± 190).  Means beyond
    [10⁻³, 10⁵) print with the power of ten of the mean on both numbers: 1.73·10⁻⁶ ± 0.12·10⁻⁶."""
    if se <= 0:
        return num(x), num(se)
    exponent = math.floor(math.log10(abs(x))) if x and not 1e-3 <= abs(x) < 1e5 else 0
    x, se = x / 10**exponent, se / 10**exponent
    decimals = 1 - math.floor(math.log10(se))
    suffix = f"e{exponent}" if exponent else ""
    if decimals < 0:
        x, se, decimals = round(x, decimals), round(se, decimals), 0
    return tex(rf"\num{{{x:.{decimals}f}{suffix}}}"), tex(rf"\num{{{se:.{decimals}f}{suffix}}}")


def bias_free_moments() -> dict[str, Tex]:
    """The exercise's bias-free tanh network f(x) = Σ_j v_j tanh(w_j x), v_j ~ N(0, 1/M), w_j ~ N(0, σ²).

    tanh is odd, so without biases every even derivative at 0 vanishes (f''(0) = 0 for every draw) and the
    first term beyond the slope is the cubic one: E f⁽ⁿ⁾(0)² = E[w²ⁿ] tanh⁽ⁿ⁾(0)² (the 1/M of v_j cancels
    the sum over j), with E[w²ⁿ] = (2n−1)!! σ²ⁿ.  LaTeX of tanh''(0), E f'(0)², E f'''(0)² and their ratio.
    """
    import sympy as sp

    x = sp.Symbol("x")
    variance = sp.Symbol("sigma", positive=True) ** 2

    def moment(n: int) -> sp.Expr:
        return sp.factorial2(2 * n - 1) * variance**n * sp.diff(sp.tanh(x), x, n).subs(x, 0) ** 2

    return {
        "psi2_zero": tex(latex(sp.diff(sp.tanh(x), x, 2).subs(x, 0))),
        "f1": tex(latex(moment(1))),
        "f3": tex(latex(moment(3))),
        "ratio": tex(latex(sp.simplify(moment(3) / moment(1)))),
    }


NONLINEAR_CASES = {  # (e): the rows of Table init_nonlinear, the exercise's own network first
    "relu_none": r"ReLU, none (the exercise)",
    "relu_scaled": r"ReLU, $b_j\sim\mathcal N(0,\sigma^2)$",
    "relu_fixed": r"ReLU, $b_j\sim\mathcal N(0,s_b^2)$",
    "tanh": r"$\tanh$, $b_j\sim\mathcal N(0,\sigma^2)$",
}


def change(first: dict[str, float], last: dict[str, float], z: float) -> str:
    """ "increasing", "decreasing" or "unchanged": whether the mean at the largest σ² exceeds (falls below) the
    one at the smallest by more than ``z`` standard errors of the difference."""
    step = last["mean"] - first["mean"]
    if abs(step) <= z * math.hypot(first["se"], last["se"]):
        return "unchanged"
    return "increasing" if step > 0 else "decreasing"


def nonlinear_context(results: "Results") -> dict[str, Any]:
    """(e): Table init_nonlinear's rows and, per case, the change of the nonlinearity from the smallest to the largest σ²."""
    by_case = {case: [r for r in results.nonlinearity if r["case"] == case] for case in NONLINEAR_CASES}
    return {
        "sigma2": [num(s, 2) for s in results.config["sigma2_e"]],
        "rows": [
            {
                "label": tex(label),
                "cells": [
                    dict(zip(("mean", "se"), value_se(r["mean"], r["se"]), strict=True))
                    for r in by_case[case]
                ],
            }
            for case, label in NONLINEAR_CASES.items()
        ],
        "trend": {case: change(rows[0], rows[-1], results.tolerance_se) for case, rows in by_case.items()},
        "range": {
            case: {end: num(rows[i]["mean"], 2) for end, i in (("first", 0), ("last", -1))}
            for case, rows in by_case.items()
        },
    }


def false_fail_bound(z: float) -> Tex:
    r"""The power of ten above the chance that a correct formula misses by more than ``z`` standard errors
    (two-sided, normal estimate).

    >>> false_fail_bound(5.0)
    '10^{-6}'
    """
    return Tex(rf"10^{{{math.ceil(math.log10(math.erfc(z / math.sqrt(2))))}}}")


def context(results: "Results") -> dict[str, Any]:
    """Values for ``templates/sections/initialization.tex.j2``."""
    c = results.config
    ratio_small = expr_json.parse(results.exprs["curvature_ratio"])  # 12 σ⁴: a polynomial in σ² alone
    (variance,) = ratio_small.free_symbols
    mean, se, theory = results.arrays["depth_mean"], results.arrays["depth_se"], theory_depth(results)
    mc = [
        {
            "item": m["name"].split(" ", 1)[0],  # "(a)", "(c,d)", ...
            "label": tex(m["label"]),
            "estimate": num(m["estimate"], 4),
            "exact": num(m["exact"], 4),
            "error": num(abs(m["estimate"] - m["exact"]), 2),
            "tolerance": num(results.tolerance_se * m["se"], 2),
            "n": integer(m["n"]),
            "passed": m["passed"],
        }
        for m in results.mc
    ]
    relu = {bias: [r for r in results.relu if r["bias"] == bias] for bias in ("scaled", "fixed")}
    return {
        "tex": {k: tex(latex(expr_json.parse(text))) for k, text in results.exprs.items()},
        "tex_inline": {  # running text (the abstract): short fractions slashed, M σ²/2 rather than a stacked fraction
            k: tex(latex(expr_json.parse(text), fold_short_frac=True)) for k, text in results.exprs.items()
        },
        "M": integer(c["M"]),
        "sigma2_single": num(c["sigma2_single"], 2),
        "n_single": integer(c["n_single"]),
        "depth": integer(c["depth"]),
        "n_networks": integer(c["n_networks"]),
        "n_inputs": integer(c["n_inputs"]),
        "width_e": integer(c["width_e"]),
        "n_functions": integer(c["n_functions"]),
        "n_shown": integer(c["n_shown"]),
        "x_max": num(c["x_max"], 2),
        "Z": num(results.tolerance_se, 1),
        "false_fail": false_fail_bound(results.tolerance_se),
        "error_bar_se": num(ERROR_BAR_SE, 1),
        "mc": mc,
        "all_passed": all(m["passed"] for m in results.mc),
        "depth_rows": [
            {
                "factor": factor_text(f),
                **dict(zip(("last_mc", "last_se"), value_se(mean[i, -1], se[i, -1]), strict=True)),
                "last_theory": num(theory[i, -1], 4),
            }
            for i, f in enumerate(c["depth_factors"])
        ],
        "tanh_rows": [
            {
                "sigma2": num(r["sigma2"], 2),
                **{
                    f"f{n}_{key}": text
                    for n in (1, 2)
                    for key, text in zip(
                        ("mc", "se"), value_se(r[f"moment_f{n}"], r[f"moment_se_f{n}"]), strict=True
                    )
                },
                "f1_exact": num(r["exact_f1"], 4),
                "f2_exact": num(r["exact_f2"], 4),
                "ratio": num(r["exact_f2"] / r["exact_f1"], 3),
                "ratio_small": num(float(ratio_small.subs(variance, r["sigma2"])), 3),
            }
            for r in results.tanh
        ],
        "tanh_ratio_trend": trend([r["exact_f2"] / r["exact_f1"] for r in results.tanh]),
        "ratio_range": {  # what the table shows, for the abstract: the exact ratio at both ends of the σ² grid
            end: {"sigma2": num(r["sigma2"], 2), "ratio": num(r["exact_f2"] / r["exact_f1"], 3)}
            for end, r in (("first", results.tanh[0]), ("last", results.tanh[-1]))
        },
        "bias_free": bias_free_moments(),
        "nonlinear": nonlinear_context(results),
        "tanh_confirmed": all(
            abs(r[f"moment_f{n}"] - r[f"exact_f{n}"]) <= results.tolerance_se * r[f"moment_se_f{n}"]
            for r in results.tanh
            for n in (1, 2)
        ),
        "bias_std_fixed": num(c["bias_std_fixed"], 2),
        "n_sigma2_depth": integer(len(c["depth_factors"])),
        "relu_rows": [
            {
                "sigma2": num(scaled["sigma2"], 2),
                **{
                    f"{r['bias']}_{key}": text
                    for r in (scaled, fixed)
                    for key, text in zip(
                        ("kinks", "kinks_se"), value_se(r["kinks"], r["kinks_se"]), strict=True
                    )
                },
                **{f"{r['bias']}_kinks_exact": num(r["kinks_exact"], 4) for r in (scaled, fixed)},
            }
            for scaled, fixed in zip(relu["scaled"], relu["fixed"], strict=True)
        ],
        "fixed_smallest": {  # (ii) at the smallest σ² simulated, against (i)
            "sigma2": num(relu["fixed"][0]["sigma2"], 2),
            "kinks": num(relu["fixed"][0]["kinks_exact"], 2),
            "scaled_kinks": num(relu["scaled"][0]["kinks_exact"], 2),
        },
        "relu_fixed_kinks_trend": trend([r["kinks_exact"] for r in relu["fixed"]]),
    }
