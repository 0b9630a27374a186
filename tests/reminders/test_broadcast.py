"""Admin broadcasts with a fake sender: audiences, preview, delivery, cancel, resume."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.domain.audience import Audience, Content
from bot.i18n import plain_text, translator_for
from bot.reminders.broadcast import (
    BroadcastReport,
    EmptyAudience,
    UnknownInsurer,
    broadcasts_text,
    progress_message,
)
from bot.reminders.cli import _print_report
from bot.reminders.delivery import Progress
from bot.reminders.sending import Blocked, Rejected, RetryLater, SenderUnavailable, Transient
from bot.reminders.service import ReminderService
from bot.store.broadcasts import BroadcastStatus
from bot.store.database import Database
from bot.store.locks import exclusive
from bot.store.setup import open_store
from tests.reminders.conftest import TODAY, FakeSender, add_policy, identity, subscribe

TEXT = "تنبيه: تحديث مهم لخدمة التحقق من التأمين."


async def population(service: ReminderService, db: Database) -> None:
    """Chat 1: a family (expiring in 5 and 40 days, Bupa); chat 2: expiring in 20 days
    (Tawuniya); chat 3: expired; chat 4: no policy; chat 5: stopped."""
    plan = [
        (1, identity(1), 5, "BUPA"),
        (1, identity(2), 40, "BUPA"),
        (2, identity(3), 20, "TAWUNIYA"),
        (3, identity(4), -3, "BUPA"),
        (5, identity(6), 5, "BUPA"),
    ]
    for chat, digits, days, insurer in plan:
        await add_policy(db, digits, expiry=TODAY + timedelta(days=days), insurer=insurer)
        await subscribe(service, chat, digits, locale="en" if chat == 2 else "ar")
    await subscribe(service, 4, identity(5))
    await service.subscriptions.unsubscribe_all("telegram", 5)


@pytest.mark.parametrize(
    ("audience", "per_chat", "per_subscription"),
    [
        ("all", 4, 4),  # template: chat 4 has no policy to talk about
        ("expiring:30", 2, 2),
        ("expiring:7", 1, 1),
        ("expired", 1, 1),
        ("insurer:BUPA", 2, 3),
        ("insurer:MALATH", 0, 0),
    ],
)
async def test_audiences_count_active_subscribers_only(
    service: ReminderService, store: Database, audience: str, per_chat: int, per_subscription: int
) -> None:
    await population(service, store)
    text = await service.broadcasts.preview(
        Audience.parse(audience), Content.custom("x"), today=TODAY
    )
    template = await service.broadcasts.preview(
        Audience.parse(audience), Content.expiry_template(), today=TODAY
    )
    assert (text.recipients, template.recipients) == (per_chat, per_subscription)


async def test_preview_shows_exactly_what_the_first_recipient_sees(
    service: ReminderService, store: Database
) -> None:
    await population(service, store)
    preview = await service.broadcasts.preview(Audience.all(), Content.custom(TEXT), today=TODAY)
    assert preview.sample is not None and preview.sample_locale == "ar"
    assert preview.sample.text == TEXT
    assert [[(b.label, b.data) for b in row] for row in preview.sample.buttons] == [
        [("إيقاف كل التذكيرات", "stop_all")]
    ]
    preview = await service.broadcasts.preview(
        Audience.parse("insurer:TAWUNIYA"), Content.expiry_template(), today=TODAY
    )
    assert preview.sample is not None and preview.sample_locale == "en"
    assert "expires in 20 days" in plain_text(preview.sample.text)
    assert preview.sample.buttons[0][0].data.startswith("stop_sub:")


async def test_unknown_insurer_and_empty_audience_record_nothing(
    service: ReminderService, store: Database
) -> None:
    await population(service, store)
    with pytest.raises(UnknownInsurer):
        await service.broadcasts.preview(Audience.by_insurer("NOPE"), Content.custom("x"))
    with pytest.raises(EmptyAudience):
        await service.broadcasts.create(
            Audience.by_insurer("MALATH"), Content.custom("x"), "telegram:1", today=TODAY
        )
    assert await service.broadcasts.recent() == []


async def test_a_typed_text_goes_once_per_chat_and_is_recorded(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await population(service, store)
    seen: list[Progress] = []

    async def on_progress(p: Progress) -> None:
        seen.append(p)

    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "telegram:42", today=TODAY
    )
    report = await service.broadcasts.run(broadcast_id, on_progress)
    assert report.outcome == "done"
    assert sorted(c for c, _ in sender.sent) == ["1", "2", "3", "4"]
    assert sender.to(2)[0].buttons[0][0].label == "Stop all reminders"  # recipient's language
    s = report.summary
    assert (s.total, s.sent, s.failed, s.blocked, s.skipped, s.remaining) == (4, 4, 0, 0, 0, 0)
    assert (s.created_by, str(s.audience), s.content.text, s.status) == (
        "telegram:42",
        "all",
        TEXT,
        BroadcastStatus.DONE,
    )
    assert seen and seen[-1].sent == 4 and seen[-1].remaining == 0
    tr = translator_for("ar")
    assert "اكتملت الرسالة الجماعية رقم" in report.text(tr)
    assert "أُرسلت: 4" in plain_text(progress_message(broadcast_id, seen[-1], tr))
    listing = plain_text(
        broadcasts_text(await service.broadcasts.recent(), tr, service.settings.app.tz)
    )
    assert "كل المشتركين" in listing and "أُرسلت 4 من 4" in listing


async def test_the_template_is_personal_one_per_number(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await population(service, store)
    broadcast_id = await service.broadcasts.create(
        Audience.parse("insurer:BUPA"), Content.expiry_template(), "cli:op", today=TODAY
    )
    await service.broadcasts.run(broadcast_id)
    family = sender.texts(1)
    assert len(family) == 2
    assert any("بعد 5 أيام" in t for t in family) and any("بعد 40 يومًا" in t for t in family)
    [expired] = sender.texts(3)
    assert "منذ 3 أيام" in expired


async def test_blocked_users_are_recorded_and_their_other_messages_skipped(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await population(service, store)
    sender.always["1"] = Blocked("Forbidden: bot was blocked by the user")
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.expiry_template(), "cli:op", today=TODAY
    )
    report = await service.broadcasts.run(broadcast_id)
    s = report.summary
    assert (s.sent, s.blocked, s.skipped) == (2, 1, 1)
    assert await service.subscriptions.list_for_chat("telegram", 1) == []


async def test_opt_out_just_before_sending_is_honoured(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await population(service, store)
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    await service.subscriptions.unsubscribe_all("telegram", 3)  # /stop after the confirm
    report = await service.broadcasts.run(broadcast_id)
    assert report.summary.skipped == 1 and "3" not in [c for c, _ in sender.sent]


async def test_failures_are_retried_bounded_and_recorded_with_the_reason(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await population(service, store)
    sender.fail["1"] = [Transient("timed out"), RetryLater(0.02)]
    sender.always["2"] = Transient("Bad Gateway")
    sender.always["3"] = Rejected("Bad Request: message is too long")
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    report = await service.broadcasts.run(broadcast_id)
    s = report.summary
    assert (s.sent, s.failed) == (2, 2)
    reasons = dict(await service.broadcasts.store.failure_reasons(broadcast_id))
    assert reasons == {"Bad Gateway (3 attempts)": 1, "Bad Request: message is too long": 1}
    attempts = await store.read(
        "SELECT chat_id, attempts FROM broadcast_recipients ORDER BY chat_id"
    )
    # 429s are not attempts: the message waits with everyone, then goes first.
    assert dict((r[0], r[1]) for r in attempts) == {"1": 2, "2": 3, "3": 1, "4": 1}


async def test_cancel_stops_a_running_broadcast(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    for i in range(30):
        await subscribe(service, 100 + i, identity(100 + i))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )

    async def cancel_after_first(chat_id: str) -> None:
        if chat_id == "100":
            await service.broadcasts.cancel(broadcast_id)
        await asyncio.sleep(0.005)

    sender.before_send = cancel_after_first
    report = await service.broadcasts.run(broadcast_id)
    assert report.outcome == "cancelled"
    s = report.summary
    assert s.status is BroadcastStatus.CANCELLED
    assert 1 <= s.sent < 30 and s.sent + s.skipped == 30 and s.remaining == 0


async def test_an_interrupted_broadcast_resumes_without_losing_or_repeating_anyone(
    service: ReminderService,
    store: Database,
    sender: FakeSender,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for i in range(40):
        await subscribe(service, 200 + i, identity(200 + i))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    # The runs' clock: each message takes half a second, nothing else takes any time.
    now = [1000.0]
    service.broadcasts.monotonic = lambda: now[0]

    async def half_a_second(chat_id: str) -> None:
        now[0] += 0.5

    async def stop_midway(chat_id: str) -> None:
        await half_a_second(chat_id)
        if chat_id == "210":
            service.deliverer.stop_all()  # as at shutdown

    sender.before_send = stop_midway
    first = await service.broadcasts.run(broadcast_id)
    assert first.outcome == "interrupted" and 0 < first.summary.remaining < 40
    assert first.sent_this_run == first.summary.sent == len(sender.sent)
    assert first.took_seconds == 0.5 * len(sender.sent) and first.rate == 2.0
    # Simulate a crash with one message in flight: its row is left `sending`.
    await store.write(
        "UPDATE broadcast_recipients SET status = 'sending' WHERE broadcast_id = ? AND seq = ("
        "SELECT min(seq) FROM broadcast_recipients WHERE status = 'pending')",
        (broadcast_id,),
    )
    sender.before_send = half_a_second
    reports: list[BroadcastReport] = []

    async def on_report(report: BroadcastReport) -> None:
        reports.append(report)

    resumed = await service.broadcasts.resume_unfinished(on_report=on_report)
    assert [r.outcome for r in resumed] == ["done"] and reports == resumed
    s = resumed[0].summary
    assert (s.sent, s.resent, s.remaining) == (40, 1, 0)
    chats = [c for c, _ in sender.sent]
    assert sorted(set(chats)) == sorted(str(200 + i) for i in range(40))
    assert len(chats) == 40  # the in-flight one had not really gone out here

    # The report's rate is the resumed run's own: what it sent over the time it took
    # (not all 40 over this run's time).
    report = resumed[0]
    this_run = 40 - first.summary.sent
    assert report.sent_this_run == this_run and report.took_seconds == 0.5 * this_run
    assert report.rate == 2.0
    capsys.readouterr()
    await _print_report(service, report)
    took = capsys.readouterr().out.splitlines()[2]
    assert took == f"Took {0.5 * this_run:.1f} s; this run sent {this_run} (2.0 messages/s)."
    assert await service.broadcasts.resume_unfinished() == []


async def test_a_broadcast_another_process_leads_is_joined_and_closed_by_its_leader(
    service: ReminderService, sender: FakeSender, fast_settings: Settings
) -> None:
    for chat in (300, 301, 302):
        await subscribe(service, chat, identity(chat))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    async with (
        await open_store(fast_settings) as elsewhere,  # another instance, or the CLI
        exclusive(elsewhere, f"broadcast:{broadcast_id}") as leading,
    ):
        assert leading
        report = await service.broadcasts.run(broadcast_id)
        # It claimed from the same list and sent; the end is the leader's to report.
        assert report.outcome == "joined"
        assert sorted(chat for chat, _ in sender.sent) == ["300", "301", "302"]
        assert report.summary.status is BroadcastStatus.RUNNING
        assert await service.broadcasts.resume_unfinished() == []  # joined again: no report
    report = await service.broadcasts.run(broadcast_id)  # this process leads now
    assert report.outcome == "done" and report.summary.sent == 3 and len(sender.sent) == 3


async def test_an_unusable_sender_stops_the_run_and_keeps_everyone_pending(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    for i in range(5):
        await subscribe(service, 400 + i, identity(400 + i))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    sender.fail["400"] = [SenderUnavailable("Unauthorized")]
    report = await service.broadcasts.run(broadcast_id)
    assert report.outcome == "interrupted"
    assert report.summary.sent + report.summary.remaining == 5
    assert (await service.broadcasts.run(broadcast_id)).summary.sent == 5


async def test_background_broadcast_and_stop(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    for i in range(10):
        await subscribe(service, 500 + i, identity(500 + i))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    reports: list[BroadcastReport] = []

    async def on_report(report: BroadcastReport) -> None:
        reports.append(report)

    task = service.start_broadcast(broadcast_id, on_report=on_report)
    await task
    assert reports[0].outcome == "done" and len(sender.sent) == 10
    await service.stop()


async def test_a_resume_sweep_leaves_a_just_created_broadcast_to_its_creator(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await subscribe(service, 600, identity(600))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "telegram:1", today=TODAY, progress_ref="600:9"
    )
    assert await service.broadcasts.resume_unfinished() == []
    report = await service.broadcasts.run(broadcast_id)
    assert report.outcome == "done" and report.summary.progress_ref == "600:9"


async def test_after_shutdown_no_new_delivery_starts(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await subscribe(service, 700, identity(700))
    broadcast_id = await service.broadcasts.create(
        Audience.all(), Content.custom(TEXT), "cli:op", today=TODAY
    )
    await service.stop()
    report = await service.broadcasts.run(broadcast_id)
    assert report.outcome == "interrupted" and sender.sent == []
