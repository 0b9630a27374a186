"""Reminder consent for the conversation engine, bound to one channel's subscriptions."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.subscriptions import SubscribeResult, SubscriptionView
from bot.store.subscriptions import SubscriptionStore


class ChannelConsent:
    """`bot.conversation.consent.ReminderConsent` over the subscription store."""

    def __init__(
        self, store: SubscriptionStore, channel: str, reminder_days: Sequence[int]
    ) -> None:
        self.store = store
        self.channel = channel
        self.reminder_days = tuple(reminder_days)

    async def subscribe(
        self, chat_id: str, id_hmac: bytes, masked: str, locale: str
    ) -> SubscribeResult:
        return await self.store.subscribe(self.channel, chat_id, id_hmac, masked, locale)

    async def list_for_chat(self, chat_id: str) -> list[SubscriptionView]:
        return await self.store.list_for_chat(self.channel, chat_id)

    async def stop_one(self, chat_id: str, subscription_id: int) -> str | None:
        # The store re-checks the chat: button data is untrusted.
        subscription = await self.store.get(subscription_id)
        if subscription is None:
            return None
        if not await self.store.unsubscribe(subscription_id, self.channel, chat_id):
            return None
        return subscription.id_masked

    async def stop_all(self, chat_id: str) -> int:
        return await self.store.unsubscribe_all(self.channel, chat_id)

    async def set_locale(self, chat_id: str, locale: str) -> None:
        await self.store.set_locale(self.channel, chat_id, locale)
