"""The supplement task: the evidence beside the submission, from the same context -> ``supplement.pdf``.

``templates/supplement.tex.j2`` is the supplement's prose (introduction, notation); it inputs one
section per stage that has a ``templates/supplement/<stem>.tex.j2``, rendered with exactly the
context of ``templates/sections/<stem>.tex.j2`` (so the two documents cannot disagree), then the
parts generated from data here: the per-run figure pages (``\\VAR{run_figures.<stem>}`` in a
section, from the ``run_figures`` its stage's context lists), the verification table (the ``Check``
records, grouped by exercise) and the provenance tables (every figure and table with the function,
data and seed that made it; commit and library versions).  Those are PyLaTeX objects, not template
loops: they are data, one figure or row per record, and PyLaTeX escapes their text itself.

The submission links into the supplement with xr-hyper: it reads ``supplement.aux``, which this
task leaves in ``tex-supplement/``.  A supplement section labels what the submission may cite
``\\label{sup:<stem>:<name>}``; the submission cites it as ``\\supref{sup:<stem>:<name>}``.  The
report's key hashes :func:`report.crossref.outline` (the supplement templates' headings, labels and
floats), not their prose: editing only supplement text re-typesets the supplement alone.
"""

import platform
import re
from typing import TYPE_CHECKING, Any

from pylatex import Figure, LongTable, MultiColumn, NoEscape
from pylatex.utils import escape_latex

from lab.fmt import Tex, integer, num
from report import cache, document
from report.crossref import SECTIONS, TEXDIR, stems
from report.overrides import describe
from report.render import render

if TYPE_CHECKING:
    from report.wiring import ReportGraph as Graph

TINY = 1e-15  # an error below this is round-off of double precision: printed "< 1e-15", not 1.2e-125
# The label of a table: the first \label before the \end{table} of a table environment, or the one
# right after a \captionof{table}{...} (a table set beside a figure in one float).
_TABLE_LABEL = re.compile(
    r"\\begin\{table\}(?:(?!\\end\{table\}).)*?\\label\{([^}]+)\}"
    r"|\\captionof\{table\}(?:(?!\\label\{).)*?\\label\{([^}]+)\}",
    re.DOTALL,
)


def error_text(error: float) -> Tex:
    """A check's error as the table prints it: 0, below double-precision round-off, or two digits."""
    if error == 0:
        return Tex(r"\num{0}")
    if abs(error) < TINY:
        return Tex(r"$<10^{-15}$")
    return num(error, sig=2)


def _cell(record: dict[str, Any], field: str) -> NoEscape | str:
    """A check's LaTeX where it has one (math), else its plain text for PyLaTeX to escape."""
    return NoEscape(record[f"{field}_tex"]) if record.get(f"{field}_tex") else record[field]


def verification_table(checks: list[dict[str, Any]], titles: dict[str, str]) -> Tex:
    """One row per check, grouped under the title of the exercise whose module ran it; no pass column
    (a row that fails says so in its error cell, and the build exits non-zero)."""
    table = LongTable(
        NoEscape(
            r"@{}>{\raggedright\arraybackslash}p{0.36\linewidth}>{\raggedright\arraybackslash}p{0.38\linewidth}rr@{}"
        )
    )
    table.append(NoEscape(r"\toprule"))
    table.add_row(["Claim", "Method", "Error", "Tolerance"])
    table.append(NoEscape(r"\midrule"))
    table.end_table_header()
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in checks:
        groups.setdefault(record["module"], []).append(record)
    for module, records in groups.items():
        passed = sum(r["passed"] for r in records)
        heading = rf"\textit{{{titles[module]}}}: {passed} of {len(records)} pass"
        table.add_row([MultiColumn(4, align=NoEscape("@{}l"), data=NoEscape(heading))])
        for r in records:
            error = error_text(r["error"])
            table.add_row(
                [
                    _cell(r, "name"),
                    _cell(r, "method"),
                    NoEscape(error if r["passed"] else rf"\textbf{{FAILED}} {error}"),
                    NoEscape(error_text(r["tolerance"])),
                ]
            )
        table.append(NoEscape(r"\addlinespace"))
    table.append(NoEscape(r"\bottomrule"))
    return Tex(table.dumps())


def caption_latex(text: str) -> NoEscape:
    """A caption given as plain text with ``$...$`` math: the text escaped by PyLaTeX, the math kept as written."""
    parts = text.split("$")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced $ in caption {text!r}")
    return NoEscape("$".join(part if i % 2 else escape_latex(part) for i, part in enumerate(parts)))


def figure_page(path: str, caption: str, label: str) -> Tex:
    """One per-run figure of the supplement as a PyLaTeX ``Figure``, full text width, caption escaped by PyLaTeX;
    placed like the templates' floats (``[tbp]``): a float page alone (``[p]``) waited for others to fill it and
    stood two pages after its section."""
    figure = Figure(position="tbp")
    figure.add_image(path, width=NoEscape(r"\linewidth"))
    figure.add_caption(caption_latex(caption))
    figure.append(NoEscape(rf"\label{{{label}}}"))
    return Tex(figure.dumps())


def run_figures(ctx: dict[str, Any], own: list[str]) -> dict[str, Tex]:
    """Per supplement section, its per-run figure pages, built from the ``run_figures`` entries its stage's
    context computed from the results (figure, label, caption); an empty text for a stage without any."""
    return {
        stem: Tex(
            "\n".join(
                figure_page(ctx["figure_path"](f["figure"]), f["caption"], f["label"])
                for f in ctx[stem].get("run_figures", [])
            )
        )
        for stem in own
    }


