"""Short reads run on the event loop's own thread (qopi_bot.inline_reads), and a database
that cannot answer at once never holds the loop: the read goes the other way and still
gets the right row, while acks and other work keep running."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from qopi_bot.migrate import ensure_schema
from qopi_bot.models import ConversationState, Facts
from qopi_bot.store import Store


def test_reads_are_inline_and_a_locked_file_does_not_hold_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "inline.sqlite3"
    key = "slack:C1:1700000000.000100"

    async def scenario() -> tuple[ConversationState | None, ConversationState | None, int, float]:
        store = Store.from_url(f"sqlite+aiosqlite:///{path}", sqlite_connections=1)
        try:
            await ensure_schema(store)
            assert store.inline is not None  # a SQLite file in a long-running process reads inline
            await store.save_turn(key, "slack", ConversationState(turns=1, facts=Facts(score=81)), [])
            first = await store.load_state(key)
        finally:
            await store.close()

        # Another process holds the file exclusively (WAL readers are then shut out too).
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("COMMIT")

        def release() -> None:  # scheduled on the loop: it only runs if the loop is free
            holder.execute("PRAGMA locking_mode=NORMAL")
            holder.execute("SELECT count(*) FROM inbox").fetchall()
            holder.close()

        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        store = Store.from_url(f"sqlite+aiosqlite:///{path}", sqlite_connections=1)
        try:
            ticker = asyncio.create_task(tick())
            asyncio.get_running_loop().call_later(0.4, release)
            started = time.monotonic()
            second = await store.load_state(key)
            waited = time.monotonic() - started
            ticker.cancel()
            return first, second, ticks, waited
        finally:
            await store.close()

    first, second, ticks, waited = asyncio.run(scenario())
    assert first is not None and first.facts.score == 81
    assert second is not None and second.facts.score == 81  # read once the lock was gone
    assert waited >= 0.35  # it did wait for the lock (on the reading thread) ...
    assert ticks >= 10  # ... while the loop went on with other work
