"""The double-descent stage: bucketing, the save/load round trip, the threshold rule, context and figures."""

import json
from dataclasses import asdict, replace

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from experiments import batched_mlp
from experiments import double_descent as dd
from experiments import double_descent_plot as plot
from experiments import double_descent_stats as dd_stats
from experiments.data import DataProcess, draw
from experiments.lbfgs_config import LBFGS, Stop

I, S = Stop.INTERPOLATED, Stop.STALLED


def test_buckets_cover_widths_within_ratio():
    widths = [2, 3, 4, 10, 12, 13, 14, 40, 50, 51, 200]
    groups = dd.buckets(widths, 1.3)
    assert sorted(w for g in groups for w in g) == widths
    assert all(max(g) <= 1.3 * min(g) for g in groups)


def test_quick_run_saves_and_loads(tmp_path):
    config = replace(
        dd.PROFILES["quick"], n_test=200, optimizer=LBFGS(window=20, max_iters=60), rank_widths=(2, 4)
    )
    results = dd.run(config)
    assert results.r_t == pytest.approx(results.process.noise_std**2)
    first = results.sweeps[0]
    assert np.all(np.isfinite(first.train))
    assert first.train[-1, 0] < first.train[0, 0]  # the widest model fits better than the narrowest
    assert np.all(first.iterations <= config.optimizer.max_iters)
    # the (b) curves end where their models stop, at the final training MSE
    for i, width in enumerate(config.curve_widths):
        row = config.widths.index(width)
        for s, curve in enumerate(results.curves[i]):
            k = first.iterations[row, s]
            assert curve[k] == first.train[row, s]
            assert np.all(np.isnan(curve[k + 1 :]))
    # the final parameters restore each network: its training MSE is the one the sweep recorded
    X, Y = draw(config.data, first.n, config.sample_seed + first.n, torch.float64)
    widths = [w for w in config.widths if w <= config.params_max_width]
    assert sorted(results.final_params) == sorted(f"params_n{n}_m{w}" for n in config.n_train for w in widths)
    for w in widths:
        params = results.final_params[f"params_n{first.n}_m{w}"]
        assert params.shape == (len(config.seeds), batched_mlp.n_params(w, config.hidden_layers))
        net = batched_mlp.to_sequential(
            batched_mlp.init([w], [0], config.hidden_layers, dtype=torch.float64), 0
        )
        torch.nn.utils.vector_to_parameters(torch.from_numpy(params[0]), net.parameters())
        mse = torch.nn.functional.mse_loss(net(X), Y).item()
        assert mse == pytest.approx(first.train[config.widths.index(w), 0], rel=1e-9)
    dd.save(results, tmp_path)
    loaded = dd.load(tmp_path)
    assert loaded.config == config
    assert loaded.final_params.keys() == results.final_params.keys()
    np.testing.assert_array_equal(
        loaded.final_params[f"params_n{first.n}_m4"], results.final_params[f"params_n{first.n}_m4"]
    )
    np.testing.assert_array_equal(loaded.sweeps[1].test, results.sweeps[1].test)
    np.testing.assert_array_equal(loaded.sweeps[0].stop, results.sweeps[0].stop)
    np.testing.assert_array_equal(loaded.curves, results.curves)
    np.testing.assert_array_equal(loaded.ranks.default, results.ranks.default)


def test_check_passes_and_its_records_are_json():
    checks = dd.check()
    assert len(checks) >= 3
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    json.dumps([asdict(c) for c in checks])  # the verification task stores them as JSON


def test_threshold_is_the_first_width_at_which_every_seed_interpolates():
    stops = np.array([[S, S], [I, S], [I, I], [S, I], [I, I], [I, I]])
    # width 1 interpolates partly, width 2 fully: the threshold is index 2; width 3 fails for one seed
    # (an optimizer failure: capacity only grows), so every seed interpolates from index 4 on
    assert dd_stats.threshold_index(stops == I) == 2
    assert dd_stats.settled_index(stops == I) == 4
    assert dd_stats.threshold_index(stops[:2] == I) is None and dd_stats.settled_index(stops[:4] == I) is None
    assert (
        dd_stats.threshold_index(np.full((3, 2), True)) == dd_stats.settled_index(np.full((3, 2), True)) == 0
    )


