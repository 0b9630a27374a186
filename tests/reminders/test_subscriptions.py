from __future__ import annotations

from datetime import UTC, date, datetime

from bot.domain.identity import id_hmac
from bot.domain.subscriptions import SubscribeOutcome
from bot.reminders.service import ReminderService
from bot.store.database import Database
from bot.store.subscriptions import StopReason
from tests.conftest import TEST_KEY
from tests.reminders.conftest import add_policy, identity, subscribe

KEY = TEST_KEY.encode()


async def test_consent_is_recorded_with_time_channel_chat_identity_and_language(
    service: ReminderService, store: Database
) -> None:
    digits = identity(1)
    at = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    result = await service.subscriptions.subscribe(
        "telegram", 77, id_hmac(KEY, digits), "1*******xx", "en", now=at
    )
    assert result.outcome is SubscribeOutcome.SUBSCRIBED
    assert result.active_in_chat == 1 and result.limit == 5
    assert result.subscription_id is not None
    sub = await service.subscriptions.get(result.subscription_id)
    assert sub is not None
    assert (sub.channel, sub.chat_id, sub.locale, sub.consented_at) == ("telegram", "77", "en", at)
    assert sub.id_hmac == id_hmac(KEY, digits) and sub.active
    assert digits not in repr(sub)


async def test_same_number_again_is_already_and_follows_the_new_language(
    service: ReminderService,
) -> None:
    first = await subscribe(service, 5, identity(1), locale="ar")
    again = await service.subscriptions.subscribe(
        "telegram", "5", id_hmac(KEY, identity(1)), "m", "en"
    )
    assert again.outcome is SubscribeOutcome.ALREADY
    assert again.subscription_id == first
    sub = await service.subscriptions.get(first)
    assert sub is not None and sub.locale == "en"
    # Another chat may subscribe to the same number (two relatives).
    other = await service.subscriptions.subscribe(
        "telegram", 6, id_hmac(KEY, identity(1)), "m", "ar"
    )
    assert other.outcome is SubscribeOutcome.SUBSCRIBED


async def test_at_most_five_per_chat_then_a_clear_answer(service: ReminderService) -> None:
    ids = [await subscribe(service, 9, identity(i)) for i in range(5)]
    sixth = await service.subscriptions.subscribe(
        "telegram", 9, id_hmac(KEY, identity(5)), "m", "ar"
    )
    assert sixth.outcome is SubscribeOutcome.LIMIT_REACHED
    assert sixth.subscription_id is None and sixth.active_in_chat == 5
    assert await service.subscriptions.unsubscribe(ids[0], "telegram", 9)
    again = await service.subscriptions.subscribe(
        "telegram", 9, id_hmac(KEY, identity(5)), "m", "ar"
    )
    assert again.outcome is SubscribeOutcome.SUBSCRIBED


async def test_a_chat_can_only_stop_its_own_subscriptions(service: ReminderService) -> None:
    mine = await subscribe(service, 1, identity(1))
    assert not await service.subscriptions.unsubscribe(mine, "telegram", 2)  # forged button
    assert await service.subscriptions.unsubscribe(mine, "telegram", 1)
    assert not await service.subscriptions.unsubscribe(mine, "telegram", 1)  # already stopped
    stopped = await service.subscriptions.get(mine)
    assert stopped is not None and not stopped.active  # the consent record stays


async def test_stop_all_and_blocked_chats(service: ReminderService, store: Database) -> None:
    for i in range(3):
        await subscribe(service, 1, identity(i))
    await subscribe(service, 2, identity(9))
    assert await service.subscriptions.unsubscribe_all("telegram", 1) == 3
    assert await service.subscriptions.unsubscribe_all("telegram", 1) == 0
    assert await service.subscriptions.list_for_chat("telegram", 1) == []
    assert await service.subscriptions.deactivate_chat("telegram", 2) == 1
    rows = await store.read(
        "SELECT chat_id, stop_reason, stopped_at IS NOT NULL FROM subscriptions ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("1", StopReason.USER.value, 1),
        ("1", StopReason.USER.value, 1),
        ("1", StopReason.USER.value, 1),
        ("2", StopReason.BLOCKED.value, 1),
    ]
    assert await service.subscriptions.count_active() == 0


async def test_listing_shows_the_policy_reminders_follow(
    service: ReminderService, store: Database
) -> None:
    digits = identity(1)
    await add_policy(store, digits, expiry=date(2026, 3, 31), number="OLD")
    await add_policy(store, digits, expiry=date(2027, 3, 31), number="NEW", insurer="TAWUNIYA")
    await add_policy(store, digits, expiry=date(2028, 1, 1), number="X", status="cancelled")
    await subscribe(service, 3, digits)
    await subscribe(service, 3, identity(2))  # no policy at all
    first, second = await service.subscriptions.list_for_chat("telegram", 3)
    assert first.expiry_date == date(2027, 3, 31)
    assert first.insurer is not None and first.insurer.code == "TAWUNIYA"
    assert first.subscription.id_masked == "1*******" + digits[-2:]
    assert second.insurer is None and second.expiry_date is None
    assert await service.subscriptions.set_locale("telegram", 3, "en") == 2
