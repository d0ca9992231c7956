"""Saving figures: in the house style of :mod:`lab.style`, deterministic PDFs, atomic writes."""

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on build machines

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

from lab.style import MIN_FONT_PT, STYLE, TEXT_WIDTH_IN
from report.cache import write_atomic

# fontTools warns about the embedded Computer Modern fonts' 1970 timestamps on every save.
logging.getLogger("fontTools").setLevel(logging.ERROR)


def check_print_size(fig: Figure) -> None:
    """Refuse a figure that is not as wide as the text or carries text below ``MIN_FONT_PT``."""
    width = fig.get_figwidth()
    if abs(width - TEXT_WIDTH_IN) > 1e-6:
        raise ValueError(
            f"figure is {width:.2f} in wide, not the text width {TEXT_WIDTH_IN:.2f} in; use figsize()"
        )
    small = sorted(
        {
            (t.get_fontsize(), t.get_text())
            for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip()
        }
    )
    if small and small[0][0] < MIN_FONT_PT:
        raise ValueError(
            f"figure text {small[0][1]!r} is {small[0][0]:g} pt, below {MIN_FONT_PT:g} pt at print size"
        )


def save_pdf(plot: Callable[[Any], Figure], results: Any, path: Path) -> None:
    """Draw ``plot(results)`` in the house style and write it atomically to ``path``."""
    with plt.rc_context(STYLE):
        fig = plot(results)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf", metadata={"CreationDate": None})
        plt.close(fig)
    write_atomic(path, buffer.getvalue())
