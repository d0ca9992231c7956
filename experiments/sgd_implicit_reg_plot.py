"""Figures of the implicit-regularization stage (computer assignment 2).

Reads the :class:`experiments.sgd_implicit_reg.Results` the compute module saved; the
builder calls ``FIGURES`` and ``context`` (from :mod:`experiments.sgd_implicit_reg_stats`)
and fills ``templates/sections/sgd_implicit_reg.tex.j2``.
"""

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from experiments.sgd_implicit_reg import Results
from experiments.sgd_implicit_reg_stats import (
    context,
    converged,
    geo_mean_factor,
    implicit_best,
    mean_se,
    usable,
)
from report.figures import figsize, sequential

__all__ = ["FIGURES", "context"]

G_LABEL = r"$G=\|\nabla J\|^2$"
V_LABEL = r"$V$"


def _sci(x: float, _position: int) -> str:
    """Tick label m x 10^e in mathtext, e.g. 2e-05 -> $2\\times10^{-5}$."""
    exponent = int(np.floor(np.log10(x) + 1e-9))
    return rf"${x / 10**exponent:.0f}\times10^{{{exponent}}}$"


def _mu_label(mu: float) -> str:
    return rf"$\mu = {mu:g}$"


def _geo_errorbar(ax, x: np.ndarray, values: list[np.ndarray], **kwargs) -> None:
    """Geometric means of ``values`` (one array per x) with one-standard-error bars of the logarithm."""
    gm, factor = np.array([geo_mean_factor(v) for v in values]).reshape(-1, 2).T
    ax.errorbar(x, gm, yerr=[gm - gm / factor, gm * factor - gm], capsize=3, **kwargs)


def _mu_axis(ax, mus: np.ndarray) -> None:
    ax.set_xscale("log")
    ax.set_xticks(mus, [f"{m:g}" for m in mus])
    ax.minorticks_off()


# --- figures -----------------------------------------------------------------------------


def plot_convergence(results: Results) -> Figure:
    """Training MSE against epochs for every μ and run (log-log), with the target loss."""
    fig, ax = plt.subplots(figsize=figsize(3.6), layout="constrained")
    epochs = results.epochs[1:]
    colours = sequential(len(results.config.lrs))
    for mu, colour, runs in zip(results.config.lrs, colours, results.history, strict=True):
        for r, history in enumerate(runs):
            ax.plot(
                epochs, history[1:], color=colour, lw=0.8, alpha=0.8, label=_mu_label(mu) if r == 0 else None
            )
    ax.axhline(results.config.target_loss, color="k", ls="--", lw=0.8, label="target")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="training MSE")
    ax.legend(ncols=2, fontsize=8, loc="lower left")
    return fig


def plot_grad_norms(results: Results) -> Figure:
    """G and V against μ where each run first crosses each loss level (left, middle), and
    G/J, V/J at the end (right): geometric means over runs with one-standard-error bars."""
    fig, axes = plt.subplots(1, 3, figsize=figsize(2.9), layout="constrained")
    mus_all = np.array(results.config.lrs)
    levels = results.config.loss_levels
    for k, (level, colour) in enumerate(zip(levels, sequential(len(levels)), strict=True)):
        reached = np.isfinite(results.level_epoch[..., k])
        rows = np.flatnonzero(usable(reached))
        for ax, values in zip(axes[:2], (results.level_grad_norm, results.level_grad_var), strict=True):
            if len(rows):
                _geo_errorbar(ax, mus_all[rows], [values[j, reached[j], k] for j in rows], marker="o", ms=3,
                              color=colour, label=f"$J = {level:g}$")  # fmt: skip
    ok = converged(results)
    rows = np.flatnonzero(usable(ok))
    for values, marker, colour, label in [
        (results.grad_norm, "o", "C0", "$G/J$"),
        (results.grad_var, "s", "C1", "$V/J$"),
    ]:
        ratio = values / results.train_loss
        _geo_errorbar(axes[2], mus_all[rows], [ratio[j][ok[j]] for j in rows], marker=marker, ms=3, color=colour,
                      label=label)  # fmt: skip
    for ax, title in zip(axes, ("$G$ at loss $J$", "$V$ at loss $J$", "at the end"), strict=True):
        ax.set_yscale("log")
        _mu_axis(
            ax, (mus_all[rows] if ax is axes[2] else mus_all)[::2]
        )  # every other μ: labels do not collide
        ax.set(xlabel=r"$\mu$", title=title)
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    return fig


