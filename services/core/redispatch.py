"""Delivery reconciled from the database: what a broker lost is published again.

A broker can lose a message it already took: kombu's Redis transport pops a message and
only then records it as unacked, so a worker killed in between takes it along, and its
outbox row already counts as published (the relay cannot help). Nothing is lost in the
database, so the expiry sweep asks it, every second, in bounded batches:

- **Commands** (``sms.requested``, ``push.requested``): each has a ``dispatch_watch`` row,
  written with its outbox row and due ``TWOFA_REDISPATCH_AFTER_SECONDS`` later. When due,
  a command whose outcome is recorded, or that is pointless now, is dropped; one still in
  hand (a live claim, a retry waiting) is looked at again later; any other is published
  again to its consumer, through the same idempotent path: the SMS ledger sends a message
  at most once whatever number of copies arrive, and the push consumer records each
  event once. Each copy doubles the wait before the next (up to 64x), and after
  ``MAX_REDISPATCHES`` copies the watch is given up, with a warning.
- **The audit log's copy** of every event: a walk over the outbox in ``seq`` order, from a
  cursor below which every row is known to be in the chain. A row published longer than
  ``TWOFA_AUDIT_REDISPATCH_AFTER_SECONDS`` ago (doubling with each copy) and not in the
  chain is sent to the audit queue again; the chain appends an ``event_id`` once.

Several sweepers at once: on PostgreSQL due rows are taken ``FOR UPDATE SKIP LOCKED`` and
the cursor row is locked (a sweeper that finds it locked skips the audit walk); SQLite
serialises writers anyway. Copies are published after the commit, so a lock is never
held across a broker call; a copy the broker refuses is simply due again later. Each pass
reads first, on a connection that takes no lock, and opens its write transaction (where it
reads again) only when something is due: the sweep runs every second, mostly idle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from services.core.challenges.rules import effective_state
from services.core.factors.push.delivery import CONSUMER as PUSH_CONSUMER
from services.core.factors.sms.ledger import lease_seconds
from services.core.models import (
    AuditEntry,
    Challenge,
    ChallengeState,
    DeliveryState,
    DispatchWatch,
    OutboxEvent,
    ProcessedEvent,
    ReconcileCursor,
    SmsDelivery,
)
from services.core.plumbing.clock import as_utc
from services.core.plumbing.db import finds_any, read_only
from services.core.plumbing.messaging.publisher import PublishError
from services.core.plumbing.metrics import REDISPATCHED

if TYPE_CHECKING:
    from services.core.plumbing.context import Context

log = logging.getLogger(__name__)

MAX_REDISPATCHES = 8  # copies of one command (about 10 min at the default bound), or of
# one audit event, before the reconciliation stops trying
BACKOFF_CAP = 64
AUDIT_CURSOR = "audit"
AUDIT_WALK_BATCH, AUDIT_WALK_ROUNDS = 1000, 10  # rows read per query, queries per sweep

W, OUT, R = DispatchWatch.__table__, OutboxEvent.__table__, ReconcileCursor.__table__
Verdict = Literal["drop", "later", "send"]


@dataclass(frozen=True)
class Redispatched:
    commands: int
    audit: int


@dataclass(frozen=True)
class _Due:
    event_id: uuid.UUID
    attempts: int
    envelope: dict[str, Any] | None  # None: the outbox row is gone (pruned)
    published: bool


def sweep(ctx: Context) -> Redispatched:
    """One bounded pass over due commands and the audit chain's gaps."""
    return Redispatched(commands=redispatch_commands(ctx), audit=redispatch_audit(ctx))


def backoff(base: float, attempts: int) -> timedelta:
    return timedelta(seconds=base * min(BACKOFF_CAP, 2**attempts))


def defer(ctx: Context, event_id: uuid.UUID, seconds: float) -> None:
    """The consumer still has this command in hand (a retry waiting ``seconds``): no copy
    before then."""
    due = ctx.clock.now() + timedelta(seconds=seconds + ctx.settings.redispatch_after_seconds)
    with ctx.engine.begin() as conn:
        conn.execute(update(W).where(W.c.event_id == event_id, W.c.due_at < due)
                     .values(due_at=due))


# -- commands ---------------------------------------------------------------------------------


