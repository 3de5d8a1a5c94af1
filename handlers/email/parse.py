"""Read a stored raw message the way a person wrote it.

Mail arrives in every shape clients produce: quoted history below (or above) the new text,
signatures, HTML-only bodies, any charset and transfer encoding, attachments, and broken
MIME. `parse_mail` never raises: whatever it cannot read becomes an empty field, so one bad
message can never stop the worker. Attachments are counted, never decoded or kept: they
may carry patient data (contract section 5)."""

from __future__ import annotations

import hashlib
import re
from email.headerregistry import AddressHeader, MessageIDHeader, UnstructuredHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any

import html2text
from mailparser_reply.parser import EmailMessage as ReplyMessage
from pydantic import BaseModel, Field

from qopi_bot_handlers.email.bounds import (
    MAX_FIELD, MAX_READ, cut_parts, drop_between, soft_wrap, squeeze_whitespace, tame_html, unwrap,
)
from qopi_bot_handlers.email.policies import DEFAULT

# Headers the loop detector looks at (lower-case names), copied out once so that module
# never has to touch the raw message.
LOOP_HEADERS = ("auto-submitted", "precedence", "list-id", "list-unsubscribe", "x-autoreply", "x-autorespond",
                "return-path", "x-loop", "sender")
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]
_MSGID = re.compile(r"<[^<>\s]{1,400}>")
_ENCODED_WORD_LEFTOVER = re.compile(r"=\?[\w.:-]*\?[bq]\?\S*", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_QUOTED_LINE = re.compile(r"^\s*>")
_BLOCKQUOTE = re.compile(r"<blockquote\b", re.I)
_BLOCKQUOTE_END = re.compile(r"</blockquote>", re.I)
_FIELD = re.compile(rb"^[!-9;-~]+:")  # RFC 5322 field name, then a colon
_MIME_LINE = re.compile(r"^(--\S+|Content-[\w-]+:.*|MIME-Version:.*)$", re.I)
# Clients that do not use "On ... wrote:" or Outlook blocks still mark forwards this way.
_FORWARD_MARK = re.compile(r"^-{2,} ?(Forwarded message|Weitergeleitete Nachricht|Message transféré) ?-{2,}$", re.I | re.M)


class ParsedMail(BaseModel):
    """What the worker needs from one message; filled defensively from broken input."""

    message_id: str | None = None
    in_reply_to: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    subject: str = ""
    from_address: str | None = None
    from_name: str = ""
    reply_to_address: str | None = None
    reply_to_name: str = ""
    content_type: str = "text/plain"
    loop_headers: dict[str, str] = Field(default_factory=dict)
    # Authentication-Results fields, topmost (added last, by the nearest server) first.
    auth_results: list[str] = Field(default_factory=list)
    has_report_part: bool = False
    attachments: int = 0
    text: str = ""          # the new text the person wrote: quotes and signature removed
    defects: int = 0

    @property
    def reply_address(self) -> str | None:
        """Where a reply goes: a plain address only. A header that decodes to anything else (a group,
        control characters) gets no reply rather than a reply to something we cannot address."""
        address = self.reply_to_address or self.from_address
        return address if address and _PLAIN_ADDRESS.fullmatch(address) else None

    @property
    def reply_name(self) -> str:
        return self.reply_to_name if self.reply_to_address else self.from_name

    @property
    def thread_ids(self) -> list[str]:
        """Every id this message says it follows, oldest first, In-Reply-To last (newest)."""
        ids = [i for i in self.references if i not in self.in_reply_to] + self.in_reply_to
        return list(dict.fromkeys(ids))


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:@\"\x00-\x1f\x7f-\x9f]+@[^\s<>()\[\]\\,;:@\"\x00-\x1f\x7f-\x9f]+")


