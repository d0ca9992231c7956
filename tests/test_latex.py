"""Reading TeX logs: the first error with its source lines, warnings with their file."""

from report.latex import log_warnings, summarize_error

LOG = r"""This is pdfTeX
(./report.tex (./sections/autodiff.tex) (./sections/double_descent.tex
Overfull \hbox (3.3pt too wide) detected at line 28
)
LaTeX Warning: Reference `fig:nope' on page 3 undefined on input line 12.
./sections/double_descent.tex:4: Undefined control sequence.
l.4 \badmacro
"""


def test_warnings_name_the_file_they_come_from():
    assert log_warnings(LOG) == [
        r"./sections/double_descent.tex: Overfull \hbox (3.3pt too wide) detected at line 28",
        "./sections/double_descent.tex: LaTeX Warning: Reference `fig:nope' on page 3 undefined on input line 12.",
    ]


def test_the_error_shows_file_line_message_and_source(tmp_path):
    (tmp_path / "sections").mkdir()
    (tmp_path / "sections" / "double_descent.tex").write_text("one\ntwo\nthree\n\\badmacro\nfive\n")
    message = summarize_error(LOG, tmp_path)
    assert message.splitlines() == [
        (
            "./sections/double_descent.tex:4 (rendered from templates/sections/double_descent.tex.j2): "
            "Undefined control sequence."
        ),
        "     2 | two",
        "     3 | three",
        ">    4 | \\badmacro",
        "     5 | five",
    ]
