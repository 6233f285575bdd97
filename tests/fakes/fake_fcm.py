"""FakeFCM: a local FCM HTTP v1 endpoint plus the Google OAuth token endpoint it needs.

Shaped by /work/shared/spec/library-notes.md §4 (pyfcm 2.1.1 against a local fake):

* google-auth POSTs ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``
  to the ``token_uri`` of the service-account JSON; the JWT (RS256, claims iss, aud, scope,
  iat, exp) keeps ``aud == "https://oauth2.googleapis.com/token"`` even with a custom token_uri;
* pyfcm then POSTs ``{"message": {...}, "validate_only": false}`` to
  ``{FCM_END_POINT_BASE}/{project_id}/messages:send`` with ``Authorization: Bearer <token>``;
* FCM rejects non-string ``message.data`` values with 400 INVALID_ARGUMENT (pyfcm does not check);
* pyfcm maps 404 → FCMNotRegisteredError, 400 → InvalidDataError, 500 → FCMServerError, sleeps
  on ``Retry-After`` and lets urllib3 retry 502/503 with backoff.

Push-protocol §4: privacyIDEA sends the challenge as ``message.data`` (all strings) with
``android: {priority: HIGH, ttl: "120s"}``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ._http import Delay, Drop, FakeHTTPServer, RecordedRequest, Reply, json_reply

__all__ = [
    "Delay",
    "Drop",
    "FakeFCM",
    "FcmMessage",
    "Reply",
    "invalid_argument",
    "server_error",
    "too_many",
    "unregistered",
]

GOOGLE_TOKEN_AUD = "https://oauth2.googleapis.com/token"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def _google_error(code: int, status: str, message: str, error_code: str | None = None,
                  headers: dict[str, str] | None = None) -> Reply:
    err: dict[str, Any] = {"code": code, "status": status, "message": message}
    if error_code is not None:
        err["details"] = [{"@type": _FCM_ERROR, "errorCode": error_code}]
    return json_reply(code, {"error": err}, headers)


def unregistered() -> Reply:
    """404 UNREGISTERED: the app was uninstalled / the token is stale (→ FCMNotRegisteredError)."""
    return _google_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")


def server_error(status: int = 500) -> Reply:
    """500 INTERNAL (→ FCMServerError) or 503 UNAVAILABLE (retried by pyfcm's urllib3 Retry)."""
    if status == 503:
        return _google_error(503, "UNAVAILABLE", "The service is currently unavailable.",
                             "UNAVAILABLE")
    return _google_error(status, "INTERNAL", "Internal error encountered.", "INTERNAL")


def too_many(retry_after: int | None = None) -> Reply:
    """429 QUOTA_EXCEEDED. With ``retry_after`` pyfcm sleeps that long and resends."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return _google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric.",
                         "QUOTA_EXCEEDED", headers)


def invalid_argument(message: str = "The registration token is not a valid FCM registration "
                     "token") -> Reply:
    """400 INVALID_ARGUMENT (→ InvalidDataError with the body text)."""
    return _google_error(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT")


@lru_cache(maxsize=1)
def _service_account_key() -> rsa.RSAPrivateKey:
    """One RSA 2048 key per process: every FakeFCM's service account may share it."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class FcmMessage:
    """An accepted ``messages:send``. ``received_perf`` / ``received_wall`` are taken when the
    request arrived (``time.perf_counter()`` / ``time.time()``), for latency benchmarks."""

    name: str
    project: str
    message: dict[str, Any]
    received_perf: float
    received_wall: float

    @property
    def token(self) -> str | None:
        return self.message.get("token")

    @property
    def data(self) -> dict[str, str]:
        return dict(self.message.get("data") or {})

    @property
    def android(self) -> dict[str, Any]:
        return dict(self.message.get("android") or {})

    @property
    def apns(self) -> dict[str, Any]:
        return dict(self.message.get("apns") or {})

    @property
    def notification(self) -> dict[str, Any] | None:
        return self.message.get("notification")


class FakeFCM(FakeHTTPServer):
    """Local FCM v1 + OAuth. ``with FakeFCM() as fake: fake.write_service_account(p)``.

    Point pyfcm at it with ``FCM_END_POINT_BASE = f"{fake.api_base}/v1/projects"`` and
    ``service_account_file=p``. ``script()`` behaviours apply to ``messages:send`` only.
    """

    def __init__(self, project_id: str = "demo-2fa") -> None:
        super().__init__()
        self.project_id = project_id
        self.client_email = f"pusher@{project_id}.iam.gserviceaccount.com"
        self._key = _service_account_key()
        self._tokens: dict[str, bool] = {}  # access token -> still valid
        self._messages: list[FcmMessage] = []
        self._arrived = threading.Condition(self._lock)

    @property
    def api_base(self) -> str:
        return self.url

    # -- service account and tokens -----------------------------------------------------------
    def service_account_info(self) -> dict[str, str]:
        pem = self._key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": self.project_id,
                "private_key_id": "fake-key-1", "private_key": pem,
                "client_email": self.client_email, "client_id": "100000000000000000001",
                "auth_uri": f"{self.url}/auth", "token_uri": f"{self.url}/token",
                "universe_domain": "googleapis.com"}

    def write_service_account(self, path: str | Path) -> Path:
        """Write the service-account JSON (``token_uri`` = this fake) and return its path."""
        p = Path(path)
        p.write_text(json.dumps(self.service_account_info(), indent=2))
        return p

    @property
    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def expire_tokens(self) -> None:
        """Make every issued token answer 401 ACCESS_TOKEN_EXPIRED (pyfcm then re-fetches)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, False)

    # -- recorded messages --------------------------------------------------------------------
    @property
    def messages(self) -> list[FcmMessage]:
        with self._lock:
            return list(self._messages)

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[FcmMessage]:
        """Block until at least ``n`` messages arrived; return them all. TimeoutError if not."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= n, timeout):
                raise TimeoutError(f"{len(self._messages)} of {n} FCM messages in {timeout} s")
            return list(self._messages)

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._messages.clear()

    # -- the HTTP API -------------------------------------------------------------------------
    def scriptable(self, req: RecordedRequest) -> bool:
        return _SEND_PATH.match(req.path) is not None

    def handle(self, req: RecordedRequest) -> Reply:
        if req.method == "POST" and req.path == "/token":
            return self._token(req.form)
        m = _SEND_PATH.match(req.path)
        if req.method != "POST" or m is None:
            return _google_error(404, "NOT_FOUND", f"{req.path} not found")
        auth = self._check_bearer(req.headers.get("Authorization", ""))
        if auth is not None:
            return auth
        if m["project"] != self.project_id:
            return _google_error(403, "PERMISSION_DENIED",
                                 "Permission 'cloudmessaging.messages.create' denied",
                                 "SENDER_ID_MISMATCH")
        body = req.json
        msg = body.get("message") if isinstance(body, dict) else None
        if not isinstance(msg, dict):
            return invalid_argument("Invalid JSON payload received. 'message' is required.")
        problem = _validate_message(msg)
        if problem is not None:
            return invalid_argument(problem)
        if body.get("validate_only"):
            return json_reply(200, {"name": f"projects/{m['project']}/messages/fake_message_id"})
        name = f"projects/{m['project']}/messages/0:{int(req.t_wall * 1e6)}%{secrets.token_hex(8)}"
        with self._arrived:
            self._messages.append(FcmMessage(name, m["project"], msg, req.t_perf, req.t_wall))
            self._arrived.notify_all()
        return json_reply(200, {"name": name})

    def _token(self, form: dict[str, str]) -> Reply:
        """OAuth 2 JWT-bearer grant (RFC 7523), as oauth2.googleapis.com answers it."""
        if form.get("grant_type") != JWT_BEARER:
            return json_reply(400, {"error": "unsupported_grant_type",
                                    "error_description": "Invalid grant_type"})
        try:
            claims = jwt.decode(form.get("assertion", ""), self._key.public_key(),
                                algorithms=["RS256"], audience=GOOGLE_TOKEN_AUD,
                                issuer=self.client_email, options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return json_reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if FCM_SCOPE not in str(claims.get("scope", "")).split():
            return json_reply(400, {"error": "invalid_scope",
                                    "error_description": "firebase.messaging scope missing"})
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = True
        return json_reply(200, {"access_token": token, "expires_in": 3600,
                                "token_type": "Bearer"})

    def _check_bearer(self, header: str) -> Reply | None:
        scheme, _, token = header.partition(" ")
        with self._lock:
            valid = self._tokens.get(token) if scheme == "Bearer" else None
        if valid:
            return None
        reason = "ACCESS_TOKEN_EXPIRED" if valid is False else "CREDENTIALS_MISSING"
        return json_reply(401, {"error": {
            "code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials.",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                         "domain": "googleapis.com"}]}})


def _validate_message(msg: dict[str, Any]) -> str | None:
    """The subset of FCM's message validation our senders can trip over; None if valid."""
    targets = [k for k in ("token", "topic", "condition") if msg.get(k)]
    if len(targets) != 1:
        return "Exactly one of token, topic or condition must be set."
    data = msg.get("data", {})
    if not isinstance(data, dict):
        return "Invalid value at 'message.data' (type.googleapis.com/google.protobuf.Struct)"
    for i, (key, value) in enumerate(data.items()):
        if not isinstance(value, str):
            return f"Invalid value at 'message.data[{i}].value' (TYPE_STRING), {value!r}"
        if key in ("from", "notification", "message_type") or key.startswith(("google", "gcm")):
            return f"Invalid data payload key: {key}"
    ttl = msg.get("android", {}).get("ttl")
    if ttl is not None and not re.fullmatch(r"\d+(\.\d{1,9})?s", str(ttl)):
        return ("Invalid value at 'message.android.ttl' "
                f"(type.googleapis.com/google.protobuf.Duration), {ttl!r}")
    return None
