from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from bot.config import ENV_NAMES, Settings
from bot.store.database import Database
from bot.store.setup import open_store

# Every environment variable a setting of ours reads (case-insensitively, as Settings does),
# in every group.
OUR_VARIABLES = ENV_NAMES


def _ours(name: str) -> bool:
    return name.upper() in OUR_VARIABLES


# Hermetic from import on: no setting leaks in from the developer's shell, not even into a
# subprocess a session- or module-scoped fixture starts before the autouse fixture below runs.
for _name in [name for name in os.environ if _ours(name)]:
    del os.environ[_name]

# Loopback only: httpx honours proxy variables, and no network exists here.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ["no_proxy"] = os.environ["NO_PROXY"]
# The bot opts in to python-telegram-bot's timedelta time periods when bot.channels is imported;
# pinned here too, so a test that drives PTB without the bot behaves like the bot.
os.environ["PTB_TIMEDELTA"] = "true"

TEST_KEY = "test-hmac-key-not-a-secret"

# 23:59:58 in Riyadh (UTC+3): two seconds before "today" changes for the bot and its users.
BEFORE_RIYADH_MIDNIGHT = datetime(2026, 12, 1, 20, 59, 58, tzinfo=UTC)


@pytest.fixture(autouse=True)
def hermetic_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no setting of ours in the environment and never reads a `.env`.

    A test sets what it needs with `monkeypatch.setenv`; `Settings()` and `load_settings()`
    (as `bot.__main__.main` calls them) then ignore any `.env` in the working directory.
    Subprocesses read no `.env` either: their tests run them in a temporary folder.
    """
    for name in [name for name in os.environ if _ours(name)]:
        monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_path=tmp_path / "bot.sqlite3",
        id_hash_key=TEST_KEY,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await open_store(settings)
    yield database
    await database.close()


@pytest.fixture
def frozen_clock() -> Iterator[time_machine.Traveller]:
    """The wall clock stopped at 23:59:58 in Riyadh, for tests whose dates count from "today".

    `time.time()`, `datetime.now()` and `date.today()` return that instant until the test
    moves it (`frozen_clock.shift(...)`, `.move_to(...)`), so the test and the code under test
    agree on "today" however near midnight the suite runs. asyncio's loop and timeouts use
    `time.monotonic()`, which keeps running. Subprocesses see the real clock.
    """
    with time_machine.travel(BEFORE_RIYADH_MIDNIGHT, tick=False) as traveller:
        yield traveller
