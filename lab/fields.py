"""Checks of configuration fields, for the ``__post_init__`` of a stage's ``Config``: a bad value fails
when the configuration is made (a ``--set`` or ``[overrides]`` entry included), before any computation,
with one line naming the field.

>>> whole(object.__new__(type("C", (), {"n": 0})), "n", least=1)
Traceback (most recent call last):
ValueError: n = 0: expected a whole number >= 1
"""

import math
from typing import Any


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def whole(config: Any, *names: str, least: int = 0) -> None:
    """Each field in ``names`` is an int of at least ``least``; a tuple field: non-empty, each such an int."""
    for name in names:
        value = getattr(config, name)
        items = value if isinstance(value, tuple) else (value,)
        if not items:
            raise ValueError(f"{name} = (): expected at least one value")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= least for v in items):
            raise ValueError(
                f"{name} = {value!r}: expected {'whole numbers' if isinstance(value, tuple) else 'a whole number'} >= {least}"
            )


def real(
    config: Any,
    *names: str,
    above: float | None = None,
    least: float | None = None,
    below: float | None = None,
) -> None:
    """Each field in ``names`` is a finite number (a tuple field: non-empty, each one) within the bounds
    given: ``> above``, ``>= least``, ``< below``.  NaN and infinity never pass."""
    for name in names:
        value = getattr(config, name)
        items = value if isinstance(value, tuple) else (value,)
        if not items:
            raise ValueError(f"{name} = (): expected at least one value")
        for v in items:
            wrong = (
                not _number(v)
                or not math.isfinite(v)
                or (above is not None and not v > above)
                or (least is not None and not v >= least)
                or (below is not None and not v < below)
            )
            if wrong:
                bounds = [
                    f"> {above:g}" if above is not None else "",
                    f">= {least:g}" if least is not None else "",
                ]
                bounds.append(f"< {below:g}" if below is not None else "")
                where = " and ".join(b for b in bounds if b)
                raise ValueError(
                    f"{name} = {value!r}: expected finite number(s){' ' + where if where else ''}"
                )
