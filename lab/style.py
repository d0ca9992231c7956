"""The figures' house style: printed at their drawn size, Computer Modern, ordered colours.

A figure is drawn at the size it is printed: its width is the LaTeX text width (``TEXT_WIDTH_IN``,
the same geometry the template's ``\\usepackage[...]{geometry}`` receives from :data:`GEOMETRY`),
and templates include it without scaling, so 8-9 pt text stays 8-9 pt on paper.  Text uses
Computer Modern (matplotlib's bundled ``cmr10`` for labels, ``cm`` for mathematics) to match the
document's Latin Modern.  Fonts are embedded as TrueType (``pdf.fonttype = 42``) instead of
matplotlib's default Type 3, which some PDF viewers and print shops handle badly.

Plot functions choose only a height: ``plt.subplots(figsize=figsize(3.0), layout="constrained")``.
Ordered parameters (learning rates, widths, regularization rates) take their colours from
:func:`sequential`, so that neighbouring values get neighbouring, still distinguishable, hues.
"""

import matplotlib.pyplot as plt
import numpy as np

PAPER_WIDTH_CM = 21.0  # a4paper
MARGIN_CM = 2.3
GEOMETRY = f"a4paper,margin={MARGIN_CM}cm"  # passed to geometry by templates/report.tex.j2
TEXT_WIDTH_IN = (PAPER_WIDTH_CM - 2 * MARGIN_CM) / 2.54

STYLE = {
    "font.family": "serif",
    "font.serif": ["cmr10"],  # matplotlib's own Computer Modern; no TeX needed to draw
    "axes.formatter.use_mathtext": True,  # cmr10 has no minus sign: tick labels go through mathtext
    "axes.unicode_minus": True,
    "mathtext.fontset": "cm",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.figsize": (TEXT_WIDTH_IN, 0.55 * TEXT_WIDTH_IN),
    "pdf.fonttype": 42,
    "savefig.bbox": "standard",  # no cropping: the PDF is exactly figsize, printed unscaled
}

MIN_FONT_PT = 8.0  # the smallest text a figure may carry at print size
CAPTION_PT = 10.0  # \small of the 11 pt document: the text of a figure that must read as large as its caption


def figsize(height_in: float) -> tuple[float, float]:
    """A figure as wide as the text and ``height_in`` inches high."""
    return (TEXT_WIDTH_IN, height_in)


def sequential(n: int, cmap: str = "viridis") -> list[tuple[float, float, float, float]]:
    """``n`` colours for ordered values, from dark to light; the palest end is cut off for print."""
    return [tuple(c) for c in plt.get_cmap(cmap)(np.linspace(0.0, 0.85, n))]
