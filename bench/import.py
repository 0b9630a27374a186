"""Import N generated policies through the real import path: rows/s, wall and CPU time.

.venv/bin/python bench/import.py [--rows 1000000] [--repeat 1] [--gc-reference]

Beside it, in the same run: reading and validation alone, and the floor, Python's sqlite3
inserting the same (validated) rows into the same schema in one transaction, as a plain script
would (file order, the store's pragmas) and at its best (sorted by the unique key, the
import's cache size). `--repeat N` imports N times, each into a new database, and keeps the
fastest (the machine may be shared).

The importer pauses the garbage collector around its hot loop. `--gc-reference` also runs the
import with the collector left on (the importer's pause replaced by a no-op), into a new
database, and prints both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot.importer.run as run_module
from bench._policies import write_policies
from bot.config import Settings
from bot.importer.rows import InsurerIndex
from bot.importer.run import import_policies
from bot.store.database import _PRAGMAS
from bot.store.import_write import StagedRow
from bot.store.insurers import read_insurers_file
from bot.store.migrations import MIGRATIONS
from bot.store.policies import IMPORT_CACHE_KIB, POLICY_COLUMNS
from bot.store.setup import open_store


def _validated(csv_path: Path, key: bytes, keep: list[StagedRow] | None) -> None:
    """The importer's own reading and validation (bot/importer/run.py), with no database."""
    codec, header, delimiter = run_module._read_header(csv_path, None)
    insurers = InsurerIndex(read_insurers_file())
    reading = run_module._Reading(csv_path, codec, delimiter, header, insurers, key, False)
    # As in the validating process that reads a large file (bulk checks of the numbers).
    for batch in reading.batches(bulk=True):
        if keep is not None:
            keep += batch.rows


def validation_alone(csv_path: Path, key: bytes, rows: int) -> float:
    """The same reading and validation without the database, to show where time goes: with
    the garbage collector off, as in the importer's validating process."""
    gc.collect()
    gc.disable()
    started, cpu = time.perf_counter(), time.process_time()
    try:
        _validated(csv_path, key, None)
    finally:
        gc.enable()
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"read + validate only (no database): {rows / elapsed:,.0f} rows/s "
        f"(wall {elapsed:.2f} s, CPU {cpu_s:.2f} s)"
    )
    return elapsed


def validated_rows(csv_path: Path, key: bytes) -> list[StagedRow]:
    """The staged rows, for the floor (not timed)."""
    staged: list[StagedRow] = []
    gc.disable()
    try:
        _validated(csv_path, key, staged)
    finally:
        gc.enable()
    return staged


def floor(folder: Path, staged: list[StagedRow], validating: float, *, best: bool) -> None:
    """Plain sqlite3: the validated rows into the same schema, one executemany, one transaction.

    `best`: sorted by the unique key first (sorting timed too) and the import's cache size;
    else file order and SQLite's default cache, as a plain script would."""
    path = folder / f"floor-{best}.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (*_PRAGMAS, "PRAGMA journal_mode = WAL"):
        conn.execute(pragma).fetchall()
    for step in MIGRATIONS:
        for statement in step:
            conn.execute(statement)
    conn.executemany(
        "INSERT INTO insurers VALUES (?, ?, ?)",
        [(i.code, i.name_ar, i.name_en) for i in read_insurers_file()],
    )
    if best:
        conn.execute(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
    insert = (
        f"INSERT INTO policies ({', '.join(POLICY_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(POLICY_COLUMNS))})"
    )
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    rows = [r[1:] for r in staged]
    if best:
        rows.sort(key=lambda r: (r[0], r[3]))  # (id_hmac, policy_number)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(insert, rows)
    conn.execute("COMMIT")
    conn.close()
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    what = "sorted, import's cache" if best else "file order, default cache"
    print(
        f"  floor ({what}): insert {len(rows) / elapsed:,.0f} rows/s (wall {elapsed:.2f} s, "
        f"CPU {cpu_s:.2f} s); with reading + validation "
        f"{len(rows) / (elapsed + validating):,.0f} rows/s"
    )
    for file in folder.glob(f"{path.name}*"):
        file.unlink()


async def import_into_empty(
    folder: Path, csv_path: Path, rows: int, label: str, gc_off: bool, repeat: int
) -> None:
    """Import into a new empty database, then again (every row unchanged); wall and CPU.
    With `repeat`, the fastest of that many, each into a new database.

    `gc_off` False: the importer's pause of the garbage collector is replaced by a no-op (the
    reference: the collector running as it would without it)."""
    for attempt in range(repeat):
        settings = Settings(
            _env_file=None,
            database_path=folder / f"bench-{label}-{attempt}.sqlite3",
            id_hash_key="bench-key",
        )
        db = await open_store(settings)
        try:
            for what in ("into an empty database", "again (all rows unchanged)"):
                gc.collect()
                pause = run_module._collector_paused
                if not gc_off:
                    run_module._collector_paused = contextlib.nullcontext  # type: ignore[assignment]
                try:
                    started, cpu = time.perf_counter(), time.process_time()
                    report = await import_policies(csv_path, db, settings.database.hash_key)
                    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
                finally:
                    run_module._collector_paused = pause
                print(
                    f"  gc {label:3} import {rows:,} rows {what}: wall {elapsed:6.2f} s, "
                    f"CPU {cpu_s:6.2f} s, {rows / elapsed:,.0f} rows/s; {report.summary()}"
                )
        finally:
            await db.close()
        files = list(folder.glob(f"bench-{label}-{attempt}.sqlite3*"))
        size = sum(f.stat().st_size for f in files)
        print(f"  database size: {size / 1e6:.0f} MB; CSV {csv_path.stat().st_size / 1e6:.0f} MB")
        for file in files:
            file.unlink()


async def run(rows: int, reference: bool, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        csv_path = folder / "policies.csv"
        write_policies(csv_path, rows)
        key = Settings(_env_file=None, id_hash_key="bench-key").database.hash_key
        validating = validation_alone(csv_path, key, rows)
        print("CPU = this process (event loop + aiosqlite's thread), beside wall-clock time")
        await import_into_empty(folder, csv_path, rows, "off", gc_off=True, repeat=repeat)
        if reference:
            await import_into_empty(folder, csv_path, rows, "on", gc_off=False, repeat=repeat)
        # Last: a million rows held in memory would slow what runs after them.
        staged = validated_rows(csv_path, key)
        for best in (False, True):
            floor(folder, staged, validating, best=best)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="imports to keep the fastest of")
    parser.add_argument(
        "--gc-reference",
        action="store_true",
        help="also import with the garbage collector left on (the reference), print both",
    )
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.gc_reference, args.repeat))


if __name__ == "__main__":
    main()
