"""The Slack web process on PostgreSQL (several processes share it): group-committed inbox
writes deduplicate there too, and an unmigrated database is refused with 503, not 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qopi_bot.migrate import upgrade
from qopi_bot.store import Store
from tests.fakes import slack_signing as ss
from tests.fakes.pg_fixture import postgres_server, postgres_url  # noqa: F401  (fixtures)
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import fake, running, settings_from, settle, slack_env  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres


async def test_slack_on_postgres_answers_once(tmp_path: Path, fake: FakeSlackAPI, postgres_url: str) -> None:  # noqa: F811
    store = Store.from_url(postgres_url)
    await upgrade(store)
    await store.close()
    settings = settings_from(slack_env(tmp_path, fake, DATABASE_URL=postgres_url))
    async with running(settings, fake) as stand:
        envelope = ss.event_callback(ss.app_mention("Is 80% enough to pass?", channel="C1"))
        sends = [stand.send(envelope)] + [stand.send(envelope, retry_num=n) for n in (1, 2)]
        assert [s for s, _ in await asyncio.gather(*sends)] == [200, 200, 200]
        await stand.event(ss.dm_message("We only want to certify our downtown site", user="U2", channel="D2"))
        await fake.wait_for_async("chat.postMessage", 3, timeout=15)  # two answers and the case
        await settle()
        assert sorted(p["channel"] for p in fake.posts()) == ["C1", "CSTAFF", "D2"]
        case = await stand.service.store.get_case(1)
        assert case is not None and case.staff_slack_channel == "CSTAFF"


async def test_unmigrated_postgres_gets_503(tmp_path: Path, fake: FakeSlackAPI, postgres_url: str) -> None:  # noqa: F811
    settings = settings_from(slack_env(tmp_path, fake, DATABASE_URL=postgres_url))
    async with running(settings, fake, ready=False) as stand:
        status, _, _ = await stand.event(ss.app_mention("hello", channel="C1"))
        assert status == 503
        assert (await stand.healthz())[1]["database"] is False
