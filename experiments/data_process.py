"""The built-in data process of both computer assignments (used unless ``settings.toml`` names another).

The course notebook is not available, so the built-in process is defined here, explicitly:

    x ~ N(0, I_d),        y = g(x) + eps,        eps ~ N(0, tau^2 I_d),   tau = noise_std,
    g(x) = W2^T tanh(W1^T x),   W1 in R^{d x H}, W1_ij ~ N(0, 1/d),
                                W2 in R^{H x d}, W2_ij ~ N(0, 1/H),   d = dim = 8,

with the teacher weights W1, W2 drawn once from ``teacher_seed`` and then fixed.  Each
data set (training or test) is an independent sample from ``sample_seed``.  Losses are
MSE averaged over samples *and* the d outputs, so the optimal test error of any
predictor is the noise variance: R_t = E[(y_j - g_j(x))^2] = tau^2 (see
:func:`optimal_test_error`).  The report writes the noise variance tau^2, keeping sigma^2
for the initialization variance of Exercise 3.

torch is imported inside the functions, so that a stage's configuration imports without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DataProcess:
    dim: int = 8  # input and output dimension (R^8 -> R^8)
    teacher_hidden: int = 16  # H: tanh units of g; a smooth, learnable target of variance ~0.46 per output
    # Label noise tau = noise_std, tau^2 = 0.25 ~ half the signal variance: an exact fit of this noise at the interpolation
    # threshold raises the test MSE to several R_t (a clear double-descent peak), while the signal stays
    # learnable (the best widths reach a test MSE well below Var y). Checked with a 16-width pilot sweep.
    noise_std: float = 0.5
    teacher_seed: int = 1234  # the teacher g is fixed by this seed, independent of the samples


def teacher_weights(process: DataProcess) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the fixed teacher weights ``(W1, W2)`` in float64."""
    import torch

    gen = torch.Generator().manual_seed(process.teacher_seed)
    d, h = process.dim, process.teacher_hidden
    W1 = torch.randn(d, h, generator=gen, dtype=torch.float64) / d**0.5  # (8, H)
    W2 = torch.randn(h, d, generator=gen, dtype=torch.float64) / h**0.5  # (H, 8)
    return W1, W2


def teacher(X: torch.Tensor, process: DataProcess) -> torch.Tensor:
    """The noiseless target g(X) for inputs ``X`` of shape (n, dim)."""
    import torch

    W1, W2 = teacher_weights(process)
    return (torch.tanh(X.double() @ W1) @ W2).to(X.dtype)


def make_data(
    n: int, sample_seed: int, process: DataProcess = DataProcess(), dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` samples ``(X, Y)``, each of shape (n, dim), from the process (``dtype`` float32 unless given)."""
    import torch

    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(sample_seed)
    X = torch.randn(n, process.dim, generator=gen, dtype=torch.float64)
    noise = process.noise_std * torch.randn(n, process.dim, generator=gen, dtype=torch.float64)
    Y = teacher(X, process) + noise
    return X.to(dtype), Y.to(dtype)


def optimal_test_error(process: DataProcess) -> float:
    """R_t: the test MSE of the Bayes predictor g itself, i.e. the noise variance tau^2."""
    return process.noise_std**2
