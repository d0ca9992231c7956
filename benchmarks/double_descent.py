"""Benchmark: time to the stopping criterion at the near-threshold widths, earlier procedures vs the current one.

*Original*: :mod:`experiments.optimizers` as of commit ``6f2da12`` (stall only when the MSE falls
by less than 1 % over 500 iterations, a budget of 20 000 iterations, stopped models dropped from
the batch only once half of it has stopped).  *Two-loop*: as of ``5ac81dc`` (the scale-free "too
slow to reach tol" stall, stopped models dropped at once, the two-loop recursion and autograd).
*New*: the current module (the compact inverse-Hessian product and hand-written backpropagation).
Near the threshold a model's iteration count depends on rounding (a creeping network may need
three times the iterations after a change that only reorders sums), so besides the time to the
stopping criterion the benchmark prints the CPU time per iteration with stopping disabled, for the
whole batch and for a single model (the creeping tail), which compares the procedures' cost
independently of their trajectories.
Earlier versions are loaded from git history together with their ``batched_mlp``, so that they run
exactly as they did.  All train the same (width, seed) models on the full profile's training set of
size N, as one batch, on one intra-op thread, in one run.  For each procedure it prints CPU and wall
time, how the models stopped, their iterations to the stop and final training MSE (median and
maximum), and, per model, iterations and stop reasons side by side, flagging where the procedures
disagree about interpolation.

Run with ``python -m benchmarks.double_descent [--n 100] [--widths 21,22,23,24,25] [--seeds 5]``.
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from experiments import batched_mlp, optimizers
from experiments import double_descent as dd
from experiments.data import make_data

EARLIER = {"original": "6f2da12", "two-loop": "5ac81dc"}  # procedure name -> commit
ROOT = Path(__file__).resolve().parents[1]
FIXED_ITERATIONS = 1000  # per procedure and batch size, for the cost of one iteration


def from_git(commit: str, path: str, name: str, directory: Path) -> ModuleType:
    """The module at ``path`` as of ``commit``, written to ``directory`` and imported as ``name``."""
    source = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    file = directory / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def earlier_optimizers(commit: str, directory: Path) -> ModuleType:
    """``experiments/optimizers.py`` as of ``commit``, calling that commit's ``batched_mlp``."""
    module = from_git(commit, "experiments/optimizers.py", f"optimizers_{commit}", directory)
    module.batched_mlp = from_git(commit, "experiments/batched_mlp.py", f"batched_mlp_{commit}", directory)
    return module


def report(name: str, outcome, stop_names: dict[int, str], wall: float, cpu: float) -> np.ndarray:
    """Print one procedure's line; return which models interpolated."""
    iterations = outcome.iterations.numpy()
    final = outcome.history[outcome.iterations, torch.arange(len(iterations))].numpy()
    stops = outcome.stop.numpy()
    counts = {label: int((stops == value).sum()) for value, label in stop_names.items()}
    print(
        f"{name:9s} {cpu:7.1f} s CPU {wall:7.1f} s wall  {counts}  iterations to the stop: median "
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

    names = {s.value: s.name.lower() for s in optimizers.Stop}
    procedures = []
    with tempfile.TemporaryDirectory() as directory:
        for name, commit in EARLIER.items():
            module = earlier_optimizers(commit, Path(directory))
            procedures.append((name, module, module.LBFGS()))
    procedures.append(("new", optimizers, config.optimizer))
    results = {}
    for name, module, settings in procedures:
        model = batched_mlp.init(
            [w for w, _ in pairs], [s for _, s in pairs], config.hidden_layers, dtype=torch.float64
        )
        wall, cpu = time.perf_counter(), time.process_time()
        outcome = module.lbfgs(model, X, Y, settings)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        results[name] = (outcome, report(name, outcome, names, wall, cpu), cpu)
    base = results["original"][2]
    print(
        "CPU time relative to the original: "
        + ", ".join(f"{k} {v[2] / base:.2f}" for k, v in results.items())
    )
    print(f"CPU per iteration with stopping disabled ({FIXED_ITERATIONS} iterations, ms):")
    for size in (len(pairs), 1):
        costs = []
        for name, module, settings in procedures:
            model = batched_mlp.init(
                [w for w, _ in pairs[:size]], [s for _, s in pairs[:size]], 2, dtype=torch.float64
            )
            never = replace(settings, tol=0.0, window=10**9, max_iters=FIXED_ITERATIONS)
            cpu = time.process_time()
            module.lbfgs(model, X, Y, never)
            costs.append(f"{name} {1e3 * (time.process_time() - cpu) / FIXED_ITERATIONS:.2f}")
        print(f"  {size:3d} model(s): " + ", ".join(costs))
    print("per model (M, seed): iterations and stop, " + " / ".join(results))
    for i, (w, s) in enumerate(pairs):
        cells = [
            f"{int(out.iterations[i]):6d} {names[int(out.stop[i])]:12s}" for out, _, _ in results.values()
        ]
        flag = "  <- differs" if len({bool(interp[i]) for _, interp, _ in results.values()}) > 1 else ""
        print(f"  M={w:3d} s={s}: " + " / ".join(cells) + flag)


if __name__ == "__main__":
    main()
