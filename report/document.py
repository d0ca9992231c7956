"""The document task: stage contexts + templates -> LaTeX -> ``report.pdf``.

Each ``templates/sections/<stem>.tex.j2`` is rendered to ``tex/sections/<stem>.tex`` and
``templates/report.tex.j2`` to ``tex/report.tex``, which inputs them; separate files make a
LaTeX error point at the section it came from.  The PDF replaces ``report.pdf`` only after
a successful compile, so a failed build keeps the last good one.
"""

import json
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.fmt import Tex, integer, num
from lab.style import GEOMETRY
from report import cache, settings
from report.latex import check_pdf, log_warnings, run_latexmk
from report.overrides import describe
from report.render import latex_escape, render

if TYPE_CHECKING:
    from report.pipeline import Task
    from report.project import Project
    from report.wiring import ReportGraph as Graph


def _breakable(name: str) -> str:
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
        "function": Tex(_breakable(f"{plot.__module__}.{plot.__qualname__}")),
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


def notation(symbols: Iterable[Any], stems: list[str]) -> list[dict[str, Tex]]:
    """The symbol table, each row pointing at the sections of this document that use the symbol."""
    rows = []
    for n in symbols:
        used = [f"sec:{stem}" for stem in n.sections if stem in stems]
        if used:
            rows.append(
                {
                    "symbol": Tex(n.symbol),
                    "meaning": Tex(n.meaning),
                    "sections": Tex(rf"\labelcref{{{','.join(used)}}}"),
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


def appendix(graph: "Graph") -> dict[str, Any]:
    """Reproducibility facts: every task with key and seed; figures with their sources; versions; checks.

    A sweep's shards are left out (their stage's key hashes their keys), and so are runtimes (the build
    prints them): the PDF must be the same bytes for the same sources.
    """
    rows = [
        {
            "name": name,
            "kind": t.kind,
            "key": graph.key(name)[:12],
            "seed": "" if t.seed is None else integer(t.seed),
        }
        for name, t in graph.tasks.items()
        if t.kind not in ("document", "shard")
    ]
    checks = json.loads((graph.root / "data" / "verification.json").read_text())
    return {
        "profile": graph.profile,
        "overrides": describe(graph.overrides),  # stage.field = value, from --set or settings.toml
        "git": commit_text(graph.tasks["report"].config["git"]),
        "python": platform.python_version(),
        "versions": cache.versions(),
        "tasks": rows,
        "figures": [figure_source(graph, name) for name in graph.figures()],
        "checks": [
            {  # a check's LaTeX where it has one
                "name": Tex(c["name_tex"]) if c.get("name_tex") else c["name"],
                "method": Tex(c["method_tex"]) if c.get("method_tex") else c["method"],
                "error": num(c["error"], sig=2),
                "tolerance": num(c["tolerance"], sig=2),
                "passed": c["passed"],
            }
            for c in checks
        ],
        "n_checks": integer(len(checks)),
        "n_passed": integer(sum(c["passed"] for c in checks)),
    }


def context(graph: "Graph") -> dict[str, Any]:
    ctx: dict[str, Any] = {
        s.stem: s.present_module().context(s.compute_module().load(graph.data_dir(s.stem)))
        for s in graph.stages
    }
    ctx["stems"] = [s.stem for s in graph.stages]
    ctx["build"] = appendix(graph)
    ctx["settings"] = title_page(graph.declared)
    ctx["notation"] = notation(graph.declared.symbols(), ctx["stems"])
    return ctx | helpers(graph)


RENDERED = "rendered.json"  # in tex/: the digest of every .tex file the build wrote (the export checks them)


def record_rendered(texdir: Path) -> None:
    """Write ``texdir/rendered.json``: each rendered ``.tex`` file (relative to ``texdir``) -> SHA-256."""
    digests = {str(f.relative_to(texdir)): cache.file_digest(f) for f in sorted(texdir.rglob("*.tex"))}
    cache.write_atomic(texdir / RENDERED, json.dumps(digests, indent=1).encode())


def build(graph: "Graph") -> None:
    """Render every template, compile in a fresh private directory, check the PDF, move it into place.

    The private directory (no stale latexmk state, no other build's files) replaces ``tex/``
    only after a good compile.
    """
    ctx = context(graph)
    with cache.atomic_directory(graph.texdir()) as texdir:
        for stem in ctx["stems"]:
            source = render(f"sections/{stem}.tex.j2", ctx, graph.templates)
            cache.write_atomic(texdir / "sections" / f"{stem}.tex", source.encode())
        main = texdir / "report.tex"
        cache.write_atomic(main, render("report.tex.j2", ctx, graph.templates).encode())
        record_rendered(texdir)
        pdf = run_latexmk(main, texdir, graph.templates)
        check_pdf(pdf)
        warnings = log_warnings(pdf.with_suffix(".log").read_text(errors="replace"))
        for warning in warnings:
            print(f"[latex warning] {warning}")
        cache.write_atomic(graph.root / "report.pdf", pdf.read_bytes())
