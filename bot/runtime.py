"""Everything a running bot shares across channels, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.captcha import CaptchaRenderer
from bot.config import Settings
from bot.conversation.engine import Engine, EngineConfig
from bot.conversation.service import ConversationService
from bot.reminders.consent import ChannelConsent
from bot.store.conversations import AuditLog, ConversationStore, prune_audit
from bot.store.database import Database
from bot.store.policies import PolicyStore
from bot.store.setup import open_store
from bot.store.subscriptions import SubscriptionStore

# Channels that can write to a person later, so they offer expiry reminders. The web chat
# cannot (a browser tab is gone once closed).
CHANNELS_WITH_REMINDERS = frozenset({"telegram"})


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        default_locale=settings.default_locale,
        timezone=settings.tz,
        soon_days=settings.expiring_soon_days,
        captcha_ttl=settings.captcha_ttl_seconds,
        captcha_test_code=settings.captcha_test_code,
        lookups_per_hour=settings.lookups_per_hour,
    )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    policies: PolicyStore
    captcha: CaptchaRenderer
    _services: dict[str, ConversationService] = field(default_factory=dict)

    def conversations(self, channel: str) -> ConversationService:
        """The conversation service of one channel ("telegram", "web", ...)."""
        if channel not in self._services:
            consent = None
            if channel in CHANNELS_WITH_REMINDERS:
                subscriptions = SubscriptionStore(self.db, self.settings.max_subscriptions_per_chat)
                consent = ChannelConsent(subscriptions, channel, self.settings.reminder_days)
            engine = Engine(
                engine_config(self.settings),
                self.settings.hash_key,
                self.policies,
                self.captcha,
                AuditLog(self.db, channel),
                consent=consent,
            )
            self._services[channel] = ConversationService(
                channel, engine, ConversationStore(self.db), self.settings.hash_key
            )
        return self._services[channel]

    async def prune_audit(self) -> int:
        return await prune_audit(self.db, self.settings.audit_retention_days)

    async def close(self) -> None:
        await self.captcha.close()
        await self.db.close()


async def open_runtime(settings: Settings) -> Runtime:
    db = await open_store(settings)
    captcha = CaptchaRenderer(workers=settings.captcha_workers)
    return Runtime(settings, db, PolicyStore(db, settings.hash_key), captcha)
