"""Statistics and report values of the implicit-regularization stage (computer assignment 2).

Reads the :class:`experiments.sgd_implicit_reg.Results` the compute module saved; ``context``
fills ``templates/sections/sgd_implicit_reg.tex.j2``.  J, G, V and V_fix are geometric means
over each level's window of checks (:attr:`Stopping.window`); the final values are the window
at the target loss.  A run *converged* when a check fell below the target loss (every level is
crossed on the way).  Learning rates where at least ``MIN_FRACTION`` of the runs converged are
"usable"; every comparison across μ uses the usable μ and only the *common* runs, those that
converged at every usable μ (:func:`common_runs`), so each μ contributes the same runs.  The
verdicts are recomputed on all converged runs as a check (:func:`verdicts`).
Every word that calls a relation or a difference *clear* is chosen by a printed rule:

* a rank correlation ρ of per-μ means is clear when its permutation p-value is below
  ``ALPHA`` and its 95 % bootstrap interval (``N_BOOT`` resamples of the runs within each μ)
  excludes zero;
* a difference between two settings is paired over the runs both include, and clear when its
  sign-flip permutation p-value is below ``ALPHA``.

The tests are :mod:`lab.stats`'s (exact for up to 8 learning rates and 16 runs).
"""

from dataclasses import dataclass

import numpy as np

from experiments.data_plot import context as data_context
from experiments.sgd_implicit_reg import Results, Status
from lab.fmt import Tex, in_set, integer, num, pm, power, setting
from lab.stats import Trend, geo_mean_factor, mean_se, rank_p, sign_flip_p, spearman, spearman_rows
from lab.stats import trend as stats_trend

MIN_FRACTION = 0.5  # a μ is usable where at least this fraction of its runs converged
ALPHA = 0.05  # significance level of the permutation tests
N_BOOT = 4000  # bootstrap resamples (rank correlations, the epochs-vs-μ slope)
BOOT_SEED = 0  # the bootstrap's generator: the intervals are reproducible


def converged(results: Results) -> np.ndarray:
    """(n_lr, n_runs) True for runs that reached the target loss."""
    return results.status == Status.CONVERGED


def usable(reached: np.ndarray) -> np.ndarray:
    """(n_lr,) True for learning rates where at least ``MIN_FRACTION`` of the runs are ``reached``."""
    return reached.mean(axis=1) >= MIN_FRACTION


def common_runs(results: Results) -> np.ndarray:
    """(n_lr, n_runs) True at usable μ for the runs that converged at every usable μ."""
    ok = converged(results)
    use = usable(ok)
    return use[:, None] & ok[use].all(axis=0)[None, :]


def window_mean(values: np.ndarray) -> np.ndarray:
    """Geometric mean over the last axis (a level's window) of the finite entries; NaN if none."""
    logs = np.log(values)
    ok = np.isfinite(logs)
    n = ok.sum(-1)
    return np.where(n > 0, np.exp(np.where(ok, logs, 0.0).sum(-1) / np.maximum(n, 1)), np.nan)


def level_values(results: Results) -> dict[str, np.ndarray]:
    """Window means "J", "G", "V", "Vf": (n_lr, n_runs, n_levels) each."""
    fields = {"J": "level_loss", "G": "level_grad_norm", "V": "level_grad_var", "Vf": "level_grad_var_fixed"}
    return {k: window_mean(getattr(results, f)) for k, f in fields.items()}


def final(results: Results) -> dict[str, np.ndarray]:
    """Window means "J", "G", "V", "Vf" at the target loss: (n_lr, n_runs) each, NaN where not reached."""
    k = results.config.loss_levels.index(results.config.stopping.target_loss)
    return {key: v[..., k] for key, v in level_values(results).items()}


