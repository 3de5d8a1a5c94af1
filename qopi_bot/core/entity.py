"""Who applies: one practice with all its sites, separate entities, or a subset for staff."""

from __future__ import annotations

from qopi_bot.core.eligibility import staff_escalation
from qopi_bot.core.kb import Knowledge
from qopi_bot.core.rules import (
    ENTITY_INTEGRATION, ENTITY_LOOSE, ENTITY_PRACTICE, cite, implements,
)
from qopi_bot.models import (
    ComputedFacts, Decision, Entity, Facts, MissingFact, Outcome, RuleCheck, Topic, TraceStep,
    Verdict,
)


@implements(ENTITY_PRACTICE, ENTITY_INTEGRATION, ENTITY_LOOSE)
def decide_entity(facts: Facts, kb: Knowledge) -> Decision:
    escalation = staff_escalation(facts)
    if escalation is not None:
        rule_id = escalation.reason
        return Decision(
            topic=Topic.ENTITY, verdict=Verdict.NEEDS_STAFF_REVIEW, outcome=Outcome.ESCALATED,
            rules=[rule_id], citations=cite(kb, [rule_id, ENTITY_PRACTICE]), escalation=escalation,
            facts=ComputedFacts(entity=Entity.SUBSET if facts.wants_subset else None),
            trace=[TraceStep(rule_id=rule_id, check=RuleCheck.APPLIES, note=escalation.summary)],
        )
    sites = f"{facts.site_count} sites" if facts.site_count else "the sites"
    if facts.same_policies is True:
        rules = [ENTITY_PRACTICE, ENTITY_INTEGRATION]
        return Decision(
            topic=Topic.ENTITY, outcome=Outcome.ANSWERED, rules=rules, citations=cite(kb, rules),
            next_steps=[ENTITY_INTEGRATION], facts=ComputedFacts(entity=Entity.ONE_ENTITY),
            trace=[
                TraceStep(rule_id=ENTITY_PRACTICE, check=RuleCheck.PASSED,
                          note=f"{sites} operate under the same policies and procedures: one practice"),
                TraceStep(rule_id=ENTITY_INTEGRATION, check=RuleCheck.APPLIES,
                          note="the application must show the sites are functionally integrated"
                               + (f" (mentioned: {', '.join(facts.integration_evidence)})" if facts.integration_evidence else "")),
            ],
        )
    if facts.same_policies is False:
        rules = [ENTITY_LOOSE, ENTITY_PRACTICE]
        return Decision(
            topic=Topic.ENTITY, outcome=Outcome.ANSWERED, rules=rules, citations=cite(kb, rules),
            facts=ComputedFacts(entity=Entity.SEPARATE_ENTITIES),
            would_change=["all sites operating under the same policies and procedures, functionally integrated"],
            trace=[TraceStep(rule_id=ENTITY_LOOSE, check=RuleCheck.APPLIES,
                             note=f"{sites} do not share the same policies and procedures: separate entities")],
        )
    rules = [ENTITY_PRACTICE, ENTITY_INTEGRATION, ENTITY_LOOSE]
    return Decision(
        topic=Topic.ENTITY, outcome=Outcome.NEEDS_INFO, rules=rules, citations=cite(kb, rules),
        missing=[MissingFact.SAME_POLICIES],
        trace=[TraceStep(rule_id=ENTITY_PRACTICE, check=RuleCheck.UNKNOWN,
                         note="not known whether all sites operate under the same policies and procedures")],
    )
