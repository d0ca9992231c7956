"""``build.py --watch``: rebuild whenever a source, template, example, the declaration, the settings
file or the data source's file changes.

Each rebuild is a fresh ``build.py`` process, so edited modules are imported anew (a long-lived
process would keep the old code); the cache makes a rebuild run only what the change touched.
Files are watched with watchfiles (Rust notify: inotify on Linux, no polling).  Every directory is
watched one level deep (its subdirectories are listed themselves), and a single file through its
directory: an editor that saves by writing a new file and renaming it over the old one replaces the
inode a watch on the file itself would follow.  What is watched is the project's ``WATCH``
(:mod:`report.project`), the builder's own package, the declaration and the settings file, worked out
again after every rebuild, so a new ``[data] source`` or a new template directory is picked up.
"""

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from report.project import DECLARATION, Project
from report.settings import SettingsError, load

BUILDER = Path(__file__).resolve().parent  # the builder's own code: a change to it rebuilds too
SUFFIXES = (".py", ".j2", ".toml")


def relevant(path: str) -> bool:
    """A source, template or settings file (not caches, editor swap files or build outputs)."""
    return path.endswith(SUFFIXES) and "__pycache__" not in path


@dataclass(frozen=True)
class Watched:
    directories: tuple[Path, ...]  # source directories and their subdirectories: their relevant files
    files: tuple[Path, ...]  # single files: e.g. build.py, the declaration and the settings file
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


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def data_file(source: str, root: Path) -> Path | None:
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


def _with_subdirectories(top: Path) -> list[Path]:
    return [
        d
        for d in [top, *sorted(top.rglob("*"))]
        if d.is_dir() and "__pycache__" not in d.parts and not d.name.startswith(".")
    ]


def watched(declared: Project) -> Watched:
    """The project's watched directories (with their subdirectories) and the builder's, its watched
    files, the declaration, the settings file, and the data source the settings name."""
    paths = [declared.root / name for name in declared.watch]
    tops = [*(p for p in paths if p.is_dir()), BUILDER]
    directories = [d for top in dict.fromkeys(tops) for d in _with_subdirectories(top)]
    files = [*(p for p in paths if not p.is_dir()), declared.root / DECLARATION, declared.settings_file]
    try:
        data = data_file(load(declared.settings_file).data.get("source", "builtin"), declared.root)
    except SettingsError:
        data = None  # the build says what is wrong with the settings
    return Watched(tuple(directories), tuple(files), data)


def _watcher(spec: Watched) -> Iterable[set[tuple[object, str]]]:
    from watchfiles import watch

    return watch(*spec.paths(), recursive=False, watch_filter=lambda _, path: spec.accepts(path))


def _rebuild(argv: Sequence[str]) -> int:
    """One build in a fresh process (edited modules are imported anew), with this builder on its path;
    stopped with SIGTERM (then killed after 30 s) when the watcher is interrupted, so that no build
    outlives the watcher holding the lock."""
    path = os.pathsep.join([str(BUILDER.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "report.cli", *argv]
    child = subprocess.Popen(command, env=os.environ | {"PYTHONPATH": path})
    try:
        return child.wait()
    except BaseException:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise


def watch(
    argv: Sequence[str],
    targets: Callable[[], Watched],
    watcher: Callable[[Watched], Iterable[set[tuple[object, str]]]] = _watcher,
    rebuild: Callable[[Sequence[str]], int] = _rebuild,
    log: Callable[[str], None] = print,
) -> int:
    """Build with ``argv``, then again after every change; Ctrl-C (and SIGTERM, which the command line
    turns into one) stops (exit 130) as a build would, with the build running then.  Each build waits for the lock (``--wait``): a change saved while another build holds it is
    built once that build is done, not dropped."""
    argv = [*argv, *([] if "--wait" in argv else ["--wait"])]
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
