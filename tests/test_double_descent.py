"""The batched trainer, threshold detection, bucketing and the stage's save/load round trip."""

from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from experiments import batched_mlp
from experiments import double_descent as dd
from experiments import double_descent_plot as plot
from experiments.data import DataProcess, make_data


def test_batched_trainer_reproduces_nn_sequential_with_torch_adam():
    torch.manual_seed(0)
    X, Y = make_data(30, sample_seed=1, dtype=torch.float64)
    # a short patience forces several per-model rate reductions; a loose tol stops one model early
    training = dd.Training(lr0=1e-2, patience=20, factor=0.5, min_improvement=0.05, tol=0.05, max_epochs=300)
    widths, seeds = [3, 12, 12], [0, 1, 2]
    model = batched_mlp.init(widths, seeds, dd.HIDDEN_LAYERS, dtype=torch.float64)
    history, epochs = dd.train_batched(model, X, Y, training)
    for i, (width, seed) in enumerate(zip(widths, seeds, strict=True)):
        net, reference = dd.train_sequential(width, seed, X, Y, training)
        assert epochs[i].item() == len(reference)
        assert history[: len(reference), i].numpy() == pytest.approx(np.array(reference), rel=1e-9)
        assert torch.all(history[len(reference) :, i].isnan())
        trained = batched_mlp.to_sequential(model, i)
        for a, b in zip(trained.parameters(), net.parameters(), strict=True):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)
    assert len(set(epochs.tolist())) > 1  # the check covered models stopping at different epochs


def test_lbfgs_finish_treats_every_model_as_if_alone():
    X, Y = make_data(30, sample_seed=2, dtype=torch.float64)
    training = dd.Training(lbfgs_iters=40, tol=1e-12)
    widths, seeds = [4, 9, 9], [0, 1, 2]
    model = batched_mlp.init(widths, seeds, dd.HIDDEN_LAYERS, dtype=torch.float64)
    before = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    iterations = dd.lbfgs_finish(model, X, Y, torch.tensor([True, True, False]), training)
    after = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    assert iterations[2] == 0
    assert after[2] == before[2]  # an inactive model is untouched
    assert torch.all(after[:2] < 0.5 * before[:2])
    for i in range(2):
        alone = batched_mlp.init([widths[i]], [seeds[i]], dd.HIDDEN_LAYERS, dtype=torch.float64)
        dd.lbfgs_finish(alone, X, Y, torch.tensor([True]), training)
        for a, b in zip(
            batched_mlp.to_sequential(model, i).parameters(),
            batched_mlp.to_sequential(alone, 0).parameters(),
            strict=True,
        ):
            assert torch.allclose(a, b, rtol=1e-8, atol=1e-10)


def test_threshold_index_is_first_width_from_which_all_interpolate():
    train = np.array(
        [[0.3] * 3, [0.1, 0.2, 0.2], [1e-6, 1e-2, 1e-2], [1e-7, 1e-6, 1e-2], [1e-3] * 3, [1e-8] * 3, [0] * 3]
    )
    widths = [2, 4, 6, 8, 10, 12, 14]
    # width 6 is below 1e-4 for one seed only (median above); width 8's median dips below but 10's does not
    assert dd.threshold_index(widths, train, tol=1e-4) == 5
    assert dd.threshold_index(widths, train, tol=5e-3) == 3
    assert dd.threshold_index(widths, train, tol=2e-2) == 2
    assert dd.threshold_index(widths, train[:-2], tol=1e-4) is None
    assert dd.threshold_index(widths, train, tol=1.0) == 0


def test_buckets_cover_widths_within_ratio():
    widths = [2, 3, 4, 10, 12, 13, 14, 40, 50, 51, 200]
    groups = dd.buckets(widths, 1.3)
    assert sorted(w for g in groups for w in g) == widths
    assert all(max(g) <= 1.3 * min(g) for g in groups)


def test_log_epochs_are_increasing_and_cover_the_run():
    epochs = dd.log_epochs(5000, points=50)
    assert epochs[0] == 1
    assert epochs[-1] == 5000
    assert np.all(np.diff(epochs) > 0)


def test_quick_run_saves_and_loads(tmp_path):
    config = replace(
        dd.PROFILES["quick"],
        n_test=200,
        training=dd.Training(lr0=1e-2, patience=20, max_epochs=100, lbfgs_iters=20),
    )
    results = dd.run(config)
    assert results.r_t == pytest.approx(results.process.noise_std**2)
    first = results.sweeps[0]
    assert np.all(np.isfinite(first.train))
    assert first.train[-1, 0] < first.train[0, 0]  # the widest model fits better than the narrowest
    dd.save(results, tmp_path)
    loaded = dd.load(tmp_path)
    assert loaded.config == config
    np.testing.assert_array_equal(loaded.sweeps[1].test, results.sweeps[1].test)
    np.testing.assert_array_equal(loaded.curves, results.curves)


