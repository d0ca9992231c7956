"""The supplement beside the submission: its generated tables, its task, its links, the page limit."""

import shutil
import textwrap

import pytest
from pypdf import PdfReader

from report import cli, settings, supplement
from report.project import load
from report.settings import SettingsError
from report.wiring import ReportGraph

TOY_SUPPLEMENT = r"""
    \section{Toy in detail}\label{sup:toy}
    Prose a section author may reword freely: the total is \VAR{toy.total}.
    \subsection{The values}\label{sup:toy:values}
    Every value, once more.
"""


def record(name: str, error: float, tolerance: float, module: str = "m1", **tex: str) -> dict:
    return {
        "name": name,
        "method": "by hand",
        "error": error,
        "tolerance": tolerance,
        "passed": error <= tolerance,
        "module": module,
    } | tex


def test_errors_below_double_precision_round_off_are_not_printed_to_125_digits():
    assert supplement.error_text(0.0) == r"\num{0}"
    assert supplement.error_text(1.18e-125) == r"$<10^{-15}$"
    assert supplement.error_text(3.3e-16) == r"$<10^{-15}$"
    assert supplement.error_text(0.0048) == r"\num{0.0048}"


def test_a_caption_escapes_its_text_and_keeps_its_math():
    assert (
        supplement.caption_latex("50% of runs_a & $\\mu_1$ ~ok")
        == r"50\% of runs\_a \& $\mu_1$ \textasciitilde{}ok"
    )
    with pytest.raises(ValueError, match="unbalanced"):
        supplement.caption_latex("a $b")


def test_per_run_figure_pages_are_pylatex_figures_of_the_stages_run_figures():
    entry = {"figure": "runs", "label": "sup:toy:runs", "caption": "Every run of $N=3$, 10% stalled."}
    ctx = {"figure_path": lambda name: f"../figures/{name}.pdf", "toy": {"run_figures": [entry]}, "other": {}}
    pages = supplement.run_figures(ctx, ["toy", "other"])
    assert pages["other"] == ""
    assert pages["toy"].splitlines() == [
        r"\begin{figure}[tbp]%",
        r"\centering%",
        r"\includegraphics[width=\linewidth]{../figures/runs.pdf}%",
        r"\caption{Every run of $N=3$, 10\% stalled.}%",
        r"\label{sup:toy:runs}%",
        r"\end{figure}",
    ]


def test_the_verification_table_groups_checks_by_exercise_one_line_each():
    checks = [
        record("x_1 & y", 0.0, 0.0),
        record("z", 2.0, 1.0),
        record("w", 0.0, 0.0, module="m2", name_tex=r"$w^2$"),
    ]
    table = supplement.verification_table(checks, {"m1": "Exercise 1", "m2": "Exercise 2"})
    assert r"\textit{Exercise 1}: 1 of 2 pass" in table and r"\textit{Exercise 2}: 1 of 1 pass" in table
    assert r"x\_1 \& y" in table  # plain text escaped by PyLaTeX
    assert r"$w^2$" in table  # a check's LaTeX kept as it is
    assert r"\textbf{FAILED} \num{2.0}" in table
    assert "yes" not in table
    rows = [line for line in table.splitlines() if line.endswith(r"\\%") and "multicolumn" not in line]
    assert len(rows) == 1 + len(checks)  # the header and one line per check


@pytest.mark.parametrize("value", [0, -3, "12", 2.5, True])
def test_a_page_limit_must_be_a_positive_whole_number(value):
    text = f"page_limit = {str(value).lower() if isinstance(value, bool) else repr(value)}"
    with pytest.raises(SettingsError, match="page_limit"):
        settings.parse(text.replace("'", '"'))


def test_a_page_limit_is_read():
    assert settings.parse("page_limit = 12").page_limit == 12
    assert settings.parse("").page_limit is None


@pytest.fixture
def toy(toy_project, monkeypatch):
    """The toy project with a supplement section, ``cli.main`` building it; returns a graph factory."""
    (toy_project / "templates" / "supplement").mkdir()
    (toy_project / "templates" / "supplement" / "toy.tex.j2").write_text(
        textwrap.dedent(TOY_SUPPLEMENT).lstrip()
    )

    def graph(profile="quick", overrides=None, data=None):
        return ReportGraph(profile, load(toy_project), overrides=overrides, data=data)

    monkeypatch.setattr(cli, "ROOT", toy_project)
    return graph


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_only_the_supplement_outline_not_its_prose_is_in_the_submissions_key(toy, toy_project):
    section = toy_project / "templates" / "supplement" / "toy.tex.j2"

    def keys() -> tuple[str, str]:  # read now: a graph hashes the files when first asked
        graph = toy()
        return graph.key("report"), graph.key("supplement")

    report, evidence = keys()
    edit(section, "reword freely", "reword at will")
    assert keys()[0] == report
    assert keys()[1] != evidence
    edit(section, r"\subsection{The values}\label{sup:toy:values}", r"\subsection{Values}\label{sup:toy:all}")
    assert keys()[0] != report  # its numbers and links may have moved


@pytest.mark.latex
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk missing")
def test_editing_supplement_text_typesets_the_supplement_alone(toy, toy_project, capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "] supplement" in out and "] report" in out
    text = " ".join(p.extract_text() for p in PdfReader(toy_project / "build" / "supplement.pdf").pages)
    assert "S1 Toy in detail" in text and "S1.1 The values" in text
    assert "Verification of the derivations" in text and "toy sum" in text and "toy_fig" in text
    edit(toy_project / "templates" / "supplement" / "toy.tex.j2", "reword freely", "reword at will")
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "] supplement" in out and "] report" not in out
