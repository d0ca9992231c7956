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
from experiments.sgd_implicit_reg import Results, Status
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


def in_set(symbol: str, values) -> Tex:
    """Inline math without dollars: ``μ = 2.56`` for one value, ``μ ∈ {0.32, 0.64}`` for several."""
    values = list(values)
    if len(values) == 1:
        return Tex(rf"{symbol}={setting(values[0])}")
    return Tex(rf"{symbol}\in\{{{num_list(values)}\}}")


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


def _level_context(results: Results) -> dict:
    """Trends of G and V over μ at each matched loss level, and of G/J, V/J at the end."""
    mus_all = np.array(results.config.lrs)
    levels = []
    for k, level in enumerate(results.config.loss_levels):
        reached = np.isfinite(results.level_epoch[..., k])
        rows, logG, seG = log_series(results.level_grad_norm[..., k], reached)
        _, logV, _ = log_series(results.level_grad_var[..., k], reached)
        mus = mus_all[rows]
        entry = {
            "level": setting(level),
            "value": level,
            "n_usable": integer(len(rows)),
            "lrs": in_set(r"\mu", mus),
        }
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
    ctx = {"levels": levels}
    ctx["G_peaks"] = any(e["G_shape"] == "peak" and not e["G_holds"] for e in levels)
    for key in ("G", "V"):
        hold = [e["value"] for e in levels if e[f"{key}_holds"]]
        ctx[f"levels_{key}_hold"] = in_set("J", hold) if hold else None
        ctx[f"all_{key}_hold"] = bool(levels) and len(hold) == len(levels)
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
    """Test MSE over μ (its minimiser and both sides) and against the final G and V; epochs to the target."""
    ok = converged(results)
    rows = np.flatnonzero(usable(ok))
    mus = np.array(results.config.lrs)[rows]
    stats = np.array([mean_se(results.test_loss[j], ok[j]) for j in rows]).reshape(-1, 2)
    test, test_se = stats[:, 0], stats[:, 1]
    _, logG, _ = log_series(results.grad_norm, ok)
    _, logV, _ = log_series(results.grad_var, ok)
    best = implicit_best(results, results.test_loss)
    k = int(np.argmin(test))  # the minimiser among the usable μ

    def side(i: int) -> dict:
        """An end of the usable grid against the minimum: value and whether it is clearly higher."""
        gap = test[i] - test[k]
        return {"mu": setting(mus[i]), "test": pm(test[i], test_se[i]),
                "above": bool(gap > APART_SE * np.hypot(test_se[i], test_se[k]))}  # fmt: skip

    ctx = {
        "usable_set": in_set(r"\mu", mus), "test_shape": shape(mus, test, test_se),
        "test_min_interior": bool(0 < k < len(mus) - 1), "test_left": side(0), "test_right": side(len(mus) - 1),
        "test_other": side(len(mus) - 1 if k == 0 else 0),
        "test_vs_G": relation(spearman(logG, test)), "test_vs_V": relation(spearman(logV, test)),
        "best_mu": setting(results.config.lrs[best]), "best_test": pm(*mean_se(results.test_loss[best], ok[best])),
        "best_test_over_noise": num(results.test_loss[best][ok[best]].mean() / results.noise_var, sig=2),
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
            "train": Tex("--") if early else num(results.wd_train_loss[idx].mean()),
            "test": pm(*mean_se(test_loss)), "note": Tex(note), "best": bold,
        }  # fmt: skip

    rows = [row(sel, "best on validation", bold=True)]
    if by_test != sel:
        rows.append(row(by_test, "best on test"))
    if sel[2] != zero:
        rows.append(row(base, r"$\lambda=0$, same rule"))
    rows.append(row(base, r"$\lambda=0$, early-stopped", early=True))
    for dm, note in [(-1, r"smaller $\lambda$"), (1, r"larger $\lambda$")]:
        m = sel[2] + dm
        if 0 <= m < len(c.wd_lambdas) and m != zero:
            rows.append(row((sel[0], sel[1], m), note))
    ok = converged(results)
    best = implicit_best(results, results.val_loss)  # no-weight-decay μ of (b) selected on validation
    decayed = np.array(c.wd_lambdas) != 0
    ctx = {
        "wd_rows": rows, "wd_best": rows[0], "wd_lambda_set": in_set(r"\lambda", c.wd_lambdas),
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
        "wd": _paired(results.wd_test_loss[sel], results.wd_test_loss[base]),
        "es": _paired(results.wd_es_test_loss[base], results.wd_test_loss[base]),
        "wd_vs_es": _paired(results.wd_test_loss[sel], results.wd_es_test_loss[base]),
        "total": _paired(results.wd_test_loss[sel], np.where(ok[best], results.test_loss[best], np.nan)),
    }
    for key, (mean, se) in effects.items():
        ctx[f"{key}_effect"] = pm(mean, se)
        ctx[f"{key}_verdict"] = _verdict(mean, se)
    ctx["es_median_epoch"] = integer(np.median(results.wd_es_epoch[base]))
    ctx["es_median_stop"] = integer(np.median(results.wd_stop_epoch[base]))
    ctx["wd_verdict"] = {"lower": "wd_better", "higher": "implicit_better", "tie": "tie"}[
        ctx["total_verdict"]
    ]
    implicit_test = results.test_loss[best][ok[best]].mean()
    ctx["gap_closed"] = integer(round(100 * -effects["total"][0] / (implicit_test - results.noise_var)))
    ctx["implicit_row"] = {
        "B": integer(c.batch_size), "mu": setting(c.lrs[best]), "lam": setting(0.0),
        "train": num(results.train_loss[best][ok[best]].mean()), "test": pm(*mean_se(results.test_loss[best], ok[best])),
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
        "n_runs": integer(c.n_runs), "n_test": integer(c.n_test), "target": setting(stop.target_loss),
        "max_epochs": integer(stop.max_epochs), "check_every": integer(stop.check_every),
        "stall_epochs": integer(stop.stall_epochs), "stall_percent": num(100 * stop.stall_improvement, sig=1),
        "diverge_factor": setting(stop.diverge_factor), "val_every": integer(c.val_every),
        "lr_set": in_set(r"\mu", c.lrs), "level_set": in_set("J", c.loss_levels),
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
