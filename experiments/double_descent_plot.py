"""Figures and template values of the double-descent stage (computer assignment 1).

``FIGURES`` maps ``dd_training_curves`` (item b) and ``dd_curve`` (items c, d) to plot
functions of :class:`experiments.double_descent.Results`; :func:`context` returns every
number and every data-chosen statement of ``templates/sections/double_descent.tex.j2``.
"""

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from derivations.notation import latex
from experiments import effective_params
from experiments.data_plot import context as data_context
from experiments.double_descent import Results, Sweep
from experiments.double_descent_stats import (
    ALPHA,
    LEVEL,
    PEAK_RESAMPLES,
    RESAMPLES,
    first_below,
    median_threshold_index,
    more_data,
    peak_range,
    settled_index,
    speed_trend,
    threshold_index,
)
from experiments.lbfgs_config import Stop
from experiments.threshold_diagnosis import (
    GRAM_MARGIN,
    LM_STEPS,
    RTOL,
    STATIONARY,
    Diagnosis,
    rank_check,
)
from lab.fmt import Tex, integer, num, power_of_ten, tex

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TARGET = 1e-3  # item (b): the training MSE to reach
LOWERED = 1e-2  # Levenberg-Marquardt "barely lowers the loss" when it removes less than this fraction of it
SLIGHT = 0.2  # a change of the median test MSE is "slight" below this fraction of its N = n1 value
ILL_CONDITIONED = 1e-2  # a full-rank stall point is ill-conditioned when s_dN / s_1 is below this
SWEEP_COLORS = ("#3b0f70", "#d9730d")  # N = 100 and N = 200: dark purple and orange, apart in greyscale too
SWEEP_STYLES = ("-", "--")
RELATIVE_GAP = 0.2  # the threshold is "as far above the count" for both N when P_eff/(dN) - 1 agrees within this fraction


def counts(results: Results) -> tuple:
    """P(M) and P_eff(M) of this stage's network, as SymPy expressions in M."""
    K, d = results.config.hidden_layers, results.process.dim
    return effective_params.param_count(K, d), effective_params.effective_count(K, d)


def quartiles(values: np.ndarray) -> tuple[Tex, Tex, Tex]:
    """Median, first and third quartile of ``values``, formatted with two significant digits."""
    q1, mid, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return num(mid, sig=2), num(q1, sig=2), num(q3, sig=2)


def count_median(values: Sequence[int]) -> Tex:
    """The median of integer counts: an integer when it is one (e.g. 4), else with one decimal (e.g. 3.5)."""
    median = float(np.median(values))
    return integer(int(median)) if median.is_integer() else num(median, sig=2)


def int_quartiles(values: np.ndarray) -> tuple[Tex, Tex, Tex]:
    """Median, first and third quartile of integer counts, rounded."""
    return tuple(integer(round(v)) for v in np.quantile(values, [0.5, 0.25, 0.75]))


def plot_training_curves(results: Results) -> "Figure":
    import matplotlib.pyplot as plt  # only where a figure is drawn

    from lab.style import CAPTION_PT, figsize, sequential

    fig, ax = plt.subplots(figsize=figsize(2.8), layout="constrained")
    P, _ = counts(results)
    colors = sequential(len(results.config.curve_widths))
    steps = np.arange(results.curves.shape[-1])
    for i, width in enumerate(results.config.curve_widths):
        for s, curve in enumerate(results.curves[i]):
            label = f"$M={width}$ ($P={int(P.subs(effective_params.M, width))}$)" if s == 0 else None
            ax.plot(steps[1:], curve[1:], color=colors[i], lw=0.8, alpha=0.8, label=label)
    ax.axhline(TARGET, color="k", ls=":", lw=1.0, label=f"target ${power_of_ten(TARGET)}$")
    ax.set(xscale="log", yscale="log")
    ax.set_xlabel("L-BFGS iteration (full batch)", fontsize=CAPTION_PT)
    ax.set_ylabel("training MSE", fontsize=CAPTION_PT)
    ax.tick_params(labelsize=CAPTION_PT)
    ax.set_title(f"$N={results.sweeps[0].n}$, one line per initialization seed", fontsize=CAPTION_PT)
    ax.legend(fontsize=CAPTION_PT, loc="lower left")
    return fig


