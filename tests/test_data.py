"""The data-generating process and its optimal test error R_t."""

import pytest
import torch

from experiments.data import DataProcess, make_data, optimal_test_error, teacher


def test_shapes_and_determinism():
    X, Y = make_data(50, sample_seed=3)
    assert X.shape == Y.shape == (50, 8)
    X2, Y2 = make_data(50, sample_seed=3)
    assert torch.equal(X, X2)
    assert torch.equal(Y, Y2)
    X3, _ = make_data(50, sample_seed=4)
    assert not torch.allclose(X, X3)


def test_teacher_is_fixed_by_its_seed_not_by_the_sample():
    X = torch.randn(20, 8, dtype=torch.float64)
    p = DataProcess()
    assert torch.equal(teacher(X, p), teacher(X, p))
    assert not torch.allclose(teacher(X, p), teacher(X, DataProcess(teacher_seed=p.teacher_seed + 1)))


def test_inputs_are_standard_normal():
    X, _ = make_data(40_000, sample_seed=5, dtype=torch.float64)
    assert X.mean(0).abs().max() < 0.03  # 5 standard errors at n = 40000
    assert torch.allclose(torch.cov(X.T), torch.eye(8, dtype=torch.float64), atol=0.04)


def test_optimal_test_error_is_noise_variance_and_matches_the_true_g():
    p = DataProcess()
    assert optimal_test_error(p) == pytest.approx(p.noise_std**2)
    n = 40_000
    X, Y = make_data(n, sample_seed=6, process=p, dtype=torch.float64)
    empirical = ((Y - teacher(X, p)) ** 2).mean().item()
    # the mean of 8n squared Gaussians has relative standard deviation sqrt(2 / (8n))
    assert empirical == pytest.approx(optimal_test_error(p), rel=5 * (2 / (8 * n)) ** 0.5)


def test_any_other_predictor_is_worse_than_g():
    p = DataProcess()
    X, Y = make_data(20_000, sample_seed=7, process=p, dtype=torch.float64)
    g = teacher(X, p)
    assert ((Y - 1.1 * g) ** 2).mean() > ((Y - g) ** 2).mean()
    assert ((Y - Y.mean(0)) ** 2).mean() > ((Y - g) ** 2).mean() + 0.1  # the signal is learnable
