"""Why a network with more effective parameters than equations can still stall: its own Jacobian.

At the point where L-BFGS stopped, a network d -> M -> M -> d (parameters θ in ``nn.Sequential``
order, as :class:`experiments.double_descent.Results` keeps them) is examined on its N training
pairs, in float64 and numpy alone:

* the Jacobian J (d N x P) of its d N training residuals f_θ(x_i)_j - y_ij with respect to all
  parameters, and its rank: the singular values (:func:`singular_values`) above ``RTOL`` times the largest (the gap between
  the last retained and the first discarded one, in decades, says how clear the cut is);
* the hidden units that are *dead* (zero on every training input) and *always active* (positive on
  every one);
* the rank those units predict (:func:`predicted_rank`): a dead unit contributes nothing, so the
  network is, locally, the smaller network of its live units, whose effective count is
  P_eff(live) = P(live) - (live units); the rank is at most min(d N, P_eff(live));
* whether the stall point is stationary: the gradient Jᵀr relative to the largest it could be for
  this residual, s₁‖r‖ (:func:`relative_gradient`; 0 at a stationary point, of order 1 when r lies
  along J's leading direction).  A point above ``STATIONARY`` is no local minimum: the stopping rule
  fired because progress became slow, not because none was possible;
* whether a second-order method still lowers the loss from there: ``LM_STEPS`` Levenberg-Marquardt
  steps on the residuals (:func:`levenberg_marquardt`).  If they do not, the slow progress is the
  landscape's (ill-conditioning), not only L-BFGS's.

J has full row rank d N exactly when the linearised residuals can be driven to zero: then no
first-order obstacle stops interpolation, and a stall is the optimizer's.  Rank below d N leaves a
part of the residual outside the range of J that no small step can remove.

A derived analysis of the double-descent stage (``ANALYSES`` in ``project.py``; the contract is in
:mod:`report.stages`): :func:`analyze` runs as its own cached task on the stage's saved results,
so changing it never retrains the sweep, and the report reads its saved diagnoses; :func:`check`
is the claim the text relies on, run by the verification task and ``--verify``.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from lab.checks import Check
from lab.io import load_json, save_json

if TYPE_CHECKING:
    from experiments.double_descent import Results

STAGE = "double_descent"  # the stage whose results it diagnoses
RTOL = 1e-10  # singular values below this fraction of the largest count as zero (float64 noise ~1e-15)
GRAM_MARGIN = 1e-12  # J Jᵀ with eigenvalues above this fraction of the largest has full row rank, clearly
STATIONARY = 1e-6  # a stall point with relative gradient below this is stationary (float64 noise ~1e-15)
LM_STEPS = 3  # Levenberg-Marquardt steps from the stall point
LM_TRIES = 10  # damping increases (x10) per step before the step is given up
LM_START = 1e-6  # initial damping, relative to the largest squared singular value of J


@dataclass(frozen=True)
class Network:
    """The weights and biases of one network d -> M1 -> M2 -> d."""

    W1: np.ndarray  # (M1, d)
    b1: np.ndarray  # (M1,)
    W2: np.ndarray  # (M2, M1)
    b2: np.ndarray  # (M2,)
    W3: np.ndarray  # (d, M2)
    b3: np.ndarray  # (d,)

    @classmethod
    def unflatten(cls, theta: np.ndarray, width: int, dim: int) -> "Network":
        """The network whose ``nn.Sequential`` parameter vector (layer by layer: weight row by row, bias) is ``theta``."""
        shapes = [(width, dim), (width,), (width, width), (width,), (dim, width), (dim,)]
        sizes = [int(np.prod(s)) for s in shapes]
        if theta.size != sum(sizes):
            raise ValueError(f"{theta.size} parameters, but d={dim}, M={width} has {sum(sizes)}")
        pieces = np.split(np.asarray(theta, dtype=float), np.cumsum(sizes)[:-1])
        return cls(*(p.reshape(s) for p, s in zip(pieces, shapes, strict=True)))

    def flatten(self) -> np.ndarray:
        return np.concatenate([a.ravel() for a in (self.W1, self.b1, self.W2, self.b2, self.W3, self.b3)])

    def hidden(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pre-activations of both hidden layers on the rows of ``X``."""
        z1 = X @ self.W1.T + self.b1
        z2 = np.maximum(z1, 0) @ self.W2.T + self.b2
        return z1, z2

    def __call__(self, X: np.ndarray) -> np.ndarray:
        _, z2 = self.hidden(X)
        return np.maximum(z2, 0) @ self.W3.T + self.b3


