"""Engine, session factory and the declarative base shared by every model.

Portable column types only (Uuid, JSON, timezone-aware DateTime), so that the same
models and migrations run on SQLite (the embedded default) and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Executable,
    MetaData,
    Select,
    String,
    Table,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    configure_mappers,
    mapped_column,
    sessionmaker,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UtcDateTime = Annotated[datetime, mapped_column(DateTime(timezone=True))]
UserIdStr = Annotated[str, mapped_column(String(128), index=True)]
JsonDict = Annotated[dict[str, Any], mapped_column(JSON)]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model here is mapped to a Table (DeclarativeBase allows any FromClause), so the
    # Core statements that use ``Model.__table__`` can insert into and update it.
    __table__: ClassVar[Table]


_M = TypeVar("_M", bound=Base)


def transient(model: type[_M], values: Mapping[str, Any]) -> _M:
    """An instance of ``model`` holding ``values``, as a value to read and answer from,
    never to be added to a session. The mapped constructor records each attribute it sets
    as a change for a flush that such a value never sees, at ten times the cost of the
    instance itself."""
    mapper = inspect(model)
    if not mapper.configured:
        configure_mappers()
    if unknown := values.keys() - mapper.attrs.keys():  # as the mapped constructor refuses
        raise TypeError(f"{model.__name__} has no attribute(s) {sorted(unknown)}")
    instance = cast(_M, mapper.class_manager.new_instance())
    instance.__dict__.update(values)
    return instance


def affected_rows(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE in the session; the rows it changed tell a compare-and-set
    whether it won."""
    # Session.execute is typed to return a Result; for a DML statement it is a CursorResult.
    return cast(CursorResult[Any], session.execute(statement)).rowcount


# How a SQLite commit reaches the disk, named in the database URL (``?synchronous=full``)
# as PostgreSQL's ``synchronous_commit`` is (``?options=-c synchronous_commit=off``), so
# that every process that opens the database commits the same way.
#
# normal: the log is flushed at each checkpoint (the relay's, every fraction of a second),
#   not at each commit. A committed change survives a crash of any process; after a power
#   loss or an OS crash the last commits before it can be gone, the database intact.
# full: every commit is flushed before it returns, as PostgreSQL does by default.
SQLITE_SYNCHRONOUS = ("normal", "full")


