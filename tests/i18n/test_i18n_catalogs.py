"""The .po files are complete, consistent, and cover every message marked in bot/.

Fails when code adds a message without running ``python -m bot.i18n.extract`` or
without an Arabic translation.
"""

from __future__ import annotations

from string import Formatter

import pytest
from babel.messages.catalog import Catalog, Message

from bot.i18n.extract import AR_PLURAL_FORMS, _read, extract_template, merge, po_path

NPLURALS = {"ar": 6, "en": 2}


def _load(locale: str) -> Catalog:
    catalog = _read(po_path(locale), locale)
    assert catalog is not None, f"missing {po_path(locale)}"
    return catalog


CATALOGS = {locale: _load(locale) for locale in NPLURALS}


def _messages(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def _key(message: Message) -> tuple[str | None, str]:
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return message.context, msgid


def _forms(message: Message) -> list[str]:
    string = message.string or ""
    return [string] if isinstance(string, str) else list(string)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(text) if name is not None}


def test_arabic_plural_header_is_the_standard_one() -> None:
    assert CATALOGS["ar"].plural_forms == AR_PLURAL_FORMS
    assert AR_PLURAL_FORMS == (
        "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : "
        "n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5);"
    )
    assert CATALOGS["en"].num_plurals == 2


def test_both_catalogs_hold_the_same_messages() -> None:
    ar = {_key(m) for m in _messages(CATALOGS["ar"])}
    en = {_key(m) for m in _messages(CATALOGS["en"])}
    assert ar == en


@pytest.mark.parametrize("locale", NPLURALS)
def test_every_entry_is_translated_and_not_fuzzy(locale: str) -> None:
    for message in _messages(CATALOGS[locale]):
        assert not message.fuzzy, f"{locale}: fuzzy entry {message.id!r}"
        forms = _forms(message)
        assert forms and all(forms), f"{locale}: untranslated {message.id!r}"
        if message.pluralizable:
            assert len(forms) == NPLURALS[locale], f"{locale}: {message.id!r} plural forms"


def test_english_is_the_source_text() -> None:
    for message in _messages(CATALOGS["en"]):
        expected = [message.id] if isinstance(message.id, str) else list(message.id)
        assert _forms(message) == expected


@pytest.mark.parametrize("locale", NPLURALS)
def test_placeholders_match(locale: str) -> None:
    for message in _messages(CATALOGS[locale]):
        if isinstance(message.id, str):
            assert isinstance(message.string, str)
            assert _fields(message.string) == _fields(message.id), message.id
            continue
        source = _fields(message.id[0]) | _fields(message.id[1])
        for form in _forms(message):
            # "يوم واحد" / "يومان" may leave the count out; nothing else may go missing
            assert _fields(form) <= source, (message.id, form)
            assert source - {"n"} <= _fields(form), (message.id, form)


def test_every_marked_message_in_bot_is_in_the_catalogs() -> None:
    marked = {_key(m): m.locations for m in _messages(extract_template())}
    assert marked, "extraction found nothing: is babel.cfg in the repo root?"
    for locale, catalog in CATALOGS.items():
        known = {_key(m) for m in _messages(catalog)}
        missing = {k: v for k, v in marked.items() if k not in known}
        assert not missing, f"{locale}: run `python -m bot.i18n.extract` and translate: {missing}"


def test_plural_entries_stay_plural() -> None:
    template = {_key(m): m.pluralizable for m in _messages(extract_template())}
    for catalog in CATALOGS.values():
        for message in _messages(catalog):
            assert template.get(_key(message), message.pluralizable) == message.pluralizable


def test_merge_keeps_translations_and_fixes_babels_arabic_plural_rule() -> None:
    template = Catalog(fuzzy=False)
    template.add("Hello", locations=[("bot/x.py", 1)])
    template.add(("{n} day", "{n} days"), locations=[("bot/x.py", 2)])
    template.add("New", locations=[("bot/x.py", 3)])
    existing = Catalog(locale="ar", fuzzy=False)  # carries Babel's swapped rule
    existing.add("Hello", "مرحبًا")
    existing.add("Gone", "قديم")

    ar = merge(template, "ar", existing)
    assert ar.plural_forms == AR_PLURAL_FORMS
    assert ar.get("Hello").string == "مرحبًا"  # type: ignore[union-attr]
    assert ar.get("New").string == ""  # type: ignore[union-attr]
    assert ar.get("{n} day").string == ("",) * 6  # type: ignore[union-attr]
    assert ar.get("Gone") is None and not ar.obsolete

    en = merge(template, "en", None)
    assert en.get("New").string == "New"  # type: ignore[union-attr]
    assert en.get("{n} day").string == ("{n} day", "{n} days")  # type: ignore[union-attr]
