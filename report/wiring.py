"""The report's tasks: which stages, shards, figures, checks and document a build is made of.

For one profile, in dependency order:

* ``<stem>[<shard>]``  one shard of a sweep stage -> ``cache/<stem>/<shard>.npz``  (keyed by its spec
  and code only, so adding seeds or widths leaves the other shards cached)
* ``<stem>``           a stage's results -> ``data/<stem>/``: ``gather`` of its shards' parts when the
  compute module defines ``shards`` (keyed by config, code and the shards' keys), else ``run``
* ``<figure>``         one figure of a stage -> ``figures/<figure>.pdf``  (keyed by plot code and data key)
* ``verification``     every derivation's ``check()`` -> ``data/verification.json``
* ``report``           templates + all of the above -> ``report.pdf``

Overrides apply to a stage's ``Config`` before its shards are derived.  All outputs live under
:func:`report.paths.build_dir`; manifests under ``cache/``.
"""

import dataclasses
import io
import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from lab.checks import Check
from report import cache, document, progress
from report.inputs import InputError, source_files
from report.overrides import Overrides, apply, check_stages
from report.paths import ROOT, TEMPLATES, build_dir
from report.pipeline import Graph, Task
from report.remote import run_shard
from report.settings import SETTINGS_FILE, SettingsError, with_data
from report.stages import STAGES, Stage

progress.install()  # every process that runs a task imports this module: workers show progress too

SHARD_NAME = re.compile(r"[A-Za-z0-9_.,=+-]+")  # also a file name


class ReportGraph(Graph):
    """Every task of the report for ``profile``; ``project``, ``out`` and ``templates`` exist for tests."""

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
        self.profile = profile
        self.stages = stages
        self.templates = templates
        self.overrides = dict(overrides or {})
        self.data = data  # an experiments.data.DataSource for every stage with a `data` field; None: defaults
        self.configs: dict[str, Any] = {}  # stem -> the stage's Config, overrides applied
        self.project = project  # the stages' tasks hash the data source's files inside it
        check_stages(self.overrides, [s.stem for s in stages])
        self.root = root = out or build_dir(profile)
        tasks = [task for stage in stages for task in self._stage_tasks(stage)]
        checked = tuple(s.compute for s in stages if hasattr(s.compute_module(), "check"))
        verification = root / "data" / "verification.json"
        tasks.append(
            Task(
                "verification",
                "verification",
                modules=checked,
                config=None,
                inputs=(),
                outputs=(verification,),
                action=partial(_save_checks, checked, verification),
            )
        )
        tasks.append(
            Task(
                "report",
                "document",
                modules=("report.document", *(s.present for s in stages)),
                # The title page's date may come from SOURCE_DATE_EPOCH; the settings file fills the title page.
                config={"git": git_commit(), "source_date_epoch": os.environ.get("SOURCE_DATE_EPOCH")},
                inputs=tuple(t.name for t in tasks),
                outputs=(root / "report.pdf",),
                action=partial(document.build, self),
                files=(*sorted(templates.rglob("*.j2")), *_settings_file(project)),
                in_build=True,  # it reads the whole graph
            )
        )
        super().__init__(tasks, root, project)

    def _stage_tasks(self, stage: Stage) -> Iterator[Task]:
        """The stage's shards and gather task (or its one data task), then its figures."""
        compute = stage.compute_module()
        if self.profile not in compute.PROFILES:
            raise KeyError(
                f"stage {stage.stem!r} has no profile {self.profile!r} (it has: {', '.join(compute.PROFILES)})"
            )
        config = apply(stage.stem, compute.PROFILES[self.profile], self.overrides.get(stage.stem, {}))
        config = with_data(stage.stem, config, self.data)
        self.configs[stage.stem] = config
        try:  # what the data source reads, hashed with the code (none for the built-in process)
            inputs = source_files(getattr(config, "data", None), self.project)
        except InputError as err:
            raise SettingsError(f"[data] source {self.data.spec}: {err}") from err
        data_dir = self.data_dir(stage.stem)
        parts: dict[str, Path] = {}
        if hasattr(compute, "shards"):
            for shard, spec in compute.shards(config).items():
                if not SHARD_NAME.fullmatch(shard):
                    raise ValueError(f"{stage.compute}.shards: name {shard!r} is not of {SHARD_NAME.pattern}")
                parts[shard] = self.root / "cache" / stage.stem / f"{shard}.npz"
                yield Task(
                    shard_task(stage.stem, shard),
                    "shard",
                    modules=(stage.compute,),
                    config=spec,
                    inputs=(),
                    outputs=(parts[shard],),
                    action=partial(run_shard, stage.compute, spec),
                    files=inputs,
                    store=partial(save_part, parts[shard]),
                    group=stage.stem,
                    detail=f"spec: {json.dumps(spec, default=str)}",
                )
        action = (
            partial(_gather, stage, config, parts, data_dir)
            if parts
            else partial(_run, stage, config, data_dir)
        )
        yield Task(
            stage.stem,
            "data",
            modules=(stage.compute,),
            config=cache.key_config(config),
            inputs=tuple(shard_task(stage.stem, shard) for shard in parts),
            outputs=(data_dir,),
            action=action,
            files=inputs,
            seed=getattr(config, "seed", None),
        )
        for figure in stage.present_module().FIGURES:
            path = self.figure_path(figure)
            yield Task(
                figure,
                "figure",
                modules=(stage.present, "report.figures"),
                config=None,
                inputs=(stage.stem,),
                outputs=(path,),
                action=partial(_make_figure, stage, figure, data_dir, path),
            )

    def data_dir(self, stem: str) -> Path:
        return self.root / "data" / stem

    def figure_path(self, name: str) -> Path:
        return self.root / "figures" / f"{name}.pdf"

    def figures(self) -> list[str]:
        return [t.name for t in self.tasks.values() if t.kind == "figure"]


def shard_task(stem: str, shard: str) -> str:
    """The task name of a stage's shard: ``double_descent[n100-m20..23-s0..4]``."""
    return f"{stem}[{shard}]"


def save_part(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    cache.write_atomic(path, buffer.getvalue())


def load_part(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _gather(stage: Stage, config: Any, parts: dict[str, Path], data_dir: Path) -> None:
    compute = stage.compute_module()
    results = compute.gather(config, {shard: load_part(path) for shard, path in parts.items()})
    with cache.atomic_directory(data_dir) as tmp:
        compute.save(results, tmp)


def _run(stage: Stage, config: Any, data_dir: Path) -> None:
    compute = stage.compute_module()
    with cache.atomic_directory(data_dir) as tmp:
        compute.save(compute.run(config), tmp)


def _make_figure(stage: Stage, name: str, data_dir: Path, path: Path) -> None:
    from report import figures

    results = stage.compute_module().load(data_dir)
    figures.save_pdf(stage.present_module().FIGURES[name], results, path)


def run_checks(modules: Iterable[str]) -> list[Check]:
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
