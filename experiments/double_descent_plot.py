"""Figures and template values of the double-descent stage (computer assignment 1).

``FIGURES`` maps ``dd_training_curves`` (item b) and ``dd_curve`` (items c, d) to plot
functions of :class:`experiments.double_descent.Results`; :func:`context` returns every
number and every data-chosen statement of ``templates/sections/double_descent.tex.j2``.
"""

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from experiments.batched_mlp import n_params as mlp_params
from experiments.double_descent import HIDDEN_LAYERS, Results, threshold_index
from report.figures import figsize
from report.fmt import Tex, integer, num

TARGET = 1e-3  # item (b): the training MSE to reach
COLORS = ("tab:blue", "tab:orange", "tab:green")


def n_params(width: float | np.ndarray) -> float | np.ndarray:
    """Parameters of this stage's network 8 -> M -> M -> 8, for a width or an array of widths."""
    return mlp_params(width, HIDDEN_LAYERS)


def width_of(params: float | np.ndarray) -> float | np.ndarray:
    """Inverse of :func:`n_params` for the secondary axis."""
    return -9 + np.sqrt(np.maximum(81 - 8 + params, 0))


def first_below(curves: np.ndarray, epochs: np.ndarray, level: float) -> np.ndarray:
    """First sampled epoch at which each curve is below ``level`` (0 if never); curves (..., T)."""
    below = curves < level
    return np.where(below.any(-1), epochs[below.argmax(-1)], 0)


