"""Scale-out: a whole build one task at a time against a local pool, and adding a seed to a sweep.

    python -m benchmarks.scale_out                  # quick profile, --jobs 1 against the default
    python -m benchmarks.scale_out full --jobs 2    # the submission's profile (long)
    python -m benchmarks.scale_out --only source --jobs 1   # only part 3

Every build goes into a fresh temporary directory (the project's build/ is not touched):

1. the whole report (every stage, figure, check and the PDF) from an empty cache with ``--jobs 1``
   and with ``--jobs N`` (default: the number of cores);
2. the double-descent sweep with one more seed than the profile has, once on top of the cached
   sweep (only new or changed shards and the gather run) and once with every shard rerun; for
   the next seed and for the first seed that opens a new seed block;
3. the whole report with the built-in data, with the example callable source
   (``examples/notebook_data.py:draw``) and with the built-in data again, in one build directory:
   the last finds every result in the result store and rebuilds only the report.

Wall-clock and CPU seconds (this process and its finished workers, from ``getrusage``) are
printed for each.  On a machine shared with other work the wall times are inflated and the CPU
times are the fairer measure of the work done.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from report import executors
from report.wiring import ReportGraph

SWEEP = "double_descent"


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(label: str, build: Callable[[], int]) -> tuple[float, float]:
    """Run ``build`` (it returns how many tasks ran); print and return its wall and CPU seconds."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    count = build()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"{label:<44} {wall:8.1f} s wall {cpu:8.1f} s CPU   {count:4d} task(s)", flush=True)
    return wall, cpu


def run(graph: ReportGraph, jobs: int, targets: list[str], force: list[str] = ()) -> int:
    """Bring ``targets`` up to date with ``jobs`` workers; the number of tasks that ran."""
    executor = executors.make(jobs)
    try:
        outcomes = graph.run(targets, force=force, log=lambda _: None, executor=executor)
    finally:
        executor.close()  # joins the workers, so that their CPU time is counted
    return sum(o.ran for o in outcomes)


def whole_build(profile: str, jobs: int, scratch: Path) -> None:
    for n in sorted({1, jobs}):
        graph = ReportGraph(profile, out=scratch / f"jobs{n}")
        measure(f"whole build, --jobs {n}", lambda graph=graph, n=n: run(graph, n, ["report"]))


def add_a_seed(profile: str, jobs: int, scratch: Path) -> None:
    """The sweep, then one more seed on top of it (only new shards run), then everything again.

    The next seed may join the last seed block and so change (and rerun) that block's shards; the
    first seed that opens a new block leaves every existing shard alone, and is measured too.
    """
    graph = ReportGraph(profile, out=scratch / "seeds")
    seeds = list(graph.configs[SWEEP].seeds)
    shards = len(graph.members(SWEEP))
    if not shards:
        print(f"{SWEEP} defines no shards: adding a seed reruns the whole sweep")
    measure(f"{SWEEP}, {len(seeds)} seed(s) ({shards} shards)", lambda: run(graph, jobs, [SWEEP]))
    for seed in sorted({max(seeds) + 1, _new_block(profile, seeds, scratch)}):
        more = {SWEEP: {"seeds": [*seeds, seed]}}
        grown = ReportGraph(profile, out=scratch / f"seed{seed}", overrides=more)
        for shard in graph.members(SWEEP):  # the cached sweep, as before the seed was added
            _copy_entry(graph, grown, shard)
        measure(f"  + seed {seed}: only new or changed shards", lambda grown=grown: run(grown, jobs, [SWEEP]))
        everything = [SWEEP, *grown.members(SWEEP)]
        measure(
            f"  + seed {seed}: all {len(everything) - 1} shards again",
            lambda grown=grown, everything=everything: run(grown, jobs, [SWEEP], force=everything),
        )


def _new_block(profile: str, seeds: list[int], scratch: Path) -> int:
    """The first seed above ``seeds`` whose shards leave every existing shard's name and key as they are."""
    before = ReportGraph(profile, out=scratch / "probe")
    old = {name: before.key(name) for name in before.members(SWEEP)}
    for seed in range(max(seeds) + 1, max(seeds) + 101):
        after = ReportGraph(profile, out=scratch / "probe", overrides={SWEEP: {"seeds": [*seeds, seed]}})
        if all(name in after.tasks and after.key(name) == key for name, key in old.items()):
            return seed
    return max(seeds) + 1


def _copy_entry(source: ReportGraph, target: ReportGraph, name: str) -> None:
    """Copy task ``name``'s manifest and outputs from one build directory to another."""
    if name not in target.tasks:
        return
    for src, dst in zip(source.tasks[name].outputs, target.tasks[name].outputs, strict=True):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    target.manifest(name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.manifest(name), target.manifest(name))


def switch_source(profile: str, jobs: int, scratch: Path) -> None:
    """The report from the built-in data, from the example callable, and from the built-in data again."""
    from report.settings import Settings, data_source

    builtin = data_source(Settings())
    notebook = data_source(Settings(data={"source": "examples/notebook_data.py:draw"}))
    for label, data in (("built-in", builtin), (notebook.spec, notebook), ("built-in again", builtin)):
        graph = ReportGraph(profile, out=scratch / "switch", data=data)
        measure(f"data source {label}", lambda graph=graph: run(graph, jobs, ["report"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", default="quick", choices=("quick", "full"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="the pool to compare with 1")
    parts = {"jobs": whole_build, "seed": add_a_seed, "source": switch_source}
    parser.add_argument("--only", choices=parts, action="append", help="run only this part (repeatable)")
    args = parser.parse_args(argv)
    print(f"profile {args.profile}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="scale-out-") as scratch:
        for name in args.only or parts:
            parts[name](args.profile, args.jobs, Path(scratch))


if __name__ == "__main__":
    main(sys.argv[1:])
