"""One conversation turn, in two pure steps:

    plan(state, text, today, kb) -> Plan      understand, merge facts, ask the core
    compose(plan, case_id, kb) -> Answer      put it in words (once a case id is known)

The async service (qopi_bot.service) loads the state, opens or continues the staff case a
Plan asks for, composes, and saves. Nothing here touches the database or the clock."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, Field

from qopi_bot.core import decide
from qopi_bot.core.kb import Knowledge
from qopi_bot.models import (
    Answer, ConversationState, Decision, Escalation, Facts, Intent, MissingFact, Outcome, Topic, Verdict,
)
from qopi_bot.privacy import looks_like_phi
from qopi_bot.understanding import Understanding, understand
from qopi_bot.understanding.reader import ESCALATIONS
from qopi_bot.wording import QUESTIONS, contact_line, facts_read, long_date, word

MAX_TEXT = 20_000  # longer messages are cut for understanding; nobody asks a question that long

INTENT_TOPIC: dict[Intent, Topic] = {
    Intent.ELIGIBILITY: Topic.ELIGIBILITY, Intent.SCORE_THRESHOLD: Topic.SCORE_THRESHOLD,
    Intent.VALIDITY: Topic.VALIDITY, Intent.APPLICATION: Topic.APPLICATION,
    Intent.MULTI_SITE: Topic.ENTITY, Intent.SUBSET: Topic.ENTITY, Intent.EXCEPTION: Topic.ENTITY,
    Intent.SAMPLING: Topic.SAMPLING, Intent.ATTESTATION: Topic.ATTESTATION, Intent.MODULES: Topic.MODULES,
    Intent.MEASURES: Topic.MEASURES, Intent.STANDARDS: Topic.STANDARDS, Intent.CONTACT: Topic.CONTACT,
    Intent.HUMAN: Topic.HUMAN,
}

Kind = Literal["decision", "greeting", "clarify", "choose", "out_of_scope", "error", "case_followup", "unpublished", "round_dates", "reminders"]

# How a question of each kind reads when the bot asks which one was meant.
ABOUT: dict[Intent, str] = {
    Intent.ELIGIBILITY: "whether your practice is eligible to apply",
    Intent.SCORE_THRESHOLD: "the score you need to pass (the threshold)",
    Intent.VALIDITY: "how long a score stays valid",
    Intent.APPLICATION: "how and when to apply",
    Intent.MULTI_SITE: "how a practice with several sites applies",
    Intent.SAMPLING: "the sampling and chart requirements",
    Intent.ATTESTATION: "the attestation form for charts left out of the pool",
    Intent.MODULES: "which modules to submit",
    Intent.MEASURES: "the certification measures",
    Intent.STANDARDS: "the Certification Standards",
}


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
    # The other questions of the same message (at most two more), each with its decision.
    also: list[tuple[Intent, Decision]] = Field(default_factory=list)
    choice: Intent | None = None  # with kind "choose": the other reading the bot asks about
    reminder: Literal["start", "stop"] | None = None  # the message asks to set or to stop reminders


THREAD_TOPICS = (Intent.ELIGIBILITY, Intent.VALIDITY, Intent.MULTI_SITE, Intent.APPLICATION, Intent.SCORE_THRESHOLD)


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


def _topic_for(intent: Intent, f: Facts) -> Topic:
    topic = INTENT_TOPIC[intent]
    if topic is Topic.ENTITY and intent is not Intent.MULTI_SITE and (
            f.score is not None or f.completed_round is not None
            or False in (f.pathway, f.sampling_followed, f.participated_round, f.abstraction_complete)):
        # "We scored 70%; can we certify just the infusion suite?": the eligibility order
        # applies, so a failed requirement is said before anything goes to staff.
        topic = Topic.ELIGIBILITY
    return topic


def _general_validity(d: Decision, u: Understanding) -> None:
    """"How long is a score good for?" asks the rule, not about a score of theirs: answer it
    without asking which round."""
    if d.topic is Topic.VALIDITY and d.outcome is Outcome.NEEDS_INFO and d.missing == [MissingFact.ROUND] and not u.own_score \
            and u.reminder != "start":  # a reminder needs the round: keep asking for it
        d.outcome, d.missing = Outcome.ANSWERED, []
    # "What proof do they want that our sites are integrated?" asks for the evidence, which the
    # answer gives whatever the sites' policies are.
    if d.topic is Topic.ENTITY and d.outcome is Outcome.NEEDS_INFO and u.asks_integration_evidence:
        d.outcome, d.missing = Outcome.ANSWERED, []
    # "Is certification awarded to the practice as a whole or site by site?" asks the rule, with
    # no sites of their own in it: the rule is the answer.
    if d.topic is Topic.ENTITY and d.outcome is Outcome.NEEDS_INFO and d.missing == [MissingFact.SAME_POLICIES] and (
            (u.facts.site_count is None and not re.search(r"\b(we|our|us|ours)\b", u.text))
            or (not re.search(r"\bwe (have|run|operate|own|are)\b.{0,40}\b(sites?|offices?|clinics?|locations?|campus\w*|satellite)\b", u.text)
                and re.search(r"\b(define|definition|defined|what counts as|what (is|does) (a|the) ['\"]?practice|what makes (\w+ ){0,4}count as (one|a single|an?) ['\"]?(practice|entity)|(awarded|granted|given|issued|goes|go|attach|attaches|belong|belongs) to)\b", u.text))
            or re.search(r"\b(sites?|locations?|clinics?|offices?)\b.{0,20}\bor\b.{0,20}\b(whole|entire) (practice|group|organization|network)\b", u.text)
            or re.search(r"\b(include|cover|list)\b.{0,40}\b(every|all|each)\b.{0,30}\b(oncologists?|physicians?|doctors?|sites?|locations?)\b", u.text)
            or re.search(r"\b(have to|need to|must|required to)\s+include\s+(our|the|that|this)\s+(\w+\s+){0,3}(site|clinic|office|location|campus|satellite)\b", u.text)
            or re.search(r"\b(include|cover|list)\b.{0,50}\b(docs|doctors|oncologists|oncs|physicians|sites?|clinics?|offices?)\b.{0,40}\b(too|as well|also)\b", u.text)
            or re.search(r"\b(every|all|each)\b.{0,40}\b(oncs?|oncologists?|physicians?|doctors?|sites?|locations?)\b.{0,40}\b(included|covered|listed|in the application|part of (the|our) application)\b", u.text)):
        d.outcome, d.missing = Outcome.ANSWERED, []


def _reminder_topic(intent: Intent | None, asks: bool, state: ConversationState) -> Intent:
    """A question asked with the request answers as asked; otherwise the thread's topic."""
    if asks and intent in (Intent.ELIGIBILITY, Intent.VALIDITY):
        return intent
    return state.topic if state.topic in (Intent.ELIGIBILITY, Intent.VALIDITY) else Intent.VALIDITY


