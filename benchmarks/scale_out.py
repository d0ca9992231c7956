"""Scale-out: a whole build one task at a time against a local pool, and adding a seed to a sweep.

    python -m benchmarks.scale_out                  # quick profile, --jobs 1 against the default
    python -m benchmarks.scale_out full --jobs 2    # the submission's profile (long)

Every build goes into a fresh temporary directory (the project's build/ is not touched):

1. the whole report (every stage, figure, check and the PDF) from an empty cache with ``--jobs 1``
   and with ``--jobs N`` (default: the number of cores);
2. the double-descent sweep with one more seed than the profile has, once on top of the cached
   sweep (only the new seed's shards and the gather run) and once from scratch.

Wall-clock and CPU seconds (this process and its finished workers, from ``getrusage``) are
printed for each.  On a machine shared with other work the wall times are inflated and the CPU
times are the fairer measure of the work done.
"""

import argparse
import os
import resource
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
    graph = ReportGraph(profile, out=scratch / "seeds")
    seeds = list(graph.configs[SWEEP].seeds)
    more = {SWEEP: {"seeds": [*seeds, max(seeds) + 1]}}
    shards = len(graph.members(SWEEP))
    if not shards:
        print(f"{SWEEP} defines no shards: adding a seed reruns the whole sweep")
    measure(f"{SWEEP}, {len(seeds)} seeds ({shards} shards)", lambda: run(graph, jobs, [SWEEP]))
    grown = ReportGraph(profile, out=scratch / "seeds", overrides=more)
    measure(f"  + seed {max(seeds) + 1}: only the new shards", lambda: run(grown, jobs, [SWEEP]))
    rerun = ReportGraph(profile, out=scratch / "seeds", overrides=more)
    everything = [SWEEP, *rerun.members(SWEEP)]
    measure(
        f"  + seed {max(seeds) + 1}: all {len(everything) - 1} shards again",
        lambda: run(rerun, jobs, [SWEEP], force=everything),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", nargs="?", default="quick", choices=("quick", "full"))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="the pool to compare with 1")
    args = parser.parse_args(argv)
    print(f"profile {args.profile}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="scale-out-") as scratch:
        whole_build(args.profile, args.jobs, Path(scratch))
        add_a_seed(args.profile, args.jobs, Path(scratch))


if __name__ == "__main__":
    main(sys.argv[1:])
