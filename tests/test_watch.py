"""--watch: one build at the start, one per batch of changes, Ctrl-C ends it like a build; it watches
the sources, templates, examples, build.py, settings.toml and the file of the configured data source."""

import threading
import time
from pathlib import Path

import pytest

from report import watch
from report.paths import ROOT
from report.project import Project, load
from report.stages import Stage

FIXED = watch.Watched((ROOT / "templates",), (ROOT / "build.py",))


def test_each_change_rebuilds_with_the_same_arguments():
    builds = []
    changes = [{(1, str(ROOT / "templates" / "report.tex.j2"))}, {(2, str(ROOT / "experiments" / "data.py"))}]
    lines = []
    code = watch.watch(
        ["--profile", "quick"],
        watcher=lambda _: changes,
        rebuild=builds.append,
        log=lines.append,
        targets=lambda: FIXED,
    )
    assert code == 0 and builds == [["--profile", "quick", "--wait"]] * 3  # waits for a running build
    assert "changed: templates/report.tex.j2" in lines and "changed: experiments/data.py" in lines


def test_ctrl_c_while_watching_exits_130():
    def interrupted(_):
        raise KeyboardInterrupt
        yield

    assert (
        watch.watch([], watcher=interrupted, rebuild=lambda _: 0, log=lambda _: None, targets=lambda: FIXED)
        == 130
    )


def test_only_sources_templates_settings_and_the_data_file_trigger_a_rebuild():
    assert watch.relevant("experiments/data.py") and watch.relevant("templates/report.tex.j2")
    assert watch.relevant("settings.toml")
    assert not watch.relevant("experiments/__pycache__/data.cpython-311.pyc")
    assert not watch.relevant("templates/.report.tex.j2.swp")
    spec = watch.Watched((ROOT / "examples",), (ROOT / "build.py", ROOT / "settings.toml"), ROOT / "mine.npz")
    accepted = ["examples/make_npz.py", "mine.npz", "settings.toml", "build.py"]
    refused = ["examples/other.npz", "README.md", "pyproject.toml", "build/quick/report.pdf", "report/x.py"]
    assert [spec.accepts(str(ROOT / p)) for p in accepted] == [True] * len(accepted)
    assert [spec.accepts(str(ROOT / p)) for p in refused] == [False] * len(refused)


def test_the_project_s_examples_lab_and_the_builder_are_watched():
    spec = watch.watched(load())
    for directory in ("examples", "templates/sections", "lab", "report"):
        assert ROOT / directory in spec.directories, directory
    assert "examples/" in spec.describe()
    assert ROOT / "project.py" in spec.files and ROOT / "settings.toml" in spec.files


@pytest.fixture
def project(tmp_path) -> Path:
    for d in ("experiments", "templates/sections", "examples", "examples/__pycache__"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "examples" / "mine.py").write_text("def draw(n, seed):\n    pass\n")
    return tmp_path


def declared(root: Path) -> Project:
    """A project at ``root`` watching what this repository's watches."""
    return Project(
        root, (Stage.named("experiments.x"),), watch=("experiments", "templates", "examples", "build.py")
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("builtin", None),
        ("examples/mine.py:draw", "examples/mine.py"),
        ("examples.mine:draw", "examples/mine.py"),
        ("data/train.npz", "data/train.npz"),
    ],
)
def test_the_data_source_named_in_the_settings_is_watched(project, source, expected):
    settings = project / "settings.toml"
    settings.write_text(f'[data]\nsource = "{source}"\n')
    spec = watch.watched(declared(project))
    assert spec.data == (project / expected if expected else None)
    assert project / "templates" / "sections" in spec.directories
    assert not any("__pycache__" in d.parts for d in spec.directories)
    assert spec.files == (project / "build.py", project / "project.py", settings)


def test_unreadable_settings_still_watch_the_sources(project):
    settings = project / "settings.toml"
    settings.write_text("[data\n")
    assert watch.watched(declared(project)).data is None


def test_a_new_data_source_is_watched_after_the_rebuild_that_read_it(project):
    first = watch.Watched((project / "examples",), (project / "build.py",))
    second = watch.Watched((project / "examples",), (project / "build.py",), project / "data.npz")
    plans = iter([first, second])  # read at the start, then after each rebuild
    seen, lines = [], []

    def watcher(spec):
        seen.append(spec)
        return [{(2, str(project / "settings.toml"))}] if len(seen) == 1 else []

    assert (
        watch.watch([], watcher=watcher, rebuild=lambda _: 0, log=lines.append, targets=lambda: next(plans))
        == 0
    )
    assert seen == [first, second]
    assert lines[-1] == f"now watching {second.describe()}" and "and the data source" in lines[-1]


def test_replacing_the_data_file_as_an_editor_does_rebuilds(project):
    """Real inotify: the .npz is replaced by a rename (a watch on the file itself would lose it)."""
    pytest.importorskip("watchfiles")
    data = project / "examples" / "mine.npz"
    data.write_bytes(b"old")
    (project / "settings.toml").write_text('[data]\nsource = "examples/mine.npz"\n')
    builds: list[float] = []

    def rebuild(_):
        builds.append(time.monotonic())
        if len(builds) == 2:
            raise KeyboardInterrupt  # the second build (after the change) ends the test

    codes = []
    thread = threading.Thread(
        target=lambda: codes.append(
            watch.watch(
                [],
                rebuild=rebuild,
                log=lambda _: None,
                targets=lambda: watch.watched(declared(project)),
            )
        ),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 20
    while thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.3)  # until the watcher has started: change again and again
        (project / "examples" / "new.npz").write_bytes(b"new")
        (project / "examples" / "new.npz").replace(data)
    thread.join(1)
    assert codes == [130] and len(builds) == 2
