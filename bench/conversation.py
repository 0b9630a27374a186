"""Full lookups through Telegram: simulated people against the real bot, fake Bot API apart.

    .venv/bin/python bench/conversation.py [--users 500] [--delays-ms 0,100] [--profile]

Three processes, so each figure is billed to the right one: the fake Bot API (child), the
simulated people (child: a driver that plays every chat through the fake's control API and
answers each reply with the next step), and the bot under test (this process: PTB, engine,
SQLite, plus its captcha worker process, as `python -m bot` runs it).

One lookup = /start, the citizen/resident button, the number (-> captcha photo), the code
(-> result card): three text replies, one photo, one answered callback query.

For every injected Bot API delay (a simulated network round trip, half each way):
  load  : all USERS start at once; lookups/s and CPU per lookup at saturation (its latencies
          are mostly queueing behind everyone else);
  paced : USERS arrive at a steady rate below capacity; reply latency from the moment an
          update is queued at "Telegram" until the reply reaches it (text and photo apart).
References in the same run: captcha images rendered per second on one core (the ceiling the
lookups/s target is measured against) and two bare echo bots' updates/s on the same fake: PTB's
defaults (httpx, one update at a time) and the bot's own set-up (aiohttp, CONCURRENT_UPDATES at
once through PerChatUpdateProcessor, its rate limiter), the like-for-like one.
CPU is printed per process beside every rate (bot, captcha worker, fake API, driver): on a
shared machine the bot's CPU per lookup is the figure that survives noise.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import multiprocessing
import os
import platform
import pstats
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, bench/ is sys.path[0] and bench/captcha.py would shadow the `captcha`
# package; the repository root goes there instead (spawned processes inherit sys.path).
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import telegram  # noqa: E402
from aiohttp import ClientSession, ClientTimeout  # noqa: E402
from telegram.request import HTTPXRequest  # noqa: E402

from bench._policies import identity_number, write_policies  # noqa: E402
from bench.echo import build_echo_app, control, describe, measure  # noqa: E402
from bot.app import App  # noqa: E402
from bot.captcha import new_code, render_png  # noqa: E402
from bot.channels.telegram import CONCURRENT_UPDATES, build_application, polling  # noqa: E402
from bot.channels.telegram_http import AiohttpRequest  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.importer.run import import_policies  # noqa: E402
from bot.runtime import Runtime, open_runtime  # noqa: E402
from tests.fakes.fake_bot_api import BOT_ID, BOT_USERNAME, FakeBotAPIProcess  # noqa: E402

TOKEN = "123:ABC"
CODE = "123456"
STEPS = ("start", "button", "number", "code")
PHOTO_STEP = 2


# ----------------------------------------------------------------------------- the people


@dataclass
class Person:
    chat_id: int
    number: str
    start_at: float  # seconds after the run starts
    step: int = -1  # index into STEPS of the update waiting for its reply; -1 not started
    sent_at: float = 0.0


@dataclass
class DriveResult:
    completed: int = 0
    first_sent: float = 0.0
    last_done: float = 0.0
    text_ms: list[float] = field(default_factory=list)
    photo_ms: list[float] = field(default_factory=list)
    failed_calls: int = 0
    unexpected: int = 0
    driver_cpu_s: float = 0.0
    stalled: bool = False


def _callback(person: Person, step: int) -> dict[str, Any]:
    user = {"id": person.chat_id, "is_bot": False, "first_name": "U", "language_code": "ar"}
    chat = {"id": person.chat_id, "type": "private", "first_name": "U"}
    bot = {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME}
    path = "citizen" if person.number.startswith("1") else "resident"
    return {
        "callback_query": {
            "id": f"{person.chat_id}{step}",
            "from": user,
            "message": {"message_id": 1, "from": bot, "chat": chat, "date": int(time.time())},
            "chat_instance": str(person.chat_id),
            "data": f"path:{path}",
        }
    }


async def drive(root_url: str, people: list[Person], poll: float, stall: float) -> DriveResult:
    """Play every chat: send a step, wait for its reply (seen in the fake's call log), next."""
    result = DriveResult()
    by_chat = {p.chat_id: p for p in people}
    waiting = sorted(people, key=lambda p: p.start_at, reverse=True)  # not started yet
    cursors = {"sendMessage": 0, "sendPhoto": 0}
    cpu0 = time.process_time()
    async with ClientSession(root_url, timeout=ClientTimeout(total=60)) as session:
        t0 = time.monotonic()
        result.first_sent = t0
        last_progress = t0
        ready: list[Person] = []  # people whose next step is due now
        while result.completed < len(people):
            now = time.monotonic()
            while waiting and waiting[-1].start_at <= now - t0:
                ready.append(waiting.pop())
            if ready:
                texts, callbacks = [], []
                for person in ready:
                    person.step += 1
                    step = STEPS[person.step]
                    if step == "button":
                        callbacks.append(_callback(person, person.step))
                    else:
                        text = {"start": "/start", "number": person.number, "code": CODE}[step]
                        texts.append({"chat_id": person.chat_id, "text": text})
                sent_at = time.monotonic()  # before queueing: latencies err on the long side
                for person in ready:
                    person.sent_at = sent_at
                ready.clear()
                if texts:
                    await control(session, "POST", "/_control/user_text", json={"messages": texts})
                if callbacks:
                    await control(session, "POST", "/_control/enqueue", json={"updates": callbacks})
            progressed = False
            for method, since in cursors.items():
                calls = await control(
                    session, "GET", "/_control/calls", params={"method": method, "since": since}
                )
                for call in calls:
                    cursors[method] = max(cursors[method], call["seq"] + 1)
                    if call["status"] != 200:
                        result.failed_calls += 1
                        continue
                    replied = by_chat.get(int(call["params"]["chat_id"]))
                    if replied is None or replied.step < 0:
                        result.unexpected += 1
                        continue
                    person = replied
                    latency_ms = (call["timestamp"] - person.sent_at) * 1000
                    is_photo = method == "sendPhoto"
                    if is_photo != (person.step == PHOTO_STEP):
                        result.unexpected += 1
                        continue
                    (result.photo_ms if is_photo else result.text_ms).append(latency_ms)
                    progressed = True
                    if person.step == len(STEPS) - 1:
                        result.completed += 1
                        result.last_done = call["timestamp"]
                    else:
                        ready.append(person)
            now = time.monotonic()
            if progressed:
                last_progress = now
            elif now - last_progress > stall and not waiting:
                result.stalled = True
                break
            if not ready:
                await asyncio.sleep(poll)
    result.driver_cpu_s = time.process_time() - cpu0
    return result


def _driver_main(conn: Any, root_url: str, people: list[Person], poll: float) -> None:
    try:
        conn.send(asyncio.run(drive(root_url, people, poll, stall=30.0)))
    finally:
        conn.close()


def run_driver(root_url: str, people: list[Person], poll: float) -> DriveResult:
    """The driver in its own process (blocking: call in a thread)."""
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_driver_main, args=(writer, root_url, people, poll), daemon=True)
    process.start()
    writer.close()
    try:
        result: DriveResult = reader.recv()
    finally:
        process.join(10)
    return result


