"""Counted units in all six Arabic plural forms and both English ones."""

from __future__ import annotations

import pytest

from bot.i18n import days_text, hours_text, minutes_text, strip_isolates, translator_for

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


@pytest.mark.parametrize(("n", "expected"), ARABIC.items())
def test_arabic_forms(n: int, expected: tuple[str, str, str]) -> None:
    assert (days_text(n, AR), hours_text(n, AR), minutes_text(n, AR)) == expected


@pytest.mark.parametrize("n", ARABIC)
def test_english_forms(n: int) -> None:
    unit = "{} day" if n == 1 else "{} days"
    assert days_text(n, EN) == unit.format(n)
    assert hours_text(n, EN) == f"{n} hour{'' if n == 1 else 's'}"
    assert minutes_text(n, EN) == f"{n} minute{'' if n == 1 else 's'}"


def test_bare_numbers_carry_no_isolates() -> None:
    # ints stay bare so other modules can compare replies with plain text
    assert days_text(3, AR) == strip_isolates(days_text(3, AR))


def test_counted_unit_inside_a_sentence_is_isolated_as_a_whole() -> None:
    text = AR._("{count}", count=days_text(11, AR))
    assert text == "\u2068" + "11 يومًا" + "\u2069"
