"""The command line, driven through ``report.cli.main([...])`` on a toy project."""

import shutil
import traceback
from pathlib import Path

import pytest

from report import cli as report_cli
from report.executors import TaskError
from report.wiring import ReportGraph


@pytest.fixture
def cli(toy_project, monkeypatch):
    """``main`` building the toy project by default instead of this repository's."""
    monkeypatch.setattr(report_cli, "ROOT", toy_project)
    return toy_project


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--figure", "nope"], "unknown figure(s) nope; valid names: toy_fig", id="unknown-figure"
        ),
        pytest.param(
            ["--force", "nope"], "unknown task(s) nope; valid names: toy, toy_fig", id="unknown-task"
        ),
        pytest.param(
            ["--figure", "toy-fig"], "unknown figure(s) toy-fig; did you mean toy_fig?", id="near-miss"
        ),
        pytest.param(["toy_fgi"], "unknown task(s) toy_fgi; did you mean toy_fig?", id="near-miss-target"),
        pytest.param(["--profile", "huge"], "invalid choice: 'huge'", id="unknown-profile"),
        pytest.param(["--verify", "--list"], "not allowed with argument", id="exclusive"),
        pytest.param(["--jobs", "0"], "expected a whole number of at least 1, got '0'", id="no-jobs"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(cli, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        report_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_figure_regenerates_only_that_figure(cli, capsys):
    assert report_cli.main(["--figure", "toy_fig"]) == 0
    out = capsys.readouterr().out
    assert "] toy\n" in out and "] toy_fig" in out and "] report" not in out
    assert (cli / "build" / "figures" / "toy_fig.pdf").exists()
    assert report_cli.main(["--figure", "toy_fig"]) == 0  # forced again, data cached
    out = capsys.readouterr().out
    assert "] toy_fig" in out and "] toy\n" not in out


def test_list_shows_states(cli, capsys, monkeypatch):
    monkeypatch.chdir(cli)
    report_cli.main(["--figure", "toy_fig"])
    capsys.readouterr()
    assert report_cli.main(["--list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["task", "kind", "state", "outputs"]
    lines = {line.split()[0]: line.split()[2] for line in rows}
    assert lines == {
        "toy": "cached",
        "toy_fig": "cached",
        "verification": "stale",
        "supplement": "stale",
        "report": "stale",
    }
    output = {line.split()[0]: line.split()[3] for line in rows}["toy_fig"]
    assert output == str(Path("build", "figures", "toy_fig.pdf"))


def test_verify_prints_a_table_and_fails_on_a_failed_check(cli, capsys, toy_stage, monkeypatch):
    assert report_cli.main(["--verify"]) == 0
    assert "toy sum" in capsys.readouterr().out
    from lab.checks import Check

    monkeypatch.setattr(toy_stage.compute_module(), "check", lambda: [Check("wrong", "m", 1.0, 0.1)])
    assert report_cli.main(["--verify"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_a_broken_template_is_reported_in_one_line(cli, capsys):
    (cli / "templates" / "sections" / "toy.tex.j2").write_text("\\VAR{toy.missing}\n")
    assert report_cli.main([]) == 1
    err = capsys.readouterr().err
    assert "toy.tex.j2:1" in err and "has no attribute 'missing'" in err
    assert len(err.splitlines()) == 1


@pytest.mark.latex
def test_a_latex_error_keeps_the_last_good_pdf(cli, capsys):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    assert report_cli.main([]) == 0
    pdf = cli / "build" / "report.pdf"
    good = pdf.read_bytes()
    section = cli / "templates" / "sections" / "toy.tex.j2"
    section.write_text(section.read_text() + "\\includegraphics{no-such-file}\n")
    assert report_cli.main([]) == 1
    err = capsys.readouterr().err
    assert "sections/toy.tex:7" in err and "no-such-file" in err and len(err.splitlines()) < 10
    assert pdf.read_bytes() == good


def test_missing_latexmk_says_how_to_install(cli, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert report_cli.main([]) == 1
    err = capsys.readouterr().err
    assert "latexmk and pdflatex were not found" in err and "./setup.sh" in err


@pytest.mark.parametrize("other", ["--list", "--verify"])
def test_force_with_a_command_that_never_computes_is_refused(cli, capsys, other):
    with pytest.raises(SystemExit) as exit_info:
        report_cli.main([other, "--force", "toy"])
    assert exit_info.value.code == 2
    assert "--force has no effect" in capsys.readouterr().err


def test_a_manifest_of_the_wrong_shape_does_not_break_list(cli, capsys):
    (cli / "build" / "cache").mkdir(parents=True)
    (cli / "build" / "cache" / "toy.json").write_text("[]")
    assert report_cli.main(["--list"]) == 0
    assert "toy " in capsys.readouterr().out


def test_missing_tex_is_reported_before_any_computation(cli, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "pdflatex" else "/usr/bin/" + name)
    assert report_cli.main([]) == 1
    captured = capsys.readouterr()
    assert "pdflatex was not found" in captured.err and captured.out == ""


def test_an_unknown_figure_in_a_template_is_one_line(cli, capsys):
    (cli / "templates" / "sections" / "toy.tex.j2").write_text('x\n\\VAR{figure_path("nope")}\n')
    assert report_cli.main([]) == 1
    err = capsys.readouterr().err
    assert "toy.tex.j2:2" in err and "no figure named 'nope'" in err and len(err.splitlines()) == 1


def test_an_error_inside_a_task_is_one_paragraph_and_debug_shows_the_traceback(cli, capsys, toy_stage):
    compute = cli / "toypkg" / "toy.py"
    compute.write_text(compute.read_text().replace("return {", "1 / 0\n    return {"))
    assert report_cli.main(["--figure", "toy_fig"]) == 1
    err = capsys.readouterr().err
    assert "task toy failed: ZeroDivisionError" in err and "toypkg/toy.py:" in err and "in run" in err
    assert "Traceback" not in err and len(err.splitlines()) <= 3
    with pytest.raises(TaskError) as raised:  # the full chained traceback, from a worker process too
        report_cli.main(["--figure", "toy_fig", "--debug"])
    shown = "".join(traceback.format_exception(raised.value))
    assert 'toypkg/toy.py", line 19, in run' in shown and "ZeroDivisionError: division by zero" in shown


def test_a_build_path_that_is_a_file_is_one_line(cli, capsys):
    (cli / "build").write_text("not a directory")
    assert report_cli.main(["--figure", "toy_fig"]) == 1
    err = capsys.readouterr().err
    assert "build" in err and len(err.splitlines()) == 1


@pytest.mark.latex
def test_a_failed_check_fails_the_build_and_names_the_check(cli, capsys, toy_stage, monkeypatch):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    compute = cli / "toypkg" / "toy.py"
    compute.write_text(compute.read_text().replace("error=0.0, tolerance=0.0", "error=1.0, tolerance=0.1"))
    assert report_cli.main([]) == 1
    err = capsys.readouterr().err
    assert "FAILED check: toy sum" in err and "1 check(s) failed" in err
    assert (cli / "build" / "report.pdf").exists()
    assert report_cli.main([]) == 1  # cached, still failing


def test_progress_counts_tasks_and_dry_run_shows_last_times(cli, capsys):
    assert report_cli.main(["--figure", "toy_fig"]) == 0
    out = capsys.readouterr().out
    assert "[1/2] toy\n" in out and "[2/2] toy_fig\n" in out
    manifest = cli / "build" / "cache" / "toy.json"
    before = manifest.stat().st_mtime_ns
    assert report_cli.main(["--dry-run", "--figure", "toy_fig", "--force", "toy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[1/2] toy (~") and lines[0].endswith(" s last time)")
    assert lines[-1] == "2 task(s) would run, 0 cached"
    assert manifest.stat().st_mtime_ns == before  # nothing ran


def test_a_positional_target_builds_only_what_it_needs_and_says_the_pdf_was_kept(cli, capsys):
    assert report_cli.main(["--profile", "quick", "toy"]) == 0
    out = capsys.readouterr().out
    assert "1 task(s) ran, 0 cached" in out
    assert not (cli / "build" / "figures" / "toy_fig.pdf").exists()
    (cli / "build" / "report.pdf").write_bytes(b"%PDF-old")
    assert report_cli.main(["--profile", "quick", "toy_fig"]) == 0
    assert "report.pdf was not updated" in capsys.readouterr().out


def test_keep_going_runs_what_does_not_depend_on_a_failure_and_lists_it(cli, capsys, toy_declared):
    present = cli / "toypkg" / "toy_plot.py"
    present.write_text(present.read_text().replace("    ax.legend()\n", "    ax.legend()\n    1 / 0\n"))
    assert (
        report_cli.main(["--figure", "toy_fig"]) == 1
    )  # without --keep-going the first failure stops the build
    assert report_cli.main(["--keep-going", "toy_fig", "verification"]) == 1
    out = capsys.readouterr().out
    assert "FAILED  toy_fig" in out and "ZeroDivisionError" in out
    assert "1 task(s) ran, 1 cached, 1 failed, 0 skipped" in out  # verification ran, toy was cached
    outcomes = ReportGraph("quick", toy_declared).run(
        ["report"], keep_going=True, log=lambda _: None
    )  # no TeX needed
    assert {o.task for o in outcomes if o.skipped} == {"supplement", "report"}


@pytest.mark.parametrize("argv", [["--list"], ["--dry-run"]], ids=["list", "dry-run"])
def test_listing_this_repository_imports_neither_torch_nor_matplotlib(heavy_imports, argv):
    assert heavy_imports("--profile", "quick", *argv) == []


@pytest.mark.parametrize("argv", [["--help"], ["--profile", "huge"], ["--jobs", "0"], ["--list", "--force"]])
def test_help_and_command_line_errors_import_neither_torch_nor_matplotlib(heavy_imports, argv):
    assert heavy_imports(*argv) == []
