"""The project a build typesets: read from the ``project.py`` declaration at the project's root.

The builder knows no assignment.  A project directory holds ``project.py``, a module of plain
constants (like Sphinx's ``conf.py``) that imports nothing, so reading it costs nothing and starts
neither torch nor matplotlib:

``STAGES``       the stages' compute modules in the report's order, e.g. ``"experiments.double_descent"``;
                 the rest follows from the stem (:meth:`report.stages.Stage.named`)
``PROFILES``     the configuration sizes every compute module offers; the first is the default and
                 builds into ``build/``, any other into ``build/<profile>/``
``TITLE``, ``COURSE``  the title page when ``settings.toml`` names none
``NOTATION``     optional ``"module:NAME"`` of the symbol table (rows with ``symbol``, ``meaning``,
                 ``sections``: the stems that use the symbol)
``DATA_SOURCE``  optional module of the data-source hook: ``resolve(text, root) -> source``,
                 ``check_config(source, config, stem)`` and the ``DataError`` both raise; it reads
                 ``settings.toml``'s ``[data] source`` and reaches every stage with a ``data`` field
``ANALYSES``     optional derived analyses' modules, e.g. ``"experiments.threshold_diagnosis"``: each
                 computes on one stage's results and is cached apart from it (the contract is in
                 :mod:`report.stages`)
``WATCH``        what ``--watch`` watches besides the builder, the declaration and the settings file:
                 directories (with their subdirectories) and single files, relative to the root

>>> project = from_namespace(Path("/p"), {"STAGES": ("pkg.a", "pkg.b")})
>>> [stage.present for stage in project.stages], project.build_dir("quick")
(['pkg.a_plot', 'pkg.b_plot'], PosixPath('/p/build/quick'))
"""

import runpy
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from report.paths import ROOT
from report.stages import Analysis, Stage

DECLARATION = "project.py"


class ProjectError(Exception):
    """The project's declaration or its stages cannot be built; the message is one line."""


@dataclass(frozen=True)
class Project:
    root: Path
    stages: tuple[Stage, ...]
    profiles: tuple[str, ...] = ("full", "quick")
    title: str = ""
    course: str = ""
    notation: str | None = None  # "module:NAME"
    data_source: str | None = None  # module name of the data-source hook
    watch: tuple[str, ...] = ()
    analyses: tuple[Analysis, ...] = ()

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.toml"

    def build_dir(self, profile: str) -> Path:
        """The output root of ``profile``: ``build/`` for the first profile, ``build/<profile>/`` else."""
        return self.root / "build" if profile == self.profiles[0] else self.root / "build" / profile

    def symbols(self) -> tuple[Any, ...]:
        """The declared notation table (empty without one)."""
        if self.notation is None:
            return ()
        module, _, name = self.notation.partition(":")
        return tuple(getattr(import_module(module), name))

    def data_hook(self) -> Any:
        """The data-source hook module, or None when the project has no data source."""
        return None if self.data_source is None else import_module(self.data_source)


_KINDS: dict[str, type] = {
    "STAGES": tuple,
    "PROFILES": tuple,
    "TITLE": str,
    "COURSE": str,
    "NOTATION": str,
    "DATA_SOURCE": str,
    "WATCH": tuple,
    "ANALYSES": tuple,
}


def from_namespace(root: Path, names: Mapping[str, Any], source: str = DECLARATION) -> Project:
    """The project that the constants ``names`` (a declaration's globals) declare."""
    declared = {k: v for k, v in names.items() if k.isupper()}
    for key, value in declared.items():
        kind = _KINDS.get(key)
        if kind is None:
            raise ProjectError(f"{source}: unknown name {key}; the names are {', '.join(_KINDS)}")
        if not isinstance(value, kind) or (kind is tuple and not all(isinstance(v, str) for v in value)):
            wanted = "a tuple of strings" if kind is tuple else "a string"
            raise ProjectError(f"{source}: {key} must be {wanted}, not {value!r}")
    if not declared.get("STAGES"):
        raise ProjectError(f"{source}: STAGES names no stage")
    if not declared.get("PROFILES", ("full",)):
        raise ProjectError(f"{source}: PROFILES names no profile")
    optional = {"PROFILES": "profiles", "TITLE": "title", "COURSE": "course", "NOTATION": "notation"}
    optional |= {"DATA_SOURCE": "data_source", "WATCH": "watch"}
    return Project(
        root=root,
        stages=tuple(Stage.named(module) for module in declared["STAGES"]),
        analyses=tuple(Analysis.named(module) for module in declared.get("ANALYSES", ())),
        **{field: declared[key] for key, field in optional.items() if key in declared},
    )


def load(root: Path = ROOT) -> Project:
    """The project declared in ``root/project.py`` (default: the one this builder is shipped with); its
    modules become importable (``root`` on the path)."""
    root = root.resolve()
    path = root / DECLARATION
    if not path.is_file():
        raise ProjectError(f"{path}: no project declaration (a {DECLARATION} naming STAGES)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return from_namespace(root, runpy.run_path(str(path)), source=str(path))
