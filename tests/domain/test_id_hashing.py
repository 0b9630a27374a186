"""The import's fast paths agree with the definitions the lookups use."""

from __future__ import annotations

import random

import pytest

from bot.domain.identity import id_hasher, id_hmac, luhn_valid


@pytest.mark.parametrize("key", [b"", b"k", b"x" * 63, b"x" * 64, b"x" * 65, b"\xff" * 200])
def test_id_hasher_is_id_hmac(key: bytes) -> None:
    hasher = id_hasher(key)
    for digits in ("1000000008", "2000000006", "3012345678", "1"):
        assert hasher(digits) == id_hmac(key, digits)


def test_luhn_matches_the_textbook_rule() -> None:
    def textbook(digits: str) -> bool:
        total = 0
        for index, digit in enumerate(map(int, digits)):
            if index % 2 == 0:
                digit *= 2
                if digit > 9:
                    digit -= 9
            total += digit
        return total % 10 == 0

    rng = random.Random(13)
    numbers = [f"{rng.randrange(10**10):010d}" for _ in range(20_000)] + ["0" * 10, "9" * 10]
    assert [luhn_valid(n) for n in numbers] == [textbook(n) for n in numbers]
    assert sum(map(luhn_valid, numbers)) > 1_000  # both answers occur
