"""Six-digit codes: drawing one, and checking what a person typed against it."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading

from bot.domain.identity import normalize_digits

CODE_LENGTH = 6


class _BufferedRandom:
    """Uniform draws from os.urandom, read 4 KiB at a time.

    Each os.urandom call releases the GIL, and on the event loop's thread winning it back
    behind the database and captcha threads cost tens of microseconds to a millisecond under
    load (bench/gil.py); a code needs three bytes. The bytes are the kernel's CSPRNG output
    either way; rejection sampling keeps every code equally likely.
    """

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._pool = b""
        self._used = 0
        self._lock = threading.Lock()  # the sample command and tests may call from threads

    def below(self, n: int) -> int:
        width = max(1, (n.bit_length() + 7) // 8)
        limit = (256**width // n) * n  # the largest multiple of n that `width` bytes reach
        while True:
            with self._lock:
                if self._used + width > len(self._pool):
                    self._pool, self._used = os.urandom(self._chunk), 0
                start = self._used
                self._used += width
                value = int.from_bytes(self._pool[start : start + width], "big")
            if value < limit:
                return value % n


_RANDOM = _BufferedRandom()


def new_code(test_code: str = "") -> str:
    """Six random digits; `test_code` instead when set (automated end-to-end tests only)."""
    if test_code:
        if len(test_code) != CODE_LENGTH or not (test_code.isascii() and test_code.isdecimal()):
            raise ValueError(f"test code must be {CODE_LENGTH} ASCII digits")
        return test_code
    return f"{_RANDOM.below(10**CODE_LENGTH):0{CODE_LENGTH}d}"


def code_digest(key: bytes, code: str) -> str:
    """The keyed hash a conversation keeps instead of the code: a copy of the stored state
    (a backup, a database read) does not hand out the answer to an open challenge."""
    return hmac.new(key, b"captcha-code:" + code.encode("ascii"), hashlib.sha256).hexdigest()


def answer_matches(key: bytes, digest: str, typed: str) -> bool:
    """Whether `typed` is the code behind `digest`, in any digit script, ignoring spaces and
    invisible marks."""
    answer = normalize_digits(typed)
    if not digest or not (answer.isascii() and answer.isdecimal()):
        return False
    return hmac.compare_digest(code_digest(key, answer), digest)
