"""One POST to one receiver, bounded in time, never following a redirect.

``Poster`` is what the delivery loop needs; ``HttpPoster`` is the real one (httpx).
Any answer other than 2xx, a timeout, a refused connection or a refused target is a
failed attempt, told apart only by ``error`` (for the subscription's ``last_error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx

from services.core.webhooks.targets import check_resolved, pinned

USER_AGENT = "twofa-webhooks/1"


@dataclass(frozen=True)
class PostResult:
    ok: bool
    error: str | None = None  # short and free of the payload: it is stored and shown


class Poster(Protocol):
    def post(self, url: str, headers: dict[str, str], body: str) -> PostResult: ...


class HttpPoster:
    """A shared httpx client with bounded timeouts (the connect, and each read and write).

    Only the status line and headers are read: the answer's body is of no use, and a
    receiver could make it endless.
    """

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    def post(self, url: str, headers: dict[str, str], body: str) -> PostResult:
        resolved = check_resolved(url, allow_private=self._allow_private)
        if resolved.refused:
            return PostResult(False, f"target refused: {resolved.refused}")
        extensions: dict[str, str] = {}
        if resolved.address is not None:
            # Connect to the address that was checked; the name still goes in the Host
            # header and, for TLS, in SNI and the certificate check.
            host = httpx.URL(url).host
            url, host_header = pinned(url, resolved.address)
            headers = {**headers, "host": host_header}
            extensions["sni_hostname"] = host
        try:
            with self._client.stream(
                "POST", url, headers=headers, content=body.encode(), extensions=extensions
            ) as reply:
                status, redirect = reply.status_code, reply.is_redirect
        except httpx.TimeoutException:
            return PostResult(False, "timed out")
        except httpx.HTTPError as exc:
            return PostResult(False, f"unreachable: {type(exc).__name__}")
        if 200 <= status < 300:
            return PostResult(True)
        if redirect:
            return PostResult(False, f"HTTP {status}: redirects are not followed")
        return PostResult(False, f"HTTP {status}")

    def close(self) -> None:
        self._client.close()
