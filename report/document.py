"""The document task: stage contexts + templates -> LaTeX -> ``report.pdf``.

Each ``templates/sections/<stem>.tex.j2`` is rendered to ``tex/sections/<stem>.tex`` and
``templates/report.tex.j2`` to ``tex/report.tex``, which inputs them; separate files make a
LaTeX error point at the section it came from.  The PDF replaces ``report.pdf`` only after
a successful compile, so a failed build keeps the last good one.
"""

import json
import platform
from typing import TYPE_CHECKING, Any

from report import cache
from report.figures import GEOMETRY
from report.fmt import Tex, integer, num
from report.latex import check_pdf, log_warnings, run_latexmk
from report.render import latex_escape, render

if TYPE_CHECKING:
    from report.pipeline import Graph


def _breakable(name: str) -> str:
    r"""A dotted name in \texttt that may break after its dots."""
    return r".\allowbreak{}".join(latex_escape(part) for part in name.split("."))


def helpers(graph: "Graph") -> dict[str, Any]:
    """Template globals for figures: their path and their provenance line."""

    def task(name: str):
        t = graph.tasks.get(name)
        if t is None or t.kind != "figure":
            raise KeyError(f"no figure named {name!r}; figures: {', '.join(graph.figures())}")
        return t

    def figure_path(name: str) -> Tex:
        task(name)
        return Tex(f"../figures/{name}.pdf")

    def provenance(name: str) -> Tex:
        t = task(name)
        stage = next(s for s in graph.stages if s.stem == t.inputs[0])
        plot = stage.present_module().FIGURES[name]
        function = f"{plot.__module__}.{plot.__qualname__}"
        return Tex(rf"\provenance{{{_breakable(function)}}}{{{graph.key(stage.stem)[:12]}}}")

    return {"figure_path": figure_path, "provenance": provenance, "geometry": Tex(GEOMETRY)}


def appendix(graph: "Graph") -> dict[str, Any]:
    """Reproducibility facts: every task with key, seed and runtime; versions; checks."""
    rows = []
    for name, t in graph.tasks.items():
        if t.kind == "document":
            continue
        record = cache.read_manifest(graph.manifest(name)) or {}
        rows.append(
            {
                "name": name,
                "kind": t.kind,
                "key": graph.key(name)[:12],
                "seed": "" if t.seed is None else str(t.seed),
                "seconds": num(record.get("seconds", 0.0), sig=2),
            }
        )
    checks = json.loads((graph.root / "data" / "verification.json").read_text())
    return {
        "profile": graph.profile,
        "git": graph.tasks["report"].config["git"],
        "python": platform.python_version(),
        "versions": cache.versions(),
        "tasks": rows,
        "checks": [
            {
                "name": c["name"],
                "method": c["method"],
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
    return ctx | helpers(graph)


def build(graph: "Graph") -> None:
    """Render every template, compile in a fresh private directory, check the PDF, move it into place.

    The private directory (no stale latexmk state, no other build's files) replaces ``tex/``
    only after a good compile.
    """
    ctx = context(graph)
    with cache.atomic_directory(graph.root / "tex") as texdir:
        for stem in ctx["stems"]:
            source = render(f"sections/{stem}.tex.j2", ctx, graph.templates)
            cache.write_atomic(texdir / "sections" / f"{stem}.tex", source.encode())
        main = texdir / "report.tex"
        cache.write_atomic(main, render("report.tex.j2", ctx, graph.templates).encode())
        pdf = run_latexmk(main, texdir, graph.templates)
        check_pdf(pdf)
        warnings = log_warnings(pdf.with_suffix(".log").read_text(errors="replace"))
        for warning in warnings:
            print(f"[latex warning] {warning}")
        cache.write_atomic(graph.root / "report.pdf", pdf.read_bytes())
