"""Benchmark: time to the stopping criterion at the near-threshold widths, old procedure vs new.

*Old*: :mod:`experiments.optimizers` as of commit ``6f2da12`` (stall only when the MSE falls by
less than 1 % over 500 iterations, a budget of 20 000 iterations, stopped models dropped from the
batch only once half of it has stopped), loaded from git history so that it runs exactly as it
did.  *New*: the current :mod:`experiments.optimizers` with the full profile's settings (the
scale-free "too slow to reach tol" stall as well, stopped models dropped at once).  Both train
the same (width, seed) models on the full profile's training set of size N, as one batch, on one
intra-op thread, in one run.  For each procedure it prints CPU and wall time, how the models
stopped, their iterations to the stop and final training MSE (median and maximum), and, per
model, where the two procedures disagree about interpolation.

Run with ``python -m benchmarks.double_descent [--n 100] [--widths 21,22,23,24,25] [--seeds 5]``.
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

from experiments import batched_mlp, optimizers
from experiments import double_descent as dd
from experiments.data import make_data

OLD_COMMIT = "6f2da12"
ROOT = Path(__file__).resolve().parents[1]


def old_optimizers(directory: Path) -> ModuleType:
    """``experiments/optimizers.py`` as of :data:`OLD_COMMIT`, written to ``directory`` and imported."""
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:experiments/optimizers.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / "old_optimizers.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def report(name: str, outcome, stop_names: dict[int, str], wall: float, cpu: float) -> np.ndarray:
    """Print one procedure's line; return which models interpolated."""
    iterations = outcome.iterations.numpy()
    final = outcome.history[outcome.iterations, torch.arange(len(iterations))].numpy()
    stops = outcome.stop.numpy()
    counts = {label: int((stops == value).sum()) for value, label in stop_names.items()}
    print(
        f"{name}  {cpu:7.1f} s CPU {wall:7.1f} s wall  {counts}  iterations to the stop: median "
        f"{np.median(iterations):.0f}, max {iterations.max()}  final MSE: median {np.median(final):.2e}"
    )
    return stops == 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=100, help="training-set size (a value of the full profile's n_train)"
    )
    parser.add_argument(
        "--widths", default="21,22,23,24,25", help="comma-separated widths near that N's threshold"
    )
    parser.add_argument("--seeds", type=int, default=5, help="initialization seeds per width")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = dd.PROFILES["full"]
    pairs = [(int(w), s) for w in args.widths.split(",") for s in range(args.seeds)]
    print(f"{len(pairs)} models (M in {args.widths}, {args.seeds} seeds), N={args.n}, one batch, 1 thread")
    X, Y = make_data(args.n, config.sample_seed + args.n, dtype=torch.float64)

    with tempfile.TemporaryDirectory() as directory:
        old = old_optimizers(Path(directory))
    names = {s.value: s.name.lower() for s in optimizers.Stop}
    results = {}
    for name, module, settings in (
        ("old", old, old.LBFGS()),
        ("new", optimizers, config.optimizer),
    ):
        model = batched_mlp.init(
            [w for w, _ in pairs], [s for _, s in pairs], config.hidden_layers, dtype=torch.float64
        )
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = module.lbfgs(model, X, Y, settings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        results[name] = (outcome, report(name, outcome, names, wall, cpu))
    (old_out, old_interp), (new_out, new_interp) = results["old"], results["new"]
    print("per model (M, seed): iterations old -> new, stop old -> new")
    for i, (w, s) in enumerate(pairs):
        flag = "  <- differs" if old_interp[i] != new_interp[i] else ""
        print(
            f"  M={w:3d} s={s}: {int(old_out.iterations[i]):6d} -> {int(new_out.iterations[i]):6d}, "
            f"{names[int(old_out.stop[i])]} -> {names[int(new_out.stop[i])]}{flag}"
        )


if __name__ == "__main__":
    main()
