"""One unit of work per use case: the state change and its events commit together.

Services call ``uow.emit(...)`` to add an event to the current transaction; ``commit()``
writes every emitted event to the outbox in one INSERT … RETURNING (an ORM insert per
event is costly on the login path) and commits it with the state change. Nothing is
published until that commit has succeeded, and a unit of work that is left without commit
rolls back, events included, except those emitted with ``survive_rollback=True``: an alert
about a refusal (an SMS cap tripped) must outlive the refusal it reports, so a rollback
writes those alone in a transaction of their own.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from services.core.models import DispatchWatch, OutboxEvent
from services.core.plumbing.clock import Clock
from services.core.plumbing.logs import current_correlation
from services.core.plumbing.messaging.outbox import Dispatcher
from services.core.plumbing.messaging.routes import WATCHED_COMMANDS
from services.core.plumbing.metrics import observe_events
from shared.envelope import EventData
from shared.registry import new_event

log = logging.getLogger(__name__)

# Built once: a statement object keeps its compiled form and cache key between calls.
_INSERT_OUTBOX = insert(OutboxEvent.__table__).returning(
    OutboxEvent.__table__.c.seq, sort_by_parameter_order=True
)
_INSERT_WATCH = insert(DispatchWatch.__table__)


class UnitOfWork:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        dispatcher: Dispatcher,
        correlation_id: str | None = None,
        *,
        redispatch_after: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._redispatch_after = timedelta(seconds=redispatch_after)
        self.clock = clock
        self._dispatcher = dispatcher
        # The request's or the consumed event's id, so one login's events and lines share it.
        self.correlation_id = correlation_id or current_correlation() or uuid.uuid4().hex
        self._pending: list[dict[str, Any]] = []
        self._surviving: list[dict[str, Any]] = []
        self.session: Session

    def __enter__(self) -> UnitOfWork:
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

    def emit(
        self, data: EventData, *, user_id: str | None, survive_rollback: bool = False
    ) -> dict[str, Any]:
        envelope = new_event(
            data,
            user_id=user_id,
            correlation_id=self.correlation_id,
            occurred_at=self.clock.now(),
        ).model_dump(mode="json")
        self._pending.append(envelope)
        if survive_rollback:
            self._surviving.append(envelope)
        return envelope

    def commit(self) -> None:
        rows = self._write_outbox() if self._pending else []
        self.session.commit()
        committed = self._pending
        self._pending, self._surviving = [], []
        if rows:
            self._dispatcher.dispatch(rows)
            observe_events(committed)

    def _write_outbox(self) -> list[tuple[int, dict[str, Any]]]:
        """One statement for all of this unit's events; sequence numbers in emit order."""
        now = self.clock.now()
        values = [
            {"event_id": uuid.UUID(e["event_id"]), "type": e["type"], "envelope": e,
             "created_at": now, "attempts": 0}
            for e in self._pending
        ]
        result = self.session.connection().execute(_INSERT_OUTBOX, values)
        watched = [
            {"event_id": v["event_id"], "due_at": now + self._redispatch_after, "attempts": 0}
            for v in values if v["type"] in WATCHED_COMMANDS
        ]
        if watched:  # the command's outcome is checked in the database later
            self.session.connection().execute(_INSERT_WATCH, watched)
        return [(seq, env) for (seq,), env in zip(result.all(), self._pending, strict=True)]

    def rollback(self) -> None:
        surviving, self._surviving = self._surviving, []
        self._pending = []
        self.session.rollback()
        if surviving:
            self._pending = surviving
            try:
                self.commit()
            except Exception:  # never hide the error that caused the rollback
                log.exception("could not record %d event(s) after a rollback", len(surviving))
                self._pending = []
                self.session.rollback()
