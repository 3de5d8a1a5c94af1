"""The hot statements, run on SQLite's own driver connection with SQL compiled once.

Why: on the answer path each item runs about a dozen small statements (the turn, the
transcript, the answer log, the outbox row, the inbox finish, the claim). Through SQLAlchemy's
Connection.execute each one builds an execution context, looks up the compiled form in the
cache, wraps a cursor in a Result and fires events: about 25 us of Python per statement,
several times what SQLite itself spends on it, all of it holding the GIL the event loop needs.

How: `execute(conn, stmt, params)` compiles `stmt` once per set of parameter names with the
connection's own dialect (so the SQL text is exactly what SQLAlchemy would send), converts
the parameters with that dialect's own bind processors (JSON to text, datetimes to SQLite's
text format: the stored bytes are the same) and calls sqlite3's execute directly, on the very
connection and inside the very transaction that `conn` is running. Result columns go through
the dialect's result processors too. Any other database (PostgreSQL) and anything this does
not handle (expanding IN lists, Python-side column defaults) simply goes to
`conn.execute`: same statement, same outcome, only slower."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql import Insert
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any] | None


@dataclass
class Rows:
    """What a statement gave back: its rows (already converted) and the rows it changed."""

    rows: list[tuple[Any, ...]]
    rowcount: int

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def all(self) -> list[tuple[Any, ...]]:
        return self.rows

    def scalar_one_or_none(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        if len(self.rows) != 1:
            raise ValueError(f"expected one row, got {len(self.rows)}")
        return self.rows[0][0]


@dataclass
class _Compiled:
    stmt: ClauseElement  # kept so that the id() key can never be reused by another statement
    sql: str
    compiled: Any
    names: tuple[str, ...]
    binds: tuple[Processor, ...]
    results: tuple[Processor, ...] | None  # None: the statement returns no rows
    constants: dict[str, Any] | None = None  # values of the binds no row supplies (None: use construct_params)


_cache: dict[tuple[int, str, tuple[str, ...]], _Compiled | None] = {}


def execute(conn: Connection, stmt: ClauseElement, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Rows:
    """Run `stmt` with `params` (one row, or several for an executemany) on `conn`."""
    many = not isinstance(params, Mapping)
    rows_in: Sequence[Mapping[str, Any]] = params if many else [params]  # type: ignore[assignment,list-item]
    if conn.dialect.name != "sqlite" or not rows_in:
        return _through_sqlalchemy(conn, stmt, params)
    prepared = _prepare(conn, stmt, tuple(sorted(rows_in[0])))
    if prepared is None:
        return _through_sqlalchemy(conn, stmt, params)
    driver = conn.connection.driver_connection
    driver = getattr(driver, "_conn", driver)  # qopi_bot.dbexec lends aiosqlite's connection in a wrapper
    values = [_bind(prepared, row) for row in rows_in]
    if many and prepared.results is None:
        cursor = driver.executemany(prepared.sql, values)
        return Rows([], cursor.rowcount)
    out: list[tuple[Any, ...]] = []
    count = 0
    for value in values:
        cursor = driver.execute(prepared.sql, value)
        if prepared.results is not None:
            # Read every row now: sqlite3 cannot commit while a RETURNING statement has rows left.
            out.extend(tuple(p(v) if p else v for p, v in zip(prepared.results, row)) for row in cursor.fetchall())
        count += max(cursor.rowcount, 0)
    return Rows(out, count)


def _through_sqlalchemy(conn: Connection, stmt: ClauseElement, params: Any) -> Rows:
    result = conn.execute(stmt, params)  # type: ignore[call-overload]
    rows = [tuple(r) for r in result.all()] if result.returns_rows else []
    return Rows(rows, result.rowcount if not result.returns_rows else len(rows))


def _bind(prepared: _Compiled, row: Mapping[str, Any]) -> list[Any]:
    if prepared.constants is None:
        full = prepared.compiled.construct_params(row, _check=False)
        return [p(full[n]) if p else full[n] for n, p in zip(prepared.names, prepared.binds)]
    # Parameters by name from the row; the statement's own literal values (status="sent",
    # lease_until=None) were worked out once, as construct_params gives them.
    return [p(v) if p else v for p, v in zip(prepared.binds, (
        row[n] if n in row else prepared.constants[n] for n in prepared.names))]


def _prepare(conn: Connection, stmt: ClauseElement, keys: tuple[str, ...]) -> _Compiled | None:
    key = (id(stmt), conn.dialect.name, keys)
    if key in _cache:
        found = _cache[key]
        if found is None or found.stmt is stmt:
            return found
    _cache[key] = found = _compile(conn, stmt, keys)
    return found


def _compile(conn: Connection, stmt: ClauseElement, keys: tuple[str, ...]) -> _Compiled | None:
    dialect = conn.dialect
    if isinstance(stmt, Insert):
        table = stmt.table
        # A column left out whose default SQLAlchemy fills in at execution: not for us.
        if any(c.default is not None and c.key not in keys for c in table.columns):  # type: ignore[attr-defined]
            return None
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    if any(compiled.binds[n].expanding for n in names if n in compiled.binds):
        return None  # IN (...) lists are rendered per call
    binds = tuple(compiled._bind_processors.get(n) for n in names)
    results: tuple[Processor, ...] | None = None
    if compiled._result_columns:
        results = tuple(entry.type._cached_result_processor(dialect, None) for entry in compiled._result_columns)
    # Binds a row does not supply are the statement's literal values: constant, unless a
    # bind computes its value (callable_), which is left to construct_params every time.
    fixed = [n for n in names if n not in keys]
    constants: dict[str, Any] | None = None
    if not any(getattr(compiled.binds.get(n), "callable", None) is not None for n in fixed):
        full = compiled.construct_params({}, _check=False)
        constants = {n: full[n] for n in fixed}
    return _Compiled(stmt, str(compiled), compiled, names, binds, results, constants)
