"""Issue 21: builds that cannot be fooled (edits during a build, orphaned workers, two profiles at once,
late validation, paths in the PDF).  Each test reproduces one case of the misuse probe."""

import subprocess
import sys
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