def _data_cells(graph: "Graph", stem: str) -> list[Any]:
    seed = graph.tasks[stem].seed
    return [
        NoEscape(rf"\texttt{{{escape_latex(stem)}}}"),
        NoEscape(rf"\texttt{{{graph.key(stem)[:12]}}}"),
        NoEscape("" if seed is None else integer(seed)),
    ]


def _provenance_table(first: str, rows: list[list[Any]]) -> Tex:
    table = LongTable(NoEscape(r"@{}l>{\raggedright\arraybackslash}p{0.4\linewidth}llr@{}"))
    table.append(NoEscape(r"\toprule"))
    table.add_row([first, "Made by", "Data", "Key", "Seed"])
    table.append(NoEscape(r"\midrule"))
    table.end_table_header()
    for row in rows:
        table.add_row(row)
    table.append(NoEscape(r"\bottomrule"))
    return Tex(table.dumps())


def figure_provenance(graph: "Graph") -> Tex:
    """Every figure with its plot function and the data (stage task, key, seed) it plots; each row is
    the named destination ``src:<figure file>`` a click on the figure in the submission opens."""
    rows = []
    for name in graph.figures():
        source = document.figure_source(graph, name)
        target = rf"\hypertarget{{src:{source['path']}}}{{}}\texttt{{{escape_latex(name)}}}"
        stem = graph.tasks[name].inputs[0]
        rows.append(
            [NoEscape(target), NoEscape(rf"\texttt{{{source['function']}}}"), *_data_cells(graph, stem)]
        )
    return _provenance_table("Figure", rows)


def table_provenance(graph: "Graph", rendered: dict[str, str]) -> Tex:
    """Every labelled table of both documents' sections with the context function that fills it."""
    rows = []
    for stage in graph.stages:
        function = f"{stage.present}.context"
        for label in (a or b for a, b in _TABLE_LABEL.findall(rendered.get(stage.stem, ""))):
            made_by = rf"\texttt{{{document.breakable(function)}}}"
            rows.append(
                [
                    NoEscape(rf"\texttt{{{escape_latex(label)}}}"),
                    NoEscape(made_by),
                    *_data_cells(graph, stage.stem),
                ]
            )
    return _provenance_table("Table", rows)


def facts(graph: "Graph", rendered: dict[str, str]) -> dict[str, Any]:
    """The generated parts and the reproducibility facts of the supplement's last sections.

    The tables are PyLaTeX objects; the facts (command, commit, versions) are values for a five-line
    list in the template, which reads better there, beside its sentences, than as a PyLaTeX ``Tabular``.
    """
    checks = graph.recorded_checks()  # the derivations' and the claims about computed results
    titles = {s.compute: _section_title(graph, s.stem) for s in graph.stages}
    return {
        "profile": graph.profile,
        "overrides": describe(graph.overrides),  # stage.field = value, from --set or settings.toml
        "git": document.commit_text(graph.tasks["supplement"].config["git"]),
        "python": platform.python_version(),
        "versions": cache.versions(),
        "verification": verification_table(checks, titles),
        "figures": figure_provenance(graph),
        "tables": table_provenance(graph, rendered),
    }


def _section_title(graph: "Graph", stem: str) -> Tex:
    r"""The ``\section{...}`` title of the stage's submission template (its exercise), else its stem."""
    template = graph.templates / "sections" / f"{stem}.tex.j2"
    match = template.is_file() and re.search(r"\\section\{([^{}]*)\}", template.read_text())
    return Tex(match.group(1)) if match else Tex(escape_latex(stem))


def _short_title(graph: "Graph", stem: str) -> Tex:
    """The section title up to its colon ("Exercise 2"), how running text names the submission's section."""
    return Tex(_section_title(graph, stem).split(":", 1)[0])


def build(graph: "Graph") -> None:
    """Render the supplement's templates with the submission's context, compile, move the PDF into place."""
    ctx = document.context(graph)
    own = stems(graph.stages, graph.templates)
    ctx["run_figures"] = run_figures(ctx, own)
    # The submission's sections are rendered here too, only to list the tables they hold.
    rendered = {stem: render(f"sections/{stem}.tex.j2", ctx, graph.templates) for stem in ctx["stems"]}
    sections = {stem: render(f"{SECTIONS}/{stem}.tex.j2", ctx, graph.templates) for stem in own}
    for stem, text in sections.items():
        rendered[stem] = rendered.get(stem, "") + text
    ctx |= {"supplement_stems": own, "supplement": facts(graph, rendered)}
    ctx["supplement"]["sections_ref"] = Tex(rf"\Cref{{{','.join(f'sup:{stem}' for stem in own)}}}")
    ctx["notation"] = document.notation(graph.declared.symbols(), ctx["stems"], prefix="sup:", linked=own)
    ctx["section_refs"] = document.SectionRefs(
        lambda stem: Tex(rf"{_short_title(graph, stem)} of the submission")
    )
    ctx["verification_ref"] = Tex(r"\cref{sup:verification}")
    ctx["title_suffix"] = ": supplement"
    document.typeset(
        graph,
        "supplement",
        graph.root / TEXDIR,
        {f"{SECTIONS}/{stem}.tex": text for stem, text in sections.items()}
        | {"supplement.tex": render("supplement.tex.j2", ctx, graph.templates)},
    )
