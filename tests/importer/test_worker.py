"""A large file is read and validated in a separate process: the same report and rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import bot.importer.run as run_module
from bot.importer.run import ImportAborted, import_policies
from bot.store.database import Database
from tests.conftest import TEST_KEY

KEY = TEST_KEY.encode()
IN_PROCESS = 1 << 60  # worker_min_bytes: never the worker
IN_WORKER = 0  # always the worker

HEADER = (
    "id_number;insurer;policy_number;policy_class;beneficiary_type;start_date;expiry_date;notes"
)


def big_file(tmp_path: Path) -> Path:
    """12,000 rows over three batches, with every kind of problem the report names."""
    rows = [f"1000000008;BUPA;P-{i};A;principal;2026-01-01;2026-12-31;x" for i in range(12_000)]
    rows[10] = "1000000009;BUPA;P-10;A;principal;2026-01-01;2026-12-31;x"  # check digit
    rows[5_100] = rows[5_100] + ";extra"  # too many values
    rows[6_000] = ""  # a blank line
    rows[7_000] = "1000000008;BUPA;P-3;A;principal;2026-01-01;2026-12-31;x"  # a duplicate
    rows[9_000] = "1000000008;Nobody 12345678901;P-9000;A;principal;2026-01-01;2026-12-31;x"
    rows[11_999] = "2000000006;التعاونية;P-last;B;تابع;03/04/2026;2026-12-31;x"  # a date
    # Numbers as people write them, checked in bulk by the worker and one by one here.
    rows[3_000] = "١٠٠٠٠٠٠٠٠٨;BUPA;P-3000;A;principal;2026-01-01;2026-12-31;x"  # valid
    rows[4_000] = "12345;BUPA;P-4000;A;principal;2026-01-01;2026-12-31;x"  # too short
    rows[8_000] = "5000000001;BUPA;P-8000;A;principal;2026-01-01;2026-12-31;x"  # prefix
    rows[10_500] = "3000000001;BUPA;P-10500;A;principal;2026-01-01;2026-12-31;x"  # border
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


async def snapshot(db: Database) -> list[tuple[object, ...]]:
    rows = await db.read(
        "SELECT id_hmac, id_masked, insurer_code, policy_number, policy_class, "
        "beneficiary_type, start_date, expiry_date, status FROM policies ORDER BY policy_number"
    )
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


async def test_the_worker_gives_the_same_report_and_rows(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = big_file(tmp_path)
    started: list[object] = []
    real = run_module._Worker

    def spy(*args: object) -> object:
        started.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "_Worker", spy)
    here = await import_policies(path, db, KEY, dry_run=True, worker_min_bytes=IN_PROCESS)
    assert not started
    seen: list[tuple[int, int]] = []
    there = await import_policies(
        path,
        db,
        KEY,
        dry_run=True,
        worker_min_bytes=IN_WORKER,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(started) == 1
    assert there == here
    assert (here.rows, here.rejected, here.imported) == (11_999, 7, 11_992)
    assert [e.line for e in here.errors] == [12, 4002, 5102, 7002, 8002, 9002, 12001]
    assert [str(e) for e in here.errors[1::3]] == [
        "line 4002, id_number: has 5 digits; identity numbers have 10",
        "line 8002, id_number: must start with 1 (citizen), 2 (resident) or 3/4 (border number)",
    ]
    assert "'Nobody 1********01'" in str(here.errors[5])
    assert here.unknown_columns == ["notes"]
    assert here.delimiter == ";"
    size = path.stat().st_size
    assert seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    written = await import_policies(path, db, KEY, worker_min_bytes=IN_WORKER)
    assert len(started) == 2
    assert written == dataclasses.replace(here, dry_run=False)
    rows = await snapshot(db)
    assert len(rows) == 11_992
    again = await import_policies(path, db, KEY, replace=True, worker_min_bytes=IN_PROCESS)
    assert (again.unchanged, again.removed, again.replace_skipped) == (11_992, 0, True)
    assert await snapshot(db) == rows


@pytest.mark.parametrize("worker_min_bytes", [IN_PROCESS, IN_WORKER])
async def test_a_problem_found_by_the_worker_aborts_as_in_process(
    tmp_path: Path, db: Database, worker_min_bytes: int
) -> None:
    rows = [f"1000000008,BUPA,P-{i},A,principal,2026-01-01,2026-12-31" for i in range(8_000)]
    path = tmp_path / "bad.csv"
    header = "id_number,insurer,policy_number,policy_class,beneficiary_type,start_date,expiry_date"
    data = (header + "\n" + "\n".join(rows) + "\n").encode()
    path.write_bytes(data + b"1000000008,BUPA,P-\xff,A,principal,2026-01-01,2026-12-31\n")
    with pytest.raises(ImportAborted, match=r"^the file is not UTF-8 text: line 8002 "):
        await import_policies(path, db, KEY, worker_min_bytes=worker_min_bytes)
    assert await snapshot(db) == []
