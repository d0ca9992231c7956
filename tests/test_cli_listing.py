"""``--dry-run`` and ``--list`` output: a stage's shards as one line under their stage, not one line each."""

from functools import partial
from pathlib import Path

import pytest

from report.listing import dry_run, task_table
from report.pipeline import Graph, Task


def _write(path: Path) -> None:
    path.write_text(path.name)


@pytest.fixture
def graph(tmp_path) -> Graph:
    """A stage ``s`` gathered from three shards, and a figure of it."""

    def task(name: str, kind: str, inputs: tuple[str, ...] = (), group: str | None = None) -> Task:
        out = tmp_path / f"{name}.txt"
        return Task(name, kind, (), {"n": name}, inputs, (out,), partial(_write, out), group=group)

    shards = [task(f"s[{x}]", "shard", group="s") for x in "abc"]
    tasks = [*shards, task("s", "data", tuple(t.name for t in shards)), task("fig", "figure", ("s",))]
    return Graph(tasks, tmp_path, tmp_path)


def test_dry_run_lists_stale_shards_as_one_line_under_their_stage(graph):
    graph.run(["s[a]"], log=lambda _: None)
    lines = dry_run(graph, ["fig"], set())
    assert lines == [
        "[1/2] s",
        "      + 2 of 3 shards",
        "[2/2] fig",
        "4 task(s) would run (2 of them shards), 1 cached",
    ]


def test_dry_run_sums_the_shards_last_times_and_explains_each(graph):
    graph.run(["fig"], log=lambda _: None)
    lines = dry_run(graph, ["fig"], {"s", "s[a]", "s[b]", "s[c]"}, explain=True)
    assert lines[0].startswith("[1/1] s (~") and lines[1] == "    why: forced (--force or --figure)"
    assert lines[2].startswith("      + 3 shards (~") and lines[2].endswith(" s last time, summed)")
    assert lines[3:6] == [f"        s[{x}]: forced (--force or --figure)" for x in "abc"]
    assert lines[-1] == "4 task(s) would run (3 of them shards), 1 cached"


def test_dry_run_of_a_shard_alone_names_its_stage(graph):
    assert dry_run(graph, ["s[b]"], set()) == [
        "[1/1] s (only its shards run)",
        "      + 1 of 3 shards",
        "1 task(s) would run (1 of them shards), 0 cached",
    ]


def test_list_shows_the_shards_as_one_row_with_how_many_are_stale(graph):
    graph.run(["s[a]"], log=lambda _: None)
    rows = [row.split() for row in task_table(graph)]
    assert [row[0] for row in rows] == ["task", "s", "+", "fig"]
    assert rows[2][:6] == ["+", "3", "shards", "shard", "2", "stale"]