def plot_curve(results: Results) -> "Figure":
    import matplotlib.pyplot as plt  # only where a figure is drawn
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    from lab.style import figsize

    fig, (top, bottom) = plt.subplots(2, 1, figsize=figsize(4.3), sharex=True, layout="constrained")
    widths = np.array(results.config.widths)
    tol = results.config.optimizer.tol
    handles = []
    for sweep, color, style in zip(results.sweeps, SWEEP_COLORS, SWEEP_STYLES, strict=False):
        median_index = median_threshold_index(sweep.train, tol)
        every_index = settled_index(sweep.stop == Stop.INTERPOLATED)
        for ax, values in ((top, sweep.test), (bottom, sweep.train)):
            low, mid, high = np.quantile(values, [0.25, 0.5, 0.75], axis=1)
            ax.plot(widths, mid, style, color=color, lw=1.6)
            ax.fill_between(widths, low, high, color=color, alpha=0.2, lw=0)
            for index, line in ((median_index, ":"), (every_index, "-.")):
                if index is not None:
                    ax.axvline(widths[index], color=color, ls=line, lw=1.3)
            odd = sweep.stop == Stop.UNCERTIFIED
            if odd.any():
                rows, _ = np.nonzero(odd)
                ax.plot(widths[rows], values[odd], "x", color="tab:red", ms=4, mew=0.8)
        handles.append(Line2D([], [], color=color, ls=style, lw=1.6, label=f"$N={sweep.n}$"))
    handles += [
        Line2D([], [], color="k", ls=":", lw=1.3, label="threshold: median interpolates"),
        Line2D([], [], color="k", ls="-.", lw=1.3, label="every seed interpolates"),
        Line2D([], [], color="k", ls="--", lw=1.0, label=r"$R_t=\tau^2$"),
    ]
    if any((s.stop == Stop.UNCERTIFIED).any() for s in results.sweeps):
        handles.append(Line2D([], [], color="tab:red", marker="x", ls="", label="uncertified"))
    top.axhline(results.r_t, color="k", ls="--", lw=1.0)
    top.set(xscale="log", yscale="log", ylabel="final test MSE", ylim=(0.8 * results.r_t, None))
    top.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    top.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    top.yaxis.set_minor_formatter(NullFormatter())
    bottom.set(xscale="log", yscale="log", xlabel="hidden width $M$", ylabel="final training MSE")
    P, _ = counts(results)
    params = top.secondary_xaxis(
        "top", functions=(effective_params.as_function(P), effective_params.inverse(P))
    )
    params.set_xlabel(f"parameters $P={latex(P)}$")
    bottom.legend(handles=handles, fontsize=8, loc="lower left", ncol=2)  # the corner no curve reaches
    return fig


FIGURES: dict[str, Callable[[Results], "Figure"]] = {
    "dd_training_curves": plot_training_curves,
    "dd_curve": plot_curve,
}


def widths_text(widths: Sequence[int]) -> Tex:
    """A list of widths for mathematics mode, e.g. ``21, 22 \\text{ and } 23``."""
    items = [str(int(w)) for w in widths]
    return Tex(items[0] if len(items) == 1 else ", ".join(items[:-1]) + r"\text{ and }" + items[-1])


