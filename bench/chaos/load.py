"""The load of a chaos run: TOTP, SMS and PUSH logins and TOTP enrollments, over HTTP.

Threads, each owning its own users (so no two logins of one user overlap) and pacing itself
to its share of the rate. A login is what a relying party and a user do:
  totp    POST /v1/challenges, POST …/verify with a fresh code (bench.compare.loadgen's TOTP)
  sms     POST /v1/challenges, POST …/select, the code read from FakeTwilio, POST …/verify
  push    POST /v1/challenges, POST …/select, the push read from FakeFCM and answered by the
          emulated privacyIDEA Authenticator (tests.fakes.pi_app), GET …?wait until approved
          (the push is told apart by its nonce, which the harness reads from the database)
  enroll  a TOTP token started, scanned and activated; confirmed a time step later
Every API answer is recorded with its time and status; every login's start, end and result.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.chaos.fakes import SmsFakes
from bench.compare.loadgen import PERIOD, totp_code
from tests.fakes.fake_fcm import FakeFCM, FcmMessage
from tests.fakes.pi_app import AppToken, PiAuthenticatorApp

KINDS = ("totp", "sms", "push", "enroll")


@dataclass(frozen=True)
class Outcome:
    kind: str
    started: float
    finished: float
    ok: bool
    detail: str = ""


@dataclass
class TotpUser:
    user: str
    token_id: str
    key: bytes
    last_step: int = -1


@dataclass
class SmsUser:
    user: str
    phone: str
    token_id: str = ""


@dataclass
class PushUser:
    user: str
    token_id: str = ""
    token: AppToken | None = None


@dataclass
class Pending:
    user: str
    base: str
    secret: str
    step: int


class LoginError(Exception):
    pass


class HttpFailure(LoginError):
    pass


@dataclass
class Recorder:
    responses: list[tuple[float, int]] = field(default_factory=list)  # (time, status)
    transport_errors: list[float] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def _phone(n: int) -> str:
    return f"+4915110{n:06d}"


def _secret_of(provisioning_uri: str) -> str:
    return parse_qs(urlsplit(provisioning_uri).query)["secret"][0]


def _b32_code(secret: str, step: int) -> str:
    import base64

    pad = "=" * (-len(secret) % 8)
    return totp_code(base64.b32decode(secret.upper() + pad), step)


class Client:
    """One thread's HTTP client; every answer lands in the recorder."""

    def __init__(self, url: str, api_key: str, rec: Recorder) -> None:
        self.http = httpx.Client(base_url=url, timeout=15,
                                 headers={"Authorization": f"Bearer {api_key}"})
        self.rec = rec

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            self.rec.transport_errors.append(time.time())
            raise LoginError(f"transport {type(exc).__name__}") from exc
        self.rec.responses.append((time.time(), r.status_code))
        if r.status_code not in ok:
            raise HttpFailure(f"{method} {re.sub(r'[0-9a-f-]{36}', '{id}', path)} "
                              f"-> {r.status_code}")
        return r.json()


