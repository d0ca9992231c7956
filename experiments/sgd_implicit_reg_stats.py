"""Statistics and report values of the implicit-regularization stage (computer assignment 2).

Reads the :class:`experiments.sgd_implicit_reg.Results` the compute module saved; ``context``
fills ``templates/sections/sgd_implicit_reg.tex.j2``.  Statistics over runs use only the
runs that reached the target loss (or, at a loss level, the runs that crossed it), and only
learning rates where at least ``MIN_FRACTION`` of the runs did ("usable" μ).  Every sentence
of the section that depends on the data is chosen by a value computed here, and every rule
that chooses a word (``CLEAR``, ``WEAK``, ``APART_SE``) is printed in the report.
"""

import numpy as np

from experiments.data import context as data_context
from experiments.sgd_implicit_reg import STALL_IMPROVEMENT, Results, Status
from report.fmt import Tex, integer, num

MIN_FRACTION = 0.5  # a μ is usable where at least this fraction of its runs converged
CLEAR = 0.7  # |Spearman ρ| at or above which a relation is called clear
WEAK = 0.4  # |ρ| at or above which (and below CLEAR) it is called weak; below: none
APART_SE = 2.0  # two means differ when they are this many combined standard errors apart


def converged(results: Results) -> np.ndarray:
    """(n_lr, n_runs) True for runs that reached the target loss."""
    return results.status == Status.CONVERGED


def usable(reached: np.ndarray) -> np.ndarray:
    """(n_lr,) True for learning rates where at least ``MIN_FRACTION`` of the runs are ``reached``."""
    return reached.mean(axis=1) >= MIN_FRACTION


