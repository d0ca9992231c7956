"""The result store: every task's outputs kept under its cache key, several per task, shareable.

The build directory holds one result per task (the current one); the store keeps each result by
its key, so switching the data source, dropping an override or reverting a code change finds the
earlier result here and copies it back instead of computing it again::

    <store>/<key[:2]>/<key>/entry.json     the task's manifest record: key, digests, basis, seconds, ...
    <store>/<key[:2]>/<key>/<output name>  its outputs (a file or a directory), as named in the build

An entry appears by one rename of a complete directory, so builds sharing a store (a shared file
system, CI runners) never see half an entry; when two builds store the same key, the first rename
wins and the other copy is dropped, which loses nothing (same key, same results).  An entry is used
only when its record's basis hashes to its key and every output has the digest the record holds
(:meth:`Store.check`); anything else is ignored, as if absent.  A whole set of entries travels as
one zip (:meth:`Store.export`, :meth:`Store.import_archive`), checked the same way on import.

Entries are pruned by the time they were last used (stored, found or restored) or by the store's
total size (least recently used first), never the entries the build directory currently holds.
"""

import json
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import cache

ENTRY = "entry.json"


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    task: str
    size: int  # bytes
    used: float  # when it was last stored, found or restored (seconds since the epoch)


class Store:
    """The entries under ``directory`` (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / key

    def record(self, key: str) -> dict[str, Any] | None:
        """The record of a usable entry for ``key`` (see :meth:`check`), or None."""
        record = cache.read_manifest(self.path(key) / ENTRY)
        return record if record is not None and self.check(self.path(key), key, record) is None else None

    @staticmethod
    def check(entry: Path, key: str, record: dict[str, Any] | None) -> str | None:
        """Why the entry at ``entry`` cannot be used for ``key``, or None when it can."""
        if record is None:
            return "no readable entry.json"
        if record["key"] != key or not isinstance(record.get("basis"), dict):
            return "its record is for another key"
        if cache.task_key(record["basis"]) != key:
            return "its recorded basis does not hash to its key"
        for name, digests in record["digests"].items():
            if not (entry / name).exists() or cache.digest_tree(entry / name) != digests:
                return f"its output {name} differs from the recorded digests"
        return None

    def put(self, key: str, outputs: Iterable[Path], record: dict[str, Any]) -> None:
        """Keep copies of ``outputs`` and their ``record`` under ``key`` (unless already kept)."""
        final = self.path(key)
        if self.record(key) is not None:
            self.touch(key)
            return
        if final.exists():  # an unusable entry (edited, truncated): replaced
            self._remove(final)
        with self._staging() as tmp:
            for out in outputs:
                _copy(out, tmp / out.name)
            (tmp / ENTRY).write_text(json.dumps(record, indent=1, sort_keys=True))
            self._publish(tmp, final)

    def restore(self, key: str, outputs: Iterable[Path]) -> dict[str, Any] | None:
        """Copy the entry of ``key`` over ``outputs`` (each replaced atomically); its record, or None
        (nothing touched) when the store has no usable entry."""
        record = self.record(key)
        if record is None:
            return None
        for out in outputs:
            if out.is_dir() or (self.path(key) / out.name).is_dir():
                with cache.atomic_directory(out) as tmp:
                    shutil.copytree(self.path(key) / out.name, tmp, dirs_exist_ok=True)
            else:
                cache.write_atomic(out, (self.path(key) / out.name).read_bytes())
        self.touch(key)
        return record

    def touch(self, key: str) -> None:
        try:
            os.utime(self.path(key) / ENTRY)
        except OSError:  # pruned meanwhile by another build: nothing to mark
            pass

    def entries(self) -> Iterator[Entry]:
        for entry in sorted(self.directory.glob(f"??/*/{ENTRY}")):
            record = cache.read_manifest(entry)
            files = [p for p in entry.parent.rglob("*") if p.is_file()]
            yield Entry(
                entry.parent.name,
                entry.parent,
                str(record.get("basis", {}).get("task", "?")) if record else "?",
                sum(p.stat().st_size for p in files),
                entry.stat().st_mtime,
            )

    def prune(
        self,
        older_than: float | None = None,
        max_bytes: int | None = None,
        keep: Iterable[str] = (),
        dry_run: bool = False,
    ) -> list[Entry]:
        """Remove the entries unused for ``older_than`` seconds, then the least recently used ones
        until the store holds at most ``max_bytes``; never those in ``keep``.  The removed entries
        (with ``dry_run``: those that would be), oldest first."""
        kept = set(keep)
        entries = sorted(self.entries(), key=lambda e: e.used)
        now = time.time()
        doomed = [e for e in entries if older_than is not None and now - e.used > older_than]
        if max_bytes is not None:
            total = sum(e.size for e in entries if e not in doomed)
            for entry in entries:
                if total <= max_bytes:
                    break
                if entry not in doomed and entry.key not in kept:
                    doomed.append(entry)
                    total -= entry.size
        doomed = sorted((e for e in doomed if e.key not in kept), key=lambda e: e.used)
        if not dry_run:
            for entry in doomed:
                self._remove(entry.path)
        return doomed

    def export(self, keys: Iterable[str], archive: Path) -> int:
        """Write the usable entries of ``keys`` into the zip ``archive``; how many."""
        count = 0
        buffer = archive.with_name(f".{archive.name}.tmp")
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
            for key in sorted(set(keys)):
                if self.record(key) is None:
                    continue
                for path in sorted(p for p in self.path(key).rglob("*") if p.is_file()):
                    out.write(path, f"{key}/{path.relative_to(self.path(key))}")
                count += 1
        buffer.replace(archive)
        return count

    def import_archive(self, archive: Path) -> tuple[int, list[str]]:
        """Add the entries of the zip ``archive``, each checked against its key first: how many were
        added (or already here) and why the others were refused."""
        added, refused = 0, []
        with zipfile.ZipFile(archive) as source:
            keys = sorted({name.split("/", 1)[0] for name in source.namelist() if "/" in name})
            for key in keys:
                if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
                    refused.append(f"{key[:20]}: not a cache key")
                    continue
                with self._staging() as tmp:
                    for name in source.namelist():
                        if name.startswith(f"{key}/") and not name.endswith("/"):
                            target = tmp / name.removeprefix(f"{key}/")
                            if not target.resolve().is_relative_to(tmp.resolve()):
                                continue  # a path leaving the entry: never written
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(source.read(name))
                    record = cache.read_manifest(tmp / ENTRY)
                    if problem := self.check(tmp, key, record):
                        refused.append(f"{key[:12]}: {problem}")
                        continue
                    self._publish(tmp, self.path(key))
                    added += 1
        return added, refused

    def _staging(self) -> "_Staging":
        """A temporary directory in the store (so that publishing it is one rename)."""
        staging = self.directory / "tmp"
        staging.mkdir(parents=True, exist_ok=True)
        return _Staging(staging)

    def _publish(self, tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(final)
        except OSError:  # another build published the same key first
            self.touch(final.name)

    def _remove(self, entry: Path) -> None:
        """Remove an entry: renamed away first, so a reader sees all of it or nothing."""
        doomed = self.directory / "tmp" / f"pruned-{entry.name}-{os.getpid()}"
        doomed.parent.mkdir(parents=True, exist_ok=True)
        try:
            entry.rename(doomed)
        except OSError:  # already removed by another build
            return
        shutil.rmtree(doomed, ignore_errors=True)


class _Staging:
    """``with`` a fresh directory under ``parent``, removed at the end whatever happened."""

    def __init__(self, parent: Path) -> None:
        self.path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{os.getpid()}-"))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def parse_age(text: str) -> float:
    """Seconds in ``30d``, ``12h`` or ``90m``.

    >>> parse_age("2d")
    172800.0
    """
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0}
    number, unit = text[:-1], text[-1:].lower()
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"expected an age such as 30d, 12h or 90m, got {text!r}")
    return float(number) * units[unit]


def parse_size(text: str) -> int:
    """Bytes in ``500M``, ``2G`` or ``100K`` (binary units).

    >>> parse_size("2G")
    2147483648
    """
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    number, unit = text.rstrip("bB")[:-1], text.rstrip("bB")[-1:].lower()
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"expected a size such as 500M, 2G or 100K, got {text!r}")
    return int(float(number) * units[unit])
