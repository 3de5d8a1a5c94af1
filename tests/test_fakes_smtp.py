"""The SMTP sink fake works, and the email corpus manifest is consistent."""

from __future__ import annotations

import html
import re
import smtplib
import socket
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib
import pytest
import yaml

from tests.fakes.smtp_sink import SmtpSink, send_eml, send_eml_async, smtp_sink  # noqa: F401

CORPUS = Path(__file__).parent / "data" / "email"
MANIFEST = CORPUS / "manifest.yaml"
KINDS = {
    "question", "followup", "automated", "loop", "staff_reply", "nonstaff_reply",
    "malformed_question", "malformed_garbage",
}
REQUIRED = {"file", "kind", "expect_reply", "why", "envelope_from"}
OPTIONAL = {
    "question_contains", "must_not_contain_after_strip", "attachment", "phi",
    "in_reply_to", "case_id", "relay_to",
}
HELP = "help@qopi-bot.test"


def _simple_mail(subject: str = "Are we eligible?", body: str = "We scored 81% in Fall 2025.") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Dana Whitfield <dana.whitfield@riverbend-onc.example.org>"
    msg["To"] = HELP
    msg["Subject"] = subject
    msg["Message-ID"] = "<t-1@riverbend-onc.example.org>"
    msg.set_content(body)
    return msg.as_bytes()


# ---------------------------------------------------------------------------- the sink
async def test_async_send_is_recorded_and_parsed(smtp_sink: SmtpSink) -> None:
    await send_eml_async(
        smtp_sink.host, smtp_sink.port, _simple_mail(), "dana.whitfield@riverbend-onc.example.org",
        [HELP, "qcp-staff@qopi-bot.test"],
    )
    [got] = await smtp_sink.wait_for_async(1, timeout=5)
    assert got.mail_from == "dana.whitfield@riverbend-onc.example.org"
    assert got.rcpt_tos == (HELP, "qcp-staff@qopi-bot.test")
    assert got.message["Subject"] == "Are we eligible?"
    assert got.message["Message-ID"] == "<t-1@riverbend-onc.example.org>"
    assert got.message["From"].addresses[0].display_name == "Dana Whitfield"
    assert "81%" in got.text
    assert b"\r\n" in got.raw
    assert smtp_sink.messages_to("QCP-STAFF@qopi-bot.test") == [got]


def test_sync_send_and_wait_for_from_plain_test(smtp_sink: SmtpSink) -> None:
    # a sender on another thread, the waiting test blocked in wait_for
    t = threading.Timer(0.1, send_eml, args=(smtp_sink.host, smtp_sink.port, _simple_mail(), "", HELP))
    t.start()
    msgs = smtp_sink.wait_for(1, timeout=5)
    t.join()
    assert msgs[0].mail_from == ""  # MAIL FROM:<>
    assert msgs[0].subject == "Are we eligible?"
    smtp_sink.clear()
    assert len(smtp_sink) == 0 and smtp_sink.messages == []
    with pytest.raises(TimeoutError):
        smtp_sink.wait_for(1, timeout=0.2)


async def test_aiosmtplib_client_against_sink(smtp_sink: SmtpSink) -> None:
    msg = EmailMessage()
    msg["From"] = HELP
    msg["To"] = "zoe.mueller@sonnenfeld-onc.example.net"
    msg["Subject"] = "Re: Question about certification (Zoë)"
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("Grüße – yes, 82% passes.")
    await aiosmtplib.send(msg, hostname=smtp_sink.host, port=smtp_sink.port, start_tls=False)
    [got] = await smtp_sink.wait_for_async(1)
    assert got.message["Subject"] == "Re: Question about certification (Zoë)"
    assert got.message["Auto-Submitted"] == "auto-replied"
    assert "Grüße" in got.message.get_body(("plain",)).get_content()


