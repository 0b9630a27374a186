"""Hooking reminders and broadcasts into a python-telegram-bot Application's JobQueue.

Call `install_jobs(application, service)` from `post_init`, and `await service.stop()` from
`post_stop` (or before `application.stop()`), so a broadcast stops cleanly at shutdown.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import Application, ContextTypes

from bot.reminders.broadcast import ProgressFor, ReportCallback
from bot.reminders.service import ReminderService

SWEEP_EVERY = 60.0  # seconds between looks for unfinished work


def install_jobs(
    application: Application[Any, Any, Any, Any, Any, Any],
    service: ReminderService,
    *,
    progress_for: ProgressFor | None = None,
    on_report: ReportCallback | None = None,
) -> None:
    """Daily pass at REMINDER_TIME in TIMEZONE; at start-up and every minute after, resume
    unfinished broadcasts (also those a dead CLI left) and catch up a missed or cut-short pass.

    The jobs only start background tasks, so they return at once and never hold the
    JobQueue; `service.stop()` ends those tasks.
    """
    jobs = application.job_queue
    if jobs is None:
        raise RuntimeError("JobQueue missing: install python-telegram-bot[job-queue]")
    settings = service.settings

    async def daily(context: ContextTypes.DEFAULT_TYPE) -> None:
        service.daily()

    async def catch_up(context: ContextTypes.DEFAULT_TYPE) -> None:
        service.start(progress_for, on_report)

    jobs.run_daily(
        daily, time=settings.reminder_time.replace(tzinfo=settings.tz), name="reminder-pass"
    )
    # At once, then every minute: resume unfinished broadcasts, catch up a missed pass. Two
    # jobs: a repeating job added before the scheduler starts first fires one interval after
    # the start, whatever `first` says (APScheduler moves a past start date forward).
    jobs.run_once(catch_up, when=0, name="reminders-catch-up-at-start")
    jobs.run_repeating(catch_up, interval=SWEEP_EVERY, first=SWEEP_EVERY, name="reminders-catch-up")
