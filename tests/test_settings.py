"""The student's settings file: parsed, validated with one clear error, and a date that is never the build time."""

import datetime
import re

import pytest

from report import settings
from report.paths import ROOT
from report.settings import Settings, SettingsError, date_text, parse


def test_defaults_give_an_anonymous_title_page(tmp_path):
    s = settings.load(tmp_path / "missing.toml")
    assert s == Settings()
    assert s.author == s.student_number == ""
    assert date_text(s, {}) == ""


def test_the_repository_file_and_the_readme_example_are_valid():
    assert isinstance(settings.load(), Settings)
    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
    s = parse(example)
    assert s.author and s.student_number and s.date == datetime.date(2024, 4, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            'autor = "A"', "unknown key 'autor'; the keys are title, course, author", id="unknown-key"
        ),
        pytest.param(
            "student_number = 123456", "'student_number' must be a string, not int", id="wrong-type"
        ),
        pytest.param(
            "date = 2024-04-08T10:00:00", "'date' must be a string or a date", id="datetime-not-date"
        ),
        pytest.param('title = "unterminated', "not valid TOML", id="syntax"),
    ],
)
def test_a_bad_file_is_one_clear_error(text, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        parse(text, source="settings.toml")


def test_the_date_comes_from_the_settings_then_source_date_epoch():
    epoch = {
        "SOURCE_DATE_EPOCH": str(int(datetime.datetime(2024, 4, 8, 12, tzinfo=datetime.UTC).timestamp()))
    }
    assert date_text(Settings(date=datetime.date(2024, 3, 28)), epoch) == "28 March 2024"
    assert date_text(Settings(date="Spring 2024"), epoch) == "Spring 2024"
    assert date_text(Settings(), epoch) == "8 April 2024"
    with pytest.raises(SettingsError, match="SOURCE_DATE_EPOCH must be an integer"):
        date_text(Settings(), {"SOURCE_DATE_EPOCH": "yesterday"})


def test_the_title_page_context_uses_the_settings(monkeypatch):
    from report import document

    monkeypatch.setattr(settings, "load", lambda: Settings(author="Ada", date=datetime.date(2024, 4, 8)))
    page = document.title_page({})
    assert page["author"] == "Ada" and page["date"] == "8 April 2024"
