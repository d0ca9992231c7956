"""The files a data source's results depend on, for the keys of the stages that draw from it.

A callable source (``module:function`` or ``path/file.py:function``) depends on more than its
module's text: on the project modules it imports, transitively, and on the data files it reads,
which its modules declare in a module-level list of paths relative to the project root::

    INPUTS = ["data/train.csv", "data/test.csv"]

:func:`source_files` gives all of these; the stages' tasks hash them (so an edited helper or CSV
reruns the experiments and ``--explain`` names it), and a Dask build ships them with the shards.
An ``.npz`` source is its archive.  Files outside the project are covered by the source's own
digest only.
"""

import ast
from pathlib import Path
from typing import Any

from report import cache


class InputError(ValueError):
    """A declared input that cannot be hashed (missing, or not a list of relative paths)."""


def declared_inputs(module: Path) -> list[str]:
    """The paths of ``module``'s top-level ``INPUTS = [...]`` (string literals), or none.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.py"
    >>> _ = path.write_text('INPUTS = ["data/train.csv"]')
    >>> declared_inputs(path)
    ['data/train.csv']
    """
    for node in ast.parse(module.read_bytes()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "INPUTS" for t in targets) and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = None
            if not (isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)):
                raise InputError(
                    f"{module.name}: INPUTS must be a list of path strings, e.g. ['data/train.csv']"
                )
            return list(value)
    return []


def source_files(data: Any, project: Path) -> tuple[Path, ...]:
    """The files inside ``project`` that a :class:`experiments.data.DataSource` depends on: an npz
    archive; a callable's module, the project modules it imports and every file their ``INPUTS`` name."""
    kind, spec = getattr(data, "kind", "builtin"), getattr(data, "spec", "")
    if kind == "npz":
        return _inside((project / spec,), project)
    if kind != "callable":
        return ()
    module = spec.rpartition(":")[0]
    if module.endswith(".py"):
        path = Path(module) if Path(module).is_absolute() else project / module
        modules = {path, *cache.source_closure(cache.imports(path), project)}
    else:
        modules = set(cache.source_closure([module], project))
    files = set(modules)
    for path in modules:
        for declared in declared_inputs(path):
            file = project / declared
            if Path(declared).is_absolute() or not file.is_file():
                raise InputError(
                    f"{path.relative_to(project) if path.is_relative_to(project) else path}: INPUTS names"
                    f" {declared!r}, which is not a file under {project}"
                )
            files.add(file)
    return _inside(files, project)


def _inside(files: Any, project: Path) -> tuple[Path, ...]:
    """``files`` that lie inside ``project``, as paths below ``project`` itself (keys hold them relative)."""
    root = project.resolve()
    return tuple(
        sorted(project / f.resolve().relative_to(root) for f in files if f.resolve().is_relative_to(root))
    )
