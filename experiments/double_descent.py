"""Computer assignment 1: double descent of two-hidden-layer ReLU networks in the width M.

For every width M of a grid and several seeds, a network 8 -> M -> M -> 8 is trained on
N = 100 samples of :mod:`experiments.data` with full-batch Adam, finished with L-BFGS where
Adam is slow, until a stated convergence criterion holds (see :class:`Training`), and its
final training MSE and its MSE on a large independent test set are recorded.  The same sweep is repeated with N = 200
samples for item (d).  The training-loss histories of the sweep's widths 10, 50 and 100
answer item (b).

All models of a width bucket train as one batched computation (:mod:`experiments.batched_mlp`)
with a batched Adam whose learning rate is a per-model tensor, so every model follows
exactly the trajectory it would follow alone (``tests/test_double_descent.py`` checks
this against :func:`train_sequential`, a plain ``nn.Sequential`` + ``torch.optim.Adam``);
the L-BFGS finish keeps separate curvature pairs and line searches per model.  The two
training-set sizes run in two processes, each on one thread.

Run alone with ``python -m experiments.double_descent [quick|full]``; the report builder
calls :func:`run`, :func:`save` and :func:`load`, writing ``arrays.npz`` and
``results.json`` into the stage's data directory.
"""

import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import repeat
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from experiments import batched_mlp
from experiments.data import DataProcess, make_data, optimal_test_error, teacher
from report import io

HIDDEN_LAYERS = 2


@dataclass(frozen=True)
class Training:
    """Full-batch Adam with a per-model reduce-on-plateau learning rate, an L-BFGS finish, and when to stop.

    Every ``patience`` epochs each model compares its training MSE with the value at its
    previous check; if it fell by less than the fraction ``min_improvement``, its learning
    rate is multiplied by ``factor``.  A model has *converged* (and is frozen) when its
    training MSE is below ``tol`` or its learning rate has decayed below ``lr_min``, i.e.
    the loss stopped falling even at a rate ``lr0 / lr_min`` times smaller than the start.
    Models that have not converged after ``max_epochs`` (the slow ones just above the
    interpolation threshold) continue with L-BFGS until their MSE is below ``tol``, a line
    search finds no decrease, the same plateau test fails, or ``lbfgs_iters`` iterations.
    """

    lr0: float = 3e-3  # Adam's initial rate: the largest that is stable for every width
    factor: float = 0.3  # rate multiplier on a plateau
    patience: int = 500  # epochs between plateau checks
    min_improvement: float = 0.01  # a plateau: < 1 % decrease of the training MSE per check
    lr_min: float = 1e-6  # converged when the rate decayed below this (the loss has plateaued)
    tol: float = 1e-7  # converged when the training MSE is below this (interpolation)
    max_epochs: int = 8000  # Adam's cap; models still unconverged then are finished by L-BFGS ...
    lbfgs_iters: int = 6000  # ... for at most this many iterations (the report states which models hit it)
    lbfgs_history: int = 20  # curvature pairs kept by L-BFGS


@dataclass(frozen=True)
class Config:
    """The sweep: which widths, seeds and training-set sizes, and how "interpolating" is decided."""

    widths: tuple[int, ...] = (
        *range(2, 17, 2),
        *range(17, 27),
        *range(28, 41, 2),
        *(45, 50, 60, 80, 100, 140, 200),
    )  # dense around the thresholds M ~ 21 (N = 100) and M ~ 32 (N = 200), where M^2 + 18M + 8 ~ 8N
    seeds: tuple[int, ...] = (0, 1, 2)  # initialisation seeds per width
    n_train: tuple[int, ...] = (100, 200)  # training-set sizes; the first is the assignment's N
    n_test: int = 10_000  # independent test points
    curve_widths: tuple[int, ...] = (10, 50, 100)  # item (b): training curves of these widths (in `widths`)
    interp_tol: float = 1e-4  # "training loss ~ 0": interpolating if the median final MSE is below this
    over_width: int = 100  # item (d): the clearly overparameterised width (in `widths`)
    sample_seed: int = 100  # training sets use sample_seed + N, the test set sample_seed
    bucket_ratio: float = 1.3  # widths padded together differ by at most this factor ...
    bucket_floor: int = 16  # ... or are all at most this: tiny models are overhead-bound, padding is free
    workers: int = 2  # processes on a CPU, one per training-set size (1: all in this process)
    training: Training = field(default_factory=Training)
    seed: int = 0  # added to every initialisation seed (a fresh set of networks on the same data)


