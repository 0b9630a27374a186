"""Echo-bot benchmark: a bare PTB polling bot against the fake Bot API in a child process.

    .venv/bin/python bench/echo.py [--updates 5000] [--chats 500] [--delay-ms 0] [--rate 0]
                                   [--like-bot] [--concurrency N]

Why: it measures what python-telegram-bot itself costs per update (CPU of the bot process
only; the fake's CPU is spent in its own process) and the latency a user would see from the
moment the update is queued at "Telegram" until the reply reaches it. ``--delay-ms`` adds a
simulated network round trip to every Bot API call; ``--rate`` paces the load (updates/s) instead
of queueing everything at once, which is what makes the latency figures meaningful.

Two set-ups: PTB as it comes (httpx, one update at a time), and ``--like-bot``, the bot's own
(its aiohttp client, ``CONCURRENT_UPDATES`` at once through ``PerChatUpdateProcessor``, its rate
limiter): the like-for-like reference for bench/conversation.py, which prints both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import telegram
from aiohttp import ClientSession, ClientTimeout
from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from tests.fakes.fake_bot_api import FakeBotAPIProcess, ptb_polling

TOKEN = "123:ABC"


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text is not None:
        await context.bot.send_message(message.chat_id, message.text)


async def control(session: ClientSession, method: str, path: str, **kwargs: Any) -> Any:
    async with session.request(method, path, **kwargs) as response:
        response.raise_for_status()
        return (await response.json())["result"]


async def load(
    session: ClientSession, count: int, chats: int, rate: float, prefix: str, stall: float = 60
) -> dict[str, Any]:
    """Have the fake generate ``count`` texts and wait until every one got its echo.

    Gives up when no reply arrived for ``stall`` seconds (paced runs: beyond the pacing).
    """
    body = {"count": count, "chats": chats, "rate": rate, "prefix": prefix}
    await control(session, "POST", "/_control/generate", json=body)
    answered, last_progress = -1, time.monotonic()
    while True:
        stats: dict[str, Any] = await control(
            session, "GET", "/_control/wait", params={"answered": count, "timeout": 10}
        )
        now_answered = stats["probes"]["answered"]
        if now_answered >= count:
            return stats
        if now_answered > answered or stats["probes"]["sent"] < count:
            answered, last_progress = now_answered, time.monotonic()
        elif time.monotonic() - last_progress > stall:
            return stats


def build_echo_app(
    root_url: str, *, like_bot: bool, concurrency: int = 1, pool_size: int = 0
) -> Any:
    """An echo bot on the fake at `root_url`.

    like_bot=False: PTB as it comes (httpx, `concurrency` updates at once, 1 = sequential).
    like_bot=True: the bot's own set-up (bot/channels/telegram.py): its aiohttp clients
    (`default_requests`), `PerChatUpdateProcessor(concurrency)` and its rate limiter, so the
    only difference from the bot under test is the handler.
    """
    builder = ApplicationBuilder().token(TOKEN)
    builder = builder.base_url(f"{root_url}/bot").base_file_url(f"{root_url}/file/bot")
    if like_bot:
        from bot.channels.ordering import PerChatUpdateProcessor
        from bot.channels.telegram import default_rate_limiter, default_requests

        calls, updates = default_requests(concurrency)
        builder = builder.request(calls).get_updates_request(updates)
        builder = builder.concurrent_updates(PerChatUpdateProcessor(concurrency))
        builder = builder.rate_limiter(default_rate_limiter())
    else:
        builder = builder.concurrent_updates(concurrency if concurrency > 1 else False)
        if pool_size:
            builder = builder.connection_pool_size(pool_size)
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


@dataclass
class EchoResult:
    updates: int
    answered: int
    wall_s: float
    bot_cpu_s: float  # this process (the echo bot)
    fake_cpu_s: float  # the fake Bot API's process
    stats: dict[str, Any]

    @property
    def per_s(self) -> float:
        return self.answered / max(self.wall_s, 1e-9)

    @property
    def bot_cpu_ms(self) -> float:
        return self.bot_cpu_s * 1000 / max(self.answered, 1)

    @property
    def fake_cpu_ms(self) -> float:
        return self.fake_cpu_s * 1000 / max(self.answered, 1)


async def measure(
    root_url: str, app: Any, updates: int, chats: int, rate: float = 0, warmup: int = 200
) -> EchoResult:
    """Queue `updates` texts at the fake (`rate` 0: all at once), wait for every echo."""
    async with (
        ClientSession(root_url, timeout=ClientTimeout(total=None)) as session,
        ptb_polling(app, poll_timeout=10),
    ):
        if warmup:
            await load(session, warmup, chats, 0, "warmup")
        await control(session, "POST", "/_control/clear")
        fake_cpu0 = (await control(session, "GET", "/_control/stats"))["cpu_s"]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stats = await load(session, updates, chats, rate, "bench")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    answered = stats["probes"]["answered"]
    return EchoResult(updates, answered, wall, cpu, stats["cpu_s"] - fake_cpu0, stats)


def describe(label: str, r: EchoResult) -> str:
    """One line: updates/s, then CPU per update of the bot and of the fake, side by side."""
    return (
        f"{label}: {r.per_s:7.1f} updates/s; CPU per update bot {r.bot_cpu_ms:.3f} ms, "
        f"fake API {r.fake_cpu_ms:.3f} ms ({r.bot_cpu_s / r.wall_s * 100:.0f}% + "
        f"{r.fake_cpu_s / r.wall_s * 100:.0f}% of a core)"
        + ("" if r.answered == r.updates else f"  !! only {r.answered}/{r.updates} answered")
    )


async def run(root_url: str, args: argparse.Namespace) -> int:
    app = build_echo_app(
        root_url, like_bot=args.like_bot, concurrency=args.concurrency, pool_size=args.pool_size
    )
    r = await measure(root_url, app, args.updates, args.chats, args.rate, args.warmup)
    stats, probes, answered, wall = r.stats, r.stats["probes"], r.answered, r.wall_s
    polls = stats["by_method"].get("getupdates", 0)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    client = (
        "the bot's own set-up (aiohttp, PerChatUpdateProcessor, rate limiter)"
        if args.like_bot
        else f"PTB defaults (httpx, pool {args.pool_size or 'default (256)'})"
    )
    print(
        f"updates {args.updates}, chats {args.chats}, delay {args.delay_ms:g} ms/call, "
        f"rate {'burst' if args.rate <= 0 else f'{args.rate:g}/s'}, "
        f"{args.concurrency} updates at once, {client}"
    )
    print(f"answered        {answered}/{args.updates} in {wall:.2f} s")
    print(f"throughput      {answered / wall:,.0f} updates/s")
    print(
        f"bot CPU         {r.bot_cpu_ms:.3f} ms/update "
        f"({r.bot_cpu_s / wall * 100:.0f}% of one core), peak RSS {peak_rss_mb:.0f} MiB"
    )
    print(
        f"fake API CPU    {r.fake_cpu_ms:.3f} ms/update "
        f"({r.fake_cpu_s / wall * 100:.0f}% of one core, in its own process)"
    )
    print(
        f"latency         p50 {probes['p50_ms']} ms, p90 {probes['p90_ms']} ms, "
        f"p99 {probes['p99_ms']} ms, max {probes['max_ms']} ms (queued -> reply at the API)"
    )
    print(f"getUpdates      {polls} calls, {answered / max(polls, 1):.1f} updates per call")
    return 0 if answered == args.updates else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every API call")
    parser.add_argument("--rate", type=float, default=0.0, help="updates/s; 0 queues all at once")
    parser.add_argument(
        "--like-bot",
        action="store_true",
        help="the bot's own set-up: aiohttp, PerChatUpdateProcessor, rate limiter",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="updates at once (default: 1 = sequential; with --like-bot the bot's own)",
    )
    parser.add_argument(
        "--pool-size", type=int, default=0, help="bot HTTP connection pool (0 = PTB default)"
    )
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    if not args.concurrency:
        from bot.channels.telegram import CONCURRENT_UPDATES

        args.concurrency = CONCURRENT_UPDATES if args.like_bot else 1
    with FakeBotAPIProcess(delay=args.delay_ms / 1000) as fake:
        return asyncio.run(run(fake.root_url, args))


if __name__ == "__main__":
    raise SystemExit(main())
