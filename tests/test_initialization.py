"""Exercise 3: closed forms, Monte Carlo comparisons (which must be able to fail), figures."""

from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import sympy as sp
import torch

from derivations import expr_json
from derivations import initialization as init
from derivations import initialization_montecarlo as montecarlo
from derivations import initialization_symbolic as sym
from derivations.initialization_symbolic import M, ell, s_b, sigma, sigma2, x_max
from derivations.notation import latex

matplotlib.use("Agg")

# small but not too small: with few narrow networks the deep-layer estimates are heavy-tailed
TINY = init.Config(
    M=32, n_single=4000, depth=4, n_networks=30, n_inputs=8, width_e=16, n_functions=200, n_shown=3, grid=51
)


@pytest.fixture(scope="module")
def derived():
    return sym.derive()


@pytest.fixture(scope="module")
def results():
    return init.run(TINY)


def test_closed_forms(derived):
    assert derived["mean"] == 0
    assert derived["var"] == M * sigma2
    assert sp.simplify(derived["layer_var"] - M * sigma2 * (M * sigma2 / 2) ** (ell - 1)) == 0
    assert derived["critical"] == 2 / M
    assert derived["small_f1"] == sigma2


def test_latex_of_key_equations(derived):
    assert latex(derived["var"]) == r"M \sigma^{2}"
    assert latex(derived["relu"]) == r"\frac{M \sigma^{2}}{2}"
    assert latex(derived["layer2_var"]) == r"\frac{M^{2} \sigma^{4}}{2}"
    assert latex(derived["layer_var_factored"]) == r"M \sigma^{2} \left(\frac{M \sigma^{2}}{2}\right)^{l - 1}"
    assert sp.simplify(derived["layer_var_factored"] - derived["layer_var"]) == 0
    assert latex(derived["critical"]) == r"\frac{2}{M}"
    assert latex(derived["unit_d2"]) == r"v w^{2} \psi''\left(w x + b\right)" == sym.UNIT_D2_TEX
    assert latex(derived["small_f2"]) == r"12 \sigma^{6}"
    assert latex(derived["moment_d1"]) == (
        r"\sigma^{2} \mathbb{E}\left[\left(1 - \tanh^{2}{\left(b \right)}\right)^{2}\right]"
    )
    # E[f''(0)²]/E[f'(0)²] ~ 12 σ⁴: the quadratic Taylor term against the linear one grows like σ²
    assert latex(derived["curvature_ratio"]) == r"12 \sigma^{4}"
    assert latex(derived["relu_slope"]) == r"\frac{\sigma^{2}}{2}"


@pytest.mark.slow
def test_symbolic_checks_pass_and_fail(derived):
    assert all(c.passed for c in sym.symbolic_checks(derived))
    wrong = {**derived, "layer_var": M * sigma2 * (M * sigma2) ** (ell - 1)}  # the ReLU halving forgotten
    failed = [c.name for c in sym.symbolic_checks(wrong) if not c.passed]
    assert failed == ["(c) Var[z^(l)]", "(d) critical sigma^2"]
    wrong = {**derived, "layer_var_factored": M * sigma2 * (M * sigma2) ** (ell - 1)}
    assert [c.name for c in sym.symbolic_checks(wrong) if not c.passed] == ["(c) printed form"]


def test_relu_kink_counts(derived):
    # (i) biases scaled with σ: the Cauchy law of -b/w has scale 1 whatever σ is
    assert derived["kinks_scaled"] == 2 * M * sp.atan(x_max) / sp.pi
    assert latex(derived["kinks_scaled"]) == r"\frac{2 M \operatorname{atan}{\left(x_{max} \right)}}{\pi}"
    # (ii) fixed bias variance: few kinks in range for small σ, all M for large σ
    assert derived["kinks_fixed_small"] == 2 * M * sigma * x_max / (sp.pi * s_b)
    assert derived["kinks_fixed_large"] == M
    assert sp.diff(derived["kinks_fixed"], sigma).subs({M: 10, x_max: 2, s_b: 1, sigma: 3}) > 0


def test_wrong_kink_law_fails_the_checks(derived):
    wrong = {
        **derived,
        "kinks_fixed": M * 2 * sp.atan(sigma * x_max / (2 * s_b)) / sp.pi,
    }  # Cauchy scale off by 2
    failed = [c.name for c in sym.symbolic_checks(wrong) if not c.passed]
    assert failed == ["(e) P(ReLU kink in [-x_max, x_max])"]
    sim = montecarlo.simulate(TINY)
    mc = [c.check() for c in montecarlo.comparisons(TINY, sim, wrong)]
    assert any(not c.passed for c in mc if "b fixed" in c.name)
    assert all(c.passed for c in mc if "b scaled" in c.name)


