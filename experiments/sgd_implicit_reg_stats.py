"""Statistics and verdicts of the implicit-regularization stage (computer assignment 2).

Reads the :class:`experiments.sgd_implicit_reg.Results` the compute module saved; :func:`context`
fills ``templates/sections/sgd_implicit_reg.tex.j2`` and its supplement with formatted numbers and
small typed verdicts.  The words live in the templates alone: a verdict here is a value of
:class:`Direction` or :class:`Shape`, never a phrase.

One rule decides every verdict.  An *effect* is the ratio of geometric means of a quantity between
two settings, paired over the runs converged at both (same training data, initialization and
mini-batch order), with a 95 % percentile bootstrap interval over those runs
(:func:`lab.stats.bootstrap_interval`); an *association* is Spearman's ρ over the converged networks
with a bootstrap interval that resamples whole runs.  Either is *clear* exactly when its interval
excludes no effect (1 for a ratio, 0 for ρ).

J, G, V and V_fix are geometric means over each level's window of checks (:attr:`Stopping.window`);
the final values are the window at the target loss.  A run *converged* when a check fell below the
target loss (every level is crossed on the way).  Learning rates where at least ``MIN_FRACTION`` of
the runs converged are *usable*: only they enter the comparisons across μ.
"""

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from experiments.data_plot import context as data_context
from experiments.sgd_implicit_reg import Results, Status
from lab.fmt import Tex, in_set, integer, num, pm, power, setting
from lab.stats import bootstrap_interval, geo_mean_factor, spearman

MIN_FRACTION = 0.5  # a μ is usable where at least this fraction of its runs converged
LEVEL = 0.95  # confidence level of every interval
N_BOOT = 10_000  # bootstrap resamples
BAND_SPREAD = 3.0  # the (b) figure draws a quartile band only where its third quartile is within this factor of its first


class Direction(StrEnum):
    """Which way an effect or an association goes, by its interval."""

    DOWN = "down"  # the interval lies below no effect (ratio < 1, ρ < 0)
    UP = "up"  # the interval lies above no effect
    UNCLEAR = "unclear"  # the interval contains no effect


class Shape(StrEnum):
    """How G and V depend on μ at matched training loss, over every loss level and both measures."""

    FALLING = "falling"  # every fall from the largest value to the largest μ is clear, no rise before it is
    RISE_THEN_FALL = "rise_then_fall"  # every fall is clear, and some rise up to the largest value is too
    NOT_FALLING = "not_falling"  # some fall is not clear, or the largest value sits at the largest μ


@dataclass(frozen=True)
class Ratio:
    """Ratio of geometric means (after / before), paired over ``n`` runs, with its bootstrap interval."""

    value: float
    lo: float
    hi: float
    n: int

    @property
    def direction(self) -> Direction:
        return Direction.DOWN if self.hi < 1 else Direction.UP if self.lo > 1 else Direction.UNCLEAR


@dataclass(frozen=True)
class Association:
    """Spearman's ρ over the converged networks, with a bootstrap interval resampling whole runs."""

    rho: float
    lo: float
    hi: float
    n: int  # networks

    @property
    def direction(self) -> Direction:
        return Direction.DOWN if self.hi < 0 else Direction.UP if self.lo > 0 else Direction.UNCLEAR


