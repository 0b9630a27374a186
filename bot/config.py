"""All settings in one place, read from the environment and `.env`.

The environment variable names are a public contract (see `.env.example`).
"""

from __future__ import annotations

import logging
import secrets
from datetime import time
from enum import StrEnum
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

# Messages/s Telegram allows a bot in bulk without paid broadcast.
FREE_BROADCAST_LIMIT = 30


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _int_list(value: object, setting: str) -> list[int]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, list | tuple):
        return [int(v) for v in value]
    text = str(value).strip()
    if not text:
        return []
    try:
        return [int(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError("must be comma-separated whole numbers") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    database_path: Path = Path("data/bot.sqlite3")
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    id_hash_key: SecretStr | None = None
    app_env: AppEnv = AppEnv.DEVELOPMENT
    default_locale: str = "ar"
    timezone: str = "Asia/Riyadh"
    reminder_days: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [30, 7, 1])
    reminder_time: time = time(9, 0)
    lookups_per_hour: int = Field(default=10, ge=1)
    # Limits that a new cookie cannot reset (bot/limits.py says which counts what).
    lookups_per_address_per_hour: int = Field(default=30, ge=1)
    lookups_per_id_per_day: int = Field(default=5, ge=1)
    challenges_per_hour: int = Field(default=30, ge=1)
    sessions_per_address_per_hour: int = Field(default=60, ge=1)
    web_lookups_per_minute: int = Field(default=120, ge=0)
    # Reverse proxies in front of the web chat, whose X-Forwarded-For is believed.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    captcha_ttl_seconds: int = Field(default=120, ge=10)
    captcha_test_code: str = ""
    # Processes rendering image codes beside the event loop (0: render inline, for tests).
    captcha_workers: int = Field(default=1, ge=0, le=8)
    audit_retention_days: int = Field(default=180, ge=1)
    # Webhook mode when set: Telegram posts updates to this public https URL.
    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    # Where the project's HTTP app listens (webhook, web chat, /healthz).
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=1, le=65535)
    # Serve the web chat beside the Telegram bot (e.g. as a widget on an insurer's site).
    web_chat: bool = False
    # Reminder subscriptions one chat may hold (a family's numbers).
    max_subscriptions_per_chat: int = Field(default=5, ge=1, le=50)
    # Telegram's paid broadcast (allow_paid_broadcast, billed in Stars): up to 1000 messages/s.
    broadcast_paid: bool = False
    # Bulk messages (reminders and broadcasts) per second overall. Telegram allows about 30/s
    # per bot; 25 leaves room for replies to people mid-conversation.
    broadcast_rate: float = Field(default=25.0, gt=0, le=1000)

    @field_validator("telegram_bot_token", "id_hash_key", "webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> list[int]:
        return _int_list(value, "ADMIN_IDS")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> list[IPv4Network | IPv6Network]:
        parts = value if isinstance(value, list | tuple) else str(value).split(",")
        try:
            return [ip_network(str(p).strip(), strict=False) for p in parts if str(p).strip()]
        except ValueError:
            raise ValueError("must be comma-separated IP addresses or CIDR ranges") from None

    @field_validator("reminder_days", mode="before")
    @classmethod
    def _parse_reminder_days(cls, value: object) -> list[int]:
        days = _int_list(value, "REMINDER_DAYS")
        if not days or any(d < 0 for d in days):
            raise ValueError("must list days before expiry, e.g. 30,7,1")
        return sorted(set(days), reverse=True)

    @field_validator("reminder_time", mode="before")
    @classmethod
    def _parse_reminder_time(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                hours, minutes = (int(p) for p in value.strip().split(":"))
                return time(hours, minutes)
            except ValueError:
                raise ValueError("must be HH:MM on a 24-hour clock") from None
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in ("ar", "en"):
            raise ValueError("must be ar or en")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone") from None
        return value

    @field_validator("captcha_test_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        value = value.strip()
        if value and (len(value) != 6 or not value.isascii() or not value.isdecimal()):
            raise ValueError("must be empty or six digits")
        return value

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.app_env is AppEnv.PRODUCTION and self.id_hash_key is None:
            raise ValueError("ID_HASH_KEY is required when APP_ENV=production")
        if self.app_env is AppEnv.PRODUCTION and self.captcha_test_code:
            raise ValueError("CAPTCHA_TEST_CODE must be empty when APP_ENV=production")
        return self

    @field_validator("webhook_url")
    @classmethod
    def _https_webhook(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be the public https:// address Telegram posts updates to")
        return value

    @field_validator("broadcast_rate")
    @classmethod
    def _rate_within_telegram_limits(cls, value: float, info: ValidationInfo) -> float:
        # Above ~30/s Telegram answers 429 and live conversations would wait behind the queue.
        if value > FREE_BROADCAST_LIMIT and not info.data.get("broadcast_paid", False):
            raise ValueError(
                f"above Telegram's free limit of {FREE_BROADCAST_LIMIT} messages/s; set "
                "BROADCAST_PAID=true for paid broadcasts (up to 1000/s)"
            )
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def expiring_soon_days(self) -> int:
        """A policy counts as "expiring soon" within the largest reminder horizon."""
        return max(self.reminder_days)

    @cached_property
    def hash_key(self) -> bytes:
        """Key for the identity-number HMAC.

        Without ID_HASH_KEY (development only) a random key is generated once and kept in a file
        beside the database, so imported policies still match after a restart; the key file is
        never inside the database itself.
        """
        if self.id_hash_key is not None:
            return self.id_hash_key.get_secret_value().encode()
        key_file = self.database_path.parent / ".dev_id_hash_key"
        if key_file.exists():
            key = key_file.read_text().strip()
        else:
            key = secrets.token_hex(32)
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(key + "\n")
            key_file.chmod(0o600)
        log.warning(
            "ID_HASH_KEY is not set: using the development key in %s. Set ID_HASH_KEY for "
            "production.",
            key_file,
        )
        return key.encode()


class SettingsError(Exception):
    """A setting has a bad value; the message names it in one line."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ()
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        if not loc:
            raise SettingsError(f"Bad settings: {message}") from None
        raise SettingsError(f"Bad setting {str(loc[0]).upper()}: {message}") from None
