"""Which proxy a client of ours uses, decided once from the environment, not per request.

aiohttp's `trust_env` reads the proxy environment and netrc in a thread on every request
(14% of the bot's CPU under load); the Bot API and Graph API clients ask this instead.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl and httpx read it: `*`, or hosts and domain suffixes, comma-separated."""
    host = host.lower().rstrip(".")
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


class ProxyChoice:
    """The proxy for a URL under a snapshot of the proxy environment (None: go direct).

    Decided once per scheme and host: a bot talks to one Bot API server.
    """

    @classmethod
    def from_environment(cls) -> ProxyChoice:
        """HTTPS_PROXY / HTTP_PROXY / NO_PROXY as they are now (read once, at start-up)."""
        return cls(urllib.request.getproxies_environment())

    def __init__(self, proxies: dict[str, str]) -> None:
        self.proxies = proxies
        self._chosen: dict[tuple[str, str], str | None] = {}

    def for_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._chosen:
            proxy = self.proxies.get(parts.scheme)
            host = parts.hostname or ""
            if proxy and _bypassed(host, self.proxies.get("no", "")):
                proxy = None
            self._chosen[key] = proxy or None
        return self._chosen[key]
