"""The batched SGD trainer against torch.optim.SGD, its stopping rules, the shards, the stage round trip and the plots."""

import dataclasses
import functools
import re

import numpy as np
import pytest
import torch
from matplotlib.lines import Line2D
from torch import nn

from experiments import batched_mlp, sgd_implicit_reg, sgd_implicit_reg_plot, sgd_training
from experiments import sgd_implicit_reg_stats as sgd_stats
from experiments.grad_stats import expected_variation
from experiments.sgd_implicit_reg import PROFILES, Status, Stopping
from experiments.sgd_training import minibatch_orders, train
from report import supplement
from report.render import render

N, B, DIM = 12, 4, 3
SEEDS = {"order_seeds": [7, 8]}  # one mini-batch order per training set


def _stop(**changes) -> Stopping:
    return Stopping(
        **{"target_loss": 1e-300, "check_every": 1, "stall_epochs": 1_000, "window": 1, **changes}
    )


def _problem(
    n_models: int, same_init: bool = False
) -> tuple[batched_mlp.BatchedMLP, torch.Tensor, torch.Tensor]:
    seeds = [0] * n_models if same_init else list(range(n_models))
    model = batched_mlp.init(
        [6] * n_models, seeds, hidden_layers=5, d_in=DIM, d_out=DIM,
        dtype=torch.float64, dev=torch.device("cpu"),
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2, N, DIM, generator=gen, dtype=torch.float64)  # (n_sets, N, dim)
    Y = torch.randn(2, N, DIM, generator=gen, dtype=torch.float64)
    return model, X, Y


@pytest.mark.parametrize("chunk", [3, 100], ids=["orders-drawn-3-epochs-at-a-time", "all-at-once"])
def test_one_model_of_the_batch_matches_torch_sgd(monkeypatch, chunk):
    monkeypatch.setattr(sgd_training, "ORDER_CHUNK", chunk)
    model, X, Y = _problem(3)
    data_index = torch.tensor([0, 1, 1])
    lr = torch.tensor([0.05, 0.2, 0.1], dtype=torch.float64)
    weight_decay = torch.tensor([0.0, 0.05, 0.01], dtype=torch.float64)
    epochs = 7
    traj = train(model, X, Y, data_index, lr, weight_decay, B, _stop(max_epochs=epochs), **SEEDS)
    i = 1
    net = batched_mlp.to_sequential(model, i)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr[i].item(), weight_decay=weight_decay[i].item())
    generator = torch.Generator().manual_seed(SEEDS["order_seeds"][data_index[i]])
    x, y = X[data_index[i]], Y[data_index[i]]
    for _ in range(epochs):
        order = minibatch_orders([generator], N)[0, 0]
        for start in range(0, N, B):
            idx = order[start : start + B]
            optimizer.zero_grad()
            nn.functional.mse_loss(net(x[idx]), y[idx]).backward()
            optimizer.step()
    trained = batched_mlp.to_sequential(traj.model, i)
    for p, q in zip(trained.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    assert traj.history[-1, i] == pytest.approx(nn.functional.mse_loss(net(x), y).item(), rel=1e-10)
    assert (traj.status == Status.MAX_EPOCHS).all()


def test_minibatch_orders_do_not_depend_on_how_many_epochs_are_drawn_at_once():
    def generators() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(seed) for seed in (3, 4)]

    at_once = minibatch_orders(generators(), 100, 250)  # (epochs, n_sets, n)
    one_by_one = generators()
    assert at_once.shape == (250, 2, 100)
    assert torch.equal(at_once, torch.cat([minibatch_orders(one_by_one, 100) for _ in range(250)]))
    assert not torch.equal(at_once[0, 0], at_once[1, 0])  # each epoch reshuffles


@pytest.mark.parametrize("shared", [False, True], ids=["own-sets", "one-shared-set"])
def test_losses_are_the_forward_mse_to_the_bit(shared):
    model, X, Y = _problem(2)
    if shared:
        X, Y = X[0], Y[0]
    with torch.no_grad():
        expected = batched_mlp.mse(batched_mlp.forward(model, X), Y)
    assert torch.equal(sgd_training.losses(model, X, Y), expected)


def test_model_does_not_depend_on_its_batch_mates():
    model, X, Y = _problem(3)
    args = {"batch_size": B, "stopping": _stop(max_epochs=3), **SEEDS}
    zero = torch.zeros(1, dtype=torch.float64)
    together = train(
        model, X, Y, torch.tensor([0, 1, 1]), torch.tensor([0.05, 0.2, 0.1]), zero.repeat(3), **args
    )
    alone = train(
        batched_mlp.with_parameters(model, [p.detach()[[2]] for p in model.parameters()], torch.tensor([2])),
        X,
        Y,
        torch.tensor([1]),
        torch.tensor([0.1]),
        zero,
        **args,
    )
    for p, q in zip(together.model.parameters(), alone.model.parameters(), strict=True):
        torch.testing.assert_close(p[2:], q, rtol=0, atol=0)


