"""A callable data source's key covers the project modules it imports and the files it declares in
``INPUTS``, and ``--explain`` names them when they change."""

import textwrap
from pathlib import Path

import pytest

from experiments.data import DataSource
from report.explain import reason
from report.inputs import InputError, declared_inputs, source_files
from report.project import Project
from report.stages import Stage
from report.wiring import ReportGraph

SOURCE = """
    import numpy as np

    from toypkg.helper import SCALE

    INPUTS = ["inputs/train.csv"]


    def draw(n, seed):
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, 8)) * SCALE, rng.standard_normal((n, 8)), 0.25
"""

DRAWN = """
    from dataclasses import dataclass
    from typing import Any

    from lab.io import load_json, save_json


    @dataclass(frozen=True)
    class Config:
        n: int = 2
        data: Any = None  # the data source; part of the key


    PROFILES = {"full": Config(), "quick": Config()}


    def run(config):
        return {"values": [config.n]}


    def save(results, directory):
        save_json(results, directory)


    def load(directory):
        return load_json(directory)
"""


@pytest.fixture
def drawn(toy_project) -> Stage:
    """A stage drawing from ``toypkg/source.py:draw``, which imports a helper and reads a CSV."""
    (toy_project / "toypkg" / "source.py").write_text(textwrap.dedent(SOURCE).lstrip())
    (toy_project / "toypkg" / "drawn.py").write_text(textwrap.dedent(DRAWN).lstrip())
    (toy_project / "inputs").mkdir()
    (toy_project / "inputs" / "train.csv").write_text("x,y\n1,2\n")
    return Stage("drawn", "toypkg.drawn", "toypkg.toy_plot")


def make_graph(project: Path, stage: Stage, spec: str = "toypkg/source.py:draw") -> ReportGraph:
    return ReportGraph(
        "quick",
        Project(project, (stage,), data_source="experiments.data"),
        out=project / "build",
        data=DataSource("callable", spec, "digest of the module's text"),
    )


@pytest.mark.parametrize("spec", ["toypkg/source.py:draw", "toypkg.source:draw"], ids=["file", "module"])
def test_the_source_files_are_its_module_its_project_imports_and_its_inputs(toy_project, drawn, spec):
    files = source_files(DataSource("callable", spec, ""), toy_project)
    relative = [str(f.relative_to(toy_project)) for f in files]
    assert set(relative) >= {"toypkg/source.py", "toypkg/helper.py", "inputs/train.csv"}
    assert "numpy" not in " ".join(relative)  # libraries are versions, not files


def test_editing_the_declared_csv_or_the_imported_helper_reruns_the_stage_and_explain_names_it(
    toy_project, drawn
):
    make_graph(toy_project, drawn).run(["drawn"], log=lambda _: None)
    assert make_graph(toy_project, drawn).is_cached("drawn")
    (toy_project / "inputs" / "train.csv").write_text("x,y\n1,3\n")
    graph = make_graph(toy_project, drawn)
    assert reason(graph, "drawn") == "source changed: inputs/train.csv"
    graph.run(["drawn"], log=lambda _: None)
    (toy_project / "toypkg" / "helper.py").write_text("SCALE = 5\n")
    assert reason(make_graph(toy_project, drawn), "drawn") == "source changed: toypkg.helper"


def test_a_builtin_source_adds_no_files(toy_project, drawn):
    assert source_files(DataSource(), toy_project) == ()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('INPUTS = ["inputs/missing.csv"]', r"INPUTS names 'inputs/missing.csv', which is not a file"),
        ("INPUTS = 'inputs/train.csv'", r"INPUTS must be a list of path strings"),
    ],
    ids=["missing-file", "not-a-list"],
)
def test_a_bad_inputs_declaration_is_one_error_naming_the_module(toy_project, drawn, text, error):
    source = toy_project / "toypkg" / "source.py"
    source.write_text(source.read_text().replace('INPUTS = ["inputs/train.csv"]', text))
    with pytest.raises(InputError, match=error):
        source_files(DataSource("callable", "toypkg/source.py:draw", ""), toy_project)


def test_a_module_without_inputs_declares_none(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("X = 1\n")
    assert declared_inputs(module) == []
