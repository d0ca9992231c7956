"""Computer assignment 1: double descent of ReLU networks in the hidden width M.

For every width M of a grid and every initialization seed, a network d -> M -> M -> d
(``Config.hidden_layers`` hidden layers, d = ``DataProcess.dim``) is trained on N samples of
:mod:`experiments.data` with full-batch float64 L-BFGS (:mod:`experiments.optimizers`) until it
interpolates or stalls by the stated rule, the same procedure for every width; its final
training MSE and its MSE on a large independent test set are recorded.  The sweep runs for each
training-set size of ``Config.n_train`` (the second answers item (d)).  The training-loss
histories of the widths ``Config.curve_widths`` answer item (b).

All models of a width bucket train as one batched computation (:mod:`experiments.batched_mlp`);
the optimizer treats every model as if it were alone.  With ``workers`` > 1 on a CPU the
training-set sizes run in parallel processes, each on one thread.

:func:`check` verifies the effective parameter count: SymPy's P(M) against the networks' own
count, and the Jacobian rank P - K M at balanced points (:mod:`experiments.jacobian_rank`).

Run alone with ``python -m experiments.double_descent [quick|full]``; the report builder
calls :func:`run`, :func:`save` and :func:`load`, writing ``arrays.npz`` and
``results.json`` into the stage's data directory.
"""

import json
import multiprocessing
import resource
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import repeat
from pathlib import Path

import numpy as np
import torch

from experiments import batched_mlp, effective_params
from experiments.data import DataProcess, DataSource, draw, summary
from experiments.jacobian_rank import balanced_point, jacobian_rank
from experiments.optimizers import LBFGS, lbfgs
from report import io, progress
from report.checks import Check


@dataclass(frozen=True)
class Config:
    """The sweep: which widths, seeds and training-set sizes, and the optimizer."""

    widths: tuple[int, ...] = (
        *range(2, 17, 2),
        *range(17, 27),
        *range(28, 41, 2),
        *(45, 50, 60, 80, 100, 140, 200),
    )  # dense around the predicted thresholds M ~ 21 (N = 100) and M ~ 33 (N = 200)
    seeds: tuple[int, ...] = tuple(range(10))  # initialization seeds per width
    n_train: tuple[int, ...] = (100, 200)  # training-set sizes; the first is the assignment's N
    n_test: int = 10_000  # independent test points
    hidden_layers: int = 2  # K, the assignment's "two hidden layers of M units"
    curve_widths: tuple[int, ...] = (10, 50, 100)  # item (b): training curves of these widths (in `widths`)
    over_width: int = 100  # item (d): the clearly overparameterized width (in `widths`)
    sample_seed: int = 100  # training sets use sample_seed + N, the test set sample_seed
    bucket_ratio: float = 1.3  # widths padded together differ by at most this factor ...
    bucket_floor: int = 16  # ... or are all at most this: tiny models are overhead-bound, padding is free
    optimizer: LBFGS = field(default_factory=LBFGS)
    rank_widths: tuple[int, ...] = (2, 4, 6, 8, 12, 16)  # Jacobian-rank check of P_eff at these widths ...
    rank_samples: int = 200  # ... on this many Gaussian inputs (n d >> P)
    workers: int = field(
        default=2, metadata={"affects_results": False}
    )  # processes on a CPU (1: in this one)
    seed: int = 0  # added to every initialization seed (a fresh set of networks on the same data)
    data: DataSource = field(default_factory=DataSource)  # where X, Y come from (settings.toml [data])


PROFILES = {
    "full": Config(),
    "quick": Config(
        widths=(4, 10, 20, 50, 100),
        seeds=(0,),
        n_test=1000,
        workers=1,
        optimizer=LBFGS(window=50, max_iters=150),
        rank_widths=(4, 8),
        rank_samples=100,
    ),
}


@dataclass(frozen=True)
class Sweep:
    """Final losses of every (width, seed) trained on one training set of size ``n``."""

    n: int
    train: np.ndarray  # (n_widths, n_seeds) final training MSE
    test: np.ndarray  # (n_widths, n_seeds) test MSE
    iterations: np.ndarray  # (n_widths, n_seeds) L-BFGS iterations until the model stopped
    stop: np.ndarray  # (n_widths, n_seeds) why it stopped: values of experiments.optimizers.Stop


@dataclass(frozen=True)
class Ranks:
    """Jacobian ranks at ``config.rank_widths``: a balanced point and nn.Linear's default initialization."""

    balanced: np.ndarray  # (n_rank_widths,) rank at a balanced point
    gap: np.ndarray  # (n_rank_widths,) decades between retained and discarded singular values there
    default: np.ndarray  # (n_rank_widths, n_seeds) rank at the default initialization of each seed
    inactive: np.ndarray  # (n_rank_widths, n_seeds) units active on < 1 % or > 99 % of the sample there


