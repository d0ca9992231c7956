"""The SGD training loop of :mod:`experiments.sgd_implicit_reg`: many models, one batched computation.

Every model keeps its own learning rate μ, weight decay λ, training set and mini-batch order, so
a batch may mix settings (a shard trains several μ or λ at once: the fixed cost of an operation
is paid once for all of them).  A step is one hand-written forward and backward pass with the
update fused into each layer's gradient product (:func:`sgd_step`): no autograd, no stored
gradient, no allocation (every operation writes into a :class:`Workspace`).  The host looks at the models only at a check (every
``Stopping.check_every`` epochs): no step waits for the device.  Imported by
:func:`experiments.sgd_implicit_reg.run_shard` (torch is imported here, not by the stage module).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from experiments import batched_mlp
from experiments.data import DataProcess, draw
from experiments.grad_stats import expected_variation
from experiments.sgd_implicit_reg import Status, Stopping, on_val_schedule, order_seed, test_set
from lab import progress


@dataclass
class Trajectory:
    model: batched_mlp.BatchedMLP  # final (or stopping) parameters of every model, detached
    early: batched_mlp.BatchedMLP  # parameters at the lowest validation MSE (the initial ones without val)
    history: np.ndarray  # (n_checks, n_models) training MSE every check_every epochs; NaN after the stop
    status: np.ndarray  # (n_models,) Status codes
    stop_epoch: np.ndarray  # (n_models,)
    early_epoch: np.ndarray  # (n_models,) epoch of the lowest validation MSE
    # "epoch": (n_models, n_levels) first check below each level; "J", "G", "V", "Vf": (n_models, n_levels,
    # window) at that check and the window − 1 checks after it (NaN where never or after the stop)
    at_level: dict[str, np.ndarray]


ORDER_CHUNK = 100  # epochs of mini-batch orders drawn, sorted and gathered at once (a cost, not a result)


def minibatch_orders(generators: Sequence[torch.Generator], n: int, epochs: int = 1) -> torch.Tensor:
    """The shuffled sample orders of the next ``epochs`` epochs of each training set: (epochs, n_sets, n).

    Epoch ``e`` of a set is the argsort of the ``e``-th draw of ``n`` uniforms from its own generator:
    one draw of ``epochs × n`` uniforms is the same stream as ``epochs`` draws of ``n`` (tested), so
    the orders do not depend on how many epochs are drawn at once.
    """
    return torch.stack([torch.rand(epochs, n, generator=g).argsort(dim=-1) for g in generators], dim=1)


def _epoch_samples(XY: torch.Tensor, generators: Sequence[torch.Generator], epochs: int) -> torch.Tensor:
    """Each training set's samples in the order of each of the next ``epochs`` epochs: (epochs, n_sets, N, dim)."""
    n_sets, n = XY.shape[:2]
    order = minibatch_orders(generators, n, epochs).to(XY.device)  # (epochs, n_sets, N)
    return XY[torch.arange(n_sets, device=XY.device)[:, None], order]


@dataclass
class Workspace:
    """Preallocated outputs of every operation of :func:`sgd_step` for one batch of models."""

    activations: list[torch.Tensor]  # layer l's output: (n_models, B, fan_out_max)
    gradients: list[torch.Tensor]  # the loss gradient at layer l's input (l ≥ 1): (n_models, B, fan_in_max)
    bias_steps: list[torch.Tensor]  # layer l's bias step: (n_models, 1, fan_out_max)


def workspace(model: batched_mlp.BatchedMLP, batch_size: int) -> Workspace:
    """A :class:`Workspace` for mini-batches of ``batch_size`` on the models of ``model``."""
    like = model.weights[0]
    n = model.n_models

    def empty(*shape: int) -> torch.Tensor:
        return torch.empty(n, *shape, dtype=like.dtype, device=like.device)

    return Workspace(
        activations=[empty(batch_size, W.shape[2]) for W in model.weights],
        gradients=[empty(batch_size, W.shape[1]) for W in model.weights],
        bias_steps=[empty(1, W.shape[2]) for W in model.weights],
    )


