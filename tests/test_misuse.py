"""Issue 21: builds that cannot be fooled (edits during a build, orphaned workers, two profiles at once,
late validation, paths in the PDF).  Each test reproduces one case of the misuse probe."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

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


# 4. One sentence where a traceback was.


def test_a_configuration_check_is_one_sentence_naming_the_override(capsys):
    from report.cli import main

    code = main(["--profile", "quick", "--list", "--set", "sgd_implicit_reg.stopping.target_loss=0.3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        "error: --set sgd_implicit_reg.stopping.target_loss=0.3: sgd_implicit_reg: loss_levels must include"
    )
    assert "usage:" not in err and "Traceback" not in err


def test_an_overrides_error_names_the_settings_file_without_a_usage_block(toy_project, capsys):
    from report.cli import main

    (toy_project / "settings.toml").write_text('[overrides.toy]\nn = "three"\n')
    code = main(["--project", str(toy_project), "--list"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {toy_project / 'settings.toml'} [overrides.toy]: toy.n: expected int")
    assert "usage:" not in err


SLOW_SOURCE = """
import time
import numpy as np

def draw(n, seed):
    time.sleep(float(open(__file__ + ".sleep").read()))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    return X, X**2, 0.1
"""


@pytest.fixture
def data_project(tmp_path):
    """A project of this repository's double-descent stage whose ``[data]`` source is ``source.py:draw``
    (sleeping as long as ``source.py.sleep`` says) beside it."""
    (tmp_path / "project.py").write_text(
        'STAGES = ("experiments.double_descent",)\nPROFILES = ("full", "quick")\n'
        'DATA_SOURCE = "experiments.data"\n'
    )
    (tmp_path / "source.py").write_text(SLOW_SOURCE)
    (tmp_path / "source.py.sleep").write_text("0")
    (tmp_path / "settings.toml").write_text('[data]\nsource = "source.py:draw"\n')
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_data_source_is_checked_is_one_sentence(data_project, sig):
    (data_project / "source.py.sleep").write_text("5")
    command = [sys.executable, "-u", str(ROOT / "build.py"), "--project", str(data_project)]
    proc = subprocess.Popen(
        [*command, "--profile", "quick", "--verify"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if "checking the data source" in line:
            break
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig
    assert (
        err.strip() == "error: interrupted while checking the settings and the data source; nothing was built"
    )


@pytest.mark.slow
@pytest.mark.latex
def test_export_refuses_a_missing_or_hand_edited_tex(toy_project):
    assert build(toy_project, "--jobs", "1").returncode == 0
    tex = toy_project / "build" / "tex"
    report = tex / "report.tex"
    report.write_text(report.read_text().replace("Toy", "Hand-edited"))
    edited = build(toy_project, "--jobs", "1", "--export")
    assert edited.returncode == 1
    assert edited.stderr.startswith("error: cannot export: report.tex in ")
    assert "edited by hand?" in edited.stderr and "Traceback" not in edited.stderr
    assert not (toy_project / "build" / "submission.zip").exists()
    shutil.rmtree(tex)
    missing = build(toy_project, "--jobs", "1", "--export")
    assert missing.returncode == 1
    assert "cannot export: " in missing.stderr and "is missing; build it again" in missing.stderr
    again = build(toy_project, "--jobs", "1", "--export", "--force", "report")
    assert again.returncode == 0, again.stderr
    assert (toy_project / "build" / "submission.zip").is_file()


# 5. --watch neither drops a change nor leaves its build behind.


@pytest.mark.slow
def test_a_watched_build_started_while_another_holds_the_lock_waits_and_builds(toy_project):
    import threading

    from report import watch
    from report.lock import build_lock

    holding, release = threading.Event(), threading.Event()

    def other_build() -> None:
        with build_lock(toy_project / "build"):
            holding.set()
            release.wait(30)

    threading.Thread(target=other_build, daemon=True).start()
    holding.wait(10)
    threading.Timer(3.0, release.set).start()
    argv = ["--project", str(toy_project), "toy", "--jobs", "1"]
    code = watch.watch(argv, targets=lambda: watch.Watched((), ()), watcher=lambda _: [], log=lambda _: None)
    assert code == 0
    assert (toy_project / "build" / "cache" / "toy.json").is_file()  # built after the lock was released


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigterm_to_the_watcher_ends_its_build(toy_project):
    compute = toy_project / "toypkg" / "toy.py"
    compute.write_text(
        compute.read_text().replace("    return {", "    import time\n    time.sleep(30)\n    return {")
    )
    command = [
        sys.executable,
        "-u",
        str(ROOT / "build.py"),
        "--project",
        str(toy_project),
        "--watch",
        "--jobs",
        "1",
    ]
    proc = subprocess.Popen(
        [*command, "toy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    for line in proc.stdout:
        if "] toy" in line:
            break
    proc.terminate()
    assert proc.wait(30) == 130
    proc.stdout.close()
    deadline = time.monotonic() + 15
    while left := session_processes(proc.pid):
        if time.monotonic() > deadline:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
            pytest.fail("the watcher's build outlived it")
        time.sleep(0.1)
    build = toy_project / "build"
    assert not (build / "cache" / "toy.json").exists() and not list(build.glob("*/.*.tmp"))


# 8. What leaves the machine, and what the build touches.


def test_the_commit_is_read_without_writing_the_git_index(tmp_path):
    from report.wiring import git_commit

    def git(*args: str) -> str:
        env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
        env |= {"GIT_COMMITTER_EMAIL": "t@t", "PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        return subprocess.run(
            ["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        ).stdout

    (tmp_path / "a.txt").write_text("a\n")
    git("init", "-q")
    git("add", "a.txt")
    git("commit", "-qm", "a")
    head = git("rev-parse", "HEAD").strip()
    index = tmp_path / ".git" / "index"
    os.utime(tmp_path / "a.txt", ns=(1, 1))  # same content, other stat: describe --dirty rewrites the index
    before = (index.stat().st_mtime_ns, index.read_bytes())
    assert git_commit(tmp_path) == head[:12]
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
    (tmp_path / "a.txt").write_text("b\n")
    assert git_commit(tmp_path) == f"{head[:12]}-dirty"
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


# 7. A full disk names the path.


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    import errno

    from report import cache
    from report.cli import _failure

    class FullDisk:
        def __init__(self, fd: int, mode: str) -> None:
            os.close(fd)

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache.os, "fdopen", FullDisk)
    target = tmp_path / "build" / "report.pdf"
    with pytest.raises(OSError, match="No space left") as raised:
        cache.write_atomic(target, b"%PDF-")
    assert _failure(raised.value) == f"No space left on device: {target} (the last good PDF is kept)"
    assert list(target.parent.iterdir()) == []  # the temporary file went


def test_a_full_disk_while_saving_results_names_the_directory(tmp_path):
    import errno

    from report import cache

    with (
        pytest.raises(OSError, match="No space left") as raised,
        cache.atomic_directory(tmp_path / "data" / "toy"),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.filename == str(tmp_path / "data" / "toy")


@pytest.mark.latex
def test_latex_on_a_full_disk_says_so(tmp_path, monkeypatch):
    import shutil as shell

    from report import latex

    main = tmp_path / "doc.tex"
    main.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    usage = shell.disk_usage(tmp_path)
    monkeypatch.setattr(latex.shutil, "disk_usage", lambda _: usage._replace(free=1024))
    with pytest.raises(latex.LatexError, match=f"^No space left on device: {tmp_path} "):
        latex.run_latexmk(main, tmp_path)


# 6. Validation before computation.


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("double_descent.seeds=[]", "double_descent: seeds = (): expected at least one value"),
        ("double_descent.widths=[0]", "double_descent: widths = (0,): expected whole numbers >= 1"),
        (
            "double_descent.bucket_ratio=inf",
            "double_descent: bucket_ratio = inf: expected finite number(s) >= 1",
        ),
        (
            "double_descent.optimizer.tol=nan",
            "double_descent.optimizer: tol = nan: expected finite number(s) > 0",
        ),
        (
            "sgd_implicit_reg.stopping.max_epochs=-5",
            "sgd_implicit_reg.stopping: max_epochs = -5: expected a whole number >= 1",
        ),
    ],
)
def test_a_configuration_value_that_cannot_work_is_refused_before_computing(capsys, assignment, message):
    from report.cli import main

    assert main(["--profile", "quick", "--list", "--set", assignment]) == 2
    assert capsys.readouterr().err == f"error: --set {assignment}: {message}\n"


PROCESS_DEPENDENT = """
import os
import numpy as np

