"""The data paragraph of the report: template values for ``templates/sections/data_source.tex.j2``.

A present module: it formats the facts that :func:`experiments.data.summary` recorded with the
results, so that a change of wording or precision never reaches a compute module's cache key.
"""

from collections.abc import Mapping
from typing import Any

from experiments.gamma_test import GAMMA_MAX_ROWS, GAMMA_NEIGHBOURS
from lab.fmt import Tex, integer, latex_escape, num


def context(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Values for ``templates/sections/data_source.tex.j2`` from :func:`summary`'s facts.

    The built-in process's paragraph takes its numbers from the stage's own context.
    """
    kind = facts.get("kind", "builtin")  # results without facts came from the built-in process
    if kind == "builtin":
        return {"kind": kind, "estimated": False}
    rows = facts.get("rows", {})
    return {
        "kind": kind,
        "spec": Tex(r"/\allowbreak{}".join(latex_escape(part) for part in facts["spec"].split("/"))),
        "digest": facts["digest"][:12],
        "dim": integer(facts["dim"]),
        "r_t": num(facts["r_t"], sig=3),
        "estimated": facts["estimated"],
        "noise_std": num(facts["noise_std"], sig=3),
        "var_y": num(facts["var_y"]),
        "rows": {split: integer(count) for split, count in rows.items()},
        "val_from_test": facts.get("val_from_test", False),
        "whole_test": facts["n_test"] == rows.get("test"),
        "neighbours": integer(GAMMA_NEIGHBOURS),
        "max_rows": integer(GAMMA_MAX_ROWS),
    }
