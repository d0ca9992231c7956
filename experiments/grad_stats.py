"""Gradient norm and mini-batch gradient variation of many MLPs at once (assignment 2(c)).

For model ``i`` of a :class:`~experiments.batched_mlp.BatchedMLP` with parameters θ, its
training set of N samples split into N_b = N / B consecutive mini-batches, and J the
training MSE (a mean over samples and outputs, as in training), this module computes

    G(θ)     = ‖∇J(θ)‖²                              (full-data gradient norm),
    V_fix(θ) = (1/N_b) Σ_b ‖∇J_b(θ) − ∇J(θ)‖²        (mini-batch variation of one partition),
    V(θ)     = E over random partitions of V_fix(θ)  (what the report calls V),

with the norms taken over all weights and biases.  Both gradients are means over their
samples, so ∇J = (1/N_b) Σ_b ∇J_b and G + V_fix = (1/N_b) Σ_b ‖∇J_b‖²; its expectation
G + V is the quantity SGD's implicit regulariser penalises (Smith et al., ICLR 2021).

Every per-model, per-mini-batch gradient comes from one batched backward pass: each
(model, mini-batch) pair becomes a model of its own, with its own copy of the parameters,
so the gradient of the summed losses with respect to the copies holds every mini-batch
gradient.  (``torch.func.vmap`` over ``grad`` computes the same, but its first call
imports ``torch._dynamo``, which takes several seconds.)  Tested against a plain autograd loop over ``nn.Sequential`` copies in
``tests/test_grad_stats.py``.  Library code only; nothing is written.
"""

import torch

from experiments import batched_mlp


def _mean_gradients(model: batched_mlp.BatchedMLP, X: torch.Tensor, Y: torch.Tensor) -> list[torch.Tensor]:
    """Gradient of each model's MSE on its own samples X[i], Y[i]: (n_models, *param_shape) each."""
    params = [p.detach().requires_grad_() for p in model.parameters()]
    n_weights = len(model.weights)
    leaf = batched_mlp.BatchedMLP(params[:n_weights], params[n_weights:], model.mask, model.widths)
    loss = batched_mlp.mse(batched_mlp.forward(leaf, X), Y).sum()  # sum over models: separate gradients
    return list(torch.autograd.grad(loss, params))


def gradients(
    model: batched_mlp.BatchedMLP, X: torch.Tensor, Y: torch.Tensor, batch_size: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Full-data and per-mini-batch gradients of every model's training MSE.

    Parameters
    ----------
    model
        ``n_models`` networks; the gradient is taken at their current parameters.
    X, Y
        Training sets, shape (n_models, N, dim): model ``i`` is scored on ``X[i], Y[i]``.
    batch_size
        B; must divide N.  Mini-batch ``b`` holds samples ``b*B, ..., (b+1)*B - 1``.

    Returns
    -------
    full
        One tensor per parameter (weights first, then biases), shape (n_models, *param_shape).
    per_batch
        Same order, shape (n_models, N_b, *param_shape).
    """
    n_models, n, dim = X.shape
    if n % batch_size:
        raise ValueError(f"batch size {batch_size} does not divide N = {n}")
    n_batches = n // batch_size
    # Weights (n_models * N_b, fan_in, fan_out): row i * N_b + b is model i's copy for mini-batch b.
    copies = batched_mlp.BatchedMLP(
        weights=[w.repeat_interleave(n_batches, dim=0) for w in model.weights],
        biases=[b.repeat_interleave(n_batches, dim=0) for b in model.biases],
        mask=model.mask.repeat_interleave(n_batches, dim=0),
        widths=tuple(w for w in model.widths for _ in range(n_batches)),
    )
    Xb = X.reshape(n_models * n_batches, batch_size, dim)  # (n_models * N_b, B, dim)
    Yb = Y.reshape(n_models * n_batches, batch_size, Y.shape[-1])
    per_batch = [g.reshape(n_models, n_batches, *g.shape[1:]) for g in _mean_gradients(copies, Xb, Yb)]
    return _mean_gradients(model, X, Y), per_batch


def gradient_stats(
    model: batched_mlp.BatchedMLP, X: torch.Tensor, Y: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(G, V_fixed)``, each of shape (n_models,): ‖∇J‖² and (1/N_b) Σ_b ‖∇J_b − ∇J‖²
    over the fixed split into consecutive mini-batches.

    Arguments as in :func:`gradients`.  Padded hidden units of narrower models get zero
    gradient, so they add nothing to either norm.
    """
    full, per_batch = gradients(model, X, Y, batch_size)
    G = sum(g.flatten(1).square().sum(1) for g in full)  # (n_models,)
    V_fix = sum(
        (gb - g.unsqueeze(1)).flatten(2).square().sum(2).mean(1)
        for g, gb in zip(full, per_batch, strict=True)
    )  # (n_models,)
    return G, V_fix


def partition_factor(n: int, batch_size: int) -> float:
    """(N − B) / (B (N − 1)): E‖∇J_b − ∇J‖² over a uniformly random B-subset, per unit of the
    per-sample gradient variance (1/N) Σ_i ‖∇ℓ_i − ∇J‖² (sampling without replacement)."""
    return (n - batch_size) / (batch_size * (n - 1)) if n > 1 else 0.0


def expected_variation(
    model: batched_mlp.BatchedMLP, X: torch.Tensor, Y: torch.Tensor, batch_size: int, chunk: int = 8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(G, V, V_fixed)``, each (n_models,), with V the expectation of the mini-batch
    variation over the random partitions that training draws every epoch.

    Each mini-batch of a uniformly random partition is a uniformly random B-subset, so
    ``V = partition_factor(N, B) · (1/N) Σ_i ‖∇ℓ_i − ∇J‖²`` exactly, with ℓ_i the loss of
    sample i; a Monte Carlo average over reshuffles agrees within its standard error
    (``tests/test_grad_stats.py``).  ``V_fixed`` is the consecutive split of
    :func:`gradient_stats`, kept as a cross-check.  Models are processed ``chunk`` at a time
    to bound memory (N copies of each).
    """
    n = X.shape[1]
    if n % batch_size:
        raise ValueError(f"batch size {batch_size} does not divide N = {n}")
    out = []
    for start in range(0, model.n_models, chunk):
        keep = slice(start, start + chunk)
        part = batched_mlp.BatchedMLP(
            [w[keep] for w in model.weights], [b[keep] for b in model.biases], model.mask[keep],
            model.widths[keep],
        )  # fmt: skip
        full, per_sample = gradients(part, X[keep], Y[keep], 1)
        G = sum(g.flatten(1).square().sum(1) for g in full)
        spread = sum(
            (gs - g.unsqueeze(1)).flatten(2).square().sum(2).mean(1)
            for g, gs in zip(full, per_sample, strict=True)
        )
        # Consecutive mini-batch gradients are means of their samples' gradients.
        fixed = sum(
            (gs.reshape(gs.shape[0], n // batch_size, batch_size, *gs.shape[2:]).mean(2) - g.unsqueeze(1))
            .flatten(2).square().sum(2).mean(1)
            for g, gs in zip(full, per_sample, strict=True)
        )  # fmt: skip
        out.append(torch.stack([G, partition_factor(n, batch_size) * spread, fixed]))
    G, V, V_fixed = torch.cat(out, dim=1)
    return G, V, V_fixed
