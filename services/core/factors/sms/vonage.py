"""Vonage's SMS API through the official ``vonage`` SDK: sending and its errors (the check of
its receipts is in ``vonage_receipts``).

The SDK builds every URL as ``https://{rest_host}{path}``; a transport adapter mounted on the
SDK's session sends them to ``settings.vonage_api_url`` instead (the real host by default, a
local fake in tests), with this service's timeout and no retries of its own: a failed send is
the caller's to retry or to hand to the next provider.

Sends authenticate with the API key and secret (HTTP Basic). The signature secret only checks
the ``sig`` of a delivery receipt, through the SDK's ``Auth.check_signature``: the SDK (4.9)
also signs requests when it has that secret, but it signs the unset fields of the message
(``…=None``) that it then does not send, so such a request cannot verify.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from vonage import Auth, HttpClientOptions, Vonage, VonageError
from vonage_http_client.errors import HttpRequestError
from vonage_sms import SmsError, SmsMessage

from services.core.factors.sms.sender import SmsReceipt
from services.core.factors.sms.vonage_receipts import RECEIPT_PATH
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.core.plumbing.settings import Settings

# Vonage SMS API ``status`` values that are about Vonage, not about the number or the message:
# throttled, internal error, account out of credit, too many connections. Another provider
# (or Vonage later) can send that message; every other non-zero status is permanent.
TRANSIENT_STATUSES = frozenset({1, 5, 9, 10})
# The SDK reports a refused message only in its exception's text.
_STATUS_IN_MESSAGE = re.compile(r"error code (\d+)")
# Vonage's callback parameter holds at most 100 characters.
_MAX_CALLBACK = 100
# The SDK logs every request's fields (the number, the text with its code) at DEBUG and every
# error answer's body at WARNING. Its failures reach us as exceptions, logged without either.
logging.getLogger("vonage").setLevel(logging.CRITICAL + 1)


def classify_vonage_error(exc: BaseException) -> TransientProviderError | PermanentProviderError:
    """Sorted like Twilio's: throttling, Vonage's own trouble (status 1, 5, 9, 10; HTTP 429 and
    5xx) and anything on the network are transient; a refused number or message (3 invalid
    parameters, 6 unroutable, 7 barred, 15 illegal sender, …) and bad credentials are
    permanent."""
    if isinstance(exc, SmsError):
        found = _STATUS_IN_MESSAGE.search(str(exc))
        if found is None:
            return TransientProviderError("vonage refused the message without a status")
        status = int(found.group(1))
        text = f"vonage status {status}"
        if status in TRANSIENT_STATUSES:
            return TransientProviderError(text, code=status)
        return PermanentProviderError(text, code=status)
    if isinstance(exc, HttpRequestError):
        http = int(exc.response.status_code)
        text = f"vonage HTTP {http}"
        if http == 429 or http >= 500:
            return TransientProviderError(text, status=http,
                                          retry_after=_retry_after(exc.response))
        return PermanentProviderError(text, status=http)
    if isinstance(exc, requests.Timeout):
        return TransientProviderError(f"vonage timed out: {type(exc).__name__}")
    if isinstance(exc, (requests.RequestException, OSError, VonageError)):
        return TransientProviderError(f"vonage unreachable: {type(exc).__name__}")
    if isinstance(exc, (TypeError, KeyError, ValueError)):
        # The SDK reads an answer that is not the SMS API's JSON (a proxy's error page).
        return TransientProviderError(f"vonage answered unreadably: {type(exc).__name__}")
    raise TypeError(f"not a provider failure: {type(exc).__name__}") from exc


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


class _BaseUrlAdapter(HTTPAdapter):
    """Sends the SDK's ``https://{rest_host}/…`` requests to the configured base URL."""

    def __init__(self, base_url: str, timeout: float, pool_size: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        parts = urlsplit(base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit((self._scheme, self._netloc, self._prefix + parts.path,
                                  parts.query, ""))
        kwargs["timeout"] = self._timeout  # connect, and each read
        return super().send(request, *args, **kwargs)


class VonageSender:
    """``vonage.Vonage(...).sms.send`` with a bounded timeout, from a worker's threads.

    The receipt comes back to ``RECEIPT_PATH`` carrying our message id as ``client-ref``, so
    a message whose worker died before recording Vonage's id still settles.
    """

    name = "vonage"

    def __init__(self, settings: Settings, *, pool_size: int = 256) -> None:
        if not (settings.vonage_api_key and settings.vonage_api_secret):
            raise ValueError("Vonage credentials are not configured")
        auth = Auth(api_key=settings.vonage_api_key,
                    api_secret=settings.vonage_api_secret.get_secret_value())
        self._from = (settings.vonage_from or "").removeprefix("+")
        # pool_maxsize is also the number of times the SDK repeats a request whose connection
        # the server closed: one, so that a send is never repeated behind our back.
        client = Vonage(auth, HttpClientOptions(
            rest_host=urlsplit(settings.vonage_api_url).netloc, pool_maxsize=1, max_retries=0))
        client.http_client._session.mount("https://", _BaseUrlAdapter(
            settings.vonage_api_url, settings.sms_send_timeout_seconds, pool_size))
        self._client = client
        callback = settings.public_url.rstrip("/") + RECEIPT_PATH
        self._callback = callback if len(callback) <= _MAX_CALLBACK else None

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        message = SmsMessage(
            to=to.removeprefix("+"), from_=self._from, text=body,
            client_ref=str(reference) if reference else None,
            callback=self._callback if reference else None,
        )
        try:
            answer = self._client.sms.send(message)
        except (VonageError, requests.RequestException, OSError, TypeError, KeyError,
                ValueError) as exc:
            raise classify_vonage_error(exc) from exc
        message_id = answer.messages[0].message_id if answer.messages else None
        if not message_id:
            raise TransientProviderError("vonage answered without a message id")
        return SmsReceipt(self.name, message_id)

    def close(self) -> None:
        self._client.http_client._session.close()
