"""Fuzzing the email worker's reading of mail (hypothesis; 10,000+ generated inputs here).

Everything the worker does with a stored message before the dialogue -- parse_mail, the
inbox dedupe key, loop detection, the attachment-free copy it keeps, and rendering the
threaded reply it would send -- gets random bytes, header soup, huge and empty input and
generated MIME trees (EmailMessage built from strategies, serialized, then mangled). No
exception may escape, and what comes out must be safe to store and to send: no NUL or
other control characters, no undecodable text, ids in <...>, attachments gone from the
kept copy."""

from __future__ import annotations

import base64
import random
import re
import time
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qopi_bot_handlers.email.compose import (
    WIRE_POLICY, build_message, new_message_id, reply_subject, thread_references,
)
from qopi_bot_handlers.email.loops import automated_reason
from qopi_bot_handlers.email.parse import (
    ParsedMail, clean_subject, clean_text, external_id, html_to_text, parse_mail, strip_reply, without_attachments,
)

HELP = "help@qopi-bot.test"
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])


def _safe(value: str, what: str) -> None:
    assert not _BAD_CONTROL.search(value), f"control character in {what}: {value!r}"
    value.encode("utf-8")  # no lone surrogates: PostgreSQL and the SMTP wire need real text


def check(raw: bytes, envelope_from: str = "dana@practice.example.org") -> ParsedMail:
    """What the worker does with one stored message, short of the dialogue; asserts it is safe."""
    mail = parse_mail(raw)
    assert isinstance(mail, ParsedMail)
    for name in ("text", "subject", "from_name", "reply_to_name"):
        _safe(getattr(mail, name), name)
    for name in ("from_address", "reply_to_address", "message_id"):
        if getattr(mail, name) is not None:
            _safe(getattr(mail, name), name)
    for key, value in mail.loop_headers.items():
        _safe(value, key)
    assert len(mail.subject) <= 300 and "\n" not in mail.subject
    assert all(i.startswith("<") and i.endswith(">") for i in mail.thread_ids + [mail.message_id or "<>"])
    assert mail.attachments >= 0

    key = external_id(raw)
    assert 3 <= len(key) <= 400  # the inbox column

    reason = automated_reason(mail, envelope_from, HELP)
    assert reason is None or isinstance(reason, str)

    kept = without_attachments(raw)
    assert isinstance(kept, bytes)
    if mail.attachments:
        assert parse_mail(kept).attachments == 0, "an attachment survived in the stored copy"

    if mail.reply_address and reason is None:
        reply = build_message(help_address=HELP, to=mail.reply_address, to_name=mail.reply_name,
                              subject=reply_subject(mail.subject), text="Yes: 75% is the threshold.",
                              message_id=new_message_id(HELP), in_reply_to=mail.message_id,
                              references=thread_references(mail.references, mail.in_reply_to, mail.message_id),
                              auto_submitted="auto-replied")
        wire = reply.as_bytes(policy=WIRE_POLICY)
        assert b"\r\nAuto-Submitted: auto-replied\r\n" in wire
    return mail


# ---------------------------------------------------------------------------- strategies
HEADER_NAMES = ["From", "To", "Cc", "Reply-To", "Sender", "Subject", "Message-ID", "In-Reply-To", "References",
                "Date", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
                "Auto-Submitted", "Precedence", "List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond",
                "Return-Path", "X-Loop", "Received"]
