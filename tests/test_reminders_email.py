"""Reminders by email over real SMTP on loopback: confirmed in the reply, sent in the
original thread with Auto-Submitted: auto-generated, unaffected by a resolved staff case,
shown in `cases show`, and stopped by replying to the reminder itself."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from tests.conftest import QOPI_BOT
from tests.email_support import HELP, env_for, norm, question_mail, reply_text, running_worker, send, settings_for, settle
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)
from tests.reminder_support import calendar, long_date

DANA = "dana.whitfield@riverbend-onc.example.org"


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("QOPI_", "SLACK_", "DATABASE_URL"))}
    full.update(env)
    # In a thread: the worker under test runs on this event loop and must keep running.
    return await asyncio.to_thread(subprocess.run, [QOPI_BOT, *args], capture_output=True, text=True, env=full,
                                   timeout=60)


async def test_email_reminder_in_thread_survives_resolved_case_and_stops_by_reply(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    cal = calendar(tmp_path, close_in_days=60)
    db = tmp_path / "db.sqlite3"
    extra = {"QOPI_ROUNDS_FILE": str(cal.path)}
    env = env_for(db, smtp_sink, **extra)
    async with running_worker(settings_for(db, smtp_sink, **extra)) as worker:
        first = question_mail(f"Our OQS was 81% in {cal.completed}. Can you set a reminder before it expires?",
                              subject="Score reminder")
        await send(worker, first.as_bytes(), DANA)
        [confirm] = await smtp_sink.wait_for_async(1)
        text = norm(reply_text(confirm))
        assert f"reminders set: i'll write here on {long_date(cal.day(30)).lower()} (30 days before) and " \
               f"{long_date(cal.day(53)).lower()} (7 days before)" in text
        assert f"until {long_date(cal.day(60)).lower()}" in text

        # A staff case in the same thread, resolved: the reminders stay.
        ask_person = question_mail("Can I talk to a person please?", subject="Re: Score reminder",
                                   in_reply_to=confirm.message["Message-ID"],
                                   references=[first["Message-ID"], confirm.message["Message-ID"]])
        await send(worker, ask_person.as_bytes(), DANA)
        await settle(worker.store)
        [case] = json.loads((await cli(env, "cases", "list", "--json")).stdout)
        assert (await cli(env, "cases", "resolve", case["id"])).returncode == 0
        shown = (await cli(env, "cases", "show", case["id"]))
        assert "Reminders (2):" in shown.stdout and f"due {cal.day(30).isoformat()}" in shown.stdout
        shown_json = json.loads((await cli(env, "cases", "show", case["id"], "--json")).stdout)
        assert [r["status"] for r in shown_json["reminders"]] == ["pending", "pending"]

        run = (await cli(env, "reminders", "run", "--today", cal.day(30).isoformat()))
        assert run.returncode == 0 and run.stdout.startswith("sent 1 reminder "), run.stdout + run.stderr
        await settle(worker.store)
        reminder = [m for m in smtp_sink.messages_to(DANA) if reply_text(m).startswith("Reminder:")]
        assert len(reminder) == 1
        m = reminder[0].message
        assert m["Subject"] == "Re: Score reminder" and m["In-Reply-To"] == first["Message-ID"]
        assert first["Message-ID"] in m["References"].split()
        assert m["Auto-Submitted"] == "auto-generated" and m["From"].addresses[0].addr_spec == HELP
        body = norm(reply_text(reminder[0]))
        for expected in ("81%", cal.completed.lower(), long_date(cal.day(60)).lower(), "final qopi certification report",
                         "20 certification standards", 'reply "stop the reminders"'):
            assert expected in body
        assert (await cli(env, "reminders", "run", "--today", cal.day(30).isoformat())).stdout.startswith("sent 0 reminders")

        # The practice answers the reminder itself: the same conversation, and the rest is cancelled.
        stop = question_mail("Thanks - please stop the reminders, we applied.", subject="Re: Score reminder",
                             in_reply_to=m["Message-ID"], references=[first["Message-ID"], m["Message-ID"]])
        before = len(smtp_sink.messages_to(DANA))
        await send(worker, stop.as_bytes(), DANA)
        await settle(worker.store)
        answers = smtp_sink.messages_to(DANA)[before:]
        assert len(answers) == 1 and "cancelled the 1 reminder still to come" in norm(reply_text(answers[0]))
        rows = json.loads((await cli(env, "reminders", "list", "--json")).stdout)
        assert [(r["channel"], r["status"]) for r in rows] == [("email", "sent"), ("email", "cancelled")]
        assert {r["conversation"] for r in rows} == {f"email:{first['Message-ID']}"}
        assert (await cli(env, "reminders", "run", "--today", cal.day(59).isoformat())).stdout.startswith("sent 0 reminders")
