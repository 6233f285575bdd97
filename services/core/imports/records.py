"""Tokens moved from another server, written through the core one record at a time.

One unit of work per record: a record is written whole — its token row, its PUSH row, the
``token.imported`` event and what a user's first active token brings (``sso`` protected
unless configured otherwise, a recovery token to download) — or not at all. A record whose
serial twofa already holds for the same user and type is skipped, so importing a file
again changes nothing and an interrupted import is resumed by running it again. A dry run
does all the same work and checks, then rolls each unit of work back.

Secrets (seeds, numbers, keys) live in the records only until they are encrypted with
twofa's keys; no outcome, reason or event carries one.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.core.errors import Unprocessable
from services.core.factors.base import factor_types
from services.core.factors.push import crypto
from services.core.factors.push.enrollment import NO_FIREBASE_TOKEN
from services.core.factors.sms.codes import normalise_phone
from services.core.factors.totp import otp
from services.core.factors.totp.factor import MAX_DRIFT_STEPS, params_from
from services.core.models import PushToken, Token, TokenState
from services.core.privacyidea.users import UserNotFound, resolve
from services.core.storable import REFUSED, storable
from services.core.tokens.service import MAX_TOKENS_PER_USER, list_tokens, make_active
from shared.events.token import TokenImported
from shared.types import mask_phone

if TYPE_CHECKING:
    from services.core.plumbing.context import Context
    from services.core.plumbing.uow import UnitOfWork

Source = Literal["privacyidea", "pskc"]
Status = Literal["imported", "skipped", "refused"]
SERIAL_MAX = 32  # Token.serial
DESCRIPTION_MAX = 64  # Token.description
MIN_SEED_BYTES = 10  # 80 bits, the least any TOTP check here accepts
TOTP_ALGORITHM = "SHA1"  # what a record that names none uses


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong key, truncated, not the format): nothing
    is imported. The message never contains file content."""


@dataclass(frozen=True)
class PushKeys:
    """A PUSH token's registration, as the other server keeps it."""

    app_public_key: str = field(repr=False)  # the phone's key, SPKI base64 as the app sent it
    server_private_key: str = field(repr=False)  # PEM
    fbtoken: str | None = field(default=None, repr=False)
    poll_only: bool = False


@dataclass(frozen=True)
class ImportRecord:
    """One token of an import file. ``problem`` set means the file's entry could not be read."""

    position: str  # where the entry is in the file ("entry 3"), for the report
    serial: str
    type: str  # as the source names it, lower case
    owner: str | None = None  # ``login`` or ``login@realm``, mapped as the plugin API maps users
    realm: str | None = None  # named apart from the login (privacyIDEA's export does)
    description: str = ""
    secret: bytes | None = field(default=None, repr=False)  # TOTP seed
    digits: int = 6
    period: int = 30
    algorithm: str = TOTP_ALGORITHM
    last_step: int | None = None  # TOTP: the last time step used there
    drift_seconds: float = 0.0  # TOTP: the clock offset seen there
    phone: str | None = field(default=None, repr=False)
    push: PushKeys | None = None
    locked: bool = False  # failure count at its maximum there
    failures: int = 0
    problem: str | None = None


@dataclass(frozen=True)
class Outcome:
    position: str
    serial: str
    type: str
    status: Status
    reason: str = ""
    user_id: str | None = None
    token_id: uuid.UUID | None = None


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    def by_type(self, status: Status) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            if o.status == status:
                counts[o.type] = counts.get(o.type, 0) + 1
        return dict(sorted(counts.items()))


class Refused(Exception):
    """This record cannot become a twofa token; the message says why (no secret in it)."""


def import_records(
    ctx: Context,
    records: Iterable[ImportRecord],
    source: Source,
    *,
    dry_run: bool = False,
    progress: Callable[[Outcome], None] | None = None,
) -> Summary:
    summary = Summary()
    seen: dict[str, str] = {}  # serial -> position of its first entry in this file
    for record in records:
        first = seen.setdefault(record.serial, record.position) if record.serial else None
        if first is not None and first != record.position:
            outcome = _refused(record, f"duplicate serial (first at {first})")
        else:
            outcome = import_one(ctx, record, source, dry_run=dry_run)
        summary.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return summary


def import_one(
    ctx: Context, record: ImportRecord, source: Source, *, dry_run: bool = False
) -> Outcome:
    if record.problem is not None:
        return _refused(record, record.problem)
    texts = [record.serial, record.type, record.owner, record.realm, record.description,
             record.phone, record.push.fbtoken if record.push else None]
    if not storable([t for t in texts if t is not None]):
        return _refused(record, REFUSED)
    if record.type not in factor_types():
        return _refused(record, f"unknown token type {record.type[:20]!r} (twofa imports "
                                f"{', '.join(factor_types())})")
    try:
        user_id = owner_of(ctx, record)
        with ctx.uow() as uow:
            existing = uow.session.scalar(select(Token).where(Token.serial == record.serial))
            if existing is not None:
                if existing.user_id == user_id and existing.type == record.type:
                    return _outcome(record, "skipped", "already in twofa", user_id, existing.id)
                raise Refused("the serial is already another twofa token's")
            token_id = _write(ctx, uow, record, user_id, source).id
            if dry_run:
                uow.rollback()
            else:
                uow.commit()
    except Refused as exc:
        return _refused(record, str(exc))
    except IntegrityError:  # the same serial written concurrently: run the import again
        return _refused(record, "the serial was written by another process meanwhile")
    return _outcome(record, "imported", "", user_id, None if dry_run else token_id)


