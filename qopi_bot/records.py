"""Pydantic records the store hands out: cases, inbox and outbox items, inbound messages."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["cli", "slack", "email"]


def case_label(number: int) -> str:
    return f"QCP-{number:04d}"


def parse_case_label(label: str) -> int | None:
    label = label.strip().upper()
    if label.startswith("QCP-"):
        label = label[4:]
    return int(label) if label.isdigit() else None


# Stored records: a one-off `ask` reads none, so their validators are built on first use.
_DEFERRED = ConfigDict(defer_build=True)


class CaseEvent(BaseModel):
    model_config = _DEFERRED
    kind: str  # opened | practice_message | staff_reply | claimed | resolved | reopened | bot_answer
    author: str | None
    text: str | None
    created_at: dt.datetime | None


class CaseRecord(BaseModel):
    model_config = _DEFERRED
    number: int
    conversation_key: str
    status: Literal["open", "claimed", "resolved"]
    reason: str
    channel: Channel
    origin: dict[str, Any]
    question: str
    facts: dict[str, Any]
    decision: dict[str, Any]
    claimed_by: str | None = None
    claimed_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    staff_slack_channel: str | None = None
    staff_slack_ts: str | None = None
    staff_email_message_id: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    events: list[CaseEvent] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return case_label(self.number)

    def summary_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "reason": self.reason, "channel": self.channel,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "claimed_by": self.claimed_by, "question": self.question,
        }


class InboxItem(BaseModel):
    model_config = _DEFERRED
    id: int
    source: str
    external_id: str
    payload: bytes
    meta: dict[str, Any]
    attempts: int


class OutboxItem(BaseModel):
    model_config = _DEFERRED
    id: int
    channel: str
    kind: str
    recipient: str | None
    payload: dict[str, Any]
    dedupe_key: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime | None
    sent_at: dt.datetime | None


class IncomingMessage(BaseModel):
    """One practice message, from any channel, as the dialogue service sees it."""

    conversation_key: str
    channel: Channel
    text: str
    today: dt.date
    user: str | None = None
    # Where the practice waits for staff: slack {channel, thread_ts, user} or email
    # {address, subject, message_id, references}.
    origin: dict[str, Any] = Field(default_factory=dict)
