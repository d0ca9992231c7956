"""Computer assignment 1, the training: one shard of the double-descent sweep or of the Jacobian-rank check.

Called through :func:`experiments.double_descent.run_shard`, which imports this module only when a
shard runs, so that the stage's configuration, shards and gather import without torch.
"""

import numpy as np
import torch

from experiments import batched_mlp, effective_params
from experiments.data import draw
from experiments.data_process import DataProcess
from experiments.double_descent import span
from experiments.jacobian_rank import balanced_point, jacobian_rank
from experiments.lbfgs_config import LBFGS
from experiments.optimizers import lbfgs
from lab import progress


def sweep(spec: dict) -> dict[str, np.ndarray]:
    """Train every (width, seed) of the shard as one batch; final losses, stop reasons, histories."""
    process, dev = DataProcess(**spec["process"]), batched_mlp.device()
    X, Y = (t.to(dev) for t in draw(spec["data"], spec["n"], spec["train_seed"], torch.float64))
    X_test, Y_test = (
        t.to(dev) for t in draw(spec["data"], spec["n_test"], spec["test_seed"], torch.float64, "test")
    )
    widths, seeds = spec["widths"], spec["seeds"]
    pairs = [(w, s) for w in widths for s in seeds]
    model = batched_mlp.init(
        [w for w, _ in pairs],
        [spec["seed_offset"] + s for _, s in pairs],
        spec["hidden_layers"],
        process.dim,
        process.dim,
        torch.float64,
        dev,
    )
    with progress.bar(desc=f"N={spec['n']} M={span(widths)} s={span(seeds)}", leave=False) as bar:
        outcome = lbfgs(model, X, Y, LBFGS(**spec["optimizer"]), bar)
    with torch.no_grad():
        test = batched_mlp.mse(batched_mlp.forward(model, X_test), Y_test)
    shape = (len(widths), len(seeds))
    ran = outcome.iterations.cpu().numpy()
    history = outcome.history.cpu().numpy()
    part = {
        "train": history[ran, np.arange(len(pairs))].reshape(shape),
        "test": test.cpu().numpy().reshape(shape),
        "iterations": ran.reshape(shape),
        "evaluations": outcome.evaluations.cpu().numpy().reshape(shape),
        "slowest": outcome.slowest.cpu().numpy().reshape(shape),
        "stop": outcome.stop.cpu().numpy().reshape(shape),
    }
    for w in widths:
        if w <= spec["params_max_width"]:
            part[f"params_m{w}"] = np.stack(
                [
                    torch.nn.utils.parameters_to_vector(batched_mlp.to_sequential(model, i).parameters())
                    .detach()
                    .cpu()
                    .numpy()
                    for i, (width, _) in enumerate(pairs)
                    if width == w
                ]
            )  # (n_seeds, P(w)): unpadded, nn.Sequential order
    evaluations = outcome.evaluation_history.cpu().numpy().astype(float)
    for w in spec["curve_widths"]:
        cols = slice(widths.index(w) * len(seeds), (widths.index(w) + 1) * len(seeds))
        last = int(ran[cols].max())
        for key, values in (("curve", history), ("curve_evaluations", evaluations)):
            curves = values[: last + 1, cols].T.copy()  # (n_seeds, iterations + 1)
            curves[np.arange(last + 1) > ran[cols, None]] = np.nan
            part[f"{key}_{w}"] = curves
    return part


def rank_sample(spec: dict) -> tuple[torch.Tensor, int, DataProcess]:
    process = DataProcess(**spec["process"])
    X = draw(spec["data"], spec["samples"], spec["sample_seed"], torch.float64)[0]
    return X, spec["hidden_layers"], process


def balanced(spec: dict) -> dict[str, np.ndarray]:
    """Jacobian rank and singular-value gap at a balanced point of every rank width.

    On one torch thread: the first discarded singular value is zero in exact arithmetic, so the gap
    measures rounding noise, whose value depends on the order of the sums; one thread fixes that
    order, and the gap no longer depends on how many threads the worker has (``--jobs``), which the
    cache key does not see.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        X, K, process = rank_sample(spec)
        count = effective_params.effective_count(K, process.dim)
        points = [
            jacobian_rank(
                balanced_point(w, K, X, spec["seed_offset"]), X, int(count.subs(effective_params.M, w))
            )
            for w in spec["widths"]
        ]
    finally:
        torch.set_num_threads(threads)
    return {"balanced": np.array([p.rank for p in points]), "gap": np.array([p.gap for p in points])}


def default_ranks(spec: dict) -> dict[str, np.ndarray]:
    """Jacobian rank and nearly constant units at nn.Linear's initialization, per rank width and seed."""
    X, K, process = rank_sample(spec)
    count = effective_params.effective_count(K, process.dim)
    shape = (len(spec["widths"]), len(spec["seeds"]))
    default, inactive = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for i, width in enumerate(spec["widths"]):
        for j, seed in enumerate(spec["seeds"]):
            model = batched_mlp.init(
                [width], [spec["seed_offset"] + seed], K, process.dim, process.dim, torch.float64
            )
            rank = jacobian_rank(model, X, int(count.subs(effective_params.M, width)))
            default[i, j], inactive[i, j] = rank.rank, rank.inactive_units
    return {"default": default, "inactive": inactive}
