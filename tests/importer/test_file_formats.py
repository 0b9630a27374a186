"""What spreadsheets actually export: delimiters, encodings and date formats, through the CLI."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from bot.config import Settings
from tests.conftest import TEST_KEY, store_env
from tests.importer.test_import import HEADER, cli, count, policies

ROW = "1000000008,BUPA,P-1,VIP,principal,2026-01-01,2026-12-31"
NAME = "أحمد"


@pytest.fixture
def operator(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    for name, value in store_env(settings).items():  # SQLite or PostgreSQL, as the test runs
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ID_HASH_KEY", TEST_KEY)
    return settings


def aborted(capsys: pytest.CaptureFixture[str]) -> str:
    """Why nothing was imported (stderr also has the log, e.g. the schema's migrations)."""
    [line] = [n for n in capsys.readouterr().err.splitlines() if n.startswith("Nothing")]
    return line


def save(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    return path


# -- delimiters ------------------------------------------------------------------------------


def test_a_semicolon_file_is_read_by_its_header(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # As Excel saves "CSV" where the decimal mark is a comma: semicolons, decimal commas.
    text = f"{HEADER},member_name,deductible_rate\n{ROW},{NAME},20\n".replace(",", ";")
    assert cli(save(tmp_path, text.encode("utf-8-sig"))) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "Read as utf-8 text, columns separated by semicolons",
        "1 rows: 1 imported, 0 updated, 0 unchanged, 0 removed, 0 rejected",
    ]
    [policy] = policies(operator, "1000000008")
    assert (policy.member_name, policy.deductible_rate) == (NAME, "20%")


def test_an_unknown_delimiter_is_diagnosed_with_the_header_line(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER}\n{ROW}\n".replace(",", "|")
    assert cli(save(tmp_path, text.encode())) == 2
    assert aborted(capsys) == (
        "Nothing imported: no known column in the header line 'id_number|insurer|"
        "policy_number|policy_class|beneficiary_type|start_date|expiry_date'. Expected "
        "id_number, insurer, policy_number, policy_class, beneficiary_type, start_date, "
        "expiry_date (and optional ones), separated by commas, semicolons or tabs: is the file "
        "delimited by something else, or its header line missing?"
    )
    assert count(operator) == 0


def test_a_missing_header_line_is_shown_with_the_number_masked(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(save(tmp_path, f"{ROW}\n".encode())) == 2
    err = aborted(capsys)
    assert err.startswith("Nothing imported: no known column in the header line '1*******08,BUPA,")
    assert "1000000008" not in err


def test_missing_columns_name_what_the_header_has(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(save(tmp_path, b"id_number;insurer;policy\n1000000008;BUPA;P-1\n")) == 2
    assert aborted(capsys) == (
        "Nothing imported: missing required column(s): policy_number, policy_class, "
        "beneficiary_type, start_date, expiry_date (the header has: id_number, insurer, policy)"
    )


def test_excel_unicode_text_utf16_with_tabs_is_read(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER},member_name\n{ROW},{NAME}\n".replace(",", "\t")
    assert cli(save(tmp_path, text.encode("utf-16"))) == 0  # with its byte-order mark
    assert "Read as utf-16 text, columns separated by tabs" in capsys.readouterr().out
    [policy] = policies(operator, "1000000008")
    assert policy.member_name == NAME


# -- encodings -------------------------------------------------------------------------------

CP1256 = f"{HEADER},member_name\n{ROW},{NAME}\n".encode("cp1256")


def test_a_windows_arabic_file_says_where_and_how_to_fix_it(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    offset = len(f"{HEADER},member_name\n{ROW},".encode())
    assert cli(save(tmp_path, CP1256)) == 2
    assert aborted(capsys) == (
        f"Nothing imported: the file is not UTF-8 text: line 2 (byte offset {offset}) has "
        '0xC3, which is not UTF-8. Save it again from Excel as "CSV UTF-8 (Comma delimited)", '
        "or, if it is Windows Arabic text, import it as it is with --encoding cp1256"
    )
    assert count(operator) == 0


def test_a_late_bad_byte_is_located_exactly(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Far past the first read-ahead chunks, and after a BOM: the offset is the file's.
    rows = "".join(
        f"1000000008,BUPA,Q-{i},A,principal,2026-01-01,2026-12-31,{NAME}\n" for i in range(5_000)
    )
    head = f"{HEADER},member_name\n{rows}".encode("utf-8-sig")
    good = b"1000000008,BUPA,Q,A,principal,2026-01-01,2026-12-31,"
    assert cli(save(tmp_path, head + good + b"\xe9\n")) == 2
    err = aborted(capsys)
    assert f"line 5002 (byte offset {len(head) + len(good)}) has 0xE9, which is not UTF-8." in err


def test_encoding_cp1256_reads_it(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(save(tmp_path, CP1256), "--encoding", "cp1256") == 0
    assert capsys.readouterr().out.splitlines() == [
        "Read as cp1256 text, columns separated by commas",
        "1 rows: 1 imported, 0 updated, 0 unchanged, 0 removed, 0 rejected",
    ]
    [policy] = policies(operator, "1000000008")
    assert policy.member_name == NAME


@pytest.mark.parametrize("name", ["latin-9x", "base64"])
def test_an_unknown_encoding_is_refused(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert cli(save(tmp_path, CP1256), "--encoding", name) == 2
    assert aborted(capsys) == (
        f"Nothing imported: --encoding '{name}' is not a text encoding Python knows "
        "(e.g. utf-8, cp1256)"
    )


# -- dates -----------------------------------------------------------------------------------


def test_a_day_first_date_is_shown_with_the_option_to_pass(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER}\n1000000008,BUPA,P-1,VIP,principal,15/09/2026,2027-09-14\n"
    assert cli(save(tmp_path, text.encode())) == 1
    assert (
        "Rejected line 2, start_date: 15/09/2026 is not a date as YYYY-MM-DD (for "
        "day/month/year dates, pass --date-format DD/MM/YYYY)\n"
    ) in capsys.readouterr().out


def test_a_date_that_is_no_date_is_shown(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER}\n1000000008,BUPA,P-1,VIP,principal,next week,2027-09-14\n"
    assert cli(save(tmp_path, text.encode())) == 1
    assert (
        "Rejected line 2, start_date: next week is not a date as YYYY-MM-DD\n"
        in capsys.readouterr().out
    )


def test_date_format_day_first(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        f"{HEADER}\n"
        "1000000008,BUPA,P-1,VIP,principal,15/09/2026,14.09.2027\n"
        "1000000008,BUPA,P-2,VIP,principal,3-4-2026,2026-12-31\n"  # ISO stays unambiguous
        "1000000008,BUPA,P-3,VIP,principal,01/09/1445,29/08/1446\n"  # Umm al-Qura
        "1000000008,BUPA,P-4,VIP,principal,31/02/2026,2026-12-31\n"
        "1000000008,BUPA,P-5,VIP,principal,2026/09/15,2026-12-31\n"
    )
    assert cli(save(tmp_path, text.encode()), "--date-format", "DD/MM/YYYY") == 1
    out = capsys.readouterr().out
    assert "Rejected line 5, start_date: 31/02/2026 is not a valid date\n" in out
    assert (
        "Rejected line 6, start_date: 2026/09/15 is not a date as DD/MM/YYYY or YYYY-MM-DD\n"
    ) in out
    dates = {p.policy_number: (p.start_date, p.expiry_date) for p in policies(operator, ROW[:10])}
    assert dates == {
        "P-1": (date(2026, 9, 15), date(2027, 9, 14)),
        "P-2": (date(2026, 4, 3), date(2026, 12, 31)),
        "P-3": (date(2024, 3, 11), date(2025, 2, 28)),
    }


# -- the report and the errors file ----------------------------------------------------------


def test_errors_csv_is_utf8_with_bom_in_the_files_delimiter(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER}\n1000000008;BUPA;P-1;VIP;boss;2026-01-01;2026-12-31\n"
    errors = tmp_path / "errors.csv"
    assert cli(save(tmp_path, text.replace(",", ";").encode()), "--errors-csv", errors) == 1
    data = errors.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows == [
        ["line", "column", "reason"],
        ["2", "beneficiary_type", "must be principal or dependent (رئيسي / تابع)"],
    ]


def test_a_decimal_comma_amount_is_refused_not_multiplied(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER},max_limit\n{ROW},".replace(",", ";") + "500000,00\n"
    assert cli(save(tmp_path, text.encode())) == 1
    assert (
        "Rejected line 2, max_limit: 500000,00 is not an amount in riyals: a comma may only "
        "separate thousands (500,000), and decimals take a point\n"
    ) in capsys.readouterr().out
    assert count(operator) == 0


# The file is read in chunks that end where a line ends (bot/importer/run.py, _chunks): tiny
# chunks put a chunk's end at every place a line end can be split, CR LF included.
@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 7, 64])
@pytest.mark.parametrize("line_end", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
def test_line_numbers_count_line_breaks_inside_cells(
    tmp_path: Path,
    operator: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    chunk: int | None,
    line_end: str,
) -> None:
    if chunk is not None:
        monkeypatch.setattr("bot.importer.run._CHUNK_CHARS", chunk)
    # Excel quotes a cell typed with Alt+Enter and keeps its line break; lines end in CR LF
    # (Windows), LF, or a lone CR (Excel for Mac's "CSV (Macintosh)").
    rows = [
        f"{HEADER},member_name",
        f'{ROW},"{NAME}\nthe second line"',  # lines 2-3
        "",  # line 4: blank
        f'{ROW.replace("P-1", "P-2")},"a\r\nb\rc"',  # lines 5-7
        ",,,,,,,",  # line 8: only commas
        "1000000009,BUPA,P-3,VIP,principal,2026-01-01,2026-12-31,",  # line 9
        "2000000006,BUPA,P-4,VIP,principal,2026-01-01",  # line 10: short, so no expiry
    ]
    assert cli(save(tmp_path, (line_end.join(rows) + line_end).encode())) == 1
    out = capsys.readouterr().out
    assert [n for n in out.splitlines() if n.startswith("Rejected")] == [
        "Rejected line 9, id_number: fails the check digit (mistyped?)",
        "Rejected line 10, expiry_date: is required",
    ]
    assert "4 rows: 2 imported" in out
    names = {p.policy_number: p.member_name for p in policies(operator, "1000000008")}
    assert names == {"P-1": f"{NAME}\nthe second line", "P-2": "a\r\nb\rc"}


def test_a_number_in_the_wrong_column_is_masked_in_the_report(
    tmp_path: Path, operator: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER}\nBUPA,1000000008,P-1,VIP,principal,2026-01-01,1000000008\n"
    errors = tmp_path / "errors.csv"
    assert cli(save(tmp_path, text.encode()), "--errors-csv", errors) == 1
    out = capsys.readouterr().out
    assert "line 2, insurer: unknown insurer '1*******08'" in out
    assert "line 2, expiry_date: 1*******08 is not a date as YYYY-MM-DD" in out
    assert "1000000008" not in out + errors.read_text(encoding="utf-8-sig")