def test_stopping_rules():
    model, X, Y = _problem(4, same_init=True)
    data_index = torch.tensor([0, 0, 0, 0])
    lr = torch.tensor([0.1, 10.0, 0.0, 0.003], dtype=torch.float64)
    initial = batched_mlp.mse(batched_mlp.forward(model, X[0]), Y[0]).detach()
    target = 0.95 * initial[0].item()  # reached by the first model within 6 epochs, not by the slow last one
    stop = _stop(stall_epochs=5, max_epochs=6, target_loss=target)
    traj = train(model, X, Y, data_index, lr, torch.zeros(4), B, stop, **SEEDS)
    assert list(traj.status) == [Status.CONVERGED, Status.DIVERGED, Status.STALLED, Status.MAX_EPOCHS]
    assert traj.stop_epoch[2] == 5
    assert traj.stop_epoch[3] == 6
    converged_at = traj.stop_epoch[0]
    assert traj.history[converged_at, 0] < target <= np.nanmin(traj.history[:converged_at, 0])
    assert np.isnan(traj.history[converged_at + 1 :, 0]).all()


def test_a_converged_model_trains_on_for_its_window_and_records_it():
    model, X, Y = _problem(2, same_init=True)
    data_index, lr = torch.tensor([0, 0]), torch.tensor([0.1, 0.1], dtype=torch.float64)
    initial = batched_mlp.mse(batched_mlp.forward(model, X[0]), Y[0])[0].item()
    zero = torch.zeros(2, dtype=torch.float64)
    plain = train(model, X, Y, data_index, lr, zero, B, _stop(max_epochs=40), **SEEDS)
    below = np.flatnonzero(plain.history[::2, 0] < 0.95 * initial)  # checks every 2 epochs below the target
    assert 0 < below[0] < 15
    stop = _stop(max_epochs=40, target_loss=0.95 * initial, window=4, check_every=2)
    traj = train(model, X, Y, data_index, lr, zero, B, stop, levels=(0.95 * initial,), **SEEDS)
    first = int(traj.at_level["epoch"][0, 0])
    assert first == 2 * below[0]
    assert (traj.status == Status.CONVERGED).all()
    assert (traj.stop_epoch == first + 3 * 2).all()  # the crossing check and 3 more
    np.testing.assert_allclose(traj.at_level["J"][0, 0], plain.history[first : first + 7 : 2, 0], rtol=1e-10)
    assert np.isfinite(traj.at_level["G"]).all() and np.isfinite(traj.at_level["Vf"]).all()
    cut = train(model, X, Y, data_index, lr, zero, B, dataclasses.replace(stop, max_epochs=first + 2),
                levels=(0.95 * initial,), **SEEDS)  # fmt: skip
    assert (cut.status == Status.CONVERGED).all()  # the budget cuts the window short
    assert np.isnan(cut.at_level["G"][0, 0, 2:]).all() and np.isfinite(cut.at_level["G"][0, 0, :2]).all()


def test_records_gradient_statistics_where_each_level_is_first_crossed():
    model, X, Y = _problem(2)
    data_index, lr = torch.tensor([0, 1]), torch.tensor([0.05, 0.1], dtype=torch.float64)
    args = {"batch_size": B, "stopping": _stop(max_epochs=20), **SEEDS}
    zero = torch.zeros(2, dtype=torch.float64)
    plain = train(model, X, Y, data_index, lr, zero, **args)
    levels = (
        2.0 * plain.history[0].max(),
        (1 + 1e-9) * plain.history[10].max(),
        0.0,
    )  # at once, by epoch 10, never
    traj = train(model, X, Y, data_index, lr, zero, levels=levels, **args)
    at = traj.at_level
    assert (at["epoch"][:, 0] == 0).all()
    assert np.isnan(at["epoch"][:, 2]).all()
    for i in range(2):
        epoch = int(at["epoch"][i, 1])
        assert at["J"][i, 1, 0] == traj.history[epoch, i] < levels[1]
        assert (traj.history[:epoch, i] >= levels[1]).all()
    G0, V0, Vf0 = expected_variation(model, X[data_index], Y[data_index], B)
    np.testing.assert_allclose(at["G"][:, 0, 0], G0.numpy(), rtol=1e-10)
    np.testing.assert_allclose(at["V"][:, 0, 0], V0.numpy(), rtol=1e-10)
    np.testing.assert_allclose(at["Vf"][:, 0, 0], Vf0.numpy(), rtol=1e-10)


