"""Saudi identity numbers: normalising what people type, validating, classifying, masking.

Pure functions, no I/O. See shared/DOMAIN.md for the rules.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

ID_LENGTH = 10

# Arabic-Indic (U+0660..) and Extended Arabic-Indic (U+06F0..) digits to ASCII.
_DIGITS = {ord(c): str(i) for i, c in enumerate("٠١٢٣٤٥٦٧٨٩")}
_DIGITS.update({ord(c): str(i) for i, c in enumerate("۰۱۲۳۴۵۶۷۸۹")})

# What pasting adds around a number: whitespace, dashes, direction marks and isolates,
# zero-width characters and the Arabic tatweel.
_NOISE = (
    " \t\r\n\u00a0\u2007\u202f\u3000"
    "-\u2010\u2011\u2012\u2013\u2014\u2212_.ـ"
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u061c"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_STRIP = dict.fromkeys(ord(c) for c in _NOISE)
_TRANSLATE = {**_STRIP, **_DIGITS}


class IdKind(StrEnum):
    NATIONAL_ID = "national_id"  # starts with 1: Saudi citizen
    IQAMA = "iqama"  # starts with 2: resident
    BORDER = "border"  # starts with 3 or 4: visitor / new arrival without an iqama


class Path(StrEnum):
    """Which door the person came through in the conversation."""

    CITIZEN = "citizen"
    RESIDENT = "resident"  # resident or visitor: iqama or border number


class IdProblem(StrEnum):
    EMPTY = "empty"
    NON_DIGITS = "non_digits"
    WRONG_LENGTH = "wrong_length"
    BAD_PREFIX = "bad_prefix"
    WRONG_PATH = "wrong_path"
    BAD_CHECK_DIGIT = "bad_check_digit"


_KIND_BY_PREFIX = {
    "1": IdKind.NATIONAL_ID,
    "2": IdKind.IQAMA,
    "3": IdKind.BORDER,
    "4": IdKind.BORDER,
}
_PATH_BY_KIND = {
    IdKind.NATIONAL_ID: Path.CITIZEN,
    IdKind.IQAMA: Path.RESIDENT,
    IdKind.BORDER: Path.RESIDENT,
}


class InvalidIdentity(ValueError):
    """Why a typed number is not a usable identity number.

    `digits_given` is how many digits were typed (for "you typed 9 digits");
    `belongs_to` is the path the number would fit, for WRONG_PATH.
    """

    def __init__(
        self, problem: IdProblem, digits_given: int = 0, belongs_to: Path | None = None
    ) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.digits_given = digits_given
        self.belongs_to = belongs_to


@dataclass(frozen=True, slots=True)
class IdentityNumber:
    digits: str
    kind: IdKind

    @property
    def path(self) -> Path:
        return path_of(self.kind)

    @property
    def masked(self) -> str:
        return mask_id(self.digits)

    def __repr__(self) -> str:  # never let a raw number slip into a log through repr()
        return f"IdentityNumber({self.masked}, {self.kind.value})"

    __str__ = __repr__


def path_of(kind: IdKind) -> Path:
    return _PATH_BY_KIND[kind]


def ascii_digits(text: str) -> str:
    """Map Arabic-Indic and Extended Arabic-Indic digits to ASCII, leaving the rest alone."""
    return text.translate(_DIGITS)


def normalize_digits(text: str) -> str:
    """Map every digit script to ASCII and drop spaces, dashes and invisible marks."""
    return text.translate(_TRANSLATE)


# Luhn doubling of one digit (2d, minus 9 when over 9), as a translation table for speed.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_valid(digits: str) -> bool:
    """Luhn over ASCII digits: double those at even indices from the left (0, 2, ...).

    The digits' sum is their bytes' sum less 48 ('0') each: one C call, not one int() each
    (a third of the time; an import checks a million)."""
    mixed = (digits[0::2].translate(_LUHN_DOUBLED) + digits[1::2]).encode("ascii")
    return (sum(mixed) - 48 * len(mixed)) % 10 == 0


def parse_identity(text: str, path: Path | None = None) -> IdentityNumber:
    """Normalise and validate; raise InvalidIdentity with the first specific reason."""
    digits = identity_digits(text, path)
    return IdentityNumber(digits, _KIND_BY_PREFIX[digits[0]])


def identity_digits(text: str, path: Path | None = None) -> str:
    """parse_identity's digits alone (an import needs no IdentityNumber per row)."""
    digits = normalize_digits(text)
    if not digits:
        raise InvalidIdentity(IdProblem.EMPTY)
    # isdecimal, not isdigit: '²' is a digit to Python but not something int() accepts.
    if not (digits.isascii() and digits.isdecimal()):
        raise InvalidIdentity(IdProblem.NON_DIGITS, sum(c.isdecimal() for c in digits))
    if len(digits) != ID_LENGTH:
        raise InvalidIdentity(IdProblem.WRONG_LENGTH, len(digits))
    kind = _KIND_BY_PREFIX.get(digits[0])
    if kind is None:
        raise InvalidIdentity(IdProblem.BAD_PREFIX, len(digits))
    # A mistyped number is reported as such before any talk of the other path.
    # Border numbers have no published check-digit rule: length and prefix only.
    if kind is not IdKind.BORDER and not luhn_valid(digits):
        raise InvalidIdentity(IdProblem.BAD_CHECK_DIGIT, len(digits))
    if path is not None and _PATH_BY_KIND[kind] is not path:
        raise InvalidIdentity(IdProblem.WRONG_PATH, len(digits), _PATH_BY_KIND[kind])
    return digits


