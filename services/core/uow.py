"""One unit of work per use case: the state change and its events commit together.

Services call ``uow.emit(...)`` to write an outbox row in the current transaction;
nothing is published until ``commit()`` has succeeded, and a unit of work that is
left without commit rolls back, events included.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from services.core.clock import Clock
from services.core.messaging.outbox import Dispatcher
from services.core.models import OutboxEvent
from shared.envelope import EventData
from shared.registry import new_event


class UnitOfWork:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        dispatcher: Dispatcher,
        correlation_id: str | None = None,
    ) -> None:
        self._sessions = sessions
        self.clock = clock
        self._dispatcher = dispatcher
        self.correlation_id = correlation_id or uuid.uuid4().hex
        self._rows: list[OutboxEvent] = []
        self.session: Session

    def __enter__(self) -> "UnitOfWork":
        self.session = self._sessions()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()
        self.session.close()

    def emit(self, data: EventData, *, user_id: str | None) -> dict[str, Any]:
        envelope = new_event(
            data,
            user_id=user_id,
            correlation_id=self.correlation_id,
            occurred_at=self.clock.now(),
        ).model_dump(mode="json")
        row = OutboxEvent(
            event_id=uuid.UUID(envelope["event_id"]),
            type=envelope["type"],
            envelope=envelope,
            created_at=self.clock.now(),
            attempts=0,
        )
        self.session.add(row)
        self._rows.append(row)
        return envelope

    def commit(self) -> None:
        self.session.flush()  # assigns outbox sequence numbers
        rows = [(r.seq, r.envelope) for r in self._rows]
        self.session.commit()
        self._rows = []
        if rows:
            self._dispatcher.dispatch(rows)

    def rollback(self) -> None:
        self._rows = []
        self.session.rollback()
