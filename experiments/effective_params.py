"""Parameter counts of a fully connected ReLU network and the widths where they match 8N equations.

A network d -> M -> ... -> M -> d with K hidden layers of width M has

    P(M) = (d + 1) M + (K - 1)(M + 1) M + (M + 1) d

weights and biases.  ReLU is positively homogeneous, relu(c z) = c relu(z) for c > 0, so scaling
a hidden unit's incoming weights and bias by c and its outgoing weights by 1/c leaves the
function unchanged: each of the K M hidden units removes one direction, and the function class
has (generically) dimension P_eff(M) = P(M) - K M.  Interpolating N noisy targets in R^d means
solving d N equations, which needs P_eff(M) >= d N; SymPy solves P(M) = d N and P_eff(M) = d N
exactly.  :mod:`experiments.jacobian_rank` checks P_eff numerically.
"""

import itertools
from dataclasses import dataclass

import sympy as sp

M = sp.Symbol("M", positive=True)


def param_count(hidden_layers: int, dim: int) -> sp.Expr:
    """P(M): weights and biases of dim -> M (x hidden_layers) -> dim, expanded in M."""
    sizes = [dim, *[M] * hidden_layers, dim]
    return sp.expand(sum((a + 1) * b for a, b in itertools.pairwise(sizes)))


def effective_count(hidden_layers: int, dim: int) -> sp.Expr:
    """P_eff(M) = P(M) - K M: one rescaling direction per hidden unit removed."""
    return sp.expand(param_count(hidden_layers, dim) - hidden_layers * M)


def width_for(count: sp.Expr, target: sp.Expr | int) -> sp.Expr:
    """The branch M(target) of ``count(M) = target`` that is positive: exact, ``target`` a number or a symbol.

    A count is increasing in M > 0, so exactly one root passes through M = 1 at target = count(1).
    """
    roots = sp.solve(sp.Eq(count, target), M)
    if isinstance(target, sp.Symbol):
        (root,) = [r for r in roots if sp.simplify(r.subs(target, count.subs(M, 1))) == 1]
    else:
        (root,) = [r for r in roots if r.is_positive]
    return sp.radsimp(root)


@dataclass(frozen=True)
class Prediction:
    """Where a count of ``n`` samples' d N equations puts the interpolation threshold."""

    root: sp.Expr  # exact real width where the count equals d N
    width: int  # the smallest integer width with count >= d N

    @property
    def value(self) -> float:
        return float(self.root)


def predict(count: sp.Expr, equations: int) -> Prediction:
    """The exact root of ``count = equations`` and the first integer width at or above it."""
    root = width_for(count, equations)
    return Prediction(root=root, width=int(sp.ceiling(root)))


def inverse(count: sp.Expr):
    """M as a NumPy function of the count p (the positive branch), for a secondary axis."""
    p = sp.Symbol("p", positive=True)
    return sp.lambdify(p, width_for(count, p), "numpy")


def as_function(count: sp.Expr):
    """The count as a NumPy function of M, for a secondary axis."""
    return sp.lambdify(M, count, "numpy")
