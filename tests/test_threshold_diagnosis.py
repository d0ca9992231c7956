"""The stall-point diagnosis: Jacobian, units, predicted rank, Levenberg-Marquardt (numpy, float64)."""

import numpy as np
import pytest

from experiments import threshold_diagnosis as td

D = 8


def balanced(width: int, n: int, seed: int, dead: tuple[int, int] = (0, 0)) -> tuple[td.Network, np.ndarray]:
    """A random network whose first ``dead`` units per layer are dead on its ``n`` inputs, every other unit
    active on about half of them (bias = minus the median pre-activation)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    shapes = [(width, D), (width, width), (D, width)]
    W = [rng.standard_normal(s) / s[1] ** 0.5 for s in shapes]
    b, h = [], X
    for layer, k in enumerate(dead):
        z = h @ W[layer].T
        bias = -np.median(z, axis=0)
        W[layer][:k], bias[:k] = 0.0, -1.0  # zero on every input
        b.append(bias)
        h = np.maximum(z + bias, 0)
    net = td.Network(W[0], b[0], W[1], b[1], W[2], rng.standard_normal(D))
    return net, X


def test_jacobian_matches_central_differences():
    net, X = balanced(5, 8, seed=1)  # an even sample: no pre-activation sits on its median, at the kink
    theta = net.flatten()
    J = td.jacobian(net, X)
    eps = 1e-6
    for k in np.random.default_rng(0).choice(theta.size, 20, replace=False):
        e = np.zeros_like(theta)
        e[k] = eps
        plus, minus = (td.Network.unflatten(theta + s * e, 5, D)(X).ravel() for s in (1, -1))
        np.testing.assert_allclose(J[:, k], (plus - minus) / (2 * eps), atol=1e-7)


@pytest.mark.parametrize("dead", [(0, 0), (2, 0), (0, 3), (2, 1)])
def test_a_network_with_dead_units_has_the_rank_they_predict(dead):
    # M = 10: P_eff = 268 < d N = 800, so the dead units, not the equations, set the rank
    net, X = balanced(10, 100, seed=2, dead=dead)
    Y = np.zeros((100, D))
    diagnosis = td.diagnose(net.flatten(), 10, 0, X, Y)
    assert diagnosis.dead == dead
    assert diagnosis.rank == diagnosis.predicted == td.effective_count(10 - dead[0], 10 - dead[1], D)
    assert diagnosis.gap > 3


def test_the_rank_check_fails_when_a_rank_is_off_the_prediction():
    net, X = balanced(10, 100, seed=3, dead=(2, 1))
    right = td.diagnose(net.flatten(), 10, 0, X, np.zeros((100, D)))
    assert td.rank_check([right]).passed
    # the same network read as if more units were dead: the bound then says 169, the rank is 216
    wrong = td.Diagnosis(**{**right.__dict__, "predicted": td.predicted_rank(10, (3, 3), 100, D)})
    check = td.rank_check([right, wrong])
    assert not check.passed and check.error == 1


def test_levenberg_marquardt_lowers_the_loss_off_a_minimum_and_nothing_at_one():
    net, X = balanced(30, 50, seed=4)  # P_eff = 1502 > d N = 400: interpolation is possible
    Y = np.random.default_rng(5).standard_normal((50, D))
    start = td.mse(net, X, Y)
    assert td.levenberg_marquardt(net, X, Y, scale=1.0) < 0.5 * start
    fitted = td.Network(net.W1, net.b1, net.W2, net.b2, net.W3, net.b3)
    assert td.levenberg_marquardt(fitted, X, net(X), scale=1.0) == 0.0


def test_singular_values_from_the_gram_matrix_agree_with_the_svd_and_fall_back_to_it_when_rank_is_short():
    import scipy.linalg

    rng = np.random.default_rng(6)
    full = rng.standard_normal((40, 60))
    np.testing.assert_allclose(td.singular_values(full), scipy.linalg.svdvals(full), rtol=1e-10)
    short = full.copy()
    short[-1] = short[0] + short[1]  # rank 39: the Gram matrix cannot show it, the SVD must
    s = td.singular_values(short)
    assert td.spectrum_rank(s)[0] == 39 and s[-1] < 1e-12 * s[0]


def test_saved_diagnoses_load_as_they_were_and_carry_the_rank_claim(tmp_path):
    net, X = balanced(10, 100, seed=3, dead=(2, 1))
    wide, Z = balanced(30, 50, seed=4)  # full row rank: nothing cut, an infinite gap
    diagnoses = [
        td.diagnose(net.flatten(), 10, 0, X, np.zeros((100, D))),
        td.diagnose(wide.flatten(), 30, 1, Z, np.zeros((50, D))),
    ]
    assert diagnoses[1].gap == float("inf")
    td.save(diagnoses, tmp_path)
    assert td.load(tmp_path) == diagnoses  # tuples stay tuples, an infinite gap stays infinite
    [claim] = td.check(td.load(tmp_path))
    assert claim == td.rank_check(diagnoses) and claim.passed


def test_the_relative_gradient_vanishes_only_where_the_residual_leaves_the_range_of_j():
    # M = 10, N = 100: J is 800 x 340 of rank 268, so residuals orthogonal to its range exist
    net, X = balanced(10, 100, seed=4)
    J = td.jacobian(net, X)
    z = np.random.default_rng(5).standard_normal(J.shape[0])
    basis, _ = np.linalg.qr(J)
    outside = z - basis @ (basis.T @ z)  # orthogonal to every column of J: a stationary point
    at_rest = td.diagnose(net.flatten(), 10, 0, X, net(X) - outside.reshape(100, D))
    moving = td.diagnose(net.flatten(), 10, 0, X, net(X) - z.reshape(100, D))
    assert at_rest.stationary and at_rest.gradient < 1e-12
    assert not moving.stationary and moving.gradient > 1e-3
