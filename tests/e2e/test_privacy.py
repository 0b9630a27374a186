"""Identity numbers typed into Telegram never reach the logs or the database files."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.conftest import AR, CODE, BotUnderTest

CITIZEN = AR._("Citizen")
RESIDENT = AR._("Resident / visitor")

# As typed (some in Arabic-Indic or Persian digits), and as the ASCII the engine works with.
TYPED = {
    "1000000008": "1000000008",
    "١٠١٢٣٤٥٦٧٢": "1012345672",
    "۲۰۰۰۰۰۰۰۰۶": "2000000006",
    "1067890127": "1067890127",
    "3012345678": "3012345678",
}


async def test_raw_identity_numbers_are_not_logged_or_stored(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    person = bot.person()
    await person.say("/start")
    await person.lookup(CITIZEN, "1000000008")
    await person.tap(AR._("New lookup"))
    await person.lookup(CITIZEN, "١٠١٢٣٤٥٦٧٢")
    await person.tap(AR._("New lookup"))
    await person.tap(CITIZEN)
    [switch] = await person.say("۲۰۰۰۰۰۰۰۰۶")  # a resident's number on the citizen path
    await person.tap(switch.buttons[0])
    await person.say(CODE)
    await person.say("1067890127")  # straight from the result: not found
    await person.say(CODE)
    await person.say("3012345678")
    await bot.stop()

    records = caplog.records
    assert any(r.name.startswith("telegram") and r.levelno == logging.DEBUG for r in records), (
        "PTB's debug logs were not captured: the test would prove nothing"
    )
    logged = caplog.text + "\n".join(r.getMessage() for r in records)
    database = b"".join(
        path.read_bytes() for path in bot.settings.database.path.parent.glob("bot.sqlite3*")
    )
    for typed, ascii_digits in TYPED.items():
        for form in {typed, ascii_digits}:
            assert form not in logged
            assert form.encode() not in database
            assert form.encode("utf-16-le") not in database
    masked = "1*******08"
    assert masked in "".join(o.body or "" for o in bot.api.sent_to(person.chat_id))
