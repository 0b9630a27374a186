"""Validation of one CSV row of policies: a staged row ready for the store, or the reasons not.

Operator-facing (English) reasons: the CSV tools are for operators at a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from bot.domain.identity import (
    IdProblem,
    InvalidIdentity,
    ascii_digits,
    bulk_identity_digits,
    id_hasher,
    identity_digits,
    mask_id,
)
from bot.domain.policy import BeneficiaryType, Insurer, PolicyStatus
from bot.i18n.dates import parse_hijri_iso
from bot.store.import_write import StagedRow

REQUIRED_COLUMNS = (
    "id_number",
    "insurer",
    "policy_number",
    "policy_class",
    "beneficiary_type",
    "start_date",
    "expiry_date",
)
OPTIONAL_COLUMNS = (
    "member_name",
    "network",
    "deductible_rate",
    "max_limit",
    "beneficiary_number",
    "sponsor_name",
    "status",
)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

HIJRI_YEARS = range(1343, 1501)  # the Umm al-Qura range hijridate covers
MAX_TEXT = 200

_ID_REASONS = {
    IdProblem.EMPTY: "is empty",
    IdProblem.NON_DIGITS: "contains characters other than digits",
    IdProblem.WRONG_LENGTH: "has {n} digits; identity numbers have 10",
    IdProblem.BAD_PREFIX: "must start with 1 (citizen), 2 (resident) or 3/4 (border number)",
    IdProblem.BAD_CHECK_DIGIT: "fails the check digit (mistyped?)",
}
_BENEFICIARY = {
    "principal": BeneficiaryType.PRINCIPAL,
    "رئيسي": BeneficiaryType.PRINCIPAL,
    "dependent": BeneficiaryType.DEPENDENT,
    "تابع": BeneficiaryType.DEPENDENT,
}
_STATUS = {
    "": PolicyStatus.ACTIVE,
    "active": PolicyStatus.ACTIVE,
    "ساري": PolicyStatus.ACTIVE,
    "cancelled": PolicyStatus.CANCELLED,
    "canceled": PolicyStatus.CANCELLED,
    "ملغي": PolicyStatus.CANCELLED,
    "suspended": PolicyStatus.SUSPENDED,
    "موقوف": PolicyStatus.SUSPENDED,
}
_DATE = re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$")
# Day first: ambiguous with month first (03/04/2026), so only when the operator says so.
_DAY_FIRST = re.compile(r"^([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})$")
_DIGIT_RUN = re.compile(r"[0-9]{8,}")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_GROUPED = re.compile(r"^[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$")  # 1,500,000.50


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.reason}"


class InsurerIndex:
    """Finds an insurer by code, Arabic name or English name, ignoring case and spacing."""

    def __init__(self, insurers: list[Insurer]) -> None:
        self._by_key: dict[str, str] = {}
        for insurer in insurers:
            for name in (insurer.code, insurer.name_ar, insurer.name_en):
                self._by_key[_fold(name)] = insurer.code

    def code_for(self, text: str) -> str | None:
        return self._by_key.get(_fold(text))


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def shown(text: str, limit: int = 60) -> str:
    """A cell or line as an operator may see it in a message: stripped, shortened, and with
    any long run of digits masked, since it may be an identity number in the wrong column."""
    value = " ".join(text.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return _DIGIT_RUN.sub(lambda m: mask_id(m.group()), ascii_digits(value))


def parse_csv_date(text: str, *, day_first: bool = False) -> date:
    """YYYY-MM-DD, or with `day_first` also DD/MM/YYYY (separator `/`, `.` or `-`); a year in
    1343..1500 is an Umm al-Qura Hijri date (Saudi HR systems)."""
    value = ascii_digits(text.strip())
    if match := _DATE.match(value):
        year, month, day = (int(g) for g in match.groups())
    elif day_first and (match := _DAY_FIRST.match(value)):
        day, month, year = (int(match.group(g)) for g in (1, 3, 4))
    elif day_first:
        raise ValueError(f"{shown(text)} is not a date as DD/MM/YYYY or YYYY-MM-DD")
    elif _DAY_FIRST.match(value):
        raise ValueError(
            f"{shown(text)} is not a date as YYYY-MM-DD "
            "(for day/month/year dates, pass --date-format DD/MM/YYYY)"
        )
    else:
        raise ValueError(f"{shown(text)} is not a date as YYYY-MM-DD")
    if year in HIJRI_YEARS:
        try:
            return parse_hijri_iso(year, month, day)
        except ValueError:
            raise ValueError(f"{shown(text)} is not a valid Hijri (Umm al-Qura) date") from None
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{shown(text)} is not a valid date") from None


# Converters: raw cell text in, stored value out, ValueError(reason) for a bad cell.
# Dates, rates and amounts repeat across a file, so their parses are cached.


def _required_text(text: str) -> str:
    value = text.strip()
    if not value:
        raise ValueError("is required")
    if len(value) > MAX_TEXT:
        raise ValueError(f"is longer than {MAX_TEXT} characters")
    return value


def _optional_text(text: str) -> str | None:
    return _required_text(text) if text and not text.isspace() else None


@lru_cache(maxsize=8192)
def _date_iso(text: str) -> str:
    return parse_csv_date(_required_text(text)).isoformat()


@lru_cache(maxsize=8192)
def _date_iso_day_first(text: str) -> str:
    return parse_csv_date(_required_text(text), day_first=True).isoformat()


@lru_cache(maxsize=1024)
def _percentage(text: str) -> str | None:
    value = ascii_digits(text.strip()).removesuffix("%").strip()
    if not value:
        return None
    if not _NUMBER.match(value) or float(value) > 100:
        raise ValueError("must be a percentage between 0 and 100, e.g. 20%")
    return f"{value}%"


@lru_cache(maxsize=1024)
def _amount(text: str) -> str | None:
    value = ascii_digits(text.strip()).removesuffix("SAR").strip()
    if "," in value:
        # Only as a thousands separator: "500000,00" (a decimal comma, as semicolon-delimited
        # exports write) must not become 50000000.
        if not _GROUPED.match(value):
            raise ValueError(
                f"{shown(text)} is not an amount in riyals: a comma may only separate "
                "thousands (500,000), and decimals take a point"
            )
        value = value.replace(",", "")
    if not value:
        return None
    if not _NUMBER.match(value):
        raise ValueError("must be an amount in riyals, e.g. 500000")
    return value


def _beneficiary(text: str) -> str:
    found = _BENEFICIARY.get(text) or _BENEFICIARY.get(_required_text(text).casefold())
    if found is None:
        raise ValueError("must be principal or dependent (رئيسي / تابع)")
    return found.value


def _status(text: str) -> str:
    found = _STATUS.get(text) or _STATUS.get(text.strip().casefold())
    if found is None:
        raise ValueError("must be active, cancelled or suspended")
    return found.value


class RowValidator:
    """Turns CSV records into staged rows, collecting every problem of a row at once.

    The hot path of a million-row import works column by column: most columns hold a few
    distinct values (insurers, classes, dates, rates), so each distinct value is converted
    once and the column is mapped in C; only per-person columns are converted cell by cell.
    """

    def __init__(
        self,
        insurers: InsurerIndex,
        hash_key: bytes,
        header: Sequence[str],
        *,
        day_first: bool = False,
        bulk: bool = False,
    ) -> None:
        """`header`: the file's column names, normalised, in file order. `day_first`: dates
        may also be DD/MM/YYYY (the operator said so: 03/04/2026 is ambiguous otherwise).
        `bulk`: identity numbers are checked a column at a time (bulk_identity_digits),
        0.65 µs a number faster once its tables are built (80 ms): for a large file."""
        self.insurers = insurers
        self._bulk = bulk
        self.hash_key = hash_key
        self._hash = id_hasher(hash_key)
        dates = _date_iso_day_first if day_first else _date_iso
        # (column, how its cells are converted) in the order of POLICY_COLUMNS after
        # (id_hmac, id_masked), which id_number yields (_identities).
        columns: tuple[tuple[str, ColumnConverter], ...] = (
            ("insurer", _distinct(self._insurer)),
            ("policy_number", _text(required=True)),
            ("policy_class", _distinct(_required_text)),
            ("beneficiary_type", _distinct(_beneficiary)),
            ("start_date", _distinct(dates)),
            ("expiry_date", _distinct(dates)),
            ("status", _distinct(_status)),
            ("member_name", _text(required=False)),
            ("network", _distinct(_optional_text)),
            ("deductible_rate", _distinct(_percentage)),
            ("max_limit", _distinct(_amount)),
            ("beneficiary_number", _text(required=False)),
            ("sponsor_name", _distinct(_optional_text)),
        )
        position = {name: index for index, name in enumerate(header)}
        self._id_index = position["id_number"]
        # With the cell index each reads; None for a column the file lacks.
        self._columns = tuple((name, f, position.get(name)) for name, f in columns)

    def _identities(
        self, cells: Sequence[str]
    ) -> tuple[list[bytes | None], list[str | None], dict[int, str]]:
        """The id_number column: HMACs, masks, and the reason for each bad cell."""
        suspects: Sequence[int]
        if self._bulk:
            digits, suspects = bulk_identity_digits(cells)
        else:  # every cell checked one by one
            digits, suspects = list(cells), range(len(cells))
        bad: dict[int, str] = {}
        for position in suspects:  # checked one by one: its exact reason, or its digits
            try:
                digits[position] = identity_digits(cells[position])
            except InvalidIdentity as exc:
                bad[position] = _ID_REASONS[exc.problem].format(n=exc.digits_given)
        hashes: list[bytes | None] = list(map(self._hash, digits))
        masks: list[str | None] = list(map(mask_id, digits))
        for position in bad:  # the row is dropped; nothing of a bad number is kept
            hashes[position] = masks[position] = None
        return hashes, masks, bad

    def _insurer(self, text: str) -> str:
        code = self.insurers.code_for(_required_text(text))
        if code is None:
            raise ValueError(f"unknown insurer {shown(text)!r} (use a code from insurers.csv)")
        return code

    def validate(self, line: int, cells: Sequence[str]) -> StagedRow | list[RowError]:
        """One record (at least as long as the header): a staged row or its problems."""
        rows, errors = self.validate_batch([line], [cells])
        return rows[0] if rows else errors

    def validate_batch(
        self, lines: Sequence[int], records: Sequence[Sequence[str]]
    ) -> tuple[list[StagedRow], list[RowError]]:
        """Records (each at least as long as the header) with their line numbers."""
        count = len(records)
        # Column by column: the records transposed in one C-level pass (a record longer than
        # the header loses only cells no column reads).
        by_column: list[Sequence[str]] = list(zip(*records, strict=False)) if records else []
        converted: list[Sequence[object]] = []
        problems: dict[int, list[RowError]] = {}

        def note(column: str, bad: dict[int, str]) -> None:
            for row, reason in bad.items():
                problems.setdefault(row, []).append(RowError(lines[row], column, reason))

        hashes, masks, bad = self._identities(by_column[self._id_index] if count else [])
        note("id_number", bad)
        for column, convert, index in self._columns:
            cells = by_column[index] if index is not None else [""] * count
            values, bad = convert(cells)
            converted.append(values)
            note(column, bad)
        starts, expiries = converted[4], converted[5]
        for row, (start, expiry) in enumerate(zip(starts, expiries, strict=True)):
            if start is not None and expiry is not None and expiry < start:  # type: ignore[operator]
                problems.setdefault(row, []).append(
                    RowError(lines[row], "expiry_date", "is before start_date")
                )
        rows: list[StagedRow] = list(zip(lines, hashes, masks, *converted, strict=True))
        if problems:
            rows = [r for i, r in enumerate(rows) if i not in problems]
        errors = [e for row in sorted(problems) for e in problems[row]]
        return rows, errors


# How a column's cells become stored values: the values, and the reason for each bad cell by
# its position.
ColumnConverter = Callable[[Sequence[str]], tuple[list[object], dict[int, str]]]


def _distinct(convert: Callable[[str], object]) -> ColumnConverter:
    """Each distinct value once, then the column mapped in C: values that repeat."""

    def column(cells: Sequence[str]) -> tuple[list[object], dict[int, str]]:
        table: dict[str, object] = {}
        reasons: dict[str, str] = {}
        for value in set(cells):
            try:
                table[value] = convert(value)
            except ValueError as exc:
                reasons[value] = str(exc)
        bad = {i: reasons[v] for i, v in enumerate(cells) if v in reasons} if reasons else {}
        return list(map(table.get, cells)), bad

    return column


def _text(*, required: bool) -> ColumnConverter:
    """Free text per person (policy number, name): `_required_text` / `_optional_text` for a
    whole column, checked with C-level passes and cell by cell only where one fails."""

    def column(cells: Sequence[str]) -> tuple[list[object], dict[int, str]]:
        values: list[object] = list(map(str.strip, cells))
        bad: dict[int, str] = {}
        if max(map(len, values), default=0) > MAX_TEXT:  # type: ignore[arg-type]
            too_long = f"is longer than {MAX_TEXT} characters"
            bad = {i: too_long for i, v in enumerate(values) if len(v) > MAX_TEXT}  # type: ignore[arg-type]
        if not required:
            values = [v or None for v in values]
        elif not all(values):
            bad.update((i, "is required") for i, v in enumerate(values) if not v)
        return values, bad

    return column