def hand_made_results() -> dd.Results:
    """Five widths, two seeds: threshold at M=20 for N=100 and at M=50 for N=200."""
    config = replace(dd.PROFILES["quick"], widths=(4, 10, 20, 50, 100), seeds=(0, 1), interp_tol=1e-4)
    train100 = np.array([[0.3, 0.3], [0.1, 0.1], [1e-5, 2e-5], [1e-8, 1e-8], [1e-8, 1e-8]])
    test100 = np.array([[0.4, 0.4], [0.5, 0.6], [3.0, 2.0], [0.8, 0.8], [0.6, 0.6]])
    train200 = np.array([[0.3, 0.3], [0.2, 0.2], [0.05, 0.05], [1e-5, 1e-5], [1e-8, 1e-8]])
    test200 = np.array([[0.35, 0.35], [0.4, 0.4], [0.7, 0.7], [2.0, 2.0], [0.5, 0.5]])
    epochs = np.full((5, 2), 100)
    epochs[2] = config.training.max_epochs  # the threshold width hit Adam's cap ...
    lbfgs = np.zeros((5, 2), dtype=int)
    lbfgs[2] = [config.training.lbfgs_iters, 7]  # ... and one seed also L-BFGS's
    curve_epochs = np.array([1, 10, 100, 1000])
    curves = np.array(
        [
            [[0.5, 0.3, 0.2, 0.1], [0.5, 0.3, 0.2, 0.1]],  # M=10 never below 1e-3
            [[0.5, 0.1, 1e-4, np.nan], [0.5, 0.1, 1e-2, 1e-4]],  # M=50: 100 and 1000 epochs
            [[0.5, 1e-4, np.nan, np.nan], [0.5, 1e-2, 1e-4, np.nan]],  # M=100: 10 and 100 epochs
        ]
    )
    return dd.Results(
        config=config,
        process=DataProcess(),
        r_t=0.25,
        r_t_empirical=0.251,
        signal_var=0.46,
        sweeps=(
            dd.Sweep(100, train100, test100, epochs, lbfgs),
            dd.Sweep(200, train200, test200, epochs, np.zeros_like(lbfgs)),
        ),
        curve_epochs=curve_epochs,
        curves=curves,
        seconds=12.0,
    )


def test_context_reads_threshold_peak_and_more_data_from_the_numbers():
    ctx = plot.context(hand_made_results())
    assert ctx["first"]["M"] == r"\num{20}"
    assert ctx["first"]["params"] == r"\num{768}"
    assert ctx["second"]["M"] == r"\num{50}"
    assert ctx["first"]["peak_M"] == r"\num{20}"
    assert ctx["first"]["visible"]
    assert ctx["first"]["finished"] == r"\num{2}"
    assert ctx["first"]["capped_count"] == 1
    assert ctx["second"]["capped_count"] == 0
    assert [row["reached"] for row in ctx["curve_rows"]] == [False, True, True]
    assert [row["epochs"] for row in ctx["curve_rows"]][1:] == [r"\num{550}", r"\num{55}"]
    assert ctx["speed_trend"] == "faster"
    assert not ctx["hurts_threshold"]  # 2.5 -> 0.7
    assert not ctx["hurts_over"]  # 0.6 -> 0.5
    assert ctx["hurt_any"]
    assert ctx["hurt_from"] == ctx["hurt_to"] == r"\num{50}"


def test_speed_trend():
    assert plot.speed_trend([50, 100], [500, 60]) == "faster"
    assert plot.speed_trend([50, 100], [60, 500]) == "slower"
    assert plot.speed_trend([10, 50, 100], [60, 500, 100]) == "mixed"
    assert plot.speed_trend([100], [60]) == "mixed"


def test_figures_have_log_axes_lines_and_legends():
    results = hand_made_results()
    fig = plot.FIGURES["dd_training_curves"](results)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [label.split("$")[1] for label in labels[:3]] == ["M=10", "M=50", "M=100"]
    assert len(ax.lines) == 3 * 2 + 2  # a line per width and seed, the 1e-3 and R_t levels
    fig = plot.FIGURES["dd_curve"](results)
    top, bottom = fig.axes[:2]
    assert all(ax.get_xscale() == ax.get_yscale() == "log" for ax in (top, bottom))
    assert {t.get_text() for t in top.get_legend().get_texts()} == {
        "test, $N=100$",
        "test, $N=200$",
        r"$R_t=\sigma^2$",
    }
    labels = {t.get_text() for t in bottom.get_legend().get_texts()}
    assert {"training, $N=100$", "threshold $M=20$, $N=100$", "threshold $M=50$, $N=200$"} <= labels
    assert [line.get_xdata()[0] for line in bottom.lines if line.get_linestyle() == ":"] == [20, 50]
    assert any("parameters" in child.get_xlabel() for child in top.child_axes)
    plt.close("all")