VALUE_BITS = ["<a1@practice.example.org>", "<>", "<", ">", "=?utf-8?b?w6l0w6k=?=", "=?bogus?Q?=ZZ?=", "=?utf-8?q?",
              "=?iso-8859-1?q?caf=E9?=", "multipart/mixed; boundary=\"b1\"", "multipart/alternative; boundary=b2",
              "multipart/report; report-type=delivery-status; boundary=r", "text/plain; charset=\"x-unknown\"",
              "text/html; charset=utf-16", "base64", "quoted-printable", "8bit", "x-uuencode", "attachment; filename=",
              "auto-replied", "auto-generated", "no", "bulk", "list", "MAILER-DAEMON@mx.example", HELP,
              "\"Whitfield, Dana\" <dana@riverbend.example.org>", "undisclosed-recipients:;", "a@", "@b", "a@b@c",
              "Dana <dana@x.org>, Lee <lee@y.org>", "(comment) x@y.org", "\x00", "\r", "\n ", "\t", "\u202e", "😀",
              "é", "\xff", "Mon, 2 Mar 2026 08:41:17 -0600", "Thu, 31 Feb 99999 25:61:61 +9999", " ", ";", ",", "\"", "\\"]
separators = st.sampled_from(["\r\n", "\n", "\r", "\r\r\n"])
encodings = st.sampled_from(["utf-8", "latin-1", "cp1252", "utf-16", "ascii"])


def _encode(text: str, codec: str) -> bytes:
    return text.encode(codec, "replace") if codec != "utf-8" else text.encode("utf-8", "surrogatepass")


header_values = st.lists(st.one_of(st.sampled_from(VALUE_BITS), st.text(max_size=40)), max_size=6).map("".join)
header_names = st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=12))
headers = st.lists(st.tuples(header_names, header_values), max_size=14)
bodies = st.one_of(
    st.text(max_size=600),
    st.lists(st.one_of(st.sampled_from(["> quoted", "On Mon, Dana wrote:", "-- ", "--b1", "--b1--", "--b2",
                                        "Content-Type: text/html", "<p>hi</p>", "=E9=", "w6k=", "Sent from my iPhone",
                                        "-----Original Message-----", "From: x@y.org", ""]),
                       st.text(max_size=60)), max_size=25).map("\n".join),
)


@st.composite
def header_soup(draw: st.DrawFn) -> bytes:
    sep = draw(separators)
    lines = [f"{name}:{draw(st.sampled_from([' ', '', '  ', chr(9)]))}{value}" for name, value in draw(headers)]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=30)))  # a line that is no header
    text = sep.join(lines) + sep + draw(st.sampled_from([sep, "", sep + sep])) + draw(bodies)
    return _encode(text, draw(encodings))


# --- MIME trees built with EmailMessage, then mangled
CHARSETS = ["utf-8", "latin-1", "us-ascii", "cp1252", "utf-16", "x-unknown", "shift_jis"]
CTES = [None, "7bit", "8bit", "base64", "quoted-printable", "x-garbage"]


@st.composite
def leaves(draw: st.DrawFn) -> EmailMessage:
    kind = draw(st.sampled_from(["plain", "html", "attachment", "octet", "delivery-status", "inline-image", "rfc822"]))
    part = EmailMessage()
    text = draw(st.text(max_size=200))
    if kind == "rfc822":
        inner = EmailMessage()
        try:
            inner["Subject"] = draw(st.text(max_size=30))
        except ValueError:  # line breaks in a header value: EmailMessage refuses them
            pass
        inner.set_payload(text)
        part["Content-Type"] = "message/rfc822"
        part.set_payload([inner])
        return part
    ctype = {"plain": "text/plain", "html": "text/html", "attachment": "application/pdf", "octet": "application/octet-stream",
             "delivery-status": "message/delivery-status", "inline-image": "image/png"}[kind]
    charset = draw(st.sampled_from(CHARSETS))
    part["Content-Type"] = f"{ctype}; charset=\"{charset}\""
    cte = draw(st.sampled_from(CTES))
    if cte:
        part["Content-Transfer-Encoding"] = cte
    if kind in ("attachment", "inline-image") or (kind == "plain" and draw(st.booleans())):
        name = draw(st.sampled_from(["chart.pdf", "Vance, Eleanor DOB 03-14-1958.pdf", "", "=?utf-8?b?w6k=?=.png"]))
        part["Content-Disposition"] = draw(st.sampled_from(["attachment", "inline"])) + (f"; filename=\"{name}\"" if name else "")
    if kind == "html":
        text = f"<html><body><p>{text}</p><blockquote>{draw(st.text(max_size=50))}</blockquote></body></html>"
    if cte == "base64" and draw(st.booleans()):
        payload = base64.b64encode(_encode(text, draw(encodings))).decode("ascii")
    else:
        payload = text
    part.set_payload(payload)
    return part


