"""Configuration overrides: checked against the Config dataclass, part of the cache key, listed."""

import dataclasses
import re

import pytest

from report import overrides
from report.cli import main
from report.overrides import OverrideError
from report.settings import SettingsError, parse
from report.wiring import ReportGraph


@dataclasses.dataclass(frozen=True)
class Inner:
    patience: int = 3
    tol: float = 0.1


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1)
    rate: float = 0.5
    steps: int = 10
    name: str = "a"
    flag: bool = False
    inner: Inner = Inner()


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("s.seeds=[3, 4, 5]", {"seeds": (3, 4, 5)}),
        ("s.rate=1", {"rate": 1.0}),
        ("s.steps=20", {"steps": 20}),
        ("s.name=b", {"name": "b"}),
        ('s.name="two words"', {"name": "two words"}),
        ("s.flag=true", {"flag": True}),
        ("s.inner.patience=5", {"inner": {"patience": 5, "tol": 0.1}}),
        ("s.inner={tol=1}", {"inner": {"patience": 3, "tol": 1.0}}),
    ],
)
def test_a_valid_override_replaces_its_field(assignment, expected):
    changes = overrides.parse([assignment])["s"]
    assert (
        dataclasses.asdict(overrides.apply("s", Config(), changes)) == dataclasses.asdict(Config()) | expected
    )


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("s.steps=1.5", "s.steps: expected int, got float 1.5"),
        ("s.steps=true", "s.steps: expected int, got bool"),
        ("s.seeds=3", "s.seeds: expected a list"),
        ("s.seeds=[1, 0.5]", "s.seeds[1]: expected int"),
        ("s.setps=3", "no such field; did you mean s.steps?"),
        (
            "s.nope=3",
            "s.nope: no such field; s's fields: seeds, rate, steps, name, flag, inner (patience, tol)",
        ),
        ("s.inner.patiense=3", "did you mean s.inner.patience? s.inner's fields: patience, tol"),
        ("s.patience=3", "s.patience: no such field; did you mean s.inner.patience?"),
        ("s.inner.tol=x", "s.inner.tol: expected float, got str 'x'"),
        (
            "s.inner=3",
            "s.inner is a group of fields (patience, tol): set one of them, e.g. --set s.inner.patience=",
        ),
        ("s.steps.max=3", "s.steps is not a group of fields (int): set it whole, e.g. --set s.steps=10"),
    ],
)
def test_a_bad_override_is_one_clear_error(assignment, message):
    with pytest.raises(OverrideError, match=re.escape(message)):
        overrides.apply("s", Config(), overrides.parse([assignment])["s"])


@pytest.mark.parametrize("assignment", ["steps=3", "s.=3", "s.inner..tol=3", "s.inner.=3"])
def test_an_assignment_without_stage_and_field_is_refused(assignment):
    with pytest.raises(OverrideError, match=r"expected STAGE\.FIELD=VALUE"):
        overrides.parse([assignment])


def test_the_command_line_wins_over_the_settings_file():
    from_file = parse("[overrides.s]\nsteps = 5\nrate = 0.1\n").overrides
    assert overrides.merge(from_file, overrides.parse(["s.steps=7"])) == {"s": {"steps": 7, "rate": 0.1}}
    with pytest.raises(SettingsError, match="overrides"):
        parse("overrides = 3\n")


def test_a_nested_table_in_the_settings_file_merges_field_by_field_with_the_command_line():
    from_file = parse("[overrides.s.inner]\npatience = 5\ntol = 0.5\n").overrides
    merged = overrides.merge(from_file, overrides.parse(["s.inner.patience=7"]))
    assert merged == {"s": {"inner.patience": 7, "inner.tol": 0.5}}
    assert overrides.describe(merged) == ["s.inner.patience=7", "s.inner.tol=0.5"]
    assert overrides.apply("s", Config(), merged["s"]).inner == Inner(patience=7, tol=0.5)


def test_an_override_is_part_of_the_key_and_unknown_stages_are_refused(toy_project, toy_declared):
    def graph(changes):
        return ReportGraph("quick", toy_declared, overrides=changes)

    plain = graph({})
    assert graph({"toy": {"n": 3}}).key("toy") == plain.key("toy")  # the default value: the same key
    changed = graph({"toy": {"n": 4}})
    assert changed.key("toy") != plain.key("toy")
    assert changed.key("toy_fig") != plain.key("toy_fig")  # through its input
    with pytest.raises(OverrideError, match="no such stage"):
        graph({"nope": {"x": 1}})


def test_the_cli_refuses_a_bad_override_with_one_line(capsys):
    assert main(["--profile", "quick", "--list", "--set", "double_descent.sedes=[1]"]) == 2
    assert "did you mean double_descent.seeds?" in capsys.readouterr().err


def test_a_dotted_override_reaches_a_real_stage_s_nested_config_and_its_shards_keys(capsys):
    plain = ReportGraph("quick")
    changed = ReportGraph("quick", overrides=overrides.parse(["sgd_implicit_reg.stopping.max_epochs=50"]))
    stopping = changed.configs["sgd_implicit_reg"].stopping
    assert stopping == dataclasses.replace(plain.configs["sgd_implicit_reg"].stopping, max_epochs=50)
    shards = changed.members("sgd_implicit_reg")
    assert shards == plain.members("sgd_implicit_reg")
    assert all(changed.key(s) != plain.key(s) for s in shards)  # the shards' specs hold the stopping rule
    assert main(["--profile", "quick", "--list", "--set", "double_descent.optimizer.window=40"]) == 0
    assert "override: double_descent.optimizer.window=40" in capsys.readouterr().out


def test_the_data_source_is_not_an_override(capsys):
    assert main(["--profile", "quick", "--list", "--set", "sgd_implicit_reg.data.kind=npz"]) == 2
    assert (
        "sgd_implicit_reg.data: not an override; settings.toml's [data] source sets it"
        in capsys.readouterr().err
    )
