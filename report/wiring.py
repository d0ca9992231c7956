"""The report's tasks: which stages, shards, figures, checks and document a build is made of.

For one profile, in dependency order:

* ``<stem>[<shard>]``  one shard of a sweep stage -> ``cache/<stem>/<shard>.npz``  (keyed by its spec
  and code only, so adding seeds or widths leaves the other shards cached)
* ``<stem>``           a stage's results -> ``data/<stem>/``: ``gather`` of its shards' parts when the
  compute module defines ``shards`` (keyed by config, code and the shards' keys), else ``run``
* ``<figure>``         one figure of a stage -> ``figures/<figure>.pdf``  (keyed by plot code and data key)
* ``<analysis>``       a derived analysis of one stage's results (``ANALYSES`` in ``project.py``) ->
  ``data/<analysis>/``, with its claims' ``check(analysis)`` in ``data/<analysis>/checks.json`` (keyed by
  its code and the stage's key, never the stage's templates or figures)
* ``verification``     every derivation's ``check()`` -> ``data/verification.json``
* ``supplement``       supplement templates + all of the above -> ``supplement.pdf`` (the evidence)
* ``report``           submission templates + all of the above -> ``report.pdf``; after the supplement,
  whose labels it links to (its key hashes the supplement's outline, not the supplement's key)

The stages come from the project's declaration (:mod:`report.project`); a task name is used once,
and no stage, shard or figure may take a name the builder reserves for its own tasks (:data:`RESERVED`).
Overrides apply to a stage's ``Config`` before its shards are derived.  All outputs live under the
project's :meth:`~report.project.Project.build_dir`; manifests under ``cache/``.
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
from report import cache, crossref, progress
from report.inputs import InputError, source_files
from report.overrides import Overrides, apply, check_stages
from report.pipeline import Graph, Task
from report.project import DECLARATION, Project, ProjectError, load
from report.remote import run_shard
from report.settings import SettingsError, with_data
from report.stages import Analysis, Stage

progress.install()  # every process that runs a task imports this module: workers show progress too

SHARD_NAME = re.compile(r"[A-Za-z0-9_.,=+-]+")  # also a file name
RESERVED = ("report", "verification", "supplement")  # the builder's own tasks
CLAIMS = "checks.json"  # in an analysis's directory: the records of its claims, written beside its results


class ReportGraph(Graph):
    """Every task of ``declared``'s report (default: this repository's) for ``profile``; ``out`` exists for
    tests."""

    def __init__(
        self,
        profile: str,
        declared: Project | None = None,
        out: Path | None = None,
        overrides: Overrides | None = None,
        data: Any = None,
    ) -> None:
        self.declared = declared = declared or load()
        if profile not in declared.profiles:
            raise ProjectError(
                f"no profile {profile!r}; the project's profiles: {', '.join(declared.profiles)}"
            )
        self.profile = profile
        self.stages = stages = declared.stages
        self.templates = templates = declared.templates
        self.overrides = dict(overrides or {})
        self.data = data  # the data hook's source for every stage with a `data` field; None: defaults
        self.configs: dict[str, Any] = {}  # stem -> the stage's Config, overrides applied
        check_stages(self.overrides, [s.stem for s in stages])
        self.root = root = out or declared.build_dir(profile)
        tasks = [task for stage in stages for task in self._stage_tasks(stage)]
        tasks += [self._analysis_task(analysis) for analysis in declared.analyses]
        check_names([t.name for t in tasks])
        self.checked = checked = tuple(s.compute for s in stages if hasattr(s.compute_module(), "check"))
        verification = root / "data" / "verification.json"
        tasks.append(
            Task(
                "verification",
                "verification",
                modules=checked,
                config={"extra_fields": ["passed", "module"]},  # beside Check's, in every record it writes
                inputs=(),
                outputs=(verification,),
                action=partial(_save_checks, checked, verification),
            )
        )
        stage_tasks = tuple(t.name for t in tasks)
        presents = tuple(s.present for s in stages)
        epoch = os.environ.get("SOURCE_DATE_EPOCH")  # the title page's date may come from it
        supplement_templates = (
            templates / "supplement.tex.j2",
            *sorted((templates / crossref.SECTIONS).rglob("*.j2")),
        )
        supplement = supplement_templates[0].is_file()  # a project without one makes the report alone
        if supplement:
            tasks.append(
                Task(
                    "supplement",
                    "document",
                    modules=("report.supplement", *presents),
                    config={"git": git_commit(declared.root), "source_date_epoch": epoch},
                    inputs=stage_tasks,
                    outputs=(root / "supplement.pdf", root / crossref.TEXDIR),
                    action=partial(_build_supplement, self),
                    # The submission's section templates too: the supplement lists the tables they hold.
                    files=(*sorted(templates.rglob("*.j2")), *_declaration_files(declared)),
                    in_build=True,  # it reads the whole graph
                )
            )
        tasks.append(
            Task(
                "report",
                "document",
                modules=("report.document", *presents),
                # The supplement's structure, not its text: the section numbers and links the report cites.
                config={"source_date_epoch": epoch, "supplement": crossref.outline(stages, templates)},
                inputs=stage_tasks,
                outputs=(root / "report.pdf",),
                action=partial(_build_document, self),
                files=(
                    *sorted(set(templates.rglob("*.j2")) - set(supplement_templates)),
                    *_declaration_files(declared),
                ),
                in_build=True,  # it reads the whole graph
                after=("supplement",) if supplement else (),  # it reads supplement.aux for its links
            )
        )
        super().__init__(tasks, root, declared.root)

    def _stage_tasks(self, stage: Stage) -> Iterator[Task]:
        """The stage's shards and gather task (or its one data task), then its figures."""
        compute = stage.compute_module()
        if self.profile not in compute.PROFILES:
            raise ProjectError(
                f"stage {stage.stem!r} has no profile {self.profile!r} (it has: {', '.join(compute.PROFILES)})"
            )
        config = apply(stage.stem, compute.PROFILES[self.profile], self.overrides.get(stage.stem, {}))
        config = with_data(stage.stem, config, self.data, self.declared.data_hook())
        self.configs[stage.stem] = config
        try:  # what the data source reads, hashed with the code (none for the built-in process)
            inputs = source_files(getattr(config, "data", None), self.declared.root)
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

    def _analysis_task(self, analysis: Analysis) -> Task:
        """The task of a derived analysis: after its stage's data task, keyed by its own code."""
        stage = self.stage(analysis.stage, f"analysis {analysis.module!r} reads STAGE")
        return Task(
            analysis.stem,
            "analysis",
            modules=(analysis.module,),
            config={
                "claims": CLAIMS,
                "section": stage.compute,
            },  # where its claims are recorded, under which section
            inputs=(stage.stem,),
            outputs=(self.data_dir(analysis.stem),),
            action=partial(
                _analyze, analysis, stage, self.data_dir(stage.stem), self.data_dir(analysis.stem)
            ),
        )

    def stage(self, stem: str, who: str = "") -> Stage:
        """The stage named ``stem``; ``who`` names the one asking in the error."""
        for stage in self.stages:
            if stage.stem == stem:
                return stage
        stems = ", ".join(s.stem for s in self.stages)
        raise ProjectError(f"{who} {stem!r}, which is no stage (the stages: {stems})".strip())

    def analyses(self, stem: str) -> dict[str, Any]:
        """The loaded results of stage ``stem``'s derived analyses, by their stems (``context``'s keywords)."""
        return {
            a.stem: a.compute_module().load(self.data_dir(a.stem))
            for a in self.declared.analyses
            if a.stage == stem
        }

    def claims(self) -> list[str]:
        """The analyses with a ``check``: claims about computed results, recorded by their own tasks."""
        return [a.stem for a in self.declared.analyses if hasattr(a.compute_module(), "check")]

    def recorded_checks(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The check records of the last verification task and of the analyses' claims (of the tasks
        ``names`` among them, default all), each with ``passed`` and ``module`` (its section's compute
        module); a task that has not run records none."""
        names = set(self.tasks) if names is None else set(names)
        paths = [self.tasks["verification"].outputs[0]] if "verification" in names else []
        paths += [self.data_dir(stem) / CLAIMS for stem in self.claims() if stem in names]
        return [record for path in paths if path.exists() for record in json.loads(path.read_text())]

    def data_dir(self, stem: str) -> Path:
        return self.root / "data" / stem

    def figure_dir(self) -> Path:
        return self.root / "figures"

    def figure_path(self, name: str) -> Path:
        return self.figure_dir() / f"{name}.pdf"

    def texdir(self) -> Path:
        """Where the document's LaTeX is written and compiled."""
        return self.root / "tex"

    def figures(self) -> list[str]:
        return [t.name for t in self.tasks.values() if t.kind == "figure"]


