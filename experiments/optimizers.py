"""Full-batch L-BFGS for many networks at once, each model as if it were optimized alone.

Every model of a :class:`experiments.batched_mlp.BatchedMLP` keeps its own curvature pairs
(in the compact representation, :class:`_Memory`) and backtracking (Armijo) line search; every
inner product is taken per model, so models never interact.  A model stops for one of three stated reasons
(:class:`Stop`): its training MSE is below ``tol`` (it *interpolates*); it *stalls*; or its line
search found no decrease down to a step of 2^-``halvings`` along a descent direction (a stall
too: no decrease is left to find at working precision).

A stall is read from the last ``window`` iterations, after k iterations in all: the MSE fell by
less than the fraction ``min_decrease``, or it fell so slowly that, continuing at the same
log-rate, reaching ``tol`` would take more than ``slow_factor * k`` further iterations.  The
second test is scale-free (no iteration count is fixed in advance) and is what stops the
near-threshold networks that creep for thousands of iterations.  Calibration: of the 130 networks
of N = 100, M = 19..26 and N = 200, M = 30..38 trained with the first test alone up to 40 000
iterations, the 40 that went on to interpolate kept the ratio (iterations to ``tol`` at the rate
of the last 500) / (iterations so far) below 11.3 at every iteration (8.4 for N = 100), so
``slow_factor`` = 20 leaves a margin of 1.8 and stops none of them, while the creeping ones stop
after a median 15 % (N = 100) and 19 % (N = 200) of the iterations the first test needs.  The ratio peaks early, while a
network that will interpolate still sits near 1e-3 before it accelerates; a smaller limit (12)
saves little more, since the networks that interpolate late dominate the cost.  Each model's
largest ratio is returned, so a sweep reports its own margin.  Stopped models are
dropped from the batch at once, since every step costs in proportion to the models it carries.
``max_iters`` is a safety budget only: a model still decreasing there would be reported as
*uncertified*, neither interpolating nor stalled.
"""

import functools
from dataclasses import dataclass

import torch

from experiments import batched_mlp
from experiments.lbfgs_config import LBFGS, Stop


@dataclass(frozen=True)
class Outcome:
    """Per model: iterations run, why it stopped, and its training MSE before every iteration."""

    iterations: torch.Tensor  # (n_models,) long
    evaluations: torch.Tensor  # (n_models,) long: loss-and-gradient evaluations, line search included
    stop: torch.Tensor  # (n_models,) long, values of Stop
    slowest: torch.Tensor  # (n_models,) the largest ratio of the rate test (see the module docstring)
    history: torch.Tensor  # (iterations_run + 1, n_models); entry k is the MSE after k iterations
    evaluation_history: (
        torch.Tensor
    )  # (iterations_run + 1, n_models) long; entry k: evaluations after k iterations


