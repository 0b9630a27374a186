"""PostgreSQL beside SQLite, in the same run: policy import rows/s, lookup p50/p99.

    .venv/bin/python bench/postgres.py                    # 1,000,000 policies
    .venv/bin/python bench/postgres.py --rows 100000      # quick
    .venv/bin/python bench/postgres.py --url postgresql://user:pw@host/db   # a server of yours
                                                          # (its policies are deleted first!)

Without --url it starts a throwaway cluster (tests/postgres_cluster.py) with fsync and
synchronous commits ON, as in production, and stops it at the end. SQLite runs as the bot runs
it (WAL, synchronous=NORMAL), in a temporary folder.

For each backend, through the real code paths:
  - import: `import_policies` of one generated CSV (bench/_policies.py) into an empty store,
    then again (every row unchanged): rows/s, wall and this process's CPU time. PostgreSQL
    receives the rows with COPY: into the empty store straight into `policies` (a first load,
    its indexes and constraints made after the last row), then into a staging table. Beside
    it, the two parts it is made of:
    reading and validating the CSV alone (no database: the same for both), and the store's
    write alone (`PolicyStore.write_import` of rows validated beforehand, into an empty store).
  - lookup: `PolicyStore.policies_for` (the HMAC, then the SELECT ... JOIN the bot runs),
    one call at a time, for numbers with a policy and without: p50/p99 in ms; then the same
    calls from 32 concurrent tasks: lookups/s.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

import bot.importer.run as run_module  # noqa: E402
from bench._policies import identity_number, write_policies  # noqa: E402
from bot.importer.rows import InsurerIndex  # noqa: E402
from bot.importer.run import import_policies  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.import_write import StagedRow  # noqa: E402
from bot.store.insurers import read_insurers_file, sync_insurers  # noqa: E402
from bot.store.policies import PolicyStore  # noqa: E402
from bot.store.postgres import masked_url  # noqa: E402
from bot.store.setup import open_database  # noqa: E402
from tests.postgres_cluster import start_cluster  # noqa: E402

KEY = b"bench-key"
BATCH_ROWS = run_module.BATCH_ROWS
CONCURRENCY = 32


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def open_store_at(location: Path | str) -> Database:
    db = await open_database(location)
    await sync_insurers(db, read_insurers_file())
    return db


def validated(csv_path: Path) -> list[list[StagedRow]]:
    """The CSV read and validated by the importer's own code, in its batches, as its
    validating process does for a large file (bulk checks, the garbage collector off)."""
    codec, header, delimiter = run_module._read_header(csv_path, None)
    insurers = InsurerIndex(read_insurers_file())
    reading = run_module._Reading(csv_path, codec, delimiter, header, insurers, KEY, False)
    gc.disable()
    try:
        return [batch.rows for batch in reading.batches(bulk=True)]
    finally:
        gc.enable()


async def store_write(label: str, db: Database, batches: list[list[StagedRow]], rows: int) -> None:
    async def given() -> AsyncIterator[list[StagedRow]]:
        for batch in batches:
            yield batch

    started, cpu = time.perf_counter(), time.process_time()
    outcome = await PolicyStore(db, KEY).write_import(given())
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    assert outcome.imported == rows, outcome
    print(
        f"  {label:10} the store's write alone (validated rows, empty store): "
        f"{rows / wall:>9,.0f} rows/s (wall {wall:6.2f} s, CPU {cpu_s:6.2f} s)"
    )


async def imports(label: str, db: Database, csv_path: Path, rows: int) -> None:
    for what in ("into an empty store", "again (all unchanged)"):
        started, cpu = time.perf_counter(), time.process_time()
        report = await import_policies(csv_path, db, KEY)
        wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"  {label:10} import {what:22}: {rows / wall:>9,.0f} rows/s "
            f"(wall {wall:6.2f} s, CPU {cpu_s:6.2f} s); {report.summary()}"
        )


async def lookups(label: str, db: Database, rows: int, count: int) -> None:
    store = PolicyStore(db, KEY)
    rng = random.Random(11)
    present = [identity_number(rng.randrange(rows)) for _ in range(count)]
    absent = [identity_number(rows + rng.randrange(rows)) for _ in range(count)]
    for digits in present[:200]:  # warm: connections, prepared statements, caches
        await store.policies_for(digits)
    for what, numbers, expect in (("with a policy", present, 1), ("without", absent, 0)):
        samples = []
        for digits in numbers:
            started = time.perf_counter()
            found = await store.policies_for(digits)
            samples.append((time.perf_counter() - started) * 1000)
            assert len(found) == expect, (digits, found)
        print(
            f"  {label:10} lookup {what:14}: p50 {statistics.median(samples):.3f} ms, "
            f"p99 {percentile(samples, 0.99):.3f} ms ({count:,} one at a time)"
        )
    queue = iter(present)

    async def worker() -> None:
        for digits in queue:
            await store.policies_for(digits)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"  {label:10} lookup, {CONCURRENCY} concurrent tasks: {count / wall:,.0f} lookups/s "
        f"(CPU {cpu_s / count * 1e6:.0f} µs per lookup in this process)"
    )


async def run(rows: int, count: int, url: str | None) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        csv_path = folder / "policies.csv"
        write_policies(csv_path, rows)
        print(f"{rows:,} policies, CSV {csv_path.stat().st_size / 1e6:.0f} MB")
        started, cpu = time.perf_counter(), time.process_time()
        batches = validated(csv_path)
        wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"  {'both':10} read + validate alone (no database): {rows / wall:>9,.0f} rows/s "
            f"(wall {wall:6.2f} s, CPU {cpu_s:6.2f} s)"
        )
        cluster = None
        if url is None:
            cluster = start_cluster(durable=True)
            print(f"PostgreSQL: a throwaway cluster, fsync on ({cluster.bindir})")
        else:
            print(f"PostgreSQL: {masked_url(url)}")
        given_url = url

        def empty_store(label: str, n: int) -> Path | str:
            if label == "SQLite":
                return folder / f"bench-{n}.sqlite3"
            if cluster is not None:
                return cluster.url(cluster.create_database())
            assert given_url is not None
            return given_url

        try:
            backends: dict[str, Path | str] = {}
            for label in ("SQLite", "PostgreSQL"):
                for n, step in enumerate(("write", "import")):
                    location = empty_store(label, n)
                    db = await open_store_at(location)
                    try:
                        await db.write("DELETE FROM policies")  # a server of yours: emptied
                        if step == "write":
                            await store_write(label, db, batches, rows)
                        else:
                            await imports(label, db, csv_path, rows)
                    finally:
                        await db.close()
                backends[label] = location
            del batches
            print()
            for label, location in backends.items():
                db = await open_store_at(location)
                try:
                    await lookups(label, db, rows, count)
                finally:
                    await db.close()
        finally:
            if cluster is not None:
                cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--url", help="an existing PostgreSQL database (its policies go)")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.lookups, args.url))


if __name__ == "__main__":
    main()
