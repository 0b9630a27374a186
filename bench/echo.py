"""Echo-bot benchmark: a bare PTB polling bot against the fake Bot API in a child process.

    .venv/bin/python bench/echo.py [--updates 5000] [--chats 500] [--delay-ms 0] [--rate 0]

Why: it measures what python-telegram-bot itself costs per update (CPU of the bot process
only; the fake's CPU is spent in its own process) and the latency a user would see from the
moment the update is queued at "Telegram" until the reply reaches it. ``--delay-ms`` adds a
simulated network round trip to every Bot API call; ``--rate`` paces the load (updates/s) instead
of queueing everything at once, which is what makes the latency figures meaningful.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import time
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


async def run(root_url: str, args: argparse.Namespace) -> int:
    builder = ApplicationBuilder().token(TOKEN)
    builder = builder.base_url(f"{root_url}/bot").base_file_url(f"{root_url}/file/bot")
    builder = builder.concurrent_updates(args.concurrency if args.concurrency > 1 else False)
    if args.pool_size:
        builder = builder.connection_pool_size(args.pool_size)
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    timeout = ClientTimeout(total=None)
    async with (
        ClientSession(root_url, timeout=timeout) as session,
        ptb_polling(app, poll_timeout=10),
    ):
        if args.warmup:
            await load(session, args.warmup, args.chats, 0, "warmup")
        await control(session, "POST", "/_control/clear")
        fake_cpu0 = (await control(session, "GET", "/_control/stats"))["cpu_s"]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        stats = await load(session, args.updates, args.chats, args.rate, "bench")
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    fake_cpu = stats["cpu_s"] - fake_cpu0
    probes = stats["probes"]
    answered = probes["answered"]
    polls = stats["by_method"].get("getupdates", 0)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"updates {args.updates}, chats {args.chats}, delay {args.delay_ms:g} ms/call, "
        f"rate {'burst' if args.rate <= 0 else f'{args.rate:g}/s'}, "
        f"concurrent_updates {args.concurrency}, "
        f"connection pool {args.pool_size or 'PTB default (256)'}"
    )
    print(f"answered        {answered}/{args.updates} in {wall:.2f} s")
    print(f"throughput      {answered / wall:,.0f} updates/s")
    print(
        f"bot CPU         {cpu * 1000 / max(answered, 1):.3f} ms/update "
        f"({cpu / wall * 100:.0f}% of one core), peak RSS {peak_rss_mb:.0f} MiB"
    )
    print(
        f"fake API CPU    {fake_cpu * 1000 / max(answered, 1):.3f} ms/update "
        f"({fake_cpu / wall * 100:.0f}% of one core, in its own process)"
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
        "--concurrency", type=int, default=1, help="PTB concurrent_updates (1 = sequential)"
    )
    parser.add_argument(
        "--pool-size", type=int, default=0, help="bot HTTP connection pool (0 = PTB default)"
    )
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    with FakeBotAPIProcess(delay=args.delay_ms / 1000) as fake:
        return asyncio.run(run(fake.root_url, args))


if __name__ == "__main__":
    raise SystemExit(main())
