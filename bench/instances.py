"""Telegram lookups/s with one bot instance and with two, on one PostgreSQL, each instance
pinned to a core of its own.

    .venv/bin/python bench/instances.py [--people 400] [--delays-ms 0] [--cores 0,1]
    .venv/bin/python bench/instances.py --url postgresql://user:pw@host/db   # a server of yours

Every instance is `python -m bot` in webhook mode under `taskset -c CORE` (its captcha worker,
a child, on the same core), on one database: a throwaway PostgreSQL cluster (fsync on, as in
production; tests/postgres_cluster.py) unless --url. The fake Bot API runs in a process of its
own and delivers each update to a webhook as Telegram does (`/_control/deliver`); which
instance gets it is the load balancer's choice, played here without stickiness: a chat's
successive updates alternate between the instances, so every turn of every chat crosses the
per-chat lock in the database. The driver (another process) plays every person: /start, the
citizen/resident button, the number (-> captcha photo), the code (-> the card), each step as
soon as the reply to the previous one reached the fake.

Per phase: completed lookups/s (first update sent -> last card), reply latency p50/p99, CPU per
lookup of each instance (with its captcha worker) and of the harness (fake, driver, PostgreSQL
server processes), from /proc. Then the ratio two/one, against the target of 1.6. On a 2-core
machine the harness shares the cores the instances are pinned to: its CPU is printed beside.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from aiohttp import ClientSession, ClientTimeout  # noqa: E402

from bench._policies import write_policies  # noqa: E402
from bench.conversation import STEPS, DriveResult, Person, people_for, percentile  # noqa: E402
from bench.echo import control  # noqa: E402
from bench.webchat import free_port, server_cpu, wait_ready  # noqa: E402
from bot.channels.telegram import WEBHOOK_PATH  # noqa: E402
from bot.store.postgres import masked_url  # noqa: E402
from tests.fakes.fake_bot_api import FakeBotAPIProcess  # noqa: E402
from tests.postgres_cluster import start_cluster  # noqa: E402

TOKEN = "123:ABC"
CODE = "123456"
SECRET = "bench-webhook-secret"
HIGH = "1000000"
PHOTO_STEP = 2
TARGET = 1.6


# ----------------------------------------------------------------------------- the people


async def drive(
    root_url: str, urls: list[str], people: list[Person], poll: float, stall: float
) -> DriveResult:
    """Play every chat through webhooks: a step, its reply (in the fake's call log), next."""
    result = DriveResult()
    by_chat = {p.chat_id: p for p in people}
    cursors = {"sendMessage": 0, "sendPhoto": 0}
    cpu0 = time.process_time()
    async with ClientSession(root_url, timeout=ClientTimeout(total=60)) as session:
        t0 = time.monotonic()
        result.first_sent = t0
        last_progress = t0
        ready = list(people)
        while result.completed < len(people):
            if ready:
                updates: list[dict[str, Any]] = []
                sent_at = time.monotonic()
                for person in ready:
                    person.step += 1
                    person.sent_at = sent_at
                    # No stickiness: the chat's next update goes to the next instance.
                    url = urls[(person.chat_id + person.step) % len(urls)]
                    step = STEPS[person.step]
                    item: dict[str, Any] = {"url": url, "chat_id": person.chat_id}
                    if step == "button":
                        path = "citizen" if person.number.startswith("1") else "resident"
                        item["data"] = f"path:{path}"
                    else:
                        item["text"] = {"start": "/start", "number": person.number}.get(step, CODE)
                    updates.append(item)
                ready.clear()
                await control(
                    session,
                    "POST",
                    "/_control/deliver",
                    json={"secret": SECRET, "updates": updates},
                )
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
                    is_photo = method == "sendPhoto"
                    if is_photo != (person.step == PHOTO_STEP):
                        result.unexpected += 1
                        continue
                    latency_ms = (call["timestamp"] - person.sent_at) * 1000
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
            elif now - last_progress > stall:
                result.stalled = True
                break
            if not ready:
                await asyncio.sleep(poll)
    result.driver_cpu_s = time.process_time() - cpu0
    return result


def _driver_main(conn: Any, root_url: str, urls: list[str], people: list[Person]) -> None:
    try:
        conn.send(asyncio.run(drive(root_url, urls, people, 0.005, stall=30.0)))
    finally:
        conn.close()


def run_driver(root_url: str, urls: list[str], people: list[Person]) -> DriveResult:
    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_driver_main, args=(writer, root_url, urls, people), daemon=True)
    process.start()
    writer.close()
    try:
        result: DriveResult = reader.recv()
    finally:
        process.join(10)
    return result


