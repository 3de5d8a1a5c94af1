"""Exactly-once over at-least-once: Slack retries, restarts, crashes, rate limits, outages."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import (  # noqa: F401  (fixtures)
    Stand, env, fake, running, settings_from, settle, stand,
)
from qopi_bot.store import Store

QUESTION = "Is 80% enough to pass?"


async def test_retry_of_a_received_event_is_not_answered_twice_even_after_restart(
        env: dict[str, str], fake: FakeSlackAPI) -> None:
    settings = settings_from(env)
    envelope = ss.event_callback(ss.app_mention(QUESTION, channel="C1"))
    async with running(settings, fake) as stand:
        assert (await stand.send(envelope))[0] == 200
        await fake.wait_for_async("chat.postMessage", 1, timeout=10)
        status, _ = await stand.send(envelope, retry_num=1, retry_reason="http_timeout")
        assert status == 200
        await settle()
    assert len(fake.posts()) == 1
    async with running(settings, fake) as stand:  # a new process on the same database
        status, _ = await stand.send(envelope, retry_num=2, retry_reason="http_timeout")
        assert status == 200
        await settle()
    assert len(fake.posts()) == 1


async def test_retry_whose_first_delivery_never_arrived_is_answered(stand: Stand, fake: FakeSlackAPI) -> None:
    mention = ss.app_mention(QUESTION, channel="C2")
    status, _, _ = await stand.event(mention, retry_num=1, retry_reason="http_error")
    assert status == 200
    (call,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    assert call.params["thread_ts"] == mention["ts"]
    await settle()
    assert len(fake.posts()) == 1


async def test_events_stored_before_a_crash_are_processed_on_startup(env: dict[str, str], fake: FakeSlackAPI) -> None:
    """One event acked but never processed (pending), one held by a process that died (leased)."""
    settings = settings_from({**env, "QOPI_LEASE_SECONDS": "1"})
    store = Store.from_url(settings.db_url)
    await store.create_schema()
    bodies = []
    for channel in ("C3", "C4"):
        envelope = ss.event_callback(ss.app_mention(QUESTION, channel=channel))
        bodies.append(envelope)
        await store.inbox_put_many("slack", [(envelope["event_id"], ss.encode_json(envelope),
                                              {"kind": "event", "conversation": channel, "content_type": "application/json"})])
    dead = Store.from_url(settings.db_url)  # the crashed process: it leased C4's event and vanished
    assert len(await dead.inbox_claim("slack", 1, limit=1)) == 1
    await dead.close()
    await store.close()

    async with running(settings, fake):
        calls = await fake.wait_for_async("chat.postMessage", 2, timeout=10)
        assert sorted(c.params["channel"] for c in calls) == ["C3", "C4"]
        await settle()
    assert len(fake.posts()) == 2


async def test_rate_limit_honours_retry_after_and_posts_once(stand: Stand, fake: FakeSlackAPI) -> None:
    fake.fail_next("chat.postMessage", 429, retry_after=1)
    await stand.event(ss.app_mention(QUESTION, channel="C5"))
    calls = await fake.wait_for_async("chat.postMessage", 2, timeout=10)
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= 0.95  # waited as told, not the short test backoff
    await settle()
    assert len(fake.posts()) == 1


async def test_server_errors_are_retried_and_post_once(stand: Stand, fake: FakeSlackAPI) -> None:
    fake.fail_next("chat.postMessage", 500)
    fake.fail_next("chat.postMessage", 503)
    await stand.event(ss.dm_message(QUESTION, channel="D6", user="U6"))
    calls = await fake.wait_for_async("chat.postMessage", 3, timeout=10)
    assert [c.status for c in calls] == [500, 503, 200]
    await settle()
    assert len(fake.posts()) == 1


async def test_a_timed_out_post_that_slack_did_receive_is_not_posted_again(env: dict[str, str], fake: FakeSlackAPI) -> None:
    """The first attempt times out on our side but Slack posted it: the retry finds it by
    its metadata and records it as sent instead of posting a second copy."""
    fake.set_delay("chat.postMessage", 1.2)

    def replies(params: dict) -> dict:
        first = fake.calls_for("chat.postMessage")[0].params
        return {"ok": True, "messages": [{"ts": params["ts"], "text": "question"},
                                         {"ts": "1.000200", "text": first["text"], "metadata": first["metadata"]}]}
    fake.set_response("conversations.replies", replies)
    async with running(settings_from(env), fake, api_timeout=0.5) as stand:
        mention = ss.app_mention(QUESTION, channel="C7")
        await stand.event(mention)
        await fake.wait_for_async("conversations.replies", 1, timeout=10)
        await settle(1.5)
        items = await stand.service.store.outbox_list(channel="slack")
    assert len(fake.calls_for("chat.postMessage")) == 1  # one post reached Slack, no second attempt
    assert [i.status for i in items] == ["sent"]


async def test_event_that_cannot_be_stored_gets_503_so_slack_retries(tmp_path: Path, fake: FakeSlackAPI) -> None:
    from tests.slack_harness import slack_env

    env = slack_env(tmp_path, fake, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/missing/dir/db.sqlite3")
    async with running(settings_from(env), fake, ready=False) as stand:
        status, _, _ = await stand.event(ss.app_mention(QUESTION, channel="C8"))
        assert status == 503
        code, health = await stand.healthz()
        assert code == 200 and health == {"ok": True, "database": False, "database_state": "not_ready"}
    assert fake.posts() == []



async def test_retries_racing_the_first_delivery_are_answered_once(stand: Stand, fake: FakeSlackAPI) -> None:
    """Slack gave up waiting and retried while the first delivery was still arriving: the
    copies land in the same group commit, and only one of them is new."""
    import asyncio

    envelope = ss.event_callback(ss.app_mention(QUESTION, channel="C11"))
    sends = [stand.send(envelope)] + [stand.send(envelope, retry_num=n, retry_reason="http_timeout") for n in (1, 2, 3)]
    assert [status for status, _ in await asyncio.gather(*sends)] == [200] * 4
    await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    await settle()
    assert len(fake.posts()) == 1
    assert (await stand.service.store.inbox_counts()) == {"done": 1}
