"""--explain: the one-line reason a task is stale names what changed."""

import dataclasses as dc

from report.explain import reason
from tests.test_pipeline import make_graph


def quiet(_: str) -> None:
    pass


def test_a_fresh_graph_has_no_cache_entry_and_a_built_one_no_reason(toy_project, toy_stage):
    graph = make_graph(toy_project, toy_stage)
    assert reason(graph, "toy") == "no cache entry"
    graph.run(["toy_fig"], log=quiet)
    graph = make_graph(toy_project, toy_stage)
    assert reason(graph, "toy") is None
    assert reason(graph, "toy", forced=True).startswith("forced")


def test_a_changed_helper_is_named_by_module_and_reaches_the_figure_as_its_input(toy_project, toy_stage):
    make_graph(toy_project, toy_stage).run(["toy_fig"], log=quiet)
    (toy_project / "toypkg" / "helper.py").write_text("SCALE = 3\n")
    graph = make_graph(toy_project, toy_stage)
    assert reason(graph, "toy") == "source changed: toypkg.helper"
    assert "input task changed: toy" in reason(graph, "toy_fig")


def test_a_changed_configuration_field_is_named(toy_project, toy_stage, monkeypatch):
    @dc.dataclass(frozen=True)
    class Config:
        n: int = 3
        seed: int = 0

    compute = toy_stage.compute_module()
    monkeypatch.setitem(compute.PROFILES, "quick", Config())
    make_graph(toy_project, toy_stage).run(["toy"], log=quiet)
    monkeypatch.setitem(compute.PROFILES, "quick", Config(n=4))
    assert reason(make_graph(toy_project, toy_stage), "toy") == "configuration changed: n"


def test_a_deleted_output_is_named(toy_project, toy_stage):
    graph = make_graph(toy_project, toy_stage)
    graph.run(["toy_fig"], log=quiet)
    graph.figure_path("toy_fig").unlink()
    assert "output is missing" in reason(make_graph(toy_project, toy_stage), "toy_fig")
