"""The test suite's own hermeticity: no setting of ours from the shell or from a `.env`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import load_settings
from tests.conftest import OUR_VARIABLES


def test_no_setting_of_ours_is_in_the_environment() -> None:
    assert not [name for name in os.environ if name.upper() in OUR_VARIABLES]


def test_a_dotenv_in_the_working_directory_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("REMINDER_DAYS=2\nTIMEZONE=UTC\nDEFAULT_LOCALE=en\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.reminders.days == [30, 7, 1]
    assert settings.app.timezone == "Asia/Riyadh" and settings.app.default_locale == "ar"
