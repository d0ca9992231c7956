"""The numerical check of P_eff: the rank of the Jacobian of a network's outputs in its parameters.

At parameters θ the outputs f_θ(x_1), ..., f_θ(x_n) in R^d form a vector of n d numbers; its
Jacobian J (n d x P) has rank at most P - K M, because each of the K M rescaling directions
(:mod:`experiments.effective_params`) lies in its null space.  At a generic point with n d >> P
the rank reaches P - K M.  A point is generic only if every hidden unit is active on some and
inactive on other samples: a unit inactive on all samples loses all its parameters, a unit
active on all of them is linear there, and linear units of a layer mix with each other.
:func:`balanced_point` draws Gaussian weights and sets each bias to minus the median of the
unit's pre-activation over the sample, so every unit is active on half of it.
"""

from dataclasses import dataclass

import numpy as np
import torch

from experiments import batched_mlp


@dataclass(frozen=True)
class Rank:
    """The spectrum of J at one point, read against an expected rank r."""

    rank: int  # singular values above rtol * the largest
    expected: int  # P - K M
    retained: float  # the r-th singular value over the largest
    discarded: float  # the (r+1)-th singular value over the largest (0 if r = P)
    inactive_units: int  # hidden units active on fewer than 1 % or more than 99 % of the samples

    @property
    def gap(self) -> float:
        """Decades between the last retained and the first discarded singular value."""
        return float(np.log10(self.retained / max(self.discarded, 1e-300)))


RTOL = 1e-9  # singular values below this fraction of the largest count as zero (float64 noise is ~1e-15)


def balanced_point(width: int, hidden_layers: int, X: torch.Tensor, seed: int) -> batched_mlp.BatchedMLP:
    """One model with Gaussian weights N(0, 1/fan_in) and biases centring every hidden unit on ``X``."""
    gen = torch.Generator().manual_seed(seed)
    model = batched_mlp.init([width], [seed], hidden_layers, d_in=X.shape[1], dtype=X.dtype)
    h = X
    with torch.no_grad():
        for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
            W.copy_(torch.randn(W.shape, generator=gen, dtype=X.dtype) / W.shape[1] ** 0.5)
            z = h @ W[0]
            if layer < hidden_layers:
                b.copy_(-z.median(0).values.view(b.shape))
                h = torch.relu(z + b[0])
    return model


def jacobian_rank(model: batched_mlp.BatchedMLP, X: torch.Tensor, expected: int) -> Rank:
    """The rank of d(outputs on X)/d(parameters) of the single model ``model`` (float64 SVD)."""
    flat = batched_mlp.flatten(model)

    def outputs(theta: torch.Tensor) -> torch.Tensor:
        return batched_mlp.forward(batched_mlp.as_model(model, theta.unsqueeze(0)), X).reshape(-1)

    J = torch.func.jacrev(outputs)(flat[0].double())
    s = torch.linalg.svdvals(J).numpy()
    s = s / s[0]
    with torch.no_grad():
        hidden = X
        active = []
        for W, b in zip(model.weights[:-1], model.biases[:-1], strict=True):
            hidden = torch.relu(hidden @ W[0] + b[0])
            active.append((hidden > 0).double().mean(0))
    fraction = torch.cat(active)
    return Rank(
        rank=int((s > RTOL).sum()),
        expected=expected,
        retained=float(s[expected - 1]),
        discarded=float(s[expected]) if expected < len(s) else 0.0,
        inactive_units=int(((fraction < 0.01) | (fraction > 0.99)).sum()),
    )
