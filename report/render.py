"""Jinja2 rendering of LaTeX templates with LaTeX-safe delimiters and strict values.

Delimiters: ``\\VAR{x}`` for values, ``\\BLOCK{if c}...\\BLOCK{endif}`` for statements,
``\\#{...}`` for comments, so ``{{`` and ``{%`` stay free for TeX.  Every value passes
through :func:`finalize`: :class:`lab.fmt.Tex` is inserted verbatim, ``str`` is
LaTeX-escaped, ``int`` is printed, and anything else (a raw float above all) is an
error, because numbers must be formatted once, in :mod:`lab.fmt`.  The ways around
``finalize`` (``~`` concatenation, the ``string``, ``join`` and ``format`` filters) refuse
non-integer numbers too.
"""

import numbers
from pathlib import Path
from typing import Any

import jinja2
import jinja2.filters
from jinja2 import nodes

from lab.fmt import Tex, latex_escape
from report.paths import TEMPLATES


def _unformatted(value: Any) -> TypeError:
    return TypeError(
        f"template value {value!r} of type {type(value).__name__} was not formatted; "
        "pass numbers through lab.fmt.num/integer in the stage's context()"
    )


def finalize(value: Any) -> str:
    """Turn a template value into LaTeX, refusing values that were never formatted."""
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises here, naming the missing variable
    if isinstance(value, Tex):
        return value
    if isinstance(value, str):
        return latex_escape(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _unformatted(value)


def _no_raw_number(value: Any) -> Any:
    """``value`` unchanged unless it is a non-integer number, which must not become text unformatted."""
    if isinstance(value, numbers.Number) and not isinstance(value, numbers.Integral):
        raise _unformatted(value)
    return value


def _string(value: Any) -> str:
    return jinja2.filters.soft_str(_no_raw_number(value))


def _join(values: Any, separator: str = "") -> str:
    """Jinja's ``join``, refusing raw floats; LaTeX items (:class:`Tex`) stay LaTeX."""
    items = [_no_raw_number(v) for v in values]
    if items and all(isinstance(v, Tex) for v in items):
        return Tex(latex_escape(separator).join(items))
    return separator.join(jinja2.filters.soft_str(v) for v in items)


def _format(template: str, *args: Any, **kwargs: Any) -> str:
    return template % (tuple(map(_no_raw_number, args)) or {k: _no_raw_number(v) for k, v in kwargs.items()})


class _Environment(jinja2.Environment):
    """Jinja with every operand of ``~`` checked by :func:`_no_raw_number` (also in constants)."""

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for concat in tree.find_all(nodes.Concat):
            concat.nodes = [
                nodes.Filter(n, "_no_raw_number", [], [], None, None, lineno=n.lineno) for n in concat.nodes
            ]
        return tree


def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    env = _Environment(
        loader=jinja2.FileSystemLoader(templates),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        finalize=finalize,
    )
    # A float turned into text by ~, |string, |join or |format would bypass finalize.
    env.filters |= {"_no_raw_number": _no_raw_number, "string": _string, "join": _join, "format": _format}
    return env


class TemplateError(Exception):
    """A template failed to render; the message names the template and line."""


def render(name: str, context: dict[str, Any], templates: Path = TEMPLATES) -> str:
    """Render template ``name`` (relative to ``templates``) with ``context``."""
    try:
        return environment(templates).get_template(name).render(context)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(
            f"{err.filename or name}:{err.lineno}: template syntax error: {err.message}"
        ) from err
    except (jinja2.UndefinedError, TypeError) as err:
        raise TemplateError(f"{_template_location(err, name)}: {err}") from err
    except (LookupError, ValueError) as err:  # e.g. figure_path("nope") raises KeyError
        message = err.args[0] if err.args else type(err).__name__
        raise TemplateError(f"{_template_location(err, name)}: {message}") from err


def _template_location(err: BaseException, name: str) -> str:
    """``path:line`` of the innermost template frame in ``err``'s traceback."""
    tb, where = err.__traceback__, str(TEMPLATES / name)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where
