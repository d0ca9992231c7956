"""Benchmark: CPU time per model-epoch of the SGD trainer, earlier versions (from git) against the current one.

*Old*: ``train`` of :mod:`experiments.sgd_implicit_reg` as of commit ``d08c6fd``, the version issue 23
measured (autograd on the per-layer tensors, one update per parameter tensor, one shard per μ: 10
models a batch), loaded from git with that commit's ``batched_mlp``.  *57117bb*:
:func:`experiments.sgd_training.train` as of that commit with its ``batched_mlp`` (flat parameters, hand-written
backpropagation, one fused update; a fresh tensor for every operation's result, one shuffle and
gather per epoch).  *New*: the current trainer (every operation of a step writes into a
preallocated workspace; the mini-batch orders of 100 epochs drawn and gathered at once).  The last
two on a batch of one μ as before and on the batches the shards train (a band of μ, every μ of (b)).
Every model trains the full profile's networks for a fixed number of epochs with stopping disabled,
so all do the same work per model; one intra-op thread, CPU time (``time.process_time``), all in
one run, the versions alternating ``--repeats`` times and the smallest time of each kept (the
machine may be shared).  The new trainer's models are checked against the old ones after the first
epoch (same data, initialisation and mini-batch order; float32, so to a relative 1e-4).

Run with ``python -m benchmarks.sgd_implicit_reg [--epochs 40] [--repeats 3]``.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.double_descent import from_git
from experiments import batched_mlp
from experiments.data import make_data
from experiments.sgd_implicit_reg import PROFILES, Stopping, lr_groups, order_seed
from experiments.sgd_training import train

OLD = "d08c6fd"  # the version of issue 23 ("today's"): autograd, one μ per shard
MAIN = "57117bb"  # the flat, fused trainer before its orders and evaluations were batched


def _setup(lrs: list[float], n_runs: int) -> tuple:
    """The full profile's (μ, run) models: data (n_runs sets), initial model, data index, μ per model."""
    config = PROFILES["full"]
    data = [make_data(config.n_train, config.seed + 1 + r) for r in range(n_runs)]
    X, Y = torch.stack([x for x, _ in data]), torch.stack([y for _, y in data])
    lr = torch.tensor(lrs).repeat_interleave(n_runs)
    runs = torch.arange(len(lr)) % n_runs
    model = batched_mlp.init(
        [config.width] * len(lr), [config.seed + 200_000 + int(r) for r in runs], config.hidden_layers
    )
    return X, Y, model, runs, lr


def _time(module, lrs: list[float], n_runs: int, epochs: int):
    """CPU seconds per model-epoch of ``module.train`` on the models of ``lrs`` x ``n_runs``, and its models."""
    config = PROFILES["full"]
    X, Y, model, runs, lr = _setup(lrs, n_runs)
    never = Stopping(target_loss=1e-300, max_epochs=epochs, check_every=epochs, stall_epochs=epochs + 1,
                     diverge_factor=1e300)  # fmt: skip
    cpu = time.process_time()
    trained = module(
        model, X, Y, runs, lr, torch.zeros(len(lr)), config.batch_size, never,
        order_seeds=[order_seed(config.seed, r) for r in range(n_runs)],
    ).model  # fmt: skip
    return (time.process_time() - cpu) / (len(lr) * epochs), trained


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs per model")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternations of the versions; the best of each is kept"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = PROFILES["full"]
    with tempfile.TemporaryDirectory() as directory:
        old = from_git(OLD, "experiments/sgd_implicit_reg.py", f"sgd_implicit_reg_{OLD}", Path(directory))
        old.batched_mlp = from_git(OLD, "experiments/batched_mlp.py", f"batched_mlp_{OLD}", Path(directory))
        main = from_git(MAIN, "experiments/sgd_training.py", f"sgd_training_{MAIN}", Path(directory))
        main.batched_mlp = from_git(
            MAIN, "experiments/batched_mlp.py", f"batched_mlp_{MAIN}", Path(directory)
        )

    _, reference = _time(old.train, [config.lrs[0]], config.n_runs, 1)
    _, current = _time(train, [config.lrs[0]], config.n_runs, 1)
    deviation = max(
        ((p - q).abs().max() / q.abs().max()).item()
        for p, q in zip(current.parameters(), reference.parameters(), strict=True)
    )
    print(
        f"after one epoch, largest parameter difference new vs old (relative to the largest): {deviation:.1e}"
    )

    mu = config.lrs[len(config.lrs) // 2]
    rows = [("old", old.train, [mu], "one μ (today's shard)")]
    band = max(lr_groups(config.lrs, config.lr_octaves), key=len)
    for name, module in [(MAIN, main.train), ("new", train)]:
        rows += [(name, module, [mu], "one μ"), (name, module, band, "a band of μ (a shard)")]
        rows += [(name, module, list(config.lrs), "every μ of (b)")]
    print(f"SGD, N = {config.n_train}, B = {config.batch_size}, M = {config.width}, "
          f"{config.hidden_layers} hidden layers, float32, {args.epochs} epochs, 1 thread, best of {args.repeats}")  # fmt: skip
    best = [float("inf")] * len(rows)
    for _ in range(args.repeats):  # alternate the versions: a shared machine's load changes over time
        for i, (_, module, lrs, _) in enumerate(rows):
            best[i] = min(best[i], _time(module, lrs, config.n_runs, args.epochs)[0])
    print(f"{'version':8s} {'models':>6s}  {'CPU ms per model-epoch':>22s}  {'vs old':>6s}  batch")
    for (name, _, lrs, label), cost in zip(rows, best, strict=True):
        print(f"{name:8s} {len(lrs) * config.n_runs:6d}  {1e3 * cost:22.3f}  {best[0] / cost:5.1f}x  {label}")


if __name__ == "__main__":
    main()
