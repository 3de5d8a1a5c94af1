"""Compose the mail the worker sends: answers to practices, case mail to staff, staff
answers relayed to practices.

Threading follows RFC 5322 section 3.6.4 so every client files our answer under the
practice's question: `Re:` once (prefixes never stack), In-Reply-To the parent's
Message-ID, References the parent's References plus its Message-ID. Every message gets a
Message-ID and a Date; everything we send on our own carries RFC 3834 `Auto-Submitted`, so
well-behaved autoresponders never answer us."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from pydantic import BaseModel, Field

from qopi_bot_handlers.email.policies import DEFAULT
from qopi_bot.cases import CaseSummary
from qopi_bot.core.kb import Contacts

DEFAULT_SUBJECT = "Your question to the QOPI Certification help desk"
FROM_NAME = "QOPI Certification help desk"
ATTACHMENT_NOTE = ("Note: attachments are not opened or stored by this help desk (they may contain "
                   "patient data). Please type the details you want me to use, such as your score "
                   "and round, in the message itself.")
_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|sv|antw|tr|rif)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*)+", re.I)
_MAX_REFERENCES = 20
# RFC 5322's hard limit instead of the 78-column default: ids are not folded onto a line of
# their own (some clients mishandle that) and readable text is not quoted-printable.
_POLICY = DEFAULT.clone(max_line_length=998)
WIRE_POLICY = _POLICY.clone(linesep="\r\n")
_SHORT_REASON = {
    "ENTITY-SUBSET": "subset certification",
    "ENTITY-EXCEPTION": "exception request",
    "HUMAN-REQUEST": "practice asks for a person",
}


class ReplyPayload(BaseModel):
    """An answer to a practice as stored in the outbox: everything needed to render the
    same mail (same Message-ID) on every delivery attempt."""

    to: str
    to_name: str = ""
    subject: str
    message_id: str
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    text: str
    conversation_key: str
    case: int | None = None


def reply_subject(subject: str | None) -> str:
    base = _PREFIX.sub("", subject or "").strip()[:200]
    return f"Re: {base or DEFAULT_SUBJECT}"


def thread_references(parent_references: list[str], parent_in_reply_to: list[str], parent_id: str | None) -> list[str]:
    refs = list(parent_references) or list(parent_in_reply_to[-1:])
    if parent_id:
        refs.append(parent_id)
    refs = list(dict.fromkeys(refs))
    # Keep the thread root and the newest ids: long threads must not grow headers forever.
    return refs if len(refs) <= _MAX_REFERENCES else refs[:1] + refs[-(_MAX_REFERENCES - 1):]


def domain_of(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def new_message_id(help_address: str) -> str:
    return make_msgid(idstring="qopi", domain=domain_of(help_address))


def stable_message_id(kind: str, key: str, help_address: str) -> str:
    """Outbox items rendered at send time get an id derived from their dedupe key, so a
    retried delivery carries the same Message-ID (recipients can drop the duplicate)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f"<qopi-{kind}-{digest}@{domain_of(help_address)}>"


def signature(contacts: Contacts) -> str:
    return (f"-- \n{FROM_NAME} (automated answers from the program rules)\n"
            f"{contacts.team}: {contacts.email} | {contacts.phone}")


def _mailbox(name: str, address: str) -> Address | str:
    try:
        return Address(display_name=name or "", addr_spec=address)
    except Exception:  # an odd display name must not block the answer
        return address


def _html(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n{2,}", text.strip()) if p.strip()]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in paragraphs)
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
            f'<body style="font-family: sans-serif">\n{body}</body></html>\n')


def build_message(*, help_address: str, to: str, to_name: str, subject: str, text: str, message_id: str,
                  in_reply_to: str | None, references: list[str], auto_submitted: str,
                  now: dt.datetime | None = None) -> EmailMessage:
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _mailbox(FROM_NAME, help_address)
    msg["To"] = _mailbox(to_name, to)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    msg["Auto-Submitted"] = auto_submitted
    # Exchange/Outlook honour this and send no out-of-office or read receipt back to us.
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text)
    msg.add_alternative(_html(text), subtype="html")
    return msg


def reply_text(answer_text: str, attachments: int, contacts: Contacts) -> str:
    parts = [answer_text.strip()]
    if attachments and "attachment" not in answer_text.lower():
        parts.append(ATTACHMENT_NOTE)
    return "\n\n".join(parts) + "\n\n" + signature(contacts) + "\n"


def render_reply(p: ReplyPayload, help_address: str) -> EmailMessage:
    return build_message(help_address=help_address, to=p.to, to_name=p.to_name, subject=p.subject, text=p.text,
                         message_id=p.message_id, in_reply_to=p.in_reply_to, references=p.references,
                         auto_submitted="auto-replied")


def staff_case_subject(s: CaseSummary) -> str:
    return f"[{s.id}] Needs a staff decision: {_SHORT_REASON.get(s.reason, s.reason)} ({s.channel})"


def staff_case_text(s: CaseSummary, practice_contact: str | None, contacts: Contacts) -> str:
    facts = "\n".join(f"  - {k}: {_fact(v)}" for k, v in s.facts.items()) or "  (none yet)"
    recent = "\n".join(f"  - {_one_line(line, 300)}" for line in s.recent) or "  (none)"
    lines = [
        f"Case {s.id} ({s.status}) needs a person.",
        "",
        f"Why: {s.why}",
        f"Channel: the practice asked by {s.channel}" + (f" ({practice_contact})" if practice_contact else ""),
        "",
        "Question (patient identifiers removed):",
        "  " + s.question.replace("\n", "\n  "),
        "",
        "Known facts:",
        facts,
        "",
        f"Decision so far ({', '.join(s.rules) or 'no rule decided it'}):",
        "  " + s.decision_text.replace("\n", "\n  "),
        "",
        "Recent messages:",
        recent,
        "",
        "To answer the practice, reply to this email (use Reply, not a new message: the reply must",
        "answer this very mail). The new text of your reply (not the quoted history) is relayed to the",
        "practice in its original thread. Only replies from staff addresses are relayed. From a terminal:",
        f'  qopi-bot cases reply {s.id} "your answer"',
    ]
    return "\n".join(lines) + "\n\n" + signature(contacts) + "\n"


def _fact(value: Any) -> str:
    if isinstance(value, dict) and {"season", "year"} <= set(value):
        return f"{str(value['season']).capitalize()} {value['year']}"
    return str(value)


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def relay_text(text: str, contacts: Contacts) -> str:
    return text.strip() + "\n\n" + signature(contacts) + "\n"


def origin_for(*, address: str, name: str, subject: str, message_id: str | None, references: list[str]) -> dict[str, Any]:
    """What a case remembers about the practice's thread, so a staff answer given later (from
    Slack, email or the CLI) reaches it threaded: IncomingMessage.origin / CaseRecord.origin."""
    return {"address": address, "name": name, "subject": subject, "message_id": message_id, "references": references}
