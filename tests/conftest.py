from __future__ import annotations

import atexit
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from bot.config import ENV_NAMES, Settings
from bot.store.database import Database
from bot.store.setup import open_store
from tests.postgres_cluster import ClusterUnavailable, PostgresCluster, start_cluster

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


# -- the store's two backends --------------------------------------------------------------
#
# A test that asks for `settings`, `db` or `database_location` runs on SQLite; a module or a
# folder whose conftest says `backend = on_both_backends()` runs each such test twice,
# `[sqlite]` and `[postgres]`. Without PostgreSQL's binaries the `[postgres]` runs skip, unless
# REQUIRE_POSTGRES=1 (CI), where they fail.

BACKENDS = ("sqlite", "postgres")


def on_both_backends() -> Callable[..., str]:
    @pytest.fixture(params=BACKENDS)
    def backend(request: pytest.FixtureRequest) -> str:
        return str(request.param)

    return backend


@pytest.fixture
def backend() -> str:
    return "sqlite"


# On a test of a module that runs on both: this test runs on SQLite only (it checks files).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = start_cluster()
    except ClusterUnavailable as exc:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but PostgreSQL cannot run: {exc}")
        pytest.skip(f"PostgreSQL is not available: {exc}")
    atexit.register(cluster.stop)  # even if the session is interrupted
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def database_location(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Path | str]:
    """Where this test's store is: an SQLite file, or a fresh PostgreSQL database's URL."""
    if backend == "sqlite":
        yield tmp_path / "bot.sqlite3"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    with cluster.database() as url:
        yield url


@pytest.fixture
def store_settings(database_location: Path | str, tmp_path: Path) -> dict[str, Any]:
    """Settings by env name for this test's store (DATABASE_PATH stays in tmp_path, where the
    development key would go)."""
    if isinstance(database_location, Path):
        return {"database_path": database_location}
    return {"database_path": tmp_path / "bot.sqlite3", "database_url": database_location}


def store_env(settings: Settings) -> dict[str, str]:
    """The store's settings as a child process reads them from the environment."""
    env = {"DATABASE_PATH": str(settings.database.path)}
    if settings.database.url is not None:
        env["DATABASE_URL"] = settings.database.url.get_secret_value()
    return env


@pytest.fixture
def settings(store_settings: dict[str, Any]) -> Settings:
    return Settings(_env_file=None, id_hash_key=TEST_KEY, **store_settings)


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
