"""Sweep progress: a bar on a terminal, plain lines in a log."""

import io

from report import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_without_control_characters():
    log = io.StringIO()
    with progress.bar(stream=log, total=3, desc="sweep", position=1) as counter:
        for _ in range(3):
            counter.update()
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.splitlines()[-1].startswith("sweep: 100%") and "3/3" in text


def test_postfix_redraws_do_not_flood_a_log():
    log = io.StringIO()
    with progress.bar(stream=log, total=100, desc="sweep", mininterval=0.0) as counter:
        for i in range(100):
            counter.update()
            counter.set_postfix(training=100 - i)  # redraws at once, whatever mininterval says
    assert len(log.getvalue().splitlines()) <= 2  # the first line and the final one


def test_a_terminal_gets_the_redrawn_bar():
    screen = Terminal()
    with progress.bar(stream=screen, total=2, desc="sweep") as counter:
        counter.update(2)
    assert "\r" in screen.getvalue()
