"""Every button the bot can show fits the strictest channel, in both languages.

WhatsApp: a reply button's title is at most 20 characters (Python's len(), emoji included),
titles in one message are unique, and more than 3 buttons become a list (rows of at most 24,
at most 10 rows), where each label is read alone, out of its visual row. Telegram: the data is
at most 64 bytes. The walk calls every function of bot/ that builds a ButtonSpec (a guard
below fails when a new one appears that the walk does not call) and drives the engine through
a whole lookup with reminders.
"""

from __future__ import annotations

import ast
import asyncio
import csv
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path as FsPath

import pytest

import bot
from bot.conversation import card, consent_texts, texts
from bot.conversation.buttons import MAX_DATA_BYTES, RemindMe, decode
from bot.conversation.events import Action, Button, Command, Text
from bot.conversation.replies import MAX_LABEL, Keyboard, fit_label
from bot.domain.audience import Audience
from bot.domain.identity import IdKind, IdProblem, InvalidIdentity, Path
from bot.domain.policy import Insurer, coverage_for
from bot.i18n import SUPPORTED, Translator, translator_for
from bot.limits import LimitKind, Refusal
from bot.reminders import admin_texts
from bot.reminders import texts as reminder_texts
from tests.conversation.harness import BUPA, CODE, TODAY, FakeConsent, Person, policy

MASKED = "1*******78"
LARGEST_ID = 10**18 - 1
WHATSAPP_REPLY_BUTTONS = 3
WHATSAPP_LIST_ROWS = 10
DATA_DIR = FsPath(bot.__file__).parent / "data"
# How the walk below names the modules that build buttons.
SHORT_NAMES = {
    "conversation.texts": "texts",
    "conversation.card": "card",
    "conversation.consent_texts": "consent_texts",
    "reminders.texts": "reminder_texts",
    "reminders.admin_texts": "admin_texts",
}


def insurers() -> list[Insurer]:
    with (DATA_DIR / "insurers.csv").open(encoding="utf-8") as handle:
        return [Insurer(**row) for row in csv.DictReader(handle)]


def keyboards(tr: Translator) -> Iterator[tuple[str, Keyboard]]:
    """Every keyboard the texts can build, named by where it comes from."""
    yield "texts.menu_buttons", texts.menu_buttons(tr)
    yield "texts.new_lookup_buttons", texts.new_lookup_buttons(tr)
    yield "texts.new_code_buttons", texts.new_code_buttons(tr)
    yield "texts.language_button", ((texts.language_button(tr),),)
    for path in Path:
        yield "texts.wrong_path", texts.wrong_path(tr, path).buttons
        problem = InvalidIdentity(IdProblem.BAD_CHECK_DIGIT)
        yield "texts.invalid_number", texts.invalid_number(tr, problem, path).buttons
    for audio in (False, True):
        yield "texts.wrong_code", texts.wrong_code(tr, 2, audio=audio).buttons
        yield "texts.code_format", texts.code_format(tr, audio=audio).buttons
    yield "texts.lookup_limit", texts.lookup_limit(tr, 10, 600).buttons
    for kind in LimitKind:
        yield "texts.refused", texts.refused(tr, Refusal(kind, 600, 3)).buttons
    yield "texts.after_result", texts.after_result(tr).buttons
    yield "texts.waiting_for_captcha", texts.waiting_for_captcha(tr).buttons
    coverages = coverage_for([policy("P", 10)], TODAY, 30)
    yield "card.result_card", card.result_card(tr, MASKED, IdKind.NATIONAL_ID, coverages).buttons
    yield "card.result_card", card.result_card(tr, MASKED, IdKind.BORDER, []).buttons
    remind = consent_texts.remind_button(tr, "0a1b2c3d")
    yield "consent_texts.remind_button", ((remind,),)
    expiry = TODAY + timedelta(days=40)
    yield (
        "consent_texts.subscribed",
        consent_texts.subscribed(tr, LARGEST_ID, MASKED, BUPA, expiry, (30, 7, 1), TODAY).buttons,
    )
    yield (
        "consent_texts.already_subscribed",
        consent_texts.already_subscribed(tr, LARGEST_ID, MASKED).buttons,
    )
    yield "consent_texts.limit_reached", consent_texts.limit_reached(tr, 5).buttons
    for count in (0, 1, 5):  # 5: the default most one chat can have
        stops = [(LARGEST_ID - i, f"{i}*******7{i}") for i in range(count)]
        lines = ["•"] * count
        yield "consent_texts.reminder_list", consent_texts.reminder_list(tr, lines, stops).buttons
    yield "consent_texts.stop_this_button", ((consent_texts.stop_this_button(LARGEST_ID, tr),),)
    yield "consent_texts.stop_all_button", ((consent_texts.stop_all_button(tr),),)
    message = reminder_texts.expiry_message(LARGEST_ID, MASKED, BUPA, expiry, TODAY, tr)
    yield "reminder_texts.expiry_message", message.buttons
    yield "reminder_texts.broadcast_message", reminder_texts.broadcast_message("x", tr).buttons
    yield "admin_texts._cancel_row", (admin_texts._cancel_row(tr),)
    yield "admin_texts.choose_channel", admin_texts.choose_channel(tr).buttons
    yield "admin_texts.choose_audience", admin_texts.choose_audience(tr, 3).buttons
    yield "admin_texts.choose_insurer", admin_texts.choose_insurer(tr, insurers()).buttons
    yield "admin_texts.choose_insurer", admin_texts.choose_insurer(tr, []).buttons
    audience = Audience.by_insurer("BUPA")
    yield "admin_texts.choose_content", admin_texts.choose_content(tr, audience, BUPA).buttons
    yield "admin_texts.confirm", admin_texts.confirm(tr, audience, BUPA, 3).buttons
    yield "admin_texts.starting", admin_texts.starting(tr, LARGEST_ID, 3).buttons
    yield "admin_texts.halt_buttons", admin_texts.halt_buttons(tr, LARGEST_ID)


