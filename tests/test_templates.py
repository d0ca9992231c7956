"""Lint of the LaTeX templates for a trap of ``trim_blocks``.

With ``trim_blocks`` Jinja drops the newline after a block tag.  When a line of text
ends with a tag (``...\\BLOCK{endif}``) and the next text line starts with a word, the two
words are glued together in the PDF ("dataand").  Such a line must end in a space or
punctuation inside the block, or the next line must start with a space or punctuation.
"""

import re

import pytest

from report.paths import TEMPLATES

BLOCK_ONLY = re.compile(r"^\s*(\\BLOCK\{[^}]*\}\s*)+$")
ENDS_WITH_BLOCK = re.compile(r"\\BLOCK\{[^}]*\}\s*$")
# A trailing tag, or a trailing one-line conditional whose text may not be rendered.
TRAILING_BLOCKS = re.compile(r"(\\BLOCK\{if [^}]*\}.*?\\BLOCK\{endif\}|\\BLOCK\{[^}]*\})\s*$")


def glued_lines(text: str) -> list[int]:
    """1-based numbers of lines whose trailing block tag glues them to the next text line."""
    lines = text.split("\n")
    glued = []
    for i, line in enumerate(lines):
        if not ENDS_WITH_BLOCK.search(line) or BLOCK_ONLY.match(line):
            continue
        j = i + 1
        while j < len(lines) and BLOCK_ONLY.match(lines[j]):
            j += 1
        following = re.sub(r"^(\\BLOCK\{[^}]*\})+", "", lines[j] if j < len(lines) else "")
        before_tag = line
        while TRAILING_BLOCKS.search(before_tag):
            before_tag = TRAILING_BLOCKS.sub("", before_tag)
        if re.match(r"[A-Za-z0-9(\\$]", following) and re.search(r"[A-Za-z0-9)}$]$", before_tag):
            glued.append(i + 1)
    return glued


def test_the_lint_finds_a_glued_line():
    assert glued_lines("some text\\BLOCK{if x}, more\\BLOCK{endif}\n\\BLOCK{endfor}\nnext word") == [1]
    assert glued_lines("a \\VAR{x}\\BLOCK{if not loop.last}; \\BLOCK{endif}\n\\BLOCK{endfor}\n(next)") == [1]
    assert glued_lines("some text\\BLOCK{if x}, more\\BLOCK{endif}\n next word") == []


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.j2")), ids=lambda p: p.name)
def test_no_template_glues_words_across_lines(path):
    assert glued_lines(path.read_text()) == []
