"""Where a webhook may be sent: http(s) URLs of public hosts only, unless allowed.

A subscription is a way to make the service send requests; without this check it
would reach the cloud metadata endpoint, the database or the admin port of anything
on the internal network. Literal addresses are checked when the subscription is
created, every address a name resolves to when a delivery is made (names can change).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from services.core.errors import Unprocessable


class TargetRefused(Unprocessable):
    code = "webhook_target_refused"


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL if a subscription may use it; ``TargetRefused`` (422) otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("the webhook URL must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise TargetRefused("the webhook URL must not carry credentials")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise TargetRefused("the webhook URL has an invalid port") from None
    if allow_private:
        return url
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise TargetRefused("loopback webhook targets are refused (TWOFA_WEBHOOK_ALLOW_PRIVATE)")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked at each delivery
    if _forbidden(literal):
        raise TargetRefused(
            "private, loopback and link-local webhook targets are refused "
            "(TWOFA_WEBHOOK_ALLOW_PRIVATE)"
        )
    return url


def check_resolved(url: str, *, allow_private: bool) -> str | None:
    """Why a delivery to ``url`` may not be made now, or None (resolves the host)."""
    if allow_private:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return "the host does not resolve"
    for info in infos:
        if _forbidden(ipaddress.ip_address(info[4][0])):
            return "the host resolves to a private, loopback or link-local address"
    return None