# ----------------------------------------------------------------------------- the instances


def instance_env(
    folder: Path, database_url: str, api_url: str, port: int, workers: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        PYTHONPATH=str(_ROOT),
        NO_PROXY="127.0.0.1,localhost",
        DATABASE_PATH=str(folder / "unused.sqlite3"),
        DATABASE_URL=database_url,
        ID_HASH_KEY="bench-key-" + "x" * 32,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=api_url,
        WEBHOOK_URL=f"https://bench.example/{port}",
        WEBHOOK_SECRET=SECRET,
        WEB_HOST="127.0.0.1",
        WEB_PORT=str(port),
        CAPTCHA_TEST_CODE=CODE,
        CAPTCHA_WORKERS=str(workers),
        LOOKUPS_PER_HOUR=HIGH,
        LOOKUPS_PER_ID_PER_DAY=HIGH,
        CHALLENGES_PER_HOUR=HIGH,
    )
    return env


@contextlib.contextmanager
def instances(
    cores: list[int], folder: Path, database_url: str, api_url: str, workers: int
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for core in cores:
            port = free_port()
            env = instance_env(folder, database_url, api_url, port, workers)
            log = (folder / f"instance-{core}-{port}.log").open("wb")
            command = ["taskset", "-c", str(core), sys.executable, "-m", "bot"]
            process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=log)
            started.append((f"http://127.0.0.1:{port}", process))
        for url, process in started:
            asyncio.run(wait_ready(url, process))
        yield started
    finally:
        for _, process in started:
            process.send_signal(signal.SIGINT)
        for _, process in started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def postgres_cpu_s() -> float:
    """CPU of the PostgreSQL servers on this machine: each postmaster's own, its exited
    backends' (reaped: cutime + cstime) and its live backends' (from /proc)."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for fields in stats.values():
        own = int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14]) if int(fields[1]) not in stats else 0
        total += (own + reaped) / tick
    return total


@dataclass
class Phase:
    instances: int
    lookups_per_s: float
    result: DriveResult
    instance_cpu_ms: list[float]
    fake_cpu_ms: float
    driver_cpu_ms: float
    postgres_cpu_ms: float
    webhook_failures: int


async def _fake_stats(api_url: str) -> dict[str, Any]:
    async with ClientSession(api_url) as session:
        stats: dict[str, Any] = await control(session, "GET", "/_control/stats")
        return stats


async def _clear(api_url: str, delay: float) -> None:
    async with ClientSession(api_url) as session:
        await control(session, "POST", "/_control/clear")
        await control(session, "POST", "/_control/config", json={"delay": delay})


def run_phase(
    api_url: str,
    running: list[tuple[str, subprocess.Popen[bytes]]],
    people: list[Person],
    delay: float,
) -> Phase:
    asyncio.run(_clear(api_url, delay))
    urls = [url + WEBHOOK_PATH for url, _ in running]
    cpu0 = [server_cpu(p.pid) for _, p in running]
    fake0 = asyncio.run(_fake_stats(api_url))
    pg0 = postgres_cpu_s()
    result = run_driver(api_url, urls, people)
    pg = postgres_cpu_s() - pg0
    fake = asyncio.run(_fake_stats(api_url))
    cpu = [server_cpu(p.pid) for _, p in running]
    done = max(result.completed, 1)
    span = max(result.last_done - result.first_sent, 1e-9)
    return Phase(
        len(running),
        result.completed / span,
        result,
        [
            ((after.server_s + after.children_s) - (before.server_s + before.children_s))
            * 1000
            / done
            for before, after in zip(cpu0, cpu, strict=True)
        ],
        (fake["cpu_s"] - fake0["cpu_s"]) * 1000 / done,
        result.driver_cpu_s * 1000 / done,
        pg * 1000 / done,
        int(fake["webhook_failures"]) - int(fake0["webhook_failures"]),
    )


def report(phase: Phase, cores: list[int], delay_ms: float) -> None:
    r = phase.result
    where = ", ".join(f"core {c}" for c in cores)
    print(f"  {phase.instances} instance(s) ({where}), {delay_ms:g} ms per Bot API call:")
    print(f"    lookups/s      {phase.lookups_per_s:7.1f}   ({r.completed} lookups)")
    print(
        f"    reply latency  text  p50 {percentile(r.text_ms, 0.5):7.1f} ms  "
        f"p99 {percentile(r.text_ms, 0.99):7.1f} ms;  photo p50 "
        f"{percentile(r.photo_ms, 0.5):7.1f} ms  p99 {percentile(r.photo_ms, 0.99):7.1f} ms"
    )
    per_instance = " + ".join(f"{ms:.1f}" for ms in phase.instance_cpu_ms)
    print(
        f"    CPU per lookup instances {per_instance} ms (with captcha workers) | harness: "
        f"PostgreSQL {phase.postgres_cpu_ms:.1f} ms, fake {phase.fake_cpu_ms:.1f} ms, "
        f"driver {phase.driver_cpu_ms:.1f} ms"
    )
    problems = []
    if r.stalled:
        problems.append(f"stalled: {r.completed} of the lookups completed")
    if r.failed_calls or r.unexpected or phase.webhook_failures:
        problems.append(
            f"{r.failed_calls} failed calls, {r.unexpected} unexpected replies, "
            f"{phase.webhook_failures} webhook posts refused"
        )
    if problems:
        print("    !! " + "; ".join(problems))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--people", type=int, default=400, help="people per measured phase")
    parser.add_argument("--delays-ms", default="0", help="Bot API delays to run, comma list")
    parser.add_argument("--cores", default="0,1", help="the cores to pin instances to")
    parser.add_argument("--captcha-workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="measured phases per set-up")
    parser.add_argument("--url", help="a PostgreSQL database of yours instead of a throwaway one")
    args = parser.parse_args()
    delays = [float(d) for d in str(args.delays_ms).split(",") if d.strip()]
    cores = [int(c) for c in str(args.cores).split(",")]
    print(
        f"python {platform.python_version()}, {os.cpu_count()} CPUs; instances pinned to "
        f"{cores}, {args.captcha_workers} captcha worker(s) each; {args.people} people per phase"
    )
    rows = max(50, args.people)  # every phase looks the same numbers up, from new chats
    cluster = None
    with tempfile.TemporaryDirectory() as name, FakeBotAPIProcess() as fake:
        folder = Path(name)
        try:
            if args.url:
                url = args.url
            else:
                cluster = start_cluster(durable=True)
                url = cluster.url(cluster.create_database())
            print(f"PostgreSQL: {masked_url(url)}" + (" (throwaway, fsync on)" if cluster else ""))
            csv_path = folder / "policies.csv"
            write_policies(csv_path, rows)
            env = instance_env(folder, url, fake.root_url, free_port(), 0)
            subprocess.run(
                [sys.executable, "-m", "bot", "import-policies", str(csv_path), "--replace"],
                cwd=folder,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            first = 1_000_000
            for delay_ms in delays:
                figures: dict[int, list[float]] = {}
                cpu: dict[int, list[float]] = {}
                for count in (1, 2):
                    pinned = cores[:count]
                    with instances(pinned, folder, url, fake.root_url, args.captcha_workers) as run:
                        warm = people_for(first, 50, 0)
                        first += 10_000
                        run_phase(fake.root_url, run, warm, delay_ms / 1000)
                        for _ in range(args.rounds):
                            people = people_for(first, args.people, 0)
                            first += 10_000
                            phase = run_phase(fake.root_url, run, people, delay_ms / 1000)
                            report(phase, pinned, delay_ms)
                            figures.setdefault(count, []).append(phase.lookups_per_s)
                            cpu.setdefault(count, []).append(sum(phase.instance_cpu_ms))
                one, two = max(figures[1]), max(figures[2])
                print(
                    f"  ratio, {delay_ms:g} ms: two instances / one = {two:.1f} / {one:.1f} = "
                    f"{two / one:.2f}x (target {TARGET}x)"
                )
                # What the instances' own CPU says they would do on cores nobody else uses: a
                # core of lookups each, at the CPU per lookup measured with one and with two.
                alone, shared = min(cpu[1]), min(cpu[2])
                print(
                    f"  instances' CPU per lookup: one {alone:.1f} ms, two {shared:.1f} ms "
                    f"together; on cores of their own two would do {2 * alone / shared:.2f}x one"
                )
        finally:
            if cluster is not None:
                cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
