"""Per-chat ordering with cross-chat concurrency (the update processor on its own)."""

from __future__ import annotations

import asyncio

from bot.channels.ordering import PerChatUpdateProcessor


def by_chat(update: object) -> object:
    assert isinstance(update, tuple)
    return update[0]


async def test_one_chat_in_order_while_other_chats_go_ahead() -> None:
    processor = PerChatUpdateProcessor(4, key=by_chat)
    done: list[tuple[str, int]] = []
    release_a1 = asyncio.Event()

    async def handle(update: tuple[str, int]) -> None:
        if update == ("a", 1):
            await release_a1.wait()
        else:
            await asyncio.sleep(0)
        done.append(update)

    updates = [("a", 1), ("a", 2), ("b", 1), ("a", 3), ("b", 2)]
    # As PTB does it: one task per update, created in arrival order.
    tasks = [asyncio.create_task(processor.process_update(u, handle(u))) for u in updates]
    await asyncio.sleep(0.01)
    assert done == [("b", 1), ("b", 2)]  # chat b did not wait for chat a
    assert processor.active_chats == 1
    release_a1.set()
    await asyncio.gather(*tasks)
    assert [u for u in done if u[0] == "a"] == [("a", 1), ("a", 2), ("a", 3)]
    assert processor.active_chats == 0  # no lock kept for idle chats


async def test_concurrency_is_bounded_across_chats() -> None:
    processor = PerChatUpdateProcessor(3, key=by_chat)
    running = peak = 0

    async def handle() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1

    await asyncio.gather(*(processor.process_update((chat, 0), handle()) for chat in range(20)))
    assert peak == 3


async def test_a_cancelled_waiter_leaves_no_lock_and_no_warning() -> None:
    processor = PerChatUpdateProcessor(2, key=by_chat)
    gate = asyncio.Event()

    async def first() -> None:
        await gate.wait()

    async def second() -> None:
        raise AssertionError("must not run")

    running = asyncio.create_task(processor.process_update(("c", 1), first()))
    waiting = asyncio.create_task(processor.process_update(("c", 2), second()))
    await asyncio.sleep(0.01)
    waiting.cancel()
    gate.set()
    await running
    assert waiting.cancelled()
    assert processor.active_chats == 0
