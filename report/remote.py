"""What a job runs in another process or on a Dask worker; the standard library only.

This module travels in every code archive that :mod:`report.shipping` sends to a cluster, so a
worker with nothing of the project installed can unpickle a shard's action (``partial(run_shard,
module, spec)``) once that archive is on its path.  It imports nothing of the project itself
(:mod:`lab.progress` only when a job runs, to report its counters).

Progress: while a job runs, the compute code's counters (:func:`lab.progress.bar`) are
:class:`Counter` s that send plain dicts (``task``, ``desc``, ``n``, ``total``, ``postfix``,
``closed``) to the build process, at most every ``SEND_INTERVAL`` seconds and when closed; the
build's display (:class:`report.progress.Board`) draws them.
"""

import importlib
import pickle
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Self

SEND_INTERVAL = 0.5  # seconds between two progress messages of one counter
Send = Callable[[dict[str, Any]], None]


def run_shard(module: str, spec: dict[str, Any]) -> Any:
    """One shard's part, ``module.run_shard(spec)``: a dict of arrays (see :mod:`report.stages`)."""
    return importlib.import_module(module).run_shard(spec)


def project_frame(error: BaseException, project: Path) -> str:
    """``file:line in function`` of the innermost traceback frame inside ``project``, or ""."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(project) and ".venv" not in path.parts:
            where = f"{path.relative_to(project)}:{frame.lineno} in {frame.name}"
    return where


def execute(payload: bytes, project: Path, task: str = "", send: Send | None = None) -> tuple[str, Any, Any]:
    """Unpickle a job's action and call it: ``("done", value, seconds)``, or ``("failed", "Type:
    message", frame)`` when it raises (plain strings: the exception's class may exist only here).
    With ``send``, the job's progress counters report to it under the name ``task``."""
    start = time.perf_counter()
    try:
        with counting(task, send):
            value = pickle.loads(payload)()
    except Exception as err:  # noqa: BLE001 (reported to the build, which names the task)
        return "failed", f"{type(err).__name__}: {err}", project_frame(err, project)
    return "done", value, time.perf_counter() - start


class Counter:
    """A progress counter of task ``task`` that sends its state with ``send`` (tqdm's subset that
    :class:`lab.progress.Counter` names)."""

    def __init__(self, send: Send, task: str, total: int | None = None, desc: str = "", **_: Any) -> None:
        self.send, self.task, self.total, self.desc = send, task, total, desc
        self.n, self.postfix, self.sent = 0, "", 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        self._report()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        self._report()

    def close(self) -> None:
        self._report(closed=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _report(self, closed: bool = False) -> None:
        now = time.monotonic()
        if closed or now - self.sent >= SEND_INTERVAL:
            self.sent = now
            message = {"task": self.task, "desc": self.desc, "n": self.n, "total": self.total}
            self.send(message | {"postfix": self.postfix, "closed": closed})


@contextmanager
def counting(task: str, send: Send | None) -> Iterator[None]:
    """While the block runs, :func:`lab.progress.bar` gives :class:`Counter` s of ``task`` (nothing
    changes without ``send``, or in a project without :mod:`lab.progress`).  The next job of the
    process installs its own; none is uninstalled, as a process runs one job at a time."""
    if send is not None:
        try:
            hook = importlib.import_module("lab.progress")
        except ImportError:
            pass
        else:
            hook.install(partial(Counter, send, task))
    yield
