"""Benchmark: the double-descent sweep trained naively (one model at a time) vs batched.

Both paths train every (width, seed) of the full profile's grid on the N = 100 training
set for a fixed number of epochs (early stopping is switched off so both do exactly the
same work): the naive path with :func:`experiments.double_descent.train_sequential`
(``nn.Sequential`` + ``torch.optim.Adam``, one Python loop per model), the batched path
with :func:`experiments.double_descent.train_batched` bucket by bucket, as the experiment
does.  It prints both times, their ratio, and the achieved GFLOP/s (useful, i.e.
unpadded, matmul FLOPs) against a measured float32 matmul peak.

Run with ``python -m benchmarks.double_descent [--epochs 200] [--threads 2]``.
"""

import argparse
import time
from dataclasses import replace

import torch

from experiments import batched_mlp
from experiments import double_descent as dd
from experiments.data import make_data


def matmul_peak(n: int = 1024, repeats: int = 10) -> float:
    """Measured float32 GFLOP/s of an (n x n) @ (n x n) matmul on this machine."""
    A, B = torch.randn(n, n), torch.randn(n, n)
    A @ B  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        A @ B
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def sweep_flops(widths: list[int], n_seeds: int, n: int, epochs: int) -> float:
    """Matmul FLOPs of the sweep: forward 2*N*(fan_in*fan_out) per layer, backward twice that."""
    per_epoch = sum(2 * n * (8 * w + w * w + w * 8) for w in widths) * n_seeds * 3
    return per_epoch * epochs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200, help="epochs per model (both paths)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = dd.PROFILES["full"]
    training = replace(config.training, tol=0.0, lr_min=0.0, max_epochs=args.epochs)  # no early stop
    X, Y = make_data(config.n_train[0], config.sample_seed + config.n_train[0])
    widths, seeds = list(config.widths), list(config.seeds)
    print(
        f"{len(widths)} widths x {len(seeds)} seeds, N={len(X)}, {args.epochs} epochs, {args.threads} threads"
    )

    start = time.perf_counter()
    for w in widths:
        for s in seeds:
            dd.train_sequential(w, s, X, Y, training)
    naive = time.perf_counter() - start

    start = time.perf_counter()
    for group in dd.buckets(widths, config.bucket_ratio, config.bucket_floor):
        pairs = [(w, s) for w in group for s in seeds]
        model = batched_mlp.init([w for w, _ in pairs], [s for _, s in pairs], dd.HIDDEN_LAYERS)
        dd.train_batched(model, X, Y, training)
    batched = time.perf_counter() - start

    flops, peak = sweep_flops(widths, len(seeds), len(X), args.epochs), matmul_peak()
    print(f"naive   {naive:8.2f} s  {flops / naive / 1e9:7.2f} GFLOP/s")
    print(f"batched {batched:8.2f} s  {flops / batched / 1e9:7.2f} GFLOP/s")
    print(f"matmul peak {peak:.1f} GFLOP/s; batched reaches {flops / batched / 1e9 / peak:.1%} of it")
    print(f"speed-up batched / naive: {naive / batched:.1f}x")


if __name__ == "__main__":
    main()
