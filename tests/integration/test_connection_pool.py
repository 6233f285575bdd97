"""PostgreSQL connections: reads without a transaction, and a ping only for a connection that
rested in the pool (a dead one is replaced before the caller sees it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from services.core.plumbing import db
from services.core.plumbing.db import make_engine, read_only

from ..conftest import EXTERNAL_DB

pytestmark = pytest.mark.skipif(
    not EXTERNAL_DB.startswith("postgresql"), reason="needs TWOFA_DATABASE_URL=postgresql…"
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    seen: list[object] = []
    real = engine.dialect.do_ping

    def counting(dbapi_conn: object) -> bool:
        seen.append(dbapi_conn)
        return real(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return seen


def backend_pid(engine: Engine) -> int:
    with read_only(engine) as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(database_url: str, pid: int) -> None:
    other = make_engine(database_url)
    with other.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_connection_back_a_moment_ago_is_used_without_a_ping(engine, pings):
    pid = backend_pid(engine)
    for _ in range(20):
        assert backend_pid(engine) == pid
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
    assert pings == []


def test_a_rested_connection_that_died_is_replaced_before_use(
    engine, pings, database_url, monkeypatch
):
    pid = backend_pid(engine)
    terminate(database_url, pid)
    monkeypatch.setattr(db._IdlePing, "REST_SECONDS", 0.0)  # it has rested long enough

    assert backend_pid(engine) != pid
    assert len(pings) >= 1


def test_a_dead_connection_used_at_once_fails_once_then_the_pool_recovers(
    engine, pings, database_url
):
    pid = backend_pid(engine)
    terminate(database_url, pid)

    with pytest.raises(OperationalError):
        backend_pid(engine)
    assert backend_pid(engine) != pid
    assert pings == []


def test_reads_run_outside_a_transaction_and_writes_inside_one(engine):
    with read_only(engine) as conn:
        conn.execute(text("SELECT 1"))
        assert conn.connection.dbapi_connection.autocommit is True
        status = conn.connection.dbapi_connection.info.transaction_status
        assert status.name == "IDLE"  # no BEGIN was sent for the read
    with engine.connect() as conn:  # the same pooled connection, back in its default mode
        assert conn.connection.dbapi_connection.autocommit is False
        conn.execute(text("CREATE TEMP TABLE t (x int)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        conn.rollback()
        assert conn.execute(text("SELECT to_regclass('pg_temp.t')")).scalar_one() is None
