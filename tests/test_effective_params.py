"""SymPy's parameter counts and the Jacobian-rank check that confirms P_eff = P - K M."""

import pytest
import sympy as sp
import torch

from experiments import batched_mlp
from experiments import effective_params as ep
from experiments.jacobian_rank import balanced_point, jacobian_rank


@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
def test_param_count_matches_the_networks(hidden_layers):
    P = ep.param_count(hidden_layers, 8)
    for width in (1, 5, 20):
        assert P.subs(ep.M, width) == batched_mlp.n_params(width, hidden_layers)


def test_thresholds_solve_the_counts_exactly():
    P, P_eff = ep.param_count(2, 8), ep.effective_count(2, 8)
    assert sp.expand(P - P_eff) == 2 * ep.M
    for n in (100, 200):
        for count in (P, P_eff):
            pred = ep.predict(count, 8 * n)
            assert sp.simplify(count.subs(ep.M, pred.root) - 8 * n) == 0
            assert count.subs(ep.M, pred.width - 1) < 8 * n <= count.subs(ep.M, pred.width)
    assert (ep.predict(P, 800).width, ep.predict(P_eff, 800).width) == (21, 22)


def test_inverse_undoes_the_count():
    P = ep.param_count(2, 8)
    assert ep.inverse(P)(ep.as_function(P)(37.0)) == pytest.approx(37.0)


@pytest.mark.parametrize("width", [3, 6])
def test_rank_is_p_eff_at_a_balanced_point_and_a_wrong_formula_fails(width):
    X = torch.randn(300, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    P = batched_mlp.n_params(width, 2)
    model = balanced_point(width, 2, X, seed=1)
    right = jacobian_rank(model, X, P - 2 * width)
    assert right.rank == right.expected
    assert right.gap > 8  # the discarded singular values are rounding noise
    assert right.inactive_units == 0
    for wrong in (P, P - width, P - 3 * width):  # no symmetry, one per layer-width, one too many
        assert jacobian_rank(model, X, wrong).rank != wrong


def test_a_dead_unit_lowers_the_rank_below_p_eff():
    X = torch.randn(300, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    width = 5
    model = balanced_point(width, 2, X, seed=1)
    with torch.no_grad():
        model.biases[1][0, 0, 0] = -1e6  # the first unit of the second hidden layer never fires
    result = jacobian_rank(model, X, batched_mlp.n_params(width, 2) - 2 * width)
    assert result.inactive_units == 1
    assert result.rank == result.expected - (width + 8)  # its fan-in, bias and fan-out less its own rescaling
