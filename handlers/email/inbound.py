"""Process one stored inbound message: automated mail is ignored, a staff answer to a case
mail is relayed, everything else goes through the dialogue and its answer is queued.

Runs after the SMTP 250, from the durable inbox, so it may run again for the same item
after a crash: the answer's outbox dedupe key is derived from the inbox id (answered
exactly once), and an item whose answer is already queued is not put through the dialogue
a second time. Logs carry ids and outcomes only, never bodies."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from pydantic import BaseModel

from qopi_bot_handlers.email.compose import (
    ReplyPayload, new_message_id, origin_for, reply_subject, reply_text, thread_references,
)
from qopi_bot_handlers.email.loops import automated_reason
from qopi_bot_handlers.email.parse import ParsedMail, parse_mail, without_attachments
from qopi_bot_handlers.email.trust import StaffCheck, check_staff_reply
from qopi_bot.cases import is_staff_address
from qopi_bot.core.kb import Knowledge
from qopi_bot.logs import get_logger
from qopi_bot.records import CaseRecord, InboxItem, IncomingMessage, case_label, parse_case_label
from qopi_bot.service import DialogueService, Loaded
from qopi_bot.settings import Settings
from qopi_bot.store import Store, utcnow
from qopi_bot.unit import Unit

log = get_logger("qopi_bot_handlers.email.worker")
REFUSAL_TEXT = {
    "no_token": "it does not answer the case mail (no In-Reply-To/References naming it)",
    "wrong_token": "it names a case mail id that is not this case's",
    "unknown_case": "there is no such case",
    "not_authenticated": "the receiving server did not confirm DMARC/DKIM for the sender's domain",
}

# Past this size parsing takes long enough to stall the loop (acks, other SMTP sessions):
# such a message is parsed in a thread. Below it, the thread hop costs more than it saves.
PARSE_IN_THREAD_BYTES = 256 * 1024

Settle = Callable[[Sequence[str]], Awaitable[bool]]


async def _no_settle(_keys: Sequence[str]) -> bool:
    return False


Outcome = Literal["answered", "already_answered", "relayed", "refused", "automated", "no_sender", "capped",
                  "staff_empty"]


class Processed(BaseModel):
    outcome: Outcome
    inbox_status: Literal["done", "ignored"]
    detail: str | None = None  # a reason code for the log (never text from the message)
    case: str | None = None
    intent: str | None = None
    keys: list[str] = []  # what this item wrote that a later item of the same batch must read


def reply_dedupe_key(inbox_id: int) -> str:
    return f"email-reply:{inbox_id}"


class InboundProcessor:
    def __init__(self, store: Store, dialogue: DialogueService, settings: Settings, kb: Knowledge) -> None:
        self.store = store
        self.dialogue = dialogue
        self.settings = settings
        self.kb = kb

    async def process(self, item: InboxItem, today: dt.date, *, unit: Unit | None = None,
                      settle: Settle = _no_settle) -> Processed:
        """Handle one stored message. With `unit`, the answer's writes (turn, thread links,
        reply) join it; `settle(keys)` is awaited before reading what an earlier item of
        the same batch may have written under those keys (qopi_bot.batching.ItemBatch)."""
        started = time.perf_counter()
        if len(item.payload) > PARSE_IN_THREAD_BYTES:
            mail = await asyncio.to_thread(parse_mail, item.payload)
        else:
            mail = parse_mail(item.payload)
        result = await self._decide(item, mail, today, unit, settle)
        if mail.attachments:
            # The raw copy was kept only until the message was handled: attachments may
            # carry patient data and are never stored.
            stripped = (await asyncio.to_thread(without_attachments, item.payload)
                        if len(item.payload) > PARSE_IN_THREAD_BYTES else without_attachments(item.payload))
            await self.store.inbox_set_payload(item.id, stripped, unit=unit)
        log.info("email.processed", inbox=item.id, outcome=result.outcome, detail=result.detail, case=result.case,
                 intent=result.intent, attachments=mail.attachments, defects=mail.defects,
                 ms=round((time.perf_counter() - started) * 1000, 1))
        return result

    async def _decide(self, item: InboxItem, mail: ParsedMail, today: dt.date, unit: Unit | None,
                      settle: Settle) -> Processed:
        # Only a redelivery (a crash after queueing, before finishing) can find its answer queued.
        if item.attempts > 1 and await self.store.outbox_find(reply_dedupe_key(item.id)) is not None:
            return Processed(outcome="already_answered", inbox_status="done")
        envelope_from = str(item.meta.get("mail_from") or "")
        reason = automated_reason(mail, envelope_from, self.settings.help_address)
        if reason:
            return Processed(outcome="automated", inbox_status="ignored", detail=reason)
        address = mail.reply_address
        if not address:  # never fall back to the envelope: it is often a bounce address
            return Processed(outcome="no_sender", inbox_status="ignored")

        if is_staff_address(self.settings, mail.from_address):
            check = await check_staff_reply(mail, self.store.get_case,
                                            require_authentication=self.settings.staff_require_dmarc,
                                            authserv_id=self.settings.authserv_id)
            if check.verdict == "proven" and check.case is not None:
                case = await self.store.get_case(check.case)
                if case is not None:
                    return await self._relay_staff_answer(item, mail, case)
            if check.verdict == "not_a_case_reply":
                # A staff address writing into a practice's case thread (not answering the
                # case mail) used to be relayed; without the token it proves nothing either.
                found = await self.store.thread_for(mail.thread_ids)
                if found is not None and found[1] is not None:
                    check = StaffCheck(verdict="refused", case=found[1], reason="no_token")
            if check.verdict == "refused":
                return await self._refuse_staff_reply(mail, check)

        # What an earlier item of this batch wrote under these keys (a thread link, a reply
        # to this sender, a conversation) must be committed before it is read.
        rcpt = f"rcpt:{address.lower()}"
        await settle([*mail.thread_ids, *([mail.message_id] if mail.message_id else []), rcpt])
        since = utcnow() - dt.timedelta(hours=1)
        context = await self.store.email_context(mail.thread_ids, f"email:{mail.message_id or item.external_id}",
                                                 address, since)
        loaded: Loaded | None = None
        if context is None:  # the thread has a staff case: look it up the careful way
            conversation_key, case_number = await self._thread(mail, fallback=item.external_id)
            await settle([conversation_key, rcpt])
            replies = await self.store.replies_since(address, since)
        else:
            conversation_key, replies, state = context
            case_number = None
            # An earlier item of this batch continued the same conversation: its turn is
            # committed now, and the dialogue reads the state again.
            loaded = None if await settle([conversation_key]) else Loaded(state)
        if replies >= self.settings.reply_cap_per_hour:
            return Processed(outcome="capped", inbox_status="ignored", detail="reply_cap_per_hour")

        origin = origin_for(address=address, name=mail.reply_name, subject=mail.subject,
                            message_id=mail.message_id, references=mail.references)
        msg = IncomingMessage(conversation_key=conversation_key, channel="email", text=mail.text, today=today,
                              user=address, origin=origin)
        answer = await self.dialogue.handle(msg, event_key=f"email:{item.id}", unit=unit, loaded=loaded)
        case_number = await self._follow_case(answer.case_id, case_number, origin)
        if mail.message_id:
            await self.store.link_message_id(mail.message_id, conversation_key, case_number, unit=unit)
        reply_id = new_message_id(self.settings.help_address)
        await self.store.link_message_id(reply_id, conversation_key, case_number, unit=unit)
        payload = ReplyPayload(
            to=address, to_name=mail.reply_name, subject=reply_subject(mail.subject), message_id=reply_id,
            in_reply_to=mail.message_id,
            references=thread_references(mail.references, mail.in_reply_to, mail.message_id),
            text=reply_text(answer.text, mail.attachments, self.kb.contacts),
            conversation_key=conversation_key, case=case_number,
        )
        await self.store.outbox_put("email", "reply", payload.model_dump(mode="json"),
                                    dedupe_key=reply_dedupe_key(item.id), recipient=address.lower(), unit=unit)
        keys = [conversation_key, f"rcpt:{address.lower()}", reply_id] + ([mail.message_id] if mail.message_id else [])
        return Processed(outcome="answered", inbox_status="done", case=answer.case_id,
                         intent=answer.intent.value if answer.intent else None, keys=keys)

    async def _thread(self, mail: ParsedMail, fallback: str) -> tuple[str, int | None]:
        """The conversation this mail continues (via In-Reply-To/References), else a new one.
        A staff case mail is not a practice's thread: only staff may continue from it, so
        anyone else quoting it starts a conversation of their own."""
        ids = mail.thread_ids
        for _ in range(len(ids) + 1):
            found = await self.store.thread_for(ids)
            if found is None:
                break
            key, case_number = found
            case = await self.store.get_case(case_number) if case_number is not None else None
            if case is None or not case.staff_email_message_id or case.staff_email_message_id not in ids:
                return key, case_number
            log.warning("email.case_reply_not_staff", case=case.id)
            ids = [i for i in ids if i != case.staff_email_message_id]
        # New threads: email:<message-id> (or the content hash that stood in for it).
        return f"email:{mail.message_id or fallback}", None

    async def _refuse_staff_reply(self, mail: ParsedMail, check: StaffCheck) -> Processed:
        """A staff From: without proof: possibly forged, so nothing is sent to anyone (not
        even a bot answer to the staff address). The attempt is kept on the case, without
        its text, so staff see it in `qopi-bot cases show`."""
        label = case_label(check.case) if check.case is not None else None
        log.warning("email.staff_reply_refused", case=label, reason=check.reason,
                    sender_domain=(mail.from_address or "").rpartition("@")[2])
        if check.case is not None:
            await self.store.add_case_event(check.case, "staff_reply_refused", mail.from_address,
                                            f"not relayed: {REFUSAL_TEXT[check.reason or 'no_token']}")
        return Processed(outcome="refused", inbox_status="ignored", detail=check.reason, case=label)

    async def _relay_staff_answer(self, item: InboxItem, mail: ParsedMail, case: CaseRecord) -> Processed:
        if not mail.text.strip():
            return Processed(outcome="staff_empty", inbox_status="ignored", case=case.id)
        ok, _message = await self.dialogue.cases.reply(case.id, who=mail.from_address or "staff", text=mail.text,
                                                       via="email", event_key=f"email:{item.id}")
        return Processed(outcome="relayed", inbox_status="done" if ok else "ignored", case=case.id,
                         detail=None if ok else "reply_not_relayed")

    async def _follow_case(self, case_id: str | None, thread_case: int | None, origin: dict[str, object]) -> int | None:
        """Keep the case pointing at the practice's latest message, so a staff answer given
        later lands at the end of the thread rather than under the first question."""
        if case_id is None:
            return thread_case
        number = parse_case_label(case_id)
        case = await self.store.get_case(number) if number is not None else None
        if case is not None and case.channel == "email" and case.origin != origin:
            await self.store.update_case(case.number, origin=origin)
        return number