async def test_temporary_failure_then_recovery(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_temporarily()
    with pytest.raises(aiosmtplib.SMTPResponseException) as exc:
        await send_eml_async(smtp_sink.host, smtp_sink.port, _simple_mail(), "a@example.org", HELP)
    assert exc.value.code == 451
    assert "try later" in exc.value.message
    assert smtp_sink.rejected_count == 1 and len(smtp_sink) == 0

    smtp_sink.recover()
    await send_eml_async(smtp_sink.host, smtp_sink.port, _simple_mail(), "a@example.org", HELP)
    assert len(await smtp_sink.wait_for_async(1)) == 1


def test_temporary_failure_sync_and_at_rcpt(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_temporarily()
    with pytest.raises(smtplib.SMTPDataError) as exc:
        send_eml(smtp_sink.host, smtp_sink.port, _simple_mail(), "a@example.org", HELP)
    assert exc.value.smtp_code == 451
    smtp_sink.fail_temporarily("450 4.2.0 mailbox busy", stage="RCPT")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send_eml(smtp_sink.host, smtp_sink.port, _simple_mail(), "a@example.org", HELP)
    smtp_sink.recover()
    send_eml(smtp_sink.host, smtp_sink.port, _simple_mail(), "a@example.org", HELP)
    assert len(smtp_sink.wait_for(1)) == 1
    assert smtp_sink.rejected_count == 2


async def test_stop_refuses_connections_and_start_reuses_port(smtp_sink: SmtpSink) -> None:
    port = smtp_sink.port
    await send_eml_async(smtp_sink.host, port, _simple_mail(), "a@example.org", HELP)
    await smtp_sink.wait_for_async(1)

    smtp_sink.stop()
    assert not smtp_sink.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((smtp_sink.host, port), timeout=1).close()
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send_eml_async(smtp_sink.host, port, _simple_mail(), "a@example.org", HELP, timeout=2)

    smtp_sink.start()
    assert smtp_sink.running and smtp_sink.port == port
    await send_eml_async(smtp_sink.host, port, _simple_mail("second"), "a@example.org", HELP)
    msgs = await smtp_sink.wait_for_async(2)
    assert [m.subject for m in msgs] == ["Are we eligible?", "second"]  # kept across restarts

    for _ in range(2):  # repeated cycles work too
        smtp_sink.stop()
        smtp_sink.start()
    assert smtp_sink.address == f"127.0.0.1:{port}"


def test_context_manager_and_independent_sinks() -> None:
    with SmtpSink() as a, SmtpSink() as b:
        assert a.port != b.port
        send_eml(a.host, a.port, _simple_mail(), "x@example.org", HELP)
        assert len(a.wait_for(1)) == 1 and len(b) == 0
    assert not a.running and not b.running


# ---------------------------------------------------------------------------- the corpus
def _manifest() -> list[dict]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, list)
    return data


def _norm(s: str) -> str:
    """Lowercase, entities decoded, runs of spaces collapsed -- but line breaks kept, so a
    needle must sit on one line of the message (robust for naive strippers)."""
    s = html.unescape(s).replace("\ufeff", "").replace("\r\n", "\n")
    return re.sub(r"[ \t\u00a0]+", " ", s).lower()


def _all_text(raw: bytes) -> str:
    """Every readable bit of a message: decoded text parts, attachment names and bytes,
    and the raw source (for mail whose MIME structure is broken)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    chunks = [raw.decode("latin-1")]
    for part in msg.walk():
        if part.is_multipart():
            continue
        if part.get_filename():
            chunks.append(part.get_filename())
        payload = part.get_payload(decode=True) or b""
        try:
            chunks.append(part.get_content() if part.get_content_maintype() == "text" else "")
        except Exception:  # malformed on purpose
            pass
        charset = part.get_content_charset() or "utf-8"
        try:
            chunks.append(payload.decode(charset, "replace"))
        except LookupError:
            chunks.append(payload.decode("latin-1"))
    return _norm("\n".join(chunks))


def test_manifest_matches_folder() -> None:
    entries = _manifest()
    listed = [e["file"] for e in entries]
    assert len(listed) == len(set(listed)), "duplicate manifest entries"
    on_disk = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert sorted(listed) == on_disk
    assert len(on_disk) >= 34


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e.get("file", "?"))
def test_manifest_entry(entry: dict) -> None:
    assert REQUIRED <= set(entry), f"missing keys: {REQUIRED - set(entry)}"
    assert set(entry) <= REQUIRED | OPTIONAL, f"unknown keys: {set(entry) - REQUIRED - OPTIONAL}"
    assert entry["kind"] in KINDS
    assert isinstance(entry["expect_reply"], bool)
    assert isinstance(entry["why"], str) and entry["why"].strip() and "\n" not in entry["why"]
    assert isinstance(entry["envelope_from"], str)
    path = CORPUS / entry["file"]
    assert path.is_file()
    raw = path.read_bytes()
    assert b"\r\n" not in raw, "corpus uses LF line endings"
    assert all(len(line) <= 998 for line in raw.split(b"\n")), "RFC 5322 line length"

    kind = entry["kind"]
    if kind in {"automated", "loop", "malformed_garbage", "staff_reply"}:
        assert entry["expect_reply"] is False
    if kind in {"question", "followup", "malformed_question", "nonstaff_reply"}:
        assert entry["expect_reply"] is True
        assert entry.get("question_contains"), "answerable mail names its question text"
    if kind == "staff_reply":
        assert entry.get("relay_to") and entry.get("case_id")
    if kind == "followup":
        assert entry.get("in_reply_to", "").endswith("@qopi-bot.test>")

    text = _all_text(raw)
    for key in ("question_contains", "must_not_contain_after_strip"):
        if key in entry:
            needle = entry[key]
            assert needle == needle.lower(), f"{key} must be lowercase"
            assert _norm(needle) in text, f"{key} {needle!r} not in the message"
    for ident in entry.get("phi", []):
        assert _norm(ident) in text, f"phi {ident!r} not in the message"
    if entry.get("attachment"):
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert any(p.get_filename() for p in msg.walk()), "attachment: true but none found"
    if entry.get("case_id"):
        assert f"[{entry['case_id']}]".encode() in raw


def test_whole_corpus_survives_smtp_round_trip(smtp_sink: SmtpSink) -> None:
    """Every file (NUL bytes, undeclared 8-bit, broken MIME) can be delivered as-is."""
    entries = _manifest()
    started = time.monotonic()
    for e in entries:
        send_eml(smtp_sink.host, smtp_sink.port, (CORPUS / e["file"]).read_bytes(), e["envelope_from"], HELP)
    got = smtp_sink.wait_for(len(entries), timeout=10)
    assert time.monotonic() - started < 10
    for e, m in zip(entries, got):
        assert m.mail_from == e["envelope_from"]
        assert m.raw.replace(b"\r\n", b"\n") == (CORPUS / e["file"]).read_bytes(), e["file"]