def sweep_summary(results: Results, sweep: Sweep) -> dict:
    """Threshold, peak, counts' predictions, convergence and second descent of one training-set size.

    The threshold is the median one (:func:`median_threshold_index`), the statistic of the curves and the
    peak; the width from which every seed interpolates is reported beside it.
    """
    widths = np.array(results.config.widths)
    P, P_eff = counts(results)
    interpolated = sweep.stop == Stop.INTERPOLATED
    index = median_threshold_index(sweep.train, results.config.optimizer.tol)
    test = np.median(sweep.test, 1)
    peak = int(np.argmax(test))
    first_min = int(np.argmin(test[:peak])) if peak > 0 else 0
    second_min = peak + int(np.argmin(test[peak:]))
    equations = results.process.dim * sweep.n
    by_P, by_eff = effective_params.predict(P, equations), effective_params.predict(P_eff, equations)
    measured = int(widths[index]) if index is not None else None
    peak_M = int(widths[peak])

    low, high = peak_range(sweep.test)
    # a peak found on the grid lies, on the M axis, between the midpoints to the neighbouring widths
    lo_edge = (widths[low - 1] + widths[low]) / 2 if low > 0 else widths[low]
    hi_edge = (widths[high] + widths[high + 1]) / 2 if high + 1 < len(widths) else widths[high]
    inside = {name: lo_edge <= c.value <= hi_edge for name, c in (("P", by_P), ("P_eff", by_eff))}
    loose = threshold_index(sweep.train < TARGET)

    stalled = np.isin(sweep.stop, [Stop.STALLED, Stop.NO_DECREASE])
    uncertified = sweep.stop == Stop.UNCERTIFIED
    partial = [  # below the median threshold, some seeds interpolate
        int(w)
        for w, row in zip(widths[:index], interpolated[:index], strict=True)
        if row.any() and not row.all()
    ]
    settled = settled_index(interpolated)
    failures = [  # at or above the median threshold, not every seed interpolates
        {"M": integer(widths[i]), "count": integer(interpolated[i].sum())}
        for i in range(len(widths))
        if index is not None and i >= index and not interpolated[i].all()
    ]
    return {
        "n": integer(sweep.n),
        "equations": integer(equations),
        "found": index is not None,
        "index": index,
        "M": integer(measured) if index is not None else "",
        "params": integer(P.subs(effective_params.M, measured)) if index is not None else "",
        "params_eff": integer(P_eff.subs(effective_params.M, measured)) if index is not None else "",
        "below_M": integer(widths[index - 1]) if index else "",
        "below_none": bool(index)
        and not interpolated[:index].any(),  # no seed interpolates below the threshold
        "P_root": tex(latex(by_P.root)),
        "P_value": num(by_P.value, sig=4),
        "P_width": integer(by_P.width),
        "eff_root": tex(latex(by_eff.root)),
        "eff_value": num(by_eff.value, sig=4),
        "eff_width": integer(by_eff.width),
        "bound_holds": bool(index is not None and measured >= by_eff.width),
        "peak_closer": "both"
        if all(inside.values())
        else next((k for k, v in inside.items() if v), "neither"),
        "peak_low": integer(widths[low]),
        "peak_high": integer(widths[high]),
        "peak_sharp": low == high,
        "peak_lo_edge": num(lo_edge, sig=3),
        "peak_hi_edge": num(hi_edge, sig=3),
        "loose_found": loose is not None,
        "loose_M": integer(widths[loose]) if loose is not None else "",
        "loose_same": loose == index,
        "threshold_minus_eff": integer(measured - by_eff.width) if index is not None else "",
        "threshold_minus_P": integer(measured - by_P.width) if index is not None else "",
        "peak_minus_eff": integer(peak_M - by_eff.width),
        "peak_minus_P": integer(peak_M - by_P.width),
        "peak_M": integer(peak_M),
        "peak_test": num(test[peak]),
        "peak_q1": num(np.quantile(sweep.test[peak], 0.25)),
        "peak_q3": num(np.quantile(sweep.test[peak], 0.75)),
        "peak_over_r_t": num(test[peak] / results.r_t, sig=2),
        "peak_vs_threshold": int(np.sign(peak_M - measured)) if index is not None else 0,
        # the threshold lies inside the peak's bootstrap interval: they agree to the resolution of the seeds
        "threshold_in_peak": bool(index is not None and low <= index <= high),
        "peak_train": num(np.median(sweep.train[peak])),
        "peak_noise_pct": num(100 * np.median(sweep.train[peak]) / results.r_t, sig=2),
        "peak_interpolated": integer(interpolated[peak].sum()),
        "first_min_M": integer(widths[first_min]),
        "first_min_test": num(test[first_min]),
        "second_min_M": integer(widths[second_min]),
        "second_min_test": num(test[second_min]),
        "widest_test": num(test[-1]),
        "second_below_first": bool(test[second_min] < test[first_min]),
        "visible": bool(0 < peak < len(widths) - 1 and test[peak] > 1.5 * max(test[first_min], test[-1])),
        "n_models": integer(sweep.stop.size),
        "interpolated": integer(interpolated.sum()),
        "stalled": integer(stalled.sum()),
        "uncertified_count": int(uncertified.sum()),
        "uncertified": integer(uncertified.sum()),
        "uncertified_widths": widths_text(widths[uncertified.any(1)]) if uncertified.any() else "",
        "stalled_min": num(sweep.train[stalled].min()) if stalled.any() else "",
        "uncertified_min": num(sweep.train[uncertified].min()) if uncertified.any() else "",
        "uncertified_max": num(sweep.train[uncertified].max()) if uncertified.any() else "",
        "partial": bool(partial),
        "partial_widths": widths_text(partial) if partial else "",
        "failures": failures,
        "settled": settled is not None,
        "settled_M": integer(widths[settled]) if settled is not None else "",
        "settled_P_eff": integer(P_eff.subs(effective_params.M, int(widths[settled])))
        if settled is not None
        else "",
        "settled_same": settled == index,
        "max_iterations": integer(sweep.iterations.max()),
        "uncertified_below": bool(index is not None and uncertified[:index].any()),
    }


