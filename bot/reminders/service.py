"""Reminders and broadcasts in a running bot: built once at start-up, stopped at shutdown.

service = ReminderService(db, settings, {"telegram": TelegramSender(bulk_bot)})
service.subscriptions    # consent: subscribe / list_for_chat / unsubscribe / unsubscribe_all
service.broadcasts       # preview / create / run / cancel / recent
service.start()          # start-up: resume broadcasts, catch up today's reminder pass
service.daily()          # the daily job at REMINDER_TIME
await service.stop()     # shutdown: finish messages in flight, keep the rest pending
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import date, datetime
from typing import Any

from bot.config import Settings
from bot.domain.policy import today_in
from bot.domain.schedule import reminder_thresholds
from bot.reminders.broadcast import BroadcastRunner, ProgressFor, ReportCallback
from bot.reminders.delivery import Deliverer, PacerFor, ProgressCallback, RetryPolicy
from bot.reminders.pacing import Pace, Pacer, SharedPacer, Timer
from bot.reminders.reminder_pass import ReminderPass, ReminderReport
from bot.reminders.sending import Sender
from bot.store.broadcasts import BroadcastStore
from bot.store.database import Database
from bot.store.pace import SendSlots
from bot.store.subscriptions import ReminderLog, StopReason, SubscriptionStore

log = logging.getLogger(__name__)


def _shared_pace(db: Database) -> PacerFor:
    slots = SendSlots(db)

    def pacer(channel: str, pace: Pace) -> Pacer:
        return SharedPacer(slots, channel, pace.rate)

    return pacer


class ReminderService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        senders: Mapping[str, Sender],
        *,
        paces: Mapping[str, Pace] | None = None,
        retry: RetryPolicy | None = None,
        per_chat: float | None = None,
        timer: Timer | None = None,
        progress_every: float = 3.0,
        today: Callable[[], date] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`paces` by channel (a channel without one goes at BROADCAST_RATE, a second per
        chat). `clock` replaces the wall clock and `today` the calendar (tests); by default
        today is the clock's day in TIMEZONE. `timer` is the clock pacing runs on and
        `per_chat` replaces every channel's gap per chat (tests).

        Each channel's rate is shared through the database with every other process on it
        (bot instances, the CLI), unless a `timer` is given: a test's virtual clock paces in
        this process only."""
        if today is None and clock is not None:
            today = lambda: today_in(settings.app.tz, clock())  # noqa: E731
        self.settings = settings
        self.subscriptions = SubscriptionStore(db, settings.reminders.max_subscriptions_per_chat)
        self.deliverer = Deliverer(
            senders,
            Pace(settings.broadcast.rate),
            on_blocked=self._blocked,
            paces=paces,
            retry=retry,
            per_chat=per_chat,
            timer=timer,
            pacer_for=_shared_pace(db) if timer is None else None,
            progress_every=progress_every,
        )
        self.reminder_pass = ReminderPass(
            ReminderLog(db),
            self.deliverer,
            thresholds=reminder_thresholds(settings.reminders.days),
            tz=settings.app.tz,
            reminder_time=settings.reminders.time,
            today=today,
            clock=clock,
        )
        self.broadcasts = BroadcastRunner(
            BroadcastStore(db), self.deliverer, tz=settings.app.tz, today=today
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweep: asyncio.Task[Any] | None = None

    async def _blocked(self, channel: str, chat_id: str) -> None:
        stopped = await self.subscriptions.deactivate_chat(channel, chat_id, StopReason.BLOCKED)
        if stopped:
            log.info("a chat blocked the bot: %d subscription(s) stopped", stopped)

    def in_background(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `work` beside the bot; failures are logged, never lost silently."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    def start(
        self, progress_for: ProgressFor | None = None, on_report: ReportCallback | None = None
    ) -> None:
        """At start-up, and then every minute: resume broadcasts left unfinished (by a crash,
        a restart or a dead CLI), and run today's reminder pass if its time has passed and it
        has not finished (the bot was down at REMINDER_TIME, or the run was cut short).
        Cheap when there is nothing to do: two small queries."""
        if self._sweep is not None and not self._sweep.done():
            return
        self._sweep = self.in_background(self._catch_up(progress_for, on_report), "catch-up")

    async def _catch_up(
        self, progress_for: ProgressFor | None, on_report: ReportCallback | None
    ) -> None:
        await asyncio.gather(
            self.broadcasts.resume_unfinished(progress_for, on_report),
            self.reminder_pass.run_if_due(),
        )

    def daily(self) -> asyncio.Task[ReminderReport]:
        """The daily job at REMINDER_TIME."""
        return self.in_background(self.reminder_pass.run(), "reminder-pass")

    def start_broadcast(
        self,
        broadcast_id: int,
        on_progress: ProgressCallback | None = None,
        on_report: ReportCallback | None = None,
    ) -> asyncio.Task[None]:
        """Deliver a confirmed broadcast in the background (after `broadcasts.create`)."""

        async def deliver() -> None:
            report = await self.broadcasts.run(broadcast_id, on_progress)
            # Another instance leads it if it was quicker to take it: that one reports.
            if on_report is not None and report.outcome != "joined":
                await on_report(report)

        return self.in_background(deliver(), f"broadcast-{broadcast_id}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Shutdown: messages in flight finish, the rest stays pending for the next start."""
        self.deliverer.close()
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:  # rows in flight stay `sending` and are sent again on resume
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*late, return_exceptions=True)
