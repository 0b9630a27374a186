"""Six-digit codes: drawing one, and checking what a person typed against it."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from bot.domain.identity import normalize_digits

CODE_LENGTH = 6


def new_code(test_code: str = "") -> str:
    """Six random digits; `test_code` instead when set (automated end-to-end tests only)."""
    if test_code:
        if len(test_code) != CODE_LENGTH or not (test_code.isascii() and test_code.isdecimal()):
            raise ValueError(f"test code must be {CODE_LENGTH} ASCII digits")
        return test_code
    # One draw, not one per digit: each draw reads os.urandom, which releases the GIL on the
    # event loop's thread (bench/gil.py).
    return f"{secrets.randbelow(10**CODE_LENGTH):0{CODE_LENGTH}d}"


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