def test_rejects_batch_size_not_dividing_n():
    model, X, Y = _problem(1)
    with pytest.raises(ValueError, match="does not divide"):
        train(
            model,
            X,
            Y,
            torch.tensor([0]),
            torch.tensor([0.1]),
            torch.zeros(1),
            5,
            _stop(max_epochs=1),
            **SEEDS,
        )


def test_early_stopping_keeps_the_parameters_of_the_lowest_validation_loss():
    model, X, Y = _problem(2)
    gen = torch.Generator().manual_seed(1)
    val = (
        torch.randn(30, DIM, generator=gen, dtype=torch.float64),
        torch.randn(30, DIM, generator=gen, dtype=torch.float64),
    )
    data_index, lr = torch.tensor([0, 1]), torch.tensor([0.05, 0.3], dtype=torch.float64)
    args = {"batch_size": B, **SEEDS}
    traj = train(
        model,
        X,
        Y,
        data_index,
        lr,
        torch.zeros(2),
        stopping=_stop(max_epochs=30),
        val=val,
        val_every=3,
        **args,
    )
    for i in range(2):
        curve = []  # validation MSE on the schedule, from a rerun stopped there
        schedule = [e for e in range(31) if sgd_implicit_reg.on_val_schedule(e, 1, 3)]
        assert schedule[:5] == [0, 1, 2, 3, 6]
        for epoch in schedule:  # epoch 0: the initial parameters (a budget of 0 epochs is not a valid rule)
            again = (
                model
                if epoch == 0
                else train(
                    model, X, Y, data_index, lr, torch.zeros(2), stopping=_stop(max_epochs=epoch), **args
                ).model
            )
            out = batched_mlp.forward(again, val[0])
            curve.append(batched_mlp.mse(out, val[1])[i].item())
        assert traj.early_epoch[i] == schedule[int(np.argmin(curve))]
        early = batched_mlp.mse(batched_mlp.forward(traj.early, val[0]), val[1])[i].item()
        assert early == pytest.approx(min(curve), rel=1e-10)


def test_shards_grow_with_the_config_and_keep_their_specs():
    small = PROFILES["quick"]
    # a μ in a band of its own and a new B add shards; the shards of the others stay as they were
    more = dataclasses.replace(small, lrs=(0.04, *small.lrs), wd_batch_sizes=(*small.wd_batch_sizes, 50))
    a, b = sgd_implicit_reg.shards(small), sgd_implicit_reg.shards(more)
    assert set(a) < set(b)
    assert all(a[name] == b[name] for name in a)
    assert [s["lrs"] for s in b.values() if s["levels"]] == [[0.04], [0.32, 0.64], [1.28]]
    assert {tuple(s["lambdas"]) for s in b.values() if s["batch_size"] == 50} == {small.wd_lambdas}
    assert all(0.0 not in s["lambdas"] for s in b.values() if not s["levels"] and s["batch_size"] == 20)
    many = dataclasses.replace(small, n_runs=sgd_implicit_reg.RUN_BLOCK + 2)
    blocks = {spec["runs"][0] for spec in sgd_implicit_reg.shards(many).values()}
    assert blocks == {0, sgd_implicit_reg.RUN_BLOCK}


@pytest.fixture(scope="module")
def quick_results() -> sgd_implicit_reg.Results:
    torch.set_num_threads(1)  # as the engine runs the shards
    return sgd_implicit_reg.run(PROFILES["quick"])


def test_more_runs_reproduce_the_shared_runs(quick_results):
    """A config with one more run (so every shard holds another model) gives the same results for the old runs:
    a model's trajectory depends only on its own seeds.  Batched float32 arithmetic over a different number of
    models may round differently, so losses are compared to a relative 1e-4, not bit for bit."""
    small = quick_results
    big = sgd_implicit_reg.run(dataclasses.replace(small.config, n_runs=small.config.n_runs + 1))
    n = small.config.n_runs
    np.testing.assert_array_equal(big.status[:, :n], small.status)
    np.testing.assert_array_equal(big.stop_epoch[:, :n], small.stop_epoch)
    for field in ("test_loss", "es_test_loss", "wd_test_loss", "wd_es_test_loss"):
        np.testing.assert_allclose(
            getattr(big, field)[..., :n], getattr(small, field), rtol=1e-4, err_msg=field
        )
    for field in ("level_grad_norm", "level_grad_var"):  # (n_lr, n_runs, n_levels, window)
        np.testing.assert_allclose(
            getattr(big, field)[:, :n], getattr(small, field), rtol=1e-4, err_msg=field
        )