# ----------------------------------------------------------------------------- measurements


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def captcha_ceiling(seconds: float) -> tuple[float, float]:
    """Images/s and CPU ms/image rendering inline on one core."""
    render_png(new_code())  # load the fonts
    count, cpu0, start = 0, time.process_time(), time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        render_png(new_code())
        count += 1
    return count / elapsed, (time.process_time() - cpu0) * 1000 / count


async def echo_references(root_url: str, updates: int, concurrency: int) -> None:
    """Bare echo bots on the same fake, 500 chats, 0 ms delay: PTB's defaults (httpx, one
    update at a time) and the bot's own set-up (aiohttp, `concurrency` at once through
    PerChatUpdateProcessor, its rate limiter): the like-for-like ceiling for the lookups."""
    async with ClientSession(root_url) as session:
        await control(session, "POST", "/_control/config", json={"delay": 0})
    default = await measure(root_url, build_echo_app(root_url, like_bot=False), updates, 500)
    print(describe("echo bot, PTB defaults (httpx, 1 at a time)  ", default))
    like = build_echo_app(root_url, like_bot=True, concurrency=concurrency)
    bot_like = await measure(root_url, like, updates, 500)
    print(describe(f"echo bot, the bot's set-up (aiohttp, {concurrency} at once)", bot_like))


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of another process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def captcha_workers_cpu(runtime: Runtime) -> float:
    pool = getattr(runtime.captcha, "_pool", None)
    processes = getattr(pool, "_processes", None) or {}
    return sum(_proc_cpu_s(pid) for pid in processes)


@dataclass
class Phase:
    label: str
    users: int
    wall_s: float  # the driver's whole run (its process start included)
    span_s: float  # first update sent -> last lookup completed
    lookups_per_s: float
    bot_cpu_ms: float
    workers_cpu_ms: float
    fake_cpu_share: float
    driver_cpu_share: float
    result: DriveResult
    calls: dict[str, int]


