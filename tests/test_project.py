"""The project declaration: read from project.py, checked with one-line errors, and task names that are unique."""

import re
from pathlib import Path

import pytest

from report import project
from report.paths import ROOT
from report.project import Project, ProjectError, from_namespace
from report.stages import Stage
from report.wiring import RESERVED, ReportGraph


def test_this_repository_declares_its_stages_in_order_by_their_stems():
    declared = project.load()
    assert declared.root == ROOT and declared.profiles == ("full", "quick")
    stems = [s.stem for s in declared.stages]
    assert stems == ["autodiff", "mlp_backprop", "initialization", "double_descent", "sgd_implicit_reg"]
    for stage in declared.stages:
        assert stage.present == f"{stage.compute}_plot"
        assert (declared.templates / "sections" / f"{stage.stem}.tex.j2").is_file(), stage.stem
    assert declared.title and declared.course  # the title page's defaults
    assert declared.data_hook().__name__ == "experiments.data"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        pytest.param({"STAGE": ("a.b",)}, "project.py: unknown name STAGE; the names are STAGES", id="typo"),
        pytest.param({"STAGES": "a.b"}, "project.py: STAGES must be a tuple of strings, not 'a.b'", id="str"),
        pytest.param({"STAGES": ("a", 1)}, "STAGES must be a tuple of strings", id="not-str"),
        pytest.param({"STAGES": ()}, "project.py: STAGES names no stage", id="empty"),
        pytest.param({"STAGES": ("a",), "PROFILES": ()}, "PROFILES names no profile", id="no-profile"),
        pytest.param({"STAGES": ("a",), "TITLE": 3}, "project.py: TITLE must be a string, not 3", id="title"),
    ],
)
def test_a_bad_declaration_is_one_line(names, message):
    with pytest.raises(ProjectError, match=re.escape(message)) as raised:
        from_namespace(Path("/p"), names)
    assert "\n" not in str(raised.value)


def test_a_directory_without_a_declaration_is_refused(tmp_path):
    with pytest.raises(ProjectError, match=r"project.py: no project declaration"):
        project.load(tmp_path)


def test_lowercase_names_and_imports_in_the_declaration_are_ignored():
    declared = from_namespace(Path("/p"), {"STAGES": ("x.y",), "helper": 1, "__name__": "project"})
    assert declared == Project(Path("/p"), (Stage("y", "x.y", "x.y_plot"),))


def _with_figures(toy_project: Path, names: str) -> Project:
    """The toy project with its plot module's figures named ``names``."""
    present = toy_project / "toypkg" / "toy_plot.py"
    present.write_text(
        present.read_text().replace('FIGURES = {"toy_fig": plot_values}', f"FIGURES = {names}")
    )
    return project.load(toy_project)


@pytest.mark.parametrize("reserved", RESERVED)
def test_a_figure_with_a_reserved_name_is_one_line(toy_project, reserved):
    declared = _with_figures(toy_project, f'{{"{reserved}": plot_values}}')
    with pytest.raises(ProjectError, match=f"^task name '{reserved}' is reserved for the builder"):
        ReportGraph("quick", declared)


def test_a_figure_named_like_a_stage_is_a_duplicate(toy_project):
    declared = _with_figures(toy_project, '{"toy": plot_values}')
    with pytest.raises(
        ProjectError, match=r"^task name 'toy' is used twice \(a stem, shard or figure name\)$"
    ):
        ReportGraph("quick", declared)


def test_two_stages_with_one_stem_are_a_duplicate(toy_project):
    (toy_project / "other").mkdir()
    for name in ("__init__.py", "toy.py", "toy_plot.py"):
        source = toy_project / "toypkg" / name
        (toy_project / "other" / name).write_text(source.read_text().replace('"toy_fig"', '"other_fig"'))
    (toy_project / "project.py").write_text('STAGES = ("toypkg.toy", "other.toy")\nPROFILES = ("quick",)\n')
    with pytest.raises(ProjectError, match=r"^task name 'toy' is used twice"):
        ReportGraph("quick", project.load(toy_project))