def test_quick_run_shapes_and_round_trip(quick_results, tmp_path):
    r = quick_results
    n_lr, n_runs = len(r.config.lrs), r.config.n_runs
    stop = r.config.stopping
    assert r.history.shape == (n_lr, n_runs, stop.max_epochs // stop.check_every + 1)
    for field in (
        "status",
        "stop_epoch",
        "train_loss",
        "val_loss",
        "test_loss",
        "es_test_loss",
    ):
        assert getattr(r, field).shape == (n_lr, n_runs)
    assert r.level_grad_var.shape == (n_lr, n_runs, len(r.config.loss_levels), stop.window)
    assert np.isfinite(r.test_loss).all()
    end = sgd_stats.final(r)
    ok = sgd_stats.converged(r)
    assert ok.any()
    assert (end["G"][ok] > 0).all() and (end["V"][ok] > 0).all()
    assert np.isnan(end["G"][~np.isfinite(sgd_stats.target_epoch(r))]).all()
    c = r.config
    assert r.wd_test_loss.shape == (len(c.wd_batch_sizes), len(c.wd_lrs), len(c.wd_lambdas), n_runs)
    sgd_implicit_reg.save(r, tmp_path)
    loaded = sgd_implicit_reg.load(tmp_path)
    assert loaded.config == r.config  # a dataclass's equality: the nested Stopping is rebuilt, not a dict
    for field in dataclasses.fields(r):
        a, b = getattr(r, field.name), getattr(loaded, field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b


def _fake_results() -> sgd_implicit_reg.Results:
    """Hand-made results: larger μ gives smaller gradient norms and lower test error; the largest μ diverged."""
    config = dataclasses.replace(
        PROFILES["quick"], lrs=(0.1, 0.2, 0.4, 0.8, 1.6, 3.2), n_runs=6, loss_levels=(0.1, 0.01),
        stopping=Stopping(max_epochs=100, check_every=10, target_loss=0.01, window=2),
        wd_lrs=(0.2, 0.4), wd_lambdas=(0.0, 1e-3, 1e-2),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    n_lr, n_runs = len(config.lrs), config.n_runs
    mu = np.array(config.lrs)[:, None]  # (n_lr, 1)
    epochs = np.arange(11) * 10
    history = np.exp(-epochs[None, None, :] * mu[..., None] / 3) * np.ones((n_lr, n_runs, 1))
    status = np.zeros((n_lr, n_runs), dtype=int)
    status[-1] = Status.DIVERGED
    reached = np.where(status[..., None, None] == Status.DIVERGED, np.nan, 1.0)  # (n_lr, n_runs, 1, 1)
    wd_shape = (1, 2, 3, n_runs)
    wd_test = 0.5 + 0.05 * rng.random(wd_shape)
    wd_test[0, 1, 1] -= 0.1  # best: μ = 0.4, λ = 1e-3
    grad_norm = 1e-6 / mu * (1 + 0.1 * rng.random((n_lr, n_runs)))
    # (n_lr, n_runs, n_levels, window): falling with μ at both levels
    levels = reached * grad_norm[..., None, None] * np.array([100.0, 10.0])[:, None] * np.ones(2)
    return sgd_implicit_reg.Results(
        config=config, process={"noise_std": 0.5}, noise_var=0.25, n_params=1234, epochs=epochs,
        history=history, status=status, stop_epoch=np.full((n_lr, n_runs), 100),
        train_loss=history[..., -1], test_loss=0.6 - 0.02 * mu + 0.001 * rng.random((n_lr, n_runs)),
        val_loss=0.6 - 0.02 * mu + 0.001 * rng.random((n_lr, n_runs)),
        es_epoch=np.full((n_lr, n_runs), 50), es_val_loss=np.full((n_lr, n_runs), 0.55),
        es_test_loss=np.full((n_lr, n_runs), 0.55),
        level_epoch=reached[..., 0] * np.array([10.0, 20.0]),
        level_loss=reached * np.array([0.09, 0.009])[:, None] * np.ones(2), level_grad_norm=levels,
        level_grad_var=levels * 3, level_grad_var_fixed=levels * 3.1,
        wd_val_loss=wd_test + 0.001 * rng.random(wd_shape),
        wd_status=np.full(wd_shape, Status.STALLED), wd_stop_epoch=np.full(wd_shape, 50),
        wd_train_loss=np.full(wd_shape, 0.1), wd_test_loss=wd_test, wd_es_test_loss=wd_test + 0.02,
        wd_es_epoch=np.full(wd_shape, 20),
        seconds={"b-mu0.1-r0..5": 1.0},
    )  # fmt: skip


def test_convergence_figure_draws_every_mu_with_a_converged_run_in_one_plot():
    results = _fake_results()
    fig = sgd_implicit_reg_plot.FIGURES["sgd_convergence"](results)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    drawn = len(results.config.lrs) - 1  # μ = 3.2 diverged in every run: not drawn
    assert len(ax.get_lines()) == drawn + 1  # one median per μ, plus the target
    assert len(ax.collections) == drawn  # one interquartile band per μ
    lines = ax.get_lines()[:-1]
    assert len({str(line.get_color()) for line in lines}) == drawn  # one colour per μ
    assert (
        len({(line.get_marker(), line.get_linestyle()) for line in lines[:4]}) == 4
    )  # neighbours differ in grey
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == r"$\mu = 0.1$ (6/6)" and texts[-2] == r"$\mu = 1.6$ (6/6)" and texts[-1] == "target"


def test_convergence_median_ends_at_the_crossing_not_after_the_window():
    results = _fake_results()
    history = np.array(results.history, dtype=float)
    history[0, :, 3:] = 0.005  # below the target 0.01 from epoch 30 ...
    history[0, :, 5:] = 0.02  # ... and lifted above it by the window after
    history[0, :, 7:] = np.nan  # stopped
    level_epoch = np.array(results.level_epoch, dtype=float)
    level_epoch[0, :, -1] = 30.0
    fig = sgd_implicit_reg_plot.FIGURES["sgd_convergence"](
        dataclasses.replace(results, history=history, level_epoch=level_epoch)
    )
    first = fig.axes[0].get_lines()[0]
    assert first.get_ydata()[-1] == pytest.approx(0.005) and first.get_xdata()[-1] == 30


def test_every_figure_gives_a_mu_the_same_colour_and_marker():
    results = _fake_results()
    medians = sgd_implicit_reg_plot.FIGURES["sgd_convergence"](results).axes[0].get_lines()
    wd = sgd_implicit_reg_plot.FIGURES["sgd_weight_decay"](results).axes[0].get_lines()
    for mu in results.config.wd_lrs:
        j = results.config.lrs.index(mu)
        style = sgd_implicit_reg_plot.mu_style(results.config.lrs, mu)
        assert tuple(medians[j].get_color()) == style["color"] and medians[j].get_marker() == style["marker"]
        assert any(
            tuple(line.get_color()) == style["color"] and line.get_marker() == style["marker"] for line in wd
        )


def test_convergence_band_is_left_out_where_the_runs_spread_wide():
    results = _fake_results()
    history = np.array(results.history, dtype=float)
    history[0, :3, 1:] *= 100  # half the runs of the first μ two decades higher: quartiles far apart
    fig = sgd_implicit_reg_plot.FIGURES["sgd_convergence"](dataclasses.replace(results, history=history))
    bands = fig.axes[0].collections
    assert len(bands[0].get_paths()) == 0 and len(bands[1].get_paths()) > 0
    title = fig.legends[0].get_title().get_text()
    assert title == r"$\mu$ (converged/runs)"  # not "converged runs": a rate with 0/6 is listed too


def test_convergence_median_holds_a_stopped_run_at_its_final_loss():
    history = np.array([[1.0, 0.5, np.nan], [1.0, 0.4, 0.1]])
    np.testing.assert_array_equal(sgd_implicit_reg_plot._held(history), [[1.0, 0.5, 0.5], [1.0, 0.4, 0.1]])


def test_per_run_figure_has_one_panel_per_lr():
    results = _fake_results()
    fig = sgd_implicit_reg_plot.FIGURES["sgd_convergence_runs"](results)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 6
    assert panels[-1].get_title() == "$\\mu = 3.2$: 0/6 conv."  # the diverged μ
    assert all(len(ax.get_lines()) == 6 + 1 for ax in panels)  # every run, plus the target line
    assert {str(line.get_color()) for line in panels[-1].get_lines()[:6]} == {"0.6"}  # unconverged runs grey


def test_gradient_norm_figures_skip_unconverged_lrs():
    results = _fake_results()
    fig = sgd_implicit_reg_plot.FIGURES["sgd_grad_norms"](results)
    assert len(fig.axes) == 2  # G and V at matched loss
    assert all((ax.get_xscale(), ax.get_yscale()) == ("log", "log") for ax in fig.axes)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["$J = $$10^{-1}$", "$J = $$10^{-2}$", "$V$", r"$V_{\mathrm{fix}}$"]  # V_fix beside V
    fig = sgd_implicit_reg_plot.FIGURES["sgd_final_grads"](results)
    assert [len(ax.get_legend().get_texts()) for ax in fig.axes] == [2, 2]  # G and V; G/J and V/J
    fig = sgd_implicit_reg_plot.FIGURES["sgd_test_vs_grad"](results)
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    assert len(fig.legends[0].get_texts()) == 5  # the diverged μ = 3.2 is left out


def test_weight_decay_figure_labels_the_lambda_grid_and_the_early_stopped_key():
    results = _fake_results()
    fig = sgd_implicit_reg_plot.FIGURES["sgd_weight_decay"](results)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "$10^{-3}$", "$10^{-2}$"]
    key = {
        str(line.get_color())
        for line in fig.legends[0].findobj(Line2D)
        if line.get_markerfacecolor() == "white"
    }
    drawn = {str(line.get_color()) for line in ax.get_lines() if line.get_markerfacecolor() == "white"}
    assert len(key) == len(results.config.wd_lrs) and key == drawn  # the key shows every μ's open symbol


def test_paired_ratio_is_clear_exactly_when_its_interval_excludes_one():
    rng = np.random.default_rng(4)
    before = np.exp(rng.normal(size=10))
    down = sgd_stats.paired_ratio(before, before * 0.5 * np.exp(0.05 * rng.normal(size=10)))
    assert down.value == pytest.approx(0.5, rel=0.05) and down.hi < 1 and down.direction == "down"
    assert down.lo < down.value < down.hi
    noise = sgd_stats.paired_ratio(before, before * np.exp(rng.normal(size=10)))
    assert noise.lo < 1 < noise.hi and noise.direction == "unclear"
    up = sgd_stats.paired_ratio(before, np.where(np.arange(10) < 3, np.nan, before * 3))  # runs left out
    assert up.n == 7 and up.direction == "up"
    one = sgd_stats.paired_ratio(before[:1], before[:1] * 0.1)  # a single run has no interval
    assert one.n == 1 and np.isnan(one.lo) and one.direction == "unclear"


def test_association_resamples_runs_and_is_clear_only_beyond_zero():
    rng = np.random.default_rng(5)
    x = np.log(np.arange(1.0, 6.0))[:, None] + 0.01 * rng.normal(size=(5, 8))  # (n_mu, n_runs)
    clear = sgd_stats.association(x, 2 * x)
    assert clear.rho == pytest.approx(1.0) and clear.lo > 0 and clear.direction == "up" and clear.n == 40
    none = sgd_stats.association(x, rng.normal(size=(5, 8)))
    assert none.lo < 0 < none.hi and none.direction == "unclear"


def test_shape_of_the_profiles_follows_their_intervals():
    down, up, flat = (sgd_stats.Ratio(v, v * 0.9, v * 1.1, 5) for v in (0.2, 3.0, 1.0))
    P = sgd_stats.Profile
    assert sgd_stats.shape([P(0, None, down), P(1, flat, down)]) == "falling"
    assert sgd_stats.shape([P(2, up, down), P(0, None, down)]) == "rise_then_fall"
    assert sgd_stats.shape([P(2, up, flat), P(0, None, down)]) == "not_falling"
    assert sgd_stats.shape([P(3, up, None)]) == "not_falling"  # the largest value at the largest μ


def test_profile_finds_the_largest_geometric_mean():
    runs = np.exp(np.random.default_rng(6).normal(scale=0.01, size=(4, 7)))
    p = sgd_stats.profile(np.array([1.0, 10.0, 5.0, 0.1])[:, None] * runs)
    assert p.peak == 1 and p.rise.direction == "up" and p.fall.direction == "down"
    assert p.rise.value == pytest.approx(10, rel=0.05) and p.fall.value == pytest.approx(0.01, rel=0.05)
    assert sgd_stats.profile(np.array([4.0, 3.0, 2.0, 1.0])[:, None] * runs).rise is None


def test_context_follows_the_data():
    results = _fake_results()
    ctx = sgd_implicit_reg_plot.context(results)
    assert ctx["grad_shape"] == "falling" and ctx["mus_last"] == r"\num{1.6}"  # μ = 3.2 diverged: left out
    assert ctx["left_out"] == [{"mu": r"\num{3.2}", "n": r"\num{0}"}]
    assert [r["diverged"] for r in ctx["lr_rows"]][-1] == r"\num{6}" and ctx["lr_rows"][-1]["epochs"] is None
    assert ctx["test_best_mu"] == r"\num{1.6}" and ctx["test_right"] is None
    assert ctx["test_left"]["direction"] == "down"
    assert ctx["wd_rows"][0]["lam"] == r"\num{0.001}" and ctx["wd_rows"][0]["mu"] == r"\num{0.4}"
    assert ctx["wd_effect"]["direction"] == "down"
    assert ctx["es_effect"]["direction"] == "up"  # the fake early-stopped test MSE is 0.02 higher
    assert ctx["es_vs_wd"]["direction"] == "up"  # ... and higher than with the selected weight decay
    assert ctx["lr_rows"][0]["J_cross"] == r"\num{0.0090}"  # the crossing check, below the target 0.01
    assert [r["mu"] for r in ctx["not_drawn"]] == [r"\num{3.2}"]
    assert (
        ctx["fixed_over_expected_lo"] == ctx["fixed_over_expected_hi"] == r"\num{1.03}"
    )  # V_fix = 3.1, V = 3
    assert sum(r["selected"] for r in ctx["wd_grid"]) == 1
    flipped = dataclasses.replace(results, level_grad_norm=results.level_grad_norm[[4, 3, 2, 1, 0, 5]].copy())
    assert sgd_implicit_reg_plot.context(flipped)["grad_shape"] == "not_falling"  # G rises with μ
    no_gain = dataclasses.replace(results, wd_test_loss=results.wd_test_loss + np.array([0, 1, 1])[:, None])
    assert sgd_implicit_reg_plot.context(no_gain)["wd_effect"]["direction"] == "up"


def test_a_correlation_prints_the_decimals_its_interval_supports():
    text = sgd_stats.association_tex(sgd_stats.Association(0.0018, -0.16, 0.19, 66))
    assert (text["rho"], text["lo"], text["hi"]) == (r"\num{0.00}", r"\num{-0.16}", r"\num{0.19}")
    edge = sgd_stats.association_tex(sgd_stats.Association(-0.8312, -0.8349, -0.60, 10))
    assert (
        len({edge["rho"], edge["lo"], edge["hi"]}) == 3
    )  # the estimate never prints as an end of its interval


def test_ratio_digits_separate_an_estimate_from_its_interval():
    text = sgd_stats.ratio_tex(sgd_stats.Ratio(1.104, 1.097, 1.112, 6))
    assert (text["value"], text["lo"], text["hi"]) == (r"\num{1.10}", r"\num{1.10}", r"\num{1.11}") or len(
        {text["value"], text["lo"], text["hi"]}
    ) == 3
    assert len({text["value"], text["lo"], text["hi"]}) == 3


# --- render tests: every verdict branch, through the templates -----------------------------

SECTION, SUPPLEMENT, ANSWERS = (
    "sections/sgd_implicit_reg.tex.j2",
    "supplement/sgd_implicit_reg.tex.j2",
    "answers/sgd_implicit_reg.tex.j2",
)


@functools.cache
def _fake_context() -> dict:
    return sgd_implicit_reg_plot.context(_fake_results())


def _render(template: str, **changes) -> str:
    ctx = _fake_context() | changes
    extra = {"figure_path": lambda name: f"{name}.pdf", "provenance": lambda name: ""}
    pages = supplement.run_figures({"sgd_implicit_reg": ctx, **extra}, ["sgd_implicit_reg"])
    return " ".join(render(template, {"sgd_implicit_reg": ctx, "run_figures": pages, **extra}).split())


def _ratio(direction: str, lo: str | None = r"\num{0.5}") -> dict:
    return {
        "value": r"\num{0.7}",
        "lo": lo,
        "hi": r"\num{0.9}" if lo else None,
        "n": r"\num{5}",
        "direction": direction,
    }


def test_section_and_supplement_render_for_the_fake_results():
    text = _render(SECTION)
    assert r"\label{sec:sgd_implicit_reg}" in text and r"\supfig{sup:sgd_implicit_reg:runs}" in text
    assert "times lower than at their largest value" in text
    selected, no_decay, early = _fake_context()["wd_rows"]  # (d) reports training and test losses
    assert early["train"] is None
    assert f"with training and test MSE {selected['train']} and {selected['test']}" in text
    assert f"against {no_decay['train']} and {no_decay['test']} without weight decay" in text
    assert (
        "$\\mu=\\num{3.2}$, where no run converged (\\num{0} stalled, \\num{6} diverged)" in text
    )  # not drawn
    supplement = _render(SUPPLEMENT)
    for label in ("training", "runs", "statistics", "final", "weight-decay", "wd-table", "wd-figure"):
        assert rf"\label{{sup:sgd_implicit_reg:{label}}}" in supplement
    assert "$\\mu=\\num{3.2}$ (\\num{0} converged)" in supplement
    # the per-run figure page is a PyLaTeX Figure built from the results: the figure, its counts, its label
    page = supplement[supplement.index(r"\begin{figure}[tbp]") : supplement.index(r"\end{figure}")]
    assert r"\includegraphics[width=\linewidth]{sgd_convergence_runs.pdf}" in page
    assert r"Converged runs of 6 per $\mu$: 0.1: 6," in page and "3.2: 0." in page
    assert r"\label{sup:sgd_implicit_reg:runs}" in page


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("falling", ["times lower than at their largest value", "as measured here"]),
        (
            "rise_then_fall",
            [
                "times lower than at their largest value",
                "Below their largest value they rise",
                "which the first-order theory does not explain",
            ],
        ),
        (
            "not_falling",
            ["do not fall clearly from their largest value", "these runs do not show it clearly"],
        ),
    ],
)
def test_gradient_verdict_words(shape, words):
    rise = {"lo": r"\num{1.5}", "hi": r"\num{3}", "one": False}
    text = _render(SECTION, grad_shape=shape, rise_range=rise)
    assert all(w in text for w in words)
    assert (
        "gives smaller" not in text
    )  # no monotonicity claim: only the fall from the largest value is tested
    answer = _render(ANSWERS, grad_shape=shape)
    assert ("do not fall clearly" in answer) == (shape == "not_falling")


