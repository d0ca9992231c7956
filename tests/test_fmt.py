"""Numbers as the reader sees them: lab.fmt's text typeset with the report's own siunitx settings."""

import re
import shutil
import subprocess

import pytest

from lab import fmt
from report.latex import run_latexmk
from report.paths import TEMPLATES


def test_num_keeps_the_significant_digits():
    assert fmt.num(0.004) == r"\num{0.00400}"
    assert fmt.num(0.0040123, sig=4) == r"\num{0.004012}"
    assert fmt.num(-2.3964e-4) == r"\num{-2.40e-04}"
    assert fmt.num(123456.0) == r"\num{1.23e+05}"


def _siunitx_preamble() -> str:
    """The documents' ``\\usepackage{siunitx}`` and ``\\sisetup`` lines, as their shared preamble has them."""
    template = (TEMPLATES / "preamble.tex.j2").read_text()
    lines = [line for line in template.splitlines() if re.match(r"\\(usepackage\{siunitx\}|sisetup\{)", line)]
    assert len(lines) == 2, "preamble.tex.j2 should load siunitx and configure it once"
    return "\n".join(lines)


@pytest.mark.latex
def test_decimals_are_never_split_into_digit_groups(tmp_path):
    """siunitx groups digits on both sides of the point by default ("0.004 0", "1.098 61"); the
    report groups integers only."""
    if shutil.which("latexmk") is None or shutil.which("pdftotext") is None:
        pytest.skip("needs latexmk and pdftotext")
    numbers = {
        fmt.num(0.004, sig=2): "0.0040",
        fmt.num(0.0040123, sig=4): "0.004012",
        fmt.num(1.0986123, sig=6): "1.09861",
        fmt.num(12.3456789, sig=6): "12.3457",
        fmt.num(-0.0574966, sig=6): "−0.0574966",
        fmt.num(0.05, sig=2) + r"\,$\pm$\," + fmt.num(0.00801, sig=2): "0.050 ± 0.0080",
        fmt.integer(400000): "400 000",
    }
    body = "\n\n".join(rf"[{tex}]" for tex in numbers)
    source = tmp_path / "numbers.tex"
    source.write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{lmodern}\n"
        f"\\usepackage{{amsmath}}\n{_siunitx_preamble()}\n\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
    pdf = run_latexmk(source, tmp_path / "out")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert re.findall(r"\[(.*?)\]", text) == list(numbers.values())
