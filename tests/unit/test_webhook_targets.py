"""Which URLs a webhook may be sent to."""

from __future__ import annotations

import socket

import httpx
import pytest

from services.core.webhooks.poster import HttpPoster
from services.core.webhooks.targets import (
    Resolved,
    TargetRefused,
    check_resolved,
    check_url,
    pinned,
)


@pytest.mark.parametrize("url", ["https://hooks.example.org/twofa", "http://93.184.216.34:8443/x",
                                 "https://[2a00:1450::1]/x"])
def test_public_http_targets_are_accepted(url):
    assert check_url(url, allow_private=False) == url


@pytest.mark.parametrize("url", ["http://127.0.0.1/x", "http://localhost:9/x", "http://api.localhost/x",
                                 "http://10.0.0.1/x", "http://172.16.5.4/x", "http://192.168.1.1/x",
                                 "http://169.254.169.254/x", "http://[::1]/x", "http://[fe80::1]/x",
                                 "http://[fd00::1]/x", "http://[::ffff:127.0.0.1]/x", "http://0.0.0.0/x",
                                 "http://224.0.0.1/x", "http://100.64.0.1/x"])
def test_private_loopback_and_link_local_targets_are_refused(url):
    with pytest.raises(TargetRefused):
        check_url(url, allow_private=False)
    assert check_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "https://u:p@example.org/x",
                                 "https:///nohost", "http://example.org:99999/x", "javascript:alert(1)"])
def test_malformed_targets_are_refused_even_when_private_ones_are_allowed(url):
    with pytest.raises(TargetRefused):
        check_url(url, allow_private=True)


def test_a_name_is_checked_on_every_address_it_resolves_to():
    assert "private, loopback" in (check_resolved("http://localhost:9/x", allow_private=False).refused or "")
    assert check_resolved("http://localhost:9/x", allow_private=True) == Resolved()
    assert check_resolved("http://93.184.216.34/x", allow_private=False) == Resolved(address="93.184.216.34")


def fake_dns(monkeypatch, *answers: list[str]):
    """Each lookup answers the next list of addresses (a rebinding name changes its answer)."""
    calls = iter(answers)

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in next(calls)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_one_private_address_among_public_ones_refuses_the_name(monkeypatch):
    fake_dns(monkeypatch, ["93.184.216.34", "10.0.0.7"])
    assert check_resolved("https://hooks.example.org/x", allow_private=False).refused


def test_the_delivery_connects_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name answers a public address to the check, then a private one.
    The request goes to the checked address, with the name in Host and SNI."""
    fake_dns(monkeypatch, ["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"])
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    poster = HttpPoster(timeout=2, allow_private=False, transport=httpx.MockTransport(receiver))
    try:
        assert poster.post("https://hooks.example.org:8443/in?a=1", {"webhook-id": "m1"}, "{}").ok
    finally:
        poster.close()
    (request,) = seen
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.path == "/in" and request.url.query == b"a=1"
    assert request.headers["host"] == "hooks.example.org:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.org"


def test_an_ipv6_address_is_pinned_in_brackets():
    assert pinned("https://hooks.example.org/x", "2a00:1450::1") == ("https://[2a00:1450::1]/x", "hooks.example.org")