def _thread_intent(state: ConversationState, u: Understanding, text: str) -> Intent | None:
    """What a message in a thread asks, given the thread's topic (None: the facts decide)."""
    intent = u.intent
    if state.case_id and state.topic in ESCALATIONS and intent is Intent.HUMAN and u.escalation is Intent.HUMAN \
            and not re.search(r"\b(call|phone|talk|speak|meet)\b", text):
        return state.topic  # "for whoever picks this up: ..." adds to the open case; staff are already on it
    if state.topic in THREAD_TOPICS and intent not in ESCALATIONS and _facts_given(u.facts) \
            and ((not u.asks and len(text.split()) <= 12) or not u.sure):
        # "it was fall 2024" or "one doc wasn't in the pool, does that change anything?" in a
        # thread: a short statement, or facts with no clear question of their own, continue the topic.
        return None
    if state.topic in THREAD_TOPICS and u.nothing_ours and not u.sure and len(text.split()) <= 10 and intent not in ESCALATIONS \
            and intent is not Intent.GREETING and not (intent is Intent.OUT_OF_SCOPE and u.sure) and u.reminder is None:
        return state.topic  # "wait, so that's a no?": a short follow-up asks about the thread's answer
    return intent


def _intent_and_kind(state: ConversationState, u: Understanding, intent: Intent | None, text: str,
                     kb: Knowledge) -> tuple[Intent, Kind]:
    """Which kind of answer the message gets: a decision, or one of the fixed replies."""
    if state.case_id and (not u.asks or (not u.sure and not u.direct_question and not any(line.rstrip().endswith("?") for line in text.splitlines()))) and not u.answered_pending \
            and intent not in ESCALATIONS and u.reminder is None:
        # More details for staff ("we're Harbor Oncology, 3 sites; let me know what else you need"):
        # they go onto the case unless the message asks a question of its own (a line ending in "?",
        # whatever signature follows it).
        return state.topic or Intent.HUMAN, "case_followup"
    if intent is None:
        carried = state.topic if state.topic not in (None, Intent.GREETING, Intent.OUT_OF_SCOPE) else None
        if u.answered_pending or _facts_given(u.facts) or u.problems:
            return carried or _intent_from_facts(u.facts) or Intent.ELIGIBILITY, "decision"
        if state.case_id:
            return state.topic or Intent.HUMAN, "case_followup"
        if u.unpublished_topic and any(f.id == u.unpublished_topic for f in kb.facts):
            # "When do we need to recertify?": no question the model knows, but a topic staff
            # answered in knowledge/facts.yaml, with its source.
            return Intent.APPLICATION, "unpublished"
        return (Intent.GREETING, "clarify") if u.in_domain else (Intent.OUT_OF_SCOPE, "out_of_scope")
    if intent is Intent.GREETING:
        return intent, "greeting"
    if intent is Intent.OUT_OF_SCOPE:
        return intent, "out_of_scope"
    return intent, "decision"


