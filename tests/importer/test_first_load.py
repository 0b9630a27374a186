"""An import into an empty store: on PostgreSQL a first load, copied straight into `policies`
(its lines as ids) with its secondary indexes and constraints made again after."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.importer.run import ImportAborted, ImportReport, import_policies
from bot.store import import_write
from bot.store.database import Database
from bot.store.policies import PolicyStore
from tests.conftest import TEST_KEY
from tests.importer.test_import import HEADER, write

KEY = TEST_KEY.encode()
postgres_only = pytest.mark.parametrize("backend", ["postgres"])

# Lines 2 to 7: the same person and policy number on lines 2, 4 and 5, another on 3 and 7.
REPEATS = (
    f"{HEADER}\n"
    "1000000008,BUPA,P-1,VIP,principal,2026-01-01,2026-12-31\n"
    "2000000006,BUPA,P-2,A,principal,2026-01-01,2026-12-31\n"
    "1000000008,BUPA,P-1,A,principal,2026-01-01,2027-06-30\n"
    "1000000008,BUPA,P-1,B,principal,2026-01-01,2027-06-30\n"
    "1000000008,BUPA,P-3,C,principal,2026-01-01,2026-12-31\n"
    "2000000006,BUPA,P-2,B,principal,2026-01-01,2026-12-31\n"
)


def duplicates(report: ImportReport) -> list[tuple[int, str]]:
    return [(e.line, e.reason.split(" (")[0]) for e in report.errors]


async def check_repeats(tmp_path: Path, db: Database) -> None:
    report = await import_policies(write(tmp_path, REPEATS), db, KEY)
    assert duplicates(report) == [
        (4, "duplicate of line 2"),
        (5, "duplicate of line 2"),
        (7, "duplicate of line 3"),
    ]
    assert (report.rows, report.imported, report.rejected) == (6, 3, 3)
    store = PolicyStore(db, KEY)
    assert await store.count() == 3
    found = {p.policy_number: p.policy_class for p in await store.policies_for("1000000008")}
    assert found == {"P-1": "VIP", "P-3": "C"}  # the first of each kept
    [other] = await store.policies_for("2000000006")
    assert other.policy_class == "A"


async def test_a_first_load_reports_each_duplicate_against_its_first_line(
    tmp_path: Path, db: Database
) -> None:
    await check_repeats(tmp_path, db)


@postgres_only
async def test_colliding_hashes_are_never_taken_for_duplicates(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every key hashes the same: every row after the first is a candidate.
    monkeypatch.setattr(import_write, "key_hash", lambda key: 0)
    await check_repeats(tmp_path, db)


async def schema_of_policies(db: Database) -> list[tuple[object, ...]]:
    rows = await db.read(
        "SELECT 'index', indexname, indexdef FROM pg_indexes WHERE tablename = 'policies' "
        "UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid) || "
        "CASE WHEN convalidated THEN '' ELSE ' (not valid)' END "
        "FROM pg_constraint WHERE conrelid = 'policies'::regclass ORDER BY 1, 2"
    )
    return [tuple(r) for r in rows]


@postgres_only
async def test_a_first_load_that_fails_midway_leaves_the_empty_table_as_it_was(
    tmp_path: Path, db: Database
) -> None:
    before = await schema_of_policies(db)
    names = {str(name) for _, name, _ in before}
    assert {"policies_expiry", "policies_policy", "policies_insurer_code_fkey"} <= names
    rows = "".join(
        f"1000000008,BUPA,Q-{i},A,principal,2026-01-01,2026-12-31\n" for i in range(20_000)
    )
    path = tmp_path / "broken.csv"
    path.write_bytes((HEADER + "\n" + rows).encode() + b"\xff\n")  # fails after 20,000 rows
    with pytest.raises(ImportAborted, match="not UTF-8"):
        await import_policies(path, db, KEY)
    assert await PolicyStore(db, KEY).count() == 0
    assert await schema_of_policies(db) == before
    # And the next first load goes through, its constraints as they were.
    await check_repeats(tmp_path, db)
    assert await schema_of_policies(db) == before


async def test_an_import_after_a_first_load_updates_and_adds(tmp_path: Path, db: Database) -> None:
    first = await import_policies(write(tmp_path, REPEATS), db, KEY)
    assert first.imported == 3
    again = (
        f"{HEADER}\n"
        "1000000008,BUPA,P-1,VIP,principal,2026-01-01,2026-12-31\n"  # unchanged
        "2000000006,BUPA,P-2,A,principal,2026-01-01,2027-12-31\n"  # renewed
        "1000000008,BUPA,P-4,A,principal,2026-01-01,2026-12-31\n"  # new, and more below
        "1000000008,BUPA,P-5,A,principal,2026-01-01,2026-12-31\n"
        "1000000008,BUPA,P-6,A,principal,2026-01-01,2026-12-31\n"
    )
    report = await import_policies(write(tmp_path, again, "again.csv"), db, KEY)
    assert "5 rows: 3 imported, 1 updated, 1 unchanged" in report.summary()
    store = PolicyStore(db, KEY)
    assert await store.count() == 6
    numbers = sorted(p.policy_number for p in await store.policies_for("1000000008"))
    assert numbers == ["P-1", "P-3", "P-4", "P-5", "P-6"]
    [renewed] = await store.policies_for("2000000006")
    assert renewed.expiry_date.year == 2027


async def test_a_dry_run_on_an_empty_store_writes_nothing(tmp_path: Path, db: Database) -> None:
    report = await import_policies(write(tmp_path, REPEATS), db, KEY, dry_run=True)
    assert (report.imported, report.rejected) == (3, 3)
    assert await PolicyStore(db, KEY).count() == 0
    # Nothing left behind either: a real import afterwards is a first load as any.
    await check_repeats(tmp_path, db)


OTHER = f"{HEADER}\n2000000006,BUPA,P-9,A,principal,2026-01-01,2026-12-31\n"


@pytest.mark.parametrize("collide", [False, True], ids=["hashes", "colliding"])
async def test_an_import_into_a_store_with_rows_reports_duplicates_the_same(
    tmp_path: Path,
    db: Database,
    backend: str,
    collide: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if collide:
        if backend != "postgres":
            pytest.skip("PostgreSQL's own way of noticing duplicates")
        monkeypatch.setattr(import_write, "key_hash", lambda key: 0)
    await import_policies(write(tmp_path, OTHER, "other.csv"), db, KEY)
    report = await import_policies(write(tmp_path, REPEATS), db, KEY)
    assert duplicates(report) == [
        (4, "duplicate of line 2"),
        (5, "duplicate of line 2"),
        (7, "duplicate of line 3"),
    ]
    assert (report.imported, report.rejected) == (3, 3)
    store = PolicyStore(db, KEY)
    assert await store.count() == 4
    found = {p.policy_number: p.policy_class for p in await store.policies_for("1000000008")}
    assert found == {"P-1": "VIP", "P-3": "C"}


async def test_a_first_load_with_replace_removes_nothing_and_says_when_it_would_not(
    tmp_path: Path, db: Database
) -> None:
    rejected = REPEATS + "1000000009,BUPA,P-X,A,principal,2026-01-01,2026-12-31\n"  # bad number
    report = await import_policies(write(tmp_path, rejected), db, KEY, replace=True)
    assert (report.imported, report.removed, report.rejected) == (3, 0, 4)
    assert report.replace_skipped
    await PolicyStore(db, KEY).db.write("DELETE FROM policies")
    report = await import_policies(write(tmp_path, REPEATS, "clean.csv"), db, KEY, replace=True)
    assert (report.imported, report.removed, report.replace_skipped) == (3, 0, False)


@postgres_only
async def test_a_first_load_of_only_rejected_rows_leaves_the_table_as_it_was(
    tmp_path: Path, db: Database
) -> None:
    before = await schema_of_policies(db)
    bad = f"{HEADER}\n1000000009,BUPA,P-X,A,principal,2026-01-01,2026-12-31\n"
    report = await import_policies(write(tmp_path, bad), db, KEY)
    assert (report.imported, report.rejected) == (0, 1)
    assert await PolicyStore(db, KEY).count() == 0
    assert await schema_of_policies(db) == before
