"""Eligibility to apply, decided in the contract's order (contract.md section 2):
1. a known fact that fails a requirement -> not_eligible (every failed rule listed); when
   circumstances kept the practice from a requirement (a round, abstraction, the pathway,
   sampling) and it asks for an exception, the verdict stands and the request still goes to
   staff (ENTITY-EXCEPTION). A score under the threshold is the measure itself: answered only;
2. subset / exception -> needs_staff_review (escalated);
3. score unknown -> needs_info (score);
4. otherwise eligible, or eligible_with_conditions (attestation, report not yet received)."""

from __future__ import annotations

import datetime as dt

from qopi_bot.core.kb import Knowledge
from qopi_bot.core.rules import (
    APPLY_AFTER_REPORT, APPLY_STANDARDS, ELIG_ABSTRACTION, ELIG_ATTESTATION, ELIG_PATHWAY,
    ELIG_ROUND, ELIG_SAMPLING, ELIG_SCORE, ENTITY_EXCEPTION, ENTITY_SUBSET,
    VALIDITY, cite, implements,
)
from qopi_bot.core.validity import ValidityResult, score_validity
from qopi_bot.models import (
    ComputedFacts, Decision, Escalation, Facts, MissingFact, Outcome, RuleCheck, Topic,
    TraceStep, Verdict,
)

# What would turn each failure around, in the program's terms.
WOULD_CHANGE: dict[str, str] = {
    ELIG_ROUND: "taking part in a QOPI collection round on the QOPI Certification Pathway",
    ELIG_ABSTRACTION: "completing the abstraction requirements for QOPI Certification in that round",
    ELIG_PATHWAY: "choosing the QOPI Certification Pathway in a collection round and scoring {threshold} or more on its 25 measures",
    ELIG_SCORE: "an Overall Quality Score of {threshold} or more on the QOPI Certification Pathway, from a round whose validity covers the day you apply",
    ELIG_SAMPLING: "a round in which the QOPI sampling methodology is followed and the target chart numbers for your practice size and modules are met",
    VALIDITY: "a new score of {threshold} or more from a more recent round; it stays valid until the close of the next same-season round",
}


def meets_threshold(score: float, kb: Knowledge) -> bool:
    # Compared exactly as given: 74.99 fails, 75.0 passes, nothing is rounded.
    return score >= kb.score_threshold


def threshold_value(kb: Knowledge) -> int | float:
    """The threshold as the JSON `threshold` fact: 75, not 75.0 (a fractional one stays one)."""
    t = kb.score_threshold
    return int(t) if t == int(t) else t


@implements(ELIG_ROUND, ELIG_ABSTRACTION, ELIG_PATHWAY, ELIG_SAMPLING)
def _requirement_checks(facts: Facts) -> list[TraceStep]:
    steps = []
    for rule_id, value, what in (
        (ELIG_ROUND, facts.participated_round, "participated in a QOPI collection round"),
        (ELIG_ABSTRACTION, facts.abstraction_complete, "completed the certification abstraction"),
        (ELIG_PATHWAY, facts.pathway, "chose the QOPI Certification Pathway"),
        (ELIG_SAMPLING, facts.sampling_followed, "followed the sampling methodology and met target chart numbers"),
    ):
        check = RuleCheck.UNKNOWN if value is None else (RuleCheck.PASSED if value else RuleCheck.FAILED)
        note = f"{'not known whether the practice ' if value is None else ('the practice ' if value else 'the practice has not ')}{what}"
        steps.append(TraceStep(rule_id=rule_id, check=check, note=note))
    return steps


@implements(ELIG_SCORE)
def _score_check(facts: Facts, kb: Knowledge) -> TraceStep:
    if facts.score is None:
        return TraceStep(rule_id=ELIG_SCORE, check=RuleCheck.UNKNOWN, note="score not known")
    passed = meets_threshold(facts.score, kb)
    return TraceStep(
        rule_id=ELIG_SCORE, check=RuleCheck.PASSED if passed else RuleCheck.FAILED,
        note=f"{facts.score:g}% {'>=' if passed else '<'} {kb.score_threshold:g}%",
    )


def _validity_check(validity: ValidityResult | None) -> TraceStep | None:
    if validity is None:
        return None
    check = {True: RuleCheck.PASSED, False: RuleCheck.FAILED, None: RuleCheck.UNKNOWN}[validity.can_apply]
    return TraceStep(rule_id=VALIDITY, check=check,
                     note=f"{validity.completed_round.label()} score valid until the close of "
                          f"{validity.valid_until_round.label()}: {validity.basis}")


def validity_facts(out: ComputedFacts, validity: ValidityResult) -> None:
    out.completed_round = validity.completed_round.label()
    out.valid_until_round = validity.valid_until_round.label()
    out.valid_until = validity.valid_until
    out.can_apply = validity.can_apply
    out.computed_nulls |= {"valid_until", "can_apply"}


