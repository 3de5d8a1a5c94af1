"""The bytes of an answer mail, written directly when its headers are plain ASCII.

compose.build_message builds an EmailMessage and the generator flattens it: every header is
parsed into a structured object when set and folded again when written, and the two bodies go
through the content manager -- about a millisecond per answer, a tenth of what a mail costs the
worker. For the usual answer (ASCII names and subject, ids and lines well under the 998-column
limit) the result is fully determined, so it is written here, byte for byte what the generator
would write (tests/test_email_wire.py compares the two on generated input). Anything else --
a display name to quote or encode, a non-ASCII subject, a line that would need folding --
returns None and goes the EmailMessage way."""

from __future__ import annotations

import random
import re
import sys

from qopi_bot_handlers.email.compose import FROM_NAME, _html

_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_ADDRESS = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
# A msg-id of dot-atom text on both sides of one @ (what make_msgid and mail clients write);
# anything else (quotes, parentheses, a second @, "=?") is left to the email package.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=^_`{|}~-]"
_MSG_ID = re.compile(rf"<{_ATEXT}+(?:\.{_ATEXT}+)*@{_ATEXT}+(?:\.{_ATEXT}+)*>")
_TEXT = re.compile(r"[ -~]+")  # printable ASCII
_LONGEST = 900  # a header line longer than this may be folded by the generator: not ours to write
_WIDTH = len(repr(sys.maxsize - 1))  # as email.generator draws boundaries


def _boundary(text: bytes) -> str:
    # email.generator.Generator._make_boundary, on the bytes of the parts.
    boundary = "=" * 15 + f"{random.randrange(sys.maxsize):0{_WIDTH}d}" + "=="
    candidate, counter = boundary, 0
    # A plain substring test, not the generator's per-mail regex (compiling that cost about
    # 80 us a reply): stricter (it also avoids the boundary inside a line), so never wrong.
    while b"--" + candidate.encode("ascii") in text:
        candidate = f"{boundary}.{counter}"
        counter += 1
    return candidate


def _body(text: str) -> tuple[str, bytes] | None:
    """(Content-Transfer-Encoding, CRLF body) as the raw-data content manager chooses them for a
    line length limit of 998 and 8-bit transport; None when it would pick QP or base64."""
    lines = text.encode("utf-8").splitlines()
    if max((len(line) for line in lines), default=0) > 998:
        return None
    cte = "7bit" if text.isascii() else "8bit"
    if b"\r" in text.encode("utf-8"):
        return None  # lone CRs: the generator's own line handling decides
    return cte, b"\r\n".join(lines) + b"\r\n"  # (an empty text is one empty line)


def reply_wire(*, help_address: str, to: str, to_name: str, subject: str, text: str, message_id: str,
               in_reply_to: str | None, references: list[str], auto_submitted: str, date: str) -> bytes | None:
    """The wire bytes build_message(...).as_bytes(policy=WIRE_POLICY) gives, or None to use it."""
    if not (_ADDRESS.fullmatch(help_address) and _ADDRESS.fullmatch(to) and _ATOMS.fullmatch(FROM_NAME)):
        return None
    if to_name and (not _ATOMS.fullmatch(to_name) or "=?" in to_name):  # an encoded word is decoded
        return None
    if not (_TEXT.fullmatch(subject) and "=?" not in subject and "  " not in subject and subject == subject.strip()):
        return None
    ids = [message_id, *( [in_reply_to] if in_reply_to else []), *references]
    if not all(_MSG_ID.fullmatch(i) and "=?" not in i and len(i) <= 402 for i in ids) or not _TEXT.fullmatch(auto_submitted):
        return None
    plain, html = _body(text), _body(_html(text))
    if plain is None or html is None:
        return None
    headers = [
        f"From: {FROM_NAME} <{help_address}>",
        f"To: {to_name} <{to}>" if to_name else f"To: {to}",
        f"Subject: {subject}",
        f"Date: {date}",
        f"Message-ID: {message_id}",
        *([f"In-Reply-To: {in_reply_to}"] if in_reply_to else []),
        *([f"References: {' '.join(references)}"] if references else []),
        f"Auto-Submitted: {auto_submitted}",
        "X-Auto-Response-Suppress: All",
        "MIME-Version: 1.0",
    ]
    if max(len(h) for h in headers) > _LONGEST:
        return None
    parts = [
        (f'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {plain[0]}\r\n\r\n').encode("ascii")
        + plain[1],
        (f'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: {html[0]}\r\n'
         "MIME-Version: 1.0\r\n\r\n").encode("ascii") + html[1],
    ]
    boundary = _boundary(b"\r\n".join(parts))
    head = "\r\n".join([*headers, f'Content-Type: multipart/alternative; boundary="{boundary}"']) + "\r\n\r\n"
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return (head.encode("ascii") + delimiter + parts[0] + b"\r\n" + delimiter + parts[1]
            + f"\r\n--{boundary}--\r\n".encode("ascii"))
