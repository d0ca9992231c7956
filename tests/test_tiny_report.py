"""The builder serves any report: a second, tiny one, declared in a temporary directory, built end to end.

Its eight files are all it needs (none of them in the builder): the declaration, one derivation with
one check (``halving.py``, ``halving_plot.py``), one experiment in two shards with one figure
(``coins.py``, ``coins_plot.py``), the document's template and one section template per stage.
"""

import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from pypdf import PdfReader

from lab.fmt import integer
from report.cli import main
from report.project import load
from report.wiring import ReportGraph

TINY = {
    "project.py": """
        STAGES = ("halving", "coins")
        PROFILES = ("full", "quick")
        TITLE = "A tiny report"
    """,
    "halving.py": """
        from dataclasses import dataclass

        from lab.checks import Check
        from lab.io import load_json, save_json


        @dataclass(frozen=True)
        class Config:
            x: int = 3


        PROFILES = {"full": Config(), "quick": Config()}


        def run(config: Config) -> dict:
            return {"slope": config.x}  # d/dx x^2/2 = x


        def save(results: dict, directory) -> None:
            save_json(results, directory)


        def load(directory) -> dict:
            return load_json(directory)


        def check() -> list[Check]:
            h = 0.5  # a central difference is exact for a quadratic
            slope = ((3 + h) ** 2 / 2 - (3 - h) ** 2 / 2) / (2 * h)
            return [Check("slope of x^2/2 at 3", "central difference", error=abs(slope - 3), tolerance=1e-12)]
    """,
    "halving_plot.py": """
        from lab.fmt import integer

        FIGURES = {}


        def context(results: dict) -> dict:
            return {"slope": integer(results["slope"])}
    """,
    "coins.py": """
        from dataclasses import dataclass

        import numpy as np

        from lab.io import load_json, save_json


        @dataclass(frozen=True)
        class Config:
            seeds: tuple[int, ...] = (0, 1)
            flips: int = 400


        PROFILES = {"full": Config(flips=4000), "quick": Config()}


        def shards(config: Config) -> dict[str, dict]:
            return {f"s{seed}": {"seed": seed, "flips": config.flips} for seed in config.seeds}


        def run_shard(spec: dict) -> dict[str, np.ndarray]:
            rng = np.random.default_rng(spec["seed"])
            return {"heads": np.asarray(rng.integers(0, 2, spec["flips"]).mean())}


        def gather(config: Config, parts: dict) -> dict:
            return {"means": [float(parts[f"s{seed}"]["heads"]) for seed in config.seeds]}


        def run(config: Config) -> dict:
            return gather(config, {name: run_shard(spec) for name, spec in shards(config).items()})


        def save(results: dict, directory) -> None:
            save_json(results, directory)


        def load(directory) -> dict:
            return load_json(directory)
    """,
    "coins_plot.py": """
        from lab.fmt import num


        def plot_means(results: dict):
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(3, 2))
            ax.bar(range(len(results["means"])), results["means"])
            return fig


        FIGURES = {"coin_means": plot_means}


        def context(results: dict) -> dict:
            return {"mean": num(sum(results["means"]) / len(results["means"]))}
    """,
    "templates/report.tex.j2": r"""
        \documentclass{article}
        \usepackage{graphicx,siunitx}  % lab.fmt writes numbers as \num{...}
        \title{\VAR{settings.title}}
        \begin{document}
        \maketitle
        \BLOCK{for stem in stems}
        \input{sections/\VAR{stem}}
        \BLOCK{endfor}
        \section*{Checks}
        \VAR{build.n_passed} of \VAR{build.n_checks} checks pass.
        \end{document}
    """,
    "templates/sections/halving.tex.j2": r"""
        \section{Halving}
        The slope of $x^2/2$ at $x=3$ is \VAR{halving.slope}.
    """,
    "templates/sections/coins.tex.j2": r"""
        \section{Coins}
        The share of heads over both seeds is \VAR{coins.mean}.
        \includegraphics[width=0.5\linewidth]{\VAR{figure_path("coin_means")}}
    """,
}


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Path:
    for name, text in TINY.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("halving", "halving_plot", "coins", "coins_plot"):
        sys.modules.pop(name, None)


def test_the_tiny_report_needs_eight_files_and_none_of_them_in_the_builder(tiny):
    assert len([p for p in tiny.rglob("*") if p.is_file()]) == len(TINY) == 8
    graph = ReportGraph("quick", load(tiny))
    assert list(graph.tasks) == [
        "halving",
        "coins[s0]",
        "coins[s1]",
        "coins",
        "coin_means",
        "verification",
        "report",
    ]
    assert graph.root == tiny / "build" / "quick"


@pytest.mark.latex
def test_the_same_builder_builds_the_tiny_report_end_to_end(tiny, capsys):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    assert main(["--project", str(tiny), "--profile", "quick", "--jobs", "1"]) == 0
    assert "7 task(s) ran, 0 cached" in capsys.readouterr().out
    built = tiny / "build" / "quick"
    assert sorted(p.name for p in (built / "cache" / "coins").iterdir()) == ["s0.npz", "s1.npz"]
    text = " ".join(page.extract_text() for page in PdfReader(built / "report.pdf").pages)
    text = " ".join(text.split())
    assert "A tiny report" in text and "The slope of x2/2 at x = 3 is 3." in text
    assert "1 of 1 checks pass" in text
    assert "Neural network" not in text  # nothing of this repository's assignment


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--list"], ["--dry-run", "--explain"], ["--profile", "huge"], ["nope"]],
    ids=["help", "list", "dry-run", "bad-profile", "bad-target"],
)
def test_the_builder_starts_without_torch_or_matplotlib(tiny, heavy_imports, argv):
    """The builder's own imports are lazy: what a listing imports is the project's modules' choice."""
    assert heavy_imports("--project", str(tiny), *argv) == []


