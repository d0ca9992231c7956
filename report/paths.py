"""Absolute paths of the project this builder is shipped with, so every step runs from any directory.

Another project is built with ``--project DIR`` (see :mod:`report.project`); its outputs live under
its own ``build/``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