PROFILES = {
    "full": Config(),
    "quick": Config(
        widths=(4, 10, 20, 50, 100),
        seeds=(0,),
        n_test=1000,
        workers=1,
        training=Training(lr0=1e-2, patience=50, max_epochs=300, lbfgs_iters=100),
    ),
}


@dataclass(frozen=True)
class Sweep:
    """Final losses of every (width, seed) trained on one training set of size ``n``."""

    n: int
    train: np.ndarray  # (n_widths, n_seeds) final training MSE
    test: np.ndarray  # (n_widths, n_seeds) test MSE
    epochs: np.ndarray  # (n_widths, n_seeds) Adam epochs until convergence (or the cap)
    lbfgs: np.ndarray  # (n_widths, n_seeds) L-BFGS iterations after Adam's cap (0: converged with Adam)


@dataclass(frozen=True)
class Results:
    """Everything the figures and the report text of this stage need."""

    config: Config
    process: DataProcess
    r_t: float  # theoretical optimal test error
    r_t_empirical: float  # test MSE of the true g on the test set
    signal_var: float  # Var g_j(x), averaged over the outputs j, on the test set
    sweeps: tuple[Sweep, ...]  # one per config.n_train
    curve_epochs: np.ndarray  # (T,) epochs at which the (b) histories were sampled (1-based)
    curves: np.ndarray  # (n_curve_widths, n_seeds, T) training MSE, NaN after convergence
    seconds: float  # wall-clock time of run()


def buckets(widths: Sequence[int], ratio: float, floor: int = 0) -> list[list[int]]:
    """Split sorted distinct ``widths`` into groups whose max/min is at most ``ratio`` or max at most ``floor``.

    >>> buckets([2, 4, 10, 11, 12, 13, 30], 1.3)
    [[2], [4], [10, 11, 12, 13], [30]]
    >>> buckets([2, 4, 10, 11, 12, 13, 30], 1.3, floor=10)
    [[2, 4, 10], [11, 12, 13], [30]]
    """
    groups: list[list[int]] = []
    for width in sorted(set(widths)):
        if groups and (width <= ratio * groups[-1][0] or width <= floor):
            groups[-1].append(width)
        else:
            groups.append([width])
    return groups


