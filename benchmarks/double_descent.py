"""Benchmark: time to the stopping criterion at the near-threshold widths, old procedure vs new.

*Old*: the procedure of commit ``c378d50`` (float32 full-batch Adam with a reduce-on-plateau
rate for at most 8 000 epochs, then an L-BFGS finish capped at 6 000 iterations), loaded from
git history so that it runs exactly as it did.  *New*: the float64 batched L-BFGS of
:mod:`experiments.optimizers` with the full profile's stopping rule.  Both train the same
(width, seed) models on the full profile's N = 100 training set, batched as one bucket, on one
intra-op thread, in one run.  For each procedure it prints wall and CPU time, how the models
stopped and their median final training MSE.

Run with ``python -m benchmarks.double_descent [--widths 21,22,23] [--seeds 5]``.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from experiments import batched_mlp
from experiments import double_descent as dd
from experiments.data import make_data
from experiments.optimizers import Stop, lbfgs

OLD_COMMIT = "c378d50"
ROOT = Path(__file__).resolve().parents[1]


def old_procedure(directory: Path) -> ModuleType:
    """``experiments/double_descent.py`` as of :data:`OLD_COMMIT`, written to ``directory`` and imported."""
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:experiments/double_descent.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / "old_double_descent.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def timed(action) -> tuple[object, float, float]:
    """``action()`` with its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--widths", default="21,22,23", help="comma-separated widths near the N = 100 threshold"
    )
    parser.add_argument("--seeds", type=int, default=5, help="initialization seeds per width")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = dd.PROFILES["full"]
    n = config.n_train[0]
    pairs = [(int(w), s) for w in args.widths.split(",") for s in range(args.seeds)]
    widths, seeds = [w for w, _ in pairs], [s for _, s in pairs]
    print(f"{len(pairs)} models (M in {args.widths}, {args.seeds} seeds), N={n}, one bucket, 1 thread")

    with tempfile.TemporaryDirectory() as directory:
        old = old_procedure(Path(directory))
    X, Y = make_data(n, config.sample_seed + n)  # float32, as the old procedure ran
    model = batched_mlp.init(widths, seeds, config.hidden_layers)

    def run_old() -> tuple[np.ndarray, np.ndarray]:
        training = old.Training()
        _, epochs = old.train_batched(model, X, Y, training)
        unconverged = epochs >= training.max_epochs
        iterations = old.lbfgs_finish(model, X, Y, unconverged, training)
        return (iterations >= training.lbfgs_iters).numpy(), batched_mlp.mse(batched_mlp.forward(model, X), Y)

    (capped, final), wall, cpu = timed(run_old)
    print(
        f"old  {wall:8.1f} s wall {cpu:8.1f} s CPU   {int(capped.sum())} of {len(pairs)} stopped by the L-BFGS cap, "
        f"median final MSE {final.median().item():.2e}"
    )

    X, Y = make_data(n, config.sample_seed + n, dtype=torch.float64)
    model = batched_mlp.init(widths, seeds, config.hidden_layers, dtype=torch.float64)
    outcome, wall, cpu = timed(lambda: lbfgs(model, X, Y, config.optimizer))
    stops = {s.name.lower(): int((outcome.stop == s).sum()) for s in Stop}
    final = outcome.history[outcome.iterations, torch.arange(len(pairs))]
    print(
        f"new  {wall:8.1f} s wall {cpu:8.1f} s CPU   {stops}, up to {int(outcome.iterations.max())} iterations, "
        f"median final MSE {final.median().item():.2e}"
    )


if __name__ == "__main__":
    main()