def _multipart(subtype: str, parts: list[EmailMessage], boundary: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Content-Type"] = f"multipart/{subtype}; boundary=\"{boundary}\""
    msg.set_payload(list(parts))
    return msg


trees = st.recursive(
    leaves(),
    lambda children: st.builds(_multipart, st.sampled_from(["mixed", "alternative", "related", "report", "signed"]),
                               st.lists(children, max_size=4),
                               st.sampled_from(["b1", "=_x", "", " ", "a" * 80, "b1 b2"])),
    max_leaves=6,
)


@st.composite
def mime_messages(draw: st.DrawFn) -> bytes:
    msg = draw(trees)
    for name, value in draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values),
                                     max_size=8)):
        if name.startswith("Content-"):
            continue
        try:
            msg[name] = value
        except Exception:  # EmailMessage refuses some values outright; skip those, mangling adds worse
            continue
    chosen = draw(st.sampled_from([policy.default, policy.compat32, policy.SMTP]))
    state = random.getstate()  # the generator draws missing boundaries from `random`: keep draws reproducible
    try:
        raw = msg.as_bytes(policy=chosen)
    except Exception:  # some generated trees cannot be serialized at all; then the mangling works on less
        try:
            raw = str(msg).encode("utf-8", "surrogateescape")
        except Exception:
            raw = b""
    finally:
        random.setstate(state)
    for op in draw(st.lists(st.sampled_from(["truncate", "drop_boundaries", "swap_boundary", "insert", "flip", "dup",
                                             "lf_only", "nul", "no_blank_line", "cut_header_block",
                                             "drop_boundary_param"]), max_size=3)):
        raw = _mangle(draw, op, raw)
    return raw


