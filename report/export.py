"""The submission bundle: each document as one self-contained LaTeX file, the figures beside them, the PDFs.

``build/tex/report.tex`` inputs ``sections/*.tex`` and ``build/tex-supplement/supplement.tex`` inputs
``supplement/*.tex``; both read figures from the build's figure directory (``../figures/``).  A course
system, Overleaf or arXiv wants one directory that compiles on its own.  The bundle inlines every
``\\input{sections/...}`` and ``\\input{supplement/...}``, rewrites the figures' paths
``../figures/NAME.pdf`` to ``NAME.pdf`` and drops any ``\\graphicspath`` (the figures lie beside the
sources; the figure links' destination names change alike in both files), starts each file with
``\\pdfoutput=1`` (arXiv's pdfLaTeX switch), and adds the built PDFs as ``<name>-as-built.pdf``.

The submission's links into the supplement need ``supplement.aux``: the bundle carries the build's
copy, so ``report.tex`` compiles alone with its links resolved; compiling ``supplement.tex`` in the
same directory rewrites it.  The links open ``supplement.pdf`` beside ``report.pdf``.
"""

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from report.cache import file_digest, write_atomic
from report.crossref import TEXDIR as SUPPLEMENT_TEXDIR

if TYPE_CHECKING:
    from report.wiring import ReportGraph

INPUT = re.compile(r"\\input\{((?:sections|supplement)/[^}]+)\}")
GRAPHICSPATH = re.compile(r"\\graphicspath\{(?:\{[^{}]*\})*\}")
DOCUMENTS = ("report", "supplement")


def flattened_source(texdir: Path, figures: Path, name: str = "report") -> str:
    r"""``texdir/<name>.tex`` with its section files inlined and the paths of ``figures`` made local.

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
        section = match.group(1).replace(r"\_", "_")
        return (texdir / f"{section}.tex").read_text()

    source = INPUT.sub(inline, (texdir / f"{name}.tex").read_text())  # a function: no escape processing
    source = GRAPHICSPATH.sub("", source).replace(prefix, "")
    return "\\pdfoutput=1\n" + source


def figure_files(source: str, figures: Path) -> list[Path]:
    """The figure files ``source`` includes, in ``figures``."""
    names = sorted(set(re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+\.pdf)\}", source)))
    return [figures / name for name in names]


class ExportError(Exception):
    """The built document cannot be bundled as it stands; the message says why and what to do."""


def check_rendered(texdir: Path, name: str = "report") -> None:
    """An :class:`ExportError` unless ``texdir`` holds the LaTeX of document ``name`` as the last build
    rendered it (:func:`report.document.record_rendered`), unedited."""
    from report.document import RENDERED

    again = f"build it again with --force {name} --export"
    record = texdir / RENDERED
    if not (texdir / f"{name}.tex").is_file() or not record.is_file():
        raise ExportError(f"cannot export: {texdir / f'{name}.tex'} or its record is missing; {again}")
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
    """Write ``bundle`` (a .zip) from ``graph``'s built documents, each as the build rendered it; return
    its path."""
    root, figures = graph.root, graph.figure_dir()
    texdirs = {"report": graph.texdir(), "supplement": root / SUPPLEMENT_TEXDIR}  # each document's LaTeX
    documents = [name for name in DOCUMENTS if name in graph.tasks]  # a project may have no supplement
    for name in documents:
        check_rendered(texdirs[name], name)
    sources = {name: flattened_source(texdirs[name], figures, name) for name in documents}
    files = sorted({f for source in sources.values() for f in figure_files(source, figures)})
    missing = [str(f) for f in files if not f.is_file()]
    if "supplement" in sources and not (root / SUPPLEMENT_TEXDIR / "supplement.aux").is_file():
        missing.append(str(root / SUPPLEMENT_TEXDIR / "supplement.aux"))
    if missing:
        raise ExportError(
            f"cannot export: missing from the build: {', '.join(missing)}; build again with --force"
        )
    labels = root / SUPPLEMENT_TEXDIR / "supplement.aux"  # the submission's links into the supplement
    entries = [
        *((f"{name}.tex", source.encode()) for name, source in sources.items()),
        *([("supplement.aux", labels.read_bytes())] if "supplement" in sources else []),
        *((f.name, f.read_bytes()) for f in files),
        *((f"{name}-as-built.pdf", (root / f"{name}.pdf").read_bytes()) for name in documents),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same sources, the same bytes
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    write_atomic(bundle, buffer.getvalue())
    return bundle
