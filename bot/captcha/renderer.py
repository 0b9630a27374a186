"""Rendering codes off the event loop.

Rendering one image costs several milliseconds of CPU and holds the GIL (one event loop that
renders its own codes tops out near 40-45 lookups/s on a 2-core machine),
one audio code over a hundred (mostly the Opus encoder), so `CaptchaRenderer` renders both in a
small process pool and the event loop keeps its own core.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Literal, Self, TypeVarTuple

from bot.captcha import audio
from bot.captcha.audio import render_ogg
from bot.captcha.codes import CODE_LENGTH
from bot.captcha.image import render_png

StartMethod = Literal["spawn", "forkserver"]
Args = TypeVarTuple("Args")


def _warm_up() -> None:
    """Pool initializer: import everything, load fonts and voice clips before the first render.

    Ctrl+C in a terminal, and systemd's SIGTERM, reach the whole process group: workers ignore
    both (no traceback of their own, no render broken mid-way) and are stopped by the bot as
    it shuts down the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    render_png("0" * CODE_LENGTH)
    audio.warm_up()


def _ready() -> bool:
    return True


def _start_pool(workers: int, start_method: StartMethod) -> ProcessPoolExecutor:
    """Create a pool and wait until every worker has warmed up (blocking: call in a thread)."""
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(start_method),
        initializer=_warm_up,
    )
    try:
        # Workers start on demand: one task per worker, all submitted before any is waited for,
        # brings them all up, and each runs the initializer before its first task.
        for future in [pool.submit(_ready) for _ in range(workers)]:
            future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


class CaptchaRenderer:
    """Renders image and audio codes in a process pool, started lazily (or by `start()`).

    `workers=1` (the default) leaves the event loop its own core on a two-core machine.
    `workers=0` renders inline on the calling thread (blocks the loop: tests and tools only).
    Workers are started with "spawn" (or "forkserver"), never by forking the running loop.
    A pool whose worker died (BrokenProcessPool) is replaced once and the render retried.
    """

    def __init__(self, workers: int = 1, *, start_method: StartMethod = "spawn") -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.workers = workers
        self.start_method: StartMethod = start_method
        self._pool: ProcessPoolExecutor | None = None
        self._starting: asyncio.Task[ProcessPoolExecutor] | None = None
        self._closed = False

    async def start(self) -> None:
        """Start the pool now rather than on the first render; returns once workers are warm."""
        if self.workers:
            await self._ensure_pool()

    async def render(self, code: str) -> bytes:
        """The image code: a PNG (see render_png)."""
        return await self._run(render_png, code)

    async def render_audio(self, code: str, locale: str) -> bytes:
        """The audio code: OGG/Opus, spoken in `locale` ("ar" or "en"; see render_ogg)."""
        return await self._run(render_ogg, code, locale)

    async def _run(self, render: Callable[[*Args], bytes], *args: *Args) -> bytes:
        if self._closed:
            raise RuntimeError("CaptchaRenderer is closed")
        if self.workers == 0:
            return render(*args)
        pool = await self._ensure_pool()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, render, *args)
        except BrokenProcessPool:
            if self._pool is pool:  # else a concurrent render has already replaced it
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            pool = await self._ensure_pool()
            return await loop.run_in_executor(pool, render, *args)

    async def close(self) -> None:
        """Stop accepting renders, let those in flight finish, and wait for the workers to exit."""
        self._closed = True
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:
            return self._pool
        if self._closed:
            raise RuntimeError("CaptchaRenderer is closed")
        if self._starting is None:
            # One start shared by every caller, shielded so a cancelled caller cannot orphan
            # the pool half-way; processes are started in a thread, off the event loop.
            self._starting = asyncio.create_task(self._start())
            self._starting.add_done_callback(_retrieve_exception)
        return await asyncio.shield(self._starting)

    async def _start(self) -> ProcessPoolExecutor:
        try:
            self._pool = await asyncio.to_thread(_start_pool, self.workers, self.start_method)
            return self._pool
        finally:
            self._starting = None


def _retrieve_exception(task: asyncio.Task[ProcessPoolExecutor]) -> None:
    # Every awaiting caller sees the exception; this only silences "never retrieved" when the
    # callers were all cancelled before the start failed.
    if not task.cancelled():
        task.exception()
