"""What ``build.py --list`` and ``--dry-run`` print: tasks in dependency order, a stage's shards as one
line under their stage (a sweep has dozens), each stale one with its reason when asked (``--explain``)."""

from pathlib import Path

from report import cache
from report.explain import reason
from report.pipeline import Graph


def relative(path: Path) -> str:
    """``path`` from the working directory when it lies below it (shorter to read)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _shard_reasons(graph: Graph, shards: list[str], forced: set[str], indent: int = 4) -> list[str]:
    return [f"{'':<{indent}}{shard}: {reason(graph, shard, shard in forced)}" for shard in shards]


def task_table(graph: Graph, explain: bool = False) -> list[str]:
    """Every task with its kind, state (cached or stale) and outputs."""
    lines = [f"{'task':<28} {'kind':<13} {'state':<7} outputs"]
    for name, task in graph.tasks.items():
        if task.group is not None:
            continue
        state = "cached" if graph.is_cached(name) else "stale"
        lines.append(f"{name:<28} {task.kind:<13} {state:<7} {', '.join(relative(p) for p in task.outputs)}")
        if explain and state == "stale":
            lines.append(f"{'':<28} why: {reason(graph, name)}")
        if shards := graph.members(name):
            stale = [s for s in shards if not graph.is_cached(s)]
            where = relative(graph.tasks[shards[0]].outputs[0].parent)
            label = f"  + {len(shards)} shards"
            state = "cached" if not stale else "stale" if len(stale) == len(shards) else f"{len(stale)} stale"
            lines.append(f"{label:<28} {'shard':<13} {state:<7} {where}/")
            lines += _shard_reasons(graph, stale, set()) if explain else []
    return lines


def _seconds_last_time(graph: Graph, names: list[str]) -> str:
    """`` (~1234 s last time, summed)`` over the tasks that have a manifest, or nothing."""
    records = [cache.read_manifest(graph.manifest(n)) for n in names]
    seconds = [r["seconds"] for r in records if r and "seconds" in r]
    return f" (~{sum(seconds):.0f} s last time, summed)" if seconds else ""


def dry_run(graph: Graph, targets: list[str], force: set[str], explain: bool = False) -> list[str]:
    """The tasks a build of ``targets`` would run, numbered, each with its runtime last time; a
    stage's stale shards as one ``+ N shards`` line under it (under the stage's name alone when only
    shards would run), then a count."""
    stale = graph.stale(targets, force)
    stale_set = set(stale)
    shards: dict[str, list[str]] = {}  # stage -> its stale shards
    entries: list[str] = []  # stale tasks that are not shards, and stages of which only shards run
    for name in stale:
        group = graph.tasks[name].group
        if group is None:
            entries.append(name)
        else:
            if group not in shards and group not in stale_set:
                entries.append(group)
            shards.setdefault(group, []).append(name)
    lines = []
    for i, name in enumerate(entries, start=1):
        runs = name in stale_set
        tail = graph.last_time(name) if runs else " (only its shards run)"
        lines.append(f"[{i}/{len(entries)}] {name}{tail}")
        if explain and runs:
            lines.append(f"    why: {reason(graph, name, name in force)}")
        if members := shards.get(name):
            total = len(graph.members(name))
            count = f"{len(members)}" if len(members) == total else f"{len(members)} of {total}"
            lines.append(f"      + {count} shards{_seconds_last_time(graph, members)}")
            lines += _shard_reasons(graph, members, force, indent=8) if explain else []
    n_shards = sum(map(len, shards.values()))
    of_them = f" ({n_shards} of them shards)" if n_shards else ""
    cached = len(graph.closure(targets)) - len(stale)
    lines.append(f"{len(stale)} task(s) would run{of_them}, {cached} cached")
    return lines
