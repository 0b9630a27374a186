"""Everything a running bot shares across channels, built once from the settings."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import time as day_time
from datetime import timedelta

from bot.captcha import CaptchaRenderer
from bot.config import Settings
from bot.conversation.engine import Engine, EngineConfig
from bot.conversation.service import ConversationService, TurnAudit
from bot.limits import DAY, LimitConfig, Limits
from bot.reminders.consent import ChannelConsent
from bot.store.activity import prune_activity
from bot.store.conversations import ConversationStore, prune_audit
from bot.store.database import Database
from bot.store.inbound import prune_inbound
from bot.store.limits import LimitStore
from bot.store.policies import PolicyStore
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2.0  # seconds /healthz waits for the database before calling it unavailable
PRUNE_AT = day_time(3, 0)  # local time (TIMEZONE): the quietest hour
CONVERSATION_IDLE = timedelta(days=1)
INBOUND_KEPT = 8 * DAY  # inbound ids: longer than any webhook retry (7 days)
ACTIVITY_KEPT = 2 * DAY  # when chats last wrote: longer than WhatsApp's 24-hour window

# Channels that can write to a person later, so they offer expiry reminders (WhatsApp through
# an approved template). The web chat cannot (a browser tab is gone once closed).
CHANNELS_WITH_REMINDERS = frozenset({"telegram", "whatsapp"})
# Channels where a chat costs nothing (no phone number behind it): a circuit breaker guards
# them as a whole.
OPEN_CHANNELS = frozenset({"web"})


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        default_locale=settings.app.default_locale,
        timezone=settings.app.tz,
        soon_days=settings.reminders.expiring_soon_days,
        captcha_ttl=settings.captcha.ttl_seconds,
        captcha_test_code=settings.captcha.test_code,
        lookups_per_hour=settings.limits.lookups_per_hour,
    )


def limit_config(settings: Settings, channel: str) -> LimitConfig:
    return LimitConfig(
        lookups_per_address_per_hour=settings.limits.lookups_per_address_per_hour,
        lookups_per_id_per_day=settings.limits.lookups_per_id_per_day,
        challenges_per_hour=settings.limits.challenges_per_hour,
        sessions_per_address_per_hour=settings.limits.sessions_per_address_per_hour,
        busy_lookups_per_minute=settings.limits.web_lookups_per_minute
        if channel in OPEN_CHANNELS
        else 0,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    policies: PolicyStore
    captcha: CaptchaRenderer
    _services: dict[str, ConversationService] = field(default_factory=dict)
    _limits: dict[str, Limits] = field(default_factory=dict)

    def limits(self, channel: str) -> Limits:
        """The limits of one channel's conversations (counted across channels by number)."""
        if channel not in self._limits:
            self._limits[channel] = Limits(
                LimitStore(self.db),
                limit_config(self.settings, channel),
                self.settings.database.hash_key,
                channel,
            )
        return self._limits[channel]

    def conversations(self, channel: str) -> ConversationService:
        """The conversation service of one channel ("telegram", "web", ...)."""
        if channel not in self._services:
            consent = None
            if channel in CHANNELS_WITH_REMINDERS:
                subscriptions = SubscriptionStore(
                    self.db, self.settings.reminders.max_subscriptions_per_chat
                )
                consent = ChannelConsent(subscriptions, channel, self.settings.reminders.days)
            audit = TurnAudit()  # written with each turn's state, in one unit of work
            engine = Engine(
                engine_config(self.settings),
                self.settings.database.hash_key,
                self.policies,
                self.captcha,
                audit,
                self.limits(channel),
                consent=consent,
            )
            self._services[channel] = ConversationService(
                channel, engine, ConversationStore(self.db), self.settings.database.hash_key, audit
            )
        return self._services[channel]

    async def database_health(self) -> str:
        """ "ok" when the database answers a query within HEALTH_TIMEOUT, else "unavailable"."""
        try:
            await asyncio.wait_for(self.db.ping(), HEALTH_TIMEOUT)
        except Exception as exc:  # a time-out, a lost connection, whatever the driver raises
            log.warning("Health check: the database does not answer (%s)", type(exc).__name__)
            return "unavailable"
        return "ok"

    async def prune(self) -> None:
        """The daily clean-up, whichever channels are on: old audit records (their own
        retention), conversations idle for a day (each cookie-less web request adds one),
        and limit events no window counts any more."""
        audit = await prune_audit(self.db, self.settings.database.audit_retention_days)
        idle = await ConversationStore(self.db).prune_idle(CONVERSATION_IDLE)
        events = await LimitStore(self.db).prune(time.time() - DAY)
        seen = await prune_inbound(self.db, time.time() - INBOUND_KEPT)
        wrote = await prune_activity(self.db, time.time() - ACTIVITY_KEPT)
        log.info(
            "Daily clean-up removed: audit records older than %d days: %d; idle "
            "conversations: %d; spent limit events: %d; inbound ids: %d; last-message "
            "times past any window: %d",
            self.settings.database.audit_retention_days,
            audit,
            idle,
            events,
            seen,
            wrote,
        )

    async def close(self) -> None:
        await self.captcha.close()
        await self.db.close()


async def open_runtime(settings: Settings) -> Runtime:
    db = await open_store(settings)
    captcha = CaptchaRenderer(workers=settings.captcha.workers)
    return Runtime(settings, db, PolicyStore(db, settings.database.hash_key), captcha)
