"""The submission bundle: each document as one self-contained LaTeX file, the figures beside them, the PDFs.

``build/tex/report.tex`` inputs ``sections/*.tex`` and ``build/tex-supplement/supplement.tex`` inputs
``supplement/*.tex``; both read figures from ``../figures/``.  A course system, Overleaf or arXiv wants
one directory that compiles on its own.  The bundle inlines every ``\\input{sections/...}`` and
``\\input{supplement/...}``, rewrites ``../figures/NAME.pdf`` to ``NAME.pdf`` (the figures lie beside
the sources; the figure links' destination names change alike in both files), starts each file with
``\\pdfoutput=1`` (arXiv's pdfLaTeX switch), and adds the built PDFs as ``<name>-as-built.pdf``.

The submission's links into the supplement need ``supplement.aux``: the bundle carries the build's
copy, so ``report.tex`` compiles alone with its links resolved; compiling ``supplement.tex`` in the
same directory rewrites it.  The links open ``supplement.pdf`` beside ``report.pdf``.
"""

import io
import re
import zipfile
from pathlib import Path

from report.cache import write_atomic
from report.crossref import TEXDIR as SUPPLEMENT_TEXDIR

INPUT = re.compile(r"\\input\{((?:sections|supplement)/[^}]+)\}")
DOCUMENTS = {"report": "tex", "supplement": SUPPLEMENT_TEXDIR}  # document -> its LaTeX directory in the build


def flattened_source(texdir: Path, name: str = "report") -> str:
    """``texdir/<name>.tex`` with its section files inlined and figure paths made local."""

    def inline(match: re.Match[str]) -> str:
        section = match.group(1).replace(r"\_", "_")
        return (texdir / f"{section}.tex").read_text()

    source = INPUT.sub(inline, (texdir / f"{name}.tex").read_text())  # a function: no escape processing
    source = source.replace(r"\graphicspath{{../figures/}}", "").replace("../figures/", "")
    return "\\pdfoutput=1\n" + source


def figure_files(source: str, figures: Path) -> list[Path]:
    """The figure files ``source`` includes, in ``figures``."""
    names = sorted(set(re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+\.pdf)\}", source)))
    return [figures / name for name in names]


def write_bundle(root: Path, bundle: Path) -> Path:
    """Write ``bundle`` (a .zip) from the build directory ``root``; return its path."""
    sources = {name: flattened_source(root / texdir, name) for name, texdir in DOCUMENTS.items()}
    files = sorted({f for source in sources.values() for f in figure_files(source, root / "figures")})
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"figures missing from the build: {', '.join(missing)}")
    entries = [
        *((f"{name}.tex", source.encode()) for name, source in sources.items()),
        ("supplement.aux", (root / SUPPLEMENT_TEXDIR / "supplement.aux").read_bytes()),
        *((f.name, f.read_bytes()) for f in files),
        *((f"{name}-as-built.pdf", (root / f"{name}.pdf").read_bytes()) for name in DOCUMENTS),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same sources, the same bytes
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    write_atomic(bundle, buffer.getvalue())
    return bundle