@dataclass(frozen=True)
class Results:
    """Everything the figures and the report text of this stage need."""

    config: Config
    process: DataProcess
    r_t: float  # theoretical optimal test error
    r_t_empirical: float  # test MSE of the true g on the test set
    signal_var: float  # Var g_j(x), averaged over the outputs j, on the test set
    sweeps: tuple[Sweep, ...]  # one per config.n_train
    curves: (
        np.ndarray
    )  # (n_curve_widths, n_seeds, T) training MSE after 0..T-1 iterations, NaN after the stop
    ranks: Ranks
    seconds: float  # wall-clock time of run()
    cpu_seconds: float  # CPU time of run(), all processes
    data: dict = field(default_factory=dict)  # experiments.data.summary of the source ({}: built-in)


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


def sweep(
    widths: Sequence[int],
    seeds: Sequence[int],
    data: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: Config,
    position: int = 0,
) -> tuple[Sweep, dict[int, np.ndarray]]:
    """Train every (width, seed) on ``data`` bucket by bucket; return final losses and histories.

    The histories (keyed by width, each (n_seeds, iterations + 1), NaN after a model's stop) are
    kept for ``config.curve_widths`` only; ``position`` places the progress bar.
    """
    X, Y = data
    shape = (len(widths), len(seeds))
    train, test_mse = np.zeros(shape), np.zeros(shape)
    iterations, stop = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    histories: dict[int, np.ndarray] = {}
    for group in buckets(widths, config.bucket_ratio, config.bucket_floor):
        pairs = [(w, s) for w in group for s in seeds]
        inits = [config.seed + s for _, s in pairs]
        model = batched_mlp.init(
            [w for w, _ in pairs], inits, config.hidden_layers, X.shape[1], Y.shape[1], X.dtype, X.device
        )
        with progress.bar(
            desc=f"N={len(X)} M={group[0]}..{group[-1]}", position=position, leave=False
        ) as bar:
            outcome = lbfgs(model, X, Y, config.optimizer, bar)
        rows = [widths.index(w) for w in group]
        with torch.no_grad():
            final_test = batched_mlp.mse(batched_mlp.forward(model, test[0]), test[1])
        ran = outcome.iterations.cpu().numpy()
        train[rows] = outcome.history[ran, np.arange(len(pairs))].view(len(group), len(seeds)).cpu().numpy()
        test_mse[rows] = final_test.view(len(group), len(seeds)).cpu().numpy()
        iterations[rows] = ran.reshape(len(group), len(seeds))
        stop[rows] = outcome.stop.view(len(group), len(seeds)).cpu().numpy()
        history = outcome.history.cpu().numpy()
        for j, w in enumerate(group):
            if w in config.curve_widths:
                cols = slice(j * len(seeds), (j + 1) * len(seeds))
                curves = history[:, cols].T.copy()  # (n_seeds, iterations + 1)
                curves[np.arange(curves.shape[1]) > ran[cols, None]] = np.nan
                histories[w] = curves
    return Sweep(n=len(X), train=train, test=test_mse, iterations=iterations, stop=stop), histories


def sweep_size(n: int, config: Config, process: DataProcess, position: int = 0) -> tuple[Sweep, dict]:
    """Draw the training set of size ``n`` and the test set, and run :func:`sweep` on one thread.

    One intra-op thread because every tensor here is small: the loop is bound by per-operation
    overhead, and two OpenMP threads sharing a core with other work run slower, not faster.
    The cores are used instead by running the training-set sizes in parallel processes.
    """
    torch.set_num_threads(1)
    dev = batched_mlp.device()
    test = tuple(
        t.to(dev) for t in draw(config.data, config.n_test, config.sample_seed, torch.float64, "test")
    )
    data = tuple(t.to(dev) for t in draw(config.data, n, config.sample_seed + n, torch.float64))
    return sweep(list(config.widths), config.seeds, data, test, config, position)


def cpu_time() -> float:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ranks(config: Config, process: DataProcess) -> Ranks:
    """Jacobian ranks at ``config.rank_widths`` (balanced point; default initialization of every seed)."""
    X = draw(config.data, config.rank_samples, config.sample_seed - 1, torch.float64)[0]
    count = effective_params.effective_count(config.hidden_layers, process.dim)
    shape = (len(config.rank_widths), len(config.seeds))
    balanced, gap = np.zeros(shape[0], dtype=np.int64), np.zeros(shape[0])
    default, inactive = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for i, width in enumerate(config.rank_widths):
        expected = int(count.subs(effective_params.M, width))
        point = jacobian_rank(balanced_point(width, config.hidden_layers, X, config.seed), X, expected)
        balanced[i], gap[i] = point.rank, point.gap
        for j, seed in enumerate(config.seeds):
            model = batched_mlp.init([width], [config.seed + seed], config.hidden_layers, dtype=torch.float64)
            at_init = jacobian_rank(model, X, expected)
            default[i, j], inactive[i, j] = at_init.rank, at_init.inactive_units
    return Ranks(balanced=balanced, gap=gap, default=default, inactive=inactive)


