"""Whose address a web request counts against, and which X-Forwarded-For is believed."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from bot.channels.client_address import client_address
from bot.config import SettingsError, load_settings
from bot.limits import network_of

PROXIES = [ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32")]


def test_without_trusted_proxies_the_socket_peer_counts_whatever_the_header_says() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], []) == "203.0.113.9"
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"


def test_a_forged_header_from_an_untrusted_peer_changes_nothing() -> None:
    assert client_address("203.0.113.9", ["10.0.0.1, 198.51.100.1"], PROXIES) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client() -> None:
    # The client forged "1.2.3.4"; our proxies appended what they saw.
    header = ["1.2.3.4, 198.51.100.7, 10.1.2.3"]
    assert client_address("127.0.0.1", header, PROXIES) == "198.51.100.7"
    # Several headers are one list, in order.
    assert client_address("10.0.0.5", ["1.2.3.4", "198.51.100.8"], PROXIES) == "198.51.100.8"


def test_a_trusted_peer_without_a_usable_entry_counts_as_itself() -> None:
    assert client_address("10.0.0.5", [], PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.5", ["10.0.0.6"], PROXIES) == "10.0.0.5"
    assert client_address("10.0.0.5", ["unknown"], PROXIES) == "10.0.0.5"


def test_networks_ipv4_by_address_ipv6_by_64() -> None:
    assert network_of("203.0.113.9") == "203.0.113.9"
    assert network_of("::ffff:203.0.113.9") == "203.0.113.9"
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:ffff::9")
    assert network_of("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("testclient") is None


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,2001:db8::/32")
    settings = load_settings(_env_file=None)
    assert [str(n) for n in settings.web.trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "2001:db8::/32",
    ]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings(_env_file=None)
