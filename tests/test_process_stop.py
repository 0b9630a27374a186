"""`python -m bot` as systemd, docker and a terminal stop it: SIGTERM or Ctrl+C (SIGINT to the
whole process group), in every mode. It shuts down, exits 0 with no traceback, and leaves no
process behind (captcha workers, multiprocessing's resource tracker)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientSession

from tests.e2e.conftest import CODE, TOKEN
from tests.fakes.fake_bot_api import FakeBotAPI

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cret-Token_1"
# What the child keeps of this environment; everything else (TELEGRAM_*, WHATSAPP_*, a
# developer's own settings) is dropped, and cwd is a temporary folder, so no .env is read.
KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(folder: Path, **settings: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in KEPT if key in os.environ}
    return env | {
        "PYTHONPATH": str(REPO),  # this checkout's bot, not whatever is installed
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "DATABASE_PATH": str(folder / "bot.sqlite3"),
        "ID_HASH_KEY": "k",
        "CAPTCHA_WORKERS": "1",
        "CAPTCHA_TEST_CODE": CODE,
        **settings,
    }


def _parent_of(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, None once it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state in ("Z", "X") else (int(ppid), state)


def descendants(root: int) -> set[int]:
    """Every live process below `root` (read from /proc: children of children too)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _parent_of(int(entry.name))) is not None:
            parents[int(entry.name)] = found[0]
    below: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    return below


async def wait_gone(pids: set[int], timeout: float = 5.0) -> set[int]:
    """The processes still alive after up to `timeout` seconds (orphans are reaped by init)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (alive := {pid for pid in pids if _parent_of(pid) is not None}) and (
        loop.time() < deadline
    ):
        await asyncio.sleep(0.05)
    return alive


@dataclass
class Bot:
    process: asyncio.subprocess.Process
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while condition not in self.output:
            if self.process.returncode is not None or loop.time() > deadline:
                raise AssertionError(f"never saw {condition!r}:\n{self.output}")
            await asyncio.sleep(0.05)

    async def stop(self, sig: signal.Signals, *, group: bool) -> int:
        """Send `sig` (to the whole process group, like a terminal's Ctrl+C, if `group`)."""
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), 15)


@asynccontextmanager
async def running_bot(folder: Path, env: dict[str, str]) -> AsyncIterator[Bot]:
    log = folder / "bot.log"
    with log.open("wb") as out:
        # Its own session: a group signal reaches the bot and its workers, not pytest.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=folder,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    bot = Bot(process, log)
    try:
        yield bot
    finally:
        if process.returncode is None:  # the test failed before stopping it
            left = descendants(process.pid)
            process.kill()
            await process.wait()
            for pid in left:
                if _parent_of(pid) is not None:
                    os.kill(pid, signal.SIGKILL)


async def assert_stops_cleanly(bot: Bot, sig: signal.Signals, *, group: bool) -> None:
    children = descendants(bot.process.pid)
    # The captcha worker and multiprocessing's resource tracker, at least.
    assert len(children) >= 2, bot.output
    assert await bot.stop(sig, group=group) == 0, bot.output
    assert await wait_gone(children) == set(), bot.output
    assert "Traceback" not in bot.output
    assert bot.output.rstrip().endswith("Stopped."), bot.output


async def render_a_captcha(port: int) -> None:
    """Start a lookup in the web chat up to the image code, so the worker pool is running."""
    url = f"http://127.0.0.1:{port}/api/chat"
    async with ClientSession() as http:
        for body in ({"command": "start"}, {"button": "path:citizen"}, {"text": "1000000008"}):
            async with http.post(url, json=body) as response:
                assert response.status == 200
                replies = (await response.json())["replies"]
    assert replies[-1]["type"] == "photo"


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, True)],
    ids=["sigterm", "sigterm-to-group", "ctrl-c"],
)
async def test_web_chat_stops_on_a_signal(tmp_path: Path, sig: signal.Signals, group: bool) -> None:
    port = free_port()
    async with running_bot(tmp_path, bot_env(tmp_path, WEB_PORT=str(port))) as bot:
        await bot.wait_for("Application startup complete")
        await render_a_captcha(port)
        await assert_stops_cleanly(bot, sig, group=group)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
async def test_telegram_polling_stops_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    async with FakeBotAPI() as api:
        env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=api.root_url)
        async with running_bot(tmp_path, env) as bot:
            await api.wait_until_polling(timeout=30)  # the workers were warmed up before
            await assert_stops_cleanly(bot, sig, group=True)


async def test_telegram_webhook_with_the_web_chat_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    async with FakeBotAPI() as api:
        env = bot_env(
            tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=api.root_url,
            WEBHOOK_URL=f"http://127.0.0.1:{port}",
            WEBHOOK_SECRET=SECRET,
            WEB_PORT=str(port),
            WEB_CHAT="true",
        )
        async with running_bot(tmp_path, env) as bot:
            await bot.wait_for("is answering (webhook")
            await render_a_captcha(port)
            await assert_stops_cleanly(bot, signal.SIGTERM, group=False)


async def test_the_web_chat_alone_prunes_idle_conversations_at_start(tmp_path: Path) -> None:
    from bot.conversation.state import Conversation
    from bot.conversation.states import ConversationStates
    from bot.store.conversations import ConversationStore
    from bot.store.database import SqliteDatabase

    async with await SqliteDatabase.open(tmp_path / "bot.sqlite3") as db:
        states = ConversationStates(ConversationStore(db))
        for chat_id in ("idle", "recent"):
            await states.save("web", chat_id, Conversation())
        await db.write(
            "UPDATE conversations SET updated_at = '2000-01-01T00:00:00Z' WHERE chat_id = 'idle'"
        )
    port = free_port()
    async with running_bot(tmp_path, bot_env(tmp_path, WEB_PORT=str(port))) as bot:
        await bot.wait_for("idle conversations:")
        await bot.stop(signal.SIGTERM, group=False)
    assert "older than 180 days: 0; idle conversations: 1;" in bot.output
    async with await SqliteDatabase.open(tmp_path / "bot.sqlite3") as db:
        store = ConversationStore(db)
        assert not await store.exists("web", "idle") and await store.exists("web", "recent")
