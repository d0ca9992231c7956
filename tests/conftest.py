"""Shared fixtures: a toy project with one stage, for testing the builder without real experiments."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from report.project import Project, load
from report.stages import Stage

TOY_FILES = {
    "project.py": """
        STAGES = ("toypkg.toy",)
        PROFILES = ("quick", "full")  # the first builds into build/
        TITLE = "Toy"
    """,
    "toypkg/__init__.py": "",
    "toypkg/helper.py": "SCALE = 2\n",
    "toypkg/toy.py": """
        from dataclasses import dataclass
        from pathlib import Path

        from lab.checks import Check
        from lab.io import load_json, save_json
        from toypkg.helper import SCALE


        @dataclass(frozen=True)
        class Config:
            n: int = 3
            seed: int = 0


        PROFILES = {"full": Config(n=5), "quick": Config()}


        def run(config: Config) -> dict:
            return {"values": [SCALE * i for i in range(config.n)]}


        def save(results: dict, directory: Path) -> None:
            save_json(results, directory)


        def load(directory: Path) -> dict:
            return load_json(directory)


        def check() -> list[Check]:
            return [Check("toy sum", "arithmetic", error=0.0, tolerance=0.0)]
    """,
    "toypkg/toy_plot.py": """
        import matplotlib.pyplot as plt

        from lab.fmt import num


        def plot_values(results):
            fig, ax = plt.subplots(figsize=(3, 2))
            ax.plot(results["values"], label="values")
            ax.legend()
            return fig


        FIGURES = {"toy_fig": plot_values}


        def context(results):
            return {"total": num(sum(results["values"])), "label": "a_b & c"}
    """,
    "templates/sections/toy.tex.j2": r"""
        \section{Toy}\label{sec:toy}
        Total \VAR{toy.total}, label \VAR{toy.label}.
        \begin{figure}[h]\centering
          \includegraphics[width=0.4\linewidth]{\VAR{figure_path("toy_fig")}}
          \caption{Toy. \VAR{provenance("toy_fig")}}
        \end{figure}
    """,
}


@pytest.fixture
def toy_project(tmp_path: Path):
    """A project root holding its declaration, ``toypkg`` and templates, importable for the test's duration.

    The real ``templates/report.tex.j2`` and ``supplement.tex.j2`` (with the preamble and notation they
    include) are copied in, so documents built from the toy project exercise the real ones.
    """
    for rel, text in TOY_FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    for name in ("report.tex.j2", "supplement.tex.j2", "preamble.tex.j2", "notation.tex.j2"):
        shutil.copy(Path(__file__).parent.parent / "templates" / name, tmp_path / "templates")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m == "toypkg" or m.startswith("toypkg.")]:
        del sys.modules[name]


@pytest.fixture
def toy_declared(toy_project) -> Project:
    """The toy project's declaration."""
    return load(toy_project)


@pytest.fixture
def toy_stage(toy_declared) -> Stage:
    (stage,) = toy_declared.stages
    return stage


# The command line in a fresh interpreter, then the heavy libraries it imported.
HEAVY = """
import sys
from report.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(m for m in ("torch", "matplotlib") if m in sys.modules)))
"""


@pytest.fixture
def heavy_imports():
    """``heavy_imports(*argv)``: which of torch and matplotlib ``report.cli.main(argv)`` imports."""

    def run(*argv: str) -> list[str]:
        root = Path(__file__).resolve().parent.parent
        command = [sys.executable, "-c", HEAVY, *argv]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=True)
        return done.stdout.splitlines()[-1].split()

    return run
