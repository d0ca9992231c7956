"""The data-generating process and its optimal test error R_t; data sources named in the settings."""

import dataclasses
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pypdf import PdfReader

from examples.make_npz import write
from experiments import double_descent as dd
from experiments import double_descent_plot as dd_plot
from experiments import sgd_implicit_reg as sgd
from experiments import sgd_implicit_reg_stats as sgd_stats
from experiments.data import (
    DataError,
    DataProcess,
    DataSource,
    as_source,
    check_config,
    draw,
    gamma_test,
    make_data,
    noise_variance,
    optimal_test_error,
    resolve,
    teacher,
)
from experiments.lbfgs_config import LBFGS
from report import wiring
from report.paths import ROOT


def test_shapes_and_determinism():
    X, Y = make_data(50, sample_seed=3)
    assert X.shape == Y.shape == (50, 8)
    X2, Y2 = make_data(50, sample_seed=3)
    assert torch.equal(X, X2)
    assert torch.equal(Y, Y2)
    X3, _ = make_data(50, sample_seed=4)
    assert not torch.allclose(X, X3)


def test_teacher_is_fixed_by_its_seed_not_by_the_sample():
    X = torch.randn(20, 8, dtype=torch.float64)
    p = DataProcess()
    assert torch.equal(teacher(X, p), teacher(X, p))
    assert not torch.allclose(teacher(X, p), teacher(X, DataProcess(teacher_seed=p.teacher_seed + 1)))


def test_inputs_are_standard_normal():
    X, _ = make_data(40_000, sample_seed=5, dtype=torch.float64)
    assert X.mean(0).abs().max() < 0.03  # 5 standard errors at n = 40000
    assert torch.allclose(torch.cov(X.T), torch.eye(8, dtype=torch.float64), atol=0.04)


def test_optimal_test_error_is_noise_variance_and_matches_the_true_g():
    p = DataProcess()
    assert optimal_test_error(p) == pytest.approx(p.noise_std**2)
    n = 40_000
    X, Y = make_data(n, sample_seed=6, process=p, dtype=torch.float64)
    empirical = ((Y - teacher(X, p)) ** 2).mean().item()
    # the mean of 8n squared Gaussians has relative standard deviation sqrt(2 / (8n))
    assert empirical == pytest.approx(optimal_test_error(p), rel=5 * (2 / (8 * n)) ** 0.5)


def test_any_other_predictor_is_worse_than_g():
    p = DataProcess()
    X, Y = make_data(20_000, sample_seed=7, process=p, dtype=torch.float64)
    g = teacher(X, p)
    assert ((Y - 1.1 * g) ** 2).mean() > ((Y - g) ** 2).mean()
    assert ((Y - Y.mean(0)) ** 2).mean() > ((Y - g) ** 2).mean() + 0.1  # the signal is learnable


# --- Bring your own data ------------------------------------------------------------------------

CALLABLE = "examples/notebook_data.py:draw"


@pytest.fixture
def npz(tmp_path):
    """The example archive: 200 training and 1000 test rows of examples/notebook_data.py (tau^2 = 0.09)."""
    return resolve(str(write(tmp_path / "notebook.npz")))


def test_the_builtin_source_draws_exactly_make_data():
    for split in ("train", "test"):
        X, Y = draw(DataSource(), 30, 5, torch.float64, split)
        X0, Y0 = make_data(30, 5, DataProcess(), torch.float64)
        assert torch.equal(X, X0) and torch.equal(Y, Y0)
    assert noise_variance(DataSource()) == (0.25, False)
    assert resolve("builtin") == resolve("") == DataSource()


@pytest.mark.parametrize("text", [CALLABLE, "examples.notebook_data:draw"])
def test_a_callable_source_draws_new_samples_and_states_its_noise(text):
    source = resolve(text)
    assert source.kind == "callable" and len(source.digest) == 64
    X, Y = draw(source, 40, 3)
    assert X.shape == Y.shape == (40, 8) and X.dtype == torch.float32
    assert torch.equal(draw(source, 40, 3)[0], X)
    assert not torch.equal(draw(source, 40, 4)[0], X)
    assert noise_variance(source) == (pytest.approx(0.09), False)
    assert as_source(dataclasses.asdict(source)) == source  # shard specs carry the dict form


def test_an_npz_source_subsamples_its_arrays_without_replacement(npz):
    assert npz.kind == "npz"
    with np.load(npz.spec) as f:
        train, test = f["X_train"], f["X_test"]
    X, _ = draw(npz, 150, 7, torch.float64)
    rows = [np.flatnonzero((train == x).all(1)) for x in X.numpy()]
    assert all(len(r) == 1 for r in rows) and len({r[0] for r in rows}) == 150  # distinct rows of X_train
    assert not torch.equal(draw(npz, 150, 8, torch.float64)[0], X)  # another seed, another subset
    whole = draw(npz, 1000, 0, torch.float64, "test")[0].numpy()
    assert sorted(map(tuple, whole)) == sorted(map(tuple, test))  # n = rows: the whole array
    assert torch.equal(draw(npz, 50, 1, split="val")[0], draw(npz, 50, 1, split="test")[0])  # no X_val
    with pytest.raises(DataError, match="201 train rows asked for, the archive has 200"):
        draw(npz, 201, 0)


