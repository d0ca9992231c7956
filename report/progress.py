"""Progress bars for long sweeps: tqdm on a terminal, plain periodic lines anywhere else.

A tqdm bar redraws itself with carriage returns and cursor movements, which garble a piped
log or a CI log.  :func:`bar` gives the usual bar when standard error is a terminal and, when
it is not, the same counter as one plain line every ``LOG_INTERVAL`` seconds.
"""

import re
import sys
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between progress lines in a log
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")  # cursor movements and carriage returns


class _Lines:
    """A file for tqdm that turns each redraw into one line and drops the control sequences."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = _CONTROL.sub("", text).strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def bar(stream: TextIO | None = None, **kwargs: Any) -> tqdm:
    """``tqdm(**kwargs)`` on a terminal; a line every ``LOG_INTERVAL`` s on ``stream`` otherwise."""
    stream = stream or sys.stderr
    if stream.isatty():
        return tqdm(file=stream, **kwargs)
    kwargs.pop("position", None)  # stacked bars need a terminal
    return tqdm(file=_Lines(stream), mininterval=LOG_INTERVAL, ascii=True, **kwargs | {"leave": True})
