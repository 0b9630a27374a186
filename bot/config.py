"""All settings in one place, read from the environment and `.env`, grouped by concern.

The environment variable names are a public contract (see `.env.example`): each setting has
exactly one, declared beside it as its alias (`port: int = Field(..., alias="WEB_PORT")`).
Settings go in flat, by env name, and are read by group:

    settings = Settings(_env_file=None, web_port=8081)  # by env name, in any case
    settings.web.port                                   # by group: the only way to read it

The environment, `.env` and keyword arguments all speak the env names, and
`Settings._by_env_name` sorts them into the groups. Within a group an attribute is its env
name less the group's prefix where it has one (`WEB_PORT` -> `web.port`), otherwise the env name
in lower case (`TRUSTED_PROXIES` -> `web.trusted_proxies`). A derived value lives in the group it
is derived from (`app.tz`, `reminders.expiring_soon_days`, `database.hash_key`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from enum import StrEnum
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

log = logging.getLogger(__name__)

# Messages/s Telegram allows a bot in bulk without paid broadcast.
FREE_BROADCAST_LIMIT = 30


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


def _int_list(value: object) -> list[int]:
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


def _api_root(value: str) -> str:
    """An API's root URL, without a trailing slash (the bot appends its paths)."""
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


def _blank_is_unset(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class _Group(BaseModel):
    # Built by `Settings` from env names only; a stray key is a bug, not something to ignore.
    model_config = ConfigDict(extra="forbid")


class AppSettings(_Group):
    """Which deployment this is, and the language and time zone it serves in."""

    # development | production (production requires ID_HASH_KEY; see Settings below).
    env: AppEnv = Field(default=AppEnv.DEVELOPMENT, alias="APP_ENV")
    default_locale: str = Field(default="ar", alias="DEFAULT_LOCALE")
    timezone: str = Field(default="Asia/Riyadh", alias="TIMEZONE")

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

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class TelegramSettings(_Group):
    """The Telegram bot: its token, the Bot API it calls, its admins and webhook mode."""

    bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    api_url: str = Field(default="https://api.telegram.org", alias="TELEGRAM_API_URL")
    admin_ids: list[int] = Field(default_factory=list, alias="ADMIN_IDS")
    # Webhook mode when set: Telegram posts updates to this public https URL.
    webhook_url: str = Field(default="", alias="WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="WEBHOOK_SECRET")

    _blank_is_unset = field_validator("bot_token", "webhook_secret", mode="before")(_blank_is_unset)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> list[int]:
        return _int_list(value)

    _api_root = field_validator("api_url")(_api_root)

    @field_validator("webhook_url")
    @classmethod
    def _https_webhook(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be the public https:// address Telegram posts updates to")
        return value


class WhatsAppSettings(_Group):
    """The WhatsApp Cloud API channel: on when both the access token and the phone number ID
    are set; then the app secret (webhook signatures) and the verify token are required."""

    access_token: SecretStr | None = Field(default=None, alias="WHATSAPP_ACCESS_TOKEN")
    phone_number_id: str = Field(default="", alias="WHATSAPP_PHONE_NUMBER_ID")
    app_secret: SecretStr | None = Field(default=None, alias="WHATSAPP_APP_SECRET")
    verify_token: SecretStr | None = Field(default=None, alias="WHATSAPP_VERIFY_TOKEN")
    # Root of the Graph API: the bot calls <root>/<version>/... (a proxy or a local fake works).
    api_url: str = Field(default="https://graph.facebook.com", alias="WHATSAPP_API_URL")
    api_version: str = Field(default="v25.0", alias="WHATSAPP_API_VERSION")
    reminder_template: str = Field(
        default="policy_expiry_reminder", alias="WHATSAPP_REMINDER_TEMPLATE"
    )
    # Bulk messages per second on WhatsApp, under the default 80/s per number (inbound and
    # outbound): the rest is left for replies to live conversations.
    rate: float = Field(default=60.0, gt=0, le=1000, alias="WHATSAPP_RATE")

    _blank_is_unset = field_validator("access_token", "app_secret", "verify_token", mode="before")(
        _blank_is_unset
    )

    _api_root = field_validator("api_url")(_api_root)

    @property
    def enabled(self) -> bool:
        return self.access_token is not None and bool(self.phone_number_id)

    @field_validator("phone_number_id")
    @classmethod
    def _digits(cls, value: str) -> str:
        value = value.strip()
        if value and not (value.isascii() and value.isdecimal()):
            raise ValueError("must be the phone number ID, digits only")
        return value

    @model_validator(mode="after")
    def _secrets_when_on(self) -> WhatsAppSettings:
        if (self.access_token is None) != (not self.phone_number_id):
            raise ValueError(
                "WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID go together: set both to "
                "run on WhatsApp, or neither"
            )
        if self.enabled:
            for env_name, value in (
                ("WHATSAPP_APP_SECRET", self.app_secret),
                ("WHATSAPP_VERIFY_TOKEN", self.verify_token),
            ):
                if value is None:
                    raise ValueError(
                        f"{env_name} is required when WHATSAPP_ACCESS_TOKEN and "
                        "WHATSAPP_PHONE_NUMBER_ID are set"
                    )
        return self


class WebSettings(_Group):
    """The project's HTTP server (webhook, web chat, /healthz) and the web chat on it."""

    host: str = Field(default="127.0.0.1", alias="WEB_HOST")
    port: int = Field(default=8080, ge=1, le=65535, alias="WEB_PORT")
    # Serve the web chat beside the Telegram bot (e.g. as a widget on an insurer's site).
    chat: bool = Field(default=False, alias="WEB_CHAT")
    # Reverse proxies in front of the web chat, whose X-Forwarded-For is believed.
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list, alias="TRUSTED_PROXIES"
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> list[IPv4Network | IPv6Network]:
        parts = value if isinstance(value, list | tuple) else str(value).split(",")
        try:
            return [ip_network(str(p).strip(), strict=False) for p in parts if str(p).strip()]
        except ValueError:
            raise ValueError("must be comma-separated IP addresses or CIDR ranges") from None


def _postgres_url(value: SecretStr | None) -> SecretStr | None:
    """postgresql://user:password@host:5432/dbname. Errors never repeat the value: it holds
    the password."""
    if value is None:
        return None
    text = value.get_secret_value().strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (parsed lazily: a bad port raises here)
    except ValueError:
        raise ValueError("must be a URL like postgresql://user:password@host:5432/dbname") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must start with postgresql:// (e.g. postgresql://user:password@host/db)")
    if not parts.path.strip("/") and "dbname=" not in parts.query:
        raise ValueError("must name the database: postgresql://user:password@host:5432/dbname")
    return SecretStr(text)


class DatabaseSettings(_Group):
    """Where data is kept, the key identity numbers are hashed under, how long audits stay."""

    path: Path = Field(default=Path("data/bot.sqlite3"), alias="DATABASE_PATH")
    # PostgreSQL instead of the SQLite file when set (the password is a secret).
    url: SecretStr | None = Field(default=None, alias="DATABASE_URL")
    # Connections per process to PostgreSQL.
    pool_size: int = Field(default=10, ge=1, le=200, alias="DATABASE_POOL_SIZE")
    # DATABASE_URL is PgBouncer in transaction mode: no prepared statements kept.
    pgbouncer: bool = Field(default=False, alias="DATABASE_PGBOUNCER")
    id_hash_key: SecretStr | None = Field(default=None, alias="ID_HASH_KEY")
    audit_retention_days: int = Field(default=180, ge=1, alias="AUDIT_RETENTION_DAYS")

    _blank_is_unset = field_validator("id_hash_key", "url", mode="before")(_blank_is_unset)
    _postgres_url = field_validator("url")(_postgres_url)

    @property
    def location(self) -> Path | str:
        """What the store opens: the PostgreSQL URL (password and all) or the SQLite file."""
        return self.url.get_secret_value() if self.url is not None else self.path

    @cached_property
    def hash_key(self) -> bytes:
        """Key for the identity-number HMAC.

        Without ID_HASH_KEY (development only) a random key is generated once and kept in a file
        beside the database, so imported policies still match after a restart; the key file is
        never inside the database itself.
        """
        if self.id_hash_key is not None:
            return self.id_hash_key.get_secret_value().encode()
        key_file = self.path.parent / ".dev_id_hash_key"
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


class ReminderSettings(_Group):
    """Expiry reminders: on which days before expiry, at what time, for how many numbers."""

    days: list[int] = Field(default_factory=lambda: [30, 7, 1], alias="REMINDER_DAYS")
    time: dt.time = Field(default=dt.time(9, 0), alias="REMINDER_TIME")
    # Reminder subscriptions one chat may hold (a family's numbers).
    max_subscriptions_per_chat: int = Field(
        default=5, ge=1, le=50, alias="MAX_SUBSCRIPTIONS_PER_CHAT"
    )

    @field_validator("days", mode="before")
    @classmethod
    def _parse_days(cls, value: object) -> list[int]:
        days = _int_list(value)
        if not days or any(d < 0 for d in days):
            raise ValueError("must list days before expiry, e.g. 30,7,1")
        return sorted(set(days), reverse=True)

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                hours, minutes = (int(p) for p in value.strip().split(":"))
                return dt.time(hours, minutes)
            except ValueError:
                raise ValueError("must be HH:MM on a 24-hour clock") from None
        return value

    @property
    def expiring_soon_days(self) -> int:
        """A policy counts as "expiring soon" within the largest reminder horizon."""
        return max(self.days)


class BroadcastSettings(_Group):
    """Bulk messages (reminders and broadcasts): how fast, and whether as paid broadcasts."""

    # Telegram's paid broadcast (allow_paid_broadcast, billed in Stars): up to 1000 messages/s.
    # Declared before `rate`, whose check reads it.
    paid: bool = Field(default=False, alias="BROADCAST_PAID")
    # Bulk messages per second on Telegram (WhatsApp has WHATSAPP_RATE). Telegram allows about
    # 30/s per bot; 25 leaves room for replies to people mid-conversation.
    rate: float = Field(default=25.0, gt=0, le=1000, alias="BROADCAST_RATE")

    @field_validator("rate")
    @classmethod
    def _rate_within_telegram_limits(cls, value: float, info: ValidationInfo) -> float:
        # Above ~30/s Telegram answers 429 and live conversations would wait behind the queue.
        if value > FREE_BROADCAST_LIMIT and not info.data.get("paid", False):
            raise ValueError(
                f"above Telegram's free limit of {FREE_BROADCAST_LIMIT} messages/s; set "
                "BROADCAST_PAID=true for paid broadcasts (up to 1000/s)"
            )
        return value


class CaptchaSettings(_Group):
    """The image and audio codes every lookup passes."""

    ttl_seconds: int = Field(default=120, ge=10, alias="CAPTCHA_TTL_SECONDS")
    test_code: str = Field(default="", alias="CAPTCHA_TEST_CODE")
    # Processes rendering image codes beside the event loop (0: render inline, for tests).
    workers: int = Field(default=1, ge=0, le=8, alias="CAPTCHA_WORKERS")

    @field_validator("test_code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        value = value.strip()
        if value and (len(value) != 6 or not value.isascii() or not value.isdecimal()):
            raise ValueError("must be empty or six digits")
        return value


class LimitSettings(_Group):
    """Lookup limits (bot/limits.py says which counts what); all but the first survive a new
    cookie."""

    lookups_per_hour: int = Field(default=10, ge=1, alias="LOOKUPS_PER_HOUR")
    lookups_per_address_per_hour: int = Field(
        default=30, ge=1, alias="LOOKUPS_PER_ADDRESS_PER_HOUR"
    )
    lookups_per_id_per_day: int = Field(default=5, ge=1, alias="LOOKUPS_PER_ID_PER_DAY")
    challenges_per_hour: int = Field(default=30, ge=1, alias="CHALLENGES_PER_HOUR")
    sessions_per_address_per_hour: int = Field(
        default=60, ge=1, alias="SESSIONS_PER_ADDRESS_PER_HOUR"
    )
    # The web chat's circuit breaker (0 turns it off).
    web_lookups_per_minute: int = Field(default=120, ge=0, alias="WEB_LOOKUPS_PER_MINUTE")


class _EnvNames(PydanticBaseSettingsSource):
    """The environment or a `.env` file, keeping only our env names, flat.

    pydantic-settings would look for one variable per top-level field (`WEB`, `TELEGRAM`...);
    ours are the flat names of the groups' fields, which `Settings._by_env_name` sorts.
    """

    def __init__(self, source: EnvSettingsSource) -> None:
        super().__init__(source.settings_cls)
        self.source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Abstract in the base class, never asked: __call__ reads every variable at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        # Keys are lower case (case_sensitive=False); values are the raw strings.
        return {name: value for name, value in self.source.env_vars.items() if name in _PLACES}


class Settings(BaseSettings):
    """Every setting, in groups. Construct it by env name; read it by group."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # A validation error never repeats a value: DATABASE_URL holds a password, and the
        # tokens are secrets (load_settings' one line names the setting and the rule only).
        hide_input_in_errors=True,
    )

    app: AppSettings = Field(default_factory=AppSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    whatsapp: WhatsAppSettings = Field(default_factory=WhatsAppSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)
    broadcast: BroadcastSettings = Field(default_factory=BroadcastSettings)
    captcha: CaptchaSettings = Field(default_factory=CaptchaSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)

    def __init__(self, **values: Any) -> None:
        """Settings by env name in any case (`web_port=0`, `WEB_PORT=0`), over the environment
        and `.env`; `_env_file=None` reads no `.env` (pydantic-settings' own options)."""
        super().__init__(**values)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: keyword arguments, the environment, `.env`. No secrets dir.
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, EnvSettingsSource)
        return init_settings, _EnvNames(env_settings), _EnvNames(dotenv_settings)

    @model_validator(mode="before")
    @classmethod
    def _by_env_name(cls, data: object) -> object:
        """Sort flat settings, keyed by env name in any case, into their groups."""
        if not isinstance(data, dict):
            return data
        groups: dict[str, dict[str, object]] = {group: {} for group in cls.model_fields}
        for key, value in data.items():
            if key in groups:
                raise TypeError(f"give settings by env name (e.g. WEB_PORT), not {key}=")
            place = _PLACES.get(str(key).lower())
            if place is not None:  # anything else is ignored, like a stranger in `.env`
                group, env_name = place
                groups[group][env_name] = value
        return groups

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.app.env is AppEnv.PRODUCTION and self.database.id_hash_key is None:
            raise ValueError("ID_HASH_KEY is required when APP_ENV=production")
        if self.app.env is AppEnv.PRODUCTION and self.captcha.test_code:
            raise ValueError("CAPTCHA_TEST_CODE must be empty when APP_ENV=production")
        return self


def _places() -> dict[str, tuple[str, str]]:
    places: dict[str, tuple[str, str]] = {}
    for group, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, _Group), group
        for name, setting in model.model_fields.items():
            assert setting.alias, f"{model.__name__}.{name} needs its env name as alias"
            places[setting.alias.lower()] = (group, setting.alias)
    return places


# Every env name in lower case -> (group, env name as declared).
_PLACES = _places()

# Every environment variable a setting reads (case-insensitively), e.g. "WEB_PORT".
ENV_NAMES = frozenset(env_name for _, env_name in _PLACES.values())


class SettingsError(Exception):
    """A setting has a bad value; the message names it in one line."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc") or ()
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        if len(loc) < 2:  # a rule across settings (of one group or several): it names them
            raise SettingsError(f"Bad settings: {message}") from None
        # (group, ENV_NAME, ...): the env name, as the operator wrote it.
        name = loc[1]
        raise SettingsError(f"Bad setting {str(name).upper()}: {message}") from None
