"""pytest fixtures for a throwaway PostgreSQL server.

In a conftest.py::

    from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401

* ``postgres_server`` (session): a started ``ThrowawayPostgres``. If the binaries
  are missing or the server cannot start, the test FAILS (never skips) with the
  reason and the server log. A test that stops it should start it again, or use
  its own ``ThrowawayPostgres`` instead.
* ``postgres_url`` (function): a fresh, empty database on that server, as a
  ``postgresql+asyncpg://`` URL (dropped afterwards).
"""

from __future__ import annotations

import itertools
import os

import pytest

from .postgres import PostgresError, PostgresUnavailable, ThrowawayPostgres

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server():
    pg = ThrowawayPostgres()
    try:
        pg.start()
    except PostgresUnavailable as e:
        pg.cleanup()
        pytest.fail(f"PostgreSQL is required for this test: {e}", pytrace=False)
    except PostgresError as e:
        log = pg.server_log()
        pg.cleanup()
        pytest.fail(f"could not start the throwaway PostgreSQL server: {e}\n{log}", pytrace=False)
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture
def postgres_url(postgres_server: ThrowawayPostgres) -> str:
    if not postgres_server.running:  # an earlier test may have stopped it
        postgres_server.start()
    name = f"qopi_t{os.getpid()}_{next(_db_counter)}"
    url = postgres_server.create_database(name)
    yield url
    try:
        if postgres_server.running:
            postgres_server.drop_database(name)
    except PostgresError:
        pass
