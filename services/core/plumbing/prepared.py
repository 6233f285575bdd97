"""Hot statements run on the connection's DBAPI cursor, compiled once per dialect.

``Connection.execute`` costs tens of microseconds per statement even with its compiled
cache warm (cache key, execution context, result metadata, row objects), more than
SQLite takes to run a login's small statements. A :class:`Prepared` statement keeps
what SQLAlchemy compiled for each dialect: the SQL string, where each parameter goes
and the type conversions of the parameters and the result columns, and runs the SQL on
a cursor of the same connection, in its transaction. SQLAlchemy still sees every
statement (its ``before_cursor_execute`` events fire, DBAPI errors are translated and a
lost connection is invalidated, as for ``Connection.execute``).

A statement's own parameters are ``bindparam("b_…")`` without a value, given by the
caller at each run; literals in it (``state == 'pending'``, ``IN (…)`` lists) are fixed
when it is compiled.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Table, bindparam, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

_Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement compiled for one dialect, with its parameters' order and conversions."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        own = {b.key for b in compiled.binds.values() if b.required}
        # With a placeholder for the caller's parameters, the literal ``IN (…)`` lists are
        # rendered into the SQL once and for all.
        expanded = compiled.construct_expanded_state({key: None for key in own})
        self.sql: str = expanded.statement
        self.positional = bool(dialect.positional)
        names: Sequence[str] = (
            expanded.positiontup if self.positional and expanded.positiontup is not None
            else list(expanded.parameters)
        )
        if not own <= set(names):  # a name SQLAlchemy had to escape: not supported here
            raise ValueError(f"parameters {sorted(own - set(names))} not found in {self.sql}")
        processors: Mapping[str, Any] = {**compiled._bind_processors, **expanded.processors}
        defaults = _column_defaults(compiled)
        # (name in the SQL, the caller's key or None, the fixed value, the conversion)
        self.slots: list[tuple[str, str | None, Any, _Processor]] = []
        for name in names:
            proc = processors.get(name)
            key = name if name in own else None
            value = None if key is not None else defaults.get(name, expanded.parameters[name])
            if key is None and proc is not None:
                value, proc = proc(value), None
            self.slots.append((name, key, value, proc))
        columns = compiled._result_columns
        self.row_type: Any = namedtuple("Row", [c.keyname for c in columns])  # type: ignore[misc]
        self.result_processors: list[_Processor] = [
            c.type._cached_result_processor(dialect, None) for c in columns
        ]
        self.converts = any(p is not None for p in self.result_processors)

    def parameters(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = [
            value if key is None else (params[key] if proc is None else proc(params[key]))
            for _, key, value, proc in self.slots
        ]
        if self.positional:
            return tuple(values)
        return {slot[0]: value for slot, value in zip(self.slots, values, strict=True)}

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        make = self.row_type._make
        if not self.converts:
            return [make(r) for r in raw]
        procs = self.result_processors
        return [
            make([v if p is None else p(v) for p, v in zip(procs, r, strict=True)]) for r in raw
        ]


def _column_defaults(compiled: Any) -> dict[str, Any]:
    """The values of the columns an INSERT or UPDATE leaves to their Python-side default
    (``default=0``), which ``Connection.execute`` would fill in at each run."""
    values = {}
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not default.is_scalar:
            raise ValueError(f"{column} has a default computed at each run: name it instead")
        values[column.key] = default.arg
    return values


class Prepared:
    """A Core statement run on the DBAPI cursor. Rows are named tuples (``row.state``)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._by_dialect: weakref.WeakKeyDictionary[Dialect, _Compiled] = (
            weakref.WeakKeyDictionary()
        )

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect)
        if compiled is None:
            compiled = self._by_dialect[dialect] = _Compiled(self.statement, dialect)
        return compiled

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        if not conn.in_transaction():
            conn.begin()  # as Connection.execute would: the begin hooks (SQLite's writer queue) run
        compiled = self._compiled(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            conn._cursor_execute(cursor, compiled.sql, compiled.parameters(params))
        except BaseException:
            cursor.close()
            raise
        return compiled, cursor

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        compiled, cursor = self._run(conn, params)
        try:
            return compiled.rows(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        rows = self.all(conn, params)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run an INSERT, UPDATE or DELETE without RETURNING: the rows it changed."""
        _, cursor = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()


def insert_named(table: Table, *columns: str) -> Insert:
    """An INSERT of ``columns`` (every column when none is named), each value a bind
    parameter named after its column and typed like it, so that every run of the Prepared
    statement gives the same columns by name."""
    names = columns or tuple(c.key for c in table.c)
    return insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in names})
