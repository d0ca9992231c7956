"""What the submission's links into the supplement depend on, without importing either document's code.

The supplement's sections are ``templates/supplement/<stem>.tex.j2`` (:data:`SECTIONS`) and its LaTeX
is compiled in ``<build dir>/tex-supplement`` (:data:`TEXDIR`), where the submission's build finds
``supplement.aux``.  The report task's key hashes :func:`outline` instead of the supplement's key, so
that editing supplement prose re-typesets the supplement alone.
"""

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SECTIONS = "supplement"  # templates/supplement/<stem>.tex.j2
TEXDIR = "tex-supplement"  # under the build directory; holds supplement.aux for the submission's links
# The lines of a supplement template that decide its section, table and figure numbers and its labels.
_STRUCTURE = re.compile(
    r"\\(?:section|subsection|label|caption|begin\{(?:table|figure|longtable)|appendix)|\\BLOCK\{"
)


def stems(stages: Iterable[Any], templates: Path) -> list[str]:
    """The stages, in order, that have a supplement section."""
    return [s.stem for s in stages if (templates / SECTIONS / f"{s.stem}.tex.j2").is_file()]


def outline(stages: Iterable[Any], templates: Path) -> list[str]:
    """Each supplement section's stem and its structure lines: what the submission's \\supref numbers and
    link targets follow (the generated sections come after these, in a fixed order)."""
    lines = [f"template {(templates / 'supplement.tex.j2').is_file()}"]
    for stem in stems(stages, templates):
        text = (templates / SECTIONS / f"{stem}.tex.j2").read_text()
        lines += [stem, *(line.strip() for line in text.splitlines() if _STRUCTURE.search(line))]
    return lines
