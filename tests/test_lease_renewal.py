"""A send slower than its lease goes out once (issue 14).

Two processes share one database; the Slack Web API stand-in and the SMTP relay answer
only after longer than QOPI_LEASE_SECONDS. The process sending keeps its lease alive, so
the other one never takes the item over and sends it a second time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.email_support import question_mail, running_worker, send, settings_for
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)
from tests.slack_harness import env, fake, running, settings_from  # noqa: F401  (fixtures)
from tests.fakes import slack_signing as ss

LEASE = 1  # seconds; every send below takes 2.5


async def test_slow_slack_post_is_not_taken_over(env: dict[str, str], fake: FakeSlackAPI) -> None:
    settings = settings_from({**env, "QOPI_LEASE_SECONDS": str(LEASE)})
    fake.set_delay("chat.postMessage", 2.5 * LEASE)
    async with running(settings, fake, api_timeout=10) as one, running(settings, fake, api_timeout=10):
        status, _, _ = await one.event(ss.app_mention("Is 80% enough to pass?", channel="C7"))
        assert status == 200
        await fake.wait_for_async("chat.postMessage", 1, timeout=20)
        # Long enough for a second process to have taken over an expired lease and posted.
        await asyncio.sleep(2.5 * LEASE)
        assert len(fake.calls_for("chat.postMessage")) == 1
        [item] = [i for i in await one.service.store.outbox_list(channel="slack") if i.kind == "answer"]
        assert item.status == "sent" and item.attempts == 1


async def test_slow_relay_mail_is_not_taken_over(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    settings = settings_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_LEASE_SECONDS=str(LEASE))
    smtp_sink.set_data_delay(2.5 * LEASE)
    async with running_worker(settings) as one, running_worker(settings):
        await send(one, question_mail("Is a score of 81% in Fall 2025 enough?").as_bytes(),
                   "dana.whitfield@riverbend-onc.example.org")
        await smtp_sink.wait_for_async(1, timeout=20)
        await asyncio.sleep(2.5 * LEASE)
        assert smtp_sink.data_started == 1 and len(smtp_sink.messages) == 1
        [item] = await one.store.outbox_list(channel="email")
        assert item.status == "sent" and item.attempts == 1