# Bulk checking (an import's column of numbers, bulk_identity_digits), in C-level passes.
_CELL_SEPARATOR = "\x00"  # not in _TRANSLATE: survives normalisation
_FIRST_HALVES = re.compile(r"(.{5}).{5}", re.DOTALL)
_LAST_HALVES = re.compile(r".{5}(.{5})", re.DOTALL)
# A number's prefix as an offset added to its Luhn sum (0..18): 1/2 need the check (valid sums
# 0 and 10), 3/4 do not (20..38 always pass), anything else never passes (40..58).
_PREFIX_OFFSET = bytes(0 if c in b"12" else 20 if c in b"34" else 40 for c in range(256))
_NEVER_VALID = "0" * ID_LENGTH
_PASSES = bytes(0 if v in (0, 10) or 20 <= v <= 38 else 1 for v in range(256))


@functools.cache
def _luhn_tables() -> tuple[dict[str, int], dict[str, int]]:
    """The Luhn sum (mod 10) of each possible first and last five digits of a 10-digit
    number: positions 0, 2, 4 doubled in the first half, 6 and 8 (1 and 3 of it) in the
    last."""
    doubled = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for value in range(100_000):
        text = f"{value:05d}"
        d = [ord(c) - 48 for c in text]
        first[text] = (doubled[d[0]] + d[1] + doubled[d[2]] + d[3] + doubled[d[4]]) % 10
        last[text] = (d[0] + doubled[d[1]] + d[2] + doubled[d[3]] + d[4]) % 10
    return first, last


def bulk_identity_digits(cells: Sequence[str]) -> tuple[list[str], list[int]]:
    """`identity_digits` for a column of cells at once: every cell normalised, and the
    positions of those not certainly valid, which the caller checks one by one with
    `identity_digits` (for its exact reason, or its digits). A valid cell is never among
    them; an invalid one always is.

    An import checks a million numbers: one translate, one split and a few maps over the
    whole column instead of a Python call per cell (0.4 µs a number instead of 1.1)."""
    parts = _CELL_SEPARATOR.join(cells).translate(_TRANSLATE).split(_CELL_SEPARATOR)
    if len(parts) != len(cells):  # a cell held the separator: one by one
        parts = [normalize_digits(c) for c in cells]
    # Cells that cannot be valid stand in as a number with prefix 0, which always fails.
    checked = parts
    lengths = list(map(len, parts))
    if lengths and not min(lengths) == max(lengths) == ID_LENGTH:
        checked = [
            p if n == ID_LENGTH else _NEVER_VALID for p, n in zip(parts, lengths, strict=True)
        ]
    joined = "".join(checked)
    if not (joined.isascii() and joined.isdecimal()):
        checked = [p if p.isascii() and p.isdecimal() else _NEVER_VALID for p in checked]
        joined = "".join(checked)
    first, last = _luhn_tables()
    sums = bytes(
        map(
            operator.add,
            map(first.__getitem__, _FIRST_HALVES.findall(joined)),
            map(last.__getitem__, _LAST_HALVES.findall(joined)),
        )
    )
    offsets = joined[0::ID_LENGTH].encode("ascii").translate(_PREFIX_OFFSET)
    failed = bytes(map(operator.add, sums, offsets)).translate(_PASSES)
    return parts, ([i for i, flag in enumerate(failed) if flag] if 1 in failed else [])


def mask_id(digits: str) -> str:
    """First digit and last two, e.g. 1*******78."""
    if len(digits) < 4:
        return "*" * len(digits)
    return digits[0] + "*" * (len(digits) - 3) + digits[-2:]


def id_hmac(key: bytes, digits: str) -> bytes:
    """Keyed hash under which a number is stored; a plain hash would be brute-forced.

    hmac.new rather than the one-shot hmac.digest: the one-shot releases the GIL for a few
    bytes of input, and on the event loop's thread winning it back behind the database and
    captcha threads cost 0.3-0.7 ms under load (bench/gil.py)."""
    return hmac.new(key, digits.encode("ascii"), hashlib.sha256).digest()


def id_hasher(key: bytes) -> Callable[[str], bytes]:
    """`id_hmac` under one key for many numbers (an import): the same HMAC-SHA256 (RFC 2104),
    with the key's two blocks hashed once and each number continuing from copies of those
    states. 0.7 µs a number instead of 1.7 (hmac.new sets the key up every time)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hash_digits(digits: str) -> bytes:
        keyed = inner.copy()
        keyed.update(digits.encode("ascii"))
        result = outer.copy()
        result.update(keyed.digest())
        return result.digest()

    return hash_digits
