"""SMS senders: the ``SmsSender`` protocol, Twilio and the console twin (Vonage is in
``services.core.factors.sms.vonage``).

Every sender raises only ``TransientProviderError`` (retry later) or
``PermanentProviderError`` (never retry); nothing from ``twilio`` or ``aiohttp`` escapes.
Senders are built once per process (``services.core.factors.sms.failover.build_sender``) and
shared by the worker's threads.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client

from services.core.factors.sms.twilio_http import make_http_client
from services.core.plumbing.providers.aio import LoopThread
from services.core.plumbing.providers.errors import PermanentProviderError, TransientProviderError
from services.core.plumbing.settings import Settings
from shared.types import mask_phone

log = logging.getLogger(__name__)

TWILIO_CALLBACK_PATH = "/v1/callbacks/twilio"


@dataclass(frozen=True)
class SmsReceipt:
    """The provider accepted the message; ``message_id`` is its id (Twilio's ``SM…`` SID)."""

    provider: str
    message_id: str


class SmsSender(Protocol):
    name: str

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        """Hand one message to the provider; ``to`` is E.164. Blocks at most the set timeout.

        ``reference`` (our message id) asks for delivery receipts that carry it back."""


def classify_twilio_error(exc: BaseException) -> TransientProviderError | PermanentProviderError:
    """Twilio never retries by itself (library-notes §3), so every failure is sorted here.

    429 and 5xx (legacy or RFC 9457 bodies) and anything on the network are transient; any
    other 4xx (21211 invalid number, 21610 unsubscribed, 20003 bad credentials) is permanent.
    """
    if isinstance(exc, (TwilioRestException, TwilioServiceException)):
        status, code = int(exc.status or 0), exc.code
        text = f"twilio {status} error {code}"
        if status == 429 or status >= 500:
            return TransientProviderError(text, code=code, status=status)
        return PermanentProviderError(text, code=code, status=status)
    if isinstance(exc, TimeoutError):  # aiohttp's and asyncio's timeouts are TimeoutError
        return TransientProviderError(f"twilio timed out: {type(exc).__name__}")
    if isinstance(exc, (aiohttp.ClientError, TwilioException, OSError)):
        # TwilioException alone: an unreadable answer, e.g. a proxy's HTML error page.
        return TransientProviderError(f"twilio unreachable: {type(exc).__name__}")
    raise TypeError(f"not a provider failure: {type(exc).__name__}") from exc


# Client() falls back to os.environ for any of these it is not given (an empty mapping
# counts as not given), and TWILIO_EDGE / TWILIO_REGION would rewrite the API host.
_NO_EDGE = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


class TwilioSender:
    """The official client, pointed at ``settings.twilio_api_url``, with a bounded timeout.

    Sends go through ``messages.create_async`` on one event loop per sender (its own
    thread); callers block on the result, so the worker's threads only wait while the
    loop carries every request in flight (see ``services.core.plumbing.providers.aio``).
    """

    name = "twilio"

    def __init__(self, settings: Settings, *, pool_size: int = 256) -> None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("Twilio credentials are not configured")
        self._timeout = settings.sms_send_timeout_seconds
        # pool_size caps connections only; the sends in flight are bounded by the callers.
        self._loop = LoopThread("twilio-http")
        self._http = self._loop.run(
            make_http_client(settings.twilio_api_url, self._timeout, pool_size), timeout=10)
        self._client = Client(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            http_client=self._http,
            environment=_NO_EDGE,
        )
        self._client.api.base_url = settings.twilio_api_url.rstrip("/")
        self._messages = self._client.messages
        self._from = settings.twilio_from_number
        self._service = settings.twilio_messaging_service_sid
        self._callback = settings.public_url.rstrip("/") + TWILIO_CALLBACK_PATH

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self._service:
            kwargs["messaging_service_sid"] = self._service
        else:
            kwargs["from_"] = self._from or ""
        if reference:
            # The status callback names our message: it settles even a send whose worker
            # died before recording the SID.
            kwargs["status_callback"] = f"{self._callback}?message_id={reference}"
        try:
            # The request bounds itself; the extra seconds only guard against a stuck loop.
            message = self._loop.run(self._messages.create_async(**kwargs), self._timeout + 5)
        except (TwilioException, aiohttp.ClientError, OSError) as exc:
            raise classify_twilio_error(exc) from exc
        if not message.sid:
            raise TransientProviderError("twilio answered without a message SID")
        return SmsReceipt(self.name, message.sid)

    def close(self) -> None:
        self._loop.run(self._http.close(), 5)
        self._loop.close()


class ConsoleSender:
    """The development twin: the log says *that* an SMS went out (never the code or the
    number); the outbox file ``<var>/outbox/sms.log`` gets the whole message - it is the
    developer's phone, and the only place a code is ever written in clear."""

    name = "console"

    def __init__(self, outbox: Path) -> None:
        self.path = outbox
        self._lock = threading.Lock()
        self._seq = 0

    def send(self, to: str, body: str, *, reference: uuid.UUID | None = None) -> SmsReceipt:
        with self._lock:
            self._seq += 1
            sid = f"CONSOLE{threading.get_ident():x}{self._seq:08d}"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(f"{sid}\tto {to}\t{body}\n")
        log.info("console SMS %s to %s written to %s", sid, mask_phone(to), self.path)
        return SmsReceipt(self.name, sid)


def console_outbox(settings: Settings) -> Path:
    return (settings.var_dir / "outbox" / "sms.log").resolve()

