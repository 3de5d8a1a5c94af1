"""Schema management with Alembic (migrations ship inside the package).

SQLite, the embedded default, is brought up to date automatically when a process starts.
A server database (PostgreSQL) is migrated on purpose with `qopi-bot db upgrade`; until then
every process refuses to start with a message that says exactly that."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import re
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qopi_bot.store import Store

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaNotReady(Exception):
    """The database has not been migrated; the message says which command fixes it."""


def _config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert head is not None
    return head


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:['\"]([^'\"]+)['\"]|None)", re.M)


@functools.cache
def quick_head() -> str | None:
    """The head revision read straight from the migration files (revision / down_revision),
    without Alembic: a process whose schema is current never loads Alembic at all. None
    when the files are not simple enough to tell (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _REVISION.finditer(path.read_text(encoding="utf-8")))
        if "revision" not in found or not found["revision"]:
            continue
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def _quick_current(store: Store) -> str | None:
    """alembic_version read with one query (None if the table is not there yet)."""
    from sqlalchemy import text

    try:
        conn = await store.engine.connect()
    except Exception:
        # aiosqlite stops a connection that failed to open on its own thread, which then
        # reports back to this loop: give it that moment, or a CLI that exits right away
        # closes the loop under it and Python prints a thread traceback.
        await asyncio.sleep(0.05)
        raise
    try:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    except Exception:  # no table: an empty database
        return None
    finally:
        await conn.close()


async def schema_is_current(store: Store) -> bool:
    head = quick_head()
    return head is not None and await _quick_current(store) == head


def _current(connection: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(store: Store) -> str | None:
    async with store.engine.connect() as conn:
        return await conn.run_sync(_current)


_LOCKS: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def _migration_lock(store: Store) -> AsyncIterator[None]:
    """One migration at a time: in this process (an SMTP handler and a poll loop may both start
    one), and for SQLite across processes too. Python's sqlite3 commits DDL statement by statement,
    so two concurrent migrations would leave a half-built schema behind."""
    lock = _LOCKS.setdefault(store, asyncio.Lock())
    async with lock:
        database = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:":
            yield
            return
        fd = os.open(f"{database}.migrate-lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


async def upgrade(store: Store) -> str:
    async with _migration_lock(store):
        return await _upgrade(store)


async def _upgrade(store: Store) -> str:
    from alembic import command

    before = await current_revision(store)
    if before == head_revision():  # every start checks; only a real change needs Alembic's machinery
        return f"schema is up to date (revision {before})"
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), "head"))
    after = await current_revision(store)
    if before == after:
        return f"schema is up to date (revision {after})"
    return f"schema migrated from {before or 'an empty database'} to {after}"


async def ensure_schema(store: Store) -> None:
    """Make sure the schema is current before a process does any work."""
    if await schema_is_current(store):  # the usual case, answered without Alembic
        return
    if store.engine.dialect.name == "sqlite":
        await upgrade(store)
        return
    current, head = await current_revision(store), head_revision()
    if current != head:
        state = "has no qopi-bot schema" if current is None else f"is at revision {current}, this version needs {head}"
        raise SchemaNotReady(f"the database at DATABASE_URL {state}. Run `qopi-bot db upgrade` first.")