@dataclass(frozen=True)
class Profile:
    """One measure over the usable μ at one loss level: where its geometric mean is largest, the rise
    up to there from the smallest μ and the fall from there to the largest μ (None where empty)."""

    peak: int  # index into the usable μ
    rise: Ratio | None
    fall: Ratio | None


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def paired_ratio(before: np.ndarray, after: np.ndarray) -> Ratio:
    """Ratio of geometric means of positive ``after`` over ``before`` (per run; NaN where a run is left
    out) over the runs where both are finite, with a bootstrap interval of the mean log ratio.

    >>> r = paired_ratio(np.array([1.0, 2.0, 4.0, 1.0]), np.array([0.5, 1.1, 1.9, 0.5]))
    >>> round(r.value, 2), r.direction.value, r.n
    (0.51, 'down', 4)
    """
    d = np.log(after) - np.log(before)
    d = d[np.isfinite(d)]
    if len(d) < 2:  # no interval without two runs: never clear
        return Ratio(float(np.exp(d.mean())) if len(d) else math.nan, math.nan, math.nan, len(d))
    lo, hi = bootstrap_interval([d], _mean, level=LEVEL, n_resamples=N_BOOT)
    return Ratio(float(np.exp(d.mean())), math.exp(lo), math.exp(hi), len(d))


def association(x: np.ndarray, y: np.ndarray) -> Association:
    """Spearman's ρ between ``x`` and ``y`` (n_mu, n_runs; NaN where left out) over every finite pair,
    with a bootstrap interval that resamples runs (a run's networks at every μ share its data, so they
    go together)."""
    keep = np.isfinite(x) & np.isfinite(y)

    def rho(runs: np.ndarray, axis: int = -1) -> np.ndarray:
        """ρ of the networks of the resampled ``runs`` ((..., n_runs) indices), left-out networks ranked NaN."""
        idx = np.asarray(runs, dtype=int)
        xs, ys, ks = (np.moveaxis(a[:, idx], 0, -1).reshape(*idx.shape[:-1], -1) for a in (x, y, keep))
        rx, ry = (stats.rankdata(np.where(ks, v, np.nan), axis=-1, nan_policy="omit") for v in (xs, ys))
        rx, ry = rx - np.nanmean(rx, -1, keepdims=True), ry - np.nanmean(ry, -1, keepdims=True)
        return np.nansum(rx * ry, -1) / np.sqrt(np.nansum(rx * rx, -1) * np.nansum(ry * ry, -1))

    lo, hi = bootstrap_interval([np.arange(x.shape[1])], rho, level=LEVEL, n_resamples=N_BOOT)
    return Association(spearman(x[keep], y[keep]), lo, hi, int(keep.sum()))


def converged(results: Results) -> np.ndarray:
    """(n_lr, n_runs) True for runs that reached the target loss."""
    return results.status == Status.CONVERGED


def usable(reached: np.ndarray) -> np.ndarray:
    """(n_lr,) True for learning rates where at least ``MIN_FRACTION`` of the runs are ``reached``."""
    return reached.mean(axis=1) >= MIN_FRACTION


def geo_means(values: np.ndarray) -> np.ndarray:
    """Geometric mean over the last axis (a level's window, or the runs) of the finite entries; NaN if none.

    >>> geo_means(np.array([[1.0, 4.0, np.nan], [np.nan, np.nan, np.nan]])).tolist()
    [2.0, nan]
    """
    logs = np.log(values)
    ok = np.isfinite(logs)
    n = ok.sum(-1)
    return np.where(n > 0, np.exp(np.where(ok, logs, 0.0).sum(-1) / np.maximum(n, 1)), np.nan)


def level_values(results: Results) -> dict[str, np.ndarray]:
    """Window means "J", "G", "V", "Vf": (n_lr, n_runs, n_levels) each."""
    fields = {"J": "level_loss", "G": "level_grad_norm", "V": "level_grad_var", "Vf": "level_grad_var_fixed"}
    return {k: geo_means(getattr(results, f)) for k, f in fields.items()}


def final(results: Results) -> dict[str, np.ndarray]:
    """Window means "J", "G", "V", "Vf" at the target loss: (n_lr, n_runs) each, NaN where not reached."""
    k = results.config.loss_levels.index(results.config.stopping.target_loss)
    return {key: v[..., k] for key, v in level_values(results).items()}


def target_epoch(results: Results) -> np.ndarray:
    """(n_lr, n_runs) epoch of the first check below the target loss (NaN where never)."""
    return results.level_epoch[..., results.config.loss_levels.index(results.config.stopping.target_loss)]