def test_the_median_threshold_is_the_first_width_whose_median_training_mse_is_below_the_tolerance():
    train = np.array([[0.1, 0.2, 0.3], [1e-9, 0.01, 0.02], [1e-9, 1e-9, 0.02], [1e-9, 1e-9, 1e-9]])
    # width 1: one of three seeds below 1e-8 (median 0.01); width 2: two of three, the median interpolates
    assert dd_stats.median_threshold_index(train, 1e-8) == 2
    assert dd_stats.threshold_index(train < 1e-8) == 3  # every seed: one width later
    assert dd_stats.median_threshold_index(train[:2], 1e-8) is None


def test_paired_interval_detects_a_shift_only_when_there_is_one():
    rng = np.random.default_rng(1)
    a = rng.normal(1.0, 0.3, 10)
    mean, low, high = dd_stats.paired_interval(a, a + 0.2 + rng.normal(0, 0.01, 10))
    assert low > 0 and low < mean < high and mean == pytest.approx(0.2, abs=0.01)
    _, low, high = dd_stats.paired_interval(a, a + rng.normal(0, 0.3, 10))
    assert low < 0 < high


def test_peak_range_widens_with_noise():
    rng = np.random.default_rng(0)
    base = np.array([1.0, 2.0, 5.0, 2.0, 1.0])
    sharp = dd_stats.peak_range(base[:, None] + rng.normal(0, 0.01, (5, 10)))
    flat = dd_stats.peak_range(np.array([1.0, 1.9, 2.0, 1.95, 1.0])[:, None] + rng.normal(0, 0.3, (5, 10)))
    assert sharp == (2, 2)
    assert flat[0] < flat[1] and flat[0] >= 1 and flat[1] <= 3


def hand_made_results() -> dd.Results:
    """Five widths, two seeds: threshold at M=20 for N=100 and at M=50 for N=200."""
    config = replace(dd.PROFILES["quick"], widths=(4, 10, 20, 50, 100), seeds=(0, 1), rank_widths=(2, 4))
    train100 = np.array([[0.3, 0.3], [0.1, 0.1], [1e-11, 2e-11], [1e-11, 1e-11], [1e-11, 1e-11]])
    stop100 = np.array([[S, S], [S, S], [I, I], [I, I], [I, I]])
    test100 = np.array([[0.4, 0.4], [0.5, 0.6], [3.0, 2.0], [0.8, 0.8], [0.6, 0.6]])
    train200 = np.array([[0.3, 0.3], [0.2, 0.2], [0.05, 0.05], [1e-11, 1e-11], [1e-11, 1e-11]])
    stop200 = np.array([[S, S], [S, S], [S, S], [I, I], [I, I]])
    test200 = np.array([[0.35, 0.35], [0.4, 0.4], [0.7, 0.7], [2.0, 2.1], [0.5, 0.5]])
    iterations = np.full((5, 2), 100)
    nan = np.nan
    curves = np.array(
        [
            [[0.5, 0.3, 0.2, 0.1], [0.5, 0.3, 0.2, 0.1]],  # M=10 never below 1e-3
            [[0.5, 0.1, 1e-4, nan], [0.5, 0.1, 1e-2, 1e-4]],  # M=50: 2 and 3 iterations
            [[0.5, 1e-4, nan, nan], [0.5, 1e-2, 1e-4, nan]],  # M=100: 1 and 2 iterations
        ]
    )
    ranks = dd.Ranks(
        balanced=np.array([44, 88]),
        gap=np.array([13.5, 12.8]),
        default=np.array([[44, 40], [88, 88]]),
        inactive=np.array([[0, 2], [0, 1]]),
    )
    return dd.Results(
        config=config,
        process=DataProcess(),
        r_t=0.25,
        r_t_empirical=0.251,
        signal_var=0.46,
        sweeps=(
            dd.Sweep(100, train100, test100, iterations, iterations + 3, np.full((5, 2), 2.0), stop100),
            dd.Sweep(200, train200, test200, iterations, iterations + 5, np.full((5, 2), 3.5), stop200),
        ),
        curves=curves,
        curve_evaluations=np.where(np.isnan(curves), np.nan, 1 + 2 * np.arange(4.0)),  # 2 per iteration
        ranks=ranks,
        shard_seconds={"n100-m4..100-s0..1": (12.0, 20.0)},
    )


