"""Catch up after an outage (issue 14): a question asked while the web process was down,
longer than Slack retries, is answered once after the restart -- read from the Slack
stand-in's history (conversations.history / .replies), never from a 10-minute sleep."""

from __future__ import annotations

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import env, fake, posts_to, running, settings_from, settle  # noqa: F401  (fixtures)


async def test_question_asked_during_an_outage_is_answered_once_after_restart(env: dict[str, str],
                                                                              fake: FakeSlackAPI) -> None:
    settings = settings_from(env)
    # Before the outage: a DM question arrives as an event and is answered.
    async with running(settings, fake) as stand:
        before = ss.dm_message("Is 80% enough to pass?", user="U1", channel="D1")
        fake.add_message("D1", "U1", before["text"], before["ts"])  # Slack's history has it too
        await stand.event(before)
        await fake.wait_for_async("chat.postMessage", 1, timeout=10)

    # The web process is down; Slack gives up on these events. Only its history has them.
    dm = fake.add_message("D1", "U1", "Until when is a Fall 2025 score valid?", ss.next_ts())
    mention = fake.add_message("C5", "U2", "<@UBOT> What score do we need to be eligible?", ss.next_ts())
    chatter = fake.add_message("C5", "U3", "lunch at noon?", ss.next_ts())  # no mention: not for the bot
    # One of them was delivered after all, by Slack's last retry, right as we come back.
    late = ss.dm_message("Is our Spring 2025 score still valid?", user="U4", channel="D4")
    fake.add_message("D4", "U4", late["text"], late["ts"])

    async with running(settings, fake) as stand:
        await stand.event(late, retry_num=3)
        await fake.wait_for_async("chat.postMessage", 4, timeout=20)
        await settle(1.0)  # a second answer to anything would show up here
        assert len(posts_to(fake, "D1")) == 2
        assert [p.get("thread_ts") for p in posts_to(fake, "C5")] == [mention["ts"]]
        assert len(posts_to(fake, "D4")) == 1
        assert all(p.get("thread_ts") != chatter["ts"] for p in fake.posts())
        assert "valid" in posts_to(fake, "D1")[-1]["text"].lower()

    # A second restart reads the same history and answers nothing again.
    calls = len(fake.calls_for("chat.postMessage"))
    async with running(settings, fake):
        await fake.wait_for_async("conversations.history", 1, timeout=10,
                                  predicate=lambda c: c.time > dm_time(fake, dm))
        await settle(1.0)
    assert len(fake.calls_for("chat.postMessage")) == calls


def dm_time(fake: FakeSlackAPI, _dm: dict) -> float:
    """When the latest answer was posted: the third start's history read comes after it."""
    return max(c.time for c in fake.calls_for("chat.postMessage"))
