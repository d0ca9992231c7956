"""``build.py --watch``: rebuild whenever a source, template or the settings file changes.

Each rebuild is a fresh ``build.py`` process, so edited modules are imported anew (a long-lived
process would keep the old code); the cache makes a rebuild run only what the change touched.
Files are watched with watchfiles (Rust notify: inotify on Linux, no polling).
"""

import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from report.paths import ROOT, TEMPLATES

WATCHED = (ROOT / "derivations", ROOT / "experiments", ROOT / "report", TEMPLATES, ROOT / "build.py")
SUFFIXES = (".py", ".j2", ".toml")


def relevant(path: str) -> bool:
    """A source, template or settings file (not caches, editor swap files or build outputs)."""
    return path.endswith(SUFFIXES) and "__pycache__" not in path


def _watcher(paths: Sequence[Path]) -> Iterable[set[tuple[object, str]]]:
    from watchfiles import watch

    settings = ROOT / "settings.toml"
    return watch(*paths, *([settings] if settings.exists() else []), watch_filter=lambda _, p: relevant(p))


def _rebuild(argv: Sequence[str]) -> int:
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *argv], check=False).returncode


def watch(
    argv: Sequence[str],
    watcher: Callable[[Sequence[Path]], Iterable[set[tuple[object, str]]]] = _watcher,
    rebuild: Callable[[Sequence[str]], int] = _rebuild,
    log: Callable[[str], None] = print,
) -> int:
    """Build with ``argv``, then again after every change; Ctrl-C stops (exit 130) as a build would."""
    try:
        rebuild(argv)
        log(
            "watching derivations/, experiments/, report/, templates/, build.py and settings.toml (Ctrl-C stops)"
        )
        for changes in watcher(WATCHED):
            names = sorted({str(Path(path).relative_to(ROOT)) for _, path in changes})
            log(f"changed: {', '.join(names)}")
            rebuild(argv)
    except KeyboardInterrupt:
        log("stopped watching")
        return 130
    return 0