def run(config: Config) -> Results:
    """Run the sweeps for every training-set size of ``config`` (see the module docstring)."""
    start, cpu, threads, process = time.perf_counter(), cpu_time(), torch.get_num_threads(), DataProcess()
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
        torch.set_num_threads(1)
        rank_results = ranks(config, process)
    finally:
        torch.set_num_threads(threads)
    histories = outcomes[0][1]  # item (b) uses the first training set
    length = max(h.shape[1] for h in histories.values())
    curves = np.full((len(config.curve_widths), len(config.seeds), length), np.nan)
    for i, w in enumerate(config.curve_widths):
        curves[i, :, : histories[w].shape[1]] = histories[w]
    facts = summary(config.data, *draw(config.data, config.n_test, config.sample_seed, torch.float64, "test"))
    return Results(
        config=config,
        process=process,
        r_t=facts["r_t"],
        r_t_empirical=facts["r_t_empirical"],  # NaN unless built in (the true g is unknown)
        signal_var=facts["signal_var"],
        sweeps=tuple(sweep for sweep, _ in outcomes),
        curves=curves,
        ranks=rank_results,
        seconds=time.perf_counter() - start,
        cpu_seconds=cpu_time() - cpu,
        data=facts,
    )


def check() -> list[Check]:
    """P(M) from SymPy against the networks' own count; rank J = P - K M at balanced points, never above."""
    process, widths, samples = DataProcess(), (2, 3, 4, 6, 8, 12), 300
    config = replace(PROFILES["quick"], seeds=(0, 1, 2), rank_widths=widths, rank_samples=samples)
    K, d = config.hidden_layers, process.dim
    P, P_eff = effective_params.param_count(K, d), effective_params.effective_count(K, d)
    counted = range(1, 60)
    miscount = max(
        abs(int(P.subs(effective_params.M, m)) - batched_mlp.n_params(m, K, d, d)) for m in counted
    )
    checks = [
        Check("P(M) from SymPy", "SymPy count vs the batched network's tensors, M = 1..59", miscount, 0)
    ]
    result = ranks(config, process)
    expected = np.array([int(P_eff.subs(effective_params.M, m)) for m in widths])
    for width, rank, gap, p_eff in zip(widths, result.balanced, result.gap, expected, strict=True):
        checks.append(
            Check(
                f"rank of J = P - {K}M = {p_eff} at M = {width}",
                f"float64 SVD of the {d * samples} x {p_eff + K * width} output Jacobian at a balanced point; "
                f"retained/discarded singular values {gap:.0f} decades apart",
                abs(int(rank) - int(p_eff)),
                0,
            )
        )
    excess = int(max(0, (result.default - expected[:, None]).max()))
    method = (
        f"the same at nn.Linear's initialization, seeds {', '.join(map(str, config.seeds))} at each width"
    )
    checks.append(Check(f"rank of J never above P - {K}M", method, excess, 0))
    return checks


def save(results: Results, directory: Path) -> None:
    arrays = {"curves": results.curves} | {f"ranks_{k}": v for k, v in asdict(results.ranks).items()}
    for s in results.sweeps:
        arrays |= {f"{key}_{s.n}": getattr(s, key) for key in ("train", "test", "iterations", "stop")}
    io.save_arrays(arrays, directory)
    meta = {
        "config": asdict(results.config),
        "process": asdict(results.process),
        "r_t": results.r_t,
        "r_t_empirical": results.r_t_empirical,
        "signal_var": results.signal_var,
        "seconds": results.seconds,
        "cpu_seconds": results.cpu_seconds,
        "data": results.data,
    }
    io.save_json(meta, directory)


def load(directory: Path) -> Results:
    arrays, meta = io.load_arrays(directory), io.load_json(directory)
    raw = meta["config"]
    config = Config(
        **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in raw.items()
            if k not in ("optimizer", "data")
        },
        optimizer=LBFGS(**raw["optimizer"]),
        data=DataSource(**raw["data"]),
    )
    sweeps = tuple(
        Sweep(n, *(arrays[f"{key}_{n}"] for key in ("train", "test", "iterations", "stop")))
        for n in config.n_train
    )
    return Results(
        config=config,
        process=DataProcess(**meta["process"]),
        r_t=meta["r_t"],
        r_t_empirical=meta["r_t_empirical"],
        signal_var=meta["signal_var"],
        sweeps=sweeps,
        curves=arrays["curves"],
        ranks=Ranks(**{k: arrays[f"ranks_{k}"] for k in ("balanced", "gap", "default", "inactive")}),
        seconds=meta["seconds"],
        cpu_seconds=meta["cpu_seconds"],
        data=meta["data"],
    )


if __name__ == "__main__":
    profile = sys.argv[1] if len(sys.argv) > 1 else "quick"
    res = run(PROFILES[profile])
    for s in res.sweeps:
        print(f"N={s.n}")
        for w, tr, te, it, st in zip(res.config.widths, s.train, s.test, s.iterations, s.stop, strict=True):
            print(
                f"  M={w:4d} train={np.median(tr):.2e} test={np.median(te):.3f} iters={it.tolist()} stop={st.tolist()}"
            )
    print(json.dumps({"r_t": res.r_t, "seconds": res.seconds, "cpu_seconds": res.cpu_seconds}))
