"""Practices ask in Slack: a mention, a DM, a thread follow-up, /qopi. Real app, fake Slack."""

from __future__ import annotations

import time

from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.slack_harness import (  # noqa: F401  (fixtures)
    Stand, block_text, env, fake, posts_to, settle, stand,
)

ELIGIBLE_QUESTION = "Our OQS was 81% in Fall 2025 on the certification pathway. Are we eligible?"


async def test_url_verification_echoes_the_challenge(stand: Stand) -> None:
    status, text = await stand.send(ss.url_verification("abc123"))
    assert status == 200 and '"challenge": "abc123"' in text.replace('":"', '": "')


async def test_mention_is_answered_in_its_thread_with_rule_ids(stand: Stand, fake: FakeSlackAPI) -> None:
    mention = ss.app_mention(ELIGIBLE_QUESTION, user="U1", channel="C1")
    status, _, _ = await stand.event(mention)
    assert status == 200
    (call,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    post = call.params
    assert post["channel"] == "C1" and post["thread_ts"] == mention["ts"]
    shown = block_text(post)
    assert "Eligible to apply" in shown
    for rule in ("ELIG-SCORE", "APPLY-STANDARDS"):
        assert f"`{rule}`" in shown  # the context block lists the deciding rules
    assert "Fall 2026" in shown and "Next step" in shown
    assert post["text"].startswith("Yes, you are eligible") and "ELIG-SCORE" in post["text"]


async def test_dm_is_answered_in_the_dm(stand: Stand, fake: FakeSlackAPI) -> None:
    await stand.event(ss.dm_message("Is 74.99% enough to pass?", user="U2", channel="D2"))
    (call,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    assert call.params["channel"] == "D2" and not call.params.get("thread_ts")
    assert "ELIG-SCORE" in block_text(call.params)


async def test_thread_follow_up_continues_without_a_mention(stand: Stand, fake: FakeSlackAPI) -> None:
    mention = ss.app_mention("Is our score still valid?", user="U3", channel="C3")
    await stand.event(mention)
    (first,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    assert first.params["thread_ts"] == mention["ts"]
    assert "Question for you" in block_text(first.params)  # the follow-up question is marked

    await stand.event(ss.thread_message("Fall 2025", user="U3", channel="C3", thread_ts=mention["ts"]))
    calls = await fake.wait_for_async("chat.postMessage", 2, timeout=10)
    answer = calls[1].params
    assert answer["channel"] == "C3" and answer["thread_ts"] == mention["ts"]
    assert "Fall 2026" in answer["text"] and "VALIDITY" in block_text(answer)


async def test_thread_the_bot_is_not_part_of_is_left_alone(stand: Stand, fake: FakeSlackAPI) -> None:
    root = ss.next_ts()
    await stand.event(ss.thread_message("Fall 2025", user="U4", channel="C4", thread_ts=root))
    await stand.event(ss.channel_message("Is 80% enough?", user="U4", channel="C4"))  # no mention
    await stand.event(ss.dm_message("hello", user="U4", channel="D4"))  # control: this one is answered
    await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    await settle()
    assert [p["channel"] for p in fake.posts()] == ["D4"]


async def test_slash_command_is_acked_at_once_and_answered_privately(stand: Stand, fake: FakeSlackAPI) -> None:
    body = ss.slash_command_form("Is 75% enough to pass?", user_id="U5", channel_id="C5",
                                 response_url=fake.response_url("cmd"))
    started = time.monotonic()
    status, text = await stand.send(body)
    assert status == 200 and text == "" and time.monotonic() - started < 1.0
    (call,) = await fake.wait_for_async("response_url", 1, timeout=10)
    assert call.name == "cmd"
    assert call.params["response_type"] == "ephemeral"
    assert "ELIG-SCORE" in call.params["text"] and "ELIG-SCORE" in block_text(call.params)
    assert fake.posts() == []  # nothing public


async def test_slash_command_falls_back_to_ephemeral_when_response_url_is_gone(stand: Stand, fake: FakeSlackAPI) -> None:
    fake.fail_next("response_url", 404, body="")
    await stand.send(ss.slash_command_form("hello", user_id="U6", channel_id="C6", response_url=fake.response_url("old")))
    (call,) = await fake.wait_for_async("chat.postEphemeral", 1, timeout=10)
    assert call.params["user"] == "U6" and call.params["channel"] == "C6"


async def test_bot_messages_edits_and_deletes_are_ignored(stand: Stand, fake: FakeSlackAPI) -> None:
    mention = ss.app_mention("Is our score still valid?", user="U7", channel="C7")
    await stand.event(mention)
    (answer,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    thread = mention["ts"]
    ignored = [
        ss.bot_message(answer.params["text"], channel="C7", thread_ts=thread),  # our own post echoing back
        ss.bot_message("Fall 2025", channel="C7", thread_ts=thread, subtype=None),  # modern bot form
        ss.bot_message("Fall 2025", channel="C7", thread_ts=thread, bot_id="BOTHER", user="UOTHERBOT"),
        ss.message_changed("Fall 2025", user="U7", channel="C7", thread_ts=thread),
        ss.message_deleted(ss.next_ts(), channel="C7", user="U7", thread_ts=thread),
        ss.bot_message("Fall 2025", channel="D7"),  # a bot in a DM
    ]
    for event in ignored:
        status, _, _ = await stand.event(event)
        assert status == 200
    await settle()
    assert len(fake.posts()) == 1
    # The conversation is still waiting for its answer, untouched by the ignored events.
    await stand.event(ss.thread_message("Fall 2025", user="U7", channel="C7", thread_ts=thread))
    calls = await fake.wait_for_async("chat.postMessage", 2, timeout=10)
    assert "Fall 2026" in calls[1].params["text"]
    await settle(0.2)
    assert len(fake.posts()) == 2


async def test_mention_in_a_thread_is_answered_once_not_twice(stand: Stand, fake: FakeSlackAPI) -> None:
    # Slack sends a thread reply that mentions the bot twice: as app_mention and as message.
    root = ss.next_ts()
    mention = ss.app_mention("What is the score threshold?", user="U8", channel="C8", thread_ts=root)
    copy = ss.thread_message(mention["text"], user="U8", channel="C8", thread_ts=root, ts=mention["ts"])
    await stand.event(mention)
    await stand.event(copy)
    (call,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
    assert call.params["thread_ts"] == root
    await settle()
    assert len(posts_to(fake, "C8")) == 1
