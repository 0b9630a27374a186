"""What an import reports: duplicates, and the same counts whether it writes or only says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from bot.importer.rows import RowError
from bot.importer.run import import_policies
from bot.store import import_write
from bot.store.database import Database
from bot.store.policies import POLICY_COLUMNS, PolicyStore
from bot.store.postgres import PostgresDatabase
from tests.conftest import TEST_KEY
from tests.importer.test_import import HEADER

KEY = TEST_KEY.encode()


def row(number: str, policy: str, expiry: str = "2026-12-31") -> str:
    return f"{number},BUPA,{policy},A,principal,2026-01-01,{expiry}\n"


def csv_file(tmp_path: Path, name: str, rows: list[str]) -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n" + "".join(rows))
    return path


def duplicate_lines(errors: list[RowError]) -> list[str]:
    return [str(e) for e in errors if "duplicate" in str(e)]


async def test_duplicates_across_batches_name_the_first_line(tmp_path: Path, db: Database) -> None:
    rows = [row("1000000008", f"P-{i}") for i in range(12_000)]  # three batches
    rows[7_000] = row("1000000008", "P-3")  # line 7002 repeats line 5
    rows[11_000] = row("1000000008", "P-3")  # and line 11002 too
    rows[11_500] = row("2000000006", "P-3")  # another person: no duplicate
    report = await import_policies(csv_file(tmp_path, "dups.csv", rows), db, KEY)
    suffix = "(same identity number and policy number); the first one is kept"
    assert duplicate_lines(report.errors) == [
        f"line 7002, policy_number: duplicate of line 5 {suffix}",
        f"line 11002, policy_number: duplicate of line 5 {suffix}",
    ]
    assert (report.imported, report.rejected) == (11_998, 2)
    assert await PolicyStore(db, KEY).count() == 11_998


async def test_a_hash_collision_never_makes_a_duplicate(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every key hashing alike: only rows whose key is really equal are duplicates.
    monkeypatch.setattr(import_write, "key_hash", lambda key: 0)
    rows = [row("1000000008", "P-1"), row("2000000006", "P-1"), row("1000000008", "P-2")]
    rows += [row("2000000006", "P-1"), row("1000000008", "P-2")]
    report = await import_policies(csv_file(tmp_path, "collide.csv", rows), db, KEY)
    assert [e.split(" (")[0] for e in duplicate_lines(report.errors)] == [
        "line 5, policy_number: duplicate of line 3",
        "line 6, policy_number: duplicate of line 4",
    ]
    assert (report.imported, report.rejected) == (3, 2)


@pytest.mark.parametrize("replace", [False, True])
async def test_a_dry_run_reports_what_the_import_then_does(
    tmp_path: Path, db: Database, replace: bool
) -> None:
    old = [row("1000000008", "P-1"), row("1000000008", "P-2"), row("2000000006", "P-3")]
    await import_policies(csv_file(tmp_path, "old.csv", old), db, KEY)
    new = [
        row("1000000008", "P-1"),  # unchanged
        row("1000000008", "P-2", expiry="2027-12-31"),  # updated
        row("3012345678", "P-4"),  # new (P-3 is gone)
        row("3012345678", "P-5"),  # new
    ]
    path = csv_file(tmp_path, "new.csv", new)
    said = await import_policies(path, db, KEY, replace=replace, dry_run=True)
    done = await import_policies(path, db, KEY, replace=replace)
    counts = ("rows", "imported", "updated", "unchanged", "removed", "rejected")
    assert [getattr(said, c) for c in counts] == [getattr(done, c) for c in counts]
    assert [getattr(done, c) for c in counts] == [4, 2, 1, 1, 1 if replace else 0, 0]
    assert await PolicyStore(db, KEY).count() == (4 if replace else 5)


async def test_updated_at_moves_only_for_rows_written(tmp_path: Path, db: Database) -> None:
    old = [row("1000000008", "P-1"), row("1000000008", "P-2")]
    await import_policies(csv_file(tmp_path, "old.csv", old), db, KEY)
    await db.write("UPDATE policies SET updated_at = '2000-01-01T00:00:00Z'")
    new = [row("1000000008", "P-1"), row("1000000008", "P-2", "2027-12-31"), row("2000000006", "P")]
    await import_policies(csv_file(tmp_path, "new.csv", new), db, KEY)
    stamps = {
        str(r[0]): str(r[1])
        for r in await db.read("SELECT policy_number, updated_at FROM policies")
    }
    now = (await db.read_one(f"SELECT {db.dialect.now}"))[0]  # type: ignore[index]
    assert stamps["P-1"] == "2000-01-01T00:00:00Z"  # unchanged: not touched
    assert "2000-01-01T00:00:00Z" < stamps["P-2"] <= now  # updated: stamped now
    assert stamps["P-2"] == stamps["P"]  # and the new row with it: one instant per import


async def test_a_first_load_keeps_every_index_and_constraint(tmp_path: Path, db: Database) -> None:
    # PostgreSQL loads an empty store without its indexes and constraints, then makes them.
    catalog = (
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'policies' "
        "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'policies'::regclass ORDER BY 1, 2"
    )
    postgres = isinstance(db, PostgresDatabase)
    before = await db.read(catalog) if postgres else []
    rows = [row("1000000008", f"P-{i}") for i in range(3)]
    report = await import_policies(csv_file(tmp_path, "first.csv", rows), db, KEY)
    assert report.imported == 3
    assert (await db.read(catalog) if postgres else []) == before
    violations = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
    copy = "INSERT INTO policies ({}) SELECT {} FROM policies WHERE policy_number = 'P-1'"
    columns = ", ".join(POLICY_COLUMNS)
    with pytest.raises(violations):  # the same identity number and policy number again
        await db.write(copy.format(columns, columns))
    with pytest.raises(violations):  # an insurer that is not there
        await db.write(copy.format(columns, columns.replace("insurer_code", "'NOPE'")))
    assert await PolicyStore(db, KEY).count() == 3
