"""The task graph engine: cache keys, staleness, and the loop that brings targets up to date.

A :class:`Task` names the project modules and files its outputs depend on, its configuration,
its inputs (other tasks) and its outputs; its key (see :mod:`report.cache`) hashes all of these
and its inputs' keys.  A task runs when its manifest is stale or when it is forced.  Which tasks
a report is made of is decided elsewhere (:mod:`report.wiring`); where they run, by an executor
(:mod:`report.executors`): the loop submits every task whose inputs are done while the executor
has room, and as each finishes, stores its value and writes its manifest here, in the build
process, so an interrupted build never leaves an entry that looks valid.

Every result is also kept by its key in a :class:`report.store.Store`; a stale task whose key
the store holds (an earlier data source, override or version of the code) is copied back from it
instead of being run.
"""

import datetime
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from report import cache
from report.executors import Executor, ExecutorError, InProcess, Job, TaskError
from report.latex import LatexError
from report.lock import Stop
from report.render import TemplateError
from report.store import Store

FAILURES = (TaskError, LatexError, TemplateError)  # a task failed; the message is one paragraph
IN_BUILD = InProcess()


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "data", "shard", "figure", "verification" or "document"
    modules: tuple[str, ...]  # project modules whose source (and imports) the key hashes
    config: Any  # JSON-serialisable; part of the key
    inputs: tuple[str, ...]  # names of upstream tasks
    outputs: tuple[Path, ...]
    action: Callable[[], Any] = field(compare=False)  # picklable unless ``in_build``
    files: tuple[Path, ...] = ()  # non-Python sources the key hashes (templates)
    seed: int | None = None
    # With ``store``, ``action`` only computes (touches no files, may run on another machine) and
    # ``store(value)`` writes the outputs in the build process.
    store: Callable[[Any], None] | None = field(default=None, compare=False)
    group: str | None = None  # the task this one is listed under (a shard: its stage's gather task)
    in_build: bool = False  # runs in the build process itself (e.g. it needs the graph)
    detail: str = ""  # named when the task fails (a shard's spec)
    # Tasks that must finish first but whose keys this one does not hash: the report reads the
    # supplement's labels, and editing only supplement text must not re-typeset it (the report's
    # configuration hashes the supplement's structure instead).
    after: tuple[str, ...] = ()

    @property
    def needs(self) -> tuple[str, ...]:
        """Every task that must be done before this one runs."""
        return (*self.inputs, *self.after)


class Display(Protocol):
    """What shows the running tasks (:class:`report.progress.Board`)."""

    def started(self, task: str, line: str) -> None: ...

    def finished(self, task: str, seconds: float | None) -> None:
        """``task`` ended after ``seconds``; None: it failed."""
        ...


@dataclass
class Outcome:
    task: str
    ran: bool
    seconds: float
    error: str | None = None  # why it failed (with --keep-going); None when it succeeded
    skipped: bool = False  # not attempted because an input failed
    restored: bool = False  # copied from the store: an earlier run's result for the same key