def test_context_reads_threshold_peak_counts_and_more_data_from_the_numbers():
    ctx = plot.context(hand_made_results(), threshold_diagnosis=[])
    first, second = ctx["first"], ctx["second"]
    assert first["M"] == r"\num{20}"
    assert first["params"] == r"\num{768}"  # 20^2 + 18 * 20 + 8
    assert first["params_eff"] == r"\num{728}"  # minus 2 * 20
    assert second["M"] == r"\num{50}"
    assert first["peak_M"] == r"\num{20}" and first["peak_vs_threshold"] == 0
    assert first["visible"]
    assert (first["P_width"], first["eff_width"]) == (r"\num{21}", r"\num{22}")
    assert (second["P_width"], second["eff_width"]) == (r"\num{32}", r"\num{33}")
    assert not first["bound_holds"]  # 20 < 22: the hand-made threshold contradicts the bound
    # the peak at 20 stands in every resample (3.0 and 2.0 against at most 0.8): its interval is 20 alone,
    # widened to the midpoints 15 and 35 of the neighbouring widths 10 and 50, which holds P's 21 and P_eff's 22
    assert (first["peak_low"], first["peak_high"], first["peak_sharp"]) == (r"\num{20}", r"\num{20}", True)
    assert (first["peak_lo_edge"], first["peak_hi_edge"]) == (r"\num{15.0}", r"\num{35.0}")
    assert first["peak_closer"] == "both"
    assert first["loose_same"] and second["loose_M"] == r"\num{50}"  # below 1e-3 where they interpolate
    assert first["stalled_min"] == r"\num{0.100}"
    assert not first["second_below_first"]  # 0.6 at M=100 vs 0.4 at M=4
    assert [row["reached"] for row in ctx["curve_rows"]] == [False, True, True]
    assert [row["steps"] for row in ctx["curve_rows"]][1:] == [r"\num{2}", r"\num{2}"]
    assert ctx["curve_rows"][1]["steps_q"] == (r"\num{2}", r"\num{3}")  # quartiles of 2 and 3
    assert ctx["curve_rows"][0]["evaluations"] == r"\num{103}"
    assert ctx["curve_rows"][1]["evaluations_to"] == r"\num{6}"  # 5 and 7 evaluations at iterations 2 and 3
    assert ctx["slowest_interp"] == r"\num{3.5}"
    assert (ctx["gap_min"], ctx["gap_max"]) == (r"\num{13}", r"\num{14}")
    assert ctx["speed_trend"] == "mixed"
    threshold, over = ctx["more_data"]
    assert threshold["helps"] and not threshold["hurts"]  # 2.5 -> 0.7 for both seeds
    assert not over["hurts"] and over["helps"]  # 0.6 -> 0.5
    assert (threshold["test1"], threshold["iqr1"]) == (
        r"\num{2.50}",
        (r"\num{2.25}", r"\num{2.75}"),
    )  # of 3.0, 2.0
    assert threshold["test1"] == first["peak_test"]  # the same runs, the same statistic in (c) and (d)
    assert not ctx["hurt_any"]  # 0.8 -> 2.0 and 2.1 at M=50, but two seeds give p >= 1/4: no claim
    assert ctx["deficit_seeds"] == r"\num{1}"
    assert ctx["rank_never_above"] and ctx["rank_all_full"]