@pytest.mark.parametrize(
    ("direction", "words", "verb"),
    [
        ("down", "clearly lower", "clearly lowers"),
        ("up", "clearly higher", "clearly raises"),
        ("unclear", "not clearly different", "does not clearly change"),
    ],
)
def test_test_error_and_weight_decay_words_follow_the_interval(direction, words, verb):
    r = _ratio(direction)
    text = _render(SECTION, test_left=r, test_right=r, wd_effect=r, es_effect=r, es_vs_wd=r)
    assert f"weight decay {verb} the test MSE, by a ratio of" in text
    assert len(re.findall(rf"{words}\b", text)) == 2  # test MSE left, right (early stopping: its ratios only)
    others = {"clearly lower", "clearly higher", "not clearly different"} - {words}
    assert not any(w in text[text.index("(c) Gradient") :] for w in others)
    assert ("not sufficient here" in text) == (direction == "down")
    answer = _render(ANSWERS, wd_effect=r)
    assert ("is not sufficient" in answer) == (direction == "down")


def test_test_error_lowest_at_the_smallest_rate_and_single_run_interval():
    text = _render(SECTION, test_left=None, test_right=_ratio("unclear", lo=None))
    assert "The test MSE is lowest at" in text and "one run, no interval" in text


@pytest.mark.parametrize(
    ("direction", "words"),
    [
        ("up", "rises clearly with"),
        ("down", "falls clearly with"),
        ("unclear", "shows no clear association with"),
    ],
)
def test_association_words(direction, words):
    assoc = {
        "rho": r"\num{0.3}",
        "lo": r"\num{0.1}",
        "hi": r"\num{0.5}",
        "n": r"\num{40}",
        "direction": direction,
    }
    text = _render(SECTION, test_vs_G=assoc, test_vs_V=assoc)
    assert text.count(words) == 2


