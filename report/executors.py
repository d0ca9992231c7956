"""Where tasks run: in the build process, in a local process pool, or on a Dask cluster.

Every executor takes :class:`Job` s and returns :class:`concurrent.futures.Future` s of
``(value, seconds)``; the build loop (:meth:`report.pipeline.Graph.run`) submits jobs while an
executor has :meth:`~Executor.room` and stores each value in the build process as it returns.

* :class:`InProcess`  ``--jobs 1``: one job at a time in this process (Ctrl-C stops it at once).
* :class:`LocalPool`  ``--jobs N``: N spawned processes, each with ``cores // N`` torch threads.
* :class:`DaskCluster` ``--scheduler ADDRESS``: portable jobs (a sweep's shards, which return
  arrays and touch no files) go to a ``dask.distributed`` cluster, retried there when a worker
  is lost; the others run in the local executor it wraps.
"""

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

INSTALL_HINT = "pip install -e '.[distributed]'  (or: .venv/bin/pip install 'dask[distributed]')"


@dataclass(frozen=True)
class Job:
    """One task's computation, picklable so that another process or machine can run it."""

    name: str
    action: Callable[[], Any]
    project: Path  # tracebacks are reported at their innermost frame inside it
    portable: bool = False  # touches no files (returns its result): may run on another machine
    detail: str = ""  # named with a failure, e.g. a shard's spec
    sources: tuple[tuple[str, str], ...] = ()  # (path in the project, digest) of the code the key hashes


class TaskError(Exception):
    """A task raised; the message names the task, the exception and the project frame it came from."""

    def __init__(self, message: str, task: str) -> None:
        super().__init__(message)
        self.task = task

    def __reduce__(self) -> tuple[Any, ...]:  # raised in worker processes, re-raised here
        return (TaskError, (str(self), self.task))

    @classmethod
    def of(cls, job: Job, error: Exception) -> "TaskError":
        frame = _project_frame(error, job.project)
        message = f"task {job.name} failed: {type(error).__name__}: {error}"
        message += f"\n  at {frame}" if frame else ""
        message += f"\n  {job.detail}" if job.detail else ""
        return cls(message, job.name)


def _project_frame(error: BaseException, project: Path) -> str:
    """``file:line in function`` of the innermost traceback frame inside ``project``."""
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(project) and ".venv" not in path.parts:
            where = f"{path.relative_to(project)}:{frame.lineno} in {frame.name}"
    return where


def execute(job: Job) -> tuple[Any, float]:
    """Run ``job`` here: its value and its wall-clock seconds; an exception becomes a :class:`TaskError`
    (errors that are already one clear sentence, such as LaTeX's or a missing file's, pass through)."""
    from report.latex import LatexError
    from report.render import TemplateError

    start = time.perf_counter()
    try:
        value = job.action()
    except (LatexError, TemplateError, OSError):
        raise
    except Exception as err:
        raise TaskError.of(job, err) from err
    return value, time.perf_counter() - start


class Executor(Protocol):
    def room(self, job: Job) -> bool:
        """Whether ``job`` would start now rather than wait in a queue."""
        ...

    def submit(self, job: Job) -> "Future[tuple[Any, float]]": ...

    def close(self, cancel: bool = False) -> None:
        """Release the workers; with ``cancel``, stop the running jobs too (their results are lost)."""
        ...