def test_value_se_rounds_both_to_the_error_digits():
    from derivations import initialization_plot as plot

    assert plot.value_se(194.27, 8.39) == (r"\num{194.3}", r"\num{8.4}")
    assert plot.value_se(306.2, 28.7) == (r"\num{306}", r"\num{29}")
    assert plot.value_se(0.7021, 0.0291) == (r"\num{0.702}", r"\num{0.029}")
    assert plot.value_se(1189.4, 191.2) == (r"\num{1190}", r"\num{190}")
    assert plot.value_se(1.734e-6, 1.23e-7) == (r"\num{1.73e-6}", r"\num{0.12e-6}")
    assert plot.value_se(2.094e6, 1.31e5) == (r"\num{2.09e6}", r"\num{0.13e6}")


def test_relu_units_are_homogeneous():
    gen = torch.Generator().manual_seed(3)
    w_, b_, v_ = montecarlo.random_units(TINY, 1.0, 1.0, gen)
    _, f1 = montecarlo.on_grid(TINY, (w_, b_, v_), torch.relu)
    _, f9 = montecarlo.on_grid(TINY, (3 * w_, 3 * b_, v_), torch.relu)  # σ² = 9 with the same draws
    assert torch.allclose(f9, 3 * f1, rtol=1e-12, atol=1e-12)


def test_only_the_shown_functions_are_evaluated_on_the_grid():
    gen = torch.Generator().manual_seed(3)
    relu = montecarlo.relu_functions(TINY, 1.0, 1.0, gen)
    assert relu["f"].shape == (TINY.n_shown, TINY.grid)
    assert relu["kinks"].shape == (TINY.n_functions,)  # the estimates use every network
    gen = torch.Generator().manual_seed(3)
    units = montecarlo.random_units(TINY, 1.0, 1.0, gen)
    _, every = montecarlo.on_grid(TINY, units, torch.relu)
    assert torch.equal(relu["f"], every[: TINY.n_shown])  # the first networks, as if all were evaluated


def test_quadrature_matches_closed_form_at_small_sigma():
    # E[f'(0)²] = σ² E[sech⁴ b] → σ² (1 - 2σ² + ...) as σ² → 0
    assert montecarlo.derivative_moment_value(1, 1e-4) == pytest.approx(1e-4 * (1 - 2e-4), rel=1e-6)


def test_monte_carlo_comparisons_pass(results):
    assert all(m["passed"] for m in results.mc)
    # (a), (b); two layers per σ² factor; ReLU kinks for two bias parameterizations and tanh f', f'' per σ²
    assert len(results.mc) == 3 + 2 * len(TINY.depth_factors) + 4 * len(TINY.sigma2_e)


def test_monte_carlo_detects_a_wrong_formula(derived):
    sim = montecarlo.simulate(TINY)
    wrong = {**derived, "relu": derived["var"] / 3, "layer_var": derived["layer_var"] * 1.2}
    failed = {
        c.name.split(",")[0]
        for c in (x.check() for x in montecarlo.comparisons(TINY, sim, wrong))
        if not c.passed
    }
    assert "(b) E[ReLU(z)^2]" in failed
    assert "(c" in {name[:2] for name in failed}


def test_tolerance_scales_with_sample_size():
    small = montecarlo.single_neuron(TINY, torch.Generator().manual_seed(0))
    large = montecarlo.single_neuron(
        replace(TINY, n_single=16 * TINY.n_single), torch.Generator().manual_seed(0)
    )
    assert large["var"][1] == pytest.approx(small["var"][1] / 4, rel=0.2)


def test_same_seed_same_results(results):
    again = init.run(TINY)
    assert np.array_equal(again.arrays["depth_mean"], results.arrays["depth_mean"])


def test_results_carry_expressions_not_latex(results, derived):
    # the present module prints; the stored text reads back as expressions that print as the derived ones
    assert results.exprs.keys() == derived.keys()
    assert all(latex(expr_json.parse(results.exprs[k])) == latex(e) for k, e in derived.items())
    assert not any("\\" in text for text in results.exprs.values())


def test_save_load_roundtrip(results, tmp_path):
    init.save(results, tmp_path)
    loaded = init.load(tmp_path)
    assert loaded.mc == results.mc
    assert loaded.config == results.config
    assert np.array_equal(loaded.arrays["shown_f"], results.arrays["shown_f"])


