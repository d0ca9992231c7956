"""Implicit regularisation of SGD (computer assignment 2): learning rate vs gradient norms.

(a)/(b) Networks with five hidden ReLU layers of M units are trained by plain SGD with
constant learning rate μ on N training samples in mini-batches of B, many models as one
batched computation (:mod:`experiments.batched_mlp`).  Run ``r`` draws its own training
data, initialisation and mini-batch order (seeds derived from ``r``), so a model's
trajectory depends only on its run, μ, λ and B: models of one run differ only in these.
Every model stops under one :class:`Stopping` rule: below the target loss, stalled,
diverged, or at the epoch budget.
(c) G = ‖∇J‖², V = (1/N_b) Σ_b ‖∇J_b − ∇J‖² (expected over the random partitions that
training draws; V_fix over the fixed consecutive split as a cross-check,
:mod:`experiments.grad_stats`) and J over a window of ``Stopping.window`` checks from where
each model first crosses each of ``loss_levels`` (comparison at equal loss; the target loss
is one of them, and a converged model trains on to the end of its window), with the final
validation and test MSE.  Along every trajectory the
validation MSE is checked (:func:`on_val_schedule`); the parameters where it was lowest
give the early-stopped validation and test MSE.
(d) The same with weight decay λ (as ``torch.optim.SGD(weight_decay=λ)``) over a grid of
(B, μ, λ) that includes λ = 0 and (b)'s B, under the same :class:`Stopping` as (b), so
early stopping and weight decay are separated; settings are selected on a validation set
drawn from the same process.

Shards (the stage contract of ``report/stages.py``): a shard trains one block of models,
μ × λ × runs at one B; (b) is one shard per μ, (d) one per (B, λ), runs in blocks of
``RUN_BLOCK``.  The (d) block (B, λ = 0) at (b)'s B is not trained twice: ``gather`` takes
it from (b)'s shards.  Run through the report builder (``python build.py``), or directly::

    python -m experiments.sgd_implicit_reg [quick|full]   # prints a summary, writes nothing

``save`` writes ``arrays.npz`` and ``results.json`` into the stage's results directory.
"""

import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import torch

from experiments import batched_mlp
from experiments.data import DataProcess, DataSource, draw, noise_variance, summary
from experiments.grad_stats import expected_variation
from lab import progress
from lab.io import load_arrays, load_json, save_arrays, save_json

RUN_BLOCK = 10  # runs per shard: growing n_runs adds shards and leaves the existing ones unchanged


@dataclass(frozen=True)
class Stopping:
    """When a model stops training; one rule for every model of (b) and (d)."""

    target_loss: float = 1e-5  # converged: full training MSE below this
    max_epochs: int = 12_000  # epoch budget
    check_every: int = 10  # epochs between full-data loss evaluations (history, stopping)
    stall_epochs: int = (
        500  # stalled: the best loss did not improve by stall_improvement for this many epochs
    )
    stall_improvement: float = 0.01  # an improvement is a loss below (1 − this) × the best so far
    diverge_factor: float = 100.0  # diverged: loss non-finite or this many times the initial loss
    window: int = 5  # checks from a level's first crossing over which J, G, V are recorded; a converged
    # model trains on until its window at the target is complete (one crossing check is a noisy point)


@dataclass(frozen=True)
class Config:
    width: int = 50  # M: hidden units per layer, overparameterised for N = 100
    hidden_layers: int = 5
    n_train: int = 100  # N, freshly sampled in every run
    n_test: int = 10_000  # one shared test set; its MSE has standard error ~1 %
    n_val: int = 1_000  # validation set (same process): early stopping and the settings of (d)
    batch_size: int = 20  # B of (b); must divide n_train
    lrs: tuple[float, ...] = (0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)  # μ grid of (b)
    n_runs: int = 10  # runs with newly sampled training data and initialisation (error bars)
    loss_levels: tuple[float, ...] = (1e-3, 1e-4, 1e-5)  # G, V, J recorded where a model first crosses each
    stopping: Stopping = Stopping()  # for (b) and (d) alike
    val_every: int = 50  # epochs between validation checks after the first val_every (every check before)
    wd_batch_sizes: tuple[int, ...] = (20, 50)  # B grid of (d); includes (b)'s B (B = 10 doubles the cost)
    wd_lrs: tuple[float, ...] = (0.32, 0.64)  # μ grid of (d): around the best μ without weight decay
    wd_lambdas: tuple[float, ...] = (0.0, 5e-4, 2e-3, 4e-3, 8e-3)  # λ grid of (d); λ = 0 is the baseline
    seed: int = 0
    data: DataSource = field(default_factory=DataSource)  # where X, Y come from (settings.toml [data])

    def __post_init__(self) -> None:
        if self.stopping.target_loss not in self.loss_levels:
            raise ValueError("loss_levels must include the target loss: the final G and V are its window")


