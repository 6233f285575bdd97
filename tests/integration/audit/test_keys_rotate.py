"""``twofa keys rotate`` re-encrypts every ``*_enc`` column under the newest key."""

from __future__ import annotations

import uuid

from cryptography.fernet import Fernet
from sqlalchemy import select

from services.cli.main import main
from services.core.plumbing.crypto import Keyring
from services.core.plumbing.key_rotation import rotate_all, secret_columns
from services.core.models import Token, UserProfile


def seed(ctx, n_tokens=5):
    """Tokens with a seed (and some with a phone) and a pending recovery token, under the old key."""
    plain = {}
    with ctx.sessions.begin() as session:
        for i in range(n_tokens):
            t = Token(id=uuid.uuid4(), user_id=f"u{i}", type="totp", description="d", state="active",
                      drift=0, failures=0, created_at=ctx.clock.now(),
                      secret_enc=ctx.keyring.encrypt(f"SEED{i}"),
                      phone_enc=ctx.keyring.encrypt(f"+4915112345{i:02d}") if i % 2 else None)
            session.add(t)
            plain[("tokens", t.id)] = (f"SEED{i}", f"+4915112345{i:02d}" if i % 2 else None)
        session.add(UserProfile(user_id="u0", created_at=ctx.clock.now(), failures=0,
                                recovery_pending_enc=ctx.keyring.encrypt("RECOVERY-0")))
    return plain


def test_every_enc_column_is_found_by_the_naming_convention():
    found = {f"{t.name}.{c.name}" for t, cols in secret_columns() for c in cols}
    assert {"tokens.secret_enc", "tokens.phone_enc", "user_profiles.recovery_pending_enc"} <= found


def test_rotation_puts_every_secret_under_the_newest_key(ctx, monkeypatch, settings, capsys):
    plain = seed(ctx)
    old = settings.encryption_keys.get_secret_value()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("TWOFA_ENV", "test")
    monkeypatch.setenv("TWOFA_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TWOFA_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("TWOFA_ENCRYPTION_KEYS", f"{new},{old}")
    assert main(["keys", "rotate", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "tokens.secret_enc\t5 re-encrypted" in out
    assert "tokens.phone_enc\t2 re-encrypted" in out
    assert "user_profiles.recovery_pending_enc\t1 re-encrypted" in out
    assert "rotated 8 secrets" in out

    only_new = Keyring([new.encode()])
    with ctx.sessions() as session:
        for token in session.scalars(select(Token)):
            seed_, phone = plain[("tokens", token.id)]
            assert only_new.decrypt(token.secret_enc) == seed_
            assert (only_new.decrypt(token.phone_enc) if token.phone_enc else None) == phone
        assert only_new.decrypt(session.get(UserProfile, "u0").recovery_pending_enc) == "RECOVERY-0"


def test_a_value_no_key_decrypts_is_reported_not_lost(ctx):
    seed(ctx, 1)
    stranger = Keyring([Fernet.generate_key()])
    with ctx.sessions.begin() as session:
        session.add(Token(id=uuid.uuid4(), user_id="x", type="totp", description="d", state="active", drift=0,
                          failures=0, created_at=ctx.clock.now(), secret_enc=stranger.encrypt("S")))
    report = rotate_all(ctx.sessions, ctx.keyring, batch_size=1)
    assert report.failed == {"tokens.secret_enc": 1}
    assert report.rotated["tokens.secret_enc"] == 1
