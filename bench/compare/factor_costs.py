"""CPU per verification of each factor, in process: ``python -m bench.compare.factor_costs``.

One SQLite file, a recording publisher (outbox rows written and marked, no broker), and
for each factor ``--logins`` challenges created and selected beforehand; then only the
answer is timed (``time.process_time``): a TOTP code (``verify`` with ``token_id``), an
SMS code (``verify`` after the select sent it), a push approval (the signed answer on
the push endpoint, prepared before timing: the phone's signing is not the server's CPU).
Half of the TOTP and SMS answers are wrong, as in ``bench.compare``'s login mix, each on
a user of its own so no back-off interferes.

Prints one JSON line: CPU ms per verification for each factor.
"""

from __future__ import annotations

from tests.integration.helpers import sent_sms_code

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from services.core.bootstrap import build_context
from services.core.challenges import service as challenges
from services.core.factors.push import crypto, endpoint
from services.core.factors.totp import otp
from services.core.models import AreaProtection, PushChallenge, PushToken, Token
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from services.core.plumbing.migrate import upgrade
from services.core.plumbing.settings import Settings
from shared.types import mask_phone


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.compare.factor_costs")
    ap.add_argument("--logins", type=int, default=400)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-factors-"))
    url = f"sqlite:///{work / 'twofa.db'}"
    upgrade(url)
    settings = Settings(env="test", database_url=url, var_dir=work / "var", encryption_keys=Fernet.generate_key().decode(),
                        sms_max_per_hour=100, sms_daily_quota=1000, sms_resend_interval_seconds=0,
                        push_max_recent=1000, push_max_pending=20, push_server_key_bits=2048)
    ctx = build_context(settings, publisher=RecordingPublisher(), background=False)
    try:
        result = {kind: round(measure(ctx, kind, args.logins), 3) for kind in ("totp", "sms", "push")}
    finally:
        ctx.engine.dispose()
    print(json.dumps({"cpu_ms_per_verification": result, "logins": args.logins}), flush=True)


def measure(ctx: Context, kind: str, n: int) -> float:
    answers = [prepare(ctx, kind, i) for i in range(n)]
    start = time.process_time()
    for answer in answers:
        answer()
    return (time.process_time() - start) * 1000 / n


def prepare(ctx: Context, kind: str, i: int) -> Callable[[], Any]:
    """A user with one factor of ``kind`` and an open challenge; returns its answer."""
    user, token_id = f"{kind}-{i}", uuid.uuid4()
    wrong = kind != "push" and i % 2 == 1
    now = ctx.clock.now()
    secret = otp.generate_secret()
    with ctx.sessions.begin() as s:
        token = Token(id=token_id, user_id=user, type=kind, description="bench", state="active", drift=0,
                      failures=0, created_at=now)
        if kind == "totp":
            token.secret_enc = ctx.keyring.encrypt(secret)
        elif kind == "sms":
            phone = f"+4915112{i:06d}"  # a number each: the per-number send limit is not measured
            token.phone_enc, token.phone_masked = ctx.keyring.encrypt(phone), mask_phone(phone)
        else:
            token.serial = f"PIPU{i:08X}"
        s.add(token)
        s.add(AreaProtection(user_id=user, area="sso", protected=True, updated_at=now))
        if kind == "push":
            s.flush()
            s.add(PushToken(token_id=token_id, app_public_key=crypto.spki_b64(APP_KEY.public_key()),
                            server_key_enc=ctx.keyring.encrypt(SERVER_KEY_PEM), poll_only=True,
                            fcm_unregistered=False, registered_at=now))
    view = challenges.create(ctx, user, "sso")
    assert view.challenge is not None
    cid = view.challenge.id
    if kind == "totp":
        step = otp.time_step(now.timestamp(), ctx.settings.totp_period)
        code = otp.code_at_step(secret, step + (2 if wrong else 0), otp.TotpParams())
        return lambda: _verify(ctx, cid, code, token_id)
    selected = challenges.select_factor(ctx, cid, token_id)
    if kind == "sms":
        publisher = ctx.publisher
        assert isinstance(publisher, RecordingPublisher)
        sent = [e for e in publisher.published if e["type"] == "sms.requested"][-1]
        code = "000000" if wrong else sent_sms_code(ctx, sent)
        return lambda: _verify(ctx, cid, code, None)
    with ctx.sessions() as s:
        pc = s.get(PushChallenge, cid)
        assert pc is not None
        presence = selected.extras["presence_answer"]
        message = f"{pc.nonce}|{token.serial}|{presence}"
    form = {"serial": token.serial or "", "nonce": pc.nonce, "presence_answer": presence,
            "signature": crypto.sign_b32(APP_KEY, message)}
    return lambda: _approve(ctx, form)


def _verify(ctx: Context, cid: uuid.UUID, code: str, token_id: uuid.UUID | None) -> None:
    try:
        challenges.verify(ctx, cid, code, token_id)
    except Exception as exc:  # a wrong code is half the mix
        if code != "000000" and getattr(exc, "code", "") != "invalid_code":
            raise


def _approve(ctx: Context, form: dict[str, str]) -> None:
    if endpoint.answer(ctx, form).value is not True:
        raise RuntimeError("the push approval was refused")


APP_KEY = crypto.generate_server_key(2048)
SERVER_KEY_PEM = crypto.private_key_pem(crypto.generate_server_key(2048))


if __name__ == "__main__":
    main()
