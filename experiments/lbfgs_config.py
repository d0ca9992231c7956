"""The settings and stop reasons of :func:`experiments.optimizers.lbfgs`, without torch.

They live apart from the optimizer so that the double-descent configuration, which holds an
:class:`LBFGS`, and the figures, which read :class:`Stop`, import without torch (listing the
report's tasks imports every configuration).  The stopping rule is explained in
:mod:`experiments.optimizers`.
"""

import enum
from dataclasses import dataclass

from lab import fields


class Stop(enum.IntEnum):
    """Why a model stopped."""

    INTERPOLATED = 0  # training MSE below tol
    STALLED = 1  # decrease over the last window iterations below min_decrease, or too slow to reach tol
    NO_DECREASE = 2  # the line search found no decrease
    UNCERTIFIED = 3  # hit max_iters while still decreasing


@dataclass(frozen=True)
class LBFGS:
    """Settings of :func:`lbfgs` (see the module docstring for the stopping rule)."""

    tol: float = 1e-8  # interpolating: training MSE below this
    window: int = 500  # a stall: the MSE fell by less than min_decrease over this many iterations ...
    min_decrease: float = 0.01
    slow_factor: float = 20.0  # ... or at that rate would need over this many times its iterations so far
    history: int = 20  # curvature pairs kept per model
    first_step: float = 1e-3  # length scale of the first step (initial inverse-Hessian scale)
    armijo: float = 1e-4  # sufficient-decrease constant of the line search
    halvings: int = 40  # line-search step halvings before declaring no decrease
    max_iters: int = 100_000  # budget: models still decreasing here are reported (and drawn) as uncertified

    def __post_init__(self) -> None:
        fields.real(self, "tol", "first_step", "slow_factor", above=0)
        fields.real(self, "min_decrease", "armijo", above=0, below=1)
        fields.whole(self, "window", "history", "halvings", "max_iters", least=1)
