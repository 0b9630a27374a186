"""Six-digit image captchas: codes, PNG rendering off the event loop, checking answers.

Rendering one image costs several milliseconds of CPU and holds the GIL (shared/PERFORMANCE.md),
so `CaptchaRenderer` renders in a small process pool and the event loop keeps its own core.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import multiprocessing
import secrets
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from io import BytesIO
from types import TracebackType
from typing import Literal, Self

from captcha.image import ColorTuple, ImageCaptcha, random_color
from PIL.Image import Image
from PIL.Image import new as new_image
from PIL.ImageDraw import Draw
from PIL.ImageFilter import SMOOTH

from bot.domain.identity import normalize_digits

CODE_LENGTH = 6
WIDTH = 280
HEIGHT = 90

StartMethod = Literal["spawn", "forkserver"]


def new_code(test_code: str = "") -> str:
    """Six random digits; `test_code` instead when set (automated end-to-end tests only)."""
    if test_code:
        if len(test_code) != CODE_LENGTH or not (test_code.isascii() and test_code.isdecimal()):
            raise ValueError(f"test code must be {CODE_LENGTH} ASCII digits")
        return test_code
    return "".join(str(secrets.randbelow(10)) for _ in range(CODE_LENGTH))


def answer_matches(expected: str, typed: str) -> bool:
    """Whether `typed` is the code, in any digit script, ignoring spaces and invisible marks."""
    answer = normalize_digits(typed)
    if not expected or not (answer.isascii() and answer.isdecimal()):
        return False
    return hmac.compare_digest(answer.encode("ascii"), expected.encode("utf-8"))


class _DigitCaptcha(ImageCaptcha):
    """ImageCaptcha tuned for six digits read on a phone.

    Upstream pastes each glyph through a mask derived from the glyph's *luminance*, so dark ink
    comes out faint and light ink lacks contrast against the light background. Here the glyph's
    own alpha is the mask: dark, opaque, anti-aliased digits in random dark colours.

    DroidSansMono (the only font the package ships) draws 1 with a long flag: turned clockwise or
    warped hard it reads as 7, so rotation leans anticlockwise and the warp is milder. Fewer
    gaps and less overlap keep six digits from being squeezed together; noise (dots and two
    curves in the ink colour, which simple thresholding cannot separate) is a little heavier.
    """

    character_rotate = (-6, 18)
    character_warp_dx = (0.1, 0.2)
    character_warp_dy = (0.2, 0.25)
    word_space_probability = 0.7  # a gap before a digit with probability 0.3
    word_offset_dx = 0.12

    def create_captcha_image(self, chars: str, color: ColorTuple, background: ColorTuple) -> Image:
        image = new_image("RGB", (self._width, self._height), background)
        draw = Draw(image)
        glyphs: list[Image] = []
        for char in chars:
            if secrets.randbits(32) / 2**32 > self.word_space_probability:
                glyphs.append(self._draw_character(" ", draw, color))
            glyphs.append(self._draw_character(char, draw, color))

        text_width = sum(glyph.size[0] for glyph in glyphs)
        width = max(text_width, self._width)
        image = image.resize((width, self._height))
        average = int(text_width / len(chars))
        jitter = int(self.word_offset_dx * average)
        offset = int(average * 0.1)
        for glyph in glyphs:
            w, h = glyph.size
            image.paste(glyph, (offset, int((self._height - h) / 2)), glyph.getchannel("A"))
            offset += w - secrets.randbelow(jitter + 1)
        if width > self._width:
            image = image.resize((self._width, self._height))
        return image

    def generate_image(
        self,
        chars: str,
        bg_color: ColorTuple | None = None,
        fg_color: ColorTuple | None = None,
    ) -> Image:
        background = bg_color or random_color(232, 255)
        ink = fg_color or random_color(10, 120, 255)
        image = self.create_captcha_image(chars, ink, background)
        self.create_noise_dots(image, ink, width=3, number=40)
        self.create_noise_curve(image, ink)
        self.create_noise_curve(image, ink)
        return image.filter(SMOOTH)


# Fonts: the DroidSansMono the captcha package ships (its only font). Loaded on first render.
_CAPTCHA = _DigitCaptcha(width=WIDTH, height=HEIGHT, font_sizes=(46, 52, 58))


def render_png(code: str) -> bytes:
    """Render `code` as a 280×90 PNG. CPU-bound and GIL-holding: see CaptchaRenderer."""
    if not code:
        raise ValueError("nothing to render")
    out = BytesIO()
    # zlib level 1: about half the encoding time of the default level 6, for the same size
    # within a few per cent (a noisy image barely compresses either way).
    _CAPTCHA.generate_image(code).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _warm_up() -> None:
    """Pool initializer: import everything and load the fonts before the first real render."""
    render_png("0" * CODE_LENGTH)


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
    """Renders captcha PNGs in a process pool, started lazily (or by `start()` / `async with`).

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
        if self._closed:
            raise RuntimeError("CaptchaRenderer is closed")
        if self.workers == 0:
            return render_png(code)
        pool = await self._ensure_pool()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, render_png, code)
        except BrokenProcessPool:
            if self._pool is pool:  # else a concurrent render has already replaced it
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            pool = await self._ensure_pool()
            return await loop.run_in_executor(pool, render_png, code)

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