@dataclass(frozen=True)
class Corr:
    """Rank correlation of per-μ means, its 95 % bootstrap interval and exact permutation p-value."""

    rho: float
    lo: float
    hi: float
    p: float
    n: int  # points (learning rates)

    @property
    def clear(self) -> bool:
        return bool(self.p < ALPHA and (self.lo > 0 or self.hi < 0))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> Corr:
    """Spearman ρ between the per-row means of ``x`` and ``y`` (n_points, n_runs), over the runs
    where both are finite; the bootstrap resamples those runs within each row.

    The bootstrap is drawn here rather than by :func:`lab.stats.bootstrap_interval`
    (``scipy.stats.bootstrap``): over few learning rates every resample often gives the same ρ
    (±1), a degenerate distribution for which scipy returns no interval, and a μ may keep a single
    run, which scipy refuses to resample.
    """
    rng = np.random.default_rng(BOOT_SEED)
    keep = np.isfinite(x) & np.isfinite(y)
    boot_x, boot_y = [], []
    for xr, yr, k in zip(x, y, keep, strict=True):
        idx = rng.integers(0, k.sum(), size=(N_BOOT, k.sum()))
        boot_x.append(xr[k][idx].mean(1))
        boot_y.append(yr[k][idx].mean(1))
    mx = np.array([xr[k].mean() for xr, k in zip(x, keep, strict=True)])
    my = np.array([yr[k].mean() for yr, k in zip(y, keep, strict=True)])
    lo, hi = np.quantile(spearman_rows(np.array(boot_x).T, np.array(boot_y).T), [0.025, 0.975])
    return Corr(spearman(mx, my), float(lo), float(hi), rank_p(mx, my), len(mx))


def against_mu(mus: np.ndarray, values: np.ndarray) -> Corr:
    """:func:`rank_correlation` of ``values`` (n_mu, n_runs; NaN where left out) against μ."""
    return rank_correlation(np.broadcast_to(mus[:, None], values.shape).copy(), values)


@dataclass(frozen=True)
class Paired:
    """Mean and standard error of a per-run difference over the runs both settings include,
    with the exact sign-flip p-value."""

    mean: float
    se: float
    p: float
    n: int

    @property
    def verdict(self) -> str:
        """ "lower", "higher" or "tie" by the sign-flip test at ``ALPHA``."""
        if not self.p < ALPHA:
            return "tie"
        return "lower" if self.mean < 0 else "higher"


def paired(a: np.ndarray, b: np.ndarray) -> Paired:
    """Per-run difference a − b (same data and initialization) over the runs where both are finite."""
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    return Paired(*mean_se(d), sign_flip_p(d, alternative="two-sided"), len(d))


def corr_tex(c: Corr) -> Tex:
    """ρ, its interval and p, e.g. "ρ = −0.94, 95 % interval −1 to −0.77, p = 0.017"."""
    return Tex(
        rf"$\rho={num(c.rho, sig=2)}$, 95\,\% interval ${num(c.lo, sig=2)}$ to ${num(c.hi, sig=2)}$,"
        rf" $p={num(c.p, sig=2)}$"
    )


def relation(c: Corr) -> Tex:
    """A correlation in words by the printed rule, e.g. "a clear decrease (ρ = −0.9, …)"."""
    text = f"a clear {'decrease' if c.rho < 0 else 'increase'}" if c.clear else "no clear trend"
    return Tex(rf"{text} ({corr_tex(c)})")


def trend(c: Corr) -> Trend:
    """The :func:`lab.stats.trend` of a clear relation's sign; "mixed" for one that is not clear."""
    return stats_trend([c.rho] if c.clear else [])


def shape(values: np.ndarray, c: Corr) -> str:
    """ "peak" or "valley" when the interior extreme of the per-μ means of ``values`` (n_mu, n_runs)
    differs clearly (:func:`paired`) from both ends, else the :func:`trend` of ``c``."""
    mean = np.array([v[np.isfinite(v)].mean() for v in values])
    n = len(mean)
    for kind, k in [("peak", int(np.argmax(mean))), ("valley", int(np.argmin(mean)))] if n else []:
        if 0 < k < n - 1 and all(paired(values[k], values[e]).p < ALPHA for e in (0, n - 1)):
            return kind
    return trend(c)


def paired_tex(d: Paired, n_runs: int, parens: bool = True) -> Tex:
    """A paired difference with its p-value (in parentheses or after a comma), naming the runs
    when not all are included."""
    runs = "" if d.n == n_runs else rf", {integer(d.n)} common runs"
    p = rf"$p={num(d.p, sig=2)}${runs}"
    return Tex(rf"{pm(d.mean, d.se)} ({p})" if parens else rf"{pm(d.mean, d.se)}, {p}")