def _special_topics(u: Understanding, intent: Intent, kind: Kind, kb: Knowledge) -> tuple[Intent, Kind]:
    """Round dates and topics staff keep in knowledge/facts.yaml have answers of their own."""
    if kind != "decision":
        return intent, kind
    if u.asks_round_dates and intent in (Intent.APPLICATION, Intent.VALIDITY) and u.facts.completed_round is None:
        return Intent.APPLICATION, "round_dates"
    if u.unpublished_topic and u.facts.score is None and u.facts.completed_round is None and (
            intent in (Intent.APPLICATION, Intent.CONTACT, Intent.GREETING)
            or (not u.sure and intent not in ESCALATIONS)  # "do they do an on-site survey?": the model can only guess
            # "How long is the collection window?": a question about a topic staff answered in
            # knowledge/facts.yaml, in their own keywords, is theirs, however the model reads "how long".
            or (intent is Intent.VALIDITY and any(f.id == u.unpublished_topic for f in kb.facts))):
        return Intent.APPLICATION, "unpublished"
    return intent, kind


def _apply_problem(base: Plan, decision: Decision, u: Understanding) -> None:
    """A score or round that cannot be a fact (750%, a future round) is said, and asked again."""
    problem = next((p for p in u.problems), None)
    if problem is None:
        return
    base.problem = problem.detail
    wanted = MissingFact.ROUND if problem.kind == "future_round" else MissingFact.SCORE
    if decision.outcome is not Outcome.ESCALATED and wanted not in decision.missing:
        decision.outcome = Outcome.NEEDS_INFO
        decision.verdict = None
        decision.missing = [wanted, *decision.missing]


def _answer_the_others(base: Plan, intent: Intent, u: Understanding, f: Facts, today: dt.date, kb: Knowledge) -> None:
    """Every other question in the message gets its own answer, from the same facts."""
    answered = {_topic_for(intent, f)}
    for other in u.intents[1:]:
        if other in (Intent.GREETING, Intent.OUT_OF_SCOPE) or other in ESCALATIONS:
            continue
        topic = _topic_for(other, f)
        if topic in answered:
            continue
        answered.add(topic)
        other_decision = decide(topic, f, today, kb)
        _general_validity(other_decision, u)
        base.also.append((other, other_decision))