class Worker:
    def __init__(self, load: Load, index: int, totp: list[TotpUser], sms: list[SmsUser],
                 push: list[PushUser]) -> None:
        self.load, self.index = load, index
        self.totp, self.sms, self.push = totp, sms, push
        self.client = Client(load.url, load.api_key, load.rec)
        self.app = PiAuthenticatorApp(httpx.Client(timeout=15))
        self.pending: list[Pending] = []
        self.turn = index
        self.enrolled = 0

    # -- setup ---------------------------------------------------------------------------------
    def enroll_factors(self) -> None:
        for u in self.sms:
            body = self.client.call("POST", f"/v1/users/{u.user}/tokens",
                                    json={"type": "sms", "description": "chaos", "phone": u.phone})
            u.token_id = body["token"]["id"]
            code = self._code_to(u.phone, after=None, timeout=30)
            self.client.call("POST", f"/v1/users/{u.user}/tokens/{u.token_id}/activate",
                             json={"code": code})
        for p in self.push:
            body = self.client.call("POST", f"/v1/users/{p.user}/tokens",
                                    json={"type": "push", "description": "chaos"})
            p.token_id = body["token"]["id"]
            p.token = self.app.scan(body["details"]["enrollment_url"])
            self.app.register(p.token, fbtoken=f"device-{p.user}", key_size=2048)

    def _code_to(self, phone: str, after: float | None, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.load.twilio.messages:
                if m["to"] == phone and re.match(r"\d{6} is your", m["body"]):
                    return str(m["body"].split()[0])
            time.sleep(0.1)
        raise LoginError("enrollment SMS did not arrive")

    # -- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float) -> None:
        time.sleep(interval * self.index / max(1, self.load.threads))
        while not stop.is_set():
            t0 = time.monotonic()
            kind = self.load.mix[self.turn % len(self.load.mix)]
            self.turn += 1
            started = time.time()
            try:
                detail = getattr(self, f"login_{kind}")()
                self.load.rec.outcomes.append(Outcome(kind, started, time.time(), True, detail))
            except LoginError as exc:
                self.load.rec.outcomes.append(Outcome(kind, started, time.time(), False, str(exc)))
            except Exception as exc:  # a bug in the harness must not stop the load silently
                self.load.rec.outcomes.append(Outcome(kind, started, time.time(), False,
                                                      f"harness {type(exc).__name__}: {exc}"))
            left = interval - (time.monotonic() - t0)
            if left > 0:
                stop.wait(left)

    def _challenge(self, user: str) -> str:
        body = self.client.call("POST", "/v1/challenges", json={"user_id": user, "area": "sso"})
        if body["status"] != "pending":
            raise LoginError(f"challenge {body['status']}")
        return str(body["challenge_id"])

    def login_totp(self) -> str:
        step = int(time.time() // PERIOD)
        for _ in range(len(self.totp)):
            u = self.totp[0]
            self.totp.append(self.totp.pop(0))
            if u.last_step < step:
                break
        else:
            raise LoginError("every TOTP user used this time step")
        u.last_step = step
        cid = self._challenge(u.user)
        body = self.client.call("POST", f"/v1/challenges/{cid}/verify",
                                json={"code": totp_code(u.key, step), "token_id": u.token_id})
        if body["status"] != "verified":
            raise LoginError(f"totp {body['status']}")
        return ""

    def login_sms(self) -> str:
        u = self.sms[0]
        self.sms.append(self.sms.pop(0))
        cid = self._challenge(u.user)
        body = self.client.call("POST", f"/v1/challenges/{cid}/select",
                                json={"token_id": u.token_id})
        message_id = body["details"]["message_id"]
        code = self._wait(lambda: self.load.code_for(message_id), self.load.sms_wait,
                          "the SMS did not arrive")
        body = self.client.call("POST", f"/v1/challenges/{cid}/verify", json={"code": code})
        if body["status"] != "verified":
            raise LoginError(f"sms {body['status']}")
        return ""

    def login_push(self) -> str:
        p = self.push[0]
        self.push.append(self.push.pop(0))
        assert p.token is not None
        cid = self._challenge(p.user)
        body = self.client.call("POST", f"/v1/challenges/{cid}/select",
                                json={"token_id": p.token_id})
        answer = body.get("presence_answer")
        nonce: list[str] = []

        def arrived() -> Any:
            # the push of this challenge, by its nonce: an earlier challenge's push may come late
            if not nonce:
                found = self.load.nonce_of(cid)
                if found is None:
                    return None
                nonce.append(found)
            return self.load.push_for(nonce[0])

        message = self._wait(arrived, self.load.push_wait, "the push did not arrive")
        try:
            request = self.app.verify_challenge(p.token, message.data)
            self.app.accept(request, answer)
        except httpx.TransportError as exc:
            self.load.rec.transport_errors.append(time.time())
            raise LoginError(f"app transport {type(exc).__name__}") from exc
        except Exception as exc:
            raise LoginError(f"app: {type(exc).__name__} {str(exc)[:60]}") from exc
        deadline = time.monotonic() + self.load.push_wait
        while time.monotonic() < deadline:
            body = self.client.call("GET", f"/v1/challenges/{cid}", params={"wait": 5})
            if body["status"] == "approved":
                return ""
            if body["status"] != "pending":
                raise LoginError(f"push {body['status']}")
        raise LoginError("push not approved in time")

    def login_enroll(self) -> str:
        step = int(time.time() // PERIOD)
        ready = [p for p in self.pending if p.step < step]
        if ready:
            p = ready[0]
            self.pending.remove(p)
            body = self.client.call("POST", f"{p.base}/confirm",
                                    json={"code": _b32_code(p.secret, step)})
            if body["token"]["state"] != "active":
                raise LoginError(f"enroll {body['token']['state']}")
            return "confirmed"
        self.enrolled += 1
        user = f"e{self.index}-{self.enrolled}-{uuid.uuid4().hex[:6]}"
        body = self.client.call("POST", f"/v1/users/{user}/tokens",
                                json={"type": "totp", "description": "chaos"})
        base = f"/v1/users/{user}/tokens/{body['token']['id']}"
        secret = _secret_of(body["details"]["provisioning_uri"])
        self.client.call("POST", f"{base}/scanned")
        self.client.call("POST", f"{base}/activate", json={"code": _b32_code(secret, step)})
        self.pending.append(Pending(user, base, secret, step))
        return "activated"

    def _wait(self, check: Callable[[], Any], seconds: float, what: str) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.05)
        raise LoginError(what)


class Load:
    def __init__(self, url: str, api_key: str, sms: SmsFakes, fcm: FakeFCM,
                 nonce_of: Callable[[str], str | None], *,
                 totp: list[dict[str, str]], sms_users: int, push_users: int, threads: int,
                 mix: tuple[str, ...] = ("totp", "sms", "push", "sms", "push", "enroll"),
                 sms_wait: float = 30.0, push_wait: float = 30.0) -> None:
        self.url, self.api_key, self.sms, self.fcm = url, api_key, sms, fcm
        self.twilio = sms.twilio  # enrollment codes go through Twilio
        self.nonce_of = nonce_of  # a push challenge's nonce, read from the database
        self.threads, self.mix = threads, mix
        self.sms_wait, self.push_wait = sms_wait, push_wait
        self.rec = Recorder()
        tusers = [TotpUser(r["user"], r["token_id"], bytes.fromhex(r["secret_hex"])) for r in totp]
        susers = [SmsUser(f"s{i}", _phone(i)) for i in range(sms_users)]
        pusers = [PushUser(f"p{i}") for i in range(push_users)]
        self.workers = [Worker(self, i, tusers[i::threads], susers[i::threads], pusers[i::threads])
                        for i in range(threads)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._codes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}
        self._pushes: dict[str, FcmMessage] = {}
        self._pushes_seen = 0

    def code_for(self, message_id: str) -> str | None:
        """The code of an SMS a provider fake accepted for ``message_id`` (None if none yet)."""
        with self._lock:
            for provider, sent in self.sms.accepted().items():
                for mid, body in sent[self._seen.get(provider, 0):]:
                    self._codes.setdefault(mid, body.split()[0])
                self._seen[provider] = len(sent)
            return self._codes.get(message_id)

    def push_for(self, nonce: str) -> FcmMessage | None:
        """The first FCM message the fake accepted for ``nonce`` (None if none yet)."""
        with self._lock:
            messages = self.fcm.messages
            for m in messages[self._pushes_seen:]:
                self._pushes.setdefault(m.data.get("nonce", ""), m)
            self._pushes_seen = len(messages)
            return self._pushes.get(nonce)

    def enroll_factors(self) -> None:
        errors: list[BaseException] = []

        def run(w: Worker) -> None:
            try:
                w.enroll_factors()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"enrolling the load's SMS and PUSH users failed: {errors[0]!r}")

    def start(self, rate: float) -> None:
        self._stop.clear()
        interval = self.threads / rate
        self._threads = [threading.Thread(target=w.run, args=(self._stop, interval), daemon=True,
                                          name=f"chaos-load-{w.index}") for w in self.workers]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(max(self.sms_wait, self.push_wait) + 20)
        self._threads = []
        for w in self.workers:  # enrollments not confirmed are abandoned (and swept later)
            w.pending.clear()