async def run_phase(
    label: str,
    root_url: str,
    runtime: Runtime,
    people: list[Person],
    poll: float,
    profiler: cProfile.Profile | None = None,
) -> Phase:
    async with ClientSession(root_url) as session:
        await control(session, "POST", "/_control/clear")
        fake_cpu0 = (await control(session, "GET", "/_control/stats"))["cpu_s"]
        cpu0, workers0, wall0 = time.process_time(), captcha_workers_cpu(runtime), time.monotonic()
        if profiler is not None:
            profiler.enable()
        try:
            result = await asyncio.to_thread(run_driver, root_url, people, poll)
        finally:
            if profiler is not None:
                profiler.disable()
        wall = time.monotonic() - wall0
        cpu = time.process_time() - cpu0
        workers = captcha_workers_cpu(runtime) - workers0
        stats = await control(session, "GET", "/_control/stats")
        fake_cpu = stats["cpu_s"] - fake_cpu0
    done = max(result.completed, 1)
    span = max(result.last_done - result.first_sent, 1e-9)
    return Phase(
        label,
        len(people),
        wall,
        span,
        result.completed / span,
        cpu * 1000 / done,
        workers * 1000 / done,
        fake_cpu / wall,
        result.driver_cpu_s / wall,
        result,
        stats["by_method"],
    )


def _request(args: argparse.Namespace) -> Any:
    """The bot's HTTP client for Bot API calls: the adapter's (aiohttp) unless asked."""
    size = args.pool_size or 2 * args.concurrency + 4
    if args.httpx:
        return HTTPXRequest(connection_pool_size=size, pool_timeout=10.0)
    if args.pool_size:
        return AiohttpRequest(size, pool_timeout=10.0)
    return None


def people_for(first_chat: int, count: int, rate: float) -> list[Person]:
    """`count` people, numbers with policies; all at once (rate 0) or `rate` arrivals/s."""
    return [
        Person(first_chat + i, identity_number(i), 0.0 if rate <= 0 else i / rate)
        for i in range(count)
    ]


def report(phase: Phase, delay_ms: float, ceiling: float) -> None:
    r = phase.result
    problems = []
    if r.completed < phase.users:
        problems.append(f"only {r.completed}/{phase.users} completed")
    if r.failed_calls or r.unexpected:
        problems.append(f"{r.failed_calls} failed calls, {r.unexpected} unexpected replies")
    print(f"  {phase.label}: {phase.users} people, {delay_ms:g} ms per Bot API call")
    print(
        f"    lookups/s      {phase.lookups_per_s:7.1f}   "
        f"({phase.lookups_per_s / ceiling * 100:.0f}% of the captcha ceiling {ceiling:.0f}/s)"
    )
    print(
        f"    reply latency  text  p50 {percentile(r.text_ms, 0.5):7.1f} ms  "
        f"p99 {percentile(r.text_ms, 0.99):7.1f} ms  max {max(r.text_ms, default=0):7.1f} ms"
    )
    print(
        f"                   photo p50 {percentile(r.photo_ms, 0.5):7.1f} ms  "
        f"p99 {percentile(r.photo_ms, 0.99):7.1f} ms  max {max(r.photo_ms, default=0):7.1f} ms"
    )
    done = max(r.completed, 1)
    # Shares over the time lookups ran (CPU measured over the whole phase: a little high).
    wall = max(phase.span_s, 1e-9)
    bot_s, workers_s = phase.bot_cpu_ms * done / 1000, phase.workers_cpu_ms * done / 1000
    fake_s = phase.fake_cpu_share * phase.wall_s
    driver_s = phase.driver_cpu_share * phase.wall_s
    print(
        f"    CPU per lookup bot process {phase.bot_cpu_ms:5.2f} ms + captcha worker "
        f"{phase.workers_cpu_ms:4.2f} ms   | harness: fake API {fake_s * 1000 / done:4.2f} ms, "
        f"driver {driver_s * 1000 / done:4.2f} ms"
    )
    print(
        f"    share of a core ({wall:.1f} s of lookups) bot {bot_s / wall * 100:3.0f}%, "
        f"captcha worker {workers_s / wall * 100:3.0f}%   | "
        f"harness: fake API {fake_s / wall * 100:3.0f}%, driver {driver_s / wall * 100:3.0f}%"
    )
    calls = ", ".join(f"{m} {n / done:.2f}" for m, n in sorted(phase.calls.items()))
    print(f"    API calls per lookup: {calls}")
    if problems:
        print("    !! " + "; ".join(problems))


