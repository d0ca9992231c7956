"""The batched MLP behaves like separate nn.Sequential models of their true widths."""

import pytest
import torch

from experiments import batched_mlp


@pytest.mark.parametrize(("width", "expected"), [(1, 27), (10, 288), (20, 768), (100, 11_808)])
def test_n_params_two_hidden_layers(width, expected):
    assert batched_mlp.n_params(width, hidden_layers=2) == expected == width**2 + 18 * width + 8


def test_n_params_matches_nn_sequential():
    model = batched_mlp.init([7], [0], hidden_layers=3, dtype=torch.float64)
    net = batched_mlp.to_sequential(model, 0)
    assert batched_mlp.n_params(7, hidden_layers=3) == sum(p.numel() for p in net.parameters())


def test_forward_and_gradients_match_separate_models():
    widths, seeds = [3, 9, 5], [0, 1, 2]
    model = batched_mlp.init(widths, seeds, hidden_layers=2, dtype=torch.float64)
    X, Y = torch.randn(11, 8, dtype=torch.float64), torch.randn(11, 8, dtype=torch.float64)
    losses = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    grads = torch.autograd.grad(losses.sum(), model.weights)
    for i, width in enumerate(widths):
        net = batched_mlp.to_sequential(model, i)
        loss = torch.nn.functional.mse_loss(net(X), Y)
        assert losses[i].item() == pytest.approx(loss.item(), rel=1e-12)
        loss.backward()
        assert torch.allclose(grads[1][i, :width, :width], net[2].weight.grad.T)
        assert torch.all(grads[1][i, width:] == 0)  # padded units get no gradient


def test_init_does_not_depend_on_the_batch():
    alone = batched_mlp.to_sequential(batched_mlp.init([6], [4], hidden_layers=2), 0)
    batched = batched_mlp.to_sequential(batched_mlp.init([12, 6], [1, 4], hidden_layers=2), 1)
    for a, b in zip(alone.parameters(), batched.parameters(), strict=True):
        assert torch.equal(a, b)
