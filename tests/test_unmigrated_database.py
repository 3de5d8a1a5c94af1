"""One policy for a server database that has not been migrated yet, in both channels: the
process starts anyway, reports `not_ready` on /healthz, answers "try later" (Slack: 503, SMTP:
451, so the sender retries and nothing is lost), and serves normally as soon as
`qopi-bot db upgrade` has run -- no restart needed. Real PostgreSQL, real HTTP and SMTP."""

from __future__ import annotations

import asyncio
import smtplib
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from qopi_bot.migrate import upgrade
from qopi_bot.store import Store
from tests.email_support import (
    WorkerProcess, env_for, question_mail, running_worker, send, settings_for, settle as settle_email,
)
from tests.fakes import slack_signing as ss
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.smtp_sink import SmtpSink, find_free_port, smtp_sink  # noqa: F401  (fixture)
from tests.slack_harness import fake, running, settings_from, slack_env, wait_ready  # noqa: F401  (fixtures)
from tests.waiting import wait_until

pytestmark = pytest.mark.postgres


async def _get(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def _migrate(url: str) -> None:
    store = Store.from_url(url)
    try:
        await upgrade(store)
    finally:
        await store.close()


async def test_email_worker_waits_for_the_migration(tmp_path: Path, smtp_sink: SmtpSink,
                                                    postgres_url: str) -> None:  # noqa: F811
    health = find_free_port()
    settings = settings_for(tmp_path / "unused.sqlite3", smtp_sink, DATABASE_URL=postgres_url,
                            QOPI_WORKER_HEALTH=f"127.0.0.1:{health}")
    raw = question_mail("Is our Spring 2025 score still valid?").as_bytes()
    async with running_worker(settings) as worker:
        state = await _get(f"http://127.0.0.1:{health}/healthz")
        assert state["database_state"] == "not_ready" and state["smtp"] is True
        with pytest.raises(smtplib.SMTPResponseException) as refused:
            await send(worker, raw, "dana.whitfield@riverbend-onc.example.org")
        assert refused.value.smtp_code == 451  # temporary: the sending MTA keeps it and retries
        assert smtp_sink.messages == []

        await _migrate(postgres_url)
        deadline = time.monotonic() + 30
        while (await _get(f"http://127.0.0.1:{health}/healthz"))["database_state"] != "ok":
            assert time.monotonic() < deadline, "the worker never noticed the migration"
            await asyncio.sleep(0.1)
        assert await send(worker, raw, "dana.whitfield@riverbend-onc.example.org") == 250  # the MTA's retry
        await settle_email(worker.store, timeout=20)
        assert len(smtp_sink.messages) == 1


def test_worker_process_keeps_running_on_an_unmigrated_database(tmp_path: Path, smtp_sink: SmtpSink,
                                                                 postgres_url: str) -> None:  # noqa: F811
    """`qopi-bot worker` used to exit at once; now it listens and says why it answers 451."""
    worker = WorkerProcess(env_for(tmp_path / "unused.sqlite3", smtp_sink, DATABASE_URL=postgres_url),
                           tmp_path / "worker.log")
    try:
        worker.wait_listening()
        wait_until(lambda: "qopi-bot db upgrade" in worker.stderr_path.read_text(), 20, "the hint to be logged")
        assert worker.proc.poll() is None
    finally:
        assert worker.terminate() == 0


async def test_slack_waits_for_the_migration(tmp_path: Path, fake: FakeSlackAPI, postgres_url: str) -> None:  # noqa: F811
    settings = settings_from(slack_env(tmp_path, fake, DATABASE_URL=postgres_url))
    async with running(settings, fake, ready=False) as stand:
        status, _, _ = await stand.event(ss.app_mention("Is 80% enough to pass?", channel="C1"))
        assert status == 503  # not stored, so not acked: Slack sends it again
        assert (await stand.healthz())[1]["database_state"] == "not_ready"

        await _migrate(postgres_url)
        await wait_ready(stand.service, timeout=30)
        assert (await stand.healthz())[1]["database_state"] == "ok"
        status, _, _ = await stand.event(ss.app_mention("Is 80% enough to pass?", channel="C1"))
        assert status == 200
        await fake.wait_for_async("chat.postMessage", 1, timeout=15)
        assert [p["channel"] for p in fake.posts()] == ["C1"]
