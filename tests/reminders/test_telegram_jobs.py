from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.channels.telegram_jobs import install_jobs
from bot.reminders.service import ReminderService
from bot.store.database import Database
from tests.fakes.fake_bot_api import FakeBotAPI
from tests.reminders.conftest import TODAY, FakeSender, add_policy, identity, subscribe


async def test_jobs_run_the_pass_daily_at_reminder_time_and_catch_up_at_start(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    async with FakeBotAPI() as api:
        app = api.application_builder().build()
        install_jobs(app, service)
        assert app.job_queue is not None
        jobs = {job.name: job for job in app.job_queue.jobs()}
        assert set(jobs) == {"reminder-pass", "reminders-catch-up", "reminders-catch-up-at-start"}
        trigger: Any = jobs["reminder-pass"].job.trigger
        assert str(trigger.timezone) == "Asia/Riyadh"
        assert {f.name: str(f) for f in trigger.fields}["hour"] == "9"

        # The daily job only starts the pass in the background and returns at once.
        await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
        await subscribe(service, 1, identity(1))
        task = service.daily()
        report = await asyncio.wait_for(task, 5)
        assert report.day == TODAY and len(sender.sent) == 1
        await service.stop()