def plot_test_vs_grad(results: Results) -> Figure:
    """Test MSE against final G (left) and V (right), one colour per μ."""
    fig, axes = plt.subplots(1, 2, figsize=figsize(3.2), sharey=True, layout="constrained")
    ok = converged(results)
    colours = sequential(len(results.config.lrs))
    for ax, values, label in zip(
        axes, (results.grad_norm, results.grad_var), (G_LABEL, V_LABEL), strict=True
    ):
        for j in np.flatnonzero(usable(ok)):
            x, y = values[j][ok[j]], results.test_loss[j][ok[j]]
            ax.scatter(x, y, s=10, color=colours[j], alpha=0.4, lw=0)
            gm, factor = geo_mean_factor(x)
            mean, se = mean_se(y)
            ax.errorbar(gm, mean, xerr=[[gm - gm / factor], [gm * factor - gm]], yerr=se, marker="o",
                        color=colours[j], capsize=2, label=_mu_label(results.config.lrs[j]) if ax is axes[0] else None)  # fmt: skip
        ax.set(xscale="log", xlabel=f"final {label}")
        # The data span one or two decades: label a few mantissas instead of (colliding) minor ticks.
        decades = np.log10(np.nanmax(values[ok]) / np.nanmin(values[ok]))
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 1 else (1.0, 3.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(_sci))
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("test MSE")
    fig.legend(loc="outside right center", fontsize=8)
    return fig


def plot_weight_decay(results: Results) -> Figure:
    """Test MSE against μ for each λ (one panel per B), beside the no-weight-decay result of (b)."""
    c = results.config
    fig, axes = plt.subplots(1, len(c.wd_batch_sizes), figsize=figsize(3.0), sharey=True, layout="constrained",
                             squeeze=False)  # fmt: skip
    best = implicit_best(results, results.val_loss)
    mean, se = mean_se(results.test_loss[best], converged(results)[best])
    for i, (ax, batch_size) in enumerate(zip(axes[0], c.wd_batch_sizes, strict=True)):
        for m, (lam, colour) in enumerate(zip(c.wd_lambdas, sequential(len(c.wd_lambdas)), strict=True)):
            stats = np.array([mean_se(results.wd_test_loss[i, k, m]) for k in range(len(c.wd_lrs))])
            ax.errorbar(c.wd_lrs, stats[:, 0], yerr=stats[:, 1], marker="o", ms=3, capsize=2, color=colour,
                        label=rf"$\lambda = {lam:g}$" if i == 0 else None)  # fmt: skip
        ax.axhspan(mean - se, mean + se, color="0.85")
        ax.axhline(
            mean,
            color="k",
            ls="--",
            lw=0.8,
            label=f"(b): $\\mu = {c.lrs[best]:g}$, to target" if i == 0 else None,
        )
        _mu_axis(ax, np.array(c.wd_lrs))
        ax.set(xlabel=r"$\mu$", title=f"$B = {batch_size}$")
        ax.title.set_fontsize(9)
    axes[0, 0].set_ylabel("test MSE")
    fig.legend(loc="outside right center", fontsize=8)
    return fig


FIGURES: dict[str, Callable[[Results], Figure]] = {
    "sgd_convergence": plot_convergence,
    "sgd_grad_norms": plot_grad_norms,
    "sgd_test_vs_grad": plot_test_vs_grad,
    "sgd_weight_decay": plot_weight_decay,
}
