"""What ``build.py --list`` and ``--dry-run`` print: tasks in dependency order, a stage's shards as one
line under their stage (a sweep has dozens), each stale one with its reason when asked (``--explain``).

A task's state is ``cached`` (its result is in the build directory), ``restored`` (it is, copied
from an earlier entry of the store), ``stored`` (it is not, but the store holds the result for its
key: a build copies it and runs nothing) or ``stale`` (a build computes it).
"""

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from report import cache
from report.explain import reason
from report.pipeline import Graph


def relative(path: Path) -> str:
    """``path`` from the working directory when it lies below it (shorter to read)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _shard_reasons(graph: Graph, shards: list[str], forced: set[str], indent: int = 4) -> list[str]:
    return [f"{'':<{indent}}{shard}: {reason(graph, shard, shard in forced)}" for shard in shards]


def state(graph: Graph, name: str) -> str:
    """``cached``, ``restored``, ``stored`` or ``stale`` (see the module's docstring)."""
    if graph.is_cached(name):
        return "restored" if graph.restored(name) else "cached"
    return "stored" if graph.stored(name) else "stale"


def _provenance(graph: Graph, name: str, state: str) -> str | None:
    """Where an earlier entry's result comes from, for ``--explain``."""
    if state == "restored":
        return f"from the store: computed {graph.restored(name)}, copied back by a later build"
    if state == "stored":
        record = graph.stored(name) or {}
        return f"in the store: computed {record.get('computed', 'in an earlier run')}; a build copies it back"
    return None


def task_table(graph: Graph, explain: bool = False) -> list[str]:
    """Every task with its kind, state and outputs."""
    width = max([28, *(len(n) + 1 for n, t in graph.tasks.items() if t.group is None)])
    lines = [f"{'task':<{width}} {'kind':<13} {'state':<8} outputs"]
    for name, task in graph.tasks.items():
        if task.group is not None:
            continue
        now = state(graph, name)
        lines.append(
            f"{name:<{width}} {task.kind:<13} {now:<8} {', '.join(relative(p) for p in task.outputs)}"
        )
        if explain and now == "stale":
            lines.append(f"{'':<{width}} why: {reason(graph, name)}")
        elif explain and (where := _provenance(graph, name, now)):
            lines.append(f"{'':<{width}} {where}")
        if shards := graph.members(name):
            states = {s: state(graph, s) for s in shards}
            where = relative(graph.tasks[shards[0]].outputs[0].parent)
            label = f"  + {len(shards)} shards"
            lines.append(f"{label:<{width}} {'shard':<13} {_summed(states.values()):<8} {where}/")
            stale = [s for s, st in states.items() if st == "stale"]
            lines += _shard_reasons(graph, stale, set()) if explain else []
            if explain:
                lines += [
                    f"    {s}: {_provenance(graph, s, st)}"
                    for s, st in states.items()
                    if st in ("restored", "stored")
                ]
    return lines


def _summed(states: Iterable[str]) -> str:
    """One state for a stage's shards: the common one, else the count of each, e.g. ``3 stale``."""
    counts = Counter(states)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "cached")


def _seconds_last_time(graph: Graph, names: list[str]) -> str:
    """`` (~1234 s last time, summed)`` over the tasks that have a manifest, or nothing."""
    records = [cache.read_manifest(graph.manifest(n)) for n in names]
    seconds = [r["seconds"] for r in records if r and "seconds" in r]
    return f" (~{sum(seconds):.0f} s last time, summed)" if seconds else ""


def dry_run(graph: Graph, targets: list[str], force: set[str], explain: bool = False) -> list[str]:
    """The tasks a build of ``targets`` would run, numbered, each with its runtime last time; a
    stage's stale shards as one ``+ N shards`` line under it (under the stage's name alone when only
    shards would run), then a count; tasks whose result the store holds are counted apart (with
    ``explain``, listed)."""
    needed = graph.stale(targets, force)
    from_store = [n for n in needed if n not in force and graph.stored(n)]
    stale = [n for n in needed if n not in from_store]
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
    if explain:
        lines += [f"from the store: {name} ({_provenance(graph, name, 'stored')})" for name in from_store]
    n_shards = sum(map(len, shards.values()))
    of_them = f" ({n_shards} of them shards)" if n_shards else ""
    stored = f", {len(from_store)} from the store" if from_store else ""
    cached = len(graph.closure(targets)) - len(needed)
    lines.append(f"{len(stale)} task(s) would run{of_them}{stored}, {cached} cached")
    return lines