def plan(state: ConversationState, text: str, today: dt.date, kb: Knowledge) -> Plan:
    new_state = state.model_copy(deep=True)
    new_state.turns += 1
    if not text or not text.strip():
        return Plan(kind="error", intent=Intent.GREETING, today=today, state=new_state,
                    problem="The message was empty.")
    text = text[:MAX_TEXT]
    u = understand(text, today, kb, state.pending)
    intent, kind = _intent_and_kind(state, u, _thread_intent(state, u, text), text, kb)
    if u.reminder is not None and intent not in ESCALATIONS:
        # A reminder request is no question of its own: the thread's topic answers (validity by
        # default), and the service schedules or cancels the reminders (qopi_bot.reminders).
        intent = _reminder_topic(intent, u.asks, state)
        kind = "decision" if u.reminder == "start" else "reminders"
        new_state.reminders = u.reminder == "start"
        new_state.reminder_days = (u.reminder_days or state.reminder_days) if u.reminder == "start" else None
    intent, kind = _special_topics(u, intent, kind, kb)

    new_state.facts = state.facts.merged_with(u.facts)
    # A subset or exception request counts whatever else the message asks (contract order:
    # it outranks everything but a failed requirement).
    if intent is Intent.SUBSET or u.escalation is Intent.SUBSET:
        new_state.facts.wants_subset = True
    if intent is Intent.EXCEPTION or u.escalation is Intent.EXCEPTION:
        new_state.facts.wants_exception = True

    base = Plan(kind=kind, intent=intent, today=today, understanding=u, state=new_state,
                unpublished_topic=u.unpublished_topic, possible_phi=looks_like_phi(text),
                reminder=u.reminder if intent not in ESCALATIONS else None)
    if kind != "decision":
        if kind == "case_followup":
            base.to_case = True
        new_state.pending = None if kind in ("greeting", "out_of_scope") else new_state.pending
        return base

    f = new_state.facts
    decision = decide(_topic_for(intent, f), f, today, kb)
    if intent in ESCALATIONS and decision.verdict is Verdict.NOT_ELIGIBLE and decision.escalation is None:
        base.intent = intent = Intent.ELIGIBILITY  # a failed requirement answers before any staff decision
    base.decision = decision
    _apply_problem(base, decision, u)
    _general_validity(decision, u)
    if u.doubt is not None and decision.outcome is Outcome.ANSWERED and not base.problem:
        # Two readings would give two different answers and nothing said tells them apart.
        base.kind, base.choice = "choose", u.doubt
        new_state.topic, new_state.pending = intent, None
        return base
    _answer_the_others(base, intent, u, f, today, kb)

    new_state.topic = intent
    asking = [d for d in (decision, *(d for _, d in base.also)) if d.outcome is Outcome.NEEDS_INFO and d.missing]
    new_state.pending = asking[0].missing[0] if asking else None
    if decision.outcome is not Outcome.NEEDS_INFO and asking:
        new_state.topic = next(i for i, d in base.also if d is asking[0])
    escalation = decision.escalation
    if escalation is not None:
        if state.case_id:
            base.to_case = True
        else:
            base.open_case = escalation
    return base


def _case_sentence(case_id: str | None, kb: Knowledge, new: bool) -> str:
    if case_id is None:
        return f"Please contact the QCP team at {contact_line(kb)}."
    if new:
        return (f"I've opened case {case_id} with everything you've told me; QCP staff will follow up in this conversation. "
                f"You can also reach them at {contact_line(kb)} (mention {case_id}).")
    return f"I've added this to case {case_id}; QCP staff will see it and follow up here."


_ESCALATION_REASON = {
    "ENTITY-SUBSET": ("Certifying only part of a practice is decided by QCP staff: the program asks practices that want this "
                      "to contact the help desk before participating in QOPI."),
    "ENTITY-EXCEPTION": "Exceptions for special circumstances are decided by QCP staff.",
    "HUMAN-REQUEST": "Of course, I'll get a person from the QCP team.",
}

