"""Reminder subscriptions as values: what subscribing did, and a subscription as listed.

The store (bot/store/subscriptions.py) produces them; the conversation shows them. They live
here so that the conversation need not import the store (see ARCHITECTURE.md, Layering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from bot.domain.policy import Insurer


class SubscribeOutcome(StrEnum):
    SUBSCRIBED = "subscribed"
    ALREADY = "already"  # this chat already gets reminders for this number
    LIMIT_REACHED = "limit_reached"  # the chat holds the maximum number of subscriptions


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    outcome: SubscribeOutcome
    # The new or the existing subscription; None when the limit was reached.
    subscription_id: int | None
    active_in_chat: int  # after this call
    limit: int


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    channel: str
    chat_id: str
    id_masked: str
    locale: str
    consented_at: datetime
    active: bool
    id_hmac: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscription as /reminders shows it; insurer and expiry are None without a policy."""

    subscription: Subscription
    insurer: Insurer | None
    expiry_date: date | None
