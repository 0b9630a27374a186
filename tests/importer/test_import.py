"""The CSV import as an operator runs it: `python -m bot import-policies FILE`."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config import Settings
from bot.domain.policy import Policy
from bot.importer.run import ImportAborted, import_policies
from bot.store.database import Database
from bot.store.policies import PolicyStore
from bot.store.setup import open_store
from tests.conftest import TEST_KEY, sqlite_only, store_env

HEADER = "id_number,insurer,policy_number,policy_class,beneficiary_type,start_date,expiry_date"
GOOD = textwrap.dedent(
    f"""\
    {HEADER}
    1000000008,BUPA,P-1,VIP,principal,2026-01-01,2026-12-31
    ١٠١٢٣٤٥٦٧٢,التعاونية,P-2,A,رئيسي,2026-02-01,2027-01-31
    2000000006,Bupa Arabia,P-3,B,dependent,2026-03-01,2027-02-28
    """
)


def write(tmp_path: Path, text: str, name: str = "policies.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.fixture
def cli_env(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in store_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ID_HASH_KEY", TEST_KEY)
    return settings


def cli(*args: str | Path) -> int:
    return main(["import-policies", *map(str, args)])


def policies(settings: Settings, digits: str) -> list[Policy]:
    async def read() -> list[Policy]:
        async with await open_store(settings) as db:
            return await PolicyStore(db, settings.database.hash_key).policies_for(digits)

    return asyncio.run(read())


def stored(settings: Settings, digits: str) -> list[str]:
    return sorted(p.policy_number for p in policies(settings, digits))


def count(settings: Settings) -> int:
    async def read() -> int:
        async with await open_store(settings) as db:
            return await PolicyStore(db, settings.database.hash_key).count()

    return asyncio.run(read())


def test_good_file(tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(write(tmp_path, GOOD)) == 0
    assert (
        "3 rows: 3 imported, 0 updated, 0 unchanged, 0 removed, 0 rejected"
        in capsys.readouterr().out
    )
    assert stored(cli_env, "1012345672") == ["P-2"]
    [policy] = policies(cli_env, "2000000006")
    assert policy.insurer.code == "BUPA"
    assert policy.beneficiary_type == "dependent"
    assert policy.id_masked == "2*******06"
    assert policy.expiry_date == date(2027, 2, 28)


def test_bom_and_free_column_order_and_unknown_columns(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        "Expiry_Date,policy_number,colour,id_number,insurer,policy_class,beneficiary_type,"
        "start_date,status,deductible_rate,max_limit\n"
        '2027-01-01,P-9,blue,1000000008,medgulf,A,principal,2026-01-01,cancelled,20,"500,000"\n'
    )
    assert cli(write(tmp_path, text, bom=True)) == 0
    out = capsys.readouterr().out
    assert "Ignored unknown column(s): colour" in out
    [policy] = policies(cli_env, "1000000008")
    assert (policy.status, policy.deductible_rate, policy.max_limit) == (
        "cancelled",
        "20%",
        "500000",
    )


def test_bad_rows_are_reported_precisely_and_good_rows_kept(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = textwrap.dedent(
        f"""\
        {HEADER},status
        1000000008,BUPA,P-1,A,principal,2026-01-01,2026-12-31,
        1000000009,BUPA,P-2,A,principal,2026-01-01,2026-12-31,
        12345,NOPE,P-3,A,boss,2026-13-01,2026-12-31,paused
        2000000006,BUPA,,A,principal,2026-05-01,2026-04-01,
        2000000006,BUPA,P-5,A,principal,2026-01-01,2026-12-31,active,extra
        """
    )
    assert cli(write(tmp_path, text)) == 1
    out = capsys.readouterr().out
    expected = [
        "line 3, id_number: fails the check digit",
        "line 4, id_number: has 5 digits; identity numbers have 10",
        "line 4, insurer: unknown insurer 'NOPE'",
        "line 4, beneficiary_type: must be principal or dependent",
        "line 4, start_date: 2026-13-01 is not a valid date",
        "line 4, status: must be active, cancelled or suspended",
        "line 5, policy_number: is required",
        "line 5, expiry_date: is before start_date",
        "line 6, (row): has 9 values; the header has 8 columns",
    ]
    for fragment in expected:
        assert fragment in out
    assert "5 rows: 1 imported, 0 updated, 0 unchanged, 0 removed, 4 rejected" in out
    assert stored(cli_env, "1000000008") == ["P-1"]
    assert count(cli_env) == 1


def test_duplicates_inside_one_file(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD + "1000000008,BUPA,P-1,A,principal,2026-01-01,2027-06-30\n"
    assert cli(write(tmp_path, text)) == 1
    out = capsys.readouterr().out
    assert "line 5, policy_number: duplicate of line 2" in out
    [policy] = policies(cli_env, "1000000008")
    assert policy.policy_class == "VIP"  # the first occurrence is kept


def test_reimport_updates_matching_rows(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(write(tmp_path, GOOD)) == 0
    renewed = GOOD.replace(
        "P-1,VIP,principal,2026-01-01,2026-12-31", "P-1,VIP,principal,2026-01-01,2027-12-31"
    )
    assert cli(write(tmp_path, renewed, "renewed.csv")) == 0
    assert "3 rows: 0 imported, 1 updated, 2 unchanged" in capsys.readouterr().out
    [policy] = policies(cli_env, "1000000008")
    assert policy.expiry_date == date(2027, 12, 31)
    assert count(cli_env) == 3


def test_replace_removes_what_the_file_no_longer_lists(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(write(tmp_path, GOOD)) == 0
    smaller = "\n".join(GOOD.splitlines()[:2]) + "\n"
    assert cli(write(tmp_path, smaller, "smaller.csv"), "--replace") == 0
    assert "1 rows: 0 imported, 0 updated, 1 unchanged, 2 removed" in capsys.readouterr().out
    assert count(cli_env) == 1
    assert stored(cli_env, "1000000008") == ["P-1"]


def test_replace_removes_nothing_when_rows_were_rejected(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(write(tmp_path, GOOD)) == 0
    partial = (
        "\n".join(GOOD.splitlines()[:2])
        + "\n1000000009,BUPA,P-X,A,principal,2026-01-01,2026-12-31\n"
    )
    assert cli(write(tmp_path, partial, "partial.csv"), "--replace") == 1
    out = capsys.readouterr().out
    assert "nothing removed, because some rows were rejected" in out
    assert count(cli_env) == 3


def test_dry_run_writes_nothing(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(write(tmp_path, GOOD), "--dry-run") == 0
    assert "Dry run, nothing written. 3 rows would give: 3 imported" in capsys.readouterr().out
    assert count(cli_env) == 0


def test_hijri_dates_are_converted(tmp_path: Path, cli_env: Settings) -> None:
    text = f"{HEADER}\n1000000008,BUPA,P-1,A,principal,1445-09-01,1446-08-29\n"
    assert cli(write(tmp_path, text)) == 0
    [policy] = policies(cli_env, "1000000008")
    assert policy.start_date == date(2024, 3, 11)  # 1 Ramadan 1445


def test_invalid_hijri_date_is_rejected(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"{HEADER}\n1000000008,BUPA,P-1,A,principal,1445-13-01,1446-08-29\n"
    assert cli(write(tmp_path, text)) == 1
    assert (
        "line 2, start_date: 1445-13-01 is not a valid Hijri (Umm al-Qura) date"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"id_number,insurer\n1000000008,BUPA\n", "missing required column(s): policy_number"),
        (
            HEADER.encode() + b"\n1000000008,\xff\xfe,P,A,principal,2026-01-01,2026-12-31\n",
            "not UTF-8",
        ),
        ((HEADER + ",insurer\n").encode(), "repeats column(s): insurer"),
    ],
)
def test_nothing_written_exits_2(
    tmp_path: Path,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / "input.csv"
    if content is not None:
        path.write_bytes(content)
    assert cli(path) == 2
    assert message in capsys.readouterr().err
    assert count(cli_env) == 0


async def test_failure_in_the_middle_leaves_the_database_as_it_was(
    tmp_path: Path, db: Database
) -> None:
    await import_policies(write(tmp_path, GOOD), db, TEST_KEY.encode())
    before = await PolicyStore(db, TEST_KEY.encode()).count()
    # Valid rows first, then bytes that are not UTF-8 far down the file.
    rows = "".join(
        f"1000000008,BUPA,Q-{i},A,principal,2026-01-01,2026-12-31\n" for i in range(20_000)
    )
    path = tmp_path / "broken.csv"
    path.write_bytes((HEADER + "\n" + rows).encode() + b"\xff\n")
    with pytest.raises(ImportAborted, match="not UTF-8"):
        await import_policies(path, db, TEST_KEY.encode())
    assert await PolicyStore(db, TEST_KEY.encode()).count() == before == 3


# The import command in a child that reports when it is inside the transaction writing
# `policies` (its rows written, COMMIT still to come) and waits there to be killed.
KILLABLE_IMPORT = textwrap.dedent(
    """\
    import asyncio, sys
    from bot.__main__ import main
    from bot.store.policies import PolicyStore

    apply = PolicyStore._apply

    async def apply_then_wait(*args, **kwargs):
        await apply(*args, **kwargs)
        print("IN THE WRITE TRANSACTION", flush=True)
        await asyncio.Event().wait()

    PolicyStore._apply = staticmethod(apply_then_wait)
    sys.exit(main(["import-policies", *sys.argv[1:]]))
    """
)


@sqlite_only  # PostgreSQL's import is killed at its COMMIT in tests/store/test_units.py
@pytest.mark.parametrize("first_load", [False, True], ids=["update", "first-load"])
def test_killed_import_leaves_the_database_as_it_was(
    tmp_path: Path, settings: Settings, first_load: bool
) -> None:
    """Killed before COMMIT, whether the rows were being merged into a table with rows or
    loaded into an empty one (its indexes then dropped, to be built again after)."""
    big = tmp_path / "big.csv"
    with big.open("w") as handle:
        handle.write(HEADER + "\n")
        for i in range(300_000):
            handle.write(f"1000000008,BUPA,K-{i},A,principal,2026-01-01,2026-12-31\n")
    env = {
        **os.environ,
        "DATABASE_PATH": str(settings.database.path),
        "ID_HASH_KEY": TEST_KEY,
        # cwd is the temporary folder (no .env): import this checkout's bot, not an installed one.
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    first = write(tmp_path, GOOD, "first.csv")
    command = ["remind", "--dry-run"] if first_load else ["import-policies", str(first)]
    subprocess.run(  # the first file, or only the schema's migrations (a dry-run reminder pass)
        [sys.executable, "-m", "bot", *command],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    conn = sqlite3.connect(settings.database.path)
    schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_IMPORT, str(big)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    # Kill it hard once it says it is inside the write transaction, before its COMMIT.
    line = process.stdout.readline()
    if line != "IN THE WRITE TRANSACTION\n":
        process.kill()
        process.wait()
        raise AssertionError(f"never reached the write transaction: {process.stderr.read()}")
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    process.stdout.close()
    process.stderr.close()
    conn = sqlite3.connect(settings.database.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # All or nothing: the whole file was written but never committed, so none of it is there.
    assert conn.execute("SELECT count(*) FROM policies").fetchone()[0] == (0 if first_load else 3)
    # Every index is there as it was, the policies' unique key included.
    assert (
        conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    )
    assert ("index", "policies_person_policy") in {(t, n) for t, n, _ in schema}
    conn.close()


@sqlite_only  # reads the database's files
def test_raw_numbers_never_reach_the_database_or_logs(
    tmp_path: Path,
    cli_env: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = GOOD + "1000000009,BUPA,P-9,A,principal,2026-01-01,2026-12-31\n"
    cli(write(tmp_path, bad))
    for digits in ("1000000008", "1012345672", "2000000006", "1000000009"):
        policies(cli_env, digits)
    captured = capsys.readouterr()
    raw_numbers = ["1000000008", "1012345672", "2000000006", "1000000009"]
    for suffix in ("", "-wal", "-shm"):
        file = Path(str(cli_env.database.path) + suffix)
        if file.exists():
            data = file.read_bytes()
            for number in raw_numbers:
                assert number.encode() not in data
                assert number.encode("utf-16-le") not in data
    logs = caplog.text + captured.out + captured.err
    for number in raw_numbers:
        assert number not in logs
