"""The student's settings: what the title page says, read from ``settings.toml`` at the repository root.

The file is TOML, read with the standard library's :mod:`tomllib`; every key is optional and the
defaults give an anonymous title page.  An unknown key or a value of the wrong type is one clear
:class:`SettingsError`, naming the file and the key.

The date is never the build time, so that the same sources give the same PDF byte for byte: it is
the ``date`` of the file (a TOML date such as ``2024-04-08`` or any text), else the day of
``SOURCE_DATE_EPOCH`` (the reproducible-builds convention), else no date at all.

A ``[data]`` table names the experiments' data source (``source = "builtin"``, a
``module:function`` / ``path/file.py:function`` callable or a ``path/file.npz``); :func:`data_source`
checks it and :func:`with_data` puts it into a stage's configuration, both through the project's
data-source hook (``DATA_SOURCE`` in ``project.py``, see :mod:`report.project`).
"""

import datetime
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from report.project import Project

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # not strftime's %B, which follows the locale


class SettingsError(Exception):
    """The settings file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Settings:
    title: str = ""  # empty: the project's TITLE
    course: str = ""  # empty: the project's COURSE
    author: str = ""  # empty: the title page names no one
    student_number: str = ""
    date: str | datetime.date = ""  # empty: SOURCE_DATE_EPOCH's day, else no date
    # [overrides.<stage>] tables: configuration fields to change (report.overrides checks them)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # [data] table: source = "builtin" | "module:function" | "path/file.py:function" | "path/file.npz"
    data: dict[str, str] = field(default_factory=dict)
    # The course's limit on the submission's pages (report.pdf); None: no limit
    page_limit: int | None = None
    # [cache] table: dir = "path" of the result store (report.store), relative to the repository root
    cache: dict[str, str] = field(default_factory=dict)


def parse(text: str, source: str = "settings.toml") -> Settings:
    """Settings from TOML ``text``; ``source`` names the file in error messages.

    >>> parse('author = "Ada Lovelace"').author
    'Ada Lovelace'
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{source}: not valid TOML: {err}") from err
    known = {f.name: f for f in fields(Settings)}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"{source}: unknown key {key!r}; the keys are {', '.join(known)}")
        if key == "overrides":
            if not (isinstance(value, dict) and all(isinstance(table, dict) for table in value.values())):
                raise SettingsError(f"{source}: 'overrides' must hold [overrides.<stage>] tables of fields")
            continue
        if key == "data":
            if not isinstance(value, dict) or set(value) - {"source"}:
                raise SettingsError(f'{source}: [data] holds one key, source = "..." (got {value!r})')
            if not isinstance(value.get("source", ""), str):
                raise SettingsError(f"{source}: [data] source must be a string, not {value['source']!r}")
            continue
        if key == "page_limit":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(f"{source}: 'page_limit' must be a whole number of pages, not {value!r}")
            continue
        if key == "cache":
            if (
                not isinstance(value, dict)
                or set(value) - {"dir"}
                or not isinstance(value.get("dir", ""), str)
            ):
                raise SettingsError(f'{source}: [cache] holds one key, dir = "path/to/store" (got {value!r})')
            continue
        allowed = (str, datetime.date) if key == "date" else (str,)
        if not isinstance(value, allowed) or isinstance(value, datetime.datetime):
            wanted = "a string or a date (2024-04-08)" if key == "date" else "a string"
            raise SettingsError(f"{source}: {key!r} must be {wanted}, not {type(value).__name__} {value!r}")
    return Settings(**data)


def load(path: Path) -> Settings:
    """The settings of ``path``; the defaults when the file does not exist."""
    if not path.exists():
        return Settings()
    return parse(path.read_text(encoding="utf-8"), source=str(path))


def date_text(settings: Settings, environ: Mapping[str, str] = os.environ) -> str:
    """The date printed on the title page: the settings' date, else ``SOURCE_DATE_EPOCH``'s day, else "".

    >>> date_text(Settings(date=datetime.date(2024, 4, 8)))
    '8 April 2024'
    >>> date_text(Settings(), {"SOURCE_DATE_EPOCH": "1712534400"})
    '8 April 2024'
    """
    date = settings.date
    if isinstance(date, datetime.date):
        return f"{date.day} {MONTHS[date.month - 1]} {date.year}"
    if date or "SOURCE_DATE_EPOCH" not in environ:
        return date
    try:
        epoch = int(environ["SOURCE_DATE_EPOCH"])
    except ValueError as err:
        raise SettingsError(
            f"SOURCE_DATE_EPOCH must be an integer, not {environ['SOURCE_DATE_EPOCH']!r}"
        ) from err
    return date_text(Settings(date=datetime.datetime.fromtimestamp(epoch, datetime.UTC).date()))


def data_source(
    settings: Settings, project: "Project", source: str = "settings.toml", run: bool = True
) -> Any:
    """The checked data source the settings name (the hook's built-in one when they name none), or
    None for a project without a data-source hook.

    Relative paths are taken from the project's root; an unusable source is one :class:`SettingsError`.
    Without ``run`` the hook must not run the source's code (it hashes its text): for listings.
    """
    hook = project.data_hook()  # torch, perhaps: only when a build needs the source
    if hook is None:
        return None
    text = settings.data.get("source", "builtin")
    try:
        return hook.resolve(text, project.root, run=run)
    except hook.DataError as err:
        raise SettingsError(f"{source}: [data] source = {text!r}: {err}") from err


def with_data(stem: str, config: Any, data: Any, hook: ModuleType | None) -> Any:
    """``config`` drawing from ``data`` when it has a ``data`` field, checked by the data-source
    ``hook`` against the rows it draws."""
    if data is None or hook is None or "data" not in {f.name for f in fields(config)}:
        return config
    try:
        hook.check_config(data, config, stem)
    except hook.DataError as err:
        raise SettingsError(f"[data] source {data.spec}: {err}") from err
    return replace(config, data=data)