def test_figures(results):
    from derivations import initialization_plot as plot

    fig = plot.plot_variance_depth(results)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        r"$\sigma^2 = 0.5\cdot 2/M$",
        r"$\sigma^2 = 1\cdot 2/M$",
        r"$\sigma^2 = 2\cdot 2/M$",
        "recursion (exact)",
    ]
    fig = plot.plot_random_functions(results)
    assert len(fig.axes) == len(plot.ROWS) * len(TINY.sigma2_e)
    assert all(len(a.lines) == TINY.n_shown for a in fig.axes)
    assert fig.axes[0].get_title() == r"$\sigma^2=0.1$"
    assert [fig.axes[i * len(TINY.sigma2_e)].get_ylabel().split("\n")[0] for i in range(3)] == [
        "ReLU (i)",
        "ReLU (ii)",
        r"$\tanh$",
    ]
    tanh_last = [r["mean"] for r in results.nonlinearity if r["case"] == "tanh"][-1]
    assert [t.get_text() for t in fig.axes[-1].texts] == [f"{tanh_last:.2f}"]  # each panel: its case's mean


def test_context_orders_the_taylor_ratio(results):
    from derivations import initialization_plot as plot

    ctx = plot.context(results)
    assert ctx["tanh_ratio_trend"] == "increasing"
    assert ctx["tanh_confirmed"]
    assert ctx["relu_fixed_kinks_trend"] == "increasing"
    assert [r["sigma2"] for r in ctx["tanh_rows"]] == [r"\num{0.10}", r"\num{1.0}", r"\num{10}", r"\num{100}"]
    assert [r["factor"] for r in ctx["depth_rows"]] == [
        r"\num{0.5}",
        r"\num{1}",
        r"\num{2}",
    ]  # as in the figure
    assert plot.trend([3.0, 2.0, 1.0]) == "decreasing"
    assert plot.trend([1.0, 3.0, 2.0]) == "mixed"


@pytest.mark.parametrize(
    ("trend", "confirmed", "kinks", "words"),
    [
        (
            "increasing",
            True,
            "increasing",
            ["ratio increases with", "within", "they leave the inputs as $\\sigma^2$ shrinks"],
        ),
        ("decreasing", True, "increasing", ["ratio decreases\nwith"]),
        ("mixed", False, "mixed", ["not monotone", "more than", "does not grow"]),
    ],
    ids=["increasing", "decreasing", "mixed"],
)
def test_every_taylor_verdict_renders_its_words(results, trend, confirmed, kinks, words):
    from derivations import initialization_plot as plot
    from report.render import render

    ctx = {
        **plot.context(results),
        "tanh_ratio_trend": trend,
        "tanh_confirmed": confirmed,
        "relu_fixed_kinks_trend": kinks,
    }
    section = render("sections/initialization.tex.j2", {"initialization": ctx, "figure_path": str})
    answer = section[section.index("(e)") :]
    assert all(w in answer for w in words)


DIRECTION_WORDS = {
    "increasing": "smaller $\\sigma^2$ gives smoother",
    "decreasing": "larger $\\sigma^2$ gives smoother",
    "unchanged": "$\\sigma^2$ does not change the smoothness",
}


@pytest.mark.parametrize("verdict", DIRECTION_WORDS)
@pytest.mark.parametrize("case", ["relu_none", "relu_scaled", "relu_fixed", "tanh"])
def test_every_nonlinearity_verdict_renders_its_words(results, case, verdict):
    from derivations import initialization_plot as plot
    from report.render import render

    ctx = plot.context(results)
    other = "increasing" if verdict == "unchanged" else "unchanged"  # every other case gets other words
    others = dict.fromkeys(ctx["nonlinear"]["trend"], other)
    ctx["nonlinear"] = {**ctx["nonlinear"], "trend": {**others, case: verdict}}
    section = render("sections/initialization.tex.j2", {"initialization": ctx, "figure_path": str})
    answer = section[section.index("(e)") : section.index("Smoothness is measured")]
    assert answer.count(DIRECTION_WORDS[verdict]) == 1
    brief = render("answers/initialization.tex.j2", {"initialization": ctx})
    assert (DIRECTION_WORDS[verdict] in brief) == (case in ("relu_none", "tanh"))


def test_the_measured_directions(results):
    # the exercise's bias-free ReLU and ReLU with scaled biases: σ only scales f; tanh and fixed biases: smaller is smoother
    from derivations import initialization_plot as plot

    assert plot.nonlinear_context(results)["trend"] == {
        "relu_none": "unchanged",
        "relu_scaled": "unchanged",
        "relu_fixed": "increasing",
        "tanh": "increasing",
    }