def test_an_npz_noise_variance_is_an_estimate_near_the_truth(npz):
    value, estimated = noise_variance(npz)
    assert estimated
    assert value == pytest.approx(0.09, rel=0.3)  # 1200 rows in 8 dimensions: a rough estimate


def test_the_gamma_test_recovers_the_builtin_noise_variance():
    X, Y = make_data(3000, 11, dtype=torch.float64)
    assert gamma_test(X.numpy(), Y.numpy()) == pytest.approx(0.25, rel=0.1)
    assert gamma_test(X.numpy(), 2 * Y.numpy()) == pytest.approx(1.0, rel=0.1)  # scales with the noise


def test_a_source_that_changed_after_it_was_read_is_refused(tmp_path):
    module = tmp_path / "src.py"
    module.write_text((ROOT / "examples" / "notebook_data.py").read_text())
    source = resolve(f"{module}:draw")
    module.write_text(module.read_text().replace("NOISE_STD = 0.3", "NOISE_STD = 0.4"))
    with pytest.raises(DataError, match="changed since the settings were read"):
        draw(source, 5, 0)


BAD_FUNCTIONS = {
    "pair": ("return X, X", "returned a tuple of length 2; expected a tuple (X, Y, noise_variance)"),
    "array": ("return X", "returned ndarray; expected a tuple"),
    "flat": ("return X.ravel(), X, 0.1", "X has shape (40,); expected (n, d)"),
    "dtype": ("return X.astype(complex), X, 0.1", "X has dtype complex128; expected real numbers"),
    "text": ("return X.astype(str), X, 0.1", "X has dtype <U32; expected real numbers"),
    "rows": ("return X[:-1], X[:-1], 0.1", "X has 4 rows; expected 5"),
    "dim": ("return X[:, :3], X[:, :3], 0.1", "X has 3 columns and Y has 3; expected 8 each"),
    "nan": ("return X, X * np.nan, 0.1", "Y contains NaN"),
    "variance": ("return X, X, -1.0", "noise variance -1.0; expected a finite number >= 0"),
    "random": (
        "return np.random.default_rng().normal(size=(n, 8)), X, 0.1",
        "different data for the same seed",
    ),
    "seedless": ("return np.arange(n * 8.0).reshape(n, 8), X, 0.1", "the same X for seeds 0 and 1"),
    "raises": ("raise RuntimeError('no notebook')", "(5, 0) raised RuntimeError: no notebook"),
}


@pytest.mark.parametrize("name", BAD_FUNCTIONS)
def test_a_malformed_callable_gets_one_error_naming_what_is_wrong(tmp_path, name):
    body, message = BAD_FUNCTIONS[name]
    module = tmp_path / "bad.py"
    module.write_text(
        "import numpy as np\n\n\ndef f(n, seed):\n"
        "    X = np.random.default_rng(seed).normal(size=(n, 8))\n"
        f"    {body}\n"
    )
    with pytest.raises(DataError, match=re.escape(message)):
        resolve(f"{module}:f")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no_such_module_xyz:draw", "module 'no_such_module_xyz' not found"),
        ("examples.notebook_data:nope", "has no function 'nope'"),
        ("examples/missing.py:draw", "no such file"),
        ("missing.npz", "no such file"),
        ("notebook", "not a data source; expected 'builtin', 'module:function'"),
    ],
)
def test_a_source_that_cannot_be_found_is_named(text, message):
    with pytest.raises(DataError, match=message):
        resolve(text)


def _arrays(rows: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.normal(size=(rows, 8)) for k in ("X_train", "Y_train", "X_test", "Y_test")}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("Y_test"), "missing key.s. Y_test; found X_train, Y_train, X_test"),
        (
            lambda a: a.update(X_train=a["X_train"].astype(np.complex64)),
            "bad.npz: X_train has dtype complex64",
        ),
        (lambda a: a.update(Y_train=a["Y_train"] > 0), "Y_train has dtype bool"),
        (lambda a: a.update(X_test=a["X_test"][None]), r"X_test has shape \(1, 20, 8\)"),
        (lambda a: a.update(Y_test=a["Y_test"][:-2]), "X_test has 20 rows but Y_test has 18"),
        (lambda a: a.update(X_val=a["X_test"]), "X_val and Y_val come together"),
        (lambda a: a.update(x_extra=a["X_test"]), "unknown key.s. x_extra"),
        (lambda a: a.update(X_train=np.array([["a"] * 8] * 20, dtype=object)), "not a readable .npz"),
        (lambda a: a.update(Y_test=a["Y_test"] * 1e300), "Y_test has values up to .*e\\+300; scale it"),
        (lambda a: a.update(Y_train=np.ones((20, 8))), "Y_train is constant"),
        (lambda a: a.update(X_train=np.zeros((0, 8)), Y_train=np.zeros((0, 8))), "X_train has no rows"),
    ],
)
def test_a_malformed_npz_gets_one_error_naming_what_is_wrong(tmp_path, change, message):
    arrays = _arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        resolve(str(path))


