"""``twofa import privacyidea``: tokens of privacyIDEA's export become active twofa tokens of
the users the plugin API's mapping names, with their state; twice is once; bad records are
refused alone and nothing of them is written."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from services.core.errors import InvalidCode
from services.core.factors.push import crypto
from services.core.factors.totp import otp
from services.core.imports import privacyidea_export
from services.core.imports.records import ImportFileError, import_records
from services.core.models import AreaProtection, OutboxEvent, PushToken, Token, UserProfile
from services.core.plumbing.clock import FrozenClock
from services.core.plumbing.context import Context
from services.core.tokens.verification import check_token_code
from tests.integration.imports.conftest import FBTOKEN, SEED_HEX, entry, sms, totp

SEED_B32 = base64.b32encode(bytes.fromhex(SEED_HEX)).decode()


def run(ctx: Context, path: Path, key: str, dry_run: bool = False) -> Any:
    return import_records(ctx, privacyidea_export.read(path.read_bytes(), key), "privacyidea",
                          dry_run=dry_run)


def tokens(ctx: Context) -> dict[str, Token]:
    with ctx.sessions() as session:
        found = {t.serial or "": t for t in session.scalars(select(Token))}
        session.expunge_all()
    return found


def events(ctx: Context, type_: str | None = None) -> list[dict[str, Any]]:
    with ctx.sessions() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))
        return [r.envelope for r in rows if type_ is None or r.type == type_]


def step(clock: FrozenClock, offset: int = 0) -> int:
    return otp.time_step(clock.now().timestamp(), 30) + offset


def code(clock: FrozenClock, offset: int = 0) -> str:
    return otp.code_at_step(SEED_B32, step(clock, offset), otp.TotpParams())


def verify(ctx: Context, token_id: uuid.UUID, value: str) -> None:
    with ctx.uow() as uow:
        check_token_code(ctx, uow, uow.session.get(Token, token_id), value, purpose="login")  # type: ignore[arg-type]
        uow.commit()


def test_totp_sms_push_become_active_tokens_of_their_users(
    ctx: Context, clock: FrozenClock, pi_file: Callable[..., Any], push: Callable[..., Any],
    push_keys: Any,
) -> None:
    used = step(clock)  # the code of this step was used on privacyIDEA before the move
    path, key = pi_file([totp("TOTP0001", counter=used, description="Pixel 8"),
                         sms("PISM0001"), push("PIPU0001ABCD")])

    summary = run(ctx, path, key)

    assert [(o.serial, o.status, o.user_id) for o in summary.outcomes] == [
        ("TOTP0001", "imported", "alice"), ("PISM0001", "imported", "bob"),
        ("PIPU0001ABCD", "imported", "carol")]
    found = tokens(ctx)
    assert {s: (t.type, t.user_id, t.state) for s, t in found.items()} == {
        "TOTP0001": ("totp", "alice", "active"), "PISM0001": ("sms", "bob", "active"),
        "PIPU0001ABCD": ("push", "carol", "active")}
    assert found["TOTP0001"].description == "Pixel 8"
    # secrets are stored encrypted under twofa's keys
    assert ctx.keyring.decrypt(found["TOTP0001"].secret_enc or "") == SEED_B32.rstrip("=")
    assert ctx.keyring.decrypt(found["PISM0001"].phone_enc or "") == "+4915112345678"
    assert found["PISM0001"].phone_masked == "+49*********78"
    with ctx.sessions() as session:
        row = session.get(PushToken, found["PIPU0001ABCD"].id)
        assert row is not None and row.credential_hash is None and not row.poll_only
        assert row.app_public_key == crypto.spki_b64(push_keys[0].public_key())
        assert ctx.keyring.decrypt(row.fbtoken_enc or "") == FBTOKEN
        server = crypto.load_private_key(ctx.keyring.decrypt(row.server_key_enc or ""))
        assert server.private_numbers() == push_keys[1].private_numbers()

    # the code used on privacyIDEA is not accepted again; the next one is
    with pytest.raises(InvalidCode):
        verify(ctx, found["TOTP0001"].id, code(clock))
    clock.advance(30)
    verify(ctx, found["TOTP0001"].id, code(clock))


def test_events_areas_and_recovery_of_imported_users(
    ctx: Context, pi_file: Callable[..., Any], push: Callable[..., Any],
) -> None:
    path, key = pi_file([totp("TOTP0001"), totp("TOTP0002", "bob"), sms("PISM0001")])
    run(ctx, path, key)

    imported = events(ctx, "token.imported")
    assert [(e["user_id"], e["data"]["serial"], e["data"]["source"], e["data"]["state"])
            for e in imported] == [("alice", "TOTP0001", "privacyidea", "active"),
                                   ("bob", "TOTP0002", "privacyidea", "active"),
                                   ("bob", "PISM0001", "privacyidea", "active")]
    assert events(ctx, "enrollment.confirmed") == []  # nobody enrolled anything
    with ctx.sessions() as session:
        protected = {(a.user_id, a.area) for a in session.scalars(select(AreaProtection))
                     if a.protected}
        profiles = {p.user_id: p for p in session.scalars(select(UserProfile))}
    assert protected == {("alice", "sso"), ("bob", "sso")}
    # one recovery token per user, waiting for its one download on the next portal visit
    assert len(events(ctx, "recovery.issued")) == 2
    assert all(profiles[u].recovery_pending_enc for u in ("alice", "bob"))


def test_sso_stays_as_configured(
    ctx: Context, pi_file: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ctx, "settings", ctx.settings.model_copy(update={"protect_sso_on_first_token": False}))
    path, key = pi_file([totp("TOTP0001")])
    run(ctx, path, key)
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AreaProtection)) == 0


def test_a_second_import_of_the_same_file_changes_nothing(
    ctx: Context, pi_file: Callable[..., Any], push: Callable[..., Any],
) -> None:
    path, key = pi_file([totp("TOTP0001"), sms("PISM0001"), push("PIPU0001ABCD")])
    run(ctx, path, key)
    before = {s: (t.id, t.secret_enc, t.phone_enc) for s, t in tokens(ctx).items()}
    count = len(events(ctx))

    again = run(ctx, path, key)

    assert [o.status for o in again.outcomes] == ["skipped"] * 3
    assert {s: (t.id, t.secret_enc, t.phone_enc) for s, t in tokens(ctx).items()} == before
    assert len(events(ctx)) == count


def test_an_interrupted_import_resumes(ctx: Context, pi_file: Callable[..., Any]) -> None:
    path, key = pi_file([totp("TOTP0001"), totp("TOTP0002", "bob"), totp("TOTP0003", "carol")])
    records = privacyidea_export.read(path.read_bytes(), key)
    import_records(ctx, records[:1], "privacyidea")  # the first run died after one record

    summary = run(ctx, path, key)

    assert [o.status for o in summary.outcomes] == ["skipped", "imported", "imported"]
    assert set(tokens(ctx)) == {"TOTP0001", "TOTP0002", "TOTP0003"}


def test_a_dry_run_reports_and_writes_nothing(
    ctx: Context, pi_file: Callable[..., Any], push: Callable[..., Any],
) -> None:
    path, key = pi_file([totp("TOTP0001"), sms("PISM0001", phone="0151 1234"), push("PIPU0001ABCD")])

    summary = run(ctx, path, key, dry_run=True)

    assert [(o.serial, o.status) for o in summary.outcomes] == [
        ("TOTP0001", "imported"), ("PISM0001", "refused"), ("PIPU0001ABCD", "imported")]
    assert tokens(ctx) == {} and events(ctx) == []
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserProfile)) == 0


def test_bad_records_are_refused_alone(
    ctx: Context, pi_file: Callable[..., Any], push: Callable[..., Any],
) -> None:
    good = totp("TOTP0001")
    path, key = pi_file([
        good,
        totp("TOTP0001", "bob"),  # the same serial again
        entry("OATH0001", "hotp"),
        totp("TOTP0002", "nobody", user={"login": "eve", "realm": "elsewhere"}),
        totp("TOTP0003", login=None),  # privacyIDEA token without a user
        totp("TOTP0004", otpkey="not hex"),
        totp("TOTP0005", otplen=10),
        totp("TOTP0006", info_list={"hashlib": "md5"}),
        sms("PISM0001", phone="0151 12345678"),  # not international: which country?
        push("PIPU0001", info_list={}),  # never registered by the app
        push("PIPU0002", rollout_state="clientwait"),
        totp("TOTP0007", active=False),
        totp("TOTP0008", revoked=True, locked=True),
        "not a token",
    ])

    summary = run(ctx, path, key)

    why = {o.position: (o.serial, o.status, o.reason) for o in summary.outcomes}
    assert why["entry 1"][:2] == ("TOTP0001", "imported")
    assert why["entry 2"] == ("TOTP0001", "refused", "duplicate serial (first at entry 1)")
    assert why["entry 3"][1:] == ("refused", "unknown token type 'hotp' (twofa imports push, sms, totp)")
    assert "TWOFA_PI_REALMS" in why["entry 4"][2] and "'elsewhere'" in why["entry 4"][2]
    assert why["entry 5"][2].startswith("no owner")
    assert why["entry 6"][1:] == ("refused", "malformed entry (ValueError)")
    assert why["entry 7"][2] == "TOTP with 10 digits, 30 s, SHA1: twofa takes 6 to 8 digits, 10 to 120 s, SHA1/SHA256/SHA512"
    assert why["entry 8"][2] == "TOTP with 6 digits, 30 s, MD5: twofa takes 6 to 8 digits, 10 to 120 s, SHA1/SHA256/SHA512"
    assert why["entry 9"][2].startswith("phone number refused")
    assert why["entry 10"][2].startswith("the PUSH token has no registration")
    assert why["entry 11"][2] == "enrollment not finished in privacyIDEA (rollout state 'clientwait')"
    assert why["entry 12"][2] == "disabled in privacyIDEA"
    assert why["entry 13"][2] == "revoked in privacyIDEA"
    assert why["entry 14"] == ("", "refused", "not a token object")
    assert summary.count("imported") == 1 and summary.count("refused") == 13
    # nothing of the refused records was written: one token, one owner
    assert set(tokens(ctx)) == {"TOTP0001"}
    assert {e["user_id"] for e in events(ctx)} == {"alice"}


@pytest.mark.parametrize("shift,drift", [("-17.0", 0), ("-29.9", 0), ("0.0", 0), ("-75.0", -2),
                                         ("95.0", 3), ("-3000.0", -10)])
def test_the_clock_shift_seen_there_becomes_whole_steps(
    ctx: Context, pi_file: Callable[..., Any], shift: str, drift: int,
) -> None:
    run(ctx, *pi_file([totp("TOTP0001", info_list={"timeShift": shift})]))
    assert tokens(ctx)["TOTP0001"].drift == drift


def test_a_token_locked_there_is_locked_here(ctx: Context, pi_file: Callable[..., Any]) -> None:
    path, key = pi_file([totp("TOTP0001", failcount=10, maxfail=10)])
    run(ctx, path, key)
    token = tokens(ctx)["TOTP0001"]
    assert (token.state, token.failures) == ("locked", 10)
    assert events(ctx, "token.imported")[0]["data"]["state"] == "locked"


def test_a_serial_twofa_holds_for_someone_else_is_refused(
    ctx: Context, pi_file: Callable[..., Any]
) -> None:
    run(ctx, *pi_file([totp("TOTP0001")], name="first.pi"))
    summary = run(ctx, *pi_file([totp("TOTP0001", "bob")], name="second.pi"))
    assert [(o.status, o.reason) for o in summary.outcomes] == [
        ("refused", "the serial is already another twofa token's")]
    assert tokens(ctx)["TOTP0001"].user_id == "alice"


@pytest.mark.parametrize("damage", ["wrong key", "truncated", "not a token", "not a list"])
def test_a_file_that_cannot_be_read_imports_nothing(
    ctx: Context, pi_file: Callable[..., Any], damage: str, tmp_path: Path,
) -> None:
    from cryptography.fernet import Fernet

    path, key = pi_file([totp("TOTP0001")])
    data = path.read_bytes()
    if damage == "wrong key":
        key = Fernet.generate_key().decode()
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "not a token":
        data = b"hello"
    else:
        data = Fernet(key).encrypt(b'{"serial": "TOTP0001"}')
    with pytest.raises(ImportFileError) as caught:
        privacyidea_export.read(data, key)
    assert SEED_HEX not in str(caught.value)
    assert tokens(ctx) == {}


def test_a_key_that_is_no_key_is_said_so() -> None:
    with pytest.raises(ImportFileError, match="not a privacyIDEA export key"):
        privacyidea_export.read(b"x", "secret")


def test_no_user_gets_more_tokens_than_enrollment_allows(ctx: Context, pi_file: Callable[..., Any]) -> None:
    from services.core.tokens.service import MAX_TOKENS_PER_USER

    path, key = pi_file([totp(f"TOTP{n:04d}") for n in range(MAX_TOKENS_PER_USER + 1)])
    last = run(ctx, path, key).outcomes[-1]
    assert (last.status, last.reason) == ("refused", f"the user has {MAX_TOKENS_PER_USER} tokens already")
    assert len(tokens(ctx)) == MAX_TOKENS_PER_USER


def test_text_no_database_can_store_is_refused(ctx: Context, pi_file: Callable[..., Any]) -> None:
    path, key = pi_file([totp("TOTP\u0000X"), totp("TOTP0002", description="a\ud800b"),
                         sms("PISM0001", phone="+49 151\u0000 12345678"), totp("TOTP0003")])
    summary = run(ctx, path, key)
    assert [(o.serial, o.status, o.reason) for o in summary.outcomes] == [
        ("TOTP\\x00X", "refused", "text must not contain NUL characters or unpaired surrogates"),
        ("TOTP0002", "refused", "text must not contain NUL characters or unpaired surrogates"),
        ("PISM0001", "refused", "text must not contain NUL characters or unpaired surrogates"),
        ("TOTP0003", "imported", "")]
    assert set(tokens(ctx)) == {"TOTP0003"}


def test_the_plugins_see_an_imported_tokens_privacyidea_serial(
    ctx: Context, clock: FrozenClock, pi_file: Callable[..., Any], api: Any,
) -> None:
    """The login side moves by a URL: a plugin that shows or logs the serial keeps seeing
    the one privacyIDEA gave the token."""
    from tests.pi_plugins import client_for

    path, key = pi_file([totp("TOTP0001")])
    run(ctx, path, key)
    client = client_for(api, "keycloak")
    one_step = client.check("alice@bench", code(clock))
    assert one_step.decision == "success" and one_step.detail["serial"] == "TOTP0001"
    clock.advance(30)
    challenge = client.check("alice@bench", "")
    assert [e["serial"] for e in challenge.detail["multi_challenge"]] == ["TOTP0001"]


@pytest.mark.parametrize("otplen,step,hashlib", [(8, "30", "sha1"), (6, "60", "sha256"), (8, "60", "sha512")])
def test_a_totp_token_keeps_its_own_digits_period_and_hash(
    ctx: Context, clock: FrozenClock, pi_file: Callable[..., Any], otplen: int, step: str, hashlib: str,
) -> None:
    """The app keeps showing codes of the token's own kind; twofa checks them as such, and a
    code from the service's default parameters is wrong for this token."""
    period = int(step)
    used = otp.time_step(clock.now().timestamp(), period)
    path, key = pi_file([totp("TOTP0001", counter=used, otplen=otplen,
                              info_list={"timeStep": step, "hashlib": hashlib})])
    run(ctx, path, key)
    token = tokens(ctx)["TOTP0001"]
    own = otp.TotpParams(otplen, period, hashlib.upper())
    assert token.totp_params == own.stored()
    with pytest.raises(InvalidCode):  # used on privacyIDEA already
        verify(ctx, token.id, otp.code_at_step(SEED_B32, used, own))
    clock.advance(period)
    with pytest.raises(InvalidCode):  # the service's own kind of code is not this token's
        verify(ctx, token.id, otp.code_at_step(SEED_B32, used + 1, otp.TotpParams()))
    verify(ctx, token.id, otp.code_at_step(SEED_B32, used + 1, own))


def test_a_default_totp_token_stores_no_parameters(ctx: Context, pi_file: Callable[..., Any]) -> None:
    run(ctx, *pi_file([totp("TOTP0001")]))
    assert tokens(ctx)["TOTP0001"].totp_params is None
