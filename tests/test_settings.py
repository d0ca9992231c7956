"""The student's settings file: parsed, validated with one clear error, and a date that is never the build time."""

import dataclasses
import datetime
import functools
import re

import numpy as np
import pytest

from experiments.data import DataSource
from report import project, settings
from report.cli import main
from report.paths import ROOT
from report.project import Project
from report.settings import Settings, SettingsError, date_text, parse
from report.wiring import ReportGraph as Graph

PROJECT = project.load()


def data_source(
    s: Settings, declared: Project = PROJECT, root=ROOT, resolve=settings.data_source, run: bool = True
) -> DataSource:
    """The source ``s`` names, with relative paths from ``root``."""
    return resolve(s, dataclasses.replace(declared, root=root), run=run)


def test_defaults_give_an_anonymous_title_page(tmp_path):
    s = settings.load(tmp_path / "missing.toml")
    assert s == Settings()
    assert s.author == s.student_number == ""
    assert date_text(s, {}) == ""


def test_the_repository_file_and_the_readme_example_are_valid():
    assert settings.load(PROJECT.settings_file).course
    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
    s = parse(example)
    assert s.author and s.student_number and s.date == datetime.date(2024, 4, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            'autor = "A"', "unknown key 'autor'; the keys are title, course, author", id="unknown-key"
        ),
        pytest.param(
            "student_number = 123456", "'student_number' must be a string, not int", id="wrong-type"
        ),
        pytest.param(
            "date = 2024-04-08T10:00:00", "'date' must be a string or a date", id="datetime-not-date"
        ),
        pytest.param('title = "unterminated', "not valid TOML", id="syntax"),
    ],
)
def test_a_bad_file_is_one_clear_error(text, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        parse(text, source="settings.toml")


def test_the_date_comes_from_the_settings_then_source_date_epoch():
    epoch = {
        "SOURCE_DATE_EPOCH": str(int(datetime.datetime(2024, 4, 8, 12, tzinfo=datetime.UTC).timestamp()))
    }
    assert date_text(Settings(date=datetime.date(2024, 3, 28)), epoch) == "28 March 2024"
    assert date_text(Settings(date="Spring 2024"), epoch) == "Spring 2024"
    assert date_text(Settings(), epoch) == "8 April 2024"
    with pytest.raises(SettingsError, match="SOURCE_DATE_EPOCH must be an integer"):
        date_text(Settings(), {"SOURCE_DATE_EPOCH": "yesterday"})


def test_the_title_page_context_uses_the_settings(monkeypatch):
    from report import document

    chosen = Settings(author="Ada", date=datetime.date(2024, 4, 8))
    monkeypatch.setattr(settings, "load", lambda path: chosen)
    page = document.title_page(PROJECT, {})
    assert page["author"] == "Ada" and page["date"] == "8 April 2024"
    assert page["title"] == PROJECT.title  # the declaration's default when the settings name none


def test_the_data_table_names_a_source_and_is_checked(tmp_path):
    assert data_source(parse("")) == data_source(parse('[data]\nsource = "builtin"'))
    s = parse('[data]\nsource = "examples/notebook_data.py:draw"')
    assert data_source(s).kind == "callable"
    with pytest.raises(SettingsError, match=r"\[data\] holds one key"):
        parse('[data]\nsource = "builtin"\nseed = 3')
    with pytest.raises(SettingsError, match=r"\[data\] source must be a string"):
        parse("[data]\nsource = 3")
    with pytest.raises(SettingsError, match=r"settings.toml: \[data\] source = 'data.npz': no such file"):
        data_source(parse('[data]\nsource = "data.npz"'), root=tmp_path)


def _npz(path, train=200, test=1000, shift=0.0):
    rng = np.random.default_rng(0)
    arrays = {
        f"{k}_{s}": rng.normal(size=(n, 8)) + shift
        for s, n in (("train", train), ("test", test))
        for k in "XY"
    }
    np.savez(path, **arrays)
    return path


def test_the_graph_applies_the_source_and_its_content_is_in_the_cache_key(tmp_path):
    default = Graph("quick", out=tmp_path / "a")
    assert Graph("quick", out=tmp_path / "a", data=DataSource()).key("double_descent") == default.key(
        "double_descent"
    )
    path = _npz(tmp_path / "data.npz")
    source = data_source(parse(f'[data]\nsource = "{path}"'))
    graph = Graph("quick", out=tmp_path / "a", data=source)
    for stem in ("double_descent", "sgd_implicit_reg"):
        assert graph.tasks[stem].config["data"] == dataclasses.asdict(source)
        assert graph.key(stem) != default.key(stem)
    assert graph.key("autodiff") == default.key("autodiff")  # stages without data are untouched
    _npz(path, shift=1.0)  # same name, new content
    changed = Graph("quick", out=tmp_path / "a", data=data_source(parse(f'[data]\nsource = "{path}"')))
    assert changed.key("double_descent") != graph.key("double_descent")


def test_a_callable_source_is_keyed_by_its_module_source(tmp_path):
    module = tmp_path / "gen.py"
    module.write_text((ROOT / "examples" / "notebook_data.py").read_text())
    first = Graph("quick", out=tmp_path / "a", data=data_source(parse(f'[data]\nsource = "{module}:draw"')))
    module.write_text(module.read_text().replace("NOISE_STD = 0.3", "NOISE_STD = 0.2"))
    second = Graph("quick", out=tmp_path / "a", data=data_source(parse(f'[data]\nsource = "{module}:draw"')))
    assert first.key("sgd_implicit_reg") != second.key("sgd_implicit_reg")


def test_too_few_rows_for_a_profile_is_one_error_when_the_graph_is_built(tmp_path):
    source = data_source(parse(f'[data]\nsource = "{_npz(tmp_path / "small.npz", train=150)}"'))
    with pytest.raises(SettingsError, match=r"double_descent.n_train = 200 needs 200 train rows .* has 150"):
        Graph("quick", out=tmp_path / "a", data=source)


def test_the_build_command_refuses_a_malformed_source_before_computing(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "settings.toml"
    np.savez(tmp_path / "bad.npz", X_train=np.zeros((5, 8)))
    bad.write_text('[data]\nsource = "bad.npz"\n')
    monkeypatch.setattr(settings, "load", lambda path: settings.parse(bad.read_text()))
    monkeypatch.setattr(settings, "data_source", functools.partial(data_source, root=tmp_path))
    assert main(["--profile", "quick", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "[data] source = 'bad.npz'" in err and "missing key(s) Y_train, X_test, Y_test" in err
