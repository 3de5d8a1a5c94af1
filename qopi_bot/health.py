"""What /healthz says about the database, told truthfully (web and worker alike).

A probe through the process's own pool cannot tell "the server is gone" from "every
connection is in use": both time out. So the probe opens a connection of its own, outside
the pool (PostgreSQL), and the pool's own count says whether the process is busy:

  ok           reachable, connections free
  busy         reachable, every pooled connection in use (work queues, nothing is lost)
  unreachable  the server does not answer within the timeout
  not_ready    this process has not finished connecting / checking the schema yet

`database` stays a boolean for monitors that already read it: true for ok and busy."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

DatabaseState = Literal["ok", "busy", "unreachable", "not_ready"]


class Health(BaseModel):
    ok: bool = True  # the process serves
    database: bool
    database_state: DatabaseState


def _pool_full(engine: AsyncEngine) -> bool:
    pool: Any = engine.pool
    try:
        size = pool.size() + max(0, getattr(pool, "_max_overflow", 0))
        return size > 0 and pool.checkedout() >= size
    except (AttributeError, TypeError, NotImplementedError):
        return False  # a pool that cannot count (NullPool, StaticPool): never "busy"


class HealthProbe:
    def __init__(self, engine: AsyncEngine, timeout: float = 1.0) -> None:
        self.engine = engine
        self.timeout = timeout
        self._probe: AsyncEngine | None = None

    async def check(self, ready: bool) -> Health:
        if not ready:
            return Health(database=False, database_state="not_ready")
        if self.engine.dialect.name != "postgresql":
            # A SQLite file is there once the schema was checked; it cannot go away on its own.
            # Each process uses one connection by design (qopi_bot.store), so "in use" is its
            # normal state, not a sign of overload: statements queue for it in order.
            return Health(database=True, database_state="ok")
        busy = _pool_full(self.engine)
        if self._probe is None:
            # Its own connection each time (NullPool): a full pool must not look like an outage.
            self._probe = create_async_engine(self.engine.url, poolclass=NullPool)
        try:
            async with asyncio.timeout(self.timeout):
                async with self._probe.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:
            return Health(database=False, database_state="unreachable")
        return Health(database=True, database_state="busy" if busy else "ok")

    async def close(self) -> None:
        if self._probe is not None:
            await self._probe.dispose()
            self._probe = None
