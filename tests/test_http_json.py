"""`parse_json`: every unreadable request body is a ValueError (a 400), never a 500."""

from __future__ import annotations

import pytest

from bot.http import parse_json


def test_reads_json() -> None:
    assert parse_json(b'{"text": "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7"}') == {"text": "مرحبا"}
    assert parse_json(bytearray(b"[1, 2]")) == [1, 2]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"a": "\xff"}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError inside json.loads
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    ],
    ids=["empty", "truncated", "not-utf8", "deep-arrays", "deep-objects"],
)
def test_anything_unreadable_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_json(raw)
