"""The submission bundle: one self-contained LaTeX file, its figures beside it, and the PDF.

``build/tex/report.tex`` inputs ``sections/*.tex`` and reads figures from ``../figures/``; a
course system, Overleaf or arXiv wants one directory that compiles on its own.  The bundle
inlines every ``\\input{sections/...}``, rewrites ``../figures/NAME.pdf`` to ``NAME.pdf`` (the
figures lie beside the source), starts with ``\\pdfoutput=1`` (arXiv's pdfLaTeX switch), and adds
the built PDF as ``report-as-built.pdf`` (compiling ``report.tex`` makes ``report.pdf``).
"""

import io
import re
import zipfile
from pathlib import Path

from report.cache import write_atomic

INPUT = re.compile(r"\\input\{(sections/[^}]+)\}")


def flattened_source(texdir: Path) -> str:
    """``texdir/report.tex`` with its section files inlined and figure paths made local."""

    def inline(match: re.Match[str]) -> str:
        name = match.group(1).replace(r"\_", "_")
        return (texdir / f"{name}.tex").read_text()

    source = INPUT.sub(inline, (texdir / "report.tex").read_text())  # a function: no escape processing
    source = source.replace(r"\graphicspath{{../figures/}}", "").replace("../figures/", "")
    return "\\pdfoutput=1\n" + source


def figure_files(source: str, figures: Path) -> list[Path]:
    """The figure files ``source`` includes, in ``figures``."""
    names = sorted(set(re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+\.pdf)\}", source)))
    return [figures / name for name in names]


def write_bundle(root: Path, bundle: Path) -> Path:
    """Write ``bundle`` (a .zip) from the build directory ``root``; return its path."""
    source = flattened_source(root / "tex")
    files = figure_files(source, root / "figures")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"figures missing from the build: {', '.join(missing)}")
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
