"""Import N generated policies through the real import path: rows/s, wall and CPU time.

.venv/bin/python bench/import.py [--rows 1000000] [--gc-reference]

The importer pauses the garbage collector around its hot loop. `--gc-reference` also runs the
import with the collector left on (the importer's pause replaced by a no-op), into a new
database, and prints both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot.importer.run as run_module
from bench._policies import write_policies
from bot.config import Settings
from bot.importer.rows import InsurerIndex, RowValidator
from bot.importer.run import import_policies
from bot.store.insurers import read_insurers_file
from bot.store.setup import open_store


def validation_alone(csv_path: Path, key: bytes, rows: int) -> None:
    """The same reading and validation without the database, to show where time goes."""
    started, cpu = time.perf_counter(), time.process_time()
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        validator = RowValidator(InsurerIndex(read_insurers_file()), key, next(reader))
        lines: list[int] = []
        records: list[list[str]] = []
        for number, record in enumerate(reader, start=2):
            lines.append(number)
            records.append(record)
            if len(records) == 5000:
                validator.validate_batch(lines, records)
                lines, records = [], []
        validator.validate_batch(lines, records)
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"read + validate only (no database): {rows / elapsed:,.0f} rows/s "
        f"(wall {elapsed:.2f} s, CPU {cpu_s:.2f} s)"
    )


async def import_into_empty(
    folder: Path, csv_path: Path, rows: int, label: str, gc_off: bool
) -> None:
    """Import into a new empty database, then again (every row unchanged); wall and CPU.

    `gc_off` False: the importer's pause of the garbage collector is replaced by a no-op (the
    reference: the collector running as it would without it)."""
    settings = Settings(
        _env_file=None,
        database_path=folder / f"bench-{label}.sqlite3",
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
    size = sum(f.stat().st_size for f in folder.glob(f"bench-{label}.sqlite3*"))
    print(f"  database size: {size / 1e6:.0f} MB; CSV {csv_path.stat().st_size / 1e6:.0f} MB")


async def run(rows: int, reference: bool) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        csv_path = folder / "policies.csv"
        write_policies(csv_path, rows)
        key = Settings(_env_file=None, id_hash_key="bench-key").database.hash_key
        validation_alone(csv_path, key, rows)
        print("CPU = this process (event loop + aiosqlite's thread), beside wall-clock time")
        await import_into_empty(folder, csv_path, rows, "off", gc_off=True)
        if reference:
            await import_into_empty(folder, csv_path, rows, "on", gc_off=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--gc-reference",
        action="store_true",
        help="also import with the garbage collector left on (the reference), print both",
    )
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.gc_reference))


if __name__ == "__main__":
    main()