def jacobian(net: Network, X: np.ndarray) -> np.ndarray:
    """d(outputs)/d(parameters): (N d, P), row i d + j for output j of sample i, columns as :meth:`Network.flatten`."""
    z1, z2 = net.hidden(X)
    h1, h2 = np.maximum(z1, 0), np.maximum(z2, 0)
    n, d = X.shape[0], net.W3.shape[0]
    eye = np.eye(d)
    g2 = net.W3[None, :, :] * (z2 > 0)[:, None, :]  # (n, d, M2): d f_ij / d z2
    g1 = (g2 @ net.W2) * (z1 > 0)[:, None, :]  # (n, d, M1): d f_ij / d z1
    blocks = [
        g1[:, :, :, None] * X[:, None, None, :],  # W1
        g1,  # b1
        g2[:, :, :, None] * h1[:, None, None, :],  # W2
        g2,  # b2
        eye[None, :, :, None] * h2[:, None, None, :],  # W3: d f_ij / d W3[k, l] = [j = k] h2_il
        np.broadcast_to(eye, (n, d, d)),  # b3
    ]
    return np.concatenate([b.reshape(n, d, -1) for b in blocks], axis=2).reshape(n * d, -1)


def mse(net: Network, X: np.ndarray, Y: np.ndarray) -> float:
    return float(np.mean((net(X) - Y) ** 2))


