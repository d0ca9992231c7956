r"""The document task: stage contexts + templates -> LaTeX -> ``report.pdf``.

Each ``templates/sections/<stem>.tex.j2`` is rendered to ``tex/sections/<stem>.tex`` and
``templates/report.tex.j2`` to ``tex/report.tex``, which inputs them; separate files make a
LaTeX error point at the section it came from.  The PDF replaces ``report.pdf`` only after
a successful compile, so a failed build keeps the last good one.  The supplement
(:mod:`report.supplement`) is typeset the same way from the same :func:`context`; its
``supplement.aux`` is copied beside ``report.tex`` so that ``\supref`` links resolve.
"""

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.fmt import Tex, integer
from lab.style import GEOMETRY
from report import cache, settings
from report.crossref import TEXDIR as SUPPLEMENT_TEXDIR
from report.latex import check_pdf, log_warnings, run_latexmk
from report.render import latex_escape, render

if TYPE_CHECKING:
    from report.pipeline import Task
    from report.project import Project
    from report.wiring import ReportGraph as Graph


def breakable(name: str) -> str:
    r"""A dotted name in \texttt that may break after its dots."""
    return r".\allowbreak{}".join(latex_escape(part) for part in name.split("."))


def helpers(graph: "Graph") -> dict[str, Any]:
    """Template globals for figures: their path and their provenance line."""

    def figure_path(name: str) -> Tex:
        _figure_task(graph, name)
        return _included_path(graph, name)

    def provenance(name: str) -> Tex:
        source = figure_source(graph, name)
        return Tex(rf"\provenance{{{source['function']}}}{{{source['key']}}}")

    return {"figure_path": figure_path, "provenance": provenance, "geometry": Tex(GEOMETRY)}


def _included_path(graph: "Graph", name: str) -> Tex:
    """The ``\\includegraphics`` argument of figure ``name``, relative to the LaTeX directory; also its
    hyperlink target."""
    return Tex(Path(os.path.relpath(graph.figure_path(name), graph.texdir())).as_posix())


def _figure_task(graph: "Graph", name: str) -> "Task":
    t = graph.tasks.get(name)
    if t is None or t.kind != "figure":
        raise KeyError(f"no figure named {name!r}; figures: {', '.join(graph.figures())}")
    return t


def figure_source(graph: "Graph", name: str) -> dict[str, Any]:
    """Where figure ``name`` comes from: its plot function, the key and seed of the data it plots."""
    stem = _figure_task(graph, name).inputs[0]
    stage = next(s for s in graph.stages if s.stem == stem)
    plot = stage.present_module().FIGURES[name]
    seed = graph.tasks[stem].seed
    return {
        "name": name,
        "label": Tex(f"fig:{name}"),
        "path": _included_path(graph, name),
        "function": Tex(breakable(f"{plot.__module__}.{plot.__qualname__}")),
        "key": graph.key(stem)[:12],
        "seed": "" if seed is None else integer(seed),
    }


