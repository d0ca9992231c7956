"""Configuration overrides: ``--set double_descent.seeds=[0,1,2]`` or an ``[overrides.<stage>]`` table.

An override replaces one field of a stage's profile configuration; a dotted path reaches a field of
a nested dataclass (``--set sgd_implicit_reg.stopping.max_epochs=500``, or in settings.toml
``[overrides.sgd_implicit_reg.stopping]`` with ``max_epochs = 500``).  It is checked against the
``Config`` dataclass (unknown stage or field, or a value of the wrong type, is one
:class:`OverrideError` naming it and the valid fields), and since the configuration is part of a
task's cache key, an overridden build caches apart from the default one.  Values are TOML: ``20``,
``0.5``, ``true``, ``[0.02, 0.04]``, ``"text"`` (a bare word is taken as a string).
"""

import dataclasses
import difflib
import json
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

Overrides = Mapping[str, Mapping[str, Any]]  # stage stem -> field (dotted into nested dataclasses) -> value
RESERVED = {"data": "settings.toml's [data] source sets it"}  # top-level fields no override may set


class OverrideError(ValueError):
    """An override that cannot apply; the message names it and why."""


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse(assignments: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["stage.field=value", "stage.group.field=value"]`` -> ``{stage: {"field": v, "group.field": v}}``."""
    result: dict[str, dict[str, Any]] = {}
    for item in assignments:
        target, sep, text = item.partition("=")
        stage, dot, name = target.strip().partition(".")
        if not (sep and dot and stage and name and all(name.split("."))):
            raise OverrideError(
                f"--set {item!r}: expected STAGE.FIELD=VALUE, e.g. double_descent.seeds=[0,1,2] or "
                "sgd_implicit_reg.stopping.max_epochs=500"
            )
        result.setdefault(stage, {}).update(flatten({name: _value(text.strip())}))
    return result


def flatten(changes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables (``[overrides.stage.group]``, ``--set stage.group={a=1}``) as dotted names."""
    flat: dict[str, Any] = {}
    for name, value in changes.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def merge(*layers: Overrides) -> dict[str, dict[str, Any]]:
    """Later layers win field by field (settings file first, then the command line)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for stage, changes in layer.items():
            merged.setdefault(stage, {}).update(flatten(changes))
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


def _fields(config: Any, nested: bool = False) -> str:
    """``a, b, group (x, y)``: the fields of ``config``, a nested dataclass's with its own."""
    return ", ".join(
        f"{f.name} ({_fields(value, nested=True)})"
        if dataclasses.is_dataclass(value := getattr(config, f.name))
        else f.name
        for f in dataclasses.fields(config)
        if nested or f.name not in RESERVED
    )


def _paths(config: Any, nested: bool = False) -> list[str]:
    """Every settable field of ``config``, dotted into nested dataclasses."""
    paths = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in RESERVED and not nested:
            continue
        inner = _paths(value, nested=True) if dataclasses.is_dataclass(value) else [""]
        paths += [f"{f.name}.{p}" if p else f.name for p in inner]
    return paths


def _unknown(where: str, name: str, config: Any) -> OverrideError:
    """No field ``name``: the nearest field (also inside a nested dataclass) and the valid ones."""
    paths = _paths(config, nested="." in where)
    near = [p for p in paths if p.endswith(f".{name}")][:1] or difflib.get_close_matches(name, paths, n=1)
    hint = f"did you mean {where}.{near[0]}? " if near else ""
    fields = _fields(config, nested="." in where)
    return OverrideError(f"{where}.{name}: no such field; {hint}{where}'s fields: {fields}")


def apply(where: str, config: Any, changes: Mapping[str, Any]) -> Any:
    """``config`` with ``changes`` applied, each checked against its field; ``where`` names
    ``config`` in errors (the stage, or ``stage.group`` for a nested dataclass)."""
    if not changes:
        return config
    names = {f.name for f in dataclasses.fields(config)}
    conformed: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in flatten(changes).items():
        name, dot, rest = path.partition(".")
        if name in RESERVED and "." not in where:  # a stage's own field, not a nested one
            raise OverrideError(f"{where}.{name}: not an override; {RESERVED[name]}")
        if name not in names:
            raise _unknown(where, name, config)
        current = getattr(config, name)
        if dot:
            if not dataclasses.is_dataclass(current):
                raise OverrideError(
                    f"{where}.{name} is not a group of fields ({type(current).__name__}): set it whole, e.g. "
                    f"--set {where}.{name}={json.dumps(current, separators=(',', ':'), default=str)}"
                )
            nested.setdefault(name, {})[rest] = value
        elif dataclasses.is_dataclass(current):
            raise OverrideError(
                f"{where}.{name} is a group of fields ({_fields(current, nested=True)}): set one of them, e.g. "
                f"--set {where}.{name}.{dataclasses.fields(current)[0].name}=VALUE"
            )
        else:
            conformed[name] = _conform(f"{where}.{name}", current, value)
    for name, sub in nested.items():
        conformed[name] = apply(f"{where}.{name}", getattr(config, name), sub)
    try:
        return dataclasses.replace(config, **conformed)
    except (ValueError, TypeError) as err:  # the configuration's own checks (__post_init__)
        raise OverrideError(f"{where}: {err}") from err


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
        for name, value in flatten(changes).items()
    ]
