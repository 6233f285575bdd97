"""FakeVonage: enough of Vonage's SMS API for the ``vonage`` SDK's ``sms.send``, on 127.0.0.1.

What the SDK (vonage 4.9, vonage-sms 1.2) sends and expects, as measured against this fake:

* ``POST /sms/json`` with a form body ``to`` (E.164 without ``+``), ``from``, ``text`` and,
  when given, ``client-ref`` and ``callback``; HTTP Basic ``api_key:api_secret``
  (``Auth(api_key, api_secret)``). The answer is **200** with
  ``{"message-count": "1", "messages": [{"to", "message-id", "status": "0", ...}]}``.
* A refused message is still HTTP 200: ``status`` is non-zero and ``error-text`` says why
  (1 throttled, 2 missing parameters, 3 invalid parameters, 4 invalid credentials,
  5 internal error, 6 unroutable, 15 illegal sender address, ...). The SDK raises
  ``SmsError("... error code {status}: {error-text}")``.
* HTTP 429 / 500 raise ``RateLimitedError`` / ``ServerError``; 401 ``AuthenticationError``.

Delivery receipts: :meth:`FakeVonage.receipt_params` gives the fields Vonage sends for an
accepted message (``messageId``, ``status``, ``err-code``, ``client-ref``, ...), and
:meth:`FakeVonage.sign_receipt` adds ``timestamp``, ``nonce`` and ``sig`` the way Vonage signs
them with the account's signature secret (the SDK's ``Auth.sign_params``).

Point the SDK at it with ``TWOFA_VONAGE_API_URL=fake.url`` (``services.core.factors.sms.vonage``
rewrites the SDK's ``https://rest.nexmo.com`` URLs to it).
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import Any

from vonage import Auth

from ._http import Delay, Drop, FakeHTTPServer, RecordedRequest, Reply, json_reply

__all__ = ["Delay", "Drop", "FakeVonage", "Reply", "vonage_status"]

_SMS_PATH = "/sms/json"
_NUMBER = re.compile(r"^[1-9]\d{6,14}$")


def vonage_status(status: int, error_text: str, to: str = "") -> Reply:
    """HTTP 200 with a non-zero message ``status``: the SDK raises ``SmsError``."""
    return json_reply(200, {"message-count": "1", "messages": [
        {"to": to, "status": str(status), "error-text": error_text}]})


class FakeVonage(FakeHTTPServer):
    """A local Vonage SMS API. ``with FakeVonage() as fake: ...``

    Attributes: ``url``, ``requests`` (every request), ``messages`` (accepted messages: the
    answer's fields plus ``text``, ``from``, ``client-ref`` and ``callback``), ``latency``,
    ``script(*behaviours)`` (one-shot ``Reply``/``Delay``/``Drop`` for the next sends) and
    ``failing`` (every send gets that behaviour while it is set: an outage).
    """

    def __init__(self, api_key: str = "fakekey1", api_secret: str = "fake-api-secret",
                 signature_secret: str = "fake-signature-secret-0123456789",
                 signature_method: str = "sha256") -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.signature_secret, self.signature_method = signature_secret, signature_method
        self._messages: list[dict[str, Any]] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def message(self, message_id: str) -> dict[str, Any]:
        with self._lock:
            for m in self._messages:
                if m["message-id"] == message_id:
                    return m
        raise KeyError(message_id)

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._messages.clear()

    # -- delivery receipts --------------------------------------------------------------------
    def receipt_params(self, message_id: str, status: str = "delivered",
                       err_code: int = 0) -> dict[str, str]:
        """The fields of Vonage's delivery receipt for an accepted message (unsigned)."""
        m = self.message(message_id)
        params = {"msisdn": m["to"], "to": m["from"], "network-code": "26201",
                  "messageId": message_id, "price": "0.03330000", "status": status,
                  "scts": time.strftime("%y%m%d%H%M", time.gmtime()),
                  "err-code": str(err_code), "api-key": self.api_key,
                  "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
        if m.get("client-ref"):
            params["client-ref"] = m["client-ref"]
        return params

    def sign_receipt(self, params: dict[str, str],
                     signature_secret: str | None = None) -> dict[str, str]:
        """``params`` plus ``timestamp``, ``nonce`` and ``sig``, as Vonage signs a receipt."""
        signed: dict[str, Any] = {k: v for k, v in params.items() if k != "sig"}
        signed.setdefault("timestamp", str(int(time.time())))
        signed.setdefault("nonce", secrets.token_hex(8))
        auth = Auth(api_key=self.api_key,
                    signature_secret=signature_secret or self.signature_secret,
                    signature_method=self.signature_method)  # type: ignore[arg-type]
        sig = auth.sign_params(dict(signed))
        return {**{k: str(v) for k, v in signed.items()}, "sig": sig}

    # -- the API ------------------------------------------------------------------------------
    def scriptable(self, req: RecordedRequest) -> bool:
        return req.path == _SMS_PATH

    def _authorised(self, req: RecordedRequest, fields: dict[str, str]) -> bool:
        scheme, _, cred = req.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, pw = base64.b64decode(cred, validate=True).decode().partition(":")
            except ValueError:
                return False
        else:
            user, pw = fields.get("api_key", ""), fields.get("api_secret", "")
        return secrets.compare_digest(user, self.api_key) and secrets.compare_digest(
            pw, self.api_secret)

    def handle(self, req: RecordedRequest) -> Reply:
        if req.path != _SMS_PATH:
            return json_reply(404, {"type": "about:blank", "title": "Not Found"})
        if req.method != "POST":
            return json_reply(405, {"type": "about:blank", "title": "Method Not Allowed"})
        fields = dict(req.form or {})
        if isinstance(req.json, dict):
            fields.update({k: str(v) for k, v in req.json.items()})
        if not self._authorised(req, fields):
            return vonage_status(4, "Bad Credentials")
        to, from_, text = fields.get("to", ""), fields.get("from", ""), fields.get("text", "")
        if not (to and from_ and text):
            return vonage_status(2, "Missing to, from or text", to)
        if not _NUMBER.match(to):
            return vonage_status(3, "Invalid to address", to)
        return json_reply(200, {"message-count": "1", "messages": [self._accept(fields)]})

    def _accept(self, fields: dict[str, str]) -> dict[str, str]:
        answer = {"to": fields["to"], "message-id": secrets.token_hex(8).upper(), "status": "0",
                  "remaining-balance": "15.53590000", "message-price": "0.03330000",
                  "network": "26201"}
        if fields.get("client-ref"):
            answer["client-ref"] = fields["client-ref"]
        with self._lock:
            self._messages.append({**answer, "text": fields["text"], "from": fields["from"],
                                   "callback": fields.get("callback")})
        return answer