def shard_task(stem: str, shard: str) -> str:
    """The task name of a stage's shard.

    >>> shard_task("double_descent", "n100-m20..23-s0..4")
    'double_descent[n100-m20..23-s0..4]'
    """
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


def _analyze(analysis: Analysis, stage: Stage, data_dir: Path, out: Path) -> None:
    """Analyze the stage's results, save them and, beside them, the records of the claims checked on them."""
    module = analysis.compute_module()
    result = module.analyze(stage.compute_module().load(data_dir))
    with cache.atomic_directory(out) as tmp:
        module.save(result, tmp)
        if hasattr(module, "check"):
            records = [record(c, stage.compute) for c in module.check(module.load(tmp))]
            cache.write_atomic(tmp / CLAIMS, json.dumps(records, indent=1).encode())


def _build_supplement(graph: "ReportGraph") -> None:
    from report import supplement  # PyLaTeX and the documents' code: only when the supplement is built

    supplement.build(graph)


def _build_document(graph: "ReportGraph") -> None:
    from report import document  # with the figure style (matplotlib): only when the document is built

    document.build(graph)


def _make_figure(stage: Stage, name: str, data_dir: Path, path: Path) -> None:
    from report import figures

    results = stage.compute_module().load(data_dir)
    figures.save_pdf(stage.present_module().FIGURES[name], results, path)