def test_change_needs_more_than_z_standard_errors():
    from derivations import initialization_plot as plot

    low, high = {"mean": 0.2, "se": 0.01}, {"mean": 0.3, "se": 0.01}
    assert plot.change(low, high, 5.0) == "increasing"
    assert plot.change(high, low, 5.0) == "decreasing"
    assert plot.change(low, high, 8.0) == "unchanged"  # 0.1 < 8 · 0.0141


def test_nonlinearity_of_lines_kinks_and_scaled_functions():
    # f = a x + c|x| on [-1, 1]: the line explains a²/3 of the variance, |x| adds c²/12 that no line explains
    cfg = replace(TINY, x_max=1.0, grid_measure=2001)
    w = torch.tensor([[1.0, -1.0], [1.0, -1.0], [2.0, 0.5]], dtype=torch.float64)
    v = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, -1.0]], dtype=torch.float64)
    b = torch.zeros_like(w)
    relu = montecarlo.nonlinearity(cfg, (w, b, v), torch.relu)  # x⁺ (a = c = 1/2), |x|, 6x⁺ - x⁻/2 ...
    assert relu[0].item() == pytest.approx((1 / 48) / (1 / 12 + 1 / 48), abs=1e-3)
    assert relu[1].item() == pytest.approx(
        1.0, abs=1e-9
    )  # |x| is orthogonal to every line on a symmetric range
    scaled = montecarlo.nonlinearity(cfg, (7 * w, b, v), torch.relu)
    assert torch.allclose(scaled, relu)  # ReLU's homogeneity: σ does not change the measure
    line = montecarlo.nonlinearity(cfg, (w[::2], b[::2] - 10, v[::2]), lambda u: u)  # identity: f is a line
    assert line.abs().max().item() < 1e-12


def test_bias_free_tanh_moments_match_finite_differences_of_random_networks():
    # f(x) = Σ v_j tanh(w_j x): f''(0) vanishes, and E f'(0)², E f'''(0)² are the printed σ² monomials
    from derivations import initialization_plot as plot

    moments = plot.bias_free_moments()
    assert (moments["psi2_zero"], moments["f1"], moments["f3"]) == ("0", r"\sigma^{2}", r"60 \sigma^{6}")
    assert moments["ratio"] == r"60 \sigma^{4}"
    rng = np.random.default_rng(0)
    sigma2, m, n, h = 0.5, 4, 200_000, 1e-2
    w = rng.normal(0, np.sqrt(sigma2), (n, m))
    v = rng.normal(0, np.sqrt(1 / m), (n, m))

    def f(x: float) -> np.ndarray:
        return (v * np.tanh(w * x)).sum(axis=1)

    d1 = (f(h) - f(-h)) / (2 * h)
    d2 = (f(h) - 2 * f(0.0) + f(-h)) / h**2
    d3 = (f(2 * h) - 2 * f(h) + 2 * f(-h) - f(-2 * h)) / (2 * h**3)
    assert np.abs(d2).max() < 1e-9  # odd in x for every draw
    for values, expected in ((d1**2, sigma2), (d3**2, 60 * sigma2**3)):
        assert abs(values.mean() - expected) < 5 * values.std() / np.sqrt(n) + 1e-3 * expected


def test_the_abstract_gives_the_nonlinearity_the_table_shows(results):
    from derivations import initialization_plot as plot
    from report.render import render

    ctx = plot.context(results)
    brief = render("answers/initialization.tex.j2", {"initialization": ctx})
    rows = dict(zip(plot.NONLINEAR_CASES, ctx["nonlinear"]["rows"], strict=True))
    for case in ("relu_none", "tanh"):
        for end, cell in (("first", rows[case]["cells"][0]), ("last", rows[case]["cells"][-1])):
            assert ctx["nonlinear"]["range"][case][end] in brief
            assert float(ctx["nonlinear"]["range"][case][end][5:-1]) == pytest.approx(
                float(cell["mean"][5:-1]), abs=0.006
            )
    assert "\\frac" not in brief  # running text: no stacked fractions


def test_the_false_failure_bound_follows_the_tolerance():
    from derivations import initialization_plot as plot

    assert plot.false_fail_bound(5.0) == "10^{-6}"  # P(|Z| > 5) = 5.7e-7
    assert plot.false_fail_bound(3.0) == "10^{-2}"  # P(|Z| > 3) = 2.7e-3
