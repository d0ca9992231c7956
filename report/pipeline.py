"""The task graph of the report and the loop that brings it up to date.

Tasks, in dependency order, for one profile:

* ``<stem>``        a stage's computation -> ``data/<stem>/``           (keyed by config and code)
* ``<figure>``      one figure of a stage -> ``figures/<figure>.pdf``   (keyed by plot code and data key)
* ``verification``  every derivation's ``check()`` -> ``data/verification.json``
* ``report``        templates + all of the above -> ``report.pdf``

All outputs live under :func:`report.paths.build_dir`; manifests under ``cache/``.  A task
runs when its manifest is stale (see :mod:`report.cache`) or when it is forced.
"""

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from report import cache
from report.checks import Check
from report.latex import LatexError
from report.lock import Stop
from report.overrides import Overrides, apply, check_stages
from report.paths import ROOT, TEMPLATES, build_dir
from report.render import TemplateError
from report.settings import SETTINGS_FILE, with_data
from report.stages import STAGES, Stage


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "data", "figure", "verification" or "document"
    modules: tuple[str, ...]  # project modules whose source (and imports) the key hashes
    config: Any  # JSON-serialisable; part of the key
    inputs: tuple[str, ...]  # names of upstream tasks
    outputs: tuple[Path, ...]
    action: Callable[[], None] = field(compare=False)
    files: tuple[Path, ...] = ()  # non-Python sources the key hashes (templates)
    seed: int | None = None


class TaskError(Exception):
    """A task raised; the message names the task, the exception and the project frame it came from."""

    def __init__(self, task: str, error: Exception, project: Path) -> None:
        frame = _project_frame(error, project)
        super().__init__(
            f"task {task} failed: {type(error).__name__}: {error}" + (f"\n  at {frame}" if frame else "")
        )
        self.task = task


def _project_frame(error: BaseException, project: Path) -> str:
    """``file:line in function`` of the innermost traceback frame inside ``project``."""
    import traceback

    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(project) and ".venv" not in path.parts:
            where = f"{path.relative_to(project)}:{frame.lineno} in {frame.name}"
    return where


@dataclass
class Outcome:
    task: str
    ran: bool
    seconds: float
    error: str | None = None  # why it failed (with --keep-going); None when it succeeded
    skipped: bool = False  # not attempted because an input failed