def sgd_step(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    scale: torch.Tensor,
    shrink: torch.Tensor | None,
    work: Workspace,
) -> None:
    """One SGD step ``θ ← θ − μ ∇J(θ)`` of every model on its mini-batch ``X, Y``, in place.

    ``scale`` is (n_models, 1, 1), μ · 2 / (B · d_out) of each model (μ times the derivative of the
    mean square); with ``shrink`` (n_models,), 1 − μλ, the step is ``θ ← (1 − μλ) θ − μ ∇J(θ)``,
    weight decay as ``torch.optim.SGD`` applies it.  The backpropagation of
    :func:`experiments.batched_mlp.losses_and_grads` (ReLU's derivative at 0 is 0, as in autograd),
    with the update fused into each layer's gradient product (``W ← W − aᵀ(μ δ)``, one
    ``baddbmm``) once the layer's weights have passed the gradient on: no gradient is stored, so a
    step reads every weight twice and writes it once.  Every result goes into ``work``: at these
    sizes a fresh allocation per operation costs as much as a small product.
    """
    with torch.no_grad():
        h, last = X, len(model.weights) - 1
        for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
            h = torch.baddbmm(b, h, W, out=work.activations[layer])
            if layer < last:
                h.relu_()
        delta = h.sub_(Y).mul_(scale)  # μ ∂J/∂out
        for layer in range(last, -1, -1):
            W, b, step = model.weights[layer], model.biases[layer], delta
            inputs = work.activations[layer - 1] if layer > 0 else X
            if layer > 0:  # the gradient at the inputs, with W before its update
                delta = torch.bmm(delta, W.mT, out=work.gradients[layer])
                torch.ops.aten.threshold_backward.grad_input(delta, inputs, 0, grad_input=delta)
            if shrink is not None:
                W.mul_(shrink.view(-1, 1, 1))
                b.mul_(shrink.view(-1, 1, 1))
            W.baddbmm_(inputs.mT, step, alpha=-1)
            b.sub_(torch.sum(step, -2, keepdim=True, out=work.bias_steps[layer]))