@implements(ELIG_ATTESTATION, APPLY_AFTER_REPORT, APPLY_STANDARDS)
def _conditions(facts: Facts) -> tuple[list[str], list[str], list[TraceStep]]:
    """Conditions the practice must still meet, and the steps that always follow."""
    conditions, trace = [], []
    if facts.charts_pool_complete is False:
        conditions.append(ELIG_ATTESTATION)
        trace.append(TraceStep(rule_id=ELIG_ATTESTATION, check=RuleCheck.APPLIES,
                               note="some oncologists' charts were not in the sampling pool: attestation form required"))
    if facts.report_received is False:
        conditions.append(APPLY_AFTER_REPORT)
        trace.append(TraceStep(rule_id=APPLY_AFTER_REPORT, check=RuleCheck.APPLIES,
                               note="final certification report not received yet: the application opens once it arrives"))
    next_steps = [APPLY_STANDARDS]
    if facts.report_received is None:
        next_steps.insert(0, APPLY_AFTER_REPORT)
    trace.append(TraceStep(rule_id=APPLY_STANDARDS, check=RuleCheck.APPLIES,
                           note="affirm the 20 Certification Standards at application and payment"))
    return conditions, next_steps, trace


def decide_eligibility(facts: Facts, today: dt.date, kb: Knowledge) -> Decision:
    out = ComputedFacts(threshold=threshold_value(kb))
    trace = _requirement_checks(facts)
    score_step = _score_check(facts, kb)
    trace.append(score_step)
    if facts.score is not None:
        out.score = facts.score
        out.meets_threshold = meets_threshold(facts.score, kb)

    validity = score_validity(facts.completed_round, today, kb) if facts.completed_round else None
    if validity is not None:
        validity_facts(out, validity)
        step = _validity_check(validity)
        assert step is not None
        trace.append(step)

    failed = [s.rule_id for s in trace if s.check is RuleCheck.FAILED]
    if failed and facts.wants_exception and not {ELIG_SCORE, VALIDITY} & set(failed):
        # "A tornado closed us and we missed the spring round; any flexibility?": not eligible as things
        # stand, and only QCP staff can grant the exception asked for.
        escalation = Escalation(reason=ENTITY_EXCEPTION, summary="asks for an exception for special circumstances")
        trace.append(TraceStep(rule_id=ENTITY_EXCEPTION, check=RuleCheck.APPLIES, note=escalation.summary))
        rules = [*failed, ENTITY_EXCEPTION]
        return Decision(
            topic=Topic.ELIGIBILITY, verdict=Verdict.NOT_ELIGIBLE, outcome=Outcome.ESCALATED, escalation=escalation,
            rules=rules, failed_rules=failed, citations=cite(kb, rules),
            would_change=[WOULD_CHANGE[r].format(threshold=f"{kb.score_threshold:g}%") for r in failed], facts=out, trace=trace,
        )
    if failed:
        return Decision(
            topic=Topic.ELIGIBILITY, verdict=Verdict.NOT_ELIGIBLE, outcome=Outcome.ANSWERED,
            rules=failed, failed_rules=failed, citations=cite(kb, failed),
            would_change=[WOULD_CHANGE[r].format(threshold=f"{kb.score_threshold:g}%") for r in failed], facts=out, trace=trace,
        )

    escalation = staff_escalation(facts)
    if escalation is not None:
        rule_id = escalation.reason
        trace.append(TraceStep(rule_id=rule_id, check=RuleCheck.APPLIES, note=escalation.summary))
        return Decision(
            topic=Topic.ELIGIBILITY, verdict=Verdict.NEEDS_STAFF_REVIEW, outcome=Outcome.ESCALATED,
            rules=[rule_id], citations=cite(kb, [rule_id]), escalation=escalation, facts=out, trace=trace,
        )

    if facts.score is None:
        return Decision(
            topic=Topic.ELIGIBILITY, outcome=Outcome.NEEDS_INFO, rules=[ELIG_SCORE],
            citations=cite(kb, [ELIG_SCORE]), missing=[MissingFact.SCORE],
            would_change=["your Overall Quality Score on the QOPI Certification Pathway"],
            facts=out, trace=trace,
        )

    conditions, next_steps, step_trace = _conditions(facts)
    trace.extend(step_trace)
    reminders = [s.rule_id for s in trace if s.check is RuleCheck.UNKNOWN and s.rule_id in (ELIG_PATHWAY, ELIG_SAMPLING)]
    if validity is None:
        reminders.append(VALIDITY)
    passed = [s.rule_id for s in trace if s.check is RuleCheck.PASSED]
    rules = list(dict.fromkeys(passed + conditions + next_steps))
    return Decision(
        topic=Topic.ELIGIBILITY,
        verdict=Verdict.ELIGIBLE_WITH_CONDITIONS if conditions else Verdict.ELIGIBLE,
        outcome=Outcome.ANSWERED, rules=rules, citations=cite(kb, rules + reminders),
        conditions=conditions, reminders=reminders, next_steps=next_steps,
        would_change=[WOULD_CHANGE_CONDITION[c] for c in conditions], facts=out, trace=trace,
    )


WOULD_CHANGE_CONDITION: dict[str, str] = {
    ELIG_ATTESTATION: "including all medical/hematology oncologists' charts from all locations in the sampling pool (otherwise the attestation form is required)",
    APPLY_AFTER_REPORT: "receiving your final QOPI Certification Report, which opens the application",
}


@implements(ENTITY_SUBSET, ENTITY_EXCEPTION)
def staff_escalation(facts: Facts) -> Escalation | None:
    """Subset certification and exceptions are human decisions; the core only routes them."""
    if facts.wants_subset:
        return Escalation(reason=ENTITY_SUBSET, summary="wants to certify only part of the practice")
    if facts.wants_exception:
        return Escalation(reason=ENTITY_EXCEPTION, summary="asks for an exception for special circumstances")
    return None
