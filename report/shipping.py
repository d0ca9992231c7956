"""The build's code on a Dask cluster: the exact sources its keys hashed, shipped to every worker.

A scheduler and workers started from any directory, with only the project's dependencies
installed (no checkout, no ``PYTHONPATH``), run a build's shards because the build sends them
its code:

* :func:`pack` zips the files a shard's key hashed, each checked against the digest in the key
  (a file edited since the build read it is refused, never computed with), plus
  :mod:`report.remote`, which a shard's action refers to;
* :class:`ShippedCode`, a ``WorkerPlugin`` named after the archive's digest, unpacks it into the
  worker's local directory (also on workers that join later: the scheduler hands them its plugins);
* :func:`run`, the function of every shard's task, makes that directory the only place the
  project's packages are imported from (modules imported from anywhere else, such as another
  build's archive or a checkout, are dropped first and refused after the job), unpickles the
  job's action and calls it.

The scheduler must unpickle every task without the project, so this module is pickled *by
value* (:class:`ByValue`): its worker-side code uses only the standard library and
``distributed``, and a job's action travels as bytes that only a worker, inside the archive,
unpickles.
"""

import hashlib
import importlib
import io
import shutil
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

ENTRY = ("report/__init__.py", "report/remote.py")  # in every archive: what a shard's action refers to
CODE_DIR = "report-code"  # in a worker's local directory: one subdirectory per archive digest
PROGRESS_TOPIC = "report-progress"  # the Dask event topic of progress messages (report.executors subscribes)
_PROJECT = Path(__file__).resolve().parent.parent  # where ENTRY is read from (tests build other projects)


class CodeChanged(Exception):
    """A source file differs from the version whose digest the task's key holds."""


def pack(project: Path, sources: Iterable[tuple[str, str]]) -> tuple[bytes, str]:
    """A zip of the files ``sources`` names (``(path in project, digest the key hashed)``) and of
    :data:`ENTRY`, with the SHA-256 of its contents; :class:`CodeChanged` when a file was edited
    since its digest was taken."""
    from report.cache import content_digest

    files: dict[str, bytes] = {}
    for rel, digest in sources:
        data = (project / rel).read_bytes()
        if content_digest(rel, data) != digest:
            raise CodeChanged(f"{rel} changed since the build computed the keys; build again")
        files[rel] = data
    for rel in ENTRY:
        files.setdefault(rel, (_PROJECT / rel).read_bytes())
    buffer, digest = io.BytesIO(), hashlib.sha256()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(files):
            archive.writestr(zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0)), files[rel])
            digest.update(f"{rel}\0{hashlib.sha256(files[rel]).hexdigest()}\0".encode())
    return buffer.getvalue(), digest.hexdigest()


class ShippedCode(WorkerPlugin):
    """One code archive, unpacked on every worker of the cluster, present and future."""

    def __init__(self, archive: bytes, digest: str) -> None:
        self.archive, self.digest = archive, digest
        self.name = f"report-code-{digest[:16]}"  # the plugin's name on the scheduler
        self.idempotent = True  # registered again by another build of the same code: kept as it is
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            self.packages = sorted({n.split("/")[0] for n in z.namelist() if "/" in n})

    def setup(self, worker: Any) -> None:
        base = Path(worker.local_directory) / CODE_DIR
        base.mkdir(parents=True, exist_ok=True)
        self.root = (base / self.digest).resolve()
        if not self.root.is_dir():  # unpacked beside it, then renamed: never seen half-written
            tmp = Path(tempfile.mkdtemp(dir=base, prefix=".unpack-"))
            with zipfile.ZipFile(io.BytesIO(self.archive)) as z:
                z.extractall(tmp)
            try:
                tmp.rename(self.root)
            except OSError:  # another plugin of the same digest was first
                shutil.rmtree(tmp, ignore_errors=True)
        # One lock per worker process, shared by the plugins of every build: a process imports one
        # archive's code at a time.  Kept on the worker because this class is re-created from bytes.
        self.lock = worker.__dict__.setdefault("_report_code_lock", threading.Lock())

    def activate(self) -> None:
        """Make this archive the only place the project's packages are imported from."""
        others = str(self.root.parent)
        sys.path[:] = [str(self.root), *(p for p in sys.path if not p.startswith(others))]
        for name, module in list(sys.modules.items()):
            if name.partition(".")[0] in self.packages and not self.owns(module):
                del sys.modules[name]
        importlib.invalidate_caches()

    def owns(self, module: ModuleType) -> bool:
        where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
        return where is not None and Path(where).resolve().is_relative_to(self.root)

    def strays(self) -> list[str]:
        """Modules of the project's packages loaded from elsewhere than this archive."""
        return sorted(
            name
            for name, module in list(sys.modules.items())
            if name.partition(".")[0] in self.packages and not self.owns(module)
        )


def run(plugin: str, build: str, task: str, payload: bytes) -> tuple[str, Any, Any]:
    """Task ``task`` of build ``build`` (its client's id) on a worker: the pickled action ``payload``
    in the code of archive ``plugin``, its progress sent to the build as events of
    :data:`PROGRESS_TOPIC` marked with ``build``; what :func:`report.remote.execute` returns."""
    worker = get_worker()
    code = worker.plugins[plugin]
    with code.lock:
        code.activate()
        from report.remote import execute  # the archive's copy

        outcome = execute(payload, code.root, task, partial(_send, worker, build))
        if strays := code.strays():
            return "failed", f"imported code from outside the build's archive: {', '.join(strays)}", ""
    return outcome


def _send(worker: Any, build: str, message: dict[str, Any]) -> None:
    """Send a progress message to every client of the scheduler; the build's own keeps its own:
    a cancelled task still runs to its end, and another build may have tasks of the same name."""
    worker.log_event(PROGRESS_TOPIC, message | {"build": build})


class ByValue:
    """``function`` pickled as cloudpickle's bytes of its code, so that unpickling it needs
    only cloudpickle: Dask pickles a task graph by reference otherwise, and the scheduler, which
    has no project, could not load it."""

    def __init__(self, function: Callable[..., Any]) -> None:
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __reduce__(self) -> tuple[Any, ...]:
        return cloudpickle.loads, (cloudpickle.dumps(self.function),)
