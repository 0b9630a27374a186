"""Full lookups through WhatsApp against a fake Graph API, beside Telegram's in the same run.

    .venv/bin/python bench/whatsapp.py [--people 200] [--delays-ms 0,100] [--no-telegram]

Three processes per channel, so each figure is billed to the right one: the bot under test
(`python -m bot`, its captcha worker a child of it), the fake API (a child: the fake Graph API
of tests/fakes/fake_graph_api.py through `FakeGraphAPIProcess`, the fake Bot API for
Telegram), and the driver (this process for WhatsApp; bench/conversation.py's driver process for
Telegram). The two bots run one after the other, each alone on the machine.

WhatsApp lookup = the number posted to the signed webhook (-> the image code: one upload to
/media, one interactive message with the image in its header), then the code 123456 (-> the
result card); every inbound message is also marked read (a /messages call). Five Graph API
calls per lookup, each delayed by DELAY (a simulated network round trip). Everyone posts the
number at once, and each posts the code as soon as its image code reaches the fake: lookups/s
at saturation, and p50/p99 of "webhook POST sent -> the reply's request reached the fake" (so
the fake's own delay is not in it; queueing behind everyone else is).

Telegram lookup (bench/conversation.py's load phase, same people count, same delay on every Bot
API call): /start, the citizen/resident button, the number (-> captcha photo), the code (-> the
card): four updates, not two, through long polling.

CPU per lookup: the bot process and its children (the captcha worker) apart, from /proc
before/after each phase; the fake's and the driver's beside them. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import aiohttp  # noqa: E402

from bench._policies import identity_number, write_policies  # noqa: E402
from bench.conversation import DriveResult, people_for, percentile, run_driver  # noqa: E402
from bench.echo import control  # noqa: E402
from bench.webchat import free_port, proc_cpu_s, server_cpu, server_env, wait_ready  # noqa: E402
from tests.fakes.fake_bot_api import FakeBotAPIProcess  # noqa: E402
from tests.fakes.fake_graph_api import FakeGraphAPI, FakeGraphAPIProcess  # noqa: E402

CODE = "123456"
SECRET = "bench-app-secret"
TOKEN = "123:ABC"


# ----------------------------------------------------------------------------- the bot


@contextmanager
def bot_process(
    env: dict[str, str], folder: Path, name: str, ready_line: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=_ROOT, env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{env['WEB_PORT']}"
        try:
            if ready_line is None:
                asyncio.run(wait_ready(url, process))
            else:  # no HTTP app to ask (Telegram long polling): its log says when
                wait_for_line(log_path, ready_line, process)
        except RuntimeError:
            print(log_path.read_text(errors="replace")[-3000:])
            raise
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_line(
    log_path: Path, line: str, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while line not in log_path.read_text(errors="replace"):
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not log {line!r} in time")
        time.sleep(0.1)


def base_env(folder: Path) -> dict[str, str]:
    env = server_env(folder, free_port(), one_address=True)  # no TELEGRAM_*, no WHATSAPP_*
    env.update(ID_HASH_KEY="bench", CAPTCHA_WORKERS="1", CAPTCHA_TEST_CODE=CODE)
    return env


# ----------------------------------------------------------------------------- WhatsApp


@dataclass
class WaResult:
    people: int
    completed: int = 0
    first_sent: float = 0.0
    last_done: float = 0.0
    number_ms: list[float] = field(default_factory=list)  # number -> image code
    code_ms: list[float] = field(default_factory=list)  # code -> card
    refused_posts: int = 0
    unexpected: int = 0
    stalled: bool = False
    bot_cpu_s: float = 0.0
    children_cpu_s: float = 0.0
    fake_cpu_s: float = 0.0
    driver_cpu_s: float = 0.0
    wall_s: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


async def wa_phase(
    webhook: str, fake: FakeGraphAPIProcess, bot_pid: int, people: list[tuple[str, str]]
) -> WaResult:
    """Everyone posts the number at once; each posts the code when its image code arrives."""
    builder = FakeGraphAPI()  # builds and signs the webhook bodies here (no server)
    result = WaResult(len(people))
    step = {wa: 0 for wa, _ in people}  # 0: waiting for the image code, 1: for the card
    sent_at: dict[str, float] = {}
    done = asyncio.Event()
    posts: set[asyncio.Task[None]] = set()
    fake_pid = fake.pid or 0
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
        aiohttp.ClientSession(fake.control_url, timeout=timeout) as ctl,
    ):

        async def post(wa: str, text: str) -> None:
            body = builder.encode(builder.inbound_text(wa, text))
            headers = {"X-Hub-Signature-256": builder.sign(body, SECRET)}
            sent_at[wa] = time.monotonic()
            async with http.post(webhook, data=body, headers=headers) as response:
                await response.read()
                result.refused_posts += response.status != 200

        def spawn(wa: str, text: str) -> None:
            task = asyncio.create_task(post(wa, text))
            posts.add(task)
            task.add_done_callback(posts.discard)

        async def listen() -> None:
            cursor, last_progress = 0, time.monotonic()
            while result.completed < len(people):
                async with ctl.get(
                    "/_control/replies", params={"since": cursor, "timeout": 1}
                ) as response:
                    replies = (await response.json())["replies"]
                for seq, to, media, when in replies:
                    cursor = max(cursor, seq + 1)
                    if to not in step or (step[to] == 0) != media:
                        result.unexpected += 1
                        continue
                    latency = (when - sent_at[to]) * 1000
                    if step[to] == 0:
                        result.number_ms.append(latency)
                        step[to] = 1
                        spawn(to, CODE)
                    else:
                        result.code_ms.append(latency)
                        step[to] = 2
                        result.completed += 1
                        result.last_done = when
                if replies:
                    last_progress = time.monotonic()
                elif time.monotonic() - last_progress > 30:
                    result.stalled = True
                    break
            done.set()

        await (await ctl.post("/_control/clear")).release()
        before, fake0, driver0 = server_cpu(bot_pid), proc_cpu_s(fake_pid), time.process_time()
        wall0 = result.first_sent = time.monotonic()
        listener = asyncio.create_task(listen())
        for wa, number in people:
            spawn(wa, number)
        await done.wait()
        await listener
        result.wall_s = time.monotonic() - wall0
        after = server_cpu(bot_pid)
        result.driver_cpu_s = time.process_time() - driver0
        result.fake_cpu_s = proc_cpu_s(fake_pid) - fake0
        result.bot_cpu_s = after.server_s - before.server_s
        result.children_cpu_s = after.children_s - before.children_s
        async with ctl.get("/_control/stats") as response:
            result.calls = (await response.json())["calls"]
        for task in list(posts):
            task.cancel()
    return result


def wa_people(batch: int, count: int) -> list[tuple[str, str]]:
    """`count` chats (a new wa_id per batch, so every chat starts idle), numbers with policies."""
    return [(f"9665{batch:02d}{i:06d}", identity_number(i)) for i in range(count)]


def report_wa(r: WaResult, delay_ms: float) -> None:
    span = max(r.last_done - r.first_sent, 1e-9)
    n = max(r.completed, 1)
    print(f"  WhatsApp, {r.people} people at once, {delay_ms:g} ms per Graph API call")
    print(f"    lookups/s      {r.completed / span:7.1f}   ({r.completed} in {span:.2f} s)")
    for label, samples in (
        ("number -> image", r.number_ms),
        ("code -> card", r.code_ms),
        ("both", r.number_ms + r.code_ms),
    ):
        print(
            f"    {label:15} p50 {percentile(samples, 0.5):7.1f} ms  "
            f"p99 {percentile(samples, 0.99):7.1f} ms  max {max(samples, default=0):7.1f} ms"
        )
    print(
        f"    CPU per lookup bot process {r.bot_cpu_s * 1000 / n:5.2f} ms + children (captcha) "
        f"{r.children_cpu_s * 1000 / n:4.2f} ms   | fake Graph API {r.fake_cpu_s * 1000 / n:4.2f}"
        f" ms, driver {r.driver_cpu_s * 1000 / n:4.2f} ms"
    )
    wall = max(r.wall_s, 1e-9)
    print(
        f"    share of a core ({wall:.1f} s) bot {r.bot_cpu_s / wall * 100:3.0f}%, children "
        f"{r.children_cpu_s / wall * 100:3.0f}%   | fake {r.fake_cpu_s / wall * 100:3.0f}%, "
        f"driver {r.driver_cpu_s / wall * 100:3.0f}%"
    )
    calls = ", ".join(f"{edge} {count / n:.2f}" for edge, count in sorted(r.calls.items()))
    print(f"    Graph API calls per lookup: {calls}")
    if r.completed < r.people or r.refused_posts or r.unexpected or r.stalled:
        print(
            f"    !! {r.completed}/{r.people} completed, {r.refused_posts} refused posts, "
            f"{r.unexpected} unexpected replies{', stalled' if r.stalled else ''}"
        )


def run_whatsapp(folder: Path, args: argparse.Namespace) -> dict[float, float]:
    rates: dict[float, float] = {}
    with FakeGraphAPIProcess() as fake:
        env = base_env(folder)
        env.update(
            WHATSAPP_ACCESS_TOKEN=fake.token,
            WHATSAPP_PHONE_NUMBER_ID=fake.phone_number_id,
            WHATSAPP_APP_SECRET=SECRET,
            WHATSAPP_VERIFY_TOKEN="bench-verify",
            WHATSAPP_API_URL=fake.root_url,
            WHATSAPP_API_VERSION=fake.version,
        )
        webhook = f"http://127.0.0.1:{env['WEB_PORT']}/whatsapp/webhook"
        with bot_process(env, folder, "whatsapp") as bot:
            print(f"WhatsApp: python -m bot, pid {bot.pid}; fake Graph API pid {fake.pid}")

            async def phases() -> None:
                await wa_phase(webhook, fake, bot.pid, wa_people(0, args.warmup))
                for batch, delay_ms in enumerate(args.delays_ms, start=1):
                    async with aiohttp.ClientSession(fake.control_url) as ctl:
                        await control_post(ctl, "/_control/delay", {"seconds": delay_ms / 1000})
                    result = await wa_phase(webhook, fake, bot.pid, wa_people(batch, args.people))
                    report_wa(result, delay_ms)
                    span = max(result.last_done - result.first_sent, 1e-9)
                    rates[delay_ms] = result.completed / span

            asyncio.run(phases())
    return rates


async def control_post(session: aiohttp.ClientSession, path: str, body: object) -> None:
    async with session.post(path, json=body) as response:
        response.raise_for_status()


# ----------------------------------------------------------------------------- Telegram


def run_telegram(folder: Path, args: argparse.Namespace) -> dict[float, float]:
    rates: dict[float, float] = {}
    with FakeBotAPIProcess() as fake:
        env = base_env(folder)
        env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.root_url)
        with bot_process(env, folder, "telegram", "is answering (long polling)") as bot:
            print(
                f"Telegram: python -m bot (long polling), pid {bot.pid}; "
                f"fake Bot API pid {fake.pid}"
            )

            async def configure(delay_ms: float) -> None:
                async with aiohttp.ClientSession(fake.root_url) as session:
                    await control(
                        session, "POST", "/_control/config", json={"delay": delay_ms / 1000}
                    )
                    await control(session, "POST", "/_control/clear")

            def phase(
                first_chat: int, count: int
            ) -> tuple[float, float, float, float, DriveResult]:
                before, fake0 = server_cpu(bot.pid), proc_cpu_s(fake.pid or 0)
                wall0 = time.monotonic()
                result = run_driver(fake.root_url, people_for(first_chat, count, 0), args.poll)
                wall = time.monotonic() - wall0
                after = server_cpu(bot.pid)
                fake_s = proc_cpu_s(fake.pid or 0) - fake0
                bot_s = after.server_s - before.server_s
                children_s = after.children_s - before.children_s
                return bot_s, children_s, fake_s, wall, result

            asyncio.run(configure(0))
            phase(2_000_000, args.warmup)
            for batch, delay_ms in enumerate(args.delays_ms, start=1):
                asyncio.run(configure(delay_ms))
                bot_s, children_s, fake_s, wall, result = phase(
                    2_000_000 + batch * 100_000, args.people
                )
                r = result
                span = max(r.last_done - r.first_sent, 1e-9)
                completed = r.completed
                n = max(completed, 1)
                rates[delay_ms] = completed / span
                print(f"  Telegram, {args.people} people at once, {delay_ms:g} ms per Bot API call")
                print(f"    lookups/s      {completed / span:7.1f}   ({completed} in {span:.2f} s)")
                for label, samples in (("text replies", r.text_ms), ("photo (code)", r.photo_ms)):
                    print(
                        f"    {label:15} p50 {percentile(samples, 0.5):7.1f} ms  "
                        f"p99 {percentile(samples, 0.99):7.1f} ms"
                    )
                print(
                    f"    CPU per lookup bot process {bot_s * 1000 / n:5.2f} ms + children "
                    f"(captcha) {children_s * 1000 / n:4.2f} ms   | fake Bot API "
                    f"{fake_s * 1000 / n:4.2f} ms, driver {r.driver_cpu_s * 1000 / n:4.2f} ms"
                )
                print(
                    f"    share of a core ({wall:.1f} s) bot {bot_s / wall * 100:3.0f}%, children "
                    f"{children_s / wall * 100:3.0f}%   | fake {fake_s / wall * 100:3.0f}%"
                )
                if completed < args.people or r.stalled:
                    print(f"    !! {completed}/{args.people} completed")
    return rates


# ----------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200, help="people at once per phase")
    parser.add_argument("--delays-ms", default="0,100", help="API delays to run, comma list")
    parser.add_argument("--warmup", type=int, default=20, help="people in the warm-up phase")
    parser.add_argument("--poll", type=float, default=0.005, help="Telegram driver poll, s")
    parser.add_argument("--no-telegram", action="store_true", help="WhatsApp only")
    args = parser.parse_args()
    args.delays_ms = [float(d) for d in str(args.delays_ms).split(",") if d.strip()]
    print(
        f"python {platform.python_version()}, aiohttp {aiohttp.__version__}, {os.cpu_count()} "
        f"CPUs; bots: python -m bot, 1 captcha worker"
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        csv_path = folder / "policies.csv"
        write_policies(csv_path, max(args.people, args.warmup))
        imported = subprocess.run(
            [sys.executable, "-m", "bot", "import-policies", str(csv_path)],
            cwd=_ROOT,
            env=base_env(folder),
            capture_output=True,
            text=True,
        )
        if imported.returncode != 0:
            print(imported.stdout, imported.stderr, sep="\n")
            return 1
        wa = run_whatsapp(folder, args)
        tg = {} if args.no_telegram else run_telegram(folder, args)
    print("summary, lookups/s at saturation (same run):")
    for delay_ms in args.delays_ms:
        telegram = f"{tg[delay_ms]:7.1f}" if delay_ms in tg else "      -"
        print(
            f"  {delay_ms:5g} ms per API call: WhatsApp {wa.get(delay_ms, 0):7.1f}   "
            f"Telegram {telegram}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
