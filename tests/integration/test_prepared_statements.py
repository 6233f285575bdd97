"""Prepared statements (plumbing.prepared) give what ``Connection.execute`` gives for the
same statement, on SQLite and PostgreSQL: the same parameters and rows after the type
conversions, SQLAlchemy's errors and events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, event, exc, insert, select

from services.core.challenges import store
from services.core.models import Challenge, ChallengeState, UserProfile
from services.core.plumbing.context import Context
from services.core.plumbing.prepared import Prepared
from tests.conftest import T0

C = Challenge.__table__.c


def _row(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        id=uuid.uuid4(), user_id="alice", area="sso", purpose="login", target=None,
        state=ChallengeState.PENDING, attempts=0, max_attempts=5, correlation_id="c1",
        created_at=T0, expires_at=T0 + timedelta(minutes=5),
    )
    values.update(changes)
    return values


def test_rows_and_parameters_convert_as_connection_execute_does(ctx: Context) -> None:
    token = uuid.uuid4()
    with ctx.engine.begin() as conn:
        store.insert(conn, _row(id=(first := uuid.uuid4()), token_id=token, token_type="totp"))
        store.insert(conn, _row(state=ChallengeState.VERIFIED, completed_at=T0))
    # A literal IN list, a UUID and a timestamp parameter, UUID and timestamp columns.
    statement = (
        select(C.id, C.token_id, C.state, C.expires_at, C.completed_at)
        .where(C.state.in_((ChallengeState.PENDING, ChallengeState.FAILED)),
               C.token_id == bindparam("b_token"), C.expires_at > bindparam("b_now"))
    )
    params = {"b_token": token, "b_now": T0}
    with ctx.engine.connect() as conn:
        expected = [tuple(r) for r in conn.execute(statement, params)]
        got = Prepared(statement).all(conn, params)
    assert [tuple(r) for r in got] == expected
    assert got[0].id == first and isinstance(got[0].token_id, uuid.UUID)
    assert got[0].completed_at is None


def test_a_database_error_is_sqlalchemys_and_the_transaction_rolls_back(ctx: Context) -> None:
    values = _row()
    with ctx.engine.connect() as conn:
        store.insert(conn, values)
        with pytest.raises(exc.IntegrityError):
            store.insert(conn, values)  # the same primary key
        conn.rollback()
    with ctx.engine.connect() as conn:
        assert store.get(conn, values["id"]) is None


def test_statement_events_see_each_statement(ctx: Context) -> None:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(ctx.engine, "before_cursor_execute", record)
    with ctx.engine.begin() as conn:
        store.insert(conn, _row())
    assert any(s.startswith("INSERT INTO challenges") for s in seen)


def test_a_columns_scalar_default_is_written(ctx: Context) -> None:
    P = UserProfile.__table__.c
    add = Prepared(
        insert(UserProfile.__table__).values(user_id=bindparam("b_user"),
                                             created_at=bindparam("b_now", type_=C.created_at.type))
    )
    with ctx.engine.begin() as conn:
        add.rowcount(conn, {"b_user": "bob", "b_now": T0})
        row = conn.execute(select(P.failures, P.recovery_failures)).one()
    assert tuple(row) == (0, 0)


def test_a_default_computed_at_each_run_is_refused(ctx: Context) -> None:
    # The id's default (uuid4) would have to be called per row: the statement must name it.
    add = Prepared(insert(Challenge.__table__).values(user_id=bindparam("b_user")))
    with ctx.engine.begin() as conn, pytest.raises(ValueError, match="name it"):
        add.rowcount(conn, {"b_user": "bob"})
