"""Demo policies whose dates move with the calendar, so the demo cases never go stale.

bot/data/demo_policies.csv holds offsets in days from the day of loading instead of dates.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from datetime import date, timedelta
from importlib.resources.abc import Traversable
from pathlib import Path

from bot.config import Settings
from bot.domain.policy import today_in
from bot.importer.rows import KNOWN_COLUMNS
from bot.importer.run import ImportReport, import_policies
from bot.package_data import open_csv, package_file
from bot.store.database import Database
from bot.store.setup import open_store

# Package data (importlib.resources), so an installed wheel finds it from any directory.
DEMO_FILE = package_file("data", "demo_policies.csv")


def demo_rows(today: date, source: Traversable = DEMO_FILE) -> list[dict[str, str]]:
    """The demo file in import format, dated relative to `today`."""
    with open_csv(source) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["start_date"] = (today + timedelta(days=int(row["start_offset_days"]))).isoformat()
        row["expiry_date"] = (today + timedelta(days=int(row["expiry_offset_days"]))).isoformat()
    return [{k: v for k, v in row.items() if k in KNOWN_COLUMNS} for row in rows]


def demo_cases(source: Traversable = DEMO_FILE) -> list[tuple[str, str]]:
    """(identity number, what it shows) for the README and the start-up banner."""
    with open_csv(source) as handle:
        return [(row["id_number"], row["case"]) for row in csv.DictReader(handle)]


async def load_demo(db: Database, settings: Settings, *, replace: bool = False) -> ImportReport:
    rows = demo_rows(today_in(settings.app.tz))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return await import_policies(path, db, settings.database.hash_key, replace=replace)


async def run_load_demo(settings: Settings, *, replace: bool = False) -> int:
    db = await open_store(settings)
    try:
        report = await load_demo(db, settings, replace=replace)
    finally:
        await db.close()
    for error in report.errors:
        print(f"Rejected {error}", file=sys.stderr)
    print(report.summary())
    return report.exit_code
