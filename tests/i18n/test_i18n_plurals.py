"""Counted units in all six Arabic plural forms and both English ones."""

from __future__ import annotations

import pytest

from bot.i18n import (
    NBSP,
    Translator,
    days_text,
    hours_text,
    minutes_text,
    strip_isolates,
    translator_for,
)

AR = translator_for("ar")
EN = translator_for("en")

# n: (days, hours, minutes)
ARABIC = {
    0: ("0 يوم", "0 ساعة", "0 دقيقة"),
    1: ("يوم واحد", "ساعة واحدة", "دقيقة واحدة"),
    2: ("يومان", "ساعتان", "دقيقتان"),
    3: ("3 أيام", "3 ساعات", "3 دقائق"),
    10: ("10 أيام", "10 ساعات", "10 دقائق"),
    11: ("11 يومًا", "11 ساعة", "11 دقيقة"),
    99: ("99 يومًا", "99 ساعة", "99 دقيقة"),
    100: ("100 يوم", "100 ساعة", "100 دقيقة"),
    101: ("101 يوم", "101 ساعة", "101 دقيقة"),
    102: ("102 يوم", "102 ساعة", "102 دقيقة"),
    103: ("103 أيام", "103 ساعات", "103 دقائق"),
    111: ("111 يومًا", "111 ساعة", "111 دقيقة"),
}


def nb(text: str) -> str:
    """The expected phrase with its spaces as NO-BREAK SPACEs: a count and its unit are one
    unbreakable phrase, so a narrow screen never ends a line with «75» and starts the next
    with «يومًا»."""
    return text.replace(" ", NBSP)


@pytest.mark.parametrize(("n", "expected"), ARABIC.items())
def test_arabic_forms(n: int, expected: tuple[str, str, str]) -> None:
    got = (days_text(n, AR), hours_text(n, AR), minutes_text(n, AR))
    assert got == tuple(nb(form) for form in expected)


@pytest.mark.parametrize("n", ARABIC)
def test_english_forms(n: int) -> None:
    unit = "{} day" if n == 1 else "{} days"
    assert days_text(n, EN) == nb(unit.format(n))
    assert hours_text(n, EN) == nb(f"{n} hour{'' if n == 1 else 's'}")
    assert minutes_text(n, EN) == nb(f"{n} minute{'' if n == 1 else 's'}")


@pytest.mark.parametrize("tr", [AR, EN])
@pytest.mark.parametrize("n", range(0, 250))
def test_no_count_has_a_breakable_space(tr: Translator, n: int) -> None:
    for text in (days_text(n, tr), hours_text(n, tr), minutes_text(n, tr)):
        assert " " not in text and not any(c.isspace() and c != NBSP for c in text)


def test_bare_numbers_carry_no_isolates() -> None:
    # ints stay bare so other modules can compare replies with plain text
    assert days_text(3, AR) == strip_isolates(days_text(3, AR))


def test_counted_unit_inside_a_sentence_is_isolated_as_a_whole() -> None:
    text = AR._("{count}", count=days_text(11, AR))
    assert text == "\u2068" + "11\u00a0يومًا" + "\u2069"


def test_a_count_in_words_stays_plain_arabic() -> None:
    # «يوم واحد» has no digit: a no-break space inside it needs no isolate, as a space would not.
    assert AR._("{count}", count=days_text(1, AR)) == "يوم\u00a0واحد"