class Graph:
    """Tasks (in dependency order) with their cache keys and state; outputs and manifests under ``root``."""

    def __init__(self, tasks: Iterable[Task], root: Path, project: Path, store: Store | None = None) -> None:
        self.tasks: dict[str, Task] = {}
        for task in tasks:
            if task.name in self.tasks:
                raise ValueError(f"task {task.name} is defined twice")
            if unknown := [i for i in task.needs if i not in self.tasks]:
                raise ValueError(f"task {task.name} comes before its inputs {', '.join(unknown)}")
            self.tasks[task.name] = task
        self.root = root
        self.project = project
        self.store = store or Store(root / "store")
        self._bases: dict[str, dict[str, Any]] = {}
        self._stamps: dict[str, dict[str, tuple[int, int]]] = {}  # task -> its sources' stamps when hashed
        self._expected: dict[str, float] = {}

    def manifest(self, name: str) -> Path:
        return self.root / "cache" / f"{name}.json"

    def members(self, name: str) -> list[str]:
        """The tasks listed under ``name`` (a stage's shards)."""
        return [t.name for t in self.tasks.values() if t.group == name]

    def basis(self, name: str) -> dict[str, Any]:
        """What the key of ``name`` hashes (see :func:`report.cache.key_basis`)."""
        if name not in self._bases:
            t = self.tasks[name]
            inputs = {i: self.key(i) for i in t.inputs}
            self._stamps[name] = cache.stamps(cache.key_sources(t.modules, t.files, self.project))
            self._bases[name] = cache.key_basis(t.name, t.config, t.modules, t.files, inputs, self.project)
        return self._bases[name]

    def changed_sources(self, name: str) -> list[str]:
        """The files of ``name``'s key written since they were hashed (their content or their stamp
        differs): what the task read may then not be what its key says, even if a file was written back."""
        t = self.tasks[name]
        self.basis(name)
        paths = cache.key_sources(t.modules, t.files, self.project)
        now = cache.stamps(paths)
        changed = {p for p, stamp in now.items() if self._stamps[name].get(p) != stamp}
        changed |= set(self._stamps[name]) - set(now)  # an import removed since
        return sorted(os.path.relpath(p, self.project) for p in changed)

    def key(self, name: str) -> str:
        return cache.task_key(self.basis(name))

    def is_cached(self, name: str) -> bool:
        return cache.is_valid(self.manifest(name), self.key(name), self.tasks[name].outputs)

    def stored(self, name: str) -> dict[str, Any] | None:
        """The store's record of the task's current key, when the store can give its outputs back."""
        return None if self.tasks[name].in_build else self.store.record(self.key(name))

    def restored(self, name: str) -> str | None:
        """When the result in the build directory was computed, if it was copied from the store."""
        record = cache.read_manifest(self.manifest(name))
        return record.get("restored") if record else None

    def stale(self, targets: Iterable[str], force: Iterable[str] = ()) -> list[str]:
        """The tasks a run of ``targets`` would compute, in order (keys depend on input keys, not
        outputs, so this is known before anything runs)."""
        forced = set(force)
        return [n for n in self.closure(targets) if n in forced or not self.is_cached(n)]

    def last_time(self, name: str) -> str:
        """`` (~235 s last time)`` from the task's last manifest, or nothing without one."""
        record = cache.read_manifest(self.manifest(name))
        return f" (~{record['seconds']:.0f} s last time)" if record and "seconds" in record else ""

    def closure(self, targets: Iterable[str]) -> list[str]:
        """``targets`` and everything they depend on, in dependency order."""
        needed: set[str] = set()
        todo = list(targets)
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo.extend(self.tasks[name].needs)
        return [name for name in self.tasks if name in needed]

    def run(
        self,
        targets: Iterable[str],
        force: Iterable[str] = (),
        log: Callable[[str], None] = print,
        keep_going: bool = False,
        executor: Executor | None = None,
        display: Display | None = None,
    ) -> list[Outcome]:
        """Bring ``targets`` up to date; tasks in ``force`` run even when cached.

        Each task's start line goes to ``display`` (which also hears when it ends) or else to ``log``.

        Tasks whose inputs are done run at the same time as far as ``executor`` has room (default:
        one after the other in this process).  A failing task stops new tasks from starting; the
        running ones finish and are stored, then its error is raised.  With ``keep_going`` the
        failure is recorded instead and every task that does not depend on it still runs.
        """
        executor = executor or InProcess()
        stale = self.stale(targets, force)
        order = self.closure(targets)
        outcomes = {n: Outcome(n, ran=False, seconds=0.0) for n in order if n not in stale}
        for name in outcomes:
            self._keep(name)  # a result from before the store, or from another store
        for name in [n for n in stale if n not in set(force)]:
            if when := self._restore(name):
                log(f"{name}: from the store (computed {when})")
                outcomes[name] = Outcome(name, ran=False, seconds=0.0, restored=True)
                stale.remove(name)
        waiting = list(stale)
        running: dict[Future, str] = {}
        broken: set[str] = set()  # failed or skipped
        errors: list[Exception] = []

        def collect(name: str, future: Future) -> None:
            try:
                seconds = self._finish(name, *future.result())
            except (ExecutorError, *FAILURES) as err:
                if display is not None:
                    display.finished(name, None)
                if isinstance(err, ExecutorError) or not keep_going:  # a lost cluster stops the build
                    errors.append(err)
                    return
                log(f"error: {err}")
                broken.add(name)
                outcomes[name] = Outcome(name, ran=False, seconds=0.0, error=str(err))
                return
            outcomes[name] = Outcome(name, ran=True, seconds=seconds)
            if display is not None:
                display.finished(name, seconds)

        try:
            while (waiting and not errors) or running:
                _stop_if_signalled()
                for name in self._ready(waiting, running, broken, outcomes):
                    task = self.tasks[name]
                    runner = IN_BUILD if task.in_build else executor
                    job = self._job(name)
                    if errors or not runner.room(job):
                        continue
                    waiting.remove(name)
                    line = f"[{len(stale) - len(waiting)}/{len(stale)}] {name}{self.last_time(name)}"
                    if display is not None:
                        display.started(name, line)
                    else:
                        log(line)
                    future = runner.submit(job)
                    if future.done():  # ran here: store it before the next one starts
                        collect(name, future)
                    else:
                        running[future] = name
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    collect(running.pop(future), future)
        except BaseException:
            executor.close(cancel=True)  # an interrupt: stop the workers; what was stored stays
            raise
        if errors:
            raise errors[0]
        return [outcomes[n] for n in order if n in outcomes]

    def _ready(
        self, waiting: list[str], running: dict[Future, str], broken: set[str], outcomes: dict[str, Outcome]
    ) -> list[str]:
        """The waiting tasks whose inputs are all done, longest last time first (then in order);
        those behind a failure are skipped."""
        busy = set(waiting) | set(running.values())
        ready = []
        for name in list(waiting):
            inputs = self.tasks[name].needs
            if broken.intersection(inputs):
                broken.add(name)
                waiting.remove(name)
                outcomes[name] = Outcome(name, ran=False, seconds=0.0, skipped=True)
            elif not busy.intersection(inputs):
                ready.append(name)
        return sorted(ready, key=self._expected_seconds, reverse=True)  # the longest first: a shorter build

    def _expected_seconds(self, name: str) -> float:
        """The task's runtime last time (0 without one), read once per graph."""
        if name not in self._expected:
            record = cache.read_manifest(self.manifest(name))
            self._expected[name] = float(record.get("seconds", 0.0)) if record else 0.0
        return self._expected[name]

    def _job(self, name: str) -> Job:
        task = self.tasks[name]
        if task.store is None:
            return Job(name, task.action, self.project, detail=task.detail)
        sources = tuple(sorted(self.basis(name)["sources"].items()))
        return Job(
            name,
            task.action,
            self.project,
            portable=True,
            detail=task.detail,
            sources=sources,
            key=self.key(name),
        )

    def _finish(self, name: str, value: Any, seconds: float) -> float:
        """Store a finished task's value and record its manifest (not when a stop was asked for:
        a task that swallowed the interrupt may be incomplete), then keep it in the store; its seconds."""
        task = self.tasks[name]
        if changed := self.changed_sources(name):
            raise TaskError(
                f"task {name}: {', '.join(changed)} changed while it ran, after its cache key was computed;"
                " nothing was cached for it: build again",
                name,
            )
        if task.store is not None:
            task.store(value)
        _stop_if_signalled()
        computed = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        info = {
            "seconds": round(seconds, 2),
            "seed": task.seed,
            "basis": self.basis(name),
            "computed": computed,
        }
        cache.write_manifest(self.manifest(name), self.key(name), task.outputs, info)
        self._keep(name)
        return seconds

    def _keep(self, name: str) -> None:
        """Put the task's valid result into the store, unless it is there (or lives in the build only)."""
        if self.tasks[name].in_build:
            return
        record = cache.read_manifest(self.manifest(name))
        if record is not None and record["key"] == self.key(name):
            self.store.put(
                self.key(name), self.tasks[name].outputs, {k: v for k, v in record.items() if k != "restored"}
            )

    def _restore(self, name: str) -> str | None:
        """Copy the task's result for its current key from the store into the build directory and
        record it there; when it was computed ("an earlier run" if unknown), or None if not stored."""
        if self.tasks[name].in_build:
            return None
        record = self.store.restore(self.key(name), self.tasks[name].outputs)
        if record is None:
            return None
        when = str(record.get("computed", "in an earlier run"))
        info = {k: v for k, v in record.items() if k not in ("key", "digests")} | {"restored": when}
        cache.write_manifest(self.manifest(name), self.key(name), self.tasks[name].outputs, info)
        return when


def _stop_if_signalled() -> None:
    if Stop.signal is not None:
        raise KeyboardInterrupt