def losses(model: batched_mlp.BatchedMLP, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``batched_mlp.mse(batched_mlp.forward(model, X), Y)`` without autograd, every operation in place.

    The same operations in the same order, so the same bits; at the validation and test sets'
    sizes the allocations of the out-of-place forward cost as much as its products.
    """
    with torch.no_grad():
        h = X
        last = len(model.weights) - 1
        for layer, (W, b) in enumerate(zip(model.weights, model.biases, strict=True)):
            h = torch.matmul(h, W).add_(b)  # (n_models, batch, fan_out_max)
            if layer < last:
                h = h.relu_().mul_(model.mask)
        return h.sub_(Y).square_().mean(dim=(-2, -1))


def _select(model: batched_mlp.BatchedMLP, rows: torch.Tensor) -> batched_mlp.BatchedMLP:
    """The models ``rows`` of ``model`` as a new batch (copies, no gradient)."""
    return batched_mlp.with_parameters(model, [p.detach()[rows] for p in model.parameters()], rows)


def _copy_into(target: batched_mlp.BatchedMLP, rows: torch.Tensor, source: batched_mlp.BatchedMLP,
               pick: torch.Tensor) -> None:  # fmt: skip
    """target[rows] ← source[pick] for every parameter."""
    for t, s in zip(target.parameters(), source.parameters(), strict=True):
        t[rows] = s[pick]


def train(
    model: batched_mlp.BatchedMLP,
    X: torch.Tensor,
    Y: torch.Tensor,
    data_index: torch.Tensor,
    lr: torch.Tensor,
    weight_decay: torch.Tensor,
    batch_size: int,
    stopping: Stopping,
    order_seeds: Sequence[int],
    levels: tuple[float, ...] = (),
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    val_every: int = 0,
    desc: str = "SGD",
) -> Trajectory:
    """Train every model of ``model`` by SGD with its own learning rate and weight decay.

    Each step updates ``θ ← θ − μ (∇J_batch(θ) + λ θ)``, exactly as ``torch.optim.SGD``
    with ``weight_decay=λ`` (no momentum).  Every epoch each training set is reshuffled by
    its own seeded generator, so a model's trajectory depends only on its own data,
    initialisation, order seed, μ and λ, not on the other models in the batch.  Every
    ``stopping.check_every`` epochs the full training MSE is evaluated; models that
    diverged or stalled (see :class:`~experiments.sgd_implicit_reg.Status`) are frozen and leave
    the batch, and models that reached the target loss do so ``stopping.window − 1`` checks later
    (or at the budget).

    Parameters
    ----------
    model
        ``n_models`` initial networks (not modified).
    X, Y
        Training sets, shape (n_sets, N, dim).
    data_index
        (n_models,) the training set of each model.
    lr, weight_decay
        (n_models,) μ and λ of each model.
    batch_size
        B, dividing N.
    stopping
        When a model stops.
    order_seeds
        (n_sets,) seed of each training set's mini-batch shuffling.
    levels
        Training-loss levels: at the first check where a model's loss is below a level and
        the ``stopping.window − 1`` checks after it (while the model trains), its J, G, expected
        V and V_fix (:func:`~experiments.grad_stats.expected_variation`) are recorded.
    val, val_every
        A shared validation set, checked on :func:`~experiments.sgd_implicit_reg.on_val_schedule`
        (``val_every`` a multiple of ``check_every``) and at the stop; the parameters with the
        lowest validation MSE are kept.
    desc
        Label of the progress bar.
    """
    s = stopping
    n_models, n = model.n_models, X.shape[1]
    if n % batch_size:
        raise ValueError(f"batch size {batch_size} does not divide N = {n}")
    dev = X.device
    every = torch.arange(n_models, device=dev)
    final, early = _select(model, every), _select(model, every)  # final and early-stopped parameters
    model = _select(model, every)  # the models still training
    generators = [torch.Generator().manual_seed(seed) for seed in order_seeds]
    XY, dim_x = torch.cat([X, Y], -1), X.shape[-1]  # one gather per epoch for inputs and targets
    history = np.full((s.max_epochs // s.check_every + 1, n_models), np.nan)
    status = np.full(n_models, Status.MAX_EPOCHS)
    stop_epoch = np.full(n_models, s.max_epochs)
    best = np.full(n_models, np.inf)  # best training MSE so far
    best_epoch = np.zeros(n_models, dtype=int)  # epoch of its last improvement
    best_val, early_epoch = np.full(n_models, np.inf), np.zeros(n_models, dtype=int)
    initial = np.full(n_models, np.nan)
    reached = np.full(n_models, np.nan)  # epoch of the first check below the target
    at_level = {"epoch": np.full((n_models, len(levels)), np.nan)}
    at_level |= {k: np.full((n_models, len(levels), s.window), np.nan) for k in ("J", "G", "V", "Vf")}

    active = torch.arange(n_models)  # indices of the models still training
    sets = data_index.to(dev)
    scale = lr.to(dev, X.dtype).view(-1, 1, 1) * (2 / (batch_size * Y.shape[-1]))  # (n_active, 1, 1)
    work = workspace(model, batch_size)
    decaying = bool((weight_decay != 0).any())
    shrink = (1 - lr * weight_decay).to(dev, X.dtype) if decaying else None  # (n_active,): 1 − μλ
    bar = progress.bar(total=s.max_epochs, desc=desc, unit="epoch", leave=False)
    for epoch in range(s.max_epochs + 1):
        if epoch > 0:
            if (epoch - 1) % ORDER_CHUNK == 0:
                # (epochs, n_sets, N, dim_x + dim_y)
                chunk = _epoch_samples(XY, generators, min(ORDER_CHUNK, s.max_epochs + 1 - epoch))
            XY_epoch = chunk[(epoch - 1) % ORDER_CHUNK][
                sets
            ]  # (n_active, N, dim_x + dim_y): each model's samples
            for start in range(0, n, batch_size):
                batch = XY_epoch[:, start : start + batch_size]
                sgd_step(model, batch[..., :dim_x], batch[..., dim_x:], scale, shrink, work)
            bar.update()
        if epoch % s.check_every:
            continue
        loss = losses(model, X[sets], Y[sets]).double().cpu().numpy()
        ids = active.numpy()
        history[epoch // s.check_every, ids] = loss
        if epoch == 0:
            initial[ids] = loss
        first = at_level["epoch"][ids]  # (n_active, n_levels)
        first[np.isnan(first) & (loss[:, None] < np.array(levels))] = epoch
        at_level["epoch"][ids] = first
        slot = (epoch - first) // s.check_every  # window index of this check per level; NaN if not crossed
        recording = np.nan_to_num(slot, nan=s.window) < s.window  # (n_active, n_levels)
        if recording.any():
            rows = np.flatnonzero(recording.any(1))
            sel = torch.from_numpy(rows).to(dev)
            G, V, Vf = expected_variation(_select(model, sel), X[sets[sel]], Y[sets[sel]], batch_size)
            r, k = np.nonzero(recording[rows])
            for key, value in [("J", loss[rows]), ("G", G), ("V", V), ("Vf", Vf)]:
                value = value.double().cpu().numpy() if torch.is_tensor(value) else value
                at_level[key][ids[rows[r]], k, slot[rows[r], k].astype(int)] = value[r]
        improved = loss < (1 - s.stall_improvement) * best[ids]
        best[ids] = np.where(improved, loss, best[ids])
        best_epoch[ids] = np.where(improved, epoch, best_epoch[ids])
        done = np.full(len(ids), Status.MAX_EPOCHS)
        done[epoch - best_epoch[ids] >= s.stall_epochs] = Status.STALLED
        done[~np.isfinite(loss) | (loss > s.diverge_factor * initial[ids])] = Status.DIVERGED
        reached[ids[np.isnan(reached[ids]) & (loss < s.target_loss)]] = epoch
        settled = epoch - reached[ids] >= (s.window - 1) * s.check_every  # False where not reached
        done[~np.isnan(reached[ids])] = Status.MAX_EPOCHS  # reached the target: trains on for its window
        done[settled] = Status.CONVERGED
        finished = (done != Status.MAX_EPOCHS) | (epoch == s.max_epochs)
        done[finished & ~np.isnan(reached[ids])] = Status.CONVERGED  # also when the budget cut its window
        if val is not None and (on_val_schedule(epoch, s.check_every, val_every) or finished.any()):
            v = losses(model, *val).double().cpu().numpy()
            # Off the schedule only models stopping now are checked, so no model depends on its batch mates.
            checked = finished | on_val_schedule(epoch, s.check_every, val_every)
            better = (v < best_val[ids]) & checked & (done != Status.DIVERGED)
            if better.any():
                best_val[ids[better]], early_epoch[ids[better]] = v[better], epoch
                _copy_into(
                    early, active[better].to(dev), model, torch.from_numpy(np.flatnonzero(better)).to(dev)
                )
        if finished.any():
            status[ids[finished]] = done[finished]
            stop_epoch[ids[finished]] = epoch
            _copy_into(
                final, active[finished].to(dev), model, torch.from_numpy(np.flatnonzero(finished)).to(dev)
            )
            keep = torch.from_numpy(~finished)
            active, kept = active[keep], keep.nonzero().squeeze(1).to(dev)
            model, sets, scale = _select(model, kept), sets[kept], scale[kept]
            work = workspace(model, batch_size)
            shrink = None if shrink is None else shrink[kept]
            bar.set_postfix(training=len(active))
        if len(active) == 0:
            break
    bar.close()
    return Trajectory(final, early, history, status, stop_epoch, early_epoch, at_level)


def _shared_sets(spec: dict, dev: torch.device) -> tuple[tuple, tuple]:
    """The test and validation sets every run shares."""
    test = tuple(t.to(dev) for t in test_set(spec["data"], spec["n_test"], spec["seed"]))
    val = tuple(t.to(dev) for t in draw(spec["data"], spec["n_val"], spec["seed"] + 300_000, split="val"))
    return test, val


def run_shard(spec: dict) -> dict[str, np.ndarray]:
    """:func:`experiments.sgd_implicit_reg.run_shard`: train the block μ × λ × runs of ``spec`` (run fastest) at its B and measure every model.

    Returns arrays of shape (n_lr, n_lambda, n_runs[, ...]): status, stop_epoch, the final
    train/val/test MSE, the early-stopped (lowest validation MSE) epoch and val/test MSE,
    the level records (J, G, V, V_fix over each level's window), the loss history; and ``cpu_seconds``.
    """
    cpu, process, dev = time.process_time(), DataProcess(), batched_mlp.device()
    seed, runs, lrs, lambdas = spec["seed"], spec["runs"], spec["lrs"], spec["lambdas"]
    stopping = Stopping(**spec["stopping"])
    sets = [draw(spec["data"], spec["n_train"], seed + 1 + r) for r in runs]
    X = torch.stack([x for x, _ in sets]).to(dev)  # (n_block_runs, N, dim)
    Y = torch.stack([y for _, y in sets]).to(dev)
    test, val = _shared_sets(spec, dev)
    hyper = [(mu, lam) for mu in lrs for lam in lambdas]
    n = len(hyper) * len(runs)
    model = batched_mlp.init(
        [spec["width"]] * n,
        [seed + 200_000 + r for r in runs] * len(hyper),
        spec["hidden_layers"],
        process.dim,
        process.dim,
        dev=dev,
    )
    data_index = torch.arange(n) % len(runs)
    lr, wd = (torch.tensor([h[k] for h in hyper]).repeat_interleave(len(runs)) for k in (0, 1))
    traj = train(
        model, X, Y, data_index, lr, wd, spec["batch_size"], stopping,
        order_seeds=[order_seed(seed, r) for r in runs], levels=tuple(spec["levels"]), val=val,
        val_every=spec["val_every"], desc=f"B={spec['batch_size']} μ={lrs} λ={lambdas}",
    )  # fmt: skip
    X_m, Y_m = X[data_index], Y[data_index]  # (n_models, N, dim)
    out = {"status": traj.status, "stop_epoch": traj.stop_epoch, "es_epoch": traj.early_epoch}
    for prefix, params in [("", traj.model), ("es_", traj.early)]:
        for name, (x, y) in [("train", (X_m, Y_m)), ("val", val), ("test", test)]:
            out[f"{prefix}{name}_loss"] = losses(params, x, y).double().cpu().numpy()
    out |= {f"level_{k}": v for k, v in traj.at_level.items()}
    out["history"] = traj.history.T
    shape = (len(lrs), len(lambdas), len(runs))
    parts = {k: np.asarray(v.double().cpu().numpy() if torch.is_tensor(v) else v) for k, v in out.items()}
    parts = {k: v.reshape(*shape, *v.shape[1:]) for k, v in parts.items()}
    return parts | {"cpu_seconds": np.asarray(time.process_time() - cpu)}
