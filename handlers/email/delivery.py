"""Deliver email outbox items through QOPI_SMTP_RELAY (aiosmtplib).

The shared Dispatcher (qopi_bot.outbox) owns retries, backoff and giving up; this module
renders one item and hands it to the relay, turning relay answers into DeliveryError:
4xx, refused connections and timeouts are temporary, 5xx for the message or recipient
permanent. Items are rendered at send time from the durable payload, with a Message-ID that
is fixed per item, so a retry sends the very same message. Relay connections are kept and
reused between items (a fresh one per message costs more than the send itself); the
dispatcher may send to different recipients at once, each send on a connection of its own."""

from __future__ import annotations

import datetime as dt
import time
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import aiosmtplib
from pydantic import ValidationError

from qopi_bot_handlers.email.compose import (
    WIRE_POLICY, ReplyPayload, build_message, relay_text, render_reply, reply_subject, stable_message_id, staff_case_subject,
    staff_case_text, thread_references,
)
from qopi_bot_handlers.email.trust import new_case_mail_id
from qopi_bot_handlers.email.wire import reply_wire
from qopi_bot.cases import summarize
from qopi_bot.core.kb import Knowledge
from qopi_bot.logs import get_logger
from qopi_bot.outbox import DeliveryError
from qopi_bot.records import OutboxItem
from qopi_bot.settings import Settings
from qopi_bot.store import Store

log = get_logger("qopi_bot_handlers.email.worker")
_AUTH_CODES = {530, 534, 535, 538}  # login problems: an operator fixes the settings, then it goes out
_IDLE_RECONNECT_SECONDS = 30.0


