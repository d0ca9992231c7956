"""Progress of long computations, reported through a hook that the builder fills in.

Compute modules call :func:`bar` to count iterations.  By default it counts nothing; the
builder installs a display (``report/progress.py``: tqdm on a terminal, plain lines in a log)
with :func:`install`.  The indirection exists for the cache: a task's key hashes the source
of every project module it imports, so if training code imported the display, restyling a
progress bar would invalidate every trained shard.  This module is the stable contract; it
changes only when the protocol does.

>>> with bar(total=3, desc="sweep") as counter:
...     counter.update()
...     counter.set_postfix(active=2)
"""

from collections.abc import Callable
from typing import Any, Protocol, Self


class Counter(Protocol):
    """What compute code may do with a progress counter (a subset of ``tqdm``'s interface)."""

    def update(self, n: int = 1) -> Any: ...

    def set_postfix(self, **values: Any) -> Any: ...

    def close(self) -> Any: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> Any: ...


class _Silent:
    """The default counter: accepts every call and shows nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _silent(**kwargs: Any) -> Counter:
    return _Silent()


_display: Callable[..., Counter] = _silent


def install(display: Callable[..., Counter]) -> None:
    """Make :func:`bar` return ``display(**kwargs)`` from now on (in this process)."""
    global _display
    _display = display


def bar(**kwargs: Any) -> Counter:
    """A progress counter; ``kwargs`` are tqdm's (``total``, ``desc``, ``unit``, ``leave``)."""
    return _display(**kwargs)
