"""Figures and report values for the implicit-regularization stage (computer assignment 2).

Reads the :class:`experiments.sgd_implicit_reg.Results` the compute module saved; the
builder calls ``FIGURES`` and ``context`` and fills ``templates/sections/sgd_implicit_reg.tex.j2``.
Statistics over runs use only the runs that reached the target loss, and only learning
rates where at least half the runs did ("usable" μ).  Every sentence of the section
that depends on the data is chosen by a value computed here.
"""

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from experiments.sgd_implicit_reg import STALL_IMPROVEMENT, Results, Status
from report.figures import figsize
from report.fmt import Tex, integer, num

TREND_THRESHOLD = 0.7  # |Spearman ρ| at or above which a trend over the μ grid counts as monotone
G_LABEL = r"$G=\|\nabla J\|^2$"
V_LABEL = r"$V=\frac{1}{N_b}\sum_b \|\nabla J_b - \nabla J\|^2$"


def _converged(results: Results) -> np.ndarray:
    """(n_lr, n_runs) True for runs that reached the target loss."""
    return results.status == Status.CONVERGED


def _usable(results: Results) -> np.ndarray:
    """(n_lr,) True for learning rates where at least half the runs converged."""
    return _converged(results).mean(axis=1) >= 0.5


def _mean_se(values: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and standard error of ``values[keep]`` (all finite values if ``keep`` is None)."""
    v = values[np.isfinite(values) if keep is None else keep]
    if len(v) == 0:
        return np.nan, np.nan
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _geo_mean_factor(values: np.ndarray) -> tuple[float, float]:
    """Geometric mean of positive ``values`` and its multiplicative standard error."""
    logs = np.log(values)
    se = logs.std(ddof=1) / np.sqrt(len(logs)) if len(logs) > 1 else 0.0
    return float(np.exp(logs.mean())), float(np.exp(se))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation of two samples without ties (NaN for fewer than two points)."""
    if len(x) < 2:
        return np.nan
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def _trend(rho: float) -> str:
    if rho <= -TREND_THRESHOLD:
        return "decreasing"
    if rho >= TREND_THRESHOLD:
        return "increasing"
    return "mixed"


def _pm(mean: float, se: float) -> Tex:
    return Tex(rf"\ensuremath{{{num(mean)} \pm {num(se, sig=2)}}}")


def _setting(x: float) -> Tex:
    """A hyperparameter as set (e.g. 0.02, 1e-04), not rounded to significant digits."""
    return Tex(rf"\num{{{x:g}}}")


def _num_list(values) -> Tex:
    """Comma-separated settings for inline math, breakable after each comma."""
    return Tex(r",\allowbreak ".join(_setting(v) for v in values))


def _lr_colours(results: Results) -> list:
    """One clearly distinct colour per learning rate (a sequential map makes neighbours alike in print)."""
    n = len(results.config.lrs)
    return list(plt.cm.tab10(np.arange(n))) if n <= 10 else list(plt.cm.viridis(np.linspace(0, 0.9, n)))


def _sci(x: float, _position: int) -> str:
    """Tick label m x 10^e in mathtext, e.g. 2e-05 -> $2\\times10^{-5}$."""
    exponent = int(np.floor(np.log10(x) + 1e-9))
    return rf"${x / 10**exponent:.0f}\times10^{{{exponent}}}$"


def _mu_label(mu: float) -> str:
    return rf"$\mu = {mu:g}$"


# --- figures -----------------------------------------------------------------------------


def plot_convergence(results: Results) -> Figure:
    """Training MSE against epochs for every μ and run (log-log), with the target loss."""
    fig, ax = plt.subplots(figsize=figsize(3.6), layout="constrained")
    epochs = results.epochs[1:]
    for mu, colour, runs in zip(results.config.lrs, _lr_colours(results), results.history, strict=True):
        for r, history in enumerate(runs):
            ax.plot(
                epochs, history[1:], color=colour, lw=0.8, alpha=0.8, label=_mu_label(mu) if r == 0 else None
            )
    ax.axhline(results.config.target_loss, color="k", ls="--", lw=0.8, label="target")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="training MSE")
    ax.legend(ncols=2, fontsize=8, loc="lower left")
    return fig


def plot_grad_norms(results: Results) -> Figure:
    """Final G and V against μ: converged runs as dots, geometric means with error bars."""
    fig, ax = plt.subplots(figsize=figsize(3.2), layout="constrained")
    ok, usable = _converged(results), _usable(results)
    mus = np.array(results.config.lrs)
    for values, marker, colour, label in [
        (results.grad_norm, "o", "C0", G_LABEL),
        (results.grad_var, "s", "C1", V_LABEL),
    ]:
        means = []
        for j in np.flatnonzero(usable):
            ax.scatter(np.full(ok[j].sum(), mus[j]), values[j][ok[j]], s=8, color=colour, alpha=0.35, lw=0)
            means.append(_geo_mean_factor(values[j][ok[j]]))
        gm, factor = np.array(means).reshape(-1, 2).T
        ax.errorbar(mus[usable], gm, yerr=[gm - gm / factor, gm * factor - gm], marker=marker, color=colour,
                    capsize=3, label=label)  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel=r"learning rate $\mu$", ylabel="final $G$ and $V$")
    ax.set_xticks(mus[usable], [f"{m:g}" for m in mus[usable]])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    return fig


def plot_test_vs_grad(results: Results) -> Figure:
    """Test MSE against final G (left) and V (right), one colour per μ."""
    fig, axes = plt.subplots(1, 2, figsize=figsize(3.2), sharey=True, layout="constrained")
    ok = _converged(results)
    for ax, values, label in zip(
        axes, (results.grad_norm, results.grad_var), (G_LABEL, V_LABEL), strict=True
    ):
        for j in np.flatnonzero(_usable(results)):
            colour = _lr_colours(results)[j]
            x, y = values[j][ok[j]], results.test_loss[j][ok[j]]
            ax.scatter(x, y, s=10, color=colour, alpha=0.4, lw=0)
            gm, factor = _geo_mean_factor(x)
            mean, se = _mean_se(y)
            ax.errorbar(gm, mean, xerr=[[gm - gm / factor], [gm * factor - gm]], yerr=se, marker="o",
                        color=colour, capsize=2, label=_mu_label(results.config.lrs[j]) if ax is axes[0] else None)  # fmt: skip
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
    """Test MSE against λ for each (B, μ) of the grid, beside the best implicit-only result."""
    fig, ax = plt.subplots(figsize=figsize(3.2), layout="constrained")
    c = results.config
    for i, batch_size in enumerate(c.wd_batch_sizes):
        for k, mu in enumerate(c.wd_lrs):
            stats = np.array([_mean_se(results.wd_test_loss[i, k, m]) for m in range(len(c.wd_lambdas))])
            label = _mu_label(mu) + (f", $B = {batch_size}$" if len(c.wd_batch_sizes) > 1 else "")
            ax.errorbar(c.wd_lambdas, stats[:, 0], yerr=stats[:, 1], marker="o", capsize=2, label=label)
    best = _implicit_best(results)
    mean, se = _mean_se(results.test_loss[best], _converged(results)[best])
    ax.axhspan(mean - se, mean + se, color="0.8")
    ax.axhline(mean, color="k", ls="--", lw=0.8, label=f"no weight decay, best $\\mu = {c.lrs[best]:g}$")
    ax.set(xscale="log", xlabel=r"weight decay $\lambda$", ylabel="test MSE")
    ax.set_xticks(c.wd_lambdas, [f"{lam:g}" for lam in c.wd_lambdas])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    return fig


FIGURES: dict[str, Callable[[Results], Figure]] = {
    "sgd_convergence": plot_convergence,
    "sgd_grad_norms": plot_grad_norms,
    "sgd_test_vs_grad": plot_test_vs_grad,
    "sgd_weight_decay": plot_weight_decay,
}


# --- report values -----------------------------------------------------------------------


def _implicit_best(results: Results) -> int:
    """Index of the usable μ with the lowest mean test MSE over its converged runs."""
    ok, usable = _converged(results), np.flatnonzero(_usable(results))
    if len(usable) == 0:
        raise ValueError("no learning rate converged in at least half of its runs: nothing to compare")
    return int(usable[np.argmin([results.test_loss[j][ok[j]].mean() for j in usable])])


def _lr_rows(results: Results) -> list[dict]:
    """One table row per μ: converged runs, epochs, final losses, gradient statistics."""
    ok, rows = _converged(results), []
    for j, mu in enumerate(results.config.lrs):
        row = {"mu": _setting(mu), "converged": integer(ok[j].sum()), "usable": bool(_usable(results)[j])}
        row["epochs"] = integer(np.median(results.stop_epoch[j][ok[j]])) if ok[j].any() else Tex("--")
        row["train"] = num(np.median(results.train_loss[j]))
        if row["usable"]:
            row["test"] = _pm(*_mean_se(results.test_loss[j], ok[j]))
            row["G"] = num(_geo_mean_factor(results.grad_norm[j][ok[j]])[0])
            row["V"] = num(_geo_mean_factor(results.grad_var[j][ok[j]])[0])
        else:
            row["test"] = row["G"] = row["V"] = Tex("--")
        rows.append(row)
    return rows


def _status_context(results: Results) -> dict:
    """Which μ diverged, stalled or ran out of epochs, and at what loss the stalled ones stopped."""
    mus = np.array(results.config.lrs)
    ctx = {}
    for name, status in [
        ("diverged", Status.DIVERGED),
        ("stalled", Status.STALLED),
        ("unfinished", Status.MAX_EPOCHS),
    ]:
        hit = (results.status == status).any(axis=1)
        ctx[f"{name}_lrs"] = _num_list(mus[hit])
        ctx[f"any_{name}"] = bool(hit.any())
    stalled = results.status == Status.STALLED
    ratio = results.train_loss[stalled] / results.history[..., 0][stalled]
    ctx["stall_loss"] = num(np.median(results.train_loss[stalled])) if stalled.any() else Tex("--")
    ctx["n_stalled"] = integer(stalled.sum())
    ctx["stalled_counts"] = [
        {"count": integer(row.sum()), "runs": integer(row.size), "mu": _setting(mu)}
        for mu, row in zip(mus, stalled, strict=True)
        if row.any()
    ]
    ctx["stall_near_initial"] = bool(stalled.any() and np.median(ratio) > 0.5)
    unfinished = results.status == Status.MAX_EPOCHS
    ctx["unfinished_loss"] = num(np.median(results.train_loss[unfinished])) if unfinished.any() else Tex("--")
    ctx["all_converged"] = bool(_converged(results).all())
    ctx["n_converged"] = integer(_converged(results).sum())
    ctx["n_total"] = integer(results.status.size)
    return ctx


def _series(results: Results, values: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per usable μ: mean and standard error over converged runs of ``values`` (of its log if ``log``)."""
    ok = _converged(results)
    rows = [values[j][ok[j]] for j in np.flatnonzero(_usable(results))]
    stats = np.array([_mean_se(np.log(v) if log else v) for v in rows]).reshape(-1, 2)
    return stats[:, 0], stats[:, 1]


def _shape(mus: np.ndarray, mean: np.ndarray, se: np.ndarray) -> str:
    """Shape of a series over μ: "peak" or "valley" when an interior extremum lies more than two
    standard errors from both ends, else the monotone trend of :func:`_trend`."""
    n = len(mean)

    def apart(i: int, j: int) -> bool:
        return abs(mean[i] - mean[j]) > 2 * np.hypot(se[i], se[j])

    for kind, k in [("peak", int(np.argmax(mean))), ("valley", int(np.argmin(mean)))] if n else []:
        if 0 < k < n - 1 and apart(k, 0) and apart(k, n - 1):
            return kind
    return _trend(_spearman(mus, mean))


def _trend_context(results: Results) -> dict:
    """Shapes over the usable μ of the final gradient statistics and the test MSE, and the epochs needed."""
    usable, ok = np.flatnonzero(_usable(results)), _converged(results)
    mus = np.array(results.config.lrs)[usable]
    logG, logG_se = _series(results, results.grad_norm, log=True)
    logV, logV_se = _series(results, results.grad_var, log=True)
    test, test_se = _series(results, results.test_loss, log=False)
    ctx = {
        "grad_norm_shape": _shape(mus, logG, logG_se),
        "grad_var_shape": _shape(mus, logV, logV_se),
        "test_shape": _shape(mus, test, test_se),
    }
    rhos = {
        "grad_norm": _spearman(mus, logG),
        "grad_var": _spearman(mus, logV),
        "grad_norm_per_loss": _spearman(
            mus, _series(results, results.grad_norm / results.train_loss, log=True)[0]
        ),
        "test": _spearman(mus, test),
        "test_vs_grad_norm": _spearman(logG, test),
        "test_vs_grad_var": _spearman(logV, test),
    }
    ctx |= {f"rho_{k}": num(v, sig=2) for k, v in rhos.items()}
    ctx |= {f"{k}_trend": _trend(v) for k, v in rhos.items() if k.startswith(("test_vs", "grad_norm_per"))}
    ctx["n_usable"] = integer(len(usable))
    ctx["usable_lrs"] = _num_list(mus)
    ctx["first_mu"], ctx["last_mu"] = (_setting(mus[k]) for k in (0, -1))
    ctx["G_ratio"] = num(np.exp(logG[0] - logG[-1]), sig=2)  # smallest over largest usable μ
    ctx["V_ratio"] = num(np.exp(logV[0] - logV[-1]), sig=2)
    peak = int(np.argmax(logG))
    ctx["G_peak_mu"] = _setting(mus[peak])
    ctx["G_rise"] = num(np.exp(logG[peak] - logG[0]), sig=2)
    ctx["G_fall"] = num(np.exp(logG[peak] - logG[-1]), sig=2)
    ratio = np.exp(logV - logG)  # (n_usable,) V / G
    ctx["V_vs_G"] = "above" if (ratio > 1).all() else "below" if (ratio < 1).all() else "mixed"
    ctx["V_G_factor"] = num(ratio.min() if (ratio > 1).all() else 1 / ratio.max(), sig=3)
    best = _implicit_best(results)
    ctx["best_mu"] = _setting(results.config.lrs[best])
    ctx["best_test"] = _pm(*_mean_se(results.test_loss[best], ok[best]))
    ctx["best_test_over_noise"] = num(results.test_loss[best][ok[best]].mean() / results.noise_var, sig=2)
    ctx["last_test"] = _pm(test[-1], test_se[-1])
    # Epochs to the target up to the fastest μ, against the 1/μ of gradient flow run at speed μ.
    epochs = np.array([np.median(results.stop_epoch[j][ok[j]]) for j in usable])
    fastest = int(np.argmin(epochs))
    slope = np.polyfit(np.log(mus[: fastest + 1]), np.log(epochs[: fastest + 1]), 1)[0] if fastest else np.nan
    ctx["fastest_mu"] = _setting(mus[fastest])
    ctx["fastest_epochs"] = integer(epochs[fastest])
    ctx["slower_beyond_fastest"] = bool(fastest < len(mus) - 1)
    ctx["epochs_slope"] = num(slope, sig=2)
    ctx["epochs_slope_near_minus_one"] = bool(abs(slope + 1) < 0.25)
    # The implicit regularizer (μ/4)(G + V) relative to the training loss at the solutions.
    reg = (
        np.array(results.config.lrs)[:, None]
        / 4
        * (results.grad_norm + results.grad_var)
        / results.train_loss
    )
    ctx["reg_over_loss_max"] = num(np.max(reg[ok]), sig=2)
    return ctx


def _wd_context(results: Results) -> dict:
    """Best weight-decay setting, its neighbours in the grid, and the verdict against no weight decay."""
    c = results.config
    mean = results.wd_test_loss.mean(axis=-1)  # (n_B, n_wd_lr, n_lambda)
    i, k, m = np.unravel_index(np.nanargmin(mean), mean.shape)

    def row(i: int, k: int, m: int, note: str) -> dict:
        return {
            "B": integer(c.wd_batch_sizes[i]), "mu": _setting(c.wd_lrs[k]), "lam": _setting(c.wd_lambdas[m]),
            "train": num(results.wd_train_loss[i, k, m].mean()), "test": _pm(*_mean_se(results.wd_test_loss[i, k, m])),
            "note": Tex(note), "best": note == "best",
        }  # fmt: skip

    rows = [row(i, k, m, "best")]
    neighbours = [(0, 0, -1, r"smaller $\lambda$"), (0, 0, 1, r"larger $\lambda$"), (0, -1, 0, r"smaller $\mu$"),
                  (0, 1, 0, r"larger $\mu$"), (-1, 0, 0, "smaller $B$"), (1, 0, 0, "larger $B$")]  # fmt: skip
    for di, dk, dm, note in neighbours:
        j = (i + di, k + dk, m + dm)
        if all(0 <= a < n for a, n in zip(j, mean.shape, strict=True)):
            rows.append(row(*j, note))
    ctx = {
        "wd_rows": rows,
        "wd_best": rows[0],
        "wd_lambdas": _num_list(c.wd_lambdas),
        "wd_lrs": _num_list(c.wd_lrs),
    }
    ctx["wd_batch_sizes"] = Tex(", ".join(integer(b) for b in c.wd_batch_sizes))
    ctx["wd_best_lambda_at_edge"] = bool(m in (0, len(c.wd_lambdas) - 1))
    ctx["wd_any_diverged"] = bool((results.wd_status == Status.DIVERGED).any())
    ctx["wd_median_epochs"] = integer(np.median(results.wd_stop_epoch))
    ctx["wd_best_interpolates"] = bool(results.wd_train_loss[i, k, m].mean() < 10 * c.target_loss)
    ctx["wd_n_max_epochs"] = integer((results.wd_status == Status.MAX_EPOCHS).sum())
    ctx["wd_best_capped"] = bool((results.wd_status[i, k, m] == Status.MAX_EPOCHS).any())
    ctx["wd_single_B"] = len(c.wd_batch_sizes) == 1
    ctx["wd_n_total"] = integer(results.wd_status.size)
    best = _implicit_best(results)
    # Paired by run: both use the same training data and initialization.
    diff = results.wd_test_loss[i, k, m] - results.test_loss[best]
    keep = _converged(results)[best]
    d_mean, d_se = _mean_se(diff, keep)
    if d_mean < -2 * d_se:
        ctx["wd_verdict"] = "wd_better"
    elif d_mean > 2 * d_se:
        ctx["wd_verdict"] = "implicit_better"
    else:
        ctx["wd_verdict"] = "tie"
    ctx["wd_diff"] = _pm(d_mean, d_se)
    ctx["wd_gain"] = _pm(-d_mean, d_se)
    implicit_test = results.test_loss[best][keep].mean()
    ctx["gap_closed"] = integer(round(100 * -d_mean / (implicit_test - results.noise_var)))
    ctx["implicit_row"] = {
        "B": integer(c.batch_size), "mu": _setting(c.lrs[best]), "lam": _setting(0.0),
        "train": num(results.train_loss[best][keep].mean()), "test": _pm(*_mean_se(results.test_loss[best], keep)),
        "note": Tex(r"no weight decay, best $\mu$"), "best": False,
    }  # fmt: skip
    return ctx


def context(results: Results) -> dict:
    """Values for ``templates/sections/sgd_implicit_reg.tex.j2``."""
    c = results.config
    ctx = {
        "M": integer(c.width), "B": integer(c.batch_size), "layers": integer(c.hidden_layers),
        "N": integer(c.n_train), "n_batches": integer(c.n_train // c.batch_size), "n_params": integer(results.n_params),
        "n_runs": integer(c.n_runs), "n_test": integer(c.n_test), "target": _setting(c.target_loss),
        "max_epochs": integer(c.max_epochs), "check_every": integer(c.check_every),
        "stall_epochs": integer(c.stall_epochs), "stall_percent": num(100 * STALL_IMPROVEMENT, sig=1), "diverge_factor": _setting(c.diverge_factor),
        "wd_max_epochs": integer(c.wd_max_epochs), "wd_stall_epochs": integer(c.wd_stall_epochs),
        "lrs": _num_list(c.lrs),
        "noise_var": num(results.noise_var), "noise_std": num(results.process["noise_std"]),
        "lr_rows": _lr_rows(results),
    }  # fmt: skip
    return ctx | _status_context(results) | _trend_context(results) | _wd_context(results)