class EmailDelivery:
    def __init__(self, store: Store, settings: Settings, kb: Knowledge) -> None:
        self.store = store
        self.settings = settings
        self.kb = kb
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # open connections not in use, with their last use
        self._busy: set[aiosmtplib.SMTP] = set()

    async def send(self, item: OutboxItem) -> dict[str, Any] | None:
        fast = self._reply_wire(item) if item.kind == "reply" else None
        if fast is not None:  # an ordinary answer: its bytes written directly (qopi_bot_handlers.email.wire)
            wire, recipient, message_id = fast
        else:
            msg, recipient = await self._render(item)
            # Flattened here, not by aiosmtplib (78-column folding): see email_compose.WIRE_POLICY.
            wire, message_id = msg.as_bytes(policy=WIRE_POLICY), msg["Message-ID"]
        await self._transmit(wire, recipient)
        return {"message_id": message_id}

    def _reply_wire(self, item: OutboxItem) -> tuple[bytes, str, str] | None:
        try:
            p = ReplyPayload.model_validate(item.payload)
        except ValidationError:
            return None  # _render reports it
        wire = reply_wire(help_address=self.settings.help_address, to=p.to, to_name=p.to_name, subject=p.subject,
                          text=p.text, message_id=p.message_id, in_reply_to=p.in_reply_to, references=p.references,
                          auto_submitted="auto-replied", date=format_datetime(dt.datetime.now(dt.UTC)))
        return (wire, p.to, p.message_id) if wire is not None else None

    async def close(self) -> None:
        clients = [c for c, _ in self._idle] + list(self._busy)
        self._idle, self._busy = [], set()
        for client in clients:
            await self._drop(client)

    # ------------------------------------------------------------------ rendering
    async def _render(self, item: OutboxItem) -> tuple[EmailMessage, str]:
        try:
            if item.kind == "reply":
                payload = ReplyPayload.model_validate(item.payload)
                return render_reply(payload, self.settings.help_address), payload.to
            if item.kind == "staff_case":
                return await self._staff_case(item)
            if item.kind == "relay":
                return await self._relay(item)
            if item.kind == "reminder":
                return await self._reminder(item)
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            # A payload we cannot render now will not render later either.
            raise DeliveryError(f"cannot render {item.kind}: {type(exc).__name__}", permanent=True) from exc
        raise DeliveryError(f"unknown email outbox kind {item.kind!r}", permanent=True)

    async def _staff_case(self, item: OutboxItem) -> tuple[EmailMessage, str]:
        case = await self.store.get_case(int(item.payload["case"]))
        if case is None:
            raise DeliveryError(f"case {item.payload['case']} does not exist", permanent=True)
        to = str(item.payload.get("to") or self.settings.staff_email)
        summary = summarize(case)
        # The id carries the case's secret token (qopi_bot_handlers.email.trust): only a reply that
        # names it is relayed. Recorded before sending, so even a very quick reply finds it,
        # and reused on every retry.
        message_id = await self.store.set_case_mail_id_once(
            case.number, new_case_mail_id(case.number, self.settings.help_address))
        await self.store.link_message_id(message_id, case.conversation_key, case.number)
        contact = case.origin.get("address") if case.channel == "email" else None
        msg = build_message(help_address=self.settings.help_address, to=to, to_name="QCP staff",
                            subject=staff_case_subject(summary), text=staff_case_text(summary, contact, self.kb.contacts),
                            message_id=message_id, in_reply_to=None, references=[], auto_submitted="auto-generated")
        return msg, to

    async def _relay(self, item: OutboxItem) -> tuple[EmailMessage, str]:
        case = await self.store.get_case(int(item.payload["case"]))
        if case is None:
            raise DeliveryError(f"case {item.payload['case']} does not exist", permanent=True)
        origin = case.origin
        to = str(item.payload["to"])
        parent = origin.get("message_id")
        message_id = stable_message_id("relay", item.dedupe_key, self.settings.help_address)
        conversation_key = str(item.payload.get("conversation_key") or case.conversation_key)
        # The practice's reply to the relayed answer must continue its own conversation.
        await self.store.link_message_id(message_id, conversation_key, case.number)
        msg = build_message(help_address=self.settings.help_address, to=to, to_name=str(origin.get("name") or ""),
                            subject=reply_subject(origin.get("subject")), text=relay_text(str(item.payload["text"]), self.kb.contacts),
                            message_id=message_id, in_reply_to=parent,
                            references=thread_references(list(origin.get("references") or []), [], parent),
                            auto_submitted="auto-replied")
        return msg, to

    async def _reminder(self, item: OutboxItem) -> tuple[EmailMessage, str]:
        """A reminder in the practice's own thread. Generated, not a reply to a message just
        received: Auto-Submitted: auto-generated. A reply to it continues the conversation."""
        p = item.payload
        to = str(p["to"])
        parent = p.get("in_reply_to")
        message_id = stable_message_id("reminder", item.dedupe_key, self.settings.help_address)
        await self.store.link_message_id(message_id, str(p["conversation_key"]))
        msg = build_message(help_address=self.settings.help_address, to=to, to_name=str(p.get("to_name") or ""),
                            subject=reply_subject(p.get("subject")), text=relay_text(str(p["text"]), self.kb.contacts),
                            message_id=message_id, in_reply_to=parent,
                            references=thread_references(list(p.get("references") or []), [], parent),
                            auto_submitted="auto-generated")
        return msg, to

    # ------------------------------------------------------------------ the wire
    async def _connect(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, last_used = self._idle.pop()
            if client.is_connected and time.monotonic() - last_used < _IDLE_RECONNECT_SECONDS:
                self._busy.add(client)
                return client
            await self._drop(client)
        host, port = self.settings.smtp_relay_host_port
        s = self.settings
        client = aiosmtplib.SMTP(hostname=host, port=port, timeout=15, use_tls=port == 465,
                                 start_tls=bool(s.smtp_starttls) and port != 465,
                                 username=s.smtp_username or None, password=s.smtp_password or None,
                                 local_hostname=self.settings.help_address.rpartition("@")[2] or None)
        await client.connect()
        self._busy.add(client)
        return client

    def _release(self, client: aiosmtplib.SMTP) -> None:
        self._busy.discard(client)
        self._idle.append((client, time.monotonic()))

    async def _drop(self, client: aiosmtplib.SMTP | None) -> None:
        if client is None:
            return
        self._busy.discard(client)
        if client.is_connected:
            try:
                await client.quit(timeout=2)
            except Exception:
                client.close()

    async def _transmit(self, wire: bytes, recipient: str) -> None:
        sender = self.settings.help_address
        for attempt in (1, 2):
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._connect()
                await client.sendmail(sender, [recipient], wire)
                self._release(client)
                return
            except aiosmtplib.SMTPServerDisconnected as exc:
                await self._drop(client)
                if attempt == 1:  # a reused connection the relay had closed: one fresh try
                    continue
                raise DeliveryError(f"relay disconnected: {exc}") from exc
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await self._drop(client)
                codes = [r.code for r in exc.recipients]
                raise DeliveryError(f"relay refused the recipient ({codes})",
                                    permanent=all(500 <= c < 600 for c in codes)) from exc
            except aiosmtplib.SMTPResponseException as exc:
                await self._drop(client)
                permanent = 500 <= exc.code < 600 and exc.code not in _AUTH_CODES
                raise DeliveryError(f"relay answered {exc.code} {exc.message[:120]}", permanent=permanent) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._drop(client)
                raise DeliveryError(f"relay unreachable: {type(exc).__name__}") from exc
            except BaseException:
                if client is not None:  # cancelled mid-send: the connection is in an unknown state
                    self._busy.discard(client)
                    client.close()
                raise
        raise AssertionError("unreachable")