SALT = int.from_bytes(os.urandom(4), "little")  # the same within a process, another in the next

def draw(n, seed):
    X = np.random.default_rng(SALT + seed).normal(size=(n, 8))
    return X, X**2, 0.1
"""


@pytest.mark.slow
def test_a_data_function_that_depends_on_the_process_is_refused(tmp_path):
    from experiments.data import DataError, resolve

    (tmp_path / "salted.py").write_text(PROCESS_DEPENDENT)
    with pytest.raises(DataError, match="returned other data for seed 0 in another process"):
        resolve(f"{tmp_path / 'salted.py'}:draw")


# 8. What leaves the machine: listing runs no user code; the report names no path of this machine.


@pytest.mark.parametrize("listing", ["--list", "--dry-run"])
def test_listing_never_runs_a_python_data_source(data_project, listing, capsys):
    from report.cli import main

    source = data_project / "source.py"
    source.write_text(f"open({str(data_project / 'ran')!r}, 'w').close()\n{SLOW_SOURCE}")
    assert main(["--project", str(data_project), "--profile", "quick", listing]) == 0
    assert not (data_project / "ran").exists()
    assert "checking the data source" not in capsys.readouterr().err


def test_a_data_file_outside_the_project_is_named_by_its_file_name(tmp_path):
    import numpy as np
    import torch

    from experiments.data import resolve, summary

    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mine.npz",
        **{k: rng.normal(size=(20, 8)) for k in ("X_train", "Y_train", "X_test", "Y_test")},
    )
    source = resolve(str(ROOT / os.path.relpath(tmp_path / "mine.npz", ROOT)))  # through ..
    facts = summary(source, torch.zeros(4, 8), torch.ones(4, 8) * torch.arange(4.0)[:, None])
    assert facts["spec"] == "mine.npz" and facts["digest"] == source.digest


# 9. The cache treats --jobs 1 and --jobs 2 as one entry: so must the values.


@pytest.mark.slow
def test_the_rank_gap_does_not_depend_on_the_thread_count():
    import numpy as np
    import torch

    from experiments import double_descent
    from experiments.double_descent_train import balanced

    spec = double_descent.shards(double_descent.PROFILES["quick"])["ranks-balanced"]
    threads = torch.get_num_threads()
    try:
        gaps = []
        for n in (1, 2):
            torch.set_num_threads(n)
            gaps.append(balanced(spec)["gap"])
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(gaps[0], gaps[1])  # the same code path: the same bits (before: 13.97 and 13.85)
