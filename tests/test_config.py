"""Settings: read flat by their public env names, kept and read in groups."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from bot.config import ENV_NAMES, AppEnv, Settings, SettingsError, load_settings

EXAMPLE = Path(__file__).parent.parent / ".env.example"


def test_every_env_name_is_in_env_example_and_no_other() -> None:
    listed = set(re.findall(r"^([A-Z_]+)=", EXAMPLE.read_text(), flags=re.MULTILINE))
    assert listed == ENV_NAMES


def test_the_environment_and_dotenv_fill_the_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("WEB_PORT=9000\nREMINDER_TIME=07:30\nTRUSTED_PROXIES=10.0.0.0/8\n")
    monkeypatch.setenv("web_port", "9100")  # the environment beats `.env`, in any case
    monkeypatch.setenv("ADMIN_IDS", "12, 34")
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("ID_HASH_KEY", "k")
    settings = load_settings(_env_file=dotenv)
    assert settings.web.port == 9100
    assert settings.reminders.time == time(7, 30)
    assert [str(n) for n in settings.web.trusted_proxies] == ["10.0.0.0/8"]
    assert settings.telegram.admin_ids == [12, 34]
    assert settings.app.env is AppEnv.PRODUCTION
    assert settings.database.hash_key == b"k"


def test_keyword_arguments_are_env_names_and_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPTCHA_WORKERS", "3")
    settings = Settings(_env_file=None, captcha_workers=0, REMINDER_DAYS="1,7,7")
    assert settings.captcha.workers == 0
    assert settings.reminders.days == [7, 1]
    assert settings.reminders.expiring_soon_days == 7


def test_a_variable_named_like_a_group_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB", '{"port": 1}')
    assert load_settings(_env_file=None).web.port == 8080
    with pytest.raises(TypeError, match="by env name"):
        Settings(_env_file=None, web={"WEB_PORT": 1})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_PORT", "0", "Bad setting WEB_PORT: Input should be greater than or equal to 1"),
        ("REMINDER_TIME", "9am", "Bad setting REMINDER_TIME: must be HH:MM on a 24-hour clock"),
        ("ADMIN_IDS", "1,x", "Bad setting ADMIN_IDS: must be comma-separated whole numbers"),
        ("TIMEZONE", "Mars/Base", "Bad setting TIMEZONE: 'Mars/Base' is not a known time zone"),
        ("TELEGRAM_API_URL", "api.telegram.org", "Bad setting TELEGRAM_API_URL: must start"),
        ("BROADCAST_RATE", "31", "Bad setting BROADCAST_RATE: above Telegram's free limit"),
        ("CAPTCHA_TEST_CODE", "12345", "Bad setting CAPTCHA_TEST_CODE: must be empty or six"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_env_name(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://bot:hunter2secret@db/bot", "must start with postgresql://"),
        ("postgresql://bot:hunter2secret@db:99999/bot", "must be a URL like postgresql://"),
        ("postgresql://bot:hunter2secret@db:5432/", "must name the database"),
    ],
)
def test_a_bad_database_url_is_one_line_without_its_password(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    assert str(raised.value).startswith(f"Bad setting DATABASE_URL: {message}")
    assert "\n" not in str(raised.value) and "hunter2secret" not in str(raised.value)
    # Nor through pydantic's own error, should anything print it.
    with pytest.raises(ValueError) as validation:
        Settings(_env_file=None)
    assert "hunter2secret" not in str(validation.value)


def test_database_url_switches_to_postgresql_and_is_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(_env_file=None).database.location == Path("data/bot.sqlite3")
    url = "postgresql://bot:hunter2secret@db.example:5432/bot"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATABASE_PGBOUNCER", "true")
    settings = load_settings(_env_file=None)
    assert settings.database.location == url and settings.database.pgbouncer
    assert "hunter2secret" not in repr(settings) and "hunter2secret" not in str(settings)
    monkeypatch.setenv("DATABASE_URL", "  ")  # blank: SQLite again
    assert load_settings(_env_file=None).database.url is None


def test_paid_broadcasts_may_go_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADCAST_RATE", "500")
    monkeypatch.setenv("BROADCAST_PAID", "true")
    assert load_settings(_env_file=None).broadcast.rate == 500


def test_production_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(SettingsError, match=r"^Bad settings: ID_HASH_KEY is required"):
        load_settings(_env_file=None)
    monkeypatch.setenv("ID_HASH_KEY", "k")
    monkeypatch.setenv("CAPTCHA_TEST_CODE", "123456")
    with pytest.raises(SettingsError, match=r"^Bad settings: CAPTCHA_TEST_CODE must be empty"):
        load_settings(_env_file=None)


def test_without_id_hash_key_a_development_key_is_kept_beside_the_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    key = Settings(_env_file=None, database_path=path, id_hash_key=" ").database.hash_key
    assert (tmp_path / "data" / ".dev_id_hash_key").read_text().strip().encode() == key
    assert Settings(_env_file=None, database_path=path).database.hash_key == key


def test_whatsapp_is_on_with_its_token_and_number_and_then_needs_its_secrets() -> None:
    from bot.config import SettingsError, load_settings

    off = load_settings(_env_file=None)
    assert not off.whatsapp.enabled and off.whatsapp.api_version == "v25.0"
    with pytest.raises(SettingsError, match=r"^Bad settings: WHATSAPP_APP_SECRET is required"):
        load_settings(_env_file=None, whatsapp_access_token="t", whatsapp_phone_number_id="1")
    with pytest.raises(SettingsError, match="WHATSAPP_VERIFY_TOKEN is required"):
        load_settings(
            _env_file=None,
            whatsapp_access_token="t",
            whatsapp_phone_number_id="1",
            whatsapp_app_secret="s",
        )
    on = load_settings(
        _env_file=None,
        WHATSAPP_ACCESS_TOKEN="t",
        WHATSAPP_PHONE_NUMBER_ID="1",
        WHATSAPP_APP_SECRET="s",
        WHATSAPP_VERIFY_TOKEN="v",
        WHATSAPP_API_URL="http://127.0.0.1:9/",
    )
    assert on.whatsapp.enabled and on.whatsapp.api_url == "http://127.0.0.1:9"
    assert on.whatsapp.rate == 60


def test_whatsapp_token_and_number_go_together() -> None:
    from bot.config import SettingsError, load_settings

    with pytest.raises(SettingsError, match="go together"):
        load_settings(_env_file=None, whatsapp_access_token="t")
    with pytest.raises(SettingsError, match="go together"):
        load_settings(_env_file=None, whatsapp_phone_number_id="123")
    with pytest.raises(SettingsError, match="WHATSAPP_PHONE_NUMBER_ID: must be the phone"):
        load_settings(_env_file=None, whatsapp_phone_number_id="12 3x")