def redispatch_commands(ctx: Context) -> int:
    settings, now = ctx.settings, ctx.clock.now()
    if not finds_any(ctx.engine, select(W.c.event_id).where(W.c.due_at <= now)):
        return 0
    copies: list[dict[str, Any]] = []
    with ctx.engine.begin() as conn:
        query = (
            select(W.c.event_id, W.c.attempts, OUT.c.envelope, OUT.c.published_at)
            .select_from(W.outerjoin(OUT, OUT.c.event_id == W.c.event_id))
            .where(W.c.due_at <= now)
            .order_by(W.c.due_at)
            .limit(settings.redispatch_batch_size)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=W)
        due = [_Due(r.event_id, r.attempts, r.envelope, r.published_at is not None)
               for r in conn.execute(query)]
        if not due:
            return 0
        verdicts = _verdicts(ctx, conn, due, now)
        dropped = [d.event_id for d in due if verdicts[d.event_id][0] == "drop"]
        if dropped:
            conn.execute(delete(W).where(W.c.event_id.in_(dropped)))
        for d in due:
            verdict, later = verdicts[d.event_id]
            if verdict == "later":
                conn.execute(update(W).where(W.c.event_id == d.event_id).values(due_at=later))
            elif verdict == "send":
                assert d.envelope is not None
                copies.append(d.envelope)
                conn.execute(
                    update(W).where(W.c.event_id == d.event_id).values(
                        attempts=d.attempts + 1,
                        due_at=now + backoff(settings.redispatch_after_seconds, d.attempts + 1)))
    return _publish(ctx, copies, audit=False)


def _verdicts(ctx: Context, conn: Connection, due: list[_Due],
              now: datetime) -> dict[uuid.UUID, tuple[Verdict, datetime | None]]:
    out: dict[uuid.UUID, tuple[Verdict, datetime | None]] = {}
    sms: list[_Due] = []
    push: list[_Due] = []
    for d in due:
        if d.envelope is None:
            out[d.event_id] = ("drop", None)  # pruned long after any use it could have had
        elif not d.published:  # the relay still owes the first publication
            out[d.event_id] = ("later", now + backoff(ctx.settings.redispatch_after_seconds, 0))
        elif d.attempts >= MAX_REDISPATCHES:
            log.warning("%s %s has no outcome after %d copies; giving up",
                        d.envelope["type"], d.event_id, d.attempts)
            REDISPATCHED.labels(_kind(d.envelope), "abandoned").inc()
            out[d.event_id] = ("drop", None)
        elif d.envelope["type"] == "sms.requested":
            sms.append(d)
        elif d.envelope["type"] == "push.requested":
            push.append(d)
        else:
            out[d.event_id] = ("drop", None)
    out.update(_sms_verdicts(ctx, conn, sms, now))
    out.update(_push_verdicts(conn, push, now))
    return out


def _sms_verdicts(ctx: Context, conn: Connection, due: list[_Due],
                  now: datetime) -> dict[uuid.UUID, tuple[Verdict, datetime | None]]:
    """Final record: done. A live claim, or a released one whose retry is still waiting:
    later. No record, or a claim older than the lease (its worker died): a copy, which the
    ledger sends at most once; a lost claim it sends if its send never started and otherwise
    settles as ``unknown`` without sending, a missing or expired code as ``failed`` - an
    outcome either way."""
    if not due:
        return {}
    D = SmsDelivery.__table__
    by_message = {uuid.UUID(d.envelope["data"]["message_id"]): d.event_id
                  for d in due if d.envelope is not None}
    records = {r.message_id: r for r in conn.execute(
        select(D.c.message_id, D.c.state, D.c.claimed_at, D.c.updated_at)
        .where(D.c.message_id.in_(by_message)))}
    lease = timedelta(seconds=lease_seconds(ctx))
    retry_wait = timedelta(seconds=ctx.settings.sms_retry_backoff_max_seconds
                           + ctx.settings.redispatch_after_seconds)
    out: dict[uuid.UUID, tuple[Verdict, datetime | None]] = {}
    for message_id, event_id in by_message.items():
        record = records.get(message_id)
        if record is None:
            out[event_id] = ("send", None)
        elif record.state in DeliveryState.FINAL:
            out[event_id] = ("drop", None)
        elif record.claimed_at is not None and as_utc(record.claimed_at) + lease > now:
            out[event_id] = ("later", as_utc(record.claimed_at) + lease)
        elif record.claimed_at is None and as_utc(record.updated_at) + retry_wait > now:
            out[event_id] = ("later", as_utc(record.updated_at) + retry_wait)
        else:
            out[event_id] = ("send", None)
    return out


def _push_verdicts(conn: Connection, due: list[_Due],
                   now: datetime) -> dict[uuid.UUID, tuple[Verdict, datetime | None]]:
    """Recorded by the push consumer (sent or failed), or its challenge no longer pending
    (nothing to send any more): done. Otherwise a copy."""
    if not due:
        return {}
    P, C = ProcessedEvent.__table__, Challenge.__table__
    ids = [d.event_id for d in due]
    recorded = set(conn.execute(select(P.c.event_id).where(
        P.c.consumer == PUSH_CONSUMER, P.c.event_id.in_(ids))).scalars())
    by_challenge = {d.event_id: uuid.UUID(d.envelope["data"]["challenge_id"])
                    for d in due if d.envelope is not None}
    states = {r.id: effective_state(r.state, r.expires_at, now) for r in conn.execute(
        select(C.c.id, C.c.state, C.c.expires_at).where(C.c.id.in_(set(by_challenge.values()))))}
    out: dict[uuid.UUID, tuple[Verdict, datetime | None]] = {}
    for event_id, challenge_id in by_challenge.items():
        pending = states.get(challenge_id) == ChallengeState.PENDING
        out[event_id] = ("send", None) if pending and event_id not in recorded else ("drop", None)
    return out