def owner_of(ctx: Context, record: ImportRecord) -> str:
    if not record.owner:
        raise Refused("no owner in the file (PSKC files name none: --assign gives them)")
    try:
        return resolve(ctx.settings, record.owner, record.realm).user_id
    except UserNotFound:
        where = f"realm {record.realm[:64]!r}" if record.realm else "its realm"
        raise Refused(
            f"the owner maps to no twofa user ({where} must be in TWOFA_PI_REALMS, the login a "
            "valid user id)"
        ) from None


def _write(
    ctx: Context, uow: UnitOfWork, record: ImportRecord, user_id: str, source: Source
) -> Token:
    if len(record.serial) > SERIAL_MAX or not record.serial.isprintable():
        raise Refused(f"the serial is not 1-{SERIAL_MAX} printable characters")
    if len(list_tokens(uow, user_id)) >= MAX_TOKENS_PER_USER:
        raise Refused(f"the user has {MAX_TOKENS_PER_USER} tokens already")
    now = ctx.clock.now()
    token = Token(
        id=uuid.uuid4(),
        user_id=user_id,
        type=record.type,
        serial=record.serial,
        description=record.description[:DESCRIPTION_MAX],
        state=TokenState.ACTIVE,
        drift=0,
        failures=0,
        created_at=now,
    )
    push_row = _fill(ctx, token, record)
    uow.session.add(token)
    uow.session.flush()
    if push_row is not None:
        push_row.token_id, push_row.registered_at = token.id, now
        uow.session.add(push_row)
    state: Literal["active", "locked"] = "locked" if record.locked else "active"
    make_active(ctx, uow, token, TokenImported(
        token_id=token.id, token_type=token.type, serial=record.serial, source=source, state=state,
    ))
    if record.locked:  # as it was there: it refuses codes until an administrator unlocks it
        token.state, token.failures = TokenState.LOCKED, record.failures
    uow.session.flush()
    return token


def _fill(ctx: Context, token: Token, record: ImportRecord) -> PushToken | None:
    """The type's own columns, secrets encrypted; the PUSH row to add once the token exists."""
    if record.type == "totp":
        token.totp_params = _totp_params(ctx, record)
        secret = base64.b32encode(record.secret or b"").decode().rstrip("=")
        token.secret_enc = ctx.keyring.encrypt(secret)
        token.last_step = record.last_step if record.last_step and record.last_step > 0 else None
        # privacyIDEA records the start of the matched step minus the time of the check: a
        # code of the current step gives up to a step's worth of "shift" with no clock drift.
        drift = int(record.drift_seconds / record.period)
        token.drift = max(-MAX_DRIFT_STEPS, min(MAX_DRIFT_STEPS, drift))
        return None
    if record.type == "sms":
        try:
            e164 = normalise_phone(record.phone or "")
        except Unprocessable as exc:
            raise Refused(f"phone number refused: {exc.message}") from None
        token.phone_enc = ctx.keyring.encrypt(e164)
        token.phone_masked = mask_phone(e164)
        return None
    return _push_row(ctx, record)


def _totp_params(ctx: Context, record: ImportRecord) -> str | None:
    """The token's own parameters to store, or None when they are the service's."""
    seed = record.secret or b""
    if len(seed) < MIN_SEED_BYTES:
        raise Refused(f"the TOTP seed is shorter than {MIN_SEED_BYTES * 8} bits")
    try:
        own = otp.TotpParams(record.digits, record.period, record.algorithm.upper())
    except ValueError:
        raise Refused(
            f"TOTP with {record.digits} digits, {record.period} s, {record.algorithm.upper()[:10]}:"
            f" twofa takes 6 to 8 digits, 10 to 120 s, {'/'.join(otp.ALGORITHMS)}"
        ) from None
    return None if own == params_from(ctx) else own.stored()


def _push_row(ctx: Context, record: ImportRecord) -> PushToken:
    keys = record.push
    if keys is None:
        raise Refused("the PUSH token has no registration (enrollment not finished there)")
    try:
        app_key = crypto.parse_app_public_key(keys.app_public_key)
    except crypto.BadKey as exc:
        raise Refused(f"the phone's public key is unusable: {exc}") from None
    try:
        server_key = crypto.load_private_key(keys.server_private_key)
    except (ValueError, TypeError, crypto.BadKey):
        raise Refused("the server key pair is unusable (not an RSA private key in PEM)") from None
    poll_only = keys.poll_only or keys.fbtoken in (None, "", NO_FIREBASE_TOKEN)
    return PushToken(
        credential_hash=None,
        app_public_key=crypto.spki_b64(app_key),
        server_key_enc=ctx.keyring.encrypt(crypto.private_key_pem(server_key)),
        fbtoken_enc=None if poll_only else ctx.keyring.encrypt(keys.fbtoken or ""),
        poll_only=poll_only,
        fcm_unregistered=False,
    )


def _outcome(record: ImportRecord, status: Status, reason: str, user_id: str | None,
             token_id: uuid.UUID | None) -> Outcome:
    return Outcome(record.position, _shown(record.serial), _shown(record.type), status, reason,
                   user_id, token_id)


def _shown(text: str) -> str:
    """As a report can print it: NUL and unpaired surrogates escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _refused(record: ImportRecord, reason: str) -> Outcome:
    return _outcome(record, "refused", reason, None, None)
