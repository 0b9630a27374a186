"""The daily pass: thresholds, catch-up, renewal, idempotency, opt-out, failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from bot.reminders.reminder_pass import ReminderReport
from bot.reminders.sending import Blocked, RetryLater, Transient
from bot.reminders.service import ReminderService
from bot.reminders.texts import STOP_SUB_PREFIX
from bot.store.database import Database
from tests.reminders.conftest import TODAY, FakeSender, add_policy, identity, subscribe

EXPIRY = TODAY + timedelta(days=30)


def days_before(expiry: date, days: int) -> date:
    return expiry - timedelta(days=days)


async def run(service: ReminderService, day: date) -> ReminderReport:
    report = await service.reminder_pass.run(day)
    assert not report.busy
    return report


async def statuses(db: Database) -> list[tuple[int, str, int, str, str | None]]:
    rows = await db.read(
        "SELECT subscription_id, expiry_date, threshold, status, reason FROM reminders "
        "ORDER BY subscription_id, expiry_date, threshold DESC"
    )
    return [tuple(r) for r in rows]


async def test_one_reminder_per_threshold_and_one_on_the_expiry_day(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    digits = identity(1)
    await add_policy(store, digits, expiry=EXPIRY)
    sub = await subscribe(service, 100, digits)
    texts_by_day = {}
    for offset in range(0, 33):  # every day from 30 days before to 2 days after
        day = days_before(EXPIRY, 30 - offset)
        before = len(sender.sent)
        await run(service, day)
        texts_by_day.update({day: sender.texts(100)[before:]})
    sent_on = {d: t for d, t in texts_by_day.items() if t}
    assert list(sent_on) == [days_before(EXPIRY, n) for n in (30, 7, 1, 0)]
    assert "بعد 30 يومًا" in sent_on[days_before(EXPIRY, 30)][0]
    assert "بعد 7 أيام" in sent_on[days_before(EXPIRY, 7)][0]
    assert "بعد يوم واحد" in sent_on[days_before(EXPIRY, 1)][0]
    assert "آخر يوم لسريان" in sent_on[EXPIRY][0]
    # Masked number, insurer, Hijri and Gregorian date; never the raw number.
    first = sent_on[days_before(EXPIRY, 30)][0]
    assert "1*******" + digits[-2:] in first and digits not in first
    assert "بوبا العربية" in first and "هـ" in first and "2026" in first
    # Every reminder carries the stop button for its own subscription.
    for message in sender.to(100):
        [[button]] = message.buttons
        assert button.data == f"{STOP_SUB_PREFIX}{sub}"


async def test_running_twice_the_same_day_sends_nothing_new(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    for i in range(3):
        await add_policy(store, identity(i), expiry=TODAY + timedelta(days=7))
        await subscribe(service, 200 + i, identity(i))
    first = await run(service, TODAY)
    assert first.due == {7: 3} and first.result is not None and first.result.progress.sent == 3
    second = await run(service, TODAY)
    assert second.due == {} and second.already_done == 3
    assert len(sender.sent) == 3
    assert "3 already sent earlier" in second.summary()


async def test_catch_up_sends_only_the_nearest_due_threshold(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=EXPIRY)
    await subscribe(service, 300, identity(1))
    # The bot was down from 30 days before until 5 days before: no stale 30-day reminder.
    report = await run(service, days_before(EXPIRY, 5))
    assert report.due == {7: 1}
    [text] = sender.texts(300)
    assert "بعد 5 أيام" in text  # the message says how many days are really left
    await run(service, days_before(EXPIRY, 4))
    assert len(sender.sent) == 1
    await run(service, days_before(EXPIRY, 1))
    assert len(sender.sent) == 2


async def test_a_stale_queued_reminder_is_superseded_by_the_nearer_one(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=EXPIRY)
    sub = await subscribe(service, 310, identity(1))
    # A 30-day reminder queued on its day but never delivered (the process died, then stayed
    # down for weeks).
    await service.reminder_pass.log.schedule(
        days_before(EXPIRY, 30), [(sub, EXPIRY.isoformat(), 30)]
    )
    await run(service, days_before(EXPIRY, 6))
    assert len(sender.sent) == 1 and "بعد 6 أيام" in sender.texts(310)[0]
    rows = await statuses(store)
    assert [(r[2], r[3], r[4]) for r in rows] == [(30, "skipped", "superseded"), (7, "sent", None)]


async def test_a_renewal_moves_reminders_to_the_new_date(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    digits = identity(1)
    await add_policy(store, digits, expiry=EXPIRY, number="2026")
    await subscribe(service, 400, digits)
    await run(service, days_before(EXPIRY, 7))
    assert len(sender.sent) == 1
    renewed = EXPIRY + timedelta(days=365)
    await add_policy(store, digits, expiry=renewed, number="2027")
    for n in (1, 0):  # nothing more about the old date
        await run(service, days_before(EXPIRY, n))
    assert len(sender.sent) == 1
    await run(service, days_before(renewed, 30))
    assert len(sender.sent) == 2 and "بعد 30 يومًا" in sender.texts(400)[1]
    # Same when the insurer updates the same policy number in place.
    await add_policy(store, digits, expiry=renewed + timedelta(days=365), number="2027")
    await run(service, days_before(renewed, 7))
    assert len(sender.sent) == 2


async def test_subscribing_after_a_threshold_waits_for_the_next_one(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=EXPIRY)
    consent_day = days_before(EXPIRY, 20)
    await subscribe(
        service, 500, identity(1), at=datetime.combine(consent_day, time(12), tzinfo=UTC)
    )
    await run(service, consent_day)
    await run(service, consent_day + timedelta(days=1))
    assert sender.sent == []
    await run(service, days_before(EXPIRY, 7))
    assert len(sender.sent) == 1


async def test_expired_cancelled_and_stopped_get_nothing(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY - timedelta(days=1))
    await add_policy(store, identity(2), expiry=TODAY + timedelta(days=7), status="cancelled")
    await add_policy(store, identity(3), expiry=TODAY + timedelta(days=7))
    await subscribe(service, 601, identity(1))
    await subscribe(service, 602, identity(2))
    stopped = await subscribe(service, 603, identity(3))
    await subscribe(service, 604, identity(4))  # no policy at all
    await service.subscriptions.unsubscribe(stopped, "telegram", 603)
    report = await run(service, TODAY)
    assert report.due == {} and sender.sent == []


async def test_a_family_gets_one_reminder_per_number_each_with_its_own_stop_button(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    subs = []
    for i in range(3):
        await add_policy(store, identity(i), expiry=TODAY + timedelta(days=7), insurer="MALATH")
        subs.append(await subscribe(service, 700, identity(i), locale="en"))
    await run(service, TODAY)
    messages = sender.to(700)
    assert sorted(m.buttons[0][0].data for m in messages) == sorted(f"stop_sub:{s}" for s in subs)
    assert all("expires in 7\u00a0days" in m.text and "Malath" in m.text for m in messages)
    assert all(m.buttons[0][0].label == "Stop these reminders" for m in messages)


async def test_blocked_chat_is_recorded_and_its_subscriptions_stop(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    for i, chat in enumerate((801, 801, 802)):
        await add_policy(store, identity(i), expiry=TODAY + timedelta(days=7))
        await subscribe(service, chat, identity(i))
    sender.always["801"] = Blocked("Forbidden: bot was blocked by the user")
    report = await run(service, TODAY)
    assert report.result is not None
    progress = report.result.progress
    # The first message to 801 finds the block; the second is skipped as opted out.
    assert (progress.sent, progress.blocked, progress.skipped) == (1, 1, 1)
    assert await service.subscriptions.list_for_chat("telegram", 801) == []
    await run(service, TODAY + timedelta(days=6))
    assert sender.calls == 3  # the blocked chat is never tried again


async def test_opt_out_is_rechecked_just_before_sending(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    await add_policy(store, identity(2), expiry=TODAY + timedelta(days=7))
    first = await subscribe(service, 901, identity(1))
    await subscribe(service, 902, identity(2))
    log = service.reminder_pass.log
    schedule = log.schedule

    async def schedule_then_stop(day: date, due: list[tuple[int, str, int]]) -> None:
        await schedule(day, due)
        # 902 presses /stop after the pass has queued its reminder, before it goes out.
        await service.subscriptions.unsubscribe_all("telegram", 902)

    log.schedule = schedule_then_stop  # type: ignore[method-assign]
    await run(service, TODAY)
    assert [c for c, _ in sender.sent] == ["901"]
    rows = await statuses(store)
    assert rows[0][0] == first and rows[0][3] == "sent"
    assert rows[1][3:] == ("skipped", "opted out")


async def test_network_errors_are_retried_then_recorded_and_retried_next_day(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    await add_policy(store, identity(2), expiry=TODAY + timedelta(days=7))
    await subscribe(service, 1001, identity(1))
    await subscribe(service, 1002, identity(2))
    sender.fail["1001"] = [Transient("timed out"), Transient("Bad Gateway")]
    sender.always["1002"] = Transient("Internal Server Error (500)")
    report = await run(service, TODAY)
    assert report.result is not None
    assert (report.result.progress.sent, report.result.progress.failed) == (1, 1)
    rows = await store.read(
        "SELECT attempts, status, reason FROM reminders ORDER BY subscription_id"
    )
    assert [tuple(r) for r in rows] == [
        (3, "sent", None),
        (3, "failed", "Internal Server Error (500) (3 attempts)"),
    ]
    del sender.always["1002"]
    await run(service, TODAY + timedelta(days=1))  # still the 7-day threshold: tried again
    assert len(sender.to(1002)) == 1


async def test_flood_control_pauses_and_the_message_still_goes(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    await subscribe(service, 1101, identity(1))
    sender.fail["1101"] = [RetryLater(0.05)]
    report = await run(service, TODAY)
    assert report.result is not None and report.result.progress.sent == 1
    assert sender.calls == 2


async def test_dry_run_counts_and_touches_nothing(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    await add_policy(store, identity(2), expiry=TODAY + timedelta(days=30))
    await subscribe(service, 1201, identity(1))
    await subscribe(service, 1202, identity(2))
    report = await service.reminder_pass.run(TODAY, dry_run=True)
    assert report.due == {30: 1, 7: 1} and report.dry_run
    assert "2 would send (30 days: 1, 7 days: 1)" in report.summary()
    assert sender.calls == 0 and await statuses(store) == []


async def test_a_message_in_flight_when_the_process_died_is_sent_again(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    sub = await subscribe(service, 1301, identity(1))
    log = service.reminder_pass.log
    await log.schedule(TODAY, [(sub, (TODAY + timedelta(days=7)).isoformat(), 7)])
    await store.write("UPDATE reminders SET status = 'sending'")  # the crash
    report = await run(service, TODAY)
    assert report.resent == 1 and len(sender.sent) == 1
    assert "in flight" in report.summary()


async def test_catch_up_at_start_up_only_after_reminder_time_and_once(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    await add_policy(store, identity(1), expiry=TODAY + timedelta(days=7))
    await subscribe(service, 1401, identity(1))
    riyadh_0800 = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    assert await service.reminder_pass.run_if_due(riyadh_0800) is None
    riyadh_1000 = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    report = await service.reminder_pass.run_if_due(riyadh_1000)
    assert report is not None and report.day == TODAY and len(sender.sent) == 1
    assert await service.reminder_pass.run_if_due(riyadh_1000) is None


async def test_two_runs_at_once_never_send_twice(
    service: ReminderService, store: Database, sender: FakeSender
) -> None:
    for i in range(20):
        await add_policy(store, identity(i), expiry=TODAY + timedelta(days=1))
        await subscribe(service, 1500 + i, identity(i))
    import asyncio

    reports = await asyncio.gather(run_any(service, TODAY), run_any(service, TODAY))
    assert sorted(r.busy for r in reports) == [False, True]
    assert len(sender.sent) == 20


async def run_any(service: ReminderService, day: date) -> ReminderReport:
    return await service.reminder_pass.run(day)
