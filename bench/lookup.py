"""The store side of a lookup with N policies loaded: each call, one full lookup, raw SQLite.

    .venv/bin/python bench/lookup.py [--policies 1000000] [--lookups 20000] [--full 3000]
    .venv/bin/python bench/lookup.py --policies 100000          # quick (well under a minute)

One web chat lookup (number -> code), as bot/channels/web.py, service.py and engine.py make it:
    request 1 (number)  new_session (no cookie yet) · load state · challenge (the number's
                        limits checked with it) · save state
    request 2 (code)    load state (resuming the cookie's session) · look_up ·
                        policies_for_hmac · dependents_of (a principal's: the family on
                        the policy, by index) · save state with the audit record (one unit)
(On Telegram the same minus new_session: no network, so fewer limit windows too.)

Printed, all in this run, one call at a time on one aiosqlite connection:
  - `policies_for` / `policies_for_hmac` for numbers with and without a policy;
  - every store call above, p50/p99 each, then the full lookup two ways: those calls in
    sequence, and the real ConversationService (engine, a stub captcha that renders nothing);
  - aiosqlite round trips (hops to its thread) per full lookup, counted, with the statements;
  - the same JOIN in plain sqlite3 on the same file (no thread hop): the floor.
CPU time of the process (the event loop plus aiosqlite's thread) beside each wall figure.
Each simulated person comes from an address of its own (one address for all would make every
address-limit count grow with the run). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import aiosqlite  # noqa: E402

from bench._policies import identity_number, write_policies  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.conversation.events import ChatKind, Event, Text  # noqa: E402
from bot.conversation.states import ConversationStates  # noqa: E402
from bot.domain.identity import id_hmac  # noqa: E402
from bot.importer.run import import_policies  # noqa: E402
from bot.limits import Requester  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.store import policies as policies_module  # noqa: E402
from bot.store.conversations import AuditEntry, ConversationStore  # noqa: E402
from bot.store.policies import PolicyStore  # noqa: E402
from bot.store.setup import open_store  # noqa: E402

CODE = "123456"
CHANNEL = "web"

# ----------------------------------------------------------------------------- hop counting


class Hops:
    """Counts every call queued to aiosqlite's thread (`Connection._execute`: execute,
    execute_fetchall, executemany, cursor fetches and closes, commit ... all go through it)."""

    def __init__(self) -> None:
        self.count = 0
        self.log: list[str] | None = None  # statements, when recording

    def install(self) -> None:
        original = aiosqlite.Connection._execute
        hops = self

        async def counted(conn: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
            hops.count += 1
            if hops.log is not None:
                what = args[0] if args and isinstance(args[0], str) else getattr(fn, "__name__", fn)
                hops.log.append(" ".join(str(what).split())[:70])
            return await original(conn, fn, *args, **kwargs)

        aiosqlite.Connection._execute = counted  # type: ignore[method-assign]


HOPS = Hops()

# ----------------------------------------------------------------------------- figures


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def line(label: str, wall_ms: list[float], cpu_s: float, hops: int | None = None) -> str:
    n = max(len(wall_ms), 1)
    text = (
        f"  {label:34} p50 {percentile(wall_ms, 0.5):7.3f} ms  p99 {percentile(wall_ms, 0.99):7.3f}"
        f" ms  CPU {cpu_s * 1000 / n:6.3f} ms"
    )
    if hops is not None:
        text += f"  hops {hops / n:4.1f}"
    return text


class Timer:
    """Wall time per call, CPU time and round trips over all the calls of one label."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: Counter[str] = Counter()
        self.hops: Counter[str] = Counter()

    async def __call__(self, label: str, call: Awaitable[Any]) -> Any:
        hops0, cpu0, t0 = HOPS.count, time.process_time(), time.perf_counter()
        result = await call
        self.wall.setdefault(label, []).append((time.perf_counter() - t0) * 1000)
        self.cpu[label] += time.process_time() - cpu0
        self.hops[label] += HOPS.count - hops0
        return result

    def print(self) -> None:
        for label, samples in self.wall.items():
            print(line(label, samples, self.cpu[label], self.hops[label]))


