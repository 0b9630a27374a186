"""Open the store the way every command needs it: migrated, with the insurers list loaded."""

from __future__ import annotations

from bot.config import Settings
from bot.store.database import Database
from bot.store.insurers import read_insurers_file, sync_insurers


async def open_store(settings: Settings) -> Database:
    db = await Database.open(settings.database.path)
    try:
        await sync_insurers(db, read_insurers_file())
    except BaseException:
        await db.close()
        raise
    return db
