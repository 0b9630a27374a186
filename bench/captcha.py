"""Captcha rendering throughput: inline on one core, and through CaptchaRenderer pools.

    .venv/bin/python bench/captcha.py [--seconds 5] [--concurrency 8]

Prints figures, asserts nothing. For the pools, "parent CPU" is what the bot's own process
spends per image (event loop plus the pool's feeder threads: pickling, pipes), and "max loop lag"
is the longest an event-loop timer was late while rendering went on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

# Run as a script, this file's folder is sys.path[0] and this file would shadow the `captcha`
# package; the repository root goes there instead (spawned workers inherit sys.path).
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from bot.captcha import CaptchaRenderer, new_code, render_png  # noqa: E402


def bench_inline(seconds: float) -> tuple[float, float, float]:
    """Images/s, mean PNG bytes, and CPU seconds per image, in one thread."""
    render_png(new_code())  # load fonts
    count = size = 0
    cpu0, start = time.process_time(), time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        size += len(render_png(new_code()))
        count += 1
    return count / elapsed, size / count, (time.process_time() - cpu0) / count


class LoopLag:
    """Records the longest delay of a periodic timer on the running event loop."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = time.perf_counter() - before - self.interval
            self.max_lag = max(self.max_lag, lag)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._probe())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def bench_pool(
    workers: int, seconds: float, concurrency: int
) -> tuple[float, float, float, float]:
    """Images/s, mean PNG bytes, parent CPU seconds per image, max loop lag (s)."""
    async with CaptchaRenderer(workers=workers) as renderer:
        await asyncio.gather(*(renderer.render(new_code()) for _ in range(workers * 4)))
        count = size = 0
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal count, size
            while time.perf_counter() < deadline:
                data = await renderer.render(new_code())  # not `size += len(await ...)`:
                size += len(data)  # that reads `size` before the await and loses updates
                count += 1

        cpu0, start = time.process_time(), time.perf_counter()
        with LoopLag() as lag:
            await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    return count / elapsed, size / count, cpu / count, lag.max_lag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="renders in flight (pools)")
    args = parser.parse_args()

    print(f"captcha rendering, {args.seconds:g} s per measurement, {os.cpu_count()} CPUs")
    rate, size, cpu = bench_inline(args.seconds)
    print(
        f"inline, one core     : {rate:7.1f} images/s  mean PNG {size / 1024:5.1f} KiB"
        f"  CPU {cpu * 1000:5.2f} ms/image"
    )
    for workers in (1, 2):
        rate, size, cpu, max_lag = asyncio.run(bench_pool(workers, args.seconds, args.concurrency))
        print(
            f"pool, {workers} worker{'s' if workers > 1 else ' '}       : {rate:7.1f} images/s"
            f"  mean PNG {size / 1024:5.1f} KiB  parent CPU {cpu * 1000:5.2f} ms/image"
            f"  max loop lag {max_lag * 1000:4.1f} ms"
            f"  ({args.concurrency} in flight)"
        )


if __name__ == "__main__":
    main()
