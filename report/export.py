"""The submission bundle: one self-contained LaTeX file, its figures beside it, and the PDF.

``build/tex/report.tex`` inputs ``sections/*.tex`` and reads figures from the build's figure
directory (``../figures/``); a course system, Overleaf or arXiv wants one directory that compiles
on its own.  The bundle inlines every ``\\input{sections/...}``, rewrites the figures' paths
``../figures/NAME.pdf`` to ``NAME.pdf`` and drops any ``\\graphicspath`` (the figures lie beside
the source), starts with ``\\pdfoutput=1`` (arXiv's pdfLaTeX switch), and adds
the built PDF as ``report-as-built.pdf`` (compiling ``report.tex`` makes ``report.pdf``).
"""

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from report.cache import file_digest, write_atomic

if TYPE_CHECKING:
    from report.wiring import ReportGraph

INPUT = re.compile(r"\\input\{(sections/[^}]+)\}")
GRAPHICSPATH = re.compile(r"\\graphicspath\{(?:\{[^{}]*\})*\}")


def flattened_source(texdir: Path, figures: Path) -> str:
    r"""``texdir/report.tex`` with its section files inlined and the paths of ``figures`` made local.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as build:
    ...     tex = Path(build, "tex")
    ...     (tex / "sections").mkdir(parents=True)
    ...     _ = (tex / "report.tex").write_text("\\graphicspath{{../figures/}}\n\\input{sections/a\\_b}\n")
    ...     _ = (tex / "sections" / "a_b.tex").write_text("\\includegraphics{../figures/f.pdf}")
    ...     print(flattened_source(tex, Path(build, "figures")))
    \pdfoutput=1
    <BLANKLINE>
    \includegraphics{f.pdf}
    <BLANKLINE>
    """
    prefix = Path(os.path.relpath(figures, texdir)).as_posix() + "/"

    def inline(match: re.Match[str]) -> str:
        name = match.group(1).replace(r"\_", "_")
        return (texdir / f"{name}.tex").read_text()

    source = INPUT.sub(inline, (texdir / "report.tex").read_text())  # a function: no escape processing
    source = GRAPHICSPATH.sub("", source).replace(prefix, "")
    return "\\pdfoutput=1\n" + source


def figure_files(source: str, figures: Path) -> list[Path]:
    """The figure files ``source`` includes, in ``figures``."""
    names = sorted(set(re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+\.pdf)\}", source)))
    return [figures / name for name in names]


class ExportError(Exception):
    """The built document cannot be bundled as it stands; the message says why and what to do."""


def check_rendered(texdir: Path) -> None:
    """An :class:`ExportError` unless ``texdir`` holds the LaTeX the last build rendered, unedited."""
    from report.document import RENDERED

    again = "build it again with --force report --export"
    record = texdir / RENDERED
    if not (texdir / "report.tex").is_file() or not record.is_file():
        raise ExportError(f"cannot export: {texdir / 'report.tex'} or its record is missing; {again}")
    edited = [
        name
        for name, digest in json.loads(record.read_text()).items()
        if not (texdir / name).is_file() or file_digest(texdir / name) != digest
    ]
    if edited:
        raise ExportError(
            f"cannot export: {', '.join(edited)} in {texdir} differ(s) from what the build rendered (edited by"
            f" hand?); change the templates instead and {again}"
        )


def write_bundle(graph: "ReportGraph", bundle: Path) -> Path:
    """Write ``bundle`` (a .zip) from ``graph``'s built document, which must be as the build rendered it;
    return its path."""
    root = graph.root
    check_rendered(graph.texdir())
    source = flattened_source(graph.texdir(), graph.figure_dir())
    files = figure_files(source, graph.figure_dir())
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ExportError(f"cannot export: figures missing from the build: {', '.join(missing)}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (
            ("report.tex", source.encode()),
            *((f.name, f.read_bytes()) for f in files),
            ("report-as-built.pdf", (root / "report.pdf").read_bytes()),
        ):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same sources, the same bytes
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    write_atomic(bundle, buffer.getvalue())
    return bundle