def sqlite_synchronous(url: str | URL) -> str:
    """The level a SQLite URL names, ``normal`` when it names none."""
    value = make_url(url).query.get("synchronous", "normal")
    if not isinstance(value, str) or value.lower() not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"the database URL asks for synchronous={value!r}: SQLite's must be one of "
            f"{', '.join(SQLITE_SYNCHRONOUS)}"
        )
    return value.lower()


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        parsed = make_url(url)
        synchronous = sqlite_synchronous(parsed)
        engine = create_engine(
            parsed.difference_update_query(["synchronous"]),
            connect_args={"timeout": 30, "check_same_thread": False},
            **kwargs,
        )
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, synchronous))
        _WriterQueue(_lock_path(engine)).install(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    _IdlePing(engine).install()
    return engine


class _IdlePing:
    """Test a pooled connection before use only when it has rested in the pool: a
    connection that came back moments ago is alive, and ``pool_pre_ping`` spent a round
    trip on every checkout (two per login) to learn that. One that rested may have been
    closed by a server restart or an idle timeout; it is pinged, and a dead one is
    replaced before the caller sees it. A server that dies under load fails the
    statements in flight once; SQLAlchemy then discards the pool's older connections."""

    REST_SECONDS = 1.0
    KEY = "twofa_checked_in_at"

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        self._pool = engine.pool

    def install(self) -> None:
        event.listen(self._pool, "checkin", self._checkin)
        event.listen(self._pool, "checkout", self._checkout)

    def _checkin(self, _dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[self.KEY] = time.monotonic()

    def _checkout(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        rested_since = record.info.pop(self.KEY, None)
        if rested_since is None or time.monotonic() - rested_since < self.REST_SECONDS:
            return  # new, or back from a caller a moment ago
        try:
            alive = self._dialect.do_ping(dbapi_conn)
        except self._dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def _lock_path(engine: Engine) -> str | None:
    """The file the processes of one SQLite database queue on (none for in-memory ones)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database) + ".writer-lock"


# Pages of 4 KiB: a log of at most ~40 MiB while no relay runs.
WAL_AUTOCHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(synchronous: str, dbapi_conn: Any, _record: Any) -> None:
    # The API, the relay and every worker are separate processes on one file: WAL lets
    # readers run beside the single writer, busy_timeout waits instead of failing.
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, see below
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
    # The relay checkpoints the log (plumbing.wal); a commit does only if none has run for
    # this many pages.
    cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    # No memory map, whatever the build's default: SQLite drops a connection's map whenever
    # another connection has committed since its last transaction, which here is nearly
    # every time (the other API connections, the relay, the audit consumer), and then maps
    # the file again and takes a page fault for each page it reads. Reading into the page
    # cache costs a login less, with a thousand tokens as with a million.
    cur.execute("PRAGMA mmap_size=0")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


READ_ONLY = "twofa_read_only"


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that does not queue for the write lock: each statement
    reads the latest committed snapshot, with no transaction around them (on SQLite,
    WAL's snapshot beside the writer). What is decided from such a read must be written
    with a compare-and-set, since the row may change before then."""
    with engine.connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        if conn.dialect.name != "sqlite":
            # No BEGIN and ROLLBACK round trips around the reads, and the same per-statement
            # snapshot as on SQLite (whose connections are in autocommit already, see
            # ``_sqlite_pragmas``).
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
        conn.rollback()


def finds_any(engine: Engine, query: Select[*tuple[Any, ...]]) -> bool:
    """Whether ``query`` finds a row, read without a lock (``read_only``). What runs every
    second, mostly with nothing to do, asks this before it opens a write transaction, which
    on SQLite would take every process's write lock each time."""
    with read_only(engine) as conn:
        return conn.execute(query.limit(1)).first() is not None


class _WriterQueue:
    """Every SQLite transaction starts with BEGIN IMMEDIATE: a deferred transaction that
    later writes can fail with SQLITE_BUSY without waiting, and taking the write lock up
    front makes compare-and-set updates safe across processes.

    Writers queue twice, so that the file lock passes from one to the next at once instead
    of through SQLite's busy handler, which polls it with sleeps of 1, 2, 5 … 100 ms
    (long tails and lost throughput once the API workers, the relay and the audit
    consumer all write): threads of one process on a Python lock, then processes on an
    ``flock`` of a file beside the database, which the kernel hands to the next waiter on
    release and drops when its holder dies. SQLite's own busy timeout remains for writers
    that are not ours (the sqlite3 shell).

    A thread takes this slot when it begins a transaction and gives it back when the
    transaction ends. An event loop instead holds it around a whole unit of work
    (``hold``, ``give_back``): waiting in ``begin`` would stop the loop while another
    process writes, so the loop waits for the slot before the unit of work starts,
    and its transactions then run inside the slot it holds.
    """

    KEY = "twofa_writer_lock"

    WAIT_SECONDS = 30  # as long as SQLite's own busy_timeout

    def __init__(self, lock_path: str | None = None) -> None:
        # A plain Lock, not an RLock: a request's transaction may end on another thread of
        # the pool than the one that began it, and only a Lock may be released from there.
        self._lock = threading.Lock()
        self._lock_path = lock_path
        self._fd: int | None = None
        self._pid = 0
        # The thread that holds the slot across transactions (an event loop's), if any.
        self._holder: int | None = None
        self._waits: queue.SimpleQueue[_Ask] | None = None
        self._waits_pid = 0
        self._waits_guard = threading.Lock()
        self._turns: dict[asyncio.AbstractEventLoop, _LoopTurns] = {}

    def install(self, engine: Engine) -> None:
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        # A connection that goes back to the pool (or dies) mid-transaction never holds it.
        event.listen(engine.pool, "checkin", self._checkin)
        _QUEUES[engine] = self

    def _begin(self, conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            return  # autocommit: each SELECT reads WAL's latest snapshot, never waits for a writer
        # True: this transaction took the slot and gives it back as it ends; False: it runs
        # inside the slot its thread holds (``hold``), which the holder gives back.
        taken = self._holder != threading.get_ident()
        if taken:
            self._take()
        conn.info[self.KEY] = taken
        try:
            # On the cursor, as plumbing.prepared runs statements: exec_driver_sql's
            # execution context costs more than the statement.
            cursor = conn.connection.cursor()
            try:
                conn._cursor_execute(cursor, "BEGIN IMMEDIATE", ())
            finally:
                cursor.close()
        except BaseException:
            self._end(conn)
            raise

    # SQLAlchemy fires "commit" and "rollback" *before* it ends the transaction: releasing
    # the locks there let the next writer's BEGIN IMMEDIATE find the file still locked
    # and fall into the busy handler's sleeps. So the transaction is ended here first
    # (the DBAPI's own commit/rollback then has nothing left to do).
    def _commit(self, conn: Any) -> None:
        self._finish(conn, "COMMIT")

    def _rollback(self, conn: Any) -> None:
        self._finish(conn, "ROLLBACK")

    def _finish(self, conn: Any, sql: str) -> None:
        if self.KEY not in conn.info:
            return
        try:
            dbapi = conn.connection.dbapi_connection
            if dbapi is not None and dbapi.in_transaction:
                dbapi.execute(sql)
        finally:
            self._end(conn)

    def _end(self, conn: Any) -> None:
        if conn.info.pop(self.KEY, False):
            self._release()

    def _checkin(self, _dbapi_conn: Any, record: Any) -> None:
        if record is not None and record.info.pop(self.KEY, False):
            self._release()

    def _take(self) -> None:
        if not self._lock.acquire(timeout=self.WAIT_SECONDS):
            raise TimeoutError(f"no SQLite write slot within {self.WAIT_SECONDS} s")
        try:
            self._file_lock(fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise

    def _try_take(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._file_lock(fcntl.LOCK_EX | fcntl.LOCK_NB):
                return True
        except BaseException:
            self._lock.release()
            raise
        self._lock.release()
        return False

    def _release(self) -> None:
        try:
            self._file_lock(fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _file_lock(self, op: int) -> bool:
        """``flock`` on this process's own descriptor (held under ``self._lock``); False
        when ``LOCK_NB`` found it held by another process."""
        if self._lock_path is None:
            return True
        if self._fd is None or self._pid != os.getpid():  # opened anew after a fork
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        try:
            fcntl.flock(self._fd, op)
        except BlockingIOError:
            return False
        return True

    @contextmanager
    def held(self) -> Iterator[None]:
        """The slot around statements that are no transaction of ours (a checkpoint of the
        log), so that no writer of any process appends to the log meanwhile."""
        self._take()
        try:
            yield
        finally:
            self._release()

    # -- an event loop's way in (``services.api.deps.run_db``) ------------------------------

    async def hold(self) -> None:
        """Take the slot for the calling thread (an event loop's) until ``give_back``; the
        transactions it begins meanwhile run inside it. A free slot is taken at once. A
        busy one is waited for in order with the loop's other units of work, while the
        loop serves other requests: only the first of them asks this process's waiter
        thread, and each hands the slot on to the next as it ends. Through the waiter,
        each unit of work would cost a thread hop, and leave the slot idle while the
        waiter waits for the GIL the loop holds. After ``HANDOFFS`` in a row the slot
        goes back to the file lock's queue, so that other processes and threads write in
        between. Raises ``TimeoutError`` as ``begin`` does."""
        loop = asyncio.get_running_loop()
        me = threading.get_ident()
        turns = self._turns.get(loop)
        if turns is None and self._holder != me and self._try_take():
            self._holder = me
            return
        if turns is None:
            turns = self._turns[loop] = _LoopTurns()
        turn: asyncio.Future[None] = loop.create_future()
        turns.waiting.append(turn)
        if self._holder != me and not turns.asked:
            self._ask_waiter(loop, turns, me)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.give_back()  # handed the slot as it was cancelled: on to the next
            elif turn in turns.waiting:
                turns.waiting.remove(turn)
                self._forget_if_idle(loop, turns)
            raise

    def give_back(self) -> None:
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is not None and turns.handed < self.HANDOFFS and self._hand_on(turns):
            turns.handed += 1
            return
        self._holder = None
        self._release()
        if turns is not None:
            turns.handed = 0
            if turns.waiting and not turns.asked:
                self._ask_waiter(loop, turns, threading.get_ident())
            self._forget_if_idle(loop, turns)

    HANDOFFS = 8

    @staticmethod
    def _hand_on(turns: _LoopTurns) -> bool:
        """Wake the next unit of work waiting on this loop, which now holds the slot."""
        while turns.waiting:
            turn = turns.waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return True
        return False

    def _forget_if_idle(self, loop: asyncio.AbstractEventLoop, turns: _LoopTurns) -> None:
        if not turns.waiting and not turns.asked and self._turns.get(loop) is turns:
            del self._turns[loop]

    def _ask_waiter(self, loop: asyncio.AbstractEventLoop, turns: _LoopTurns, holder: int) -> None:
        turns.asked = True
        with self._waits_guard:
            if self._waits is None or self._waits_pid != os.getpid():  # anew after a fork
                self._waits, self._waits_pid = queue.SimpleQueue(), os.getpid()
                threading.Thread(
                    target=self._serve_waits, args=(self._waits,),
                    name="sqlite-write-slot", daemon=True,
                ).start()
            self._waits.put((loop, turns, holder))

    def _serve_waits(self, waits: queue.SimpleQueue[_Ask]) -> None:
        """One thread per process takes the slot on behalf of its loops, in order. It names
        the loop's thread the holder before the loop learns of it, so that a transaction
        begun on that loop in between runs inside the slot rather than waiting on the loop
        for a slot the loop itself holds."""
        while True:
            loop, turns, holder = waits.get()
            try:
                self._take()
            except BaseException as exc:
                self._call_on(loop, self._refused, loop, turns, exc)
                continue
            self._holder = holder
            if not self._call_on(loop, self._granted, loop, turns):
                self._holder = None  # the loop is gone
                self._release()

    @staticmethod
    def _call_on(loop: asyncio.AbstractEventLoop, fn: Callable[..., object], *args: Any) -> bool:
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed
            return False
        return True

    def _granted(self, loop: asyncio.AbstractEventLoop, turns: _LoopTurns) -> None:
        turns.asked = False
        turns.handed = 0
        if not self._hand_on(turns):  # every waiter was cancelled meanwhile
            self._holder = None
            self._release()
            self._forget_if_idle(loop, turns)

    def _refused(self, loop: asyncio.AbstractEventLoop, turns: _LoopTurns,
                 exc: BaseException) -> None:
        turns.asked = False
        while turns.waiting:
            turn = turns.waiting.popleft()
            if not turn.done():
                turn.set_exception(exc)
        self._forget_if_idle(loop, turns)


class _LoopTurns:
    """The units of work of one event loop that wait for the write slot, in order."""

    __slots__ = ("waiting", "asked", "handed")

    def __init__(self) -> None:
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.asked = False  # the waiter thread is taking the slot for this loop
        self.handed = 0  # units of work handed the slot in a row without giving it back


# What the waiter thread is asked: take the slot for this loop's waiting units of work, and
# name this thread (the loop's) its holder.
_Ask = tuple[asyncio.AbstractEventLoop, _LoopTurns, int]

_QUEUES: weakref.WeakKeyDictionary[Engine, _WriterQueue] = weakref.WeakKeyDictionary()


def writer_queue(engine: Engine) -> _WriterQueue | None:
    """The write slot of a SQLite engine (None for other databases)."""
    return _QUEUES.get(engine)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
