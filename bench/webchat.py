"""Web chat lookups over HTTP against the real server (`python -m bot`, web chat mode).

    .venv/bin/python bench/webchat.py [--browsers 32] [--seconds 10] [--policies 10000]

N browsers at once, each with its own kept-alive connection (one aiohttp ClientSession and
connection per browser) and its own cookie, play full lookups over the JSON API: POST
/api/chat {"text": "<number>"} (-> image code), then {"text": "123456"} (-> result card).
Each lookup is a new person: the cookie jar is cleared first and, with TRUSTED_PROXIES set to
the loopback, the person's own address goes in X-Forwarded-For (``--one-address`` sends none:
every limit count of the one address then grows with the run).

Beside it, on the same server, the same browsers and the same kept-alive connections:
GET /healthz (a bare Starlette route), for what the HTTP stack alone costs. A kept-alive
connection is where a Nagle / delayed-ACK stall shows (tens of ms per request).

Printed: lookups/s, p50/p99 per request (number, code, all; /healthz), and CPU: the server
process and its children (the captcha worker) from /proc before/after, per lookup and per
request, and this client's own (it shares the machine). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import aiohttp  # noqa: E402

from bench._policies import identity_number, write_policies  # noqa: E402

CODE = "123456"
HIGH = "1000000"


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(folder: Path, port: int, one_address: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "WHATSAPP_")) and k not in ("TRUSTED_PROXIES",)
    }
    env.update(
        PYTHONPATH=str(_ROOT),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        DATABASE_PATH=str(folder / "bench.sqlite3"),
        WEB_HOST="127.0.0.1",
        WEB_PORT=str(port),
        ID_HASH_KEY="bench-key-" + "x" * 32,
        CAPTCHA_TEST_CODE=CODE,
        LOOKUPS_PER_HOUR=HIGH,
        LOOKUPS_PER_ADDRESS_PER_HOUR=HIGH,
        LOOKUPS_PER_ID_PER_DAY=HIGH,
        CHALLENGES_PER_HOUR=HIGH,
        SESSIONS_PER_ADDRESS_PER_HOUR=HIGH,
        WEB_LOOKUPS_PER_MINUTE="0",
    )
    if not one_address:
        env["TRUSTED_PROXIES"] = "127.0.0.1/32"
    return env


def proc_cpu_s(pid: int) -> float:
    """utime + stime of one process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (the captcha worker pool), by their parent field."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@dataclass
class ServerCpu:
    server_s: float
    children_s: float


def server_cpu(pid: int) -> ServerCpu:
    return ServerCpu(proc_cpu_s(pid), sum(proc_cpu_s(c) for c in children_of(pid)))


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer /healthz in time")


# ----------------------------------------------------------------------------- the browsers


@dataclass
class Samples:
    number_ms: list[float] = field(default_factory=list)
    code_ms: list[float] = field(default_factory=list)
    health_ms: list[float] = field(default_factory=list)
    lookups: int = 0
    errors: int = 0


def person_address(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


class Browser:
    """One browser: one session, one kept-alive connection, one cookie jar."""

    def __init__(self, url: str, one_address: bool) -> None:
        self.url = url
        self.one_address = one_address
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, force_close=False),
            timeout=aiohttp.ClientTimeout(total=60),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
        )

    async def post(self, text: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        async with self.session.post(
            f"{self.url}/api/chat", json={"text": text}, headers=headers
        ) as response:
            body = await response.read()
        return response.status, body, (time.perf_counter() - t0) * 1000

    async def lookup(self, person: int, samples: Samples) -> None:
        self.session.cookie_jar.clear()  # a new person
        headers = {"Accept-Language": "ar"}
        if not self.one_address:
            headers["X-Forwarded-For"] = person_address(person)
        status, body, ms = await self.post(identity_number(person), headers)
        samples.number_ms.append(ms)
        if status != 200 or b'"photo"' not in body:  # no JSON parse: the client stays light
            samples.errors += 1
            return
        status, body, ms = await self.post(CODE, headers)
        samples.code_ms.append(ms)
        if status != 200 or b'"photo"' in body:
            samples.errors += 1
            return
        samples.lookups += 1

    async def health(self, samples: Samples) -> None:
        t0 = time.perf_counter()
        async with self.session.get(f"{self.url}/healthz") as response:
            await response.read()
            ok = response.status == 200
        samples.health_ms.append((time.perf_counter() - t0) * 1000)
        samples.errors += not ok

    async def close(self) -> None:
        await self.session.close()


async def run_for(
    browsers: list[Browser], seconds: float, people: list[int], bare: bool
) -> tuple[Samples, float]:
    """Every browser loops (lookups or /healthz) until `seconds` have passed; wall time."""
    samples = Samples()
    stop_at = time.monotonic() + seconds

    async def loop(browser: Browser) -> None:
        while time.monotonic() < stop_at:
            if bare:
                await browser.health(samples)
            else:
                people[0] += 1
                await browser.lookup(people[0], samples)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(b) for b in browsers))
    return samples, time.perf_counter() - t0


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency(label: str, samples: list[float]) -> str:
    return (
        f"    {label:18} p50 {percentile(samples, 0.5):7.2f} ms  p99 "
        f"{percentile(samples, 0.99):7.2f} ms  max {max(samples, default=0):7.2f} ms  "
        f"({len(samples):,} requests)"
    )


