"""Template rendering: escaping, strict values, error locations."""

import pytest

from lab.fmt import Tex, integer, num
from report.render import TemplateError, latex_escape, render


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.000123456, r"\num{1.23e-04}", id="small"),
        pytest.param(123456.0, r"\num{1.23e+05}", id="large"),
        pytest.param(2.5, r"\num{2.50}", id="plain"),
        pytest.param(-0.0421, r"\num{-0.0421}", id="negative"),
        pytest.param(0.0, r"\num{0}", id="zero"),
    ],
)
def test_num_keeps_significant_digits(value, expected):
    assert num(value) == expected


def test_integer_and_escape():
    assert integer(12345) == r"\num{12345}"
    assert latex_escape("50% of x_1 & {y} ~ $5 #3 a^b \\") == (
        r"50\% of x\_1 \& \{y\} \textasciitilde{} \$5 \#3 a\textasciicircum{}b \textbackslash{}"
    )


@pytest.fixture
def templates(tmp_path):
    (tmp_path / "t.tex.j2").write_text("A \\VAR{x}\n\\BLOCK{if flag}yes\\BLOCK{else}no\\BLOCK{endif}\n")
    return tmp_path


def test_text_is_escaped_and_tex_is_verbatim(templates):
    out = render("t.tex.j2", {"x": "a_b", "flag": True}, templates)
    assert out == "A a\\_b\nyes"  # trim_blocks drops the newline after a block tag
    assert render("t.tex.j2", {"x": Tex(r"\alpha_1"), "flag": False}, templates) == "A \\alpha_1\nno"


def test_a_missing_value_is_an_error_naming_the_template(templates):
    with pytest.raises(TemplateError, match=r"t\.tex\.j2:1: 'x' is undefined"):
        render("t.tex.j2", {"flag": True}, templates)


def test_an_unformatted_float_is_refused(templates):
    with pytest.raises(TemplateError, match="was not formatted"):
        render("t.tex.j2", {"x": 0.1, "flag": True}, templates)


@pytest.mark.parametrize(
    "expression",
    ['"x=" ~ 0.123456789', "(1/3)|string", '"x=" ~ y', "y|string", "[y, 2]|join(', ')", '"%s"|format(y)'],
)
def test_a_float_cannot_become_text_another_way(tmp_path, expression):
    (tmp_path / "t.tex.j2").write_text(f"\\VAR{{{expression}}}\n")
    with pytest.raises(
        TemplateError, match=r"t\.tex\.j2:1: template value 0\.\d+ of type float was not formatted"
    ):
        render("t.tex.j2", {"y": 0.5}, tmp_path)


def test_text_and_integers_still_concatenate(tmp_path):
    (tmp_path / "t.tex.j2").write_text(
        '\\VAR{"n=" ~ n ~ " " ~ s|string ~ [n, s]|join(",") ~ "%d"|format(n)}\n'
    )
    assert render("t.tex.j2", {"n": 3, "s": "a"}, tmp_path) == "n=3 a3,a3\n"


def test_a_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "bad.tex.j2").write_text("ok\n\\BLOCK{if}\n")
    with pytest.raises(TemplateError, match=r"bad\.tex\.j2:2: template syntax error"):
        render("bad.tex.j2", {}, tmp_path)


def test_joined_latex_stays_latex_and_joined_text_is_escaped(tmp_path):
    (tmp_path / "t.tex.j2").write_text('\\VAR{tex|join(", ")} \\VAR{text|join("_")}\n')
    context = {"tex": [Tex(r"\num{1e-05}"), Tex(r"\num{1e-04}")], "text": ["a", "b"]}
    assert render("t.tex.j2", context, tmp_path) == r"\num{1e-05}, \num{1e-04} a\_b" + "\n"


def test_a_dirty_commit_is_said_so():
    from report.document import commit_text

    assert commit_text("89ed8235fc62") == r"\texttt{89ed8235fc62}"
    assert commit_text("89ed8235fc62-dirty") == r"\texttt{89ed8235fc62} with uncommitted changes present"