def crossing_loss(results: Results) -> np.ndarray:
    """(n_lr, n_runs) training MSE at the first check below the target (NaN where never): below the target by definition,
    unlike the window mean of :func:`final`, which SGD noise lifts after the crossing."""
    return results.level_loss[..., results.config.loss_levels.index(results.config.stopping.target_loss), 0]


def masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` with NaN where not ``keep``."""
    return np.where(keep, values, np.nan)


def profile(values: np.ndarray) -> Profile:
    """The :class:`Profile` of ``values`` (n_usable, n_runs; NaN where a run is left out)."""
    peak = int(np.nanargmax(geo_means(values)))
    last = len(values) - 1
    return Profile(
        peak,
        paired_ratio(values[0], values[peak]) if peak > 0 else None,
        paired_ratio(values[peak], values[last]) if peak < last else None,
    )


def shape(profiles: list[Profile]) -> Shape:
    """The :class:`Shape` of several profiles (each level, G and V): falling only when all fall clearly."""
    if not profiles or any(p.fall is None or p.fall.direction != Direction.DOWN for p in profiles):
        return Shape.NOT_FALLING
    rises = any(p.rise is not None and p.rise.direction == Direction.UP for p in profiles)
    return Shape.RISE_THEN_FALL if rises else Shape.FALLING


def implicit_best(results: Results, loss: np.ndarray) -> int:
    """Index of the usable μ with the lowest geometric-mean ``loss`` (validation or test) over its converged runs."""
    ok = converged(results)
    rows = np.flatnonzero(usable(ok))
    if len(rows) == 0:
        raise ValueError("no learning rate converged in enough runs: nothing to compare")
    return int(rows[np.argmin(geo_means(masked(loss, ok)[rows]))])


# --- formatting ----------------------------------------------------------------------------


def _distinct(*values: float) -> int:
    """Significant digits (two to four) at which ``values`` print differently, so that an estimate is never
    printed equal to an end of its interval unless it is one."""
    finite = {v for v in values if math.isfinite(v)}
    sig = 2
    while sig < 4 and len({num(v, sig=sig) for v in finite}) < len(finite):
        sig += 1
    return sig


def ratio_tex(r: Ratio | None) -> dict | None:
    """A ratio for the templates: value, interval (None for fewer than two runs), runs, direction."""
    if r is None:
        return None
    sig = _distinct(r.value, r.lo, r.hi)
    bounded = math.isfinite(r.lo) and math.isfinite(r.hi)
    return {"value": num(r.value, sig=sig), "lo": num(r.lo, sig=sig) if bounded else None,
            "hi": num(r.hi, sig=sig) if bounded else None, "n": integer(r.n), "direction": r.direction.value}  # fmt: skip


def fixed(v: float, places: int) -> Tex:
    """``v`` with ``places`` decimals, so that the numbers of one range share their last digit's place."""
    return Tex(rf"\num{{{v:.{places}f}}}")


def association_tex(a: Association) -> dict:
    """ρ and its interval at the decimal places the interval supports (two significant digits of its half-width,
    so ρ = 0.0018 with an interval of ±0.17 prints 0.00), more only where the estimate would print equal to an end."""
    half = (a.hi - a.lo) / 2
    places = 1 - math.floor(math.log10(half)) if half > 0 else 2
    while places < 4 and len({f"{v:.{places}f}" for v in (a.rho, a.lo, a.hi)}) < len({a.rho, a.lo, a.hi}):
        places += 1

    return {"rho": fixed(a.rho, places), "lo": fixed(a.lo, places), "hi": fixed(a.hi, places), "n": integer(a.n),
            "direction": a.direction.value}  # fmt: skip


def geo_pm(values: np.ndarray) -> Tex:
    """Geometric mean of positive ``values`` ± its standard error (delta method: mean × s.e. of the log)."""
    gm, factor = geo_mean_factor(values)
    return pm(gm, gm * math.log(factor)) if len(values) > 1 else num(gm)


def factor_range(ratios: list[Ratio], invert: bool = False) -> dict:
    """The smallest and largest of ``ratios`` (or of their inverses, as "falls by a factor" reads)."""
    values = [1 / r.value if invert else r.value for r in ratios]
    return {"lo": num(min(values), sig=2), "hi": num(max(values), sig=2), "one": len(set(values)) == 1}


# --- context -------------------------------------------------------------------------------


def _convergence_context(results: Results) -> dict:
    """(b): per μ the counts by status, median epochs to the target and final J, G, V, test MSE."""
    c, ok, end = results.config, converged(results), final(results)
    reach, use, crossing = target_epoch(results), usable(converged(results)), crossing_loss(results)
    rows = []
    for j, mu in enumerate(c.lrs):
        counts = {s.name.lower(): integer((results.status[j] == s).sum()) for s in Status}
        row = {"mu": setting(mu), **counts, "usable": bool(use[j]), "epochs": None}
        if ok[j].any():
            row["epochs"] = integer(np.median(reach[j][ok[j]]))
            row |= {key: num(geo_mean_factor(end[key][j][ok[j]])[0], sig=2) for key in ("J", "G", "V", "Vf")}
            row["J_cross"] = num(geo_mean_factor(crossing[j][ok[j]])[0], sig=2)
            row["test"] = geo_pm(results.test_loss[j][ok[j]])
        rows.append(row)
    smallest = int(np.argmin(c.lrs))
    return {
        "lr_rows": rows, "n_converged": integer(ok.sum()), "n_total": integer(ok.size),
        "smallest_mu": setting(c.lrs[smallest]), "smallest_converged": integer(ok[smallest].sum()),
        "all_converged_up_to": setting(max((mu for j, mu in enumerate(c.lrs) if ok[: j + 1].all()), default=0)),
        "usable_set": in_set(r"\mu", np.array(c.lrs)[use]),
        "left_out": [{"mu": setting(c.lrs[j]), "n": integer(ok[j].sum())} for j in np.flatnonzero(~use)],
        "not_drawn": [row for j, row in enumerate(rows) if not ok[j].any()],
        "any_stalled": bool((results.status == Status.STALLED).any()),
        "any_diverged": bool((results.status == Status.DIVERGED).any()),
    }  # fmt: skip


def _gradient_context(results: Results) -> dict:
    """(c): the profile of G and V over the usable μ at every loss level, their summary shape, the test
    MSE against μ and its association with the final G and V."""
    c, ok = results.config, converged(results)
    rows = np.flatnonzero(usable(ok))
    mus = np.array(c.lrs)[rows]
    at = {key: masked(v, ok[..., None])[rows] for key, v in level_values(results).items()}
    table, profiles = [], []
    for k, level in enumerate(c.loss_levels):
        for key in ("G", "V"):
            p = profile(at[key][..., k])
            profiles.append(p)
            table.append({"level": power(level), "measure": key, "first": k == 0 and key == "G",
                          "peak": setting(mus[p.peak]), "rise": ratio_tex(p.rise), "fall": ratio_tex(p.fall)})  # fmt: skip
    falls = [p.fall for p in profiles if p.fall is not None]
    rises = [p.rise for p in profiles if p.rise is not None and p.rise.direction == Direction.UP]
    end = {key: masked(v, ok)[rows] for key, v in final(results).items()}
    test = masked(results.test_loss, ok)[rows]
    best = int(np.argmin(geo_means(test)))
    J_ratio = geo_means(np.concatenate([at["J"][..., k] / level for k, level in enumerate(c.loss_levels)], 1))
    reg = (mus[:, None] / 4 * (end["G"] + end["V"]) / end["J"]).ravel()
    vf_over_v = geo_means(end["Vf"] / end["V"])
    return {
        "mus_first": setting(mus[0]), "mus_last": setting(mus[-1]), "n_usable": integer(len(mus)),
        "grad_rows": table, "grad_shape": shape(profiles).value,
        "peak_max": setting(mus[max(p.peak for p in profiles)]),
        "peaks_same": len({p.peak for p in profiles}) == 1,
        "fall_range": factor_range(falls, invert=True) if falls else None,
        "rise_range": factor_range(rises) if rises else None,
        "test_best_mu": setting(mus[best]), "test_best": geo_pm(test[best][np.isfinite(test[best])]),
        "test_best_interior": bool(0 < best < len(mus) - 1),
        "test_left": ratio_tex(paired_ratio(test[0], test[best]) if best > 0 else None),
        "test_right": ratio_tex(paired_ratio(test[best], test[-1]) if best < len(mus) - 1 else None),
        "test_vs_G": association_tex(association(np.log(end["G"]), test)),
        "test_vs_V": association_tex(association(np.log(end["V"]), test)),
        "best_over_noise": num(geo_means(test)[best] / results.noise_var, sig=2),
        "J_over_level_lo": num(np.nanmin(J_ratio), sig=2), "J_over_level_hi": num(np.nanmax(J_ratio), sig=2),
        "reg_over_loss_max": num(np.nanmax(reg), sig=2),
        "fixed_over_expected_lo": fixed(np.nanmin(vf_over_v), 2),
        "fixed_over_expected_hi": fixed(np.nanmax(vf_over_v), 2),
    }  # fmt: skip


def _wd_context(results: Results) -> dict:
    """(d): the setting with weight decay selected on validation, the paired effects of weight decay (against
    λ = 0 at the same μ and B, under the same stopping rule) and of early stopping (λ = 0 at its lowest validation MSE
    against its end and against the selected weight decay), and the settings table."""
    c = results.config
    val = geo_means(results.wd_val_loss)  # (n_B, n_wd_lr, n_lambda)
    zero = c.wd_lambdas.index(0.0)
    decayed = np.where(np.array(c.wd_lambdas) > 0, val, np.nan)
    sel = np.unravel_index(np.nanargmin(decayed), val.shape)  # the best setting with weight decay
    base = (sel[0], sel[1], zero)  # the same μ and B without
    overall = np.unravel_index(np.nanargmin(val), val.shape)

    def row(mu: float, batch: int, lam: float, test: np.ndarray, train: np.ndarray | None = None) -> dict:
        return {"mu": setting(mu), "B": integer(batch), "lam": setting(lam), "test": geo_pm(test),
                "train": geo_pm(train) if train is not None else None}  # fmt: skip

    B, mu, lam = c.wd_batch_sizes[sel[0]], c.wd_lrs[sel[1]], c.wd_lambdas[sel[2]]
    wd = paired_ratio(results.wd_test_loss[base], results.wd_test_loss[sel])
    es = paired_ratio(results.wd_test_loss[base], results.wd_es_test_loss[base])
    grid = [
        {"B": integer(b), "mu": setting(m), "lam": setting(lam), "selected": (i, k, n) == tuple(sel),
         "train": geo_pm(results.wd_train_loss[i, k, n]), "val": geo_pm(results.wd_val_loss[i, k, n]),
         "test": geo_pm(results.wd_test_loss[i, k, n]), "early": geo_pm(results.wd_es_test_loss[i, k, n]) if lam == 0 else None}
        for i, b in enumerate(c.wd_batch_sizes) for k, m in enumerate(c.wd_lrs) for n, lam in enumerate(c.wd_lambdas)
    ]  # fmt: skip
    return {
        "wd_grid": grid,
        "wd_rows": [  # the selected setting; the same without weight decay, to the target and early-stopped
            row(mu, B, lam, results.wd_test_loss[sel], results.wd_train_loss[sel]),
            row(mu, B, 0.0, results.wd_test_loss[base], results.wd_train_loss[base]),
            row(mu, B, 0.0, results.wd_es_test_loss[base]),  # its training MSE at the early stop is not kept
        ],
        "wd_effect": ratio_tex(wd), "es_effect": ratio_tex(es),
        "validation_prefers_decay": bool(overall[2] != zero),
        "es_vs_wd": ratio_tex(paired_ratio(results.wd_test_loss[sel], results.wd_es_test_loss[base])),
        "es_median_epoch": integer(np.median(results.wd_es_epoch[base])),
        "wd_lambda_set": in_set(r"\lambda", c.wd_lambdas), "wd_lr_set": in_set(r"\mu", c.wd_lrs),
        "wd_B_set": in_set("B", c.wd_batch_sizes),
        "wd_lambda_at_edge": bool(sel[2] == len(c.wd_lambdas) - 1),
        "wd_n_stalled": integer((results.wd_status[:, :, np.array(c.wd_lambdas) > 0] == Status.STALLED).sum()),
        "wd_n_decayed": integer(results.wd_status[:, :, np.array(c.wd_lambdas) > 0].size),
        "n_val": integer(c.n_val),
    }  # fmt: skip


def context(results: Results) -> dict:
    """Values for ``templates/sections/sgd_implicit_reg.tex.j2`` and ``templates/supplement/sgd_implicit_reg.tex.j2``."""
    c, stop = results.config, results.config.stopping
    ctx = {
        "M": integer(c.width), "B": integer(c.batch_size), "layers": integer(c.hidden_layers),
        "N": integer(c.n_train), "n_batches": integer(c.n_train // c.batch_size),
        "n_params": integer(results.n_params), "n_runs": integer(c.n_runs), "n_test": integer(c.n_test),
        "target": Tex(rf"\ensuremath{{{power(stop.target_loss)}}}"), "max_epochs": integer(stop.max_epochs),
        "check_every": integer(stop.check_every), "stall_epochs": integer(stop.stall_epochs),
        "stall_percent": num(100 * stop.stall_improvement, sig=1), "diverge_factor": setting(stop.diverge_factor),
        "window": integer(stop.window), "window_epochs": integer((stop.window - 1) * stop.check_every),
        "val_every": integer(c.val_every), "lr_set": in_set(r"\mu", c.lrs), "level_set": in_set("J", c.loss_levels, power),
        "noise_var": num(results.noise_var), "noise_std": num(results.process["noise_std"]),
        "data": data_context(results.process), "min_percent": integer(round(100 * MIN_FRACTION)),
        "level_percent": integer(round(100 * LEVEL)), "n_boot": integer(N_BOOT), "band_spread": setting(BAND_SPREAD),
        "partition_factor": Tex(r"\frac{N-B}{B(N-1)}"),
    }  # fmt: skip
    ctx["run_figures"] = run_figures(results)
    return ctx | _convergence_context(results) | _gradient_context(results) | _wd_context(results)


def run_figures(results: Results) -> list[dict[str, str]]:
    """The supplement's per-run figure pages (placed by :func:`report.supplement.figure_page`): figure name,
    label and caption, plain text with ``$...$`` math, the converged count of every μ read from the results."""
    ok = converged(results)
    counts = ", ".join(f"{mu:g}: {int(ok[j].sum())}" for j, mu in enumerate(results.config.lrs))
    target = power(results.config.stopping.target_loss)
    return [
        {
            "figure": "sgd_convergence_runs",
            "label": "sup:sgd_implicit_reg:runs",
            "caption": (
                "Training MSE of every run against the epoch, one panel per learning rate: black if the run "
                f"converged, grey if not; dotted: the target ${target}$. Converged runs of {results.config.n_runs} "
                rf"per $\mu$: {counts}."
            ),
        }
    ]
