"""report/wiring.py on the toy project: which tasks a report is made of, what each one's key covers."""

import json

import numpy as np
import pytest

from report import wiring
from report.project import Project, ProjectError
from report.stages import Stage
from report.wiring import ReportGraph

SHARDED = """
from dataclasses import dataclass

from lab.io import load_json, save_json


@dataclass(frozen=True)
class Config:
    names: tuple[str, ...] = ("a", "b")


PROFILES = {"quick": Config(), "full": Config()}


def shards(config):
    return {name: {"name": name} for name in config.names}


def run_shard(spec):
    return {"n": np.array(len(spec["name"]))}


def gather(config, parts):
    return {"n": sum(int(p["n"]) for p in parts.values())}


def save(results, directory):
    save_json(results, directory)


def load(directory):
    return load_json(directory)
"""


def test_the_tasks_of_one_stage_in_dependency_order(toy_declared):
    graph = ReportGraph("quick", toy_declared)
    assert [(t.name, t.kind, t.inputs) for t in graph.tasks.values()] == [
        ("toy", "data", ()),
        ("toy_fig", "figure", ("toy",)),
        ("verification", "verification", ()),
        ("supplement", "document", ("toy", "toy_fig", "verification")),
        ("report", "document", ("toy", "toy_fig", "verification")),
    ]
    assert graph.tasks["report"].after == ("supplement",)  # ordered after it, without hashing its key
    assert graph.tasks["supplement"].modules == ("report.supplement", "toypkg.toy_plot")
    assert graph.tasks["toy"].modules == ("toypkg.toy",)
    assert graph.tasks["toy_fig"].modules == ("toypkg.toy_plot", "report.figures")
    assert graph.tasks["verification"].modules == ("toypkg.toy",)  # it has check()
    assert graph.tasks["report"].modules == ("report.document", "toypkg.toy_plot")
    assert graph.root == toy_declared.root / "build"  # the first profile
    assert graph.tasks["toy"].outputs == (graph.data_dir("toy"),)


def test_the_document_s_key_covers_templates_and_the_declaration_but_not_a_missing_settings_file(
    toy_declared,
):
    files = ReportGraph("quick", toy_declared).tasks["report"].files
    root = toy_declared.root
    assert root / "templates" / "report.tex.j2" in files and root / "project.py" in files
    assert root / "settings.toml" not in files
    (root / "settings.toml").write_text('author = "Ada"\n')
    assert root / "settings.toml" in ReportGraph("quick", toy_declared).tasks["report"].files


def test_the_configuration_of_a_profile_with_overrides_is_kept_per_stem(toy_declared):
    graph = ReportGraph("full", toy_declared, overrides={"toy": {"n": 7}})
    assert graph.configs["toy"].n == 7
    assert graph.tasks["toy"].config == {"n": 7, "seed": 0}
    assert graph.tasks["toy"].seed == 0
    assert graph.root == toy_declared.root / "build" / "full"


@pytest.fixture
def sharded(toy_project) -> Project:
    (toy_project / "toypkg" / "parts.py").write_text("import numpy as np\n" + SHARDED)
    (toy_project / "toypkg" / "parts_plot.py").write_text(
        "FIGURES = {}\n\n\ndef context(results):\n    return {}\n"
    )
    return Project(toy_project, (Stage.named("toypkg.parts"),), profiles=("quick",))


def test_a_sweep_is_one_task_per_shard_gathered_by_its_stage(sharded):
    graph = ReportGraph("quick", sharded)
    assert graph.members("parts") == ["parts[a]", "parts[b]"]
    assert graph.tasks["parts"].inputs == ("parts[a]", "parts[b]")
    shard = graph.tasks["parts[a]"]
    assert (shard.kind, shard.config, shard.group) == ("shard", {"name": "a"}, "parts")
    assert shard.outputs == (graph.root / "cache" / "parts" / "a.npz",)
    graph.run(["parts"], log=lambda _: None)
    assert json.loads((graph.data_dir("parts") / "results.json").read_text()) == {"n": 2}


def test_a_shard_name_that_is_no_file_name_is_refused(sharded):
    module = sharded.root / "toypkg" / "parts.py"
    module.write_text(module.read_text().replace('("a", "b")', '("a", "b/c")'))
    with pytest.raises(ValueError, match=r"toypkg.parts.shards: name 'b/c' is not of"):
        ReportGraph("quick", sharded)


def test_a_part_survives_the_round_trip_through_its_file(tmp_path):
    arrays = {"x": np.arange(3.0), "n": np.array(4)}
    wiring.save_part(tmp_path / "p.npz", arrays)
    loaded = wiring.load_part(tmp_path / "p.npz")
    assert loaded.keys() == arrays.keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(loaded[key], value)


def test_failed_checks_are_read_from_the_last_verification(toy_declared):
    graph = ReportGraph("quick", toy_declared)
    assert wiring.failed_checks(graph) == []  # not run yet
    graph.run(["verification"], log=lambda _: None)
    assert wiring.failed_checks(graph) == []
    path = graph.tasks["verification"].outputs[0]
    bad = {"name": "b", "method": "m", "error": 1.0, "tolerance": 0.1, "passed": False}
    path.write_text(json.dumps([*json.loads(path.read_text()), bad]))
    assert wiring.failed_checks(graph) == [bad]


def test_a_profile_outside_the_declaration_is_refused(toy_declared):
    with pytest.raises(ProjectError, match=r"^no profile 'big'; the project's profiles: quick, full$"):
        ReportGraph("big", toy_declared)


def test_the_commit_outside_a_repository_is_unknown(tmp_path):
    assert wiring.git_commit(tmp_path) == "unknown"