def stall_diagnosis(results: Results, diagnoses: list[Diagnosis]) -> dict:
    """The stalled networks above the counting bound, per training-set size and one row each (supplement)."""
    _, P_eff = counts(results)
    d = results.process.dim
    per_n: list[dict] = []
    dead: list[list[int]] = []  # dead units of each examined network, per training-set size
    deficits: list[list[int]] = []  # d N - rank of each rank-deficient one
    excess: list[float] = []  # P_eff / (d N) at the threshold (NaN: no threshold)
    for sweep in results.sweeps:
        group = [g for g in diagnoses if g.n == sweep.n]
        equations = d * sweep.n
        dead.append([sum(g.dead) for g in group])
        deficits.append([equations - g.rank for g in group if g.rank < equations])
        width = effective_params.predict(P_eff, equations).width
        index = median_threshold_index(sweep.train, results.config.optimizer.tol)
        eff_at_M = (
            int(P_eff.subs(effective_params.M, results.config.widths[index])) if index is not None else None
        )
        # effective parameters per equation at the threshold: the gap measured against the count
        excess.append(eff_at_M / equations if eff_at_M is not None else np.nan)
        decrease = np.array([g.relative_decrease for g in group])
        stationary = sum(g.stationary for g in group)
        full = [g for g in group if g.rank == equations]
        per_n.append(
            {
                "n": integer(sweep.n),
                "equations": integer(equations),
                "eff_width": integer(width),
                "eff_at_width": integer(P_eff.subs(effective_params.M, width)),
                "M": integer(results.config.widths[index]) if index is not None else "",
                "eff_at_M": integer(eff_at_M) if eff_at_M is not None else "",
                "excess": num(excess[-1], sig=3) if np.isfinite(excess[-1]) else "",
                "count": integer(len(group)),
                "any": bool(group),
                "widths": widths_text(sorted({g.width for g in group})) if group else "",
                "deficient": integer(sum(g.rank < equations for g in group)),
                "below_prediction": integer(sum(g.rank < g.predicted for g in group)),
                "dead_median": count_median([sum(g.dead) for g in group]) if group else "",
                "deficit_median": count_median(deficits[-1]) if deficits[-1] else "",
                "full": integer(len(full)),
                "all_full": all(g.rank == equations for g in group),
                "with_dead": integer(sum(sum(g.dead) > 0 for g in group)),
                "deficient_dead": integer(sum(g.rank < equations and sum(g.dead) > 0 for g in group)),
                "deficient_dead_all": all(sum(g.dead) > 0 for g in group if g.rank < equations),
                # rank-deficient networks whose dead units alone take the bound min(dN, P_eff(live)) below dN
                "dead_bound": integer(sum(g.rank < equations and g.predicted < equations for g in group)),
                "below_any": any(g.rank < g.predicted for g in group),
                "all_below": all(g.rank < g.predicted for g in group if g.rank < equations),
                "dead_units": integer(sum(sum(g.dead) for g in group)),
                "with_active": integer(sum(sum(g.active) > 0 for g in group)),
                "stationary": integer(stationary),
                # stationary points (gradient below STATIONARY relative to s1 |r|), or none of them: not minima
                "verdict": "stationary"
                if group and stationary == len(group)
                else "moving"
                if stationary == 0
                else "mixed",
                "gradient_min": num(100 * min(g.gradient for g in group), sig=2) if group else "",
                "gradient_max": num(100 * max(g.gradient for g in group), sig=2) if group else "",
                "lm_little": bool(group) and bool(decrease.max() < LOWERED),
                "decrease_median": num(100 * np.median(decrease), sig=2) if group else "",
                "decrease_min": num(100 * decrease.min(), sig=2) if group else "",
                "decrease_max": num(100 * decrease.max(), sig=2) if group else "",
                "smallest_median": tex(power_of_ten(float(np.median([g.smallest for g in group])), digits=0))
                if group
                else "",
                "gap_min": num(min(g.gap for g in group if np.isfinite(g.gap)), sig=2)
                if any(np.isfinite(g.gap) for g in group)
                else "",
            }
        )
    check = rank_check(diagnoses)
    full = [g.smallest for g in diagnoses if g.rank == d * g.n]  # s_dN / s_1 of the full-rank stall points
    gradients = [g.gradient for g in diagnoses]
    rows = [
        {
            "n": integer(g.n),
            "M": integer(g.width),
            "seed": integer(g.seed),
            "P_eff": integer(P_eff.subs(effective_params.M, g.width)),
            "loss": num(g.loss, sig=2),
            "rank": integer(g.rank),
            "predicted": integer(g.predicted),
            "gap": num(g.gap, sig=2) if np.isfinite(g.gap) else r"--",
            "smallest": tex(power_of_ten(g.smallest, digits=0)),
            "dead": Tex(f"{g.dead[0]}+{g.dead[1]}"),
            "active": Tex(f"{g.active[0]}+{g.active[1]}"),
            "lm_loss": num(g.lm_loss, sig=2),
            "gradient": num(g.gradient, sig=2),
            "decrease": num(100 * g.relative_decrease, sig=2),
        }
        for g in diagnoses
    ]
    return {
        "per_n": per_n,
        "rows": rows,
        "count": integer(len(diagnoses)),
        "rank_ok": check.passed,
        # the larger training set's stall points lose more: more dead units and larger rank deficits (medians)
        "larger_losses": bool(
            all(dead)
            and all(deficits)
            and np.median(dead[-1]) > np.median(dead[0])
            and np.median(deficits[-1]) > np.median(deficits[0])
        ),
        # the threshold sits as far above the count for every size, relative to it (within RELATIVE_GAP)
        "same_relative_gap": bool(
            np.all(np.isfinite(excess)) and (max(excess) - 1) <= (min(excess) - 1) * (1 + RELATIVE_GAP)
        ),
        "rank_off": integer(int(check.error)),
        "rtol": tex(power_of_ten(RTOL)),
        "gram_margin": tex(power_of_ten(GRAM_MARGIN)),
        "lm_steps": integer(LM_STEPS),
        "lowered_pct": num(100 * LOWERED, sig=1),
        "stationary_level": tex(power_of_ten(STATIONARY)),
        "full_any": bool(full),
        "full_ill": bool(full) and max(full) < ILL_CONDITIONED,
        "full_smallest_min": tex(power_of_ten(min(full), digits=0)) if full else "",
        "full_smallest_max": tex(power_of_ten(max(full), digits=0)) if full else "",
        "gradient_min": num(100 * min(gradients), sig=2) if gradients else "",
        "gradient_max": num(100 * max(gradients), sig=2) if gradients else "",
    }