def _mangle(draw: st.DrawFn, op: str, raw: bytes) -> bytes:
    at = draw(st.integers(0, len(raw)))
    if op == "truncate":
        return raw[:at]
    if op == "drop_boundaries":
        return re.sub(rb"(?m)^--[^\r\n]*\r?\n?", b"", raw)
    if op == "swap_boundary":
        other = b'boundary="' + draw(st.binary(max_size=8)).replace(b'"', b"") + b'"'
        return re.sub(rb'boundary="?([^";\r\n]*)"?', lambda _m: other, raw)
    if op == "drop_boundary_param":
        return re.sub(rb';\s*boundary="?[^";\r\n]*"?', b"", raw)
    if op == "insert":
        return raw[:at] + draw(st.binary(max_size=40)) + raw[at:]
    if op == "flip" and raw:
        i = min(at, len(raw) - 1)
        return raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    if op == "dup":
        return raw[:at] + raw[at // 2:at] + raw[at:]
    if op == "lf_only":
        return raw.replace(b"\r\n", b"\n")
    if op == "nul":
        return raw[:at] + b"\x00" + raw[at:]
    if op == "no_blank_line":
        return raw.replace(b"\r\n\r\n", b"\r\n", 1).replace(b"\n\n", b"\n", 1)
    if op == "cut_header_block":
        return raw.split(b"\n\n", 1)[-1]
    return raw


# ---------------------------------------------------------------------------- tests
@settings(FUZZ, max_examples=3_500)
@given(st.binary(max_size=3_000), st.text(max_size=60))
@example(b"", "")
@example(b"\r\n\r\n", "<>")
@example(b"\x00" * 1000, "MAILER-DAEMON")
@example(b"From: <>\r\n\r\n\r\n", "")
@example(b"Content-Type: multipart/mixed; boundary=\r\nFrom: x@y.example\r\n\r\n--\r\n--\r\n", "x@y.example")
def test_random_bytes(raw: bytes, envelope_from: str) -> None:
    check(raw, envelope_from)


@settings(FUZZ, max_examples=2_000)
@given(header_soup(), st.sampled_from(["dana@practice.example.org", "", "<>", HELP.upper(), "noreply@x.org"]))
def test_header_soup(raw: bytes, envelope_from: str) -> None:
    check(raw, envelope_from)


@settings(FUZZ, max_examples=2_200)
@given(mime_messages())
def test_generated_mime_trees_mangled(raw: bytes) -> None:
    check(raw)


@settings(FUZZ, max_examples=2_500)
@given(st.text(), st.text(max_size=300))
def test_text_helpers(text: str, subject: str) -> None:
    for out in (clean_text(text), strip_reply(text), clean_subject(clean_text(subject))):
        assert isinstance(out, str)
    _safe(strip_reply(clean_text(text)), "stripped text")
    assert isinstance(html_to_text(text), str)
    assert reply_subject(clean_subject(clean_text(subject))).startswith("Re: ")


def _plain(body: bytes, ctype: bytes = b"text/plain") -> bytes:
    return (b"From: Dana <dana@practice.example.org>\r\nSubject: big\r\nMessage-ID: <big@x.org>\r\n"
            b"Content-Type: " + ctype + b"; charset=utf-8\r\n\r\n" + body)


def _repeat(unit: str, size: int) -> bytes:
    return (unit * (size // len(unit) + 1))[:size].encode("utf-8")


HUGE = {
    "5 MB of text": _plain(b"Is 75% the threshold? " * 250_000),
    "nothing but quotes": _plain(b"> quoted line\r\n" * 200_000),
    "20,000 headers": b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 50) for i in range(20_000)) + b"\r\nhi",
    "an 800 KB header": b"Subject: " + b"=?utf-8?b?w6k=?=" * 50_000 + b"\r\n\r\nhi",
    "300 levels of multipart": b"MIME-Version: 1.0\r\n" + b"".join(
        b"Content-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n--n%d\r\n" % (i, i) for i in range(300)) + b"deep\r\n",
    "2,000 attachments": b"Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n" + b"--m\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment\r\n\r\nx\r\n" * 2_000 + b"--m--\r\n",
    "only line breaks": b"\r\n" * 100_000,
    "empty": b"",
    # Shapes that once took minutes each (quadratic or worse in the reply parser or
    # html2text), and would then have stalled the next worker too, after the lease:
    "100,000 blank lines": _plain(b"\n" * 100_000),
    "100,000 blank lines of HTML": _plain(b"\n" * 100_000, b"text/html"),
    "ideographic spaces in HTML": _plain(_repeat("\u3000\n", 100_000), b"text/html"),
    "a 100 KB line of 'Op '": _plain(_repeat("Op ", 100_000)),
    "a 100 KB line of 'Il giorno '": _plain(_repeat("Il giorno ", 100_000)),
    "'Am 1. wrote:' as HTML": _plain(_repeat("Am 1. wrote:\n", 100_000), b"text/html"),
    "unclosed blockquotes": _plain(b"<blockquote>" * 100_000, b"text/html"),
    "unclosed comments": _plain(_repeat("<!-- x>", 300_000), b"text/html"),
    "tag soup": _plain(_repeat("<a b", 300_000), b"text/html"),
}


@pytest.mark.parametrize("name", list(HUGE))
def test_huge_and_degenerate_messages_are_read_quickly(name: str) -> None:
    started = time.perf_counter()
    check(HUGE[name])
    # The worker reads one message at a time: a slow one holds up everything behind it.
    assert time.perf_counter() - started < 5.0, f"{name}: {time.perf_counter() - started:.1f} s"
