"""Staff escalation: open, claim, reply, resolve; who may act; what reaches whom.

Every outward effect goes through the outbox (rendered and delivered by the channel
processes), so a case opened from the CLI, Slack or email reaches staff the same way, and a
staff answer given in Slack, by email or from the CLI reaches the practice where it asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from qopi_bot.privacy import scrub
from qopi_bot.records import CaseRecord, IncomingMessage, case_label, parse_case_label
from qopi_bot.clock import utcnow

if TYPE_CHECKING:  # the store (and SQLAlchemy) loads only when a case is really stored
    from qopi_bot.settings import Settings  # annotations only: `ask` never builds the pydantic-settings class
    from qopi_bot.store import Store

REASON_LABEL = {
    "ENTITY-SUBSET": "certify only part of the practice (ENTITY-SUBSET): a staff decision",
    "ENTITY-EXCEPTION": "asks for an exception for special circumstances (ENTITY-EXCEPTION): a staff decision",
    "HUMAN-REQUEST": "asked to talk to a person",
}

CHANNEL_LABEL = {"slack": "Slack", "email": "email", "cli": "the command line"}


class CaseSummary(BaseModel):
    """What staff see about a case. Practice text is scrubbed of patient identifiers."""

    model_config = ConfigDict(defer_build=True)  # built on first use: a one-off `ask` shows none

    id: str
    status: str
    reason: str
    why: str
    channel: str
    question: str
    facts: dict[str, Any]
    decision_text: str
    rules: list[str]
    claimed_by: str | None
    recent: list[str]


def summarize(case: CaseRecord) -> CaseSummary:
    recent = [f"{e.author or e.kind}: {scrub(e.text)}" for e in case.events
              if e.kind in ("practice_message", "staff_reply") and e.text][-5:]
    return CaseSummary(
        id=case.id, status=case.status, reason=case.reason, why=REASON_LABEL.get(case.reason, case.reason),
        channel=CHANNEL_LABEL.get(case.channel, case.channel), question=scrub(case.question),
        facts={k: v for k, v in case.facts.items() if v not in (None, [], "")},
        # The bot's own words quote no practice text, so they are shown as written (scrubbing
        # them would turn the QCP team's contact details into "[email]").
        decision_text=str(case.decision.get("text", "")), rules=list(case.decision.get("rules", [])),
        claimed_by=case.claimed_by, recent=recent,
    )


def is_staff_user(settings: Settings, user_id: str | None) -> bool:
    return bool(user_id) and user_id in settings.staff_user_ids


def is_staff_address(settings: Settings, address: str | None) -> bool:
    return bool(address) and address.strip().lower() in settings.staff_email_addresses


class CaseService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def open(self, msg: IncomingMessage, reason: str, facts: dict[str, Any], decision: dict[str, Any]) -> CaseRecord:
        case = await self.store.insert_case(conversation_key=msg.conversation_key, reason=reason, channel=msg.channel,
                                            origin=msg.origin, question=msg.text, facts=facts, decision=decision)
        await self.store.add_case_event(case.number, "practice_message", msg.user or "practice", msg.text)
        if self.settings.staff_channel and self.settings.slack_bot_token:
            await self.store.outbox_put("slack", "staff_case", {"case": case.number, "channel": self.settings.staff_channel},
                                        dedupe_key=f"staff-case-slack:{case.number}")
        if self.settings.staff_email:
            await self.store.outbox_put("email", "staff_case", {"case": case.number, "to": self.settings.staff_email},
                                        dedupe_key=f"staff-case-email:{case.number}", recipient=self.settings.staff_email.lower())
        return case

    async def practice_message(self, case_number: int, msg: IncomingMessage, event_key: str) -> None:
        """A later message from the practice: onto the case, reopening it if it was resolved."""
        case = await self.store.get_case(case_number)
        if case is None:
            return
        await self.store.add_case_event(case_number, "practice_message", msg.user or "practice", msg.text)
        if case.status == "resolved" and await self.store.transition_case(case_number, ["resolved"], status="open",
                                                                           resolved_at=None):
            await self.store.add_case_event(case_number, "reopened", "practice", None)
        await self.store.outbox_put("slack", "staff_note", {"case": case_number, "text": scrub(msg.text)},
                                    dedupe_key=f"staff-note:{case_number}:{event_key}")

    async def claim(self, label: str, who: str) -> tuple[bool, str]:
        number = parse_case_label(label)
        if number is None:
            return False, f"{label} is not a case id (they look like QCP-0042)."
        if await self.store.transition_case(number, ["open"], status="claimed", claimed_by=who, claimed_at=utcnow()):
            await self.store.add_case_event(number, "claimed", who, None)
            await self._refresh_staff_message(number)
            return True, f"{case_label(number)} is now claimed by {who}."
        case = await self.store.get_case(number)
        if case is None:
            return False, f"There is no case {case_label(number)}."
        return False, f"{case.id} is {case.status}" + (f" (claimed by {case.claimed_by})." if case.claimed_by else ".")

    async def resolve(self, label: str, who: str) -> tuple[bool, str]:
        number = parse_case_label(label)
        if number is None:
            return False, f"{label} is not a case id (they look like QCP-0042)."
        if await self.store.transition_case(number, ["open", "claimed"], status="resolved", resolved_at=utcnow()):
            await self.store.add_case_event(number, "resolved", who, None)
            await self._refresh_staff_message(number)
            return True, f"{case_label(number)} is resolved."
        case = await self.store.get_case(number)
        if case is None:
            return False, f"There is no case {case_label(number)}."
        return False, f"{case.id} is already {case.status}."

    async def reply(self, label: str, who: str, text: str, via: Literal["slack", "email", "cli", "console"], event_key: str) -> tuple[bool, str]:
        """Relay a staff answer to the practice, in the thread where it asked."""
        number = parse_case_label(label)
        case = await self.store.get_case(number) if number is not None else None
        if case is None:
            return False, f"There is no case {label}."
        text = text.strip()
        if not text:
            return False, "The reply is empty."
        await self.store.add_case_event(case.number, "staff_reply", who, text)
        await self.store.add_message(case.conversation_key, "staff", text, author=who)
        body = f"From the QCP team ({case.id}):\n{text}"
        origin = case.origin
        if case.channel == "slack" and origin.get("channel"):
            await self.store.outbox_put("slack", "relay", {"channel": origin["channel"], "thread_ts": origin.get("thread_ts"),
                                                           "text": body, "case": case.number},
                                        dedupe_key=f"relay:{case.number}:{event_key}")
        elif case.channel == "email" and origin.get("address"):
            await self.store.outbox_put("email", "relay", {"case": case.number, "to": origin["address"], "text": body,
                                                           "conversation_key": case.conversation_key},
                                        dedupe_key=f"relay:{case.number}:{event_key}", recipient=origin["address"].lower())
        else:
            return True, f"Reply stored on {case.id} (the practice asked from {CHANNEL_LABEL.get(case.channel)}, so there is no thread to send it to)."
        if via != "slack":
            await self.store.outbox_put("slack", "staff_note", {"case": case.number, "text": f"{who} replied ({via}): {text}"},
                                        dedupe_key=f"staff-note:{case.number}:reply:{event_key}")
        return True, f"Reply sent to the practice on {case.id}."

    async def _refresh_staff_message(self, number: int) -> None:
        await self.store.outbox_put("slack", "staff_case_update", {"case": number},
                                    dedupe_key=f"staff-case-update:{number}:{utcnow().isoformat()}")
