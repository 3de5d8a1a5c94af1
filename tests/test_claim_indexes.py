"""A claim reads only the open rows, however many are done.

The inbox and the outbox only grow (done rows stay for the record); a claim that read every
row of its source would get slower every day. The claim statements the store really sends are
checked against SQLite's and PostgreSQL's own query plans: they must search the partial indexes of open rows
(ix_inbox_open, ix_outbox_open), and still claim exactly the open rows."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from qopi_bot.migrate import ensure_schema, upgrade
from qopi_bot.store import Store
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)

DONE_ROWS = 300


def _fill_done_rows(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executemany("insert into inbox(source, external_id, payload, meta, status, attempts, created_at) "
                       "values ('slack', ?, x'7b7d', '{}', 'done', 1, '2026-03-01 08:00:00.000000')",
                       [(f"done-{i}",) for i in range(DONE_ROWS)])
        db.executemany("insert into outbox(channel, kind, payload, dedupe_key, status, attempts, next_attempt_at, created_at) "
                       "values ('slack', 'answer', '{}', ?, 'sent', 1, '2026-03-01 08:00:00.000000', '2026-03-01 08:00:00.000000')",
                       [(f"sent-{i}",) for i in range(DONE_ROWS)])


Sent = list[tuple[str, Any]]


async def _claim_open_rows(store: Store) -> tuple[list[str], list[str], Sent]:
    """Store two open inbox rows and one open outbox row, claim them, and capture every
    statement the claims sent: (claimed inbox ids, claimed outbox keys, statements)."""
    sent: Sent = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        sent.append((statement, parameters))

    await store.inbox_put_many("slack", [("open-1", b"{}", {}), ("open-2", b"{}", {})])
    await store.outbox_put("slack", "answer", {"text": "hi"}, "open-answer", "C1")
    # Every engine: on SQLite the store runs its transactions on synchronous engines of its
    # own (qopi_bot.dbexec), each lent the connection aiosqlite holds.
    event.listen(Engine, "before_cursor_execute", capture)
    try:
        inbox_items = await store.inbox_claim("slack", 60, 16)
        outbox_items = await store.outbox_claim("slack", 60, 16)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    return [i.external_id for i in inbox_items], [o.dedupe_key for o in outbox_items], sent


def _claim_select(sent: Sent, table: str) -> tuple[str, Any]:
    """The claim's SELECT of `table` among the captured statements, with its parameters."""
    return next((s, p) for s, p in sent if s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s and "LIMIT" in s)


def test_claims_search_only_the_open_rows(tmp_path: Path) -> None:
    path = tmp_path / "claims.sqlite3"

    async def scenario() -> tuple[list[str], list[str], Sent]:
        store = Store.from_url(f"sqlite+aiosqlite:///{path}")
        try:
            await ensure_schema(store)
            _fill_done_rows(path)
            return await _claim_open_rows(store)
        finally:
            await store.close()

    claimed_inbox, claimed_outbox, sent = asyncio.run(scenario())
    assert claimed_inbox == ["open-1", "open-2"]
    assert claimed_outbox == ["open-answer"]

    def plan_of(table: str) -> str:
        statement, parameters = _claim_select(sent, table)
        with sqlite3.connect(path) as db:
            return " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))

    assert "USING INDEX ix_inbox_open" in plan_of("inbox")
    assert "USING INDEX ix_outbox_open" in plan_of("outbox")


# ---------------------------------------------------------------------------- PostgreSQL
PG_DONE_ROWS = 20_000  # enough that PostgreSQL's planner weighs a scan of them against the index


async def _pg_fill_done_rows(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into inbox(source, external_id, payload, meta, status, attempts, created_at) "
            "select 'slack', 'done-' || n, '\\x7b7d'::bytea, '{}', 'done', 1, now() from generate_series(1, $1) n",
            PG_DONE_ROWS)
        await conn.execute(
            "insert into outbox(channel, kind, payload, dedupe_key, status, attempts, next_attempt_at, created_at) "
            "select 'slack', 'answer', '{}', 'sent-' || n, 'sent', 1, now(), now() from generate_series(1, $1) n",
            PG_DONE_ROWS)
        await conn.execute("analyze inbox; analyze outbox")
    finally:
        await conn.close()


async def _pg_plan(dsn: str, statement: str, parameters: Any) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f"EXPLAIN {statement}", *(parameters or ()))
    finally:
        await conn.close()
    return "\n".join(str(r[0]) for r in rows)


@pytest.mark.postgres
def test_claims_search_only_the_open_rows_on_postgres(postgres_url: str) -> None:  # noqa: F811
    """The same on PostgreSQL, with its own planner and many done rows (on a small table any
    planner reads the whole table, so the check would prove nothing there)."""
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def scenario() -> tuple[list[str], list[str], str, str]:
        store = Store.from_url(postgres_url)
        try:
            await upgrade(store)
            await _pg_fill_done_rows(dsn)
            claimed_inbox, claimed_outbox, sent = await _claim_open_rows(store)
        finally:
            await store.close()
        return (claimed_inbox, claimed_outbox, await _pg_plan(dsn, *_claim_select(sent, "inbox")),
                await _pg_plan(dsn, *_claim_select(sent, "outbox")))

    claimed_inbox, claimed_outbox, inbox_plan, outbox_plan = asyncio.run(scenario())
    assert claimed_inbox == ["open-1", "open-2"]
    assert claimed_outbox == ["open-answer"]
    assert "ix_inbox_open" in inbox_plan, inbox_plan
    assert "ix_outbox_open" in outbox_plan, outbox_plan