def units(net: Network, X: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """(dead, always active) hidden units of each layer on the rows of ``X``."""
    layers = net.hidden(X)
    dead = tuple(int(np.all(z <= 0, axis=0).sum()) for z in layers)
    active = tuple(int(np.all(z > 0, axis=0).sum()) for z in layers)
    return dead, active  # type: ignore[return-value]


def effective_count(live1: int, live2: int, dim: int) -> int:
    """P - (hidden units) of the network d -> live1 -> live2 -> d.

    >>> effective_count(22, 22, 8)
    844
    """
    return live1 * (dim + 1) + live2 * (live1 + 1) + dim * (live2 + 1) - live1 - live2


def predicted_rank(width: int, dead: tuple[int, int], n: int, dim: int) -> int:
    """The rank of J that the dead units predict: min(d N, P_eff of the live network).

    >>> predicted_rank(22, (0, 0), 100, 8), predicted_rank(22, (3, 2), 100, 8)
    (800, 700)
    """
    return min(dim * n, effective_count(width - dead[0], width - dead[1], dim))


def spectrum_rank(s: np.ndarray) -> tuple[int, float]:
    """Rank of singular values ``s`` (descending) at ``RTOL``, and the gap in decades at the cut (inf if none is cut)."""
    s = s / s[0]
    rank = int((s > RTOL).sum())
    gap = float(np.log10(s[rank - 1] / max(s[rank], 1e-300))) if rank < s.size else float("inf")
    return rank, gap


def relative_gradient(J: np.ndarray, r: np.ndarray, largest: float) -> float:
    """‖Jᵀr‖ / (s₁ ‖r‖) for the residual Jacobian ``J``, residuals ``r`` and largest singular value ``largest``:
    the gradient of the squared residual relative to its largest possible size (0 at a stationary point)."""
    return float(np.linalg.norm(J.T @ r) / (largest * np.linalg.norm(r)))


def levenberg_marquardt(
    net: Network, X: np.ndarray, Y: np.ndarray, scale: float, steps: int = LM_STEPS
) -> float:
    """The training MSE after ``steps`` Levenberg-Marquardt steps on the residuals from ``net``.

    Each step solves (JᵀJ + λI) δ = -Jᵀr in its dual form δ = -Jᵀ(JJᵀ + λI)⁻¹r (a d N x d N system),
    starting from λ = ``LM_START`` ``scale`` (the largest squared singular value of J) and raising λ
    tenfold until the MSE falls (lowering it tenfold after a success); a step that finds no
    decrease in ``LM_TRIES`` tries ends the iteration.
    """
    theta, d, width = net.flatten(), net.W3.shape[0], net.W1.shape[0]
    loss, damping = mse(net, X, Y), LM_START * scale
    for _ in range(steps):
        current = Network.unflatten(theta, width, d)
        J, r = jacobian(current, X), (current(X) - Y).ravel()
        gram = J @ J.T
        for _ in range(LM_TRIES):
            factor = scipy.linalg.cho_factor(gram + damping * np.eye(len(r)))
            step = -J.T @ scipy.linalg.cho_solve(factor, r)
            trial = mse(Network.unflatten(theta + step, width, d), X, Y)
            if trial < loss:
                theta, loss, damping = theta + step, trial, damping / 10
                break
            damping *= 10
        else:
            break
    return loss


@dataclass(frozen=True)
class Diagnosis:
    """One stalled network at its stall point."""

    width: int
    seed: int
    n: int
    loss: float  # training MSE where L-BFGS stopped
    rank: int  # rank of the residual Jacobian at RTOL
    gap: float  # decades between the last retained and the first discarded singular value
    smallest: float  # the (d N)-th singular value over the largest: how well conditioned interpolation is
    dead: tuple[int, int]  # dead units per hidden layer
    active: tuple[int, int]  # always-active units per hidden layer
    predicted: int  # predicted_rank from the dead units
    gradient: float  # relative_gradient at the stall point
    lm_loss: float  # training MSE after LM_STEPS Levenberg-Marquardt steps

    @property
    def relative_decrease(self) -> float:
        return 1 - self.lm_loss / self.loss

    @property
    def stationary(self) -> bool:
        return self.gradient < STATIONARY


def singular_values(J: np.ndarray) -> np.ndarray:
    """The singular values of J (descending): from the eigenvalues of J Jᵀ when they show full row rank with a
    wide margin (smallest over largest above ``GRAM_MARGIN``, where their float64 error, ~1e-16 of the largest,
    is negligible), else from a float64 SVD of J itself (several times slower for the widest J here)."""
    if J.shape[0] <= J.shape[1]:
        eigenvalues = np.linalg.eigvalsh(J @ J.T)[::-1]
        if eigenvalues[-1] > GRAM_MARGIN * eigenvalues[0]:
            return np.sqrt(eigenvalues)
    return scipy.linalg.svdvals(J)


def diagnose(theta: np.ndarray, width: int, seed: int, X: np.ndarray, Y: np.ndarray) -> Diagnosis:
    """Rank, units and a second-order step of the network ``theta`` of width ``width`` on (X, Y)."""
    n, d = X.shape
    net = Network.unflatten(theta, width, d)
    J = jacobian(net, X)
    s = singular_values(J)
    rank, gap = spectrum_rank(s)
    dead, active = units(net, X)
    return Diagnosis(
        width=width,
        seed=seed,
        n=n,
        loss=mse(net, X, Y),
        rank=rank,
        gap=gap,
        smallest=float(s[min(n * d, s.size) - 1] / s[0]),
        dead=dead,
        active=active,
        predicted=predicted_rank(width, dead, n, d),
        gradient=relative_gradient(J, (net(X) - Y).ravel(), float(s[0])),
        lm_loss=levenberg_marquardt(net, X, Y, float(s[0] ** 2)),
    )


def stalled_above_bound(results: "Results") -> list[tuple[int, int, int]]:
    """(N, width, seed) of every network that stopped without interpolating although P_eff(M) >= d N.

    Only widths whose final parameters the results keep (``config.params_max_width``) count.
    """
    config, d = results.config, results.process.dim
    chosen = []
    for sweep in results.sweeps:
        for i, width in enumerate(config.widths):
            key = f"params_n{sweep.n}_m{width}"
            if key not in results.final_params or effective_count(width, width, d) < d * sweep.n:
                continue
            chosen += [(sweep.n, width, seed) for j, seed in enumerate(config.seeds) if sweep.stop[i, j] != 0]
    return chosen


def analyze(results: "Results") -> list[Diagnosis]:
    """:func:`diagnose` of every network of :func:`stalled_above_bound` on its own training set."""
    import torch

    from experiments.data import draw  # torch: only where the networks are examined

    config = results.config
    data = {
        n: tuple(t.numpy() for t in draw(config.data, n, config.sample_seed + n, torch.float64))
        for n in config.n_train
    }
    return [
        diagnose(
            results.final_params[f"params_n{n}_m{width}"][config.seeds.index(seed)], width, seed, *data[n]
        )
        for n, width, seed in stalled_above_bound(results)
    ]


def save(diagnoses: list[Diagnosis], directory: Path) -> None:
    save_json([dataclasses.asdict(d) for d in diagnoses], directory)


def load(directory: Path) -> list[Diagnosis]:
    return [
        Diagnosis(**record | {k: tuple(record[k]) for k in ("dead", "active")})
        for record in load_json(directory)
    ]


def check(diagnoses: list[Diagnosis]) -> list[Check]:
    """The claims about the stalled networks that the double-descent section relies on."""
    return [rank_check(diagnoses)]


def rank_check(diagnoses: list[Diagnosis]) -> Check:
    """The claim the report relies on: no examined network's rank exceeds the one its dead units predict.

    Equality is the generic case (tests/test_threshold_diagnosis.py builds such networks); a trained network
    may fall below it (units active on few inputs, coincidences of the fitted weights), never above.
    """
    wrong = sum(d.rank > d.predicted for d in diagnoses)
    return Check(
        "stalled networks: rank J <= min(dN, P_eff(live units))",
        f"singular values of the residual Jacobian (float64) at the stall point of {len(diagnoses)} networks, "
        f"cut at {RTOL:g} of the largest singular value; networks above the prediction",
        wrong,
        0,
        name_tex=r"stalled networks: $\operatorname{rank}J\le\min(dN,P_\text{eff}(\text{live units}))$",
        method_tex=rf"singular values of the residual Jacobian (float64) at the stall point of {len(diagnoses)} networks, "
        rf"cut at $10^{{{int(np.log10(RTOL))}}}$ of the largest singular value; networks above the prediction",
    )
