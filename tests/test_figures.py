"""The house figure style: drawn at the text width, no text below the minimum size.

Every real figure is checked with :func:`report.figures.check_print_size` in ``tests/test_pdf.py``.
"""

import matplotlib.pyplot as plt
import pytest

from lab import style
from report import figures


def draw(width: float, fontsize: float):
    with plt.rc_context(style.STYLE):
        fig, ax = plt.subplots(figsize=(width, 2.0), layout="constrained")
        ax.plot([1, 2], [3, 4], label="line")
        ax.legend(fontsize=fontsize)
    return fig


def test_a_figure_at_text_width_with_8pt_text_passes():
    figures.check_print_size(draw(style.TEXT_WIDTH_IN, 8))


@pytest.mark.parametrize(
    ("width", "fontsize", "message"),
    [
        pytest.param(4.0, 8, "not the text width", id="too-narrow"),
        pytest.param(style.TEXT_WIDTH_IN, 6, "'line' is 6 pt, below 8 pt", id="small-legend"),
    ],
)
def test_a_figure_off_the_print_size_is_refused(width, fontsize, message):
    with pytest.raises(ValueError, match=message):
        figures.check_print_size(draw(width, fontsize))


def test_sequential_colours_are_ordered_and_distinct():
    colours = style.sequential(4)
    assert len(set(colours)) == 4
    luminance = [0.2126 * r + 0.7152 * g + 0.0722 * b for r, g, b, _ in colours]
    assert luminance == sorted(luminance)  # dark to light: the order of the parameter
