"""The built PDF as a reader gets it: page layout, byte-identical rebuilds, metadata, figure links.

The layout check renders every page (``pdftoppm``) and measures its *empty fraction*: the share of
the text block's height in blank bands taller than ``GAP_CM`` (the gaps between lines and paragraphs
are smaller, so running text counts as full).  Before the appendices no page may be more than
``MAX_EMPTY`` empty, unless a section ends there (the next page starts a new section at its top).

Floats must sit on the page of their first reference (a link in the text) or on the next page.

Run ``python tests/test_pdf.py build/quick/report.pdf`` to print every page's empty fraction and
every float placed too far from its first reference.
"""

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from lab.style import MARGIN_CM

MAX_EMPTY = 1 / 3  # "no page more than about a third empty"
GAP_CM = 1.2  # a blank band this tall is empty space, not the gap around a heading, display or TOC line
DPI = 36
INK = 200  # grey level (0 black, 255 white) below which a pixel is ink
CM_PER_PT = 2.54 / 72


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    empty: float  # fraction of the text block's height in blank bands taller than GAP_CM
    section_ends: bool  # the next page starts a section at its top, or the document ends here
    appendix: bool  # in the appendices


def empty_fraction(gray: np.ndarray, dpi: int = DPI) -> float:
    """Share of the text block's rows (page minus margins) in blank runs taller than ``GAP_CM``."""
    margin = round(MARGIN_CM / 2.54 * dpi)
    block = gray[margin:-margin, margin:-margin]
    blank = (block >= INK).all(axis=1)
    gap = GAP_CM / 2.54 * dpi
    empty = run = 0
    for row_blank in [*blank, False]:
        if row_blank:
            run += 1
            continue
        empty += run if run >= gap else 0
        run = 0
    return empty / len(blank)


def section_starts(reader: PdfReader) -> list[tuple[int, float]]:
    """(0-based page, distance in cm from the top of the text block) of every top-level outline entry."""
    height_pt = float(reader.pages[0].mediabox.height)
    top_of_block = height_pt - MARGIN_CM / CM_PER_PT
    return [
        (reader.get_destination_page_number(item), max(0.0, (top_of_block - float(item.top)) * CM_PER_PT))
        for item in reader.outline
        if not isinstance(item, list)
    ]


def measure(pdf: Path, workdir: Path) -> list[Page]:
    """Render ``pdf`` into ``workdir`` and measure every page."""
    subprocess.run(["pdftoppm", "-gray", "-r", str(DPI), pdf, workdir / "page"], check=True)
    reader = PdfReader(pdf)
    starts = section_starts(reader)
    top_starts = {page for page, depth in starts if depth < 2.0}  # the heading sits at the page top
    appendix = min(
        (
            reader.get_destination_page_number(d)
            for k, d in reader.named_destinations.items()
            if k.startswith("appendix.")
        ),
        default=len(reader.pages),  # the submission has none: its evidence is the supplement
    )
    images = sorted(workdir.glob("page-*.pgm"))
    return [
        Page(
            i + 1,
            empty_fraction(np.asarray(Image.open(path))),
            i + 1 in top_starts or i + 1 == len(images),  # the next page starts a section, or none follows
            i >= appendix,
        )
        for i, path in enumerate(images)
    ]


def float_distances(pdf: Path) -> dict[str, tuple[int, int]]:
    """For every figure and table that the text links to: (1-based page of its first reference, of the float)."""
    reader = PdfReader(pdf)
    floats = {
        name: reader.get_destination_page_number(dest)
        for name, dest in reader.named_destinations.items()
        if name.startswith(("figure.", "table."))
    }
    first: dict[str, int] = {}
    for number, page in enumerate(reader.pages):
        for annot in page.get("/Annots", []) or []:
            action = annot.get_object().get("/A")
            target = str(action.get_object().get("/D")) if action is not None else None
            if target in floats:
                first.setdefault(target, number)
    aux = pdf.parent / "tex" / "report.aux"  # hyperref's \newlabel lines name each float's destination
    newlabel = re.compile(r"^\\newlabel\{([^}]*)\}.*\{((?:figure|table)\.[^{}]*)\}\{\}\}$", re.MULTILINE)
    labels = {m[2]: m[1] for m in newlabel.finditer(aux.read_text())} if aux.exists() else {}
    return {labels.get(name, name): (first[name] + 1, floats[name] + 1) for name in first}


