"""Broadcast delivery benchmark against the fake Bot API running in another process.

    .venv/bin/python bench/broadcast.py                      # 10,000 at 25/s, then 100,000
    .venv/bin/python bench/broadcast.py --inject-429 3 --inject-5xx 20
    .venv/bin/python bench/broadcast.py --recipients 2000 --big 0   # a quick look

Why: the figure that matters for a broadcast is how close it stays to BROADCAST_RATE (never
above it), with nobody lost or sent twice, while live conversations are still answered, and how
much memory a large audience costs. The run goes through everything production uses: SQLite
recipient rows, the delivery workers, the shared pacer and the real python-telegram-bot `Bot`.

Printed per run: messages/s achieved while sending (first to last delivery as the fake saw
them) against the configured rate, the busiest 1-second window, the wall-clock rate (includes
pauses Telegram asked for), lost and duplicated recipients (from the fake's own record of
every call), peak RSS of this process, and reply latency of a live chat during the broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import multiprocessing
import os
import platform
import random
import resource
import sys
import tempfile
import time
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, ClientTimeout
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.channels.telegram_sender import bulk_sender
from bot.config import Settings
from bot.conversation.replies import Message
from bot.domain.audience import Audience, Content
from bot.domain.identity import id_hmac
from bot.reminders.delivery import Progress, workers_for
from bot.reminders.sending import Sender
from bot.reminders.service import ReminderService
from bot.store.database import Database
from bot.store.ledger import timestamp
from bot.store.setup import open_store
from tests.fakes.fake_bot_api import FakeBotAPIProcess, ptb_polling

TOKEN = "123:ABC"
FIRST_CHAT = 1_000_000
LIVE_FIRST_CHAT = 50_000_000  # live-conversation probes, kept apart from the broadcast
TEXT = "تنبيه من خدمة التحقق من التأمين الصحي: تحديث مهم للمشتركين."


class Timed:
    """Notes when each send starts at the bot, to check the pacing where it happens (the
    fake's own timestamps add network jitter)."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.starts: array[float] = array("d")

    async def send(self, chat_id: str, message: Message) -> None:
        self.starts.append(time.monotonic())
        await self.inner.send(chat_id, message)


def busiest_second(stamps: list[float]) -> int:
    """Most sends in any half-open second [t, t + 1): what "never above the rate" means."""
    stamps = sorted(stamps)
    return max((bisect.bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps)), default=0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def populate(db: Database, count: int) -> None:
    """Subscribers straight into SQLite (the subscribe API does one row at a time)."""
    key, consented = b"bench-key", timestamp()
    rows = (
        (
            "telegram",
            str(FIRST_CHAT + i),
            id_hmac(key, f"1{i:09d}"),
            "1*******00",
            "ar" if i % 4 else "en",
            consented,
        )
        for i in range(count)
    )
    await db.write_many(
        "INSERT INTO subscriptions (channel, chat_id, id_hmac, id_masked, locale, consented_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


async def control(session: ClientSession, method: str, path: str, **kwargs: Any) -> Any:
    async with session.request(method, path, **kwargs) as response:
        response.raise_for_status()
        return (await response.json())["result"]


async def inject_faults(
    session: ClientSession, faults: list[list[int]], spread_over: float
) -> None:
    """One fault at a time, spread over the run (all at once would all hit the first calls)."""
    if not faults:
        return
    random.Random(5).shuffle(faults)
    gap = spread_over / (len(faults) + 1)
    for fault in faults:
        await asyncio.sleep(gap)
        await control(
            session, "POST", "/_control/config", json={"errors": {"sendMessage": [fault]}}
        )


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text is not None:
        await context.bot.send_message(message.chat_id, message.text)


def verify(root_url: str, recipients: int, out: Any) -> None:
    """In a child process: the call record of 100,000 messages is big, and parsing it here
    would inflate the RSS being measured."""

    async def fetch() -> list[dict[str, Any]]:
        timeout = ClientTimeout(total=600)
        async with ClientSession(root_url, timeout=timeout) as session:
            result: list[dict[str, Any]] = await control(
                session, "GET", "/_control/calls", params={"method": "sendMessage"}
            )
            return result

    calls = asyncio.run(fetch())
    per_chat: Counter[int] = Counter()
    stamps: list[float] = []
    statuses: Counter[int] = Counter()
    for call in calls:
        chat = int(call["params"]["chat_id"])
        if chat >= LIVE_FIRST_CHAT:
            continue
        statuses[call["status"]] += 1
        if call["status"] == 200:
            per_chat[chat] += 1
            stamps.append(call["timestamp"])
    stamps.sort()
    sending_rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    out.send(
        {
            "lost": recipients - len(per_chat),
            "duplicated": sum(n - 1 for n in per_chat.values()),
            "sending_rate": sending_rate,
            "busiest_second": busiest_second(stamps),
            "statuses": dict(statuses),
        }
    )


def verify_in_child(root_url: str, recipients: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=verify, args=(root_url, recipients, writer))
    process.start()
    writer.close()
    result: dict[str, Any] = reader.recv()
    process.join()
    return result


async def scenario(args: argparse.Namespace, recipients: int, rate: float, live: bool) -> None:
    paid = rate > 30
    label = f"{recipients:,} recipients at BROADCAST_RATE={rate:g}" + (" (paid)" if paid else "")
    print(f"\n== {label}, fake Bot API delay {args.delay_ms:g} ms per call ==", flush=True)
    fake = FakeBotAPIProcess(delay=args.delay_ms / 1000)
    fake.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                _env_file=None,
                database_path=Path(folder) / "bench.sqlite3",
                id_hash_key="bench-key",
                telegram_bot_token=TOKEN,
                telegram_api_url=fake.root_url,
                broadcast_rate=rate,
                broadcast_paid=paid,
            )
            db = await open_store(settings)
            try:
                await populate(db, recipients)
                await run_broadcast(args, settings, db, fake, recipients, rate, live)
            finally:
                await db.close()
    finally:
        fake.stop()


async def run_broadcast(
    args: argparse.Namespace,
    settings: Settings,
    db: Database,
    fake: FakeBotAPIProcess,
    recipients: int,
    rate: float,
    live: bool,
) -> None:
    timeout = ClientTimeout(total=None)
    async with ClientSession(fake.root_url, timeout=timeout) as session:
        rss_ready = current_rss_mb()
        async with bulk_sender(settings, workers_for(rate), bots=args.bots) as telegram:
            sender = Timed(telegram)
            service = ReminderService(db, settings, {"telegram": sender}, progress_every=10)
            broadcast_id = await service.broadcasts.create(
                Audience.all(), Content.custom(TEXT), "bench"
            )
            expected = recipients / rate
            faults = [[429, args.retry_after]] * args.inject_429 + [[500]] * args.inject_5xx
            injector = asyncio.create_task(inject_faults(session, faults, expected))
            cpu0, started = time.process_time(), time.monotonic()

            async def progress(p: Progress) -> None:
                print(
                    f"  {time.monotonic() - started:6.0f} s: sent {p.sent:,}, failed {p.failed:,}, "
                    f"remaining {p.remaining:,}, rss {current_rss_mb():.0f} MB",
                    flush=True,
                )

            app = None
            if live:
                app = ApplicationBuilder().token(TOKEN).base_url(fake.base_url).build()
                app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
                probes = int(expected * args.live_rate)
                async with ptb_polling(app):
                    await control(
                        session,
                        "POST",
                        "/_control/generate",
                        json={
                            "count": probes,
                            "chats": 50,
                            "rate": args.live_rate,
                            "prefix": "live",
                            "first_chat": LIVE_FIRST_CHAT,
                        },
                    )
                    report = await service.broadcasts.run(broadcast_id, progress)
            else:
                report = await service.broadcasts.run(broadcast_id, progress)
            wall = time.monotonic() - started
            cpu = time.process_time() - cpu0
            await injector
        peak = peak_rss_mb()
        stats = await control(session, "GET", "/_control/stats")
    checked = verify_in_child(fake.root_url, recipients)
    s = report.summary
    print(
        f"configured rate        : {rate:g} messages/s ({workers_for(rate)} workers, "
        f"{len(telegram.bots)} bulk Bot(s))"
    )
    print(
        f"achieved while sending : {checked['sending_rate']:.2f} messages/s "
        f"({checked['sending_rate'] / rate:.1%} of the configured rate)"
    )
    print(
        f"busiest 1-second window: {busiest_second(list(sender.starts))} sends started by the "
        f"bot (attempts included), {checked['busiest_second']} deliveries as the fake saw them"
    )
    print(f"wall clock             : {wall:.1f} s, {s.sent / wall:.2f} messages/s overall")
    print(
        f"outcome                : {report.outcome}; sent {s.sent:,}, failed {s.failed:,}, "
        f"blocked {s.blocked:,}; fake answered {checked['statuses']}"
    )
    print(f"lost / duplicated      : {checked['lost']} / {checked['duplicated']}")
    print(f"bot CPU                : {cpu:.1f} s ({cpu / max(s.sent, 1) * 1000:.2f} ms/message)")
    print(f"fake Bot API CPU       : {stats['cpu_s']:.1f} s")
    print(f"RSS                    : {rss_ready:.0f} MB ready to send, peak {peak:.0f} MB")
    if live:
        p = stats["probes"]
        print(
            f"live chat replies      : {p['answered']}/{p['sent']} answered during the broadcast, "
            f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms, max {p['max_ms']} ms "
            f"(includes the {args.delay_ms:g} ms fake latency per call)"
        )


async def main_async(args: argparse.Namespace) -> None:
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}")
    await scenario(args, args.recipients, args.rate, live=args.live_rate > 0)
    if args.big:
        await scenario(args, args.big, args.big_rate, live=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=25.0, help="BROADCAST_RATE (default 25)")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="fake latency per call")
    parser.add_argument("--inject-429", type=int, default=0, help="429s spread over the run")
    parser.add_argument("--retry-after", type=int, default=1, help="retry_after of those 429s")
    parser.add_argument("--inject-5xx", type=int, default=0, help="500s spread over the run")
    parser.add_argument(
        "--live-rate", type=float, default=2.0, help="live chat messages/s during the run (0: none)"
    )
    parser.add_argument(
        "--big", type=int, default=100_000, help="recipients of the memory run (0: skip)"
    )
    parser.add_argument(
        "--big-rate", type=float, default=1000.0, help="rate of the memory run (paid broadcast)"
    )
    parser.add_argument(
        "--bots", type=int, default=1, help="Bots the bulk sender spreads its connections over"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