async def measure(
    pid: int, browsers: list[Browser], seconds: float, people: list[int], bare: bool
) -> None:
    before, client0 = server_cpu(pid), time.process_time()
    samples, wall = await run_for(browsers, seconds, people, bare)
    after, client = server_cpu(pid), time.process_time() - client0
    server = after.server_s - before.server_s
    children = after.children_s - before.children_s
    requests = len(samples.number_ms) + len(samples.code_ms) + len(samples.health_ms)
    if bare:
        print(f"  GET /healthz (bare route): {len(samples.health_ms) / wall:8.1f} requests/s")
        print(latency("per request", samples.health_ms))
        unit, count = "request", len(samples.health_ms)
    else:
        print(
            f"  full lookups: {samples.lookups / wall:8.1f} lookups/s ({requests / wall:.0f} req/s)"
        )
        print(latency("number (-> image)", samples.number_ms))
        print(latency("code (-> result)", samples.code_ms))
        print(latency("all requests", samples.number_ms + samples.code_ms))
        unit, count = "lookup", samples.lookups
    n = max(count, 1)
    print(
        f"    CPU per {unit:7} server {server * 1000 / n:6.3f} ms + its children (captcha) "
        f"{children * 1000 / n:6.3f} ms | client {client * 1000 / n:6.3f} ms"
    )
    print(
        f"    share of a core   server {server / wall * 100:3.0f}%, children "
        f"{children / wall * 100:3.0f}%, client {client / wall * 100:3.0f}% (over {wall:.1f} s)"
    )
    if samples.errors:
        print(f"    !! {samples.errors} failed requests")


async def bench(url: str, pid: int, args: argparse.Namespace) -> None:
    browsers = [Browser(url, args.one_address) for _ in range(args.browsers)]
    people = [0]  # the last person number used
    try:
        await run_for(browsers, args.warmup, people, bare=False)  # warm-up
        await run_for(browsers, min(args.warmup, 1.0), people, bare=True)
        print(f"{args.browsers} browsers at once, kept-alive connections, {args.seconds:g} s each:")
        await measure(pid, browsers, args.seconds, people, bare=False)
        await measure(pid, browsers, args.seconds, people, bare=True)
    finally:
        for browser in browsers:
            await browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--browsers", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds")
    parser.add_argument(
        "--policies", type=int, default=10_000, help="policies imported (numbers looked up)"
    )
    parser.add_argument(
        "--one-address", action="store_true", help="no X-Forwarded-For: all from 127.0.0.1"
    )
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        port = free_port()
        env = server_env(folder, port, args.one_address)
        csv_path = folder / "policies.csv"
        write_policies(csv_path, args.policies)
        imported = subprocess.run(
            [sys.executable, "-m", "bot", "import-policies", str(csv_path)],
            cwd=_ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if imported.returncode != 0:
            print(imported.stdout, imported.stderr, sep="\n")
            return 1
        log_path = folder / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "bot"], cwd=_ROOT, env=env, stdout=log, stderr=log
            )
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(wait_ready(url, server))
            print(f"server: python -m bot (web chat), pid {server.pid}, {args.policies:,} policies")
            asyncio.run(bench(url, server.pid, args))
        except RuntimeError as exc:
            print(f"!! {exc}\n{log_path.read_text(errors='replace')[-3000:]}")
            return 1
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
