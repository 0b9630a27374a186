"""The reminder side of the dialogue: consent after a result, /reminders, /stop, stop buttons.

Only channels that can write to a person later (Telegram) have it; the engine runs without it
elsewhere (the web chat), where these commands are unknown and these buttons never appear.

    result with a valid policy  -> «Remind me» button (tied to that number by a short tag)
    «Remind me»                 -> subscribe: confirmation | already on | limit reached
    /reminders                  -> the chat's subscriptions, a stop button each
    /stop, «إيقاف», StopAll     -> stop all of the chat's reminders
    StopOne                     -> stop one (only if it belongs to this chat)

The engine's table (REMINDERS in engine.py) routes these here; the buttons' data is
bot/conversation/buttons.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from bot.conversation import consent_texts as texts
from bot.conversation.replies import ButtonSpec, Message
from bot.conversation.state import Conversation, PendingIdentity
from bot.domain.policy import Coverage, PolicyStatus
from bot.domain.schedule import reminder_thresholds
from bot.domain.subscriptions import SubscribeOutcome, SubscribeResult, SubscriptionView
from bot.i18n import Translator

TAG_LENGTH = 8  # hex digits of the number's HMAC carried by the «Remind me» button


class ReminderConsent(Protocol):
    """Subscriptions of one channel (see bot.reminders.consent.ChannelConsent)."""

    @property
    def reminder_days(self) -> Sequence[int]: ...

    async def subscribe(
        self, chat_id: str, id_hmac: bytes, masked: str, locale: str
    ) -> SubscribeResult: ...

    async def list_for_chat(self, chat_id: str) -> list[SubscriptionView]: ...

    async def stop_one(self, chat_id: str, subscription_id: int) -> str | None:
        """Stop one of this chat's subscriptions; its masked number, or None if none was."""
        ...

    async def stop_all(self, chat_id: str) -> int: ...

    async def set_locale(self, chat_id: str, locale: str) -> None: ...


def offers_reminders(coverages: list[Coverage], today: date) -> bool:
    """Reminders follow the person's active policy with the latest expiry; worth offering
    while that day is still ahead (on the last day nothing would come)."""
    return any(
        c.policy.status is PolicyStatus.ACTIVE and c.policy.expiry_date > today for c in coverages
    )


class ChatReminders:
    """Reminder consent for one chat during one event."""

    def __init__(self, consent: ReminderConsent, chat_id: str, today: date) -> None:
        self.consent = consent
        self.chat_id = chat_id
        self.today = today
        self.thresholds = reminder_thresholds(consent.reminder_days)

    def offer(
        self,
        conv: Conversation,
        pending: PendingIdentity,
        coverages: list[Coverage],
        tr: Translator,
    ) -> ButtonSpec | None:
        """After a result: remember which number a «Remind me» tap means, and the button.

        The number stays (as HMAC + masked) until the next result replaces it, so the button
        works even after the person typed something else; its tag stops an old card's button
        from subscribing a newer number."""
        if not offers_reminders(coverages, self.today):
            conv.remind_target = None
            return None
        conv.remind_target = pending
        return texts.remind_button(tr, pending.id_hmac[:TAG_LENGTH])

    async def remind(self, conv: Conversation, tag: str, tr: Translator) -> Message | None:
        """A «Remind me» tap; None when its tag is not the latest result's number (stale)."""
        target = conv.remind_target
        if target is None or tag != target.id_hmac[:TAG_LENGTH]:
            return None
        return await self.subscribe(target, tr)

    async def stop_one(self, subscription_id: int, tr: Translator) -> Message:
        """A stop button: only this chat's own subscription is stopped."""
        masked = await self.consent.stop_one(self.chat_id, subscription_id)
        return texts.stopped_one(tr, masked) if masked else texts.already_stopped(tr)

    async def subscribe(self, target: PendingIdentity, tr: Translator) -> Message:
        result = await self.consent.subscribe(
            self.chat_id, bytes.fromhex(target.id_hmac), target.masked, tr.locale
        )
        if result.outcome is SubscribeOutcome.LIMIT_REACHED or result.subscription_id is None:
            return texts.limit_reached(tr, result.limit)
        if result.outcome is SubscribeOutcome.ALREADY:
            return texts.already_subscribed(tr, result.subscription_id, target.masked)
        view = next(
            (
                v
                for v in await self.consent.list_for_chat(self.chat_id)
                if v.subscription.id == result.subscription_id
            ),
            None,
        )
        insurer = view.insurer if view else None
        expiry = view.expiry_date if view else None
        return texts.subscribed(
            tr, result.subscription_id, target.masked, insurer, expiry, self.thresholds, self.today
        )

    async def listing(self, tr: Translator) -> Message:
        views = await self.consent.list_for_chat(self.chat_id)
        lines = [
            texts.subscription_line(
                tr, v.subscription.id_masked, v.insurer, v.expiry_date, self.today
            )
            for v in views
        ]
        stops = [(v.subscription.id, v.subscription.id_masked) for v in views]
        return texts.reminder_list(tr, lines, stops)

    async def stop_all(self, tr: Translator) -> Message:
        return texts.stopped_all(tr, await self.consent.stop_all(self.chat_id))

    async def language(self, locale: str) -> None:
        """The person switched language: their reminders follow."""
        await self.consent.set_locale(self.chat_id, locale)
