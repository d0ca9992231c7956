"""Builds that survive misuse: concurrent builds, signals, interrupted LaTeX (subprocesses, slow)."""

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture
def start(toy_project):
    """Start ``build.py ARGS`` on the toy project in a subprocess; the toy computation takes ~3 s."""
    compute = toy_project / "toypkg" / "toy.py"
    compute.write_text(
        compute.read_text().replace("    return {", "    import time\n    time.sleep(3)\n    return {")
    )
    procs = []

    def run(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(ROOT / "build.py"), "--project", str(toy_project), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # also closes the pipes


def wait_for_line(proc: subprocess.Popen, text: str) -> None:
    for line in proc.stdout:
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed")


def test_a_second_build_fails_fast_or_waits(start, toy_project):
    first = start("--figure", "toy_fig")
    wait_for_line(first, "] toy")
    second = start("--figure", "toy_fig")
    out, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert f"a build is already running in {toy_project / 'build'} (pid {first.pid})" in err
    waiting = start("--figure", "toy_fig", "--wait")
    assert first.wait(timeout=60) == 0
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "] toy\n" not in out  # the first build's result, cached


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_build_cleanly(start, toy_project, sig):
    proc = start("--figure", "toy_fig")
    wait_for_line(proc, "] toy")
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig
    assert "interrupted" in err
    build = toy_project / "build"
    assert not (build / "cache" / "toy.json").exists()
    assert not list(build.glob("*/.*.tmp"))
    again = start("--figure", "toy_fig")
    _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err


@pytest.mark.latex
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_build_interrupted_during_latex_leaves_later_builds_working(start, toy_project, sig):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk not installed")
    proc = start()
    wait_for_line(proc, "] report")
    time.sleep(1.0)  # inside latexmk
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    again = start()
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert (toy_project / "build" / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert not list((toy_project / "build").glob(".*.tmp"))
