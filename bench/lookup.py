"""Lookup latency through the store API with N policies loaded.

    .venv/bin/python bench/lookup.py [--rows 1000000] [--lookups 20000]

Prints p50/p99/max of `PolicyStore.policies_for` for numbers that exist and numbers that do
not (the "no policy registered" answer costs the same index probe).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._policies import identity_number, write_policies
from bot.config import Settings
from bot.importer.run import import_policies
from bot.store.policies import PolicyStore
from bot.store.setup import open_store


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(rows: int, lookups: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        csv_path = Path(folder) / "policies.csv"
        write_policies(csv_path, rows)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_path=Path(folder) / "bench.sqlite3",
            id_hash_key="bench-key",  # type: ignore[arg-type]
        )
        db = await open_store(settings)
        try:
            await import_policies(csv_path, db, settings.hash_key)
            store = PolicyStore(db, settings.hash_key)
            print(f"{await store.count():,} policies loaded")
            rng = random.Random(3)
            cases = {
                "found": [identity_number(rng.randrange(rows)) for _ in range(lookups)],
                "not found": [identity_number(rows + rng.randrange(rows)) for _ in range(lookups)],
            }
            for label, numbers in cases.items():
                for digits in numbers[:500]:  # warm the page cache
                    await store.policies_for(digits)
                samples = []
                hits = 0
                for digits in numbers:
                    started = time.perf_counter()
                    hits += len(await store.policies_for(digits))
                    samples.append((time.perf_counter() - started) * 1000)
                print(
                    f"lookup {label:9}: p50 {statistics.median(samples):.3f} ms, "
                    f"p99 {percentile(samples, 0.99):.3f} ms, max {max(samples):.3f} ms "
                    f"over {lookups:,} lookups ({hits:,} policies returned)"
                )
        finally:
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.lookups))


if __name__ == "__main__":
    main()