def _package(filename: str) -> str:
    """site-packages/httpcore/_async/x.py -> httpcore; bot/channels/x.py -> bot.channels."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "bot" in parts:
        return ".".join(parts[parts.index("bot") : -1])
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C)"
    return "stdlib:" + Path(filename).stem


def print_profile(profiler: cProfile.Profile, lines: int, lookups: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    by_package: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = _package(filename)
        by_package[key] = by_package.get(key, 0.0) + tottime
    total = sum(by_package.values())
    print(f"  profile of the 0 ms load phase (event-loop thread; {total:.2f} s under cProfile):")
    for key, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:15]:
        share, per_lookup = seconds / total * 100, seconds * 1000 / lookups
        print(f"    {key:28} {share:5.1f}%  {per_lookup:6.2f} ms/lookup")
    stats.strip_dirs().sort_stats("tottime").print_stats(lines)
    print(out.getvalue())


async def run(root_url: str, args: argparse.Namespace, ceiling: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "policies.csv"
        write_policies(csv_path, max(args.users, args.paced_users))
        settings = Settings(
            _env_file=None,
            database_path=Path(folder) / "bench.sqlite3",
            id_hash_key="bench-key",
            captcha_test_code=CODE,  # the simulated people must know the code
            captcha_workers=args.captcha_workers,
            # Each simulated number is looked up once per phase: throughput, not the limits
            # (which still run, and cost what they cost).
            lookups_per_id_per_day=1_000_000,
            telegram_bot_token=TOKEN,
            telegram_api_url=root_url,
        )
        runtime = await open_runtime(settings)
        try:
            await import_policies(csv_path, runtime.db, settings.database.hash_key)
            await runtime.captcha.start()
            app = build_application(
                settings,
                App(runtime),
                concurrency=args.concurrency,
                request=_request(args),
            )
            async with polling(app, settings, poll_timeout=10):
                first_chat = 1_000_000
                await run_phase(
                    "warm-up", root_url, runtime, people_for(first_chat, 50, 0), args.poll
                )
                for delay_ms in args.delays_ms:
                    async with ClientSession(root_url) as session:
                        await control(
                            session, "POST", "/_control/config", json={"delay": delay_ms / 1000}
                        )
                    first_chat += 100_000
                    profiler = cProfile.Profile() if args.profile and delay_ms == 0 else None
                    load_phase = await run_phase(
                        "load (everyone at once)",
                        root_url,
                        runtime,
                        people_for(first_chat, args.users, 0),
                        args.poll,
                        profiler,
                    )
                    report(load_phase, delay_ms, ceiling)
                    rate = args.rate or max(1.0, load_phase.lookups_per_s * args.paced_share)
                    first_chat += 100_000
                    paced = await run_phase(
                        f"paced ({rate:.0f} new people/s, "
                        f"{rate / max(load_phase.lookups_per_s, 1e-9) * 100:.0f}% of capacity)",
                        root_url,
                        runtime,
                        people_for(first_chat, args.paced_users, rate),
                        args.poll,
                    )
                    report(paced, delay_ms, ceiling)
                    if profiler is not None:
                        print_profile(profiler, args.profile_lines, args.users)
        finally:
            await runtime.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500, help="people in the load phase")
    parser.add_argument("--paced-users", type=int, default=500, help="people in the paced phase")
    parser.add_argument(
        "--paced-share", type=float, default=0.5, help="paced arrivals as a share of capacity"
    )
    parser.add_argument("--rate", type=float, default=0, help="paced arrivals/s (overrides share)")
    parser.add_argument("--delays-ms", default="0,100", help="Bot API delays to run, comma list")
    parser.add_argument("--concurrency", type=int, default=CONCURRENT_UPDATES)
    parser.add_argument("--captcha-workers", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=0, help="bot HTTP pool (0: adapter's)")
    parser.add_argument(
        "--httpx", action="store_true", help="PTB's default httpx client instead of aiohttp"
    )
    parser.add_argument("--poll", type=float, default=0.005, help="driver poll interval, s")
    parser.add_argument("--echo-updates", type=int, default=3000)
    parser.add_argument("--captcha-seconds", type=float, default=3.0)
    parser.add_argument("--profile", action="store_true", help="cProfile the 0 ms load phase")
    parser.add_argument("--profile-lines", type=int, default=30)
    args = parser.parse_args()
    args.delays_ms = [float(d) for d in str(args.delays_ms).split(",") if d.strip()]

    print(
        f"python {platform.python_version()}, python-telegram-bot {telegram.__version__}, "
        f"{os.cpu_count()} CPUs; bot: {args.concurrency} updates at once, "
        f"{args.captcha_workers} captcha worker(s), {'httpx' if args.httpx else 'aiohttp'} client"
    )
    ceiling, render_ms = captcha_ceiling(args.captcha_seconds)
    print(f"captcha rendering, one core   : {ceiling:7.1f} images/s ({render_ms:.2f} ms CPU each)")
    with FakeBotAPIProcess() as fake:
        print(f"echo references, same fake, {args.echo_updates} updates, 500 chats, 0 ms delay:")
        asyncio.run(echo_references(fake.root_url, args.echo_updates, args.concurrency))
        print("conversation (one lookup = 4 updates: 3 text replies + 1 photo, 1 callback answer):")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(fake.root_url, args, ceiling))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
