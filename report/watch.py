"""``build.py --watch``: rebuild whenever a source, template, example, the settings file or the data
source's file changes.

Each rebuild is a fresh ``build.py`` process, so edited modules are imported anew (a long-lived
process would keep the old code); the cache makes a rebuild run only what the change touched.
Files are watched with watchfiles (Rust notify: inotify on Linux, no polling).  Every directory is
watched one level deep (its subdirectories are listed themselves), and a single file through its
directory: an editor that saves by writing a new file and renaming it over the old one replaces the
inode a watch on the file itself would follow.  What is watched is worked out again after every
rebuild, so a new ``[data] source`` or a new template directory is picked up.
"""

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from report.paths import ROOT
from report.settings import SETTINGS_FILE, SettingsError, load

SOURCES = ("derivations", "experiments", "report", "templates", "examples")  # watched with subdirectories
SUFFIXES = (".py", ".j2", ".toml")


def relevant(path: str) -> bool:
    """A source, template or settings file (not caches, editor swap files or build outputs)."""
    return path.endswith(SUFFIXES) and "__pycache__" not in path


@dataclass(frozen=True)
class Watched:
    directories: tuple[Path, ...]  # source directories and their subdirectories: their relevant files
    files: tuple[Path, ...]  # single files: build.py and the settings file
    data: Path | None = None  # the file of the settings' [data] source (None: the built-in process)

    def singles(self) -> tuple[Path, ...]:
        return (*self.files, *([self.data] if self.data else []))

    def paths(self) -> tuple[Path, ...]:
        """What to hand the watcher: every directory, and the directory of every single file."""
        parents = [f.parent for f in self.singles() if f.parent.is_dir()]
        return tuple(dict.fromkeys([*self.directories, *parents]))

    def accepts(self, path: str) -> bool:
        changed = Path(path)
        return changed in self.singles() or (changed.parent in self.directories and relevant(path))

    def describe(self) -> str:
        tops = [_shown(d) + "/" for d in self.directories if d.parent not in self.directories]
        data = f" and the data source {_shown(self.data)}" if self.data else ""
        return ", ".join([*tops, *(_shown(f) for f in self.files)]) + data


def _shown(path: Path, root: Path = ROOT) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def data_file(source: str, root: Path = ROOT) -> Path | None:
    """The file behind a settings ``[data] source`` (an ``.npz``, a ``.py``, a module's source), or
    None for the built-in process or a module that cannot be found (the build reports that)."""
    source = source.strip()
    name = source if source.endswith(".npz") else source.rpartition(":")[0]
    if name.endswith((".npz", ".py")):
        return Path(name) if Path(name).is_absolute() else root / name
    if not name:
        return None
    local = root.joinpath(*name.split("."))
    for candidate in (local.with_suffix(".py"), local / "__init__.py"):
        if candidate.is_file():
            return candidate
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and Path(spec.origin).is_file() else None


def watched(root: Path = ROOT, settings_file: Path = SETTINGS_FILE) -> Watched:
    """The source directories (with their subdirectories), build.py, the settings file, and the data
    source the settings name."""
    directories = [
        d
        for top in SOURCES
        if (root / top).is_dir()
        for d in [root / top, *sorted((root / top).rglob("*"))]
        if d.is_dir() and "__pycache__" not in d.parts and not d.name.startswith(".")
    ]
    try:
        data = data_file(load(settings_file).data.get("source", "builtin"), root)
    except SettingsError:
        data = None  # the build says what is wrong with the settings
    return Watched(tuple(directories), (root / "build.py", settings_file), data)


def _watcher(spec: Watched) -> Iterable[set[tuple[object, str]]]:
    from watchfiles import watch

    return watch(*spec.paths(), recursive=False, watch_filter=lambda _, path: spec.accepts(path))


def _rebuild(argv: Sequence[str]) -> int:
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *argv], check=False).returncode


def watch(
    argv: Sequence[str],
    watcher: Callable[[Watched], Iterable[set[tuple[object, str]]]] = _watcher,
    rebuild: Callable[[Sequence[str]], int] = _rebuild,
    log: Callable[[str], None] = print,
    targets: Callable[[], Watched] = watched,
) -> int:
    """Build with ``argv``, then again after every change; Ctrl-C stops (exit 130) as a build would."""
    try:
        rebuild(argv)
        spec = targets()
        log(f"watching {spec.describe()} (Ctrl-C stops)")
        while True:
            for changes in watcher(spec):
                log(f"changed: {', '.join(sorted({_shown(Path(path)) for _, path in changes}))}")
                rebuild(argv)
                if (now := targets()) != spec:
                    spec = now
                    log(f"now watching {spec.describe()}")
                    break  # watch the new set
            else:
                return 0
    except KeyboardInterrupt:
        log("stopped watching")
        return 130