# ----------------------------------------------------------------------------- the runs


class NoImages:
    """The captcha renderer's interface, rendering nothing (the store is measured here)."""

    async def render(self, code: str) -> bytes:
        return b""

    async def render_audio(self, code: str, locale: str) -> bytes:
        return b""


def address(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


async def policy_calls(store: PolicyStore, key: bytes, rows: int, lookups: int) -> None:
    rng = random.Random(3)
    cases = {
        "found": [identity_number(rng.randrange(rows)) for _ in range(lookups)],
        "not found": [identity_number(rows + rng.randrange(rows)) for _ in range(lookups)],
    }
    timer = Timer()
    for label, numbers in cases.items():
        for digits in numbers[:500]:  # warm the page cache
            await store.policies_for(digits)
        for digits in numbers:
            await timer(f"policies_for, {label}", store.policies_for(digits))
        for digits in numbers:
            hashed = id_hmac(key, digits)
            await timer(f"policies_for_hmac, {label}", store.policies_for_hmac(hashed))
    timer.print()


def raw_join(db_path: Path, key: bytes, rows: int, lookups: int) -> None:
    """The same JOIN as PolicyStore.policies_for_hmac, in plain sqlite3 on the same file."""
    rng = random.Random(5)
    sql = policies_module._SELECT + " WHERE p.id_hmac = ?"
    conn = sqlite3.connect(db_path)
    try:
        for label, offset in (("found", 0), ("not found", rows)):
            hashes = [
                id_hmac(key, identity_number(offset + rng.randrange(rows))) for _ in range(lookups)
            ]
            for hashed in hashes[:500]:
                conn.execute(sql, (hashed,)).fetchall()
            samples, cpu0 = [], time.process_time()
            for hashed in hashes:
                t0 = time.perf_counter()
                conn.execute(sql, (hashed,)).fetchall()
                samples.append((time.perf_counter() - t0) * 1000)
            print(line(f"raw sqlite3 JOIN, {label}", samples, time.process_time() - cpu0))
    finally:
        conn.close()


async def store_calls(runtime: Runtime, first: int, count: int) -> None:
    """The store calls of `count` web lookups, one at a time, each timed (see the module doc)."""
    settings, db = runtime.settings, runtime.db
    conversations = ConversationStates(ConversationStore(db))
    limits, policies = runtime.limits(CHANNEL), runtime.policies
    service = runtime.conversations(CHANNEL)
    timer = Timer()
    for i in range(first, first + count):
        chat_id, network = f"bench-{i}", address(i)
        who = Requester(service.chat_ref(chat_id), network)
        hashed = id_hmac(settings.database.hash_key, identity_number(i))
        now = time.time()
        hops0, cpu0, t0 = HOPS.count, time.process_time(), time.perf_counter()
        # request 1: the number
        await timer("limits.new_session", limits.new_session(network, now))
        conv = await timer("conversations.load (new chat)", conversations.load(CHANNEL, chat_id))
        await timer("limits.challenge", limits.challenge(who, hashed, now))
        conv.last_seen = now
        await timer("conversations.save", conversations.save(CHANNEL, chat_id, conv))
        # request 2: the code
        conv = await timer(
            "conversations.load_existing", conversations.load_existing(CHANNEL, chat_id)
        )
        assert conv is not None
        await timer("limits.look_up", limits.look_up(who, hashed, now))
        found = await timer("policies_for_hmac", policies.policies_for_hmac(hashed))
        outcome = "active" if found else "not_found"
        conv.lookups.append(now)
        record = [AuditEntry(who.chat_ref, hashed, outcome)]
        await timer(
            "conversations.save + audit", conversations.save(CHANNEL, chat_id, conv, record)
        )
        timer.wall.setdefault("= full lookup, these calls", []).append(
            (time.perf_counter() - t0) * 1000
        )
        timer.cpu["= full lookup, these calls"] += time.process_time() - cpu0
        timer.hops["= full lookup, these calls"] += HOPS.count - hops0
    timer.print()


async def service_lookups(runtime: Runtime, first: int, count: int) -> None:
    """Full lookups through the real ConversationService, plus the web route's session
    check (new_session) before it and the session resumed, as bot/channels/web.py does."""
    service = runtime.conversations(CHANNEL)
    limits = runtime.limits(CHANNEL)
    wall: list[float] = []
    cpu, hops = 0.0, 0
    shown: list[str] = []
    for i in range(first, first + count):
        chat_id, network = f"svc-{i}", address(i)
        record = i == first
        HOPS.log = [] if record else None
        hops0, cpu0, t0 = HOPS.count, time.process_time(), time.perf_counter()
        await limits.new_session(network, time.time())
        first_replies = await service.handle(
            chat_id, Event(Text(identity_number(i)), ChatKind.PRIVATE, "ar", network)
        )
        if HOPS.log is not None:
            HOPS.log.append("--- request 2 (the code)")
        resumed = await service.resume(chat_id, Event(Text(CODE), ChatKind.PRIVATE, "ar", network))
        assert resumed is not None
        replies = resumed
        wall.append((time.perf_counter() - t0) * 1000)
        cpu += time.process_time() - cpu0
        hops += HOPS.count - hops0
        if record:
            shown = HOPS.log or []
            kinds = [type(r).__name__ for r in first_replies + replies]
            shown.append(f"(replies: {', '.join(kinds)})")
        HOPS.log = None
    print(line("= full lookup, ConversationService", wall, cpu, hops))
    print("  round trips of one full lookup (request 1, the number):")
    for statement in shown:
        print(f"      {statement}")


async def run(rows: int, lookups: int, full: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "policies.csv"
        started = time.perf_counter()
        write_policies(csv_path, rows)
        settings = Settings(
            _env_file=None,
            database_path=Path(folder) / "bench.sqlite3",
            id_hash_key="bench-key",
            captcha_test_code=CODE,
            lookups_per_hour=1_000_000,
            lookups_per_id_per_day=1_000_000,
            lookups_per_address_per_hour=1_000_000,
            challenges_per_hour=1_000_000,
            sessions_per_address_per_hour=1_000_000,
            web_lookups_per_minute=0,
        )
        db = await open_store(settings)
        try:
            await import_policies(csv_path, db, settings.database.hash_key)
            store = PolicyStore(db, settings.database.hash_key)
            loaded = time.perf_counter() - started
            print(
                f"{await store.count():,} policies loaded in {loaded:.1f} s; one call at a time, "
                f"one aiosqlite connection; CPU = this process's per call"
            )
            runtime = Runtime(settings, db, store, NoImages())  # type: ignore[arg-type]
            HOPS.install()
            print(f"policy lookups ({lookups:,} each):")
            await policy_calls(store, settings.database.hash_key, rows, lookups)
            raw_join(Path(settings.database.path), settings.database.hash_key, rows, lookups)
            print(f"one web lookup's store calls ({full:,} lookups, numbers with a policy):")
            with contextlib.redirect_stdout(io.StringIO()):  # warm-up
                await store_calls(runtime, 0, min(50, full))
                await service_lookups(runtime, 50, min(50, full))
            await store_calls(runtime, 1000, full)
            await service_lookups(runtime, 1000 + full, full)
        finally:
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--policies", "--rows", type=int, default=1_000_000, dest="rows")
    parser.add_argument("--lookups", type=int, default=20_000, help="policy lookups per case")
    parser.add_argument("--full", type=int, default=3000, help="full lookups per variant")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.lookups, args.full))


if __name__ == "__main__":
    main()
