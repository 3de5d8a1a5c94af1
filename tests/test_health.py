"""Health that tells the truth (issue 14): /healthz tells "database unreachable" from
"busy" (every pooled connection in use), and the worker answers GET /healthz too, on
QOPI_WORKER_HEALTH. Real PostgreSQL, real HTTP."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qopi_bot.migrate import upgrade
from qopi_bot.store import Store
from tests.email_support import running_worker, settings_for
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.fakes.postgres import ThrowawayPostgres
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.smtp_sink import SmtpSink, find_free_port, smtp_sink  # noqa: F401  (fixture)
from tests.slack_harness import fake, running, settings_from, slack_env  # noqa: F401  (fixtures)


async def _get(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def test_worker_answers_health_checks(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    port = find_free_port()
    settings = settings_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_WORKER_HEALTH=f"127.0.0.1:{port}")
    async with running_worker(settings):
        assert await _get(f"http://127.0.0.1:{port}/healthz") == (
            200, {"ok": True, "database": True, "database_state": "ok", "smtp": True})
    with pytest.raises(aiohttp.ClientConnectionError):  # gone with the worker
        await _get(f"http://127.0.0.1:{port}/healthz")


@pytest.mark.postgres
async def test_busy_is_not_unreachable(tmp_path: Path, fake: FakeSlackAPI, smtp_sink: SmtpSink,
                                       postgres_server: ThrowawayPostgres, postgres_url: str) -> None:  # noqa: F811
    store = Store.from_url(postgres_url)
    await upgrade(store)
    await store.close()
    port = find_free_port()
    worker_settings = settings_for(tmp_path / "unused.sqlite3", smtp_sink, DATABASE_URL=postgres_url,
                                   QOPI_WORKER_HEALTH=f"127.0.0.1:{port}")
    async with running(settings_from(slack_env(tmp_path, fake, DATABASE_URL=postgres_url)), fake) as stand, \
            running_worker(worker_settings):
        assert (await stand.healthz())[1] == {"ok": True, "database": True, "database_state": "ok"}

        # Every pooled connection in use (a burst of work): busy, not down.
        async with contextlib.AsyncExitStack() as held:
            for _ in range(10):  # pool of 5 plus 5 overflow
                await held.enter_async_context(stand.service.store.engine.connect())
            assert (await stand.healthz())[1] == {"ok": True, "database": True, "database_state": "busy"}

        postgres_server.stop()
        try:
            assert (await stand.healthz())[1] == {"ok": True, "database": False, "database_state": "unreachable"}
            status, health = await _get(f"http://127.0.0.1:{port}/healthz")
            assert status == 200 and health["database"] is False and health["database_state"] == "unreachable"
        finally:
            postgres_server.start()
        assert (await stand.healthz())[1]["database_state"] == "ok"
