"""The button-data codec: every kind round-trips, fits 64 bytes, and keeps the old strings."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.conversation import buttons
from bot.conversation.buttons import (
    MAX_DATA_BYTES,
    About,
    AudioCode,
    BroadcastAudience,
    BroadcastCancel,
    BroadcastChannel,
    BroadcastHalt,
    BroadcastInsurers,
    BroadcastSend,
    BroadcastTemplate,
    ButtonData,
    ChoosePath,
    NewCode,
    NewLookup,
    RemindMe,
    SetLanguage,
    StopAll,
    StopOne,
    SwitchPath,
    decode,
    encode,
)
from bot.conversation.engine import EVERY_STEP, FLOW, REMINDERS
from bot.domain.identity import Path

LARGEST_ID = 10**18 - 1  # 18 digits, what the store's 64-bit ids can reach

# The wire format messages already delivered carry (a reminder's stop button from yesterday,
# a broadcast's, a card's): these strings must keep meaning the same thing.
WIRE = {
    "path:citizen": ChoosePath(Path.CITIZEN),
    "path:resident": ChoosePath(Path.RESIDENT),
    "switch:citizen": SwitchPath(Path.CITIZEN),
    "switch:resident": SwitchPath(Path.RESIDENT),
    "lang:ar": SetLanguage("ar"),
    "lang:en": SetLanguage("en"),
    "about": About(),
    "new_lookup": NewLookup(),
    "new_code": NewCode(),
    "audio_code": AudioCode(),
    "remind:0a1b2c3d": RemindMe("0a1b2c3d"),
    "stop_sub:42": StopOne(42),
    "stop_all": StopAll(),
    "bc:ch:whatsapp": BroadcastChannel("whatsapp"),
    "bc:ch:all": BroadcastChannel("all"),
    "bc:a:all": BroadcastAudience("all"),
    "bc:a:expiring:30": BroadcastAudience("expiring:30"),
    "bc:a:insurer:BUPA": BroadcastAudience("insurer:BUPA"),
    "bc:insurers": BroadcastInsurers(),
    "bc:template": BroadcastTemplate(),
    "bc:send": BroadcastSend(),
    "bc:cancel": BroadcastCancel(),
    "bc:halt:7": BroadcastHalt(7),
}


@pytest.mark.parametrize(("data", "value"), WIRE.items())
def test_the_wire_format_stays(data: str, value: ButtonData) -> None:
    assert decode(data) == value
    assert encode(value) == data


def test_every_kind_has_a_wire_example() -> None:
    kinds = set(typing.get_args(buttons.ButtonData))
    assert {type(v) for v in WIRE.values()} == kinds


@pytest.mark.parametrize(
    "value", [StopOne(LARGEST_ID), BroadcastHalt(LARGEST_ID), RemindMe("f" * 8)]
)
def test_the_largest_values_fit_telegram(value: ButtonData) -> None:
    data = encode(value)
    assert len(data.encode()) <= MAX_DATA_BYTES
    assert decode(data) == value


def test_too_long_data_is_refused_when_sent() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        encode(BroadcastAudience("insurer:" + "X" * 60))


@pytest.mark.parametrize(
    "data",
    [
        "",
        "path:",
        "path:visitor",
        "switch:x",
        "lang:xx",
        "lang:",
        "stop_sub:",
        "stop_sub:-1",
        "stop_sub:1e3",
        "stop_sub:٣",
        "stop_sub:" + "9" * 19,
        "bc:halt:x",
        "bc:halt:",
        "bc:unknown",
        "stop",
        "x",
        "new_code ",
        "ABOUT",
    ],
)
def test_data_nobody_of_ours_sent_decodes_to_nothing(data: str) -> None:
    assert decode(data) is None


@given(st.text(max_size=80))
def test_decode_never_raises_and_what_it_reads_it_can_write(data: str) -> None:
    value = decode(data)
    if value is not None and len(data.encode()) <= MAX_DATA_BYTES:
        assert encode(value) == data


def test_every_button_the_engine_reads_has_a_row_and_every_row_a_real_kind() -> None:
    """The table names only real event kinds; the conversation's buttons all have a handler
    (the broadcast dialogue's belong to bot/reminders/admin.py)."""
    rows = [*FLOW.values(), EVERY_STEP, REMINDERS]
    keys = {k for row in rows for k in row}
    conversation_buttons = set(typing.get_args(ButtonData)) - set(
        typing.get_args(buttons.BroadcastButton)
    )
    assert conversation_buttons <= keys
    for key in keys:
        assert isinstance(key, type) or (isinstance(key, str) and key.startswith("/")), key
