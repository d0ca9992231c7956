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
import dataclasses
import functools
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


def imports(path: Path) -> frozenset[str]:
    """Absolute names imported by the module at ``path`` (``from a import b`` yields a and a.b)."""
    return _imported_names(path.read_bytes())


@functools.cache  # by content: every task of a build asks for the same modules, parsing is the cost
def _imported_names(source: bytes) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


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
        todo.extend(imports(path))
        if "." in name:
            todo.append(name.rsplit(".", 1)[0])
    return sorted(set(seen.values()))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` without the docstrings of its module, classes and functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def source_digest(path: Path) -> str:
    """SHA-256 of what a source file means: a Python module's AST without docstrings,
    comments or line numbers; any other file's bytes."""
    return content_digest(path.name, path.read_bytes())


def content_digest(name: str, data: bytes) -> str:
    """:func:`source_digest` of a file called ``name`` holding ``data`` (for bytes already read)."""
    if not name.endswith(".py"):
        return hashlib.sha256(data).hexdigest()
    return _python_digest(data)


@functools.cache  # by content, as _imported_names
def _python_digest(source: bytes) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return hashlib.sha256(source).hexdigest()
    return hashlib.sha256(ast.dump(_strip_docstrings(tree)).encode()).hexdigest()


def key_config(config: Any) -> Any:
    """The part of a stage configuration that determines results: a dataclass's fields
    minus those declared with ``metadata={"affects_results": False}`` (e.g. worker counts)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return config
    neutral = {f.name for f in dataclasses.fields(config) if not f.metadata.get("affects_results", True)}
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in neutral}


@functools.cache  # one lookup per process, not one per task
def versions() -> dict[str, str]:
    """Versions of the libraries whose numerics the results depend on."""
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "sympy", "numpy", "matplotlib")}


def key_sources(modules: Iterable[str], files: Iterable[Path], root: Path = ROOT) -> list[Path]:
    """The files a task's key hashes: its modules' source closure and its extra files."""
    return [*source_closure(modules, root), *files]


def key_basis(
    name: str,
    config: Any,
    modules: Iterable[str],
    files: Iterable[Path],
    inputs: dict[str, str],
    root: Path = ROOT,
) -> dict[str, Any]:
    """Everything that determines a task's outputs, as a JSON document: the task's name, its
    configuration, a digest per source file (relative path), its inputs' keys by name, versions."""
    sources = key_sources(modules, files, root)
    return json.loads(
        json.dumps(
            {
                "task": name,
                "config": config,
                "sources": {str(p.relative_to(root)): source_digest(p) for p in sorted(set(sources))},
                "inputs": inputs,
                "versions": versions(),
            },
            default=str,
        )
    )


def stamps(paths: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """Each file's (modification time in ns, size); (0, -1) for a missing one.  Taken before the files
    are hashed, they tell whether a file was written after it was hashed, even when it was written back."""
    result = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            result[str(path)] = (0, -1)
        else:
            result[str(path)] = (st.st_mtime_ns, st.st_size)
    return result


def task_key(basis: dict[str, Any]) -> str:
    """SHA-256 of a :func:`key_basis` document."""
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def digest_tree(path: Path) -> dict[str, str]:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): file_digest(p) for p in files}


def read_manifest(manifest: Path) -> dict[str, Any] | None:
    """The record in ``manifest``, or None when it is missing or not a well-formed record
    (an object with a string key, an object of digests and a numeric runtime if any)."""
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    well_formed = (
        isinstance(record, dict)
        and isinstance(record.get("key"), str)
        and isinstance(record.get("digests"), dict)
        and isinstance(record.get("seconds", 0.0), int | float)
        and not isinstance(record.get("seconds", 0.0), bool)
    )
    return record if well_formed else None


def is_valid(manifest: Path, key: str, outputs: Iterable[Path]) -> bool:
    """True when ``manifest`` records ``key`` and every output is present and unchanged."""
    record = read_manifest(manifest)
    if record is None or record["key"] != key:
        return False
    recorded = record["digests"]
    for out in outputs:
        if not out.exists() or recorded.get(out.name) != digest_tree(out):
            return False
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        Path(tmp).chmod(0o666 & ~_umask())  # mkstemp makes owner-only files; outputs are ordinary files
        Path(tmp).replace(path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and _nameless(err):
            raise named(err, path) from err
        raise


def _nameless(err: OSError) -> bool:
    """A system error (with an errno) that names no file."""
    return err.errno is not None and err.filename is None


def named(err: OSError, path: Path) -> OSError:
    """``err`` naming ``path`` (a full disk's ``write`` names no file), so that the message says where.

    >>> str(named(OSError(28, "No space left on device"), Path("build/report.pdf")))
    "[Errno 28] No space left on device: 'build/report.pdf'"
    """
    return type(err)(err.errno, err.strerror, str(path))


def write_manifest(manifest: Path, key: str, outputs: Iterable[Path], info: dict[str, Any]) -> None:
    record = {"key": key, "digests": {out.name: digest_tree(out) for out in outputs}, **info}
    write_atomic(manifest, json.dumps(record, indent=1, sort_keys=True).encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove(path: Path) -> None:
    """Delete ``path`` whether it is a file, a link or a directory tree; absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``final`` only if the block succeeds.

    Whatever stands at ``final`` (a directory, or a file put there by hand) and any
    leftover ``.old`` from an interrupted replacement are removed.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        try:
            yield tmp
        except OSError as err:  # e.g. a full disk while the block saved into tmp: name the directory
            if _nameless(err):
                raise named(err, final) from err
            raise
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes owner-only directories
        if final.exists() or final.is_symlink():
            old = final.with_name(f".{final.name}.old")
            remove(old)
            final.rename(old)
            tmp.rename(final)
            remove(old)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
