"""report/document.py on the toy project: figure paths and provenance, title page, notation, checks, context."""

import datetime
from typing import NamedTuple

import pytest

from report import document, settings
from report.wiring import ReportGraph


class Symbol(NamedTuple):
    symbol: str
    meaning: str
    sections: tuple[str, ...]


@pytest.fixture
def built(toy_declared) -> ReportGraph:
    """The toy graph with everything but the document computed."""
    graph = ReportGraph("quick", toy_declared)
    graph.run(["toy_fig", "verification"], log=lambda _: None)
    return graph


def test_a_figure_path_is_relative_to_the_latex_directory(toy_declared):
    graph = ReportGraph("quick", toy_declared)
    figure_path = document.helpers(graph)["figure_path"]
    assert figure_path("toy_fig") == "../figures/toy_fig.pdf"
    assert (graph.texdir() / figure_path("toy_fig")).resolve() == graph.figure_path("toy_fig").resolve()
    with pytest.raises(KeyError, match="no figure named 'toy'; figures: toy_fig"):
        figure_path("toy")  # a task, but not a figure


def test_a_figure_s_source_names_its_plot_function_and_its_data_key(toy_declared):
    graph = ReportGraph("quick", toy_declared)
    source = document.figure_source(graph, "toy_fig")
    assert source["function"] == r"toypkg.\allowbreak{}toy\_plot.\allowbreak{}plot\_values"
    assert source["key"] == graph.key("toy")[:12] and source["seed"] == r"\num{0}"
    assert source["label"] == "fig:toy_fig"
    provenance = document.helpers(graph)["provenance"]("toy_fig")
    assert provenance == rf"\provenance{{{source['function']}}}{{{source['key']}}}"


def test_the_title_page_falls_back_to_the_declaration_and_never_uses_the_build_time(toy_declared):
    page = document.title_page(toy_declared, {})
    assert page == {"title": "Toy", "course": "", "author": "", "student_number": "", "date": ""}
    toy_declared.settings_file.write_text('title = "Mine"\nauthor = "Ada"\ndate = 2024-04-08\n')
    page = document.title_page(toy_declared, {"SOURCE_DATE_EPOCH": "0"})
    assert (page["title"], page["author"], page["date"]) == ("Mine", "Ada", "8 April 2024")
    assert settings.load(toy_declared.settings_file).date == datetime.date(2024, 4, 8)


def test_the_notation_keeps_the_symbols_of_this_document_s_sections_in_their_order():
    symbols = [
        Symbol("x", "input", ("a",)),
        Symbol("y", "output", ("b",)),
        Symbol("z", "both", ("b", "a")),
    ]
    rows = document.notation(symbols, ["a"])
    assert [(r["symbol"], r["meaning"], r["sections"]) for r in rows] == [
        ("x", "input", r"\labelcref{sec:a}"),
        ("z", "both", r"\labelcref{sec:a}"),
    ]
    assert document.notation(symbols, ["a", "b"])[2]["sections"] == r"\labelcref{sec:b,sec:a}"
    assert document.notation((), ["a"]) == []


def test_the_submission_counts_the_checks_and_the_supplement_holds_the_reproducibility_facts(built):
    """The appendix of the one-document report moved to the supplement (issue 20): the submission keeps
    the count of checks, the supplement the facts and the generated tables."""
    from report import supplement  # PyLaTeX: only where the supplement is built

    assert document.checks_summary(built) == {"n_checks": r"\num{1}", "n_passed": r"\num{1}"}
    facts = supplement.facts(built, {})
    assert facts["profile"] == "quick" and facts["overrides"] == []
    assert set(facts["versions"]) == {"torch", "sympy", "numpy", "matplotlib"}
    assert "toy sum" in facts["verification"] and "arithmetic" in facts["verification"]
    assert r"\num{0}" in facts["verification"]  # error and tolerance
    assert "toy\\_fig" in facts["figures"] and built.key("toy")[:12] in facts["figures"]


def test_the_context_holds_each_stage_s_namespace_and_the_builder_s_values(built):
    ctx = document.context(built)
    assert ctx["stems"] == ["toy"]
    assert ctx["toy"] == {
        "total": r"\num{6.00}",
        "label": "a_b & c",
    }  # the toy's quick profile: 2 * (0 + 1 + 2)
    assert ctx["settings"]["title"] == "Toy" and ctx["notation"] == []
    assert {"build", "figure_path", "provenance", "geometry"} <= set(ctx)


def test_another_build_directory_moves_figures_and_latex_together(toy_declared, tmp_path):
    graph = ReportGraph("quick", toy_declared, out=tmp_path / "o")
    assert document.helpers(graph)["figure_path"]("toy_fig") == "../figures/toy_fig.pdf"
    assert graph.figure_dir() == tmp_path / "o" / "figures" and graph.texdir() == tmp_path / "o" / "tex"