# -- the audit log's copy ---------------------------------------------------------------------


def redispatch_audit(ctx: Context) -> int:
    settings, now = ctx.settings, ctx.clock.now()
    bound = settings.audit_redispatch_after_seconds
    with read_only(ctx.engine) as conn:
        seen = int(conn.execute(select(R.c.seq).where(R.c.name == AUDIT_CURSOR)).scalar() or 0)
        moved_to, resend = _walk_from(conn, seen, now, bound)
        if moved_to == seen and not resend:
            return 0  # the cursor stays and nothing is due: no write transaction
    with ctx.engine.begin() as conn:
        cursor = _lock_cursor(conn)
        if cursor is None:
            return 0  # another sweeper walks the chain right now
        # Walked again under the cursor's lock: the read above may be stale by now.
        moved_to, resend = _walk_from(conn, cursor, now, bound)
        resend = resend[:settings.redispatch_batch_size]
        if moved_to != cursor:
            conn.execute(update(R).where(R.c.name == AUDIT_CURSOR).values(seq=moved_to))
        copies: list[dict[str, Any]] = []
        if resend:
            copies = list(conn.execute(
                select(OUT.c.envelope).where(OUT.c.seq.in_(resend)).order_by(OUT.c.seq)).scalars())
            conn.execute(update(OUT).where(OUT.c.seq.in_(resend))
                         .values(published_at=now, attempts=OUT.c.attempts + 1))
    return _publish(ctx, copies, audit=True)


def _walk_from(conn: Connection, cursor: int, now: datetime,
               bound: float) -> tuple[int, list[int]]:
    """Where the cursor may move to from ``cursor``, and the rows due for a copy."""
    moved_to, resend = cursor, list[int]()
    for _ in range(AUDIT_WALK_ROUNDS):
        rows = conn.execute(
            select(OUT.c.seq, OUT.c.created_at, OUT.c.published_at, OUT.c.attempts,
                   AuditEntry.__table__.c.event_id.is_not(None).label("in_chain"))
            .select_from(OUT.outerjoin(AuditEntry.__table__,
                                     AuditEntry.__table__.c.event_id == OUT.c.event_id))
            .where(OUT.c.seq > moved_to)
            .order_by(OUT.c.seq)
            .limit(AUDIT_WALK_BATCH)
        ).all()
        moved_to, stopped = _walk(rows, moved_to, now, bound, resend)
        if stopped or len(rows) < AUDIT_WALK_BATCH:
            break
    return moved_to, resend


def _walk(rows: Sequence[Row[Any]], cursor: int, now: datetime, bound: float,
          resend: list[int]) -> tuple[int, bool]:
    """Where the cursor may move to (every row up to it is in the chain, or given up),
    and whether it stopped short; adds the rows due for a copy to ``resend``."""
    settled_before = now - timedelta(seconds=bound)
    moved_to, advance = cursor, True
    for row in rows:
        # Past a row only once it is old: a lower seq may commit after a higher one.
        old = as_utc(row.created_at) <= settled_before
        published = row.published_at is not None
        given_up = not row.in_chain and published and old and row.attempts >= MAX_REDISPATCHES
        if row.in_chain or given_up:
            if given_up and advance:
                log.error("outbox event %d is not in the audit chain after %d copies; "
                          "giving up", row.seq, row.attempts)
                REDISPATCHED.labels("audit", "abandoned").inc()
            if advance and old:
                moved_to = row.seq
            else:
                advance = False
            continue
        advance = False
        if published and as_utc(row.published_at) + backoff(bound, row.attempts) <= now:
            resend.append(row.seq)  # unpublished: the relay still owes it
    return moved_to, not advance


def _lock_cursor(conn: Connection) -> int | None:
    query = select(R.c.seq).where(R.c.name == AUDIT_CURSOR)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    seq = conn.execute(query).scalar()
    if seq is not None:
        return int(seq)
    try:
        with conn.begin_nested():
            conn.execute(insert(R).values(name=AUDIT_CURSOR, seq=0))
    except IntegrityError:
        return None  # created by another sweeper, which holds it now
    return 0


# -- publishing -------------------------------------------------------------------------------


def _publish(ctx: Context, envelopes: list[dict[str, Any]], *, audit: bool) -> int:
    if not envelopes:
        return 0
    try:
        ctx.publisher.republish(envelopes, audit=audit)
    except PublishError as exc:  # due again later
        log.warning("could not publish %d cop(ies) again: %s", len(envelopes), exc)
        return 0
    for envelope in envelopes:
        REDISPATCHED.labels("audit" if audit else _kind(envelope), "published").inc()
    log.info("published %d %s again (no outcome in the database)", len(envelopes),
             "audit cop(ies)" if audit else "command(s)")
    return len(envelopes)


def _kind(envelope: dict[str, Any]) -> str:
    return str(envelope["type"]).split(".", 1)[0]
