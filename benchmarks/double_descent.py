"""Benchmark: CPU time per L-BFGS iteration of the double-descent sweep, today's version (from git) against the current one.

*Old*: :mod:`experiments.optimizers` as of commit ``57117bb`` with that commit's ``batched_mlp``,
loaded from git history so that it runs exactly as it did.  *New*: the current modules.  Near the
threshold a model's iteration count depends on rounding (a creeping network may need three times
the iterations after a change that only reorders sums), so the benchmark compares the cost of an
iteration with stopping disabled, which does not depend on the trajectories: for a near-threshold
batch (by default the models of the full profile's longest shard, N = 200, M = 30..38, seeds 0..4)
and for one model of it (the creeping tail, which runs alone once its batch mates have stopped).
Both train the same (width, seed) models on the full profile's training set of size N, one
intra-op thread, in one run; the two versions alternate ``--repeats`` times and the smallest CPU
time of each is kept (the machine may be shared).

Then, for both versions, where an iteration's CPU time goes: the loss and gradient (the matrix
products of the forward and backward passes), the two products with the curvature memory (the
compact inverse-Hessian product and the memory update, each one pass over the stored pairs plus a
few small matrices), and the rest (line search, curvature test, stopping bookkeeping), timed by
wrapping those functions.

Run with ``python -m benchmarks.double_descent [--n 200] [--widths 30,32,34,36,38] [--seeds 5]``.
"""

import argparse
import collections
import functools
import importlib.util
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import torch

from experiments import batched_mlp, optimizers
from experiments import double_descent as dd
from experiments.data import make_data

OLD = "57117bb"  # the version before the feature-major backpropagation and the fused iteration
ROOT = Path(__file__).resolve().parents[1]


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


def per_iteration(module: ModuleType, pairs: list[tuple[int, int]], X, Y, iterations: int) -> float:
    """CPU seconds per iteration of ``module.lbfgs`` on the (width, seed) models ``pairs``, never stopping."""
    model = batched_mlp.init(
        [w for w, _ in pairs], [s for _, s in pairs], dd.PROFILES["full"].hidden_layers, dtype=torch.float64
    )
    never = replace(module.LBFGS(), tol=1e-300, window=10**9, max_iters=iterations)
    cpu = time.process_time()
    module.lbfgs(model, X, Y, never)
    return (time.process_time() - cpu) / iterations


PARTS = {  # (owner attribute path, label): the functions whose CPU time the breakdown reports
    ("batched_mlp", "losses_and_grads"): "loss and gradient",
    ("_Memory", "inverse_hessian_times"): "memory: H g",
    ("_Memory", "append"): "memory: update (V g_new)",
}


def breakdown(module: ModuleType, pairs: list[tuple[int, int]], X, Y, iterations: int) -> dict[str, float]:
    """CPU seconds per iteration of ``module.lbfgs`` spent in each of ``PARTS``, and the rest."""
    spent: collections.Counter = collections.Counter()
    originals = {key: getattr(getattr(module, key[0]), key[1]) for key in PARTS}

    def timed(label: str, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            cpu = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - cpu

        return wrapper

    for key, label in PARTS.items():
        setattr(getattr(module, key[0]), key[1], timed(label, originals[key]))
    try:
        total = per_iteration(module, pairs, X, Y, iterations)
    finally:
        for key, function in originals.items():
            setattr(getattr(module, key[0]), key[1], function)
    parts = {label: spent[label] / iterations for label in PARTS.values()}
    return {**parts, "rest (line search, bookkeeping)": total - sum(parts.values()), "total": total}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=200, help="training-set size (a value of the full profile's n_train)"
    )
    parser.add_argument(
        "--widths", default="30,32,34,36,38", help="comma-separated widths near that N's threshold"
    )
    parser.add_argument("--seeds", type=int, default=5, help="initialization seeds per width")
    parser.add_argument("--iterations", type=int, default=300, help="iterations per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of the two versions")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = dd.PROFILES["full"]
    pairs = [(int(w), s) for w in args.widths.split(",") for s in range(args.seeds)]
    X, Y = make_data(args.n, config.sample_seed + args.n, dtype=torch.float64)
    with tempfile.TemporaryDirectory() as directory:
        versions = {"old": earlier_optimizers(OLD, Path(directory)), "new": optimizers}
    print(f"L-BFGS, N = {args.n}, float64, 1 thread, {args.iterations} iterations, best of {args.repeats}")
    print(f"{'batch':34s} {'old ms/iter':>11s} {'new ms/iter':>11s} {'speed-up':>8s}")
    for label, batch in [
        (f"{len(pairs)} models (M = {args.widths})", pairs),
        (f"1 model (M = {pairs[-1][0]})", pairs[-1:]),
    ]:
        best = {name: float("inf") for name in versions}
        for _ in range(args.repeats):
            for name, module in versions.items():
                best[name] = min(best[name], per_iteration(module, batch, X, Y, args.iterations))
        print(
            f"{label:34s} {1e3 * best['old']:11.2f} {1e3 * best['new']:11.2f} {best['old'] / best['new']:7.2f}x"
        )
    print(f"\nwhere an iteration of the {len(pairs)} models goes (ms per iteration, share)")
    parts = {name: breakdown(module, pairs, X, Y, args.iterations) for name, module in versions.items()}
    for label in parts["new"]:
        old, new = parts["old"][label], parts["new"][label]
        print(
            f"{label:34s} {1e3 * old:6.2f} {100 * old / parts['old']['total']:3.0f}% "
            f"{1e3 * new:6.2f} {100 * new / parts['new']['total']:3.0f}%"
        )


if __name__ == "__main__":
    main()
