"""The real report, built from the quick profile, read back from the PDF."""

import dataclasses
import math
import re
import shutil
import subprocess
import zipfile

import pytest
from pypdf import PdfReader

from report import pages, wiring
from report.cli import main
from report.export import write_bundle
from report.project import Project, load

pytestmark = [pytest.mark.latex, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_build(tmp_path_factory):
    """Build the quick profile into a temporary directory; return (graph, PDF text)."""
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    out = tmp_path_factory.mktemp("quick")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Project, "build_dir", lambda self, profile: out)
        assert main(["--profile", "quick"]) == 0
        graph = wiring.ReportGraph("quick")
    return graph, pdf_text(out / "report.pdf")


def pdf_text(pdf):
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    return re.sub(r"\s+", " ", text.replace("\u2212", "-"))


def test_every_stage_has_its_section_and_every_figure_is_built(quick_build):
    graph, text = quick_build
    for stage in load().stages:
        assert (graph.data_dir(stage.stem) / ".." / ".." / "cache" / f"{stage.stem}.json").exists()
    for name in graph.figures():
        assert graph.figure_path(name).read_bytes().startswith(b"%PDF")
    evidence = pdf_text(graph.root / "supplement.pdf")
    for heading in ("Provenance", "Verification of the derivations"):
        assert heading in evidence and heading not in text  # the evidence left the submission


def test_the_supplement_names_every_figure_and_table_with_its_data(quick_build):
    graph, _ = quick_build
    evidence = pdf_text(graph.root / "supplement.pdf").replace(" ", "")
    for stage in graph.stages:
        assert graph.key(stage.stem)[:12] in evidence, stage.stem
    for name in graph.figures():
        assert name.replace(" ", "") in evidence
    submission = "".join(t.read_text() for t in (graph.root / "tex").rglob("*.tex"))
    tables = re.findall(r"\\captionof\{table\}|\\begin\{table\}", submission)
    labels = re.findall(r"\\label\{(tab:[^}]+)\}", submission)
    assert len(labels) == len(tables) > 5
    for label in labels:  # every table of the submission has its row in the supplement
        assert label in evidence, label


def test_the_submission_links_resolve_into_the_supplement(quick_build):
    graph, text = quick_build
    assert "??" not in text
    assert re.search(r"Supplement S\d+\.\d+ lists every operation", text)  # Exercise 2's operations table
    evidence = PdfReader(graph.root / "supplement.pdf")
    remote = {
        str(action["/D"])
        for page in PdfReader(graph.root / "report.pdf").pages
        for annot in page.get("/Annots", []) or []
        if (action := annot.get_object().get("/A")) is not None and action.get("/S") == "/GoToR"
    }
    assert remote and all(action for action in remote)
    assert remote <= set(evidence.named_destinations)  # every link lands on a place that exists


def test_a_submission_over_the_page_limit_is_written_and_fails_the_build(quick_build, monkeypatch, capsys):
    graph, _ = quick_build
    from report import settings

    load = settings.load
    monkeypatch.setattr(settings, "load", lambda *a: dataclasses.replace(load(*a), page_limit=2))
    monkeypatch.setattr(Project, "build_dir", lambda self, profile: graph.root)
    (graph.root / "report.pdf").unlink()
    assert main(["--profile", "quick"]) == 1
    err = capsys.readouterr().err
    pages = len(PdfReader(graph.root / "report.pdf").pages)  # written all the same
    assert f"report.pdf has {pages} pages, more than the page limit of 2" in err
    assert re.search(r"Exercise 2: backpropagation .* pages \d+-\d+ +\(\d+ pages?\)", err)


def test_the_quick_submission_keeps_the_page_limit_of_the_settings(quick_build):
    from report import settings

    graph, _ = quick_build
    limit = settings.load(load().settings_file).page_limit
    assert limit == 12
    assert pages.over_limit(graph.root / "report.pdf", limit) is None


def test_all_checks_pass_in_the_pdf(quick_build):
    _, text = quick_build
    match = re.search(r"(\d+) of (\d+) checks pass", text)
    assert match is not None
    assert match[1] == match[2]
    assert int(match[2]) >= 10


def test_a_second_build_runs_nothing(quick_build, monkeypatch, capsys):
    graph, _ = quick_build
    monkeypatch.setattr(Project, "build_dir", lambda self, profile: graph.root)
    capsys.readouterr()
    assert main(["--profile", "quick"]) == 0
    assert "0 task(s) ran" in capsys.readouterr().out


def test_the_exercise_1_gradient_in_the_pdf_is_the_true_one(quick_build):
    _, text = quick_build
    a, b = 2.0, 3.0
    denominator = 1 + math.exp(a**2) + b**2
    dz_da = -math.log(b) * 2 * a * math.exp(a**2) / denominator**2
    dz_db = (1 / b) / denominator - math.log(b) * 2 * b / denominator**2
    answers = [float(x.replace(" ", "")) for x in re.findall(r"≈ ?(-?\d[\d. ]*\d)", text)]
    assert answers[:2] == pytest.approx([dz_da, dz_db], rel=1e-3)  # the abstract: four digits
    assert any(a == pytest.approx(dz_da, rel=1e-9) for a in answers[2:])  # Section 1(d): every digit
    assert any(a == pytest.approx(dz_db, rel=1e-9) for a in answers[2:])


@pytest.mark.parametrize("order", [("report", "supplement"), ("supplement", "report")])
def test_the_bundle_compiles_each_document_alone_to_the_same_text(quick_build, tmp_path, order):
    graph, _ = quick_build
    bundle = write_bundle(graph, tmp_path / "submission.zip")
    unpacked = tmp_path / "unpacked"  # a fresh directory, as on Overleaf or a course system
    with zipfile.ZipFile(bundle) as archive:
        assert all("/" not in name for name in archive.namelist())  # one flat directory
        archive.extractall(unpacked)

    def text(pdf):
        return [page.extract_text() for page in PdfReader(pdf).pages]

    for name in order:
        source = (unpacked / f"{name}.tex").read_text()
        assert source.startswith("\\pdfoutput=1") and "../" not in source and "\\input{" not in source
        subprocess.run(
            ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
            cwd=unpacked,
            check=True,
            capture_output=True,
        )
        assert text(unpacked / f"{name}.pdf") == text(graph.root / f"{name}.pdf")
    links = {
        str(annot.get_object()["/A"].get("/D"))
        for page in PdfReader(unpacked / "report.pdf").pages
        for annot in page.get("/Annots", []) or []
        if annot.get_object().get("/A", {}).get("/S") == "/GoToR"
    }
    assert links and links <= set(PdfReader(unpacked / "supplement.pdf").named_destinations)
