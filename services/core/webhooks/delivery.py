"""Delivering the audit chain to one subscription: in order, at least once, with back-off.

One worker at a time holds a subscription (a lease taken by compare-and-set), walks the
chain from its cursor and moves the cursor past each message its receiver accepted
(2xx), committing after each: a crash between the POST and the commit sends that one
message again, with the same ``webhook-id``. A failed attempt stops the walk and sets
``next_attempt_at`` (exponential back-off, capped); after ``webhook_retry_window_seconds``
of failing the subscription is disabled and ``webhook.disabled`` is emitted.

Each subscription is its own task, so a receiver that hangs holds one worker thread
for at most the poster's timeout, and the others go on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from services.core.models import AuditCheckpoint, AuditEntry, SubscriptionState, WebhookSubscription
from services.core.plumbing.clock import as_utc
from services.core.plumbing.context import Context
from services.core.plumbing.db import affected_rows, read_only
from services.core.webhooks import payloads, signing
from services.core.webhooks.poster import Poster
from shared.events.webhook import WebhookDisabled

LEASE_SECONDS = 120  # longer than one walk can take (TIME_BUDGET + one timed-out POST)
TIME_BUDGET = 30.0  # seconds of delivering before the walk yields to the next sweep
BATCH = 100
FIRST_BACKOFF = 5.0


@dataclass
class Report:
    delivered: int = 0
    skipped: int = 0  # filtered out by the subscription's event types
    failed: bool = False
    disabled: bool = False
    busy: bool = False  # another worker holds the subscription, or it is not due


def backoff_seconds(failures: int, cap: float) -> float:
    """5 s, 10 s, 20 s … doubling, at most ``cap``."""
    return min(cap, FIRST_BACKOFF * 2.0 ** max(0, failures - 1))


def due(ctx: Context, now: datetime) -> list[uuid.UUID]:
    """Active subscriptions with something to deliver, not held, not backing off. Read
    without a transaction (the sweep runs every second; each delivery claims its
    subscription with a compare-and-set)."""
    with read_only(ctx.engine) as conn:
        head = conn.scalar(select(func.max(AuditEntry.position))) or 0
        last_cp = conn.scalar(select(func.max(AuditCheckpoint.id))) or 0
        sub = WebhookSubscription
        return list(
            conn.scalars(
                select(sub.id).where(
                    sub.state == SubscriptionState.ACTIVE,
                    or_(sub.cursor < head, sub.checkpoint_cursor < last_cp),
                    or_(sub.next_attempt_at.is_(None), sub.next_attempt_at <= now),
                    or_(sub.leased_until.is_(None), sub.leased_until < now),
                )
            )
        )


def deliver(
    ctx: Context,
    subscription_id: uuid.UUID,
    poster: Poster,
    wall: Callable[[], float] = time.time,
    budget: float = TIME_BUDGET,
) -> Report:
    """One walk for one subscription; ``wall`` gives the signatures' timestamps (real time:
    receivers refuse a timestamp more than minutes away from theirs)."""
    report = Report()
    now = ctx.clock.now()
    if not _claim(ctx, subscription_id, now):
        report.busy = True
        return report
    try:
        _walk(ctx, subscription_id, poster, wall, budget, report)
    finally:
        with ctx.sessions.begin() as session:
            session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription_id)
                .values(leased_until=None)
            )
    return report


def _claim(ctx: Context, subscription_id: uuid.UUID, now: datetime) -> bool:
    sub = WebhookSubscription
    with ctx.sessions.begin() as session:
        claimed = affected_rows(
            session,
            update(sub)
            .where(
                sub.id == subscription_id,
                sub.state == SubscriptionState.ACTIVE,
                or_(sub.leased_until.is_(None), sub.leased_until < now),
                or_(sub.next_attempt_at.is_(None), sub.next_attempt_at <= now),
            )
            .values(leased_until=now + timedelta(seconds=LEASE_SECONDS))
        )
        return claimed == 1


def _walk(
    ctx: Context,
    subscription_id: uuid.UUID,
    poster: Poster,
    wall: Callable[[], float],
    budget: float,
    report: Report,
) -> None:
    with ctx.sessions() as session:
        sub = session.get(WebhookSubscription, subscription_id)
        assert sub is not None  # held by our lease
        url, wanted = sub.url, frozenset(sub.event_types or ())
        cursor, cp_cursor = sub.cursor, sub.checkpoint_cursor
        secret = ctx.keyring.decrypt(sub.secret_enc)
    started = time.monotonic()
    while time.monotonic() - started < budget:
        items = _pending(ctx, cursor, cp_cursor)
        if not items:
            return
        dirty = False  # the cursor moved past filtered-out items and is not saved yet
        for kind, position, ident, message in items:
            send = not wanted or message.type in wanted
            if send:
                result = poster.post(
                    url, signing.headers(secret, message.msg_id, message.body, wall()), message.body
                )
                if not result.ok:
                    if dirty:
                        _advance(ctx, subscription_id, cursor, cp_cursor, delivered=False)
                    _failed(ctx, subscription_id, result.error or "failed", cursor, report)
                    return
                report.delivered += 1
            else:
                report.skipped += 1
            cursor, cp_cursor = (position, cp_cursor) if kind == "row" else (cursor, ident)
            dirty = not send
            if send and not _advance(ctx, subscription_id, cursor, cp_cursor, delivered=True):
                return  # disabled or deleted meanwhile
            if time.monotonic() - started >= budget:
                break
        if dirty and not _advance(ctx, subscription_id, cursor, cp_cursor, delivered=False):
            return


def _pending(ctx: Context, cursor: int, cp_cursor: int) -> list[tuple[str, int, int, Any]]:
    """The next rows and checkpoints in delivery order (a checkpoint after the row it signs)."""
    with ctx.sessions() as session:
        rows = list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.position > cursor)
                .order_by(AuditEntry.position)
                .limit(BATCH)
            )
        )
        reach = rows[-1].position if rows else cursor
        cps = list(
            session.scalars(
                select(AuditCheckpoint)
                .where(AuditCheckpoint.id > cp_cursor, AuditCheckpoint.position <= reach)
                .order_by(AuditCheckpoint.id)
                .limit(BATCH)
            )
        )
        items = [("row", r.position, r.position, payloads.for_row(r)) for r in rows]
        items += [("checkpoint", c.position, c.id, payloads.for_checkpoint(c)) for c in cps]
    return sorted(items, key=lambda item: (item[1], item[0] == "checkpoint", item[2]))


def _advance(
    ctx: Context, subscription_id: uuid.UUID, cursor: int, cp_cursor: int, *, delivered: bool
) -> bool:
    """Save the cursor; a delivery also ends a failing streak."""
    sub = WebhookSubscription
    values: dict[str, Any] = {"cursor": cursor, "checkpoint_cursor": cp_cursor}
    if delivered:
        values.update(
            failures=0,
            failing_since=None,
            next_attempt_at=None,
            last_error=None,
            delivered=sub.delivered + 1,
        )
    with ctx.sessions.begin() as session:
        moved = affected_rows(
            session,
            update(sub)
            .where(sub.id == subscription_id, sub.state == SubscriptionState.ACTIVE)
            .values(values),
        )
        return moved == 1


def _failed(
    ctx: Context, subscription_id: uuid.UUID, error: str, cursor: int, report: Report
) -> None:
    report.failed = True
    settings, now = ctx.settings, ctx.clock.now()
    with ctx.uow() as uow:
        sub = uow.session.get(WebhookSubscription, subscription_id)
        if sub is None or sub.state != SubscriptionState.ACTIVE:
            return
        sub.failures += 1
        sub.failing_since = sub.failing_since or now
        sub.last_error = error[:200]
        failing = (now - as_utc(sub.failing_since)).total_seconds()
        if failing >= settings.webhook_retry_window_seconds:
            sub.state, sub.disabled_at = SubscriptionState.DISABLED, now
            sub.disabled_reason = f"failing for {int(failing)} s: {error}"[:200]
            uow.emit(
                WebhookDisabled(
                    subscription_id=subscription_id,
                    failing_since=as_utc(sub.failing_since),
                    position=cursor + 1,
                    reason=error[:200],
                ),
                user_id=None,
            )
            report.disabled = True
        else:  # the last attempt falls at the window's end, not a back-off past it
            delay = backoff_seconds(sub.failures, settings.webhook_max_backoff_seconds)
            sub.next_attempt_at = min(
                now + timedelta(seconds=delay),
                as_utc(sub.failing_since)
                + timedelta(seconds=settings.webhook_retry_window_seconds),
            )
        uow.commit()
