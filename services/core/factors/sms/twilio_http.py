"""The HTTP layer under the official twilio ``Client``: twilio's own aiohttp client, bounded.

twilio ships ``AsyncTwilioHttpClient`` for ``messages.create_async``. Used as it is, a
worker would get three surprises, which this subclass removes:

* no timeout: the stock client hands its ``timeout=None`` to aiohttp, which reads None as
  "wait forever"; here every request has a total timeout;
* its session is made in ``__init__``, outside any running loop; here it is made in the
  loop that will use it, with a connection pool sized by the caller;
* it logs every request's headers at INFO, formatting them even when INFO is off (CPU per
  message); here nothing is logged per request.

Proxy and CA bundle come from the environment once, at start-up, as requests would have
read them (HTTP(S)_PROXY / NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE).
"""

from __future__ import annotations

import base64
import functools
import os
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response


class BoundedAsyncTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # untyped SDK
    def __init__(self, session: ClientSession, timeout: float, proxy: str | None) -> None:
        super().__init__(pool_connections=False, timeout=timeout)
        self.session = session
        self._proxy = proxy

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if auth:
            headers = {**(headers or {}), "Authorization": _basic(*auth)}
        kwargs: dict[str, Any] = {
            "params": params, "headers": headers,
            # Encoded here: given a dict, aiohttp builds a multipart writer (and a uuid4
            # boundary) per request before it settles on urlencoding, a tenth of the send's CPU.
            "data": urlencode(data, doseq=True).encode() if isinstance(data, dict) else data,
            "timeout": ClientTimeout(total=timeout or self.timeout),
            "allow_redirects": allow_redirects, "proxy": self._proxy,
        }
        async with self.session.request(method.upper(), url, **kwargs) as response:
            return Response(response.status, await response.text(), response.headers)


@functools.lru_cache(maxsize=4)
def _basic(user: str, password: str) -> str:
    # By hand: aiohttp's BasicAuth is deprecated and its replacement is only in recent versions.
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _ssl_context() -> ssl.SSLContext | bool:
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True


async def make_http_client(
    api_url: str, timeout: float, pool_size: int
) -> BoundedAsyncTwilioHttpClient:
    """Call inside the loop that will run the requests (aiohttp binds the session to it)."""
    session = ClientSession(
        connector=TCPConnector(limit=pool_size, ssl=_ssl_context()), trust_env=False
    )
    return BoundedAsyncTwilioHttpClient(session, timeout, _proxy_for(api_url))
