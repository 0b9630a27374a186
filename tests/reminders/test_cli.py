"""`python -m bot remind` and `python -m bot broadcast`, called in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.__main__ import main
from bot.config import Settings
from bot.domain.identity import id_hmac, mask_id
from bot.domain.policy import today_in
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore
from tests.conftest import TEST_KEY, store_env
from tests.fakes.fake_bot_api import FakeBotAPIProcess
from tests.reminders.conftest import LONG_AGO, add_policy, identity


def populate(settings: Settings, day: date) -> None:
    async def go() -> None:
        db = await open_store(settings)
        subs = SubscriptionStore(db)
        for i, days in enumerate((7, 30, 90)):
            digits = identity(i)
            await add_policy(db, digits, expiry=day + timedelta(days=days))
            await subs.subscribe(
                "telegram",
                900 + i,
                id_hmac(TEST_KEY.encode(), digits),
                mask_id(digits),
                "en",
                now=LONG_AGO,
            )
        await db.close()

    asyncio.run(go())


@pytest.fixture
def day(frozen_clock: time_machine.Traveller) -> date:
    """Today in TIMEZONE, as the commands see it: broadcasts count days from it too."""
    return today_in(ZoneInfo("Asia/Riyadh"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, day: date, settings: Settings) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    # main() points logging at the stderr of the moment; pytest swaps stderr per test.
    monkeypatch.setattr("bot.__main__.setup_logging", lambda: None)
    for name, value in {
        **store_env(settings),
        "ID_HASH_KEY": TEST_KEY,
        "TELEGRAM_BOT_TOKEN": "",
        "BROADCAST_RATE": "25",
        "BROADCAST_PAID": "false",
    }.items():
        monkeypatch.setenv(name, value)
    populate(settings, day)
    return settings.database.path


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBotAPIProcess]:
    with FakeBotAPIProcess() as process:
        yield process


def test_remind_dry_run_says_what_is_due(
    env: Path, day: date, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["remind", "--dry-run", "--date", day.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"Reminder pass for {day}: 2 would send (30 days: 1, 7 days: 1)" in out


def test_remind_dry_run_counts_one_day_in_the_singular(
    env: Path, day: date, capsys: pytest.CaptureFixture[str]
) -> None:
    tomorrow_ends = day + timedelta(days=6)  # the first policy ends a day after this pass
    assert main(["remind", "--dry-run", "--date", tomorrow_ends.isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"Reminder pass for {tomorrow_ends}: 2 would send (30 days: 1, 1 day: 1);" in out
    assert "1 days" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--audience", "expiring:x", "--text", "hi"], "expiring:N needs a number"),
        (["--audience", "all"], "say what to send"),
        (["--text", "hi"], "--audience is required"),
        (["--audience", "all", "--text", "   "], "the message is empty"),
        (["--audience", "insurer:NOPE", "--text", "hi", "--dry-run"], "no insurer"),
    ],
)
def test_bad_broadcast_requests_exit_2_with_the_reason(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["broadcast", *argv]) == 2
    assert message in capsys.readouterr().err


def test_broadcast_dry_run_previews_and_records_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["broadcast", "--audience", "expiring:30", "--template", "expiry", "--dry-run"]) == 0
    )
    out = capsys.readouterr().out
    # The preview is the message itself: a count and its unit are held by a no-break space.
    assert "Recipients: 2" in out and "expires in 7\u00a0days" in out
    assert "[ Stop these reminders ]" in out
    assert main(["broadcast", "--list"]) == 0
    assert "No broadcasts yet." in capsys.readouterr().out


def test_sending_needs_a_token_and_a_confirmation(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeBotAPIProcess,
) -> None:
    assert main(["broadcast", "--audience", "all", "--text", "hi", "--yes"]) == 78
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:ABC")
    monkeypatch.setenv("TELEGRAM_API_URL", fake.root_url)
    assert main(["broadcast", "--audience", "all", "--text", "hi"]) == 2  # stdin is no terminal
    assert "add --yes" in capsys.readouterr().err


def test_broadcast_and_remind_through_the_fake_bot_api(
    env: Path,
    day: date,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeBotAPIProcess,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:ABC")
    monkeypatch.setenv("TELEGRAM_API_URL", fake.root_url)
    assert main(["broadcast", "--audience", "all", "--text", "Service update", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Broadcast #1 done: 3 recipients; sent 3, failed 0, blocked 0" in out
    assert main(["remind", "--date", day.isoformat()]) == 0
    assert "Sent 2, failed 0, blocked 0, skipped 0." in capsys.readouterr().out
    assert main(["remind", "--date", day.isoformat()]) == 0  # idempotent
    assert "0 due; 2 already sent earlier." in capsys.readouterr().out
    assert main(["broadcast", "--list"]) == 0
    assert "#1 " in capsys.readouterr().out
    assert main(["broadcast", "--resume", "1"]) == 0  # already done: nothing to do
    assert main(["broadcast", "--resume", "99"]) == 2


def test_a_channel_that_is_not_configured_is_named_and_nothing_is_sent(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["broadcast", "--channel", "whatsapp", "--audience", "all", "--text", "hi", "--yes"]
    assert main(argv) == 78
    assert (
        "WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID are not set: nothing can be sent"
        in capsys.readouterr().out
    )
    # A dry run counts that channel's subscribers only (these are all on Telegram).
    assert main([*argv[:-1], "--dry-run"]) == 0
    assert "Recipients: 0" in capsys.readouterr().out
    telegram = ["broadcast", "--channel", "telegram", "--audience", "all", "--text", "hi"]
    assert main([*telegram, "--dry-run"]) == 0
    assert "Recipients: 3" in capsys.readouterr().out
