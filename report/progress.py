"""Progress bars for long sweeps: tqdm on a terminal, plain periodic lines anywhere else.

A tqdm bar redraws itself with carriage returns and cursor movements, which garble a piped
log or a CI log.  :func:`bar` gives the usual bar when standard error is a terminal and, when
it is not, the same counter as one plain line every ``LOG_INTERVAL`` seconds.

Compute modules never import this module (it would put the display into their cache keys);
they count through :mod:`lab.progress`, and :func:`install` puts :func:`bar` behind it.
:mod:`report.wiring` calls it on import, so every process that runs a task shows progress.
"""

import re
import sys
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