def run_checks(modules: Iterable[str]) -> list[Check]:
    return [check for name in modules for check in import_module(name).check()]


def record(check: Check, module: str) -> dict[str, Any]:
    """A check as the verification table reads it: its fields, whether it passed, the module of its section."""
    return dataclasses.asdict(check) | {"passed": check.passed, "module": module}


def claim_checks(graph: "ReportGraph") -> list[Check]:
    """Every analysis's ``check`` of its saved results, now."""
    found: list[Check] = []
    for analysis in graph.declared.analyses:
        module = analysis.compute_module()
        if hasattr(module, "check"):
            found += module.check(module.load(graph.data_dir(analysis.stem)))
    return found


def _save_checks(modules: tuple[str, ...], path: Path) -> None:
    checks = [record(c, name) for name in modules for c in import_module(name).check()]
    cache.write_atomic(path, json.dumps(checks, indent=1).encode())


def failed_checks(graph: "ReportGraph", names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The failed checks recorded by the verification task and the analyses' claims among the tasks ``names``
    (default all; none for a task that has not run)."""
    return [c for c in graph.recorded_checks(names) if not c["passed"]]


def check_names(names: list[str]) -> None:
    """Refuse a task name used twice, or one of the builder's own (:data:`RESERVED`).

    >>> check_names(["toy", "toy_fig", "toy"])
    Traceback (most recent call last):
    report.project.ProjectError: task name 'toy' is used twice (a stem, shard or figure name)
    """
    seen: set[str] = set()
    for name in names:
        if name in RESERVED:
            raise ProjectError(f"task name {name!r} is reserved for the builder ({', '.join(RESERVED)})")
        if name in seen:
            raise ProjectError(f"task name {name!r} is used twice (a stem, shard or figure name)")
        seen.add(name)


def _declaration_files(declared: Project) -> tuple[Path, ...]:
    """The files the document reads besides templates: the declaration (title defaults, notation) and
    the settings file (title page), when they exist."""
    files = (declared.root / DECLARATION, declared.settings_file)
    return tuple(f for f in files if f.is_file())


def git_commit(root: Path) -> str:
    """The commit of ``root`` (12 hex digits), with ``-dirty`` when tracked files have uncommitted changes.

    Read-only: ``git describe --dirty`` refreshes and rewrites ``.git/index``, which a build must not
    touch (an editor's or another git command's lock may be held); ``git status`` with
    ``GIT_OPTIONAL_LOCKS=0`` only reads it.
    """
    env = os.environ | {"GIT_OPTIONAL_LOCKS": "0"}

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, env=env)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit
