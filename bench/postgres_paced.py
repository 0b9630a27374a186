"""The PostgreSQL import as if validation took a given time: what a faster validator would buy.

    .venv/bin/python bench/postgres_paced.py                          # 3 s per million rows
    .venv/bin/python bench/postgres_paced.py --seconds 3,2 --rows 200000

The store's write (`PolicyStore.write_import`) fed as `import_policies` feeds it from its
validating process: a spawned process sends pickled batches through a pipe, a thread receives
them, this process unpickles them. The rows are validated beforehand; the spawned process
spends the given CPU time per million rows on each batch before sending it, in place of
validating it. Into an empty store (a first load), then again (all unchanged), in a throwaway
cluster with fsync on (tests/postgres_cluster.py). Prints rows/s, when the last batch arrived,
and the machine's CPU time meanwhile (every process: this one, the sender, PostgreSQL's).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import pickle
import queue
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from bench._policies import write_policies  # noqa: E402
from bench.postgres import BATCH_ROWS, KEY, open_store_at, validated  # noqa: E402
from bot.store.import_write import StagedRow  # noqa: E402
from bot.store.policies import PolicyStore  # noqa: E402
from tests.postgres_cluster import start_cluster  # noqa: E402


def _send(conn: Connection, path: str, per_batch: float) -> None:
    for blob in pickle.loads(Path(path).read_bytes()):
        until = time.process_time() + per_batch
        while time.process_time() < until:  # the validation's CPU time
            pass
        conn.send_bytes(blob)
    conn.send_bytes(b"")
    conn.close()


def _machine_busy() -> float:
    """CPU seconds every process of the machine has used since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


async def _paced_write(store: PolicyStore, blobs: Path, per_batch: float) -> tuple[float, float]:
    """(when the last batch arrived, when the write returned), in seconds from the start."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    sender = context.Process(target=_send, args=(send, str(blobs), per_batch), daemon=True)
    waiting: queue.Queue[bytes] = queue.Queue(maxsize=8)
    started = time.perf_counter()
    sender.start()
    send.close()

    def pump() -> None:
        while data := receive.recv_bytes():
            waiting.put(data)
        waiting.put(b"")

    threading.Thread(target=pump, daemon=True).start()
    last = 0.0

    async def batches() -> AsyncIterator[list[StagedRow]]:
        nonlocal last
        loop = asyncio.get_running_loop()
        while data := await loop.run_in_executor(None, waiting.get):
            yield pickle.loads(data)
        last = time.perf_counter() - started

    await store.write_import(batches())
    done = time.perf_counter() - started
    sender.join()
    receive.close()
    return last, done


async def run(rows: int, paces: list[float]) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        csv_path = folder / "policies.csv"
        write_policies(csv_path, rows)
        blobs = folder / "batches.pickle"
        batches = [pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL) for b in validated(csv_path)]
        blobs.write_bytes(pickle.dumps(batches))
        del batches
        cluster = start_cluster(durable=True)
        print(f"{rows:,} policies; PostgreSQL: a throwaway cluster, fsync on ({cluster.bindir})")
        try:
            for seconds in paces:
                db = await open_store_at(cluster.url(cluster.create_database()))
                try:
                    for what in ("into an empty store", "again (all unchanged)"):
                        busy = _machine_busy()
                        per_batch = seconds * BATCH_ROWS / 1_000_000
                        last, done = await _paced_write(PolicyStore(db, KEY), blobs, per_batch)
                        print(
                            f"  validation {seconds:.1f} s per million, import {what:22}: "
                            f"{rows / done:>9,.0f} rows/s (wall {done:5.2f} s, last batch at "
                            f"{last:5.2f} s; machine CPU {_machine_busy() - busy:5.2f} s)"
                        )
                finally:
                    await db.close()
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", default="3", help="validation CPU s per million, e.g. 3,2")
    args = parser.parse_args()
    asyncio.run(run(args.rows, [float(s) for s in args.seconds.split(",")]))


if __name__ == "__main__":
    main()
