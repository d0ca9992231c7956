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
μ × λ × runs at one B, as one batch; (b) is one shard per band of ``Config.lr_octaves`` octaves of
μ, (d) one per B over every λ, runs in blocks of ``RUN_BLOCK``.  The training loop is
:mod:`experiments.sgd_training`, imported by :func:`run_shard` (this module needs no torch of its own).  The (d) block (B, λ = 0) at (b)'s B is not trained twice: ``gather`` takes
it from (b)'s shards.  Run through the report builder (``python build.py``), or directly::

    python -m experiments.sgd_implicit_reg [quick|full]   # prints a summary, writes nothing

``save`` writes ``arrays.npz`` and ``results.json`` into the stage's results directory.
"""

import dataclasses
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from experiments.data import DataProcess, DataSource, draw, noise_variance, summary
from lab import fields
from lab.io import load_arrays, load_json, save_arrays, save_json

RUN_BLOCK = 10  # runs per shard: growing n_runs adds shards and leaves the existing ones unchanged


@dataclass(frozen=True)
class Stopping:
    """When a model stops training; one rule for every model of (b) and (d)."""

    target_loss: float = 1e-5  # converged: full training MSE below this
    # epoch budget, one for every μ and large enough for all: epochs to the target scale as 1/μ, and the
    # slowest run at μ = 0.04 needed 8 900, so μ = 0.02 needs about 18 000
    max_epochs: int = 24_000
    check_every: int = 10  # epochs between full-data loss evaluations (history, stopping)
    stall_epochs: int = (
        500  # stalled: the best loss did not improve by stall_improvement for this many epochs
    )
    stall_improvement: float = 0.01  # an improvement is a loss below (1 − this) × the best so far
    diverge_factor: float = 100.0  # diverged: loss non-finite or this many times the initial loss
    window: int = 5  # checks from a level's first crossing over which J, G, V are recorded; a converged
    # model trains on until its window at the target is complete (one crossing check is a noisy point)

    def __post_init__(self) -> None:
        fields.real(self, "target_loss", above=0)
        fields.real(self, "stall_improvement", above=0, below=1)
        fields.real(self, "diverge_factor", above=1)
        fields.whole(self, "max_epochs", "check_every", "stall_epochs", "window", least=1)


@dataclass(frozen=True)
class Config:
    width: int = 50  # M: hidden units per layer, overparameterised for N = 100
    hidden_layers: int = 5
    n_train: int = 100  # N, freshly sampled in every run
    n_test: int = 10_000  # one shared test set; its MSE has standard error ~1 %
    n_val: int = 1_000  # validation set (same process): early stopping and the settings of (d)
    batch_size: int = 20  # B of (b); must divide n_train
    lrs: tuple[float, ...] = (0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)  # μ grid of (b)
    # (b) trains the μ of one band of this many octaves as one batch (one shard): a batch choice, not in the key
    lr_octaves: float = field(default=4.0, metadata={"affects_results": False})
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
        fields.whole(self, "width", "hidden_layers", "n_train", "n_test", "n_val", "batch_size", least=1)
        fields.whole(self, "n_runs", "val_every", "wd_batch_sizes", least=1)
        fields.whole(self, "seed")
        fields.real(self, "lrs", "wd_lrs", "lr_octaves", "loss_levels", above=0)
        fields.real(self, "wd_lambdas", least=0)
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


def on_val_schedule(epoch: int, check_every: int, val_every: int) -> bool:
    """Whether the validation MSE is checked at ``epoch``: at every check up to ``val_every``
    (early stopping often lands there), then every ``val_every`` epochs."""
    return epoch % (check_every if epoch <= val_every else val_every) == 0


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


def lr_groups(lrs: Sequence[float], octaves: float) -> list[list[float]]:
    """``lrs`` grouped by the band of ``octaves`` octaves their value falls in (a μ's group depends on it alone).

    >>> lr_groups([0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56], 4)
    [[0.02, 0.04], [0.08, 0.16, 0.32, 0.64], [1.28, 2.56]]
    """
    groups: dict[int, list[float]] = {}
    for mu in sorted(set(lrs)):
        groups.setdefault(math.floor(math.log2(mu) / octaves), []).append(mu)
    return [groups[k] for k in sorted(groups)]


def _span(values: Sequence[float]) -> str:
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}..{values[-1]:g}"


def shards(config: Config) -> dict[str, dict]:
    """The blocks of models trained together, runs in blocks of ``RUN_BLOCK``.

    (b): one shard per band of ``lr_octaves`` octaves of μ; (d): one per B and set of μ ∈ ``wd_lrs``
    to train, over every λ of that set.  A batch of several settings pays each operation's fixed
    cost once for all of them; a model's result does not depend on its batch mates.
    """
    out = {}
    for runs in _blocks(config.n_runs):
        for lrs in lr_groups(config.lrs, config.lr_octaves):
            out[f"b-mu{_span(lrs)}-{_runs_name(runs)}"] = _spec(
                config, config.batch_size, lrs, [0.0], runs, config.loss_levels
            )
        for batch_size in config.wd_batch_sizes:
            blocks: dict[tuple[float, ...], list[float]] = {}  # μ to train -> the λ that train them
            for lam in config.wd_lambdas:
                if lrs := _wd_lrs_to_train(config, batch_size, lam):
                    blocks.setdefault(tuple(lrs), []).append(lam)
            for lrs, lambdas in blocks.items():
                out[f"d-B{batch_size}-mu{_span(lrs)}-lam{_span(lambdas)}-{_runs_name(runs)}"] = _spec(
                    config, batch_size, lrs, lambdas, runs
                )
    return out


def order_seed(seed: int, run: int) -> int:
    """Seed of run ``run``'s mini-batch shuffling (its data and initialisation use ``seed + 1 + run``
    and ``seed + 200_000 + run``)."""
    return seed + 400_000 + run


def test_set(data: DataSource | dict, n_test: int, seed: int) -> tuple:
    """The test set every run shares: (X, Y) tensors."""
    return draw(data, n_test, seed + 100_000, split="test")


def run_shard(spec: dict) -> dict[str, np.ndarray]:
    """Train the block μ × λ × runs of ``spec`` (run fastest) at its B and measure every model.

    Returns arrays of shape (n_lr, n_lambda, n_runs[, ...]): status, stop_epoch, the final
    train/val/test MSE, the early-stopped (lowest validation MSE) epoch and val/test MSE,
    the level records (J, G, V, V_fix over each level's window), the loss history; and ``cpu_seconds``.
    The training loop lives in :mod:`experiments.sgd_training` (imported here: it needs torch).
    """
    from experiments import sgd_training

    return sgd_training.run_shard(spec)


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

    from experiments.batched_mlp import n_params  # torch, which gather needs for the data anyway

    process = DataProcess()
    levels = {k: lr_grid(f"level_{k}") for k in ("epoch", "J", "G", "V", "Vf")}
    n_checks = config.stopping.max_epochs // config.stopping.check_every + 1
    return Results(
        config=config,
        process=summary(config.data, *test_set(config.data, config.n_test, config.seed)),
        noise_var=noise_variance(config.data)[0],
        n_params=n_params(config.width, config.hidden_layers, process.dim, process.dim),
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
    import torch

    torch.set_num_threads(1)  # tiny matrices: one thread per process (the build's engine sets it for shards)
    results = run(PROFILES[sys.argv[1] if len(sys.argv) > 1 else "quick"])
    for mu, status, epoch, test in zip(
        results.config.lrs, results.status, results.stop_epoch, results.test_loss, strict=True
    ):
        print(f"μ={mu}: status {status} epochs {epoch} test {test.round(3)}")
    print("weight decay test loss (B, μ, λ):", results.wd_test_loss.mean(-1).round(3))
    print("CPU seconds:", {k: round(v, 1) for k, v in results.seconds.items()})
