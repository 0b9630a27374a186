"""Hijri (Umm al-Qura) + Gregorian dates, and parsing Hijri dates from imports."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hijridate import Gregorian
from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import NBSP, format_date, format_gregorian, format_hijri, parse_hijri_iso

FIRST, LAST = date(1924, 8, 1), date(2077, 11, 16)  # 1 Muharram 1343 .. 30 Dhu al-Hijjah 1500


# Each part of a date is held together by NO-BREAK SPACEs; the one breakable space is before
# the bracket. `_` spells U+00A0 in the expected strings below.
def nb(text: str) -> str:
    return text.replace("_", NBSP)


def test_known_pair_first_of_ramadan_1445() -> None:
    d = date(2024, 3, 11)
    assert format_date(d, "ar") == nb("1_رمضان_1445_هـ (11_مارس_2024)")
    assert format_date(d, "en") == nb("1_Ramadan_1445_AH (11_March_2024)")


def test_date_agrees_with_hijridate() -> None:
    d = date(2026, 11, 25)
    hijri = Gregorian(2026, 11, 25).to_hijri()
    assert (hijri.year, hijri.month, hijri.day) == (1448, 6, 15)
    assert hijri.month_name("ar") == "جمادى الآخرة"
    assert format_hijri(d, "ar") == nb("15_جمادى_الآخرة_1448_هـ")
    assert format_date(d, "ar") == nb("15_جمادى_الآخرة_1448_هـ (25_نوفمبر_2026)")
    assert format_date(d, "en") == nb("15_Jumada_al-Akhirah_1448_AH (25_November_2026)")


def test_parts_separately() -> None:
    d = date(2026, 11, 25)
    assert format_gregorian(d, "ar") == nb("25_نوفمبر_2026")
    assert format_gregorian(d, "en") == nb("25_November_2026")
    assert format_hijri(d, "en") == nb("15_Jumada_al-Akhirah_1448_AH")


def test_locale_codes_are_forgiving() -> None:
    d = date(2024, 3, 11)
    assert format_date(d, "en-US") == format_date(d, "en")
    assert format_date(d, "ar_SA") == format_date(d, "ar")


@pytest.mark.parametrize("d", [FIRST - timedelta(days=1), LAST + timedelta(days=1), date(1, 1, 1)])
def test_out_of_hijri_range_falls_back_to_gregorian(d: date) -> None:
    with pytest.raises(OverflowError):
        format_hijri(d, "ar")
    assert format_date(d, "ar") == format_gregorian(d, "ar")
    assert format_date(d, "en") == format_gregorian(d, "en")


def test_range_edges_still_have_hijri() -> None:
    assert format_hijri(FIRST, "en") == nb("1_Muharram_1343_AH")
    assert format_hijri(LAST, "en") == nb("30_Dhu_al-Hijjah_1500_AH")


@given(st.dates(min_value=FIRST, max_value=LAST), st.sampled_from(["ar", "en"]))
def test_digits_are_western_without_direction_marks(d: date, locale: str) -> None:
    text = format_date(d, locale)
    assert re.search(r"[\u0660-\u0669\u06f0-\u06f9\u200e\u200f\u061c]", text) is None
    assert text.count("(") == 1


@given(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)), st.sampled_from(["ar", "en"])
)
def test_a_date_breaks_only_before_its_bracket(d: date, locale: str) -> None:
    text = format_date(d, locale)
    breakable = [i for i, char in enumerate(text) if char.isspace() and char != NBSP]
    assert breakable == ([text.index(" (")] if "(" in text else [])


@pytest.mark.parametrize(
    ("ymd", "expected"),
    [
        ((1445, 9, 1), date(2024, 3, 11)),
        ((1445, 9, 30), date(2024, 4, 9)),  # Ramadan 1445 had 30 days
        ((1343, 1, 1), FIRST),
        ((1500, 12, 30), LAST),
    ],
)
def test_parse_hijri_iso(ymd: tuple[int, int, int], expected: date) -> None:
    parsed = parse_hijri_iso(*ymd)
    assert parsed == expected
    assert type(parsed) is date


@pytest.mark.parametrize(
    "ymd",
    [
        (1445, 13, 1),
        (1445, 0, 1),
        (1445, 1, 0),
        (1445, 1, 30),  # Muharram 1445 had 29 days
        (1445, 10, 30),  # so did Shawwal
        (1445, 1, 31),
        (1342, 12, 29),
        (1501, 1, 1),
    ],
)
def test_parse_hijri_iso_rejects_impossible_dates(ymd: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        parse_hijri_iso(*ymd)


@given(st.dates(min_value=FIRST, max_value=LAST))
def test_parse_hijri_iso_round_trips(d: date) -> None:
    hijri = Gregorian(d.year, d.month, d.day).to_hijri()
    assert parse_hijri_iso(hijri.year, hijri.month, hijri.day) == d
