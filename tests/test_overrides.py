"""Configuration overrides: checked against the Config dataclass, part of the cache key, listed."""

import dataclasses

import pytest

import build
from report import overrides
from report.overrides import OverrideError
from report.settings import SettingsError, parse
from report.wiring import ReportGraph


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1)
    rate: float = 0.5
    steps: int = 10
    name: str = "a"
    flag: bool = False


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("s.seeds=[3, 4, 5]", {"seeds": (3, 4, 5)}),
        ("s.rate=1", {"rate": 1.0}),
        ("s.steps=20", {"steps": 20}),
        ("s.name=b", {"name": "b"}),
        ('s.name="two words"', {"name": "two words"}),
        ("s.flag=true", {"flag": True}),
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
    ],
)
def test_a_bad_override_is_one_clear_error(assignment, message):
    with pytest.raises(OverrideError, match=message.replace("[", r"\[").replace(".", r"\.")):
        overrides.apply("s", Config(), overrides.parse([assignment])["s"])


def test_an_assignment_without_stage_and_field_is_refused():
    with pytest.raises(OverrideError, match=r"expected STAGE\.FIELD=VALUE"):
        overrides.parse(["steps=3"])


def test_the_command_line_wins_over_the_settings_file():
    from_file = parse("[overrides.s]\nsteps = 5\nrate = 0.1\n").overrides
    assert overrides.merge(from_file, overrides.parse(["s.steps=7"])) == {"s": {"steps": 7, "rate": 0.1}}
    with pytest.raises(SettingsError, match="overrides"):
        parse("overrides = 3\n")


def test_an_override_is_part_of_the_key_and_unknown_stages_are_refused(toy_project, toy_stage):
    def graph(changes):
        return ReportGraph(
            "quick",
            stages=(toy_stage,),
            project=toy_project,
            out=toy_project / "build",
            templates=toy_project / "templates",
            overrides=changes,
        )

    plain = graph({})
    assert graph({"toy": {"n": 3}}).key("toy") == plain.key("toy")  # the default value: the same key
    changed = graph({"toy": {"n": 4}})
    assert changed.key("toy") != plain.key("toy")
    assert changed.key("toy_fig") != plain.key("toy_fig")  # through its input
    with pytest.raises(OverrideError, match="no such stage"):
        graph({"nope": {"x": 1}})


def test_the_cli_refuses_a_bad_override_with_one_line(capsys):
    with pytest.raises(SystemExit):
        build.main(["--profile", "quick", "--list", "--set", "double_descent.sedes=[1]"])
    assert "did you mean double_descent.seeds?" in capsys.readouterr().err
