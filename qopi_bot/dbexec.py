"""Run several statements for the price of one hop.

With aiosqlite every statement crosses to the connection's thread and back several times
(cursor, execute, fetch, close; commit and rollback too), about 0.3 ms each on a busy loop:
an item's reads and writes cost tens of hops, and a process working through its inbox one
item at a time waits on them rather than computing. `SyncRunner.run(fn)` instead sends one
function to the SQLite connection's own thread, where it runs plain synchronous SQLAlchemy
Core (the same statements, types and dialect) on that very connection, in one transaction.

On PostgreSQL (asyncpg, no thread) it is simply `run_sync` inside a transaction: the same
function, one database round trip per statement as before."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

T = TypeVar("T")


class _Borrowed:
    """The sqlite3 connection aiosqlite owns, lent to a synchronous engine for one call:
    everything passes through except close() (the connection stays aiosqlite's)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class SyncRunner:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # One synchronous engine per aiosqlite connection, holding just that connection.
        self._engines: dict[int, tuple[Any, Engine]] = {}
        self._lock = threading.Lock()
        self._known: Any = None  # the aiosqlite connection last checked out (pool of one per engine role)

    def _engine_for(self, conn: Any) -> Engine:
        key = id(conn)
        with self._lock:
            found = self._engines.get(key)
            if found is None or found[0] is not conn:  # (an id can be reused once a connection is gone)
                borrowed = _Borrowed(conn)
                found = (conn, create_engine("sqlite://", creator=lambda: borrowed, poolclass=StaticPool))
                self._engines[key] = found
            return found[1]

    async def run(self, fn: Callable[[Connection], T], *, write: bool = True) -> T:
        """`fn(connection)` in one transaction (committed if `write` and it returns normally)."""
        if not self.sqlite:
            async with (self.engine.begin() if write else self.engine.connect()) as conn:
                return await conn.run_sync(fn)
        idle = self._idle_connection()
        if idle is not None:
            # Nobody has a connection checked out, so none is inside a transaction: this job
            # (a whole transaction) goes straight onto the connection's thread queue, ahead of
            # anything a later check-out sends there. Skips the async pool's check-out and
            # check-in, about half of what a hop costs.
            return await idle._execute(self._job(idle, fn, write))
        async with self.engine.connect() as aconn:
            raw = await aconn.get_raw_connection()
            aio = raw.driver_connection
            assert aio is not None
            self._known = aio
            return await aio._execute(self._job(aio, fn, write))  # type: ignore[no-any-return]

    def _idle_connection(self) -> Any:
        aio = self._known
        checked_out = getattr(self.engine.sync_engine.pool, "checkedout", None)  # queue pools only
        if aio is None or checked_out is None or checked_out() != 0:
            return None
        if getattr(aio, "_connection", None) is None or not getattr(aio, "_running", False):
            self._known = None  # closed or replaced by the pool (invalidated): check out again
            return None
        return aio

    def _job(self, aio: Any, fn: Callable[[Connection], T], write: bool) -> Callable[[], T]:
        sync = self._engine_for(aio._conn)

        def job() -> T:
            with (sync.begin() if write else sync.connect()) as conn:
                return fn(conn)

        return job