def change(ratio: float) -> Tex:
    """A ratio last/first in words: "falling by a factor 4.7" or "rising by a factor 1.2"."""
    return Tex(
        f"falling by a factor {num(1 / ratio, sig=2)}"
        if ratio < 1
        else f"rising by a factor {num(ratio, sig=2)}"
    )


def masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` with NaN where not ``keep``."""
    return np.where(keep, values, np.nan)


# --- context -------------------------------------------------------------------------------


def implicit_best(results: Results, loss: np.ndarray) -> int:
    """Index of the usable μ with the lowest mean ``loss`` (validation or test) over the common runs."""
    ok, rows = common_runs(results), np.flatnonzero(usable(converged(results)))
    if len(rows) == 0:
        raise ValueError("no learning rate converged in enough runs: nothing to compare")
    return int(rows[np.argmin([loss[j][ok[j]].mean() for j in rows])])


def target_epoch(results: Results) -> np.ndarray:
    """(n_lr, n_runs) epoch of the first check below the target loss (NaN where never)."""
    return results.level_epoch[..., results.config.loss_levels.index(results.config.stopping.target_loss)]


def _lr_rows(results: Results) -> list[dict]:
    """One table row per μ over its converged runs: their number, median epochs, the largest first
    check below the target (the evidence of convergence), the window geometric means of J, G, V and
    V_fix at the target (geometric means over runs), and the test MSE."""
    ok, use, rows, end = converged(results), usable(converged(results)), [], final(results)
    reach = target_epoch(results)
    crossing = results.level_loss[
        ..., results.config.loss_levels.index(results.config.stopping.target_loss), 0
    ]
    for j, mu in enumerate(results.config.lrs):
        row = {"mu": setting(mu), "converged": integer(ok[j].sum()), "usable": bool(use[j])}
        row["epochs"] = integer(np.median(reach[j][ok[j]])) if ok[j].any() else Tex("--")
        if use[j]:
            row["cross"] = num(crossing[j][ok[j]].max())
            row["test"] = pm(*mean_se(results.test_loss[j], ok[j]))
            for key in ("J", "G", "V", "Vf"):
                row[key] = num(geo_mean_factor(end[key][j][ok[j]])[0])
        else:
            row |= dict.fromkeys(("cross", "J", "test", "G", "V", "Vf"), Tex("--"))
        rows.append(row)
    return rows


def _status_context(results: Results) -> dict:
    """Per learning rate with unconverged runs: how many stalled, diverged or ran out of epochs."""
    mus, ok = np.array(results.config.lrs), converged(results)
    notes = []
    for j in np.flatnonzero(~ok.all(axis=1)):
        counts = [
            (int((results.status[j] == status).sum()), word)
            for status, word in [
                (Status.STALLED, "stalled"),
                (Status.DIVERGED, "diverged"),
                (Status.MAX_EPOCHS, "were still improving at the budget"),
            ]
        ]
        parts = [f"{integer(n)} {word}" for n, word in counts if n]
        parts[0] = parts[0].replace(" ", f" of the {integer(results.config.n_runs)} runs ", 1)
        done = ~ok[j] & (results.status[j] != Status.DIVERGED)
        loss = None
        if done.any():
            whose = "of the others " if (results.status[j] == Status.DIVERGED).any() else ""
            loss = Tex(f"median final training MSE {whose}{num(np.median(results.train_loss[j][done]))}")
        notes.append({"mu": in_set(r"\mu", [mus[j]]), "what": Tex(" and ".join(parts)), "loss": loss})
    return {
        "status_notes": notes,
        "all_converged": bool(ok.all()),
        "n_converged": integer(ok.sum()),
        "n_total": integer(results.status.size),
        "any_stalled": bool((results.status == Status.STALLED).any()),
        "any_diverged": bool((results.status == Status.DIVERGED).any()),
    }


def _peak(values: np.ndarray, mus: np.ndarray) -> dict | None:
    """The paired test of an interior maximum of the per-μ means of ``values`` (n_mu, n_runs, logs)
    against both ends: its μ, both differences (as factors) with their p-values, and whether it is clear."""
    mean = np.nanmean(values, 1)
    k = int(np.argmax(mean))
    if not 0 < k < len(mean) - 1:
        return None
    ends = [(e, paired(values[k], values[e])) for e in (0, len(mean) - 1)]
    return {
        "mu": setting(mus[k]), "is_clear": all(d.verdict == "higher" for _, d in ends),
        "ends": [{"mu": setting(mus[e]), "factor": num(np.exp(d.mean), sig=2), "p": num(d.p, sig=2)}
                 for e, d in ends],
    }  # fmt: skip


def _level_logs(results: Results, keep: np.ndarray) -> dict[str, np.ndarray]:
    """log J, G, V, V_fix window means at the usable μ for the runs ``keep``: (n_usable, n_runs, n_levels)."""
    rows = np.flatnonzero(usable(converged(results)))
    return {key: np.log(masked(v, keep[..., None]))[rows] for key, v in level_values(results).items()}


def verdicts(results: Results, keep: np.ndarray) -> dict[str, list[str]]:
    """Trend words of G and V at each level and the shape of the test MSE over the usable μ, using
    the runs ``keep`` (the check of the common-run statistics on all converged runs)."""
    mus = np.array(results.config.lrs)[usable(converged(results))]
    logs = _level_logs(results, keep)
    out = {
        key: [trend(against_mu(mus, logs[key][..., k])) for k in range(logs[key].shape[-1])] for key in "GV"
    }
    test = masked(results.test_loss, keep)[usable(converged(results))]
    return out | {"test": [shape(test, against_mu(mus, test))]}


WORDS = {"decreasing": "a clear decrease", "increasing": "a clear increase", "mixed": "no clear trend",
         "peak": "a peak", "valley": "a valley"}  # fmt: skip


def _level_context(results: Results) -> dict:
    """Trends of G and V over the usable μ at each matched loss level (window means, the common
    runs), peak tests, G/J and V/J at the target, the μ left out, and the check on all converged runs."""
    c, ok, keep = results.config, converged(results), common_runs(results)
    mus_all, rows = np.array(c.lrs), np.flatnonzero(usable(ok))
    mus, logs = mus_all[rows], _level_logs(results, keep)
    left_out = [{"mu": setting(mus_all[j]), "n": integer(ok[j].sum())} for j in np.flatnonzero(~usable(ok))]
    levels = []
    for k, level in enumerate(c.loss_levels):
        G, V, J = logs["G"][..., k], logs["V"][..., k], logs["J"][..., k]
        corr_G, corr_V = against_mu(mus, G), against_mu(mus, V)
        mG, mV = np.nanmean(G, 1), np.nanmean(V, 1)
        J_ratio = np.exp(np.nanmean(J, 1)) / level  # per μ: the window's geometric-mean J over the level
        levels.append({
            "level": power(level), "value": level, "G": relation(corr_G), "V": relation(corr_V),
            "G_trend": trend(corr_G), "V_trend": trend(corr_V), "G_corr": corr_tex(corr_G), "V_corr": corr_tex(corr_V), "G_rho": num(corr_G.rho, sig=2),
            "G_p": num(corr_G.p, sig=2), "G_peak": _peak(G, mus), "V_peak": _peak(V, mus),
            "G_small": num(np.exp(mG[1] - mG[0]), sig=2), "mu0": setting(mus[0]), "mu1": setting(mus[1]),
            "V_change": change(np.exp(mV[-1] - mV[0])), "first": setting(mus[0]), "last": setting(mus[-1]),
            "J_lo": num(J_ratio.min(), sig=2), "J_hi": num(J_ratio.max(), sig=2),
        })  # fmt: skip
    ctx = {"levels": levels, "left_out": left_out, "window": integer(c.stopping.window),
           "window_epochs": integer((c.stopping.window - 1) * c.stopping.check_every),
           "n_common": integer(keep[rows[0]].sum()) if len(rows) else integer(0),
           "common_is_all": bool((keep[rows] == ok[rows]).all()),
           "min_sign_p": num(2 / 2 ** keep[rows[0]].sum(), sig=2) if len(rows) else None,
           "min_rank_p": num(rank_p(np.arange(len(rows)), np.arange(len(rows))), sig=2), "n_usable": integer(len(rows))}  # fmt: skip
    rises = [e["G_peak"] for e in levels if e["G_peak"] and e["G_trend"] != "decreasing"]
    ctx["G_rises_first"], ctx["G_rise_clear"] = bool(rises), any(pk["is_clear"] for pk in rises)
    for key in ("G", "V"):
        for word in ("decreasing", "increasing", "mixed"):
            at = [e["value"] for e in levels if e[f"{key}_trend"] == word]
            ctx[f"levels_{key}_{word}"] = in_set("J", at, power) if at else None
        ctx[f"all_{key}_hold"] = bool(levels) and all(e[f"{key}_trend"] == "decreasing" for e in levels)
        ctx[f"{key}_unclear"] = [e for e in levels if e[f"{key}_trend"] == "mixed"]
    end = {key: masked(v, keep)[rows] for key, v in final(results).items()}
    for key in ("G", "V"):
        ctx[f"end_{key}_per_J"] = relation(against_mu(mus, np.log(end[key] / end["J"])))
    vf, v = (
        np.array([geo_mean_factor(x[j][ok[j]])[0] for j in rows])
        for x in (final(results)["Vf"], final(results)["V"])
    )
    ctx["fixed_over_expected_min"] = num((vf / v).min(), sig=3)  # per usable μ, as in the table
    ctx["fixed_over_expected_max"] = num((vf / v).max(), sig=3)
    reg = mus[:, None] / 4 * (end["G"] + end["V"]) / end["J"]
    ctx["reg_over_loss_max"] = num(np.nanmax(reg), sig=2)
    same, differ = verdicts(results, keep), verdicts(results, ok & usable(ok)[:, None])
    ctx["all_runs_agree"] = same == differ
    ctx["all_runs_differ"] = Tex(", ".join(
        f"{'the test MSE' if key == 'test' else f'${key}$ at $J={power(c.loss_levels[k])}$'}"
        f" ({WORDS[a]} rather than {WORDS[b]})"
        for key in same for k, (a, b) in enumerate(zip(same[key], differ[key], strict=True)) if a != b
    ))  # fmt: skip
    return ctx


def _test_context(results: Results) -> dict:
    """Test MSE over μ (its minimiser and both ends, paired over common runs) and against the final
    G and V; epochs to the target."""
    c, ok = results.config, common_runs(results)
    rows = np.flatnonzero(usable(converged(results)))
    mus = np.array(c.lrs)[rows]
    test = masked(results.test_loss, ok)[rows]  # (n_usable, n_runs)
    end = {key: np.log(masked(v, ok)[rows]) for key, v in final(results).items()}
    n_common = int(ok[rows[0]].sum())
    best = implicit_best(results, results.test_loss)
    k = int(np.argmin(np.nanmean(test, 1)))  # the minimiser among the usable μ

    def side(i: int) -> dict:
        """An end of the usable grid against the minimum: its test MSE and the paired difference."""
        d = paired(test[i], test[k])
        return {"mu": setting(mus[i]), "test": pm(*mean_se(test[i])), "diff": paired_tex(d, n_common, parens=False),
                "above": d.verdict == "higher"}  # fmt: skip

    corr_test = against_mu(mus, test)
    ctx = {
        "usable_set": in_set(r"\mu", mus), "test_shape": shape(test, corr_test), "test_vs_mu": relation(corr_test),
        "test_min_interior": bool(0 < k < len(mus) - 1), "test_left": side(0), "test_right": side(len(mus) - 1),
        "test_other": side(len(mus) - 1 if k == 0 else 0),
        "test_vs_G": relation(corr_G := rank_correlation(end["G"], test)),
        "test_vs_V": relation(corr_V := rank_correlation(end["V"], test)),
        "test_follows_grads": corr_G.clear and corr_V.clear and corr_G.rho > 0 and corr_V.rho > 0,
        "best_mu": setting(c.lrs[best]), "best_test": pm(*mean_se(results.test_loss[best], ok[best])),
        "best_test_over_noise": num(results.test_loss[best][ok[best]].mean() / results.noise_var, sig=2),
    }  # fmt: skip
    reach = masked(target_epoch(results), ok)[rows]  # (n_usable, n_runs)
    epochs = np.nanmedian(reach, 1)
    fastest = int(np.argmin(epochs))
    ctx |= {
        "fastest_mu": setting(mus[fastest]), "fastest_epochs": integer(epochs[fastest]),
        "slower_beyond_fastest": bool(fastest < len(mus) - 1), "slope_vs_flow": None,
    }  # fmt: skip
    if fastest >= 2:  # a slope needs at least three learning rates up to the fastest
        slope, lo, hi = epochs_slope(mus[: fastest + 1], reach[: fastest + 1])
        vs_flow = "shallower" if lo > -1 else "steeper" if hi < -1 else "consistent"
        ctx |= {"epochs_slope": num(slope, sig=2), "slope_lo": num(lo, sig=2), "slope_hi": num(hi, sig=2),
                "slope_vs_flow": vs_flow}  # fmt: skip
    return ctx


def epochs_slope(mus: np.ndarray, epochs: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope of log median epochs against log μ (``epochs``: n_mu, n_runs, NaN where
    left out) and its 95 % bootstrap interval (runs resampled within each μ)."""
    rng = np.random.default_rng(BOOT_SEED)
    x = np.log(mus)
    medians = []
    for row in epochs:
        v = row[np.isfinite(row)]
        medians.append(np.median(v[rng.integers(0, len(v), size=(N_BOOT, len(v)))], axis=1))
    boot = np.polyfit(x, np.log(np.array(medians)), 1)[0]  # (N_BOOT,)
    slope = np.polyfit(x, np.log(np.nanmedian(epochs, 1)), 1)[0]
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return float(slope), float(lo), float(hi)


def _wd_context(results: Results) -> dict:
    """Settings of (d) selected on validation and on test, and the paired effects of weight decay
    and of early stopping (λ = 0, lowest validation MSE) at the selected (B, μ)."""
    c = results.config
    val, test = results.wd_val_loss.mean(-1), results.wd_test_loss.mean(-1)  # (n_B, n_wd_lr, n_lambda)
    sel = np.unravel_index(np.nanargmin(val), val.shape)
    by_test = np.unravel_index(np.nanargmin(test), test.shape)
    zero = c.wd_lambdas.index(0.0)
    base = (sel[0], sel[1], zero)  # λ = 0 under the same stopping rule at the selected (B, μ)

    def row(idx: tuple, note: str, bold: bool = False, early: bool = False) -> dict:
        i, k, m = idx
        test_loss = (results.wd_es_test_loss if early else results.wd_test_loss)[idx]
        return {
            "B": integer(c.wd_batch_sizes[i]), "mu": setting(c.wd_lrs[k]), "lam": setting(c.wd_lambdas[m]),
            "train": Tex(r"n.r.") if early else pm(*mean_se(results.wd_train_loss[idx])),
            "test": pm(*mean_se(test_loss)), "note": Tex(note), "best": bold,
        }  # fmt: skip

    rows = []  # every λ of the grid at the selected (B, μ), the early-stopped λ = 0 after λ = 0
    for m in range(len(c.wd_lambdas)):
        idx = (sel[0], sel[1], m)
        note = "best on validation" if m == sel[2] else r"$\lambda=0$, same rule" if m == zero else ""
        rows.append(row(idx, note, bold=m == sel[2]))
        if m == zero:
            rows.append(row(base, r"$\lambda=0$, early-stopped", early=True))
    if by_test != sel:
        rows.append(row(by_test, "best on test"))
    ok = converged(results)
    best = implicit_best(results, results.val_loss)  # no-weight-decay μ of (b) selected on validation
    decayed = np.array(c.wd_lambdas) != 0
    ctx = {
        "wd_rows": rows, "wd_best": rows[[r["best"] for r in rows].index(True)], "wd_lambda_set": in_set(r"\lambda", c.wd_lambdas),
        "wd_lr_set": in_set(r"\mu", c.wd_lrs), "wd_B_set": in_set("B", c.wd_batch_sizes),
        "wd_test_selected_differs": by_test != sel,
        "wd_best_lambda_at_edge": bool(sel[2] == len(c.wd_lambdas) - 1 or (sel[2] == 1 and zero == 0)),
        "wd_any_diverged": bool((results.wd_status == Status.DIVERGED).any()),
        "wd_median_epochs": integer(np.median(results.wd_stop_epoch[:, :, decayed])),
        "wd_n_stalled": integer((results.wd_status[:, :, decayed] == Status.STALLED).sum()),
        "wd_n_max_epochs": integer((results.wd_status[:, :, decayed] == Status.MAX_EPOCHS).sum()),
        "wd_n_decayed": integer(results.wd_status[:, :, decayed].size),
        "wd_best_interpolates": bool(results.wd_train_loss[sel].mean() < 10 * c.stopping.target_loss),
        "wd_shares_b": c.batch_size in c.wd_batch_sizes and 0.0 in c.wd_lambdas and set(c.wd_lrs) <= set(c.lrs),
        "n_val": integer(c.n_val),
    }  # fmt: skip
    effects = {
        "wd": paired(results.wd_test_loss[sel], results.wd_test_loss[base]),
        "es": paired(results.wd_es_test_loss[base], results.wd_test_loss[base]),
        "wd_vs_es": paired(results.wd_test_loss[sel], results.wd_es_test_loss[base]),
        "total": paired(results.wd_test_loss[sel], masked(results.test_loss[best], ok[best])),
    }
    for key, d in effects.items():
        ctx[f"{key}_effect"] = paired_tex(d, c.n_runs)
        ctx[f"{key}_verdict"] = d.verdict
    ctx["es_median_epoch"] = integer(np.median(results.wd_es_epoch[base]))
    ctx["es_median_stop"] = integer(np.median(results.wd_stop_epoch[base]))
    ctx["wd_verdict"] = {"lower": "wd_better", "higher": "implicit_better", "tie": "tie"}[
        ctx["total_verdict"]
    ]
    implicit_test = results.test_loss[best][ok[best]].mean()
    ctx["gap_closed"] = integer(round(100 * -effects["total"].mean / (implicit_test - results.noise_var)))
    ctx["implicit_row"] = {
        "B": integer(c.batch_size), "mu": setting(c.lrs[best]), "lam": setting(0.0),
        "train": pm(*mean_se(results.train_loss[best], ok[best])), "test": pm(*mean_se(results.test_loss[best], ok[best])),
        "note": Tex(r"(b), to target"), "best": False,
    }  # fmt: skip
    ctx["implicit_mu"] = setting(c.lrs[best])
    return ctx


def context(results: Results) -> dict:
    """Values for ``templates/sections/sgd_implicit_reg.tex.j2``."""
    c, stop = results.config, results.config.stopping
    ctx = {
        "M": integer(c.width), "B": integer(c.batch_size), "layers": integer(c.hidden_layers),
        "N": integer(c.n_train), "n_batches": integer(c.n_train // c.batch_size), "n_params": integer(results.n_params),
        "n_runs": integer(c.n_runs), "n_test": integer(c.n_test), "target": Tex(rf"\ensuremath{{{power(stop.target_loss)}}}"),
        "max_epochs": integer(stop.max_epochs), "check_every": integer(stop.check_every),
        "stall_epochs": integer(stop.stall_epochs), "stall_percent": num(100 * stop.stall_improvement, sig=1),
        "diverge_factor": setting(stop.diverge_factor), "val_every": integer(c.val_every),
        "lr_set": in_set(r"\mu", c.lrs), "level_set": in_set("J", c.loss_levels, power),
        "noise_var": num(results.noise_var), "noise_std": num(results.process["noise_std"]),
        "data": data_context(results.process),
        "lr_rows": _lr_rows(results), "min_percent": integer(round(100 * MIN_FRACTION)),
        "alpha": setting(ALPHA), "n_boot": integer(N_BOOT),
        "partition_factor": Tex(r"\frac{N-B}{B(N-1)}"),
    }  # fmt: skip
    return (
        ctx
        | _status_context(results)
        | _level_context(results)
        | _test_context(results)
        | _wd_context(results)
    )
