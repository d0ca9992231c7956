"""Many fully connected ReLU networks trained as one batched computation.

All models share the input and output size and the number of hidden layers; each model
``i`` has its own hidden width ``widths[i]`` (the same in every hidden layer).  Widths
are padded to the largest one and the padded units are masked to zero after every
activation, so they receive no gradient and never influence the output: one model of a
batch behaves exactly like an ``nn.Sequential`` of its true width (tested in
``tests/test_batched_mlp.py``).

Parameters are plain tensors with a leading model axis, e.g. a hidden weight has shape
(n_models, M_max, M_max), and the total loss is the *sum* of the per-model losses.  Any
optimizer that acts elementwise (SGD, Adam) therefore updates every model exactly as if
it were trained alone.  :func:`flatten` stacks each model's parameters into one row and
:func:`as_model` / :func:`losses_and_grads` evaluate the models at such rows, for optimizers that work
on flat vectors (:mod:`experiments.optimizers`).
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lab.device import device  # also used as batched_mlp.device() by the experiments


@dataclass
class BatchedMLP:
    weights: list[torch.Tensor]  # layer l: (n_models, fan_in_max, fan_out_max)
    biases: list[torch.Tensor]  # layer l: (n_models, 1, fan_out_max)
    mask: torch.Tensor  # (n_models, 1, M_max): 1 for the real hidden units of each model
    widths: tuple[int, ...]

    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    @property
    def n_models(self) -> int:
        return len(self.widths)


def n_params(width: int | np.ndarray, hidden_layers: int, d_in: int = 8, d_out: int = 8) -> int | np.ndarray:
    """Number of weights and biases of one model of hidden width ``width`` (elementwise for an array)."""
    sizes = [d_in, *[width] * hidden_layers, d_out]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def init(
    widths: Sequence[int],
    seeds: Sequence[int],
    hidden_layers: int,
    d_in: int = 8,
    d_out: int = 8,
    dtype: torch.dtype = torch.float32,
    dev: torch.device | None = None,
) -> BatchedMLP:
    """Initialise one model per ``(width, seed)`` pair like ``nn.Linear`` does.

    Model ``i`` draws its weights from its own generator seeded with ``seeds[i]``, in the
    same order and distribution as ``nn.Linear.reset_parameters`` (uniform on
    +-1/sqrt(fan_in) for weights and biases), so its initialisation does not depend on
    which other models share the batch.
    """
    dev = dev or device()
    m_max = max(widths)
    padded = [d_in, *[m_max] * hidden_layers, d_out]
    weights = [torch.zeros(len(widths), a, b, dtype=dtype) for a, b in itertools.pairwise(padded)]
    biases = [torch.zeros(len(widths), 1, b, dtype=dtype) for b in padded[1:]]
    for i, (width, seed) in enumerate(zip(widths, seeds, strict=True)):
        gen = torch.Generator().manual_seed(seed)
        sizes = [d_in, *[width] * hidden_layers, d_out]
        for layer, (a, b) in enumerate(itertools.pairwise(sizes)):
            bound = 1 / a**0.5
            # nn.Linear's layout (out, in) and draw order: weight, then bias
            W = (torch.rand(b, a, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            bias = (torch.rand(b, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            weights[layer][i, :a, :b] = W.T.to(dtype)
            biases[layer][i, 0, :b] = bias.to(dtype)
    mask = torch.zeros(len(widths), 1, m_max, dtype=dtype)
    for i, width in enumerate(widths):
        mask[i, 0, :width] = 1
    return BatchedMLP(
        weights=[w.to(dev).requires_grad_() for w in weights],
        biases=[b.to(dev).requires_grad_() for b in biases],
        mask=mask.to(dev),
        widths=tuple(widths),
    )


def forward(model: BatchedMLP, X: torch.Tensor) -> torch.Tensor:
    """Outputs of every model: X is (batch, d_in) shared or (n_models, batch, d_in)."""
    h = X
    last = len(model.weights) - 1
    for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        h = torch.matmul(h, W) + b  # (n_models, batch, fan_out_max)
        if layer < last:
            h = torch.relu(h) * model.mask
    return h


def with_parameters(
    model: BatchedMLP, params: Sequence[torch.Tensor], rows: torch.Tensor | None = None
) -> BatchedMLP:
    """``model``'s architecture carrying ``params`` (in :meth:`BatchedMLP.parameters` order).

    Row ``k`` of every tensor of ``params`` is a model of the width of model ``rows[k]`` of
    ``model`` (default: row ``k``), so a subset, a repetition or a reordering of the models
    is ``with_parameters(model, [p[rows] for p in model.parameters()], rows)``.
    """
    layers = len(model.weights)
    mask, widths = model.mask, model.widths
    if rows is not None:
        mask, widths = mask[rows], tuple(widths[i] for i in rows.tolist())
    return BatchedMLP(list(params[:layers]), list(params[layers:]), mask, widths)


def flatten(model: BatchedMLP) -> torch.Tensor:
    """All parameters of each model as one row: (n_models, n_params_max), a detached copy."""
    return torch.cat([p.detach().reshape(model.n_models, -1) for p in model.parameters()], 1)


def as_model(model: BatchedMLP, flat: torch.Tensor) -> BatchedMLP:
    """``model`` with its parameters replaced by views into ``flat`` (gradients flow to ``flat``)."""
    params = model.parameters()
    chunks = flat.split([p[0].numel() for p in params], 1)
    return with_parameters(model, [c.view(p.shape) for c, p in zip(chunks, params, strict=True)])


def unflatten(model: BatchedMLP, flat: torch.Tensor) -> None:
    """Copy the rows of ``flat`` back into the parameters of ``model``."""
    with torch.no_grad():
        for p, trained in zip(model.parameters(), as_model(model, flat).parameters(), strict=True):
            p.copy_(trained)


def losses_and_grads(
    model: BatchedMLP, flat: torch.Tensor, X: torch.Tensor, Y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training MSE of every model at the parameters ``flat``, (n_models,), and its gradient, like ``flat``.

    ``X`` (N, d_in) and ``Y`` (N, d_out) are shared by all models.  Backpropagation written out
    (checked against autograd in ``tests/test_batched_mlp.py``): a full-batch optimizer calls this
    once per step on small networks, where autograd's bookkeeping costs as much as the arithmetic.
    ReLU's derivative at 0 is 0, as in autograd.  The activations are held feature-major,
    (n_models, width, N), so that every product runs along the N samples, and the first layer,
    whose input all models share, is one matrix product for the whole batch (measured in
    ``benchmarks/double_descent.py``).
    """
    params = as_model(model, flat)
    n, (W, b) = len(flat), (params.weights, params.biases)
    width = W[0].shape[2]
    h = torch.addmm(b[0].reshape(n * width, 1), W[0].mT.reshape(n * width, -1), X.T).view(n, width, -1)
    activations = [h.relu_()]  # the inputs of layers 1, 2, ...: (n, width, N)
    for layer in range(1, len(W)):
        h = torch.baddbmm(b[layer].mT, W[layer].mT, activations[-1])
        if layer < len(W) - 1:
            activations.append(h.relu_())
    residual = (h - Y.T).flatten(1)  # (n, d_out N)
    loss = torch.linalg.vecdot(residual, residual) / residual.shape[1]
    delta = residual.mul_(2 / residual.shape[1]).view(h.shape)  # dJ/d(output), (n, d_out, N)
    weight_grads, bias_grads = [], []
    for layer in range(len(W) - 1, 0, -1):
        weight_grads.append(activations[layer - 1] @ delta.mT)
        bias_grads.append(delta.sum(-1))
        delta = torch.ops.aten.threshold_backward(W[layer] @ delta, activations[layer - 1], 0)
    weight_grads.append(torch.matmul(X.T, delta.mT))
    bias_grads.append(delta.sum(-1))
    grads = [*reversed(weight_grads), *reversed(bias_grads)]
    grad = torch.cat([g.reshape(n, -1) for g in grads], 1)
    return loss, grad


def mse(pred: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Per-model MSE averaged over samples and outputs: shape (n_models,)."""
    return ((pred - Y) ** 2).mean(dim=(-2, -1))


def to_sequential(model: BatchedMLP, i: int) -> nn.Sequential:
    """Model ``i`` as a plain ``nn.Sequential`` of its true width (a copy)."""
    width = model.widths[i]
    layers: list[nn.Module] = []
    last = len(model.weights) - 1
    for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
        a = W.shape[1] if layer == 0 else width
        c = W.shape[2] if layer == last else width
        linear = nn.Linear(a, c, dtype=W.dtype, device=W.device)
        with torch.no_grad():
            linear.weight.copy_(W[i, :a, :c].T)
            linear.bias.copy_(b[i, 0, :c])
        layers += [linear] if layer == last else [linear, nn.ReLU()]
    return nn.Sequential(*layers)
