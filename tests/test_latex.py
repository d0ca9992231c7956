"""Reading TeX logs: the first error with its source lines, warnings with their file."""

from report.latex import log_warnings, summarize_error, template_line

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


def test_the_error_names_the_template_line_it_was_rendered_from(tmp_path):
    (tmp_path / "tex" / "sections").mkdir(parents=True)
    (tmp_path / "tex" / "sections" / "double_descent.tex").write_text(
        "one\ntwo\nthree\n\\badmacro{7}\nfive\n"
    )
    (tmp_path / "templates" / "sections").mkdir(parents=True)
    (tmp_path / "templates" / "sections" / "double_descent.tex.j2").write_text(
        "one\n\\BLOCK{for x in xs}\ntwo\n\\BLOCK{endfor}\nthree\n\\badmacro{\\VAR{n}}\nfive\n"
    )
    first = summarize_error(LOG, tmp_path / "tex", tmp_path / "templates").splitlines()[0]
    assert first == (
        "./sections/double_descent.tex:4 (from templates/sections/double_descent.tex.j2:6): "
        "Undefined control sequence."
    )


def test_template_line_prefers_more_literal_text_then_the_nearest_line():
    template = "a \\VAR{x}\nsee \\VAR{y} here\nsee\n"
    assert template_line(template, "see 3 here", 1) == 2
    assert template_line("x\nsee\nsee\n", "see", 3) == 3
    assert template_line("\\BLOCK{if a}\n", "anything", 1) is None
