"""Computer assignment 1: double descent of ReLU networks in the hidden width M.

For every width M of a grid and every initialization seed, a network d -> M -> M -> d
(``Config.hidden_layers`` hidden layers, d = ``DataProcess.dim``) is trained on N samples of
:mod:`experiments.data` with full-batch float64 L-BFGS (:mod:`experiments.optimizers`) until it
interpolates or stalls by the stated rule, the same procedure for every width; its final
training MSE and its MSE on a large independent test set are recorded.  The sweep runs for each
training-set size of ``Config.n_train`` (the second answers item (d)).  The training-loss
histories of the widths ``Config.curve_widths`` answer item (b).

The training itself lives in :mod:`experiments.double_descent_train`, imported only where a
shard runs.  The work is split into shards (:func:`shards`, :func:`run_shard`, :func:`gather`): one per
training-set size, width bucket and block of seeds, plus the Jacobian-rank check.  The models of
a shard train as one batched computation (:mod:`experiments.batched_mlp`); the optimizer treats
every model as if it were alone.  A seed's block is fixed by its value (``Config.seed_block``),
so adding seeds adds shards and leaves the existing ones, and their results, unchanged (a
model's result depends on its seed, its width and, through rounding, on its bucket's padded
width, never on the other seeds).  The costly shards are the near-threshold buckets, where a
single network may need tens of thousands of iterations to interpolate; blocks of 5 seeds keep
those shards apart while the cheap buckets do not pay the per-iteration overhead many times.

:func:`check` verifies the effective parameter count: SymPy's P(M) against the networks' own
count, and the Jacobian rank P - K M at balanced points (:mod:`experiments.jacobian_rank`), with
the full profile's rank settings, which the report's text quotes.

Run alone with ``python -m experiments.double_descent [quick|full]``; the report builder
calls :func:`run`, :func:`save` and :func:`load`, writing ``arrays.npz`` and
``results.json`` into the stage's data directory.
"""

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from experiments import effective_params
from experiments.data import DataSource, draw, summary
from experiments.data_process import DataProcess

# TODO(issue 23): LBFGS (a settings dataclass) lives beside torch code, so importing this module still
# loads torch; once it moves to a torch-free module, nothing here does (tests/test_layers.py).
from experiments.lbfgs_config import LBFGS
from lab import fields, io
from lab.checks import Check


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
    seed_block: int = 5  # a shard trains the seeds b*seed_block .. (b+1)*seed_block-1 of one bucket
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
    params_max_width: int = (
        64  # every network up to this width returns its final parameters (Results.final_params)
    )
    seed: int = 0  # added to every initialization seed (a fresh set of networks on the same data)
    data: DataSource = field(default_factory=DataSource)  # where X, Y come from (settings.toml [data])

    def __post_init__(self) -> None:
        fields.whole(self, "widths", "seed_block", "n_train", "n_test", "hidden_layers", least=1)
        fields.whole(self, "curve_widths", "rank_widths", "rank_samples", least=1)
        fields.whole(self, "seeds", "bucket_floor", "params_max_width", "sample_seed", "seed")
        fields.real(self, "bucket_ratio", least=1)


PROFILES = {
    "full": Config(),
    "quick": Config(
        widths=(4, 10, 20, 50, 100),
        seeds=(0,),
        n_test=1000,
        optimizer=LBFGS(window=50, max_iters=150),
    ),
}


@dataclass(frozen=True)
class Sweep:
    """Final losses of every (width, seed) trained on one training set of size ``n``."""

    n: int
    train: np.ndarray  # (n_widths, n_seeds) final training MSE
    test: np.ndarray  # (n_widths, n_seeds) test MSE
    iterations: np.ndarray  # (n_widths, n_seeds) L-BFGS iterations until the model stopped
    evaluations: np.ndarray  # (n_widths, n_seeds) loss-and-gradient evaluations (line search included)
    slowest: np.ndarray  # (n_widths, n_seeds) largest ratio of the optimizer's rate test on the way
    stop: np.ndarray  # (n_widths, n_seeds) why it stopped: values of experiments.lbfgs_config.Stop


SWEEP_ARRAYS = (
    "train",
    "test",
    "iterations",
    "evaluations",
    "slowest",
    "stop",
)  # the array fields of Sweep, in order


COUNTS = ("iterations", "evaluations", "stop")  # the integer ones


