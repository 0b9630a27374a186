"""The limits that guard lookups, keyed on what an attacker cannot cheaply change.

    per chat             lookups per hour (kept in the conversation) · codes issued per hour
    per client address   (web chat) lookups per hour · codes issued per hour (3× a chat's) ·
                         new sessions per hour; IPv4 by address, IPv6 by /64
    per identity number  lookups in any 24 hours, across every chat and channel
    a whole channel      (web chat) a circuit breaker on lookups per minute

A cookie, a chat or a session is free to change on the web, an address and a number are not.
Counts live in the database (`bot.store.limits`), so a restart resets nothing, and keys are
pseudonymous: a chat by its keyed reference, an address and a number by keyed HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)

HOUR = 3600.0
DAY = 24 * HOUR
MINUTE = 60.0


class LimitKind(StrEnum):
    CHALLENGES = "challenges"  # codes issued to a chat or an address
    ADDRESS_LOOKUPS = "address_lookups"
    NUMBER_LOOKUPS = "number_lookups"
    BUSY = "busy"  # the channel's circuit breaker
    SESSIONS = "sessions"  # new web chat sessions from one address


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` events under `key` in any `seconds`."""

    key: str
    limit: int
    seconds: float
    kind: LimitKind


@dataclass(frozen=True, slots=True)
class Exceeded:
    """The first window that is full, and when enough of its events have left it."""

    window: Window
    retry_after: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request waits, and for how long (never anything about the number itself)."""

    kind: LimitKind
    limit: int
    retry_after: float


class Counter(Protocol):
    async def take(
        self, checks: Sequence[Window], records: Sequence[str], now: float
    ) -> Exceeded | None: ...

    async def prune(self, before: float) -> int: ...


@dataclass(frozen=True)
class LimitConfig:
    lookups_per_address_per_hour: int = 30
    lookups_per_id_per_day: int = 5
    challenges_per_hour: int = 30
    address_challenge_factor: int = 3  # many people share a carrier's or a hospital's address
    sessions_per_address_per_hour: int = 60
    busy_lookups_per_minute: int = 0  # the channel's circuit breaker; 0: none


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks: the chat (keyed reference) and, on the web, the client's network."""

    chat_ref: str
    network: str | None = None  # see network_of


def network_of(address: str) -> str | None:
    """The unit an address limit counts: an IPv4 address, or an IPv6 /64 (one subscriber's
    prefix: a client can pick any address inside it). None when it is not an IP address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


class Limits:
    """The limits of one channel's conversations."""

    def __init__(
        self, counter: Counter, config: LimitConfig, hash_key: bytes, channel: str
    ) -> None:
        self.counter = counter
        self.config = config
        self.hash_key = hash_key
        self.channel = channel
        self._busy_warned_at = 0.0

    def _pseudonym(self, kind: str, value: str) -> str:
        return hmac.new(self.hash_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]

    def _lookup_windows(self, who: Requester, id_hash: bytes) -> list[Window]:
        windows = [
            Window(
                f"lookup/id/{id_hash.hex()[:32]}",
                self.config.lookups_per_id_per_day,
                DAY,
                LimitKind.NUMBER_LOOKUPS,
            )
        ]
        if who.network is not None:
            windows.append(
                Window(
                    f"lookup/net/{self._pseudonym('net', who.network)}",
                    self.config.lookups_per_address_per_hour,
                    HOUR,
                    LimitKind.ADDRESS_LOOKUPS,
                )
            )
        return windows

    def _channel_key(self) -> str:
        return f"lookup/channel/{self.channel}"

    async def _take(
        self, checks: Sequence[Window], records: Sequence[str], now: float
    ) -> Refusal | None:
        exceeded = await self.counter.take(checks, records, now)
        if exceeded is None:
            return None
        window = exceeded.window
        if window.kind is LimitKind.BUSY and now - self._busy_warned_at >= MINUTE:
            self._busy_warned_at = now
            log.warning(
                "The %s channel is over %d lookups a minute: new codes are refused for now",
                self.channel,
                window.limit,
            )
        return Refusal(window.kind, window.limit, exceeded.retry_after)

    async def challenge(self, who: Requester, id_hash: bytes, now: float) -> Refusal | None:
        """Count a code (image or audio) about to be issued for this number, unless a limit
        says wait. The number's lookup limits are checked too (not counted): nobody solves a
        code only to be turned away, and it costs no second round trip."""
        per_hour = self.config.challenges_per_hour
        chat_key = f"challenge/chat/{who.chat_ref[:32]}"
        checks = [Window(chat_key, per_hour, HOUR, LimitKind.CHALLENGES)]
        records = [chat_key]
        if who.network is not None:
            net_key = f"challenge/net/{self._pseudonym('net', who.network)}"
            factor = self.config.address_challenge_factor
            checks.append(Window(net_key, per_hour * factor, HOUR, LimitKind.CHALLENGES))
            records.append(net_key)
        if self.config.busy_lookups_per_minute:
            checks.append(
                Window(
                    self._channel_key(),
                    self.config.busy_lookups_per_minute,
                    MINUTE,
                    LimitKind.BUSY,
                )
            )
        checks += self._lookup_windows(who, id_hash)
        return await self._take(checks, records, now)

    async def look_up(self, who: Requester, id_hash: bytes, now: float) -> Refusal | None:
        """Count a completed lookup of this number, unless a limit says wait."""
        windows = self._lookup_windows(who, id_hash)
        records = [w.key for w in windows]
        if self.config.busy_lookups_per_minute:
            records.append(self._channel_key())
        return await self._take(windows, records, now)

    async def new_session(self, network: str | None, now: float) -> Refusal | None:
        """Count a new web chat session from this network."""
        if network is None:
            return None
        key = f"session/net/{self._pseudonym('net', network)}"
        window = Window(key, self.config.sessions_per_address_per_hour, HOUR, LimitKind.SESSIONS)
        return await self._take([window], [key], now)

    async def prune(self, now: float | None = None) -> int:
        """Forget events no window can count any more."""
        return await self.counter.prune((now if now is not None else time.time()) - DAY)
