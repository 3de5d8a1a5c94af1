"""Reminders in Slack, over real signed HTTP against the Slack stand-in: asked for in a
thread while the close date is unpublished, the web process itself posts when the rounds
file publishes it, `reminders run --today` sends the 30-day one once, "stop" cancels the rest."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.conftest import QOPI_BOT
from tests.fakes import slack_signing as ss
from tests.fakes.slack_api import FakeSlackAPI
from tests.reminder_support import calendar, long_date
from tests.slack_harness import fake, process_env, running, settings_from, slack_env  # noqa: F401  (fixture)


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the web process under test runs on this event loop and must keep running.
    return await asyncio.to_thread(subprocess.run, [QOPI_BOT, *args], capture_output=True, text=True,
                                   env=process_env(env), timeout=60)


async def listed(env: dict[str, str]) -> list[dict[str, object]]:
    done = await cli(env, "reminders", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_reminders_in_the_thread_from_unpublished_date_to_stop(tmp_path: Path, fake: FakeSlackAPI) -> None:
    cal = calendar(tmp_path, close_in_days=None)
    env = slack_env(tmp_path, fake, QOPI_ROUNDS_FILE=str(cal.path), QOPI_REMINDER_CHECK_SECONDS="0.2")
    async with running(settings_from(env), fake) as stand:
        ask = ss.app_mention(f"We scored 81% in {cal.completed} on the pathway. Remind me before our score expires",
                             user="U7", channel="C7")
        await stand.event(ask)
        (first,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
        assert first.params["channel"] == "C7" and first.params["thread_ts"] == ask["ts"]
        confirm = first.params["text"]
        assert "Reminders set" in confirm and "not published yet" in confirm and "30 and 7 days before" in confirm
        [waiting] = await listed(env)
        assert waiting["channel"] == "slack" and waiting["due"] is None and waiting["status"] == "pending"
        assert waiting["conversation"] == f"slack:C7:{ask['ts']}" or ask["ts"] in str(waiting["conversation"])

        # Staff publish the close date in the rounds file: the web process posts by itself.
        last_day = cal.day(60)
        cal.publish(last_day)
        notices = await fake.wait_for_async("chat.postMessage", 2, timeout=15)
        notice = notices[1].params
        assert notice["channel"] == "C7" and notice["thread_ts"] == ask["ts"]
        assert f"close date is now published: {long_date(last_day)}" in notice["text"]
        assert "81%" in notice["text"] and cal.completed in notice["text"] and "stop the reminders" in notice["text"]
        rows = {(r["kind"], r["due"], r["status"]) for r in await listed(env)}
        assert rows == {("date_published", cal.today.isoformat(), "sent"),
                        ("before_close", cal.day(30).isoformat(), "pending"),
                        ("before_close", cal.day(53).isoformat(), "pending")}

        # Thirty days before the last day, an operator's run sends exactly one, into the thread.
        run = await cli(env, "reminders", "run", "--today", cal.day(30).isoformat())
        assert run.returncode == 0 and run.stdout.startswith("sent 1 reminder "), run.stdout + run.stderr
        posts = await fake.wait_for_async("chat.postMessage", 3, timeout=10)
        reminder = posts[2].params
        assert reminder["channel"] == "C7" and reminder["thread_ts"] == ask["ts"]
        text = reminder["text"]
        assert f"can be used until {long_date(last_day)}" in text and "30 days from today" in text
        assert "81%" in text and cal.completed in text and "20 Certification Standards" in text
        assert "final QOPI Certification Report" in text and 'reply "stop the reminders"' in text
        again = await cli(env, "reminders", "run", "--today", cal.day(30).isoformat())
        assert again.stdout.startswith("sent 0 reminders")

        await stand.event(ss.thread_message("please stop the reminders", user="U7", channel="C7", thread_ts=ask["ts"]))
        posts = await fake.wait_for_async("chat.postMessage", 4, timeout=10)
        assert "cancelled the 1 reminder still to come" in posts[3].params["text"]
        assert posts[3].params["thread_ts"] == ask["ts"]
        statuses = sorted((r["due"], r["status"]) for r in await listed(env))
        assert statuses == [(cal.today.isoformat(), "sent"), (cal.day(30).isoformat(), "sent"),
                            (cal.day(53).isoformat(), "cancelled")]
        late = await cli(env, "reminders", "run", "--today", cal.day(59).isoformat())
        assert late.stdout.startswith("sent 0 reminders")
        assert len(fake.posts()) == 4


async def test_a_new_score_replaces_the_reminders_and_dm_gets_them(tmp_path: Path, fake: FakeSlackAPI) -> None:
    cal = calendar(tmp_path, close_in_days=60)
    env = slack_env(tmp_path, fake, QOPI_ROUNDS_FILE=str(cal.path))
    async with running(settings_from(env), fake) as stand:
        await stand.event(ss.dm_message("Can you ping us a month before our score expires?", user="U8", channel="D8"))
        (asked,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
        assert "Which round is your score from" in asked.params["text"]
        assert await listed(env) == []  # nothing to date yet
        await stand.event(ss.dm_message(f"{cal.completed}, 78%", user="U8", channel="D8"))
        posts = await fake.wait_for_async("chat.postMessage", 2, timeout=10)
        assert f"Reminders set: I'll write here on {long_date(cal.day(30))} (30 days before) and" in posts[1].params["text"]
        await stand.event(ss.dm_message(f"Sorry, it was 83% in {cal.completed}", user="U8", channel="D8"))
        posts = await fake.wait_for_async("chat.postMessage", 3, timeout=10)
        assert "replaces the reminders I had set for your earlier score" in posts[2].params["text"]
        rows = await listed(env)
        assert [r["status"] for r in rows] == ["cancelled", "cancelled", "pending", "pending"]
        assert {r["score"] for r in rows if r["status"] == "pending"} == {83.0}

        run = await cli(env, "reminders", "run", "--today", cal.day(53).isoformat())  # both due by then: each once
        assert run.stdout.startswith("sent 2 reminders"), run.stdout + run.stderr
        posts = await fake.wait_for_async("chat.postMessage", 5, timeout=10)
        assert all(p.params["channel"] == "D8" for p in posts)
        assert all("83%" in p.params["text"] for p in posts[3:])


async def test_a_private_qopi_request_is_reminded_in_the_users_dm(tmp_path: Path, fake: FakeSlackAPI) -> None:
    cal = calendar(tmp_path, close_in_days=60)
    env = slack_env(tmp_path, fake, QOPI_ROUNDS_FILE=str(cal.path))
    async with running(settings_from(env), fake) as stand:
        body = ss.slash_command_form(f"We scored 90% in {cal.completed}, remind me before it expires", user_id="U9",
                                     channel_id="C9", response_url=fake.response_url("cmd"))
        await stand.send(body)
        (answer,) = await fake.wait_for_async("response_url", 1, timeout=10)
        assert "Reminders set" in answer.params["text"] and answer.params["response_type"] == "ephemeral"
        run = await cli(env, "reminders", "run", "--today", cal.day(30).isoformat())
        assert run.stdout.startswith("sent 1 reminder "), run.stdout + run.stderr
        (post,) = await fake.wait_for_async("chat.postMessage", 1, timeout=10)
        # /qopi answers were private: the reminder goes to the user's DM, not the channel.
        assert post.params["channel"] == fake.dm_channel_for("U9") and not post.params.get("thread_ts")
        assert "90%" in post.params["text"] and "30 days from today" in post.params["text"]
