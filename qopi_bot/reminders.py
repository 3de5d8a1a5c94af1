"""Reminders before a score expires (contract section 10): what to schedule, and the words.

Pure, like the core: a score and round + today + knowledge -> a Schedule; a stored reminder
+ today + knowledge -> the text sent. The dates come only from the rounds calendar (VALIDITY:
valid until the close of the next same-season round); when that close date is not published,
one reminder waits for it instead of guessing."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qopi_bot.core.eligibility import meets_threshold
from qopi_bot.core.kb import Knowledge
from qopi_bot.core.validity import score_validity
from qopi_bot.models import RoundRef
from qopi_bot.wording import long_date, pct, threshold

Kind = Literal["before_close", "date_published"]
Status = Literal["scheduled", "waiting", "expired", "too_close", "below_threshold", "no_round"]
STOP_HINT = 'To stop these reminders, reply "stop the reminders".'


class Subject(BaseModel):
    """What the reminders are about; stored with each reminder row."""

    model_config = ConfigDict(defer_build=True)  # these three are built on first use, not at `ask`'s start

    score: float | None = None
    completed_round: RoundRef

    @property
    def target(self) -> RoundRef:
        return self.completed_round.next_same_season()

    def described(self) -> str:
        score = f"Overall Quality Score of {pct(self.score)}" if self.score is not None else "QOPI Certification score"
        return f"your {score} from the {self.completed_round.label()} round"


class Planned(BaseModel):
    model_config = ConfigDict(defer_build=True)
    kind: Kind
    days_before: int | None = None
    due: dt.date | None = None  # None: waits for the close date to be published


class Schedule(BaseModel):
    model_config = ConfigDict(defer_build=True)
    status: Status
    subject: Subject | None = None
    last_day: dt.date | None = None
    items: list[Planned] = Field(default_factory=list)


def lead_times(default: tuple[int, ...], asked: int | None) -> list[int]:
    """The default lead times, plus one the practice named ("a month before"), longest first."""
    return sorted({*default, *([asked] if asked else [])}, reverse=True)


def dated(last_day: dt.date, today: dt.date, days: list[int]) -> list[Planned]:
    """One reminder per lead time still ahead (a date already passed is not sent late)."""
    items = [Planned(kind="before_close", days_before=n, due=last_day - dt.timedelta(days=n)) for n in days]
    return [i for i in items if i.due is not None and i.due > today]


def schedule(score: float | None, completed: RoundRef | None, today: dt.date, kb: Knowledge,
             days: list[int]) -> Schedule:
    if completed is None:
        return Schedule(status="no_round")
    subject = Subject(score=score, completed_round=completed)
    if score is not None and not meets_threshold(score, kb):
        return Schedule(status="below_threshold", subject=subject)
    v = score_validity(completed, today, kb)
    if v.valid_until is None:
        if v.can_apply is False:
            return Schedule(status="expired", subject=subject)
        return Schedule(status="waiting", subject=subject, items=[Planned(kind="date_published")])
    if v.valid_until < today:
        return Schedule(status="expired", subject=subject, last_day=v.valid_until)
    items = dated(v.valid_until, today, days)
    return Schedule(status="scheduled" if items else "too_close", subject=subject, last_day=v.valid_until, items=items)


def _and(words: list[str]) -> str:
    return (", ".join(words[:-1]) + " and " + words[-1]) if len(words) > 1 else "".join(words)


def _days(days: list[int]) -> str:
    return _and([str(n) for n in days])


def confirmation(s: Schedule, days: list[int], kb: Knowledge, replaced: int = 0) -> str:
    """What the practice reads when it asks: what will be sent, and when."""
    if s.status == "no_round" or s.subject is None:
        return "I'll set up reminders before your score expires as soon as I know which round it is from."
    about = s.subject.described()
    target = s.subject.target.label()
    moved = " (this replaces the reminders I had set for your earlier score)" if replaced else ""
    if s.status == "below_threshold":
        return (f"I haven't set reminders: {about} is below the {threshold(kb)} threshold, so there is no score "
                "to use before it expires.")
    if s.status == "expired":
        when = f" on {long_date(s.last_day)}" if s.last_day else ""
        return f"I haven't set reminders: {about} could be used only until the {target} round closed{when}."
    if s.status == "too_close":
        assert s.last_day is not None
        return (f"Your last day to use {about} is {long_date(s.last_day)}, fewer than {min(days)} days away, so I "
                "haven't set reminders: apply now if your final QOPI Certification Report is in.")
    if s.status == "waiting":
        return (f"Reminders set{moved}: the {target} round's close date (the last day you can use {about}) "
                f"is not published yet. I'll write here when it is published, and then {_days(days)} days before "
                "that last day. Say \"stop the reminders\" any time to cancel them.")
    assert s.last_day is not None
    when = _and([f"{long_date(i.due)} ({i.days_before} days before)" for i in s.items if i.due])
    return (f"Reminders set{moved}: I'll write here on {when}, about {about}, which you can use until "
            f"{long_date(s.last_day)} (the close of the {target} round). "
            "Say \"stop the reminders\" any time to cancel them.")


def cancelled_text(count: int) -> str:
    if count == 0:
        return "There were no reminders left to stop in this conversation; nothing more will be sent."
    plural = "reminder" if count == 1 else "reminders"
    return f"Done: I've cancelled the {count} {plural} still to come. You won't hear from me about it again."


def reminder_text(subject: Subject, kind: Kind, days_before: int | None, today: dt.date, kb: Knowledge,
                  days: list[int]) -> str:
    """The reminder itself: the score and round, the last day, what to do next, how to stop."""
    v = score_validity(subject.completed_round, today, kb)
    target = subject.target.label()
    about = subject.described()
    if v.valid_until is None:  # the calendar lost the date since this was scheduled: never guess one
        head = (f"Reminder about {about}: it can be used until the close of the {target} round, whose date is "
                "not published in my calendar.")
    elif kind == "date_published":
        again = f" I'll remind you again {_days(days)} days before it." if days else ""
        head = (f"The {target} round's close date is now published: {long_date(v.valid_until)}. That is the last day "
                f"you can use {about}.{again}")
    else:
        left = (v.valid_until - today).days
        head = (f"Reminder: {about} can be used until {long_date(v.valid_until)} (the close of the {target} round), "
                f"{left} day{'s' if left != 1 else ''} from today. After that it lapses and you need a new score.")
    steps = (f"Next: you can apply once you have received your final QOPI Certification Report; when you apply and pay, "
             f"you affirm that your policies comply with the {kb.standard_count} Certification Standards. "
             f"Questions: {kb.contacts.email} or {kb.contacts.phone}.")
    return "\n\n".join([head, steps, STOP_HINT])
