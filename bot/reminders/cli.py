"""`python -m bot remind` and `python -m bot broadcast`: the operator's (and cron's) view.

Output is English: it is for operators, not for the people the bot serves. Which channels
the messages can leave on (their names, whether they are configured, how to open a bulk sender,
their pace) is given by the entry point (`bot.__main__`): reminders do not import the channels
(see ARCHITECTURE.md, Layering). `remind` sends on every configured channel; `broadcast` on
those `--channel` chooses (default all); `--resume` opens every configured one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser is built for every command; the heavy imports are not
    from rich.progress import Progress as Bar

    from bot.config import Settings
    from bot.conversation.replies import Message
    from bot.domain.audience import Audience, ChannelChoice, Content
    from bot.reminders.broadcast import BroadcastPreview, BroadcastReport
    from bot.reminders.delivery import Progress, ProgressCallback
    from bot.reminders.pacing import Pace
    from bot.reminders.sending import Sender
    from bot.reminders.service import ReminderService
    from bot.store.database import Database

EXIT_OK, EXIT_FAILURES, EXIT_BAD_INPUT, EXIT_BUSY, EXIT_CONFIG = 0, 1, 2, 3, 78


@dataclass(frozen=True, slots=True)
class BulkChannel:
    """A channel the commands can send on: its name, `open(settings, in_flight)`, a sender
    for that many concurrent sends to use as `async with` (e.g. Telegram's `bulk_sender`),
    its `pace(settings)`, and `missing(settings)`: None when it is configured, else what to
    set (one line)."""

    name: str
    open: Callable[[Settings, int], AbstractAsyncContextManager[Sender]]
    pace: Callable[[Settings], Pace]
    missing: Callable[[Settings], str | None]


def add_remind_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    remind = commands.add_parser(
        "remind", help="run the daily expiry-reminder pass now (safe to repeat)"
    )
    remind.add_argument(
        "--date",
        type=date.fromisoformat,
        help="the day to run the pass for, YYYY-MM-DD (default: today in TIMEZONE)",
    )
    remind.add_argument(
        "--dry-run", action="store_true", help="show what is due, send and write nothing"
    )


def add_broadcast_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cast = commands.add_parser(
        "broadcast",
        help="send a message to subscribers",
        description="Send the built-in expiry reminder or a text to subscribers. Every "
        "broadcast is recorded; an interrupted one resumes when the bot starts (or with "
        "--resume ID).",
    )
    cast.add_argument("--audience", help="all | expiring:N | expired | insurer:CODE")
    cast.add_argument(
        "--channel",
        choices=["telegram", "whatsapp", "all"],
        default="all",
        help="whose subscribers: one channel's, or every configured channel's (default all). "
        "On WhatsApp a typed text reaches only those who wrote in the last 24 hours",
    )
    what = cast.add_mutually_exclusive_group()
    what.add_argument("--template", choices=["expiry"], help="the personalised expiry reminder")
    what.add_argument("--text", help="the message text (plain text)")
    what.add_argument("--text-file", type=Path, help="read the message text from a UTF-8 file")
    cast.add_argument("--dry-run", action="store_true", help="preview and count, send nothing")
    cast.add_argument("--yes", action="store_true", help="send without asking to confirm")
    cast.add_argument("--resume", type=int, metavar="ID", help="go on with broadcast ID")
    cast.add_argument("--list", action="store_true", help="list recent broadcasts")


# ------------------------------------------------------------------------------ remind


async def run_remind(
    settings: Settings, args: argparse.Namespace, channels: list[BulkChannel]
) -> int:
    from bot.store.setup import open_store

    db = await open_store(settings)
    try:
        if args.dry_run:
            service = _service(db, settings, channels, None)
            report = await service.reminder_pass.run(args.date, dry_run=True)
            print(report.summary())
            return EXIT_OK
        async with _bulk_senders(settings, channels, all_wanted=False) as senders:
            if senders is None:
                return EXIT_CONFIG
            service = _service(db, settings, channels, senders)
            with _stop_on_signals(service.deliverer.stop_all), _bar("Reminders") as show:
                report = await service.reminder_pass.run(args.date, progress=show)
        print(report.summary())
        if report.busy:
            return EXIT_BUSY
        result = report.result
        if result is not None and (not result.complete or result.progress.failed):
            return EXIT_FAILURES
        return EXIT_OK
    finally:
        await db.close()


# --------------------------------------------------------------------------- broadcast


async def run_broadcast(
    settings: Settings, args: argparse.Namespace, channels: list[BulkChannel]
) -> int:
    from bot.domain.audience import BadAudience, BadContent, ChannelChoice
    from bot.store.broadcasts import EmptyAudience, UnknownInsurer
    from bot.store.setup import open_store

    choice = ChannelChoice(args.channel)
    # A resumed broadcast goes on to whoever it still has, on every configured channel.
    wanted = channels if args.resume is not None else _chosen(channels, choice)
    db = await open_store(settings)
    try:
        if args.list:
            await _list(_service(db, settings, channels, None))
            return EXIT_OK
        if args.resume is None:
            try:
                audience, content = _parse_request(args)
            except (BadAudience, BadContent, OSError, UnicodeDecodeError) as exc:
                print(f"broadcast: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
        if args.dry_run and args.resume is None:
            try:
                dry = _service(db, settings, wanted, None)
                preview = await dry.broadcasts.preview(audience, content)
            except UnknownInsurer as exc:
                print(f"broadcast: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            _print_preview(preview)
            print("Dry run: nothing sent, nothing recorded.")
            return EXIT_OK
        all_wanted = args.resume is None and choice is not ChannelChoice.ALL
        async with _bulk_senders(settings, wanted, all_wanted=all_wanted) as senders:
            if senders is None:
                return EXIT_CONFIG
            service = _service(db, settings, wanted, senders)
            if args.resume is not None:
                broadcast_id = args.resume
            else:
                try:
                    preview = await service.broadcasts.preview(audience, content)
                except UnknownInsurer as exc:
                    print(f"broadcast: {exc}", file=sys.stderr)
                    return EXIT_BAD_INPUT
                _print_preview(preview)
                if preview.recipients == 0:
                    print("Nobody to send to: nothing recorded.")
                    return EXIT_OK
                if not _confirmed(args.yes, preview.recipients):
                    return EXIT_BAD_INPUT
                try:
                    broadcast_id = await service.broadcasts.create(
                        audience, content, f"cli:{_login()}"
                    )
                except EmptyAudience:
                    print("Nobody to send to any more: nothing recorded.")
                    return EXIT_OK
                print(f"Broadcast #{broadcast_id} recorded; sending.")
            with (
                _stop_on_signals(service.deliverer.stop_all),
                _bar(f"Broadcast #{broadcast_id}") as show,
            ):
                try:
                    report = await service.broadcasts.run(broadcast_id, show)
                except KeyError:
                    print(f"broadcast: no broadcast #{broadcast_id}", file=sys.stderr)
                    return EXIT_BAD_INPUT
        return await _print_report(service, report)
    finally:
        await db.close()


def _parse_request(args: argparse.Namespace) -> tuple[Audience, Content]:
    from bot.domain.audience import Audience, BadAudience, BadContent, Content

    if not args.audience:
        raise BadAudience("--audience is required (all | expiring:N | expired | insurer:CODE)")
    audience = Audience.parse(args.audience)
    if args.template:
        return audience, Content.expiry_template()
    if args.text is not None:
        return audience, Content.custom(args.text)
    if args.text_file is not None:
        return audience, Content.custom(args.text_file.read_text(encoding="utf-8-sig"))
    raise BadContent("say what to send: --template expiry, --text TEXT or --text-file FILE")


def _confirmed(yes: bool, recipients: int) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        print("Not sent: add --yes to send without a terminal to confirm.", file=sys.stderr)
        return False
    answer = input(f"Send to {recipients:,} recipient(s)? Type yes to send: ")
    if answer.strip().lower() != "yes":
        print("Cancelled: nothing sent, nothing recorded.")
        return False
    return True


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _chosen(channels: list[BulkChannel], choice: ChannelChoice) -> list[BulkChannel]:
    names = choice.pick(tuple(channel.name for channel in channels))
    return [channel for channel in channels if channel.name in names]


def _print_preview(preview: BroadcastPreview) -> None:
    print(f"Audience: {preview.audience}")
    print(f"Recipients: {preview.recipients:,}")
    if preview.sample is not None:
        print(f"What the first recipient will see (language: {preview.sample_locale}):")
        print(_framed(preview.sample))


def _framed(message: Message) -> str:
    rule = "-" * 60
    buttons = [" ".join(f"[ {b.label} ]" for b in row) for row in message.buttons]
    return "\n".join([rule, message.text, *buttons, rule])


async def _print_report(service: ReminderService, report: BroadcastReport) -> int:
    s = report.summary
    print(
        f"Broadcast #{s.id} {report.outcome}: {s.total:,} recipients; sent {s.sent:,}, "
        f"failed {s.failed:,}, blocked {s.blocked:,}, skipped {s.skipped - s.outside_window:,} "
        f"(opted out or cancelled), remaining {s.remaining:,}."
    )
    if s.outside_window:
        print(f"Outside WhatsApp's 24-hour window (not sent): {s.outside_window:,}.")
    if report.stopped_because:
        print(f"Stopped: {report.stopped_because}")
    if s.resent:
        print(f"Sent again after a restart (may have arrived twice): {s.resent:,}.")
    if report.took_seconds:
        # This run's own rate: a resumed broadcast's earlier runs sent the rest.
        this_run = (
            "" if report.sent_this_run == s.sent else f"; this run sent {report.sent_this_run:,}"
        )
        print(f"Took {report.took_seconds:.1f} s{this_run} ({report.rate:.1f} messages/s).")
    reasons = await service.broadcasts.store.failure_reasons(s.id)
    for reason, count in reasons:
        print(f"  failed {count:,}x: {reason}")
    if report.outcome == "busy":
        print("Another process is delivering it right now.")
        return EXIT_BUSY
    if report.outcome == "joined":
        # It claimed from the same list as the bot (or another CLI) and shared its pace.
        print(
            f"Another process leads broadcast #{s.id} (its progress message and its report); "
            "this one sent its share of the recipients beside it."
        )
        return EXIT_OK
    if report.outcome == "interrupted":
        print(f"Not finished: run again with --resume {s.id} (the bot also resumes it).")
        return EXIT_FAILURES
    return EXIT_FAILURES if s.failed or report.outcome == "cancelled" else EXIT_OK


async def _list(service: ReminderService) -> None:
    from bot.reminders.texts import local_time_text

    summaries = await service.broadcasts.recent(20)
    if not summaries:
        print("No broadcasts yet.")
    for s in summaries:
        what = "expiry reminder" if s.content.template else repr((s.content.text or "")[:40])
        print(
            f"#{s.id} {local_time_text(s.created_at, service.settings.app.tz)} by {s.created_by}: "
            f"{s.audience}, {what}; {s.status.value}: {s.total:,} recipients, sent {s.sent:,}, "
            f"failed {s.failed:,}, blocked {s.blocked:,}, skipped {s.skipped:,}"
        )


# ----------------------------------------------------------------------------- plumbing


def _service(
    db: Database,
    settings: Settings,
    channels: list[BulkChannel],
    senders: dict[str, Sender] | None,
) -> ReminderService:
    """With `senders` None (a dry run, a listing), stand-ins for `channels`: previews count
    their chats, nothing goes out."""
    from bot.reminders.sending import SenderUnavailable
    from bot.reminders.service import ReminderService

    class NotSending:
        def __init__(self, name: str) -> None:
            self.channel = name

        async def send(self, chat_id: str, message: Message) -> None:
            raise SenderUnavailable("dry run")

    if senders is None:
        senders = {channel.name: NotSending(channel.name) for channel in channels}
    paces = {channel.name: channel.pace(settings) for channel in channels}
    return ReminderService(db, settings, senders, paces=paces, progress_every=1.0)


@contextlib.asynccontextmanager
async def _bulk_senders(
    settings: Settings, channels: list[BulkChannel], *, all_wanted: bool
) -> AsyncIterator[dict[str, Sender] | None]:
    """A bulk sender for each configured one of `channels`, on connections of its own; None
    (after saying what to set) when none is configured, or when `all_wanted` and one is
    not (the operator named it). Unconfigured channels are otherwise left out quietly:
    "all" means every configured one."""
    from bot.reminders.delivery import workers_for

    missing = {channel.name: channel.missing(settings) for channel in channels}
    ready = [channel for channel in channels if missing[channel.name] is None]
    unset = [text for text in missing.values() if text is not None]
    if not ready or (all_wanted and unset):
        print(f"{'; '.join(unset)}: nothing can be sent (see .env.example).")
        yield None
        return
    async with contextlib.AsyncExitStack() as stack:
        senders: dict[str, Sender] = {}
        for channel in ready:
            in_flight = workers_for(channel.pace(settings).rate)
            senders[channel.name] = await stack.enter_async_context(
                channel.open(settings, in_flight)
            )
        yield senders


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C / SIGTERM: finish the messages in flight, keep the rest for a resume."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def handle() -> None:
        print("\nStopping after the messages in flight…", file=sys.stderr)
        stop()
        for sig in signals:  # a second Ctrl-C falls through to the default (exit now)
            loop.remove_signal_handler(sig)

    for sig in signals:
        loop.add_signal_handler(sig, handle)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _bar(title: str) -> Iterator[ProgressCallback]:
    """A progress bar on a terminal; a line every 10 seconds in a log (cron)."""
    if not sys.stdout.isatty():
        yield _log_lines(title)
        return
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    bar: Bar
    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TextColumn("{task.fields[counts]}"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(title, total=None, counts="")

        async def show(p: Progress) -> None:
            done = p.total - p.remaining
            counts = f"sent {p.sent:,} failed {p.failed:,} blocked {p.blocked:,}"
            if p.outside_window:
                counts += f" outside 24 h {p.outside_window:,}"
            if p.paused_for > 0:
                counts += f" (asked to slow down: waiting {p.paused_for:.0f} s)"
            bar.update(task, total=p.total, completed=done, counts=counts)

        yield show


def _log_lines(title: str) -> ProgressCallback:
    last = [0.0]

    async def show(p: Progress) -> None:
        if p.elapsed - last[0] < 10 and p.remaining:
            return
        last[0] = p.elapsed
        eta = p.eta_seconds
        outside = (
            f", outside WhatsApp's 24-hour window {p.outside_window:,}" if p.outside_window else ""
        )
        print(
            f"{title}: sent {p.sent:,}, failed {p.failed:,}, blocked {p.blocked:,}, "
            f"skipped {p.skipped - p.outside_window:,}{outside}, remaining {p.remaining:,}"
            + (f", about {eta:.0f} s left" if eta is not None and p.remaining else ""),
            flush=True,
        )

    return show