def title_page(declared: "Project", environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The title page and PDF metadata from ``settings.toml``, else the project's defaults; the date
    never the build time."""
    s = settings.load(declared.settings_file)
    return {
        "title": s.title or declared.title,
        "course": s.course or declared.course,
        "author": s.author,
        "student_number": s.student_number,
        "date": settings.date_text(s, environ),
    }


def notation(
    symbols: Iterable[Any], stems: list[str], prefix: str = "sec:", linked: list[str] | None = None
) -> list[dict[str, Tex]]:
    """The symbol table of the ``symbols`` that ``stems`` use, each row pointing at the sections of this
    document (labelled ``<prefix><stem>``, those of ``linked``, default all) that use the symbol; the same
    rows in the submission and the supplement, whose sections differ."""
    linked = stems if linked is None else linked
    rows = []
    for n in symbols:
        if not any(stem in stems for stem in n.sections):
            continue
        used = [f"{prefix}{stem}" for stem in n.sections if stem in linked]
        rows.append(
            {
                "symbol": Tex(n.symbol),
                "meaning": Tex(n.meaning),
                "sections": Tex(rf"\labelcref{{{','.join(used)}}}" if used else ""),
            }
        )
    return rows


def commit_text(described: str) -> Tex:
    r"""``git describe --dirty`` output as the appendix prints it: a tree with uncommitted changes is said so.

    >>> print(commit_text("0a0c52c1d2e3-dirty"))
    \texttt{0a0c52c1d2e3} with uncommitted changes present
    >>> print(commit_text("0a0c52c1d2e3"))
    \texttt{0a0c52c1d2e3}
    """
    commit, dirty, _ = described.partition("-dirty")
    text = rf"\texttt{{{latex_escape(commit)}}}"
    return Tex(text + " with uncommitted changes present" if dirty else text)


class SectionRefs(dict):
    """Stem -> how this document cites the submission's section of that stage, for any stem (the notation's
    prose names sections that a test's toy project does not have; LaTeX then warns of the reference)."""

    def __init__(self, cite: Callable[[str], Tex]) -> None:
        super().__init__()
        self.cite = cite

    def __missing__(self, stem: str) -> Tex:
        return self.cite(stem)


def checks_summary(graph: "Graph") -> dict[str, Tex]:
    """How many derivation checks the verification task ran and how many passed (the abstract says so)."""
    checks = graph.recorded_checks()
    return {"n_checks": integer(len(checks)), "n_passed": integer(sum(c["passed"] for c in checks))}


def context(graph: "Graph") -> dict[str, Any]:
    ctx: dict[str, Any] = {
        s.stem: s.present_module().context(
            s.compute_module().load(graph.data_dir(s.stem)), **graph.analyses(s.stem)
        )
        for s in graph.stages
    }
    ctx["stems"] = [s.stem for s in graph.stages]
    ctx["build"] = checks_summary(graph)
    ctx["settings"] = title_page(graph.declared)
    ctx["notation"] = notation(graph.declared.symbols(), ctx["stems"])
    ctx["section_refs"] = SectionRefs(lambda stem: Tex(rf"\cref{{sec:{stem}}}"))
    ctx["verification_ref"] = Tex(r"\supref{sup:verification}")
    ctx["title_suffix"] = ""
    return ctx | helpers(graph)


RENDERED = "rendered.json"  # in tex/: the digest of every .tex file the build wrote (the export checks them)


def record_rendered(texdir: Path) -> None:
    """Write ``texdir/rendered.json``: each rendered ``.tex`` file (relative to ``texdir``) -> SHA-256."""
    digests = {str(f.relative_to(texdir)): cache.file_digest(f) for f in sorted(texdir.rglob("*.tex"))}
    cache.write_atomic(texdir / RENDERED, json.dumps(digests, indent=1).encode())


def typeset(
    graph: "Graph", name: str, texdir_path: Path, files: dict[str, str], copied: tuple[Path, ...] = ()
) -> None:
    """Write ``files`` (relative path -> LaTeX) and ``copied`` into a fresh private directory, record their
    digests (:func:`record_rendered`), compile ``<name>.tex`` there, check the PDF, and move it to
    ``<build dir>/<name>.pdf``.

    The private directory (no stale latexmk state, no other build's files) replaces
    ``texdir_path`` only after a good compile.
    """
    with cache.atomic_directory(texdir_path) as texdir:
        for relative, text in files.items():
            cache.write_atomic(texdir / relative, text.encode())
        for path in copied:
            cache.write_atomic(texdir / path.name, path.read_bytes())
        record_rendered(texdir)
        pdf = run_latexmk(texdir / f"{name}.tex", texdir, graph.templates)
        check_pdf(pdf)
        warnings = log_warnings(pdf.with_suffix(".log").read_text(errors="replace"))
        for warning in warnings:
            print(f"[latex warning] {warning}")
        cache.write_atomic(graph.root / f"{name}.pdf", pdf.read_bytes())


def build(graph: "Graph") -> None:
    """Render the submission's templates and typeset them beside the supplement's labels."""
    ctx = context(graph)
    files = {
        f"sections/{stem}.tex": render(f"sections/{stem}.tex.j2", ctx, graph.templates)
        for stem in ctx["stems"]
    }
    files["report.tex"] = render("report.tex.j2", ctx, graph.templates)
    labels = graph.root / SUPPLEMENT_TEXDIR / "supplement.aux"
    typeset(graph, "report", graph.texdir(), files, (labels,) if labels.is_file() else ())
