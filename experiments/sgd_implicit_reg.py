"""Implicit regularisation of SGD (computer assignment 2): learning rate vs gradient norms.

(a)/(b) Networks with five hidden ReLU layers of M units are trained by plain SGD with
constant learning rate μ on N training samples in mini-batches of B, one model per
(μ, run), all as one batched computation (:mod:`experiments.batched_mlp`).  Each run
draws new training data and a new initialisation; models of one run share data,
initialisation and mini-batch order, so only μ differs between them.  A model stops
once its full training MSE is below ``target_loss``; it is marked diverged if the loss
blows up and stalled if it stops improving.
(c) G = ‖∇J‖², V = (1/N_b) Σ_b ‖∇J_b − ∇J‖² (expected over the random partitions that
training draws; the fixed consecutive split as a cross-check, :mod:`experiments.grad_stats`)
and J where each model first crosses each of ``loss_levels`` (comparison at equal loss) and
at the final parameters, with the validation and test MSE.
(d) The same with weight decay λ (as ``torch.optim.SGD(weight_decay=λ)``) over a grid of
(B, μ, λ) that includes λ = 0, every model under one stopping rule (stall or
``wd_max_epochs``), so early stopping and weight decay are separated; settings are
selected on a validation set from the same process.

Run through the report builder (``python build.py``), or directly::

    python -m experiments.sgd_implicit_reg [quick|full]   # prints a summary, writes nothing

``save`` writes ``arrays.npz`` and ``results.json`` into the stage's results directory.
"""

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np
import torch

from experiments import batched_mlp
from experiments.data import DataProcess, DataSource, draw, noise_variance, summary
from experiments.grad_stats import expected_variation
from report import progress
from report.io import load_arrays, load_json, save_arrays, save_json


@dataclass(frozen=True)
class Config:
    width: int = 50  # M: hidden units per layer, overparameterised for N = 100
    hidden_layers: int = 5
    n_train: int = 100  # N, freshly sampled in every run
    n_test: int = 10_000  # one shared test set; its MSE has standard error ~1 %
    batch_size: int = 20  # B; must divide n_train
    lrs: tuple[float, ...] = (0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)  # μ grid of (b)
    n_runs: int = 10  # runs with newly sampled training data and initialisation (error bars)
    n_val: int = 1_000  # validation set (same process) that selects the settings of (d)
    target_loss: float = 1e-5  # a model stops once its training MSE is below this
    loss_levels: tuple[float, ...] = (1e-3, 1e-4, 1e-5)  # G, V, J recorded where a model first crosses each
    max_epochs: int = 12_000
    check_every: int = 10  # epochs between full-data loss evaluations (history, stopping)
    stall_epochs: int = 2_000  # stalled: best loss improved by < 1 % over this many epochs
    diverge_factor: float = 100.0  # diverged: loss non-finite or this many times the initial loss
    wd_batch_sizes: tuple[int, ...] = (20, 50)  # B grid of (d)
    wd_lrs: tuple[float, ...] = (0.32, 0.64)  # μ grid of (d): around the best μ without weight decay
    wd_lambdas: tuple[float, ...] = (0.0, 1e-3, 2e-3, 4e-3, 8e-3)  # λ grid of (d); λ = 0 is the baseline
    wd_max_epochs: int = 3_000  # (d) stopping rule, the same for every λ including 0
    wd_stall_epochs: int = 500  # with weight decay the loss settles on a plateau above zero
    seed: int = 0
    data: DataSource = field(default_factory=DataSource)  # where X, Y come from (settings.toml [data])


PROFILES = {
    "full": Config(),
    "quick": Config(
        width=16,
        n_test=500,
        n_val=200,
        lrs=(0.32, 0.64, 1.28),
        n_runs=2,
        target_loss=0.45,  # reachable in a few dozen epochs, so every code path runs
        loss_levels=(0.6, 0.45),
        max_epochs=100,
        stall_epochs=40,
        wd_lrs=(0.32, 0.64),
        wd_batch_sizes=(20,),
        wd_lambdas=(0.0, 1e-2),
        wd_max_epochs=30,
        wd_stall_epochs=20,
    ),
}