class _Lane:
    """Counts the jobs in flight of one kind of worker against its capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.busy = capacity, 0

    def room(self) -> bool:
        return self.busy < self.capacity

    def track(self, future: Future) -> Future:
        self.busy += 1
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future) -> None:
        self.busy -= 1


class InProcess:
    """Runs each job in this process when it is submitted (``--jobs 1``)."""

    def room(self, job: Job) -> bool:
        return True

    def submit(self, job: Job) -> "Future[tuple[Any, float]]":
        future: Future[tuple[Any, float]] = Future()
        try:
            future.set_result(execute(job))
        except Exception as err:  # noqa: BLE001 (as a pool would; KeyboardInterrupt stops the build)
            future.set_exception(err)
        return future

    def close(self, cancel: bool = False) -> None:
        pass


class _Terminated(BaseException):
    """SIGTERM on a pool worker while a job runs: unwinds the job, so that its temporary files go."""


_running = False  # on a pool worker: whether a job is running


def _on_sigterm(signum: int, _frame: object) -> None:
    if _running:
        raise _Terminated
    os._exit(128 + signum)


def _execute_in_pool(job: Job) -> tuple[Any, float]:
    """:func:`execute` on a pool worker; stopped by :meth:`LocalPool.close`, it cleans up, then exits."""
    global _running
    _running = True
    try:
        return execute(job)
    except _Terminated:
        os._exit(128 + signal.SIGTERM)
    finally:
        _running = False


def _init_worker(threads: int) -> None:
    """A pool worker: ``threads`` intra-op threads for torch, Ctrl-C left to the build process, SIGTERM
    (a cancelled build) unwinding the running job before the exit, and an exit when the build process
    dies, whenever that happens (even by SIGKILL, even before this worker started)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _end_with_parent()
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)  # read by torch when a task first imports it
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with_parent() -> None:
    """End this spawned process when the process that started it is gone, in two independent ways.

    On Linux the kernel sends SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    thread waits on multiprocessing's parent sentinel, the read end of a pipe whose write end only the
    parent holds: it reads end-of-file once the parent is gone, even if that happened before this
    process got here (a recorded ``getppid()`` would then already be the reaper's).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the sentinel below still ends us
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_ready, args=(parent.sentinel,), daemon=True).start()


def _exit_when_ready(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


class LocalPool:
    """``jobs`` spawned worker processes on this machine, started on first use.

    Each worker gets ``cores // jobs`` torch threads, so that the pool never oversubscribes the
    machine.  Spawned (not forked) because forking after torch started its threads can hang.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.threads = max(1, (os.cpu_count() or 1) // jobs)
        self.lane = _Lane(jobs)
        self._pool: ProcessPoolExecutor | None = None

    def room(self, job: Job) -> bool:
        return self.lane.room()

    def submit(self, job: Job) -> "Future[tuple[Any, float]]":
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        return self.lane.track(self._pool.submit(_execute_in_pool, job))

    def close(self, cancel: bool = False) -> None:
        if self._pool is None:
            return
        if cancel:
            processes = list((self._pool._processes or {}).values())  # no public way before Python 3.14
            self._pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join()
        else:
            self._pool.shutdown(wait=True)
        self._pool = None


_LOADED: dict[str, str] = {}  # on a worker: project module -> digest of the source it was imported from


def _execute_on_worker(job: Job) -> tuple[Any, float]:
    """:func:`execute` on a Dask worker (its nanny sets ``OMP_NUM_THREADS=1`` for torch), with the
    build's code: the value goes into a cache under a key that hashes that code.

    The worker finds the project (a shared file system, else its own checkout) and refuses the job
    when its files differ from the build's.  A long-lived worker may hold modules imported from
    other files or from an older version of these: they are imported afresh.
    """
    from report import cache, paths

    root = job.project if job.project.is_dir() else paths.ROOT
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    differ = [
        rel
        for rel, digest in job.sources
        if not (root / rel).is_file() or cache.source_digest(root / rel) != digest
    ]
    if differ:
        raise TaskError(
            f"task {job.name}: the worker on {socket.gethostname()} has other code than the build in {root}:"
            f" {', '.join(differ)} (update its checkout)",
            job.name,
        )
    modules = {_module_name(rel): ((root / rel).resolve(), digest) for rel, digest in job.sources}
    if any(_stale(name, path, digest) for name, (path, digest) in modules.items()):
        for name in modules.keys() - {__name__}:
            sys.modules.pop(name, None)
            _LOADED.pop(name, None)
    value = execute(job)
    for name, (_, digest) in modules.items():
        if name in sys.modules:
            _LOADED.setdefault(name, digest)
    return value


def _module_name(rel: str) -> str:
    """``experiments/data.py`` -> ``experiments.data``; ``report/__init__.py`` -> ``report``."""
    return rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _stale(name: str, path: Path, digest: str) -> bool:
    """Whether module ``name`` was imported from another file than ``path`` or another version of it."""
    module = sys.modules.get(name)
    if module is None:
        return False
    loaded_from = getattr(module, "__file__", None)
    return (loaded_from is not None and Path(loaded_from).resolve() != path) or _LOADED.get(
        name, digest
    ) != digest


class DaskCluster:
    """Portable jobs on the ``dask.distributed`` scheduler at ``address``, the rest in ``local``.

    A job whose worker dies is rerun elsewhere up to ``retries`` times.  Its value comes back to
    this process, which writes it into the same cache as a local build.
    """

    def __init__(self, address: str, local: Executor, retries: int = 3) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError(
                f"--scheduler needs dask.distributed; install it with {INSTALL_HINT}"
            ) from None
        try:
            self.client = Client(address, timeout="20s")
        except OSError as err:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        self.local = local
        self.remote = self.client.get_executor(retries=retries, pure=False)
        self.lane = _Lane(0)
        self.counted = -1e9  # when the lane's capacity was last set from the workers' threads

    def room(self, job: Job) -> bool:
        if not job.portable:
            return self.local.room(job)
        if time.monotonic() - self.counted > 1.0:  # workers come and go; ask the scheduler now and then
            self.lane.capacity = max(1, 2 * sum(self.client.nthreads().values()))
            self.counted = time.monotonic()
        return self.lane.room()

    def submit(self, job: Job) -> "Future[tuple[Any, float]]":
        if not job.portable:
            return self.local.submit(job)
        return self.lane.track(self.remote.submit(_execute_on_worker, job))

    def close(self, cancel: bool = False) -> None:
        if self.client.status != "closed":
            self.remote.shutdown(wait=not cancel)
            self.client.close()
        self.local.close(cancel)


class ExecutorError(Exception):
    """An executor cannot start (Dask missing, scheduler unreachable); the message says what to do."""


def make(jobs: int = 1, scheduler: str | None = None) -> Executor:
    """The executor for ``--jobs`` and ``--scheduler`` (or ``DASK_SCHEDULER_ADDRESS``)."""
    local: Executor = InProcess() if jobs <= 1 else LocalPool(jobs)
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    return DaskCluster(address, local) if address else local