GREETING = ("Hello! I answer questions about QOPI Certification: eligibility and the {threshold} score threshold, how long a score "
            "stays valid, multi-site practices, sampling and attestation, and the application. For example: \"We scored 81% "
            "on the certification pathway in Fall 2025. Can we apply?\"")
THANKS = "You're welcome! Ask me any time about QOPI Certification eligibility, score validity or applying."
_THANKS = re.compile(r"\b(thanks|thank you|thx|ty|cheers|appreciate|that's all|thats all|that is all|all set|perfect|got it|great)\b")


def _round_dates(today: dt.date, kb: Knowledge) -> str:
    lines = []
    for r in kb.rounds:
        if r.closes is not None and r.closes < today:
            continue
        opens = long_date(r.opens) if r.opens else "not published yet"
        closes = long_date(r.closes) if r.closes else "not published yet"
        lines.append(f"{r.ref.label()}: opens {opens}, closes {closes}")
    listed = "; ".join(lines) if lines else "no upcoming rounds are in my calendar yet"
    return (f"Upcoming QOPI collection rounds: {listed}.\nI only give dates ASCO has published; for anything not "
            f"published yet, ask the QCP team at {contact_line(kb)}.")


def _unpublished_text(topic_id: str | None, kb: Knowledge) -> str:
    entry = next(e for e in kb.unpublished if e.id == topic_id)
    return entry.answer or (f"The published QOPI Certification text I work from doesn't give {entry.topic}, so I won't guess. "
                            f"The QCP team can tell you: {contact_line(kb)}.")


def _decision_lines(d: Decision, p: Plan, kb: Knowledge, case_id: str | None) -> list[str]:
    if d.outcome is Outcome.ESCALATED and d.escalation is not None:
        if d.verdict is Verdict.NOT_ELIGIBLE:
            # The verdict as things stand first, then the exception request that only staff can decide.
            return [*word(d, p.today, kb)[:2], _case_sentence(case_id, kb, new=p.open_case is not None),
                    "Whether an exception can be made for your circumstances is decided by QCP staff."]
        return [_case_sentence(case_id, kb, new=p.open_case is not None), _ESCALATION_REASON[d.escalation.reason]]
    lines = word(d, p.today, kb)
    if d.verdict is Verdict.NOT_ELIGIBLE and p.state.facts.wants_exception:
        # "72 after the flood - can they make an exception?": the score decides; say who hears such requests.
        lines.append(f"Requests about special circumstances go to the QCP team: {contact_line(kb)}.")
    if d.outcome is Outcome.NEEDS_INFO and d.missing:
        lines.append(QUESTIONS[d.missing[0]])
    return lines


def _merge_facts(primary: dict[str, object], extra: dict[str, object]) -> dict[str, object]:
    return {**extra, **primary}


def _greeting(kb: Knowledge) -> str:
    return GREETING.replace("{threshold}", f"{kb.score_threshold:g}%")


