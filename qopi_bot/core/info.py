"""Informational answers: which rules and program counts answer a general question."""

from __future__ import annotations

import datetime as dt

from qopi_bot.core.eligibility import meets_threshold, threshold_value, validity_facts
from qopi_bot.core.kb import MEASURE_COUNT, STANDARD_COUNT, Knowledge
from qopi_bot.core.rules import (
    APPLY_AFTER_REPORT, APPLY_STANDARDS, ELIG_ATTESTATION, ELIG_PATHWAY, ELIG_ROUND,
    ELIG_SAMPLING, ELIG_SCORE, MODULES_APPLICABLE, VALIDITY, cite, implements,
)
from qopi_bot.core.validity import score_validity
from qopi_bot.models import (
    ComputedFacts, Decision, Escalation, Facts, MissingFact, Outcome, RuleCheck, Topic, TraceStep,
)

_TOPIC_RULES: dict[Topic, list[str]] = {
    Topic.SCORE_THRESHOLD: [ELIG_SCORE],
    Topic.APPLICATION: [APPLY_AFTER_REPORT, APPLY_STANDARDS],
    Topic.SAMPLING: [ELIG_SAMPLING, ELIG_ATTESTATION],
    Topic.ATTESTATION: [ELIG_ATTESTATION],
    Topic.MODULES: [MODULES_APPLICABLE, ELIG_PATHWAY],
    Topic.MEASURES: [ELIG_PATHWAY, ELIG_SCORE],
    Topic.STANDARDS: [APPLY_STANDARDS],
    Topic.CONTACT: [],
    Topic.HUMAN: [],
}


@implements(MODULES_APPLICABLE)
def decide_info(topic: Topic, facts: Facts, today: dt.date, kb: Knowledge) -> Decision:
    rules = list(_TOPIC_RULES[topic])
    out = ComputedFacts()
    trace = [TraceStep(rule_id=r, check=RuleCheck.INFO, note=kb.rule(r).title) for r in rules]
    if topic is Topic.SCORE_THRESHOLD:
        out.threshold = threshold_value(kb)
        if facts.score is not None:
            out.score = facts.score
            out.meets_threshold = meets_threshold(facts.score, kb)
    elif topic is Topic.MEASURES:
        out.measure_count = MEASURE_COUNT
        out.threshold = threshold_value(kb)
    elif topic is Topic.STANDARDS:
        out.standard_count = STANDARD_COUNT
    elif topic is Topic.CONTACT:
        out.email, out.phone = kb.contacts.email, kb.contacts.phone
    elif topic is Topic.APPLICATION and facts.completed_round is not None:
        validity = score_validity(facts.completed_round, today, kb)
        validity_facts(out, validity)
        rules.append(VALIDITY)
    elif topic is Topic.APPLICATION:
        rules.append(ELIG_ROUND)
    escalation = None
    outcome = Outcome.ANSWERED
    if topic is Topic.HUMAN:
        outcome = Outcome.ESCALATED
        escalation = Escalation(reason="HUMAN-REQUEST", summary="asked to talk to a person")
        out.email, out.phone = kb.contacts.email, kb.contacts.phone
    return Decision(topic=topic, outcome=outcome, rules=rules, citations=cite(kb, rules),
                    escalation=escalation, facts=out, trace=trace)


def decide_validity(facts: Facts, today: dt.date, kb: Knowledge) -> Decision:
    if facts.completed_round is None:
        return Decision(
            topic=Topic.VALIDITY, outcome=Outcome.NEEDS_INFO, rules=[VALIDITY], citations=cite(kb, [VALIDITY]),
            missing=[MissingFact.ROUND],
            trace=[TraceStep(rule_id=VALIDITY, check=RuleCheck.UNKNOWN, note="the round the score comes from is not known")],
        )
    validity = score_validity(facts.completed_round, today, kb)
    out = ComputedFacts()
    validity_facts(out, validity)
    check = {True: RuleCheck.PASSED, False: RuleCheck.FAILED, None: RuleCheck.UNKNOWN}[validity.can_apply]
    rules = [VALIDITY]
    if facts.score is not None:
        out.score, out.meets_threshold, out.threshold = facts.score, meets_threshold(facts.score, kb), threshold_value(kb)
        rules.append(ELIG_SCORE)
    return Decision(
        topic=Topic.VALIDITY, outcome=Outcome.ANSWERED, rules=rules, citations=cite(kb, rules),
        next_steps=[APPLY_AFTER_REPORT, APPLY_STANDARDS] if validity.can_apply else [],
        facts=out,
        trace=[TraceStep(rule_id=VALIDITY, check=check,
                         note=f"valid until the close of {validity.valid_until_round.label()}: {validity.basis}")],
    )
