"""Benchmark: the double-descent sweep trained naively (one model at a time) vs batched.

Both paths train every (width, seed) of the full profile's grid on its N = 100 training
set with the full profile's optimizer and stopping rule, capped at ``--epochs`` epochs
(the real sweep caps at 20 000; its time is spent in the same way, mostly on small models
near the threshold that run to the cap).  The naive path runs
:func:`experiments.double_descent.train_sequential` (``nn.Sequential`` +
``torch.optim.Adam``, one Python loop per model), the batched path
:func:`experiments.double_descent.train_batched` bucket by bucket, as the experiment does,
both on one intra-op thread as the experiment runs.  It prints both times, their ratio,
and the achieved GFLOP/s (useful, i.e. unpadded, matmul FLOPs of the epochs each model
actually ran; float32 rounding can shift a stopping epoch, so each path counts its own)
against a measured float32 matmul peak.

Run with ``python -m benchmarks.double_descent [--epochs 1000]``.
"""

import argparse
import time
from dataclasses import replace

import numpy as np
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


def epoch_flops(width: int | np.ndarray, n: int) -> int | np.ndarray:
    """Matmul FLOPs of one full-batch epoch of 8 -> M -> M -> 8: forward 2N(8M + M^2 + 8M), backward twice it."""
    return 3 * 2 * n * (8 * width + width * width + width * 8)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000, help="epoch cap per model (both paths)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = dd.PROFILES["full"]
    training = replace(config.training, max_epochs=args.epochs)
    X, Y = make_data(config.n_train[0], config.sample_seed + config.n_train[0])
    pairs = [(w, s) for w in config.widths for s in config.seeds]
    print(
        f"{len(config.widths)} widths x {len(config.seeds)} seeds = {len(pairs)} models, N={len(X)}, "
        f"at most {args.epochs} epochs each, 1 thread"
    )

    start = time.perf_counter()
    naive_epochs = np.array([len(dd.train_sequential(w, s, X, Y, training)[1]) for w, s in pairs])
    naive = time.perf_counter() - start

    start, batched_epochs = time.perf_counter(), {}
    for group in dd.buckets(config.widths, config.bucket_ratio, config.bucket_floor):
        members = [(w, s) for w, s in pairs if w in group]
        model = batched_mlp.init([w for w, _ in members], [s for _, s in members], dd.HIDDEN_LAYERS)
        _, ran = dd.train_batched(model, X, Y, training)
        batched_epochs |= dict(zip(members, ran.tolist(), strict=True))
    batched = time.perf_counter() - start

    widths = np.array([w for w, _ in pairs])
    flops = {
        "naive": float(np.sum(epoch_flops(widths, len(X)) * naive_epochs)),
        "batched": float(np.sum(epoch_flops(widths, len(X)) * np.array([batched_epochs[p] for p in pairs]))),
    }
    peak = matmul_peak()
    for name, seconds in (("naive", naive), ("batched", batched)):
        rate = flops[name] / seconds / 1e9
        print(
            f"{name:8s}{seconds:8.2f} s  {rate:7.2f} GFLOP/s ({rate / peak:.1%} of peak)  {flops[name]:.3g} FLOPs"
        )
    print(f"matmul peak (1024^3, 1 thread) {peak:.1f} GFLOP/s")
    print(f"speed-up batched / naive: {naive / batched:.1f}x")


if __name__ == "__main__":
    main()
