"""Staff escalation by email (issue 7, email half): case mail to QOPI_STAFF_EMAIL, a staff
reply relayed to the practice in its original thread, look-alikes never relayed, and cases
crossing channels (Slack <-> email)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from qopi_bot.records import IncomingMessage, parse_case_label
from tests.email_support import (
    CORPUS, STAFF, norm, question_mail, reply_text, running_worker, send, settings_for, settle,
)
from tests.fakes.smtp_sink import SmtpSink, smtp_sink  # noqa: F401  (fixture)

DANA = "dana.whitfield@riverbend-onc.example.org"
SUBSET_ID = "<20260310142000.9C1D2E3F40@mail.riverbend-onc.example.org>"
PLACEHOLDER = b"<case-QCP-0001@qopi-bot.test>"


def _staff_reply(case_mail_id: str | None, label: str = "QCP-0001", file: str = "27_staff_reply_case.eml") -> bytes:
    raw = (CORPUS / file).read_bytes().replace(b"[QCP-0001]", f"[{label}]".encode())
    if case_mail_id is None:  # threaded by the subject tag alone
        return re.sub(rb"^(In-Reply-To|References): .*\n", b"", raw, flags=re.M)
    return raw.replace(PLACEHOLDER, case_mail_id.encode())


async def test_subset_question_staff_mail_and_relayed_answer(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        await send(worker, (CORPUS / "20_subset_downtown_site.eml").read_bytes(), DANA)
        await settle(worker.store)
        [case_mail] = smtp_sink.messages_to(STAFF)
        [answer] = smtp_sink.messages_to(DANA)
        assert re.match(r"^\[QCP-\d{4}\] ", case_mail.subject)
        label = case_mail.subject[1:9]
        assert label in reply_text(answer)  # the practice is told its case id
        body = norm(reply_text(case_mail))
        for expected in ("downtown site", "why:", "entity-subset", "known facts", "decision so far", "by email"):
            assert expected in body
        case = await worker.store.get_case(parse_case_label(label))
        assert case is not None and case.staff_email_message_id == case_mail.message["Message-ID"]

        # A staff member answers the case mail from their mail client.
        smtp_sink.clear()
        await send(worker, _staff_reply(case_mail.message["Message-ID"], label), STAFF)
        await settle(worker.store)
        [relay] = smtp_sink.messages
        assert relay.rcpt_tos == (DANA,)
        m = relay.message
        assert m["Subject"] == "Re: Certify only one location"
        assert m["In-Reply-To"] == SUBSET_ID and SUBSET_ID in m["References"].split()
        assert m["Auto-Submitted"] == "auto-replied" and m["Message-ID"] and m["Date"]
        text = norm(reply_text(relay))
        assert f"from the qcp team ({label.lower()})" in text and "list of oncologists" in text
        assert "reason: subset" not in text and "jordan ellis" not in text  # quote and signature stripped

        # The practice answers the relayed mail: same conversation, same case.
        smtp_sink.clear()
        follow = question_mail("The oncologists at the downtown site are Dr. Ames and Dr. Brook.",
                               subject=f"Re: {m['Subject']}", in_reply_to=m["Message-ID"],
                               references=[SUBSET_ID, m["Message-ID"]])
        await send(worker, follow.as_bytes(), DANA)
        await settle(worker.store)
        [ack] = smtp_sink.messages_to(DANA)
        assert label in reply_text(ack)
        case = await worker.store.get_case(parse_case_label(label))
        kinds = [e.kind for e in case.events]
        assert kinds.count("practice_message") == 2 and kinds.count("staff_reply") == 1

        # A look-alike "QCP Staff" address answering the case mail is never relayed.
        smtp_sink.clear()
        lookalike = (CORPUS / "28_nonstaff_reply_case.eml").read_bytes().replace(
            PLACEHOLDER, case_mail.message["Message-ID"].encode()).replace(b"[QCP-0001]", f"[{label}]".encode())
        await send(worker, lookalike, "qcp-staff@qopi-bot-test.example.net")
        await settle(worker.store)
        assert smtp_sink.messages_to(DANA) == []
        # It is answered as any other sender's mail (its "certify the downtown site only" may even open a
        # case of its own); what matters is that nothing of it reaches the practice.
        assert ("qcp-staff@qopi-bot-test.example.net",) in [m.rcpt_tos for m in smtp_sink.messages]
        after = await worker.store.get_case(parse_case_label(label))
        assert [e.kind for e in after.events] == kinds


async def test_genuine_reply_from_another_staff_address_is_relayed(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink,
                                           QOPI_STAFF_ADDRESSES="jordan.ellis@qopi-bot.test")) as worker:
        await send(worker, (CORPUS / "20_subset_downtown_site.eml").read_bytes(), DANA)
        await settle(worker.store)
        [case_mail] = smtp_sink.messages_to(STAFF)
        smtp_sink.clear()
        raw = _staff_reply(case_mail.message["Message-ID"]).replace(
            b"From: QCP Staff <qcp-staff@qopi-bot.test>", b"From: Jordan Ellis <Jordan.Ellis@qopi-bot.test>")
        await send(worker, raw, "jordan.ellis@qopi-bot.test")
        await settle(worker.store)
        [relay] = smtp_sink.messages
        assert relay.rcpt_tos == (DANA,) and relay.message["In-Reply-To"] == SUBSET_ID


async def test_slack_case_answered_by_staff_email(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        # The Slack adapter hands the dialogue service a message like this one.
        msg = IncomingMessage(conversation_key="slack:C0PRACTICE:1741600000.000100", channel="slack",
                              text="We want to certify only our downtown site, not the other three. How?",
                              today=dt.date.today(), user="U0DANA",
                              origin={"channel": "C0PRACTICE", "thread_ts": "1741600000.000100", "user": "U0DANA"})
        answer = await worker.dialogue.handle(msg, event_key="Ev-slack-1")
        assert answer.case_id
        worker.dispatcher.notify()
        [case_mail] = await smtp_sink.wait_for_async(1)
        assert case_mail.subject.startswith(f"[{answer.case_id}]") and "(Slack)" in case_mail.subject
        smtp_sink.clear()
        await send(worker, _staff_reply(case_mail.message["Message-ID"], answer.case_id), STAFF)
        await settle(worker.store)
        assert len(smtp_sink) == 0  # nothing by email: the practice asked in Slack
        relays = [i for i in await worker.store.outbox_list(channel="slack") if i.kind == "relay"]
        assert len(relays) == 1
        assert relays[0].payload["channel"] == "C0PRACTICE"
        assert relays[0].payload["thread_ts"] == "1741600000.000100"
        assert "list of oncologists" in relays[0].payload["text"]


async def test_email_case_answered_from_slack_reaches_the_mail_thread(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    async with running_worker(settings_for(tmp_path / "db.sqlite3", smtp_sink)) as worker:
        await send(worker, (CORPUS / "20_subset_downtown_site.eml").read_bytes(), DANA)
        await settle(worker.store)
        [case] = await worker.store.list_cases()
        smtp_sink.clear()
        # What the Slack staff "Reply" action calls.
        ok, _ = await worker.dialogue.cases.reply(case.id, who="U0STAFF", text="Yes, we can review the downtown site.",
                                                  via="slack", event_key="Ev-staff-1")
        assert ok
        worker.dispatcher.notify()
        [relay] = await smtp_sink.wait_for_async(1)
        assert relay.rcpt_tos == (DANA,) and relay.message["In-Reply-To"] == SUBSET_ID
        assert "we can review the downtown site" in norm(reply_text(relay))
