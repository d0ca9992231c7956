"""Benchmark: the implicit-regularisation μ grid and its gradient statistics, naive loop vs batched.

Training: every (μ, run) model of the full profile's grid trains for a fixed number of
epochs (no early stopping, so both paths do the same work), naively as one
``nn.Sequential`` with ``torch.optim.SGD`` after another, and batched with
:func:`experiments.sgd_implicit_reg.train`.  Gradient statistics: G and V_fix (the fixed consecutive split) of the same
models, naively by a Python loop of autograd calls over models and mini-batches, and
batched with :func:`experiments.grad_stats.gradient_stats`.  Prints both times and
their ratio for each, and the largest difference of G and V_fix between the two paths.

Run with ``python -m benchmarks.sgd_implicit_reg [--epochs 30] [--threads 1]``.
"""

import argparse
import time

import torch
from torch import nn

from experiments import batched_mlp
from experiments.data import make_data
from experiments.grad_stats import gradient_stats
from experiments.sgd_implicit_reg import PROFILES, Config, Stopping, minibatch_orders, order_seed, train


def train_naive(
    nets: list[nn.Sequential],
    lrs: list[float],
    X: torch.Tensor,
    Y: torch.Tensor,
    runs: list[int],
    config: Config,
    epochs: int,
) -> None:
    """Train each network alone with torch.optim.SGD, in the batched trainer's mini-batch order."""
    for net, lr, r in zip(nets, lrs, runs, strict=True):
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(order_seed(config.seed, r))
        for _ in range(epochs):
            order = minibatch_orders([generator], config.n_train)[0]
            for start in range(0, config.n_train, config.batch_size):
                idx = order[start : start + config.batch_size]
                optimizer.zero_grad()
                nn.functional.mse_loss(net(X[r, idx]), Y[r, idx]).backward()
                optimizer.step()


def grad_stats_naive(
    nets: list[nn.Sequential], X: torch.Tensor, Y: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """(G, V) of each network by one autograd call per mini-batch: shape (n_models, 2)."""

    def flat_grad(net: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        grads = torch.autograd.grad(nn.functional.mse_loss(net(x), y), list(net.parameters()))
        return torch.cat([g.flatten() for g in grads])

    stats = []
    for net, x, y in zip(nets, X, Y, strict=True):
        full = flat_grad(net, x, y)
        batches = [
            flat_grad(net, x[s : s + batch_size], y[s : s + batch_size]) for s in range(0, len(x), batch_size)
        ]
        stats.append([full.square().sum(), torch.stack([(g - full).square().sum() for g in batches]).mean()])
    return torch.tensor(stats)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs per model (both paths)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = PROFILES["full"]
    dev = batched_mlp.device()
    data = [make_data(config.n_train, config.seed + 1 + r) for r in range(config.n_runs)]
    X = torch.stack([x for x, _ in data]).to(dev)  # (n_runs, N, 8)
    Y = torch.stack([y for _, y in data]).to(dev)
    lrs = [mu for mu in config.lrs for _ in range(config.n_runs)]
    runs = [r for _ in config.lrs for r in range(config.n_runs)]
    model = batched_mlp.init([config.width] * len(lrs), runs, config.hidden_layers, dev=dev)
    nets = [batched_mlp.to_sequential(model, i) for i in range(len(lrs))]
    print(
        f"{len(config.lrs)} learning rates x {config.n_runs} runs, {args.epochs} epochs, {args.threads} threads"
    )

    start = time.perf_counter()
    train_naive(nets, lrs, X, Y, runs, config, args.epochs)
    naive = time.perf_counter() - start
    start = time.perf_counter()
    trained = train(
        model, X, Y, torch.tensor(runs), torch.tensor(lrs), torch.zeros(len(lrs)), config.batch_size,
        Stopping(target_loss=0.0, max_epochs=args.epochs, check_every=args.epochs, stall_epochs=args.epochs + 1,
                 diverge_factor=float("inf")),
        order_seeds=[order_seed(config.seed, r) for r in range(config.n_runs)],
    ).model  # fmt: skip
    batched = time.perf_counter() - start
    print(f"training   naive {naive:7.2f} s   batched {batched:7.2f} s   speed-up {naive / batched:6.1f}x")

    # Both gradient-statistics paths evaluate the batched path's trained models (at the largest μ,
    # rounding differences between the two training paths grow chaotically).
    X_m, Y_m = X[torch.tensor(runs)], Y[torch.tensor(runs)]  # (n_models, N, 8)
    trained_nets = [batched_mlp.to_sequential(trained, i) for i in range(len(lrs))]
    start = time.perf_counter()
    reference = grad_stats_naive(trained_nets, X_m, Y_m, config.batch_size)
    naive = time.perf_counter() - start
    start = time.perf_counter()
    G, V_fix = gradient_stats(trained, X_m, Y_m, config.batch_size)
    batched = time.perf_counter() - start
    print(f"grad stats naive {naive:7.2f} s   batched {batched:7.2f} s   speed-up {naive / batched:6.1f}x")
    deviation = (torch.stack([G, V_fix], dim=1).cpu() / reference - 1).abs().nan_to_num(0.0).max().item()
    print(f"largest relative difference of G, V_fix between the paths (finite values): {deviation:.1e}")


if __name__ == "__main__":
    main()
