"""The application core: one running bot, whichever channels are on.

    core = App(runtime)                    the store, the conversations, the captcha (runtime),
                                           the reminders, one scheduler, one HTTP app
    core.add_channel(channel)              every configured channel registers (its routes, its
                                           start and stop, a line for the banner)
    core.add_sender(sender, pace, ...)     a channel that can write to people later
    await core.serve(stop)                 everything, until `stop` is set

The scheduler (APScheduler, not a channel's job queue) runs the daily clean-up in every mode,
the web chat alone included; and, once a channel has registered a sender, the daily reminder
pass at REMINDER_TIME and the sweep that catches up a missed pass and resumes unfinished
broadcasts (at start, then every minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, time
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from starlette.routing import BaseRoute

from bot.config import Settings
from bot.http import HttpServer, build_http_app, http_server
from bot.reminders.broadcast import ProgressFor, ReportCallback
from bot.reminders.pacing import Pace, Timer
from bot.reminders.sending import Sender
from bot.reminders.service import ReminderService
from bot.runtime import PRUNE_AT, Runtime

log = logging.getLogger(__name__)

SWEEP_EVERY = 60.0  # seconds between looks for unfinished reminder and broadcast work


class StartupError(Exception):
    """The bot cannot start for a reason the operator can fix; the message says which."""


class ConfigurationError(StartupError):
    """The settings do not fit how the bot is deployed (exit status 78, like a bad setting)."""


class Channel(Protocol):
    """What a channel gives the application."""

    name: str  # its key in /healthz ("telegram", "whatsapp", "web")

    def routes(self) -> Sequence[BaseRoute]:
        """Its part of the one HTTP app (a webhook, the web chat), if any."""
        ...

    async def start(self) -> None:
        """Once the HTTP server listens (a webhook can be registered)."""
        ...

    async def stop(self) -> None: ...

    def describe(self, url: str | None) -> str:
        """One line for the start-up banner: what runs, and where (`url`: the HTTP app's)."""
        ...

    def health(self) -> str:
        """For /healthz: "ok" while it answers, else a word saying why not ("stopped")."""
        ...


class App:
    def __init__(
        self,
        runtime: Runtime,
        *,
        reminder_clock: Callable[[], datetime] | None = None,
        pacing: Timer | None = None,
    ) -> None:
        """`reminder_clock` replaces the wall clock of the reminder pass, `pacing` the clock
        bulk sending is paced on (tests)."""
        self.runtime = runtime
        self.settings = settings = runtime.settings
        self.reminders = ReminderService(
            runtime.db, settings, {}, clock=reminder_clock, timer=pacing
        )
        # A job that could not run on time (the loop was busy, the machine asleep) runs late,
        # once, rather than being skipped until tomorrow.
        self.scheduler = AsyncIOScheduler(
            timezone=settings.app.tz, job_defaults={"coalesce": True, "misfire_grace_time": None}
        )
        self._progress_for: ProgressFor | None = None
        self._on_report: ReportCallback | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self.channels: list[Channel] = []
        self._server: HttpServer | None = None

    def add_channel(self, channel: Channel) -> None:
        self.channels.append(channel)

    def add_sender(
        self,
        sender: Sender,
        pace: Pace | None = None,
        *,
        progress_for: ProgressFor | None = None,
        on_report: ReportCallback | None = None,
    ) -> None:
        """A channel that can write to people later: reminders and broadcasts go through
        `sender` at the channel's `pace` (default: BROADCAST_RATE); `progress_for` /
        `on_report` show a resumed broadcast's progress to its admin (a channel capability:
        Telegram edits a message)."""
        self.reminders.deliverer.add(sender, pace)
        self._progress_for = progress_for or self._progress_for
        self._on_report = on_report or self._on_report

    async def health(self) -> tuple[bool, dict[str, object]]:
        """/healthz: the database (reachable within a few seconds) and each channel. Unhealthy
        when any is not "ok", so that a load balancer stops sending this instance traffic."""
        database = await self.runtime.database_health()
        channels = {channel.name: channel.health() for channel in self.channels}
        healthy = database == "ok" and all(state == "ok" for state in channels.values())
        status = "ok" if healthy else "unavailable"
        return healthy, {"status": status, "database": database, "channels": channels}

    @property
    def delivers(self) -> bool:
        return bool(self.reminders.deliverer.channels)

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

    async def serve(self, stop: asyncio.Event) -> None:
        """The HTTP app (if a channel has routes), every channel, the scheduler; until `stop`
        is set or the HTTP server fails. Stopped in reverse order, whatever happens."""
        routes = [route for channel in self.channels for route in channel.routes()]
        settings = self.settings
        async with contextlib.AsyncExitStack() as running:
            url = None
            if routes:
                try:
                    server = http_server(
                        build_http_app(routes, self.health), settings.web.host, settings.web.port
                    )
                except OSError as exc:
                    raise StartupError(
                        f"Cannot listen on {settings.web.host}:{settings.web.port} "
                        f"(WEB_HOST, WEB_PORT): {exc}"
                    ) from exc
                try:
                    serving = await running.enter_async_context(server.running())
                except RuntimeError as exc:
                    raise StartupError(str(exc)) from exc
                self._server = server
                url = f"http://{server.host}:{server.port}"
            for channel in self.channels:
                await channel.start()
                running.push_async_callback(channel.stop)
            await self.start()
            running.push_async_callback(self.stop)
            print("\n".join(channel.describe(url) for channel in self.channels), flush=True)
            waiting: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
            if routes:
                waiting.append(serving)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            waiting[0].cancel()
            if routes and serving.done() and not stop.is_set():
                serving.result()  # the server's own failure, if it raised one
                raise StartupError("The HTTP server stopped; shutting down")

    @property
    def port(self) -> int | None:
        """The port the HTTP app listens on, once it does (WEB_PORT=0 picks a free one)."""
        return self._server.port if self._server is not None else None

    def stop_now(self) -> None:
        """A second Ctrl+C: stop the HTTP server without waiting for open connections."""
        if self._server is not None:
            self._server.stop_now()


def _daily(at: time, settings: Settings) -> CronTrigger:
    """Every day at `at` o'clock in TIMEZONE."""
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.app.tz)