def external_id(raw: bytes) -> str:
    """The inbox dedupe key: the Message-ID, or a content hash when there is none (or it is
    absurdly long), so an SMTP retry of the same message is stored once."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = re.search(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", head, re.I | re.M)
    if match:
        value = match.group(1).decode("ascii", "replace").strip()
        ids = _MSGID.findall(value)
        candidate = ids[0] if ids else value
        if 3 <= len(candidate) <= 300:
            return candidate
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def clean_text(value: str) -> str:
    """Undecodable bytes (surrogate escapes) and control characters out of any string."""
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _CONTROL.sub("", value)


def clean_subject(value: str) -> str:
    """A broken encoded word must not be echoed back in our Subject: drop what could not be
    decoded (replacement characters, encoded-word leftovers), keep the rest."""
    value = _ENCODED_WORD_LEFTOVER.sub(" ", value.replace("\ufffd", ""))
    return " ".join(value.split())[:300]


# Reading a header under policy.default runs the full RFC 5322 parser (for an address, a
# tree of tokens), about 50-200 us each, five to eight per mail. For the plain shapes most
# headers have, that parse gives back the raw text unchanged, so the raw text is used: plain
# printable ASCII with no encoded words (unstructured headers), one <id> (Message-ID), and
# "Name Words <local@domain>" or a bare local@domain (address headers). Anything else --
# folded, non-ASCII, encoded, quoted, commented, several ids -- is parsed as before.
_PLAIN_TEXT = re.compile(r"[\x20-\x7e\t]*")
_PLAIN_ID = re.compile(r"<[^<>\s]{1,400}>")
_ATOM_ADDR = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+"
_PLAIN_MAILBOX = re.compile(rf"(?:[A-Za-z0-9]+(?: [A-Za-z0-9]+)* <{_ATOM_ADDR}>|{_ATOM_ADDR})")
_KINDS: dict[str, str] = {}


def _kind(name: str) -> str:
    key = name.lower()
    kind = _KINDS.get(key)
    if kind is None:
        made = DEFAULT.header_factory(key, "")
        kind = ("address" if isinstance(made, AddressHeader) else "msgid" if isinstance(made, MessageIDHeader)
                else "text" if isinstance(made, UnstructuredHeader) else "other")
        _KINDS[key] = kind
    return kind


def _plain(msg: Message, name: str) -> str | None:
    """The header's raw text when parsing it would give that same text back; else None."""
    key = name.lower()
    raw = next((v for k, v in msg._headers if k.lower() == key), None)  # what msg.get() would parse
    if not isinstance(raw, str) or "=?" in raw or not _PLAIN_TEXT.fullmatch(raw):
        return None
    kind = _kind(key)
    if kind == "text" or (kind == "msgid" and _PLAIN_ID.fullmatch(raw)) or (
            kind == "address" and _PLAIN_MAILBOX.fullmatch(raw)):
        return raw
    return None


def _header(msg: Message, name: str) -> str | None:
    plain = _plain(msg, name)
    if plain is not None:
        return plain
    try:
        value = msg.get(name)
    except Exception:  # a header the parser cannot make sense of counts as absent
        return None
    if value is None:
        return None
    try:
        return clean_text(str(value))
    except Exception:
        return None


def _address(msg: Message, name: str) -> tuple[str | None, str]:
    """(address, display name) of the first mailbox in a From/Reply-To header."""
    value = _header(msg, name)
    if not value:
        return None, ""
    try:
        addresses = [(n, a) for n, a in getaddresses([value]) if "@" in a]
    except Exception:
        addresses = []
    if not addresses:
        return None, ""
    display, addr = addresses[0]
    return addr.strip(), clean_text(display).strip()


