"""Content-hash cache keys and atomic, self-checking cache entries.

A task's key is the SHA-256 of a canonical JSON document holding its name, its
configuration, the source bytes of every project module it imports (transitively, so a
change to a helper invalidates it), extra files it reads (templates), the keys of its
inputs and the versions of the numerical libraries.

An entry is valid when its manifest ``<cache>/<task>.json`` records the current key and
every output still has the SHA-256 recorded there; anything else (missing, partial,
edited or corrupt) is stale and recomputed.  Outputs are written to temporary names and
renamed into place, and the manifest is written last, so an interrupted task never
leaves an entry that looks valid.
"""

import ast
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from report.paths import ROOT


def _module_path(name: str, root: Path) -> Path | None:
    """File of module ``name`` inside the project at ``root``, or None (libraries, non-modules)."""
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Absolute names imported by the module at ``path`` (``from a import b`` yields a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def source_closure(modules: Iterable[str], root: Path = ROOT) -> list[Path]:
    """Source files of ``modules`` and of every project module they import, transitively.

    A module is part of the project when its file lies under ``root``; packages'
    ``__init__.py`` files count too, since importing ``a.b`` runs ``a/__init__.py``.
    """
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_path(name, root)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(path))
        if "." in name:
            todo.append(name.rsplit(".", 1)[0])
    return sorted(set(seen.values()))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of the libraries whose numerics the results depend on."""
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "sympy", "numpy", "matplotlib")}


def task_key(
    name: str,
    config: Any,
    modules: Iterable[str],
    files: Iterable[Path],
    input_keys: Iterable[str],
    root: Path = ROOT,
) -> str:
    """SHA-256 over everything that determines a task's outputs."""
    sources = [*source_closure(modules, root), *files]
    document = {
        "task": name,
        "config": config,
        "sources": {str(p.relative_to(root)): file_digest(p) for p in sorted(set(sources))},
        "inputs": list(input_keys),
        "versions": versions(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def _digest_tree(path: Path) -> dict[str, str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): file_digest(p) for p in files}


def read_manifest(manifest: Path) -> dict[str, Any] | None:
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None


def is_valid(manifest: Path, key: str, outputs: Iterable[Path]) -> bool:
    """True when ``manifest`` records ``key`` and every output is present and unchanged."""
    record = read_manifest(manifest)
    if record is None or record.get("key") != key:
        return False
    recorded = record.get("digests", {})
    for out in outputs:
        if not out.exists() or recorded.get(out.name) != _digest_tree(out):
            return False
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(manifest: Path, key: str, outputs: Iterable[Path], info: dict[str, Any]) -> None:
    record = {"key": key, "digests": {out.name: _digest_tree(out) for out in outputs}, **info}
    write_atomic(manifest, json.dumps(record, indent=1, sort_keys=True).encode())


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
