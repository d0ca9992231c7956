"""--watch: one build at the start, one per batch of changes, Ctrl-C ends it like a build."""

from report import watch
from report.paths import ROOT


def test_each_change_rebuilds_with_the_same_arguments():
    builds = []
    changes = [{(1, str(ROOT / "templates" / "report.tex.j2"))}, {(2, str(ROOT / "experiments" / "data.py"))}]
    lines = []
    code = watch.watch(
        ["--profile", "quick"], watcher=lambda _: changes, rebuild=builds.append, log=lines.append
    )
    assert code == 0 and builds == [["--profile", "quick"]] * 3
    assert "changed: templates/report.tex.j2" in lines and "changed: experiments/data.py" in lines


def test_ctrl_c_while_watching_exits_130():
    def interrupted(_):
        raise KeyboardInterrupt
        yield

    assert watch.watch([], watcher=interrupted, rebuild=lambda _: 0, log=lambda _: None) == 130


def test_only_sources_templates_and_settings_trigger_a_rebuild():
    assert watch.relevant("experiments/data.py") and watch.relevant("templates/report.tex.j2")
    assert watch.relevant("settings.toml")
    assert not watch.relevant("experiments/__pycache__/data.cpython-311.pyc")
    assert not watch.relevant("templates/.report.tex.j2.swp")
