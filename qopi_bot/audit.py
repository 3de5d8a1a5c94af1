"""The answer log (contract section 9): what the bot said, to whom, under which knowledge, and
how sure it was of what it read.

One row per answer. The practice's words are scrubbed of patient details (as in the logs)
and cut short: staff need to see what was asked, not a chart. The row is written in the
same transaction as the turn it records (Store.save_turn), so a turn and its record exist
together or not at all."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qopi_bot.clock import utcnow
from qopi_bot.privacy import scrub

if TYPE_CHECKING:

    from qopi_bot.core.kb import Knowledge
    from qopi_bot.dialogue import Plan
    from qopi_bot.models import Answer
    from qopi_bot.records import IncomingMessage

# The intent model's score for the main question: about 1.0 for a clear, familiar message.
# Below DOUBTFUL the model recognised nothing it was taught (the answer is a guess, or the
# bot asked); below LOW it read a question but not surely. Both are worth a new example.
DOUBTFUL = 0.2
LOW_CONFIDENCE = 0.5
QUESTION_CHARS = 500

Understood = Literal["clear", "low", "not_understood"]


class AnswerRecord(BaseModel):
    model_config = ConfigDict(defer_build=True)  # built on first use: a one-off `ask` logs none

    created_at: dt.datetime
    channel: str
    conversation_key: str
    question: str
    intent: str | None
    outcome: str
    verdict: str | None
    rules: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
    case_id: str | None = None
    knowledge_version: str
    confidence: float | None = None
    understood: Understood


def understood(p: Plan) -> tuple[Understood, float | None]:
    """How well the message was read: not at all (the bot asked to rephrase, asked which of
    two readings, or recognised nothing), with a low model score, or clearly."""
    u = p.understanding
    confidence = round(float(u.confidence), 3) if u is not None and u.intent is not None else None
    if p.kind in ("clarify", "choose") or (p.kind == "out_of_scope" and u is not None and u.intent is None):
        return "not_understood", confidence
    if confidence is None or p.kind in ("error", "case_followup", "unpublished", "round_dates"):
        # A reply to the bot's question, more details for a case, or a topic recognised by its
        # words (knowledge/answers.yaml, facts.yaml) whatever the model's score.
        return "clear", confidence
    if confidence < DOUBTFUL:
        return "not_understood", confidence
    return ("low" if confidence < LOW_CONFIDENCE else "clear"), confidence


def answer_record(msg: IncomingMessage, answer: Answer, p: Plan, kb: Knowledge) -> AnswerRecord:
    how, confidence = understood(p)
    return AnswerRecord(
        created_at=utcnow(), channel=msg.channel, conversation_key=msg.conversation_key,
        question=scrub(msg.text.strip())[:QUESTION_CHARS], intent=answer.intent.value if answer.intent else None,
        outcome=answer.outcome.value, verdict=answer.verdict.value if answer.verdict else None,
        rules=list(answer.rules), facts=_scrubbed(answer.facts), case_id=answer.case_id,
        knowledge_version=kb.version, confidence=confidence, understood=how,
    )


def _scrubbed(facts: dict[str, Any]) -> dict[str, Any]:
    # Computed facts are the bot's own (threshold, rounds, dates); strings are scrubbed anyway,
    # except the QCP team's published contact details, which are not patient data.
    keep = {"email", "phone", "valid_until"}
    return {k: (scrub(v) if isinstance(v, str) and k not in keep else v) for k, v in facts.items()}


def answer_row(record: AnswerRecord) -> dict[str, Any]:
    """One answer-log row as INSERT parameters, to run in the turn's own transaction."""
    values = record.model_dump(mode="python")
    values["facts"] = record.model_dump(mode="json")["facts"]  # dates as text in the JSON column
    return values


def answer_insert(record: AnswerRecord) -> Any:
    """The INSERT of one answer-log row."""
    from sqlalchemy import insert

    from qopi_bot.schema import answer_log

    return insert(answer_log).values(**answer_row(record))
