"""The application core: one running bot, whichever channels are on.

    core = App(runtime)                    the store, the conversations, the captcha (runtime),
                                           the reminders and one scheduler
    core.add_sender(sender, ...)           a channel that can write to people later registers
    await core.start() / await core.stop() once the channels are up / before they stop

The scheduler (APScheduler, not a channel's job queue) runs the daily clean-up in every mode,
the web chat alone included; and, once a channel has registered a sender, the daily reminder
pass at REMINDER_TIME and the sweep that catches up a missed pass and resumes unfinished
broadcasts (at start, then every minute).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.reminders.broadcast import ProgressFor, ReportCallback
from bot.reminders.sending import Sender
from bot.reminders.service import ReminderService
from bot.runtime import PRUNE_AT, Runtime

log = logging.getLogger(__name__)

SWEEP_EVERY = 60.0  # seconds between looks for unfinished reminder and broadcast work


class App:
    def __init__(
        self, runtime: Runtime, *, reminder_clock: Callable[[], datetime] | None = None
    ) -> None:
        """`reminder_clock` replaces the wall clock of the reminder pass (tests)."""
        self.runtime = runtime
        self.settings = settings = runtime.settings
        self.reminders = ReminderService(runtime.db, settings, {}, clock=reminder_clock)
        # A job that could not run on time (the loop was busy, the machine asleep) runs late,
        # once, rather than being skipped until tomorrow.
        self.scheduler = AsyncIOScheduler(
            timezone=settings.app.tz, job_defaults={"coalesce": True, "misfire_grace_time": None}
        )
        self._progress_for: ProgressFor | None = None
        self._on_report: ReportCallback | None = None
        self._running: set[asyncio.Task[Any]] = set()

    def add_sender(
        self,
        sender: Sender,
        *,
        progress_for: ProgressFor | None = None,
        on_report: ReportCallback | None = None,
    ) -> None:
        """A channel that can write to people later: reminders and broadcasts go through
        `sender`; `progress_for` / `on_report` show a resumed broadcast's progress to its
        admin (a channel capability: Telegram edits a message)."""
        self.reminders.deliverer.senders[sender.channel] = sender
        self._progress_for = progress_for or self._progress_for
        self._on_report = on_report or self._on_report

    @property
    def delivers(self) -> bool:
        return bool(self.reminders.deliverer.senders)

    async def start(self) -> None:
        settings, now = self.settings, datetime.now(self.settings.app.tz)
        jobs = self.scheduler
        jobs.add_job(self._prune, _daily(PRUNE_AT, settings), id="prune")
        jobs.add_job(self._prune, next_run_time=now, id="prune-at-start")
        if self.delivers:
            # Without a sender a pass would find no way to reach anyone and fail them all.
            jobs.add_job(self._pass, _daily(settings.reminders.time, settings), id="reminder-pass")
            self.scheduler.add_job(
                self._sweep,
                IntervalTrigger(seconds=SWEEP_EVERY, timezone=settings.app.tz),
                next_run_time=now,  # at once, then every minute
                id="catch-up",
            )
        self.scheduler.start()
        log.info(
            "Scheduler started: clean-up daily at %s%s",
            PRUNE_AT.strftime("%H:%M"),
            f", reminders daily at {settings.reminders.time:%H:%M}" if self.delivers else "",
        )

    # Coroutine functions: APScheduler runs plain functions in a thread, and these use the
    # event loop. Each is tracked, so that stopping waits for one that is running.
    async def _prune(self) -> None:
        await self._tracked(self.runtime.prune())

    async def _pass(self) -> None:
        self.reminders.daily()  # in the reminder service's background (stopped by it)

    async def _sweep(self) -> None:
        self.reminders.start(self._progress_for, self._on_report)

    async def _tracked(self, work: Awaitable[None]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await work
        finally:
            self._running.discard(task)

    async def stop(self) -> None:
        """Before the channels stop: no new jobs, a clean-up under way finishes; messages in
        flight finish, the rest of a broadcast stays pending for the next start."""
        if self.scheduler.running:
            self.scheduler.pause()
            # Before the shutdown, which would cancel a coroutine job half-way.
            if self._running:
                await asyncio.wait(list(self._running), timeout=10)
            self.scheduler.shutdown(wait=False)
        await self.reminders.stop()


def _daily(at: time, settings: Settings) -> CronTrigger:
    """Every day at `at` o'clock in TIMEZONE."""
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.app.tz)
