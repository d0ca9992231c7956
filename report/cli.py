"""The command line: ``python build.py`` and ``nndl-report`` (see ``--help``).

:func:`main` parses, validates what was asked against the project's declared stages and tasks,
makes one call into the builder and returns the exit code; every failure leaves through one error
path, :func:`_error`.  Start-up is lazy: this module imports only the standard library, and the
builder's modules are imported once the arguments are parsed, so ``--help`` and a command-line
error cost nothing; torch and matplotlib are imported only by the tasks that need them.
"""

import argparse
import difflib
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from report.paths import ROOT
from report.project import Project, ProjectError, load

if TYPE_CHECKING:
    from report.pipeline import Outcome
    from report.wiring import ReportGraph

DOCUMENTS = ("supplement", "report")  # what a build without targets makes: the evidence, then the submission


def main_parser(declared: Project | None = None) -> argparse.ArgumentParser:
    """The parser; its help names ``declared``'s profiles and stages (default: this repository's)."""
    declared = declared or load(ROOT)
    stems = ", ".join(s.stem for s in declared.stages)
    parser = argparse.ArgumentParser(
        prog="build.py",
        description=(
            "Turn the code of the stages project.py declares into the typeset report.\n"
            "Every step is a cached task (a computation, a figure, the checks, the\n"
            "document): it reruns only when its code, configuration or inputs change.\n"
            "A sweep is split into shards, cached tasks of their own; independent tasks\n"
            "run in parallel (--jobs) or on a Dask cluster (--scheduler).\n\n"
            "settings.toml holds the title page, the experiments' data ([data] source)\n"
            "and configuration overrides ([overrides.<stage>]); see README.md."
        ),
        epilog=(
            "examples:\n"
            "  python build.py                    the full report -> build/report.pdf\n"
            "                                     (about 9 min on 2 cores from an empty\n"
            "                                     cache; seconds when nothing changed)\n"
            "  python build.py --profile quick    small configurations, ~30 s\n"
            "                                     -> build/quick/report.pdf\n"
            "  python build.py --dry-run --explain   what would run, and why\n"
            "  python build.py --figure dd_curve  one figure -> build/figures/dd_curve.pdf\n"
            "  python build.py --force double_descent   retrain although cached\n"
            "  python build.py --set sgd_implicit_reg.stopping.max_epochs=5000\n"
            "                                     one configuration field changed\n"
            "  python build.py --scheduler tcp://10.0.0.5:8786\n"
            "                                     shards on a Dask cluster, the rest here\n\n"
            "Outputs live in build/ (full) or build/<profile>/: data/, figures/, tex/,\n"
            "report.pdf; cache/ holds the shards' results and every task's manifest."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        help=f"configuration size, one of {', '.join(declared.profiles)}: the first is the submission's"
        " (into build/), any other into build/<profile>/, e.g. 'quick' for tests and fast iteration"
        f" (default: {declared.profiles[0]})",
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=ROOT,
        metavar="DIR",
        help="the project to build: a directory whose project.py declares its stages (default: the one"
        " this builder is shipped with)",
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TASK",
        help="tasks to bring up to date, with what they need (default: supplement and report, the PDFs);"
        " names as --list shows them, e.g. double_descent or dd_curve",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--verify",
        action="store_true",
        help="run every derivation's checks now (never cached) and every claim about computed results (ANALYSES"
        " in project.py) on its analysis, print a table, exit 1 on a failure; an analysis that is stale is"
        " computed first, with what it needs (e.g. a training sweep: minutes, with progress)",
    )
    what.add_argument(
        "--figure",
        action="append",
        metavar="NAME",
        help="regenerate only this figure (repeatable; names: --list, kind 'figure'); its data is"
        " recomputed only if stale; report.pdf and supplement.pdf are left as they were",
    )
    what.add_argument(
        "--list",
        action="store_true",
        help="list every task with its kind, state (cached or stale) and outputs, a stage's shards as one"
        " row, and exit",
    )
    parser.add_argument(
        "--force",
        nargs="*",
        metavar="NAME",
        help="recompute the named tasks (a stage: with its shards) even if cached; with no name,"
        " everything needed; names after it are taken as tasks to force, so put targets first",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the tasks that would run, with their runtimes last time (a stage's shards as one"
        " line, summed), and run nothing",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="say why each stale task runs (changed configuration fields, source modules, inputs, or no cache"
        " entry); with --list or --dry-run, in their listing",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="STAGE.FIELD=VALUE",
        help="override one configuration field (repeatable), e.g. --set double_descent.seeds=[0,1,2]; a dotted"
        " path reaches a nested group, e.g. sgd_implicit_reg.stopping.max_epochs=5000; VALUE is TOML"
        f" (quote lists in the shell); stages: {stems}; a wrong field's error"
        " lists the valid ones; also [overrides.<stage>] tables in settings.toml",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="build, then rebuild whenever something the project's WATCH names, the builder (report/),"
        " project.py, settings.toml or the [data] source's file changes (Ctrl-C stops)",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="after the build, write <build dir>/submission.zip: report.tex and supplement.tex, each"
        " self-contained, their figures beside them, supplement.aux for the links, and the built PDFs"
        " (for a course system, Overleaf or arXiv)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="when a task fails, still run every task that does not depend on it; list the failures at the end",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="when a build of the same profile is already running (one per build directory), wait for it"
        " instead of stopping with an error",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=os.cpu_count() or 1,
        metavar="N",
        help="run up to N independent tasks at once in worker processes, each with cores/N torch threads"
        " (default: the number of cores, here %(default)s); 1 runs them one by one in this process",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
        help="send sweep shards to the dask.distributed scheduler at ADDRESS (e.g. tcp://10.0.0.5:8786;"
        " default: $DASK_SCHEDULER_ADDRESS); results land in the same cache as a local build's; needs"
        " pip install -e '.[distributed]'",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a task fails")
    _add_store_arguments(parser)
    return parser


# --- The result store (report/store.py): where it lives, pruning, export and import -------------


def _add_store_arguments(parser: argparse.ArgumentParser) -> None:
    store = parser.add_argument_group("result store (every result kept by its key; see README.md)")
    store.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the result store's directory, which several builds may share (default: settings.toml's"
        " [cache] dir, else <build dir>/store)",
    )
    store.add_argument(
        "--prune",
        metavar="RULE",
        help="remove store entries unused for an age (30d, 12h) or the least recently used ones beyond a"
        " size (500MB, 2GB), never those the build directory holds; with --dry-run, only list them; then exit",
    )
    store.add_argument(
        "--export-cache",
        metavar="FILE.zip",
        help="write the store's entries of this profile's tasks (current keys) into one zip, then exit",
    )
    store.add_argument(
        "--import-cache",
        metavar="FILE.zip",
        help="add the entries of a zip written by --export-cache to the store (each checked against its"
        " key first), then build as usual: those results are copied, not computed",
    )


def _store_commands(args: argparse.Namespace, graph: "ReportGraph") -> int | None:
    """Run ``--import-cache``, ``--prune`` and ``--export-cache``; an exit code when the build stops here."""
    from report.cache import read_manifest
    from report.listing import relative
    from report.store import parse_age, parse_size

    if args.import_cache:
        added, refused = graph.store.import_archive(Path(args.import_cache))
        print(f"imported {added} store entr{'y' if added == 1 else 'ies'} from {args.import_cache}")
        for why in refused:
            print(f"refused: {why}", file=sys.stderr)
    if args.prune:
        try:
            rule = {"max_bytes": parse_size(args.prune)} if args.prune[-1:] in "bB" else {}
            rule = rule or {"older_than": parse_age(args.prune)}
        except ValueError as err:
            return _error(f"--prune: {err}", 2)
        current = [r["key"] for m in graph.root.glob("cache/*.json") if (r := read_manifest(m))]
        removed = graph.store.prune(**rule, keep=current, dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        for e in removed:
            print(
                f"{verb} {e.key[:12]} {e.task:<40} {e.size / 2**20:8.2f} MiB  last used {time.ctime(e.used)}"
            )
        mib = sum(e.size for e in removed) / 2**20
        entries = f"{len(removed)} entr{'y' if len(removed) == 1 else 'ies'}"
        print(f"{verb} {entries}, {mib:.2f} MiB, from {relative(graph.store.directory)}")
        return 0
    if args.export_cache:
        keys = [graph.key(name) for name in graph.tasks if not graph.tasks[name].in_build]
        count = graph.store.export(keys, Path(args.export_cache))
        print(
            f"wrote {args.export_cache}: {count} of {len(keys)} tasks' results (build first for the others)"
        )
        return 0
    return None


# -------------------------------------------------------------------------------------------------


class UsageError(Exception):
    """The command line asks for something the project does not have (exit 2, like argparse's errors);
    ``usage`` False for a problem of the settings, which the usage text would not help with."""

    def __init__(self, message: str, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


def _origin(message: str, assignments: Sequence[str], settings_file: Path) -> str:
    """``message`` (an override's error, starting with its ``stage.field``) with where that field was set:
    ``--set`` when the command line sets it (or something inside it), else the settings file.

    >>> _origin("toy: tol must be finite", ["toy.stop.tol=nan"], Path("settings.toml"))
    '--set toy.stop.tol=nan: toy: tol must be finite'
    >>> _origin("toy.stopping: tol must be finite", ["other.x=1"], Path("p/settings.toml"))
    'p/settings.toml [overrides.toy]: toy.stopping: tol must be finite'
    """
    where = message.split(":", 1)[0].split(" ", 1)[0]
    named = [
        a.strip()
        for a in assignments
        if (f := a.partition("=")[0].strip()) == where
        or f.startswith(f"{where}.")
        or where.startswith(f"{f}.")
    ]
    if named:
        return f"--set {', '.join(named)}: {message}"
    return f"{settings_file} [overrides.{where.split('.')[0]}]: {message}"


@dataclass
class Request:
    """A validated command line: the graph and what to do with it."""

    graph: "ReportGraph"
    targets: list[str] = field(default_factory=list)
    force: set[str] = field(default_factory=set)
    page_limit: int | None = None  # settings.toml's page_limit for the submission (None: no limit)


def _unknown(kind: str, names: list[str], valid: list[str]) -> str:
    """``unknown figure(s) x; did you mean y?`` with the near misses, or the valid names.

    >>> _unknown("figure", ["dd-curve"], ["dd_curve", "sgd_convergence"])
    'unknown figure(s) dd-curve; did you mean dd_curve?'
    >>> _unknown("task", ["x"], ["report", "verification"])
    'unknown task(s) x; valid names: report, verification'
    """
    near = [m for n in names for m in difflib.get_close_matches(n, valid, n=1)]
    hint = f"did you mean {', '.join(near)}?" if near else f"valid names: {', '.join(valid)}"
    return f"unknown {kind}(s) {', '.join(names)}; {hint}"


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def validate(args: argparse.Namespace) -> Request:
    """The graph and the targets ``args`` ask for; :class:`UsageError` for anything the project lacks."""
    from report import settings
    from report.overrides import OverrideError, merge
    from report.overrides import parse as parse_overrides
    from report.settings import SettingsError
    from report.wiring import ReportGraph

    if args.force is not None and (args.list or args.verify):
        raise UsageError("--force has no effect with --list or --verify (they never compute)")
    try:
        declared = load(args.project)
        profile = args.profile or declared.profiles[0]
        if profile not in declared.profiles:
            choices = ", ".join(map(repr, declared.profiles))
            raise UsageError(f"argument --profile: invalid choice: {profile!r} (choose from {choices})")
        loaded = settings.load(declared.settings_file)
        overrides = merge(loaded.overrides, parse_overrides(args.set))
        data = settings.data_source(
            loaded, declared, run=not (args.list or args.dry_run)
        )  # listing runs no user code
        graph = ReportGraph(profile, declared, overrides=overrides, data=data)
        if directory := args.cache_dir or loaded.cache.get("dir"):  # relative: to the command / the project
            from report.store import Store

            graph.store = Store(
                Path(args.cache_dir).resolve() if args.cache_dir else declared.root / directory
            )
    except OverrideError as err:
        message = _origin(str(err), args.set, _shown(declared.settings_file))
        raise UsageError(message, usage=False) from err
    except (SettingsError, ProjectError) as err:
        raise UsageError(str(err), usage=False) from err
    if unknown := sorted(set(args.figure or ()) - set(graph.figures())):
        raise UsageError(_unknown("figure", unknown, graph.figures()))
    if unknown := sorted(set(args.targets) - set(graph.tasks)):
        raise UsageError(_unknown("task", unknown, list(graph.tasks)))
    targets = [*args.targets, *(args.figure or ())] or [d for d in DOCUMENTS if d in graph.tasks]
    if args.export and "report" not in targets:
        raise UsageError("--export bundles the report: use it without targets other than report, or --figure")
    force = set(args.figure or ())
    if args.force is not None:
        if bad := sorted(set(args.force) - set(graph.tasks)):
            raise UsageError(_unknown("task", bad, list(graph.tasks)))
        force |= set(args.force) if args.force else set(graph.closure(targets))
        force |= {shard for name in args.force for shard in graph.members(name)}
    return Request(graph, targets, force, loaded.page_limit)


def _shown(path: Path) -> Path:
    """``path`` relative to the working directory when inside it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def _verify(args: argparse.Namespace, request: Request) -> int:
    """Run every derivation's checks now; bring the analyses with claims up to date (a build of them and what
    they need, with its progress and summary) and check their claims; print the table; the exit code."""
    from report.wiring import claim_checks, run_checks

    graph = request.graph
    if names := graph.claims():
        print(f"the claims about computed results read {', '.join(names)}: bringing them up to date")
        if code := _build(args, Request(graph, names), verifying=True):
            return code
    checks = run_checks(graph.checked) + claim_checks(graph)
    width = max(len(c.name) for c in checks)
    mwidth = max(len(c.method) for c in checks)
    print(f"{'check':<{width}}  {'method':<{mwidth}}  {'max error':>10}  {'tolerance':>10}  result")
    for c in checks:
        result = "pass" if c.passed else "FAIL"
        print(f"{c.name:<{width}}  {c.method:<{mwidth}}  {c.error:10.2e}  {c.tolerance:10.2e}  {result}")
    failed = [c for c in checks if not c.passed]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    return 1 if failed else 0


def _summary(outcomes: "list[Outcome]", seconds: float) -> str:
    ran = [o for o in outcomes if o.ran]
    failed = [o for o in outcomes if o.error]
    skipped = [o for o in outcomes if o.skipped]
    restored = [o for o in outcomes if o.restored]
    width = max([28, *(len(o.task) + 1 for o in outcomes)])  # long shard names keep the columns aligned
    lines = [f"  ran     {o.task:<{width}} {o.seconds:8.1f} s" for o in ran]
    lines += [f"  FAILED  {o.task:<{width}} {o.error.splitlines()[0]}" for o in failed]
    lines += [f"  skipped {o.task:<{width}} (an input failed)" for o in skipped]
    cached = len(outcomes) - len(ran) - len(failed) - len(skipped) - len(restored)
    tail = f", {len(failed)} failed, {len(skipped)} skipped" if failed or skipped else ""
    stored = f", {len(restored)} from the store" if restored else ""
    lines.append(f"{len(ran)} task(s) ran{stored}, {cached} cached{tail}, {seconds:.1f} s in total")
    return "\n".join(lines)


def _build(args: argparse.Namespace, request: Request, verifying: bool = False) -> int:
    """Bring the request's targets up to date and say what was written; the exit code (non-zero on a failed
    check among them too).  ``verifying``: for ``--verify``, whose table reports the checks and which leaves
    the documents alone by design (no note on them)."""
    from report import executors, pages, progress
    from report.export import write_bundle
    from report.latex import require_tools
    from report.listing import relative
    from report.lock import build_lock, stop_on_signals
    from report.wiring import failed_checks

    graph, targets = request.graph, request.targets
    start = time.perf_counter()
    if set(DOCUMENTS) & set(graph.closure(targets)):
        require_tools()  # before minutes of computation, not after
    others = [graph.declared.build_dir(p) for p in graph.declared.profiles]
    with build_lock(graph.root, wait=args.wait, others=others), stop_on_signals():
        board = progress.Board()  # one display; every process running a task reports to it
        executors.SEND = board.event
        try:
            executor = executors.make(args.jobs, args.scheduler)
            try:
                outcomes = graph.run(
                    targets,
                    force=request.force,
                    keep_going=args.keep_going,
                    executor=executor,
                    log=board.log,
                    display=board,
                )
            finally:
                executor.close()
        finally:
            board.close()
            executors.SEND = None
        print(_summary(outcomes, time.perf_counter() - start))
        if any(o.error or o.skipped for o in outcomes):
            return 1
        for name in targets:
            print(f"wrote {relative(graph.tasks[name].outputs[0])}")
        if args.export:  # under the lock: no other build rewrites tex/ meanwhile
            print(f"wrote {relative(write_bundle(graph, graph.root / 'submission.zip'))}")
    for document in (
        d for d in DOCUMENTS if d in graph.tasks and not verifying
    ):  # a project may have no supplement
        pdf = graph.tasks[document].outputs[0]
        if document not in graph.closure(targets) and pdf.exists():
            print(f"note: {relative(pdf)} was not updated (build without targets or --figure to update it)")
    if not verifying and {"verification", *graph.claims()} & set(graph.closure(targets)):
        failed = failed_checks(graph, graph.closure(targets))
        for check in failed:
            print(
                f"FAILED check: {check['name']} ({check['method']}): error {check['error']:.2e} "
                f"> tolerance {check['tolerance']:.2e}",
                file=sys.stderr,
            )
        if failed:
            return _error(f"{len(failed)} check(s) failed; the PDF marks them")
    if "report" in graph.closure(targets) and (
        too_long := pages.over_limit(graph.tasks["report"].outputs[0], request.page_limit)
    ):
        return _error(too_long)
    return 0


def run(args: argparse.Namespace, request: Request) -> int:
    """The one call into the builder: list, verify, dry-run or build what ``request`` asks for."""
    from report.explain import reason
    from report.listing import dry_run, task_table
    from report.overrides import describe

    graph = request.graph
    for line in describe(graph.overrides):
        print(f"override: {line}")
    if (code := _store_commands(args, graph)) is not None:
        return code
    if args.verify:
        return _verify(args, request)
    if args.list:
        print("\n".join(task_table(graph, args.explain)))
        return 0
    if args.dry_run:
        print("\n".join(dry_run(graph, request.targets, request.force, args.explain)))
        return 0
    if args.explain:
        for name in graph.stale(request.targets, request.force):
            print(f"{name} runs: {reason(graph, name, name in request.force)}")
    return _build(args, request)


def _error(message: str, code: int = 1) -> int:
    """The one way out after a failure: ``error: message`` on standard error, and the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


def _failure(err: BaseException) -> str:
    """What a failed build says, in one paragraph."""
    from report.executors import TaskError

    if isinstance(err, TaskError):
        return f"{err}\n  (run with --debug for the full traceback)"
    if isinstance(err, OSError):
        return f"{err.strerror or err}: {err.filename or ''} (the last good PDF is kept)"
    return str(err)


def main(cli_args: Sequence[str] | None = None) -> int:
    """Parse, validate, make one call into the builder, return the exit code."""
    parser = main_parser()
    args = parser.parse_args(cli_args)
    if args.watch:
        from report.watch import watch, watched

        argv = [a for a in (sys.argv[1:] if cli_args is None else cli_args) if a != "--watch"]
        with _terminate_as_interrupt():  # SIGTERM ends the watcher and its build, as Ctrl-C does
            return watch(argv, targets=lambda: watched(load(args.project)))
    from report.executors import ExecutorError, TaskError
    from report.export import ExportError
    from report.latex import LatexError
    from report.lock import BuildLocked, Stop
    from report.render import TemplateError

    checking = True  # the settings, overrides and data source, before anything is built
    try:
        with _terminate_as_interrupt() as received:
            request = validate(args)
            checking = False
            return run(args, request)
    except UsageError as err:
        if err.usage:
            parser.error(str(err))
        return _error(str(err), 2)
    except KeyboardInterrupt:
        if checking:
            message = "interrupted while checking the settings and the data source; nothing was built"
        else:
            message = "interrupted: finished tasks stay cached, unfinished ones left nothing behind"
        return _error(message, 128 + (Stop.signal or received.get("signal") or signal.SIGINT))
    except (BuildLocked, ExecutorError, ExportError, LatexError, TemplateError, TaskError, OSError) as err:
        if args.debug and isinstance(err, TaskError | OSError):
            raise
        return _error(_failure(err))


@contextmanager
def _terminate_as_interrupt() -> Iterator[dict[str, int]]:
    """Within the block SIGTERM stops as Ctrl-C does (a ``KeyboardInterrupt``, one line, exit 143), also
    while the settings are checked, before the build's own handlers; the dict records the signal."""
    received: dict[str, int] = {}

    def handler(signum: int, _frame: object) -> None:
        received["signal"] = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def entrypoint() -> None:
    """``nndl-report``: :func:`main` with its exit code; quiet when the output's reader stops early."""
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(1)


if __name__ == "__main__":
    entrypoint()