def mean_se(values: np.ndarray, keep: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and standard error of ``values[keep]`` (all finite values if ``keep`` is None)."""
    v = values[np.isfinite(values) if keep is None else keep]
    if len(v) == 0:
        return np.nan, np.nan
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def geo_mean_factor(values: np.ndarray) -> tuple[float, float]:
    """Geometric mean of positive ``values`` and its multiplicative standard error."""
    logs = np.log(values)
    se = logs.std(ddof=1) / np.sqrt(len(logs)) if len(logs) > 1 else 0.0
    return float(np.exp(logs.mean())), float(np.exp(se))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation of two samples without ties (NaN for fewer than two points)."""
    if len(x) < 2:
        return np.nan
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def strength(rho: float) -> str:
    """ "clear", "weak" or "none" by |ρ| against ``CLEAR`` and ``WEAK``."""
    return "clear" if abs(rho) >= CLEAR else "weak" if abs(rho) >= WEAK else "none"


def relation(rho: float) -> Tex:
    """A correlation in words by the printed rule, e.g. "a clear decrease (ρ = −0.9)"."""
    word = strength(rho)
    text = "no monotone relation" if word == "none" else f"a {word} {'decrease' if rho < 0 else 'increase'}"
    return Tex(rf"{text} ($\rho={num(rho, sig=2)}$)")


def trend(rho: float) -> str:
    """ "decreasing"/"increasing" for a clear relation, else "mixed"."""
    return "mixed" if strength(rho) != "clear" else "decreasing" if rho < 0 else "increasing"


def shape(mus: np.ndarray, mean: np.ndarray, se: np.ndarray) -> str:
    """ "peak" or "valley" when an interior extremum lies more than ``APART_SE`` standard errors
    from both ends, else the monotone :func:`trend` of the series."""
    n = len(mean)

    def apart(i: int, j: int) -> bool:
        return abs(mean[i] - mean[j]) > APART_SE * np.hypot(se[i], se[j])

    for kind, k in [("peak", int(np.argmax(mean))), ("valley", int(np.argmin(mean)))] if n else []:
        if 0 < k < n - 1 and apart(k, 0) and apart(k, n - 1):
            return kind
    return trend(spearman(mus, mean))


def pm(mean: float, se: float) -> Tex:
    return Tex(rf"\ensuremath{{{num(mean)} \pm {num(se, sig=2)}}}")


def setting(x: float) -> Tex:
    """A hyperparameter as set (e.g. 0.02, 1e-04), not rounded to significant digits."""
    return Tex(rf"\num{{{x:g}}}")


def num_list(values) -> Tex:
    """Comma-separated settings for inline math, breakable after each comma."""
    return Tex(r",\allowbreak ".join(setting(v) for v in values))


def log_series(values: np.ndarray, reached: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Usable-μ indices and, per usable μ, mean and standard error of log ``values`` over the ``reached`` runs."""
    rows = np.flatnonzero(usable(reached))
    stats = np.array([mean_se(np.log(values[j][reached[j]])) for j in rows]).reshape(-1, 2)
    return rows, stats[:, 0], stats[:, 1]


# --- context -------------------------------------------------------------------------------


def implicit_best(results: Results, loss: np.ndarray) -> int:
    """Index of the usable μ with the lowest mean ``loss`` (validation or test) over its converged runs."""
    ok, rows = converged(results), np.flatnonzero(usable(converged(results)))
    if len(rows) == 0:
        raise ValueError("no learning rate converged in enough runs: nothing to compare")
    return int(rows[np.argmin([loss[j][ok[j]].mean() for j in rows])])


def _lr_rows(results: Results) -> list[dict]:
    """One table row per μ: converged runs, epochs, mean final losses, gradient statistics."""
    ok, use, rows = converged(results), usable(converged(results)), []
    for j, mu in enumerate(results.config.lrs):
        row = {"mu": setting(mu), "converged": integer(ok[j].sum()), "usable": bool(use[j])}
        row["epochs"] = integer(np.median(results.stop_epoch[j][ok[j]])) if ok[j].any() else Tex("--")
        if use[j]:
            row["train"] = num(results.train_loss[j][ok[j]].mean())
            row["test"] = pm(*mean_se(results.test_loss[j], ok[j]))
            for key, values in [
                ("G", results.grad_norm),
                ("V", results.grad_var),
                ("Vf", results.grad_var_fixed),
            ]:
                row[key] = num(geo_mean_factor(values[j][ok[j]])[0])
        else:
            row |= dict.fromkeys(("train", "test", "G", "V", "Vf"), Tex("--"))
        rows.append(row)
    return rows


def _status_context(results: Results) -> dict:
    """Which μ diverged, stalled or ran out of epochs."""
    mus = np.array(results.config.lrs)
    ctx = {}
    for name, status in [
        ("diverged", Status.DIVERGED),
        ("stalled", Status.STALLED),
        ("unfinished", Status.MAX_EPOCHS),
    ]:
        hit = results.status == status
        ctx[f"{name}_lrs"] = num_list(mus[hit.any(axis=1)])
        ctx[f"any_{name}"] = bool(hit.any())
        ctx[f"n_{name}"] = integer(hit.sum())
        ctx[f"{name}_loss"] = num(np.median(results.train_loss[hit])) if hit.any() else Tex("--")
    ok = converged(results)
    ctx["all_converged"] = bool(ok.all())
    ctx["n_converged"] = integer(ok.sum())
    ctx["n_total"] = integer(results.status.size)
    return ctx


def _level_context(results: Results) -> dict:
    """Trends of G and V over μ at each matched loss level, and of G/J, V/J at the end."""
    mus_all = np.array(results.config.lrs)
    levels = []
    for k, level in enumerate(results.config.loss_levels):
        reached = np.isfinite(results.level_epoch[..., k])
        rows, logG, seG = log_series(results.level_grad_norm[..., k], reached)
        _, logV, _ = log_series(results.level_grad_var[..., k], reached)
        mus = mus_all[rows]
        entry = {"level": setting(level), "n_usable": integer(len(rows)), "lrs": num_list(mus)}
        if len(rows) >= 2:
            rho_G, rho_V = spearman(mus, logG), spearman(mus, logV)
            entry |= {
                "G": relation(rho_G), "V": relation(rho_V), "G_shape": shape(mus, logG, seG),
                "G_holds": trend(rho_G) == "decreasing", "V_holds": trend(rho_V) == "decreasing",
                "G_small": num(np.exp(logG[1] - logG[0]), sig=2), "mu0": setting(mus[0]), "mu1": setting(mus[1]),
                "G_peak_mu": setting(mus[int(np.argmax(logG))]), "G_ratio": num(np.exp(logG[0] - logG[-1]), sig=2),
                "V_ratio": num(np.exp(logV[0] - logV[-1]), sig=2), "first": setting(mus[0]), "last": setting(mus[-1]),
            }  # fmt: skip
            levels.append(entry)
    ok = converged(results)
    ctx = {"levels": levels, "n_levels": integer(len(levels))}
    ctx["levels_G_hold"] = [e["level"] for e in levels if e["G_holds"]]
    ctx["levels_V_hold"] = [e["level"] for e in levels if e["V_holds"]]
    ctx["all_V_hold"] = bool(levels) and len(ctx["levels_V_hold"]) == len(levels)
    ctx["all_G_hold"] = bool(levels) and len(ctx["levels_G_hold"]) == len(levels)
    for key, values in [("G", results.grad_norm), ("V", results.grad_var)]:
        rows, log_ratio, _ = log_series(values / results.train_loss, ok)
        ctx[f"end_{key}_per_J"] = relation(spearman(mus_all[rows], log_ratio))
    rows, logG, _ = log_series(results.grad_norm, ok)
    _, logV, _ = log_series(results.grad_var, ok)
    _, logVf, _ = log_series(results.grad_var_fixed, ok)
    ctx["end_G"] = relation(spearman(mus_all[rows], logG))
    ctx["end_V"] = relation(spearman(mus_all[rows], logV))
    ratio = np.exp(logVf - logV)  # fixed split over expectation, per usable μ
    ctx["fixed_over_expected_min"] = num(ratio.min(), sig=2)
    ctx["fixed_over_expected_max"] = num(ratio.max(), sig=2)
    mu = mus_all[:, None]
    reg = mu / 4 * (results.grad_norm + results.grad_var) / results.train_loss
    ctx["reg_over_loss_max"] = num(np.max(reg[ok]), sig=2)
    return ctx


def _test_context(results: Results) -> dict:
    """Test MSE over μ and against the final G and V; epochs to the target."""
    ok = converged(results)
    rows = np.flatnonzero(usable(ok))
    mus = np.array(results.config.lrs)[rows]
    stats = np.array([mean_se(results.test_loss[j], ok[j]) for j in rows]).reshape(-1, 2)
    test, test_se = stats[:, 0], stats[:, 1]
    _, logG, _ = log_series(results.grad_norm, ok)
    _, logV, _ = log_series(results.grad_var, ok)
    best = implicit_best(results, results.test_loss)
    ctx = {
        "n_usable": integer(len(rows)), "usable_lrs": num_list(mus), "first_mu": setting(mus[0]),
        "last_mu": setting(mus[-1]), "test_shape": shape(mus, test, test_se), "test_rel": relation(spearman(mus, test)),
        "test_vs_G": relation(spearman(logG, test)), "test_vs_V": relation(spearman(logV, test)),
        "best_mu": setting(results.config.lrs[best]), "best_test": pm(*mean_se(results.test_loss[best], ok[best])),
        "best_test_over_noise": num(results.test_loss[best][ok[best]].mean() / results.noise_var, sig=2),
        "last_test": pm(test[-1], test_se[-1]),
    }  # fmt: skip
    epochs = np.array([np.median(results.stop_epoch[j][ok[j]]) for j in rows])
    fastest = int(np.argmin(epochs))
    slope = np.polyfit(np.log(mus[: fastest + 1]), np.log(epochs[: fastest + 1]), 1)[0] if fastest else np.nan
    ctx |= {
        "fastest_mu": setting(mus[fastest]), "fastest_epochs": integer(epochs[fastest]),
        "slower_beyond_fastest": bool(fastest < len(mus) - 1), "epochs_slope": num(slope, sig=2),
        "epochs_slope_near_minus_one": bool(abs(slope + 1) < 0.25),
    }  # fmt: skip
    return ctx


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the per-run difference a − b (same data and initialization)."""
    return mean_se(a - b)


def _verdict(mean: float, se: float) -> str:
    """ "lower", "higher" or "tie": whether a paired difference is more than ``APART_SE`` errors from zero."""
    return "lower" if mean < -APART_SE * se else "higher" if mean > APART_SE * se else "tie"


def _wd_context(results: Results) -> dict:
    """Settings of (d) selected on validation and on test, and the paired effects of early stopping and weight decay."""
    c = results.config
    val, test = results.wd_val_loss.mean(-1), results.wd_test_loss.mean(-1)  # (n_B, n_wd_lr, n_lambda)
    sel = np.unravel_index(np.nanargmin(val), val.shape)
    by_test = np.unravel_index(np.nanargmin(test), test.shape)
    zero = c.wd_lambdas.index(0.0)
    base = (sel[0], sel[1], zero)  # λ = 0 under the same stopping rule at the selected (B, μ)

    def row(idx: tuple, note: str, bold: bool = False) -> dict:
        i, k, m = idx
        return {
            "B": integer(c.wd_batch_sizes[i]), "mu": setting(c.wd_lrs[k]), "lam": setting(c.wd_lambdas[m]),
            "train": num(results.wd_train_loss[idx].mean()), "test": pm(*mean_se(results.wd_test_loss[idx])),
            "note": Tex(note), "best": bold,
        }  # fmt: skip

    rows = [row(sel, "best on validation", bold=True)]
    if by_test != sel:
        rows.append(row(by_test, "best on test"))
    if sel[2] != zero:
        rows.append(row(base, r"$\lambda=0$, same rule"))
    for dm, note in [(-1, r"smaller $\lambda$"), (1, r"larger $\lambda$")]:
        m = sel[2] + dm
        if 0 <= m < len(c.wd_lambdas) and m != zero:
            rows.append(row((sel[0], sel[1], m), note))
    ok = converged(results)
    best = implicit_best(results, results.val_loss)  # no-weight-decay μ selected on validation
    ctx = {
        "wd_rows": rows, "wd_best": rows[0], "wd_lambdas": num_list(c.wd_lambdas), "wd_lrs": num_list(c.wd_lrs),
        "wd_batch_sizes": num_list(c.wd_batch_sizes), "wd_single_B": len(c.wd_batch_sizes) == 1,
        "wd_test_selected_differs": by_test != sel, "wd_selected_lambda_zero": sel[2] == zero,
        "wd_best_lambda_at_edge": bool(sel[2] == len(c.wd_lambdas) - 1 or (sel[2] == 1 and zero == 0)),
        "wd_any_diverged": bool((results.wd_status == Status.DIVERGED).any()),
        "wd_median_epochs": integer(np.median(results.wd_stop_epoch)),
        "wd_n_max_epochs": integer((results.wd_status == Status.MAX_EPOCHS).sum()),
        "wd_n_total": integer(results.wd_status.size),
        "wd_best_interpolates": bool(results.wd_train_loss[sel].mean() < 10 * c.target_loss),
        "n_val": integer(c.n_val),
    }  # fmt: skip
    effects = {"wd": _paired(results.wd_test_loss[sel], results.wd_test_loss[base])}
    total = _paired(results.wd_test_loss[sel], np.where(ok[best], results.test_loss[best], np.nan))
    effects["total"] = total
    # Early stopping alone: λ = 0 under the (d) rule against the same μ and B trained to the target in (b).
    mu_sel = c.wd_lrs[sel[1]]
    ctx["es_available"] = mu_sel in c.lrs and c.batch_size in c.wd_batch_sizes
    if ctx["es_available"]:
        j, es_base = c.lrs.index(mu_sel), (c.wd_batch_sizes.index(c.batch_size), sel[1], zero)
        effects["es"] = _paired(results.wd_test_loss[es_base], np.where(ok[j], results.test_loss[j], np.nan))
        ctx["es_mu"], ctx["es_B"] = setting(mu_sel), integer(c.batch_size)
        # Identical runs: the λ = 0 models reach the target before the stall rule or the cap acts.
        ctx["es_identical"] = bool(np.array_equal(results.wd_test_loss[es_base], results.test_loss[j]))
    for key, (mean, se) in effects.items():
        ctx[f"{key}_effect"] = pm(mean, se)
        ctx[f"{key}_gain"] = pm(-mean, se)
        ctx[f"{key}_verdict"] = _verdict(mean, se)
    ctx["wd_verdict"] = {"lower": "wd_better", "higher": "implicit_better", "tie": "tie"}[
        ctx["total_verdict"]
    ]
    implicit_test = results.test_loss[best][ok[best]].mean()
    ctx["gap_closed"] = integer(round(100 * -total[0] / (implicit_test - results.noise_var)))
    ctx["implicit_row"] = {
        "B": integer(c.batch_size), "mu": setting(c.lrs[best]), "lam": setting(0.0),
        "train": num(results.train_loss[best][ok[best]].mean()), "test": pm(*mean_se(results.test_loss[best], ok[best])),
        "note": Tex(r"(b), to target"), "best": False,
    }  # fmt: skip
    ctx["implicit_mu"] = setting(c.lrs[best])
    return ctx


def context(results: Results) -> dict:
    """Values for ``templates/sections/sgd_implicit_reg.tex.j2``."""
    c = results.config
    ctx = {
        "M": integer(c.width), "B": integer(c.batch_size), "layers": integer(c.hidden_layers),
        "N": integer(c.n_train), "n_batches": integer(c.n_train // c.batch_size), "n_params": integer(results.n_params),
        "n_runs": integer(c.n_runs), "n_test": integer(c.n_test), "target": setting(c.target_loss),
        "max_epochs": integer(c.max_epochs), "check_every": integer(c.check_every),
        "stall_epochs": integer(c.stall_epochs), "stall_percent": num(100 * STALL_IMPROVEMENT, sig=1),
        "diverge_factor": setting(c.diverge_factor), "wd_max_epochs": integer(c.wd_max_epochs),
        "wd_stall_epochs": integer(c.wd_stall_epochs), "lrs": num_list(c.lrs), "loss_levels": num_list(c.loss_levels),
        "noise_var": num(results.noise_var), "noise_std": num(results.process["noise_std"]),
        "data": data_context(results.process),
        "lr_rows": _lr_rows(results), "min_percent": integer(round(100 * MIN_FRACTION)),
        "rho_clear": num(CLEAR, sig=2), "rho_weak": num(WEAK, sig=2), "apart_se": num(APART_SE, sig=2),
        "partition_factor": Tex(r"\frac{N-B}{B(N-1)}"),
    }  # fmt: skip
    return (
        ctx
        | _status_context(results)
        | _level_context(results)
        | _test_context(results)
        | _wd_context(results)
    )
