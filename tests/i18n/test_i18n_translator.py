"""Translator: lookup, formatting, bidi isolation, locale choice, compiled catalogs."""

from __future__ import annotations

from datetime import date

import pytest
from babel.messages.catalog import Catalog

from bot.i18n import (
    N_,
    SUPPORTED,
    Translator,
    browser_locale,
    format_date,
    isolate,
    ltr,
    pick_locale,
    strip_isolates,
    translator_for,
)
from bot.i18n.bidi import for_rtl
from bot.i18n.catalog import _compile, keep_counts

AR = translator_for("ar")
EN = translator_for("en")
UNKNOWN = "A message nobody has translated: {code}"


def test_supported() -> None:
    assert SUPPORTED == ("ar", "en")


@pytest.mark.parametrize(
    ("asked", "got"),
    [
        ("ar", "ar"),
        ("en", "en"),
        ("en-US", "en"),
        ("AR_sa", "ar"),
        ("fr", "ar"),
        ("", "ar"),
        (None, "ar"),
    ],
)
def test_translator_for_normalises_and_defaults_to_arabic(asked: str | None, got: str) -> None:
    assert translator_for(asked).locale == got


def test_translator_is_loaded_once_per_language() -> None:
    assert translator_for("en-GB") is translator_for("en")
    assert translator_for("xx") is translator_for("ar")


@pytest.mark.parametrize(
    ("stored", "platform", "default", "expected"),
    [
        ("en", "ar", "ar", "en"),  # explicit choice wins over the app language
        ("ar", "en-US", "en", "ar"),
        (None, "ar-SA", "en", "ar"),  # then the app language
        (None, "en-GB", "ar", "en"),
        (None, "fr", "en", "en"),  # unsupported app language: default
        ("de", None, "en", "en"),  # unsupported stored value is ignored
        (None, None, "ar", "ar"),
        (None, None, "fr", "ar"),  # even a bad default ends in Arabic
        ("", "", "en", "en"),
    ],
)
def test_pick_locale_order(
    stored: str | None, platform: str | None, default: str, expected: str
) -> None:
    assert pick_locale(stored, platform, default) == expected


def test_n_is_identity() -> None:
    assert N_("Your insurance is active.") == "Your insurance is active."


def test_untranslated_message_falls_back_to_source_and_is_formatted() -> None:
    assert EN.gettext(UNKNOWN, code="X") == "A message nobody has translated: X"
    assert EN._(UNKNOWN, code="X") == EN.gettext(UNKNOWN, code="X")


def test_ngettext_passes_n_and_other_values() -> None:
    assert EN.ngettext("{n} file for {who}", "{n} files for {who}", 2, who="Sara") == (
        "2\u00a0files for Sara"
    )
    # a caller's own n= wins, e.g. a pre-formatted number
    assert EN.ngettext("{n} day", "{n} days", 1000, n="1,000") == "1,000\u00a0days"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # A count and the word it counts: one unbreakable phrase, in both scripts.
        ("{n} tries left", "{n}\u00a0tries left"),
        ("بعد {n} يوم، في {date}", "بعد {n}\u00a0يوم، في {date}"),
        ("10 digits starting with 1.", "10\u00a0digits starting with 1."),
        ("آخر 24 ساعة", "آخر 24\u00a0ساعة"),
        # Not before a digit, a bracket or a placeholder, and not after other placeholders.
        ("٠=0 ١=1 ٣=3", "٠=0 ١=1 ٣=3"),
        ("1 (citizens), 2 (residents)", "1 (citizens), 2 (residents)"),
        ("{count} items, {n} {unit}", "{count} items, {n} {unit}"),
        ("in {wait}.", "in {wait}."),
    ],
)
def test_counts_keep_their_word(template: str, expected: str) -> None:
    assert keep_counts(template) == expected