PROFILES = {
    "full": Config(),
    "quick": Config(
        width=16,
        n_test=500,
        n_val=200,
        lrs=(0.32, 0.64, 1.28),
        n_runs=2,
        loss_levels=(0.6, 0.45),
        # target reachable in a few dozen epochs, so every code path runs
        stopping=Stopping(target_loss=0.45, max_epochs=100, stall_epochs=40),
        val_every=20,
        wd_batch_sizes=(20,),
        wd_lrs=(0.32, 0.64),
        wd_lambdas=(0.0, 1e-2),
    ),
}


class Status(IntEnum):
    CONVERGED = 0  # training MSE below the target
    DIVERGED = 1  # loss non-finite or far above its initial value
    STALLED = 2  # no improvement of the best loss for stall_epochs
    MAX_EPOCHS = 3  # still improving when the epoch budget ran out


@dataclass
class Trajectory:
    model: batched_mlp.BatchedMLP  # final (or stopping) parameters of every model, detached
    early: batched_mlp.BatchedMLP  # parameters at the lowest validation MSE (the initial ones without val)
    history: np.ndarray  # (n_checks, n_models) training MSE every check_every epochs; NaN after the stop
    status: np.ndarray  # (n_models,) Status codes
    stop_epoch: np.ndarray  # (n_models,)
    early_epoch: np.ndarray  # (n_models,) epoch of the lowest validation MSE
    # "epoch": (n_models, n_levels) first check below each level; "J", "G", "V", "Vf": (n_models, n_levels,
    # window) at that check and the window − 1 checks after it (NaN where never or after the stop)
    at_level: dict[str, np.ndarray]


@dataclass
class Results:
    config: Config
    process: dict  # experiments.data.summary of the data source
    noise_var: float  # R_t: the optimal test MSE
    n_params: int  # weights and biases of one network
    epochs: np.ndarray  # (n_checks,) epochs of the history
    history: np.ndarray  # (n_lr, n_runs, n_checks) training MSE
    status: np.ndarray  # (n_lr, n_runs) Status codes
    stop_epoch: np.ndarray  # (n_lr, n_runs)
    train_loss: np.ndarray  # (n_lr, n_runs) at the final parameters
    val_loss: np.ndarray  # (n_lr, n_runs)
    test_loss: np.ndarray  # (n_lr, n_runs)
    es_epoch: np.ndarray  # (n_lr, n_runs) early stopping: epoch of the lowest validation MSE
    es_val_loss: np.ndarray  # (n_lr, n_runs) validation MSE there
    es_test_loss: np.ndarray  # (n_lr, n_runs) test MSE there
    level_epoch: np.ndarray  # (n_lr, n_runs, n_levels) first check below each loss level
    level_loss: np.ndarray  # (n_lr, n_runs, n_levels, window) J at that check and the window − 1 after it
    level_grad_norm: np.ndarray  # (n_lr, n_runs, n_levels, window) G = ‖∇J‖² there
    level_grad_var: np.ndarray  # (n_lr, n_runs, n_levels, window) V: E over random partitions of
    # (1/N_b) Σ_b ‖∇J_b − ∇J‖²
    level_grad_var_fixed: np.ndarray  # (n_lr, n_runs, n_levels, window) V_fix: the fixed consecutive split
    wd_status: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_stop_epoch: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_train_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_val_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_test_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_es_epoch: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs) epoch of the lowest validation MSE
    wd_es_test_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs) test MSE there
    seconds: dict  # CPU seconds per shard