def _rows(model: batched_mlp.BatchedMLP, rows: torch.Tensor) -> batched_mlp.BatchedMLP:
    """The models ``rows`` of ``model`` (their structure: :func:`batched_mlp.as_model` fills in values)."""
    return batched_mlp.with_parameters(model, [p.detach()[rows] for p in model.parameters()], rows)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per model, a . b: (n, P) x (n, P) -> (n,), one pass over both."""
    return torch.linalg.vecdot(a, b)


@dataclass
class _Memory:
    """Each model's last ``size`` curvature pairs in the compact form of Byrd, Nocedal & Schnabel (1994).

    ``V`` (n_models, 2 size, P) stores pair k (counting from 0) as s in row ``k % size`` and y in
    row ``size + k % size``, so adding a pair writes two rows instead of shifting the others; a pair
    without positive curvature is stored as zeros.  ``SY[i, j] = s_i . y_j`` for i <= j (zero below
    the diagonal) and ``YY = Y Y^T``, both (n_models, m, m) in chronological order, grow by one
    column per pair.  ``Vg`` is ``V`` times the current gradient g.  Since y = g_new - g, one
    product ``V g_new`` gives both the new column ``V y`` (as ``V g_new - V g``) and the next
    ``Vg``, so an iteration reads ``V`` twice (there and in the final combination) instead of the
    two-loop recursion's 4m small operations, and without autograd-sized bookkeeping: at these sizes
    an operation's fixed cost, then memory traffic, not arithmetic, set the time of an iteration.
    """

    V: torch.Tensor
    SY: torch.Tensor
    YY: torch.Tensor
    Vg: torch.Tensor
    count: int = 0  # pairs added so far

    @classmethod
    def empty(cls, g: torch.Tensor, size: int) -> "_Memory":
        """No pairs yet, for the models whose gradients are the rows of ``g``."""
        matrix = g.new_zeros(len(g), 0, 0)
        return cls(g.new_zeros(len(g), 2 * size, g.shape[1]), matrix, matrix, g.new_zeros(len(g), 2 * size))

    @property
    def size(self) -> int:
        return self.V.shape[1] // 2

    @property
    def order(self) -> torch.Tensor:
        """The slots of the stored pairs, oldest first."""
        return _slots(min(self.count, self.size), self.count % self.size, self.size, self.V.device)

    @property
    def y_order(self) -> torch.Tensor:
        """The rows of ``V`` holding the stored pairs' y, oldest first."""
        return _slots(min(self.count, self.size), self.count % self.size, self.size, self.V.device, self.size)

    def rows(self, keep: torch.Tensor) -> "_Memory":
        return _Memory(self.V[keep], self.SY[keep], self.YY[keep], self.Vg[keep], self.count)

    def append(
        self,
        s: torch.Tensor,
        y: torch.Tensor,
        g_new: torch.Tensor,
        keep: torch.Tensor,
        sy: torch.Tensor,
        yy: torch.Tensor,
    ) -> "_Memory":
        """The memory with the pair ``(s, y)`` added where ``keep`` (else an empty pair), the gradient now ``g_new``.

        ``y`` must be ``g_new`` minus the gradient of the last call, ``sy`` and ``yy`` the per-model
        products s . y and y . y.  The oldest pair is dropped when the memory is full.  The pair is
        written into ``V`` first, so the one product ``V g_new`` also gives s . g_new and y . g_new.
        """
        order, size, slot = self.order, self.size, self.count % self.size
        self.V[:, slot], self.V[:, size + slot] = s, y
        if not bool(keep.all()):
            self.V[~keep, slot], self.V[~keep, size + slot] = 0.0, 0.0
        Vg = _times(self.V, g_new)
        Vy = (
            Vg - self.Vg
        )  # V (g_new - g) on the old pairs; float64 keeps it exact enough for the curvature matrices
        weight = keep.to(s.dtype).unsqueeze(1)
        sy_column = torch.cat([Vy[:, order], sy.unsqueeze(1)], 1) * weight
        yy_column = torch.cat([Vy[:, self.y_order], yy.unsqueeze(1)], 1) * weight
        SY = torch.cat([torch.nn.functional.pad(self.SY, (0, 0, 0, 1)), sy_column.unsqueeze(2)], 2)
        YY = torch.cat([torch.cat([self.YY, yy_column[:, :-1].unsqueeze(1)], 1), yy_column.unsqueeze(2)], 2)
        first = 1 if len(order) == size else 0  # a full memory drops its oldest pair (the slot just written)
        return _Memory(self.V, SY[:, first:, first:], YY[:, first:, first:], Vg, self.count + 1)

    def inverse_hessian_times(self, g: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """H g for the current gradient g and H the L-BFGS inverse-Hessian approximation with H_0 = gamma I.

        H g = gamma g + S^T R^-T ((D + gamma Y Y^T) u - gamma Y g) - gamma Y^T u,  u = R^-1 S g
        (Nocedal & Wright, eq. 7.24), with R the upper triangle of SY and D its diagonal.  An empty
        pair has a zero row and column in every matrix; a unit diagonal entry of R there leaves the
        other pairs' terms as they are and contributes nothing.
        """
        if self.count == 0:
            return gamma.unsqueeze(1) * g
        order = self.order
        D = torch.diagonal(self.SY, dim1=1, dim2=2)
        R = self.SY + torch.diag_embed((D == 0).to(g.dtype))
        u = torch.linalg.solve_triangular(R, self.Vg[:, order].unsqueeze(2), upper=True)
        gamma_ = gamma.view(-1, 1, 1)
        v = D.unsqueeze(2) * u + gamma_ * (self.YY @ u - self.Vg[:, self.y_order].unsqueeze(2))
        p = torch.linalg.solve_triangular(R.mT, v, upper=False)
        coefficients = torch.zeros_like(self.Vg)  # of the rows of V: p on the s rows, -gamma u on the y rows
        coefficients[:, order], coefficients[:, self.y_order] = p.squeeze(2), -(gamma_ * u).squeeze(2)
        return (coefficients.unsqueeze(1) @ self.V).squeeze(1).addcmul_(gamma.unsqueeze(1), g)


@functools.cache
def _slots(stored: int, next_slot: int, size: int, device: torch.device, offset: int = 0) -> torch.Tensor:
    """``offset`` plus the slots of ``stored`` pairs, oldest first, when the next pair goes to ``next_slot``.

    Cached: an iteration would otherwise build the same few index tensors again.
    """
    return (torch.arange(next_slot - stored, next_slot, device=device) % size).add_(offset)


def _times(A: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per model, A v: (n, m, P) x (n, P) -> (n, m), as a row vector times A^T (the fast layout on CPU)."""
    return (v.unsqueeze(1) @ A.mT).squeeze(1)


def _filled(history: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """``history`` (T, n) with each column's entries after row ``last`` replaced by its entry there."""
    rows = torch.arange(len(history), device=history.device).unsqueeze(1)
    return history.gather(0, torch.minimum(rows, last.unsqueeze(0)))


class _History:
    """Per-iteration rows of per-model values, written for the models still optimized only.

    A stopped model keeps its last value; :meth:`result` fills it in from there, so an iteration
    writes one row of the live models instead of copying the whole batch.
    """

    def __init__(self, first: torch.Tensor) -> None:
        self.rows = first.new_zeros(256, len(first))
        self.rows[0] = first

    def write(self, k: int, live: torch.Tensor, values: torch.Tensor) -> None:
        if k == len(self.rows):  # double the buffer
            self.rows = torch.cat([self.rows, torch.zeros_like(self.rows)])
        self.rows[k, live] = values

    def read(self, k: int, live: torch.Tensor) -> torch.Tensor:
        return self.rows[k, live]

    def result(self, iterations: int, last: torch.Tensor) -> torch.Tensor:
        return _filled(self.rows[: iterations + 1], last)


def lbfgs(
    model: batched_mlp.BatchedMLP, X: torch.Tensor, Y: torch.Tensor, settings: LBFGS, progress=None
) -> Outcome:
    """Minimize every model's training MSE on ``(X, Y)`` in place until each has stopped.

    ``progress`` (a tqdm bar or None) is advanced once per iteration.  The state of the models
    still optimized (``live``) is kept on the batch of those models alone and written back to
    the whole batch only when a model stops, so an iteration costs in proportion to the live models.
    """
    n, dev = model.n_models, X.device
    x_all = batched_mlp.flatten(model)
    x = x_all.clone()
    f, g = batched_mlp.losses_and_grads(model, x, X, Y)
    # written back when a model stops; -1 = still optimized
    stop = torch.where(f < settings.tol, Stop.INTERPOLATED, -1).to(device=dev, dtype=torch.long)
    iterations = torch.zeros(n, dtype=torch.long, device=dev)
    evaluations = torch.ones(n, dtype=torch.long, device=dev)
    slowest = torch.zeros(n, dtype=x.dtype, device=dev)  # the largest ratio of the rate test seen
    history, evaluation_history = _History(f), _History(evaluations)
    # the live models' state
    live, sub = torch.arange(n, device=dev), model
    memory = _Memory.empty(g, settings.history)
    gamma = torch.full((n,), settings.first_step, dtype=x.dtype, device=dev)  # initial inverse-Hessian scale
    stop_live, slowest_live, evaluations_live = stop.clone(), slowest.clone(), evaluations.clone()
    k = 0
    while True:
        active = stop_live < 0
        if not bool(active.all()):  # write back the stopped models and drop them from the batch at once
            done = live[~active]
            x_all[done], stop[done], slowest[done] = x[~active], stop_live[~active], slowest_live[~active]
            iterations[done], evaluations[done] = k, evaluations_live[~active]
            if not bool(active.any()):
                break
            live, x, f, g, gamma = live[active], x[active], f[active], g[active], gamma[active]
            slowest_live, evaluations_live = slowest_live[active], evaluations_live[active]
            memory = memory.rows(active)
            sub = _rows(model, live)
        if k == settings.max_iters:
            x_all[live], slowest[live], evaluations[live], iterations[live] = (
                x,
                slowest_live,
                evaluations_live,
                k,
            )
            break
        k += 1
        # from here on every model of the batch is still optimized
        d = memory.inverse_hessian_times(g, gamma).neg_()
        slope = _dot(g, d)
        uphill = slope >= 0  # not a descent direction: steepest descent instead (rare)
        if bool(uphill.any()):
            d[uphill] = -gamma[uphill].unsqueeze(1) * g[uphill]
            slope[uphill] = _dot(g[uphill], d[uphill])
        x_new = x + d
        f_new, g_new = batched_mlp.losses_and_grads(sub, x_new, X, Y)
        evaluations_live += 1
        accepted = f_new <= f + settings.armijo * slope
        searching = None  # the models whose line search found no decrease (None: none)
        if not bool(accepted.all()):
            t = torch.ones_like(f)  # the step length of each model's line search
            for _ in range(settings.halvings):  # halve the step of the models still searching, on those alone
                idx = (~accepted).nonzero().squeeze(1)
                if len(idx) == 0:
                    break
                t[idx] /= 2
                evaluations_live[idx] += 1
                trial = x[idx] + t[idx].unsqueeze(1) * d[idx]
                f_t, g_t = batched_mlp.losses_and_grads(_rows(model, live[idx]), trial, X, Y)
                ok = f_t <= f[idx] + settings.armijo * t[idx] * slope[idx]
                found = idx[ok]
                x_new[found], f_new[found], g_new[found] = trial[ok], f_t[ok], g_t[ok]
                accepted[found] = True
            if not bool(accepted.all()):  # no decrease found: the model stays where it was
                searching = ~accepted
                x_new[searching], f_new[searching], g_new[searching] = (
                    x[searching],
                    f[searching],
                    g[searching],
                )
        s, y = x_new - x, g_new - g
        sy, yy = _dot(s, y), _dot(y, y)
        curved = sy > 1e-12 * _dot(s, s).sqrt() * yy.sqrt()  # keep only pairs with positive curvature
        memory = memory.append(s, y, g_new, curved, sy, yy)
        gamma = torch.where(curved, sy / yy.clamp_min(1e-300), gamma)
        x, f, g = x_new, f_new, g_new
        history.write(k, live, f)
        evaluation_history.write(k, live, evaluations_live)
        stop_live = torch.where(f < settings.tol, Stop.INTERPOLATED, -1)
        if searching is not None:
            stop_live = torch.where(searching, Stop.NO_DECREASE, stop_live)
        if k >= settings.window:
            before = history.read(k - settings.window, live)
            stalled = f > (1 - settings.min_decrease) * before
            # too slow: at the log-rate of the window, tol needs more than slow_factor * k further iterations
            ratio = settings.window * torch.log(f / settings.tol) / (k * torch.log(before / f))
            ratio = torch.where(f < before, ratio, torch.inf)
            judged = stop_live < 0  # moved (a model without decrease has stopped) and not below tol
            slowest_live = torch.where(judged, torch.maximum(slowest_live, ratio), slowest_live)
            stop_live = torch.where(
                judged & (stalled | (ratio > settings.slow_factor)), Stop.STALLED, stop_live
            )
        if progress is not None:
            progress.update(1)
    stop = torch.where(stop < 0, Stop.UNCERTIFIED, stop)
    batched_mlp.unflatten(model, x_all)
    return Outcome(
        iterations=iterations,
        evaluations=evaluations,
        stop=stop,
        slowest=slowest,
        history=history.result(k, iterations),
        evaluation_history=evaluation_history.result(k, iterations),
    )
