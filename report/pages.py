"""The submission's length against the course's page limit (``page_limit`` in ``settings.toml``).

The pages a section takes are read from the PDF's outline (hyperref writes one entry per
``\\section``): a section runs from the page its heading is on to the page the next heading is on,
so a page shared by two sections counts for both.  The front matter (title block, abstract,
contents, notation) is what precedes the first numbered section.
"""

from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader


@dataclass(frozen=True)
class Span:
    title: str
    first: int  # 1-based page of the heading
    last: int  # 1-based page where the next heading is, or the last page

    @property
    def pages(self) -> int:
        return self.last - self.first + 1


def sections(pdf: Path) -> tuple[int, list[Span]]:
    """The number of pages of ``pdf`` and the span of every top-level outline entry, in order."""
    reader = PdfReader(pdf)
    total = len(reader.pages)
    starts = [
        (str(item.title), reader.get_destination_page_number(item) + 1)
        for item in reader.outline
        if not isinstance(item, list)  # a list holds the subsections of the entry before it
    ]
    spans = []
    if starts and starts[0][1] > 1:
        spans.append(Span("(title, abstract, contents)", 1, starts[0][1]))
    for (title, first), (_, following) in zip(starts, [*starts[1:], ("", total)], strict=True):
        spans.append(Span(title, first, max(first, following)))
    return total, spans


def over_limit(pdf: Path, limit: int | None) -> str | None:
    """None when ``pdf`` has at most ``limit`` pages (or there is no limit); else what to tell the author:
    the page count and every section's pages."""
    if limit is None:
        return None
    total, spans = sections(pdf)
    if total <= limit:
        return None
    lines = [f"{pdf.name} has {total} pages, more than the page limit of {limit} (settings.toml page_limit):"]
    width = max(len(s.title) for s in spans) if spans else 0
    lines += [
        f"  {s.title:<{width}}  pages {s.first}-{s.last}  ({s.pages} page{'s' if s.pages > 1 else ''})"
        for s in spans
    ]
    return "\n".join(lines)
