from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.store.database import Database
from bot.store.setup import open_store

# Hermetic: no setting leaks in from the developer's shell (subprocesses inherit this too).
for _name in Settings.model_fields:
    os.environ.pop(_name.upper(), None)

# Loopback only: httpx honours proxy variables, and no network exists here.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ["no_proxy"] = os.environ["NO_PROXY"]

TEST_KEY = "test-hmac-key-not-a-secret"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key=TEST_KEY,  # type: ignore[arg-type]
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await open_store(settings)
    yield database
    await database.close()
