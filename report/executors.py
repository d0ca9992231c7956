"""Where tasks run: in the build process, in a local process pool, or on a Dask cluster.

Every executor takes :class:`Job` s and returns :class:`concurrent.futures.Future` s of
``(value, seconds)``; the build loop (:meth:`report.pipeline.Graph.run`) submits jobs while an
executor has :meth:`~Executor.room` and stores each value in the build process as it returns.

* :class:`InProcess`  ``--jobs 1``: one job at a time in this process (Ctrl-C stops it at once).
* :class:`LocalPool`  ``--jobs N``: N spawned processes, each with ``cores // N`` torch threads.
* :class:`DaskCluster` ``--scheduler ADDRESS``: portable jobs (a sweep's shards, which return
  arrays and touch no files) go to a ``dask.distributed`` cluster with the code they run
  (:mod:`report.shipping`), rerun there when a worker is lost; the others run in the local
  executor it wraps.
"""

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from report.remote import Send, counting, project_frame

INSTALL_HINT = "pip install -e '.[distributed]'  (or: .venv/bin/pip install 'dask[distributed]')"

# Where this process's progress counters report (see report.remote.Counter): the build's display
# (report.progress.Board) in the build process, a queue to it in a pool worker; None: not forwarded.
SEND: Send | None = None


@dataclass(frozen=True)
class Job:
    """One task's computation, picklable so that another process or machine can run it."""

    name: str
    action: Callable[[], Any]
    project: Path  # tracebacks are reported at their innermost frame inside it
    portable: bool = False  # touches no files (returns its result): may run on another machine
    detail: str = ""  # named with a failure, e.g. a shard's spec
    sources: tuple[tuple[str, str], ...] = ()  # (path in the project, digest) of the files the key hashes
    key: str = ""  # the task's cache key (names its Dask task)


class TaskError(Exception):
    """A task raised; the message names the task, the exception and the project frame it came from."""

    def __init__(self, message: str, task: str) -> None:
        super().__init__(message)
        self.task = task

    def __reduce__(self) -> tuple[Any, ...]:  # raised in worker processes, re-raised here
        return (TaskError, (str(self), self.task))

    @classmethod
    def of(cls, job: Job, error: Exception) -> "TaskError":
        return cls.described(job, f"{type(error).__name__}: {error}", project_frame(error, job.project))

    @classmethod
    def described(cls, job: Job, error: str, frame: str) -> "TaskError":
        """``error`` ("Type: message") of ``job``, raised at ``frame`` (``file:line in function``, or "")."""
        message = f"task {job.name} failed: {error}"
        message += f"\n  at {frame}" if frame else ""
        message += f"\n  {job.detail}" if job.detail else ""
        return cls(message, job.name)


def execute(job: Job) -> tuple[Any, float]:
    """Run ``job`` here: its value and its wall-clock seconds; an exception becomes a :class:`TaskError`
    (errors that are already one clear sentence, such as LaTeX's or a missing file's, pass through)."""
    from report.latex import LatexError
    from report.render import TemplateError

    start = time.perf_counter()
    try:
        with counting(job.name, SEND):
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


def _init_worker(threads: int, progress: Any) -> None:
    """A pool worker: ``threads`` intra-op threads for torch, Ctrl-C left to the build process, SIGTERM
    (a cancelled build) unwinding the running job before the exit, progress sent to the build through
    the queue ``progress`` (if any), and an exit when the build process dies, whenever that happens
    (even by SIGKILL, even before this worker started)."""
    global SEND
    SEND = progress.put if progress is not None else None
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
        self._progress: Any = None  # the workers' queue of progress messages, relayed to SEND ...
        self._relay: threading.Thread | None = None  # ... by this thread

    def room(self, job: Job) -> bool:
        return self.lane.room()

    def submit(self, job: Job) -> "Future[tuple[Any, float]]":
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            if SEND is not None:
                self._progress = context.Queue()
                self._relay = threading.Thread(target=_relay, args=(self._progress, SEND), daemon=True)
                self._relay.start()
            self._pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self.threads, self._progress),
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
        if self._progress is not None and self._relay is not None:
            self._progress.put(None)  # ends the relay once the workers' messages before it are handed over
            self._relay.join(timeout=5.0)  # a worker terminated while writing may have left the queue locked
            self._progress = self._relay = None


