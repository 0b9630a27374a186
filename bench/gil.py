"""What a call that releases the GIL costs the event loop's thread when other threads want it.

    .venv/bin/python bench/gil.py [--calls 2000] [--threads 2]

The bot's loop shares the GIL with aiosqlite's thread and the captcha pool's feeder threads.
A C call that releases the GIL (hmac.digest, os.urandom) must win it back before Python goes
on, and behind busy threads that takes a switch interval or more. Each pair below does the
same work one way that releases the GIL and one way that does not; both are timed with the
same busy threads in the background, and with none (the reference). Prints figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.captcha.codes import new_code

KEY, DIGITS = b"k" * 32, b"1000000008"


def busy(stop: threading.Event) -> None:
    """What aiosqlite's thread does: short SQLite calls, GIL released and taken back."""
    conn = sqlite3.connect(":memory:")
    while not stop.is_set():
        conn.execute("SELECT 1").fetchall()


def timed(work: Callable[[], object], calls: int) -> tuple[float, float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
        time.sleep(0)  # let the other threads run between calls, as the loop does
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(len(samples) * 0.99)] * 1e6


PAIRS: list[tuple[str, tuple[str, str], Callable[[], object], Callable[[], object]]] = [
    (
        "identity HMAC",
        ("hmac.digest", "hmac.new"),
        lambda: hmac.digest(KEY, DIGITS, "sha256"),  # one-shot: releases the GIL (before)
        lambda: hmac.new(KEY, DIGITS, hashlib.sha256).digest(),
    ),
    (
        "six-digit code",
        ("6 draws", "buffered"),
        lambda: "".join(str(secrets.randbelow(10)) for _ in range(6)),  # six urandom reads
        new_code,  # now: 3 bytes of a 4 KiB os.urandom read
    ),
    ("os.urandom(16)", ("urandom", "nothing"), lambda: os.urandom(16), lambda: None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{'':16} {'idle p50/p99 µs':>22} {'busy p50/p99 µs':>22}  (busy: {args.threads} threads)"
    )
    for name, labels, before, after in PAIRS:
        for label, work in zip(labels, (before, after), strict=True):
            idle = timed(work, args.calls)
            stop = threading.Event()
            threads = [threading.Thread(target=busy, args=(stop,)) for _ in range(args.threads)]
            for t in threads:
                t.start()
            try:
                loaded = timed(work, args.calls)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            print(
                f"{name:16} {label:13} {idle[0]:7.1f} / {idle[1]:7.1f}"
                f"      {loaded[0]:7.1f} / {loaded[1]:7.1f}"
            )


if __name__ == "__main__":
    main()
