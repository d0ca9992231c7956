"""One build at a time per build directory, and signals that stop a build cleanly.

:func:`build_lock` holds an exclusive ``flock`` on ``<build dir>/.lock`` for the whole build
(the kernel releases it when the process dies, however it dies).  Whoever holds it first
removes temporary files and directories a killed build of its own profile left behind.  :func:`stop_on_signals`
turns SIGINT and SIGTERM into a flag checked between tasks and a ``KeyboardInterrupt`` that
stops the running one.
"""

import fcntl
import os
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from report import cache

LEFTOVERS = (".*.tmp", "*/.*.tmp", "*/.*.old", "*/*/.*.tmp")


class BuildLocked(Exception):
    """Another build holds the build directory."""


@contextmanager
def build_lock(root: Path, wait: bool = False, others: Iterable[Path] = ()) -> Iterator[None]:
    """Hold ``root``'s build lock; fail at once (or wait, if asked) when another build has it.

    ``others`` are the build directories of the other profiles: those inside ``root`` (``build/quick``
    in ``build/``) belong to builds under their own locks, and their temporary files are left alone.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise BuildLocked(
                f"a build is already running in {root} (pid {pid}); use --wait to queue"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        foreign = [o for o in others if o != root and o.is_relative_to(root)]
        for pattern in LEFTOVERS:
            for leftover in root.glob(pattern):
                if not any(leftover.is_relative_to(o) for o in foreign):
                    cache.remove(leftover)
        yield


class Stop:
    """Set by SIGINT or SIGTERM; the task loop stops before the next task when it is set."""

    signal: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[type[Stop]]:
    """Within the block SIGINT and SIGTERM set :class:`Stop` and interrupt the running task."""

    def handler(signum: int, _frame: object) -> None:
        Stop.signal = signum
        raise KeyboardInterrupt

    Stop.signal = None
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield Stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
