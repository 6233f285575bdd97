"""The idempotency record's hot steps, for many messages per transaction.

``claim_many``, ``mark_started_many`` and ``record_sent_many`` do for a list of messages what
``services.core.factors.sms.delivery`` describes for one: each message's claim, then its
send-started mark, are committed before its send (the caller sends only after both returned),
and its ``sent`` record and ``sms.sent`` commit together after the send. One transaction per
list rather than per message, and Core statements rather than ORM objects: when each message
had its own, the claim and the record were a large share of the SMS worker's CPU per message.

:class:`BatchingLedger` lets the threads of a worker process share them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.core.models import DeliveryState, SmsDelivery, SmsPendingCode, Token
from services.core.plumbing.batching import Batcher
from services.core.plumbing.clock import as_utc
from shared.events.sms import SmsRequested, SmsSent

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

Verdict = Literal["send", "done", "busy", "lost"]
D = SmsDelivery.__table__
OPEN = (DeliveryState.SENDING, DeliveryState.UNKNOWN)  # a send may still be recorded as sent


@dataclass(frozen=True)
class ClaimJob:
    cmd: SmsRequested
    user_id: str


@dataclass(frozen=True)
class Claim:
    """``send``: claimed by us, ``phone_enc`` is the token's encrypted number (None if the
    token is gone) and ``code_enc`` the message's pending code (None once used or expired);
    ``done``: final already; ``busy``: a live claim elsewhere; ``lost``: a claim older than
    the lease whose send had started (its worker died mid-send). ``attempt`` numbers our
    claim, so that a mark or a record of an older claim cannot pass for it."""

    verdict: Verdict
    phone_enc: str | None = None
    code_enc: str | None = None
    attempt: int = 0


@dataclass(frozen=True)
class StartMark:
    message_id: uuid.UUID
    attempt: int


@dataclass(frozen=True)
class SentRecord:
    cmd: SmsRequested
    user_id: str
    provider: str
    provider_message_id: str


def lease_seconds(ctx: Context) -> float:
    # A send takes at most connect + read timeout; anything claimed longer ago is dead.
    return 2 * ctx.settings.sms_send_timeout_seconds + 5


def _locked(conn: Connection, query):  # type: ignore[no-untyped-def]
    # SQLite: BEGIN IMMEDIATE already holds the database's write lock (services.core.plumbing.db).
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def claim_many(ctx: Context, jobs: Sequence[ClaimJob]) -> list[Claim]:
    """Claim every message that is neither final nor claimed, in one committed transaction."""
    now = ctx.clock.now()
    lease = timedelta(seconds=lease_seconds(ctx))
    ids = {job.cmd.message_id for job in jobs}
    verdicts: list[Verdict] = []
    attempts: list[int] = []
    inserts: list[dict[str, object]] = []
    seen: set[uuid.UUID] = set()
    with ctx.engine.begin() as conn:
        query = select(D.c.message_id, D.c.state, D.c.claimed_at, D.c.send_started_at,
                       D.c.attempts).where(D.c.message_id.in_(ids))
        found = {row.message_id: row for row in conn.execute(_locked(conn, query))}
        for job in jobs:
            mid = job.cmd.message_id
            row = found.get(mid)
            attempts.append(1 if row is None else row.attempts + 1)
            if mid in seen:  # the same message twice in one batch: the first one is sending it
                verdicts.append("busy")
                continue
            seen.add(mid)
            if row is None:
                inserts.append({
                    "message_id": mid, "token_id": job.cmd.token_id, "user_id": job.user_id,
                    "challenge_id": job.cmd.challenge_id, "state": DeliveryState.SENDING,
                    "attempts": 1, "claimed_at": now, "created_at": now, "updated_at": now})
                verdicts.append("send")
            elif row.state in DeliveryState.FINAL:
                verdicts.append("done")
            elif row.claimed_at is not None and as_utc(row.claimed_at) + lease > now:
                verdicts.append("busy")
            elif row.claimed_at is not None and row.send_started_at is not None:
                verdicts.append("lost")  # the provider may have it: never sent again
            else:
                # Released after a transient failure, or claimed by a worker that died before
                # its send started: nothing reached the provider, claim it again.
                won = conn.execute(
                    update(D)
                    .where(D.c.message_id == mid, D.c.attempts == row.attempts,
                           D.c.send_started_at.is_(None), D.c.state == DeliveryState.SENDING)
                    .values(claimed_at=now, attempts=D.c.attempts + 1, updated_at=now)
                ).rowcount
                verdicts.append("send" if won == 1 else "busy")
        if inserts:
            conn.execute(insert(D), inserts)
        sending = [job for job, v in zip(jobs, verdicts, strict=True) if v == "send"]
        phones: dict[uuid.UUID, str | None] = {}
        codes: dict[uuid.UUID, str] = {}
        if sending:
            T, P = Token.__table__, SmsPendingCode.__table__
            phones = dict(conn.execute(select(T.c.id, T.c.phone_enc).where(
                T.c.id.in_({job.cmd.token_id for job in sending}))).all())
            codes = dict(conn.execute(select(P.c.message_id, P.c.code_enc).where(
                P.c.message_id.in_({job.cmd.message_id for job in sending}))).all())
    return [Claim(v, phones.get(job.cmd.token_id) or None, codes.get(job.cmd.message_id), n)
            if v == "send" else Claim(v)
            for job, v, n in zip(jobs, verdicts, attempts, strict=True)]


def claim_one(ctx: Context, job: ClaimJob) -> Claim:
    try:
        return claim_many(ctx, [job])[0]
    except IntegrityError:
        # Another process inserted this message's record between our read and our insert
        # (PostgreSQL; SQLite's write lock rules it out): it holds the claim.
        return Claim("busy")


def mark_started_many(ctx: Context, marks: Sequence[StartMark]) -> list[bool]:
    """Record, committed, that each message's send is about to start, if its claim is still
    ours (same attempt, not settled meanwhile). Returns which ones may be sent."""
    now = ctx.clock.now()
    with ctx.engine.begin() as conn:
        query = select(D.c.message_id, D.c.attempts).where(
            D.c.message_id.in_({m.message_id for m in marks}),
            D.c.state == DeliveryState.SENDING, D.c.claimed_at.is_not(None))
        current = dict(conn.execute(_locked(conn, query)).all())
        ours = [current.get(m.message_id) == m.attempt for m in marks]
        if any(ours):
            conn.execute(update(D).where(D.c.message_id.in_(
                {m.message_id for m, won in zip(marks, ours, strict=True) if won}))
                .values(send_started_at=now, updated_at=now))
    return ours


def record_sent_many(ctx: Context, records: Sequence[SentRecord]) -> list[bool]:
    """``sent`` + ``sms.sent`` for every message whose record is still open, in one unit of
    work; the events are published after the commit. Returns which ones were recorded."""
    now = ctx.clock.now()
    with ctx.uow() as uow:
        conn = uow.connection
        query = select(D.c.message_id).where(
            D.c.message_id.in_({r.cmd.message_id for r in records}), D.c.state.in_(OPEN))
        still_open = set(conn.execute(_locked(conn, query)).scalars())
        won: list[bool] = []
        for record in records:
            won.append(record.cmd.message_id in still_open)
            still_open.discard(record.cmd.message_id)  # twice in one batch: record it once
        params = [
            {"mid": r.cmd.message_id, "b_provider": r.provider, "b_sid": r.provider_message_id}
            for r, w in zip(records, won, strict=True) if w
        ]
        if params:
            conn.execute(
                update(D)
                # or_, not in_: an expanding IN cannot be part of an executemany
                .where(D.c.message_id == bindparam("mid"), or_(*(D.c.state == st for st in OPEN)))
                .values(state=DeliveryState.SENT, provider=bindparam("b_provider"),
                        provider_message_id=bindparam("b_sid"), claimed_at=None, updated_at=now),
                params,
            )
        for r, w in zip(records, won, strict=True):
            if w:
                uow.emit(SmsSent(message_id=r.cmd.message_id, token_id=r.cmd.token_id,
                                 provider=r.provider, provider_message_id=r.provider_message_id,
                                 phone=r.cmd.phone), user_id=r.user_id)
        uow.commit()
    return won


class Ledger(Protocol):
    def claim(self, job: ClaimJob) -> Claim: ...

    def mark_started(self, mark: StartMark) -> bool: ...

    def record_sent(self, record: SentRecord) -> bool: ...


class BatchingLedger:
    """Claims, marks and records of all threads of a process, batched (one thread each)."""

    def __init__(self, ctx: Context, *, linger: float = 0.02) -> None:
        self._claims: Batcher[ClaimJob, Claim] = Batcher(
            "sms-claim", lambda jobs: _claims_or_busy(ctx, jobs), linger=linger)
        self._marks: Batcher[StartMark, bool] = Batcher(
            "sms-mark", lambda marks: mark_started_many(ctx, marks), linger=linger)
        self._records: Batcher[SentRecord, bool] = Batcher(
            "sms-record", lambda records: record_sent_many(ctx, records), linger=linger)

    def claim(self, job: ClaimJob) -> Claim:
        return self._claims(job)

    def mark_started(self, mark: StartMark) -> bool:
        return self._marks(mark)

    def record_sent(self, record: SentRecord) -> bool:
        return self._records(record)


def _claims_or_busy(ctx: Context, jobs: Sequence[ClaimJob]) -> list[Claim]:
    # A batch of one goes through claim_one so that its insert race ends as "busy"; a larger
    # batch that fails is rerun one by one by the Batcher, which lands here again.
    return [claim_one(ctx, jobs[0])] if len(jobs) == 1 else claim_many(ctx, jobs)