def test_a_whole_message_keeps_its_counts_and_its_other_spaces() -> None:
    text = AR.ngettext(
        "You sent {n} digit, but the number has 10 digits.",
        "You sent {n} digits, but the number has 10 digits.",
        9,
    )
    assert text == "أرسلت 9\u00a0أرقام، بينما يتكون الرقم من 10\u00a0أرقام."
    assert EN._("Send your national ID number: 10 digits starting with 1.") == (
        "Send your national ID number: 10\u00a0digits starting with 1."
    )


def test_english_values_are_not_isolated() -> None:
    assert EN._(UNKNOWN, code="1*******78") == "A message nobody has translated: 1*******78"


def test_arabic_isolates_ids_and_codes_left_to_right() -> None:
    assert AR._(UNKNOWN, code="1*******78").endswith(ltr("1*******78"))
    assert AR._(UNKNOWN, code="VIP").endswith(ltr("VIP"))
    assert AR._(UNKNOWN, code="****").endswith(ltr("****"))


def test_arabic_dates_get_first_strong_isolate_not_ltr() -> None:
    # LTR would lay "15 جمادى الآخرة 1448 هـ" out in the wrong order
    shown = format_date(date(2026, 11, 25), "ar")
    assert AR._(UNKNOWN, code=shown).endswith(isolate(shown))


def test_arabic_words_and_ints_stay_bare() -> None:
    assert AR._(UNKNOWN, code="بوبا العربية").endswith(": بوبا العربية")
    assert AR._(UNKNOWN, code=42).endswith(": 42")


def test_number_format_specs_work_in_arabic() -> None:
    assert AR._("Limit {amount:,} SAR", amount=500000) == "Limit 500,000 SAR"
    assert AR._("Deductible {rate:.0%}", rate=0.2) == "Deductible 20%"


def test_values_are_not_isolated_twice() -> None:
    assert for_rtl(ltr("123")) == ltr("123")
    assert strip_isolates(AR._(UNKNOWN, code=ltr("123"))).endswith(": 123")


def test_empty_value_stays_empty() -> None:
    assert AR._(UNKNOWN, code="").endswith(": ")


def _catalog(*messages: tuple[object, object, list[str]]) -> Catalog:
    catalog = Catalog(locale="ar", fuzzy=False)
    for msgid, string, flags in messages:
        catalog.add(msgid, string, flags=flags)  # type: ignore[arg-type]
    return catalog


def test_fuzzy_and_half_translated_entries_are_not_used() -> None:
    compiled = _compile(
        _catalog(
            ("Hello", "مرحبًا", []),
            ("Bye", "مع السلامة", ["fuzzy"]),
            (("{n} cat", "{n} cats"), ("{n} قط", "", "", "", "", ""), []),
        )
    )
    assert compiled.gettext("Hello") == "مرحبًا"
    assert compiled.gettext("Bye") == "Bye"
    assert compiled.ngettext("{n} cat", "{n} cats", 1) == "{n} cat"
    assert compiled.ngettext("{n} cat", "{n} cats", 0) == "{n} cats"


def test_broken_translation_placeholder_falls_back_to_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tr = Translator("ar")
    compiled = _compile(_catalog(("Hi {name}", "مرحبًا {nme}", [])))
    monkeypatch.setattr(tr, "_translations", compiled)
    assert tr._("Hi {name}", name="سارة") == "Hi سارة"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ar-SA,ar;q=0.9,en;q=0.8", "ar"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "en"),  # the first language we speak, in their order
        ("en;q=0.5, ar-SA", "ar"),  # by weight, not by position
        ("ar;q=0, en", "en"),  # q=0: not acceptable
        ("fr, de;q=0.5", None),  # none we speak: the default applies
        ("*", None),
        ("en;q=bad, ar;q=0.3", "ar"),
        ("", None),
        (None, None),
    ],
)
def test_browser_locale_follows_accept_language(header: str | None, expected: str | None) -> None:
    assert browser_locale(header) == expected