STALL_IMPROVEMENT = 0.01  # a model improves only when its loss falls below (1 - this) x its best


class Status(IntEnum):
    CONVERGED = 0  # training MSE below the target
    DIVERGED = 1  # loss non-finite or far above its initial value
    STALLED = 2  # no 1 % improvement of the best loss for stall_epochs
    MAX_EPOCHS = 3  # still improving when the epoch budget ran out


@dataclass
class Trajectory:
    model: batched_mlp.BatchedMLP  # final (or stopping) parameters of every model, detached
    history: np.ndarray  # (n_checks, n_models) training MSE every check_every epochs; NaN after the stop
    status: np.ndarray  # (n_models,) Status codes
    stop_epoch: np.ndarray  # (n_models,)
    at_level: dict[
        str, np.ndarray
    ]  # "epoch", "J", "G", "V": (n_models, n_levels) at each loss level; NaN if never


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
    grad_norm: np.ndarray  # (n_lr, n_runs) G = ‖∇J‖² at the final parameters
    grad_var: np.ndarray  # (n_lr, n_runs) V: E over random partitions of (1/N_b) Σ_b ‖∇J_b − ∇J‖²
    grad_var_fixed: np.ndarray  # (n_lr, n_runs) the same over the fixed consecutive split
    level_epoch: np.ndarray  # (n_lr, n_runs, n_levels) first check below each loss level
    level_loss: np.ndarray  # (n_lr, n_runs, n_levels) J there
    level_grad_norm: np.ndarray  # (n_lr, n_runs, n_levels) G there
    level_grad_var: np.ndarray  # (n_lr, n_runs, n_levels) expected V there
    wd_status: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_stop_epoch: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_train_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_val_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    wd_test_loss: np.ndarray  # (n_B, n_wd_lr, n_lambda, n_runs)
    seconds: dict  # wall-clock time per phase


def minibatch_orders(generator: torch.Generator, n_sets: int, n: int) -> torch.Tensor:
    """One epoch's shuffled sample order for each of ``n_sets`` training sets: (n_sets, n)."""
    return torch.rand(n_sets, n, generator=generator).argsort(dim=1)


def _select(model: batched_mlp.BatchedMLP, keep: torch.Tensor) -> batched_mlp.BatchedMLP:
    """The models ``keep`` (indices) of ``model`` as a new batch of leaf tensors."""
    return batched_mlp.BatchedMLP(
        weights=[w.detach()[keep].requires_grad_() for w in model.weights],
        biases=[b.detach()[keep].requires_grad_() for b in model.biases],
        mask=model.mask[keep],
        widths=tuple(model.widths[i] for i in keep.tolist()),
    )


