"""The task graph and cache: reruns exactly when a key input changes, survives corruption."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from report.latex import LatexError
from report.project import Project, ProjectError
from report.wiring import ReportGraph


def make_graph(project, stage, profile="quick"):
    return ReportGraph(profile, Project(project, (stage,)), out=project / "build")


def ran(outcomes):
    return {o.task for o in outcomes if o.ran}


def test_first_run_computes_and_second_run_is_cached(toy_project, toy_stage):
    assert ran(make_graph(toy_project, toy_stage).run(["toy_fig"], log=lambda _: None)) == {"toy", "toy_fig"}
    graph = make_graph(toy_project, toy_stage)
    assert ran(graph.run(["toy_fig"], log=lambda _: None)) == set()
    assert (toy_project / "build" / "figures" / "toy_fig.pdf").read_bytes().startswith(b"%PDF")


def test_editing_an_imported_helper_reruns_its_dependants(toy_project, toy_stage):
    make_graph(toy_project, toy_stage).run(["toy_fig"], log=lambda _: None)
    helper = toy_project / "toypkg" / "helper.py"
    helper.write_text('"""Docstring."""\n\n# a comment\n' + helper.read_text() + "# another\n")
    assert ran(make_graph(toy_project, toy_stage).run(["toy_fig"], log=lambda _: None)) == set()
    helper.write_text("SCALE = 3\n")
    assert ran(make_graph(toy_project, toy_stage).run(["toy_fig"], log=lambda _: None)) == {"toy", "toy_fig"}


def test_a_field_that_does_not_affect_results_is_not_in_the_key(toy_project, toy_stage, monkeypatch):
    import dataclasses as dc

    @dc.dataclass(frozen=True)
    class Config:
        n: int = 3
        seed: int = 0
        workers: int = dc.field(default=1, metadata={"affects_results": False})

    compute = toy_stage.compute_module()
    monkeypatch.setitem(compute.PROFILES, "quick", Config())
    make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)
    monkeypatch.setitem(compute.PROFILES, "quick", Config(workers=8))
    assert ran(make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)) == set()
    monkeypatch.setitem(compute.PROFILES, "quick", Config(n=4, workers=8))
    assert ran(make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)) == {"toy"}


def test_editing_the_plot_module_reruns_only_the_figure(toy_project, toy_stage):
    make_graph(toy_project, toy_stage).run(["toy_fig"], log=lambda _: None)
    present = toy_project / "toypkg" / "toy_plot.py"
    present.write_text(present.read_text().replace("figsize=(3, 2)", "figsize=(3, 2.5)"))
    assert ran(make_graph(toy_project, toy_stage).run(["toy_fig"], log=lambda _: None)) == {"toy_fig"}


def test_a_changed_config_reruns(toy_project, toy_stage, monkeypatch):
    make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)
    compute = toy_stage.compute_module()
    monkeypatch.setitem(compute.PROFILES, "quick", dataclasses.replace(compute.PROFILES["quick"], n=4))
    assert ran(make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)) == {"toy"}


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda d: (d / "results.json").write_text("{truncated"), id="edited-output"),
        pytest.param(lambda d: shutil.rmtree(d), id="missing-output"),
        pytest.param(
            lambda d: (d.parent.parent / "cache" / "toy.json").write_text("{"), id="corrupt-manifest"
        ),
        *(
            pytest.param(lambda d, text=text: (d.parent.parent / "cache" / "toy.json").write_text(text), id=i)
            for i, text in [
                ("manifest-list", "[]"),
                ("manifest-string", '"x"'),
                ("digests-list", '{"key": "k", "digests": []}'),
                ("seconds-text", '{"key": "k", "digests": {}, "seconds": "abc"}'),
            ]
        ),
        pytest.param(lambda d: (shutil.rmtree(d), d.write_text("not a directory")), id="data-dir-is-a-file"),
    ],
)
def test_a_corrupt_entry_is_restored_from_the_store_and_recomputed_when_that_is_corrupt_too(
    toy_project, toy_stage, corrupt
):
    make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)
    corrupt(toy_project / "build" / "data" / "toy")
    graph = make_graph(toy_project, toy_stage)
    assert not graph.is_cached("toy")
    assert [o.task for o in graph.run(["toy"], log=lambda _: None) if o.restored] == ["toy"]
    assert graph.is_cached("toy")
    corrupt(toy_project / "build" / "data" / "toy")
    (graph.store.path(graph.key("toy")) / "toy" / "results.json").write_text("{truncated")
    assert ran(graph.run(["toy"], log=lambda _: None)) == {"toy"}
    assert graph.is_cached("toy")


@pytest.mark.parametrize("make_leftover", [Path.mkdir, lambda p: p.write_text("x")], ids=["dir", "file"])
def test_a_leftover_old_entry_does_not_block_a_rerun(toy_project, toy_stage, make_leftover):
    make_graph(toy_project, toy_stage).run(["toy"], log=lambda _: None)
    make_leftover(toy_project / "build" / "data" / ".toy.old")
    graph = make_graph(toy_project, toy_stage)
    assert ran(graph.run(["toy"], force=["toy"], log=lambda _: None)) == {"toy"}
    assert graph.is_cached("toy") and not (toy_project / "build" / "data" / ".toy.old").exists()


def test_a_failing_task_leaves_the_previous_entry_intact(toy_project, toy_stage, monkeypatch):
    graph = make_graph(toy_project, toy_stage)
    graph.run(["toy"], log=lambda _: None)
    before = (toy_project / "build" / "data" / "toy" / "results.json").read_text()

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(toy_stage.compute_module(), "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        graph.run(["toy"], force=["toy"], log=lambda _: None)
    assert (toy_project / "build" / "data" / "toy" / "results.json").read_text() == before
    assert not list((toy_project / "build" / "data").glob(".toy*")), "temporary directory left behind"
    assert make_graph(toy_project, toy_stage).is_cached("toy")


def test_an_unknown_profile_names_the_available_ones(toy_project, toy_stage):
    with pytest.raises(ProjectError, match=r"^no profile 'huge'; the project's profiles: full, quick$"):
        make_graph(toy_project, toy_stage, profile="huge")


def test_a_declared_profile_that_a_stage_lacks_names_the_stage_s_profiles(toy_project, toy_stage):
    declared = Project(toy_project, (toy_stage,), profiles=("quick", "tiny"))
    with pytest.raises(ProjectError, match=r"^stage 'toy' has no profile 'tiny' \(it has: full, quick\)$"):
        ReportGraph("tiny", declared, out=toy_project / "build")


@pytest.mark.latex
def test_latex_error_points_at_the_section_line(toy_project, toy_stage):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    section = toy_project / "templates" / "sections" / "toy.tex.j2"
    section.write_text(section.read_text() + "\\undefinedmacro\n")
    graph = make_graph(toy_project, toy_stage)
    with pytest.raises(LatexError, match=r"sections/toy\.tex:\d+.*Undefined control sequence") as err:
        graph.run(["report"], log=lambda _: None)
    assert "\\undefinedmacro" in str(err.value)
    assert len(str(err.value).splitlines()) < 10
    assert not (toy_project / "build" / "report.pdf").exists()
