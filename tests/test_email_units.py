"""The email modules on their own: reading mail, loop detection, subjects and threading."""

from __future__ import annotations

from pathlib import Path

import pytest

from qopi_bot_handlers.email.compose import reply_subject, thread_references
from qopi_bot_handlers.email.loops import automated_reason
from qopi_bot_handlers.email.parse import external_id, parse_mail, strip_reply, without_attachments
from tests.email_support import CORPUS, HELP, manifest, norm

ENTRIES = manifest()


@pytest.mark.parametrize("entry", [e for e in ENTRIES if "question_contains" in e], ids=lambda e: e["file"])
def test_parse_keeps_question_and_drops_history(entry: dict) -> None:
    mail = parse_mail((CORPUS / entry["file"]).read_bytes().replace(b"\n", b"\r\n"))
    assert norm(entry["question_contains"]) in norm(mail.text)
    if "must_not_contain_after_strip" in entry:
        assert norm(entry["must_not_contain_after_strip"]) not in norm(mail.text)
    assert "\x00" not in mail.text


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["file"])
def test_loop_detection_matches_manifest(entry: dict) -> None:
    mail = parse_mail((CORPUS / entry["file"]).read_bytes())
    reason = automated_reason(mail, entry["envelope_from"], HELP)
    if entry["kind"] in ("automated", "loop"):
        assert reason is not None
    elif entry["expect_reply"] or entry["kind"] == "staff_reply":
        assert reason is None


@pytest.mark.parametrize(("subject", "expected"), [
    ("Re: Re: RE: Fwd: question", "Re: question"),
    ("AW: WG: Frage", "Re: Frage"),
    ("Fw: [QCP-0007] subset", "Re: [QCP-0007] subset"),
    ("Re[2]: threshold", "Re: threshold"),
    ("Regarding our score", "Re: Regarding our score"),
    ("", "Re: Your question to the QOPI Certification help desk"),
    (None, "Re: Your question to the QOPI Certification help desk"),
])
def test_reply_subject_never_stacks(subject: str | None, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_references_follow_rfc5322() -> None:
    assert thread_references(["<a@x>", "<b@x>"], ["<b@x>"], "<c@x>") == ["<a@x>", "<b@x>", "<c@x>"]
    assert thread_references([], ["<b@x>"], "<c@x>") == ["<b@x>", "<c@x>"]  # no References: use In-Reply-To
    assert thread_references([], [], None) == []
    long = thread_references([f"<{n}@x>" for n in range(40)], [], "<new@x>")
    assert len(long) == 20 and long[0] == "<0@x>" and long[-1] == "<new@x>"


def _mail(headers: str, envelope: str = "a@practice.example") -> str | None:
    raw = (headers + "From: A <a@practice.example>\r\nSubject: q\r\n\r\nAre we eligible?\r\n").encode()
    return automated_reason(parse_mail(raw), envelope, HELP)


def test_loop_signals() -> None:
    assert _mail("") is None
    assert _mail("Auto-Submitted: no\r\n") is None
    assert _mail("Auto-Submitted: auto-replied; owner-email=x@y\r\n") == "auto_submitted"
    assert _mail("Precedence: junk\r\n") == "precedence"
    assert _mail("List-Unsubscribe: <mailto:x@y>\r\n") == "mailing_list"
    assert _mail("X-Autoreply: yes\r\n") == "x_autoreply"
    assert _mail("", envelope="") == "empty_return_path"
    assert _mail("", envelope="no-reply@vendor.example") == "robot_sender"
    assert _mail("Reply-To: HELP@qopi-bot.test\r\n") == "from_help_address"
    assert _mail(f"X-Loop: {HELP}\r\n") == "x_loop"


def test_external_id_prefers_message_id_and_hashes_otherwise() -> None:
    assert external_id(b"Message-ID:\r\n <x@y>\r\n\r\nbody") == "<x@y>"
    a, b = external_id(b"Subject: a\r\n\r\nbody"), external_id(b"Subject: b\r\n\r\nbody")
    assert a.startswith("sha256:") and a != b


def test_strip_reply_keeps_hyphen_lists_and_drops_quotes() -> None:
    text = "Two questions:\n- are we eligible with 80%?\n- which round counts?\n\n> old quoted text\n"
    stripped = strip_reply(text)
    assert "which round counts" in stripped and "old quoted" not in stripped


def test_without_attachments_keeps_text_and_drops_files() -> None:
    raw = (CORPUS / "18_attachment_patient_chart.eml").read_bytes()
    cleaned = without_attachments(raw)
    assert b"Jenkins" not in cleaned and b"JVBERi0" not in cleaned
    assert "target chart" in parse_mail(cleaned).text
    assert without_attachments(Path(CORPUS / "01_plain_eligibility_81pct.eml").read_bytes()) == \
        (CORPUS / "01_plain_eligibility_81pct.eml").read_bytes()


def test_unreadable_mail_keeps_no_attachment_header_in_the_stored_copy() -> None:
    # Found by the MIME fuzzer: no blank line after the top-level headers, so everything up to the first
    # blank line looked like headers, a part's "Content-Disposition: attachment; filename=..." included.
    part = b'--b1\nContent-Type: text/plain; charset="utf-8"\nContent-Disposition: attachment; filename="chart.pdf"\n\n\n'
    raw = (b'Content-Type: multipart/mixed; boundary="b1"\n' + part + b'--b1\nContent-Type: text/plain; charset="utf-8"\n\n\n'
           b"--b1\nContent-Type: multipart/mixed;\n boundary*0*=us-ascii''" + b"a" * 54 + b";\n boundary*1*=" + b"a" * 26 + b"\n\x8a--"
           + b"a" * 80 + b"\n\n--" + b"a" * 80 + b"--\n\n" + part + b"--b1--\n")
    assert parse_mail(raw).attachments > 0
    kept = without_attachments(raw)
    assert parse_mail(kept).attachments == 0
    assert b"chart.pdf" not in kept and b"unreadable MIME" in kept
