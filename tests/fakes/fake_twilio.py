"""FakeTwilio: enough of Twilio's REST API for ``client.messages.create(...)``, on 127.0.0.1.

Shaped by /work/shared/spec/library-notes.md §3 (twilio 9.13 against a local fake):

* the client POSTs form fields ``To``, ``From``/``MessagingServiceSid``, ``Body``,
  ``StatusCallback`` to ``/2010-04-01/Accounts/{sid}/Messages.json`` with HTTP Basic auth
  ``sid:token``; the answer must be **201** with a JSON message resource;
* a legacy error body ``{code, message, more_info, status}`` raises ``TwilioRestException``
  (``.status``, ``.code``); an RFC 9457 body (``type, title, status, code``) raises
  ``TwilioServiceException``, which is *not* a TwilioRestException (catch TwilioException);
* the client never retries on status codes and ignores ``Retry-After``.

Point the real client at it with ``client.api.base_url = fake.url`` (and unset TWILIO_EDGE /
TWILIO_REGION, which mangle local hosts).
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from twilio.request_validator import RequestValidator

from ._http import Delay, Drop, FakeHTTPServer, RecordedRequest, Reply, json_reply

__all__ = [
    "Delay",
    "Drop",
    "FakeTwilio",
    "Reply",
    "num_segments",
    "rfc9457_error",
    "sign_callback",
    "twilio_error",
]

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
# GSM 03.38 basic alphabet and the extension table (extension characters cost two septets).
_GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
              "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = "^{}\\[~]|€\f"


def twilio_error(status: int, code: int, message: str) -> Reply:
    """A legacy Twilio error body → ``TwilioRestException(status, code=code)`` in the client."""
    return json_reply(status, {"code": code, "message": message, "status": status,
                               "more_info": f"https://www.twilio.com/docs/errors/{code}"})


def rfc9457_error(status: int, code: int, title: str, detail: str | None = None,
                  instance: str | None = None) -> Reply:
    """An RFC 9457 problem body → ``TwilioServiceException`` in the client (library-notes §3)."""
    body: dict[str, Any] = {"type": f"https://www.twilio.com/docs/api/errors/{code}",
                            "title": title, "status": status, "code": code}
    if detail is not None:
        body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    return json_reply(status, body, {"Content-Type": "application/problem+json"})


def sign_callback(auth_token: str, url: str, params: dict[str, str]) -> str:
    """``X-Twilio-Signature`` for a status-callback POST of ``params`` to ``url``."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def num_segments(body: str) -> int:
    """SMS segments like Twilio counts them: GSM-7 160/153 septets, else UCS-2 70/67 units."""
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in body):
        n, single, multi = sum(2 if c in _GSM_EXT else 1 for c in body), 160, 153
    else:
        n, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if n <= single else math.ceil(n / multi)


class FakeTwilio(FakeHTTPServer):
    """A local Twilio Messages API. ``with FakeTwilio(sid, token) as fake: ...``

    Attributes: ``url``, ``requests`` (every request, recorded), ``messages`` (accepted
    message resources as returned to the client, plus the ``status_callback`` it asked for),
    ``latency`` (seconds added to every request),
    ``script(*behaviours)`` (one-shot ``Reply``/``Delay``/``Drop`` for the next requests).
    """

    def __init__(self, account_sid: str = "AC" + "0123456789abcdef" * 2,
                 auth_token: str = "fake-auth-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._messages: list[dict[str, Any]] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Snapshot of the accepted message resources, in arrival order."""
        with self._lock:
            return list(self._messages)

    def message(self, sid: str) -> dict[str, Any]:
        with self._lock:
            for m in self._messages:
                if m["sid"] == sid:
                    return m
        raise KeyError(sid)

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._messages.clear()

    # -- status callbacks ---------------------------------------------------------------------
    def status_callback_params(self, message_sid: str, status: str,
                               error_code: int | None = None) -> dict[str, str]:
        """The form fields Twilio POSTs to ``StatusCallback`` for an accepted message.

        ``ErrorCode`` is added for ``failed``/``undelivered`` (default 30008, "Unknown error").
        """
        m = self.message(message_sid)
        params = {"SmsSid": message_sid, "SmsStatus": status, "MessageStatus": status,
                  "To": m["to"], "MessageSid": message_sid, "AccountSid": self.account_sid,
                  "From": m["from"] or "", "ApiVersion": "2010-04-01"}
        if m["messaging_service_sid"]:
            params["MessagingServiceSid"] = m["messaging_service_sid"]
        if status in ("failed", "undelivered") or error_code is not None:
            params["ErrorCode"] = str(error_code if error_code is not None else 30008)
        return params

    def sign_callback(self, url: str, params: dict[str, str]) -> str:
        """:func:`sign_callback` with this fake's auth token."""
        return sign_callback(self.auth_token, url, params)

    # -- the API ------------------------------------------------------------------------------
    def scriptable(self, req: RecordedRequest) -> bool:
        return _MESSAGES_PATH.match(req.path) is not None

    def _authorised(self, req: RecordedRequest, path_sid: str) -> bool:
        scheme, _, cred = req.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, pw = base64.b64decode(cred, validate=True).decode().partition(":")
        except ValueError:
            return False
        return (secrets.compare_digest(user, self.account_sid)
                and secrets.compare_digest(pw, self.auth_token) and path_sid == self.account_sid)

    def handle(self, req: RecordedRequest) -> Reply:
        m = _MESSAGES_PATH.match(req.path)
        if m is None:
            return twilio_error(404, 20404, f"The requested resource {req.path} was not found")
        if req.method != "POST":
            return twilio_error(405, 20004, "Method not allowed")
        if not self._authorised(req, m["sid"]):
            reply = twilio_error(401, 20003, "Authenticate")
            return Reply(reply.status, reply.json, {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        f = req.form
        to, from_, mss = f.get("To", ""), f.get("From", ""), f.get("MessagingServiceSid", "")
        body = f.get("Body", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not mss:
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body and not f.get("MediaUrl") and not f.get("ContentSid"):
            return twilio_error(400, 21602, "Message body is required.")
        if not _E164.match(to):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if len(body) > 1600:
            return twilio_error(400, 21617,
                                "The concatenated message body exceeds the 1600 character limit.")
        return json_reply(201, self._accept(to, from_ or None, mss or None, body,
                                            f.get("StatusCallback") or None))

    def _accept(self, to: str, from_: str | None, mss: str | None, body: str,
                status_callback: str | None) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC).replace(microsecond=0))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        resource: dict[str, Any] = {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": from_, "messaging_service_sid": mss, "num_media": "0",
            "num_segments": str(num_segments(body)), "price": None, "price_unit": "USD",
            "sid": sid,
            # With a Messaging Service and no From, Twilio answers "accepted" (sender chosen later).
            "status": "accepted" if mss and not from_ else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"}, "to": to, "uri": f"{uri}.json",
        }
        with self._lock:
            self._messages.append({**resource, "status_callback": status_callback})
        return resource