def _ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def _decode_part(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if payload is None:
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        declared = part.get_content_charset()
    except Exception:
        declared = None
    # Declared charsets are often wrong (us-ascii with 8-bit bytes, latin-1 that is really
    # windows-1252); latin-1 always decodes, so the chain ends there.
    for charset in (declared, "utf-8", "cp1252", "latin-1"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
        filename = part.get_filename()
    except Exception:
        return True
    if disposition == "attachment" or filename:
        return True
    return part.get_content_maintype() not in ("text", "multipart", "message")


def html_to_text(html: str) -> str:
    # Quoted history in HTML mail sits in blockquotes / gmail_quote divs: drop them before
    # conversion, the reply parser then only sees what the person typed.
    html = drop_between(tame_html(html), _BLOCKQUOTE, _BLOCKQUOTE_END, cut_unclosed=False)
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_links = True
    converter.ignore_images = True
    converter.ignore_emphasis = True
    try:
        return converter.handle(html)
    except Exception:
        return re.sub(r"<[^>]+>", " ", html)


def _raw_body_fallback(raw: bytes) -> str:
    """Broken MIME (a boundary that never appears): read the raw body, minus MIME lines."""
    parts = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)
    body = parts[1] if len(parts) > 1 else b""
    text = body.decode("utf-8", "replace") if _utf8(body) else body.decode("cp1252", "replace")
    return "\n".join(line for line in text.splitlines() if not _MIME_LINE.match(line.strip()))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _bodies(msg: Message) -> tuple[str | None, str | None, int, bool]:
    plain: str | None = None
    html: str | None = None
    attachments = 0
    report = msg.get_content_type() == "multipart/report"
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("multipart/report", "message/delivery-status"):
            report = True
        if part.is_multipart():
            continue
        if _is_attachment(part):
            attachments += 1
            continue
        if ctype == "text/plain" and plain is None:
            plain = _decode_part(part)
        elif ctype == "text/html" and html is None:
            html = _decode_part(part)
    return plain, html, attachments, report


def strip_reply(text: str) -> str:
    """Keep only what the sender wrote this time: quoted history, signatures and
    disclaimers go. The maintained parser does the work; the two fallbacks below cover what
    it leaves on our corpus (stray '>' lines, forward markers)."""
    # Bounded (see email_bounds): only the first MAX_READ characters, long whitespace runs
    # squeezed, and long lines cut for the parser only (joined again afterwards).
    text = squeeze_whitespace(text.replace("\r\n", "\n"))[:MAX_READ]
    wrapped = soft_wrap(text)
    try:
        parsed = ReplyMessage(text=wrapped, languages=list(_LANGUAGES), keep_hyphen_lists=True).read()
        kept = parsed.replies[0].body if parsed.replies else wrapped
    except Exception:
        kept = wrapped
    kept = unwrap(kept)
    kept = _FORWARD_MARK.split(kept)[0]
    lines = [line for line in kept.split("\n") if not _QUOTED_LINE.match(line)]
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not result:  # the parser cut everything: better the unquoted original than nothing
        result = "\n".join(line for line in text.split("\n") if not _QUOTED_LINE.match(line)).strip()
    return result


def _repair_header_block(raw: bytes) -> bytes:
    """A header line without a colon ends the header block for every parser, so the MIME
    headers after it (Content-Type, transfer encoding) would leak into the body as text.
    Dropping such lines from the header block lets the rest be read as intended. A field
    longer than MAX_FIELD bytes is cut there (see email_bounds)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    head, rest = (raw[:match.start()], raw[match.start():]) if match else (raw, b"")
    lines = re.split(rb"\r?\n", head)
    kept: list[bytes] = []
    field = 0
    for line in lines:
        if line[:1] in (b" ", b"\t"):  # a folded continuation of the field before
            field += len(line)
            if field <= MAX_FIELD:
                kept.append(line)
        elif _FIELD.match(line):
            field = len(line)
            kept.append(line[:MAX_FIELD])
    if kept == lines:
        return raw
    return b"\r\n".join(kept) + rest


def _readable(raw: bytes) -> tuple[bytes, bool]:
    """What of a message is parsed, and whether parts after MAX_PARTS were left unread."""
    return cut_parts(_repair_header_block(raw))


def parse_mail(raw: bytes) -> ParsedMail:
    try:
        readable, cut = _readable(raw)
        msg: Any = BytesParser(policy=DEFAULT).parsebytes(readable)
    except Exception:
        return ParsedMail(text=clean_text(_raw_body_fallback(raw[:MAX_READ * 4])).strip())
    out = ParsedMail()
    out.defects = len(getattr(msg, "defects", []) or [])
    out.message_id = (_ids(_header(msg, "Message-ID")) or [None])[0]
    out.in_reply_to = _ids(_header(msg, "In-Reply-To"))
    out.references = _ids(_header(msg, "References"))
    out.subject = clean_subject(_header(msg, "Subject") or "")
    out.from_address, out.from_name = _address(msg, "From")
    out.reply_to_address, out.reply_to_name = _address(msg, "Reply-To")
    out.loop_headers = {name: value for name in LOOP_HEADERS if (value := _header(msg, name)) is not None}
    try:
        out.auth_results = [str(v)[:2000] for v in (msg.get_all("Authentication-Results") or [])][:20]
    except Exception:
        out.auth_results = []
    try:
        out.content_type = msg.get_content_type()
    except Exception:
        out.content_type = "text/plain"
    try:
        plain, html, out.attachments, out.has_report_part = _bodies(msg)
    except Exception:
        plain, html = None, None
    if cut:
        out.attachments += 1  # parts not read are treated like attachments: never kept
    if plain is not None and plain.strip():
        text = plain
    elif html is not None:
        text = html_to_text(html)
    else:
        text = _raw_body_fallback(raw) if out.content_type.startswith("multipart/") else (plain or "")
    out.text = strip_reply(clean_text(text))
    return out


def without_attachments(raw: bytes) -> bytes:
    """The stored copy after processing: every attachment part replaced by a one-line note
    (names included: a file name can be a patient's). Unparseable mail keeps its headers
    and the text we read, nothing else."""
    try:
        # Parsed exactly as parse_mail parses it: what it counted as an attachment goes here.
        readable, cut = _readable(raw)
        if cut:
            raise ValueError("too many MIME parts")  # what was not read is not kept
        msg = BytesParser(policy=DEFAULT).parsebytes(readable)
        removed = 0
        for part in list(msg.walk()):
            if part.is_multipart() or not _is_attachment(part):
                continue
            # The top-level part keeps its From/To/Subject; a sub-part loses every header.
            for header in list(part.keys()):
                if part is not msg or header.lower().startswith("content-"):
                    del part[header]
            part.set_content("[attachment removed: not read or stored]\n")  # type: ignore[union-attr]
            removed += 1
        if not removed:
            return raw
        assert isinstance(msg, EmailMessage)
        return msg.as_bytes(policy=DEFAULT.clone(linesep="\r\n", max_line_length=998))
    except Exception:
        head = [*_header_fields(raw), b"Content-Type: text/plain; charset=utf-8"]
        return b"\r\n".join(head) + b"\r\n\r\n[message body removed after processing: unreadable MIME]\r\n"


def _header_fields(raw: bytes) -> list[bytes]:
    """The header fields of unreadable mail, without its Content-* fields: a malformed message may
    have no blank line after its headers, and what follows (a part's "Content-Disposition:
    attachment; filename=...") must not survive into the stored copy."""
    kept: list[bytes] = []
    keeping = False
    for line in re.split(rb"\r?\n", raw):
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if keeping:
                kept.append(line)  # a folded header's next line
            continue
        if not re.match(rb"[!-9;-~]+:", line):
            break  # a boundary or body line: the headers have ended
        keeping = not line.lower().startswith(b"content-")
        if keeping:
            kept.append(line)
    return kept
