"""The real report, built from the quick profile, read back from the PDF."""

import math
import re
import shutil
import subprocess
import zipfile

import pytest
from pypdf import PdfReader

from report import wiring
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
    text = "\n".join(page.extract_text() for page in PdfReader(out / "report.pdf").pages)
    text = re.sub(r"\s+", " ", text.replace("\u2212", "-"))
    return graph, text


def test_every_stage_has_its_section_and_every_figure_is_built(quick_build):
    graph, text = quick_build
    for stage in load().stages:
        assert (graph.data_dir(stage.stem) / ".." / ".." / "cache" / f"{stage.stem}.json").exists()
    for name in graph.figures():
        assert graph.figure_path(name).read_bytes().startswith(b"%PDF")
    for heading in ("Reproducibility", "Verification of the derivations"):
        assert heading in text


def test_the_appendix_lists_every_task_with_its_key(quick_build):
    graph, text = quick_build
    for name, task in graph.tasks.items():
        if task.kind not in ("document", "shard"):  # shards are hashed into their stage's key
            assert graph.key(name)[:12] in text.replace(" ", ""), name


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
    assert answers[:2] == pytest.approx([dz_da, dz_db], rel=1e-9)


def test_the_submission_bundle_compiles_alone_to_the_same_text(quick_build, tmp_path):
    graph, _ = quick_build
    bundle = write_bundle(graph, tmp_path / "submission.zip")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        assert all("/" not in name for name in archive.namelist())  # one flat directory
        archive.extractall(unpacked)
    source = (unpacked / "report.tex").read_text()
    assert source.startswith("\\pdfoutput=1") and "../" not in source and "\\input{" not in source
    subprocess.run(
        ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=unpacked,
        check=True,
        capture_output=True,
    )

    def text(pdf):
        return [page.extract_text() for page in PdfReader(pdf).pages]

    assert text(unpacked / "report.pdf") == text(graph.root / "report.pdf")
