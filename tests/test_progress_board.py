"""The build's one progress display: a line per running task on a terminal, start and end lines in
a log, fed by counters in the build process and in its workers."""

import io
from functools import partial
from pathlib import Path

import pytest

from lab import progress as hook
from report import executors, progress
from report.cli import _summary
from report.executors import InProcess, Job, LocalPool
from report.pipeline import Outcome


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def message(task: str, n: int, total: int | None = 10, closed: bool = False) -> dict:
    return {"task": task, "desc": "N=100", "n": n, "total": total, "postfix": "active=3", "closed": closed}


def test_a_log_gets_a_start_line_an_end_line_with_its_time_and_no_redraws(monkeypatch):
    log = io.StringIO()
    board = progress.Board(log)
    board.started("dd[n100]", "[1/2] dd[n100]")
    for n in range(5):
        board.event(message("dd[n100]", n))
    board.finished("dd[n100]", 12.34)
    assert log.getvalue().splitlines() == ["[1/2] dd[n100]", "done dd[n100] in 12.3 s"]
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)  # a long task: its counter now and then
    board.started("sgd[b]", "[2/2] sgd[b]")
    board.event(message("sgd[b]", 7))
    board.finished("sgd[b]", None)
    assert log.getvalue().splitlines()[3:] == ["  sgd[b]: N=100 7/10 active=3 (0 s)", "failed sgd[b]"]


def test_a_terminal_gets_one_line_per_running_task_cleared_when_it_ends():
    screen = Terminal()
    board = progress.Board(screen)
    board.started("a[1]", "[1/2] a[1]")
    board.started("b-with-a-long-shard-name[n200-m4..10-s0..4]", "[2/2] b")
    board.event(message("a[1]", 3))
    board.event(message("b-with-a-long-shard-name[n200-m4..10-s0..4]", 4, total=None))
    assert sorted(board.bars) == ["a[1]", "b-with-a-long-shard-name[n200-m4..10-s0..4]"]
    assert "a[1] | N=100 3/10 active=3" in screen.getvalue()
    assert "b-with-a-long-shard-name[n200-m4..10-s0..4] | N=100 4 active=3" in screen.getvalue()
    board.finished("a[1]", 1.0)
    board.event(message("a[1]", 9))  # late: ignored
    assert list(board.bars) == ["b-with-a-long-shard-name[n200-m4..10-s0..4]"]
    board.close()
    assert board.bars == {}


def count(n: int) -> int:
    """A job that counts ``n`` steps through the compute modules' progress hook."""
    with hook.bar(total=n, desc="steps") as bar:
        for _ in range(n):
            bar.update()
    return n


@pytest.mark.parametrize("executor", [InProcess, partial(LocalPool, 2)], ids=["build-process", "pool"])
def test_counters_report_to_the_build_under_their_task(monkeypatch, executor):
    messages: list[dict] = []
    monkeypatch.setattr(executors, "SEND", messages.append)
    runner = executor()
    try:
        assert runner.submit(Job("steps[4]", partial(count, 4), Path.cwd())).result()[0] == 4
    finally:
        runner.close()  # the pool's relay hands over every message before it ends
    assert [(m["task"], m["n"], m["total"], m["closed"]) for m in messages][-1] == ("steps[4]", 4, 4, True)


def test_summary_columns_stay_aligned_for_long_shard_names():
    outcomes = [
        Outcome("double_descent[n200-m50..100-s0..4-with-more]", ran=True, seconds=12.5),
        Outcome("dd", ran=True, seconds=1.0),
    ]
    ran = _summary(outcomes, 13.5).splitlines()[:2]
    assert ran[0].index(" s") == ran[1].index(" s") and ran[0].endswith("12.5 s")
