"""One conversation turn, in two pure steps:

    plan(state, text, today, kb) -> Plan      understand, merge facts, ask the core
    compose(plan, case_id, kb) -> Answer      put it in words (once a case id is known)

The async service (qopi_bot.service) loads the state, opens or continues the staff case a
Plan asks for, composes, and saves. Nothing here touches the database or the clock."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from qopi_bot.core import decide
from qopi_bot.core.kb import Knowledge
from qopi_bot.models import (
    Answer, Decision, Escalation, Facts, Intent, MissingFact, Outcome, Topic, Verdict,
)
from qopi_bot.privacy import looks_like_phi
from qopi_bot.understanding import Understanding, understand
from qopi_bot.wording import QUESTIONS, contact_line, long_date, word

MAX_TEXT = 20_000  # longer messages are cut for understanding; nobody asks a question that long

INTENT_TOPIC: dict[Intent, Topic] = {
    Intent.ELIGIBILITY: Topic.ELIGIBILITY, Intent.SCORE_THRESHOLD: Topic.SCORE_THRESHOLD,
    Intent.VALIDITY: Topic.VALIDITY, Intent.APPLICATION: Topic.APPLICATION,
    Intent.MULTI_SITE: Topic.ENTITY, Intent.SUBSET: Topic.ENTITY, Intent.EXCEPTION: Topic.ENTITY,
    Intent.SAMPLING: Topic.SAMPLING, Intent.ATTESTATION: Topic.ATTESTATION, Intent.MODULES: Topic.MODULES,
    Intent.MEASURES: Topic.MEASURES, Intent.STANDARDS: Topic.STANDARDS, Intent.CONTACT: Topic.CONTACT,
    Intent.HUMAN: Topic.HUMAN,
}

Kind = Literal["decision", "greeting", "clarify", "out_of_scope", "error", "case_followup", "unpublished", "round_dates"]


class ConversationState(BaseModel):
    """What a thread remembers between turns."""

    facts: Facts = Field(default_factory=Facts)
    topic: Intent | None = None
    pending: MissingFact | None = None
    case_id: str | None = None  # the staff case this thread has (any status: a new message reopens it)
    turns: int = 0


class Plan(BaseModel):
    kind: Kind
    intent: Intent
    today: dt.date
    decision: Decision | None = None
    understanding: Understanding | None = None
    open_case: Escalation | None = None  # open a new staff case for this reason
    to_case: bool = False  # add this message to the conversation's open case
    problem: str | None = None
    unpublished_topic: str | None = None
    possible_phi: bool = False
    state: ConversationState


def _facts_given(f: Facts) -> bool:
    return any(v is not None and v != [] for v in f.model_dump().values())


def _intent_from_facts(f: Facts) -> Intent | None:
    if f.score is not None or f.pathway is False or f.sampling_followed is False:
        return Intent.ELIGIBILITY
    if f.same_policies is not None or f.site_count is not None:
        return Intent.MULTI_SITE
    if f.completed_round is not None:
        return Intent.VALIDITY
    return None


def plan(state: ConversationState, text: str, today: dt.date, kb: Knowledge) -> Plan:
    new_state = state.model_copy(deep=True)
    new_state.turns += 1
    if not text or not text.strip():
        return Plan(kind="error", intent=Intent.GREETING, today=today, state=new_state,
                    problem="The message was empty.")
    text = text[:MAX_TEXT]
    u = understand(text, today, state.pending, [(e.id, e.keywords) for e in kb.unpublished])
    phi = looks_like_phi(text)
    intent = u.intent
    kind: Kind = "decision"
    if state.case_id and not u.asks and not u.answered_pending and intent not in (Intent.HUMAN, Intent.SUBSET, Intent.EXCEPTION):
        # More details for staff ("we're Harbor Oncology, 3 sites"): they go onto the case.
        intent, kind = state.topic or Intent.HUMAN, "case_followup"
    elif intent is None:
        carried = state.topic if state.topic not in (None, Intent.GREETING, Intent.OUT_OF_SCOPE) else None
        if u.answered_pending or _facts_given(u.facts) or u.problems:
            intent = carried or _intent_from_facts(u.facts) or Intent.ELIGIBILITY
        elif state.case_id:
            intent, kind = state.topic or Intent.HUMAN, "case_followup"
        elif u.in_domain:
            intent, kind = Intent.GREETING, "clarify"
        else:
            intent, kind = Intent.OUT_OF_SCOPE, "out_of_scope"
    elif intent is Intent.GREETING:
        kind = "greeting"
    elif intent is Intent.OUT_OF_SCOPE:
        kind = "out_of_scope"
    if kind == "decision" and u.asks_round_dates and intent in (Intent.APPLICATION, Intent.VALIDITY) and u.facts.completed_round is None:
        intent, kind = Intent.APPLICATION, "round_dates"
    if kind == "decision" and u.unpublished_topic and u.facts.score is None and u.facts.completed_round is None and (
            intent in (Intent.APPLICATION, Intent.CONTACT)
            or (intent is Intent.VALIDITY and u.unpublished_topic == "certification_term")):
        intent, kind = Intent.APPLICATION, "unpublished"

    new_state.facts = state.facts.merged_with(u.facts)
    # A subset or exception request counts whatever else the message asks (contract order:
    # it outranks everything but a failed requirement).
    if intent is Intent.SUBSET or u.scores.get(Intent.SUBSET.value, 0) >= 4:
        new_state.facts.wants_subset = True
    if intent is Intent.EXCEPTION or u.scores.get(Intent.EXCEPTION.value, 0) >= 4:
        new_state.facts.wants_exception = True

    base = Plan(kind=kind, intent=intent, today=today, understanding=u, state=new_state,
                unpublished_topic=u.unpublished_topic, possible_phi=phi)
    if kind != "decision":
        if kind == "case_followup":
            base.to_case = True
        new_state.pending = None if kind in ("greeting", "out_of_scope") else new_state.pending
        return base

    topic = INTENT_TOPIC[intent]
    f = new_state.facts
    if topic is Topic.ENTITY and intent is not Intent.MULTI_SITE and (
            f.score is not None or f.completed_round is not None
            or False in (f.pathway, f.sampling_followed, f.participated_round, f.abstraction_complete)):
        # "We scored 70%; can we certify just the infusion suite?": the eligibility order
        # applies, so a failed requirement is said before anything goes to staff.
        topic = Topic.ELIGIBILITY
    decision = decide(topic, f, today, kb)
    base.decision = decision
    problem = next((p for p in u.problems), None)
    if problem is not None:
        base.problem = problem.detail
        wanted = MissingFact.ROUND if problem.kind == "future_round" else MissingFact.SCORE
        if decision.outcome is not Outcome.ESCALATED and wanted not in decision.missing:
            decision.outcome = Outcome.NEEDS_INFO
            decision.verdict = None
            decision.missing = [wanted, *decision.missing]

    new_state.topic = intent
    new_state.pending = decision.missing[0] if decision.outcome is Outcome.NEEDS_INFO and decision.missing else None
    if decision.escalation is not None:
        if state.case_id:
            base.to_case = True
        else:
            base.open_case = decision.escalation
    return base


def _case_sentence(case_id: str | None, kb: Knowledge, new: bool) -> str:
    if case_id is None:
        return f"Please contact the QCP team at {contact_line(kb)}."
    if new:
        return (f"I've opened case {case_id} with everything you've told me, and QCP staff will follow up in this conversation. "
                f"You can also reach the team at {contact_line(kb)}; please mention {case_id}.")
    return f"I've added this to case {case_id}; QCP staff will see it and follow up here."


_ESCALATION_REASON = {
    "ENTITY-SUBSET": ("Certifying only part of a practice is a decision for QCP staff: the program asks practices that want to "
                      "certify a subset to contact the QOPI Certification help desk before participating in QOPI (ENTITY-SUBSET)."),
    "ENTITY-EXCEPTION": ("Exceptions are decided by QCP staff: certification normally covers the whole practice, and the QCP may "
                         "grant exceptions for special circumstances (ENTITY-EXCEPTION)."),
    "HUMAN-REQUEST": "Of course, I'll get a person from the QCP team.",
}

GREETING = ("Hello! I answer questions about QOPI Certification: eligibility and the 75% score threshold, how long a score "
            "stays valid, multi-site practices, sampling and attestation, and the application. For example: \"We scored 81% "
            "on the certification pathway in Fall 2025. Can we apply?\"")


def _round_dates(today: dt.date, kb: Knowledge) -> str:
    lines = []
    for r in kb.rounds:
        if r.closes is not None and r.closes < today:
            continue
        opens = long_date(r.opens) if r.opens else "not published yet"
        closes = long_date(r.closes) if r.closes else "not published yet"
        lines.append(f"{r.ref.label()}: opens {opens}, closes {closes}")
    listed = "; ".join(lines) if lines else "no upcoming rounds are in my calendar yet"
    return (f"QOPI runs two collection rounds a year, spring and fall. Upcoming rounds: {listed}. I only give dates ASCO has "
            f"published; for anything not published yet, ask the QCP team at {contact_line(kb)} (ELIG-ROUND).")


def compose(p: Plan, kb: Knowledge, case_id: str | None = None) -> Answer:
    d = p.decision
    notes: list[str] = []
    if p.possible_phi:
        notes.append("Please don't send patient details (names, dates of birth, record numbers); I don't need them to answer.")
    u = p.understanding
    if u is not None and u.mentions_attachment:
        notes.append("I can't open attachments (they are not read or stored, to keep patient data out); please type what I "
                     "need in your message, for example your score and the round it is from, and leave out patient details.")

    if p.kind == "error":
        return Answer(intent=p.intent, outcome=Outcome.ERROR, text=f"{p.problem} " + GREETING.split("! ", 1)[1])
    if p.kind == "greeting":
        return Answer(intent=Intent.GREETING, outcome=Outcome.ANSWERED, case_id=case_id, text=" ".join([GREETING, *notes]))
    if p.kind == "clarify":
        return Answer(intent=Intent.GREETING, outcome=Outcome.NEEDS_INFO, case_id=case_id, text=(
            "I'm not sure what you're asking, and I'd rather ask than guess. Could you rephrase? I can tell you whether your "
            "practice is eligible to apply, until when a score is valid, how multi-site practices apply, and what the "
            "application involves. " + " ".join(notes)).strip())
    if p.kind == "out_of_scope":
        return Answer(intent=Intent.OUT_OF_SCOPE, outcome=Outcome.OUT_OF_SCOPE, case_id=case_id, text=(
            "That's outside what I can help with: I only answer questions about ASCO's QOPI Certification Program. "
            f"For anything else about QOPI Certification, the QCP team is at {contact_line(kb)}."))
    if p.kind == "case_followup":
        return Answer(intent=p.intent, outcome=Outcome.ESCALATED, case_id=case_id,
                      text=" ".join([_case_sentence(case_id, kb, new=False), *notes]))
    if p.kind == "unpublished":
        entry = next(e for e in kb.unpublished if e.id == p.unpublished_topic)
        text = entry.answer or (f"The published QOPI Certification text I work from doesn't give {entry.topic}, so I won't guess. "
                                f"The QCP team can tell you: {contact_line(kb)}.")
        return Answer(intent=Intent.APPLICATION, outcome=Outcome.ANSWERED, case_id=case_id, text=text,
                      facts={"email": kb.contacts.email, "phone": kb.contacts.phone})
    if p.kind == "round_dates":
        return Answer(intent=Intent.APPLICATION, outcome=Outcome.ANSWERED, case_id=case_id, rules=["ELIG-ROUND"],
                      text=" ".join([_round_dates(p.today, kb), *notes]))

    assert d is not None
    parts: list[str] = []
    if p.problem:
        parts.append(p.problem[0].upper() + p.problem[1:] + ".")
    if d.outcome is Outcome.ESCALATED and d.escalation is not None:
        parts.append(_ESCALATION_REASON[d.escalation.reason])
        parts.append(_case_sentence(case_id, kb, new=p.open_case is not None))
    else:
        body = word(d, p.today, kb)
        if body:
            parts.append(body)
    question = d.missing[0] if d.outcome is Outcome.NEEDS_INFO and d.missing else None
    if question is not None:
        parts.append(QUESTIONS[question])
    parts.extend(notes)
    verdict = d.verdict if d.topic is Topic.ELIGIBILITY or d.verdict is Verdict.NEEDS_STAFF_REVIEW else None
    return Answer(
        intent=p.intent, outcome=d.outcome, verdict=verdict, rules=d.rules, facts=d.facts.as_json(),
        missing=[m.value for m in d.missing], case_id=case_id, text=" ".join(parts), trace=d.trace, question=question,
    )
