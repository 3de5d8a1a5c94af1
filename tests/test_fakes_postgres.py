"""The throwaway PostgreSQL cluster: start, connect, stop, start again, data persists."""

from __future__ import annotations

import os

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401
from tests.fakes.postgres import ThrowawayPostgres

pytestmark = pytest.mark.postgres


async def test_data_survives_stop_and_start():
    pg = ThrowawayPostgres()
    try:
        pg.start()
        port = pg.port
        assert pg.url() == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/qopi_test"
        conn = await asyncpg.connect(pg.dsn(), timeout=10)
        await conn.execute("CREATE TABLE cases (id text PRIMARY KEY, status text NOT NULL)")
        await conn.execute("INSERT INTO cases VALUES ('QCP-0001', 'open')")
        await conn.close()

        pg.stop()
        assert not pg.running
        with pytest.raises((OSError, asyncpg.PostgresError)):
            await asyncpg.connect(pg.dsn(), timeout=3)

        pg.start()
        assert pg.port == port and pg.running
        conn = await asyncpg.connect(pg.dsn(), timeout=10)
        assert await conn.fetchval("SELECT status FROM cases WHERE id = 'QCP-0001'") == "open"
        await conn.close()

        pg.stop(mode="immediate")  # a crash; recovery on the next start
        pg.restart()
        conn = await asyncpg.connect(pg.dsn(), timeout=10)
        assert await conn.fetchval("SELECT count(*) FROM cases") == 1
        await conn.close()
        base = pg.base
    finally:
        pg.cleanup()
    assert not os.path.exists(base)


async def test_fixture_and_sqlalchemy_url(postgres_server, postgres_url):  # noqa: F811
    assert postgres_server.running
    assert postgres_url.startswith("postgresql+asyncpg://postgres@127.0.0.1:")
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as c:
            await c.execute(text("CREATE TABLE t (x int)"))
            await c.execute(text("INSERT INTO t VALUES (1), (2)"))
        async with engine.connect() as c:
            assert (await c.execute(text("SELECT sum(x) FROM t"))).scalar() == 3
            assert (await c.execute(text("SELECT current_setting('fsync')"))).scalar() == "off"
            assert (await c.execute(text("SELECT current_setting('listen_addresses')"))).scalar() == "127.0.0.1"
    finally:
        await engine.dispose()


def test_create_database_and_psql(postgres_server):  # noqa: F811
    url = postgres_server.create_database("qopi_extra")
    assert url.endswith("/qopi_extra")
    assert postgres_server.psql("SELECT 40 + 2", database="qopi_extra").strip() == "42"
    postgres_server.drop_database("qopi_extra")
