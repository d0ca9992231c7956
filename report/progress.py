"""Progress bars for long sweeps: tqdm on a terminal, plain periodic lines anywhere else.

A tqdm bar redraws itself with carriage returns and cursor movements, which garble a piped
log or a CI log.  :func:`bar` gives the usual bar when standard error is a terminal and, when
it is not, the same counter as one plain line every ``LOG_INTERVAL`` seconds.

Compute modules never import this module (it would put the display into their cache keys);
they count through :mod:`lab.progress`, and :func:`install` puts :func:`bar` behind it.
:mod:`report.wiring` calls it on import, so every process that runs a task shows progress.

A build shows one display for all of its tasks, :class:`Board`: the processes that run them (pool
workers, Dask workers, the build itself) send their counters to it (:mod:`report.remote`), so two
workers never redraw the same terminal line and a log gets a start and an end line per task.
"""

import re
import sys
import threading
import time
from typing import Any, TextIO

from tqdm import tqdm

from lab import progress as hook

LOG_INTERVAL = 30.0  # seconds between progress lines in a log
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")  # cursor movements and carriage returns


class _Lines:
    """A file for tqdm that writes a redraw as one plain line, at most every ``LOG_INTERVAL`` s.

    The interval is kept here, not by tqdm's ``mininterval``, because ``set_postfix`` and
    ``refresh`` redraw at once whatever ``mininterval`` says.  The final redraw (100 %) is kept.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last = -LOG_INTERVAL
        self.counter = ""  # the last written line up to its timing part, e.g. "sweep: 100%|###| 3/3"

    def write(self, text: str) -> None:
        line = _CONTROL.sub("", text).strip()
        counter = line.split(" [")[0]
        now = time.monotonic()
        finished = "100%" in counter and counter != self.counter  # once, not again on close
        if line and (now - self.last >= LOG_INTERVAL or finished):
            self.stream.write(line + "\n")
            self.last, self.counter = now, counter

    def flush(self) -> None:
        self.stream.flush()


def bar(stream: TextIO | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(**kwargs)`` on a terminal; a line every ``LOG_INTERVAL`` s on ``stream`` otherwise."""
    stream = stream or sys.stderr
    if stream.isatty():
        return tqdm(file=stream, **kwargs)
    kwargs.pop("position", None)  # stacked bars need a terminal
    return tqdm(file=_Lines(stream), **kwargs | {"mininterval": LOG_INTERVAL, "ascii": True, "leave": True})


def install() -> None:
    """Show the compute modules' progress counters (:func:`lab.progress.bar`) with :func:`bar`."""
    hook.install(bar)


class Board:
    """The build's one progress display, fed by every process that runs its tasks.

    On a terminal: one line per running task at the bottom (the task's name, its counter's
    description, count and postfix, and how long it has run), cleared when the task ends, with the
    build's other lines printed above.  In a log: a start line per task, a line of its counter
    every ``LOG_INTERVAL`` seconds while it runs, and an end line with its time.  Counters report
    through :meth:`event` (see :class:`report.remote.Counter`), from any thread.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.lock = threading.RLock()
        self.bars: dict[str, tqdm] = {}  # on a terminal: the running tasks' lines
        self.began: dict[str, float] = {}  # running task -> when it started
        self.logged: dict[str, float] = {}  # in a log: running task -> when its counter was last written

    def log(self, line: str) -> None:
        with self.lock:
            if self.tty:
                tqdm.write(line, file=self.stream)
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def started(self, task: str, line: str) -> None:
        with self.lock:
            self.log(line)
            self.began[task] = self.logged[task] = time.monotonic()
            if self.tty:
                self.bars[task] = tqdm(
                    file=self.stream, desc=task, leave=False, bar_format="{desc} [{elapsed}]"
                )

    def event(self, message: dict[str, Any]) -> None:
        """A counter's state: ``task``, ``desc``, ``n``, ``total``, ``postfix``, ``closed``."""
        task = message["task"]
        count = f"{message['n']}/{message['total']}" if message.get("total") else f"{message['n']}"
        text = " ".join(part for part in (message.get("desc", ""), count, message.get("postfix", "")) if part)
        with self.lock:
            if task not in self.began:  # it ended before the message came
                return
            if self.tty:
                self.bars[task].set_description_str(f"{task} | {text}")
            elif time.monotonic() - self.logged[task] >= LOG_INTERVAL:
                self.logged[task] = time.monotonic()
                self.log(f"  {task}: {text} ({time.monotonic() - self.began[task]:.0f} s)")

    def finished(self, task: str, seconds: float | None) -> None:
        """``task`` ended after ``seconds`` (None: it failed)."""
        with self.lock:
            self.began.pop(task, None)
            self.logged.pop(task, None)
            bar = self.bars.pop(task, None)
            if bar is not None:  # (a tqdm without a total has no truth value)
                bar.close()
            if not self.tty:
                self.log(f"done {task} in {seconds:.1f} s" if seconds is not None else f"failed {task}")

    def close(self) -> None:
        with self.lock:
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
