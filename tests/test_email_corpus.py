"""Every file of tests/data/email through the real worker, over SMTP on loopback, with the
SMTP sink as the relay and a real SQLite file; each checked against its manifest entry."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import structlog

from qopi_bot.logs import configure_logging
from qopi_bot.records import parse_case_label
from tests.email_support import (
    CORPUS, HELP, STAFF, inbox_rows, last_message_id, manifest, norm, parts_of, practice_messages, reply_text,
    running_worker, send, settings_for, settle,
)
from tests.fakes.smtp_sink import ReceivedMessage, SmtpSink

ENTRIES = manifest()
PLACEHOLDER = re.compile(rb"<(?:reply-\d+|case-QCP-\d+)@qopi-bot\.test>")


@dataclass
class Seen:
    entry: dict[str, Any]
    smtp: str
    message_id: str | None
    new_mail: list[ReceivedMessage] = field(default_factory=list)
    practice: list[tuple[int, str, str]] = field(default_factory=list)
    inbox: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    seen: dict[str, Seen]
    logs: str
    conversations: dict[str, str]  # file -> conversation key of its practice message
    cases: dict[int, Any]
    all_mail: list[ReceivedMessage]


def _header_ids(raw: bytes, name: bytes) -> list[bytes]:
    m = re.search(rb"^" + name + rb":(.*(?:\n[ \t].*)*)", raw, re.I | re.M)
    return re.findall(rb"<[^<>\s]+>", m.group(1)) if m else []


def _bot_reply_to(seen: dict[str, Seen], parent_id: bytes) -> str | None:
    for s in seen.values():
        if s.message_id and s.message_id.encode() == parent_id:
            for m in s.new_mail:
                if m.message["In-Reply-To"] == s.message_id:
                    return m.message["Message-ID"]
    return None


def _prepare(entry: dict[str, Any], seen: dict[str, Seen], all_mail: list[ReceivedMessage]) -> bytes:
    """Swap the manifest's placeholder ids for the real ones: a follow-up answers the bot's
    actual reply to the message it references; a case reply answers the real case mail."""
    raw = (CORPUS / entry["file"]).read_bytes()
    if entry["kind"] == "followup":
        parents = [p for p in _header_ids(raw, b"References") if not PLACEHOLDER.fullmatch(p)]
        real = next((r for p in parents if (r := _bot_reply_to(seen, p))), None)
        assert real, f"{entry['file']}: no bot reply to its parent was captured"
        raw = PLACEHOLDER.sub(real.encode(), raw)
    elif entry.get("case_id"):
        tag = f"[{entry['case_id']}]"
        case_mail = [m for m in all_mail if STAFF in m.rcpt_tos and tag in (m.subject or "")]
        assert case_mail, f"{entry['file']}: no case mail for {tag}"
        raw = PLACEHOLDER.sub(case_mail[0].message["Message-ID"].encode(), raw)
    return raw


async def _run_corpus(tmp: Path) -> Run:
    sink = SmtpSink().start()
    settings = settings_for(tmp / "corpus.sqlite3", sink)
    seen: dict[str, Seen] = {}
    buffer = io.StringIO()
    old_stderr, old_structlog = sys.stderr, structlog.get_config()
    handler = logging.StreamHandler(buffer)
    logging.getLogger().addHandler(handler)
    sys.stderr = buffer  # structlog binds the stream when configured
    try:
        configure_logging("json", logging.INFO)
        async with running_worker(settings) as worker:
            store = worker.store
            for entry in ENTRIES:
                raw = _prepare(entry, seen, sink.messages)
                before_mail = len(sink)
                before_msg = await last_message_id(store)
                try:
                    code, text = await send(worker, raw, entry["envelope_from"]), ""
                except Exception as exc:  # recorded, asserted below
                    code, text = getattr(exc, "smtp_code", 0), repr(exc)
                await settle(store)
                msgid = BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"]
                s = Seen(entry=entry, smtp=f"{code} {text}", message_id=str(msgid) if msgid else None)
                s.new_mail = sink.messages[before_mail:]
                s.practice = await practice_messages(store, before_msg)
                s.inbox = (await inbox_rows(store))[-1]
                seen[entry["file"]] = s
            cases = {c.number: c for c in await store.list_cases()}
            full_cases = {n: await store.get_case(n) for n in cases}
    finally:
        sys.stderr = old_stderr
        logging.getLogger().removeHandler(handler)
        structlog.configure(**old_structlog)
        sink.stop()
    conversations = {f: s.practice[-1][1] for f, s in seen.items() if s.practice}
    return Run(seen=seen, logs=buffer.getvalue(), conversations=conversations, cases=full_cases,
               all_mail=sink.messages)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return asyncio.run(_run_corpus(tmp_path_factory.mktemp("email-corpus")))


def _reply_target(raw: bytes) -> str:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    header = msg["Reply-To"] or msg["From"]
    return header.addresses[0].addr_spec.lower()


def _assert_threaded_reply(reply: ReceivedMessage, s: Seen) -> None:
    m = reply.message
    assert m["From"].addresses[0].addr_spec == HELP
    assert m["Auto-Submitted"] == "auto-replied"
    assert m["Message-ID"] and m["Date"]
    assert m["Subject"].startswith("Re: ") and not re.match(r"(?i)re:\s*(re|fwd?|aw)\s*:", m["Subject"])
    assert "None" not in m["Subject"]
    if s.message_id:
        assert m["In-Reply-To"].strip() == s.message_id
        assert m["References"].split()[-1] == s.message_id
    kinds = parts_of(reply)
    assert {"text/plain", "text/html"} <= set(kinds), kinds.keys()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_corpus_file(run: Run, entry: dict[str, Any]) -> None:
    s = run.seen[entry["file"]]
    kind = entry["kind"]
    # Every message is accepted and stored, even garbage: it is never refused at SMTP.
    assert s.smtp.startswith("250"), s.smtp
    raw = (CORPUS / entry["file"]).read_bytes()

    if entry["expect_reply"]:
        target = _reply_target(raw)
        replies = [m for m in s.new_mail if target in (r.lower() for r in m.rcpt_tos)]
        assert len(replies) == 1, [m.rcpt_tos for m in s.new_mail]
        _assert_threaded_reply(replies[0], s)
        others = [m for m in s.new_mail if m not in replies]
        assert all(STAFF in m.rcpt_tos for m in others), "only a staff case mail may go out besides the reply"
        assert s.inbox["status"] == "done"
        [(_, _, text)] = s.practice
        assert norm(entry["question_contains"]) in norm(text)
        if "must_not_contain_after_strip" in entry:
            assert norm(entry["must_not_contain_after_strip"]) not in norm(text)
        if entry.get("attachment"):
            assert "attachment" in reply_text(replies[0]).lower()
    elif kind == "staff_reply":
        assert not [m for m in s.new_mail if any(r.lower() == entry["envelope_from"] for r in m.rcpt_tos)]
        [relay] = s.new_mail
        assert relay.rcpt_tos == (entry["relay_to"],)
        text = norm(reply_text(relay))
        assert norm(entry["question_contains"]) in text
        assert norm(entry["must_not_contain_after_strip"]) not in text
        assert f"({entry['case_id']})" in reply_text(relay)
        assert s.practice == []
    else:
        assert s.new_mail == [], f"{kind} must never be answered"
        assert s.inbox["status"] == "ignored"
        assert s.practice == []

    if entry.get("attachment"):
        stored = s.inbox["payload"]
        assert b"[attachment removed" in stored
        for part in BytesParser(policy=policy.default).parsebytes(raw).walk():
            if part.get_filename():
                assert part.get_filename().encode() not in stored
                assert bytes(part.get_payload(), "ascii").strip()[:40] not in stored
    for ident in entry.get("phi", []):
        assert ident.lower() not in run.logs.lower(), f"patient identifier {ident!r} in the logs"
        for m in run.all_mail:
            if STAFF in m.rcpt_tos:
                assert ident.lower() not in m.raw.decode("utf-8", "replace").lower()


def test_followups_continue_their_conversations(run: Run) -> None:
    conv = run.conversations
    assert conv["25_followup_thread_reply.eml"] == conv["01_plain_eligibility_81pct.eml"]
    assert conv["26_followup_references_only.eml"] == conv["22_multi_site_question.eml"]
    [reply] = [m for m in run.seen["26_followup_references_only.eml"].new_mail]
    assert "one entity" in norm(reply_text(reply)) or "one_entity" in norm(reply_text(reply)) \
        or "as one" in norm(reply_text(reply))
    subject = run.seen["25_followup_thread_reply.eml"].new_mail[0].subject
    assert subject == "Re: question"


def test_staff_reply_relayed_in_practice_thread_and_lookalike_not(run: Run) -> None:
    subset = run.seen["20_subset_downtown_site.eml"]
    [case_mail] = [m for m in subset.new_mail if STAFF in m.rcpt_tos]
    assert case_mail.subject.startswith("[QCP-0001]")
    assert case_mail.message["Auto-Submitted"] == "auto-generated"
    case = run.cases[parse_case_label("QCP-0001")]
    assert case.staff_email_message_id == case_mail.message["Message-ID"]
    [relay] = run.seen["27_staff_reply_case.eml"].new_mail
    assert relay.message["In-Reply-To"] == subset.message_id
    assert subset.message_id in relay.message["References"].split()
    assert relay.subject == "Re: Certify only one location"
    assert relay.message["Auto-Submitted"] == "auto-replied"
    staff_replies = [e for e in case.events if e.kind == "staff_reply"]
    assert [e.author for e in staff_replies] == [STAFF]  # the look-alike (28) changed nothing
    lookalike = run.seen["28_nonstaff_reply_case.eml"]
    assert lookalike.practice[0][1] != case.conversation_key
    assert "QCP-0001" not in reply_text(lookalike.new_mail[0])


def test_logs_carry_ids_not_bodies(run: Run) -> None:
    assert '"event": "email.processed"' in run.logs or "email.processed" in run.logs
    for needle in ("downtown site", "Halvorsen", "74.99", "Are we eligible"):
        assert needle.lower() not in run.logs.lower()