needs_tex = pytest.mark.skipif(
    shutil.which("latexmk") is None or shutil.which("pdftoppm") is None, reason="latexmk or pdftoppm missing"
)


def quick_pdf(out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from report.cli import main
    from report.project import Project

    monkeypatch.setattr(Project, "build_dir", lambda self, profile: out)
    assert main(["--profile", "quick"]) == 0
    return out / "report.pdf"


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    """The quick profile built twice from scratch, into two directories."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("SOURCE_DATE_EPOCH", raising=False)
        return [quick_pdf(tmp_path_factory.mktemp(f"build{i}"), mp) for i in range(2)]


def test_empty_fraction_counts_bands_not_line_gaps():
    dpi, height = DPI, round(29.7 / 2.54 * DPI)
    page = np.full((height, round(21 / 2.54 * DPI)), 255, dtype=np.uint8)
    margin = round(MARGIN_CM / 2.54 * dpi)
    page[margin : height - margin : 6, margin:-margin] = 0  # "text": an ink row every 6 px (0.42 cm)
    assert empty_fraction(page) == 0
    page[height // 2 : height - margin] = 255  # the lower half of the text block blank
    assert empty_fraction(page) == pytest.approx(0.5, abs=0.03)


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_no_page_before_the_appendices_is_a_third_empty(two_builds, tmp_path):
    pages = measure(two_builds[0], tmp_path)
    bad = [p for p in pages if not p.appendix and not p.section_ends and p.empty > MAX_EMPTY]
    assert bad == [], "\n".join(f"page {p.number}: {p.empty:.0%} empty" for p in bad)


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_floats_sit_on_the_page_of_their_first_reference_or_the_next(two_builds):
    far = {
        name: pages
        for name, pages in float_distances(two_builds[0]).items()
        if not 0 <= pages[1] - pages[0] <= 1
    }
    assert far == {}, "(first reference, float) pages"


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
@pytest.mark.parametrize(("document", "texdir"), [("report", "tex"), ("supplement", "tex-supplement")])
def test_the_same_sources_give_the_same_bytes(two_builds, document, texdir):
    first, second = ((pdf.parent / f"{document}.pdf").read_bytes() for pdf in two_builds)
    differing = [  # which generated LaTeX differs, to say why the PDFs do
        line
        for tex in sorted((two_builds[0].parent / texdir).rglob("*.tex"))
        for line in set(tex.read_text().splitlines())
        ^ set(
            (two_builds[1].parent / texdir / tex.relative_to(two_builds[0].parent / texdir))
            .read_text()
            .splitlines()
        )
    ]
    assert first == second, f"the PDFs differ; differing LaTeX lines: {differing[:4]}"


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_title_author_and_figure_links_are_in_the_pdf(two_builds):
    from report import document, project, wiring

    reader = PdfReader(two_builds[0])
    assert reader.metadata.title == document.title_page(project.load())["title"]
    assert "/CreationDate" not in reader.metadata and "/ID" not in reader.trailer
    links = {
        str(annot.get_object()["/A"].get("/D"))
        for page in reader.pages
        for annot in page.get("/Annots", [])
        if "/A" in annot.get_object()
    }
    shown = set(
        re.findall(
            r"includegraphics(?:\[[^]]*\])?\{(?:[^}]*/)?([\w-]+)(?:\.pdf)?\}",
            "".join(t.read_text() for t in (two_builds[0].parent / "tex").rglob("*.tex")),
        )
    )
    assert shown and shown <= set(wiring.ReportGraph("quick").figures())
    for name in shown:  # the submission's figures; the others are the supplement's
        assert f"src:../figures/{name}.pdf" in links, name  # figure -> its row of the supplement's provenance


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_every_figure_is_drawn_at_print_size(two_builds):
    import matplotlib.pyplot as plt

    from lab import style
    from report import figures
    from report.project import load

    refused = []
    for stage in load().stages:
        results = stage.compute_module().load(two_builds[0].parent / "data" / stage.stem)
        for name, plot in stage.present_module().FIGURES.items():
            with plt.rc_context(style.STYLE):
                fig = plot(results)
                try:
                    figures.check_print_size(fig)
                except ValueError as err:
                    refused.append(f"{name}: {err}")
                plt.close(fig)
    assert refused == []


# The submission as a grader reads it (issue 20): nothing about how it was made, no sentence pattern
# repeated where a table would carry the numbers, every float cited before it appears, no page a third empty.
FORBIDDEN = ("cache", "shard", "key", "commit", "stage", "build", "not recorded")
RUN_WORDS, RUN_TIMES = 8, 3  # a run of eight or more words occurring three or more times
PROSE_DISTINCT = 5  # a run with fewer distinct words is symbols read out of math ("v v v ..."), not prose


def pdf_text(pdf: Path) -> str:
    """The text of ``pdf``, whitespace collapsed."""
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(pdf).pages))


def forbidden_words(text: str) -> dict[str, int]:
    """How often each word of :data:`FORBIDDEN` occurs in ``text`` as a word, in any case."""
    patterns = {w: r"\b" + w.replace(" ", r"\s+") + r"\b" for w in FORBIDDEN}
    counts = {w: len(re.findall(pattern, text, re.IGNORECASE)) for w, pattern in patterns.items()}
    return {w: n for w, n in counts.items() if n}


def repeated_runs(text: str) -> dict[str, int]:
    """Every run of :data:`RUN_WORDS` words of prose that occurs at least :data:`RUN_TIMES` times."""
    tokens = re.findall(r"[A-Za-z]+(?:['’-][A-Za-z]+)*", text)
    words = [w.lower() for w in tokens if len(w) > 1 or w == "a"]  # one letter: a symbol read out of math
    runs = Counter(tuple(words[i : i + RUN_WORDS]) for i in range(len(words) - RUN_WORDS + 1))
    return {" ".join(r): n for r, n in runs.items() if n >= RUN_TIMES and len(set(r)) >= PROSE_DISTINCT}


def cited_late(pdf: Path) -> dict[str, str]:
    """Every figure and table whose first link in the text does not come before it (or that has none)."""
    reader = PdfReader(pdf)
    floats = {
        name: (reader.get_destination_page_number(dest), -float(dest.top))
        for name, dest in reader.named_destinations.items()
        if name.startswith(("figure.", "table."))
    }
    first: dict[str, tuple[int, float]] = {}
    for number, page in enumerate(reader.pages):
        for annot in page.get("/Annots", []) or []:
            annot = annot.get_object()
            action = annot.get("/A")
            target = str(action.get_object().get("/D")) if action is not None else None
            if target in floats and target not in first:
                first[target] = (number, -float(annot["/Rect"][1]))  # (page, depth of the link's bottom)
    return {
        name: f"first cited on page {first[name][0] + 1}, placed on page {at[0] + 1}"
        if name in first
        else "never cited"
        for name, at in floats.items()
        if name not in first or first[name] > at
    }


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_the_submission_says_nothing_about_how_it_was_built(two_builds):
    assert forbidden_words(pdf_text(two_builds[0])) == {}


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_no_run_of_eight_words_occurs_three_times_in_the_submission(two_builds):
    assert repeated_runs(pdf_text(two_builds[0])) == {}


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_every_float_of_the_submission_is_cited_before_it_appears(two_builds):
    assert cited_late(two_builds[0]) == {}


@pytest.mark.latex
@pytest.mark.slow
@needs_tex
def test_no_page_of_the_submission_but_the_last_is_a_third_empty(two_builds, tmp_path):
    pages = measure(two_builds[0], tmp_path)
    bad = [p for p in pages[:-1] if p.empty > MAX_EMPTY]
    assert bad == [], "\n".join(f"page {p.number}: {p.empty:.0%} empty" for p in bad)


def test_the_submission_text_checks_find_what_they_look_for():
    text = "The cache key of this stage; BUILD it. Keyboard shortcuts. Not\nrecorded."
    assert forbidden_words(text) == {"cache": 1, "key": 1, "stage": 1, "build": 1, "not recorded": 1}
    sentence = "At level one the test is inconclusive, not contrary to the claim."
    assert list(repeated_runs(" ".join([sentence] * 3))) != []
    assert repeated_runs(" ".join([sentence] * 2)) == {}
    assert repeated_runs("v v v v v v v v v v " * 3) == {}  # symbols read out of a matrix, not prose


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for p in measure(Path(sys.argv[1]), Path(tmp)):
            flag = " appendix" if p.appendix else " section ends" if p.section_ends else ""
            print(f"page {p.number:2d}: {p.empty:4.0%} empty{flag}")
    for name, (ref, page) in float_distances(Path(sys.argv[1])).items():
        if not 0 <= page - ref <= 1:
            print(f"{name} on page {page}, first referenced on page {ref}")
