"""A unit of work on its bare connection: no ORM Session, the same commit and rollback.

The challenge flow runs statements only; a Session around them (begin, connection for bind,
commit's state changes) cost its login more than the statements. A unit of work that asks
for ``connection`` first runs on a bare connection; one that asks for ``session`` first
runs on the session, and ``connection`` is then the session's own; a session asked for after
the connection joins its transaction.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.core.models import OutboxEvent
from services.core.plumbing.context import Context
from services.core.plumbing.messaging.publisher import RecordingPublisher
from shared.events.challenge import ChallengeNotRequired


def _outbox_rows(ctx: Context) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OutboxEvent)).scalar_one())


@pytest.fixture
def sessions_opened(monkeypatch: pytest.MonkeyPatch) -> list[Session]:
    opened: list[Session] = []
    init = Session.__init__

    def counting(self: Session, *args: object, **kwargs: object) -> None:
        opened.append(self)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "__init__", counting)
    return opened


def test_statements_and_events_commit_without_a_session(
    ctx: Context, publisher: RecordingPublisher, sessions_opened: list[Session]
) -> None:
    with ctx.uow() as uow:
        assert uow.connection.execute(select(1)).scalar_one() == 1
        uow.emit(ChallengeNotRequired(area="sso"), user_id="u1")
        uow.commit()
    assert sessions_opened == []
    assert _outbox_rows(ctx) == 1
    assert publisher.types() == ["challenge.not_required"]


def test_a_unit_of_work_left_without_commit_writes_nothing(
    ctx: Context, sessions_opened: list[Session]
) -> None:
    with pytest.raises(ZeroDivisionError), ctx.uow() as uow:
        uow.connection.execute(select(1))
        uow.emit(ChallengeNotRequired(area="sso"), user_id="u1")
        1 / 0  # noqa: B018
    assert _outbox_rows(ctx) == 0
    with ctx.uow() as uow:  # an event that must outlive the rollback still does
        uow.connection.execute(select(1))
        uow.emit(ChallengeNotRequired(area="sso"), user_id="u1", survive_rollback=True)
    assert _outbox_rows(ctx) == 1
    assert sessions_opened == []


def test_a_session_asked_for_later_joins_the_connections_transaction(ctx: Context) -> None:
    with ctx.uow() as uow:
        conn = uow.connection
        conn.execute(select(1))
        uow.session.add(OutboxEvent(event_id=uuid.uuid4(), type="t", envelope={},
                                    created_at=ctx.clock.now(), attempts=0))
        assert uow.session.connection() is conn
        uow.emit(ChallengeNotRequired(area="sso"), user_id="u1")
        uow.commit()
    assert _outbox_rows(ctx) == 2
    with pytest.raises(ZeroDivisionError), ctx.uow() as uow:  # and rolls back with it
        uow.connection.execute(select(1))
        uow.session.add(OutboxEvent(event_id=uuid.uuid4(), type="t", envelope={},
                                    created_at=ctx.clock.now(), attempts=0))
        uow.session.flush()
        1 / 0  # noqa: B018
    assert _outbox_rows(ctx) == 2


def test_after_a_session_the_connection_is_the_sessions(ctx: Context) -> None:
    with ctx.uow() as uow:
        session = uow.session
        assert uow.connection is session.connection()
        uow.emit(ChallengeNotRequired(area="sso"), user_id="u1")
        uow.commit()
    assert _outbox_rows(ctx) == 1
