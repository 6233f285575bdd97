"""Where a webhook may be sent: http(s) URLs of public hosts only, unless allowed.

A subscription is a way to make the service send requests; without this check it
would reach the cloud metadata endpoint, the database or the admin port of anything
on the internal network. Literal addresses are checked when the subscription is
created, every address a name resolves to when a delivery is made (names can change),
and the delivery then connects to the address that was checked: a name that answers a
public address to the check and a private one to the connection (DNS rebinding) cannot
steer a request inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

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


@dataclass(frozen=True)
class Resolved:
    """The outcome of a delivery-time check: a refusal, or the address to connect to."""

    refused: str | None = None
    address: str | None = None  # None when private targets are allowed: connect as usual


def check_resolved(url: str, *, allow_private: bool) -> Resolved:
    """Resolve the host once; refuse if any of its addresses is not public, else name the
    address the delivery must connect to."""
    if allow_private:
        return Resolved()
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        return Resolved("the host does not resolve")
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        return Resolved("the host does not resolve")
    if any(_forbidden(a) for a in addresses):
        return Resolved("the host resolves to a private, loopback or link-local address")
    return Resolved(address=str(addresses[0]))


def pinned(url: str, address: str) -> tuple[str, str]:
    """``url`` with its host replaced by ``address``, and the Host header it must carry."""
    parts = urlsplit(url)
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc)), host_header
