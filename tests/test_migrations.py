"""Alembic: SQLite is migrated automatically; PostgreSQL must be migrated on purpose, and
every process refuses an unmigrated server database with a clear message."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from qopi_bot.migrate import head_revision

from tests.conftest import Cli


def test_sqlite_is_created_at_head_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    cli = Cli(f"sqlite+aiosqlite:///{path}")
    assert cli.run("cases", "list").returncode == 0
    with sqlite3.connect(path) as db:
        assert db.execute("select version_num from alembic_version").fetchone()[0] == head_revision()
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert {"conversations", "cases", "inbox", "outbox", "processed_events", "email_threads"} <= tables


@pytest.mark.postgres
def test_postgres_refuses_until_upgraded(postgres_url: str) -> None:
    cli = Cli(postgres_url)
    refused = cli.run("cases", "list")
    assert refused.returncode == 2
    assert "qopi-bot db upgrade" in refused.stderr and "Traceback" not in refused.stderr
    asked = cli.run("ask", "--conversation", "pg-1", "Are we eligible?")
    assert asked.returncode == 2 and "qopi-bot db upgrade" in asked.stderr

    first = cli.run("db", "upgrade")
    assert first.returncode == 0 and f"to {head_revision()}" in first.stdout
    again = cli.run("db", "upgrade")
    assert again.returncode == 0 and "up to date" in again.stdout

    answer = json.loads(cli.run("ask", "--json", "--conversation", "pg-1", "Are we eligible?").stdout)
    assert answer["missing"] == ["score"]
    follow = json.loads(cli.run("ask", "--json", "--conversation", "pg-1", "81% fall 2025 on the pathway").stdout)
    assert follow["verdict"] == "eligible"
    case = json.loads(cli.run("ask", "--json", "Can I talk to a person please?").stdout)["case_id"]
    assert [c["id"] for c in json.loads(cli.run("cases", "list", "--json").stdout)] == [case]


@pytest.mark.postgres
def test_unreachable_postgres_is_a_clear_error() -> None:
    cli = Cli("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    done = cli.run("cases", "list")
    assert done.returncode == 1 and "cannot reach the database" in done.stderr and "Traceback" not in done.stderr


def test_concurrent_first_starts_build_one_schema(tmp_path: Path) -> None:
    """An SMTP handler and a poll loop (or two processes) starting on a fresh SQLite file at
    once must not leave a half-built schema behind (sqlite3 commits DDL statement by statement)."""
    import asyncio
    import subprocess
    import sys

    from qopi_bot.migrate import current_revision, ensure_schema
    from qopi_bot.store import Store

    async def in_process(url: str) -> str | None:
        store = Store.from_url(url)
        try:
            await asyncio.gather(*[ensure_schema(store) for _ in range(8)])
            return await current_revision(store)
        finally:
            await store.close()

    assert asyncio.run(in_process(f"sqlite+aiosqlite:///{tmp_path / 'one.sqlite3'}")) == head_revision()

    url = f"sqlite+aiosqlite:///{tmp_path / 'many.sqlite3'}"
    code = ("import asyncio\nfrom qopi_bot.store import Store\nfrom qopi_bot.migrate import ensure_schema\n"
            f"async def main():\n    s = Store.from_url({url!r})\n    await ensure_schema(s)\n    await s.close()\n"
            "asyncio.run(main())\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0], [p.stderr.read() for p in procs if p.stderr]
    with sqlite3.connect(tmp_path / "many.sqlite3") as db:
        assert db.execute("select version_num from alembic_version").fetchone()[0] == head_revision()


def test_migrations_build_exactly_the_declared_schema(tmp_path: Path) -> None:
    """A table or column changed in qopi_bot/schema.py without a migration fails here."""
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from qopi_bot.migrate import ensure_schema
    from qopi_bot.schema import metadata
    from qopi_bot.store import Store

    async def diff() -> list[object]:
        store = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'cmp.sqlite3'}")
        try:
            await ensure_schema(store)
            async with store.engine.connect() as conn:
                return await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
        finally:
            await store.close()

    assert asyncio.run(diff()) == []