@dataclass(frozen=True)
class Ranks:
    """Jacobian ranks at ``config.rank_widths``: a balanced point and nn.Linear's default initialization."""

    balanced: np.ndarray  # (n_rank_widths,) rank at a balanced point
    gap: np.ndarray  # (n_rank_widths,) decades between retained and discarded singular values there
    default: np.ndarray  # (n_rank_widths, n_seeds) rank at the default initialization of each seed
    inactive: np.ndarray  # (n_rank_widths, n_seeds) units active on < 1 % or > 99 % of the sample there


@dataclass(frozen=True)
class Results:
    """Everything the figures and the report text of this stage need, and the trained networks themselves.

    ``final_params`` keeps the networks up to ``config.params_max_width`` (names and shapes below), so
    that their stall points can be examined (Jacobian rank, dead units, a second-order step) without
    training them again.
    """

    config: Config
    process: DataProcess
    r_t: float  # theoretical optimal test error
    r_t_empirical: float  # test MSE of the true g on the test set
    signal_var: float  # Var g_j(x), averaged over the outputs j, on the test set
    sweeps: tuple[Sweep, ...]  # one per config.n_train
    curves: (
        np.ndarray
    )  # (n_curve_widths, n_seeds, T) training MSE after 0..T-1 iterations, NaN after the stop
    curve_evaluations: np.ndarray  # like curves: loss-and-gradient evaluations after 0..T-1 iterations
    ranks: Ranks
    shard_seconds: dict[str, tuple[float, float]]  # shard name -> (wall, CPU) seconds of run_shard
    data: dict = field(default_factory=dict)  # experiments.data.summary of the source
    # final_params["params_n{N}_m{M}"]: (n_seeds, P(M)) float64, the trained parameters of every network of
    # width M <= config.params_max_width on the training set of size N, seed j in row j (config.seeds order),
    # unpadded, in nn.Sequential order (layer by layer: weight (out, in) row by row, then bias), so
    # torch.nn.utils.vector_to_parameters(row, batched_mlp.to_sequential(...).parameters()) restores
    # a network; saved under the same names in arrays.npz
    final_params: dict[str, np.ndarray] = field(default_factory=dict)


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


