"""Broadcasts on WhatsApp end to end: the bot's core with its real HTTP app and SQLite, bulk
messages through the Graph API client to the fake, which refuses on demand and records when
each attempt arrived.

Pacing runs on a virtual clock shared with the fake (tests/fakes/virtual_clock.py): a 6 s gap
or a 2 s pause costs no wall time, and what is checked is the fake's record of virtual arrival
times, counted (how many in any second), never measured against a wall clock.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
import time_machine

from bot.domain.audience import Audience, ChannelChoice, Content
from bot.i18n import plain_text, strip_isolates, translator_for
from bot.reminders.broadcast import BroadcastReport
from bot.reminders.cli import _print_report
from bot.store.subscriptions import OUTSIDE_WINDOW
from tests.conftest import BEFORE_RIYADH_MIDNIGHT, on_both_backends
from tests.fakes.fake_graph_api import Attempt, FakeGraphAPI
from tests.fakes.virtual_clock import VirtualClock
from tests.reminders.conftest import add_policy, identity
from tests.whatsapp.stack import Stack, StoreSettings, eventually

# The window, the receipts and the refusals are store work: run them on both backends.
backend = on_both_backends()

AR = translator_for("ar")
TEXT = "تنبيه: تتوقف خدمة الاستعلام للصيانة مساء الخميس."
A, B, C = "966500000101", "966500000102", "966500000103"
HOUR = 3600.0


async def policies(stack: Stack, *indexes: int) -> None:
    # Far from any reminder threshold: the start-up sweep's reminder pass sends nothing.
    far = date.today() + timedelta(days=200)
    for index in indexes:
        await add_policy(stack.runtime.db, identity(index), expiry=far)


async def broadcast(stack: Stack, content: Content) -> BroadcastReport:
    runner = stack.core.reminders.broadcasts
    broadcast_id = await runner.create(
        Audience.all(), content, "cli:test", channel=ChannelChoice.WHATSAPP
    )
    return await runner.run(broadcast_id)


def bulk(graph: FakeGraphAPI, kind: str = "text") -> list[Attempt]:
    """Attempts of bulk messages (conversation replies are lists and buttons)."""
    return [attempt for attempt in graph.attempts if attempt.type == kind]


def delivered(attempts: list[Attempt]) -> Counter[str]:
    return Counter(attempt.to for attempt in attempts if attempt.code == 0)


def busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(bisect.bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps))


# ------------------------------------------------------------------- the 24-hour window


async def test_a_typed_broadcast_skips_those_outside_the_24_hour_window(
    store_settings: StoreSettings,
    frozen_clock: time_machine.Traveller,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with FakeGraphAPI() as graph, Stack(store_settings, graph) as stack:
        await policies(stack, 1, 2)
        await stack.subscribe(A, 1)
        await stack.subscribe(B, 2)
        # A wrote 25 hours ago, B 23 hours ago, each through the webhook.
        frozen_clock.move_to(BEFORE_RIYADH_MIDNIGHT - timedelta(hours=25))
        await stack.say(A, "مرحبا")
        frozen_clock.move_to(BEFORE_RIYADH_MIDNIGHT - timedelta(hours=23))
        await stack.say(B, "مرحبا")
        frozen_clock.move_to(BEFORE_RIYADH_MIDNIGHT)

        report = await broadcast(stack, Content.custom(TEXT))

        assert [seen.text for seen in graph.sent_to(B) if seen.type == "text"] == [TEXT]
        assert [a.to for a in bulk(graph)] == [B]  # A was not even tried
        s = report.summary
        assert (s.total, s.sent, s.failed, s.skipped, s.outside_window) == (2, 1, 0, 1, 1)
        rows = await stack.runtime.db.read(
            "SELECT chat_id, status, reason FROM broadcast_recipients ORDER BY chat_id"
        )
        assert [tuple(r) for r in rows] == [(A, "skipped", OUTSIDE_WINDOW), (B, "sent", None)]
        lines = plain_text(report.text(AR)).splitlines()
        assert "خارج نافذة واتساب (لم يراسلوا البوت خلال 24 ساعة): 1" in lines
        # Neither failed nor stopped reminders.
        for line in ("Failed: {count}", "Skipped (stopped reminders): {count}"):
            assert plain_text(AR._(line, count=0)) in lines
        await _print_report(stack.core.reminders, report)
        out = capsys.readouterr().out
        assert "failed 0" in out and "Outside WhatsApp's 24-hour window (not sent): 1." in out


async def test_the_window_is_judged_when_the_message_goes_not_when_the_broadcast_is_made(
    store_settings: StoreSettings, frozen_clock: time_machine.Traveller
) -> None:
    async with FakeGraphAPI() as graph, Stack(store_settings, graph) as stack:
        await policies(stack, 1)
        await stack.subscribe(A, 1)
        await stack.wrote(A, 30 * HOUR)
        runner = stack.core.reminders.broadcasts
        broadcast_id = await runner.create(Audience.all(), Content.custom(TEXT), "cli:test")
        await stack.say(A, "مرحبا")  # writes after the broadcast was confirmed, before it goes
        report = await runner.run(broadcast_id)
        assert report.summary.sent == 1 and report.summary.outside_window == 0
        assert [a.to for a in bulk(graph)] == [A]


# ------------------------------------------------------------------- Meta's refusals


@pytest.fixture
async def paced(store_settings: StoreSettings) -> AsyncIterator[Stack]:
    """Two messages a second on WhatsApp, on a virtual clock: A, B and C, inside the window."""
    clock = VirtualClock()
    async with (
        FakeGraphAPI(clock=clock) as graph,
        Stack(store_settings, graph, clock=clock, rate=2) as stack,
        clock.running(),
    ):
        await policies(stack, 1, 2, 3, 4)
        await stack.subscribe(A, 1)
        await stack.subscribe(B, 2, 3)
        await stack.subscribe(C, 4)
        for chat in (A, B, C):
            await stack.wrote(chat)
        yield stack


async def test_130429_pauses_all_whatsapp_sending_then_retries(paced: Stack) -> None:
    graph = paced.graph
    graph.inject_error("messages", code=130429, to=B)
    report = await broadcast(paced, Content.custom(TEXT))

    s = report.summary
    assert (s.total, s.sent, s.failed, s.blocked, s.skipped) == (3, 3, 0, 0, 0)
    attempts = bulk(graph)
    assert delivered(attempts) == {A: 1, B: 1, C: 1}
    [refused] = [a for a in attempts if a.code == 130429]
    assert refused.to == B
    # Nobody was sent anything in the 2 s after it, not only B.
    later = attempts[attempts.index(refused) + 1 :]
    assert {a.to for a in later} == {B, C}
    assert all(a.at >= refused.at + 2.0 - 1e-9 for a in later)


async def test_131056_retries_that_recipient_6_s_later_and_the_others_go_on(paced: Stack) -> None:
    graph = paced.graph
    graph.inject_error("messages", code=131056, to=B)
    report = await broadcast(paced, Content.custom(TEXT))

    s = report.summary
    assert (s.total, s.sent, s.failed) == (3, 3, 0)
    attempts = bulk(graph)
    assert delivered(attempts) == {A: 1, B: 1, C: 1}
    refused, retried = graph.attempts_to(B)
    assert (refused.code, retried.code) == (131056, 0)
    assert retried.at >= refused.at + 6.0 - 1e-9
    [to_c] = graph.attempts_to(C)
    assert refused.at < to_c.at < refused.at + 6.0 and to_c.at < retried.at  # C did not wait


async def test_131026_blocks_the_recipient_and_stops_their_subscriptions(paced: Stack) -> None:
    graph = paced.graph
    graph.inject_error("messages", code=131026, to=B)
    report = await broadcast(paced, Content.expiry_template())  # one per number: B has two

    s = report.summary
    assert (s.total, s.sent, s.failed, s.blocked, s.skipped) == (4, 2, 0, 1, 1)
    assert delivered(bulk(graph, "template")) == {A: 1, C: 1}
    assert [a.code for a in graph.attempts_to(B)] == [131026]  # B's second number not tried
    rows = await paced.runtime.db.read(
        "SELECT active, stop_reason FROM subscriptions WHERE chat_id = ?", (B,)
    )
    assert [tuple(r) for r in rows] == [(0, "blocked"), (0, "blocked")]
    assert len(await paced.core.reminders.subscriptions.list_for_chat("whatsapp", A)) == 1


# ------------------------------------------------------------------- pace


async def test_pace_six_seconds_per_person_and_never_above_whatsapp_rate(
    store_settings: StoreSettings,
) -> None:
    rate, chats, numbers = 5, 12, 3
    clock = VirtualClock()
    async with (
        FakeGraphAPI(clock=clock) as graph,
        Stack(store_settings, graph, clock=clock, rate=rate) as stack,
        clock.running(),
    ):
        people = [f"9665001002{i:02d}" for i in range(chats)]
        for i, wa_id in enumerate(people):
            indexes = [10 + i * numbers + k for k in range(numbers)]
            await policies(stack, *indexes)
            await stack.subscribe(wa_id, *indexes)  # a family: three reminders each
        report = await broadcast(stack, Content.expiry_template())

    assert report.summary.sent == chats * numbers
    attempts = bulk(graph, "template")
    assert delivered(attempts) == dict.fromkeys(people, numbers)
    for wa_id in people:
        stamps = [a.at for a in attempts if a.to == wa_id]
        # (to a float's rounding: 6.2 - 0.2 is 5.999...)
        assert all(b - a >= 6.0 - 1e-9 for a, b in itertools.pairwise(stamps)), (wa_id, stamps)
    assert busiest_second([a.at for a in attempts]) <= rate


# ------------------------------------------------------------------- status webhooks


async def test_status_webhooks_update_the_delivery_record_and_never_reply(
    store_settings: StoreSettings,
) -> None:
    async with FakeGraphAPI() as graph, Stack(store_settings, graph) as stack:
        await policies(stack, 1, 2)
        await stack.subscribe(A, 1)
        await stack.subscribe(B, 2)
        await stack.wrote(A)
        await stack.wrote(B)
        await broadcast(stack, Content.custom(TEXT))
        wamid = {a.to: a.id for a in bulk(graph) if a.code == 0}
        before = len(graph.attempts), len(graph.calls)

        post = graph.status_webhook(
            graph.status(wamid[A], "failed", A, code=131026),
            graph.status(wamid[B], "read", B),
            graph.status(wamid[B], "delivered", B),  # late: never moves the record back
            graph.status(wamid[B], "sent", B),
            graph.status("wamid.UNKNOWN", "failed", A, code=131000),
            {"id": 5, "status": "failed"},
            {"status": "read"},
            {"id": wamid[A], "status": "exploded"},
            {"id": wamid[A], "status": "failed", "errors": "none"},
            "not an object",  # type: ignore[arg-type]
        )
        assert await stack.post(post) == 200
        await stack.whatsapp.inbox.idle()

        rows = await stack.runtime.db.read(
            "SELECT chat_id, status, message_id, receipt, receipt_code "
            "FROM broadcast_recipients ORDER BY chat_id"
        )
        assert [tuple(r) for r in rows] == [
            (A, "sent", wamid[A], "failed", 131026),
            (B, "sent", wamid[B], "read", None),
        ]
        # 131026 after the fact stops A's reminders, as it does when the send is refused.
        assert await stack.core.reminders.subscriptions.list_for_chat("whatsapp", A) == []
        assert len(await stack.core.reminders.subscriptions.list_for_chat("whatsapp", B)) == 1
        assert (len(graph.attempts), len(graph.calls)) == before  # no reply, no read receipt
        await eventually(lambda: not stack.whatsapp.inbox._tasks)


async def test_a_refused_token_stops_the_broadcast_with_one_line_for_the_operator(
    store_settings: StoreSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeGraphAPI() as graph, Stack(store_settings, graph) as stack:
        await policies(stack, 1, 2)
        await stack.subscribe(A, 1)
        await stack.subscribe(B, 2)
        graph.inject_error("messages", code=190, status=401, times=10)
        report = await broadcast(stack, Content.expiry_template())

        assert report.outcome == "interrupted"
        assert report.stopped_because is not None
        assert "set a valid WHATSAPP_ACCESS_TOKEN" in report.stopped_because
        rows = await stack.runtime.db.read("SELECT status FROM broadcast_recipients")
        assert {str(r[0]) for r in rows} == {"pending"}  # nobody lost: all there to resume
        assert f"توقّف الإرسال: {report.stopped_because}" in strip_isolates(report.text(AR))
        await _print_report(stack.core.reminders, report)
        stopped = [line for line in capsys.readouterr().out.splitlines() if "Stopped" in line]
        assert stopped == [f"Stopped: {report.stopped_because}"]
