"""One unit of work per use case: the state change and its events commit together.

Services call ``uow.emit(...)`` to add an event to the current transaction; ``commit()``
writes each emitted event to the outbox with a prepared INSERT … RETURNING (a unit of
work emits one to three events, and an ORM or Core insert of them cost more than the
login's other statements) and commits them with the state change. Nothing is
published until that commit has succeeded, and a unit of work that is left without commit
rolls back, events included, except those emitted with ``survive_rollback=True``: an alert
about a refusal (an SMS cap tripped) must outlive the refusal it reports, so a rollback
writes those alone in a transaction of their own.

A unit of work opens an ORM ``session`` only when its use case asks for one: the challenge
flow (the login among it) runs statements on the unit's ``connection`` alone, and opening
and committing a Session cost a login more than its statements. Asked for first, the
session brings its connection; asked for after the connection, it joins its transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from types import TracebackType
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from services.core.models import DispatchWatch, OutboxEvent
from services.core.plumbing.clock import Clock
from services.core.plumbing.logs import current_correlation
from services.core.plumbing.messaging.outbox import Dispatcher
from services.core.plumbing.messaging.routes import WATCHED_COMMANDS
from services.core.plumbing.metrics import observe_events
from services.core.plumbing.prepared import Prepared, insert_named
from shared.envelope import EventData
from shared.registry import new_event

log = logging.getLogger(__name__)


# One row per run: the sequence numbers come in the order the events were emitted.
_INSERT_OUTBOX = Prepared(
    insert_named(OutboxEvent.__table__, "event_id", "type", "envelope", "created_at", "attempts")
    .returning(OutboxEvent.__table__.c.seq)
)
_INSERT_WATCH = Prepared(insert_named(DispatchWatch.__table__, "event_id", "due_at", "attempts"))


class UnitOfWork:
    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        clock: Clock,
        dispatcher: Dispatcher,
        correlation_id: str | None = None,
        *,
        redispatch_after: float = 5.0,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._session: Session | None = None
        self._conn: Connection | None = None
        self._redispatch_after = timedelta(seconds=redispatch_after)
        self.clock = clock
        self._dispatcher = dispatcher
        # The request's or the consumed event's id, so one login's events and lines share it.
        self.correlation_id = correlation_id or current_correlation() or uuid.uuid4().hex
        self._pending: list[dict[str, Any]] = []
        self._surviving: list[dict[str, Any]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            # Asked for after the connection (a step-up spent, then an ORM change): the
            # Session joins the connection's transaction, which the unit of work commits.
            self._session = (
                self._sessions() if self._conn is None
                else self._sessions(bind=self._conn, join_transaction_mode="rollback_only")
            )
        return self._session

    @property
    def connection(self) -> Connection:
        if self._session is not None:
            return self._session.connection()
        if self._conn is None:
            conn = self._engine.connect()
            try:
                conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            if self._session is not None:
                self._session.close()
            if self._conn is not None:
                self._conn.close()

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
        if self._session is not None:
            self._session.commit()  # joined to ``_conn``: flushes, leaves the commit to it
        if self._conn is not None:
            self._conn.commit()
        committed = self._pending
        self._pending, self._surviving = [], []
        if rows:
            self._dispatcher.dispatch(rows)
            observe_events(committed)

    def _write_outbox(self) -> list[tuple[int, dict[str, Any]]]:
        """This unit's events, in emit order, with their sequence numbers."""
        now = self.clock.now()
        conn = self.connection
        rows: list[tuple[int, dict[str, Any]]] = []
        for envelope in self._pending:
            event_id = uuid.UUID(envelope["event_id"])
            values = {"event_id": event_id, "type": envelope["type"], "envelope": envelope,
                      "created_at": now, "attempts": 0}
            rows.append((int(_INSERT_OUTBOX.scalar(conn, values)), envelope))
            if envelope["type"] in WATCHED_COMMANDS:  # its outcome is checked later
                due = now + self._redispatch_after
                _INSERT_WATCH.rowcount(conn, {"event_id": event_id, "due_at": due, "attempts": 0})
        return rows

    def rollback(self) -> None:
        surviving, self._surviving = self._surviving, []
        self._pending = []
        self._rollback()
        if surviving:
            self._pending = surviving
            try:
                self.commit()
            except Exception:  # never hide the error that caused the rollback
                log.exception("could not record %d event(s) after a rollback", len(surviving))
                self._pending = []
                self._rollback()

    def _rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        if self._conn is not None:
            self._conn.rollback()
