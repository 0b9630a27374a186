"""Import N generated policies through the real import path and print rows/second.

.venv/bin/python bench/import.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._policies import write_policies
from bot.config import Settings
from bot.importer.rows import InsurerIndex, RowValidator
from bot.importer.run import import_policies
from bot.store.insurers import read_insurers_file
from bot.store.setup import open_store


def validation_alone(csv_path: Path, key: bytes, rows: int) -> None:
    """The same reading and validation without the database, to show where time goes."""
    started = time.perf_counter()
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
    elapsed = time.perf_counter() - started
    print(f"read + validate only (no database): {rows / elapsed:,.0f} rows/s")


async def run(rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "policies.csv"
        write_policies(csv_path, rows)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_path=Path(folder) / "bench.sqlite3",
            id_hash_key="bench-key",  # type: ignore[arg-type]
        )
        db = await open_store(settings)
        validation_alone(csv_path, settings.hash_key, rows)
        try:
            for label in ("into an empty database", "again (all rows unchanged)"):
                started, cpu = time.perf_counter(), time.process_time()
                report = await import_policies(csv_path, db, settings.hash_key)
                elapsed = time.perf_counter() - started
                print(
                    f"import {rows:,} rows {label}: {elapsed:.2f} s, {rows / elapsed:,.0f} rows/s "
                    f"(CPU {time.process_time() - cpu:.2f} s); {report.summary()}"
                )
        finally:
            await db.close()
        size = sum(f.stat().st_size for f in Path(folder).glob("bench.sqlite3*"))
        print(f"database size: {size / 1e6:.0f} MB; CSV {csv_path.stat().st_size / 1e6:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    asyncio.run(run(parser.parse_args().rows))


if __name__ == "__main__":
    main()
