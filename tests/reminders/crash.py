"""Kill a CLI broadcast midway (SIGKILL), as the crash-and-resume tests of each channel do."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bot.store.database import Database


async def kill_mid_broadcast(
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    sent: Callable[[], Awaitable[int]],
    kill_after: int,
    db: Database,
    most_in_flight: int,
    timeout: float = 30,
) -> set[str]:
    """Run `python -m bot broadcast ARGS`, SIGKILL it once the fake has `kill_after` sends
    (`sent()` counts them), and return the chats whose message was in flight at the kill.
    Fails when the broadcast finished first or more were in flight than its workers."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "broadcast",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await sent() < kill_after:
        if loop.time() >= deadline:
            child.kill()
            _, err = await child.communicate()
            raise AssertionError(
                f"the CLI did not send {kill_after} messages within {timeout} s: {err.decode()}"
            )
        await asyncio.sleep(0.02)
    child.kill()  # SIGKILL: no clean-up of any kind
    await child.wait()

    rows = await db.read("SELECT chat_id, status FROM broadcast_recipients")
    at_kill = Counter(str(r[1]) for r in rows)
    assert at_kill["pending"] > 0, "the broadcast finished before the kill"
    in_flight = {str(r[0]) for r in rows if r[1] == "sending"}
    assert len(in_flight) <= most_in_flight
    return in_flight