def test_a_file_that_is_not_an_archive_is_named(tmp_path):
    (tmp_path / "data.npz").write_text("X_train,Y_train\n1,2\n")
    with pytest.raises(DataError, match=r"not an \.npz archive \(not a zip file\)"):
        resolve(str(tmp_path / "data.npz"))


def _tiny_dd(source: DataSource) -> dd.Config:
    return dataclasses.replace(
        dd.PROFILES["quick"], widths=(4, 10), curve_widths=(4, 10), over_width=10, n_train=(30, 60),
        n_test=200, rank_widths=(4,), rank_samples=60, optimizer=LBFGS(window=10, max_iters=20), data=source,
    )  # fmt: skip


def _tiny_sgd(source: DataSource) -> sgd.Config:
    return dataclasses.replace(sgd.PROFILES["quick"], n_test=200, n_val=100, data=source)


@pytest.mark.parametrize("kind", ["callable", "npz"])
def test_both_assignments_run_on_a_named_source_and_keep_it(tmp_path, kind, request):
    source = resolve(CALLABLE) if kind == "callable" else request.getfixturevalue("npz")
    r_t, estimated = noise_variance(source)
    results = dd.run(_tiny_dd(source))
    assert results.r_t == r_t and results.data["kind"] == kind and results.data["estimated"] == estimated
    assert math.isnan(results.r_t_empirical)  # the true g of a named source is unknown
    _, Y_test = draw(source, 200, results.config.sample_seed, torch.float64, "test")
    assert results.data["var_y"] == pytest.approx(Y_test.var(0).mean().item())
    (tmp_path / "dd").mkdir()
    dd.save(results, tmp_path / "dd")
    assert dd.load(tmp_path / "dd").config.data == source
    spec = dd_plot.context(results, threshold_diagnosis=[])["data"][
        "spec"
    ]  # LaTeX, breakable after every slash
    assert spec.endswith(source.spec.split("/")[-1].replace("_", r"\_"))
    assert "tmp" not in spec  # a file outside the project by its name alone: no path of this machine

    trained = sgd.run(_tiny_sgd(source))
    assert trained.noise_var == r_t and trained.process["kind"] == kind
    (tmp_path / "sgd").mkdir()
    sgd.save(trained, tmp_path / "sgd")
    assert sgd.load(tmp_path / "sgd").config.data == source
    assert sgd_stats.context(trained)["data"]["estimated"] == estimated


def test_a_builtin_run_records_the_true_g_facts():
    results = dd.run(_tiny_dd(DataSource()))
    assert results.r_t == 0.25 and 0.2 < results.r_t_empirical < 0.3 and results.signal_var > 0.3
    assert dd_plot.context(results, threshold_diagnosis=[])["data"] == {"kind": "builtin", "estimated": False}


def test_fewer_rows_than_a_configuration_draws_is_an_error_before_any_run(npz):
    config = dataclasses.replace(dd.PROFILES["full"], data=npz)
    with pytest.raises(DataError, match=r"double_descent.n_test = 10000 needs 10000 test rows .* has 1000"):
        check_config(npz, config, "double_descent")
    check_config(npz, dd.PROFILES["quick"], "double_descent")  # the quick profile fits the example


@pytest.mark.latex
@pytest.mark.slow
def test_the_quick_report_says_where_its_data_came_from(tmp_path, npz):
    """An end-to-end quick build on the example archive: the PDF names it and labels R_t as estimated."""
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    graph = wiring.ReportGraph("quick", out=tmp_path / "build", data=npz)
    graph.run(["report"], log=lambda line: None)
    text = " ".join(page.extract_text() for page in PdfReader(graph.root / "report.pdf").pages)
    text = re.sub(r"\s+", " ", text)
    squeezed = text.replace(" ", "")  # pypdf's spaces inside stretched lines are guesses
    # the archive lies outside the project, so the document names it by its file name only
    assert (
        f"Thedataarethearraysof{Path(npz.spec).name}thatsettings.tomlnames(SHA-256{npz.digest[:12]}"
        in squeezed
    )
    assert "estimated: the data are fixed arrays" in text
    assert "The course notebook was not available" not in text  # the abstract follows the source too
    assert "use the data source that settings.toml names" in text and "estimated from those arrays" in text
    assert "(from " in text and "rows of the test array" in text  # the SGD setup follows the source