def train_batched(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    training: Training,
    progress: tqdm | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train every model of ``model`` in place on ``(X, Y)`` until each has converged.

    Adam's moments and step counter are those of ``torch.optim.Adam`` (defaults
    betas=(0.9, 0.999), eps=1e-8); the rate is a per-model tensor and a converged model's
    rate is set to zero, which freezes it.

    Returns
    -------
    history : Tensor of shape (epochs_run, n_models)
        Training MSE before each update; NaN once a model has converged.
    epochs : Tensor of shape (n_models,)
        Updates applied to each model.
    """
    n, dev = model.n_models, X.device
    flat = flatten(model).requires_grad_()
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)
    lr = torch.full((n,), training.lr0, dtype=torch.float64, device=dev)
    last = torch.full((n,), torch.inf, dtype=X.dtype, device=dev)
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    epochs = torch.zeros(n, dtype=torch.long, device=dev)
    history = torch.full((training.max_epochs, n), torch.nan, dtype=X.dtype, device=dev)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    t = 0
    for t in range(1, training.max_epochs + 1):
        loss = losses(model, flat, X, Y)  # (n_models,)
        if t % training.patience == 0:
            stalled = loss.detach() > (1 - training.min_improvement) * last
            lr = torch.where(stalled & ~done, lr * training.factor, lr)
            last = loss.detach().clone()
        done |= (loss.detach() < training.tol) | (lr < training.lr_min)
        lr = lr.masked_fill(done, 0.0)
        if bool(done.all()):
            break
        history[t - 1] = loss.detach().masked_fill(done, torch.nan)
        epochs += (~done).long()
        (grad,) = torch.autograd.grad(loss.sum(), flat)  # sum of per-model losses: per-model gradients
        with torch.no_grad():
            m.lerp_(grad, 1 - beta1)
            v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = (lr / (1 - beta1**t)).to(flat.dtype).unsqueeze(1)  # (n_models, 1)
            flat.addcdiv_(m * step, v.sqrt() / (1 - beta2**t) ** 0.5 + eps, value=-1)
        if progress is not None:
            progress.update(1)
    unflatten(model, flat)
    return history[: t - 1] if bool(done.all()) else history, epochs


def lbfgs_finish(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    active: torch.Tensor,
    training: Training,
    progress: tqdm | None = None,
) -> torch.Tensor:
    """Continue the ``active`` models of ``model`` in place with L-BFGS; return iterations per model.

    Every model has its own curvature pairs, two-loop recursion and backtracking (Armijo)
    line search: inner products are taken per model, so models never interact.  A model
    stops when its training MSE is below ``training.tol``, when its line search finds no
    decrease, when its MSE fell by less than ``training.min_improvement`` over the last
    ``training.patience`` iterations, or after ``training.lbfgs_iters`` iterations.
    """
    n, dev = model.n_models, X.device
    x = flatten(model)  # (n_models, n_params_max)

    def loss_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.detach().requires_grad_()
        loss = losses(model, x, X, Y)
        return loss.detach(), torch.autograd.grad(loss.sum(), x)[0]

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(1)  # (n_models,)

    f, g = loss_and_grad(x)
    active = active & (f >= training.tol)
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (s, y, 1 / s.y), oldest first
    gamma = torch.full((n,), 1e-3, dtype=x.dtype, device=dev)  # initial inverse-Hessian scale
    iterations = torch.zeros(n, dtype=torch.long, device=dev)
    last = f.clone()
    for k in range(1, training.lbfgs_iters + 1):
        if not bool(active.any()):
            break
        q, alphas = g.clone(), []
        for s, y, rho in reversed(pairs):
            alphas.append(rho * dot(s, q))
            q -= alphas[-1].unsqueeze(1) * y
        r = gamma.unsqueeze(1) * q
        for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            r += s * (alpha - rho * dot(y, r)).unsqueeze(1)
        d = torch.where((dot(g, r) > 0).unsqueeze(1), -r, -g)  # fall back to steepest descent
        slope = dot(g, d)  # (n_models,) < 0
        t = torch.ones(n, dtype=x.dtype, device=dev)
        accepted = ~active  # stopped models take no step and need no search
        with torch.no_grad():
            for _ in range(30):  # halve the step until the Armijo condition holds
                accepted |= losses(model, x + t.unsqueeze(1) * d, X, Y) <= f + 1e-4 * t * slope
                if bool(accepted.all()):
                    break
                t = torch.where(accepted, t, t / 2)
        active &= accepted
        x_new = x + torch.where(active, t, 0.0).unsqueeze(1) * d
        f_new, g_new = loss_and_grad(x_new)
        s, y = x_new - x, g_new - g
        sy = dot(s, y)
        curved = sy > 1e-10  # keep a pair only where it carries positive curvature
        pairs.append((s * curved.unsqueeze(1), y * curved.unsqueeze(1), torch.where(curved, 1 / sy, 0.0)))
        pairs = pairs[-training.lbfgs_history :]
        gamma = torch.where(curved, sy / dot(y, y).clamp_min(1e-30), gamma)
        iterations += active.long()
        x, f, g = x_new, f_new, g_new
        active &= f >= training.tol
        if k % training.patience == 0:  # the same plateau test as Adam's
            active &= f <= (1 - training.min_improvement) * last
            last = f.clone()
        if progress is not None:
            progress.update(1)
    unflatten(model, x)
    return iterations


def flatten(model: batched_mlp.BatchedMLP) -> torch.Tensor:
    """All parameters of each model as one row: (n_models, n_params_max), a detached copy.

    The optimizers work on this flat tensor, so a step is a handful of tensor operations
    instead of a handful per layer (the loop is bound by per-operation overhead).
    """
    return torch.cat([p.detach().reshape(model.n_models, -1) for p in model.parameters()], 1)


def as_model(model: batched_mlp.BatchedMLP, flat: torch.Tensor) -> batched_mlp.BatchedMLP:
    """``model`` with its parameters replaced by views into ``flat`` (gradients flow to ``flat``)."""
    params = model.parameters()  # all 3-D: (n_models, rows, cols)
    chunks = flat.split([p[0].numel() for p in params], 1)
    parts = [c.view(p.shape) for c, p in zip(chunks, params, strict=True)]
    layers = len(model.weights)
    return batched_mlp.BatchedMLP(parts[:layers], parts[layers:], model.mask, model.widths)


def unflatten(model: batched_mlp.BatchedMLP, flat: torch.Tensor) -> None:
    """Copy ``flat`` back into the parameters of ``model``."""
    with torch.no_grad():
        for p, trained in zip(model.parameters(), as_model(model, flat).parameters(), strict=True):
            p.copy_(trained)


def losses(
    model: batched_mlp.BatchedMLP, flat: torch.Tensor, X: torch.Tensor, Y: torch.Tensor
) -> torch.Tensor:
    """Training MSE of every model at parameters ``flat``: shape (n_models,)."""
    return batched_mlp.mse(batched_mlp.forward(as_model(model, flat), X), Y)


def train_sequential(
    width: int, seed: int, X: torch.Tensor, Y: torch.Tensor, training: Training
) -> tuple[torch.nn.Sequential, list[float]]:
    """The naive reference: one ``nn.Sequential`` with ``torch.optim.Adam`` and the same schedule.

    Returns the trained network and its training MSE before each update.
    """
    net = batched_mlp.to_sequential(
        batched_mlp.init([width], [seed], HIDDEN_LAYERS, dtype=X.dtype, dev=X.device), 0
    )
    opt = torch.optim.Adam(net.parameters(), lr=training.lr0)
    lr, last, history = training.lr0, float("inf"), []
    for t in range(1, training.max_epochs + 1):
        loss = torch.nn.functional.mse_loss(net(X), Y)
        value = loss.item()
        if t % training.patience == 0:
            if value > (1 - training.min_improvement) * last:
                lr *= training.factor
            last = value
        if value < training.tol or lr < training.lr_min:
            break
        history.append(value)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, history


def sweep(
    widths: Sequence[int],
    seeds: Sequence[int],
    data: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: Config,
    position: int = 0,
) -> tuple[Sweep, dict[int, np.ndarray]]:
    """Train every (width, seed) on ``data`` bucket by bucket; return final losses and histories.

    The histories (keyed by width, each (n_seeds, epochs_run)) are kept for
    ``config.curve_widths`` only; ``position`` places the progress bar.
    """
    X, Y = data
    shape = (len(widths), len(seeds))
    train, test_mse = np.zeros(shape), np.zeros(shape)
    epochs, lbfgs = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    histories: dict[int, np.ndarray] = {}
    for group in buckets(widths, config.bucket_ratio, config.bucket_floor):
        pairs = [(w, s) for w in group for s in seeds]
        inits = [config.seed + s for _, s in pairs]
        model = batched_mlp.init([w for w, _ in pairs], inits, HIDDEN_LAYERS, dev=X.device)
        label = f"N={len(X)} M={group[0]}..{group[-1]}"
        rows = [widths.index(w) for w in group]
        with tqdm(
            total=config.training.max_epochs, desc=label, position=position, leave=False, mininterval=1.0
        ) as bar:
            history, ran = train_batched(model, X, Y, config.training, bar)
        unconverged = ran >= config.training.max_epochs
        if bool(unconverged.any()):
            with tqdm(
                total=config.training.lbfgs_iters, desc=f"{label} L-BFGS", position=position, leave=False
            ) as bar:
                finished = lbfgs_finish(model, X, Y, unconverged, config.training, bar)
            lbfgs[rows] = finished.view(len(group), len(seeds)).cpu().numpy()
        with torch.no_grad():
            final_train = batched_mlp.mse(batched_mlp.forward(model, X), Y)
            final_test = batched_mlp.mse(batched_mlp.forward(model, test[0]), test[1])
        train[rows] = final_train.view(len(group), len(seeds)).double().cpu().numpy()
        test_mse[rows] = final_test.view(len(group), len(seeds)).double().cpu().numpy()
        epochs[rows] = ran.view(len(group), len(seeds)).cpu().numpy()
        for j, w in enumerate(group):
            if w in config.curve_widths:
                histories[w] = history[:, j * len(seeds) : (j + 1) * len(seeds)].T.double().cpu().numpy()
    return Sweep(n=len(X), train=train, test=test_mse, epochs=epochs, lbfgs=lbfgs), histories


def log_epochs(n_epochs: int, points: int = 400) -> np.ndarray:
    """About ``points`` distinct log-spaced epochs 1..n_epochs (1-based)."""
    return np.unique(np.geomspace(1, n_epochs, points).round().astype(np.int64))


def sweep_size(n: int, config: Config, process: DataProcess, position: int = 0) -> tuple[Sweep, dict]:
    """Draw the training set of size ``n`` and the test set, and run :func:`sweep` on one thread.

    One intra-op thread because every tensor here is tiny: the loop is bound by per-operation
    overhead, and two OpenMP threads sharing a core with other work run ~10x slower, not faster.
    The two cores are used instead by running the training-set sizes in parallel processes.
    """
    torch.set_num_threads(1)
    dev = batched_mlp.device()
    test = tuple(t.to(dev) for t in make_data(config.n_test, config.sample_seed, process))
    data = tuple(t.to(dev) for t in make_data(n, config.sample_seed + n, process))
    return sweep(list(config.widths), config.seeds, data, test, config, position)


def run(config: Config) -> Results:
    """Run the sweeps for every training-set size of ``config`` (see the module docstring)."""
    start, threads, process = time.perf_counter(), torch.get_num_threads(), DataProcess()
    sizes = config.n_train
    try:
        if config.workers > 1 and batched_mlp.device().type == "cpu":
            context = multiprocessing.get_context("spawn")  # fork after torch's thread pool started can hang
            with ProcessPoolExecutor(min(config.workers, len(sizes)), mp_context=context) as pool:
                outcomes = list(
                    pool.map(sweep_size, sizes, repeat(config), repeat(process), range(len(sizes)))
                )
        else:
            outcomes = [sweep_size(n, config, process, k) for k, n in enumerate(sizes)]
    finally:
        torch.set_num_threads(threads)
    histories = outcomes[0][1]  # item (b) uses the first training set
    curve_epochs = log_epochs(max(h.shape[1] for h in histories.values()))
    curves = np.full((len(config.curve_widths), len(config.seeds), len(curve_epochs)), np.nan)
    for i, w in enumerate(config.curve_widths):
        keep = curve_epochs <= histories[w].shape[1]
        curves[i][:, keep] = histories[w][:, curve_epochs[keep] - 1]
    X_test, Y_test = make_data(config.n_test, config.sample_seed, process, dtype=torch.float64)
    g = teacher(X_test, process)
    return Results(
        config=config,
        process=process,
        r_t=optimal_test_error(process),
        r_t_empirical=batched_mlp.mse(g, Y_test).item(),
        signal_var=g.var(0).mean().item(),
        sweeps=tuple(sweep for sweep, _ in outcomes),
        curve_epochs=curve_epochs,
        curves=curves,
        seconds=time.perf_counter() - start,
    )


def threshold_index(widths: Sequence[int], train: np.ndarray, tol: float) -> int | None:
    """Index of the smallest width from which on the median final training MSE stays below ``tol``.

    Parameters
    ----------
    widths : sorted widths, length W
    train : (W, n_seeds) final training MSE
    tol : the "training loss ~ 0" level

    Returns
    -------
    The index, or None if the widest model does not interpolate.
    """
    below = np.median(train, axis=1) < tol
    if not below[-1]:
        return None
    above = np.flatnonzero(~below)
    return int(above[-1]) + 1 if above.size else 0


def save(results: Results, directory: Path) -> None:
    arrays = {"curve_epochs": results.curve_epochs, "curves": results.curves}
    for s in results.sweeps:
        arrays |= {
            f"train_{s.n}": s.train,
            f"test_{s.n}": s.test,
            f"epochs_{s.n}": s.epochs,
            f"lbfgs_{s.n}": s.lbfgs,
        }
    io.save_arrays(arrays, directory)
    meta = {
        "config": asdict(results.config),
        "process": asdict(results.process),
        "r_t": results.r_t,
        "r_t_empirical": results.r_t_empirical,
        "signal_var": results.signal_var,
        "seconds": results.seconds,
    }
    io.save_json(meta, directory)


def load(directory: Path) -> Results:
    arrays, meta = io.load_arrays(directory), io.load_json(directory)
    raw = meta["config"]
    config = Config(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k != "training"},
        training=Training(**raw["training"]),
    )
    sweeps = tuple(
        Sweep(n, *(arrays[f"{key}_{n}"] for key in ("train", "test", "epochs", "lbfgs")))
        for n in config.n_train
    )
    return Results(
        config=config,
        process=DataProcess(**meta["process"]),
        r_t=meta["r_t"],
        r_t_empirical=meta["r_t_empirical"],
        signal_var=meta["signal_var"],
        sweeps=sweeps,
        curve_epochs=arrays["curve_epochs"],
        curves=arrays["curves"],
        seconds=meta["seconds"],
    )


if __name__ == "__main__":
    profile = sys.argv[1] if len(sys.argv) > 1 else "quick"
    res = run(PROFILES[profile])
    for s in res.sweeps:
        print(f"N={s.n}")
        for w, tr, te, ep in zip(res.config.widths, s.train, s.test, s.epochs, strict=True):
            print(f"  M={w:4d} train={np.median(tr):.2e} test={np.median(te):.3f} epochs={ep.tolist()}")
        print(f"  L-BFGS iterations: {s.lbfgs.tolist()}")
    print(json.dumps({"r_t": res.r_t, "r_t_empirical": res.r_t_empirical, "seconds": res.seconds}))
