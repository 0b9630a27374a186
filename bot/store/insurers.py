"""The licensed insurers, kept in step with bot/data/insurers.csv at start-up."""

from __future__ import annotations

import csv
from importlib.resources.abc import Traversable

from bot.domain.policy import Insurer
from bot.package_data import open_csv, package_file
from bot.store.database import Database

# Package data (importlib.resources), so an installed wheel finds it from any directory.
INSURERS_FILE = package_file("data", "insurers.csv")


def read_insurers_file(path: Traversable = INSURERS_FILE) -> list[Insurer]:
    with open_csv(path) as handle:
        return [
            Insurer(
                code=row["code"].strip(),
                name_ar=row["name_ar"].strip(),
                name_en=row["name_en"].strip(),
            )
            for row in csv.DictReader(handle)
        ]


async def sync_insurers(db: Database, insurers: list[Insurer]) -> None:
    """Add new insurers and refresh names; never delete (policies point at them)."""
    await db.write_many(
        "INSERT INTO insurers (code, name_ar, name_en) VALUES (?, ?, ?) "
        "ON CONFLICT (code) DO UPDATE SET name_ar = excluded.name_ar, "
        "name_en = excluded.name_en",
        [(i.code, i.name_ar, i.name_en) for i in insurers],
    )


async def all_insurers(db: Database) -> list[Insurer]:
    rows = await db.read("SELECT code, name_ar, name_en FROM insurers ORDER BY code")
    return [Insurer(code=r[0], name_ar=r[1], name_en=r[2]) for r in rows]
