"""Building an audit chain and tampering with it the way an attacker with DB access would."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from services.core.audit import service
from services.core.audit.checkpoints import CheckpointPolicy
from services.core.audit.signing import CheckpointSigner
from services.core.plumbing.clock import FrozenClock
from services.core.models import AuditEntry
from shared.events.challenge import ChallengeVerified
from shared.registry import new_event


def envelope(clock: FrozenClock, i: int) -> dict[str, Any]:
    data = ChallengeVerified(challenge_id=uuid.uuid4(), area="sso", token_id=uuid.uuid4(), token_type="totp")
    return new_event(
        data, user_id=f"user{i % 3}", correlation_id=f"c{i}", occurred_at=clock.now()
    ).model_dump(mode="json")


def build_chain(
    sessions: sessionmaker[Session], signer: CheckpointSigner, clock: FrozenClock, n: int, every_rows: int = 5
) -> list[dict[str, Any]]:
    policy = CheckpointPolicy(every_rows=every_rows, every_seconds=3600)
    envelopes = []
    for i in range(n):
        env = envelope(clock, i)
        with sessions.begin() as session:
            service.record(session, env, clock.now(), signer, policy)
        envelopes.append(env)
        clock.advance(1)
    return envelopes


def edit_row(sessions: sessionmaker[Session], position: int) -> None:
    with sessions.begin() as session:
        row = session.get(AuditEntry, position)
        assert row is not None
        env = dict(row.envelope)
        env["data"] = {**env["data"], "area": "billing"}  # "it was another area"
        row.envelope = env


def edit_indexed_column(sessions: sessionmaker[Session], position: int) -> None:
    with sessions.begin() as session:
        session.execute(update(AuditEntry).where(AuditEntry.position == position).values(user_id="mallory"))


def delete_row(sessions: sessionmaker[Session], position: int) -> None:
    with sessions.begin() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.position == position))


def swap_rows(sessions: sessionmaker[Session], a: int, b: int) -> None:
    with sessions.begin() as session:
        for old, new in ((a, -1), (b, a), (-1, b)):
            session.execute(update(AuditEntry).where(AuditEntry.position == old).values(position=new))


def cut_tail(sessions: sessionmaker[Session], keep: int) -> None:
    with sessions.begin() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.position > keep))


def shift_time(clock: FrozenClock, seconds: float) -> None:
    clock.set(clock.now() + timedelta(seconds=seconds))