def plot_training_curves(results: Results) -> Figure:
    fig, ax = plt.subplots(figsize=figsize(3.6), layout="constrained")
    for i, width in enumerate(results.config.curve_widths):
        for s, curve in enumerate(results.curves[i]):
            label = f"$M={width}$ ({n_params(width)} parameters)" if s == 0 else None
            ax.plot(
                results.curve_epochs, curve, color=COLORS[i % len(COLORS)], lw=1.0, alpha=0.8, label=label
            )
    ax.axhline(TARGET, color="k", ls=":", lw=1.0, label=r"$10^{-3}$")
    ax.axhline(results.r_t, color="gray", ls="--", lw=1.0, label=r"$R_t=\sigma^2$")
    ax.set(xscale="log", yscale="log", xlabel="epoch (full-batch Adam step)", ylabel="training MSE")
    ax.set_title(f"$N={results.sweeps[0].n}$, one line per initialization seed", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def plot_curve(results: Results) -> Figure:
    fig, (top, bottom) = plt.subplots(2, 1, figsize=figsize(5.6), sharex=True, layout="constrained")
    widths = np.array(results.config.widths)
    for k, sweep in enumerate(results.sweeps):
        color = COLORS[k % len(COLORS)]
        index = threshold_index(widths, sweep.train, results.config.interp_tol)
        for ax, values, what in ((top, sweep.test, "test"), (bottom, sweep.train, "training")):
            ax.plot(widths, np.median(values, 1), "-", color=color, lw=1.4, label=f"{what}, $N={sweep.n}$")
            ax.plot(np.repeat(widths, values.shape[1]), values.ravel(), ".", color=color, ms=3, alpha=0.5)
            if index is not None:
                label = f"threshold $M={widths[index]}$, $N={sweep.n}$" if ax is bottom else None
                ax.axvline(widths[index], color=color, ls=":", lw=1.2, label=label)
    top.axhline(results.r_t, color="k", ls="--", lw=1.0, label=r"$R_t=\sigma^2$")
    bottom.axhline(results.config.interp_tol, color="gray", ls="-.", lw=0.8, label="interpolation level")
    top.set(xscale="log", yscale="log", ylabel="final test MSE", ylim=(0.8 * results.r_t, None))
    top.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    top.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    top.yaxis.set_minor_formatter(NullFormatter())
    bottom.set(xscale="log", yscale="log", xlabel="hidden width $M$", ylabel="final training MSE")
    params = top.secondary_xaxis("top", functions=(n_params, width_of))
    params.set_xlabel("parameters $M^2+18M+8$")
    top.legend(fontsize=8, loc="upper right")
    bottom.legend(fontsize=8, loc="lower left")
    for ax in (top, bottom):
        ax.grid(True, which="major", alpha=0.3)
    return fig


FIGURES: dict[str, Callable[[Results], Figure]] = {
    "dd_training_curves": plot_training_curves,
    "dd_curve": plot_curve,
}


def speed_trend(widths: list[int], epochs: list[int]) -> str:
    """'faster' if the epochs to the target fall with the width, 'slower' if they rise, else 'mixed'."""
    steps = np.diff(epochs)
    if len(epochs) < 2 or np.all(steps == 0):
        return "mixed"
    return "faster" if np.all(steps <= 0) else "slower" if np.all(steps >= 0) else "mixed"


def context(results: Results) -> dict:
    config, training = results.config, results.config.training
    widths = list(config.widths)
    first, second = results.sweeps[0], results.sweeps[-1]

    # (b) training curves
    hit = first_below(results.curves, results.curve_epochs, TARGET)  # (n_curve_widths, n_seeds)
    curve_rows = []
    for i, width in enumerate(config.curve_widths):
        reached = bool(np.all(hit[i] > 0))
        curve_rows.append(
            {
                "M": integer(width),
                "params": integer(n_params(width)),
                "reached": reached,
                "under": bool(n_params(width) < 8 * first.n),  # fewer parameters than equations
                "epochs": integer(np.median(hit[i])) if reached else "",
                "final": num(np.median(first.train[widths.index(width)])),
            }
        )
    reaching = [w for i, w in enumerate(config.curve_widths) if np.all(hit[i] > 0)]
    reach_epochs = [int(np.median(hit[config.curve_widths.index(w)])) for w in reaching]

    # (c) threshold and peak
    def summary(sweep) -> dict:
        index = threshold_index(widths, sweep.train, config.interp_tol)
        test = np.median(sweep.test, 1)
        peak = int(np.argmax(test))
        under_min = int(np.argmin(test[:peak])) if peak > 0 else 0
        enough = [w for w in widths if n_params(w) >= 8 * sweep.n]  # at least as many parameters as equations
        finished = sweep.epochs >= training.max_epochs  # (n_widths, n_seeds): Adam did not converge
        finished_widths = [w for w, row in zip(widths, finished, strict=True) if row.any()]
        capped = sweep.lbfgs >= training.lbfgs_iters  # L-BFGS did not converge either
        capped_widths = [w for w, row in zip(widths, capped, strict=True) if row.any()]
        return {
            "found": index is not None,
            "M": integer(widths[index]) if index is not None else "",
            "params": integer(n_params(widths[index])) if index is not None else "",
            "equations": integer(8 * sweep.n),
            "ratio": num(n_params(widths[index]) / (8 * sweep.n)) if index is not None else "",
            "below_M": integer(widths[index - 1]) if index else "",
            "below_train": num(np.median(sweep.train[index - 1])) if index else "",
            "peak_M": integer(widths[peak]),
            "peak_test": num(test[peak]),
            "peak_over_r_t": num(test[peak] / results.r_t, sig=2),
            "eq_M": integer(enough[0]) if enough else "",
            "eq_params": integer(n_params(enough[0])) if enough else "",
            "late": bool(index is not None and enough and widths[index] > enough[0]),
            "under_min_M": integer(widths[under_min]),
            "under_min_test": num(test[under_min]),
            "widest_test": num(test[-1]),
            "visible": bool(0 < peak < len(widths) - 1 and test[peak] > 1.5 * max(test[under_min], test[-1])),
            "finished": integer(finished.sum()),
            "finished_from": integer(min(finished_widths)) if finished_widths else "",
            "finished_to": integer(max(finished_widths)) if finished_widths else "",
            "finished_lbfgs_max": integer(sweep.lbfgs.max()),
            "capped": integer(capped.sum()),
            "capped_count": int(capped.sum()),
            "finished_count": int(finished.sum()),
            "n": integer(sweep.n),
            "capped_from": integer(min(capped_widths)) if capped_widths else "",
            "capped_to": integer(max(capped_widths)) if capped_widths else "",
            "capped_train_max": num(sweep.train[capped].max()) if capped_widths else "",
            "interp_max_train": num(sweep.train[index:].max()) if index is not None else "",
            "index": index,
        }

    s1, s2 = summary(first), summary(second)

    # (d) more data at the N = 100 threshold width and an overparameterized width
    table, hurts = [], {}
    if s1["index"] is not None:
        for role, width in (("threshold", widths[s1["index"]]), ("over", config.over_width)):
            row = widths.index(width)
            t1, t2 = np.median(first.test[row]), np.median(second.test[row])
            hurts[role] = bool(t2 > t1)
            table.append(
                {
                    "M": integer(width),
                    "params": integer(n_params(width)),
                    "test1": num(t1),
                    "test2": num(t2),
                    "train1": num(np.median(first.train[row])),
                    "train2": num(np.median(second.train[row])),
                    "ratio1": num(n_params(width) / (8 * first.n)),
                    "ratio2": num(n_params(width) / (8 * second.n)),
                    "under2": bool(n_params(width) < 8 * second.n),
                }
            )
    worse = np.median(second.test, 1) > np.median(first.test, 1)
    return {
        "teacher_hidden": integer(results.process.teacher_hidden),
        "teacher_seed": integer(results.process.teacher_seed),
        "noise_std": num(results.process.noise_std, sig=1),
        "r_t": num(results.r_t, sig=2),
        "r_t_empirical": num(results.r_t_empirical, sig=4),
        "r_t_se": num(results.r_t * (2 / (8 * config.n_test)) ** 0.5, sig=2),
        "signal_var": num(results.signal_var),
        "noise_over_signal": num(results.r_t / results.signal_var, sig=2),
        "var_y": num(results.signal_var + results.r_t),
        "n_test": integer(config.n_test),
        "n1": integer(first.n),
        "n2": integer(second.n),
        "n_widths": integer(len(widths)),
        "min_width": integer(min(widths)),
        "max_width": integer(max(widths)),
        "n_seeds": integer(len(config.seeds)),
        "n_models": integer(len(widths) * len(config.seeds) * len(results.sweeps)),
        "lr0": num(training.lr0, sig=1),
        "factor": num(training.factor, sig=1),
        "patience": integer(training.patience),
        "min_improvement": num(100 * training.min_improvement, sig=1),
        "lr_min": num(training.lr_min, sig=1),
        "tol": num(training.tol, sig=1),
        "max_epochs": integer(training.max_epochs),
        "lbfgs_iters": integer(training.lbfgs_iters),
        "lr_decay_range": num(training.lr0 / training.lr_min, sig=2),
        "lbfgs_history": integer(training.lbfgs_history),
        "interp_tol": num(config.interp_tol, sig=1),
        "target": num(TARGET, sig=1),
        "curve_widths": Tex(",".join(str(w) for w in config.curve_widths)),
        "width_list": Tex(r",\allowbreak ".join(str(w) for w in widths)),
        "curve_rows": curve_rows,
        "any_reached": bool(reaching),
        "all_reached": len(reaching) == len(config.curve_widths),
        "speed_trend": speed_trend(reaching, reach_epochs),
        "first": s1,
        "second": s2,
        "more_data": table,
        "hurts_threshold": hurts.get("threshold", False),
        "hurts_over": hurts.get("over", False),
        "hurt_any": bool(worse.any()),
        "hurt_count": integer(worse.sum()),
        "hurt_beyond_first": bool(s1["index"] is not None and worse[: s1["index"]].sum() == 0),
        "hurt_from": integer(np.array(widths)[worse].min()) if worse.any() else "",
        "hurt_to": integer(np.array(widths)[worse].max()) if worse.any() else "",
        "seconds": num(results.seconds, sig=2),
    }
