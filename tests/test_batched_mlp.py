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


def test_flatten_as_model_and_unflatten_round_trip():
    model = batched_mlp.init([3, 7], [0, 1], hidden_layers=2, dtype=torch.float64)
    X, Y = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    flat = batched_mlp.flatten(model)
    assert flat.shape == (2, batched_mlp.n_params(7, 2))  # padded to the widest model
    direct = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    assert torch.allclose(batched_mlp.losses_and_grads(model, flat, X, Y)[0], direct, rtol=1e-12, atol=0)
    target = batched_mlp.init([3, 7], [5, 6], hidden_layers=2, dtype=torch.float64)
    batched_mlp.unflatten(model, batched_mlp.flatten(target))
    for a, b in zip(model.parameters(), target.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
def test_hand_written_gradient_equals_autograd(hidden_layers):
    # widths 3 and 7 padded to 7; one unit of the narrow model set dead so that ReLU's kink is hit
    model = batched_mlp.init([3, 7], [0, 1], hidden_layers=hidden_layers, dtype=torch.float64)
    with torch.no_grad():
        model.biases[0][0, 0, 0] = -100.0
    X, Y = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    loss, grad = batched_mlp.losses_and_grads(model, batched_mlp.flatten(model), X, Y)
    reference = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    expected = torch.autograd.grad(reference.sum(), model.parameters())
    assert torch.allclose(loss, reference, rtol=1e-12, atol=0)
    assert torch.allclose(grad, torch.cat([g.reshape(2, -1) for g in expected], 1), rtol=1e-12, atol=1e-15)
    assert grad.abs().sum() > 0
    padded = batched_mlp.as_model(model, grad)
    assert torch.all(padded.weights[0][0, :, 3:] == 0)  # the narrow model's padded units get nothing


def test_with_parameters_selects_and_repeats_models():
    model = batched_mlp.init([3, 9, 5], [0, 1, 2], hidden_layers=2, dtype=torch.float64)
    X = torch.randn(6, 8, dtype=torch.float64)
    rows = torch.tensor([2, 0, 2])
    picked = batched_mlp.with_parameters(model, [p.detach()[rows] for p in model.parameters()], rows)
    assert picked.widths == (5, 3, 5)
    out, picked_out = batched_mlp.forward(model, X), batched_mlp.forward(picked, X)
    for k, i in enumerate(rows.tolist()):
        assert torch.allclose(picked_out[k], out[i], rtol=1e-12, atol=1e-15)
    same = batched_mlp.with_parameters(model, model.parameters())
    assert same.widths == model.widths and same.mask is model.mask
