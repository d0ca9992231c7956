"""Exercise 2: backward formulas, operation counts and their checks (which must be able to fail)."""

import operator

import pytest
import sympy as sp
import torch

from derivations import mlp_backprop as mb
from derivations import mlp_backprop_numerics as numerics
from derivations import mlp_backprop_plot as plot
from derivations import mlp_backprop_symbolic as sym
from derivations.mlp_backprop_symbolic import I, K, L, O
from derivations.notation import latex


def test_counts_in_closed_form():
    t = sym.totals(sym.count_operations(sym.layer_blocks()))
    assert sp.expand(t["forward", "product"] - (I * L + (K - 1) * L**2 + L * O)) == 0
    assert sp.expand(t["backward", "product"] - (I * L + 2 * (K - 1) * L**2 + 2 * L * O)) == 0
    assert sym.big_o(t["forward", "product"] + t["forward", "elementwise"]) == I * L + K * L**2 + L * O


def test_counts_match_a_loop_over_concrete_layers():
    for sizes in [(3, 1, 4, 2), (7, 5, 3, 2)]:
        layers = sym.layer_sizes(*sizes)
        macs = sum(fi * fo for fi, fo, _ in layers)
        assert numerics.product_counts(*sizes) == {
            "forward": macs,
            "backward": 2 * macs - layers[0][0] * layers[0][1],
        }


def test_literal_backward_matches_autograd():
    for activation in numerics.ACTIVATIONS:
        assert numerics.autograd_error((3, 2, 4, 2), activation, seed=1) < 1e-12


def test_half_squared_error_scaling_is_o_over_two():
    assert numerics.autograd_error((3, 2, 4, 5), "tanh", seed=2, loss="half_sum") < 1e-12


def test_backward_without_the_mse_factor_fails_autograd(monkeypatch):
    # δ_{K+1} = e (the ½‖e‖² convention) instead of (2/O) e: wrong for the MSE whenever O ≠ 2
    right = sym.backward
    monkeypatch.setattr(
        numerics, "backward", lambda W, a, h, e, dpsi: right(W, a, h, e * e.shape[0] / 2, dpsi)
    )
    assert numerics.autograd_error((3, 2, 4, 5), "tanh", seed=2) > 1e-3


def test_symbolic_generic_psi():
    assert sym.symbolic_error((1, 1, 2, 1)) == 0


def test_wrong_backward_fails_checks(monkeypatch):
    right = sym.backward

    def missing_dpsi(W, a, h, e, dpsi, hadamard=operator.mul):
        return right(
            W,
            a,
            h,
            e,
            lambda v: v * 0 + 1 if isinstance(v, torch.Tensor) else v.applyfunc(lambda _: 1),
            hadamard,
        )

    monkeypatch.setattr(numerics, "backward", missing_dpsi)  # the autograd comparison's
    monkeypatch.setattr(sym, "backward", missing_dpsi)  # the sympy.diff comparison's
    failed = [c.name for c in numerics.formula_checks() if not c.passed]
    assert any("tanh" in n for n in failed)
    assert any("generic psi" in n for n in failed)


def test_wrong_count_fails_flop_check():
    def off_by_one(*sizes):
        return {s: v + 1 for s, v in numerics.product_counts(*sizes).items()}

    checks = numerics.flop_checks(((3, 1, 4, 2),), off_by_one)
    assert [c.passed for c in checks] == [False, False]
    assert all(c.passed for c in numerics.flop_checks(((3, 1, 4, 2),), numerics.product_counts))


def test_equations_latex():
    eqs = plot.equations()
    forward = {lhs: latex(rhs, order="none") for lhs, rhs, _, _ in eqs["forward"]}
    backward = [(lhs, latex(rhs), plot.size_tex(m)) for lhs, rhs, m, _ in eqs["backward"]]
    assert forward["a_{k}"] == r"W_{k} h_{k - 1} + b_{k}"
    assert forward["J"] == r"\frac{1}{O} e^{\top} e"
    assert backward[0] == (r"\delta_{K + 1}", r"\frac{2}{O} e", "O")
    assert backward[3] == (
        r"\delta_{k}",
        r"{\psi}'\left(a_{k}\right) \odot \left(W_{k + 1}^{\top} \delta_{k + 1}\right)",
        "L",
    )
    assert backward[-2] == (r"\nabla_{W_{1}} J", r"\delta_{1} h_{0}^{\top}", r"L \times I")
    assert forward["e"] == r"\hat{y} - y"
    assert [where for *_, where in eqs["backward"]][3] == r"k = K, \dots, 2"  # in the order computed


def test_backward_rows_of_the_count_table_follow_equation_b():
    # δ_k = ψ'(a_k) ⊙ W_{k+1}ᵀ δ_{k+1}: the product is listed under k, the next layer's W, and ψ'(a_k) under k
    rows = {
        (op.layers, op.what): (op.each, op.times)
        for op in sym.count_operations(sym.layer_blocks(), latex)
        if op.stage == "backward"
    }
    assert rows[("K", r"W_{K + 1}^{\top} \delta_{K + 1}")] == (L * O, 1)
    assert rows[(r"1,\dots,K - 1", r"W_{k + 1}^{\top} \delta_{k + 1}")] == (L**2, K - 1)
    assert rows[(r"1,\dots,K", r"\psi'(a_{k}) \odot (\cdot)")] == (2 * L, K)
    assert rows[("K + 1", r"\delta_{K+1} = \tfrac{2}{O} e")] == (O, 1)
    assert not any("a_{k - 1}" in what for _, what in rows)


def test_backward_forward_ratio_between_one_and_two():
    totals = plot.derived_rows()["totals"]
    assert totals["ratio_I_limit"] == "1"
    assert totals["ratio_L_limit"] == "2"


def test_run_save_load_and_context(tmp_path):
    results = mb.run(mb.PROFILES["quick"])
    mb.save(results, tmp_path)
    assert mb.load(tmp_path) == results
    assert all(r["counter_forward"] == 2 * r["derived_forward"] for r in results.flops)
    ctx = plot.context(results)
    assert ctx["flops_all_twice"] is True
    assert ctx["pass_ratio_min"] == r"\num{1.40}"  # (I, K, L, O) = (3, 1, 4, 2): 28 / 20
    assert plot.FIGURES == {}


@pytest.mark.parametrize(
    ("backward_O", "words"),
    [("I L + K L^{2} + L O", "both are"), ("K L^{3}", r"and $\mathcal O(K L^{3})$")],
    ids=["same-order", "different-order"],
)
def test_the_abstract_names_the_orders_of_both_passes(backward_O, words):
    from lab.fmt import tex
    from report.render import render

    totals = {
        "forward_product": tex("I L"),
        "backward_product": tex("2 I L"),
        "forward_O": tex("I L + K L^{2} + L O"),
        "backward_O": tex(backward_O),
    }
    assert words in render("answers/mlp_backprop.tex.j2", {"mlp_backprop": {"totals": totals}})
