"""30 practices at once: every request acked well inside Slack's 3 seconds, each answered once."""

from __future__ import annotations

import asyncio
import collections
import time

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import Stand, env, fake, settle, stand  # noqa: F401  (fixtures)

QUESTIONS = [
    "Our OQS was 81% in Fall 2025 on the certification pathway. Are we eligible?",
    "Is 74.99% enough to pass?",
    "How long is a Spring 2025 score valid?",
    "We have three sites, do we apply separately?",
    "How many certification standards are there?",
]


async def test_thirty_concurrent_mentions_acked_fast_and_answered_exactly_once(stand: Stand, fake: FakeSlackAPI) -> None:
    mentions = [ss.app_mention(QUESTIONS[i % len(QUESTIONS)], user=f"U{i}", channel=f"C{i % 6}") for i in range(30)]

    async def send(event: dict) -> tuple[int, float]:
        started = time.monotonic()
        status, _, _ = await stand.event(event)
        return status, time.monotonic() - started

    results = await asyncio.gather(*(send(m) for m in mentions))
    assert [status for status, _ in results] == [200] * 30
    slowest = max(latency for _, latency in results)
    assert slowest < 3.0, f"slowest ack took {slowest:.2f}s"  # Slack's limit; typically a few ms

    await fake.wait_for_async("chat.postMessage", 30, timeout=30)
    await settle(0.5)
    answered = collections.Counter((p["channel"], p["thread_ts"]) for p in fake.posts())
    assert answered == collections.Counter((m["channel"], m["ts"]) for m in mentions)