def engine_keyboards(locale: str) -> list[Keyboard]:
    """Every keyboard of a whole conversation: menu, both paths, a wrong path, the codes
    (shown and spoken), a result with the reminder offer, subscribing, the list, stopping."""
    script: list[Action] = [
        Command("start"),
        Button("about"),
        Button("path:citizen"),
        Text("2000000006"),  # a resident's number on the citizen path: the switch button
        Button("switch:resident"),
        Text("12"),
        Button("new_code"),
        Button("audio_code"),
        Text("000000"),
        Text(CODE),
        Command("reminders"),
        Command("help"),
        Button("new_lookup"),
        Text("1000000008"),
        Text(CODE),
    ]

    async def run() -> list[Keyboard]:
        person = Person(
            {"1000000008": [policy("P", 40)], "2000000006": [policy("R", 40)]},
            language=locale,
            consent=FakeConsent(),
        )
        seen: list[Keyboard] = []
        for action in script:
            seen += [r.buttons for r in await person.send(action)]
        offers = [b.data for row in seen[-1] for b in row if isinstance(decode(b.data), RemindMe)]
        assert offers, "the last result offers reminders"
        then: list[Action] = [Button(offers[0]), Command("reminders"), Button("stop_all")]
        for action in then:
            seen += [r.buttons for r in await person.send(action)]
        seen += [r.buttons for r in await person.send(Command("language"))]
        return [kb for kb in seen if kb]

    return asyncio.run(run())


def problems(where: str, keyboard: Keyboard) -> list[str]:
    found = []
    flat = [b for row in keyboard for b in row]
    for b in flat:
        if len(b.label) > MAX_LABEL:
            found.append(f"{where}: label {b.label!r} has {len(b.label)} characters")
        if len(b.data.encode()) > MAX_DATA_BYTES:
            found.append(f"{where}: data {b.data!r} over {MAX_DATA_BYTES} bytes")
        if decode(b.data) is None:
            found.append(f"{where}: data {b.data!r} does not decode")
    labels = [b.label for b in flat]
    if len(set(labels)) != len(labels):
        found.append(f"{where}: duplicate labels {labels}")
    return found


@pytest.mark.parametrize("locale", SUPPORTED)
def test_every_keyboard_of_the_texts_fits(locale: str) -> None:
    tr = translator_for(locale)
    found = [p for where, kb in keyboards(tr) for p in problems(where, kb)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("locale", SUPPORTED)
def test_every_keyboard_of_a_conversation_fits(locale: str) -> None:
    boards = engine_keyboards(locale)
    found = [p for kb in boards for p in problems("engine", kb)]
    assert not found, "\n".join(found)
    # Reply buttons or a WhatsApp list: a person's keyboards never need more than one list.
    assert max(sum(len(row) for row in kb) for kb in boards) <= WHATSAPP_LIST_ROWS
    assert any(sum(len(row) for row in kb) > WHATSAPP_REPLY_BUTTONS for kb in boards)


@pytest.mark.parametrize("locale", SUPPORTED)
def test_a_persons_keyboards_fit_one_whatsapp_list(locale: str) -> None:
    """The admin's insurer choice is Telegram's alone; everything a person sees fits a list."""
    tr = translator_for(locale)
    for where, kb in keyboards(tr):
        if not where.startswith("admin_texts."):
            assert sum(len(row) for row in kb) <= WHATSAPP_LIST_ROWS, where


def test_long_names_from_data_are_cut_at_a_word() -> None:
    assert fit_label("Bupa Arabia") == "Bupa Arabia"
    assert fit_label("United Cooperative Assurance") == "United Cooperative…"
    assert fit_label("المجموعة الخليجية للتأمين") == "المجموعة الخليجية…"
    assert all(len(fit_label(i.name(loc))) <= MAX_LABEL for i in insurers() for loc in SUPPORTED)


def _button_builders() -> set[str]:
    """`module.function` of every function in bot/ whose body builds a ButtonSpec."""
    root = FsPath(bot.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            if any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "ButtonSpec"
                for call in ast.walk(node)
            ):
                found.add(f"{SHORT_NAMES.get(module, module)}.{node.name}")
    return found


def test_the_walk_calls_every_function_that_builds_a_button() -> None:
    walked = {where for where, _ in keyboards(translator_for("en"))}
    missing = _button_builders() - walked
    assert not missing, f"add these to keyboards(): {sorted(missing)}"