def test_speed_trend():
    assert dd_stats.speed_trend([50, 100], [500, 60]) == "decreasing"  # wider is faster
    assert dd_stats.speed_trend([50, 100], [60, 500]) == "increasing"
    assert dd_stats.speed_trend([10, 50, 100], [500, 500, 60]) == "decreasing"  # no step rises
    assert dd_stats.speed_trend([10, 50, 100], [60, 500, 100]) == "mixed"
    assert dd_stats.speed_trend([100], [60]) == "mixed"


def test_figures_draw_every_iteration_bands_and_thresholds():
    results = hand_made_results()
    fig = plot.FIGURES["dd_training_curves"](results)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [label.split("$")[1] for label in labels[:3]] == ["M=10", "M=50", "M=100"]
    assert len(ax.lines) == 3 * 2 + 1  # a line per width and seed, and the 1e-3 target
    np.testing.assert_array_equal(ax.lines[2].get_xdata(), [1, 2, 3])  # every iteration, from the first
    fig = plot.FIGURES["dd_curve"](results)
    top, bottom = fig.axes[:2]
    assert all(ax.get_xscale() == ax.get_yscale() == "log" for ax in (top, bottom))
    assert len(top.collections) == len(bottom.collections) == 2  # an interquartile band per N
    labels = {t.get_text() for t in bottom.get_legend().get_texts()}  # one legend, in the empty corner
    assert {"$N=100$", "$N=200$", "threshold: median interpolates", "every seed interpolates"} <= labels
    assert top.get_legend() is None
    assert [line.get_xdata()[0] for line in bottom.lines if line.get_linestyle() == ":"] == [20, 50]
    assert [line.get_xdata()[0] for line in bottom.lines if line.get_linestyle() == "-."] == [20, 50]
    solid, dashed = (line for line in bottom.lines[:4] if line.get_linestyle() in ("-", "--"))
    assert solid.get_color() != dashed.get_color()  # N = 100 and N = 200 apart by colour and by dash
    assert any("M^{2} + 18 M + 8" in child.get_xlabel() for child in top.child_axes)
    plt.close("all")


def test_more_seeds_add_shards_and_leave_the_shared_seeds_unchanged():
    # seeds 0, 1 form block 0 in both runs: the same shard spec, the same batch, identical results
    small = replace(
        dd.PROFILES["quick"],
        widths=(3, 6),
        seeds=(0, 1),
        seed_block=2,
        n_train=(30, 40),
        n_test=50,
        curve_widths=(6,),
        over_width=6,
        optimizer=LBFGS(window=10, max_iters=40),
        rank_widths=(2,),
        rank_samples=20,
    )
    big = replace(small, seeds=(0, 1, 2))
    small_specs, big_specs = dd.shards(small), dd.shards(big)
    assert small_specs.items() <= big_specs.items()
    assert set(big_specs) - set(small_specs) == {"n30-m3..6-s2", "n40-m3..6-s2", "ranks-s2"}
    a, b = dd.run(small), dd.run(big)
    for sa, sb in zip(a.sweeps, b.sweeps, strict=True):
        for key in ("train", "test", "iterations", "stop"):
            np.testing.assert_array_equal(getattr(sa, key), getattr(sb, key)[:, :2])
    assert b.curves.shape[1] == 3
    np.testing.assert_array_equal(a.curves, b.curves[:, :2, : a.curves.shape[2]])
    np.testing.assert_array_equal(a.ranks.default, b.ranks.default[:, :2])
    assert not np.array_equal(b.sweeps[0].test[:, 2], b.sweeps[0].test[:, 0])  # seed 2 is a new network


def test_shard_specs_are_json_and_cover_every_model_once():
    config = dd.PROFILES["full"]
    specs = dd.shards(config)
    json.dumps(specs)
    for n in config.n_train:
        models = [
            (w, s)
            for spec in specs.values()
            if spec.get("n") == n
            for w in spec["widths"]
            for s in spec["seeds"]
        ]
        assert sorted(models) == sorted((w, s) for w in config.widths for s in config.seeds)