@pytest.mark.parametrize(
    ("direction", "words"),
    [
        ("down", "and stopping early, without any penalty, more."),
        ("up", "more than stopping early does"),
        ("unclear", "about as much as stopping early does"),
    ],
)
def test_weight_decay_conclusion_weighs_early_stopping(direction, words):
    text = _render(SECTION, wd_effect=_ratio("down"), es_vs_wd=_ratio(direction))
    assert "not sufficient here: weight decay improves on it" in text and words in text
    answer = _render(ANSWERS, wd_effect=_ratio("down"), es_vs_wd=_ratio(direction))
    assert ("stopping early without weight decay does better still" in answer) == (direction == "down")


def test_weight_decay_side_sentences():
    text = _render(SECTION, validation_prefers_decay=False, wd_lambda_at_edge=True)
    assert "the validation MSE is lower still without weight decay" in text
    assert "the largest searched" in text
    text = _render(SECTION, validation_prefers_decay=True, wd_lambda_at_edge=False)
    assert "lower still" not in text and "largest searched" not in text


def test_explanation_names_the_instability_only_where_it_happened():
    up = _ratio("up")
    text = _render(SECTION, test_right=up, any_stalled=True, any_diverged=False)
    assert "(runs stall at the largest rates)" in text
    text = _render(SECTION, test_right=up, any_stalled=True, any_diverged=True)
    assert "(runs stall or diverge at the largest rates)" in text
    assert "far from the gradient flow" not in _render(SECTION, test_right=_ratio("unclear"))
