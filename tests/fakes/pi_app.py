"""PiAuthenticatorApp: the privacyIDEA Authenticator app 4.8 as /work/shared/spec/push-protocol.md
describes it, for protocol tests against OUR push endpoint.

HTTP goes through an injected ``http`` object with httpx-style ``post(url, data=...)`` and
``get(url, params=...)`` returning objects with ``status_code`` and ``json()``: an
``httpx.Client`` (real HTTP) or a FastAPI ``TestClient`` (it takes absolute URLs as they are).
TLS verification (``sslverify``) is the injected client's business.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jcs
from cryptography.hazmat.primitives.asymmetric import rsa

from .pi_crypto import (
    dart_uri_to_string,
    dart_utc_iso,
    parse_pkcs1_b64,
    pooled_key,
    sign,
    spki_b64,
    verify,
)
from .pi_model import (
    APP_CAPABILITIES,
    DECLINE_REASONS,
    NO_FIREBASE_TOKEN,
    AppRejected,
    AppToken,
    HttpLike,
    PollError,
    PushRequest,
    challenge_sign_string,
    parse_bool,
)

__all__ = [
    "APP_CAPABILITIES",
    "DECLINE_REASONS",
    "NO_FIREBASE_TOKEN",
    "AppRejected",
    "AppToken",
    "PiAuthenticatorApp",
    "PollError",
    "PushRequest",
    "challenge_sign_string",
]

_REQUIRED = ("title", "question", "url", "nonce", "sslverify", "serial", "signature")  # §4


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


class PiAuthenticatorApp:
    """One phone running the app. ``tokens`` maps serial → :class:`AppToken`."""

    def __init__(self, http: HttpLike) -> None:
        self.http = http
        self.tokens: dict[str, AppToken] = {}
        self.last_response: Any = None

    # -- §1 enrollment step 1 -----------------------------------------------------------------
    def scan(self, otpauth_url: str, now: float | None = None) -> AppToken:
        """Parse the QR code URL with the app's validation rules (§1); raise AppRejected."""
        parts = urlsplit(otpauth_url)
        if parts.scheme.lower() not in ("otpauth", "pia"):  # pia:// is rewritten to otpauth://
            raise AppRejected(f"unsupported scheme {parts.scheme!r}")
        if parts.netloc.lower() != "pipush":
            raise AppRejected(f"token type {parts.netloc!r} is not PIPUSH")
        q = dict(parse_qsl(parts.query, keep_blank_values=True))
        if q.get("v") != "1":
            raise AppRejected("piauth version not supported")
        label, issuer = unquote(parts.path.lstrip("/")), q.get("issuer", "")
        if ":" in label:
            issuer, label = label.split(":", 1)
        url = q.get("url") or ""
        if not url:
            raise AppRejected("url is required")
        if "://" not in url:
            url = "https://" + url  # a missing scheme is taken as https
        try:
            dart_uri_to_string(url)
            if not urlsplit(url).hostname:
                raise ValueError("no host")
        except ValueError as exc:
            raise AppRejected(f"url does not parse: {exc}") from exc
        try:
            ttl = int(q.get("ttl") or 3)  # minutes, app default 3
        except ValueError as exc:
            raise AppRejected(f"ttl={q.get('ttl')!r} is not an integer") from exc
        if ttl <= 0:
            raise AppRejected("ttl must be > 0")
        if not q.get("serial"):
            raise AppRejected("serial is required")
        token = AppToken(
            serial=q["serial"], label=label, issuer=issuer, url=url, ttl_minutes=ttl,
            enrollment_credential=q.get("enrollment_credential") or None,
            sslverify=parse_bool(q.get("sslverify"), True, "sslverify"),
            poll_only=parse_bool(q.get("poll_only"), False, "poll_only"),
            pin=parse_bool(q.get("pin"), False, "pin"), image=q.get("image"),
            force_unlock=q.get("app_force_unlock"),
            scanned_at=time.time() if now is None else now)
        self.tokens[token.serial] = token
        return token

    # -- §2 enrollment step 2 -----------------------------------------------------------------
    def register(self, token: AppToken, fbtoken: str | None = None, key_size: int = 4096,
                 capabilities: bool = True, now: float | None = None,
                 private_key: rsa.RSAPrivateKey | None = None) -> Any:
        """POST the app key (§2); require 200 + ``result.status``; parse ``detail.public_key``
        as PKCS#1 only (§0). Returns the parsed JSON answer."""
        if token.rolled_out:
            raise AppRejected("token is already rolled out")
        if (time.time() if now is None else now) > token.deadline:
            raise AppRejected(f"rollout ttl of {token.ttl_minutes} min has passed")
        if token.enrollment_credential is None:
            raise AppRejected("enrollment_credential is missing (the app will not POST null)")
        key = private_key or pooled_key(key_size)
        fb = NO_FIREBASE_TOKEN if token.poll_only or not fbtoken else fbtoken
        form = {"enrollment_credential": token.enrollment_credential, "serial": token.serial,
                "fbtoken": fb, "pubkey": spki_b64(key.public_key())}
        if capabilities:
            form["capabilities"] = jcs.canonicalize(APP_CAPABILITIES).decode()
        resp = self.last_response = self.http.post(token.url, data=form)
        body = _json(resp)
        result = body.get("result") if isinstance(body, dict) else None
        if resp.status_code != 200 or not isinstance(result, dict) \
                or result.get("status") is not True:
            raise AppRejected(f"rollout failed: HTTP {resp.status_code}", status=resp.status_code,
                              body=body)
        public_key = (body.get("detail") or {}).get("public_key")
        if not isinstance(public_key, str):
            raise AppRejected("detail.public_key is missing", status=200, body=body)
        try:
            server_key = parse_pkcs1_b64(public_key)
        except ValueError as exc:
            raise AppRejected(f"bad server public key: {exc}", status=200, body=body) from exc
        token.private_key, token.server_public_key = key, server_key
        token.fbtoken, token.send_capabilities = fb, capabilities
        return body

    # -- §4 challenges ------------------------------------------------------------------------
    def verify_challenge(self, token: AppToken | None, data: Mapping[str, Any],
                         now: float | None = None) -> PushRequest:
        """The app's checks on a Firebase message / poll entry (§4); raise AppRejected."""
        for k in _REQUIRED:
            if not isinstance(data.get(k), str):
                raise AppRejected(f"{k} is missing or not a string")
        try:
            dart_uri_to_string(data["url"])
            urlsplit(data["url"]).port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise AppRejected(f"url does not parse: {exc}") from exc
        tok = self.tokens.get(data["serial"]) if token is None else token
        if tok is None or tok.serial != data["serial"] or tok.server_public_key is None:
            raise AppRejected(f"serial {data['serial']!r} is not a rolled-out token")
        if data["sslverify"] not in ("1", "0"):
            raise AppRejected(f"sslverify={data['sslverify']!r} is not '1' or '0'")
        try:
            ok = verify(tok.server_public_key, challenge_sign_string(data), data["signature"])
        except ValueError as exc:
            raise AppRejected(str(exc)) from exc
        if not ok:
            raise AppRejected("challenge signature does not verify")
        caps = self._capabilities(tok.server_public_key, data)
        options = data["require_presence"].split(",") \
            if isinstance(data.get("require_presence"), str) else None
        code = data.get("display_code") if options is None else None
        return PushRequest(
            nonce=data["nonce"], serial=data["serial"], question=data["question"],
            title=data["title"], url=data["url"], sslverify=data["sslverify"] == "1",
            options=options, display_code=code if isinstance(code, str) else None,
            capabilities=caps,
            decline_reason_supported=bool(caps and caps.get("decline_reason") is True),
            received_at=time.time() if now is None else now, token=tok)

    @staticmethod
    def _capabilities(key: rsa.RSAPublicKey, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """§4: a signature that fails rejects the request; malformed or missing → absent."""
        raw, sig = data.get("capabilities"), data.get("capabilities_signature")
        if not isinstance(raw, str) or not isinstance(sig, str):
            return None
        try:
            caps = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(caps, dict):
            return None
        signed = jcs.canonicalize({"capabilities": caps, "nonce": data["nonce"]}).decode()
        try:
            ok = verify(key, signed, sig)
        except ValueError:
            return None
        if not ok:
            raise AppRejected("capabilities signature does not verify")
        return caps

    # -- §5 answers ---------------------------------------------------------------------------
    def accept(self, req: PushRequest, presence_answer: str | None = None,
               now: float | None = None) -> Any:
        """§5.1/§5.3: sign ``nonce|serial[|presence_answer]`` and POST it to ``req.url``."""
        if req.options is not None and presence_answer not in req.options:
            raise AppRejected("a presence request needs one of its options as answer")
        if req.options is None and presence_answer is not None:
            raise AppRejected("presence_answer on a request without options")
        extra = {"presence_answer": presence_answer} if presence_answer else {}
        return self._answer(req, [], extra, now)

    def decline(self, req: PushRequest, reason: str | None = None, now: float | None = None) -> Any:
        """§5.2: ``nonce|serial|decline[|reason]``; the reason is only sent when the challenge
        advertised a verified ``decline_reason`` capability (app 4.8)."""
        if reason is not None and reason not in DECLINE_REASONS:
            raise ValueError(f"the app has no decline reason {reason!r}")
        sent = reason if reason and req.decline_reason_supported else None
        extra = {"decline": "1", **({"decline_reason": sent} if sent else {})}
        return self._answer(req, ["decline"] + ([sent] if sent else []), extra, now)

    def _answer(self, req: PushRequest, middle: list[str], extra: dict[str, str],
                now: float | None) -> Any:
        if (time.time() if now is None else now) > req.expires_at:
            raise AppRejected("request expired on the phone (2 min)")
        tail = [extra["presence_answer"]] if "presence_answer" in extra else []
        msg = "|".join([req.nonce, req.serial, *middle, *tail])
        fields = {"serial": req.serial, "nonce": req.nonce,
                  "signature": sign(self._key(req.token), msg), **extra}
        return self.answer_raw(req.url, fields)

    def answer_raw(self, url: str, fields: dict[str, str]) -> Any:
        """POST arbitrary answer fields (forged/replayed answers); returns the parsed JSON."""
        self.last_response = self.http.post(url, data=fields)
        return _json(self.last_response)

    # -- §6 polling, §7 Firebase-token update -------------------------------------------------
    def poll(self, token: AppToken, timestamp: str | None = None) -> list[dict[str, Any]]:
        """GET ``url?serial&timestamp&signature[&capabilities]``; ``result.value`` or PollError."""
        ts = timestamp or dart_utc_iso()
        params = {"serial": token.serial, "timestamp": ts,
                  "signature": sign(self._key(token), f"{token.serial}|{ts}")}
        if token.send_capabilities:
            params["capabilities"] = jcs.canonicalize(APP_CAPABILITIES).decode()
        resp = self.last_response = self.http.get(token.url, params=params)
        body = _json(resp)
        result = body.get("result") if isinstance(body, dict) else None
        if resp.status_code != 200 or not isinstance(result, dict):
            err = (result or {}).get("error") or {}
            raise PollError(resp.status_code, err.get("code"), err.get("message"))
        value = result.get("value")
        if not isinstance(value, list):
            raise PollError(resp.status_code, None, f"result.value is not a list: {value!r}")
        return value

    def poll_requests(self, token: AppToken, timestamp: str | None = None) -> list[PushRequest]:
        """:meth:`poll`, then the §4 checks on every entry (§6: same checks as Firebase)."""
        return [self.verify_challenge(token, entry) for entry in self.poll(token, timestamp)]

    def update_firebase_token(self, token: AppToken, new_token: str,
                              timestamp: str | None = None) -> Any:
        """§7: POST ``new_fb_token, serial, timestamp, signature(new|serial|timestamp)``."""
        ts = timestamp or dart_utc_iso()
        form = {"new_fb_token": new_token, "serial": token.serial, "timestamp": ts,
                "signature": sign(self._key(token), f"{new_token}|{token.serial}|{ts}")}
        if token.send_capabilities:
            form["capabilities"] = jcs.canonicalize(APP_CAPABILITIES).decode()
        self.last_response = self.http.post(token.url, data=form)
        body = _json(self.last_response)
        if isinstance(body, dict) and (body.get("result") or {}).get("value") is True:
            token.fbtoken = new_token
        return body

    @staticmethod
    def _key(token: AppToken) -> rsa.RSAPrivateKey:
        if token.private_key is None:
            raise AppRejected(f"token {token.serial} is not rolled out")
        return token.private_key