def context(results: Results, threshold_diagnosis: list[Diagnosis]) -> dict:
    """Every value of the section; ``threshold_diagnosis``: the stall-point diagnoses of the derived analysis
    (:func:`experiments.threshold_diagnosis.analyze`, a task of its own)."""
    config, opt = results.config, results.config.optimizer
    widths = list(config.widths)
    first, second = results.sweeps[0], results.sweeps[-1]
    P, P_eff = counts(results)
    K, d = config.hidden_layers, results.process.dim

    # (b) training curves
    hit = first_below(results.curves, TARGET)  # (n_curve_widths, n_seeds)
    curve_rows = []
    for i, width in enumerate(config.curve_widths):
        row = widths.index(width)
        reached = bool(np.all(hit[i] >= 0))
        steps = int_quartiles(hit[i]) if reached else ("", "", "")
        seeds = np.arange(hit.shape[1])
        evaluations_to = (
            int_quartiles(results.curve_evaluations[i, seeds, hit[i]]) if reached else ("", "", "")
        )
        stop_steps = int_quartiles(first.iterations[row])
        evaluations = int_quartiles(first.evaluations[row])
        final = quartiles(first.train[row])
        curve_rows.append(
            {
                "M": integer(width),
                "params": integer(P.subs(effective_params.M, width)),
                "reached": reached,
                "under": bool(P_eff.subs(effective_params.M, width) < d * first.n),
                "steps": steps[0],
                "steps_q": steps[1:],
                "evaluations_to": evaluations_to[0],
                "evaluations_to_q": evaluations_to[1:],
                "stop_steps": stop_steps[0],
                "stop_q": stop_steps[1:],
                "evaluations": evaluations[0],
                "evaluations_q": evaluations[1:],
                "final": final[0],
                "final_q": final[1:],
                "interpolated": bool(np.all(first.stop[row] == Stop.INTERPOLATED)),
            }
        )
    reaching = [w for i, w in enumerate(config.curve_widths) if np.all(hit[i] >= 0)]
    reach_steps = [round(np.median(hit[config.curve_widths.index(w)])) for w in reaching]

    s1, s2 = sweep_summary(results, first), sweep_summary(results, second)

    # (d) more data, paired over seeds
    intervals, hurts = more_data(results)
    table = []
    chosen = [("threshold", widths[s1["index"]])] if s1["index"] is not None else []
    for role, width in [*chosen, ("over", config.over_width)]:
        row = widths.index(width)
        median, low, high = intervals[row]
        (q1_1, mid1, q3_1), (q1_2, mid2, q3_2) = (
            np.quantile(s.test[row], [0.25, 0.5, 0.75]) for s in (first, second)
        )
        table.append(
            {
                "role": role,
                "M": integer(width),
                "params": integer(P.subs(effective_params.M, width)),
                "test1": num(mid1),
                "iqr1": (num(q1_1), num(q3_1)),
                "test2": num(mid2),
                "iqr2": (num(q1_2), num(q3_2)),
                "diff": num(median, sig=2),
                # the median paired change, in % of N = n1's median, and whether it is slight
                "diff_pct": num(100 * abs(median) / mid1, sig=2),
                "slight": bool(abs(median) < SLIGHT * mid1),
                "low": num(low, sig=2),
                "high": num(high, sig=2),
                "hurts": bool(low > 0),
                "helps": bool(high < 0),
                "ratio1": num(P_eff.subs(effective_params.M, width) / (d * first.n)),
                "ratio2": num(P_eff.subs(effective_params.M, width) / (d * second.n)),
                "under2": bool(P_eff.subs(effective_params.M, width) < d * second.n),
            }
        )
    hurt_widths = [w for w, h in zip(widths, hurts, strict=True) if h]
    chosen_rows = [widths.index(w) for _, w in [*chosen, ("over", config.over_width)]]
    per_seed = [
        {
            "seed": integer(seed),
            "cells": [
                (
                    num(first.test[row, j]),
                    num(second.test[row, j]),
                    num(second.test[row, j] - first.test[row, j], sig=2),
                )
                for row in chosen_rows
            ],
        }
        for j, seed in enumerate(config.seeds)
    ]
    ranks = results.ranks
    rank_rows = []
    for i, width in enumerate(config.rank_widths):
        expected = int(P_eff.subs(effective_params.M, width))
        deficit = expected - ranks.default[i]
        rank_rows.append(
            {
                "M": integer(width),
                "P": integer(P.subs(effective_params.M, width)),
                "P_eff": integer(expected),
                "balanced": integer(ranks.balanced[i]),
                "gap": integer(round(ranks.gap[i])),
                "full": integer((deficit == 0).sum()),
                "max_deficit": integer(deficit.max()),
            }
        )
    expected_ranks = np.array([int(P_eff.subs(effective_params.M, w)) for w in config.rank_widths])
    deficit_all = expected_ranks[:, None] - ranks.default
    return {
        "data": data_context(results.data),
        "teacher_hidden": integer(results.process.teacher_hidden),
        "teacher_seed": integer(results.process.teacher_seed),
        "dim": integer(d),
        "hidden_layers": integer(K),
        "tau": num(results.process.noise_std, sig=1),
        "r_t": num(results.r_t, sig=3),  # as the data source and Computer assignment 2 print it (0.250)
        "r_t_empirical": num(results.r_t_empirical, sig=3),  # its standard error r_t_se is in the third digit
        "r_t_se": num(results.r_t * (2 / (d * config.n_test)) ** 0.5, sig=2),
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
        "P": tex(latex(P)),
        "P_eff": tex(latex(P_eff)),
        "tol": tex(power_of_ten(opt.tol)),
        "window": integer(opt.window),
        "min_decrease": num(100 * opt.min_decrease, sig=1),
        "history": integer(opt.history),
        "halvings": integer(opt.halvings),
        "armijo": num(opt.armijo, sig=1),
        "max_iters": integer(opt.max_iters),
        "slow_factor": num(opt.slow_factor, sig=2),
        "slowest_interp": num(
            max(s.slowest[s.stop == Stop.INTERPOLATED].max(initial=0) for s in results.sweeps), sig=2
        ),
        "target": tex(power_of_ten(TARGET)),
        "curve_widths": Tex(",".join(str(w) for w in config.curve_widths)),
        "width_list": Tex(r",\allowbreak ".join(str(w) for w in widths)),
        "curve_rows": curve_rows,
        "any_reached": bool(reaching),
        "all_reached": len(reaching) == len(config.curve_widths),
        "speed_trend": speed_trend(reaching, reach_steps),
        "first": s1,
        "second": s2,
        "more_data": table,
        "level": integer(round(100 * LEVEL)),
        "resamples": integer(RESAMPLES),
        "peak_resamples": integer(PEAK_RESAMPLES),
        "alpha": num(100 * ALPHA, sig=1),
        "min_p": num(2.0 ** -len(config.seeds), sig=2),
        "hurt_any": bool(hurt_widths),
        "hurt_count": integer(len(hurt_widths)),
        "hurt_widths": widths_text(hurt_widths) if hurt_widths else "",
        "hurts_over": bool(table and table[-1]["hurts"]),
        "stalls": stall_diagnosis(results, threshold_diagnosis),
        "per_seed": per_seed,
        "rank_rows": rank_rows,
        "rank_samples": integer(config.rank_samples),
        "rank_rows_count": integer(d * config.rank_samples),
        "gap_min": integer(round(ranks.gap.min())),
        "gap_max": integer(round(ranks.gap.max())),
        "rank_widths": widths_text(config.rank_widths),
        "rank_all_full": bool(np.all(ranks.balanced == expected_ranks)),
        "rank_never_above": bool(np.all(deficit_all >= 0)),
        "deficit_seeds": integer((deficit_all > 0).sum()),
        "rank_seeds": integer(deficit_all.size),
        "deficit_with_inactive": integer(((deficit_all > 0) & (ranks.inactive > 0)).sum()),
    }
