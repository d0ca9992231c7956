"""Configuration overrides: ``--set double_descent.seeds=20`` or an ``[overrides.<stage>]`` table.

An override replaces one field of a stage's profile configuration.  It is checked against the
``Config`` dataclass (unknown stage or field, or a value of the wrong type, is one
:class:`OverrideError` naming it), and since the configuration is part of a task's cache key, an
overridden build caches apart from the default one.  Values are TOML: ``20``, ``0.5``, ``true``,
``[0.02, 0.04]``, ``"text"`` (a bare word is taken as a string).
"""

import dataclasses
import difflib
import json
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

Overrides = Mapping[str, Mapping[str, Any]]  # stage stem -> field -> value


class OverrideError(ValueError):
    """An override that cannot apply; the message names it and why."""


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse(assignments: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["stage.field=value", ...]`` -> ``{stage: {field: value}}``."""
    result: dict[str, dict[str, Any]] = {}
    for item in assignments:
        target, sep, text = item.partition("=")
        stage, dot, name = target.strip().partition(".")
        if not (sep and dot and stage and name):
            raise OverrideError(f"--set {item!r}: expected STAGE.FIELD=VALUE, e.g. double_descent.seeds=20")
        result.setdefault(stage, {})[name] = _value(text.strip())
    return result


def merge(*layers: Overrides) -> dict[str, dict[str, Any]]:
    """Later layers win field by field (settings file first, then the command line)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for stage, changes in layer.items():
            merged.setdefault(stage, {}).update(changes)
    return merged


def _conform(where: str, current: Any, value: Any) -> Any:
    """``value`` in the type of the field's default ``current``, or an error."""
    if isinstance(current, tuple):
        if not isinstance(value, list):
            raise OverrideError(f"{where}: expected a list like {list(current)}, got {value!r}")
        return tuple(_conform(f"{where}[{i}]", current[0] if current else v, v) for i, v in enumerate(value))
    if isinstance(current, float) and type(value) is int:
        value = float(value)
    if current is not None and type(value) is not type(current):
        raise OverrideError(
            f"{where}: expected {type(current).__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def apply(stem: str, config: Any, changes: Mapping[str, Any]) -> Any:
    """``config`` with ``changes`` applied, each checked against its field."""
    if not changes:
        return config
    names = [f.name for f in dataclasses.fields(config)]
    conformed = {}
    for name, value in changes.items():
        if name not in names:
            near = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {stem}.{near[0]}?" if near else f"{stem}'s fields: {', '.join(names)}"
            raise OverrideError(f"{stem}.{name}: no such field; {hint}")
        conformed[name] = _conform(f"{stem}.{name}", getattr(config, name), value)
    return dataclasses.replace(config, **conformed)


def check_stages(overrides: Overrides, stems: Iterable[str]) -> None:
    """An error naming an override of a stage that does not exist (or has no configuration)."""
    valid = list(stems)
    for stem in overrides:
        if stem not in valid:
            raise OverrideError(f"{stem}: no such stage; stages: {', '.join(valid)}")


def describe(overrides: Overrides) -> list[str]:
    """``stage.field=value`` lines as ``--set`` reads them (JSON values are TOML values), for the
    build's output and the report's appendix."""
    return [
        f"{stem}.{name}={json.dumps(value)}"
        for stem, changes in overrides.items()
        for name, value in changes.items()
    ]