ANALYSED = {
    "project.py": """
        STAGES = ("halving", "coins")
        ANALYSES = ("coins_fair",)
        PROFILES = ("full", "quick")
        TITLE = "A tiny report"
    """,
    "coins_fair.py": """
        from lab.checks import Check
        from lab.io import load_json, save_json

        STAGE = "coins"
        BOUND = 0.2


        def analyze(results: dict) -> dict:
            return {"deviation": max(abs(m - 0.5) for m in results["means"])}


        def save(analysis: dict, directory) -> None:
            save_json(analysis, directory)


        def load(directory) -> dict:
            return load_json(directory)


        def check(analysis: dict) -> list[Check]:
            return [Check("every seed's share of heads near 1/2", "largest deviation", analysis["deviation"], BOUND)]
    """,
    "coins_plot.py": TINY["coins_plot.py"]
    .replace("def context(results: dict) -> dict:", "def context(results: dict, coins_fair: dict) -> dict:")
    .replace('{"mean":', '{"deviation": num(coins_fair["deviation"]), "mean":'),
}


@pytest.fixture
def analysed(tiny):
    """The tiny report with a derived analysis of the coins stage, whose claim the text relies on."""
    for name, text in ANALYSED.items():
        (tiny / name).write_text(textwrap.dedent(text).lstrip())
    section = tiny / "templates" / "sections" / "coins.tex.j2"
    section.write_text(section.read_text() + "No seed is off by more than \\VAR{coins.deviation}.\n")
    yield tiny
    sys.modules.pop("coins_fair", None)


def test_a_derived_analysis_is_a_task_after_its_stage_that_the_checks_and_documents_read(analysed):
    graph = ReportGraph("quick", load(analysed))
    task = graph.tasks["coins_fair"]
    assert (task.kind, task.inputs, task.modules) == ("analysis", ("coins",), ("coins_fair",))
    assert "coins_fair" in graph.tasks["report"].inputs and graph.tasks["verification"].inputs == ()
    assert graph.claims() == ["coins_fair"]
    edited = analysed / "copy"
    shutil.copytree(analysed, edited, ignore=shutil.ignore_patterns("build", "copy"))
    (edited / "coins_plot.py").write_text((edited / "coins_plot.py").read_text() + "\nEDITED = 1\n")
    (edited / "templates" / "sections" / "coins.tex.j2").write_text("\\section{Coins}\n")
    presented = ReportGraph("quick", load(edited), out=graph.root)
    assert presented.key("coins_fair") == graph.key("coins_fair")  # presentation never reruns it
    assert presented.key("report") != graph.key("report")


def test_a_stage_analysis_naming_no_stage_is_a_one_line_error(analysed):
    from report.project import ProjectError

    fair = analysed / "coins_fair.py"
    fair.write_text(fair.read_text().replace('STAGE = "coins"', 'STAGE = "dice"'))
    with pytest.raises(ProjectError, match="analysis 'coins_fair' reads STAGE 'dice', which is no stage"):
        ReportGraph("quick", load(analysed))


def test_verify_computes_a_stale_analysis_and_checks_its_claim(analysed, capsys, monkeypatch):
    assert main(["--project", str(analysed), "--profile", "quick", "--verify", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "bringing them up to date" in out and "] coins_fair" in out and "] coins[s0]" in out
    assert "every seed's share of heads near 1/2" in out and "2 of 2 checks passed" in out
    fair = analysed / "coins_fair.py"
    fair.write_text(fair.read_text().replace("BOUND = 0.2", "BOUND = 0.0"))  # no seed is exactly fair
    sys.modules.pop("coins_fair", None)
    assert main(["--project", str(analysed), "--profile", "quick", "--verify", "--jobs", "1"]) == 1
    out = capsys.readouterr().out
    assert "] coins_fair" in out and "] coins[s0]" not in out  # the analysis reruns, its stage is cached
    assert "FAIL" in out and "1 of 2 checks passed" in out


def test_the_analysis_records_its_claim_under_its_stage_and_a_build_fails_on_it(analysed, capsys):
    graph = ReportGraph("quick", load(analysed))
    assert graph.recorded_checks() == []
    assert (
        main(
            [
                "--project",
                str(analysed),
                "--profile",
                "quick",
                "halving",
                "coins_fair",
                "verification",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    records = graph.recorded_checks()
    assert [(r["module"], r["name"], r["passed"]) for r in records] == [
        ("halving", "slope of x^2/2 at 3", True),
        ("coins", "every seed's share of heads near 1/2", True),
    ]
    assert graph.recorded_checks(["coins_fair"]) == records[1:]
    from report import document

    ctx = document.context(graph)  # the stage's context receives its analysis; the abstract counts its claim
    assert ctx["coins"]["deviation"] and ctx["build"]["n_checks"] == ctx["build"]["n_passed"] == integer(2)
    fair = analysed / "coins_fair.py"
    fair.write_text(fair.read_text().replace("BOUND = 0.2", "BOUND = 0.0"))
    sys.modules.pop("coins_fair", None)
    assert main(["--project", str(analysed), "--profile", "quick", "coins_fair", "--jobs", "1"]) == 1
    assert "FAILED check: every seed's share of heads near 1/2" in capsys.readouterr().err
