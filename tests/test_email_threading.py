"""Threading and conversation continuity over real SMTP: replies thread per RFC 5322, a
practice's answer to our reply continues the conversation, and the per-sender cap holds."""

from __future__ import annotations

from pathlib import Path

from tests.email_support import (
    HELP, inbox_rows, norm, parts_of, question_mail, reply_text, running_worker, send, settings_for, settle,
)
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)

DANA = "dana.whitfield@riverbend-onc.example.org"


async def test_followup_continues_the_conversation(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        first = question_mail("Is our score still valid?", subject="RE: Fwd: Score validity")
        await send(worker, first.as_bytes(), DANA)
        [asked] = await smtp_sink.wait_for_async(1)
        m = asked.message
        assert m["Subject"] == "Re: Score validity"
        assert m["In-Reply-To"] == first["Message-ID"]
        assert m["References"].split() == [first["Message-ID"]]
        assert m["From"].addresses[0].addr_spec == HELP and m["To"].addresses[0].addr_spec == DANA
        assert m["Auto-Submitted"] == "auto-replied" and m["Date"] and m["Message-ID"]
        assert m.get_content_type() == "multipart/alternative"
        assert {"text/plain", "text/html"} <= set(parts_of(asked))
        assert "which round" in norm(reply_text(asked))

        # The practice answers our question in the same thread, quoting us below.
        quoted = "\n".join("> " + line for line in reply_text(asked).splitlines())
        second = question_mail(f"Fall 2025\n\nOn Mon, Mar 2, 2026, QOPI Help <{HELP}> wrote:\n{quoted}\n",
                               subject=f"Re: {m['Subject']}", in_reply_to=m["Message-ID"],
                               references=[first["Message-ID"], m["Message-ID"]])
        await send(worker, second.as_bytes(), DANA)
        msgs = await smtp_sink.wait_for_async(2)
        answer = msgs[1].message
        text = norm(reply_text(msgs[1]))
        assert "fall 2025 score can be used until the close of the fall 2026 round" in text
        assert answer["Subject"] == "Re: Score validity"  # never "Re: Re: ..."
        assert answer["In-Reply-To"] == second["Message-ID"]
        assert answer["References"].split() == [first["Message-ID"], m["Message-ID"], second["Message-ID"]]
        assert answer["Message-ID"] != m["Message-ID"]
        # Same conversation in the store: one key, both practice turns.
        transcript = await worker.store.transcript(f"email:{first['Message-ID']}")
        assert [role for role, _, _ in transcript] == ["practice", "bot", "practice", "bot"]


async def test_reply_cap_per_sender_per_hour(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    settings = settings_for(tmp_path / "db.sqlite3", smtp_sink, QOPI_REPLY_CAP_PER_HOUR="3")
    async with running_worker(settings) as worker:
        for n in range(5):
            await send(worker, question_mail(f"Question {n}: is the threshold 75%?").as_bytes(), DANA)
        await settle(worker.store)
        await smtp_sink.assert_quiet_async(0.3)
        assert len(smtp_sink.messages_to(DANA)) == 3
        statuses = [(r["status"], r["last_error"]) for r in await inbox_rows(worker.store)]
        assert statuses.count(("ignored", "reply_cap_per_hour")) == 2
        # Another sender is not affected by Dana's cap.
        await send(worker, question_mail("Is the threshold 75%?", sender="gosei@lakeshore-hemonc.example.com").as_bytes(),
                   "gosei@lakeshore-hemonc.example.com")
        await settle(worker.store)
        assert len(smtp_sink.messages_to("gosei@lakeshore-hemonc.example.com")) == 1


async def test_smtp_retry_of_the_same_message_is_answered_once(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        mail = question_mail("We scored 81% in Fall 2025 on the certification pathway. Are we eligible?").as_bytes()
        for _ in range(3):  # a sending MTA that never saw our 250 delivers again
            assert await send(worker, mail, DANA) == 250
        await settle(worker.store)
        await smtp_sink.assert_quiet_async(0.2)
        assert len(smtp_sink.messages_to(DANA)) == 1
        assert len(await inbox_rows(worker.store)) == 1
