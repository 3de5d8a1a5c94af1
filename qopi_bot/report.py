"""Reading the answer log: filtered rows (console, CSV) and the summary `qopi-bot report`
prints (contract section 9). Both read the same rows through `AnswerFilter`, so the report's
counts and the CSV export agree by construction."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qopi_bot.audit import AnswerRecord
from qopi_bot.schema import answer_log, cases

CASE_STATUSES = ("open", "claimed", "resolved")


class AnswerFilter(BaseModel):
    """What the console's filter form and `--since` narrow the log to. Dates are UTC days."""

    since: dt.date | None = None
    until: dt.date | None = None  # inclusive
    channel: str | None = None
    intent: str | None = None
    outcome: str | None = None
    understood: str | None = None
    needs_teaching: bool = False  # not understood, or understood with low confidence
    text: str | None = None  # a word in the (scrubbed) question

    def where(self) -> Any:
        c = answer_log.c
        parts: list[Any] = []
        if self.since:
            parts.append(c.created_at >= _start(self.since))
        if self.until:
            parts.append(c.created_at < _start(self.until + dt.timedelta(days=1)))
        for col, value in ((c.channel, self.channel), (c.intent, self.intent), (c.outcome, self.outcome),
                           (c.understood, self.understood)):
            if value:
                parts.append(col == value)
        if self.needs_teaching:
            parts.append(c.understood.in_(("not_understood", "low")))
        if self.text:
            parts.append(func.lower(c.question).contains(self.text.lower(), autoescape=True))
        return and_(True, *parts)


def _start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


class AnswerRow(AnswerRecord):
    """A stored answer-log record, with its row id."""

    id: int


async def fetch_answers(engine: AsyncEngine, flt: AnswerFilter, limit: int | None = None,
                        newest_first: bool = True) -> list[AnswerRow]:
    query = select(answer_log).where(flt.where())
    query = query.order_by(answer_log.c.id.desc() if newest_first else answer_log.c.id)
    if limit is not None:
        query = query.limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    out = []
    for r in rows:
        created = r["created_at"]
        if created.tzinfo is None:  # SQLite hands back naive datetimes; we store UTC
            created = created.replace(tzinfo=dt.UTC)
        out.append(AnswerRow(**{**dict(r), "created_at": created}))
    return out


class Report(BaseModel):
    since: dt.date | None = None
    questions: int = 0
    by_intent: dict[str, int] = Field(default_factory=dict)
    by_outcome: dict[str, int] = Field(default_factory=dict)
    by_verdict: dict[str, int] = Field(default_factory=dict)
    escalations: int = 0
    escalation_rate: float = 0.0
    not_understood: int = 0
    low_confidence: int = 0
    cases: dict[str, int] = Field(default_factory=dict)
    cases_opened: int = 0
    knowledge_versions: dict[str, int] = Field(default_factory=dict)


async def build_report(engine: AsyncEngine, since: dt.date | None = None) -> Report:
    """The summary over the answer log since a day (UTC), and the cases by status now."""
    flt = AnswerFilter(since=since)
    c = answer_log.c
    async with engine.connect() as conn:
        rows = (await conn.execute(select(c.intent, c.outcome, c.verdict, c.understood, c.knowledge_version)
                                   .where(flt.where()))).all()
        by_status = dict((await conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status))).all())
        opened_q = select(func.count()).select_from(cases)
        if since:
            opened_q = opened_q.where(cases.c.created_at >= _start(since))
        opened = int((await conn.execute(opened_q)).scalar_one())
    questions = len(rows)
    by_outcome = Counter(r.outcome for r in rows)
    escalations = by_outcome.get("escalated", 0)
    return Report(
        since=since, questions=questions,
        by_intent=_sorted(Counter(r.intent or "none" for r in rows)),
        by_outcome=_sorted(by_outcome),
        by_verdict=_sorted(Counter(r.verdict for r in rows if r.verdict)),
        escalations=escalations, escalation_rate=round(escalations / questions, 4) if questions else 0.0,
        not_understood=sum(1 for r in rows if r.understood == "not_understood"),
        low_confidence=sum(1 for r in rows if r.understood == "low"),
        cases={s: int(by_status.get(s, 0)) for s in CASE_STATUSES}, cases_opened=opened,
        knowledge_versions=_sorted(Counter(r.knowledge_version for r in rows)),
    )


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def render_text(r: Report) -> str:
    def block(title: str, counts: dict[str, int]) -> list[str]:
        if not counts:
            return [f"{title}: none"]
        width = max(len(k) for k in counts)
        return [f"{title}:"] + [f"  {k.ljust(width)}  {v}" for k, v in counts.items()]

    head = f"Answers since {r.since.isoformat()}" if r.since else "All answers"
    lines = [f"{head}: {r.questions} questions",
             f"Escalated to staff: {r.escalations} ({r.escalation_rate:.1%})",
             f"Not understood: {r.not_understood}; understood with low confidence: {r.low_confidence}"]
    lines += block("By intent", r.by_intent) + block("By outcome", r.by_outcome) + block("By verdict", r.by_verdict)
    lines.append(f"Cases opened{' since ' + r.since.isoformat() if r.since else ''}: {r.cases_opened}; now "
                 + ", ".join(f"{k} {v}" for k, v in r.cases.items()))
    return "\n".join(lines)
