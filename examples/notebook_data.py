"""An example data source for ``settings.toml``: ``[data] source = "examples/notebook_data.py:draw"``.

Replace the body of :func:`draw` with the course notebook's data generation.  The contract:
``draw(n, seed)`` returns ``(X, Y, noise_variance)``, where ``X`` and ``Y`` are arrays of shape
(n, d) (NumPy or PyTorch, real numbers), the same for the same seed and new for a new seed, and
``noise_variance`` is the variance of the label noise added to each output, so that the report
derives R_t = noise_variance instead of estimating it.
"""

import numpy as np

DIM = 8  # g: R^8 -> R^8, as in the assignment
NOISE_STD = 0.3
MIXING = np.random.default_rng(2024).standard_normal((DIM, DIM)) / np.sqrt(DIM)  # fixed, like a teacher


def draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``n`` samples of y = sin(A^T x) + eps, x uniform on [-2, 2]^8, eps ~ N(0, 0.3^2 I)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n, DIM))
    Y = np.sin(X @ MIXING) + NOISE_STD * rng.standard_normal((n, DIM))
    return X, Y, NOISE_STD**2
