"""The batched L-BFGS: every model as if alone, and the stated stopping rule."""

import math
from dataclasses import replace

import pytest
import torch

from experiments import batched_mlp
from experiments.data import make_data
from experiments.lbfgs_config import LBFGS, Stop
from experiments.optimizers import _Memory, lbfgs

SETTINGS = LBFGS(max_iters=40, tol=1e-14)  # 40 iterations, none of them converged


def run(widths, seeds, settings=SETTINGS):
    X, Y = make_data(30, sample_seed=2, dtype=torch.float64)
    model = batched_mlp.init(widths, seeds, 2, dtype=torch.float64)
    return model, lbfgs(model, X, Y, settings)


def test_a_model_does_not_see_its_neighbours():
    # the same padded batch (largest width 9) with other neighbours: bit-identical for the shared models
    model_a, out_a = run([4, 9, 9], [0, 1, 2])
    model_b, out_b = run([4, 9, 6], [0, 1, 7])
    for i in range(2):
        for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
            assert torch.equal(a[i], b[i])
        assert torch.equal(out_a.history[:, i], out_b.history[:, i])
        assert out_a.iterations[i] == out_b.iterations[i]


def test_padding_does_not_change_the_optimization():
    # padding changes the summation order, so compare what the algorithm guarantees: the same
    # number of iterations and the same loss up to rounding amplified over 40 iterations
    _, padded = run([4, 9], [0, 1])
    _, alone = run([4], [0])
    assert padded.iterations[0] == alone.iterations[0] == SETTINGS.max_iters
    assert padded.history[-1, 0].item() == pytest.approx(alone.history[-1, 0].item(), rel=1e-6)


def test_the_loss_never_increases_and_history_ends_at_the_model():
    model, out = run([3, 12], [0, 1])
    X, Y = make_data(30, sample_seed=2, dtype=torch.float64)
    assert torch.all(out.history[1:] <= out.history[:-1])
    final = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    assert torch.allclose(final, out.history[-1], rtol=1e-12)
    assert torch.all(out.history[-1] < 0.5 * out.history[0])


def test_each_stopping_reason():
    # a wide network on 30 points interpolates; a width-1 network stalls; a cap of 5 certifies nothing
    _, out = run([1, 40], [0, 1], LBFGS(tol=1e-6, window=50, max_iters=5000))
    assert out.stop[1] == Stop.INTERPOLATED
    assert out.history[out.iterations[1], 1] < 1e-6 <= out.history[out.iterations[1] - 1, 1]
    assert out.stop[0] in (Stop.STALLED, Stop.NO_DECREASE)
    k = out.iterations[0]
    if out.stop[0] == Stop.STALLED:  # too little decrease over the window, or too slow to reach tol
        before, after = out.history[k - 50, 0].item(), out.history[k, 0].item()
        too_slow = 50 * math.log(after / 1e-6) > 12 * int(k) * math.log(before / after)
        assert after > (1 - 0.01) * before or too_slow
    _, capped = run([40], [1], LBFGS(tol=1e-6, max_iters=5))
    assert capped.stop[0] == Stop.UNCERTIFIED
    assert capped.iterations[0] == 5


def test_a_stopped_model_keeps_its_last_values_in_the_histories():
    # models stop at different iterations: each history runs to the last one, a stopped model's
    # entries stay at its final loss and evaluation count, and those match the model it returns
    model, out = run([1, 3, 40], [0, 1, 2], LBFGS(tol=1e-6, window=50, max_iters=5000))
    assert len(set(out.iterations.tolist())) == 3
    assert len(out.history) == len(out.evaluation_history) == int(out.iterations.max()) + 1
    X, Y = make_data(30, sample_seed=2, dtype=torch.float64)
    final = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    for i, k in enumerate(out.iterations.tolist()):
        assert torch.all(out.history[k:, i] == out.history[k, i])
        assert torch.all(out.evaluation_history[k:, i] == out.evaluations[i])
        assert out.evaluation_history[k - 1, i] < out.evaluations[i]  # it was still evaluated at k
        assert final[i].item() == pytest.approx(out.history[k, i].item(), rel=1e-12)


def test_a_model_already_below_tol_is_untouched():
    model, out = run([6], [0], replace(SETTINGS, tol=10.0))
    fresh = batched_mlp.init([6], [0], 2, dtype=torch.float64)
    assert out.stop[0] == Stop.INTERPOLATED
    assert out.iterations[0] == 0
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_rate_rule_stops_a_creeping_model_earlier():
    # a width-2 network on 30 points cannot interpolate; the rate rule alone stops it before the window rule
    settings = LBFGS(tol=1e-6, window=50, max_iters=5000)
    _, both = run([2], [3], settings)
    _, window_only = run([2], [3], replace(settings, slow_factor=1e300))  # the rate rule never fires
    assert both.stop[0] == window_only.stop[0] == Stop.STALLED
    assert both.iterations[0] < window_only.iterations[0]
    k = int(both.iterations[0])
    torch.testing.assert_close(both.history[: k + 1, 0], window_only.history[: k + 1, 0], rtol=0, atol=0)


def two_loop(
    pairs: list[tuple[torch.Tensor, torch.Tensor]], g: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """The textbook two-loop recursion (Nocedal & Wright, Algorithm 7.4), one model at a time."""
    q, alphas = g.clone(), []
    for s, y in reversed(pairs):
        alphas.append(s @ q / (s @ y))
        q -= alphas[-1] * y
    r = gamma * q
    for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
        r += s * (alpha - y @ r / (s @ y))
    return r


def test_the_compact_memory_multiplies_like_the_two_loop_recursion():
    # steps on a random quadratic per model (gradient A x - c, so y = A s); a pair without positive
    # curvature is skipped; the memory of 4 wraps around twice
    gen = torch.Generator().manual_seed(0)
    n, size, history = 3, 12, 4
    A = torch.randn(n, size, size, generator=gen, dtype=torch.float64)
    A = A @ A.mT + torch.eye(size, dtype=torch.float64)
    g = torch.randn(n, size, generator=gen, dtype=torch.float64)
    memory, pairs = _Memory.empty(g, history), [[] for _ in range(n)]
    for k in range(10):
        s = torch.randn(n, size, generator=gen, dtype=torch.float64)
        y = (A @ s.unsqueeze(2)).squeeze(2)
        keep = torch.tensor([True, k != 3, True])  # model 1 stores an empty pair at k = 3
        g = g + y
        memory = memory.append(s, y, g, keep, (s * y).sum(1), (y * y).sum(1))
        for i in range(n):
            pairs[i] = (pairs[i] + [(s[i], y[i], bool(keep[i]))])[-history:]
        gamma = torch.rand(n, generator=gen, dtype=torch.float64)
        product = memory.inverse_hessian_times(g, gamma)
        for i in range(n):
            kept = [(a, b) for a, b, used in pairs[i] if used]
            torch.testing.assert_close(product[i], two_loop(kept, g[i], gamma[i]), rtol=1e-10, atol=1e-12)