def compose(p: Plan, kb: Knowledge, case_id: str | None = None) -> Answer:
    d = p.decision
    notes: list[str] = []
    if p.possible_phi:
        notes.append("Please don't send patient details (names, dates of birth, record numbers); I don't need them to answer.")
    u = p.understanding
    if u is not None and u.mentions_attachment:
        notes.append("I can't open attachments (they are not read or stored, to keep patient data out); please type what I "
                     "need in your message, for example your score and the round it is from.")

    if p.kind == "error":
        return Answer(intent=p.intent, outcome=Outcome.ERROR, text=f"{p.problem} " + _greeting(kb).split("! ", 1)[1])
    if p.kind == "greeting":
        text = THANKS if u is not None and _THANKS.search(u.text) and not u.asks else _greeting(kb)
        return Answer(intent=Intent.GREETING, outcome=Outcome.ANSWERED, case_id=case_id, text="\n".join([text, *notes]))
    if p.kind == "clarify":
        return Answer(intent=Intent.GREETING, outcome=Outcome.NEEDS_INFO, case_id=case_id, text="\n".join([
            "I'm not sure what you're asking, and I'd rather ask than guess: could you rephrase?",
            "I can tell you whether your practice is eligible to apply, until when a score is valid, how multi-site "
            "practices apply, and what the application involves.", *notes]))
    if p.kind == "choose" and p.choice is not None:
        return Answer(intent=p.intent, outcome=Outcome.NEEDS_INFO, case_id=case_id, text="\n".join([
            f"I want to get this right: do you mean {ABOUT[p.intent]}, or {ABOUT[p.choice]}?", *notes]))
    if p.kind == "out_of_scope":
        return Answer(intent=Intent.OUT_OF_SCOPE, outcome=Outcome.OUT_OF_SCOPE, case_id=case_id, text=(
            "That's outside what I can help with: I only answer questions about ASCO's QOPI Certification Program.\n"
            f"For anything about QOPI Certification, the QCP team is at {contact_line(kb)}."))
    if p.kind == "case_followup":
        return Answer(intent=p.intent, outcome=Outcome.ESCALATED, case_id=case_id,
                      text="\n".join([_case_sentence(case_id, kb, new=False), *notes]))
    if p.kind == "unpublished":
        return Answer(intent=Intent.APPLICATION, outcome=Outcome.ANSWERED, case_id=case_id,
                      text="\n".join([_unpublished_text(p.unpublished_topic, kb), *notes]),
                      facts={"email": kb.contacts.email, "phone": kb.contacts.phone})
    if p.kind == "reminders":  # the service words it, with what it cancelled
        return Answer(intent=p.intent, outcome=Outcome.ANSWERED, case_id=case_id,
                      text="\n".join(["I've stopped the reminders for this conversation.", *notes]))
    if p.kind == "round_dates":
        return Answer(intent=Intent.APPLICATION, outcome=Outcome.ANSWERED, case_id=case_id, rules=["ELIG-ROUND"],
                      text="\n".join([_round_dates(p.today, kb), *notes]))

    assert d is not None
    lines: list[str] = []
    if p.problem:
        lines.append(p.problem[0].upper() + p.problem[1:] + ".")
    lines.extend(_decision_lines(d, p, kb, case_id))
    if u is not None and d.topic in (Topic.ELIGIBILITY, Topic.VALIDITY, Topic.ENTITY) and d.outcome is not Outcome.ESCALATED:
        seen = facts_read(u.facts)
        if seen:
            lines.append(seen)
    blocks = ["\n".join(lines)]
    rules, facts, trace = list(d.rules), d.facts.as_json(), list(d.trace)
    for _intent, other in p.also:
        blocks.append("\n".join(_decision_lines(other, p, kb, case_id)))
        rules += [r for r in other.rules if r not in rules]
        facts = _merge_facts(facts, other.facts.as_json())
        trace += other.trace
    if u is not None and u.unpublished_topic and p.intent is not Intent.APPLICATION and \
            any(i in (Intent.APPLICATION, Intent.VALIDITY) for i in u.intents[1:]):
        blocks.append(_unpublished_text(u.unpublished_topic, kb))
    if notes:
        blocks.append("\n".join(notes))
    asking = [x for x in (d, *(o for _, o in p.also)) if x.outcome is Outcome.NEEDS_INFO and x.missing]
    question = asking[0].missing[0] if asking else None
    verdict = d.verdict if d.topic is Topic.ELIGIBILITY or d.verdict is Verdict.NEEDS_STAFF_REVIEW else None
    if verdict is None:
        verdict = next((o.verdict for _, o in p.also if o.topic is Topic.ELIGIBILITY and o.verdict), None)
    return Answer(
        intent=p.intent, outcome=d.outcome, verdict=verdict, rules=rules, facts=facts,
        missing=[m.value for m in d.missing], case_id=case_id, text="\n\n".join(blocks), trace=trace, question=question,
    )