def minibatch_orders(generators: Sequence[torch.Generator], n: int) -> torch.Tensor:
    """One epoch's shuffled sample order for each training set, from its own generator: (n_sets, n)."""
    return torch.stack([torch.rand(n, generator=g).argsort() for g in generators])


def _select(model: batched_mlp.BatchedMLP, keep: torch.Tensor) -> batched_mlp.BatchedMLP:
    """The models ``keep`` (indices) of ``model`` as a new batch of leaf tensors."""
    return batched_mlp.BatchedMLP(
        weights=[w.detach()[keep].requires_grad_() for w in model.weights],
        biases=[b.detach()[keep].requires_grad_() for b in model.biases],
        mask=model.mask[keep],
        widths=tuple(model.widths[i] for i in keep.tolist()),
    )


def on_val_schedule(epoch: int, check_every: int, val_every: int) -> bool:
    """Whether the validation MSE is checked at ``epoch``: at every check up to ``val_every``
    (early stopping often lands there), then every ``val_every`` epochs."""
    return epoch % (check_every if epoch <= val_every else val_every) == 0


def _copy_into(target: batched_mlp.BatchedMLP, rows: torch.Tensor, source: batched_mlp.BatchedMLP,
               pick: torch.Tensor) -> None:  # fmt: skip
    """target[rows] ← source[pick] for every parameter."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t[rows] = s[pick]


def train(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    data_index: torch.Tensor,
    lr: torch.Tensor,
    weight_decay: torch.Tensor,
    batch_size: int,
    stopping: Stopping,
    order_seeds: Sequence[int],
    levels: tuple[float, ...] = (),
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    val_every: int = 0,
    desc: str = "SGD",
) -> Trajectory:
    """Train every model of ``model`` by SGD with its own learning rate and weight decay.

    Each step updates ``θ ← θ − μ (∇J_batch(θ) + λ θ)``, exactly as ``torch.optim.SGD``
    with ``weight_decay=λ`` (no momentum).  Every epoch each training set is reshuffled by
    its own seeded generator, so a model's trajectory depends only on its own data,
    initialisation, order seed, μ and λ, not on the other models in the batch.  Every
    ``stopping.check_every`` epochs the full training MSE is evaluated; models that
    diverged or stalled (see :class:`Status`) are frozen and leave the batch, and models that
    reached the target loss do so ``stopping.window − 1`` checks later (or at the budget).

    Parameters
    ----------
    model
        ``n_models`` initial networks (not modified).
    X, Y
        Training sets, shape (n_sets, N, dim).
    data_index
        (n_models,) the training set of each model.
    lr, weight_decay
        (n_models,) μ and λ of each model.
    batch_size
        B, dividing N.
    stopping
        When a model stops.
    order_seeds
        (n_sets,) seed of each training set's mini-batch shuffling.
    levels
        Training-loss levels: at the first check where a model's loss is below a level and
        the ``stopping.window − 1`` checks after it (while the model trains), its J, G, expected
        V and V_fix (:func:`~experiments.grad_stats.expected_variation`) are recorded.
    val, val_every
        A shared validation set, checked on :func:`on_val_schedule` (``val_every`` a multiple
        of ``check_every``) and at the stop; the parameters with the lowest validation MSE are kept.
    desc
        Label of the progress bar.
    """
    s = stopping
    n_models, n = model.n_models, X.shape[1]
    if n % batch_size:
        raise ValueError(f"batch size {batch_size} does not divide N = {n}")
    dev = X.device
    final, early = _select(model, torch.arange(n_models)), _select(model, torch.arange(n_models))
    model = _select(model, torch.arange(n_models))
    generators = [torch.Generator().manual_seed(seed) for seed in order_seeds]
    history = np.full((s.max_epochs // s.check_every + 1, n_models), np.nan)
    status = np.full(n_models, Status.MAX_EPOCHS)
    stop_epoch = np.full(n_models, s.max_epochs)
    best = np.full(n_models, np.inf)  # best training MSE so far
    best_epoch = np.zeros(n_models, dtype=int)  # epoch of its last improvement
    best_val, early_epoch = np.full(n_models, np.inf), np.zeros(n_models, dtype=int)
    initial = np.full(n_models, np.nan)
    reached = np.full(n_models, np.nan)  # epoch of the first check below the target
    at_level = {"epoch": np.full((n_models, len(levels)), np.nan)}
    at_level |= {k: np.full((n_models, len(levels), s.window), np.nan) for k in ("J", "G", "V", "Vf")}

    active = torch.arange(n_models)  # indices of the models still training
    sets = data_index.to(dev)
    lr_a = lr.to(dev, X.dtype)  # (n_active,)
    shrink = (1 - lr * weight_decay).view(-1, 1, 1).to(dev, X.dtype)  # (n_active, 1, 1)
    decaying = bool((weight_decay != 0).any())
    bar = progress.bar(total=s.max_epochs, desc=desc, unit="epoch", leave=False)
    for epoch in range(s.max_epochs + 1):
        if epoch > 0:
            order = minibatch_orders(generators, n).to(dev)[sets]  # (n_active, N)
            params = model.parameters()
            for start in range(0, n, batch_size):
                idx = order[:, start : start + batch_size]  # (n_active, B)
                loss = batched_mlp.mse(
                    batched_mlp.forward(model, X[sets[:, None], idx]), Y[sets[:, None], idx]
                )
                # Weighting model i's loss by μ_i makes its gradient μ_i ∇J_i: one update for all models.
                steps = torch.autograd.grad((lr_a * loss).sum(), params)
                with torch.no_grad():
                    for p, step in zip(params, steps, strict=True):
                        if decaying:
                            p.mul_(shrink)  # θ(1 − μλ) − μ∇J = θ − μ(∇J + λθ)
                        p.sub_(step)
            bar.update()
        if epoch % s.check_every:
            continue
        with torch.no_grad():
            loss = batched_mlp.mse(batched_mlp.forward(model, X[sets]), Y[sets]).double().cpu().numpy()
        ids = active.numpy()
        history[epoch // s.check_every, ids] = loss
        if epoch == 0:
            initial[ids] = loss
        first = at_level["epoch"][ids]  # (n_active, n_levels)
        first[np.isnan(first) & (loss[:, None] < np.array(levels))] = epoch
        at_level["epoch"][ids] = first
        slot = (epoch - first) // s.check_every  # window index of this check per level; NaN if not crossed
        recording = np.nan_to_num(slot, nan=s.window) < s.window  # (n_active, n_levels)
        if recording.any():
            rows = np.flatnonzero(recording.any(1))
            sel = torch.from_numpy(rows).to(dev)
            G, V, Vf = expected_variation(_select(model, sel), X[sets[sel]], Y[sets[sel]], batch_size)
            r, k = np.nonzero(recording[rows])
            for key, value in [("J", loss[rows]), ("G", G), ("V", V), ("Vf", Vf)]:
                value = value.double().cpu().numpy() if torch.is_tensor(value) else value
                at_level[key][ids[rows[r]], k, slot[rows[r], k].astype(int)] = value[r]
        improved = loss < (1 - s.stall_improvement) * best[ids]
        best[ids] = np.where(improved, loss, best[ids])
        best_epoch[ids] = np.where(improved, epoch, best_epoch[ids])
        done = np.full(len(ids), Status.MAX_EPOCHS)
        done[epoch - best_epoch[ids] >= s.stall_epochs] = Status.STALLED
        done[~np.isfinite(loss) | (loss > s.diverge_factor * initial[ids])] = Status.DIVERGED
        reached[ids[np.isnan(reached[ids]) & (loss < s.target_loss)]] = epoch
        settled = epoch - reached[ids] >= (s.window - 1) * s.check_every  # False where not reached
        done[~np.isnan(reached[ids])] = Status.MAX_EPOCHS  # reached the target: trains on for its window
        done[settled] = Status.CONVERGED
        finished = (done != Status.MAX_EPOCHS) | (epoch == s.max_epochs)
        done[finished & ~np.isnan(reached[ids])] = Status.CONVERGED  # also when the budget cut its window
        if val is not None and (on_val_schedule(epoch, s.check_every, val_every) or finished.any()):
            with torch.no_grad():
                v = batched_mlp.mse(batched_mlp.forward(model, val[0]), val[1]).double().cpu().numpy()
            # Off the schedule only models stopping now are checked, so no model depends on its batch mates.
            checked = finished | on_val_schedule(epoch, s.check_every, val_every)
            better = (v < best_val[ids]) & checked & (done != Status.DIVERGED)
            if better.any():
                best_val[ids[better]], early_epoch[ids[better]] = v[better], epoch
                _copy_into(early, active[better], model, torch.from_numpy(np.flatnonzero(better)).to(dev))
        if finished.any():
            status[ids[finished]] = done[finished]
            stop_epoch[ids[finished]] = epoch
            _copy_into(final, active[finished], model, torch.from_numpy(np.flatnonzero(finished)).to(dev))
            keep = torch.from_numpy(~finished)
            active, sets = active[keep], sets[keep.to(dev)]
            lr_a, shrink = lr_a[keep.to(dev)], shrink[keep.to(dev)]
            model = _select(model, torch.nonzero(keep).flatten().to(dev))
            bar.set_postfix(training=len(active))
        if len(active) == 0:
            break
    bar.close()
    return Trajectory(final, early, history, status, stop_epoch, early_epoch, at_level)


def _blocks(n_runs: int) -> list[list[int]]:
    """Run indices in blocks of ``RUN_BLOCK``."""
    return [list(range(a, min(a + RUN_BLOCK, n_runs))) for a in range(0, n_runs, RUN_BLOCK)]


def _runs_name(runs: list[int]) -> str:
    return f"r{runs[0]}..{runs[-1]}" if len(runs) > 1 else f"r{runs[0]}"


def _spec(config: Config, batch_size: int, lrs, lambdas, runs: list[int], levels=()) -> dict:
    """A self-contained shard spec: the model and data settings, the rule, and the block of models."""
    keys = ("width", "hidden_layers", "n_train", "n_test", "n_val", "val_every", "seed")
    return {k: getattr(config, k) for k in keys} | {
        "stopping": dataclasses.asdict(config.stopping),
        "data": dataclasses.asdict(config.data),
        "batch_size": batch_size,
        "lrs": list(lrs),
        "lambdas": list(lambdas),
        "runs": runs,
        "levels": list(levels),
    }


def _wd_lrs_to_train(config: Config, batch_size: int, lam: float) -> list[float]:
    """μ of (d) block (B, λ) that (b) does not already train (λ = 0 at (b)'s B is (b) itself)."""
    shared = config.lrs if (batch_size, lam) == (config.batch_size, 0.0) else ()
    return [mu for mu in config.wd_lrs if mu not in shared]


def shards(config: Config) -> dict[str, dict]:
    """(b): one shard per μ; (d): one per (B, λ) over μ ∈ ``wd_lrs``; runs in blocks of ``RUN_BLOCK``."""
    out = {}
    for runs in _blocks(config.n_runs):
        for mu in config.lrs:
            out[f"b-mu{mu:g}-{_runs_name(runs)}"] = _spec(
                config, config.batch_size, [mu], [0.0], runs, config.loss_levels
            )
        for batch_size in config.wd_batch_sizes:
            for lam in config.wd_lambdas:
                if lrs := _wd_lrs_to_train(config, batch_size, lam):
                    out[f"d-B{batch_size}-lam{lam:g}-{_runs_name(runs)}"] = _spec(
                        config, batch_size, lrs, [lam], runs
                    )
    return out


def order_seed(seed: int, run: int) -> int:
    """Seed of run ``run``'s mini-batch shuffling (its data and initialisation use ``seed + 1 + run``
    and ``seed + 200_000 + run``)."""
    return seed + 400_000 + run


def test_set(data: DataSource | dict, n_test: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The test set every run shares."""
    return draw(data, n_test, seed + 100_000, split="test")


def _shared_sets(spec: dict, dev: torch.device) -> tuple[tuple, tuple]:
    """The test and validation sets every run shares."""
    test = tuple(t.to(dev) for t in test_set(spec["data"], spec["n_test"], spec["seed"]))
    val = tuple(t.to(dev) for t in draw(spec["data"], spec["n_val"], spec["seed"] + 300_000, split="val"))
    return test, val


def run_shard(spec: dict) -> dict[str, np.ndarray]:
    """Train the block μ × λ × runs of ``spec`` (run fastest) at its B and measure every model.

    Returns arrays of shape (n_lr, n_lambda, n_runs[, ...]): status, stop_epoch, the final
    train/val/test MSE, the early-stopped (lowest validation MSE) epoch and val/test MSE,
    the level records (J, G, V, V_fix over each level's window), the loss history; and ``cpu_seconds``.
    """
    cpu, process, dev = time.process_time(), DataProcess(), batched_mlp.device()
    seed, runs, lrs, lambdas = spec["seed"], spec["runs"], spec["lrs"], spec["lambdas"]
    stopping = Stopping(**spec["stopping"])
    sets = [draw(spec["data"], spec["n_train"], seed + 1 + r) for r in runs]
    X = torch.stack([x for x, _ in sets]).to(dev)  # (n_block_runs, N, dim)
    Y = torch.stack([y for _, y in sets]).to(dev)
    test, val = _shared_sets(spec, dev)
    hyper = [(mu, lam) for mu in lrs for lam in lambdas]
    n = len(hyper) * len(runs)
    model = batched_mlp.init(
        [spec["width"]] * n,
        [seed + 200_000 + r for r in runs] * len(hyper),
        spec["hidden_layers"],
        process.dim,
        process.dim,
        dev=dev,
    )
    data_index = torch.arange(n) % len(runs)
    lr, wd = (torch.tensor([h[k] for h in hyper]).repeat_interleave(len(runs)) for k in (0, 1))
    traj = train(
        model, X, Y, data_index, lr, wd, spec["batch_size"], stopping,
        order_seeds=[order_seed(seed, r) for r in runs], levels=tuple(spec["levels"]), val=val,
        val_every=spec["val_every"], desc=f"B={spec['batch_size']} μ={lrs} λ={lambdas}",
    )  # fmt: skip
    X_m, Y_m = X[data_index], Y[data_index]  # (n_models, N, dim)
    out = {"status": traj.status, "stop_epoch": traj.stop_epoch, "es_epoch": traj.early_epoch}
    with torch.no_grad():
        for prefix, params in [("", traj.model), ("es_", traj.early)]:
            for name, (x, y) in [("train", (X_m, Y_m)), ("val", val), ("test", test)]:
                loss = batched_mlp.mse(batched_mlp.forward(params, x), y)
                out[f"{prefix}{name}_loss"] = loss.double().cpu().numpy()
    out |= {f"level_{k}": v for k, v in traj.at_level.items()}
    out["history"] = traj.history.T
    shape = (len(lrs), len(lambdas), len(runs))
    parts = {k: np.asarray(v.double().cpu().numpy() if torch.is_tensor(v) else v) for k, v in out.items()}
    parts = {k: v.reshape(*shape, *v.shape[1:]) for k, v in parts.items()}
    return parts | {"cpu_seconds": np.asarray(time.process_time() - cpu)}


def gather(config: Config, parts: dict[str, dict[str, np.ndarray]]) -> Results:
    """Assemble :class:`Results` from every shard's part (see :func:`shards`)."""
    where = {}  # (B, μ, λ, run) -> (shard, index of μ, index of λ, index of run)
    for name, spec in shards(config).items():
        for i, mu in enumerate(spec["lrs"]):
            for j, lam in enumerate(spec["lambdas"]):
                for k, run in enumerate(spec["runs"]):
                    where[spec["batch_size"], mu, lam, run] = (name, i, j, k)

    def pick(batch_size: int, mu: float, lam: float, key: str) -> np.ndarray:
        """(n_runs, ...) of ``key`` for one setting."""
        return np.stack(
            [
                parts[name][key][i, j, k]
                for name, i, j, k in (where[batch_size, mu, lam, r] for r in range(config.n_runs))
            ]
        )

    def lr_grid(key: str) -> np.ndarray:
        return np.stack([pick(config.batch_size, mu, 0.0, key) for mu in config.lrs])

    def wd_grid(key: str) -> np.ndarray:
        return np.array(
            [[[pick(b, mu, lam, key) for lam in config.wd_lambdas] for mu in config.wd_lrs]
             for b in config.wd_batch_sizes]
        )  # fmt: skip

    process = DataProcess()
    levels = {k: lr_grid(f"level_{k}") for k in ("epoch", "J", "G", "V", "Vf")}
    n_checks = config.stopping.max_epochs // config.stopping.check_every + 1
    return Results(
        config=config,
        process=summary(config.data, *test_set(config.data, config.n_test, config.seed)),
        noise_var=noise_variance(config.data)[0],
        n_params=batched_mlp.n_params(config.width, config.hidden_layers, process.dim, process.dim),
        epochs=np.arange(n_checks) * config.stopping.check_every,
        history=lr_grid("history"),
        status=lr_grid("status").astype(int),
        stop_epoch=lr_grid("stop_epoch").astype(int),
        train_loss=lr_grid("train_loss"),
        val_loss=lr_grid("val_loss"),
        test_loss=lr_grid("test_loss"),
        es_epoch=lr_grid("es_epoch").astype(int),
        es_val_loss=lr_grid("es_val_loss"),
        es_test_loss=lr_grid("es_test_loss"),
        level_epoch=levels["epoch"],
        level_loss=levels["J"],
        level_grad_norm=levels["G"],
        level_grad_var=levels["V"],
        level_grad_var_fixed=levels["Vf"],
        wd_status=wd_grid("status").astype(int),
        wd_stop_epoch=wd_grid("stop_epoch").astype(int),
        wd_train_loss=wd_grid("train_loss"),
        wd_val_loss=wd_grid("val_loss"),
        wd_test_loss=wd_grid("test_loss"),
        wd_es_epoch=wd_grid("es_epoch").astype(int),
        wd_es_test_loss=wd_grid("es_test_loss"),
        seconds={name: float(part["cpu_seconds"]) for name, part in parts.items()},
    )


def run(config: Config) -> Results:
    """Every shard of ``config`` in turn, then :func:`gather` (the engine may run the shards in parallel)."""
    return gather(config, {name: run_shard(spec) for name, spec in shards(config).items()})


_JSON_FIELDS = ("config", "process", "noise_var", "n_params", "seconds")


def save(results: Results, directory: Path) -> None:
    """Write ``arrays.npz`` (every array field) and ``results.json`` (the rest) into ``directory``."""
    fields = {f.name: getattr(results, f.name) for f in dataclasses.fields(results)}
    meta = {k: fields.pop(k) for k in _JSON_FIELDS}
    save_json({**meta, "config": dataclasses.asdict(results.config)}, directory)
    save_arrays(fields, directory)


def config_from_dict(values: dict) -> Config:
    """The :class:`Config` of ``dataclasses.asdict`` output read back from JSON (lists → tuples)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return Config(
        **values | {"stopping": Stopping(**values["stopping"]), "data": DataSource(**values["data"])}
    )


def load(directory: Path) -> Results:
    meta = load_json(directory)
    return Results(config=config_from_dict(meta.pop("config")), **meta, **load_arrays(directory))


if __name__ == "__main__":
    torch.set_num_threads(1)  # tiny matrices: one thread per process (the build's engine sets it for shards)
    results = run(PROFILES[sys.argv[1] if len(sys.argv) > 1 else "quick"])
    for mu, status, epoch, test in zip(
        results.config.lrs, results.status, results.stop_epoch, results.test_loss, strict=True
    ):
        print(f"μ={mu}: status {status} epochs {epoch} test {test.round(3)}")
    print("weight decay test loss (B, μ, λ):", results.wd_test_loss.mean(-1).round(3))
    print("CPU seconds:", {k: round(v, 1) for k, v in results.seconds.items()})
