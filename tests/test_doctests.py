"""The docstring examples of the science's modules run as tests (as ``pytest --doctest-modules lab
derivations experiments`` would), so a stale example fails the default run."""

import doctest
from importlib import import_module

import pytest

from report.paths import ROOT

MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for package in ("lab", "derivations", "experiments")
    for path in (ROOT / package).glob("*.py")
    if path.name != "__init__.py"
)
WITH_EXAMPLES = [m for m in MODULES if ">>>" in (ROOT / f"{m.replace('.', '/')}.py").read_text()]


def test_some_modules_have_examples():
    assert {"lab.fmt", "lab.stats", "lab.progress", "derivations.notation"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("module", WITH_EXAMPLES)
def test_docstring_examples(module):
    result = doctest.testmod(import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
