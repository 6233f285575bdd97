"""Small helpers for driving the API in tests."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from services.core.plumbing.clock import FrozenClock
from services.core.factors.totp import otp


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def totp_code(secret: str, clock: FrozenClock, offset_steps: int = 0) -> str:
    step = otp.time_step(clock.now().timestamp(), 30) + offset_steps
    return otp.code_at_step(secret, step, otp.TotpParams())


def active_totp(api: TestClient, headers: dict[str, str], clock: FrozenClock, user: str = "alice") -> tuple[str, str]:
    """Enroll and activate a TOTP token; returns (token_id, secret). Advances the clock 60 s."""
    r = api.post(f"/v1/users/{user}/tokens", json={"type": "totp", "description": "phone"}, headers=headers)
    assert r.status_code == 201, r.text
    token_id = r.json()["token"]["id"]
    secret = secret_of(r.json()["details"]["provisioning_uri"])
    base = f"/v1/users/{user}/tokens/{token_id}"
    assert api.post(f"{base}/scanned", headers=headers).status_code == 200
    assert api.post(f"{base}/activate", json={"code": totp_code(secret, clock)}, headers=headers).status_code == 200
    clock.advance(30)
    r = api.post(f"{base}/confirm", json={"code": totp_code(secret, clock)}, headers=headers)
    assert r.status_code == 200, r.text
    clock.advance(30)
    return token_id, secret


def sent_sms_code(ctx: Any, command: dict[str, Any]) -> str:
    """The code an ``sms.requested`` command sends: events carry none, the worker reads it
    from the message's pending-code row, and so does a test standing in for the phone."""
    import uuid

    from services.core.models import SmsPendingCode

    with ctx.sessions() as session:
        row = session.get(SmsPendingCode, uuid.UUID(command["data"]["message_id"]))
        assert row is not None, "the code was used or has expired"
        return str(ctx.keyring.decrypt(row.code_enc))


R = TypeVar("R")


def in_threads(n: int, work: Callable[[int], R]) -> list[R]:
    """``work(0..n-1)`` in n threads released together by a barrier, so the calls race."""
    barrier = threading.Barrier(n)
    results: dict[int, R] = {}

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[i] for i in range(n)]


def write_slot_taken(lock_file: str) -> bool:
    """Whether a writer holds SQLite's write slot now: another process's try at the file
    lock the writers of every process queue on."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
