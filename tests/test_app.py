"""The application core's one scheduler: the daily clean-up in every mode; the reminder pass
and the catch-up sweep once a channel can send."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.app import App
from bot.config import Settings
from bot.conversation.state import Conversation
from bot.conversation.states import ConversationStates
from bot.runtime import open_runtime
from bot.store.conversations import ConversationStore
from tests.conftest import TEST_KEY
from tests.reminders.conftest import FakeSender, add_policy, identity


def settings_in(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key=TEST_KEY,
        captcha_workers=0,
        broadcast_paid=True,
        broadcast_rate=1000,
    )


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def test_without_a_sender_only_the_clean_up_runs_at_start_and_daily(
    tmp_path: Path,
) -> None:
    runtime = await open_runtime(settings_in(tmp_path))
    core = App(runtime)
    try:
        store = ConversationStore(runtime.db)
        await ConversationStates(store).save("web", "idle", Conversation())
        await runtime.db.write("UPDATE conversations SET updated_at = '2000-01-01T00:00:00Z'")
        await core.start()
        jobs = {job.id: job for job in core.scheduler.get_jobs()}
        assert set(jobs) - {"prune-at-start"} == {"prune"}
        trigger = jobs["prune"].trigger
        assert str(trigger.timezone) == "Asia/Riyadh"
        assert {f.name: str(f) for f in trigger.fields}["hour"] == "3"
        await wait_for(lambda: not core.scheduler.get_job("prune-at-start"))
        assert not await store.exists("web", "idle")  # pruned at start
    finally:
        await core.stop()
        await runtime.close()
    assert not core.scheduler.running


async def test_with_a_sender_the_pass_runs_daily_and_the_sweep_catches_up_at_start(
    tmp_path: Path,
) -> None:
    settings = settings_in(tmp_path)
    runtime = await open_runtime(settings)
    # After REMINDER_TIME (09:00 in Riyadh) and after the consent below: today's pass is due
    # and has not run.
    real = datetime.now(settings.app.tz) + timedelta(minutes=1)
    now = max(real, datetime.combine(real.date(), time(9, 30), tzinfo=settings.app.tz))
    core = App(runtime, reminder_clock=lambda: now)
    sender = FakeSender()
    core.add_sender(sender)
    try:
        today = now.astimezone(settings.app.tz).date()
        await add_policy(runtime.db, identity(1), expiry=today + timedelta(days=7))
        subscriptions = core.reminders.subscriptions
        await subscriptions.subscribe("telegram", "501", _hmac(identity(1)), "1*******08", "ar")
        # Consent given long before (a reminder is never due on the day of consent).
        await runtime.db.write("UPDATE subscriptions SET consented_at = '2000-01-01T00:00:00Z'")
        await core.start()
        jobs = {job.id: job for job in core.scheduler.get_jobs()}
        assert {"prune", "reminder-pass", "catch-up"} <= set(jobs)
        fields = {f.name: str(f) for f in jobs["reminder-pass"].trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("9", "0")
        # The catch-up at start sends the 7-day reminder, once.
        await wait_for(lambda: len(sender.sent) == 1)
        assert sender.sent[0][0] == "501"
    finally:
        await core.stop()
        await runtime.close()


def _hmac(digits: str) -> bytes:
    from bot.domain.identity import id_hmac

    return id_hmac(TEST_KEY.encode(), digits)
