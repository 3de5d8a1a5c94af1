"""The SQLite store's transactions stay apart when a job skips the pool (qopi_bot.dbexec):
a job sent straight to the idle connection's thread must never run inside a transaction
that another caller has open on that connection, or its commit would commit their writes
too -- writes that caller may still roll back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import insert, select

from qopi_bot.store import Store, processed_events, utcnow


async def test_a_rolled_back_transaction_is_not_committed_by_a_concurrent_job(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}", sqlite_connections=1)
    await store.create_schema()
    try:
        # The store has written through its runner once: later jobs may skip the pool.
        assert (await store.inbox_put_many("slack", [("e0", b"{}", {})]))[0] is not None
        job: asyncio.Task[bool] | None = None

        class Abandon(Exception):
            pass

        try:
            async with store.engine.begin() as conn:
                await conn.execute(insert(processed_events).values(event_id="rolled-back", source="test",
                                                                   created_at=utcnow()))
                # Another part of the process writes meanwhile (a Slack claim, an intake commit).
                job = asyncio.create_task(store.inbox_put_many("slack", [("e1", b"{}", {})]))
                await asyncio.sleep(0.05)
                raise Abandon
        except Abandon:
            pass
        assert job is not None
        assert (await job)[0] is not None  # the concurrent write was committed, after the rollback
        async with store.engine.connect() as conn:
            kept = {r[0] for r in (await conn.execute(select(processed_events.c.event_id))).all()}
        assert "rolled-back" not in kept
        assert [i["external_id"] for i in await store.inbox_list()] == ["e0", "e1"]
    finally:
        await store.close()