class Graph:
    """All tasks of one profile, with their cache keys and state."""

    def __init__(
        self,
        profile: str,
        stages: tuple[Stage, ...] = STAGES,
        project: Path = ROOT,
        out: Path | None = None,
        templates: Path = TEMPLATES,
        overrides: Overrides | None = None,
        data: Any = None,
    ) -> None:
        """Tasks of ``profile`` for ``stages``; ``project``, ``out`` and ``templates`` exist for tests."""
        from report import document  # the document task needs the graph; imported late to avoid a cycle

        self.profile = profile
        self.stages = stages
        self.project = project
        self.root = out or build_dir(profile)
        self.templates = templates
        self.overrides = dict(overrides or {})
        self.data = data  # an experiments.data.DataSource for every stage with a `data` field; None: defaults
        check_stages(self.overrides, [s.stem for s in stages])
        self.tasks: dict[str, Task] = {}
        for stage in stages:
            self._add_stage(stage)
        checked = tuple(s.compute for s in stages if hasattr(s.compute_module(), "check"))
        self._add(
            Task(
                "verification",
                "verification",
                modules=checked,
                config=None,
                inputs=(),
                outputs=(self.root / "data" / "verification.json",),
                action=lambda: _save_checks(checked, self.root / "data" / "verification.json"),
            )
        )
        self._add(
            Task(
                "report",
                "document",
                modules=("report.document", *(s.present for s in stages)),
                # The title page's date may come from SOURCE_DATE_EPOCH; the settings file fills the title page.
                config={"git": git_commit(), "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH")},
                inputs=tuple(self.tasks),
                outputs=(self.root / "report.pdf",),
                action=lambda: document.build(self),
                files=(*sorted(templates.rglob("*.j2")), *_settings_file(project)),
            )
        )
        self._bases: dict[str, dict[str, Any]] = {}

    def _add(self, task: Task) -> None:
        self.tasks[task.name] = task

    def _add_stage(self, stage: Stage) -> None:
        profiles = stage.compute_module().PROFILES
        if self.profile not in profiles:
            raise KeyError(
                f"stage {stage.stem!r} has no profile {self.profile!r} (it has: {', '.join(profiles)})"
            )
        config = apply(stage.stem, profiles[self.profile], self.overrides.get(stage.stem, {}))
        config = with_data(stage.stem, config, self.data)
        data_dir = self.data_dir(stage.stem)
        self._add(
            Task(
                stage.stem,
                "data",
                modules=(stage.compute,),
                config=cache.key_config(config),
                inputs=(),
                outputs=(data_dir,),
                action=lambda: _run_stage(stage, config, data_dir),
                seed=getattr(config, "seed", None),
            )
        )
        for name in stage.present_module().FIGURES:
            path = self.figure_path(name)
            self._add(
                Task(
                    name,
                    "figure",
                    modules=(stage.present, "report.figures"),
                    config=None,
                    inputs=(stage.stem,),
                    outputs=(path,),
                    action=lambda stage=stage, name=name, path=path: _make_figure(
                        stage, name, data_dir, path
                    ),
                )
            )

    def data_dir(self, stem: str) -> Path:
        return self.root / "data" / stem

    def figure_path(self, name: str) -> Path:
        return self.root / "figures" / f"{name}.pdf"

    def manifest(self, name: str) -> Path:
        return self.root / "cache" / f"{name}.json"

    def figures(self) -> list[str]:
        return [t.name for t in self.tasks.values() if t.kind == "figure"]

    def basis(self, name: str) -> dict[str, Any]:
        """What the key of ``name`` hashes (see :func:`report.cache.key_basis`)."""
        if name not in self._bases:
            t = self.tasks[name]
            inputs = {i: self.key(i) for i in t.inputs}
            self._bases[name] = cache.key_basis(t.name, t.config, t.modules, t.files, inputs, self.project)
        return self._bases[name]

    def key(self, name: str) -> str:
        return cache.task_key(self.basis(name))

    def is_cached(self, name: str) -> bool:
        return cache.is_valid(self.manifest(name), self.key(name), self.tasks[name].outputs)

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
                todo.extend(self.tasks[name].inputs)
        return [name for name in self.tasks if name in needed]

    def run(
        self,
        targets: Iterable[str],
        force: Iterable[str] = (),
        log: Callable[[str], None] = print,
        keep_going: bool = False,
    ) -> list[Outcome]:
        """Bring ``targets`` up to date; tasks in ``force`` run even when cached.  With ``keep_going``
        a failing task is recorded and the tasks that do not depend on it still run."""
        forced = set(force)
        stale = self.stale(targets, forced)
        outcomes: list[Outcome] = []
        broken: set[str] = set()  # failed or skipped
        for name in self.closure(targets):
            _stop_if_signalled()
            if name not in stale:
                outcomes.append(Outcome(name, ran=False, seconds=0.0))
                continue
            task = self.tasks[name]
            if broken.intersection(task.inputs):
                broken.add(name)
                outcomes.append(Outcome(name, ran=False, seconds=0.0, skipped=True))
                continue
            log(f"[{stale.index(name) + 1}/{len(stale)}] {name}{self.last_time(name)}")
            start = time.perf_counter()
            try:
                self._run_task(name)
            except (TaskError, LatexError, TemplateError) as err:
                if not keep_going:
                    raise
                log(f"error: {err}")
                broken.add(name)
                outcomes.append(Outcome(name, ran=False, seconds=time.perf_counter() - start, error=str(err)))
                continue
            outcomes.append(Outcome(name, ran=True, seconds=time.perf_counter() - start))
        return outcomes

    def _run_task(self, name: str) -> None:
        """Run one task and record its manifest (only when it finished and no stop was asked for)."""
        task = self.tasks[name]
        start = time.perf_counter()
        try:
            task.action()
        except (LatexError, TemplateError, OSError):
            raise  # already one clear sentence (an OSError names its path)
        except Exception as err:
            raise TaskError(name, err, self.project) from err
        _stop_if_signalled()  # a task that swallowed the interrupt may be incomplete: record nothing
        cache.write_manifest(
            self.manifest(name),
            self.key(name),
            task.outputs,
            {
                "seconds": round(time.perf_counter() - start, 2),
                "seed": task.seed,
                "basis": self.basis(name),
            },
        )


def _stop_if_signalled() -> None:
    if Stop.signal is not None:
        raise KeyboardInterrupt


def _run_stage(stage: Stage, config: Any, data_dir: Path) -> None:
    compute = stage.compute_module()
    with cache.atomic_directory(data_dir) as tmp:
        compute.save(compute.run(config), tmp)


def _make_figure(stage: Stage, name: str, data_dir: Path, path: Path) -> None:
    from report import figures

    results = stage.compute_module().load(data_dir)
    figures.save_pdf(stage.present_module().FIGURES[name], results, path)


def run_checks(modules: Iterable[str]) -> list[Check]:
    from importlib import import_module

    return [check for name in modules for check in import_module(name).check()]


def _save_checks(modules: tuple[str, ...], path: Path) -> None:
    checks = [dataclasses.asdict(c) | {"passed": c.passed} for c in run_checks(modules)]
    cache.write_atomic(path, json.dumps(checks, indent=1).encode())


def failed_checks(graph: Graph) -> list[dict[str, Any]]:
    """The failed checks recorded by the last verification task (none when it has not run)."""
    path = graph.tasks["verification"].outputs[0]
    if not path.exists():
        return []
    return [c for c in json.loads(path.read_text()) if not c["passed"]]


def _settings_file(project: Path) -> tuple[Path, ...]:
    """The settings file the title page reads, when it lies in ``project`` (tests use other roots)."""
    return (SETTINGS_FILE,) if SETTINGS_FILE.is_file() and SETTINGS_FILE.is_relative_to(project) else ()


def git_commit() -> str:
    """The current commit, with ``-dirty`` when the work tree has uncommitted changes."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()
