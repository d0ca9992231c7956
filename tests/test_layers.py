"""The layers cannot leak: the science never imports the builder, and no compute task's cache key
covers formatting, figure style, notation, progress display, templates or the builder (issue 18).

Otherwise a change of number formatting would list every trained shard as stale.
"""

import ast
import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from report.paths import ROOT
from report.project import load
from report.wiring import ReportGraph

DECLARED = load()

COMPUTE_KINDS = {"shard", "data", "analysis", "verification"}
# Presentation and builder code: appending a function to any of these may restale figures and the
# report, never a computation.
PRESENTATION = (
    "lab/fmt.py",
    "lab/style.py",
    "derivations/notation.py",
    "report/progress.py",
    "report/render.py",
    "report/document.py",
    "report/figures.py",
    "experiments/data_plot.py",
    "experiments/double_descent_plot.py",
    "experiments/double_descent_stats.py",
    "experiments/sgd_implicit_reg_stats.py",
    *(f"{stage.present.replace('.', '/')}.py" for stage in DECLARED.stages),
)
TEMPLATE = "templates/sections/double_descent.tex.j2"


def imported(path: Path) -> set[str]:
    """Top-level package names that the module at ``path`` imports, anywhere in its AST."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("derivations", {"report"}),
        ("experiments", {"report"}),
        ("lab", {"report", "derivations", "experiments"}),
    ],
)
def test_science_never_imports_the_builder(package, forbidden):
    leaks = {
        str(path.relative_to(ROOT)): sorted(imported(path) & forbidden)
        for path in sorted((ROOT / package).glob("*.py"))
        if imported(path) & forbidden
    }
    assert leaks == {}


@pytest.fixture(scope="module")
def edited_copy(tmp_path_factory) -> Path:
    """The project's sources with a function appended to every presentation module and a template."""
    copy = tmp_path_factory.mktemp("project")
    for package in ("lab", "derivations", "experiments", "report", "templates"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in PRESENTATION:
        with (copy / name).open("a") as f:
            f.write("\n\ndef appended_by_a_test() -> int:\n    return 1\n")
    with (copy / TEMPLATE).open("a") as f:
        f.write("\\BLOCK{macro appended_by_a_test()}x\\BLOCK{endmacro}\n")
    return copy


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_presentation_edits_leave_every_computation_cached(profile, edited_copy, tmp_path):
    before = ReportGraph(profile, DECLARED, out=tmp_path / "before")
    after = ReportGraph(profile, dataclasses.replace(DECLARED, root=edited_copy), out=tmp_path / "after")
    compute = [name for name, task in before.tasks.items() if task.kind in COMPUTE_KINDS]
    assert {before.tasks[n].kind for n in compute} == COMPUTE_KINDS  # shards, stages and the checks
    assert [n for n in compute if before.key(n) != after.key(n)] == []
    # the edits are seen where they belong: every figure and the report are stale
    presented = [name for name, task in before.tasks.items() if task.kind not in COMPUTE_KINDS]
    assert [n for n in presented if before.key(n) == after.key(n)] == []


COMPUTE_MODULES = [
    "derivations.autodiff",
    "derivations.mlp_backprop",
    "derivations.initialization",
    "experiments.double_descent",
    "experiments.sgd_implicit_reg",
    "experiments.data",
    "experiments.threshold_diagnosis",  # an analysis: listing reads its STAGE
]


@pytest.mark.parametrize("module", COMPUTE_MODULES)
def test_compute_modules_import_without_torch_or_matplotlib(module):
    # --list and --dry-run import every stage's Config, PROFILES and shards; torch (seconds) and
    # matplotlib enter only where a task runs: inside run, run_shard, gather or check
    code = f"import sys, {module}; print(sorted({{'torch', 'matplotlib'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
