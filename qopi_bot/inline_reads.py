"""Point reads of a SQLite file on the event loop's own thread.

Why: every answered Slack message first reads two rows (has this message been answered
elsewhere? what is the conversation's state?). Sent to a connection's thread and back, that
read cost about 0.8 ms of waiting under load (the hop, then winning the GIL back from the busy
loop), more than half of what an item spent being processed, while SQLite itself answers a
primary-key lookup in tens of microseconds. Done right here, it costs those microseconds.

Safety: the connection is read-only (`PRAGMA query_only`), reads only committed data (WAL:
it never waits for the writer), and gives up at once rather than block the loop: if SQLite is
ever busy (recovering a WAL after a crash, say) the read raises `InlineReadUnavailable` and the
caller reads through its connection thread as before."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

T = TypeVar("T")

BUSY_MS = 20  # at most this long blocking the loop for a lock; then the caller's thread reads


class InlineReadUnavailable(Exception):
    """SQLite could not answer at once; read the other way."""


class InlineReader:
    def __init__(self, async_url: str) -> None:
        url = make_url(async_url).set(drivername="sqlite+pysqlite")
        self._engine = create_engine(url, poolclass=StaticPool, connect_args={"timeout": BUSY_MS / 1000,
                                                                                 "check_same_thread": False})

        @event.listens_for(self._engine, "connect")
        def _read_only(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            dbapi_conn.execute("PRAGMA query_only=ON")

    def run(self, fn: Callable[[Connection], T]) -> T:
        try:
            with self._engine.connect() as conn:
                return fn(conn)
        except (DBAPIError, sqlite3.Error) as exc:
            raise InlineReadUnavailable(str(exc)) from exc

    def close(self) -> None:
        self._engine.dispose()