def _relay(queue: Any, send: Send) -> None:
    """Hand the pool workers' progress messages to ``send`` until a None arrives."""
    while (message := queue.get()) is not None:
        send(message)


class ExecutorError(Exception):
    """An executor cannot start or lost its workers (Dask missing, scheduler unreachable, no worker); the
    message is one line saying what happened and where."""


WORKER_TIMEOUT = 60.0  # seconds a shard waits while no worker is connected before the build stops


class DaskCluster:
    """Portable jobs on the ``dask.distributed`` scheduler at ``address``, the rest in ``local``.

    The jobs' code goes with them (:mod:`report.shipping`), so the scheduler and the workers need
    only the project's dependencies.  A task's key is ``(stage, task name, key prefix)``, which the
    dashboard shows.  A job whose worker dies is rerun on another, as often as the scheduler's
    ``distributed.scheduler.allowed-failures`` allows (3 by default); its value comes back to this
    process, which writes it into the same cache as a local build.  A job fails with a one-line
    :class:`ExecutorError` naming the scheduler and the shard when no worker has been connected for
    ``worker_timeout`` seconds, when its worker died on every try, or when the scheduler is lost.
    """

    def __init__(self, address: str, local: Executor, worker_timeout: float = WORKER_TIMEOUT) -> None:
        try:
            from distributed import Client

            from report import shipping
        except ImportError:
            raise ExecutorError(
                f"--scheduler needs dask.distributed; install it with {INSTALL_HINT}"
            ) from None
        try:
            self.client = Client(address, timeout="20s")
        except OSError as err:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {err}") from None
        # Dask logs a lost connection in several lines of its own; the build says it in one (_lost, _watch).
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        self.address, self.local, self.worker_timeout = address, local, worker_timeout
        self.shipping = shipping
        self.task = shipping.ByValue(shipping.run)
        self.plugins: dict[tuple[tuple[str, str], ...], str] = {}  # a job's sources -> its archive's plugin
        self.running: dict[Future, tuple[Job, Any]] = {}  # ours -> (job, Dask's future)
        self.guard = threading.Lock()  # a future is settled once: by its result or by the watcher
        self.lane = _Lane(0)
        self.counted = -1e9  # when the lane's capacity was last set from the workers' threads
        self.stopped = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        if SEND is not None:
            self.client.subscribe_topic(shipping.PROGRESS_TOPIC, partial(_ours, self.client.id, SEND))

    def room(self, job: Job) -> bool:
        if not job.portable:
            return self.local.room(job)
        if time.monotonic() - self.counted > 1.0:  # workers come and go; ask the scheduler now and then
            try:
                self.lane.capacity = max(1, 2 * sum(self.client.nthreads().values()))
            except (OSError, TimeoutError) as err:
                raise ExecutorError(
                    f"lost the Dask scheduler at {self.address} ({err}); shard {job.name} did not run"
                ) from None
            self.counted = time.monotonic()
        return self.lane.room()

    def submit(self, job: Job) -> "Future[tuple[Any, float]]":
        if not job.portable:
            return self.local.submit(job)
        plugin = self._plugin(job)
        future: Future[tuple[Any, float]] = Future()
        key = (job.name.partition("[")[0], job.name, job.key[:12])
        remote = self.client.submit(
            self.task, plugin, self.client.id, job.name, pickle.dumps(job.action), key=key
        )
        self.running[future] = (job, remote)
        remote.add_done_callback(partial(self._settle, future, job))
        return self.lane.track(future)

    def _plugin(self, job: Job) -> str:
        """The name of the worker plugin that holds ``job``'s code, registered on first use."""
        if job.sources not in self.plugins:
            try:
                archive, digest = self.shipping.pack(job.project, job.sources)
            except self.shipping.CodeChanged as err:
                raise ExecutorError(f"task {job.name}: {err}") from None
            plugin = self.shipping.ShippedCode(archive, digest)
            try:
                self.client.register_plugin(plugin)
            except (OSError, TimeoutError) as err:
                raise ExecutorError(
                    f"cannot send the code of {job.name} to the Dask scheduler at {self.address}: {err}"
                ) from None
            self.plugins[job.sources] = plugin.name
        return self.plugins[job.sources]

    def _settle(self, future: Future, job: Job, remote: Any) -> None:
        """Called by Dask when ``remote`` is done: its value, its task's error or a lost shard."""
        try:
            status, value, extra = remote.result()
        except Exception as err:  # noqa: BLE001 (every way a Dask task can end without a value)
            self._resolve(future, error=self._lost(job, err))
            return
        if status == "done":
            self._resolve(future, value=(value, extra))
        else:
            self._resolve(future, error=TaskError.described(job, value, extra))

    def _lost(self, job: Job, error: Exception) -> ExecutorError:
        from distributed import KilledWorker

        if isinstance(error, KilledWorker):
            return ExecutorError(
                f"shard {job.name} lost its worker on every try on the Dask scheduler at {self.address}"
            )
        if isinstance(error, CancelledError):  # Dask's message says why in several lines
            return ExecutorError(f"lost the Dask scheduler at {self.address} while shard {job.name} ran")
        first = str(error).splitlines()[0] if str(error) else ""
        return ExecutorError(
            f"shard {job.name} failed on the Dask scheduler at {self.address}: {type(error).__name__}: {first}"
        )

    def _resolve(self, future: Future, value: Any = None, error: Exception | None = None) -> None:
        with self.guard:
            if future.done():
                return
            self.running.pop(future, None)
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def _watch(self) -> None:
        """Fail the running shards when no worker has been connected for ``worker_timeout`` seconds
        or the scheduler is gone, rather than wait for ever."""
        alone_since = None
        while not self.stopped.wait(0.5):
            if not self.running:
                alone_since = None
                continue
            try:
                lost = self.client.status != "running"
                workers = 0 if lost else len(self.client.nthreads())
            except Exception:  # noqa: BLE001 (the connection broke while asking)
                lost, workers = True, 0
            alone_since = None if workers else alone_since or time.monotonic()
            if lost:
                self._fail_running(
                    lambda job: f"lost the Dask scheduler at {self.address} while shard {job.name} ran"
                )
            elif alone_since is not None and time.monotonic() - alone_since >= self.worker_timeout:
                self._fail_running(
                    lambda job: (
                        f"no Dask worker connected to the scheduler at {self.address} for"
                        f" {self.worker_timeout:.0f} s; shard {job.name} did not run"
                    )
                )

    def _fail_running(self, message: Callable[[Job], str]) -> None:
        for future, (job, remote) in list(self.running.items()):
            remote.cancel()
            self._resolve(future, error=ExecutorError(message(job)))

    def close(self, cancel: bool = False) -> None:
        """Cancel the shards still on the cluster (there are none after a finished build) and disconnect."""
        self.stopped.set()
        if self.client.status != "closed":
            remotes = [remote for _, remote in self.running.values()]
            if remotes:
                self.client.cancel(remotes)
            self.client.close()
        self.local.close(cancel)


def _ours(build: str, send: Send, event: tuple[float, dict[str, Any]]) -> None:
    """Hand a Dask progress event to ``send`` if it comes from a task of this build."""
    if event[1].get("build") == build:
        send(event[1])


def make(jobs: int = 1, scheduler: str | None = None) -> Executor:
    """The executor for ``--jobs`` and ``--scheduler`` (or ``DASK_SCHEDULER_ADDRESS``)."""
    local: Executor = InProcess() if jobs <= 1 else LocalPool(jobs)
    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    return DaskCluster(address, local, WORKER_TIMEOUT) if address else local
