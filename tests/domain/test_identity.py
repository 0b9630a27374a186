from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.identity import (
    IdKind,
    IdProblem,
    InvalidIdentity,
    Path,
    bulk_identity_digits,
    id_hmac,
    identity_digits,
    luhn_valid,
    mask_id,
    normalize_digits,
    parse_identity,
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1000000008", "1000000008"),
        ("١٠٠٠٠٠٠٠٠٨", "1000000008"),  # Arabic-Indic
        ("۱۰۰۰۰۰۰۰۰۸", "1000000008"),  # Extended Arabic-Indic (Persian/Urdu keyboards)
        ("1٠0۰000008", "1000000008"),  # mixed scripts
        (" 1000 000 008 ", "1000000008"),
        ("100-000-0008", "1000000008"),
        ("\u200f1000000008\u200e", "1000000008"),
        ("\u202b1000000008\u202c", "1000000008"),
        ("\u20661000000008\u2069\u061c", "1000000008"),
        ("1000\u00a0000008", "1000000008"),
    ],
)
def test_normalisation_of_typed_and_pasted_numbers(typed: str, expected: str) -> None:
    assert normalize_digits(typed) == expected
    assert parse_identity(typed).digits == expected


def test_luhn_examples_from_domain() -> None:
    assert luhn_valid("1000000008")
    assert luhn_valid("2000000006")
    assert not luhn_valid("1000000009")


@pytest.mark.parametrize(
    ("typed", "problem", "given_digits"),
    [
        ("", IdProblem.EMPTY, 0),
        ("  \u200f - ", IdProblem.EMPTY, 0),
        ("10000abc08", IdProblem.NON_DIGITS, 7),
        ("1²00000008", IdProblem.NON_DIGITS, 9),  # isdigit() is true for ², int() fails
        ("123456789", IdProblem.WRONG_LENGTH, 9),
        ("10000000081", IdProblem.WRONG_LENGTH, 11),
        ("5000000003", IdProblem.BAD_PREFIX, 10),
        ("0000000000", IdProblem.BAD_PREFIX, 10),
        ("1000000009", IdProblem.BAD_CHECK_DIGIT, 10),
        ("2000000007", IdProblem.BAD_CHECK_DIGIT, 10),
    ],
)
def test_every_validation_reason(typed: str, problem: IdProblem, given_digits: int) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        parse_identity(typed)
    assert caught.value.problem is problem
    assert caught.value.digits_given == given_digits


def test_kind_and_path() -> None:
    assert parse_identity("1000000008").kind is IdKind.NATIONAL_ID
    assert parse_identity("2000000006").kind is IdKind.IQAMA
    # Border numbers: length and prefix only, no check digit.
    assert parse_identity("3000000000").kind is IdKind.BORDER
    assert parse_identity("4123456789").kind is IdKind.BORDER
    assert parse_identity("3123456789", Path.RESIDENT).path is Path.RESIDENT


@pytest.mark.parametrize(
    ("typed", "path", "belongs"),
    [
        ("2000000006", Path.CITIZEN, Path.RESIDENT),
        ("3000000000", Path.CITIZEN, Path.RESIDENT),
        ("1000000008", Path.RESIDENT, Path.CITIZEN),
    ],
)
def test_number_of_the_other_path(typed: str, path: Path, belongs: Path) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        parse_identity(typed, path)
    assert caught.value.problem is IdProblem.WRONG_PATH
    assert caught.value.belongs_to is belongs


def test_mistyped_number_is_a_check_digit_problem_even_on_the_other_path() -> None:
    with pytest.raises(InvalidIdentity) as caught:
        parse_identity("2000000007", Path.CITIZEN)
    assert caught.value.problem is IdProblem.BAD_CHECK_DIGIT


def test_masking() -> None:
    assert mask_id("1234567878") == "1*******78"
    identity = parse_identity("1000000008")
    assert identity.masked == "1*******08"
    assert "1000000008" not in repr(identity) and "1000000008" not in str(identity)


def test_hmac_is_keyed() -> None:
    assert id_hmac(b"k1", "1000000008") != id_hmac(b"k2", "1000000008")
    assert id_hmac(b"k1", "1000000008") == id_hmac(b"k1", "1000000008")
    assert len(id_hmac(b"k1", "1000000008")) == 32


@given(st.text(max_size=40))
def test_any_text_either_parses_or_gives_a_reason(text: str) -> None:
    try:
        identity = parse_identity(text)
    except InvalidIdentity as exc:
        assert isinstance(exc.problem, IdProblem)
    else:
        assert len(identity.digits) == 10 and identity.digits.isascii()
        assert identity.digits.isdecimal()


def _valid_number(body: str) -> str:
    return next(body + str(c) for c in range(10) if luhn_valid(body + str(c)))


# Cells as an import sees them: valid numbers of each kind, the same mistyped, in other
# scripts, with pasted marks, too short or long, with letters, empty, and any text at all.
_NUMBER_CELLS = st.one_of(
    st.builds(_valid_number, st.from_regex(r"[1-4][0-9]{8}", fullmatch=True)),
    st.from_regex(r"[0-9]{10}", fullmatch=True),
    st.from_regex(r"[٠-٩]{10}", fullmatch=True),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.from_regex(r" ?[1-4][0-9]{3}[- \u200f]?[0-9]{6}x?", fullmatch=True),
    st.text(max_size=14),
)


@given(st.lists(_NUMBER_CELLS, max_size=30))
def test_bulk_check_agrees_with_one_by_one(cells: list[str]) -> None:
    digits, suspects = bulk_identity_digits(cells)
    assert len(digits) == len(cells)
    for position, cell in enumerate(cells):
        try:
            expected = identity_digits(cell)
        except InvalidIdentity:
            assert position in suspects  # never passed as valid
        else:
            # A valid number is never a suspect, and its digits are the same.
            assert position not in suspects, cell
            assert digits[position] == expected


def test_bulk_check_of_a_large_column() -> None:
    column = [_valid_number(f"{1 + i % 2}{i:08d}") for i in range(20_000)]
    column[7] = column[7][:-1] + str((int(column[7][-1]) + 1) % 10)  # a mistyped check digit
    column[9_000] = "3" + column[9_000][1:]  # a border number: no check digit to fail
    column[15_000] = "١٢٣"
    digits, suspects = bulk_identity_digits(column)
    assert suspects == [7, 15_000]
    assert digits[9_000] == column[9_000] and digits[15_000] == "123"
