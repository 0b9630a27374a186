"""Open the store the way every command needs it: migrated, with the insurers list loaded."""

from __future__ import annotations

from pathlib import Path

from bot.config import Settings
from bot.store.database import Database, SqliteDatabase
from bot.store.insurers import read_insurers_file, sync_insurers
from bot.store.postgres import POOL_SIZE, PostgresDatabase, is_postgres_url


async def open_database(
    location: Path | str, *, pool_size: int = POOL_SIZE, pgbouncer: bool = False
) -> Database:
    """A postgresql:// URL opens PostgreSQL, anything else is the SQLite file; migrated."""
    if is_postgres_url(location):
        return await PostgresDatabase.open(str(location), pool_size=pool_size, pgbouncer=pgbouncer)
    return await SqliteDatabase.open(location)


async def open_store(settings: Settings) -> Database:
    db = await open_database(
        settings.database.location,
        pool_size=settings.database.pool_size,
        pgbouncer=settings.database.pgbouncer,
    )
    try:
        await sync_insurers(db, read_insurers_file())
    except BaseException:
        await db.close()
        raise
    return db
