"""The vectorised gradient statistics against a plain autograd loop over mini-batches and random partitions."""

import itertools

import pytest
import torch
from torch import nn

from experiments import batched_mlp
from experiments.grad_stats import expected_variation, gradient_stats

N, B, DIM = 12, 4, 3


def _setup() -> tuple[batched_mlp.BatchedMLP, torch.Tensor, torch.Tensor]:
    model = batched_mlp.init(
        [5, 7, 6],
        [0, 1, 2],
        hidden_layers=2,
        d_in=DIM,
        d_out=DIM,
        dtype=torch.float64,
        dev=torch.device("cpu"),
    )
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(3, N, DIM, generator=gen, dtype=torch.float64)  # (n_models, N, dim)
    Y = torch.randn(3, N, DIM, generator=gen, dtype=torch.float64)
    return model, X, Y


def _flat_grad(net: nn.Sequential, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    net.zero_grad()
    nn.functional.mse_loss(net(X), Y).backward()
    return torch.cat([p.grad.flatten() for p in net.parameters()])


def test_matches_autograd_loop_over_mini_batches():
    model, X, Y = _setup()
    G, V = gradient_stats(model, X, Y, batch_size=B)
    for i in range(3):
        net = batched_mlp.to_sequential(model, i)
        full = _flat_grad(net, X[i], Y[i])
        variation = [
            (_flat_grad(net, X[i, b : b + B], Y[i, b : b + B]) - full).square().sum() for b in range(0, N, B)
        ]
        assert G[i].item() == pytest.approx(full.square().sum().item(), rel=1e-10)
        assert V[i].item() == pytest.approx(torch.stack(variation).mean().item(), rel=1e-10)


def test_single_batch_has_no_variation():
    model, X, Y = _setup()
    G_full, V_full = gradient_stats(model, X, Y, batch_size=N)
    G, _ = gradient_stats(model, X, Y, batch_size=B)
    assert V_full.abs().max().item() < 1e-25
    torch.testing.assert_close(G_full, G)


def test_rejects_batch_size_not_dividing_n():
    model, X, Y = _setup()
    with pytest.raises(ValueError, match="does not divide"):
        gradient_stats(model, X, Y, batch_size=5)


def test_expected_variation_is_the_mean_over_all_b_subsets():
    model, X, Y = _setup()
    n, b = 6, 2
    X, Y = X[:, :n], Y[:, :n]
    G, V, V_fixed = expected_variation(model, X, Y, batch_size=b, chunk=2)
    G_ref, V_fixed_ref = gradient_stats(model, X, Y, batch_size=b)
    torch.testing.assert_close(G, G_ref, rtol=1e-10, atol=0)
    torch.testing.assert_close(V_fixed, V_fixed_ref, rtol=1e-10, atol=0)
    for i in range(3):
        net = batched_mlp.to_sequential(model, i)
        full = _flat_grad(net, X[i], Y[i])
        subsets = [
            list(s) for s in itertools.combinations(range(n), b)
        ]  # each mini-batch of a random partition
        spread = [(_flat_grad(net, X[i, s], Y[i, s]) - full).square().sum() for s in subsets]
        assert V[i].item() == pytest.approx(torch.stack(spread).mean().item(), rel=1e-10)


def test_expected_variation_matches_reshuffled_partitions():
    model, X, Y = _setup()
    _, V, _ = expected_variation(model, X, Y, batch_size=B)
    gen = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(400):
        order = torch.rand(N, generator=gen).argsort()
        draws.append(gradient_stats(model, X[:, order], Y[:, order], batch_size=B)[1])
    draws = torch.stack(draws)  # (n_draws, n_models)
    se = draws.std(0) / len(draws) ** 0.5
    assert ((draws.mean(0) - V).abs() < 4 * se).all()