def seed_blocks(seeds: Sequence[int], size: int) -> list[list[int]]:
    """``seeds`` grouped by ``seed // size`` (a seed's block depends on its value alone).

    >>> seed_blocks([0, 1, 2, 7, 3], 5)
    [[0, 1, 2, 3], [7]]
    """
    blocks: dict[int, list[int]] = {}
    for seed in sorted(set(seeds)):
        blocks.setdefault(seed // size, []).append(seed)
    return [blocks[b] for b in sorted(blocks)]


def span(values: Sequence[int]) -> str:
    """``'3'`` or ``'3..7'``: the first and last of ``values`` for a shard name."""
    return f"{values[0]}" if len(values) == 1 else f"{values[0]}..{values[-1]}"


def shards(config: Config) -> dict[str, dict]:
    """Shard name -> JSON spec: a training set x width bucket x seed block, and the rank check.

    A spec holds everything :func:`run_shard` reads (data process, sample seeds, optimizer, ...),
    so it is the shard's cache key.  Training shards are named ``n100-m17..22-s0..4``.
    """
    process = asdict(DataProcess())
    common = {
        "process": process,
        "data": asdict(config.data),
        "hidden_layers": config.hidden_layers,
        "seed_offset": config.seed,
    }
    specs: dict[str, dict] = {}
    blocks = seed_blocks(config.seeds, config.seed_block)
    for n in config.n_train:
        for group in buckets(config.widths, config.bucket_ratio, config.bucket_floor):
            curves = [w for w in group if w in config.curve_widths and n == config.n_train[0]]
            for block in blocks:
                specs[f"n{n}-m{span(group)}-s{span(block)}"] = {
                    "kind": "sweep",
                    "n": n,
                    "train_seed": config.sample_seed + n,
                    "n_test": config.n_test,
                    "test_seed": config.sample_seed,
                    "widths": group,
                    "seeds": block,
                    "curve_widths": curves,
                    "optimizer": asdict(config.optimizer),
                    "params_max_width": config.params_max_width,
                    **common,
                }
    specs = dict(sorted(specs.items(), key=lambda item: _distance_to_threshold(item[1], config)))
    rank = {
        "widths": list(config.rank_widths),
        "samples": config.rank_samples,
        "sample_seed": config.sample_seed - 1,
    }
    specs["ranks-balanced"] = {"kind": "balanced", **rank, **common}
    for block in blocks:
        specs[f"ranks-s{span(block)}"] = {"kind": "ranks", "seeds": block, **rank, **common}
    return specs


def _distance_to_threshold(spec: dict, config: Config) -> float:
    """How far (in log P_eff / 8N) a shard's widths lie from its interpolation threshold.

    The shards near the threshold run longest (their models creep towards interpolation), so
    :func:`shards` lists them first: the engine starts tasks it has no recorded time for in this
    order, and the longest shard starting last would otherwise set the build's wall time.
    """
    count = effective_params.effective_count(config.hidden_layers, DataProcess().dim)
    equations = DataProcess().dim * spec["n"]
    return min(abs(math.log(float(count.subs(effective_params.M, w)) / equations)) for w in spec["widths"])


def run_shard(spec: dict) -> dict[str, np.ndarray]:
    """Compute one shard of :func:`shards` (CPU and wall seconds included as ``cpu_seconds``, ``seconds``)."""
    start, cpu = time.perf_counter(), time.process_time()
    from experiments import double_descent_train as train  # torch: only where a shard runs

    part = {"sweep": train.sweep, "balanced": train.balanced, "ranks": train.default_ranks}[spec["kind"]](
        spec
    )
    part["seconds"] = np.array(time.perf_counter() - start)
    part["cpu_seconds"] = np.array(time.process_time() - cpu)
    return part


def gather(config: Config, parts: dict[str, dict[str, np.ndarray]]) -> Results:
    """Assemble :class:`Results` from the parts of every shard of ``config``."""
    specs, process = shards(config), DataProcess()
    widths, seeds = list(config.widths), list(config.seeds)
    keys = SWEEP_ARRAYS
    full = {
        (n, k): np.zeros((len(widths), len(seeds)), dtype=np.int64 if k in COUNTS else float)
        for n in config.n_train
        for k in keys
    }
    histories: dict[tuple[str, int, int], np.ndarray] = {}
    final_params: dict[str, np.ndarray] = {}
    shape = (len(config.rank_widths), len(seeds))
    default, inactive = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for name, spec in specs.items():
        part = parts[name]
        if spec["kind"] == "balanced":
            balanced, gap = part["balanced"], part["gap"]
            continue
        cols = [seeds.index(s) for s in spec["seeds"]]
        if spec["kind"] == "ranks":
            default[:, cols], inactive[:, cols] = part["default"], part["inactive"]
            continue
        rows = [widths.index(w) for w in spec["widths"]]
        for key in keys:
            full[spec["n"], key][np.ix_(rows, cols)] = part[key]
        for w in spec["widths"]:
            if w <= spec["params_max_width"]:
                name = f"params_n{spec['n']}_m{w}"
                final_params.setdefault(name, np.zeros((len(seeds), part[f"params_m{w}"].shape[1])))[cols] = (
                    part[f"params_m{w}"]
                )
        for w in spec["curve_widths"]:
            for j, c in enumerate(cols):
                for key in ("curve", "curve_evaluations"):
                    histories[key, w, c] = part[f"{key}_{w}"][j]
    length = max((len(h) for h in histories.values()), default=0)
    curves = {
        key: np.full((len(config.curve_widths), len(seeds), length), np.nan)
        for key in ("curve", "curve_evaluations")
    }
    for (key, w, c), h in histories.items():
        curves[key][config.curve_widths.index(w), c, : len(h)] = h
    import torch  # here, not at the top: listing the stages must not load torch

    facts = summary(config.data, *draw(config.data, config.n_test, config.sample_seed, torch.float64, "test"))
    return Results(
        config=config,
        process=process,
        r_t=facts["r_t"],
        r_t_empirical=facts["r_t_empirical"],  # NaN unless built in (the true g is unknown)
        signal_var=facts["signal_var"],
        sweeps=tuple(Sweep(n, *(full[n, k] for k in keys)) for n in config.n_train),
        curves=curves["curve"],
        curve_evaluations=curves["curve_evaluations"],
        ranks=Ranks(balanced=balanced, gap=gap, default=default, inactive=inactive),
        shard_seconds={k: (float(p["seconds"]), float(p["cpu_seconds"])) for k, p in parts.items()},
        data=facts,
        final_params=final_params,
    )


def run(config: Config) -> Results:
    """Every shard of ``config`` in turn, gathered (the report's engine runs them concurrently)."""
    return gather(config, {name: run_shard(spec) for name, spec in shards(config).items()})


def check() -> list[Check]:
    """P(M) from SymPy against the networks' own count; rank J = P - K M at balanced points, never above.

    Uses the full profile's rank widths, sample and seeds: the report's text quotes the same values.
    """
    from experiments import batched_mlp  # torch: only when the checks run

    config, process = PROFILES["full"], DataProcess()
    K, d = config.hidden_layers, process.dim
    P, P_eff = effective_params.param_count(K, d), effective_params.effective_count(K, d)
    counted = range(1, 60)
    miscount = max(
        abs(int(P.subs(effective_params.M, m)) - batched_mlp.n_params(m, K, d, d)) for m in counted
    )
    checks = [
        Check(
            "P(M) from SymPy",
            "SymPy count vs the batched network's tensors, M = 1..59",
            miscount,
            0,
            name_tex=r"$P(M)$ from SymPy",
            method_tex=r"SymPy count vs the batched network's tensors, $M = 1,\dots,59$",
        )
    ]
    specs = shards(config)
    balanced = run_shard(specs["ranks-balanced"])
    expected = np.array([int(P_eff.subs(effective_params.M, m)) for m in config.rank_widths])
    for width, rank, gap, p_eff in zip(
        config.rank_widths, balanced["balanced"], balanced["gap"], expected, strict=True
    ):
        rows, cols = d * config.rank_samples, p_eff + K * width
        checks.append(
            Check(
                f"rank of J = P - {K}M = {p_eff} at M = {width}",
                f"float64 SVD of the {rows} x {cols} output Jacobian at a balanced "
                f"point; retained/discarded singular values {gap:.0f} decades apart",
                abs(int(rank) - int(p_eff)),
                0,
                name_tex=rf"$\operatorname{{rank}} J = P - {K}M = {p_eff}$ at $M = {width}$",
                method_tex=rf"float64 SVD of the ${rows} \times {cols}$ output Jacobian at a balanced point; "
                rf"retained and discarded singular values {gap:.0f} decades apart",
            )
        )
    default = np.concatenate(
        [run_shard(s)["default"] for s in specs.values() if s["kind"] == "ranks"], axis=1
    )
    excess = int(max(0, (default - expected[:, None]).max()))
    checks.append(
        Check(
            f"rank of J never above P - {K}M",
            f"the same at nn.Linear's initialization, seeds {span(config.seeds)} at each width",
            excess,
            0,
            name_tex=rf"$\operatorname{{rank}} J \le P - {K}M$",
            method_tex=rf"the same at \texttt{{nn.Linear}}'s initialization, seeds "
            rf"${config.seeds[0]},\dots,{config.seeds[-1]}$ at each width",
        )
    )
    return checks


def save(results: Results, directory: Path) -> None:
    arrays = {"curves": results.curves, "curve_evaluations": results.curve_evaluations} | {
        f"ranks_{k}": v for k, v in asdict(results.ranks).items()
    }
    for s in results.sweeps:
        arrays |= {f"{key}_{s.n}": getattr(s, key) for key in SWEEP_ARRAYS}
    io.save_arrays(arrays | results.final_params, directory)
    meta = {
        "config": asdict(results.config),
        "process": asdict(results.process),
        "r_t": results.r_t,
        "r_t_empirical": results.r_t_empirical,
        "signal_var": results.signal_var,
        "shard_seconds": results.shard_seconds,
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
    sweeps = tuple(Sweep(n, *(arrays[f"{key}_{n}"] for key in SWEEP_ARRAYS)) for n in config.n_train)
    return Results(
        config=config,
        process=DataProcess(**meta["process"]),
        r_t=meta["r_t"],
        r_t_empirical=meta["r_t_empirical"],
        signal_var=meta["signal_var"],
        sweeps=sweeps,
        curves=arrays["curves"],
        curve_evaluations=arrays["curve_evaluations"],
        ranks=Ranks(**{k: arrays[f"ranks_{k}"] for k in ("balanced", "gap", "default", "inactive")}),
        shard_seconds={k: tuple(v) for k, v in meta["shard_seconds"].items()},
        data=meta["data"],
        final_params={k: v for k, v in arrays.items() if k.startswith("params_n")},
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
    print(json.dumps(res.shard_seconds, indent=1))