def train(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    data_index: torch.Tensor,
    lr: torch.Tensor,
    weight_decay: torch.Tensor,
    batch_size: int,
    max_epochs: int,
    target_loss: float,
    check_every: int,
    stall_epochs: int,
    diverge_factor: float,
    order_seed: int,
    levels: tuple[float, ...] = (),
    desc: str = "SGD",
) -> Trajectory:
    """Train every model of ``model`` by SGD with its own learning rate and weight decay.

    Each step updates ``θ ← θ − μ (∇J_batch(θ) + λ θ)``, exactly as ``torch.optim.SGD``
    with ``weight_decay=λ`` (no momentum).  Every epoch each training set is reshuffled
    by one seeded generator, so a model's trajectory depends only on its own data,
    initialisation, μ and λ, not on the other models in the batch.  Every
    ``check_every`` epochs the full training MSE is evaluated; models that converged,
    diverged or stalled (see :class:`Status`) are frozen and removed from the batch.

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
    max_epochs, target_loss, check_every, stall_epochs, diverge_factor
        Stopping rules, as in :class:`Config`.
    order_seed
        Seed of the mini-batch shuffling.
    levels
        Training-loss levels: at the first check where a model's loss is below a level,
        its J, G and expected V (:func:`~experiments.grad_stats.expected_variation`) are recorded.
    desc
        Label of the progress bar.

    Returns
    -------
    Trajectory
    """
    n_models, (n_sets, n, _) = model.n_models, X.shape
    if n % batch_size:
        raise ValueError(f"batch size {batch_size} does not divide N = {n}")
    dev = X.device
    final = _select(model, torch.arange(n_models))
    model = _select(model, torch.arange(n_models))
    generator = torch.Generator().manual_seed(order_seed)
    history = np.full((max_epochs // check_every + 1, n_models), np.nan)
    status = np.full(n_models, Status.MAX_EPOCHS)
    stop_epoch = np.full(n_models, max_epochs)
    best = np.full(n_models, np.inf)  # best training MSE so far
    best_epoch = np.zeros(n_models, dtype=int)  # epoch of its last 1 % improvement
    initial = np.full(n_models, np.nan)
    at_level = {k: np.full((n_models, len(levels)), np.nan) for k in ("epoch", "J", "G", "V")}

    active = torch.arange(n_models)  # indices of the models still training
    sets = data_index.to(dev)
    lr_a = lr.to(dev, X.dtype)  # (n_active,)
    shrink = (1 - lr * weight_decay).view(-1, 1, 1).to(dev, X.dtype)  # (n_active, 1, 1)
    decaying = bool((weight_decay != 0).any())
    bar = progress.bar(total=max_epochs, desc=desc, unit="epoch", leave=False)
    for epoch in range(max_epochs + 1):
        if epoch > 0:
            order = minibatch_orders(generator, n_sets, n).to(dev)[sets]  # (n_active, N)
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
        if epoch % check_every:
            continue
        with torch.no_grad():
            loss = batched_mlp.mse(batched_mlp.forward(model, X[sets]), Y[sets]).double().cpu().numpy()
        ids = active.numpy()
        history[epoch // check_every, ids] = loss
        if epoch == 0:
            initial[ids] = loss
        crossing = (loss[:, None] < np.array(levels)) & np.isnan(
            at_level["epoch"][ids]
        )  # (n_active, n_levels)
        if crossing.any():
            rows = np.flatnonzero(crossing.any(1))
            sel = torch.from_numpy(rows).to(dev)
            G, V, _ = expected_variation(_select(model, sel), X[sets[sel]], Y[sets[sel]], batch_size)
            for key, value in [("epoch", epoch), ("J", loss[rows, None]), ("G", G.double().cpu().numpy()[:, None]),
                               ("V", V.double().cpu().numpy()[:, None])]:  # fmt: skip
                block = at_level[key][ids[rows]]
                at_level[key][ids[rows]] = np.where(crossing[rows], value, block)
        improved = loss < (1 - STALL_IMPROVEMENT) * best[ids]
        best[ids] = np.where(improved, loss, best[ids])
        best_epoch[ids] = np.where(improved, epoch, best_epoch[ids])
        done = np.full(len(ids), Status.MAX_EPOCHS)
        done[epoch - best_epoch[ids] >= stall_epochs] = Status.STALLED
        done[loss < target_loss] = Status.CONVERGED
        done[~np.isfinite(loss) | (loss > diverge_factor * initial[ids])] = Status.DIVERGED
        finished = done != Status.MAX_EPOCHS
        if epoch == max_epochs:
            finished[:] = True
        if finished.any():
            status[ids[finished]] = done[finished]
            stop_epoch[ids[finished]] = epoch
            with torch.no_grad():
                for target, source in zip(final.parameters(), model.parameters(), strict=True):
                    target[active[finished]] = source[torch.from_numpy(finished).to(dev)]
            keep = torch.from_numpy(~finished)
            active, sets = active[keep], sets[keep.to(dev)]
            lr_a, shrink = lr_a[keep.to(dev)], shrink[keep.to(dev)]
            model = _select(model, torch.nonzero(keep).flatten().to(dev))
            bar.set_postfix(training=len(active))
        if len(active) == 0:
            break
    bar.close()
    return Trajectory(model=final, history=history, status=status, stop_epoch=stop_epoch, at_level=at_level)


def _evaluate(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    *shared: tuple[torch.Tensor, torch.Tensor],
) -> list[np.ndarray]:
    """Training MSE (per-model sets X, Y: (n_models, N, dim)), then the MSE on each shared (X, Y) set."""
    with torch.no_grad():
        losses = [batched_mlp.mse(batched_mlp.forward(model, x), y) for x, y in [(X, Y), *shared]]
    return [loss.double().cpu().numpy() for loss in losses]


def run(config: Config) -> Results:
    """Train the μ grid of (b) and the weight-decay grid of (d); see the module docstring.

    Runs with one intra-op thread (restored afterwards): the matrices are tiny (B x M),
    so threads gain little on free cores and, measured on a loaded 2-core machine, make
    every step about 5 times slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(config)
    finally:
        torch.set_num_threads(threads)


def _run(config: Config) -> Results:
    process = DataProcess()  # its dim; the data come from config.data
    dev = batched_mlp.device()
    sets = [draw(config.data, config.n_train, config.seed + 1 + r) for r in range(config.n_runs)]
    X = torch.stack([x for x, _ in sets]).to(dev)  # (n_runs, N, dim)
    Y = torch.stack([y for _, y in sets]).to(dev)
    test = tuple(t.to(dev) for t in draw(config.data, config.n_test, config.seed + 100_000, split="test"))
    val = tuple(t.to(dev) for t in draw(config.data, config.n_val, config.seed + 300_000, split="val"))
    init_seeds = [config.seed + 200_000 + r for r in range(config.n_runs)]
    common = {
        "target_loss": config.target_loss,
        "check_every": config.check_every,
        "diverge_factor": config.diverge_factor,
        "order_seed": config.seed,
    }

    def grid(hyper: list[tuple[float, float]]) -> tuple[batched_mlp.BatchedMLP, dict]:
        """Models for every (μ, λ) in ``hyper`` × run, the run varying fastest."""
        n = len(hyper) * config.n_runs
        model = batched_mlp.init(
            [config.width] * n,
            init_seeds * len(hyper),
            config.hidden_layers,
            process.dim,
            process.dim,
            dev=dev,
        )
        lr, wd = (torch.tensor([h[k] for h in hyper]).repeat_interleave(config.n_runs) for k in (0, 1))
        return model, {"data_index": torch.arange(n) % config.n_runs, "lr": lr, "weight_decay": wd}

    seconds = {}
    start = time.perf_counter()
    model, per_model = grid([(mu, 0.0) for mu in config.lrs])
    traj = train(
        model, X, Y, **per_model, batch_size=config.batch_size, max_epochs=config.max_epochs,
        stall_epochs=config.stall_epochs, levels=config.loss_levels, desc="(b) μ grid", **common,
    )  # fmt: skip
    seconds["lr_grid"] = time.perf_counter() - start

    start = time.perf_counter()
    X_m, Y_m = X[per_model["data_index"]], Y[per_model["data_index"]]  # (n_models, N, dim)
    G, V, V_fixed = expected_variation(traj.model, X_m, Y_m, config.batch_size)
    seconds["grad_stats"] = time.perf_counter() - start
    train_loss, val_loss, test_loss = _evaluate(traj.model, X_m, Y_m, val, test)

    start = time.perf_counter()
    hyper = [(mu, lam) for mu in config.wd_lrs for lam in config.wd_lambdas]
    wd_shape = (len(config.wd_batch_sizes), len(config.wd_lrs), len(config.wd_lambdas), config.n_runs)
    wd = {k: np.zeros(wd_shape) for k in ("status", "stop_epoch", "train_loss", "val_loss", "test_loss")}
    for i, batch_size in enumerate(config.wd_batch_sizes):
        model, per_model = grid(hyper)
        wd_traj = train(
            model, X, Y, **per_model, batch_size=batch_size, max_epochs=config.wd_max_epochs,
            stall_epochs=config.wd_stall_epochs, desc=f"(d) weight decay, B={batch_size}", **common,
        )  # fmt: skip
        wd_train, wd_val, wd_test = _evaluate(
            wd_traj.model, X[per_model["data_index"]], Y[per_model["data_index"]], val, test
        )
        for key, values in [
            ("status", wd_traj.status), ("stop_epoch", wd_traj.stop_epoch),
            ("train_loss", wd_train), ("val_loss", wd_val), ("test_loss", wd_test),
        ]:  # fmt: skip
            wd[key][i] = values.reshape(wd_shape[1:])
    seconds["weight_decay"] = time.perf_counter() - start

    shape = (len(config.lrs), config.n_runs)
    return Results(
        config=config,
        process=summary(config.data, *(t.cpu() for t in test)),
        noise_var=noise_variance(config.data)[0],
        n_params=batched_mlp.n_params(config.width, config.hidden_layers, process.dim, process.dim),
        epochs=np.arange(traj.history.shape[0]) * config.check_every,
        history=traj.history.T.reshape(*shape, -1),
        status=traj.status.reshape(shape),
        stop_epoch=traj.stop_epoch.reshape(shape),
        train_loss=train_loss.reshape(shape),
        val_loss=val_loss.reshape(shape),
        test_loss=test_loss.reshape(shape),
        grad_norm=G.double().cpu().numpy().reshape(shape),
        grad_var=V.double().cpu().numpy().reshape(shape),
        grad_var_fixed=V_fixed.double().cpu().numpy().reshape(shape),
        level_epoch=traj.at_level["epoch"].reshape(*shape, -1),
        level_loss=traj.at_level["J"].reshape(*shape, -1),
        level_grad_norm=traj.at_level["G"].reshape(*shape, -1),
        level_grad_var=traj.at_level["V"].reshape(*shape, -1),
        wd_status=wd["status"].astype(int),
        wd_stop_epoch=wd["stop_epoch"].astype(int),
        wd_train_loss=wd["train_loss"],
        wd_val_loss=wd["val_loss"],
        wd_test_loss=wd["test_loss"],
        seconds=seconds,
    )


_JSON_FIELDS = ("config", "process", "noise_var", "n_params", "seconds")


def save(results: Results, directory: Path) -> None:
    """Write ``arrays.npz`` (every array field) and ``results.json`` (the rest) into ``directory``."""
    fields = {f.name: getattr(results, f.name) for f in dataclasses.fields(results)}
    meta = {k: fields.pop(k) for k in _JSON_FIELDS}
    save_json({**meta, "config": dataclasses.asdict(results.config)}, directory)
    save_arrays(fields, directory)


def load(directory: Path) -> Results:
    meta = load_json(directory)
    raw = meta.pop("config")
    config = Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k != "data"},
        data=DataSource(**raw["data"]),
    )
    return Results(config=config, **meta, **load_arrays(directory))


if __name__ == "__main__":
    results = run(PROFILES[sys.argv[1] if len(sys.argv) > 1 else "quick"])
    for mu, status, epoch, test, G, V in zip(
        results.config.lrs, results.status, results.stop_epoch, results.test_loss,
        results.grad_norm, results.grad_var, strict=True,
    ):  # fmt: skip
        print(
            f"μ={mu}: status {status} epochs {epoch} test {test.round(3)} G {G.mean():.2e} V {V.mean():.2e}"
        )
    print("weight decay test loss (B, μ, λ):", results.wd_test_loss.mean(-1).round(3))
    print("seconds:", {k: round(v, 1) for k, v in results.seconds.items()})
