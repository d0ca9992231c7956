"""Absolute paths of the project, so every step runs from any directory.

Build outputs live under ``build/`` for the full profile and ``build/<profile>/`` for
any other profile, so the quick profile never overwrites the real report.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
BUILD = ROOT / "build"


def build_dir(profile: str) -> Path:
    """Return the output root of ``profile`` (``build/`` or ``build/<profile>/``)."""
    return BUILD if profile == "full" else BUILD / profile
