"""Figures of the implicit-regularization stage (computer assignment 2).

The stage's present module: ``FIGURES`` (here) and ``context`` (the statistics and verdicts that
the templates turn into words, from :mod:`experiments.sgd_implicit_reg_stats`), both reading the
:class:`experiments.sgd_implicit_reg.Results` the compute module saved.  matplotlib is imported by
the functions that draw, so listing the figures imports none of it.  ``sgd_convergence``,
``sgd_grad_norms`` and ``sgd_test_vs_grad`` go into the submission; ``sgd_convergence_runs``,
``sgd_final_grads`` and ``sgd_weight_decay`` into its supplement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from experiments.sgd_implicit_reg import Results
from experiments.sgd_implicit_reg_stats import (
    BAND_SPREAD,
    context,
    converged,
    final,
    implicit_best,
    level_values,
    target_epoch,
    usable,
)
from lab.fmt import decade, power_of_ten
from lab.stats import geo_mean_factor

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "context"]

G_LABEL = r"$G=\Vert\nabla J\Vert^{2}$"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one per μ or level: neighbours differ in grey print too
LINESTYLES = ("-", "--", ":", "-.")  # one per μ or loss level, beside its marker
# One colour per μ in every figure of the stage: plasma from dark violet to orange, so its shades differ in lightness
# (grey print) as well as in hue; its yellow end (above MU_CMAP_END) is too faint on paper.
MU_CMAP, MU_CMAP_END = "plasma", 0.78
LEVEL_GREYS = ("k", "0.35", "0.6")  # the loss levels: greys, so that no level is mistaken for a μ


def _marker(j: int) -> str:
    return MARKERS[j % len(MARKERS)]


def mu_colours(lrs: tuple[float, ...] | list[float]) -> dict[float, tuple[float, ...]]:
    """The colour of each μ of (b), the same in every figure (those of (d) included)."""
    import matplotlib.pyplot as plt

    return {
        mu: tuple(plt.get_cmap(MU_CMAP)(x))
        for mu, x in zip(lrs, np.linspace(0, MU_CMAP_END, len(lrs)), strict=True)
    }


def mu_style(lrs: tuple[float, ...] | list[float], mu: float) -> dict:
    """Colour, marker and line style of ``mu`` (one of (b)'s ``lrs``, or else the style of the nearest), the same in
    every figure: neighbouring μ differ in marker and line style too, so they separate in grey print."""
    j = int(np.argmin(np.abs(np.log(np.asarray(lrs)) - np.log(mu))))
    return {"color": mu_colours(lrs)[lrs[j]], "marker": _marker(j), "ls": LINESTYLES[j % len(LINESTYLES)]}


def power_label(x: float) -> str:
    """A positive number in mathtext as m x 10^e, e.g. 1e-05 -> $10^{-5}$, 2e-05 -> $2\\times10^{-5}$."""
    return f"{round(x, 1):g}" if decade(x) == 0 else f"${power_of_ten(x, digits=1)}$"


def _log_ticks(ax: Axes, axis: str = "y") -> None:
    """Log-axis ticks labelled m x 10^e, with mantissas 1, 2, 5 (or 1, 3) when the data span few decades
    (one step sparser on x, whose labels are wider than the room between ticks)."""
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = np.log10(hi / lo) * (1 if axis == "y" else 2)
    subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0, 3.0) if decades < 3 else (1.0,)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(subs=subs))
    target.set_major_formatter(FuncFormatter(lambda x, _pos: power_label(x)))
    target.set_minor_formatter(NullFormatter())


def _mu_label(mu: float) -> str:
    return rf"$\mu = {mu:g}$"


def _geo_errorbar(ax: Axes, x: np.ndarray, values: list[np.ndarray], **kwargs) -> None:
    """Geometric means of ``values`` (one array per x) with one-standard-error bars of the logarithm."""
    gm, factor = np.array([geo_mean_factor(v) for v in values]).reshape(-1, 2).T
    ax.errorbar(x, gm, yerr=[gm - gm / factor, gm * factor - gm], **{"capsize": 3, **kwargs})


def _mu_axis(ax: Axes, mus: np.ndarray) -> None:
    ax.set_xscale("log")
    ax.set_xticks(mus, [f"{m:g}" for m in mus], rotation=40, ha="right", rotation_mode="anchor")
    ax.minorticks_off()
    ax.set_xlabel(r"learning rate $\mu$")


# --- figures -----------------------------------------------------------------------------


def _held(history: np.ndarray) -> np.ndarray:
    """(n_runs, n_checks) training MSE with each run's last recorded value carried past its stop."""
    out = history.copy()
    for run in out:
        seen = np.flatnonzero(np.isfinite(run))
        if len(seen):
            run[seen[-1] + 1 :] = run[seen[-1]]
    return out


def until_target(history: np.ndarray, epochs: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """(n_runs, n_checks) training MSE of each run up to its first check below the target (epoch ``reach``, NaN
    where never) and held at that value after, the end of (b)'s training; a run that never reached it is held at
    its last value.  The window a converged run trains on after the crossing is left out: there SGD noise lifts
    the loss above the target again.

    >>> until_target(np.array([[1.0, 0.1, 0.3], [1.0, 0.5, np.nan]]), np.array([0, 10, 20]), np.array([10.0, np.nan]))
    array([[1. , 0.1, 0.1],
           [1. , 0.5, 0.5]])
    """
    out = history.copy()
    for run, epoch in zip(out, reach, strict=True):
        if np.isfinite(epoch):
            run[np.searchsorted(epochs, epoch) + 1 :] = np.nan
    return _held(out)


def _last_index(history: np.ndarray, epochs: np.ndarray, reach: np.ndarray) -> int:
    """The last check any run of ``history`` trains to in (b): its crossing of the target, or else its last record."""
    last = [np.searchsorted(epochs, e) if np.isfinite(e) else np.flatnonzero(np.isfinite(h)).max()
            for h, e in zip(history, reach, strict=True)]  # fmt: skip
    return int(max(last))


def _log_marks(epochs: np.ndarray, offset: int, n: int = 7) -> list[int]:
    """Indices of ``n`` checks evenly spaced in log epoch (shifted by ``offset`` sixths of a step, so that the
    markers of neighbouring curves do not sit on one another)."""
    logs = np.log(epochs)
    step = (logs[-1] - logs[0]) / n
    points = logs[0] + step * (np.arange(n) + (offset % 6) / 6)
    return sorted({int(i) for i in np.clip(np.searchsorted(logs, points), 0, len(epochs) - 1)})


def plot_convergence(results: Results) -> Figure:
    """Training MSE against epochs (log-log) of every μ where some run converged, in one plot: the median over
    runs, each run taken up to its first check below the target (:func:`until_target`), with a light band from the
    first to the third quartile where the quartiles lie within a factor ``BAND_SPREAD`` of each other, one colour,
    marker and line style per μ (:func:`mu_style`); the target loss dotted."""
    import matplotlib.pyplot as plt

    from lab.style import figsize

    fig, ax = plt.subplots(figsize=figsize(2.2), layout="constrained")
    epochs = results.epochs[1:]
    ok = converged(results)
    reach = target_epoch(results)
    for j, mu in enumerate(results.config.lrs):
        if not ok[j].any():
            continue
        style = mu_style(results.config.lrs, mu)
        history = until_target(results.history[j][:, 1:], epochs, reach[j])
        end = _last_index(results.history[j][:, 1:], epochs, reach[j]) + 1
        q1, median, q3 = np.quantile(history[:, :end], [0.25, 0.5, 0.75], axis=0)
        narrow = q3 <= BAND_SPREAD * q1  # a wider band would cover the other rates' curves
        ax.fill_between(epochs[:end], q1, q3, where=narrow, color=style["color"], alpha=0.15, lw=0)
        ax.plot(epochs[:end], median, lw=1.2, ms=4, markevery=_log_marks(epochs[:end], offset=j), mfc="white", **style,
                label=f"{_mu_label(mu)} ({ok[j].sum()}/{ok.shape[1]})")  # fmt: skip
    ax.axhline(results.config.stopping.target_loss, color="k", ls=":", lw=1.0, label="target")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="training MSE")
    fig.legend(loc="outside right center", fontsize=8, title=r"$\mu$ (converged/runs)", title_fontsize=8)
    return fig


def plot_convergence_runs(results: Results) -> Figure:
    """Training MSE against epochs (log-log), one panel per μ (shared axes): every run as a thin grey
    line, the converged ones dark, with the target loss dotted; the panel title counts the converged."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from lab.style import figsize

    lrs = results.config.lrs
    n_cols = (len(lrs) + 1) // 2
    fig, axes = plt.subplots(2, n_cols, figsize=figsize(3.6), sharex=True, sharey=True, layout="constrained",
                             squeeze=False)  # fmt: skip
    epochs, ok = results.epochs[1:], converged(results)
    for j, (ax, mu, runs) in enumerate(zip(axes.flat, lrs, results.history, strict=False)):
        for r, history in enumerate(runs):
            ax.plot(epochs, history[1:], color="k" if ok[j, r] else "0.6", lw=0.8 if ok[j, r] else 0.6)
        ax.axhline(results.config.stopping.target_loss, color="C3", ls=":", lw=1.2)
        ax.set(xscale="log", yscale="log")
        ax.set_title(f"{_mu_label(mu)}: {ok[j].sum()}/{ok.shape[1]} conv.", fontsize=8)
    for ax in axes.flat[len(lrs) :]:
        ax.set_visible(False)
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel("training MSE", fontsize=9)
    handles = [Line2D([], [], color="k", lw=1.5), Line2D([], [], color="0.6", lw=1.5),
               Line2D([], [], color="C3", ls=":", lw=1.5)]  # fmt: skip
    fig.legend(
        handles, ["converged run", "other run", "target"], loc="outside upper center", ncols=3, fontsize=8
    )
    return fig


def plot_grad_norms(results: Results) -> Figure:
    """G (left) and V (right) against the usable μ at each loss level (window means of the converged runs):
    geometric means over runs with one-standard-error bars, one grey, marker and line style per level; on the right,
    open markers without lines: V_fix of the assignment's fixed partition, beside its V."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from lab.style import figsize

    fig, axes = plt.subplots(1, 2, figsize=figsize(1.75), layout="constrained")
    ok = converged(results)
    rows = np.flatnonzero(usable(ok))
    mus = np.array(results.config.lrs)[rows]
    at = level_values(results)
    levels = results.config.loss_levels
    for k, level in enumerate(levels):
        style = {"marker": _marker(k), "color": LEVEL_GREYS[k % len(LEVEL_GREYS)]}
        for ax, key in zip(axes, ("G", "V"), strict=True):
            if len(rows):
                _geo_errorbar(ax, mus, [at[key][j, ok[j], k] for j in rows], ms=3.5, **style,
                              ls=LINESTYLES[k % len(LINESTYLES)], label=f"$J = ${power_label(level)}")  # fmt: skip
        if len(rows):
            _geo_errorbar(axes[1], mus * 1.08, [at["Vf"][j, ok[j], k] for j in rows], ms=3.5, mfc="white", ls="none",
                          elinewidth=0.6, **style)  # fmt: skip
    for ax, name, title in zip(axes, ("G", r"V,\ V_{\mathrm{fix}}"), ("gradient norm $G$", "mini-batch variation"),
                               strict=True):  # fmt: skip
        ax.set_yscale("log")
        _log_ticks(ax)
        _mu_axis(ax, mus)
        ax.set_ylabel(f"${name}$ at training loss $J$")
        ax.set_title(title, fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    keys = [
        Line2D([], [], color="0.3", marker="o"),
        Line2D([], [], color="0.3", marker="o", mfc="white", ls="none"),
    ]
    fig.legend([*handles, *keys], [*labels, "$V$", r"$V_{\mathrm{fix}}$"], loc="outside right center")
    return fig


def plot_final_grads(results: Results) -> Figure:
    """Final G and V (window at the target) of the converged runs against μ (left), and G/J, V/J (right)."""
    import matplotlib.pyplot as plt

    from lab.style import figsize

    fig, axes = plt.subplots(1, 2, figsize=figsize(2.9), layout="constrained")
    mus_all = np.array(results.config.lrs)
    ok = converged(results)
    rows = np.flatnonzero(usable(ok))
    end = final(results)
    for key, marker, colour in [("G", "o", "C0"), ("V", "s", "C1")]:
        for ax, scale, label in [(axes[0], 1.0, f"${key}$"), (axes[1], end["J"], f"${key}/J$")]:
            ratio = end[key] / scale
            _geo_errorbar(ax, mus_all[rows], [ratio[j][ok[j]] for j in rows], marker=marker, ms=3, color=colour,
                          label=label)  # fmt: skip
    for ax, ylabel, title in zip(
        axes, ("final $G$, $V$", "final $G/J$, $V/J$"), ("at the end", "at the end, per unit of training loss"),
        strict=True,
    ):  # fmt: skip
        ax.set_yscale("log")
        _log_ticks(ax)
        _mu_axis(ax, mus_all[rows])
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend()
    return fig


def plot_test_vs_grad(results: Results) -> Figure:
    """Test MSE against final G (left) and V (right) of the converged runs, one colour and marker per μ
    (:func:`mu_style`); large symbols: geometric means per μ, bars one standard error of the logarithm."""
    import matplotlib.pyplot as plt

    from lab.style import figsize

    fig, axes = plt.subplots(1, 2, figsize=figsize(2.05), sharey=True, layout="constrained")
    ok = converged(results)
    rows = np.flatnonzero(usable(converged(results)))
    lrs = results.config.lrs
    end = final(results)
    for ax, key, label in zip(axes, ("G", "V"), (G_LABEL, "$V$"), strict=True):
        for j in rows:
            style = mu_style(lrs, lrs[j])
            x, y = end[key][j][ok[j]], results.test_loss[j][ok[j]]
            ax.scatter(x, y, s=9, color=style["color"], marker=style["marker"], alpha=0.45, lw=0)
            gm, factor = geo_mean_factor(x)
            gy, fy = geo_mean_factor(y)
            ax.errorbar(gm, gy, xerr=[[gm - gm / factor], [gm * factor - gm]], yerr=[[gy - gy / fy], [gy * fy - gy]],
                        marker=style["marker"], ms=5, mec="k", mew=0.6, color=style["color"], capsize=2,
                        label=_mu_label(lrs[j]) if ax is axes[0] else None)  # fmt: skip
        ax.set(xscale="log", xlabel=f"final {label}")
        _log_ticks(ax, "x")
    axes[0].set_ylabel("test MSE")
    fig.legend(loc="outside right center")
    return fig


def plot_weight_decay(results: Results) -> Figure:
    """Test MSE against the λ grid (evenly spaced categories labelled with their values) for each μ,
    one panel per B, geometric means with one-standard-error bars of the logarithm (as the supplement's table); open
    markers: λ = 0 early-stopped; band: the validation-selected μ of (b) without weight decay, to the target."""
    import matplotlib.pyplot as plt
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D

    from lab.style import figsize

    c = results.config
    fig, axes = plt.subplots(1, len(c.wd_batch_sizes), figsize=figsize(2.9), sharey=True, layout="constrained",
                             squeeze=False)  # fmt: skip
    best = implicit_best(results, results.val_loss)
    gm, factor = geo_mean_factor(results.test_loss[best][converged(results)[best]])
    x = np.arange(len(c.wd_lambdas))
    zero = c.wd_lambdas.index(0.0)
    styles = [mu_style(c.lrs, mu) for mu in c.wd_lrs]
    early = tuple(
        Line2D([], [], color=style["color"], marker=style["marker"], mfc="white", ls="none")
        for style in styles
    )  # the legend key of the early-stopped models: one open symbol per μ
    for i, (ax, batch_size) in enumerate(zip(axes[0], c.wd_batch_sizes, strict=True)):
        ax.axhspan(gm / factor, gm * factor, color="0.85")
        ax.axhline(gm, color="k", ls="--", lw=0.8, label=f"(b): $\\mu = {c.lrs[best]:g}$, $\\lambda=0$")
        for k, (mu, style) in enumerate(zip(c.wd_lrs, styles, strict=True)):
            _geo_errorbar(
                ax, x, list(results.wd_test_loss[i, k]), ms=3.5, capsize=2, label=_mu_label(mu), **style
            )
            _geo_errorbar(ax, np.array([x[zero] + 0.15 * (k + 1)]), [results.wd_es_test_loss[i, k, zero]], ms=4,
                          mfc="white", capsize=2, color=style["color"], marker=style["marker"])  # fmt: skip
        ax.set_xticks(x, [power_label(lam) if lam else "0" for lam in c.wd_lambdas], rotation=30, ha="right",
                      rotation_mode="anchor")  # fmt: skip
        ax.set_title(f"$B = {batch_size}$", fontsize=9)
    fig.supxlabel(r"weight decay $\lambda$ (grid values, evenly spaced, not to scale)", fontsize=9)
    axes[0, 0].set_ylabel("test MSE")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend([*handles, early], [*labels, r"$\lambda=0$, early-stopped"], loc="outside right center",
               handler_map={tuple: HandlerTuple(ndivide=None)})  # fmt: skip
    return fig


FIGURES: dict[str, Callable[[Results], Figure]] = {
    "sgd_convergence": plot_convergence,
    "sgd_convergence_runs": plot_convergence_runs,
    "sgd_grad_norms": plot_grad_norms,
    "sgd_final_grads": plot_final_grads,
    "sgd_test_vs_grad": plot_test_vs_grad,
    "sgd_weight_decay": plot_weight_decay,
}
