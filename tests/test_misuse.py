"""Issue 21: builds that cannot be fooled (edits during a build, orphaned workers, two profiles at once,
late validation, paths in the PDF).  Each test reproduces one case of the misuse probe."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``build.py --project PROJECT ARGS`` in a fresh interpreter."""
    command = [sys.executable, str(ROOT / "build.py"), "--project", str(project), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


# 1. What a task reads must be what its key hashed.


@pytest.mark.slow
@pytest.mark.latex
def test_a_settings_edit_during_the_build_is_not_cached_under_the_old_key(toy_project):
    settings = toy_project / "settings.toml"
    settings.write_text('author = "Alice Original"\n')
    compute = toy_project / "toypkg" / "toy.py"  # the computation edits the settings, as the author did
    compute.write_text(
        compute.read_text().replace(
            "    return {",
            "    s = Path(__file__).parents[1] / 'settings.toml'\n"
            "    s.write_text(s.read_text().replace('Alice Original', 'Mallory Edited'))\n"
            "    return {",
        )
    )
    edited = build(toy_project, "--jobs", "1")
    assert edited.returncode == 1
    assert "settings.toml changed while it ran" in edited.stderr
    assert not (toy_project / "build" / "cache" / "report.json").exists()
    settings.write_text('author = "Alice Original"\n')
    again = build(toy_project, "--jobs", "1")
    assert again.returncode == 0, again.stderr
    assert "ran     report" in again.stdout


# 2. Workers end when the build process is gone, whenever that happens.


def session_processes(session: int) -> list[int]:
    """The live processes of ``session`` (Linux /proc), zombies left out."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.7], ids=["at-spawn", "0.1s-later", "0.7s-later"])
def test_a_sigkilled_build_leaves_no_worker_or_resource_tracker(toy_project, delay):
    command = [sys.executable, str(ROOT / "build.py"), "--project", str(toy_project), "--jobs", "2"]
    proc = subprocess.Popen(
        [*command, "toy", "toy_fig", "--force"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its session id is its pid: every process it starts is found by it
    )
    deadline = time.monotonic() + 30
    while len(session_processes(proc.pid)) < 3:  # the build, the tracker and a starting worker
        assert time.monotonic() < deadline and proc.poll() is None, "the pool never started"
        time.sleep(0.02)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while left := session_processes(proc.pid):
        if time.monotonic() > deadline:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            pytest.fail(f"{len(left)} process(es) outlived the killed build")
        time.sleep(0.1)


# 3. Each profile cleans only its own leftovers.


def test_the_full_builds_cleanup_leaves_the_quick_builds_files_alone(tmp_path):
    from report.lock import build_lock

    full, quick = tmp_path / "build", tmp_path / "build" / "quick"
    own = [full / ".report.pdf.x.tmp", full / "data" / ".toy.x.tmp", full / "tex" / "sections" / ".a.tmp"]
    theirs = [quick / ".tex.x.tmp", quick / "data" / ".toy.x.tmp", quick / "data" / ".toy.old"]
    for path in own + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir()
    with build_lock(full, others=[full, quick]):
        assert [p.exists() for p in own] == [False] * 3
        assert [p.exists() for p in theirs] == [True] * 3
    with build_lock(quick, others=[full, quick]):
        assert [p.exists() for p in theirs] == [False] * 3
