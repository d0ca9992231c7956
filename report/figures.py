"""Saving figures: one house style, deterministic PDFs, atomic writes.

The style sets sizes for print (figures are drawn at their final size, so 8-9 pt text
stays 8-9 pt on paper) and embeds fonts as TrueType (``pdf.fonttype = 42``) instead of
matplotlib's default Type 3, which some PDF viewers and print shops handle badly.
"""

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on build machines

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from report.cache import write_atomic

# fontTools warns about the embedded Computer Modern fonts' 1970 timestamps on every save.
logging.getLogger("fontTools").setLevel(logging.ERROR)

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "mathtext.fontset": "cm",
    "pdf.fonttype": 42,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


def save_pdf(plot: Callable[[Any], Figure], results: Any, path: Path) -> None:
    """Draw ``plot(results)`` in the house style and write it atomically to ``path``."""
    with plt.rc_context(STYLE):
        fig = plot(results)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf", metadata={"CreationDate": None})
        plt.close(fig)
    write_atomic(path, buffer.getvalue())
